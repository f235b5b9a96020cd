/**
 * What the per-thread receive pools of message queues (`queue.ts`) and message sockets
 * (`unix-socket.ts`) share: received payloads are views of a pool that the native side writes
 * into, as `Buffer.allocUnsafe` hands out views of Node's own pool.
 *
 * @module
 * @internal
 */

/** What an argument-less fast native call answers when nothing was ready (`EAGAIN`). */
export const FAST_EMPTY = -1
/** What it answers after an error, which the module's `...FastError()` call then throws. */
export const FAST_FAILED = -2

/**
 * Makes a Buffer over `length` bytes of `memory` at `byteOffset`. Node's Buffers are made by
 * the class `Buffer[Symbol.species]` (what `subarray` uses); calling it directly costs half of
 * `Buffer.from(arrayBuffer, ...)`, which checks its arguments first. Where it does not make a
 * genuine Buffer, `Buffer.from` is used.
 *
 * @example
 * ```ts
 * const view = makeView(pool.buffer, pool.byteOffset + start, length)
 * ```
 */
export const makeView: (memory: ArrayBuffer, byteOffset: number, length: number) => Buffer = (() => {
  const Species = (Buffer as unknown as { [Symbol.species]?: new (m: ArrayBuffer, o: number, l: number) => Buffer })[
    Symbol.species
  ]
  try {
    if (Species !== undefined && Object.getPrototypeOf(new Species(new ArrayBuffer(8), 1, 2)) === Buffer.prototype) {
      return (memory, byteOffset, length) => new Species(memory, byteOffset, length)
    }
  } catch {
    // fall through
  }
  return (memory, byteOffset, length) => Buffer.from(memory, byteOffset, length)
})()
