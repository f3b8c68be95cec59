/* SPDX-License-Identifier: GPL-2.0-only */
/* A socket_dup record for a socket that a dup put on stdio: the dup programs and the ia32 one
 * build theirs here. */
#ifndef SOCKEYE_DUP_BPF_H
#define SOCKEYE_DUP_BPF_H

#include "common.bpf.h"

/* The head of struct sock_common: IPv4 addresses, ports, family and state, in the order every
 * kernel since 2.6.38 keeps them. One read of these 20 bytes costs what one of the six
 * single-field reads did (bench/README.md, change 15). */
struct sock_common_head {
	__be32 daddr;
	__be32 rcv_saddr;
	__u32 hash;
	__be16 dport;
	__u16 num;
	__u16 family;
	__u8 state;
	__u8 pad;
};

/* Constants after CO-RE relocation: a kernel that moved a field takes the field-by-field way. */
#define SOCK_COMMON_HEAD_MATCHES                                                         \
	(bpf_core_field_offset(struct sock_common, skc_daddr) == 0 &&                    \
	 bpf_core_field_offset(struct sock_common, skc_rcv_saddr) == 4 &&                \
	 bpf_core_field_offset(struct sock_common, skc_dport) == 12 &&                   \
	 bpf_core_field_offset(struct sock_common, skc_num) == 14 &&                     \
	 bpf_core_field_offset(struct sock_common, skc_family) == 16 &&                  \
	 bpf_core_field_offset(struct sock_common, skc_state) == 18 &&                   \
	 bpf_core_field_size(struct sock_common, skc_dport) == 2 &&                      \
	 bpf_core_field_size(struct sock_common, skc_num) == 2 &&                        \
	 bpf_core_field_size(struct sock_common, skc_family) == 2 &&                     \
	 bpf_core_field_size(struct sock_common, skc_state) == 1 &&                      \
	 bpf_core_field_offset(struct sock, __sk_common) == 0)

static __always_inline void read_sock_common_head(struct sock_common_head *h, struct sock *sk)
{
	if (SOCK_COMMON_HEAD_MATCHES) {
		bpf_probe_read_kernel(h, sizeof(*h), sk);
		return;
	}
	h->daddr = BPF_CORE_READ(sk, __sk_common.skc_daddr);
	h->rcv_saddr = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
	h->dport = BPF_CORE_READ(sk, __sk_common.skc_dport);
	h->num = BPF_CORE_READ(sk, __sk_common.skc_num);
	h->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	h->state = BPF_CORE_READ(sk, __sk_common.skc_state);
}

static __always_inline void fill_endpoints(struct socket_dup_event *e, struct sock *sk)
{
	struct sock_common_head h = {};

	read_sock_common_head(&h, sk);
	e->family = h.family;
	e->state = h.state;
	if (h.family == AF_INET) {
		__builtin_memcpy(e->local.addr, &h.rcv_saddr, 4);
		__builtin_memcpy(e->remote.addr, &h.daddr, 4);
	} else if (h.family == AF_INET6) {
		BPF_CORE_READ_INTO(&e->local.addr, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO(&e->remote.addr, sk, __sk_common.skc_v6_daddr);
	}
	e->local.port = h.num;
	e->remote.port = bpf_ntohs(h.dport);
}

static __always_inline int same_sock(struct accepted_sock *seen, struct sock *sk)
{
	struct accepted_sock now = sock_identity(sk);

	return seen->peer_addr == now.peer_addr && seen->local_port == now.local_port &&
	       seen->peer_port == now.peer_port;
}

/* Exit side of every dup: `ret` is the new fd (or -errno), `oldfd` the fd it copies. A failed
 * call never alerts; dup and fcntl pick the new fd only now. The new fd is the old one's
 * file, so "is it a socket" is asked once, of the new fd. */
static __always_inline int emit_dup(long ret, int oldfd, __u16 syscall)
{
	struct socket_dup_event *e;
	struct accepted_sock *accepted;
	struct socket *sock;
	struct sock *sk;
	__u64 sk_key;

	if (!within_stdio(ret))
		return 0;
	sock = current_fd_socket((int)ret);
	if (!sock)
		return 0;
	sk = BPF_CORE_READ(sock, sk);

	if (!admit_detection((int)ret)) {
		count(SOCKEYE_HOOK_DUP, COUNT_LOST);
		return 0;
	}
	e = bpf_ringbuf_reserve(&detection_events, sizeof(*e), 0);
	if (!e) {
		count(SOCKEYE_HOOK_DUP, COUNT_LOST);
		return 0;
	}
	__builtin_memset(e, 0, sizeof(*e));
	fill_header(&e->hdr, SOCKEYE_EVENT_SOCKET_DUP, sizeof(*e));
	fill_task(&e->task, bpf_get_current_task_btf());
	e->oldfd = oldfd;
	e->newfd = (int)ret;
	e->syscall = syscall;
	e->sock_type = BPF_CORE_READ(sock, type);
	e->protocol = BPF_CORE_READ(sk, sk_protocol);
	fill_endpoints(e, sk);
	sk_key = (__u64)sk;
	accepted = bpf_map_lookup_elem(&accepted_socks, &sk_key);
	if (accepted && same_sock(accepted, sk))
		e->origin = SOCKEYE_ORIGIN_ACCEPTED;
	else if (e->remote.port)
		e->origin = SOCKEYE_ORIGIN_CONNECTED;
	bpf_ringbuf_submit(e, submit_flags(RING_DETECTION, e->hdr.time_ns));
	count(SOCKEYE_HOOK_DUP, COUNT_EMITTED);
	return 0;
}

#endif /* SOCKEYE_DUP_BPF_H */
