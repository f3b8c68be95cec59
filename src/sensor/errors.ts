/**
 * The one error class of the sensor. The addon creates it (registered through
 * setErrorClass in binding.ts) with (message, reason, errno), where reason is the failure's
 * name without the scheme's prefix (EPERM_BPF, NO_BTF, NO_TRACEFS, LOAD_FAILED,
 * ATTACH_FAILED, NO_<CAPABILITY>_HOOK, BAD_OPTION, ...): `code` is SOCKEYE_<reason>. An
 * option out of range is bad input (exit 2); everything else the host refused (exit 1).
 */
import { EXIT_BAD_INPUT, EXIT_REFUSED, SockeyeError, type SockeyeErrorCode } from "../errors.js";

export class SensorError extends SockeyeError {
  constructor(
    message: string,
    reason: string,
    readonly errno = 0,
  ) {
    super(message, sensorErrorCode(reason), reason === "BAD_OPTION" ? EXIT_BAD_INPUT : EXIT_REFUSED);
  }
}

/** The scheme's code for a native failure's reason. */
export function sensorErrorCode(reason: string): SockeyeErrorCode {
  return `SOCKEYE_${reason.toUpperCase() as Uppercase<string>}`;
}
