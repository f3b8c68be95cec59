/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * Every record the kernel side hands to userspace, and the counters it keeps.
 *
 * Shared by the BPF programs (every .bpf.c in bpf/) and the addon (native/). Its twin in
 * TypeScript is src/sensor/layout.ts; test/unit/sensor/layout.test.ts reads every struct,
 * field and enum member here and compares every size and offset with the ones the addon
 * reports from this header (native/layout.cc).
 *
 * Rules for this file: fixed-width types only, explicit padding, no bool, every struct a
 * multiple of 8 bytes, every record starts with struct event_header.
 */
#ifndef SOCKEYE_EVENTS_H
#define SOCKEYE_EVENTS_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define SOCKEYE_COMM_LEN 16
/* Same bound as sockaddr_un.sun_path. */
#define SOCKEYE_UNIX_PATH_LEN 108
/* execve's filename as the caller passed it; longer ones are cut and flagged. */
#define SOCKEYE_FILENAME_MAX 512
/* argv bytes kept per exec: the issue asks for at least 4 KiB. Power of two so the
 * verifier can bound reads with a mask. */
#define SOCKEYE_ARGS_MAX 8192
/* fds 0, 1 and 2: what exec and detection records describe. */
#define SOCKEYE_STDIO_FDS 3

enum sockeye_event_kind {
	SOCKEYE_EVENT_CONNECT = 1,
	SOCKEYE_EVENT_SOCKET_DUP = 2,
	SOCKEYE_EVENT_EXEC = 3,
	SOCKEYE_EVENT_FORK = 4,
	SOCKEYE_EVENT_EXIT = 5,
	SOCKEYE_EVENT_OUTBOUND = 6,
	SOCKEYE_EVENT_CRED_CHANGE = 7,
	SOCKEYE_EVENT_ACCEPT = 8,
};

/* Which program produced a connect record. */
enum sockeye_connect_source {
	SOCKEYE_CONNECT_LSM = 1,
	SOCKEYE_CONNECT_FENTRY = 2,
	SOCKEYE_CONNECT_TRACEPOINT = 3,
};

enum sockeye_dup_syscall {
	SOCKEYE_DUP_DUP = 1,
	SOCKEYE_DUP_DUP2 = 2,
	SOCKEYE_DUP_DUP3 = 3,
	SOCKEYE_DUP_FCNTL = 4,
};

/* Which call changed a process's credentials or session (struct cred_change_event). */
enum sockeye_cred_syscall {
	SOCKEYE_CRED_SETUID = 1,
	SOCKEYE_CRED_SETREUID = 2,
	SOCKEYE_CRED_SETRESUID = 3,
	SOCKEYE_CRED_SETGID = 4,
	SOCKEYE_CRED_SETREGID = 5,
	SOCKEYE_CRED_SETRESGID = 6,
	SOCKEYE_CRED_SETSID = 7,
};

/* struct cred_change_event.changed */
#define SOCKEYE_CHANGED_UID 0x1     /* real, effective or saved uid */
#define SOCKEYE_CHANGED_GID 0x2     /* real, effective or saved gid */
#define SOCKEYE_CHANGED_SESSION 0x4 /* setsid: a new session, led by the caller */

/* How the socket on the new fd came to be, as far as the kernel side saw it. */
enum sockeye_socket_origin {
	SOCKEYE_ORIGIN_UNKNOWN = 0,
	/* returned by accept()/accept4() while the sensor ran: an inbound connection */
	SOCKEYE_ORIGIN_ACCEPTED = 1,
	/* has a peer, was not seen being accepted and was not opened from a listener: connect()ed */
	SOCKEYE_ORIGIN_CONNECTED = 2,
	/* opened from a listener (a passive open), but its accept mark is gone (evicted, or accepted
	 * before the sensor started): inbound by the socket's own account, which a socket that was
	 * accepted, disconnected and connect()ed again keeps; userspace confirms the listener */
	SOCKEYE_ORIGIN_PASSIVE = 3,
};

/* What an fd is, as an exec finds it (struct stdio_fd). */
enum sockeye_fd_kind {
	SOCKEYE_FD_CLOSED = 0,
	SOCKEYE_FD_INET = 1,        /* AF_INET or AF_INET6 socket */
	SOCKEYE_FD_UNIX = 2,        /* AF_UNIX socket: named, abstract or a socketpair */
	SOCKEYE_FD_SOCKET = 3,      /* another family (netlink, packet, ...) */
	SOCKEYE_FD_PIPE = 4,        /* anonymous pipe (pipefs) */
	SOCKEYE_FD_FIFO = 5,        /* named pipe on a filesystem */
	SOCKEYE_FD_TTY = 6,         /* a terminal: pty slave, console, serial line */
	SOCKEYE_FD_PTY_MASTER = 7,  /* /dev/ptmx: the master side of a pty */
	SOCKEYE_FD_REGULAR = 8,
	SOCKEYE_FD_CHARDEV = 9,     /* a character device that is not a terminal (/dev/null, ...) */
	SOCKEYE_FD_OTHER = 10,      /* anon inodes (eventfd, epoll, ...), directories, block devices */
};

/* struct stdio_fd.flags */
#define SOCKEYE_FD_CTTY 0x1      /* the terminal is the process's controlling tty */

/* Per-hook counters, indexed by this enum in the per-CPU array `hook_counters`. */
enum sockeye_hook {
	SOCKEYE_HOOK_CONNECT = 0,
	SOCKEYE_HOOK_DUP = 1,
	SOCKEYE_HOOK_EXEC = 2,
	SOCKEYE_HOOK_FORK = 3,
	SOCKEYE_HOOK_EXIT = 4,
	SOCKEYE_HOOK_ACCEPT = 5,
	SOCKEYE_HOOK_OUTBOUND = 6,
	SOCKEYE_HOOK_CRED_CHANGE = 7,
	SOCKEYE_HOOK_COUNT = 8,
};

/* The rings, as the per-ring drop counters (`ring_drops`) index them. */
enum sockeye_ring {
	SOCKEYE_RING_DETECTION = 0,
	SOCKEYE_RING_PROCESS = 1,
	SOCKEYE_RING_RELAY = 2,
	SOCKEYE_RING_COUNT = 3,
};

/* Why the kernel dropped a record; `ring_drops` is indexed ring * SOCKEYE_DROP_REASON_COUNT + reason. */
enum sockeye_drop_reason {
	SOCKEYE_DROP_RING_FULL = 0,    /* no room left in the ring */
	SOCKEYE_DROP_REPEAT = 1,       /* detection ring under pressure: this (process, fd) had one admitted within the window */
	SOCKEYE_DROP_LARGE_SHARE = 2,  /* an exec record with a socket on stdio past the share large records may fill */
	SOCKEYE_DROP_SOURCE_SHARE = 3, /* one past its uid's one exec record per window once large records fill a quarter */
	SOCKEYE_DROP_ACCEPT_SHARE = 4, /* an accept record past the share of the process ring accepts may fill */
	SOCKEYE_DROP_REASON_COUNT = 5,
};

struct hook_counter {
	__u64 emitted;  /* records submitted to a ring buffer */
	__u64 lost;     /* record dropped: ring buffer full, or (detections) shed under pressure */
	__u64 errors;   /* a helper failed (read of kernel/user memory, map update) */
};

struct event_header {
	__u16 kind;     /* enum sockeye_event_kind */
	__u16 size;     /* whole record, header included */
	__u32 cpu;
	__u64 time_ns;  /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
};

/* Who did it, captured in the kernel so findings stay right after the process is gone. */
struct task_context {
	__u32 pid;      /* thread group id, what userspace calls the pid */
	__u32 tid;
	__u32 ppid;     /* real parent's thread group id */
	__u32 uid;
	__u32 gid;
	__u32 ns_pid;   /* the pid as seen inside its own pid namespace (a container's "pid 1") */
	__u64 cgroup_id;
	__u64 start_ns; /* task->start_boottime of the group leader: tells reused pids apart */
	char comm[SOCKEYE_COMM_LEN];
	char parent_comm[SOCKEYE_COMM_LEN];
	/* Namespace inode numbers, as /proc/<pid>/ns/{pid,mnt,net} name them; 0 when unknown (a task
	 * past exit_task_namespaces; fork and exit records, which skip the reads). They tell a
	 * container's processes apart without /proc. ns_pid too. */
	__u32 pid_ns;
	__u32 mnt_ns;
	__u32 net_ns;
	__u32 pad;
};

/* Capability sets as /proc/<pid>/status shows them (CapEff, CapPrm): bit n is capability n. */
struct cap_sets {
	__u64 effective;
	__u64 permitted;
};

/* IPv4 addresses sit in the first 4 bytes of addr; port is in host byte order. */
struct sock_endpoint {
	__u8 addr[16];
	__u16 port;
	__u16 pad[3];
};

/* What fds 0-2 hold right after a detection (a dup or connect onto one of them): inode number
 * and file type (S_IFMT >> 12: 0xc socket, 0x1 pipe/FIFO, 0x2 char device, 0x8 file; 0 =
 * closed). Whether the same socket also sits on the other stdio fds at that moment tells a
 * shell's stdin+stdout redirection from a builtin's one-fd redirection, which the shell
 * undoes right after with a dup that never leaves the kernel. */
struct stdio_brief {
	__u32 ino[SOCKEYE_STDIO_FDS];
	__u8 type[SOCKEYE_STDIO_FDS];
	__u8 pad;
};

struct connect_event {
	struct event_header hdr;
	struct task_context task;
	__s32 fd;        /* connect(2)'s fd; -1 when the hook fired outside connect(2) (io_uring) */
	__s32 result;    /* 0 or -errno; SOCKEYE_RESULT_UNKNOWN where the hook runs before the result */
	__u16 family;    /* AF_INET, AF_INET6, AF_UNIX, ... as given in the sockaddr */
	__u16 sock_type; /* SOCK_STREAM, SOCK_DGRAM, ... */
	__u16 protocol;
	__u8 source;     /* enum sockeye_connect_source */
	__u8 pad;
	struct sock_endpoint remote;
	char unix_path[SOCKEYE_UNIX_PATH_LEN]; /* AF_UNIX only; abstract names start with NUL */
	__u32 sock_ino;  /* the socket's inode number; 0 when unknown */
	struct stdio_brief stdio;
};

#define SOCKEYE_RESULT_UNKNOWN 0x7fffffff

struct socket_dup_event {
	struct event_header hdr;
	struct task_context task;
	__s32 oldfd;
	__s32 newfd;
	__u16 syscall;   /* enum sockeye_dup_syscall */
	__u16 family;    /* the socket's own family */
	__u16 sock_type;
	__u16 protocol;
	__u8 origin;     /* enum sockeye_socket_origin */
	__u8 state;      /* sk_state: TCP_ESTABLISHED = 1, ... */
	__u16 pad;
	__u32 sock_ino;  /* the socket's inode number: one socket, one identity across processes */
	struct sock_endpoint local;
	struct sock_endpoint remote;
	struct stdio_brief stdio;
};

/*
 * One of fds 0, 1 and 2 as a new program starts with it (after close-on-exec). Identities
 * join records: a socket's or pipe's inode number (pipe ends share one), a unix socket's
 * peer inode (socketpair ends name each other), a terminal's index (a pty's master and slave
 * share it).
 */
struct stdio_fd {
	__u8 kind;       /* enum sockeye_fd_kind */
	__u8 origin;     /* INET: enum sockeye_socket_origin */
	__u8 state;      /* INET: sk_state */
	__u8 flags;      /* SOCKEYE_FD_CTTY */
	__u16 family;    /* sockets */
	__u16 sock_type; /* sockets */
	__u32 ino;       /* inode number (sockets, pipes, FIFOs, files) */
	__u32 dev;       /* FIFO, file: the filesystem's dev; char devices: the device (major << 20 | minor) */
	__s32 tty_index; /* TTY, PTY_MASTER: the terminal's index; -1 otherwise */
	__u32 peer_ino;  /* UNIX: the peer socket's inode number, 0 when unconnected */
	struct sock_endpoint local;  /* INET */
	struct sock_endpoint remote; /* INET */
};

struct exec_event {
	struct event_header hdr;
	struct task_context task;
	__u16 filename_len;  /* bytes of data[] holding the filename, no NUL */
	__u16 args_len;      /* bytes of data[] after the filename: argv, each NUL-terminated */
	__u8 filename_truncated;
	__u8 args_truncated;
	__u8 caps_known;     /* caps was read (0: a read failed, the sets are not known) */
	__u8 sid_known;      /* sid was read (0: records of sensors older than the field) */
	__u32 loginuid;
	__u32 sid;           /* session id at the exec (the session leader's pid; 0: init's session) */
	struct cap_sets caps;  /* the new program's, as execve left them */
	struct stdio_fd stdio[SOCKEYE_STDIO_FDS];
	char data[SOCKEYE_FILENAME_MAX + SOCKEYE_ARGS_MAX];
};

/* The fixed part of an exec record; the ring carries only the bytes of data[] in use. */
#define SOCKEYE_EXEC_FIXED_SIZE (sizeof(struct exec_event) - SOCKEYE_FILENAME_MAX - SOCKEYE_ARGS_MAX)

struct fork_event {
	struct event_header hdr;
	struct task_context task;  /* the new child */
};

struct exit_event {
	struct event_header hdr;
	struct task_context task;
	__s32 exit_code;  /* as wait(2) reports it: status << 8 | signal */
	__u32 pad;
};

/*
 * A process now holds an outbound TCP socket: a connect(2) on an fd past stdio succeeded or is
 * in progress (those on stdio are connect records already). Context for the relay rule, which
 * asks who holds the far end of a shell's pipes or pty: it travels on its own ring, never the
 * detection ring.
 */
struct outbound_event {
	struct event_header hdr;
	struct task_context task;
	__s32 fd;
	__s32 result;    /* 0 or -EINPROGRESS */
	__u32 sock_ino;
	__u16 family;    /* AF_INET or AF_INET6 */
	__u8 state;      /* sk_state: TCP_SYN_SENT = 2 while in progress, TCP_ESTABLISHED = 1 */
	__u8 protocol;   /* IPPROTO_TCP (6) or IPPROTO_UDP (17): a connected UDP socket relays too */
	struct sock_endpoint local;
	struct sock_endpoint remote;
};

/*
 * An inet socket accept()/accept4() returned (Elastic Defend's connection_accepted), made only
 * while a loaded rule reads such events (the accept_records setting): a busy server accepts
 * thousands a second. Process records: they travel on the process ring, after the exec of the
 * server that accepts.
 */
struct accept_event {
	struct event_header hdr;
	struct task_context task;
	__s32 fd;        /* the new fd accept returned */
	__u32 sock_ino;
	__u16 family;    /* AF_INET or AF_INET6 */
	__u8 state;      /* sk_state */
	__u8 pad;
	__u32 pad2;
	struct sock_endpoint local;
	struct sock_endpoint remote;
};

/*
 * A set*id call that succeeded and changed an id, or a setsid that made a new session (Elastic
 * Defend's uid_change / gid_change / session_id_change). task holds the ids after the call
 * (task.uid/gid the real ones); old_* were read at the call's entry. Process records: they
 * travel on the process ring.
 */
struct cred_change_event {
	struct event_header hdr;
	struct task_context task;
	__u16 syscall;   /* enum sockeye_cred_syscall */
	__u8 changed;    /* SOCKEYE_CHANGED_* */
	__u8 caps_known; /* caps was read */
	__u32 sid;       /* the new session id after setsid; 0 otherwise */
	__u32 euid;      /* after the call */
	__u32 suid;
	__u32 egid;
	__u32 sgid;
	__u32 old_uid;   /* before the call (set*id only) */
	__u32 old_euid;
	__u32 old_suid;
	__u32 old_gid;
	__u32 old_egid;
	__u32 old_sgid;
	struct cap_sets caps;  /* after the call: setuid to or from 0 changes them too */
};

#endif /* SOCKEYE_EVENTS_H */
