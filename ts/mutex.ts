/**
 * A cross-process {@link Mutex} built on a System V semaphore set with `SEM_UNDO`, and the
 * {@link MutexGuard} a lock hands out.
 *
 * @module
 */

import { IpcError, callNative } from './errors'
import { native } from './native'
import { NOWAIT, SemaphoreSet, UNDO } from './semaphore'
import type { SemaphoreOp, SemaphoreWaitOptions, SemaphoreWaitSyncOptions } from './semaphore'
import { optionalBoolean, validateFunction, validateOptions, validateTimeout } from './validate'

/** Options of {@link Mutex.open}. */
export interface MutexOpenOptions {
  /** Create the mutex (unlocked) if the key has none. Default `false`. */
  create?: boolean
  /** Fail with `EEXIST` if the key already has a semaphore set; implies `create`. */
  exclusive?: boolean
  /** Permission bits of a created mutex. Default `0o600`. */
  mode?: number
  /** See {@link SemaphoreSetOpenOptions.initTimeoutMs}. */
  initTimeoutMs?: number
}

/** Options of {@link Mutex.lockSync}. */
export type LockSyncOptions = SemaphoreWaitSyncOptions

/**
 * A held {@link Mutex}: {@link unlock} it, or let `using` do it.
 *
 * @example
 * ```ts
 * {
 *   using _guard = await mutex.lock()
 *   // critical section
 * } // unlocked here, even on an exception
 * ```
 */
export class MutexGuard implements Disposable {
  readonly #release: () => void
  #held = true
  /**
   * `true` when the previous holder died holding the lock (the kernel released it with
   * `SEM_UNDO`), as a robust mutex answers `EOWNERDEAD`: whatever it protects may have been
   * left half-updated, so check it (and repair it) before relying on it. Known only for
   * holders that locked through this class (see {@link Mutex}).
   *
   * @example
   * ```ts
   * using lock = await mutex.lock()
   * if (lock.previousOwnerDied) repairSharedState()
   * ```
   */
  readonly previousOwnerDied: boolean

  /** @internal */
  constructor(release: () => void, previousOwnerDied = false) {
    this.#release = release
    this.previousOwnerDied = previousOwnerDied === true
  }

  /** Whether this guard still holds the lock. */
  get held(): boolean {
    return this.#held
  }

  /**
   * Releases the lock. Calling it again does nothing, so a guard never unlocks twice. It works
   * even after the mutex handle was closed.
   *
   * @example
   * ```ts
   * const guard = await mutex.lock()
   * try { work() } finally { guard.unlock() }
   * ```
   */
  unlock(): void {
    if (!this.#held) return
    this.#held = false
    this.#release()
  }

  /** Calls {@link unlock}. */
  [Symbol.dispose](): void {
    this.unlock()
  }
}

/** A mutex of one semaphore: take the lock. */
const TAKE_PLAIN: readonly SemaphoreOp[] = [{ index: 0, delta: -1, undo: true }]
/** Take the lock and raise the mark, if the mark is down (a clean unlock left it so). */
const TAKE: readonly SemaphoreOp[] = [
  { index: 0, delta: -1, undo: true },
  { index: 1, delta: 0, wait: false, undo: false },
  { index: 1, delta: 1, undo: false },
]
/** Take the lock whose mark is still up (its holder died): the mark stays, now ours. */
const TAKE_OVER: readonly SemaphoreOp[] = [
  { index: 0, delta: -1, undo: true },
  { index: 1, delta: -1, wait: false, undo: false },
  { index: 1, delta: 1, undo: false },
]

/** When a wait of `timeoutMs` (validated; `undefined` for none) started now must end. */
function deadlineOf(timeoutMs: unknown): number {
  return performance.now() + validateTimeout(timeoutMs, 'options.timeoutMs')
}

/** Milliseconds left until `deadline` (0 once passed, `Infinity` for none). */
function timeLeft(deadline: number): number {
  return Math.max(0, deadline - performance.now())
}

/**
 * A mutex shared by processes, built on a System V semaphore with `SEM_UNDO`: when a process
 * holding it dies, even by `kill -9`, the kernel releases it at once, and the next holder
 * learns it from its guard ({@link MutexGuard.previousOwnerDied}), as a robust mutex's
 * `EOWNERDEAD` tells.
 *
 * The set holds two semaphores: the lock (1 free, 0 held; taken with `SEM_UNDO`), and a mark
 * the holder raises with the lock and lowers with the unlock, both without `SEM_UNDO`. A
 * holder that dies leaves the mark raised while the kernel frees the lock, so a lock that is
 * free with the mark raised was left by a dead holder; the next lock takes it over, mark and
 * all, in one atomic operation. A set of one semaphore (made by another program, or an
 * older ipckit) still works as a mutex, without that report.
 *
 * Limits, honestly: the undo record (semadj) belongs to the process, not to a thread or a
 * guard, so the lock is not reentrant (a second `lock()` in the same process waits for the
 * first to unlock) and Worker threads of one process share one record. The kernel does not
 * check ownership: any process that may write the semaphore can change its value (with
 * `SemaphoreSet.set`, or its own operations); only this class's guards keep unlocks paired with
 * locks. A process that is stopped (SIGSTOP) keeps the lock. Linux caps undo records per
 * process (`SEMMNU`, `SEMUME`), rarely a concern.
 *
 * @example
 * ```ts
 * import { Mutex, ftok } from 'ipckit'
 *
 * using mutex = Mutex.open(ftok('/tmp', 4), { create: true })
 * {
 *   using _lock = await mutex.lock({ timeoutMs: 1000 })
 *   // critical section, across processes
 * }
 * await mutex.withLock(async () => updateSharedFile())
 * ```
 */
export class Mutex implements Disposable, AsyncDisposable {
  readonly #set: SemaphoreSet
  /** Whether the set has the holder mark (two semaphores or more). */
  readonly #robust: boolean

  private constructor(set: SemaphoreSet) {
    this.#set = set
    this.#robust = set.count >= 2
  }

  /**
   * Opens the mutex of `key`, creating it unlocked with `create` (race-free).
   *
   * @example
   * ```ts
   * const mutex = Mutex.open(0x5a00_0004, { create: true, mode: 0o660 })
   * ```
   */
  static open(key: number, options?: MutexOpenOptions): Mutex {
    const opts = validateOptions(options)
    const base = { create: opts.create, exclusive: opts.exclusive, mode: opts.mode, initTimeoutMs: opts.initTimeoutMs }
    let set: SemaphoreSet
    try {
      set = SemaphoreSet.open(key, { ...base, count: 2, initial: [1, 0] })
    } catch (err) {
      // EINVAL: the key has a set of one semaphore (another program's, or an older ipckit's);
      // never so for IPC_PRIVATE (0), which always makes a new set.
      if (!(err instanceof IpcError && err.code === 'EINVAL') || opts.exclusive === true || key === 0) throw err
      set = SemaphoreSet.open(key, { ...base, count: 1, initial: [1] })
    }
    return new Mutex(set)
  }

  /** The identifier of the set holding the mutex's semaphore. */
  get id(): number {
    return this.#set.id
  }

  /** The key (unsigned). */
  get key(): number {
    return this.#set.key
  }

  /** Whether {@link close} was called. */
  get closed(): boolean {
    return this.#set.closed
  }

  /**
   * Whether some process holds the mutex now (a snapshot).
   *
   * @example
   * ```ts
   * if (mutex.locked) console.log('busy')
   * ```
   */
  get locked(): boolean {
    return this.#set.get(0) === 0
  }

  #guard(previousOwnerDied: boolean): MutexGuard {
    const id = this.#set.id
    if (!this.#robust) return new MutexGuard(() => callNative(() => native.semOp(id, [0, 1, UNDO], -1, false)))
    return new MutexGuard(() => {
      try {
        // Lower the mark and free the lock at once, so no locker sees one without the other.
        callNative(() => native.semOp(id, [1, -1, NOWAIT, 0, 1, UNDO], -1, false))
      } catch (err) {
        // The mark was cleared behind our back (`setAll`, another program): free the lock alone.
        if (!(err instanceof IpcError && err.code === 'EAGAIN')) throw err
        callNative(() => native.semOp(id, [0, 1, UNDO], -1, false))
      }
    }, previousOwnerDied)
  }

  /**
   * Locks, waiting without blocking the event loop. Resolves to a guard; rejects with
   * `EAGAIN` after `timeoutMs`, `EIDRM` if the mutex is removed, `AbortError` on `signal`.
   *
   * @example
   * ```ts
   * using _lock = await mutex.lock({ timeoutMs: 1000 })
   * ```
   */
  async lock(options?: SemaphoreWaitOptions): Promise<MutexGuard> {
    if (!this.#robust) {
      await this.#set.op(TAKE_PLAIN, options)
      return this.#guard(false)
    }
    const opts = validateOptions(options)
    const deadline = deadlineOf(opts.timeoutMs)
    for (;;) {
      try {
        await this.#set.op(TAKE, { timeoutMs: timeLeft(deadline), signal: opts.signal })
        return this.#guard(false)
      } catch (err) {
        // EAGAIN: the lock is free but marked (its holder died), or the time is up.
        if (!(err instanceof IpcError && err.code === 'EAGAIN')) throw err
        if (this.#set.tryOp(TAKE_OVER)) return this.#guard(true)
        if (timeLeft(deadline) === 0) throw err
      }
    }
  }

  /**
   * Locks, blocking the calling thread; `wait: false` throws `EAGAIN` if it is held.
   *
   * @example
   * ```ts
   * const guard = mutex.lockSync({ timeoutMs: 100 })
   * guard.unlock()
   * ```
   */
  lockSync(options?: LockSyncOptions): MutexGuard {
    if (!this.#robust) {
      this.#set.opSync(TAKE_PLAIN, options)
      return this.#guard(false)
    }
    const opts = validateOptions(options)
    const wait = optionalBoolean(opts.wait, 'options.wait', true)
    const deadline = deadlineOf(opts.timeoutMs)
    for (;;) {
      try {
        this.#set.opSync(TAKE, { timeoutMs: timeLeft(deadline), wait })
        return this.#guard(false)
      } catch (err) {
        // EAGAIN: the lock is free but marked (its holder died), held (`wait: false`), or the
        // time is up.
        if (!(err instanceof IpcError && err.code === 'EAGAIN')) throw err
        if (this.#set.tryOp(TAKE_OVER)) return this.#guard(true)
        if (!wait || timeLeft(deadline) === 0) throw err
      }
    }
  }

  /**
   * Locks if the mutex is free now: a guard, or `null` if it is held.
   *
   * @example
   * ```ts
   * const guard = mutex.tryLock()
   * if (guard) try { work() } finally { guard.unlock() }
   * ```
   */
  tryLock(): MutexGuard | null {
    if (!this.#robust) return this.#set.tryOp(TAKE_PLAIN) ? this.#guard(false) : null
    if (this.#set.tryOp(TAKE)) return this.#guard(false)
    return this.#set.tryOp(TAKE_OVER) ? this.#guard(true) : null
  }

  /**
   * Runs `fn` holding the lock, and unlocks when it settles (also when it throws).
   *
   * @example
   * ```ts
   * const total = await mutex.withLock(() => bumpCounterFile(), { timeoutMs: 5000 })
   * ```
   */
  async withLock<T>(
    fn: (guard: MutexGuard) => T | PromiseLike<T>,
    options?: SemaphoreWaitOptions,
  ): Promise<Awaited<T>> {
    validateFunction(fn, 'fn')
    const guard = await this.lock(options)
    try {
      return await fn(guard)
    } finally {
      guard.unlock()
    }
  }

  /**
   * Removes the semaphore behind the mutex (`IPC_RMID`); waiters get `EIDRM`.
   *
   * @example
   * ```ts
   * mutex.remove()
   * ```
   */
  remove(): void {
    this.#set.remove()
  }

  /**
   * Releases this handle (guards already handed out can still unlock): pending `lock()` calls
   * end with an `AbortError`, later calls throw `ERR_INVALID_STATE`. Idempotent.
   *
   * @example
   * ```ts
   * mutex.close()
   * ```
   */
  close(): void {
    this.#set.close()
  }

  /** Calls {@link close}. */
  [Symbol.dispose](): void {
    this.close()
  }

  /**
   * {@link close}, then resolves once every wait it ended has settled (each pending promise
   * has rejected with its `AbortError`; a wait on another thread has confirmed that it took
   * nothing), for `await using mutex = ...`.
   *
   * @example
   * ```ts
   * {
   *   await using mutex = Mutex.open(key)
   *   // ...
   * }   // closed, and no wait of it is pending any more
   * ```
   */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.#set[Symbol.asyncDispose]()
  }
}
