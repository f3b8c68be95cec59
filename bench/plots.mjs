#!/usr/bin/env node
/**
 * The plots of a bench run, as SVG next to results.md: `renderPlots(results, outDir)` from
 * bench/run.mjs, or `node bench/plots.mjs [bench/results.json] [outDir]` to re-render from a
 * results file (outDir defaults to the file's folder). Vega-Lite specs rendered by Vega
 * headless (`View#toSVG`: no browser, no canvas). A plot whose part did not run is skipped
 * with a reason, never an error: `--only` runs and older results files lack some parts.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import * as vega from "vega";
import { compile } from "vega-lite";

/** @typedef {import("./plots.d.mts").PlotOutcome} PlotOutcome */
/** @typedef {import("vega-lite").TopLevelSpec} Spec */

const CONSUMERS = { c: "C libbpf reader", noop: "Node no-op", full: "full pipeline" };
const STORM_SIDES = { default: "default rules", elastic: "with Elastic's rules" };
const WIDTH = 560, HEIGHT = 320;

/** @param {any} results @returns {Spec | string} a spec, or why there is none */
function throughputSpec(results) {
  const steps = results.details?.throughput?.steps;
  if (!Array.isArray(steps) || steps.length === 0) return "no throughput steps in this run (details.throughput)";
  const values = steps.filter((s) => s.achievedRate > 0 && s.generated > 0).map((s) => ({
    consumer: CONSUMERS[s.consumer] ?? s.consumer,
    round: s.round,
    offered: s.achievedRate,
    // received / generator seconds: the generator's rate times the share that arrived.
    received: (s.achievedRate * s.received) / s.generated,
    outcome: s.lossless ? "lossless" : "records lost",
    lost: s.lossless ? 0 : 1,
  }));
  const x = /** @type {const} */ ({ field: "offered", type: "quantitative", axis: { format: "~s" }, title: "offered matching events/s (generator's achieved rate)" });
  const y = /** @type {const} */ ({ field: "received", type: "quantitative", axis: { format: "~s" }, title: "events/s received by the consumer" });
  const color = /** @type {const} */ ({ field: "consumer", type: "nominal", sort: Object.values(CONSUMERS), title: "consumer" });
  return {
    width: WIDTH, height: HEIGHT,
    data: { values },
    layer: [
      // One line per consumer and round: the rounds are separate ladders.
      { mark: { type: "line", strokeWidth: 1, opacity: 0.6 }, encoding: { x, y, color, detail: { field: "round", type: "nominal" } } },
      { mark: { type: "point", filled: true, size: 50 },
        // Lossy steps drawn last: another consumer's lossless point at the same rate would hide them.
        encoding: { x, y, color, order: { field: "lost", type: "quantitative" }, shape: { field: "outcome", type: "nominal", title: "step",
          scale: { domain: ["lossless", "records lost"], range: ["circle", "cross"] } } } },
    ],
  };
}

/** @param {any} results @returns {Spec | string} */
function stormSpec(results) {
  const sides = results.details?.storm?.sides;
  if (!sides || typeof sides !== "object") return "no process-storm data in this run (details.storm)";
  const values = Object.entries(sides).flatMap(([side, s]) => (s?.rates ?? [])
    .filter((r) => r.achieved > 0 && Number.isFinite(r.cpuUsPerExec))
    .map((r) => ({ side: STORM_SIDES[side] ?? side, execs: r.achieved, cpuUs: r.cpuUsPerExec, reachable: r.reachable !== false,
      label: r.closedLoop ? "closed loop" : "" })));
  if (values.length === 0) return "the process-storm part has no rate with a CPU figure (details.storm.sides.*.rates)";
  const x = /** @type {const} */ ({ field: "execs", type: "quantitative", scale: { type: "log", nice: false, padding: 24 }, axis: { format: "~s" }, title: "fork+exec+exit per second (achieved)" });
  const y = /** @type {const} */ ({ field: "cpuUs", type: "quantitative", title: "daemon CPU per exec (µs)" });
  const color = /** @type {const} */ ({ field: "side", type: "nominal", sort: Object.values(STORM_SIDES), title: "rules", legend: { labelLimit: 0 } });
  return {
    width: WIDTH, height: HEIGHT,
    data: { values },
    layer: [
      { mark: { type: "line", strokeWidth: 1.5 }, encoding: { x, y, color } },
      // Hollow: the generator did not reach the target rate (the point is at what it did reach).
      { mark: { type: "point", filled: false, size: 60, strokeWidth: 1.5 },
        encoding: { x, y, color, fill: { condition: { test: "datum.reachable", field: "side", type: "nominal", sort: Object.values(STORM_SIDES) }, value: "white" } } },
      { mark: { type: "text", align: "left", dx: 7, dy: -7, fontSize: 10 }, encoding: { x, y, text: { field: "label" } } },
    ],
  };
}

/** @param {any} results @returns {Spec | string} */
function latencyCdfSpec(results) {
  const l = results.details?.latency;
  const rate = l?.load?.loadRate;
  const series = [
    ["idle", l?.idle?.cdf],
    [rate ? `under load (${Number(rate).toLocaleString("en-US")} matching events/s)` : "under load", l?.load?.cdf],
    ["idle, daemon under SCHED_RR 1", l?.idleSchedRr?.cdf],
  ].filter(([, cdf]) => Array.isArray(cdf) && cdf.length > 1);
  if (series.length === 0) return "no latency CDF in this run (details.latency.idle.cdf, details.latency.load.cdf)";
  return cdfSpec(series.map(([name, cdf]) => [name, cdf, 1]), "detection latency (ms)", "fraction of probes");
}

/**
 * Step lines of CDFs on one log axis in ms: `series` is [name, cdf, factor to ms], cdf[i]
 * the (i / (length - 1))-quantile. With `dashed`, the series it names are drawn dashed.
 * @param {any[][]} series @param {string} xTitle @param {string} yTitle @param {(name: string) => boolean} [dashed]
 * @returns {Spec}
 */
function cdfSpec(series, xTitle, yTitle, dashed) {
  const values = series.flatMap(([name, cdf, toMs]) => cdf.map((/** @type {number} */ x, /** @type {number} */ i) => ({
    series: name, ms: x * toMs, fraction: i / (cdf.length - 1), ...(dashed ? { reference: dashed(String(name)) ? "dashed" : "solid" } : {}),
  })).filter((/** @type {{ ms: number }} */ p) => p.ms > 0));
  return {
    width: WIDTH, height: HEIGHT,
    data: { values },
    mark: { type: "line", interpolate: "step-after", strokeWidth: 1.5 },
    encoding: {
      x: { field: "ms", type: "quantitative", scale: { type: "log", nice: false, padding: 12 }, title: xTitle },
      y: { field: "fraction", type: "quantitative", scale: { domain: [0, 1] }, title: yTitle },
      ...(dashed ? { strokeDash: { field: "reference", type: "nominal", scale: { domain: ["solid", "dashed"], range: [[1, 0], [4, 3]] }, legend: null } } : {}),
      color: { field: "series", type: "nominal", sort: series.map(([name]) => name), title: null, legend: { orient: "bottom", direction: "vertical", labelLimit: 0 } },
    },
  };
}

/** @param {any} results @returns {Spec | string} */
function killLatencySpec(results) {
  const e = results.details?.enforce;
  // In-kernel figures are µs, userspace ms: one log axis in ms holds both.
  const series = [
    ["in kernel: exec of sh on a socket (killed or denied)", e?.kernel?.["exec-sh"]?.us?.cdf, 1e-3],
    ["in kernel: dup2 completing the shape in sh (killed)", e?.kernel?.["dup-sh"]?.us?.cdf, 1e-3],
    ["reference: exec of /bin/true, same fds, to its exit", e?.kernel?.["exec-true"]?.us?.cdf, 1e-3],
    ["reference: the dup2, then _exit", e?.kernel?.["dup-exit"]?.us?.cdf, 1e-3],
    [`userspace: ${e?.userspace?.relay ?? "relay shells"} (event to kill)`, e?.userspace?.ms?.cdf, 1],
  ].filter(([, cdf]) => Array.isArray(cdf) && cdf.length > 1);
  if (series.length === 0) return "no kill latency in this run (details.enforce.kernel.*.us.cdf, details.enforce.userspace.ms.cdf)";
  // References dashed: what the same child costs when nothing stops it.
  return cdfSpec(series, "kill latency (ms, log)", "fraction of kills", (name) => name.startsWith("reference"));
}

const PLOTS = [
  { file: "plot-throughput.svg", spec: throughputSpec, title: "Throughput: received vs offered rate, per consumer",
    caption: "Matching events/s each consumer received against what the generator offered, every step of every round (closed loop included); crosses: records lost." },
  { file: "plot-storm-cpu.svg", spec: stormSpec, title: "Process storms: daemon CPU per exec vs exec rate",
    caption: "The daemon's CPU per fork+exec+exit against the exec rate the generator reached; hollow: it fell short of the target rate." },
  { file: "plot-latency-cdf.svg", spec: latencyCdfSpec, title: "Detection latency CDF, idle and under load",
    caption: "Syscall to the finding written, 0th to 100th percentile of the probes: idle, under a stream of matching events, and idle with the daemon under SCHED_RR 1." },
  { file: "plot-kill-latency.svg", spec: killLatencySpec, title: "Kill latency CDF: in the kernel and from userspace",
    caption: "In the kernel: a stamp just before the exec or the dup2 to the killed child reaped (exit and the parent's wakeup included), beside references that are not stopped; userspace: the daemon's latency_ms per relay kill, from the event to the kill." },
];

/**
 * Writes each plot the results have data for into outDir.
 * @param {any} results the object bench/run.mjs writes to results.json
 * @param {string} outDir
 * @returns {Promise<PlotOutcome[]>} one entry per plot, in order: written, or skipped with a reason
 */
export async function renderPlots(results, outDir) {
  /** @type {PlotOutcome[]} */
  const outcomes = [];
  for (const { file, spec, title, caption } of PLOTS) {
    const built = spec(results);
    if (typeof built === "string") {
      outcomes.push({ file, title, caption, skipped: built });
      continue;
    }
    try {
      const view = new vega.View(vega.parse(compile({ title, ...built }).spec), { renderer: "none" });
      const path = join(outDir, file);
      writeFileSync(path, await view.toSVG());
      view.finalize();
      outcomes.push({ file, title, caption, path });
    } catch (e) {
      // The bench has already written its results: a plot that cannot render is reported, not fatal.
      outcomes.push({ file, title, caption, skipped: `rendering failed: ${e instanceof Error ? e.message : String(e)}` });
    }
  }
  return outcomes;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const resultsFile = process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), "results.json");
  const outDir = process.argv[3] ?? dirname(resultsFile);
  for (const o of await renderPlots(JSON.parse(readFileSync(resultsFile, "utf8")), outDir))
    process.stdout.write(o.path ? `wrote ${o.path}\n` : `skipped ${o.file}: ${o.skipped}\n`);
}
