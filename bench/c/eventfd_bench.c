/* The C baseline for eventfd.
 *   eventfd_bench echo       the echo child: fd 3 is the "ping" eventfd, fd 4 the "pong" one.
 *                            Waits until fd 3 is readable (poll: a descriptor Node made is
 *                            non-blocking), reads it, and writes 1 to fd 4; ends when it reads
 *                            a count of 2^40 or more (the stop value), or at an error.
 *   eventfd_bench driver     reads commands on stdin, prints the elapsed nanoseconds of each:
 *     pingpong N             N round trips through two blocking eventfds with an echo child it
 *                            forks once (the same loop as `echo`): write 1 to "ping", read
 *                            "pong" (a blocking read, as a C program does) */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define STOP (1ull << 40)

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int echo(int ping, int pong) {
  struct pollfd p = {ping, POLLIN, 0};
  uint64_t v, one = 1;
  for (;;) {
    if (poll(&p, 1, -1) < 0) {
      if (errno == EINTR) continue;
      perror("poll");
      return 1;
    }
    if (read(ping, &v, 8) != 8) {
      if (errno == EAGAIN || errno == EINTR) continue;
      perror("read");
      return 1;
    }
    if (v >= STOP) return 0;
    if (write(pong, &one, 8) != 8) { perror("write"); return 1; }
  }
}

int main(int argc, char **argv) {
  if (argc == 2 && strcmp(argv[1], "echo") == 0) return echo(3, 4);
  if (argc != 2 || strcmp(argv[1], "driver") != 0) {
    fprintf(stderr, "usage: eventfd_bench echo | driver\n");
    return 2;
  }
  int ping = eventfd(0, EFD_CLOEXEC), pong = eventfd(0, EFD_CLOEXEC);
  if (ping < 0 || pong < 0) { perror("eventfd"); return 1; }
  pid_t child = fork();
  if (child < 0) { perror("fork"); return 1; }
  if (child == 0) _exit(echo(ping, pong));
  char line[128], cmd[32];
  long n;
  uint64_t one = 1, v;
  setvbuf(stdout, NULL, _IOLBF, 0);
  while (fgets(line, sizeof line, stdin)) {
    if (sscanf(line, "%31s %ld", cmd, &n) != 2 || strcmp(cmd, "pingpong") != 0) {
      fprintf(stderr, "bad command: %s", line);
      return 2;
    }
    long long t0 = now_ns();
    for (long i = 0; i < n; i++) {
      if (write(ping, &one, 8) != 8 || read(pong, &v, 8) != 8) { perror("round trip"); return 1; }
    }
    printf("%lld\n", now_ns() - t0);
  }
  uint64_t stop = STOP;
  if (write(ping, &stop, 8) != 8) perror("stop");
  waitpid(child, NULL, 0);
  return 0;
}
