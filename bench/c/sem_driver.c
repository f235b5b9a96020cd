/* The C baseline for semaphores. Reads commands on stdin, one per line, and prints the elapsed
 * nanoseconds of each on stdout:
 *   uncontended SEMID N   N times: take 1 from semaphore 0 and give it back, two semop calls
 *                         with SEM_UNDO (as ipckit's Semaphore does by default); semaphore 0
 *                         holds at least 1, so nothing waits
 *   pingpong SEMID N      N round trips with an echo child (sem_echo): add 1 to semaphore 0,
 *                         then wait to take 1 from semaphore 1 (no SEM_UNDO: the counts pass
 *                         between processes)
 * Exits at end of input. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sem.h>
#include <time.h>

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void op(int semid, unsigned short index, short delta, short flags) {
  struct sembuf b = {index, delta, flags};
  while (semop(semid, &b, 1) < 0) {
    if (errno != EINTR) { perror("semop"); exit(1); }
  }
}

int main(void) {
  char line[256], cmd[32];
  int semid;
  long n;
  setvbuf(stdout, NULL, _IOLBF, 0);
  while (fgets(line, sizeof line, stdin)) {
    if (sscanf(line, "%31s %d %ld", cmd, &semid, &n) < 3) {
      fprintf(stderr, "bad command: %s", line);
      return 2;
    }
    long long elapsed = 0;
    if (strcmp(cmd, "uncontended") == 0) {
      long long t0 = now_ns();
      for (long i = 0; i < n; i++) {
        op(semid, 0, -1, SEM_UNDO);
        op(semid, 0, 1, SEM_UNDO);
      }
      elapsed = now_ns() - t0;
    } else if (strcmp(cmd, "pingpong") == 0) {
      long long t0 = now_ns();
      for (long i = 0; i < n; i++) {
        op(semid, 0, 1, 0);
        op(semid, 1, -1, 0);
      }
      elapsed = now_ns() - t0;
    } else {
      fprintf(stderr, "unknown command: %s\n", cmd);
      return 2;
    }
    printf("%lld\n", elapsed);
  }
  return 0;
}
