/**
 * System V objects of every type made by a small C program, for the ipcs/ipcrm specs (the
 * library's own semaphore and shared memory wrappers are not used, so these specs test the
 * listing against objects made the way any C program makes them).
 */

import type { ExecutionContext } from 'ava'

import { ipcrm, type IpcType } from '../../ts/index'
import { cChild, compileC, freshKey, type RunningChild } from './index'

const SOURCE = String.raw`
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>

/* sysvmk TYPE KEY MODE N UID ACTION
 *   TYPE msg|sem|shm; KEY (0x.. or decimal; 0 = IPC_PRIVATE); MODE octal;
 *   N: messages of 10 bytes to send (msg), semaphores (sem), bytes (shm);
 *   UID: new owner uid (IPC_SET), or -1; ACTION: none | hold (shm: stay attached until a
 *   line on stdin) | recv (msg: block in msgrcv and print the errno name it fails with). */
int main(int argc, char **argv) {
  if (argc != 7) return 2;
  key_t key = (key_t)strtoul(argv[2], NULL, 0);
  int mode = (int)strtol(argv[3], NULL, 8);
  long n = atol(argv[4]);
  long uid = atol(argv[5]);
  const char *action = argv[6];
  int flags = IPC_CREAT | IPC_EXCL | mode;
  int id = -1;
  if (strcmp(argv[1], "msg") == 0) {
    id = msgget(key, flags);
    if (id < 0) { perror("msgget"); return 1; }
    struct { long mtype; char text[10]; } m = { 1, "123456789" };
    for (long i = 0; i < n; i++)
      if (msgsnd(id, &m, sizeof m.text, 0) < 0) { perror("msgsnd"); return 1; }
    if (uid >= 0) {
      struct msqid_ds ds;
      if (msgctl(id, IPC_STAT, &ds) < 0) { perror("msgctl"); return 1; }
      ds.msg_perm.uid = (uid_t)uid;
      if (msgctl(id, IPC_SET, &ds) < 0) { perror("msgctl"); return 1; }
    }
  } else if (strcmp(argv[1], "sem") == 0) {
    id = semget(key, (int)n, flags);
    if (id < 0) { perror("semget"); return 1; }
    if (uid >= 0) {
      struct semid_ds ds;
      if (semctl(id, 0, IPC_STAT, &ds) < 0) { perror("semctl"); return 1; }
      ds.sem_perm.uid = (uid_t)uid;
      if (semctl(id, 0, IPC_SET, &ds) < 0) { perror("semctl"); return 1; }
    }
  } else if (strcmp(argv[1], "shm") == 0) {
    id = shmget(key, (size_t)n, flags);
    if (id < 0) { perror("shmget"); return 1; }
    if (uid >= 0) {
      struct shmid_ds ds;
      if (shmctl(id, IPC_STAT, &ds) < 0) { perror("shmctl"); return 1; }
      ds.shm_perm.uid = (uid_t)uid;
      if (shmctl(id, IPC_SET, &ds) < 0) { perror("shmctl"); return 1; }
    }
  } else {
    return 2;
  }
  printf("%d\n", id);
  fflush(stdout);
  if (strcmp(action, "hold") == 0 && strcmp(argv[1], "shm") == 0) {
    if (shmat(id, NULL, 0) == (void *)-1) { perror("shmat"); return 1; }
    printf("attached\n");
    fflush(stdout);
    char line[16];
    if (!fgets(line, sizeof line, stdin)) return 0;
  } else if (strcmp(action, "recv") == 0) {
    struct { long mtype; char text[64]; } m;
    printf("waiting\n");
    fflush(stdout);
    if (msgrcv(id, &m, sizeof m.text, 999, 0) < 0)
      printf("%s\n", errno == EIDRM ? "EIDRM" : errno == EINVAL ? "EINVAL" : strerror(errno));
    else
      printf("received\n");
    fflush(stdout);
  }
  return 0;
}
`

/** The path of the compiled `sysvmk` program. */
export const sysvmk = () => compileC('sysvmk', SOURCE)

/** What {@link makeObject} takes. */
export interface MakeOptions {
  /** Default: a fresh key. */
  key?: number
  /** Octal permission bits; default 0o600. */
  mode?: number
  /** Messages to send (msg), semaphores (sem, default 1), bytes (shm, default 4096). */
  n?: number
  /** New owner uid (IPC_SET). */
  uid?: number
}

/** An object made by {@link makeObject}. */
export interface Made {
  type: IpcType
  key: number
  id: number
}

/** What {@link makeObject} returns: the object, the pid of the C program that made it, and when (Date.now() before and after). */
export interface MadeBy extends Made {
  pid: number
  from: number
  to: number
}

function args(type: IpcType, o: MakeOptions, action: string): { key: number; argv: string[] } {
  const key = (o.key ?? freshKey(type)) >>> 0
  const n = o.n ?? (type === 'msg' ? 0 : type === 'sem' ? 1 : 4096)
  const argv = [
    type,
    `0x${(key >>> 0).toString(16)}`,
    (o.mode ?? 0o600).toString(8),
    String(n),
    String(o.uid ?? -1),
    action,
  ]
  return { key, argv }
}

/** Removes the object when the test ends (by id and key, so a reused id is left alone). */
export function track(t: ExecutionContext, made: Made): Made {
  t.teardown(() => {
    try {
      ipcrm({ type: made.type, id: made.id, key: made.key })
    } catch {
      // removed by the test
    }
  })
  return made
}

/** Makes an object with a C program and removes it when the test ends. */
export async function makeObject(t: ExecutionContext, type: IpcType, o: MakeOptions = {}): Promise<MadeBy> {
  const { key, argv } = args(type, o, 'none')
  const from = Date.now()
  const child = cChild(sysvmk(), argv)
  const r = await child.done
  const to = Date.now()
  if (r.code !== 0) throw new Error(`sysvmk ${argv.join(' ')} failed (${r.code ?? r.signal}): ${r.stderr}${r.stdout}`)
  const made = track(t, { type, key, id: Number(r.stdout.trim()) })
  return { ...made, pid: child.pid, from, to }
}

/**
 * Makes an object with a C program that stays running: `hold` keeps a segment attached until
 * `child.write('')`, `recv` blocks in msgrcv and prints the errno name it fails with.
 */
export async function holdObject(
  t: ExecutionContext,
  type: IpcType,
  action: 'hold' | 'recv',
  o: MakeOptions = {},
): Promise<Made & { child: RunningChild; from: number; to: number }> {
  const { key, argv } = args(type, o, action)
  const from = Date.now()
  const child = cChild(sysvmk(), argv)
  t.teardown(() => child.kill('SIGKILL'))
  const id = Number(await child.line(/^\d+$/))
  await child.line(/^(attached|waiting)$/)
  return { ...track(t, { type, key, id }), child, from, to: Date.now() }
}
