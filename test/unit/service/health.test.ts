import { describe, expect, it, vi } from "vitest";
import { Health, watchAttachment, type Counts, type Detached } from "../../../src/service/health.js";

function harness(notReady: string[] = []) {
  let nowMs = 1_000_000;
  let counts: Counts = { "kernel/exec": { lost: 0 }, "output/webhook": { queue_full: 0, retries_exhausted: 0 } };
  const reasons = { notReady };
  const health = new Health({ notReady: () => reasons.notReady, losses: () => counts, now: () => nowMs, degradedWindowMs: 60_000 });
  health.sample();
  return {
    health,
    reasons,
    set(next: Counts) { counts = next; health.sample(); },
    advance(ms: number) { nowMs += ms; health.sample(); },
  };
}

describe("Health", () => {
  it("all clear: ready, live, no reasons", () => {
    const h = harness();
    expect(h.health.report()).toMatchObject({ status: "ready", live: true, ready: true, degraded: false, reasons: [] });
  });

  it("not ready says why, and is not called degraded", () => {
    const h = harness(["no batch of events processed yet"]);
    h.set({ "kernel/exec": { lost: 5 } });
    expect(h.health.report()).toMatchObject({ status: "not_ready", ready: false, degraded: false, reasons: ["no batch of events processed yet"] });
  });

  it("a loss makes it degraded for the window, with the source, the reason and the count; then ready again", () => {
    const h = harness();
    h.advance(1_000);
    h.set({ "kernel/exec": { lost: 12 }, "output/webhook": { queue_full: 0, retries_exhausted: 0 } });
    h.advance(1_000);
    h.set({ "kernel/exec": { lost: 20 }, "output/webhook": { queue_full: 3, retries_exhausted: 0 } });
    expect(h.health.report()).toMatchObject({
      status: "degraded",
      ready: true,
      degraded: true,
      reasons: ["kernel/exec lost: 20 in the last 60 s", "output/webhook queue_full: 3 in the last 60 s"],
    });
    h.advance(61_000);
    expect(h.health.report()).toMatchObject({ status: "ready", degraded: false, reasons: [] });
  });

  it("with timer: false it reads nothing itself: samples passed to observe() make it degraded", () => {
    vi.useFakeTimers();
    try {
      let reads = 0;
      const health = new Health({ notReady: () => [], losses: () => (reads++, { "kernel/exec": { lost: 0 } }), now: () => 5_000, timer: false });
      health.start();
      vi.advanceTimersByTime(10_000);
      expect(reads).toBe(1);
      const fed = { "kernel/exec": { lost: 7 } };
      expect(health.observe(fed)).toBe(fed);
      expect(health.report()).toMatchObject({ status: "degraded", reasons: ["kernel/exec lost: 7 in the last 60 s"] });
      health.stop();
    } finally {
      vi.useRealTimers();
    }
  });

  it("losses from before the first sample (the start) do not count", () => {
    let counts: Counts = { "kernel/exec": { lost: 99 } };
    const health = new Health({ notReady: () => [], losses: () => counts, now: () => 0 });
    health.sample();
    counts = { "kernel/exec": { lost: 99 } };
    health.sample();
    expect(health.report().status).toBe("ready");
  });
});

describe("watchAttachment", () => {
  it("reports a program once when it is found detached, and keeps it listed while it stays so", () => {
    vi.useFakeTimers();
    try {
      let detached: Detached[] = [];
      const seen: string[] = [];
      const watch = watchAttachment({ checkAttached: () => ({ detached }) }, (program, reason) => seen.push(`${program}: ${reason}`), 1_000);
      vi.advanceTimersByTime(1_000);
      expect(watch.detached()).toEqual([]);
      detached = [{ program: "handle_exec", reason: "its link is gone" }];
      vi.advanceTimersByTime(3_000);
      expect(seen).toEqual(["handle_exec: its link is gone"]);
      expect(watch.detached()).toEqual(detached);
      // Fed into readiness: the daemon is not ready while a program is detached.
      const health = new Health({ notReady: () => watch.detached().map((d) => `program ${d.program} detached: ${d.reason}`), losses: () => ({}) });
      expect(health.report()).toMatchObject({ status: "not_ready", reasons: ["program handle_exec detached: its link is gone"] });
      watch.stop();
    } finally {
      vi.useRealTimers();
    }
  });
});
