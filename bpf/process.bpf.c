// SPDX-License-Identifier: GPL-2.0-only
/*
 * process: exec, fork and exit records on their own ring, the context a detection is judged in
 * (the process table in src/process/).
 */
#include "common.bpf.h"
#include "stdio.bpf.h"

/* An exec record is too large for the BPF stack; it is built here, then copied out with
 * only the bytes in use. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct exec_event);
} exec_scratch SEC(".maps");

/* Shells whose exec may wake the reader (relay_candidate), by comm, NUL-padded to its 16
 * bytes: the loader fills it from the TypeScript list (src/sensor/shells.ts) and freezes it. */
#define WAKEUP_SHELLS_MAX 64
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, WAKEUP_SHELLS_MAX);
	__type(key, char[SOCKEYE_COMM_LEN]);
	__type(value, __u8);
} wakeup_shells SEC(".maps");

static __always_inline int is_wakeup_shell(const char *comm)
{
	char key[SOCKEYE_COMM_LEN] = {};

	/* Past its NUL, comm may hold an older name's bytes (5.10 sets it with strlcpy, no
	 * padding): copied up to the NUL only. SOCKEYE_COMM_LEN iterations, unrolled. */
#pragma unroll
	for (int i = 0; i < SOCKEYE_COMM_LEN; i++) {
		if (!comm[i])
			break;
		key[i] = comm[i];
	}
	return bpf_map_lookup_elem(&wakeup_shells, key) != NULL;
}

static __always_inline int relayable(__u8 kind)
{
	return kind == SOCKEYE_FD_PIPE || kind == SOCKEYE_FD_FIFO || kind == SOCKEYE_FD_UNIX || kind == SOCKEYE_FD_TTY;
}

/*
 * A shell whose stdin and stdout or stderr a relay can hold (pipe, FIFO, socketpair, pty):
 * RELAY-001 reads /proc of it and its relay while they still run, so its exec record wakes the
 * reader (at most once per wakeup interval, as detections) instead of waiting for the poll
 * timeout, which a relay living less than it would not outlive. A hint only, by name and argc: the
 * rule's own test (src/rules/stdio/interpreters.ts) decides, and other interpreters wait.
 */
static __always_inline int relay_candidate(const struct exec_event *e, int argc)
{
	/* `sh -c CMD` (argc >= 3) runs its argument, not stdin: what make, system() and popen
	 * start by the thousand in a build, each of which would otherwise wake the reader. A shell
	 * reading stdin is started bare or with one option or script (`sh`, `bash -i`, `sh -s`). */
	if (argc > 2)
		return 0;
	if (!relayable(e->stdio[0].kind) || !(relayable(e->stdio[1].kind) || relayable(e->stdio[2].kind)))
		return 0;
	return is_wakeup_shell(e->task.comm);
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(handle_exec, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
	__u32 zero = 0;
	struct exec_event *e = bpf_map_lookup_elem(&exec_scratch, &zero);
	unsigned long arg_start, arg_end, args_len;
	long filename_len;
	__u32 size;
	int reason;

	if (!e)
		return 0;
	fill_header(&e->hdr, SOCKEYE_EVENT_EXEC, 0);
	fill_task_namespaced(&e->task, task);
	e->filename_truncated = 0;
	e->args_truncated = 0;
	/* The session at the exec, what Elastic's entry leader is decided from: a short-lived
	 * program is gone from /proc before a rule reads it (signal->pids since 4.19). */
	e->sid = BPF_CORE_READ(task, signal, pids[PIDTYPE_SID], numbers[0].nr);
	e->sid_known = 1;
	__builtin_memset(e->stdio, 0, sizeof(e->stdio));
	fill_stdio_fd(&e->stdio[0], task, 0);
	fill_stdio_fd(&e->stdio[1], task, 1);
	fill_stdio_fd(&e->stdio[2], task, 2);
	e->loginuid = bpf_core_field_exists(task->loginuid) ? BPF_CORE_READ(task, loginuid.val) : (__u32)-1;
	e->caps_known = fill_cap_sets(&e->caps, task);
	if (!e->caps_known)
		count(SOCKEYE_HOOK_EXEC, COUNT_ERRORS);

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
	 * where an exec flood cannot push it out, within the share of large records. */
	if (e->stdio[0].kind == SOCKEYE_FD_INET || e->stdio[1].kind == SOCKEYE_FD_INET ||
	    e->stdio[2].kind == SOCKEYE_FD_INET) {
		reason = admit_large_detection(size, e->task.uid);
		if (reason != ADMITTED) {
			count_drop(SOCKEYE_HOOK_EXEC, SOCKEYE_RING_DETECTION, reason);
			return 0;
		}
		if (bpf_ringbuf_output(&detection_events, e, size, submit_flags(SOCKEYE_RING_DETECTION, e->hdr.time_ns))) {
			count_drop(SOCKEYE_HOOK_EXEC, SOCKEYE_RING_DETECTION, SOCKEYE_DROP_RING_FULL);
			return 0;
		}
	} else if (bpf_ringbuf_output(&process_events, e, size,
				      relay_candidate(e, BPF_CORE_READ(bprm, argc)) ? submit_flags(SOCKEYE_RING_PROCESS, e->hdr.time_ns)
							 : process_submit_flags(e->hdr.time_ns))) {
		count_drop(SOCKEYE_HOOK_EXEC, SOCKEYE_RING_PROCESS, SOCKEYE_DROP_RING_FULL);
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
		count_drop(SOCKEYE_HOOK_FORK, SOCKEYE_RING_PROCESS, SOCKEYE_DROP_RING_FULL);
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
		count_drop(SOCKEYE_HOOK_EXIT, SOCKEYE_RING_PROCESS, SOCKEYE_DROP_RING_FULL);
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

/*
 * Credential and session changes (Elastic Defend's uid_change, gid_change and
 * session_id_change). The set*id calls are seen on their syscall tracepoints: the entry keeps
 * the ids the thread had, the exit compares them with the ids it has now and emits a record
 * only when the call succeeded and changed one (sshd's and sudo's calls that set what is
 * already set, and every refused call, make none). An unprivileged process cannot change its
 * ids without a setuid program or a capability, so these are rare; setsid is as cheap as a
 * fork, and its record as small as one: all go on the process ring, never the detection
 * ring, woken like the other process records. Syscall tracepoints skip ia32 syscalls
 * (setuid32 and friends): those changes go unseen (bpf/README.md).
 */
struct cred_ids {
	__u32 uid, euid, suid, gid, egid, sgid;
};

/* The ids a thread had entering a set*id call, by pid_tgid; LRU, so a thread that never
 * reaches the exit (killed in the call) cannot fill it. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, struct cred_ids);
} cred_before SEC(".maps");

static __always_inline void read_cred_ids(struct cred_ids *ids, struct task_struct *task)
{
	const struct cred *cred = BPF_CORE_READ(task, real_cred);

	ids->uid = BPF_CORE_READ(cred, uid.val);
	ids->euid = BPF_CORE_READ(cred, euid.val);
	ids->suid = BPF_CORE_READ(cred, suid.val);
	ids->gid = BPF_CORE_READ(cred, gid.val);
	ids->egid = BPF_CORE_READ(cred, egid.val);
	ids->sgid = BPF_CORE_READ(cred, sgid.val);
}

static __always_inline void cred_enter(void)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct cred_ids ids;

	read_cred_ids(&ids, current_task());
	bpf_map_update_elem(&cred_before, &id, &ids, BPF_ANY);
}

static __always_inline struct cred_change_event *cred_reserve(struct task_struct *task, __u16 syscall)
{
	struct cred_change_event *e = bpf_ringbuf_reserve(&process_events, sizeof(*e), 0);

	if (!e) {
		count_drop(SOCKEYE_HOOK_CRED_CHANGE, SOCKEYE_RING_PROCESS, SOCKEYE_DROP_RING_FULL);
		return NULL;
	}
	__builtin_memset(e, 0, sizeof(*e));
	fill_header(&e->hdr, SOCKEYE_EVENT_CRED_CHANGE, sizeof(*e));
	fill_task_namespaced(&e->task, task);
	e->syscall = syscall;
	return e;
}

/* The ids after the call (the real ones are in the task context) and before it; then sent. */
static __always_inline void cred_submit(struct cred_change_event *e, const struct cred_ids *now, const struct cred_ids *old)
{
	e->euid = now->euid;
	e->suid = now->suid;
	e->egid = now->egid;
	e->sgid = now->sgid;
	e->old_uid = old->uid;
	e->old_euid = old->euid;
	e->old_suid = old->suid;
	e->old_gid = old->gid;
	e->old_egid = old->egid;
	e->old_sgid = old->sgid;
	e->caps_known = fill_cap_sets(&e->caps, current_task());
	if (!e->caps_known)
		count(SOCKEYE_HOOK_CRED_CHANGE, COUNT_ERRORS);
	bpf_ringbuf_submit(e, process_submit_flags(e->hdr.time_ns));
	count(SOCKEYE_HOOK_CRED_CHANGE, COUNT_EMITTED);
}

static __always_inline int cred_exit(long ret, __u16 syscall)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct cred_ids *before = bpf_map_lookup_elem(&cred_before, &id);
	struct task_struct *task;
	struct cred_change_event *e;
	struct cred_ids old, now;
	__u8 changed = 0;

	if (!before)
		return 0;
	old = *before;
	bpf_map_delete_elem(&cred_before, &id);
	if (ret != 0)
		return 0;
	task = current_task();
	read_cred_ids(&now, task);
	if (now.uid != old.uid || now.euid != old.euid || now.suid != old.suid)
		changed |= SOCKEYE_CHANGED_UID;
	if (now.gid != old.gid || now.egid != old.egid || now.sgid != old.sgid)
		changed |= SOCKEYE_CHANGED_GID;
	if (!changed)
		return 0;
	e = cred_reserve(task, syscall);
	if (!e)
		return 0;
	e->changed = changed;
	cred_submit(e, &now, &old);
	return 0;
}

#define CRED_SYSCALL(name, code)                                                  \
	SEC("tp/syscalls/sys_enter_" #name)                                       \
	int handle_##name##_enter(struct trace_event_raw_sys_enter *ctx)          \
	{                                                                         \
		cred_enter();                                                     \
		return 0;                                                         \
	}                                                                         \
	SEC("tp/syscalls/sys_exit_" #name)                                        \
	int handle_##name##_exit(struct trace_event_raw_sys_exit *ctx)            \
	{                                                                         \
		return cred_exit(ctx->ret, code);                                 \
	}

CRED_SYSCALL(setuid, SOCKEYE_CRED_SETUID)
CRED_SYSCALL(setreuid, SOCKEYE_CRED_SETREUID)
CRED_SYSCALL(setresuid, SOCKEYE_CRED_SETRESUID)
CRED_SYSCALL(setgid, SOCKEYE_CRED_SETGID)
CRED_SYSCALL(setregid, SOCKEYE_CRED_SETREGID)
CRED_SYSCALL(setresgid, SOCKEYE_CRED_SETRESGID)

/* setsid returns the new session id (the caller's pid) or -EPERM (already a group leader):
 * a success is always a change, so no entry program is needed. */
SEC("tp/syscalls/sys_exit_setsid")
int handle_setsid_exit(struct trace_event_raw_sys_exit *ctx)
{
	struct task_struct *task;
	struct cred_change_event *e;
	struct cred_ids now;

	if (ctx->ret <= 0)
		return 0;
	task = current_task();
	e = cred_reserve(task, SOCKEYE_CRED_SETSID);
	if (!e)
		return 0;
	read_cred_ids(&now, task);
	e->changed = SOCKEYE_CHANGED_SESSION;
	e->sid = (__u32)ctx->ret;
	cred_submit(e, &now, &now); /* a session change leaves the ids as they were */
	return 0;
}
