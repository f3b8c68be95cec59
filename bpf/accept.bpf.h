/* SPDX-License-Identifier: GPL-2.0-only */
/* Remembers a socket accept() returned, so that a dup of it reads as inbound: the accept
 * programs and the ia32 one share this. */
#ifndef SOCKEYE_ACCEPT_BPF_H
#define SOCKEYE_ACCEPT_BPF_H

#include "common.bpf.h"
#include "sock.bpf.h"

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
	return 0;
}

#endif /* SOCKEYE_ACCEPT_BPF_H */
