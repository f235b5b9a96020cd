import test, { type ExecutionContext } from 'ava'
import { execFileSync } from 'node:child_process'
import {
  closeSync,
  constants,
  existsSync,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  readdirSync,
  renameSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import { readFile } from 'node:fs/promises'
import { createServer, type Socket } from 'node:net'
import { join } from 'node:path'

import {
  AbortError,
  IpcError,
  UnixDatagramSocket,
  UnixSeqpacketServer,
  UnixSeqpacketSocket,
  peerCredentials,
  receiveFds,
  sendFds,
  socketpair,
} from '../ts/index'
import { native } from '../ts/native'
import { pendingWaits } from '../ts/reactor'
import {
  NOBODY,
  cChild,
  compileC,
  fdSnapshot,
  fdsLeftOpen,
  linuxOnly,
  nodeChild,
  notLinux,
  openFds,
  removeBuilds,
  runNode,
  sleep,
  tempDir,
  within,
} from './helpers'
import { needs } from './helpers/foreign'

test.after.always(removeBuilds)

test.before(async () => {
  // Start the addon's poller thread (and its epoll descriptor, which lives as long as the
  // process) before any descriptor count is taken.
  const [a, b] = socketpair('dgram')
  const p = a.receive()
  b.sendSync('warm up')
  await p
  a.close()
  b.close()
  // Let the test runner's own start-up descriptors settle.
  await sleep(200)
})

type Closable = { close(): void } | { destroy(): void }

/**
 * Every test here runs serially and checks that it left no descriptor open (after closing what
 * it registered with `own`), and that no wait or readiness watch is left behind.
 */
function fdTest(
  name: string,
  fn: (t: ExecutionContext, own: <T extends Closable>(x: T) => T) => Promise<void> | void,
  declare = test.serial,
) {
  declare(name, async (t) => {
    const owned: Closable[] = []
    const own = <T extends Closable>(x: T): T => {
      owned.push(x)
      return x
    }
    const before = fdSnapshot()
    try {
      await fn(t, own)
    } finally {
      for (const x of owned.reverse()) {
        if ('close' in x) x.close()
        else x.destroy()
      }
    }
    t.deepEqual(await fdsLeftOpen(before), [], 'no descriptor left open')
    for (let i = 0; i < 100 && pendingWaits() !== 0; i++) await sleep(10)
    t.is(pendingWaits(), 0, 'no pending waits')
    // A watch whose waiters are gone is narrowed once the loop iteration is over.
    await new Promise((resolve) => setImmediate(resolve))
    t.is(native.pollCount(), 0, 'no readiness watches')
  })
}

/** {@link fdTest} for a test that needs what only Linux has (`why`): skipped elsewhere, saying so. */
function linuxFdTest(why: string) {
  return (name: string, fn: Parameters<typeof fdTest>[1]) => fdTest(name, fn, linuxOnly(test.serial, why))
}
const SEQPACKET = 'macOS has no SOCK_SEQPACKET UNIX sockets'
const ABSTRACT = 'abstract socket names are Linux-only (ENOSYS on macOS, tested below)'
const seqpacketTest = linuxFdTest(SEQPACKET)
const abstractTest = linuxFdTest(ABSTRACT)

const uniq = (() => {
  let n = 0
  return (what: string) => `ipckit-test-${process.pid}-${what}-${++n}`
})()

function dir(t: ExecutionContext): string {
  const d = tempDir('ipckit-sock-')
  t.teardown(() => d.remove())
  return d.path
}

/**
 * Leaves a stale socket file at `path`, as a server that crashed does: a child process binds it
 * (and listens, for seqpacket) and is killed with SIGKILL, so nothing removes the file.
 */
async function leaveStaleSocket(kind: 'dgram' | 'seqpacket', path: string): Promise<void> {
  const child = nodeChild(
    kind === 'dgram'
      ? `ipckit.UnixDatagramSocket.bind(process.argv[2]); console.log('bound'); setInterval(() => {}, 1000)`
      : `ipckit.UnixSeqpacketServer.listen(process.argv[2]); console.log('bound'); setInterval(() => {}, 1000)`,
    [path],
  )
  await child.line(/^bound$/)
  child.kill('SIGKILL')
  await child.done
  if (!statSync(path).isSocket()) throw new Error(`no stale socket at ${path}`)
}

/** Same checksum as the C programs print. */
function checksum(data: Buffer): number {
  let sum = 0
  for (const b of data) sum = (Math.imul(sum, 31) + b) >>> 0
  return sum
}

// ---------------------------------------------------------------------------------------------
// socket pairs

seqpacketTest('socketpair(seqpacket): boundaries, async and sync forms, end of stream', async (t, own) => {
  const [a, b] = socketpair('seqpacket')
  own(a)
  own(b)
  t.true(a instanceof UnixSeqpacketSocket)
  t.true(fstatSync(a.fd).isSocket() && fstatSync(b.fd).isSocket(), 'each end is a socket descriptor')
  t.not(fstatSync(a.fd).ino, fstatSync(b.fd).ino, 'two sockets, not one twice')
  await a.send('one')
  t.throws(() => a.sendSync(Buffer.alloc(0)), { code: 'ERR_INVALID_ARG_VALUE' })
  await a.send(new Uint16Array([0x0102, 0x0304]))
  const first = await b.receive()
  t.deepEqual(first, { data: Buffer.from('one'), fds: [], from: null, credentials: undefined, fdsDropped: false })
  t.deepEqual((await b.receive())!.data, Buffer.from(new Uint16Array([0x0102, 0x0304]).buffer))
  t.like(
    t.throws(() => b.receiveSync({ wait: false })),
    { code: 'EAGAIN', syscall: 'recvmsg' },
  )
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
  t.true(fstatSync(a.fd).isSocket() && fstatSync(b.fd).isSocket(), 'each end is a socket descriptor')
  t.not(fstatSync(a.fd).ino, fstatSync(b.fd).ino, 'two sockets, not one twice')
  t.is(a.fd, (a as unknown as { _handle: { fd: number } })._handle.fd, 'the descriptor the net.Socket reads')
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
  const connected = own(UnixDatagramSocket.connect(serverPath))
  connected.sendSync('connected')
  t.is(server.receiveSync().data.toString(), 'connected')
  t.like(
    t.throws(() => UnixDatagramSocket.connect(join(d, 'none.sock'))),
    { code: 'ENOENT', syscall: 'connect' },
  )
  server.remove()
  t.false(existsSync(serverPath))
})

abstractTest('UnixDatagramSocket: abstract addresses', async (t, own) => {
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
  t.is(native.pollCount(), 1)
  await it.return!()
  t.deepEqual(await next, { done: true, value: undefined })
  a.sendSync('4')
  t.is(b.receiveSync().data.toString(), '4')
})

seqpacketTest('AbortSignal cancels a receive promptly, and a cancelled receive took nothing', async (t, own) => {
  const [a, b] = socketpair('seqpacket')
  own(a)
  own(b)
  const ac = new AbortController()
  const p = b.receive({ signal: ac.signal })
  await sleep(20)
  // Promptly: the receive would wait forever otherwise; only a deadline is checked (bench/
  // measures speed).
  ac.abort('stop')
  const err = await t.throwsAsync(within(p, 'the aborted receive rejects'), { instanceOf: AbortError })
  t.is(err.cause, 'stop')
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
  t.true(queued > 0, 'some datagrams fit before the buffer is full')
  let sent = false
  const p = a.send('last').then(() => (sent = true))
  await sleep(30)
  t.false(sent, 'send waits while the buffer is full')
  for (let i = 0; i < queued; i++) t.deepEqual(b.receiveSync().data, chunk)
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

abstractTest('backpressure on an unconnected datagram send to a full receiver', async (t, own) => {
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

seqpacketTest('UnixSeqpacketServer: accept, connect, iterate connections; break cleans up', async (t, own) => {
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

linuxFdTest(`${SEQPACKET}, and the server has an abstract name`)(
  'seqpacket: the iteration of a connection ends when the peer closes',
  async (t, own) => {
    const name = uniq('seqend')
    const server = own(UnixSeqpacketServer.listen({ abstract: name }))
    const client = UnixSeqpacketSocket.connect({ abstract: name })
    const conn = own(await server.accept())
    for (const m of ['x', 'y', 'z']) await client.send(m)
    client.close()
    const got: string[] = []
    for await (const { data } of conn) got.push(data.toString())
    t.deepEqual(got, ['x', 'y', 'z'])
  },
)

// ---------------------------------------------------------------------------------------------
// interoperability with C

const C_CLIENT = String.raw`
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static socklen_t fill(struct sockaddr_un *a, const char *p) {
  memset(a, 0, sizeof *a);
  a->sun_family = AF_UNIX;
  strncpy(a->sun_path, p, sizeof a->sun_path - 1);
  return sizeof *a;
}

/* argv: dgram|seqpacket server-path [own-path] */
int main(int argc, char **argv) {
  int dgram = strcmp(argv[1], "dgram") == 0;
  int fd = socket(AF_UNIX, dgram ? SOCK_DGRAM : SOCK_SEQPACKET, 0);
  struct sockaddr_un srv, me;
  if (fd < 0) { perror("socket"); return 1; }
  if (dgram && bind(fd, (struct sockaddr *)&me, fill(&me, argv[3])) != 0) { perror("bind"); return 1; }
  if (connect(fd, (struct sockaddr *)&srv, fill(&srv, argv[2])) != 0) { perror("connect"); return 1; }
  static const size_t sizes[] = {5, 0, 1, 3000};
  static char buf[8192];
  for (int i = 0; i < 4; i++) {
    for (size_t j = 0; j < sizes[i]; j++) buf[j] = (char)(j * 7 + i);
    if (send(fd, buf, sizes[i], 0) != (ssize_t)sizes[i]) { perror("send"); return 1; }
  }
  for (int i = 0; i < 4; i++) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n < 0) { perror("recv"); return 1; }
    unsigned sum = 0;
    for (ssize_t j = 0; j < n; j++) sum = sum * 31 + (unsigned char)buf[j];
    printf("%zd %u\n", n, sum);
  }
  fflush(stdout);
  return 0;
}
`

/** What the C client sends, and the lines it prints for the answers (`>` + message). */
function cExpectations() {
  const sent = [5, 0, 1, 3000].map((size, i) => Buffer.from(Array.from({ length: size }, (_, j) => (j * 7 + i) & 0xff)))
  const replies = sent.map((m) => Buffer.concat([Buffer.from('>'), m]))
  return { sent, lines: replies.map((r) => `${r.length} ${checksum(r)}`) }
}

fdTest('a C client exchanges datagrams with Node: boundaries and bytes exact', async (t, own) => {
  const exe = compileC('dgram-client', C_CLIENT)
  const d = dir(t)
  const serverPath = join(d, 'node.sock')
  const server = own(UnixDatagramSocket.bind(serverPath))
  const child = cChild(exe, ['dgram', serverPath, join(d, 'c.sock')])
  const { sent, lines } = cExpectations()
  for (let i = 0; i < 4; i++) {
    const msg = await server.receive()
    t.deepEqual(msg.data, sent[i])
    t.is(msg.from, join(d, 'c.sock'))
    await server.send(Buffer.concat([Buffer.from('>'), msg.data]), { to: msg.from! })
  }
  const r = await child.done
  t.is(r.code, 0, r.stderr)
  t.deepEqual(r.stdout.trim().split('\n'), lines)
})

seqpacketTest('a C client exchanges seqpacket messages with Node: boundaries and bytes exact', async (t, own) => {
  const exe = compileC('seqpacket-client', C_CLIENT)
  const d = dir(t)
  const path = join(d, 'node.seq')
  const server = own(UnixSeqpacketServer.listen(path))
  const child = cChild(exe, ['seqpacket', path])
  const conn = own(await server.accept())
  t.like(conn.peerCredentials(), { pid: child.pid })
  const { sent, lines } = cExpectations()
  for (let i = 0; i < 4; i++) {
    const msg = await conn.receive()
    t.deepEqual(msg!.data, sent[i])
    await conn.send(Buffer.concat([Buffer.from('>'), msg!.data]))
  }
  const r = await child.done
  t.is(r.code, 0, r.stderr)
  t.deepEqual(r.stdout.trim().split('\n'), lines)
  t.is(await conn.receive(), null)
})

const C_FD_RECEIVER = String.raw`
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Reads one message with one fd from the stream socket on fd 3 (non-blocking: Node's
   net.Socket made it so); prints the text and what the received fd reads. */
int main(void) {
  struct pollfd p = { 3, POLLIN, 0 };
  if (poll(&p, 1, 10000) != 1) { perror("poll"); return 1; }
  char data[64], file[64];
  union { struct cmsghdr h; char space[CMSG_SPACE(sizeof(int))]; } c;
  struct iovec iov = { data, sizeof data - 1 };
  struct msghdr m = { 0 };
  m.msg_iov = &iov; m.msg_iovlen = 1; m.msg_control = c.space; m.msg_controllen = sizeof c.space;
  ssize_t n = recvmsg(3, &m, 0);
  if (n <= 0) { perror("recvmsg"); return 1; }
  data[n] = 0;
  struct cmsghdr *h = CMSG_FIRSTHDR(&m);
  if (!h || h->cmsg_type != SCM_RIGHTS) { fprintf(stderr, "no fd\n"); return 1; }
  int fd; memcpy(&fd, CMSG_DATA(h), sizeof fd);
  ssize_t k = pread(fd, file, sizeof file - 1, 0);
  if (k < 0) { perror("pread"); return 1; }
  file[k] = 0;
  printf("%s|%s\n", data, file);
  return 0;
}
`

fdTest('sendFds passes a descriptor over a net.Socket stream to a C child', async (t, own) => {
  const exe = compileC('fd-receiver', C_FD_RECEIVER)
  const d = dir(t)
  const file = join(d, 'secret.txt')
  writeFileSync(file, 'file contents')
  const [mine, theirs] = socketpair('stream')
  own(mine)
  const child = cChild(exe, [], { stdio: ['pipe', 'pipe', 'pipe', theirs.fd] })
  theirs.destroy()
  const fd = openSync(file, 'r')
  await sendFds(mine, 'stream text', [fd])
  closeSync(fd)
  const r = await child.done
  t.is(r.code, 0, r.stderr)
  t.is(r.stdout.trim(), 'stream text|file contents')
  await t.throwsAsync(sendFds(mine, '', [0]), { code: 'ERR_INVALID_ARG_VALUE' })
  await t.throwsAsync(sendFds({} as Socket, 'x', [0]), { code: 'ERR_INVALID_ARG_TYPE' })
})

fdTest('receiveFds takes descriptors off a paused net.Socket; a reading one is refused', async (t, own) => {
  const d = dir(t)
  const file = join(d, 'f.txt')
  writeFileSync(file, 'via stream')
  const [a, b] = socketpair('stream', { paused: true })
  own(a)
  own(b)
  const fd = openSync(file, 'r')
  await sendFds(a, 'one', [fd])
  closeSync(fd)
  const first = await receiveFds(b)
  t.is(first.data.toString(), 'one')
  t.is(first.fds.length, 1)
  t.is(readFileSync(first.fds[0]!, 'utf8'), 'via stream')
  closeSync(first.fds[0]!)
  // A receive that waits; then plain stream data without descriptors.
  const later = receiveFds(b)
  await sleep(20)
  a.write('two')
  t.deepEqual(await later, { data: Buffer.from('two'), fds: [], fdsDropped: false })
  const [c, e] = socketpair('stream')
  own(c)
  own(e)
  e.on('data', () => {})
  await sleep(10)
  await t.throwsAsync(receiveFds(e), { code: 'ERR_INVALID_STATE' })
  a.end()
  t.deepEqual(await receiveFds(b), { data: Buffer.alloc(0), fds: [], fdsDropped: false })
})

// ---------------------------------------------------------------------------------------------
// descriptor passing and credentials with Node children

seqpacketTest('a parent passes a file and a pipe to a child over a socketpair', async (t, own) => {
  const d = dir(t)
  const file = join(d, 'data.txt')
  writeFileSync(file, 'read through a passed fd')
  const [mine, theirs] = socketpair('seqpacket')
  own(mine)
  // A real pipe (a FIFO made by mkfifo(1)): we keep the read end, the child gets the write end.
  const fifo = join(d, 'fifo')
  execFileSync('mkfifo', [fifo])
  const readEnd = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK)
  const pipeFd = openSync(fifo, 'w')
  const child = nodeChild(
    `
    const fs = require('node:fs')
    const sock = ipckit.UnixSeqpacketSocket.fromFd(3, { acceptFds: true })
    ;(async () => {
      const msg = await sock.receive()
      const [fileFd, pipeFd] = msg.fds
      const text = fs.readFileSync(fileFd, 'utf8')
      fs.writeSync(pipeFd, msg.data.toString() + ': ' + text)
      fs.closeSync(fileFd)
      fs.closeSync(pipeFd)
      await sock.send('done')
      sock.close()
    })().catch((e) => { console.error(e); process.exit(1) })
    `,
    [],
    { stdio: ['pipe', 'pipe', 'pipe', theirs.fd] },
  )
  theirs.close()
  const fileFd = openSync(file, 'r')
  await mine.send('child says', { fds: [fileFd, pipeFd] })
  closeSync(fileFd)
  closeSync(pipeFd)
  const reply = await mine.receive()
  const r = await child.done
  t.is(r.code, 0, r.stderr)
  t.is(reply?.data.toString(), 'done')
  const buf = Buffer.alloc(100)
  const n = readSync(readEnd, buf)
  closeSync(readEnd)
  t.is(buf.subarray(0, n).toString(), 'child says: read through a passed fd')
  t.is(await mine.receive(), null)
})

linuxFdTest(`${SEQPACKET}, and the flags are read from /proc/self/fdinfo`)(
  'received descriptors are close-on-exec and owned by the receiver',
  async (t, own) => {
    const [a, b] = socketpair('dgram', { acceptFds: true })
    own(a)
    own(b)
    const [p, q] = socketpair('seqpacket')
    own(p)
    own(q)
    await a.send('fds', { fds: [p.fd, p.fd] })
    const msg = await b.receive()
    t.is(msg.fds.length, 2)
    t.not(msg.fds[0], p.fd)
    for (const fd of msg.fds) {
      const flags = /flags:\s+([0-7]+)/.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))![1]!
      t.truthy(parseInt(flags, 8) & 0o2000000, 'O_CLOEXEC')
    }
    // Each is the same socket: what goes in through it comes out of q.
    const dup = UnixSeqpacketSocket.fromFd(msg.fds[0]!)
    own(dup)
    await dup.send('through the copy')
    t.is((await q.receive())!.data.toString(), 'through the copy')
    closeSync(msg.fds[1]!)
    // Messages with fds that are never received release them when the socket closes.
    const [c, e] = socketpair('dgram')
    const before = openFds()
    c.sendSync('unread', { fds: [p.fd] })
    c.close()
    e.close()
    t.is(openFds(), before - 2)
  },
)

linuxFdTest('abstract names and SCM_CREDENTIALS (credentials: true) are Linux-only (ENOSYS on macOS, tested below)')(
  'peer credentials and SCM_CREDENTIALS of an unprivileged child',
  async (t, own) => {
    const name = uniq('cred')
    const server = own(UnixSeqpacketServer.listen({ abstract: name }))
    const dgram = own(UnixDatagramSocket.bind({ abstract: `${name}-dgram` }, { credentials: true }))
    const netPath = `\0${name}-net`
    const netConns: Socket[] = []
    const netServer = createServer((c) => netConns.push(c))
    await new Promise<void>((r) => netServer.listen(netPath, r))
    const child = nodeChild(
      `
    const net = require('node:net')
    const name = process.argv[process.argv.length - 1]
    const conn = ipckit.UnixSeqpacketSocket.connect({ abstract: name })
    const d = ipckit.UnixDatagramSocket.create()
    d.sendSync('from child', { to: { abstract: name + '-dgram' } })
    d.close()
    const s = net.connect('\\0' + name + '-net', () => {
      console.log('ready ' + JSON.stringify(ipckit.peerCredentials(s)))
      conn.receiveSync()
      conn.close()
      s.destroy()
    })
    `,
      [name],
      { uid: NOBODY.uid, gid: NOBODY.gid },
    )
    const failed = child.done.then((r) => {
      throw new Error(`child exited (${r.code}): ${r.stderr}`)
    })
    const conn = own(await Promise.race([server.accept(), failed]))
    const expected = { pid: child.pid, uid: NOBODY.uid, gid: NOBODY.gid }
    t.deepEqual(conn.peerCredentials(), expected)
    const msg = await Promise.race([dgram.receive(), failed])
    t.is(msg.data.toString(), 'from child')
    t.deepEqual(msg.credentials, expected)
    const line = await child.line(/^ready /)
    // The child sees the server process as its peer.
    t.like(JSON.parse(line.slice(6)), { pid: process.pid, uid: 0 })
    while (netConns.length === 0) await sleep(5)
    t.deepEqual(peerCredentials(netConns[0]!), expected)
    conn.sendSync('bye')
    const r = await child.done
    t.is(r.code, 0, r.stderr)
    for (const c of netConns) c.destroy()
    await new Promise((r) => netServer.close(r))
  },
)

linuxFdTest(`${SEQPACKET}, and the server has an abstract name`)(
  'pending waits keep a process alive only until close()',
  async (t) => {
    const r = await nodeChild(
      `
    const [a, b] = ipckit.socketpair('seqpacket')
    const server = ipckit.UnixSeqpacketServer.listen({ abstract: 'ipckit-exit-' + process.pid })
    b.receive().catch((e) => console.log('receive ' + e.name))
    server.accept().catch((e) => console.log('accept ' + e.name))
    const d = ipckit.UnixDatagramSocket.create()
    d.receive().catch((e) => console.log('dgram ' + e.name))
    setTimeout(() => { b.close(); server.close(); d.close(); a.close(); console.log('closed') }, 100)
    `,
      [],
      { timeoutMs: 10_000 },
    ).done
    t.is(r.code, 0, r.stderr)
    t.deepEqual(r.stdout.trim().split('\n').sort(), [
      'accept AbortError',
      'closed',
      'dgram AbortError',
      'receive AbortError',
    ])
  },
)

// ---------------------------------------------------------------------------------------------
// idle sockets

function threads(): number {
  return readdirSync('/proc/self/task').length
}

linuxFdTest('counts threads in /proc/self/task')(
  '1,000 idle sockets waiting cost no thread, no threadpool and no CPU',
  async (t, own) => {
    const threadsBefore = threads()
    const pairs = Array.from({ length: 500 }, () => socketpair('dgram'))
    for (const [a, b] of pairs) {
      own(a)
      own(b)
    }
    const ac = new AbortController()
    const waits = pairs.flatMap(([a, b]) => [a.receive({ signal: ac.signal }), b.receive({ signal: ac.signal })])
    for (const w of waits) w.catch(() => {})
    await sleep(50)
    t.is(native.pollCount(), 1000)
    t.true(threads() <= threadsBefore + 1, `threads ${threadsBefore} -> ${threads()}`)
    const cpu = process.cpuUsage()
    const started = process.hrtime.bigint()
    await sleep(300)
    const used = process.cpuUsage(cpu)
    const wall = Number(process.hrtime.bigint() - started) / 1000
    t.true(used.user + used.system < wall * 0.2, `cpu ${used.user + used.system} us in ${wall} us`)
    // The threadpool is free: file reads go through (they would wait for ever on a parked pool).
    await within(
      Promise.all(Array.from({ length: 8 }, () => readFile(__filename))),
      'readFile completes while 1,000 receives wait',
    )
    // Every one still works.
    pairs[123]![0].sendSync('wake')
    t.is((await waits[247])!.data.toString(), 'wake')
    ac.abort()
    const settled = await Promise.allSettled(waits)
    t.is(settled.filter((s) => s.status === 'rejected').length, 999)
  },
)

// ---------------------------------------------------------------------------------------------
// errors

seqpacketTest('connect errors: ENOENT and ECONNREFUSED', async (t, own) => {
  const d = dir(t)
  const missing = join(d, 'missing.sock')
  t.like(
    t.throws(() => UnixSeqpacketSocket.connect(missing), { instanceOf: IpcError }),
    {
      code: 'ENOENT',
      syscall: 'connect',
      errno: -2,
    },
  )
  const stalePath = join(d, 'stale.sock')
  await leaveStaleSocket('seqpacket', stalePath)
  t.like(
    t.throws(() => UnixSeqpacketSocket.connect(stalePath)),
    { code: 'ECONNREFUSED', syscall: 'connect' },
  )
  const c = own(UnixDatagramSocket.create())
  t.like(await t.throwsAsync(c.send('x', { to: missing })), { code: 'ENOENT', syscall: 'sendmsg' })
  t.throws(() => c.connect({ abstract: uniq('nobody-here') }), { code: 'ECONNREFUSED' })
})

linuxFdTest(`${SEQPACKET}, and one name is abstract`)(
  'EADDRINUSE on a live socket; replaceStale replaces only a stale file',
  async (t, own) => {
    const d = dir(t)
    const path = join(d, 'srv.sock')
    const live = own(UnixSeqpacketServer.listen(path))
    t.like(
      t.throws(() => UnixSeqpacketServer.listen(path)),
      { code: 'EADDRINUSE', syscall: 'bind' },
    )
    t.like(
      t.throws(() => UnixSeqpacketServer.listen(path, { replaceStale: true })),
      { code: 'EADDRINUSE' },
    )
    live.close()
    // A server that dies without closing leaves its file: a stale one, nobody listens.
    await leaveStaleSocket('seqpacket', path)
    t.throws(() => UnixSeqpacketServer.listen(path), { code: 'EADDRINUSE' })
    const again = own(UnixSeqpacketServer.listen(path, { replaceStale: true }))
    const c = own(UnixSeqpacketSocket.connect(path))
    const conn = own(await again.accept())
    c.sendSync('through the replaced file')
    t.is((await conn.receive())!.data.toString(), 'through the replaced file')
    c.close()
    // Datagram sockets too.
    const dpath = join(d, 'dgram.sock')
    const dg = own(UnixDatagramSocket.bind(dpath))
    t.throws(() => UnixDatagramSocket.bind(dpath, { replaceStale: true }), { code: 'EADDRINUSE' })
    dg.close()
    await leaveStaleSocket('dgram', dpath)
    t.throws(() => UnixDatagramSocket.bind(dpath), { code: 'EADDRINUSE' })
    own(UnixDatagramSocket.bind(dpath, { replaceStale: true }))
    // A regular file is never removed.
    const regular = join(d, 'regular')
    writeFileSync(regular, 'keep')
    t.throws(() => UnixDatagramSocket.bind(regular, { replaceStale: true }), { code: 'EADDRINUSE' })
    t.is(readFileSync(regular, 'utf8'), 'keep')
    const abs = uniq('abs-inuse')
    own(UnixDatagramSocket.bind({ abstract: abs }))
    t.throws(() => UnixDatagramSocket.bind({ abstract: abs }), { code: 'EADDRINUSE' })
  },
)

/** The device and inode of the file at `path`, or undefined if there is none. */
function identity(path: string): string | undefined {
  try {
    const st = lstatSync(path, { bigint: true })
    return `${st.dev}:${st.ino}`
  } catch {
    return undefined
  }
}

seqpacketTest(
  'close() removes the socket file a server bound, as net.Server does, so the path can be listened on again',
  async (t, own) => {
    const d = dir(t)
    const path = join(d, 'srv.sock')
    {
      using server = UnixSeqpacketServer.listen(path)
      t.true(statSync(path).isSocket())
      const c = own(UnixSeqpacketSocket.connect(path))
      const conn = own(await server.accept())
      c.sendSync('before close')
      t.is(conn.receiveSync()!.data.toString(), 'before close')
    }
    t.false(existsSync(path), '`using` closed the server, which removed its file')
    // The next listen binds without EADDRINUSE and without replaceStale.
    const again = own(UnixSeqpacketServer.listen(path))
    const c = own(UnixSeqpacketSocket.connect(path))
    const conn = own(await again.accept())
    c.sendSync('after')
    t.is(conn.receiveSync()!.data.toString(), 'after')
    again.close()
    t.false(existsSync(path))
    again.close() // idempotent
    again.remove() // nothing left to remove: no error
    t.false(existsSync(path))
  },
)

fdTest(
  'close() removes the socket file a datagram socket bound; unbound and connected sockets remove nothing',
  async (t, own) => {
    const d = dir(t)
    const path = join(d, 'dgram.sock')
    const server = own(UnixDatagramSocket.bind(path))
    {
      using client = UnixDatagramSocket.connect(path) // unbound: its close touches no file
      await client.send('hello')
      using anonymous = UnixDatagramSocket.create()
      await anonymous.send('anonymous', { to: path })
    }
    t.true(statSync(path).isSocket(), "the clients left the server's file alone")
    t.is(server.receiveSync().data.toString(), 'hello')
    t.is(server.receiveSync().data.toString(), 'anonymous')
    {
      using bound = UnixDatagramSocket.bind(join(d, 'client.sock'))
      await bound.send('from a bound client', { to: path })
      t.true(existsSync(join(d, 'client.sock')))
    }
    t.false(existsSync(join(d, 'client.sock')), '`using` closed the bound client, which removed its file')
    t.like(server.receiveSync(), { from: join(d, 'client.sock') })
    server.close()
    t.false(existsSync(path))
    // Bound again at once, no replaceStale needed.
    own(UnixDatagramSocket.bind(path)).close()
    t.false(existsSync(path))
    // A socket over a descriptor (fromFd) knows no path: nothing is removed.
    const [a, b] = socketpair('dgram')
    own(a).close()
    own(b).close()
  },
)

seqpacketTest(
  "a socket file replaced since bind is not removed by close(): another server's file, a regular file",
  async (t, own) => {
    const d = dir(t)
    const path = join(d, 'srv.sock')
    const first = own(UnixSeqpacketServer.listen(path))
    const firstFile = identity(path)
    // Someone removes the file and another server binds the same path.
    first.remove()
    const second = own(UnixSeqpacketServer.listen(path))
    const secondFile = identity(path)
    t.not(secondFile, firstFile)
    first.close()
    t.is(identity(path), secondFile, "the second server's file is still there")
    const c = own(UnixSeqpacketSocket.connect(path))
    const conn = own(await second.accept())
    c.sendSync('to the second')
    t.is(conn.receiveSync()!.data.toString(), 'to the second')
    second.close()
    t.false(existsSync(path))

    // A datagram socket's file renamed away and a regular file put in its place: both stay.
    const dpath = join(d, 'dgram.sock')
    const moved = join(d, 'moved.sock')
    const dg = own(UnixDatagramSocket.bind(dpath))
    renameSync(dpath, moved)
    writeFileSync(dpath, 'not a socket')
    dg.close()
    t.is(readFileSync(dpath, 'utf8'), 'not a socket', 'a regular file at the path is left alone')
    t.true(statSync(moved).isSocket(), 'close() looks only at the path it bound')
  },
)

linuxFdTest(SEQPACKET)(
  'a server bound at a relative path removes its own file on close, after a chdir; a child that inherits nothing removes nothing',
  async (t) => {
    const d = dir(t)
    mkdirSync(join(d, 'elsewhere'))
    writeFileSync(join(d, 'elsewhere', 'srv.sock'), 'same name, other folder')
    const r = await runNode(
      `const fs = require('node:fs')
     const server = ipckit.UnixSeqpacketServer.listen('srv.sock')
     process.chdir('elsewhere')
     server.close()
     console.log(JSON.stringify({ bound: fs.existsSync('../srv.sock'), other: fs.readFileSync('srv.sock', 'utf8') }))`,
      [],
      { cwd: d },
    )
    t.deepEqual(JSON.parse(r.stdout), { bound: false, other: 'same name, other folder' })
    // A server killed without close leaves its file (nothing runs to remove it): replaceStale is for that.
    await leaveStaleSocket('seqpacket', join(d, 'killed.sock'))
    t.true(statSync(join(d, 'killed.sock')).isSocket())
  },
)

seqpacketTest('EMSGSIZE for a message larger than the socket can hold', async (t, own) => {
  const [a, b] = socketpair('dgram')
  own(a)
  own(b)
  const huge = Buffer.alloc(8 * 1024 * 1024)
  t.like(
    t.throws(() => a.sendSync(huge)),
    { code: 'EMSGSIZE', syscall: 'sendmsg' },
  )
  t.like(await t.throwsAsync(a.send(huge)), { code: 'EMSGSIZE', syscall: 'sendmsg' })
  const [p, q] = socketpair('seqpacket')
  own(p)
  own(q)
  await t.throwsAsync(p.send(huge), { code: 'EMSGSIZE' })
  // A large message that fits arrives whole.
  const big = Buffer.alloc(150_000, 7)
  await a.send(big)
  t.deepEqual((await b.receive()).data, big)
})

fdTest('bad descriptors', async (t, own) => {
  t.like(
    t.throws(() => UnixSeqpacketSocket.fromFd(100_000)),
    { code: 'EBADF', syscall: 'getsockopt' },
  )
  const fileFd = openSync(__filename, 'r')
  try {
    t.like(
      t.throws(() => UnixDatagramSocket.fromFd(fileFd)),
      { code: 'ENOTSOCK' },
    )
  } finally {
    closeSync(fileFd)
  }
  const [a, b] = socketpair('dgram')
  own(a)
  own(b)
  t.throws(() => UnixSeqpacketSocket.fromFd(a.fd), { code: 'ERR_INVALID_ARG_VALUE' })
  t.like(await t.throwsAsync(a.send('x', { fds: [100_000] })), { code: 'EBADF', syscall: 'sendmsg' })
  t.like(
    t.throws(() => peerCredentials(100_000)),
    { code: 'EBADF' },
  )
  // Nothing was sent by the failed call.
  t.throws(() => b.receiveSync({ wait: false }), { code: 'EAGAIN' })
})

fdTest('bad types and ranges are refused before any system call', async (t, own) => {
  const [a] = socketpair('dgram').map(own)
  await t.throwsAsync(a!.send(42 as unknown as string), { code: 'ERR_INVALID_ARG_TYPE' })
  await t.throwsAsync(a!.send('x', { fds: ['1' as unknown as number] }), { code: 'ERR_INVALID_ARG_TYPE' })
  await t.throwsAsync(a!.send('x', { fds: [-1] }), { code: 'ERR_OUT_OF_RANGE' })
  await t.throwsAsync(a!.send('x', { fds: Array.from({ length: 254 }, () => 0) }), { code: 'ERR_OUT_OF_RANGE' })
  await t.throwsAsync(a!.send('x', { to: 7 as unknown as string }), { code: 'ERR_INVALID_ARG_TYPE' })
  await t.throwsAsync(a!.receive({ signal: 'no' as unknown as AbortSignal }), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => a!.sendSync('x', { wait: 1 as unknown as boolean }), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => UnixDatagramSocket.bind(''), { code: 'ERR_INVALID_ARG_VALUE' })
  t.throws(() => UnixDatagramSocket.bind('/tmp/' + 'x'.repeat(200)), { code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => UnixDatagramSocket.bind({ abstract: 5 } as unknown as string), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => UnixDatagramSocket.bind('/tmp/x.sock', { mode: 0o1777 }), { code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => UnixSeqpacketServer.listen({ abstract: 'x' }, { backlog: -1 }), { code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => UnixSeqpacketSocket.fromFd(-1), { code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => UnixSeqpacketSocket.fromFd('3' as unknown as number), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => peerCredentials({} as Socket), { code: 'ERR_INVALID_ARG_TYPE' })
})

notLinux(fdTest)(
  'abstract names and credentials: true fail with IpcError ENOSYS; seqpacket sockets are refused by the kernel',
  async (t, own) => {
    const name = uniq('abstract')
    t.like(
      t.throws(() => UnixDatagramSocket.bind({ abstract: name }), { instanceOf: IpcError }),
      { code: 'ENOSYS', syscall: 'bind' },
    )
    const [a, b] = socketpair('dgram')
    own(a)
    own(b)
    t.like(await t.throwsAsync(a.send('x', { to: { abstract: name } }), { instanceOf: IpcError }), {
      code: 'ENOSYS',
      syscall: 'sendmsg',
    })
    t.throws(() => b.receiveSync({ wait: false }), { code: 'EAGAIN' }, 'nothing was sent')
    const d = dir(t)
    t.like(
      t.throws(() => UnixDatagramSocket.bind(join(d, 'creds.sock'), { credentials: true }), { instanceOf: IpcError }),
      {
        code: 'ENOSYS',
        syscall: 'setsockopt',
      },
    )
    t.like(
      t.throws(() => socketpair('seqpacket'), { instanceOf: IpcError }),
      { syscall: 'socketpair' },
    )
    t.like(
      t.throws(() => UnixSeqpacketServer.listen(join(d, 'seq.sock')), { instanceOf: IpcError }),
      { syscall: 'socket' },
    )
  },
)

// ---------------------------------------------------------------------------------------------
// foreign peers (issue 17): Python's socket module, socat

/**
 * A Python peer with a datagram socket at a path that is not UTF-8 (`<dir>/x-\xff.sock`) and
 * one at an abstract name that is not UTF-8 (argv[3], hex): each sends a ping to argv[1] and
 * prints the reply it gets (or times out, and fails).
 */
const NON_UTF8_DGRAM_PEER = String.raw`
import os, socket, sys
server, folder, raw = sys.argv[1], sys.argv[2], bytes.fromhex(sys.argv[3])
by_path = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
by_path.bind(os.fsencode(folder) + b'/x-\xff.sock')
by_name = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
by_name.bind(b'\0' + raw)
for s, what in ((by_path, b'path'), (by_name, b'abstract')):
    s.settimeout(10)
    s.sendto(b'ping ' + what, server)
    print(s.recv(100).decode(), flush=True)
`

fdTest(
  'a Python peer bound at a path and an abstract name that are not UTF-8 gets the reply, its U+FFFD look-alike nothing',
  async (t, own) => {
    const d = dir(t)
    const server = own(UnixDatagramSocket.bind(join(d, 'server.sock')))
    // Bystanders bound where a reply would go if the names were decoded with replacements.
    const lookalike = own(UnixDatagramSocket.bind(join(d, 'x-\uFFFD.sock')))
    const tag = `ipckit-test-${process.pid}-nonutf8-`
    const raw = Buffer.concat([Buffer.from(tag), Buffer.from([0xff, 0xfe, 0x80])])
    const lookalikeName = own(UnixDatagramSocket.bind({ abstract: `${tag}\uFFFD\uFFFD\uFFFD` }))
    const peer = cChild('python3', ['-c', NON_UTF8_DGRAM_PEER, join(d, 'server.sock'), d, raw.toString('hex')])
    const byPath = await server.receive()
    t.is(byPath.data.toString(), 'ping path')
    t.deepEqual(byPath.from, Buffer.concat([Buffer.from(`${d}/x-`), Buffer.from([0xff]), Buffer.from('.sock')]))
    await server.send('pong path', { to: byPath.from! })
    const byName = await server.receive()
    t.is(byName.data.toString(), 'ping abstract')
    t.deepEqual(byName.from, { abstract: raw })
    server.sendSync('pong abstract', { to: byName.from! })
    const r = await peer.done
    t.is(r.code, 0, r.stderr)
    t.deepEqual(r.stdout.trim().split('\n'), ['pong path', 'pong abstract'])
    t.throws(() => lookalike.receiveSync({ wait: false }), { code: 'EAGAIN' }, 'the look-alike path got nothing')
    t.throws(() => lookalikeName.receiveSync({ wait: false }), { code: 'EAGAIN' }, 'the look-alike name got nothing')
  },
  needs(linuxOnly(test.serial, ABSTRACT), { command: 'python3' }),
)

/**
 * A Python seqpacket server at a path that is not UTF-8 (`<dir>/s-\xfe.sock`): prints
 * "listening", then echoes one message of one connection and prints its peer's address, hex.
 */
const NON_UTF8_SEQPACKET_SERVER = String.raw`
import os, socket, sys
srv = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
srv.bind(os.fsencode(sys.argv[1]) + b'/s-\xfe.sock')
srv.listen(1)
print('listening', flush=True)
conn, _ = srv.accept()
conn.send(b'echo ' + conn.recv(100))
conn.close()
`

fdTest(
  'seqpacket at a path that is not UTF-8: connect by Buffer to a Python server, listen at one for a Python client',
  async (t, own) => {
    const d = dir(t)
    const serverPath = Buffer.concat([Buffer.from(`${d}/s-`), Buffer.from([0xfe]), Buffer.from('.sock')])
    const server = cChild('python3', ['-c', NON_UTF8_SEQPACKET_SERVER, d])
    await server.line(/^listening$/)
    const conn = own(UnixSeqpacketSocket.connect(serverPath))
    t.deepEqual(conn.remoteAddress, serverPath)
    await conn.send('hi')
    t.is((await conn.receive())!.data.toString(), 'echo hi')
    t.is((await server.done).code, 0)
    // And the other way round: ipckit listens at a non-UTF-8 path.
    const ownPath = Buffer.concat([Buffer.from(`${d}/o-`), Buffer.from([0xc3, 0x28]), Buffer.from('.sock')])
    const listener = own(UnixSeqpacketServer.listen(ownPath))
    t.deepEqual(listener.address, ownPath)
    const client = cChild('python3', [
      '-c',
      `import socket, sys
c = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
c.connect(bytes.fromhex(sys.argv[1]))
c.send(b'from python')
print(c.recv(100).decode())`,
      ownPath.toString('hex'),
    ])
    const accepted = own(await listener.accept())
    t.is((await accepted.receive())!.data.toString(), 'from python')
    await accepted.send('to python')
    const r = await client.done
    t.is(r.code, 0, r.stderr)
    t.is(r.stdout.trim(), 'to python')
    listener.close()
    listener.remove()
    // remove() unlinked exactly its own file (the Python server's is left).
    t.deepEqual(
      readdirSync(d, { encoding: 'buffer' }).map((n) => n.toString('hex')),
      [Buffer.concat([Buffer.from('s-'), Buffer.from([0xfe]), Buffer.from('.sock')]).toString('hex')],
    )
  },
  needs(linuxOnly(test.serial, SEQPACKET), { command: 'python3' }),
)

fdTest(
  'socketpair(stream): the end handed to a Python child is blocking (os.read waits for data)',
  async (t, own) => {
    const [mine, theirs] = socketpair('stream')
    own(mine)
    const flags = (fd: number) =>
      Number.parseInt(/^flags:\s+(\d+)/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))![1]!, 8)
    const child = cChild(
      'python3',
      [
        '-c',
        `import os
print('ready', os.get_blocking(3), flush=True)
data = os.read(3, 100)
os.write(3, b'got ' + data)
print('read', data.decode(), flush=True)`,
      ],
      { stdio: ['pipe', 'pipe', 'pipe', theirs.fd] },
    )
    theirs.destroy()
    const ready = await child.line(/^ready/)
    t.is(ready, 'ready True')
    // The child sits in a plain blocking read until the data comes.
    await sleep(200)
    t.is(flags(mine.fd) & constants.O_NONBLOCK, 0, 'not used yet, the local end is blocking too')
    const reply = new Promise<string>((resolve) => mine.once('data', (c: Buffer) => resolve(c.toString())))
    mine.write('hello')
    // The end this process uses turned non-blocking when it was first used.
    t.is(flags(mine.fd) & constants.O_NONBLOCK, constants.O_NONBLOCK)
    t.is(await reply, 'got hello')
    const r = await child.done
    t.is(r.code, 0, r.stderr)
    t.is(r.stdout.trim().split('\n')[1], 'read hello')
  },
  needs(linuxOnly(test.serial, 'reads /proc/self/fdinfo'), { command: 'python3' }),
)

fdTest(
  'replaceStale does not disturb a live socat seqpacket server: EADDRINUSE, socat still serves, its file stays',
  async (t, own) => {
    const d = dir(t)
    const path = join(d, 'socat.sock')
    const socat = cChild('socat', ['-u', `UNIX-LISTEN:${path},socktype=5`, 'STDOUT'])
    for (let i = 0; !existsSync(path); i++) {
      if (i > 5000) return t.fail('socat did not listen')
      await sleep(1)
    }
    t.like(
      t.throws(() => UnixSeqpacketServer.listen(path, { replaceStale: true })),
      { code: 'EADDRINUSE', syscall: 'bind' },
    )
    const exited = await Promise.race([socat.done.then(() => true), sleep(300).then(() => false)])
    t.false(exited, 'socat is still running')
    t.true(existsSync(path), 'its socket file is still there')
    // Its first connection is ours: it prints what we send.
    const conn = own(UnixSeqpacketSocket.connect(path))
    await conn.send('still serving')
    conn.close()
    const r = await socat.done
    t.is(r.code, 0, r.stderr)
    t.is(r.stdout, 'still serving')
    // socat removed its file on exit: now the path is free, and a stale file is replaced.
    const stale = join(d, 'stale.sock')
    UnixSeqpacketServer.listen(stale).close()
    own(UnixSeqpacketServer.listen(stale, { replaceStale: true }))
  },
  needs(linuxOnly(test.serial, SEQPACKET), { command: 'socat' }),
)

fdTest(
  'peerCredentials: "no peer" (ENOTCONN) for datagram sockets, real ones from a Python seqpacket server',
  async (t, own) => {
    const d = dir(t)
    const peer = cChild('python3', [
      '-c',
      `import socket, sys
dg = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
dg.bind(sys.argv[1] + '/dgram.sock')
srv = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
srv.bind(sys.argv[1] + '/seq.sock')
srv.listen(1)
print('ready', flush=True)
conn, _ = srv.accept()
conn.recv(10)`,
      d,
    ])
    await peer.line(/^ready$/)
    const connected = own(UnixDatagramSocket.connect(join(d, 'dgram.sock')))
    t.like(
      t.throws(() => connected.peerCredentials()),
      { code: 'ENOTCONN', syscall: 'getsockopt' },
    )
    t.like(
      t.throws(() => peerCredentials(connected.fd)),
      { code: 'ENOTCONN', syscall: 'getsockopt' },
    )
    const unbound = own(UnixDatagramSocket.create())
    t.like(
      t.throws(() => unbound.peerCredentials()),
      { code: 'ENOTCONN', syscall: 'getsockopt' },
    )
    const seq = own(UnixSeqpacketSocket.connect(join(d, 'seq.sock')))
    t.deepEqual(seq.peerCredentials(), { pid: peer.pid, uid: process.getuid!(), gid: process.getgid!() })
    seq.sendSync('bye')
    t.is((await peer.done).code, 0)
  },
  needs(linuxOnly(test.serial, SEQPACKET), { command: 'python3' }),
)

fdTest(
  'a non-UTF-8 sender address is exact on the general path too (credentials), and in address/remoteAddress',
  async (t, own) => {
    const d = dir(t)
    const server = own(UnixDatagramSocket.bind(join(d, 'creds.sock'), { credentials: true }))
    const clientPath = Buffer.concat([Buffer.from(`${d}/c-`), Buffer.from([0xff, 0x00 + 0x41]), Buffer.from('.sock')])
    const client = own(UnixDatagramSocket.bind(clientPath, { acceptFds: true }))
    t.deepEqual(client.address, clientPath)
    client.sendSync('hello', { to: join(d, 'creds.sock') })
    const msg = await server.receive()
    t.deepEqual(msg.from, clientPath)
    t.is(msg.credentials?.pid, process.pid)
    await server.send('back', { to: msg.from!, fds: [server.fd] })
    const back = await client.receive()
    t.is(back.data.toString(), 'back')
    t.is(back.fds.length, 1)
    closeSync(back.fds[0]!)
    const connected = own(UnixDatagramSocket.connect(clientPath))
    t.deepEqual(connected.remoteAddress, clientPath)
    // A Buffer path with a NUL byte, or empty, is refused before any call.
    t.throws(() => UnixDatagramSocket.bind(Buffer.from('/tmp/a\0b')), { code: 'ERR_INVALID_ARG_VALUE' })
    t.throws(() => UnixDatagramSocket.bind(new Uint8Array(0)), { code: 'ERR_INVALID_ARG_VALUE' })
    t.throws(() => UnixDatagramSocket.bind(Buffer.alloc(200, 0x41)), { code: 'ERR_OUT_OF_RANGE' })
    client.close()
    client.remove()
    t.deepEqual(readdirSync(d), ['creds.sock'])
  },
)
