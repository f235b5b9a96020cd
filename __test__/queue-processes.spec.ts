/**
 * Message queues between real processes: C programs (interoperability), Node children
 * (producers/consumers, an unprivileged user), and the async model seen from outside
 * (threadpool, process lifetime).
 */
import test, { type ExecutionContext } from 'ava'
import { promises as fsp, readFileSync, readdirSync } from 'node:fs'

import { IpcError, MessageQueue, ftok, ipcs, type MessageQueueEntry } from '../ts/index'
import {
  compileC,
  linuxOnly,
  NOBODY,
  nodeChild,
  removeAtEnd,
  removeBuilds,
  runC,
  runNode,
  sleep,
  tempDir,
  waitUntilBlocked,
  PATIENCE_MS,
} from './helpers'
import { needs, perl } from './helpers/foreign'

test.after.always(removeBuilds)

const track = (t: ExecutionContext, q: MessageQueue) => removeAtEnd(t, q, MessageQueue.fromId)

/** Sends argv's messages: `id type hexpayload ...` (payload '-' is empty). */
const C_SENDER = `
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/msg.h>
struct big { long mtype; unsigned char mtext[65536]; };
static int hex(char c) { return c <= '9' ? c - '0' : (c | 32) - 'a' + 10; }
int main(int argc, char **argv) {
  int id = atoi(argv[1]);
  static struct big m;
  for (int i = 2; i + 1 < argc; i += 2) {
    m.mtype = atol(argv[i]);
    const char *h = argv[i + 1];
    size_t n = strcmp(h, "-") == 0 ? 0 : strlen(h) / 2;
    for (size_t j = 0; j < n; j++) m.mtext[j] = (unsigned char)(hex(h[2 * j]) << 4 | hex(h[2 * j + 1]));
    if (msgsnd(id, &m, n, 0) != 0) { perror("msgsnd"); return 1; }
  }
  return 0;
}
`

/** Opens the queue by ftok(path, proj) and receives `count` messages of `type` (msgrcv's rules),
 *  printing `type hexpayload` per message. */
const C_RECEIVER = `
#include <stdio.h>
#include <stdlib.h>
#include <sys/msg.h>
struct big { long mtype; unsigned char mtext[65536]; };
int main(int argc, char **argv) {
  key_t key = ftok(argv[1], atoi(argv[2]));
  int id = msgget(key, 0);
  if (id < 0) { perror("msgget"); return 1; }
  long type = atol(argv[3]);
  int count = atoi(argv[4]);
  static struct big m;
  for (int i = 0; i < count; i++) {
    ssize_t n = msgrcv(id, &m, sizeof m.mtext, type, 0);
    if (n < 0) { perror("msgrcv"); return 1; }
    printf("%ld ", m.mtype);
    for (ssize_t j = 0; j < n; j++) printf("%02x", m.mtext[j]);
    printf("\\n");
  }
  return 0;
}
`

const msgmax = () => Number(readFileSync('/proc/sys/kernel/msgmax', 'utf8'))

linuxOnly(test, 'one message is msgmax bytes, read from /proc/sys/kernel/msgmax')(
  'a C program sends typed messages that Node receives byte for byte',
  async (t) => {
    const q = track(t, MessageQueue.create())
    const payloads = [
      Buffer.alloc(0),
      Buffer.from([0]),
      Buffer.from([0xff, 0x00, 0x7f, 0x80]),
      Buffer.from(Array.from({ length: 256 }, (_, i) => i)),
      Buffer.alloc(msgmax(), 0xa5),
    ]
    q.update({
      maxBytes: Math.max(
        q.stat().maxBytes,
        payloads.reduce((n, p) => n + p.length, 0),
      ),
    })
    const args = payloads.flatMap((p, i) => [String(i + 1), p.length === 0 ? '-' : p.toString('hex')])
    await runC(compileC('msg-send', C_SENDER), [String(q.id), ...args])
    for (const [i, p] of payloads.entries()) {
      const m = i % 2 === 0 ? await q.receive() : q.receiveSync()
      t.is(m.type, i + 1)
      t.true(m.data.equals(p), `message ${i + 1}`)
    }
    t.is(q.stat().messages, 0)
  },
)

test('Node sends to a C program that finds the queue through ftok and picks by type', async (t) => {
  const dir = tempDir()
  t.teardown(dir.remove)
  const q = track(t, MessageQueue.open(ftok(dir.path, 0x42), { create: true, exclusive: true }))
  await q.send(Buffer.from([1, 2, 3]), { type: 3 })
  q.sendSync('text', { type: 9 })
  await q.send(Buffer.from([0xde, 0xad, 0xbe, 0xef]), { type: 1 })
  q.sendSync(Buffer.alloc(0), { type: 2 })
  // type -5 takes the lowest type <= 5 first: 1, 2, then 3; type 9 is left.
  const { stdout } = await runC(compileC('msg-recv', C_RECEIVER), [dir.path, '66', '-5', '3'])
  t.deepEqual(stdout.trim().split('\n'), ['1 deadbeef', '2 ', '3 010203'])
  const left = q.receiveSync({ wait: false })
  t.deepEqual(left, { type: 9, data: Buffer.from('text') })
})

test('a C receiver already blocked in msgrcv gets what an async Node send delivers', async (t) => {
  const dir = tempDir()
  t.teardown(dir.remove)
  const q = track(t, MessageQueue.open(ftok(dir.path, 1), { create: true }))
  const receiving = runC(compileC('msg-recv', C_RECEIVER), [dir.path, '1', '7', '1'])
  await sleep(50)
  await q.send(Buffer.from('late'), { type: 7 })
  t.is((await receiving).stdout, `7 ${Buffer.from('late').toString('hex')}\n`)
})

/** A producer child: sends `count` messages `producer:seq:hash` of varying length, async. */
const PRODUCER = `
const { createHash } = require('node:crypto')
const [id, producer, count] = process.argv.slice(2).map(Number)
const q = ipckit.MessageQueue.fromId(id)
;(async () => {
  for (let seq = 0; seq < count; seq++) {
    const body = Buffer.alloc(8 + ((producer * 31 + seq) % 120), seq & 0xff)
    body.writeUInt32LE(producer, 0)
    body.writeUInt32LE(seq, 4)
    const sum = createHash('sha1').update(body).digest().subarray(0, 8)
    const msg = Buffer.concat([body, sum])
    if (seq % 2) await q.send(msg, { type: 1 + (seq % 3) })
    else q.sendSync(msg, { type: 1 + (seq % 3) })
  }
  q.close()
})()
`

/** A consumer child: takes data messages (types 1..3) until a stop message (type 9); checks each
 *  checksum and prints the ids it took as JSON. */
const CONSUMER = `
const { createHash } = require('node:crypto')
const [id] = process.argv.slice(2).map(Number)
const q = ipckit.MessageQueue.fromId(id)
;(async () => {
  const taken = []
  let bad = 0
  for await (const { type, data } of q.messages({ type: -9 })) {
    if (type === 9) break
    const body = data.subarray(0, data.length - 8)
    const sum = createHash('sha1').update(body).digest().subarray(0, 8)
    if (!sum.equals(data.subarray(data.length - 8))) bad++
    taken.push(body.readUInt32LE(0) * 1e6 + body.readUInt32LE(4))
  }
  q.close()
  console.log(JSON.stringify({ taken, bad }))
})()
`

test('4 producer and 4 consumer processes pass 40,000 messages, each received exactly once', async (t) => {
  const PRODUCERS = 4
  const CONSUMERS = 4
  const PER_PRODUCER = 10_000
  const q = track(t, MessageQueue.create())
  const timeoutMs = 110_000
  const consumers = Array.from({ length: CONSUMERS }, () => nodeChild(CONSUMER, [String(q.id)], { timeoutMs }))
  const producers = Array.from({ length: PRODUCERS }, (_, p) =>
    nodeChild(PRODUCER, [String(q.id), String(p), String(PER_PRODUCER)], { timeoutMs }),
  )
  for (const p of producers) {
    const r = await p.done
    t.is(r.code, 0, r.stderr)
  }
  // Stop messages have type 9: consumers take types <= 9 lowest first, so data always goes first.
  for (let i = 0; i < CONSUMERS; i++) q.sendSync('stop', { type: 9 })
  const seen = new Map<number, number>()
  let bad = 0
  for (const c of consumers) {
    const r = await c.done
    t.is(r.code, 0, r.stderr)
    const out = JSON.parse(r.stdout) as { taken: number[]; bad: number }
    bad += out.bad
    for (const id of out.taken) seen.set(id, (seen.get(id) ?? 0) + 1)
  }
  t.is(bad, 0, 'checksum mismatches')
  t.is(seen.size, PRODUCERS * PER_PRODUCER)
  const duplicated = [...seen.values()].filter((n) => n !== 1).length
  t.is(duplicated, 0)
  for (let p = 0; p < PRODUCERS; p++) {
    for (let s = 0; s < PER_PRODUCER; s++) {
      if (!seen.has(p * 1e6 + s)) return t.fail(`message ${p}:${s} lost`)
    }
  }
  t.is(q.stat().messages, 0)
})

test('an unprivileged process gets EACCES on a 0600 queue and access on a 0666 one', async (t) => {
  const closed = track(t, MessageQueue.create({ mode: 0o600 }))
  const open = track(t, MessageQueue.create({ mode: 0o666 }))
  closed.sendSync('secret')
  const code = `
    const [closedId, openId] = process.argv.slice(2).map(Number)
    const out = {}
    try { ipckit.MessageQueue.fromId(closedId); out.closed = 'opened' } catch (e) { out.closed = [e.code, e.errno, e.syscall, e instanceof ipckit.IpcError] }
    const q = ipckit.MessageQueue.fromId(openId)
    q.sendSync('from nobody', { type: 4 })
    out.uid = process.getuid()
    out.pid = process.pid
    console.log(JSON.stringify(out))
  `
  const r = await runNode(code, [String(closed.id), String(open.id)], { uid: NOBODY.uid, gid: NOBODY.gid })
  const out = JSON.parse(r.stdout)
  t.is(out.uid, NOBODY.uid >>> 0)
  t.deepEqual(out.closed, ['EACCES', -13, 'msgctl', true])
  t.deepEqual(open.receiveSync({ wait: false }), { type: 4, data: Buffer.from('from nobody') })
  t.is(open.stat().lastSendPid, out.pid)
  t.is(closed.stat().messages, 1)
})

test('an unprivileged process opening a 0600 queue by key gets EACCES from msgget', async (t) => {
  const q = track(t, MessageQueue.open(ftok(__filename, 0x99), { create: true, mode: 0o600 }))
  const code = `
    try { ipckit.MessageQueue.open(Number(process.argv[2])); console.log('opened') }
    catch (e) { console.log(JSON.stringify([e.code, e.errno, e.syscall, e.message])) }
  `
  const r = await runNode(code, [String(q.key)], { uid: NOBODY.uid, gid: NOBODY.gid })
  t.deepEqual(JSON.parse(r.stdout), ['EACCES', -13, 'msgget', 'EACCES: permission denied, msgget'])
})

test('16 pending receives park no libuv threadpool thread: fs.promises.readFile completes at once', async (t) => {
  const queues = Array.from({ length: 16 }, () => track(t, MessageQueue.create()))
  const waits = queues.map((q) =>
    q.receive().then(
      () => 'took',
      (e: Error) => e.name,
    ),
  )
  await sleep(20)
  // The threadpool has 4 threads by default: if the receives used it, these reads would hang.
  const value = await Promise.race([
    Promise.all(Array.from({ length: 8 }, () => fsp.readFile(__filename, 'utf8'))),
    sleep(PATIENCE_MS).then(() => null),
  ])
  t.not(value, null, 'readFile did not complete while receives were pending')
  t.deepEqual(value, Array(8).fill(readFileSync(__filename, 'utf8')), 'fs read the whole file meanwhile')
  for (const q of queues) q.close()
  t.deepEqual(await Promise.all(waits), Array(16).fill('AbortError'))
})

test('a pending receive keeps its process alive until a message arrives', async (t) => {
  const q = track(t, MessageQueue.create())
  const child = nodeChild(
    `
    const q = ipckit.MessageQueue.fromId(Number(process.argv[2]))
    console.log('waiting')
    q.receive().then((m) => console.log('got ' + m.data))
  `,
    [String(q.id)],
  )
  await child.line(/waiting/)
  await sleep(200)
  q.sendSync('wake up')
  const r = await child.done
  t.is(r.code, 0, r.stderr)
  t.regex(r.stdout, /got wake up/)
})

test('pending waits do not keep the process alive after close()', async (t) => {
  const q = track(t, MessageQueue.create())
  q.update({ maxBytes: 1 })
  q.sendSync('x')
  // The child starts three waits that can never complete, then closes the queue: it must exit
  // by itself (the helper kills it after 10 s, which would fail the test).
  const r = await runNode(
    `
    const q = ipckit.MessageQueue.fromId(Number(process.argv[2]))
    q.receive({ type: 5 }).catch((e) => console.log('receive: ' + e.name))
    q.send('y').catch((e) => console.log('send: ' + e.name))
    ;(async () => {
      for await (const m of q.messages({ type: 6 })) console.log('never', m)
    })().catch((e) => console.log('iterator: ' + e.name))
    setTimeout(() => q.close(), 100)
  `,
    [String(q.id)],
    { timeoutMs: 10_000 },
  )
  t.deepEqual(r.stdout.trim().split('\n').sort(), ['iterator: AbortError', 'receive: AbortError', 'send: AbortError'])
  // Nothing was taken or added by the cancelled waits.
  t.is(q.stat().messages, 1)
  t.is(q.receiveSync({ wait: false }).data.toString(), 'x')
})

linuxOnly(test, 'waitUntilBlocked reads /proc/<pid>/task/*/wchan')(
  'a receiver in another process blocked when the queue is removed fails with EIDRM',
  async (t) => {
    const q = track(t, MessageQueue.create())
    const child = nodeChild(
      `
    const q = ipckit.MessageQueue.fromId(Number(process.argv[2]))
    console.log('waiting')
    q.receive().catch((e) => console.log(JSON.stringify([e.code, e.errno, e.syscall, e instanceof ipckit.IpcError])))
  `,
      [String(q.id)],
    )
    await child.line(/waiting/)
    await waitUntilBlocked(child.pid, /msgrcv/)
    q.remove()
    const r = await child.done
    t.deepEqual(JSON.parse(r.stdout.trim().split('\n')[1]!), ['EIDRM', -43, 'msgrcv', true])
    t.throws(() => MessageQueue.fromId(q.id), { instanceOf: IpcError, code: 'EINVAL' })
  },
)

// ---------------------------------------------------------------------------------------------
// message types beyond 2^53, with a Perl peer (issue 17)

const TWO_53_PLUS_1 = 2n ** 53n + 1n
const LONG_MAX = 2n ** 63n - 1n

/** Perl: sends argv's `type payload` pairs to queue argv[0] (types as Perl's 64-bit integers). */
const PERL_SEND = `my $id = shift; while (@ARGV) { my ($type, $data) = splice(@ARGV, 0, 2);
  msgsnd($id, pack('l! a*', $type, $data), 0) or die "msgsnd: $!" }`

/** Perl: takes `count` messages of type argv[1] (msgrcv's rules) and prints `type payload` each. */
const PERL_RECEIVE = `my ($id, $type, $count) = @ARGV; for (1 .. $count) {
  msgrcv($id, my $buf, 100, $type, 0) or die "msgrcv: $!"; my ($t, $data) = unpack('l! a*', $buf); print "$t $data\\n" }`

// Serial: waitUntilBlocked counts every thread of this process blocked in msgrcv.
needs(linuxOnly(test.serial, 'MSG_EXCEPT and /proc/<pid>/task/*/wchan'), { perl: 'IPC::SysV' })(
  'message types up to 2^63-1 from and to Perl arrive exactly: send, filters, except, waits',
  async (t) => {
    const q = track(t, MessageQueue.create())
    await perl(PERL_SEND, [
      String(q.id),
      '3',
      'three',
      String(TWO_53_PLUS_1),
      'a',
      String(LONG_MAX),
      'max',
      String(TWO_53_PLUS_1 + 1n),
      'b',
    ])
    // By default types are numbers: a type above 2^53 - 1 is refused, not rounded, and the
    // message comes with the error, exact.
    t.like(q.receiveSync(), { type: 3, data: Buffer.from('three') })
    const refused = t.throws(() => q.receiveSync(), { code: 'ERR_OUT_OF_RANGE' }) as RangeError & { received: unknown }
    t.deepEqual(refused.received, { type: TWO_53_PLUS_1, data: Buffer.from('a') })
    // With bigint: true, exact, and filters select exactly.
    t.deepEqual(q.receiveSync({ type: LONG_MAX, bigint: true }), { type: LONG_MAX, data: Buffer.from('max') })
    t.is(q.stat().messages, 1)
    await perl(PERL_SEND, [String(q.id), String(LONG_MAX - 1n), 'under', '9', 'nine'])
    t.deepEqual(await q.receive({ type: TWO_53_PLUS_1 + 1n, except: true, bigint: true }), {
      type: LONG_MAX - 1n,
      data: Buffer.from('under'),
    })
    t.deepEqual(q.receiveSync({ type: -(TWO_53_PLUS_1 + 1n), bigint: true }), { type: 9n, data: Buffer.from('nine') })
    t.deepEqual(await q.receive({ bigint: true }), { type: TWO_53_PLUS_1 + 1n, data: Buffer.from('b') })

    // ipckit sends such types; Perl reads them exactly, and selects by them.
    await q.send('x', { type: LONG_MAX })
    q.sendSync('y', { type: TWO_53_PLUS_1 })
    q.sendSync('z', { type: 7 })
    t.is(await perl(PERL_RECEIVE, [String(q.id), String(TWO_53_PLUS_1), '1']), `${TWO_53_PLUS_1} y\n`)
    t.is(await perl(PERL_RECEIVE, [String(q.id), '0', '2']), `${LONG_MAX} x\n7 z\n`)

    // A receive that waits (on an addon thread) gets the exact type too, in both modes.
    const waiting = q.receive({ bigint: true })
    const waitingNumber = q.receive({ type: LONG_MAX })
    await waitUntilBlocked(process.pid, /do_msgrcv/, 2)
    await perl(PERL_SEND, [String(q.id), String(TWO_53_PLUS_1), 'late', String(LONG_MAX), 'latest'])
    t.deepEqual(await waiting, { type: TWO_53_PLUS_1, data: Buffer.from('late') })
    const late = (await t.throwsAsync(waitingNumber, { code: 'ERR_OUT_OF_RANGE' })) as RangeError & {
      received: unknown
    }
    t.deepEqual(late.received, { type: LONG_MAX, data: Buffer.from('latest') })
    t.is(q.stat().messages, 0)
    // Large messages (beyond a pool, their own buffer) too.
    const big = Buffer.alloc(200_000, 1)
    q.sendSync(big.subarray(0, 8000), { type: LONG_MAX })
    t.deepEqual(q.receiveSync({ maxSize: 200_000, bigint: true }), { type: LONG_MAX, data: big.subarray(0, 8000) })
  },
)

test('message types: numbers must be safe integers, bigints fit a long; numbers still work as before', async (t) => {
  const q = track(t, MessageQueue.create())
  t.throws(() => q.sendSync('x', { type: 2 ** 60 }), { code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => q.sendSync('x', { type: 2n ** 63n }), { code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => q.sendSync('x', { type: 0n }), { code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => q.sendSync('x', { type: '5' as unknown as number }), { code: 'ERR_INVALID_ARG_TYPE' })
  await t.throwsAsync(q.send('x', { type: -1n }), { code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => q.receiveSync({ type: -(2n ** 63n) }), { code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => q.receiveSync({ type: 0n, except: true }), { code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => q.receiveSync({ bigint: 1 as unknown as boolean }), { code: 'ERR_INVALID_ARG_TYPE' })
  t.is(q.stat().messages, 0, 'nothing was sent')
  q.sendSync('n', { type: Number.MAX_SAFE_INTEGER })
  q.sendSync('b', { type: 12n })
  const first = q.receiveSync()
  t.is(first.type, Number.MAX_SAFE_INTEGER)
  t.deepEqual(q.receiveSync({ type: 12 }), { type: 12, data: Buffer.from('b') })
})

// Serial, as above: no other test's receive may be blocked meanwhile.
linuxOnly(test.serial, 'reads /proc/<pid>/task')(
  'lastReceivePid: the pid after a receive that found its message, an ipckit thread id after one that waited; lastSendPid is the sender process',
  async (t) => {
    const q = track(t, MessageQueue.create())
    const sender = compileC('msg-send', C_SENDER)
    const tasks = () => readdirSync(`/proc/${process.pid}/task`).map(Number)
    const listed = () =>
      ipcs({ type: 'msg' }).find((e): e is MessageQueueEntry => e.type === 'msg' && e.id === q.id)?.lastReceivePid
    // Queued first (by a C program), then received: the process id.
    await runC(sender, [String(q.id), '1', '6869'])
    const sent = q.stat().lastSendPid
    t.not(sent, process.pid)
    t.deepEqual(q.receiveSync({ wait: false }), { type: 1, data: Buffer.from('hi') })
    t.is(q.stat().lastReceivePid, process.pid)
    t.is(listed(), process.pid)
    // An async receive that waits blocks on an ipckit thread; the C sender hands the message
    // straight to it, and Linux records that thread's id.
    const waiting = q.receive()
    await waitUntilBlocked(process.pid, /do_msgrcv/)
    const run = runC(sender, [String(q.id), '2', '6f6b'])
    t.deepEqual(await waiting, { type: 2, data: Buffer.from('ok') })
    await run
    const { lastReceivePid, lastSendPid } = q.stat()
    t.not(lastReceivePid, process.pid, 'a thread id, not the process id')
    t.true(tasks().includes(lastReceivePid), `${lastReceivePid} is a thread of ${process.pid}`)
    t.is(listed(), lastReceivePid)
    t.not(lastSendPid, sent, 'the second C sender')
    t.false(tasks().includes(lastSendPid))
    // A send that waits (on an ipckit thread, the queue full) records the process id, not that
    // thread's.
    q.update({ maxBytes: 2 })
    q.sendSync('ab')
    const full = q.send('cd')
    await waitUntilBlocked(process.pid, /do_msgsnd/)
    q.receiveSync()
    await full
    t.is(q.stat().lastSendPid, process.pid)
  },
)
