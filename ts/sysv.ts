/**
 * Pieces shared by the System V primitives (message queues, semaphore sets, shared memory, and
 * the `ipcs` listing): the owner and mode changes of `IPC_SET`, the owner fields of `IPC_STAT`,
 * and the kernel's times.
 *
 * @internal
 * @module
 */

import type { SemStatJs } from '../binding'
import { optionalInteger, validateMode } from './validate'

/** The largest uid/gid `IPC_SET` accepts: `(uid_t)-1` means "no change" to the kernel. */
const MAX_ID = 0xffff_fffe

/** What every `IPC_SET` may change; fields left out stay as they are. */
export interface OwnerChanges {
  mode: number | undefined
  uid: number | undefined
  gid: number | undefined
}

/**
 * Validates the `mode`, `uid` and `gid` of an `update(changes)` call (already checked to be an
 * options object), as `changes.mode` etc. in error messages.
 *
 * @example
 * ```ts
 * const { mode, uid, gid } = ownerChanges(validateOptions(changes, 'changes'))
 * ```
 */
export function ownerChanges(c: { mode?: unknown; uid?: unknown; gid?: unknown }): OwnerChanges {
  return {
    mode: c.mode === undefined ? undefined : validateMode(c.mode, 'changes.mode', 0),
    uid: c.uid === undefined ? undefined : optionalInteger(c.uid, 'changes.uid', 0, MAX_ID, 0),
    gid: c.gid === undefined ? undefined : optionalInteger(c.gid, 'changes.gid', 0, MAX_ID, 0),
  }
}

/**
 * A kernel time (seconds since the epoch) as a `Date`; `null` for 0, which the kernel uses for
 * "never" (no send yet, no attach yet, ...).
 *
 * @example
 * ```ts
 * secondsToDate(0)          // null
 * secondsToDate(1.7e9)      // 2023-11-14T22:13:20.000Z
 * ```
 */
export function secondsToDate(seconds: number | null | undefined): Date | null {
  return seconds ? new Date(seconds * 1000) : null
}

/** What every native `IPC_STAT` answer has: the change time and `struct ipc_perm`'s fields. */
type NativeOwnerStat = Pick<SemStatJs, 'changeTime' | 'perm'>

/**
 * The change time, owner, creator and mode of a native `IPC_STAT` answer (the last fields of
 * `MessageQueueStat`, `SemaphoreSetStat` and `SharedMemoryStat`), in the order every
 * `stat()` result lists them (last: spread it after the object's own fields).
 *
 * @example
 * ```ts
 * return { key: s.perm.key, count: s.count, lastOpTime: secondsToDate(s.lastOpTime), ...ownerStat(s) }
 * ```
 */
export function ownerStat(s: NativeOwnerStat) {
  return {
    changeTime: new Date(s.changeTime * 1000),
    uid: s.perm.uid,
    gid: s.perm.gid,
    cuid: s.perm.cuid,
    cgid: s.perm.cgid,
    mode: s.perm.mode,
  }
}
