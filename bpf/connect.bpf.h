/* SPDX-License-Identifier: GPL-2.0-only */
/* A connect record from a socket and its sockaddr: the connect programs and the ia32 one build
 * theirs here. */
#ifndef SOCKEYE_CONNECT_BPF_H
#define SOCKEYE_CONNECT_BPF_H

#include "common.bpf.h"
#include "stdio.bpf.h"

/* Fills family, remote and unix_path from a sockaddr; `user` tells which memory it is in. */
static __always_inline int read_sockaddr(struct connect_event *e, const void *addr, int addrlen, int user)
{
	__u16 family = 0;
	long err;

	err = user ? bpf_probe_read_user(&family, sizeof(family), addr)
		   : bpf_probe_read_kernel(&family, sizeof(family), addr);
	if (err)
		return err;
	e->family = family;
	if (family == AF_INET) {
		struct sockaddr_in sin = {};
		err = user ? bpf_probe_read_user(&sin, sizeof(sin), addr)
			   : bpf_probe_read_kernel(&sin, sizeof(sin), addr);
		e->remote.port = bpf_ntohs(sin.sin_port);
		__builtin_memcpy(e->remote.addr, &sin.sin_addr, 4);
	} else if (family == AF_INET6) {
		struct sockaddr_in6 sin6 = {};
		err = user ? bpf_probe_read_user(&sin6, sizeof(sin6), addr)
			   : bpf_probe_read_kernel(&sin6, sizeof(sin6), addr);
		e->remote.port = bpf_ntohs(sin6.sin6_port);
		__builtin_memcpy(e->remote.addr, &sin6.sin6_addr, 16);
	} else if (family == AF_UNIX) {
		/* sun_path follows the 2-byte family; never read past what the caller passed. */
		if (addrlen > 2) {
			__u64 len = (__u64)(addrlen - 2);

			/* The clamp must sit on the very register handed to the helper: 64 bits wide
			 * (a 32-bit one is compared through a zero-extended copy) and behind a barrier
			 * (else clang clamps a sign-extended copy and drops a mask it proves
			 * redundant). The 6.1 verifier (Debian 12's kernel, where the LSM and fentry
			 * programs load) refused both as an unbounded read. */
			barrier_var(len);
			if (len > SOCKEYE_UNIX_PATH_LEN)
				len = SOCKEYE_UNIX_PATH_LEN;
			err = user ? bpf_probe_read_user(e->unix_path, len, addr + 2)
				   : bpf_probe_read_kernel(e->unix_path, len, addr + 2);
		}
	}
	return err;
}

static __always_inline void emit_connect(struct socket *sock, const void *addr, int addrlen, int user,
					 int fd, int result, __u8 source)
{
	struct task_struct *task;
	struct connect_event *e;
	int reason;

	reason = admit_detection(fd);
	if (reason != ADMITTED) {
		count_drop(SOCKEYE_HOOK_CONNECT, SOCKEYE_RING_DETECTION, reason);
		return;
	}
	e = bpf_ringbuf_reserve(&detection_events, sizeof(*e), 0);
	if (!e) {
		count_drop(SOCKEYE_HOOK_CONNECT, SOCKEYE_RING_DETECTION, SOCKEYE_DROP_RING_FULL);
		return;
	}
	__builtin_memset(e, 0, sizeof(*e));
	fill_header(&e->hdr, SOCKEYE_EVENT_CONNECT, sizeof(*e));
	task = current_task();
	fill_task_namespaced(&e->task, task);
	e->fd = fd;
	e->result = result;
	e->source = source;
	if (sock) {
		e->sock_type = BPF_CORE_READ(sock, type);
		e->protocol = BPF_CORE_READ(sock, sk, sk_protocol);
		e->sock_ino = BPF_CORE_READ(sock, file, f_inode, i_ino);
	}
	fill_stdio_brief(&e->stdio, task);
	if (read_sockaddr(e, addr, addrlen, user))
		count(SOCKEYE_HOOK_CONNECT, COUNT_ERRORS);
	bpf_ringbuf_submit(e, submit_flags(SOCKEYE_RING_DETECTION, e->hdr.time_ns));
	count(SOCKEYE_HOOK_CONNECT, COUNT_EMITTED);
}

#endif /* SOCKEYE_CONNECT_BPF_H */
