// SPDX-License-Identifier: GPL-2.0-only
/*
 * socket_dup: dup, dup2, dup3 and fcntl(F_DUPFD*) at syscall exit, on their tracepoints.
 */
#include "dup.bpf.h"

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
