// SPDX-License-Identifier: GPL-2.0-only
/*
 * accept: marks the sockets accept()/accept4() return (in accepted_socks), so that socket_dup
 * can tell an inetd-style service's stdio socket from a reverse shell's.
 */
#include "accept.bpf.h"

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
