/**
 * Seeing and cleaning System V objects, as `ipcs(1)` and `ipcrm(1)` do: {@link ipcs} lists
 * every message queue, semaphore set and shared memory segment (from `/proc/sysvipc`),
 * {@link ipcrm} removes them (`IPC_RMID`), and {@link limits} reads the kernel's limits.
 *
 * @module
 */

import { IpcError, callNative, fromNative, invalidArgType, invalidArgValue } from './errors'
import { native } from './native'
import type { SysErrorInfo } from './native'
import { secondsToDate } from './sysv'
import { validateInteger, validateKey, validateOneOf, validateOptions } from './validate'

/** The kind of a System V object: message queue, semaphore set, shared memory segment. */
export type IpcType = 'msg' | 'sem' | 'shm'

const TYPES: readonly IpcType[] = ['msg', 'sem', 'shm']
const MAX_ID = 0x7fff_ffff
const SHM_DEST = 0o1000
const SHM_LOCKED = 0o2000

/** What every entry of {@link ipcs} has, whatever its type. */
export interface IpcsEntryBase {
  /** `'msg'`, `'sem'` or `'shm'`. */
  type: IpcType
  /** The key, unsigned (0..0xFFFFFFFF, as `ipcs` prints it in hex); 0 for a private object. */
  key: number
  /** The identifier, as `MessageQueue.fromId` and {@link ipcrm} take it. */
  id: number
  /** Permission bits (0..0o777). */
  mode: number
  /** Owner user id. */
  uid: number
  /** Owner group id. */
  gid: number
  /** Creator user id. */
  cuid: number
  /** Creator group id. */
  cgid: number
  /** Owner user name, `null` when the user database has none for `uid`. */
  owner: string | null
  /** Owner group name, `null` when the group database has none for `gid`. */
  ownerGroup: string | null
  /** Creator user name, `null` when the user database has none for `cuid`. */
  creator: string | null
  /** Creator group name, `null` when the group database has none for `cgid`. */
  creatorGroup: string | null
  /** Time of creation or of the last change of owner or mode (`ctime`). */
  changeTime: Date | null
}

/** A message queue, as {@link ipcs} lists it. */
export interface MessageQueueEntry extends IpcsEntryBase {
  type: 'msg'
  /** Messages in the queue. */
  messages: number
  /** Payload bytes in the queue (`used-bytes` in `ipcs`). */
  bytes: number
  /** Process id of the last `msgsnd`, 0 if none. */
  lastSendPid: number
  /**
   * Id of the last `msgrcv` (`lrpid`), 0 if none: a process id, or a *thread* id when the
   * message went straight to a receiver already blocked in `msgrcv`, as after an async
   * `receive` of ipckit that had to wait (it waits on an ipckit thread); see
   * `MessageQueueStat.lastReceivePid`.
   */
  lastReceivePid: number
  /** Time of the last `msgsnd`, `null` if none. */
  lastSendTime: Date | null
  /** Time of the last `msgrcv`, `null` if none. */
  lastReceiveTime: Date | null
}

/** A semaphore set, as {@link ipcs} lists it. */
export interface SemaphoreSetEntry extends IpcsEntryBase {
  type: 'sem'
  /** Semaphores in the set (`nsems`). */
  count: number
  /** Time of the last `semop`, `null` if none. */
  lastOpTime: Date | null
}

/** A shared memory segment, as {@link ipcs} lists it. */
export interface SharedMemoryEntry extends IpcsEntryBase {
  type: 'shm'
  /** Size in bytes. */
  size: number
  /** Current attachments (`nattch`). */
  attachments: number
  /** Pid of the creator. */
  creatorPid: number
  /** Pid of the last attach or detach, 0 if none. */
  lastPid: number
  /** Time of the last attach, `null` if none. */
  attachTime: Date | null
  /** Time of the last detach, `null` if none. */
  detachTime: Date | null
  /** Resident bytes (0 where the kernel does not say). */
  rss: number
  /** Swapped bytes (0 where the kernel does not say). */
  swap: number
  /** Marked for removal, to go when the last attachment does (`SHM_DEST`, `ipcs` status `dest`). */
  destroyed: boolean
  /** Locked in memory (`SHM_LOCKED`, `ipcs` status `locked`). */
  locked: boolean
}

/**
 * One System V object; `type` tells which fields it has.
 *
 * @example
 * ```ts
 * for (const e of ipcs()) {
 *   if (e.type === 'shm') console.log(e.id, e.size, e.attachments, e.destroyed)
 * }
 * ```
 */
export type IpcsEntry = MessageQueueEntry | SemaphoreSetEntry | SharedMemoryEntry

/** Options of {@link ipcs}. */
export interface IpcsOptions {
  /** Only objects of this type. Default: all, message queues first, as `ipcs` prints them. */
  type?: IpcType
}

type NativeEntry = ReturnType<typeof native.ipcsList>[number]

function toEntry(n: NativeEntry): IpcsEntry {
  const base: IpcsEntryBase = {
    type: n.type as IpcType,
    key: n.key,
    id: n.id,
    mode: n.mode & 0o777,
    uid: n.uid,
    gid: n.gid,
    cuid: n.cuid,
    cgid: n.cgid,
    owner: n.owner ?? null,
    ownerGroup: n.ownerGroup ?? null,
    creator: n.creator ?? null,
    creatorGroup: n.creatorGroup ?? null,
    changeTime: secondsToDate(n.changeTime),
  }
  switch (n.type) {
    case 'msg':
      return {
        ...base,
        type: 'msg',
        messages: n.messages ?? 0,
        bytes: n.bytes ?? 0,
        lastSendPid: n.lastSendPid ?? 0,
        lastReceivePid: n.lastReceivePid ?? 0,
        lastSendTime: secondsToDate(n.lastSendTime),
        lastReceiveTime: secondsToDate(n.lastReceiveTime),
      }
    case 'sem':
      return { ...base, type: 'sem', count: n.count ?? 0, lastOpTime: secondsToDate(n.lastOpTime) }
    default:
      return {
        ...base,
        type: 'shm',
        size: n.size ?? 0,
        attachments: n.attachments ?? 0,
        creatorPid: n.creatorPid ?? 0,
        lastPid: n.lastPid ?? 0,
        attachTime: secondsToDate(n.attachTime),
        detachTime: secondsToDate(n.detachTime),
        rss: n.rss ?? 0,
        swap: n.swap ?? 0,
        destroyed: (n.mode & SHM_DEST) !== 0,
        locked: (n.mode & SHM_LOCKED) !== 0,
      }
  }
}

function optionalType(value: unknown, name: string): IpcType | undefined {
  if (value === undefined) return undefined
  validateOneOf(value, name, TYPES)
  return value
}

/**
 * Every System V object of the caller's IPC namespace, as one flat array, parsed from
 * `/proc/sysvipc` like `ipcs(1)` does. Objects the caller may not read are listed too.
 *
 * Throws an `IpcError` with `code: 'ENOSYS'` (`syscall: 'ipcs'`) where the system has no
 * `/proc/sysvipc` (macOS, a kernel without System V IPC).
 *
 * @example
 * ```ts
 * for (const q of ipcs({ type: 'msg' })) {
 *   if (q.type === 'msg') console.log(q.id, q.owner, q.messages, q.bytes)
 * }
 * ```
 */
export function ipcs(options?: IpcsOptions): IpcsEntry[] {
  const opts = validateOptions(options)
  const type = optionalType(opts.type, 'options.type')
  return callNative(() => native.ipcsList(type)).map(toEntry)
}

/** Removes one object by id; with `key`, only if the object with that id still has that key. */
export interface IpcrmById {
  type: IpcType
  /** The identifier, as {@link ipcs} shows it. */
  id: number
  /**
   * The key the object is expected to have. Ids are reused once an object is gone: with `key`,
   * an id that now belongs to another object is left alone and the call throws `EIDRM`.
   */
  key?: number
}

/** Removes the object that has a key. */
export interface IpcrmByKey {
  type: IpcType
  /** The key (not `IPC_PRIVATE`, 0, which names no object). */
  key: number
}

/** Removes every object (of a type, of an owner). */
export interface IpcrmAll {
  /** Only objects of this type. Default: all types. */
  type?: IpcType
  all: true
  /** Only objects owned by this user (uid or user name). Default: every object. */
  owner?: number | string
}

/** What `ipcrm({ all: true })` did, object by object. */
export interface IpcrmReport {
  /** The objects removed. */
  removed: IpcsEntry[]
  /** The objects that could not be removed, each with the kernel's answer (`EPERM`, `EINVAL`, ...). */
  failed: Array<{ entry: IpcsEntry; error: IpcError }>
}

/**
 * Removes System V objects (`msgctl`/`semctl`/`shmctl` with `IPC_RMID`), as `ipcrm(1)` does:
 *
 * - `{ type, id }` (and optionally the `key` it must still have) removes one object by id and
 *   returns its id; throws `EINVAL` (no such id), `EPERM` (not the owner or creator), `EIDRM`
 *   (the id now belongs to another key).
 * - `{ type, key }` removes the object that has `key` and returns the id it had; throws
 *   `ENOENT` (no such key), `EACCES`, `EPERM`.
 * - `{ all: true, type?, owner? }` removes every matching object, each after re-checking its
 *   key, and returns a report: every failure is listed, none is skipped silently.
 *
 * Removing a queue or semaphore set wakes its waiters with `EIDRM`.
 *
 * @example
 * ```ts
 * ipcrm({ type: 'msg', id: 32768 })
 * ipcrm({ type: 'sem', key: 0x1234 })
 * const { removed, failed } = ipcrm({ all: true, owner: 'build' })
 * ```
 */
export function ipcrm(target: IpcrmById | IpcrmByKey): number
export function ipcrm(target: IpcrmAll): IpcrmReport
export function ipcrm(target: IpcrmById | IpcrmByKey | IpcrmAll): number | IpcrmReport
export function ipcrm(target: IpcrmById | IpcrmByKey | IpcrmAll): number | IpcrmReport {
  if (target === null || typeof target !== 'object' || Array.isArray(target)) {
    throw invalidArgType('target', 'of type object', target)
  }
  const t = target as Partial<IpcrmById & IpcrmByKey & IpcrmAll>
  if (t.all !== undefined) {
    if (t.all !== true) throw invalidArgValue('target.all', t.all, 'must be true')
    if (t.id !== undefined || t.key !== undefined) {
      throw invalidArgValue('target', target, "must not combine 'all' with 'id' or 'key'")
    }
    const type = optionalType(t.type, 'target.type')
    const owner = ownerUid(t.owner)
    const report: IpcrmReport = { removed: [], failed: [] }
    for (const r of callNative(() => native.ipcrmAll(type, owner))) {
      const entry = toEntry(r.entry)
      if (r.error) report.failed.push({ entry, error: fromNative(r.error as SysErrorInfo) as IpcError })
      else report.removed.push(entry)
    }
    return report
  }
  validateOneOf(t.type, 'target.type', TYPES)
  const type = t.type
  if (t.id !== undefined) {
    validateInteger(t.id, 'target.id', 0, MAX_ID)
    const id = t.id
    const key = t.key === undefined ? undefined : validateKey(t.key, 'target.key')
    callNative(() => native.ipcrmId(type, id, key))
    return id
  }
  if (t.key !== undefined) {
    const key = validateKey(t.key, 'target.key')
    return callNative(() => native.ipcrmKey(type, key))
  }
  throw invalidArgValue('target', target, "must have 'id', 'key' or 'all: true'")
}

function ownerUid(owner: unknown): number | undefined {
  if (owner === undefined) return undefined
  if (typeof owner === 'string') {
    const uid = native.userId(owner)
    if (uid === null || uid === undefined) throw invalidArgValue('target.owner', owner, 'is not a known user')
    return uid
  }
  if (typeof owner !== 'number') throw invalidArgType('target.owner', 'of type number or string', owner)
  validateInteger(owner, 'target.owner', 0, 0xffff_ffff)
  return owner
}

/** System V limits of the running kernel (see {@link limits}). */
export interface Limits<N = number> {
  /** Largest message in bytes (`msgmax`). */
  msgmax: N
  /** Default capacity of a new queue in bytes (`msgmnb`). */
  msgmnb: N
  /** Most message queues system wide (`msgmni`). */
  msgmni: N
  /** Largest shared memory segment in bytes (`shmmax`). */
  shmmax: N
  /** Most shared memory system wide, in pages of `pageSize` bytes (`shmall`). */
  shmall: N
  /** Most shared memory segments system wide (`shmmni`). */
  shmmni: N
  /** Smallest shared memory segment in bytes (1). */
  shmmin: N
  /** Most semaphores per set (`semmsl`). */
  semmsl: N
  /** Most semaphores system wide (`semmns`). */
  semmns: N
  /** Most operations per `semop` call (`semopm`). */
  semopm: N
  /** Most semaphore sets system wide (`semmni`). */
  semmni: N
  /** Largest semaphore value (32767). */
  semvmx: N
  /** Bytes per page, the unit of `shmall`. */
  pageSize: N
}

/** Options of {@link limits}. */
export interface LimitsOptions {
  /**
   * Report every limit as a `bigint`, exactly. By default they are numbers, which are exact up
   * to 2^53; Linux's default `shmmax` and `shmall` ("no limit", about 2^64) are not.
   */
  bigint?: boolean
}

/**
 * The System V limits of the running kernel, read from `/proc/sys/kernel` at each call (an
 * administrator may change them; containers have their own), so a caller can check a size
 * before a call fails with `EINVAL` or `ENOSPC`. Throws `ENOSYS` where they cannot be read.
 *
 * @example
 * ```ts
 * if (payload.length > limits().msgmax) throw new Error('message too large for this system')
 * const exact = limits({ bigint: true }).shmmax // 18446744073692774399n
 * ```
 */
export function limits(options?: { bigint?: false }): Limits<number>
export function limits(options: { bigint: true }): Limits<bigint>
export function limits(options?: LimitsOptions): Limits<number> | Limits<bigint>
export function limits(options?: LimitsOptions): Limits<number> | Limits<bigint> {
  const opts = validateOptions(options)
  if (opts.bigint !== undefined && typeof opts.bigint !== 'boolean') {
    throw invalidArgType('options.bigint', 'of type boolean', opts.bigint)
  }
  const raw = { ...callNative(() => native.ipcLimits()), pageSize: String(native.pageSize()) }
  const convert = opts.bigint ? BigInt : Number
  const out: Record<string, number | bigint> = {}
  for (const [name, value] of Object.entries(raw)) out[name] = convert(value)
  return out as unknown as Limits<number> | Limits<bigint>
}
