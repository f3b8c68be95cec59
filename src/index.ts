/**
 * sockeye's public API: `import { openSensor, ... } from "sockeye"`.
 * Each section is owned by one stage; keep exports grouped by stage.
 */

// --- errors: every error sockeye raises extends SockeyeError (code, exitStatus) ------------
export { EXIT_BAD_INPUT, EXIT_REFUSED, SockeyeError, type ExitStatus } from "./errors.js";

// --- sensor: kernel events -------------------------------------------------------------
export * from "./sensor/events.js";
export { Sensor, openSensor, probe } from "./sensor/sensor.js";
export type { SensorOptions, ProbeOptions, HookCounters, SensorStats, BatchListener, ProbeReport } from "./sensor/sensor.js";
export { DEFAULT_STDIO_FD_MAX, STDIO_FD_MAX_LIMIT, isStdioFd, sensorOptionsSchema } from "./sensor/options.js";
export type { SensorScheduling } from "./sensor/binding.js";
export { SensorError } from "./sensor/errors.js";
export { decodeBatch } from "./sensor/decode.js";

// --- engine: rules, process table, findings ---------------------------------------------
export * from "./engine/rule.js";
export { Engine, type DropReason, type EngineLogger, type EngineOptions, type EngineStats } from "./engine/engine.js";
export { buildFinding, type Finding, type FindingProcess, type FindingProcessParent, type FindingThreat } from "./engine/finding.js";
export type { FoldOptions } from "./engine/fold.js";
export { ProcessTable, type ProcessTableOptions, type ProcessTableStats, type SeedReport } from "./process/table.js";
export { OFFLINE_HOST, type OpenFile, type OpenObject, type OpenFilesLook, type DigestLook, type IncompleteReason, type LiveProcessFacts } from "./host/host-view.js";
export { ProcHostView, type ProcHostOptions } from "./host/proc-host.js";
export { builtinRules, type BuiltinRuleOptions } from "./rules/builtin.js";
export {
  DEFAULT_STDIO_ALLOWLIST,
  TRC101_META,
  TRC101_PROFILES,
  createTrc101Rule,
  type StdioAllowEntry,
  type Trc101Options,
  type Trc101Profile,
} from "./rules/trc-101-stdio-over-socket.js";
export { createRelay001Rule, RELAY001_META, type Relay001Options } from "./rules/relay-001-relay-shell.js";
export { createRelay002Rule, RELAY002_META, type Relay002Options } from "./rules/relay-002-command-relay.js";
export { RelayGraph, type RelayGraphOptions, type RelayVerdict, type ChainLink, type RelaySocket } from "./rules/relay/relay-graph.js";
export type { OutboundSocket } from "./rules/sockets/outbound-registry.js";
export type { Holding, EndpointKey, Access } from "./rules/relay/holdings.js";
export type { ExistingTcpSocket, SocketOrigin } from "./host/tcp-table.js";
export { PreciseStdioJudge, type PreciseOptions, type Verdict as Trc101Verdict, type SuppressReason as Trc101SuppressReason } from "./rules/stdio/precise-judge.js";
export { InterpreterContents, identifyProgram, readsCommandsFromStdin, type InterpreterFamily } from "./rules/stdio/interpreters.js";

// --- capture: recorded events (JSON lines), read, written and validated -------------------
export { CaptureLineError, readCapture, type MalformedLine, type ReadCaptureOptions } from "./capture/reader.js";
export { CaptureWriter, captureLine, openCaptureFile, type CaptureFileOptions } from "./capture/writer.js";
export { sensorEventSchema } from "./capture/schema.js";

// --- pipeline: events in, findings out, to the outputs; live or replayed -------------------
export { Pipeline, type BatchSource, type PipelineOptions, type PipelineStats, type RunReport } from "./pipeline/pipeline.js";
export { replayCapture, type ReplayOptions, type ReplayReport } from "./pipeline/replay.js";

// --- elastic: detection-rules TOML and EQL ----------------------------------------------
export { compileEql, compileEqlQuery, EqlError, getField, type CompiledEql, type CompiledQuery, type CompiledSequence, type EqlDocument } from "./eql/compile.js";
export { compileWildcard } from "./eql/wildcard.js";
export { compileRegex } from "./eql/regex.js";
export { SequenceMatcher, type SequenceMatcherOptions, type SequenceStats } from "./eql/sequence.js";
export { parseEql, type EqlExpr, type EqlQuery, type EqlEventQuery, type EqlSequenceQuery, type ValueExpr } from "./eql/parser.js";
export { loadElasticRuleFile, loadElasticRules, ElasticRuleError, type LoadedElasticRule, type ElasticRuleLoadResult, type ElasticLoadOptions } from "./rules/elastic/loader.js";
export { elasticRule, elasticRules, loadBuiltinElasticRules, builtinElasticRulesDir } from "./rules/elastic/rule.js";
export { buildExecEcsDocument } from "./rules/elastic/ecs-exec.js";

// --- output: where findings go, and the daemon's metrics ------------------------------------
export {
  OUTPUT_DROP_REASONS,
  OutputError,
  type FindingOutput,
  type FlushResult,
  type OutputDropReason,
  type OutputStats,
} from "./output/output.js";
export { OutputSet } from "./output/output-set.js";
export { EventLineOutput, taggedEventLine, type EventLineOutputOptions, type EventOutput, type EventOutputTrouble } from "./output/event-lines.js";
export type { StreamOutputOptions } from "./output/stream.js";
export { JsonLinesOutput, type JsonLinesOutputOptions } from "./output/json-lines.js";
export { PrettyOutput, formatPretty, type PrettyFormatOptions, type PrettyOutputOptions } from "./output/pretty.js";
export { FileOutput, type FileOutputOptions } from "./output/file.js";
export { SpooledWebhookOutput, WebhookOutput, type SpooledWebhookOutputOptions, type WebhookBackoff, type WebhookOutputOptions } from "./output/webhook.js";
export {
  SYSLOG_FACILITIES,
  SYSLOG_PROTOCOLS,
  SyslogOutput,
  type SyslogFacility,
  type SyslogOutputOptions,
  type SyslogProtocol,
  type SyslogReconnect,
  type SyslogTlsOptions,
} from "./output/syslog.js";
export { Spool, SpoolError, DEFAULT_SPOOL_DIR, type SpoolOptions, type SpoolRecord, type SpoolStats } from "./output/spool.js";
export { SpooledOutput, type SpooledFinding } from "./output/spooled-output.js";
export { NatsOutput, subjectToken, type NatsOutputOptions } from "./output/nats.js";
export type { StatsSnapshot } from "./metrics/snapshot.js";
export { DEFAULT_METRICS_PORT, PrometheusMetrics, type PrometheusMetricsOptions } from "./metrics/prometheus.js";
export { formatStatsLine } from "./metrics/stats-line.js";
