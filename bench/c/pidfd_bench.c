/* The C baseline for awaiting a process's exit.
 *   pidfd_bench sleeper      a process that waits for a signal (pause) and dies of it: what
 *                            every row kills, so that only the notification differs.
 *   pidfd_bench driver       reads commands on stdin, prints the elapsed nanoseconds of each:
 *     exitwait N             forks N sleepers (untimed), then for each, timed: SIGKILL through
 *                            its pidfd and poll() until the pidfd is readable (the exit is
 *                            known); each is reaped untimed. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv) {
  if (argc == 2 && strcmp(argv[1], "sleeper") == 0) {
    for (;;) pause();
  }
  if (argc != 2 || strcmp(argv[1], "driver") != 0) {
    fprintf(stderr, "usage: pidfd_bench sleeper | driver\n");
    return 2;
  }
  char line[128], cmd[32];
  long n;
  setvbuf(stdout, NULL, _IOLBF, 0);
  while (fgets(line, sizeof line, stdin)) {
    if (sscanf(line, "%31s %ld", cmd, &n) != 2 || strcmp(cmd, "exitwait") != 0 || n <= 0) {
      fprintf(stderr, "bad command: %s", line);
      return 2;
    }
    pid_t *pids = calloc((size_t)n, sizeof *pids);
    int *fds = calloc((size_t)n, sizeof *fds);
    for (long i = 0; i < n; i++) {
      pids[i] = fork();
      if (pids[i] < 0) { perror("fork"); return 1; }
      if (pids[i] == 0) {
        for (;;) pause();
      }
      fds[i] = (int)syscall(SYS_pidfd_open, pids[i], 0);
      if (fds[i] < 0) { perror("pidfd_open"); return 1; }
    }
    long long total = 0;
    for (long i = 0; i < n; i++) {
      struct pollfd p = {fds[i], POLLIN, 0};
      long long t0 = now_ns();
      if (syscall(SYS_pidfd_send_signal, fds[i], SIGKILL, NULL, 0) < 0) { perror("pidfd_send_signal"); return 1; }
      while (poll(&p, 1, -1) < 0 && errno == EINTR) {
      }
      total += now_ns() - t0;
      waitpid(pids[i], NULL, 0);
      close(fds[i]);
    }
    free(pids);
    free(fds);
    printf("%lld\n", total);
  }
  return 0;
}
