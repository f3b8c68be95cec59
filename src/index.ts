/**
 * sockeye's public API: `import { openSensorSync, Pipeline, ... } from "sockeye"`
 * (docs/design.md §13). The root holds what an agent needs; `sockeye/outputs`, `sockeye/eql`,
 * `sockeye/capture` and `sockeye/metrics` hold the rest (src/entry/). Anything else is
 * internal. api/ records this surface: `npm run api:update` after a deliberate change.
 */

// --- errors: every error sockeye throws is a SockeyeError (code, exitStatus) -------------
export { EXIT_BAD_INPUT, EXIT_REFUSED, OptionError, SockeyeError, type ExitStatus, type SockeyeErrorCode } from "./errors.js";

// --- sensor: kernel programs and their typed events --------------------------------------
export * from "./sensor/events.js";
export { openSensorSync, probe, type Sensor } from "./sensor/sensor.js";
export type { AttachCheck, BatchListener, EnforceActions, HookCounters, ProbeOptions, ProbeReport, SensorOptions, SensorStats } from "./sensor/sensor.js";
export type { NativeCandidate as ProgramCandidate, NativeFeatures as KernelFeatures, SensorScheduling } from "./sensor/binding.js";
export type { DecodeDropReason } from "./sensor/decode.js";
export { HOOKS, type HookName } from "./sensor/layout.js";
export { DEFAULT_STDIO_FD_MAX } from "./sensor/options.js";
export { SensorError } from "./sensor/errors.js";

// --- rules: the rule API, the engine, the process table, findings ------------------------
export * from "./engine/rule.js";
export { Engine, type DetectionAbsorber, type DropReason, type EngineLogger, type EngineOptions, type EngineStats } from "./engine/engine.js";
export type { Finding, FindingProcess, FindingProcessParent, FindingThreat } from "./engine/finding.js";
export type { EcsProcess, EcsProcessFields } from "./process/ecs-process.js";
export type { FoldOptions } from "./engine/fold.js";
export { ProcessTable, type ProcessTableOptions, type ProcessTableStats, type SeedReport } from "./process/table.js";
export { OFFLINE_HOST, type HostView, type OpenFile, type OpenObject, type OpenFilesLook, type DigestLook, type BuildIdLook, type IncompleteReason, type LiveProcessFacts } from "./host/host-view.js";
export { ProcHostView, type ProcHostOptions } from "./host/proc-host.js";
export type { ContainerIdentity, ContainerRuntime } from "./host/container.js";
export type { ContainerMetadata } from "./host/container-metadata.js";

// --- catalogs: the built-in rules (made by factories) and Elastic rule files -----------------
export { builtinRules, type BuiltinRuleOptions } from "./rules/builtin.js";
export {
  DEFAULT_STDIO_ALLOWLIST,
  TRC101_META,
  TRC101_PROFILES,
  createTrc101Rule,
  type OneOrMany,
  type StdioAllowEntry,
  type Trc101Options,
  type Trc101Profile,
} from "./rules/trc-101-stdio-over-socket.js";
export { RELAY001_META, createRelay001Rule, type Relay001Options } from "./rules/relay-001-relay-shell.js";
export { RELAY002_META, createRelay002Rule, type Relay002Options } from "./rules/relay-002-command-relay.js";
export { SHELL001_META, createShell001Rule, type Shell001Options } from "./rules/shell-001-network-fed-interpreter.js";
export type { RelayAgentAllowEntry, RelayGraphOptions } from "./rules/relay/relay-graph.js";
export type { NetworkFedOptions } from "./rules/behaviour/network-fed.js";
export type { Access, EndpointKey, Holding } from "./rules/relay/holdings.js";
export type { ExistingTcpSocket } from "./host/tcp-table.js";
export type { PreciseOptions } from "./rules/stdio/precise-judge.js";
export {
  ElasticRuleError,
  loadElasticRuleFile,
  loadElasticRules,
  type ElasticLoadOptions,
  type ElasticRuleLoadResult,
  type LoadedElasticRule,
} from "./rules/elastic/loader.js";
export { builtinElasticRulesDir, elasticRule, loadBuiltinElasticRules, type ElasticRule } from "./rules/elastic/rule.js";

// --- pipeline: events in, findings out, to the outputs; live or replayed -------------------
export { Pipeline, type BatchSource, type PipelineOptions, type PipelineStats, type RunReport } from "./pipeline/pipeline.js";
export { replayCapture, type ReplayOptions, type ReplayReport } from "./pipeline/replay.js";
export { CaptureLineError, type MalformedLine } from "./capture/reader.js";

// --- outputs: where findings go (all of them, and their parts, in sockeye/outputs) ----------
export { OutputError, type FindingOutput, type FlushResult, type OutputDropReason, type OutputStats, type StateRecord } from "./output/output.js";
export { OutputSet } from "./output/output-set.js";
export type { EventOutput } from "./output/event-lines.js";
export type { StreamOutputOptions } from "./output/stream.js";
export type { SpoolOptions } from "./output/spool.js";
export { JsonLinesOutput, type JsonLinesOutputOptions } from "./output/json-lines.js";
export { PrettyOutput, type PrettyOutputOptions } from "./output/pretty.js";
export { FileOutput, type FileOutputOptions } from "./output/file.js";
export { SpooledWebhookOutput, WebhookOutput, type SpooledWebhookOutputOptions, type WebhookBackoff, type WebhookOutputOptions } from "./output/webhook.js";
export { SYSLOG_FACILITIES, SYSLOG_PROTOCOLS, SyslogOutput, type SyslogFacility, type SyslogOutputOptions, type SyslogProtocol, type SyslogReconnect, type SyslogTlsOptions } from "./output/syslog.js";
export { NatsOutput, type NatsOutputOptions } from "./output/nats.js";
