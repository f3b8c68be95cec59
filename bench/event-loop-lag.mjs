// The daemon's event-loop lag under two loads a local user chooses the cost of (issue 25):
// `fd-holder`: a parent holding 19,000 pipe fds runs `cat | sh | cat` relays in a loop, so
// RELAY-001 looks at its open files for every shell; `big-exec`: a 64 MiB copy of a shell
// starts again and again with a socket on stdio and a new mtime (nc.traditional -e: a
// program that is no interpreter dups the socket, then execs the copy), so TRC-101 hashes its
// content each time. Each load runs against a fresh `sockeye run`, which logs its lag at stop.
// Root, a built tree, python3, nc.traditional. Run under the host lock:
//   flock /tmp/sockeye-host.lock node bench/event-loop-lag.mjs [--seconds 10] [--only fd-holder]
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";

const { values } = parseArgs({ options: { seconds: { type: "string", default: "10" }, only: { type: "string" } } });
const seconds = Number(values.seconds);
if (!(seconds > 0)) {
  console.error(`event-loop-lag: --seconds must be a positive number, got "${values.seconds}"`);
  process.exit(2);
}

// 9,500 pipes = 19,000 fds, under the host's hard limit of 20,000.
const FD_HOLDER = `
import os, resource, subprocess, sys, time
resource.setrlimit(resource.RLIMIT_NOFILE, (20000, 20000))
held = [os.pipe() for _ in range(9500)]
end = time.time() + float(sys.argv[1]); relays = 0
while time.time() < end:
    a = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    s = subprocess.Popen(["sh"], stdin=a.stdout, stdout=subprocess.PIPE)
    b = subprocess.Popen(["cat"], stdin=s.stdout, stdout=subprocess.DEVNULL)
    a.stdout.close(); s.stdout.close()
    a.stdin.write(b"echo hi\\n"); a.stdin.close()
    a.wait(); s.wait(); b.wait(); relays += 1
print(relays)
`;

const BIG_EXEC = `
import os, shutil, subprocess, sys, time
path, port = sys.argv[2], int(sys.argv[3])
shutil.copyfile("/bin/dash", path); os.chmod(path, 0o755)
with open(path, "ab") as f: f.truncate(64 * 1024 * 1024)
end = time.time() + float(sys.argv[1]); execs = 0
while time.time() < end:
    os.utime(path, ns=(time.time_ns(), time.time_ns()))
    subprocess.run(["nc.traditional", "127.0.0.1", str(port), "-e", path]); execs += 1
print(execs)
`;

function startDaemon() {
  const daemon = spawn(process.execPath, ["dist/cli/main.js", "run", "--format", "json"], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  const ready = /** @type {Promise<void>} */ (new Promise((resolve, reject) => {
    daemon.stderr.on("data", (d) => {
      stderr += d.toString();
      if (stderr.includes("sensor ready")) resolve();
    });
    daemon.on("exit", (code) => reject(new Error(`sockeye run exited ${code}: ${stderr}`)));
  }));
  const stop = async () => {
    daemon.kill("SIGTERM");
    await new Promise((resolve) => daemon.once("exit", resolve));
    const stopped = stderr.split("\n").filter(Boolean).map((l) => JSON.parse(l)).find((l) => l.message === "stopped");
    return stopped.eventLoopLagMs;
  };
  return { ready, stop };
}

function python(code, args) {
  const child = spawn("python3", ["-c", code, String(seconds), ...args], { stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  return new Promise((resolve, reject) => child.on("exit", (status) => (status === 0 ? resolve(Number(out.trim())) : reject(new Error(`load exited ${status}`)))));
}

const loads = {
  "fd-holder": async () => ({ relays: await python(FD_HOLDER, []) }),
  "big-exec": async () => {
    const dir = mkdtempSync(join(tmpdir(), "sockeye-lag-"));
    const server = net.createServer((s) => s.on("error", () => {}).end("exit\n"));
    await new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(undefined)));
    try {
      return { execs: await python(BIG_EXEC, [join(dir, "padded"), String(/** @type {net.AddressInfo} */ (server.address()).port)]) };
    } finally {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  },
};

const results = {};
for (const [name, load] of Object.entries(loads)) {
  if (values.only !== undefined && values.only !== name) continue;
  const daemon = startDaemon();
  await daemon.ready;
  const done = await load();
  results[name] = { seconds, ...done, eventLoopLagMs: await daemon.stop() };
  console.log(JSON.stringify({ load: name, ...results[name] }));
}
