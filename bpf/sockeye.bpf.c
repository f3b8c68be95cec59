// SPDX-License-Identifier: GPL-2.0-only
/*
 * sockeye's kernel side: connect, socket dups onto stdio, and process lifecycle.
 *
 * Capabilities and their candidate programs (userspace turns the losers off with
 * bpf_program__set_autoload before load, see native/loader.cc):
 *   connect:     handle_connect_lsm  >  handle_connect_fentry  >  handle_connect_exit
 *   socket_dup:  handle_{dup,dup2,dup3,fcntl}_exit  (syscall exit tracepoints)
 *   accept:      handle_accept{,4}_exit  (marks inbound sockets for socket_dup's origin)
 *   compat:      handle_compat_exit  (tp_btf/sys_exit: ia32 syscalls; opt-in, see there)
 *   process:     handle_exec, handle_fork, handle_exit  (tp_btf sched_process_*)
 *
 * Filtering happens here (design.md §2): a dup whose old fd is not a socket, or whose new
 * fd is past stdio_fd_max, never leaves the kernel; a connect on an fd past stdio_fd_max
 * neither, unless connect_all_fds is set.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>
#include "sockeye_events.h"

char LICENSE[] SEC("license") = "GPL";

/* vmlinux.h carries types, not macros. */
#define AF_UNIX 1
#define AF_INET 2
#define AF_INET6 10
#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define S_IFIFO 0010000
#define S_IFCHR 0020000
#define S_IFREG 0100000
#define PIPEFS_MAGIC 0x50495045
/* include/uapi/linux/major.h */
#define TTY_MAJOR 4
#define TTYAUX_MAJOR 5           /* minor 0 /dev/tty, 1 /dev/console, 2 /dev/ptmx */
#define UNIX98_PTY_SLAVE_MAJOR 136
#define UNIX98_PTY_MAJOR_COUNT 8
#define F_DUPFD 0
#define F_DUPFD_CLOEXEC 1030
#define EINPROGRESS 115

#if defined(__TARGET_ARCH_x86)
#define SYSCALL_NR_CONNECT 42
#define TS_COMPAT 0x0002 /* thread_info.status: the syscall in progress is an ia32 one */
/* arch/x86/entry/syscalls/syscall_32.tbl */
#define IA32_DUP 41
#define IA32_FCNTL 55
#define IA32_DUP2 63
#define IA32_SOCKETCALL 102
#define IA32_FCNTL64 221
#define IA32_DUP3 330
#define IA32_CONNECT 362
#define IA32_ACCEPT4 364
#define SOCKETCALL_CONNECT 3 /* socketcall's call numbers */
#define SOCKETCALL_ACCEPT 5
#define SOCKETCALL_ACCEPT4 18
#define SYSCALL_NR(regs) BPF_CORE_READ(regs, orig_ax)
#elif defined(__TARGET_ARCH_arm64)
#define SYSCALL_NR_CONNECT 203
#define SYSCALL_NR(regs) BPF_CORE_READ(regs, syscallno)
#else
#error "sockeye's BPF side knows the syscall numbers of x86 and arm64 only"
#endif

/* Load-time settings, written by userspace between open and load. */
const volatile __s32 stdio_fd_max = 2;
const volatile __u8 connect_all_fds = 0;
/* handle_compat_exit reports ia32 connects too: set when connect runs on its tracepoint
 * fallback, which (like every syscall tracepoint) never sees them. LSM and fentry do. */
const volatile __u8 compat_connect = 0;
/* Wakeup policy (see submit_flags): at most one consumer wakeup per ring per CPU in this
 * interval. The reader keeps polling for longer than this after its last record, so a record
 * submitted without a wakeup is still read within about one interval. 0 = wake for every
 * record the reader is not already busy with (libbpf's default). */
const volatile __u64 wakeup_interval_ns = 0;
/* A detection ring fuller than this share (in 1/8ths) admits only records whose (process, fd)
 * has not had one admitted in the last detection_repeat_window_ns: a process that floods
 * matching dups cannot fill the ring and push out another process's first detection. Three
 * quarters, not half: the reader may stall for a few ms on a busy host (a hypervisor's), and a
 * steady stream of one process's records must not be shed before the ring is really filling;
 * the last quarter (819 records at 512 KiB) still holds other processes' first records. */
const volatile __u8 detection_pressure_eighths = 6;
const volatile __u64 detection_repeat_window_ns = 1000000000ull;
/* Process records wake the reader only once their ring is this full (in 1/8ths); see
 * process_submit_flags. */
const volatile __u8 process_wakeup_eighths = 2;

/* Detections (connect, socket_dup) get their own small ring so that an exec flood can never
 * push one out: the process ring can fill up and lose records while this one stays empty. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} detection_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 2 << 20);
} process_events SEC(".maps");

enum ring_id { RING_DETECTION = 0, RING_PROCESS = 1, RING_COUNT = 2 };

/* Per CPU and ring: when a record last woke the reader (ns, bpf_ktime_get_ns). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, RING_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} ring_last_wakeup SEC(".maps");

/* (tgid << 32 | fd) -> when its last detection record was admitted under pressure. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u64);
	__type(value, __u64);
} detection_admitted SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SOCKEYE_HOOK_COUNT);
	__type(key, __u32);
	__type(value, struct hook_counter);
} hook_counters SEC(".maps");

/* Sockets returned by accept()/accept4(), keyed by struct sock address. LRU: a busy server
 * accepts far more sockets than ever reach stdio, and old entries may go. A freed sock's
 * memory is reused for new sockets and we see no free (no kprobes), so the value holds the
 * connection's ports and peer address: a lookup counts only when they still match. */
struct accepted_sock {
	__u32 peer_addr; /* IPv4 address, or the last 4 bytes of an IPv6 one */
	__u16 local_port;
	__u16 peer_port;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct accepted_sock);
} accepted_socks SEC(".maps");

static __always_inline struct accepted_sock sock_identity(struct sock *sk)
{
	struct accepted_sock id = {};

	if (BPF_CORE_READ(sk, __sk_common.skc_family) == AF_INET6)
		BPF_CORE_READ_INTO(&id.peer_addr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr32[3]);
	else
		id.peer_addr = BPF_CORE_READ(sk, __sk_common.skc_daddr);
	id.local_port = BPF_CORE_READ(sk, __sk_common.skc_num);
	id.peer_port = BPF_CORE_READ(sk, __sk_common.skc_dport);
	return id;
}

/* An exec record is too large for the BPF stack; it is built here, then copied out with
 * only the bytes in use. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct exec_event);
} exec_scratch SEC(".maps");

enum counter_field { COUNT_EMITTED, COUNT_LOST, COUNT_ERRORS };

static __always_inline void count(__u32 hook, enum counter_field field)
{
	struct hook_counter *c = bpf_map_lookup_elem(&hook_counters, &hook);
	if (!c)
		return;
	/* Per-CPU slot: no other CPU writes it, so a plain increment is safe. */
	if (field == COUNT_EMITTED)
		c->emitted++;
	else if (field == COUNT_LOST)
		c->lost++;
	else
		c->errors++;
}

/*
 * A wakeup is an irq_work and, when the reader sleeps on another CPU, an IPI: costly on
 * every record (in this VM kind it cut the records one CPU can produce to a third). So a
 * record wakes the reader only when none on this CPU did in the last wakeup_interval_ns; the
 * ones in between are picked up by the reader's polling (native/ring_reader.cc). An isolated
 * record, what a real detection looks like, always wakes the reader at once.
 */
static __always_inline __u64 submit_flags(__u32 ring, __u64 now)
{
	__u64 *last;

	if (!wakeup_interval_ns)
		return 0;
	last = bpf_map_lookup_elem(&ring_last_wakeup, &ring);
	if (!last)
		return 0;
	if (now - *last < wakeup_interval_ns)
		return BPF_RB_NO_WAKEUP;
	*last = now;
	return BPF_RB_FORCE_WAKEUP;
}

/*
 * Process records (exec, fork, exit) are context for detections, not detections, and every
 * fork+exec makes three of them: woken for each, the reader cost a fork+exec of /bin/true
 * 42 µs with a C reader and 115 µs with the addon (bench/README.md). So below a fill level
 * they wake nobody: the reader reads both rings at every detection's wakeup (a detection
 * always finds its process's exec) and at least once per poll timeout (native/ring_reader.cc).
 * Past the level, an exec flood wakes the reader as detections do, before the ring overflows.
 */
static __always_inline __u64 process_submit_flags(__u64 now)
{
	__u64 size = bpf_ringbuf_query(&process_events, BPF_RB_RING_SIZE);
	__u64 used = bpf_ringbuf_query(&process_events, BPF_RB_AVAIL_DATA);

	if (used * 8 < size * process_wakeup_eighths)
		return BPF_RB_NO_WAKEUP;
	return submit_flags(RING_PROCESS, now);
}

/* False when the detection ring is under pressure and this (process, fd) already had a record
 * admitted within the window: then the record is shed and counted as lost. */
static __always_inline int admit_detection(int fd)
{
	__u64 size = bpf_ringbuf_query(&detection_events, BPF_RB_RING_SIZE);
	__u64 used = bpf_ringbuf_query(&detection_events, BPF_RB_AVAIL_DATA);
	__u64 key, now, *last;

	if (used * 8 < size * detection_pressure_eighths)
		return 1;
	key = (bpf_get_current_pid_tgid() & 0xffffffff00000000ull) | (__u32)fd;
	now = bpf_ktime_get_ns();
	last = bpf_map_lookup_elem(&detection_admitted, &key);
	if (last && now - *last < detection_repeat_window_ns)
		return 0;
	bpf_map_update_elem(&detection_admitted, &key, &now, BPF_ANY);
	return 1;
}

static __always_inline void fill_header(struct event_header *h, __u16 kind, __u16 size)
{
	h->kind = kind;
	h->size = size;
	h->cpu = bpf_get_smp_processor_id();
	h->time_ns = bpf_ktime_get_ns();
}

/* Context of `task`; cgroup is current's, which for fork (current = parent) is the child's too.
 * `task` is a BTF pointer (bpf_get_current_task_btf or a tp_btf argument): its fields are read
 * with plain loads, which the verifier turns into fault-safe ones, instead of one
 * bpf_probe_read_kernel call each (about 30 ns a call here; bench/README.md, change 14). */
static __always_inline void fill_task(struct task_context *c, struct task_struct *task)
{
	struct task_struct *parent = task->real_parent;
	const struct cred *cred = task->real_cred;

	c->pid = task->tgid;
	c->tid = task->pid;
	c->ppid = parent->tgid;
	c->uid = cred->uid.val;
	c->gid = cred->gid.val;
	c->pad = 0;
	c->cgroup_id = bpf_get_current_cgroup_id();
	c->start_ns = task->group_leader->start_boottime;
	/* comm is always NUL-terminated within its 16 bytes: a fixed-size copy is enough. */
	__builtin_memcpy(c->comm, task->comm, sizeof(c->comm));
	__builtin_memcpy(c->parent_comm, parent->comm, sizeof(c->parent_comm));
}

static __always_inline struct file *task_fd_file(struct task_struct *task, int fd)
{
	struct fdtable *fdt = task->files->fdt;
	struct file **fds;
	struct file *file = NULL;

	if (fd < 0 || (unsigned int)fd >= fdt->max_fds)
		return NULL;
	/* A pointer to pointers loads as a plain number: the slot itself needs a helper. */
	fds = fdt->fd;
	bpf_core_read(&file, sizeof(file), &fds[fd]);
	return file;
}

static __always_inline struct socket *file_socket(struct file *file)
{
	if (!file)
		return NULL;
	if ((BPF_CORE_READ(file, f_inode, i_mode) & S_IFMT) != S_IFSOCK)
		return NULL;
	return BPF_CORE_READ(file, private_data);
}

static __always_inline struct socket *current_fd_socket(int fd)
{
	return file_socket(task_fd_file(bpf_get_current_task_btf(), fd));
}

static __always_inline void fill_stdio_brief(struct stdio_brief *b, struct task_struct *task)
{
	for (int fd = 0; fd < SOCKEYE_STDIO_FDS; fd++) { /* 3 iterations: unrolled */
		struct file *file = task_fd_file(task, fd);

		if (!file)
			continue;
		b->ino[fd] = BPF_CORE_READ(file, f_inode, i_ino);
		b->type[fd] = (BPF_CORE_READ(file, f_inode, i_mode) & S_IFMT) >> 12;
	}
}

/* ---- connect -------------------------------------------------------------------------- */

static __always_inline int within_stdio(long fd)
{
	return fd >= 0 && fd <= stdio_fd_max;
}

/* The fd of the connect(2) in progress, or -1 when the hook was reached some other way
 * (io_uring's IORING_OP_CONNECT runs in a worker: Tracee reads a stale 0 there). An ia32
 * connect (a 32-bit binary, or int $0x80) has its own numbers and registers: read as if it
 * were a 64-bit one, it looked like no connect at all and went unreported. */
static __always_inline int connect_syscall_fd(struct socket *sock)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
	long nr = SYSCALL_NR(regs);

#if defined(__TARGET_ARCH_x86)
	if (task->thread_info.status & TS_COMPAT) {
		__u32 fd;

		if (nr == IA32_CONNECT)
			return (int)regs->bx;
		if (nr != IA32_SOCKETCALL || (__u32)regs->bx != SOCKETCALL_CONNECT)
			return -1;
		/* socketcall(SYS_CONNECT, args): the fd is the first 32-bit word of args in user
		 * memory, which another thread may have rewritten since the kernel read it (or made
		 * unreadable). Trusted only when that fd holds this very socket; else the socket is
		 * looked for on the stdio fds, the only ones a detection needs. */
		if (!bpf_probe_read_user(&fd, sizeof(fd), (const void *)(unsigned long)(__u32)regs->cx) &&
		    current_fd_socket((int)fd) == sock)
			return (int)fd;
		for (int i = 0; i < 8; i++) {
			if (i > stdio_fd_max)
				break;
			if (current_fd_socket(i) == sock)
				return i;
		}
		return -1;
	}
#endif
	if (nr != SYSCALL_NR_CONNECT)
		return -1;
	return (int)PT_REGS_PARM1_CORE_SYSCALL(regs);
}

/* Fills family, remote and unix_path from a sockaddr; `user` tells which memory it is in. */
static __always_inline int read_sockaddr(struct connect_event *e, const void *addr, int addrlen, int user)
{
	__u16 family = 0;
	long err;

	err = user ? bpf_probe_read_user(&family, sizeof(family), addr)
		   : bpf_probe_read_kernel(&family, sizeof(family), addr);
	if (err)
		return err;
	e->family = family;
	if (family == AF_INET) {
		struct sockaddr_in sin = {};
		err = user ? bpf_probe_read_user(&sin, sizeof(sin), addr)
			   : bpf_probe_read_kernel(&sin, sizeof(sin), addr);
		e->remote.port = bpf_ntohs(sin.sin_port);
		__builtin_memcpy(e->remote.addr, &sin.sin_addr, 4);
	} else if (family == AF_INET6) {
		struct sockaddr_in6 sin6 = {};
		err = user ? bpf_probe_read_user(&sin6, sizeof(sin6), addr)
			   : bpf_probe_read_kernel(&sin6, sizeof(sin6), addr);
		e->remote.port = bpf_ntohs(sin6.sin6_port);
		__builtin_memcpy(e->remote.addr, &sin6.sin6_addr, 16);
	} else if (family == AF_UNIX) {
		/* sun_path follows the 2-byte family; never read past what the caller passed. */
		if (addrlen > 2) {
			__u64 len = (__u64)(addrlen - 2);

			/* The clamp must sit on the very register handed to the helper: 64 bits wide
			 * (a 32-bit one is compared through a zero-extended copy) and behind a barrier
			 * (else clang clamps a sign-extended copy and drops a mask it proves
			 * redundant). The 6.1 verifier (Debian 12's kernel, where the LSM and fentry
			 * programs load) refused both as an unbounded read. */
			barrier_var(len);
			if (len > SOCKEYE_UNIX_PATH_LEN)
				len = SOCKEYE_UNIX_PATH_LEN;
			err = user ? bpf_probe_read_user(e->unix_path, len, addr + 2)
				   : bpf_probe_read_kernel(e->unix_path, len, addr + 2);
		}
	}
	return err;
}

static __always_inline void emit_connect(struct socket *sock, const void *addr, int addrlen, int user,
					 int fd, int result, __u8 source)
{
	struct connect_event *e;

	if (!admit_detection(fd)) {
		count(SOCKEYE_HOOK_CONNECT, COUNT_LOST);
		return;
	}
	e = bpf_ringbuf_reserve(&detection_events, sizeof(*e), 0);
	if (!e) {
		count(SOCKEYE_HOOK_CONNECT, COUNT_LOST);
		return;
	}
	__builtin_memset(e, 0, sizeof(*e));
	fill_header(&e->hdr, SOCKEYE_EVENT_CONNECT, sizeof(*e));
	fill_task(&e->task, bpf_get_current_task_btf());
	e->fd = fd;
	e->result = result;
	e->source = source;
	if (sock) {
		e->sock_type = BPF_CORE_READ(sock, type);
		e->protocol = BPF_CORE_READ(sock, sk, sk_protocol);
		e->sock_ino = BPF_CORE_READ(sock, file, f_inode, i_ino);
	}
	fill_stdio_brief(&e->stdio, bpf_get_current_task_btf());
	if (read_sockaddr(e, addr, addrlen, user))
		count(SOCKEYE_HOOK_CONNECT, COUNT_ERRORS);
	bpf_ringbuf_submit(e, submit_flags(RING_DETECTION, e->hdr.time_ns));
	count(SOCKEYE_HOOK_CONNECT, COUNT_EMITTED);
}

static __always_inline int on_security_socket_connect(struct socket *sock, struct sockaddr *address,
						     int addrlen, __u8 source)
{
	int fd = connect_syscall_fd(sock);

	/* fd -1 (not connect(2)) can never be a stdio redirection; only the all-fds mode wants it. */
	if (!connect_all_fds && !within_stdio(fd))
		return 0;
	emit_connect(sock, address, addrlen, 0, fd, SOCKEYE_RESULT_UNKNOWN, source);
	return 0;
}

SEC("lsm/socket_connect")
int BPF_PROG(handle_connect_lsm, struct socket *sock, struct sockaddr *address, int addrlen)
{
	on_security_socket_connect(sock, address, addrlen, SOCKEYE_CONNECT_LSM);
	return 0; /* never deny: sockeye observes */
}

SEC("fentry/security_socket_connect")
int BPF_PROG(handle_connect_fentry, struct socket *sock, struct sockaddr *address, int addrlen)
{
	return on_security_socket_connect(sock, address, addrlen, SOCKEYE_CONNECT_FENTRY);
}

/* The registers of the syscall the current task is in. At a syscall's exit tracepoint they
 * still hold the caller's arguments (x86-64 keeps them in pt_regs; on arm64 the first one is
 * orig_x0, which PT_REGS_PARM1_SYSCALL reads), so the exit programs below need no enter
 * program and no map to carry them: each enter tracepoint cost about 250 ns on every call of
 * its syscall, and the map 150 ns more on each matching one (bench/README.md, change 14). */
static __always_inline struct pt_regs *current_syscall_regs(void)
{
	return (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
}

SEC("tp/syscalls/sys_exit_connect")
int handle_connect_exit(struct trace_event_raw_sys_exit *ctx)
{
	struct pt_regs *regs = current_syscall_regs();
	int fd = (int)PT_REGS_PARM1_SYSCALL(regs);

	if (!connect_all_fds && !within_stdio(fd))
		return 0;
	emit_connect(current_fd_socket(fd), (const void *)PT_REGS_PARM2_SYSCALL(regs),
		     (int)PT_REGS_PARM3_SYSCALL(regs), 1, fd, (int)ctx->ret, SOCKEYE_CONNECT_TRACEPOINT);
	return 0;
}

/* ---- socket dups onto stdio ----------------------------------------------------------- */

/* The head of struct sock_common: IPv4 addresses, ports, family and state, in the order every
 * kernel since 2.6.38 keeps them. One read of these 20 bytes costs what one of the six
 * single-field reads did (bench/README.md, change 15). */
struct sock_common_head {
	__be32 daddr;
	__be32 rcv_saddr;
	__u32 hash;
	__be16 dport;
	__u16 num;
	__u16 family;
	__u8 state;
	__u8 pad;
};

/* Constants after CO-RE relocation: a kernel that moved a field takes the field-by-field way. */
#define SOCK_COMMON_HEAD_MATCHES                                                         \
	(bpf_core_field_offset(struct sock_common, skc_daddr) == 0 &&                    \
	 bpf_core_field_offset(struct sock_common, skc_rcv_saddr) == 4 &&                \
	 bpf_core_field_offset(struct sock_common, skc_dport) == 12 &&                   \
	 bpf_core_field_offset(struct sock_common, skc_num) == 14 &&                     \
	 bpf_core_field_offset(struct sock_common, skc_family) == 16 &&                  \
	 bpf_core_field_offset(struct sock_common, skc_state) == 18 &&                   \
	 bpf_core_field_size(struct sock_common, skc_dport) == 2 &&                      \
	 bpf_core_field_size(struct sock_common, skc_num) == 2 &&                        \
	 bpf_core_field_size(struct sock_common, skc_family) == 2 &&                     \
	 bpf_core_field_size(struct sock_common, skc_state) == 1 &&                      \
	 bpf_core_field_offset(struct sock, __sk_common) == 0)

static __always_inline void read_sock_common_head(struct sock_common_head *h, struct sock *sk)
{
	if (SOCK_COMMON_HEAD_MATCHES) {
		bpf_probe_read_kernel(h, sizeof(*h), sk);
		return;
	}
	h->daddr = BPF_CORE_READ(sk, __sk_common.skc_daddr);
	h->rcv_saddr = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
	h->dport = BPF_CORE_READ(sk, __sk_common.skc_dport);
	h->num = BPF_CORE_READ(sk, __sk_common.skc_num);
	h->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	h->state = BPF_CORE_READ(sk, __sk_common.skc_state);
}

/* Family, state and both endpoints of a socket, for dup records and exec-time stdio records. */
#define FILL_ENDPOINTS(e, sk)                                                               \
	do {                                                                                \
		struct sock_common_head h = {};                                             \
		read_sock_common_head(&h, sk);                                              \
		(e)->family = h.family;                                                     \
		(e)->state = h.state;                                                       \
		if (h.family == AF_INET) {                                                  \
			__builtin_memcpy((e)->local.addr, &h.rcv_saddr, 4);                 \
			__builtin_memcpy((e)->remote.addr, &h.daddr, 4);                    \
		} else if (h.family == AF_INET6) {                                          \
			BPF_CORE_READ_INTO(&(e)->local.addr, sk, __sk_common.skc_v6_rcv_saddr); \
			BPF_CORE_READ_INTO(&(e)->remote.addr, sk, __sk_common.skc_v6_daddr);   \
		}                                                                           \
		(e)->local.port = h.num;                                                    \
		(e)->remote.port = bpf_ntohs(h.dport);                                      \
	} while (0)

static __always_inline void fill_endpoints(struct socket_dup_event *e, struct sock *sk)
{
	FILL_ENDPOINTS(e, sk);
}

static __always_inline int same_sock(struct accepted_sock *seen, struct sock *sk)
{
	struct accepted_sock now = sock_identity(sk);

	return seen->peer_addr == now.peer_addr && seen->local_port == now.local_port &&
	       seen->peer_port == now.peer_port;
}

/* Accepted while the sensor ran (by any process: sshd and inetd accept in the listener and
 * hand over in a child), else connected when it has a peer. */
static __always_inline __u8 socket_origin(struct sock *sk, __u16 remote_port)
{
	__u64 sk_key = (__u64)sk;
	struct accepted_sock *accepted = bpf_map_lookup_elem(&accepted_socks, &sk_key);

	if (accepted && same_sock(accepted, sk))
		return SOCKEYE_ORIGIN_ACCEPTED;
	return remote_port ? SOCKEYE_ORIGIN_CONNECTED : SOCKEYE_ORIGIN_UNKNOWN;
}

/* Exit side of every dup: `ret` is the new fd (or -errno), `oldfd` the fd it copies. A failed
 * call never alerts; dup and fcntl pick the new fd only now. The new fd is the old one's
 * file, so "is it a socket" is asked once, of the new fd. */
static __always_inline int emit_dup(long ret, int oldfd, __u16 syscall)
{
	struct socket_dup_event *e;
	struct socket *sock;
	struct file *file;
	struct sock *sk;

	if (!within_stdio(ret))
		return 0;
	file = task_fd_file(bpf_get_current_task_btf(), (int)ret);
	sock = file_socket(file);
	if (!sock)
		return 0;
	sk = BPF_CORE_READ(sock, sk);

	if (!admit_detection((int)ret)) {
		count(SOCKEYE_HOOK_DUP, COUNT_LOST);
		return 0;
	}
	e = bpf_ringbuf_reserve(&detection_events, sizeof(*e), 0);
	if (!e) {
		count(SOCKEYE_HOOK_DUP, COUNT_LOST);
		return 0;
	}
	__builtin_memset(e, 0, sizeof(*e));
	fill_header(&e->hdr, SOCKEYE_EVENT_SOCKET_DUP, sizeof(*e));
	fill_task(&e->task, bpf_get_current_task_btf());
	e->oldfd = oldfd;
	e->newfd = (int)ret;
	e->syscall = syscall;
	e->sock_type = BPF_CORE_READ(sock, type);
	e->protocol = BPF_CORE_READ(sk, sk_protocol);
	fill_endpoints(e, sk);
	e->origin = socket_origin(sk, e->remote.port);
	e->sock_ino = BPF_CORE_READ(file, f_inode, i_ino);
	fill_stdio_brief(&e->stdio, bpf_get_current_task_btf());
	bpf_ringbuf_submit(e, submit_flags(RING_DETECTION, e->hdr.time_ns));
	count(SOCKEYE_HOOK_DUP, COUNT_EMITTED);
	return 0;
}

/* Each exit program first checks the result, so the common case (a new fd past stdio, or an
 * error) reads no register and no fd table. */
SEC("tp/syscalls/sys_exit_dup")
int handle_dup_exit(struct trace_event_raw_sys_exit *ctx)
{
	if (!within_stdio(ctx->ret))
		return 0;
	return emit_dup(ctx->ret, (int)PT_REGS_PARM1_SYSCALL(current_syscall_regs()), SOCKEYE_DUP_DUP);
}

SEC("tp/syscalls/sys_exit_dup2")
int handle_dup2_exit(struct trace_event_raw_sys_exit *ctx)
{
	if (!within_stdio(ctx->ret))
		return 0;
	return emit_dup(ctx->ret, (int)PT_REGS_PARM1_SYSCALL(current_syscall_regs()), SOCKEYE_DUP_DUP2);
}

SEC("tp/syscalls/sys_exit_dup3")
int handle_dup3_exit(struct trace_event_raw_sys_exit *ctx)
{
	if (!within_stdio(ctx->ret))
		return 0;
	return emit_dup(ctx->ret, (int)PT_REGS_PARM1_SYSCALL(current_syscall_regs()), SOCKEYE_DUP_DUP3);
}

/* fcntl returns small numbers for many commands (F_GETFD gives 0 or 1): only F_DUPFD and
 * F_DUPFD_CLOEXEC return an fd. The command is compared as the kernel reads it, an unsigned
 * int: garbage in the register's upper half must not hide an F_DUPFD. */
SEC("tp/syscalls/sys_exit_fcntl")
int handle_fcntl_exit(struct trace_event_raw_sys_exit *ctx)
{
	struct pt_regs *regs;
	unsigned int cmd;

	if (!within_stdio(ctx->ret))
		return 0;
	regs = current_syscall_regs();
	cmd = (unsigned int)PT_REGS_PARM2_SYSCALL(regs);
	if (cmd != F_DUPFD && cmd != F_DUPFD_CLOEXEC)
		return 0;
	return emit_dup(ctx->ret, (int)PT_REGS_PARM1_SYSCALL(regs), SOCKEYE_DUP_FCNTL);
}

/* ---- accepted sockets ----------------------------------------------------------------- */

static __always_inline int remember_accepted(long fd)
{
	struct accepted_sock id;
	struct socket *sock;
	struct sock *sk;
	__u64 sk_key;

	if (fd < 0)
		return 0;
	sock = current_fd_socket((int)fd);
	if (!sock)
		return 0;
	sk = BPF_CORE_READ(sock, sk);
	sk_key = (__u64)sk;
	id = sock_identity(sk);
	if (bpf_map_update_elem(&accepted_socks, &sk_key, &id, BPF_ANY))
		count(SOCKEYE_HOOK_ACCEPT, COUNT_ERRORS);
	return 0;
}

SEC("tp/syscalls/sys_exit_accept")
int handle_accept_exit(struct trace_event_raw_sys_exit *ctx)
{
	return remember_accepted(ctx->ret);
}

SEC("tp/syscalls/sys_exit_accept4")
int handle_accept4_exit(struct trace_event_raw_sys_exit *ctx)
{
	return remember_accepted(ctx->ret);
}

/* ---- ia32 syscalls (opt-in) ----------------------------------------------------------- */

/*
 * Syscall tracepoints skip ia32 syscalls (the kernel's trace_get_syscall_nr returns -1 for
 * them on x86-64), so a 32-bit binary, or a 64-bit one that uses int $0x80, dups a socket onto
 * stdio unseen by every program above. The raw sys_exit tracepoint sees every syscall: this
 * program keeps the ia32 ones and hands them to the same code. It runs on every syscall of
 * the host, though (about 90 ns each here: bench/README.md, change 21), so the loader attaches
 * it only when asked (LoadOptions::compat_syscalls).
 */
#if defined(__TARGET_ARCH_x86)

static __always_inline int compat_connect_exit(int fd, __u32 addr, int addrlen, long ret)
{
	if (!compat_connect || (!connect_all_fds && !within_stdio(fd)))
		return 0;
	emit_connect(current_fd_socket(fd), (const void *)(unsigned long)addr, addrlen, 1, fd, (int)ret,
		     SOCKEYE_CONNECT_TRACEPOINT);
	return 0;
}
#endif

SEC("tp_btf/sys_exit")
int BPF_PROG(handle_compat_exit, struct pt_regs *regs, long ret)
{
#if defined(__TARGET_ARCH_x86)
	struct task_struct *task = bpf_get_current_task_btf();
	__u32 args[3] = {};
	long nr;

	if (!(task->thread_info.status & TS_COMPAT))
		return 0;
	/* ia32 arguments: ebx, ecx, edx; each a 32-bit value. */
	nr = regs->orig_ax;
	switch (nr) {
	case IA32_DUP:
		return emit_dup(ret, (int)regs->bx, SOCKEYE_DUP_DUP);
	case IA32_DUP2:
		return emit_dup(ret, (int)regs->bx, SOCKEYE_DUP_DUP2);
	case IA32_DUP3:
		return emit_dup(ret, (int)regs->bx, SOCKEYE_DUP_DUP3);
	case IA32_FCNTL:
	case IA32_FCNTL64:
		if ((__u32)regs->cx != F_DUPFD && (__u32)regs->cx != F_DUPFD_CLOEXEC)
			return 0;
		return emit_dup(ret, (int)regs->bx, SOCKEYE_DUP_FCNTL);
	case IA32_CONNECT:
		return compat_connect_exit((int)regs->bx, (__u32)regs->cx, (int)regs->dx, ret);
	/* Accepted sockets, so that a 32-bit inetd-style service's stdio socket is known inbound. */
	case IA32_ACCEPT4:
		return remember_accepted(ret);
	case IA32_SOCKETCALL:
		if ((__u32)regs->bx == SOCKETCALL_ACCEPT || (__u32)regs->bx == SOCKETCALL_ACCEPT4)
			return remember_accepted(ret);
		/* socketcall(call, args): args points at the call's arguments as 32-bit words. */
		if ((__u32)regs->bx != SOCKETCALL_CONNECT || !compat_connect)
			return 0;
		if (bpf_probe_read_user(args, sizeof(args), (const void *)(unsigned long)(__u32)regs->cx))
			return 0;
		return compat_connect_exit((int)args[0], args[1], (int)args[2], ret);
	}
#endif
	return 0;
}

/* ---- process lifecycle ---------------------------------------------------------------- */

/* What fd `fd` of `task` is. Runs at exec, after close-on-exec: what the new program really
 * has. Identities (inode numbers, peer inode, terminal index) let userspace join the records
 * of both ends of a pipe, socketpair or pty. */
static __always_inline void fill_stdio_fd(struct stdio_fd *out, struct task_struct *task, int fd)
{
	struct file *file = task_fd_file(task, fd);
	struct inode *inode;
	__u32 mode, major, minor, rdev;

	out->tty_index = -1;
	if (!file) {
		out->kind = SOCKEYE_FD_CLOSED;
		return;
	}
	inode = BPF_CORE_READ(file, f_inode);
	mode = BPF_CORE_READ(inode, i_mode) & S_IFMT;
	out->ino = BPF_CORE_READ(inode, i_ino);
	if (mode == S_IFSOCK) {
		struct socket *sock = BPF_CORE_READ(file, private_data);
		struct sock *sk = BPF_CORE_READ(sock, sk);

		out->sock_type = BPF_CORE_READ(sock, type);
		out->family = BPF_CORE_READ(sk, __sk_common.skc_family);
		if (out->family == AF_INET || out->family == AF_INET6) {
			out->kind = SOCKEYE_FD_INET;
			FILL_ENDPOINTS(out, sk);
			out->origin = socket_origin(sk, out->remote.port);
		} else if (out->family == AF_UNIX) {
			struct unix_sock *u = (struct unix_sock *)sk;

			out->kind = SOCKEYE_FD_UNIX;
			out->peer_ino = BPF_CORE_READ(u, peer, sk_socket, file, f_inode, i_ino);
		} else {
			out->kind = SOCKEYE_FD_SOCKET;
		}
	} else if (mode == S_IFIFO) {
		out->kind = BPF_CORE_READ(inode, i_sb, s_magic) == PIPEFS_MAGIC ? SOCKEYE_FD_PIPE : SOCKEYE_FD_FIFO;
		out->dev = BPF_CORE_READ(inode, i_sb, s_dev);
	} else if (mode == S_IFCHR) {
		rdev = BPF_CORE_READ(inode, i_rdev);
		major = rdev >> 20;
		minor = rdev & 0xfffff;
		out->dev = rdev;
		if (major == TTY_MAJOR || (major == TTYAUX_MAJOR && minor <= 2) ||
		    (major >= UNIX98_PTY_SLAVE_MAJOR && major < UNIX98_PTY_SLAVE_MAJOR + UNIX98_PTY_MAJOR_COUNT)) {
			/* A tty file's private_data is its struct tty_file_private. */
			struct tty_file_private *priv = BPF_CORE_READ(file, private_data);
			struct tty_struct *tty = BPF_CORE_READ(priv, tty);

			out->kind = major == TTYAUX_MAJOR && minor == 2 ? SOCKEYE_FD_PTY_MASTER : SOCKEYE_FD_TTY;
			out->tty_index = BPF_CORE_READ(tty, index);
			if (tty && tty == BPF_CORE_READ(task, signal, tty))
				out->flags |= SOCKEYE_FD_CTTY;
		} else {
			out->kind = SOCKEYE_FD_CHARDEV;
		}
	} else if (mode == S_IFREG) {
		out->kind = SOCKEYE_FD_REGULAR;
		out->dev = BPF_CORE_READ(inode, i_sb, s_dev);
	} else {
		out->kind = SOCKEYE_FD_OTHER;
	}
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(handle_exec, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
	__u32 zero = 0;
	struct exec_event *e = bpf_map_lookup_elem(&exec_scratch, &zero);
	unsigned long arg_start, arg_end, args_len;
	long filename_len;
	__u32 size;

	if (!e)
		return 0;
	fill_header(&e->hdr, SOCKEYE_EVENT_EXEC, 0);
	fill_task(&e->task, task);
	e->filename_truncated = 0;
	e->args_truncated = 0;
	e->pad = 0;
	e->pad2 = 0;
	__builtin_memset(e->stdio, 0, sizeof(e->stdio));
	fill_stdio_fd(&e->stdio[0], task, 0);
	fill_stdio_fd(&e->stdio[1], task, 1);
	fill_stdio_fd(&e->stdio[2], task, 2);
	e->loginuid = bpf_core_field_exists(task->loginuid) ? BPF_CORE_READ(task, loginuid.val) : (__u32)-1;

	filename_len = bpf_probe_read_kernel_str(e->data, SOCKEYE_FILENAME_MAX, BPF_CORE_READ(bprm, filename));
	if (filename_len <= 0) {
		count(SOCKEYE_HOOK_EXEC, COUNT_ERRORS);
		filename_len = 1;
		e->data[0] = 0;
	}
	filename_len -= 1; /* drop the NUL */
	if (filename_len >= SOCKEYE_FILENAME_MAX - 1)
		e->filename_truncated = 1;
	filename_len &= SOCKEYE_FILENAME_MAX - 1;

	arg_start = BPF_CORE_READ(task, mm, arg_start);
	arg_end = BPF_CORE_READ(task, mm, arg_end);
	args_len = arg_end > arg_start ? arg_end - arg_start : 0;
	if (args_len > SOCKEYE_ARGS_MAX - 1) {
		args_len = SOCKEYE_ARGS_MAX - 1;
		e->args_truncated = 1;
	}
	/* Masks give the verifier its bounds: filename < FILENAME_MAX, args < ARGS_MAX. */
	args_len &= SOCKEYE_ARGS_MAX - 1;
	if (args_len && bpf_probe_read_user(e->data + filename_len, args_len, (const void *)arg_start)) {
		count(SOCKEYE_HOOK_EXEC, COUNT_ERRORS);
		args_len = 0;
	}
	e->filename_len = filename_len;
	e->args_len = args_len;

	size = SOCKEYE_EXEC_FIXED_SIZE + filename_len + args_len;
	e->hdr.size = size;
	if (size > sizeof(*e))
		return 0; /* cannot happen; tells the verifier the output stays inside *e */
	/* A program that starts with an inet socket on stdio is a detection however the socket
	 * got there (SCM_RIGHTS, pidfd_getfd, io_uring): its record takes the detection ring,
	 * where an exec flood cannot push it out. */
	if (e->stdio[0].kind == SOCKEYE_FD_INET || e->stdio[1].kind == SOCKEYE_FD_INET ||
	    e->stdio[2].kind == SOCKEYE_FD_INET) {
		if (bpf_ringbuf_output(&detection_events, e, size, submit_flags(RING_DETECTION, e->hdr.time_ns))) {
			count(SOCKEYE_HOOK_EXEC, COUNT_LOST);
			return 0;
		}
	} else if (bpf_ringbuf_output(&process_events, e, size, process_submit_flags(e->hdr.time_ns))) {
		count(SOCKEYE_HOOK_EXEC, COUNT_LOST);
		return 0;
	}
	count(SOCKEYE_HOOK_EXEC, COUNT_EMITTED);
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(handle_fork, struct task_struct *parent, struct task_struct *child)
{
	struct fork_event *e;

	/* New threads also pass here; the process table wants processes only. */
	if (BPF_CORE_READ(child, pid) != BPF_CORE_READ(child, tgid))
		return 0;
	e = bpf_ringbuf_reserve(&process_events, sizeof(*e), 0);
	if (!e) {
		count(SOCKEYE_HOOK_FORK, COUNT_LOST);
		return 0;
	}
	fill_header(&e->hdr, SOCKEYE_EVENT_FORK, sizeof(*e));
	fill_task(&e->task, child);
	bpf_ringbuf_submit(e, process_submit_flags(e->hdr.time_ns));
	count(SOCKEYE_HOOK_FORK, COUNT_EMITTED);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(handle_exit, struct task_struct *task)
{
	struct exit_event *e;

	/* do_exit drops signal->live before this tracepoint: 0 means the last thread is leaving. */
	if (BPF_CORE_READ(task, signal, live.counter) != 0)
		return 0;
	e = bpf_ringbuf_reserve(&process_events, sizeof(*e), 0);
	if (!e) {
		count(SOCKEYE_HOOK_EXIT, COUNT_LOST);
		return 0;
	}
	fill_header(&e->hdr, SOCKEYE_EVENT_EXIT, sizeof(*e));
	fill_task(&e->task, task);
	e->exit_code = BPF_CORE_READ(task, exit_code);
	e->pad = 0;
	bpf_ringbuf_submit(e, process_submit_flags(e->hdr.time_ns));
	count(SOCKEYE_HOOK_EXIT, COUNT_EMITTED);
	return 0;
}
