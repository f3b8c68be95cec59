/**
 * Lost coverage is a finding (issue 25): under `sockeye run`, ordinary activity gives no
 * finding at all, SENSOR-001 included; a flood while the daemon is stopped (SIGSTOP: nobody
 * reads the rings, so the kernel must drop records, however fast this machine is) gives
 * SENSOR-001 on stdout within a second of the loss being counted, and every record the
 * kernel lost is in one of them (the totals match the daemon's `stopped` line).
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { kernelTier, run, startDaemon, tcpListener, type Daemon } from "./harness.js";

const tier = kernelTier();
const LOADGEN_SOURCE = new URL("../../bench/loadgen.c", import.meta.url).pathname;

interface FindingJson {
  rule: { id: string; severity: string };
  event: { kind: string };
  sockeye: { coverage?: { since: string; total: number; lost: Record<string, Record<string, number>> } };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.runIf(tier.run)("kernel: lost coverage is a finding", () => {
  let daemon: Daemon | undefined;
  afterEach(() => {
    if (daemon?.child.exitCode === null) daemon.child.kill("SIGKILL");
  });

  it("quiet on ordinary activity; a ring flood's every lost record reported as SENSOR-001 within a second", async () => {
    const loadgen = join(mkdtempSync(join(tmpdir(), "sockeye-loadgen-")), "sockeye-loadgen");
    const cc = spawnSync("cc", ["-O2", "-o", loadgen, LOADGEN_SOURCE], { encoding: "utf8" });
    if (cc.status !== 0) throw new Error(`cannot build the load generator with cc: ${cc.error?.message ?? cc.stderr}`);

    daemon = startDaemon(["--format", "json"]);
    const child = daemon.child;
    await daemon.ready;

    // Ordinary activity: a /dev/tcp health check, a few programs; then a window and more.
    const service = await tcpListener("127.0.0.1", "ok\n");
    for (let i = 0; i < 3; i++) {
      await run("bash", ["-c", `exec 3<>/dev/tcp/127.0.0.1/${service.port}; printf 'ping\\n' >&3; head -c 3 <&3`]);
      await run("ls", ["-la", "/tmp"]);
      await sleep(500);
    }
    await service.close();
    await sleep(1000);
    expect(daemon.findings<FindingJson>().map(({ finding }) => finding.rule.id)).toEqual([]);

    const flood = run(loadgen, ["flood", "3"]);
    await sleep(500);
    child.kill("SIGSTOP");
    await sleep(1500);
    child.kill("SIGCONT");
    expect((await flood).status).toBe(0);
    await sleep(2000);
    await daemon.stop();

    const lostByKernel = Object.values(daemon.stopped()!.kernel).reduce((sum, counters) => sum + counters.lost, 0);
    const coverage = daemon.findings<FindingJson>().filter(({ finding }) => finding.rule.id === "SENSOR-001");
    const reported = coverage.reduce(
      (sum, { finding }) => sum + Object.entries(finding.sockeye.coverage!.lost).filter(([where]) => where.startsWith("kernel/")).reduce((n, [, reasons]) => n + (reasons.lost ?? 0), 0),
      0,
    );
    const firstDelayMs = coverage.length > 0 ? coverage[0]!.receivedMs - Date.parse(coverage[0]!.finding.sockeye.coverage!.since) : undefined;
    console.log(JSON.stringify({ lostByKernel, sensor001: coverage.length, reported, firstDelayMs }));

    expect(lostByKernel, "the flood must overflow a ring for this test to show anything").toBeGreaterThan(0);
    expect(coverage[0]!.finding).toMatchObject({ event: { kind: "alert" }, rule: { id: "SENSOR-001", severity: "low" } });
    expect(reported).toBe(lostByKernel);
    expect(firstDelayMs!).toBeLessThan(1000);
  }, 60_000);
});
