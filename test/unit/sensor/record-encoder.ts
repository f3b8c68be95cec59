/**
 * The test side's encoder: writes kernel events as bpf/sockeye_events.h lays them out, so a
 * decoded event can be encoded again and compared (decoder-fuzz.test.ts). Written from the
 * header, not from decode.ts: it shares only layout.ts (offsets and enum codes, which
 * layout.test.ts checks against the header) with the decoder.
 */
import type { CapabilitySets, Endpoint, SensorEvent, SocketType, StdioFd, TaskContext } from "../../../src/sensor/events.js";
import {
  COMM_LEN, ConnectSourceCode, CredChanged, CredSyscallCode, DupSyscallCode, EventKindCode, FdKindCode, LAYOUT, SocketOriginCode, STDIO_FDS, UNIX_PATH_LEN,
} from "../../../src/sensor/layout.js";

export type KernelEvent = Exclude<SensorEvent, { kind: "already_running" }>;

const H = LAYOUT.event_header;
const T = LAYOUT.task_context;
const P = LAYOUT.sock_endpoint;
const S = LAYOUT.stdio_fd;
const B = LAYOUT.stdio_brief;

const AF_UNIX = 1;
const AF_INET = 2;
const AF_INET6 = 10;
const SOCKET_TYPES: Record<SocketType, number> = { stream: 1, dgram: 2, raw: 3, seqpacket: 5, other: 0 };
const S_IFSOCK_TYPE = 0xc;
const RESULT_UNKNOWN = 0x7fffffff;

/** 16 address bytes of an IPv4 dotted quad or an IPv6 text (with `::` and a dotted tail). */
export function addressBytes(address: string): Buffer {
  const out = Buffer.alloc(16);
  if (!address.includes(":")) {
    address.split(".").forEach((part, i) => { out[i] = Number(part); });
    return out;
  }
  const words = (text: string): number[] => {
    if (text === "") return [];
    return text.split(":").flatMap((part) => {
      if (!part.includes(".")) return [parseInt(part, 16)];
      const [a, b, c, d] = part.split(".").map(Number) as [number, number, number, number];
      return [(a << 8) | b, (c << 8) | d];
    });
  };
  const [head, tail] = address.split("::") as [string, string | undefined];
  const front = words(head);
  const back = tail === undefined ? [] : words(tail);
  const all = [...front, ...new Array<number>(8 - front.length - back.length).fill(0), ...back];
  all.forEach((w, i) => out.writeUInt16BE(w, 2 * i));
  return out;
}

function writeEndpoint(b: Buffer, at: number, e: Endpoint | null): void {
  if (!e) return;
  addressBytes(e.address).copy(b, at + P.addr);
  b.writeUInt16LE(e.port, at + P.port);
}

function writeCString(b: Buffer, at: number, text: string, max: number): void {
  Buffer.from(text).copy(b, at, 0, max);
}

function writeTask(b: Buffer, at: number, t: TaskContext): void {
  b.writeUInt32LE(t.pid, at + T.pid);
  b.writeUInt32LE(t.tid, at + T.tid);
  b.writeUInt32LE(t.ppid, at + T.ppid);
  b.writeUInt32LE(t.uid, at + T.uid);
  b.writeUInt32LE(t.gid, at + T.gid);
  b.writeBigUInt64LE(BigInt(t.cgroupId), at + T.cgroup_id);
  b.writeBigUInt64LE(BigInt(t.startNs), at + T.start_ns);
  writeCString(b, at + T.comm, t.comm, COMM_LEN);
  writeCString(b, at + T.parent_comm, t.parentComm, COMM_LEN);
  b.writeUInt32LE(t.nsPid ?? 0, at + T.ns_pid);
  b.writeUInt32LE(t.pidNs ?? 0, at + T.pid_ns);
  b.writeUInt32LE(t.mntNs ?? 0, at + T.mnt_ns);
  b.writeUInt32LE(t.netNs ?? 0, at + T.net_ns);
}

/** struct stdio_brief holding socket `ino` on `fds`, and something else on the other stdio fds. */
function writeBrief(b: Buffer, at: number, ino: number, fds: number[]): void {
  for (let fd = 0; fd < STDIO_FDS; fd++) {
    const on = fds.includes(fd);
    b.writeUInt32LE(on ? ino : (ino + 1 + fd) >>> 0, at + B.ino + 4 * fd);
    b.writeUInt8(on ? S_IFSOCK_TYPE : 0x1, at + B.type + fd);
  }
}

/** Capability sets as the kernel writes them: two u64 and a caps_known byte (0 for null). */
function writeCapabilities(b: Buffer, at: number, knownAt: number, caps: CapabilitySets | null): void {
  if (caps === null) return;
  b.writeUInt8(1, knownAt);
  b.writeBigUInt64LE(BigInt(`0x${caps.effective}`), at + LAYOUT.cap_sets.effective);
  b.writeBigUInt64LE(BigInt(`0x${caps.permitted}`), at + LAYOUT.cap_sets.permitted);
}

function familyNumber(family: "inet" | "inet6"): number {
  return family === "inet6" ? AF_INET6 : AF_INET;
}

function writeStdioFd(b: Buffer, at: number, fd: StdioFd): void {
  b.writeUInt8(FdKindCode[fd.kind], at + S.kind);
  b.writeInt32LE(-1, at + S.tty_index);
  if (fd.kind === "closed") return;
  b.writeUInt32LE(fd.ino, at + S.ino);
  switch (fd.kind) {
    case "inet":
      b.writeUInt16LE(familyNumber(fd.family), at + S.family);
      b.writeUInt16LE(SOCKET_TYPES[fd.socketType], at + S.sock_type);
      b.writeUInt8(SocketOriginCode[fd.origin], at + S.origin);
      b.writeUInt8(fd.state, at + S.state);
      writeEndpoint(b, at + S.local, fd.local);
      writeEndpoint(b, at + S.remote, fd.remote);
      break;
    case "unix":
      b.writeUInt16LE(AF_UNIX, at + S.family);
      b.writeUInt16LE(SOCKET_TYPES[fd.socketType], at + S.sock_type);
      b.writeUInt32LE(fd.peerIno, at + S.peer_ino);
      break;
    case "socket":
      b.writeUInt16LE(fd.familyNumber, at + S.family);
      break;
    case "tty":
    case "pty_master":
      b.writeInt32LE(fd.ttyIndex, at + S.tty_index);
      b.writeUInt8(fd.controlling ? 1 : 0, at + S.flags);
      break;
    default:
      b.writeUInt32LE(fd.dev, at + S.dev);
  }
}

/** The record's bytes before padding: `slack` extra bytes past what its kind needs (the
 * header's size counts them), as a larger kernel record of the same kind would carry. */
export function encodeRecord(e: KernelEvent, slack = 0): Buffer {
  let b: Buffer;
  switch (e.kind) {
    case "connect": {
      const C = LAYOUT.connect_event;
      b = Buffer.alloc(C.sizeof + slack);
      b.writeInt32LE(e.fd, C.fd);
      b.writeInt32LE(e.result ?? RESULT_UNKNOWN, C.result);
      b.writeUInt16LE(e.familyNumber, C.family);
      b.writeUInt16LE(SOCKET_TYPES[e.socketType], C.sock_type);
      b.writeUInt16LE(e.protocol, C.protocol);
      b.writeUInt8(ConnectSourceCode[e.source], C.source);
      writeEndpoint(b, C.remote, e.remote);
      if (e.unixPath !== null) {
        const abstract = e.unixPath.startsWith("@");
        writeCString(b, C.unix_path + (abstract ? 1 : 0), abstract ? e.unixPath.slice(1) : e.unixPath, UNIX_PATH_LEN - 1);
      }
      b.writeUInt32LE(e.socketIno, C.sock_ino);
      writeBrief(b, C.stdio, e.socketIno, e.socketOnFds);
      break;
    }
    case "socket_dup": {
      const D = LAYOUT.socket_dup_event;
      b = Buffer.alloc(D.sizeof + slack);
      b.writeInt32LE(e.oldfd, D.oldfd);
      b.writeInt32LE(e.newfd, D.newfd);
      b.writeUInt16LE(DupSyscallCode[e.syscall], D.syscall);
      b.writeUInt16LE(e.familyNumber, D.family);
      b.writeUInt16LE(SOCKET_TYPES[e.socketType], D.sock_type);
      b.writeUInt16LE(e.protocol, D.protocol);
      b.writeUInt8(SocketOriginCode[e.origin], D.origin);
      b.writeUInt8(e.state, D.state);
      b.writeUInt32LE(e.socketIno, D.sock_ino);
      writeEndpoint(b, D.local, e.local);
      writeEndpoint(b, D.remote, e.remote);
      writeBrief(b, D.stdio, e.socketIno, e.socketOnFds);
      break;
    }
    case "exec": {
      const X = LAYOUT.exec_event;
      const filename = Buffer.from(e.filename);
      const args = Buffer.from(e.argsRaw, "base64");
      b = Buffer.alloc(X.data + filename.length + args.length + slack);
      b.writeUInt16LE(filename.length, X.filename_len);
      b.writeUInt16LE(args.length, X.args_len);
      b.writeUInt8(e.filenameTruncated ? 1 : 0, X.filename_truncated);
      b.writeUInt8(e.argsTruncated ? 1 : 0, X.args_truncated);
      b.writeUInt32LE(e.loginUid, X.loginuid);
      if (e.sid !== undefined) {
        b.writeUInt8(1, X.sid_known);
        b.writeUInt32LE(e.sid, X.sid);
      }
      writeCapabilities(b, X.caps, X.caps_known, e.capabilities);
      (e.stdio ?? []).forEach((fd, i) => writeStdioFd(b, X.stdio + i * S.sizeof, fd));
      filename.copy(b, X.data);
      args.copy(b, X.data + filename.length);
      break;
    }
    case "fork":
      b = Buffer.alloc(LAYOUT.fork_event.sizeof + slack);
      break;
    case "exit":
      b = Buffer.alloc(LAYOUT.exit_event.sizeof + slack);
      b.writeInt32LE(e.exitCode, LAYOUT.exit_event.exit_code);
      break;
    case "outbound": {
      const O = LAYOUT.outbound_event;
      b = Buffer.alloc(O.sizeof + slack);
      b.writeInt32LE(e.fd, O.fd);
      b.writeInt32LE(e.result, O.result);
      b.writeUInt32LE(e.socketIno, O.sock_ino);
      b.writeUInt16LE(familyNumber(e.family), O.family);
      b.writeUInt8(e.transport === "udp" ? 17 : 6, O.protocol);
      // TCP_CLOSE marks a UDP socket's first unconnected send; TCP_ESTABLISHED a connect.
      b.writeUInt8(e.unconnected === true ? 7 : 1, O.state);
      writeEndpoint(b, O.local, e.local);
      writeEndpoint(b, O.remote, e.remote);
      break;
    }
    case "accept": {
      const A = LAYOUT.accept_event;
      b = Buffer.alloc(A.sizeof + slack);
      b.writeInt32LE(e.fd, A.fd);
      b.writeUInt32LE(e.socketIno, A.sock_ino);
      b.writeUInt16LE(familyNumber(e.family), A.family);
      writeEndpoint(b, A.local, e.local);
      writeEndpoint(b, A.remote, e.remote);
      break;
    }
    case "cred_change": {
      const K = LAYOUT.cred_change_event;
      b = Buffer.alloc(K.sizeof + slack);
      b.writeUInt16LE(CredSyscallCode[e.syscall], K.syscall);
      b.writeUInt8((e.changed.uid ? CredChanged.uid : 0) | (e.changed.gid ? CredChanged.gid : 0) | (e.changed.session ? CredChanged.session : 0), K.changed);
      b.writeUInt32LE(e.sid ?? 0, K.sid);
      b.writeUInt32LE(e.ids.euid, K.euid);
      b.writeUInt32LE(e.ids.suid, K.suid);
      b.writeUInt32LE(e.ids.egid, K.egid);
      b.writeUInt32LE(e.ids.sgid, K.sgid);
      b.writeUInt32LE(e.oldIds.uid, K.old_uid);
      b.writeUInt32LE(e.oldIds.euid, K.old_euid);
      b.writeUInt32LE(e.oldIds.suid, K.old_suid);
      b.writeUInt32LE(e.oldIds.gid, K.old_gid);
      b.writeUInt32LE(e.oldIds.egid, K.old_egid);
      b.writeUInt32LE(e.oldIds.sgid, K.old_sgid);
      writeCapabilities(b, K.caps, K.caps_known, e.capabilities);
      break;
    }
  }
  b.writeUInt16LE(EventKindCode[e.kind], H.kind);
  b.writeUInt16LE(b.length, H.size);
  b.writeBigUInt64LE(BigInt(e.timeNs), H.time_ns);
  writeTask(b, LAYOUT.connect_event.task, e.task);
  return b;
}

/** Records back to back, each padded to 8 bytes as the addon's batch holds them. */
export function batchOf(records: Buffer[]): ArrayBuffer {
  const padded = Buffer.concat(records.map((r) => Buffer.concat([r, Buffer.alloc(((r.length + 7) & ~7) - r.length)])));
  return padded.buffer.slice(padded.byteOffset, padded.byteOffset + padded.length);
}
