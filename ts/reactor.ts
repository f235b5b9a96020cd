/**
 * The async model shared by every primitive.
 *
 * A wait that cannot finish at once (an empty queue, a semaphore at zero) runs on a thread the
 * addon owns, never on the libuv threadpool, and its result comes back through one native
 * native `Reactor` per JavaScript environment. This module keeps the promises of the
 * pending waits, keeps the event loop alive exactly while some are pending, and wires
 * cancellation: an `AbortSignal`, `close()` of the object waited on, or the end of an
 * iteration cancel the native wait, and the promise rejects with an {@link AbortError} only
 * once the wait has confirmed that it took nothing. A wait that completed in the same instant
 * delivers its result instead, so nothing taken is ever dropped.
 *
 * @internal
 * @module
 */

import { AbortError, IpcError, fromNative } from './errors'
import { native, type Reactor, type SysErrorInfo } from './native'

type Settle = (error: SysErrorInfo | null, value: number | null, data: Buffer | null) => void

const settlers = new Map<number, Settle>()
let reactor: Reactor | undefined
let lastId = 0

function dispatch(waitId: number, error: SysErrorInfo | null, value: number | null, data: Buffer | null): void {
  const settle = settlers.get(waitId)
  if (settle === undefined) return
  settlers.delete(waitId)
  if (settlers.size === 0) reactor?.unref()
  settle(error, value, data)
}

function getReactor(): Reactor {
  reactor ??= new native.Reactor(dispatch)
  return reactor
}

/** Number of waits started and not yet settled in this environment (for tests). */
export function pendingWaits(): number {
  return settlers.size
}

/**
 * The pending waits of one owner (a queue, an iterator), so that all of them can be cancelled
 * at once, each with a reason that becomes the `cause` of its {@link AbortError}.
 */
export class WaitGroup {
  readonly #reasons = new Map<number, unknown>()
  readonly #ids = new Set<number>()
  readonly #whenIdle: Array<() => void> = []

  /** @internal */
  add(id: number): void {
    this.#ids.add(id)
  }

  /** @internal */
  delete(id: number): unknown {
    this.#ids.delete(id)
    const reason = this.#reasons.get(id)
    this.#reasons.delete(id)
    if (this.#ids.size === 0) for (const resolve of this.#whenIdle.splice(0)) resolve()
    return reason
  }

  /**
   * Resolves once no wait of this group is pending: after `cancelAll`, once every cancelled
   * wait has confirmed that it took nothing and its promise has rejected (for
   * `Symbol.asyncDispose`).
   */
  async settled(): Promise<void> {
    if (this.#ids.size > 0) await new Promise<void>((resolve) => this.#whenIdle.push(resolve))
    // One turn of the event loop: the promises the public methods returned (which await the
    // waits' own) have settled too when this resolves.
    await new Promise<void>((resolve) => setImmediate(resolve))
  }

  /** Pending waits of this group. */
  get size(): number {
    return this.#ids.size
  }

  /** Cancels every pending wait of this group with `reason`. */
  cancelAll(reason: unknown): void {
    for (const id of this.#ids) {
      this.#reasons.set(id, reason)
      reactor?.cancel(id)
    }
  }
}

/**
 * Starts a native wait and returns its promise.
 *
 * @param start starts the native wait under the given id (throws only for a native error)
 * @param map turns the delivered value into the result
 * @param signal cancels the wait when aborted
 * @param groups owners whose `cancelAll` may cancel this wait
 */
export function startWait<T>(
  start: (reactor: Reactor, waitId: number) => void,
  map: (value: number | null, data: Buffer | null) => T,
  signal: AbortSignal | undefined,
  groups: readonly WaitGroup[],
): Promise<T> {
  const r = getReactor()
  lastId = lastId >= 0xffff_fffe ? 1 : lastId + 1
  const id = lastId
  return new Promise<T>((resolve, reject) => {
    let abortReason: unknown
    const onAbort = () => {
      abortReason = signal!.reason
      r.cancel(id)
    }
    const finish = (): unknown => {
      signal?.removeEventListener('abort', onAbort)
      let groupReason: unknown
      for (const g of groups) groupReason ??= g.delete(id)
      return signal?.aborted ? abortReason : groupReason
    }
    settlers.set(id, (error, value, data) => {
      const reason = finish()
      if (error === null) {
        try {
          resolve(map(value, data))
        } catch (err) {
          reject(err)
        }
      } else if (error.code === 'ECANCELED') {
        reject(new AbortError(undefined, { cause: reason }))
      } else {
        reject(new IpcError(error))
      }
    })
    for (const g of groups) g.add(id)
    signal?.addEventListener('abort', onAbort, { once: true })
    if (settlers.size === 1) r.ref()
    try {
      start(r, id)
    } catch (err) {
      settlers.delete(id)
      if (settlers.size === 0) r.unref()
      finish()
      reject(fromNative(err))
    }
  })
}
