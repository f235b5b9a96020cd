/*
 * A C end of an ipckit Channel, written from include/ipckit/channel.h alone: the tests' peer
 * nobody's JavaScript wrote. It gets the channel as descriptors 3 (memfd), 4 and 5 (the
 * eventfds of sides 0 and 1), claims the free side, prints "ready side S", then:
 *   echo            (duplex) sends back every message reversed, flags kept; ends when the
 *                   other side closed and the ring is drained
 *   produce N SIZE  (one-way, writer) sends N messages of SIZE bytes, message i filled with
 *                   (i + k) & 0xff, flags i & 1; then closes
 *   consume         (one-way, reader) takes every message until the writer closed; prints
 *                   "count C bytes B sum S" (S: the sum of every byte of every payload)
 *   crash           (one-way, writer) sends "whole", then writes a second record's header
 *                   and half its payload without publishing it, and kills itself (SIGKILL)
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ipckit/channel.h"

static unsigned char *base;
static int side, efd[2];

static void die(const char *what) {
  fprintf(stderr, "channel_peer: %s: %s\n", what, strerror(errno));
  exit(2);
}

static void wake(int s) {
  uint64_t one = 1;
  if (write(efd[s], &one, 8) != 8) die("write eventfd");
}

static int peer_closed(void) {
  return ipckit_load(base, IPCKIT_CHANNEL_OFF_SIDE(1 - side) + IPCKIT_CHANNEL_SIDE_CLOSED) != 0;
}

/* Sleeps on this side's eventfd (after prepare_sleep said so), then takes the wake. */
static void sleep_side(void) {
  struct pollfd p = {efd[side], POLLIN, 0};
  while (poll(&p, 1, 100) < 0)
    if (errno != EINTR) die("poll");
  uint64_t v;
  if (p.revents & POLLIN) (void)!read(efd[side], &v, 8);
}

static void send_msg(struct ipckit_ring *w, const void *data, uint32_t len, uint32_t flags) {
  for (;;) {
    int r = ipckit_ring_send(w, data, len, flags);
    if (r == 1) wake(1 - side);
    if (r >= 0) return;
    if (r != -1) {
      fprintf(stderr, "channel_peer: send: %d\n", r);
      exit(3);
    }
    if (peer_closed()) exit(4);
    if (ipckit_ring_prepare_sleep(w, 1, IPCKIT_CHANNEL_RECORD(len))) sleep_side();
  }
}

/* One message into buf (room `room`): its length, or -1 once the writer closed and left nothing. */
static long receive_msg(struct ipckit_ring *r, unsigned char *buf, uint32_t room, uint32_t *flags) {
  for (;;) {
    uint32_t len;
    int closed = peer_closed();
    int got = ipckit_ring_receive(r, buf, room, &len, flags);
    if (got == 1) wake(1 - side);
    if (got >= 0) return len;
    if (got != -1) {
      fprintf(stderr, "channel_peer: receive: %d\n", got);
      exit(3);
    }
    if (closed) return -1;
    if (ipckit_ring_prepare_sleep(r, 0, 0)) sleep_side();
  }
}

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  struct stat st;
  if (fstat(3, &st) < 0) die("fstat");
  base = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, 3, 0);
  if (base == MAP_FAILED) die("mmap");
  if (ipckit_channel_check(base, (uint64_t)st.st_size) != 0) {
    fprintf(stderr, "channel_peer: not a channel\n");
    return 2;
  }
  efd[0] = 4;
  efd[1] = 5;
  side = ipckit_channel_claim(base, 1, (uint32_t)getpid()) == 0 ? 1 : 0;
  if (side == 0 && ipckit_channel_claim(base, 0, (uint32_t)getpid()) != 0) {
    fprintf(stderr, "channel_peer: both sides taken\n");
    return 2;
  }
  uint32_t rings = ipckit_load(base, IPCKIT_CHANNEL_OFF_RINGS);
  uint32_t cap = ipckit_load(base, IPCKIT_CHANNEL_OFF_CAPACITY);
  /* One-way: ring 0. Duplex: side s writes ring s and reads ring 1 - s. */
  struct ipckit_ring w = ipckit_ring_open(base, rings == 2 ? (uint32_t)side : 0, 1);
  struct ipckit_ring r = ipckit_ring_open(base, rings == 2 ? (uint32_t)(1 - side) : 0, 0);
  unsigned char *buf = malloc(cap);
  if (!buf) die("malloc");
  printf("ready side %d\n", side);
  fflush(stdout);
  wake(1 - side); /* the other side may sleep waiting for us */
  const char *mode = argv[1];
  if (strcmp(mode, "echo") == 0) {
    uint32_t flags;
    long n;
    while ((n = receive_msg(&r, buf, cap, &flags)) >= 0) {
      for (long i = 0; i < n / 2; i++) {
        unsigned char c = buf[i];
        buf[i] = buf[n - 1 - i];
        buf[n - 1 - i] = c;
      }
      send_msg(&w, buf, (uint32_t)n, flags);
    }
  } else if (strcmp(mode, "produce") == 0 && argc == 4) {
    long count = atol(argv[2]), size = atol(argv[3]);
    for (long i = 0; i < count; i++) {
      for (long k = 0; k < size; k++) buf[k] = (unsigned char)((i + k) & 0xff);
      send_msg(&w, buf, (uint32_t)size, (uint32_t)(i & 1));
    }
  } else if (strcmp(mode, "consume") == 0) {
    uint32_t flags;
    long n, count = 0;
    unsigned long long bytes = 0, sum = 0;
    while ((n = receive_msg(&r, buf, cap, &flags)) >= 0) {
      count++;
      bytes += (unsigned long long)n;
      for (long k = 0; k < n; k++) sum += buf[k];
    }
    printf("count %ld bytes %llu sum %llu\n", count, bytes, sum);
  } else if (strcmp(mode, "crash") == 0) {
    send_msg(&w, "whole", 5, 0);
    /* A second record, torn: its header and half of its payload, never published. */
    uint32_t pos = w.index & (cap - 1);
    uint32_t header[2] = {64, 0};
    memcpy(w.data + pos, header, 8);
    memset(w.data + ((pos + 8) & (cap - 1)), 'x', 32);
    kill(getpid(), SIGKILL);
  } else {
    fprintf(stderr, "channel_peer: unknown mode %s\n", mode);
    return 2;
  }
  ipckit_store(base, IPCKIT_CHANNEL_OFF_SIDE(side) + IPCKIT_CHANNEL_SIDE_CLOSED, 1);
  wake(1 - side);
  return 0;
}
