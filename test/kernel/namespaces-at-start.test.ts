/**
 * A process found running at start names its namespaces as a process the sensor saw exec does:
 * a program started before the daemon in its own network and pid namespaces (`unshare`,
 * loopback only) raises a finding on its already_running document whose `sockeye.namespaces`
 * are the inodes `readlink /proc/PID/ns/*` shows and whose `sockeye.ns_pid` is its pid inside
 * (1), and a second process exec'd into the same namespaces after the start raises one with the
 * same namespaces, from the kernel's task context.
 */
import { afterEach, describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { kernelTier } from "./harness.js";

const tier = kernelTier();

async function startUntilReady(cmd: string, args: string[]) {
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
  const out = { stdout: "", stderr: "" };
  child.stdout.on("data", (d) => (out.stdout += d));
  await new Promise<void>((resolve, reject) => {
    child.stderr.on("data", (d) => { out.stderr += d; if (out.stderr.includes("ready")) resolve(); });
    child.on("error", reject);
    child.on("exit", (code) => reject(new Error(`${cmd} exited ${code} before ready: ${out.stderr}`)));
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { child, out, exited };
}

/** The inode a /proc/<pid>/ns/<kind> link names. */
function inode(pid: number | "self", kind: "pid" | "mnt" | "net"): number {
  const target = readlinkSync(`/proc/${pid}/ns/${kind}`);
  const match = new RegExp(`^${kind}:\\[(\\d+)\\]$`).exec(target);
  if (match === null) throw new Error(`/proc/${pid}/ns/${kind} reads ${target}`);
  return Number(match[1]);
}

/** The child of `parent` running `name`, once it has exec'd (bounded wait). */
async function childNamed(parent: number, name: string): Promise<number> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    let children: number[] = [];
    try {
      children = readFileSync(`/proc/${parent}/task/${parent}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
    } catch {
      // not yet forked, or gone: the deadline decides
    }
    for (const child of children) {
      try {
        if (readFileSync(`/proc/${child}/comm`, "utf8").trim() === name) return child;
      } catch {
        // exited meanwhile
      }
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`no child of ${parent} named ${name} within 10 s`);
}

interface FindingJson {
  rule: { id: string };
  process: { pid: number; name: string };
  sockeye: { event: { kind: string }; namespaces?: { pid?: number; mnt?: number; net?: number }; ns_pid?: number };
}

describe.runIf(tier.run)("kernel: namespaces of a process found running at start", () => {
  let daemon: ReturnType<typeof spawn> | undefined;
  afterEach(() => {
    if (daemon?.exitCode === null) daemon.kill("SIGKILL");
  });

  it("a finding about a process older than the daemon, in its own net and pid namespaces, names them as a kernel record does", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sockeye-ns-at-start-"));
    // A program name no other process on the host has: a copy of sleep.
    const name = `skns${process.pid % 100_000}`;
    const program = join(dir, name);
    copyFileSync("/bin/sleep", program);
    chmodSync(program, 0o755);
    const rules = join(dir, "rules");
    mkdirSync(rules);
    const query = `process where host.os.type == "linux" and process.name == "${name}" and (event.action == "already_running" or event.action == "exec")`;
    writeFileSync(join(rules, "ns-at-start.toml"), [
      "[rule]", 'author = ["sockeye tests"]', 'description = "A test program ran"', 'language = "eql"',
      'license = "Apache-2.0"', 'name = "Test program ran"', "risk_score = 21", 'rule_id = "kt-ns-at-start"',
      'severity = "low"', 'type = "eql"', `query = '''\n${query}\n'''`, "",
    ].join("\n"));
    // unshare forks the program as pid 1 of a new pid namespace, in a new network namespace
    // (only its own loopback, down): both differ from the daemon's. --kill-child: the program
    // dies with unshare, and with it (pid 1) whatever was entered into its pid namespace.
    const unshare = spawn("unshare", ["--net", "--pid", "--fork", "--kill-child", program, "60"], { stdio: "ignore" });
    const entered: ReturnType<typeof spawn>[] = [];
    try {
      const before = await childNamed(unshare.pid!, name);
      const expected = { pid: inode(before, "pid"), mnt: inode(before, "mnt"), net: inode(before, "net") };
      expect(expected.net).not.toBe(inode("self", "net"));
      expect(expected.pid).not.toBe(inode("self", "pid"));

      const { child, out, exited } = await startUntilReady(process.execPath, ["dist/cli/main.js", "run", "--rules", rules, "--format", "json", "--stats-interval", "0"]);
      daemon = child;
      // Exec'd into the same namespaces after the start: what the kernel's task context says.
      const nsenter = spawn("nsenter", ["-t", String(before), "--net", "--pid", program, "1"], { stdio: "ignore" });
      entered.push(nsenter);
      await new Promise<void>((resolve) => nsenter.on("exit", () => resolve()));
      await new Promise((r) => setTimeout(r, 1000));
      child.kill("SIGTERM");
      expect(await exited).toBe(0);

      const findings = out.stdout.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l) as FindingJson).filter((f) => f.rule.id === "kt-ns-at-start");
      const seeded = findings.filter((f) => f.process.pid === before);
      expect(seeded.map((f) => f.sockeye.event.kind)).toEqual(["already_running"]);
      expect(seeded[0]!.sockeye.namespaces).toEqual(expected);
      expect(seeded[0]!.sockeye.ns_pid).toBe(1);

      const execd = findings.filter((f) => f.process.pid !== before && f.sockeye.event.kind === "exec");
      expect(execd).toHaveLength(1);
      expect(execd[0]!.sockeye.namespaces).toEqual(expected);
      expect(execd[0]!.sockeye.ns_pid).toBeGreaterThan(1);
    } finally {
      for (const p of [unshare, ...entered]) p.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
