// SPDX-License-Identifier: GPL-2.0-only
/*
 * connect: the capability with a choice. Best first: the BPF LSM hook, fentry on the same
 * kernel function, the syscall exit tracepoint; the loader keeps the first that loads and
 * attaches (native/loader.cc).
 */
#include "connect.bpf.h"

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
