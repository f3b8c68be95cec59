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

  /** A rule that sees every fork, in order, and spends `spinMs` of CPU on each (a slow rule). */
  function forkRecorder(spinMs: (pid: number) => number) {
    const seen: number[] = [];
    const rule = defineRule({
      meta: { id: "SEEN", name: "seen", description: "", severity: "low", threat: [], source: "test" },
      kinds: ["fork"],
      evaluate: (event) => {
        seen.push(event.task.pid);
        const until = performance.now() + spinMs(event.task.pid);
        while (performance.now() < until);
        return undefined;
      },
    });
    return { rule, seen };
  }
  const forks = (count: number) => Array.from({ length: count }, (_, i) => fork({ task: { pid: i + 1 } }));
  const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));
  function manualSource() {
    let listener: ((events: SensorEvent[]) => void) | undefined;
    return { subscribe: (l: (events: SensorEvent[]) => void) => ((listener = l), () => (listener = undefined)), deliver: (events: SensorEvent[]) => listener?.(events) };
  }

  it("works a live batch through in slices of the event loop, in order, and detach() finishes it", async () => {
    // 0.2 ms per event: a chunk of 64 outlasts the 8 ms slice, so each turn processes one chunk.
    const recorder = forkRecorder(() => 0.2);
    const source = manualSource();
    const pipeline = new Pipeline({ rules: [recorder.rule] });
    pipeline.attach(source);
    source.deliver(forks(200));
    expect(recorder.seen).toHaveLength(64);
    expect(pipeline.stats().backlogEvents).toBe(136);
    // A second batch in the same turn waits behind the first: the turn's slice is spent.
    source.deliver(forks(3).map((event) => ({ ...event, task: { ...event.task, pid: 1000 + event.task.pid } })));
    expect(recorder.seen).toHaveLength(64);
    expect(pipeline.stats().backlogEvents).toBe(139);
    await nextTurn();
    expect(recorder.seen).toHaveLength(128);
    pipeline.detach();
    expect(pipeline.stats().backlogEvents).toBe(0);
    expect(recorder.seen).toEqual([...Array.from({ length: 200 }, (_, i) => i + 1), 1001, 1002, 1003]);
    expect(pipeline.stats().engine.eventsByKind).toEqual({ fork: 203 });
    await pipeline.close();
  });

  it("past 262,144 waiting events, the backlog is processed at once (the reader slows, memory does not grow)", async () => {
    // The first fork alone outlasts the slice; under the bound, the rest would wait a turn.
    const recorder = forkRecorder((pid) => (pid === 1 ? 10 : 0));
    const source = manualSource();
    const pipeline = new Pipeline({ rules: [recorder.rule] });
    pipeline.attach(source);
    source.deliver(forks(1000));
    expect(recorder.seen).toHaveLength(64);
    source.deliver(forks(262_144).map((event) => ({ ...event, task: { ...event.task, pid: event.task.pid + 1 } })));
    expect(recorder.seen).toHaveLength(263_144);
    expect(pipeline.stats().backlogEvents).toBe(0);
    await pipeline.close();
  });

  it("an engine absorber takes detections before they are built: counted for the rule, never delivered", () => {
    const everyFork = defineRule({
      meta: { id: "EVERY-FORK", name: "fork", description: "", severity: "low", threat: [], source: "test" },
      kinds: ["fork"],
      evaluate: () => ({}),
    });
    const pipeline = new Pipeline({ rules: [everyFork], hostName: "h" });
    const taken: [string, number][] = [];
    pipeline.engine.absorbWith((ruleId, _detection, event) => {
      taken.push([ruleId, "task" in event ? event.task.pid : 0]);
      return event.task.pid !== 2;
    });
    const delivered = pipeline.process(forks(3));
    expect(delivered.map((finding) => finding.process.pid)).toEqual([2]);
    expect(taken).toEqual([["EVERY-FORK", 1], ["EVERY-FORK", 2], ["EVERY-FORK", 3]]);
    expect(pipeline.stats().engine.findingsByRule).toEqual({ "EVERY-FORK": 3 });
    pipeline.engine.absorbWith(undefined);
    expect(pipeline.process(forks(2)).map((finding) => finding.process.pid)).toEqual([1, 2]);
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
