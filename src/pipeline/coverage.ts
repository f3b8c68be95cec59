/**
 * SENSOR-001 "Sensor coverage lost": a sensor that can be blinded in silence is one an
 * attacker blinds first, so every loss of coverage is a finding of its own, on every output,
 * where the SIEM already looks for detections (Falco emits a drop alert the same way).
 *
 * Losses come from cumulative counters sampled every `checkMs` (kernel records lost per
 * ring, findings an output dropped by reason, sequence partials evicted by a bound), from
 * callers (`report()`: a program found detached, a rule's table evicting a candidate), and
 * from flood-prone findings folded in by `absorb()` (TRC-101's `held_past_bound`: 14,000
 * decoys must not become 14,000 findings burying the real one). They are aggregated per
 * window: at most one finding per `windowMs`, and a loss is reported at the latest
 * `windowMs` after it happened (the next check once `windowMs - checkMs` passed since the
 * previous finding).
 */
import { hostname } from "node:os";
import { basename } from "node:path";
import { ecsThreat, newEventId, ruleFields, type Finding } from "../engine/finding.js";
import type { Detection, RuleMeta } from "../engine/rule.js";
import { IMPAIR_DEFENSES_THREAT } from "../engine/sensor-threat.js";
import type { StatsSnapshot } from "../metrics/snapshot.js";
import type { SensorEvent } from "../sensor/events.js";

export const SENSOR_001_META: RuleMeta = {
  id: "SENSOR-001",
  name: "Sensor coverage lost",
  description:
    "The sensor could not see or report everything for a while: kernel records were lost, an output dropped findings, a bounded table evicted a candidate, or a program was detached. Detections may be missing for this window; the counts say where.",
  version: "1",
  severity: "low",
  riskScore: 21,
  threat: [...IMPAIR_DEFENSES_THREAT],
  source: "builtin",
};

/** Cumulative counts by where the loss happened ("kernel/exec", "output/webhook", "rule/TRC-101") and reason. */
export type CoverageCounts = Record<string, Record<string, number>>;

/** Verdicts a flood of decoys can raise by the thousand: counted into SENSOR-001, not reported one by one. */
const FLOOD_PRONE_REASONS: ReadonlySet<string> = new Set(["held_past_bound"]);
/** Absorbed findings named in the aggregate, so the SIEM still has leads. */
const MAX_SAMPLES = 10;

export const DEFAULT_COVERAGE_WINDOW_MS = 1000;
export const DEFAULT_COVERAGE_CHECK_MS = 200;

/**
 * The losses in a stats snapshot: records the kernel could not put in a ring (helper errors
 * are not losses: a read of a process that just exited fails without hiding anything), every
 * finding an output dropped, and sequence partials evicted (expired and until-dropped ones
 * ended as the rule says).
 */
export function coverageCounts(snapshot: Pick<StatsSnapshot, "kernel" | "outputs"> & { engine: Pick<StatsSnapshot["engine"], "sequences" | "ruleState"> }): CoverageCounts {
  const counts: CoverageCounts = {};
  for (const [ring, counters] of Object.entries(snapshot.kernel)) counts[`kernel/${ring}`] = { lost: counters.lost };
  for (const output of snapshot.outputs) counts[`output/${output.name}`] = { ...output.dropped };
  for (const [rule, stats] of Object.entries(snapshot.engine.sequences)) counts[`rule/${rule}`] = { evicted: stats.evicted };
  // Evictions of remembered sockets or reported incidents are housekeeping; a candidate shell
  // dropped unjudged, or a look that stopped at its budget, is coverage lost.
  for (const [rule, state] of Object.entries(snapshot.engine.ruleState)) {
    counts[`rule/${rule}`] = { ...counts[`rule/${rule}`], abandoned: state.abandoned, incomplete: state.incomplete };
  }
  return counts;
}

interface Sample {
  rule: string;
  reason: string;
  pid: number;
  name?: string;
  destination?: string;
}

export interface CoverageMonitorOptions {
  /** Cumulative counts now (e.g. coverageCounts of the daemon's stats snapshot). */
  sample: () => CoverageCounts;
  /** Where a SENSOR-001 finding goes: every output. */
  emit: (finding: Finding) => void;
  hostName?: string;
  now?: () => number;
  windowMs?: number;
  /** How often the counters are checked (default 200 ms); also the least time between two checks poke() runs. */
  checkMs?: number;
  /**
   * The timer's interval (default checkMs). A caller that pokes the monitor on every batch of
   * events (the daemon) can set it longer: kernel records are lost only while records flow,
   * and then batches come at least every 100 ms, so the timer is only for what is lost
   * between batches (an output's drops, a program detached), without waking an idle event
   * loop five times a second (each wakeup costs about 170 µs of CPU on these machines).
   */
  timerMs?: number;
  /** false: no timer, the caller runs check() (tests). */
  timer?: boolean;
}

export class CoverageMonitor {
  readonly windowMs: number;
  readonly checkMs: number;
  private readonly now: () => number;
  private readonly hostName: string;
  private previous: CoverageCounts = {};
  private pending: CoverageCounts = {};
  private pendingTotal = 0;
  private pendingSinceMs = 0;
  private samples: Sample[] = [];
  private lastEmitMs = Number.NEGATIVE_INFINITY;
  private lastCheckMs = Number.NEGATIVE_INFINITY;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: CoverageMonitorOptions) {
    this.windowMs = options.windowMs ?? DEFAULT_COVERAGE_WINDOW_MS;
    this.checkMs = options.checkMs ?? DEFAULT_COVERAGE_CHECK_MS;
    this.now = options.now ?? Date.now;
    this.hostName = options.hostName ?? hostname();
  }

  /** Takes the counters as they are now as the baseline, and starts checking. */
  start(): void {
    this.previous = this.options.sample();
    if (this.options.timer !== false) this.timer = setInterval(() => this.check(), this.options.timerMs ?? this.checkMs).unref();
  }

  /** Checks now unless a check ran less than checkMs ago: called on every batch of events. */
  poke(): void {
    if (this.now() - this.lastCheckMs >= this.checkMs) this.check();
  }

  /** A loss the counters do not show: `count` of `reason` at `where` ("program/handle_exec", "detached"). */
  report(where: string, reason: string, count = 1): void {
    if (count <= 0) return;
    if (this.pendingTotal === 0) this.pendingSinceMs = this.now();
    const reasons = (this.pending[where] ??= {});
    reasons[reason] = (reasons[reason] ?? 0) + count;
    this.pendingTotal += count;
  }

  /** The findings to deliver: those of a flood-prone verdict are counted into the next SENSOR-001 instead. */
  absorb(findings: readonly Finding[]): Finding[] {
    const kept: Finding[] = [];
    for (const finding of findings) {
      const reason = floodProneReason(finding.sockeye);
      if (reason === undefined) {
        kept.push(finding);
        continue;
      }
      this.report(`rule/${finding.rule.id}`, reason);
      if (this.samples.length < MAX_SAMPLES)
        this.samples.push(sampleOf(finding.rule.id, reason, finding.process.pid, finding.process.name, finding.destination as Endpoint | undefined));
    }
    return kept;
  }

  /**
   * absorb() for a detection whose finding is not built yet (Engine.absorbWith): true when its
   * verdict is flood-prone, and so counted here instead.
   */
  absorbDetection(ruleId: string, detection: Detection, event: SensorEvent): boolean {
    const fields = detection.fields as { sockeye?: unknown; destination?: Endpoint } | undefined;
    const reason = floodProneReason(fields?.sockeye);
    if (reason === undefined) return false;
    this.report(`rule/${ruleId}`, reason);
    if (this.samples.length < MAX_SAMPLES) {
      const task = "task" in event ? event.task : undefined;
      this.samples.push(sampleOf(ruleId, reason, task?.pid ?? 0, task?.comm, fields?.destination));
    }
    return true;
  }

  /** Samples the counters; emits the window's finding when something was lost and the rate limit allows. */
  check(): void {
    this.lastCheckMs = this.now();
    this.collect();
    if (this.pendingTotal > 0 && this.now() - this.lastEmitMs >= this.windowMs - this.checkMs) this.flush();
  }

  /** Stops checking; what was lost since the last finding is reported now, whatever the rate limit. */
  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.collect();
    if (this.pendingTotal > 0) this.flush();
  }

  private collect(): void {
    const current = this.options.sample();
    // The same object as last time: nothing was read afresh, so nothing grew.
    if (current === this.previous) return;
    for (const [where, reasons] of Object.entries(current)) {
      for (const [reason, count] of Object.entries(reasons)) {
        const delta = count - (this.previous[where]?.[reason] ?? 0);
        if (delta > 0) this.report(where, reason, delta);
      }
    }
    this.previous = current;
  }

  private flush(): void {
    const nowMs = this.now();
    const finding = this.finding(nowMs);
    this.pending = {};
    this.pendingTotal = 0;
    this.samples = [];
    this.lastEmitMs = nowMs;
    this.options.emit(finding);
  }

  private finding(nowMs: number): Finding {
    const at = new Date(nowMs).toISOString();
    const meta = SENSOR_001_META;
    return {
      "@timestamp": at,
      event: { kind: "alert", id: newEventId(), category: ["host"], type: ["info"], action: "coverage_lost", created: at, module: "sockeye" },
      rule: ruleFields(meta),
      threat: ecsThreat(meta.threat),
      // The process that lost coverage: the sensor itself.
      process: {
        pid: process.pid,
        name: basename(process.argv[1] ?? process.execPath),
        executable: process.execPath,
        args: [...process.argv],
        thread: { id: process.pid },
        parent: { pid: process.ppid },
      },
      user: { id: String(process.getuid?.() ?? 0) },
      group: { id: String(process.getgid?.() ?? 0) },
      host: { name: this.hostName, os: { type: "linux" } },
      sockeye: {
        event: { kind: "coverage_lost" },
        cgroup_id: 0,
        coverage: {
          since: new Date(this.pendingSinceMs).toISOString(),
          total: this.pendingTotal,
          lost: this.pending,
          ...(this.samples.length > 0 ? { samples: this.samples } : {}),
        },
      },
    };
  }
}

function floodProneReason(sockeye: unknown): string | undefined {
  const reason = (sockeye as { verdict?: { reason?: unknown } } | undefined)?.verdict?.reason;
  return typeof reason === "string" && FLOOD_PRONE_REASONS.has(reason) ? reason : undefined;
}

interface Endpoint {
  ip?: string;
  port?: number;
}

function sampleOf(rule: string, reason: string, pid: number, name: string | undefined, destination: Endpoint | undefined): Sample {
  return {
    rule,
    reason,
    pid,
    ...(name !== undefined ? { name } : {}),
    ...(destination?.ip !== undefined ? { destination: `${destination.ip}:${destination.port ?? ""}` } : {}),
  };
}
