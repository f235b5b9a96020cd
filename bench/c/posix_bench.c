/* The C side of the POSIX message queue and named semaphore benchmarks. One program, several
 * roles:
 *
 *   posix_bench mq-echo REQ REP     echo child: takes each message off queue REQ (mq_receive)
 *                                   and sends it back on queue REP with the same priority, until
 *                                   a message of priority 0 (the stop message, not echoed)
 *   posix_bench sem-echo A B        echo child: waits on semaphore A (sem_wait) and posts B
 *                                   (sem_post), until A is posted while the file STOP exists
 *                                   (its path is the third argument)
 *   posix_bench driver              the timed side. Reads commands on stdin, one per line, and
 *                                   prints the elapsed nanoseconds of the timed part of each:
 *       mq-rt REQ REP N SIZE        N round trips: send SIZE bytes (priority 1) on REQ, take the
 *                                   reply off REP
 *       mq-drain Q N SIZE CHUNK     N receives off a backlog: CHUNK messages are queued
 *                                   (untimed), then taken (timed), until N were taken
 *       sem-uncontended S N         N times: sem_wait then sem_post on S (which holds 1)
 *       sem-pingpong A B N          N times: sem_post A, then sem_wait B
 *
 * Queues and semaphores are opened by name and must exist; C's own calls, no retries but EINTR. */
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <semaphore.h>
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

static mqd_t open_queue(const char *name, int flags) {
  mqd_t q = mq_open(name, flags);
  if (q == (mqd_t)-1) { perror(name); exit(1); }
  return q;
}

static sem_t *open_sem(const char *name) {
  sem_t *s = sem_open(name, 0);
  if (s == SEM_FAILED) { perror(name); exit(1); }
  return s;
}

static char *buffer_for(mqd_t q, long *size) {
  struct mq_attr a;
  if (mq_getattr(q, &a) != 0) { perror("mq_getattr"); exit(1); }
  *size = a.mq_msgsize;
  char *b = malloc((size_t)a.mq_msgsize);
  if (!b) exit(1);
  return b;
}

static void snd(mqd_t q, const char *b, size_t n, unsigned prio) {
  while (mq_send(q, b, n, prio) != 0) {
    if (errno != EINTR) { perror("mq_send"); exit(1); }
  }
}

static ssize_t rcv(mqd_t q, char *b, long size, unsigned *prio) {
  ssize_t n;
  while ((n = mq_receive(q, b, (size_t)size, prio)) < 0) {
    if (errno != EINTR) { perror("mq_receive"); exit(1); }
  }
  return n;
}

static void wait_sem(sem_t *s) {
  while (sem_wait(s) != 0) {
    if (errno != EINTR) { perror("sem_wait"); exit(1); }
  }
}

static int mq_echo(const char *req_name, const char *rep_name) {
  mqd_t req = open_queue(req_name, O_RDONLY), rep = open_queue(rep_name, O_WRONLY);
  long size;
  char *b = buffer_for(req, &size);
  for (;;) {
    unsigned prio;
    ssize_t n = rcv(req, b, size, &prio);
    if (prio == 0) return 0;
    snd(rep, b, (size_t)n, prio);
  }
}

static int sem_echo(const char *a_name, const char *b_name, const char *stop) {
  sem_t *a = open_sem(a_name), *b = open_sem(b_name);
  for (;;) {
    wait_sem(a);
    if (access(stop, F_OK) == 0) return 0;
    if (sem_post(b) != 0) { perror("sem_post"); return 1; }
  }
}

static int driver(void) {
  char line[1024], cmd[32], n1[256], n2[256];
  static char out[65536];
  memset(out, 'x', sizeof out);
  setvbuf(stdout, NULL, _IOLBF, 0);
  while (fgets(line, sizeof line, stdin)) {
    long long elapsed = 0;
    long n = 0, size = 0, chunk = 0;
    if (sscanf(line, "%31s", cmd) != 1) { fprintf(stderr, "bad command: %s", line); return 2; }
    if (strcmp(cmd, "mq-rt") == 0 && sscanf(line, "%*s %255s %255s %ld %ld", n1, n2, &n, &size) == 4) {
      mqd_t req = open_queue(n1, O_WRONLY), rep = open_queue(n2, O_RDONLY);
      long room;
      char *b = buffer_for(rep, &room);
      long long t0 = now_ns();
      for (long i = 0; i < n; i++) {
        unsigned prio;
        snd(req, out, (size_t)size, 1);
        rcv(rep, b, room, &prio);
      }
      elapsed = now_ns() - t0;
      free(b);
      mq_close(req);
      mq_close(rep);
    } else if (strcmp(cmd, "mq-drain") == 0 && sscanf(line, "%*s %255s %ld %ld %ld", n1, &n, &size, &chunk) == 4) {
      mqd_t q = open_queue(n1, O_RDWR);
      long room;
      char *b = buffer_for(q, &room);
      for (long done = 0; done < n;) {
        long k = n - done < chunk ? n - done : chunk;
        for (long i = 0; i < k; i++) snd(q, out, (size_t)size, 1);
        long long t0 = now_ns();
        for (long i = 0; i < k; i++) {
          unsigned prio;
          rcv(q, b, room, &prio);
        }
        elapsed += now_ns() - t0;
        done += k;
      }
      free(b);
      mq_close(q);
    } else if (strcmp(cmd, "sem-uncontended") == 0 && sscanf(line, "%*s %255s %ld", n1, &n) == 2) {
      sem_t *s = open_sem(n1);
      long long t0 = now_ns();
      for (long i = 0; i < n; i++) {
        wait_sem(s);
        if (sem_post(s) != 0) { perror("sem_post"); return 1; }
      }
      elapsed = now_ns() - t0;
      sem_close(s);
    } else if (strcmp(cmd, "sem-pingpong") == 0 && sscanf(line, "%*s %255s %255s %ld", n1, n2, &n) == 3) {
      sem_t *a = open_sem(n1), *b = open_sem(n2);
      long long t0 = now_ns();
      for (long i = 0; i < n; i++) {
        if (sem_post(a) != 0) { perror("sem_post"); return 1; }
        wait_sem(b);
      }
      elapsed = now_ns() - t0;
      sem_close(a);
      sem_close(b);
    } else {
      fprintf(stderr, "bad command: %s", line);
      return 2;
    }
    printf("%lld\n", elapsed);
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 4 && strcmp(argv[1], "mq-echo") == 0) return mq_echo(argv[2], argv[3]);
  if (argc == 5 && strcmp(argv[1], "sem-echo") == 0) return sem_echo(argv[2], argv[3], argv[4]);
  if (argc == 2 && strcmp(argv[1], "driver") == 0) return driver();
  fprintf(stderr, "usage: posix_bench mq-echo REQ REP | sem-echo A B STOP | driver\n");
  return 2;
}
