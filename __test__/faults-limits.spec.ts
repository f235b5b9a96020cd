/**
 * At the limits (issue 21): what a hostile local user, a hostile peer or the system's own
 * limits do to ipckit. Each test reproduces the limit for real (a second user, a peer written in
 * C or Python, `prlimit`), and checks that nothing is crashed, hung, leaked or touched that was
 * not meant to be.
 */
import test from 'ava'
import { chmodSync, closeSync, openSync, statSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'

import {
  IPC_PRIVATE,
  MessageQueue,
  Mutex,
  Semaphore,
  SemaphoreSet,
  SharedMemory,
  UnixDatagramSocket,
  UnixSeqpacketServer,
  UnixSeqpacketSocket,
  socketpair,
} from '../ts/index'
import {
  NOBODY,
  SOURCE_ENTRY,
  cChild,
  compileC,
  fdSnapshot,
  fdsLeftOpen,
  freshKey,
  linuxOnly,
  nodeChild,
  removeBuilds,
  runNode,
  sleep,
  tempDir,
} from './helpers'

test.after.always(removeBuilds)

const isRoot = process.getuid?.() === 0
/** Tests that play a second, unprivileged user against a privileged one. */
const asRootTest = isRoot ? test : test.skip
const rootTitle = (title: string) => (isRoot ? title : `${title} [skipped: needs root, to run a second user (nobody)]`)

/** Swaps `path` for a symlink to `victim`, again and again, until killed. */
const SYMLINK_SWAPPER = `
#include <stdio.h>
#include <unistd.h>
int main(int argc, char **argv) {
  printf("swapping\\n");
  fflush(stdout);
  for (;;) {
    unlink(argv[1]);
    symlink(argv[2], argv[1]);
  }
}
`

/** A root process binds `mode` sockets at a path that a `nobody` swapper keeps replacing with a symlink. */
async function bindAgainstSwapper(t: import('ava').ExecutionContext, options: string, umask: number) {
  const shared = tempDir('ipckit-bind-race-')
  const secret = tempDir('ipckit-bind-victim-')
  t.teardown(() => {
    shared.remove()
    secret.remove()
  })
  // A folder the attacker may write (not sticky, so it may remove root's socket files), and a
  // victim file in a folder it cannot even enter.
  chmodSync(shared.path, 0o777)
  const victim = join(secret.path, 'victim')
  writeFileSync(victim, 'keep my mode\n')
  chmodSync(victim, 0o640)
  const path = join(shared.path, 'app.sock')
  const exe = compileC('symlink-swapper', SYMLINK_SWAPPER)
  chmodSync(dirname(exe), 0o755) // the build folder is private to root
  // Three swappers, so that one is usually between its unlink and its symlink.
  const swappers = [0, 1, 2].map(() => cChild(exe, [path, victim], { uid: NOBODY.uid, gid: NOBODY.gid }))
  t.teardown(() => swappers.forEach((s) => s.kill('SIGKILL')))
  await Promise.all(swappers.map((s) => s.line(/^swapping$/)))
  const r = await runNode(
    `
    const fs = require('node:fs')
    process.umask(${umask})
    const [path, victim] = process.argv.slice(2)
    let bound = 0, taken = 0
    // Until 400 binds won the race (the old chmod-after-bind gave the victim away within a
    // few dozen), or 12 seconds.
    const end = Date.now() + 12000
    for (let i = 0; bound < 400 && Date.now() < end; i++) {
      try {
        ipckit.UnixDatagramSocket.bind(path, ${options}).close()
        bound++
      } catch (e) {
        if (e.code !== 'EADDRINUSE') throw e
        taken++
      }
      const mode = fs.statSync(victim).mode & 0o777
      if (mode !== 0o640) { console.log('victim mode ' + mode.toString(8) + ' after ' + (i + 1) + ' binds'); process.exit(2) }
    }
    console.log(JSON.stringify({ bound, taken }))`,
    [path, victim],
    { timeoutMs: 120_000 },
  ).catch((e: Error) => ({ stdout: e.message }))
  const result = r.stdout.trim()
  t.regex(result, /^\{/, result)
  const { bound, taken } = JSON.parse(result) as { bound: number; taken: number }
  // Both sides ran: some binds won the race, some found the attacker's symlink there.
  t.log(result)
  t.true(bound > 0 && taken > 0, result)
  t.is(statSync(victim).mode & 0o777, 0o640)
}

linuxOnly(asRootTest, 'symlink swaps under a running bind')(
  rootTitle(
    'bind with mode 0o666 under umask 022, while nobody swaps the path for a symlink: the victim keeps its mode',
  ),
  (t) => bindAgainstSwapper(t, '{ mode: 0o666 }', 0o022),
)

linuxOnly(asRootTest, 'symlink swaps under a running bind')(
  rootTitle(
    'bind with the default mode under umask 022, while nobody swaps the path for a symlink: the victim keeps its mode',
  ),
  (t) => bindAgainstSwapper(t, '{}', 0o022),
)

test('bind gives the socket file exactly the mode asked for, whatever the umask', async (t) => {
  const dir = tempDir()
  t.teardown(dir.remove)
  const r = await runNode(
    `
    const fs = require('node:fs')
    const out = []
    for (const [umask, mode] of [[0o022, 0o666], [0o077, 0o660], [0o777, 0o600], [0o000, 0o600], [0o022, 0o640]]) {
      process.umask(umask)
      const path = process.argv[2] + '/s' + out.length
      const s = ipckit.UnixDatagramSocket.bind(path, { mode })
      out.push(umask.toString(8) + ':' + (fs.statSync(path).mode & 0o777).toString(8))
      s.close()
      const q = ipckit.UnixSeqpacketServer.listen(path + 'q', { mode })
      out.push(umask.toString(8) + ':' + (fs.statSync(path + 'q').mode & 0o777).toString(8))
      q.close()
    }
    console.log(out.join(' '))`,
    [dir.path],
  )
  t.is(r.stdout.trim(), '22:666 22:666 77:660 77:660 777:600 777:600 0:600 0:600 22:640 22:640')
})

// ---------------------------------------------------------------------------------------------
// Descriptors a peer sends (SCM_RIGHTS)

/** Most descriptors one message may carry (`SCM_MAX_FD`). */
const SCM_MAX_FD = 253

/**
 * A hostile peer: connects (seqpacket) or sends (datagram) to `path`, then sends `count`
 * messages "flood N", each with SCM_MAX_FD descriptors (copies of /dev/null).
 */
const FD_FLOODER = `
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
int main(int argc, char **argv) {
  int seq = strcmp(argv[1], "seqpacket") == 0, count = atoi(argv[3]);
  int s = socket(AF_UNIX, seq ? SOCK_SEQPACKET : SOCK_DGRAM, 0);
  struct sockaddr_un a = { .sun_family = AF_UNIX };
  strncpy(a.sun_path, argv[2], sizeof a.sun_path - 1);
  if (connect(s, (struct sockaddr *)&a, sizeof a) != 0) { perror("connect"); return 1; }
  int null = open("/dev/null", O_RDONLY), fds[${SCM_MAX_FD}];
  for (int i = 0; i < ${SCM_MAX_FD}; i++) fds[i] = null;
  union { char buf[CMSG_SPACE(sizeof fds)]; struct cmsghdr align; } u;
  for (int i = 0; i < count; i++) {
    char text[32];
    int n = snprintf(text, sizeof text, "flood %d", i);
    struct iovec iov = { text, n };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf };
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof fds);
    memcpy(CMSG_DATA(c), fds, sizeof fds);
    if (sendmsg(s, &m, 0) != n) { perror("sendmsg"); return 1; }
  }
  printf("sent %d\\n", count);
  return 0;
}
`

for (const kind of ['dgram', 'seqpacket'] as const) {
  // Serial: the test compares this process's descriptors before and after.
  const declare =
    kind === 'seqpacket' ? linuxOnly(test.serial, 'macOS has no SOCK_SEQPACKET UNIX sockets') : test.serial
  declare(
    `a ${kind} server that did not ask for descriptors: a C peer sends 10 x ${SCM_MAX_FD}, none stays open`,
    async (t) => {
      const dir = tempDir()
      t.teardown(dir.remove)
      const path = join(dir.path, 'server.sock')
      const exe = compileC('fd-flooder', FD_FLOODER)
      let server: UnixDatagramSocket | UnixSeqpacketServer
      let conn: { receive(): Promise<{ data: Buffer; fds: number[]; fdsDropped: boolean } | null>; close(): void }
      let peer
      if (kind === 'dgram') {
        const sock = UnixDatagramSocket.bind(path)
        server = sock
        conn = sock
        peer = cChild(exe, [kind, path, '10'])
      } else {
        const listener = UnixSeqpacketServer.listen(path)
        server = listener
        peer = cChild(exe, [kind, path, '10'])
        conn = await listener.accept()
      }
      t.teardown(() => {
        conn.close()
        server.close()
      })
      t.false((conn as UnixDatagramSocket).acceptFds)
      // Everything is sent (queued in the kernel, descriptors in flight) before counting.
      const r = await peer.done
      t.is(r.code, 0, r.stderr)
      const before = fdSnapshot()
      const got: string[] = []
      for (let i = 0; i < 10; i++) {
        const m = (await conn.receive())!
        t.deepEqual([m.fds, m.fdsDropped], [[], true])
        got.push(m.data.toString())
      }
      t.deepEqual(
        got,
        [...Array(10).keys()].map((i) => `flood ${i}`),
      )
      // (With the usual settle time: a descriptor installed by mistake stays open, while one that
      // another test of this process has open for a moment, such as tsx's cache folder, goes.)
      t.deepEqual(await fdsLeftOpen(before), [])
    },
  )
}

linuxOnly(test, 'counts descriptors in /proc/self/fd')(
  `${SCM_MAX_FD} descriptors to a receiver with room for ~100: the ones that came are closed, and the message says so`,
  async (t) => {
    const [mine, theirs] = socketpair('seqpacket')
    t.teardown(() => mine.close())
    // The receiver: a Node child whose descriptor limit leaves room for about 100 more.
    const code = `process.argv.splice(1, 0, '[ipckit-child]');const ipckit = require(${JSON.stringify(SOURCE_ENTRY)});
    const fs = require('node:fs')
    const count = () => fs.readdirSync('/proc/self/fd').length
    const sock = ipckit.UnixSeqpacketSocket.fromFd(3, { acceptFds: true })
    ;(async () => {
      const before = count()
      console.log('ready ' + before)
      const msg = await sock.receive()
      const after = count()
      console.log(JSON.stringify({ before, after, data: msg.data.toString(), fds: msg.fds.length, dropped: msg.fdsDropped }))
      const second = await sock.receive()
      console.log(JSON.stringify({ fds: second.fds.length, dropped: second.fdsDropped, open: count() - after }))
      second.fds.forEach((fd) => fs.closeSync(fd))
      sock.close()
    })().catch((e) => { console.error(e); process.exit(1) })`
    const child = cChild(
      'sh',
      ['-c', 'ulimit -n 150 && exec "$0" "$@"', process.execPath, '--require', require.resolve('tsx/cjs'), '-e', code],
      { stdio: ['pipe', 'pipe', 'pipe', theirs.fd] },
    )
    theirs.close()
    const ready = await child.line(/^ready /)
    const room = 150 - Number(ready.split(' ')[1])
    t.true(room > 30 && room < SCM_MAX_FD, `room for ${room} descriptors`)
    const devNull = openSync('/dev/null', 'r')
    t.teardown(() => closeSync(devNull))
    await mine.send('too many', { fds: Array.from({ length: SCM_MAX_FD }, () => devNull) })
    await mine.send('a few', { fds: [devNull, devNull] })
    const r = await child.done
    t.is(r.code, 0, r.stderr)
    const [first, second] = r.stdout
      .trim()
      .split('\n')
      .slice(1)
      .map((l) => JSON.parse(l))
    t.like(first, { data: 'too many', fds: 0, dropped: true })
    // None of the descriptors that came is left open (the count may be lower: what the runtime
    // had open at the first look, e.g. a descriptor of its own start, may be closed by now).
    t.true(
      first.after <= first.before,
      `descriptors left open by a truncated message: ${first.before} -> ${first.after}`,
    )
    // The receiver is not stuck: the next message's descriptors come whole.
    t.deepEqual(second, { fds: 2, dropped: false, open: 2 })
  },
)

// ---------------------------------------------------------------------------------------------
// Empty seqpacket messages

/**
 * A seqpacket server in C: accepts one connection, sends "a", "" and "", then closes it (with
 * `wait`, after a line on stdin).
 */
const EMPTY_SENDER = `
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
int main(int argc, char **argv) {
  int s = socket(AF_UNIX, SOCK_SEQPACKET, 0);
  struct sockaddr_un a = { .sun_family = AF_UNIX };
  strncpy(a.sun_path, argv[1], sizeof a.sun_path - 1);
  if (bind(s, (struct sockaddr *)&a, sizeof a) != 0 || listen(s, 1) != 0) { perror("bind"); return 1; }
  printf("listening\\n");
  fflush(stdout);
  int c = accept(s, NULL, NULL);
  if (send(c, "a", 1, 0) != 1 || send(c, "", 0, 0) != 0 || send(c, "", 0, 0) != 0) { perror("send"); return 1; }
  printf("sent\\n");
  fflush(stdout);
  if (argc > 2) { char line[8]; if (!fgets(line, sizeof line, stdin)) return 1; }
  close(c);
  return 0;
}
`

const seqpacketTest = linuxOnly(test, 'macOS has no SOCK_SEQPACKET UNIX sockets')

seqpacketTest(
  'empty seqpacket messages from a C peer that then closes: with credentials, each is a message, then the end',
  async (t) => {
    const dir = tempDir()
    t.teardown(dir.remove)
    const path = join(dir.path, 'empty.sock')
    const peer = cChild(compileC('empty-sender', EMPTY_SENDER), [path])
    await peer.line(/^listening$/)
    const conn = UnixSeqpacketSocket.connect(path, { credentials: true })
    t.teardown(() => conn.close())
    const r = await peer.done
    t.is(r.code, 0, r.stderr)
    // The peer has closed: everything is queued, then the end.
    const got = []
    for (let i = 0; i < 4; i++) {
      const m = conn.receiveSync()
      got.push(m === null ? null : [m.data.toString(), m.credentials?.pid])
    }
    t.deepEqual(got, [['a', peer.pid], ['', peer.pid], ['', peer.pid], null])
  },
)

seqpacketTest(
  'empty seqpacket messages from a C peer still connected read as messages; the end comes when it closes',
  async (t) => {
    const dir = tempDir()
    t.teardown(dir.remove)
    const path = join(dir.path, 'empty.sock')
    const peer = cChild(compileC('empty-sender', EMPTY_SENDER), [path, 'wait'])
    await peer.line(/^listening$/)
    const conn = UnixSeqpacketSocket.connect(path)
    t.teardown(() => conn.close())
    await peer.line(/^sent$/)
    const got = []
    for (let i = 0; i < 3; i++) got.push((await conn.receive())?.data.toString())
    t.deepEqual(got, ['a', '', ''])
    peer.write('close')
    t.is(await conn.receive(), null)
    t.is((await peer.done).code, 0)
  },
)

seqpacketTest('ipckit refuses to send an empty seqpacket message, which the peer could take for the end', async (t) => {
  const [a, b] = socketpair('seqpacket')
  t.teardown(() => {
    a.close()
    b.close()
  })
  await t.throwsAsync(a.send(''), { code: 'ERR_INVALID_ARG_VALUE' })
  t.throws(() => a.sendSync(Buffer.alloc(0)), { code: 'ERR_INVALID_ARG_VALUE' })
  t.throws(() => a.sendSync(new Uint8Array(0), { fds: [0] }), { code: 'ERR_INVALID_ARG_VALUE' })
  a.close()
  // Nothing was sent: the peer sees the end at once.
  t.is(b.receiveSync({ wait: false }), null)
  // Datagrams have no end of stream: an empty one is a message.
  const [c, d] = socketpair('dgram')
  t.teardown(() => {
    c.close()
    d.close()
  })
  await c.send('')
  t.is(d.receiveSync().data.length, 0)
})

// ---------------------------------------------------------------------------------------------
// One rule for every timeout

/**
 * Every API that takes a timeout: `run(timeoutMs, blocked)` waits on something that is free
 * (`blocked` false) or that nobody will free (`blocked` true); it resolves `'ok'` or
 * `'timed-out'` (EAGAIN for semaphores, `'timed-out'` for futex waits), or rejects/throws.
 */
interface TimeoutCase {
  name: string
  /** Blocking forms can also be shown to wait without limit. */
  async: boolean
  run(timeoutMs: unknown, blocked: boolean, signal?: AbortSignal): Promise<string> | string
}

function timeoutCases(t: import('ava').ExecutionContext): TimeoutCase[] {
  const set = SemaphoreSet.create({ count: 2, initial: [0, 1] })
  const zero = Semaphore.open(IPC_PRIVATE, { initial: 0 })
  const one = Semaphore.open(IPC_PRIVATE, { initial: 1 })
  const keyed = SemaphoreSet.open(freshKey('sem'), { create: true, initial: [1] })
  const mutex = Mutex.open(IPC_PRIVATE)
  const held = Mutex.open(IPC_PRIVATE)
  const heldGuard = held.lockSync()
  const shm = SharedMemory.create({ size: 4096 })
  t.teardown(() => {
    heldGuard.unlock()
    for (const o of [set, zero, one, keyed, mutex, held, shm]) {
      o.remove()
      o.close()
    }
  })
  const timedOut = (e: unknown) => {
    if ((e as { code?: string }).code === 'EAGAIN') return 'timed-out'
    throw e
  }
  const settle = async (p: Promise<unknown>) => p.then(() => 'ok', timedOut)
  const sync = (f: () => unknown) => {
    try {
      f()
      return 'ok'
    } catch (e) {
      return timedOut(e)
    }
  }
  // `zero` (value 0) blocks an acquire and frees a waitForZero; `one` (value 1) the reverse.
  return [
    {
      name: 'SemaphoreSet.op',
      async: true,
      run: (ms, b, signal) =>
        settle(
          set
            .op([{ index: b ? 0 : 1, delta: -1 }], { timeoutMs: ms as number, signal })
            .then(() => set.op([{ index: 1, delta: 1 }])),
        ),
    },
    {
      name: 'SemaphoreSet.opSync',
      async: false,
      run: (ms, b) =>
        sync(() => {
          set.opSync([{ index: b ? 0 : 1, delta: -1 }], { timeoutMs: ms as number })
          set.opSync([{ index: 1, delta: 1 }])
        }),
    },
    {
      name: 'Semaphore.acquire',
      async: true,
      run: (ms, b, signal) =>
        settle((b ? zero : one).acquire({ timeoutMs: ms as number, signal }).then(() => one.release())),
    },
    {
      name: 'Semaphore.acquireSync',
      async: false,
      run: (ms, b) =>
        sync(() => {
          ;(b ? zero : one).acquireSync({ timeoutMs: ms as number })
          one.release()
        }),
    },
    {
      name: 'Semaphore.waitForZero',
      async: true,
      run: (ms, b, signal) => settle((b ? one : zero).waitForZero({ timeoutMs: ms as number, signal })),
    },
    {
      name: 'Semaphore.waitForZeroSync',
      async: false,
      run: (ms, b) => sync(() => (b ? one : zero).waitForZeroSync({ timeoutMs: ms as number })),
    },
    {
      name: 'Mutex.lock',
      async: true,
      run: (ms, b, signal) =>
        settle(
          (b ? held : mutex).lock({ timeoutMs: ms as number, signal }).then((g: { unlock(): void }) => g.unlock()),
        ),
    },
    {
      name: 'Mutex.lockSync',
      async: false,
      run: (ms, b) => sync(() => (b ? held : mutex).lockSync({ timeoutMs: ms as number }).unlock()),
    },
    {
      name: 'Mutex.withLock',
      async: true,
      run: (ms, b, signal) => settle((b ? held : mutex).withLock(() => 1, { timeoutMs: ms as number, signal })),
    },
    {
      name: 'SharedMemory.wait',
      async: true,
      run: async (ms, b, signal) => {
        const r = await shm.wait(0, b ? 0 : 1, { timeoutMs: ms as number, signal })
        return r === 'not-equal' ? 'ok' : r
      },
    },
    {
      name: 'SharedMemory.waitSync',
      async: false,
      run: (ms, b) => {
        const r = shm.waitSync(0, b ? 0 : 1, { timeoutMs: ms as number })
        return r === 'not-equal' ? 'ok' : r
      },
    },
    {
      name: 'SemaphoreSet.open initTimeoutMs',
      async: false,
      run: (ms) => sync(() => SemaphoreSet.open(keyed.key, { initTimeoutMs: ms as number }).close()),
    },
    {
      name: 'Semaphore.open initTimeoutMs',
      async: false,
      run: (ms) => sync(() => Semaphore.open(keyed.key, { initTimeoutMs: ms as number }).close()),
    },
    {
      name: 'Mutex.open initTimeoutMs',
      async: false,
      run: (ms) => sync(() => Mutex.open(keyed.key, { initTimeoutMs: ms as number }).close()),
    },
  ]
}

test('every timeout follows one rule: a number >= 0, fractions kept, Infinity for no limit, NaN and negatives refused', async (t) => {
  for (const c of timeoutCases(t)) {
    const outcome = async (ms: unknown, blocked: boolean) => {
      try {
        return await c.run(ms, blocked)
      } catch (e) {
        return (e as { code?: string }).code
      }
    }
    // Refused before any system call, the same way everywhere.
    t.is(await outcome(Number.NaN, false), 'ERR_OUT_OF_RANGE', `${c.name}: NaN`)
    t.is(await outcome(-1, false), 'ERR_OUT_OF_RANGE', `${c.name}: -1`)
    t.is(await outcome(-Infinity, false), 'ERR_OUT_OF_RANGE', `${c.name}: -Infinity`)
    t.is(await outcome('5', false), 'ERR_INVALID_ARG_TYPE', `${c.name}: '5'`)
    t.is(await outcome(null, false), 'ERR_INVALID_ARG_TYPE', `${c.name}: null`)
    // Accepted: no limit, fractions, and finite values too large for a deadline.
    for (const ms of [Infinity, 2.5, 0.001, 1e300, Number.MAX_VALUE, 0]) {
      t.is(await outcome(ms, false), 'ok', `${c.name}: ${ms}, free`)
    }
    if (c.name.includes('initTimeoutMs')) continue
    // A fraction is a real timeout: 2.5 ms is at least 2.5 ms.
    const start = process.hrtime.bigint()
    t.is(await outcome(2.5, true), 'timed-out', `${c.name}: 2.5, blocked`)
    t.true(Number(process.hrtime.bigint() - start) / 1e6 >= 2.4, `${c.name}: waited 2.5 ms`)
    t.is(await outcome(0, true), 'timed-out', `${c.name}: 0, blocked`)
    if (c.async) {
      // Infinity waits without limit: still pending after a while, until cancelled.
      const ac = new AbortController()
      let settled = false
      const p = Promise.resolve(c.run(Infinity, true, ac.signal)).finally(() => (settled = true))
      await sleep(30)
      t.false(settled, `${c.name}: Infinity is still waiting`)
      ac.abort()
      await t.throwsAsync(p, { name: 'AbortError' }, `${c.name}: cancelled`)
    }
  }
})

// ---------------------------------------------------------------------------------------------
// A Mutex whose holder died

const HOLDER = `
const m = ipckit.Mutex.open(Number(process.argv[2]))
const guard = m.lockSync()
console.log('locked ' + guard.previousOwnerDied)
process.stdin.on('data', (line) => {
  if (String(line).trim() === 'unlock') { guard.unlock(); console.log('unlocked') }
  if (String(line).trim() === 'exit') process.exit(0)
})`

test('a Mutex holder SIGKILLed: the next holder is told (previousOwnerDied), then no one after a clean unlock', async (t) => {
  const key = freshKey('sem')
  const mutex = Mutex.open(key, { create: true })
  t.teardown(() => {
    mutex.remove()
    mutex.close()
  })
  // A waiter already queued when the holder dies.
  const holder = nodeChild(HOLDER, [String(key)])
  t.teardown(() => holder.kill('SIGKILL'))
  t.is(await holder.line(/^locked/), 'locked false')
  const waiting = mutex.lock({ timeoutMs: 30_000 })
  await sleep(50)
  holder.kill('SIGKILL')
  t.is((await holder.done).signal, 'SIGKILL')
  const guard = await waiting
  t.true(guard.previousOwnerDied)
  guard.unlock()
  // Told once: after a clean unlock the next holder is not.
  const again = mutex.lockSync()
  t.false(again.previousOwnerDied)
  again.unlock()
  // A holder that unlocks and exits left nothing to report.
  const clean = nodeChild(HOLDER, [String(key)])
  t.is(await clean.line(/^locked/), 'locked false')
  clean.write('unlock')
  await clean.line(/^unlocked$/)
  clean.write('exit')
  t.is((await clean.done).code, 0)
  const third = mutex.tryLock()!
  t.false(third.previousOwnerDied)
  third.unlock()
  // Nobody waiting when the holder dies: tryLock and lockSync learn it, each form once.
  for (const take of [() => mutex.tryLock()!, () => mutex.lockSync({ wait: false }), () => mutex.lockSync()]) {
    const victim = nodeChild(HOLDER, [String(key)])
    t.is(await victim.line(/^locked/), 'locked false')
    victim.kill('SIGKILL')
    await victim.done
    const g = take()
    t.true(g.previousOwnerDied)
    g.unlock()
    t.false(mutex.locked)
  }
  // And another process that locks after a death sees it too.
  const dying = nodeChild(HOLDER, [String(key)])
  await dying.line(/^locked/)
  dying.kill('SIGKILL')
  await dying.done
  const next = nodeChild(HOLDER, [String(key)])
  t.teardown(() => next.kill('SIGKILL'))
  t.is(await next.line(/^locked/), 'locked true')
  next.write('unlock')
  await next.line(/^unlocked$/)
  next.write('exit')
  await next.done
})

/** A mutex of one semaphore, as a C program makes one (value 1, SEM_UNDO), held until stdin closes. */
const ONE_SEMAPHORE_MUTEX = `
#include <stdio.h>
#include <stdlib.h>
#include <sys/sem.h>
int main(int argc, char **argv) {
  int id = semget((key_t)strtoul(argv[1], NULL, 0), 1, IPC_CREAT | 0600);
  if (id < 0 || semctl(id, 0, SETVAL, 1) < 0) { perror("semget"); return 1; }
  struct sembuf take = { 0, -1, SEM_UNDO };
  if (semop(id, &take, 1) < 0) { perror("semop"); return 1; }
  printf("locked %d\\n", id);
  fflush(stdout);
  getchar();
  return 0;
}
`

test("a Mutex over another program's one-semaphore set still excludes, without the report", async (t) => {
  const key = freshKey('sem')
  const peer = cChild(compileC('one-semaphore-mutex', ONE_SEMAPHORE_MUTEX), [String(key)])
  t.teardown(() => peer.kill('SIGKILL'))
  await peer.line(/^locked /)
  const mutex = Mutex.open(key)
  t.teardown(() => {
    mutex.remove()
    mutex.close()
  })
  t.true(mutex.locked)
  t.is(mutex.tryLock(), null)
  const waiting = mutex.lock({ timeoutMs: 30_000 })
  peer.kill('SIGKILL')
  const guard = await waiting
  t.false(guard.previousOwnerDied)
  guard.unlock()
  t.false(mutex.locked)
})

// ---------------------------------------------------------------------------------------------
// Worker threads blocked in ...Sync calls, terminated or ended by process.exit()

/**
 * A child that starts one Worker per blocking sync call, each blocked in it, then either
 * terminates them all (`terminate`: prints how long each took, or which are still pending
 * after 20 s) or calls `process.exit(0)` (`exit`). Objects are removed by the test, after: a
 * removal would wake the waiters itself.
 */
const BLOCKED_WORKERS = `
const { Worker } = require('node:worker_threads')
const fs = require('node:fs')
const [mode, dir, ...keys] = process.argv.slice(2)
const [qKey, fullKey, setKey, mutexKey, shmKey] = keys.map(Number)
const q = ipckit.MessageQueue.open(qKey, { create: true })
const full = ipckit.MessageQueue.open(fullKey, { create: true })
full.update({ maxBytes: 64 })
while (true) { try { full.sendSync(Buffer.alloc(32), { wait: false }) } catch (e) { if (e.code === 'EAGAIN') break; throw e } }
const set = ipckit.SemaphoreSet.open(setKey, { create: true, count: 2, initial: [0, 1] })
const mutex = ipckit.Mutex.open(mutexKey, { create: true })
const held = mutex.lockSync()
const shm = ipckit.SharedMemory.open(shmKey, { create: true, size: 4096 })
const [seqMine, seqTheirs] = ipckit.socketpair('seqpacket')
const [dgMine, dgTheirs] = ipckit.socketpair('dgram')
const [fullMine, fullTheirs] = ipckit.socketpair('seqpacket')
while (true) { try { fullTheirs.sendSync(Buffer.alloc(4096), { wait: false }) } catch (e) { if (e.code === 'EAGAIN') break; throw e } }
const sink = ipckit.UnixDatagramSocket.bind({ abstract: 'ipckit-test-sink-' + process.pid })
const sender = ipckit.UnixDatagramSocket.create()
while (true) { try { sender.sendSync(Buffer.alloc(4096), { to: { abstract: 'ipckit-test-sink-' + process.pid }, wait: false }) } catch (e) { if (e.code === 'EAGAIN') break; throw e } }
ipckit.mkfifo(dir + '/r.fifo')
ipckit.mkfifo(dir + '/w.fifo')
const cases = {
  'socket receiveSync (seqpacket)': 'ipckit.UnixSeqpacketSocket.fromFd(d.seq).receiveSync()',
  'socket receiveSync (dgram)': 'ipckit.UnixDatagramSocket.fromFd(d.dgram).receiveSync()',
  'socket sendSync (seqpacket, full)': 'ipckit.UnixSeqpacketSocket.fromFd(d.full).sendSync("x")',
  'socket sendSync (dgram to a full address)': 'ipckit.UnixDatagramSocket.fromFd(d.sender).sendSync("x", { to: { abstract: d.sink } })',
  'queue receiveSync': 'ipckit.MessageQueue.fromId(d.q).receiveSync()',
  'queue sendSync (full)': 'ipckit.MessageQueue.fromId(d.fullq).sendSync(Buffer.alloc(32))',
  'SemaphoreSet.opSync': 'ipckit.SemaphoreSet.fromId(d.set).opSync([{ index: 0, delta: -1 }])',
  'Semaphore.acquireSync': 'ipckit.Semaphore.open(d.setKey).acquireSync()',
  'Semaphore.waitForZeroSync': 'ipckit.SemaphoreSet.fromId(d.set).opSync([{ index: 1, delta: 0 }])',
  'Mutex.lockSync': 'ipckit.Mutex.open(d.mutexKey).lockSync()',
  'SharedMemory.waitSync': 'ipckit.SharedMemory.fromId(d.shm).waitSync(0, 0)',
  'openFifoSync (r)': 'ipckit.openFifoSync(d.dir + "/r.fifo", "r")',
  'openFifoSync (w)': 'ipckit.openFifoSync(d.dir + "/w.fifo", "w")',
}
const data = { seq: seqTheirs.fd, dgram: dgTheirs.fd, full: fullTheirs.fd, sender: sender.fd, sink: 'ipckit-test-sink-' + process.pid,
  q: q.id, fullq: full.id, set: set.id, setKey: set.key, mutexKey: mutex.key, shm: shm.id, dir }
const workers = Object.entries(cases).map(([name, call]) => {
  const w = new Worker(
    'const { workerData: d, parentPort } = require("node:worker_threads"); require(' + JSON.stringify(process.env.IPCKIT_TS_REGISTER) + ');' +
    'const ipckit = require(' + JSON.stringify(process.env.IPCKIT_ENTRY) + ');' +
    'parentPort.postMessage("blocking"); ' + call + '; parentPort.postMessage("returned")',
    { eval: true, workerData: data })
  w.name = name
  w.on('error', (e) => { console.log('error in ' + name + ': ' + e.stack); process.exit(1) })
  return w
})
Promise.all(workers.map((w) => new Promise((resolve) => w.on('message', (m) => {
  if (m === 'returned') { console.log('returned by itself: ' + w.name); process.exit(1) }
  resolve()
})))).then(() => setTimeout(async () => {
  console.log('blocked ' + workers.length)
  if (mode === 'exit') process.exit(0)
  const pending = new Set(workers.map((w) => w.name))
  const watchdog = setTimeout(() => { console.log('still pending: ' + [...pending].join(', ')); process.exit(2) }, 20000)
  await Promise.all(workers.map((w) => w.terminate().then(() => pending.delete(w.name))))
  clearTimeout(watchdog)
  // Nothing was taken by the terminated receives.
  seqMine.sendSync('after'); dgMine.sendSync('after'); q.sendSync('after')
  const got = [ipckit.UnixSeqpacketSocket.fromFd(seqTheirs.fd).receiveSync({ wait: false }), ipckit.UnixDatagramSocket.fromFd(dgTheirs.fd).receiveSync({ wait: false }), q.receiveSync({ wait: false })]
  console.log('terminated ' + workers.length + ', then ' + got.map((m) => m.data.toString()).join(' '))
  held.unlock()
  process.exit(0)
}, 300))
`

for (const mode of ['terminate', 'exit'] as const) {
  linuxOnly(test, 'seqpacket sockets and futex waits are Linux-only')(
    mode === 'terminate'
      ? 'worker.terminate() ends a Worker blocked in each blocking ...Sync call, and nothing is taken'
      : 'process.exit(0) returns while Workers are blocked in each blocking ...Sync call',
    async (t) => {
      const dir = tempDir()
      t.teardown(dir.remove)
      const keys = [freshKey('msg'), freshKey('msg'), freshKey('sem'), freshKey('sem'), freshKey('shm')]
      t.teardown(() => {
        const opens = [MessageQueue.open, MessageQueue.open, SemaphoreSet.open, SemaphoreSet.open, SharedMemory.open]
        keys.forEach((key, i) => {
          try {
            const o = opens[i]!(key)
            o.remove()
            o.close()
          } catch {
            // the child did not get as far
          }
        })
      })
      const r = await nodeChild(BLOCKED_WORKERS, [mode, dir.path, ...keys.map(String)], {
        timeoutMs: 60_000,
        env: { ...process.env, IPCKIT_TS_REGISTER: require.resolve('tsx/cjs'), IPCKIT_ENTRY: SOURCE_ENTRY },
      }).done
      t.is(r.signal, null, `the child hung and was killed: ${r.stdout}${r.stderr}`)
      t.is(r.code, 0, `${r.stdout}${r.stderr}`)
      const lines = r.stdout.trim().split('\n')
      t.is(lines[0], 'blocked 13')
      if (mode === 'terminate') t.is(lines[1], 'terminated 13, then after after after')
    },
  )
}

// ---------------------------------------------------------------------------------------------
// A received payload's memory

/**
 * Checks that `mine` (received first) exposes nothing of `theirs` (another process's message,
 * received after it) through its memory, and that writing through that memory leaves `theirs`
 * intact.
 */
function isolated(t: import('ava').ExecutionContext, mine: Buffer, theirs: Buffer, secret: string, what: string) {
  const memory = mine.buffer as ArrayBuffer
  t.is(memory.byteLength, mine.length, `${what}: the memory holds that payload only`)
  t.false(
    Buffer.from(memory).toString('latin1').includes('secret'),
    `${what}: another sender's secret is not reachable`,
  )
  new Uint8Array(memory).fill(0x58)
  t.is(theirs.toString(), secret, `${what}: writing through it changes no other message`)
}

for (const size of [16, 200, 5000]) {
  const secret = `secret of another sender, ${size} bytes `.padEnd(size, '*')
  const mine = 'm'.repeat(size)

  test(`a queue payload's .buffer holds that payload only (${size} bytes)`, async (t) => {
    const q = MessageQueue.open(IPC_PRIVATE)
    t.teardown(() => {
      q.remove()
      q.close()
    })
    q.sendSync(mine)
    await runNode(`ipckit.MessageQueue.fromId(Number(process.argv[2])).sendSync(process.argv[3])`, [
      String(q.id),
      secret,
    ])
    const first = q.receiveSync().data
    const second = (await q.receive()).data
    t.is(first.toString(), mine)
    isolated(t, first, second, secret, 'queue')
  })

  test(`a datagram payload's .buffer holds that payload only (${size} bytes)`, async (t) => {
    const dir = tempDir()
    t.teardown(dir.remove)
    const path = join(dir.path, 's.sock')
    const server = UnixDatagramSocket.bind(path)
    t.teardown(() => server.close())
    const me = UnixDatagramSocket.create()
    t.teardown(() => me.close())
    me.sendSync(mine, { to: path })
    await runNode(`ipckit.UnixDatagramSocket.create().sendSync(process.argv[3], { to: process.argv[2] })`, [
      path,
      secret,
    ])
    const first = server.receiveSync().data
    const second = (await server.receive()).data
    t.is(first.toString(), mine)
    isolated(t, first, second, secret, 'datagram')
  })

  linuxOnly(test, 'macOS has no SOCK_SEQPACKET UNIX sockets')(
    `a seqpacket payload's .buffer holds that payload only (${size} bytes)`,
    async (t) => {
      const dir = tempDir()
      t.teardown(dir.remove)
      const path = join(dir.path, 'q.sock')
      const server = UnixSeqpacketServer.listen(path)
      t.teardown(() => server.close())
      const client = UnixSeqpacketSocket.connect(path)
      t.teardown(() => client.close())
      const conn = await server.accept()
      t.teardown(() => conn.close())
      const other = nodeChild(
        `const c = ipckit.UnixSeqpacketSocket.connect(process.argv[2]); c.sendSync(process.argv[3]); console.log('sent'); c.receiveSync()`,
        [path, secret],
      )
      t.teardown(() => other.kill())
      const otherConn = await server.accept()
      t.teardown(() => otherConn.close())
      client.sendSync(mine)
      await other.line(/^sent$/)
      // Both arrive on this thread, through the same receive path, mine first.
      const first = conn.receiveSync()!.data
      const second = otherConn.receiveSync()!.data
      t.is(first.toString(), mine)
      isolated(t, first, second, secret, 'seqpacket')
    },
  )
}
