/* The C baseline for POSIX shared memory, as shm_driver.c / shm_echo.c are for System V.
 *   posix_shm_bench driver   reads commands on stdin, one per line, and prints the elapsed
 *                            nanoseconds of each on stdout (each object is opened and mapped
 *                            once, at its first command, and stays mapped until exit):
 *     copy NAME MIB CHUNK    MIB MiB written into object NAME with memcpy, CHUNK bytes at a time
 *                            from one source buffer, at successive offsets (wrapping at the
 *                            object's end), then as many read back into one target buffer
 *     pingpong NAME N        N round trips with an echo child on the 32-bit word at offset 0:
 *                            store an odd value and FUTEX_WAKE, then FUTEX_WAIT until the child
 *                            has stored the next (even) value
 *   posix_shm_bench echo NAME   the echo child: waits for an odd value, stores the next (even)
 *                            value and wakes; ends on 0xffffffff, or when its parent is gone. */
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static struct { char name[256]; char *addr; size_t size; } seen[16];
static int nseen;

/* shm_open + fstat + mmap, once per name. */
static char *map(const char *name, size_t *size) {
  for (int i = 0; i < nseen; i++) {
    if (strcmp(seen[i].name, name) == 0) {
      *size = seen[i].size;
      return seen[i].addr;
    }
  }
  int fd = shm_open(name, O_RDWR, 0);
  if (fd < 0) { perror("shm_open"); exit(1); }
  struct stat st;
  if (fstat(fd, &st) < 0) { perror("fstat"); exit(1); }
  char *p = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) { perror("mmap"); exit(1); }
  close(fd);
  if (nseen == 16) { fprintf(stderr, "too many objects\n"); exit(2); }
  snprintf(seen[nseen].name, sizeof seen[nseen].name, "%s", name);
  seen[nseen].addr = p;
  seen[nseen].size = (size_t)st.st_size;
  nseen++;
  *size = (size_t)st.st_size;
  return p;
}

static void futex_wait(uint32_t *word, uint32_t expected, const struct timespec *t) {
  if (syscall(SYS_futex, word, FUTEX_WAIT, expected, t, NULL, 0) < 0 && errno != EAGAIN &&
      errno != EINTR && errno != ETIMEDOUT) {
    perror("futex wait");
    exit(1);
  }
}

static void futex_wake(uint32_t *word) {
  if (syscall(SYS_futex, word, FUTEX_WAKE, 1, NULL, NULL, 0) < 0) { perror("futex wake"); exit(1); }
}

static int echo(const char *name) {
  pid_t parent = getppid();
  size_t size;
  uint32_t *word = (uint32_t *)map(name, &size);
  struct timespec second = {1, 0};
  for (;;) {
    uint32_t v = __atomic_load_n(word, __ATOMIC_SEQ_CST);
    if (v == 0xffffffffu) return 0;
    if (v & 1u) {
      __atomic_store_n(word, v + 1, __ATOMIC_SEQ_CST);
      futex_wake(word);
      continue;
    }
    futex_wait(word, v, &second);
    if (getppid() != parent) return 0;
  }
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "echo") == 0) return echo(argv[2]);
  if (argc != 2 || strcmp(argv[1], "driver") != 0) {
    fprintf(stderr, "usage: posix_shm_bench driver | echo NAME\n");
    return 2;
  }
  char line[512], cmd[32], name[256];
  long n, chunk;
  char *src = NULL, *dst = NULL;
  setvbuf(stdout, NULL, _IOLBF, 0);
  while (fgets(line, sizeof line, stdin)) {
    chunk = 0;
    if (sscanf(line, "%31s %255s %ld %ld", cmd, name, &n, &chunk) < 3) {
      fprintf(stderr, "bad command: %s", line);
      return 2;
    }
    size_t size;
    char *obj = map(name, &size);
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
      for (long i = 0; i < count; i++) memcpy(obj + (size_t)(i % per) * chunk, src, (size_t)chunk);
      for (long i = 0; i < count; i++) memcpy(dst, obj + (size_t)(i % per) * chunk, (size_t)chunk);
      elapsed = now_ns() - t0;
      if (dst[chunk - 1] != 'x') { fprintf(stderr, "copy check failed\n"); return 1; }
    } else if (strcmp(cmd, "pingpong") == 0) {
      uint32_t *word = (uint32_t *)obj;
      uint32_t v = __atomic_load_n(word, __ATOMIC_SEQ_CST);
      long long t0 = now_ns();
      for (long i = 0; i < n; i++) {
        uint32_t odd = (v | 1u) + (v & 1u ? 2u : 0u);
        __atomic_store_n(word, odd, __ATOMIC_SEQ_CST);
        futex_wake(word);
        while ((v = __atomic_load_n(word, __ATOMIC_SEQ_CST)) == odd) futex_wait(word, odd, NULL);
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
