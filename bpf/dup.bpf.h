/* SPDX-License-Identifier: GPL-2.0-only */
/* A socket_dup record for a socket that a dup put on stdio: the dup programs and the ia32 one
 * build theirs here. */
#ifndef SOCKEYE_DUP_BPF_H
#define SOCKEYE_DUP_BPF_H

#include "common.bpf.h"
#include "sock.bpf.h"
#include "stdio.bpf.h"

/* Exit side of every dup: `ret` is the new fd (or -errno), `oldfd` the fd it copies. A failed
 * call never alerts; dup and fcntl pick the new fd only now. The new fd is the old one's
 * file, so "is it a socket" is asked once, of the new fd. */
static __always_inline int emit_dup(long ret, int oldfd, __u16 syscall)
{
	struct task_struct *task = current_task();
	struct socket_dup_event *e;
	int reason;
	struct socket *sock;
	struct file *file;
	struct sock *sk;

	if (!within_stdio(ret))
		return 0;
	file = task_fd_file(task, (int)ret);
	sock = file_socket(file);
	if (!sock)
		return 0;
	sk = BPF_CORE_READ(sock, sk);

	reason = admit_detection((int)ret);
	if (reason != ADMITTED) {
		count_drop(SOCKEYE_HOOK_DUP, SOCKEYE_RING_DETECTION, reason);
		return 0;
	}
	e = bpf_ringbuf_reserve(&detection_events, sizeof(*e), 0);
	if (!e) {
		count_drop(SOCKEYE_HOOK_DUP, SOCKEYE_RING_DETECTION, SOCKEYE_DROP_RING_FULL);
		return 0;
	}
	__builtin_memset(e, 0, sizeof(*e));
	fill_header(&e->hdr, SOCKEYE_EVENT_SOCKET_DUP, sizeof(*e));
	fill_task_namespaced(&e->task, task);
	e->oldfd = oldfd;
	e->newfd = (int)ret;
	e->syscall = syscall;
	e->sock_type = BPF_CORE_READ(sock, type);
	e->protocol = BPF_CORE_READ(sk, sk_protocol);
	FILL_ENDPOINTS(e, sk);
	e->origin = socket_origin(sk, e->remote.port);
	e->sock_ino = BPF_CORE_READ(file, f_inode, i_ino);
	fill_stdio_brief(&e->stdio, task);
	bpf_ringbuf_submit(e, submit_flags(SOCKEYE_RING_DETECTION, e->hdr.time_ns));
	count(SOCKEYE_HOOK_DUP, COUNT_EMITTED);
	return 0;
}

#endif /* SOCKEYE_DUP_BPF_H */
