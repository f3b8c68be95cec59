/**
 * Outputs that deliver one text line per finding (stream, file, syslog) share this: a
 * bounded queue of lines in front of one slow writer (a pipe, a file, a socket).
 *
 * One chunk is in flight at a time; lines that arrive meanwhile wait here, up to
 * `maxBufferedBytes`. Past that the newest lines are dropped and counted: memory stays
 * bounded however slow the reader of stdout or the disk is, and the order of what is
 * delivered is the order of arrival.
 */
import type { Finding } from "../engine/finding.js";
import {
  DEFAULT_FLUSH_TIMEOUT_MS,
  IdleWaiters,
  OutputCounters,
  type FindingOutput,
  type FlushResult,
  type OutputStats,
} from "./output.js";

export interface QueuedLine {
  /** The text as delivered: a newline ends it for streams and files, not for datagrams. */
  text: string;
  bytes: number;
}

/** How a sink reports each line's fate; every line handed to it is reported once. */
export interface LineProgress {
  delivered(count: number): void;
  failed(count: number, error: unknown): void;
}

/** Delivers a chunk of lines. A rejection means the lines not yet reported failed. */
type LineSink = (lines: readonly QueuedLine[], progress: LineProgress) => Promise<void>;

interface Flight {
  count: number;
  /** Lines already reported delivered or failed. */
  settled: number;
  /** Counted as flush_timeout already; its late outcome must not be counted again. */
  abandoned: boolean;
}

const DEFAULT_MAX_BUFFERED_BYTES = 8 * 1024 * 1024;

class LineQueue {
  private pending: QueuedLine[] = [];
  private pendingBytes = 0;
  private flight: Flight | undefined;
  private readonly idleWaiters = new IdleWaiters();

  constructor(
    private readonly counters: OutputCounters,
    private readonly sink: LineSink,
    private readonly maxBufferedBytes: number = DEFAULT_MAX_BUFFERED_BYTES,
  ) {
    if (!(maxBufferedBytes > 0)) throw new RangeError(`maxBufferedBytes must be positive, got ${maxBufferedBytes}`);
  }

  /** Lines accepted and neither delivered nor dropped. */
  get depth(): number {
    const flying = this.flight !== undefined && !this.flight.abandoned ? this.flight.count - this.flight.settled : 0;
    return this.pending.length + flying;
  }

  push(texts: readonly string[]): void {
    for (const text of texts) {
      const bytes = Buffer.byteLength(text);
      if (this.pendingBytes + bytes > this.maxBufferedBytes) {
        this.counters.drop("queue_full", 1);
        continue;
      }
      this.pending.push({ text, bytes });
      this.pendingBytes += bytes;
    }
    void this.pump();
  }

  async flush(timeoutMs: number): Promise<FlushResult> {
    if (await this.idleWaiters.wait(() => this.idle(), timeoutMs)) return { complete: true, abandoned: 0 };
    const abandoned = this.depth;
    if (this.flight !== undefined) this.flight.abandoned = true;
    this.pending = [];
    this.pendingBytes = 0;
    this.counters.drop("flush_timeout", abandoned);
    return { complete: false, abandoned };
  }

  private idle(): boolean {
    return this.pending.length === 0 && (this.flight === undefined || this.flight.abandoned);
  }

  private async pump(): Promise<void> {
    if (this.flight !== undefined) return;
    while (this.pending.length > 0) {
      const lines = this.pending;
      this.pending = [];
      this.pendingBytes = 0;
      const flight: Flight = { count: lines.length, settled: 0, abandoned: false };
      this.flight = flight;
      const progress: LineProgress = {
        delivered: (count) => {
          flight.settled += count;
          if (!flight.abandoned) this.counters.written += count;
        },
        failed: (count, error) => {
          flight.settled += count;
          if (!flight.abandoned) this.counters.drop("write_error", count, error);
        },
      };
      try {
        await this.sink(lines, progress);
      } catch (error) {
        progress.failed(flight.count - flight.settled, error);
      }
      this.flight = undefined;
    }
    this.idleWaiters.wake();
  }
}

/**
 * The FindingOutput part common to line outputs; a subclass says how to format a line,
 * how to deliver a chunk of them, and what to acquire at open and release at close.
 */
export abstract class LineOutput implements FindingOutput {
  protected readonly counters: OutputCounters;
  private readonly queue: LineQueue;
  private state: "new" | "open" | "closed" = "new";

  constructor(
    readonly type: string,
    readonly name: string,
    maxBufferedBytes: number | undefined,
  ) {
    this.counters = new OutputCounters(name, type);
    this.queue = new LineQueue(this.counters, (lines, progress) => this.deliver(lines, progress), maxBufferedBytes);
  }

  /** The finding's line, terminator included, or undefined when it cannot be formatted. */
  protected abstract formatLine(finding: Finding): string | undefined;
  protected abstract deliver(lines: readonly QueuedLine[], progress: LineProgress): Promise<void>;
  /** Rejects with an OutputError when the output cannot work. */
  protected abstract acquire(): Promise<void>;
  /** Only called once nothing is in flight. */
  protected abstract release(): Promise<void>;

  async open(): Promise<void> {
    await this.acquire();
    this.state = "open";
  }

  write(findings: readonly Finding[]): void {
    if (this.state !== "open") {
      this.counters.drop("closed", findings.length);
      return;
    }
    const lines: string[] = [];
    for (const finding of findings) {
      const line = this.formatLine(finding);
      if (line !== undefined) lines.push(line);
    }
    this.queue.push(lines);
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
