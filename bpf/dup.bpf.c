// SPDX-License-Identifier: GPL-2.0-only
/*
 * socket_dup: dup, dup2, dup3 and fcntl(F_DUPFD*) at syscall exit, on their tracepoints.
 */
#include "dup.bpf.h"

/* Each exit program first checks the result, so the common case (a new fd past stdio, or an
 * error) reads no register, no stash and no fd table. */
SEC("tp/syscalls/sys_exit_dup")
int handle_dup_exit(struct trace_event_raw_sys_exit *ctx)
{
	unsigned long args[3];

	if (!within_stdio(ctx->ret) || !syscall_exit_args(ctx, args))
		return 0;
	return emit_dup(ctx->ret, (int)args[0], SOCKEYE_DUP_DUP);
}

SEC("tp/syscalls/sys_exit_dup2")
int handle_dup2_exit(struct trace_event_raw_sys_exit *ctx)
{
	unsigned long args[3];

	if (!within_stdio(ctx->ret) || !syscall_exit_args(ctx, args))
		return 0;
	return emit_dup(ctx->ret, (int)args[0], SOCKEYE_DUP_DUP2);
}

SEC("tp/syscalls/sys_exit_dup3")
int handle_dup3_exit(struct trace_event_raw_sys_exit *ctx)
{
	unsigned long args[3];

	if (!within_stdio(ctx->ret) || !syscall_exit_args(ctx, args))
		return 0;
	return emit_dup(ctx->ret, (int)args[0], SOCKEYE_DUP_DUP3);
}

/* fcntl returns small numbers for many commands (F_GETFD gives 0 or 1): only F_DUPFD and
 * F_DUPFD_CLOEXEC return an fd. The command is compared as the kernel reads it, an unsigned
 * int: garbage in the register's upper half must not hide an F_DUPFD. */
static __always_inline int fcntl_dups(unsigned long cmd)
{
	return (unsigned int)cmd == F_DUPFD || (unsigned int)cmd == F_DUPFD_CLOEXEC;
}

SEC("tp/syscalls/sys_exit_fcntl")
int handle_fcntl_exit(struct trace_event_raw_sys_exit *ctx)
{
	unsigned long args[3];

	if (!within_stdio(ctx->ret) || !syscall_exit_args(ctx, args) || !fcntl_dups(args[1]))
		return 0;
	return emit_dup(ctx->ret, (int)args[0], SOCKEYE_DUP_FCNTL);
}

/*
 * Before 5.15 only (task_access): the enter side, stashing the old fd (and fcntl's command)
 * of the calls whose result can land on stdio. dup picks its new fd only at exit: every call
 * is stashed. dup2 and dup3 name it: a call onto a higher fd cannot return a stdio fd, and
 * its exit never looks. fcntl's other commands return small numbers too (F_GETFD), so they
 * drop what an earlier F_DUPFD of the thread left, as does an F_DUPFD whose lowest fd is past
 * stdio.
 */
SEC("tp/syscalls/sys_enter_dup")
int handle_dup_enter(struct trace_event_raw_sys_enter *ctx)
{
	stash_syscall(ctx, 1, 1);
	return 0;
}

SEC("tp/syscalls/sys_enter_dup2")
int handle_dup2_enter(struct trace_event_raw_sys_enter *ctx)
{
	if (within_stdio((int)ctx->args[1]))
		stash_syscall(ctx, 2, 1);
	return 0;
}

SEC("tp/syscalls/sys_enter_dup3")
int handle_dup3_enter(struct trace_event_raw_sys_enter *ctx)
{
	if (within_stdio((int)ctx->args[1]))
		stash_syscall(ctx, 2, 1);
	return 0;
}

SEC("tp/syscalls/sys_enter_fcntl")
int handle_fcntl_enter(struct trace_event_raw_sys_enter *ctx)
{
	stash_syscall(ctx, 3, fcntl_dups(ctx->args[1]) && (__u32)ctx->args[2] <= (__u32)stdio_fd_max);
	return 0;
}
