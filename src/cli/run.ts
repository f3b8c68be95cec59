/**
 * `sockeye run`: sensor → engine → JSON lines on stdout. Logs one line containing "ready"
 * on stderr once every hook is attached; SIGINT/SIGTERM flush, detach and exit 0.
 */
import { openSensor, type SensorOptions } from "../sensor/sensor.js";
import { Engine } from "../engine/engine.js";
import { ProcessTable } from "../process/table.js";
import { loadRuleCatalog, type RuleCatalogOptions } from "../rules/catalog.js";

export interface RunOptions extends Pick<SensorOptions, "stdioFdMax" | "skipCandidates">, Pick<RuleCatalogOptions, "rulePaths" | "lenient"> {
  events: boolean;
  fold: boolean;
}

function log(message: string, details: Record<string, unknown> = {}): void {
  process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level: "info", message, ...details })}\n`);
}

function warn(message: string, details: Record<string, unknown> = {}): void {
  process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level: "warn", message, ...details })}\n`);
}

export async function runDaemon(options: RunOptions): Promise<void> {
  // Rules first: a bad rule file fails the start before anything is loaded into the kernel.
  const catalog = loadRuleCatalog({
    ...(options.rulePaths ? { rulePaths: options.rulePaths } : {}),
    ...(options.lenient !== undefined ? { lenient: options.lenient } : {}),
  });
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
  const processes = new ProcessTable();
  const sensor = await openSensor({
    ...(options.stdioFdMax !== undefined ? { stdioFdMax: options.stdioFdMax } : {}),
    ...(options.skipCandidates ? { skipCandidates: options.skipCandidates } : {}),
  });
  processes.seedFromProc();
  const engine = new Engine({ rules: catalog.rules, processes, fold: options.fold });

  const out = process.stdout;
  sensor.subscribe((events) => {
    let chunk = "";
    for (const event of events) {
      if (options.events) chunk += `${JSON.stringify({ "sockeye.event": event })}\n`;
      for (const finding of engine.handle(event)) chunk += `${JSON.stringify(finding)}\n`;
    }
    if (chunk) out.write(chunk);
  });

  for (const action of sensor.features.actions) log(action);
  const live = sensor.programs.filter((p) => p.live).map((p) => p.program);
  const passed = sensor.programs.filter((p) => !p.live).map((p) => `${p.program}: ${p.reason}`);
  log("sensor ready", { live, passed });

  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      const counters = sensor.counters(); // read while the maps still exist
      sensor.close(); // drains the rings into a last batch, then detaches every program
      log("stopped", { signal, kernel: counters, sensor: sensor.stats(), engine: engine.stats() });
      resolve();
    };
    process.once("SIGINT", () => stop("SIGINT"));
    process.once("SIGTERM", () => stop("SIGTERM"));
  });
  await new Promise<void>((resolve) => (out.writableNeedDrain ? out.once("drain", resolve) : resolve()));
}
