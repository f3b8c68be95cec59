/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What every hook area of sockeye's kernel side shares: kernel types and constants, the
 * load-time settings and maps more than one area uses (declared here, defined once, in
 * common.bpf.c), and the helpers that fill and submit records. Each area is its own .bpf.c
 * and owns what only it uses; the build links them into one object (bpf/README.md).
 *
 * Capabilities and their candidate programs (userspace turns the losers off with
 * bpf_program__set_autoload before load; the table is in native/loader.cc):
 *   connect:     handle_connect_lsm  >  handle_connect_fentry  >  handle_connect_exit
 *   socket_dup:  handle_{dup,dup2,dup3,fcntl}_exit  (syscall exit tracepoints)
 *   accept:      handle_accept{,4}_exit  (marks inbound sockets for socket_dup's origin)
 *   compat:      handle_compat_exit  (tp_btf/sys_exit: ia32 syscalls; opt-in, see there)
 *   process:     handle_exec, handle_fork, handle_exit  (tp_btf sched_process_*)
 *   relay:       handle_outbound_connect_exit  (tp/syscalls/sys_exit_connect; outbound TCP
 *                connects on fds past stdio, on their own ring)
 *   task_access: how every program reaches the current task and its syscall's arguments:
 *                bpf_get_current_task_btf + bpf_task_pt_regs (5.15+)  >
 *                bpf_get_current_task_btf + handle_*_enter stashes (5.11+)  >
 *                bpf_get_current_task + CO-RE reads + handle_*_enter stashes (5.8+)
 *
 * Filtering happens in the kernel (design.md §2): a dup whose old fd is not a socket, or whose
 * new fd is past stdio_fd_max, never leaves it; a connect on an fd past stdio_fd_max neither,
 * unless connect_all_fds is set.
 */
#ifndef SOCKEYE_COMMON_BPF_H
#define SOCKEYE_COMMON_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>
#include "sockeye_events.h"

/* vmlinux.h carries types, not macros. */
#define AF_UNIX 1
#define AF_INET 2
#define AF_INET6 10
#define S_IFMT 00170000
#define S_IFSOCK 0140000
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
extern const volatile __s32 stdio_fd_max;
/* Connects on every fd leave the kernel, not only those on stdio. */
extern const volatile __u8 connect_all_fds;
/* Wakeup policy of both rings (submit_flags). */
extern const volatile __u64 wakeup_interval_ns;
/* How the programs reach the current task and its syscall's arguments (the task_access row of
 * native/loader.cc): the loader clears these on kernels without the helper. */
extern const volatile __u8 use_current_task_btf; /* bpf_get_current_task_btf: 5.11+ */
extern const volatile __u8 use_task_pt_regs;     /* bpf_task_pt_regs: 5.15+ */
/* Shedding of repeated detections under pressure (admit_detection). */
extern const volatile __u8 detection_pressure_eighths;
extern const volatile __u64 detection_repeat_window_ns;

/*
 * Maps more than one area uses. The linker takes an extern map only when its definition
 * matches field for field: declaration and definition go through one named struct type.
 */

/* Detections (connect, socket_dup) get their own small ring so that an exec flood can never
 * push one out: the process ring can fill up and lose records while this one stays empty. */
struct detection_events_map {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
};
extern struct detection_events_map detection_events SEC(".maps");

enum ring_id { RING_DETECTION = 0, RING_PROCESS = 1, RING_COUNT = 2 };

/* Per CPU and ring: when a record last woke the reader (ns, bpf_ktime_get_ns). */
struct ring_last_wakeup_map {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, RING_COUNT);
	__type(key, __u32);
	__type(value, __u64);
};
extern struct ring_last_wakeup_map ring_last_wakeup SEC(".maps");

/* (tgid << 32 | fd) -> when its last detection record was admitted under pressure. */
struct detection_admitted_map {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u64);
	__type(value, __u64);
};
extern struct detection_admitted_map detection_admitted SEC(".maps");

struct hook_counters_map {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SOCKEYE_HOOK_COUNT);
	__type(key, __u32);
	__type(value, struct hook_counter);
};
extern struct hook_counters_map hook_counters SEC(".maps");

/* Sockets returned by accept()/accept4(), keyed by struct sock address. LRU: a busy server
 * accepts far more sockets than ever reach stdio, and old entries may go. A freed sock's
 * memory is reused for new sockets and we see no free (no kprobes), so the value holds the
 * connection's ports and peer address: a lookup counts only when they still match. */
struct accepted_sock {
	__u32 peer_addr; /* IPv4 address, or the last 4 bytes of an IPv6 one */
	__u16 local_port;
	__u16 peer_port;
};

struct accepted_socks_map {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct accepted_sock);
};
extern struct accepted_socks_map accepted_socks SEC(".maps");

/*
 * Which helpers the running kernel lets the programs call. Each test is a constant at load time
 * (the loader's setting, frozen in .rodata, and a CO-RE relocation against the kernel's own
 * enum bpf_func_id), so the verifier walks only the live branch: the other may call a helper the
 * kernel does not know, and the fast path of a kernel that has the helpers costs nothing.
 */
#define HAVE_CURRENT_TASK_BTF \
	(use_current_task_btf && bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_get_current_task_btf))
/* bpf_task_pt_regs takes a BTF task pointer: it comes with bpf_get_current_task_btf. */
#define HAVE_TASK_PT_REGS \
	(HAVE_CURRENT_TASK_BTF && use_task_pt_regs && bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_task_pt_regs))

/*
 * Every read through a task pointer goes through TASK_READ (or the helpers below). Where the
 * kernel has bpf_get_current_task_btf, task pointers are BTF pointers (that helper's result, a
 * tp_btf argument): plain loads, which the verifier makes fault-safe, instead of one
 * bpf_probe_read_kernel call per field (about 30 ns a call on the CI machine kind).
 * Before 5.11 the current task is a plain number (bpf_get_current_task) that only
 * bpf_probe_read_kernel may follow, so then every task is read with BPF_CORE_READ.
 */
#define TASK_READ(task, field) (HAVE_CURRENT_TASK_BTF ? (task)->field : BPF_CORE_READ(task, field))

static __always_inline struct task_struct *current_task(void)
{
	if (HAVE_CURRENT_TASK_BTF)
		return bpf_get_current_task_btf();
	return (struct task_struct *)bpf_get_current_task();
}

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

/* Context records (exec, fork, exit, outbound connects) wake nobody below a fill level of
 * their ring, in eighths: the reader reads every ring at each detection's wakeup and at least
 * once per poll timeout. Past the level a flood wakes it as detections do, before the ring
 * overflows. They share the process ring's wakeup slot. */
static __always_inline __u64 context_submit_flags(void *ring, __u8 wakeup_eighths, __u64 now)
{
	__u64 size = bpf_ringbuf_query(ring, BPF_RB_RING_SIZE);
	__u64 used = bpf_ringbuf_query(ring, BPF_RB_AVAIL_DATA);

	if (used * 8 < size * wakeup_eighths)
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
 * `task` is current_task() or a tp_btf argument (see TASK_READ). */
static __always_inline void fill_task(struct task_context *c, struct task_struct *task)
{
	if (HAVE_CURRENT_TASK_BTF) {
		struct task_struct *parent = task->real_parent;
		const struct cred *cred = task->real_cred;

		c->pid = task->tgid;
		c->tid = task->pid;
		c->ppid = parent->tgid;
		c->uid = cred->uid.val;
		c->gid = cred->gid.val;
		c->start_ns = task->group_leader->start_boottime;
		/* comm is always NUL-terminated within its 16 bytes: a fixed-size copy is enough. */
		__builtin_memcpy(c->comm, task->comm, sizeof(c->comm));
		__builtin_memcpy(c->parent_comm, parent->comm, sizeof(c->parent_comm));
	} else {
		struct task_struct *parent = BPF_CORE_READ(task, real_parent);

		c->pid = BPF_CORE_READ(task, tgid);
		c->tid = BPF_CORE_READ(task, pid);
		c->ppid = BPF_CORE_READ(parent, tgid);
		c->uid = BPF_CORE_READ(task, real_cred, uid.val);
		c->gid = BPF_CORE_READ(task, real_cred, gid.val);
		c->start_ns = BPF_CORE_READ(task, group_leader, start_boottime);
		BPF_CORE_READ_INTO(&c->comm, task, comm);
		BPF_CORE_READ_INTO(&c->parent_comm, parent, comm);
	}
	c->pad = 0;
	c->cgroup_id = bpf_get_current_cgroup_id();
}

static __always_inline struct file *task_fd_file(struct task_struct *task, int fd)
{
	struct file **fds;
	struct file *file = NULL;
	unsigned int max_fds;

	if (HAVE_CURRENT_TASK_BTF) {
		struct fdtable *fdt = task->files->fdt;

		max_fds = fdt->max_fds;
		fds = fdt->fd;
	} else {
		struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);

		max_fds = BPF_CORE_READ(fdt, max_fds);
		fds = BPF_CORE_READ(fdt, fd);
	}
	if (fd < 0 || (unsigned int)fd >= max_fds)
		return NULL;
	/* A pointer to pointers loads as a plain number: the slot itself needs a helper. */
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
	return file_socket(task_fd_file(current_task(), fd));
}

static __always_inline int within_stdio(long fd)
{
	return fd >= 0 && fd <= stdio_fd_max;
}

#if defined(__TARGET_ARCH_x86)
/* The syscall in progress is an ia32 one (a 32-bit binary, or int $0x80). */
static __always_inline int current_in_compat_syscall(void)
{
	return TASK_READ(current_task(), thread_info.status) & TS_COMPAT;
}
#endif

/* The registers of the syscall the current task is in; only where HAVE_TASK_PT_REGS (5.15+).
 * At a syscall's exit tracepoint they still hold the caller's arguments (x86-64 keeps them in
 * pt_regs; on arm64 the first one is orig_x0, which PT_REGS_PARM1_SYSCALL reads), so there the
 * exit programs need no enter program and no map to carry them: each enter tracepoint cost
 * about 250 ns on every call of its syscall, and the map 150 ns more on each matching one
 * (measured on the CI machine kind). */
static __always_inline struct pt_regs *current_syscall_regs(void)
{
	return (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
}

/*
 * Before 5.15 (no bpf_task_pt_regs) a syscall's arguments are gone at its exit tracepoint, so
 * the enter programs (handle_*_enter, loaded only then) stash those of the calls that can
 * matter, per thread, and the exit programs and the connect hooks take them from here. A
 * thread is in one syscall at a time; `nr` says which one an entry is for.
 */
struct stashed_syscall {
	__s64 nr;
	__u64 args[3];
};

/* Entries are few and short-lived (a thread's one syscall in flight); LRU: a thread that dies
 * inside a stashed syscall leaves one behind. Sized by the loader (1 when nothing stashes). */
struct stashed_syscalls_map {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct stashed_syscall);
};
extern struct stashed_syscalls_map stashed_syscalls SEC(".maps");

/* At a syscall's enter tracepoint: keep its first `nargs` (1 to 3) arguments for its exit
 * (keep), or drop what an earlier call of this thread left (!keep), so that an exit never reads
 * a stale one. A tracepoint's record holds only its syscall's arguments, and the kernel refuses
 * to attach a program that reads past it (EACCES): hence nargs, a constant at each call. */
static __always_inline void stash_syscall(struct trace_event_raw_sys_enter *ctx, int nargs, int keep)
{
	__u64 key = bpf_get_current_pid_tgid();
	struct stashed_syscall s = {};

	if (!keep) {
		bpf_map_delete_elem(&stashed_syscalls, &key);
		return;
	}
	s.nr = ctx->id;
	s.args[0] = ctx->args[0];
	if (nargs > 1)
		s.args[1] = ctx->args[1];
	if (nargs > 2)
		s.args[2] = ctx->args[2];
	bpf_map_update_elem(&stashed_syscalls, &key, &s, BPF_ANY);
}

/* What the current thread stashed for syscall `nr`, or NULL. */
static __always_inline struct stashed_syscall *stashed_syscall(long nr)
{
	__u64 key = bpf_get_current_pid_tgid();
	struct stashed_syscall *s = bpf_map_lookup_elem(&stashed_syscalls, &key);

	return s && s->nr == nr ? s : NULL;
}

/* At a syscall's exit tracepoint: its first three arguments into args. False when they are
 * not to be had (before 5.15, a call its enter program did not stash). */
static __always_inline int syscall_exit_args(struct trace_event_raw_sys_exit *ctx, unsigned long args[3])
{
	struct stashed_syscall *s;

	if (HAVE_TASK_PT_REGS) {
		struct pt_regs *regs = current_syscall_regs();

		args[0] = PT_REGS_PARM1_SYSCALL(regs);
		args[1] = PT_REGS_PARM2_SYSCALL(regs);
		args[2] = PT_REGS_PARM3_SYSCALL(regs);
		return 1;
	}
	s = stashed_syscall(ctx->id);
	if (!s)
		return 0;
	args[0] = s->args[0];
	args[1] = s->args[1];
	args[2] = s->args[2];
	return 1;
}

#endif /* SOCKEYE_COMMON_BPF_H */
