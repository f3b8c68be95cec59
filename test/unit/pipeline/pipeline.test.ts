/**
 * The pipeline: a batch goes through the table and the rules to the outputs (events first,
 * then findings), a reload swaps rules and outputs in one step and keeps the retired
 * outputs' totals, and the events output is bounded and counted like the others.
 */
import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { JsonLinesOutput, OutputSet, Pipeline, builtinRules, defineRule, type SensorEvent } from "sockeye";
import { EventLineOutput, taggedEventLine } from "sockeye/outputs";
import { connect, exec, fork } from "../engine/fixtures.js";

function collector(options: { stall?: boolean } = {}) {
  let text = "";
  const stream = new Writable({
    highWaterMark: 1,
    write(chunk: Buffer, _encoding, callback) {
      text += chunk.toString();
      if (!options.stall) callback();
    },
  });
  return { stream, lines: () => text.split("\n").filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>) };
}

const reverseShell: SensorEvent[] = [exec({ filename: "/bin/bash", args: ["bash", "-i"] }), connect({ fd: 0 })];

describe("Pipeline", () => {
  it("feeds a batch through the rules to the outputs, its events before its findings", async () => {
    const out = collector();
    const outputs = new OutputSet(
      [new JsonLinesOutput({ stream: out.stream, name: "stdout" })],
      [new EventLineOutput({ name: "events", stream: out.stream, format: taggedEventLine })],
    );
    const pipeline = new Pipeline({ rules: builtinRules(), outputs, hostName: "h" });
    await pipeline.open();
    const findings = pipeline.process(reverseShell);
    await pipeline.close();
    expect(findings.map((finding) => finding.rule.id)).toEqual(["TRC-101"]);
    const lines = out.lines();
    expect(lines.map((line) => ("sockeye.event" in line ? "event" : "finding"))).toEqual(["event", "event", "finding"]);
    expect(pipeline.stats().outputs.map((stats) => [stats.name, stats.written])).toEqual([
      ["stdout", 1],
      ["events", 2],
    ]);
    expect(pipeline.stats().engine.findingsByRule).toEqual({ "TRC-101": 1 });
  });

  it("attaches to one source of batches at a time, until detach() or close()", async () => {
    let listener: ((events: SensorEvent[]) => void) | undefined;
    const source = { subscribe: (l: (events: SensorEvent[]) => void) => ((listener = l), () => (listener = undefined)) };
    const pipeline = new Pipeline({ rules: builtinRules() });
    expect(pipeline.attach(source)).toBeUndefined();
    listener?.(reverseShell);
    expect(pipeline.stats().engine.findingsByRule).toEqual({ "TRC-101": 1 });
    expect(() => pipeline.attach(source)).toThrow(/^this pipeline is already attached to a source: detach\(\) it first$/);
    pipeline.detach();
    expect(listener).toBeUndefined();
    pipeline.detach();
    pipeline.attach(source);
    expect(listener).toBeDefined();
    await pipeline.close();
    expect(listener).toBeUndefined();
  });

  it("reload swaps rules and outputs together and keeps what the retired outputs delivered", async () => {
    const first = collector();
    const second = collector();
    const pipeline = new Pipeline({ rules: builtinRules(), outputs: new OutputSet([new JsonLinesOutput({ stream: first.stream, name: "stdout" })]) });
    await pipeline.open();
    pipeline.process(reverseShell);
    const everyFork = defineRule({
      meta: { id: "EVERY-FORK", name: "fork", description: "", severity: "low", threat: [], source: "test" },
      kinds: ["fork"],
      evaluate: () => ({}),
    });
    const flushed = await pipeline.reload({ rules: [everyFork], outputs: new OutputSet([new JsonLinesOutput({ stream: second.stream, name: "stdout" })]) });
    expect(flushed).toEqual({ stdout: { complete: true, abandoned: 0 } });
    pipeline.process([fork(), connect({ fd: 1, task: { pid: 77 } })]);
    await pipeline.close();
    expect(first.lines().map((f) => (f["rule"] as { id: string }).id)).toEqual(["TRC-101"]);
    expect(second.lines().map((f) => (f["rule"] as { id: string }).id)).toEqual(["EVERY-FORK"]);
    expect(pipeline.stats().outputs.map((stats) => [stats.name, stats.written])).toEqual([["stdout", 2]]);
  });

  it("a reload whose outputs cannot open changes nothing", async () => {
    const out = collector();
    const pipeline = new Pipeline({ rules: builtinRules(), outputs: new OutputSet([new JsonLinesOutput({ stream: out.stream, name: "stdout" })]) });
    await pipeline.open();
    const ended = new Writable({ write: (_chunk, _encoding, callback) => callback() });
    ended.end();
    await expect(pipeline.reload({ rules: [], outputs: new OutputSet([new JsonLinesOutput({ stream: ended, name: "stdout" })]) })).rejects.toThrow(
      /^output stdout: /,
    );
    pipeline.process(reverseShell);
    await pipeline.close();
    expect(pipeline.rules.map((rule) => rule.meta.id)).toEqual(["TRC-101", "RELAY-001", "SHELL-001"]);
    expect(out.lines()).toHaveLength(1);
  });

  it("the events output is bounded: a stalled reader makes it drop and count, never buffer without end", async () => {
    const stalled = collector({ stall: true });
    const events = new EventLineOutput({ name: "events", stream: stalled.stream, format: taggedEventLine, maxBufferedBytes: 64 });
    const pipeline = new Pipeline({ rules: [], outputs: new OutputSet([], [events]) });
    await pipeline.open();
    for (let i = 0; i < 5; i++) pipeline.process([fork()]);
    const stats = pipeline.stats().outputs[0]!;
    expect(stats.dropped.queue_full).toBe(4);
    expect(stats.queueDepth).toBe(1);
    expect(await pipeline.close(10)).toEqual({ events: { complete: false, abandoned: 1 } });
    expect(pipeline.stats().outputs[0]!.dropped.flush_timeout).toBe(1);
  });
});
