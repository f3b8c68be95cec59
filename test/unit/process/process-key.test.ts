/**
 * processKey keeps the last key it made (every rule asks for the event's own process in turn):
 * the answer is still the key of the task asked about, whatever came before.
 */
import { describe, expect, it } from "vitest";
import { parseProcessKey, processKey } from "../../../src/process/process-view.js";

describe("processKey", () => {
  it("gives each task its own key, asked in any order, and one string for repeated asks", () => {
    const a = { pid: 10, startNs: 5_000 };
    const b = { pid: 10, startNs: 6_000 }; // the same pid, another incarnation
    const c = { pid: 11, startNs: 5_000 };
    expect([a, b, c, a, a, c, b].map(processKey)).toEqual(["10:5000", "10:6000", "11:5000", "10:5000", "10:5000", "11:5000", "10:6000"]);
    // A task object changed in place (tests build them so) is keyed by what it holds now.
    const d = { pid: 12, startNs: 1 };
    expect(processKey(d)).toBe("12:1");
    d.startNs = 2;
    expect(processKey(d)).toBe("12:2");
    expect(parseProcessKey(processKey({ pid: 7, startNs: 123_456_789_012 }))).toEqual({ pid: 7, startNs: 123_456_789_012 });
  });
});
