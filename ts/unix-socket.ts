/**
 * UNIX domain sockets beyond Node's `net`: socket pairs (`socketpair`), datagram and seqpacket
 * message sockets, descriptor passing (`SCM_RIGHTS`) and credentials (`SO_PEERCRED`,
 * `SCM_CREDENTIALS`).
 *
 * Every descriptor is created close-on-exec. Waits never block the event loop nor a libuv
 * threadpool thread: an operation is first tried without waiting on the JavaScript thread (a
 * backlog drains with no thread hop), and only when it would block does the socket wait for
 * readiness on the JavaScript thread's own event loop (libuv's `uv_poll`), so idle sockets
 * cost no thread and a ready socket wakes the waiting promise with no thread hop.
 *
 * @module
 */

import { Buffer } from 'node:buffer'
import { lstatSync, unlinkSync } from 'node:fs'
import { Socket } from 'node:net'

import { AbortError, answered, callNative, invalidArgType, invalidArgValue, invalidState, outOfRange } from './errors'
import { adoptedFd } from './fd'
import { native } from './native'
import { FAST_EMPTY, FAST_FAILED, PayloadCopier, poolWords, registeredPool, throwFastError } from './pool'
import { Lifetime, WaitGroup, releaseFd, startWait, waitFd } from './reactor'
import { YieldGate, tryAfterYield } from './yield'
import {
  optionalBoolean,
  optionalInteger,
  toBytes,
  validateAbortSignal,
  validateInteger,
  validateMode,
  validateOneOf,
  validateOptions,
} from './validate'
import type { Payload } from './queue'

/**
 * Where a socket lives: a path in the file system, or a name in Linux's abstract namespace
 * (`{ abstract: 'name' }`, no file, gone with the last socket). A string is taken as UTF-8;
 * a `Buffer`/`Uint8Array` (path or name) gives the exact bytes, for names that are not UTF-8.
 */
export type SocketAddress = string | Uint8Array | { abstract: string | Uint8Array }

/**
 * A sender's address as received: a path, `{ abstract: name }`, or `null` for an unbound
 * sender. A path or name whose bytes are valid UTF-8 comes as a string; any other comes as a
 * `Buffer` of its exact bytes (never decoded with replacement characters), so that a received
 * address, passed back as `to`, always reaches the socket it came from.
 */
export type PeerAddress = string | Buffer | { abstract: string | Buffer } | null

/** A process's identity, from `SO_PEERCRED` or `SCM_CREDENTIALS`. */
export interface Credentials {
  /** Process id. */
  pid: number
  /** User id. */
  uid: number
  /** Group id. */
  gid: number
}

/** A message taken from a datagram or seqpacket socket. */
export interface SocketMessage {
  /**
   * The payload, boundaries exactly as sent, in memory of its own: `data.buffer` holds this
   * payload and nothing else (no other message, another sender's among them, is reachable
   * through it).
   */
  data: Buffer
  /**
   * Descriptors that came with it (`SCM_RIGHTS`), close-on-exec. They belong to the receiver:
   * close each with `fs.closeSync(fd)` when done.
   */
  fds: number[]
  /**
   * The sender's address (datagram sockets); `null` for an unbound sender or a connected
   * socket. A path or name that is not valid UTF-8 comes as a `Buffer` of its exact bytes, so
   * `send(reply, { to: from })` always answers the socket it came from.
   */
  from: PeerAddress
  /** The sender's credentials when the socket was made with `credentials: true`. */
  credentials: Credentials | undefined
  /**
   * `true` when descriptors came with the message and ipckit closed them (so `fds` is empty):
   * the socket does not accept descriptors (see `acceptFds`), or not all of them could be
   * received (`MSG_CTRUNC`: this process reached its descriptor limit, `RLIMIT_NOFILE`; those
   * that did arrive are closed too, since a partial set would be taken for the whole).
   */
  fdsDropped: boolean
}

/** Options of the async `send`. */
export interface SocketSendOptions {
  /** Descriptors to pass along (`SCM_RIGHTS`): any open fds; the receiver gets duplicates. */
  fds?: readonly number[]
  /** Destination of an unconnected datagram socket. */
  to?: SocketAddress
  /** Cancels a send that waits for room (then nothing was sent). */
  signal?: AbortSignal
}

/** Options of `sendSync`. */
export interface SocketSendSyncOptions extends Omit<SocketSendOptions, 'signal'> {
  /** Block while the socket buffer is full (default `true`); `false` throws `EAGAIN` instead. */
  wait?: boolean
}

/** Options of the async `receive` and of iteration. */
export interface SocketReceiveOptions {
  /** Cancels the wait; a cancelled receive takes nothing. */
  signal?: AbortSignal
}

/** Options of `receiveSync`. */
export interface SocketReceiveSyncOptions {
  /** Block until a message arrives (default `true`); `false` throws `EAGAIN` instead. */
  wait?: boolean
}

/** Options for a socket bound to an address. */
export interface SocketBindOptions {
  /** Permission bits of the socket file (paths only). Default `0o600`. */
  mode?: number
  /**
   * When the path holds a socket file nobody listens on (a crashed server's leftover), remove
   * it and bind again. A live socket still fails with `EADDRINUSE`. Default `false`.
   */
  replaceStale?: boolean
  /** Receive each sender's credentials with every message (`SO_PASSCRED`). Default `false`. */
  credentials?: boolean
  /** Take descriptors that come with messages (see {@link SocketOptions.acceptFds}). Default `false`. */
  acceptFds?: boolean
}

/** Options of {@link UnixSeqpacketServer.listen}. */
export interface SocketListenOptions extends Omit<SocketBindOptions, 'credentials'> {
  /** Most pending connections (`listen` backlog). Default `511`, as Node's `net`. */
  backlog?: number
  /** Whether the accepted connections take descriptors (see {@link SocketOptions.acceptFds}). Default `false`. */
  acceptFds?: boolean
}

/** Options of the sockets made by `fromFd`, `create`, `connect`. */
export interface SocketOptions {
  /** Receive each sender's credentials with every message (`SO_PASSCRED`). Default `false`. */
  credentials?: boolean
  /**
   * Take the descriptors (`SCM_RIGHTS`) that come with messages, into each message's `fds`.
   * Default `false`: any process that can reach the socket could otherwise fill this process's
   * descriptor table (253 per message) with descriptors it never asked for; they are closed as
   * they arrive instead (the message says so with `fdsDropped`), and the kernel is not even
   * given room for most of them.
   */
  acceptFds?: boolean
}

/** Largest number of descriptors one message may carry (the kernel's `SCM_MAX_FD`). */
export const MAX_FDS = 253
const MAX_FD = 0x7fff_ffff
const NAME_MAX = 107

interface NativeAddress {
  name: Buffer
  isAbstract: boolean
}

function parseAddress(value: unknown, name: string): NativeAddress {
  if (typeof value === 'string' || value instanceof Uint8Array) {
    const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : Buffer.from(value)
    if (bytes.length === 0 || bytes.includes(0)) {
      throw invalidArgValue(name, value, 'must be a non-empty path without NUL bytes')
    }
    if (bytes.length > NAME_MAX) throw outOfRange(`${name}.length`, `<= ${NAME_MAX} bytes`, bytes.length)
    return { name: bytes, isAbstract: false }
  }
  if (value !== null && typeof value === 'object' && 'abstract' in value) {
    const a = (value as { abstract: unknown }).abstract
    if (typeof a !== 'string' && !(a instanceof Uint8Array)) {
      throw invalidArgType(`${name}.abstract`, 'of type string or an instance of Buffer or Uint8Array', a)
    }
    const bytes = typeof a === 'string' ? Buffer.from(a, 'utf8') : Buffer.from(a)
    if (bytes.length > NAME_MAX) throw outOfRange(`${name}.abstract.length`, `<= ${NAME_MAX} bytes`, bytes.length)
    return { name: bytes, isAbstract: true }
  }
  throw invalidArgType(
    name,
    'of type string, an instance of Buffer or Uint8Array, or an object with an "abstract" name',
    value,
  )
}

/** The last string destination parsed by a send, kept: a sender names the same one again and again. */
let lastTo: { value: string; parsed: NativeAddress } | undefined

/** `parseAddress` for `options.to`, reusing the last parse of the same string. */
function parseTo(value: unknown): NativeAddress {
  if (typeof value === 'string' && lastTo?.value === value) return lastTo.parsed
  const parsed = parseAddress(value, 'options.to')
  if (typeof value === 'string') lastTo = { value, parsed }
  return parsed
}

/** One non-blocking `sendmsg`: the bytes sent, or -1 when it would block (unless `throwEagain`). */
function sendNow(
  fd: number,
  bytes: Uint8Array,
  fds: number[],
  to: NativeAddress | undefined,
  throwEagain: boolean,
): number {
  if (fds.length === 0 && bytes.length <= MIN_ROOM) return sendFast(fd, bytes, to, throwEagain)
  // Without descriptors, a call with fewer arguments (each costs on every call).
  if (fds.length === 0) {
    return callNative(() => native.socketSendPlain(fd, bytes, to?.name, to?.isAbstract ?? false, true, throwEagain))
  }
  return callNative(() => native.socketSend(fd, bytes, fds, to?.name, to?.isAbstract ?? false, true, throwEagain))
}

function validateFds(value: unknown, name: string): number[] {
  if (value === undefined) return []
  if (!Array.isArray(value)) throw invalidArgType(name, 'an instance of Array', value)
  if (value.length > MAX_FDS) throw outOfRange(`${name}.length`, `<= ${MAX_FDS}`, value.length)
  value.forEach((fd, i) => validateInteger(fd, `${name}[${i}]`, 0, MAX_FD))
  return value as number[]
}

/** @internal A descriptor number (memfd, eventfd and pidfd `fromFd` check theirs with it too). */
export function validateFd(value: unknown, name = 'fd'): number {
  validateInteger(value, name, 0, MAX_FD)
  return value
}

/** An address from the native side: each name a string when valid UTF-8, else its bytes. */
interface NativeSocketAddress {
  path?: string | Buffer | null
  abstractName?: string | Buffer | null
}

interface NativeReceived {
  data: Buffer
  fds: number[]
  from?: NativeSocketAddress | null
  credentials?: Credentials | null
  fdsDropped: boolean
  end: boolean
}

function toMessage(r: NativeReceived): SocketMessage {
  return {
    data: r.data,
    fds: r.fds,
    from: toPeerAddress(r.from ?? null),
    credentials: r.credentials ? { pid: r.credentials.pid, uid: r.credentials.uid, gid: r.credentials.gid } : undefined,
    fdsDropped: r.fdsDropped,
  }
}

function toPeerAddress(a: NativeSocketAddress | null): PeerAddress {
  if (a === null) return null
  if (a.path !== undefined && a.path !== null) return a.path
  if (a.abstractName !== undefined && a.abstractName !== null) return { abstract: a.abstractName }
  return null
}

/**
 * The fast path of receives and sends (`socketFastReceive`/`socketFastSend` in
 * crates/ipckit-node/src/socket.rs). A native call with arguments costs more than the
 * `recvmsg` it makes (napi-rs sets up a borrow scope per call), and a native call that builds
 * an object (a `Buffer` over Rust memory, an address) several times more. So each thread
 * registers one pool buffer at a time: the arguments are written into its first `FAST_ARGS`
 * bytes, an argument-less native function receives straight into the pool (one system call:
 * no `FIONREAD` first, see `ipckit::socket::receive_into`) and answers with the length, the
 * sender's address code in the argument area.
 *
 * Every message is received at the same place, just past the arguments, and its payload is
 * copied out at once into a Buffer of its own ({@link PayloadCopier}): a payload never shares
 * memory with another message. A message larger than the pool's room comes whole from
 * `socketFastTake()`, as do messages with descriptors or credentials. The pool itself is never
 * handed out; it is marked untransferable all the same, and replaced if it was detached (its
 * length is then 0) before the native side could write to it again. Sends of up to `MIN_ROOM`
 * bytes copy their payload into the pool.
 */
const FAST_ARGS = native.SOCKET_FAST_ARGS
const NAME_AT = native.SOCKET_FAST_NAME_AT
const SOFT = native.SOCKET_FAST_SOFT
const KEPT = native.SOCKET_FAST_KEPT
const fastReceive = native.socketFastReceive
const fastSend = native.socketFastSend
const POOL_SIZE = 128 * 1024
/** The largest payload a send copies into the pool. */
const MIN_ROOM = 16 * 1024

/**
 * The current pool (none until the first call: its length 0 makes one), the argument words,
 * and what copies payloads out of it.
 */
let pool: Buffer = Buffer.alloc(0)
let words: Int32Array = new Int32Array(0)
let copier = new PayloadCopier(pool, 0)

function newPool(): void {
  pool = registeredPool(POOL_SIZE, native.socketFastRegister)
  words = poolWords(pool, FAST_ARGS)
  copier = new PayloadCopier(pool, FAST_ARGS)
}

/** `receiveNow` modes: non-blocking, non-blocking failing with `EAGAIN`, blocking. */
const NOW = SOFT
const NOW_OR_THROW = 0
const BLOCK = native.SOCKET_FAST_WAIT
/** Added to a mode: take descriptors (`acceptFds`). */
const FDS = native.SOCKET_FAST_FDS

/**
 * One `recvmsg` on this thread through the pool: a message, `null` at end of stream,
 * `undefined` when none is queued (`NOW`; and `BLOCK` on a non-blocking descriptor), or, with
 * `NOW_OR_THROW`, the `EAGAIN` error. With `FDS` in `mode`, descriptors are taken.
 */
function receiveNow(fd: number, mode: number): SocketMessage | null | undefined {
  if (pool.length === 0) newPool()
  words[0] = fd
  words[1] = mode
  words[2] = FAST_ARGS
  words[3] = pool.length - FAST_ARGS
  const len = fastReceive()
  if (len >= 0) {
    const data = copier.take(len)
    const code = words[4]!
    if (code === 0) return { data, fds: [], from: null, credentials: undefined, fdsDropped: false }
    // 1 + 2 * name length + (1 if abstract), the name in the argument area; word 5 says
    // whether it is not UTF-8 (then its exact bytes, copied).
    const end = NAME_AT + ((code - 1) >> 1)
    const name = words[5] === 0 ? pool.toString('utf8', NAME_AT, end) : Buffer.from(pool.subarray(NAME_AT, end))
    return {
      data,
      fds: [],
      from: (code - 1) & 1 ? { abstract: name } : name,
      credentials: undefined,
      fdsDropped: false,
    }
  }
  if (len === FAST_EMPTY) return undefined
  if (len === KEPT) {
    const r = native.socketFastTake() as NativeReceived | null
    if (r === null) throw new Error('ipckit: a kept message went missing')
    return r.end ? null : toMessage(r)
  }
  return throwFastError(native.socketFastError)
}

/** {@link sendNow} of a payload of at most `MIN_ROOM` bytes without descriptors, through the pool. */
function sendFast(fd: number, bytes: Uint8Array, to: NativeAddress | undefined, throwEagain: boolean): number {
  if (pool.length === 0) newPool()
  pool.set(bytes, FAST_ARGS)
  words[0] = fd
  words[1] = throwEagain ? 0 : SOFT
  words[2] = FAST_ARGS
  words[3] = bytes.length
  if (to === undefined) {
    words[4] = 0
  } else {
    pool.set(to.name, NAME_AT)
    words[4] = 1 + 2 * to.name.length + (to.isAbstract ? 1 : 0)
  }
  const sent = fastSend()
  return sent === FAST_FAILED ? throwFastError(native.socketFastError) : sent
}

/** Ends an iterator's pending wait without an error. */
const ITERATION_ENDED = Symbol('iteration ended')

/** Closes descriptors whose owner object was collected without `close()` (a safety net). */
const finalizer = new FinalizationRegistry<number>((fd) => {
  try {
    releaseFd(fd, undefined)
    native.socketClose(fd)
  } catch {
    // already closed
  }
})

/** Waits, on this thread's event loop, until `fd` is readable or writable. */
const waitReady = waitFd
/** The attempt of a wait that only waits for readiness (the caller then retries itself). */
const READY = (): true => true

/** An async iterator over `next()` results until it yields `null`; `return()` cancels the wait. */
function iterate<T>(
  next: (groups: readonly WaitGroup[]) => Promise<T | null>,
  owner: WaitGroup,
): AsyncIterableIterator<T> {
  const iteration = new WaitGroup()
  const groups = [owner, iteration]
  let finished = false
  const done = (): IteratorResult<T> => ({ done: true, value: undefined })
  return {
    [Symbol.asyncIterator]() {
      return this
    },
    next: async (): Promise<IteratorResult<T>> => {
      if (finished) return done()
      try {
        const value = await next(groups)
        if (value === null) {
          finished = true
          return done()
        }
        return { done: false, value }
      } catch (err) {
        finished = true
        if (err instanceof AbortError && err.cause === ITERATION_ENDED) return done()
        throw err
      }
    },
    return: async (): Promise<IteratorResult<T>> => {
      finished = true
      iteration.cancelAll(ITERATION_ENDED)
      return done()
    },
  }
}

/**
 * What datagram and seqpacket sockets share: send and receive whole messages with
 * descriptors, async iteration, credentials, `close()`.
 */
abstract class MessageSocket implements Disposable, AsyncDisposable {
  /** The descriptor (owned by this object until {@link close}); can go to a child's `stdio`. */
  readonly fd: number
  readonly #life: Lifetime
  readonly #name: string
  /** `FDS` when the socket takes descriptors, else 0: added to every receive's mode. */
  readonly #fds: number
  /** Whether waits to receive, and to send, yield the CPU first (see ts/yield.ts). */
  readonly #receiveGate = new YieldGate()
  readonly #sendGate = new YieldGate()

  /** @internal */
  protected constructor(fd: number, name: string, acceptFds: boolean) {
    this.fd = fd
    this.#name = name
    this.#life = new Lifetime(name)
    this.#fds = acceptFds ? FDS : 0
    finalizer.register(this, fd, this)
    // Closed when this thread's environment ends with the socket open (see ts/fd.ts).
    native.fdOwned(fd)
  }

  /** Whether received descriptors are taken (`acceptFds`); otherwise they are closed as they come. */
  get acceptFds(): boolean {
    return this.#fds !== 0
  }

  /** Whether {@link close} was called. */
  get closed(): boolean {
    return this.#life.closed
  }

  /** @internal */
  protected check(): void {
    this.#life.check()
  }

  /**
   * The bytes of a payload to send. An empty one is refused on a seqpacket socket: the
   * receiver cannot tell it from the end of the connection once this side has closed (both
   * read as 0 bytes from `recvmsg`).
   */
  #payload(data: Payload): Uint8Array {
    const bytes = toBytes(data, 'data')
    if (bytes.length === 0 && this.#name === 'UnixSeqpacketSocket') {
      throw invalidArgValue(
        'data',
        data,
        'must not be empty on a seqpacket socket (an empty message reads as the end of the connection once the sender has closed)',
      )
    }
    return bytes
  }

  /**
   * Sends one message (`sendmsg`), with descriptors in `fds`. When the socket buffer (or a
   * datagram receiver's queue) is full it waits, without blocking the event loop, for room;
   * `signal` cancels that wait (then nothing was sent). Rejects with `EMSGSIZE` for a message
   * larger than the socket can ever hold, `ECONNREFUSED`/`ENOENT` for a missing receiver, and
   * `ERR_INVALID_ARG_VALUE` for an empty message on a seqpacket socket (see
   * {@link UnixSeqpacketSocket}).
   *
   * @example
   * ```ts
   * await sock.send('hello')
   * await sock.send(Buffer.from([1, 2]), { fds: [fs.openSync('/etc/hostname', 'r')] })
   * ```
   */
  async send(data: Payload, options?: SocketSendOptions): Promise<void> {
    const bytes = this.#payload(data)
    const opts = validateOptions(options)
    const fds = validateFds(opts.fds, 'options.fds')
    const to = opts.to === undefined ? undefined : parseTo(opts.to)
    const signal = opts.signal
    validateAbortSignal(signal, 'options.signal')
    this.check()
    if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason })
    for (;;) {
      const sent = sendNow(this.fd, bytes, fds, to, false)
      if (sent >= 0) return
      if (to !== undefined) {
        // An unconnected datagram socket cannot poll for room at its destination: the
        // send waits in the kernel, on an addon thread.
        const fd = this.fd
        return startWait(
          (reactor, waitId) => native.socketSendStart(reactor, waitId, fd, bytes, fds, to.name, to.isAbstract),
          () => undefined,
          signal,
          [this.#life.waits],
        )
      }
      if (tryAfterYield(this.#sendGate, () => sendNow(this.fd, bytes, fds, to, false) >= 0 || undefined)) return
      await waitReady(this.fd, true, READY, signal, [this.#life.waits])
      this.#life.checkAfterWait()
    }
  }

  /**
   * Sends one message, blocking the calling thread while the buffer is full; with
   * `wait: false` a full buffer throws `EAGAIN` instead.
   *
   * @example
   * ```ts
   * sock.sendSync('ping', { wait: false })
   * ```
   */
  sendSync(data: Payload, options?: SocketSendSyncOptions): void {
    const bytes = this.#payload(data)
    const opts = validateOptions(options)
    const fds = validateFds(opts.fds, 'options.fds')
    const to = opts.to === undefined ? undefined : parseTo(opts.to)
    const wait = optionalBoolean(opts.wait, 'options.wait', true)
    this.check()
    const name = to?.name
    const isAbstract = to?.isAbstract ?? false
    for (;;) {
      if (sendNow(this.fd, bytes, fds, to, !wait) >= 0) return
      if (to !== undefined) {
        // Unconnected: room at the destination cannot be polled for; block in the kernel.
        answered(callNative(() => native.socketSend(this.fd, bytes, fds, name, isAbstract, false, false)))
        return
      }
      callNative(() => native.socketWaitSync(this.fd, true))
    }
  }

  /** A message already queued, `null` at end of stream, `undefined` if none; throws when closed or aborted. */
  #ready(signal: AbortSignal | undefined): SocketMessage | null | undefined {
    this.check()
    if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason })
    return receiveNow(this.fd, NOW | this.#fds)
  }

  /**
   * Waits on the event loop until readable, then takes a message there, in the same loop
   * iteration (again at the next report if another reader was first).
   */
  #waitAndReceive(signal: AbortSignal | undefined, groups: readonly WaitGroup[]): Promise<SocketMessage | null> {
    let now: SocketMessage | null | undefined
    try {
      now = this.#afterYield()
    } catch (err) {
      return Promise.reject(err)
    }
    return now !== undefined ? Promise.resolve(now) : this.#waitReadable(signal, groups)
  }

  /** One more receive after giving the CPU away (see ts/yield.ts): a message, `null` at end, `undefined` if none. */
  #afterYield(): SocketMessage | null | undefined {
    const fd = this.fd
    const mode = NOW | this.#fds
    return tryAfterYield(this.#receiveGate, () => receiveNow(fd, mode))
  }

  /** Waits on the event loop until readable, then takes a message (as {@link #waitAndReceive}, without its yield). */
  #waitReadable(signal: AbortSignal | undefined, groups: readonly WaitGroup[]): Promise<SocketMessage | null> {
    const fd = this.fd
    const mode = NOW | this.#fds
    return waitReady(fd, false, () => receiveNow(fd, mode), signal, groups)
  }

  /** @internal A message already queued resolves at once, with no thread hop. */
  protected receiveOrEnd(options: SocketReceiveOptions | undefined): Promise<SocketMessage | null> {
    try {
      const opts = validateOptions(options)
      const signal = opts.signal
      validateAbortSignal(signal, 'options.signal')
      const now = this.#ready(signal)
      return now !== undefined ? Promise.resolve(now) : this.#waitAndReceive(signal, [this.#life.waits])
    } catch (err) {
      return Promise.reject(err)
    }
  }

  /** @internal */
  protected receiveOrEndSync(options: SocketReceiveSyncOptions | undefined): SocketMessage | null {
    const opts = validateOptions(options)
    const wait = optionalBoolean(opts.wait, 'options.wait', true)
    this.check()
    for (;;) {
      // Blocking, a receive waits in recvmsg itself (as C would), not in poll then recvmsg.
      const now = receiveNow(this.fd, (wait ? BLOCK : NOW_OR_THROW) | this.#fds)
      if (now !== undefined) return now
      callNative(() => native.socketWaitSync(this.fd, false))
    }
  }

  /**
   * @internal Each `next()` takes a message only when one is queued (resolving at once, with
   * no thread hop) or once the socket is readable, so leaving the loop takes nothing more.
   */
  protected iterateMessages(options?: SocketReceiveOptions): AsyncIterableIterator<SocketMessage> {
    const opts = validateOptions(options)
    const signal = opts.signal
    validateAbortSignal(signal, 'options.signal')
    const iteration = new WaitGroup()
    const groups = [this.#life.waits, iteration]
    let finished = false
    const done = (): IteratorResult<SocketMessage> => ({ done: true, value: undefined })
    const ended = (err: unknown): IteratorResult<SocketMessage> => {
      finished = true
      if (err instanceof AbortError && err.cause === ITERATION_ENDED) return done()
      throw err
    }
    const yielded = (value: SocketMessage | null): IteratorResult<SocketMessage> => {
      if (value !== null) return { done: false, value }
      finished = true
      return done()
    }
    return {
      [Symbol.asyncIterator]() {
        return this
      },
      next: (): Promise<IteratorResult<SocketMessage>> => {
        if (finished) return Promise.resolve(done())
        let now: SocketMessage | null | undefined
        try {
          // A message now, or after a yield, resolves with no promise and `then` of a wait's.
          now = this.#ready(signal)
          if (now === undefined) now = this.#afterYield()
        } catch (err) {
          return new Promise((resolve) => resolve(ended(err)))
        }
        if (now !== undefined) return Promise.resolve(yielded(now))
        return this.#waitReadable(signal, groups).then(yielded, ended)
      },
      return: async (): Promise<IteratorResult<SocketMessage>> => {
        finished = true
        iteration.cancelAll(ITERATION_ENDED)
        return done()
      },
    }
  }

  /**
   * The credentials of the connected peer (`SO_PEERCRED`): for a socket pair, the process
   * that made the pair; for a connection, the process that connected or listened. Throws an
   * `IpcError` `ENOTCONN` when there is no peer whose credentials the kernel kept: a datagram
   * socket (connected or not) that no `socketpair` made, an unconnected socket. (The kernel
   * itself would answer pid 0, uid and gid 4294967295, which are no one's.) A datagram
   * receiver learns each sender's identity with `credentials: true` instead.
   *
   * @example
   * ```ts
   * const { pid, uid, gid } = sock.peerCredentials()
   * UnixDatagramSocket.create().peerCredentials()   // throws, code 'ENOTCONN'
   * ```
   */
  peerCredentials(): Credentials {
    this.check()
    return callNative(() => native.socketPeerCredentials(this.fd))
  }

  /** This socket's own address (`getsockname`); `null` when unbound. */
  get address(): PeerAddress {
    this.check()
    return toPeerAddress(callNative(() => native.socketLocalAddress(this.fd)))
  }

  /** The connected peer's address (`getpeername`); `null` when it is unbound. */
  get remoteAddress(): PeerAddress {
    this.check()
    return toPeerAddress(callNative(() => native.socketPeerAddress(this.fd)))
  }

  /**
   * Closes the descriptor: pending waits end with an `AbortError` (having taken nothing), and
   * further calls throw `ERR_INVALID_STATE`. A datagram socket that bound a path also removes
   * its socket file (see {@link UnixDatagramSocket.close}). Calling it again does nothing.
   */
  close(): void {
    const reason = this.#life.close()
    if (reason === undefined) return
    // libuv lets go of the fd before it is closed.
    releaseFd(this.fd, reason)
    finalizer.unregister(this)
    try {
      native.socketClose(this.fd)
    } catch {
      // The descriptor was closed behind our back; nothing is left to release.
    }
  }

  /** Calls {@link close}, for `using sock = ...`. */
  [Symbol.dispose](): void {
    this.close()
  }

  /**
   * {@link close}, then resolves once every wait it ended has settled (each pending promise
   * has rejected with its `AbortError`; a wait on another thread has confirmed that it took
   * nothing), for `await using sock = ...`.
   *
   * @example
   * ```ts
   * {
   *   await using sock = UnixDatagramSocket.bind('/tmp/app.sock')
   *   // ...
   * }   // closed, and no wait of it is pending any more
   * ```
   */
  async [Symbol.asyncDispose](): Promise<void> {
    this.close()
    await this.#life.waits.settled()
  }
}

function setCredentials(fd: number, options: SocketOptions | SocketBindOptions): void {
  if (options.credentials === true) callNative(() => native.socketSetPassCredentials(fd, true))
}

/** Runs `fn(fd)`, closing `fd` if it throws (so a failed factory leaks nothing). */
function closeOnError<T>(fd: number, fn: () => T): T {
  try {
    return fn()
  } catch (err) {
    native.socketClose(fd)
    throw err
  }
}

function bindArgs(options: SocketBindOptions | SocketListenOptions | undefined) {
  const opts = validateOptions(options as SocketBindOptions | undefined)
  return {
    opts,
    mode: validateMode(opts.mode, 'options.mode', 0o600),
    replaceStale: optionalBoolean(opts.replaceStale, 'options.replaceStale', false),
    credentials: optionalBoolean(opts.credentials, 'options.credentials', false),
    acceptFds: acceptFdsOf(opts),
  }
}

/** The `acceptFds` option, validated; `false` when absent. */
function acceptFdsOf(options: { acceptFds?: unknown }): boolean {
  return optionalBoolean(options.acceptFds, 'options.acceptFds', false)
}

function checkKind(fd: number, want: 'dgram' | 'seqpacket'): void {
  const kind = callNative(() => native.socketKind(fd))
  if (kind !== want) {
    throw invalidArgValue(
      'fd',
      fd,
      `must be a ${want === 'dgram' ? 'SOCK_DGRAM' : 'SOCK_SEQPACKET'} UNIX socket, not ${kind}`,
    )
  }
}

/**
 * A UNIX datagram socket (`SOCK_DGRAM`): messages with boundaries, to and from any address,
 * with descriptors and (opt-in) the sender's credentials.
 *
 * @example
 * ```ts
 * import { UnixDatagramSocket } from 'ipckit'
 *
 * using server = UnixDatagramSocket.bind('/tmp/app.sock')
 * for await (const { data, from } of server) {
 *   if (from !== null) await server.send(data, { to: from })   // echo
 * }
 * ```
 */
export class UnixDatagramSocket extends MessageSocket {
  readonly #path: Buffer | undefined
  readonly #bound: BoundFile | undefined

  private constructor(fd: number, acceptFds: boolean, path?: Buffer) {
    super(fd, 'UnixDatagramSocket', acceptFds)
    this.#path = path
    this.#bound = path === undefined ? undefined : boundFile(path)
  }

  /**
   * A socket bound to `address` (`bind`): a path (its file gets `mode`, default `0o600`)
   * or `{ abstract: name }`. Throws `EADDRINUSE` if the address is taken (see
   * `replaceStale`), `ENOENT`/`EACCES` for a bad directory. {@link close} removes the socket
   * file, if the path still holds that file.
   *
   * @example
   * ```ts
   * const sock = UnixDatagramSocket.bind({ abstract: 'my-app' }, { credentials: true })
   * ```
   */
  static override bind(address: SocketAddress, options?: SocketBindOptions): UnixDatagramSocket {
    const addr = parseAddress(address, 'address')
    const { mode, replaceStale, acceptFds, opts } = bindArgs(options)
    const fd = callNative(() => native.socketOpen('dgram', false))
    return closeOnError(fd, () => {
      callNative(() => native.socketBind(fd, addr.name, addr.isAbstract, addr.isAbstract ? null : mode, replaceStale))
      setCredentials(fd, opts)
      return new UnixDatagramSocket(fd, acceptFds, addr.isAbstract ? undefined : addr.name)
    })
  }

  /**
   * An unbound socket, to send with `{ to }` or after {@link connect}. Receivers see its
   * messages as coming `from: null` (they cannot answer).
   *
   * @example
   * ```ts
   * const sock = UnixDatagramSocket.create()
   * await sock.send('hi', { to: '/tmp/app.sock' })
   * ```
   */
  static create(options?: SocketOptions): UnixDatagramSocket {
    const opts = validateOptions(options)
    optionalBoolean(opts.credentials, 'options.credentials', false)
    const acceptFds = acceptFdsOf(opts)
    const fd = callNative(() => native.socketOpen('dgram', false))
    return closeOnError(fd, () => {
      setCredentials(fd, opts)
      return new UnixDatagramSocket(fd, acceptFds)
    })
  }

  /**
   * An unbound socket connected to `address` ({@link create} then {@link connect}): `send`
   * without `to` goes there. Throws `ENOENT`, `ECONNREFUSED`, `EACCES`.
   *
   * @example
   * ```ts
   * const log = UnixDatagramSocket.connect('/dev/log')
   * await log.send('<14>hello syslog')
   * ```
   */
  static connect(address: SocketAddress, options?: SocketOptions): UnixDatagramSocket {
    const addr = parseAddress(address, 'address')
    const sock = UnixDatagramSocket.create(options)
    try {
      callNative(() => native.socketConnect(sock.fd, addr.name, addr.isAbstract))
    } catch (err) {
      sock.close()
      throw err
    }
    return sock
  }

  /**
   * Wraps a datagram socket descriptor, for instance one a parent handed down as `stdio[3]`.
   * The object owns the fd from now on. Throws `EBADF`/`ENOTSOCK` for a bad descriptor,
   * `ERR_INVALID_ARG_VALUE` for a socket of another type.
   *
   * @example
   * ```ts
   * const sock = UnixDatagramSocket.fromFd(3)
   * ```
   */
  static fromFd(fd: number, options?: SocketOptions): UnixDatagramSocket {
    validateFd(fd)
    const opts = validateOptions(options)
    optionalBoolean(opts.credentials, 'options.credentials', false)
    const acceptFds = acceptFdsOf(opts)
    checkKind(fd, 'dgram')
    setCredentials(fd, opts)
    const s = new UnixDatagramSocket(fd, acceptFds)
    adoptedFd(fd)
    return s
  }

  /** @internal For {@link socketpair}. */
  static fromPairFd(fd: number, acceptFds = false): UnixDatagramSocket {
    // Reachable from JavaScript: a fractional or bogus fd would be truncated and closed later.
    validateFd(fd)
    return new UnixDatagramSocket(fd, acceptFds === true)
  }

  /**
   * Sets the default destination (`connect`): `send` without `to` goes there, and only its
   * datagrams are received. Throws `ENOENT`, `ECONNREFUSED` (nobody bound there), `EACCES`.
   *
   * @example
   * ```ts
   * sock.connect('/tmp/app.sock')
   * await sock.send('hello')
   * ```
   */
  connect(address: SocketAddress): this {
    const addr = parseAddress(address, 'address')
    this.check()
    callNative(() => native.socketConnect(this.fd, addr.name, addr.isAbstract))
    return this
  }

  /**
   * Takes one datagram, waiting without blocking the event loop; one already queued is taken
   * at once. An `AbortError` if `signal` aborts or the socket is closed (nothing taken).
   *
   * @example
   * ```ts
   * const { data, from, fds, credentials } = await sock.receive({ signal })
   * ```
   */
  receive(options?: SocketReceiveOptions): Promise<SocketMessage> {
    return this.receiveOrEnd(options) as Promise<SocketMessage>
  }

  /**
   * Takes one datagram, blocking the calling thread; with `wait: false` an empty socket throws
   * `EAGAIN`.
   *
   * @example
   * ```ts
   * const msg = sock.receiveSync({ wait: false })
   * ```
   */
  receiveSync(options?: SocketReceiveSyncOptions): SocketMessage {
    return this.receiveOrEndSync(options) as SocketMessage
  }

  /**
   * Iterates over datagrams as they arrive; leaving the loop cancels the pending wait and
   * takes nothing more.
   *
   * @example
   * ```ts
   * for await (const msg of sock.messages({ signal })) console.log(msg.data.toString())
   * ```
   */
  messages(options?: SocketReceiveOptions): AsyncIterableIterator<SocketMessage> {
    return this.iterateMessages(options)
  }

  /** Same as {@link messages} with no options. */
  [Symbol.asyncIterator](): AsyncIterableIterator<SocketMessage> {
    return this.messages()
  }

  /**
   * Removes the socket file this socket was bound to, now, whatever file the path holds
   * (nothing for an abstract or unbound socket); the socket stays open and usable by those
   * that already hold its address. {@link close} removes the file too, if it is still its own.
   *
   * @example
   * ```ts
   * sock.remove()   // no new sender finds it; the socket still receives
   * ```
   */
  remove(): void {
    if (this.#path !== undefined) removeSocketFile(this.#path)
  }

  /**
   * Closes the descriptor (see the base class), and removes the socket file this socket bound,
   * as Node's `net.Server` removes its own: only if the path still holds that very file (same
   * device and inode as right after `bind`), so a file that another socket has put there since
   * is left alone. An abstract name needs no removal. Calling it again does nothing.
   *
   * @example
   * ```ts
   * { using sock = UnixDatagramSocket.bind('/tmp/app.sock') }   // the file is gone here
   * ```
   */
  override close(): void {
    if (this.closed) return
    removeIfSame(this.#bound)
    super.close()
  }
}

/**
 * The socket file a `bind` made, as it was right after: its absolute path (a later `chdir`
 * does not matter), device and inode.
 */
interface BoundFile {
  /** The absolute path, as the bytes the kernel took. */
  path: Buffer
  dev: bigint
  ino: bigint
}

/** The file `bind` just made at `path` (undefined if it is not there, or not a socket). */
function boundFile(path: Buffer): BoundFile | undefined {
  try {
    const st = lstatSync(path, { bigint: true })
    // Absolute, so that a later chdir() does not matter (bytes kept as they are: a path need
    // not be UTF-8).
    const absolute = path[0] === 0x2f ? path : Buffer.concat([Buffer.from(`${process.cwd()}/`), path])
    return st.isSocket() ? { path: absolute, dev: st.dev, ino: st.ino } : undefined
  } catch {
    return undefined
  }
}

/** Removes the socket file `file` if the path still holds that same file; anything else there stays. */
function removeIfSame(file: BoundFile | undefined): void {
  if (file === undefined) return
  try {
    const st = lstatSync(file.path, { bigint: true })
    if (st.dev === file.dev && st.ino === file.ino) unlinkSync(file.path)
  } catch {
    // Removed already (remove(), or by someone else), or its folder is: nothing of ours is left.
  }
}

function removeSocketFile(path: Buffer): void {
  try {
    unlinkSync(path)
  } catch (err) {
    if ((err as { code?: string }).code !== 'ENOENT') throw err
  }
}

/**
 * One end of a seqpacket connection (`SOCK_SEQPACKET`): reliable, ordered messages with
 * boundaries, descriptors and credentials. Async iteration ends when the peer closes.
 *
 * An empty message and the end of the connection both read as 0 bytes from `recvmsg`, and the
 * kernel offers no other way to tell them apart (no `MSG_EOR`, `FIONREAD` counts bytes, `poll`
 * reports the hang-up either way). A 0-byte read is a message while the peer is connected,
 * and always with `credentials: true` (every message then carries the sender's credentials,
 * the end nothing); but once the peer has closed, the empty messages it sent after its last
 * non-empty one read as the end. So `send` refuses empty messages here (`ERR_INVALID_ARG_VALUE`); a foreign peer that
 * sends them should be read with `credentials: true`.
 *
 * @example
 * ```ts
 * import { UnixSeqpacketSocket } from 'ipckit'
 *
 * using conn = UnixSeqpacketSocket.connect('/tmp/app.seq')
 * await conn.send('request')
 * const reply = await conn.receive()       // null once the server closed
 * ```
 */
export class UnixSeqpacketSocket extends MessageSocket {
  private constructor(fd: number, acceptFds: boolean) {
    super(fd, 'UnixSeqpacketSocket', acceptFds)
  }

  /**
   * Connects to a listening seqpacket server. Throws `ENOENT` (no such file),
   * `ECONNREFUSED` (nobody listens), `EAGAIN` (the server's backlog is full; it never blocks
   * the thread).
   *
   * @example
   * ```ts
   * const conn = UnixSeqpacketSocket.connect({ abstract: 'my-app' })
   * ```
   */
  static connect(address: SocketAddress, options?: SocketOptions): UnixSeqpacketSocket {
    const addr = parseAddress(address, 'address')
    const opts = validateOptions(options)
    optionalBoolean(opts.credentials, 'options.credentials', false)
    const acceptFds = acceptFdsOf(opts)
    const fd = callNative(() => native.socketOpen('seqpacket', true))
    return closeOnError(fd, () => {
      setCredentials(fd, opts)
      callNative(() => native.socketConnect(fd, addr.name, addr.isAbstract))
      callNative(() => native.socketSetNonblocking(fd, false))
      return new UnixSeqpacketSocket(fd, acceptFds)
    })
  }

  /**
   * Wraps a seqpacket socket descriptor, for instance one a parent handed down as
   * `stdio[3]`. The object owns the fd from now on.
   *
   * @example
   * ```ts
   * const parent = UnixSeqpacketSocket.fromFd(3)
   * ```
   */
  static fromFd(fd: number, options?: SocketOptions): UnixSeqpacketSocket {
    validateFd(fd)
    const opts = validateOptions(options)
    optionalBoolean(opts.credentials, 'options.credentials', false)
    const acceptFds = acceptFdsOf(opts)
    checkKind(fd, 'seqpacket')
    setCredentials(fd, opts)
    const s = new UnixSeqpacketSocket(fd, acceptFds)
    adoptedFd(fd)
    return s
  }

  /** @internal For {@link socketpair} and the server. */
  static fromPairFd(fd: number, acceptFds = false): UnixSeqpacketSocket {
    // Reachable from JavaScript: a fractional or bogus fd would be truncated and closed later.
    validateFd(fd)
    return new UnixSeqpacketSocket(fd, acceptFds === true)
  }

  /**
   * Takes one message, waiting without blocking the event loop; resolves `null` once the peer
   * closed and everything was read. An `AbortError` if `signal` aborts (nothing taken).
   *
   * @example
   * ```ts
   * const msg = await conn.receive()
   * if (msg === null) console.log('peer closed')
   * ```
   */
  receive(options?: SocketReceiveOptions): Promise<SocketMessage | null> {
    return this.receiveOrEnd(options)
  }

  /**
   * Takes one message, blocking the calling thread; `null` at end of stream; with
   * `wait: false` an empty socket throws `EAGAIN`.
   *
   * @example
   * ```ts
   * const msg = conn.receiveSync()
   * ```
   */
  receiveSync(options?: SocketReceiveSyncOptions): SocketMessage | null {
    return this.receiveOrEndSync(options)
  }

  /**
   * Iterates over messages until the peer closes; leaving the loop cancels the pending wait.
   *
   * @example
   * ```ts
   * for await (const { data } of conn.messages()) await conn.send(data)   // echo
   * ```
   */
  messages(options?: SocketReceiveOptions): AsyncIterableIterator<SocketMessage> {
    return this.iterateMessages(options)
  }

  /** Same as {@link messages} with no options. */
  [Symbol.asyncIterator](): AsyncIterableIterator<SocketMessage> {
    return this.messages()
  }
}

/**
 * A listening seqpacket socket: accepts connections as {@link UnixSeqpacketSocket}s.
 *
 * @example
 * ```ts
 * import { UnixSeqpacketServer } from 'ipckit'
 *
 * using server = UnixSeqpacketServer.listen('/tmp/app.seq', { replaceStale: true })
 * for await (const conn of server) {
 *   const msg = await conn.receive()
 *   if (msg) await conn.send(msg.data)
 *   conn.close()
 * }
 * ```
 */
export class UnixSeqpacketServer implements Disposable, AsyncDisposable {
  /** The listening descriptor (non-blocking). */
  readonly fd: number
  readonly #life = new Lifetime('UnixSeqpacketServer')
  readonly #path: Buffer | undefined
  readonly #bound: BoundFile | undefined
  /** Whether accepted connections take descriptors. */
  readonly #acceptFds: boolean

  private constructor(fd: number, path: Buffer | undefined, acceptFds: boolean) {
    this.fd = fd
    this.#path = path
    this.#bound = path === undefined ? undefined : boundFile(path)
    this.#acceptFds = acceptFds
    finalizer.register(this, fd, this)
    // Closed when this thread's environment ends with the socket open (see ts/fd.ts).
    native.fdOwned(fd)
  }

  /**
   * Binds `address` and listens (`bind`, `listen`). Throws `EADDRINUSE` when a live socket is
   * there (see `replaceStale`). {@link close} removes the socket file, if the path still holds
   * that file.
   *
   * @example
   * ```ts
   * const server = UnixSeqpacketServer.listen({ abstract: 'my-app' }, { backlog: 64 })
   * ```
   */
  static listen(address: SocketAddress, options?: SocketListenOptions): UnixSeqpacketServer {
    const addr = parseAddress(address, 'address')
    const { mode, replaceStale, acceptFds, opts } = bindArgs(options)
    const backlog = optionalInteger((opts as SocketListenOptions).backlog, 'options.backlog', 0, 0x7fff_ffff, 511)
    const fd = callNative(() => native.socketOpen('seqpacket', true))
    return closeOnError(fd, () => {
      callNative(() => native.socketBind(fd, addr.name, addr.isAbstract, addr.isAbstract ? null : mode, replaceStale))
      callNative(() => native.socketListen(fd, backlog))
      return new UnixSeqpacketServer(fd, addr.isAbstract ? undefined : addr.name, acceptFds)
    })
  }

  /** Whether {@link close} was called. */
  get closed(): boolean {
    return this.#life.closed
  }

  /** The address listened on. */
  get address(): PeerAddress {
    this.#life.check()
    return toPeerAddress(callNative(() => native.socketLocalAddress(this.fd)))
  }

  async #accept(signal: AbortSignal | undefined, groups: readonly WaitGroup[]): Promise<UnixSeqpacketSocket> {
    validateAbortSignal(signal, 'options.signal')
    this.#life.check()
    if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason })
    for (;;) {
      const fd = callNative(() => native.socketAccept(this.fd))
      if (fd !== null) return UnixSeqpacketSocket.fromPairFd(fd, this.#acceptFds)
      await waitReady(this.fd, false, READY, signal, groups)
      this.#life.checkAfterWait()
    }
  }

  /**
   * Accepts one connection (`accept4`), waiting without blocking the event loop. An
   * `AbortError` if `signal` aborts or the server closes (no connection taken).
   *
   * @example
   * ```ts
   * const conn = await server.accept({ signal })
   * ```
   */
  async accept(options?: SocketReceiveOptions): Promise<UnixSeqpacketSocket> {
    const opts = validateOptions(options)
    return this.#accept(opts.signal, [this.#life.waits])
  }

  /**
   * Iterates over accepted connections; leaving the loop cancels the pending accept.
   *
   * @example
   * ```ts
   * for await (const conn of server.connections({ signal })) handle(conn)
   * ```
   */
  connections(options?: SocketReceiveOptions): AsyncIterableIterator<UnixSeqpacketSocket> {
    const opts = validateOptions(options)
    validateAbortSignal(opts.signal, 'options.signal')
    return iterate((groups) => this.#accept(opts.signal, groups), this.#life.waits)
  }

  /** Same as {@link connections} with no options. */
  [Symbol.asyncIterator](): AsyncIterableIterator<UnixSeqpacketSocket> {
    return this.connections()
  }

  /**
   * Stops listening: pending accepts end with an `AbortError`; accepted connections stay
   * open. The socket file it bound is removed, as Node's `net.Server` removes its own: only if
   * the path still holds that very file (same device and inode as right after `bind`), so a
   * file that another server has put there since is left alone. Calling it again does nothing.
   *
   * @example
   * ```ts
   * { using server = UnixSeqpacketServer.listen('/tmp/app.seq') }   // the file is gone here
   * UnixSeqpacketServer.listen('/tmp/app.seq')                      // binds again
   * ```
   */
  close(): void {
    const reason = this.#life.close()
    if (reason === undefined) return
    removeIfSame(this.#bound)
    releaseFd(this.fd, reason)
    finalizer.unregister(this)
    try {
      native.socketClose(this.fd)
    } catch {
      // already closed
    }
  }

  /**
   * Removes the socket file, now, whatever file the path holds (nothing for an abstract
   * address); the server keeps listening, but no new client finds it. {@link close} removes
   * the file too, if it is still its own.
   *
   * @example
   * ```ts
   * server.remove()   // no new connections; those pending can still be accepted
   * ```
   */
  remove(): void {
    if (this.#path !== undefined) removeSocketFile(this.#path)
  }

  /** Calls {@link close}. */
  [Symbol.dispose](): void {
    this.close()
  }

  /**
   * {@link close}, then resolves once every wait it ended has settled (each pending promise
   * has rejected with its `AbortError`; a wait on another thread has confirmed that it took
   * nothing), for `await using server = ...`.
   *
   * @example
   * ```ts
   * {
   *   await using server = UnixSeqpacketServer.listen('/tmp/app.seq')
   *   // ...
   * }   // closed, and no wait of it is pending any more
   * ```
   */
  async [Symbol.asyncDispose](): Promise<void> {
    this.close()
    await this.#life.waits.settled()
  }
}

/** A `net.Socket` over one end of a stream socket pair, with its descriptor. */
export type StreamEnd = Socket & { readonly fd: number }

/** The kinds {@link socketpair} makes. */
export type SocketPairKind = 'stream' | 'dgram' | 'seqpacket'

/** Options of {@link socketpair}. */
export interface SocketPairOptions {
  /**
   * `'stream'` only: create the `net.Socket`s paused, not reading (`pauseOnCreate`), so that
   * descriptors sent to them can be taken with {@link receiveFds} (a socket that has started
   * reading drops descriptors: Node reads streams with `read(2)`). Default `false`.
   */
  paused?: boolean
  /** `'dgram'` and `'seqpacket'`: both ends take descriptors (see {@link SocketOptions.acceptFds}). Default `false`. */
  acceptFds?: boolean
}

/**
 * Two connected UNIX sockets (`socketpair`): `'stream'` gives two `net.Socket`s, `'dgram'`
 * two {@link UnixDatagramSocket}s, `'seqpacket'` two {@link UnixSeqpacketSocket}s. Each end
 * has `.fd`, to hand to a child through `spawn`'s `stdio` (the child wraps it with
 * `UnixSeqpacketSocket.fromFd(3)` and the like); close the parent's copy after spawning.
 *
 * Every end is a blocking descriptor, so a child can do a plain blocking `read(3, ...)` on
 * it. A `'stream'` end turns non-blocking when this process first reads, writes or ends it
 * through its `net.Socket` (libuv needs that; `O_NONBLOCK` is shared with every duplicate of
 * the descriptor, so hand a child an end this process does not use); until then it reads
 * nothing, so no byte meant for a child is taken here.
 *
 * @example
 * ```ts
 * const [mine, theirs] = socketpair('seqpacket')
 * const child = spawn(process.execPath, ['child.js'], { stdio: ['inherit', 'inherit', 'inherit', theirs.fd] })
 * theirs.close()
 * await mine.send('hello child')
 *
 * const [local, forChild] = socketpair('stream')
 * spawn('python3', ['-c', 'import os; os.write(3, os.read(3, 100))'], { stdio: ['inherit', 'inherit', 'inherit', forChild.fd] })
 * forChild.destroy()
 * local.write('echo me')   // the child's os.read(3) blocks until this comes
 * ```
 */
export function socketpair(kind: 'stream', options?: SocketPairOptions): [StreamEnd, StreamEnd]
export function socketpair(kind: 'dgram', options?: SocketPairOptions): [UnixDatagramSocket, UnixDatagramSocket]
export function socketpair(kind: 'seqpacket', options?: SocketPairOptions): [UnixSeqpacketSocket, UnixSeqpacketSocket]
export function socketpair(
  kind: SocketPairKind,
  options?: SocketPairOptions,
): [StreamEnd, StreamEnd] | [UnixDatagramSocket, UnixDatagramSocket] | [UnixSeqpacketSocket, UnixSeqpacketSocket]
export function socketpair(
  kind: SocketPairKind,
  options?: SocketPairOptions,
): [StreamEnd, StreamEnd] | [UnixDatagramSocket, UnixDatagramSocket] | [UnixSeqpacketSocket, UnixSeqpacketSocket] {
  validateOneOf(kind, 'kind', ['stream', 'dgram', 'seqpacket'] as const)
  const opts = validateOptions(options)
  const paused = optionalBoolean(opts.paused, 'options.paused', false)
  const acceptFds = acceptFdsOf(opts)
  const [a, b] = callNative(() => native.socketPair(kind)) as [number, number]
  switch (kind) {
    case 'stream':
      return [streamEnd(a, paused), streamEnd(b, paused)]
    case 'dgram':
      return [UnixDatagramSocket.fromPairFd(a, acceptFds), UnixDatagramSocket.fromPairFd(b, acceptFds)]
    default:
      return [UnixSeqpacketSocket.fromPairFd(a, acceptFds), UnixSeqpacketSocket.fromPairFd(b, acceptFds)]
  }
}

/**
 * A `net.Socket` over one end of a stream pair whose descriptor stays blocking until the socket
 * is first used for I/O. `O_NONBLOCK` belongs to the open file description, which every
 * duplicate shares (a child's `stdio[3]`, a descriptor passed with `SCM_RIGHTS`), and libuv
 * sets it on the descriptor it opens; so the end handed to a child would be non-blocking for
 * the child too, and its plain `read(3, ...)` would fail with `EAGAIN`. Instead the socket is
 * created without starting to read (`pauseOnCreate`), the flag is cleared again, and set for
 * good by the first read, write or end through the socket: the end a process uses turns
 * non-blocking, the end it only hands on stays blocking. (Nothing is read from an end before
 * its owner asks for data, so no byte meant for a child is taken here either.)
 */
function streamEnd(fd: number, paused: boolean): StreamEnd {
  // Created paused, so that it does not start reading; unless asked to stay paused, it is then
  // an ordinary stream again (`readableFlowing` null: a 'data' listener or `resume()` starts it).
  const socket = new Socket({ fd, readable: true, writable: true, pauseOnCreate: true } as ConstructorParameters<
    typeof Socket
  >[0])
  // (`readableFlowing` has a setter, which net.Socket itself uses; its type says read-only.)
  if (!paused) (socket as unknown as { readableFlowing: boolean | null }).readableFlowing = null
  Object.defineProperty(socket, 'fd', { value: fd, enumerable: false })
  const handle = (socket as unknown as { _handle?: { reading?: boolean } | null })._handle
  // Never under a handle that reads: libuv must not read a blocking descriptor.
  if (handle?.reading === true) return socket as StreamEnd
  callNative(() => native.socketSetNonblocking(fd, false))
  const proto = Socket.prototype as unknown as Record<string, (...args: unknown[]) => unknown>
  const own = socket as unknown as Record<string, unknown>
  const hooks = ['_read', '_write', '_writev', '_final'].filter((name) => typeof proto[name] === 'function')
  const firstUse = () => {
    for (const name of hooks) delete own[name]
    // The descriptor is closed once the socket is destroyed: nothing to change then.
    if (!socket.destroyed) callNative(() => native.socketSetNonblocking(fd, true))
  }
  for (const name of hooks) {
    own[name] = function (this: Socket, ...args: unknown[]) {
      firstUse()
      return proto[name]!.apply(this, args)
    }
  }
  return socket as StreamEnd
}

/** The descriptor behind a `net.Socket`, a message socket, or a plain fd. */
function fdOf(socket: unknown, name: string): number {
  if (typeof socket === 'number') return validateFd(socket, name)
  if (socket instanceof MessageSocket) {
    return socket.fd
  }
  if (socket instanceof Socket) {
    const fd = (socket as unknown as { _handle?: { fd?: number } | null })._handle?.fd
    if (typeof fd !== 'number' || fd < 0) throw invalidState('the socket has no open descriptor')
    return fd
  }
  throw invalidArgType(name, 'an instance of net.Socket, UnixDatagramSocket, UnixSeqpacketSocket, or a number', socket)
}

/**
 * The credentials of a connected UNIX socket's peer (`SO_PEERCRED`): a `net.Socket` (from
 * `net.connect`, a `net.Server` or {@link socketpair}), a message socket, or an fd. `ENOTCONN`
 * when it has no peer (see {@link UnixDatagramSocket.peerCredentials}).
 *
 * @example
 * ```ts
 * server.on('connection', (conn) => console.log(peerCredentials(conn)))   // { pid, uid, gid }
 * ```
 */
export function peerCredentials(socket: Socket | UnixDatagramSocket | UnixSeqpacketSocket | number): Credentials {
  if (socket instanceof MessageSocket) return socket.peerCredentials()
  const fd = fdOf(socket, 'socket')
  return callNative(() => native.socketPeerCredentials(fd))
}

/**
 * Sends `data` with descriptors (`SCM_RIGHTS`) over a UNIX stream `net.Socket`: waits until
 * the socket's own write queue is empty (so the bytes keep their order), then writes
 * directly, waiting for room without blocking the event loop. The fds arrive with the first
 * byte of `data` (which must not be empty).
 *
 * @example
 * ```ts
 * const [a, b] = socketpair('stream')
 * await sendFds(a, 'take this', [fs.openSync('/etc/hostname', 'r')])
 * ```
 */
export async function sendFds(
  socket: Socket,
  data: Payload,
  fds: readonly number[],
  options?: SocketReceiveOptions,
): Promise<void> {
  if (!(socket instanceof Socket)) throw invalidArgType('socket', 'an instance of net.Socket', socket)
  let bytes = toBytes(data, 'data')
  if (bytes.length === 0) throw invalidArgValue('data', data, 'must not be empty')
  let list = validateFds(fds, 'fds')
  const opts = validateOptions(options)
  const signal = opts.signal
  validateAbortSignal(signal, 'options.signal')
  if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason })
  while (socket.writableLength > 0) {
    await new Promise<void>((resolve) => socket.once('drain', resolve))
  }
  const fd = fdOf(socket, 'socket')
  return whileOpen(socket, fd, async (groups, pollFd) => {
    for (;;) {
      const sent = callNative(() => native.socketSend(fd, bytes, list, undefined, false, true, false))
      if (sent >= 0) {
        if (sent === bytes.length) return
        bytes = bytes.subarray(sent)
        list = []
        if (sent > 0) continue
      }
      await waitReady(pollFd(), true, READY, signal, groups)
    }
  })
}

/** What {@link receiveFds} takes off a stream. */
export interface StreamChunk {
  /** The bytes read (up to the next descriptors' boundary); empty at end of stream. */
  data: Buffer
  /** Descriptors that came with them, close-on-exec, owned by the caller. */
  fds: number[]
  /**
   * `true` when descriptors came but not all could be received (`MSG_CTRUNC`: this process
   * reached its descriptor limit): those that did arrive were closed, `fds` is empty.
   */
  fdsDropped: boolean
}

/**
 * Reads from a UNIX stream `net.Socket` directly, with the descriptors sent along
 * (`SCM_RIGHTS`), waiting without blocking the event loop. The socket must not be reading
 * (Node's own reads drop descriptors): make it with `socketpair('stream', { paused: true })`,
 * or accept it from `net.createServer({ pauseOnConnect: true })`, and do not resume it before
 * the descriptors were taken. Throws `ERR_INVALID_STATE` if the socket is reading or has
 * buffered data. Resolves `{ data: <empty>, fds: [] }` at end of stream.
 *
 * @example
 * ```ts
 * const [a, b] = socketpair('stream', { paused: true })
 * await sendFds(a, 'file', [fd])
 * const { data, fds } = await receiveFds(b)
 * ```
 */
export async function receiveFds(socket: Socket, options?: SocketReceiveOptions): Promise<StreamChunk> {
  if (!(socket instanceof Socket)) throw invalidArgType('socket', 'an instance of net.Socket', socket)
  const opts = validateOptions(options)
  const signal = opts.signal
  validateAbortSignal(signal, 'options.signal')
  const handle = (socket as unknown as { _handle?: { reading?: boolean } | null })._handle
  if (handle?.reading === true || socket.readableLength > 0) {
    throw invalidState('the socket is reading; create it paused (see receiveFds)')
  }
  const fd = fdOf(socket, 'socket')
  if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason })
  return whileOpen(socket, fd, async (groups, pollFd) => {
    for (;;) {
      const r = callNative(() => native.socketReceive(fd, true, false)) as NativeReceived | null
      if (r !== null) return { data: r.data, fds: r.fds, fdsDropped: r.fdsDropped }
      await waitReady(pollFd(), false, READY, signal, groups)
    }
  })
}

/**
 * Runs `fn` with a wait group that `socket` being destroyed cancels. Waits poll a duplicate
 * of the socket's descriptor (`pollFd()`, made on first use and closed at the end): Node's
 * own watch of the descriptor (a socket that is writing or reading) would clash with a
 * second watch on the same number, and Node may close its descriptor while we wait.
 */
async function whileOpen<T>(
  socket: Socket,
  fd: number,
  fn: (groups: readonly WaitGroup[], pollFd: () => number) => Promise<T>,
): Promise<T> {
  const group = new WaitGroup()
  const reason = invalidState('the socket was destroyed while waiting')
  const onClose = () => group.cancelAll(reason)
  let copy = -1
  const pollFd = () => {
    if (copy < 0) copy = callNative(() => native.socketDuplicate(fd))
    return copy
  }
  socket.once('close', onClose)
  try {
    return await fn([group], pollFd)
  } finally {
    socket.off('close', onClose)
    if (copy >= 0) {
      releaseFd(copy, reason)
      native.socketClose(copy)
    }
  }
}
