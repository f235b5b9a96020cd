/**
 * Permissions (issue 9): default modes and refusals for an unprivileged process, for what the
 * primitive specs do not already cover. Already covered elsewhere: queue 0o600 and EACCES for
 * nobody (queue.spec, queue-processes.spec), semaphore set 0o600 and EACCES (semaphore.spec,
 * semaphore-mp.spec), shared memory 0o600, EACCES and read-only access (shared-memory.spec),
 * FIFO default 0o600 (pipe.spec), datagram/seqpacket socket file 0o600 and `mode` on bind
 * (unix-socket.spec), kill/sigqueue EPERM (signals.spec), ipcs of unreadable objects (ipcs.spec).
 *
 * The tests run as root; the unprivileged side is a child with `{ uid: NOBODY.uid, gid: NOBODY.gid }`.
 */

import test from 'ava'
import { chmodSync, statSync } from 'node:fs'
import { join } from 'node:path'
import {
  IPC_PRIVATE,
  MessageQueue,
  Mutex,
  Semaphore,
  SemaphoreSet,
  SharedMemory,
  UnixDatagramSocket,
  UnixSeqpacketServer,
  ipcs,
  mkfifo,
} from '../ts/index'
import { NOBODY, freshKey, linuxOnly, runNode, tempDir } from './helpers'

const AS_NOBODY = { uid: NOBODY.uid, gid: NOBODY.gid }

/** Runs probes as nobody; each probe's outcome is 'ok' (or its value) or `code:syscall`. */
async function asNobody(probes: Record<string, string>, args: string[] = []): Promise<Record<string, string>> {
  const code = `
    const out = {}
    const probes = ${JSON.stringify(probes)}
    const run = async () => {
      for (const [name, body] of Object.entries(probes)) {
        try { const v = await eval('(async () => {' + body + '})()'); out[name] = v === undefined ? 'ok' : String(v) }
        catch (e) { out[name] = e.code + ':' + e.syscall }
      }
      console.log(JSON.stringify(out))
    }
    run().then(() => process.exit(0))
  `
  const r = await runNode(code, args, AS_NOBODY)
  return JSON.parse(r.stdout.trim()) as Record<string, string>
}

/** A temporary folder nobody may enter (so that only the file's own mode decides). */
function openDir(t: { teardown(fn: () => void): void }): string {
  const d = tempDir('ipckit-perm-')
  chmodSync(d.path, 0o755)
  t.teardown(d.remove)
  return d.path
}

test('Semaphore and Mutex: default mode 0o600, and nobody is refused (EACCES), by key and by id', async (t) => {
  const semKey = freshKey('sem')
  const sem = Semaphore.open(semKey, { create: true, initial: 1 })
  t.teardown(() => (sem.remove(), sem.close()))
  const mutexKey = freshKey('sem')
  const mutex = Mutex.open(mutexKey, { create: true })
  t.teardown(() => (mutex.remove(), mutex.close()))
  const modes = new Map(ipcs({ type: 'sem' }).map((e) => [e.id, e.mode]))
  t.is(modes.get(sem.id), 0o600)
  t.is(modes.get(mutex.id), 0o600)
  const out = await asNobody({
    semaphore: `ipckit.Semaphore.open(${semKey})`,
    mutex: `ipckit.Mutex.open(${mutexKey})`,
    mutexById: `ipckit.SemaphoreSet.fromId(${mutex.id})`,
  })
  // Opening by key is semget (no permission needed for 0 flags) then semctl(IPC_STAT), which refuses.
  t.deepEqual(out, { semaphore: 'EACCES:semctl', mutex: 'EACCES:semctl', mutexById: 'EACCES:semctl' })
  t.true(mutex.tryLock() !== null, 'the mutex was not taken')
})

test('System V objects open to everyone (0o666) still refuse remove() and update() to a non-owner (EPERM)', async (t) => {
  const q = MessageQueue.create({ mode: 0o666 })
  const set = SemaphoreSet.create({ count: 1, mode: 0o666 })
  const shm = SharedMemory.open(IPC_PRIVATE, { size: 4096, create: true, mode: 0o666 })
  t.teardown(() => {
    for (const o of [q, set, shm]) {
      o.remove()
      o.close()
    }
  })
  const out = await asNobody({
    queueUse: `const q = ipckit.MessageQueue.fromId(${q.id}); q.sendSync('hi'); return q.receiveSync().data.toString()`,
    queueUpdate: `ipckit.MessageQueue.fromId(${q.id}).update({ mode: 0o600 })`,
    queueRemove: `ipckit.MessageQueue.fromId(${q.id}).remove()`,
    semUpdate: `ipckit.SemaphoreSet.fromId(${set.id}).update({ mode: 0o600 })`,
    semRemove: `ipckit.SemaphoreSet.fromId(${set.id}).remove()`,
    shmUpdate: `ipckit.SharedMemory.fromId(${shm.id}).update({ mode: 0o600 })`,
    shmRemove: `ipckit.SharedMemory.fromId(${shm.id}).remove()`,
    ipcrm: `return ipckit.ipcrm({ type: 'msg', id: ${q.id} })`,
  })
  t.deepEqual(out, {
    queueUse: 'hi',
    queueUpdate: 'EPERM:msgctl',
    queueRemove: 'EPERM:msgctl',
    semUpdate: 'EPERM:semctl',
    semRemove: 'EPERM:semctl',
    shmUpdate: 'EPERM:shmctl',
    shmRemove: 'EPERM:shmctl',
    ipcrm: 'EPERM:msgctl',
  })
  t.is(q.stat().mode, 0o666)
  t.is(set.stat().mode, 0o666)
  t.is(shm.stat().mode, 0o666)
})

test('FIFO: nobody cannot open a 0o600 FIFO (EACCES), and can open one made 0o666', async (t) => {
  const dir = openDir(t)
  const closed = join(dir, 'closed.fifo')
  const open = join(dir, 'open.fifo')
  const umask = process.umask(0)
  try {
    mkfifo(closed)
    mkfifo(open, 0o666)
  } finally {
    process.umask(umask)
  }
  t.is(statSync(closed).mode & 0o777, 0o600)
  t.is(statSync(open).mode & 0o777, 0o666)
  const out = await asNobody({
    read: `await ipckit.openFifo(${JSON.stringify(closed)}, 'r', { signal: AbortSignal.timeout(5000) })`,
    write: `ipckit.openFifoSync(${JSON.stringify(closed)}, 'w')`,
    // O_RDWR-free check that access is allowed: a writer with no reader gets ENXIO, not EACCES.
    allowed: `const ac = new AbortController(); const p = ipckit.openFifo(${JSON.stringify(open)}, 'r', { signal: ac.signal }); ac.abort(); await p`,
  })
  t.is(out.read, 'EACCES:open')
  t.is(out.write, 'EACCES:open')
  t.is(out.allowed, 'ABORT_ERR:undefined', 'the open waited for a writer (then aborted): it was allowed')
})

linuxOnly(test, 'half of the sockets are seqpacket: macOS has no SOCK_SEQPACKET UNIX sockets')(
  'socket files: default 0o600 refuses nobody (EACCES); mode: 0o666 lets it in',
  async (t) => {
    const dir = openDir(t)
    const dgramPrivate = join(dir, 'private.dgram')
    const dgramOpen = join(dir, 'open.dgram')
    const seqPrivate = join(dir, 'private.seq')
    const seqOpen = join(dir, 'open.seq')
    const sockets = [
      UnixDatagramSocket.bind(dgramPrivate),
      UnixDatagramSocket.bind(dgramOpen, { mode: 0o666 }),
      UnixSeqpacketServer.listen(seqPrivate),
      UnixSeqpacketServer.listen(seqOpen, { mode: 0o666 }),
    ] as const
    t.teardown(() => sockets.forEach((s) => s.close()))
    t.is(statSync(dgramPrivate).mode & 0o777, 0o600)
    t.is(statSync(seqPrivate).mode & 0o777, 0o600)
    t.is(statSync(dgramOpen).mode & 0o777, 0o666)
    t.is(statSync(seqOpen).mode & 0o777, 0o666)
    const out = await asNobody({
      dgramPrivate: `const s = ipckit.UnixDatagramSocket.create(); try { await s.send('x', { to: ${JSON.stringify(dgramPrivate)} }) } finally { s.close() }`,
      dgramOpen: `const s = ipckit.UnixDatagramSocket.create(); try { await s.send('from nobody', { to: ${JSON.stringify(dgramOpen)} }) } finally { s.close() }`,
      seqPrivate: `ipckit.UnixSeqpacketSocket.connect(${JSON.stringify(seqPrivate)}).close()`,
      seqOpen: `const c = ipckit.UnixSeqpacketSocket.connect(${JSON.stringify(seqOpen)}); c.sendSync('hello'); c.close()`,
    })
    t.deepEqual(out, { dgramPrivate: 'EACCES:sendmsg', dgramOpen: 'ok', seqPrivate: 'EACCES:connect', seqOpen: 'ok' })
    t.is((await sockets[1].receive()).data.toString(), 'from nobody')
    const conn = await sockets[3].accept()
    t.teardown(() => conn.close())
    t.is((await conn.receive())!.data.toString(), 'hello')
  },
)

linuxOnly(test, 'abstract socket names are Linux-only (ENOSYS on macOS)')(
  'abstract sockets have no file permissions: nobody reaches a root-owned one (a documented limit)',
  async (t) => {
    const name = `ipckit-perm-${process.pid}`
    const server = UnixSeqpacketServer.listen({ abstract: name })
    t.teardown(() => server.close())
    const out = await asNobody({
      connect: `const c = ipckit.UnixSeqpacketSocket.connect({ abstract: ${JSON.stringify(name)} }); c.close()`,
    })
    t.deepEqual(out, { connect: 'ok' })
    const conn = await server.accept()
    t.like(conn.peerCredentials(), { uid: NOBODY.uid })
    conn.close()
  },
)
