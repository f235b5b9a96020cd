/**
 * The fast path of single semaphore operations (ts/semaphore.ts): `Semaphore` acquire/release
 * and any one-operation `SemaphoreSet` op without a timeout go through one small buffer
 * registered per thread and an argument-less native call. These specs pin what users rely on
 * around it: kernel errors with their code and syscall, errors that do not stick to the next
 * call, closed handles, SEM_UNDO kept, and each thread's own buffer.
 */
import test, { type ExecutionContext } from 'ava'
import { Worker } from 'node:worker_threads'

import { IpcError, SEMAPHORE_VALUE_MAX, Semaphore, SemaphoreSet } from '../ts/index'
import { SOURCE_ENTRY, freshKey, runNode } from './helpers'

function privateSemaphore(t: ExecutionContext, initial: number, undo?: boolean): Semaphore {
  const sem = Semaphore.open(0, { create: true, initial, undo })
  t.teardown(() => {
    try {
      SemaphoreSet.fromId(sem.id).remove()
    } catch {
      // removed by the test
    }
    sem.close()
  })
  return sem
}

test('kernel errors of the fast path carry code, errno and syscall, and do not stick', async (t) => {
  const sem = privateSemaphore(t, SEMAPHORE_VALUE_MAX)
  const range = t.throws(() => sem.release(), { instanceOf: IpcError })
  t.is(range?.code, 'ERANGE')
  t.true((range?.errno ?? 0) < 0)
  t.is(range?.syscall, 'semop')
  t.is(sem.value, SEMAPHORE_VALUE_MAX)
  // The next call on the fast path is not answered with the kept error.
  sem.acquireSync()
  t.is(sem.value, SEMAPHORE_VALUE_MAX - 1)
  sem.release()
  t.is(sem.value, SEMAPHORE_VALUE_MAX)

  const set = SemaphoreSet.create({ count: 2, initial: [0, 1] })
  t.teardown(() => set.close())
  const again = t.throws(() => set.opSync([{ index: 0, delta: -1, wait: false }]), { instanceOf: IpcError })
  t.is(again?.code, 'EAGAIN')
  t.is(again?.syscall, 'semop')
  t.false(set.tryOp([{ index: 0, delta: -1 }]))
  t.true(set.tryOp([{ index: 1, delta: -1 }]))
  t.deepEqual(set.getAll(), [0, 0])
  await set.op([{ index: 1, delta: 2 }])
  t.deepEqual(set.getAll(), [0, 2])

  set.remove()
  const gone = t.throws(() => set.opSync([{ index: 1, delta: -1 }]), { instanceOf: IpcError })
  t.is(gone?.syscall, 'semop')
  t.true(gone?.code === 'EINVAL' || gone?.code === 'EIDRM')
  await t.throwsAsync(set.op([{ index: 1, delta: 1 }]), { instanceOf: IpcError, code: gone?.code })
})

test('without options, acquire takes at once when it can and waits when it cannot', async (t) => {
  const sem = privateSemaphore(t, 1)
  await sem.acquire()
  t.is(sem.value, 0)
  t.false(sem.tryAcquire())
  const waiting = sem.acquire()
  let done = false
  void waiting.then(() => (done = true))
  await new Promise((r) => setTimeout(r, 20))
  t.false(done)
  sem.release()
  await waiting
  t.is(sem.value, 0)
})

test('closed handles throw ERR_INVALID_STATE on the fast path, and acquire rejects', async (t) => {
  const sem = privateSemaphore(t, 1)
  const other = Semaphore.open(0, { create: true, initial: 1 })
  t.teardown(() => SemaphoreSet.fromId(other.id).remove())
  other.close()
  t.throws(() => other.acquireSync(), { code: 'ERR_INVALID_STATE' })
  t.throws(() => other.release(), { code: 'ERR_INVALID_STATE' })
  t.throws(() => other.tryAcquire(), { code: 'ERR_INVALID_STATE' })
  const pending = other.acquire()
  await t.throwsAsync(pending, { code: 'ERR_INVALID_STATE' })
  t.is(SemaphoreSet.fromId(other.id).get(0), 1)
  t.is(sem.value, 1)
})

test('the fast path keeps SEM_UNDO: what an exited process acquired comes back, unless undo: false', async (t) => {
  const key = freshKey('sem')
  const sem = Semaphore.open(key, { create: true, exclusive: true, initial: 4 })
  t.teardown(() => {
    sem.remove()
    sem.close()
  })
  await runNode(
    `const [key] = process.argv.slice(2).map(Number)
     const undo = ipckit.Semaphore.open(key)
     undo.acquireSync()
     undo.acquireSync()
     const plain = ipckit.Semaphore.open(key, { undo: false })
     plain.acquireSync()
     if (!plain.tryAcquire()) process.exit(3)
     plain.release()`,
    [String(key)],
  )
  // The two taken with undo came back; the one taken and kept without undo did not.
  t.is(sem.value, 3)
})

test('worker threads each use their own fast-path buffer, concurrently with the main thread', async (t) => {
  const key = freshKey('sem')
  const sem = Semaphore.open(key, { create: true, exclusive: true, initial: 0, undo: false })
  t.teardown(() => {
    sem.remove()
    sem.close()
  })
  const n = 2000
  const code = `
    const { parentPort, workerData } = require('node:worker_threads')
    require(workerData.tsx)
    const { Semaphore } = require(workerData.entry)
    const sem = Semaphore.open(workerData.key, { undo: false })
    for (let i = 0; i < workerData.n; i++) sem.release()
    parentPort.postMessage('done')
  `
  const worker = new Worker(code, {
    eval: true,
    workerData: { entry: SOURCE_ENTRY, tsx: require.resolve('tsx/cjs'), key, n },
  })
  const finished = new Promise((resolve, reject) => {
    worker.once('message', resolve)
    worker.once('error', reject)
  })
  // The main thread takes what the worker gives, on its own buffer, at the same time.
  for (let i = 0; i < n; i++) sem.acquireSync()
  await finished
  await worker.terminate()
  t.is(sem.value, 0)
  t.false(sem.tryAcquire())
})
