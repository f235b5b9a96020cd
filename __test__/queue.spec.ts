import test, { type ExecutionContext } from 'ava'
import { readFileSync } from 'node:fs'
import { constants as osConstants } from 'node:os'

import { AbortError, IPC_PRIVATE, IpcError, MessageQueue } from '../ts/index'
import { pendingWaits } from '../ts/reactor'
import {
  assertTimeBetween,
  freshKey,
  keyExists,
  linuxOnly,
  notLinux,
  onLinux,
  removeAtEnd,
  sleep,
  waitUntilBlocked,
  within,
} from './helpers'

const track = (t: ExecutionContext, q: MessageQueue) => removeAtEnd(t, q, MessageQueue.fromId)
const privateQueue = (t: ExecutionContext) => track(t, MessageQueue.create())

test('send and receive round trip Buffer, Uint8Array, string and other views', async (t) => {
  const q = privateQueue(t)
  await q.send(Buffer.from([0, 1, 2, 255]), { type: 4 })
  q.sendSync(new Uint8Array([9, 8]), { type: 5 })
  await q.send('héllo ✓', { type: 6 })
  q.sendSync(new Uint16Array([0x0102]), { type: 7 })
  q.sendSync(Buffer.alloc(0), { type: 8 })
  t.deepEqual(await q.receive(), { type: 4, data: Buffer.from([0, 1, 2, 255]) })
  t.deepEqual(q.receiveSync(), { type: 5, data: Buffer.from([9, 8]) })
  const text = await q.receive()
  t.is(text.type, 6)
  t.is(text.data.toString('utf8'), 'héllo ✓')
  t.true(Buffer.isBuffer(text.data))
  t.deepEqual(q.receiveSync().data, Buffer.from(new Uint16Array([0x0102]).buffer))
  t.deepEqual(await q.receive(), { type: 8, data: Buffer.alloc(0) })
})

test('default send type is 1, and large types survive', async (t) => {
  const q = privateQueue(t)
  q.sendSync('a')
  q.sendSync('b', { type: Number.MAX_SAFE_INTEGER })
  t.is(q.receiveSync().type, 1)
  t.is((await q.receive()).type, Number.MAX_SAFE_INTEGER)
})

linuxOnly(test, 'except (MSG_EXCEPT) is Linux-only: macOS gives EINVAL, tested below')(
  'type selection: exact, lowest <= |type|, any, except',
  async (t) => {
    const q = privateQueue(t)
    for (const [type, text] of [
      [5, 'five'],
      [2, 'two'],
      [9, 'nine'],
      [2, 'two again'],
      [3, 'three'],
    ] as const) {
      q.sendSync(text, { type })
    }
    const take = async (opts: object) => {
      const m = await q.receive(opts)
      return `${m.type}:${m.data}`
    }
    t.is(await take({ type: 9 }), '9:nine')
    t.is(await take({ type: -4 }), '2:two')
    t.is(await take({ type: -4 }), '2:two again')
    t.is(await take({ type: 2, except: true }), '5:five')
    t.is(q.receiveSync({ type: -100 }).type, 3)
    t.is(q.stat().messages, 0)
  },
)

notLinux(test)('except: true is refused with EINVAL (no MSG_EXCEPT off Linux) and takes nothing', async (t) => {
  const q = privateQueue(t)
  q.sendSync('five', { type: 5 })
  t.like(
    t.throws(() => q.receiveSync({ type: 2, except: true, wait: false }), { instanceOf: IpcError }),
    {
      code: 'EINVAL',
      syscall: 'msgrcv',
    },
  )
  t.like(await t.throwsAsync(q.receive({ type: 2, except: true }), { instanceOf: IpcError }), {
    code: 'EINVAL',
    syscall: 'msgrcv',
  })
  t.is(q.stat().messages, 1)
})

test('receive with type 0 preserves send order', async (t) => {
  const q = privateQueue(t)
  for (let i = 0; i < 50; i++) q.sendSync(String(i), { type: 1 + (i % 7) })
  const got: string[] = []
  for (let i = 0; i < 50; i++) got.push((await q.receive()).data.toString())
  t.deepEqual(
    got,
    Array.from({ length: 50 }, (_, i) => String(i)),
  )
})

test('a message larger than maxSize stays in the queue (E2BIG) unless truncate', async (t) => {
  const q = privateQueue(t)
  q.sendSync(Buffer.alloc(100, 7), { type: 3 })
  const e = t.throws(() => q.receiveSync({ maxSize: 10 }), { instanceOf: IpcError })
  t.is(e.code, 'E2BIG')
  t.is(e.syscall, 'msgrcv')
  await t.throwsAsync(q.receive({ maxSize: 99 }), { code: 'E2BIG' })
  t.is(q.stat().messages, 1)
  const cut = await q.receive({ maxSize: 10, truncate: true })
  t.deepEqual(cut, { type: 3, data: Buffer.alloc(10, 7) })
  t.is(q.stat().messages, 0)
})

test('maxSize larger than msgmax and exactly the message size both work', async (t) => {
  const q = privateQueue(t)
  q.sendSync(Buffer.alloc(64, 1))
  t.is(q.receiveSync({ maxSize: 64 }).data.length, 64)
  q.sendSync(Buffer.alloc(64, 2))
  t.is((await q.receive({ maxSize: 1 << 20 })).data.length, 64)
})

linuxOnly(test, 'the system msgmax is read from /proc/sys/kernel/msgmax')(
  'the default maxSize takes a message of the system msgmax',
  async (t) => {
    const q = privateQueue(t)
    const msgmax = Number(readFileSync('/proc/sys/kernel/msgmax', 'utf8'))
    q.update({ maxBytes: Math.max(q.stat().maxBytes, msgmax) })
    const big = Buffer.alloc(msgmax, 0xab)
    q.sendSync(big)
    t.deepEqual(q.receiveSync().data, big)
    const p = q.receive()
    await sleep(10)
    q.sendSync(big)
    t.deepEqual((await p).data, big)
  },
)

linuxOnly(test, 'the system msgmax is read from /proc/sys/kernel/msgmax')(
  'a message larger than msgmax is refused with EINVAL naming both sizes, and nothing is queued',
  async (t) => {
    const q = privateQueue(t)
    const msgmax = Number(readFileSync('/proc/sys/kernel/msgmax', 'utf8'))
    // The message names the size sent and the limit, keeping the kernel's code, errno and syscall.
    const tooBig = (size: number) => ({
      code: 'EINVAL',
      errno: -22,
      syscall: 'msgsnd',
      message: `EINVAL: invalid argument, msgsnd (a message of ${size} bytes; msgmax, the largest this system takes, is ${msgmax} bytes)`,
    })
    t.like(
      t.throws(() => q.sendSync(Buffer.alloc(msgmax + 1)), { instanceOf: IpcError }),
      tooBig(msgmax + 1),
    )
    t.like(
      t.throws(() => q.sendSync(Buffer.alloc(msgmax + 1), { wait: false })),
      tooBig(msgmax + 1),
    )
    // Larger than the send pool holds: the general path says the same.
    t.like(
      t.throws(() => q.sendSync(Buffer.alloc(4 * msgmax + 100_000))),
      tooBig(4 * msgmax + 100_000),
    )
    t.like(await t.throwsAsync(q.send('x'.repeat(msgmax + 7)), { instanceOf: IpcError }), tooBig(msgmax + 7))
    t.like(await t.throwsAsync(q.send(Buffer.alloc(4 * msgmax + 100_000))), tooBig(4 * msgmax + 100_000))
    t.is(q.stat().messages, 0)
    // Other EINVALs of msgsnd are not blamed on the size: a removed queue's id.
    const gone = MessageQueue.create()
    gone.remove()
    const e = t.throws(() => gone.sendSync('small'), { instanceOf: IpcError })
    t.false(e!.message.includes('msgmax'), e!.message)
  },
)

test('wait: false maps to IPC_NOWAIT: ENOMSG on empty, EAGAIN on full', (t) => {
  const q = privateQueue(t)
  const empty = t.throws(() => q.receiveSync({ wait: false }), { instanceOf: IpcError })
  t.like(empty, { code: 'ENOMSG', syscall: 'msgrcv', errno: -osConstants.errno.ENOMSG })
  q.update({ maxBytes: 8 })
  q.sendSync(Buffer.alloc(8), { wait: false })
  const full = t.throws(() => q.sendSync('x', { wait: false }), { instanceOf: IpcError })
  t.like(full, { code: 'EAGAIN', syscall: 'msgsnd', errno: -osConstants.errno.EAGAIN })
  t.is(full.message, 'EAGAIN: resource temporarily unavailable, msgsnd')
})

test('async send waits for room in a full queue, off the JS thread', async (t) => {
  const q = privateQueue(t)
  q.update({ maxBytes: 8 })
  q.sendSync(Buffer.alloc(8, 1))
  let sent = false
  const p = q.send(Buffer.from('second')).then(() => (sent = true))
  await sleep(30)
  t.false(sent)
  t.deepEqual(q.receiveSync().data, Buffer.alloc(8, 1))
  await p
  t.true(sent)
  t.is(q.receiveSync().data.toString(), 'second')
})

test('aborting a send on a full queue sends nothing', async (t) => {
  const q = privateQueue(t)
  q.update({ maxBytes: 4 })
  q.sendSync('full')
  const ac = new AbortController()
  const p = q.send('more', { signal: ac.signal })
  await sleep(10)
  ac.abort()
  await t.throwsAsync(p, { instanceOf: AbortError, code: 'ABORT_ERR', name: 'AbortError' })
  t.is(q.receiveSync().data.toString(), 'full')
  t.throws(() => q.receiveSync({ wait: false }), { code: 'ENOMSG' })
})

test.serial('a message already queued is taken without a thread hop', async (t) => {
  const q = privateQueue(t)
  q.sendSync('ready')
  const p = q.receive()
  t.is(pendingWaits(), 0)
  t.is((await p).data.toString(), 'ready')
})

test.serial('a blocked receive resolves when a message arrives', async (t) => {
  const q = privateQueue(t)
  const p = q.receive({ type: 3 })
  await sleep(5)
  t.is(pendingWaits(), 1)
  q.sendSync('other', { type: 2 })
  q.sendSync('mine', { type: 3 })
  t.deepEqual(await p, { type: 3, data: Buffer.from('mine') })
  t.is(q.receiveSync().data.toString(), 'other')
})

// Promptly: the receive would wait forever otherwise; how soon the abort lands depends on the
// machine, so only a deadline is checked (bench/ measures speed).
test.serial('abort cancels a pending receive promptly, and it takes nothing', async (t) => {
  const q = privateQueue(t)
  const ac = new AbortController()
  const p = q.receive({ signal: ac.signal })
  // Aborted once it sleeps in msgrcv (no other test runs during a serial one; macOS shows no
  // wchan: a moment there).
  if (onLinux) await waitUntilBlocked(process.pid, /msgrcv/)
  else await sleep(20)
  const reason = new Error('stop')
  ac.abort(reason)
  const err = await t.throwsAsync(within(p, 'the aborted receive rejects'), { instanceOf: AbortError })
  t.is(err.cause, reason)
  q.sendSync('after abort')
  t.is(q.stat().messages, 1)
  t.is(q.receiveSync().data.toString(), 'after abort')
})

test('an already aborted signal rejects before touching the queue', async (t) => {
  const q = privateQueue(t)
  q.sendSync('stays')
  await t.throwsAsync(q.receive({ signal: AbortSignal.abort() }), { name: 'AbortError' })
  await t.throwsAsync(q.send('no', { signal: AbortSignal.abort() }), { name: 'AbortError' })
  t.is(q.stat().messages, 1)
})

test('many aborted receives leave every later message in the queue', async (t) => {
  const q = privateQueue(t)
  const controllers = Array.from({ length: 16 }, () => new AbortController())
  const waits = controllers.map((ac) =>
    q.receive({ signal: ac.signal }).then(
      () => 'took',
      (e) => e.name,
    ),
  )
  await sleep(20)
  for (const ac of controllers) ac.abort()
  t.deepEqual(await Promise.all(waits), Array(16).fill('AbortError'))
  for (let i = 0; i < 16; i++) q.sendSync(String(i))
  t.is(q.stat().messages, 16)
})

// Serial: it counts this process's threads blocked in msgrcv/msgsnd, so no other test may wait.
linuxOnly(test.serial, 'waitUntilBlocked reads /proc/<pid>/task/*/wchan')(
  'removing the queue wakes blocked receivers and senders with EIDRM',
  async (t) => {
    const q = track(t, MessageQueue.create())
    const receivers = [q.receive(), q.receive({ type: 2 }), q.receive({ type: -3 }), q.receive()]
    const full = track(t, MessageQueue.create())
    full.update({ maxBytes: 1 })
    full.sendSync('x')
    const sender = full.send('y')
    // The two receives with the same options stand in one line: one thread blocked for both.
    await waitUntilBlocked(process.pid, /msgrcv|msgsnd/, 4)
    q.remove()
    full.remove()
    for (const r of [...receivers, sender]) {
      const e = await t.throwsAsync(r, { instanceOf: IpcError })
      t.is(e.code, 'EIDRM')
      t.is(e.errno, -osConstants.errno.EIDRM)
    }
  },
)

test('messages() iterates in order and break leaves the rest queued', async (t) => {
  const q = privateQueue(t)
  for (let i = 0; i < 5; i++) q.sendSync(String(i))
  const seen: string[] = []
  for await (const m of q.messages()) {
    seen.push(m.data.toString())
    if (seen.length === 3) break
  }
  t.deepEqual(seen, ['0', '1', '2'])
  t.is(q.stat().messages, 2)
})

test('iteration waits for new messages and filters by type', async (t) => {
  const q = privateQueue(t)
  setTimeout(() => {
    q.sendSync('skip', { type: 1 })
    q.sendSync('a', { type: 2 })
    q.sendSync('b', { type: 2 })
  }, 20)
  const seen: string[] = []
  for await (const m of q.messages({ type: 2 })) {
    seen.push(m.data.toString())
    if (seen.length === 2) break
  }
  t.deepEqual(seen, ['a', 'b'])
  t.is(q.receiveSync().data.toString(), 'skip')
})

test('for await over the queue itself works', async (t) => {
  const q = privateQueue(t)
  q.sendSync('only')
  for await (const m of q) {
    t.is(m.data.toString(), 'only')
    break
  }
})

test('return() during a pending next() ends the iteration and takes nothing', async (t) => {
  const q = privateQueue(t)
  const it = q.messages()
  const pending = it.next()
  await sleep(20)
  t.deepEqual(await it.return!(), { done: true, value: undefined })
  t.deepEqual(await pending, { done: true, value: undefined })
  t.deepEqual(await it.next(), { done: true, value: undefined })
  q.sendSync('still here')
  t.is(q.stat().messages, 1)
})

test('abort ends the iteration with an AbortError and takes nothing', async (t) => {
  const q = privateQueue(t)
  const ac = new AbortController()
  q.sendSync('first')
  const seen: string[] = []
  const loop = (async () => {
    for await (const m of q.messages({ signal: ac.signal })) seen.push(m.data.toString())
  })()
  await sleep(20)
  ac.abort()
  await t.throwsAsync(loop, { name: 'AbortError' })
  t.deepEqual(seen, ['first'])
  q.sendSync('later')
  t.is(q.receiveSync({ wait: false }).data.toString(), 'later')
})

test('stat reports counts, pids, times, owner and mode', async (t) => {
  const made = Date.now()
  const q = privateQueue(t)
  const madeEnd = Date.now()
  const fresh = q.stat()
  t.is(fresh.messages, 0)
  t.is(fresh.lastSendTime, null)
  t.is(fresh.lastReceiveTime, null)
  t.is(fresh.lastSendPid, 0)
  t.is(fresh.mode, 0o600)
  t.is(fresh.key, 0)
  t.is(fresh.uid, process.getuid!())
  t.is(fresh.cgid, process.getgid!())
  assertTimeBetween(t, fresh.changeTime, made, madeEnd, 'changeTime of a new queue')
  // A new queue holds msgmnb bytes (the system default at creation; /proc tells it on Linux).
  if (onLinux) t.is(fresh.maxBytes, Number(readFileSync('/proc/sys/kernel/msgmnb', 'utf8')))
  await sleep(1000 - (Date.now() % 1000) + 5) // the next second: a send time must not be the creation time by chance
  const sending = Date.now()
  q.sendSync('abc')
  q.sendSync('de')
  const sent = Date.now()
  const s = q.stat()
  t.is(s.messages, 2)
  t.is(s.bytes, 5)
  t.is(s.lastSendPid, process.pid)
  assertTimeBetween(t, s.lastSendTime, sending, sent, 'lastSendTime')
  t.is(s.lastReceiveTime, null)
  t.deepEqual(s.changeTime, fresh.changeTime, 'a send is not a change')
  const receiving = Date.now()
  q.receiveSync()
  const received = Date.now()
  const r = q.stat()
  t.is(r.lastReceivePid, process.pid)
  assertTimeBetween(t, r.lastReceiveTime, receiving, received, 'lastReceiveTime')
  t.deepEqual(r.lastSendTime, s.lastSendTime)
})

test('update changes capacity and mode, keeping the rest', (t) => {
  const q = privateQueue(t)
  q.update({ maxBytes: 4096 })
  t.is(q.stat().maxBytes, 4096)
  q.update({ mode: 0o640 })
  const s = q.stat()
  t.is(s.mode, 0o640)
  t.is(s.maxBytes, 4096)
  q.update({ uid: 0, gid: 0 })
  t.is(q.stat().uid, 0)
})

test('open by key: create, exclusive (EEXIST), missing (ENOENT), mode', (t) => {
  const key = freshKey()
  const missing = t.throws(() => MessageQueue.open(key), { instanceOf: IpcError })
  t.like(missing, { code: 'ENOENT', errno: -2, syscall: 'msgget' })
  t.is(missing.message, 'ENOENT: no such file or directory, msgget')
  const q = track(t, MessageQueue.open(key, { create: true, mode: 0o640 }))
  t.is(q.key, key)
  t.is(q.stat().key, key)
  t.is(q.stat().mode, 0o640)
  t.true(keyExists('msg', key))
  const again = MessageQueue.open(key)
  t.is(again.id, q.id)
  t.is(MessageQueue.open(key, { create: true }).id, q.id)
  t.like(
    t.throws(() => MessageQueue.open(key, { exclusive: true })),
    { code: 'EEXIST', syscall: 'msgget' },
  )
  t.throws(() => MessageQueue.open(key, { create: true, exclusive: true }), { code: 'EEXIST' })
  again.close()
})

test('keys may be given signed or unsigned and are reported unsigned', (t) => {
  const key = freshKey() | 0x8000_0000
  const signed = key | 0
  t.true(signed < 0)
  const q = track(t, MessageQueue.open(signed, { create: true }))
  t.is(q.key, key >>> 0)
  t.is(q.stat().key, key >>> 0)
  t.is(MessageQueue.open(key >>> 0).id, q.id)
})

test('IPC_PRIVATE always creates a new queue', (t) => {
  const a = track(t, MessageQueue.open(IPC_PRIVATE))
  const b = track(t, MessageQueue.open(IPC_PRIVATE, { create: true }))
  t.not(a.id, b.id)
  t.is(a.key, 0)
})

test('fromId opens an existing queue and reports its key; unknown ids fail', (t) => {
  const key = freshKey()
  const q = track(t, MessageQueue.open(key, { create: true }))
  const same = MessageQueue.fromId(q.id)
  t.is(same.key, key)
  same.sendSync('via id')
  t.is(q.receiveSync().data.toString(), 'via id')
  q.remove()
  t.like(
    t.throws(() => MessageQueue.fromId(q.id)),
    { code: 'EINVAL', syscall: 'msgctl' },
  )
})

test('close is idempotent, later calls throw ERR_INVALID_STATE, remove stays possible by id', async (t) => {
  const q = privateQueue(t)
  q.close()
  q.close()
  t.true(q.closed)
  t.throws(() => q.sendSync('x'), { code: 'ERR_INVALID_STATE' })
  t.throws(() => q.receiveSync(), { code: 'ERR_INVALID_STATE' })
  t.throws(() => q.stat(), { code: 'ERR_INVALID_STATE' })
  t.throws(() => q.remove(), { code: 'ERR_INVALID_STATE' })
  await t.throwsAsync(q.send('x'), { code: 'ERR_INVALID_STATE' })
  await t.throwsAsync(q.receive(), { code: 'ERR_INVALID_STATE' })
  // The queue itself is still there, as it was.
  const again = MessageQueue.fromId(q.id)
  t.like(again.stat(), { messages: 0, bytes: 0, mode: 0o600, uid: process.getuid!(), key: 0 })
  again.close()
})

test('close cancels pending waits with an AbortError that took nothing', async (t) => {
  const q = privateQueue(t)
  const p = q.receive()
  await sleep(10)
  q.close()
  const err = await t.throwsAsync(p, { instanceOf: AbortError })
  t.is((err.cause as { code?: string }).code, 'ERR_INVALID_STATE')
  const other = MessageQueue.fromId(q.id)
  other.sendSync('kept')
  t.is(other.receiveSync({ wait: false }).data.toString(), 'kept')
  other.close()
})

test('Symbol.dispose closes', (t) => {
  let id = -1
  let disposed: MessageQueue | undefined
  {
    using q = privateQueue(t)
    id = q.id
    t.false(q.closed)
    disposed = q
  }
  t.true(disposed!.closed)
  t.is(disposed!.id, id)
})

test.serial('the reactor keeps no waits after everything settles', async (t) => {
  const q = privateQueue(t)
  const ps = [q.receive(), q.receive(), q.receive()]
  await sleep(10)
  for (let i = 0; i < 3; i++) q.sendSync(String(i))
  await Promise.all(ps)
  t.is(pendingWaits(), 0)
})

test('bad arguments throw TypeError/RangeError before any call, and async methods reject', async (t) => {
  const q = privateQueue(t)
  const type = { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' }
  const range = { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' }
  t.throws(() => MessageQueue.open('1' as never), type)
  t.throws(() => MessageQueue.open(1.5), range)
  t.throws(() => MessageQueue.open(2 ** 32), range)
  t.throws(() => MessageQueue.open(-(2 ** 31) - 1), range)
  t.throws(() => MessageQueue.open(1, null as never), type)
  t.throws(() => MessageQueue.open(1, [] as never), type)
  t.throws(() => MessageQueue.open(1, { create: 1 as never }), type)
  t.throws(() => MessageQueue.open(1, { mode: 0o1000 }), range)
  t.throws(() => MessageQueue.open(1, { mode: '600' as never }), type)
  t.throws(() => MessageQueue.create({ mode: -1 }), range)
  t.throws(() => MessageQueue.fromId(-1), range)
  t.throws(() => MessageQueue.fromId(undefined as never), type)
  t.throws(() => q.sendSync(123 as never), type)
  t.throws(() => q.sendSync(null as never), type)
  t.throws(() => q.sendSync({} as never), type)
  t.throws(() => q.sendSync('x', { type: 0 }), range)
  t.throws(() => q.sendSync('x', { type: -1 }), range)
  t.throws(() => q.sendSync('x', { type: 1.5 }), range)
  t.throws(() => q.sendSync('x', { type: 2 ** 53 }), range)
  t.throws(() => q.sendSync('x', { type: '1' as never }), type)
  t.throws(() => q.sendSync('x', { wait: 'no' as never }), type)
  t.throws(() => q.receiveSync({ type: NaN }), range)
  t.throws(() => q.receiveSync({ maxSize: -1 }), range)
  t.throws(() => q.receiveSync({ maxSize: 2 ** 31 }), range)
  t.throws(() => q.receiveSync({ except: true }), range)
  t.throws(() => q.receiveSync({ truncate: 1 as never }), type)
  t.throws(() => q.messages({ type: 'x' as never }), type)
  t.throws(() => q.update({ mode: 0o7777 }), range)
  t.throws(() => q.update(null as never), type)
  t.throws(() => q.update({ maxBytes: -5 }), range)
  const sendP = q.send(Symbol('x') as never)
  const recvP = q.receive({ signal: 'nope' as never })
  await t.throwsAsync(sendP, type)
  await t.throwsAsync(recvP, type)
  await t.throwsAsync(q.receive({ type: 1.25 }), range)
  await t.throwsAsync(q.send('x', { type: 0 }), range)
  t.is(q.stat().messages, 0)
})
