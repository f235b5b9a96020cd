import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

import test, { type ExecutionContext } from 'ava'

import { IPC_PRIVATE, Mutex, Semaphore, SemaphoreSet } from '../ts/index'
import { NOBODY, cChild, compileC, freshKey, keyExists, nodeChild, removeBuilds, runNode, sleep, tempDir, timed } from './helpers'

test.after.always(removeBuilds)

/** Removes the set of `key` when the test ends, whoever created it. */
function removeKeyAtEnd(t: ExecutionContext, key: number): void {
  t.teardown(() => {
    try {
      SemaphoreSet.open(key, { initTimeoutMs: 0 }).remove()
    } catch {
      // never created, or already removed
    }
  })
}

/**
 * The classic creation protocol in C: IPC_CREAT|IPC_EXCL, SETVAL, then a semop that changes
 * nothing so that sem_otime becomes non-zero; openers of an existing set wait until it is.
 * After "go" on stdin it opens the set, prints the value it saw, adds one and takes it back.
 * A creator pauses argv[3] ms before SETVAL (a slow creator), so that an opener that does not
 * wait for sem_otime would see the kernel's zero.
 */
const PROTOCOL_C = String.raw`
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/sem.h>
#include <time.h>

#ifndef __APPLE__ /* macOS's <sys/sem.h> declares it; on Linux the program does */
union semun { int val; struct semid_ds *buf; unsigned short *array; };
#endif

int main(int argc, char **argv) {
  key_t key = (key_t)strtoul(argv[1], NULL, 0);
  int initial = atoi(argv[2]);
  long pause_ms = argc > 3 ? atol(argv[3]) : 0;
  char line[16];
  printf("ready\n");
  fflush(stdout);
  if (!fgets(line, sizeof line, stdin)) return 2;
  int created = 1;
  int id = semget(key, 1, 0600 | IPC_CREAT | IPC_EXCL);
  if (id >= 0) {
    struct timespec slow = { 0, pause_ms * 1000000 };
    nanosleep(&slow, NULL);
    union semun arg;
    arg.val = initial;
    if (semctl(id, 0, SETVAL, arg) < 0) { perror("SETVAL"); return 3; }
    struct sembuf mark[2] = { { 0, -1, IPC_NOWAIT }, { 0, 1, IPC_NOWAIT } };
    if (semop(id, mark, 2) < 0) { perror("mark"); return 4; }
  } else if (errno == EEXIST) {
    created = 0;
    id = semget(key, 1, 0);
    if (id < 0) { perror("semget"); return 5; }
    struct semid_ds ds;
    union semun arg;
    arg.buf = &ds;
    for (int i = 0;; i++) {
      if (semctl(id, 0, IPC_STAT, arg) < 0) { perror("IPC_STAT"); return 6; }
      if (ds.sem_otime != 0) break;
      if (i > 10000) { fprintf(stderr, "never initialised\n"); return 7; }
      struct timespec ts = { 0, 1000000 };
      nanosleep(&ts, NULL);
    }
  } else {
    perror("semget");
    return 8;
  }
  printf("saw %d created %d\n", semctl(id, 0, GETVAL), created);
  struct sembuf give = { 0, 1, SEM_UNDO }, take = { 0, -1, SEM_UNDO };
  if (semop(id, &give, 1) < 0 || semop(id, &take, 1) < 0) { perror("semop"); return 9; }
  printf("done\n");
  return 0;
}
`

const PROTOCOL_NODE = `
const [key, initial] = process.argv.slice(2).map(Number)
console.log('ready')
process.stdin.once('data', async () => {
  const set = ipckit.SemaphoreSet.open(key, { create: true, initial: [initial] })
  console.log('saw ' + set.get(0))
  set.opSync([{ index: 0, delta: 1 }])
  await set.op([{ index: 0, delta: -1 }])
  console.log('done')
  process.exit(0)
})
`

test('init race: 16 processes (Node and C) open one key at once, one initialises, none sees 0', async (t) => {
  const key = freshKey('sem')
  removeKeyAtEnd(t, key)
  const exe = compileC('sem-protocol', PROTOCOL_C)
  const args = [String(key), '3']
  const children = [
    ...Array.from({ length: 8 }, () => cChild(exe, [...args, '300'])),
    ...Array.from({ length: 8 }, () => nodeChild(PROTOCOL_NODE, args)),
  ]
  await Promise.all(children.map((c) => c.line(/^ready$/)))
  t.false(keyExists('sem', key))
  // The C programs go first, and one of them creates the set, slowly (300 ms before SETVAL);
  // once the set exists the Node openers go, inside that window, and must wait for the
  // initialisation.
  for (const c of children.slice(0, 8)) c.write('go')
  for (let i = 0; !keyExists('sem', key); i++) {
    if (i > 500) return t.fail('no C program created the set')
    await sleep(1)
  }
  for (const c of children.slice(8)) c.write('go')
  const results = await Promise.all(children.map((c) => c.done))
  for (const r of results) t.is(r.code, 0, r.stderr)
  // Every opener adds one and takes it back, so anything below 3 would be an uninitialised set.
  const seen = results.map((r) => Number(/saw (\d+)/.exec(r.stdout)?.[1]))
  for (const v of seen) t.true(v >= 3 && v <= 3 + 15, `an opener saw ${v}`)
  t.is(results.filter((r) => r.stdout.includes('created 1')).length, 1, 'one C program created the set')
  const set = SemaphoreSet.open(key)
  t.is(set.get(0), 3, 'every take was given back, and nobody re-initialised the set')
  t.is(set.count, 1)
  set.close()
})

test('a C program opening a set made by ipckit waits for nothing and sees its values', async (t) => {
  const key = freshKey('sem')
  removeKeyAtEnd(t, key)
  const set = SemaphoreSet.open(key, { create: true, initial: [5] })
  const exe = compileC('sem-protocol', PROTOCOL_C)
  const child = cChild(exe, [String(key), '1'])
  await child.line(/^ready$/)
  child.write('go')
  const r = await child.done
  t.is(r.code, 0, r.stderr)
  t.regex(r.stdout, /saw 5 created 0/)
  t.is(set.get(0), 5)
  t.is(set.lastPid(0), child.pid)
  set.close()
})

const COUNTER = `
const [key, file, mode, rounds] = process.argv.slice(2)
const fs = require('node:fs')
const mutex = ipckit.Mutex.open(Number(key))
const bump = () => fs.writeFileSync(file, String(Number(fs.readFileSync(file, 'utf8')) + 1))
console.log('ready')
process.stdin.once('data', async () => {
  for (let i = 0; i < Number(rounds); i++) {
    if (mode === 'sync') {
      const guard = mutex.lockSync()
      try { bump() } finally { guard.unlock() }
    } else {
      await mutex.withLock(bump)
    }
  }
  process.exit(0)
})
`

test('mutual exclusion: 4 processes x 2000 increments of a file under the Mutex give 8000', async (t) => {
  const key = freshKey('sem')
  removeKeyAtEnd(t, key)
  const dir = tempDir()
  t.teardown(dir.remove)
  const file = join(dir.path, 'counter')
  writeFileSync(file, '0')
  const mutex = Mutex.open(key, { create: true })
  const children = ['sync', 'async', 'sync', 'async'].map((mode) => nodeChild(COUNTER, [String(key), file, mode, '2000']))
  await Promise.all(children.map((c) => c.line(/^ready$/)))
  for (const c of children) c.write('go')
  for (const r of await Promise.all(children.map((c) => c.done))) t.is(r.code, 0, r.stderr)
  t.is(Number(readFileSync(file, 'utf8')), 8000)
  t.false(mutex.locked)
  mutex.close()
})

test('crash safety: the lock of a process killed with SIGKILL is released by the kernel', async (t) => {
  const key = freshKey('sem')
  removeKeyAtEnd(t, key)
  const mutex = Mutex.open(key, { create: true })
  const child = nodeChild(
    `const m = ipckit.Mutex.open(Number(process.argv[2])); m.lockSync(); console.log('locked'); setInterval(() => {}, 1000)`,
    [String(key)],
  )
  await child.line(/^locked$/)
  t.true(mutex.locked)
  t.is(mutex.tryLock(), null)
  const waiting = mutex.lock({ timeoutMs: 10_000 })
  child.kill('SIGKILL')
  const { ms, value: guard } = await timed(() => waiting)
  t.true(guard.held)
  t.true(ms < 5000, `released after ${ms} ms`)
  t.is((await child.done).signal, 'SIGKILL')
  guard.unlock()
  t.false(mutex.locked)
  mutex.close()
})

test('SEM_UNDO by default: what an exited process changed is undone, unless undo: false', async (t) => {
  const set = SemaphoreSet.create({ count: 2 })
  t.teardown(() => set.remove())
  await runNode(
    `const s = ipckit.SemaphoreSet.fromId(Number(process.argv[2]))
     s.opSync([{ index: 0, delta: 2 }, { index: 1, delta: 2, undo: false }])
     if (s.getAll().join() !== '2,2') process.exit(1)`,
    [String(set.id)],
  )
  t.deepEqual(set.getAll(), [0, 2])
  const sem = Semaphore.open(IPC_PRIVATE, { initial: 0, undo: false })
  t.teardown(() => sem.remove())
  const setId = sem.id
  await runNode(
    `const s = ipckit.SemaphoreSet.fromId(Number(process.argv[2]))
     s.opSync([{ index: 0, delta: 1, undo: false }])`,
    [String(setId)],
  )
  await sem.acquire({ timeoutMs: 1000 })
  t.is(sem.value, 0)
})

test('an unprivileged process gets EACCES from the kernel', async (t) => {
  const key = freshKey('sem')
  const set = SemaphoreSet.open(key, { create: true, initial: [1], mode: 0o600 })
  t.teardown(() => set.remove())
  const readable = SemaphoreSet.create({ initial: [1], mode: 0o644 })
  t.teardown(() => readable.remove())
  const r = await runNode(
    `const out = []
     const code = (fn) => { try { fn(); return 'ok' } catch (e) { return e.code + ':' + e.syscall } }
     out.push(code(() => ipckit.SemaphoreSet.open(Number(process.argv[2]))))
     out.push(code(() => ipckit.SemaphoreSet.fromId(Number(process.argv[3]))))
     const ro = ipckit.SemaphoreSet.fromId(Number(process.argv[4]))
     out.push(String(ro.get(0)))
     out.push(code(() => ro.opSync([{ index: 0, delta: -1 }])))
     ro.op([{ index: 0, delta: -1 }]).then(() => 'ok', (e) => e.code).then((c) => { out.push(c); console.log(out.join(' ')) })`,
    [String(key), String(set.id), String(readable.id)],
    { uid: NOBODY.uid, gid: NOBODY.gid },
  )
  t.is(r.stdout.trim(), 'EACCES:semctl EACCES:semctl 1 EACCES:semop EACCES')
  t.is(set.get(0), 1)
  t.is(readable.get(0), 1)
})

test('a pending wait does not keep the process alive after close()', async (t) => {
  const set = SemaphoreSet.create({ initial: [0] })
  t.teardown(() => set.remove())
  const { ms, value: r } = await timed(() =>
    runNode(
      `const s = ipckit.SemaphoreSet.fromId(Number(process.argv[2]))
       s.op([{ index: 0, delta: -1 }]).catch((e) => console.log(e.name))
       setTimeout(() => s.close(), 50)`,
      [String(set.id)],
      { timeoutMs: 20_000 },
    ),
  )
  t.is(r.stdout.trim(), 'AbortError')
  t.true(ms < 20_000)
  t.is(set.get(0), 0)
  t.is(set.waitingForIncrease(0), 0)
})
