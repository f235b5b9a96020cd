/**
 * The stress driver shared by `npm run stress` (10^6 messages per transport) and
 * `__test__/stress.spec.ts` (10^4): 8 producer and 8 consumer processes move checksummed
 * records over three transports at once, and the driver counts what arrived.
 *
 * - **Message queue** (one queue, one message type): every producer sends its records, every
 *   consumer takes whatever comes first. A System V queue is FIFO, so each consumer must see
 *   every producer's sequence numbers increasing (it sees a subsequence of each producer's
 *   stream). After the producers exit the driver sends one stop record per consumer.
 * - **Seqpacket server**: the driver listens; every producer connects and sends its records on
 *   its connection, then closes it. The driver accepts the 8 connections and hands each
 *   accepted descriptor to its own consumer process (`stdio[3]`, then
 *   `UnixSeqpacketSocket.fromFd(3)`), so the consumers *are* the accepted connections. A
 *   connection promises order and no loss, so each consumer must see one producer's records
 *   exactly in sequence, 0, 1, 2, ..., up to end of stream.
 * - **Pipe**: the producers inherit the write end of one `pipe()` and write `PIPE_BUF`-sized
 *   records with plain blocking `write(2)`s, which the kernel keeps whole (no interleaving). The
 *   driver is the one reader, through `PipeReadable`: a pipe is a single byte stream that gives
 *   no read boundaries, so records can only be framed again by one reader (several readers
 *   would split records between them). Each writer's records must come in sequence.
 *
 * A record is `magic u32 | producer u16 | 0 u16 | seq u32 | length u32 | crc32 u32 | pattern`,
 * the CRC-32 covering everything but itself; sizes vary with the sequence number (the pipe's
 * are all `PIPE_BUF`).
 *
 * Run the full version with `npm run stress` (or `node --import tsx __test__/helpers/stress.ts
 * [messages]`).
 *
 * @example
 * ```ts
 * const report = await runStress({ messages: 10_000 })
 * for (const r of Object.values(report.transports)) assert(r.missing === 0 && r.duplicated === 0)
 * ```
 */

import { crc32 } from 'node:zlib'
import { join } from 'node:path'

import { MessageQueue, UnixSeqpacketServer, pipe, type UnixSeqpacketSocket } from '../../ts/index'
import { nodeChild, tempDir, type RunningChild } from './index'

/** Bytes before the pattern. */
export const HEADER = 20
/** Size of every pipe record: Linux's `PIPE_BUF`, the largest write the kernel keeps whole. */
export const PIPE_BUF = 4096
const MAGIC = 0x4950_4b53
/** The producer number of a stop record. */
export const STOP_PRODUCER = 0xffff

/** Size of record `seq` of `producer` on the message queue: 20..1023 bytes. */
export function queueSize(producer: number, seq: number): number {
  return HEADER + (((seq * 2_654_435_761 + producer * 97) >>> 0) % 1004)
}

/** Size of record `seq` of `producer` on a seqpacket connection: 20..2047 bytes. */
export function seqpacketSize(producer: number, seq: number): number {
  return HEADER + (((seq * 2_246_822_519 + producer * 131) >>> 0) % 2028)
}

/**
 * Builds record `seq` of `producer`, `size` bytes long (>= {@link HEADER}).
 *
 * @example
 * ```ts
 * await q.send(record(3, 41, queueSize(3, 41)))
 * ```
 */
export function record(producer: number, seq: number, size: number): Buffer {
  const b = Buffer.allocUnsafe(size)
  b.writeUInt32LE(MAGIC, 0)
  b.writeUInt16LE(producer, 4)
  b.writeUInt16LE(0, 6)
  b.writeUInt32LE(seq >>> 0, 8)
  b.writeUInt32LE(size, 12)
  const pattern = Buffer.allocUnsafe(4)
  pattern.writeUInt32LE((Math.imul(producer + 1, 0x9e37_79b1) ^ Math.imul(seq + 1, 0x85eb_ca6b)) >>> 0)
  if (size > HEADER) b.fill(pattern, HEADER)
  b.writeUInt32LE(checksum(b), 16)
  return b
}

/** A stop record (tells a queue consumer to finish). */
export function stopRecord(): Buffer {
  return record(STOP_PRODUCER, 0, HEADER)
}

function checksum(b: Buffer): number {
  return crc32(b.subarray(HEADER), crc32(b.subarray(0, 16)))
}

/** The producer and sequence number of an intact record; `null` if it is damaged. */
export function parseRecord(b: Buffer): { producer: number; seq: number } | null {
  if (b.length < HEADER || b.readUInt32LE(0) !== MAGIC || b.readUInt32LE(12) !== b.length) return null
  if (b.readUInt32LE(16) !== checksum(b)) return null
  return { producer: b.readUInt16LE(4), seq: b.readUInt32LE(8) }
}

/** How many records producer `p` of `producers` sends when `messages` are sent in all. */
export function countOf(messages: number, producers: number, p: number): number {
  return Math.floor(messages / producers) + (p < messages % producers ? 1 : 0)
}

/**
 * What one reader saw of one transport. `order` says what the transport promises:
 * `'increasing'` (each producer's numbers grow: a queue shared by several readers),
 * `'consecutive'` (each producer's numbers come 0, 1, 2, ...: a pipe with one reader), or
 * `'connection'` (consecutive, and one producer only: a seqpacket connection).
 */
export class Tally {
  /** Times each record (`producer * perProducer + seq`) arrived. */
  readonly counts: Uint8Array
  received = 0
  corrupt = 0
  outOfOrder = 0
  /** Records of a second producer on a connection. */
  mixed = 0
  readonly #last: Int32Array
  #owner = -1

  constructor(
    readonly messages: number,
    readonly producers: number,
    readonly order: 'increasing' | 'consecutive' | 'connection',
  ) {
    this.counts = new Uint8Array(producers * Math.ceil(messages / producers))
    this.#last = new Int32Array(producers).fill(-1)
  }

  /** Counts one received message. */
  add(data: Buffer): void {
    this.received++
    const r = parseRecord(data)
    if (r === null || r.producer >= this.producers || r.seq >= countOf(this.messages, this.producers, r.producer)) {
      this.corrupt++
      return
    }
    const { producer, seq } = r
    if (this.order === 'connection') {
      if (this.#owner === -1) this.#owner = producer
      else if (this.#owner !== producer) this.mixed++
    }
    const last = this.#last[producer]!
    if (this.order === 'increasing' ? seq <= last : seq !== last + 1) this.outOfOrder++
    this.#last[producer] = seq
    const i = producer * Math.ceil(this.messages / this.producers) + seq
    if (this.counts[i]! < 255) this.counts[i]!++
  }

  /** The tally as JSON-friendly data (for a child's report). */
  toJSON(): TallyData {
    const { received, corrupt, outOfOrder, mixed } = this
    return { received, corrupt, outOfOrder, mixed, counts: Buffer.from(this.counts).toString('base64') }
  }
}

/** {@link Tally} as a child prints it. */
export interface TallyData {
  received: number
  corrupt: number
  outOfOrder: number
  mixed: number
  counts: string
}

/** The verdict on one transport. */
export interface TransportReport {
  /** Records the producers sent. */
  expected: number
  /** Messages the consumers took (stop records excluded). */
  received: number
  /** Records that never arrived. */
  missing: number
  /** Extra copies of records that arrived more than once. */
  duplicated: number
  /** Messages whose header or checksum was wrong. */
  corrupt: number
  /** Records that broke the order the transport promises. */
  outOfOrder: number
  /** Records that came on a connection owned by another producer. */
  mixed: number
}

/** What {@link runStress} found. */
export interface StressReport {
  transports: { queue: TransportReport; seqpacket: TransportReport; pipe: TransportReport }
  /** Wall time in milliseconds. */
  ms: number
}

/** Options of {@link runStress}. */
export interface StressOptions {
  /** Records per transport, split among the producers. */
  messages: number
  /** Producer processes. Default 8. */
  producers?: number
  /** Consumer processes. Default 8; the seqpacket consumers are as many as the producers. */
  consumers?: number
  /** Kill any child still running after this long. Default 10 minutes. */
  timeoutMs?: number
  /** Progress lines. */
  log?: (line: string) => void
}

function merge(messages: number, producers: number, tallies: TallyData[]): TransportReport {
  const per = Math.ceil(messages / producers)
  const total = new Uint32Array(producers * per)
  const report: TransportReport = {
    expected: messages,
    received: 0,
    missing: 0,
    duplicated: 0,
    corrupt: 0,
    outOfOrder: 0,
    mixed: 0,
  }
  for (const t of tallies) {
    report.received += t.received
    report.corrupt += t.corrupt
    report.outOfOrder += t.outOfOrder
    report.mixed += t.mixed
    const counts = Buffer.from(t.counts, 'base64')
    for (let i = 0; i < counts.length; i++) total[i]! += counts[i]!
  }
  for (let p = 0; p < producers; p++) {
    const n = countOf(messages, producers, p)
    for (let s = 0; s < n; s++) {
      const c = total[p * per + s]!
      if (c === 0) report.missing++
      else report.duplicated += c - 1
    }
  }
  return report
}

const DRIVER = JSON.stringify(__filename)

const PRODUCER = `
const S = require(${DRIVER})
const fs = require('node:fs')
const [queueId, path, p, count] = process.argv.slice(2).map((a, i) => (i === 1 ? a : Number(a)))
;(async () => {
  const q = ipckit.MessageQueue.fromId(queueId)
  const conn = ipckit.UnixSeqpacketSocket.connect(path)
  const viaQueue = async () => {
    for (let s = 0; s < count; s++) await q.send(S.record(p, s, S.queueSize(p, s)))
  }
  const viaSeqpacket = async () => {
    for (let s = 0; s < count; s++) await conn.send(S.record(p, s, S.seqpacketSize(p, s)))
    conn.close()
  }
  const viaPipe = async () => {
    for (let s = 0; s < count; s++) {
      const n = fs.writeSync(3, S.record(p, s, S.PIPE_BUF))
      if (n !== S.PIPE_BUF) throw new Error('short pipe write: ' + n)
      if (s % 32 === 31) await new Promise(setImmediate)
    }
    fs.closeSync(3)
  }
  await Promise.all([viaQueue(), viaSeqpacket(), viaPipe()])
  q.close()
})().catch((e) => { console.error(e); process.exit(1) })
`

const CONSUMER = `
const S = require(${DRIVER})
const [queueId, messages, producers] = process.argv.slice(2).map(Number)
;(async () => {
  const q = ipckit.MessageQueue.fromId(queueId)
  const conn = ipckit.UnixSeqpacketSocket.fromFd(3)
  const queue = new S.Tally(messages, producers, 'increasing')
  const seqpacket = new S.Tally(messages, producers, 'connection')
  const fromQueue = async () => {
    for await (const { data } of q.messages()) {
      if (data.length === S.HEADER && data.readUInt16LE(4) === S.STOP_PRODUCER) break
      queue.add(data)
    }
  }
  const fromConnection = async () => {
    for await (const { data } of conn) seqpacket.add(data)
    conn.close()
  }
  await Promise.all([fromQueue(), fromConnection()])
  q.close()
  console.log('RESULT ' + JSON.stringify({ queue, seqpacket }))
})().catch((e) => { console.error(e); process.exit(1) })
`

async function succeed(child: RunningChild, what: string): Promise<string> {
  const r = await child.done
  if (r.code !== 0) throw new Error(`${what} failed (${r.code ?? r.signal}): ${r.stderr}`)
  return r.stdout
}

/**
 * Runs producers and consumers over a message queue, a seqpacket server and a pipe at once,
 * and reports, per transport, what was lost, duplicated, damaged or reordered. Throws if a
 * child fails; removes every object it made.
 *
 * @example
 * ```ts
 * const { transports } = await runStress({ messages: 1_000_000, log: console.log })
 * ```
 */
export async function runStress(options: StressOptions): Promise<StressReport> {
  const { messages, producers = 8, consumers = 8, timeoutMs = 600_000, log = () => {} } = options
  if (consumers < producers) throw new RangeError('every seqpacket connection needs its consumer')
  const start = process.hrtime.bigint()
  const dir = tempDir('ipckit-stress-')
  const q = MessageQueue.create()
  const server = UnixSeqpacketServer.listen(join(dir.path, 'stress.seq'))
  const { readable, writable } = pipe()
  const children: RunningChild[] = []
  const connections: UnixSeqpacketSocket[] = []
  try {
    const pipeTally = new Tally(messages, producers, 'consecutive')
    const reading = (async () => {
      let carry = Buffer.alloc(0)
      for await (const chunk of readable as AsyncIterable<Buffer>) {
        const data = carry.length === 0 ? chunk : Buffer.concat([carry, chunk])
        let at = 0
        for (; at + PIPE_BUF <= data.length; at += PIPE_BUF) pipeTally.add(data.subarray(at, at + PIPE_BUF))
        carry = Buffer.from(data.subarray(at))
      }
      if (carry.length > 0) pipeTally.add(carry)
    })()
    reading.catch(() => {}) // awaited below; an early failure must not be an unhandled rejection

    const producerChildren = Array.from({ length: producers }, (_, p) =>
      nodeChild(
        PRODUCER,
        [String(q.id), join(dir.path, 'stress.seq'), String(p), String(countOf(messages, producers, p))],
        {
          stdio: ['pipe', 'pipe', 'pipe', writable.fd],
          timeoutMs,
        },
      ),
    )
    children.push(...producerChildren)
    writable.close()
    const produced = Promise.all(producerChildren.map((c, p) => succeed(c, `producer ${p}`)))
    produced.catch(() => {})
    log(`${producers} producers started`)

    const accepting = AbortSignal.timeout(Math.min(timeoutMs, 120_000))
    for (let i = 0; i < producers; i++) connections.push(await server.accept({ signal: accepting }))
    const consumerChildren = Array.from({ length: consumers }, (_, c) =>
      nodeChild(CONSUMER, [String(q.id), String(messages), String(producers)], {
        stdio: ['pipe', 'pipe', 'pipe', connections[c]?.fd ?? 'ignore'],
        timeoutMs,
      }),
    )
    children.push(...consumerChildren)
    for (const conn of connections) conn.close()
    const consumed = Promise.all(consumerChildren.map((c, i) => succeed(c, `consumer ${i}`)))
    consumed.catch(() => {})
    log(`${consumers} consumers started`)

    await produced
    log('producers done')
    for (let c = 0; c < consumers; c++) await q.send(stopRecord())
    const outputs = await consumed
    log('consumers done')
    await reading
    const results = outputs.map((out) => {
      const line = out.split('\n').find((l) => l.startsWith('RESULT '))
      if (line === undefined) throw new Error(`a consumer printed no result: ${out}`)
      return JSON.parse(line.slice(7)) as { queue: TallyData; seqpacket: TallyData }
    })
    return {
      transports: {
        queue: merge(
          messages,
          producers,
          results.map((r) => r.queue),
        ),
        seqpacket: merge(
          messages,
          producers,
          results.map((r) => r.seqpacket),
        ),
        pipe: merge(messages, producers, [pipeTally.toJSON()]),
      },
      ms: Number(process.hrtime.bigint() - start) / 1e6,
    }
  } finally {
    for (const c of children) c.kill('SIGKILL')
    for (const conn of connections) conn.close()
    writable.close()
    readable.close()
    q.remove()
    q.close()
    server.close()
    server.remove()
    dir.remove()
  }
}

if (require.main === module) {
  const messages = Number(process.argv[2] ?? 1_000_000)
  runStress({ messages, log: (l) => console.log(l) }).then(
    (report) => {
      console.log(JSON.stringify(report, null, 2))
      const bad = Object.entries(report.transports).filter(
        ([, r]) => r.received !== r.expected || r.missing + r.duplicated + r.corrupt + r.outOfOrder + r.mixed > 0,
      )
      if (bad.length > 0) {
        console.error(`FAILED: ${bad.map(([name]) => name).join(', ')}`)
        process.exitCode = 1
      } else console.log(`ok: ${messages} messages per transport in ${(report.ms / 1000).toFixed(1)} s`)
    },
    (err) => {
      console.error(err)
      process.exitCode = 1
    },
  )
}
