import { EXIT_BAD_INPUT, SockeyeError } from "../errors.js";

/** A query this module cannot parse or will not run. The message is one line. */
export class EqlError extends SockeyeError {
  /** 1-based position in the query text. */
  readonly line: number;
  readonly column: number;
  /** The message without the position suffix. */
  readonly problem: string;
  constructor(problem: string, line: number, column: number) {
    super(`${problem} at ${line}:${column}`, "SOCKEYE_EQL", EXIT_BAD_INPUT);
    this.problem = problem;
    this.line = line;
    this.column = column;
  }
}
