// SPDX-License-Identifier: GPL-2.0-only
/*
 * connect: the capability with a choice. Best first: the BPF LSM hook, fentry on the same
 * kernel function, the syscall exit tracepoint; the loader keeps the first that loads and
 * attaches (native/loader.cc).
 */
#include "connect.bpf.h"

/* The stdio fd (0..stdio_fd_max) that holds `sock`, or -1. */
static __always_inline int stdio_fd_of(struct socket *sock)
{
	for (int i = 0; i < 8; i++) {
		if (i > stdio_fd_max)
			break;
		if (current_fd_socket(i) == sock)
			return i;
	}
	return -1;
}

/* The fd of the connect(2) in progress, or -1 when the hook was reached some other way
 * (io_uring's IORING_OP_CONNECT runs in a worker: Tracee reads a stale 0 there). An ia32
 * connect (a 32-bit binary, or int $0x80) has its own numbers and registers: read as if it
 * were a 64-bit one, it looked like no connect at all and went unreported. */
static __always_inline int connect_syscall_fd(struct socket *sock)
{
	struct stashed_syscall *stashed;
	struct pt_regs *regs;
	long nr;

	if (!HAVE_TASK_PT_REGS) {
		/* Before 5.15: the fd handle_connect_enter stashed, trusted only when it holds this
		 * very socket (a connect that failed before this hook leaves its entry behind). */
		stashed = stashed_syscall(SYSCALL_NR_CONNECT);
		if (stashed && current_fd_socket((int)stashed->args[0]) == sock)
			return (int)stashed->args[0];
#if defined(__TARGET_ARCH_x86)
		/* ia32 syscalls pass no enter tracepoint, and their registers are out of reach:
		 * the socket is looked for on the stdio fds, the only ones a detection needs. */
		if (current_in_compat_syscall())
			return stdio_fd_of(sock);
#endif
		return -1;
	}
	regs = current_syscall_regs();
	nr = SYSCALL_NR(regs);
#if defined(__TARGET_ARCH_x86)
	if (current_in_compat_syscall()) {
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
		return stdio_fd_of(sock);
	}
#endif
	if (nr != SYSCALL_NR_CONNECT)
		return -1;
	return (int)PT_REGS_PARM1_CORE_SYSCALL(regs);
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

/* Before 5.15 only (task_access): the connect's arguments for the programs above and below,
 * and for relay's outbound records, which want the connects on every fd. */
SEC("tp/syscalls/sys_enter_connect")
int handle_connect_enter(struct trace_event_raw_sys_enter *ctx)
{
	stash_syscall(ctx, 3, 1);
	return 0;
}

SEC("tp/syscalls/sys_exit_connect")
int handle_connect_exit(struct trace_event_raw_sys_exit *ctx)
{
	unsigned long args[3];
	int fd;

	if (!syscall_exit_args(ctx, args))
		return 0;
	fd = (int)args[0];
	if (!connect_all_fds && !within_stdio(fd))
		return 0;
	emit_connect(current_fd_socket(fd), (const void *)args[1], (int)args[2], 1, fd, (int)ctx->ret,
		     SOCKEYE_CONNECT_TRACEPOINT);
	return 0;
}
