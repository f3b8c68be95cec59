/*
 * sockhelper: the syscall-level cases of the VM tier, one per invocation, each made with the
 * exact syscall it names so the test knows which kernel path (connect hook, dup2, dup3) saw
 * it. Built with gcc -static: the guest has no libc of its own for it to find.
 *
 *   sockhelper connect-fd0 IP PORT   close(0), socket() lands on fd 0, connect() there
 *   sockhelper connect-fd0-exec IP PORT SHELL
 *                                    the same, then dup2(0, 1) and exec SHELL as "sh": a
 *                                    shell that starts with the socket on stdin and stdout
 *   sockhelper connect-fd3 IP PORT   socket() on fd 3, connect() there        (negative)
 *   sockhelper dup2 IP PORT NEWFD    connect, then dup2(sock, NEWFD)
 *   sockhelper dup3 IP PORT NEWFD    connect, then dup3(sock, NEWFD, O_CLOEXEC)
 *   sockhelper file-dup2 PATH NEWFD  open(PATH), then dup2(file, NEWFD)       (negative)
 *   sockhelper unix-fd0 PATH         close(0), AF_UNIX socket on fd 0, connect(PATH) (negative:
 *                                    TRC-101 ignores AF_UNIX, but the hook reads sun_path)
 *   sockhelper uring-relay IP PORT SHELL
 *                                    a relay shell whose connect goes through io_uring
 *                                    (IORING_OP_CONNECT, no connect(2) at all): SHELL -i runs
 *                                    behind two pipes and this process copies both ways
 *
 * Exit status 0 when every syscall did what was asked; 2 with one line on stderr otherwise,
 * so a case that silently did something else cannot pass as a negative.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/io_uring.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static int fail(const char *what) {
  /* stderr may be the very fd a case replaced: write to fd 2 only while it is still ours. */
  dprintf(2, "sockhelper: %s: %s\n", what, strerror(errno));
  exit(2);
}

static struct sockaddr_in addr(const char *ip, const char *port) {
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((unsigned short)atoi(port));
  if (inet_pton(AF_INET, ip, &sa.sin_addr) != 1) {
    errno = EINVAL;
    fail("bad IPv4 address");
  }
  return sa;
}

/* A socket connected to ip:port, on whatever fd socket() returns. */
static int connected(const char *ip, const char *port) {
  struct sockaddr_in sa = addr(ip, port);
  int s = socket(AF_INET, SOCK_STREAM, 0);
  if (s < 0) fail("socket");
  if (connect(s, (struct sockaddr *)&sa, sizeof sa) < 0) fail("connect");
  return s;
}

/* socket() must land on `want` (the lowest free fd), then connect() on it. */
static void connect_on(int want, const char *ip, const char *port) {
  struct sockaddr_in sa = addr(ip, port);
  int s = socket(AF_INET, SOCK_STREAM, 0);
  if (s < 0) fail("socket");
  if (s != want) {
    errno = EBADF;
    fail("socket did not land on the expected fd");
  }
  if (connect(s, (struct sockaddr *)&sa, sizeof sa) < 0) fail("connect");
}

/* connect(s, sa) as one IORING_OP_CONNECT on a ring of its own, raw syscalls (no liburing in
 * the guest): the kernel runs it without connect(2), so no syscall hook sees it. */
static void uring_connect(int s, const struct sockaddr_in *sa) {
  struct io_uring_params p;
  memset(&p, 0, sizeof p);
  int ring = (int)syscall(__NR_io_uring_setup, 4, &p);
  if (ring < 0) fail("io_uring_setup");
  char *sq = mmap(NULL, p.sq_off.array + p.sq_entries * sizeof(__u32), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring, IORING_OFF_SQ_RING);
  char *cq = mmap(NULL, p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring, IORING_OFF_CQ_RING);
  struct io_uring_sqe *sqes = mmap(NULL, p.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring, IORING_OFF_SQES);
  if (sq == MAP_FAILED || cq == MAP_FAILED || sqes == MAP_FAILED) fail("mmap io_uring");
  __u32 *sq_tail = (__u32 *)(sq + p.sq_off.tail), sq_mask = *(__u32 *)(sq + p.sq_off.ring_mask);
  __u32 tail = *sq_tail, index = tail & sq_mask;
  struct io_uring_sqe *sqe = &sqes[index];
  memset(sqe, 0, sizeof *sqe);
  sqe->opcode = IORING_OP_CONNECT;
  sqe->fd = s;
  sqe->addr = (unsigned long)sa;
  sqe->off = sizeof *sa; /* the address length */
  ((__u32 *)(sq + p.sq_off.array))[index] = index;
  __atomic_store_n(sq_tail, tail + 1, __ATOMIC_RELEASE);
  if (syscall(__NR_io_uring_enter, ring, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0) < 0) fail("io_uring_enter");
  __u32 *cq_head = (__u32 *)(cq + p.cq_off.head), cq_mask = *(__u32 *)(cq + p.cq_off.ring_mask);
  __u32 head = __atomic_load_n(cq_head, __ATOMIC_ACQUIRE);
  if (head == __atomic_load_n((__u32 *)(cq + p.cq_off.tail), __ATOMIC_ACQUIRE)) {
    errno = EAGAIN;
    fail("io_uring: no completion");
  }
  int res = ((struct io_uring_cqe *)(cq + p.cq_off.cqes))[head & cq_mask].res;
  if (res < 0) {
    errno = -res;
    fail("IORING_OP_CONNECT");
  }
  __atomic_store_n(cq_head, head + 1, __ATOMIC_RELEASE);
  close(ring);
}

/* A relay shell: SHELL -i behind two pipes (its stdin, its stdout and stderr), this process
 * copying between them and the socket until either side ends, as a script's Popen relay does. */
static int relay(int s, const char *shell) {
  int in[2], out[2];
  if (pipe(in) < 0 || pipe(out) < 0) fail("pipe");
  pid_t child = fork();
  if (child < 0) fail("fork");
  if (child == 0) {
    if (dup2(in[0], 0) != 0 || dup2(out[1], 1) != 1 || dup2(out[1], 2) != 2) fail("dup2");
    for (int fd = 3; fd < 64; fd++) close(fd);
    execl(shell, "sh", "-i", (char *)NULL);
    fail("execl");
  }
  close(in[0]);
  close(out[1]);
  char buf[4096];
  struct pollfd fds[2] = {{.fd = s, .events = POLLIN}, {.fd = out[0], .events = POLLIN}};
  for (;;) {
    if (poll(fds, 2, -1) < 0) fail("poll");
    int from = fds[0].revents ? 0 : 1;
    ssize_t n = read(fds[from].fd, buf, sizeof buf);
    if (n <= 0) break;
    if (write(from == 0 ? in[1] : s, buf, (size_t)n) != n) break;
  }
  kill(child, SIGKILL);
  waitpid(child, NULL, 0);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    dprintf(2, "usage: sockhelper connect-fd0|connect-fd0-exec|connect-fd3|dup2|dup3|file-dup2|unix-fd0|uring-relay ...\n");
    return 2;
  }
  const char *mode = argv[1];
  if (!strcmp(mode, "connect-fd0") && argc == 4) {
    close(0);
    connect_on(0, argv[2], argv[3]);
  } else if (!strcmp(mode, "connect-fd0-exec") && argc == 5) {
    close(0);
    connect_on(0, argv[2], argv[3]);
    if (dup2(0, 1) != 1) fail("dup2");
    execl(argv[4], "sh", (char *)NULL);
    fail("execl");
  } else if (!strcmp(mode, "connect-fd3") && argc == 4) {
    /* fds 0-2 are the test's pipes; close anything above so socket() returns 3. */
    for (int fd = 3; fd < 64; fd++) close(fd);
    connect_on(3, argv[2], argv[3]);
  } else if ((!strcmp(mode, "dup2") || !strcmp(mode, "dup3")) && argc == 5) {
    int s = connected(argv[2], argv[3]);
    int newfd = atoi(argv[4]);
    int r = !strcmp(mode, "dup2") ? dup2(s, newfd) : dup3(s, newfd, O_CLOEXEC);
    if (r != newfd) fail(mode);
  } else if (!strcmp(mode, "file-dup2") && argc == 4) {
    int f = open(argv[2], O_RDONLY);
    if (f < 0) fail("open");
    if (dup2(f, atoi(argv[3])) != atoi(argv[3])) fail("dup2");
  } else if (!strcmp(mode, "unix-fd0") && argc == 3) {
    struct sockaddr_un su;
    memset(&su, 0, sizeof su);
    su.sun_family = AF_UNIX;
    strncpy(su.sun_path, argv[2], sizeof su.sun_path - 1);
    close(0);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    if (s != 0) fail("AF_UNIX socket did not land on fd 0");
    /* The exact length, not sizeof su: the hook must read no more than the caller passed. */
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(su.sun_path) + 1);
    if (connect(s, (struct sockaddr *)&su, len) < 0) fail("connect");
  } else if (!strcmp(mode, "uring-relay") && argc == 5) {
    struct sockaddr_in sa = addr(argv[2], argv[3]);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0) fail("socket");
    uring_connect(s, &sa);
    return relay(s, argv[4]);
  } else {
    dprintf(2, "sockhelper: unknown mode or wrong argument count: %s\n", mode);
    return 2;
  }
  return 0;
}
