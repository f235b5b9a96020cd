/* The C side of the pipe and UNIX socket benchmarks. One program, several roles:
 *
 *   fd_bench echo              echo child: reads from fd 3, writes what it read to fd 4 (fd 3 when
 *                              fd 4 is not open: a socket), until EOF or an error
 *   fd_bench driver            the timed side (or a producer), on fd 3 (reads) and fd 4 (writes;
 *                              fd 3 when fd 4 is not open). Reads commands on stdin, one per line,
 *                              and prints the elapsed nanoseconds of each:
 *       rt N SIZE              N round trips: write SIZE bytes, read until SIZE bytes came back
 *       consume N SIZE         read until N * SIZE bytes came (timed from the first call)
 *       consume-batched N SIZE  the same on a message socket, taking up to 256 messages per
 *                              system call (recvmmsg with MSG_WAITFORONE): what batching the
 *                              receiving side can gain when the producer sends one at a time
 *       produce N SIZE         N writes of SIZE bytes (prints 0; the consumer times)
 *   fd_bench listen-stream PATH     echo server: a SOCK_STREAM socket listening at PATH; prints
 *   fd_bench listen-seqpacket PATH  "ready", accepts one connection and echoes it
 *   fd_bench dgram PATH             echo server: a SOCK_DGRAM socket bound at PATH; prints "ready"
 *                                   and sends every datagram back to its sender
 *
 * Descriptors handed down by Node may be non-blocking (libuv sets O_NONBLOCK on the sockets it
 * wraps); every role makes them blocking first. Reads take up to 64 KiB: a message socket
 * returns one message per read, a pipe or stream socket what is there. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static char buf[65536];

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void blocking(int fd) {
  int flags = fcntl(fd, F_GETFL);
  if (flags >= 0 && (flags & O_NONBLOCK)) fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
}

static ssize_t rd(int fd, size_t max) {
  for (;;) {
    ssize_t n = read(fd, buf, max);
    if (n >= 0) return n;
    if (errno != EINTR) return -1;
  }
}

static int wr(int fd, const char *p, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

static int echo(int in, int out) {
  for (;;) {
    ssize_t n = rd(in, sizeof buf);
    if (n <= 0) return n == 0 ? 0 : 1;
    if (wr(out, buf, (size_t)n) < 0) return errno == EPIPE ? 0 : 1;
  }
}

static void must_read(int fd, long long want) {
  while (want > 0) {
    ssize_t n = rd(fd, sizeof buf);
    if (n <= 0) {
      fprintf(stderr, "read: %s\n", n == 0 ? "end of stream" : strerror(errno));
      exit(1);
    }
    want -= n;
  }
}

/* Takes n messages from a message socket, up to BATCH per recvmmsg; exits on an error. */
#define BATCH 256
static void must_receive_batched(int fd, long n, long size) {
  static struct mmsghdr msgs[BATCH];
  static struct iovec iov[BATCH];
  for (int i = 0; i < BATCH; i++) {
    iov[i].iov_base = buf + (size_t)i * 256;
    iov[i].iov_len = 256;
    memset(&msgs[i], 0, sizeof msgs[i]);
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  while (n > 0) {
    int r = recvmmsg(fd, msgs, n < BATCH ? (unsigned)n : BATCH, MSG_WAITFORONE, NULL);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      fprintf(stderr, "recvmmsg: %s\n", r == 0 ? "end of stream" : strerror(errno));
      exit(1);
    }
    for (int i = 0; i < r; i++) {
      if ((long)msgs[i].msg_len != size) {
        fprintf(stderr, "recvmmsg: a message of %u bytes, not %ld\n", msgs[i].msg_len, size);
        exit(1);
      }
    }
    n -= r;
  }
}

static int driver(int in, int out) {
  char line[256], cmd[32];
  long n, size;
  static char payload[65536];
  memset(payload, 'x', sizeof payload);
  setvbuf(stdout, NULL, _IOLBF, 0);
  while (fgets(line, sizeof line, stdin)) {
    if (sscanf(line, "%31s %ld %ld", cmd, &n, &size) != 3 || size < 1 || size > (long)sizeof payload) {
      fprintf(stderr, "bad command: %s", line);
      return 2;
    }
    long long elapsed = 0;
    if (strcmp(cmd, "rt") == 0) {
      long long t0 = now_ns();
      for (long i = 0; i < n; i++) {
        if (wr(out, payload, (size_t)size) < 0) { perror("write"); return 1; }
        must_read(in, size);
      }
      elapsed = now_ns() - t0;
    } else if (strcmp(cmd, "consume") == 0) {
      long long t0 = now_ns();
      must_read(in, (long long)n * size);
      elapsed = now_ns() - t0;
    } else if (strcmp(cmd, "consume-batched") == 0) {
      if (size > 256) { fprintf(stderr, "consume-batched: at most 256 bytes per message\n"); return 2; }
      long long t0 = now_ns();
      must_receive_batched(in, n, size);
      elapsed = now_ns() - t0;
    } else if (strcmp(cmd, "produce") == 0) {
      for (long i = 0; i < n; i++) {
        if (wr(out, payload, (size_t)size) < 0) { perror("write"); return 1; }
      }
    } else {
      fprintf(stderr, "unknown command: %s\n", cmd);
      return 2;
    }
    printf("%lld\n", elapsed);
  }
  return 0;
}

static int bound(int type, const char *path) {
  struct sockaddr_un a;
  memset(&a, 0, sizeof a);
  a.sun_family = AF_UNIX;
  if (strlen(path) >= sizeof a.sun_path) { fprintf(stderr, "path too long\n"); exit(2); }
  strcpy(a.sun_path, path);
  int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0) { perror("bind"); exit(1); }
  return fd;
}

static int server(int type, const char *path) {
  int l = bound(type, path);
  if (listen(l, 1) < 0) { perror("listen"); return 1; }
  printf("ready\n");
  fflush(stdout);
  int c = accept(l, NULL, NULL);
  if (c < 0) { perror("accept"); return 1; }
  close(l);
  return echo(c, c);
}

static int dgram_server(const char *path) {
  int fd = bound(SOCK_DGRAM, path);
  printf("ready\n");
  fflush(stdout);
  for (;;) {
    struct sockaddr_un from;
    socklen_t len = sizeof from;
    ssize_t n = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &len);
    if (n < 0) {
      if (errno == EINTR) continue;
      perror("recvfrom");
      return 1;
    }
    if (len <= sizeof(sa_family_t)) continue; /* unbound sender: nowhere to answer */
    while (sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&from, len) < 0) {
      if (errno == EINTR) continue;
      if (errno == ECONNREFUSED || errno == ENOENT) break; /* the sender is gone */
      perror("sendto");
      return 1;
    }
  }
}

int main(int argc, char **argv) {
  if (argc == 2 && (strcmp(argv[1], "echo") == 0 || strcmp(argv[1], "driver") == 0)) {
    int in = 3;
    int out = fcntl(4, F_GETFD) >= 0 ? 4 : 3;
    blocking(in);
    blocking(out);
    return argv[1][0] == 'e' ? echo(in, out) : driver(in, out);
  }
  if (argc == 3 && strcmp(argv[1], "listen-stream") == 0) return server(SOCK_STREAM, argv[2]);
  if (argc == 3 && strcmp(argv[1], "listen-seqpacket") == 0) return server(SOCK_SEQPACKET, argv[2]);
  if (argc == 3 && strcmp(argv[1], "dgram") == 0) return dgram_server(argv[2]);
  fprintf(stderr, "usage: fd_bench echo | driver | listen-stream PATH | listen-seqpacket PATH | dgram PATH\n");
  return 2;
}
