/**
 * Leaks (issue 9): long loops of open/close, attach/detach, send/receive, socket and pipe
 * create/close and watchSignals start/stop keep RSS and the descriptor count flat.
 *
 * The bounds: descriptors are counted WITHOUT forcing a garbage collection (close() must
 * release them, a finalizer is only the safety net). Sampled 20 times during the loop they may
 * exceed the count after the warm-up by at most 64 (a wait thread cancelled by close() holds
 * its object's descriptors until it winds down, which takes a while on a loaded machine); once
 * the loop is over and threads had up to 2 s to end, by at most 2. RSS is sampled after a forced GC at the end of each
 * quarter, and may grow by at most 8 MiB between the end of the 2nd quarter and the end of the
 * 4th, which half the loop runs through: a leak of a kilobyte or so per iteration shows. Past
 * the bound, one more half is run: a leak grows in it too, a one-off jump of the runner's own
 * process does not.
 * The tests are serial (RSS and descriptors are process-wide).
 */

import test, { type ExecutionContext } from 'ava'
import { join } from 'node:path'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import {
  IPC_PRIVATE,
  MessageQueue,
  Mutex,
  Semaphore,
  SharedMemory,
  UnixSeqpacketServer,
  UnixSeqpacketSocket,
  pipe,
  socketpair,
  watchSignals,
} from '../ts/index'
import { linuxOnly, openFds, ROOT, runNode } from './helpers'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

const RSS_BOUND = 8 * 1024 * 1024
const FD_TRANSIENT = 64
const FD_BOUND = 2

/**
 * A full GC, then a few turns of the event loop: Node runs the finalizers of collected native
 * objects (which unmap detached shared-memory views and close what was dropped) on later turns,
 * so RSS is sampled once that queue has drained, not while it still holds memory on its way out.
 */
async function settle(): Promise<void> {
  gc()
  for (let turn = 0; turn < 5; turn++) await new Promise((r) => setImmediate(r))
  await new Promise((r) => setTimeout(r, 20))
}

/**
 * Runs `body` `warmup` times (default a tenth of the loop), then `iterations` times, checking
 * descriptors and RSS (see the bounds above). Every 100 iterations the loop gives the event loop
 * a turn, as a real program does: Node runs the finalizers of dropped native objects there.
 */
async function flat(
  t: ExecutionContext,
  iterations: number,
  body: (i: number) => void | Promise<void>,
  warmup = Math.max(50, iterations / 10),
): Promise<void> {
  const turn = async (i: number) => {
    if (i % 100 === 99) await new Promise((r) => setImmediate(r))
  }
  for (let i = 0; i < warmup; i++) {
    await body(i)
    await turn(i)
  }
  await settle()
  const fdBase = openFds()
  let fdMax = fdBase
  const rss: number[] = []
  const step = Math.ceil(iterations / 20)
  for (let i = 0; i < iterations; i++) {
    await body(i)
    await turn(i)
    if ((i + 1) % step === 0) fdMax = Math.max(fdMax, openFds())
    if ((i + 1) % Math.ceil(iterations / 4) === 0 || i === iterations - 1) {
      await settle()
      rss.push(process.memoryUsage().rss)
    }
  }
  const growth = rss[rss.length - 1]! - rss[1]!
  // A leak grows RSS in every window; the runner's own process (ava, tsx, another spec's load)
  // can make a one-off jump. So a window over the bound is followed by one more of the same
  // length, and the loop fails only if that one grows past the bound too.
  let again: number | undefined
  if (growth >= RSS_BOUND) {
    const start = process.memoryUsage().rss
    for (let i = 0; i < iterations / 2; i++) {
      await body(i)
      await turn(i)
    }
    await settle()
    again = process.memoryUsage().rss - start
  }
  let fdEnd = openFds()
  for (let i = 0; i < 40 && fdEnd - fdBase > FD_BOUND; i++) {
    await new Promise((r) => setTimeout(r, 50))
    fdEnd = openFds()
  }
  const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1)
  t.log(
    `${iterations} iterations: fds ${fdBase} -> max ${fdMax} -> ${fdEnd} at the end; RSS after each quarter (MiB) ${rss.map(mib).join(' ')}${
      again === undefined ? '' : `; grew ${mib(growth)} MiB, then ${mib(again)} MiB over one more half`
    }`,
  )
  t.true(fdMax - fdBase <= FD_TRANSIENT, `descriptors grew from ${fdBase} to ${fdMax} during the loop`)
  t.true(fdEnd - fdBase <= FD_BOUND, `descriptors grew from ${fdBase} to ${fdEnd}`)
  t.true(
    growth < RSS_BOUND || again! < RSS_BOUND,
    `RSS grew by ${mib(growth)} MiB over the 2nd half and ${mib(again ?? 0)} MiB over one more half`,
  )
}

test.serial('message queue open/send/receive/remove/close', async (t) => {
  await flat(t, 50_000, () => {
    const q = MessageQueue.open(IPC_PRIVATE, { create: true })
    q.sendSync(Buffer.alloc(256, 1), { type: 2 })
    q.receiveSync({ wait: false })
    q.remove()
    q.close()
  })
})

test.serial('message queue async send/receive, and receives cancelled by abort and by close', async (t) => {
  const q = MessageQueue.create()
  t.teardown(() => (q.remove(), q.close()))
  await flat(t, 10_000, async (i) => {
    await q.send('x'.repeat(100))
    await q.receive()
    const ac = new AbortController()
    const pending = q.receive({ signal: ac.signal }).catch((err: Error) => err.name)
    ac.abort()
    t.is(await pending, 'AbortError')
    if (i % 10 === 0) {
      const other = MessageQueue.open(IPC_PRIVATE, { create: true })
      const waiting = other.receive().catch((err: Error) => err.name)
      other.remove()
      other.close()
      await waiting
    }
  })
})

test.serial('semaphore and mutex open/acquire/release/remove/close', async (t) => {
  await flat(t, 30_000, async (i) => {
    const sem = Semaphore.open(IPC_PRIVATE, { create: true, initial: 1 })
    sem.acquireSync()
    sem.release()
    sem.remove()
    sem.close()
    if (i % 4 === 0) {
      const m = Mutex.open(IPC_PRIVATE, { create: true })
      const guard = await m.lock()
      guard.unlock()
      m.remove()
      m.close()
    }
  })
})

// A long warm-up: on Node >= 22, V8 keeps growing its heap through the first ~25,000 rounds of
// this loop (external buffers churn) before RSS levels off, with heapUsed flat; measured after
// that, growth is what ipckit would leak.
test.serial('shared memory create/attach/write/detach/remove/close', async (t) => {
  await flat(
    t,
    15_000,
    (i) => {
      const shm = SharedMemory.create({ size: 64 * 1024 })
      const view = shm.attach()
      new Uint8Array(view.buffer).fill(i & 0xff)
      shm.write(Buffer.from('leak?'), 10)
      shm.read(0, 4096)
      view.detach()
      shm.remove()
      shm.close()
    },
    25_000,
  )
})

linuxOnly(test.serial, 'abstract names and SOCK_SEQPACKET: macOS has neither')(
  'socket pairs and seqpacket connections create/send/receive/close',
  async (t) => {
    const server = UnixSeqpacketServer.listen({ abstract: `ipckit-leaks-${process.pid}` })
    t.teardown(() => server.close())
    await flat(t, 12_000, async (i) => {
      const [a, b] = socketpair('dgram')
      a.sendSync(Buffer.alloc(512))
      b.receiveSync()
      a.close()
      b.close()
      const [c, d] = socketpair('seqpacket')
      await c.send('hi')
      await d.receive()
      c.close()
      d.close()
      if (i % 4 === 0) {
        const client = UnixSeqpacketSocket.connect({ abstract: `ipckit-leaks-${process.pid}` })
        const conn = await server.accept()
        client.close()
        conn.close()
      }
    })
  },
)

test.serial('pipe create/close', async (t) => {
  await flat(t, 30_000, () => {
    const { readable, writable } = pipe()
    writable.close()
    readable.close()
  })
})

test.serial('watchSignals start/stop, with a pending next() ended by close()', async (t) => {
  await flat(t, 15_000, async (i) => {
    const w = watchSignals(['SIGUSR2', 'SIGWINCH'])
    if (i % 10 === 0) {
      const next = w.next()
      w.close()
      t.true((await next).done)
    } else w.close()
  })
})

linuxOnly(test.serial, "memfd, eventfd and seqpacket sockets are Linux's")(
  'Workers that end with objects open (terminated, or returned without close()) leave no descriptor or mapping behind; closing in a Worker prints no warning',
  async (t) => {
    // Neither close() nor a finalizer runs when a Worker ends with its objects open: their
    // descriptors used to stay open in the process for as long as it lived (8 per Worker here).
    // Each environment's cleanup now closes what it still owns. Run in a child whose descriptors
    // and mappings are its own; half the Workers are terminated, half return.
    // (Emulated, qemu-user, each Worker takes seconds to load the TypeScript sources: fewer.)
    const workers = process.env.QEMU_LD_PREFIX !== undefined ? 2 : 6
    const code = `const { Worker } = require('node:worker_threads')
    const { readdirSync, readFileSync, readlinkSync } = require('node:fs')
    // The process's descriptors of the kinds the Workers open, counted by kind (Node.js opens
    // and closes others of its own meanwhile, such as /dev/null for a Worker's stdio).
    const fds = () => {
      const n = { memfd: 0, eventfd: 0, socket: 0, pipe: 0 }
      for (const fd of readdirSync('/proc/self/fd')) {
        let to = ''
        try { to = readlinkSync('/proc/self/fd/' + fd) } catch {}
        const kind = to.startsWith('/memfd:') ? 'memfd' : to === 'anon_inode:[eventfd]' ? 'eventfd' : to.startsWith('socket:') ? 'socket' : to.startsWith('pipe:') ? 'pipe' : undefined
        if (kind) n[kind]++
      }
      return n
    }
    const memfdMaps = () => readFileSync('/proc/self/maps', 'utf8').split('\\n').filter((l) => l.includes('/memfd:')).length
    const body = 'const { parentPort } = require("node:worker_threads"); require(' + JSON.stringify(process.env.IPCKIT_TS_REGISTER) + ');' +
      'const k = require(' + JSON.stringify(process.env.IPCKIT_ENTRY) + ');' +
      // A duplex channel (a memfd, mapped, and two eventfds), an eventfd, a mapped memfd, a
      // seqpacket socket pair, a pipe.
      'const ch = k.Channel.create({ duplex: true });' +
      'const e = k.EventFd.create(); const m = k.Memfd.create({ size: 4096 }); m.attach(); m.write(Buffer.from("x"));' +
      'const s = k.socketpair("seqpacket"); const p = k.pipe();' +
      'parentPort.postMessage("open");'
    // Or, last, a Worker that closes everything itself (and a Channel.pair, a pidfd).
    const closing = 'const [a, b] = k.Channel.pair(); const pid = k.PidFd.open(process.pid);' +
      'ch.close(); e.close(); m.close(); s[0].close(); s[1].close(); p.readable.close(); p.writable.close(); a.close(); b.close(); pid.close();'
    const run = async (i) => {
      const terminate = i !== 'closing' && i % 2 !== 0
      // A terminated one has a receive waiting on its event loop (which would keep a Worker
      // that returns from ending).
      const end = i === 'closing' ? closing : terminate ? 'ch.receive().catch(() => {}); setInterval(() => {}, 1000)' : ''
      const w = new Worker(body + end, { eval: true })
      const exited = new Promise((r) => w.once('exit', r))
      await new Promise((r, no) => { w.once('message', r); w.once('error', no) })
      if (terminate) await w.terminate()
      await exited
    }
    ;(async () => {
      // One Worker first: loading the sources in a Worker (tsx, esbuild) opens and closes
      // descriptors of its own the first time.
      await run(-1)
      const before = [fds(), memfdMaps()]
      for (let i = 0; i < ${workers}; i++) await run(i)
      await run('closing')
      console.log(JSON.stringify({ before, after: [fds(), memfdMaps()] }))
    })().catch((e) => { console.error(e); process.exit(1) })`
    const env = {
      ...process.env,
      IPCKIT_TS_REGISTER: require.resolve('tsx/cjs'),
      IPCKIT_ENTRY: join(ROOT, 'ts', 'index.ts'),
    }
    const r = await runNode(code, [], { env, timeoutMs: 300_000 })
    const { before, after } = JSON.parse(r.stdout) as { before: unknown[]; after: unknown[] }
    t.deepEqual(after, before, `descriptors and memfd mappings before and after ${workers + 1} Workers`)
    // Closing in a Worker what ipckit made goes by a system call of its own: Node.js, which
    // tracks the descriptors a Worker opens through fs, warned at each fs.closeSync of another.
    t.notRegex(r.stderr, /closed but not opened in unmanaged mode/)
  },
)
