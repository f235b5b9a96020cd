/**
 * System V IPC keys: {@link ftok} and {@link IPC_PRIVATE}.
 *
 * @module
 */

import { fileURLToPath } from 'node:url'

import { callNative, invalidArgType } from './errors'
import { native } from './native'
import { validateInteger } from './validate'

/**
 * The key that always creates a new, private object, `create` or not.
 *
 * @example
 * ```ts
 * const q = MessageQueue.open(IPC_PRIVATE, { create: true })
 * ```
 */
export const IPC_PRIVATE = 0

/**
 * Builds a System V key from an existing file and a project id (1..255), returning exactly
 * what the C library's `ftok(3)` returns for the same file and id, as an unsigned 32-bit
 * number (as `ipcs` prints it). Processes that agree on a path and an id agree on the key.
 *
 * Throws an `IpcError` from `stat(2)` (`ENOENT`, `EACCES`, ...) with `syscall: 'ftok'`, whose
 * message and `path` name the file, as Node's `fs` errors do.
 *
 * @example
 * ```ts
 * const key = ftok('/var/run/myapp', 1)
 * const q = MessageQueue.open(key, { create: true })
 * ```
 */
export function ftok(path: string | URL, projectId: number): number {
  let p: string
  if (typeof path === 'string') p = path
  else if (path instanceof URL) p = fileURLToPath(path)
  else throw invalidArgType('path', 'of type string or an instance of URL', path)
  validateInteger(projectId, 'projectId', 1, 255)
  return callNative(
    () => native.ftok(p, projectId),
    () => ({ path: p }),
  )
}
