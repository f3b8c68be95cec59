// SPDX-License-Identifier: GPL-2.0-only
/*
 * Syscall tracepoints skip ia32 syscalls (the kernel's trace_get_syscall_nr returns -1 for
 * them on x86-64), so a 32-bit binary, or a 64-bit one that uses int $0x80, dups a socket onto
 * stdio unseen by the dup and connect tracepoints. The raw sys_exit tracepoint sees every syscall: this
 * program keeps the ia32 ones and hands them to the same code. It runs on every syscall of
 * the host, though (about 90 ns each on the CI machine kind), so the loader attaches
 * it only when asked (LoadOptions::compat_syscalls).
 */
#include "accept.bpf.h"
#include "connect.bpf.h"
#include "dup.bpf.h"

/* handle_compat_exit reports ia32 connects too: set when connect runs on its tracepoint
 * fallback, which (like every syscall tracepoint) never sees them. LSM and fentry do. */
const volatile __u8 compat_connect = 0;

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
	__u32 args[3] = {};
	long nr;

	if (!current_in_compat_syscall())
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
