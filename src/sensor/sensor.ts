/**
 * The public sensor: load and attach the kernel programs, then hand out typed events, either
 * to subscribers (one call per batch) or to a `for await` loop.
 */
import { loadBinding, type NativeCandidate, type NativeFeatures, type NativeSensor, type SensorScheduling } from "./binding.js";
import { decodeBatch, monotonicToWallOffsetNs, type DecodeDropReason } from "./decode.js";
import type { SensorEvent } from "./events.js";
import { DROP_REASONS, HOOKS, RINGS, type HookName, type RingDropReason, type RingName } from "./layout.js";
import type { SockeyeErrorCode } from "../errors.js";
import { SensorError, sensorErrorCode } from "./errors.js";
import { parseSensorOptions, type ProbeOptions, type SensorOptions } from "./options.js";
import { SHELL_NAMES } from "./shells.js";

export type { ProbeOptions, SensorOptions } from "./options.js";

export interface HookCounters {
  emitted: number;
  lost: number;
  errors: number;
}

/** Records the kernel dropped on their way into one ring: in all, and by reason. */
export interface RingDrops {
  total: number;
  byReason: Record<RingDropReason, number>;
}

/** What the enforcing kernel programs did (docs/enforcement.md); zeros when they are not loaded. */
export interface EnforceActions {
  /** Execs refused by the BPF LSM (bprm_check_security). */
  execDenied: number;
  /** Interpreters killed at sched_process_exec. */
  execKilled: number;
  /** Interpreters killed at the exit of the dup that completed the shape. */
  dupKilled: number;
  /** bpf_send_signal refused (the task was exiting, or a kernel thread). */
  signalFailed: number;
}

/** What checkAttached() found: the BPF programs still attached, and those no longer, with why. */
export interface AttachCheck {
  /** The BPF programs still attached, by name (e.g. "handle_exec"). */
  attached: string[];
  /** The programs found detached, each with what the check saw. */
  detached: { program: string; reason: string }[];
}

export interface SensorStats {
  batches: number;
  events: number;
  decodeDropped: Partial<Record<DecodeDropReason, number>>;
  iteratorDropped: number;
  /** Records lost at close because JavaScript was far behind (the queue to it was full). */
  droppedAtClose: number;
}

/**
 * Called with each batch of decoded events, in order, and how long (ms) the batch waited for
 * the event loop after the reader thread queued it: the loop's lag as that batch felt it
 * (0 for the empty batch that marks close()).
 */
export type BatchListener = (events: SensorEvent[], waitedMs: number) => void;

export class Sensor {
  /** Every candidate program tried, per capability, in order of preference. */
  readonly programs: NativeCandidate[];
  /** What the kernel offers, and what the sensor did to the system to run (mounts). */
  readonly features: NativeFeatures;
  private readonly native: NativeSensor;
  private readonly listeners = new Set<BatchListener>();
  private readonly clockOffsetNs = monotonicToWallOffsetNs();
  private started = false;
  private closed = false;
  private readonly stats_: SensorStats = { batches: 0, events: 0, decodeDropped: {}, iteratorDropped: 0, droppedAtClose: 0 };
  private readonly iteratorQueueLimit: number;

  /** Loads and attaches; throws SensorError. Use openSensorSync(). @internal */
  constructor(options: SensorOptions = {}) {
    const { iteratorQueueLimit, ...native } = validOptions(options);
    this.iteratorQueueLimit = iteratorQueueLimit ?? 1_000_000;
    const binding = loadBinding();
    this.native = new binding.Sensor({ ...native, wakeupShells: SHELL_NAMES }, (buffer, _records, waitedMs) => this.onBatch(buffer, waitedMs));
    this.programs = this.native.report();
    this.features = this.native.features() as NativeFeatures;
  }

  /** Which program serves each capability (live) and why the others were passed over. */
  liveProgram(capability: string): string | undefined {
    return this.programs.find((p) => p.capability === capability && p.live)?.program;
  }

  /** Called with every batch of decoded events; reading starts with the first subscriber. */
  subscribe(listener: BatchListener): () => void {
    this.listeners.add(listener);
    this.start();
    return () => this.listeners.delete(listener);
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<SensorEvent> {
    const queue: SensorEvent[] = [];
    let wake: (() => void) | undefined;
    const unsubscribe = this.subscribe((events) => {
      const room = this.iteratorQueueLimit - queue.length;
      if (events.length > room) this.stats_.iteratorDropped += events.length - Math.max(room, 0);
      for (let i = 0; i < Math.min(events.length, room); i++) queue.push(events[i]!);
      wake?.();
    });
    try {
      while (!this.closed || queue.length) {
        if (!queue.length) {
          await new Promise<void>((resolve) => (wake = resolve));
          wake = undefined;
          continue;
        }
        yield* queue.splice(0, queue.length);
      }
    } finally {
      unsubscribe();
    }
  }

  /** Kernel-side counters per hook, summed over CPUs; after close(), the totals at close. */
  counters(): Record<HookName, HookCounters> {
    const flat = this.native.counters();
    const out = {} as Record<HookName, HookCounters>;
    HOOKS.forEach((hook, i) => {
      out[hook] = { emitted: flat[i * 3] ?? 0, lost: flat[i * 3 + 1] ?? 0, errors: flat[i * 3 + 2] ?? 0 };
    });
    return out;
  }

  /**
   * Every record the kernel lost (ring full) or its admission turned away, plus every record
   * the decoder dropped, as one number: it grows whenever coverage is lost. A cheap check
   * (two map reads, no objects) before reading counters() and ringDrops() in full.
   */
  lostTotal(): number {
    const counters = this.native.counters();
    let total = 0;
    for (let i = 1; i < counters.length; i += 3) total += counters[i]!;
    for (const n of this.native.ringDrops()) total += n;
    for (const n of Object.values(this.stats_.decodeDropped)) total += n;
    return total;
  }

  /**
   * Records the kernel dropped, per ring and reason (bpf/sockeye_events.h enum
   * sockeye_drop_reason): lost coverage, for a finding or a metric. After close(), the totals
   * at close.
   */
  ringDrops(): Record<RingName, RingDrops> {
    const flat = this.native.ringDrops();
    const out = {} as Record<RingName, RingDrops>;
    RINGS.forEach((ring, r) => {
      const byReason = {} as Record<RingDropReason, number>;
      let total = 0;
      DROP_REASONS.forEach((reason, i) => {
        const n = flat[r * DROP_REASONS.length + i] ?? 0;
        byReason[reason] = n;
        total += n;
      });
      out[ring] = { total, byReason };
    });
    return out;
  }

  /** What the enforcing programs did so far; after close(), the totals at close. */
  enforceActions(): EnforceActions {
    const [execDenied = 0, execKilled = 0, dupKilled = 0, signalFailed = 0] = this.native.enforceActions();
    return { execDenied, execKilled, dupKilled, signalFailed };
  }

  /**
   * Whether every BPF program is still attached: one syscall per program, cheap enough to run
   * every few seconds. A program found detached (its link closed, released or replaced) is
   * blind coverage, for a finding or a metric. After close(), nothing is attached.
   */
  checkAttached(): AttachCheck {
    const check: AttachCheck = { attached: [], detached: [] };
    for (const { program, problem } of this.native.checkAttached()) {
      if (problem === "") check.attached.push(program);
      else check.detached.push({ program, reason: problem });
    }
    return check;
  }

  stats(): SensorStats {
    return { ...this.stats_, decodeDropped: { ...this.stats_.decodeDropped }, droppedAtClose: this.native.droppedAtClose() };
  }

  /** How the reader and event loop threads are scheduled; null before the first subscriber. */
  scheduling(): SensorScheduling | null {
    return this.native.scheduling();
  }

  /** Whether a live sensor keeps Node's event loop alive (default: it does). */
  ref(): void { this.native.ref(); }
  unref(): void { this.native.unref(); }

  /**
   * Detaches every program at once (no event is read after the call), drains what is still
   * in the rings, and resolves once those last batches have reached the subscribers, so
   * outputs flushed after it miss nothing. The detach itself runs inside the call and holds
   * the event loop (about half a second on the CI machine kind). Idempotent.
   */
  async close(): Promise<void> {
    if (!this.closed) {
      this.native.close();
      this.closed = true;
      for (const l of this.listeners) l([], 0);
    }
    // The reader signalled the thread-safe function before native close() returned: a timer
    // then an immediate span one whole poll phase of the loop, where those queued calls run.
    await new Promise<void>((resolve) => setTimeout(() => setImmediate(resolve), 0));
  }

  private start(): void {
    if (this.started || this.closed) return;
    this.started = true;
    this.native.start();
  }

  private onBatch(buffer: ArrayBuffer, waitedMs: number): void {
    const { events, dropped } = decodeBatch(buffer, this.clockOffsetNs);
    // A batch holds the three rings one after another: put it back in kernel time order, so a
    // process's exec and fork reach the process table before its dups do. Most batches are
    // in order already (one ring, or records of one CPU): a pass to check costs less than a
    // sort's comparator calls.
    if (!inTimeOrder(events)) events.sort((a, b) => a.timeNs - b.timeNs);
    this.stats_.batches++;
    this.stats_.events += events.length;
    for (const [reason, n] of Object.entries(dropped) as [DecodeDropReason, number][])
      this.stats_.decodeDropped[reason] = (this.stats_.decodeDropped[reason] ?? 0) + n;
    for (const l of this.listeners) l(events, waitedMs);
  }
}

function inTimeOrder(events: SensorEvent[]): boolean {
  for (let i = 1; i < events.length; i++) if (events[i]!.timeNs < events[i - 1]!.timeNs) return false;
  return true;
}

/**
 * Loads and attaches the kernel programs, synchronously: the kernel verifies each program on
 * this thread, which blocks the event loop for the whole load (tens to hundreds of ms, more
 * on a loaded host). Open the sensor before serving anything latency-bound. Throws
 * SensorError.
 */
export function openSensorSync(options: SensorOptions = {}): Sensor {
  return new Sensor(options);
}

export interface ProbeReport {
  features: NativeFeatures;
  candidates: NativeCandidate[];
  /** Why the programs would not load here; `code` as SensorError's. */
  error: { code: SockeyeErrorCode; errno: number; message: string } | null;
}

/** Loads, attaches and detaches at once (synchronously): which program would serve each capability here. */
export function probe(options: ProbeOptions = {}): ProbeReport {
  const report = loadBinding().probe({ ...validOptions(options), wakeupShells: SHELL_NAMES });
  return { ...report, error: report.error === null ? null : { ...report.error, code: sensorErrorCode(report.error.code) } };
}

function validOptions(options: SensorOptions): SensorOptions {
  const parsed = parseSensorOptions(options);
  if (!parsed.ok) throw new SensorError(parsed.problem, "BAD_OPTION");
  return parsed.options;
}
