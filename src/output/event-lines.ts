/**
 * Outputs of the decoded kernel events themselves, one line per event (`sockeye run
 * --events` on stdout, `--capture` to a file). Bounded like the finding outputs: while more
 * than `maxBufferedBytes` wait for the reader or the disk, batches are dropped (queue_full);
 * after a write error nothing more is written (write_error). Both are counted, never thrown,
 * never waited on, so the sensor is never slowed by a slow stdout or disk.
 */
import type { Writable } from "node:stream";
import type { SensorEvent } from "../sensor/events.js";
import {
  DEFAULT_FLUSH_TIMEOUT_MS,
  OutputCounters,
  OutputError,
  describeError,
  type FlushResult,
  type OutputStats,
} from "./output.js";
import { IdleWaiters } from "./line-output.js";

/** The FindingOutput contract, for events: write() returns at once, trouble is counted. */
export interface EventOutput {
  readonly name: string;
  readonly type: string;
  open(): Promise<void>;
  write(events: readonly SensorEvent[]): void;
  flush(timeoutMs?: number): Promise<FlushResult>;
  close(timeoutMs?: number): Promise<FlushResult>;
  stats(): OutputStats;
}

/** Why an event line output stops keeping up, told once each. */
export type EventOutputTrouble = "falling_behind" | "stopped";

export interface EventLineOutputOptions {
  name: string;
  stream: Writable;
  /** The event's line, newline included. */
  format: (event: SensorEvent) => string;
  /** true: close() ends the stream (a file opened for this output); false: the caller's (stdout). */
  ownsStream?: boolean;
  /** Bytes waiting in the stream before batches are dropped (default 8 MiB). */
  maxBufferedBytes?: number;
  onTrouble?: (trouble: EventOutputTrouble, error?: string) => void;
}

const DEFAULT_MAX_BUFFERED_BYTES = 8 * 1024 * 1024;

/** `{"sockeye.event": …}` lines: tagged, so they can share stdout with findings. */
export function taggedEventLine(event: SensorEvent): string {
  return `${JSON.stringify({ "sockeye.event": event })}\n`;
}

export class EventLineOutput implements EventOutput {
  readonly name: string;
  readonly type = "event-lines";
  private readonly counters: OutputCounters;
  private readonly stream: Writable;
  private readonly maxBufferedBytes: number;
  private readonly idle = new IdleWaiters();
  private state: "new" | "open" | "closed" = "new";
  /** Events handed to the stream whose write has not completed yet. */
  private inFlight = 0;
  /** Set at a flush deadline: later write outcomes were already counted as flush_timeout. */
  private abandoned = false;
  private failed = false;
  private fellBehind = false;
  private readonly onError = (error: unknown) => this.stop(error);

  constructor(private readonly options: EventLineOutputOptions) {
    this.name = options.name;
    this.stream = options.stream;
    this.maxBufferedBytes = options.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES;
    this.counters = new OutputCounters(this.name, this.type);
  }

  open(): Promise<void> {
    if (!this.stream.writable) return Promise.reject(new OutputError(this.name, "the stream is not writable"));
    // Without a listener an EPIPE or ENOSPC would crash the daemon; it stops this output instead.
    this.stream.on("error", this.onError);
    this.state = "open";
    return Promise.resolve();
  }

  write(events: readonly SensorEvent[]): void {
    if (events.length === 0) return;
    if (this.state !== "open") return this.counters.drop("closed", events.length);
    if (this.failed) return this.counters.drop("write_error", events.length);
    if (this.stream.writableLength > this.maxBufferedBytes) {
      if (!this.fellBehind) this.options.onTrouble?.("falling_behind");
      this.fellBehind = true;
      return this.counters.drop("queue_full", events.length);
    }
    let text = "";
    let lines = 0;
    for (const event of events) {
      try {
        text += this.options.format(event);
        lines++;
      } catch (error) {
        this.counters.drop("encode_error", 1, error);
      }
    }
    if (lines === 0) return;
    this.inFlight += lines;
    this.stream.write(text, (error) => {
      this.inFlight -= lines;
      if (!this.abandoned) {
        if (error) this.counters.drop("write_error", lines, error);
        else this.counters.written += lines;
      }
      if (this.inFlight === 0) this.idle.wake();
    });
  }

  async flush(timeoutMs = DEFAULT_FLUSH_TIMEOUT_MS): Promise<FlushResult> {
    if (await this.idle.wait(() => this.inFlight === 0, timeoutMs)) return { complete: true, abandoned: 0 };
    const abandoned = this.inFlight;
    this.abandoned = true;
    this.counters.drop("flush_timeout", abandoned);
    return { complete: false, abandoned };
  }

  async close(timeoutMs = DEFAULT_FLUSH_TIMEOUT_MS): Promise<FlushResult> {
    const result = await this.flush(timeoutMs);
    const wasOpen = this.state === "open";
    this.state = "closed";
    if (!wasOpen) return result;
    if (this.options.ownsStream === true && !this.failed) await new Promise<void>((resolve) => this.stream.end(resolve));
    this.stream.off("error", this.onError);
    return result;
  }

  stats(): OutputStats {
    return this.counters.snapshot(this.abandoned ? 0 : this.inFlight);
  }

  private stop(error: unknown): void {
    this.counters.lastError = describeError(error);
    if (this.failed) return;
    this.failed = true;
    this.options.onTrouble?.("stopped", (error as NodeJS.ErrnoException).code ?? describeError(error));
  }
}
