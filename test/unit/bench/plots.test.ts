/**
 * bench/plots.mjs: the SVG plots `npm run bench` writes next to results.md, rendered from a
 * small results object of the shape bench/run.mjs writes.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { renderPlots } from "../../../bench/plots.mjs";

const step = (consumer: string, targetRate: number, achievedRate: number, missing = 0) => ({
  round: 0, consumer, closedLoop: targetRate === 0, targetRate, achievedRate,
  generated: achievedRate * 2, received: achievedRate * 2 - missing, kernelLost: 0, missing, lossless: missing === 0,
});
const cdf = (scaleMs: number) => Array.from({ length: 101 }, (_, i) => Number((scaleMs * (0.1 + i / 50)).toFixed(3)));
const results = {
  details: {
    throughput: {
      steps: [
        step("c", 0, 600_000), step("c", 100_000, 99_995), step("c", 400_000, 399_980),
        step("noop", 0, 700_000, 5000), step("noop", 100_000, 99_990), step("noop", 400_000, 399_900),
        step("full", 0, 750_000, 400_000), step("full", 100_000, 99_996), step("full", 400_000, 399_000, 1200),
      ],
    },
    storm: {
      sides: {
        default: { rates: [
          { target: 100, closedLoop: false, achieved: 99.9, reachable: true, cpuUsPerExec: 30.5, threads: { main: 20, reader: 5, other: 5.5 } },
          { target: 500, closedLoop: false, achieved: 499.8, reachable: true, cpuUsPerExec: 21.3, threads: { main: 15.1, reader: 3.2, other: 3 } },
          { target: 2000, closedLoop: false, achieved: 1400, reachable: false, cpuUsPerExec: 18, threads: { main: 12, reader: 3, other: 3 } },
          { target: 0, closedLoop: true, achieved: 1450, reachable: true, cpuUsPerExec: 17.5, threads: { main: 12, reader: 2.5, other: 3 } },
        ] },
        elastic: { rates: [
          { target: 100, closedLoop: false, achieved: 99.8, reachable: true, cpuUsPerExec: 41, threads: { main: 30, reader: 5, other: 6 } },
          { target: 500, closedLoop: false, achieved: 499.5, reachable: true, cpuUsPerExec: 33, threads: { main: 25, reader: 4, other: 4 } },
        ] },
      },
    },
    latency: {
      idle: { samples: 200, p50Ms: 0.16, p99Ms: 0.9, maxMs: 2.1, cdf: cdf(0.1) },
      load: { samples: 200, p50Ms: 0.23, p99Ms: 0.85, maxMs: 2.7, loadRate: 50_000, cdf: cdf(0.2) },
      idleSchedRr: { samples: 200, p50Ms: 0.18, p99Ms: 0.4, maxMs: 1.2, cdf: cdf(0.08) },
    },
    // In-kernel figures in µs, userspace in ms (bench/run.mjs's enforce part).
    enforce: {
      kernel: {
        "exec-sh": { killed: 30, us: { samples: 30, p50: 400, p99: 900, max: 950, cdf: cdf(400) } },
        "exec-true": { exited: 30, us: { samples: 30, p50: 900, p99: 1500, max: 1600, cdf: cdf(900) } },
        "dup-sh": { killed: 30, us: { samples: 30, p50: 60, p99: 120, max: 130, cdf: cdf(60) } },
        "dup-exit": { exited: 30, us: { samples: 30, p50: 50, p99: 100, max: 110, cdf: cdf(50) } },
      },
      userspace: { relay: "ncat -e /bin/sh (pipes)", ms: { samples: 4, p50: 15, p99: 40, max: 40, cdf: cdf(15) } },
    },
  },
};

let outDir: string;
beforeEach(() => { outDir = mkdtempSync(join(tmpdir(), "sockeye-plots-")); });
afterEach(() => rmSync(outDir, { recursive: true, force: true }));

const svgText = (file: string) => {
  const text = readFileSync(join(outDir, file), "utf8");
  expect(text.startsWith("<svg")).toBe(true);
  expect(text.trimEnd().endsWith("</svg>")).toBe(true);
  return text;
};

describe("renderPlots", () => {
  it("writes the four plots, each with its series and axis titles", async () => {
    const plots = await renderPlots(results, outDir);
    expect(plots.map((p) => [p.file, p.skipped])).toEqual([
      ["plot-throughput.svg", undefined], ["plot-storm-cpu.svg", undefined], ["plot-latency-cdf.svg", undefined],
      ["plot-kill-latency.svg", undefined],
    ]);
    for (const p of plots) expect(p.path).toBe(join(outDir, p.file));

    const throughput = svgText("plot-throughput.svg");
    for (const text of ["C libbpf reader", "Node no-op", "full pipeline", "lossless", "records lost", "events/s received by the consumer"])
      expect(throughput).toContain(text);

    const storm = svgText("plot-storm-cpu.svg");
    for (const text of ["default rules", "with Elastic", "daemon CPU per exec (µs)", "fork+exec+exit per second (achieved)", "closed loop"])
      expect(storm).toContain(text);

    const latency = svgText("plot-latency-cdf.svg");
    for (const text of ["idle", "under load (50,000 matching events/s)", "idle, daemon under SCHED_RR 1", "detection latency (ms)", "fraction of probes"])
      expect(latency).toContain(text);

    const kill = svgText("plot-kill-latency.svg");
    for (const text of ["in kernel: exec of sh on a socket", "in kernel: dup2 completing the shape in sh", "reference: exec of /bin/true",
      "userspace: ncat -e /bin/sh (pipes) (event to kill)", "kill latency (ms, log)", "fraction of kills"])
      expect(kill).toContain(text);
  });

  it("skips the storm plot with a reason when the run has no process-storm part", async () => {
    const { storm: _storm, ...details } = results.details;
    const plots = await renderPlots({ ...results, details }, outDir);
    const storm = plots.find((p) => p.file === "plot-storm-cpu.svg");
    expect(storm?.skipped).toMatch(/details\.storm/);
    expect(existsSync(join(outDir, "plot-storm-cpu.svg"))).toBe(false);
    expect(plots.filter((p) => p.path).map((p) => p.file)).toEqual(["plot-throughput.svg", "plot-latency-cdf.svg", "plot-kill-latency.svg"]);
  });

  it("skips the kill latency plot when the run has no enforce part, or its parts were skipped", async () => {
    const { enforce: _enforce, ...details } = results.details;
    const without = await renderPlots({ ...results, details }, outDir);
    expect(without.find((p) => p.file === "plot-kill-latency.svg")?.skipped).toMatch(/details\.enforce/);
    const skipped = await renderPlots({ details: { enforce: { kernel: { skipped: "no BPF" }, userspace: { skipped: "no ncat" } } } }, outDir);
    expect(skipped.find((p) => p.file === "plot-kill-latency.svg")?.skipped).toMatch(/no kill latency/);
    expect(existsSync(join(outDir, "plot-kill-latency.svg"))).toBe(false);
  });

  it("skips the latency CDF for results from before it was stored, and everything for an empty run", async () => {
    const { cdf: _idle, ...idle } = results.details.latency.idle;
    const { cdf: _load, ...load } = results.details.latency.load;
    const old = await renderPlots({ details: { latency: { idle, load } } }, outDir);
    expect(old.find((p) => p.file === "plot-latency-cdf.svg")?.skipped).toMatch(/no latency CDF/);

    const none = await renderPlots({}, outDir);
    expect(none.every((p) => p.skipped)).toBe(true);
    expect(existsSync(join(outDir, "plot-throughput.svg"))).toBe(false);
  });
});
