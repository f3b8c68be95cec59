/**
 * Sequence semantics, table-driven: each case is a query and a stream of documents
 * (category, time in ms, fields); the expected value lists the names of the documents of
 * every completed match, in order.
 */
import { describe, expect, it } from "vitest";
import { compileEqlQuery, type CompiledSequence } from "../../../src/eql/compile.js";
import { SequenceMatcher, type SequenceMatcherOptions } from "../../../src/eql/sequence.js";

interface Doc {
  name: string;
  category: string;
  t: number;
  fields: Record<string, unknown>;
}

const net = (name: string, t: number, pid: number, ip = "198.18.0.1"): Doc => ({
  name, category: "network", t, fields: { process: { entity_id: `p${pid}`, name: "nc" }, destination: { ip }, host: { id: "h" } },
});
const exec = (name: string, t: number, pid: number, ppid: number, procName = "sh"): Doc => ({
  name, category: "process", t, fields: { process: { entity_id: `p${pid}`, name: procName, parent: { entity_id: `p${ppid}` } }, host: { id: "h" } },
});

function sequence(query: string): CompiledSequence {
  const compiled = compileEqlQuery(query);
  if (compiled.kind !== "sequence") throw new Error("not a sequence");
  return compiled;
}

function run(query: string, docs: Doc[], options: SequenceMatcherOptions = {}): { matches: string[][]; matcher: SequenceMatcher<string> } {
  const matcher = new SequenceMatcher<string>(sequence(query), options);
  const matches: string[][] = [];
  for (const doc of docs) matches.push(...matcher.feed(doc.fields, doc.category, doc.t, doc.name));
  return { matches, matcher };
}

const RELAY = `sequence by host.id with maxspan=5s
  [network where process.name == "nc" and not cidrmatch(destination.ip, "127.0.0.0/8")] by process.entity_id
  [process where process.name in ("sh", "bash")] by process.parent.entity_id`;

describe("sequence matching", () => {
  const cases: [string, string, Doc[], string[][]][] = [
    ["network then exec by the connecting process", RELAY, [net("n1", 0, 10), exec("e1", 100, 11, 10)], [["n1", "e1"]]],
    ["order matters: exec before the connect", RELAY, [exec("e1", 0, 11, 10), net("n1", 100, 10)], []],
    ["by keys must join: another process's child", RELAY, [net("n1", 0, 10), exec("e1", 100, 11, 99)], []],
    ["maxspan: 5 s is in time", RELAY, [net("n1", 0, 10), exec("e1", 5000, 11, 10)], [["n1", "e1"]]],
    ["maxspan: past 5 s has expired", RELAY, [net("n1", 0, 10), exec("e1", 5001, 11, 10)], []],
    ["step conditions: a loopback connect does not start it", RELAY, [net("n1", 0, 10, "127.0.0.1"), exec("e1", 1, 11, 10)], []],
    ["the latest partial per key wins", RELAY, [net("n1", 0, 10), net("n2", 10, 10), exec("e1", 20, 11, 10)], [["n2", "e1"]]],
    ["a partial completes once", RELAY, [net("n1", 0, 10), exec("e1", 1, 11, 10), exec("e2", 2, 12, 10)], [["n1", "e1"]]],
    ["keys are independent", RELAY, [net("a", 0, 10), net("b", 1, 20), exec("eb", 2, 21, 20), exec("ea", 3, 11, 10)], [["b", "eb"], ["a", "ea"]]],
    [
      "until drops the key's partials",
      `sequence by process.entity_id [process where process.name == "a"] [process where process.name == "b"] until [process where process.name == "stop"]`,
      [exec("a", 0, 1, 0, "a"), exec("stop", 1, 1, 0, "stop"), exec("b", 2, 1, 0, "b")],
      [],
    ],
    [
      "until of another key leaves this one",
      `sequence by process.entity_id [process where process.name == "a"] [process where process.name == "b"] until [process where process.name == "stop"]`,
      [exec("a", 0, 1, 0, "a"), exec("stop", 1, 2, 0, "stop"), exec("b", 2, 1, 0, "b")],
      [["a", "b"]],
    ],
    [
      "runs=3 needs three distinct events",
      `sequence by process.parent.entity_id with maxspan=1s [process where process.name == "x"] with runs=3`,
      [exec("x1", 0, 1, 9, "x"), exec("x2", 10, 2, 9, "x"), exec("x3", 20, 3, 9, "x")],
      [["x1", "x2", "x3"]],
    ],
    [
      "runs=3: two are not enough",
      `sequence by process.parent.entity_id with maxspan=1s [process where process.name == "x"] with runs=3`,
      [exec("x1", 0, 1, 9, "x"), exec("x2", 10, 2, 9, "x")],
      [],
    ],
    [
      "one event matching two steps starts a new partial and does not complete its own",
      `sequence [process where process.name == "x"] [process where process.name == "x"]`,
      [exec("x1", 0, 1, 9, "x"), exec("x2", 1, 2, 9, "x"), exec("x3", 2, 3, 9, "x")],
      [["x1", "x2"], ["x2", "x3"]],
    ],
    [
      "a missing join key never joins",
      `sequence by user.name [process where true] [process where true]`,
      [exec("e1", 0, 1, 0), exec("e2", 1, 2, 0)],
      [],
    ],
    [
      "an optional join key (?field) joins a missing value as null",
      `sequence by ?user.name [process where process.name == "a"] [process where process.name == "b"]`,
      [exec("a", 0, 1, 0, "a"), exec("b", 1, 2, 0, "b")],
      [["a", "b"]],
    ],
    [
      "an optional join key still tells present values apart",
      `sequence by ?process.entity_id [process where process.name == "a"] [process where process.name == "b"]`,
      [exec("a", 0, 1, 0, "a"), exec("b", 1, 2, 0, "b")],
      [],
    ],
    [
      "a null optional key does not join a present one",
      `sequence by ?user.name [process where process.name == "a"] [process where process.name == "b"]`,
      [{ ...exec("a", 0, 1, 0, "a"), fields: { process: { name: "a" }, user: { name: "root" } } }, exec("b", 1, 2, 0, "b")],
      [],
    ],
    [
      "any matches both categories",
      `sequence by host.id [any where process.name == "nc"] [any where process.name == "sh"]`,
      [net("n1", 0, 10), exec("e1", 1, 11, 10)],
      [["n1", "e1"]],
    ],
    [
      "no maxspan: no expiry",
      `sequence by host.id [network where true] [process where true]`,
      [net("n1", 0, 10), exec("e1", 86_400_000, 11, 10)],
      [["n1", "e1"]],
    ],
  ];
  it.each(cases)("%s", (_title, query, docs, expected) => {
    expect(run(query, docs).matches).toEqual(expected);
  });
});

describe("sequence state is bounded and counted", () => {
  it("evicts the least recently touched key past maxPartials, and counts it", () => {
    const docs = [...Array.from({ length: 10 }, (_, i) => net(`n${i}`, i, i)), exec("e0", 20, 100, 0), exec("e9", 21, 101, 9)];
    const { matches, matcher } = run(RELAY, docs, { maxPartials: 4 });
    expect(matches).toEqual([["n9", "e9"]]);
    expect(matcher.stats()).toMatchObject({ evicted: 6, partials: 3, matched: 1 });
  });

  it("counts expiry at the step and in the periodic sweep", () => {
    const docs = [net("n1", 0, 1), exec("late", 6000, 2, 1)];
    for (let i = 0; i < 1100; i++) docs.push(net(`x${i}`, 10_000 + i * 10, 1000 + i));
    const { matcher } = run(RELAY, docs);
    const stats = matcher.stats();
    expect(stats.expired).toBeGreaterThan(1);
    expect(stats.partials).toBeLessThan(1100);
  });

  it("counts partials dropped by until", () => {
    const { matcher } = run(
      `sequence by process.entity_id [process where process.name == "a"] [process where process.name == "b"] [process where true] until [process where process.name == "stop"]`,
      [exec("a", 0, 1, 0, "a"), exec("b", 1, 1, 0, "b"), exec("stop", 2, 1, 0, "stop")],
    );
    expect(matcher.stats()).toMatchObject({ untilDropped: 1, partials: 0 });
  });
});

describe("events out of timestamp order, within the reorder window (250 ms, 256 events by default)", () => {
  const SHORT = RELAY.replace("maxspan=5s", "maxspan=100ms");
  const UNTIL = `sequence by process.entity_id [process where process.name == "a"] [process where process.name == "b"] until [process where process.name == "stop"]`;
  const cases: [string, string, Doc[], string[][], SequenceMatcherOptions?][] = [
    ["the exec delivered before its earlier connect completes the sequence", RELAY, [exec("e1", 100, 11, 10), net("n1", 0, 10)], [["n1", "e1"]]],
    ["the same on time: an exec stamped before the connect does not", RELAY, [exec("e1", 0, 11, 10), net("n1", 100, 10)], []],
    ["a connect later than the window runs as it comes", RELAY, [exec("e1", 1000, 11, 10), net("n1", 0, 10)], []],
    ["a window of 0 runs every event as it comes", RELAY, [exec("e1", 100, 11, 10), net("n1", 0, 10)], [], { reorderWindowMs: 0 }],
    [
      "the count bound: an exec pushed out of the recent events is not run again",
      RELAY,
      [exec("e1", 100, 11, 10), exec("x1", 101, 50, 40), exec("x2", 102, 51, 41), net("n1", 0, 10)],
      [],
      { maxHeld: 2 },
    ],
    ["maxspan on the events' own times: 80 ms apart in reverse is in time", SHORT, [exec("e1", 80, 11, 10), net("n1", 0, 10)], [["n1", "e1"]]],
    ["maxspan on the events' own times: 150 ms apart in reverse has expired", SHORT, [exec("e1", 150, 11, 10), net("n1", 0, 10)], []],
    [
      "a late first step goes before the later ones",
      UNTIL,
      [exec("b", 20, 1, 0, "b"), exec("a", 10, 1, 0, "a")],
      [["a", "b"]],
    ],
    [
      "a late until stamped before the first step drops nothing after it",
      UNTIL,
      [exec("a", 10, 1, 0, "a"), exec("stop", 5, 1, 0, "stop"), exec("b", 20, 1, 0, "b")],
      [["a", "b"]],
    ],
    [
      "a late until stamped between the steps drops the partial",
      UNTIL,
      [exec("a", 10, 1, 0, "a"), exec("b", 30, 1, 0, "b"), exec("stop", 20, 1, 0, "stop"), exec("b2", 40, 1, 0, "b")],
      [["a", "b"]],
    ],
    [
      "a match is reported once when a late event makes the replay find it again",
      RELAY,
      [net("n1", 0, 10), exec("e1", 100, 11, 10), net("n0", 50, 10)],
      [["n1", "e1"]],
    ],
  ];
  it.each(cases)("%s", (_title, query, docs, expected, options) => {
    expect(run(query, docs, options).matches).toEqual(expected);
  });

  it("partials stay counted right through a replay", () => {
    const { matcher } = run(RELAY, [net("n1", 100, 10), net("n2", 200, 20), net("n0", 50, 10)]);
    expect(matcher.stats()).toMatchObject({ partials: 2, matched: 0 });
  });
});
