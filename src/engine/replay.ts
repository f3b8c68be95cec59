/**
 * Captures: decoded events as JSON lines, one SensorEvent per line, so a recording made by
 * `sockeye run --record` (or written by hand as a test fixture) can be replayed through an
 * engine later. Blank lines are ignored.
 *
 * A line that is not a valid event is never silently skipped and never crashes a replay:
 * by default it is counted (engine stats `dropped.malformed_line`) and reported with its
 * line number; with `strict` the replay stops with a CaptureLineError naming the line.
 */
import { createReadStream } from "node:fs";
import { once } from "node:events";
import { finished } from "node:stream/promises";
import { createInterface } from "node:readline";
import type { Readable, Writable } from "node:stream";
import { EXIT_BAD_INPUT, SockeyeError } from "../errors.js";
import { EVENT_KINDS, type SensorEvent } from "../sensor/events.js";
import type { Engine } from "./engine.js";
import { sensorEventSchema } from "./event-schema.js";
import type { Finding } from "./finding.js";

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

export interface ReplayOptions {
  /** Each finding, in order, as soon as it is made. */
  onFinding?: (finding: Finding) => void;
  /** Each malformed line, as soon as it is read (it is also counted and listed in the report). */
  onMalformed?: (line: MalformedLine) => void;
  /** Stop at the first malformed line with a CaptureLineError instead of counting it. */
  strict?: boolean;
}

export interface ReplayReport {
  events: number;
  findings: number;
  malformedCount: number;
  /** The first MAX_LISTED_MALFORMED malformed lines; malformedCount has them all. */
  malformed: MalformedLine[];
}

const MAX_LISTED_MALFORMED = 100;

/** Feeds a capture through `engine`. */
export async function replayCapture(engine: Engine, input: string | Readable, options: ReplayOptions = {}): Promise<ReplayReport> {
  const report: ReplayReport = { events: 0, findings: 0, malformedCount: 0, malformed: [] };
  const onMalformed = (line: MalformedLine): void => {
    engine.countDrop("malformed_line");
    report.malformedCount++;
    if (report.malformed.length < MAX_LISTED_MALFORMED) report.malformed.push(line);
    options.onMalformed?.(line);
  };
  const events = readCapture(input, options.strict === true ? {} : { onMalformed });
  for await (const event of events) {
    report.events++;
    for (const finding of engine.handle(event)) {
      report.findings++;
      options.onFinding?.(finding);
    }
  }
  return report;
}

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
