/**
 * System V shared memory: `shmget`, `shmat`, `shmdt`, `shmctl`, and cross-process wait/notify on
 * a 32-bit word of a segment (futex); and {@link MappedMemory}, the copy API, views and futex
 * calls that POSIX shared memory (`posix-shared-memory.ts`) and memfds (`memfd.ts`) share.
 *
 * @module
 */

import {
  AbortError,
  IpcError,
  answered,
  callNative,
  featureUnavailable,
  invalidArgType,
  invalidState,
  outOfRange,
  type ErrorDetail,
} from './errors'
import { native, type Reactor } from './native'
import { Lifetime, startWait } from './reactor'
import { ownerChanges, ownerStat, secondsToDate } from './sysv'
import {
  MAX_SAFE,
  optionalBoolean,
  optionalInteger,
  toBytes,
  validateAbortSignal,
  validateInteger,
  validateKey,
  validateMode,
  validateOptions,
  validateTimeout,
} from './validate'

type ShmMapping = InstanceType<typeof native.ShmMapping>

/** What can be written: a string (as UTF-8), a Buffer or Uint8Array, any other TypedArray or DataView. */
export type ShmData = string | ArrayBufferView

/** Options of {@link SharedMemory.open}. */
export interface SharedMemoryOpenOptions {
  /**
   * Size in bytes of a created segment (`>= 1`). When opening an existing segment, a larger size
   * fails with `EINVAL`; `0` (the default) accepts any size. {@link SharedMemory.size} reports
   * the real size.
   */
  size?: number
  /** Create the segment if the key has none (`IPC_CREAT`). Default `false`. */
  create?: boolean
  /** Fail with `EEXIST` if the key already has a segment (`IPC_CREAT | IPC_EXCL`); implies `create`. */
  exclusive?: boolean
  /** Permission bits of a created segment. Default `0o600`. */
  mode?: number
}

/** Options of {@link SharedMemory.create}. */
export interface SharedMemoryCreateOptions {
  /** Size in bytes, `>= 1`. */
  size: number
  /** Permission bits. Default `0o600`. */
  mode?: number
}

/** Options of {@link SharedMemory.attach}. */
export interface AttachOptions {
  /**
   * Map read-only (`SHM_RDONLY`, `PROT_READ`; read permission is enough). A read-only view has
   * the copy API only ({@link SharedMemoryView.read}); its {@link SharedMemoryView.buffer}
   * throws, because a write through a typed array into read-only memory would kill the process.
   */
  readonly?: boolean
}

/** Options of {@link SharedMemory.wait}. */
export interface ShmWaitOptions {
  /** Give up after this many milliseconds (`'timed-out'`). Default `Infinity`. */
  timeoutMs?: number
  /** Cancels the wait (the promise rejects with an `AbortError`). */
  signal?: AbortSignal
}

/** Options of {@link SharedMemory.waitSync}. */
export type ShmWaitSyncOptions = Omit<ShmWaitOptions, 'signal'>

/**
 * How a wait ended, as `Atomics.wait` says it: `'ok'` woken by {@link SharedMemory.notify} (or,
 * rarely, spuriously: futex waits may end without a notify, so re-check your condition);
 * `'not-equal'` the word did not hold the expected value, so there was no wait; `'timed-out'`.
 */
export type ShmWaitResult = 'ok' | 'not-equal' | 'timed-out'

/** A segment's state, from `shmctl(IPC_STAT)`. */
export interface SharedMemoryStat {
  /** The key (unsigned); 0 for a private segment, and once removed. */
  key: number
  /** Size in bytes (`shm_segsz`). */
  size: number
  /** Current attachments, in every process (`shm_nattch`). */
  attachments: number
  /** Pid of the creator (`shm_cpid`). */
  creatorPid: number
  /** Pid of the last attach or detach (`shm_lpid`). */
  lastPid: number
  /** Time of the last attach, `null` if none. */
  attachTime: Date | null
  /** Time of the last detach, `null` if none. */
  detachTime: Date | null
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
  /** `remove()` was called: the segment goes away at its last detach (`SHM_DEST`). */
  removed: boolean
}

/** Changes for {@link SharedMemory.update}; what is left out stays as it is. */
export interface SharedMemoryUpdate {
  /** Permission bits. */
  mode?: number
  /** Owner user id. */
  uid?: number
  /** Owner group id. */
  gid?: number
}

const MAX_ID = 0x7fff_ffff
const WAIT_RESULTS: readonly ShmWaitResult[] = ['ok', 'not-equal', 'timed-out']

/**
 * Whether this runtime lets {@link SharedMemory.attach} hand out zero-copy views: Node.js does;
 * Electron >= 21 refuses external buffers, and there `attach()` throws while the copy API
 * ({@link SharedMemory.read}, {@link SharedMemory.write}) works as everywhere. Probed once when
 * ipckit loads; setting the environment variable `IPCKIT_NO_ZERO_COPY=1` before that forces
 * `false` (to test the fallback path of an application).
 *
 * @example
 * ```ts
 * import { SharedMemory, zeroCopySupported } from 'ipckit'
 * const counter = zeroCopySupported ? new Int32Array(shm.attach().buffer) : undefined
 * ```
 */
export const zeroCopySupported: boolean = !process.env.IPCKIT_NO_ZERO_COPY && native.shmZeroCopyProbe()

/** A Buffer over the bytes of `view` (no copy). */
function asBuffer(view: ArrayBufferView): Buffer {
  return Buffer.isBuffer(view) ? view : Buffer.from(view.buffer, view.byteOffset, view.byteLength)
}

function validateOffset(offset: unknown, size: number, name = 'offset'): number {
  validateInteger(offset, name, 0, size)
  return offset
}

/**
 * What an `EINVAL` from `shmget` with `size` means: no size for a new segment, a size above
 * shmmax, or (a size within limits) a segment of this key that is smaller.
 */
function shmgetDetail(size: number): ErrorDetail {
  if (size === 0) return { info: 'no options.size: a new segment needs a size of at least 1 byte' }
  let shmmax: bigint | undefined
  try {
    shmmax = BigInt(native.ipcLimits().shmmax)
  } catch {
    // No limits to read here (macOS): say what is known.
  }
  if (shmmax !== undefined && BigInt(size) > shmmax) {
    return { info: `options.size ${size} is above shmmax, the largest segment this system makes: ${shmmax} bytes` }
  }
  return { info: `options.size ${size}: the existing segment of this key is smaller` }
}

/** Checks a 4-aligned word offset inside a mapping of `size` bytes. */
function validateWordOffset(offset: unknown, size: number): number {
  validateInteger(offset, 'offset', 0, MAX_SAFE)
  if (offset % 4 !== 0) throw outOfRange('offset', 'a multiple of 4', offset)
  if (offset + 4 > size) throw outOfRange('offset', `<= ${size - 4}`, offset)
  return offset
}

/** The 32-bit value a futex compares: an int32 or uint32 number, as Int32Array/Uint32Array hold it. */
function validateExpected(value: unknown): number {
  validateInteger(value, 'expected', -0x8000_0000, 0xffff_ffff)
  return value >>> 0
}

/**
 * Copy reads and writes over one attachment, at an offset the caller validated (once: these
 * run per chunk), bounds-checked first. With `bytes`, a zero-copy
 * Uint8Array over that attachment, they copy in JavaScript (`TypedArray.set`, a memmove): a
 * native call with arguments costs more than copying a few KiB. Without it (a runtime that
 * refuses external buffers, a read-only attachment) they copy in a native call.
 */
function copyRead(
  mapping: ShmMapping,
  bytes: Uint8Array | undefined,
  size: number,
  offset: number,
  lengthOrTarget: unknown,
): Buffer | ArrayBufferView {
  if (typeof lengthOrTarget === 'number') {
    validateInteger(lengthOrTarget, 'length', 0, size - offset)
    const out = Buffer.allocUnsafe(lengthOrTarget)
    if (bytes !== undefined) out.set(bytes.subarray(offset, offset + lengthOrTarget))
    else nativeRead(mapping, offset, out)
    return out
  }
  if (!ArrayBuffer.isView(lengthOrTarget)) {
    throw invalidArgType('target', 'of type number or an instance of Buffer, TypedArray, or DataView', lengthOrTarget)
  }
  const target = lengthOrTarget
  if (target.byteLength > size - offset) {
    throw outOfRange('target.byteLength', `<= ${size - offset} (the bytes after offset)`, target.byteLength)
  }
  if (bytes !== undefined) asBuffer(target).set(bytes.subarray(offset, offset + target.byteLength))
  else nativeRead(mapping, offset, asBuffer(target))
  return target
}

function copyWrite(
  mapping: ShmMapping,
  bytes: Uint8Array | undefined,
  size: number,
  src: Uint8Array,
  offset: number,
): void {
  if (src.byteLength > size - offset) {
    throw outOfRange('data.byteLength', `<= ${size - offset} (the bytes after offset)`, src.byteLength)
  }
  if (bytes !== undefined) bytes.set(src, offset)
  else nativeWrite(mapping, offset, src)
}

// The native copies sit in functions of their own: a function whose variables an arrow
// function captures allocates a context on every call, even when the arrow is never made, and
// copyRead/copyWrite run once per chunk (this made the copy API 1.5x memcpy at 4 KiB, not 1.25x).
function nativeRead(mapping: ShmMapping, offset: number, out: Buffer): void {
  callNative(() => mapping.read(offset, out))
}

function nativeWrite(mapping: ShmMapping, offset: number, src: Uint8Array): void {
  callNative(() => mapping.write(offset, src))
}

/**
 * One mapping of shared memory, made by {@link MappedMemory.attach}: an attachment (`shmat`) of
 * a System V segment, or a shared mapping (`mmap`) of a POSIX object or memfd.
 *
 * {@link buffer} is an `ArrayBuffer` over the memory itself (zero-copy), so typed arrays over it
 * see what other processes write, and `Atomics` on an `Int32Array` over it work across
 * processes. {@link detach} (or `close()` of the object it came from) neuters that ArrayBuffer:
 * every typed array over it gets length 0 and reads `undefined`, instead of pointing at unmapped
 * memory. The memory itself is unmapped (`shmdt`, `munmap`) once the engine has let go of it; a
 * view that is only garbage-collected is detached the same way, by its finalizer.
 *
 * @example
 * ```ts
 * using view = shm.attach()
 * const words = new Int32Array(view.buffer)
 * Atomics.add(words, 0, 1)          // seen at once by every process attached
 * ```
 */
export class SharedMemoryView implements Disposable {
  /** Whether the mapping is read-only (`SHM_RDONLY`, `PROT_READ`). */
  readonly readonly: boolean
  /** The mapping's size in bytes (0 once detached). */
  #size: number
  #mapping: ShmMapping | undefined
  #buffer: ArrayBuffer | undefined
  /** A Uint8Array over #buffer, for the copy API. */
  #bytes: Uint8Array | undefined
  readonly #onDetach: (view: SharedMemoryView) => void

  /** @internal */
  constructor(mapping: ShmMapping, onDetach: (view: SharedMemoryView) => void) {
    this.#mapping = mapping
    this.#size = mapping.length
    this.readonly = mapping.readonly
    this.#onDetach = onDetach
    if (!this.readonly) {
      try {
        this.#buffer = callNative(() => mapping.arrayBuffer())
        this.#bytes = new Uint8Array(this.#buffer)
      } catch (err) {
        mapping.release()
        if (err instanceof IpcError && err.code === 'ENOTSUP') throw zeroCopyError()
        throw err
      }
    }
  }

  /** @internal The zero-copy buffer, if any, for the owner's bookkeeping. */
  get rawBuffer(): ArrayBuffer | undefined {
    return this.#buffer
  }

  /**
   * The zero-copy `ArrayBuffer` over the memory (one per view). Throws `ERR_INVALID_STATE`
   * once detached, and for a read-only view (use {@link read}).
   *
   * @example
   * ```ts
   * const bytes = new Uint8Array(view.buffer, 16, 64)
   * ```
   */
  get buffer(): ArrayBuffer {
    this.#check()
    if (this.#buffer === undefined) {
      throw invalidState(
        'a read-only SharedMemoryView has no zero-copy buffer (writing into it would crash the process); use read()',
      )
    }
    return this.#buffer
  }

  /** The mapping's size in bytes; 0 once detached. */
  get byteLength(): number {
    return this.#size
  }

  /** Whether {@link detach} was called (or the object it came from was closed). */
  get detached(): boolean {
    return this.#mapping === undefined
  }

  #check(): ShmMapping {
    if (this.#mapping === undefined) throw invalidState('SharedMemoryView is detached')
    return this.#mapping
  }

  /**
   * Copies bytes out of the memory: `length` bytes into a new Buffer, or as many as `target`
   * holds into `target` (which is returned). Throws `ERR_OUT_OF_RANGE` for a range past the end.
   *
   * @example
   * ```ts
   * const header = view.read(0, 16)
   * ```
   */
  read(offset: number, length: number): Buffer
  read<T extends ArrayBufferView>(offset: number, target: T): T
  read(offset: number, lengthOrTarget: number | ArrayBufferView): Buffer | ArrayBufferView {
    const mapping = this.#check()
    return copyRead(mapping, this.#bytes, this.#size, validateOffset(offset, this.#size), lengthOrTarget)
  }

  /**
   * Copies `data` into the memory at `offset` (default 0). Throws `ERR_OUT_OF_RANGE` (nothing
   * written) for a range past the end, `EACCES` on a read-only view.
   *
   * @example
   * ```ts
   * view.write('hello', 16)
   * ```
   */
  write(data: ShmData, offset = 0): void {
    const mapping = this.#check()
    copyWrite(mapping, this.#bytes, this.#size, toBytes(data, 'data'), validateOffset(offset, this.#size))
  }

  /**
   * Detaches the view: its ArrayBuffer is neutered (every typed array over it has length 0),
   * and the mapping is unmapped once nothing uses it. Calling it again does nothing.
   *
   * @example
   * ```ts
   * const words = new Int32Array(view.buffer)
   * view.detach()
   * words.length   // 0
   * ```
   */
  detach(): void {
    const mapping = this.#mapping
    if (mapping === undefined) return
    this.#mapping = undefined
    this.#size = 0
    // Neutered, so the attachment ends now (shmdt), not when the engine frees the buffer.
    if (this.#buffer !== undefined) mapping.detachBuffer(this.#buffer)
    this.#buffer = undefined
    this.#bytes = undefined
    mapping.release()
    this.#onDetach(this)
  }

  /** Calls {@link detach}, for `using view = shm.attach()`. */
  [Symbol.dispose](): void {
    this.detach()
  }
}

function zeroCopyError(): Error {
  return featureUnavailable(
    'zero-copy shared memory is not available in this runtime (it refuses external ArrayBuffers, as Electron >= 21 does); use SharedMemory.read() and write()',
  )
}

/** Neuters buffers of views that were garbage-collected while their buffer lived on. */
interface Attachment {
  view: WeakRef<SharedMemoryView>
  buffer: WeakRef<ArrayBuffer> | undefined
}

/**
 * What {@link SharedMemory} (System V), {@link PosixSharedMemory} and {@link Memfd} share: the
 * copy API ({@link read}, {@link write}), zero-copy views ({@link attach}), futex
 * {@link wait} / {@link notify} on a 32-bit word, and a {@link close} that neuters every view.
 * Only the way the memory is mapped differs.
 *
 * @example
 * ```ts
 * function greet(memory: MappedMemory) {
 *   memory.write('hello', 0)
 *   memory.notify(64)
 * }
 * greet(SharedMemory.create({ size: 4096 }))
 * greet(Memfd.create({ size: 4096 }))
 * ```
 */
export abstract class MappedMemory implements Disposable, AsyncDisposable {
  /** The size in bytes, as mapped (for a POSIX object or memfd: its size when opened). */
  readonly size: number
  readonly #life: Lifetime
  /** The attachment of the copy API and of wait/notify, made at first use. */
  #mapping: ShmMapping | undefined
  /**
   * A zero-copy Uint8Array over #mapping for the copy API, made at its first read or write
   * where the runtime allows it and the attachment is read-write; `null` where it cannot be.
   */
  #bytes: Uint8Array | null | undefined
  /** Why a read-write attach failed, when the copy API fell back to a read-only one. */
  #writeError: IpcError | undefined
  readonly #attachments = new Set<Attachment>()
  readonly #registry = new FinalizationRegistry<Attachment>((a) => this.#attachments.delete(a))

  /** @internal `name` is the class name errors use. */
  protected constructor(size: number, name: string) {
    this.size = size
    this.#life = new Lifetime(name)
  }

  /**
   * @internal Maps the memory once more (read-only with `readonly`): one new mapping per
   * call, for the copy API or for a view.
   */
  protected abstract map(readonly: boolean): ShmMapping

  /** Whether {@link close} was called. */
  get closed(): boolean {
    return this.#life.closed
  }

  /** @internal Throws `ERR_INVALID_STATE` once closed. */
  protected checkOpen(): void {
    this.#life.check()
  }

  /** The copy API's attachment: read-write, or read-only where only reading is permitted. */
  #copyMapping(): ShmMapping {
    return this.#mapping ?? this.#attachForCopies()
  }

  /**
   * Makes the copy API's attachment (a function of its own: see nativeRead): read-write, or
   * read-only when this process may only read (`EACCES`) or the memory is sealed against
   * writing (`EPERM`, a memfd); later writes then throw that error.
   */
  #attachForCopies(): ShmMapping {
    try {
      this.#mapping = this.map(false)
    } catch (err) {
      if (!(err instanceof IpcError && (err.code === 'EACCES' || err.code === 'EPERM'))) throw err
      this.#mapping = this.map(true)
      this.#writeError = err
    }
    return this.#mapping
  }

  /** The copy API's zero-copy bytes (see #bytes), or undefined to copy in a native call. */
  #copyBytes(mapping: ShmMapping): Uint8Array | undefined {
    if (this.#bytes === undefined) this.#bytes = this.#zeroCopyBytes(mapping)
    return this.#bytes ?? undefined
  }

  /** A zero-copy Uint8Array over `mapping`, or null (a function of its own: see nativeRead). */
  #zeroCopyBytes(mapping: ShmMapping): Uint8Array | null {
    // Never a writable ArrayBuffer over read-only memory: a write through it would kill the
    // process (SIGSEGV). Asked once per mapping, so the native getter costs nothing per copy.
    if (!zeroCopySupported || this.#writeError !== undefined || mapping.readonly) return null
    try {
      return new Uint8Array(callNative(() => mapping.arrayBuffer()))
    } catch {
      // The runtime copied the memory after all (ENOTSUP): keep the native copies.
      return null
    }
  }

  /**
   * Copies bytes out of the memory: `length` bytes into a new Buffer, or as many as `target`
   * holds into `target` (which is returned). Works in every runtime. Throws `ERR_OUT_OF_RANGE`
   * for a range past the end.
   *
   * @example
   * ```ts
   * const head = shm.read(0, 16)
   * const words = shm.read(64, new Uint32Array(4))
   * ```
   */
  read(offset: number, length: number): Buffer
  read<T extends ArrayBufferView>(offset: number, target: T): T
  read(offset: number, lengthOrTarget: number | ArrayBufferView): Buffer | ArrayBufferView {
    // The common case in one step (a copy API call costs little more than the copy itself, even
    // from a call site that V8 does not inline): bytes in hand (so neither closed nor read-only),
    // a byte target, an offset and length that fit. Anything else takes the checked path.
    const bytes = this.#bytes
    if (
      bytes &&
      lengthOrTarget instanceof Uint8Array &&
      Number.isInteger(offset) &&
      offset >= 0 &&
      lengthOrTarget.byteLength <= this.size - offset
    ) {
      lengthOrTarget.set(bytes.subarray(offset, offset + lengthOrTarget.byteLength))
      return lengthOrTarget
    }
    validateOffset(offset, this.size)
    this.#life.check()
    const mapping = this.#copyMapping()
    return copyRead(mapping, this.#copyBytes(mapping), this.size, offset, lengthOrTarget)
  }

  /**
   * Copies `data` into the memory at `offset` (default 0). Works in every runtime. Throws
   * `ERR_OUT_OF_RANGE` (nothing written) for a range past the end, `EACCES` (`shmat`, `mmap`)
   * when this process may only read the memory, `EPERM` (`mmap`) for a memfd sealed against
   * writing.
   *
   * @example
   * ```ts
   * shm.write(Buffer.from([1, 2, 3]), 100)
   * ```
   */
  write(data: ShmData, offset = 0): void {
    // As in read(): the common case in one step, anything else checked below.
    const bytes = this.#bytes
    if (
      bytes &&
      data instanceof Uint8Array &&
      Number.isInteger(offset) &&
      offset >= 0 &&
      data.byteLength <= this.size - offset
    ) {
      bytes.set(data, offset)
      return
    }
    const src = toBytes(data, 'data')
    validateOffset(offset, this.size)
    this.#life.check()
    const mapping = this.#copyMapping()
    // #writeError first: `readonly` is a native getter, a call as costly as the copy of a few KiB.
    if (this.#writeError !== undefined && mapping.readonly) throw new IpcError(this.#writeError)
    copyWrite(mapping, this.#copyBytes(mapping), this.size, src, offset)
  }

  /**
   * Maps the memory again, zero-copy (`shmat`, or `mmap` for a POSIX object or memfd): the
   * view's `buffer` is an ArrayBuffer over it. Each call makes a new mapping; detach it with
   * {@link SharedMemoryView.detach} (or `using`), or let {@link close} do it. Throws
   * `ERR_FEATURE_UNAVAILABLE_ON_PLATFORM` where the runtime refuses external buffers
   * ({@link zeroCopySupported} is false), `EACCES` without the permission asked for, `EPERM`
   * for a writable view of a memfd sealed against writing.
   *
   * @example
   * ```ts
   * using view = shm.attach()
   * Atomics.store(new Int32Array(view.buffer), 0, 42)
   * using ro = shm.attach({ readonly: true })
   * ro.read(0, 4)
   * ```
   */
  attach(options?: AttachOptions): SharedMemoryView {
    const opts = validateOptions(options)
    const readonly = optionalBoolean(opts.readonly, 'options.readonly', false)
    this.#life.check()
    if (!zeroCopySupported) throw zeroCopyError()
    const mapping = this.map(readonly)
    const view = new SharedMemoryView(mapping, (v) => this.#forget(v))
    const buffer = view.rawBuffer
    const attachment: Attachment = { view: new WeakRef(view), buffer: buffer && new WeakRef(buffer) }
    this.#attachments.add(attachment)
    // Forget the record once nothing it could neuter is left.
    this.#registry.register(buffer ?? view, attachment, view)
    return view
  }

  #forget(view: SharedMemoryView): void {
    for (const a of this.#attachments) {
      if (a.view.deref() === view) {
        this.#attachments.delete(a)
        this.#registry.unregister(view)
        return
      }
    }
  }

  /**
   * Waits until another process (or this one) calls {@link notify} on the 32-bit word at
   * `offset` (a multiple of 4), if the word holds `expected` now (futex `FUTEX_WAIT`, shared
   * between processes). Resolves like `Atomics.wait`: `'ok'`, `'not-equal'` (at once, without
   * waiting), or `'timed-out'`. Never blocks the event loop; `signal` and {@link close} cancel
   * it (`AbortError`).
   *
   * As with any futex, a notify sent before the waiter sleeps is not remembered: change the
   * word, then notify, and the waiter sees `'not-equal'` or `'ok'`.
   *
   * @example
   * ```ts
   * // consumer
   * while (Atomics.load(words, 0) === 0) await shm.wait(0, 0, { timeoutMs: 1000 })
   * // producer, in another process
   * Atomics.store(words, 0, 1); shm.notify(0)
   * ```
   */
  async wait(offset: number, expected: number, options?: ShmWaitOptions): Promise<ShmWaitResult> {
    const value = validateExpected(expected)
    const opts = validateOptions(options)
    const timeoutMs = validateTimeout(opts.timeoutMs, 'options.timeoutMs')
    const signal = opts.signal
    validateAbortSignal(signal, 'options.signal')
    validateWordOffset(offset, this.size)
    this.#life.check()
    if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason })
    const mapping = this.#copyMapping()
    if (callNative(() => mapping.load(offset)) !== value) return 'not-equal'
    if (timeoutMs === 0) return 'timed-out'
    const timeout = Number.isFinite(timeoutMs) ? timeoutMs : null
    return startWait(
      (reactor: Reactor, waitId: number) => mapping.waitStart(reactor, waitId, offset, value, timeout),
      (code) => WAIT_RESULTS[code!]!,
      signal,
      [this.#life.waits],
    )
  }

  /**
   * {@link wait}, blocking the calling thread.
   *
   * @example
   * ```ts
   * if (shm.waitSync(0, 0, { timeoutMs: 50 }) === 'timed-out') console.log('nobody came')
   * ```
   */
  waitSync(offset: number, expected: number, options?: ShmWaitSyncOptions): ShmWaitResult {
    const value = validateExpected(expected)
    const opts = validateOptions(options)
    const timeoutMs = validateTimeout(opts.timeoutMs, 'options.timeoutMs')
    validateWordOffset(offset, this.size)
    this.#life.check()
    const mapping = this.#copyMapping()
    const timeout = Number.isFinite(timeoutMs) ? timeoutMs : null
    return WAIT_RESULTS[answered(callNative(() => mapping.waitSync(offset, value, timeout)))]!
  }

  /**
   * Wakes up to `count` (default: all) waiters on the 32-bit word at `offset`, in every process
   * (futex `FUTEX_WAKE`); returns how many were woken.
   *
   * @example
   * ```ts
   * Atomics.store(words, 0, 1)
   * shm.notify(0)
   * ```
   */
  notify(offset: number, count = Infinity): number {
    validateWordOffset(offset, this.size)
    if (count !== Infinity) validateInteger(count, 'count', 0, MAX_SAFE)
    this.#life.check()
    const n = Math.min(count, 0x7fff_ffff)
    const mapping = this.#copyMapping()
    return callNative(() => mapping.notify(offset, n))
  }

  /**
   * Releases this handle: every view made by {@link attach} is detached (its typed arrays get
   * length 0), pending waits end with an `AbortError`, the copy API's mapping is dropped, and
   * further calls throw `ERR_INVALID_STATE`. The memory itself stays while others use it (a
   * System V segment or POSIX object until it is removed, too). Calling it again does nothing.
   */
  close(): void {
    if (this.#life.close() === undefined) return
    for (const a of [...this.#attachments]) {
      const view = a.view.deref()
      if (view !== undefined) {
        view.detach()
      } else {
        const buffer = a.buffer?.deref()
        if (buffer !== undefined) native.shmDetachBuffer(buffer)
      }
    }
    this.#attachments.clear()
    this.#releaseCopies()
  }

  /** Lets go of the copy API's attachment, its zero-copy bytes included. */
  #releaseCopies(): void {
    if (this.#bytes) this.#mapping?.detachBuffer(this.#bytes.buffer as ArrayBuffer)
    this.#bytes = undefined
    this.#mapping?.release()
    this.#mapping = undefined
    this.#writeError = undefined
  }

  /**
   * @internal Unmaps the copy API's attachment now (the next copy maps again), so that it
   * holds back nothing (a memfd's `F_SEAL_WRITE` is refused while a writable mapping exists);
   * returns how many views made by {@link attach} are still attached, read-write and
   * read-only.
   */
  protected unmapCopies(): { writable: number; readonly: number } {
    this.#releaseCopies()
    let writable = 0
    let readonly = 0
    for (const a of this.#attachments) {
      const view = a.view.deref()
      if (view === undefined ? a.buffer?.deref() !== undefined : !view.detached) {
        if (view?.readonly) readonly++
        else writable++
      }
    }
    return { writable, readonly }
  }

  /** Calls {@link close}, for `using shm = ...open(...)`. */
  [Symbol.dispose](): void {
    this.close()
  }

  /**
   * {@link close}, then resolves once every wait it ended has settled (each pending promise
   * has rejected with its `AbortError`; a wait on another thread has confirmed that it took
   * nothing), for `await using shm = ...`.
   *
   * @example
   * ```ts
   * {
   *   await using shm = SharedMemory.fromId(id)
   *   // ...
   * }   // closed, and no wait of it is pending any more
   * ```
   */
  async [Symbol.asyncDispose](): Promise<void> {
    this.close()
    await this.#life.waits.settled()
  }
}

/**
 * A System V shared memory segment.
 *
 * Two ways in: the copy API ({@link read}, {@link write}) works in every runtime, Electron
 * included; {@link attach} gives a zero-copy {@link SharedMemoryView} where the runtime allows
 * it (see {@link zeroCopySupported}). {@link wait} and {@link notify} block on and wake a 32-bit
 * word across processes (futex), which `Atomics.wait` cannot do.
 *
 * The segment is a kernel object that outlives every process until {@link remove} is called and
 * the last process detaches; {@link close} only releases this handle and its views.
 *
 * @example
 * ```ts
 * import { SharedMemory, ftok } from 'ipckit'
 *
 * using shm = SharedMemory.open(ftok('/tmp', 2), { size: 4096, create: true })
 * shm.write('hello', 0)
 * shm.read(0, 5).toString()                 // 'hello'
 * const counter = new Int32Array(shm.attach().buffer)
 * Atomics.add(counter, 1, 1)
 * ```
 */
export class SharedMemory extends MappedMemory {
  /** The segment identifier, as `ipcs -m` shows it. */
  readonly id: number
  /** The key (unsigned 32-bit, as `ipcs` prints it); 0 for a private segment. */
  readonly key: number

  private constructor(id: number, key: number, size: number) {
    super(size, 'SharedMemory')
    this.id = id
    this.key = key >>> 0
  }

  /**
   * Opens the segment of `key` (`shmget`), creating it with `create`. `IPC_PRIVATE` always
   * creates a new segment. A new segment holds zeros.
   *
   * Throws `ENOENT` (no segment, no `create`), `EEXIST` (`exclusive`, one exists), `EINVAL`
   * (size 0 or above `shmmax` for a new segment; larger than the existing one), `EACCES`,
   * `ENOSPC`, `ENOMEM`.
   *
   * @example
   * ```ts
   * const shm = SharedMemory.open(0x5a00_0002, { size: 1 << 20, create: true, mode: 0o660 })
   * ```
   */
  static open(key: number, options?: SharedMemoryOpenOptions): SharedMemory {
    const k = validateKey(key)
    const opts = validateOptions(options)
    const size = optionalInteger(opts.size, 'options.size', 0, MAX_SAFE, 0)
    const create = optionalBoolean(opts.create, 'options.create', false)
    const exclusive = optionalBoolean(opts.exclusive, 'options.exclusive', false)
    const mode = validateMode(opts.mode, 'options.mode', 0o600)
    const id = callNative(
      () => native.shmOpen(k, size, create, exclusive, mode),
      (err) => (err.code === 'EINVAL' ? shmgetDetail(size) : undefined),
    )
    const stat = callNative(() => native.shmStat(id))
    return new SharedMemory(id, k, stat.size)
  }

  /**
   * Creates a new private segment (`IPC_PRIVATE`): reachable by its {@link id}, which can be
   * passed to other processes.
   *
   * @example
   * ```ts
   * const shm = SharedMemory.create({ size: 65536 })
   * child.send({ shmId: shm.id })   // the child calls SharedMemory.fromId(shmId)
   * ```
   */
  static create(options: SharedMemoryCreateOptions): SharedMemory {
    const opts = validateOptions(options)
    validateInteger(opts.size, 'options.size', 0, MAX_SAFE)
    return SharedMemory.open(0, { size: opts.size, create: true, mode: validateMode(opts.mode, 'options.mode', 0o600) })
  }

  /**
   * Opens an existing segment by its identifier (as `ipcs -m` shows it). Throws `EINVAL` if
   * there is no such segment, `EACCES` if it may not be read.
   *
   * @example
   * ```ts
   * const shm = SharedMemory.fromId(Number(process.argv[2]))
   * ```
   */
  static fromId(id: number): SharedMemory {
    validateInteger(id, 'id', 0, MAX_ID)
    const stat = callNative(() => native.shmStat(id))
    return new SharedMemory(id, stat.perm.key, stat.size)
  }

  /** @internal A new attachment (`shmat`). */
  protected map(readonly: boolean): ShmMapping {
    return callNative(() => native.shmAttach(this.id, readonly))
  }

  /**
   * The segment's state (`shmctl(IPC_STAT)`).
   *
   * @example
   * ```ts
   * const { size, attachments, creatorPid } = shm.stat()
   * ```
   */
  stat(): SharedMemoryStat {
    this.checkOpen()
    const s = callNative(() => native.shmStat(this.id))
    return {
      key: s.perm.key,
      size: s.size,
      attachments: s.attachments,
      creatorPid: s.creatorPid,
      lastPid: s.lastPid,
      attachTime: secondsToDate(s.attachTime),
      detachTime: secondsToDate(s.detachTime),
      ...ownerStat(s),
      removed: s.removed,
    }
  }

  /**
   * Changes permissions or owner (`shmctl(IPC_SET)`); the owner, the creator or a privileged
   * process may do it (`EPERM` otherwise).
   *
   * @example
   * ```ts
   * shm.update({ mode: 0o640 })
   * ```
   */
  update(changes: SharedMemoryUpdate): void {
    const c = validateOptions(changes, 'changes')
    const { mode, uid, gid } = ownerChanges(c)
    this.checkOpen()
    callNative(() => native.shmUpdate(this.id, mode, uid, gid))
  }

  /**
   * Marks the segment for removal (`shmctl(IPC_RMID)`): its key is free at once, and the memory
   * goes away when the last process detaches. Existing views and this handle keep working, as
   * on Linux, while some process is attached; a segment nobody has attached (this handle
   * attaches at its first read, write, wait or notify) is destroyed at once, and later calls
   * fail with `EINVAL` (`shmat`). To share a segment and mark it early, attach it everywhere first.
   *
   * @example
   * ```ts
   * shm.remove()
   * shm.close()
   * ```
   */
  remove(): void {
    this.checkOpen()
    callNative(() => native.shmRemove(this.id))
  }
}
