/**
 * Channel: messages between processes through a ring in shared memory, at the speed of memory.
 * The layout and protocol are `include/ipckit/channel.h`; the Rust core (`channel.rs`)
 * implements them for the copying path, and this module runs them itself over a zero-copy
 * view of the ring where the runtime allows one.
 *
 * @module
 */

import { constants as osConstants } from 'node:os'
import { deserialize, serialize } from 'node:v8'

import {
  AbortError,
  IpcError,
  callNative,
  invalidArgValue,
  invalidState,
  limitDetail,
  outOfRange,
  type ErrorDetail,
} from './errors'
import { adoptedFd, closeOwnedFd, ownFd } from './fd'
import { native, type Reactor } from './native'
import { newBuffer } from './pool'
import { WaitGroup, startWait, waitFd } from './reactor'
import { zeroCopySupported } from './shared-memory'
import { YieldGate, tryAfterYield } from './yield'
import { validateFd } from './unix-socket'
import {
  optionalBoolean,
  optionalInteger,
  toBytes,
  validateAbortSignal,
  validateMode,
  validateOneOf,
  validateOptions,
  validateInteger,
  validateKey,
  validatePosixName,
} from './validate'

type ShmMapping = ReturnType<typeof native.memfdMap>
type NativeRing = InstanceType<typeof native.ChannelRing>

/** What can be sent: a string (as UTF-8), a Buffer or Uint8Array, any other TypedArray or DataView. */
export type ChannelData = string | ArrayBufferView

/** Options of {@link Channel.create}. */
export interface ChannelCreateOptions {
  /**
   * Bytes of each ring: a power of two from 64 to 2^30. Default 1 MiB. The largest message is
   * this less 8 bytes ({@link Channel.maxMessageSize}).
   */
  capacity?: number
  /** Two rings, one each way: both ends send and receive. Default `false` (one-way). */
  duplex?: boolean
  /**
   * What this end of a one-way channel does: `'writer'` (the default) or `'reader'`; the end
   * opened from {@link Channel.fds} or by name does the other.
   */
  role?: 'writer' | 'reader'
  /**
   * A POSIX shared memory name (`'/my-app'`): the channel lives in that object, and an
   * unrelated process opens it with {@link Channel.open} instead of receiving descriptors.
   * Sleepers are then woken through futex words (a waiting receive or send takes a thread of
   * the addon, one per channel direction) instead of eventfds on the event loop. The name is
   * removed as soon as the other end has opened it (or when this end closes).
   */
  name?: string
  /**
   * A System V key (`ftok`, or {@link IPC_PRIVATE} for a new segment only its {@link Channel.id}
   * finds): the channel lives in a System V shared memory segment that another process opens
   * with {@link Channel.open}(key) or {@link Channel.fromId}(id). Woken through futex words, as
   * a named channel is. The segment is removed as soon as the other end has attached it (or
   * when this end closes). Not with `name`.
   */
  key?: number
  /** Permission bits of a named or System V channel. Default `0o600`. */
  mode?: number
  /**
   * How many processes write into the channel over its life: 1 (the default: one writer, one
   * reader) or 2 to 256 for a one-way channel that several writers share (fan-in: a parent's
   * workers, or unrelated processes opening it by name), each message written whole under a
   * lock in the ring, in each writer's order. Each writer joins once: this end (unless
   * `role: 'reader'`), then every {@link Channel.fromFds} / {@link Channel.open} after the
   * reader's (`EBUSY` past the count). The reader's input ends once every one of them has
   * joined and then closed or died; a name or System V segment stays until all have joined.
   * Layout version 2 (`include/ipckit/channel.h`): a peer that knows only version 1 refuses it.
   */
  writers?: number
}

/** Options of {@link Channel.send} and {@link Channel.post}. */
export interface ChannelSendOptions {
  /** Cancels a send that waits for room (it rejects with an `AbortError`; nothing was written). */
  signal?: AbortSignal
}

/** Options of {@link Channel.sendSync} and {@link Channel.postSync}. */
export interface ChannelSendSyncOptions {
  /** `false`: throw `EAGAIN` instead of blocking while the ring has no room. Default `true`. */
  wait?: boolean
}

/** Options of {@link Channel.receive} and {@link Channel.messages}. */
export interface ChannelReceiveOptions {
  /** Cancels a receive that waits (it rejects with an `AbortError`; nothing was taken). */
  signal?: AbortSignal
  /**
   * Hand out bytes in place: a Buffer over the message in the ring itself, no copy. It stays
   * valid until the next receive (or {@link Channel.close}), which neuters it (its length
   * becomes 0), so no value can ever reach memory the writer reuses. A message that wraps
   * around the ring's end is handed out in place too, from a second mapping of the ring (the
   * ring twice, back to back, made at the first such message) where the capacity is a
   * multiple of the page size and this end holds the channel's descriptor (a memfd channel,
   * or the end that made a named one), else copied (and neutered at the next receive all the
   * same);
   * every message where the runtime refuses external buffers (Electron) is copied. Default
   * `false`.
   */
  zeroCopy?: boolean
}

/** Options of {@link Channel.receiveSync}. */
export interface ChannelReceiveSyncOptions {
  /** `false`: throw `EAGAIN` instead of blocking while the ring is empty. Default `true`. */
  wait?: boolean
  /** As {@link ChannelReceiveOptions.zeroCopy}. */
  zeroCopy?: boolean
}

const DEFAULT_CAPACITY = 1 << 20
const MIN_CAPACITY = 64
const MAX_CAPACITY = 2 ** 30
const POSTED = 1
const NAME_MAX = 255
const MAX_WRITERS = 256

// Word indices (the header's byte offsets / 4): see include/ipckit/channel.h.
const sideWord = (side: number, field: number): number => (64 + 64 * side + field) >> 2
const ringWord = (ring: number, field: number): number => (256 + 192 * ring + field) >> 2
const SIDE_CLOSED = 4
const RING_TAIL = 0
const RING_HEAD = 64
const RING_READER_WAITING = 128
const RING_WRITER_WAITING = 132
/** Version 2 (several writers): the ring's lock word, and how many writers are done. */
const RING_LOCK = 4
const RING_LOCK_WAITING = 136
const WRITERS_DONE_WORD = 28 >> 2
/** How long a writer of several sleeps before it looks at a lock's owner again (crash takeover). */
const LOCK_RECHECK_MS = 50

/**
 * This JavaScript thread's id (`gettid`; the main thread's is the process's pid), which it
 * stores in the side or writer's slot it claims: a peer watches that thread, so the end held
 * by a Worker ends with the Worker (terminated, or left without `close()`), not only when its
 * process does. (Each thread loads this module on its own.)
 */
const OWN_ID: number = native.channelLockId()

/**
 * Whether a peer that is a Worker's thread is watched through a pidfd of that thread (Linux
 * 6.9's `PIDFD_THREAD`). `IPCKIT_NO_THREAD_PIDFD=1` makes ipckit look at such a peer every
 * {@link DEATH_CHECK_MS} instead, as it does on older kernels (for the tests of that path).
 */
const THREAD_PIDFD = !process.env.IPCKIT_NO_THREAD_PIDFD

/** `%TypedArray%.prototype.length`'s getter, the engine's own. */
const TYPED_ARRAY_LENGTH = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(Uint8Array.prototype), 'length')!
  .get as (this: Uint8Array) => number

/**
 * How many bytes a message's Uint8Array holds, as the engine knows it: what `set` copies into
 * the ring. Not its `length` or `byteLength` property, which a subclass's getter or an own
 * property may make lie: a smaller one would have the copy run past the message's record,
 * over messages not yet read, and past the check against the largest message.
 */
function byteCount(bytes: Uint8Array): number {
  return TYPED_ARRAY_LENGTH.call(bytes)
}

/** Nothing to take, or no room: try again after a wake. */
const NONE = Symbol('none')
/** Ends an iterator's pending receive without an error. */
const ITERATION_ENDED = Symbol('iteration ended')
/** The options of a call given none (no object made per call on the hot paths). */
const NO_OPTIONS: Readonly<
  ChannelReceiveOptions & ChannelSendOptions & ChannelSendSyncOptions & ChannelReceiveSyncOptions
> = Object.freeze({})
/** A resolved promise for sends that needed no wait. */
const SENT: Promise<void> = Promise.resolve()

function errno(code: string): number {
  const n = (osConstants.errno as Record<string, number>)[code]
  return n === undefined ? -1 : -n
}

/** A system error of the channel itself (no system call failed): `EPIPE`, `ECONNRESET`, `EPROTO`, `EAGAIN`. */
function channelError(code: string, text: string, syscall: string, info: string): IpcError {
  return new IpcError({ code, errno: errno(code), syscall, message: `${code}: ${text}, ${syscall} (${info})` })
}

function broken(syscall: string): IpcError {
  return channelError(
    'EPROTO',
    'protocol error',
    syscall,
    'the peer wrote an impossible index or length into the ring; the channel is unusable',
  )
}

/** A pending async receive. */
interface Receiver {
  zeroCopy: boolean
  resolve(value: unknown): void
  reject(err: unknown): void
  signal: AbortSignal | undefined
  onAbort: (() => void) | undefined
}

/** A pending async send. */
interface Sender {
  bytes: Uint8Array
  flags: number
  resolve(): void
  reject(err: unknown): void
  signal: AbortSignal | undefined
  onAbort: (() => void) | undefined
}

/** The writing end of one ring. */
interface TxRing {
  /** -1 no room yet, 0 written, 1 written and the reader must be woken; throws `EPROTO`. */
  trySend(bytes: Uint8Array, length: number, flags: number): number
  /** Announces a sleep until `length` bytes fit, re-checks: whether to sleep now. */
  prepareSleep(length: number): boolean
  /** A writer of several: the last `prepareSleep` found the ring's lock held by another. */
  readonly waitsForLock?: boolean
}

/** The reading end of one ring. */
interface RxRing {
  /** Takes a message (`NONE` if empty); sets `flags` and `wake`. Throws `EPROTO`. */
  take(zeroCopy: boolean): Buffer | typeof NONE
  /** Lets go of the message handed out in place, if any (neutered, then its room freed). */
  release(): void
  /** {@link release}, and lets go of what the ring mapped for itself (at close). */
  dispose(): void
  prepareSleep(): boolean
  flags: number
  /** Waking the writer is due (after `take` or `release`). */
  wake: boolean
}

/**
 * Writes a record (header, then payload, wrapping at the ring's end) at data position `pos` of
 * the ring whose data starts at byte `data`, with plain stores: the caller publishes it.
 */
function putRecord(
  i32: Int32Array,
  u8: Buffer,
  data: number,
  cap: number,
  pos: number,
  bytes: Uint8Array,
  length: number,
  flags: number,
): void {
  const at = (data + pos) >> 2
  i32[at] = length
  i32[at + 1] = flags
  const start = (pos + 8) & (cap - 1)
  const first = cap - start
  if (length <= first) {
    u8.set(bytes, data + start)
  } else {
    u8.set(bytes.subarray(0, first), data + start)
    u8.set(bytes.subarray(first), data)
  }
}

/** A ring end run in JavaScript over a zero-copy view of the mapping. */
class JsRing implements TxRing, RxRing {
  flags = 0
  wake = false
  readonly #i32: Int32Array
  readonly #u8: Buffer
  readonly #memory: ArrayBuffer
  readonly #data: number
  readonly #cap: number
  readonly #tail: number
  readonly #head: number
  readonly #readerWaiting: number
  readonly #writerWaiting: number
  /** The writer's tail, or the reader's head (the only copy this end trusts). */
  #index: number
  /**
   * The other end's index as this end last loaded (and checked) it: the writer's view of the
   * head, the reader's of the tail. It only moves forward, so room (or data) it shows is there:
   * the shared word is loaded again only when it shows too little.
   */
  #seen: number
  /**
   * The message handed out in place: its buffer and record size, and the mapping it is of
   * (`undefined` while {@link #view} is a wrapped message's copy, not the ring's memory).
   */
  #view: ArrayBuffer | undefined
  #viewMapping: ShmMapping | undefined
  #held = 0
  /**
   * The memory of the last zero-copy receive of a message that wraps around the ring's end
   * (which no single view of the ring can show): reused for the next such message of the
   * same length, so that a stream of large messages does not fault in a new buffer's pages
   * for each one in 16 that wraps (~700 µs for 1 MiB, against ~60 µs for the copy itself).
   */
  #wrapCopy: ArrayBuffer | undefined
  /**
   * A reader's second mapping of its ring's data, mapped twice back to back, so that a
   * message wrapping around the ring's end is contiguous in it and handed out in place too
   * (no copy: a 1 MiB message costs a view, not ~50 µs of copying): made at the first
   * zero-copy receive of a wrapped message, from the descriptor of the channel's memory
   * (`null`: none could be made, for an end with no descriptor (a System V channel, or an end
   * that opened a named one), a capacity that is not a multiple of the page size or an
   * address space that is full; such messages are copied).
   */
  #mirror: ShmMapping | null | undefined
  /** The descriptor of the channel's memory, for {@link #mirror} (a reader's, where it has one). */
  readonly #mirrorFd: number | undefined

  constructor(
    memory: ArrayBuffer,
    readonly mapping: ShmMapping,
    ring: number,
    dataOffset: number,
    capacity: number,
    writer: boolean,
    mirrorFd?: number,
  ) {
    this.#i32 = new Int32Array(memory)
    this.#u8 = Buffer.from(memory, 0, memory.byteLength)
    this.#memory = memory
    this.#data = dataOffset + ring * capacity
    this.#mirrorFd = mirrorFd
    this.#cap = capacity
    this.#tail = ringWord(ring, RING_TAIL)
    this.#head = ringWord(ring, RING_HEAD)
    this.#readerWaiting = ringWord(ring, RING_READER_WAITING)
    this.#writerWaiting = ringWord(ring, RING_WRITER_WAITING)
    this.#index = Atomics.load(this.#i32, writer ? this.#tail : this.#head) >>> 0
    if (this.#index % 8 !== 0) throw broken('channel')
    // Nothing seen yet: no room (the writer), no data (the reader).
    this.#seen = writer ? (this.#index - capacity) >>> 0 : this.#index
  }

  #free(): number {
    const head = Atomics.load(this.#i32, this.#head) >>> 0
    const used = (this.#index - head) >>> 0
    if (used > this.#cap || head % 8 !== 0) throw broken('channel send')
    this.#seen = head
    return this.#cap - used
  }

  trySend(bytes: Uint8Array, length: number, flags: number): number {
    const record = 8 + ((length + 7) & ~7)
    if (this.#cap - ((this.#index - this.#seen) >>> 0) < record && this.#free() < record) return -1
    const i32 = this.#i32
    putRecord(i32, this.#u8, this.#data, this.#cap, this.#index & (this.#cap - 1), bytes, length, flags)
    this.#index = (this.#index + record) >>> 0
    // Publishing: the reader sees the message from here on, whole.
    Atomics.store(i32, this.#tail, this.#index | 0)
    return Atomics.load(i32, this.#readerWaiting) !== 0 && Atomics.exchange(i32, this.#readerWaiting, 0) !== 0 ? 1 : 0
  }

  prepareSleep(length = -1): boolean {
    const i32 = this.#i32
    if (length >= 0) {
      Atomics.store(i32, this.#writerWaiting, 1)
      let ready: boolean
      try {
        ready = this.#free() >= 8 + ((length + 7) & ~7)
      } catch (err) {
        Atomics.store(i32, this.#writerWaiting, 0)
        throw err
      }
      if (ready) Atomics.store(i32, this.#writerWaiting, 0)
      return !ready
    }
    Atomics.store(i32, this.#readerWaiting, 1)
    const ready = Atomics.load(i32, this.#tail) >>> 0 !== this.#index
    if (ready) Atomics.store(i32, this.#readerWaiting, 0)
    return !ready
  }

  take(zeroCopy: boolean): Buffer | typeof NONE {
    this.wake = false
    if (this.#view !== undefined) this.release()
    const i32 = this.#i32
    const cap = this.#cap
    // Everything read from the shared memory is checked before it is used: a broken or hostile
    // peer makes this throw EPROTO, never read outside the ring. (The tail seen last was
    // checked when it was loaded.)
    let used = (this.#seen - this.#index) >>> 0
    if (used === 0) {
      const tail = Atomics.load(i32, this.#tail) >>> 0
      used = (tail - this.#index) >>> 0
      if (used === 0) return NONE
      if (used > cap || tail % 8 !== 0) throw broken('channel receive')
      this.#seen = tail
    }
    const pos = this.#index & (cap - 1)
    const at = (this.#data + pos) >> 2
    const length = i32[at]! >>> 0
    const flags = i32[at + 1]!
    const record = 8 + ((length + 7) & ~7)
    if (length > cap - 8 || record > used || (flags & ~POSTED) !== 0) throw broken('channel receive')
    this.flags = flags
    const start = this.#data + ((pos + 8) & (cap - 1))
    const first = this.#data + cap - start
    if (zeroCopy && length > 0) {
      if (length <= first) return this.#inPlace(this.mapping, start, length, record)
      // Wrapped: in one piece in the mirror (ring byte k at k and k + capacity), where there is one.
      const mirror = this.#mirrored()
      if (mirror !== null) return this.#inPlace(mirror, start - this.#data, length, record)
      // In two pieces: a copy, held as a view would be (its room is freed at once, the copy
      // is neutered at the next receive), in memory of exactly its length (its `.buffer`
      // holds this message only).
      const memory = this.#wrapCopy?.byteLength === length ? this.#wrapCopy : new ArrayBuffer(length)
      this.#wrapCopy = undefined
      const out = new Uint8Array(memory)
      out.set(new Uint8Array(this.#memory, start, first))
      out.set(new Uint8Array(this.#memory, this.#data, length - first), first)
      this.#commit(record)
      this.#view = memory
      this.#viewMapping = undefined
      this.#held = 0
      return Buffer.from(memory, 0, length)
    }
    // A copy of its own per message (as the other primitives' payloads): its `.buffer` holds
    // this message only.
    const out = newBuffer(length)
    // (TypedArray set from a view: faster than Buffer's copy for the small messages, measured.)
    if (length <= first) {
      out.set(new Uint8Array(this.#memory, start, length))
    } else {
      out.set(new Uint8Array(this.#memory, start, first))
      out.set(new Uint8Array(this.#memory, this.#data, length - first), first)
    }
    this.#commit(record)
    return out
  }

  /** Hands out `length` bytes at `offset` of `mapping` in place; its room is freed at the next receive. */
  #inPlace(mapping: ShmMapping, offset: number, length: number, record: number): Buffer {
    const memory = callNative(() => mapping.rangeBuffer(offset, length))
    this.#view = memory
    this.#viewMapping = mapping
    this.#held = record
    return Buffer.from(memory, 0, length)
  }

  /** {@link #mirror}, made on first use; `null` where it cannot be. */
  #mirrored(): ShmMapping | null {
    if (this.#mirror !== undefined) return this.#mirror
    this.#mirror = null
    if (this.#mirrorFd === undefined) return null
    try {
      this.#mirror = native.mirrorMap(this.#mirrorFd, this.#data, this.#cap)
    } catch {
      // Not page-aligned, no address space left, ...: wrapped messages are copied instead.
    }
    return this.#mirror
  }

  #commit(record: number): void {
    const i32 = this.#i32
    this.#index = (this.#index + record) >>> 0
    Atomics.store(i32, this.#head, this.#index | 0)
    if (Atomics.load(i32, this.#writerWaiting) !== 0 && Atomics.exchange(i32, this.#writerWaiting, 0) !== 0)
      this.wake = true
  }

  release(): void {
    const view = this.#view
    if (view === undefined) return
    this.#view = undefined
    const mapping = this.#viewMapping
    if (mapping === undefined) {
      // Neutered by moving its memory to a new ArrayBuffer (no copy), kept for the next one;
      // unless the caller moved it away already (a transfer): then it is theirs.
      this.#wrapCopy = view.byteLength === 0 ? undefined : structuredClone(view, { transfer: [view] })
      return
    }
    mapping.detachRangeBuffer(view)
    this.#viewMapping = undefined
    this.#commit(this.#held)
  }

  dispose(): void {
    try {
      this.release()
    } finally {
      this.#mirror?.release()
      this.#mirror = null
    }
  }
}

/**
 * The writing end of the ring of a channel with several writers, run in JavaScript: each
 * message is written from the shared tail while this process's pid is in the ring's lock word
 * (see "SEVERAL WRITERS" in include/ipckit/channel.h). The single-writer {@link JsRing} is
 * left as it is.
 */
class SharedJsRing implements TxRing {
  readonly #i32: Int32Array
  readonly #u8: Buffer
  readonly #data: number
  readonly #cap: number
  readonly #tail: number
  readonly #head: number
  readonly #lock: number
  readonly #readerWaiting: number
  readonly #writerWaiting: number
  readonly #lockWaiting: number
  /**
   * What this end stores in the lock word: its thread's id, which a Worker has of its own, so
   * that a lock left by a Worker terminated in the middle of a send (its `finally` never runs)
   * is taken over once the thread is gone, as one left by a killed process is.
   */
  readonly #id: number = OWN_ID
  /** The lock's owner seen by the last {@link prepareSleep}, 0 if it was free. */
  #owner = 0

  constructor(
    memory: ArrayBuffer,
    readonly mapping: ShmMapping,
    dataOffset: number,
    capacity: number,
  ) {
    this.#i32 = new Int32Array(memory)
    this.#u8 = Buffer.from(memory, 0, memory.byteLength)
    this.#data = dataOffset
    this.#cap = capacity
    this.#tail = ringWord(0, RING_TAIL)
    this.#head = ringWord(0, RING_HEAD)
    this.#lock = ringWord(0, RING_LOCK)
    this.#readerWaiting = ringWord(0, RING_READER_WAITING)
    this.#writerWaiting = ringWord(0, RING_WRITER_WAITING)
    this.#lockWaiting = ringWord(0, RING_LOCK_WAITING)
  }

  /** The shared tail and the free bytes after it; throws EPROTO for impossible indices. */
  #tailAndFree(): [number, number] {
    const tail = Atomics.load(this.#i32, this.#tail) >>> 0
    const head = Atomics.load(this.#i32, this.#head) >>> 0
    const used = (tail - head) >>> 0
    if (used > this.#cap || head % 8 !== 0 || tail % 8 !== 0) throw broken('channel send')
    return [tail, this.#cap - used]
  }

  trySend(bytes: Uint8Array, length: number, flags: number): number {
    const i32 = this.#i32
    if (Atomics.compareExchange(i32, this.#lock, 0, this.#id) !== 0) return -1
    let sent = false
    try {
      sent = this.#write(bytes, length, flags)
    } finally {
      // Freeing the lock, then the flag of the writers waiting for it (the reader's handshake
      // with writers waiting for room, for the lock).
      Atomics.store(i32, this.#lock, 0)
      if (Atomics.load(i32, this.#lockWaiting) !== 0 && Atomics.exchange(i32, this.#lockWaiting, 0) !== 0)
        callNative(() => native.channelWake(this.mapping, 0, true, null))
    }
    if (!sent) return -1
    return Atomics.load(i32, this.#readerWaiting) !== 0 && Atomics.exchange(i32, this.#readerWaiting, 0) !== 0 ? 1 : 0
  }

  #write(bytes: Uint8Array, length: number, flags: number): boolean {
    const record = 8 + ((length + 7) & ~7)
    const [tail, free] = this.#tailAndFree()
    if (free < record) return false
    putRecord(this.#i32, this.#u8, this.#data, this.#cap, tail & (this.#cap - 1), bytes, length, flags)
    // Publishing: the reader sees the message from here on, whole.
    Atomics.store(this.#i32, this.#tail, (tail + record) | 0)
    return true
  }

  /**
   * While another writer holds the lock, a sleep for the lock (`lock_waiting`, which only the
   * lock's release answers); otherwise for room (`writer_waiting`, which only the reader
   * answers): a writer waiting for room is not woken by every other writer's message.
   */
  prepareSleep(length: number): boolean {
    const i32 = this.#i32
    const held = Atomics.load(i32, this.#lock) !== 0
    const flag = held ? this.#lockWaiting : this.#writerWaiting
    Atomics.store(i32, flag, 1)
    let ready: boolean
    try {
      if (held) {
        const owner = Atomics.load(i32, this.#lock)
        if (owner === 0) ready = true
        else if (owner === this.#owner && owner !== this.#id) {
          // Held by the same writer one sleep later: freed if its thread is gone.
          ready = callNative(() => native.channelTakeOverLock(this.mapping, owner >>> 0))
        } else {
          this.#owner = owner
          ready = false
        }
      } else {
        this.#owner = 0
        // Without the lock, other writers move the tail between the two loads: a pair that
        // looks impossible only means "try again" (the locked send checks the indices).
        const tail = Atomics.load(i32, this.#tail) >>> 0
        const used = (tail - (Atomics.load(i32, this.#head) >>> 0)) >>> 0
        ready = used > this.#cap || this.#cap - used >= 8 + ((length + 7) & ~7)
      }
    } catch (err) {
      Atomics.store(i32, flag, 0)
      throw err
    }
    if (ready) Atomics.store(i32, flag, 0)
    return !ready
  }

  get waitsForLock(): boolean {
    return this.#owner !== 0
  }
}

/** A ring end run by the core, copying (runtimes that refuse external buffers). */
class CoreRing implements TxRing, RxRing {
  flags = 0
  wake = false
  readonly #ring: NativeRing

  /** `lockId`: a writer of a channel with several writers, locking with this thread id. */
  constructor(mapping: ShmMapping, ring: number, writer: boolean, lockId?: number) {
    this.#ring = callNative(() => new native.ChannelRing(mapping, ring, writer, lockId ?? null))
  }

  get waitsForLock(): boolean {
    return this.#ring.waitsForLock
  }

  trySend(bytes: Uint8Array, _length: number, flags: number): number {
    return callNative(() => this.#ring.trySend(bytes, flags), protoDetail)
  }

  prepareSleep(length = -1): boolean {
    return callNative(() => this.#ring.prepareSleep(Math.max(length, 0)), protoDetail)
  }

  take(): Buffer | typeof NONE {
    this.wake = false
    const got = callNative(() => this.#ring.tryReceive(), protoDetail)
    if (got === null) return NONE
    this.flags = got.flags
    this.wake = got.wake
    return got.data
  }

  release(): void {}

  dispose(): void {}
}

function protoDetail(err: IpcError): ErrorDetail | undefined {
  if (err.code === 'EPROTO')
    return { info: 'the peer wrote an impossible index or length into the ring; the channel is unusable' }
  return undefined
}

function validateCapacity(value: unknown): number {
  const capacity = optionalInteger(value, 'options.capacity', MIN_CAPACITY, MAX_CAPACITY, DEFAULT_CAPACITY)
  if ((capacity & (capacity - 1)) !== 0)
    throw outOfRange('options.capacity', 'a power of two from 64 to 2 ** 30', capacity)
  return capacity
}

function mapDetail(what: string) {
  return (e: IpcError): ErrorDetail | undefined => {
    const limit = limitDetail(e, what, '3.17')
    if (limit !== undefined) return { info: limit }
    if (e.code === 'EPROTO')
      return { info: 'the memory does not hold an ipckit channel of this version (include/ipckit/channel.h)' }
    return undefined
  }
}

/** What a new end needs: its mapping, shape and side, and the descriptors it owns. */
interface Parts {
  mapping: ShmMapping
  rings: number
  capacity: number
  futex: boolean
  dataOffset: number
  side: number
  memfd: number | undefined
  wakeFds: [number, number] | undefined
  name: string | undefined
  /** A named channel's descriptor (kept to remove the name only while it is still this object's). */
  shmFd: number | undefined
  /** A System V channel's segment id, until the segment is removed. */
  shmId?: number | undefined
  /** How many writers the channel takes (1: a single-writer channel). */
  writers: number
  /** The writer slot this end joined (a channel with several writers), else -1. */
  slot: number
}

/**
 * A message channel over a ring in shared memory: one-way (one end writes, the other reads)
 * or duplex (two rings, both ends send and receive), between two processes (or threads).
 * Messages are byte strings ({@link send}) or values ({@link post}, `v8.serialize`), taken in
 * the order they were sent, each whole or not at all.
 *
 * Sending copies the message into the ring; receiving copies it out, or hands it out in place
 * ({@link ChannelReceiveOptions.zeroCopy}). While the reader keeps up, neither side makes a
 * system call: a side that finds nothing to do says in the ring that it sleeps, and only then
 * does the other side wake it, through an eventfd that its event loop's own poller watches
 * (no thread in between), or a futex word for channels opened by name.
 *
 * Hand a channel to a child through {@link fds} (`spawn`'s `stdio`, or `fds` over a UNIX
 * socket), which opens the other end with {@link Channel.fromFds}; or create it under a
 * `name` (POSIX shared memory) or a `key` (a System V segment) that another process opens with
 * {@link Channel.open} (or {@link Channel.fromId}).
 *
 * Each ring has one writer and one reader: a second process that tries to open an end that
 * is taken fails with `EBUSY`; unless the channel was made for several writers
 * ({@link ChannelCreateOptions.writers}): then up to that many processes write its one ring,
 * each message whole, each writer's in its order, and the reader's input ends once all of them
 * joined and closed. A peer that closes ends the other side's iteration once the
 * ring is drained (`EPIPE` for a lone `receive()`, and for sends); a peer that dies without
 * closing (its pidfd says so) makes waits fail with `ECONNRESET` instead of hanging; a writer
 * killed in the middle of a message never exposes a part of it.
 *
 * @example
 * ```ts
 * import { Channel } from 'ipckit'
 * import { spawn } from 'node:child_process'
 *
 * const ch = Channel.create({ duplex: true })
 * const child = spawn(process.execPath, ['worker.js'], { stdio: ['inherit', 'inherit', 'inherit', ...ch.fds] })
 * await ch.send('ping')
 * const answer = await ch.receive()        // a Buffer
 *
 * // worker.js
 * const ch = Channel.fromFds([3, 4, 5])
 * for await (const msg of ch) await ch.send(msg)
 * ```
 */
export class Channel implements Disposable, AsyncDisposable, AsyncIterable<Buffer> {
  /** Bytes of each ring. */
  readonly capacity: number
  /** The largest message: {@link capacity} less the 8 bytes of a record's header. */
  readonly maxMessageSize: number
  /** Whether the channel has a ring each way. */
  readonly duplex: boolean
  /** Whether this end sends (the writer of a one-way channel, or either end of a duplex one). */
  readonly canSend: boolean
  /** Whether this end receives. */
  readonly canReceive: boolean
  /**
   * How many writers the channel takes: 1, or the `writers` of {@link ChannelCreateOptions}
   * for a channel that several processes write into.
   */
  readonly writers: number
  /** The writer slot of this end of a channel with several writers (-1 otherwise). */
  readonly #slot: number
  /** This end is the reader of a channel with several writers: its peer is a set of writers. */
  readonly #fanIn: boolean
  /** The word index of the other side's `closed` (see {@link #put}). */
  readonly #peerClosedWord: number
  /** The name of a named channel, while it has one (`undefined` once removed, and for memfd channels). */
  #name: string | undefined
  #shmId: number | undefined
  /**
   * The descriptors that carry the channel to another process, in this order: the memfd, the
   * eventfd of side 0, the eventfd of side 1 (empty for a named channel). They stay this
   * object's: pass them to `spawn`'s `stdio` (they are duplicated there) or send them over a
   * UNIX socket, and the receiver calls {@link Channel.fromFds}.
   */
  readonly fds: readonly number[]
  readonly #mapping: ShmMapping
  readonly #memory: ArrayBuffer | undefined
  readonly #i32: Int32Array | undefined
  readonly #side: number
  /** Whether this side sleeps on its futex word (else its eventfd), and whether the peer does. */
  readonly #ownFutex: boolean
  readonly #peerFutex: boolean
  readonly #wakeFds: [number, number] | undefined
  /** This side's own eventfd (eventfd wakes only). */
  readonly #ownWakeFd: number | undefined
  readonly #shmFd: number | undefined
  readonly #tx: TxRing | undefined
  readonly #rx: RxRing | undefined
  #closed = false
  /** A wake of the writer that {@link #wakeWriter} deferred, and room freed since. */
  #writerWakeDue = false
  #freedSinceDue = 0
  #writerWakeTimer: ReturnType<typeof setImmediate> | undefined
  #broken: IpcError | undefined
  readonly #receivers: Receiver[] = []
  readonly #senders: Sender[] = []
  /** Whether waits to receive, and to send, yield the CPU first (see ts/yield.ts). */
  readonly #rxGate = new YieldGate()
  readonly #txGate = new YieldGate()
  /** The wait for a wake of this side (eventfd on the poller, or a futex wait), while one runs. */
  readonly #pump = new WaitGroup()
  #pumping = false
  #pumpGen = 0
  /** The watch of the peer's pidfd, while one runs. */
  readonly #peerWatch = new WaitGroup()
  #peerFd: number | undefined
  #peerDead = false
  /** The id the peer's side holds (its thread's: a process's pid for its main thread). */
  #peerPid = 0
  /** The peer is a thread that does not lead its process (a Worker's); undefined if it was gone before anyone looked. */
  #peerThread: boolean | undefined
  /** No pidfd could be had for the peer: it is looked at every {@link DEATH_CHECK_MS}. */
  #peerPolled = false
  #deathTimer: ReturnType<typeof setTimeout> | undefined
  readonly #waits = new WaitGroup()
  /** The zero-copy message handed out by a receive, while there is one. */

  private constructor(parts: Parts) {
    this.#mapping = parts.mapping
    this.capacity = parts.capacity
    this.maxMessageSize = parts.capacity - 8
    this.duplex = parts.rings === 2
    this.#side = parts.side
    this.writers = parts.writers
    this.#slot = parts.slot
    this.#fanIn = parts.writers > 1 && parts.side === 1
    this.#peerClosedWord = sideWord(1 - parts.side, SIDE_CLOSED)
    // With several writers, side 0 (the writers) always sleeps on its futex word: an eventfd
    // wakes one of several pollers reliably, not all of them.
    const several = parts.writers > 1
    this.#ownFutex = parts.futex || (several && parts.side === 0)
    this.#peerFutex = parts.futex || (several && parts.side === 1)
    this.#wakeFds = parts.wakeFds
    this.#ownWakeFd = this.#ownFutex ? undefined : parts.wakeFds?.[parts.side]
    this.#name = parts.name
    this.#shmId = parts.shmId
    this.#shmFd = parts.shmFd
    if (parts.shmFd !== undefined) ownFd(this, parts.shmFd)
    this.fds = Object.freeze(parts.memfd === undefined ? [] : [parts.memfd, ...parts.wakeFds!])
    for (const fd of this.fds) ownFd(this, fd)
    this.canSend = this.duplex || parts.side === 0
    this.canReceive = this.duplex || parts.side === 1
    const txRing = this.duplex ? parts.side : 0
    const rxRing = this.duplex ? 1 - parts.side : 0
    if (zeroCopySupported) {
      const memory = callNative(() => parts.mapping.arrayBuffer())
      this.#memory = memory
      this.#i32 = new Int32Array(memory)
      const ring = (r: number, writer: boolean) =>
        new JsRing(
          memory,
          parts.mapping,
          r,
          parts.dataOffset,
          parts.capacity,
          writer,
          writer ? undefined : (parts.memfd ?? parts.shmFd),
        )
      if (this.canSend)
        this.#tx = several
          ? new SharedJsRing(memory, parts.mapping, parts.dataOffset, parts.capacity)
          : ring(txRing, true)
      if (this.canReceive) this.#rx = ring(rxRing, false)
    } else {
      if (this.canSend) this.#tx = new CoreRing(parts.mapping, txRing, true, several ? OWN_ID : undefined)
      if (this.canReceive) this.#rx = new CoreRing(parts.mapping, rxRing, false)
    }
  }

  /**
   * Makes a channel and returns this process's end of it: side 0 (a one-way channel's
   * writer, unless `role: 'reader'`). Without a `name` it lives in a memfd and its
   * {@link fds} carry it to the other process; with one it is a POSIX shared memory object
   * that {@link Channel.open} finds. Throws `EMFILE` (naming the open-file limit), `ENOMEM`,
   * `EEXIST` (the name is taken), `ENOSPC` (`/dev/shm` is full); `ERR_OUT_OF_RANGE` for a
   * capacity that is not a power of two from 64 to 2^30, before any system call.
   *
   * @example
   * ```ts
   * const ch = Channel.create({ capacity: 1 << 16 })              // one-way, this end writes
   * const rx = Channel.create({ role: 'reader' })                 // one-way, this end reads
   * const named = Channel.create({ name: '/jobs', duplex: true })   // Channel.open('/jobs') elsewhere
   * // Fan-in: this end reads; 4 workers each Channel.fromFds(fds) and send (each joins once).
   * const results = Channel.create({ role: 'reader', writers: 4 })
   * ```
   */
  static create(options?: ChannelCreateOptions): Channel {
    const opts = validateOptions(options)
    const capacity = validateCapacity(opts.capacity)
    const duplex = optionalBoolean(opts.duplex, 'options.duplex', false)
    const role = opts.role === undefined ? 'writer' : opts.role
    validateOneOf(role, 'options.role', ['writer', 'reader'])
    if (duplex && opts.role !== undefined)
      throw invalidArgValue(
        'options.role',
        role,
        'applies to one-way channels only (both ends of a duplex channel send and receive)',
      )
    const name = opts.name === undefined ? undefined : validatePosixName(opts.name, 'options.name', NAME_MAX)
    const key = opts.key === undefined ? undefined : validateKey(opts.key, 'options.key')
    if (name !== undefined && key !== undefined) {
      throw invalidArgValue(
        'options.key',
        key,
        'cannot go with options.name: a channel lives in a POSIX shared memory object or in a System V segment',
      )
    }
    const mode = validateMode(opts.mode, 'options.mode', 0o600)
    const writers = optionalInteger(opts.writers, 'options.writers', 1, MAX_WRITERS, 1)
    if (duplex && writers > 1)
      throw invalidArgValue(
        'options.writers',
        writers,
        'applies to one-way channels only (a duplex channel has one writer each way)',
      )
    const rings = duplex ? 2 : 1
    const side = role === 'reader' ? 1 : 0
    const size = callNative(() => native.channelSize(rings, capacity))
    const shape = { rings, capacity, writers }
    if (key !== undefined) return Channel.#createSysV(key, size, shape, side, mode)
    const owned: number[] = []
    try {
      if (name !== undefined) {
        const opened = callNative(
          () => native.posixShmOpen(name, size, true, true, false, mode),
          (e) =>
            e.code === 'EEXIST' || e.code === 'ENOSPC' || e.code === 'EACCES'
              ? { path: name, info: e.code === 'ENOSPC' ? `${size} bytes` : undefined }
              : { info: limitDetail(e, 'shm_open', '2.6') },
        )
        owned.push(opened.fd)
        const mapping = callNative(() => native.posixShmMap(opened.fd, size, false))
        const layout = callNative(() => native.channelInit(mapping, rings, capacity, true, writers))
        const slot = claimOwn(mapping, side, writers)
        const ch = new Channel({
          mapping,
          ...layout,
          side,
          slot,
          memfd: undefined,
          wakeFds: undefined,
          name,
          shmFd: opened.fd,
        })
        owned.length = 0
        return ch
      }
      const memfd = callNative(() => native.memfdCreate('ipckit-channel', size, true), mapDetail('memfd_create'))
      owned.push(memfd)
      const wake0 = callNative(() => native.eventfdCreate(0, false), mapDetail('eventfd'))
      owned.push(wake0)
      const wake1 = callNative(() => native.eventfdCreate(0, false), mapDetail('eventfd'))
      owned.push(wake1)
      const mapping = callNative(() => native.memfdMap(memfd, size, false), mapDetail('mmap'))
      const layout = callNative(() => native.channelInit(mapping, rings, capacity, false, writers))
      const slot = claimOwn(mapping, side, writers)
      const ch = new Channel({
        mapping,
        ...layout,
        side,
        slot,
        memfd,
        wakeFds: [wake0, wake1],
        name: undefined,
        shmFd: undefined,
      })
      owned.length = 0
      return ch
    } catch (err) {
      if (name !== undefined && owned.length > 0) unlinkQuietly(name, owned[0])
      closeQuietly(owned)
      throw err
    }
  }

  static #createSysV(
    key: number,
    size: number,
    { rings, capacity, writers }: { rings: number; capacity: number; writers: number },
    side: number,
    mode: number,
  ): Channel {
    const id = callNative(
      () => native.shmOpen(key, size, true, true, mode),
      (e) => ({
        info:
          e.code === 'EINVAL'
            ? `a segment of ${size} bytes; kernel.shmmax or the key's existing segment may refuse it`
            : limitDetail(e, 'shmget', '2.0'),
      }),
    )
    let mapping: ShmMapping | undefined
    try {
      mapping = callNative(() => native.shmAttach(id, false))
      const layout = callNative(() => native.channelInit(mapping!, rings, capacity, true, writers))
      const slot = claimOwn(mapping, side, writers)
      return new Channel({
        mapping,
        ...layout,
        side,
        slot,
        memfd: undefined,
        wakeFds: undefined,
        name: undefined,
        shmFd: undefined,
        shmId: id,
      })
    } catch (err) {
      removeQuietly(id)
      mapping?.release()
      throw err
    }
  }

  /** Attaches System V segment `id`, checks that it holds a channel, claims its free side, removes the segment. */
  static #openSysV(id: number, what: ErrorDetail): Channel {
    const mapping = callNative(
      () => native.shmAttach(id, false),
      () => what,
    )
    try {
      // Attached: the id is this segment's until the last detach, so removing by it is safe.
      return Channel.#joinOpened(
        mapping,
        { ...what, info: 'the segment does not hold an ipckit channel of this version' },
        () => removeQuietly(id),
      )
    } catch (err) {
      mapping.release()
      throw err
    }
  }

  /**
   * The end of an opened (named or System V) channel's mapping: checks that it holds a
   * channel (`notChannel` says what it is otherwise), claims its free side, lets go of the
   * name or segment (`forget`: nobody else may open it now), and wakes the creator.
   */
  static #joinOpened(mapping: ShmMapping, notChannel: ErrorDetail, forget: () => void): Channel {
    const layout = callNative(
      () => native.channelCheck(mapping),
      () => notChannel,
    )
    const { side, slot } = claimFree(mapping, layout.writers)
    // Nobody else may open it now: with several writers, once the reader and every writer are in.
    if (layout.writers === 1 || allJoined(mapping)) forget()
    const ch = new Channel({
      mapping,
      ...layout,
      side,
      slot,
      memfd: undefined,
      wakeFds: undefined,
      name: undefined,
      shmFd: undefined,
    })
    ch.#wakePeer()
    return ch
  }

  /**
   * Opens the other end of a channel made with `key: IPC_PRIVATE` (or any key) by its System V
   * segment id ({@link Channel.id}, or what `ipcs -m` shows), and removes the segment, which
   * nobody needs to find any more. As {@link Channel.open}.
   *
   * @example
   * ```ts
   * const ch = Channel.fromId(Number(process.argv[2]))   // the parent passed ch.id
   * ```
   */
  static fromId(id: number): Channel {
    validateInteger(id, 'id', 0, 0x7fff_ffff)
    return Channel.#openSysV(id, { info: `System V segment ${id}` })
  }

  /**
   * Opens the other end of a channel from its descriptors (what {@link fds} gave: the memfd,
   * then the two eventfds), received as a child's `stdio` or over a UNIX socket: checks that
   * they are a channel and two eventfds (`EINVAL` or `EPROTO` otherwise), and claims the free
   * side (`EBUSY` when both are taken). The object owns the descriptors from then on; when a
   * check fails they stay the caller's. (So a Worker of the same process does not open its
   * end from the other end's `fds`, whose numbers that end owns and closes: it opens a named
   * channel by name, or uses descriptors of its own, received over a UNIX socket.)
   *
   * @example
   * ```ts
   * const ch = Channel.fromFds([3, 4, 5])     // a child given ch.fds as stdio 3, 4, 5
   * ```
   */
  static fromFds(fds: readonly number[]): Channel {
    return Channel.#fromFds(fds, true)
  }

  /**
   * {@link fromFds}; `adopted`: the descriptors came from the caller (the end of this thread's
   * environment leaves them open, see ts/fd.ts), not made here ({@link pair}'s duplicates).
   */
  static #fromFds(fds: readonly number[], adopted: boolean): Channel {
    if (!Array.isArray(fds) || fds.length !== 3) {
      throw invalidArgValue('fds', fds, 'must be the three descriptors of Channel.fds: [memfd, eventfd, eventfd]')
    }
    fds.forEach((fd, i) => validateFd(fd, `fds[${i}]`))
    const [memfd, wake0, wake1] = fds as [number, number, number]
    const info = callNative(() => native.memfdInspect(memfd), mapDetail('memfd_create'))
    if (!info.writable)
      throw invalidArgValue('fds[0]', memfd, 'is open read-only; a channel end writes into the memory')
    callNative(() => native.eventfdAdopt(wake0), mapDetail('eventfd'))
    callNative(() => native.eventfdAdopt(wake1), mapDetail('eventfd'))
    const mapping = callNative(() => native.memfdMap(memfd, info.size, false), mapDetail('mmap'))
    let layout: ReturnType<typeof native.channelCheck>
    let side: number
    let slot: number
    try {
      layout = callNative(() => native.channelCheck(mapping), mapDetail('channel'))
      if (layout.futex)
        throw invalidArgValue(
          'fds',
          fds,
          'hold a named channel (woken by futex words); open it with Channel.open(name)',
        )
      ;({ side, slot } = claimFree(mapping, layout.writers))
    } catch (err) {
      mapping.release()
      throw err
    }
    const ch = new Channel({
      mapping,
      ...layout,
      side,
      slot,
      memfd,
      wakeFds: [wake0, wake1],
      name: undefined,
      shmFd: undefined,
    })
    if (adopted) for (const fd of fds) adoptedFd(fd)
    ch.#wakePeer()
    return ch
  }

  /**
   * Opens a channel made by {@link Channel.create} with a `name` (a string: that POSIX shared
   * memory object) or a `key` (a number: the System V segment of that key), in any process
   * that may open it, and claims its free side (`EBUSY` when both are taken); then removes the
   * name or segment, which nobody needs to find any more. Throws `ENOENT` (no such name or
   * key), `EACCES`, `EPROTO` (it does not hold a channel).
   *
   * @example
   * ```ts
   * const ch = Channel.open('/jobs')              // or Channel.open(ftok('/var/run/app', 1))
   * for await (const job of ch) handle(job)
   * ```
   */
  static open(name: string | number): Channel {
    if (typeof name === 'number') {
      const key = validateKey(name, 'key')
      if (key === 0)
        throw invalidArgValue('key', key, 'is IPC_PRIVATE, which finds no segment: open it with Channel.fromId(id)')
      const id = callNative(
        () => native.shmOpen(key, 0, false, false, 0),
        () => ({ info: `key 0x${(key >>> 0).toString(16)}` }),
      )
      return Channel.#openSysV(id, { info: `key 0x${(key >>> 0).toString(16)}` })
    }
    const n = validatePosixName(name, 'name', NAME_MAX)
    const opened = callNative(
      () => native.posixShmOpen(n, 0, false, false, false, 0o600),
      () => ({ path: n }),
    )
    let mapping: ShmMapping | undefined
    try {
      mapping = callNative(
        () => native.posixShmMap(opened.fd, opened.size, false),
        () => ({ path: n }),
      )
      return Channel.#joinOpened(
        mapping,
        { path: n, info: 'the object does not hold an ipckit channel of this version' },
        () => unlinkQuietly(n, opened.fd),
      )
    } catch (err) {
      mapping?.release()
      throw err
    } finally {
      closeQuietly([opened.fd])
    }
  }

  /**
   * Both ends of a new channel in this process (each with descriptors of its own): for tests,
   * and for handing one end's {@link fds} to a worker thread.
   *
   * @example
   * ```ts
   * using pair = Channel.pair({ duplex: true })
   * const [a, b] = pair
   * ```
   */
  static pair(options?: Omit<ChannelCreateOptions, 'name' | 'mode'>): [Channel, Channel] & Disposable {
    const opts = validateOptions(options)
    if ((opts as ChannelCreateOptions).name !== undefined)
      throw invalidArgValue(
        'options.name',
        (opts as ChannelCreateOptions).name,
        'is not for pair(): both ends are in this process',
      )
    const a = Channel.create(opts)
    const dups: number[] = []
    try {
      for (const fd of a.fds) dups.push(callNative(() => native.socketDuplicate(fd), mapDetail('fcntl')))
      const b = Channel.#fromFds(dups, false)
      const pair = [a, b] as [Channel, Channel] & Disposable
      pair[Symbol.dispose] = () => {
        a.close()
        b.close()
      }
      return pair
    } catch (err) {
      closeQuietly(dups)
      a.close()
      throw err
    }
  }

  /** Whether {@link close} was called. */
  get closed(): boolean {
    return this.#closed
  }

  /**
   * The System V segment id of a channel made with a `key` (what {@link Channel.fromId} takes;
   * the segment is removed once the other end attached it), else `undefined`.
   */
  get id(): number | undefined {
    return this.#shmId
  }

  /** The name of a named channel until the other end opened it (the name is removed then), else `undefined`. */
  get name(): string | undefined {
    return this.#name
  }

  #check(): void {
    if (this.#closed) throw invalidState('Channel is closed')
  }

  #txRing(): TxRing {
    this.#check()
    if (this.#tx === undefined) throw invalidState('this end of a one-way Channel receives; it cannot send')
    return this.#tx
  }

  #rxRing(): RxRing {
    this.#check()
    if (this.#rx === undefined) throw invalidState('this end of a one-way Channel sends; it cannot receive')
    return this.#rx
  }

  /** The bytes of `data`, checked against the largest message before anything is written. */
  #bytes(data: unknown, name: string): Uint8Array {
    const bytes = toBytes(data, name)
    const length = byteCount(bytes)
    if (length > this.maxMessageSize) throw this.#tooLarge(name, length)
    return bytes
  }

  #tooLarge(name: string, length: number): RangeError {
    return outOfRange(
      `${name}.byteLength`,
      `<= ${this.maxMessageSize} (the largest message a ring of ${this.capacity} bytes carries)`,
      length,
    )
  }

  // ---- the peer ---------------------------------------------------------------------------

  #word(index: number): number {
    return this.#i32 !== undefined ? Atomics.load(this.#i32, index) : -1
  }

  #peerClosed(): boolean {
    if (this.#fanIn) return this.#writersDone(false) !== undefined
    const peer = 1 - this.#side
    const v = this.#word(sideWord(peer, SIDE_CLOSED))
    return v === -1 ? callNative(() => native.channelIsClosed(this.#mapping, peer)) : v !== 0
  }

  /**
   * The reader of a channel with several writers: the writers' counts once every writer has
   * joined and then closed or died (`undefined` while some may still write). With `scan`,
   * writers whose process is gone are marked as died first.
   */
  #writersDone(scan: boolean): { died: number } | undefined {
    const i32 = this.#i32
    if (!scan && i32 !== undefined) {
      if (Atomics.load(i32, WRITERS_DONE_WORD) >>> 0 < this.writers) return undefined
    }
    const w = callNative(() => native.channelWriters(this.#mapping, scan))
    return w.done >= w.slots ? w : undefined
  }

  /**
   * The peer's pidfd, opened once its id is known (none for a peer in this thread): of its
   * process, or of its thread alone for a Worker's end. Its exit is seen by the watch of the
   * pump ({@link #watchPeer}) or by a blocking sleep, which set `#peerDead`. Where no pidfd
   * can be had (a Worker's thread before Linux 6.9, `EMFILE`), `#peerPolled`: the death
   * check looks at the thread instead.
   */
  #peer(): number | undefined {
    // The writers of a fan-in reader are looked at by #writersDone(true), not watched.
    if (this.#fanIn || this.#peerPid !== 0) return this.#peerFd
    const id = callNative(() => native.channelSidePid(this.#mapping, 1 - this.#side))
    if (id === 0) return undefined
    this.#peerPid = id
    if (id === OWN_ID) return undefined
    try {
      const watch = native.channelPeerWatch(id, THREAD_PIDFD)
      this.#peerThread = watch.thread
      if (watch.fd >= 0) {
        this.#peerFd = watch.fd
        ownFd(this, watch.fd)
      } else {
        this.#peerPolled = true
      }
    } catch (err) {
      // ESRCH: gone already.
      if ((err as { code?: string }).code === 'ESRCH') this.#peerDead = true
      else throw err
    }
    return this.#peerFd
  }

  /** Whether a peer looked at rather than watched ({@link #peerPolled}) has ended: then it is dead. */
  #pollPeer(): boolean {
    if (this.#peerPolled && !this.#peerDead && !native.channelThreadAlive(this.#peerPid)) this.#peerDead = true
    return this.#peerDead
  }

  /** The peer, for messages: `process 123`, `thread 124 (a Worker's)`, or either if it was gone before anyone looked. */
  #peerName(): string {
    const id = this.#peerPid
    if (this.#peerThread === undefined) return `process or Worker thread ${id}`
    return this.#peerThread ? `thread ${id} (a Worker's)` : `process ${id}`
  }

  #peerGone(): boolean {
    return this.#peerDead
  }

  #wakePeer(): void {
    const peer = 1 - this.#side
    callNative(() => native.channelWake(this.#mapping, peer, this.#peerFutex, this.#wakeFds?.[peer] ?? null))
  }

  /**
   * The writer waits for room and a receive made some: its wake is due. It is deferred to the
   * end of this turn of the event loop (`setImmediate`), to before this side waits or sleeps,
   * or until half the ring is free, whichever comes first: a reader draining a full ring wakes
   * its writer once per batch instead of once per message (which, on a busy or single CPU,
   * made the two processes take turns for every message).
   */
  #wakeWriter(freed: number): void {
    if (this.#rx!.wake) {
      this.#rx!.wake = false
      this.#writerWakeDue = true
      this.#freedSinceDue = 0
      this.#writerWakeTimer ??= setImmediate(this.#flushWriterWake)
    }
    if (this.#writerWakeDue && (this.#freedSinceDue += freed) >= this.capacity >>> 1) this.#flushWriterWake()
  }

  readonly #flushWriterWake = (): void => {
    if (this.#writerWakeTimer !== undefined) {
      clearImmediate(this.#writerWakeTimer)
      this.#writerWakeTimer = undefined
    }
    if (!this.#writerWakeDue) return
    this.#writerWakeDue = false
    if (!this.#closed) this.#wakePeer()
  }

  /** Why nothing more will come: `EPIPE` once the writer closed and the ring is drained, `ECONNRESET` once it died. */
  #endOfInput(): IpcError | undefined {
    if (this.#fanIn) {
      const done = this.#writersDone(false)
      if (done === undefined) return undefined
      if (done.died > 0)
        return channelError(
          'ECONNRESET',
          'connection reset by peer',
          'channel receive',
          `every writer is gone: ${done.died} of ${this.writers} exited without closing the channel; every message they finished was taken`,
        )
      return channelError(
        'EPIPE',
        'broken pipe',
        'channel receive',
        `all ${this.writers} writers closed the channel, and every message they sent was taken`,
      )
    }
    if (this.#peerClosed()) {
      return channelError(
        'EPIPE',
        'broken pipe',
        'channel receive',
        'the other end closed the channel, and every message it sent was taken',
      )
    }
    if (this.#peerGone()) {
      return channelError(
        'ECONNRESET',
        'connection reset by peer',
        'channel receive',
        `the other end, ${this.#peerName()}, exited without closing the channel; every message it finished was taken`,
      )
    }
    return undefined
  }

  #endOfOutput(): IpcError | undefined {
    if (this.#peerClosed())
      return channelError('EPIPE', 'broken pipe', 'channel send', 'the other end closed the channel')
    if (this.#peerGone())
      return channelError('EPIPE', 'broken pipe', 'channel send', `the other end, ${this.#peerName()}, exited`)
    return undefined
  }

  // ---- taking and writing -----------------------------------------------------------------

  /** One message, or `NONE`; throws at the end of input or for a broken ring. */
  #take(zeroCopy: boolean): unknown {
    if (this.#broken !== undefined) throw this.#broken
    const rx = this.#rx!
    let got: Buffer | typeof NONE
    try {
      got = rx.take(zeroCopy)
      if (got === NONE) {
        const end = this.#endOfInput()
        if (end === undefined) return NONE
        // The peer finished: what it published before that is visible now.
        got = rx.take(zeroCopy)
        if (got === NONE) throw end
      }
    } catch (err) {
      if (err instanceof IpcError && err.code === 'EPROTO') this.#broken = err
      throw err
    }
    if (rx.wake || this.#writerWakeDue) this.#wakeWriter(8 + ((got.byteLength + 7) & ~7))
    return rx.flags & POSTED ? deserialize(got) : got
  }

  /** A message now, or after giving the CPU away once (see ts/yield.ts); `NONE` if neither found one. */
  #takeSoon(zeroCopy: boolean): unknown {
    const now = this.#take(zeroCopy)
    return now !== NONE ? now : this.#takeAfterYield(zeroCopy)
  }

  /**
   * {@link #take} once more after giving the CPU away (unless recent yields found nothing):
   * a message, or `NONE`. (What it took is passed on aside: a posted value may be `undefined`
   * itself, which {@link tryAfterYield} would read as nothing found.)
   */
  #takeAfterYield(zeroCopy: boolean): unknown {
    let got: unknown = NONE
    tryAfterYield(this.#rxGate, () => {
      got = this.#take(zeroCopy)
      return got === NONE ? undefined : true
    })
    return got
  }

  /**
   * {@link #put} when it found no room: once more after giving the CPU away (a reader sharing
   * this CPU may make room meanwhile; see ts/yield.ts), unless recent yields found none.
   */
  #putAfterYield(bytes: Uint8Array, flags: number, length: number): boolean {
    return tryAfterYield(this.#txGate, () => this.#put(bytes, flags, length) || undefined) === true
  }

  /** Writes one message: whether it went in (`false`: no room yet); throws at the end of output. */
  #put(bytes: Uint8Array, flags: number, length = byteCount(bytes)): boolean {
    if (this.#broken !== undefined) throw this.#broken
    const i32 = this.#i32
    // The peer's closed word straight (the hot path), else the whole look.
    if (this.#peerDead || i32 === undefined || Atomics.load(i32, this.#peerClosedWord) !== 0) {
      const end = this.#peerClosedOrDeadFast()
      if (end !== undefined) throw end
    }
    let r: number
    try {
      r = this.#tx!.trySend(bytes, length, flags)
    } catch (err) {
      if (err instanceof IpcError && err.code === 'EPROTO') this.#broken = err
      throw err
    }
    if (r === 1) this.#wakePeer()
    return r >= 0
  }

  /** Only the shared `closed` word on the hot path; the pidfd once a wait found the peer dead. */
  #peerClosedOrDeadFast(): IpcError | undefined {
    if (this.#peerDead || this.#peerClosed()) return this.#endOfOutput()
    return undefined
  }

  // ---- sending ----------------------------------------------------------------------------

  /**
   * Sends `data` (a string as UTF-8, a Buffer, any TypedArray or DataView): copied into the
   * ring at once when there is room; otherwise the promise waits for the reader to make room
   * (backpressure), on the event loop, in the order of the calls. Rejects with
   * `ERR_OUT_OF_RANGE` for a message larger than {@link maxMessageSize} (nothing written),
   * `EPIPE` once the other end closed or exited, `AbortError` when `signal` aborts or
   * {@link close} is called while it waits (nothing was written then).
   *
   * @example
   * ```ts
   * await ch.send('hello')
   * await ch.send(new Float64Array([1, 2, 3]), { signal: AbortSignal.timeout(1000) })
   * ```
   */
  send(data: ChannelData, options?: ChannelSendOptions): Promise<void> {
    try {
      const bytes = toBytes(data, 'data')
      // Read once, through the engine's own getter (see byteCount): the `byteLength` property
      // costs ~10 ns more on Node 20, measured.
      const length = byteCount(bytes)
      if (length > this.maxMessageSize) throw this.#tooLarge('data', length)
      // No options, an open end that sends, no send waiting before this one: straight in.
      if (options === undefined && this.#tx !== undefined && !this.#closed && this.#senders.length === 0)
        return this.#put(bytes, 0, length) || this.#putAfterYield(bytes, 0, length)
          ? SENT
          : this.#queueSend(bytes, 0, undefined)
      return this.#send(bytes, 0, options)
    } catch (err) {
      return Promise.reject(err)
    }
  }

  /**
   * Sends a value as `v8.serialize` writes it (what `structuredClone` and `postMessage`
   * carry: objects, Maps, Dates, typed arrays, ...); the receiver gets it back deserialized.
   * Otherwise as {@link send}.
   *
   * @example
   * ```ts
   * await ch.post({ id: 7, at: new Date(), tags: new Set(['a']) })
   * ```
   */
  post(value: unknown, options?: ChannelSendOptions): Promise<void> {
    try {
      const bytes = this.#bytes(serialized(value), 'value (serialized)')
      return this.#send(bytes, POSTED, options)
    } catch (err) {
      return Promise.reject(err)
    }
  }

  #send(bytes: Uint8Array, flags: number, options: ChannelSendOptions | undefined): Promise<void> {
    const opts = options === undefined ? NO_OPTIONS : validateOptions(options)
    const signal = opts.signal
    validateAbortSignal(signal, 'options.signal')
    this.#txRing()
    if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason })
    if (this.#senders.length === 0) {
      const length = byteCount(bytes)
      if (this.#put(bytes, flags, length) || this.#putAfterYield(bytes, flags, length)) return SENT
    }
    return this.#queueSend(bytes, flags, signal)
  }

  /** A send that waits for room (after the sends waiting before it), served by the pump. */
  #queueSend(bytes: Uint8Array, flags: number, signal: AbortSignal | undefined): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const sender: Sender = { bytes, flags, resolve, reject, signal, onAbort: undefined }
      if (signal !== undefined) {
        sender.onAbort = () => this.#dropSender(sender, new AbortError(undefined, { cause: signal.reason }))
        signal.addEventListener('abort', sender.onAbort, { once: true })
      }
      this.#senders.push(sender)
      this.#startPump()
    })
  }

  /**
   * {@link send}, blocking the calling thread while the ring has no room (`wait: false`
   * throws `EAGAIN` instead). Throws `ERR_INVALID_STATE` while sends of {@link send} wait (it
   * would pass them).
   *
   * @example
   * ```ts
   * ch.sendSync(Buffer.from([1, 2, 3]))
   * ```
   */
  sendSync(data: ChannelData, options?: ChannelSendSyncOptions): void {
    const bytes = this.#bytes(data, 'data')
    this.#sendSync(bytes, 0, options)
  }

  /**
   * {@link post}, blocking the calling thread while the ring has no room.
   *
   * @example
   * ```ts
   * ch.postSync({ done: true })
   * ```
   */
  postSync(value: unknown, options?: ChannelSendSyncOptions): void {
    const bytes = this.#bytes(serialized(value), 'value (serialized)')
    this.#sendSync(bytes, POSTED, options)
  }

  #sendSync(bytes: Uint8Array, flags: number, options: ChannelSendSyncOptions | undefined): void {
    const opts = validateOptions(options)
    const wait = optionalBoolean(opts.wait, 'options.wait', true)
    const tx = this.#txRing()
    if (this.#senders.length > 0)
      throw invalidState('sends of send() are waiting for room; a sendSync() would pass them')
    for (;;) {
      if (this.#put(bytes, flags)) return
      if (!wait)
        throw channelError(
          'EAGAIN',
          'resource temporarily unavailable',
          'channel send',
          `the ring has no room for ${byteCount(bytes)} more bytes`,
        )
      if (this.#putAfterYield(bytes, flags, byteCount(bytes))) return
      const seq = this.#seq()
      if (tx.prepareSleep(byteCount(bytes))) this.#sleepSync(seq)
    }
  }

  // ---- receiving --------------------------------------------------------------------------

  /**
   * Takes the next message: a Buffer for one sent with {@link send}, the value for one sent
   * with {@link post}. A message that is there already resolves at once; otherwise the promise
   * waits on the event loop. Rejects with `EPIPE` once the other end closed and every message
   * was taken, `ECONNRESET` once it exited without closing (after every message it finished),
   * `EPROTO` if it broke the ring, `AbortError` on `signal` or {@link close} (nothing taken).
   *
   * @example
   * ```ts
   * const msg = await ch.receive({ signal: AbortSignal.timeout(5000) })
   * const frame = await ch.receive({ zeroCopy: true })   // valid until the next receive
   * ```
   */
  receive<T = Buffer>(options?: ChannelReceiveOptions): Promise<T> {
    try {
      const opts = options === undefined ? NO_OPTIONS : validateOptions(options)
      const zeroCopy = optionalBoolean(opts.zeroCopy, 'options.zeroCopy', false)
      const signal = opts.signal
      validateAbortSignal(signal, 'options.signal')
      this.#rxRing()
      if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason })
      return this.#receive(zeroCopy, signal, this.#waits) as Promise<T>
    } catch (err) {
      return Promise.reject(err)
    }
  }

  #receive(zeroCopy: boolean, signal: AbortSignal | undefined, group: WaitGroup): Promise<unknown> {
    if (this.#receivers.length === 0) {
      const got = this.#takeSoon(zeroCopy)
      if (got !== NONE) return Promise.resolve(got)
    }
    return this.#wait(zeroCopy, signal, group)
  }

  /** Queues a receive behind the others and starts the pump: nothing could be taken at once. */
  #wait(zeroCopy: boolean, signal: AbortSignal | undefined, group: WaitGroup): Promise<unknown> {
    return new Promise<unknown>((resolve, reject) => {
      const receiver: Receiver = { zeroCopy, resolve, reject, signal, onAbort: undefined }
      const cancel = {
        cancel: (reason: unknown) => this.#dropReceiver(receiver, new AbortError(undefined, { cause: reason })),
      }
      receiver.onAbort = () => cancel.cancel(signal!.reason)
      if (signal !== undefined) signal.addEventListener('abort', receiver.onAbort, { once: true })
      group.add(cancel)
      const done = () => {
        group.remove(cancel)
        if (signal !== undefined) signal.removeEventListener('abort', receiver.onAbort!)
      }
      receiver.resolve = (v) => {
        done()
        resolve(v)
      }
      receiver.reject = (e) => {
        done()
        reject(e)
      }
      this.#receivers.push(receiver)
      this.#startPump()
    })
  }

  /**
   * {@link receive}, blocking the calling thread while the ring is empty (`wait: false`
   * throws `EAGAIN` instead). Throws `ERR_INVALID_STATE` while receives of {@link receive}
   * wait (it would take their message).
   *
   * @example
   * ```ts
   * const msg = ch.receiveSync()
   * ```
   */
  receiveSync<T = Buffer>(options?: ChannelReceiveSyncOptions): T {
    const opts = validateOptions(options)
    const wait = optionalBoolean(opts.wait, 'options.wait', true)
    const zeroCopy = optionalBoolean(opts.zeroCopy, 'options.zeroCopy', false)
    const rx = this.#rxRing()
    if (this.#receivers.length > 0)
      throw invalidState('receives of receive() are waiting; a receiveSync() would take their message')
    for (;;) {
      const now = this.#take(zeroCopy)
      if (now !== NONE) return now as T
      if (!wait)
        throw channelError('EAGAIN', 'resource temporarily unavailable', 'channel receive', 'no message is waiting')
      const after = this.#takeAfterYield(zeroCopy)
      if (after !== NONE) return after as T
      const seq = this.#seq()
      if (rx.prepareSleep()) this.#sleepSync(seq)
    }
  }

  /**
   * The messages as they come: each `next()` takes one (at once when it is there). The loop
   * ends when the other end closed and every message was taken; it throws `ECONNRESET` if
   * the other end exited without closing. Leaving it (`break`, `signal`, {@link close}) takes
   * nothing more.
   *
   * @example
   * ```ts
   * for await (const msg of ch.messages({ signal })) handle(msg)
   * for await (const frame of ch.messages({ zeroCopy: true })) render(frame)  // each valid until the next
   * ```
   */
  messages<T = Buffer>(options?: ChannelReceiveOptions): AsyncIterableIterator<T> {
    const opts = validateOptions(options)
    const zeroCopy = optionalBoolean(opts.zeroCopy, 'options.zeroCopy', false)
    const signal = opts.signal
    validateAbortSignal(signal, 'options.signal')
    const iteration = new WaitGroup()
    let finished = false
    const done = (): IteratorResult<T> => ({ done: true, value: undefined })
    const end = (err: unknown): IteratorResult<T> => {
      finished = true
      if (err instanceof AbortError && err.cause === ITERATION_ENDED) return done()
      if (err instanceof IpcError && err.code === 'EPIPE' && err.syscall === 'channel receive') return done()
      throw err
    }
    return {
      [Symbol.asyncIterator]() {
        return this
      },
      next: (): Promise<IteratorResult<T>> => {
        if (finished) return Promise.resolve(done())
        try {
          this.#rxRing()
          if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason })
          if (this.#receivers.length === 0) {
            // As #receive, without a wait's promise and `then` per message found.
            const got = this.#takeSoon(zeroCopy)
            if (got !== NONE) return Promise.resolve({ done: false, value: got as T })
          }
          return this.#wait(zeroCopy, signal, iteration).then((value) => ({ done: false, value: value as T }), end)
        } catch (err) {
          try {
            return Promise.resolve(end(err))
          } catch (e) {
            return Promise.reject(e)
          }
        }
      },
      async return(): Promise<IteratorResult<T>> {
        finished = true
        iteration.cancelAll(ITERATION_ENDED)
        return done()
      },
    }
  }

  /** {@link messages} with no options: `for await (const msg of ch)`. */
  [Symbol.asyncIterator](): AsyncIterableIterator<Buffer> {
    return this.messages()
  }

  // ---- waiting ----------------------------------------------------------------------------

  #dropReceiver(r: Receiver, err: unknown): void {
    const at = this.#receivers.indexOf(r)
    if (at < 0) return
    this.#receivers.splice(at, 1)
    r.reject(err)
    this.#stopPumpIfIdle()
  }

  #dropSender(s: Sender, err: unknown): void {
    const at = this.#senders.indexOf(s)
    if (at < 0) return
    this.#senders.splice(at, 1)
    if (s.onAbort !== undefined) s.signal?.removeEventListener('abort', s.onAbort)
    s.reject(err)
    this.#stopPumpIfIdle()
  }

  #stopPumpIfIdle(): void {
    if (this.#receivers.length > 0 || this.#senders.length > 0 || !this.#pumping) return
    this.#endPump()
    this.#pump.cancelAll(ITERATION_ENDED)
  }

  /** Serves waiting receivers and senders in order; errors end them. */
  #serve(): void {
    const receivers = this.#receivers
    while (receivers.length > 0) {
      let got: unknown
      try {
        got = this.#take(receivers[0]!.zeroCopy)
      } catch (err) {
        // The end of input or a broken ring ends every receive; a posted value that does not
        // deserialize is that one message's failure.
        if (err instanceof IpcError) {
          for (const r of receivers.splice(0)) r.reject(err)
          break
        }
        receivers.shift()!.reject(err)
        continue
      }
      if (got === NONE) break
      receivers.shift()!.resolve(got)
    }
    const senders = this.#senders
    while (senders.length > 0) {
      const s = senders[0]!
      let sent: boolean
      try {
        sent = this.#put(s.bytes, s.flags)
      } catch (err) {
        for (const x of senders.splice(0)) {
          if (x.onAbort !== undefined) x.signal?.removeEventListener('abort', x.onAbort)
          x.reject(err)
        }
        break
      }
      if (!sent) break
      senders.shift()
      if (s.onAbort !== undefined) s.signal?.removeEventListener('abort', s.onAbort)
      s.resolve()
    }
  }

  /**
   * One round of the pump: takes the side's wake, serves the waiters, and announces a sleep
   * for what still waits, re-checking after the announcement. Whether it must wait (else
   * nothing waits any more).
   */
  #step(woken: boolean): boolean {
    // A wake is taken (the eventfd reset) only when one came: it is there to be taken then,
    // and a stale one left from a wake that was not needed only costs one more round.
    const own = this.#ownWakeFd
    if (woken && own !== undefined) callNative(() => native.eventfdRead(own, false))
    for (;;) {
      this.#serve()
      const wantData = this.#receivers.length > 0
      const wantRoom = this.#senders.length > 0
      if (!wantData && !wantRoom) return false
      let sleep = true
      try {
        if (wantData && !this.#rx!.prepareSleep()) sleep = false
        if (wantRoom && !this.#tx!.prepareSleep(byteCount(this.#senders[0]!.bytes))) sleep = false
      } catch {
        continue // a broken ring: the next #serve() rejects the waiters with it
      }
      if (sleep) {
        // A peer that closed after the announcement may not have seen it: look now. (One that
        // died is seen by the watch of its pidfd.)
        if (this.#peerClosed() || this.#peerDead) continue
        this.#flushWriterWake()
        return true
      }
    }
  }

  #seq(): number {
    return this.#ownFutex ? callNative(() => native.channelWakeSeq(this.#mapping, this.#side)) : 0
  }

  /** Runs the pump on the event loop until nothing waits. */
  #startPump(): void {
    if (this.#pumping) {
      // The pump waits already, maybe for the other direction: announce this one too.
      if (!this.#step(false)) this.#stopPumpIfIdle()
      return
    }
    this.#pumping = true
    this.#pumpRound()
  }

  #pumpRound(): void {
    // Each wait of the pump belongs to a generation: one that was stopped (or ended) must not
    // touch the state of the pump that replaced it.
    const gen = this.#pumpGen
    const seq = this.#seq()
    if (!this.#step(false)) {
      this.#endPump()
      return
    }
    this.#armDeathCheck()
    let wait: Promise<unknown>
    if (this.#ownFutex) {
      const mapping = this.#mapping
      const offset = native.channelWakeSeqOffset(this.#side)
      wait = startWait(
        (reactor: Reactor, waitId: number) => mapping.waitStart(reactor, waitId, offset, seq, null),
        () => true,
        undefined,
        [this.#pump],
      )
    } else {
      const own = this.#ownWakeFd
      if (own === undefined) throw new Error('ipckit: a channel with eventfd wakes has no eventfd')
      const attempt = (): true | undefined => {
        if (gen !== this.#pumpGen) return true
        if (this.#step(true)) return undefined
        // Nothing waits any more: the pump ends now, before anything else runs, so that the
        // next wait starts a new one.
        this.#endPump()
        return true
      }
      wait = waitFd(own, false, attempt, undefined, [this.#pump])
    }
    wait.then(
      () => {
        if (gen === this.#pumpGen && !this.#closed) this.#pumpRound()
      },
      (err) => {
        if (gen !== this.#pumpGen) return
        this.#endPump()
        if (err instanceof AbortError && err.cause === PEER_CHANGED && !this.#closed) {
          this.#startPump()
          return
        }
        if (!(err instanceof AbortError)) {
          for (const r of this.#receivers.splice(0)) r.reject(err)
          for (const s of this.#senders.splice(0)) s.reject(err)
        }
      },
    )
  }

  #endPump(): void {
    this.#pumping = false
    this.#pumpGen++
  }

  /**
   * The peer's death is watched through its pidfd on the event loop while the pump waits, but
   * the watch is set up and torn down by a timer (every {@link DEATH_CHECK_MS}, unreferenced,
   * armed while waits come and go) rather than per wait: waits that come and go many times a
   * millisecond then cost no system call for it, and a death is seen within that time.
   */
  #armDeathCheck(): void {
    if (this.#deathTimer !== undefined || this.#closed) return
    this.#deathTimer = setTimeout(() => this.#deathTick(), DEATH_CHECK_MS)
    this.#deathTimer.unref()
  }

  #deathTick(): void {
    this.#deathTimer = undefined
    if (this.#closed) return
    const several = this.writers > 1
    if (several && this.#pumping) {
      // The reader looks at every writer's process (the last one gone ends its input); a writer
      // that waits for the lock looks at its owner again (a dead one's lock is taken over).
      const rerun = this.#fanIn ? this.#writersDone(true) !== undefined : this.#tx?.waitsForLock === true
      if (rerun) this.#pump.cancelAll(PEER_CHANGED)
    }
    if (this.#pumping) this.#watchPeer()
    else this.#peerWatch.cancelAll(ITERATION_ENDED)
    // Again while a watch runs, while the pump waits for a peer that has not claimed its side,
    // or while it waits with several writers.
    if (this.#peerWatch.size > 0 || (this.#pumping && (this.#peerPid === 0 || several || this.#peerPolled)))
      this.#armDeathCheck()
  }

  /** Watches the peer's pidfd: its exit re-runs the pump, which ends the waits. */
  #watchPeer(): void {
    if (this.#peerWatch.size > 0) return
    const fd = this.#peer()
    if (fd === undefined) {
      // Gone before it could be watched (reaped already: pidfd_open said ESRCH), or looked at
      // (no pidfd) and found gone.
      if (this.#pollPeer()) this.#pump.cancelAll(PEER_CHANGED)
      return
    }
    waitFd(fd, false, () => true, undefined, [this.#peerWatch]).then(
      () => {
        this.#peerDead = true
        this.#pump.cancelAll(PEER_CHANGED)
      },
      () => {},
    )
  }

  /** Blocks until this side is woken or the peer exits (then the caller's loop finds out). */
  #sleepSync(seq: number): void {
    this.#flushWriterWake()
    // With several writers the sleep ends after a while: the reader looks at the writers'
    // processes again, a writer at the lock's owner.
    if (this.#fanIn && this.#writersDone(true) !== undefined) return
    const peer = this.#peer() ?? null
    // Gone before it could be watched or looked at (pidfd_open said ESRCH): no sleep, the
    // caller's loop finds out now.
    if (this.#peerDead) return
    // A peer looked at, not watched: the sleep ends after a while to look at it again.
    const slice = this.writers > 1 ? LOCK_RECHECK_MS : this.#peerPolled ? DEATH_CHECK_MS : null
    const fd = this.#ownWakeFd ?? null
    const r = callNative(() => native.channelSleepSync(this.#mapping, this.#side, this.#ownFutex, fd, seq, peer, slice))
    if (r === 1) this.#peerDead = true
    else if (r === 2) this.#pollPeer()
  }

  // ---- closing ----------------------------------------------------------------------------

  /**
   * Closes this end: the other end's receives end once they took what is in the ring, its
   * sends fail with `EPIPE`; pending calls here reject with an `AbortError` (having taken and
   * written nothing); a message handed out in place is neutered; the descriptors are closed
   * and the memory is unmapped; later calls throw `ERR_INVALID_STATE`. A named channel whose
   * name was still there is removed. Calling it again does nothing.
   */
  close(): void {
    if (this.#closed) return
    this.#closed = true
    const reason = invalidState('Channel was closed while waiting')
    for (const r of this.#receivers.splice(0)) r.reject(new AbortError(undefined, { cause: reason }))
    for (const s of this.#senders.splice(0)) {
      if (s.onAbort !== undefined) s.signal?.removeEventListener('abort', s.onAbort)
      s.reject(new AbortError(undefined, { cause: reason }))
    }
    this.#waits.cancelAll(reason)
    this.#pump.cancelAll(reason)
    this.#peerWatch.cancelAll(reason)
    if (this.#deathTimer !== undefined) clearTimeout(this.#deathTimer)
    if (this.#writerWakeTimer !== undefined) clearImmediate(this.#writerWakeTimer)
    this.#writerWakeTimer = undefined
    this.#writerWakeDue = false // close() wakes the peer below
    try {
      this.#rx?.dispose()
    } catch {
      // nothing to give back to a broken ring
    }
    try {
      if (this.#slot >= 0) native.channelLeaveWriter(this.#mapping, this.#slot)
      else native.channelCloseSide(this.#mapping, this.#side)
      this.#wakePeer()
    } catch {
      // the peer's wake-up is gone with its process
    }
    if (this.#name !== undefined) {
      unlinkQuietly(this.#name, this.#shmFd)
      this.#name = undefined
    }
    if (this.#shmId !== undefined) {
      // Still attached here: the id is this segment's.
      removeQuietly(this.#shmId)
      this.#shmId = undefined
    }
    if (this.#memory !== undefined) this.#mapping.detachBuffer(this.#memory)
    this.#mapping.release()
    for (const fd of this.fds) closeOwnedFd(this, fd, reason)
    if (this.#shmFd !== undefined) closeOwnedFd(this, this.#shmFd, reason)
    if (this.#peerFd !== undefined) closeOwnedFd(this, this.#peerFd, reason)
  }

  /** Calls {@link close}, for `using ch = Channel.create()`. */
  [Symbol.dispose](): void {
    this.close()
  }

  /**
   * {@link close}, then resolves once every wait it ended has settled, for `await using`.
   *
   * @example
   * ```ts
   * {
   *   await using ch = Channel.fromFds([3, 4, 5])
   *   // ...
   * }
   * ```
   */
  async [Symbol.asyncDispose](): Promise<void> {
    this.close()
    await Promise.all([this.#waits.settled(), this.#pump.settled(), this.#peerWatch.settled()])
  }
}

/** How often a waiting channel looks at whether its peer's process still exists (see `#armDeathCheck`). */
const DEATH_CHECK_MS = 50

/** The pump's wait was cancelled because the peer changed (it exited): re-run it. */
const PEER_CHANGED = Symbol('peer changed')

/** The creator's end: side `side`, or, with several writers, a writer's slot (-1 for none). */
function claimOwn(mapping: ShmMapping, side: number, writers: number): number {
  if (writers > 1 && side === 0) return callNative(() => native.channelJoinWriter(mapping, OWN_ID))
  callNative(() => native.channelClaim(mapping, side, OWN_ID))
  return -1
}

/**
 * Claims the free end of a channel another process made: side 1 (the reader) unless it is
 * taken; then side 0, or with several writers a writer's slot.
 */
function claimFree(mapping: ShmMapping, writers: number): { side: number; slot: number } {
  const pid = OWN_ID
  try {
    callNative(() => native.channelClaim(mapping, 1, pid))
    return { side: 1, slot: -1 }
  } catch (err) {
    if (!(err instanceof IpcError) || err.code !== 'EBUSY') throw err
  }
  if (writers > 1) {
    const slot = callNative(
      () => native.channelJoinWriter(mapping, pid),
      () => ({
        info: `the reader and all ${writers} writers have joined this channel already (each writer joins once)`,
      }),
    )
    return { side: 0, slot }
  }
  callNative(
    () => native.channelClaim(mapping, 0, pid),
    () => ({ info: 'both ends of this channel are open already: a ring has one writer and one reader' }),
  )
  return { side: 0, slot: -1 }
}

/** Whether the reader and every writer of a channel with several writers have joined it. */
function allJoined(mapping: ShmMapping): boolean {
  if (callNative(() => native.channelSidePid(mapping, 1)) === 0) return false
  const w = callNative(() => native.channelWriters(mapping, false))
  return w.joined >= w.slots
}

/** `v8.serialize(value)`; a value it cannot clone (a function, a symbol) is an ERR_INVALID_ARG_VALUE TypeError. */
function serialized(value: unknown): Buffer {
  try {
    return serialize(value)
  } catch (err) {
    const e = invalidArgValue('value', value, `cannot be serialized (${(err as Error).message})`)
    ;(e as Error).cause = err
    throw e
  }
}

/** Closes descriptors ipckit made (a system call of its own, never `fs`). */
function closeQuietly(fds: number[]): void {
  for (const fd of fds) {
    try {
      native.fdClose(fd)
    } catch {
      // closed already
    }
  }
}

function removeQuietly(id: number): void {
  try {
    native.shmRemove(id)
  } catch {
    // removed already (the other end did), or no longer ours to remove
  }
}

function unlinkQuietly(name: string, fd: number | undefined): void {
  try {
    native.posixShmUnlink(name, fd ?? null)
  } catch {
    // gone already (the other end removed it), or no longer ours
  }
}
