/**
 * Faults: processes killed while they hold a lock, send or wait; objects removed under blocked
 * waiters; peers that vanish mid-stream; a full queue with a slow consumer. Every case uses real
 * child processes and checks that nothing is lost, damaged or left hanging. (EINTR from signals
 * is in `faults-eintr.spec.ts`: its signal storm would hit every test of this file.) Tests that
 * count this process's blocked threads run serially, so that no other test's waits are counted.
 */
import test, { type ExecutionContext } from 'ava'
import { once } from 'node:events'

import {
  IpcError,
  MessageQueue,
  Mutex,
  SemaphoreSet,
  SharedMemory,
  pipe,
  socketpair,
  type PipeWritable,
} from '../ts/index'
import { freshKey, linuxOnly, nodeChild, removeAtEnd, sleep, waitUntilBlocked, type RunningChild } from './helpers'
import { Tally } from './helpers/stress'

const STRESS = JSON.stringify(require.resolve('./helpers/stress'))

const track = (t: ExecutionContext, q: MessageQueue) => removeAtEnd(t, q, MessageQueue.fromId)

function killAtEnd(t: ExecutionContext, ...children: RunningChild[]): void {
  t.teardown(() => {
    for (const c of children) c.kill('SIGKILL')
  })
}

/** `promise`, or a rejection after `ms` (so that a hang fails the test with a reason). */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} still pending after ${ms} ms`)), ms)
  })
  return Promise.race([promise, late]).finally(() => clearTimeout(timer))
}

/**
 * How many records of producer `p` a tally holds, checking that they are 0..n-1, each once;
 * -1 otherwise.
 */
function sentPrefix(tally: Tally, p: number): number {
  const per = tally.counts.length / tally.producers
  const seg = tally.counts.subarray(p * per, (p + 1) * per)
  const n = seg.indexOf(0) === -1 ? seg.length : seg.indexOf(0)
  return seg.subarray(0, n).every((c) => c === 1) && seg.subarray(n).every((c) => c === 0) ? n : -1
}

const MSGRCV = /msgrcv/
const MSGSND = /msgsnd/
const SEMOP = /semtimedop|semop/

/** Tests that wait for children to block in the kernel ({@link waitUntilBlocked}). */
const wchanTest = linuxOnly(test, 'waitUntilBlocked reads /proc/<pid>/task/*/wchan')
const wchanTestSerial = linuxOnly(test.serial, 'waitUntilBlocked reads /proc/<pid>/task/*/wchan')
const seqpacketTest = linuxOnly(test, 'macOS has no SOCK_SEQPACKET UNIX sockets')

wchanTest('SIGKILL of the process holding a Mutex: a waiting process gets it', async (t) => {
  const key = freshKey('sem')
  const mutex = Mutex.open(key, { create: true })
  t.teardown(() => {
    mutex.remove()
    mutex.close()
  })
  const holder = nodeChild(
    `ipckit.Mutex.open(Number(process.argv[2])).lockSync(); console.log('locked'); setInterval(() => {}, 1000)`,
    [String(key)],
  )
  killAtEnd(t, holder)
  await holder.line(/^locked$/)
  const waiter = nodeChild(
    `const m = ipckit.Mutex.open(Number(process.argv[2]))
     m.lock().then((guard) => { console.log('got ' + m.locked); guard.unlock(); m.close() },
                   (e) => { console.log('error ' + e.code); process.exit(1) })`,
    [String(key)],
  )
  killAtEnd(t, waiter)
  await waitUntilBlocked(waiter.pid, SEMOP)
  const set = SemaphoreSet.fromId(mutex.id)
  t.is(set.waitingForIncrease(0), 1)
  set.close()
  t.true(mutex.locked)
  holder.kill('SIGKILL')
  t.is((await holder.done).signal, 'SIGKILL')
  t.is(await within(waiter.line(/^(got|error)/), 10_000, 'the waiter'), 'got true')
  t.is((await waiter.done).code, 0)
  t.false(mutex.locked)
})

test('SIGKILL of senders in the middle of sends: the queue holds only whole messages, in order', async (t) => {
  const q = track(t, MessageQueue.create())
  q.update({ maxBytes: 8192 })
  // One sender blocks in msgsnd on the JS thread, the other on ipckit's wait thread.
  const sender = (mode: string, p: number) =>
    nodeChild(
      `const S = require(${STRESS})
       const q = ipckit.MessageQueue.fromId(Number(process.argv[2]))
       const p = Number(process.argv[3])
       console.log('sending')
       ;(async () => {
         for (let s = 0; ; s++) {
           const m = S.record(p, s, S.queueSize(p, s))
           if (process.argv[4] === 'sync') q.sendSync(m, { type: p + 1 }); else await q.send(m, { type: p + 1 })
         }
       })().catch((e) => { console.error(e); process.exit(1) })`,
      [String(q.id), String(p), mode],
    )
  const senders = [sender('sync', 0), sender('async', 1)]
  killAtEnd(t, ...senders)
  await Promise.all(senders.map((c) => c.line(/^sending$/)))
  const tally = new Tally(1 << 20, 2, 'consecutive')
  const take = (msg: { type: number; data: Buffer }) => {
    t.is(msg.data.readUInt16LE(4), msg.type - 1)
    tally.add(msg.data)
  }
  // Drain concurrently so that both keep sending, and kill each at a different moment.
  for (const [i, c] of senders.entries()) {
    const until = Date.now() + 150 + 100 * i
    while (Date.now() < until) take(await q.receive())
    c.kill('SIGKILL')
    t.is((await c.done).signal, 'SIGKILL')
  }
  const { messages, bytes } = q.stat()
  let left = 0
  let leftBytes = 0
  for (;;) {
    let msg
    try {
      msg = q.receiveSync({ wait: false })
    } catch (err) {
      t.is((err as IpcError).code, 'ENOMSG')
      break
    }
    left++
    leftBytes += msg.data.length
    take(msg)
  }
  t.deepEqual([left, leftBytes], [messages, bytes], 'stat agrees with what was queued')
  t.like(tally, { corrupt: 0, outOfOrder: 0 })
  // Each sender's messages are 0, 1, 2, ... with no gap and no copy, up to where it died.
  t.is(sentPrefix(tally, 0) + sentPrefix(tally, 1), tally.received)
  t.true(sentPrefix(tally, 0) > 0 && sentPrefix(tally, 1) > 0)
  t.like(q.stat(), { messages: 0, bytes: 0 })
})

wchanTest('SIGKILL of processes blocked in receive: the message stays for others', async (t) => {
  const q = track(t, MessageQueue.create())
  const receivers = ['q.receiveSync()', 'await q.receive()'].map((call) =>
    nodeChild(
      `const q = ipckit.MessageQueue.fromId(Number(process.argv[2]))
       ;(async () => { const m = ${call}; console.log('took ' + m.data) })()`,
      [String(q.id)],
    ),
  )
  killAtEnd(t, ...receivers)
  for (const r of receivers) await waitUntilBlocked(r.pid, MSGRCV)
  for (const r of receivers) r.kill('SIGKILL')
  for (const r of receivers) {
    const done = await r.done
    t.is(done.signal, 'SIGKILL')
    t.is(done.stdout, '')
  }
  q.sendSync('for the others')
  t.is(q.stat().messages, 1)
  const other = nodeChild(
    `const m = ipckit.MessageQueue.fromId(Number(process.argv[2])).receiveSync({ wait: false }); console.log('took ' + m.data)`,
    [String(q.id)],
  )
  t.is(await other.line(/^took/), 'took for the others')
  t.is((await other.done).code, 0)
})

/** A child that prints how its wait ended: `ok` or the error code. */
function waitingChild(code: string, args: string[]): RunningChild {
  return nodeChild(
    `;(async () => { ${code} })().then((r) => console.log('ok ' + (r ?? '')), (e) => console.log('error ' + e.code))`,
    args,
  )
}

function codeOf(p: Promise<unknown>): Promise<string> {
  return p.then(
    (r) => `ok ${r ?? ''}`,
    (e: IpcError) => `error ${e.code} ${e.syscall}`,
  )
}

wchanTestSerial(
  'IPC_RMID of a message queue under 4 blocked receivers and a blocked sender: all get EIDRM',
  async (t) => {
    const q = track(t, MessageQueue.create())
    q.update({ maxBytes: 64 })
    q.sendSync(Buffer.alloc(64), { type: 1 })
    // The queue is full of type 1 and has no type 2: receivers of type 2 and a sender both block.
    const children = [
      waitingChild(`ipckit.MessageQueue.fromId(Number(process.argv[2])).receiveSync({ type: 2 })`, [String(q.id)]),
      waitingChild(`await ipckit.MessageQueue.fromId(Number(process.argv[2])).receive({ type: 2 })`, [String(q.id)]),
    ]
    killAtEnd(t, ...children)
    const mine = [codeOf(q.receive({ type: 2 })), codeOf(q.receive({ type: 2 })), codeOf(q.send('more'))]
    for (const c of children) await waitUntilBlocked(c.pid, MSGRCV)
    // The two receives of this process have the same options: one thread is blocked for both.
    await waitUntilBlocked(process.pid, MSGRCV, 1)
    await waitUntilBlocked(process.pid, MSGSND)
    q.remove()
    t.deepEqual(await within(Promise.all(mine), 5000, 'waits in this process'), [
      'error EIDRM msgrcv',
      'error EIDRM msgrcv',
      'error EIDRM msgsnd',
    ])
    for (const c of children) {
      t.is(await within(c.line(/^(ok|error)/), 5000, 'a child'), 'error EIDRM')
      t.is((await c.done).code, 0)
    }
  },
)

linuxOnly(test, 'one waiter has a timeout: on macOS it polls and waitingForIncrease() does not count it')(
  'IPC_RMID of a semaphore set under 4 blocked waiters: all get EIDRM',
  async (t) => {
    const set = SemaphoreSet.create({ count: 2, initial: [0, 1] })
    t.teardown(() => {
      try {
        set.remove()
      } catch {
        // removed by the test
      }
      set.close()
    })
    const children = [
      waitingChild(`ipckit.SemaphoreSet.fromId(Number(process.argv[2])).opSync([{ index: 0, delta: -1 }])`, [
        String(set.id),
      ]),
      waitingChild(
        `await ipckit.SemaphoreSet.fromId(Number(process.argv[2])).op([{ index: 0, delta: -1 }], { timeoutMs: 60000 })`,
        [String(set.id)],
      ),
    ]
    killAtEnd(t, ...children)
    const mine = [codeOf(set.op([{ index: 0, delta: -1 }])), codeOf(set.op([{ index: 1, delta: 0 }]))]
    const until = Date.now() + 20_000
    while (set.waitingForIncrease(0) < 3 || set.waitingForZero(1) < 1) {
      if (Date.now() > until)
        t.fail(`waiters: ${set.waitingForIncrease(0)} for increase, ${set.waitingForZero(1)} for zero`)
      await sleep(10)
    }
    set.remove()
    t.deepEqual(await within(Promise.all(mine), 5000, 'waits in this process'), [
      'error EIDRM semop',
      'error EIDRM semop',
    ])
    for (const c of children) {
      t.is(await within(c.line(/^(ok|error)/), 5000, 'a child'), 'error EIDRM')
      t.is((await c.done).code, 0)
    }
  },
)

linuxOnly(test.serial, 'shm.wait/notify need a futex (ENOSYS on macOS)')(
  'IPC_RMID of shared memory under 4 waiters: as documented the segment lives on while attached, so waits go on, time out at their deadline, and notify still wakes them',
  async (t) => {
    const shm = SharedMemory.create({ size: 4096 })
    t.teardown(() => {
      try {
        shm.remove()
      } catch {
        // removed by the test
      }
      shm.close()
    })
    const children = [
      waitingChild(
        `const s = ipckit.SharedMemory.fromId(Number(process.argv[2])); console.log('ready'); return s.waitSync(0, 0)`,
        [String(shm.id)],
      ),
      waitingChild(
        `const s = ipckit.SharedMemory.fromId(Number(process.argv[2])); console.log('ready'); return await s.wait(0, 0)`,
        [String(shm.id)],
      ),
    ]
    killAtEnd(t, ...children)
    for (const c of children) await c.line(/^ready$/)
    const start = Date.now()
    let timedOutAt = 0
    const mine = [
      codeOf(shm.wait(0, 0)),
      codeOf(
        shm.wait(0, 0, { timeoutMs: 1500 }).then((r) => {
          timedOutAt = Date.now()
          return r
        }),
      ),
    ]
    // A futex sleeper cannot be told apart from Node's idle threads in /proc: give them time.
    await sleep(300)
    shm.remove()
    t.true(shm.stat().removed)
    let settled = 0
    for (const p of [...mine, ...children.map((c) => c.line(/^(ok|error)/))]) void p.then(() => settled++)
    await sleep(200)
    t.is(settled, 0, 'removal wakes nobody')
    t.is(await within(mine[1]!, 5000, 'the timed wait'), 'ok timed-out')
    t.true(timedOutAt - start >= 1490, `timed out after ${timedOutAt - start} ms`)
    shm.write(Buffer.from([1, 0, 0, 0]), 0)
    // The children's two waits are in the kernel; this process's line thread may not be back in
    // its futex call yet after delivering the timed-out wait (one CPU): then it finds the word
    // changed, and the wait ends the same.
    const woken = shm.notify(0)
    t.true(woken === 3 || woken === 2, `notify woke ${woken}`)
    t.is(await within(mine[0]!, 5000, 'the wait'), 'ok ok')
    for (const c of children) {
      t.is(await within(c.line(/^(ok|error)/), 5000, 'a child'), 'ok ok')
      t.is((await c.done).code, 0)
    }
  },
)

seqpacketTest(
  'seqpacket peer killed mid-stream: every message before it arrives whole and in order, then end of stream; sending to it fails with EPIPE',
  async (t) => {
    const [mine, theirs] = socketpair('seqpacket')
    t.teardown(() => mine.close())
    const child = nodeChild(
      `const S = require(${STRESS})
     const sock = ipckit.UnixSeqpacketSocket.fromFd(3)
     ;(async () => { for (let s = 0; ; s++) await sock.send(S.record(0, s, 20 + (s * 7919) % 60000)) })()`,
      [],
      { stdio: ['pipe', 'pipe', 'pipe', theirs.fd] },
    )
    killAtEnd(t, child)
    theirs.close()
    const tally = new Tally(1 << 20, 1, 'connection')
    for (let i = 0; i < 50; i++) tally.add((await mine.receive())!.data)
    child.kill('SIGKILL')
    t.is((await child.done).signal, 'SIGKILL')
    for (;;) {
      const msg = await within(mine.receive(), 5000, 'receive after the peer died')
      if (msg === null) break
      tally.add(msg.data)
    }
    t.like(tally, { corrupt: 0, outOfOrder: 0, mixed: 0 })
    t.is(sentPrefix(tally, 0), tally.received)
    t.true(tally.received >= 50)
    t.is(await mine.receive(), null, 'end of stream stays')
    const err = await t.throwsAsync(mine.send('anyone?'))
    t.like(err, { code: 'EPIPE' })
  },
)

seqpacketTest('seqpacket: a receive pending when the peer closes resolves null', async (t) => {
  const [mine, theirs] = socketpair('seqpacket')
  t.teardown(() => mine.close())
  const child = nodeChild(
    `const s = ipckit.UnixSeqpacketSocket.fromFd(3); s.sendSync('last'); setTimeout(() => s.close(), 300)`,
    [],
    {
      stdio: ['pipe', 'pipe', 'pipe', theirs.fd],
    },
  )
  killAtEnd(t, child)
  theirs.close()
  t.is((await mine.receive())?.data.toString(), 'last')
  t.is(await within(mine.receive(), 10_000, 'the pending receive'), null)
  t.is((await child.done).code, 0)
})

const PATTERN = 251
test('pipe writer killed mid-write: the reader gets a clean end of stream and an undamaged prefix', async (t) => {
  const { readable, writable } = pipe()
  t.teardown(() => readable.close())
  // 64 KiB writes are not atomic: a write can be cut by the SIGKILL.
  const child = nodeChild(
    `const fs = require('node:fs')
     const chunk = Buffer.alloc(65536 * ${PATTERN})
     for (let i = 0; i < chunk.length; i++) chunk[i] = i % ${PATTERN}
     for (let k = 0; ; k = (k + 1) % ${PATTERN}) fs.writeSync(3, chunk, k * 65536, 65536)`,
    [],
    { stdio: ['pipe', 'pipe', 'pipe', writable.fd] },
  )
  killAtEnd(t, child)
  writable.close()
  let total = 0
  let damaged = -1
  let killed = false
  for await (const chunk of readable as AsyncIterable<Buffer>) {
    for (let i = 0; i < chunk.length && damaged < 0; i++) if (chunk[i] !== (total + i) % PATTERN) damaged = total + i
    total += chunk.length
    if (!killed && total > 1 << 20) {
      killed = true
      child.kill('SIGKILL')
    }
  }
  t.is((await child.done).signal, 'SIGKILL')
  t.is(damaged, -1, `first damaged byte at ${damaged}`)
  t.true(total > 1 << 20)
})

test('pipe reader killed mid-stream: the writer gets EPIPE as an error event, not a crash', async (t) => {
  const { readable, writable } = pipe()
  const child = nodeChild(
    `const fs = require('node:fs'); const b = Buffer.alloc(4096); let n = 0
     while (n < 1 << 20) n += fs.readSync(3, b)
     console.log('read'); setInterval(() => {}, 1000)`,
    [],
    { stdio: ['pipe', 'pipe', 'pipe', readable.fd] },
  )
  killAtEnd(t, child)
  readable.close()
  const failed = new Promise<NodeJS.ErrnoException>((resolve) => writable.once('error', resolve))
  const block = Buffer.alloc(65536, 7)
  const write = async (w: PipeWritable) => {
    try {
      while (!w.destroyed) if (!w.write(block)) await once(w, 'drain')
    } catch {
      // the error event, checked below
    }
  }
  const writing = write(writable)
  await child.line(/^read$/)
  child.kill('SIGKILL')
  const err = await within(failed, 10_000, 'the write error')
  t.is(err.code, 'EPIPE')
  await writing
  t.is(writable.fd, -1)
})

test('a full queue with a slow consumer: senders wait, nothing is lost or reordered', async (t) => {
  const q = track(t, MessageQueue.create())
  q.update({ maxBytes: 2048 })
  const COUNT = 300
  const producers = ['sync', 'async'].map((mode, p) =>
    nodeChild(
      `const S = require(${STRESS})
       const q = ipckit.MessageQueue.fromId(Number(process.argv[2]))
       const p = Number(process.argv[3])
       let waited = 0
       ;(async () => {
         for (let s = 0; s < ${COUNT}; s++) {
           const m = S.record(p, s, S.queueSize(p, s))
           if (process.argv[4] === 'async') await q.send(m)
           else {
             try {
               q.sendSync(m, { wait: false })
             } catch (e) {
               if (e.code !== 'EAGAIN') throw e
               waited++
               q.sendSync(m)
             }
           }
         }
         q.close()
         console.log('waited ' + waited)
       })().catch((e) => { console.error(e); process.exit(1) })`,
      [String(q.id), String(p), mode],
    ),
  )
  killAtEnd(t, ...producers)
  const tally = new Tally(2 * COUNT, 2, 'consecutive')
  let fullest = 0
  while (tally.received < 2 * COUNT) {
    const msg = await within(q.receive(), 20_000, `message ${tally.received}`)
    tally.add(msg.data)
    fullest = Math.max(fullest, q.stat().bytes)
    if (tally.received % 10 === 0) await sleep(2)
  }
  for (const p of producers) t.is((await p.done).code, 0)
  const waited = Number((await producers[0]!.line(/^waited/)).split(' ')[1])
  t.log(`the sync sender found the queue full ${waited} times`)
  t.true(waited > COUNT / 10)
  t.like(tally, { received: 2 * COUNT, corrupt: 0, outOfOrder: 0 })
  t.true(tally.counts.every((c) => c === 1))
  t.true(fullest >= 1024, `the queue filled up (${fullest} bytes)`)
  t.is(q.stat().messages, 0)
})
