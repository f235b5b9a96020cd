/**
 * Argument validation, used by every primitive before any native call: wrong types throw
 * `TypeError` (`ERR_INVALID_ARG_TYPE`), bad ranges `RangeError` (`ERR_OUT_OF_RANGE`).
 *
 * @internal
 * @module
 */

import { invalidArgType, invalidArgValue, outOfRange } from './errors'

/** Largest integer a JavaScript number holds exactly. */
export const MAX_SAFE = Number.MAX_SAFE_INTEGER

/** Throws unless `value` is an integer in [min, max]. */
export function validateInteger(value: unknown, name: string, min: number, max: number): asserts value is number {
  if (typeof value !== 'number') throw invalidArgType(name, 'of type number', value)
  if (!Number.isInteger(value)) throw outOfRange(name, 'an integer', value)
  if (value < min || value > max) throw outOfRange(name, `>= ${min} && <= ${max}`, value)
}

/** Throws unless `value` is a boolean. */
export function validateBoolean(value: unknown, name: string): asserts value is boolean {
  if (typeof value !== 'boolean') throw invalidArgType(name, 'of type boolean', value)
}

/** Throws unless `value` is a string. */
export function validateString(value: unknown, name: string): asserts value is string {
  if (typeof value !== 'string') throw invalidArgType(name, 'of type string', value)
}

/** Throws unless `value` is a function. */
export function validateFunction(value: unknown, name: string): asserts value is (...args: never[]) => unknown {
  if (typeof value !== 'function') throw invalidArgType(name, 'of type function', value)
}

/** Throws unless `value` is one of `allowed`. */
export function validateOneOf<T extends string | number>(
  value: unknown,
  name: string,
  allowed: readonly T[],
): asserts value is T {
  if (!allowed.includes(value as T)) {
    const list = allowed.map((a) => (typeof a === 'string' ? `'${a}'` : String(a))).join(', ')
    if (typeof value !== typeof allowed[0]) throw invalidArgType(name, `one of ${list}`, value)
    throw invalidArgValue(name, value, `must be one of: ${list}`)
  }
}

/**
 * Returns the options object, `{}` for `undefined`; throws for anything that is not a plain
 * object (arrays and functions included).
 */
export function validateOptions<T extends object>(value: T | undefined, name = 'options'): Partial<T> {
  if (value === undefined) return {}
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw invalidArgType(name, 'of type object', value)
  }
  return value
}

/** Throws unless `value` is `undefined` or an `AbortSignal`. */
export function validateAbortSignal(value: unknown, name: string): asserts value is AbortSignal | undefined {
  if (value === undefined) return
  if (value === null || typeof value !== 'object' || !('aborted' in value) || !('addEventListener' in value)) {
    throw invalidArgType(name, 'an instance of AbortSignal', value)
  }
}

/** `value` when given, after checking it is a boolean; `fallback` when `undefined`. */
export function optionalBoolean(value: unknown, name: string, fallback: boolean): boolean {
  if (value === undefined) return fallback
  validateBoolean(value, name)
  return value
}

/** `value` when given, after checking it is an integer in range; `fallback` when `undefined`. */
export function optionalInteger(value: unknown, name: string, min: number, max: number, fallback: number): number {
  if (value === undefined) return fallback
  validateInteger(value, name, min, max)
  return value
}

/**
 * A timeout in milliseconds, the one rule for every `timeoutMs`-like option of the library: a
 * number >= 0, fractions kept (to the microsecond and below, as far as the kernel's clock
 * goes), `Infinity` for no limit; `fallback` when `undefined`. A finite value too large for a
 * deadline (more than 2^53 ms, some 285,000 years) waits without limit, as `Infinity` does.
 * `NaN` and negatives throw `ERR_OUT_OF_RANGE`, anything but a number `ERR_INVALID_ARG_TYPE`.
 */
export function validateTimeout(value: unknown, name: string, fallback = Infinity): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number') throw invalidArgType(name, 'of type number', value)
  if (!(value >= 0)) throw outOfRange(name, '>= 0 (Infinity for no limit)', value)
  return value > MAX_SAFE ? Infinity : value
}

/** Permission bits: an integer in 0..0o777. */
export function validateMode(value: unknown, name: string, fallback: number): number {
  return optionalInteger(value, name, 0, 0o777, fallback)
}

/**
 * A System V key: an integer, signed (-2^31..2^31-1) or unsigned (0..2^32-1), as `key_t`
 * holds it. Returns it as the signed 32-bit value the kernel takes.
 */
export function validateKey(value: unknown, name = 'key'): number {
  validateInteger(value, name, -0x8000_0000, 0xffff_ffff)
  return value | 0
}

/**
 * A payload: Buffer, any TypedArray or DataView, or a string (UTF-8). Returns a `Uint8Array`
 * over the same bytes (no copy) or a new Buffer for a string.
 */
export function toBytes(value: unknown, name: string): Uint8Array {
  if (value instanceof Uint8Array) return value
  if (typeof value === 'string') return Buffer.from(value, 'utf8')
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength)
  throw invalidArgType(name, 'of type string or an instance of Buffer, TypedArray, or DataView', value)
}

/**
 * The name of a POSIX IPC object (message queue, named semaphore, shared memory object), as
 * `mq_overview(7)` and `sem_overview(7)` define it: a string with one leading slash, then 1 to
 * `maxBytes` bytes (UTF-8), none of them a slash or NUL. `/.` and `/..` are refused as well (the
 * kernel refuses them as queue and shared memory names). Throws `ERR_INVALID_ARG_TYPE` or
 * `ERR_INVALID_ARG_VALUE`, before any system call.
 *
 * @example
 * ```ts
 * validatePosixName('/jobs', 'name', 255)
 * ```
 */
export function validatePosixName(value: unknown, name: string, maxBytes: number): string {
  validateString(value, name)
  if (value[0] !== '/') throw invalidArgValue(name, value, 'must start with a slash (/name)')
  const rest = value.slice(1)
  if (rest.length === 0) throw invalidArgValue(name, value, 'must have a name after the slash')
  if (rest.includes('/')) throw invalidArgValue(name, value, 'must have no slash but the leading one')
  if (rest.includes('\0')) throw invalidArgValue(name, value, 'must not contain null bytes')
  if (rest === '.' || rest === '..') throw invalidArgValue(name, value, "must not be '/.' or '/..'")
  const bytes = Buffer.byteLength(rest, 'utf8')
  if (bytes > maxBytes) {
    throw invalidArgValue(name, value, `must be at most ${maxBytes} bytes after the slash (it has ${bytes})`)
  }
  return value
}
