'use strict'
/**
 * The JavaScript floor of Channel's rows between two Node processes: the same kind of ring in
 * shared memory and the same waits (give the CPU away with `sched_yield`, through ipckit's
 * addon, and look again), written with nothing else: fixed 64-byte slots, no lengths or flags,
 * no checks of what the other side wrote, no sleeps (a side that finds nothing yields again),
 * no options, no end of input. Each side `await`s a resolved promise per send, and takes each
 * message into a Buffer of its own (a `for await` over the ring, or a promise per receive), as
 * Channel's API does. What this costs is what any implementation of that API in JavaScript
 * pays on top of the kernel's context switches; `bench/suites/channel.js` runs it beside
 * Channel. Both sides run only while a sample asks (no spinning between samples).
 *
 * As a child, given a System V segment's id:
 *   node js-floor.js ID    prints "ready" once attached; then per stdin line
 *                          "echo N"     sends back N messages, then prints "done";
 *                          "produce N"  sends N 64-byte messages, then prints "sent"
 *
 * @example
 * const { FloorRing, SEGMENT_SIZE } = require('../peers/js-floor')
 * const ring = new FloorRing(view.buffer, 0)
 * await ring.send(payload); const echo = await ring.receive()
 */

const { SharedMemory } = require('../../dist')
const { native } = require('../../dist/native')

const SLOT = 64
/** Slots per ring (1 MiB of them, as the Channel stream row's capacity). */
const SLOTS = 1 << 14
const RING_BYTES = SLOT * SLOTS
const HEADER = 4096
/** Two rings: 0 from the side that made the segment to the child, 1 back. */
const SEGMENT_SIZE = HEADER + 2 * RING_BYTES
/** Yields in a row that found nothing before a side gives up (the other side is gone). */
const PATIENCE = 1 << 22
const SENT = Promise.resolve()

/** Buffers the cheapest way (Node's FastBuffer, as ipckit's newBuffer). */
const NewBuffer = Buffer[Symbol.species]

class FloorRing {
  /** `side` 0 writes ring 0 and reads ring 1; side 1 the other way round. */
  constructor(memory, side) {
    this.memory = memory
    this.i32 = new Int32Array(memory)
    this.u8 = new Uint8Array(memory)
    // Each index word on a cache line of its own.
    this.txTail = (side * 128) >> 2
    this.txHead = (side * 128 + 64) >> 2
    this.rxTail = ((1 - side) * 128) >> 2
    this.rxHead = ((1 - side) * 128 + 64) >> 2
    this.txData = HEADER + side * RING_BYTES
    this.rxData = HEADER + (1 - side) * RING_BYTES
    this.sent = Atomics.load(this.i32, this.txTail)
    this.headSeen = Atomics.load(this.i32, this.txHead)
    this.taken = Atomics.load(this.i32, this.rxHead)
    this.tailSeen = this.taken
  }

  /** Writes one 64-byte message, yielding while the ring is full; a resolved promise. */
  send(payload) {
    if (this.sent - this.headSeen >= SLOTS) {
      let misses = 0
      while (this.sent - (this.headSeen = Atomics.load(this.i32, this.txHead)) >= SLOTS) {
        if (++misses === PATIENCE) throw new Error('js-floor: the reader took nothing for too long')
        native.yieldCpu()
      }
    }
    this.u8.set(payload, this.txData + (this.sent & (SLOTS - 1)) * SLOT)
    Atomics.store(this.i32, this.txTail, ++this.sent)
    return SENT
  }

  /** The next message in a Buffer of its own, yielding while there is none. */
  take() {
    if (this.taken === this.tailSeen) {
      let misses = 0
      while (this.taken === (this.tailSeen = Atomics.load(this.i32, this.rxTail))) {
        if (++misses === PATIENCE) throw new Error('js-floor: the writer sent nothing for too long')
        native.yieldCpu()
      }
    }
    const out = new NewBuffer(SLOT)
    out.set(new Uint8Array(this.memory, this.rxData + (this.taken & (SLOTS - 1)) * SLOT, SLOT))
    Atomics.store(this.i32, this.rxHead, ++this.taken)
    return out
  }

  receive() {
    return Promise.resolve(this.take())
  }

  next() {
    return Promise.resolve({ done: false, value: this.take() })
  }

  [Symbol.asyncIterator]() {
    return this
  }
}

async function child() {
  const view = SharedMemory.fromId(Number(process.argv[2])).attach()
  const ring = new FloorRing(view.buffer, 1)
  const payload = Buffer.alloc(SLOT, 'x')
  console.log('ready')
  const readline = require('node:readline')
  for await (const line of readline.createInterface({ input: process.stdin })) {
    const [what, count] = line.split(' ')
    const n = Number(count)
    let i = 0
    if (what === 'echo') {
      if (n > 0) {
        for await (const m of ring) {
          await ring.send(m)
          if (++i === n) break
        }
      }
      console.log('done')
    } else if (what === 'produce') {
      for (; i < n; i++) await ring.send(payload)
      console.log('sent')
    } else {
      throw new Error(`js-floor: unknown command ${line}`)
    }
  }
  view.detach()
}

if (require.main === module) {
  child().catch((err) => {
    console.error(err)
    process.exit(1)
  })
}

module.exports = { FloorRing, SEGMENT_SIZE, SLOT }
