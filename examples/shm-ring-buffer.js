#!/usr/bin/env node
// A single-producer / single-consumer ring buffer in a System V shared memory segment, between
// two processes. The parent writes checksummed messages of varied sizes into the ring, a child
// process reads them and checks every checksum. The head and tail indices live in the segment
// and are read and written with `Atomics` on an Int32Array over a zero-copy view, and the
// consumer hashes each message straight out of shared memory. When the ring is empty the
// consumer sleeps in `shm.wait` on the head index, and when it is full the producer sleeps on
// the tail index (a futex shared by the two processes: no busy waiting); each side `notify`s
// the other after moving its index.
//
//   npm run build && node examples/shm-ring-buffer.js [messages]
//
// Where the runtime refuses zero-copy buffers (Electron >= 21; simulate it with
// IPCKIT_NO_ZERO_COPY=1) the same ring runs on the copy API, `shm.read` and `shm.write`.
//
// Segment layout: word 0 = head (bytes ever written), word 1 = tail (bytes ever read), both
// free-running unsigned 32-bit counters; the ring's bytes start at DATA. A record is a 4-byte
// length, an 8-byte checksum (the first 8 bytes of the payload's SHA-256), then the payload;
// a record may wrap around the end of the ring. Length 0xFFFFFFFF marks the end of the stream.
//
// Message i's payload is made from i alone (see `payloadOf`), so the stream's SHA-256, which both
// sides print, can be recomputed by anyone.
'use strict'
const { fork } = require('node:child_process')
const { createHash } = require('node:crypto')
const { SharedMemory, zeroCopySupported } = require('..') // this package, from dist/ (run `npm run build` first)

const HEAD = 0 // word index of the head (the producer moves it)
const TAIL = 1 // word index of the tail (the consumer moves it)
const DATA = 64 // the ring's first byte
const CAPACITY = 4096 // bytes in the ring: a power of two, small enough that it fills up often
const RECORD_HEADER = 12
const END = 0xffffffff
const MAX_PAYLOAD = 1000

const checksum = (bytes) => createHash('sha256').update(bytes).digest().subarray(0, 8)

/** Message i's payload: 1 to MAX_PAYLOAD bytes, the SHA-256 of `message <i>` repeated; its first two bytes pick the length. */
function payloadOf(i) {
  const seed = createHash('sha256').update(`message ${i}`).digest()
  return Buffer.alloc(1 + (seed.readUInt16LE(0) % MAX_PAYLOAD), seed)
}

/** The ring's memory through a zero-copy view: Atomics on the indices, typed arrays on the bytes. */
class ZeroCopyAccess {
  constructor(shm) {
    this.view = shm.attach()
    this.words = new Int32Array(this.view.buffer, 0, 2)
    this.bytes = new Uint8Array(this.view.buffer, DATA, CAPACITY)
  }
  load(word) {
    return Atomics.load(this.words, word) >>> 0
  }
  store(word, value) {
    Atomics.store(this.words, word, value | 0)
  }
  write(pos, src) {
    this.bytes.set(src, pos)
  }
  /** The bytes themselves, no copy. */
  read(pos, length) {
    return this.bytes.subarray(pos, pos + length)
  }
  close() {
    this.view.detach()
  }
}

/**
 * The same through the copy API, for runtimes without zero-copy buffers. The copy API has no
 * atomic load or store: an index is read and written as a 4-byte aligned copy, a single access
 * on x86-64, where stores also stay in program order. `shm.wait`/`notify` are atomic either way.
 */
class CopyAccess {
  constructor(shm) {
    this.shm = shm
  }
  load(word) {
    return this.shm.read(word * 4, 4).readUInt32LE(0)
  }
  store(word, value) {
    const b = Buffer.alloc(4)
    b.writeUInt32LE(value >>> 0)
    this.shm.write(b, word * 4)
  }
  write(pos, src) {
    this.shm.write(src, DATA + pos)
  }
  read(pos, length) {
    return this.shm.read(DATA + pos, length)
  }
  close() {}
}

/** One end of the ring. Indices are free-running; `& (CAPACITY - 1)` gives the position. */
class Ring {
  constructor(shm, signal) {
    this.shm = shm
    this.signal = signal // ends a wait if the other side is gone
    this.mem = zeroCopySupported ? new ZeroCopyAccess(shm) : new CopyAccess(shm)
    // Attach the copy API's mapping (which wait/notify use too) now rather than at first use:
    // once the segment is marked for removal, a process that is not attached may not reach it.
    shm.read(0, 4)
    this.waits = 0 // how many times this side slept
  }

  #copyIn(index, src) {
    const pos = index & (CAPACITY - 1)
    const first = Math.min(src.length, CAPACITY - pos)
    this.mem.write(pos, src.subarray(0, first))
    if (first < src.length) this.mem.write(0, src.subarray(first))
  }

  #view(index, length) {
    const pos = index & (CAPACITY - 1)
    if (pos + length <= CAPACITY) return this.mem.read(pos, length)
    const first = CAPACITY - pos // the record wraps: only here is it copied out
    return Buffer.concat([this.mem.read(pos, first), this.mem.read(0, length - first)])
  }

  /** Producer: appends one record, sleeping while the ring has no room for it. */
  async put(payload, length = payload.length) {
    const record = Buffer.alloc(RECORD_HEADER + payload.length)
    record.writeUInt32LE(length, 0)
    checksum(payload).copy(record, 4)
    payload.copy(record, RECORD_HEADER)
    if (record.length > CAPACITY) throw new RangeError('message larger than the ring')
    const head = this.mem.load(HEAD)
    for (;;) {
      const tail = this.mem.load(TAIL)
      if (CAPACITY - ((head - tail) >>> 0) >= record.length) break
      this.waits++
      await this.shm.wait(TAIL * 4, tail | 0, { signal: this.signal }) // returns at once if the tail moved meanwhile
    }
    this.#copyIn(head, record)
    this.mem.store(HEAD, head + record.length) // publish: after the bytes
    this.shm.notify(HEAD * 4)
  }

  /** Consumer: the next payload (a view into the ring until `release`), or null at the end. */
  async take() {
    const tail = this.mem.load(TAIL)
    for (;;) {
      const head = this.mem.load(HEAD)
      if (head !== tail) break
      this.waits++
      await this.shm.wait(HEAD * 4, head | 0, { signal: this.signal })
    }
    const header = Buffer.from(this.#view(tail, RECORD_HEADER))
    const length = header.readUInt32LE(0)
    if (length === END) return null
    const payload = this.#view(tail + RECORD_HEADER, length)
    const ok = checksum(payload).equals(header.subarray(4, 12))
    return { payload, ok, size: RECORD_HEADER + length }
  }

  /** Consumer: frees the record `take` returned, and wakes the producer if it waits for room. */
  release(record) {
    this.mem.store(TAIL, this.mem.load(TAIL) + record.size)
    this.shm.notify(TAIL * 4)
  }

  close() {
    this.mem.close()
  }
}

async function consumer(shmId) {
  const shm = SharedMemory.fromId(shmId)
  const producerGone = new AbortController() // a consumer waiting for data must not wait forever
  const onDisconnect = () => producerGone.abort(new Error('the producer is gone'))
  const ring = new Ring(shm, producerGone.signal)
  const digest = createHash('sha256')
  let messages = 0
  let bad = 0
  let bytes = 0
  try {
    process.on('disconnect', onDisconnect)
    process.send({ attached: true })
    for (let record; (record = await ring.take()) !== null;) {
      messages++
      if (!record.ok) bad++
      bytes += record.payload.length
      digest.update(record.payload) // hashed in place, before the slot is given back
      ring.release(record)
    }
  } finally {
    ring.close()
    shm.close()
    process.off('disconnect', onDisconnect)
  }
  const hex = digest.digest('hex')
  console.log(
    `consumer ${process.pid}: ${messages} messages, ${bytes} bytes, ${bad} bad checksums, stream sha256 ${hex}, slept ${ring.waits} times (ring empty)`,
  )
  process.send({ summary: { messages, bad, bytes, digest: hex } })
}

/** Resolves with the first message of `child` that `pick` accepts; rejects if the child ends first. */
function messageFrom(child, pick) {
  return new Promise((resolve, reject) => {
    child.on('message', (m) => pick(m) && resolve(m))
    child.once('close', (code, signal) =>
      reject(new Error(`the consumer ended (${signal ?? code}) before it reported`)),
    )
  })
}

async function main() {
  const count = Number(process.argv[2] ?? 2000)
  console.log(
    zeroCopySupported
      ? 'zero-copy: the ring is used through shm.attach() (Atomics on the indices)'
      : 'zero-copy is not supported in this runtime: using the copy API (shm.read/shm.write) instead',
  )
  const shm = SharedMemory.create({ size: DATA + CAPACITY })
  let child
  let ring
  let removed = false
  try {
    console.log(`producer ${process.pid}: segment id ${shm.id}, ${CAPACITY}-byte ring`)
    child = fork(__filename, ['--consumer', String(shm.id)])
    const consumerGone = new AbortController() // a producer waiting for room must not wait forever
    child.once('exit', (code, signal) => consumerGone.abort(new Error(`the consumer exited (${signal ?? code})`)))
    ring = new Ring(shm, consumerGone.signal)
    const attached = messageFrom(child, (m) => m.attached)
    const report = messageFrom(child, (m) => m.summary)
    report.catch(() => {}) // awaited below; do not let an early failure go unhandled meanwhile
    const exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)))
    await attached
    // Both processes are attached: mark it for removal now. The kernel frees it when both have
    // detached, even if both are killed.
    shm.remove()
    removed = true
    console.log(`producer ${process.pid}: consumer ${child.pid} attached; segment ${shm.id} marked for removal`)

    const digest = createHash('sha256')
    let bytes = 0
    for (let i = 0; i < count; i++) {
      const payload = payloadOf(i)
      digest.update(payload)
      bytes += payload.length
      await ring.put(payload)
    }
    await ring.put(Buffer.alloc(0), END)
    const hex = digest.digest('hex')
    console.log(
      `producer ${process.pid}: ${count} messages, ${bytes} bytes, stream sha256 ${hex}, slept ${ring.waits} times (ring full)`,
    )

    const { summary: got } = await report
    const code = await exited
    const same = got.messages === count && got.bytes === bytes && got.digest === hex
    console.log(
      `checksums: ${got.messages - got.bad}/${got.messages} OK; stream digest ${same ? 'matches' : 'DIFFERS'}; consumer exited with ${code}`,
    )
    if (!same || got.bad !== 0 || code !== 0) throw new Error('the consumer did not get what was sent')
  } finally {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    ring?.close()
    if (!removed) shm.remove()
    shm.close()
    console.log(`removed segment ${shm.id} (the kernel frees it when no process has it attached)`)
  }
}

if (process.argv[2] === '--consumer') {
  consumer(Number(process.argv[3])).catch((err) => {
    console.error(err)
    process.exitCode = 1
  })
} else {
  main().catch((err) => {
    console.error(err)
    process.exitCode = 1
  })
}
