// The daemon's event-loop lag under loads a local user chooses the cost of (issue 25), the
// same loads the kernel tier's event-loop-lag test runs (bench/host-loads.mjs):
// `fd-holder`: a parent holding 200,000 fds (over a chain of ancestors where one process may
// not hold them all) runs `cat | sh | cat` relays in a loop, so RELAY-001 looks at its open
// files for every shell; `big-exec`: a 64 MiB copy of a shell starts again and again with a
// socket on stdio and a new mtime, so TRC-101 hashes its content each time; `argv-storm`:
// execs of /bin/true with 4,095 arguments from two processes as fast as they go. Each load
// runs against a fresh `sockeye run`, which logs its lag at stop; its peak RSS is read before.
// Root, a built tree, python3, nc.traditional. Run under the host lock:
//   flock /tmp/sockeye-host.lock node bench/event-loop-lag.mjs [--seconds 10] [--only fd-holder]
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { peakRssMb, startDaemon } from "./daemon.mjs";
import { ARGV_STORM, BIG_EXEC, FD_HOLDER } from "./host-loads.mjs";

const { values } = parseArgs({ options: { seconds: { type: "string", default: "10" }, only: { type: "string" } } });
const seconds = Number(values.seconds);
if (!(seconds > 0)) {
  console.error(`event-loop-lag: --seconds must be a positive number, got "${values.seconds}"`);
  process.exit(2);
}

/** Runs a load to its end; returns the words of its "ready" line and its last line (a count). */
function python(code, args) {
  const child = spawn("python3", ["-c", code, String(seconds), ...args], { stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  return new Promise((resolve, reject) =>
    child.on("exit", (status) => {
      const lines = out.trim().split("\n");
      if (status === 0) resolve({ ready: lines[0].split(" ").slice(1), count: Number(lines.at(-1)) });
      else reject(new Error(`load exited ${status}`));
    }),
  );
}

const loads = {
  "fd-holder": async () => {
    const { ready, count } = await python(FD_HOLDER, ["200000"]);
    return { fdsHeld: Number(ready[0]), relays: count };
  },
  "big-exec": async () => {
    const dir = mkdtempSync(join(tmpdir(), "sockeye-lag-"));
    const server = net.createServer((s) => s.on("error", () => {}).end("exit\n"));
    await new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(undefined)));
    try {
      return { execs: (await python(BIG_EXEC, [join(dir, "padded"), String(/** @type {net.AddressInfo} */ (server.address()).port)])).count };
    } finally {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  },
  "argv-storm": async () => ({ execs: (await python(ARGV_STORM, ["2"])).count }),
};

for (const [name, load] of Object.entries(loads)) {
  if (values.only !== undefined && values.only !== name) continue;
  const daemon = startDaemon(["--format", "json"]);
  await daemon.ready;
  const done = await load();
  const rssMb = Math.round(peakRssMb(/** @type {number} */ (daemon.child.pid)));
  await daemon.stop();
  const stopped = daemon.stopped();
  const lost = Object.values(stopped?.kernel ?? {}).reduce((sum, hook) => sum + hook.lost, 0);
  console.log(JSON.stringify({ load: name, seconds, ...done, eventLoopLagMs: stopped?.eventLoopLagMs, peakRssMb: rssMb, kernelLost: lost, workersReplaced: stopped?.workersReplaced }));
}
