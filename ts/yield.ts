/**
 * One give-away of the CPU before a wait sleeps.
 *
 * When the two ends of an exchange share a CPU (both pinned to it, or more runnable threads
 * than CPUs), the peer that would answer is usually runnable right then, behind the side
 * about to wait. Sleeping costs that side a wake later (a thread, an eventfd, an event-loop
 * iteration, a context switch each way); giving the CPU away first (`sched_yield`) lets the
 * peer run, answer and go back to its own wait, and the answer is then taken with the
 * non-blocking call the wait would have retried, with no wake at all. With a CPU of its own
 * each, nothing else is runnable here and the yield returns at once (one system call).
 *
 * A {@link YieldGate} per waited object keeps the cost bounded where yielding does not pay
 * (the peer runs on another CPU, or has nothing to say yet): after a yield that found nothing,
 * the next 1, 3, 7, ... up to 63 waits sleep at once, and the first yield that finds something
 * makes every wait yield again. `IPCKIT_NO_YIELD=1` in the environment turns it off (every
 * wait sleeps at once, as before).
 *
 * @internal
 * @module
 */

import { native } from './native'

/** Whether waits may yield first (`IPCKIT_NO_YIELD=1` turns it off). */
export const YIELDS = process.env.IPCKIT_NO_YIELD !== '1'

const MAX_SKIP = 63

/**
 * Whether the waits of one object yield before they sleep, from what their last yields found.
 *
 * @example
 * ```ts
 * const gate = new YieldGate()
 * const now = tryAfterYield(gate, () => takeIfThere())  // undefined: go to sleep
 * ```
 */
export class YieldGate {
  /** Waits left that sleep at once. */
  skip = 0
  /** How many waits the last yield that found nothing made sleep at once (0 after a find). */
  misses = 0
}

/**
 * Before a wait sleeps: unless recent yields of `gate` found nothing, gives the CPU away once
 * and runs `attempt` (the non-blocking try the wait would retry when woken). Returns its result,
 * or `undefined` (sleep now) when it found nothing or no yield was due. What `attempt` throws
 * goes to the caller.
 *
 * @example
 * ```ts
 * const msg = tryAfterYield(this.#gate, () => receiveNow(fd)) ?? (await waitForIt())
 * ```
 */
export function tryAfterYield<T>(gate: YieldGate, attempt: () => T | undefined): T | undefined {
  if (!YIELDS) return undefined
  if (gate.skip > 0) {
    gate.skip--
    return undefined
  }
  native.yieldCpu()
  let got: T | undefined
  try {
    got = attempt()
  } catch (err) {
    gate.misses = 0
    throw err
  }
  if (got === undefined) {
    gate.misses = Math.min(2 * gate.misses + 1, MAX_SKIP)
    gate.skip = gate.misses
  } else {
    gate.misses = 0
  }
  return got
}
