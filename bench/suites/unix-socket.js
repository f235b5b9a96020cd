'use strict'
/**
 * Pipes and UNIX sockets: latency (64-byte round trips with an echo child) and throughput (64-byte
 * messages streamed from another process) of a pipe and of stream, seqpacket and datagram socket
 * pairs, against C doing the same work over the same kind of descriptor in the same run, Node's
 * `net` over a UNIX path, and the npm packages `unix-dgram` and `node-unix-socket`.
 *
 * Every echo child and producer is C (`bench/c/fd_bench.c`), so a row differs from the C row only
 * by its timed side. See bench/README.md for the method.
 */

const { once } = require('node:events')
const { closeSync, mkdtempSync, rmSync } = require('node:fs')
const net = require('node:net')
const { tmpdir } = require('node:os')
const { join } = require('node:path')

const { UnixDatagramSocket, pipe, socketpair } = require('../../dist')
const { native } = require('../../dist/native')
const { LineProcess, background, compileC, now } = require('../lib/harness')
const {
  builtinRoundTrips,
  loopFloor,
  floorPair,
  napiFloor,
  napiFloorStream,
  netStream,
  nodeEcho,
  workerStream,
} = require('../lib/node2node')
const { npmPeer } = require('../lib/peers')

const SIZE = 64
const KINDS = {
  pipe: 'pipe',
  stream: 'socketpair stream',
  seqpacket: 'socketpair seqpacket',
  dgram: 'socketpair dgram',
}
const bin = () => compileC('fd_bench')

/** Closes a pipe end, a net.Socket or a message socket. */
function closeEnd(end) {
  if (typeof end.destroy === 'function') end.destroy()
  else end.close()
}

/**
 * Two connected channels of `kind`: `near` is the Node side (`{ read, write }`: the same socket
 * for a socket pair, two pipe ends for pipes), `far` the two descriptors a child gets as fds 3
 * (it reads) and 4 (it writes). `closeFar()` closes this process's copies once the child has
 * them. Stream ends are made paused so that this process never reads the child's data.
 */
function channel(kind) {
  if (kind === 'pipe') {
    const toChild = pipe()
    const fromChild = pipe()
    return {
      near: { read: fromChild.readable, write: toChild.writable },
      far: [toChild.readable.fd, fromChild.writable.fd],
      closeFar() {
        toChild.readable.close()
        fromChild.writable.close()
      },
      closeNear() {
        toChild.writable.destroy()
        fromChild.readable.destroy()
      },
    }
  }
  const [mine, theirs] = socketpair(kind, { paused: true })
  return {
    near: { read: mine, write: mine },
    far: [theirs.fd, theirs.fd],
    closeFar: () => closeEnd(theirs),
    closeNear: () => closeEnd(mine),
  }
}

/** A C echo child on the far side of a new channel of `kind`. */
function echoChannel(kind) {
  const ch = channel(kind)
  const echo = background(bin(), ['echo'], { stdio: ['ignore', 'ignore', 'pipe', ...ch.far] })
  ch.closeFar()
  return {
    ...ch.near,
    async close() {
      ch.closeNear()
      echo.child.kill('SIGKILL')
      await echo.done
    },
  }
}

/** Two C processes on the two sides of a channel: the baseline for round trips and streams. */
function cCase(kind, command) {
  let driver
  let other
  const batched = command === 'stream-batched'
  return {
    // The batched consumer is a floor to read the stream rows against, not the baseline.
    impl: batched ? 'C, recvmmsg of up to 256 (floor)' : 'C read/write',
    kind: batched ? 'alt' : 'c',
    compare: batched ? NET : undefined,
    setup() {
      const ch = channel(kind)
      // The driver gets the near side's descriptors (read end at 3, write end at 4).
      const nearFds = kind === 'pipe' ? [ch.near.read.fd, ch.near.write.fd] : [ch.near.read.fd, ch.near.read.fd]
      driver = new LineProcess(bin(), ['driver'], { stdio: ['pipe', 'pipe', 'pipe', ...nearFds] })
      other =
        command === 'rt'
          ? background(bin(), ['echo'], { stdio: ['ignore', 'ignore', 'pipe', ...ch.far] })
          : new LineProcess(bin(), ['driver'], { stdio: ['pipe', 'pipe', 'pipe', ...ch.far] })
      ch.closeFar()
      ch.closeNear()
    },
    async sample(n) {
      if (command === 'rt') return Number(await driver.ask(`rt ${n} ${SIZE}`))
      // The far side produces, the near side consumes and times.
      const elapsed = driver.ask(`${batched ? 'consume-batched' : 'consume'} ${n} ${SIZE}`)
      await other.ask(`produce ${n} ${SIZE}`)
      return Number(await elapsed)
    },
    async teardown() {
      await driver?.close()
      if (other instanceof LineProcess) await other.close()
      else if (other) {
        other.child.kill('SIGKILL')
        await other.done
      }
    },
  }
}

/** Waits until `bytes` bytes came on stream `read`; resolves when they have. */
function collect(read, bytes) {
  return new Promise((resolve) => {
    let left = bytes
    const onData = (chunk) => {
      left -= chunk.length
      if (left <= 0) {
        read.off('data', onData)
        resolve()
      }
    }
    read.on('data', onData)
    // A stream pair end made paused stays paused when a 'data' listener comes.
    read.resume()
  })
}

/** A round trip over a Node stream (pipe ends, a socket-pair stream, net): write, await the echo. */
async function streamRoundTrips(read, write, n, payload) {
  let resolve
  let left = 0
  const onData = (chunk) => {
    left -= chunk.length
    if (left <= 0) resolve()
  }
  read.on('data', onData)
  read.resume()
  const t0 = now()
  for (let i = 0; i < n; i++) {
    left = SIZE
    const done = new Promise((res) => (resolve = res))
    write.write(payload)
    await done
  }
  const elapsed = now() - t0
  read.off('data', onData)
  return elapsed
}

/**
 * Node's own streams over a pipe pair on both ends, no ipckit: `net.Socket`s over the raw
 * descriptors here, the same `pipe` echo child. Since `pipe()` hands out Node streams, this is
 * the floor of ipckit's pipe row.
 */
function nodeStreamsOnPipes() {
  let echo
  let read
  let write
  const payload = Buffer.alloc(SIZE, 'x')
  return {
    impl: "Node's streams on the pipes, no ipckit (net.Socket both ends)",
    kind: 'alt',
    compare: NET,
    async setup() {
      const [toChildR, toChildW] = native.pipeCreate()
      const [fromChildR, fromChildW] = native.pipeCreate()
      try {
        echo = await nodeEcho('pipe', [], [toChildR, fromChildW])
      } finally {
        closeSync(toChildR)
        closeSync(fromChildW)
      }
      read = new net.Socket({ fd: fromChildR, readable: true, writable: false })
      write = new net.Socket({ fd: toChildW, readable: false, writable: true })
    },
    sample: (n) => streamRoundTrips(read, write, n, payload),
    async teardown() {
      read?.destroy()
      write?.destroy()
      await echo?.close()
    },
  }
}

/** ipckit's round trip with a C echo child: streams for pipes and stream pairs, sync or async messages. */
function ipckitRoundTrip(kind, impl, target) {
  let ch
  const payload = Buffer.alloc(SIZE, 'x')
  return {
    impl,
    kind: 'ipckit',
    target,
    setup() {
      ch = echoChannel(kind)
    },
    async sample(n) {
      if (kind === 'pipe' || kind === 'stream') return streamRoundTrips(ch.read, ch.write, n, payload)
      const sock = ch.read
      if (impl === 'ipckit sync') {
        const t0 = now()
        for (let i = 0; i < n; i++) {
          sock.sendSync(payload)
          sock.receiveSync()
        }
        return now() - t0
      }
      const t0 = now()
      for (let i = 0; i < n; i++) {
        await sock.send(payload)
        await sock.receive()
      }
      return now() - t0
    },
    teardown: () => ch?.close(),
  }
}

/**
 * ipckit between two Node processes: this side as in {@link ipckitRoundTrip}, the far side a
 * Node echo child (`bench/peers/node-echo.js`) in `mode` (sync or async for message sockets,
 * a net.Socket for streams and pipes).
 */
function ipckitNodeRoundTrip(kind, impl, mode, targetVs) {
  let ch
  let echo
  const payload = Buffer.alloc(SIZE, 'x')
  return {
    impl,
    kind: 'ipckit',
    targetVs,
    async setup() {
      ch = channel(kind)
      echo = await nodeEcho(mode, [], ch.far)
      ch.closeFar()
    },
    async sample(n) {
      const { read, write } = ch.near
      if (kind === 'pipe' || kind === 'stream') return streamRoundTrips(read, write, n, payload)
      if (impl.startsWith('ipckit sync')) {
        const t0 = now()
        for (let i = 0; i < n; i++) {
          read.sendSync(payload)
          read.receiveSync()
        }
        return now() - t0
      }
      const t0 = now()
      for (let i = 0; i < n; i++) {
        await read.send(payload)
        await read.receive()
      }
      return now() - t0
    },
    async teardown() {
      ch?.closeNear()
      await echo?.close()
    },
  }
}

/** A Node producer child (`produce-seq`, sendSync) and ipckit's async iterator here. */
function ipckitNodeStream(targetVs) {
  let ch
  let producer
  return {
    impl: 'ipckit async iterator',
    kind: 'ipckit',
    targetVs,
    async setup() {
      ch = channel('seqpacket')
      producer = await nodeEcho('produce-seq', [], ch.far)
      ch.closeFar()
    },
    async sample(n) {
      const { read } = ch.near
      const sent = producer.ask(`${n} ${SIZE}`)
      const t0 = now()
      let i = 0
      for await (const _msg of read.messages()) if (++i === n) break
      const elapsed = now() - t0
      await sent
      return elapsed
    },
    async teardown() {
      ch?.closeNear()
      await producer?.close()
    },
  }
}

/** A temporary directory for socket paths, removed by `close()`. */
function tempDir() {
  const dir = mkdtempSync(join(tmpdir(), 'ipckit-bench-'))
  return { dir, close: () => rmSync(dir, { recursive: true, force: true }) }
}

/** A C echo server on a path (`listen-stream`, `listen-seqpacket`, `dgram`), started. */
async function echoServer(mode, path) {
  const server = new LineProcess(bin(), [mode, path])
  const line = await server.next()
  if (line !== 'ready') throw new Error(`echo server did not start: ${line}`)
  return {
    async close() {
      server.child.kill('SIGKILL')
      await server.closed
    },
  }
}

/** net over a UNIX path to a C echo server: write 64 bytes, wait for 64 back. */
function netRoundTrip(compare) {
  let tmp
  let server
  let socket
  const payload = Buffer.alloc(SIZE, 'x')
  return {
    impl: 'net (UNIX path)',
    kind: 'alt',
    compare,
    async setup() {
      tmp = tempDir()
      const path = join(tmp.dir, 'echo.sock')
      server = await echoServer('listen-stream', path)
      socket = net.connect(path)
      await once(socket, 'connect')
    },
    sample: (n) => streamRoundTrips(socket, socket, n, payload),
    async teardown() {
      socket?.destroy()
      await server?.close()
      tmp?.close()
    },
  }
}

/**
 * A datagram socket bound to a path here, a C echo server bound to another: what the npm peers
 * do (they have no socket pairs). `send` names the destination every time, as theirs do.
 */
function ipckitDgramPath() {
  let tmp
  let server
  let sock
  let to
  const payload = Buffer.alloc(SIZE, 'x')
  return {
    impl: 'ipckit async, bound paths',
    kind: 'ipckit',
    async setup() {
      tmp = tempDir()
      to = join(tmp.dir, 'echo.sock')
      server = await echoServer('dgram', to)
      sock = UnixDatagramSocket.bind(join(tmp.dir, 'me.sock'))
    },
    async sample(n) {
      const t0 = now()
      for (let i = 0; i < n; i++) {
        await sock.send(payload, { to })
        await sock.receive()
      }
      return now() - t0
    },
    async teardown() {
      sock?.close()
      await server?.close()
      tmp?.close()
    },
  }
}

/**
 * An npm datagram peer: a socket bound to a path, sending to the C echo server's path.
 * `load()` loads the peer (first, so that a peer that did not install fails before anything is
 * made) and returns `open(me, onMessage)`, which makes the peer's socket bound to `me`, calling
 * `onMessage` for each datagram, and returns its `send(payload, to)` and `close()`.
 */
function boundDgramPeer(impl, load) {
  let tmp
  let server
  let sock
  let to
  let onMessage = () => {}
  const payload = Buffer.alloc(SIZE, 'x')
  return {
    impl,
    kind: 'peer',
    compare: 'ipckit async, bound paths',
    async setup(config) {
      if (!config.peers) throw new Error('peers skipped (--no-peers or smoke mode)')
      const open = load()
      tmp = tempDir()
      to = join(tmp.dir, 'echo.sock')
      server = await echoServer('dgram', to)
      sock = open(join(tmp.dir, 'me.sock'), (buf) => onMessage(buf))
    },
    async sample(n) {
      const t0 = now()
      for (let i = 0; i < n; i++) {
        const got = new Promise((res) => (onMessage = res))
        sock.send(payload, to)
        await got
      }
      return now() - t0
    },
    async teardown() {
      sock?.close()
      await server?.close()
      tmp?.close()
    },
  }
}

/** npm `unix-dgram`: `createSocket('unix_dgram')`, `send(buf, 0, len, path)`. */
function unixDgramPeer() {
  return boundDgramPeer('unix-dgram (npm)', () => {
    const unix = npmPeer('unix-dgram')
    return (me, onMessage) => {
      const sock = unix.createSocket('unix_dgram', onMessage)
      sock.on('error', () => {})
      sock.bind(me)
      return { send: (buf, to) => sock.send(buf, 0, buf.length, to), close: () => sock.close() }
    }
  })
}

/** npm `node-unix-socket`: `DgramSocket`, `sendTo(buf, 0, len, path)`. */
function nodeUnixSocketDgram() {
  return boundDgramPeer('node-unix-socket (npm)', () => {
    const { DgramSocket } = npmPeer('node-unix-socket')
    return (me, onMessage) => {
      const sock = new DgramSocket()
      sock.on('error', () => {})
      sock.on('data', onMessage)
      sock.bind(me)
      return { send: (buf, to) => sock.sendTo(buf, 0, buf.length, to), close: () => sock.close() }
    }
  })
}

/** npm `node-unix-socket`: `SeqpacketSocket` connected to a C seqpacket echo server. */
function nodeUnixSocketSeqpacket() {
  let tmp
  let server
  let sock
  let onData = () => {}
  const payload = Buffer.alloc(SIZE, 'x')
  return {
    impl: 'node-unix-socket (npm)',
    kind: 'peer',
    compare: 'ipckit async',
    async setup(config) {
      if (!config.peers) throw new Error('peers skipped (--no-peers or smoke mode)')
      const { SeqpacketSocket } = npmPeer('node-unix-socket')
      tmp = tempDir()
      const path = join(tmp.dir, 'echo.sock')
      server = await echoServer('listen-seqpacket', path)
      sock = new SeqpacketSocket()
      sock.on('error', () => {})
      sock.on('data', (buf) => onData(buf))
      await new Promise((res) => sock.connect(path, res))
    },
    async sample(n) {
      const t0 = now()
      for (let i = 0; i < n; i++) {
        const got = new Promise((res) => (onData = res))
        sock.write(payload)
        await got
      }
      return now() - t0
    },
    async teardown() {
      sock?.destroy()
      await server?.close()
      tmp?.close()
    },
  }
}

/** ipckit receiving n 64-byte messages that a C child produces (streams: n * 64 bytes). */
function ipckitStream(kind, impl) {
  let ch
  let producer
  return {
    impl,
    kind: 'ipckit',
    setup() {
      ch = channel(kind)
      producer = new LineProcess(bin(), ['driver'], { stdio: ['pipe', 'pipe', 'pipe', ...ch.far] })
      ch.closeFar()
    },
    async sample(n) {
      const { read } = ch.near
      if (kind === 'pipe' || kind === 'stream') {
        const all = collect(read, n * SIZE)
        const t0 = now()
        const sent = producer.ask(`produce ${n} ${SIZE}`)
        await all
        const elapsed = now() - t0
        await sent
        return elapsed
      }
      if (impl === 'ipckit sync') {
        const t0 = now()
        const sent = producer.ask(`produce ${n} ${SIZE}`)
        for (let i = 0; i < n; i++) read.receiveSync()
        const elapsed = now() - t0
        await sent
        return elapsed
      }
      const t0 = now()
      const sent = producer.ask(`produce ${n} ${SIZE}`)
      let i = 0
      for await (const _msg of read.messages()) if (++i === n) break
      const elapsed = now() - t0
      await sent
      return elapsed
    },
    async teardown() {
      await producer?.close()
      ch?.closeNear()
    },
  }
}

function roundTripOp(config, kind, cases) {
  return {
    primitive: KINDS[kind],
    operation: 'round trip 64 B, C echo child',
    unit: 'us',
    per: 'round trip',
    count: config.roundTrips,
    cases: [cCase(kind, 'rt'), ...cases],
  }
}

function streamOp(config, kind, cases) {
  return {
    primitive: KINDS[kind],
    operation: 'stream 64 B from a C process',
    unit: 'ns',
    per: 'message',
    count: config.messages,
    cases: [cCase(kind, 'stream'), ...cases],
  }
}

/** The name of `net`'s rows (over a UNIX path), which issue 16's targets are measured against. */
const NET = 'net (UNIX path)'
/** Issue 16: a message socket or a pipe between two async Node processes at 0.6x `net`'s time. */
const NET_06 = { impl: NET, ratio: 0.6 }

/**
 * The floors of a message socket's node-to-node round trip, each shown against `net` (the
 * targets' unit): C with ipckit's wakes, and Node's own (the least a Node-API addon can do).
 */
function socketFloors(kind) {
  return [loopFloor('fd', floorPair(kind), NET), napiFloor(floorPair(kind), NET)]
}

function nodeRoundTripOp(config, kind, cases) {
  const floor = kind === 'seqpacket' || kind === 'dgram' ? socketFloors(kind) : []
  return {
    primitive: KINDS[kind],
    operation: 'round trip 64 B, two Node processes',
    unit: 'us',
    per: 'round trip',
    count: config.roundTrips,
    cases: [cCase(kind, 'rt'), ...cases, ...floor, ...builtinRoundTrips(cases[0].impl)],
  }
}

module.exports = (config) => [
  roundTripOp(config, 'pipe', [ipckitRoundTrip('pipe', 'ipckit (Node stream)')]),
  roundTripOp(config, 'stream', [
    ipckitRoundTrip('stream', 'ipckit (net.Socket)'),
    netRoundTrip('ipckit (net.Socket)'),
  ]),
  roundTripOp(config, 'seqpacket', [
    ipckitRoundTrip('seqpacket', 'ipckit sync', 2),
    ipckitRoundTrip('seqpacket', 'ipckit async', 2),
    nodeUnixSocketSeqpacket(),
  ]),
  roundTripOp(config, 'dgram', [
    ipckitRoundTrip('dgram', 'ipckit sync', 2),
    ipckitRoundTrip('dgram', 'ipckit async', 2),
    ipckitDgramPath(),
    unixDgramPeer(),
    nodeUnixSocketDgram(),
  ]),
  nodeRoundTripOp(config, 'pipe', [
    ipckitNodeRoundTrip('pipe', 'ipckit async↔async (Node streams)', 'pipe', NET_06),
    nodeStreamsOnPipes(),
  ]),
  nodeRoundTripOp(config, 'stream', [ipckitNodeRoundTrip('stream', 'ipckit async↔async (net.Socket)', 'stream')]),
  nodeRoundTripOp(config, 'seqpacket', [
    ipckitNodeRoundTrip('seqpacket', 'ipckit async↔async', 'seq-async', NET_06),
    ipckitNodeRoundTrip('seqpacket', 'ipckit sync↔sync', 'seq'),
  ]),
  nodeRoundTripOp(config, 'dgram', [
    ipckitNodeRoundTrip('dgram', 'ipckit async↔async', 'dgram-async', NET_06),
    ipckitNodeRoundTrip('dgram', 'ipckit sync↔sync', 'dgram'),
  ]),
  streamOp(config, 'pipe', [ipckitStream('pipe', 'ipckit (Node stream)')]),
  streamOp(config, 'stream', [ipckitStream('stream', 'ipckit (net.Socket)')]),
  streamOp(config, 'seqpacket', [
    ipckitStream('seqpacket', 'ipckit async iterator'),
    ipckitStream('seqpacket', 'ipckit sync'),
  ]),
  streamOp(config, 'dgram', [ipckitStream('dgram', 'ipckit async iterator'), ipckitStream('dgram', 'ipckit sync')]),
  {
    primitive: KINDS.seqpacket,
    operation: 'stream 64 B, two Node processes',
    unit: 'ns',
    per: 'message',
    count: config.messages,
    cases: [
      cCase('seqpacket', 'stream'),
      cCase('seqpacket', 'stream-batched'),
      napiFloorStream(floorPair('seqpacket'), NET),
      // Issue 16: a message rate of 1.5x net's byte-counted rate, so 1/1.5 of its time.
      ipckitNodeStream({ impl: NET, ratio: 0.667 }),
      netStream('ipckit async iterator'),
      workerStream('ipckit async iterator'),
    ],
  },
]
