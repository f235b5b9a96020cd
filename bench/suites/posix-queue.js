'use strict'
/**
 * POSIX message queues: latency (64-byte round trips with a C echo child) and throughput (a
 * backlog drained), against C doing the same work in the same run, System V queues doing the
 * same round trip (ipckit and C), and Python's `posix_ipc`.
 *
 * A round trip uses two queues, as a POSIX queue has no message types to pick replies by: the
 * timed side sends on the request queue and takes the reply off the reply queue; the C echo
 * child (`bench/c/posix_bench.c mq-echo`) does the opposite.
 *
 * A suite exports `(config) => op[]`; see bench/README.md for ops and cases.
 */

const { MessageQueue, PosixMessageQueue, posixQueueLimits } = require('../../dist')
const { LineProcess, background, compileC, now } = require('../lib/harness')
const { cDriverCase, pythonDriverCase } = require('../lib/posix-drivers')

const SIZE = 64
/** At most msg_max messages per queue (10 by default) unless the process may exceed it. */
const MAX_MESSAGES = Math.max(1, Math.min(10, posixQueueLimits().msgMax ?? 10))

let seq = 0
function create(tag, maxMessages = MAX_MESSAGES) {
  const name = `/ipckit-bench-${process.pid}-${tag}-${++seq}`
  return PosixMessageQueue.open(name, { exclusive: true, maxMessages, messageSize: SIZE })
}

function removeQueue(q) {
  try {
    q.remove()
  } catch {
    // gone already
  }
  q.close()
}

/** A request and a reply queue with a C echo child; `close()` stops it (a priority-0 message). */
function echoPair() {
  const req = create('req')
  const rep = create('rep')
  const echo = background(compileC('posix_bench'), ['mq-echo', req.name, rep.name])
  return {
    req,
    rep,
    async close() {
      req.sendSync('stop', { priority: 0 })
      const { code, stderr } = await echo.done
      removeQueue(req)
      removeQueue(rep)
      if (code !== 0) throw new Error(`posix_bench mq-echo exited ${code}: ${stderr}`)
    },
  }
}

/** A queue for backlogs of `chunk` messages. */
function backlog(chunk) {
  const q = create('backlog', chunk)
  return { q, chunk, close: () => removeQueue(q) }
}

function ipckitRoundTrip(impl, target) {
  let ctx
  const payload = Buffer.alloc(SIZE, 'x')
  return {
    impl,
    kind: 'ipckit',
    target,
    setup() {
      ctx = echoPair()
    },
    async sample(n) {
      const { req, rep } = ctx
      const t0 = now()
      if (impl === 'ipckit sync') {
        for (let i = 0; i < n; i++) {
          req.sendSync(payload, { priority: 1 })
          rep.receiveSync()
        }
      } else {
        for (let i = 0; i < n; i++) {
          await req.send(payload, { priority: 1 })
          await rep.receive()
        }
      }
      return now() - t0
    },
    teardown: () => ctx?.close(),
  }
}

/** The same round trip over one System V queue (type 1 out, type 2 back) with its C echo child. */
function sysvQueue() {
  const q = MessageQueue.create()
  const echo = background(compileC('msg_echo'), [String(q.id)])
  return {
    q,
    async close() {
      q.remove()
      q.close()
      await echo.done
    },
  }
}

function sysvRoundTrip(impl, compare) {
  let ctx
  const payload = Buffer.alloc(SIZE, 'x')
  return {
    impl,
    kind: 'alt',
    compare,
    setup() {
      ctx = sysvQueue()
    },
    async sample(n) {
      const { q } = ctx
      const t0 = now()
      if (compare === 'ipckit sync') {
        for (let i = 0; i < n; i++) {
          q.sendSync(payload, { type: 1 })
          q.receiveSync({ type: 2 })
        }
      } else {
        for (let i = 0; i < n; i++) {
          await q.send(payload, { type: 1 })
          await q.receive({ type: 2 })
        }
      }
      return now() - t0
    },
    teardown: () => ctx?.close(),
  }
}

/** C msgsnd/msgrcv round trips (bench/c/msg_driver.c) over a System V queue. */
function sysvC() {
  let driver
  let ctx
  return {
    impl: 'C msgsnd/msgrcv (System V)',
    kind: 'alt',
    compare: 'C mq_send/mq_receive',
    setup() {
      ctx = sysvQueue()
      driver = new LineProcess(compileC('msg_driver'), [])
    },
    async sample(n) {
      return Number(await driver.ask(`rt ${ctx.q.id} ${n} ${SIZE}`))
    },
    async teardown() {
      await driver?.close()
      await ctx?.close()
    },
  }
}

function ipckitDrain(impl, target, chunk) {
  let ctx
  const payload = Buffer.alloc(SIZE, 'x')
  const fill = (q, k) => {
    for (let i = 0; i < k; i++) q.sendSync(payload, { priority: 1 })
  }
  return {
    impl,
    kind: 'ipckit',
    target,
    setup() {
      ctx = backlog(chunk)
    },
    async sample(n) {
      const { q } = ctx
      let elapsed = 0
      if (impl === 'ipckit sync') {
        for (let done = 0; done < n;) {
          const k = Math.min(chunk, n - done)
          fill(q, k)
          const t0 = now()
          for (let i = 0; i < k; i++) q.receiveSync()
          elapsed += now() - t0
          done += k
        }
        return elapsed
      }
      // One iterator for the whole count; the backlog is refilled (untimed) when drained.
      let taken = 0
      let left = Math.min(chunk, n)
      fill(q, left)
      let t0 = now()
      for await (const _msg of q) {
        if (++taken === n) break
        if (--left === 0) {
          elapsed += now() - t0
          left = Math.min(chunk, n - taken)
          fill(q, left)
          t0 = now()
        }
      }
      return elapsed + (now() - t0)
    },
    teardown: () => ctx?.close(),
  }
}

module.exports = (config) => {
  const rt = (ctx, n) => `mq-rt ${ctx.req.name} ${ctx.rep.name} ${n} ${SIZE}`
  const chunk = Math.min(config.chunk, MAX_MESSAGES)
  const drain = (ctx, n) => `mq-drain ${ctx.q.name} ${n} ${SIZE} ${ctx.chunk}`
  return [
    {
      primitive: 'POSIX message queue',
      operation: 'round trip 64 B, C echo child',
      unit: 'us',
      per: 'round trip',
      count: config.roundTrips,
      cases: [
        cDriverCase('C mq_send/mq_receive', echoPair, rt),
        ipckitRoundTrip('ipckit sync', 1.5),
        ipckitRoundTrip('ipckit async'),
        sysvC(),
        sysvRoundTrip('ipckit System V sync', 'ipckit sync'),
        sysvRoundTrip('ipckit System V async', 'ipckit async'),
        pythonDriverCase(echoPair, rt),
      ],
    },
    {
      primitive: 'POSIX message queue',
      operation: `drain a backlog of ${chunk}, 64 B`,
      unit: 'ns',
      per: 'message',
      count: config.messages,
      cases: [
        cDriverCase('C mq_receive', () => backlog(chunk), drain),
        ipckitDrain('ipckit async iterator', 2, chunk),
        ipckitDrain('ipckit sync', undefined, chunk),
        pythonDriverCase(() => backlog(chunk), drain),
      ],
    },
  ]
}
