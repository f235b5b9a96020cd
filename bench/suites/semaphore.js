'use strict'
/**
 * System V semaphores: uncontended acquire+release latency, and a ping-pong between two
 * processes (this side adds 1 to semaphore 0 and waits to take 1 from semaphore 1; a C echo child
 * does the opposite), sync and async, against C doing the same work in the same run.
 *
 * A suite exports `(config) => op[]`; see bench/README.md for ops and cases.
 */

const { join } = require('node:path')

const { Semaphore, SemaphoreSet } = require('../../dist')
const { LineProcess, background, compileC, now } = require('../lib/harness')
const { NODE_ECHO, builtinRoundTrips, loopFloor } = require('../lib/node2node')
const { pythonPeer } = require('../lib/peers')

const PY_DRIVER = join(__dirname, '..', 'peers', 'sysv_ipc_sysv_driver.py')

/** The C baseline (bench/c/sem_driver.c) for one command, on a set made by `make`. */
function cCase(command, make) {
  let driver
  let ctx
  return {
    impl: 'C semop',
    kind: 'c',
    setup() {
      ctx = make()
      driver = new LineProcess(compileC('sem_driver'), [])
    },
    async sample(n) {
      const line = await driver.ask(`${command} ${ctx.id} ${n}`)
      if (!/^\d+$/.test(line)) throw new Error(`sem_driver: ${line}`)
      return Number(line)
    },
    async teardown() {
      await driver?.close()
      await ctx?.close()
    },
  }
}

/** A private semaphore holding 1, as a lock is: nothing ever waits on it. */
function freeSemaphore() {
  const sem = Semaphore.open(0, { create: true, initial: 1 })
  return {
    sem,
    id: sem.id,
    close() {
      sem.remove()
      sem.close()
    },
  }
}

/** A semaphore holding 1 under a random unused key (sysv_ipc opens semaphores by key only). */
function keyedFreeSemaphore() {
  for (;;) {
    const key = 0x5c000000 + Math.floor(Math.random() * 0xffffff)
    try {
      const sem = Semaphore.open(key, { create: true, exclusive: true, initial: 1 })
      return {
        sem,
        key,
        close() {
          sem.remove()
          sem.close()
        },
      }
    } catch (err) {
      if (err.code !== 'EEXIST') throw err
    }
  }
}

/** Python's sysv_ipc: `acquire()` and `release()` with undo on (bench/peers/sysv_ipc_sysv_driver.py). */
function pythonUncontended() {
  let driver
  let ctx
  return {
    impl: 'Python sysv_ipc',
    kind: 'peer',
    compare: 'ipckit sync',
    setup(config) {
      if (!config.peers) throw new Error('peers skipped (--no-peers or smoke mode)')
      const py = pythonPeer('sysv_ipc')
      ctx = keyedFreeSemaphore()
      driver = new LineProcess(py.python, [PY_DRIVER], { env: { ...process.env, PYTHONPATH: py.path } })
    },
    async sample(n) {
      const line = await driver.ask(`sem-uncontended ${ctx.key} ${n}`)
      if (!/^\d+$/.test(line)) throw new Error(`sysv_ipc driver: ${line}`)
      return Number(line)
    },
    async teardown() {
      await driver?.close()
      ctx?.close()
    },
  }
}

/**
 * A private set of two semaphores at 0 and an echo child (takes 0, gives 1) that ends when it
 * is removed: C (`sem_echo`), or Node with the sync (`'node'`) or async (`'node-async'`) API.
 */
function echoSet(kind = 'c') {
  const set = SemaphoreSet.create({ count: 2 })
  const echo =
    kind === 'c'
      ? background(compileC('sem_echo'), [String(set.id)])
      : background(process.execPath, [NODE_ECHO, kind === 'node' ? 'sem' : 'sem-async', String(set.id)])
  return {
    set,
    id: set.id,
    async close() {
      set.remove()
      set.close()
      const { code, stderr } = await echo.done
      if (code !== 0) throw new Error(`sem_echo exited ${code}: ${stderr}`)
    },
  }
}

/** ipckit's `Semaphore` (SEM_UNDO, its default): `acquireSync()`/`release()` or `await acquire()`/`release()`. */
function ipckitUncontended(impl, target) {
  let ctx
  return {
    impl,
    kind: 'ipckit',
    target,
    setup() {
      ctx = freeSemaphore()
    },
    async sample(n) {
      const { sem } = ctx
      if (impl === 'ipckit sync') {
        const t0 = now()
        for (let i = 0; i < n; i++) {
          sem.acquireSync()
          sem.release()
        }
        return now() - t0
      }
      const t0 = now()
      for (let i = 0; i < n; i++) {
        await sem.acquire()
        sem.release()
      }
      return now() - t0
    },
    teardown: () => ctx?.close(),
  }
}

/** ipckit's `SemaphoreSet` against the C echo child: give 0, then wait to take 1 (no SEM_UNDO). */
function ipckitPingPong(impl, target, echoKind = 'c', targetVs) {
  let ctx
  const give = [{ index: 0, delta: 1, undo: false }]
  const take = [{ index: 1, delta: -1, undo: false }]
  return {
    impl,
    kind: 'ipckit',
    target,
    targetVs,
    setup() {
      ctx = echoSet(echoKind)
    },
    async sample(n) {
      const { set } = ctx
      if (impl.startsWith('ipckit sync')) {
        const t0 = now()
        for (let i = 0; i < n; i++) {
          set.opSync(give)
          set.opSync(take)
        }
        return now() - t0
      }
      const t0 = now()
      for (let i = 0; i < n; i++) {
        await set.op(give)
        await set.op(take)
      }
      return now() - t0
    },
    teardown: () => ctx?.close(),
  }
}

module.exports = (config) => [
  {
    primitive: 'semaphore',
    operation: 'acquire+release, uncontended',
    unit: 'ns',
    per: 'acquire+release',
    count: Math.max(1, Math.round(config.messages / 5)),
    cases: [
      cCase('uncontended', freeSemaphore),
      ipckitUncontended('ipckit sync', 1.5),
      ipckitUncontended('ipckit async'),
      pythonUncontended(),
    ],
  },
  {
    primitive: 'semaphore',
    operation: 'ping-pong between two processes, C echo child',
    unit: 'us',
    per: 'round trip',
    count: config.roundTrips,
    cases: [cCase('pingpong', echoSet), ipckitPingPong('ipckit sync', 1.5), ipckitPingPong('ipckit async')],
  },
  {
    primitive: 'semaphore',
    operation: 'ping-pong, two Node processes',
    unit: 'us',
    per: 'round trip',
    count: config.roundTrips,
    cases: [
      cCase('pingpong', echoSet),
      ipckitPingPong('ipckit async↔async', undefined, 'node-async', { impl: 'net (UNIX path)', ratio: 1.0 }),
      ipckitPingPong('ipckit sync↔sync', undefined, 'node'),
      loopFloor('sem', () => {
        const set = SemaphoreSet.create({ count: 2 })
        return { id: set.id, close: () => set.remove() }
      }),
      ...builtinRoundTrips('ipckit async↔async'),
    ],
  },
]
