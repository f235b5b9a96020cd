/*
 * A C writer of an ipckit Channel with several writers, written from include/ipckit/channel.h
 * alone ("SEVERAL WRITERS"). It gets the channel as descriptor 3 (memfd; 4 and 5 are the
 * eventfds of sides 0 and 1), joins as a writer, prints "joined SLOT", then:
 *   produce ID N   sends N messages: message i is 8 + (i * 37) % 200 bytes, the words ID and i
 *                  then bytes (ID * 7 + i + k) & 0xff; then leaves (closes)
 *   hold           takes the ring's lock, writes a record's header (64 bytes) and 32 bytes of
 *                  'x' at the tail without publishing them, prints "holding", and waits to be
 *                  killed
 */
#include <errno.h>
#include <linux/futex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "ipckit/channel.h"

static unsigned char *base;

static void die(const char *what) {
  fprintf(stderr, "channel_writer: %s: %s\n", what, strerror(errno));
  exit(2);
}

/* Side 1 (the reader) is woken by its eventfd (descriptor 5) or its futex word. */
static void wake_reader(void) {
  if (ipckit_load(base, IPCKIT_CHANNEL_OFF_WAKE) == IPCKIT_CHANNEL_WAKE_EVENTFD) {
    uint64_t one = 1;
    if (write(5, &one, 8) != 8) die("write eventfd");
    return;
  }
  uint32_t off = IPCKIT_CHANNEL_OFF_SIDE(1) + IPCKIT_CHANNEL_SIDE_WAKE_SEQ;
  __atomic_fetch_add(ipckit_word(base, off), 1, __ATOMIC_SEQ_CST);
  syscall(SYS_futex, ipckit_word(base, off), FUTEX_WAKE, 0x7fffffff, NULL, NULL, 0);
}

/* Side 0 (the writers) is always woken through its futex word, all of them. */
static void wake_writers(void) {
  uint32_t off = IPCKIT_CHANNEL_OFF_SIDE(0) + IPCKIT_CHANNEL_SIDE_WAKE_SEQ;
  __atomic_fetch_add(ipckit_word(base, off), 1, __ATOMIC_SEQ_CST);
  syscall(SYS_futex, ipckit_word(base, off), FUTEX_WAKE, 0x7fffffff, NULL, NULL, 0);
}

static int gone(uint32_t pid) {
  int fd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
  if (fd < 0) return errno == ESRCH;
  /* A pidfd is readable once its process exited. */
  fd_set set;
  FD_ZERO(&set);
  FD_SET(fd, &set);
  struct timeval tv = {0, 0};
  int r = select(fd + 1, &set, NULL, NULL, &tv);
  close(fd);
  return r > 0;
}

static void send_msg(struct ipckit_ring *ring, const void *data, uint32_t len, uint32_t pid) {
  uint32_t seen = 0;
  for (;;) {
    uint32_t owner = 0;
    int wake_w = 0;
    int r = ipckit_ring_send_shared(ring, data, len, 0, pid, &owner, &wake_w);
    if (wake_w) wake_writers();
    if (r == 1) wake_reader();
    if (r >= 0) return;
    if (r != -1 && r != -4) {
      fprintf(stderr, "channel_writer: send: %d\n", r);
      exit(3);
    }
    if (ipckit_load(base, IPCKIT_CHANNEL_OFF_SIDE(1) + IPCKIT_CHANNEL_SIDE_CLOSED) != 0) exit(4);
    uint32_t off = IPCKIT_CHANNEL_OFF_SIDE(0) + IPCKIT_CHANNEL_SIDE_WAKE_SEQ;
    uint32_t seq = ipckit_load(base, off);
    if (ipckit_ring_prepare_sleep_shared(ring, IPCKIT_CHANNEL_RECORD(len), &owner)) {
      if (owner != 0 && owner == seen && gone(owner)) {
        ipckit_ring_take_over(ring, owner);
        continue;
      }
      seen = owner;
      struct timespec slice = {0, 50 * 1000 * 1000};
      syscall(SYS_futex, ipckit_word(base, off), FUTEX_WAIT, seq, &slice, NULL, 0);
    }
  }
}

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  struct stat st;
  if (fstat(3, &st) < 0) die("fstat");
  base = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, 3, 0);
  if (base == MAP_FAILED) die("mmap");
  if (ipckit_channel_check_writers(base, (uint64_t)st.st_size) < 2) {
    fprintf(stderr, "channel_writer: not a channel with several writers\n");
    return 2;
  }
  uint32_t pid = (uint32_t)getpid();
  int slot = ipckit_channel_join_writer(base, pid);
  if (slot < 0) {
    fprintf(stderr, "channel_writer: every writer slot is taken\n");
    return 2;
  }
  struct ipckit_ring ring = ipckit_ring_open(base, 0, 1);
  printf("joined %d\n", slot);
  fflush(stdout);
  if (strcmp(argv[1], "produce") == 0 && argc == 4) {
    uint32_t id = (uint32_t)atol(argv[2]);
    long count = atol(argv[3]);
    unsigned char buf[256];
    for (long i = 0; i < count; i++) {
      uint32_t len = 8 + (uint32_t)((i * 37) % 200);
      uint32_t words[2] = {id, (uint32_t)i};
      memcpy(buf, words, 8);
      for (uint32_t k = 8; k < len; k++) buf[k] = (unsigned char)((id * 7 + (uint32_t)i + k) & 0xff);
      send_msg(&ring, buf, len, pid);
    }
  } else if (strcmp(argv[1], "hold") == 0) {
    uint32_t expected = 0;
    while (!__atomic_compare_exchange_n(ipckit_word(base, ring.ctl + IPCKIT_CHANNEL_RING_LOCK), &expected, pid, 0,
                                        __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
      expected = 0;
      usleep(1000);
    }
    uint32_t tail = ipckit_load(base, ring.ctl + IPCKIT_CHANNEL_RING_TAIL);
    uint32_t pos = tail & (ring.capacity - 1);
    uint32_t header[2] = {64, 0};
    memcpy(ring.data + pos, header, 8);
    memset(ring.data + ((pos + 8) & (ring.capacity - 1)), 'x', 32);
    printf("holding\n");
    fflush(stdout);
    for (;;) pause();
  } else {
    fprintf(stderr, "channel_writer: unknown mode %s\n", argv[1]);
    return 2;
  }
  ipckit_channel_leave_writer(base, (uint32_t)slot, pid);
  wake_reader();
  return 0;
}
