'use strict'
/**
 * The Node side of Node-to-Node comparisons: echoes what it gets until told to stop.
 *   node node-echo.js msg QID     ipckit: receiveSync type 1, sendSync back as type 2, until EIDRM
 *   node node-echo.js net PATH    net: a UNIX stream server at PATH that writes back every byte
 *   node node-echo.js ipc         child_process: process.send back every message
 *   node node-echo.js produce QID ipckit: per stdin line "N SIZE", sendSync N messages of type 1
 *   node node-echo.js net-produce PATH  net: a UNIX stream server at PATH; per stdin line
 *                                 "N SIZE", writes N messages of SIZE bytes (one write each)
 * Prints "ready" once it listens.
 */

const mode = process.argv[2]

if (mode === 'msg' || mode === 'produce') {
  const { MessageQueue } = require('../../dist')
  const q = MessageQueue.fromId(Number(process.argv[3]))
  if (mode === 'msg') {
    console.log('ready')
    for (;;) {
      let msg
      try {
        msg = q.receiveSync({ type: 1 })
      } catch (err) {
        if (err.code === 'EIDRM' || err.code === 'EINVAL') process.exit(0)
        throw err
      }
      q.sendSync(msg.data, { type: 2 })
    }
  } else {
    const readline = require('node:readline')
    readline.createInterface({ input: process.stdin }).on('line', (line) => {
      const [n, size] = line.split(' ').map(Number)
      const payload = Buffer.alloc(size, 'x')
      for (let i = 0; i < n; i++) q.sendSync(payload, { type: 1 })
      console.log('sent')
    })
    console.log('ready')
  }
} else if (mode === 'net') {
  const net = require('node:net')
  const server = net.createServer((socket) => {
    socket.setNoDelay?.(true)
    socket.on('data', (chunk) => socket.write(chunk))
    socket.on('error', () => {})
  })
  server.listen(process.argv[3], () => console.log('ready'))
  process.stdin.on('end', () => process.exit(0)).resume()
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
