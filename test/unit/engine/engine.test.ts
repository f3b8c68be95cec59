import { describe, expect, it } from "vitest";
import { Engine, Pipeline, defineRule, type EngineLogger, type RuleGate, type SensorEvent } from "sockeye";
import { BASE_TIME_MS, connect, exec, fork } from "./fixtures.js";
import { FoldMemory } from "../../../src/engine/fold.js";

function recordingLogger() {
  const lines: { message: string; details?: Record<string, unknown> }[] = [];
  const logger: EngineLogger = { warn: (message, details) => lines.push({ message, ...(details ? { details } : {}) }) };
  return { logger, lines };
}

const everyConnect = defineRule({
  meta: { id: "TEST-every-connect", name: "every connect", description: "test", severity: "low", threat: [], source: "test" },
  kinds: ["connect"],
  evaluate: (event) => ({ fields: { destination: { port: event.remote?.port } } }),
});

const throwsOnConnect = defineRule({
  meta: { id: "TEST-throws", name: "throws", description: "test", severity: "low", threat: [], source: "test" },
  kinds: ["connect"],
  evaluate: () => {
    throw new Error("boom");
  },
});

describe("engine dispatch", () => {
  it("runs only the rules subscribed to an event's kind", () => {
    const seen: string[] = [];
    const execRule = defineRule({
      meta: { ...everyConnect.meta, id: "TEST-exec" },
      kinds: ["exec"],
      evaluate: (event) => {
        seen.push(event.filename);
        return null;
      },
    });
    const engine = new Engine({ rules: [execRule], logger: recordingLogger().logger });
    engine.handle(connect({ fd: 0 }));
    engine.handle(exec({ filename: "/bin/true" }));
    expect(seen).toEqual(["/bin/true"]);
    expect(engine.stats().eventsByKind).toEqual({ connect: 1, exec: 1 });
  });

  it("feeds the process table before the rules, so an exec rule sees the new program", () => {
    let nameSeen: string | undefined;
    const rule = defineRule({
      meta: { ...everyConnect.meta, id: "TEST-exec-name" },
      kinds: ["exec"],
      evaluate: (event, ctx) => {
        nameSeen = ctx.processes.get(event.task.pid)?.name;
        return null;
      },
    });
    const engine = new Engine({ rules: [rule] });
    engine.handle(exec({ filename: "/usr/bin/setsid" }));
    expect(nameSeen).toBe("setsid");
  });

  it("gives rules a read-only context: no way to reach the table's feeding methods", () => {
    let processes: object | undefined;
    const rule = defineRule({
      meta: { ...everyConnect.meta, id: "TEST-ctx" },
      kinds: ["fork"],
      evaluate: (_event, ctx) => {
        processes = ctx.processes;
        return null;
      },
    });
    const engine = new Engine({ rules: [rule], now: () => 1234 });
    engine.handle(fork());
    expect(Object.keys(processes ?? {}).sort()).toEqual(["ancestors", "bootId", "container", "environment", "get", "groupName", "hostId", "liveFacts", "userName", "workingDirectory"]);
    expect(Object.isFrozen(processes)).toBe(true);
  });

  it("returns a rule's array of detections as several findings, with merged fields", () => {
    const two = defineRule({
      meta: { ...everyConnect.meta, id: "TEST-two" },
      kinds: ["connect"],
      evaluate: () => [{ fields: { labels: { n: "1" } } }, { fields: { labels: { n: "2" }, event: { action: "x" } } }],
    });
    const engine = new Engine({ rules: [two], hostName: "h" });
    const findings = engine.handle(connect());
    expect(findings.map((finding) => finding["labels"])).toEqual([{ n: "1" }, { n: "2" }]);
    // Deep merge: the rule's event.action joins the engine's event fields, not replaces them.
    expect(findings[1]?.event).toMatchObject({ kind: "alert", category: ["network"], action: "x" });
    expect(engine.stats().findingsByRule).toEqual({ "TEST-two": 2 });
  });

  it("rejects two rules with one id", () => {
    expect(() => new Engine({ rules: [everyConnect, everyConnect] })).toThrow(/TEST-every-connect/);
  });
});

describe("engine gates (Rule.gate)", () => {
  const member = (n: number, seen: string[], kinds: ("exec" | "fork")[] = ["exec"]) =>
    defineRule({
      meta: { ...everyConnect.meta, id: `TEST-member-${n}` },
      kinds,
      evaluate: () => {
        seen.push(`m${n}`);
        return { fields: { n } };
      },
    });
  const gated = (admit: RuleGate["admit"], seen: string[]) => {
    const gate: RuleGate = { admit };
    return [0, 1, 2, 3].map((n) => ({ ...member(n, seen, n === 3 ? ["fork"] : ["exec"]), gate: { gate, member: n } }));
  };
  const plain = (seen: string[]) =>
    defineRule({ meta: { ...everyConnect.meta, id: "TEST-plain" }, kinds: ["exec"], evaluate: () => (seen.push("plain"), null) });

  it("runs only the members the gate admits, in member order, at the place of the first member", () => {
    const seen: string[] = [];
    const asked: string[] = [];
    const rules = [plain(seen), ...gated((event) => (asked.push(event.kind), [0, 2, 3]), seen)];
    const engine = new Engine({ rules, logger: recordingLogger().logger });
    const findings = engine.handle(exec({ filename: "/bin/true" }));
    // Member 3 is admitted but takes forks only; member 1 is not admitted.
    expect(seen).toEqual(["plain", "m0", "m2"]);
    expect(findings.map((f) => (f as { rule: { id: string } }).rule.id)).toEqual(["TEST-member-0", "TEST-member-2"]);
    expect(asked).toEqual(["exec"]);
  });

  it("runs every member when the gate admits undefined, and when it throws (counted as the first member's error)", () => {
    const seen: string[] = [];
    const engine = new Engine({ rules: gated(() => undefined, seen), logger: recordingLogger().logger });
    engine.handle(exec({ filename: "/bin/true" }));
    expect(seen).toEqual(["m0", "m1", "m2"]);
    seen.length = 0;
    const { logger, lines } = recordingLogger();
    const throwing = new Engine({
      rules: gated(() => {
        throw new Error("gate broke");
      }, seen),
      logger,
    });
    throwing.handle(exec({ filename: "/bin/true" }));
    expect(seen).toEqual(["m0", "m1", "m2"]);
    expect(throwing.stats().ruleErrors).toEqual({ "TEST-member-0": 1 });
    expect(lines).toHaveLength(1);
  });
});

describe("engine isolation", () => {
  it("counts a throwing rule's errors, logs the first only, and still runs the others", () => {
    const { logger, lines } = recordingLogger();
    const engine = new Engine({ rules: [throwsOnConnect, everyConnect], logger });
    const findings = [1, 2, 3].flatMap(() => engine.handle(connect({ fd: 0 })));
    expect(findings.map((finding) => finding.rule.id)).toEqual(["TEST-every-connect", "TEST-every-connect", "TEST-every-connect"]);
    expect(engine.stats().ruleErrors).toEqual({ "TEST-throws": 3 });
    expect(lines).toHaveLength(1);
    expect(lines[0]?.details).toMatchObject({ rule: "TEST-throws", eventKind: "connect" });
    expect(String(lines[0]?.details?.["error"])).toContain("boom");
  });

  it("counts an unknown event kind and keeps going", () => {
    const engine = new Engine({ rules: [everyConnect] });
    const fromNewerSensor = { ...fork(), kind: "bind" } as unknown as SensorEvent;
    expect(engine.handle(fromNewerSensor)).toEqual([]);
    expect(engine.handle(connect())).toHaveLength(1);
    const stats = engine.stats();
    expect(stats.dropped).toEqual({ unknown_kind: 1, malformed_line: 0 });
    expect(stats.eventsByKind).toEqual({ bind: 1, connect: 1 });
    // Neither reached the table: unknown kinds stop before it, connect does not feed it.
    expect(engine.processes.size).toBe(0);
  });

  it("stats() is a snapshot: later events do not change it, and a kind named __proto__ is an own key", () => {
    const engine = new Engine({ rules: [everyConnect] });
    engine.handle(connect());
    engine.handle({ ...fork(), kind: "__proto__" } as unknown as SensorEvent);
    const before = engine.stats();
    engine.handle(connect());
    expect(before.eventsByKind).toEqual({ connect: 1, ["__proto__"]: 1 });
    expect(Object.keys(before.eventsByKind)).toEqual(["connect", "__proto__"]);
    expect(Object.getPrototypeOf(before.eventsByKind)).toBe(Object.prototype);
    expect(before.findingsByRule).toEqual({ [everyConnect.meta.id]: 1 });
    expect(engine.stats().eventsByKind).toEqual({ connect: 2, ["__proto__"]: 1 });
    // ruleStats() is the rule-state half only (what the coverage check samples).
    expect(Object.keys(engine.ruleStats()).sort()).toEqual(["ruleState", "sequences"]);
  });

  it("reports each sequence rule's partial matches, and keeps a reloaded rule's totals", () => {
    const sequenceRule = (stats: { partials: number; matched: number; expired: number; evicted: number; untilDropped: number }) => ({
      ...defineRule({ meta: { ...everyConnect.meta, id: "TEST-sequence" }, kinds: ["exec"], evaluate: () => null }),
      sequenceStats: () => ({ ...stats }),
    });
    const engine = new Engine({ rules: [everyConnect, sequenceRule({ partials: 2, matched: 1, expired: 3, evicted: 4, untilDropped: 5 })] });
    expect(engine.stats().sequences).toEqual({ "TEST-sequence": { partials: 2, matched: 1, expired: 3, evicted: 4, untilDropped: 5 } });
    // A reload: the new rule holds its own partials; the totals go on from the old one's.
    engine.setRules([sequenceRule({ partials: 1, matched: 1, expired: 0, evicted: 1, untilDropped: 0 })]);
    expect(engine.stats().sequences).toEqual({ "TEST-sequence": { partials: 1, matched: 2, expired: 3, evicted: 5, untilDropped: 5 } });
    // Unloaded: its totals stay.
    engine.setRules([everyConnect]);
    expect(engine.stats().sequences).toEqual({ "TEST-sequence": { partials: 0, matched: 2, expired: 3, evicted: 5, untilDropped: 5 } });
  });

  it("hands out stats snapshots that later events do not change", () => {
    const engine = new Engine({ rules: [everyConnect] });
    const before = engine.stats();
    engine.handle(connect());
    expect(before.eventsByKind).toEqual({});
    expect(engine.stats().eventsByKind).toEqual({ connect: 1 });
  });
});

describe("engine folding memory", () => {
  const folding = defineRule({
    meta: { ...everyConnect.meta, id: "TEST-fold" },
    kinds: ["connect"],
    evaluate: (event) => ({ foldKey: String(event.remote?.port) }),
  });

  it("forgets a fold key after maxAgeMs of event time", () => {
    const engine = new Engine({ rules: [folding], fold: { maxAgeMs: 1_000 } });
    expect(engine.handle(connect({ timeMs: BASE_TIME_MS }))).toHaveLength(1);
    expect(engine.handle(connect({ timeMs: BASE_TIME_MS + 999 }))).toHaveLength(0);
    expect(engine.handle(connect({ timeMs: BASE_TIME_MS + 2_000 }))).toHaveLength(1);
  });

  it("holds at most maxKeys keys, forgetting the least recently seen", () => {
    const engine = new Engine({ rules: [folding], fold: { maxKeys: 2 } });
    const at = (port: number) => engine.handle(connect({ remote: { address: "10.0.0.1", port } })).length;
    expect([at(1), at(2), at(1), at(3)]).toEqual([1, 1, 0, 1]);
    // 2 was least recently seen when 3 arrived, so it alerts again; 1 is still remembered.
    expect([at(2), at(3)]).toEqual([1, 0]);
  });

  it("keys past maxAgeMs are swept from memory (at most a second of event time late)", () => {
    const memory = new FoldMemory({ maxAgeMs: 1_000 });
    for (let i = 0; i < 100; i++) expect(memory.seen(`k${i}`, i)).toBe(false);
    // 100 distinct keys within 100 ms: all kept, and a repeat inside the age folds.
    expect(memory.size).toBe(100);
    expect(memory.seen("k5", 500)).toBe(true);
    // Past the age: a repeat alerts again even before any sweep ...
    expect(memory.seen("k6", 1_500)).toBe(false);
    // ... and the next sweep (a second of event time after the last) drops the stale keys.
    memory.seen("late", 5_000);
    expect(memory.size).toBe(1);
  });
});

describe("pipeline.run", () => {
  it("drives an async stream of events and emits findings in order", async () => {
    const pipeline = new Pipeline({ rules: [everyConnect] });
    // eslint-disable-next-line @typescript-eslint/require-await -- an async source is what run() drives
    async function* stream() {
      yield connect({ remote: { address: "10.0.0.1", port: 1 } });
      yield exec();
      yield connect({ remote: { address: "10.0.0.1", port: 2 } });
    }
    const ports: unknown[] = [];
    await pipeline.run(stream(), (finding) => ports.push((finding["destination"] as { port: number }).port));
    expect(ports).toEqual([1, 2]);
  });
});

describe("engine reconsider", () => {
  it("turns what a rule judges again between events into findings about the held event; one without an event is dropped, a throw counted", () => {
    const held: SensorEvent[] = [];
    const late = defineRule({
      meta: { ...everyConnect.meta, id: "TEST-late" },
      kinds: ["exec"],
      evaluate: (event) => {
        held.push(event);
        return null;
      },
      reconsider: () => [...held.splice(0).map((event) => ({ event, fields: { late: true } })), { fields: { orphan: true } }],
    });
    const broken = defineRule({
      meta: { ...everyConnect.meta, id: "TEST-broken" },
      kinds: ["exec"],
      evaluate: () => null,
      reconsider: () => {
        throw new Error("boom");
      },
    });
    const { logger, lines } = recordingLogger();
    const engine = new Engine({ rules: [late, broken], logger });
    const shell = exec({ filename: "/bin/sh" });
    expect(engine.handle(shell)).toEqual([]);
    const findings = engine.reconsider();
    expect(findings).toHaveLength(1);
    expect(findings[0]).toMatchObject({ rule: { id: "TEST-late" }, late: true, process: { pid: shell.task.pid } });
    expect(engine.reconsider()).toEqual([]);
    expect(engine.stats().findingsByRule).toEqual({ "TEST-late": 1 });
    expect(engine.stats().ruleErrors).toEqual({ "TEST-broken": 2 });
    expect(lines.map((l) => l.details?.eventKind)).toEqual(["reconsider"]);
  });
});
