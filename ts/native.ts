/**
 * The native binding, loaded once through the loader napi-rs generates (`binding.js`), which
 * picks the prebuilt `.node` for this platform. When it fails, the error names the platform
 * package that was expected (see `ts/platform.ts`).
 *
 * @internal
 * @module
 */

import { isMainThread } from 'node:worker_threads'

import type * as Binding from '../binding'
import { bindingLoadError } from './platform'

function load(): typeof Binding {
  try {
    return require('../binding') as typeof Binding
  } catch (cause) {
    throw bindingLoadError((require('../package.json') as { version: string }).version, cause)
  }
}

export const native = load()

// A Worker thread blocked in a `...Sync` call must still end when it is terminated (or when
// `process.exit()` ends every worker): its waits ask, every 100 ms, whether to stop.
if (!isMainThread) native.syncWaitsStoppable()
export type { Reactor, SysErrorInfo } from '../binding'
