/**
 * The fast path of message sockets (ts/unix-socket.ts): receives take a message in one
 * `recvmsg` straight into one registered pool per thread (no `FIONREAD` first), payloads are
 * views of that pool, a queued message resolves `receive()` and the iterator with no wait, and
 * small sends go through the same pool. These specs pin what users rely on around it: no
 * message is ever cut or lost whatever its size, payloads never change after they were handed
 * out, a pool survives being detached, each thread has its own pool, and failures are
 * `IpcError`s.
 */
import anyTest, { type ExecutionContext } from 'ava'
import { closeSync, fstatSync, openSync } from 'node:fs'
import { join } from 'node:path'
import { Worker } from 'node:worker_threads'

import { IpcError, UnixDatagramSocket, UnixSeqpacketSocket, socketpair } from '../ts/index'
import { native } from '../ts/native'
import { SOURCE_ENTRY, detachAttempt, linuxOnly, runNode, tempDir } from './helpers'

// Every test here runs over seqpacket pairs too (and abstract addresses), which macOS lacks; its
// datagram paths are covered there by unix-socket.spec.ts.
const test = linuxOnly(anyTest, 'seqpacket sockets and abstract addresses are Linux-only')

type MessageKind = 'seqpacket' | 'dgram'
type Pair = [UnixSeqpacketSocket, UnixSeqpacketSocket] | [UnixDatagramSocket, UnixDatagramSocket]

function pair(t: ExecutionContext, kind: MessageKind): Pair {
  const ends = socketpair(kind as 'seqpacket', { acceptFds: true }) as Pair
  t.teardown(() => ends.forEach((s) => s.close()))
  return ends
}

/** A payload of `size` bytes that tells message `i` apart (and each byte's place in it). */
function payload(i: number, size: number): Buffer {
  const b = Buffer.allocUnsafe(size)
  for (let k = 0; k < size; k++) b[k] = (i * 31 + k * 7) & 0xff
  return b
}

/** Sizes around the pool's room for one receive (16 KiB), past the core's scratch (64 KiB). */
const size = (i: number) =>
  i % 25 === 24 ? 70_000 + (i % 3) * 1000 : i % 10 === 9 ? 15_000 + (i % 7) * 1500 : 1 + ((i * 37) % 1500)

/** One message by each receive path in turn: `receiveSync`, `receive`, one step of the iterator. */
async function takeOne(sock: UnixSeqpacketSocket | UnixDatagramSocket, i: number) {
  if (i % 3 === 0) return sock.receiveSync()
  if (i % 3 === 1) return sock.receive()
  for await (const m of sock.messages()) return m
  throw new Error('the iteration ended')
}

for (const kind of ['seqpacket', 'dgram'] as const) {
  test(`${kind}: payloads handed out stay intact, whatever their size, while later messages fill and replace pools`, async (t) => {
    const [a, b] = pair(t, kind)
    const kept: Array<{ i: number; data: Buffer }> = []
    let sent = 0
    // ~1.7 MiB in all: many 128 KiB pools, messages that do not fit the room left and come
    // whole all the same. A batch (at most ~150 KiB) fits in the socket's buffer.
    while (sent < 500) {
      for (let k = 0; k < 20; k++, sent++) a.sendSync(payload(sent, size(sent)))
      for (let i = sent - 20; i < sent; i++) {
        const msg = await takeOne(b, i)
        t.is(msg!.data.length, size(i), `message ${i} is whole`)
        kept.push({ i, data: msg!.data })
      }
    }
    t.throws(() => b.receiveSync({ wait: false }), { code: 'EAGAIN' })
    for (const { i, data } of kept) t.true(data.equals(payload(i, size(i))), `message ${i}`)
  })

  test(`${kind}: a message as large as the socket allows comes whole by each path, in order`, async (t) => {
    const [a, b] = pair(t, kind)
    const big = payload(7, 200_000)
    for (let i = 0; i < 3; i++) {
      a.sendSync(`before ${i}`)
      a.sendSync(big)
      a.sendSync(`after ${i}`)
      t.is((await takeOne(b, i))!.data.toString(), `before ${i}`)
      t.true((await takeOne(b, i))!.data.equals(big))
      t.is((await takeOne(b, i))!.data.toString(), `after ${i}`)
    }
    if (kind === 'dgram') {
      a.sendSync('')
      t.is(b.receiveSync()!.data.length, 0)
    } else {
      // An empty seqpacket message could be taken for the end of the connection.
      t.throws(() => a.sendSync(''), { code: 'ERR_INVALID_ARG_VALUE' })
    }
  })
}

test('a queued backlog is iterated without waiting on the poller, and break leaves the rest queued', async (t) => {
  const [a, b] = pair(t, 'seqpacket')
  for (let i = 0; i < 100; i++) a.sendSync(payload(i, 64))
  let i = 0
  let watches = 0
  for await (const { data } of b.messages()) {
    watches += native.pollCount()
    t.true(data.equals(payload(i, 64)))
    if (++i === 60) break
  }
  t.is(watches, 0, 'no readiness watch while messages were queued')
  for (; i < 100; i++) t.true(b.receiveSync()!.data.equals(payload(i, 64)), `message ${i} still queued`)
  t.throws(() => b.receiveSync({ wait: false }), { code: 'EAGAIN' })
})

test('messages with descriptors between plain ones: order kept, payloads intact, fds owned', (t) => {
  const [a, b] = pair(t, 'seqpacket')
  const file = openSync(__filename, 'r')
  t.teardown(() => closeSync(file))
  a.sendSync('one')
  a.sendSync('two', { fds: [file] })
  a.sendSync('three')
  const one = b.receiveSync()!
  const two = b.receiveSync()!
  const three = b.receiveSync()!
  t.deepEqual([one.data.toString(), two.data.toString(), three.data.toString()], ['one', 'two', 'three'])
  t.deepEqual([one.fds, three.fds], [[], []])
  t.is(two.fds.length, 1)
  t.is(fstatSync(two.fds[0]!).ino, fstatSync(file).ino)
  closeSync(two.fds[0]!)
})

test('sender addresses as long as the kernel allows go both ways through the fast path', async (t) => {
  const dir = tempDir()
  t.teardown(() => dir.remove())
  // sun_path holds 107 bytes and a NUL; an abstract name 107 bytes after its leading NUL.
  const longPath = join(dir.path, 'p'.repeat(107 - dir.path.length - 1))
  const abstractName = `ipckit-${process.pid}-`.padEnd(107, 'a')
  const server = UnixDatagramSocket.bind({ abstract: `${abstractName.slice(0, 100)}-srv` })
  const byPath = UnixDatagramSocket.bind(longPath)
  const byName = UnixDatagramSocket.bind({ abstract: abstractName })
  t.teardown(() => [server, byPath, byName].forEach((s) => s.close()))
  byPath.sendSync('from a path', { to: { abstract: `${abstractName.slice(0, 100)}-srv` } })
  await byName.send('from a name', { to: { abstract: `${abstractName.slice(0, 100)}-srv` } })
  const first = server.receiveSync()
  t.is(first.from, longPath)
  t.deepEqual((await server.receive()).from, { abstract: abstractName })
  server.sendSync('back', { to: first.from! })
  t.like(byPath.receiveSync(), { data: Buffer.from('back'), from: { abstract: `${abstractName.slice(0, 100)}-srv` } })
})

test("a received payload's memory is its own: transferring it moves that payload only", (t) => {
  const [a, b] = pair(t, 'dgram')
  a.sendSync('first')
  a.sendSync('second')
  const first = b.receiveSync()!
  const second = b.receiveSync()!
  const memory = first.data.buffer as ArrayBuffer
  t.is(memory.byteLength, first.data.length, 'the memory holds that payload and nothing else')
  const moved = structuredClone(memory, { transfer: [memory] })
  t.deepEqual(Buffer.from(moved), Buffer.from('first'))
  t.is(first.data.length, 0, 'the payload moved')
  for (let i = 0; i < 50; i++) a.sendSync(payload(i, 64))
  for (let i = 0; i < 50; i++) t.true(b.receiveSync()!.data.equals(payload(i, 64)))
  t.is(second.data.toString(), 'second')
})

test('a pool detached by ArrayBuffer.prototype.transfer is replaced, not written to (or, Node >= 24, cannot be detached)', async (t) => {
  const r = await runNode(`
    const [a, b] = ipckit.socketpair('seqpacket')
    a.sendSync('first')
    const first = b.receiveSync()
    ${detachAttempt('first', 'first')}
    // 200 small messages fit in the socket's buffer (each costs ~1 KiB of it).
    for (let i = 0; i < 200; i++) a.sendSync(Buffer.alloc(40, i))
    for (let i = 0; i < 200; i++) {
      if (!b.receiveSync().data.equals(Buffer.alloc(40, i))) throw new Error('bad message ' + i)
    }
    console.log(outcome)
  `)
  t.regex(r.stdout, /^(detached|refused|no transfer\(\))$/m)
})

test('fast-path failures are IpcErrors with code and syscall', (t) => {
  const [a, b] = pair(t, 'seqpacket')
  t.like(
    t.throws(() => b.receiveSync({ wait: false }), { instanceOf: IpcError }),
    { code: 'EAGAIN', syscall: 'recvmsg' },
  )
  let sent = 0
  const full = t.throws(
    () => {
      for (;;) a.sendSync(payload(sent++, 1000), { wait: false })
    },
    { instanceOf: IpcError },
  )
  t.like(full, { code: 'EAGAIN', syscall: 'sendmsg' })
  const [c, d] = pair(t, 'seqpacket')
  d.close()
  t.like(
    t.throws(() => c.sendSync('x'), { instanceOf: IpcError }),
    { code: 'EPIPE', syscall: 'sendmsg' },
  )
  const dgram = UnixDatagramSocket.create()
  t.teardown(() => dgram.close())
  t.like(
    t.throws(() => dgram.sendSync('x', { to: `/nonexistent-${process.pid}/x.sock` }), { instanceOf: IpcError }),
    {
      code: 'ENOENT',
      syscall: 'sendmsg',
    },
  )
})

test('worker threads each use their own pool, concurrently with the main thread', async (t) => {
  const n = 400
  const code = `
    const { parentPort, workerData } = require('node:worker_threads')
    require(workerData.tsx)
    const { socketpair } = require(workerData.entry)
    const [a, b] = socketpair('dgram')
    const got = []
    for (let i = 0; i < workerData.n; i++) {
      a.sendSync(Buffer.alloc(1 + (i % 500), 'w' + i))
      got.push(b.receiveSync().data)
    }
    a.close()
    b.close()
    parentPort.postMessage(got.every((d, i) => d.equals(Buffer.alloc(1 + (i % 500), 'w' + i))))
  `
  const worker = new Worker(code, {
    eval: true,
    workerData: { entry: SOURCE_ENTRY, tsx: require.resolve('tsx/cjs'), n },
  })
  const done: Promise<boolean> = new Promise((resolve, reject) => {
    worker.once('message', resolve)
    worker.once('error', reject)
  })
  const [a, b] = pair(t, 'seqpacket')
  const mine: Buffer[] = []
  for (let i = 0; i < n; i++) {
    a.sendSync(Buffer.alloc(1 + (i % 500), `m${i}`))
    mine.push((await b.receive())!.data)
  }
  t.true(await done, 'every payload the worker received is intact')
  await worker.terminate()
  mine.forEach((d, i) => t.true(d.equals(Buffer.alloc(1 + (i % 500), `m${i}`)), `message ${i}`))
})
