/**
 * The fast path of message queues (ts/queue.ts): sends and receives that need no wait go
 * through one registered pool per thread, and received payloads are views of that pool.
 * These specs pin what users rely on around it: payloads that never change after they were
 * handed out, a pool that survives being detached, and each thread's own pool.
 */
import test, { type ExecutionContext } from 'ava'
import { Worker } from 'node:worker_threads'

import { IpcError, MessageQueue } from '../ts/index'
import { detachAttempt, removeAtEnd, runNode, SOURCE_ENTRY } from './helpers'

const privateQueue = (t: ExecutionContext) => removeAtEnd(t, MessageQueue.create(), MessageQueue.fromId)

/** A payload of `size` bytes that tells message `i` apart. */
const payload = (i: number, size: number) => Buffer.alloc(size, `${i}:`)

test('payloads handed out stay intact while later messages fill and replace pools', async (t) => {
  const q = privateQueue(t)
  const kept: Array<{ i: number; data: Buffer }> = []
  let sent = 0
  let taken = 0
  // ~450 KiB of payloads in all: several 64 KiB pools, the three receive paths in turn. Batches
  // of 40 (at most 12 KiB) stay below the default queue capacity of 16 KiB.
  while (taken < 3000) {
    for (let k = 0; k < 40; k++, sent++) q.sendSync(payload(sent, 1 + ((sent * 37) % 300)), { type: 1 + (sent % 3) })
    for (let k = 0; k < 40; k++, taken++) {
      const msg = taken % 3 === 0 ? q.receiveSync() : taken % 3 === 1 ? await q.receive() : null
      if (msg !== null) {
        t.is(msg.type, 1 + (taken % 3))
        kept.push({ i: taken, data: msg.data })
      } else {
        for await (const m of q.messages()) {
          kept.push({ i: taken, data: m.data })
          break
        }
      }
    }
  }
  t.is(kept.length, 3000)
  for (const { i, data } of kept) t.deepEqual(data, payload(i, 1 + ((i * 37) % 300)), `message ${i}`)
})

test("a received payload's memory is its own: transferring it moves that payload only", (t) => {
  const q = privateQueue(t)
  q.sendSync('first')
  q.sendSync('second')
  const first = q.receiveSync()
  const second = q.receiveSync()
  const memory = first.data.buffer as ArrayBuffer
  t.is(memory.byteLength, first.data.length, 'the memory holds that payload and nothing else')
  const moved = structuredClone(memory, { transfer: [memory] })
  t.deepEqual(Buffer.from(moved), Buffer.from('first'))
  t.is(first.data.length, 0, 'the payload moved')
  t.deepEqual(second.data, Buffer.from('second'))
  for (let i = 0; i < 50; i++) q.sendSync(payload(i, 64), { type: 7 })
  for (let i = 0; i < 50; i++) t.deepEqual(q.receiveSync(), { type: 7, data: payload(i, 64) })
  t.deepEqual(second.data, Buffer.from('second'))
})

test('a pool detached by ArrayBuffer.prototype.transfer is replaced, not written to (or, Node >= 24, cannot be detached)', async (t) => {
  // In a child process: detaching the pool empties every payload of this thread that shares it.
  // Node 20 has no transfer(); Node 22 detaches the pool; Node 24 and later refuse to detach an
  // untransferable buffer. Whatever happened, later messages must arrive intact.
  const r = await runNode(`
    const q = ipckit.MessageQueue.create()
    try {
      q.sendSync('first')
      const first = q.receiveSync()
      ${detachAttempt('first', 'first')}
      for (let i = 0; i < 300; i++) q.sendSync(Buffer.alloc(40, i), { type: 1 + i })
      for (let i = 0; i < 300; i++) {
        const m = q.receiveSync()
        if (m.type !== 1 + i || !m.data.equals(Buffer.alloc(40, i))) throw new Error('bad message ' + i)
      }
      console.log(outcome)
    } finally {
      q.remove()
    }
  `)
  t.regex(r.stdout, /^(detached|refused|no transfer\(\))$/m)
})

test('types beyond 32 bits and negative selectors go through the fast path intact', async (t) => {
  const q = privateQueue(t)
  const big = 2 ** 40 + 5
  q.sendSync('big', { type: big })
  q.sendSync('small', { type: 3 })
  await q.send('max', { type: Number.MAX_SAFE_INTEGER })
  t.is(q.receiveSync({ type: -(2 ** 41) }).type, 3)
  t.deepEqual(await q.receive({ type: big }), { type: big, data: Buffer.from('big') })
  const last = q.receiveSync()
  t.is(last.type, Number.MAX_SAFE_INTEGER)
  t.is(last.data.toString(), 'max')
})

test('a maxSize beyond a pool receives into a buffer of its own', async (t) => {
  const q = privateQueue(t)
  q.sendSync(payload(1, 100))
  q.sendSync(payload(2, 100))
  t.deepEqual(q.receiveSync({ maxSize: 1 << 20 }).data, payload(1, 100))
  t.deepEqual((await q.receive({ maxSize: 1 << 20 })).data, payload(2, 100))
})

test('fast-path failures are IpcErrors with code and syscall', (t) => {
  const q = privateQueue(t)
  const empty = t.throws(() => q.receiveSync({ wait: false }), { instanceOf: IpcError })
  t.is(empty?.code, 'ENOMSG')
  t.is(empty?.syscall, 'msgrcv')
  q.sendSync(payload(0, 100))
  const small = t.throws(() => q.receiveSync({ maxSize: 10 }), { instanceOf: IpcError })
  t.is(small?.code, 'E2BIG')
  t.is(q.stat().messages, 1)
  q.remove()
  const gone = t.throws(() => q.sendSync('x'), { instanceOf: IpcError })
  t.is(gone?.syscall, 'msgsnd')
  t.true(gone?.code === 'EINVAL' || gone?.code === 'EIDRM')
})

test('worker threads each use their own pool, concurrently with the main thread', async (t) => {
  const q = privateQueue(t)
  const n = 200 // at most 12 KiB: below the default queue capacity
  const size = (i: number) => 1 + (i % 60)
  for (let i = 0; i < n; i++) q.sendSync(payload(i, size(i)), { type: 1 + (i % 2) })
  const code = `
    const { parentPort, workerData } = require('node:worker_threads')
    require(workerData.tsx)
    const { MessageQueue } = require(workerData.entry)
    const q = MessageQueue.fromId(workerData.id)
    const got = []
    for (let k = 0; k < workerData.n / 2; k++) {
      const m = q.receiveSync({ type: 2 })
      got.push(m.data)
    }
    parentPort.postMessage(got.map((d) => d.toString('latin1')))
  `
  const worker = new Worker(code, {
    eval: true,
    workerData: { entry: SOURCE_ENTRY, tsx: require.resolve('tsx/cjs'), id: q.id, n },
  })
  const mine: Buffer[] = []
  for (let k = 0; k < n / 2; k++) mine.push(q.receiveSync({ type: 1 }).data)
  const theirs: string[] = await new Promise((resolve, reject) => {
    worker.once('message', resolve)
    worker.once('error', reject)
  })
  await worker.terminate()
  t.is(theirs.length, n / 2)
  mine.forEach((m, k) => t.deepEqual(m, payload(2 * k, size(2 * k))))
  theirs.forEach((s, k) => t.is(s, payload(2 * k + 1, size(2 * k + 1)).toString('latin1')))
})
