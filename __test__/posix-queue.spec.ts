/**
 * POSIX message queues: values, waits and their cancellation, C programs and Python's
 * `posix_ipc` on the same queue, the system's limits (in private IPC namespaces, as an
 * unprivileged user), permissions, worker threads, the listing (in a private mount namespace
 * with the mqueue file system mounted) and its CLI.
 */
import anyTest, { type ExecutionContext } from 'ava'
import { spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Worker } from 'node:worker_threads'

import { AbortError, IpcError, PosixMessageQueue, listPosixQueues, posixQueueLimits, watchSignals } from '../ts/index'
import {
  NOBODY,
  ROOT,
  SOURCE_ENTRY,
  cChild,
  compileC,
  fdsLeftOpen,
  fdSnapshot,
  linuxOnly,
  notLinux,
  readmeSnippet,
  removeBuilds,
  runC,
  runNode,
  sleep,
  tempDir,
  timed,
} from './helpers'

/** POSIX message queues exist on Linux only: macOS throws ENOSYS (tested below). */
const test = linuxOnly(anyTest, 'POSIX message queues: macOS has none (ENOSYS, tested by notLinux)')

anyTest.after.always(removeBuilds)

const TSX_CJS = require.resolve('tsx/cjs')
let counter = 0
/** A queue name unique to this test process, unlinked when the test ends. */
function qname(t: ExecutionContext): string {
  const name = `/ipckit-test-${process.pid}-${++counter}`
  t.teardown(() => {
    try {
      PosixMessageQueue.unlink(name)
    } catch {
      // removed by the test
    }
  })
  return name
}

/** A new queue (exclusive), closed and unlinked when the test ends. */
function createQueue(t: ExecutionContext, options: { maxMessages?: number; messageSize?: number } = {}) {
  const name = qname(t)
  const q = PosixMessageQueue.open(name, { exclusive: true, maxMessages: 8, messageSize: 256, ...options })
  t.teardown(() => q.close())
  return q
}

/** Sends `name prio hex prio hex ...` (hex '-' is empty), through mq_open(O_WRONLY) and mq_send. */
const C_SENDER = `
#include <fcntl.h>
#include <mqueue.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
static int hex(char c) { return c <= '9' ? c - '0' : (c | 32) - 'a' + 10; }
int main(int argc, char **argv) {
  mqd_t q = mq_open(argv[1], O_WRONLY);
  if (q == (mqd_t)-1) { perror("mq_open"); return 1; }
  static char buf[1 << 16];
  for (int i = 2; i + 1 < argc; i += 2) {
    unsigned prio = (unsigned)atoi(argv[i]);
    const char *h = argv[i + 1];
    size_t n = strcmp(h, "-") == 0 ? 0 : strlen(h) / 2;
    for (size_t j = 0; j < n; j++) buf[j] = (char)(hex(h[2 * j]) << 4 | hex(h[2 * j + 1]));
    if (mq_send(q, buf, n, prio) != 0) { perror("mq_send"); return 1; }
  }
  return 0;
}
`

/** Receives `count` messages of queue `name` (mq_receive, blocking), printing `prio hex` each. */
const C_RECEIVER = `
#include <fcntl.h>
#include <mqueue.h>
#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv) {
  mqd_t q = mq_open(argv[1], O_RDONLY);
  if (q == (mqd_t)-1) { perror("mq_open"); return 1; }
  struct mq_attr a;
  mq_getattr(q, &a);
  char *buf = malloc((size_t)a.mq_msgsize);
  for (int i = 0; i < atoi(argv[2]); i++) {
    unsigned prio;
    ssize_t n = mq_receive(q, buf, (size_t)a.mq_msgsize, &prio);
    if (n < 0) { perror("mq_receive"); return 1; }
    printf("%u ", prio);
    for (ssize_t j = 0; j < n; j++) printf("%02x", (unsigned char)buf[j]);
    printf(n == 0 ? "-\\n" : "\\n");
    fflush(stdout);
  }
  return 0;
}
`

const hexOf = (b: Buffer) => (b.length === 0 ? '-' : b.toString('hex'))

/**
 * Runs a command to its end without blocking the event loop (a spawnSync would stall the
 * concurrent tests of this file, whose timers then fire late): `{ status, stdout, stderr }`.
 */
async function run(
  command: string,
  args: string[],
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const r = await cChild(command, args, { cwd: ROOT }).done
  return { status: r.code, stdout: r.stdout, stderr: r.stderr }
}

test('messages come out highest priority first, oldest first within one, byte for byte (sync and async)', async (t) => {
  const q = createQueue(t)
  const sent: Array<[string, number]> = [
    ['a', 0],
    ['b', 7],
    ['c', 3],
    ['d', 7],
    ['e', 32767],
    ['', 3],
  ]
  for (const [i, [data, priority]] of sent.entries()) {
    if (i % 2 === 0) q.sendSync(data, { priority })
    else await q.send(Buffer.from(data), { priority })
  }
  t.is(q.stat().messages, 6)
  const want = [
    ['e', 32767],
    ['b', 7],
    ['d', 7],
    ['c', 3],
    ['', 3],
    ['a', 0],
  ]
  const got: Array<[string, number]> = []
  for (let i = 0; i < want.length; i++) {
    const m = i % 2 === 0 ? await q.receive() : q.receiveSync()
    t.true(Buffer.isBuffer(m.data))
    got.push([m.data.toString(), m.priority])
  }
  t.deepEqual(got, want)
  t.is(q.stat().messages, 0)
})

test('stat, attributes and update report the values the queue has', (t) => {
  const q = createQueue(t, { maxMessages: 5, messageSize: 100 })
  t.is(q.maxMessages, 5)
  t.is(q.messageSize, 100)
  q.sendSync('xyz')
  q.update({ mode: 0o640 })
  const s = q.stat()
  t.deepEqual(s, {
    messages: 1,
    maxMessages: 5,
    messageSize: 100,
    nonBlocking: false,
    mode: 0o640,
    uid: process.getuid!(),
    gid: process.getgid!(),
  })
  // Another handle on an existing queue keeps its attributes, whatever it asks for.
  const other = PosixMessageQueue.open(q.name, { create: true, maxMessages: 2, messageSize: 10, access: 'read' })
  t.teardown(() => other.close())
  t.is(other.maxMessages, 5)
  t.is(other.messageSize, 100)
  t.is(other.receiveSync().data.toString(), 'xyz')
  // A read-only handle cannot send: the kernel's EBADF, before anything is queued.
  t.like(
    t.throws(() => other.sendSync('no')),
    { code: 'EBADF', syscall: 'mq_send' },
  )
  t.is(q.stat().messages, 0)
})

test('wait: false and full or empty queues give EAGAIN; EMSGSIZE names the sizes', async (t) => {
  const q = createQueue(t, { maxMessages: 2, messageSize: 16 })
  t.like(
    t.throws(() => q.receiveSync({ wait: false }), { instanceOf: IpcError }),
    { code: 'EAGAIN', errno: -11, syscall: 'mq_receive' },
  )
  q.sendSync('1', { wait: false })
  q.sendSync('2', { wait: false })
  t.like(
    t.throws(() => q.sendSync('3', { wait: false })),
    { code: 'EAGAIN', syscall: 'mq_send' },
  )
  t.is(q.stat().messages, 2)
  const big = t.throws(() => q.sendSync(Buffer.alloc(17)), { instanceOf: IpcError })
  t.like(big, { code: 'EMSGSIZE', syscall: 'mq_send' })
  t.regex(big!.message, /17 bytes; the queue's messageSize is 16/)
  await t.throwsAsync(q.send(Buffer.alloc(100)), { code: 'EMSGSIZE' })
  t.is(q.stat().messages, 2)
})

test.serial('timeouts: ETIMEDOUT near the deadline, sync and async, send and receive; 0 answers at once', async (t) => {
  const q = createQueue(t, { maxMessages: 1, messageSize: 16 })
  const empty = await timed(() => q.receive({ timeoutMs: 80 }).catch((e: unknown) => e))
  t.like(empty.value, { code: 'ETIMEDOUT', syscall: 'mq_timedreceive' })
  t.true(empty.ms >= 79 && empty.ms < 5000, `${empty.ms} ms`)
  const start = performance.now()
  t.like(
    t.throws(() => q.receiveSync({ timeoutMs: 80 })),
    { code: 'ETIMEDOUT', syscall: 'mq_timedreceive' },
  )
  const took = performance.now() - start
  t.true(took >= 79 && took < 5000, `${took} ms`)
  t.like(await q.receive({ timeoutMs: 0 }).catch((e: unknown) => e), { code: 'ETIMEDOUT' })
  q.sendSync('full')
  const full = await timed(() => q.send('more', { timeoutMs: 80 }).catch((e: unknown) => e))
  t.like(full.value, { code: 'ETIMEDOUT', syscall: 'mq_timedsend' })
  t.true(full.ms >= 79 && full.ms < 5000, `${full.ms} ms`)
  t.like(
    t.throws(() => q.sendSync('more', { timeoutMs: 30 })),
    { code: 'ETIMEDOUT', syscall: 'mq_timedsend' },
  )
  // A message that is there is taken even with a zero timeout; a timed wait that gets one in
  // time returns it.
  t.is((await q.receive({ timeoutMs: 0 })).data.toString(), 'full')
  setTimeout(() => q.sendSync('in time', { priority: 4 }), 30)
  t.deepEqual(await q.receive({ timeoutMs: 5000 }), { data: Buffer.from('in time'), priority: 4 })
})

test('non-blocking mode: sync calls throw EAGAIN unless they ask to wait; setNonBlocking switches it', async (t) => {
  const name = qname(t)
  const q = PosixMessageQueue.open(name, { create: true, nonBlocking: true, maxMessages: 2, messageSize: 16 })
  t.teardown(() => q.close())
  t.true(q.stat().nonBlocking)
  t.like(
    t.throws(() => q.receiveSync()),
    { code: 'EAGAIN', syscall: 'mq_receive' },
  )
  // Asked to wait, it waits (on a non-blocking descriptor: poll, then receive) for a C program
  // that sends a moment later.
  const sender = cChild('sh', [
    '-c',
    'sleep 0.05; exec "$0" "$@"',
    compileC('mq-send', C_SENDER),
    name,
    '2',
    '6c617465',
  ])
  const late = q.receiveSync({ wait: true, timeoutMs: 5000 })
  t.deepEqual(late, { data: Buffer.from('late'), priority: 2 })
  t.is((await sender.done).code, 0)
  t.like(
    t.throws(() => q.receiveSync({ wait: true, timeoutMs: 30 })),
    { code: 'ETIMEDOUT', syscall: 'mq_timedreceive' },
  )
  // The async forms wait either way.
  setTimeout(() => q.sendSync('async'), 30)
  t.is((await q.receive()).data.toString(), 'async')
  t.true(q.setNonBlocking(false))
  t.false(q.stat().nonBlocking)
  t.like(
    t.throws(() => q.receiveSync({ timeoutMs: 20 })),
    { code: 'ETIMEDOUT' },
  )
})

test('bad arguments throw TypeError/RangeError before any system call (no queue is created)', async (t) => {
  const name = qname(t)
  const bad: Array<[() => unknown, string]> = [
    [() => PosixMessageQueue.open(42 as never, { create: true }), 'ERR_INVALID_ARG_TYPE'],
    [() => PosixMessageQueue.open('no-slash', { create: true }), 'ERR_INVALID_ARG_VALUE'],
    [() => PosixMessageQueue.open('/', { create: true }), 'ERR_INVALID_ARG_VALUE'],
    [() => PosixMessageQueue.open('/a/b', { create: true }), 'ERR_INVALID_ARG_VALUE'],
    [() => PosixMessageQueue.open('//a', { create: true }), 'ERR_INVALID_ARG_VALUE'],
    [() => PosixMessageQueue.open('/..', { create: true }), 'ERR_INVALID_ARG_VALUE'],
    [() => PosixMessageQueue.open('/a\0b', { create: true }), 'ERR_INVALID_ARG_VALUE'],
    [() => PosixMessageQueue.open(`/${'x'.repeat(256)}`, { create: true }), 'ERR_INVALID_ARG_VALUE'],
    // 128 two-byte characters: 256 bytes of UTF-8.
    [() => PosixMessageQueue.open(`/${'é'.repeat(128)}`, { create: true }), 'ERR_INVALID_ARG_VALUE'],
    [() => PosixMessageQueue.open(name, { create: 'yes' as never }), 'ERR_INVALID_ARG_TYPE'],
    [() => PosixMessageQueue.open(name, { create: true, mode: 0o1000 }), 'ERR_OUT_OF_RANGE'],
    [() => PosixMessageQueue.open(name, { create: true, access: 'append' as never }), 'ERR_INVALID_ARG_VALUE'],
    [() => PosixMessageQueue.open(name, { create: true, maxMessages: 0 }), 'ERR_OUT_OF_RANGE'],
    [() => PosixMessageQueue.open(name, { create: true, maxMessages: 1.5 }), 'ERR_OUT_OF_RANGE'],
    [() => PosixMessageQueue.open(name, { create: true, messageSize: -1 }), 'ERR_OUT_OF_RANGE'],
    [() => PosixMessageQueue.open(name, { create: true, nonBlocking: 1 as never }), 'ERR_INVALID_ARG_TYPE'],
    [() => PosixMessageQueue.open(name, 'opts' as never), 'ERR_INVALID_ARG_TYPE'],
    [() => PosixMessageQueue.unlink('bad'), 'ERR_INVALID_ARG_VALUE'],
  ]
  for (const [fn, code] of bad) t.like(t.throws(fn), { code }, String(fn))
  t.like(
    t.throws(() => PosixMessageQueue.open(name)),
    { code: 'ENOENT' },
    'nothing was created',
  )
  // The longest name is 255 bytes after the slash.
  const longest = `/${'n'.repeat(255)}`
  const q = PosixMessageQueue.open(longest, { exclusive: true })
  q.close()
  PosixMessageQueue.unlink(longest)

  const r = createQueue(t)
  for (const [fn, code] of [
    [() => r.sendSync(42 as never), 'ERR_INVALID_ARG_TYPE'],
    [() => r.sendSync('x', { priority: 32768 }), 'ERR_OUT_OF_RANGE'],
    [() => r.sendSync('x', { priority: -1 }), 'ERR_OUT_OF_RANGE'],
    [() => r.sendSync('x', { timeoutMs: -1 }), 'ERR_OUT_OF_RANGE'],
    [() => r.receiveSync({ timeoutMs: Number.NaN }), 'ERR_OUT_OF_RANGE'],
    [() => r.receiveSync({ timeoutMs: '1' as never }), 'ERR_INVALID_ARG_TYPE'],
    [() => r.receiveSync({ wait: 0 as never }), 'ERR_INVALID_ARG_TYPE'],
    [() => r.notify({ signal: 'SIGNOPE' }), 'ERR_UNKNOWN_SIGNAL'],
    [() => r.notify({ signal: 'SIGKILL' }), 'ERR_INVALID_ARG_VALUE'],
    [() => r.notify({ signal: 'SIGUSR2', value: 2 ** 31 }), 'ERR_OUT_OF_RANGE'],
    [() => r.update({ mode: 0o7777 }), 'ERR_OUT_OF_RANGE'],
  ] as Array<[() => unknown, string]>) {
    t.like(t.throws(fn), { code }, String(fn))
  }
  await t.throwsAsync(r.send('x', { priority: 1e6 }), { code: 'ERR_OUT_OF_RANGE' })
  await t.throwsAsync(r.receive({ signal: 'x' as never }), { code: 'ERR_INVALID_ARG_TYPE' })
  t.is(r.stat().messages, 0)
})

test('a receive waits for a C program that sends later, and C receives what Node sends, priorities included', async (t) => {
  const q = createQueue(t, { messageSize: 300 })
  const payloads = [
    Buffer.alloc(0),
    Buffer.from([0, 0xff, 0x80]),
    Buffer.from(Array.from({ length: 300 }, (_, i) => i & 0xff)),
  ]
  const pending = q.receive()
  const sender = compileC('mq-send', C_SENDER)
  await sleep(20)
  await runC(sender, [q.name, '9', hexOf(payloads[1]!)])
  t.deepEqual(await pending, { data: payloads[1]!, priority: 9 })
  // Several at once: C sends them in one order, ipckit takes them in priority order.
  await runC(sender, [q.name, '1', hexOf(payloads[0]!), '5', hexOf(payloads[2]!), '5', hexOf(payloads[1]!)])
  t.deepEqual(await q.receive(), { data: payloads[2]!, priority: 5 })
  t.deepEqual(q.receiveSync(), { data: payloads[1]!, priority: 5 })
  t.deepEqual(await q.receive(), { data: payloads[0]!, priority: 1 })
  // And the other way.
  const receiver = cChild(compileC('mq-receive', C_RECEIVER), [q.name, '3'])
  await q.send(payloads[2]!, { priority: 3 })
  q.sendSync(payloads[0]!, { priority: 0 })
  await q.send(payloads[1]!, { priority: 32767 })
  const r = await receiver.done
  t.is(r.code, 0, r.stderr)
  const lines = r.stdout.trim().split('\n')
  // The receiver may take the first message before the others are queued: each arrives once.
  t.deepEqual([...lines].sort(), [`3 ${hexOf(payloads[2]!)}`, `0 -`, `32767 ${hexOf(payloads[1]!)}`].sort())
})

/** Python with `posix_ipc` importable, or the reason it is not. */
function pythonWith(module: string): { ok: true } | { ok: false; reason: string } {
  const r = spawnSync('python3', ['-c', `import ${module}`], { encoding: 'utf8' })
  if (r.error) return { ok: false, reason: `python3 is not installed (${r.error.message})` }
  if (r.status !== 0)
    return { ok: false, reason: `python3 cannot import ${module} (pip install ${module}; .ci/run installs it)` }
  return { ok: true }
}
const POSIX_IPC = pythonWith('posix_ipc')
const pyTest = POSIX_IPC.ok ? test : test.skip
const pyTitle = (title: string) => (POSIX_IPC.ok ? title : `${title} [skipped: ${POSIX_IPC.reason}]`)

pyTest(pyTitle("Python's posix_ipc and ipckit share a queue by name: priorities and bytes both ways"), async (t) => {
  const q = createQueue(t, { maxMessages: 8, messageSize: 64 })
  const script = `
import posix_ipc, sys
q = posix_ipc.MessageQueue(sys.argv[1])
got = [q.receive() for _ in range(2)]
q.send(b'\\x00py-low', priority=1)
q.send(b'py-high\\xff', priority=20)
print(' '.join('%d:%s' % (p, m.hex()) for m, p in got))
print(q.max_messages, q.max_message_size)
`
  q.sendSync('node-a', { priority: 2 })
  q.sendSync('node-b', { priority: 30 })
  const r = await run('python3', ['-c', script, q.name])
  t.is(r.status, 0, r.stderr)
  const [taken, attrs] = r.stdout.trim().split('\n')
  t.is(taken, `30:${Buffer.from('node-b').toString('hex')} 2:${Buffer.from('node-a').toString('hex')}`)
  t.is(attrs, '8 64')
  t.deepEqual(await q.receive(), { data: Buffer.from('py-high\xff', 'latin1'), priority: 20 })
  t.deepEqual(q.receiveSync(), { data: Buffer.from('\x00py-low', 'latin1'), priority: 1 })
})

linuxOnly(test.serial, 'watchSignals of SIGUSR2 with the sender pid: Linux siginfo')(
  'notify sends the registered signal with its value when a C program sends to the empty queue',
  async (t) => {
    const q = createQueue(t)
    const watch = watchSignals('SIGUSR2')
    t.teardown(() => watch.close())
    q.notify({ signal: 'SIGUSR2', value: 4242 })
    // Only one process at a time: a second registration is refused.
    t.like(
      t.throws(() => q.notify({ signal: 'SIGUSR2' })),
      { code: 'EBUSY', syscall: 'mq_notify' },
    )
    const child = cChild(compileC('mq-send', C_SENDER), [q.name, '6', '6869'])
    const r = await child.done
    t.is(r.code, 0, r.stderr)
    const next = await watch.next()
    t.false(next.done)
    const s = next.value!
    t.is(s.name, 'SIGUSR2')
    t.is(s.value, 4242)
    t.is(s.pid, child.pid)
    t.is(s.code, -3, 'si_code SI_MESGQ')
    t.deepEqual(q.receiveSync(), { data: Buffer.from('hi'), priority: 6 })
    // The notification used the registration up: registering again works, and null removes it.
    q.notify({ signal: 'SIGUSR2', value: 1 })
    q.notify(null)
    q.notify({ signal: 'SIGUSR2', value: 2 })
    q.notify(null)
  },
)

test('an aborted receive takes nothing; one that races its abort is delivered or left in the queue, never lost', async (t) => {
  const q = createQueue(t, { maxMessages: 4, messageSize: 16 })
  const ac = new AbortController()
  const p = q.receive({ signal: ac.signal })
  ac.abort(new Error('stop'))
  const err = await t.throwsAsync(p, { instanceOf: AbortError })
  t.is((err!.cause as Error).message, 'stop')
  q.sendSync('kept')
  t.is(q.stat().messages, 1)
  t.is(q.receiveSync().data.toString(), 'kept')
  await t.throwsAsync(q.receive({ signal: AbortSignal.abort() }), { instanceOf: AbortError })

  const sender = PosixMessageQueue.open(q.name, { access: 'write' })
  t.teardown(() => sender.close())
  const delivered: number[] = []
  const left: number[] = []
  for (let i = 0; i < 300; i++) {
    const ac = new AbortController()
    const p = q.receive({ signal: ac.signal })
    const aborted = new Promise<void>((resolve) =>
      setImmediate(() => {
        sender.sendSync(String(i))
        if (i % 3 !== 0) {
          ac.abort()
          resolve()
        } else {
          setImmediate(() => (ac.abort(), resolve()))
        }
      }),
    )
    try {
      delivered.push(Number((await p).data.toString()))
    } catch (e) {
      t.true(e instanceof AbortError)
    }
    await aborted
    // What the receive did not take is still queued.
    if (q.stat().messages > 0) left.push(Number(q.receiveSync({ wait: false }).data.toString()))
  }
  t.is(q.stat().messages, 0)
  t.deepEqual(
    [...delivered, ...left].sort((a, b) => a - b),
    Array.from({ length: 300 }, (_, i) => i),
  )
})

test('close() ends pending waits with AbortError (cause ERR_INVALID_STATE), takes nothing, and is final', async (t) => {
  const q = createQueue(t, { maxMessages: 1, messageSize: 16 })
  const other = PosixMessageQueue.open(q.name)
  t.teardown(() => other.close())
  const receiving = q.receive()
  other.sendSync('fill')
  const first = await receiving
  t.is(first.data.toString(), 'fill')
  const pendingReceive = q.receive()
  const pendingIterator = q.messages().next()
  q.close()
  for (const p of [pendingReceive, pendingIterator]) {
    const err = await t.throwsAsync(p, { instanceOf: AbortError })
    t.is((err!.cause as { code?: string }).code, 'ERR_INVALID_STATE')
  }
  other.sendSync('after close')
  t.is(other.stat().messages, 1, 'the closed handle took nothing')
  // A pending send ends the same way, and sends nothing.
  const s = PosixMessageQueue.open(q.name)
  const sending = s.send('no room')
  s.close()
  await t.throwsAsync(sending, { instanceOf: AbortError })
  t.is(other.receiveSync().data.toString(), 'after close')
  t.is(other.stat().messages, 0)
  q.close()
  t.true(q.closed)
  for (const fn of [() => q.receiveSync(), () => q.sendSync('x'), () => q.stat(), () => q.fd, () => q.remove()]) {
    t.like(t.throws(fn), { code: 'ERR_INVALID_STATE' })
  }
  await t.throwsAsync(q.receive(), { code: 'ERR_INVALID_STATE' })
})

test('the async iterator hands out every message once; break and return() take nothing more', async (t) => {
  const q = createQueue(t, { maxMessages: 8, messageSize: 16 })
  for (const [i, p] of [3, 1, 2].entries()) q.sendSync(`m${i}`, { priority: p })
  const seen: string[] = []
  for await (const m of q) {
    seen.push(`${m.data}:${m.priority}`)
    break
  }
  t.deepEqual(seen, ['m0:3'])
  t.is(q.stat().messages, 2, 'break took nothing more')
  const it = q.messages()
  t.deepEqual(await it.next(), { done: false, value: { data: Buffer.from('m2'), priority: 2 } })
  t.deepEqual(await it.next(), { done: false, value: { data: Buffer.from('m1'), priority: 1 } })
  const waiting = it.next()
  await sleep(10)
  await it.return!()
  t.deepEqual(await waiting, { done: true, value: undefined })
  q.sendSync('stays')
  await sleep(20)
  t.is(q.stat().messages, 1, 'the ended iteration took nothing')
  // Messages from another process arrive in the loop as they are sent.
  const ac = new AbortController()
  const got: string[] = []
  const loop = (async () => {
    for await (const m of q.messages({ signal: ac.signal })) {
      got.push(m.data.toString())
      if (got.length === 4) ac.abort()
    }
  })()
  await runC(compileC('mq-send', C_SENDER), [q.name, '0', '61', '0', '62', '0', '63'])
  await t.throwsAsync(loop, { instanceOf: AbortError })
  t.deepEqual(got, ['stays', 'a', 'b', 'c'])
})

test('a worker thread receives and sends on its own pool while the main thread does', async (t) => {
  const q = createQueue(t, { maxMessages: 8, messageSize: 64 })
  const back = createQueue(t, { maxMessages: 8, messageSize: 64 })
  const n = 100
  const code = `
    const { parentPort, workerData } = require('node:worker_threads')
    require(workerData.tsx)
    const { PosixMessageQueue } = require(workerData.entry)
    const q = PosixMessageQueue.open(workerData.q, { access: 'read' })
    const back = PosixMessageQueue.open(workerData.back, { access: 'write' })
    ;(async () => {
      for (let i = 0; i < workerData.n; i++) {
        const m = await q.receive()
        await back.send(m.data.toString().toUpperCase(), { priority: m.priority })
      }
      q.close(); back.close()
      parentPort.postMessage('done')
    })()
  `
  const worker = new Worker(code, {
    eval: true,
    workerData: { entry: SOURCE_ENTRY, tsx: TSX_CJS, q: q.name, back: back.name, n },
  })
  t.teardown(() => worker.terminate())
  const finished = new Promise((resolve, reject) => (worker.once('message', resolve), worker.once('error', reject)))
  const answers: string[] = []
  const reading = (async () => {
    for await (const m of back) {
      answers.push(`${m.data}:${m.priority}`)
      if (answers.length === n) break
    }
  })()
  for (let i = 0; i < n; i++) await q.send(`msg-${i}`, { priority: i % 5 })
  await reading
  t.is(await finished, 'done')
  t.deepEqual([...answers].sort(), Array.from({ length: n }, (_, i) => `MSG-${i}:${i % 5}`).sort())
})

test('permissions: nobody may not open a 0o600 queue; with 0o604 it may receive but not send', async (t) => {
  const q = createQueue(t)
  const child = (mode: string) =>
    runNode(
      `try {
         const q = ipckit.PosixMessageQueue.open(process.argv[2], { access: process.argv[3] })
         console.log(process.argv[3] === 'read' ? q.receiveSync({ wait: false }).data.toString() : 'opened')
       } catch (e) { console.log(e.code + ' ' + e.syscall) }`,
      [q.name, mode],
      { uid: NOBODY.uid, gid: NOBODY.gid },
    )
  t.is((await child('read')).stdout.trim(), 'EACCES mq_open')
  q.update({ mode: 0o604 })
  q.sendSync('for anyone')
  t.is((await child('read')).stdout.trim(), 'for anyone')
  t.is((await child('write')).stdout.trim(), 'EACCES mq_open')
  t.is(q.stat().messages, 0)
})

/** Runs `code` (with `ipckit` loaded) in a child in a new IPC namespace whose mqueue limits are
 *  set by `sysctl` first, as nobody (no CAP_SYS_RESOURCE), and returns its stdout. */
async function inIpcNamespace(
  t: ExecutionContext,
  sysctl: Record<string, number>,
  code: string,
): Promise<string | undefined> {
  const writes = Object.entries(sysctl)
    .map(([k, v]) => `echo ${v} > /proc/sys/fs/mqueue/${k}`)
    .join(' && ')
  const prelude = `const ipckit = require(${JSON.stringify(SOURCE_ENTRY)});`
  const r = await run('unshare', [
    '--ipc',
    'sh',
    '-c',
    `${writes} && exec setpriv --reuid=${NOBODY.uid >>> 0} --regid=${NOBODY.gid >>> 0} --clear-groups "$0" --require "$1" -e "$2"`,
    process.execPath,
    TSX_CJS,
    prelude + code,
  ])
  if (r.status !== 0) {
    t.fail(`the child in a new IPC namespace failed (${r.status}): ${r.stderr}`)
    return undefined
  }
  return r.stdout
}

test('limits: ENOSPC past queues_max, EINVAL past msg_max and msgsize_max, each named in the message', async (t) => {
  const out = await inIpcNamespace(
    t,
    { queues_max: 2, msg_max: 4, msgsize_max: 256 },
    `const { PosixMessageQueue, posixQueueLimits } = ipckit
     const r = { limits: posixQueueLimits() }
     const tryOpen = (name, o) => { try { PosixMessageQueue.open(name, { create: true, ...o }).close(); return 'ok' } catch (e) { return e.code + ' ' + e.syscall + ' | ' + e.message } }
     r.a = tryOpen('/a', { maxMessages: 4, messageSize: 256 })
     r.b = tryOpen('/b', { maxMessages: 1, messageSize: 1 })
     r.c = tryOpen('/c', { maxMessages: 1, messageSize: 1 })
     PosixMessageQueue.unlink('/b')
     r.many = tryOpen('/c', { maxMessages: 5, messageSize: 8 })
     r.big = tryOpen('/c', { maxMessages: 1, messageSize: 257 })
     console.log(JSON.stringify(r))`,
  )
  if (out === undefined) return
  const r = JSON.parse(out)
  t.like(r.limits, { queuesMax: 2, msgMax: 4, msgsizeMax: 256 })
  t.is(r.a, 'ok')
  t.is(r.b, 'ok')
  t.regex(
    r.c,
    /^ENOSPC mq_open \| ENOSPC: no space left on device, mq_open '\/c' \(the system already holds queues_max 2 queues \(\/proc\/sys\/fs\/mqueue\/queues_max\)\)$/,
  )
  t.regex(
    r.many,
    /^EINVAL mq_open \| .*'\/c' \(maxMessages 5 is above the system's msg_max 4 \(\/proc\/sys\/fs\/mqueue\/msg_max/,
  )
  t.regex(
    r.big,
    /^EINVAL mq_open \| .*'\/c' \(messageSize 257 is above the system's msgsize_max 256 \(\/proc\/sys\/fs\/mqueue\/msgsize_max/,
  )
})

test('limits: RLIMIT_MSGQUEUE (ulimit -q) gives EMFILE, and the message names it with the bytes the queue takes', async (t) => {
  const r = await run('prlimit', [
    '--msgqueue=4096:4096',
    process.execPath,
    '--require',
    TSX_CJS,
    '-e',
    `const { PosixMessageQueue, posixQueueLimits } = require(${JSON.stringify(SOURCE_ENTRY)})
       try { PosixMessageQueue.open(process.argv[1], { exclusive: true, maxMessages: 1, messageSize: 8192 }); console.log('created') }
       catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message, rlimit: posixQueueLimits().rlimitMsgqueue })) }`,
    qname(t),
  ])
  t.is(r.status, 0, r.stderr)
  const out = JSON.parse(r.stdout)
  t.is(out.code, 'EMFILE')
  t.is(out.rlimit, 4096)
  t.regex(out.message, /RLIMIT_MSGQUEUE \(4096 bytes, ulimit -q\): this queue takes 8\d{3} bytes/)
})

test('messages larger than the pool (a raised msgsize_max) go through their own buffer, sync and async', async (t) => {
  const out = await inIpcNamespace(
    t,
    { msgsize_max: 1 << 20 },
    `const { PosixMessageQueue } = ipckit
     const q = PosixMessageQueue.open('/big', { create: true, maxMessages: 2, messageSize: 200000 })
     const a = Buffer.alloc(150000); for (let i = 0; i < a.length; i++) a[i] = (i * 7) & 0xff
     const b = Buffer.alloc(199999, 0x5a)
     ;(async () => {
       q.sendSync(a, { priority: 1 })
       await q.send(b, { priority: 2 })
       const first = await q.receive()
       const second = q.receiveSync()
       setTimeout(() => q.sendSync(a.subarray(0, 70000), { priority: 3 }), 20)
       const third = await q.receive()
       console.log(JSON.stringify([
         first.priority, first.data.equals(b),
         second.priority, second.data.equals(a),
         third.priority, third.data.equals(a.subarray(0, 70000)),
       ]))
     })()`,
  )
  if (out === undefined) return
  t.deepEqual(JSON.parse(out), [2, true, 1, true, 3, true])
})

/** Runs `code` in a child in a new mount namespace where the mqueue file system is mounted at a
 *  fresh folder (`mount: true`), or where none is mounted (`mount: false`). */
async function inMountNamespace(t: ExecutionContext, mount: boolean, code: string, args: string[] = []) {
  const dir = tempDir('ipckit-mqueue-')
  t.teardown(() => dir.remove())
  const setup = mount ? 'mount -t mqueue none "$0"' : 'umount -a -t mqueue 2>/dev/null; true'
  const script = 'node="$1" tsx="$2" code="$3" && shift 3 && exec "$node" --require "$tsx" -e "$code" -- "$@"'
  // As in a script, the child's own arguments start at process.argv[2].
  const prelude = `process.argv.splice(1, 0, '[child]');const ipckit = require(${JSON.stringify(SOURCE_ENTRY)});`
  const r = await run('unshare', [
    '--mount',
    '--propagation',
    'private',
    'sh',
    '-c',
    `${setup} && ${script}`,
    dir.path,
    process.execPath,
    TSX_CJS,
    prelude + code,
    ...args,
  ])
  if (r.status !== 0) {
    t.fail(`the child in a new mount namespace failed (${r.status}): ${r.stderr}`)
    return undefined
  }
  return { stdout: r.stdout, dir: dir.path }
}

test('listPosixQueues and `ipckit mq` show queues as /dev/mqueue does: bytes, notification, owner, mode, attributes', async (t) => {
  const q = createQueue(t, { maxMessages: 3, messageSize: 100 })
  q.sendSync('hello', { priority: 1 })
  q.sendSync('world!!', { priority: 2 })
  q.update({ mode: 0o640 })
  const watched = createQueue(t, { maxMessages: 2, messageSize: 10 })
  const cli = JSON.stringify(join(ROOT, 'ts', 'cli.ts'))
  const out = await inMountNamespace(
    t,
    true,
    `const [name, watchedName] = process.argv.slice(2)
     const { listPosixQueues, PosixMessageQueue } = ipckit
     const w = PosixMessageQueue.open(watchedName, { access: 'read' })
     w.notify({ signal: 'SIGUSR2', value: 1 })
     const find = (list, n) => list.find((e) => e.name === n)
     const all = listPosixQueues()
     let text = ''
     const code = require(${cli}).main(['mq'], { out: (s) => (text += s), err: (s) => (text += s) })
     let json = ''
     require(${cli}).main(['mq', '--json'], { out: (s) => (json += s), err: () => {} })
     // The listing left the registration alone.
     let stillRegistered
     try { w.notify({ signal: 'SIGUSR2' }); stillRegistered = false } catch (e) { stillRegistered = e.code === 'EBUSY' }
     console.log(JSON.stringify({
       mine: find(all, name), watched: find(all, watchedName), pid: process.pid, stillRegistered,
       sorted: all.map((e) => e.name).join() === all.map((e) => e.name).sort().join(),
       code, text, json: [find(JSON.parse(json), name), find(JSON.parse(json), watchedName)],
     }))`,
    [q.name, watched.name],
  )
  if (out === undefined) return
  const r = JSON.parse(out.stdout)
  const owner = { uid: process.getuid!(), gid: process.getgid!(), owner: 'root', ownerGroup: 'root' }
  t.deepEqual(r.mine, {
    name: q.name,
    bytes: 12,
    notify: null,
    signo: 0,
    notifyPid: 0,
    ...owner,
    mode: 0o640,
    messages: 2,
    maxMessages: 3,
    messageSize: 100,
  })
  t.deepEqual(r.watched, {
    name: watched.name,
    // Not read (that would cancel the registration): listed from the registration.
    bytes: null,
    notify: 'signal',
    signo: 12,
    notifyPid: r.pid,
    ...owner,
    mode: 0o600,
    messages: null,
    maxMessages: null,
    messageSize: null,
  })
  t.true(r.stillRegistered)
  t.true(r.sorted)
  t.is(r.code, 0)
  t.deepEqual(r.json, [r.mine, r.watched])
  const lines = (r.text as string).split('\n')
  t.is(lines[1], '------ POSIX Message Queues --------')
  t.regex(lines[2]!, /^name\s+owner\s+perms\s+used-bytes\s+messages\s+max-msgs\s+msg-size\s+notify-pid$/)
  const row = (n: string) =>
    lines
      .find((l) => l.startsWith(`${n} `))
      ?.trim()
      .split(/\s+/)
  t.deepEqual(row(q.name), [q.name, 'root', '640', '12', '2', '3', '100', '0'])
  t.deepEqual(row(watched.name), [watched.name, 'root', '600', '-', '-', '-', '-', String(r.pid)])
})

test('without the mqueue file system, listPosixQueues throws ENOENT saying how to mount it, and the CLI exits 1', async (t) => {
  const out = await inMountNamespace(
    t,
    false,
    `let r = {}
     try { ipckit.listPosixQueues() } catch (e) { r = { name: e.name, code: e.code, syscall: e.syscall, message: e.message } }
     let err = ''
     r.exit = require(${JSON.stringify(join(ROOT, 'ts', 'cli.ts'))}).main(['mq'], { out: () => {}, err: (s) => (err += s) })
     r.err = err
     console.log(JSON.stringify(r))`,
  )
  if (out === undefined) return
  const r = JSON.parse(out.stdout)
  t.like(r, { name: 'IpcError', code: 'ENOENT', syscall: 'opendir', exit: 1 })
  t.regex(r.message, /mount -t mqueue none \/dev\/mqueue/)
  t.regex(r.err, /^ipckit mq: ENOENT: .*mount -t mqueue/)
})

test('`ipckit mq --unlink` removes queues and reports a missing one; --limits prints /proc/sys/fs/mqueue', async (t) => {
  const a = createQueue(t)
  const cli = (...args: string[]) =>
    run(process.execPath, ['--require', TSX_CJS, join(ROOT, 'ts', 'cli.ts'), 'mq', ...args])
  const r = await cli('--unlink', a.name, '-u', '/ipckit-no-such-queue')
  t.is(r.status, 1)
  t.is(r.stderr, "ipckit mq: ENOENT: no such file or directory, mq_unlink '/ipckit-no-such-queue'\n")
  t.like(
    t.throws(() => PosixMessageQueue.open(a.name)),
    { code: 'ENOENT' },
  )
  const l = await cli('--limits', '--json')
  t.is(l.status, 0, l.stderr)
  t.deepEqual(JSON.parse(l.stdout), posixQueueLimits())
  const text = await cli('-l')
  t.regex(text.stdout, new RegExp(`max messages per queue = ${posixQueueLimits().msgMax}\\n`))
  const bad = await cli('--bogus')
  t.is(bad.status, 1)
  t.regex(bad.stderr, /unrecognized option '--bogus'/)
})

test.serial('opening and closing many queues leaves no descriptor behind', async (t) => {
  const before = fdSnapshot()
  const name = qname(t)
  for (let i = 0; i < 200; i++) {
    const q = PosixMessageQueue.open(name, { create: true, maxMessages: 2, messageSize: 16 })
    q.sendSync('x')
    await q.receive()
    const pending = q.receive()
    q.close()
    await pending.catch(() => {})
  }
  t.deepEqual(await fdsLeftOpen(before), [])
})

notLinux(anyTest)('on macOS, POSIX message queues throw ENOSYS naming the platform', (t) => {
  const err = t.throws(() => PosixMessageQueue.open('/jobs', { create: true }), { instanceOf: IpcError })
  t.like(err, { code: 'ENOSYS', syscall: 'mq_open' })
  t.regex(err!.message, /POSIX message queues do not exist on macOS/)
  t.like(
    t.throws(() => listPosixQueues()),
    { code: 'ENOSYS' },
  )
  t.like(
    t.throws(() => PosixMessageQueue.unlink('/jobs')),
    { code: 'ENOSYS' },
  )
})

test("the README's POSIX message queue snippet runs and prints what its comments say", async (t) => {
  const name = qname(t)
  const dir = tempDir('ipckit-readme-')
  t.teardown(() => dir.remove())
  const file = join(dir.path, 'snippet.mts')
  writeFileSync(file, readmeSnippet('posix-queue', [["'/jobs'", `'${name}'`]]))
  // listPosixQueues needs the mqueue file system: mounted in a private mount namespace.
  const r = await run('unshare', [
    '--mount',
    '--propagation',
    'private',
    'sh',
    '-c',
    'mkdir "$0/mqueue" && mount -t mqueue none "$0/mqueue" && exec "$1" --import tsx "$2"',
    dir.path,
    process.execPath,
    file,
  ])
  t.is(r.status, 0, r.stderr)
  t.deepEqual(r.stdout.trim().split('\n'), [
    'urgent 9',
    '2',
    'later',
    'one more',
    'ETIMEDOUT',
    'true',
    String(posixQueueLimits().msgMax),
  ])
  t.like(
    t.throws(() => PosixMessageQueue.open(name)),
    { code: 'ENOENT' },
    'the snippet removed its queue',
  )
})
