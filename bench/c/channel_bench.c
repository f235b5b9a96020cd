/* The C floor of the Channel suite: both ends of an ipckit channel in C, through
 * include/ipckit/channel.h, with the same protocol (waiters flags, eventfd wakes) and blocking
 * sleeps (poll on the side's eventfd), as a C program would do it.
 *   channel_bench driver     makes a duplex memfd channel (16 MiB rings) and two eventfds, forks
 *                            one echo child, then reads commands on stdin and prints the elapsed
 *                            nanoseconds of each:
 *     rt N SIZE              N round trips of a SIZE-byte message (the child sends it back)
 *     stream N SIZE          the child sends N messages of SIZE bytes; this side takes them
 *                            (copying each out into a buffer of its own)
 *     memcpy N SIZE          N memcpy of SIZE bytes from one buffer into rotating places of a
 *                            16 MiB one (what a writer does), no channel: the bandwidth floor
 * The child echoes every message, except a 16-byte "PRODUCE\0" N SIZE message, on which it
 * sends N messages of SIZE bytes. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../include/ipckit/channel.h"

#define CAPACITY (16u << 20)

static unsigned char *base;
static int efd[2];

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void wake(int side) {
  uint64_t one = 1;
  if (write(efd[side], &one, 8) != 8) {
    perror("write eventfd");
    exit(1);
  }
}

static void sleep_side(int side) {
  struct pollfd p = {efd[side], POLLIN, 0};
  while (poll(&p, 1, -1) < 0)
    if (errno != EINTR) {
      perror("poll");
      exit(1);
    }
  uint64_t v;
  (void)!read(efd[side], &v, 8);
}

static void send_msg(struct ipckit_ring *w, int side, const void *data, uint32_t len) {
  for (;;) {
    int r = ipckit_ring_send(w, data, len, 0);
    if (r == 1) wake(1 - side);
    if (r >= 0) return;
    if (r != -1) {
      fprintf(stderr, "send: %d\n", r);
      exit(1);
    }
    if (ipckit_ring_prepare_sleep(w, 1, IPCKIT_CHANNEL_RECORD(len))) sleep_side(side);
  }
}

static uint32_t receive_msg(struct ipckit_ring *r, int side, unsigned char *buf) {
  for (;;) {
    uint32_t len, flags;
    int got = ipckit_ring_receive(r, buf, CAPACITY, &len, &flags);
    if (got == 1) wake(1 - side);
    if (got >= 0) return len;
    if (got != -1) {
      fprintf(stderr, "receive: %d\n", got);
      exit(1);
    }
    if (ipckit_ring_prepare_sleep(r, 0, 0)) sleep_side(side);
  }
}

static int child(unsigned char *buf) {
  struct ipckit_ring w = ipckit_ring_open(base, 1, 1), r = ipckit_ring_open(base, 0, 0);
  for (;;) {
    uint32_t len = receive_msg(&r, 1, buf);
    if (len == 16 && memcmp(buf, "PRODUCE", 8) == 0) {
      uint32_t n, size;
      memcpy(&n, buf + 8, 4);
      memcpy(&size, buf + 12, 4);
      if (n == 0) return 0;
      memset(buf, 'x', size);
      for (uint32_t i = 0; i < n; i++) send_msg(&w, 1, buf, size);
    } else {
      send_msg(&w, 1, buf, len);
    }
  }
}

int main(int argc, char **argv) {
  if (argc != 2 || strcmp(argv[1], "driver") != 0) {
    fprintf(stderr, "usage: channel_bench driver\n");
    return 2;
  }
  size_t size = IPCKIT_CHANNEL_DATA_OFFSET + 2 * (size_t)CAPACITY;
  int memfd = memfd_create("channel-bench", MFD_CLOEXEC);
  if (memfd < 0 || ftruncate(memfd, (off_t)size) < 0) { perror("memfd"); return 1; }
  base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
  if (base == MAP_FAILED) { perror("mmap"); return 1; }
  ipckit_channel_init(base, 2, CAPACITY, IPCKIT_CHANNEL_WAKE_EVENTFD);
  efd[0] = eventfd(0, EFD_CLOEXEC);
  efd[1] = eventfd(0, EFD_CLOEXEC);
  unsigned char *buf = malloc(CAPACITY), *big = malloc(CAPACITY);
  if (efd[0] < 0 || efd[1] < 0 || !buf || !big) { perror("setup"); return 1; }
  memset(big, 'y', CAPACITY);
  pid_t pid = fork();
  if (pid < 0) { perror("fork"); return 1; }
  if (pid == 0) _exit(child(buf));
  struct ipckit_ring w = ipckit_ring_open(base, 0, 1), r = ipckit_ring_open(base, 1, 0);
  char line[128], cmd[32];
  long n, sz;
  while (fgets(line, sizeof line, stdin)) {
    if (sscanf(line, "%31s %ld %ld", cmd, &n, &sz) != 3 || n < 1 || sz < 0 || sz > (long)CAPACITY / 2) {
      printf("bad command\n");
      fflush(stdout);
      continue;
    }
    long long t0 = now_ns();
    if (strcmp(cmd, "rt") == 0) {
      for (long i = 0; i < n; i++) {
        send_msg(&w, 0, big, (uint32_t)sz);
        receive_msg(&r, 0, buf);
      }
    } else if (strcmp(cmd, "stream") == 0) {
      unsigned char ask[16] = "PRODUCE";
      uint32_t count = (uint32_t)n, each = (uint32_t)sz;
      memcpy(ask + 8, &count, 4);
      memcpy(ask + 12, &each, 4);
      send_msg(&w, 0, ask, 16);
      for (long i = 0; i < n; i++) receive_msg(&r, 0, buf);
    } else if (strcmp(cmd, "memcpy") == 0) {
      size_t per = CAPACITY / (size_t)(sz > 0 ? sz : 1);
      for (long i = 0; i < n; i++) memcpy(buf + (size_t)(i % (long)per) * (size_t)sz, big, (size_t)sz);
      __asm__ volatile("" : : "r"(buf) : "memory");
    } else {
      printf("unknown command\n");
      fflush(stdout);
      continue;
    }
    printf("%lld\n", now_ns() - t0);
    fflush(stdout);
  }
  unsigned char stop[16] = "PRODUCE";
  memset(stop + 8, 0, 8);
  send_msg(&w, 0, stop, 16);
  waitpid(pid, NULL, 0);
  return 0;
}
