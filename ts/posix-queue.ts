/**
 * POSIX message queues: `mq_open`, `mq_send`/`mq_timedsend`, `mq_receive`/`mq_timedreceive`,
 * `mq_getattr`/`mq_setattr`, `mq_notify`, `mq_unlink`; the system's limits and a listing of the
 * queues (the `mqueue` file system, `/dev/mqueue`).
 *
 * @module
 */

import { Buffer } from 'node:buffer'

import { AbortError, IpcError, callNative, invalidArgValue, withDetail } from './errors'
import { native } from './native'
import { FAST_EMPTY, FAST_FAILED, PayloadCopier, poolWords, registeredPool, throwFastError } from './pool'
import { Lifetime, WaitGroup, releaseFd, waitFd } from './reactor'
import { toChangeableSignal, type SignalLike } from './signals'
import {
  optionalBoolean,
  optionalInteger,
  toBytes,
  validateAbortSignal,
  validateOneOf,
  validateOptions,
  validateMode,
  validatePosixName,
  validateString,
  validateTimeout,
} from './validate'
import type { Payload } from './queue'

/** A message taken from a POSIX queue. */
export interface PosixMessage {
  /** The payload, in memory of its own (no other message shares it). */
  data: Buffer
  /** Its priority, 0..32767: the queue hands out the highest first, oldest first within one. */
  priority: number
}

/** Options of {@link PosixMessageQueue.open}. */
export interface PosixMessageQueueOpenOptions {
  /** Create the queue if it does not exist (`O_CREAT`). Default `false`. */
  create?: boolean
  /** Fail with `EEXIST` if it exists (`O_CREAT | O_EXCL`); implies `create`. */
  exclusive?: boolean
  /**
   * Permission bits of a created queue. Default `0o600`. As for a file, the process's umask
   * clears bits (`0o660` becomes `0o640` under the usual `0o022`): `update({ mode })` sets
   * them exactly.
   */
  mode?: number
  /** What this handle may do: `'read'` (receive), `'write'` (send) or `'readwrite'` (default). */
  access?: 'read' | 'write' | 'readwrite'
  /**
   * Capacity in messages of a created queue (`mq_maxmsg`). Default: the system's
   * `msg_default`. Above `/proc/sys/fs/mqueue/msg_max` fails with `EINVAL` (unless the process
   * has `CAP_SYS_RESOURCE`), and the error says so. An existing queue keeps its own.
   */
  maxMessages?: number
  /**
   * Largest message of a created queue in bytes (`mq_msgsize`). Default: the system's
   * `msgsize_default`. Above `/proc/sys/fs/mqueue/msgsize_max` fails with `EINVAL` (unless
   * privileged). An existing queue keeps its own.
   */
  messageSize?: number
  /**
   * Non-blocking mode (`O_NONBLOCK`): `sendSync`/`receiveSync` throw `EAGAIN` instead of
   * blocking unless a call says `wait: true`. The async forms never block either way.
   * Default `false`; {@link PosixMessageQueue.setNonBlocking} changes it.
   */
  nonBlocking?: boolean
}

/** Options of {@link PosixMessageQueue.send}. */
export interface PosixSendOptions {
  /** Priority, an integer 0..32767; higher is taken first. Default `0`. */
  priority?: number
  /** While the queue is full, give up after this many milliseconds with `ETIMEDOUT`. */
  timeoutMs?: number
  /** Cancels a send that waits for room (then nothing was sent). */
  signal?: AbortSignal
}

/** Options of {@link PosixMessageQueue.sendSync}. */
export interface PosixSendSyncOptions {
  /** Priority, an integer 0..32767. Default `0`. */
  priority?: number
  /** Give up after this many milliseconds with `ETIMEDOUT` (`mq_timedsend`). */
  timeoutMs?: number
  /**
   * Block while the queue is full (default: `true`, or `false` in non-blocking mode);
   * `false` throws `EAGAIN` instead.
   */
  wait?: boolean
}

/** Options of {@link PosixMessageQueue.receive}. */
export interface PosixReceiveOptions {
  /** While the queue is empty, give up after this many milliseconds with `ETIMEDOUT`. */
  timeoutMs?: number
  /** Cancels the wait; a cancelled receive takes nothing. */
  signal?: AbortSignal
}

/** Options of {@link PosixMessageQueue.receiveSync}. */
export interface PosixReceiveSyncOptions {
  /** Give up after this many milliseconds with `ETIMEDOUT` (`mq_timedreceive`). */
  timeoutMs?: number
  /**
   * Block while the queue is empty (default: `true`, or `false` in non-blocking mode);
   * `false` throws `EAGAIN` instead.
   */
  wait?: boolean
}

/** Options of {@link PosixMessageQueue.messages}. */
export interface PosixMessagesOptions {
  /** Ends the iteration with an `AbortError`; the message being waited for is not taken. */
  signal?: AbortSignal
}

/** A queue's state: `mq_getattr` and the owner and mode of the queue. */
export interface PosixMessageQueueStat {
  /** Messages in the queue now (`mq_curmsgs`). */
  messages: number
  /** Capacity in messages (`mq_maxmsg`). */
  maxMessages: number
  /** Largest message in bytes (`mq_msgsize`). */
  messageSize: number
  /** Whether this handle is in non-blocking mode (`O_NONBLOCK`). */
  nonBlocking: boolean
  /** Permission bits. */
  mode: number
  /** Owner user id. */
  uid: number
  /** Owner group id. */
  gid: number
}

/** Changes for {@link PosixMessageQueue.update}; what is left out stays as it is. */
export interface PosixMessageQueueUpdate {
  /** Permission bits (`fchmod`), exactly: the umask does not apply. */
  mode?: number
  /** Owner user id (`fchown`; privileged). */
  uid?: number
  /** Owner group id (`fchown`). */
  gid?: number
}

/** What {@link PosixMessageQueue.notify} registers. */
export interface PosixQueueNotifyOptions {
  /** The signal to send this process, by name (`'SIGUSR2'`, `'SIGRTMIN+1'`) or number. */
  signal: SignalLike
  /** An integer the signal carries (`sigval`; `SignalEvent.value` of a watch). Default `0`. */
  value?: number
}

/** A queue as {@link listPosixQueues} reports it. */
export interface PosixQueueEntry {
  /** The name, with its leading slash. */
  name: string
  /**
   * Bytes of the messages in the queue (`QSIZE`); `null` for a queue this process registered
   * for notification (see {@link listPosixQueues}).
   */
  bytes: number | null
  /**
   * How the process registered for notification is notified (`NOTIFY`): `'signal'`
   * (`SIGEV_SIGNAL`), `'none'` (`SIGEV_NONE`), `'thread'` (`SIGEV_THREAD`), or `null` when no
   * process is registered.
   */
  notify: 'signal' | 'none' | 'thread' | null
  /** The signal of a `'signal'` notification (`SIGNO`), 0 otherwise. */
  signo: number
  /** The process registered for notification (`NOTIFY_PID`), 0 for none. */
  notifyPid: number
  /** Owner user id. */
  uid: number
  /** Owner group id. */
  gid: number
  /** The owner's user name, `null` when the user database has none. */
  owner: string | null
  /** The owner group's name, `null` when the group database has none. */
  ownerGroup: string | null
  /** Permission bits. */
  mode: number
  /**
   * Messages in the queue (`mq_curmsgs`); `null` when this process may not open the queue, and
   * for a queue this process registered for notification (see {@link listPosixQueues}).
   */
  messages: number | null
  /** Capacity in messages, `null` when this process may not open the queue. */
  maxMessages: number | null
  /** Largest message in bytes, `null` when this process may not open the queue. */
  messageSize: number | null
}

/** Options of {@link listPosixQueues}. */
export interface ListPosixQueuesOptions {
  /** Where the `mqueue` file system is mounted. Default: found in `/proc/self/mountinfo`. */
  dir?: string
}

/**
 * The system's limits on POSIX message queues (`/proc/sys/fs/mqueue`, per IPC namespace) and
 * this process's `RLIMIT_MSGQUEUE`; `null` where unknown.
 */
export interface PosixQueueLimits {
  /** The largest `maxMessages` an unprivileged process may ask for (`msg_max`). */
  msgMax: number | null
  /** The largest `messageSize` an unprivileged process may ask for (`msgsize_max`). */
  msgsizeMax: number | null
  /** Queues the system holds at most, unless the creator is privileged (`queues_max`). */
  queuesMax: number | null
  /** `maxMessages` of a queue created without it (`msg_default`). */
  msgDefault: number | null
  /** `messageSize` of a queue created without it (`msgsize_default`). */
  msgsizeDefault: number | null
  /** Bytes the user's queues may take in all (`ulimit -q`); `null` for unlimited. */
  rlimitMsgqueue: number | null
}

const NAME_MAX = native.POSIX_QUEUE_NAME_MAX
const PRIORITY_MAX = native.POSIX_QUEUE_PRIORITY_MAX
const MAX_TIMEOUT = 0x7fff_ffff
/** Linux's hard ceilings, for a process with CAP_SYS_RESOURCE (HARD_MSGMAX, HARD_MSGSIZEMAX). */
const HARD_MSGMAX = 65_536
const HARD_MSGSIZEMAX = 16 * 1024 * 1024
const ACCESS = { read: 0, write: 1, readwrite: 2 } as const
const NOTIFY_KINDS = ['signal', 'none', 'thread'] as const

/** Wait codes of the native calls: not at all, forever; else milliseconds. */
const NOW = -2
const FOREVER = -1

/**
 * The fast path of sends and receives that need no wait, as System V queues have it (see
 * `queue.ts`): one pool buffer per thread holds the arguments in its first `ARGS` bytes and the
 * message after them; an argument-less native method reads them. Every message is received at
 * the same place, just past the arguments, and its payload copied out at once into a Buffer of
 * its own ({@link PayloadCopier}): a payload never shares memory with another message (as
 * for System V queues and sockets). The pool is never handed out; it is untransferable all the
 * same, and replaced when detached. A queue whose messages may be larger than `MAX_POOLED`
 * receives into a buffer of its own and copies out.
 */
const ARGS = native.POSIX_QUEUE_FAST_ARGS
const SOFT = native.POSIX_QUEUE_FAST_SOFT
const POOL_SIZE = 64 * 1024
const MAX_POOLED = (POOL_SIZE - ARGS) >> 1

let pool: Buffer
let words: Int32Array
let copier: PayloadCopier

const fastReceive = native.posixQueueFastReceive
const fastSend = native.posixQueueFastSend

/** Closes queues whose object was collected without `close()` (a safety net). */
const finalizer = new FinalizationRegistry<number>((id) => {
  releaseFd(native.posixQueueFd(id), undefined)
  native.posixQueueClose(id)
})

function newPool(): void {
  pool = registeredPool(POOL_SIZE, native.posixQueueFastRegister)
  words = poolWords(pool, ARGS)
  copier = new PayloadCopier(pool, ARGS)
}
newPool()

/** Ends an iterator's pending wait without an error. */
const ITERATION_ENDED = Symbol('iteration ended')
/** Ends a timed wait for readiness when its time is up. */
const TIMED_OUT = Symbol('timed out')

/**
 * `options.timeoutMs` by the library's one rule (`validateTimeout`: ms >= 0, fractions kept,
 * `Infinity` for none), as the native calls take it: whole milliseconds, rounded up (the C
 * library's clock has no finer use here), -1 for none (also beyond 2^31 - 1 ms, 24 days).
 */
function timeoutOf(value: unknown): number {
  const ms = validateTimeout(value, 'options.timeoutMs')
  return ms === Infinity || ms > MAX_TIMEOUT ? -1 : Math.ceil(ms)
}

function priorityOf(value: unknown): number {
  return optionalInteger(value, 'options.priority', 0, PRIORITY_MAX, 0)
}

/** The platform named in an `ENOSYS` error. */
function platformName(): string {
  return process.platform === 'darwin' ? 'macOS' : process.platform
}

/** The error of a failed `mq_open`, saying which name, and which limit when one was hit. */
function openError(err: unknown, name: string, maxMessages: number, messageSize: number): unknown {
  if (!(err instanceof IpcError)) return err
  let why = ''
  const l = posixQueueLimits()
  switch (err.code) {
    case 'EINVAL':
      if (maxMessages >= 0 && l.msgMax !== null && maxMessages > l.msgMax) {
        why = `maxMessages ${maxMessages} is above the system's msg_max ${l.msgMax} (/proc/sys/fs/mqueue/msg_max; CAP_SYS_RESOURCE allows up to ${HARD_MSGMAX})`
      } else if (messageSize >= 0 && l.msgsizeMax !== null && messageSize > l.msgsizeMax) {
        why = `messageSize ${messageSize} is above the system's msgsize_max ${l.msgsizeMax} (/proc/sys/fs/mqueue/msgsize_max; CAP_SYS_RESOURCE allows up to ${HARD_MSGSIZEMAX})`
      } else if (maxMessages > HARD_MSGMAX || messageSize > HARD_MSGSIZEMAX) {
        why = `maxMessages is at most ${HARD_MSGMAX} and messageSize ${HARD_MSGSIZEMAX} even with CAP_SYS_RESOURCE`
      }
      break
    case 'EMFILE': {
      const m = maxMessages >= 0 ? maxMessages : (l.msgDefault ?? 0)
      const s = messageSize >= 0 ? messageSize : (l.msgsizeDefault ?? 0)
      const need = native.posixQueueChargedBytes(m, s)
      const limit = l.rlimitMsgqueue === null ? 'unlimited' : `${l.rlimitMsgqueue} bytes`
      why = `too many open descriptors (RLIMIT_NOFILE), or the user's queues would take more than RLIMIT_MSGQUEUE (${limit}, ulimit -q): this queue takes ${need} bytes`
      break
    }
    case 'ENOSPC':
      why = `the system already holds queues_max ${l.queuesMax ?? '?'} queues (/proc/sys/fs/mqueue/queues_max)`
      break
    case 'ENOSYS':
      why = `POSIX message queues do not exist on ${platformName()}`
      break
  }
  return withDetail(err, why === '' ? `'${name}'` : `'${name}' (${why})`)
}

/** Adds the platform to an `ENOSYS` error (macOS has no POSIX message queues). */
function platformError(err: unknown): unknown {
  return err instanceof IpcError && err.code === 'ENOSYS'
    ? withDetail(err, `(POSIX message queues do not exist on ${platformName()})`)
    : err
}

/**
 * Waits, on this thread's event loop, until the queue has a message (or `writable`: room);
 * resolves `false` when `timeoutMs` (if any) passed first.
 */
function waitReady(
  id: number,
  writable: boolean,
  signal: AbortSignal | undefined,
  groups: readonly WaitGroup[],
  timeoutMs: number | undefined,
): Promise<boolean> {
  const fd = native.posixQueueFd(id)
  if (timeoutMs === undefined) return waitFd(fd, writable, READY, signal, groups)
  const timer = new WaitGroup()
  const t = setTimeout(() => timer.cancelAll(TIMED_OUT), timeoutMs)
  return waitFd(fd, writable, READY, signal, [...groups, timer]).then(
    (ready) => {
      clearTimeout(t)
      return ready
    },
    (err: unknown) => {
      clearTimeout(t)
      if (err instanceof AbortError && err.cause === TIMED_OUT) return false
      throw err
    },
  )
}

/** The attempt of a wait for readiness only (the caller then tries its call again). */
const READY = (): true => true

/**
 * A POSIX message queue: messages of up to {@link messageSize} bytes with a priority, at most
 * {@link maxMessages} at a time, the highest priority taken first (the oldest first within
 * one). The queue has a name (`/jobs`) and outlives every process using it until
 * {@link remove} (or {@link PosixMessageQueue.unlink}); {@link close} only releases this handle.
 *
 * Every blocking call has an async form, which never blocks the event loop nor parks a thread
 * (a queue descriptor is a file descriptor on Linux: a wait is a readiness watch, and a
 * message already queued is taken at once, with no thread hop), and a `...Sync` form for
 * scripts. C programs (`mq_open(3)`) and Python's `posix_ipc` open the same queue by name.
 * Linux only: on macOS, which has no POSIX message queues, `open` throws `ENOSYS`.
 *
 * @example
 * ```ts
 * import { PosixMessageQueue } from 'ipckit'
 *
 * using q = PosixMessageQueue.open('/jobs', { create: true, maxMessages: 10, messageSize: 1024 })
 * await q.send('urgent', { priority: 9 })
 * await q.send('later')
 * const { data, priority } = await q.receive()   // 'urgent', 9
 * for await (const msg of q) console.log(msg.priority, msg.data.toString())
 * ```
 */
export class PosixMessageQueue implements Disposable {
  /** The queue's name, with its leading slash. */
  readonly name: string
  /** Capacity in messages (`mq_maxmsg`), fixed when the queue was created. */
  readonly maxMessages: number
  /** Largest message in bytes (`mq_msgsize`), fixed when the queue was created. */
  readonly messageSize: number
  /** The queue's number in the native layer, which owns its descriptor. */
  readonly #id: number
  #nonBlocking: boolean
  #scratch: Buffer | undefined
  readonly #life = new Lifetime('PosixMessageQueue')

  private constructor(name: string, id: number) {
    this.name = name
    this.#id = id
    const s = callNative(() => native.posixQueueStat(id))
    this.maxMessages = s.maxMessages
    this.messageSize = s.messageSize
    this.#nonBlocking = s.nonBlocking
    finalizer.register(this, id, this)
  }

  /**
   * Opens or creates the queue `name` (`mq_open`): a slash, then up to 255 bytes without a
   * slash (`/jobs`).
   *
   * Throws `ENOENT` (no queue, no `create`), `EEXIST` (`exclusive`), `EACCES`, `EINVAL`
   * (`maxMessages`/`messageSize` above the system's limits: the message names the limit),
   * `EMFILE` (descriptors, or the user's `RLIMIT_MSGQUEUE`), `ENOSPC` (the system's
   * `queues_max`), `ENOSYS` on macOS.
   *
   * @example
   * ```ts
   * const q = PosixMessageQueue.open('/jobs', { create: true, mode: 0o660, maxMessages: 64, messageSize: 512 })
   * const reader = PosixMessageQueue.open('/jobs', { access: 'read' })
   * ```
   */
  static open(name: string, options?: PosixMessageQueueOpenOptions): PosixMessageQueue {
    validatePosixName(name, 'name', NAME_MAX)
    const opts = validateOptions(options)
    const create = optionalBoolean(opts.create, 'options.create', false)
    const exclusive = optionalBoolean(opts.exclusive, 'options.exclusive', false)
    const mode = validateMode(opts.mode, 'options.mode', 0o600)
    const access = opts.access ?? 'readwrite'
    validateOneOf(access, 'options.access', ['read', 'write', 'readwrite'])
    const maxMessages = optionalInteger(opts.maxMessages, 'options.maxMessages', 1, 0x7fff_ffff, -1)
    const messageSize = optionalInteger(opts.messageSize, 'options.messageSize', 1, 0x7fff_ffff, -1)
    const nonBlocking = optionalBoolean(opts.nonBlocking, 'options.nonBlocking', false)
    let id: number
    try {
      id = callNative(() =>
        native.posixQueueOpen(name, ACCESS[access], create, exclusive, mode, nonBlocking, maxMessages, messageSize),
      )
    } catch (err) {
      throw openError(err, name, maxMessages, messageSize)
    }
    try {
      return new PosixMessageQueue(name, id)
    } catch (err) {
      native.posixQueueClose(id)
      throw err
    }
  }

  /**
   * Removes the queue `name` (`mq_unlink`): the name is free at once; the queue goes away when
   * the last handle on it is closed. Throws `ENOENT` if there is none, `EACCES`.
   *
   * @example
   * ```ts
   * PosixMessageQueue.unlink('/jobs')
   * ```
   */
  static unlink(name: string): void {
    validatePosixName(name, 'name', NAME_MAX)
    try {
      callNative(() => native.posixQueueUnlink(name))
    } catch (err) {
      throw err instanceof IpcError && err.code !== 'ENOSYS' ? withDetail(err, `'${name}'`) : platformError(err)
    }
  }

  /** Whether {@link close} was called. */
  get closed(): boolean {
    return this.#life.closed
  }

  /**
   * The queue descriptor (a file descriptor on Linux), for `poll` or to hand to a child
   * process's `stdio`; owned by this object until {@link close}.
   */
  get fd(): number {
    this.#life.check()
    return native.posixQueueFd(this.#id)
  }

  /** The error of a failed send, saying how large the message was when that was the problem. */
  #sendError(err: unknown, size: number): unknown {
    return err instanceof IpcError && err.code === 'EMSGSIZE'
      ? withDetail(err, `(${size} bytes; the queue's messageSize is ${this.messageSize})`)
      : platformError(err)
  }

  /** One send on this thread: true when sent, false when full and `soft`. */
  #sendNow(bytes: Uint8Array, priority: number, wait: number, soft: boolean): boolean {
    if (bytes.length > POOL_SIZE - ARGS) {
      try {
        return callNative(() => native.posixQueueSend(this.#id, bytes, priority, wait, soft))
      } catch (err) {
        throw this.#sendError(err, bytes.length)
      }
    }
    if (pool.length === 0) newPool()
    words[0] = this.#id
    words[1] = wait
    words[2] = soft ? SOFT : 0
    words[3] = ARGS
    words[4] = bytes.length
    words[5] = priority
    pool.set(bytes, ARGS)
    const sent = fastSend()
    if (sent === FAST_FAILED) {
      try {
        throwFastError(native.posixQueueFastError)
      } catch (err) {
        throw this.#sendError(err, bytes.length)
      }
    }
    return sent === 1
  }

  /** One receive on this thread; `null` when empty and `soft`. */
  #receiveNow(wait: number, soft: boolean): PosixMessage | null {
    const size = this.messageSize
    if (size > MAX_POOLED) return this.#receiveLarge(wait, soft)
    if (pool.length === 0) newPool()
    words[0] = this.#id
    words[1] = wait
    words[2] = soft ? SOFT : 0
    words[3] = ARGS
    words[4] = size
    const len = fastReceive()
    if (len >= 0) return { data: copier.take(len), priority: words[5]! }
    if (len === FAST_EMPTY) return null
    try {
      return throwFastError(native.posixQueueFastError)
    } catch (err) {
      throw platformError(err)
    }
  }

  /** {@link #receiveNow} for a queue whose messages may be larger than a pool holds. */
  #receiveLarge(wait: number, soft: boolean): PosixMessage | null {
    this.#scratch ??= Buffer.allocUnsafeSlow(this.messageSize)
    const buf = this.#scratch
    const got = callNative(() => native.posixQueueReceive(this.#id, buf, wait, soft))
    if (got === null) return null
    // Memory of its own, not a slice of Node's shared pool.
    const data = Buffer.allocUnsafeSlow(got.length)
    buf.copy(data, 0, 0, got.length)
    return { data, priority: got.priority }
  }

  /**
   * Sends a message with a priority (`mq_send`). While the queue is full it waits, without
   * blocking the event loop, for room: at most `timeoutMs` (then `ETIMEDOUT`), until `signal`
   * aborts (then nothing was sent). Rejects with `EMSGSIZE` for a message longer than
   * {@link messageSize}.
   *
   * @example
   * ```ts
   * await q.send(Buffer.from([1, 2, 3]), { priority: 5, timeoutMs: 1000 })
   * ```
   */
  async send(data: Payload, options?: PosixSendOptions): Promise<void> {
    const bytes = toBytes(data, 'data')
    const opts = validateOptions(options)
    const priority = priorityOf(opts.priority)
    const timeout = timeoutOf(opts.timeoutMs)
    const signal = opts.signal
    validateAbortSignal(signal, 'options.signal')
    this.#life.check()
    if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason })
    const deadline = timeout >= 0 ? performance.now() + timeout : undefined
    for (;;) {
      if (this.#sendNow(bytes, priority, NOW, true)) return
      const left = deadline === undefined ? undefined : Math.ceil(deadline - performance.now())
      // Time is up: one last try, which sends if there is room or throws ETIMEDOUT.
      if (left !== undefined && left <= 0) {
        this.#sendNow(bytes, priority, 0, false)
        return
      }
      await waitReady(this.#id, true, signal, [this.#life.waits], left)
      this.#life.checkAfterWait()
    }
  }

  /**
   * Sends a message, blocking the calling thread while the queue is full (`mq_send`;
   * `mq_timedsend` with `timeoutMs`). With `wait: false` (the default in non-blocking mode), a
   * full queue throws `EAGAIN` instead.
   *
   * @example
   * ```ts
   * q.sendSync('job 1', { priority: 1, wait: false })
   * ```
   */
  sendSync(data: Payload, options?: PosixSendSyncOptions): void {
    const bytes = toBytes(data, 'data')
    const opts = validateOptions(options)
    const priority = priorityOf(opts.priority)
    const timeout = timeoutOf(opts.timeoutMs)
    const wait = optionalBoolean(opts.wait, 'options.wait', !this.#nonBlocking)
    this.#life.check()
    this.#sendNow(bytes, priority, !wait ? NOW : timeout >= 0 ? timeout : FOREVER, false)
  }

  /**
   * Takes the oldest message of the highest priority (`mq_receive`), waiting without blocking
   * the event loop until there is one: at most `timeoutMs` (then `ETIMEDOUT`), until `signal`
   * aborts (`AbortError`; nothing taken). A message already queued is taken at once, on this
   * thread.
   *
   * @example
   * ```ts
   * const { data, priority } = await q.receive({ timeoutMs: 5000 })
   * ```
   */
  async receive(options?: PosixReceiveOptions): Promise<PosixMessage> {
    const opts = validateOptions(options)
    const timeout = timeoutOf(opts.timeoutMs)
    const signal = opts.signal
    validateAbortSignal(signal, 'options.signal')
    this.#life.check()
    if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason })
    const now = this.#receiveNow(NOW, true)
    if (now !== null) return now
    return this.#waitAndReceive(signal, [this.#life.waits], timeout >= 0 ? performance.now() + timeout : undefined)
  }

  /** Waits until readable, then takes a message (again if another reader was first). */
  async #waitAndReceive(
    signal: AbortSignal | undefined,
    groups: readonly WaitGroup[],
    deadline: number | undefined,
  ): Promise<PosixMessage> {
    for (;;) {
      const left = deadline === undefined ? undefined : Math.ceil(deadline - performance.now())
      // Time is up: one last try, which takes a message that is there or throws ETIMEDOUT.
      if (left !== undefined && left <= 0) return this.#receiveNow(0, false)!
      await waitReady(this.#id, false, signal, groups, left)
      this.#life.checkAfterWait()
      const now = this.#receiveNow(NOW, true)
      if (now !== null) return now
    }
  }

  /**
   * Takes the oldest message of the highest priority, blocking the calling thread until there
   * is one (`mq_receive`; `mq_timedreceive` with `timeoutMs`). With `wait: false` (the default
   * in non-blocking mode), an empty queue throws `EAGAIN` instead.
   *
   * @example
   * ```ts
   * const msg = q.receiveSync({ timeoutMs: 100 })
   * ```
   */
  receiveSync(options?: PosixReceiveSyncOptions): PosixMessage {
    const opts = validateOptions(options)
    const timeout = timeoutOf(opts.timeoutMs)
    const wait = optionalBoolean(opts.wait, 'options.wait', !this.#nonBlocking)
    this.#life.check()
    return this.#receiveNow(!wait ? NOW : timeout >= 0 ? timeout : FOREVER, false)!
  }

  /**
   * Iterates over messages as they arrive, highest priority first. A message is taken off the
   * queue only when it is handed to the loop: leaving the loop (`break`, `return`, an
   * exception) cancels the pending wait and takes nothing more. `signal` ends the iteration
   * with an `AbortError`, as Node's own iterators do.
   *
   * This replaces `mq_notify` for most uses: the wait is a readiness watch on the queue
   * descriptor, costs no thread, and does not keep other processes from registering.
   *
   * @example
   * ```ts
   * for await (const { data, priority } of q.messages({ signal })) {
   *   if (data.toString() === 'stop') break
   * }
   * ```
   */
  messages(options?: PosixMessagesOptions): AsyncIterableIterator<PosixMessage> {
    const opts = validateOptions(options)
    const signal = opts.signal
    validateAbortSignal(signal, 'options.signal')
    const iteration = new WaitGroup()
    const groups = [this.#life.waits, iteration]
    let finished = false
    const done = (): IteratorResult<PosixMessage> => ({ done: true, value: undefined })
    const ended = (err: unknown): IteratorResult<PosixMessage> => {
      finished = true
      if (err instanceof AbortError && err.cause === ITERATION_ENDED) return done()
      throw err
    }
    const yielded = (value: PosixMessage): IteratorResult<PosixMessage> => ({ done: false, value })
    return {
      [Symbol.asyncIterator]() {
        return this
      },
      next: (): Promise<IteratorResult<PosixMessage>> => {
        if (finished) return Promise.resolve(done())
        let now: PosixMessage | null
        try {
          this.#life.check()
          if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason })
          now = this.#receiveNow(NOW, true)
        } catch (err) {
          return new Promise((resolve) => resolve(ended(err)))
        }
        if (now !== null) return Promise.resolve(yielded(now))
        return this.#waitAndReceive(signal, groups, undefined).then(yielded, ended)
      },
      return: async (): Promise<IteratorResult<PosixMessage>> => {
        finished = true
        iteration.cancelAll(ITERATION_ENDED)
        return done()
      },
    }
  }

  /** Same as {@link messages} with no options: `for await (const msg of q)`. */
  [Symbol.asyncIterator](): AsyncIterableIterator<PosixMessage> {
    return this.messages()
  }

  /**
   * The queue's state: messages queued now and its attributes (`mq_getattr`), with its owner
   * and mode (`fstat`).
   *
   * @example
   * ```ts
   * const { messages, maxMessages, messageSize, nonBlocking, mode } = q.stat()
   * ```
   */
  stat(): PosixMessageQueueStat {
    this.#life.check()
    const s = callNative(() => native.posixQueueStat(this.#id))
    return {
      messages: s.messages,
      maxMessages: s.maxMessages,
      messageSize: s.messageSize,
      nonBlocking: s.nonBlocking,
      mode: s.mode,
      uid: s.uid,
      gid: s.gid,
    }
  }

  /**
   * Switches non-blocking mode (`mq_setattr` of `O_NONBLOCK`, the one attribute it changes):
   * it decides whether `sendSync`/`receiveSync` block when `wait` is left out. Returns the
   * mode it had.
   *
   * @example
   * ```ts
   * q.setNonBlocking(true)
   * q.receiveSync() // throws EAGAIN when empty
   * ```
   */
  setNonBlocking(on: boolean): boolean {
    const value = optionalBoolean(on, 'on', false)
    this.#life.check()
    const old = callNative(() => native.posixQueueSetNonBlocking(this.#id, value))
    this.#nonBlocking = value
    return old
  }

  /**
   * Changes the queue's permission bits (exactly: no umask) or owner (`fchmod`, `fchown`).
   *
   * @example
   * ```ts
   * q.update({ mode: 0o660 })
   * ```
   */
  update(changes: PosixMessageQueueUpdate): void {
    const c = validateOptions(changes, 'changes')
    const mode = c.mode === undefined ? undefined : validateMode(c.mode, 'changes.mode', 0)
    const uid = c.uid === undefined ? undefined : optionalInteger(c.uid, 'changes.uid', 0, 0xffff_fffe, 0)
    const gid = c.gid === undefined ? undefined : optionalInteger(c.gid, 'changes.gid', 0, 0xffff_fffe, 0)
    this.#life.check()
    callNative(() => native.posixQueueUpdate(this.#id, mode, uid, gid))
  }

  /**
   * Asks the kernel to signal this process when a message arrives in the empty queue and no
   * receive is waiting (`mq_notify` with `SIGEV_SIGNAL`; the signal's `si_code` is
   * `SI_MESGQ`, its value `value`, its pid and uid the sender's). The registration is used up
   * by one notification; `null` removes it. One process at a time may register (`EBUSY`), and
   * closing any handle on this queue in this process (not only this one) cancels the
   * registration, as `mq_close` does.
   *
   * Watch the signal first (`watchSignals`), or its default action may end the process. For
   * most uses the async iterator is simpler: it needs no signal and no registration.
   *
   * @example
   * ```ts
   * const watch = watchSignals('SIGUSR2')
   * q.notify({ signal: 'SIGUSR2', value: 7 })
   * for await (const s of watch) if (s.value === 7) drain(q)
   * ```
   */
  notify(options: PosixQueueNotifyOptions | null): void {
    if (options === null) {
      this.#life.check()
      callNative(() => native.posixQueueNotify(this.#id, 0, 0, 0))
      return
    }
    const opts = validateOptions(options)
    if (opts.signal === undefined) throw invalidArgValue('options.signal', undefined, 'is required')
    const { number } = toChangeableSignal(opts.signal, 'options.signal')
    const value = optionalInteger(opts.value, 'options.value', -0x8000_0000, 0x7fff_ffff, 0)
    this.#life.check()
    callNative(() => native.posixQueueNotify(this.#id, 2, number, value))
  }

  /**
   * Removes the queue's name (`mq_unlink`), as {@link PosixMessageQueue.unlink}: this handle
   * keeps working until it is closed.
   *
   * @example
   * ```ts
   * q.remove()
   * q.close()
   * ```
   */
  remove(): void {
    this.#life.check()
    PosixMessageQueue.unlink(this.name)
  }

  /**
   * Closes this handle (`mq_close`): pending waits end with an `AbortError` (having taken
   * nothing), and further calls throw `ERR_INVALID_STATE`. The queue stays (see
   * {@link remove}). Calling it again does nothing.
   */
  close(): void {
    const reason = this.#life.close()
    if (reason === undefined) return
    // libuv lets go of the descriptor before it is closed.
    releaseFd(native.posixQueueFd(this.#id), reason)
    finalizer.unregister(this)
    native.posixQueueClose(this.#id)
  }

  /** Calls {@link close}, for `using q = PosixMessageQueue.open(...)`. */
  [Symbol.dispose](): void {
    this.close()
  }
}

/**
 * The queues that exist now, as the `mqueue` file system lists them (`ls /dev/mqueue`, `cat
 * /dev/mqueue/NAME`): name, bytes queued, notification, owner and mode, and, for the queues this
 * process may open, the number of messages and the attributes. Sorted by name.
 *
 * Reading a queue's entry opens the queue, and the kernel cancels the notification a process
 * registered on a queue when that process closes any descriptor of it (`mq_close`): so a queue
 * this process registered with {@link PosixMessageQueue.notify} is not read, and is listed from
 * what this process knows (its registration, owner and mode; `bytes` and the counts are
 * `null`). Such an entry still shows a registration that its notification has used up since.
 *
 * Throws `ENOENT` when the file system is not mounted (`mount -t mqueue none /dev/mqueue`
 * mounts it; `options.dir` names another mount point), `ENOSYS` on macOS.
 *
 * @example
 * ```ts
 * for (const q of listPosixQueues()) console.log(q.name, q.messages, q.mode.toString(8))
 * ```
 */
export function listPosixQueues(options?: ListPosixQueuesOptions): PosixQueueEntry[] {
  const opts = validateOptions(options)
  if (opts.dir !== undefined) validateString(opts.dir, 'options.dir')
  let entries
  try {
    entries = callNative(() => native.posixQueueList(opts.dir))
  } catch (err) {
    if (err instanceof IpcError && err.code === 'ENOENT' && err.syscall === 'opendir') {
      throw withDetail(
        err,
        opts.dir !== undefined
          ? `'${opts.dir}'`
          : "'/dev/mqueue' (the mqueue file system is not mounted: mount -t mqueue none /dev/mqueue)",
      )
    }
    throw platformError(err)
  }
  return entries.map((e) => ({
    name: e.name,
    bytes: e.bytes ?? null,
    notify: e.notify === null || e.notify === undefined ? null : (NOTIFY_KINDS[e.notify] ?? null),
    signo: e.signo,
    notifyPid: e.notifyPid,
    uid: e.uid,
    gid: e.gid,
    owner: e.owner ?? null,
    ownerGroup: e.ownerGroup ?? null,
    mode: e.mode,
    messages: e.messages ?? null,
    maxMessages: e.maxMessages ?? null,
    messageSize: e.messageSize ?? null,
  }))
}

/**
 * The system's limits on POSIX message queues, read now (an administrator may change them):
 * what `maxMessages` and `messageSize` may be, how many queues the system holds, and the bytes
 * the user's queues may take.
 *
 * @example
 * ```ts
 * const { msgMax, msgsizeMax } = posixQueueLimits()
 * PosixMessageQueue.open('/big', { create: true, maxMessages: msgMax ?? 10 })
 * ```
 */
export function posixQueueLimits(): PosixQueueLimits {
  const l = native.posixQueueLimits()
  return {
    msgMax: l.msgMax ?? null,
    msgsizeMax: l.msgsizeMax ?? null,
    queuesMax: l.queuesMax ?? null,
    msgDefault: l.msgDefault ?? null,
    msgsizeDefault: l.msgsizeDefault ?? null,
    rlimitMsgqueue: l.rlimitMsgqueue ?? null,
  }
}
