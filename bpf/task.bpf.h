/* SPDX-License-Identifier: GPL-2.0-only */
/* Task access: how every program reaches the current task, its fds and its syscall's
 * arguments on 5.8 to 6.18 (the task_access capability; bpf/README.md). */
#ifndef SOCKEYE_TASK_BPF_H
#define SOCKEYE_TASK_BPF_H

#include "common.bpf.h"

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

/*
 * The task's namespaces and its pid inside its own pid namespace. Read with CO-RE probes on
 * every kernel: the pid's `numbers[]` is indexed by the namespace level, a variable offset that
 * a BTF pointer may not take. nsproxy is NULL once a task is past exit_task_namespaces.
 */
static __always_inline void fill_namespaces(struct task_context *c, struct task_struct *task)
{
	struct nsproxy *ns = BPF_CORE_READ(task, nsproxy);
	struct pid *pid = BPF_CORE_READ(task, group_leader, thread_pid);
	unsigned int level;
	struct upid upid = {};

	c->ns_pid = 0;
	c->pid_ns = 0;
	c->mnt_ns = 0;
	c->net_ns = 0;
	if (ns) {
		c->mnt_ns = BPF_CORE_READ(ns, mnt_ns, ns.inum);
		c->net_ns = BPF_CORE_READ(ns, net_ns, ns.inum);
	}
	if (!pid)
		return;
	level = BPF_CORE_READ(pid, level);
	/* Pid namespaces nest at most 32 deep (MAX_PID_NS_LEVEL). */
	if (bpf_core_read(&upid, sizeof(upid), &pid->numbers[level & 31]) == 0) {
		c->ns_pid = upid.nr;
		c->pid_ns = BPF_CORE_READ(upid.ns, ns.inum);
	}
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
	c->ns_pid = 0;
	c->pid_ns = 0;
	c->mnt_ns = 0;
	c->net_ns = 0;
}

/* fill_task and the namespaces: for the records findings are made from (connect, dup, exec,
 * outbound). Fork and exit, the hottest records, leave them 0 (not known): nothing reads them
 * there, and the reads cost ~200 ns a record (bench/prog-cost.sh). */
static __always_inline void fill_task_namespaced(struct task_context *c, struct task_struct *task)
{
	fill_task(c, task);
	fill_namespaces(c, task);
}

/*
 * The task's effective and permitted capabilities (its objective credentials, as /proc shows
 * them). kernel_cap_t is one u64 since 6.3 and two u32, low word first, before: the same 8
 * bytes on a little-endian machine, so each set is read whole and neither layout's member is
 * named. Returns 1 when both were read, 0 (sets zeroed) when a read failed.
 */
static __always_inline __u8 fill_cap_sets(struct cap_sets *caps, struct task_struct *task)
{
	const struct cred *cred = TASK_READ(task, real_cred);

	if (bpf_core_read(&caps->effective, sizeof(caps->effective), &cred->cap_effective) ||
	    bpf_core_read(&caps->permitted, sizeof(caps->permitted), &cred->cap_permitted)) {
		caps->effective = 0;
		caps->permitted = 0;
		return 0;
	}
	return 1;
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

#endif /* SOCKEYE_TASK_BPF_H */
