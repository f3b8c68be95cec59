/**
 * JSON lines: one finding per line, the nested ECS object exactly as the engine built it.
 * The default output of `sockeye run` when stdout is not a terminal (docs/design.md §5).
 */
import { encodeFinding } from "./output.js";
import { StreamOutput, type StreamOutputOptions } from "./stream.js";

export type JsonLinesOutputOptions = StreamOutputOptions;

export class JsonLinesOutput extends StreamOutput {
  constructor(options: JsonLinesOutputOptions = {}) {
    super("json-lines", encodeFinding, options);
  }
}
