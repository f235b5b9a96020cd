/**
 * The published package, as a user gets it: `scripts/pack.js` packs the main package and this
 * platform's binary package, both tarballs are installed offline into an empty folder, and the
 * installed package is used from CommonJS, ESM and TypeScript (tsx, and tsc for the types).
 */

import test from 'ava'
import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'

import { PLATFORM_PACKAGES, bindingLoadError, detectLibc, platformSuffix } from '../ts/platform'
import { ROOT, linuxOnly, tempDir } from './helpers'

const run = promisify(execFile)
const rootPkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'))
const SUFFIX = platformSuffix(process.platform, process.arch, detectLibc())
const NATIVE = join(ROOT, `${rootPkg.napi.binaryName}.${SUFFIX}.node`)
const TSX_CLI = join(ROOT, 'node_modules', 'tsx', 'dist', 'cli.mjs')
const TSC = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc')

/** napi-rs's platform suffix for a Rust target triple, as `napi create-npm-dirs` names `npm/<suffix>`. */
function suffixOfTriple(triple: string): string {
  const [cpu, , os, abi] = triple.split('-')
  const arch = cpu === 'x86_64' ? 'x64' : cpu === 'aarch64' ? 'arm64' : cpu!
  return os === 'darwin' ? `darwin-${arch}` : `${os}-${arch}-${abi}`
}

/** Runs a program; on failure the error carries its output. */
async function sh(file: string, args: string[], cwd: string, timeout = 120_000) {
  try {
    return await run(file, args, { cwd, timeout, encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } })
  } catch (err) {
    const e = err as Error & { stdout?: string; stderr?: string }
    throw new Error(`${file} ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`)
  }
}

/** npm install of local tarballs with no registry reachable: nothing may come from the network. */
const npmInstallOffline = (cwd: string, tarballs: string[]) =>
  sh('npm', ['install', '--offline', '--registry', 'http://127.0.0.1:9/', '--no-audit', '--no-fund', ...tarballs], cwd)

function emptyProject(t: { teardown(fn: () => void): void }, name: string) {
  const dir = tempDir(`ipckit-${name}-`)
  t.teardown(() => dir.remove())
  writeFileSync(join(dir.path, 'package.json'), JSON.stringify({ name: `smoke-${name}`, private: true }))
  return dir.path
}

/** When the build outputs `npm run package` packs were last written (ms). */
const builtAt = () => ({ dist: statSync(join(ROOT, 'dist', 'index.js')).mtimeMs, native: statSync(NATIVE).mtimeMs })

/**
 * Tarballs of the main package and of this platform's package, packed once for the file by
 * `npm run package` as a maintainer runs it, with the build outputs' times before and after.
 */
const packed = (async () => {
  const out = tempDir('ipckit-packs-')
  const before = builtAt()
  const { stdout } = await sh('npm', ['run', 'package', '--', '--out', out.path, '--only', SUFFIX], ROOT)
  const after = builtAt()
  const result = JSON.parse(stdout.trim().split('\n').pop()!) as { main: string; platforms: Record<string, string> }
  return { ...result, before, after, remove: out.remove }
})()
packed.catch(() => {})
test.after.always(async () => (await packed.catch(() => null))?.remove())

/** The messages of an error's causes, outermost first. */
function causes(e: Error): string[] {
  const out: string[] = []
  for (let c = e.cause; c instanceof Error; c = c.cause) out.push(c.message)
  return out
}

async function listTarball(file: string): Promise<string[]> {
  const { stdout } = await sh('tar', ['-tzf', file], ROOT)
  return stdout.trim().split('\n').sort()
}

test('npm/ has one package per napi target, named and constrained as the loader expects', (t) => {
  const targets: string[] = rootPkg.napi.targets
  const dirs = readdirSync(join(ROOT, 'npm')).sort()
  t.deepEqual(dirs, targets.map(suffixOfTriple).sort())
  t.deepEqual(Object.keys(PLATFORM_PACKAGES).sort(), dirs)
  for (const triple of targets) {
    const suffix = suffixOfTriple(triple)
    t.is(PLATFORM_PACKAGES[suffix], triple)
    const sub = JSON.parse(readFileSync(join(ROOT, 'npm', suffix, 'package.json'), 'utf8'))
    t.is(sub.name, `${rootPkg.name}-${suffix}`)
    t.is(sub.version, rootPkg.version, `${suffix} is versioned with the main package`)
    t.is(sub.main, `${rootPkg.napi.binaryName}.${suffix}.node`)
    t.deepEqual(sub.files, [sub.main])
    t.deepEqual(sub.os, [suffix.split('-')[0]])
    t.deepEqual(sub.cpu, [suffix.split('-')[1]])
    if (suffix.startsWith('linux-')) t.deepEqual(sub.libc, [suffix.endsWith('-musl') ? 'musl' : 'glibc'])
  }
})

test("every file that carries the version holds package.json's (scripts/version.js)", (t) => {
  const { places } = require('../scripts/version.js') as { places(): Array<[string, string | null]> }
  const found = places()
  const where = found.map(([w]) => w)
  for (const needed of [
    'package.json',
    'package-lock.json',
    'Cargo.toml [workspace.package]',
    'Cargo.lock ipckit',
    'Cargo.lock ipckit-node',
  ]) {
    t.true(where.includes(needed), `${needed} is checked`)
  }
  for (const dir of readdirSync(join(ROOT, 'npm')))
    t.true(where.includes(`npm/${dir}/package.json`), `npm/${dir} is checked`)
  for (const [w, version] of found) t.is(version, rootPkg.version, w)
})

test('scripts/version.js sets one version everywhere, and its check names a file left behind', async (t) => {
  const dir = tempDir('ipckit-version-')
  t.teardown(() => dir.remove())
  mkdirSync(join(dir.path, 'scripts'))
  for (const f of ['package.json', 'package-lock.json', 'Cargo.toml', 'Cargo.lock', 'scripts/version.js']) {
    writeFileSync(join(dir.path, f), readFileSync(join(ROOT, f)))
  }
  for (const d of readdirSync(join(ROOT, 'npm'))) {
    mkdirSync(join(dir.path, 'npm', d), { recursive: true })
    writeFileSync(join(dir.path, 'npm', d, 'package.json'), readFileSync(join(ROOT, 'npm', d, 'package.json')))
  }
  symlinkSync(join(ROOT, 'node_modules'), join(dir.path, 'node_modules'))
  const script = join(dir.path, 'scripts', 'version.js')
  const next = '9.8.7-test.1'
  await sh(process.execPath, [script, next], dir.path)
  const { places } = require(script) as { places(): Array<[string, string | null]> }
  for (const [w, version] of places()) t.is(version, next, w)
  t.regex(readFileSync(join(dir.path, 'Cargo.toml'), 'utf8'), /\nversion = "9\.8\.7-test\.1"\n/)
  // One file edited by hand: the check fails and names it.
  const sub = join(dir.path, 'npm', 'linux-x64-gnu', 'package.json')
  writeFileSync(sub, readFileSync(sub, 'utf8').replace(next, '9.8.6'))
  const err = await t.throwsAsync(sh(process.execPath, [script], dir.path))
  t.regex(err?.message ?? '', /npm\/linux-x64-gnu\/package\.json: 9\.8\.6, not 9\.8\.7-test\.1/)
})

test('the main tarball holds the compiled JS, ESM entry, types and loader, and no sources', async (t) => {
  const { main } = await packed
  const files = await listTarball(main)
  for (const needed of [
    'dist/index.js',
    'dist/index.mjs',
    'dist/index.d.ts',
    'dist/native.js',
    'binding.js',
    'binding.d.ts',
    'package.json',
    'README.md',
    'LICENSE',
  ]) {
    t.true(files.includes(`package/${needed}`), `${needed} is packed`)
  }
  const unwanted = files.filter((f) => /\.(ts|rs|node|map)$/.test(f) && !f.endsWith('.d.ts'))
  t.deepEqual(unwanted, [], 'no sources, tests, binaries or source maps')
  t.false(files.some((f) => /^package\/(ts|crates|__test__|scripts|npm|target)\//.test(f)))

  const { stdout } = await sh('tar', ['-xzOf', main, 'package/package.json'], ROOT)
  const manifest = JSON.parse(stdout)
  t.deepEqual(
    manifest.optionalDependencies,
    Object.fromEntries(Object.keys(PLATFORM_PACKAGES).map((s) => [`ipckit-${s}`, rootPkg.version])),
  )
  t.is(manifest.scripts, undefined, 'no install scripts, no dev scripts')
  t.is(manifest.devDependencies, undefined)
  t.is(manifest.dependencies, undefined, 'no runtime dependencies beyond the platform binary')
  t.deepEqual(manifest.exports, rootPkg.exports)
})

test('the platform tarball holds only the binary, its manifest, README and LICENSE', async (t) => {
  t.true(existsSync(NATIVE), `${NATIVE} is built (npm run build)`)
  const { platforms } = await packed
  t.true(platforms[SUFFIX] !== undefined && existsSync(platforms[SUFFIX]), `a package for ${SUFFIX} was packed`)
  t.deepEqual(
    await listTarball(platforms[SUFFIX]!),
    [
      `package/${rootPkg.napi.binaryName}.${SUFFIX}.node`,
      'package/LICENSE',
      'package/README.md',
      'package/package.json',
    ].sort(),
  )
  // The binary packed is the one built here, byte for byte.
  const { stdout } = await run(
    'tar',
    ['-xzOf', platforms[SUFFIX]!, `package/${rootPkg.napi.binaryName}.${SUFFIX}.node`],
    {
      encoding: 'buffer',
      maxBuffer: 256 << 20,
    },
  )
  t.true(Buffer.compare(stdout, readFileSync(NATIVE)) === 0, 'the packed binary is the built one')
})

test('every tarball carries the MIT LICENSE of the repository', async (t) => {
  const license = readFileSync(join(ROOT, 'LICENSE'), 'utf8')
  t.regex(license, /^MIT License\n\nCopyright \(c\) \d{4} /)
  t.is(rootPkg.license, 'MIT')
  const { main, platforms } = await packed
  for (const tarball of [main, platforms[SUFFIX]!]) {
    const { stdout } = await sh('tar', ['-xzOf', tarball, 'package/LICENSE'], ROOT)
    t.is(stdout, license, tarball)
    const manifest = JSON.parse((await sh('tar', ['-xzOf', tarball, 'package/package.json'], ROOT)).stdout)
    t.is(manifest.license, 'MIT', `${tarball}: package.json says MIT`)
  }
})

test('npm run package packs what is built and rebuilds nothing', async (t) => {
  const { main, before, after } = await packed
  t.deepEqual(after, before, 'neither dist/ nor the binary was written by npm run package')
  const { stdout } = await sh('tar', ['-xzOf', main, 'package/dist/index.js'], ROOT)
  t.is(stdout, readFileSync(join(ROOT, 'dist', 'index.js'), 'utf8'), 'the packed dist/index.js is the built one')
})

test('a plain npm pack of the repository root refuses, pointing at npm run package, and makes no tarball', async (t) => {
  const dest = tempDir('ipckit-plain-pack-')
  t.teardown(dest.remove)
  const failed = await t.throwsAsync(sh('npm', ['pack', '--pack-destination', dest.path], ROOT))
  t.regex(failed!.message, /Run `npm run package` instead/)
  t.deepEqual(readdirSync(dest.path), [], 'no tarball')
  // The same refusal for npm publish (which packs first), without publishing anything: --dry-run.
  const publish = await t.throwsAsync(sh('npm', ['publish', '--dry-run', '--registry', 'http://127.0.0.1:9/'], ROOT))
  t.regex(publish!.message, /Run `npm run package` instead/)
})

test('installed from its tarballs, ipckit works from CommonJS, ESM and TypeScript', async (t) => {
  const { main, platforms } = await packed
  const dir = emptyProject(t, 'install')
  await npmInstallOffline(dir, [main, platforms[SUFFIX]!])
  t.true(existsSync(join(dir, 'node_modules', 'ipckit', 'dist', 'index.js')))
  t.true(existsSync(join(dir, 'node_modules', `ipckit-${SUFFIX}`, `ipckit.${SUFFIX}.node`)))

  // Each program does a real message queue round trip through the installed package.
  writeFileSync(
    join(dir, 'smoke.cjs'),
    `const { MessageQueue, IpcError } = require('ipckit')
const q = MessageQueue.create()
try {
  q.sendSync('from cjs', { type: 3 })
  const m = q.receiveSync()
  let code
  try { q.receiveSync({ wait: false }) } catch (e) { code = e instanceof IpcError && e.code }
  console.log(JSON.stringify({ type: m.type, text: m.data.toString(), code, file: require.resolve('ipckit') }))
} finally { q.remove() }
`,
  )
  writeFileSync(
    join(dir, 'smoke.mjs'),
    `import ipckit, { MessageQueue } from 'ipckit'
import { createRequire } from 'node:module'
const q = MessageQueue.create()
try {
  await q.send('from esm', { type: 4 })
  const m = await q.receive()
  const same = createRequire(import.meta.url)('ipckit').MessageQueue === MessageQueue && ipckit.MessageQueue === MessageQueue
  console.log(JSON.stringify({ type: m.type, text: m.data.toString(), same, file: import.meta.resolve('ipckit') }))
} finally { q.remove() }
`,
  )
  writeFileSync(
    join(dir, 'smoke.ts'),
    `import { MessageQueue, type Message } from 'ipckit'
async function main(): Promise<void> {
  using q = MessageQueue.create()
  try {
    await q.send(Buffer.from('from ts'), { type: 5 })
    const m: Message = await q.receive({ type: 5 })
    console.log(JSON.stringify({ type: m.type, text: m.data.toString() }))
  } finally { q.remove() }
}
main()
`,
  )
  const cjs = JSON.parse((await sh(process.execPath, ['smoke.cjs'], dir)).stdout)
  t.like(cjs, { type: 3, text: 'from cjs', code: 'ENOMSG' })
  t.is(cjs.file, join(dir, 'node_modules', 'ipckit', 'dist', 'index.js'), 'the installed package, not the repo')
  const esm = JSON.parse((await sh(process.execPath, ['smoke.mjs'], dir)).stdout)
  t.like(esm, { type: 4, text: 'from esm', same: true })
  t.true(esm.file.endsWith('/node_modules/ipckit/dist/index.mjs'))
  t.deepEqual(JSON.parse((await sh(process.execPath, [TSX_CLI, 'smoke.ts'], dir)).stdout), { type: 5, text: 'from ts' })

  // The types resolve from the installed package, for CommonJS and ESM TypeScript alike: a
  // misuse must be a type error (it would pass silently if the types were `any`).
  const body = `const q: MessageQueue = MessageQueue.create()
const id: number = q.id
const p: Promise<Message> = q.receive({ type: -3 })
// @ts-expect-error: type must be a number
q.sendSync('x', { type: 'one' })
export { id, p }
`
  mkdirSync(join(dir, 'types'))
  writeFileSync(join(dir, 'types', 'check-cjs.cts'), `import { MessageQueue, type Message } from 'ipckit'\n${body}`)
  writeFileSync(join(dir, 'types', 'check-esm.mts'), `import { MessageQueue, type Message } from 'ipckit'\n${body}`)
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        noEmit: true,
        module: 'nodenext',
        moduleResolution: 'nodenext',
        target: 'ES2022',
        lib: ['ES2022', 'ESNext.Disposable'],
        types: ['node'],
        typeRoots: [join(ROOT, 'node_modules', '@types')],
      },
      include: ['types'],
    }),
  )
  await t.notThrowsAsync(sh(process.execPath, [TSC, '-p', 'tsconfig.json'], dir))
  writeFileSync(
    join(dir, 'types', 'wrong.mts'),
    `import { MessageQueue } from 'ipckit'\nconst n: string = MessageQueue.create().id\nexport { n }\n`,
  )
  const failed = await t.throwsAsync(sh(process.execPath, [TSC, '-p', 'tsconfig.json'], dir))
  t.regex(failed!.message, /wrong\.mts.*TS2322/)
})

test('without its platform package, loading names the package to install', async (t) => {
  const { main } = await packed
  const dir = emptyProject(t, 'missing')
  await npmInstallOffline(dir, [main])
  const script = `try { require('ipckit'); console.log('loaded') } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message, inspected: require('node:util').inspect(e) })) }`
  const out = JSON.parse((await sh(process.execPath, ['-e', script], dir)).stdout)
  t.is(out.code, 'ERR_IPCKIT_NO_BINDING')
  t.true(out.message.includes(`ipckit-${SUFFIX}@${rootPkg.version}`), out.message)
  // What the loader tried for this platform, and nothing else: no WebAssembly fallback (there is
  // no ipckit-wasm32-wasi), no generic advice of the loader's.
  t.true(
    out.message.endsWith(
      `Loader error: Cannot find module 'ipckit-${SUFFIX}'; Cannot find module './ipckit.${SUFFIX}.node'`,
    ),
    out.message,
  )
  t.false(/wasi|wasm/i.test(out.inspected), out.inspected)
  t.false(out.inspected.includes('npm has a bug'), out.inspected)
})

test('a binding that fails to load for another reason is named with that reason', (t) => {
  // The loader's chain, outermost first: its header, the WebAssembly fallback, then our platform.
  const file = new Error(`/x/ipckit.${SUFFIX}.node: invalid ELF header`)
  const pkg = new Error(`Cannot find module 'ipckit-${SUFFIX}'`, { cause: file })
  const wasi = new Error("Cannot find module 'ipckit-wasm32-wasi'", {
    cause: new Error("Cannot find module './ipckit.wasi.cjs'", { cause: pkg }),
  })
  const header = new Error('Cannot find native binding. npm has a bug related to optional dependencies', {
    cause: wasi,
  })
  const [platform, arch] = SUFFIX.split('-') as [string, string]
  const e = bindingLoadError('1.2.3', header, platform, arch, SUFFIX.endsWith('musl') ? 'musl' : 'gnu')
  t.true(
    e.message.endsWith(
      `Loader error: Cannot find module 'ipckit-${SUFFIX}'; /x/ipckit.${SUFFIX}.node: invalid ELF header`,
    ),
    e.message,
  )
  t.deepEqual(causes(e), [`Cannot find module 'ipckit-${SUFFIX}'`, `/x/ipckit.${SUFFIX}.node: invalid ELF header`])
})

test('an unsupported platform gets an error naming the platform and the supported ones', (t) => {
  const cause = new Error('Unsupported OS: freebsd, architecture: x64')
  const e = bindingLoadError('1.2.3', cause, 'freebsd', 'x64', undefined) as Error & { code: string }
  t.is(e.code, 'ERR_IPCKIT_NO_BINDING')
  t.is(e.cause, cause)
  t.true(e.message.includes('freebsd-x64'))
  for (const suffix of Object.keys(PLATFORM_PACKAGES)) t.true(e.message.includes(suffix))
  const musl = bindingLoadError('1.2.3', cause, 'linux', 'arm64', 'musl')
  t.true(musl.message.includes('`ipckit-linux-arm64-musl@1.2.3`'))
  t.is(platformSuffix('darwin', 'arm64', undefined), 'darwin-arm64')
  t.is(platformSuffix('linux', 'x64', 'gnu'), 'linux-x64-gnu')
})

linuxOnly(test, 'reads the ELF dynamic imports with GNU nm -D; a Mach-O binary lists them otherwise')(
  'the binary uses Node-API only (no V8 or Node C++ symbols), so Electron loads it as is',
  async (t) => {
    t.true(existsSync(NATIVE), `${NATIVE} is built (npm run build)`)
    const { stdout } = await sh('nm', ['-D', '--undefined-only', NATIVE], ROOT)
    const symbols = stdout
      .trim()
      .split('\n')
      .map((l) => l.trim().split(/\s+/).pop()!.replace(/@.*/, ''))
    t.true(
      symbols.some((s) => s.startsWith('napi_')),
      'it imports Node-API functions',
    )
    const cxx = symbols.filter((s) => /^_ZN(K)?(2v8|4node)/.test(s) || s.startsWith('node_'))
    t.deepEqual(cxx, [], 'no V8/Node internals')
  },
)
