/**
 * The native binding, loaded once through the loader napi-rs generates (`binding.js`), which
 * picks the prebuilt `.node` for this platform.
 *
 * @internal
 * @module
 */

import * as binding from '../binding'

export const native = binding
export type { Reactor, SysErrorInfo } from '../binding'
