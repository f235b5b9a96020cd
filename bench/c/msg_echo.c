/* Echo child for message-queue round trips: takes each message of type 1 off queue ARGV[1]
 * and sends its payload back as type 2, until the queue is removed (EIDRM/EINVAL). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/msg.h>

struct msgbuf_big {
  long mtype;
  char mtext[65536];
};

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: msg_echo QID\n");
    return 2;
  }
  int qid = atoi(argv[1]);
  static struct msgbuf_big buf;
  for (;;) {
    ssize_t n = msgrcv(qid, &buf, sizeof buf.mtext, 1, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return (errno == EIDRM || errno == EINVAL) ? 0 : 1;
    }
    buf.mtype = 2;
    while (msgsnd(qid, &buf, (size_t)n, 0) < 0) {
      if (errno == EINTR) continue;
      return (errno == EIDRM || errno == EINVAL) ? 0 : 1;
    }
  }
}
