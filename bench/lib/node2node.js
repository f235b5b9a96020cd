'use strict'
/**
 * What a Node.js user would pick to talk between two Node processes (or threads), for the
 * node-to-node rows of every suite: Node's `net` over a UNIX path, the `child_process` IPC
 * channel (`process.send`) and a worker's `postMessage`, each a 64-byte round trip or a
 * stream of 64-byte messages, with both sides written the way Node code is (async).
 *
 * @example
 * const { builtinRoundTrips } = require('../lib/node2node')
 * cases.push(...builtinRoundTrips('ipckit async↔async'))
 */

const { once } = require('node:events')
const { existsSync, mkdirSync, mkdtempSync, rmSync, statSync } = require('node:fs')
const net = require('node:net')
const { execFileSync, fork } = require('node:child_process')
const { tmpdir } = require('node:os')
const { dirname, join } = require('node:path')
const { Worker } = require('node:worker_threads')

const { MessageQueue, socketpair } = require('../../dist')
const { BUILD, LineProcess, background, compileC, now } = require('./harness')

const SIZE = 64
/** The Node side of node-to-node rows (see its header for the modes). */
const NODE_ECHO = join(__dirname, '..', 'peers', 'node-echo.js')

/** net over a UNIX path, Node to Node: write 64 bytes, wait for 64 back. */
function netRoundTrip(compare) {
  let dir
  let echo
  let socket
  const payload = Buffer.alloc(SIZE, 'x')
  return {
    impl: 'net (UNIX path)',
    kind: 'alt',
    compare,
    async setup() {
      dir = mkdtempSync(join(tmpdir(), 'ipckit-bench-'))
      const path = join(dir, 'echo.sock')
      echo = new LineProcess(process.execPath, [NODE_ECHO, 'net', path])
      if ((await echo.next()) !== 'ready') throw new Error('net echo did not start')
      socket = net.connect(path)
      await once(socket, 'connect')
    },
    async sample(n) {
      let pending = 0
      let resolve
      const onData = (chunk) => {
        pending -= chunk.length
        if (pending === 0) resolve()
      }
      socket.on('data', onData)
      const t0 = now()
      for (let i = 0; i < n; i++) {
        pending = SIZE
        const done = new Promise((res) => (resolve = res))
        socket.write(payload)
        await done
      }
      const elapsed = now() - t0
      socket.off('data', onData)
      return elapsed
    },
    async teardown() {
      socket?.destroy()
      await echo?.close()
      if (dir) rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** child_process IPC channel: process.send a 64-character string, wait for it back. */
function processSendRoundTrip(compare) {
  let child
  const payload = 'x'.repeat(SIZE)
  return {
    impl: 'process.send',
    kind: 'alt',
    compare,
    async setup() {
      child = fork(NODE_ECHO, ['ipc'], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] })
      const [m] = await once(child, 'message')
      if (m !== 'ready') throw new Error('ipc echo did not start')
    },
    async sample(n) {
      const t0 = now()
      for (let i = 0; i < n; i++) {
        child.send(payload)
        await once(child, 'message')
      }
      return now() - t0
    },
    async teardown() {
      if (!child) return
      const exited = once(child, 'exit')
      child.disconnect()
      await exited
    },
  }
}

/** worker_threads: postMessage a 64-byte Uint8Array (structured clone), wait for it back. */
function workerRoundTrip(compare) {
  let worker
  const payload = new Uint8Array(SIZE)
  return {
    impl: 'worker_threads postMessage',
    kind: 'alt',
    compare,
    async setup() {
      worker = new Worker(join(__dirname, '..', 'peers', 'worker-echo.js'))
      await once(worker, 'online')
    },
    async sample(n) {
      const t0 = now()
      for (let i = 0; i < n; i++) {
        worker.postMessage(payload)
        await once(worker, 'message')
      }
      return now() - t0
    },
    teardown: () => worker?.terminate(),
  }
}

/** net over a UNIX path: a Node child writes n 64-byte messages, this side counts the bytes. */
function netStream(compare) {
  let dir
  let producer
  let socket
  return {
    impl: 'net (UNIX path)',
    kind: 'alt',
    compare,
    async setup() {
      dir = mkdtempSync(join(tmpdir(), 'ipckit-bench-'))
      const path = join(dir, 'stream.sock')
      producer = new LineProcess(process.execPath, [NODE_ECHO, 'net-produce', path])
      if ((await producer.next()) !== 'ready') throw new Error('net producer did not start')
      socket = net.connect(path)
      await once(socket, 'connect')
    },
    async sample(n) {
      let left = n * SIZE
      let resolve
      const all = new Promise((res) => (resolve = res))
      const onData = (chunk) => {
        left -= chunk.length
        if (left === 0) resolve()
      }
      socket.on('data', onData)
      const t0 = now()
      const sent = producer.ask(`${n} ${SIZE}`)
      await all
      const elapsed = now() - t0
      socket.off('data', onData)
      await sent
      return elapsed
    },
    async teardown() {
      socket?.destroy()
      await producer?.close()
      if (dir) rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** worker_threads: a worker posts n 64-byte Uint8Arrays, this side receives them. */
function workerStream(compare) {
  let worker
  return {
    impl: 'worker_threads postMessage',
    kind: 'alt',
    compare,
    async setup() {
      worker = new Worker(join(__dirname, '..', 'peers', 'worker-echo.js'))
      await once(worker, 'online')
    },
    async sample(n) {
      let left = n
      let resolve
      const all = new Promise((res) => (resolve = res))
      const onMessage = () => {
        if (--left === 0) resolve()
      }
      worker.on('message', onMessage)
      const t0 = now()
      worker.postMessage({ produce: n, size: SIZE })
      await all
      const elapsed = now() - t0
      worker.off('message', onMessage)
      return elapsed
    },
    teardown: () => worker?.terminate(),
  }
}

/**
 * The three built-in round trips between two Node processes (or a worker), each shown against
 * the row `compare`.
 */
function builtinRoundTrips(compare) {
  return [netRoundTrip(compare), processSendRoundTrip(compare), workerRoundTrip(compare)]
}

/**
 * A Node echo child (`bench/peers/node-echo.js MODE ...args`) that prints "ready" once it
 * listens; `stdio` extends its stdio (fds 3, 4 for descriptors it gets).
 */
async function nodeEcho(mode, args = [], extraStdio = []) {
  const child = new LineProcess(process.execPath, [NODE_ECHO, mode, ...args.map(String)], {
    stdio: ['pipe', 'pipe', 'pipe', ...extraStdio],
  })
  const line = await child.next()
  if (line !== 'ready') throw new Error(`node echo ${mode}: ${line}`)
  return child
}

/**
 * C with an event loop on both sides, making the wakes ipckit's async form makes
 * (`bench/c/loop_floor.c`): the floor of the node-to-node async rows. `mode` is `'fd'` (a
 * message socket; `setup()` returns `{ near, far, close }`: the driver's fd 3 and the echo's),
 * `'msg'` or `'sem'` (`setup()` returns `{ id, close }`).
 *
 * @example
 * cases.push(loopFloor('msg', () => { const q = MessageQueue.create(); return { id: q.id, close: () => q.remove() } }))
 */
function loopFloor(mode, setup, compare = 'ipckit async↔async') {
  let ctx
  let echo
  let driver
  const bin = () => compileC('loop_floor')
  return {
    impl: "C event loops (ipckit's wakes)",
    kind: 'alt',
    compare,
    setup() {
      ctx = setup()
      if (mode === 'fd') {
        echo = background(bin(), ['fd-echo'], { stdio: ['ignore', 'ignore', 'pipe', ctx.far] })
        driver = new LineProcess(bin(), ['fd-driver'], { stdio: ['pipe', 'pipe', 'pipe', ctx.near] })
        ctx.handedOver?.()
      } else {
        echo = background(bin(), [`${mode}-echo`, String(ctx.id)])
        driver = new LineProcess(bin(), [`${mode}-driver`, String(ctx.id)])
      }
    },
    async sample(n) {
      const line = await driver.ask(`rt ${n} ${SIZE}`)
      if (!/^\d+$/.test(line)) throw new Error(`loop_floor: ${line}`)
      return Number(line)
    },
    async teardown() {
      await driver?.close()
      await ctx?.close()
      echo?.child.kill('SIGKILL')
      await echo?.done
    },
  }
}

/**
 * A System V queue's async iterator (`for await (const m of q.messages())`) taking n 64-byte
 * messages a Node producer child sends (`node-echo.js produce`, `sendSync`; with
 * `producer: 'produce-async'`, `await send` each): the queue's stream rows, and a row other
 * primitives' streams are compared with. `row` gives the case its `impl`, `kind` and what it
 * is compared with (`compare`, `targetVs`).
 *
 * @example
 * cases.push(queueIteratorStream({ impl: 'MessageQueue async iterator', kind: 'alt', compare: 'ipckit for await' }))
 */
function queueIteratorStream({ producer: mode = 'produce', ...row }) {
  let q
  let producer
  return {
    ...row,
    async setup() {
      q = MessageQueue.create()
      producer = new LineProcess(process.execPath, [NODE_ECHO, mode, String(q.id)])
      if ((await producer.next()) !== 'ready') throw new Error('producer did not start')
    },
    async sample(n) {
      const sent = producer.ask(`${n} ${SIZE}`)
      const t0 = now()
      let i = 0
      for await (const _msg of q.messages()) if (++i === n) break
      const elapsed = now() - t0
      await sent
      return elapsed
    },
    async teardown() {
      await producer?.close()
      q?.remove()
    },
  }
}

/**
 * bench/c/napi_floor.c built as a Node-API addon against the running Node's own headers
 * (`<prefix>/include/node`, which Node's packages ship); throws, with the path it looked in,
 * where they are missing, and the row is listed as not run.
 */
function napiFloorAddon() {
  const include = join(dirname(process.execPath), '..', 'include', 'node')
  if (!existsSync(join(include, 'node_api.h'))) throw new Error(`no Node-API headers in ${include}`)
  const src = join(__dirname, '..', 'c', 'napi_floor.c')
  const dir = join(BUILD, 'c')
  const out = join(dir, `napi_floor-${process.versions.modules}.node`)
  mkdirSync(dir, { recursive: true })
  if (!existsSync(out) || statSync(out).mtimeMs < statSync(src).mtimeMs) {
    const flags = ['-O2', '-Wall', '-Wextra', '-Werror', '-shared', '-fPIC', `-I${include}`]
    execFileSync('gcc', [...flags, '-o', out, src], { stdio: 'pipe' })
  }
  return out
}

/**
 * Loads the floor addon in this process and starts its peer (bench/peers/napi-floor-echo.js
 * with `args` after the addon's path), handing it `ctx.far` as fd 3 when there is one;
 * resolves with both once the peer said "ready" (a peer that did not is closed first).
 *
 * @example
 * const { floor, peer } = await startFloorPeer(ctx, ['produce-msg', String(qid)])
 */
async function startFloorPeer(ctx, args) {
  const addon = napiFloorAddon()
  const floor = require(addon)
  const options = ctx.far === undefined ? {} : { stdio: ['pipe', 'pipe', 'pipe', ctx.far] }
  const peer = new LineProcess(
    process.execPath,
    [join(__dirname, '..', 'peers', 'napi-floor-echo.js'), addon, ...args],
    options,
  )
  ctx.handedOver?.()
  const line = await peer.next()
  if (line !== 'ready') {
    await peer.close()
    throw new Error(`napi floor peer ${args[0] ?? 'echo'} did not start: ${line} ${peer.stderr}`)
  }
  return { floor, peer }
}

/**
 * A socket pair of `kind` for a floor row: `near` this side's fd, `far` the one a child gets
 * as fd 3 (`handedOver()` closes this process's copy once it has it).
 *
 * @example
 * cases.push(napiFloor(floorPair('seqpacket')))
 */
function floorPair(kind) {
  return () => {
    const [mine, theirs] = socketpair(kind)
    return {
      near: mine.fd,
      far: theirs.fd,
      handedOver: () => theirs.close(),
      close: () => mine.close(),
    }
  }
}

/**
 * The Node-API floor: two Node processes round-tripping 64 bytes over a message socket (fd 3
 * of the echo child) through the least an addon can do per wake (bench/c/napi_floor.c: a
 * libuv poll kept started, a promise per receive resolved in a callback scope, one `recv` and
 * one `send` each, nothing checked, nothing copied into JavaScript). No implementation whose
 * JavaScript awaits each message can go below it on this host.
 *
 * @example
 * cases.push(napiFloor(floorPair('seqpacket'), 'net (UNIX path)'))
 */
function napiFloor(setup, compare = 'ipckit async↔async') {
  let ctx
  let echo
  let floor
  return {
    impl: 'Node-API floor (minimal C addon)',
    kind: 'alt',
    compare,
    async setup() {
      ctx = setup()
      ;({ floor, peer: echo } = await startFloorPeer(ctx, []))
      floor.watch(ctx.near)
    },
    async sample(n) {
      const fd = ctx.near
      const t0 = now()
      for (let i = 0; i < n; i++) {
        if (floor.send(fd) !== SIZE) throw new Error('napi floor: short send')
        if ((await floor.receive()) !== SIZE) throw new Error('napi floor: short receive')
      }
      return now() - t0
    },
    async teardown() {
      floor?.unwatch()
      await ctx?.close()
      await echo?.close()
    },
  }
}

/**
 * The Node-API floor of a stream of 64-byte messages between two Node processes: a producer
 * child sends n messages, one native call and one system call each (`produce-seq` on a
 * message socket handed to it as fd 3, or `produce-msg` to a System V queue), and this side
 * takes them with `for await` over an iterator whose `next()` is one blocking native receive
 * and an already resolved promise. No message API whose consumer awaits each message, and
 * whose producer sends each with a call of its own, can go below it.
 *
 * @example
 * cases.push(napiFloorStream(() => { const q = MessageQueue.create(); return { qid: q.id, close: () => q.remove() } }))
 */
function napiFloorStream(setup, compare = 'net (UNIX path)') {
  let ctx
  let producer
  let floor
  return {
    impl: 'Node-API floor (minimal C addon)',
    kind: 'alt',
    compare,
    async setup() {
      ctx = setup()
      const args = ctx.qid === undefined ? ['produce-seq'] : ['produce-msg', String(ctx.qid)]
      ;({ floor, peer: producer } = await startFloorPeer(ctx, args))
    },
    async sample(n) {
      const take = ctx.qid === undefined ? () => floor.receiveSync(ctx.near) : () => floor.msgReceive(ctx.qid)
      const messages = {
        [Symbol.asyncIterator]() {
          return this
        },
        next: () => Promise.resolve({ done: false, value: take() }),
      }
      const sent = producer.ask(`${n} ${SIZE}`)
      const t0 = now()
      let i = 0
      for await (const length of messages) {
        if (length !== SIZE) throw new Error(`napi floor: a message of ${length} bytes`)
        if (++i === n) break
      }
      const elapsed = now() - t0
      await sent
      return elapsed
    },
    async teardown() {
      await producer?.close()
      await ctx?.close()
    },
  }
}

module.exports = {
  SIZE,
  NODE_ECHO,
  builtinRoundTrips,
  floorPair,
  loopFloor,
  napiFloor,
  napiFloorStream,
  queueIteratorStream,
  netRoundTrip,
  netStream,
  workerStream,
  nodeEcho,
}
