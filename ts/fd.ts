/**
 * Descriptors a class owns (memfd, eventfd, pidfd, POSIX shared memory): handed to it at birth
 * or by `fromFd`, closed by its `close()`, and by a finalizer if the object is collected first.
 *
 * @internal
 * @module
 */

import { closeSync } from 'node:fs'

/** Closes descriptors whose owner object was collected without `close()` (a safety net). */
const finalizer = new FinalizationRegistry<number>((fd) => closeQuietly(fd))

function closeQuietly(fd: number): void {
  try {
    closeSync(fd)
  } catch {
    // closed already, behind the owner's back: nothing is left to release
  }
}

/**
 * Makes `owner` the owner of `fd`: if it is collected without {@link releaseFd}, the finalizer
 * closes the descriptor.
 *
 * @example
 * ```ts
 * constructor(fd: number) { this.fd = fd; ownFd(this, fd) }
 * ```
 */
export function ownFd(owner: object, fd: number): void {
  finalizer.register(owner, fd, owner)
}

/**
 * Closes the descriptor `owner` owns, now and once (a descriptor someone else closed is not an
 * error).
 *
 * @example
 * ```ts
 * close() { if (this.closed) return; ...; releaseFd(this, this.fd) }
 * ```
 */
export function releaseFd(owner: object, fd: number): void {
  finalizer.unregister(owner)
  closeQuietly(fd)
}
