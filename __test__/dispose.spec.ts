/**
 * `await using`: every object whose `close()` ends waits that settle later (a wait on an addon
 * thread confirms its cancellation asynchronously) has `Symbol.asyncDispose`, which closes and
 * resolves once those waits have settled. So when an `await using` block is left, the object is
 * closed and every promise it had pending has already rejected (or, for a signal watch, ended).
 * Without it, `await using` falls back to `Symbol.dispose`, and the block is left while those
 * waits are still pending.
 */

import test from 'ava'
import { once } from 'node:events'

import {
  Mutex,
  MessageQueue,
  Semaphore,
  SemaphoreSet,
  SharedMemory,
  UnixSeqpacketServer,
  UnixSeqpacketSocket,
  pipe,
  socketpair,
  watchSignals,
} from '../ts/index'
import { pendingWaits } from '../ts/reactor'
import { freshKey, linuxOnly, removeAtEnd, sleep, tempDir } from './helpers'
import { existsSync } from 'node:fs'

/** The state of `p`, kept up to date from now on: read it after the block. */
function watch(p: Promise<unknown>): { state: string } {
  const s = { state: 'pending' }
  p.then(
    (v) => (s.state = `fulfilled ${JSON.stringify(v)}`),
    (e: Error) => (s.state = `rejected ${e.name}`),
  )
  return s
}

/** Waits until `n` waits are pending in this process (they start on a later turn for some objects). */
async function pending(n: number): Promise<void> {
  for (let i = 0; i < 500 && pendingWaits() < n; i++) await sleep(2)
  if (pendingWaits() < n) throw new Error(`${pendingWaits()} waits pending, expected ${n}`)
}

test.serial('MessageQueue: await using ends a pending receive before the block is left', async (t) => {
  const q = removeAtEnd(t, MessageQueue.create(), MessageQueue.fromId)
  let receive
  let handle: MessageQueue
  {
    await using own = MessageQueue.fromId(q.id)
    handle = own
    receive = watch(own.receive())
    await pending(1)
  }
  t.is(receive.state, 'rejected AbortError')
  t.is(pendingWaits(), 0)
  t.throws(() => handle.sendSync('x'), { code: 'ERR_INVALID_STATE' })
  q.sendSync('still here') // the queue itself was not removed
  t.is(q.receiveSync().data.toString(), 'still here')
})

test.serial('SemaphoreSet, Semaphore, Mutex: await using ends pending op, acquire and lock', async (t) => {
  const set = removeAtEnd(t, SemaphoreSet.create({ initial: [0] }), SemaphoreSet.fromId)
  let op
  {
    await using own = SemaphoreSet.fromId(set.id)
    op = watch(own.op([{ index: 0, delta: -1 }]))
    await pending(1)
  }
  t.is(op.state, 'rejected AbortError')
  t.is(pendingWaits(), 0)

  const key = freshKey('sem')
  const sem = removeAtEnd(t, Semaphore.open(key, { create: true, initial: 0 }), SemaphoreSet.fromId)
  let acquire
  {
    await using own = Semaphore.open(key)
    acquire = watch(own.acquire())
    await pending(1)
  }
  t.is(acquire.state, 'rejected AbortError')
  t.is(pendingWaits(), 0)
  t.is(sem.value, 0, 'nothing was taken')

  const mkey = freshKey('sem')
  const mutex = removeAtEnd(t, Mutex.open(mkey, { create: true }), SemaphoreSet.fromId)
  const held = await mutex.lock()
  let lock
  {
    await using other = Mutex.open(mkey)
    lock = watch(other.lock())
    await pending(1)
  }
  t.is(lock.state, 'rejected AbortError')
  t.is(pendingWaits(), 0)
  t.true(held.held && mutex.locked, 'the lock is still held by its guard')
  held.unlock()
})

linuxOnly(test.serial, 'shm.wait is a futex wait (ENOSYS on macOS)')(
  'SharedMemory: await using ends a pending wait',
  async (t) => {
    const shm = removeAtEnd(t, SharedMemory.create({ size: 4096 }), SharedMemory.fromId)
    let wait
    {
      await using own = SharedMemory.fromId(shm.id)
      wait = watch(own.wait(0, 0))
      await pending(1)
    }
    t.is(wait.state, 'rejected AbortError')
    t.is(pendingWaits(), 0)
  },
)

test.serial('SignalWatcher: await using ends a pending next() with done', async (t) => {
  let next
  {
    await using watcher = watchSignals(['SIGUSR2'])
    next = watch(watcher.next())
    await pending(1)
  }
  t.is(next.state, 'fulfilled {"done":true}')
  t.is(pendingWaits(), 0)
})

test.serial('UnixDatagramSocket: await using ends a pending receive', async (t) => {
  const [a, b] = socketpair('dgram')
  t.teardown(() => b.close())
  let receive
  {
    await using own = a
    receive = watch(own.receive())
    await pending(1)
  }
  t.is(receive.state, 'rejected AbortError')
  t.is(pendingWaits(), 0)
  t.true(a.closed)
})

linuxOnly(test.serial, 'macOS has no SOCK_SEQPACKET UNIX sockets')(
  'UnixSeqpacketServer and UnixSeqpacketSocket: await using ends a pending accept and receive, and removes the socket file',
  async (t) => {
    const d = tempDir('ipckit-dispose-')
    t.teardown(d.remove)
    const path = `${d.path}/srv.sock`
    let accept
    let receive
    {
      await using server = UnixSeqpacketServer.listen(path)
      await using client = UnixSeqpacketSocket.connect(path)
      await using conn = await server.accept()
      accept = watch(server.accept())
      receive = watch(conn.receive())
      await pending(2)
      t.is(client.remoteAddress, path)
    }
    t.is(accept.state, 'rejected AbortError')
    t.is(receive.state, 'rejected AbortError')
    t.is(pendingWaits(), 0)
    t.false(existsSync(path), 'the server removed its file')
  },
)

test.serial('pipe ends: await using closes the descriptor before the block is left', async (t) => {
  const { readable, writable } = pipe()
  const closes: string[] = []
  readable.once('close', () => closes.push('readable'))
  writable.once('close', () => closes.push('writable'))
  {
    await using r = readable
    await using w = writable
    w.write('x')
    t.is(String((await once(r, 'data'))[0]), 'x')
  }
  t.deepEqual(closes, ['writable', 'readable'], "both ends had emitted 'close' when the block was left")
  t.deepEqual([readable.fd, writable.fd], [-1, -1])
})
