import { readFileSync, statSync } from 'node:fs'
import { stat } from 'node:fs/promises'
import { constants as osConstants } from 'node:os'

import test, { type ExecutionContext } from 'ava'

import { AbortError, IPC_PRIVATE, IpcError, Mutex, MutexGuard, Semaphore, SemaphoreSet } from '../ts/index'
import { pendingWaits } from '../ts/reactor'
import {
  assertTimeBetween,
  freshKey,
  keyExists,
  linuxOnly,
  removeAtEnd,
  sleep,
  timed,
  waitUntilBlocked,
  within,
  PATIENCE_MS,
} from './helpers'

const track = <T extends { id: number; close(): void }>(t: ExecutionContext, obj: T) =>
  removeAtEnd(t, obj, SemaphoreSet.fromId)
const privateSet = (t: ExecutionContext, initial: number[]) => track(t, SemaphoreSet.create({ initial }))
/** The system's semaphore limits: SEMMSL, SEMMNS, SEMOPM, SEMMNI (from /proc: Linux only). */
const semLimits = () =>
  readFileSync('/proc/sys/kernel/sem', 'utf8').trim().split(/\s+/).map(Number) as [number, number, number, number]
const PROC_SEM = 'reads the semaphore limits from /proc/sys/kernel/sem'

test('create initialises the values, marks sem_otime and reports count, key and mode', (t) => {
  const from = Date.now()
  const set = privateSet(t, [3, 0, 7])
  const to = Date.now()
  t.is(set.count, 3)
  t.is(set.key, 0)
  t.deepEqual(set.getAll(), [3, 0, 7])
  const st = set.stat()
  t.is(st.count, 3)
  t.is(st.mode, 0o600)
  t.is(st.key, 0)
  t.is(st.uid, process.getuid!())
  assertTimeBetween(t, st.lastOpTime, from, to, 'lastOpTime: the creator performed a semop (classic protocol)')
  assertTimeBetween(t, st.changeTime, from, to, 'changeTime')
  t.is(set.lastPid(0), process.pid, "the creator's semop")
  const zerosFrom = Date.now()
  const zeros = track(t, SemaphoreSet.create({ count: 2 }))
  const zerosTo = Date.now()
  t.deepEqual(zeros.getAll(), [0, 0])
  assertTimeBetween(t, zeros.stat().lastOpTime, zerosFrom, zerosTo, 'lastOpTime of a set created with zeros')
})

test('open by key: create, existing never re-initialised, exclusive EEXIST, missing ENOENT', (t) => {
  const key = freshKey('sem')
  t.like(
    t.throws(() => SemaphoreSet.open(key), { instanceOf: IpcError }),
    { code: 'ENOENT', syscall: 'semget' },
  )
  const a = track(t, SemaphoreSet.open(key, { create: true, initial: [4, 5], mode: 0o640 }))
  t.true(keyExists('sem', key))
  t.is(a.key, key)
  t.is(a.stat().mode, 0o640)
  a.set(0, 9)
  const b = SemaphoreSet.open(key, { create: true, initial: [1, 1] })
  t.is(b.id, a.id)
  t.is(b.count, 2)
  t.deepEqual(b.getAll(), [9, 5], 'an existing set keeps its values')
  const c = SemaphoreSet.open(key)
  t.is(c.count, 2, 'opening without a count accepts the size of the set')
  t.like(
    t.throws(() => SemaphoreSet.open(key, { exclusive: true, count: 2 })),
    { code: 'EEXIST', syscall: 'semget' },
  )
  t.like(
    t.throws(() => SemaphoreSet.open(key, { count: 3 })),
    { code: 'EINVAL', syscall: 'semget' },
  )
  b.close()
  c.close()
})

linuxOnly(test, PROC_SEM)('the kernel refuses a set larger than SEMMSL with EINVAL', (t) => {
  const [SEMMSL] = semLimits()
  const e = t.throws(() => SemaphoreSet.create({ count: SEMMSL + 1 }), { instanceOf: IpcError })
  t.is(e.code, 'EINVAL')
  t.is(e.syscall, 'semget')
  t.is(e.errno, -22)
})

test('keys may be given signed or unsigned and are reported unsigned', (t) => {
  const key = 0xfe00_0000 | (process.pid & 0xffff)
  try {
    SemaphoreSet.open(key).remove()
  } catch {
    // none left over
  }
  const a = track(t, SemaphoreSet.open(key | 0, { create: true }))
  t.is(a.key, key >>> 0)
  t.is(a.stat().key, key >>> 0)
  const b = SemaphoreSet.open(key >>> 0)
  t.is(b.id, a.id)
  b.close()
})

test('IPC_PRIVATE always creates a new set; fromId opens one and reports its key and count', (t) => {
  const a = track(t, SemaphoreSet.open(IPC_PRIVATE, { initial: [1] }))
  const b = track(t, SemaphoreSet.open(IPC_PRIVATE, { count: 4 }))
  t.not(a.id, b.id)
  const again = SemaphoreSet.fromId(b.id)
  t.is(again.count, 4)
  t.is(again.key, 0)
  again.close()
  b.remove()
  t.like(
    t.throws(() => SemaphoreSet.fromId(b.id)),
    { code: 'EINVAL', syscall: 'semctl' },
  )
})

test('a multi-op that cannot complete changes neither value (sync, async, timed)', async (t) => {
  const set = privateSet(t, [1, 0])
  const both = [
    { index: 0, delta: -1 },
    { index: 1, delta: -1 },
  ]
  t.like(
    t.throws(() => set.opSync(both, { wait: false })),
    { code: 'EAGAIN', syscall: 'semop' },
  )
  t.false(set.tryOp(both))
  t.like(await t.throwsAsync(set.op(both, { timeoutMs: 30 })), { code: 'EAGAIN', syscall: 'semtimedop' })
  t.deepEqual(set.getAll(), [1, 0])
  set.opSync([
    { index: 0, delta: -1 },
    { index: 1, delta: +2 },
  ])
  t.deepEqual(set.getAll(), [0, 2])
  await set.op([
    { index: 0, delta: +3 },
    { index: 1, delta: -2 },
  ])
  t.deepEqual(set.getAll(), [3, 0])
})

test('delta 0 waits for zero; waitingForIncrease and waitingForZero count waiters', async (t) => {
  const set = privateSet(t, [0, 2])
  const dec = set.op([{ index: 0, delta: -1 }])
  const zero = set.op([{ index: 1, delta: 0 }])
  await sleep(30)
  t.is(set.waitingForIncrease(0), 1)
  t.is(set.waitingForZero(1), 1)
  t.is(set.waitingForZero(0), 0)
  set.opSync([
    { index: 1, delta: -2 },
    { index: 0, delta: 1 },
  ])
  await Promise.all([dec, zero])
  t.deepEqual(set.getAll(), [0, 0])
  t.is(set.lastPid(0), process.pid)
  t.is(set.waitingForIncrease(0), 0)
})

test.serial('an operation that can proceed completes without a thread hop', async (t) => {
  const set = privateSet(t, [1])
  const p = set.op([{ index: 0, delta: -1 }])
  t.is(pendingWaits(), 0)
  await p
  t.is(set.get(0), 0)
})

test.serial('a blocked op resolves when another op makes it possible, off the JS thread', async (t) => {
  const set = privateSet(t, [0])
  const p = set.op([{ index: 0, delta: -2 }])
  let ticks = 0
  const timer = setInterval(() => ticks++, 1)
  await sleep(30)
  t.is(pendingWaits(), 1)
  t.true(ticks > 0, 'the event loop keeps running while the op waits')
  set.opSync([{ index: 0, delta: 1 }])
  await sleep(10)
  t.is(set.get(0), 1, 'not enough yet: nothing taken')
  set.opSync([{ index: 0, delta: 1 }])
  await p
  clearInterval(timer)
  t.is(set.get(0), 0)
  t.is(pendingWaits(), 0)
})

test.serial(
  'many pending waits park no libuv threadpool thread, and alike waits share one kernel waiter',
  async (t) => {
    const set = privateSet(t, [0])
    const order: number[] = []
    const waits = Array.from({ length: 8 }, (_, i) => set.op([{ index: 0, delta: -1 }]).then(() => order.push(i)))
    // Until the wait thread is in semop (soon, but later on a busy machine), then a little more:
    // a second thread blocking for these waits would show by then.
    for (let i = 0; i < 1000 && set.waitingForIncrease(0) === 0; i++) await sleep(10)
    await sleep(20)
    // One thread blocks in semop for the 8 alike waits, which it serves in turn.
    t.is(set.waitingForIncrease(0), 1)
    t.is(pendingWaits(), 8)
    // With 8 waits on the pool (4 threads), these would never run.
    const work = Promise.all([stat('/'), stat('/tmp'), stat(__dirname), stat('/'), stat('/'), stat('/')])
    const timeout = sleep(5000).then(() => 'starved')
    const done = await Promise.race([work, timeout])
    if (typeof done === 'string') return t.fail('fs.stat starved while the waits were pending')
    t.deepEqual(
      done.map((st) => st.ino),
      ['/', '/tmp', __dirname, '/', '/', '/'].map((p) => statSync(p).ino),
    )
    set.opSync([{ index: 0, delta: 3 }])
    for (let i = 0; i < 1000 && order.length < 3; i++) await sleep(10)
    await sleep(20)
    t.deepEqual(order, [0, 1, 2], 'three taken, by the first three waits, in order')
    t.is(pendingWaits(), 5)
    t.is(set.get(0), 0)
    set.opSync([{ index: 0, delta: 5 }])
    await Promise.all(waits)
    t.deepEqual(order, [0, 1, 2, 3, 4, 5, 6, 7])
    t.is(set.get(0), 0)
  },
)

test('a timed wait rejects with EAGAIN after about timeoutMs and changes nothing', async (t) => {
  const set = privateSet(t, [0])
  const { ms } = await timed(() =>
    t.throwsAsync(set.op([{ index: 0, delta: -1 }], { timeoutMs: 80 }), {
      instanceOf: IpcError,
      code: 'EAGAIN',
    }),
  )
  t.true(ms >= 75, `timed out after ${ms} ms`)
  t.like(
    t.throws(() => set.opSync([{ index: 0, delta: -1 }], { timeoutMs: 20 })),
    { code: 'EAGAIN', syscall: 'semtimedop' },
  )
  await t.throwsAsync(set.op([{ index: 0, delta: -1 }], { timeoutMs: 0 }), { code: 'EAGAIN' })
  t.is(set.get(0), 0)
  t.is(set.waitingForIncrease(0), 0)
  set.opSync([{ index: 0, delta: 1 }])
  await set.op([{ index: 0, delta: -1 }], { timeoutMs: 0 })
  t.is(set.get(0), 0)
})

// Promptly: the op would wait forever otherwise; how soon the abort lands depends on the machine,
// so only a deadline is checked (bench/ measures speed).
test.serial('abort cancels a pending op promptly, and it changed nothing', async (t) => {
  const set = privateSet(t, [0, 5])
  const ac = new AbortController()
  const p = set.op(
    [
      { index: 1, delta: -1 },
      { index: 0, delta: -1 },
    ],
    { signal: ac.signal },
  )
  // Aborted once it sleeps in semop (the kernel counts it as waiting for sem 0 to grow).
  for (const end = Date.now() + PATIENCE_MS; set.waitingForIncrease(0) === 0; await sleep(2)) {
    if (Date.now() > end) t.fail('the op never waited in semop')
  }
  const reason = new Error('stop')
  ac.abort(reason)
  const err = await t.throwsAsync(within(p, 'the aborted op rejects'), { instanceOf: AbortError })
  t.is(err.cause, reason)
  t.deepEqual(set.getAll(), [0, 5])
  t.is(set.waitingForIncrease(0), 0)
  set.opSync([{ index: 0, delta: 1 }])
  t.deepEqual(set.getAll(), [1, 5], 'nobody is left to take the increase')
})

test('an already aborted signal rejects before touching the set', async (t) => {
  const set = privateSet(t, [1])
  await t.throwsAsync(set.op([{ index: 0, delta: -1 }], { signal: AbortSignal.abort() }), { name: 'AbortError' })
  t.is(set.get(0), 1)
})

// Serial: it counts this process's threads blocked in semop, so no other test may wait.
linuxOnly(test.serial, 'waitUntilBlocked reads /proc/<pid>/task/*/wchan')(
  'removing the set wakes blocked waiters with EIDRM',
  async (t) => {
    const set = SemaphoreSet.create({ initial: [0, 1] })
    const sem = Semaphore.open(IPC_PRIVATE, { initial: 0 })
    const mutex = Mutex.open(IPC_PRIVATE)
    const held = mutex.lockSync()
    const waits = [
      set.op([{ index: 0, delta: -1 }]),
      set.op([{ index: 1, delta: 0 }], { timeoutMs: 10_000 }),
      sem.acquire(),
      mutex.lock(),
    ]
    await waitUntilBlocked(process.pid, /semtimedop/, 4)
    set.remove()
    sem.remove()
    mutex.remove()
    for (const w of waits) {
      const e = await t.throwsAsync(w, { instanceOf: IpcError })
      t.is(e.code, 'EIDRM')
      t.is(e.errno, -osConstants.errno.EIDRM)
    }
    t.throws(() => held.unlock(), { code: 'EINVAL' })
    set.close()
    sem.close()
    mutex.close()
  },
)

linuxOnly(test, PROC_SEM)('the kernel answers ERANGE above 32767 and E2BIG above SEMOPM operations', async (t) => {
  const [, , SEMOPM] = semLimits()
  const set = privateSet(t, [32767, 0])
  t.like(
    t.throws(() => set.opSync([{ index: 0, delta: 1 }])),
    { code: 'ERANGE', syscall: 'semop' },
  )
  await t.throwsAsync(set.op([{ index: 0, delta: 1 }]), { code: 'ERANGE' })
  const sem = track(t, Semaphore.open(IPC_PRIVATE, { initial: 32000 }))
  t.throws(() => sem.release(1000), { code: 'ERANGE' })
  t.is(sem.value, 32000)
  const many = Array.from({ length: SEMOPM + 1 }, () => ({ index: 1, delta: 1, undo: false }))
  t.like(
    t.throws(() => set.opSync(many)),
    { code: 'E2BIG', syscall: 'semop' },
  )
  t.deepEqual(set.getAll(), [32767, 0])
})

test('get, set, setAll, lastPid and update', (t) => {
  const set = privateSet(t, [0, 0, 0])
  set.set(1, 32767)
  t.is(set.get(1), 32767)
  set.setAll([5, 6, 7])
  t.deepEqual(set.getAll(), [5, 6, 7])
  set.opSync([{ index: 2, delta: -1 }])
  t.is(set.lastPid(2), process.pid)
  t.deepEqual(set.getAll(), [5, 6, 6])
  set.update({ mode: 0o604 })
  t.is(set.stat().mode, 0o604)
  set.update({ uid: 0, gid: 0 })
  t.is(set.stat().uid, 0)
})

test('Semaphore: acquire, tryAcquire, release, value, waitForZero', async (t) => {
  const key = freshKey('sem')
  const sem = track(t, Semaphore.open(key, { create: true, initial: 2 }))
  t.is(sem.key, key)
  t.is(sem.value, 2)
  await sem.acquire()
  t.true(sem.tryAcquire())
  t.false(sem.tryAcquire())
  await t.throwsAsync(sem.acquire({ timeoutMs: 20 }), { code: 'EAGAIN' })
  t.throws(() => sem.acquireSync({ wait: false }), { code: 'EAGAIN' })
  const zero = sem.waitForZero()
  await zero
  const later = sem.acquire({ count: 2 })
  await sleep(10)
  sem.release(2)
  await later
  t.is(sem.value, 0)
  sem.release()
  const z = sem.waitForZero({ timeoutMs: 5000 })
  await sleep(10)
  sem.acquireSync()
  await z
  t.notThrows(() => sem.waitForZeroSync({ wait: false }))
  sem.release()
  t.throws(() => sem.waitForZeroSync({ timeoutMs: 10 }), { code: 'EAGAIN' })
  const again = Semaphore.open(key, { initial: 30 })
  t.is(again.value, 1, 'initial applies only to the creator')
  again.close()
})

test('Mutex: lock guard, tryLock, using, withLock unlocks on throw, timed-out lock is EAGAIN', async (t) => {
  const mutex = track(t, Mutex.open(freshKey('sem'), { create: true }))
  t.false(mutex.locked)
  const guard = await mutex.lock()
  t.true(guard instanceof MutexGuard)
  t.true(guard.held)
  t.true(mutex.locked)
  t.is(mutex.tryLock(), null)
  await t.throwsAsync(mutex.lock({ timeoutMs: 20 }), { instanceOf: IpcError, code: 'EAGAIN' })
  t.throws(() => mutex.lockSync({ wait: false }), { code: 'EAGAIN' })
  guard.unlock()
  guard.unlock()
  t.false(guard.held)
  t.false(mutex.locked, 'a second unlock does not unlock twice')
  t.is(SemaphoreSet.fromId(mutex.id).get(0), 1)
  {
    using held = mutex.tryLock()
    t.true(held instanceof MutexGuard && held.held)
    t.true(mutex.locked)
  }
  t.false(mutex.locked)
  const order: string[] = []
  const first = mutex.withLock(async () => {
    order.push('a')
    await sleep(20)
    order.push('b')
    return 42
  })
  const second = mutex.withLock(() => order.push('c'))
  t.is(await first, 42)
  await second
  t.deepEqual(order, ['a', 'b', 'c'])
  await t.throwsAsync(
    mutex.withLock(() => {
      throw new Error('boom')
    }),
    { message: 'boom' },
  )
  t.false(mutex.locked)
  const sync = mutex.lockSync({ timeoutMs: 100 })
  t.true(mutex.locked)
  sync[Symbol.dispose]()
  t.false(mutex.locked)
})

test('SEM_UNDO is per process: a lock or acquire in the same process nets to zero', (t) => {
  const sem = track(t, Semaphore.open(IPC_PRIVATE, { initial: 1 }))
  sem.acquireSync()
  sem.release()
  const raw = track(t, SemaphoreSet.create({ initial: [0] }))
  raw.opSync([{ index: 0, delta: 2, undo: false }])
  raw.opSync([{ index: 0, delta: -1 }])
  t.is(raw.get(0), 1)
  t.is(sem.value, 1)
})

test('close is idempotent, later calls throw ERR_INVALID_STATE, and close cancels pending waits', async (t) => {
  const set = privateSet(t, [0])
  const p = set.op([{ index: 0, delta: -1 }])
  await sleep(10)
  set.close()
  set.close()
  t.true(set.closed)
  const err = await t.throwsAsync(p, { instanceOf: AbortError })
  t.is((err.cause as { code?: string }).code, 'ERR_INVALID_STATE')
  t.throws(() => set.get(0), { code: 'ERR_INVALID_STATE' })
  t.throws(() => set.getAll(), { code: 'ERR_INVALID_STATE' })
  t.throws(() => set.opSync([{ index: 0, delta: 1 }]), { code: 'ERR_INVALID_STATE' })
  t.throws(() => set.stat(), { code: 'ERR_INVALID_STATE' })
  t.throws(() => set.remove(), { code: 'ERR_INVALID_STATE' })
  await t.throwsAsync(set.op([{ index: 0, delta: 1 }]), { code: 'ERR_INVALID_STATE' })
  const other = SemaphoreSet.fromId(set.id)
  other.opSync([{ index: 0, delta: 1 }])
  t.is(other.get(0), 1, 'the cancelled op took nothing')
  other.close()

  const mutex = track(t, Mutex.open(IPC_PRIVATE))
  const guard = mutex.lockSync()
  const waiting = mutex.lock()
  await sleep(10)
  mutex.close()
  await t.throwsAsync(waiting, { instanceOf: AbortError })
  t.throws(() => mutex.tryLock(), { code: 'ERR_INVALID_STATE' })
  await t.throwsAsync(mutex.lock(), { code: 'ERR_INVALID_STATE' })
  guard.unlock()
  t.is(SemaphoreSet.fromId(mutex.id).get(0), 1, 'a guard still unlocks after close')
  const sem = track(t, Semaphore.open(IPC_PRIVATE))
  sem.close()
  t.throws(() => sem.value, { code: 'ERR_INVALID_STATE' })
  t.throws(() => sem.release(), { code: 'ERR_INVALID_STATE' })
})

test('Symbol.dispose closes', (t) => {
  let set: SemaphoreSet | undefined
  let mutex: Mutex | undefined
  let sem: Semaphore | undefined
  {
    using s = privateSet(t, [1])
    using m = track(t, Mutex.open(IPC_PRIVATE))
    using c = track(t, Semaphore.open(IPC_PRIVATE))
    set = s
    mutex = m
    sem = c
    t.false(s.closed || m.closed || c.closed)
  }
  t.true(set!.closed && mutex!.closed && sem!.closed)
})

test.serial('the reactor keeps no waits after everything settles', async (t) => {
  const set = privateSet(t, [0])
  const ps = [1, 2, 3].map(() => set.op([{ index: 0, delta: -1 }]))
  await sleep(10)
  set.opSync([{ index: 0, delta: 3 }])
  await Promise.all(ps)
  t.is(pendingWaits(), 0)
})

test('bad arguments throw TypeError/RangeError before any call, and async methods reject', async (t) => {
  const set = privateSet(t, [1, 1])
  const sem = track(t, Semaphore.open(IPC_PRIVATE, { initial: 1 }))
  const mutex = track(t, Mutex.open(IPC_PRIVATE))
  const type = { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' }
  const range = { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' }
  const value = { instanceOf: TypeError, code: 'ERR_INVALID_ARG_VALUE' }
  t.throws(() => SemaphoreSet.open('1' as never), type)
  t.throws(() => SemaphoreSet.open(2 ** 32), range)
  t.throws(() => SemaphoreSet.open(1, null as never), type)
  t.throws(() => SemaphoreSet.open(1, { count: -1 }), range)
  t.throws(() => SemaphoreSet.open(1, { count: 1.5 }), range)
  t.throws(() => SemaphoreSet.open(1, { create: 'yes' as never }), type)
  t.throws(() => SemaphoreSet.open(1, { mode: 0o1000 }), range)
  t.throws(() => SemaphoreSet.open(1, { initial: 3 as never }), type)
  t.throws(() => SemaphoreSet.open(1, { initial: [32768] }), range)
  t.throws(() => SemaphoreSet.open(1, { initial: [-1] }), range)
  t.throws(() => SemaphoreSet.open(1, { initial: ['1'] as never }), type)
  t.throws(() => SemaphoreSet.open(1, { count: 2, initial: [1] }), value)
  t.throws(() => SemaphoreSet.open(1, { initTimeoutMs: -1 }), range)
  t.throws(() => SemaphoreSet.fromId(-1), range)
  t.throws(() => set.opSync({} as never), type)
  t.throws(() => set.opSync([]), value)
  t.throws(() => set.opSync([null] as never), type)
  t.throws(() => set.opSync([{ index: 2, delta: 1 }]), range)
  t.throws(() => set.opSync([{ index: -1, delta: 1 }]), range)
  t.throws(() => set.opSync([{ index: 0 }] as never), type)
  t.throws(() => set.opSync([{ index: 0, delta: 32768 }]), range)
  t.throws(() => set.opSync([{ index: 0, delta: -32768 }]), range)
  t.throws(() => set.opSync([{ index: 0, delta: 0.5 }]), range)
  t.throws(() => set.opSync([{ index: 0, delta: 1, undo: 1 as never }]), type)
  t.throws(() => set.opSync([{ index: 0, delta: 1, wait: 'no' as never }]), type)
  t.throws(() => set.opSync([{ index: 0, delta: 1 }], { timeoutMs: -1 }), range)
  t.throws(() => set.opSync([{ index: 0, delta: 1 }], { wait: 0 as never }), type)
  t.throws(() => set.tryOp([{ index: 5, delta: 1 }]), range)
  t.throws(() => set.get(2), range)
  t.throws(() => set.get('0' as never), type)
  t.throws(() => set.set(0, 32768), range)
  t.throws(() => set.set(0, -1), range)
  t.throws(() => set.setAll([1]), value)
  t.throws(() => set.setAll([1, 40000]), range)
  t.throws(() => set.setAll('12' as never), type)
  t.throws(() => set.waitingForIncrease(9), range)
  t.throws(() => set.waitingForZero(9), range)
  t.throws(() => set.lastPid(9), range)
  t.throws(() => set.update({ mode: 0o7777 }), range)
  t.throws(() => set.update(null as never), type)
  t.throws(() => Semaphore.open(1, { initial: 40000 }), range)
  t.throws(() => Semaphore.open(1, { undo: 'no' as never }), type)
  t.throws(() => sem.release(0), range)
  t.throws(() => sem.release(40000), range)
  t.throws(() => sem.tryAcquire(-1), range)
  t.throws(() => sem.acquireSync({ count: 0 }), range)
  t.throws(() => Mutex.open(1, { create: 1 as never }), type)
  const rejections = [
    set.op([{ index: 9, delta: 1 }]),
    set.op([{ index: 0, delta: 1 }], { timeoutMs: Number.NaN }),
    set.op([{ index: 0, delta: 1 }], { signal: 'nope' as never }),
    sem.acquire({ count: 0 }),
    sem.waitForZero({ timeoutMs: -5 }),
    mutex.lock({ timeoutMs: 'soon' as never }),
    mutex.withLock('fn' as never),
  ]
  const codes = await Promise.all(
    rejections.map((p) =>
      p.then(
        () => 'resolved',
        (e: { code: string }) => e.code,
      ),
    ),
  )
  t.deepEqual(codes, [
    'ERR_OUT_OF_RANGE',
    'ERR_OUT_OF_RANGE',
    'ERR_INVALID_ARG_TYPE',
    'ERR_OUT_OF_RANGE',
    'ERR_OUT_OF_RANGE',
    'ERR_INVALID_ARG_TYPE',
    'ERR_INVALID_ARG_TYPE',
  ])
  t.deepEqual(set.getAll(), [1, 1])
  t.is(sem.value, 1)
  t.false(mutex.locked)
})
