#!/usr/bin/env node
// Packs what `npm publish` would publish, into tarballs: the main package `ipckit` and one
// package per platform whose `.node` has been built (npm/<suffix>/ plus `ipckit.<suffix>.node`),
// each with the LICENSE. It packs what is built (`npm run build` first; it rebuilds nothing) and
// refuses a build older than its sources.
//
//   node scripts/pack.js [--out DIR] [--artifacts DIR] [--only SUFFIX,...]    (npm run package)
//
// This is the only way to pack: a plain `npm pack` (or `npm publish`) of the repository root would
// give a tarball without the optionalDependencies on the platform packages, which installs
// silently and fails at the first `require`. The root's `prepack` script runs
// `node scripts/pack.js --refuse-plain-pack`, which says so and fails.
//
// The main package is staged in a scratch folder with `optionalDependencies` naming every
// platform package at this version (what `napi pre-publish` adds at publish time; the repo's own
// package.json leaves them out so that `npm ci` works before they are published) and without
// the development-only fields (scripts, devDependencies, test config). `npm pack` then applies
// the `files` list. CI's publish job publishes exactly these tarballs.
//
// Prints one JSON line: { main: '/abs/ipckit-0.1.0.tgz', platforms: { 'linux-x64-gnu': '...' } }.
'use strict'
const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const root = path.join(__dirname, '..')
const args = process.argv.slice(2)

if (args.includes('--refuse-plain-pack')) {
  console.error(
    'ipckit: a plain `npm pack` / `npm publish` of the repository root would make a package with no ' +
      'native binary and no optionalDependencies on the platform packages (it installs, then fails at require).\n' +
      'Run `npm run package` instead (node scripts/pack.js: the main tarball and one per built platform, ' +
      'into packages/); publish those tarballs (CI does, on a `v*` tag).',
  )
  process.exit(1)
}

const option = (name, fallback) => {
  const i = args.indexOf(name)
  return i >= 0 ? args[i + 1] : fallback
}
const out = path.resolve(option('--out', path.join(root, 'packages')))
const artifacts = path.resolve(option('--artifacts', root))
const only = option('--only', '').split(',').filter(Boolean)

const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'))
const binary = pkg.napi.binaryName
const suffixes = fs
  .readdirSync(path.join(root, 'npm'))
  .filter((d) => fs.existsSync(path.join(root, 'npm', d, 'package.json')))
  .sort()

for (const needed of ['dist/index.js', 'dist/index.mjs', 'dist/index.d.ts', 'binding.js', 'binding.d.ts', 'LICENSE']) {
  if (!fs.existsSync(path.join(root, needed))) {
    console.error(`pack: ${needed} is missing; run \`npm run build\` first`)
    process.exit(1)
  }
}
// What is packed must be built from the sources as they are: dist/ no older than any ts/ file.
const distBuiltAt = fs.statSync(path.join(root, 'dist', 'index.js')).mtimeMs
const newer = fs
  .readdirSync(path.join(root, 'ts'))
  .filter((f) => f.endsWith('.ts') && fs.statSync(path.join(root, 'ts', f)).mtimeMs > distBuiltAt)
if (newer.length > 0) {
  console.error(
    `pack: dist/ is older than ts/${newer.join(', ts/')}; run \`npm run build:ts\` (or \`npm run build\`) first`,
  )
  process.exit(1)
}
/** The newest mtime of the Rust sources a binary built here comes from. */
function newestRustSource() {
  let newest = 0
  const walk = (dir) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name)
      if (e.isDirectory()) walk(p)
      else if (e.name.endsWith('.rs') || e.name === 'Cargo.toml') newest = Math.max(newest, fs.statSync(p).mtimeMs)
    }
  }
  walk(path.join(root, 'crates'))
  return newest
}

function npmPack(dir) {
  const json = execFileSync('npm', ['pack', '--json', '--pack-destination', out], {
    cwd: dir,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const [{ filename }] = JSON.parse(json)
  return path.join(out, filename)
}

// The platform binaries built (here, or in --artifacts as CI downloads them), by suffix.
const binaries = {}
for (const suffix of suffixes) {
  if (only.length > 0 && !only.includes(suffix)) continue
  const file = `${binary}.${suffix}.node`
  const builtBinary = [path.join(artifacts, file), path.join(artifacts, suffix, file)].find((f) => fs.existsSync(f))
  if (!builtBinary) continue
  if (path.dirname(builtBinary) === root && fs.statSync(builtBinary).mtimeMs < newestRustSource()) {
    console.error(
      `pack: ${file} is older than the Rust sources in crates/; run \`npm run build:native\` (or \`npm run build\`) first`,
    )
    process.exit(1)
  }
  binaries[suffix] = builtBinary
}

fs.mkdirSync(out, { recursive: true })
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'ipckit-pack-'))
try {
  // Platform packages: npm/<suffix>/package.json + README + LICENSE + the built binary.
  const platforms = {}
  for (const [suffix, builtBinary] of Object.entries(binaries)) {
    const file = path.basename(builtBinary)
    const dir = path.join(scratch, suffix)
    fs.cpSync(path.join(root, 'npm', suffix), dir, { recursive: true })
    fs.copyFileSync(builtBinary, path.join(dir, file))
    fs.copyFileSync(path.join(root, 'LICENSE'), path.join(dir, 'LICENSE'))
    platforms[suffix] = npmPack(dir)
  }

  // Main package.
  const dir = path.join(scratch, 'main')
  fs.mkdirSync(dir)
  const manifest = { ...pkg }
  for (const field of ['scripts', 'devDependencies', 'ava']) delete manifest[field]
  manifest.optionalDependencies = Object.fromEntries(suffixes.map((s) => [`${pkg.name}-${s}`, pkg.version]))
  fs.writeFileSync(path.join(dir, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`)
  for (const entry of [...pkg.files.filter((f) => !f.startsWith('!')), 'README.md', 'LICENSE']) {
    const from = path.join(root, entry)
    if (fs.existsSync(from)) fs.cpSync(from, path.join(dir, entry), { recursive: true })
  }
  const main = npmPack(dir)
  console.log(JSON.stringify({ main, platforms }))
} finally {
  fs.rmSync(scratch, { recursive: true, force: true })
}
