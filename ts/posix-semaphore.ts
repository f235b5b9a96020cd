/**
 * POSIX named semaphores: `sem_open`, `sem_wait`/`sem_timedwait`/`sem_trywait`, `sem_post`,
 * `sem_getvalue`, `sem_close`, `sem_unlink`.
 *
 * @module
 */

import { AbortError, IpcError, callNative, withDetail } from './errors'
import { native } from './native'
import { poolWords, registeredPool, throwFastError } from './pool'
import { Lifetime, startWait } from './reactor'
import {
  optionalBoolean,
  optionalInteger,
  validateAbortSignal,
  validateMode,
  validateOptions,
  validatePosixName,
  validateTimeout,
} from './validate'

/**
 * The largest value a POSIX semaphore holds (`SEM_VALUE_MAX`: 2147483647 on Linux); a release
 * beyond it throws `EOVERFLOW`.
 *
 * @example
 * ```ts
 * PosixSemaphore.open('/slots', { create: true, initial: POSIX_SEMAPHORE_VALUE_MAX })
 * ```
 */
export const POSIX_SEMAPHORE_VALUE_MAX: number = native.POSIX_SEM_VALUE_MAX

const NAME_MAX = native.POSIX_SEM_NAME_MAX
const MAX_TIMEOUT = 0x7fff_ffff

/**
 * The fast path: as System V semaphores do (see `semaphore.ts`), each operation that needs no
 * wait writes the semaphore's number, the operation and a timeout into a small buffer
 * registered once per thread and calls the argument-less `posixSemFast`.
 */
const TRY_WAIT = native.POSIX_SEM_TRY_WAIT
const POST = native.POSIX_SEM_POST
const VALUE = native.POSIX_SEM_VALUE
const WAIT = native.POSIX_SEM_WAIT
const fastOp = native.posixSemFast
/** Three words: the semaphore's number, the operation, the timeout. */
const fastArgs = poolWords(registeredPool(native.POSIX_SEM_FAST_BYTES, native.posixSemFastRegister), 3 * 4)

/** Runs operation `op` on semaphore `id` on this thread; throws what it failed with. */
function run(id: number, op: number, timeout: number): number {
  fastArgs[0] = id
  fastArgs[1] = op
  fastArgs[2] = timeout
  const result = fastOp()
  return result >= 0 ? result : throwFastError(native.posixSemFastError)
}

/** Closes semaphores whose object was collected without `close()` (a safety net). */
const finalizer = new FinalizationRegistry<number>((id) => native.posixSemClose(id))

/** Options of {@link PosixSemaphore.open}. */
export interface PosixSemaphoreOpenOptions {
  /** Create the semaphore if it does not exist (`O_CREAT`). Default `false`. */
  create?: boolean
  /** Fail with `EEXIST` if it exists (`O_CREAT | O_EXCL`); implies `create`. */
  exclusive?: boolean
  /**
   * Permission bits of a created semaphore. Default `0o600`. As for a file, the process's
   * umask clears bits (`0o660` becomes `0o640` under the usual `0o022`).
   */
  mode?: number
  /**
   * The value of a created semaphore, 0..{@link POSIX_SEMAPHORE_VALUE_MAX}. Default `0`. An
   * existing semaphore keeps its value.
   */
  initial?: number
}

/** Options of {@link PosixSemaphore.acquire}. */
export interface PosixSemaphoreAcquireOptions {
  /** Give up after this many milliseconds, rejecting with `ETIMEDOUT` (`sem_timedwait`). */
  timeoutMs?: number
  /** Cancels the wait; a cancelled wait took nothing. */
  signal?: AbortSignal
}

/** Options of {@link PosixSemaphore.acquireSync}. */
export interface PosixSemaphoreAcquireSyncOptions {
  /** Give up after this many milliseconds, throwing `ETIMEDOUT` (`sem_timedwait`). */
  timeoutMs?: number
}

/**
 * `options.timeoutMs` by the library's one rule (`validateTimeout`: ms >= 0, fractions kept,
 * `Infinity` for none), as the native calls take it: whole milliseconds, rounded up (the C
 * library's clock has no finer use here), -1 for none (also beyond 2^31 - 1 ms, 24 days).
 */
function timeoutOf(value: unknown): number {
  const ms = validateTimeout(value, 'options.timeoutMs')
  return ms === Infinity || ms > MAX_TIMEOUT ? -1 : Math.ceil(ms)
}

/** Adds the name to an error of a call on a name (`sem_open`, `sem_unlink`). */
function namedError(err: unknown, name: string): unknown {
  if (!(err instanceof IpcError)) return err
  if (err.code === 'EINVAL' && err.syscall === 'sem_open') {
    return withDetail(err, `'${name}' (the existing file of that name is not a semaphore)`)
  }
  return withDetail(err, `'${name}'`)
}

/**
 * A POSIX named semaphore: a counter shared by processes, by name (`/lock`). A release
 * (`sem_post`) adds one; an acquire (`sem_wait`) takes one, waiting while it is zero. It
 * outlives every process using it until {@link remove} (or {@link PosixSemaphore.unlink});
 * {@link close} only releases this handle.
 *
 * The calls are the C library's own, so C programs (`sem_open(3)`) and Python's `posix_ipc`
 * use the same semaphore by the same name. An acquire that can proceed at once does so on the
 * calling thread; one that has to wait runs on a thread the addon owns (never the libuv
 * threadpool), and `signal` or {@link close} cancel it without taking anything.
 *
 * **What it lacks: undo.** A process that dies between an acquire and its release keeps the
 * count forever, and nothing records who holds it. For a lock that must be freed when its
 * holder crashes, use `Mutex` (a System V semaphore with `SEM_UNDO`: the kernel gives the lock
 * back when its holder dies), and System V's `Semaphore` for a counter that must be.
 *
 * @example
 * ```ts
 * import { PosixSemaphore } from 'ipckit'
 *
 * using sem = PosixSemaphore.open('/slots', { create: true, initial: 2 })
 * await sem.acquire({ timeoutMs: 1000 })
 * try {
 *   // at most two processes here
 * } finally {
 *   sem.release()
 * }
 * ```
 */
export class PosixSemaphore implements Disposable {
  /** The semaphore's name, with its leading slash. */
  readonly name: string
  /** The semaphore's number in the native layer. */
  readonly #id: number
  readonly #life = new Lifetime('PosixSemaphore')

  private constructor(name: string, id: number) {
    this.name = name
    this.#id = id
    finalizer.register(this, id, this)
  }

  /**
   * Opens or creates the semaphore `name` (`sem_open`): a slash, then up to 251 bytes without a
   * slash (`/lock`).
   *
   * Throws `ENOENT` (none, no `create`), `EEXIST` (`exclusive`), `EACCES`, `EINVAL` (a file
   * of that name that is not a semaphore), `EMFILE`, `ENOMEM`.
   *
   * @example
   * ```ts
   * const sem = PosixSemaphore.open('/jobs-ready', { create: true, initial: 0, mode: 0o660 })
   * ```
   */
  static open(name: string, options?: PosixSemaphoreOpenOptions): PosixSemaphore {
    validatePosixName(name, 'name', NAME_MAX)
    const opts = validateOptions(options)
    const create = optionalBoolean(opts.create, 'options.create', false)
    const exclusive = optionalBoolean(opts.exclusive, 'options.exclusive', false)
    const mode = validateMode(opts.mode, 'options.mode', 0o600)
    const initial = optionalInteger(opts.initial, 'options.initial', 0, POSIX_SEMAPHORE_VALUE_MAX, 0)
    try {
      const id = callNative(() => native.posixSemOpen(name, create, exclusive, mode, initial))
      return new PosixSemaphore(name, id)
    } catch (err) {
      throw namedError(err, name)
    }
  }

  /**
   * Removes the semaphore `name` (`sem_unlink`): the name is free at once; processes that have
   * it open keep using it. Throws `ENOENT` if there is none, `EACCES`.
   *
   * @example
   * ```ts
   * PosixSemaphore.unlink('/slots')
   * ```
   */
  static unlink(name: string): void {
    validatePosixName(name, 'name', NAME_MAX)
    try {
      callNative(() => native.posixSemUnlink(name))
    } catch (err) {
      throw namedError(err, name)
    }
  }

  /** Whether {@link close} was called. */
  get closed(): boolean {
    return this.#life.closed
  }

  /**
   * Takes one (`sem_wait`), waiting without blocking the event loop while the value is zero:
   * at most `timeoutMs` (then `ETIMEDOUT`, `sem_timedwait`), until `signal` aborts or the
   * handle is closed (`AbortError`; nothing taken). When the value is above zero it takes one
   * at once, on this thread.
   *
   * @example
   * ```ts
   * await sem.acquire({ timeoutMs: 500, signal: AbortSignal.timeout(10_000) })
   * ```
   */
  async acquire(options?: PosixSemaphoreAcquireOptions): Promise<void> {
    const opts = validateOptions(options)
    const timeout = timeoutOf(opts.timeoutMs)
    const signal = opts.signal
    validateAbortSignal(signal, 'options.signal')
    this.#life.check()
    if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason })
    if (run(this.#id, TRY_WAIT, 0) === 1) return
    // Would wait: a zero timeout answers at once, on this thread (ETIMEDOUT).
    if (timeout === 0) {
      run(this.#id, WAIT, 0)
      return
    }
    const id = this.#id
    return startWait(
      (reactor, waitId) => native.posixSemWaitStart(reactor, waitId, id, timeout),
      () => undefined,
      signal,
      [this.#life.waits],
    )
  }

  /**
   * Takes one, blocking the calling thread while the value is zero (`sem_wait`;
   * `sem_timedwait` with `timeoutMs`, then `ETIMEDOUT`).
   *
   * @example
   * ```ts
   * sem.acquireSync({ timeoutMs: 100 })
   * ```
   */
  acquireSync(options?: PosixSemaphoreAcquireSyncOptions): void {
    const opts = validateOptions(options)
    const timeout = timeoutOf(opts.timeoutMs)
    this.#life.check()
    run(this.#id, WAIT, timeout)
  }

  /**
   * Takes one if the value is above zero (`sem_trywait`): `true` if it did, `false` (nothing
   * changed) if it is zero.
   *
   * @example
   * ```ts
   * if (sem.tryAcquire()) { work(); sem.release() }
   * ```
   */
  tryAcquire(): boolean {
    this.#life.check()
    return run(this.#id, TRY_WAIT, 0) === 1
  }

  /**
   * Adds one (`sem_post`), waking one waiter. Throws `EOVERFLOW` at
   * {@link POSIX_SEMAPHORE_VALUE_MAX}.
   *
   * @example
   * ```ts
   * sem.release()
   * ```
   */
  release(): void {
    this.#life.check()
    run(this.#id, POST, 0)
  }

  /**
   * The value now (`sem_getvalue`); it may change right after. Throws `ENOSYS` on macOS, whose
   * C library does not tell it.
   *
   * @example
   * ```ts
   * console.log(`${sem.value} slots free`)
   * ```
   */
  get value(): number {
    this.#life.check()
    return run(this.#id, VALUE, 0)
  }

  /**
   * Removes the semaphore's name (`sem_unlink`), as {@link PosixSemaphore.unlink}; this handle
   * keeps working until it is closed.
   *
   * @example
   * ```ts
   * sem.remove()
   * sem.close()
   * ```
   */
  remove(): void {
    this.#life.check()
    PosixSemaphore.unlink(this.name)
  }

  /**
   * Closes this handle (`sem_close`, once no wait of it is in progress): pending acquires end
   * with an `AbortError` (having taken nothing) and further calls throw `ERR_INVALID_STATE`.
   * The semaphore and its value stay. Calling it again does nothing.
   */
  close(): void {
    if (this.#life.close() === undefined) return
    finalizer.unregister(this)
    native.posixSemClose(this.#id)
  }

  /** Calls {@link close}, for `using sem = PosixSemaphore.open(...)`. */
  [Symbol.dispose](): void {
    this.close()
  }
}
