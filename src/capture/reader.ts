/**
 * Reading captures: decoded events as JSON lines, one SensorEvent per line, as `sockeye run
 * --capture` (writer.ts) records them or as a test fixture is written by hand. Blank lines
 * are ignored. A line is at most MAX_CAPTURE_LINE_BYTES: a longer one is malformed (its bytes
 * are skipped, never held), so a hostile capture cannot exhaust memory or a string's length.
 *
 * A line that is not a valid event is never silently skipped: it goes to `onMalformed` with
 * its line number, or, without one, stops the reading with a CaptureLineError naming it.
 */
import { createReadStream } from "node:fs";
import type { Readable } from "node:stream";
import { EXIT_BAD_INPUT, SockeyeError } from "../errors.js";
import { EVENT_KINDS, type SensorEvent } from "../sensor/events.js";
import { sensorEventSchema } from "./schema.js";

export interface MalformedLine {
  /** 1-based, counting blank lines too, as an editor shows it. */
  lineNumber: number;
  reason: string;
}

export class CaptureLineError extends SockeyeError {
  constructor(
    readonly lineNumber: number,
    readonly reason: string,
  ) {
    super(`capture line ${lineNumber}: ${reason}`, "SOCKEYE_CAPTURE_LINE", EXIT_BAD_INPUT);
  }
}

export interface ReadCaptureOptions {
  /** Called for each line that is not an event; without it, such a line throws CaptureLineError. */
  onMalformed?: (line: MalformedLine) => void;
}

const KNOWN_KINDS: ReadonlySet<string> = new Set(EVENT_KINDS);

/**
 * The kernel cuts argv at 8 KiB and a path at 512 bytes, so an event's JSON stays under
 * ~110 KiB even with every byte escaped as \uXXXX; 1 MiB leaves room for a hand-written one
 * while a hostile line costs tens of MB of memory.
 */
export const MAX_CAPTURE_LINE_BYTES = 1024 * 1024;

/**
 * No event holds more JSON values than this (argv is at most 8 KiB of NUL-separated
 * strings). Checked before the schema, which would build one issue object per bad element.
 */
export const MAX_CAPTURE_LINE_VALUES = 65_536;

/** Events of a capture, from a file path or a readable stream. */
export async function* readCapture(input: string | Readable, options: ReadCaptureOptions = {}): AsyncGenerator<SensorEvent> {
  const stream = typeof input === "string" ? createReadStream(input) : input;
  let lineNumber = 0;
  for await (const line of boundedLines(stream, MAX_CAPTURE_LINE_BYTES)) {
    lineNumber++;
    if (line !== undefined && line.trim() === "") continue;
    const parsed: ParsedLine = line === undefined ? { ok: false, reason: `longer than ${MAX_CAPTURE_LINE_BYTES / (1024 * 1024)} MiB` } : parseCaptureLine(line);
    if (parsed.ok) {
      yield parsed.event;
      continue;
    }
    const malformed = { lineNumber, reason: parsed.reason };
    if (options.onMalformed === undefined) throw new CaptureLineError(lineNumber, parsed.reason);
    options.onMalformed(malformed);
  }
}

/**
 * The stream's lines without their LF or CRLF, the last one even without a newline;
 * undefined stands for a line longer than `maxBytes`, whose bytes are dropped as they come.
 */
async function* boundedLines(stream: Readable, maxBytes: number): AsyncGenerator<string | undefined> {
  let parts: Buffer[] = [];
  let length = 0;
  let overlong = false;
  const line = (): string | undefined => {
    if (overlong) return undefined;
    const text = Buffer.concat(parts, length).toString("utf8");
    return text.endsWith("\r") ? text.slice(0, -1) : text;
  };
  for await (const chunk of stream as AsyncIterable<Buffer | string>) {
    const buffer = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
    for (let start = 0; start <= buffer.length; ) {
      const newline = buffer.indexOf(0x0a, start);
      const end = newline === -1 ? buffer.length : newline;
      if (!overlong && length + (end - start) > maxBytes) {
        overlong = true;
        parts = [];
      }
      if (!overlong && end > start) parts.push(buffer.subarray(start, end));
      length += end - start;
      if (newline === -1) break;
      yield line();
      parts = [];
      length = 0;
      overlong = false;
      start = newline + 1;
    }
  }
  if (length > 0) yield line();
}

type ParsedLine = { ok: true; event: SensorEvent } | { ok: false; reason: string };

function parseCaptureLine(line: string): ParsedLine {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (error) {
    return { ok: false, reason: `not JSON: ${error instanceof Error ? error.message : String(error)}` };
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return { ok: false, reason: "not a JSON object" };
  }
  const kind: unknown = (value as { kind?: unknown }).kind;
  if (typeof kind !== "string") return { ok: false, reason: "no string field `kind`" };
  // An event of a kind this build does not know (a newer sensor's capture) is passed on:
  // the engine counts it as unknown_kind, which says more than "malformed" would.
  if (!KNOWN_KINDS.has(kind)) return { ok: true, event: value as SensorEvent };
  if (countValues(value, MAX_CAPTURE_LINE_VALUES) > MAX_CAPTURE_LINE_VALUES) {
    return { ok: false, reason: `more than ${MAX_CAPTURE_LINE_VALUES} values in one event` };
  }
  const result = sensorEventSchema.safeParse(value);
  if (result.success) return { ok: true, event: result.data };
  const issues = result.error.issues
    .slice(0, 3)
    .map((issue) => `${issue.path.join(".") || "(event)"}: ${issue.message}`);
  return { ok: false, reason: `not a valid ${kind} event: ${issues.join("; ")}` };
}

/** The JSON values in `value`, counting stopped once past `limit`. */
function countValues(value: unknown, limit: number): number {
  let count = 0;
  const pending: unknown[] = [value];
  while (pending.length > 0 && count <= limit) {
    const next = pending.pop();
    count++;
    if (typeof next !== "object" || next === null) continue;
    const children = Array.isArray(next) ? (next as unknown[]) : Object.values(next);
    if (children.length > limit) return limit + 1;
    for (const child of children) pending.push(child);
  }
  return count;
}
