#!/usr/bin/env node
/**
 * Kernel cost of udp_send's cgroup/sendmsg programs (bpf/relay.bpf.c) per kind of UDP send, as
 * the kernel accounts it (kernel.bpf_stats_enabled: run_time_ns / run_cnt), one phase at a time:
 *   repeat     N sendto calls spread over 100 unconnected sockets that already sent once
 *              (a socket cookie and one LRU lookup each, no record)
 *   first      N/5 fresh sockets, each sending once (a record each: the worst case)
 *   connected  N sendto calls with an address on a connected socket (left at the state check)
 * bench/prog-cost.sh runs the same mix inside its storm and reports the average. Root, over the
 * built package (dist/); run it alone (`flock /tmp/sockeye-host.lock`): it loads the sensor.
 *   node bench/udp-send-cost.mjs [N]
 */
import { execFileSync, spawn } from "node:child_process";
import { openSensorSync } from "../dist/index.js";

const N = Number(process.argv[2] ?? 50_000);
const PROGRAMS = new Set(["handle_sendmsg4", "handle_sendmsg6"]);

/** Python that sets up, prints "go", waits for a line on stdin, then sends. */
const setup = `
import socket, sys
k = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); k.bind(("127.0.0.1", 0)); d = k.getsockname()
`;
const go = `sys.stdout.write("go\\n"); sys.stdout.flush(); sys.stdin.readline()\n`;
const PHASES = {
  repeat: `${setup}h = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(100)]
for s in h: s.sendto(b"x", d)
${go}for i in range(${N}): h[i % 100].sendto(b"x", d)`,
  first: `${setup}${go}for i in range(${Math.floor(N / 5)}):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.sendto(b"x", d); u.close()`,
  connected: `${setup}c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); c.connect(d)
${go}for i in range(${N}): c.sendto(b"x", d)`,
};

/** @returns {{ id: number, name: string, run_cnt?: number, run_time_ns?: number }[]} */
function stats() {
  /** @type {{ id: number, name: string, run_cnt?: number, run_time_ns?: number }[]} */
  const progs = JSON.parse(execFileSync("bpftool", ["-j", "prog", "show"], { encoding: "utf8" }));
  return progs.filter((p) => PROGRAMS.has(p.name));
}

const previous = execFileSync("sysctl", ["-n", "kernel.bpf_stats_enabled"], { encoding: "utf8" }).trim();
execFileSync("sysctl", ["-qw", "kernel.bpf_stats_enabled=1"]);
const sensor = openSensorSync();
try {
  if (sensor.liveProgram("udp_send") !== "cgroup/sendmsg{4,6}") throw new Error(`udp_send is not live: ${sensor.liveProgram("udp_send")}`);
  sensor.subscribe(() => {});
  /** @type {Record<string, { runs: number, ns_per_run: number }>} */
  const out = {};
  for (const [phase, code] of Object.entries(PHASES)) {
    const child = spawn("python3", ["-c", code], { stdio: ["pipe", "pipe", "inherit"] });
    await new Promise((resolve) => child.stdout.once("data", resolve));
    const before = stats();
    child.stdin.write("\n");
    await new Promise((resolve) => child.on("exit", resolve));
    for (const p of stats()) {
      const b = before.find((q) => q.id === p.id);
      const runs = (p.run_cnt ?? 0) - (b?.run_cnt ?? 0);
      if (runs > 0) out[`${phase} ${p.name}`] = { runs, ns_per_run: Math.round(((p.run_time_ns ?? 0) - (b?.run_time_ns ?? 0)) / runs) };
    }
  }
  console.log(JSON.stringify(out));
} finally {
  await sensor.close();
  execFileSync("sysctl", ["-qw", `kernel.bpf_stats_enabled=${previous}`]);
}
