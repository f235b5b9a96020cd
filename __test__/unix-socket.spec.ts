import test, { type ExecutionContext } from 'ava'
import { spawn } from 'node:child_process'
import { closeSync, existsSync, openSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { createServer, connect as netConnect, type Socket } from 'node:net'
import { join } from 'node:path'

import {
  AbortError,
  IpcError,
  UnixDatagramSocket,
  UnixSeqpacketServer,
  UnixSeqpacketSocket,
  peerCredentials,
  sendFds,
  socketpair,
} from '../ts/index'
import { native } from '../ts/native'
import { pendingWaits } from '../ts/reactor'
import { NOBODY, cChild, compileC, nodeChild, openFds, removeBuilds, sleep, tempDir, timed } from './helpers'

test.after.always(removeBuilds)

type Closable = { close(): void } | { destroy(): void }

/**
 * Every test here runs serially and checks that the process has exactly as many open
 * descriptors afterwards as before (after closing what it registered with `own`), and that
 * no wait or readiness watch is left behind.
 */
function fdTest(name: string, fn: (t: ExecutionContext, own: <T extends Closable>(x: T) => T) => Promise<void> | void) {
  test.serial(name, async (t) => {
    const owned: Closable[] = []
    const own = <T extends Closable>(x: T): T => {
      owned.push(x)
      return x
    }
    const before = openFds()
    try {
      await fn(t, own)
    } finally {
      for (const x of owned.reverse()) {
        if ('close' in x) x.close()
        else x.destroy()
      }
    }
    // net.Socket handles close on a later turn of the event loop.
    for (let i = 0; i < 100 && openFds() !== before; i++) await sleep(10)
    t.is(openFds(), before, 'open descriptors unchanged')
    for (let i = 0; i < 100 && pendingWaits() !== 0; i++) await sleep(10)
    t.is(pendingWaits(), 0, 'no pending waits')
    t.is(native.pollerWatches(), 0, 'no readiness watches')
  })
}

const uniq = (() => {
  let n = 0
  return (what: string) => `ipckit-test-${process.pid}-${what}-${++n}`
})()

function dir(t: ExecutionContext): string {
  const d = tempDir('ipckit-sock-')
  t.teardown(() => d.remove())
  return d.path
}

/** Same checksum as the C programs print. */
function checksum(data: Buffer): number {
  let sum = 0
  for (const b of data) sum = (Math.imul(sum, 31) + b) >>> 0
  return sum
}

// ---------------------------------------------------------------------------------------------
// socket pairs

fdTest('socketpair(seqpacket): boundaries, async and sync forms, end of stream', async (t, own) => {
  const [a, b] = socketpair('seqpacket')
  own(a)
  own(b)
  t.true(a instanceof UnixSeqpacketSocket)
  t.true(Number.isInteger(a.fd) && a.fd > 2)
  await a.send('one')
  a.sendSync(Buffer.alloc(0))
  await a.send(new Uint16Array([0x0102, 0x0304]))
  const first = await b.receive()
  t.deepEqual(first, { data: Buffer.from('one'), fds: [], from: null, credentials: undefined })
  t.deepEqual(b.receiveSync()!.data, Buffer.alloc(0))
  t.deepEqual((await b.receive())!.data, Buffer.from(new Uint16Array([0x0102, 0x0304]).buffer))
  t.like(t.throws(() => b.receiveSync({ wait: false })), { code: 'EAGAIN', syscall: 'recvmsg' })
  // A receive that waits is woken by a later send.
  const later = b.receive()
  await sleep(20)
  await a.send('late')
  t.is((await later)!.data.toString(), 'late')
  a.close()
  t.is(await b.receive(), null)
  t.is(b.receiveSync(), null)
})

fdTest('socketpair(dgram): datagrams keep boundaries and order', async (t, own) => {
  const [a, b] = socketpair('dgram')
  own(a)
  own(b)
  t.true(a instanceof UnixDatagramSocket)
  for (let i = 0; i < 5; i++) await a.send(Buffer.alloc(i * 100, i))
  await a.send('')
  for (let i = 0; i < 5; i++) t.deepEqual((await b.receive()).data, Buffer.alloc(i * 100, i))
  const empty = await b.receive()
  t.is(empty.data.length, 0)
  t.is(empty.from, null)
  // Both directions.
  b.sendSync('back')
  t.is(a.receiveSync().data.toString(), 'back')
})

fdTest('socketpair(stream) gives net.Sockets with an fd', async (t, own) => {
  const [a, b] = socketpair('stream')
  own(a)
  own(b)
  t.true(Number.isInteger(a.fd) && Number.isInteger(b.fd))
  const chunks: Buffer[] = []
  b.on('data', (c: Buffer) => chunks.push(c))
  const ended = new Promise((r) => b.once('end', r))
  a.end('hello stream')
  await ended
  t.is(Buffer.concat(chunks).toString(), 'hello stream')
  t.like(peerCredentials(a), { pid: process.pid, uid: process.getuid!(), gid: process.getgid!() })
})

fdTest('socketpair rejects bad kinds', (t) => {
  t.throws(() => socketpair('raw' as 'dgram'), { code: 'ERR_INVALID_ARG_VALUE' })
  t.throws(() => socketpair(1 as unknown as 'dgram'), { code: 'ERR_INVALID_ARG_TYPE' })
})

// ---------------------------------------------------------------------------------------------
// datagram sockets

fdTest('UnixDatagramSocket: bind a path, reply to the sender, default mode 0o600', async (t, own) => {
  const d = dir(t)
  const serverPath = join(d, 'server.sock')
  const clientPath = join(d, 'client.sock')
  const server = own(UnixDatagramSocket.bind(serverPath))
  t.is(statSync(serverPath).mode & 0o777, 0o600)
  t.true(statSync(serverPath).isSocket())
  t.is(server.address, serverPath)
  const client = own(UnixDatagramSocket.bind(clientPath, { mode: 0o640 }))
  t.is(statSync(clientPath).mode & 0o777, 0o640)
  await client.send('ping', { to: serverPath })
  const msg = await server.receive()
  t.is(msg.data.toString(), 'ping')
  t.is(msg.from, clientPath)
  await server.send('pong', { to: msg.from! })
  t.is((await client.receive()).data.toString(), 'pong')
  // connect() sets the default destination.
  const unbound = own(UnixDatagramSocket.create())
  unbound.connect(serverPath)
  t.is(unbound.remoteAddress, serverPath)
  await unbound.send('anonymous')
  t.like(await server.receive(), { from: null, data: Buffer.from('anonymous') })
  server.remove()
  t.false(existsSync(serverPath))
})

fdTest('UnixDatagramSocket: abstract addresses', async (t, own) => {
  const name = uniq('abs')
  const server = own(UnixDatagramSocket.bind({ abstract: name }))
  t.deepEqual(server.address, { abstract: name })
  const client = own(UnixDatagramSocket.bind({ abstract: Buffer.from(`${name}-client`) }))
  client.sendSync('hi', { to: { abstract: name } })
  t.deepEqual((await server.receive()).from, { abstract: `${name}-client` })
})

fdTest('async iteration yields messages; break cleans up and takes nothing more', async (t, own) => {
  const [a, b] = socketpair('dgram')
  own(a)
  own(b)
  for (const s of ['1', '2', '3']) a.sendSync(s)
  const seen: string[] = []
  for await (const { data } of b) {
    seen.push(data.toString())
    if (seen.length === 2) break
  }
  t.deepEqual(seen, ['1', '2'])
  t.is(b.receiveSync().data.toString(), '3')
  // Breaking while a wait is pending cancels the wait.
  const it = b.messages()
  const next = it.next()
  await sleep(10)
  t.is(native.pollerWatches(), 1)
  await it.return!()
  t.deepEqual(await next, { done: true, value: undefined })
  a.sendSync('4')
  t.is(b.receiveSync().data.toString(), '4')
})

fdTest('AbortSignal cancels a receive promptly, and a cancelled receive took nothing', async (t, own) => {
  const [a, b] = socketpair('seqpacket')
  own(a)
  own(b)
  const ac = new AbortController()
  const p = b.receive({ signal: ac.signal })
  await sleep(20)
  const { ms } = await timed(async () => {
    ac.abort('stop')
    const err = await t.throwsAsync(p, { instanceOf: AbortError })
    t.is(err.cause, 'stop')
  })
  t.true(ms < 50, `abort took ${ms} ms`)
  a.sendSync('kept')
  t.is(b.receiveSync()!.data.toString(), 'kept')
  await t.throwsAsync(b.receive({ signal: AbortSignal.abort() }), { instanceOf: AbortError })
})

fdTest('close() cancels pending waits; use after close throws ERR_INVALID_STATE', async (t) => {
  const [a, b] = socketpair('dgram')
  const p = b.receive()
  await sleep(10)
  b.close()
  const err = await t.throwsAsync(p, { instanceOf: AbortError })
  t.is((err.cause as { code?: string }).code, 'ERR_INVALID_STATE')
  b.close()
  t.true(b.closed)
  t.throws(() => b.receiveSync(), { code: 'ERR_INVALID_STATE' })
  await t.throwsAsync(b.send('x'), { code: 'ERR_INVALID_STATE' })
  t.throws(() => b.peerCredentials(), { code: 'ERR_INVALID_STATE' })
  a.close()
})

fdTest('backpressure: a full socket makes send wait, not fail; wait: false throws EAGAIN', async (t, own) => {
  const [a, b] = socketpair('dgram')
  own(a)
  own(b)
  const chunk = Buffer.alloc(1024, 1)
  let queued = 0
  for (;;) {
    try {
      a.sendSync(chunk, { wait: false })
      queued++
    } catch (err) {
      t.like(err, { code: 'EAGAIN', syscall: 'sendmsg' })
      break
    }
  }
  t.true(queued > 0)
  let sent = false
  const p = a.send('last').then(() => (sent = true))
  await sleep(30)
  t.false(sent, 'send waits while the buffer is full')
  for (let i = 0; i < queued; i++) b.receiveSync()
  await p
  t.is(b.receiveSync().data.toString(), 'last')
  // An aborted send sent nothing.
  for (;;) {
    try {
      a.sendSync(chunk, { wait: false })
    } catch {
      break
    }
  }
  const ac = new AbortController()
  const aborted = a.send('never', { signal: ac.signal })
  await sleep(10)
  ac.abort()
  await t.throwsAsync(aborted, { instanceOf: AbortError })
  let last: Buffer | undefined
  for (;;) {
    try {
      last = b.receiveSync({ wait: false }).data
    } catch {
      break
    }
  }
  t.deepEqual(last, chunk)
})

fdTest('backpressure on an unconnected datagram send to a full receiver', async (t, own) => {
  const name = uniq('full')
  const server = own(UnixDatagramSocket.bind({ abstract: name }))
  const client = own(UnixDatagramSocket.create())
  let queued = 0
  for (;;) {
    try {
      client.sendSync(`m${queued}`, { to: { abstract: name }, wait: false })
      queued++
    } catch (err) {
      t.like(err, { code: 'EAGAIN' })
      break
    }
  }
  const p = client.send('after', { to: { abstract: name } })
  await sleep(30)
  for (let i = 0; i < queued; i++) t.is(server.receiveSync().data.toString(), `m${i}`)
  await p
  t.is(server.receiveSync().data.toString(), 'after')
})

// ---------------------------------------------------------------------------------------------
// seqpacket servers

fdTest('UnixSeqpacketServer: accept, connect, iterate connections; break cleans up', async (t, own) => {
  const d = dir(t)
  const path = join(d, 'seq.sock')
  const server = own(UnixSeqpacketServer.listen(path, { backlog: 8 }))
  t.is(statSync(path).mode & 0o777, 0o600)
  const clients = [own(UnixSeqpacketSocket.connect(path)), own(UnixSeqpacketSocket.connect(path))]
  clients[0]!.sendSync('a')
  clients[1]!.sendSync('b')
  const got: string[] = []
  for await (const conn of server) {
    own(conn)
    const msg = await conn.receive()
    got.push(msg!.data.toString())
    await conn.send(`re:${msg!.data}`)
    t.like(conn.peerCredentials(), { pid: process.pid })
    if (got.length === 2) break
  }
  t.deepEqual(got.sort(), ['a', 'b'])
  t.is((await clients[0]!.receive())!.data.toString(), 're:a')
  t.is((await clients[1]!.receive())!.data.toString(), 're:b')
  // A pending accept is cancelled by break and by close().
  const it = server.connections()
  const next = it.next()
  await sleep(10)
  await it.return!()
  t.deepEqual(await next, { done: true, value: undefined })
  const pending = server.accept()
  await sleep(10)
  server.close()
  await t.throwsAsync(pending, { instanceOf: AbortError })
  server.remove()
  t.false(existsSync(path))
})

fdTest('seqpacket: the iteration of a connection ends when the peer closes', async (t, own) => {
  const name = uniq('seqend')
  const server = own(UnixSeqpacketServer.listen({ abstract: name }))
  const client = UnixSeqpacketSocket.connect({ abstract: name })
  const conn = own(await server.accept())
  for (const m of ['x', 'y', 'z']) await client.send(m)
  client.close()
  const got: string[] = []
  for await (const { data } of conn) got.push(data.toString())
  t.deepEqual(got, ['x', 'y', 'z'])
})
