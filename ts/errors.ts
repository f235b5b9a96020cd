/**
 * Errors, made in one place: system errors from the kernel ({@link IpcError}), argument errors
 * with Node's codes (`ERR_INVALID_ARG_TYPE`, `ERR_OUT_OF_RANGE`, ...), `ERR_INVALID_STATE` for
 * use after `close()`, and {@link AbortError} for cancelled waits.
 *
 * @module
 */

import { release } from 'node:os'

/** The fields a system error carries, as the native layer reports them. */
export interface SystemErrorFields {
  /** Symbolic errno name: `'EACCES'`. */
  code: string
  /** Negative errno, as Node.js reports it: `-13`. */
  errno: number
  /** The failed system call: `'msgget'`. */
  syscall: string
  /** `'EACCES: permission denied, msgget'`. */
  message: string
  /** The file the call was about, if any (as Node's `fs` errors carry it). */
  path?: string
}

/**
 * What a system error names besides `code: description, syscall`, so that it says what to fix
 * (see {@link callNative}).
 */
export interface ErrorDetail {
  /**
   * The file the call was about: the message ends `, syscall '<path>'` and `err.path` is set,
   * as Node's `fs` does (`ENOENT: no such file or directory, ftok '/missing'`).
   */
  path?: string
  /**
   * The size or limit that matters, added in parentheses
   * (`EINVAL: invalid argument, msgsnd (a message of 9000 bytes; msgmax is 8192)`).
   */
  info?: string
}

/**
 * A failed system call, shaped like Node's own system errors: `code`, negative `errno`,
 * `syscall`, and a message such as `EACCES: permission denied, msgget`. Test `code`, never the
 * message.
 *
 * @example
 * ```ts
 * try {
 *   MessageQueue.open(0x1234) // no queue with that key, and no `create`
 * } catch (err) {
 *   if (err instanceof IpcError && err.code === 'ENOENT') console.log('no such queue')
 * }
 * ```
 */
export class IpcError extends Error {
  /** Symbolic errno name: `'EACCES'`. */
  readonly code: string
  /** Negative errno, as Node.js reports it: `-13`. */
  readonly errno: number
  /** The failed system call: `'msgget'`. */
  readonly syscall: string
  /** The file the call was about (`ftok`'s path), when there is one. */
  readonly path?: string

  constructor(fields: SystemErrorFields) {
    if (
      !isSystemErrorFields(fields) ||
      !['string', 'undefined'].includes(typeof fields.message) ||
      !['string', 'undefined'].includes(typeof fields.path)
    ) {
      throw invalidArgType('fields', 'an object with string code, syscall and message and number errno', fields)
    }
    super(fields.message)
    this.name = 'IpcError'
    this.code = fields.code
    this.errno = fields.errno
    this.syscall = fields.syscall
    if (fields.path !== undefined) this.path = fields.path
    Error.captureStackTrace?.(this, IpcError)
  }
}

function isSystemErrorFields(value: unknown): value is SystemErrorFields {
  if (value === null || typeof value !== 'object') return false
  const v = value as Record<string, unknown>
  return typeof v.code === 'string' && typeof v.errno === 'number' && typeof v.syscall === 'string'
}

/**
 * Turns what the native layer threw into an {@link IpcError} (with this call's stack); any
 * other value is returned as it is.
 * @internal
 */
export function fromNative(err: unknown): unknown {
  return isSystemErrorFields(err) && !(err instanceof IpcError) ? new IpcError(err) : err
}

/**
 * The same system error with `detail` added to its message, as Node's `fs` adds the path, as
 * a new {@link IpcError} with the same `code`, `errno` and `syscall`: an {@link ErrorDetail}
 * adds ` 'path'` (and sets `path`) and ` (info)`; a string is added as it is
 * (`EINVAL: invalid argument, mq_open '/jobs' (maxMessages 20 > msg_max 10, ...)`). `err`
 * itself when there is nothing to add or it is not an {@link IpcError}.
 * @internal
 *
 * @example
 * ```ts
 * throw withDetail(err, `'${name}'`)
 * ```
 */
export function withDetail<E>(err: E, detail: ErrorDetail | string | undefined): E | IpcError {
  if (!(err instanceof IpcError) || detail === undefined) return err
  let message = err.message
  let path = err.path
  if (typeof detail === 'string') {
    message += ` ${detail}`
  } else {
    if (detail.path === undefined && detail.info === undefined) return err
    if (detail.path !== undefined) message += ` '${detail.path}'`
    if (detail.info !== undefined) message += ` (${detail.info})`
    path = detail.path ?? err.path
  }
  const e = new IpcError({ code: err.code, errno: err.errno, syscall: err.syscall, message, path })
  if (err.stack !== undefined) e.stack = `${e.name}: ${e.message}${err.stack.slice(err.stack.indexOf('\n'))}`
  return e
}

/**
 * Runs a native call, rethrowing its system errors as {@link IpcError}. `detail`, asked only
 * when the call failed, names what the message should add: the path, size or limit that
 * matters to the caller (see {@link ErrorDetail}).
 *
 * @example
 * ```ts
 * callNative(() => native.ftok(path, id), () => ({ path }))
 * // ENOENT: no such file or directory, ftok '/nonexistent/x'   (err.path === '/nonexistent/x')
 * ```
 * @internal
 */
export function callNative<T>(fn: () => T, detail?: (err: IpcError) => ErrorDetail | undefined): T {
  try {
    return fn()
  } catch (err) {
    let e = fromNative(err)
    if (e instanceof IpcError && detail !== undefined) e = withDetail(e, detail(e))
    // Start the stack at the public method that made the call, not in this helper.
    if (e instanceof IpcError) Error.captureStackTrace?.(e, callNative)
    throw e
  }
}

/** An error with a Node-style `code` property. */
export type CodedError<E extends Error = Error> = E & { code: string }

function coded<E extends Error>(err: E, code: string): CodedError<E> {
  Object.defineProperty(err, 'code', { value: code, enumerable: true, writable: true, configurable: true })
  return err as CodedError<E>
}

/** @internal `TypeError` with code `ERR_INVALID_ARG_TYPE`. */
export function invalidArgType(name: string, expected: string, actual: unknown): CodedError<TypeError> {
  return coded(
    new TypeError(`The "${name}" argument must be ${expected}. Received ${describe(actual)}`),
    'ERR_INVALID_ARG_TYPE',
  )
}

/** @internal `TypeError` with code `ERR_INVALID_ARG_VALUE`. */
export function invalidArgValue(name: string, actual: unknown, reason: string): CodedError<TypeError> {
  return coded(new TypeError(`The argument '${name}' ${reason}. Received ${describe(actual)}`), 'ERR_INVALID_ARG_VALUE')
}

/** @internal `RangeError` with code `ERR_OUT_OF_RANGE`. */
export function outOfRange(name: string, range: string, actual: unknown): CodedError<RangeError> {
  return coded(
    new RangeError(
      `The value of "${name}" is out of range. It must be ${range}. Received ${
        typeof actual === 'number' || typeof actual === 'bigint' ? String(actual) : describe(actual)
      }`,
    ),
    'ERR_OUT_OF_RANGE',
  )
}

/** @internal `Error` with code `ERR_INVALID_STATE`, as Node's `FileHandle` throws after `close()`. */
export function invalidState(message: string): CodedError<Error> {
  return coded(new Error(`Invalid state: ${message}`), 'ERR_INVALID_STATE')
}

/**
 * A wait that was cancelled, through its `AbortSignal` or because its object was closed.
 * Like Node's own `AbortError`: `name` is `'AbortError'`, `code` is `'ABORT_ERR'`, and `cause`
 * holds the signal's reason. A cancelled wait never took anything.
 *
 * @example
 * ```ts
 * const ac = new AbortController()
 * setTimeout(() => ac.abort(), 100)
 * await q.receive({ signal: ac.signal }).catch((err) => {
 *   if (err.name !== 'AbortError') throw err
 * })
 * ```
 */
export class AbortError extends Error {
  readonly code = 'ABORT_ERR'

  constructor(message = 'The operation was aborted', options?: { cause?: unknown }) {
    if (typeof message !== 'string') throw invalidArgType('message', 'of type string', message)
    super(message, options)
    this.name = 'AbortError'
  }
}

/**
 * The answer of a native call that blocked the thread (a `...Sync` wait), checked. A Worker
 * thread that is being terminated (`worker.terminate()`, or `process.exit()` ending every
 * worker) has its wait ended, but Node-API can no longer throw there, so the call answers
 * `undefined`: that is never a result, and an `AbortError` makes sure no caller takes it for
 * one in the moment before the thread stops.
 * @internal
 */
export function answered<T>(value: T | undefined): T {
  if (value === undefined) throw new AbortError('The thread is terminating')
  return value
}

/** Describes a received value as Node's argument errors do. */
function describe(value: unknown): string {
  if (value === null) return 'null'
  if (value === undefined) return 'undefined'
  switch (typeof value) {
    case 'function':
      return `function ${(value as { name?: string }).name || '<anonymous>'}`
    case 'object': {
      const ctor = (value as object).constructor?.name
      return ctor ? `an instance of ${ctor}` : 'an object'
    }
    case 'string': {
      const shown = value.length > 28 ? `${value.slice(0, 25)}...` : value
      return `type string ('${shown}')`
    }
    case 'bigint':
      return `type bigint (${value}n)`
    case 'symbol':
      return `type symbol (${String(value)})`
    default:
      return `type ${typeof value} (${String(value)})`
  }
}

/**
 * @internal `Error` with code `ERR_FEATURE_UNAVAILABLE_ON_PLATFORM`, as Node throws for what
 * this runtime cannot do (e.g. zero-copy shared memory where external buffers are refused).
 */
export function featureUnavailable(message: string): CodedError<Error> {
  return coded(new Error(message), 'ERR_FEATURE_UNAVAILABLE_ON_PLATFORM')
}

/** @internal `TypeError` with code `ERR_UNKNOWN_SIGNAL`, as `process.kill` throws for a bad name. */
export function unknownSignal(signal: unknown): CodedError<TypeError> {
  return coded(new TypeError(`Unknown signal: ${String(signal)}`), 'ERR_UNKNOWN_SIGNAL')
}

/**
 * @internal What a system error says about limits everyone meets, as an
 * {@link ErrorDetail.info}, or `undefined`: `EMFILE` names the open-file limit (`ulimit -n`),
 * `ENOSYS` the platform or kernel that lacks `what` (`'memfd_create'`, which Linux has since
 * `linuxSince`).
 *
 * @example
 * ```ts
 * callNative(() => native.eventfdCreate(0, false), (e) => ({ info: limitDetail(e, 'eventfd', '2.6.22') }))
 * // EMFILE: too many open files, eventfd (this process has reached its open file limit, 64 (RLIMIT_NOFILE, ulimit -n))
 * ```
 */
export function limitDetail(err: IpcError, what: string, linuxSince: string): string | undefined {
  if (err.code === 'EMFILE') {
    const limit = openFileLimit()
    return `this process has reached its open file limit${limit === undefined ? '' : `, ${limit}`} (RLIMIT_NOFILE, ulimit -n)`
  }
  if (err.code === 'ENOSYS') {
    if (process.platform !== 'linux') return `${what} is Linux's; ${platformName()} has none`
    return `${what} needs Linux ${linuxSince} or later; this kernel is ${release()}`
  }
  return undefined
}

/** The platform as people name it: `macOS` for darwin. */
function platformName(): string {
  return process.platform === 'darwin' ? 'macOS' : process.platform
}

/**
 * The soft open-file limit, from Node's diagnostic report (which asks `getrlimit`: at this
 * limit, no file such as /proc/self/limits can be opened to read it).
 */
function openFileLimit(): string | undefined {
  try {
    const report = process.report?.getReport() as { userLimits?: { open_files?: { soft?: unknown } } } | undefined
    const soft = report?.userLimits?.open_files?.soft
    return soft === undefined ? undefined : String(soft)
  } catch {
    return undefined
  }
}
