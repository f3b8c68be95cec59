/**
 * Every output with a queue (stream, file, syslog, webhook) shares this: a bounded queue of
 * lines in front of one slow writer (a pipe, a file, a socket, an HTTP endpoint).
 *
 * One chunk is in flight at a time; lines that arrive meanwhile wait here, up to the queue's
 * bound (bytes for streams, files and syslog; lines for the webhook, whose server takes
 * batches of findings). Past it lines are dropped and counted: memory stays bounded however
 * slow the reader of stdout, the disk or the server is, and the order of what is delivered
 * is the order of arrival.
 *
 * What is dropped is chosen so that a flood of decoys cannot push out a real detection: a
 * finding of an incident the output already took (same process.entity_id) outranks every
 * other, then higher severity outranks lower; a line makes room by dropping the newest
 * waiting line of the lowest rank below its own, or is dropped itself.
 */
import type { Finding } from "../engine/finding.js";
import {
  DEFAULT_FLUSH_TIMEOUT_MS,
  OutputCounters,
  sleep,
  type FindingOutput,
  type FlushResult,
  type OutputDropReason,
  type OutputStats,
} from "./output.js";
import { OptionError } from "../errors.js";

export interface QueuedLine {
  /** The text as delivered: a newline ends it for streams and files, not for datagrams. */
  text: string;
  bytes: number;
}

/** How a sink reports each line's fate; every line handed to it is reported once. */
export interface LineProgress {
  delivered(count: number): void;
  /** Counted as `reason` (default write_error), unless a flush already gave up on them. */
  failed(count: number, error: unknown, reason?: DeliveryFailure): void;
}

/** The drop reasons a sink may report; the queue itself counts the others. */
export type DeliveryFailure = Extract<OutputDropReason, "write_error" | "http_rejected" | "retries_exhausted">;

/**
 * Delivers a chunk of lines. A rejection means the lines not yet reported failed. `signal`
 * aborts when a flush gives up on the chunk; a sink that can stop early (a retry loop) should.
 */
type LineSink = (lines: readonly QueuedLine[], progress: LineProgress, signal: AbortSignal) => Promise<void>;

export interface LineQueueLimits {
  /** Bytes of text waiting, beyond the chunk in flight (default 8 MiB). */
  maxBufferedBytes?: number;
  /** Lines waiting, beyond the chunk in flight (default: no bound but the bytes). */
  maxLines?: number;
  /** Lines per chunk handed to the sink (default: everything waiting). */
  maxChunk?: number;
}

/** A waiting line and its rank: what a fuller queue drops first (see the head comment). */
interface PendingLine extends QueuedLine {
  rank: number;
}

const SEVERITY_RANK: Readonly<Record<string, number>> = { low: 0, medium: 1, high: 2, critical: 3 };
const STARTED_INCIDENT_RANK = 4;
const RANKS = 8;
/** Incidents remembered as started; the oldest is forgotten past this. */
const MAX_STARTED_INCIDENTS = 4096;

/** The rank of a finding and the incident it belongs to. */
export interface LinePriority {
  severity: string;
  incident: string | undefined;
}

export function linePriority(finding: Finding): LinePriority {
  return { severity: finding.rule.severity, incident: finding.process.entity_id ?? finding.sockeye.fold_key };
}

/**
 * Ranks by the head comment's order (0 … RANKS - 1): an incident the output already took,
 * then severity. A memory queue and a spool (spooled-output.ts) rank the same way.
 */
export class IncidentRanks {
  static readonly count = RANKS;
  private readonly started = new Set<string>();

  rank(priority: LinePriority | undefined): number {
    if (priority === undefined) return 0;
    const started = priority.incident !== undefined && this.started.has(priority.incident);
    return (SEVERITY_RANK[priority.severity] ?? 0) + (started ? STARTED_INCIDENT_RANK : 0);
  }

  /** The output took a finding of this incident: its later ones outrank the rest. */
  start(incident: string): void {
    this.started.delete(incident);
    this.started.add(incident);
    if (this.started.size > MAX_STARTED_INCIDENTS) this.started.delete(this.started.values().next().value!);
  }
}

interface Flight {
  count: number;
  /** Lines already reported delivered or failed. */
  settled: number;
  /** Counted as flush_timeout already; its late outcome must not be counted again. */
  abandoned: boolean;
  readonly controller: AbortController;
}

const DEFAULT_MAX_BUFFERED_BYTES = 8 * 1024 * 1024;

/** Flushes waiting for a delivery loop to run dry, each with its own deadline. */
export class IdleWaiters {
  private waiters: (() => void)[] = [];

  /** Resolves true once `isIdle()` holds (checked now and at each wake()), false at the deadline. */
  async wait(isIdle: () => boolean, timeoutMs: number): Promise<boolean> {
    if (isIdle()) return true;
    const deadline = new AbortController();
    const woken = new Promise<void>((resolve) => this.waiters.push(resolve)).then(() => deadline.abort());
    await Promise.race([woken, sleep(timeoutMs, deadline.signal)]);
    return isIdle();
  }

  /** Called by the delivery loop when it has nothing left to do. */
  wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const resolve of waiters) resolve();
  }
}

class LineQueue {
  private pending: PendingLine[] = [];
  private pendingBytes = 0;
  private readonly waitingByRank = new Array<number>(RANKS).fill(0);
  private readonly incidents = new IncidentRanks();
  private flight: Flight | undefined;
  private readonly idleWaiters = new IdleWaiters();
  private readonly maxBufferedBytes: number;
  private readonly maxLines: number;
  private readonly maxChunk: number;

  constructor(
    private readonly counters: OutputCounters,
    private readonly sink: LineSink,
    limits: LineQueueLimits,
  ) {
    this.maxBufferedBytes = limits.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES;
    this.maxLines = limits.maxLines ?? Number.POSITIVE_INFINITY;
    this.maxChunk = limits.maxChunk ?? Number.POSITIVE_INFINITY;
    for (const [limit, value] of [["maxBufferedBytes", this.maxBufferedBytes], ["maxLines", this.maxLines], ["maxChunk", this.maxChunk]] as const) {
      if (!(value > 0)) throw new OptionError(`${limit} must be positive, got ${value}`);
    }
  }

  /** Whether one more line of at least a byte could be queued now. */
  get hasRoom(): boolean {
    return this.pending.length < this.maxLines && this.pendingBytes < this.maxBufferedBytes;
  }

  rank(priority: LinePriority | undefined): number {
    return this.incidents.rank(priority);
  }

  /** Whether a line of this rank could be queued now, by room or by dropping a lower one. */
  canTake(rank: number): boolean {
    return this.hasRoom || this.waitingByRank.slice(0, rank).some((count) => count > 0);
  }

  /** Lines accepted and neither delivered nor dropped. */
  get depth(): number {
    const flying = this.flight !== undefined && !this.flight.abandoned ? this.flight.count - this.flight.settled : 0;
    return this.pending.length + flying;
  }

  /** Queues one line, dropping lower-ranked ones to make room, or drops it as queue_full; send() starts the delivery. */
  add(text: string, priority?: LinePriority): void {
    const bytes = Buffer.byteLength(text);
    const rank = this.rank(priority);
    while (this.pending.length >= this.maxLines || this.pendingBytes + bytes > this.maxBufferedBytes) {
      const victim = this.newestBelow(rank);
      if (victim < 0) {
        this.counters.drop("queue_full", 1);
        return;
      }
      const [dropped] = this.pending.splice(victim, 1);
      this.pendingBytes -= dropped!.bytes;
      this.waitingByRank[dropped!.rank]!--;
      this.counters.drop("queue_full", 1);
    }
    this.pending.push({ text, bytes, rank });
    this.pendingBytes += bytes;
    this.waitingByRank[rank]!++;
    if (priority?.incident !== undefined) this.startIncident(priority.incident);
  }

  /** The index of the newest waiting line of the lowest rank below `rank`, or -1. */
  private newestBelow(rank: number): number {
    const lowest = this.waitingByRank.findIndex((count, r) => r < rank && count > 0);
    if (lowest < 0) return -1;
    for (let index = this.pending.length - 1; index >= 0; index--) if (this.pending[index]!.rank === lowest) return index;
    return -1;
  }

  private startIncident(incident: string): void {
    this.incidents.start(incident);
  }

  /** Delivers what is queued, unless a chunk is in flight (its loop takes the rest). */
  send(): void {
    void this.pump();
  }

  async flush(timeoutMs: number): Promise<FlushResult> {
    if (await this.idleWaiters.wait(() => this.idle(), timeoutMs)) return { complete: true, abandoned: 0 };
    const abandoned = this.depth;
    this.pending = [];
    this.pendingBytes = 0;
    this.waitingByRank.fill(0);
    if (this.flight !== undefined) {
      this.flight.abandoned = true;
      this.flight.controller.abort();
    }
    this.counters.drop("flush_timeout", abandoned);
    return { complete: false, abandoned };
  }

  private idle(): boolean {
    return this.pending.length === 0 && (this.flight === undefined || this.flight.abandoned);
  }

  private async pump(): Promise<void> {
    if (this.flight !== undefined) return;
    while (this.pending.length > 0) {
      const lines = this.takeChunk();
      const flight: Flight = { count: lines.length, settled: 0, abandoned: false, controller: new AbortController() };
      this.flight = flight;
      const progress: LineProgress = {
        delivered: (count) => {
          flight.settled += count;
          if (!flight.abandoned) this.counters.written += count;
        },
        failed: (count, error, reason = "write_error") => {
          flight.settled += count;
          if (!flight.abandoned) this.counters.drop(reason, count, error);
        },
      };
      try {
        await this.sink(lines, progress, flight.controller.signal);
      } catch (error) {
        progress.failed(flight.count - flight.settled, error);
      }
      this.flight = undefined;
    }
    this.idleWaiters.wake();
  }

  private takeChunk(): QueuedLine[] {
    const lines = this.pending.length <= this.maxChunk ? this.pending : this.pending.slice(0, this.maxChunk);
    this.pending = this.pending.length <= this.maxChunk ? [] : this.pending.slice(this.maxChunk);
    for (const line of lines) {
      this.pendingBytes -= line.bytes;
      this.waitingByRank[line.rank]!--;
    }
    return lines;
  }
}

/**
 * The FindingOutput part common to every queued output; a subclass says how to format a
 * line, how to deliver a chunk of them, and what to acquire at open and release at close.
 */
export abstract class LineOutput implements FindingOutput {
  protected readonly counters: OutputCounters;
  private readonly queue: LineQueue;
  private state: "new" | "open" | "closed" = "new";

  constructor(
    readonly type: string,
    readonly name: string,
    limits: LineQueueLimits,
  ) {
    this.counters = new OutputCounters(name, type);
    this.queue = new LineQueue(this.counters, (lines, progress, signal) => this.deliver(lines, progress, signal), limits);
  }

  /** The finding's line, terminator included, or undefined when it cannot be formatted. */
  protected abstract formatLine(finding: Finding): string | undefined;
  protected abstract deliver(lines: readonly QueuedLine[], progress: LineProgress, signal: AbortSignal): Promise<void>;
  /** Throws (or rejects with) an OutputError when the output cannot work. */
  protected abstract acquire(): Promise<void> | void;
  /** Only called once nothing is in flight. */
  protected abstract release(): Promise<void> | void;

  async open(): Promise<void> {
    await this.acquire();
    this.state = "open";
  }

  write(findings: readonly Finding[]): void {
    if (this.state !== "open") {
      this.counters.drop("closed", findings.length);
      return;
    }
    for (const finding of findings) {
      const priority = linePriority(finding);
      // A finding a full queue would drop is not formatted first: during an outage that
      // would spend a JSON.stringify on every finding lost.
      if (!this.queue.canTake(this.queue.rank(priority))) {
        this.counters.drop("queue_full", 1);
        continue;
      }
      const line = this.formatLine(finding);
      if (line !== undefined) this.queue.add(line, priority);
    }
    this.queue.send();
  }

  /** Queues a line that is not a finding (a durable output's state record), at the lowest rank. */
  protected enqueue(line: string): void {
    if (this.state !== "open") return;
    this.queue.add(line);
    this.queue.send();
  }

  flush(timeoutMs = DEFAULT_FLUSH_TIMEOUT_MS): Promise<FlushResult> {
    return this.queue.flush(timeoutMs);
  }

  async close(timeoutMs = DEFAULT_FLUSH_TIMEOUT_MS): Promise<FlushResult> {
    const result = await this.flush(timeoutMs);
    const wasOpen = this.state === "open";
    this.state = "closed";
    // A write abandoned at the deadline still owns the stream, file or socket (and may yet
    // fail on it): that is left for the process exit rather than pulled from under it.
    if (wasOpen && result.complete) await this.release();
    return result;
  }

  stats(): OutputStats {
    return this.counters.snapshot(this.queue.depth);
  }
}
