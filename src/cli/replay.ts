/**
 * `sockeye replay FILE`: the configured rules over a recorded capture, findings as JSON lines
 * on stdout and a one-line summary of every engine counter on stderr. Malformed lines are
 * counted and named (or, with --strict, stop the replay), never skipped in silence.
 *
 * A capture is read once, as a stream (it may be a pipe, or larger than memory), so it is not
 * refused whole before any output: the findings made before a bad line are written, and the
 * bad line is named after them.
 */
import { createReadStream } from "node:fs";
import { ProcessTable } from "../process/table.js";
import { Pipeline } from "../pipeline/pipeline.js";
import { replayCapture } from "../pipeline/replay.js";
import { ConfigError, type Config } from "../config/config.js";
import { loadConfiguredRules, logRuleCatalog } from "../config/rules.js";
import { daemonLogger, log, warn } from "../service/log.js";
import { FileReadError, openRegularFileSync } from "../service/regular-file.js";

/** Returns the exit code: 0, or 1 when some lines were malformed. */
export async function replayCommand(capture: string, config: Config, options: { strict: boolean }): Promise<number> {
  // Opened before the rules load, so an unreadable capture is the only line on stderr.
  let fd: number;
  try {
    fd = openRegularFileSync(capture);
  } catch (error) {
    throw error instanceof FileReadError ? new ConfigError(`capture ${error.message}`) : error;
  }
  const catalog = loadConfiguredRules(config);
  logRuleCatalog(catalog, daemonLogger);
  // A replay never reads this host's /proc: the capture's processes are not ours.
  const pipeline = new Pipeline({ rules: catalog.rules, processes: new ProcessTable(), fold: config.rules.fold, logger: daemonLogger });
  // Not a JsonLinesOutput: that drops past its bound so a live sensor never waits; a replay
  // has no kernel to keep up with and prints every finding.
  let out = "";
  let report;
  try {
    report = await replayCapture(pipeline, createReadStream(capture, { fd }), {
      strict: options.strict,
      onFinding: (finding) => {
        out += `${JSON.stringify(finding)}\n`;
        if (out.length > 1 << 16) {
          process.stdout.write(out);
          out = "";
        }
      },
    });
  } finally {
    process.stdout.write(out);
  }
  for (const line of report.malformed) warn("malformed capture line", { line: line.lineNumber, reason: line.reason });
  const { dropped, folded, suppressedByRule, ruleErrors } = pipeline.engine.stats();
  log("replayed", {
    capture, events: report.events, findings: report.findings, malformed: report.malformedCount, dropped, folded, suppressed: suppressedByRule, ruleErrors,
  });
  return report.malformedCount > 0 ? 1 : 0;
}
