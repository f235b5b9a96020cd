/**
 * Descriptors a class owns (memfd, eventfd, pidfd, POSIX shared memory): handed to it at birth
 * or by `fromFd`, closed by its `close()`, and by a finalizer if the object is collected first.
 * Closing lets the event loop's poller forget the descriptor first (`releaseFd` of
 * `./reactor`), so no wait is left on a number the kernel may hand out again.
 *
 * @internal
 * @module
 */

import { closeSync } from 'node:fs'

import { native } from './native'
import { releaseFd } from './reactor'

/** Closes descriptors whose owner object was collected without `close()` (a safety net). */
const finalizer = new FinalizationRegistry<number>((fd) => closeNow(fd, undefined))

function closeNow(fd: number, reason: unknown): void {
  // Made by ipckit here (never opened through `fs`): closed by a system call of ipckit's own,
  // which spares a Worker Node.js's warning about a descriptor `fs` did not open. One handed
  // in (`fromFd`), which `fs` may have opened: through `fs`, which keeps Node.js's books.
  const made = native.fdDisowned(fd)
  try {
    releaseFd(fd, reason)
  } catch {
    // the poller is gone with its environment: nothing to forget
  }
  try {
    if (made) native.fdClose(fd)
    else closeSync(fd)
  } catch {
    // closed already, behind the owner's back: nothing is left to release
  }
}

/**
 * Makes `owner` the owner of `fd`: if it is collected without {@link closeOwnedFd}, the
 * finalizer closes the descriptor.
 *
 * @example
 * ```ts
 * constructor(fd: number) { this.fd = fd; ownFd(this, fd) }
 * ```
 */
export function ownFd(owner: object, fd: number): void {
  finalizer.register(owner, fd, owner)
  // Closed when this thread's environment ends (a Worker terminated with the owner open),
  // which runs neither close() nor the finalizer.
  native.fdOwned(fd)
}

/**
 * For the `fromFd` forms, after {@link ownFd}: the descriptor came from the caller, so the end
 * of this thread's environment leaves it open. Its number may be shared with another thread
 * (a Worker given the main thread's descriptor numbers), which closing it would pull it from
 * under; `close()` and the finalizer still close it.
 *
 * @example
 * ```ts
 * static fromFd(fd: number) { const o = new Thing(fd); adoptedFd(fd); return o }
 * ```
 */
export function adoptedFd(fd: number): void {
  native.fdDisowned(fd)
}

/**
 * Closes the descriptor `owner` owns, now and once: waits on it on the event loop end with an
 * `AbortError` whose `cause` is `reason`, then the descriptor is closed (one someone else
 * closed is not an error).
 *
 * @example
 * ```ts
 * close() { if (this.closed) return; ...; closeOwnedFd(this, this.fd, invalidState('closed')) }
 * ```
 */
export function closeOwnedFd(owner: object, fd: number, reason?: unknown): void {
  finalizer.unregister(owner)
  closeNow(fd, reason)
}
