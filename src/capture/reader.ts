/**
 * Reading captures: decoded events as JSON lines, one SensorEvent per line, as `sockeye run
 * --capture` (writer.ts) records them or as a test fixture is written by hand. Blank lines
 * are ignored.
 *
 * A line that is not a valid event is never silently skipped: it goes to `onMalformed` with
 * its line number, or, without one, stops the reading with a CaptureLineError naming it.
 */
import { createReadStream } from "node:fs";
import { createInterface } from "node:readline";
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

/** Events of a capture, from a file path or a readable stream. */
export async function* readCapture(input: string | Readable, options: ReadCaptureOptions = {}): AsyncGenerator<SensorEvent> {
  const stream = typeof input === "string" ? createReadStream(input, "utf8") : input;
  const lines = createInterface({ input: stream, crlfDelay: Infinity });
  let lineNumber = 0;
  for await (const line of lines) {
    lineNumber++;
    if (line.trim() === "") continue;
    const parsed = parseCaptureLine(line);
    if (parsed.ok) {
      yield parsed.event;
      continue;
    }
    const malformed = { lineNumber, reason: parsed.reason };
    if (options.onMalformed === undefined) throw new CaptureLineError(lineNumber, parsed.reason);
    options.onMalformed(malformed);
  }
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
  const result = sensorEventSchema.safeParse(value);
  if (result.success) return { ok: true, event: result.data };
  const issues = result.error.issues
    .slice(0, 3)
    .map((issue) => `${issue.path.join(".") || "(event)"}: ${issue.message}`);
  return { ok: false, reason: `not a valid ${kind} event: ${issues.join("; ")}` };
}
