/**
 * The one error class of the sensor. The addon creates it (registered through
 * setErrorClass in binding.ts), so native failures arrive with a stable `code` and `errno`.
 */
export class SensorError extends Error {
  /** e.g. EPERM_BPF, NO_BTF, NO_TRACEFS, LOAD_FAILED, ATTACH_FAILED, NO_BINDING, BAD_OPTION. */
  readonly code: string;
  readonly errno: number;

  constructor(message: string, code: string, errno = 0) {
    super(message);
    this.name = "SensorError";
    this.code = code;
    this.errno = errno;
  }
}
