#!/usr/bin/env node
// Passing sockets to worker processes: the parent accepts connections on a UNIX socket with a
// plain `net` server and hands each accepted connection's file descriptor to a worker process,
// over a `socketpair('seqpacket')` with descriptor passing (SCM_RIGHTS). The parent then closes
// its own copy; the worker wraps the descriptor in a `net.Socket` and serves the client, who
// never knows it changed hands. This is how pre-forking servers spread connections over
// processes, without Node's `cluster` or IPC channel. The clients run in a process of their own,
// so each worker can see (SO_PEERCRED) that its connection comes from them.
//
//   npm run build && node examples/pass-socket.js [workers] [connections]
'use strict'
const { fork, spawn } = require('node:child_process')
const fs = require('node:fs')
const net = require('node:net')
const os = require('node:os')
const path = require('node:path')
const { UnixSeqpacketSocket, peerCredentials, socketpair } = require('..') // this package, from dist/ (run `npm run build` first)

/** A worker: takes connections from the parent (fd 3) and serves each: one line in, one line out. */
async function worker() {
  // acceptFds: this socket is for receiving descriptors (a socket closes those it was not asked to take).
  const parent = UnixSeqpacketSocket.fromFd(3, { acceptFds: true })
  const serving = []
  for await (const { data, fds } of parent) {
    for (const fd of fds) {
      const conn = new net.Socket({ fd, readable: true, writable: true })
      const client = peerCredentials(conn) // the same connection: its peer is the client process
      serving.push(
        new Promise((resolve) => {
          let line = ''
          conn.setEncoding('utf8')
          conn.on('data', (chunk) => {
            line += chunk
            if (conn.writableEnded || !line.includes('\n')) return // one request per connection
            const request = line.slice(0, line.indexOf('\n'))
            conn.end(`worker ${process.pid} served ${data} from pid ${client.pid}: ${request.toUpperCase()}\n`)
          })
          conn.on('close', resolve)
          conn.on('error', (err) => console.error(`worker ${process.pid}: ${err.message}`))
        }),
      )
    }
  }
  // The parent closed its end: no more connections will come. Finish the ones being served.
  await Promise.all(serving)
  parent.close()
  console.log(`worker ${process.pid}: served ${serving.length} connections, exiting`)
}

/** The client process: opens `count` connections at once and reports the replies to the parent. */
async function clients(socketPath, count) {
  const replies = await Promise.all(Array.from({ length: count }, (_, i) => request(socketPath, `hello ${i + 1}`)))
  process.send(replies)
}

/** A client connection: connects, sends a line, resolves with the reply. */
function request(socketPath, text) {
  return new Promise((resolve, reject) => {
    const conn = net.connect(socketPath)
    let reply = ''
    conn.setEncoding('utf8')
    conn.on('connect', () => conn.write(`${text}\n`))
    conn.on('data', (chunk) => (reply += chunk))
    conn.on('end', () => resolve(reply.trim()))
    conn.on('error', reject)
  })
}

async function main() {
  const workerCount = Number(process.argv[2] ?? 2)
  const connections = Number(process.argv[3] ?? 6)
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ipckit-pass-socket-'))
  const socketPath = path.join(dir, 'server.sock')
  const workers = []
  const children = []
  // pauseOnConnect: the parent never reads from a connection, so no byte is lost in the handover.
  const server = net.createServer({ pauseOnConnect: true })
  try {
    for (let i = 0; i < workerCount; i++) {
      const [mine, theirs] = socketpair('seqpacket')
      const child = spawn(process.execPath, [__filename, '--worker'], {
        stdio: ['inherit', 'inherit', 'inherit', theirs.fd],
      })
      theirs.close() // the child has its own copy now
      const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code)))
      workers.push({ channel: mine, child, exited })
      children.push(child)
    }
    console.log(`parent ${process.pid}: started workers ${workers.map((w) => w.child.pid).join(', ')}`)

    let next = 0
    let accepted = 0
    server.on('connection', async (conn) => {
      const n = ++accepted
      // Node has no public accessor for a socket's descriptor; `_handle.fd` is the usual way.
      const fd = conn._handle.fd
      const { channel, child } = workers[next++ % workers.length]
      try {
        await channel.send(`connection ${n}`, { fds: [fd] })
        console.log(`parent ${process.pid}: accepted connection ${n} (fd ${fd}), passed it to worker ${child.pid}`)
      } catch (err) {
        console.error(`parent ${process.pid}: could not pass connection ${n}: ${err.message}`)
      } finally {
        conn.destroy() // closes the parent's copy only: the worker holds the connection now
      }
    })
    await new Promise((resolve, reject) => {
      server.once('error', reject)
      server.listen(socketPath, resolve)
    })
    console.log(`parent ${process.pid}: listening on ${socketPath}`)

    const client = fork(__filename, ['--clients', socketPath, String(connections)])
    children.push(client)
    console.log(`parent ${process.pid}: started client process ${client.pid}`)
    const replies = await new Promise((resolve, reject) => {
      client.once('message', resolve)
      client.once('close', (code, signal) =>
        reject(new Error(`the client process ended (${signal ?? code}) without replies`)),
      )
    })
    const perWorker = new Map(workers.map((w) => [w.child.pid, 0]))
    for (const reply of replies) {
      console.log(`client: ${reply}`)
      const m = /^worker (\d+) served connection \d+ from pid (\d+): HELLO \d+$/.exec(reply)
      if (!m || !perWorker.has(Number(m[1])) || Number(m[2]) !== client.pid)
        throw new Error(`unexpected reply: ${reply}`)
      perWorker.set(Number(m[1]), perWorker.get(Number(m[1])) + 1)
    }

    for (const w of workers) w.channel.close() // end of work: each worker's loop ends
    const codes = await Promise.all(workers.map((w) => w.exited))
    if (codes.some((c) => c !== 0)) throw new Error(`a worker failed: ${codes}`)
    const shares = [...perWorker].map(([pid, n]) => `${pid}: ${n}`).join(', ')
    console.log(
      `${connections} connections served by ${workers.length} worker processes (${shares}); workers exited with ${codes.join(', ')}`,
    )
  } finally {
    for (const w of workers) w.channel.close()
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
    await new Promise((resolve) => server.close(() => resolve()))
    fs.rmSync(dir, { recursive: true, force: true })
    console.log(`parent ${process.pid}: server closed, removed ${dir}`)
  }
}

const [role, socketPath, count] = process.argv.slice(2)
const run = role === '--worker' ? worker : role === '--clients' ? () => clients(socketPath, Number(count)) : main
run().catch((err) => {
  console.error(err)
  process.exitCode = 1
})
