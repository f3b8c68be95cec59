/**
 * sweepByAge: the one sweep SHELL-001's tables and TRC-101's readers share. Old entries of live
 * processes go to the back with their age renewed; old ones of gone processes are let go and
 * counted; the sweep stops at the first young entry.
 */
import { describe, expect, it } from "vitest";
import { sweepByAge } from "../../../src/process/process-view.js";

describe("sweepByAge", () => {
  const make = () => new Map<string, { timeMs: number }>([["a", { timeMs: 1 }], ["b", { timeMs: 2 }], ["c", { timeMs: 3 }], ["d", { timeMs: 10 }], ["e", { timeMs: 1 }]]);

  it("renews old live entries at the back, lets old gone ones go, stops at the first young one", () => {
    const map = make();
    const looked: string[] = [];
    const dropped = sweepByAge(map, 5, (v) => v.timeMs, (k) => (looked.push(k), k !== "b"), (v) => ({ timeMs: 20 + v.timeMs }));
    expect(dropped).toBe(1);
    // "e" is old but behind the young "d": not looked at (age order is the caller's promise).
    expect(looked).toEqual(["a", "b", "c"]);
    expect([...map.entries()]).toEqual([["d", { timeMs: 10 }], ["e", { timeMs: 1 }], ["a", { timeMs: 21 }], ["c", { timeMs: 23 }]]);
  });

  it("drops through the caller's function when given one, and counts each", () => {
    const map = make();
    const gone: string[] = [];
    const dropped = sweepByAge(map, 5, (v) => v.timeMs, () => false, (v) => v, (k) => (gone.push(k), map.delete(k)));
    expect(dropped).toBe(3);
    expect(gone).toEqual(["a", "b", "c"]);
    expect([...map.keys()]).toEqual(["d", "e"]);
  });

  it("an empty map or a young head costs nothing", () => {
    expect(sweepByAge(new Map<string, number>(), 5, (t) => t, () => true, (t) => t)).toBe(0);
    const young = new Map([["x", 9]]);
    expect(sweepByAge(young, 5, (t) => t, () => false, (t) => t)).toBe(0);
    expect([...young.keys()]).toEqual(["x"]);
  });
});
