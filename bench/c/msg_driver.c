/* The C baseline for message queues. Reads commands on stdin, one per line, and prints the
 * elapsed nanoseconds of the timed part of each on stdout:
 *   rt QID N SIZE            N round trips: send SIZE bytes as type 1, take the type-2 reply
 *   drain QID N SIZE CHUNK   N receives off a backlog: CHUNK messages are queued (untimed),
 *                            then taken (timed), until N were taken
 *   consume QID N SIZE       N receives of messages another process sends (timed)
 *   produce QID N SIZE       N sends of type 1 (prints 0; the consumer does the timing)
 * Exits at end of input. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/msg.h>
#include <time.h>

struct msgbuf_big {
  long mtype;
  char mtext[65536];
};

static struct msgbuf_big out, in;

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void snd(int qid, long type, size_t size) {
  out.mtype = type;
  while (msgsnd(qid, &out, size, 0) < 0) {
    if (errno != EINTR) { perror("msgsnd"); exit(1); }
  }
}

static void rcv(int qid, long type) {
  while (msgrcv(qid, &in, sizeof in.mtext, type, 0) < 0) {
    if (errno != EINTR) { perror("msgrcv"); exit(1); }
  }
}

int main(void) {
  char line[256], cmd[32];
  int qid;
  long n, size, chunk;
  memset(out.mtext, 'x', sizeof out.mtext);
  setvbuf(stdout, NULL, _IOLBF, 0);
  while (fgets(line, sizeof line, stdin)) {
    chunk = 0;
    if (sscanf(line, "%31s %d %ld %ld %ld", cmd, &qid, &n, &size, &chunk) < 4) {
      fprintf(stderr, "bad command: %s", line);
      return 2;
    }
    long long elapsed = 0;
    if (strcmp(cmd, "rt") == 0) {
      long long t0 = now_ns();
      for (long i = 0; i < n; i++) {
        snd(qid, 1, (size_t)size);
        rcv(qid, 2);
      }
      elapsed = now_ns() - t0;
    } else if (strcmp(cmd, "drain") == 0) {
      if (chunk <= 0) chunk = n;
      for (long done = 0; done < n;) {
        long k = n - done < chunk ? n - done : chunk;
        for (long i = 0; i < k; i++) snd(qid, 1, (size_t)size);
        long long t0 = now_ns();
        for (long i = 0; i < k; i++) rcv(qid, 0);
        elapsed += now_ns() - t0;
        done += k;
      }
    } else if (strcmp(cmd, "consume") == 0) {
      long long t0 = now_ns();
      for (long i = 0; i < n; i++) rcv(qid, 0);
      elapsed = now_ns() - t0;
    } else if (strcmp(cmd, "produce") == 0) {
      for (long i = 0; i < n; i++) snd(qid, 1, (size_t)size);
    } else {
      fprintf(stderr, "unknown command: %s\n", cmd);
      return 2;
    }
    printf("%lld\n", elapsed);
  }
  return 0;
}
