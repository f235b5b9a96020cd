/**
 * Channel with several writers (`writers: N`, layout version 2 of include/ipckit/channel.h):
 * Node writer children and a C writer written from the header alone
 * (`__test__/c/channel_writer.c`) into one reader. Every message must arrive exactly once,
 * each writer's in its order, its bytes exact; a writer killed while it holds the ring's lock
 * with half a record written must expose none of it and wedge nobody; the reader's input ends
 * once every writer closed or died; writers get EPIPE once the reader closed; a peer that
 * knows only version 1 refuses the channel.
 */

import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

import anyTest from 'ava'

import { AbortError, Channel, IpcError } from '../ts/index'
import { native } from '../ts/native'
import { cChild, compileC, linuxOnly, nodeChild, PATIENCE_MS, posixName, removeBuilds, ROOT, within } from './helpers'

/** memfd, eventfd, pidfd and futex words are Linux's. */
const test = linuxOnly(anyTest, 'Channel needs memfd and eventfd (Linux)')

anyTest.after.always(removeBuilds)

const HEADER = join(ROOT, 'include', 'ipckit', 'channel.h')

/** A C program of __test__/c compiled against the repository's header. */
function cProgram(name: string): string {
  const source = readFileSync(join(__dirname, 'c', `${name}.c`), 'utf8').replace(
    '"ipckit/channel.h"',
    JSON.stringify(HEADER),
  )
  return compileC(name, source)
}

/** Message `i` of writer `id`: the words id and i, then bytes (the C writer's formula). */
function message(id: number, i: number): Buffer {
  const len = 8 + ((i * 37) % 200)
  const b = Buffer.alloc(len)
  b.writeUInt32LE(id, 0)
  b.writeUInt32LE(i, 4)
  for (let k = 8; k < len; k++) b[k] = (id * 7 + i + k) & 0xff
  return b
}

/** The code of a Node writer child: joins through `open` (an expression), sends N messages of writer ID `how`. */
function nodeWriter(open: string, how: 'send' | 'sendSync' | 'post'): string {
  return `const [id, n] = process.argv.slice(2).map(Number)
    const message = ${message.toString()}
    const ch = ${open}
    console.log('joined')
    ;(async () => {
      for (let i = 0; i < n; i++) {
        const m = message(id, i)
        ${how === 'send' ? 'await ch.send(m)' : how === 'sendSync' ? 'ch.sendSync(m)' : 'await ch.post({ id, i, m })'}
      }
      ch.close()
    })().catch((e) => { console.error(e); process.exit(1) })`
}

/**
 * Takes every message until the input ends; checks each whole, once, in its writer's order.
 * Returns how many came from each writer and how the input ended.
 */
async function drain(t: { is: (a: unknown, b: unknown, m?: string) => void }, rx: Channel, writers: number) {
  const next: number[] = Array.from({ length: writers }, () => 0)
  let end: unknown
  for (;;) {
    let m: unknown
    try {
      m = await within(rx.receive(), `message ${next.join('/')}`)
    } catch (err) {
      end = err
      break
    }
    let id: number
    let i: number
    let bytes: Buffer
    if (Buffer.isBuffer(m)) {
      id = m.readUInt32LE(0)
      i = m.readUInt32LE(4)
      bytes = m
    } else {
      const v = m as { id: number; i: number; m: Uint8Array }
      id = v.id
      i = v.i
      bytes = Buffer.from(v.m)
    }
    if (!(id < writers) || i !== next[id] || !bytes.equals(message(id, i))) {
      t.is(`writer ${id} message ${i} (${bytes.length} bytes)`, `writer ${id} message ${next[id]} intact`)
      throw new Error('a message was lost, repeated, out of order or torn')
    }
    next[id]!++
  }
  return { next, end }
}

test('three Node writers (send, copying-path sendSync, post) and a C writer into one reader: every message once, in order, exact; the end after all closed', async (t) => {
  const N = 1500
  const rx = Channel.create({ role: 'reader', writers: 4, capacity: 4096 })
  t.teardown(() => rx.close())
  t.is(rx.writers, 4)
  const stdio = ['pipe', 'pipe', 'pipe', ...rx.fds] as const
  // The sendSync writer runs the copying path (a runtime that refuses external buffers, forced).
  const kids = (['send', 'sendSync', 'post'] as const).map((how, id) => {
    const open =
      how === 'sendSync'
        ? `(require('assert').strictEqual(ipckit.zeroCopySupported, false), ipckit.Channel.fromFds([3, 4, 5]))`
        : 'ipckit.Channel.fromFds([3, 4, 5])'
    const env = how === 'sendSync' ? { ...process.env, IPCKIT_NO_ZERO_COPY: '1' } : process.env
    return nodeChild(nodeWriter(open, how), [String(id), String(N)], { stdio: [...stdio], env })
  })
  const c = cChild(cProgram('channel_writer'), ['produce', '3', String(N)], { stdio: [...stdio] })
  const { next, end } = await drain(t, rx, 4)
  t.deepEqual(next, [N, N, N, N])
  t.like(end, { code: 'EPIPE', syscall: 'channel receive' })
  t.regex((end as Error).message, /all 4 writers closed/)
  for (const k of kids) {
    const r = await k.done
    t.is(r.code, 0, r.stderr)
  }
  t.is((await c.done).code, 0)
})

test('a C writer killed while it holds the lock with half a record written: the others take over, the reader never sees it, then ECONNRESET', async (t) => {
  const N = 400
  const rx = Channel.create({ role: 'reader', writers: 3, capacity: 1024 })
  t.teardown(() => rx.close())
  const stdio = ['pipe', 'pipe', 'pipe', ...rx.fds] as const
  const holder = cChild(cProgram('channel_writer'), ['hold'], { stdio: [...stdio] })
  t.is(await within(holder.line(/^joined/), 'the holder'), 'joined 0')
  await within(holder.line(/^holding$/), 'the lock taken')
  const kids = [0, 1].map((id) =>
    nodeChild(nodeWriter('ipckit.Channel.fromFds([3, 4, 5])', 'send'), [String(id), String(N)], { stdio: [...stdio] }),
  )
  await Promise.all(kids.map((k) => within(k.line(/^joined$/), 'a writer')))
  // The writers wait for the lock: nothing is published, not the torn record either.
  await new Promise((r) => setTimeout(r, 200))
  t.like(
    t.throws(() => rx.receiveSync({ wait: false })),
    { code: 'EAGAIN' },
  )
  holder.kill('SIGKILL')
  t.is((await holder.done).signal, 'SIGKILL')
  const { next, end } = await drain(t, rx, 2)
  t.deepEqual(next, [N, N])
  t.like(end, { code: 'ECONNRESET', syscall: 'channel receive', errno: -104 })
  t.regex((end as Error).message, /1 of 3 exited without closing/)
  for (const k of kids) {
    const r = await k.done
    t.is(r.code, 0, r.stderr)
  }
})

test('Workers terminated in the middle of sends (their finally never runs): a lock one of them left is taken over, its torn record never seen, and the last writer gets through', async (t) => {
  // Each Worker joins as a writer and sends 64 KiB messages as fast as the ring takes them,
  // holding the ring's lock for most of each turn (the copy), and is terminated 20-60 ms after
  // it joined: some terminations land while a Worker holds the lock. The lock holds the
  // thread's id, not the pid (alive all along): the process's main thread, joining last,
  // finds that thread gone and frees the lock. The reader takes messages in place and keeps
  // the ring from filling up (a writer waiting for room holds no lock).
  // Emulated (scripts/test-targets.sh runs arm64 under qemu-user with QEMU_LD_PREFIX set), a
  // Worker takes seconds to load the TypeScript sources: 4 there, each message given longer.
  const emulated = process.env.QEMU_LD_PREFIX !== undefined
  const WORKERS = emulated ? 4 : 16
  const SIZE = 64 * 1024
  const rx = Channel.create({ role: 'reader', writers: WORKERS + 1, capacity: 1 << 24 })
  t.teardown(() => rx.close())
  const code = `const { Worker } = require('node:worker_threads')
    const body = 'const { workerData: d, parentPort } = require("node:worker_threads"); require(' + JSON.stringify(process.env.IPCKIT_TS_REGISTER) + ');' +
      'const ch = require(' + JSON.stringify(process.env.IPCKIT_ENTRY) + ').Channel.fromFds([3, 4, 5]);' +
      'const m = Buffer.alloc(d.size, d.id); parentPort.postMessage("joined");' +
      '(async () => { for (;;) await ch.send(m) })()'
    ;(async () => {
      for (let id = 1; id <= ${WORKERS}; id++) {
        const w = new Worker(body, { eval: true, workerData: { id, size: ${SIZE} } })
        await new Promise((r) => w.once('message', r))
        await new Promise((r) => setTimeout(r, 20 + Math.random() * 40))
        await w.terminate()
      }
      const ch = ipckit.Channel.fromFds([3, 4, 5])
      await ch.send('last')
      console.log('sent last')
      ch.close()
    })().catch((e) => { console.error(e); process.exit(1) })`
  const env = {
    ...process.env,
    IPCKIT_TS_REGISTER: require.resolve('tsx/cjs'),
    IPCKIT_ENTRY: join(ROOT, 'ts', 'index.ts'),
  }
  // (Its Workers each load the TypeScript sources: seconds apiece when emulated, hence the
  // longer kill deadline.)
  const writer = nodeChild(code, [], { stdio: ['pipe', 'pipe', 'pipe', ...rx.fds], env, timeoutMs: 180_000 })
  let whole = 0
  let mixed = 0
  for (;;) {
    const m = (await within(
      rx.receive({ zeroCopy: true }),
      'the last message',
      (emulated ? 6 : 2) * PATIENCE_MS,
    )) as Buffer
    if (m.length !== SIZE) {
      t.is(m.toString(), 'last')
      break
    }
    // Whole, from one Worker: all its bytes that Worker's id (three places checked, to keep up).
    const id = m[0]!
    if (!(id >= 1 && id <= WORKERS && m[SIZE >> 1] === id && m[SIZE - 1] === id)) mixed++
    whole++
  }
  t.is(mixed, 0)
  t.true(whole > 0)
  // Its message came (the lock a terminated Worker left was taken over), so the line is printed
  // or about to be: the deadline starts here, not before the Workers' seconds of sending.
  await within(writer.line(/^sent last$/), 'the last writer')
  const r = await writer.done
  t.is(r.code, 0, r.stderr)
})

test('writers opening a named channel by name (futex wakes): the name stays until all joined; the reader closing gives every writer EPIPE, waiting ones too', async (t) => {
  const name = posixName('writers')
  const rx = Channel.create({ role: 'reader', writers: 3, name, capacity: 512 })
  t.teardown(() => rx.close())
  // Each writer sends until its send fails (a full ring: they wait for room when the reader
  // closes; which writer gets the room is not fixed, so one may have sent nothing).
  const code = `const ch = ipckit.Channel.open(process.argv[2]); console.log('joined')
    ;(async () => {
      let n = 0
      try { for (;;) { await ch.send(Buffer.alloc(100, n & 0xff)); n++ } }
      catch (e) { console.log(e.code, e.syscall) }
      ch.close()
    })()`
  const kids: Array<ReturnType<typeof nodeChild>> = []
  for (let k = 0; k < 3; k++) {
    kids.push(nodeChild(code, [name]))
    await within(kids[k]!.line(/^joined$/), `writer ${k}`)
    // Until the last writer joined, the name is there for the next one.
    t.is(existsSync(`/dev/shm${name}`), k < 2, `after writer ${k}`)
  }
  for (let i = 0; i < 20; i++) t.is((await within(rx.receive(), `message ${i}`)).byteLength, 100)
  await new Promise((r) => setTimeout(r, 100)) // the ring fills up again; the writers wait for room
  rx.close()
  for (const k of kids) {
    const r = await within(k.done, 'a writer to end')
    t.is(r.stdout.trim().split('\n').pop(), 'EPIPE channel send', r.stderr)
  }
})

test('a peer that knows only version 1 refuses a channel with several writers; a single-writer channel keeps version 1', async (t) => {
  const rx = Channel.create({ role: 'reader', writers: 2, capacity: 256 })
  t.teardown(() => rx.close())
  // __test__/c/channel_peer.c checks the header with ipckit_channel_check, version 1's.
  const peer = cProgram('channel_peer')
  const r = await cChild(peer, ['produce', '10', '10'], { stdio: ['pipe', 'pipe', 'pipe', ...rx.fds] }).done
  t.is(r.code, 2)
  t.is(r.stderr.trim(), 'channel_peer: not a channel')
  const words = readFileSync(`/proc/self/fd/${rx.fds[0]}`)
  t.deepEqual([words.readUInt32LE(4), words.readUInt32LE(24), words.readUInt32LE(1024)], [2, 2, 0])
  using one = Channel.create({ capacity: 256 })
  const v1 = readFileSync(`/proc/self/fd/${one.fds[0]}`)
  t.deepEqual([v1.readUInt32LE(4), v1.readUInt32LE(24), v1.readUInt32LE(256 + 4)], [1, 0, 0])
  t.is(one.writers, 1)
})

test('bad writers options are TypeError or RangeError before any system call', (t) => {
  const name = posixName('bad-writers')
  for (const writers of [0, 257, 1.5, -1]) {
    t.like(
      t.throws(() => Channel.create({ writers, name })),
      { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' },
      String(writers),
    )
  }
  t.like(
    t.throws(() => Channel.create({ writers: '2' as unknown as number, name })),
    { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' },
  )
  t.like(
    t.throws(() => Channel.create({ writers: 2, duplex: true, name })),
    { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' },
  )
  t.false(existsSync(`/dev/shm${name}`))
})

test('in one process: a writer waiting for the lock or room aborts or closes taking nothing; each writer joins once (EBUSY)', async (t) => {
  const rx = Channel.create({ role: 'reader', writers: 2, capacity: 256 })
  t.teardown(() => rx.close())
  const dup = () => rx.fds.map((fd) => native.socketDuplicate(fd))
  const a = Channel.fromFds(dup())
  const b = Channel.fromFds(dup())
  t.teardown(() => {
    a.close()
    b.close()
  })
  const extra = dup()
  t.like(
    t.throws(() => Channel.fromFds(extra)),
    { code: 'EBUSY' },
  )
  for (const fd of extra) native.socketDuplicate(fd) // still the caller's: a valid descriptor
  // 2 × 120-byte records fill 256 bytes: a's third send and b's waiting sends wait for room.
  a.sendSync(Buffer.alloc(120, 1))
  b.sendSync(Buffer.alloc(120, 2))
  const ac = new AbortController()
  const aborted = a.send(Buffer.alloc(120, 3), { signal: ac.signal })
  const closed = b.send(Buffer.alloc(120, 4))
  const later = a.send(Buffer.alloc(8, 5))
  ac.abort()
  await t.throwsAsync(aborted, { instanceOf: AbortError })
  b.close()
  await t.throwsAsync(closed, { instanceOf: AbortError })
  t.deepEqual(rx.receiveSync(), Buffer.alloc(120, 1))
  t.deepEqual(rx.receiveSync(), Buffer.alloc(120, 2))
  await within(later, 'the send after room was made')
  t.deepEqual(await rx.receive(), Buffer.alloc(8, 5))
  t.like(
    t.throws(() => rx.receiveSync({ wait: false })),
    { code: 'EAGAIN' },
  )
  a.close()
  // Both writers closed: the end, for await finishes.
  const rest: unknown[] = []
  for await (const m of rx) rest.push(m)
  t.deepEqual(rest, [])
  t.true(rx.writers === 2 && a.writers === 2)
  t.true((t.throws(() => rx.receiveSync()) as IpcError).code === 'EPIPE')
})
