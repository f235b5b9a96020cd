/* The C side of the signal benchmark.
 *
 *   sig_bench echo IN OUT   echo child: blocks signal IN, prints "ready", then for every IN it
 *                           takes (sigwaitinfo) sends OUT back to the sender with sigqueue and
 *                           the same value, until it is killed
 *   sig_bench driver OUT    the timed side: blocks signal OUT and reads commands on stdin:
 *       rt PID IN N         N round trips: sigqueue(PID, IN, i), sigwaitinfo(OUT); prints the
 *                           elapsed nanoseconds
 *
 * Both block their signal before anything can send it, so no delivery is lost or fatal. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static sigset_t only(int sig) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, sig);
  if (sigprocmask(SIG_BLOCK, &set, NULL) < 0) {
    perror("sigprocmask");
    exit(1);
  }
  return set;
}

static int take(const sigset_t *set, siginfo_t *info) {
  for (;;) {
    int s = sigwaitinfo(set, info);
    if (s >= 0) return s;
    if (errno != EINTR) {
      perror("sigwaitinfo");
      exit(1);
    }
  }
}

static void queue(pid_t pid, int sig, int value) {
  union sigval v;
  v.sival_int = value;
  while (sigqueue(pid, sig, v) < 0) {
    if (errno == EAGAIN || errno == EINTR) continue;
    perror("sigqueue");
    exit(1);
  }
}

int main(int argc, char **argv) {
  if (argc == 4 && strcmp(argv[1], "echo") == 0) {
    int in = atoi(argv[2]);
    int out = atoi(argv[3]);
    sigset_t set = only(in);
    printf("ready\n");
    fflush(stdout);
    for (;;) {
      siginfo_t info;
      take(&set, &info);
      queue(info.si_pid, out, info.si_value.sival_int);
    }
  }
  if (argc == 3 && strcmp(argv[1], "driver") == 0) {
    int out = atoi(argv[2]);
    sigset_t set = only(out);
    char line[256];
    setvbuf(stdout, NULL, _IOLBF, 0);
    while (fgets(line, sizeof line, stdin)) {
      long pid, in, n;
      if (sscanf(line, "rt %ld %ld %ld", &pid, &in, &n) != 3) {
        fprintf(stderr, "bad command: %s", line);
        return 2;
      }
      long long t0 = now_ns();
      for (long i = 0; i < n; i++) {
        siginfo_t info;
        queue((pid_t)pid, (int)in, (int)i);
        take(&set, &info);
        if (info.si_value.sival_int != (int)i) {
          fprintf(stderr, "reply %d to %ld\n", info.si_value.sival_int, i);
          return 1;
        }
      }
      printf("%lld\n", now_ns() - t0);
    }
    return 0;
  }
  fprintf(stderr, "usage: sig_bench echo IN OUT | driver OUT\n");
  return 2;
}
