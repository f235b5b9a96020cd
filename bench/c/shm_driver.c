/* The C baseline for shared memory. Attaches segments by id, reads commands on stdin, one per
 * line (keeping each attached until exit), and prints the elapsed nanoseconds of each on stdout:
 *   copy SHMID MIB CHUNK   MIB MiB written into the segment with memcpy, CHUNK bytes at a time
 *                          from one source buffer, at successive offsets (wrapping at the
 *                          segment's end), then as many read back into one target buffer
 *   pingpong SHMID N       N round trips with an echo child (shm_echo) on the 32-bit word at
 *                          offset 0: store an odd value and FUTEX_WAKE, then FUTEX_WAIT until
 *                          the child has stored the next (even) value
 *   stop SHMID             stores the stop value (0xffffffff) and wakes the echo child
 * Exits at end of input. */
#include <errno.h>
#include <linux/futex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* One attachment per segment for the whole run, as the Node side keeps its own: the pages are
 * faulted in by the warm-up, not by every timed command. */
static struct { int id; char *addr; size_t size; } seen[16];
static int nseen;

static char *attach(int shmid, size_t *size) {
  for (int i = 0; i < nseen; i++) {
    if (seen[i].id == shmid) {
      *size = seen[i].size;
      return seen[i].addr;
    }
  }
  struct shmid_ds ds;
  if (shmctl(shmid, IPC_STAT, &ds) < 0) { perror("shmctl"); exit(1); }
  void *p = shmat(shmid, NULL, 0);
  if (p == (void *)-1) { perror("shmat"); exit(1); }
  if (nseen == 16) { fprintf(stderr, "too many segments\n"); exit(2); }
  seen[nseen].id = shmid;
  seen[nseen].addr = p;
  seen[nseen].size = ds.shm_segsz;
  nseen++;
  *size = ds.shm_segsz;
  return p;
}

static void futex_wait(uint32_t *word, uint32_t expected) {
  if (syscall(SYS_futex, word, FUTEX_WAIT, expected, NULL, NULL, 0) < 0 && errno != EAGAIN &&
      errno != EINTR) {
    perror("futex wait");
    exit(1);
  }
}

static void futex_wake(uint32_t *word) {
  if (syscall(SYS_futex, word, FUTEX_WAKE, 1, NULL, NULL, 0) < 0) { perror("futex wake"); exit(1); }
}

int main(void) {
  char line[256], cmd[32];
  int shmid;
  long n, chunk;
  char *src = NULL, *dst = NULL;
  setvbuf(stdout, NULL, _IOLBF, 0);
  while (fgets(line, sizeof line, stdin)) {
    chunk = 0;
    if (sscanf(line, "%31s %d %ld %ld", cmd, &shmid, &n, &chunk) < 2) {
      fprintf(stderr, "bad command: %s", line);
      return 2;
    }
    size_t size;
    char *seg = attach(shmid, &size);
    long long elapsed = 0;
    if (strcmp(cmd, "copy") == 0) {
      if (chunk <= 0 || (size_t)chunk > size) { fprintf(stderr, "bad chunk\n"); return 2; }
      free(src);
      free(dst);
      src = malloc((size_t)chunk);
      dst = malloc((size_t)chunk);
      memset(src, 'x', (size_t)chunk);
      memset(dst, 0, (size_t)chunk);
      long count = (long)(((long long)n << 20) / chunk);
      long per = (long)(size / (size_t)chunk);
      long long t0 = now_ns();
      for (long i = 0; i < count; i++) memcpy(seg + (size_t)(i % per) * chunk, src, (size_t)chunk);
      for (long i = 0; i < count; i++) memcpy(dst, seg + (size_t)(i % per) * chunk, (size_t)chunk);
      elapsed = now_ns() - t0;
      if (dst[chunk - 1] != 'x') { fprintf(stderr, "copy check failed\n"); return 1; }
    } else if (strcmp(cmd, "pingpong") == 0) {
      uint32_t *word = (uint32_t *)seg;
      uint32_t v = __atomic_load_n(word, __ATOMIC_SEQ_CST);
      long long t0 = now_ns();
      for (long i = 0; i < n; i++) {
        uint32_t odd = (v | 1u) + (v & 1u ? 2u : 0u);
        __atomic_store_n(word, odd, __ATOMIC_SEQ_CST);
        futex_wake(word);
        while ((v = __atomic_load_n(word, __ATOMIC_SEQ_CST)) == odd) futex_wait(word, odd);
      }
      elapsed = now_ns() - t0;
    } else if (strcmp(cmd, "stop") == 0) {
      __atomic_store_n((uint32_t *)seg, 0xffffffffu, __ATOMIC_SEQ_CST);
      futex_wake((uint32_t *)seg);
    } else {
      fprintf(stderr, "unknown command: %s\n", cmd);
      return 2;
    }
    printf("%lld\n", elapsed);
  }
  return 0;
}
