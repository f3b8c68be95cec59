/*
 * Connects to 127.0.0.1:PORT, puts the socket on fds 0, 1 and 2 (close-on-exec when the first
 * argument is "cloexec", plain dup2 when it is "plain"), then executes PROGRAM ARGS. Not an
 * interpreter itself, so only the exec is judged (test/kernel/enforce.test.ts).
 * Usage: stdio-socket-exec cloexec|plain PORT PROGRAM [ARGS...]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct sockaddr_in addr = {0};
	int s, fd, flags;

	if (argc < 4) {
		fprintf(stderr, "usage: %s cloexec|plain PORT PROGRAM [ARGS...]\n", argv[0]);
		return 2;
	}
	flags = strcmp(argv[1], "cloexec") == 0 ? O_CLOEXEC : 0;
	s = socket(AF_INET, SOCK_STREAM, 0);
	addr.sin_family = AF_INET;
	addr.sin_port = htons((unsigned short)atoi(argv[2]));
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (s < 0 || connect(s, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
		perror("connect");
		return 3;
	}
	for (fd = 0; fd < 3; fd++) {
		if (dup3(s, fd, flags) != fd) {
			perror("dup3");
			return 4;
		}
	}
	close(s);
	execv(argv[3], argv + 3);
	return 5;
}
