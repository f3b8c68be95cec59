/* SPDX-License-Identifier: GPL-2.0-only */
/* A socket's endpoints and origin, read the same way for dup records and exec-time stdio
 * records. */
#ifndef SOCKEYE_SOCK_BPF_H
#define SOCKEYE_SOCK_BPF_H

#include "common.bpf.h"

/* What identifies a connection beyond its struct sock address, which the kernel reuses. */
static __always_inline struct accepted_sock sock_identity(struct sock *sk)
{
	struct accepted_sock id = {};

	if (BPF_CORE_READ(sk, __sk_common.skc_family) == AF_INET6)
		BPF_CORE_READ_INTO(&id.peer_addr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr32[3]);
	else
		id.peer_addr = BPF_CORE_READ(sk, __sk_common.skc_daddr);
	id.local_port = BPF_CORE_READ(sk, __sk_common.skc_num);
	id.peer_port = BPF_CORE_READ(sk, __sk_common.skc_dport);
	return id;
}

/* The head of struct sock_common: IPv4 addresses, ports, family and state, in the order every
 * kernel since 2.6.38 keeps them. One read of these 20 bytes costs what one of the six
 * single-field reads did. */
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

/* Family, state and both endpoints of a socket, into any record with those fields (dup
 * records, exec-time stdio records). */
#define FILL_ENDPOINTS(e, sk)                                                                   \
	do {                                                                                    \
		struct sock_common_head h = {};                                                 \
		read_sock_common_head(&h, sk);                                                  \
		(e)->family = h.family;                                                         \
		(e)->state = h.state;                                                           \
		if (h.family == AF_INET) {                                                      \
			__builtin_memcpy((e)->local.addr, &h.rcv_saddr, 4);                     \
			__builtin_memcpy((e)->remote.addr, &h.daddr, 4);                        \
		} else if (h.family == AF_INET6) {                                              \
			BPF_CORE_READ_INTO(&(e)->local.addr, sk, __sk_common.skc_v6_rcv_saddr); \
			BPF_CORE_READ_INTO(&(e)->remote.addr, sk, __sk_common.skc_v6_daddr);    \
		}                                                                               \
		(e)->local.port = h.num;                                                        \
		(e)->remote.port = bpf_ntohs(h.dport);                                          \
	} while (0)

static __always_inline int same_sock(struct accepted_sock *seen, struct sock *sk)
{
	struct accepted_sock now = sock_identity(sk);

	return seen->peer_addr == now.peer_addr && seen->local_port == now.local_port &&
	       seen->peer_port == now.peer_port;
}

/*
 * A TCP child, by the interface its handshake arrived on (docs/design.md, "Accepted or
 * connected"): tcp_v4_syn_recv_sock sets the child's inet_sock.mc_index to inet_iif(skb) (an
 * ifindex, never 0: every received packet has an input device), and tcp_v6_syn_recv_sock sets
 * ipv6_pinfo.mcast_oif likewise (for v4-mapped children too). A socket() + connect() socket keeps
 * both at 0: inet_create and inet6_create zero them, and IP_MULTICAST_IF and IPV6_MULTICAST_IF
 * are refused on SOCK_STREAM sockets (EINVAL, ENOPROTOOPT: measured on 6.18; the same checks in
 * every kernel since 2.6). Unlike the backlog below, it does not depend on the listener's backlog
 * (listen(fd, 0) makes children with none). TCP only: a UDP socket may set IP_MULTICAST_IF.
 */
static __always_inline int tcp_child_by_arrival(struct sock *sk)
{
	struct inet_sock *inet = (struct inet_sock *)sk;

	if (!bpf_core_field_exists(inet->mc_index) || BPF_CORE_READ_BITFIELD_PROBED(sk, sk_protocol) != IPPROTO_TCP ||
	    BPF_CORE_READ_BITFIELD_PROBED(sk, sk_type) != SOCK_STREAM)
		return 0;
	if (BPF_CORE_READ(inet, mc_index) != 0)
		return 1;
	if (BPF_CORE_READ(sk, __sk_common.skc_family) != AF_INET6 || !bpf_core_field_exists(((struct ipv6_pinfo *)0)->mcast_oif))
		return 0;
	return BPF_CORE_READ(inet, pinet6, mcast_oif) != 0;
}

/*
 * Opened passively, by the socket's own account (docs/design.md, "Accepted or connected"): a
 * TCP child records the interface its handshake arrived on (above); and it is a copy of its
 * listener (sk_clone_lock), so it carries the listener's accept backlog, and
 * inet_csk_clone_lock clears the SOCK_RCU_FREE flag that hashing a listener set. A socket
 * created by socket() and connect()ed has neither; one that listened, was disconnected (connect
 * with AF_UNSPEC) and then connect()ed keeps the backlog and the flag, and no arrival interface.
 * Not proof: a child that is disconnected and connect()ed again still reads passive; so this
 * never makes a socket "accepted", only keeps a missing mark from making it "connected".
 */
static __always_inline int opened_passively(struct sock *sk)
{
	__u64 rcu_free = bpf_core_enum_value(enum sock_flags, SOCK_RCU_FREE);
	unsigned long flags;

	if (tcp_child_by_arrival(sk))
		return 1;
	/* sk_flags names the common part's skc_flags; a kernel without it reads as before: connected. */
	if (!bpf_core_field_exists(sk->__sk_common.skc_flags) || BPF_CORE_READ_BITFIELD_PROBED(sk, sk_max_ack_backlog) == 0)
		return 0;
	flags = BPF_CORE_READ(sk, __sk_common.skc_flags);
	return !(flags & (1UL << rcu_free));
}

/* Accepted while the sensor ran (by any process: sshd and inetd accept in the listener and
 * hand the socket to a child); else, with a peer, passive when it came from a listener (the
 * mark was evicted from the LRU, or predates the sensor), connected when not. */
static __always_inline __u8 socket_origin(struct sock *sk, __u16 remote_port)
{
	__u64 sk_key = (__u64)sk;
	struct accepted_sock *accepted = bpf_map_lookup_elem(&accepted_socks, &sk_key);

	if (accepted && same_sock(accepted, sk))
		return SOCKEYE_ORIGIN_ACCEPTED;
	if (!remote_port)
		return SOCKEYE_ORIGIN_UNKNOWN;
	return opened_passively(sk) ? SOCKEYE_ORIGIN_PASSIVE : SOCKEYE_ORIGIN_CONNECTED;
}

#endif /* SOCKEYE_SOCK_BPF_H */
