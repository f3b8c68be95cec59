/*
 * stdio-decoys N PORT: forks N children that each connect a UDP socket to 127.0.0.1:PORT,
 * dup2 it onto fd 0 and linger (pause) without ever exec'ing: the shape of a reverse shell's
 * first step, which TRC-101's precise profile holds until the process execs or exits. Prints
 * "half" once N/2 children have dup'ed, "ready" once all have, then lingers too; every child
 * is in the parent's process group, so one kill(-pgid) ends them all.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: stdio-decoys N PORT\n");
    return 2;
  }
  long n = strtol(argv[1], NULL, 10);
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[2]))};
  inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
  int done[2];
  if (setpgid(0, 0) != 0 || pipe(done) != 0) return 1;
  for (long i = 0; i < n; i++) {
    pid_t pid = fork();
    if (pid < 0) {
      perror("fork");
      return 1;
    }
    if (pid == 0) {
      int s = socket(AF_INET, SOCK_DGRAM, 0);
      if (s < 0 || connect(s, (struct sockaddr *)&to, sizeof to) != 0 || dup2(s, 0) != 0) _exit(1);
      close(done[0]);
      if (write(done[1], "x", 1) != 1) _exit(1);
      close(done[1]);
      for (;;) pause();
    }
    char byte;
    if (read(done[0], &byte, 1) != 1) return 1;
    if (i + 1 == n / 2) {
      printf("half\n");
      fflush(stdout);
    }
  }
  printf("ready\n");
  fflush(stdout);
  for (;;) pause();
}
