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

/*
 * udp_send: UDP sockets that send without ever being connected (sendto/sendmsg with an
 * address: `socat UDP-SENDTO:`, `socat UDP-DATAGRAM:`, a script's sendto loop). No connect
 * is ever made, and /proc/net/udp shows such a socket's remote as 0.0.0.0:0, so only the send
 * names the peer. cgroup/sendmsg{4,6} run in udp_sendmsg/udpv6_sendmsg for every send that
 * carries an address (connected sends do not reach them) and need no trampoline, so they load
 * where LSM and fentry are refused (docs/design.md §1). The first send of each socket becomes
 * an outbound record, fd -1 (a send names no fd) and state TCP_CLOSE (never connected): the
 * relay rule joins it by the socket's inode like a connected UDP socket's. Later sends of the
 * same socket cost one map lookup.
 */

#define BPF_SOCK_TCP_ESTABLISHED 1
#define TCP_CLOSE_STATE 7

/* Sockets whose first unconnected send was recorded, by socket cookie (unique per boot, never
 * reused as an inode or a struct sock address is). LRU: a socket pushed out by a flood of
 * others is recorded again at its next send, one record more, never a send lost. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, __u8);
} udp_sent SEC(".maps");

/* The struct sock behind a sock_addr context. ctx->sk is a PTR_TO_SOCKET, which the verifier
 * lets a program read only through struct bpf_sock's few fields; its inode lies behind
 * sk_socket->file. The pointer is copied out of the stack as a plain number (allowed to a
 * program loaded with CAP_PERFMON, which the sensor needs anyway) and followed with CO-RE
 * probe reads, as every other area reads sockets. */
static __always_inline struct sock *sock_of(struct bpf_sock *bs)
{
	struct sock *sk = NULL;

	bpf_probe_read_kernel(&sk, sizeof(sk), &bs);
	return sk;
}

static __always_inline void on_udp_sendmsg(struct bpf_sock_addr *ctx, __u16 family)
{
	struct bpf_sock *bs = ctx->sk;
	struct outbound_event *e;
	struct sock *sk;
	__u64 cookie;
	__u8 one = 1;

	if (!bs || ctx->type != SOCK_DGRAM)
		return;
	/* A connected socket sending to an address of its own choosing: its connect made a record. */
	if (bs->state == BPF_SOCK_TCP_ESTABLISHED)
		return;
	cookie = bpf_get_socket_cookie(ctx);
	if (bpf_map_lookup_elem(&udp_sent, &cookie))
		return;
	/* NOEXIST: two threads' first sends race, one record. */
	if (bpf_map_update_elem(&udp_sent, &cookie, &one, BPF_NOEXIST))
		return;
	e = bpf_ringbuf_reserve(&relay_events, sizeof(*e), 0);
	if (!e) {
		/* Forget it, so that its next send tries again. */
		bpf_map_delete_elem(&udp_sent, &cookie);
		count_drop(SOCKEYE_HOOK_OUTBOUND, SOCKEYE_RING_RELAY, SOCKEYE_DROP_RING_FULL);
		return;
	}
	__builtin_memset(e, 0, sizeof(*e));
	fill_header(&e->hdr, SOCKEYE_EVENT_OUTBOUND, sizeof(*e));
	fill_task_namespaced(&e->task, current_task());
	e->fd = -1;
	e->result = 0;
	sk = sock_of(bs);
	if (sk)
		e->sock_ino = BPF_CORE_READ(sk, sk_socket, file, f_inode, i_ino);
	else
		count(SOCKEYE_HOOK_OUTBOUND, COUNT_ERRORS);
	e->family = family;
	e->state = TCP_CLOSE_STATE;
	e->protocol = IPPROTO_UDP;
	e->local.port = (__u16)bs->src_port;
	e->remote.port = bpf_ntohs((__u16)ctx->user_port);
	if (family == AF_INET) {
		__u32 local = bs->src_ip4, remote = ctx->user_ip4;

		__builtin_memcpy(e->local.addr, &local, 4);
		__builtin_memcpy(e->remote.addr, &remote, 4);
	} else {
		__u32 local[4], remote[4];

		local[0] = bs->src_ip6[0];
		local[1] = bs->src_ip6[1];
		local[2] = bs->src_ip6[2];
		local[3] = bs->src_ip6[3];
		remote[0] = ctx->user_ip6[0];
		remote[1] = ctx->user_ip6[1];
		remote[2] = ctx->user_ip6[2];
		remote[3] = ctx->user_ip6[3];
		__builtin_memcpy(e->local.addr, local, 16);
		__builtin_memcpy(e->remote.addr, remote, 16);
	}
	bpf_ringbuf_submit(e, relay_submit_flags(e->hdr.time_ns));
	count(SOCKEYE_HOOK_OUTBOUND, COUNT_EMITTED);
}

/* Both return 1 whatever happened: sockeye observes, it never refuses a send. */
SEC("cgroup/sendmsg4")
int handle_sendmsg4(struct bpf_sock_addr *ctx)
{
	on_udp_sendmsg(ctx, AF_INET);
	return 1;
}

SEC("cgroup/sendmsg6")
int handle_sendmsg6(struct bpf_sock_addr *ctx)
{
	on_udp_sendmsg(ctx, AF_INET6);
	return 1;
}
