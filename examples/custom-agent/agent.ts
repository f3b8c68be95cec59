/**
 * A small custom agent built on sockeye as a library: its own rule next to sockeye's
 * built-in rules, run over a recorded capture, findings printed as JSON lines. main.ts
 * runs it from the command line; the unit tests call runAgent directly.
 *
 * On a live host the same engine would be fed from the sensor's event stream instead of
 * `replayCapture` (see examples/README.md).
 */
import { fileURLToPath } from "node:url";
import type { Writable } from "node:stream";
import { Engine, ProcessTable, builtinRules, replayCapture } from "sockeye";
import { createWatchedPortRule } from "./watched-port-rule.js";

export const SAMPLE_CAPTURE = fileURLToPath(new URL("./capture.jsonl", import.meta.url));

export interface AgentOptions {
  capture: string;
  /** Findings, one JSON object per line. */
  out: Writable;
  /** Malformed capture lines and the closing summary. */
  err: Writable;
  /** Fixed in tests so the output is reproducible. */
  hostName?: string;
  now?: () => number;
}

export async function runAgent(options: AgentOptions): Promise<void> {
  const engine = new Engine({
    rules: [...builtinRules(), createWatchedPortRule(new Set([6379, 31337]))],
    // A replay starts from an empty table: the capture's own fork/exec events fill it.
    processes: new ProcessTable(),
    logger: { warn: (message, details) => options.err.write(`${JSON.stringify({ message, ...details })}\n`) },
    ...(options.hostName !== undefined ? { hostName: options.hostName } : {}),
    ...(options.now !== undefined ? { now: options.now } : {}),
  });
  const report = await replayCapture(engine, options.capture, {
    onFinding: (finding) => options.out.write(`${JSON.stringify(finding)}\n`),
    onMalformed: (line) => options.err.write(`capture line ${line.lineNumber}: ${line.reason}\n`),
  });
  const stats = engine.stats();
  const summary = {
    events: report.events,
    findings: report.findings,
    malformedLines: report.malformedCount,
    findingsByRule: stats.findingsByRule,
    folded: stats.folded,
  };
  options.err.write(`${JSON.stringify({ summary })}\n`);
}
