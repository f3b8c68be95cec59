/**
 * Typed builders for sensor events, so a test states only what it is about:
 * `connect({ fd: 0 })`, `dup({ newfd: 2, origin: "accepted" })`, `exec({ filename: "/bin/sh" })`.
 * Every builder fills a complete, valid event (it passes the capture schema).
 */
import type {
  ConnectEvent,
  ExecEvent,
  ExitEvent,
  ForkEvent,
  SocketDupEvent,
  TaskContext,
} from "sockeye";

/** 2026-11-22T10:00:00.000Z: fixed, so findings' @timestamp is predictable. */
export const BASE_TIME_MS = Date.UTC(2026, 10, 22, 10, 0, 0);

export const ATTACKER = { address: "10.0.0.66", port: 4444 } as const;

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
    local: { address: "10.0.0.5", port: 51234 },
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
    ...fields,
  };
}

export function fork(options: Timing = {}): ForkEvent {
  return { ...timing(options), kind: "fork" };
}

export function exit(options: Timing & { exitCode?: number } = {}): ExitEvent {
  return { ...timing(options), kind: "exit", exitCode: options.exitCode ?? 0 };
}
