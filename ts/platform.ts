/**
 * Which prebuilt binary this platform needs, and the error users see when it is missing.
 *
 * The published `ipckit` package carries no native code: each supported platform has its own
 * package (`ipckit-linux-x64-gnu`, `ipckit-darwin-arm64`, ...), listed as an optional dependency
 * so npm installs only the one that matches. The loader napi-rs generates (`binding.js`) picks
 * it; when that fails, {@link bindingLoadError} says which package was expected.
 *
 * @internal
 * @module
 */

/**
 * The platform packages, one per target in `package.json`'s `napi.targets`, by the suffix that
 * napi-rs gives them (`ipckit-<suffix>`).
 *
 * @example
 * ```ts
 * import { PLATFORM_PACKAGES } from './platform'
 * console.log(PLATFORM_PACKAGES['linux-arm64-gnu']) // 'aarch64-unknown-linux-gnu'
 * ```
 */
export const PLATFORM_PACKAGES: Readonly<Record<string, string>> = Object.freeze({
  'linux-x64-gnu': 'x86_64-unknown-linux-gnu',
  'linux-arm64-gnu': 'aarch64-unknown-linux-gnu',
  'linux-x64-musl': 'x86_64-unknown-linux-musl',
  'linux-arm64-musl': 'aarch64-unknown-linux-musl',
  'darwin-x64': 'x86_64-apple-darwin',
  'darwin-arm64': 'aarch64-apple-darwin',
})

/** The C library a Linux process runs on: glibc or musl (undefined elsewhere). */
export type Libc = 'gnu' | 'musl' | undefined

/**
 * The C library of this process, as Node's diagnostic report tells it (glibc reports its
 * version; anything else on Linux is taken to be musl).
 *
 * @example
 * ```ts
 * detectLibc() // 'gnu' on Debian, 'musl' on Alpine, undefined on macOS
 * ```
 */
export function detectLibc(): Libc {
  if (process.platform !== 'linux') return undefined
  try {
    const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined
    return report?.header?.glibcVersionRuntime ? 'gnu' : 'musl'
  } catch {
    return 'gnu'
  }
}

/**
 * The platform package suffix for a platform (`'linux-x64-gnu'`), whether or not ipckit ships
 * one: compare with {@link PLATFORM_PACKAGES}.
 *
 * @example
 * ```ts
 * platformSuffix('linux', 'arm64', 'musl') // 'linux-arm64-musl'
 * platformSuffix('darwin', 'x64')          // 'darwin-x64'
 * ```
 */
export function platformSuffix(platform: string, arch: string, libc?: Libc): string {
  return platform === 'linux' ? `${platform}-${arch}-${libc ?? 'gnu'}` : `${platform}-${arch}`
}

/**
 * The error thrown when no native binding loads: it names the package this platform needs (or
 * says that there is none for it) and keeps what the loader reported as `cause`, less what does
 * not apply to ipckit (the loader's WebAssembly fallback).
 *
 * @example
 * ```ts
 * bindingLoadError('0.1.0', new Error('...'), 'linux', 'x64', 'gnu').message
 * // ipckit: the native binding for linux-x64-gnu did not load. It comes from the package
 * // `ipckit-linux-x64-gnu@0.1.0`, an optional dependency of ipckit: ...
 * ```
 */
export function bindingLoadError(
  version: string,
  cause: unknown,
  platform: string = process.platform,
  arch: string = process.arch,
  libc: Libc = detectLibc(),
): Error {
  const suffix = platformSuffix(platform, arch, libc)
  const relevant = relevantCause(cause)
  const supported = Object.keys(PLATFORM_PACKAGES).join(', ')
  const message =
    suffix in PLATFORM_PACKAGES
      ? `ipckit: the native binding for ${suffix} did not load. It comes from the package ` +
        `\`ipckit-${suffix}@${version}\`, an optional dependency of ipckit: install it ` +
        `(\`npm install ipckit-${suffix}@${version}\`), or reinstall without --omit=optional / ` +
        `--no-optional. Loader error: ${describe(relevant)}`
      : `ipckit: there is no prebuilt binary for ${suffix} (no package \`ipckit-${suffix}\`); ` +
        `supported platforms: ${supported}.`
  const error = new Error(message, { cause: relevant }) as Error & { code: string }
  error.code = 'ERR_IPCKIT_NO_BINDING'
  return error
}

/** A loader error that does not apply to ipckit (see {@link relevantCause}). */
const IRRELEVANT = [
  /^Cannot find native binding\b/, // the loader's generic header, with its advice about an npm bug
  /wasm32-wasi|\.wasi\.cjs|\bWASI\b/, // its WebAssembly fallback: ipckit ships no WASI build
]

/**
 * The loader's chain of errors (each error's `cause` is the one before), without those that do
 * not apply to ipckit: the loader's generic header (`Cannot find native binding. npm has a bug
 * ...`) and its WebAssembly fallback (`ipckit-wasm32-wasi`, `./ipckit.wasi.cjs`). The chain is
 * `cause` itself when nothing is dropped; else a new chain of errors with the same messages.
 */
function relevantCause(cause: unknown): unknown {
  const kept: Error[] = []
  let dropped = false
  let e: unknown = cause
  while (e instanceof Error && kept.length < 16) {
    if (IRRELEVANT.some((re) => re.test(e instanceof Error ? e.message : ''))) dropped = true
    else kept.push(e)
    e = e.cause
  }
  if (!dropped) return cause
  return kept.reduceRight<Error | undefined>((next, err) => {
    const copy = new Error(err.message, next === undefined ? undefined : { cause: next }) as Error & { code?: unknown }
    const code = (err as Error & { code?: unknown }).code
    if (code !== undefined) copy.code = code
    return copy
  }, undefined)
}

/** The first line of each error of a chain, joined. */
function describe(cause: unknown): string {
  const lines: string[] = []
  let e: unknown = cause
  while (e instanceof Error && lines.length < 16) {
    lines.push(e.message.split('\n')[0]!)
    e = e.cause
  }
  return lines.join('; ') || String(cause)
}
