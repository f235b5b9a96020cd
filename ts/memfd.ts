/**
 * memfd: anonymous shared memory (`memfd_create`) that travels as a file descriptor, with
 * seals (`F_ADD_SEALS`) that let a receiver trust what it maps; the copy API, views and futex
 * wait/notify of {@link MappedMemory}.
 *
 * @module
 */

import { callNative, invalidArgType, invalidArgValue, limitDetail, type ErrorDetail, type IpcError } from './errors'
import { adoptedFd, closeOwnedFd, ownFd } from './fd'
import { native } from './native'
import { MappedMemory } from './shared-memory'
import { validateFd } from './unix-socket'
import { MAX_SAFE, optionalBoolean, validateInteger, validateOptions, validateString } from './validate'

type ShmMapping = ReturnType<typeof native.memfdMap>

/**
 * A seal (`F_SEAL_*`): `'write'` the contents can no longer change; `'shrink'` / `'grow'` the
 * size can no longer go down / up; `'seal'` no seal can be added any more; `'future-write'`
 * no new writes, while writable mappings made before keep writing (so it proves nothing to a
 * receiver). Seals can only be added, never removed.
 */
export type Seal = 'seal' | 'shrink' | 'grow' | 'write' | 'future-write'

/** Every seal, in the order {@link Memfd.seals} lists them. */
const SEALS: readonly Seal[] = ['seal', 'shrink', 'grow', 'write', 'future-write']

/**
 * The seals that make a memfd a snapshot a receiver can trust: its bytes can never change
 * (`'write'`) and no mapping of it can ever fault (`'shrink'`); `'grow'` and `'seal'` keep it
 * exactly as it is. Pass them to {@link Memfd.seal}, and to `requireSeals` of
 * {@link Memfd.fromFd}.
 *
 * @example
 * ```ts
 * memfd.seal(SNAPSHOT_SEALS)
 * const received = Memfd.fromFd(fd, { requireSeals: SNAPSHOT_SEALS })
 * ```
 */
export const SNAPSHOT_SEALS: readonly Seal[] = Object.freeze(['write', 'shrink', 'grow', 'seal'])

/** The longest memfd name, in bytes (the kernel's `NAME_MAX` less its `memfd:` prefix). */
const NAME_MAX = 249

/** Options of {@link Memfd.create}. */
export interface MemfdCreateOptions {
  /** Size in bytes, `>= 1`. */
  size: number
  /**
   * A name for debugging (it shows in `/proc/<pid>/fd` as `/memfd:<name>`; it need not be
   * unique and names nothing anyone can open): at most 249 bytes, no NUL. Default `'ipckit'`.
   */
  name?: string
  /** Allow seals (`MFD_ALLOW_SEALING`, the default); `false` forbids every seal for good. */
  sealing?: boolean
}

/** Options of {@link Memfd.fromFd}. */
export interface MemfdFromFdOptions {
  /**
   * Throw unless the memfd carries these seals (an `ERR_INVALID_ARG_VALUE` naming what is
   * missing; the descriptor stays the caller's then). From a sender you do not trust, ask at
   * least `'shrink'` (else it can make your process fault) and `'write'` (else the bytes can
   * change while you read them): {@link SNAPSHOT_SEALS}.
   */
  requireSeals?: readonly Seal[]
}

function validateSeals(value: unknown, name: string): Seal[] {
  if (!Array.isArray(value)) throw invalidArgType(name, 'an instance of Array', value)
  value.forEach((s, i) => {
    if (!SEALS.includes(s as Seal)) {
      const list = SEALS.map((x) => `'${x}'`).join(', ')
      if (typeof s !== 'string') throw invalidArgType(`${name}[${i}]`, `one of ${list}`, s)
      throw invalidArgValue(`${name}[${i}]`, s, `must be one of: ${list}`)
    }
  })
  return [...new Set(value as Seal[])]
}

/** What matters in an error of this memfd: its size, and the limits everyone meets. */
function sizeDetail(size: number) {
  return (err: IpcError): ErrorDetail => ({ info: sizeInfo(err, size) })
}

function sizeInfo(err: IpcError, size: number): string | undefined {
  const limit = limitDetail(err, 'memfd_create', '3.17')
  if (limit !== undefined) return limit
  if (err.code === 'ENOMEM' || err.code === 'EFBIG') return `${size} bytes`
  if (err.code === 'EPERM' && err.syscall === 'mmap') return 'the memfd is sealed against writing'
  if (err.code === 'EINVAL' && err.syscall === 'mmap') {
    return size === 0
      ? 'an empty memfd (0 bytes) cannot be mapped'
      : `the memfd is smaller than the ${size} bytes it had when opened`
  }
  return undefined
}

/**
 * Anonymous shared memory (`memfd_create`): no name anyone can open, so it reaches another
 * process only as a descriptor, handed to a child (`spawn`'s `stdio`) or sent over a UNIX
 * socket (`SCM_RIGHTS`, the `fds` of {@link UnixSeqpacketSocket.send}); the receiver maps it
 * with {@link Memfd.fromFd}. The memory lives while some descriptor or mapping refers to it.
 *
 * It has the API of {@link SharedMemory} ({@link MappedMemory}): copies, zero-copy views that
 * {@link close} neuters, futex wait/notify on a 32-bit word.
 *
 * Seals make a snapshot a receiver can trust: after `seal(['write', 'shrink', 'grow'])` the
 * kernel refuses every change to the bytes and the size, by anyone, for good, and
 * `Memfd.fromFd(fd, { requireSeals })` checks them on the other side.
 *
 * @example
 * ```ts
 * import { Memfd, SNAPSHOT_SEALS, socketpair } from 'ipckit'
 *
 * const memfd = Memfd.create({ size: 4096, name: 'config' })
 * memfd.write(JSON.stringify(config))
 * memfd.seal(SNAPSHOT_SEALS)                     // read-only for everyone, for good
 * await sock.send('config', { fds: [memfd.fd] })
 *
 * // the receiver
 * const { fds } = await sock.receive()
 * using snapshot = Memfd.fromFd(fds[0], { requireSeals: SNAPSHOT_SEALS })
 * JSON.parse(snapshot.read(0, snapshot.size).toString().replace(/\0+$/, ''))
 * ```
 */
export class Memfd extends MappedMemory {
  /** The descriptor (close-on-exec; owned by this object until {@link close}). */
  readonly fd: number
  /** Whether the descriptor is open for writing (a received one may be read-only). */
  readonly writable: boolean

  private constructor(fd: number, size: number, writable: boolean) {
    super(size, 'Memfd')
    this.fd = fd
    this.writable = writable
    ownFd(this, fd)
  }

  /**
   * Makes a memfd of `size` bytes of zeros (`memfd_create(MFD_CLOEXEC | MFD_ALLOW_SEALING)`,
   * then `ftruncate`). Throws `EMFILE`, `ENOMEM`; `ENOSYS` on macOS, which has no memfd (the
   * message says so).
   *
   * @example
   * ```ts
   * using buf = Memfd.create({ size: 1 << 20, name: 'frames' })
   * ```
   */
  static create(options: MemfdCreateOptions): Memfd {
    const opts = validateOptions(options)
    validateInteger(opts.size, 'options.size', 1, MAX_SAFE)
    const name = opts.name === undefined ? 'ipckit' : opts.name
    validateString(name, 'options.name')
    if (Buffer.byteLength(name) > NAME_MAX) {
      throw invalidArgValue('options.name', name, `must be at most ${NAME_MAX} bytes, not ${Buffer.byteLength(name)}`)
    }
    if (name.includes('\0')) throw invalidArgValue('options.name', name, 'must not contain null bytes')
    const sealing = optionalBoolean(opts.sealing, 'options.sealing', true)
    const size = opts.size
    const fd = callNative(() => native.memfdCreate(name, size, sealing), sizeDetail(size))
    return new Memfd(fd, size, true)
  }

  /**
   * Takes over a memfd descriptor received from elsewhere (a child's `stdio`, the `fds` of a
   * socket message): checks that it is shared memory (a memfd or a POSIX shared memory object,
   * else `EINVAL`), that it carries `requireSeals`, and maps its current size (writes throw
   * `EACCES` through a read-only descriptor, `EPERM` once it is sealed against writing). This
   * object owns the descriptor from then on (when a check fails it stays the caller's).
   *
   * @example
   * ```ts
   * const snapshot = Memfd.fromFd(3, { requireSeals: ['write', 'shrink'] })
   * ```
   */
  static fromFd(fd: number, options?: MemfdFromFdOptions): Memfd {
    validateFd(fd)
    const opts = validateOptions(options)
    const required = opts.requireSeals === undefined ? [] : validateSeals(opts.requireSeals, 'options.requireSeals')
    const info = callNative(
      () => native.memfdInspect(fd),
      (e) => ({ info: limitDetail(e, 'memfd_create', '3.17') }),
    )
    const missing = required.filter((s) => !info.seals.includes(s))
    if (missing.length > 0) {
      throw invalidArgValue(
        'fd',
        fd,
        `lacks the seals ${missing.map((s) => `'${s}'`).join(', ')} (it has ${info.seals.length ? info.seals.map((s) => `'${s}'`).join(', ') : 'none'})`,
      )
    }
    const m = new Memfd(fd, info.size, info.writable)
    adoptedFd(fd)
    return m
  }

  /**
   * @internal `mmap`: writable through the descriptor (the kernel refuses with `EACCES` for a
   * read-only descriptor, `EPERM` once sealed against writing), read-only through a read-only
   * reopen.
   */
  protected map(readonly: boolean): ShmMapping {
    return callNative(() => native.memfdMap(this.fd, this.size, readonly), sizeDetail(this.size))
  }

  /**
   * The seals this memfd carries now (`fcntl(F_GET_SEALS)`). A memfd made with
   * `sealing: false`, and a POSIX shared memory object, report `['seal']`.
   *
   * @example
   * ```ts
   * if (!memfd.seals().includes('write')) throw new Error('not a snapshot')
   * ```
   */
  seals(): Seal[] {
    this.checkOpen()
    return callNative(() => native.memfdSeals(this.fd) as Seal[])
  }

  /**
   * Adds seals (`fcntl(F_ADD_SEALS)`), for every process and for good.
   *
   * `'write'` needs every writable shared mapping of the memfd gone, in every process: this
   * object first unmaps the one its copy API uses (the next copy maps read-only), but views
   * from {@link MappedMemory.attach} that are still attached read-write, a pending
   * {@link MappedMemory.wait}, or another process's writable mapping make the kernel refuse
   * with `EBUSY` (the message counts this process's views). Read-only views do not stand in
   * the way. Throws `EPERM` when the memfd carries `'seal'` or was made with `sealing: false`.
   *
   * @example
   * ```ts
   * memfd.write(payload)
   * memfd.seal(['write', 'shrink', 'grow'])
   * memfd.write('x')                          // throws EPERM now
   * ```
   */
  seal(seals: readonly Seal[]): void {
    const list = validateSeals(seals, 'seals')
    this.checkOpen()
    const held = list.includes('write') ? this.unmapCopies() : undefined
    callNative(
      () => native.memfdAddSeals(this.fd, list),
      (e) => {
        if (e.code !== 'EBUSY' || held === undefined) return undefined
        return {
          info: `F_SEAL_WRITE needs every writable shared mapping gone: this Memfd has ${held.writable} writable view(s) attached; a pending wait(), or another process, may hold one too`,
        }
      },
    )
  }

  /**
   * Closes the descriptor: views are detached (their typed arrays get length 0), pending waits
   * end with an `AbortError`, and later calls throw `ERR_INVALID_STATE`. The memory goes away
   * once no other descriptor or mapping refers to it. Calling it again does nothing.
   */
  override close(): void {
    if (this.closed) return
    super.close()
    closeOwnedFd(this, this.fd)
  }
}
