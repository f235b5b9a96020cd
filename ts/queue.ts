/**
 * System V message queues: `msgget`, `msgsnd`, `msgrcv`, `msgctl`.
 *
 * @module
 */

import { Buffer } from 'node:buffer'
import { endianness } from 'node:os'

import { AbortError, IpcError, answered, callNative, invalidArgType, outOfRange, type ErrorDetail } from './errors'
import { native } from './native'
import { FAST_EMPTY, FAST_FAILED, PayloadCopier, poolWords, registeredPool, throwFastError } from './pool'
import { ownerChanges, ownerStat, secondsToDate } from './sysv'
import { Lifetime, WaitGroup, startWait } from './reactor'
import { YieldGate, tryAfterYield } from './yield'
import {
  MAX_SAFE,
  optionalBoolean,
  optionalInteger,
  toBytes,
  validateAbortSignal,
  validateKey,
  validateMode,
  validateInteger,
  validateOptions,
} from './validate'

/**
 * What can be sent: a string (as UTF-8), a Buffer or Uint8Array, or any other TypedArray or
 * DataView (its bytes as they are in memory).
 */
export type Payload = string | ArrayBufferView

/** A message taken from a queue. */
export interface Message {
  /**
   * The message type, >= 1. A type above `Number.MAX_SAFE_INTEGER` (2^53 - 1), sent as a
   * bigint or by a foreign program, is never rounded: receive with `bigint: true` to get it
   * (see {@link ReceiveOptions.bigint}).
   */
  type: number
  /**
   * The payload, in memory of its own: `data.buffer` holds this payload and nothing else (no
   * other message is reachable through it, unlike the small Buffers of `Buffer.allocUnsafe`,
   * which share Node's pool).
   */
  data: Buffer
}

/** A message taken with `bigint: true`: its type exact, whatever its size. */
export interface BigIntMessage {
  /** The message type, 1n ..= 2n ** 63n - 1n (a C `long`). */
  type: bigint
  /** As {@link Message.data}. */
  data: Buffer
}

/** Options of {@link MessageQueue.open}. */
export interface MessageQueueOpenOptions {
  /** Create the queue if the key has none (`IPC_CREAT`). Default `false`. */
  create?: boolean
  /** Fail with `EEXIST` if the key already has a queue (`IPC_CREAT | IPC_EXCL`); implies `create`. */
  exclusive?: boolean
  /** Permission bits of a created queue. Default `0o600`. */
  mode?: number
}

/** Options of {@link MessageQueue.send}. */
export interface SendOptions {
  /**
   * Message type, an integer >= 1. Default `1`. A number must be a safe integer; a `bigint`
   * may go up to `2n ** 63n - 1n` (a C `long`), sent exactly.
   */
  type?: number | bigint
  /** Cancels a send that waits for room in a full queue. */
  signal?: AbortSignal
}

/** Options of {@link MessageQueue.sendSync}. */
export interface SendSyncOptions {
  /** As {@link SendOptions.type}. */
  type?: number | bigint
  /** Block while the queue is full (default `true`); `false` throws `EAGAIN` instead (`IPC_NOWAIT`). */
  wait?: boolean
}

/** Options of {@link MessageQueue.receive}. */
export interface ReceiveOptions {
  /**
   * Which message: `0` (default) the first in the queue; `> 0` the first of that type;
   * `< 0` the first of the lowest type `<= |type|`. A `bigint` selects types beyond 2^53
   * exactly (`|type| <= 2n ** 63n - 1n`).
   */
  type?: number | bigint
  /** With `type > 0`, take the first message of any *other* type (`MSG_EXCEPT`). */
  except?: boolean
  /** Cut a message longer than `maxSize` instead of failing with `E2BIG` (`MSG_NOERROR`). */
  truncate?: boolean
  /**
   * Largest payload accepted. Default: the system's `msgmax`, read at run time, so that no
   * message is refused. A longer message stays in the queue and the call fails with `E2BIG`,
   * unless `truncate`.
   */
  maxSize?: number
  /**
   * Give every received type as a `bigint` ({@link BigIntMessage}), exact up to
   * `2n ** 63n - 1n`. Default `false`: types are numbers, and a message whose type is above
   * `Number.MAX_SAFE_INTEGER` makes the receive fail with a `RangeError`
   * (`ERR_OUT_OF_RANGE`) that carries the message, exact, as `err.received`, so that it is
   * neither rounded nor lost.
   */
  bigint?: boolean
  /** Cancels the wait; a cancelled receive takes nothing. */
  signal?: AbortSignal
}

/** Options of {@link MessageQueue.receiveSync}. */
export interface ReceiveSyncOptions extends Omit<ReceiveOptions, 'signal'> {
  /** Block while no message matches (default `true`); `false` throws `ENOMSG` instead (`IPC_NOWAIT`). */
  wait?: boolean
}

/** Options of {@link MessageQueue.messages}. */
export type MessagesOptions = ReceiveOptions

/** A queue's state, from `msgctl(IPC_STAT)`. */
export interface MessageQueueStat {
  /** The key (unsigned); 0 for a private queue. */
  key: number
  /** Messages in the queue (`msg_qnum`). */
  messages: number
  /** Payload bytes in the queue (`__msg_cbytes`). */
  bytes: number
  /** Capacity in payload bytes (`msg_qbytes`). */
  maxBytes: number
  /** Process id of the last `msgsnd`, 0 if none (Linux records the process, whatever thread sent). */
  lastSendPid: number
  /**
   * Id of the last `msgrcv`, 0 if none: the *process* id, except when the message went
   * straight to a receiver that was already blocked in `msgrcv` (Linux then records that
   * receiver's *thread* id, `task_pid`, where every other case records `task_tgid`). An async
   * {@link MessageQueue.receive} that had to wait blocks on one of ipckit's wait threads, so
   * after it this is that thread's id, listed under `/proc/<pid>/task/` and not itself a
   * process (`process.kill(id, 0)` finds no such process after the thread ends); a
   * `receiveSync` that waited gives the process id on the main thread (whose thread id is the
   * process id) and the Worker's thread id in a Worker. A receive that found its message
   * already queued gives the process id. To tell which process took a message, map a thread
   * id to its process through `/proc/<pid>/task/<tid>`, or compare with the pids you know.
   */
  lastReceivePid: number
  /** Time of the last `msgsnd`, `null` if none. */
  lastSendTime: Date | null
  /** Time of the last `msgrcv`, `null` if none. */
  lastReceiveTime: Date | null
  /** Time of creation or of the last `update()`. */
  changeTime: Date
  /** Owner user id. */
  uid: number
  /** Owner group id. */
  gid: number
  /** Creator user id. */
  cuid: number
  /** Creator group id. */
  cgid: number
  /** Permission bits. */
  mode: number
}

/** Changes for {@link MessageQueue.update}; what is left out stays as it is. */
export interface MessageQueueUpdate {
  /** Capacity in bytes (above the system's `msgmnb` needs privilege). */
  maxBytes?: number
  /** Permission bits. */
  mode?: number
  /** Owner user id. */
  uid?: number
  /** Owner group id. */
  gid?: number
}

const HEADER = native.MSG_HEADER
const MAX_SIZE = 0x7fff_ffff
const MAX_ID = 0x7fff_ffff

if (endianness() !== 'LE' || HEADER !== 8) {
  throw new Error('ipckit supports little-endian 64-bit platforms only')
}

/**
 * The fast path of calls that need no wait. A native call with arguments costs more than the
 * `msgrcv` it makes (napi-rs sets up a borrow scope per call), so each thread registers one
 * pool buffer at a time: the arguments are written into its first `ARGS` bytes and an
 * argument-less native function reads them, then sends or receives a `struct msgbuf` (type
 * header, then payload) at the given offset of the pool.
 *
 * Every message is received at the same place of the pool, just past the arguments, and its
 * payload is copied out at once into a Buffer of its own ({@link PayloadCopier}): a payload
 * never shares memory with another message. The pool itself is never handed out; it is marked
 * untransferable all the same, and replaced if it was detached (its length is then 0) before
 * the native side could write to it again, or when msgmax grew.
 */
const ARGS = native.MSG_FAST_ARGS
const NOWAIT = native.MSG_FAST_NOWAIT
const EXCEPT = native.MSG_FAST_EXCEPT
const TRUNCATE = native.MSG_FAST_TRUNCATE
const SOFT = native.MSG_FAST_SOFT
const fastReceive = native.msgFastReceive
const fastSend = native.msgFastSend
/** Smallest pool; a pool always has room for two messages of msgmax. */
const POOL_SIZE = 64 * 1024

/** The current pool, an Int32Array over it, and what copies payloads out of it. */
let pool: Buffer
let words: Int32Array
let copier: PayloadCopier
/** Payload room for a message of the default size: the system's msgmax, as last read. */
let msgRoom = native.msgMax()

function newPool(): void {
  pool = registeredPool(Math.max(POOL_SIZE, ARGS + 2 * (HEADER + msgRoom)), native.msgFastRegister)
  words = poolWords(pool, pool.length)
  copier = new PayloadCopier(pool, ARGS + HEADER)
}
newPool()

/**
 * The offset in the pool of a `struct msgbuf` with `size` payload bytes, always `ARGS` (a new
 * pool if the current one was detached); -1 if a message of that size needs a buffer of its
 * own.
 */
function room(size: number): number {
  const need = HEADER + size
  if (ARGS + need <= pool.length) return ARGS
  if (ARGS + need > Math.max(POOL_SIZE, ARGS + 2 * (HEADER + msgRoom))) return -1
  newPool()
  return ARGS
}

/** The largest message type, a C `long`. */
const LONG_MAX = 0x7fff_ffff_ffff_ffffn

/**
 * A validated message type: a number (a safe integer) or a bigint that fits a C `long`; >= 1
 * when `positive` (a sent type), else any (a receive's selector).
 */
function messageType(value: unknown, name: string, positive: boolean): number | bigint {
  if (typeof value === 'bigint') {
    const min = positive ? 1n : -LONG_MAX
    if (value < min || value > LONG_MAX) throw outOfRange(name, `>= ${min}n and <= ${LONG_MAX}n`, value)
    return value
  }
  if (typeof value !== 'number') throw invalidArgType(name, 'of type number or bigint', value)
  validateInteger(value, name, positive ? 1 : -MAX_SAFE, MAX_SAFE)
  return value
}

/** The low 32 bits of a validated type, as the kernel's `long` holds them (signed). */
function lowWord(type: number | bigint): number {
  if (typeof type === 'bigint') return Number(BigInt.asIntN(32, type))
  return (type - Math.floor(type / 0x1_0000_0000) * 0x1_0000_0000) | 0
}

/** The high 32 bits of a validated type (signed). */
function highWord(type: number | bigint): number {
  return typeof type === 'bigint' ? Number(type >> 32n) : Math.floor(type / 0x1_0000_0000)
}

/**
 * A received type from its two words: a bigint when asked for; else a number, and a type
 * beyond `Number.MAX_SAFE_INTEGER` throws a `RangeError` that carries the message.
 */
function receivedType(low: number, high: number, bigint: boolean, data: () => Buffer): number | bigint {
  if (bigint) return (BigInt(high) << 32n) | BigInt(low >>> 0)
  // Received types are >= 1, so `high` is never negative.
  if (high < 0x20_0000) return (low >>> 0) + high * 0x1_0000_0000
  const type = (BigInt(high) << 32n) | BigInt(low >>> 0)
  const err = outOfRange(
    'type of the received message',
    `<= ${MAX_SAFE} for a number (receive with { bigint: true } for larger types)`,
    type,
  )
  throw Object.assign(err, { received: { type, data: Buffer.from(data()) } satisfies BigIntMessage })
}

/** Receive buffer for `size` payload bytes; `ENOMEM` (an {@link IpcError}) when refused. */
function scratchFor(size: number): Buffer {
  try {
    return Buffer.allocUnsafeSlow(HEADER + size)
  } catch {
    throw new IpcError({
      code: 'ENOMEM',
      errno: -12,
      syscall: 'msgrcv',
      message: `ENOMEM: not enough memory for a receive buffer of ${HEADER + size} bytes, msgrcv`,
    })
  }
}

/** After `E2BIG` with the default size: true if msgmax grew (the next pool has room for it). */
function grewMsgMax(): boolean {
  const now = native.msgMax()
  if (now <= msgRoom) return false
  msgRoom = now
  newPool()
  return true
}

interface ReceiveArgs {
  type: number | bigint
  except: boolean
  truncate: boolean
  bigint: boolean
  maxSize: number | undefined
  /** Low and high 32 bits of `type`, and the fast-path flags without NOWAIT/SOFT. */
  typeLow: number
  typeHigh: number
  flags: number
}

function receiveArgs(options: ReceiveOptions | ReceiveSyncOptions): ReceiveArgs {
  const type = messageType(options.type ?? 0, 'options.type', false)
  const except = optionalBoolean(options.except, 'options.except', false)
  const truncate = optionalBoolean(options.truncate, 'options.truncate', false)
  const bigint = optionalBoolean(options.bigint, 'options.bigint', false)
  const maxSize =
    options.maxSize === undefined ? undefined : optionalInteger(options.maxSize, 'options.maxSize', 0, MAX_SIZE, 0)
  if (except && type <= 0) throw outOfRange('options.type', '>= 1 when options.except is true', type)
  const flags = (except ? EXCEPT : 0) | (truncate ? TRUNCATE : 0)
  return { type, except, truncate, bigint, maxSize, typeLow: lowWord(type), typeHigh: highWord(type), flags }
}

function sendType(options: SendOptions | SendSyncOptions): number | bigint {
  return messageType(options.type ?? 1, 'options.type', true)
}

/**
 * One `msgsnd` on this thread through the pool: true when sent, false for a full queue with
 * `flags` NOWAIT|SOFT, `null` when the payload is larger than a pool holds (the caller then takes
 * the general path, which reports what the kernel says of such a size).
 */
function sendNow(id: number, type: number | bigint, bytes: Uint8Array, flags: number): boolean | null {
  const at = room(bytes.length)
  if (at < 0) return null
  words[0] = id
  words[1] = flags
  words[4] = at
  words[5] = bytes.length
  words[at >> 2] = lowWord(type)
  words[(at >> 2) + 1] = highWord(type)
  pool.set(bytes, at + HEADER)
  const sent = fastSend()
  if (sent === FAST_FAILED) throwFastError(native.msgFastError, sendErrorDetail(bytes.length))
  return sent === 1
}

/** One `msgsnd` that does not wait, of any size: true when sent, false for a full queue. */
function trySendNow(id: number, type: number | bigint, bytes: Uint8Array): boolean {
  return (
    sendNow(id, type, bytes, NOWAIT | SOFT) ??
    callNative(() => native.msgSend(id, type, bytes, true, true), sendErrorDetail(bytes.length))
  )
}

/**
 * What a failed `msgsnd` of `size` bytes should name: for `EINVAL`, a message larger than the
 * system's msgmax (read now: it can change at run time).
 */
function sendErrorDetail(size: number): (err: IpcError) => ErrorDetail | undefined {
  return (err) => {
    if (err.code !== 'EINVAL') return undefined
    const msgmax = native.msgMax()
    return size > msgmax
      ? { info: `a message of ${size} bytes; msgmax, the largest this system takes, is ${msgmax} bytes` }
      : undefined
  }
}

/** A received message, in either form. */
type AnyMessage = Message | BigIntMessage

/**
 * A message a wait thread took: `value` is its type as a JavaScript number, exact up to
 * `Number.MAX_SAFE_INTEGER`; above that the payload comes after the exact type, 8 bytes
 * (`msgReceiveStart` in crates/ipckit-node/src/msg.rs).
 */
function waitedMessage(value: number, data: Buffer, bigint: boolean): AnyMessage {
  if (value <= MAX_SAFE) return { type: bigint ? BigInt(value) : value, data } as AnyMessage
  const payload = data.subarray(HEADER)
  return {
    type: receivedType(data.readInt32LE(0), data.readInt32LE(4), bigint, () => payload),
    data: payload,
  } as AnyMessage
}

/** Ends an iterator's pending wait without an error (see {@link MessageQueue.messages}). */
const ITERATION_ENDED = Symbol('iteration ended')

/**
 * A System V message queue.
 *
 * Messages carry a type (an integer >= 1) and a payload; receivers pick by type. The queue is
 * a kernel object that outlives every process using it until {@link remove} is called;
 * {@link close} only releases this handle.
 *
 * Every blocking call has an async form that never blocks the event loop nor parks a libuv
 * threadpool thread (it waits on a thread the addon owns, and takes a message that is already
 * queued without any thread hop) and a `...Sync` form for scripts.
 *
 * @example
 * ```ts
 * import { MessageQueue, ftok } from 'ipckit'
 *
 * using q = MessageQueue.open(ftok('/tmp', 1), { create: true })
 * await q.send('hello', { type: 2 })
 * const { type, data } = await q.receive()   // type 2, data 'hello'
 * for await (const msg of q.messages({ type: 2 })) console.log(msg.data.toString())
 * ```
 */
export class MessageQueue implements Disposable, AsyncDisposable {
  /** The queue identifier, as `ipcs -q` shows it. */
  readonly id: number
  /** The key (unsigned 32-bit, as `ipcs` prints it); 0 for a private queue. */
  readonly key: number
  readonly #life = new Lifetime('MessageQueue')
  /** Whether waits to receive, and to send, yield the CPU first (see ts/yield.ts). */
  readonly #receiveGate = new YieldGate()
  readonly #sendGate = new YieldGate()

  private constructor(id: number, key: number) {
    this.id = id
    this.key = key >>> 0
  }

  /**
   * Opens the queue of `key` (`msgget`), creating it with `create`. `IPC_PRIVATE` always
   * creates a new queue.
   *
   * Throws `ENOENT` (no queue, no `create`), `EEXIST` (`exclusive`, one exists), `EACCES`,
   * `ENOSPC` (system limit of queues).
   *
   * @example
   * ```ts
   * const q = MessageQueue.open(0x5a00_0001, { create: true, mode: 0o660 })
   * ```
   */
  static open(key: number, options?: MessageQueueOpenOptions): MessageQueue {
    const k = validateKey(key)
    const opts = validateOptions(options)
    const create = optionalBoolean(opts.create, 'options.create', false)
    const exclusive = optionalBoolean(opts.exclusive, 'options.exclusive', false)
    const mode = validateMode(opts.mode, 'options.mode', 0o600)
    const id = callNative(() => native.msgOpen(k, create, exclusive, mode))
    return new MessageQueue(id, k)
  }

  /**
   * Creates a new private queue (`IPC_PRIVATE`): reachable by its {@link id}, which can be
   * passed to other processes.
   *
   * @example
   * ```ts
   * const q = MessageQueue.create()
   * child.send({ queueId: q.id })   // the child calls MessageQueue.fromId(queueId)
   * ```
   */
  static create(options?: { mode?: number }): MessageQueue {
    const opts = validateOptions(options)
    return MessageQueue.open(0, { create: true, mode: validateMode(opts.mode, 'options.mode', 0o600) })
  }

  /**
   * Opens an existing queue by its identifier (as `ipcs -q` shows it). Throws `EINVAL` if there
   * is no such queue, `EACCES` if it may not be read.
   *
   * @example
   * ```ts
   * const q = MessageQueue.fromId(Number(process.argv[2]))
   * ```
   */
  static fromId(id: number): MessageQueue {
    validateInteger(id, 'id', 0, MAX_ID)
    const stat = callNative(() => native.msgStat(id))
    return new MessageQueue(id, stat.perm.key)
  }

  /** Whether {@link close} was called. */
  get closed(): boolean {
    return this.#life.closed
  }

  /**
   * Sends a message (`msgsnd`). Waits, without blocking the event loop, while the queue is
   * full; `signal` cancels that wait (then nothing was sent). A message larger than the
   * system's msgmax is refused with `EINVAL`, whose message names both sizes.
   *
   * @example
   * ```ts
   * await q.send(Buffer.from([1, 2, 3]), { type: 7 })
   * ```
   */
  async send(data: Payload, options?: SendOptions): Promise<void> {
    const bytes = toBytes(data, 'data')
    const opts = validateOptions(options)
    const type = sendType(opts)
    const signal = opts.signal
    validateAbortSignal(signal, 'options.signal')
    this.#life.check()
    if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason })
    if (trySendNow(this.id, type, bytes)) return
    if (tryAfterYield(this.#sendGate, () => trySendNow(this.id, type, bytes) || undefined)) return
    const id = this.id
    return startWait(
      (reactor, waitId) => native.msgSendStart(reactor, waitId, id, type, bytes),
      () => undefined,
      signal,
      [this.#life.waits],
    )
  }

  /**
   * Sends a message, blocking the calling thread while the queue is full; with `wait: false`
   * a full queue throws `EAGAIN` instead.
   *
   * @example
   * ```ts
   * q.sendSync('job 1', { type: 1, wait: false })
   * ```
   */
  sendSync(data: Payload, options?: SendSyncOptions): void {
    const bytes = toBytes(data, 'data')
    const opts = validateOptions(options)
    const type = sendType(opts)
    const wait = optionalBoolean(opts.wait, 'options.wait', true)
    this.#life.check()
    const sent = sendNow(this.id, type, bytes, wait ? NOWAIT | SOFT : NOWAIT)
    if (sent === null) {
      answered(callNative(() => native.msgSend(this.id, type, bytes, !wait, false), sendErrorDetail(bytes.length)))
      return
    }
    // Full: give the CPU away once before blocking (a reader sharing this CPU may make room).
    if (sent || tryAfterYield(this.#sendGate, () => trySendNow(this.id, type, bytes) || undefined)) return
    sendNow(this.id, type, bytes, 0)
  }

  /**
   * Takes one message (`msgrcv`), waiting without blocking the event loop until one matches.
   * A message already queued is taken at once, on this thread. Rejects with `EIDRM` if the
   * queue is removed meanwhile, with an `AbortError` if `signal` aborts (nothing taken).
   *
   * @example
   * ```ts
   * const { type, data } = await q.receive({ type: -5 })   // lowest type <= 5 first
   * const big = await q.receive({ type: 2n ** 63n - 1n, bigint: true })   // big.type is a bigint
   * ```
   */
  async receive(options: ReceiveOptions & { bigint: true }): Promise<BigIntMessage>
  async receive(options?: ReceiveOptions & { bigint?: false }): Promise<Message>
  async receive(options?: ReceiveOptions): Promise<Message | BigIntMessage>
  async receive(options?: ReceiveOptions): Promise<Message | BigIntMessage> {
    const opts = validateOptions(options)
    const args = receiveArgs(opts)
    const signal = opts.signal
    validateAbortSignal(signal, 'options.signal')
    return this.#receive(args, signal, [this.#life.waits])
  }

  /** Takes a queued message at once, on this thread, or starts a wait (validated arguments). */
  #receive(args: ReceiveArgs, signal: AbortSignal | undefined, groups: readonly WaitGroup[]): Promise<AnyMessage> {
    let now: AnyMessage | null
    try {
      now = this.#ready(args, signal)
    } catch (err) {
      return Promise.reject(err)
    }
    return now !== null ? Promise.resolve(now) : this.#wait(args, signal, groups)
  }

  /** A message already queued, or `null`; throws when closed or aborted. */
  #ready(args: ReceiveArgs, signal: AbortSignal | undefined): AnyMessage | null {
    this.#life.check()
    if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason })
    return this.#receiveNow(args, true, true)
  }

  /** Waits on an addon thread for the next matching message (after one yield, see ts/yield.ts). */
  #wait(args: ReceiveArgs, signal: AbortSignal | undefined, groups: readonly WaitGroup[]): Promise<AnyMessage> {
    const after = this.#afterYield(args)
    return after !== undefined ? Promise.resolve(after) : this.#waitThread(args, signal, groups)
  }

  /** One more try after giving the CPU away (see ts/yield.ts): a message, or `undefined`. */
  #afterYield(args: ReceiveArgs): AnyMessage | undefined {
    return tryAfterYield(this.#receiveGate, () => this.#receiveNow(args, true, true) ?? undefined)
  }

  /** {@link #wait} without its yield: on the queue's line thread. */
  #waitThread(args: ReceiveArgs, signal: AbortSignal | undefined, groups: readonly WaitGroup[]): Promise<AnyMessage> {
    const { type, except, truncate, maxSize } = args
    const id = this.id
    return startWait(
      (reactor, waitId) => native.msgReceiveStart(reactor, waitId, id, type, except, truncate, maxSize ?? -1),
      (value, data) => waitedMessage(value!, data!, args.bigint),
      signal,
      groups,
    )
  }

  /** One `msgrcv` on this thread; `null` when nothing matches and `emptyIsNull`. */
  #receiveNow(args: ReceiveArgs, nowait: boolean, emptyIsNull: boolean): AnyMessage | null {
    for (;;) {
      const size = args.maxSize ?? msgRoom
      const at = room(size)
      if (at < 0) return this.#receiveLarge(args, nowait, emptyIsNull)
      words[0] = this.id
      words[1] = args.flags | (nowait ? NOWAIT : 0) | (emptyIsNull ? SOFT : 0)
      words[2] = args.typeLow
      words[3] = args.typeHigh
      words[4] = at
      words[5] = size
      const len = fastReceive()
      if (len >= 0) {
        const data = copier.take(len)
        const type = receivedType(words[at >> 2]!, words[(at >> 2) + 1]!, args.bigint, () => data)
        return { type, data } as AnyMessage
      }
      if (len === FAST_EMPTY) return null
      try {
        throwFastError(native.msgFastError)
      } catch (err) {
        if (err instanceof IpcError && err.code === 'E2BIG' && args.maxSize === undefined && grewMsgMax()) continue
        throw err
      }
    }
  }

  /**
   * {@link #receiveNow} for a `maxSize` larger than a pool holds. The buffer is sized by what
   * arrives, not by `maxSize` (which may be 2 GiB): it starts at the room of a pool and
   * doubles each time a message is too large for it (`E2BIG` leaves the message queued), up
   * to `maxSize`; `truncate` cuts only at `maxSize` itself. Memory the engine refuses is
   * `ENOMEM`, as the kernel would say it. The payload gets memory of its own, not a slice of
   * Node's shared pool.
   */
  #receiveLarge(args: ReceiveArgs, nowait: boolean, emptyIsNull: boolean): AnyMessage | null {
    const maxSize = args.maxSize!
    let size = Math.min(maxSize, Math.max(POOL_SIZE, 2 * msgRoom))
    for (;;) {
      const buf = scratchFor(size)
      const truncate = args.truncate && size >= maxSize
      let len: number
      try {
        len = answered(
          callNative(() => native.msgReceive(this.id, buf, args.type, args.except, truncate, nowait, emptyIsNull)),
        )
      } catch (err) {
        if (err instanceof IpcError && err.code === 'E2BIG' && size < maxSize) {
          size = Math.min(maxSize, size * 2)
          continue
        }
        throw err
      }
      if (len < 0) return null
      const data = Buffer.allocUnsafeSlow(len)
      buf.copy(data, 0, HEADER, HEADER + len)
      return { type: receivedType(buf.readInt32LE(0), buf.readInt32LE(4), args.bigint, () => data), data } as AnyMessage
    }
  }

  /**
   * Takes one message, blocking the calling thread until one matches; with `wait: false` an
   * empty queue throws `ENOMSG` instead.
   *
   * @example
   * ```ts
   * const msg = q.receiveSync({ type: 2, wait: false })
   * ```
   */
  receiveSync(options: ReceiveSyncOptions & { bigint: true }): BigIntMessage
  receiveSync(options?: ReceiveSyncOptions & { bigint?: false }): Message
  receiveSync(options?: ReceiveSyncOptions): Message | BigIntMessage
  receiveSync(options?: ReceiveSyncOptions): Message | BigIntMessage {
    const opts = validateOptions(options)
    const args = receiveArgs(opts)
    const wait = optionalBoolean(opts.wait, 'options.wait', true)
    this.#life.check()
    return this.#receiveNow(args, !wait, false)!
  }

  /**
   * Iterates over messages as they arrive, with the options of {@link receive}. Leaving the
   * loop (`break`, `return`, an exception) cancels the pending wait, and a message is only
   * ever taken off the queue when it is handed to the loop. `signal` ends the iteration with
   * an `AbortError`, as Node's own iterators do.
   *
   * @example
   * ```ts
   * for await (const { type, data } of q.messages({ type: 2, signal })) {
   *   if (data.toString() === 'stop') break
   * }
   * ```
   */
  messages(options: MessagesOptions & { bigint: true }): AsyncIterableIterator<BigIntMessage>
  messages(options?: MessagesOptions & { bigint?: false }): AsyncIterableIterator<Message>
  messages(options?: MessagesOptions): AsyncIterableIterator<Message | BigIntMessage>
  messages(options?: MessagesOptions): AsyncIterableIterator<AnyMessage> {
    const opts = validateOptions(options)
    const args = receiveArgs(opts)
    const signal = opts.signal
    validateAbortSignal(signal, 'options.signal')
    const iteration = new WaitGroup()
    const groups = [this.#life.waits, iteration]
    let finished = false
    const done = (): IteratorResult<AnyMessage> => ({ done: true, value: undefined })
    const ended = (err: unknown): IteratorResult<AnyMessage> => {
      finished = true
      if (err instanceof AbortError && err.cause === ITERATION_ENDED) return done()
      throw err
    }
    const yielded = (value: AnyMessage): IteratorResult<AnyMessage> => ({ done: false, value })
    return {
      [Symbol.asyncIterator]() {
        return this
      },
      next: (): Promise<IteratorResult<AnyMessage>> => {
        if (finished) return Promise.resolve(done())
        let now: AnyMessage | null | undefined
        try {
          // A message now, or after a yield, resolves with no promise and `then` of a wait's.
          now = this.#ready(args, signal) ?? this.#afterYield(args)
        } catch (err) {
          return new Promise((resolve) => resolve(ended(err)))
        }
        if (now !== undefined) return Promise.resolve(yielded(now))
        return this.#waitThread(args, signal, groups).then(yielded, ended)
      },
      return: async (): Promise<IteratorResult<AnyMessage>> => {
        finished = true
        iteration.cancelAll(ITERATION_ENDED)
        return done()
      },
    }
  }

  /** Same as {@link messages} with no options: `for await (const msg of q)`. */
  [Symbol.asyncIterator](): AsyncIterableIterator<Message> {
    return this.messages()
  }

  /**
   * The queue's state (`msgctl(IPC_STAT)`).
   *
   * @example
   * ```ts
   * const { messages, bytes, maxBytes, lastSendPid } = q.stat()
   * ```
   */
  stat(): MessageQueueStat {
    this.#life.check()
    const s = callNative(() => native.msgStat(this.id))
    return {
      key: s.perm.key,
      messages: s.messages,
      bytes: s.bytes,
      maxBytes: s.maxBytes,
      lastSendPid: s.lastSendPid,
      lastReceivePid: s.lastReceivePid,
      lastSendTime: secondsToDate(s.lastSendTime),
      lastReceiveTime: secondsToDate(s.lastReceiveTime),
      ...ownerStat(s),
    }
  }

  /**
   * Changes capacity, permissions or owner (`msgctl(IPC_SET)`); the owner, the creator or a
   * privileged process may do it (`EPERM` otherwise).
   *
   * @example
   * ```ts
   * q.update({ maxBytes: 65536, mode: 0o640 })
   * ```
   */
  update(changes: MessageQueueUpdate): void {
    const c = validateOptions(changes, 'changes')
    const maxBytes =
      c.maxBytes === undefined ? undefined : optionalInteger(c.maxBytes, 'changes.maxBytes', 0, MAX_SAFE, 0)
    const { mode, uid, gid } = ownerChanges(c)
    this.#life.check()
    callNative(() => native.msgUpdate(this.id, maxBytes, mode, uid, gid))
  }

  /**
   * Removes the queue from the system (`msgctl(IPC_RMID)`): its messages are gone, and every
   * process waiting on it gets `EIDRM`. The handle stays open; close it as usual.
   *
   * @example
   * ```ts
   * q.remove()
   * q.close()
   * ```
   */
  remove(): void {
    this.#life.check()
    callNative(() => native.msgRemove(this.id))
  }

  /**
   * Releases this handle: pending waits end with an `AbortError` (having taken nothing), and
   * further calls throw `ERR_INVALID_STATE`. The queue itself stays (see {@link remove}).
   * Calling it again does nothing.
   */
  close(): void {
    this.#life.close()
  }

  /** Calls {@link close}, for `using q = MessageQueue.open(...)`. */
  [Symbol.dispose](): void {
    this.close()
  }

  /**
   * {@link close}, then resolves once every wait it ended has settled (each pending promise
   * has rejected with its `AbortError`; a wait on another thread has confirmed that it took
   * nothing), for `await using q = ...`.
   *
   * @example
   * ```ts
   * {
   *   await using q = MessageQueue.fromId(id)
   *   // ...
   * }   // closed, and no wait of it is pending any more
   * ```
   */
  async [Symbol.asyncDispose](): Promise<void> {
    this.close()
    await this.#life.waits.settled()
  }
}
