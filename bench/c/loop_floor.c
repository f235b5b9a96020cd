/* The floor of an event-loop process: what a round trip between two processes costs when each
 * side sleeps in epoll_wait as Node's event loop does (and does nothing else), so that the
 * node-to-node rows can be read against the wakes they cannot avoid. One program, two designs:
 *
 *   loop_floor fd-echo | fd-driver          a message socket on fd 3, ipckit's pattern on both
 *       sides: sendmsg; recvmsg(MSG_DONTWAIT) -> EAGAIN; epoll_wait; recvmsg. One wake per
 *       side per round trip, as Node's net has.
 *   loop_floor msg-echo QID | msg-driver QID   a System V queue (type 1 there, type 2 back),
 *       ipckit's pattern on both sides: the main thread sends, tries msgrcv(IPC_NOWAIT), then
 *       hands the wait to a helper thread of its own (a futex wake) and sleeps in epoll_wait
 *       on an eventfd; the helper blocks in msgrcv, and when it returns writes the eventfd. A
 *       queue has no descriptor to poll, so each side pays the hand-off and the helper's wake
 *       on top of the kernel's.
 *   loop_floor sem-echo SID | sem-driver SID   the same with a set of two semaphores: add 1 to
 *       one, take 1 from the other (semop, no SEM_UNDO), as the semaphore ping-pong does.
 *
 * The drivers read commands on stdin ("rt N SIZE") and print the elapsed nanoseconds; echoes
 * run until their socket ends or their queue is removed. The queue's driver also takes
 * "consume N SIZE": N receives of type 1 (a stream another process produces), each as
 * ipckit's async iterator makes it (try; when the queue is empty, the helper's wait). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* ---- a message socket on an event loop ---- */

static int ep;

static void loop_init(int fd) {
  int flags = fcntl(fd, F_GETFL);
  if (flags >= 0 && (flags & O_NONBLOCK)) fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
  if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
    perror("epoll");
    exit(1);
  }
}

/* One receive as ipckit's async receive does it: try, then wait for readiness, then take. */
static ssize_t loop_receive(int fd, char *buf, size_t max) {
  for (;;) {
    struct iovec iov = {buf, max};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT);
    if (n >= 0) return n;
    if (errno != EAGAIN && errno != EINTR) return -1;
    struct epoll_event ev;
    if (epoll_wait(ep, &ev, 1, -1) < 0 && errno != EINTR) return -1;
  }
}

static int loop_send(int fd, const char *buf, size_t len) {
  struct iovec iov = {(void *)buf, len};
  struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
  return sendmsg(fd, &mh, MSG_NOSIGNAL) < 0 ? -1 : 0;
}

static int fd_echo(void) {
  static char buf[65536];
  loop_init(3);
  for (;;) {
    ssize_t n = loop_receive(3, buf, sizeof buf);
    if (n <= 0) return n == 0 ? 0 : 1;
    if (loop_send(3, buf, (size_t)n) < 0) return errno == EPIPE ? 0 : 1;
  }
}

/* ---- a System V queue from an event loop, through a helper thread ---- */

static int qid;
static int evfd;
static _Atomic uint32_t request; /* bumped by the main thread: "receive one" */
static uint32_t served;          /* the helper's count */
static char qbuf[sizeof(long) + 65536];
static _Atomic long got;

/* The type a side receives: the echo takes 1, the driver takes 2. */
static long want_type;
/* Semaphores instead of a queue: the index a side takes from (the other one it gives to). */
static int use_sem;
static unsigned short take_index;

/* The blocking wait the helper makes for the main thread. */
static ssize_t blocking_wait(void) {
  if (use_sem) {
    struct sembuf op = {take_index, -1, 0};
    return semop(qid, &op, 1);
  }
  return msgrcv(qid, qbuf, 65536, want_type, 0);
}

static void *helper_loop(void *arg) {
  (void)arg;
  for (;;) {
    uint32_t r = atomic_load(&request);
    while (r == served) {
      syscall(SYS_futex, &request, FUTEX_WAIT_PRIVATE, r, NULL, NULL, 0);
      r = atomic_load(&request);
    }
    served++;
    ssize_t n;
    do n = blocking_wait();
    while (n < 0 && errno == EINTR);
    atomic_store(&got, n);
    uint64_t one = 1;
    if (write(evfd, &one, sizeof one) < 0) return NULL;
    if (n < 0) return NULL;
  }
}

static void msg_init(const char *id, long type) {
  qid = atoi(id);
  want_type = type;
  evfd = eventfd(0, EFD_CLOEXEC);
  ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = evfd};
  if (evfd < 0 || ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, evfd, &ev) < 0) {
    perror("eventfd/epoll");
    exit(1);
  }
  pthread_t t;
  pthread_create(&t, NULL, helper_loop, NULL);
}

/* One receive as ipckit's async receive does it: try on this thread, else hand it to the
 * helper and sleep in epoll_wait until the helper says it is done. */
static ssize_t msg_receive(char *into) {
  ssize_t n;
  if (use_sem) {
    struct sembuf op = {take_index, -1, IPC_NOWAIT};
    n = semop(qid, &op, 1);
    if (n == 0 || errno != EAGAIN) return n;
  } else {
    n = msgrcv(qid, into, 65536, want_type, IPC_NOWAIT);
    if (n >= 0 || errno != ENOMSG) return n;
  }
  atomic_fetch_add(&request, 1);
  syscall(SYS_futex, &request, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
  for (;;) {
    struct epoll_event ev;
    if (epoll_wait(ep, &ev, 1, -1) < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    uint64_t count;
    if (read(evfd, &count, sizeof count) < 0) continue;
    n = atomic_load(&got);
    if (n >= 0 && !use_sem) memcpy(into, qbuf, sizeof(long) + (size_t)n);
    return n;
  }
}

static int msg_send(long type, const char *data, size_t len, char *scratch) {
  if (use_sem) {
    struct sembuf op = {(unsigned short)(1 - take_index), 1, 0};
    return semop(qid, &op, 1);
  }
  *(long *)scratch = type;
  memcpy(scratch + sizeof(long), data, len);
  while (msgsnd(qid, scratch, len, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return 0;
}

static int msg_echo(const char *id) {
  static char m[sizeof(long) + 65536], out[sizeof(long) + 65536];
  msg_init(id, 1);
  take_index = 0;
  for (;;) {
    ssize_t n = msg_receive(m);
    if (n < 0) return errno == EIDRM || errno == EINVAL ? 0 : 1;
    if (msg_send(2, m + sizeof(long), (size_t)n, out) < 0) return errno == EIDRM || errno == EINVAL ? 0 : 1;
  }
}

/* ---- drivers ---- */

static int driver(int use_queue, const char *id) {
  static char payload[65536], m[sizeof(long) + 65536], out[sizeof(long) + 65536];
  memset(payload, 'x', sizeof payload);
  if (use_queue) msg_init(id, 2);
  else loop_init(3);
  take_index = 1;
  char line[256], cmd[32];
  long n, size;
  setvbuf(stdout, NULL, _IOLBF, 0);
  while (fgets(line, sizeof line, stdin)) {
    int consume = use_queue && !use_sem && strncmp(line, "consume ", 8) == 0;
    if (sscanf(line, "%31s %ld %ld", cmd, &n, &size) != 3 || (strcmp(cmd, "rt") != 0 && !consume) ||
        size < 1 || size > 65536) {
      fprintf(stderr, "bad command: %s", line);
      return 2;
    }
    long long t0 = now_ns();
    if (consume) {
      want_type = 1;
      for (long i = 0; i < n; i++) {
        if (msg_receive(m) != size) {
          perror("msg");
          return 1;
        }
      }
      want_type = 2;
      printf("%lld\n", now_ns() - t0);
      continue;
    }
    for (long i = 0; i < n; i++) {
      if (use_queue) {
        if (msg_send(1, payload, (size_t)size, out) < 0 || msg_receive(m) != (use_sem ? 0 : size)) {
          perror("msg");
          return 1;
        }
      } else if (loop_send(3, payload, (size_t)size) < 0 || loop_receive(3, m, sizeof m) != size) {
        perror("socket");
        return 1;
      }
    }
    printf("%lld\n", now_ns() - t0);
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 2 && strcmp(argv[1], "fd-echo") == 0) return fd_echo();
  if (argc == 2 && strcmp(argv[1], "fd-driver") == 0) return driver(0, NULL);
  if (argc == 3 && strcmp(argv[1], "msg-echo") == 0) return msg_echo(argv[2]);
  if (argc == 3 && strcmp(argv[1], "msg-driver") == 0) return driver(1, argv[2]);
  use_sem = 1;
  if (argc == 3 && strcmp(argv[1], "sem-echo") == 0) return msg_echo(argv[2]);
  if (argc == 3 && strcmp(argv[1], "sem-driver") == 0) return driver(1, argv[2]);
  fprintf(stderr, "usage: loop_floor fd-echo | fd-driver | msg-echo QID | msg-driver QID | sem-echo SID | sem-driver SID\n");
  return 2;
}
