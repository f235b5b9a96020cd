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
const { mkdtempSync, rmSync } = require('node:fs')
const net = require('node:net')
const { fork } = require('node:child_process')
const { tmpdir } = require('node:os')
const { join } = require('node:path')
const { Worker } = require('node:worker_threads')

const { LineProcess, background, compileC, now } = require('./harness')

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

module.exports = { SIZE, NODE_ECHO, builtinRoundTrips, loopFloor, netRoundTrip, netStream, workerStream, nodeEcho }
