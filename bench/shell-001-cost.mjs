#!/usr/bin/env node
/**
 * `node bench/shell-001-cost.mjs [--execs N]`: SHELL-001's own CPU per fork + exec + exit,
 * in-process (no kernel, no root): the built-in rules in an engine with and without it, over
 * two streams of N processes each: the process storm's (`/bin/true` with /dev/null and pipes
 * on stdio, as sockeye-loadgen's children start) and a pipeline-heavy one (every process with
 * pipes on fds 0-2, every tenth a shell reading stdin, every twentieth connecting out: the
 * indexing and input lookups SHELL-001 does). Medians of 5 interleaved rounds.
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const { Engine, ProcessTable, OFFLINE_HOST, builtinRules } = await import(join(ROOT, "dist", "index.js"));

const argv = process.argv.slice(2);
const execs = argv.includes("--execs") ? Number(argv[argv.indexOf("--execs") + 1]) : 20_000;
const BASE_MS = Date.UTC(2026, 11, 7);

function stream(kind) {
  const events = [];
  for (let i = 0; i < execs; i++) {
    const pid = 10_000 + i;
    const timeMs = BASE_MS + i * 2;
    const timeNs = 1e12 + i * 2e6;
    const task = { pid, tid: pid, ppid: 900, uid: 0, gid: 0, cgroupId: 7, startNs: timeNs, comm: "loadgen", parentComm: "bash" };
    const shell = kind === "pipeline" && i % 10 === 0;
    const [filename, args] = shell ? ["/bin/sh", ["sh"]] : ["/bin/true", ["/bin/true"]];
    const stdio = kind === "storm"
      ? [{ kind: "chardev", ino: 5, dev: 5 }, { kind: "pipe", ino: 77, dev: 15 }, { kind: "pipe", ino: 78, dev: 15 }]
      : [{ kind: "pipe", ino: 1000 + i, dev: 15 }, { kind: "pipe", ino: 1001 + i, dev: 15 }, { kind: "pipe", ino: 78, dev: 15 }];
    const comm = filename.slice(filename.lastIndexOf("/") + 1);
    events.push({ kind: "fork", timeMs, timeNs, task });
    events.push({
      kind: "exec", timeMs, timeNs: timeNs + 1e5, task: { ...task, comm }, filename, filenameTruncated: false, args,
      argsRaw: Buffer.from(args.map((a) => `${a}\0`).join("")).toString("base64"), argsTruncated: false, loginUid: 0, stdio,
    });
    if (kind === "pipeline" && i % 20 === 0) {
      events.push({ kind: "outbound", timeMs, timeNs: timeNs + 2e5, task: { ...task, comm }, fd: 3, result: 0, socketIno: 50_000 + i, family: "inet",
        local: { address: "127.0.0.1", port: 40000 }, remote: { address: "127.0.0.1", port: 80 } });
    }
    events.push({ kind: "exit", timeMs: timeMs + 1, timeNs: timeNs + 1e6, task: { ...task, comm }, exitCode: 0 });
  }
  return events;
}

function cpuPerExec(rules, events) {
  const engine = new Engine({ rules, processes: new ProcessTable({ host: OFFLINE_HOST }), hostName: "bench", logger: { warn: () => {} } });
  const start = process.cpuUsage();
  for (const e of events) engine.handle(e);
  const used = process.cpuUsage(start);
  return (used.user + used.system) / execs;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rows = [];
for (const kind of ["storm", "pipeline"]) {
  const events = stream(kind);
  const withIt = [];
  const without = [];
  for (let round = 0; round < 6; round++) {
    const all = () => builtinRules();
    const rest = () => builtinRules().filter((r) => r.meta.id !== "SHELL-001");
    // Round 0 warms V8 up and is not counted; the order alternates.
    const a = round % 2 === 0 ? cpuPerExec(all(), events) : cpuPerExec(rest(), events);
    const b = round % 2 === 0 ? cpuPerExec(rest(), events) : cpuPerExec(all(), events);
    if (round === 0) continue;
    (round % 2 === 0 ? withIt : without).push(a);
    (round % 2 === 0 ? without : withIt).push(b);
  }
  rows.push({ stream: kind, with: median(withIt), without: median(without) });
}
console.log(`| stream (${execs} fork+exec+exit) | built-in rules µs/exec | without SHELL-001 | SHELL-001's share |`);
console.log("|---|---|---|---|");
for (const r of rows) console.log(`| ${r.stream} | ${r.with.toFixed(2)} | ${r.without.toFixed(2)} | ${(r.with - r.without).toFixed(2)} |`);
