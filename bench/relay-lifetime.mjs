#!/usr/bin/env node
/**
 * How short a relay RELAY-001 still catches (docs/rules/RELAY-001.md, "How short a relay can
 * be"): `ncat -e /bin/sh` against a loopback listener that sends `sleep S; exit` and keeps the
 * connection open, so the shell lives about S; 10 runs per S. Prints, per S, how long the shell
 * lived (median and range, from its exec and exit records) and how many relays were caught.
 * Root, over the built package (dist/); run it alone (`flock /tmp/sockeye-host.lock`): it
 * loads the sensor.
 *   node bench/relay-lifetime.mjs [RUNS]
 */
import { spawn } from "node:child_process";
import net from "node:net";
import { Engine, ProcHostView, ProcessTable, builtinRules, openSensorSync } from "../dist/index.js";

const RUNS = Number(process.argv[2] ?? 10);
const SLEEPS_S = [0, 0.002, 0.005, 0.01, 0.02, 0.04, 0.06, 0.1];
// How long after ncat ends its records and the rule's look are given to arrive.
const SETTLE_MS = 100;

const sensor = openSensorSync();
const events = [];
const findings = [];
const processes = new ProcessTable({ host: new ProcHostView() });
processes.seedFromProc();
const engine = new Engine({ rules: builtinRules(), processes });
sensor.subscribe((batch) => {
  for (const event of batch) {
    events.push(event);
    findings.push(...engine.handle(event));
  }
});

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const exited = (child) => new Promise((resolve) => child.on("exit", resolve));

/** One relay whose shell runs `sleep S; exit`: whether it was caught, and how long the shell lived. */
async function shortRelay(sleepS) {
  const server = net.createServer((s) => {
    s.on("error", () => {});
    s.write(sleepS === 0 ? "exit\n" : `sleep ${sleepS}; exit\n`);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(undefined)));
  const port = /** @type {net.AddressInfo} */ (server.address()).port;
  const mark = events.length;
  try {
    await exited(spawn("timeout", ["-s", "KILL", "10", "ncat", "127.0.0.1", String(port), "-e", "/bin/sh"], { stdio: "ignore" }));
    await sleep(SETTLE_MS);
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
  const seen = events.slice(mark);
  const exec = seen.find((e) => e.kind === "exec" && e.filename === "/bin/sh" && e.args[0] === "/bin/sh");
  const exit = exec && seen.find((e) => e.kind === "exit" && e.task.pid === exec.task.pid);
  const caught = findings.some((f) => f.rule.id === "RELAY-001" && f.destination?.port === port);
  return { caught, livedMs: exec && exit ? exit.timeMs - exec.timeMs : undefined };
}

try {
  // One relay first, so the rule's code is warm as on a daemon that has run for a while.
  await shortRelay(0.2);
  for (const sleepS of SLEEPS_S) {
    const runs = [];
    for (let i = 0; i < RUNS; i++) runs.push(await shortRelay(sleepS));
    const lives = runs.flatMap((r) => (r.livedMs !== undefined ? [r.livedMs] : [])).sort((a, b) => a - b);
    const ms = (n) => (n === undefined ? "?" : n.toFixed(1));
    console.log(`sleep ${sleepS}s: shell lived median ${ms(lives[lives.length >> 1])} ms (${ms(lives[0])}-${ms(lives.at(-1))}): caught ${runs.filter((r) => r.caught).length}/${runs.length}`);
  }
} finally {
  await sensor.close();
}
