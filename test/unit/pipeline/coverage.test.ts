/**
 * SENSOR-001 "Sensor coverage lost": lost records, dropped findings and evicted candidates
 * become one finding per window on every output, within a second of the loss, and nothing
 * is emitted while nothing is lost.
 */
import { describe, expect, it } from "vitest";
import { Pipeline, builtinRules, type Finding } from "sockeye";
import type { StatsSnapshot } from "sockeye/metrics";
import { dup, exec } from "../engine/fixtures.js";
import { CoverageMonitor, SENSOR_001_META, coverageCounts, type CoverageCounts } from "../../../src/pipeline/coverage.js";

function snapshot(parts: { lost?: number; queueFull?: number; evicted?: number } = {}): StatsSnapshot {
  return {
    timeMs: 0,
    engine: {
      eventsByKind: {}, findingsByRule: {}, foldedByRule: {}, folded: 0, suppressedByRule: {}, ruleErrors: {},
      dropped: { unknown_kind: 0, malformed_line: 0 },
      sequences: { "seq-rule": { partials: 0, matched: 0, expired: 4, evicted: parts.evicted ?? 0, untilDropped: 2 } },
      ruleState: {},
    },
    kernel: { exec: { emitted: 100, lost: parts.lost ?? 0, errors: 3 }, fork: { emitted: 10, lost: 0, errors: 0 } },
    outputs: [{ name: "stdout", type: "json", written: 5, dropped: { queue_full: parts.queueFull ?? 0, encode_error: 0, write_error: 0, http_rejected: 0, retries_exhausted: 0, flush_timeout: 0, closed: 0, spool_full: 0, spool_expired: 0 }, queueDepth: 0, retries: 0, rotations: 0 }],
  };
}

/** A monitor on a hand-driven clock: `advance(ms)` runs its checks as the timer would. */
function harness(initial: CoverageCounts = {}) {
  let nowMs = 1_000_000;
  let counts = initial;
  const findings: Finding[] = [];
  const monitor = new CoverageMonitor({ sample: () => counts, emit: (finding) => findings.push(finding), now: () => nowMs, hostName: "h", timer: false });
  monitor.start();
  return {
    monitor,
    findings,
    set(next: CoverageCounts) {
      counts = next;
    },
    advance(ms: number) {
      for (let step = 0; step < ms; step += monitor.checkMs) {
        nowMs += monitor.checkMs;
        monitor.check();
      }
    },
    get now() {
      return nowMs;
    },
  };
}

describe("coverageCounts", () => {
  it("takes the lost kernel records per ring, every output drop and sequence evictions; not helper errors, expiries or until-drops", () => {
    expect(coverageCounts(snapshot({ lost: 7, queueFull: 2, evicted: 1 }))).toEqual({
      "kernel/exec": { lost: 7 },
      "kernel/fork": { lost: 0 },
      "output/stdout": { queue_full: 2, encode_error: 0, write_error: 0, http_rejected: 0, retries_exhausted: 0, flush_timeout: 0, closed: 0, spool_full: 0, spool_expired: 0 },
      "rule/seq-rule": { evicted: 1 },
    });
  });

  it("takes a rule's abandoned candidates and budget-stopped looks, not its housekeeping evictions or expiries", () => {
    const s = snapshot();
    s.engine.ruleState = { "RELAY-001": { held: 9, pending: 256, indexed: 40, evicted: 5000, expired: 70, incomplete: 2, abandoned: 3 } };
    expect(coverageCounts(s)["rule/RELAY-001"]).toEqual({ abandoned: 3, incomplete: 2 });
  });
});

describe("CoverageMonitor", () => {
  it("the same counts object again (nothing read afresh) adds nothing; a fresh one with growth is reported", () => {
    const h = harness({ "kernel/exec": { lost: 3 } });
    const same = { "kernel/exec": { lost: 3 } };
    h.set(same);
    h.advance(1_000);
    h.advance(1_000);
    expect(h.findings).toEqual([]);
    h.set({ "kernel/exec": { lost: 5 } });
    h.advance(1_000);
    expect(h.findings.map((f) => (f.sockeye as unknown as { coverage: { lost: unknown } }).coverage.lost)).toEqual([{ "kernel/exec": { lost: 2 } }]);
  });

  it("poke() checks at most once per checkMs: a batch right after a check reads nothing", () => {
    let nowMs = 0;
    let reads = 0;
    let lost = 0;
    const findings: Finding[] = [];
    const monitor = new CoverageMonitor({ sample: () => (reads++, { "kernel/exec": { lost } }), emit: (f) => findings.push(f), now: () => nowMs, hostName: "h", timer: false });
    monitor.start();
    expect(reads).toBe(1);
    lost = 4;
    monitor.poke();
    expect(reads).toBe(2);
    expect(findings).toHaveLength(1);
    nowMs += monitor.checkMs - 1;
    monitor.poke();
    expect(reads).toBe(2);
    nowMs += 1;
    monitor.poke();
    expect(reads).toBe(3);
  });

  it("emits nothing while nothing is lost", () => {
    const h = harness(coverageCounts(snapshot()));
    h.advance(10_000);
    expect(h.findings).toEqual([]);
  });

  it("a kernel loss becomes one SENSOR-001 alert, low severity, with the counts per ring and reason, within a second", () => {
    const h = harness(coverageCounts(snapshot()));
    h.advance(1000);
    h.set(coverageCounts(snapshot({ lost: 1234 })));
    const lostAt = h.now;
    h.advance(1000);
    expect(h.findings).toHaveLength(1);
    const finding = h.findings[0]!;
    expect(finding.event).toMatchObject({ kind: "alert", action: "coverage_lost", module: "sockeye" });
    expect(finding.rule).toMatchObject({ id: "SENSOR-001", name: "Sensor coverage lost", severity: "low" });
    expect(SENSOR_001_META).toMatchObject({ id: "SENSOR-001", severity: "low" });
    expect(finding.sockeye.coverage).toMatchObject({ lost: { "kernel/exec": { lost: 1234 } }, total: 1234 });
    expect(finding.process.pid).toBe(process.pid);
    expect(finding.host.name).toBe("h");
    expect(Date.parse(finding["@timestamp"]) - lostAt).toBeLessThanOrEqual(1000);
  });

  it("aggregates a sustained loss: at most one finding per window, each within a second of the losses it reports, nothing counted twice", () => {
    const h = harness(coverageCounts(snapshot()));
    let lost = 0;
    const lossTimes: number[] = [];
    for (let i = 0; i < 50; i++) {
      lost += 10;
      h.set(coverageCounts(snapshot({ lost, queueFull: i })));
      lossTimes.push(h.now);
      h.advance(h.monitor.checkMs);
    }
    h.advance(2000);
    const emitted = h.findings.map((finding) => Date.parse(finding["@timestamp"]));
    for (let i = 1; i < emitted.length; i++) expect(emitted[i]! - emitted[i - 1]!).toBeGreaterThanOrEqual(h.monitor.windowMs - h.monitor.checkMs);
    expect(h.findings.length).toBeLessThanOrEqual(Math.ceil((50 * h.monitor.checkMs) / (h.monitor.windowMs - h.monitor.checkMs)) + 1);
    const total = h.findings.reduce((sum, finding) => sum + ((finding.sockeye.coverage as { lost: Record<string, Record<string, number>> }).lost["kernel/exec"]?.lost ?? 0), 0);
    expect(total).toBe(500);
    for (const at of lossTimes) expect(emitted.find((time) => time >= at)! - at).toBeLessThanOrEqual(1000);
  });

  it("reports what a caller hands it (a program found detached) the same way", () => {
    const h = harness();
    h.monitor.report("program/handle_exec", "detached", 1);
    h.advance(1000);
    expect(h.findings).toHaveLength(1);
    expect(h.findings[0]!.sockeye.coverage).toMatchObject({ lost: { "program/handle_exec": { detached: 1 } }, total: 1 });
  });

  it("folds held_past_bound findings (a decoy flood) into the window's finding, with a few samples, and passes every other finding on", () => {
    const h = harness();
    const held = (pid: number) => ({ rule: { id: "TRC-101" }, process: { pid, name: "decoy" }, destination: { ip: "127.0.0.1", port: 9000 + pid }, sockeye: { verdict: { reason: "held_past_bound" } } }) as unknown as Finding;
    const real = { rule: { id: "TRC-101" }, process: { pid: 1 }, sockeye: { verdict: { reason: "shell_on_socket" } } } as unknown as Finding;
    const flood = Array.from({ length: 10_000 }, (_, i) => held(i + 10));
    expect(h.monitor.absorb([...flood.slice(0, 5000), real, ...flood.slice(5000)])).toEqual([real]);
    h.advance(1000);
    expect(h.findings).toHaveLength(1);
    const coverage = h.findings[0]!.sockeye.coverage as { lost: Record<string, Record<string, number>>; samples: unknown[] };
    expect(coverage.lost).toEqual({ "rule/TRC-101": { held_past_bound: 10_000 } });
    expect(coverage.samples).toHaveLength(10);
    expect(coverage.samples[0]).toEqual({ rule: "TRC-101", reason: "held_past_bound", pid: 10, name: "decoy", destination: "127.0.0.1:9010" });
  });

  it("a final check at stop reports what was lost in the last window, whatever the rate limit", () => {
    const h = harness(coverageCounts(snapshot()));
    h.set(coverageCounts(snapshot({ lost: 1 })));
    h.advance(h.monitor.checkMs);
    h.set(coverageCounts(snapshot({ lost: 3 })));
    h.monitor.stop();
    expect(h.findings.map((finding) => finding.sockeye.coverage)).toMatchObject([{ total: 1 }, { total: 2 }]);
  });

  it("a watched pipeline delivers TRC-101's held_past_bound let-goes as counts and the real shell as itself", () => {
    let nowMs = 1_000_000;
    const sensorFindings: Finding[] = [];
    const pipeline = new Pipeline({ rules: builtinRules({ trc101: { precise: { maxHeldProcesses: 2 } } }), hostName: "h" });
    const monitor = new CoverageMonitor({ sample: () => ({}), emit: (finding) => sensorFindings.push(finding), now: () => nowMs, timer: false });
    pipeline.watchCoverage(monitor);
    monitor.start();
    // Five lingering decoys (a dup onto fd 0, never an exec): the table holds two, lets three go.
    const decoys = [1, 2, 3, 4, 5].map((n) => dup({ task: { pid: 100 + n }, newfd: 0, socketIno: 9000 + n }));
    // The real shell: sh -i starting with a connected socket on stdin.
    const socket = { kind: "inet", ino: 9999, family: "inet", socketType: "stream", origin: "connected", state: 1, local: { address: "10.0.0.5", port: 51234 }, remote: { address: "10.0.0.66", port: 4444 } } as const;
    const tty = { kind: "tty", ino: 3, ttyIndex: 0, controlling: true } as const;
    const delivered = pipeline.process([...decoys, exec({ task: { pid: 200 }, filename: "/bin/sh", args: ["sh", "-i"], stdio: [socket, tty, tty] })]);
    expect(delivered.map((finding) => [finding.rule.id, finding.process.pid])).toEqual([["TRC-101", 200]]);
    nowMs += 1000;
    monitor.check();
    expect(sensorFindings).toHaveLength(1);
    expect(sensorFindings[0]!.sockeye.coverage).toMatchObject({ lost: { "rule/TRC-101": { held_past_bound: 3 } }, total: 3 });
    // The let-goes were never built into findings, yet count as the rule's and are sampled from the event.
    expect(pipeline.stats().engine.findingsByRule).toEqual({ "TRC-101": 4 });
    const samples = (sensorFindings[0]!.sockeye.coverage as { samples: { pid: number; name?: string; rule: string }[] }).samples;
    expect(samples.map((sample) => [sample.rule, sample.pid, sample.name])).toEqual([
      ["TRC-101", 101, "bash"],
      ["TRC-101", 102, "bash"],
      ["TRC-101", 103, "bash"],
    ]);
  });
});
