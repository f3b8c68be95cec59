/**
 * `sockeye run --capture FILE`: every kernel event appended in the capture format that
 * `sockeye replay` reads. It never slows the sensor: past `maxBufferedBytes` waiting for the
 * disk a batch is dropped, and a write error stops the capture; both are counted and logged
 * once, never silent, never a crash.
 */
import { createWriteStream, type WriteStream } from "node:fs";
import { captureLine } from "../engine/replay.js";
import type { SensorEvent } from "../sensor/events.js";
import { warn } from "./log.js";

const DEFAULT_MAX_BUFFERED_BYTES = 32 * 1024 * 1024;

export interface CaptureStats {
  written: number;
  dropped: number;
  error?: string;
}

export class CaptureFile {
  private readonly counts: CaptureStats = { written: 0, dropped: 0 };
  private failed = false;

  private constructor(
    private readonly path: string,
    private readonly stream: WriteStream,
    private readonly maxBufferedBytes: number,
  ) {
    stream.on("error", (error: NodeJS.ErrnoException) => {
      if (this.failed) return;
      this.failed = true;
      this.counts.error = error.code ?? error.message;
      warn("capture stopped: the file cannot be written; events are no longer recorded", { path, error: this.counts.error });
    });
  }

  /** Opens (appends to, creates 0600) `path`; rejects with one line when it cannot. */
  static open(path: string, maxBufferedBytes = DEFAULT_MAX_BUFFERED_BYTES): Promise<CaptureFile> {
    const stream = createWriteStream(path, { flags: "a", mode: 0o600 });
    return new Promise((resolve, reject) => {
      stream.once("open", () => resolve(new CaptureFile(path, stream, maxBufferedBytes)));
      stream.once("error", (error: NodeJS.ErrnoException) => reject(new Error(`capture ${path}: cannot open: ${error.code ?? error.message}`)));
    });
  }

  write(events: readonly SensorEvent[]): void {
    if (events.length === 0) return;
    if (this.failed || this.stream.writableLength > this.maxBufferedBytes) {
      if (this.counts.dropped === 0 && !this.failed) warn("capture falls behind the disk: batches dropped (counted)", { path: this.path });
      this.counts.dropped += events.length;
      return;
    }
    this.stream.write(events.map(captureLine).join(""));
    this.counts.written += events.length;
  }

  stats(): CaptureStats {
    return { ...this.counts };
  }

  end(): Promise<void> {
    return new Promise((resolve) => (this.failed ? resolve() : this.stream.end(resolve)));
  }
}
