// SPDX-License-Identifier: Apache-2.0
/*
 * A 64-bit program that puts a TCP socket (connected to 127.0.0.1:PORT) onto stdio through
 * ia32 syscalls (int $0x80), the way an attacker slips past syscall tracepoints, which skip
 * them. Built by test/kernel/compat.test.ts with the host's cc.
 *
 *   ia32-syscalls dup2|dup3|dup|fcntl|connect|socketcall PORT
 *   ia32-syscalls getpid 0
 *     (whether this kernel runs ia32 syscalls at all: exits 0 if it does; some builds kill
 *     the caller with SIGSEGV instead)
 *   ia32-syscalls accept4|socketcall-accept 0
 *     (an inetd-style service: accepts a connection from itself through ia32 accept4 or
 *     socketcall(SYS_ACCEPT), then dup2()s the accepted socket onto fd 1 through ia32 too)
 *
 * Prints the ia32 call's result on stderr; exits 0 when it succeeded.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

/* arch/x86/entry/syscalls/syscall_32.tbl */
#define IA32_GETPID 20
#define IA32_DUP 41
#define IA32_FCNTL64 221
#define IA32_DUP2 63
#define IA32_SOCKETCALL 102
#define IA32_DUP3 330
#define IA32_CONNECT 362
#define IA32_ACCEPT4 364

/* ia32 arguments: ebx, ecx, edx, esi (the fourth is 0 for every call here). */
static long int80(long nr, long a, long b, long c)
{
	long ret;

	__asm__ volatile("int $0x80" : "=a"(ret) : "a"(nr), "b"(a), "c"(b), "d"(c), "S"(0L) : "memory");
	return ret;
}

int main(int argc, char **argv)
{
	if (argc != 3)
		return 2;
	const char *mode = argv[1];
	if (!strcmp(mode, "getpid"))
		return int80(IA32_GETPID, 0, 0, 0) == getpid() ? 0 : 1;
	/* ia32 calls take 32-bit pointers: the address and socketcall's arguments live below 4 GiB. */
	unsigned char *low = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
	if (low == MAP_FAILED)
		return 3;
	struct sockaddr_in *addr = (struct sockaddr_in *)low;
	addr->sin_family = AF_INET;
	addr->sin_port = htons((unsigned short)atoi(argv[2]));
	addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	long ret;

	if (!strcmp(mode, "accept4") || !strcmp(mode, "socketcall-accept")) {
		int server = socket(AF_INET, SOCK_STREAM, 0);
		socklen_t len = sizeof(*addr);
		addr->sin_port = 0;
		if (bind(server, (struct sockaddr *)addr, sizeof(*addr)) || listen(server, 1) ||
		    getsockname(server, (struct sockaddr *)addr, &len))
			return 4;
		int client = socket(AF_INET, SOCK_STREAM, 0);
		if (connect(client, (struct sockaddr *)addr, sizeof(*addr)))
			return 4;
		long accepted;
		if (!strcmp(mode, "accept4")) {
			accepted = int80(IA32_ACCEPT4, server, 0, 0); /* flags (esi): 0 */
		} else {
			unsigned int *args = (unsigned int *)(low + 64);
			args[0] = (unsigned int)server;
			args[1] = 0;
			args[2] = 0;
			accepted = int80(IA32_SOCKETCALL, 5 /* SYS_ACCEPT */, (long)(unsigned long)args, 0);
		}
		if (accepted < 0) {
			dprintf(2, "accept %ld\n", accepted);
			return 1;
		}
		ret = int80(IA32_DUP2, accepted, 1, 0);
	} else if (!strcmp(mode, "connect") || !strcmp(mode, "socketcall")) {
		close(0);
		int s = socket(AF_INET, SOCK_STREAM, 0); /* the lowest free fd: 0 */
		if (!strcmp(mode, "connect")) {
			ret = int80(IA32_CONNECT, s, (long)(unsigned long)addr, sizeof(*addr));
		} else {
			unsigned int *args = (unsigned int *)(low + 64);
			args[0] = (unsigned int)s;
			args[1] = (unsigned int)(unsigned long)addr;
			args[2] = sizeof(*addr);
			ret = int80(IA32_SOCKETCALL, 3 /* SYS_CONNECT */, (long)(unsigned long)args, 0);
		}
	} else {
		int s = socket(AF_INET, SOCK_STREAM, 0);
		if (connect(s, (struct sockaddr *)addr, sizeof(*addr)))
			return 4;
		if (!strcmp(mode, "dup2")) {
			ret = int80(IA32_DUP2, s, 1, 0);
		} else if (!strcmp(mode, "dup3")) {
			ret = int80(IA32_DUP3, s, 2, 0);
		} else if (!strcmp(mode, "dup")) {
			close(0);
			ret = int80(IA32_DUP, s, 0, 0);
		} else if (!strcmp(mode, "fcntl")) {
			close(0);
			ret = int80(IA32_FCNTL64, s, 0 /* F_DUPFD */, 0);
		} else {
			return 2;
		}
	}
	dprintf(2, "%ld\n", ret);
	return ret < 0 ? 1 : 0;
}
