/**
 * Typed builders for sensor events, so a test states only what it is about:
 * `connect({ fd: 0 })`, `dup({ newfd: 2, origin: "accepted" })`, `exec({ filename: "/bin/sh" })`,
 * `outbound({ socketIno: 7 })`. Every builder fills a complete, valid event (it passes the
 * capture schema). Below them, the shorthands rule tests write process trees with:
 * `start(proc(201, 200, "sh"), "/bin/sh", ["sh"], [pipe(11), pipe(12), tty(1)], 3)`.
 */
import type {
  ConnectEvent,
  EngineLogger,
  ExecEvent,
  ExitEvent,
  ForkEvent,
  Holding,
  OutboundEvent,
  SensorEvent,
  SocketDupEvent,
  StdioFd,
  TaskContext,
} from "sockeye";

/** 2026-11-22T10:00:00.000Z: fixed, so findings' @timestamp is predictable. */
export const BASE_TIME_MS = Date.UTC(2026, 10, 22, 10, 0, 0);

export const ATTACKER = { address: "10.0.0.66", port: 4444 } as const;
/** This host's end of the attacker's connection. */
export const LOCAL_END = { address: "10.0.0.5", port: 51234 } as const;

export function task(overrides: Partial<TaskContext> = {}): TaskContext {
  const pid = overrides.pid ?? 4242;
  return {
    pid,
    tid: pid,
    ppid: 4000,
    uid: 1000,
    gid: 1000,
    cgroupId: 7777,
    startNs: 5_000_000_000,
    comm: "bash",
    parentComm: "sshd",
    ...overrides,
  };
}

interface Timing {
  timeMs?: number;
  task?: Partial<TaskContext>;
}

function timing(options: Timing) {
  const timeMs = options.timeMs ?? BASE_TIME_MS;
  return { timeMs, timeNs: (timeMs - BASE_TIME_MS) * 1e6 + 1e12, task: task(options.task) };
}

export function connect(options: Timing & Partial<Omit<ConnectEvent, "kind" | "task" | "timeMs">> = {}): ConnectEvent {
  const { task: _task, timeMs: _timeMs, ...fields } = options;
  return {
    ...timing(options),
    kind: "connect",
    fd: 3,
    result: 0,
    family: "inet",
    familyNumber: 2,
    socketType: "stream",
    protocol: 6,
    source: "tracepoint",
    remote: { ...ATTACKER },
    unixPath: null,
    socketIno: 0,
    socketOnFds: [],
    ...fields,
  };
}

export function dup(options: Timing & Partial<Omit<SocketDupEvent, "kind" | "task" | "timeMs">> = {}): SocketDupEvent {
  const { task: _task, timeMs: _timeMs, ...fields } = options;
  return {
    ...timing(options),
    kind: "socket_dup",
    syscall: "dup2",
    oldfd: 3,
    newfd: 0,
    family: "inet",
    familyNumber: 2,
    socketType: "stream",
    protocol: 6,
    origin: "connected",
    state: 1,
    local: { ...LOCAL_END },
    remote: { ...ATTACKER },
    socketIno: 0,
    socketOnFds: [],
    ...fields,
  };
}

export function exec(options: Timing & Partial<Omit<ExecEvent, "kind" | "task" | "timeMs">> = {}): ExecEvent {
  const { task: _task, timeMs: _timeMs, ...fields } = options;
  const args = fields.args ?? [fields.filename ?? "/bin/bash"];
  return {
    ...timing(options),
    kind: "exec",
    filename: "/bin/bash",
    filenameTruncated: false,
    args,
    argsRaw: Buffer.from(args.map((arg) => `${arg}\0`).join("")).toString("base64"),
    argsTruncated: false,
    loginUid: 1000,
    stdio: null,
    capabilities: null,
    ...fields,
  };
}

export function fork(options: Timing = {}): ForkEvent {
  return { ...timing(options), kind: "fork" };
}

export function exit(options: Timing & { exitCode?: number } = {}): ExitEvent {
  return { ...timing(options), kind: "exit", exitCode: options.exitCode ?? 0 };
}

export function outbound(options: Timing & Partial<Omit<OutboundEvent, "kind" | "task" | "timeMs">> = {}): OutboundEvent {
  const { task: _task, timeMs: _timeMs, ...fields } = options;
  return {
    ...timing(options),
    kind: "outbound",
    transport: "tcp",
    fd: 3,
    result: 0,
    socketIno: 0,
    family: "inet",
    local: { ...LOCAL_END },
    remote: { ...ATTACKER },
    ...fields,
  };
}

// --- process trees for rule tests --------------------------------------------------------

export const silentLogger: EngineLogger = { warn: () => {} };

/** Event time `ms` after BASE_TIME_MS. */
export const at = (ms: number): number => BASE_TIME_MS + ms;

/** A process: pid, its parent, and the start time that makes it this incarnation. */
export const proc = (pid: number, ppid: number, comm: string): Partial<TaskContext> => ({ pid, tid: pid, ppid, comm, startNs: pid * 1_000 });

/** Exec-time stdio records. */
export const pipe = (ino: number): StdioFd => ({ kind: "pipe", ino, dev: 15 });
export const fifo = (ino: number): StdioFd => ({ kind: "fifo", ino, dev: (254 << 20) | 1 });
export const unix = (ino: number, peerIno: number): StdioFd => ({ kind: "unix", ino, socketType: "stream", peerIno });
export const tty = (index: number): StdioFd => ({ kind: "tty", ino: 3, ttyIndex: index, controlling: true });
export const inet = (ino: number, origin: "connected" | "accepted" | "passive" = "connected"): StdioFd => ({
  kind: "inet", ino, family: "inet", socketType: "stream", origin, state: 1, local: { ...LOCAL_END }, remote: { ...ATTACKER },
});

/** What a process holds on `fd`, as the relay graph names it (see test/unit/host/fake-host.ts). */
export const holds = (fd: number, key: string, access: Holding["access"] = "both"): Holding => ({ fd, key, access });

/** A process forked and exec'd at `ms`. */
export function start(p: Partial<TaskContext>, filename: string, args: string[], stdio: [StdioFd, StdioFd, StdioFd], ms: number): SensorEvent[] {
  return [fork({ task: p, timeMs: at(ms) }), exec({ task: p, filename, args, stdio, timeMs: at(ms) })];
}

/** `p` connected socket `ino` to `remote` at `ms` (the kernel saw it established). */
export const connectedOut = (p: Partial<TaskContext>, ino: number, ms: number, remote: { address: string; port: number } = ATTACKER): OutboundEvent =>
  outbound({ task: p, socketIno: ino, timeMs: at(ms), remote: { ...remote } });
