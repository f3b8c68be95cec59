/**
 * Run-time check of a decoded event read back from a capture: rules trust the SensorEvent
 * types, so a line that does not fit them is rejected before it reaches a rule.
 *
 * The `z.ZodType<SensorEvent>` annotation makes a drift between this schema and
 * src/sensor/events.ts a compile error. Unknown extra fields are dropped, so captures
 * written by a newer sensor still replay.
 */
import { z } from "zod";
import type { SensorEvent } from "../sensor/events.js";

// Every number in the range of the kernel field it stands for, so a hand-edited capture
// cannot carry a value the live sensor never produces (a time `new Date()` refuses, an
// Infinity, a negative inode) into a rule. u64 fields reach JS as doubles: 2^64 itself is
// what the largest of them rounds to.
const int = z.number().int();
const i32 = int.min(-(2 ** 31)).max(2 ** 31 - 1);
const u32 = int.min(0).max(2 ** 32 - 1);
const u64 = int.min(0).max(2 ** 64);
const byte = int.min(0).max(255);
/** The largest time a JS Date holds (ECMA-262 time values). */
const MAX_TIME_MS = 8.64e15;

const task = z.object({
  pid: u32,
  tid: u32,
  ppid: u32,
  uid: u32,
  gid: u32,
  cgroupId: u64,
  startNs: u64,
  comm: z.string(),
  parentComm: z.string(),
  nsPid: u32.optional(),
  pidNs: u32.optional(),
  mntNs: u32.optional(),
  netNs: u32.optional(),
});

const base = {
  timeNs: z.number().finite().min(0).max(2 ** 64),
  timeMs: z.number().finite().min(0).max(MAX_TIME_MS),
  task,
};

const endpoint = z.object({ address: z.string(), port: int.min(0).max(65535) });
const family = z.enum(["inet", "inet6", "unix", "other"]);
const socketType = z.enum(["stream", "dgram", "raw", "seqpacket", "other"]);
const origin = z.enum(["unknown", "accepted", "connected", "passive"]);

const connect = z.object({
  ...base,
  kind: z.literal("connect"),
  fd: i32,
  result: i32.nullable(),
  family,
  familyNumber: u32,
  socketType,
  protocol: i32,
  source: z.enum(["lsm", "fentry", "tracepoint"]),
  remote: endpoint.nullable(),
  unixPath: z.string().nullable(),
  socketIno: u64.default(0),
  socketOnFds: z.array(i32).default([]),
});

const socketDup = z.object({
  ...base,
  kind: z.literal("socket_dup"),
  syscall: z.enum(["dup", "dup2", "dup3", "fcntl"]),
  oldfd: i32,
  newfd: i32,
  family,
  familyNumber: u32,
  socketType,
  protocol: i32,
  origin,
  state: byte,
  local: endpoint.nullable(),
  remote: endpoint.nullable(),
  socketIno: u64.default(0),
  socketOnFds: z.array(i32).default([]),
});

const stdioFd = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("closed") }),
  z.object({
    kind: z.literal("inet"), ino: u64, family: z.enum(["inet", "inet6"]), socketType, origin, state: byte, local: endpoint, remote: endpoint,
  }),
  z.object({ kind: z.literal("unix"), ino: u64, socketType, peerIno: u64 }),
  z.object({ kind: z.literal("socket"), ino: u64, familyNumber: u32 }),
  ...(["pipe", "fifo", "file", "chardev", "other"] as const).map((k) => z.object({ kind: z.literal(k), ino: u64, dev: u64 })),
  ...(["tty", "pty_master"] as const).map((k) => z.object({ kind: z.literal(k), ino: u64, ttyIndex: i32, controlling: z.boolean() })),
]);

/** 16 hex digits, as /proc/<pid>/status prints a capability set. */
const capabilitySet = z.string().regex(/^[0-9a-f]{16}$/);
const capabilities = z.object({ effective: capabilitySet, permitted: capabilitySet });

const exec = z.object({
  ...base,
  kind: z.literal("exec"),
  filename: z.string(),
  filenameTruncated: z.boolean(),
  args: z.array(z.string()),
  argsRaw: z.string(),
  argsTruncated: z.boolean(),
  loginUid: u32,
  stdio: z.tuple([stdioFd, stdioFd, stdioFd]).nullable().default(null),
  capabilities: capabilities.nullable().default(null),
  sid: u32.optional(),
});

const fork = z.object({ ...base, kind: z.literal("fork") });

const exit = z.object({ ...base, kind: z.literal("exit"), exitCode: i32 });

const outbound = z.object({
  ...base, kind: z.literal("outbound"), fd: i32, result: i32, socketIno: u64, family: z.enum(["inet", "inet6"]), transport: z.enum(["tcp", "udp"]).default("tcp"), local: endpoint, remote: endpoint,
  unconnected: z.literal(true).optional(),
});

const accept = z.object({
  ...base, kind: z.literal("accept"), fd: i32, socketIno: u64, family: z.enum(["inet", "inet6"]), local: endpoint, remote: endpoint,
});

const credIds = z.object({ uid: u32, euid: u32, suid: u32, gid: u32, egid: u32, sgid: u32 });
const credChange = z.object({
  ...base, kind: z.literal("cred_change"),
  syscall: z.enum(["setuid", "setreuid", "setresuid", "setgid", "setregid", "setresgid", "setsid"]),
  changed: z.object({ uid: z.boolean(), gid: z.boolean(), session: z.boolean() }),
  ids: credIds, oldIds: credIds, sid: u32.optional(),
  capabilities: capabilities.nullable().default(null),
});

const alreadyRunning = z.object({ ...base, kind: z.literal("already_running"), executable: z.string(), args: z.array(z.string()) });

// Input `unknown`: fields sockeye added later (socketIno, stdio, capabilities) get defaults in older captures.
export const sensorEventSchema: z.ZodType<SensorEvent, z.ZodTypeDef, unknown> = z.discriminatedUnion("kind", [
  connect,
  socketDup,
  exec,
  fork,
  exit,
  outbound,
  accept,
  credChange,
  alreadyRunning,
]);
