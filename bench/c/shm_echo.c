/* Echo child for futex ping-pong: on the 32-bit word at offset 0 of segment ARGV[1], waits
 * (FUTEX_WAIT) for an odd value, stores the next (even) value and wakes (FUTEX_WAKE) the
 * other side; ends on the stop value 0xffffffff, or when its parent is gone. */
#include <errno.h>
#include <linux/futex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: shm_echo SHMID\n");
    return 2;
  }
  pid_t parent = getppid();
  void *seg = shmat(atoi(argv[1]), NULL, 0);
  if (seg == (void *)-1) { perror("shmat"); return 1; }
  uint32_t *word = seg;
  struct timespec second = {1, 0};
  for (;;) {
    uint32_t v = __atomic_load_n(word, __ATOMIC_SEQ_CST);
    if (v == 0xffffffffu) return 0;
    if (v & 1u) {
      __atomic_store_n(word, v + 1, __ATOMIC_SEQ_CST);
      syscall(SYS_futex, word, FUTEX_WAKE, 1, NULL, NULL, 0);
      continue;
    }
    if (syscall(SYS_futex, word, FUTEX_WAIT, v, &second, NULL, 0) < 0 && errno == ETIMEDOUT &&
        getppid() != parent)
      return 0;
  }
}
