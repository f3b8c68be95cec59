/**
 * An output that writes one text line per finding to a writable stream (stdout by
 * default). The line format is what distinguishes JSON lines from the pretty terminal
 * format; the backpressure handling is LineOutput's.
 */
import type { Writable } from "node:stream";
import type { Finding } from "../engine/finding.js";
import { LineOutput, type LineProgress, type QueuedLine } from "./line-output.js";
import { OutputError, describeError, type OutputCounters } from "./output.js";

export interface StreamOutputOptions {
  /** Defaults to process.stdout. The caller owns it: close() does not end it. */
  stream?: Writable;
  /** Defaults to the output's type. */
  name?: string;
  /** Bytes waiting for a slow reader before lines are dropped, lowest rank first (default 8 MiB). */
  maxBufferedBytes?: number;
}

/** Turns a finding into its line (without the newline), or undefined (counted) when it cannot. */
export type LineFormat = (finding: Finding, counters: OutputCounters) => string | undefined;

export class StreamOutput extends LineOutput {
  protected readonly stream: Writable;
  // Without a listener an EPIPE (the reader of stdout went away) would crash the daemon;
  // the failed write's callback already counts the loss.
  private readonly onError = (error: unknown) => {
    this.counters.lastError = describeError(error);
  };

  constructor(
    type: string,
    private readonly format: LineFormat,
    options: StreamOutputOptions = {},
  ) {
    super(type, options.name ?? type, { maxBufferedBytes: options.maxBufferedBytes });
    this.stream = options.stream ?? process.stdout;
  }

  protected acquire(): void {
    if (!this.stream.writable) throw new OutputError(this.name, "the stream is not writable");
    this.stream.on("error", this.onError);
  }

  protected release(): void {
    this.stream.off("error", this.onError);
  }

  protected formatLine(finding: Finding): string | undefined {
    const line = this.format(finding, this.counters);
    return line === undefined ? undefined : `${line}\n`;
  }

  protected deliver(lines: readonly QueuedLine[], progress: LineProgress): Promise<void> {
    return new Promise((resolve, reject) => {
      // The callback fires once the bytes are handed to the fd, so one chunk at a time is
      // in the stream's own buffer and the LineQueue bound holds.
      this.stream.write(lines.map((line) => line.text).join(""), (error) => {
        if (error) return reject(error);
        progress.delivered(lines.length);
        resolve();
      });
    });
  }
}
