/* Echo child for semaphore ping-pong: on set ARGV[1], waits to take 1 from semaphore 0 and
 * adds 1 to semaphore 1, until the set is removed (EIDRM/EINVAL). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/sem.h>

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: sem_echo SEMID\n");
    return 2;
  }
  int semid = atoi(argv[1]);
  struct sembuf take = {0, -1, 0}, give = {1, 1, 0};
  for (;;) {
    if (semop(semid, &take, 1) < 0 || semop(semid, &give, 1) < 0) {
      if (errno == EINTR) continue;
      return (errno == EIDRM || errno == EINVAL) ? 0 : 1;
    }
  }
}
