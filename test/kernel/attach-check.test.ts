/**
 * The attach check: a program whose link goes away (here its fd is closed under the sensor,
 * as code injected into the daemon could do; this kernel's links refuse `bpftool link
 * detach`: EOPNOTSUPP for raw_tracepoint and perf_event links) is reported detached at the
 * next check, and really stopped running.
 */
import { spawnSync } from "node:child_process";
import { closeSync, openSync, readFileSync, readdirSync, readlinkSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { openSensorSync, type SensorEvent } from "sockeye";
import { kernelTier, programIdsHeldBy } from "./harness.js";

const tier = kernelTier();

/** This process's fd of the BPF link that runs program `progId`, from fdinfo. */
function linkFdOf(progId: number): number {
  for (const fd of readdirSync("/proc/self/fd")) {
    let target = "";
    try {
      target = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue; // the listing's own fd, closed meanwhile
    }
    if (target !== "anon_inode:bpf_link") continue;
    if (new RegExp(`^prog_id:\\s*${progId}$`, "m").test(readFileSync(`/proc/self/fdinfo/${fd}`, "utf8"))) return Number(fd);
  }
  throw new Error(`no BPF link fd of program ${progId} in this process`);
}

/** The id of the program named `name` this process holds. */
function heldProgramId(name: string): number {
  const id = programIdsHeldBy(process.pid).find((held) => {
    const shown = spawnSync("bpftool", ["-j", "prog", "show", "id", String(held)], { encoding: "utf8" });
    return (JSON.parse(shown.stdout) as { name?: string }).name === name;
  });
  if (id === undefined) throw new Error(`this process holds no program named ${name}`);
  return id;
}

/**
 * Closes `fd` and puts /dev/null on its number: libbpf closes the link's fd again at
 * sensor.close(), which must not close a file the test runner opened meanwhile.
 */
function closeAndPlug(fd: number): void {
  closeSync(fd);
  const extra: number[] = [];
  for (let got = openSync("/dev/null", "r"); got !== fd; got = openSync("/dev/null", "r")) {
    if (got > fd) { closeSync(got); throw new Error(`fd ${fd} was taken before it could be plugged`); }
    extra.push(got);
  }
  for (const e of extra) closeSync(e);
}

describe.runIf(tier.run)("kernel: attach check", () => {
  it("every program is attached after open; one whose link fd is closed is reported, and runs no more", async () => {
    const sensor = openSensorSync();
    const events: SensorEvent[] = [];
    sensor.subscribe((batch) => events.push(...batch));
    try {
      const before = sensor.checkAttached();
      expect(before.detached).toEqual([]);
      expect(before.attached).toEqual(expect.arrayContaining(["handle_exec", "handle_fork", "handle_exit", "handle_dup2_exit", "handle_connect_exit"]));

      closeAndPlug(linkFdOf(heldProgramId("handle_exec")));
      const after = sensor.checkAttached();
      expect(after.detached).toEqual([{ program: "handle_exec", reason: expect.stringMatching(/^its link is gone/) as unknown }]);
      expect(after.attached).toHaveLength(before.attached.length - 1);

      // The check tells the truth: an exec now leaves no record, while its exit still does.
      const marker = spawnSync("/bin/true");
      const deadline = Date.now() + 5_000;
      while (!events.some((e) => e.kind === "exit" && e.task.pid === marker.pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(events.some((e) => e.kind === "exit" && e.task.pid === marker.pid)).toBe(true);
      expect(events.some((e) => e.kind === "exec" && e.task.pid === marker.pid)).toBe(false);
    } finally {
      await sensor.close();
    }
    expect(sensor.checkAttached()).toEqual({ attached: [], detached: [] });
  });
});
