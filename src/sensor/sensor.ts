/**
 * The public sensor: load and attach the kernel programs, then hand out typed events, either
 * to subscribers (one call per batch) or to a `for await` loop.
 */
import { loadBinding, type NativeCandidate, type NativeFeatures, type NativeOptions, type NativeSensor, type SensorScheduling } from "./binding.js";
import { decodeBatch, monotonicToWallOffsetNs, type DecodeDropReason } from "./decode.js";
import type { SensorEvent } from "./events.js";
import { HOOKS, type HookName } from "./layout.js";
import { SensorError } from "./errors.js";

export interface SensorOptions {
  /** Highest fd that counts as stdio for connect and dup filtering in the kernel (default 2). */
  stdioFdMax?: number;
  /** Report connects on every fd, not only stdio ones (more volume; default false). */
  connectAllFds?: boolean;
  /** Ring for connect and socket_dup records, bytes, power of two (default 512 KiB). */
  detectionRingBytes?: number;
  /** Ring for exec, fork and exit records, bytes, power of two (default 2 MiB). */
  processRingBytes?: number;
  /**
   * At most one reader wakeup per ring per CPU in this many µs (default 250): under a stream
   * of events, records between wakeups are read by polling, at most about this late. An
   * isolated event (a real detection) still wakes the reader at once. 0 = wake on every record.
   */
  wakeupIntervalUs?: number;
  /**
   * Run the thread that drains the ring buffers under SCHED_RR at priority 1 (default true),
   * so that a host whose CPUs are all busy (or an attacker flooding it) cannot keep it from
   * reading in time. Its work is bounded and it sleeps between reads. Where real-time
   * scheduling is refused (e.g. a cgroup without an RT budget) it runs normally:
   * readerScheduling() says which.
   */
  readerRealtime?: boolean;
  /**
   * Run the calling thread, the event loop where rules run and findings are written, under
   * SCHED_RR 1 while it uses under a fifth of a CPU, and normally as soon as it uses over half
   * (checked every 250 ms by the reader thread; real time again after 5 s calm). Detection
   * latency then stays low on a busy host without a flood ever making the event loop a
   * real-time CPU hog. Default false: the event loop is the application's; `sockeye run` turns
   * it on. Restored to normal scheduling at close.
   */
  eventLoopRealtime?: boolean;
  /**
   * Also watch ia32 syscalls: 32-bit binaries and 64-bit ones using int $0x80, which syscall
   * tracepoints skip (an attacker's way past dup detection, and past connect where connect
   * runs on its tracepoint fallback). Costs one more program on every syscall of the host
   * (about 90 ns each on the bench machine). Default false; x86-64 only.
   */
  compatSyscalls?: boolean;
  /** Candidate programs not to try, e.g. ["lsm/socket_connect"] to force a fallback. */
  skipCandidates?: string[];
  /** Events a `for await` loop may fall behind by before new ones are dropped and counted. */
  iteratorQueueLimit?: number;
}

export interface HookCounters {
  emitted: number;
  lost: number;
  errors: number;
}

export interface SensorStats {
  batches: number;
  events: number;
  decodeDropped: Partial<Record<DecodeDropReason, number>>;
  iteratorDropped: number;
  /** Records lost at close because JavaScript was far behind (the queue to it was full). */
  droppedAtClose: number;
}

export type BatchListener = (events: SensorEvent[]) => void;

function checkOptions(o: SensorOptions): void {
  const pow2 = (n: number) => Number.isInteger(n) && n >= 4096 && (n & (n - 1)) === 0;
  if (o.stdioFdMax !== undefined && !(Number.isInteger(o.stdioFdMax) && o.stdioFdMax >= 0 && o.stdioFdMax < 1024))
    throw new SensorError(`stdioFdMax must be an integer from 0 to 1023, got ${o.stdioFdMax}`, "BAD_OPTION");
  if (o.wakeupIntervalUs !== undefined && !(Number.isInteger(o.wakeupIntervalUs) && o.wakeupIntervalUs >= 0 && o.wakeupIntervalUs <= 100_000))
    throw new SensorError(`wakeupIntervalUs must be an integer from 0 to 100000, got ${o.wakeupIntervalUs}`, "BAD_OPTION");
  for (const key of ["readerRealtime", "eventLoopRealtime", "compatSyscalls", "connectAllFds"] as const) {
    if (o[key] !== undefined && typeof o[key] !== "boolean")
      throw new SensorError(`${key} must be true or false, got ${String(o[key])}`, "BAD_OPTION");
  }
  for (const key of ["detectionRingBytes", "processRingBytes"] as const) {
    const v = o[key];
    if (v !== undefined && !pow2(v))
      throw new SensorError(`${key} must be a power of two of at least 4096, got ${v}`, "BAD_OPTION");
  }
}

export class Sensor {
  readonly programs: NativeCandidate[];
  readonly features: NativeFeatures;
  private readonly native: NativeSensor;
  private readonly listeners = new Set<BatchListener>();
  private readonly clockOffsetNs = monotonicToWallOffsetNs();
  private started = false;
  private closed = false;
  private readonly stats_: SensorStats = { batches: 0, events: 0, decodeDropped: {}, iteratorDropped: 0, droppedAtClose: 0 };
  private readonly iteratorQueueLimit: number;

  /** Loads and attaches; throws SensorError. Prefer openSensor(). */
  constructor(options: SensorOptions = {}) {
    checkOptions(options);
    const native: NativeOptions = {};
    if (options.stdioFdMax !== undefined) native.stdioFdMax = options.stdioFdMax;
    if (options.connectAllFds !== undefined) native.connectAllFds = options.connectAllFds;
    if (options.detectionRingBytes !== undefined) native.detectionRingBytes = options.detectionRingBytes;
    if (options.processRingBytes !== undefined) native.processRingBytes = options.processRingBytes;
    if (options.wakeupIntervalUs !== undefined) native.wakeupIntervalUs = options.wakeupIntervalUs;
    if (options.skipCandidates !== undefined) native.skipCandidates = options.skipCandidates;
    if (options.readerRealtime !== undefined) native.readerRealtime = options.readerRealtime;
    if (options.eventLoopRealtime !== undefined) native.eventLoopRealtime = options.eventLoopRealtime;
    if (options.compatSyscalls !== undefined) native.compatSyscalls = options.compatSyscalls;
    this.iteratorQueueLimit = options.iteratorQueueLimit ?? 1_000_000;
    const binding = loadBinding();
    this.native = new binding.Sensor(native, (buffer) => this.onBatch(buffer));
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

  /** Delivers what is still in the rings, detaches every program. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.native.close();
    this.closed = true;
    for (const l of this.listeners) l([]);
  }

  /**
   * close(), then waits until the last batches that close() drained from the rings have
   * reached the subscribers: they come through the event loop after close() returns, so a
   * daemon that flushes its outputs right after close() would miss them.
   */
  async shutdown(): Promise<void> {
    this.close();
    // The reader signalled the thread-safe function before close() returned: a timer then an
    // immediate span one whole poll phase of the loop, where those queued calls run.
    await new Promise<void>((resolve) => setTimeout(() => setImmediate(resolve), 0));
  }

  private start(): void {
    if (this.started || this.closed) return;
    this.started = true;
    this.native.start();
  }

  private onBatch(buffer: ArrayBuffer): void {
    const { events, dropped } = decodeBatch(buffer, this.clockOffsetNs);
    // A batch holds both rings one after the other: put it back in kernel time order, so a
    // process's exec and fork reach the process table before its dups do. Most batches are
    // in order already (one ring, or records of one CPU): a pass to check costs less than a
    // sort's comparator calls.
    if (!inTimeOrder(events)) events.sort((a, b) => a.timeNs - b.timeNs);
    this.stats_.batches++;
    this.stats_.events += events.length;
    for (const [reason, n] of Object.entries(dropped) as [DecodeDropReason, number][])
      this.stats_.decodeDropped[reason] = (this.stats_.decodeDropped[reason] ?? 0) + n;
    for (const l of this.listeners) l(events);
  }
}

function inTimeOrder(events: SensorEvent[]): boolean {
  for (let i = 1; i < events.length; i++) if (events[i]!.timeNs < events[i - 1]!.timeNs) return false;
  return true;
}

export async function openSensor(options: SensorOptions = {}): Promise<Sensor> {
  return new Sensor(options);
}

export interface ProbeReport {
  features: NativeFeatures;
  candidates: NativeCandidate[];
  error: { code: string; errno: number; message: string } | null;
}

/** Loads, attaches and detaches at once: which program would serve each capability here. */
export function probe(options: Pick<SensorOptions, "skipCandidates" | "compatSyscalls"> = {}): ProbeReport {
  const native: NativeOptions = {};
  if (options.skipCandidates) native.skipCandidates = options.skipCandidates;
  if (options.compatSyscalls) native.compatSyscalls = true;
  return loadBinding().probe(native);
}
