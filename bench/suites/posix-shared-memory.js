'use strict'
/**
 * POSIX shared memory and memfd: copy throughput (1 GiB written and read back, in chunks of
 * 4 KiB, 64 KiB and 1 MiB) through the copy API of `PosixSharedMemory` and `Memfd` and through
 * a zero-copy view, against C `memcpy` over the same kind of object and System V's
 * `SharedMemory` copy API, in the same run; and a futex wait/notify ping-pong through a POSIX
 * object between two processes against C doing the same.
 *
 * A suite exports `(config) => op[]`; see bench/README.md for ops and cases.
 */

const { Memfd, PosixSharedMemory, SharedMemory } = require('../../dist')
const { LineProcess, background, compileC, now } = require('../lib/harness')
const { timedCopy } = require('./shared-memory')

const MIB = 1 << 20
const STOP = 0xffff_ffff
let names = 0

/** A POSIX object of `mib` MiB under a name of this run, unlinked at close. */
function posixObject(mib) {
  const name = `/ipckit-bench-${process.pid}-${++names}`
  const shm = PosixSharedMemory.open(name, { size: mib * MIB, create: true, exclusive: true })
  return {
    memory: shm,
    name,
    close() {
      shm.remove()
      shm.close()
    },
  }
}

/** Each kind of memory the copy API runs over. */
const KINDS = {
  posix: posixObject,
  memfd: (mib) => {
    const m = Memfd.create({ size: mib * MIB, name: 'ipckit-bench' })
    return { memory: m, close: () => m.close() }
  },
  sysv: (mib) => {
    const s = SharedMemory.create({ size: mib * MIB })
    return {
      memory: s,
      close() {
        s.remove()
        s.close()
      },
    }
  },
}

/** C memcpy over a POSIX object (bench/c/posix_shm_bench.c driver): `copy NAME MIB CHUNK`. */
function cCopy(chunk, mib) {
  let driver
  let ctx
  return {
    impl: 'C memcpy (POSIX object)',
    kind: 'c',
    setup() {
      ctx = posixObject(mib)
      driver = new LineProcess(compileC('posix_shm_bench'), ['driver'])
    },
    async sample(n) {
      const line = await driver.ask(`copy ${ctx.name} ${n} ${chunk}`)
      if (!/^\d+$/.test(line)) throw new Error(`posix_shm_bench: ${line}`)
      return Number(line)
    },
    async teardown() {
      await driver?.close()
      ctx?.close()
    },
  }
}

/** ipckit's copy API over one kind of memory: `write(src, offset)` and `read(offset, dst)`. */
function ipckitCopy(impl, kind, chunk, mib, target, caseKind = 'ipckit') {
  let ctx
  const src = Buffer.alloc(chunk, 'x')
  const dst = Buffer.alloc(chunk)
  return {
    impl,
    kind: caseKind,
    target,
    compare: caseKind === 'alt' ? 'ipckit copy API (POSIX)' : undefined,
    setup() {
      ctx = KINDS[kind](mib)
    },
    async sample(n) {
      const { memory } = ctx
      return timedCopy(
        n,
        chunk,
        memory.size,
        src,
        dst,
        (s, off) => memory.write(s, off),
        (off, d) => memory.read(off, d),
      )
    },
    teardown: () => ctx?.close(),
  }
}

/** A typed-array copy over ipckit's zero-copy view of a POSIX object. */
function ipckitView(chunk, mib, target) {
  let ctx
  let view
  const src = Buffer.alloc(chunk, 'x')
  const dst = Buffer.alloc(chunk)
  return {
    impl: 'ipckit zero-copy view (POSIX)',
    kind: 'ipckit',
    target,
    setup() {
      ctx = posixObject(mib)
      view = ctx.memory.attach()
    },
    async sample(n) {
      const bytes = new Uint8Array(view.buffer)
      return timedCopy(
        n,
        chunk,
        bytes.length,
        src,
        dst,
        (s, off) => bytes.set(s, off),
        (off, d) => d.set(bytes.subarray(off, off + chunk)),
      )
    },
    teardown() {
      view?.detach()
      ctx?.close()
    },
  }
}

/** A POSIX object with a C futex echo child on the word at offset 0. */
function echoObject() {
  const ctx = posixObject(1)
  const view = ctx.memory.attach()
  const words = new Int32Array(view.buffer)
  const echo = background(compileC('posix_shm_bench'), ['echo', ctx.name])
  return {
    ...ctx,
    words,
    async close() {
      Atomics.store(words, 0, STOP | 0)
      ctx.memory.notify(0)
      const { code, stderr } = await echo.done
      view.detach()
      ctx.close()
      if (code !== 0) throw new Error(`posix_shm_bench echo exited ${code}: ${stderr}`)
    },
  }
}

/** C futex ping-pong: `pingpong NAME N`. */
function cPingPong() {
  let driver
  let ctx
  return {
    impl: 'C futex',
    kind: 'c',
    setup() {
      ctx = echoObject()
      driver = new LineProcess(compileC('posix_shm_bench'), ['driver'])
    },
    async sample(n) {
      const line = await driver.ask(`pingpong ${ctx.name} ${n}`)
      if (!/^\d+$/.test(line)) throw new Error(`posix_shm_bench: ${line}`)
      return Number(line)
    },
    async teardown() {
      await driver?.close()
      await ctx?.close()
    },
  }
}

/** ipckit's ping-pong, the C driver's protocol: `Atomics.store`, `notify(0, 1)`, then `waitSync` / `await wait`. */
function ipckitPingPong(impl, target) {
  let ctx
  return {
    impl,
    kind: 'ipckit',
    target,
    setup() {
      ctx = echoObject()
    },
    async sample(n) {
      const { memory, words } = ctx
      let v = Atomics.load(words, 0)
      const t0 = now()
      for (let i = 0; i < n; i++) {
        const odd = (v | 1) + (v & 1 ? 2 : 0)
        Atomics.store(words, 0, odd)
        memory.notify(0, 1)
        if (impl === 'ipckit sync') {
          while ((v = Atomics.load(words, 0)) === odd) memory.waitSync(0, odd)
        } else {
          while ((v = Atomics.load(words, 0)) === odd) await memory.wait(0, odd)
        }
      }
      return now() - t0
    },
    teardown: () => ctx?.close(),
  }
}

module.exports = (config) => {
  // As the System V suite: 1 GiB per sample, beyond this host's 480 MiB L3 cache; a few MiB in
  // the smoke run.
  const mib = config.smoke ? 2 : 1024
  const size = (bytes) =>
    bytes >= 1 << 30 ? `${bytes / (1 << 30)} GiB` : bytes >= MIB ? `${bytes / MIB} MiB` : `${bytes / 1024} KiB`
  // One untimed pass over the whole object first: no timed round pays for faulting pages in.
  const prefaulted = (c) => ({
    ...c,
    async setup(cfg) {
      await c.setup?.(cfg)
      await c.sample(mib)
    },
  })
  const copyOps = [4096, 64 * 1024, MIB].map((chunk) => ({
    primitive: 'POSIX shared memory, memfd',
    operation: `write+read ${size(mib * MIB)}, ${size(chunk)} chunks`,
    unit: 'us',
    per: 'MiB',
    count: mib,
    cases: [
      cCopy(chunk, mib),
      ipckitCopy('ipckit copy API (POSIX)', 'posix', chunk, mib, 1.3),
      ipckitCopy('ipckit copy API (memfd)', 'memfd', chunk, mib, 1.3),
      ipckitView(chunk, mib, 1.1),
      ipckitCopy('ipckit copy API (System V)', 'sysv', chunk, mib, undefined, 'alt'),
    ].map(prefaulted),
  }))
  return [
    ...copyOps,
    {
      primitive: 'POSIX shared memory, memfd',
      operation: 'futex wait/notify ping-pong through a POSIX object, C echo child',
      unit: 'us',
      per: 'round trip',
      count: config.roundTrips,
      cases: [cPingPong(), ipckitPingPong('ipckit sync', 1.5), ipckitPingPong('ipckit async')],
    },
  ]
}
