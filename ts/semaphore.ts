/**
 * System V semaphores: `semget`, `semop`, `semtimedop`, `semctl`; and a counting
 * {@link Semaphore} built on them (the cross-process `Mutex` is in `mutex.ts`).
 *
 * @module
 */

import { AbortError, answered, callNative, invalidArgType, invalidArgValue, invalidState } from './errors'
import { native } from './native'
import { poolWords, registeredPool, throwFastError } from './pool'
import { ownerChanges, ownerStat, secondsToDate } from './sysv'
import { Lifetime, startWait } from './reactor'
import { YieldGate, tryAfterYield } from './yield'
import {
  optionalBoolean,
  optionalInteger,
  validateAbortSignal,
  validateInteger,
  validateKey,
  validateMode,
  validateOptions,
  validateTimeout,
} from './validate'

/**
 * The largest value a semaphore holds (`SEMVMX`, 32767 on Linux); beyond it the kernel answers
 * `ERANGE`.
 *
 * @example
 * ```ts
 * if (sem.value + n > SEMAPHORE_VALUE_MAX) throw new Error('too many')
 * ```
 */
export const SEMAPHORE_VALUE_MAX: number = native.SEM_VALUE_MAX

const MAX_ID = 0x7fff_ffff
const MAX_COUNT = 0x7fff_ffff
const DEFAULT_INIT_TIMEOUT = 5
/** @internal Flag bits of an operation triple, as the native layer reads them. */
export const UNDO = 1
/** @internal */
export const NOWAIT = 2

/** One operation of {@link SemaphoreSet.op} (a `struct sembuf`). */
export interface SemaphoreOp {
  /** Index of the semaphore in the set, `0 <= index < count`. */
  index: number
  /**
   * `> 0` adds to the value; `< 0` waits until the value can be lowered by `|delta|`, then
   * lowers it; `0` waits until the value is zero. `|delta| <= 32767`.
   */
  delta: number
  /** Undo this operation when the process exits (`SEM_UNDO`). Default `true`. */
  undo?: boolean
  /** Wait when the operation cannot proceed (default `true`); `false` fails with `EAGAIN` (`IPC_NOWAIT`). */
  wait?: boolean
}

/** Options of {@link SemaphoreSet.open}. */
export interface SemaphoreSetOpenOptions {
  /**
   * Number of semaphores. Default: `initial.length`, else 1 when creating; when opening an
   * existing set, left out (or 0) accepts its size, and a larger number fails with `EINVAL`.
   */
  count?: number
  /** Create the set if the key has none (`IPC_CREAT`). Default `false`. */
  create?: boolean
  /** Fail with `EEXIST` if the key already has a set (`IPC_CREAT | IPC_EXCL`); implies `create`. */
  exclusive?: boolean
  /** Permission bits of a created set. Default `0o600`. */
  mode?: number
  /**
   * Initial values (0..32767), one per semaphore, set only by the process that creates the
   * set; default all zeros. An existing set is never re-initialised.
   */
  initial?: readonly number[]
  /**
   * How long `open` waits, blocking the calling thread, for a set made less than a second ago
   * whose semaphores are not all set yet (its creator may be between `semget` and its first
   * value), before taking it as it is, or throwing `ETIMEDOUT` if an ipckit process is still
   * initialising it (see {@link SemaphoreSet}). Default 5 ms. An existing set that is
   * initialised, or older, opens at once whatever this says.
   */
  initTimeoutMs?: number
}

/** Options of the async waits ({@link SemaphoreSet.op}, {@link Semaphore.acquire}, ...). */
export interface SemaphoreWaitOptions {
  /** Give up after this many milliseconds, rejecting with `EAGAIN` (`semtimedop`). Default: no limit. */
  timeoutMs?: number
  /** Cancels the wait; a cancelled wait changed nothing. */
  signal?: AbortSignal
}

/** Options of the sync waits ({@link SemaphoreSet.opSync}, {@link Semaphore.acquireSync}, ...). */
export interface SemaphoreWaitSyncOptions {
  /** Give up after this many milliseconds, throwing `EAGAIN` (`semtimedop`). Default: no limit. */
  timeoutMs?: number
  /** Block (default `true`); `false` throws `EAGAIN` at once when it would block (`IPC_NOWAIT`). */
  wait?: boolean
}

/** A set's state, from `semctl(IPC_STAT)`. */
export interface SemaphoreSetStat {
  /** The key (unsigned); 0 for a private set. */
  key: number
  /** Number of semaphores (`sem_nsems`). */
  count: number
  /** Time of the last `semop`, `null` if none (`sem_otime`). */
  lastOpTime: Date | null
  /** Time of creation, of the last `set`/`setAll` or `update()` (`sem_ctime`). */
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

/** Changes for {@link SemaphoreSet.update}; what is left out stays as it is. */
export interface SemaphoreSetUpdate {
  /** Permission bits. */
  mode?: number
  /** Owner user id. */
  uid?: number
  /** Owner group id. */
  gid?: number
}

/** `options.timeoutMs` as the native calls take it: milliseconds, or -1 for no limit. */
function timeoutOf(value: unknown): number {
  const ms = validateTimeout(value, 'options.timeoutMs')
  return ms === Infinity ? -1 : ms
}

function validateValue(value: unknown, name: string): number {
  validateInteger(value, name, 0, SEMAPHORE_VALUE_MAX)
  return value
}

function validateValues(values: unknown, name: string, count: number | undefined): number[] {
  if (!Array.isArray(values)) throw invalidArgType(name, 'an instance of Array', values)
  if (count !== undefined && values.length !== count) {
    throw invalidArgValue(name, values, `must have exactly ${count} values (one per semaphore)`)
  }
  return values.map((v, i) => validateValue(v, `${name}[${i}]`))
}

/** Validates operations and flattens them to `[index, delta, flags, ...]`. */
function encodeOps(ops: unknown, count: number, forceNowait = false): number[] {
  if (!Array.isArray(ops)) throw invalidArgType('ops', 'an instance of Array', ops)
  if (ops.length === 0) throw invalidArgValue('ops', ops, 'must hold at least one operation')
  const flat: number[] = []
  ops.forEach((op: unknown, i) => {
    const name = `ops[${i}]`
    if (op === null || typeof op !== 'object' || Array.isArray(op)) throw invalidArgType(name, 'of type object', op)
    const o = op as Partial<SemaphoreOp>
    validateInteger(o.index, `${name}.index`, 0, count - 1)
    validateInteger(o.delta, `${name}.delta`, -SEMAPHORE_VALUE_MAX, SEMAPHORE_VALUE_MAX)
    const undo = optionalBoolean(o.undo, `${name}.undo`, true)
    const wait = optionalBoolean(o.wait, `${name}.wait`, true)
    flat.push(o.index, o.delta, (undo ? UNDO : 0) | (!wait || forceNowait ? NOWAIT : 0))
  })
  return flat
}

/**
 * The fast path of a single operation without a timeout. A native call with arguments costs
 * several times a `semop` (napi-rs's per-call argument scope), so, as the message-queue fast
 * path does, the operation is written into a small buffer registered once per thread and an
 * argument-less native function applies it (see `semFastOp` in
 * `crates/ipckit-node/src/sem.rs`).
 */
const SOFT = native.SEM_FAST_SOFT
const semFastOp = native.semFastOp
/** Four words: the set, the semaphore's index, the delta, the flags. */
const fastArgs = poolWords(registeredPool(native.SEM_FAST_BYTES, native.semFastRegister), 4 * 4)

/**
 * Applies one operation (`flags`: UNDO, NOWAIT, SOFT): true when applied, false when it would
 * wait and `flags` has NOWAIT and SOFT. Blocks without NOWAIT; throws what `semop` failed with.
 */
function fastOp(id: number, index: number, delta: number, flags: number): boolean {
  fastArgs[0] = id
  fastArgs[1] = index
  fastArgs[2] = delta
  fastArgs[3] = flags
  const result = semFastOp()
  if (result < 0) throwFastError(native.semFastError)
  return result === 1
}

/** `semop` of validated, flattened `flat` ops once without waiting: true if applied. */
function tryFlat(id: number, flat: number[]): boolean {
  if (flat.length === 3) return fastOp(id, flat[0]!, flat[1]!, flat[2]! | NOWAIT | SOFT)
  return callNative(() => native.semOp(id, flat, -1, true))
}

/**
 * A System V semaphore set: an array of counters shared by processes, changed atomically by
 * {@link op} (all operations of one call, or none).
 *
 * The set is a kernel object that outlives every process using it until {@link remove};
 * {@link close} only releases this handle. Creation is race-free: when several processes open
 * the same key at once, exactly one creates and initialises the set (`IPC_CREAT | IPC_EXCL`),
 * and a set in use is never re-initialised. ipckit's creator gives every value and marks the set
 * (`sem_otime` non-zero) in one `semop`, so an ipckit set is never seen half initialised.
 *
 * Opening an existing set never waits long. It is taken at once when `sem_otime` is non-zero
 * (its creator followed the classic `IPC_EXCL` + `sem_otime` protocol, or it is in use), when
 * every semaphore was given a value (`SETVAL`/`SETALL`: Python's `sysv_ipc`, Perl's
 * `IPC::Semaphore` and most C programs make sets that way and never mark them), or when nothing
 * changed it for over a second (`ipcmk -S`, `semget` alone). Only a set made less than a second
 * ago with semaphores nothing touched yet may be a creator between its `semget` and its first
 * value: `open` checks again for up to `initTimeoutMs` (5 ms by default). Then, if an ipckit
 * process is still initialising it (ipckit's creator holds a sign meanwhile: on Linux a socket
 * bound to an abstract name made of the key), `open` throws `ETIMEDOUT`, to be tried again:
 * ipckit never hands out a set its creator has not initialised. Otherwise the set is taken as
 * the kernel has it (it cannot be told from one `ipcmk -S` made an instant ago). Where the sign
 * cannot be seen (macOS; processes that share an IPC namespace but not a network namespace)
 * and an ipckit creator is that slow, nothing an early opener did is lost: the initial values
 * are added to it, not written over it. For C creators known to pause between `semget` and
 * `SETVAL`, give `initTimeoutMs` room for the pause.
 *
 * Every wait has an async form that never blocks the event loop nor parks a libuv threadpool
 * thread (it waits on a thread the addon owns, and an operation that can proceed at once
 * completes with no thread hop) and a `...Sync` form for scripts. `SEM_UNDO` is on by default:
 * what a process changed is undone when it exits (see {@link SemaphoreOp.undo}).
 *
 * @example
 * ```ts
 * import { SemaphoreSet, ftok } from 'ipckit'
 *
 * using set = SemaphoreSet.open(ftok('/tmp', 2), { create: true, initial: [1, 0] })
 * await set.op([{ index: 0, delta: -1 }, { index: 1, delta: +1 }], { timeoutMs: 500 })
 * set.getAll() // [0, 1]
 * ```
 */
export class SemaphoreSet implements Disposable, AsyncDisposable {
  /** The set identifier, as `ipcs -s` shows it. */
  readonly id: number
  /** The key (unsigned 32-bit, as `ipcs` prints it); 0 for a private set. */
  readonly key: number
  /** Number of semaphores in the set. */
  readonly count: number
  readonly #life = new Lifetime('SemaphoreSet')
  /** Whether waits yield the CPU first (see ts/yield.ts). */
  readonly #gate = new YieldGate()

  private constructor(id: number, key: number, count: number) {
    this.id = id
    this.key = key >>> 0
    this.count = count
  }

  /**
   * Opens the set of `key` (`semget`), creating and initialising it with `create` (race-free,
   * see the class description). `IPC_PRIVATE` always creates a new set.
   *
   * Throws `ENOENT` (no set, no `create`), `EEXIST` (`exclusive`, one exists), `EINVAL`
   * (`count` above the system's `SEMMSL`, or above the size of the existing set), `EACCES`,
   * `ENOSPC` (system limit), `ETIMEDOUT` (another ipckit process made the set an instant ago and
   * has not initialised it within `initTimeoutMs`: try again). A set another program made
   * (`ipcmk -S 2`, Python's `sysv_ipc`, Perl, C) opens at once; see the class description for
   * when `open` waits a few ms.
   *
   * @example
   * ```ts
   * const set = SemaphoreSet.open(0x5a00_0002, { create: true, count: 3, initial: [1, 1, 0] })
   * const made = SemaphoreSet.open(keyOfIpcmk)   // a set `ipcmk -S 2` made: [0, 0]
   * ```
   */
  static open(key: number, options?: SemaphoreSetOpenOptions): SemaphoreSet {
    const k = validateKey(key)
    const opts = validateOptions(options)
    const create = optionalBoolean(opts.create, 'options.create', false)
    const exclusive = optionalBoolean(opts.exclusive, 'options.exclusive', false)
    const mode = validateMode(opts.mode, 'options.mode', 0o600)
    const initTimeout = validateTimeout(opts.initTimeoutMs, 'options.initTimeoutMs', DEFAULT_INIT_TIMEOUT)
    const creating = create || exclusive || k === 0
    let count = optionalInteger(opts.count, 'options.count', 0, MAX_COUNT, -1)
    let initial: number[] | undefined
    if (opts.initial !== undefined) {
      initial = validateValues(opts.initial, 'options.initial', count < 0 ? undefined : count)
      if (count < 0) count = initial.length
    }
    if (count < 0) count = creating ? 1 : 0
    if (initial !== undefined && initial.length === 0) initial = undefined
    const opened = callNative(() => native.semOpen(k, count, create, exclusive, mode, initial, initTimeout))
    return new SemaphoreSet(opened.id, k, opened.count)
  }

  /**
   * Creates a new private set (`IPC_PRIVATE`): reachable by its {@link id}, which can be passed
   * to other processes.
   *
   * @example
   * ```ts
   * const set = SemaphoreSet.create({ count: 2, initial: [1, 0] })
   * child.send({ setId: set.id })   // the child calls SemaphoreSet.fromId(setId)
   * ```
   */
  static create(options?: Omit<SemaphoreSetOpenOptions, 'create' | 'exclusive'>): SemaphoreSet {
    const opts = validateOptions(options)
    return SemaphoreSet.open(0, { ...opts, create: true })
  }

  /**
   * Opens an existing set by its identifier (as `ipcs -s` shows it). Throws `EINVAL` if there
   * is no such set, `EACCES` if it may not be read.
   *
   * @example
   * ```ts
   * const set = SemaphoreSet.fromId(Number(process.argv[2]))
   * ```
   */
  static fromId(id: number): SemaphoreSet {
    validateInteger(id, 'id', 0, MAX_ID)
    const stat = callNative(() => native.semStat(id))
    return new SemaphoreSet(id, stat.perm.key, stat.count)
  }

  /** Whether {@link close} was called. */
  get closed(): boolean {
    return this.#life.closed
  }

  #index(index: unknown, name = 'index'): number {
    validateInteger(index, name, 0, this.count - 1)
    return index
  }

  /**
   * Applies `ops` atomically (`semop`; `semtimedop` with `timeoutMs`): either every operation
   * is applied or, while one of them cannot proceed, none is and the call waits, without
   * blocking the event loop. Rejects with `EAGAIN` when `timeoutMs` passes or an operation
   * with `wait: false` cannot proceed, `EIDRM` when the set is removed meanwhile, `ERANGE`
   * when a value would exceed 32767, `E2BIG` for more operations than the system's `SEMOPM`,
   * and an `AbortError` when `signal` aborts; then no value was changed.
   *
   * @example
   * ```ts
   * // take one of semaphore 0 and one of semaphore 1, together, within a second
   * await set.op([{ index: 0, delta: -1 }, { index: 1, delta: -1 }], { timeoutMs: 1000 })
   * ```
   */
  async op(ops: readonly SemaphoreOp[], options?: SemaphoreWaitOptions): Promise<void> {
    const opts = validateOptions(options)
    const flat = encodeOps(ops, this.count)
    const timeout = timeoutOf(opts.timeoutMs)
    const signal = opts.signal
    validateAbortSignal(signal, 'options.signal')
    this.#life.check()
    if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason })
    if (tryFlat(this.id, flat)) return
    // Would block: a zero timeout answers at once, on this thread.
    if (timeout === 0) {
      callNative(() => native.semOp(this.id, flat, 0, false))
      return
    }
    if (tryAfterYield(this.#gate, () => tryFlat(this.id, flat) || undefined)) return
    const id = this.id
    return startWait(
      (reactor, waitId) => native.semOpStart(reactor, waitId, id, flat, timeout),
      () => undefined,
      signal,
      [this.#life.waits],
    )
  }

  /**
   * Applies `ops` atomically, blocking the calling thread while they cannot proceed; with
   * `wait: false` throws `EAGAIN` at once instead, with `timeoutMs` after that long.
   *
   * @example
   * ```ts
   * set.opSync([{ index: 0, delta: +1 }])
   * set.opSync([{ index: 0, delta: -1 }], { wait: false })   // throws EAGAIN if 0
   * ```
   */
  opSync(ops: readonly SemaphoreOp[], options?: SemaphoreWaitSyncOptions): void {
    const opts = validateOptions(options)
    const wait = optionalBoolean(opts.wait, 'options.wait', true)
    const flat = encodeOps(ops, this.count, !wait)
    const timeout = timeoutOf(opts.timeoutMs)
    this.#life.check()
    if (timeout < 0 && flat.length === 3) fastOp(this.id, flat[0]!, flat[1]!, flat[2]!)
    else answered(callNative(() => native.semOp(this.id, flat, timeout, false)))
  }

  /**
   * Tries `ops` once without waiting: `true` if they were applied, `false` if one of them
   * would have had to wait (nothing changed).
   *
   * @example
   * ```ts
   * if (set.tryOp([{ index: 0, delta: -1 }])) console.log('got it')
   * ```
   */
  tryOp(ops: readonly SemaphoreOp[]): boolean {
    const flat = encodeOps(ops, this.count)
    this.#life.check()
    return tryFlat(this.id, flat)
  }

  /**
   * The value of semaphore `index` (`semctl(GETVAL)`).
   *
   * @example
   * ```ts
   * set.get(0) // 1
   * ```
   */
  get(index: number): number {
    const i = this.#index(index)
    this.#life.check()
    return callNative(() => native.semGet(this.id, i))
  }

  /**
   * The values of all semaphores (`semctl(GETALL)`), read at one instant.
   *
   * @example
   * ```ts
   * const [free, used] = set.getAll()
   * ```
   */
  getAll(): number[] {
    this.#life.check()
    return callNative(() => native.semGetAll(this.id))
  }

  /**
   * Sets semaphore `index` to `value` (0..32767) (`semctl(SETVAL)`). This clears that
   * semaphore's undo records in every process and wakes the waiters that can now proceed.
   *
   * @example
   * ```ts
   * set.set(1, 5)
   * ```
   */
  set(index: number, value: number): void {
    const i = this.#index(index)
    const v = validateValue(value, 'value')
    this.#life.check()
    callNative(() => native.semSet(this.id, i, v))
  }

  /**
   * Sets every semaphore at once (`semctl(SETALL)`): `values` holds one value (0..32767) per
   * semaphore.
   *
   * @example
   * ```ts
   * set.setAll([1, 0])
   * ```
   */
  setAll(values: readonly number[]): void {
    const v = validateValues(values, 'values', this.count)
    this.#life.check()
    callNative(() => native.semSetAll(this.id, v))
  }

  /**
   * How many processes wait for semaphore `index` to increase (`semctl(GETNCNT)`). The kernel
   * counts waiting threads: this process's pending async waits with the same operations on this
   * set stand in one line behind one kernel waiter, so they count as one.
   *
   * @example
   * ```ts
   * if (set.waitingForIncrease(0) > 0) set.opSync([{ index: 0, delta: 1 }])
   * ```
   */
  waitingForIncrease(index: number): number {
    const i = this.#index(index)
    this.#life.check()
    return callNative(() => native.semWaitingForIncrease(this.id, i))
  }

  /**
   * How many processes wait for semaphore `index` to become zero (`semctl(GETZCNT)`).
   *
   * @example
   * ```ts
   * set.waitingForZero(0)
   * ```
   */
  waitingForZero(index: number): number {
    const i = this.#index(index)
    this.#life.check()
    return callNative(() => native.semWaitingForZero(this.id, i))
  }

  /**
   * Pid of the last process that operated on semaphore `index`, 0 if none (`semctl(GETPID)`).
   *
   * @example
   * ```ts
   * set.lastPid(0) === process.pid
   * ```
   */
  lastPid(index: number): number {
    const i = this.#index(index)
    this.#life.check()
    return callNative(() => native.semLastPid(this.id, i))
  }

  /**
   * The set's state (`semctl(IPC_STAT)`).
   *
   * @example
   * ```ts
   * const { count, lastOpTime, mode } = set.stat()
   * ```
   */
  stat(): SemaphoreSetStat {
    this.#life.check()
    const s = callNative(() => native.semStat(this.id))
    return {
      key: s.perm.key,
      count: s.count,
      lastOpTime: secondsToDate(s.lastOpTime),
      ...ownerStat(s),
    }
  }

  /**
   * Changes permissions or owner (`semctl(IPC_SET)`); the owner, the creator or a privileged
   * process may do it (`EPERM` otherwise).
   *
   * @example
   * ```ts
   * set.update({ mode: 0o660 })
   * ```
   */
  update(changes: SemaphoreSetUpdate): void {
    const c = validateOptions(changes, 'changes')
    const { mode, uid, gid } = ownerChanges(c)
    this.#life.check()
    callNative(() => native.semUpdate(this.id, mode, uid, gid))
  }

  /**
   * Removes the set from the system (`semctl(IPC_RMID)`): every process waiting on it gets
   * `EIDRM`. The handle stays open; close it as usual.
   *
   * @example
   * ```ts
   * set.remove()
   * set.close()
   * ```
   */
  remove(): void {
    this.#life.check()
    callNative(() => native.semRemove(this.id))
  }

  /**
   * Releases this handle: pending waits end with an `AbortError` (having changed nothing), and
   * further calls throw `ERR_INVALID_STATE`. The set itself stays (see {@link remove}).
   * Calling it again does nothing.
   *
   * @example
   * ```ts
   * set.close()
   * ```
   */
  close(): void {
    this.#life.close()
  }

  /** Calls {@link close}, for `using set = SemaphoreSet.open(...)`. */
  [Symbol.dispose](): void {
    this.close()
  }

  /**
   * {@link close}, then resolves once every wait it ended has settled (each pending promise
   * has rejected with its `AbortError`; a wait on another thread has confirmed that it took
   * nothing), for `await using set = ...`.
   *
   * @example
   * ```ts
   * {
   *   await using set = SemaphoreSet.fromId(id)
   *   // ...
   * }   // closed, and no wait of it is pending any more
   * ```
   */
  async [Symbol.asyncDispose](): Promise<void> {
    this.close()
    await this.#life.waits.settled()
  }
}

/** Options of {@link Semaphore.open}. */
export interface SemaphoreOpenOptions {
  /** Create the semaphore if the key has none. Default `false`. */
  create?: boolean
  /** Fail with `EEXIST` if the key already has a semaphore set; implies `create`. */
  exclusive?: boolean
  /** Initial value (0..32767), set only by the process that creates it. Default `0`. */
  initial?: number
  /** Permission bits of a created semaphore. Default `0o600`. */
  mode?: number
  /**
   * `SEM_UNDO` for `acquire`/`release` (default `true`): what this process acquired and did not
   * release, or released and did not acquire, is undone when it exits. Use `false` for a
   * semaphore that counts events passed between processes (one releases, another acquires),
   * or the releases of a process that exits would be taken back.
   */
  undo?: boolean
  /** See {@link SemaphoreSetOpenOptions.initTimeoutMs}. */
  initTimeoutMs?: number
}

/** Options of {@link Semaphore.acquire}. */
export interface AcquireOptions extends SemaphoreWaitOptions {
  /** How much to take, 1..32767. Default 1. */
  count?: number
}

/** Options of {@link Semaphore.acquireSync}. */
export interface AcquireSyncOptions extends SemaphoreWaitSyncOptions {
  /** How much to take, 1..32767. Default 1. */
  count?: number
}

function amount(value: unknown, name: string): number {
  return optionalInteger(value, name, 1, SEMAPHORE_VALUE_MAX, 1)
}

/**
 * A counting semaphore shared by processes: a {@link SemaphoreSet} of one.
 *
 * @example
 * ```ts
 * import { Semaphore, ftok } from 'ipckit'
 *
 * using sem = Semaphore.open(ftok('/tmp', 3), { create: true, initial: 2 })
 * await sem.acquire({ timeoutMs: 100 })   // at most 2 holders at a time
 * try { await work() } finally { sem.release() }
 * ```
 */
export class Semaphore implements Disposable, AsyncDisposable {
  readonly #set: SemaphoreSet
  readonly #undo: boolean
  /** The flags of this semaphore's operations on the fast path (UNDO or 0). */
  readonly #flags: number

  private constructor(set: SemaphoreSet, undo: boolean) {
    this.#set = set
    this.#undo = undo
    this.#flags = undo ? UNDO : 0
  }

  /** The set's id, after the check that this handle is open. */
  #id(): number {
    if (this.#set.closed) throw invalidState('SemaphoreSet is closed')
    return this.#set.id
  }

  /**
   * Opens the semaphore of `key`, creating it with `create` (race-free, as
   * {@link SemaphoreSet.open}); it is semaphore 0 of a System V set.
   *
   * @example
   * ```ts
   * const sem = Semaphore.open(0x5a00_0003, { create: true, initial: 1 })
   * ```
   */
  static open(key: number, options?: SemaphoreOpenOptions): Semaphore {
    const opts = validateOptions(options)
    const initial = validateValue(opts.initial ?? 0, 'options.initial')
    const undo = optionalBoolean(opts.undo, 'options.undo', true)
    const set = SemaphoreSet.open(key, {
      count: 1,
      create: opts.create,
      exclusive: opts.exclusive,
      mode: opts.mode,
      initial: [initial],
      initTimeoutMs: opts.initTimeoutMs,
    })
    return new Semaphore(set, undo)
  }

  /** The identifier of the set holding the semaphore. */
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
   * The current value (`GETVAL`).
   *
   * @example
   * ```ts
   * sem.value // 2
   * ```
   */
  get value(): number {
    return this.#set.get(0)
  }

  #ops(delta: number): SemaphoreOp[] {
    return [{ index: 0, delta, undo: this.#undo }]
  }

  /**
   * Takes `count` (default 1), waiting without blocking the event loop until the value allows
   * it. Rejects with `EAGAIN` after `timeoutMs`, `EIDRM` if removed, `AbortError` on `signal`
   * (then nothing was taken).
   *
   * @example
   * ```ts
   * await sem.acquire({ timeoutMs: 1000, signal })
   * ```
   */
  async acquire(options?: AcquireOptions): Promise<void> {
    // Without options, a value that allows it is taken on the fast path.
    if (options === undefined && fastOp(this.#id(), 0, -1, this.#flags | NOWAIT | SOFT)) return
    const opts = validateOptions(options)
    const n = amount(opts.count, 'options.count')
    return this.#set.op(this.#ops(-n), { timeoutMs: opts.timeoutMs, signal: opts.signal })
  }

  /**
   * Takes `count` (default 1), blocking the calling thread; `wait: false` throws `EAGAIN` at
   * once instead of blocking, `timeoutMs` after that long.
   *
   * @example
   * ```ts
   * sem.acquireSync({ timeoutMs: 50 })
   * ```
   */
  acquireSync(options?: AcquireSyncOptions): void {
    if (options === undefined) {
      fastOp(this.#id(), 0, -1, this.#flags)
      return
    }
    const opts = validateOptions(options)
    const n = amount(opts.count, 'options.count')
    this.#set.opSync(this.#ops(-n), { timeoutMs: opts.timeoutMs, wait: opts.wait })
  }

  /**
   * Takes `count` (default 1) if that is possible now: `true` if taken, `false` otherwise.
   *
   * @example
   * ```ts
   * if (sem.tryAcquire()) { try { work() } finally { sem.release() } }
   * ```
   */
  tryAcquire(count?: number): boolean {
    const n = amount(count, 'count')
    return fastOp(this.#id(), 0, -n, this.#flags | NOWAIT | SOFT)
  }

  /**
   * Adds `count` (default 1), waking waiters. Throws `ERANGE` if the value would exceed 32767.
   *
   * @example
   * ```ts
   * sem.release(2)
   * ```
   */
  release(count?: number): void {
    const n = amount(count, 'count')
    fastOp(this.#id(), 0, n, this.#flags)
  }

  /**
   * Waits until the value is zero (an operation of 0), without blocking the event loop.
   *
   * @example
   * ```ts
   * await sem.waitForZero({ timeoutMs: 5000 })
   * ```
   */
  async waitForZero(options?: SemaphoreWaitOptions): Promise<void> {
    return this.#set.op([{ index: 0, delta: 0 }], options)
  }

  /**
   * Waits until the value is zero, blocking the calling thread.
   *
   * @example
   * ```ts
   * sem.waitForZeroSync({ timeoutMs: 100 })
   * ```
   */
  waitForZeroSync(options?: SemaphoreWaitSyncOptions): void {
    this.#set.opSync([{ index: 0, delta: 0 }], options)
  }

  /**
   * Removes the semaphore from the system (`IPC_RMID`); waiters get `EIDRM`.
   *
   * @example
   * ```ts
   * sem.remove()
   * ```
   */
  remove(): void {
    this.#set.remove()
  }

  /**
   * Releases this handle (not the semaphore): pending waits end with an `AbortError`, later
   * calls throw `ERR_INVALID_STATE`. Idempotent.
   *
   * @example
   * ```ts
   * sem.close()
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
   * nothing), for `await using sem = ...`.
   *
   * @example
   * ```ts
   * {
   *   await using sem = Semaphore.open(key)
   *   // ...
   * }   // closed, and no wait of it is pending any more
   * ```
   */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.#set[Symbol.asyncDispose]()
  }
}
