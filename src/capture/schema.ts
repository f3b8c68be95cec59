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

const int = z.number().int();

const task = z.object({
  pid: int,
  tid: int,
  ppid: int,
  uid: int,
  gid: int,
  cgroupId: z.number().nonnegative(),
  startNs: z.number().nonnegative(),
  comm: z.string(),
  parentComm: z.string(),
});

const base = {
  timeNs: z.number().nonnegative(),
  timeMs: z.number().nonnegative(),
  task,
};

const endpoint = z.object({ address: z.string(), port: int.min(0).max(65535) });
const family = z.enum(["inet", "inet6", "unix", "other"]);
const socketType = z.enum(["stream", "dgram", "raw", "seqpacket", "other"]);
const origin = z.enum(["unknown", "accepted", "connected"]);

const connect = z.object({
  ...base,
  kind: z.literal("connect"),
  fd: int,
  result: int.nullable(),
  family,
  familyNumber: int,
  socketType,
  protocol: int,
  source: z.enum(["lsm", "fentry", "tracepoint"]),
  remote: endpoint.nullable(),
  unixPath: z.string().nullable(),
  socketIno: int.nonnegative().default(0),
  socketOnFds: z.array(int).default([]),
});

const socketDup = z.object({
  ...base,
  kind: z.literal("socket_dup"),
  syscall: z.enum(["dup", "dup2", "dup3", "fcntl"]),
  oldfd: int,
  newfd: int,
  family,
  familyNumber: int,
  socketType,
  protocol: int,
  origin,
  state: int,
  local: endpoint.nullable(),
  remote: endpoint.nullable(),
  socketIno: int.nonnegative().default(0),
  socketOnFds: z.array(int).default([]),
});

const stdioFd = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("closed") }),
  z.object({
    kind: z.literal("inet"), ino: int, family: z.enum(["inet", "inet6"]), socketType, origin, state: int, local: endpoint, remote: endpoint,
  }),
  z.object({ kind: z.literal("unix"), ino: int, socketType, peerIno: int }),
  z.object({ kind: z.literal("socket"), ino: int, familyNumber: int }),
  ...(["pipe", "fifo", "file", "chardev", "other"] as const).map((k) => z.object({ kind: z.literal(k), ino: int, dev: int })),
  ...(["tty", "pty_master"] as const).map((k) => z.object({ kind: z.literal(k), ino: int, ttyIndex: int, controlling: z.boolean() })),
]);

const exec = z.object({
  ...base,
  kind: z.literal("exec"),
  filename: z.string(),
  filenameTruncated: z.boolean(),
  args: z.array(z.string()),
  argsRaw: z.string(),
  argsTruncated: z.boolean(),
  loginUid: int,
  stdio: z.tuple([stdioFd, stdioFd, stdioFd]).nullable().default(null),
});

const fork = z.object({ ...base, kind: z.literal("fork") });

const exit = z.object({ ...base, kind: z.literal("exit"), exitCode: int });

const outbound = z.object({
  ...base, kind: z.literal("outbound"), fd: int, result: int, socketIno: int, family: z.enum(["inet", "inet6"]), local: endpoint, remote: endpoint,
});

const alreadyRunning = z.object({ ...base, kind: z.literal("already_running"), executable: z.string(), args: z.array(z.string()) });

// Input `unknown`: fields sockeye added later (socketIno, stdio) get defaults in older captures.
export const sensorEventSchema: z.ZodType<SensorEvent, z.ZodTypeDef, unknown> = z.discriminatedUnion("kind", [
  connect,
  socketDup,
  exec,
  fork,
  exit,
  outbound,
  alreadyRunning,
]);
