/**
 * POSIX shared memory: `shm_open`, `ftruncate`, `mmap`, `shm_unlink`, with the copy API, views
 * and futex wait/notify of {@link MappedMemory}.
 *
 * @module
 */

import { callNative, invalidArgValue, limitDetail, type ErrorDetail, type IpcError } from './errors'
import { closeOwnedFd, ownFd } from './fd'
import { native } from './native'
import { MappedMemory } from './shared-memory'
import {
  MAX_SAFE,
  optionalBoolean,
  optionalInteger,
  validateInteger,
  validateMode,
  validateOptions,
  validatePosixName,
} from './validate'

type ShmMapping = ReturnType<typeof native.posixShmMap>

/** Options of {@link PosixSharedMemory.open}. */
export interface PosixSharedMemoryOpenOptions {
  /**
   * Size in bytes of an object this call creates: required (`>= 1`) with `create` or
   * `exclusive`. Opening an existing object, a larger size fails with `EINVAL`; `0` (the
   * default) accepts any size. {@link PosixSharedMemory.size} reports the real size.
   */
  size?: number
  /** Create the object if the name has none (`O_CREAT`). Default `false`. */
  create?: boolean
  /** Fail with `EEXIST` if the name has an object already (`O_CREAT | O_EXCL`); implies `create`. */
  exclusive?: boolean
  /**
   * Open for reading only (`O_RDONLY`; read permission is enough). Writes then throw `EACCES`,
   * and views must be `{ readonly: true }`. Cannot be combined with `create`. Default `false`.
   */
  readonly?: boolean
  /** Permission bits of a created object, set exactly (the umask does not apply). Default `0o600`. */
  mode?: number
}

/** An object's size, mode and owner (`fstat`). */
export interface PosixSharedMemoryStat {
  /** Size in bytes now (another process may have changed it since this handle was opened). */
  size: number
  /** Permission bits. */
  mode: number
  /** Owner user id. */
  uid: number
  /** Owner group id. */
  gid: number
}

const NAME_MAX = native.posixShmNameMax()
/** macOS counts the whole name, slash included (`PSHMNAMLEN`); Linux the bytes after it. */
const WHOLE_NAME = process.platform === 'darwin'

function validateName(name: unknown): string {
  return validatePosixName(name, 'name', WHOLE_NAME ? NAME_MAX - 1 : NAME_MAX)
}

/** The object's name as the error's path (Node's `fs` quotes a path so), and the size or limit that was in the way. */
function nameDetail(name: string, size: number | undefined) {
  return (err: IpcError): ErrorDetail => {
    const limit = limitDetail(err, 'shm_open', '2.6')
    if (limit !== undefined) return { path: name, info: limit }
    if (size === undefined || !['ENOSPC', 'EFBIG', 'ENOMEM', 'EINVAL'].includes(err.code)) return { path: name }
    if (err.syscall === 'shm_open' && err.code === 'EINVAL')
      return { path: name, info: `smaller than options.size, ${size} bytes` }
    if (err.syscall === 'mmap' && err.code === 'EINVAL') {
      return {
        path: name,
        info:
          size === 0
            ? 'an empty object (0 bytes) cannot be mapped'
            : `the object is smaller than the ${size} bytes it had when opened`,
      }
    }
    return { path: name, info: `${size} bytes` }
  }
}

/**
 * A POSIX shared memory object (`shm_open`): memory with a name of the form `/my-app`, shared
 * by every process that opens the name (C with `shm_open`, Python's `posix_ipc`, another Node
 * process). On Linux it is a file of `/dev/shm`.
 *
 * It has the API of {@link SharedMemory} ({@link MappedMemory}): the copy API works in every
 * runtime, {@link MappedMemory.attach} gives zero-copy views that {@link close} neuters, and
 * {@link MappedMemory.wait} / {@link MappedMemory.notify} block on and wake a 32-bit word
 * across processes (futex). The name stays until {@link remove} (`shm_unlink`); the memory
 * lives until the last process has closed and unmapped it.
 *
 * A process that may write the object can also shrink it (`ftruncate`) under everyone's
 * mappings, and touching the pages past the new end then kills the process with `SIGBUS`, as
 * it would a C program. Share it only with processes you trust that far; for data from
 * processes you do not, receive a sealed {@link Memfd}.
 *
 * @example
 * ```ts
 * import { PosixSharedMemory } from 'ipckit'
 *
 * using shm = PosixSharedMemory.open('/my-app', { size: 4096, create: true })
 * shm.write('hello', 0)
 * shm.read(0, 5).toString()                 // 'hello', in every process that opens '/my-app'
 * Atomics.add(new Int32Array(shm.attach().buffer), 1, 1)
 * shm.remove()                              // shm_unlink: the name is gone, the memory stays mapped
 * ```
 */
export class PosixSharedMemory extends MappedMemory {
  /** The name, as given (`'/my-app'`). */
  readonly name: string
  /** The descriptor (close-on-exec; owned by this object until {@link close}). */
  readonly fd: number
  /** Whether the object was opened for reading only. */
  readonly readonly: boolean
  /** Whether this handle's `open` created the object. */
  readonly created: boolean
  #removed = false

  private constructor(name: string, fd: number, size: number, readonly: boolean, created: boolean) {
    super(size, 'PosixSharedMemory')
    this.name = name
    this.fd = fd
    this.readonly = readonly
    this.created = created
    ownFd(this, fd)
  }

  /**
   * Opens the object `name` (`shm_open`), creating it with `create`: a new object gets exactly
   * `mode` and `size` bytes of zeros, which on Linux are reserved at once (`fallocate`), so a
   * `/dev/shm` too small fails here with `ENOSPC` instead of killing a process with `SIGBUS`
   * later. The name must be `/` and then 1 to 255 bytes (`NAME_MAX`; 31 in all on macOS) with
   * no other `/`: anything else throws `ERR_INVALID_ARG_VALUE` before any system call.
   *
   * Throws `ENOENT` (no object, no `create`), `EEXIST` (`exclusive`), `EINVAL` (an existing
   * object smaller than `size`), `EACCES`, `ENOSPC`, `EFBIG`, `EMFILE`; their messages name the
   * object, and the size or limit that was in the way.
   *
   * @example
   * ```ts
   * const shm = PosixSharedMemory.open('/frames', { size: 1 << 20, create: true, mode: 0o660 })
   * const viewer = PosixSharedMemory.open('/frames', { readonly: true })   // in another process
   * ```
   */
  static open(name: string, options?: PosixSharedMemoryOpenOptions): PosixSharedMemory {
    const n = validateName(name)
    const opts = validateOptions(options)
    const create = optionalBoolean(opts.create, 'options.create', false)
    const exclusive = optionalBoolean(opts.exclusive, 'options.exclusive', false)
    const readonly = optionalBoolean(opts.readonly, 'options.readonly', false)
    let size = 0
    if (create || exclusive) {
      validateInteger(opts.size, 'options.size', 1, MAX_SAFE)
      size = opts.size
    } else {
      size = optionalInteger(opts.size, 'options.size', 0, MAX_SAFE, 0)
    }
    const mode = validateMode(opts.mode, 'options.mode', 0o600)
    if (readonly && (create || exclusive)) {
      throw invalidArgValue(
        'options.readonly',
        readonly,
        'cannot be combined with create or exclusive (a new object is sized through a read-write descriptor)',
      )
    }
    const opened = callNative(
      () => native.posixShmOpen(n, size, create, exclusive, readonly, mode),
      nameDetail(n, size),
    )
    return new PosixSharedMemory(n, opened.fd, opened.size, readonly, opened.created)
  }

  /**
   * Removes the name `name` (`shm_unlink`) whoever made the object: for cleaning up after a
   * process that is gone. Prefer {@link remove} on an open handle, which removes only the
   * object it has open. Throws `ENOENT` when there is no such name, `EACCES`.
   *
   * @example
   * ```ts
   * try { PosixSharedMemory.unlink('/my-app') } catch (err) { if (err.code !== 'ENOENT') throw err }
   * ```
   */
  static unlink(name: string): void {
    const n = validateName(name)
    callNative(() => native.posixShmUnlink(n, null), nameDetail(n, undefined))
  }

  /** @internal `mmap` of the whole object; read-only when asked, writable needs a read-write open. */
  protected map(readonly: boolean): ShmMapping {
    return callNative(() => native.posixShmMap(this.fd, this.size, readonly), nameDetail(this.name, this.size))
  }

  /**
   * The object's size, mode and owner now (`fstat`).
   *
   * @example
   * ```ts
   * const { size, mode, uid } = shm.stat()
   * ```
   */
  stat(): PosixSharedMemoryStat {
    this.checkOpen()
    return callNative(() => native.posixShmStat(this.fd), nameDetail(this.name, undefined))
  }

  /**
   * Removes the name (`shm_unlink`): later opens no longer find it, and the memory goes away
   * once every process has closed and unmapped it; this handle and its views keep working.
   * Only the object this handle has open is removed: if its name now belongs to another
   * object (removed and made again by someone else), that one stays and `ENOENT` is thrown.
   * Calling it again does nothing.
   *
   * @example
   * ```ts
   * shm.remove()
   * shm.remove()   // nothing more
   * ```
   */
  remove(): void {
    if (this.#removed) return
    this.checkOpen()
    callNative(() => native.posixShmUnlink(this.name, this.fd), nameDetail(this.name, undefined))
    this.#removed = true
  }

  /**
   * Closes the handle: views are detached, pending waits end with an `AbortError`, the
   * descriptor is closed, and later calls throw `ERR_INVALID_STATE`. The object stays (see
   * {@link remove}). Calling it again does nothing.
   */
  override close(): void {
    if (this.closed) return
    super.close()
    closeOwnedFd(this, this.fd)
  }
}
