/**
 * `sockeye run`, the daemon: config → rules and outputs → sensor → pipeline, until a signal.
 *
 * Everything that can be wrong with the configuration, the rules or an output fails before
 * a single program is loaded into the kernel. Logs one line containing "ready" on stderr
 * once every hook is attached (and tells systemd, when started by it). SIGHUP reloads the
 * config file, the rules and the outputs between two batches, so no event is lost; a reload
 * that fails keeps what runs. SIGINT/SIGTERM: the rings are drained into a last batch, every
 * program detached, every output flushed, exit 0.
 */
import { openSensorSync, type Sensor } from "../sensor/sensor.js";
import { sensorOptionsFromConfig, type SensorConfig } from "../sensor/options.js";
import { ProcessTable } from "../process/table.js";
import { WorkerHostView } from "../host/worker-host.js";
import type { OutputStats } from "../output/output.js";
import { Pipeline } from "../pipeline/pipeline.js";
import type { AnyRule } from "../engine/rule.js";
import { CoverageMonitor, coverageCounts, type CoverageCounts } from "../pipeline/coverage.js";
import { Heartbeat, heartbeatStatus } from "../pipeline/heartbeat.js";
import { DaemonStats } from "../metrics/daemon-stats.js";
import { resolveConfig, type Config, type ConfigInput } from "../config/config.js";
import { loadConfiguredRules, logRuleCatalog } from "../config/rules.js";
import { readsAcceptedConnections } from "../rules/catalog.js";
import { buildOutputs } from "../config/outputs.js";
import { acquireInstanceLock } from "../service/instance-lock.js";
import { StartSequence } from "../service/start-sequence.js";
import { notifySystemd, startWatchdog } from "../service/systemd.js";
import { daemonLogger, log, warn } from "../service/log.js";
import { missingCoverageCapabilities } from "../service/capabilities.js";
import { Health, watchAttachment } from "../service/health.js";
import { serveStatus } from "../service/status-socket.js";
import { Enforcer } from "../enforce/enforcer.js";
import { liveEnforceHost } from "../enforce/host.js";
import { allowedIdentities, findKernelInterpreters, scopedAllowEntries, withResolvedExecutables } from "../enforce/interpreters.js";
import { createHistogram, type RecordableHistogram } from "node:perf_hooks";

export interface RunRequest {
  /** --config; re-read on SIGHUP. */
  configPath?: string;
  /** Settings given as flags: they win over the file, on start and on every reload. */
  flags: ConfigInput;
  /** --capture: also record every event in the capture format `sockeye replay` reads. */
  capturePath?: string;
}

export async function runDaemon(request: RunRequest): Promise<void> {
  const config = resolveConfig(request.configPath, request.flags);
  // Rules and outputs first: a bad rule file stops the start before anything is opened.
  const catalog = loadConfiguredRules(config);
  const start = new StartSequence();
  const capture = request.capturePath === undefined ? undefined : await start.step(() => openCapture(request.capturePath!), (file) => file.close());
  // Open files and file digests are read in a worker: their cost is a local user's choice.
  const host = new WorkerHostView();
  host.start();
  // Enforcement (docs/enforcement.md): the kernel path is loaded only when the table's mode is
  // "on"; dry-run takes its decision again from each finding's record and loads nothing.
  const opened: { sensor?: Sensor } = {};
  const enforcing = config.enforce.mode !== "off" || Object.values(config.enforce.rules).some((m) => m !== "off");
  const interpreters = enforcing ? findKernelInterpreters(undefined, allowedIdentities(config.enforce.allow).names) : { names: [], exes: [] };
  const enforceConfig = (c: typeof config.enforce) => ({ ...c, allow: withResolvedExecutables(c.allow) });
  const enforcer = enforcing ? new Enforcer(enforceConfig(config.enforce), liveEnforceHost(() => opened.sensor, host), interpreters.names) : undefined;
  // The allowlist holds in the kernel too: its executables by identity, a name-only entry by
  // leaving that name out of the kernel's list.
  const allowed = allowedIdentities(config.enforce.allow);
  // The kernel knows the shape, not the rule: a rule held below "on" keeps the kernel path out,
  // so it never stops what a finding then calls dry-run; userspace enforces the rest.
  warnUnknownEnforceRules(config.enforce.rules, catalog.rules);
  const heldBack = Object.entries(config.enforce.rules).filter(([, m]) => m !== "on").map(([id]) => id);
  if (config.enforce.mode === "on" && heldBack.length > 0)
    warn("enforcement: kernel path not loaded, as rules are held below \"on\": userspace kills only", { rules: heldBack });
  // Nor can the kernel see cgroups: an allow entry by unit or cgroup keeps it out too, so it never
  // kills what that entry spares (docs/enforcement.md, Safety).
  const scoped = scopedAllowEntries(config.enforce.allow);
  if (config.enforce.mode === "on" && heldBack.length === 0 && scoped.length > 0)
    warn("enforcement: kernel path not loaded, as allow entries name a unit or cgroup it cannot see: userspace kills only", { allow: scoped });
  const kernelEnforce =
    config.enforce.mode === "on" && heldBack.length === 0 && scoped.length === 0
      ? { enforce: true, enforceNames: interpreters.names, enforceExes: interpreters.exes, enforceAllowed: allowed.exes }
      : {};
  const pipeline = new Pipeline({
    rules: catalog.rules,
    processes: new ProcessTable({ host }),
    fold: config.rules.fold,
    logger: daemonLogger,
    outputs: buildOutputs(config),
    recorders: capture !== undefined ? [capture] : [],
    ...(enforcer !== undefined ? { enforcer } : {}),
  });
  await start.step(() => pipeline.open(), () => pipeline.close(0));
  const stats = new DaemonStats();
  await start.step(() => stats.configure(config.metrics), () => stats.stop());
  // Accepted connections leave the kernel only when a loaded rule reads them: a busy server
  // accepts thousands a second, and no built-in rule needs them.
  const acceptRecords = readsAcceptedConnections(catalog.rules);
  const sensor = await start.step(() => Promise.resolve(openSensorSync({ ...sensorOptionsFromConfig(config.sensor), ...kernelEnforce, acceptRecords })), (opened) => opened.close());
  opened.sensor = sensor;
  // After the sensor, so that a user without the privileges is told about those first; a
  // refused second daemon has its programs loaded for a moment, then closes them.
  const lock = await start.step(() => acquireInstanceLock(), (held) => held.release());

  // Before the ready line: whoever reads it may signal the daemon at once (systemd, a test),
  // and a SIGTERM or SIGHUP ahead of its handler would kill it without draining or flushing.
  const stopped = stopSignal();
  const reloads = reloadOnHangup(request, config.sensor, pipeline, stats, enforcer, "enforce" in kernelEnforce ? config.enforce : undefined, acceptRecords);
  const seeded = pipeline.seedFromProc();
  // How long batches waited for the event loop behind host reads and rules (each batch is
  // stamped when the reader queues it): in the stats line, the metrics and the stopped line
  // (the figure the event-loop bench and the kernel tier's lag test read). Sampled by the
  // batches themselves, not by a timer: the 10 ms timer of monitorEventLoopDelay woke an
  // idle daemon 100 times a second, about 6 ms of CPU a second.
  const loopLag = createHistogram();
  const daemonStats = () => ({ eventLoopLagMs: lagPercentiles(loopLag), workersReplaced: host.workersReplaced });
  const snapshot = () => ({ timeMs: Date.now(), ...pipeline.stats(), kernel: sensor.counters(), daemon: daemonStats() });
  stats.attach(snapshot);
  // Sampled by the coverage check, up to five times a second. The counts are built only when
  // the kernel or the decoder lost something since the last build (a flood an attacker drives
  // is reported within the second), or once a second for what outputs and rules let go: a
  // whole stats snapshot each time, in code run too rarely to be optimized, was a tenth of an
  // idle daemon's event-loop CPU.
  let lossCounts: CoverageCounts = {};
  let lossCountsAtMs = Number.NEGATIVE_INFINITY;
  let lostAtBuild = -1;
  const losses = (): CoverageCounts => {
    const nowMs = Date.now();
    const lost = sensor.lostTotal();
    if (lost === lostAtBuild && nowMs - lossCountsAtMs < 1_000) return lossCounts;
    lostAtBuild = lost;
    lossCountsAtMs = nowMs;
    lossCounts = {
      ...coverageCounts({ ...pipeline.lossStats(), kernel: sensor.counters() }),
      "sensor/decode": { ...sensor.stats().decodeDropped },
      // Records the kernel's admission turned away under pressure (a full ring is in kernel/<hook>).
      ...admissionDrops(sensor),
    };
    return lossCounts;
  };
  // Ready once events went through (the processes found in /proc are the first batch) and
  // while every program is attached.
  const health = new Health({
    notReady: () => [
      ...(sumOf(pipeline.stats().engine.eventsByKind) > 0 ? [] : ["no batch of events processed yet"]),
      ...attachment.detached().map((d) => `program ${d.program} detached: ${d.reason}`),
    ],
    losses,
    timer: false,
  });
  // Checked on every batch (at most every 200 ms), and by a 1 s timer between batches.
  const coverage = new CoverageMonitor({ sample: () => health.observe(losses()), emit: (finding) => pipeline.outputs.write([finding]), timerMs: 1_000 });
  pipeline.watchCoverage(coverage);
  coverage.start();
  const heartbeat = new Heartbeat({ intervalS: config.output.heartbeat_interval_s, outputs: () => pipeline.outputs, status: () => heartbeatStatus(snapshot()) });
  heartbeat.start();
  // A program detached behind the daemon's back (bpftool, another root process) blinds it:
  // not ready, and a SENSOR-001 finding, checked every few seconds.
  const attachment = watchAttachment(sensor, (program, reason) => {
    coverage.report(`program/${program}`, "detached");
    warn("program found detached", { program, reason });
  });
  health.start();
  stats.attachHealth(() => health.report());
  const status = await serveStatus(() => health.report());
  pipeline.attach(sensor);
  // A shell whose look timed out is judged again as soon as the worker has the answer.
  const stopReconsidering = host.onLateAnswers(() => pipeline.reconsider());
  // Logged once the sensor is up, so a start that fails says one line and nothing else.
  logRuleCatalog(catalog, daemonLogger);
  // Before "sensor ready": whoever waits for ready has the enforcement line too.
  if (enforcer !== undefined)
    log("enforcement", { mode: config.enforce.mode, rules: config.enforce.rules, kernel: sensor.liveProgram("enforce") ?? "not loaded", interpreters: interpreters.names.length, executables: interpreters.exes.length });
  logReady(sensor, pipeline, stats, seeded.seeded);
  for (const missing of missingCoverageCapabilities()) warn(`running without ${missing.name}`, { loss: missing.loss });
  void notifySystemd("READY=1");
  const stopWatchdog = startWatchdog();
  // From ready on: start-up's one-off work is not the lag detections suffer.
  const stopLag = sensor.subscribe((events, waitedMs) => {
    if (events.length > 0) loopLag.record(Math.max(1, Math.round(waitedMs * 1000)));
    coverage.poke();
  });

  const signal = await stopped;
  stopReconsidering();
  stopLag();
  stopWatchdog();
  attachment.stop();
  await status.close();
  health.stop();
  await reloads.stop();
  await notifySystemd("STOPPING=1");
  await stats.stop(); // no stats tick may read the sensor once it is closed
  await sensor.close(); // every program detached, then the rings' last batches reach the pipeline
  pipeline.detach(); // ...and are processed, before the last coverage window is counted
  lossCountsAtMs = Number.NEGATIVE_INFINITY; // the last count reads everything afresh
  coverage.stop(); // what the last window lost, reported before the outputs flush
  heartbeat.stop();
  const flushed = await pipeline.close();
  await host.close();
  await lock.release();
  log("stopped", {
    signal,
    kernel: sensor.counters(), // the totals at close, the last drain included
    sensor: sensor.stats(),
    scheduling: sensor.scheduling(), // as it ran: "normal: busy (N times so far)" after a flood
    ...pipeline.stats(),
    ...(capture !== undefined ? { capture: captureSummary(capture.stats()) } : {}),
    abandonedAtStop: abandoned(flushed),
    ...daemonStats(),
    ...(enforcer !== undefined ? { enforcement: { ...enforcementSummary(enforcer), kernel: sensor.enforceActions() } } : {}),
  });
  await new Promise<void>((resolve) => (process.stdout.writableNeedDrain ? process.stdout.once("drain", resolve) : resolve()));
}

async function openCapture(path: string) {
  const { openCaptureFile } = await import("../capture/writer.js");
  return openCaptureFile(path, {
    onTrouble: (trouble, error) =>
      trouble === "falling_behind"
        ? warn("capture falls behind the disk: batches dropped (counted)", { path })
        : warn("capture stopped: the file cannot be written; events are no longer recorded", { path, error }),
  });
}

/** p50, p99 and max of the batches' waits for the event loop (recorded in µs), in ms; zeros before any. */
function lagPercentiles(waits: RecordableHistogram): { p50: number; p99: number; max: number } {
  if (waits.count === 0) return { p50: 0, p99: 0, max: 0 };
  const ms = (us: number) => Math.round(us / 10) / 100;
  return { p50: ms(waits.percentile(50)), p99: ms(waits.percentile(99)), max: ms(waits.max) };
}

/** Kills and their latency (p50, p99 of the userspace kills kept), for the `stopped` line. */
function enforcementSummary(enforcer: Enforcer): Record<string, unknown> {
  const { latenciesMs, ...rest } = enforcer.stats();
  const sorted = [...latenciesMs].sort((a, b) => a - b);
  const at = (q: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : null);
  return { ...rest, latencyMs: { p50: at(0.5), p99: at(0.99), n: sorted.length } };
}

function captureSummary(stats: OutputStats): { written: number; dropped: number; error?: string } {
  const dropped = Object.values(stats.dropped).reduce((sum, n) => sum + n, 0);
  return { written: stats.written, dropped, ...(stats.lastError !== undefined ? { error: stats.lastError } : {}) };
}

function abandoned(flushed: Record<string, { abandoned: number }>): number {
  return Object.values(flushed).reduce((sum, result) => sum + result.abandoned, 0);
}

function logReady(sensor: Sensor, pipeline: Pipeline, stats: DaemonStats, processesSeeded: number): void {
  for (const action of sensor.features.actions) log(action);
  log("sensor ready", {
    live: sensor.programs.filter((p) => p.live).map((p) => p.program),
    passed: sensor.programs.filter((p) => !p.live).map((p) => `${p.program}: ${p.reason}`),
    scheduling: sensor.scheduling(),
    processesSeeded,
    outputs: pipeline.outputs.names,
    ...(stats.metricsAddress !== undefined ? { metrics: `http://${stats.metricsAddress}/metrics` } : {}),
  });
}

function stopSignal(): Promise<string> {
  return new Promise((resolve) => {
    process.once("SIGINT", () => resolve("SIGINT"));
    process.once("SIGTERM", () => resolve("SIGTERM"));
  });
}

/**
 * SIGHUP: the config file and flags again, then new rules and outputs swapped into the
 * pipeline. Sensor settings are fixed once programs are loaded: a reload can only warn
 * about them, and the rules keep the running sensor's stdio fds. stop() waits for a reload
 * under way and takes no more.
 */
/** A rule id in [enforce.rules] that no running rule has: a typo would otherwise pass in silence. */
function warnUnknownEnforceRules(modes: Record<string, string>, rules: readonly AnyRule[]): void {
  const running = new Set(rules.map((r) => r.meta.id));
  const unknown = Object.keys(modes).filter((id) => !running.has(id));
  if (unknown.length > 0) warn("enforce.rules names rules that are not running (a typo, or a rule turned off): their modes do nothing", { rules: unknown });
}

function reloadOnHangup(
  request: RunRequest, runningSensor: SensorConfig, pipeline: Pipeline, stats: DaemonStats, enforcer: Enforcer | undefined,
  /** The [enforce] settings the kernel path was loaded with, when it was: it cannot follow a reload. */
  kernelEnforce: Config["enforce"] | undefined,
  /** Whether the sensor reports accepted connections (a setting of its programs, fixed at start). */
  acceptRecords: boolean,
): { stop(): Promise<void> } {
  let reloading: Promise<void> = Promise.resolve();
  let stopping = false;
  const reload = async () => {
    if (stopping) return;
    let next;
    try {
      const config = resolveConfig(request.configPath, request.flags);
      const catalog = loadConfiguredRules(config, runningSensor.stdio_fd_max);
      const flushed = await pipeline.reload({ rules: catalog.rules, outputs: buildOutputs(config) });
      next = { config, catalog, flushed };
    } catch (error) {
      warn("reload failed: still running the previous configuration", { error: (error as Error).message });
      return;
    }
    if (JSON.stringify(next.config.sensor) !== JSON.stringify(runningSensor)) warn("reload: [sensor] settings take effect only at restart");
    logRuleCatalog(next.catalog, daemonLogger);
    if (!acceptRecords && readsAcceptedConnections(next.catalog.rules))
      warn("reload: rules reading accepted connections see them only after a restart", { rules: next.catalog.rules.filter((r) => r.kinds.includes("accept")).map((r) => r.meta.id) });
    warnUnknownEnforceRules(next.config.enforce.rules, next.catalog.rules);
    // Modes, allowlist and budget change at once; whether the kernel path runs, only at restart.
    // With the kernel path loaded (its names and allowlist frozen in its maps), [enforce] keeps
    // what it started with, so the findings never say other than what the kernel does.
    if (kernelEnforce !== undefined && JSON.stringify(next.config.enforce) !== JSON.stringify(kernelEnforce))
      warn("reload: [enforce] settings take effect only at restart while the kernel path is loaded");
    else if (enforcer !== undefined) enforcer.setConfig({ ...next.config.enforce, allow: withResolvedExecutables(next.config.enforce.allow) });
    else if (next.config.enforce.mode !== "off") warn("reload: enforcement can be turned on only at restart");
    await stats.configure(next.config.metrics).catch((error: Error) => warn("reload: metrics settings not changed", { error: error.message }));
    log("reloaded", {
      running: pipeline.rules.map((rule) => rule.meta.id),
      outputs: pipeline.outputs.names,
      abandonedByPreviousOutputs: abandoned(next.flushed),
    });
  };
  // A SIGHUP after stop() must not reopen what is being closed.
  const onHangup = () => {
    reloading = reloading.then(reload);
  };
  process.on("SIGHUP", onHangup);
  return {
    stop: async () => {
      stopping = true;
      process.off("SIGHUP", onHangup);
      await reloading;
    },
  };
}

/** Per ring, the records the kernel's ring admission refused, by reason (not "ring_full"). */
function admissionDrops(sensor: Sensor): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {};
  for (const [ring, drops] of Object.entries(sensor.ringDrops())) {
    const { ring_full: _full, ...admission } = drops.byReason;
    out[`kernel-admission/${ring}`] = admission;
  }
  return out;
}

function sumOf(counts: Record<string, number>): number {
  let total = 0;
  for (const n of Object.values(counts)) total += n;
  return total;
}
