/**
 * The typed event stream: one interface per kind, a discriminated union on `kind`.
 *
 * These are what the decoder (decode.ts) makes of the kernel's records
 * (bpf/sockeye_events.h), the process table's already_running events from /proc at start,
 * and what recorded captures hold, one JSON object per line.
 * Every field is plain JSON (numbers, strings, arrays), so a capture round-trips.
 */

/** Who did it, captured in the kernel at the moment of the event. */
export interface TaskContext {
  /** Thread group id (what ps calls the pid). */
  pid: number;
  tid: number;
  /** Real parent's pid. */
  ppid: number;
  uid: number;
  gid: number;
  cgroupId: number;
  /** Process start, ns since boot (task->start_boottime): tells a reused pid apart. */
  startNs: number;
  comm: string;
  parentComm: string;
  /** The pid inside its own pid namespace (a container's view); absent when not known. */
  nsPid?: number;
  /** Namespace inode numbers, as /proc/<pid>/ns/* name them; absent when not known. */
  pidNs?: number;
  mntNs?: number;
  netNs?: number;
}

export interface EventBase {
  /** CLOCK_MONOTONIC ns when the kernel saw it (bpf_ktime_get_ns). */
  timeNs: number;
  /** Wall-clock time in ms since the epoch, derived from timeNs. */
  timeMs: number;
  task: TaskContext;
}

/** IPv4 as dotted quad, IPv6 in RFC 5952 form (v4-mapped stays "::ffff:a.b.c.d"). */
export interface Endpoint {
  address: string;
  port: number;
}

export type AddressFamily = "inet" | "inet6" | "unix" | "other";
export type SocketType = "stream" | "dgram" | "raw" | "seqpacket" | "other";

export type ConnectSource = "lsm" | "fentry" | "tracepoint";

export interface ConnectEvent extends EventBase {
  kind: "connect";
  /** connect(2)'s fd; -1 when the hook fired outside connect(2), e.g. io_uring. */
  fd: number;
  /** 0 or -errno; null where the hook runs before the result is known. */
  result: number | null;
  family: AddressFamily;
  /** The raw AF_* number, kept for families we do not name. */
  familyNumber: number;
  socketType: SocketType;
  protocol: number;
  source: ConnectSource;
  /** Remote endpoint for inet/inet6; null otherwise. */
  remote: Endpoint | null;
  /** AF_UNIX path (abstract names start with "@"); null otherwise. */
  unixPath: string | null;
  /** The socket's inode number (its identity across processes and dups); 0 when unknown. */
  socketIno: number;
  /**
   * Which of fds 0, 1, 2 hold this same socket right after the call (a shell's `>&` onto
   * stdout and stderr, then `0>&1`, ends with all three). Empty when the socket is unknown.
   */
  socketOnFds: number[];
}

export type DupSyscall = "dup" | "dup2" | "dup3" | "fcntl";
/**
 * How a socket came to be, as the kernel saw it: accepted (returned by accept while the sensor
 * ran), connected (has a peer and did not come from a listener), passive (came from a listener
 * but its accept mark is gone: evicted by an accept flood, or accepted before the sensor; a
 * consumer confirms a listener before treating it as inbound, docs/design.md), or unknown.
 */
export type SocketOrigin = "unknown" | "accepted" | "connected" | "passive";

export interface SocketDupEvent extends EventBase {
  kind: "socket_dup";
  syscall: DupSyscall;
  oldfd: number;
  newfd: number;
  family: AddressFamily;
  familyNumber: number;
  socketType: SocketType;
  protocol: number;
  /** accepted = inbound (returned by accept while the sensor ran); see SocketOrigin. */
  origin: SocketOrigin;
  /** Kernel sk_state (1 = TCP_ESTABLISHED). */
  state: number;
  /** Endpoints for inet/inet6 sockets; null for other families. */
  local: Endpoint | null;
  remote: Endpoint | null;
  /** The socket's inode number (its identity across processes and dups); 0 when unknown. */
  socketIno: number;
  /**
   * Which of fds 0, 1, 2 hold this same socket right after the call (a shell's `>&` onto
   * stdout and stderr, then `0>&1`, ends with all three). Empty when the socket is unknown.
   */
  socketOnFds: number[];
}

/**
 * One of fds 0, 1, 2 as a new program starts with it (after close-on-exec). `ino` (and a
 * unix socket's `peerIno`, a terminal's `ttyIndex`) join records: both ends of a pipe share
 * an inode, socketpair ends name each other, a pty's master and slave share an index.
 */
export type StdioFd =
  | { kind: "closed" }
  | {
      kind: "inet";
      ino: number;
      family: "inet" | "inet6";
      socketType: SocketType;
      origin: SocketOrigin;
      /** Kernel sk_state (1 = TCP_ESTABLISHED, 10 = TCP_LISTEN). */
      state: number;
      local: Endpoint;
      remote: Endpoint;
    }
  | { kind: "unix"; ino: number; socketType: SocketType; /** 0 when unconnected. */ peerIno: number }
  | { kind: "socket"; ino: number; familyNumber: number }
  | { kind: "pipe" | "fifo" | "file" | "chardev" | "other"; ino: number; dev: number }
  | { kind: "tty" | "pty_master"; ino: number; ttyIndex: number; /** The process's controlling tty. */ controlling: boolean };

export type StdioFdKind = StdioFd["kind"];

/**
 * A process's effective and permitted capability sets as /proc/<pid>/status prints them
 * (CapEff, CapPrm): 16 hex digits, bit n set when it holds capability n (linux/capability.h).
 */
export interface CapabilitySets {
  effective: string;
  permitted: string;
}

export interface ExecEvent extends EventBase {
  kind: "exec";
  /** The path handed to execve, as given (may be relative). */
  filename: string;
  filenameTruncated: boolean;
  /** argv, each element decoded as UTF-8 (invalid bytes become U+FFFD); at most ARGV_KEPT_BYTES' worth (decode.ts). */
  args: string[];
  /** argv exactly as the kernel read it: elements NUL-terminated, base64. */
  argsRaw: string;
  /** The kernel kept only part of argv (8 KiB), or args stops short of argsRaw (ARGV_KEPT_BYTES). */
  argsTruncated: boolean;
  /** audit login uid; 4294967295 when unset. */
  loginUid: number;
  /** fds 0, 1 and 2 as the program starts with them; null in captures made before sockeye recorded them. */
  stdio: [StdioFd, StdioFd, StdioFd] | null;
  /** The new program's capabilities; null when not known (a failed read, an older capture). */
  capabilities: CapabilitySets | null;
  /**
   * The session id at the exec (its leader's pid; 0 for init's own session); absent when not
   * known (an older capture, an event made by hand).
   */
  sid?: number;
}

export interface ForkEvent extends EventBase {
  kind: "fork";
  /** task is the new child; task.ppid is the parent. */
}

export interface ExitEvent extends EventBase {
  kind: "exit";
  /** As wait(2) reports it: status << 8 | signal. */
  exitCode: number;
}

/**
 * A process now holds an outbound TCP or connected UDP socket: a connect on an fd past stdio that succeeded or
 * is in progress (connects on stdio are connect events); or a UDP socket that was never connected sent its
 * first datagram (`unconnected`: sendto with an address, seen by cgroup/sendmsg4|6). Context for the relay rule.
 */
export interface OutboundEvent extends EventBase {
  kind: "outbound";
  /** The connect's fd; -1 for an unconnected UDP socket's send (a send names no fd). */
  fd: number;
  /** 0, or -115 (EINPROGRESS) for a non-blocking connect. */
  result: number;
  /** The socket's inode number: its identity in /proc/<pid>/fd ("socket:[ino]"). */
  socketIno: number;
  family: "inet" | "inet6";
  /** A connected UDP socket relays a shell as well as a TCP one (socat UDP:, ncat -u). */
  transport: "tcp" | "udp";
  local: Endpoint;
  /** Where it connected; for an unconnected UDP socket, where its first datagram went. */
  remote: Endpoint;
  /** A UDP socket that was never connected: the record is its first send, not a connect. */
  unconnected?: true;
}

/**
 * An inet socket accept()/accept4() returned: an inbound connection (Elastic Defend's
 * connection_accepted). Made only while the sensor was opened with `acceptRecords` (a loaded
 * rule reads them): a busy server accepts thousands a second.
 */
export interface AcceptEvent extends EventBase {
  kind: "accept";
  /** The new fd accept returned. */
  fd: number;
  /** The socket's inode number: its identity in /proc/<pid>/fd ("socket:[ino]"). */
  socketIno: number;
  family: "inet" | "inet6";
  /** The server's end (the listening address and port). */
  local: Endpoint;
  /** The client's end. */
  remote: Endpoint;
}

export type CredSyscall = "setuid" | "setreuid" | "setresuid" | "setgid" | "setregid" | "setresgid" | "setsid";

/** The ids of a process: real, effective, saved. */
export interface CredIds {
  uid: number;
  euid: number;
  suid: number;
  gid: number;
  egid: number;
  sgid: number;
}

/**
 * A set*id call that succeeded and changed an id, or a setsid that started a new session
 * (Elastic Defend's uid_change, gid_change, session_id_change). `task` is read after the call:
 * task.uid and task.gid are the new real ids.
 */
export interface CredChangeEvent extends EventBase {
  kind: "cred_change";
  syscall: CredSyscall;
  /** What changed: any of the uids, any of the gids, the session. */
  changed: { uid: boolean; gid: boolean; session: boolean };
  /** The ids after the call. */
  ids: CredIds;
  /** The ids before the call (after a setsid: the same as ids). */
  oldIds: CredIds;
  /** The new session id after setsid (the caller's pid); absent otherwise. */
  sid?: number;
  /** The capabilities after the call (a uid change to or from 0 changes them); null when not known. */
  capabilities: CapabilitySets | null;
}

/**
 * A process that was already running when the sensor started: no kernel record, but one
 * event per process the process table found in /proc at start (Elastic Defend's
 * `already_running` events), made once, before the first kernel batch. `task` is read from
 * /proc: real ids, start time to clock-tick precision, cgroupId 0 (unknown), tid = pid.
 * Recorded in captures like any event, so a replay sees the same processes.
 */
export interface AlreadyRunningEvent extends EventBase {
  kind: "already_running";
  /** /proc/<pid>/exe; "" when unknown (a kernel thread, an unreadable link). */
  executable: string;
  /** /proc/<pid>/cmdline; empty when unknown (a kernel thread). */
  args: string[];
}

export type SensorEvent =
  | ConnectEvent | SocketDupEvent | ExecEvent | ForkEvent | ExitEvent | OutboundEvent | AcceptEvent | CredChangeEvent | AlreadyRunningEvent;
export type EventKind = SensorEvent["kind"];
export const EVENT_KINDS: readonly EventKind[] = ["connect", "socket_dup", "exec", "fork", "exit", "outbound", "accept", "cred_change", "already_running"];

export type EventOfKind<K extends EventKind> = Extract<SensorEvent, { kind: K }>;
