/**
 * An output that writes one text line per finding to a writable stream (stdout by
 * default). The line format is what distinguishes JSON lines from the pretty terminal
 * format; the backpressure handling is this one class.
 */
import type { Writable } from "node:stream";
import type { Finding } from "../engine/finding.js";
import { LineQueue } from "./line-queue.js";
import {
  DEFAULT_FLUSH_TIMEOUT_MS,
  OutputCounters,
  OutputError,
  describeError,
  type FindingOutput,
  type FlushResult,
  type OutputStats,
} from "./output.js";

export interface StreamOutputOptions {
  /** Defaults to process.stdout. The caller owns it: close() does not end it. */
  stream?: Writable;
  /** Defaults to the output's type. */
  name?: string;
  /** Bytes waiting for a slow reader before the newest lines are dropped (default 8 MiB). */
  maxBufferedBytes?: number;
}

/** Turns a finding into its line (without the newline), or undefined when it cannot. */
export type LineFormat = (finding: Finding, counters: OutputCounters) => string | undefined;

export class StreamOutput implements FindingOutput {
  readonly name: string;
  protected readonly stream: Writable;
  private readonly counters: OutputCounters;
  private readonly queue: LineQueue;
  private state: "new" | "open" | "closed" = "new";
  // Without a listener an EPIPE (the reader of stdout went away) would crash the daemon;
  // the failed write's callback already counts the loss.
  private readonly onError = (error: unknown) => {
    this.counters.lastError = describeError(error);
  };

  constructor(
    readonly type: string,
    private readonly format: LineFormat,
    options: StreamOutputOptions = {},
  ) {
    this.name = options.name ?? type;
    this.stream = options.stream ?? process.stdout;
    this.counters = new OutputCounters(this.name, type);
    this.queue = new LineQueue(
      this.counters,
      (lines, delivered) =>
        new Promise((resolve, reject) => {
          // The callback fires once the bytes are handed to the fd, so one chunk at a time
          // is in the stream's own buffer and the LineQueue bound holds.
          this.stream.write(lines.map((line) => line.text).join(""), (error) => {
            if (error) return reject(error);
            delivered(lines.length);
            resolve();
          });
        }),
      options.maxBufferedBytes,
    );
  }

  async open(): Promise<void> {
    if (!this.stream.writable) throw new OutputError(this.name, "the stream is not writable");
    this.stream.on("error", this.onError);
    this.state = "open";
  }

  write(findings: readonly Finding[]): void {
    if (this.state !== "open") {
      this.counters.drop("closed", findings.length);
      return;
    }
    const lines: string[] = [];
    for (const finding of findings) {
      const line = this.format(finding, this.counters);
      if (line !== undefined) lines.push(`${line}\n`);
    }
    this.queue.push(lines);
  }

  flush(timeoutMs = DEFAULT_FLUSH_TIMEOUT_MS): Promise<FlushResult> {
    return this.queue.flush(timeoutMs);
  }

  async close(timeoutMs = DEFAULT_FLUSH_TIMEOUT_MS): Promise<FlushResult> {
    const result = await this.flush(timeoutMs);
    this.state = "closed";
    // A write abandoned at the deadline can still fail later and must find the listener.
    if (result.complete) this.stream.off("error", this.onError);
    return result;
  }

  stats(): OutputStats {
    return this.counters.snapshot(this.queue.depth);
  }
}
