/**
 * The base of every error sockeye throws (docs/design.md §12). `code` is stable for programs
 * to branch on and always `SOCKEYE_` + an upper-case name, so it never collides with Node's own
 * codes (`ENOENT`, `ERR_*`); `exitStatus` is what `sockeye` exits with when the error ends a
 * command: 2 when the input is wrong (an option, the config, a rule file, a capture), 1 when
 * the host refused (privileges, kernel features, an output that cannot be opened, a second
 * daemon).
 */
export const EXIT_REFUSED = 1;
export const EXIT_BAD_INPUT = 2;
export type ExitStatus = typeof EXIT_REFUSED | typeof EXIT_BAD_INPUT;

export type SockeyeErrorCode = `SOCKEYE_${Uppercase<string>}`;

export class SockeyeError extends Error {
  constructor(
    message: string,
    readonly code: SockeyeErrorCode,
    readonly exitStatus: ExitStatus,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** A value given to a constructor or function of the library is out of its range. */
export class OptionError extends SockeyeError {
  constructor(message: string) {
    super(message, "SOCKEYE_BAD_OPTION", EXIT_BAD_INPUT);
  }
}

/** A promise sockeye's own code broke: a bug to report, never a user's mistake. */
export class InternalError extends SockeyeError {
  constructor(message: string) {
    super(`internal error (a bug in sockeye, please report it): ${message}`, "SOCKEYE_INTERNAL", EXIT_REFUSED);
  }
}

/** The one place internal invariants are checked; a failure is an InternalError. */
export function assertInternal(condition: boolean, message: string): asserts condition {
  if (!condition) throw new InternalError(message);
}
