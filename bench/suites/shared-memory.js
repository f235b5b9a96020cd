'use strict'
/**
 * System V shared memory: copy throughput (1 GiB written into a segment and read back, in
 * chunks of 4 KiB, 64 KiB and 1 MiB) through the copy API, through a zero-copy view and through
 * `shm-typed-array`, against C `memcpy` in the same run; and a futex wait/notify ping-pong
 * between two processes against C doing the same.
 *
 * A suite exports `(config) => op[]`; see bench/README.md for ops and cases.
 */

const { join } = require('node:path')

const { SharedMemory } = require('../../dist')
const { LineProcess, background, compileC, now } = require('../lib/harness')
const { NODE_ECHO, builtinRoundTrips } = require('../lib/node2node')
const { npmPeer, pythonPeer } = require('../lib/peers')

const PY_DRIVER = join(__dirname, '..', 'peers', 'sysv_ipc_sysv_driver.py')

const MIB = 1 << 20
const STOP = 0xffff_ffff

/** A private segment of `mib` MiB, removed at close. */
function segment(mib) {
  const shm = SharedMemory.create({ size: mib * MIB })
  return {
    shm,
    id: shm.id,
    close() {
      shm.remove()
      shm.close()
    },
  }
}

/** The offsets of `n` MiB copied `chunk` bytes at a time into a segment of `size` bytes (wrapping). */
function offsets(n, chunk, size) {
  const count = Math.floor((n * MIB) / chunk)
  const per = Math.floor(size / chunk)
  return { count, at: (i) => (i % per) * chunk }
}

/** C memcpy (bench/c/shm_driver.c): `copy SHMID MIB CHUNK`. */
function cCopy(chunk, mib) {
  let driver
  let ctx
  return {
    impl: 'C memcpy',
    kind: 'c',
    setup() {
      ctx = segment(mib)
      driver = new LineProcess(compileC('shm_driver'), [])
    },
    async sample(n) {
      const line = await driver.ask(`copy ${ctx.id} ${n} ${chunk}`)
      if (!/^\d+$/.test(line)) throw new Error(`shm_driver: ${line}`)
      return Number(line)
    },
    async teardown() {
      await driver?.close()
      ctx?.close()
    },
  }
}

/**
 * Writes `n` MiB from `src` into the segment at successive offsets, then reads as much back
 * into `dst`, with `write(src, offset)` and `read(offset, dst)`; checks the last byte read.
 */
function timedCopy(n, chunk, size, src, dst, write, read) {
  const { count, at } = offsets(n, chunk, size)
  dst[chunk - 1] = 0
  const t0 = now()
  for (let i = 0; i < count; i++) write(src, at(i))
  for (let i = 0; i < count; i++) read(at(i), dst)
  const elapsed = now() - t0
  if (dst[chunk - 1] !== src[chunk - 1]) throw new Error('copy check failed')
  return elapsed
}

/** ipckit's copy API: `shm.write(src, offset)` and `shm.read(offset, dst)`. */
function ipckitCopy(chunk, mib, target) {
  let ctx
  const src = Buffer.alloc(chunk, 'x')
  const dst = Buffer.alloc(chunk)
  return {
    impl: 'ipckit copy API',
    kind: 'ipckit',
    target,
    setup() {
      ctx = segment(mib)
    },
    async sample(n) {
      const { shm } = ctx
      return timedCopy(
        n,
        chunk,
        shm.size,
        src,
        dst,
        (s, off) => shm.write(s, off),
        (off, d) => shm.read(off, d),
      )
    },
    teardown: () => ctx?.close(),
  }
}

/** Typed-array copies over a zero-copy `Uint8Array` of the segment (ipckit's view, or a peer's). */
function arrayCopy(n, chunk, bytes, src, dst) {
  return timedCopy(
    n,
    chunk,
    bytes.length,
    src,
    dst,
    (s, off) => bytes.set(s, off),
    (off, d) => d.set(bytes.subarray(off, off + chunk)),
  )
}

/** ipckit's zero-copy view: a Uint8Array over `view.buffer`, copied with `set`. */
function ipckitView(chunk, mib, target) {
  let ctx
  let view
  const src = Buffer.alloc(chunk, 'x')
  const dst = Buffer.alloc(chunk)
  return {
    impl: 'ipckit zero-copy view',
    kind: 'ipckit',
    target,
    setup() {
      ctx = segment(mib)
      view = ctx.shm.attach()
    },
    async sample(n) {
      return arrayCopy(n, chunk, new Uint8Array(view.buffer), src, dst)
    },
    teardown() {
      view?.detach()
      ctx?.close()
    },
  }
}

/** npm `shm-typed-array`: its Buffer over a System V segment, copied with `set`. */
function shmTypedArrayCopy(chunk, mib) {
  let peer
  let bytes
  const src = Buffer.alloc(chunk, 'x')
  const dst = Buffer.alloc(chunk)
  return {
    impl: 'shm-typed-array',
    kind: 'peer',
    compare: 'ipckit zero-copy view',
    setup(config) {
      if (!config.peers) throw new Error('peers skipped (--no-peers or smoke mode)')
      peer = npmPeer('shm-typed-array')
      bytes = peer.create(mib * MIB, 'Buffer')
      if (!bytes) throw new Error('shm-typed-array: create() returned null')
    },
    async sample(n) {
      return arrayCopy(n, chunk, bytes, src, dst)
    },
    teardown() {
      if (bytes) peer.detach(bytes.key, true)
    },
  }
}

/**
 * The same typed-array copies over ordinary memory (a plain ArrayBuffer of the segment's
 * size): what `set` costs in Node whatever the memory, so what the zero-copy view can reach.
 */
function plainArrayCopy(chunk, mib) {
  let bytes
  const src = Buffer.alloc(chunk, 'x')
  const dst = Buffer.alloc(chunk)
  return {
    impl: 'typed-array copy, ordinary memory',
    kind: 'alt',
    compare: 'ipckit zero-copy view',
    setup() {
      bytes = new Uint8Array(mib * MIB)
    },
    async sample(n) {
      return arrayCopy(n, chunk, bytes, src, dst)
    },
  }
}

/** Python's sysv_ipc: `write(bytes, offset)` and `read(length, offset)` (bench/peers/sysv_ipc_sysv_driver.py). */
function pythonCopy(chunk, mib) {
  let driver
  let shm
  let key
  return {
    impl: 'Python sysv_ipc',
    kind: 'peer',
    compare: 'ipckit copy API',
    setup(config) {
      if (!config.peers) throw new Error('peers skipped (--no-peers or smoke mode)')
      const py = pythonPeer('sysv_ipc')
      // sysv_ipc opens segments by key only: a new segment under a random unused key.
      while (!shm) {
        key = 0x5d000000 + Math.floor(Math.random() * 0xffffff)
        try {
          shm = SharedMemory.open(key, { size: mib * MIB, create: true, exclusive: true })
        } catch (err) {
          if (err.code !== 'EEXIST') throw err
        }
      }
      driver = new LineProcess(py.python, [PY_DRIVER], { env: { ...process.env, PYTHONPATH: py.path } })
    },
    async sample(n) {
      const line = await driver.ask(`shm-copy ${key} ${n} ${chunk}`)
      if (!/^\d+$/.test(line)) throw new Error(`sysv_ipc driver: ${line}`)
      return Number(line)
    },
    async teardown() {
      await driver?.close()
      shm?.remove()
      shm?.close()
    },
  }
}

/**
 * A private segment with a futex echo child on the word at offset 0: C (bench/c/shm_echo.c),
 * or Node with the sync (`'node'`) or async (`'node-async'`) API.
 */
function echoSegment(kind = 'c') {
  const ctx = segment(1)
  const view = ctx.shm.attach()
  const words = new Int32Array(view.buffer)
  const echo =
    kind === 'c'
      ? background(compileC('shm_echo'), [String(ctx.id)])
      : background(process.execPath, [NODE_ECHO, kind === 'node' ? 'futex' : 'futex-async', String(ctx.id)])
  return {
    ...ctx,
    words,
    async close() {
      Atomics.store(words, 0, STOP | 0)
      ctx.shm.notify(0)
      const { code, stderr } = await echo.done
      view.detach()
      ctx.close()
      if (code !== 0) throw new Error(`shm_echo exited ${code}: ${stderr}`)
    },
  }
}

/** C futex ping-pong: `pingpong SHMID N`. */
function cPingPong() {
  let driver
  let ctx
  return {
    impl: 'C futex',
    kind: 'c',
    setup() {
      ctx = echoSegment()
      driver = new LineProcess(compileC('shm_driver'), [])
    },
    async sample(n) {
      const line = await driver.ask(`pingpong ${ctx.id} ${n}`)
      if (!/^\d+$/.test(line)) throw new Error(`shm_driver: ${line}`)
      return Number(line)
    },
    async teardown() {
      await driver?.close()
      await ctx?.close()
    },
  }
}

/**
 * ipckit's ping-pong, the protocol of the C driver: store an odd value with `Atomics.store` on
 * a zero-copy view, `notify(0, 1)`, then wait (`waitSync` / `await wait`) until the echo child
 * has stored the next value.
 */
function ipckitPingPong(impl, target, echoKind = 'c', targetVs) {
  let ctx
  return {
    impl,
    kind: 'ipckit',
    target,
    targetVs,
    setup() {
      ctx = echoSegment(echoKind)
    },
    async sample(n) {
      const { shm, words } = ctx
      let v = Atomics.load(words, 0)
      const t0 = now()
      for (let i = 0; i < n; i++) {
        const odd = (v | 1) + (v & 1 ? 2 : 0)
        Atomics.store(words, 0, odd)
        shm.notify(0, 1)
        if (impl.startsWith('ipckit sync')) {
          while ((v = Atomics.load(words, 0)) === odd) shm.waitSync(0, odd)
        } else {
          while ((v = Atomics.load(words, 0)) === odd) await shm.wait(0, odd)
        }
      }
      return now() - t0
    },
    teardown: () => ctx?.close(),
  }
}

module.exports = (config) => {
  // 1 GiB per sample (issue 8's throughput figure) written into a segment of 1 GiB and read
  // back: larger than this host's 480 MiB L3 cache, so every pass goes to memory (a 64 MiB
  // segment stays partly cached, and its figures swing with the host's other tenants). A few
  // MiB in the smoke run.
  const mib = config.smoke ? 2 : 1024
  const size = (bytes) =>
    bytes >= 1 << 30 ? `${bytes / (1 << 30)} GiB` : bytes >= MIB ? `${bytes / MIB} MiB` : `${bytes / 1024} KiB`
  // Setup ends with one untimed pass over the whole segment, so that no timed round pays for
  // faulting its pages in (the harness's warm-up covers a tenth of the count).
  const prefaulted = (c) => ({
    ...c,
    async setup(cfg) {
      await c.setup?.(cfg)
      await c.sample(mib)
    },
  })
  const copyOps = [4096, 64 * 1024, MIB].map((chunk) => ({
    primitive: 'shared memory',
    operation: `write+read ${size(mib * MIB)}, ${size(chunk)} chunks`,
    unit: 'us',
    per: 'MiB',
    count: mib,
    cases: [
      cCopy(chunk, mib),
      ipckitCopy(chunk, mib, 1.3),
      ipckitView(chunk, mib, 1.1),
      plainArrayCopy(chunk, mib),
      shmTypedArrayCopy(chunk, mib),
      pythonCopy(chunk, mib),
    ].map(prefaulted),
  }))
  return [
    ...copyOps,
    {
      primitive: 'shared memory',
      operation: 'futex wait/notify ping-pong between two processes, C echo child',
      unit: 'us',
      per: 'round trip',
      count: config.roundTrips,
      cases: [cPingPong(), ipckitPingPong('ipckit sync', 1.5), ipckitPingPong('ipckit async')],
    },
    {
      primitive: 'shared memory',
      operation: 'futex wait/notify ping-pong, two Node processes',
      unit: 'us',
      per: 'round trip',
      count: config.roundTrips,
      cases: [
        cPingPong(),
        ipckitPingPong('ipckit async↔async', undefined, 'node-async'),
        ipckitPingPong('ipckit sync↔sync', undefined, 'node'),
        ...builtinRoundTrips('ipckit async↔async'),
      ],
    },
  ]
}

// The copy loop and its offsets, for the suites of the other kinds of shared memory
// (posix-shared-memory.js), which must time exactly the same work.
module.exports.offsets = offsets
module.exports.timedCopy = timedCopy
