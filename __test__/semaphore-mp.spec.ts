import { execFileSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

import test, { type ExecutionContext } from 'ava'

import { IPC_PRIVATE, Mutex, Semaphore, SemaphoreSet } from '../ts/index'
import {
  NOBODY,
  cChild,
  compileC,
  freshKey,
  keyExists,
  nodeChild,
  removeBuilds,
  runC,
  runNode,
  sleep,
  tempDir,
  timed,
} from './helpers'
import { needs, perl, python } from './helpers/foreign'

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
 * wait for sem_otime would see the kernel's zero; with argv[3] "-1" it prints "created" and
 * pauses until a second line comes on stdin.
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
    if (pause_ms < 0) {
      printf("created\n");
      fflush(stdout);
      if (!fgets(line, sizeof line, stdin)) return 2;
    } else {
      struct timespec slow = { 0, pause_ms * 1000000 };
      nanosleep(&slow, NULL);
    }
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
const [key, initial, initTimeoutMs] = process.argv.slice(2).map(Number)
console.log('ready')
process.stdin.once('data', async () => {
  const set = ipckit.SemaphoreSet.open(key, { create: true, initial: [initial], initTimeoutMs })
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
    // Openers told that creators may pause (initTimeoutMs), so they wait for one that does.
    ...Array.from({ length: 8 }, () => nodeChild(PROTOCOL_NODE, [...args, '5000'])),
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
  const children = ['sync', 'async', 'sync', 'async'].map((mode) =>
    nodeChild(COUNTER, [String(key), file, mode, '2000']),
  )
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

/** Milliseconds `fn` blocks the calling thread, with its result. */
function blocking<T>(fn: () => T): { ms: number; value: T } {
  const start = process.hrtime.bigint()
  const value = fn()
  return { ms: Number(process.hrtime.bigint() - start) / 1e6, value }
}

/**
 * A set `ipcmk -S count` makes (random key, `semget` alone: never set, never marked), removed
 * when the test ends.
 */
function ipcmkSet(t: ExecutionContext, count: number): SemaphoreSet {
  const out = execFileSync('ipcmk', ['-S', String(count)], { encoding: 'utf8' })
  const id = Number(/Semaphore id: (\d+)/.exec(out)?.[1])
  const set = SemaphoreSet.fromId(id)
  t.teardown(() => {
    try {
      set.remove()
    } catch {
      // removed by the test
    }
    set.close()
  })
  return set
}

needs(test, { command: 'ipcmk' })(
  'a set `ipcmk -S` made opens by key at once, as a set, a Semaphore and a Mutex',
  async (t) => {
    const made = ipcmkSet(t, 2)
    t.is(made.stat().lastOpTime, null, 'ipcmk never marks its set')
    const { ms, value: set } = blocking(() => SemaphoreSet.open(made.key))
    t.true(ms < 1000, `open blocked ${ms} ms`)
    t.is(set.id, made.id)
    t.is(set.count, 2)
    t.deepEqual(set.getAll(), [0, 0])
    await set.op([{ index: 1, delta: 2, undo: false }], { timeoutMs: 1000 })
    t.deepEqual(made.getAll(), [0, 2])
    set.close()

    const one = ipcmkSet(t, 1)
    const sem = blocking(() => Semaphore.open(one.key))
    t.true(sem.ms < 1000, `Semaphore.open blocked ${sem.ms} ms`)
    t.is(sem.value.id, one.id)
    t.false(sem.value.tryAcquire())
    sem.value.release()
    t.is(one.get(0), 1)
    sem.value.close()

    const lock = ipcmkSet(t, 1)
    const mutex = blocking(() => Mutex.open(lock.key))
    t.true(mutex.ms < 1000, `Mutex.open blocked ${mutex.ms} ms`)
    t.is(mutex.value.id, lock.id)
    t.true(mutex.value.locked, 'a mutex over an ipcmk set (value 0) is held')
    lock.set(0, 1)
    const guard = mutex.value.tryLock()
    t.not(guard, null)
    t.is(lock.get(0), 0)
    guard!.unlock()
    t.is(lock.get(0), 1)
    mutex.value.close()
  },
)

needs(test, { python: 'sysv_ipc' })(
  'a semaphore Python sysv_ipc made (semget + SETVAL) opens at once and works both ways',
  async (t) => {
    const key = freshKey('sem')
    removeKeyAtEnd(t, key)
    await python(`import sys, sysv_ipc; sysv_ipc.Semaphore(int(sys.argv[1]), sysv_ipc.IPC_CREX, 0o600, 2)`, [
      String(key),
    ])
    t.is(SemaphoreSet.open(key, { initTimeoutMs: 0 }).stat().lastOpTime, null, 'sysv_ipc never marks its set')
    const { ms, value: sem } = blocking(() => Semaphore.open(key, { undo: false }))
    t.true(ms < 1000, `open blocked ${ms} ms`)
    t.is(sem.value, 2)
    t.true(sem.tryAcquire())
    const seen = await python(
      `import sys, sysv_ipc
s = sysv_ipc.Semaphore(int(sys.argv[1]))
print(s.value)
s.acquire()
print(s.value)
s.block = False
try:
    s.acquire()
    print('took a third')
except sysv_ipc.BusyError:
    print('busy')
s.release(); s.release(); s.release()`,
      [String(key)],
    )
    t.deepEqual(seen.trim().split('\n'), ['1', '0', 'busy'])
    t.is(sem.value, 3)
    sem.close()

    // A mutex over a set sysv_ipc made unlocked: the two exclude each other.
    const lockKey = freshKey('sem')
    removeKeyAtEnd(t, lockKey)
    await python(`import sys, sysv_ipc; sysv_ipc.Semaphore(int(sys.argv[1]), sysv_ipc.IPC_CREX, 0o600, 1)`, [
      String(lockKey),
    ])
    const mutex = Mutex.open(lockKey)
    const guard = await mutex.lock({ timeoutMs: 1000 })
    const tryLock = `import sys, sysv_ipc
s = sysv_ipc.Semaphore(int(sys.argv[1]))
s.block = False
try:
    s.acquire()
    s.release()
    print('got it')
except sysv_ipc.BusyError:
    print('busy')`
    t.is((await python(tryLock, [String(lockKey)])).trim(), 'busy')
    guard.unlock()
    t.is((await python(tryLock, [String(lockKey)])).trim(), 'got it')
    mutex.close()
  },
)

needs(test, { perl: 'IPC::Semaphore' })(
  'a set Perl IPC::Semaphore made (new + setall) opens at once and works both ways',
  async (t) => {
    const key = freshKey('sem')
    removeKeyAtEnd(t, key)
    const made = `use IPC::SysV qw(IPC_CREAT IPC_EXCL S_IRUSR S_IWUSR); use IPC::Semaphore;
my $s = IPC::Semaphore->new($ARGV[0], 2, S_IRUSR | S_IWUSR | IPC_CREAT | IPC_EXCL) or die "semget: $!";
$s->setall(1, 0) or die "setall: $!";`
    await perl(made, [String(key)])
    const { ms, value: set } = blocking(() => SemaphoreSet.open(key))
    t.true(ms < 1000, `open blocked ${ms} ms`)
    t.is(set.count, 2)
    t.is(set.stat().lastOpTime, null, 'Perl never marked the set')
    t.deepEqual(set.getAll(), [1, 0])
    await set.op(
      [
        { index: 0, delta: -1, undo: false },
        { index: 1, delta: 1, undo: false },
      ],
      { timeoutMs: 1000 },
    )
    const seen = await perl(
      `use IPC::Semaphore; my $s = IPC::Semaphore->new($ARGV[0], 0, 0) or die "semget: $!";
print join(' ', $s->getall), "\\n"; $s->op(1, -1, 0, 0, 1, 0) or die "op: $!";`,
      [String(key)],
    )
    t.is(seen.trim(), '0 1')
    t.deepEqual(set.getAll(), [1, 0])
    set.close()
  },
)

/**
 * A C creator that never marks its set: `semget(IPC_CREAT | IPC_EXCL)` of `count` semaphores,
 * then `SETVAL` of semaphore 0 to argv[3], as most C programs do; with argv[2] "check" it
 * prints semaphore 0's value and last pid instead.
 */
const SETVAL_C = String.raw`
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sem.h>
#ifndef __APPLE__
union semun { int val; struct semid_ds *buf; unsigned short *array; };
#endif
int main(int argc, char **argv) {
  key_t key = (key_t)strtoul(argv[1], NULL, 0);
  if (strcmp(argv[2], "check") == 0) {
    int id = semget(key, 0, 0);
    if (id < 0) { perror("semget"); return 2; }
    printf("value %d pid %d\n", semctl(id, 0, GETVAL), semctl(id, 0, GETPID));
    return 0;
  }
  int id = semget(key, atoi(argv[2]), 0600 | IPC_CREAT | IPC_EXCL);
  if (id < 0) { perror("semget"); return 3; }
  union semun arg;
  arg.val = atoi(argv[3]);
  if (semctl(id, 0, SETVAL, arg) < 0) { perror("SETVAL"); return 4; }
  return 0;
}
`

test('a C program that creates with semget + SETVAL (no semop): its set opens at once', async (t) => {
  const exe = compileC('sem-setval', SETVAL_C)
  const key = freshKey('sem')
  removeKeyAtEnd(t, key)
  await runC(exe, [String(key), '1', '1'])
  const { ms, value: mutex } = blocking(() => Mutex.open(key))
  t.true(ms < 1000, `open blocked ${ms} ms`)
  const guard = mutex.lockSync({ timeoutMs: 1000 })
  t.is((await runC(exe, [String(key), 'check'])).stdout.trim(), `value 0 pid ${process.pid}`)
  guard.unlock()
  t.is((await runC(exe, [String(key), 'check'])).stdout.trim(), `value 1 pid ${process.pid}`)
  mutex.close()
  // A set of two where the creator set only the first: young and half untouched, it is
  // checked again for initTimeoutMs, then taken as it is.
  const two = freshKey('sem')
  removeKeyAtEnd(t, two)
  await runC(exe, [String(two), '2', '4'])
  // (Unless this loaded machine took a second to get here: the set is then old enough.)
  const young = Date.now() - SemaphoreSet.open(two, { initTimeoutMs: 0 }).stat().changeTime.getTime() < 1000
  const opened = blocking(() => SemaphoreSet.open(two, { initTimeoutMs: 40 }))
  t.true(opened.ms < 1000, `open blocked ${opened.ms} ms`)
  if (young) t.true(opened.ms >= 39, `open blocked ${opened.ms} ms`)
  t.deepEqual(opened.value.getAll(), [4, 0])
  opened.value.close()
})

// Serial: the set must still be young (made less than a second ago) when the openers look.
test.serial(
  'a C creator paused between semget and SETVAL: openers wait only as long as initTimeoutMs says',
  async (t) => {
    const exe = compileC('sem-protocol', PROTOCOL_C)
    const key = freshKey('sem')
    removeKeyAtEnd(t, key)
    const creator = cChild(exe, [String(key), '3', '-1'])
    t.teardown(() => creator.kill('SIGKILL'))
    // An opener in another process, ready to open when told, allowing 10 s for the creator.
    const patient = nodeChild(
      `console.log('ready')
     process.stdin.once('data', () => {
       console.log('opening')
       const start = Date.now()
       const set = ipckit.SemaphoreSet.open(Number(process.argv[2]), { initTimeoutMs: 10000 })
       console.log(set.get(0), set.stat().lastOpTime !== null, Date.now() - start)
       process.exit(0)
     })`,
      [String(key)],
    )
    await Promise.all([creator.line(/^ready$/), patient.line(/^ready$/)])
    creator.write('go')
    await creator.line(/^created$/)
    // The default: the JavaScript thread is held a few ms, not for the creator's pause, and the
    // set comes as the kernel has it (the untouched set cannot be told from one ipcmk made).
    const quick = blocking(() => SemaphoreSet.open(key))
    t.true(quick.ms < 500, `open blocked ${quick.ms} ms`)
    t.is(quick.value.get(0), 0)
    t.is(quick.value.stat().lastOpTime, null)
    quick.value.close()
    // The patient opener waits for the creator, and then sees its value.
    patient.write('open')
    await patient.line(/^opening$/)
    await sleep(300)
    creator.write('init')
    const p = await patient.done
    t.is(p.code, 0, p.stderr)
    const [value, marked, ms] = p.stdout.trim().split('\n')[2]!.split(' ')
    t.is(value, '3')
    t.is(marked, 'true')
    t.true(Number(ms) >= 250, `the opener waited ${ms} ms for the creator`)
    const r = await creator.done
    t.is(r.code, 0, r.stderr)
    t.regex(r.stdout, /saw 3 created 1/)
  },
)

const RACING_OPENER = `
const key = Number(process.argv[2])
let timedOut = 0
console.log('ready')
process.stdin.once('data', () => {
  for (;;) {
    let set
    try {
      set = ipckit.SemaphoreSet.open(key)
    } catch (e) {
      // ETIMEDOUT: the creator had not initialised the set yet (a loaded machine); try again.
      if (e.code === 'ENOENT') continue
      if (e.code === 'ETIMEDOUT') { timedOut++; continue }
      throw e
    }
    console.log('saw ' + set.getAll().join(','), timedOut)
    process.exit(0)
  }
})
`

test('an ipckit creator racing openers in other processes: no opener sees its set before its values', async (t) => {
  for (let round = 0; round < 6; round++) {
    const key = freshKey('sem')
    removeKeyAtEnd(t, key)
    const openers = Array.from({ length: 3 }, () => nodeChild(RACING_OPENER, [String(key)]))
    const creator = nodeChild(
      `console.log('ready')
       process.stdin.once('data', () => {
         ipckit.SemaphoreSet.open(Number(process.argv[2]), { create: true, exclusive: true, initial: [3, 7, 0] })
         console.log('created')
         process.exit(0)
       })`,
      [String(key)],
    )
    await Promise.all([creator, ...openers].map((c) => c.line(/^ready$/)))
    // The openers spin on semget first, so that one of them finds the set the instant it exists.
    for (const c of openers) c.write('go')
    await sleep(20)
    creator.write('go')
    const results = await Promise.all([creator, ...openers].map((c) => c.done))
    for (const r of results) t.is(r.code, 0, r.stderr)
    for (const r of results.slice(1)) {
      const [seen, timedOut] = r.stdout.split('\n')[1]!.split(' ').slice(1)
      t.is(seen, '3,7,0')
      if (Number(timedOut) > 0) t.log(`an opener was told ETIMEDOUT ${timedOut} times and tried again`)
    }
    const set = SemaphoreSet.open(key)
    t.deepEqual(set.getAll(), [3, 7, 0])
    set.close()
  }
})
