// SPDX-License-Identifier: Apache-2.0
/*
 * sockeye-loadgen: makes the syscalls sockeye watches, at a known rate, for the benchmarks.
 *
 *   dups RATE SECONDS          dup2 of a connected UDP socket (to 127.0.0.1) onto fd 1: one
 *                              socket_dup record each. RATE 0 = closed loop (as fast as it can).
 *   probe COUNT INTERVAL_US    latency probes: each a fresh UDP socket connected to a new
 *                              127.0.0.1 port (a new TRC-101 fold key, so a new finding), dup2'd
 *                              onto fd 1; comm "sockeye-probe".
 *   overhead KIND COUNT        ns per call, KIND = dup2-nonsock | connect-udp | exec.
 *   execs RATE SECONDS         process storm: fork+exec of /bin/true at RATE per second, children
 *                              reaped as they exit (at most MAX_CHILDREN alive at once); RATE 0 =
 *                              closed loop (fork, exec, wait, next). Reports what it achieved:
 *                              a rate the machine cannot give is reported, not pretended.
 *   flood SECONDS              exec flood (fork+exec /bin/true with ~6 KiB of argv) on one
 *                              process and decoys on another: matching dups from one process
 *                              (fills the detection ring as fast as one CPU can) interleaved
 *                              with dups of pipes and connects on fd 3 (filtered in the kernel).
 *   kill-probe COUNT PORT      enforcement's kill latency (bench part `enforce`; root, beside an
 *                              enforcing sensor): COUNT rounds of four children, each with a TCP
 *                              socket connected to 127.0.0.1:PORT (a listener the bench holds)
 *                              dup2'd onto fds 0 and 1, timed from a CLOCK_MONOTONIC stamp taken
 *                              just before the act to the parent's waitpid returning:
 *                                exec-sh    execve("/bin/sh"): the kernel kills it at exec (or
 *                                           denies the exec where the BPF LSM is live: then the
 *                                           child stamps execve's return and exits)
 *                                exec-true  execve("/bin/true"): no interpreter, runs to its exit
 *                                           (the reference: an exec that is not stopped)
 *                                dup-sh     comm "sh", the dup2 onto fd 1 that completes the shape:
 *                                           killed at the dup's syscall exit
 *                                dup-exit   comm unchanged, the same dup2, then _exit(0)
 *                                           (the reference: exit and reaping alone)
 *                              A child not reaped within 2 s is killed and counted as survived.
 *
 * Results are one JSON line on the real stdout. Every mode is bounded in count and time and
 * stops by itself; UDP sockets send nothing (connect on UDP only sets the peer), so no
 * packet leaves this machine, and nothing targets anything but 127.0.0.1.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The throughput consumers count records by this comm (15 bytes: TASK_COMM_LEN - 1). */
#define COMM_LOAD "sockeye-loadgen"
#define COMM_PROBE "sockeye-probe"
/* Hard ceiling on any mode's run time, whatever the arguments say. */
#define MAX_SECONDS 120
/* Fixed-rate mode checks the clock every this many calls: cheap, and fine-grained enough. */
#define PACE_CHUNK 64
#define PROBE_PORT_BASE 20000
#define PROBE_PORT_SPAN 20000

static int real_stdout = -1;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what)
{
	fprintf(stderr, "sockeye-loadgen: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void usage(void)
{
	fprintf(stderr, "usage: sockeye-loadgen dups RATE SECONDS | probe COUNT INTERVAL_US | "
			"overhead dup2-nonsock|connect-udp|exec COUNT | execs RATE SECONDS | flood SECONDS | "
			"kill-probe COUNT PORT\n");
	exit(2);
}

static double number(const char *s)
{
	char *end;
	double v = strtod(s, &end);
	if (*s == 0 || *end != 0 || v < 0)
		usage();
	return v;
}

/* fd 1 is replaced by sockets on purpose; results go to a copy of the real stdout. */
static void save_stdout(void)
{
	real_stdout = fcntl(1, F_DUPFD_CLOEXEC, 10);
	if (real_stdout < 0)
		die("dup of stdout");
}

static void restore_stdout(void)
{
	if (dup2(real_stdout, 1) < 0)
		die("restore stdout");
}

static int udp_connected(int port)
{
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(port) };
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (s < 0)
		die("socket");
	to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(s, (struct sockaddr *)&to, sizeof(to)) < 0)
		die("connect 127.0.0.1");
	return s;
}

static int mode_dups(double rate, double seconds)
{
	int s = udp_connected(9);
	uint64_t start = now_ns(), deadline = start + (uint64_t)(seconds * 1e9), t = start;
	uint64_t done = 0;

	prctl(PR_SET_NAME, COMM_LOAD);
	while (t < deadline) {
		uint64_t due = rate > 0 ? (uint64_t)((double)(t - start) * rate / 1e9) + 1 : done + PACE_CHUNK;
		/* Behind schedule: catch up in chunks; ahead: yield the CPU briefly. */
		if (done >= due) {
			struct timespec nap = { 0, 20000 };
			nanosleep(&nap, NULL);
		}
		for (int i = 0; i < PACE_CHUNK && done < due; i++, done++)
			if (dup2(s, 1) < 0)
				die("dup2 socket onto fd 1");
		t = now_ns();
	}
	restore_stdout();
	close(s);
	dprintf(real_stdout, "{\"generated\":%llu,\"seconds\":%.6f}\n", (unsigned long long)done,
		(double)(t - start) / 1e9);
	return 0;
}

static int mode_probe(double count, double interval_us)
{
	uint64_t end = now_ns() + (uint64_t)MAX_SECONDS * 1000000000ull;
	unsigned long n = 0;
	struct timespec gap = { (time_t)(interval_us / 1e6), (long)((uint64_t)interval_us % 1000000 * 1000) };

	prctl(PR_SET_NAME, COMM_PROBE);
	for (; n < (unsigned long)count && now_ns() < end; n++) {
		int s = udp_connected(PROBE_PORT_BASE + (int)(n % PROBE_PORT_SPAN));
		if (dup2(s, 1) < 0)
			die("dup2 socket onto fd 1");
		restore_stdout();
		close(s);
		nanosleep(&gap, NULL);
	}
	dprintf(real_stdout, "{\"probes\":%lu}\n", n);
	return 0;
}

static void run_true(char *const argv[])
{
	pid_t pid = fork();
	int status;

	if (pid < 0)
		die("fork");
	if (pid == 0) {
		execv("/bin/true", argv);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0)
		die("waitpid");
}

static int mode_overhead(const char *kind, double count)
{
	static char *true_argv[] = { "/bin/true", NULL };
	unsigned long n = (unsigned long)count, i;
	int fds[2], s = -1;
	uint64_t start, elapsed;

	if (pipe2(fds, O_CLOEXEC) < 0)
		die("pipe");
	if (!strcmp(kind, "connect-udp")) {
		s = udp_connected(9);
	} else if (strcmp(kind, "dup2-nonsock") && strcmp(kind, "exec")) {
		usage();
	}
	start = now_ns();
	for (i = 0; i < n; i++) {
		if (!strcmp(kind, "dup2-nonsock")) {
			/* onto fd 1 like a redirection would, but of a pipe: the kernel side drops it */
			if (dup2(fds[1], 1) < 0)
				die("dup2 pipe");
		} else if (s >= 0) {
			struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(9) };
			to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
			if (connect(s, (struct sockaddr *)&to, sizeof(to)) < 0)
				die("connect 127.0.0.1");
		} else {
			run_true(true_argv);
		}
		if ((i & 1023) == 0 && now_ns() - start > (uint64_t)MAX_SECONDS * 1000000000ull)
			break;
	}
	elapsed = now_ns() - start;
	restore_stdout();
	dprintf(real_stdout, "{\"kind\":\"%s\",\"calls\":%lu,\"ns_per_call\":%.1f}\n", kind, i,
		i ? (double)elapsed / (double)i : 0.0);
	return 0;
}

/* A fixed-rate storm never has more children alive than this: past it the generator waits
 * for exits instead of piling up processes (and reports the rate it really reached). */
#define MAX_CHILDREN 64

static int mode_execs(double rate, double seconds)
{
	static char *true_argv[] = { "/bin/true", NULL };
	uint64_t start = now_ns(), deadline = start + (uint64_t)(seconds * 1e9), t = start;
	unsigned long started = 0, reaped = 0, capped = 0;

	prctl(PR_SET_NAME, COMM_LOAD);
	while (t < deadline) {
		if (rate <= 0) {
			run_true(true_argv);
			started++;
			reaped++;
			t = now_ns();
			continue;
		}
		uint64_t due = (uint64_t)((double)(t - start) * rate / 1e9) + 1;
		while (waitpid(-1, NULL, WNOHANG) > 0)
			reaped++;
		if (started >= due) {
			struct timespec nap = { 0, 200000 };
			nanosleep(&nap, NULL);
		} else if (started - reaped >= MAX_CHILDREN) {
			capped++;
			if (waitpid(-1, NULL, 0) > 0)
				reaped++;
		} else {
			pid_t pid = fork();
			if (pid < 0)
				die("fork");
			if (pid == 0) {
				execv("/bin/true", true_argv);
				_exit(127);
			}
			started++;
		}
		t = now_ns();
	}
	while (reaped < started && waitpid(-1, NULL, 0) > 0)
		reaped++;
	restore_stdout();
	dprintf(real_stdout, "{\"execs\":%lu,\"seconds\":%.6f,\"rate\":%.1f,\"waited_for_children\":%lu}\n",
		started, (double)(t - start) / 1e9, (double)started * 1e9 / (double)(t - start), capped);
	return 0;
}

/* ~6 KiB of argv per exec: big records fill the process ring faster. */
#define FLOOD_ARGS 48
#define FLOOD_ARG_LEN 128

static void flood_exec(uint64_t deadline, unsigned long *execs)
{
	static char args[FLOOD_ARGS][FLOOD_ARG_LEN];
	char *argv[FLOOD_ARGS + 2];

	argv[0] = "/bin/true";
	for (int i = 0; i < FLOOD_ARGS; i++) {
		memset(args[i], 'a' + i % 26, FLOOD_ARG_LEN - 1);
		argv[i + 1] = args[i];
	}
	argv[FLOOD_ARGS + 1] = NULL;
	for (*execs = 0; now_ns() < deadline; (*execs)++)
		run_true(argv);
}

static void flood_decoys(uint64_t deadline, unsigned long *dups)
{
	int s = udp_connected(9), fds[2], other = udp_connected(9);
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(9) };

	to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (pipe2(fds, O_CLOEXEC) < 0)
		die("pipe");
	for (*dups = 0; now_ns() < deadline;) {
		for (int i = 0; i < PACE_CHUNK; i++, (*dups)++) {
			if (dup2(s, 1) < 0 || dup2(fds[0], 0) < 0)
				die("decoy dup2");
			if (connect(other, (struct sockaddr *)&to, sizeof(to)) < 0)
				die("decoy connect");
		}
	}
}

static int mode_flood(double seconds)
{
	uint64_t deadline = now_ns() + (uint64_t)(seconds * 1e9);
	int report[2];
	unsigned long execs = 0, dups = 0;
	pid_t child;

	if (seconds > MAX_SECONDS)
		seconds = MAX_SECONDS;
	if (pipe(report) < 0)
		die("pipe");
	prctl(PR_SET_NAME, COMM_LOAD);
	child = fork();
	if (child < 0)
		die("fork");
	if (child == 0) {
		close(report[0]);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		flood_decoys(deadline, &dups);
		if (write(report[1], &dups, sizeof(dups)) != sizeof(dups))
			_exit(1);
		_exit(0);
	}
	close(report[1]);
	flood_exec(deadline, &execs);
	if (read(report[0], &dups, sizeof(dups)) != sizeof(dups))
		dups = 0;
	waitpid(child, NULL, 0);
	restore_stdout();
	dprintf(real_stdout, "{\"execs\":%lu,\"decoy_rounds\":%lu,\"seconds\":%.3f}\n", execs, dups, seconds);
	return 0;
}

/* kill-probe: one child, timed. The child writes its stamp (and, when execve returns, a
 * second stamp and errno) to a close-on-exec pipe; the parent reads it to EOF (the exec or
 * the exit closes it), then reaps. */
enum { KP_EXEC_SH, KP_EXEC_TRUE, KP_DUP_SH, KP_DUP_EXIT, KP_KINDS };
static const char *const kp_names[KP_KINDS] = { "exec-sh", "exec-true", "dup-sh", "dup-exit" };
static volatile pid_t kp_child;

static void kp_alarm(int sig)
{
	if (kp_child > 0)
		kill(kp_child, SIGKILL);
}

static int tcp_connected(int port)
{
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(port) };
	int s = socket(AF_INET, SOCK_STREAM, 0);

	if (s < 0)
		_exit(120);
	to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(s, (struct sockaddr *)&to, sizeof(to)) < 0)
		_exit(121);
	return s;
}

struct kp_result {
	unsigned long killed, denied, exited, survived, failed;
	double *us;
	unsigned long n;
};

static void kp_one(int kind, int port, struct kp_result *r)
{
	int p[2], status;
	uint64_t stamp[3] = { 0, 0, 0 }, t;
	ssize_t got = 0, k;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		die("pipe");
	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		static char *sh_argv[] = { "sh", NULL }, *true_argv[] = { "/bin/true", NULL };
		int s = tcp_connected(port);
		close(p[0]);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (dup2(s, 0) < 0)
			_exit(122);
		if (kind == KP_DUP_SH)
			prctl(PR_SET_NAME, "sh");
		if (kind == KP_DUP_SH || kind == KP_DUP_EXIT) {
			stamp[0] = now_ns();
			if (write(p[1], stamp, sizeof(stamp[0])) != sizeof(stamp[0]))
				_exit(123);
			dup2(s, 1);
			_exit(0);
		}
		if (dup2(s, 1) < 0)
			_exit(122);
		close(s);
		stamp[0] = now_ns();
		if (write(p[1], stamp, sizeof(stamp[0])) != sizeof(stamp[0]))
			_exit(123);
		if (kind == KP_EXEC_SH)
			execv("/bin/sh", sh_argv);
		else
			execv("/bin/true", true_argv);
		stamp[1] = now_ns();
		stamp[2] = (uint64_t)errno;
		if (write(p[1], stamp + 1, 2 * sizeof(stamp[0])) != 2 * sizeof(stamp[0]))
			_exit(123);
		_exit(126);
	}
	close(p[1]);
	kp_child = pid;
	alarm(2);
	while ((k = read(p[0], (char *)stamp + got, sizeof(stamp) - (size_t)got)) > 0)
		got += k;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			die("waitpid");
	t = now_ns();
	alarm(0);
	kp_child = 0;
	close(p[0]);
	if (got == 3 * (ssize_t)sizeof(stamp[0]) && stamp[2] == EPERM) {
		/* denied: execve returned -EPERM; the latency is the exec call's own */
		r->denied++;
		r->us[r->n++] = (double)(stamp[1] - stamp[0]) / 1e3;
	} else if (got < (ssize_t)sizeof(stamp[0])) {
		r->failed++; /* the child failed before its stamp (socket, connect) */
	} else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL && (kind == KP_EXEC_SH || kind == KP_DUP_SH)
		   && t - stamp[0] < 2000000000ull) {
		r->killed++;
		r->us[r->n++] = (double)(t - stamp[0]) / 1e3;
	} else if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && (kind == KP_EXEC_TRUE || kind == KP_DUP_EXIT)) {
		r->exited++;
		r->us[r->n++] = (double)(t - stamp[0]) / 1e3;
	} else {
		r->survived++; /* not stopped (killed by the 2 s alarm), or ended otherwise */
	}
}

static int mode_kill_probe(double count, double port)
{
	unsigned long n = (unsigned long)count;
	uint64_t end = now_ns() + (uint64_t)MAX_SECONDS * 1000000000ull;
	struct kp_result r[KP_KINDS] = { { 0 } };

	if (n == 0 || n > 100000 || port < 1 || port > 65535)
		usage();
	signal(SIGALRM, kp_alarm);
	for (int k = 0; k < KP_KINDS; k++)
		if (!(r[k].us = calloc(n, sizeof(double))))
			die("calloc");
	/* Interleaved: drift on this shared machine hits every kind alike. */
	for (unsigned long i = 0; i < n && now_ns() < end; i++)
		for (int k = 0; k < KP_KINDS; k++)
			kp_one(k, (int)port, &r[k]);
	restore_stdout();
	dprintf(real_stdout, "{");
	for (int k = 0; k < KP_KINDS; k++) {
		dprintf(real_stdout, "%s\"%s\":{\"killed\":%lu,\"denied\":%lu,\"exited\":%lu,\"survived\":%lu,\"failed\":%lu,\"us\":[",
			k ? "," : "", kp_names[k], r[k].killed, r[k].denied, r[k].exited, r[k].survived, r[k].failed);
		for (unsigned long i = 0; i < r[k].n; i++)
			dprintf(real_stdout, "%s%.1f", i ? "," : "", r[k].us[i]);
		dprintf(real_stdout, "]}");
	}
	dprintf(real_stdout, "}\n");
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 3)
		usage();
	save_stdout();
	signal(SIGPIPE, SIG_IGN);
	if (!strcmp(argv[1], "dups") && argc == 4) {
		double seconds = number(argv[3]);
		return mode_dups(number(argv[2]), seconds > MAX_SECONDS ? MAX_SECONDS : seconds);
	}
	if (!strcmp(argv[1], "probe") && argc == 4)
		return mode_probe(number(argv[2]), number(argv[3]));
	if (!strcmp(argv[1], "overhead") && argc == 4)
		return mode_overhead(argv[2], number(argv[3]));
	if (!strcmp(argv[1], "execs") && argc == 4) {
		double seconds = number(argv[3]);
		return mode_execs(number(argv[2]), seconds > MAX_SECONDS ? MAX_SECONDS : seconds);
	}
	if (!strcmp(argv[1], "kill-probe") && argc == 4)
		return mode_kill_probe(number(argv[2]), number(argv[3]));
	if (!strcmp(argv[1], "flood") && argc == 3)
		return mode_flood(number(argv[2]));
	usage();
}
