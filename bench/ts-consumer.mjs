#!/usr/bin/env node
/**
 * A sockeye consumer in Node.js for the benchmarks, over the built package (dist/):
 *   noop  the addon and decoder with a handler that only counts (the cost of getting events
 *         into JavaScript);
 *   full  what `sockeye run --profile tracee` does: every rule (builtinRules() +
 *         loadBuiltinElasticRules()), the process table seeded from /proc, findings as JSON
 *         lines written to /dev/null, the event loop real-time while calm (eventLoopRealtime,
 *         the daemon's default). TRC-101 runs its tracee profile: the generator's matching
 *         dups put a socket on stdio and run no shell on it, which the default precise profile
 *         holds and never reports, so neither findings nor latency samples would come out.
 *
 * Same protocol as sockeye-c-consumer: prints {"ready":true} once attached, then one JSON line
 * of running totals per "stats" line on stdin; "quit" or EOF closes the sensor and exits.
 * In full mode each TRC-101 finding of a "sockeye-probe" process adds a latency sample: from
 * the syscall's BPF timestamp (CLOCK_MONOTONIC) to the moment its JSON line was written, and
 * one to the moment its batch reached the subscriber (decoded, before any rule ran).
 */
import { openSync, writeSync } from "node:fs";
import { createInterface } from "node:readline";
import { Engine, ProcHostView, ProcessTable, builtinRules, loadBuiltinElasticRules, openSensorSync } from "../dist/index.js";

const mode = process.argv[2];
if (mode !== "noop" && mode !== "full") {
  process.stderr.write("usage: ts-consumer.mjs noop|full\n");
  process.exit(2);
}
// Never outlive the benchmark that started us, whatever happens to it.
const MAX_SECONDS = 1800;

// full mode schedules like `sockeye run` (sensor.event_loop_realtime defaults to true there);
// noop is the library's default.
const sensor = openSensorSync(mode === "full" ? { eventLoopRealtime: true } : {});
let records = 0;
let loadgenDups = 0;
let findings = 0;
let latenciesNs = [];
let receivedLatenciesNs = [];
// inet only: the generator's own stdout (a socketpair from its parent) is a unix socket.
const isLoadgenDup = (e) => e.kind === "socket_dup" && e.family === "inet" && e.task.comm === "sockeye-loadgen";

if (mode === "noop") {
  sensor.subscribe((events) => {
    records += events.length;
    for (const e of events) if (isLoadgenDup(e)) loadgenDups++;
  });
} else {
  const processes = new ProcessTable({ host: new ProcHostView() });
  processes.seedFromProc();
  const engine = new Engine({ rules: [...builtinRules({ trc101: { profile: "tracee" } }), ...loadBuiltinElasticRules()], processes, fold: true });
  const devNull = openSync("/dev/null", "w");
  sensor.subscribe((events) => {
    const received = Number(process.hrtime.bigint());
    let chunk = "";
    const probes = [];
    for (const event of events) {
      records++;
      if (isLoadgenDup(event)) loadgenDups++;
      for (const finding of engine.handle(event)) {
        chunk += `${JSON.stringify(finding)}\n`;
        findings++;
        if (finding.rule.id === "TRC-101" && event.task.comm === "sockeye-probe") probes.push(event.timeNs);
      }
    }
    if (chunk) writeSync(devNull, chunk);
    if (probes.length) {
      const written = Number(process.hrtime.bigint());
      for (const t of probes) {
        latenciesNs.push(written - t);
        receivedLatenciesNs.push(received - t);
      }
    }
  });
}

const stopTimer = setTimeout(quit, MAX_SECONDS * 1000);
stopTimer.unref();

function stats() {
  const k = sensor.counters();
  const line = {
    records, loadgenDups, findings,
    dupEmitted: k.socket_dup.emitted, dupLost: k.socket_dup.lost, execEmitted: k.exec.emitted, execLost: k.exec.lost,
    batches: sensor.stats().batches,
    latenciesNs, receivedLatenciesNs,
  };
  latenciesNs = [];
  receivedLatenciesNs = [];
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

function quit() {
  void sensor.close(); // detaches at once; exiting, so the last batches are not waited for
  process.exit(0);
}

process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
const lines = createInterface({ input: process.stdin });
lines.on("line", (line) => {
  if (line.startsWith("stats")) stats();
  else if (line.startsWith("quit")) quit();
});
lines.on("close", quit);
