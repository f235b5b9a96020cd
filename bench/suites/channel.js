'use strict'
/**
 * Channel: messages through a ring in shared memory between two Node processes, both sides
 * async (`await send` / `await receive`, `for await`), against what a Node user would pick
 * otherwise (`net` over a UNIX path, `process.send`, a worker's `postMessage`, a System V
 * message queue's iterator), against C on both ends of the same ring
 * (bench/c/channel_bench.c, blocking sleeps) and against the same ring and yields in minimal
 * JavaScript between two processes (bench/peers/js-floor.js), all in the same run:
 *   - a 64-byte round trip (targets: ≤ 0.25× net's time, ≤ 0.2× process.send's);
 *   - a stream of 64-byte messages (targets: ≥ 10× net's message rate, ≥ 5× the message
 *     queue iterator's, i.e. ≤ 0.1× and ≤ 0.2× their time per message);
 *   - 1 MiB messages, against C memcpy of 1 MiB (target: ≥ 0.8× its bandwidth, i.e. ≤ 1.25×
 *     its time per message), received in place (`zeroCopy`) and as copies.
 *
 * A suite exports `(config) => op[]`; see bench/README.md for ops and cases.
 */

const { join } = require('node:path')

const { Channel, SharedMemory } = require('../../dist')
const { FloorRing, SEGMENT_SIZE, SLOT } = require('../peers/js-floor')
const { LineProcess, compileC, now } = require('../lib/harness')
const {
  SIZE,
  builtinRoundTrips,
  floorPair,
  napiFloor,
  netStream,
  queueIteratorStream,
  workerStream,
} = require('../lib/node2node')

const PEER = join(__dirname, '..', 'peers', 'channel-peer.js')
const FLOOR_PEER = join(__dirname, '..', 'peers', 'js-floor.js')
const MIB = 1 << 20

/** The C driver (both ends in C), shared by the C rows of every op. */
function cCase(impl, command, size, kind = 'c') {
  let driver
  return {
    impl,
    kind,
    compare: kind === 'alt' ? 'ipckit for await, zeroCopy' : undefined,
    setup() {
      driver = new LineProcess(compileC('channel_bench'), ['driver'])
    },
    async sample(n) {
      const line = await driver.ask(`${command} ${n} ${size}`)
      if (!/^\d+$/.test(line)) throw new Error(`channel_bench: ${line}`)
      return Number(line)
    },
    teardown: () => driver?.close(),
  }
}

/** A channel and `count` Node children (bench/peers/channel-peer.js MODE) given its descriptors. */
async function withPeer(mode, options, count = 1) {
  const ch = Channel.create(options)
  const children = []
  const close = async () => {
    ch.close()
    await Promise.all(children.map((c) => c.close()))
  }
  try {
    for (let k = 0; k < count; k++) {
      const child = new LineProcess(process.execPath, [PEER, mode], { stdio: ['pipe', 'pipe', 'pipe', ...ch.fds] })
      children.push(child)
      const line = await child.next()
      if (line !== 'ready') throw new Error(`channel peer ${mode}: ${line}`)
    }
  } catch (err) {
    await close()
    throw err
  }
  return { ch, child: children[0], children, close }
}

/** 64-byte round trips with a Node echo child, both sides async. */
function roundTrip(targetVs) {
  let ctx
  const payload = Buffer.alloc(SIZE, 'x')
  return {
    impl: 'ipckit async↔async',
    kind: 'ipckit',
    targetVs,
    async setup() {
      ctx = await withPeer('echo', { duplex: true, capacity: 1 << 16 })
    },
    async sample(n) {
      const { ch } = ctx
      let bytes = 0
      const t0 = now()
      for (let i = 0; i < n; i++) {
        await ch.send(payload)
        bytes += (await ch.receive()).length
      }
      const elapsed = now() - t0
      if (bytes !== n * SIZE) throw new Error(`${bytes} bytes back for ${n} round trips`)
      return elapsed
    },
    teardown: () => ctx?.close(),
  }
}

/**
 * A Node producer child `await send`s n messages of `size` bytes; `for await` here takes them.
 * With `writers` > 1, that many producer children share the ring (`writers: N`), n / N each.
 */
function stream(impl, size, capacity, zeroCopy, extra = {}, writers = 1) {
  let ctx
  return {
    impl,
    kind: 'ipckit',
    ...extra,
    async setup() {
      const options = { capacity, role: 'reader', ...(writers > 1 ? { writers } : {}) }
      ctx = await withPeer('produce', options, writers)
    },
    async sample(n) {
      const share = (k) => Math.floor(n / writers) + (k < n % writers ? 1 : 0)
      const sent = Promise.all(ctx.children.map((c, k) => c.ask(`${share(k)} ${size}`)))
      let bytes = 0
      let i = 0
      const t0 = now()
      for await (const m of ctx.ch.messages({ zeroCopy })) {
        bytes += m.length
        if (++i === n) break
      }
      const elapsed = now() - t0
      if ((await sent).some((line) => line !== 'sent')) throw new Error('a producer failed')
      if (bytes !== n * size) throw new Error(`${bytes} bytes for ${n} messages of ${size}`)
      return elapsed
    },
    teardown: () => ctx?.close(),
  }
}

/**
 * What JavaScript alone costs per streamed message, with no I/O: the consumer's `for await` over
 * an iterator whose next message is always ready, plus the producer's `await` of a resolved
 * send promise (both processes share one CPU in the pinned run, so their costs add up). No
 * message API with an awaiting producer and a `for await` consumer is cheaper than this.
 */
function jsFloorStream() {
  const ready = Promise.resolve()
  const send = () => ready
  return {
    impl: 'JavaScript floor (for await + await send, no I/O)',
    kind: 'alt',
    compare: 'net (UNIX path)',
    async sample(n) {
      const messages = {
        [Symbol.asyncIterator]() {
          return this
        },
        next: () => Promise.resolve({ done: false, value: 1 }),
      }
      const t0 = now()
      let i = 0
      for await (const one of messages) if ((i += one) === n) break
      for (let j = 0; j < n; j++) await send()
      return now() - t0
    },
  }
}

/**
 * The JavaScript floor between two Node processes (bench/peers/js-floor.js): Channel's ring and
 * yields in minimal JavaScript, a child of its own on a System V segment (removed as soon as
 * the child attached). `'rt'`: this side `await send`, `await receive` of the child's echo;
 * `'stream'`: the child `await send`s, this side `for await`s. Compared with Channel's row.
 */
function jsFloorPair(what) {
  let shm
  let view
  let child
  let ring
  const payload = Buffer.alloc(SLOT, 'x')
  return {
    impl: 'JavaScript floor: the same ring and yields, minimal (two processes)',
    kind: 'alt',
    compare: what === 'rt' ? 'ipckit async↔async' : 'ipckit for await',
    async setup() {
      shm = SharedMemory.create({ size: SEGMENT_SIZE, mode: 0o600 })
      try {
        view = shm.attach()
        child = new LineProcess(process.execPath, [FLOOR_PEER, String(shm.id)])
        const line = await child.next()
        if (line !== 'ready') throw new Error(`js-floor peer: ${line}`)
      } finally {
        shm.remove()
      }
      ring = new FloorRing(view.buffer, 0)
    },
    async sample(n) {
      let bytes = 0
      let t0
      if (what === 'rt') {
        const done = child.ask(`echo ${n}`)
        t0 = now()
        for (let i = 0; i < n; i++) {
          await ring.send(payload)
          bytes += (await ring.receive()).length
        }
        const elapsed = now() - t0
        if ((await done) !== 'done') throw new Error('js-floor echo failed')
        if (bytes !== n * SLOT) throw new Error(`${bytes} bytes back for ${n} round trips`)
        return elapsed
      }
      const sent = child.ask(`produce ${n}`)
      t0 = now()
      let i = 0
      for await (const m of ring) {
        bytes += m.length
        if (++i === n) break
      }
      const elapsed = now() - t0
      if ((await sent) !== 'sent') throw new Error('js-floor producer failed')
      if (bytes !== n * SLOT) throw new Error(`${bytes} bytes for ${n} messages`)
      return elapsed
    },
    async teardown() {
      await child?.close()
      view?.detach()
      shm?.close()
    },
  }
}

const NET = (ratio) => ({ impl: 'net (UNIX path)', ratio })
const PROCESS_SEND = (ratio) => ({ impl: 'process.send', ratio })

module.exports = (config) => [
  {
    primitive: 'Channel',
    operation: 'round trip 64 B, two Node processes',
    unit: 'us',
    per: 'round trip',
    count: config.roundTrips,
    cases: [
      cCase('C both ends (channel.h)', 'rt', SIZE),
      roundTrip([NET(0.25), PROCESS_SEND(0.2)]),
      // Node's own cost of a wake into JavaScript that awaits each message (see bench/README.md).
      napiFloor(floorPair('seqpacket'), 'net (UNIX path)'),
      jsFloorPair('rt'),
      ...builtinRoundTrips('ipckit async↔async'),
    ],
  },
  {
    primitive: 'Channel',
    operation: 'stream 64 B from another Node process',
    unit: 'ns',
    per: 'message',
    count: config.messages,
    cases: [
      cCase('C both ends (channel.h)', 'stream', SIZE),
      stream('ipckit for await', SIZE, 1 << 20, false, {
        targetVs: [NET(0.1), { impl: 'MessageQueue async iterator', ratio: 0.2 }],
      }),
      // Fan-in: 4 Node writers share the ring (writers: 4), one reader; the same total messages.
      stream(
        '4 Node writers → one reader (writers: 4)',
        SIZE,
        1 << 20,
        false,
        { kind: 'alt', compare: 'ipckit for await' },
        4,
      ),
      queueIteratorStream({ impl: 'MessageQueue async iterator', kind: 'alt', compare: 'ipckit for await' }),
      jsFloorStream(),
      jsFloorPair('stream'),
      netStream('ipckit for await'),
      workerStream('ipckit for await'),
    ],
  },
  {
    primitive: 'Channel',
    operation: '1 MiB messages from another Node process',
    unit: 'us',
    per: 'message',
    count: config.smoke ? 20 : 2_000,
    // Both processes' JavaScript takes ~3 samples of 2,000 messages to settle (the engine's
    // tiering; see bench/README.md): those run untimed.
    warmup: config.smoke ? 1 : 3,
    cases: [
      cCase('C memcpy 1 MiB', 'memcpy', MIB),
      stream('ipckit for await, zeroCopy', MIB, 16 * MIB, true, { target: 1.25 }),
      stream('ipckit for await, copies', MIB, 16 * MIB, false),
      cCase('C both ends (channel.h, copies out)', 'stream', MIB, 'alt'),
    ],
  },
]
