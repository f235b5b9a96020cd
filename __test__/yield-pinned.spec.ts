/**
 * Two processes sharing one CPU (pinned with `taskset`), where a wait's yield (ts/yield.ts)
 * finds its answer: every primitive that yields carries every value, in order, with and without
 * yields; the sleeps each side made are logged. (Apart from yield.spec.ts because it starts 14
 * Node processes on one CPU: under qemu that alone takes two minutes.)
 */

import test from 'ava'

import { SOURCE_ENTRY, linuxOnly, runNodeUnder } from './helpers'
import { needs } from './helpers/foreign'

/**
 * Runs in a process pinned to one CPU (with its echo child, which inherits the affinity): for
 * each primitive, round trips of a 4-byte counter that must come back as sent, and a stream of
 * counters that must arrive in order; prints what it checked and its voluntary context
 * switches (sleeps) per message.
 */
const PINNED_PAIR = `
const { spawn } = require('node:child_process')
const { readFileSync } = require('node:fs')
const N = Number(process.argv[2])
const sleeps = () => Number(/\\nvoluntary_ctxt_switches:\\s+(\\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1])
const u32 = (i) => { const b = Buffer.alloc(4); b.writeUInt32LE(i); return b }
const ECHO = \`const ipckit = require(\${JSON.stringify(process.argv[3])})
const [kind, id] = process.argv.slice(1)
;(async () => {
  if (kind === 'channel') {
    const ch = ipckit.Channel.fromFds([3, 4, 5])
    for await (const m of ch) await ch.send(m)
    ch.close()
  } else if (kind === 'channel-post') {
    const ch = ipckit.Channel.fromFds([3, 4, 5])
    for await (const v of ch) await ch.post(v)
    ch.close()
  } else if (kind === 'channel-stream') {
    const ch = ipckit.Channel.fromFds([3, 4, 5])
    for (let i = 0; i < Number(id); i++) { const b = Buffer.alloc(4); b.writeUInt32LE(i); await ch.send(b) }
    ch.close()
  } else if (kind === 'queue') {
    const q = ipckit.MessageQueue.fromId(Number(id))
    for (;;) { const m = await q.receive({ type: 1 }); if (m.data.length === 0) break; await q.send(m.data, { type: 2 }) }
  } else if (kind === 'queue-stream') {
    const [qid, n] = id.split(':').map(Number)
    const q = ipckit.MessageQueue.fromId(qid)
    for (let i = 0; i < n; i++) { const b = Buffer.alloc(4); b.writeUInt32LE(i); q.sendSync(b, { type: 3 }) }
  } else if (kind === 'seqpacket') {
    const s = ipckit.UnixSeqpacketSocket.fromFd(3)
    for await (const m of s) await s.send(m.data)
    s.close()
  } else if (kind === 'semaphore') {
    const set = ipckit.SemaphoreSet.fromId(Number(id))
    for (;;) { await set.op([{ index: 0, delta: -1 }]); if (set.get(2) !== 0) break; await set.op([{ index: 1, delta: 1 }]) }
  }
})().catch((e) => { console.error(e); process.exit(1) })\`
const echo = (kind, id, fds = []) => {
  const child = spawn(process.execPath, [...process.execArgv, '-e', ECHO, kind, String(id)], { stdio: ['ignore', 'inherit', 'inherit', ...fds] })
  return new Promise((resolve, reject) => child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(kind + ' echo exited ' + code)))))
}
async function roundTrips(kind, send, receive) {
  const s0 = sleeps()
  for (let i = 0; i < N; i++) {
    await send(u32(i))
    const back = await receive()
    if (back.length !== 4 || back.readUInt32LE(0) !== i) throw new Error(kind + ': round trip ' + i + ' came back as ' + back.toString('hex'))
  }
  return { checked: N, sleepsPerMessage: (sleeps() - s0) / N }
}
// Posted values that are falsy, undefined among them, both ways (each end's take after a
// yield must tell a value from nothing found).
async function postTrips(ch) {
  const VALUES = [undefined, null, 0, '', false]
  const s0 = sleeps()
  for (let i = 0; i < N; i++) {
    const v = i % 6 === 5 ? i : VALUES[i % 6]
    await ch.post(v)
    const back = i % 2 === 0 ? await ch.receive() : ch.receiveSync()
    if (!Object.is(back, v)) throw new Error('channel post: round trip ' + i + ' sent ' + String(v) + ', came back as ' + String(back))
  }
  return { checked: N, sleepsPerMessage: (sleeps() - s0) / N }
}
async function stream(kind, messages) {
  const s0 = sleeps()
  let i = 0
  for await (const m of messages) {
    if (m.length !== 4 || m.readUInt32LE(0) !== i) throw new Error(kind + ': message ' + i + ' arrived as ' + m.toString('hex'))
    if (++i === 5 * N) break
  }
  return { checked: i, sleepsPerMessage: (sleeps() - s0) / i }
}
;(async () => {
  const out = {}
  {
    const ch = ipckit.Channel.create({ duplex: true, capacity: 1 << 12 })
    const done = echo('channel', 0, ch.fds)
    out.channel = await roundTrips('channel', (b) => ch.send(b), () => ch.receive())
    ch.close()
    await done
  }
  {
    const ch = ipckit.Channel.create({ duplex: true, capacity: 1 << 12 })
    const done = echo('channel-post', 0, ch.fds)
    out.channelPost = await postTrips(ch)
    ch.close()
    await done
  }
  {
    const ch = ipckit.Channel.create({ capacity: 1 << 10, role: 'reader' })
    const done = echo('channel-stream', 5 * N, ch.fds)
    out.channelStream = await stream('channel stream', ch.messages())
    ch.close()
    await done
  }
  const q = ipckit.MessageQueue.create()
  try {
    const done = echo('queue', q.id)
    out.queue = await roundTrips('queue', (b) => q.send(b, { type: 1 }), async () => (await q.receive({ type: 2 })).data)
    await q.send(Buffer.alloc(0), { type: 1 })
    await done
    const produced = echo('queue-stream', q.id + ':' + 5 * N)
    out.queueStream = await stream('queue stream', (async function* () { for await (const m of q.messages({ type: 3 })) yield m.data })())
    await produced
  } finally {
    q.remove()
  }
  {
    const [a, b] = ipckit.socketpair('seqpacket')
    const done = echo('seqpacket', 0, [b.fd])
    b.close()
    out.seqpacket = await roundTrips('seqpacket', (x) => a.send(x), async () => (await a.receive()).data)
    a.close()
    await done
  }
  const set = ipckit.SemaphoreSet.create({ count: 3 })
  try {
    const done = echo('semaphore', set.id)
    let i = 0
    out.semaphore = await roundTrips('semaphore', async () => { await set.op([{ index: 0, delta: 1 }]) }, async () => { await set.op([{ index: 1, delta: -1 }]); return u32(i++) })
    set.set(2, 1)
    await set.op([{ index: 0, delta: 1 }])
    await done
  } finally {
    set.remove()
  }
  console.log(JSON.stringify(out))
})().catch((e) => { console.error(e); process.exit(1) })
`

const pinned = needs(linuxOnly(test.serial, 'reads /proc/self/status'), { command: 'taskset' })

pinned(
  'two processes sharing one CPU: Channel (bytes, and posted values undefined and null among them), queue, seqpacket and semaphore round trips and streams carry every value, in order, with and without yields',
  async (t) => {
    const N = 2000
    for (const env of [{}, { IPCKIT_NO_YIELD: '1' }]) {
      const r = await runNodeUnder(['taskset', '-c', '0'], PINNED_PAIR, [String(N), SOURCE_ENTRY], {
        env: { ...process.env, ...env },
        timeoutMs: 120_000,
      })
      const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<
        string,
        { checked: number; sleepsPerMessage: number }
      >
      t.deepEqual(Object.keys(out), [
        'channel',
        'channelPost',
        'channelStream',
        'queue',
        'queueStream',
        'seqpacket',
        'semaphore',
      ])
      for (const [kind, { checked }] of Object.entries(out)) t.is(checked, kind.endsWith('Stream') ? 5 * N : N, kind)
      t.log(
        env.IPCKIT_NO_YIELD ? 'IPCKIT_NO_YIELD=1' : 'yields',
        'sleeps per message:',
        Object.entries(out)
          .map(([k, v]) => `${k} ${v.sleepsPerMessage.toFixed(2)}`)
          .join(', '),
      )
    }
  },
)
