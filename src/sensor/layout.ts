/**
 * Twin of bpf/sockeye_events.h for the decoder: sizes and offsets of every record, and the
 * codes of its enums. test/unit/sensor/layout.test.ts checks it both ways: every struct, field
 * and enum member of the header is here (read from the header's text), and every number
 * matches the addon's offsetof()/sizeof() compiled from that header.
 */
export const COMM_LEN = 16;
export const UNIX_PATH_LEN = 108;
export const FILENAME_MAX = 512;
export const ARGS_MAX = 8192;
export const STDIO_FDS = 3;

export const EventKindCode = { connect: 1, socket_dup: 2, exec: 3, fork: 4, exit: 5, outbound: 6, cred_change: 7, accept: 8 } as const;

/** enum sockeye_fd_kind; SOCKEYE_FD_REGULAR is "file". */
export const FdKindCode = {
  closed: 0, inet: 1, unix: 2, socket: 3, pipe: 4, fifo: 5, tty: 6, pty_master: 7, file: 8, chardev: 9, other: 10,
} as const;
/** enum sockeye_connect_source. */
export const ConnectSourceCode = { lsm: 1, fentry: 2, tracepoint: 3 } as const;
/** enum sockeye_dup_syscall. */
export const DupSyscallCode = { dup: 1, dup2: 2, dup3: 3, fcntl: 4 } as const;
/** enum sockeye_cred_syscall. */
export const CredSyscallCode = { setuid: 1, setreuid: 2, setresuid: 3, setgid: 4, setregid: 5, setresgid: 6, setsid: 7 } as const;
/** struct cred_change_event.changed: SOCKEYE_CHANGED_*. */
export const CredChanged = { uid: 0x1, gid: 0x2, session: 0x4 } as const;
/** enum sockeye_socket_origin. */
export const SocketOriginCode = { unknown: 0, accepted: 1, connected: 2, passive: 3 } as const;

/** enum sockeye_hook in order; SOCKEYE_HOOK_DUP is "socket_dup". */
export const HOOKS = ["connect", "socket_dup", "exec", "fork", "exit", "accept", "outbound", "cred_change"] as const;
export type HookName = (typeof HOOKS)[number];

/** enum sockeye_ring in order. */
export const RINGS = ["detection", "process", "relay"] as const;
export type RingName = (typeof RINGS)[number];
/** enum sockeye_drop_reason in order: why the kernel dropped a record. */
export const DROP_REASONS = ["ring_full", "repeat", "large_share", "source_share", "accept_share"] as const;
export type RingDropReason = (typeof DROP_REASONS)[number];

export const LAYOUT = {
  event_header: { sizeof: 16, kind: 0, size: 2, cpu: 4, time_ns: 8 },
  task_context: {
    sizeof: 88, pid: 0, tid: 4, ppid: 8, uid: 12, gid: 16, ns_pid: 20, cgroup_id: 24, start_ns: 32, comm: 40, parent_comm: 56,
    pid_ns: 72, mnt_ns: 76, net_ns: 80,
  },
  sock_endpoint: { sizeof: 24, addr: 0, port: 16 },
  connect_event: {
    sizeof: 272, task: 16, fd: 104, result: 108, family: 112, sock_type: 114, protocol: 116, source: 118, remote: 120,
    unix_path: 144, sock_ino: 252, stdio: 256,
  },
  stdio_brief: { sizeof: 16, ino: 0, type: 12 },
  socket_dup_event: {
    sizeof: 192, task: 16, oldfd: 104, newfd: 108, syscall: 112, family: 114, sock_type: 116, protocol: 118, origin: 120,
    state: 121, sock_ino: 124, local: 128, remote: 152, stdio: 176,
  },
  stdio_fd: {
    sizeof: 72, kind: 0, origin: 1, state: 2, flags: 3, family: 4, sock_type: 6, ino: 8, dev: 12, tty_index: 16,
    peer_ino: 20, local: 24, remote: 48,
  },
  cap_sets: { sizeof: 16, effective: 0, permitted: 8 },
  exec_event: {
    sizeof: 9056, task: 16, filename_len: 104, args_len: 106, filename_truncated: 108, args_truncated: 109, caps_known: 110,
    sid_known: 111, loginuid: 112, sid: 116, caps: 120, stdio: 136, data: 352,
  },
  fork_event: { sizeof: 104, task: 16 },
  exit_event: { sizeof: 112, task: 16, exit_code: 104 },
  cred_change_event: {
    sizeof: 168, task: 16, syscall: 104, changed: 106, caps_known: 107, sid: 108, euid: 112, suid: 116, egid: 120, sgid: 124, old_uid: 128,
    old_euid: 132, old_suid: 136, old_gid: 140, old_egid: 144, old_sgid: 148, caps: 152,
  },
  accept_event: { sizeof: 168, task: 16, fd: 104, sock_ino: 108, family: 112, state: 114, local: 120, remote: 144 },
  outbound_event: { sizeof: 168, task: 16, fd: 104, result: 108, sock_ino: 112, family: 116, state: 118, protocol: 119, local: 120, remote: 144 },
} as const;
