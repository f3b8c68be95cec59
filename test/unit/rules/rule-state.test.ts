/**
 * Every table a built-in rule keeps is bounded by count (and by age where a lost exit could leave an entry behind), and the rule's state
 * (engine.stats().ruleState) shows what it holds and what each bound let go.
 */
import { describe, expect, it } from "vitest";
import {
  Engine, ProcessTable, createRelay001Rule, createRelay002Rule, createTrc101Rule, type AnyRule, type HostView, type RuleState, type SensorEvent, type TaskContext,
} from "sockeye";
import { ATTACKER as REMOTE, LOCAL_END as LOCAL, at, connectedOut, dup, exec, holds, inet, pipe, proc, silentLogger, start, tty } from "../engine/fixtures.js";
import { fakeHost } from "../host/fake-host.js";

const dupOnto = (p: Partial<TaskContext>, newfd: number, ino: number, ms: number) =>
  dup({ task: p, newfd, oldfd: 3, socketIno: ino, socketOnFds: [newfd], origin: "connected", local: { ...LOCAL }, remote: { ...REMOTE }, timeMs: at(ms) });

/** Feeds `events` to one rule; returns its state after them. */
function stateAfter(rule: AnyRule, events: SensorEvent[], host: HostView = fakeHost()): RuleState {
  const engine = new Engine({ rules: [rule], processes: new ProcessTable({ host }), hostName: "h", now: () => at(0), logger: silentLogger });
  for (const event of events) engine.handle(event);
  return engine.stats().ruleState[rule.meta.id]!;
}

/** A shell (stdin and stdout pipes) waiting for its relay: a RELAY-001 candidate. */
const candidate = (pid: number, ms: number) => start(proc(pid, 1, "sh"), "/bin/sh", ["sh", "-i"], [pipe(pid * 10), pipe(pid * 10 + 1), tty(1)], ms);

describe("TRC-101 (precise): held triggers, reported sockets and shell readers", () => {
  it("held triggers: past maxHeldProcesses the oldest is let go (evicted); one whose process never execs nor exits expires", () => {
    const rule = createTrc101Rule({ precise: { maxHeldProcesses: 2 } });
    // `cat` holds a trigger (no interpreter): it waits for cat's exec or exit.
    const held = (pid: number, ms: number) => [...start(proc(pid, 1, "cat"), "/usr/bin/cat", ["cat"], [tty(1), tty(1), tty(1)], ms), dupOnto(proc(pid, 1, "cat"), 1, pid, ms)];
    expect(stateAfter(rule, [...held(10, 0), ...held(11, 1), ...held(12, 2)])).toMatchObject({ pending: 2, evicted: 1, expired: 0 });
    const aged = createTrc101Rule({ precise: { heldMaxAgeMs: 60_000 } });
    expect(stateAfter(aged, [...held(10, 0), ...held(11, 61_000)])).toMatchObject({ pending: 1, expired: 1 });
  });

  it("reported sockets: one unused for reportedMaxAgeMs is forgotten (expired)", () => {
    const rule = () => createTrc101Rule({ precise: { reportedMaxAgeMs: 60_000 } });
    const shellOn = (pid: number, ino: number, ms: number) => start(proc(pid, 1, "sh"), "/bin/sh", ["sh"], [inet(ino), inet(ino), inet(ino)], ms);
    expect(stateAfter(rule(), [...shellOn(10, 1, 0), ...shellOn(11, 2, 1)])).toMatchObject({ held: 2, expired: 0 });
    expect(stateAfter(rule(), [...shellOn(10, 1, 0), ...shellOn(11, 2, 61_000)])).toMatchObject({ held: 1, expired: 1 });
  });

  it("shell readers: past 4096 the oldest is let go (evicted); one goes with its expired held trigger once its process is not alive", () => {
    // A shell dup'ing a socket onto its stdin alone is remembered as the socket's reader.
    const reader = (pid: number, ms: number) => dupOnto(proc(pid, 1, "bash"), 0, pid, ms);
    const many = Array.from({ length: 4097 }, (_, i) => reader(1000 + i, 0));
    const shells = Array.from({ length: 4097 }, (_, i) => exec({ task: proc(1000 + i, 1, "bash"), filename: "/usr/bin/bash", args: ["bash"], stdio: [tty(1), tty(1), tty(1)], timeMs: at(0) }));
    const state = stateAfter(createTrc101Rule({ precise: { maxHeldProcesses: 10_000 } }), [...shells, ...many]);
    expect(state).toMatchObject({ held: 4096, pending: 4097, evicted: 1 });
    const aged = (first: SensorEvent[]) => stateAfter(createTrc101Rule({ precise: { heldMaxAgeMs: 60_000 } }), [...first, reader(1000, 0), shells[1]!, reader(1001, 61_000)]);
    // The first process's held trigger expires. Its exec seen and no exit: it lives, and so
    // does its reader (a read loop may wait long for its first command).
    expect(aged([shells[0]!])).toMatchObject({ held: 2, pending: 1, expired: 1 });
    // A process the table never saw (its records lost): its reader goes with the trigger.
    expect(aged([])).toMatchObject({ held: 1, pending: 1, expired: 1 });
  });
  it("a program too large to hash in one look is counted as an incomplete look, not taken for no interpreter in silence", () => {
    const host: HostView = {
      ...fakeHost(),
      pathSeenBy: (pid, path) => path ?? `/proc/${pid}/exe`,
      buildId: () => ({ status: "none" }),
      fileDigest: () => ({ status: "incomplete", reason: "byte_budget" }),
    };
    // A renamed program with the socket on stdin: only its content could say it is a shell.
    const renamed = start(proc(10, 1, "x"), "/tmp/x", ["x"], [inet(1), inet(1), inet(1)], 0);
    expect(stateAfter(createTrc101Rule(), renamed, host)).toMatchObject({ incomplete: 1 });
    expect(stateAfter(createTrc101Rule(), renamed)).toMatchObject({ incomplete: 0 });
  });
});

describe("RELAY-001: pending shells, remembered sockets, the stdio index", () => {
  it("pending shells: no window: one waits as long as it lives; past maxPending gone ones go first (expired), then the oldest live one is abandoned", () => {
    expect(stateAfter(createRelay001Rule(), [...candidate(10, 0), ...candidate(11, 3_000_000)])).toMatchObject({ pending: 2, expired: 0, abandoned: 0 });
    // The fake host shows neither shell: both are gone by /proc, so room is made without loss.
    expect(stateAfter(createRelay001Rule({ maxPending: 1 }), [...candidate(10, 0), ...candidate(11, 1)])).toMatchObject({ pending: 1, expired: 1, abandoned: 0 });
    const alive = fakeHost();
    alive.world.set(10, [holds(0, "pipe:100", "read")]);
    alive.world.set(11, [holds(0, "pipe:110", "read")]);
    expect(stateAfter(createRelay001Rule({ maxPending: 1 }), [...candidate(10, 0), ...candidate(11, 1)], alive)).toMatchObject({ pending: 1, evicted: 1, abandoned: 1 });
  });

  it("outbound sockets: past maxSockets the oldest is evicted; none expires with age (a relay may wait any time before its shell)", () => {
    const nc = proc(20, 1, "nc");
    expect(stateAfter(createRelay001Rule({ maxSockets: 1 }), [connectedOut(nc, 1, 0), connectedOut(nc, 2, 1)])).toMatchObject({ held: 1, evicted: 1 });
    const aged = stateAfter(createRelay001Rule(), [connectedOut(nc, 1, 0), connectedOut(nc, 2, 36_000_000)]);
    expect(aged).toMatchObject({ held: 2, expired: 0 });
  });

  it("the stdio index: past maxIndexed the oldest process is evicted; one whose exit never came expires", () => {
    const cat = (pid: number, ms: number) => start(proc(pid, 1, "cat"), "/usr/bin/cat", ["cat"], [pipe(pid), pipe(pid + 1), tty(1)], ms);
    expect(stateAfter(createRelay001Rule({ maxIndexed: 1 }), [...cat(10, 0), ...cat(20, 1)])).toMatchObject({ indexed: 1, evicted: 1 });
    expect(stateAfter(createRelay001Rule({ indexedMaxAgeMs: 60_000 }), [...cat(10, 0), ...cat(20, 61_000)])).toMatchObject({ indexed: 1, expired: 1 });
    // Past its age a live one is kept (a FIFO chain's cat may wait hours for its relay).
    const alive = fakeHost();
    alive.world.set(10, [holds(0, "pipe:10", "read")]);
    expect(stateAfter(createRelay001Rule({ indexedMaxAgeMs: 60_000 }), [...cat(10, 0), ...cat(20, 61_000)], alive)).toMatchObject({ indexed: 2, expired: 0 });
  });
});

describe("RELAY-002: remembered connections", () => {
  it("past maxSockets the oldest is evicted; one without a connect or command for maxAgeMs expires", () => {
    const gawk = proc(20, 1, "gawk");
    expect(stateAfter(createRelay002Rule({ maxSockets: 1 }), [connectedOut(gawk, 1, 0), connectedOut(gawk, 2, 1)])).toMatchObject({ held: 1, evicted: 1 });
    expect(stateAfter(createRelay002Rule({ maxAgeMs: 60_000 }), [connectedOut(gawk, 1, 0), connectedOut(gawk, 2, 61_000)])).toMatchObject({ held: 1, expired: 1 });
  });
});
