/**
 * What the per-thread receive pools of message queues (`queue.ts`) and message sockets
 * (`unix-socket.ts`) share: the native side receives into a pool buffer, and each payload is
 * then copied into memory of its own ({@link PayloadCopier}).
 *
 * @module
 * @internal
 */

/** What an argument-less fast native call answers when nothing was ready (`EAGAIN`). */
export const FAST_EMPTY = -1
/** What it answers after an error, which the module's `...FastError()` call then throws. */
export const FAST_FAILED = -2

/**
 * Largest payload V8 keeps inside the JavaScript heap (`--typed-array-max-size-in-heap`):
 * such a Buffer costs about what a view of a pool costs, with no backing store to allocate.
 */
const IN_HEAP = 64
/** Payload lengths whose source view is kept for the next payload of the same length. */
const CACHED_VIEWS = 4096

/**
 * Makes Buffers of a given length the cheapest way: `Buffer[Symbol.species]` (Node's
 * `FastBuffer`, what `subarray` uses) zero-fills, which costs nothing for payloads that V8 keeps
 * in the heap; larger ones are left unfilled (`Buffer.allocUnsafeSlow`), since they are
 * written whole at once. Where the species does not make genuine Buffers, the latter always.
 */
const newBuffer: (length: number) => Buffer = (() => {
  const Species = (Buffer as unknown as { [Symbol.species]?: new (length: number) => Buffer })[Symbol.species]
  try {
    if (Species !== undefined && Object.getPrototypeOf(new Species(2)) === Buffer.prototype) {
      return (length) => (length <= IN_HEAP ? new Species(length) : Buffer.allocUnsafeSlow(length))
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
 * is then one allocation (inside the heap up to 64 bytes) and one `set`.
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
