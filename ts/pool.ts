/**
 * What the fast paths share (`queue.ts`, `unix-socket.ts`, `posix-queue.ts`, `semaphore.ts`,
 * `posix-semaphore.ts`): a per-thread pool registered once with the native side, through
 * which argument-less native calls take their arguments and, for messages, receive payloads
 * that are then copied into memory of their own ({@link PayloadCopier}); and the answer codes
 * of those calls, with the one way a failed call's error is thrown.
 *
 * @module
 * @internal
 */

import { markAsUntransferable } from 'node:worker_threads'
import { callNative, type ErrorDetail, type IpcError } from './errors'

/** What an argument-less fast native call answers when nothing was ready (`EAGAIN`). */
export const FAST_EMPTY = -1
/** What it answers after an error, which the module's `...FastError()` call then throws. */
export const FAST_FAILED = -2

/**
 * A new pool of `size` bytes, registered as this thread's with the native side (`register`:
 * the module's `...FastRegister`). It is never handed out; should it be reached all the same,
 * postMessage and structuredClone copy it (it is marked untransferable).
 *
 * @example
 * ```ts
 * const pool = registeredPool(64 * 1024, native.msgFastRegister)
 * ```
 */
export function registeredPool(size: number, register: (pool: Buffer) => void): Buffer {
  const pool = Buffer.allocUnsafeSlow(size)
  markAsUntransferable(pool.buffer as ArrayBuffer)
  register(pool)
  return pool
}

/** The first `bytes` of `pool` as 32-bit words: where a fast call's arguments go. */
export function poolWords(pool: Buffer, bytes: number): Int32Array {
  return new Int32Array(pool.buffer, pool.byteOffset, bytes >> 2)
}

/**
 * Throws, as an {@link IpcError} (with `detail`, as {@link callNative} adds it), the error the
 * module's last fast call kept after it answered {@link FAST_FAILED}: `kept` is the module's
 * `...FastError()`, which throws it.
 *
 * @example
 * ```ts
 * if (sent === FAST_FAILED) throwFastError(native.msgFastError, sendErrorDetail(bytes.length))
 * ```
 */
export function throwFastError(kept: () => void, detail?: (err: IpcError) => ErrorDetail | undefined): never {
  callNative(kept, detail)
  throw new Error('ipckit: a fast-path call failed without an error')
}

/** Payload lengths whose source view is kept for the next payload of the same length. */
const CACHED_VIEWS = 4096

/**
 * Makes a Buffer of a given length the cheapest way: `new Buffer[Symbol.species](length)`
 * (Node's `FastBuffer`, what `subarray` uses). Up to 64 bytes V8 keeps it inside the
 * JavaScript heap (`--typed-array-max-size-in-heap`), where it costs about what a view of a
 * pool costs; above, its zero-filled memory still comes faster than `Buffer.allocUnsafeSlow`'s
 * unfilled memory (measured on Node 20: 550 against 830 ns at 1 KiB, with the copy), which
 * goes through more JavaScript. Where the species does not make genuine Buffers, the latter.
 */
export const newBuffer: (length: number) => Buffer = (() => {
  const Species = (Buffer as unknown as { [Symbol.species]?: new (length: number) => Buffer })[Symbol.species]
  try {
    if (Species !== undefined && Object.getPrototypeOf(new Species(2)) === Buffer.prototype) {
      return (length) => new Species(length)
    }
  } catch {
    // fall through
  }
  return (length) => Buffer.allocUnsafeSlow(length)
})()

/**
 * Copies payloads that the native side received into `pool` at `start` out into Buffers of
 * their own, so that a payload's `.buffer` holds that payload and nothing else: no other
 * message (another sender's among them) is reachable through it, and writing through it
 * changes no other message. (Payloads used to be views of the pool, as `Buffer.allocUnsafe`
 * hands out views of Node's own pool; here the other bytes came from other processes.)
 *
 * Receiving always at the same place lets the view of the source be kept per length: a copy
 * is then one allocation (inside the heap up to 64 bytes) and one `set`. Above 64 bytes the
 * allocation is a backing store of V8's, which costs more than the view it replaces (~0.45 µs
 * more per 1 KiB message, measured on a loaded host where such a receive took 1.1-1.8 µs);
 * Node's own sockets pay the same for each chunk they read.
 *
 * @example
 * ```ts
 * const copier = new PayloadCopier(pool, ARGS)
 * const data = copier.take(len)
 * ```
 */
export class PayloadCopier {
  readonly #memory: ArrayBuffer
  readonly #at: number
  readonly #views: Array<Uint8Array | undefined> = []

  constructor(pool: Buffer, start: number) {
    this.#memory = pool.buffer as ArrayBuffer
    this.#at = pool.byteOffset + start
  }

  /** A new Buffer holding a copy of the `length` bytes received at `start`. */
  take(length: number): Buffer {
    const out = newBuffer(length)
    let source = this.#views[length]
    if (source === undefined) {
      source = new Uint8Array(this.#memory, this.#at, length)
      if (length <= CACHED_VIEWS) this.#views[length] = source
    }
    out.set(source)
    return out
  }
}
