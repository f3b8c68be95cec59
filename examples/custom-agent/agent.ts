/**
 * A small custom agent built on sockeye as a library: its own rule next to sockeye's
 * built-in rules, in a sockeye Pipeline whose output prints findings as JSON lines, fed a
 * recorded capture. main.ts runs it from the command line; the unit tests call runAgent.
 *
 * On a live host the same pipeline is attached to the sensor instead of replaying a capture
 * (`pipeline.attach(openSensorSync())`, see examples/README.md).
 */
import { fileURLToPath } from "node:url";
import type { Writable } from "node:stream";
import { JsonLinesOutput, OutputSet, Pipeline, ProcessTable, builtinRules, replayCapture } from "sockeye";
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
  const pipeline = new Pipeline({
    rules: [...builtinRules(), createWatchedPortRule(new Set([6379, 31337]))],
    // A replay starts from an empty table: the capture's own fork/exec events fill it.
    processes: new ProcessTable(),
    outputs: new OutputSet([new JsonLinesOutput({ stream: options.out, name: "out" })]),
    logger: { warn: (message, details) => options.err.write(`${JSON.stringify({ message, ...details })}\n`) },
    ...(options.hostName !== undefined ? { hostName: options.hostName } : {}),
    ...(options.now !== undefined ? { now: options.now } : {}),
  });
  await pipeline.open();
  const report = await replayCapture(pipeline, options.capture, {
    onMalformed: (line) => options.err.write(`capture line ${line.lineNumber}: ${line.reason}\n`),
  });
  // Every finding written before the summary.
  await pipeline.close();
  const stats = pipeline.stats().engine;
  const summary = {
    events: report.events,
    findings: report.findings,
    malformedLines: report.malformedCount,
    findingsByRule: stats.findingsByRule,
    folded: stats.folded,
  };
  options.err.write(`${JSON.stringify({ summary })}\n`);
}
