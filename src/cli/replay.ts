/**
 * `sockeye replay FILE`: the configured rules over a recorded capture, findings as JSON lines
 * on stdout and a one-line summary on stderr. Malformed lines are counted and named (or, with
 * --strict, stop the replay), never skipped in silence.
 */
import { statSync } from "node:fs";
import { Engine } from "../engine/engine.js";
import { replayCapture } from "../engine/replay.js";
import { ProcessTable } from "../process/table.js";
import type { Config } from "./config.js";
import { ConfigError } from "./config.js";
import { loadRules, reportRules } from "./run.js";
import { log, warn } from "./log.js";

/** Returns the exit code: 0, or 1 when some lines were malformed. */
export async function replayCommand(capture: string, config: Config, options: { strict: boolean }): Promise<number> {
  let isFile = false;
  try {
    isFile = statSync(capture).isFile();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ConfigError(`capture ${capture}: ${code === "ENOENT" ? "no such file" : `cannot read: ${code ?? (error as Error).message}`}`);
  }
  if (!isFile) throw new ConfigError(`capture ${capture}: not a regular file`);
  const catalog = loadRules(config);
  reportRules(catalog);
  // A replay never reads this host's /proc: the capture's processes are not ours.
  const engine = new Engine({ rules: catalog.rules, processes: new ProcessTable(), fold: config.rules.fold, logger: { warn } });
  let out = "";
  const report = await replayCapture(engine, capture, {
    strict: options.strict,
    onFinding: (finding) => {
      out += `${JSON.stringify(finding)}\n`;
      if (out.length > 1 << 16) {
        process.stdout.write(out);
        out = "";
      }
    },
  });
  process.stdout.write(out);
  for (const line of report.malformed) warn("malformed capture line", { line: line.lineNumber, reason: line.reason });
  log("replayed", { capture, events: report.events, findings: report.findings, malformed: report.malformedCount });
  return report.malformedCount > 0 ? 1 : 0;
}
