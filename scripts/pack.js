#!/usr/bin/env node
// Packs what `npm publish` would publish, into tarballs: the main package `ipckit` and one
// package per platform whose `.node` has been built (npm/<suffix>/ plus `ipckit.<suffix>.node`).
//
//   node scripts/pack.js [--out DIR] [--artifacts DIR] [--only SUFFIX,...]
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
const option = (name, fallback) => {
  const i = args.indexOf(name)
  return i >= 0 ? args[i + 1] : fallback
}
const out = path.resolve(option('--out', path.join(root, 'packages')))
const artifacts = path.resolve(option('--artifacts', root))
const only = option('--only', '')
  .split(',')
  .filter(Boolean)

const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'))
const binary = pkg.napi.binaryName
const suffixes = fs
  .readdirSync(path.join(root, 'npm'))
  .filter((d) => fs.existsSync(path.join(root, 'npm', d, 'package.json')))
  .sort()

for (const needed of ['dist/index.js', 'dist/index.mjs', 'dist/index.d.ts', 'binding.js', 'binding.d.ts']) {
  if (!fs.existsSync(path.join(root, needed))) {
    console.error(`pack: ${needed} is missing; run \`npm run build\` first`)
    process.exit(1)
  }
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

fs.mkdirSync(out, { recursive: true })
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'ipckit-pack-'))
try {
  // Platform packages: npm/<suffix>/package.json + README + the built binary.
  const platforms = {}
  for (const suffix of suffixes) {
    if (only.length > 0 && !only.includes(suffix)) continue
    const file = `${binary}.${suffix}.node`
    const built = [path.join(artifacts, file), path.join(artifacts, suffix, file)].find((f) => fs.existsSync(f))
    if (!built) continue
    const dir = path.join(scratch, suffix)
    fs.cpSync(path.join(root, 'npm', suffix), dir, { recursive: true })
    fs.copyFileSync(built, path.join(dir, file))
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
