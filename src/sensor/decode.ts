/**
 * Batch decoding: one ArrayBuffer from the addon holds many records back to back (each
 * padded to 8 bytes, each starting with event_header). A DataView walks it once; nothing
 * here calls back into native code.
 */
import type {
  AddressFamily, CapabilitySets, ConnectSource, CredChangeEvent, CredIds, CredSyscall, DupSyscall, Endpoint, ExecEvent, SensorEvent, SocketOrigin, SocketType, StdioFd, TaskContext,
} from "./events.js";
import { assertInternal } from "../errors.js";
import {
  COMM_LEN, ConnectSourceCode, CredChanged, CredSyscallCode, DupSyscallCode, EventKindCode, FdKindCode, LAYOUT, SocketOriginCode, STDIO_FDS, UNIX_PATH_LEN,
} from "./layout.js";

export type DecodeDropReason = "truncated_record" | "bad_record_size" | "unknown_kind";

export interface DecodedBatch {
  events: SensorEvent[];
  dropped: Partial<Record<DecodeDropReason, number>>;
}

const utf8 = new TextDecoder("utf-8", { fatal: false });
const H = LAYOUT.event_header;
const T = LAYOUT.task_context;
const C = LAYOUT.connect_event;
const D = LAYOUT.socket_dup_event;
const X = LAYOUT.exec_event;
const E = LAYOUT.exit_event;
const O = LAYOUT.outbound_event;
const K = LAYOUT.cred_change_event;
const A = LAYOUT.accept_event;
/** outbound_event.protocol of a connected UDP socket (else IPPROTO_TCP). */
const IPPROTO_UDP = 17;
/** outbound_event.state of a UDP socket that was never connected (TCP_CLOSE): its first send made the record (bpf/relay.bpf.c). */
const TCP_CLOSE = 7;
const P = LAYOUT.sock_endpoint;
const S = LAYOUT.stdio_fd;
const B = LAYOUT.stdio_brief;
/** S_IFSOCK >> 12, as struct stdio_brief stores file types. */
const BRIEF_SOCKET = 0xc;

/** The stdio fds holding socket `ino` in a struct stdio_brief at `at`. */
function socketOnFds(view: DataView, at: number, ino: number): number[] {
  const fds: number[] = [];
  if (ino === 0) return fds;
  for (let fd = 0; fd < STDIO_FDS; fd++) {
    if (view.getUint8(at + B.type + fd) === BRIEF_SOCKET && view.getUint32(at + B.ino + 4 * fd, true) === ino) fds.push(fd);
  }
  return fds;
}

const RESULT_UNKNOWN = 0x7fffffff;

function family(n: number): AddressFamily {
  return n === 2 ? "inet" : n === 10 ? "inet6" : n === 1 ? "unix" : "other";
}

function socketType(n: number): SocketType {
  // The kernel keeps SOCK_NONBLOCK/CLOEXEC out of socket->type; mask anyway for safety.
  switch (n & 0xf) {
    case 1: return "stream";
    case 2: return "dgram";
    case 3: return "raw";
    case 5: return "seqpacket";
    default: return "other";
  }
}

/** A layout.ts code table turned around: code → name. */
function byCode<N extends string>(codes: Record<N, number>): Record<number, N> {
  return Object.fromEntries(Object.entries(codes).map(([name, code]) => [code, name])) as Record<number, N>;
}

const CONNECT_SOURCES: Record<number, ConnectSource> = byCode(ConnectSourceCode);
const DUP_SYSCALLS: Record<number, DupSyscall> = byCode(DupSyscallCode);
const ORIGINS: Record<number, SocketOrigin> = byCode(SocketOriginCode);
const CRED_SYSCALLS: Record<number, CredSyscall> = byCode(CredSyscallCode);

/** Six u32 ids at `at`, in the order real/effective/saved uid, then gid, per `offsets`. */
function credIds(view: DataView, at: number, uid: number, gid: number, offsets: readonly number[]): CredIds {
  return {
    uid, euid: view.getUint32(at + offsets[0]!, true), suid: view.getUint32(at + offsets[1]!, true),
    gid, egid: view.getUint32(at + offsets[2]!, true), sgid: view.getUint32(at + offsets[3]!, true),
  };
}
const CS = LAYOUT.cap_sets;

/** The last capability set turned into text: most execs repeat root's full set or an empty one. */
let lastCapLow = 0;
let lastCapHigh = 0;
let lastCapText = "0000000000000000";

/** A u64 capability set at `at` as /proc/<pid>/status prints it: 16 hex digits. */
function capabilitySet(view: DataView, at: number): string {
  const low = view.getUint32(at, true);
  const high = view.getUint32(at + 4, true);
  if (low !== lastCapLow || high !== lastCapHigh) {
    lastCapLow = low;
    lastCapHigh = high;
    lastCapText = high.toString(16).padStart(8, "0") + low.toString(16).padStart(8, "0");
  }
  return lastCapText;
}

/** The cap_sets at `at` of a record whose caps_known byte is at `knownAt`; null when the kernel could not read them. */
function capabilities(view: DataView, at: number, knownAt: number): CapabilitySets | null {
  if (view.getUint8(knownAt) === 0) return null;
  return { effective: capabilitySet(view, at + CS.effective), permitted: capabilitySet(view, at + CS.permitted) };
}

const NEW_ID_OFFSETS = [K.euid, K.suid, K.egid, K.sgid] as const;
const OLD_ID_OFFSETS = [K.old_euid, K.old_suid, K.old_egid, K.old_sgid] as const;

/**
 * Short names (comm, parent comm) repeat from record to record: the same few process names
 * make almost every record. Each distinct one is built once and kept, keyed by a hash of its
 * bytes and checked byte by byte on a hit, so a record's names cost a scan and a Map lookup
 * instead of a string built character by character.
 */
const NAME_CACHE_MAX = 4096;
const nameCache = new Map<number, string>();

function cString(bytes: Uint8Array, offset: number, max: number): string {
  let end = offset;
  let ascii = true;
  let hash = 0x811c9dc5;
  while (end < offset + max && bytes[end] !== 0) {
    const b = bytes[end]!;
    if (b >= 0x80) ascii = false;
    hash = Math.imul(hash ^ b, 0x01000193);
    end++;
  }
  const length = end - offset;
  if (!ascii || length > 32) return utf8.decode(bytes.subarray(offset, end));
  const key = (hash ^ length) >>> 0;
  const cached = nameCache.get(key);
  if (cached !== undefined && cached.length === length) {
    let same = true;
    for (let i = 0; i < length; i++) {
      if (cached.charCodeAt(i) !== bytes[offset + i]) { same = false; break; }
    }
    if (same) return cached;
  }
  // ASCII: one flat string from the bytes, without a call into TextDecoder.
  const text = String.fromCharCode.apply(null, bytes.subarray(offset, end) as unknown as number[]);
  if (nameCache.size >= NAME_CACHE_MAX) nameCache.clear();
  nameCache.set(key, text);
  return text;
}

/** RFC 5952 text of a 16-byte IPv6 address; v4-mapped addresses keep their dotted tail. */
export function formatIPv6(b: Uint8Array): string {
  const words: number[] = [];
  for (let i = 0; i < 16; i += 2) words.push((b[i]! << 8) | b[i + 1]!);
  if (words.slice(0, 5).every((w) => w === 0) && words[5] === 0xffff) {
    return `::ffff:${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  }
  let bestStart = -1, bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) { bestStart = i; bestLen = j - i; }
    i = j;
  }
  const hex = words.map((w) => w.toString(16));
  if (bestStart < 0) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLen).join(":")}`;
}

/** Dotted IPv4 text per address, built once: a host talks to few addresses. */
const IPV4_CACHE_MAX = 4096;
const ipv4Cache = new Map<number, string>();

function ipv4(view: DataView, at: number): string {
  const key = view.getUint32(at, false);
  let text = ipv4Cache.get(key);
  if (text === undefined) {
    text = `${key >>> 24}.${(key >>> 16) & 0xff}.${(key >>> 8) & 0xff}.${key & 0xff}`;
    if (ipv4Cache.size >= IPV4_CACHE_MAX) ipv4Cache.clear();
    ipv4Cache.set(key, text);
  }
  return text;
}

function endpoint(bytes: Uint8Array, view: DataView, at: number, fam: AddressFamily): Endpoint | null {
  const port = view.getUint16(at + P.port, true);
  if (fam === "inet") return { address: ipv4(view, at), port };
  if (fam === "inet6") return { address: formatIPv6(bytes.subarray(at, at + 16)), port };
  return null;
}

/** A u64 as a Number without a BigInt: exact below 2^53, rounded like Number(bigint) above. */
function u64(view: DataView, at: number): number {
  return view.getUint32(at + 4, true) * 0x1_0000_0000 + view.getUint32(at, true);
}

function task(bytes: Uint8Array, view: DataView, at: number): TaskContext {
  const context: TaskContext = {
    pid: view.getUint32(at + T.pid, true),
    tid: view.getUint32(at + T.tid, true),
    ppid: view.getUint32(at + T.ppid, true),
    uid: view.getUint32(at + T.uid, true),
    gid: view.getUint32(at + T.gid, true),
    cgroupId: u64(view, at + T.cgroup_id),
    startNs: u64(view, at + T.start_ns),
    comm: cString(bytes, at + T.comm, COMM_LEN),
    parentComm: cString(bytes, at + T.parent_comm, COMM_LEN),
  };
  // 0 is "not known" (a task past exit_task_namespaces): left out, as a capture of before has them.
  const nsPid = view.getUint32(at + T.ns_pid, true);
  const pidNs = view.getUint32(at + T.pid_ns, true);
  const mntNs = view.getUint32(at + T.mnt_ns, true);
  const netNs = view.getUint32(at + T.net_ns, true);
  if (nsPid !== 0) context.nsPid = nsPid;
  if (pidNs !== 0) context.pidNs = pidNs;
  if (mntNs !== 0) context.mntNs = mntNs;
  if (netNs !== 0) context.netNs = netNs;
  return context;
}

const FD_KINDS: Record<number, StdioFd["kind"]> = byCode(FdKindCode);
const FD_CTTY = 0x1;
assertInternal(STDIO_FDS === 3, "decode.ts reads exactly three stdio fds");

function stdioFd(bytes: Uint8Array, view: DataView, at: number): StdioFd {
  const kind = FD_KINDS[view.getUint8(at + S.kind)] ?? "other";
  const ino = view.getUint32(at + S.ino, true);
  switch (kind) {
    case "closed":
      return { kind };
    case "inet": {
      const fam = family(view.getUint16(at + S.family, true)) === "inet6" ? "inet6" : "inet";
      return {
        kind, ino, family: fam,
        socketType: socketType(view.getUint16(at + S.sock_type, true)),
        origin: ORIGINS[view.getUint8(at + S.origin)] ?? "unknown",
        state: view.getUint8(at + S.state),
        local: endpoint(bytes, view, at + S.local, fam)!,
        remote: endpoint(bytes, view, at + S.remote, fam)!,
      };
    }
    case "unix":
      return { kind, ino, socketType: socketType(view.getUint16(at + S.sock_type, true)), peerIno: view.getUint32(at + S.peer_ino, true) };
    case "socket":
      return { kind, ino, familyNumber: view.getUint16(at + S.family, true) };
    case "tty":
    case "pty_master":
      return { kind, ino, ttyIndex: view.getInt32(at + S.tty_index, true), controlling: (view.getUint8(at + S.flags) & FD_CTTY) !== 0 };
    default:
      return { kind, ino, dev: view.getUint32(at + S.dev, true) };
  }
}

/**
 * argv kept per exec event, in bytes, where each element costs its length plus
 * ARG_OVERHEAD_BYTES (about what V8 spends on a short string's header, padding and array
 * slot): memory per event stays bounded
 * by bytes whatever shape an attacker gives argv (4,095 one-byte arguments would otherwise
 * cost far more than their 8 KiB). Past it, args stop and argsTruncated is set; argsRaw keeps
 * every byte the kernel read. Ordinary command lines (the kernel keeps at most 8 KiB) fit.
 */
export const ARGV_KEPT_BYTES = 16 * 1024;
export const ARG_OVERHEAD_BYTES = 32;

/** More elements than ARGV_KEPT_BYTES can hold at ARG_OVERHEAD_BYTES each: splitting stops there. */
const ARGS_SPLIT_LIMIT = Math.floor(ARGV_KEPT_BYTES / ARG_OVERHEAD_BYTES) + 1;

/**
 * argv as the kernel copied it: NUL-terminated elements, the last possibly cut short. One
 * UTF-8 decode of the whole (a NUL never sits inside a UTF-8 sequence, so invalid bytes
 * become U+FFFD exactly as element by element) and one split that stops after
 * ARGS_SPLIT_LIMIT elements: cost linear in the bytes, with a bounded number of strings made.
 */
export function splitArgs(raw: Uint8Array): { args: string[]; cut: boolean } {
  if (raw.length === 0) return { args: [], cut: false };
  const text = utf8.decode(raw);
  // The last element's NUL ends it; split on what is between NULs.
  const parts = (raw[raw.length - 1] === 0 ? text.slice(0, -1) : text).split("\0", ARGS_SPLIT_LIMIT);
  let budget = ARGV_KEPT_BYTES;
  for (let kept = 0; kept < parts.length; kept++) {
    budget -= parts[kept]!.length + ARG_OVERHEAD_BYTES;
    if (budget < 0) return { args: parts.slice(0, kept), cut: true };
  }
  return { args: parts, cut: false };
}

const MIN_SIZE: Record<number, number> = {
  [EventKindCode.connect]: C.sizeof,
  [EventKindCode.socket_dup]: D.sizeof,
  [EventKindCode.exec]: X.data,
  [EventKindCode.fork]: LAYOUT.fork_event.sizeof,
  [EventKindCode.exit]: E.sizeof,
  [EventKindCode.outbound]: O.sizeof,
  [EventKindCode.cred_change]: K.sizeof,
  [EventKindCode.accept]: A.sizeof,
};

/**
 * Decodes one batch. `clockOffsetNs` turns CLOCK_MONOTONIC into wall-clock ns.
 * A record that does not fit is counted and ends the batch (its size cannot be trusted);
 * an unknown kind is counted and skipped by its size.
 */
export function decodeBatch(buffer: ArrayBuffer, clockOffsetNs: number, limit = buffer.byteLength): DecodedBatch {
  const view = new DataView(buffer, 0, limit);
  const bytes = new Uint8Array(buffer, 0, limit);
  const events: SensorEvent[] = [];
  const dropped: DecodedBatch["dropped"] = {};
  const drop = (r: DecodeDropReason) => { dropped[r] = (dropped[r] ?? 0) + 1; };

  let at = 0;
  while (at < limit) {
    if (limit - at < H.sizeof) { drop("truncated_record"); break; }
    const kind = view.getUint16(at + H.kind, true);
    const size = view.getUint16(at + H.size, true);
    if (size < H.sizeof) { drop("bad_record_size"); break; }
    if (at + size > limit) { drop("truncated_record"); break; }
    const min = MIN_SIZE[kind];
    if (min === undefined) { drop("unknown_kind"); at += (size + 7) & ~7; continue; }
    if (size < min) { drop("bad_record_size"); break; }

    const timeNs = u64(view, at + H.time_ns);
    const timeMs = (timeNs + clockOffsetNs) / 1e6;
    const t = task(bytes, view, at + LAYOUT.connect_event.task);
    // The common fields are written out in each literal below, not spread from one object:
    // V8 (Node 20) copies `{ ...base, kind }` on a slow runtime path, about 1.5 µs per event,
    // most of a record's decoding time when measured.

    switch (kind) {
      case EventKindCode.connect: {
        const famNum = view.getUint16(at + C.family, true);
        const fam = family(famNum);
        const result = view.getInt32(at + C.result, true);
        let unixPath: string | null = null;
        if (fam === "unix") {
          const p = at + C.unix_path;
          // Abstract socket names start with a NUL byte; show them the way ss does.
          unixPath = bytes[p] === 0 ? "@" + cString(bytes, p + 1, UNIX_PATH_LEN - 1) : cString(bytes, p, UNIX_PATH_LEN);
        }
        events.push({
          timeNs, timeMs, task: t, kind: "connect",
          fd: view.getInt32(at + C.fd, true),
          result: result === RESULT_UNKNOWN ? null : result,
          family: fam, familyNumber: famNum,
          socketType: socketType(view.getUint16(at + C.sock_type, true)),
          protocol: view.getUint16(at + C.protocol, true),
          source: CONNECT_SOURCES[view.getUint8(at + C.source)] ?? "tracepoint",
          remote: endpoint(bytes, view, at + C.remote, fam),
          unixPath,
          socketIno: view.getUint32(at + C.sock_ino, true),
          socketOnFds: socketOnFds(view, at + C.stdio, view.getUint32(at + C.sock_ino, true)),
        });
        break;
      }
      case EventKindCode.socket_dup: {
        const famNum = view.getUint16(at + D.family, true);
        const fam = family(famNum);
        events.push({
          timeNs, timeMs, task: t, kind: "socket_dup",
          syscall: DUP_SYSCALLS[view.getUint16(at + D.syscall, true)] ?? "dup",
          oldfd: view.getInt32(at + D.oldfd, true),
          newfd: view.getInt32(at + D.newfd, true),
          family: fam, familyNumber: famNum,
          socketType: socketType(view.getUint16(at + D.sock_type, true)),
          protocol: view.getUint16(at + D.protocol, true),
          origin: ORIGINS[view.getUint8(at + D.origin)] ?? "unknown",
          state: view.getUint8(at + D.state),
          local: endpoint(bytes, view, at + D.local, fam),
          remote: endpoint(bytes, view, at + D.remote, fam),
          socketIno: view.getUint32(at + D.sock_ino, true),
          socketOnFds: socketOnFds(view, at + D.stdio, view.getUint32(at + D.sock_ino, true)),
        });
        break;
      }
      case EventKindCode.exec: {
        const fnLen = view.getUint16(at + X.filename_len, true);
        const argsLen = view.getUint16(at + X.args_len, true);
        if (X.data + fnLen + argsLen > size) { drop("bad_record_size"); at = limit; break; }
        const data = at + X.data;
        const raw = bytes.subarray(data + fnLen, data + fnLen + argsLen);
        const { args, cut } = splitArgs(raw);
        const exec: ExecEvent = {
          timeNs, timeMs, task: t, kind: "exec",
          filename: utf8.decode(bytes.subarray(data, data + fnLen)),
          filenameTruncated: view.getUint8(at + X.filename_truncated) !== 0,
          args,
          argsRaw: Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString("base64"),
          argsTruncated: cut || view.getUint8(at + X.args_truncated) !== 0,
          loginUid: view.getUint32(at + X.loginuid, true),
          stdio: [stdioFd(bytes, view, at + X.stdio), stdioFd(bytes, view, at + X.stdio + S.sizeof), stdioFd(bytes, view, at + X.stdio + 2 * S.sizeof)],
          capabilities: capabilities(view, at + X.caps, at + X.caps_known),
        };
        // Records of sensors older than the field leave it out (unknown, not session 0).
        if (view.getUint8(at + X.sid_known) !== 0) exec.sid = view.getUint32(at + X.sid, true);
        events.push(exec);
        break;
      }
      case EventKindCode.fork:
        events.push({ timeNs, timeMs, task: t, kind: "fork" });
        break;
      case EventKindCode.exit:
        events.push({ timeNs, timeMs, task: t, kind: "exit", exitCode: view.getInt32(at + E.exit_code, true) });
        break;
      case EventKindCode.outbound: {
        const fam = family(view.getUint16(at + O.family, true)) === "inet6" ? "inet6" : "inet";
        const udp = view.getUint8(at + O.protocol) === IPPROTO_UDP;
        events.push({
          timeNs, timeMs, task: t, kind: "outbound",
          fd: view.getInt32(at + O.fd, true),
          result: view.getInt32(at + O.result, true),
          socketIno: view.getUint32(at + O.sock_ino, true),
          family: fam,
          transport: udp ? "udp" : "tcp",
          local: endpoint(bytes, view, at + O.local, fam)!,
          remote: endpoint(bytes, view, at + O.remote, fam)!,
          ...(udp && view.getUint8(at + O.state) === TCP_CLOSE ? { unconnected: true as const } : {}),
        });
        break;
      }
      case EventKindCode.accept: {
        const fam = family(view.getUint16(at + A.family, true)) === "inet6" ? "inet6" : "inet";
        events.push({
          timeNs, timeMs, task: t, kind: "accept",
          fd: view.getInt32(at + A.fd, true),
          socketIno: view.getUint32(at + A.sock_ino, true),
          family: fam,
          local: endpoint(bytes, view, at + A.local, fam)!,
          remote: endpoint(bytes, view, at + A.remote, fam)!,
        });
        break;
      }
      case EventKindCode.cred_change: {
        const changed = view.getUint8(at + K.changed);
        const syscall = CRED_SYSCALLS[view.getUint16(at + K.syscall, true)] ?? "setuid";
        const sid = view.getUint32(at + K.sid, true);
        const ev: CredChangeEvent = {
          timeNs, timeMs, task: t, kind: "cred_change", syscall,
          changed: { uid: (changed & CredChanged.uid) !== 0, gid: (changed & CredChanged.gid) !== 0, session: (changed & CredChanged.session) !== 0 },
          ids: credIds(view, at, t.uid, t.gid, NEW_ID_OFFSETS),
          oldIds: credIds(view, at, view.getUint32(at + K.old_uid, true), view.getUint32(at + K.old_gid, true), OLD_ID_OFFSETS),
          capabilities: capabilities(view, at + K.caps, at + K.caps_known),
        };
        if (sid !== 0) ev.sid = sid;
        events.push(ev);
        break;
      }
    }
    at += (size + 7) & ~7;
  }
  return { events, dropped };
}

/** ns to add to a CLOCK_MONOTONIC stamp to get wall-clock ns (hrtime is CLOCK_MONOTONIC). */
export function monotonicToWallOffsetNs(): number {
  return Date.now() * 1e6 - Number(process.hrtime.bigint());
}
