/**
 * The one place where events become findings. A batch of decoded events goes through the
 * engine (the process table first, then the rules subscribed to each kind), and the findings
 * go to the outputs, the events too to any output that records them. `sockeye run` attaches
 * it to the live sensor, `sockeye replay` runs it over a capture, and a user's agent does
 * either; none of them has a loop of its own.
 *
 * A reload swaps the rules and the outputs together between two batches, so every later
 * event meets the new ones and none is lost; what retired outputs delivered and dropped
 * stays in the totals of stats().
 */
import { Engine, type EngineOptions, type EngineStats } from "../engine/engine.js";
import type { Finding } from "../engine/finding.js";
import type { AnyRule } from "../engine/rule.js";
import type { EventOutput } from "../output/event-lines.js";
import { addOutputStats, type FlushResult, type OutputStats } from "../output/output.js";
import { OutputSet } from "../output/output-set.js";
import { OptionError } from "../errors.js";
import type { SeedReport } from "../process/table.js";
import type { SensorEvent } from "../sensor/events.js";
import type { ProcessView } from "../process/process-view.js";
import type { CoverageMonitor } from "./coverage.js";

export interface PipelineOptions extends EngineOptions {
  /** Where findings (and events, for its event outputs) go; swapped by reload(). Default: none. */
  outputs?: OutputSet;
  /** Event outputs for the pipeline's whole life, untouched by reload() (a capture file). */
  recorders?: readonly EventOutput[];
  /** Acts on each batch's findings before they are delivered (src/enforce/), and annotates them. */
  enforcer?: FindingEnforcer;
}

/** What the pipeline asks of an enforcer: act on findings, return any findings of its own (SENSOR-002). */
export interface FindingEnforcer {
  act(findings: Finding[], processes: ProcessView): Finding[];
}

export interface PipelineStats {
  engine: EngineStats;
  /** Every output's totals by name, those of outputs retired by reloads added in. */
  outputs: OutputStats[];
  /** Events an attached source delivered that wait for their slice of the event loop. */
  backlogEvents: number;
}

export interface RunReport {
  events: number;
  findings: number;
}

/** What a source of batches offers: Sensor.subscribe(). */
export interface BatchSource {
  subscribe(listener: (events: SensorEvent[]) => void): () => void;
}

/**
 * A live source's batch is worked through in slices of at most SLICE_MS, the rest left for
 * the next turn of the event loop: a flood's batch (the reader hands over up to 4 MiB at a
 * time) would otherwise hold timers, the status endpoint and the outputs' sockets for as long
 * as it takes (issue 25: 14,000 decoys pushed the loop's p99 delay to 50 ms).
 */
const SLICE_MS = 8;
/** Events per process() call within a slice: the clock is read between chunks. */
const CHUNK_EVENTS = 64;
/**
 * Past this many events waiting, the backlog is worked through at once: JavaScript falling
 * that far behind must slow the reader (its queue fills, then the kernel rings, whose losses
 * are counted), not grow memory without bound.
 */
const MAX_BACKLOG_EVENTS = 262_144;

export class Pipeline {
  readonly engine: Engine;
  private outputs_: OutputSet;
  private readonly recorders: readonly EventOutput[];
  private readonly enforcer: FindingEnforcer | undefined;
  private readonly retired = new Map<string, OutputStats>();
  private coverage: CoverageMonitor | undefined;
  private unsubscribe: (() => void) | undefined;
  /** The attached source's batches not yet processed, oldest first, and where the first stands. */
  private readonly backlog: SensorEvent[][] = [];
  private backlogOffset = 0;
  private backlogEvents = 0;
  private sliceScheduled = false;
  /** When this turn of the event loop's slice ends; undefined until a batch comes in it. */
  private turnDeadline: number | undefined;

  constructor(options: PipelineOptions) {
    const { outputs, recorders, enforcer, ...engineOptions } = options;
    this.enforcer = enforcer;
    this.engine = new Engine(engineOptions);
    this.outputs_ = outputs ?? new OutputSet([]);
    this.recorders = [...(recorders ?? [])];
  }

  get outputs(): OutputSet {
    return this.outputs_;
  }

  get rules(): readonly AnyRule[] {
    return this.engine.rules;
  }

  /**
   * Opens the outputs and recorders; all or nothing: on a failure those already open are
   * closed and the error (an OutputError naming the output) is thrown.
   */
  async open(): Promise<void> {
    const recorders = new OutputSet([], this.recorders);
    await recorders.open();
    try {
      await this.outputs_.open();
    } catch (error) {
      await recorders.close(0);
      throw error;
    }
  }

  /** One batch: through the table and the rules, then to the outputs. Returns the findings. */
  process(events: readonly SensorEvent[]): Finding[] {
    const findings: Finding[] = [];
    for (const event of events) {
      for (const finding of this.engine.handle(event)) findings.push(finding);
    }
    // Before delivery: what was done is part of the finding.
    if (this.enforcer !== undefined && findings.length > 0) findings.push(...this.enforcer.act(findings, this.engine.processes));
    for (const recorder of this.recorders) recorder.write(events);
    this.outputs_.writeEvents(events);
    const delivered = this.coverage?.absorb(findings) ?? findings;
    this.outputs_.write(delivered);
    return delivered;
  }

  /**
   * Between batches: the rules judge again the candidates a timed-out host look left
   * undecided (Engine.reconsider), once the host has the answer; findings go out like a batch's.
   */
  reconsider(): Finding[] {
    const findings = this.engine.reconsider();
    if (findings.length === 0) return findings;
    // Enforced like a batch's: a relay judged late is still a relay to stop.
    if (this.enforcer !== undefined) findings.push(...this.enforcer.act(findings, this.engine.processes));
    const delivered = this.coverage?.absorb(findings) ?? findings;
    this.outputs_.write(delivered);
    return delivered;
  }

  /** From now on, flood-prone findings are counted into `monitor`'s SENSOR-001 instead of delivered one by one. */
  watchCoverage(monitor: CoverageMonitor): void {
    this.coverage = monitor;
    // Their findings are not even built: with no enforcer to act on them, nothing reads them
    // before absorb() would take them.
    if (this.enforcer === undefined) this.engine.absorbWith((ruleId, detection, event) => monitor.absorbDetection(ruleId, detection, event));
  }

  /**
   * On a live host, before attach(): seeds the process table from /proc, then runs one
   * already_running event per process found through the rules (as Elastic Defend reports the
   * processes running when it starts), to the outputs and recorders like any batch.
   */
  seedFromProc(): SeedReport {
    const report = this.engine.processes.seedFromProc();
    this.process(report.alreadyRunning);
    return report;
  }

  /**
   * Feeds every batch `source` delivers (a live sensor) from now on, until detach() or
   * close(). One source at a time: attaching a second one throws.
   */
  attach(source: BatchSource): void {
    if (this.unsubscribe !== undefined) throw new OptionError("this pipeline is already attached to a source: detach() it first");
    this.unsubscribe = source.subscribe((events) => this.take(events));
  }

  /**
   * Stops taking batches from the attached source, once those it already delivered are
   * processed (at once); nothing happens when none is attached.
   */
  detach(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    this.work(Number.POSITIVE_INFINITY);
  }

  /**
   * A batch from the attached source. The sensor hands over every batch queued since the last
   * turn in one go, so the budget is the turn's, not the batch's: processed while this turn's
   * SLICE_MS lasts, the rest on later turns, in order.
   */
  private take(events: SensorEvent[]): void {
    if (events.length === 0) return;
    this.backlog.push(events);
    this.backlogEvents += events.length;
    if (this.backlogEvents > MAX_BACKLOG_EVENTS) this.work(Number.POSITIVE_INFINITY);
    else this.work(this.turnDeadline ??= performance.now() + SLICE_MS);
  }

  /** Processes the backlog in order until `deadline` (performance.now()), at least one chunk when none was this turn. */
  private work(deadline: number): void {
    while (this.backlog.length > 0 && performance.now() < deadline) {
      const batch = this.backlog[0]!;
      const end = Math.min(batch.length, this.backlogOffset + CHUNK_EVENTS);
      const chunk = this.backlogOffset === 0 && end === batch.length ? batch : batch.slice(this.backlogOffset, end);
      this.backlogOffset = end;
      this.backlogEvents -= chunk.length;
      if (end === batch.length) {
        this.backlog.shift();
        this.backlogOffset = 0;
      }
      this.process(chunk);
    }
    // The next turn gets a new budget, and goes on with what is left.
    if (this.sliceScheduled) return;
    this.sliceScheduled = true;
    setImmediate(() => {
      this.sliceScheduled = false;
      this.turnDeadline = undefined;
      if (this.backlog.length > 0) this.work((this.turnDeadline = performance.now() + SLICE_MS));
    });
  }

  /**
   * Feeds a sequence of events (a capture, a test's stream), each as soon as it comes, and
   * hands every finding to `onFinding` as well as to the outputs.
   */
  async run(events: Iterable<SensorEvent> | AsyncIterable<SensorEvent>, onFinding?: (finding: Finding) => void): Promise<RunReport> {
    const report: RunReport = { events: 0, findings: 0 };
    for await (const event of events) {
      report.events++;
      for (const finding of this.process([event])) {
        report.findings++;
        onFinding?.(finding);
      }
    }
    return report;
  }

  /**
   * Swaps in new rules and outputs. The new outputs are opened first: when they cannot be,
   * or the rules cannot run together (two share an id), this rejects and nothing changed.
   * Then both are swapped in one step, and the previous outputs flushed and closed; their
   * flush results are returned.
   */
  async reload(next: { rules: readonly AnyRule[]; outputs: OutputSet }): Promise<Record<string, FlushResult>> {
    await next.outputs.open();
    try {
      this.engine.setRules(next.rules);
    } catch (error) {
      await next.outputs.close(0);
      throw error;
    }
    const previous = this.outputs_;
    this.outputs_ = next.outputs;
    const flushed = await previous.close();
    for (const stats of previous.stats()) {
      const earlier = this.retired.get(stats.name);
      this.retired.set(stats.name, earlier !== undefined ? addOutputStats(earlier, stats) : stats);
    }
    return flushed;
  }

  stats(): PipelineStats {
    return { engine: this.engine.stats(), outputs: this.outputTotals(), backlogEvents: this.backlogEvents };
  }

  /** What coverageCounts() reads of stats(), without the event and finding counts: cheap enough for several checks a second. */
  lossStats(): Pick<PipelineStats, "outputs"> & { engine: Pick<EngineStats, "sequences" | "ruleState"> } {
    return { engine: this.engine.ruleStats(), outputs: this.outputTotals() };
  }

  recorderStats(): OutputStats[] {
    return this.recorders.map((recorder) => recorder.stats());
  }

  /**
   * Detaches from its source, then flushes and closes the outputs and recorders under one
   * deadline; results by output name. Close the sensor first, so its last batches get here.
   */
  async close(timeoutMs?: number): Promise<Record<string, FlushResult>> {
    this.detach();
    const [flushed, recorded] = await Promise.all([this.outputs_.close(timeoutMs), new OutputSet([], this.recorders).close(timeoutMs)]);
    return { ...flushed, ...recorded };
  }

  private outputTotals(): OutputStats[] {
    const current = this.outputs_.stats();
    if (this.retired.size === 0) return current;
    const names = new Set(current.map((stats) => stats.name));
    return [
      ...current.map((stats) => {
        const earlier = this.retired.get(stats.name);
        return earlier !== undefined ? addOutputStats(earlier, stats) : stats;
      }),
      ...[...this.retired.values()].filter((stats) => !names.has(stats.name)),
    ];
  }
}
