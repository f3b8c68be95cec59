// SPDX-License-Identifier: GPL-2.0-only
/*
 * relay: which processes hold outbound TCP sockets. A relay reverse shell (ncat -e, socat
 * EXEC:, a mkfifo pipeline, a script's subprocess) keeps the socket in the relay process on an
 * fd past stdio, where the connect capability stays silent; the relay rule joins these records
 * with the exec-time stdio of shells (src/rules/relay/). Records go to a ring of their own
 * that wakes nobody below a quarter full: they are context, read with the next batch, and a
 * connect flood fills this ring, never the detection ring.
 */
#include "common.bpf.h"
#include "sock.bpf.h"

#define SOCK_STREAM 1
#define SOCK_DGRAM 2

/* Relay records wake the reader only once their ring is this full (in 1/8ths). */
const volatile __u8 relay_wakeup_eighths = SOCKEYE_CONTEXT_WAKEUP_EIGHTHS;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, SOCKEYE_DEFAULT_RELAY_RING_BYTES);
} relay_events SEC(".maps");

static __always_inline __u64 relay_submit_flags(__u64 now)
{
	return context_submit_flags(&relay_events, relay_wakeup_eighths, now);
}

/* connect(2)'s fd at its exit comes from syscall_exit_args (its registers from 5.15, what
 * handle_connect_enter stashed before). Connected UDP sockets are recorded too: `socat UDP:`
 * and `ncat -u` relay shells over them. Resolvers connect one per lookup; the rules count a
 * socket only when a shell's stdio reaches it, so a lookup costs a record, never a finding. */
SEC("tp/syscalls/sys_exit_connect")
int handle_outbound_connect_exit(struct trace_event_raw_sys_exit *ctx)
{
	unsigned long args[3];
	struct outbound_event *e;
	struct socket *sock;
	struct sock *sk;
	__u16 family;
	short type;
	long ret = ctx->ret;
	int fd;

	if (ret != 0 && ret != -EINPROGRESS)
		return 0;
	if (!syscall_exit_args(ctx, args))
		return 0;
	fd = (int)args[0];
	/* Connects on stdio are connect records already (all of them with connect_all_fds). */
	if (connect_all_fds || within_stdio(fd))
		return 0;
	sock = current_fd_socket(fd);
	if (!sock)
		return 0;
	type = BPF_CORE_READ(sock, type);
	if (type != SOCK_STREAM && type != SOCK_DGRAM)
		return 0;
	sk = BPF_CORE_READ(sock, sk);
	family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != AF_INET && family != AF_INET6)
		return 0;
	e = bpf_ringbuf_reserve(&relay_events, sizeof(*e), 0);
	if (!e) {
		count_drop(SOCKEYE_HOOK_OUTBOUND, SOCKEYE_RING_RELAY, SOCKEYE_DROP_RING_FULL);
		return 0;
	}
	__builtin_memset(e, 0, sizeof(*e));
	fill_header(&e->hdr, SOCKEYE_EVENT_OUTBOUND, sizeof(*e));
	fill_task_namespaced(&e->task, current_task());
	e->fd = fd;
	e->result = (__s32)ret;
	e->sock_ino = BPF_CORE_READ(sock, file, f_inode, i_ino);
	e->protocol = type == SOCK_DGRAM ? IPPROTO_UDP : IPPROTO_TCP;
	FILL_ENDPOINTS(e, sk);
	bpf_ringbuf_submit(e, relay_submit_flags(e->hdr.time_ns));
	count(SOCKEYE_HOOK_OUTBOUND, COUNT_EMITTED);
	return 0;
}
