'use strict'
/**
 * POSIX named semaphores: uncontended acquire+release, and a ping-pong between two processes
 * (this side posts semaphore A and waits on B; a C echo child does the opposite), sync and
 * async, against C doing the same work in the same run, System V semaphores doing the same
 * (ipckit's `Semaphore` and `SemaphoreSet`), and Python's `posix_ipc`.
 *
 * A suite exports `(config) => op[]`; see bench/README.md for ops and cases.
 */

const { existsSync, mkdtempSync, rmSync, writeFileSync } = require('node:fs')
const { tmpdir } = require('node:os')
const { join } = require('node:path')

const { PosixSemaphore, Semaphore, SemaphoreSet } = require('../../dist')
const { background, compileC, now } = require('../lib/harness')
const { cDriverCase, pythonDriverCase } = require('../lib/posix-drivers')

let seq = 0
function create(tag, initial) {
  const name = `/ipckit-bench-${process.pid}-${tag}-${++seq}`
  return PosixSemaphore.open(name, { exclusive: true, initial })
}

function removeSem(s) {
  try {
    s.remove()
  } catch {
    // gone already
  }
  s.close()
}

/** A semaphore holding 1, as a free lock does. */
function freeSemaphore() {
  const sem = create('free', 1)
  return { sem, close: () => removeSem(sem) }
}

/** Semaphores A and B at 0 with a C echo child (waits on A, posts B); `close()` stops it. */
function echoPair() {
  const a = create('a', 0)
  const b = create('b', 0)
  const dir = mkdtempSync(join(tmpdir(), 'ipckit-bench-'))
  const stop = join(dir, 'stop')
  const echo = background(compileC('posix_bench'), ['sem-echo', a.name, b.name, stop])
  return {
    a,
    b,
    async close() {
      writeFileSync(stop, '')
      a.release()
      const { code, stderr } = await echo.done
      removeSem(a)
      removeSem(b)
      if (existsSync(dir)) rmSync(dir, { recursive: true, force: true })
      if (code !== 0) throw new Error(`posix_bench sem-echo exited ${code}: ${stderr}`)
    },
  }
}

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
      const t0 = now()
      if (impl === 'ipckit sync') {
        for (let i = 0; i < n; i++) {
          sem.acquireSync()
          sem.release()
        }
      } else {
        for (let i = 0; i < n; i++) {
          await sem.acquire()
          sem.release()
        }
      }
      return now() - t0
    },
    teardown: () => ctx?.close(),
  }
}

/** System V's `Semaphore` (SEM_UNDO, its default) doing the same. */
function sysvUncontended(impl, compare) {
  let sem
  return {
    impl,
    kind: 'alt',
    compare,
    setup() {
      sem = Semaphore.open(0, { create: true, initial: 1 })
    },
    async sample(n) {
      const t0 = now()
      if (compare === 'ipckit sync') {
        for (let i = 0; i < n; i++) {
          sem.acquireSync()
          sem.release()
        }
      } else {
        for (let i = 0; i < n; i++) {
          await sem.acquire()
          sem.release()
        }
      }
      return now() - t0
    },
    teardown() {
      sem?.remove()
      sem?.close()
    },
  }
}

function ipckitPingPong(impl, target) {
  let ctx
  return {
    impl,
    kind: 'ipckit',
    target,
    setup() {
      ctx = echoPair()
    },
    async sample(n) {
      const { a, b } = ctx
      const t0 = now()
      if (impl === 'ipckit sync') {
        for (let i = 0; i < n; i++) {
          a.release()
          b.acquireSync()
        }
      } else {
        for (let i = 0; i < n; i++) {
          a.release()
          await b.acquire()
        }
      }
      return now() - t0
    },
    teardown: () => ctx?.close(),
  }
}

/** The same ping-pong on a System V set of two with its C echo child (bench/c/sem_echo.c). */
function sysvPingPong(impl, compare) {
  let set
  let echo
  const give = [{ index: 0, delta: 1, undo: false }]
  const take = [{ index: 1, delta: -1, undo: false }]
  return {
    impl,
    kind: 'alt',
    compare,
    setup() {
      set = SemaphoreSet.create({ count: 2 })
      echo = background(compileC('sem_echo'), [String(set.id)])
    },
    async sample(n) {
      const t0 = now()
      if (compare === 'ipckit sync') {
        for (let i = 0; i < n; i++) {
          set.opSync(give)
          set.opSync(take)
        }
      } else {
        for (let i = 0; i < n; i++) {
          await set.op(give)
          await set.op(take)
        }
      }
      return now() - t0
    },
    async teardown() {
      set?.remove()
      set?.close()
      await echo?.done
    },
  }
}

module.exports = (config) => [
  {
    primitive: 'POSIX semaphore',
    operation: 'acquire+release, uncontended',
    unit: 'ns',
    per: 'acquire+release',
    count: Math.max(1, Math.round(config.messages / 5)),
    cases: [
      cDriverCase('C sem_wait/sem_post', freeSemaphore, (ctx, n) => `sem-uncontended ${ctx.sem.name} ${n}`),
      // No target: uncontended, glibc's sem_trywait/sem_post are atomics without a system
      // call (a few ns), so any call across Node-API is a large multiple of them.
      ipckitUncontended('ipckit sync'),
      ipckitUncontended('ipckit async'),
      sysvUncontended('ipckit System V sync', 'ipckit sync'),
      sysvUncontended('ipckit System V async', 'ipckit async'),
      pythonDriverCase(freeSemaphore, (ctx, n) => `sem-uncontended ${ctx.sem.name} ${n}`),
    ],
  },
  {
    primitive: 'POSIX semaphore',
    operation: 'ping-pong between two processes, C echo child',
    unit: 'us',
    per: 'round trip',
    count: config.roundTrips,
    cases: [
      cDriverCase('C sem_wait/sem_post', echoPair, (ctx, n) => `sem-pingpong ${ctx.a.name} ${ctx.b.name} ${n}`),
      ipckitPingPong('ipckit sync', 1.5),
      ipckitPingPong('ipckit async'),
      sysvPingPong('ipckit System V sync', 'ipckit sync'),
      sysvPingPong('ipckit System V async', 'ipckit async'),
      pythonDriverCase(echoPair, (ctx, n) => `sem-pingpong ${ctx.a.name} ${ctx.b.name} ${n}`),
    ],
  },
]
