/**
 * `sockeye/outputs`: every output, and the parts to build one (the spool, event lines, the
 * pretty format). The common outputs are in the package root too.
 */
export {
  OUTPUT_DROP_REASONS,
  OutputError,
  type FindingOutput,
  type FlushResult,
  type OutputDropReason,
  type OutputStats,
  type StateRecord,
} from "../output/output.js";
export { OutputSet } from "../output/output-set.js";
export { EventLineOutput, taggedEventLine, type EventLineOutputOptions, type EventOutput, type EventOutputTrouble } from "../output/event-lines.js";
export type { StreamOutputOptions } from "../output/stream.js";
export { JsonLinesOutput, type JsonLinesOutputOptions } from "../output/json-lines.js";
export { PrettyOutput, formatPretty, type PrettyFormatOptions, type PrettyOutputOptions } from "../output/pretty.js";
export { FileOutput, type FileOutputOptions } from "../output/file.js";
export { SpooledWebhookOutput, WebhookOutput, type SpooledWebhookOutputOptions, type WebhookBackoff, type WebhookOutputOptions } from "../output/webhook.js";
export {
  SYSLOG_FACILITIES,
  SYSLOG_PROTOCOLS,
  SyslogOutput,
  type SyslogFacility,
  type SyslogOutputOptions,
  type SyslogProtocol,
  type SyslogReconnect,
  type SyslogTlsOptions,
} from "../output/syslog.js";
export { DEFAULT_SPOOL_DIR, Spool, SpoolError, type SpoolOptions, type SpoolRecord, type SpoolStats } from "../output/spool.js";
export { SpooledOutput, type SpooledFinding } from "../output/spooled-output.js";
export { NatsOutput, subjectToken, type NatsOutputOptions } from "../output/nats.js";
