/**
 * The async model at scale and at the limits (ts/reactor.ts, crates/ipckit/src/wait.rs,
 * crates/ipckit-node/src/uv.rs): how many threads pending waits cost, that waits on one object
 * share one thread and are served in order, and that a wait which cannot get a thread or its
 * memory fails cleanly instead of crashing or hanging the process.
 */

import test from 'ava'
import { spawn } from 'node:child_process'
import { setMaxListeners } from 'node:events'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

import { AbortError, MessageQueue, SemaphoreSet, SharedMemory, socketpair } from '../ts/index'
import { pendingWaits } from '../ts/reactor'
import { NOBODY, ROOT, linuxOnly, removeAtEnd, sleep } from './helpers'

/** This process's threads (Linux: /proc/self/task). */
function threads(): number {
  return readdirSync('/proc/self/task').length
}

/** Waits (up to 10 s) until `cond()` holds; then returns it. */
async function until(cond: () => boolean): Promise<boolean> {
  for (let i = 0; i < 1000 && !cond(); i++) await sleep(10)
  return cond()
}

const procTest = linuxOnly(test.serial, 'counts threads in /proc/self/task')

procTest('1,000 pending receives on 1,000 socket pairs take no more threads than one does', async (t) => {
  const pairs = Array.from({ length: 1000 }, () => socketpair('seqpacket'))
  t.teardown(() => pairs.forEach(([a, b]) => (a.close(), b.close())))
  const ac = new AbortController()
  setMaxListeners(2000, ac.signal)
  const first = pairs[0]![1].receive({ signal: ac.signal }).catch((e: unknown) => e)
  await sleep(50)
  const withOne = threads()
  const rest = pairs.slice(1).map(([, b]) => b.receive({ signal: ac.signal }).catch((e: unknown) => e))
  await sleep(100)
  t.is(pendingWaits(), 1000)
  t.is(threads(), withOne, 'no thread per pending receive')
  // Each still gets its own message, on the JavaScript thread.
  pairs[500]![0].sendSync('five hundred')
  const got = (await rest[499]) as { data: Buffer }
  t.is(got.data.toString(), 'five hundred')
  ac.abort()
  for (const r of [first, ...rest.slice(0, 499), ...rest.slice(500)]) t.true((await r) instanceof AbortError)
  t.is(pendingWaits(), 0)
})

procTest('1,000 pending receives on one queue share one thread and are served in order', async (t) => {
  const q = removeAtEnd(t, MessageQueue.create(), MessageQueue.fromId)
  const before = threads()
  const order: number[] = []
  const waits = Array.from({ length: 1000 }, (_, i) =>
    q.receive().then((m) => {
      order.push(i)
      return m.data.toString()
    }),
  )
  t.true(await until(() => threads() > before), 'a thread waits for them')
  await sleep(100)
  t.true(threads() <= before + 3, `threads ${before} -> ${threads()} (a line thread, the kicker, at most one more)`)
  for (let i = 0; i < 1000; i++) q.sendSync(`m${i}`)
  const got = await Promise.all(waits)
  t.deepEqual(
    got,
    Array.from({ length: 1000 }, (_, i) => `m${i}`),
    'each wait got the next message',
  )
  t.deepEqual(
    order,
    Array.from({ length: 1000 }, (_, i) => i),
    'served in the order they were made',
  )
  t.is(q.stat().messages, 0)
})

procTest('1,000 acquires of one semaphore and 1,000 waits on one futex word each share one thread', async (t) => {
  const set = removeAtEnd(t, SemaphoreSet.create({ count: 1 }), SemaphoreSet.fromId)
  const shm = removeAtEnd(t, SharedMemory.create({ size: 4096 }), SharedMemory.fromId)
  const before = threads()
  const acquired: number[] = []
  const acquires = Array.from({ length: 1000 }, (_, i) =>
    set.op([{ index: 0, delta: -1 }]).then(() => acquired.push(i)),
  )
  const woken = Array.from({ length: 1000 }, () => shm.wait(0, 0))
  await until(() => set.waitingForIncrease(0) === 1)
  await sleep(100)
  t.is(set.waitingForIncrease(0), 1, 'one kernel waiter stands for the 1,000 acquires')
  t.true(threads() <= before + 4, `threads ${before} -> ${threads()}`)
  // The word changes and everybody is told: every waiter of that value wakes.
  const view = shm.attach()
  Atomics.store(new Int32Array(view.buffer), 0, 1)
  shm.notify(0)
  t.deepEqual(await Promise.all(woken), Array(1000).fill('ok'))
  view.detach()
  set.opSync([{ index: 0, delta: 600 }])
  t.true(await until(() => acquired.length === 600))
  await sleep(50)
  t.deepEqual(
    acquired,
    Array.from({ length: 600 }, (_, i) => i),
    'the first 600, in order',
  )
  set.opSync([{ index: 0, delta: 400 }])
  await Promise.all(acquires)
  t.is(set.get(0), 0)
})

procTest('a loop of futex waits, each for the next value of the word, reuses one thread', async (t) => {
  // Each value has a line of its own: its thread goes back to the pool as soon as the line is
  // empty, and the next value's line takes it (it used to linger 500 ms per value, so a
  // ping-pong of waits started a thread for every wait).
  const shm = removeAtEnd(t, SharedMemory.create({ size: 4096 }), SharedMemory.fromId)
  const view = shm.attach()
  t.teardown(() => view.detach())
  const word = new Int32Array(view.buffer, 0, 1)
  const first = shm.wait(0, 0)
  Atomics.store(word, 0, 1)
  shm.notify(0)
  t.is(await first, 'ok')
  const before = threads()
  let most = before
  for (let v = 1; v <= 300; v++) {
    const woken = shm.wait(0, v, { timeoutMs: 10_000 })
    // Changed and told from another turn of the event loop, as a peer process would.
    setImmediate(() => {
      Atomics.store(word, 0, v + 1)
      shm.notify(0)
    })
    t.is(await woken, 'ok', `value ${v}`)
    most = Math.max(most, threads())
  }
  // A thread per wait made 300. A retiring line thread counts as on its way back to the pool,
  // so the next line's job waits for it (the core's test holds that window open); the margin
  // is for the process's own threads (V8's, libuv's) that come and go meanwhile.
  t.true(most <= before + 8, `threads ${before} -> at most ${most} over 300 waits`)
})

procTest('a notify that leaves the word unchanged wakes the first waiter of the line only', async (t) => {
  const shm = removeAtEnd(t, SharedMemory.create({ size: 4096 }), SharedMemory.fromId)
  const results: string[] = []
  const waits = Array.from({ length: 3 }, (_, i) =>
    shm.wait(0, 0, { timeoutMs: 3000 }).then((r) => results.push(`${i}:${r}`)),
  )
  await sleep(100)
  t.is(shm.notify(0, 1), 1, 'one kernel waiter for the three')
  t.true(await until(() => results.length === 1))
  t.deepEqual(results, ['0:ok'])
  await Promise.all(waits)
  t.deepEqual(results, ['0:ok', '1:timed-out', '2:timed-out'])
})

/** The tasks (threads) that `uid` runs in the whole system now. */
function tasksOf(uid: number): number {
  let n = 0
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue
    try {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8')
      const owner = /^Uid:\s+(\d+)/m.exec(status)?.[1]
      if (Number(owner) === uid >>> 0) n += Number(/^Threads:\s+(\d+)/m.exec(status)?.[1] ?? 0)
    } catch {
      // gone meanwhile
    }
  }
  return n
}

/**
 * Runs `code` in a Node child whose limits `prlimit(1)` lowers before Node starts (`limits`,
 * e.g. `--nproc=40:40`), with `ipckit` the built package (dist/: tsx's WebAssembly parser
 * cannot run under a tight RLIMIT_AS); as `nobody` when `uid`/`gid` say so.
 */
function limitedChild(code: string, limits: string[], options: { uid?: number; gid?: number } = {}) {
  const script = `const ipckit = require(${JSON.stringify(join(ROOT, 'dist'))});
    (async () => { ${code} })().then(() => process.exit(0), (err) => { console.log('ERROR', err && err.stack); process.exit(1) })`
  return new Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn('prlimit', [...limits, '--', process.execPath, '-e', script], {
      ...options,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c))
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c))
    const timer = setTimeout(() => child.kill('SIGKILL'), 90_000)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr })
    })
  })
}

const built = existsSync(join(ROOT, 'dist', 'index.js'))

const rootOnly =
  process.getuid?.() === 0 ? linuxOnly(test.serial, 'limits a child of user nobody with prlimit(1)') : test.skip

rootOnly(
  'at the thread limit, waits that cannot get a thread fail with EAGAIN; aborting them cannot crash; other queues keep working',
  async (t) => {
    // Room for a few more threads of nobody's, whatever else nobody runs now.
    const limit = tasksOf(NOBODY.uid) + 12
    if (!built) return t.fail('dist/ is missing: run `npm run build` first')
    const result = await limitedChild(
      `const { MessageQueue } = ipckit
     const queues = Array.from({ length: 300 }, () => MessageQueue.create())
     const ac = new AbortController()
     const outcomes = queues.map((q) => q.receive({ signal: ac.signal }).then(() => 'took', (e) => e.code || e.name))
     await new Promise((r) => setTimeout(r, 300))
     const refused = (await Promise.all(outcomes.map((p) => Promise.race([p, new Promise((r) => setTimeout(() => r('pending'), 50))]))))
     const counts = {}
     for (const o of refused) counts[o] = (counts[o] || 0) + 1
     console.log('COUNTS', JSON.stringify(counts))
     // Abort every pending wait (the old code's kicker thread could not start here: SIGABRT).
     ac.abort()
     const after = await Promise.all(outcomes)
     const end = {}
     for (const o of after) end[o] = (end[o] || 0) + 1
     console.log('END', JSON.stringify(end))
     // Another queue: a message already there is taken, and one that comes later is waited for
     // on a thread the aborted waits gave back.
     const b = MessageQueue.create()
     b.sendSync('there')
     console.log('B1', (await b.receive()).data.toString())
     setTimeout(() => b.sendSync('later'), 100)
     console.log('B2', (await b.receive()).data.toString())
     for (const q of [...queues, b]) q.remove()
     console.log('DONE')`,
      [`--nproc=${limit}:${limit}`],
      { uid: NOBODY.uid, gid: NOBODY.gid },
    )
    t.is(result.code, 0, `exit ${result.code ?? result.signal}: ${result.stderr}${result.stdout}`)
    const counts = JSON.parse(/^COUNTS (.*)$/m.exec(result.stdout)![1]!) as Record<string, number>
    t.true((counts.EAGAIN ?? 0) > 0, `some waits were refused: ${JSON.stringify(counts)}`)
    t.is((counts.EAGAIN ?? 0) + (counts.pending ?? 0), 300, 'each wait either waits or is refused')
    const end = JSON.parse(/^END (.*)$/m.exec(result.stdout)![1]!) as Record<string, number>
    t.deepEqual(end, { EAGAIN: counts.EAGAIN, ABORT_ERR: counts.pending })
    t.regex(result.stdout, /^B1 there$/m)
    t.regex(result.stdout, /^B2 later$/m)
    t.regex(result.stdout, /^DONE$/m)
  },
)

const limitsTest = linuxOnly(test.serial, 'limits the child with prlimit(1) and reads /proc')

limitsTest('a huge accepted maxSize costs what arrives, not what is allowed (RLIMIT_AS 2 GiB)', async (t) => {
  if (!built) return t.fail('dist/ is missing: run `npm run build` first')
  const r = await limitedChild(
    `const { MessageQueue } = ipckit
     const big = 2 ** 31 - 1
     const q = MessageQueue.create()
     const others = Array.from({ length: 8 }, () => MessageQueue.create())
     const waits = [...Array.from({ length: 8 }, () => q.receive({ maxSize: big })), ...others.map((o) => o.receive({ maxSize: big, truncate: true }))]
     await new Promise((r) => setTimeout(r, 200))
     for (let i = 0; i < 8; i++) q.sendSync('q' + i)
     others.forEach((o, i) => o.sendSync(Buffer.alloc(4000 + i, i)))
     const got = await Promise.all(waits)
     console.log('GOT', JSON.stringify(got.map((m) => m.data.length)), got.slice(0, 8).map((m) => m.data.toString()).join(','))
     q.sendSync('sync')
     console.log('SYNC', q.receiveSync({ maxSize: big }).data.toString())
     for (const x of [q, ...others]) x.remove()`,
    // 2 GiB of address space: one buffer of maxSize (2 GiB) cannot fit, sixteen pending
    // waits sized by what arrives can.
    [`--as=${2 ** 31}:${2 ** 31}`],
  )
  t.is(r.code, 0, `exit ${r.code ?? r.signal}: ${r.stderr}`)
  const [, lengths, texts] = /^GOT (\S+) (.*)$/m.exec(r.stdout)!
  t.deepEqual(JSON.parse(lengths!), [...Array(8).fill(2), ...Array.from({ length: 8 }, (_, i) => 4000 + i)])
  t.is(texts, 'q0,q1,q2,q3,q4,q5,q6,q7')
  t.regex(r.stdout, /^SYNC sync$/m)
})

const workerTest = linuxOnly(test.serial, 'seqpacket pairs and real-time signals are Linux-only')

workerTest('a worker terminated with waits of every kind pending ends cleanly and took nothing', async (t) => {
  const { Worker } = await import('node:worker_threads')
  const q = removeAtEnd(t, MessageQueue.create(), MessageQueue.fromId)
  const set = removeAtEnd(t, SemaphoreSet.create({ count: 1 }), SemaphoreSet.fromId)
  const shm = removeAtEnd(t, SharedMemory.create({ size: 4096 }), SharedMemory.fromId)
  const [mine, theirs] = socketpair('seqpacket')
  t.teardown(() => mine.close())
  for (let round = 0; round < 3; round++) {
    const worker = new Worker(
      `require(${JSON.stringify(require.resolve('tsx/cjs'))});
       const ipckit = require(${JSON.stringify(join(ROOT, 'ts', 'index.ts'))});
       const { parentPort, workerData } = require('node:worker_threads');
       const q = ipckit.MessageQueue.fromId(workerData.q);
       const set = ipckit.SemaphoreSet.fromId(workerData.set);
       const shm = ipckit.SharedMemory.fromId(workerData.shm);
       const sock = ipckit.UnixSeqpacketSocket.fromFd(workerData.fd);
       const pairs = Array.from({ length: 20 }, () => ipckit.socketpair('dgram'));
       const watcher = ipckit.watchSignals('SIGRTMIN+9');
       for (const p of [q.receive(), q.receive({ type: 3 }), set.op([{ index: 0, delta: -1 }]), shm.wait(0, 0), watcher.next(), sock.receive(), ...pairs.map(([, b]) => b.receive())]) p.catch(() => {});
       parentPort.postMessage('waiting');`,
      { eval: true, workerData: { q: q.id, set: set.id, shm: shm.id, fd: theirs.fd } },
    )
    const exited = new Promise((resolve) => worker.once('exit', resolve))
    await new Promise((resolve) => worker.once('message', resolve))
    await sleep(50)
    await worker.terminate()
    await exited
  }
  // The socket the workers waited on is intact and still this process's.
  mine.sendSync('still here')
  t.is(theirs.receiveSync()!.data.toString(), 'still here')
  theirs.close()
  // Nothing was taken from what the waits waited on, and this process still works.
  q.sendSync('kept')
  t.is((await q.receive()).data.toString(), 'kept')
  set.opSync([{ index: 0, delta: 1 }])
  t.true(await until(() => set.get(0) === 1))
  await sleep(50)
  t.is(set.get(0), 1, 'no acquire of a terminated worker ran afterwards')
  t.is(q.stat().messages, 0)
})

procTest('a process that exits with waits of every kind pending exits at once', async (t) => {
  if (!built) return t.fail('dist/ is missing: run `npm run build` first')
  const q = removeAtEnd(t, MessageQueue.create(), MessageQueue.fromId)
  const r = await limitedChild(
    `const q = ipckit.MessageQueue.fromId(${q.id})
     const pairs = Array.from({ length: 20 }, () => ipckit.socketpair('seqpacket'))
     const set = ipckit.SemaphoreSet.create({ count: 1 })
     for (const p of [q.receive(), set.op([{ index: 0, delta: -1 }]), ...pairs.map(([, b]) => b.receive())]) p.catch(() => {})
     await new Promise((r) => setTimeout(r, 100))
     set.remove()
     console.log('exiting')
     process.exit(7)`,
    [],
  )
  t.is(r.code, 7, r.stderr)
  t.regex(r.stdout, /^exiting$/m)
  q.sendSync('kept')
  t.is(q.stat().messages, 1)
})
