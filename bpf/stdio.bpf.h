/* SPDX-License-Identifier: GPL-2.0-only */
/* What fds 0-2 of a task are: in full for exec records, in brief (inode and type) for
 * detection records. */
#ifndef SOCKEYE_STDIO_BPF_H
#define SOCKEYE_STDIO_BPF_H

#include "common.bpf.h"
#include "sock.bpf.h"

#define S_IFIFO 0010000
#define S_IFCHR 0020000
#define S_IFREG 0100000
#define PIPEFS_MAGIC 0x50495045
/* include/uapi/linux/major.h */
#define TTY_MAJOR 4
#define TTYAUX_MAJOR 5 /* minor 0 /dev/tty, 1 /dev/console, 2 /dev/ptmx */
#define UNIX98_PTY_SLAVE_MAJOR 136
#define UNIX98_PTY_MAJOR_COUNT 8

static __always_inline void fill_stdio_brief(struct stdio_brief *b, struct task_struct *task)
{
	for (int fd = 0; fd < SOCKEYE_STDIO_FDS; fd++) { /* 3 iterations: unrolled */
		struct file *file = task_fd_file(task, fd);

		if (!file)
			continue;
		b->ino[fd] = BPF_CORE_READ(file, f_inode, i_ino);
		b->type[fd] = (BPF_CORE_READ(file, f_inode, i_mode) & S_IFMT) >> 12;
	}
}

/* What fd `fd` of `task` is. Runs at exec, after close-on-exec: what the new program really
 * has. Identities (inode numbers, peer inode, terminal index) let userspace join the records
 * of both ends of a pipe, socketpair or pty. */
static __always_inline void fill_stdio_fd(struct stdio_fd *out, struct task_struct *task, int fd)
{
	struct file *file = task_fd_file(task, fd);
	struct inode *inode;
	__u32 mode, major, minor, rdev;

	out->tty_index = -1;
	if (!file) {
		out->kind = SOCKEYE_FD_CLOSED;
		return;
	}
	inode = BPF_CORE_READ(file, f_inode);
	mode = BPF_CORE_READ(inode, i_mode) & S_IFMT;
	out->ino = BPF_CORE_READ(inode, i_ino);
	if (mode == S_IFSOCK) {
		struct socket *sock = BPF_CORE_READ(file, private_data);
		struct sock *sk = BPF_CORE_READ(sock, sk);

		out->sock_type = BPF_CORE_READ(sock, type);
		out->family = BPF_CORE_READ(sk, __sk_common.skc_family);
		if (out->family == AF_INET || out->family == AF_INET6) {
			out->kind = SOCKEYE_FD_INET;
			FILL_ENDPOINTS(out, sk);
			out->origin = socket_origin(sk, out->remote.port);
		} else if (out->family == AF_UNIX) {
			struct unix_sock *u = (struct unix_sock *)sk;

			out->kind = SOCKEYE_FD_UNIX;
			out->peer_ino = BPF_CORE_READ(u, peer, sk_socket, file, f_inode, i_ino);
		} else {
			out->kind = SOCKEYE_FD_SOCKET;
		}
	} else if (mode == S_IFIFO) {
		out->kind = BPF_CORE_READ(inode, i_sb, s_magic) == PIPEFS_MAGIC ? SOCKEYE_FD_PIPE : SOCKEYE_FD_FIFO;
		out->dev = BPF_CORE_READ(inode, i_sb, s_dev);
	} else if (mode == S_IFCHR) {
		rdev = BPF_CORE_READ(inode, i_rdev);
		major = rdev >> 20;
		minor = rdev & 0xfffff;
		out->dev = rdev;
		if (major == TTY_MAJOR || (major == TTYAUX_MAJOR && minor <= 2) ||
		    (major >= UNIX98_PTY_SLAVE_MAJOR && major < UNIX98_PTY_SLAVE_MAJOR + UNIX98_PTY_MAJOR_COUNT)) {
			/* A tty file's private_data is its struct tty_file_private. */
			struct tty_file_private *priv = BPF_CORE_READ(file, private_data);
			struct tty_struct *tty = BPF_CORE_READ(priv, tty);

			out->kind = major == TTYAUX_MAJOR && minor == 2 ? SOCKEYE_FD_PTY_MASTER : SOCKEYE_FD_TTY;
			out->tty_index = BPF_CORE_READ(tty, index);
			if (tty && tty == BPF_CORE_READ(task, signal, tty))
				out->flags |= SOCKEYE_FD_CTTY;
		} else {
			out->kind = SOCKEYE_FD_CHARDEV;
		}
	} else if (mode == S_IFREG) {
		out->kind = SOCKEYE_FD_REGULAR;
		out->dev = BPF_CORE_READ(inode, i_sb, s_dev);
	} else {
		out->kind = SOCKEYE_FD_OTHER;
	}
}

#endif /* SOCKEYE_STDIO_BPF_H */
