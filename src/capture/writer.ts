/**
 * Writing captures, in the format reader.ts reads: one JSON event per line.
 *
 * Two writers for two callers: CaptureWriter waits on the stream's backpressure (a tool or a
 * test writing a capture at its own pace); openCaptureFile() records a live sensor, which
 * must never wait, so it is a bounded event output that drops and counts instead.
 */
import { once } from "node:events";
import { finished } from "node:stream/promises";
import type { Writable } from "node:stream";
import { EXIT_REFUSED, SockeyeError } from "../errors.js";
import type { SensorEvent } from "../sensor/events.js";
import { EventLineOutput, type EventOutputTrouble } from "../output/event-lines.js";
import { UntrustedFileError, openPrivateAppendFile } from "../output/private-file.js";

/** One capture line (with its newline) for an event. */
export function captureLine(event: SensorEvent): string {
  return `${JSON.stringify(event)}\n`;
}

/** Writes events in the capture format, respecting the stream's backpressure. */
export class CaptureWriter {
  private written = 0;

  constructor(private readonly output: Writable) {}

  get count(): number {
    return this.written;
  }

  async write(event: SensorEvent): Promise<void> {
    this.written++;
    if (!this.output.write(captureLine(event))) await once(this.output, "drain");
  }

  /** Ends the stream and waits until everything is flushed. */
  async close(): Promise<void> {
    this.output.end();
    await finished(this.output);
  }
}

/** A live recording can lag the disk by this much before batches are dropped. */
const CAPTURE_MAX_BUFFERED_BYTES = 32 * 1024 * 1024;

export interface CaptureFileOptions {
  maxBufferedBytes?: number;
  /** Told once when the recording starts dropping batches, and once if the file fails. */
  onTrouble?: (trouble: EventOutputTrouble, error?: string) => void;
}

/**
 * Opens `path` as an event output named "capture", appending to it as a private file
 * (output/private-file.ts: 0600, no symlink, no FIFO or device); rejects with one line when
 * it cannot.
 */
export async function openCaptureFile(path: string, options: CaptureFileOptions = {}): Promise<EventLineOutput> {
  let opened;
  try {
    opened = await openPrivateAppendFile(path);
  } catch (error) {
    const problem = error instanceof UntrustedFileError ? ` ${error.problem}` : `: cannot open: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`;
    throw new SockeyeError(`capture ${path}${problem}`, "SOCKEYE_CAPTURE_OPEN", EXIT_REFUSED);
  }
  return new EventLineOutput({
    name: "capture",
    stream: opened.handle.createWriteStream(),
    format: captureLine,
    ownsStream: true,
    maxBufferedBytes: options.maxBufferedBytes ?? CAPTURE_MAX_BUFFERED_BYTES,
    ...(options.onTrouble !== undefined ? { onTrouble: options.onTrouble } : {}),
  });
}
