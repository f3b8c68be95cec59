/**
 * Replaying a capture through a pipeline: what `sockeye replay` and an agent's offline mode
 * do. Malformed lines are counted (engine stats `dropped.malformed_line`), listed with their
 * line numbers and handed to `onMalformed`; with `strict` the first one stops the replay
 * with a CaptureLineError.
 */
import type { Readable } from "node:stream";
import { readCapture, type MalformedLine } from "../capture/reader.js";
import type { Finding } from "../engine/finding.js";
import type { Pipeline } from "./pipeline.js";

export interface ReplayOptions {
  /** Each finding, in order, as soon as it is made (it also goes to the pipeline's outputs). */
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

/** Feeds a capture (a file path or a readable stream) through `pipeline`. */
export async function replayCapture(pipeline: Pipeline, input: string | Readable, options: ReplayOptions = {}): Promise<ReplayReport> {
  const malformed: MalformedLine[] = [];
  let malformedCount = 0;
  const onMalformed = (line: MalformedLine): void => {
    pipeline.engine.countDrop("malformed_line");
    malformedCount++;
    if (malformed.length < MAX_LISTED_MALFORMED) malformed.push(line);
    options.onMalformed?.(line);
  };
  const events = readCapture(input, options.strict === true ? {} : { onMalformed });
  const { events: count, findings } = await pipeline.run(events, options.onFinding);
  return { events: count, findings, malformedCount, malformed };
}
