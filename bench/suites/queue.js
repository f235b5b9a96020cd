'use strict'
/**
 * System V message queues: latency (64-byte round trips between two processes) and throughput
 * (a backlog drained; a stream between two Node processes), against C doing the same work in the
 * same run, Node's built-ins and the npm/PyPI peers.
 *
 * A suite exports `(config) => op[]`; an op is `{ primitive, operation, unit, per, count, cases }`
 * and a case `{ impl, kind, compare?, setup?, sample(n), teardown? }` where `sample(n)` does n
 * operations and resolves with the elapsed nanoseconds (see bench/README.md).
 */

const { join } = require('node:path')

const { MessageQueue } = require('../../dist')
const { LineProcess, background, compileC, now } = require('../lib/harness')
const {
  NODE_ECHO,
  SIZE,
  builtinRoundTrips,
  loopFloor,
  napiFloorStream,
  netStream,
  queueIteratorStream,
  workerStream,
} = require('../lib/node2node')
const { npmPeer, pythonPeer } = require('../lib/peers')
const PY_DRIVER = join(__dirname, '..', 'peers', 'sysv_ipc_driver.py')

/**
 * A private queue with an echo child (type 1 in, type 2 back) that ends when it is removed:
 * C (`msg_echo`), or Node with the sync (`'node'`) or async (`'node-async'`) API.
 */
function echoQueue(kind = 'c', q = MessageQueue.create()) {
  const echo =
    kind === 'c'
      ? background(compileC('msg_echo'), [String(q.id)])
      : background(process.execPath, [NODE_ECHO, kind === 'node' ? 'msg' : 'msg-async', String(q.id)])
  return {
    q,
    async close() {
      q.remove()
      q.close()
      await echo.done
    },
  }
}

/** A private queue sized for `chunk` messages of SIZE bytes (root may raise msg_qbytes). */
function backlogQueue(chunk, q = MessageQueue.create()) {
  try {
    q.update({ maxBytes: chunk * SIZE })
  } catch {
    // Not privileged: keep the system's msgmnb, and queue fewer at a time.
  }
  return { q, chunk: Math.max(1, Math.min(chunk, Math.floor(q.stat().maxBytes / SIZE))) }
}

function fill(q, k, payload) {
  for (let i = 0; i < k; i++) q.sendSync(payload, { type: 1 })
}

/** The C baseline (bench/c/msg_driver.c) for one command, on a queue made by `make`. */
function cCase(command, make) {
  let driver
  let ctx
  return {
    impl: 'C msgsnd/msgrcv',
    kind: 'c',
    setup() {
      ctx = make()
      driver = new LineProcess(compileC('msg_driver'), [])
    },
    async sample(n) {
      return Number(await driver.ask(`${command} ${ctx.q.id} ${n} ${SIZE} ${ctx.chunk ?? n}`))
    },
    async teardown() {
      await driver?.close()
      await ctx?.close?.()
      if (ctx && !ctx.close) ctx.q.remove()
    },
  }
}

/** Python's sysv_ipc with the same protocol as the C driver. */
function pythonCase(command) {
  let driver
  let ctx
  let key
  return {
    impl: 'Python sysv_ipc',
    kind: 'peer',
    compare: 'ipckit sync',
    setup(config) {
      if (!config.peers) throw new Error('peers skipped (--no-peers or smoke mode)')
      const py = pythonPeer('sysv_ipc')
      const keyed = keyedQueue()
      key = keyed.key
      ctx = command === 'rt' ? echoQueue('c', keyed.q) : backlogQueue(config.chunk, keyed.q)
      driver = new LineProcess(py.python, [PY_DRIVER], { env: { ...process.env, PYTHONPATH: py.path } })
    },
    async sample(n) {
      const line = await driver.ask(`${command} ${key} ${n} ${SIZE} ${ctx.chunk ?? n}`)
      if (!/^\d+$/.test(line)) throw new Error(`sysv_ipc driver: ${line}`)
      return Number(line)
    },
    async teardown() {
      await driver?.close()
      await ctx?.close?.()
      if (ctx && !ctx.close) ctx.q.remove()
    },
  }
}

/** A new queue under a random unused key (svmq opens queues by key only). */
function keyedQueue() {
  for (;;) {
    const key = 0x5b000000 + Math.floor(Math.random() * 0xffffff)
    try {
      return { q: MessageQueue.open(key, { exclusive: true }), key }
    } catch (err) {
      if (err.code !== 'EEXIST') throw err
    }
  }
}

function svmqCase(kindOf) {
  let svmq
  let ctx
  let sq
  const payload = Buffer.alloc(SIZE, 'x')
  const push = (type) => new Promise((res, rej) => sq.push(payload, { type }, (e) => (e ? rej(e) : res())))
  const pop = (type) => new Promise((res, rej) => sq.pop({ type }, (e, d) => (e ? rej(e) : res(d))))
  return {
    impl: 'svmq push/pop',
    kind: 'peer',
    // Each call goes through the libuv threadpool: a tenth of the count keeps the run short.
    scale: 0.1,
    compare: 'ipckit async',
    setup(config) {
      if (!config.peers) throw new Error('peers skipped (--no-peers or smoke mode)')
      svmq = npmPeer('svmq')
      const { q, key } = keyedQueue()
      ctx = kindOf === 'rt' ? echoQueue('c', q) : backlogQueue(config.chunk, q)
      sq = svmq.open(key)
    },
    async sample(n) {
      if (kindOf === 'rt') {
        const t0 = now()
        for (let i = 0; i < n; i++) {
          await push(1)
          await pop(2)
        }
        return now() - t0
      }
      let elapsed = 0
      for (let done = 0; done < n;) {
        const k = Math.min(ctx.chunk, n - done)
        fill(ctx.q, k, payload)
        const t0 = now()
        for (let i = 0; i < k; i++) await pop(0)
        elapsed += now() - t0
        done += k
      }
      return elapsed
    },
    async teardown() {
      if (ctx?.close) await ctx.close()
      else if (ctx) ctx.q.remove()
    },
  }
}

function ipckitRoundTrip(impl, echoKind, target, targetVs) {
  let ctx
  const payload = Buffer.alloc(SIZE, 'x')
  const sync = impl.startsWith('ipckit sync')
  return {
    impl,
    kind: 'ipckit',
    target,
    targetVs,
    setup() {
      ctx = echoQueue(echoKind)
    },
    async sample(n) {
      const { q } = ctx
      if (sync) {
        const t0 = now()
        for (let i = 0; i < n; i++) {
          q.sendSync(payload, { type: 1 })
          q.receiveSync({ type: 2 })
        }
        return now() - t0
      }
      const t0 = now()
      for (let i = 0; i < n; i++) {
        await q.send(payload, { type: 1 })
        await q.receive({ type: 2 })
      }
      return now() - t0
    },
    teardown: () => ctx?.close(),
  }
}

function ipckitDrain(impl, target) {
  let ctx
  const payload = Buffer.alloc(SIZE, 'x')
  return {
    impl,
    kind: 'ipckit',
    target,
    setup(config) {
      ctx = backlogQueue(config.chunk)
    },
    async sample(n) {
      const { q, chunk } = ctx
      let elapsed = 0
      if (impl === 'ipckit sync') {
        for (let done = 0; done < n;) {
          const k = Math.min(chunk, n - done)
          fill(q, k, payload)
          const t0 = now()
          for (let i = 0; i < k; i++) q.receiveSync()
          elapsed += now() - t0
          done += k
        }
        return elapsed
      }
      // One iterator for the whole count, as a consumer keeps it; the backlog is refilled
      // (untimed) each time it has been drained.
      let taken = 0
      let left = Math.min(chunk, n)
      fill(q, left, payload)
      let t0 = now()
      for await (const _msg of q.messages()) {
        if (++taken === n) break
        if (--left === 0) {
          elapsed += now() - t0
          left = Math.min(chunk, n - taken)
          fill(q, left, payload)
          t0 = now()
        }
      }
      return elapsed + (now() - t0)
    },
    teardown: () => ctx?.q.remove(),
  }
}

/** The C stream baseline: one C process produces, another consumes and times. */
function cStream() {
  let q
  let consumer
  let producer
  return {
    impl: 'C msgsnd/msgrcv',
    kind: 'c',
    setup() {
      q = MessageQueue.create()
      consumer = new LineProcess(compileC('msg_driver'), [])
      producer = new LineProcess(compileC('msg_driver'), [])
    },
    async sample(n) {
      const elapsed = consumer.ask(`consume ${q.id} ${n} ${SIZE}`)
      await producer.ask(`produce ${q.id} ${n} ${SIZE}`)
      return Number(await elapsed)
    },
    async teardown() {
      await consumer?.close()
      await producer?.close()
      q?.remove()
    },
  }
}

/**
 * The floor of an event loop's stream from a queue: a C producer (`msg_driver produce`) and a
 * C consumer that takes each message as ipckit's async iterator does (`loop_floor msg-driver`,
 * `consume`: a try, and when the queue is empty the helper thread's blocking wait and its
 * eventfd wake), without JavaScript.
 */
function loopFloorStream() {
  let q
  let consumer
  let producer
  return {
    impl: "C event loop (ipckit's wakes)",
    kind: 'alt',
    compare: 'net (UNIX path)',
    setup() {
      q = MessageQueue.create()
      consumer = new LineProcess(compileC('loop_floor'), ['msg-driver', String(q.id)])
      producer = new LineProcess(compileC('msg_driver'), [])
    },
    async sample(n) {
      const elapsed = consumer.ask(`consume ${n} ${SIZE}`)
      await producer.ask(`produce ${q.id} ${n} ${SIZE}`)
      const line = await elapsed
      if (!/^\d+$/.test(line)) throw new Error(`loop_floor: ${line}`)
      return Number(line)
    },
    async teardown() {
      await producer?.close()
      q?.remove()
      await consumer?.close()
    },
  }
}

/** Issue 16: as fast as Node's own `net` between two Node processes, or faster. */
const NET_1 = { impl: 'net (UNIX path)', ratio: 1.0 }

module.exports = (config) => [
  {
    primitive: 'message queue',
    operation: 'round trip 64 B, C echo child',
    unit: 'us',
    per: 'round trip',
    count: config.roundTrips,
    cases: [
      cCase('rt', () => echoQueue()),
      ipckitRoundTrip('ipckit sync', 'c', 1.5),
      ipckitRoundTrip('ipckit async', 'c'),
      svmqCase('rt'),
      pythonCase('rt'),
    ],
  },
  {
    primitive: 'message queue',
    operation: 'round trip 64 B, two Node processes',
    unit: 'us',
    per: 'round trip',
    count: config.roundTrips,
    baseline: 'C msgsnd/msgrcv',
    cases: [
      cCase('rt', () => echoQueue()),
      ipckitRoundTrip('ipckit async↔async', 'node-async', undefined, NET_1),
      ipckitRoundTrip('ipckit sync↔sync', 'node'),
      loopFloor('msg', () => {
        const q = MessageQueue.create()
        return { id: q.id, close: () => q.remove() }
      }),
      ...builtinRoundTrips('ipckit async↔async'),
    ],
  },
  {
    primitive: 'message queue',
    operation: 'drain a backlog, 64 B',
    unit: 'ns',
    per: 'message',
    count: config.messages,
    cases: [
      cCase('drain', () => backlogQueue(config.chunk)),
      ipckitDrain('ipckit async iterator', 2),
      ipckitDrain('ipckit sync'),
      svmqCase('drain'),
      pythonCase('drain'),
    ],
  },
  {
    primitive: 'message queue',
    operation: 'stream 64 B from another process',
    unit: 'ns',
    per: 'message',
    count: config.messages,
    cases: [
      cStream(),
      // A Node producer child (sendSync), the async iterator here.
      queueIteratorStream({ impl: 'ipckit async iterator', kind: 'ipckit', targetVs: NET_1 }),
      // Both processes async: the producer awaits each send, as Node code would.
      queueIteratorStream({
        producer: 'produce-async',
        impl: 'ipckit async iterator, producer awaits send',
        kind: 'alt',
        compare: 'net (UNIX path)',
      }),
      loopFloorStream(),
      napiFloorStream(() => {
        const q = MessageQueue.create()
        return { qid: q.id, close: () => q.remove() }
      }),
      netStream('ipckit async iterator'),
      workerStream('ipckit async iterator'),
    ],
  },
]
