#!/usr/bin/env node
/**
 * `node bench/elastic-rules.mjs DIR [--json FILE] [--execs N]`: the CPU Elastic's rules cost in
 * the engine, in-process (no kernel, no root): the rules in DIR (e.g. a checkout's
 * rules/linux) loaded leniently, then fork + exec + exit of N processes run through an
 * engine with them and through one without, and each rule's own evaluate time. Two streams:
 * the process storm's (`/bin/true`, as sockeye-loadgen runs it) and a mixed one (shells,
 * interpreters, downloaders with their usual arguments). Prints a table (Markdown) and,
 * with --json, writes the figures.
 */
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const { Engine } = await import(join(ROOT, "dist", "engine", "engine.js"));
const { loadElasticRules } = await import(join(ROOT, "dist", "rules", "elastic", "loader.js"));
const { elasticRules } = await import(join(ROOT, "dist", "rules", "elastic", "rule.js"));

const argv = process.argv.slice(2);
const dir = argv[0];
if (dir === undefined || dir.startsWith("--")) {
  process.stderr.write("usage: node bench/elastic-rules.mjs DIR [--json FILE] [--execs N]\n");
  process.exit(2);
}
const jsonOut = argv.includes("--json") ? argv[argv.indexOf("--json") + 1] : undefined;
const execs = argv.includes("--execs") ? Number(argv[argv.indexOf("--execs") + 1]) : 20_000;

const loaded = loadElasticRules([dir], { lenient: true }).filter((r) => r.status === "runs").map((r) => r.rule);

const BASE_MS = Date.UTC(2026, 11, 7);
const PARENT = { pid: 900, startNs: 1e9, comm: "loadgen" };

/** Fork, exec and exit of process `i` running `program` with `args`. */
function lifecycle(i, program, args) {
  const pid = 10_000 + i;
  const timeMs = BASE_MS + i * 2;
  const timeNs = 1e12 + i * 2e6;
  const task = { pid, tid: pid, ppid: PARENT.pid, uid: 1000, gid: 1000, cgroupId: 7, startNs: timeNs, comm: PARENT.comm, parentComm: "bash" };
  const comm = program.slice(program.lastIndexOf("/") + 1).slice(0, 15);
  return [
    { kind: "fork", timeMs, timeNs, task },
    {
      kind: "exec", timeMs, timeNs: timeNs + 1e5, task: { ...task, comm }, filename: program, filenameTruncated: false, args,
      argsRaw: Buffer.from(args.map((a) => `${a}\0`).join("")).toString("base64"), argsTruncated: false, loginUid: 1000, stdio: null,
      // A user's process: no capabilities (as the exec record carries them since issue 27).
      capabilities: { effective: "0000000000000000", permitted: "0000000000000000" },
    },
    { kind: "exit", timeMs: timeMs + 1, timeNs: timeNs + 1e6, task: { ...task, comm }, exitCode: 0 },
  ];
}

const MIXED = [
  ["/usr/bin/bash", ["bash", "-c", "ls -la /tmp | grep x"]],
  ["/usr/bin/python3", ["python3", "-c", "import os; print(os.getcwd())"]],
  ["/usr/bin/curl", ["curl", "-fsSL", "https://example.org/install.sh"]],
  ["/usr/bin/git", ["git", "status", "--porcelain"]],
  ["/usr/sbin/sshd", ["sshd", "-D", "-R"]],
  ["/usr/bin/node", ["node", "dist/cli/main.js", "run"]],
  ["/usr/bin/perl", ["perl", "-e", "print 1"]],
  ["/usr/bin/sudo", ["sudo", "-n", "true"]],
  ["/bin/true", ["/bin/true"]],
  ["/usr/bin/cat", ["cat", "/etc/hostname"]],
];
const streams = {
  storm: (i) => lifecycle(i, "/bin/true", ["/bin/true"]),
  mixed: (i) => lifecycle(i, ...MIXED[i % MIXED.length]),
};

function cpuUs() {
  const u = process.cpuUsage();
  return u.user + u.system;
}

/** CPU µs per exec of `rules` over `count` lifecycles of `stream`, after a warm-up of the same size. */
function perExec(rules, stream, count) {
  const engine = new Engine({ rules, fold: false, hostName: "bench", now: () => BASE_MS, logger: { warn() {} } });
  for (let i = 0; i < count; i++) for (const event of stream(i)) engine.handle(event);
  const start = cpuUs();
  for (let i = count; i < 2 * count; i++) for (const event of stream(i)) engine.handle(event);
  return (cpuUs() - start) / count;
}

/** Each rule's evaluate wrapped to add up its own time. */
function timedRules(rules) {
  return rules.map((rule) => {
    const timed = { rule, ns: 0n };
    timed.wrapped = {
      ...rule,
      evaluate(event, ctx) {
        const start = process.hrtime.bigint();
        try {
          return rule.evaluate(event, ctx);
        } finally {
          timed.ns += process.hrtime.bigint() - start;
        }
      },
    };
    return timed;
  });
}

const results = { rules: loaded.length, execs, streams: {} };
let md = `Elastic rules: ${loaded.length} from ${dir}; ${execs} fork+exec+exit per stream after as many of warm-up.\n\n`;
md += "| stream | engine without Elastic rules (µs/exec) | with them (µs/exec) | the rules' own (µs/exec) |\n|---|---|---|---|\n";
for (const [name, stream] of Object.entries(streams)) {
  const none = Math.min(perExec([], stream, execs), perExec([], stream, execs));
  const all = Math.min(perExec(elasticRules(loaded), stream, execs), perExec(elasticRules(loaded), stream, execs));
  const timed = timedRules(elasticRules(loaded));
  const engine = new Engine({ rules: timed.map((t) => t.wrapped), fold: false, hostName: "bench", now: () => BASE_MS, logger: { warn() {} } });
  for (let i = 0; i < execs; i++) for (const event of stream(i)) engine.handle(event);
  for (const t of timed) t.ns = 0n;
  for (let i = execs; i < 2 * execs; i++) for (const event of stream(i)) engine.handle(event);
  const perRule = timed
    .map((t) => ({ id: t.rule.meta.id, name: t.rule.meta.name, usPerExec: Number(t.ns) / 1000 / execs }))
    .sort((a, b) => b.usPerExec - a.usPerExec);
  results.streams[name] = { engineUsPerExec: none, withElasticUsPerExec: all, elasticUsPerExec: all - none, perRule };
  md += `| ${name} | ${none.toFixed(2)} | ${all.toFixed(2)} | ${(all - none).toFixed(2)} |\n`;
}
for (const [name, stream] of Object.entries(results.streams)) {
  md += `\nCostliest rules, ${name} stream (evaluate time incl. the shared document build, µs per exec; sum ${stream.perRule.reduce((s, r) => s + r.usPerExec, 0).toFixed(2)}):\n\n| rule | µs/exec |\n|---|---|\n`;
  for (const rule of stream.perRule.slice(0, 15)) md += `| ${rule.name} | ${rule.usPerExec.toFixed(3)} |\n`;
}
process.stdout.write(md);
if (jsonOut) writeFileSync(jsonOut, `${JSON.stringify(results, null, 2)}\n`);
