/**
 * eventfd: a 64-bit counter behind a file descriptor, the cheapest way for one process or thread
 * to wake another; waits run on the event loop's own poller, never on a thread of their own.
 *
 * @module
 */

import { AbortError, callNative, invalidArgType, limitDetail, outOfRange, type IpcError } from './errors'
import { adoptedFd, closeOwnedFd, ownFd } from './fd'
import { native } from './native'
import { Lifetime, WaitGroup, waitFd } from './reactor'
import { validateFd } from './unix-socket'
import { MAX_SAFE, optionalBoolean, optionalInteger, validateAbortSignal, validateOptions } from './validate'

/** The largest count an eventfd holds: 2^64 - 2. */
const MAX_COUNT = 0xffff_ffff_ffff_fffen

/** Options of {@link EventFd.create}. */
export interface EventFdCreateOptions {
  /** The count to start with, 0 to 2^32 - 1 (an unsigned int, as `eventfd(2)` takes it). Default 0. */
  initial?: number
  /**
   * Semaphore mode (`EFD_SEMAPHORE`): each read takes 1 from the count and returns 1, instead
   * of taking the whole count. Default `false`.
   */
  semaphore?: boolean
}

/** Options of {@link EventFd.read} and {@link EventFd.values}. */
export interface EventFdReadOptions {
  /** Cancels the wait (the promise rejects with an `AbortError`, and nothing was taken). */
  signal?: AbortSignal
  /**
   * Return the count as a `bigint` (it is 64-bit). Without it a count is a number, and one
   * above `Number.MAX_SAFE_INTEGER` is put back and throws `ERR_OUT_OF_RANGE`.
   */
  bigint?: boolean
}

/** Options of {@link EventFd.readSync}. */
export interface EventFdReadSyncOptions {
  /** `false`: throw `EAGAIN` instead of blocking while the count is 0. Default `true`. */
  wait?: boolean
  /** As {@link EventFdReadOptions.bigint}. */
  bigint?: boolean
}

/** Options of {@link EventFd.write}. */
export interface EventFdWriteOptions {
  /** Cancels a write that waits for room (the promise rejects with an `AbortError`; nothing was added). */
  signal?: AbortSignal
}

/** Options of {@link EventFd.writeSync}. */
export interface EventFdWriteSyncOptions {
  /** `false`: throw `EAGAIN` instead of blocking when the count would pass 2^64 - 2. Default `true`. */
  wait?: boolean
}

/** Ends an iterator's pending wait without an error. */
const ITERATION_ENDED = Symbol('iteration ended')

/** A count to add: a non-negative safe integer, or a bigint up to 2^64 - 2. */
function validateCount(value: unknown): number | bigint {
  if (typeof value === 'bigint') {
    if (value < 0n || value > MAX_COUNT) throw outOfRange('value', '>= 0n && <= 2n ** 64n - 2n', value)
    return value
  }
  if (typeof value !== 'number') throw invalidArgType('value', 'of type number or bigint', value)
  optionalInteger(value, 'value', 0, MAX_SAFE, 0)
  return value
}

const detail = (e: IpcError) => ({ info: limitDetail(e, 'eventfd', '2.6.22') })

/**
 * An eventfd (`eventfd(2)`): a 64-bit counter behind a descriptor. {@link write} adds to it and
 * wakes readers; {@link read} takes the whole count (resetting it to 0), or 1 of it in
 * semaphore mode. Hand {@link fd} to a child (`spawn`'s `stdio`) or send it over a UNIX socket,
 * and two processes have a wake-up channel that costs one system call per side.
 *
 * Waits run on this thread's own event loop (libuv watches the descriptor, and the count is
 * read on the JavaScript thread when it is ready): no thread per wait, no thread hop, and a
 * count that is there already is taken at once.
 *
 * The descriptor is non-blocking (`EFD_NONBLOCK`), and `O_NONBLOCK` belongs to the open file,
 * which a child given the descriptor shares: a C program that reads it gets `EAGAIN` while
 * the count is 0, so it `poll()`s first (writing never waits below 2^64 - 2).
 *
 * @example
 * ```ts
 * import { EventFd } from 'ipckit'
 * import { spawn } from 'node:child_process'
 *
 * using wake = EventFd.create()
 * spawn('./worker', [], { stdio: ['ignore', 'inherit', 'inherit', wake.fd] })  // writes to fd 3
 * for await (const n of wake) console.log(`woken ${n} time(s)`)
 * ```
 */
export class EventFd implements Disposable, AsyncDisposable, AsyncIterable<number> {
  /** The descriptor (close-on-exec; owned by this object until {@link close}). */
  readonly fd: number
  /**
   * Whether reads take 1 at a time (`EFD_SEMAPHORE`); `undefined` for a descriptor from
   * elsewhere on kernels that do not say (before Linux 6.6).
   */
  readonly semaphore: boolean | undefined
  readonly #life = new Lifetime('EventFd')

  private constructor(fd: number, semaphore: boolean | undefined) {
    this.fd = fd
    this.semaphore = semaphore
    ownFd(this, fd)
  }

  /**
   * Makes an eventfd (`eventfd(initial, EFD_CLOEXEC | EFD_NONBLOCK [| EFD_SEMAPHORE])`).
   * Throws `EMFILE` (naming the open-file limit); `ENOSYS` on macOS, which has no eventfd.
   *
   * @example
   * ```ts
   * using counter = EventFd.create()
   * using tokens = EventFd.create({ initial: 3, semaphore: true })
   * ```
   */
  static create(options?: EventFdCreateOptions): EventFd {
    const opts = validateOptions(options)
    const initial = optionalInteger(opts.initial, 'options.initial', 0, 0xffff_ffff, 0)
    const semaphore = optionalBoolean(opts.semaphore, 'options.semaphore', false)
    const fd = callNative(() => native.eventfdCreate(initial, semaphore), detail)
    return new EventFd(fd, semaphore)
  }

  /**
   * Takes over an eventfd received from elsewhere (a parent's `stdio[3]`, the `fds` of a socket
   * message): checks that it is one (`EINVAL` otherwise) and makes it non-blocking, which the
   * sender's copy shares. This object owns the descriptor from then on.
   *
   * @example
   * ```ts
   * const wake = EventFd.fromFd(3)
   * wake.writeSync(1)
   * ```
   */
  static fromFd(fd: number): EventFd {
    validateFd(fd)
    const semaphore = callNative(() => native.eventfdAdopt(fd), detail)
    const e = new EventFd(fd, semaphore ?? undefined)
    adoptedFd(fd)
    return e
  }

  /** Whether {@link close} was called. */
  get closed(): boolean {
    return this.#life.closed
  }

  /** The count if there is one (`undefined` if not; with `must`, `EAGAIN` instead). */
  #take(bigint: boolean, must: boolean): number | bigint | undefined {
    const value = callNative(() => native.eventfdRead(this.fd, must))
    if (value === null) return undefined
    if (bigint) return BigInt(value)
    if (typeof value === 'bigint') {
      // Taken, and not representable: give it back before refusing it.
      callNative(() => native.eventfdWrite(this.fd, value, false))
      throw outOfRange('count', `<= Number.MAX_SAFE_INTEGER (read it with { bigint: true })`, value)
    }
    return value
  }

  /**
   * Waits on this thread's event loop until the descriptor is readable and a count is taken
   * (another reader may take it first: then it waits on). A cancelled wait took nothing.
   */
  #waitAndTake(
    bigint: boolean,
    signal: AbortSignal | undefined,
    groups: readonly WaitGroup[],
  ): Promise<number | bigint> {
    return waitFd(this.fd, false, () => this.#take(bigint, false), signal, groups)
  }

  /**
   * Takes the count (or 1, in semaphore mode), waiting while it is 0. A count that is there
   * already resolves at once; a wait runs on the event loop's own poller and never blocks
   * it. `signal` and {@link close} cancel it with an `AbortError`, having taken nothing.
   *
   * @example
   * ```ts
   * const n = await efd.read({ signal: AbortSignal.timeout(1000) })
   * const big = await efd.read({ bigint: true })     // 64-bit counts
   * ```
   */
  read(options: EventFdReadOptions & { bigint: true }): Promise<bigint>
  read(options?: EventFdReadOptions): Promise<number>
  read(options?: EventFdReadOptions): Promise<number | bigint> {
    try {
      const opts = validateOptions(options)
      const bigint = optionalBoolean(opts.bigint, 'options.bigint', false)
      const signal = opts.signal
      validateAbortSignal(signal, 'options.signal')
      this.#life.check()
      if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason })
      const now = this.#take(bigint, false)
      return now !== undefined ? Promise.resolve(now) : this.#waitAndTake(bigint, signal, [this.#life.waits])
    } catch (err) {
      return Promise.reject(err)
    }
  }

  /**
   * {@link read}, blocking the calling thread while the count is 0 (`wait: false` throws
   * `EAGAIN` instead).
   *
   * @example
   * ```ts
   * const n = efd.readSync()
   * try { efd.readSync({ wait: false }) } catch (err) { if (err.code !== 'EAGAIN') throw err }
   * ```
   */
  readSync(options: EventFdReadSyncOptions & { bigint: true }): bigint
  readSync(options?: EventFdReadSyncOptions): number
  readSync(options?: EventFdReadSyncOptions): number | bigint {
    const opts = validateOptions(options)
    const bigint = optionalBoolean(opts.bigint, 'options.bigint', false)
    const wait = optionalBoolean(opts.wait, 'options.wait', true)
    this.#life.check()
    for (;;) {
      const value = this.#take(bigint, !wait)
      if (value !== undefined) return value
      callNative(() => native.eventfdWaitSync(this.fd, false))
    }
  }

  /**
   * Adds `value` (a number, or a bigint up to 2^64 - 2) to the count, waking readers. A write
   * that would take the count past 2^64 - 2 waits for a reader (on the event loop); `signal`
   * cancels that wait, and then nothing was added.
   *
   * @example
   * ```ts
   * await efd.write(1)
   * ```
   */
  async write(value: number | bigint, options?: EventFdWriteOptions): Promise<void> {
    const count = validateCount(value)
    const opts = validateOptions(options)
    const signal = opts.signal
    validateAbortSignal(signal, 'options.signal')
    this.#life.check()
    if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason })
    if (callNative(() => native.eventfdWrite(this.fd, count, false))) return
    const fd = this.fd
    await waitFd(fd, true, () => (callNative(() => native.eventfdWrite(fd, count, false)) ? true : undefined), signal, [
      this.#life.waits,
    ])
  }

  /**
   * {@link write}, blocking the calling thread while there is no room (`wait: false` throws
   * `EAGAIN` instead). Below 2^64 - 2 it never waits.
   *
   * @example
   * ```ts
   * efd.writeSync(1)
   * ```
   */
  writeSync(value: number | bigint, options?: EventFdWriteSyncOptions): void {
    const count = validateCount(value)
    const opts = validateOptions(options)
    const wait = optionalBoolean(opts.wait, 'options.wait', true)
    this.#life.check()
    while (!callNative(() => native.eventfdWrite(this.fd, count, !wait))) {
      callNative(() => native.eventfdWaitSync(this.fd, true))
    }
  }

  /**
   * Reads in a loop: each `next()` waits for a count and takes it. Leaving the loop (`break`,
   * `signal`, {@link close}) takes nothing more.
   *
   * @example
   * ```ts
   * for await (const n of efd.values({ signal })) handle(n)
   * ```
   */
  values(options: EventFdReadOptions & { bigint: true }): AsyncIterableIterator<bigint>
  values(options?: EventFdReadOptions): AsyncIterableIterator<number>
  values(options?: EventFdReadOptions): AsyncIterableIterator<number | bigint> {
    const opts = validateOptions(options)
    const bigint = optionalBoolean(opts.bigint, 'options.bigint', false)
    const signal = opts.signal
    validateAbortSignal(signal, 'options.signal')
    const iteration = new WaitGroup()
    const groups = [this.#life.waits, iteration]
    let finished = false
    const done = (): IteratorResult<number | bigint> => ({ done: true, value: undefined })
    return {
      [Symbol.asyncIterator]() {
        return this
      },
      next: async (): Promise<IteratorResult<number | bigint>> => {
        if (finished) return done()
        try {
          this.#life.check()
          if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason })
          const now = this.#take(bigint, false)
          return { done: false, value: now !== undefined ? now : await this.#waitAndTake(bigint, signal, groups) }
        } catch (err) {
          finished = true
          if (err instanceof AbortError && err.cause === ITERATION_ENDED) return done()
          throw err
        }
      },
      return: async (): Promise<IteratorResult<number | bigint>> => {
        finished = true
        iteration.cancelAll(ITERATION_ENDED)
        return done()
      },
    }
  }

  /** {@link values} with no options: `for await (const n of efd)`. */
  [Symbol.asyncIterator](): AsyncIterableIterator<number> {
    return this.values()
  }

  /**
   * Closes the descriptor: pending reads and writes end with an `AbortError` (having taken and
   * added nothing), and later calls throw `ERR_INVALID_STATE`. Calling it again does nothing.
   */
  close(): void {
    const reason = this.#life.close()
    if (reason === undefined) return
    closeOwnedFd(this, this.fd, reason)
  }

  /** Calls {@link close}, for `using efd = EventFd.create()`. */
  [Symbol.dispose](): void {
    this.close()
  }

  /**
   * {@link close}, then resolves once every wait it ended has settled (each pending promise
   * has rejected with its `AbortError`), for `await using`.
   *
   * @example
   * ```ts
   * {
   *   await using efd = EventFd.create()
   *   // ...
   * }   // closed, and no wait of it is pending any more
   * ```
   */
  async [Symbol.asyncDispose](): Promise<void> {
    this.close()
    await this.#life.waits.settled()
  }
}
