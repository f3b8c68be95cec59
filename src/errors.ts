/**
 * The base of every error sockeye raises on purpose. `code` is stable for programs to branch
 * on; `exitStatus` is what `sockeye` exits with when the error ends a command: 2 when the
 * input is wrong (a flag, the config, a rule file, a capture), 1 when the host refused
 * (privileges, kernel features, an output that cannot be opened, a second daemon).
 */
export const EXIT_REFUSED = 1;
export const EXIT_BAD_INPUT = 2;
export type ExitStatus = typeof EXIT_REFUSED | typeof EXIT_BAD_INPUT;

export class SockeyeError extends Error {
  constructor(
    message: string,
    readonly code: string,
    readonly exitStatus: ExitStatus,
  ) {
    super(message);
    this.name = new.target.name;
  }
}
