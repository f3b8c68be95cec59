/**
 * The one error class of the sensor. The addon creates it (registered through
 * setErrorClass in binding.ts) with (message, code, errno), so native failures arrive with a
 * stable `code` (EPERM_BPF, NO_BTF, NO_TRACEFS, LOAD_FAILED, ATTACH_FAILED, NO_BINDING,
 * BAD_OPTION, ...) and `errno`. The host refused: exit status 1.
 */
import { EXIT_REFUSED, SockeyeError } from "../errors.js";

export class SensorError extends SockeyeError {
  constructor(
    message: string,
    code: string,
    readonly errno = 0,
  ) {
    super(message, code, EXIT_REFUSED);
  }
}
