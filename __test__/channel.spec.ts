/**
 * Channel: messages through a ring in shared memory. Every multi-process test has a real peer:
 * a Node child given the descriptors as stdio, or over a UNIX socket, or opening the channel
 * by name; and a C program written from include/ipckit/channel.h alone
 * (`__test__/c/channel_peer.c`), in both directions. A hostile peer (indices and lengths
 * corrupted in the shared header) must give EPROTO, never a crash or a read out of bounds; a
 * writer killed in the middle of a message must never expose a part of it; a dead peer ends
 * waits with an error. The copying path (runtimes without external buffers) runs the same
 * checks in a child with IPCKIT_NO_ZERO_COPY=1.
 */

import { execFileSync } from 'node:child_process'
import { closeSync, existsSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { deserialize, serialize } from 'node:v8'

import anyTest from 'ava'

import { AbortError, Channel, IPC_PRIVATE, IpcError, socketpair } from '../ts/index'
import { native } from '../ts/native'
import {
  cChild,
  compileC,
  fdsLeftOpen,
  fdSnapshot,
  freshKey,
  keyExists,
  linuxOnly,
  NOBODY,
  nodeChild,
  posixName,
  removeBuilds,
  ROOT,
  runNode,
  runNodeUnder,
  sleep,
  sysvIds,
  within,
} from './helpers'

/** memfd and eventfd are Linux's. */
const test = linuxOnly(anyTest, 'Channel needs memfd and eventfd (Linux)')

anyTest.after.always(removeBuilds)

const HEADER = join(ROOT, 'include', 'ipckit', 'channel.h')

/** The C peer, compiled against the repository's header. */
function cPeer(): string {
  const source = readFileSync(join(__dirname, 'c', 'channel_peer.c'), 'utf8').replace(
    '"ipckit/channel.h"',
    JSON.stringify(HEADER),
  )
  return compileC('channel_peer', source)
}

/** Byte offsets of the shared words (include/ipckit/channel.h). */
const RING0 = 256
const TAIL = 0
const HEAD = 64
const DATA = 4096

/** Writes a 32-bit word into a channel's memory through its memfd (as a hostile peer would). */
function poke(memfd: number, offset: number, value: number): void {
  const fd = openSync(`/proc/self/fd/${memfd}`, 'r+')
  try {
    const b = Buffer.alloc(4)
    b.writeUInt32LE(value >>> 0)
    writeSync(fd, b, 0, 4, offset)
  } finally {
    closeSync(fd)
  }
}

function peek(memfd: number, offset: number): number {
  return readFileSync(`/proc/self/fd/${memfd}`).readUInt32LE(offset)
}

const bytes = (i: number, n: number) => Buffer.from(Array.from({ length: n }, (_, k) => (i * 31 + k) & 0xff))

test('send and receive bytes, strings and typed arrays; post and receive values; in order', async (t) => {
  using pair = Channel.pair({ capacity: 4096 })
  const [tx, rx] = pair
  t.true(tx.canSend && !tx.canReceive && rx.canReceive && !rx.canSend)
  t.is(tx.maxMessageSize, 4088)
  await tx.send(Buffer.from([1, 2, 3]))
  await tx.send('héllo')
  await tx.send(new Uint16Array([0x0102, 0x0304]))
  tx.sendSync(new DataView(new Uint8Array([9, 8, 7]).buffer, 1, 2))
  await tx.send(Buffer.alloc(0))
  await tx.post({ n: 1, at: new Date(5), m: new Map([['k', 2n]]), s: new Set(['x']) })
  tx.postSync([undefined, null, 'two'])
  t.deepEqual(await rx.receive(), Buffer.from([1, 2, 3]))
  t.is(String(await rx.receive()), 'héllo')
  t.deepEqual(rx.receiveSync(), Buffer.from(new Uint16Array([0x0102, 0x0304]).buffer))
  t.deepEqual(await rx.receive(), Buffer.from([8, 7]))
  t.deepEqual(rx.receiveSync(), Buffer.alloc(0))
  t.deepEqual(await rx.receive(), { n: 1, at: new Date(5), m: new Map([['k', 2n]]), s: new Set(['x']) })
  t.deepEqual(rx.receiveSync(), [undefined, null, 'two'])
  t.like(
    t.throws(() => rx.receiveSync({ wait: false }), { instanceOf: IpcError }),
    { code: 'EAGAIN', syscall: 'channel receive', errno: -11 },
  )
  // Each payload is a copy of its own: its ArrayBuffer holds that message and nothing else.
  await tx.send('abc')
  const got = await rx.receive()
  t.is(got.buffer.byteLength <= 64 ? got.byteLength : got.buffer.byteLength, 3)
  // Records wrap around the ring's end many times, whole and in order.
  const sent: Buffer[] = []
  for (let i = 0; i < 2000; i++) {
    const m = bytes(i, (i * 37) % 300)
    sent.push(m)
    tx.sendSync(m)
    t.deepEqual(rx.receiveSync(), m)
  }
})

test('arguments are checked before anything is written: TypeError, RangeError, ERR_INVALID_STATE', async (t) => {
  t.throws(() => Channel.create({ capacity: 1000 }), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => Channel.create({ capacity: 32 }), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => Channel.create({ capacity: '4096' as never }), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => Channel.create({ duplex: 1 as never }), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => Channel.create({ name: 'no-slash' }), { code: 'ERR_INVALID_ARG_VALUE' })
  t.throws(() => Channel.fromFds([3, 4] as never), { instanceOf: TypeError })
  t.throws(() => Channel.fromFds([-1, 4, 5]), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => Channel.open(true as never), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => Channel.open(2 ** 32), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => Channel.fromId(-1), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => Channel.create({ key: 'k' as never }), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' })
  using pair = Channel.pair({ capacity: 256 })
  const [tx, rx] = pair
  const tail = peek(tx.fds[0]!, RING0 + TAIL)
  // The largest message is the capacity less 8; one byte more is a RangeError, and the ring
  // is untouched.
  await t.throwsAsync(tx.send(Buffer.alloc(249)), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => tx.sendSync(Buffer.alloc(249)), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' })
  await t.throwsAsync(tx.post('x'.repeat(300)), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' })
  await t.throwsAsync(tx.send(42 as never), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' })
  // A value v8.serialize cannot clone.
  await t.throwsAsync(tx.post({ f() {} }), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_VALUE' })
  t.throws(() => tx.postSync(Symbol('s')), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_VALUE' })
  await t.throwsAsync(tx.send('x', { signal: 'no' as never }), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => tx.sendSync('x', { wait: 'no' as never }), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' })
  await t.throwsAsync(rx.receive({ zeroCopy: 1 as never }), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' })
  t.is(peek(tx.fds[0]!, RING0 + TAIL), tail)
  t.throws(() => rx.receiveSync({ wait: false }), { code: 'EAGAIN' })
  tx.sendSync(Buffer.alloc(248, 7))
  t.deepEqual(rx.receiveSync(), Buffer.alloc(248, 7))
  // Directions of a one-way channel.
  await t.throwsAsync(tx.receive(), { code: 'ERR_INVALID_STATE' })
  t.throws(() => rx.sendSync('x'), { code: 'ERR_INVALID_STATE' })
  // A third end: both sides are claimed.
  const dups = tx.fds.map((fd) => native.socketDuplicate(fd))
  t.like(
    t.throws(() => Channel.fromFds(dups), { instanceOf: IpcError }),
    { code: 'EBUSY' },
  )
  for (const fd of dups) closeSync(fd)
  // Descriptors that are not a channel's.
  const [s1, s2] = socketpair('seqpacket')
  t.like(
    t.throws(() => Channel.fromFds([s1.fd, s2.fd, s2.fd])),
    { code: 'EINVAL' },
  )
  s1.close()
  s2.close()
})

test('a message whose length or byteLength lies (an own property, a subclass getter) is sent whole, or refused as too large, never past its record', async (t) => {
  using pair = Channel.pair({ capacity: 256 })
  const [tx, rx] = pair
  const liar = (b: Buffer, n: number) => {
    Object.defineProperty(b, 'length', { value: n })
    Object.defineProperty(b, 'byteLength', { value: n })
    return b
  }
  class Short extends Uint8Array {
    override get length(): number {
      return 1
    }
    override get byteLength(): number {
      return 1
    }
  }
  // Each is copied as the engine knows it, all of it: a record of its real size.
  await tx.send(liar(Buffer.from('hello, world'), 2))
  tx.sendSync(new Short(Buffer.from('subclass')))
  // (post carries what v8.serialize makes of it, as structured clone would: its own business.)
  const posted = liar(Buffer.from('posted'), 1)
  await tx.post(posted)
  await tx.send('next')
  t.deepEqual(rx.receiveSync(), Buffer.from('hello, world'))
  t.deepEqual(rx.receiveSync(), Buffer.from('subclass'))
  t.deepEqual(rx.receiveSync(), deserialize(serialize(posted)))
  t.deepEqual(rx.receiveSync(), Buffer.from('next'))
  // Too large for the ring whatever it says: refused before anything is written.
  await t.throwsAsync(tx.send(liar(Buffer.alloc(249), 8)), { code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => tx.sendSync(liar(Buffer.alloc(249), 8)), { code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => rx.receiveSync({ wait: false }), { code: 'EAGAIN' })
})

test('backpressure: await send waits while the ring is full, in order; sendSync wait:false is EAGAIN', async (t) => {
  using pair = Channel.pair({ capacity: 256 })
  const [tx, rx] = pair
  // 72-byte records: three fit in 256 bytes.
  const sends = Array.from({ length: 10 }, (_, i) => tx.send(Buffer.alloc(64, i)))
  const settled: number[] = []
  sends.forEach((p, i) => p.then(() => settled.push(i)))
  await sleep(30)
  t.deepEqual(settled, [0, 1, 2])
  t.throws(() => tx.sendSync('x'), { code: 'ERR_INVALID_STATE' })
  for (let i = 0; i < 10; i++) t.deepEqual(await within(rx.receive(), `message ${i}`), Buffer.alloc(64, i))
  await Promise.all(sends)
  t.deepEqual(settled, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
  // Four 64-byte records fill the 256 bytes.
  for (let i = 0; i < 4; i++) tx.sendSync(Buffer.alloc(56))
  t.like(
    t.throws(() => tx.sendSync('x', { wait: false }), { instanceOf: IpcError }),
    { code: 'EAGAIN', syscall: 'channel send' },
  )
  // An aborted send wrote nothing: the reader gets the four before it, then the one after.
  const ac = new AbortController()
  const aborted = tx.send('aborted', { signal: ac.signal })
  const after = tx.send('after')
  ac.abort()
  await t.throwsAsync(aborted, { instanceOf: AbortError })
  for (let i = 0; i < 4; i++) t.deepEqual(rx.receiveSync(), Buffer.alloc(56))
  await after
  t.is(String(rx.receiveSync()), 'after')
  t.throws(() => rx.receiveSync({ wait: false }), { code: 'EAGAIN' })
})

test('receive waits on the event loop; abort and close take nothing; for await ends when the writer closes', async (t) => {
  const [tx, rx] = Channel.pair()
  const ac = new AbortController()
  const first = rx.receive({ signal: ac.signal })
  await sleep(10)
  ac.abort(new Error('stop'))
  const err = await t.throwsAsync(first, { instanceOf: AbortError })
  t.is((err!.cause as Error).message, 'stop')
  const later = rx.receive()
  setTimeout(() => tx.sendSync('later'), 20)
  t.is(String(await within(later, 'the receive after the abort')), 'later')
  // for await: takes what comes, ends (no error) once the writer closed and the ring is drained.
  const got: string[] = []
  const loop = (async () => {
    for await (const m of rx) got.push(String(m))
  })()
  for (let i = 0; i < 50; i++) await tx.send(`m${i}`)
  tx.close()
  await within(loop, 'the loop to end')
  t.deepEqual(
    got,
    Array.from({ length: 50 }, (_, i) => `m${i}`),
  )
  t.like(await t.throwsAsync(rx.receive()), { code: 'EPIPE', syscall: 'channel receive' })
  t.throws(() => tx.sendSync('x'), { code: 'ERR_INVALID_STATE' })
  // close() here ends a pending receive with an AbortError whose cause is ERR_INVALID_STATE.
  const [a, b] = Channel.pair({ duplex: true })
  const pending = a.receive()
  a.close()
  const closed = await t.throwsAsync(pending, { instanceOf: AbortError })
  t.is((closed!.cause as { code?: string }).code, 'ERR_INVALID_STATE')
  a.close() // idempotent
  t.true(a.closed)
  t.like(await t.throwsAsync(b.send('x')), { code: 'EPIPE', syscall: 'channel send' })
  b.close()
  rx.close()
})

test('break leaves the next message in the ring; await using settles every wait', async (t) => {
  using pair = Channel.pair()
  const [tx, rx] = pair
  for (const m of ['a', 'b', 'c']) tx.sendSync(m)
  for await (const m of rx.messages()) {
    t.is(String(m), 'a')
    break
  }
  t.is(String(rx.receiveSync()), 'b')
  t.is(String(await rx.receive()), 'c')
  let settled = false
  {
    await using ch = Channel.create({ role: 'reader' })
    ch.receive().catch(() => (settled = true))
  }
  t.true(settled)
})

test('zero-copy receive: a view of the ring, valid until the next receive, which neuters it', async (t) => {
  using pair = Channel.pair({ capacity: 1024 })
  const [tx, rx] = pair
  tx.sendSync(bytes(1, 100))
  tx.sendSync(bytes(2, 100))
  const view = await rx.receive({ zeroCopy: true })
  t.deepEqual(Buffer.from(view), bytes(1, 100))
  t.is(view.buffer.byteLength, 100) // its own ArrayBuffer over those bytes only
  // Nothing is freed while the view lives: the writer cannot reuse its bytes.
  t.is(peek(tx.fds[0]!, RING0 + HEAD), 0)
  const second = rx.receiveSync({ zeroCopy: true })
  t.is(view.byteLength, 0) // neutered
  t.is(peek(tx.fds[0]!, RING0 + HEAD), 112)
  t.deepEqual(Buffer.from(second), bytes(2, 100))
  // A message that wraps around the end of the ring comes as a copy, whole, held as a view
  // is (neutered at the next receive), in memory of its own length; the copy's memory is
  // reused for the next wrapped message of that length, and a copy the caller moved away
  // (transferred) stays theirs.
  let wrapped = 0
  let previous: Buffer | undefined
  let previousBytes: Buffer | undefined
  for (let i = 0; i < 40; i++) {
    const before = peek(tx.fds[0]!, RING0 + TAIL) % 1024
    tx.sendSync(bytes(i, 200))
    const m = rx.receiveSync({ zeroCopy: true })
    const wraps = before + 8 + 200 > 1024
    if (wraps) wrapped++
    t.deepEqual(Buffer.from(m), bytes(i, 200), `message ${i}`)
    t.is(m.buffer.byteLength, 200, `message ${i}: memory of its own length`)
    if (previous !== undefined) {
      t.is(previous.byteLength, 0, `message ${i - 1} neutered by the next receive`)
      t.true(previousBytes!.equals(bytes(i - 1, 200)))
    }
    previous = m
    previousBytes = Buffer.from(m)
    if (wraps && wrapped === 4) structuredClone(m.buffer, { transfer: [m.buffer as ArrayBuffer] })
  }
  t.true(wrapped >= 6, `${wrapped} of 40 messages wrapped`)
  rx.close()
  t.is(second.byteLength, 0)
  t.is(previous!.byteLength, 0)
})

// Serial: it counts the channel's mappings in /proc/self/maps.
test.serial(
  "zero-copy receive of a message that wraps around the ring's end: in place too, through a second mapping of the ring twice over (memfd, named: the end that holds the descriptor), else copied (System V)",
  async (t) => {
    const page = Number(execFileSync('getconf', ['PAGESIZE'], { encoding: 'utf8' }).trim())
    const capacity = 1 << 16
    // The ring's data must start and end on page boundaries for a second mapping of it.
    const mirrored = capacity % page === 0 && DATA % page === 0
    if (!mirrored)
      t.log(`page size ${page}: ring data not page-aligned here, wrapped messages are copied (checked above)`)
    const maps = (what: string) =>
      readFileSync('/proc/self/maps', 'utf8')
        .split('\n')
        .filter((l) => l.includes(what)).length
    const size = 20_000
    const record = 8 + size
    // [kind, [writer, reader], what its mappings show in /proc/self/maps, whether the reader holds a descriptor]
    const kinds: Array<[string, () => [Channel, Channel], string, boolean]> = [
      ['memfd', () => Channel.pair({ capacity }), 'ipckit-channel', true],
      [
        'named',
        () => {
          const name = posixName('mirror')
          const rx = Channel.create({ name, capacity, role: 'reader' })
          return [Channel.open(name), rx]
        },
        '/dev/shm/',
        true,
      ],
      [
        'System V',
        () => {
          const tx = Channel.create({ key: IPC_PRIVATE, capacity })
          return [tx, Channel.fromId(tx.id!)]
        },
        '/SYSV',
        false,
      ],
    ]
    for (const [kind, make, mapped, hasFd] of kinds) {
      const before = maps(mapped)
      const [tx, rx] = make()
      let pos = 0
      let wrapped = 0
      let previous: Buffer | undefined
      for (let i = 0; i < 20; i++) {
        const wraps = pos + record > capacity
        tx.sendSync(bytes(i, size))
        const m = rx.receiveSync({ zeroCopy: true })
        t.true(m.equals(bytes(i, size)), `${kind}: message ${i}`)
        t.is(m.buffer.byteLength, size, `${kind}: message ${i} has an ArrayBuffer of its own length`)
        if (previous !== undefined)
          t.is(previous.byteLength, 0, `${kind}: message ${i - 1} neutered by the next receive`)
        if (wraps) {
          wrapped++
          if (mirrored && hasFd) {
            // In place: its room is not freed until the next receive (a copy frees it at once),
            // and the ring is mapped a second time, twice over, for it.
            if (kind === 'memfd')
              t.is(peek(tx.fds[0]!, RING0 + HEAD), i * record, `${kind}: message ${i} held in the ring`)
            t.true(maps(mapped) > before + 2, `${kind}: the ring's second mapping, twice over`)
            // Writing through the view writes the ring (both halves of the mirror are it).
            if (kind === 'memfd') {
              m[size - 1] = m[size - 1]! ^ 0xff
              const ring = readFileSync(`/proc/self/fd/${tx.fds[0]!}`)
              const at = DATA + ((pos + 8 + size - 1) % capacity)
              t.is(ring[at], bytes(i, size)[size - 1]! ^ 0xff, `${kind}: the view is the ring's memory`)
            }
          } else if (kind === 'memfd') {
            t.is(peek(tx.fds[0]!, RING0 + HEAD), (i + 1) * record, `${kind}: message ${i} copied, room freed`)
          }
        }
        previous = m
        pos = (pos + record) % capacity
      }
      t.true(wrapped >= 5, `${kind}: ${wrapped} of 20 messages wrapped`)
      tx.close()
      rx.close()
      t.is(previous!.byteLength, 0, `${kind}: the last view neutered by close()`)
      t.is(maps(mapped), before, `${kind}: every mapping of the channel is gone after close()`)
    }
  },
)

test('a Node child given the descriptors as stdio echoes 500 messages of every size, both sides async', async (t) => {
  const ch = Channel.create({ duplex: true, capacity: 4096 })
  t.teardown(() => ch.close())
  const child = nodeChild(
    `const ch = ipckit.Channel.fromFds([3, 4, 5]); console.log('ready')
     ;(async () => { for await (const m of ch) await ch.send(Buffer.from(m).reverse()); ch.close() })()`,
    [],
    { stdio: ['pipe', 'pipe', 'pipe', ...ch.fds] },
  )
  const sends: Array<Promise<void>> = []
  for (let i = 0; i < 500; i++) sends.push(ch.send(bytes(i, (i * 53) % 4000)))
  // Awaited below; handled now so that a failure is reported once, not once per pending send.
  const allSent = Promise.all(sends)
  allSent.catch(() => {})
  // The child's start (seconds under emulation, on a loaded machine) is no part of a reply's deadline.
  await child.line(/^ready$/)
  for (let i = 0; i < 500; i++) {
    const got = await within(ch.receive(), `reply ${i}`)
    t.deepEqual(got, bytes(i, (i * 53) % 4000).reverse(), `reply ${i}`)
  }
  await allSent
  ch.close()
  const r = await child.done
  t.is(r.code, 0, r.stderr)
})

// Serial: it counts the process's descriptors.
test.serial('descriptors sent over a UNIX socket: the receiver opens the channel and posts values back', async (t) => {
  const [mine, theirs] = socketpair('seqpacket')
  t.teardown(() => mine.close())
  const child = nodeChild(
    `const sock = ipckit.UnixSeqpacketSocket.fromFd(3, { acceptFds: true })
     ;(async () => {
       const { fds } = await sock.receive()
       const ch = ipckit.Channel.fromFds(fds)
       for (let i = 0; i < 100; i++) await ch.post({ i, pid: process.pid })
       ch.close(); sock.close()
     })()`,
    [],
    { stdio: ['pipe', 'pipe', 'pipe', theirs.fd] },
  )
  theirs.close()
  const before = fdSnapshot()
  {
    using ch = Channel.create({ role: 'reader' })
    await mine.send('channel', { fds: [...ch.fds] })
    const got: unknown[] = []
    for await (const v of ch) got.push(v)
    t.deepEqual(
      got,
      Array.from({ length: 100 }, (_, i) => ({ i, pid: child.pid })),
    )
  }
  t.is((await child.done).code, 0)
  t.deepEqual(await fdsLeftOpen(before), [])
})

test('a named channel: an unrelated process opens it by name, which removes the name; futex wakes', async (t) => {
  const name = posixName('channel')
  const ch = Channel.create({ name, duplex: true, capacity: 4096 })
  t.teardown(() => ch.close())
  t.is(ch.name, name)
  t.true(existsSync(`/dev/shm${name}`))
  t.deepEqual(ch.fds, [])
  const child = nodeChild(
    `const ch = ipckit.Channel.open(process.argv[2]); console.log('ready')
     ;(async () => { for await (const m of ch) await ch.post({ echo: String(m) }); ch.close() })()`,
    [name],
  )
  await child.line(/^ready$/)
  for (let i = 0; i < 200; i++) {
    await ch.send(`n${i}`)
    t.deepEqual(await within(ch.receive(), `reply ${i}`), { echo: `n${i}` })
  }
  t.false(existsSync(`/dev/shm${name}`))
  ch.close()
  t.is((await child.done).code, 0)
  t.like(
    t.throws(() => Channel.open(name), { instanceOf: IpcError }),
    { code: 'ENOENT', syscall: 'shm_open' },
  )
  // Closed before anyone opened it: the name goes with it.
  const unopened = posixName('channel-unopened')
  Channel.create({ name: unopened }).close()
  t.false(existsSync(`/dev/shm${unopened}`))
})

test('a System V channel: another process opens it by key (or by id for IPC_PRIVATE), which removes the segment', async (t) => {
  const key = freshKey('shm')
  const ch = Channel.create({ key, duplex: true, capacity: 4096 })
  t.teardown(() => ch.close())
  const id = ch.id!
  t.true(sysvIds('shm').has(id))
  t.true(keyExists('shm', key))
  t.throws(() => Channel.create({ key, name: '/x' }), { code: 'ERR_INVALID_ARG_VALUE' })
  t.like(
    t.throws(() => Channel.create({ key }), { instanceOf: IpcError }),
    { code: 'EEXIST', syscall: 'shmget' },
  )
  const echo = `;(async () => { for await (const m of ch) await ch.post({ echo: String(m), pid: process.pid }); ch.close() })()`
  const byKey = nodeChild(`const ch = ipckit.Channel.open(Number(process.argv[2])); console.log('ready')${echo}`, [
    String(key),
  ])
  await byKey.line(/^ready$/)
  for (let i = 0; i < 100; i++) {
    await ch.send(`k${i}`)
    t.deepEqual(await within(ch.receive(), `reply ${i}`), { echo: `k${i}`, pid: byKey.pid })
  }
  t.false(keyExists('shm', key))
  ch.close()
  t.is((await byKey.done).code, 0)
  t.false(sysvIds('shm').has(id))
  // IPC_PRIVATE: only the id finds it.
  const priv = Channel.create({ key: IPC_PRIVATE, capacity: 256, role: 'reader' })
  t.teardown(() => priv.close())
  t.throws(() => Channel.open(IPC_PRIVATE), { code: 'ERR_INVALID_ARG_VALUE' })
  const byId = nodeChild(
    `const ch = ipckit.Channel.fromId(Number(process.argv[2])); for (let i = 0; i < 50; i++) ch.sendSync('p' + i); ch.close()`,
    [String(priv.id)],
  )
  const got: string[] = []
  for await (const m of priv) got.push(String(m))
  t.deepEqual(
    got,
    Array.from({ length: 50 }, (_, i) => `p${i}`),
  )
  t.is((await byId.done).code, 0)
  const privId = priv.id!
  priv.close()
  t.false(sysvIds('shm').has(privId))
  // Closed before anyone attached: the segment goes with it.
  const unopened = Channel.create({ key: IPC_PRIVATE })
  const unopenedId = unopened.id!
  unopened.close()
  t.false(sysvIds('shm').has(unopenedId))
  t.like(
    t.throws(() => Channel.fromId(unopenedId), { instanceOf: IpcError }),
    { syscall: 'shmat' },
  )
})

test('a C program written from the header is a peer in both directions', async (t) => {
  const exe = cPeer()
  // Duplex echo: C reverses every message, flags kept (post() values come back reversed bytes).
  const ch = Channel.create({ duplex: true, capacity: 1024 })
  t.teardown(() => ch.close())
  const echo = cChild(exe, ['echo'], { stdio: ['pipe', 'pipe', 'pipe', ...ch.fds] })
  t.is(await echo.line(/^ready/), 'ready side 1')
  for (let i = 0; i < 1000; i++) {
    const m = bytes(i, (i * 29) % 1000)
    await ch.send(m)
    t.deepEqual(await within(ch.receive(), `echo ${i}`), Buffer.from(m).reverse())
  }
  ch.close()
  t.is((await echo.done).code, 0)
  // C writes, Node reads: every message whole, with its flags (odd ones are "posted": here
  // they are not v8 values, so receiving them as values fails; check the bytes via flags 0 ones).
  const rx = Channel.create({ role: 'reader', capacity: 512 })
  t.teardown(() => rx.close())
  const producer = cChild(exe, ['produce', '1000', '100'], { stdio: ['pipe', 'pipe', 'pipe', ...rx.fds] })
  let n = 0
  for (;;) {
    let m: unknown
    try {
      m = await within(rx.receive(), `message ${n}`)
    } catch (err) {
      if ((err as IpcError).code === 'EPIPE') break
      // Odd messages carry the "posted" flag over bytes that are no v8 value.
      t.is(n % 2, 1, String(err))
      n++
      continue
    }
    t.is(n % 2, 0)
    t.deepEqual(m, Buffer.from(Array.from({ length: 100 }, (_, k) => (n + k) & 0xff)), `message ${n}`)
    n++
  }
  t.is(n, 1000)
  t.is((await producer.done).code, 0)
  // Node writes, C reads.
  const tx = Channel.create({ capacity: 256 })
  t.teardown(() => tx.close())
  const consumer = cChild(exe, ['consume'], { stdio: ['pipe', 'pipe', 'pipe', ...tx.fds] })
  let sum = 0
  let total = 0
  for (let i = 0; i < 1000; i++) {
    const m = bytes(i, i % 200)
    for (const b of m) sum += b
    total += m.length
    await tx.send(m)
  }
  tx.close()
  t.is(await within(consumer.line(/^count/), 'the count'), `count 1000 bytes ${total} sum ${sum}`)
  t.is((await consumer.done).code, 0)
})

test('a writer killed in the middle of a message exposes nothing of it; the reader gets ECONNRESET, not a hang', async (t) => {
  const exe = cPeer()
  const rx = Channel.create({ role: 'reader', capacity: 256 })
  t.teardown(() => rx.close())
  const crash = cChild(exe, ['crash'], { stdio: ['pipe', 'pipe', 'pipe', ...rx.fds] })
  t.is(String(await within(rx.receive(), 'the whole message')), 'whole')
  t.is((await crash.done).signal, 'SIGKILL')
  // The torn record's header is in the ring, unpublished.
  t.is(peek(rx.fds[0]!, DATA + 16), 64)
  const err = await within(t.throwsAsync(rx.receive(), { instanceOf: IpcError }), 'the receive to fail')
  t.like(err, { code: 'ECONNRESET', syscall: 'channel receive', errno: -104 })
  t.like(
    t.throws(() => rx.receiveSync()),
    { code: 'ECONNRESET' },
  )
})

test('a peer that dies while the other side waits ends its waits with an error: receive, send, receiveSync', async (t) => {
  // A pending receive, then a pending send on a full ring (duplex: the child reads nothing).
  const ch = Channel.create({ duplex: true, capacity: 256 })
  t.teardown(() => ch.close())
  const child = nodeChild(
    `const ch = ipckit.Channel.fromFds([3, 4, 5]); console.log('open'); setInterval(() => {}, 1000)`,
    [],
    {
      stdio: ['pipe', 'pipe', 'pipe', ...ch.fds],
    },
  )
  await child.line(/open/)
  const receive = ch.receive()
  for (let i = 0; i < 3; i++) await ch.send(Buffer.alloc(64))
  const send = ch.send(Buffer.alloc(64))
  await sleep(50)
  child.kill('SIGKILL')
  await t.throwsAsync(within(receive, 'the receive to end'), { code: 'ECONNRESET' })
  t.like(await t.throwsAsync(within(send, 'the send to end')), { code: 'EPIPE', syscall: 'channel send' })
  // receiveSync blocks this thread: run it in a child whose peer (a grandchild) dies.
  const r = await nodeChild(
    `const { spawn } = require('child_process')
     const ch = ipckit.Channel.create({ role: 'reader' })
     const peer = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 150)'], { stdio: 'ignore' })
     // The grandchild only claims the side through the header, as any peer may.
     const fd = require('fs').openSync('/proc/self/fd/' + ch.fds[0], 'r+')
     const b = Buffer.alloc(4); b.writeUInt32LE(peer.pid); require('fs').writeSync(fd, b, 0, 4, 64)
     const t0 = Date.now()
     try { ch.receiveSync() } catch (e) { console.log(e.code, Date.now() - t0 < 10000) }`,
  ).done
  t.is(r.stdout.trim(), 'ECONNRESET true', r.stderr)
})

test('receiveSync whose peer was gone before this end first looked at it: ECONNRESET at once, not a sleep for ever', async (t) => {
  // The side is claimed by a process that has exited and been reaped: pidfd_open says ESRCH
  // at the first sleep. That sleep used to start anyway, with nothing left to end it (a yield
  // before it, giving the peer time to go, made the Worker test below hang now and then).
  const r = await nodeChild(
    `const ch = ipckit.Channel.create({ role: 'reader' })
     const gone = require('child_process').spawnSync(process.execPath, ['-e', '0']).pid
     const fd = require('fs').openSync('/proc/self/fd/' + ch.fds[0], 'r+')
     const b = Buffer.alloc(4); b.writeUInt32LE(gone); require('fs').writeSync(fd, b, 0, 4, 64)
     try { ch.receiveSync(); console.log('a message?') } catch (e) { console.log(e.code, e.syscall, e.message.includes('process or Worker thread ' + gone)) }`,
    [],
    { timeoutMs: 20_000 },
  ).done
  t.is(r.stdout.trim(), 'ECONNRESET channel receive true', r.stderr)
})

test('an end held by a Worker ends with the Worker (terminated, or done without close()): ECONNRESET / EPIPE, not a hang while its process lives', async (t) => {
  // Each end stores its JavaScript thread's id, and the other end watches that thread: a
  // pidfd of the thread alone (PIDFD_THREAD, Linux 6.9 and later), or, forced here as on older
  // kernels, a look at the thread every 50 ms. Before, the end stored the pid, alive all
  // along, and each case below waited for ever. The Workers open named channels (descriptors
  // of their own: one of this process's descriptor numbers would have two owners).
  // Emulated (qemu-user, QEMU_LD_PREFIX set by scripts/test-targets.sh), each Worker takes
  // seconds to load the TypeScript sources: longer deadlines there.
  const emulated = process.env.QEMU_LD_PREFIX !== undefined
  const code = `const { Worker } = require('node:worker_threads')
    const { once } = require('node:events')
    const { Channel } = ipckit
    const [prefix] = process.argv.slice(2)
    const within = (p, what) => Promise.race([p, new Promise((_, no) => setTimeout(() => no(new Error('no end: ' + what)), ${emulated ? 120_000 : 20_000}).unref())])
    const worker = (body, name) => new Worker('const { workerData, parentPort } = require("node:worker_threads"); require(' +
      JSON.stringify(process.env.IPCKIT_TS_REGISTER) + '); const { Channel } = require(' + JSON.stringify(process.env.IPCKIT_ENTRY) + '); ' + body,
      { eval: true, workerData: { name } })
    // Who the message names: a Worker's thread, or (one gone before this end first looked at
    // it) "process or Worker thread N", which cannot tell; a process would be wrong.
    const who = (m) => /thread \\d+ \\(a Worker's\\)|process or Worker thread \\d+/.test(m) ? 'a Worker' : /process \\d+/.test(m) ? 'a process' : /\\d+ of \\d+ exited without closing/.test(m) ? 'writers' : '? ' + m
    const ended = (e) => e.code + ' ' + e.syscall + ' ' + who(e.message)
    const drain = async (ch) => {
      const got = []
      try { for await (const m of ch) got.push(String(m)); got.push('ended') } catch (e) { got.push(ended(e)) }
      return got
    }
    ;(async () => {
      const out = {}
      // 1. Duplex: a Worker echoes, then is terminated while it waits; here a receive waits.
      {
        const ch = Channel.create({ duplex: true, capacity: 256, name: prefix + '-1' })
        const w = worker('const ch = Channel.open(workerData.name); (async () => { for await (const m of ch) await ch.send(m) })()', prefix + '-1')
        await ch.send('ping')
        const echo = String(await within(ch.receive(), 'echo'))
        const pending = ch.receive()
        await w.terminate()
        const r = await within(pending.then(() => 'a message?', ended), 'receive')
        const s = await ch.send('x').then(() => 'sent?', ended)
        out.duplex = [echo, r, s]
        ch.close()
      }
      // 2. A Worker that sends two messages and ends without close(): both, then ECONNRESET.
      {
        const ch = Channel.create({ role: 'reader', name: prefix + '-2' })
        const w = worker('const ch = Channel.open(workerData.name); ch.sendSync("a"); ch.sendSync("b")', prefix + '-2')
        await once(w, 'exit')
        out.ended = await within(drain(ch), 'the end of the input')
        ch.close()
      }
      // 3. receiveSync blocks a Worker; the writer, another Worker, is terminated.
      {
        const r = worker('const ch = Channel.create({ role: "reader", name: workerData.name }); parentPort.postMessage("made");' +
          'parentPort.once("message", () => { parentPort.postMessage(String(ch.receiveSync()));' +
          '  try { ch.receiveSync(); parentPort.postMessage("a message?") } catch (e) { parentPort.postMessage(e.code + " " + e.syscall) } })', prefix + '-3')
        await once(r, 'message')
        const w = worker('const ch = Channel.open(workerData.name); ch.sendSync("w"); parentPort.postMessage("sent"); setInterval(() => {}, 1000)', prefix + '-3')
        await once(w, 'message')
        r.postMessage('go')
        const [first] = await within(once(r, 'message'), 'the first receiveSync')
        await w.terminate()
        const [second] = await within(once(r, 'message'), 'the blocked receiveSync')
        out.sync = [first, second]
        await r.terminate()
      }
      // 4. Several writers: a Worker's slot dies with it; the input ends once the other closed.
      {
        const rx = Channel.create({ role: 'reader', writers: 2, name: prefix + '-4' })
        const w = worker('const ch = Channel.open(workerData.name); ch.sendSync("from the worker"); parentPort.postMessage("sent"); setInterval(() => {}, 1000)', prefix + '-4')
        await once(w, 'message')
        const tx = Channel.open(prefix + '-4')
        await tx.send('from main')
        tx.close()
        await w.terminate()
        out.writers = (await within(drain(rx), 'the end of the writers')).sort()
        rx.close()
      }
      console.log(JSON.stringify(out))
    })().catch((e) => { console.error(e); process.exit(1) })`
  const expected = {
    duplex: ['ping', 'ECONNRESET channel receive a Worker', 'EPIPE channel send a Worker'],
    ended: ['a', 'b', 'ECONNRESET channel receive a Worker'],
    sync: ['w', 'ECONNRESET channel receive'],
    writers: ['ECONNRESET channel receive writers', 'from main', 'from the worker'],
  }
  // Emulated, only the pidfd of the thread: the look every 50 ms is the same JavaScript on
  // every platform, and five more Workers there take minutes.
  for (const forced of emulated ? [false] : [false, true]) {
    const prefix = posixName(forced ? 'worker-looked' : 'worker-pidfd')
    // Every name is opened (which removes it); a failure part way may leave some.
    t.teardown(() => {
      for (const k of [1, 2, 3, 4]) if (existsSync(`/dev/shm${prefix}-${k}`)) unlinkSync(`/dev/shm${prefix}-${k}`)
    })
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      IPCKIT_TS_REGISTER: require.resolve('tsx/cjs'),
      IPCKIT_ENTRY: join(ROOT, 'ts', 'index.ts'),
    }
    if (forced) env.IPCKIT_NO_THREAD_PIDFD = '1'
    const r = await nodeChild(code, [prefix], { env, timeoutMs: emulated ? 600_000 : 120_000 }).done
    t.is(r.code, 0, r.stderr)
    const got = JSON.parse(r.stdout) as unknown
    t.deepEqual(got, expected, forced ? 'looked at (as before Linux 6.9)' : 'through a pidfd of the thread')
  }
})

test('a hostile peer: impossible indices and lengths in the shared header are EPROTO, never a crash or a read out of bounds', async (t) => {
  const cases: Array<[string, Array<[number, number]>]> = [
    ['a tail beyond the capacity', [[RING0 + TAIL, 4096 * 4]]],
    ['a misaligned tail', [[RING0 + TAIL, 12]]],
    [
      'a length past the ring',
      [
        [DATA, 5000],
        [RING0 + TAIL, 16],
      ],
    ],
    [
      'a huge length',
      [
        [DATA, 0xffff_fff0],
        [RING0 + TAIL, 16],
      ],
    ],
    [
      'a record longer than what was published',
      [
        [DATA, 100],
        [RING0 + TAIL, 16],
      ],
    ],
    [
      'unknown flags',
      [
        [DATA + 4, 0x80],
        [RING0 + TAIL, 16],
      ],
    ],
  ]
  for (const [what, pokes] of cases) {
    using pair = Channel.pair({ capacity: 4096 })
    const [, rx] = pair
    for (const [offset, value] of pokes) poke(rx.fds[0]!, offset, value)
    const err = await t.throwsAsync(rx.receive(), { instanceOf: IpcError }, what)
    t.like(err, { code: 'EPROTO', errno: -71, syscall: 'channel receive' }, what)
    t.throws(() => rx.receiveSync({ wait: false }), { code: 'EPROTO' }, what)
    t.throws(() => rx.receiveSync({ zeroCopy: true, wait: false }), { code: 'EPROTO' }, what)
  }
  // Records under a tail the reader loaded already are checked all the same: two messages are
  // published, the first is taken (the reader has seen the tail past both), then the second's
  // header is broken; and a tail moved back is refused once the seen one is used up.
  for (const [what, offset, value, intact] of [
    ['a huge length', DATA + 16, 0xffff_fff0, 0],
    ['a record longer than what was published', DATA + 16, 100, 0],
    ['unknown flags', DATA + 20, 0x80, 0],
    ['a tail moved back', RING0 + TAIL, 8, 1],
  ] as const) {
    for (const how of ['receive', 'receiveSync', 'messages'] as const) {
      using pair = Channel.pair({ capacity: 4096 })
      const [tx, rx] = pair
      tx.sendSync(Buffer.from('first'))
      tx.sendSync(Buffer.from('second'))
      t.is(rx.receiveSync({ wait: false }).toString(), 'first', what)
      poke(rx.fds[0]!, offset, value)
      // A tail moved back still leaves the second message under the tail seen before: it is
      // taken, and the next receive finds the impossible tail.
      if (intact) t.is(rx.receiveSync({ wait: false }).toString(), 'second', what)
      const err =
        how === 'receive'
          ? await t.throwsAsync(rx.receive())
          : how === 'messages'
            ? await t.throwsAsync(rx.messages().next())
            : t.throws(() => rx.receiveSync({ wait: false }))
      t.like(err, { code: 'EPROTO', syscall: 'channel receive' }, `${what}, ${how}`)
    }
  }
  // A reader's head the writer cannot believe.
  for (const head of [3, 0x8000_0000]) {
    using pair = Channel.pair({ capacity: 4096 })
    const [tx] = pair
    poke(tx.fds[0]!, RING0 + HEAD, head)
    t.like(await t.throwsAsync(tx.send('x')), { code: 'EPROTO', syscall: 'channel send' })
  }
  // A broken header: the descriptors are refused.
  const made = Channel.create({ capacity: 4096 })
  const dups = made.fds.map((fd) => native.socketDuplicate(fd))
  poke(made.fds[0]!, 12, 8192) // capacity no longer matches the size
  made.close()
  t.like(
    t.throws(() => Channel.fromFds(dups), { instanceOf: IpcError }),
    { code: 'EPROTO' },
  )
  for (const fd of dups) closeSync(fd)
})

test('the copying path (a runtime that refuses external buffers, forced) passes the same checks and talks to the zero-copy path', async (t) => {
  const ch = Channel.create({ duplex: true, capacity: 1024 })
  t.teardown(() => ch.close())
  const child = nodeChild(
    `const assert = require('assert')
     const { Channel, zeroCopySupported } = ipckit
     assert.strictEqual(zeroCopySupported, false)
     ;(async () => {
       const [tx, rx] = Channel.pair({ capacity: 256, duplex: true })
       for (let i = 0; i < 500; i++) {
         const m = Buffer.alloc(i % 200, i & 0xff)
         await tx.send(m)
         assert.deepStrictEqual(await rx.receive({ zeroCopy: true }), m)
       }
       await tx.post({ v: [1n, 'x'] })
       assert.deepStrictEqual(rx.receiveSync(), { v: [1n, 'x'] })
       const sends = Array.from({ length: 8 }, (_, i) => tx.send(Buffer.alloc(64, i)))
       for (let i = 0; i < 8; i++) assert.deepStrictEqual(await rx.receive(), Buffer.alloc(64, i))
       await Promise.all(sends)
       assert.throws(() => tx.sendSync(Buffer.alloc(249)), { code: 'ERR_OUT_OF_RANGE' })
       const fd = require('fs').openSync('/proc/self/fd/' + tx.fds[0], 'r+')
       const b = Buffer.alloc(4); b.writeUInt32LE(12); require('fs').writeSync(fd, b, 0, 4, 256)
       await assert.rejects(rx.receive(), { code: 'EPROTO' })
       require('fs').closeSync(fd)
       tx.close(); rx.close()
       // The parent's echo, over stdio descriptors: the parent runs the zero-copy path.
       const ch = Channel.fromFds([3, 4, 5])
       console.log('ready')
       for await (const m of ch) await ch.send(m)
       ch.close()
       console.log('copying ok')
     })().catch((e) => { console.error(e); process.exit(1) })`,
    [],
    { env: { ...process.env, IPCKIT_NO_ZERO_COPY: '1' }, stdio: ['pipe', 'pipe', 'pipe', ...ch.fds] },
  )
  // The child's own checks come first: a reply's deadline starts once it echoes.
  await child.line(/^ready$/)
  for (let i = 0; i < 300; i++) {
    await ch.send(bytes(i, i % 900))
    t.deepEqual(await within(ch.receive(), `echo ${i}`), bytes(i, i % 900))
  }
  ch.close()
  const r = await child.done
  t.is(r.code, 0, r.stderr)
  t.is(r.stdout.trim(), 'ready\ncopying ok')
})

// Serial (so before the others): it counts every channel mapping of the process.
test.serial('no descriptor or mapping is left behind', async (t) => {
  const before = fdSnapshot()
  for (let i = 0; i < 20; i++) {
    const [a, b] = Channel.pair({ duplex: true, capacity: 4096 })
    await a.send('x')
    t.is(String(await b.receive({ zeroCopy: true })), 'x')
    const pending = a.receive()
    a.close()
    await t.throwsAsync(pending, { instanceOf: AbortError })
    b.close()
  }
  t.deepEqual(await fdsLeftOpen(before), [])
  const maps = readFileSync('/proc/self/maps', 'utf8')
    .split('\n')
    .filter((l) => l.includes('ipckit-channel'))
  t.deepEqual(maps, [])
})

test('another user: EACCES on a 0600 named or System V channel; a 0606 one it may open', async (t) => {
  const probe = (what: string, arg: string) =>
    runNode(
      `const out = {}
       try { ${what} } catch (e) { out.code = e.code; out.syscall = e.syscall }
       console.log(JSON.stringify(out))`,
      [arg],
      { uid: NOBODY.uid, gid: NOBODY.gid },
    ).then((r) => JSON.parse(r.stdout.trim()))
  const name = posixName('channel-perm')
  const named = Channel.create({ name })
  t.teardown(() => named.close())
  t.deepEqual(await probe('ipckit.Channel.open(process.argv[2])', name), { code: 'EACCES', syscall: 'shm_open' })
  const key = freshKey('shm')
  const sysv = Channel.create({ key })
  t.teardown(() => sysv.close())
  // (shmget asks for no permission bits: shmat is the call that refuses.)
  t.deepEqual(await probe('ipckit.Channel.open(Number(process.argv[2]))', String(key)), {
    code: 'EACCES',
    syscall: 'shmat',
  })
  t.deepEqual(await probe('ipckit.Channel.fromId(Number(process.argv[2]))', String(sysv.id)), {
    code: 'EACCES',
    syscall: 'shmat',
  })
  const open = Channel.create({ name: posixName('channel-0606'), mode: 0o606, role: 'reader' })
  t.teardown(() => open.close())
  const writer = probe(
    `const ch = ipckit.Channel.open(process.argv[2]); ch.sendSync(String(process.getuid())); ch.close(); out.ok = true`,
    open.name!,
  )
  // The writer has sent and closed once it exits (its start, slow under emulation, is no part of the deadline).
  t.deepEqual(await writer, { ok: true })
  t.is(String(await within(open.receive(), 'the message of the other user')), String(NOBODY.uid))
})

test('at the open-file limit: EMFILE naming the limit, nothing left open, no crash', async (t) => {
  const r = await runNodeUnder(
    ['prlimit', '--nofile=40'],
    `const { readdirSync } = require('fs')
     const before = readdirSync('/proc/self/fd').length
     const made = []
     let err
     try { for (;;) made.push(ipckit.Channel.create({ capacity: 4096 })) } catch (e) { err = e }
     for (const ch of made) ch.close()
     console.log(JSON.stringify({ code: err.code, syscall: err.syscall, limit: /40/.test(err.message), made: made.length > 0, left: readdirSync('/proc/self/fd').length - before }))`,
  )
  const out = JSON.parse(r.stdout.trim())
  t.like(out, { code: 'EMFILE', limit: true, made: true, left: 0 })
  t.true(['memfd_create', 'eventfd'].includes(out.syscall), out.syscall)
})

test('named and System V channels (futex wakes): a peer killed while the other side waits ends the wait with ECONNRESET', async (t) => {
  for (const options of [{ name: posixName('channel-death') }, { key: IPC_PRIVATE }]) {
    const ch = Channel.create({ ...options, role: 'reader' })
    t.teardown(() => ch.close())
    const opener =
      'name' in options ? `ipckit.Channel.open(${JSON.stringify(options.name)})` : `ipckit.Channel.fromId(${ch.id})`
    const child = nodeChild(
      `const ch = ${opener}; ch.sendSync('first'); console.log('sent'); setInterval(() => {}, 1000)`,
    )
    await child.line(/sent/)
    t.is(String(await within(ch.receive(), 'the first message')), 'first')
    const pending = ch.receive()
    await sleep(30)
    child.kill('SIGKILL')
    const err = await within(t.throwsAsync(pending, { instanceOf: IpcError }), 'the receive to end')
    t.is(err!.code, 'ECONNRESET', Object.keys(options)[0])
    ch.close()
  }
})

test('a writer waiting for room gets it when the reader takes one message and then stops (the deferred wake still comes)', async (t) => {
  using pair = Channel.pair({ capacity: 256 })
  const [tx, rx] = pair
  for (let i = 0; i < 4; i++) tx.sendSync(Buffer.alloc(56, i))
  const pending = tx.send(Buffer.alloc(56, 9))
  await sleep(10)
  t.deepEqual(rx.receiveSync(), Buffer.alloc(56, 0))
  await within(pending, 'the send to find room')
  // Across processes: a child blocked in sendSync on a full ring.
  const ch = Channel.create({ capacity: 256, role: 'reader' })
  t.teardown(() => ch.close())
  const child = nodeChild(
    `const ch = ipckit.Channel.fromFds([3, 4, 5]); console.log('ready'); for (let i = 0; i < 5; i++) ch.sendSync(Buffer.alloc(56, i)); console.log('all sent'); ch.close()`,
    [],
    {
      stdio: ['pipe', 'pipe', 'pipe', ...ch.fds],
    },
  )
  await child.line(/^ready$/)
  // The ring is full (four 64-byte records): the child waits for room.
  await within(
    (async () => {
      while (peek(ch.fds[0]!, RING0 + TAIL) < 256) await sleep(5)
    })(),
    'the ring to fill',
  )
  await sleep(20)
  const first = await within(ch.receive(), 'the first message')
  t.deepEqual(first, Buffer.alloc(56, 0))
  t.is(await within(child.line(/all sent/), 'the child to send its fifth message'), 'all sent')
  t.is((await child.done).code, 0)
})
