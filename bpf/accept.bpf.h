/* SPDX-License-Identifier: GPL-2.0-only */
/* Remembers a socket accept() returned, so that a dup of it reads as inbound, and records it
 * while a rule reads accepted connections: the accept programs and the ia32 one share this. */
#ifndef SOCKEYE_ACCEPT_BPF_H
#define SOCKEYE_ACCEPT_BPF_H

#include "common.bpf.h"
#include "sock.bpf.h"

/* The record of an accepted inet socket (accept_records); unix sockets make none, as Elastic
 * Defend reports no network event for them. Past SOCKEYE_ACCEPT_PROCESS_EIGHTHS of the process
 * ring an accept is counted as dropped, not recorded: exec records keep the rest. */
static __always_inline void emit_accept(int fd, struct socket *sock, struct sock *sk)
{
	struct accept_event *e;
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);

	if (family != AF_INET && family != AF_INET6)
		return;
	if (bpf_ringbuf_query(&process_events, BPF_RB_AVAIL_DATA) * 8 >=
	    bpf_ringbuf_query(&process_events, BPF_RB_RING_SIZE) * SOCKEYE_ACCEPT_PROCESS_EIGHTHS) {
		count_drop(SOCKEYE_HOOK_ACCEPT, SOCKEYE_RING_PROCESS, SOCKEYE_DROP_ACCEPT_SHARE);
		return;
	}
	e = bpf_ringbuf_reserve(&process_events, sizeof(*e), 0);
	if (!e) {
		count_drop(SOCKEYE_HOOK_ACCEPT, SOCKEYE_RING_PROCESS, SOCKEYE_DROP_RING_FULL);
		return;
	}
	__builtin_memset(e, 0, sizeof(*e));
	fill_header(&e->hdr, SOCKEYE_EVENT_ACCEPT, sizeof(*e));
	fill_task_namespaced(&e->task, current_task());
	e->fd = fd;
	e->sock_ino = BPF_CORE_READ(sock, file, f_inode, i_ino);
	FILL_ENDPOINTS(e, sk);
	bpf_ringbuf_submit(e, process_submit_flags(e->hdr.time_ns));
	count(SOCKEYE_HOOK_ACCEPT, COUNT_EMITTED);
}

static __always_inline int remember_accepted(long fd)
{
	struct accepted_sock id;
	struct socket *sock;
	struct sock *sk;
	__u64 sk_key;

	if (fd < 0)
		return 0;
	sock = current_fd_socket((int)fd);
	if (!sock)
		return 0;
	sk = BPF_CORE_READ(sock, sk);
	sk_key = (__u64)sk;
	id = sock_identity(sk);
	if (bpf_map_update_elem(&accepted_socks, &sk_key, &id, BPF_ANY))
		count(SOCKEYE_HOOK_ACCEPT, COUNT_ERRORS);
	if (accept_records)
		emit_accept((int)fd, sock, sk);
	return 0;
}

#endif /* SOCKEYE_ACCEPT_BPF_H */
