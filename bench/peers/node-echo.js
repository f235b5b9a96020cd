'use strict'
/**
 * The Node side of Node-to-Node comparisons: echoes what it gets until told to stop, the way
 * Node code is written (async), or with the sync API where the mode says so. Prints "ready"
 * once it listens.
 *
 *   node node-echo.js msg QID           ipckit: receiveSync type 1, sendSync back as type 2, until EIDRM
 *   node node-echo.js msg-async QID     the same with await receive / await send
 *   node node-echo.js sem SID           ipckit: take 1 from semaphore 0 (opSync), add 1 to semaphore 1
 *   node node-echo.js sem-async SID     the same with await op
 *   node node-echo.js futex SHMID       ipckit: wait (waitSync) on the word at 0 for an odd value,
 *                                       store the next (even) one and notify; ends on 0xffffffff
 *   node node-echo.js futex-async SHMID the same with await wait
 *   node node-echo.js seq | seq-async   ipckit: a seqpacket socket on fd 3, receive and send back
 *   node node-echo.js dgram | dgram-async   the same, datagram
 *   node node-echo.js stream            a net.Socket on fd 3 (a stream pair's end) writes back every byte
 *   node node-echo.js pipe              a net.Socket over the pipe end fd 3 (in) writes every byte to fd 4
 *   node node-echo.js produce QID       ipckit: per stdin line "N SIZE", sendSync N messages of type 1
 *   node node-echo.js produce-async QID the same with await send (both processes async)
 *   node node-echo.js produce-seq       ipckit: per stdin line "N SIZE", sendSync N messages on the
 *                                       seqpacket socket fd 3
 *   node node-echo.js net PATH          net: a UNIX stream server at PATH that writes back every byte
 *   node node-echo.js net-produce PATH  net: a UNIX stream server at PATH; per stdin line
 *                                       "N SIZE", writes N messages of SIZE bytes (one write each)
 *   node node-echo.js ipc               child_process: process.send back every message
 * The socket modes end at end of stream (seqpacket) or when stdin closes.
 */

const mode = process.argv[2]
const gone = (err) => ['EIDRM', 'EINVAL', 'ERR_INVALID_STATE'].includes(err?.code) || err?.name === 'AbortError'
const exitOnStdinEnd = () => process.stdin.on('end', () => process.exit(0)).resume()

async function main() {
  const ipc = () => require('../../dist')
  if (mode === 'msg' || mode === 'msg-async') {
    const q = ipc().MessageQueue.fromId(Number(process.argv[3]))
    console.log('ready')
    try {
      if (mode === 'msg') {
        for (;;) q.sendSync(q.receiveSync({ type: 1 }).data, { type: 2 })
      }
      for (;;) {
        const m = await q.receive({ type: 1 })
        await q.send(m.data, { type: 2 })
      }
    } catch (err) {
      if (gone(err)) process.exit(0)
      throw err
    }
  } else if (mode === 'sem' || mode === 'sem-async') {
    const set = ipc().SemaphoreSet.fromId(Number(process.argv[3]))
    const take = [{ index: 0, delta: -1, undo: false }]
    const give = [{ index: 1, delta: 1, undo: false }]
    console.log('ready')
    try {
      if (mode === 'sem') {
        for (;;) {
          set.opSync(take)
          set.opSync(give)
        }
      }
      for (;;) {
        await set.op(take)
        await set.op(give)
      }
    } catch (err) {
      if (gone(err)) process.exit(0)
      throw err
    }
  } else if (mode === 'futex' || mode === 'futex-async') {
    const shm = ipc().SharedMemory.fromId(Number(process.argv[3]))
    const view = shm.attach()
    const word = new Int32Array(view.buffer, 0, 1)
    console.log('ready')
    for (;;) {
      const v = Atomics.load(word, 0)
      if (v === -1) process.exit(0)
      if (v & 1) {
        Atomics.store(word, 0, v + 1)
        shm.notify(0, 1)
        continue
      }
      if (mode === 'futex') shm.waitSync(0, v >>> 0, { timeoutMs: 1000 })
      else await shm.wait(0, v >>> 0, { timeoutMs: 1000 })
    }
  } else if (['seq', 'seq-async', 'dgram', 'dgram-async'].includes(mode)) {
    const { UnixSeqpacketSocket, UnixDatagramSocket } = ipc()
    const s = (mode.startsWith('seq') ? UnixSeqpacketSocket : UnixDatagramSocket).fromFd(3)
    exitOnStdinEnd()
    console.log('ready')
    if (mode.endsWith('async')) {
      for (;;) {
        const m = await s.receive()
        if (m === null) process.exit(0)
        await s.send(m.data)
      }
    }
    for (;;) {
      const m = s.receiveSync()
      if (m === null) process.exit(0)
      s.sendSync(m.data)
    }
  } else if (mode === 'stream' || mode === 'pipe') {
    const net = require('node:net')
    const input = new net.Socket({ fd: 3, readable: true, writable: mode === 'stream' })
    const output = mode === 'stream' ? input : new net.Socket({ fd: 4, readable: false, writable: true })
    input.on('data', (chunk) => output.write(chunk))
    input.on('end', () => process.exit(0))
    exitOnStdinEnd()
    console.log('ready')
  } else if (mode === 'produce' || mode === 'produce-async' || mode === 'produce-seq') {
    const sink =
      mode === 'produce-seq' ? ipc().UnixSeqpacketSocket.fromFd(3) : ipc().MessageQueue.fromId(Number(process.argv[3]))
    const readline = require('node:readline')
    readline.createInterface({ input: process.stdin }).on('line', async (line) => {
      const [n, size] = line.split(' ').map(Number)
      const payload = Buffer.alloc(size, 'x')
      const type1 = { type: 1 }
      if (mode === 'produce') for (let i = 0; i < n; i++) sink.sendSync(payload, type1)
      else if (mode === 'produce-async') for (let i = 0; i < n; i++) await sink.send(payload, type1)
      else for (let i = 0; i < n; i++) sink.sendSync(payload)
      console.log('sent')
    })
    console.log('ready')
  } else if (mode === 'net') {
    const net = require('node:net')
    const server = net.createServer((socket) => {
      socket.setNoDelay?.(true)
      socket.on('data', (chunk) => socket.write(chunk))
      socket.on('error', () => {})
    })
    server.listen(process.argv[3], () => console.log('ready'))
    exitOnStdinEnd()
  } else if (mode === 'net-produce') {
    const net = require('node:net')
    const readline = require('node:readline')
    let socket
    const server = net.createServer((s) => {
      socket = s
      s.on('error', () => {})
    })
    server.listen(process.argv[3], () => console.log('ready'))
    readline.createInterface({ input: process.stdin }).on('line', async (line) => {
      const [n, size] = line.split(' ').map(Number)
      const payload = Buffer.alloc(size, 'x')
      for (let i = 0; i < n; i++) {
        if (!socket.write(payload)) await new Promise((res) => socket.once('drain', res))
      }
      console.log('sent')
    })
    process.stdin.on('end', () => process.exit(0))
  } else if (mode === 'ipc') {
    process.on('message', (m) => process.send(m))
    process.on('disconnect', () => process.exit(0))
    process.send('ready')
  } else {
    console.error(`unknown mode ${mode}`)
    process.exit(2)
  }
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
