/**
 * `sockeye run`, the daemon: config → rules → outputs → instance lock → sensor → engine.
 *
 * Everything that can be wrong with the configuration, the rules or an output fails before
 * a single program is loaded into the kernel. Logs one line containing "ready" on stderr
 * once every hook is attached (and tells systemd, when started by it). SIGHUP reloads the
 * config file, the rules and the outputs between two batches, so no event is lost; a reload
 * that fails keeps what runs. SIGINT/SIGTERM: the rings are drained into a last batch, every
 * program detached, every output flushed, exit 0.
 */
import { spawn } from "node:child_process";
import { openSensor } from "../sensor/sensor.js";
import { sensorOptionsFromConfig } from "../sensor/options.js";
import { Engine } from "../engine/engine.js";
import type { Finding } from "../engine/finding.js";
import { ProcessTable } from "../process/table.js";
import { loadRuleCatalog, type RuleCatalog } from "../rules/catalog.js";
import { OutputSet } from "../output/output-set.js";
import { addOutputStats, type OutputStats } from "../output/output.js";
import { CaptureFile } from "./capture-file.js";
import { resolveConfig, type Config, type ConfigInput } from "./config.js";
import { acquireInstanceLock } from "./instance-lock.js";
import { buildOutputs } from "./outputs.js";
import { log, warn } from "./log.js";
import { DaemonStats } from "./daemon-stats.js";

export interface RunRequest {
  /** --config; re-read on SIGHUP. */
  configPath?: string;
  /** Settings given as flags: they win over the file, on start and on every reload. */
  flags: ConfigInput;
  /** --capture: also record every event in the capture format `sockeye replay` reads. */
  capturePath?: string;
}

export function loadRules(config: Config): RuleCatalog {
  return loadRuleCatalog({
    rulePaths: config.rules.paths,
    lenient: config.rules.lenient,
    builtinElastic: config.rules.shipped_elastic,
    trc101: {
      stdioFdMax: config.sensor.stdio_fd_max,
      extraAllowlist: config.rules.trc101_allow.map((entry) => ({
        label: entry.label,
        ...(entry.executable !== undefined ? { executable: entry.executable } : {}),
        ...(entry.name !== undefined ? { name: entry.name } : {}),
        ...(entry.parent_name !== undefined ? { parentName: entry.parent_name } : {}),
      })),
    },
  });
}

export function reportRules(catalog: RuleCatalog): void {
  for (const status of catalog.statuses) {
    if (status.status === "skipped") warn("rule skipped", { source: status.source, reason: status.reason });
    if (status.status === "runs" && status.unprovidedFields !== undefined) {
      warn("rule reads fields sockeye does not provide: conditions on them never hold", { rule: status.id, fields: status.unprovidedFields });
    }
  }
  log("rules loaded", {
    running: catalog.rules.map((rule) => rule.meta.id),
    skipped: catalog.statuses.filter((s) => s.status === "skipped").length,
  });
}

/** Sensor settings are fixed once programs are loaded: a reload can only warn about them. */
function sensorSettings(config: Config): string {
  return JSON.stringify(config.sensor);
}

/**
 * systemd (Type=notify, NotifyAccess=all) learns readiness from READY=1 on $NOTIFY_SOCKET.
 * Node cannot send on a unix datagram socket, so systemd-notify does it for us. READY also
 * names us as the main pid; STOPPING must not (sending on behalf of a pid that has exited
 * fails), and is awaited so that it is sent before we exit.
 */
function notifySystemd(state: "READY=1" | "STOPPING=1"): Promise<void> {
  if (process.env["NOTIFY_SOCKET"] === undefined) return Promise.resolve();
  // --no-block: no BARRIER round trip, which would need a systemd answering it.
  const args = state === "READY=1" ? ["--no-block", `--pid=${process.pid}`, state] : ["--no-block", state];
  return new Promise((resolve) => {
    const child = spawn("systemd-notify", args, { stdio: "ignore" });
    const timer = setTimeout(resolve, 2_000).unref();
    child.on("error", (error) => {
      warn("systemd-notify failed", { state, error: error.message });
      resolve();
    });
    child.on("exit", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

export async function runDaemon(request: RunRequest): Promise<void> {
  let config = resolveConfig(request.configPath, request.flags);
  // Rules and outputs first: a bad rule file or an unwritable output stops the start
  // before anything is loaded into the kernel.
  let catalog = loadRules(config);
  let outputs: OutputSet = buildOutputs(config);

  // Each start-up step that succeeded is undone, newest first, when a later one fails: a
  // refused start leaves no lock held, no port bound and no file half-written.
  const undo: (() => Promise<unknown>)[] = [];
  const step = async <T>(start: () => Promise<T>, stop: (value: T) => Promise<unknown>): Promise<T> => {
    try {
      const value = await start();
      undo.unshift(() => stop(value));
      return value;
    } catch (error) {
      for (const undoStep of undo) await undoStep();
      throw error;
    }
  };
  await step(() => outputs.open(), () => outputs.close(0));
  const capture = request.capturePath === undefined ? undefined : await step(() => CaptureFile.open(request.capturePath!), (file) => file.end());
  const stats = new DaemonStats();
  await step(() => stats.configure(config.metrics), () => stats.stop());
  const sensor = await step(
    () =>
      openSensor(sensorOptionsFromConfig(config.sensor)),
    async (opened) => opened.close(),
  );
  // After the sensor, so that a user without the privileges is told about those first; a
  // refused second daemon has its programs loaded for a moment, then closes them.
  const lock = await step(() => acquireInstanceLock(), (held) => held.release());
  const runningSensorSettings = sensorSettings(config);
  const processes = new ProcessTable();
  const seeded = processes.seedFromProc();
  // The engine's warnings (a rule that throws) go to the daemon's log, in its line format.
  const engine = new Engine({ rules: catalog.rules, processes, fold: config.rules.fold, logger: { warn } });
  // Output sets retired by reloads: their counts stay in every total, by output name.
  const retired = new Map<string, OutputStats>();
  const outputTotals = (): OutputStats[] => {
    const current = outputs.stats();
    const names = new Set(current.map((o) => o.name));
    return [
      ...current.map((o) => (retired.has(o.name) ? addOutputStats(retired.get(o.name)!, o) : o)),
      ...[...retired.values()].filter((o) => !names.has(o.name)),
    ];
  };
  stats.attach(() => ({ timeMs: Date.now(), engine: engine.stats(), kernel: sensor.counters(), outputs: outputTotals() }));

  const stdout = process.stdout;
  sensor.subscribe((events) => {
    const findings: Finding[] = [];
    let eventLines = "";
    for (const event of events) {
      if (config.output.events) eventLines += `${JSON.stringify({ "sockeye.event": event })}\n`;
      for (const finding of engine.handle(event)) findings.push(finding);
    }
    capture?.write(events);
    if (eventLines) stdout.write(eventLines);
    outputs.write(findings);
  });

  // Logged once the sensor is up, so a start that fails says one line and nothing else.
  reportRules(catalog);
  for (const action of sensor.features.actions) log(action);
  const live = sensor.programs.filter((p) => p.live).map((p) => p.program);
  const passed = sensor.programs.filter((p) => !p.live).map((p) => `${p.program}: ${p.reason}`);
  log("sensor ready", {
    live,
    passed,
    scheduling: sensor.scheduling(),
    processesSeeded: seeded.seeded,
    outputs: outputs.outputs.map((o) => o.name),
    ...(stats.metricsAddress !== undefined ? { metrics: `http://${stats.metricsAddress}/metrics` } : {}),
  });
  void notifySystemd("READY=1");

  let reloading: Promise<void> = Promise.resolve();
  let stopping = false;
  const reload = async () => {
    if (stopping) return;
    let next: { config: Config; catalog: RuleCatalog; outputs: OutputSet };
    try {
      const nextConfig = resolveConfig(request.configPath, request.flags);
      const nextCatalog = loadRules(nextConfig);
      const nextOutputs = buildOutputs(nextConfig);
      await nextOutputs.open();
      next = { config: nextConfig, catalog: nextCatalog, outputs: nextOutputs };
    } catch (error) {
      warn("reload failed: still running the previous configuration", { error: (error as Error).message });
      return;
    }
    if (stopping) {
      await next.outputs.close(0);
      return;
    }
    if (sensorSettings(next.config) !== runningSensorSettings) warn("reload: [sensor] settings take effect only at restart");
    // Between two batches (one JS turn): every later event meets the new rules and outputs.
    engine.setRules(next.catalog.rules);
    const previous = outputs;
    outputs = next.outputs;
    config = next.config;
    catalog = next.catalog;
    reportRules(catalog);
    await stats.configure(config.metrics).catch((error: Error) => warn("reload: metrics settings not changed", { error: error.message }));
    // What the retired set delivered and dropped, its last flush included, stays counted.
    const flushed = await previous.close();
    for (const retiredStats of previous.stats()) {
      const earlier = retired.get(retiredStats.name);
      retired.set(retiredStats.name, earlier !== undefined ? addOutputStats(earlier, retiredStats) : retiredStats);
    }
    log("reloaded", {
      running: catalog.rules.map((rule) => rule.meta.id),
      outputs: outputs.outputs.map((o) => o.name),
      abandonedByPreviousOutputs: Object.values(flushed).reduce((sum, result) => sum + result.abandoned, 0),
    });
  };
  const onHangup = () => {
    reloading = reloading.then(reload);
  };
  process.on("SIGHUP", onHangup);

  const signal = await new Promise<string>((resolve) => {
    process.once("SIGINT", () => resolve("SIGINT"));
    process.once("SIGTERM", () => resolve("SIGTERM"));
  });
  // A SIGHUP from now on must not reopen what is being closed.
  stopping = true;
  process.off("SIGHUP", onHangup);
  await notifySystemd("STOPPING=1");
  await reloading;
  await stats.stop(); // no stats tick may read the sensor once it is closed
  await sensor.shutdown(); // every program detached, then the rings' last batches reach the subscriber
  const flushed = await outputs.close();
  await capture?.end();
  await lock.release();
  log("stopped", {
    signal,
    kernel: sensor.counters(), // the totals at close, the last drain included
    sensor: sensor.stats(),
    scheduling: sensor.scheduling(), // as it ran: "normal: busy (N times so far)" after a flood
    engine: engine.stats(),
    outputs: outputTotals(),
    ...(capture !== undefined ? { capture: capture.stats() } : {}),
    abandonedAtStop: Object.values(flushed).reduce((sum, result) => sum + result.abandoned, 0),
  });
  await new Promise<void>((resolve) => (stdout.writableNeedDrain ? stdout.once("drain", resolve) : resolve()));
}
