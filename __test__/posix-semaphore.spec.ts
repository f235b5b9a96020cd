/**
 * POSIX named semaphores: values, waits and their cancellation, C programs and Python's
 * `posix_ipc` on the same name (the C library's own sem_open), the libuv threadpool left alone,
 * permissions, a foreign file under the name, worker threads, and what they lack (no undo).
 */
import test, { type ExecutionContext } from 'ava'
import { spawnSync } from 'node:child_process'
import { existsSync, statSync, writeFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { Worker } from 'node:worker_threads'

import { AbortError, IpcError, POSIX_SEMAPHORE_VALUE_MAX, PosixSemaphore } from '../ts/index'
import {
  NOBODY,
  ROOT,
  SOURCE_ENTRY,
  cChild,
  compileC,
  linuxOnly,
  nodeChild,
  notLinux,
  onLinux,
  readmeSnippet,
  removeBuilds,
  runNode,
  sleep,
  tempDir,
  timed,
} from './helpers'

test.after.always(removeBuilds)

const TSX_CJS = require.resolve('tsx/cjs')
let counter = 0
/** A semaphore name unique to this test process, unlinked when the test ends. */
function sname(t: ExecutionContext): string {
  const name = `/ipckit-test-sem-${process.pid}-${++counter}`
  t.teardown(() => {
    try {
      PosixSemaphore.unlink(name)
    } catch {
      // removed by the test
    }
  })
  return name
}

/** A new semaphore (exclusive) with `initial`, closed and unlinked when the test ends. */
function createSem(t: ExecutionContext, initial = 0): PosixSemaphore {
  const sem = PosixSemaphore.open(sname(t), { exclusive: true, initial })
  t.teardown(() => sem.close())
  return sem
}

/** Runs a command to its end without blocking the event loop. */
async function run(command: string, args: string[], env?: NodeJS.ProcessEnv) {
  const r = await cChild(command, args, { cwd: ROOT, env: env ?? process.env }).done
  return { status: r.code, stdout: r.stdout, stderr: r.stderr }
}

/** `name post N` posts N times (after `DELAY_MS`); `name wait N` waits N times, then prints the value. */
const C_SEM = `
#include <fcntl.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
int main(int argc, char **argv) {
  sem_t *s = sem_open(argv[1], 0);
  if (s == SEM_FAILED) { perror("sem_open"); return 1; }
  int n = atoi(argv[3]);
  const char *delay = getenv("DELAY_MS");
  if (delay) usleep((useconds_t)atoi(delay) * 1000);
  for (int i = 0; i < n; i++) {
    if (strcmp(argv[2], "post") == 0 ? sem_post(s) : sem_wait(s)) { perror(argv[2]); return 1; }
  }
  int v;
  sem_getvalue(s, &v);
  printf("%d\\n", v);
  return 0;
}
`

test('values: initial, tryAcquire, release and value, shared by two handles of one name', (t) => {
  const a = createSem(t, 2)
  const b = PosixSemaphore.open(a.name)
  t.teardown(() => b.close())
  t.is(a.value, 2)
  t.true(a.tryAcquire())
  t.is(b.value, 1)
  t.true(b.tryAcquire())
  t.false(a.tryAcquire())
  t.is(a.value, 0)
  b.release()
  b.release()
  b.release()
  t.is(a.value, 3)
  // Closing one handle leaves the other working (the C library counts its opens of a name).
  b.close()
  t.true(a.tryAcquire())
  t.is(a.value, 2)
  // An existing semaphore keeps its value whatever `initial` says.
  const c = PosixSemaphore.open(a.name, { create: true, initial: 9 })
  t.teardown(() => c.close())
  t.is(c.value, 2)
  t.like(
    t.throws(() => PosixSemaphore.open(a.name, { exclusive: true })),
    { code: 'EEXIST', syscall: 'sem_open' },
  )
})

linuxOnly(test, "glibc's layout: /dev/shm/sem.NAME")(
  "the semaphore is glibc's own: a 32-byte sem_t in /dev/shm/sem.NAME, removed by remove()",
  (t) => {
    const sem = createSem(t, 1)
    const file = `/dev/shm/sem.${sem.name.slice(1)}`
    t.true(existsSync(file))
    t.is(statSync(file).size, 32)
    t.is(statSync(file).mode & 0o777, 0o600 & ~process.umask())
    sem.remove()
    t.false(existsSync(file))
    t.is(sem.value, 1, 'the handle keeps working after remove()')
    t.like(
      t.throws(() => PosixSemaphore.open(sem.name), { instanceOf: IpcError }),
      { code: 'ENOENT', syscall: 'sem_open' },
    )
  },
)

test('bad arguments throw TypeError/RangeError before any system call (nothing is created)', async (t) => {
  const name = sname(t)
  const bad: Array<[() => unknown, string]> = [
    [() => PosixSemaphore.open(1 as never, { create: true }), 'ERR_INVALID_ARG_TYPE'],
    [() => PosixSemaphore.open('lock', { create: true }), 'ERR_INVALID_ARG_VALUE'],
    [() => PosixSemaphore.open('/', { create: true }), 'ERR_INVALID_ARG_VALUE'],
    [() => PosixSemaphore.open('/a/b', { create: true }), 'ERR_INVALID_ARG_VALUE'],
    [() => PosixSemaphore.open('/a\0', { create: true }), 'ERR_INVALID_ARG_VALUE'],
    [() => PosixSemaphore.open(`/${'s'.repeat(252)}`, { create: true }), 'ERR_INVALID_ARG_VALUE'],
    [() => PosixSemaphore.open(name, { create: true, initial: -1 }), 'ERR_OUT_OF_RANGE'],
    [() => PosixSemaphore.open(name, { create: true, initial: POSIX_SEMAPHORE_VALUE_MAX + 1 }), 'ERR_OUT_OF_RANGE'],
    [() => PosixSemaphore.open(name, { create: true, initial: 0.5 }), 'ERR_OUT_OF_RANGE'],
    [() => PosixSemaphore.open(name, { create: true, mode: -1 }), 'ERR_OUT_OF_RANGE'],
    [() => PosixSemaphore.open(name, { exclusive: 'no' as never }), 'ERR_INVALID_ARG_TYPE'],
    [() => PosixSemaphore.open(name, [] as never), 'ERR_INVALID_ARG_TYPE'],
    [() => PosixSemaphore.unlink('x'), 'ERR_INVALID_ARG_VALUE'],
  ]
  for (const [fn, code] of bad) t.like(t.throws(fn), { code }, String(fn))
  t.like(
    t.throws(() => PosixSemaphore.open(name)),
    { code: 'ENOENT' },
    'nothing was created',
  )
  // The longest name: 251 bytes after the slash (NAME_MAX less glibc's "sem." prefix).
  const longest = `/${'s'.repeat(251)}`
  PosixSemaphore.open(longest, { exclusive: true }).close()
  PosixSemaphore.unlink(longest)
  const sem = createSem(t, 1)
  t.like(
    t.throws(() => sem.acquireSync({ timeoutMs: -5 })),
    { code: 'ERR_OUT_OF_RANGE' },
  )
  // One rule for every timeout (validateTimeout): NaN and negatives refused, fractions and
  // Infinity taken (a sem holding 1: each of these takes it at once, then gives it back).
  await t.throwsAsync(sem.acquire({ timeoutMs: Number.NaN }), { code: 'ERR_OUT_OF_RANGE' })
  await t.throwsAsync(sem.acquire({ timeoutMs: '5' as never }), { code: 'ERR_INVALID_ARG_TYPE' })
  for (const timeoutMs of [2 ** 31, 1.5, Infinity]) {
    await sem.acquire({ timeoutMs })
    sem.release()
  }
  await t.throwsAsync(sem.acquire({ signal: {} as never }), { code: 'ERR_INVALID_ARG_TYPE' })
  t.is(sem.value, 1, 'no bad call took anything')
})

test.serial(
  'timeouts: ETIMEDOUT near the deadline, sync and async; 0 answers at once; a release in time wins',
  async (t) => {
    const sem = createSem(t, 0)
    const a = await timed(() => sem.acquire({ timeoutMs: 80 }).catch((e: unknown) => e))
    t.like(a.value, { code: 'ETIMEDOUT', syscall: 'sem_timedwait' })
    t.true(a.ms >= 79 && a.ms < 5000, `${a.ms} ms`)
    const start = performance.now()
    t.like(
      t.throws(() => sem.acquireSync({ timeoutMs: 80 })),
      { code: 'ETIMEDOUT', syscall: 'sem_timedwait' },
    )
    const took = performance.now() - start
    t.true(took >= 79 && took < 5000, `${took} ms`)
    t.like(await sem.acquire({ timeoutMs: 0 }).catch((e: unknown) => e), { code: 'ETIMEDOUT' })
    setTimeout(() => sem.release(), 30)
    const got = await timed(() => sem.acquire({ timeoutMs: 5000 }))
    t.true(got.ms >= 25 && got.ms < 5000, `${got.ms} ms`)
    t.is(sem.value, 0)
    sem.release()
    await sem.acquire({ timeoutMs: 0 })
    t.is(sem.value, 0)
  },
)

test('C programs and ipckit share one semaphore: C posts wake async acquires, ipckit releases wake C waits', async (t) => {
  const sem = createSem(t, 0)
  const exe = compileC('sem-posix', C_SEM)
  const waits = Promise.all([sem.acquire(), sem.acquire(), sem.acquire()])
  const poster = await run(exe, [sem.name, 'post', '3'], { ...process.env, DELAY_MS: '30' })
  t.is(poster.status, 0, poster.stderr)
  await waits
  t.is(sem.value, 0)
  const waiter = cChild(exe, [sem.name, 'wait', '2'])
  await sleep(20)
  sem.release()
  sem.release()
  sem.release()
  const r = await waiter.done
  t.is(r.code, 0, r.stderr)
  t.is(r.stdout.trim(), '1', 'C took two of the three and reads the third')
  t.is(sem.value, 1)
})

const PY = spawnSync('python3', ['-c', 'import posix_ipc'], { encoding: 'utf8' })
const PY_REASON = PY.error
  ? `python3 is not installed (${PY.error.message})`
  : PY.status !== 0
    ? 'python3 cannot import posix_ipc (pip install posix_ipc; .ci/run installs it)'
    : ''
const pyTest = PY_REASON === '' ? test : test.skip

pyTest(
  `Python's posix_ipc opens the same semaphore by name${PY_REASON ? ` [skipped: ${PY_REASON}]` : ''}`,
  async (t) => {
    const sem = createSem(t, 5)
    const script = `
import posix_ipc, sys
s = posix_ipc.Semaphore(sys.argv[1])
before = s.value
s.acquire(); s.acquire()
s.release()
print(before, s.value)
try:
    s2 = posix_ipc.Semaphore(sys.argv[2], posix_ipc.O_CREX, initial_value=7)
    s2.close()
    print('created')
except Exception as e:
    print('error', e)
`
    const other = sname(t)
    const r = await run('python3', ['-c', script, sem.name, other])
    t.is(r.status, 0, r.stderr)
    t.deepEqual(r.stdout.trim().split('\n'), ['5 4', 'created'])
    t.is(sem.value, 4)
    const theirs = PosixSemaphore.open(other)
    t.teardown(() => theirs.close())
    t.is(theirs.value, 7, "ipckit reads the value Python's semaphore was created with")
  },
)

test('an aborted acquire takes nothing; one that races its abort either took the count or left it', async (t) => {
  const sem = createSem(t, 0)
  const ac = new AbortController()
  const p = sem.acquire({ signal: ac.signal })
  await sleep(10)
  ac.abort(new Error('stop'))
  const err = await t.throwsAsync(p, { instanceOf: AbortError })
  t.is((err!.cause as Error).message, 'stop')
  sem.release()
  t.is(sem.value, 1, 'the aborted wait took nothing')
  t.true(sem.tryAcquire())
  await t.throwsAsync(sem.acquire({ signal: AbortSignal.abort() }), { instanceOf: AbortError })

  let took = 0
  const rounds = 100
  for (let i = 0; i < rounds; i++) {
    const ac = new AbortController()
    const p = sem.acquire({ signal: ac.signal })
    const released = new Promise<void>((resolve) =>
      setImmediate(() => {
        sem.release()
        ac.abort()
        resolve()
      }),
    )
    try {
      await p
      took++
    } catch (e) {
      t.true(e instanceof AbortError)
    }
    await released
  }
  t.is(took + sem.value, rounds, 'every release was either taken by its acquire or is still there')
})

test('close() ends pending acquires with AbortError (cause ERR_INVALID_STATE) and takes nothing', async (t) => {
  const sem = createSem(t, 0)
  const other = PosixSemaphore.open(sem.name)
  t.teardown(() => other.close())
  const pending = [sem.acquire(), sem.acquire({ timeoutMs: 60_000 })]
  await sleep(10)
  sem.close()
  for (const p of pending) {
    const err = await t.throwsAsync(p, { instanceOf: AbortError })
    t.is((err!.cause as { code?: string }).code, 'ERR_INVALID_STATE')
  }
  other.release()
  await sleep(10)
  t.is(other.value, 1, 'the closed handle took nothing')
  sem.close()
  t.true(sem.closed)
  for (const fn of [
    () => sem.release(),
    () => sem.tryAcquire(),
    () => sem.value,
    () => sem.acquireSync(),
    () => sem.remove(),
  ]) {
    t.like(t.throws(fn), { code: 'ERR_INVALID_STATE' })
  }
  await t.throwsAsync(sem.acquire(), { code: 'ERR_INVALID_STATE' })
})

test('pending acquires park no libuv threadpool thread: fs and dns still answer with a pool of one', async (t) => {
  const sem = createSem(t, 0)
  const r = await runNode(
    `const fs = require('node:fs'), dns = require('node:dns')
     const sem = ipckit.PosixSemaphore.open(process.argv[2])
     const pending = Array.from({ length: 8 }, () => sem.acquire())
     ;(async () => {
       const t0 = Date.now()
       await fs.promises.readFile(__filename).catch(() => fs.promises.readFile('/etc/hostname'))
       await new Promise((res, rej) => dns.lookup('localhost', (e) => (e ? rej(e) : res())))
       const poolMs = Date.now() - t0
       for (let i = 0; i < 8; i++) sem.release()
       await Promise.all(pending)
       console.log(JSON.stringify({ poolMs, value: sem.value }))
       sem.close()
     })()`,
    [sem.name],
    { env: { ...process.env, UV_THREADPOOL_SIZE: '1' } },
  )
  const out = JSON.parse(r.stdout)
  t.is(out.value, 0)
  t.true(out.poolMs < 10_000, `${out.poolMs} ms`)
})

test('a worker thread acquires what the main thread releases', async (t) => {
  const sem = createSem(t, 0)
  const done = createSem(t, 0)
  const n = 50
  const code = `
    const { parentPort, workerData } = require('node:worker_threads')
    require(workerData.tsx)
    const { PosixSemaphore } = require(workerData.entry)
    const sem = PosixSemaphore.open(workerData.sem)
    const done = PosixSemaphore.open(workerData.done)
    ;(async () => {
      for (let i = 0; i < workerData.n; i++) { await sem.acquire(); done.release() }
      sem.close(); done.close()
      parentPort.postMessage('finished')
    })()
  `
  const worker = new Worker(code, {
    eval: true,
    workerData: { entry: SOURCE_ENTRY, tsx: TSX_CJS, sem: sem.name, done: done.name, n },
  })
  t.teardown(() => worker.terminate())
  const finished = new Promise((resolve, reject) => (worker.once('message', resolve), worker.once('error', reject)))
  for (let i = 0; i < n; i++) {
    sem.release()
    await done.acquire({ timeoutMs: 10_000 })
  }
  t.is(await finished, 'finished')
  t.is(sem.value, 0)
  t.is(done.value, 0)
})

test('permissions: nobody may not open a 0o600 semaphore', async (t) => {
  const sem = createSem(t, 1)
  const r = await runNode(
    `try { ipckit.PosixSemaphore.open(process.argv[2]); console.log('opened') } catch (e) { console.log(e.code + ' ' + e.syscall) }`,
    [sem.name],
    { uid: NOBODY.uid, gid: NOBODY.gid },
  )
  t.is(r.stdout.trim(), 'EACCES sem_open')
  t.is(sem.value, 1)
})

linuxOnly(test, 'semaphores are files of /dev/shm only on Linux')(
  'a foreign file under the name that cannot hold a semaphore is refused with EINVAL, not mapped (no SIGBUS)',
  (t) => {
    const name = sname(t)
    const file = `/dev/shm/sem.${name.slice(1)}`
    writeFileSync(file, '')
    t.teardown(() => rmSync(file, { force: true }))
    for (const options of [{}, { create: true }]) {
      const err = t.throws(() => PosixSemaphore.open(name, options), { instanceOf: IpcError })
      t.like(err, { code: 'EINVAL', syscall: 'sem_open' })
      t.regex(err!.message, /not a semaphore/)
    }
  },
)

linuxOnly(test, 'SEM_VALUE_MAX is INT_MAX with glibc')(
  'a release at the largest value throws EOVERFLOW and changes nothing',
  (t) => {
    const sem = createSem(t, POSIX_SEMAPHORE_VALUE_MAX)
    t.is(POSIX_SEMAPHORE_VALUE_MAX, 2147483647)
    t.like(
      t.throws(() => sem.release()),
      { code: 'EOVERFLOW', syscall: 'sem_post' },
    )
    t.is(sem.value, POSIX_SEMAPHORE_VALUE_MAX)
  },
)

test('what they lack: a holder killed with SIGKILL keeps the count (no undo), unlike a Mutex', async (t) => {
  const sem = createSem(t, 1)
  const child = nodeChild(
    `const s = ipckit.PosixSemaphore.open(process.argv[2]); s.acquireSync(); console.log('holding'); setInterval(() => {}, 1000)`,
    [sem.name],
  )
  await child.line(/holding/)
  child.kill('SIGKILL')
  const r = await child.done
  t.is(r.signal, 'SIGKILL')
  t.is(sem.value, 0, 'nothing gave the count back')
  t.false(sem.tryAcquire())
})

notLinux(test)('on macOS the value is ENOSYS (the C library does not tell it); the rest works', (t) => {
  const sem = createSem(t, 1)
  t.like(
    t.throws(() => sem.value),
    { code: 'ENOSYS', syscall: 'sem_getvalue' },
  )
  t.true(sem.tryAcquire())
  t.false(sem.tryAcquire())
  sem.release()
  t.true(onLinux === false)
})

linuxOnly(test, 'the snippet prints the value, which macOS does not tell')(
  "the README's POSIX semaphore snippet runs and prints what its comments say",
  async (t) => {
    const name = sname(t)
    const dir = tempDir('ipckit-readme-')
    t.teardown(() => dir.remove())
    const file = join(dir.path, 'snippet.mts')
    writeFileSync(file, readmeSnippet('posix-semaphore', [["'/slots'", `'${name}'`]]))
    const r = await run(process.execPath, ['--import', 'tsx', file])
    t.is(r.status, 0, r.stderr)
    t.deepEqual(r.stdout.trim().split('\n'), ['true 0', 'ETIMEDOUT', '2'])
    t.like(
      t.throws(() => PosixSemaphore.open(name)),
      { code: 'ENOENT' },
      'the snippet removed its semaphore',
    )
  },
)
