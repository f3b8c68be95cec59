// SPDX-License-Identifier: GPL-2.0-only
/*
 * enforce: stop a reverse shell in the kernel at the moment its shape forms (issue 28,
 * docs/enforcement.md). Loaded only with `[enforce] mode = "on"`; dry-run reports the same
 * decision from userspace (src/enforce/kernel-decision.ts) and loads nothing here.
 *
 * The shape: an interpreter (by name, or by the device and inode of a host interpreter's
 * executable) whose fd 0 and fd 1 or 2 are connected inet sockets that were not seen being
 * accepted and do not come from a listener (socket_origin: a passive socket whose accept mark
 * an accept flood evicted is never stopped here, docs/design.md "Accepted or connected").
 * Where it is judged:
 *  - lsm/bprm_check_security: the exec of such an interpreter is denied (-EPERM) before the
 *    new image exists. It runs before close-on-exec, so an fd marked close-on-exec does not
 *    count: the program would not have it.
 *  - tp_btf/sched_process_exec (where the BPF LSM is not active): SIGKILL before the new image
 *    runs an instruction (bpf_send_signal acts on the current task, delivered on its way back
 *    to userspace).
 *  - tp/syscalls/sys_exit_{dup,dup2,dup3,fcntl}: the call that completes the shape inside a
 *    running interpreter (bash `>& /dev/tcp/H/P 0>&1`, python's os.dup2): SIGKILL before the
 *    call returns to userspace.
 */
#include "common.bpf.h"
#include "sock.bpf.h"

#define SIGKILL 9
#define EPERM 1

/* Interpreters by comm (the base name of what was executed, cut to 15 bytes), NUL-padded:
 * filled by the loader from src/enforce/interpreters.ts and frozen. */
#define ENFORCE_NAMES_MAX 128
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ENFORCE_NAMES_MAX);
	__type(key, char[SOCKEYE_COMM_LEN]);
	__type(value, __u8);
} enforce_names SEC(".maps");

/* Interpreters by the identity of their executable: a copy under another name is still the
 * same inode only if hard-linked; a renamed copy is the userspace path's (docs/enforcement.md). */
struct enforce_exe_key {
	__u64 dev; /* the kernel's dev_t of the file's superblock (MAJOR << 20 | MINOR) */
	__u64 ino;
};
#define ENFORCE_EXES_MAX 256
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ENFORCE_EXES_MAX);
	__type(key, struct enforce_exe_key);
	__type(value, __u8);
} enforce_exes SEC(".maps");

/* Executables the [enforce] allowlist names, by the same identity: never stopped here (the
 * finding still reports them). Checked before the names, so an allowlisted `bash` is spared
 * while a copy of it elsewhere is not. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ENFORCE_EXES_MAX);
	__type(key, struct enforce_exe_key);
	__type(value, __u8);
} enforce_allowed SEC(".maps");

/* What the programs did, per CPU: index enum enforce_action_slot. Read by the loader. */
enum enforce_action_slot {
	ENFORCE_EXEC_DENIED = 0,
	ENFORCE_EXEC_KILLED = 1,
	ENFORCE_DUP_KILLED = 2,
	ENFORCE_SIGNAL_FAILED = 3,
	ENFORCE_SLOTS = 4,
};
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, ENFORCE_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} enforce_actions SEC(".maps");

static __always_inline void enforce_count(__u32 slot)
{
	__u64 *n = bpf_map_lookup_elem(&enforce_actions, &slot);

	if (n)
		*n += 1;
}

static __always_inline int name_is_interpreter(const char *name)
{
	char key[SOCKEYE_COMM_LEN] = {};

	/* Copied up to the NUL only: past it a comm may hold an older name's bytes. */
#pragma unroll
	for (int i = 0; i < SOCKEYE_COMM_LEN - 1; i++) {
		if (!name[i])
			break;
		key[i] = name[i];
	}
	return bpf_map_lookup_elem(&enforce_names, key) != NULL;
}

static __always_inline struct enforce_exe_key exe_key(struct file *file)
{
	struct enforce_exe_key key = {};

	if (file) {
		key.dev = BPF_CORE_READ(file, f_inode, i_sb, s_dev);
		key.ino = BPF_CORE_READ(file, f_inode, i_ino);
	}
	return key;
}

/* An interpreter by name or executable, unless its executable is allowlisted. */
static __always_inline int is_interpreter(const char *name, struct file *file)
{
	struct enforce_exe_key key = exe_key(file);

	if (file && bpf_map_lookup_elem(&enforce_allowed, &key))
		return 0;
	return name_is_interpreter(name) || (file && bpf_map_lookup_elem(&enforce_exes, &key) != NULL);
}

/* fd `fd` of `task` is a connected inet socket that was not seen being accepted; with
 * `cloexec_word` (the first word of the close-on-exec bitmap, only before close-on-exec ran)
 * an fd marked close-on-exec does not count. */
static __always_inline int connected_inet(struct task_struct *task, int fd, unsigned long cloexec_word)
{
	struct file *file = task_fd_file(task, fd);
	struct socket *sock;
	struct sock *sk;
	__u16 family, dport;

	if (!file || (cloexec_word & (1UL << fd)))
		return 0;
	if ((BPF_CORE_READ(file, f_inode, i_mode) & S_IFMT) != S_IFSOCK)
		return 0;
	sock = BPF_CORE_READ(file, private_data);
	sk = BPF_CORE_READ(sock, sk);
	if (!sk)
		return 0;
	family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != AF_INET && family != AF_INET6)
		return 0;
	dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	return socket_origin(sk, dport) == SOCKEYE_ORIGIN_CONNECTED;
}

/* stdin and stdout or stderr on connected inet sockets: commands from the network in, the
 * output back out. */
static __always_inline int reverse_shell_fds(struct task_struct *task, unsigned long cloexec_word)
{
	return connected_inet(task, 0, cloexec_word) &&
	       (connected_inet(task, 1, cloexec_word) || connected_inet(task, 2, cloexec_word));
}

static __always_inline int current_is_interpreter(struct task_struct *task)
{
	char comm[SOCKEYE_COMM_LEN] = {};

	bpf_get_current_comm(comm, sizeof(comm));
	return is_interpreter(comm, BPF_CORE_READ(task, mm, exe_file));
}

SEC("lsm/bprm_check_security")
int BPF_PROG(enforce_bprm_check, struct linux_binprm *bprm, int ret)
{
	struct task_struct *task = current_task();
	char name[SOCKEYE_COMM_LEN] = {};
	struct fdtable *fdt;
	unsigned long *cloexec;
	unsigned long word = 0;

	if (ret)
		return ret;
	/* The base name of the file being executed: what comm becomes at exec. */
	bpf_probe_read_kernel_str(name, sizeof(name), BPF_CORE_READ(bprm, file, f_path.dentry, d_name.name));
	if (!is_interpreter(name, BPF_CORE_READ(bprm, file)))
		return 0;
	fdt = BPF_CORE_READ(task, files, fdt);
	cloexec = BPF_CORE_READ(fdt, close_on_exec);
	bpf_core_read(&word, sizeof(word), cloexec);
	if (!reverse_shell_fds(task, word))
		return 0;
	enforce_count(ENFORCE_EXEC_DENIED);
	return -EPERM;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(enforce_exec, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
	/* After close-on-exec: the fds the new program really has. */
	if (!current_is_interpreter(task) || !reverse_shell_fds(task, 0))
		return 0;
	enforce_count(bpf_send_signal(SIGKILL) ? ENFORCE_SIGNAL_FAILED : ENFORCE_EXEC_KILLED);
	return 0;
}

/* A dup whose result is fd 0, 1 or 2 may complete the shape; the others never leave the first
 * comparison. */
static __always_inline int enforce_dup(long ret)
{
	struct task_struct *task;

	if (ret < 0 || ret > 2)
		return 0;
	task = current_task();
	if (!reverse_shell_fds(task, 0) || !current_is_interpreter(task))
		return 0;
	enforce_count(bpf_send_signal(SIGKILL) ? ENFORCE_SIGNAL_FAILED : ENFORCE_DUP_KILLED);
	return 0;
}

SEC("tp/syscalls/sys_exit_dup")
int enforce_dup_exit(struct trace_event_raw_sys_exit *ctx)
{
	return enforce_dup(ctx->ret);
}

SEC("tp/syscalls/sys_exit_dup2")
int enforce_dup2_exit(struct trace_event_raw_sys_exit *ctx)
{
	return enforce_dup(ctx->ret);
}

SEC("tp/syscalls/sys_exit_dup3")
int enforce_dup3_exit(struct trace_event_raw_sys_exit *ctx)
{
	return enforce_dup(ctx->ret);
}

/* fcntl returns 0-2 for commands that are no dup (F_GETFD): only F_DUPFD and
 * F_DUPFD_CLOEXEC count, their command read from the registers as dup.bpf.c does. */
SEC("tp/syscalls/sys_exit_fcntl")
int enforce_fcntl_exit(struct trace_event_raw_sys_exit *ctx)
{
	unsigned long args[3];

	if (ctx->ret < 0 || ctx->ret > 2 || !syscall_exit_args(ctx, args))
		return 0;
	if ((unsigned int)args[1] != F_DUPFD && (unsigned int)args[1] != F_DUPFD_CLOEXEC)
		return 0;
	return enforce_dup(ctx->ret);
}
