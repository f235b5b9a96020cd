'use strict'
/**
 * Installs the peers ipckit is compared with at bench time, into `bench/.build` (never as
 * devDependencies: a native peer that fails to build must not break `npm ci`). A peer that
 * fails to install or load is reported with the reason, not hidden.
 *
 * @example
 * const svmq = npmPeer('svmq')          // the module, or throws with the reason
 * const py = pythonPeer('sysv_ipc')     // { python, path } for PYTHONPATH
 */

const { execFileSync } = require('node:child_process')
const { existsSync, mkdirSync, writeFileSync } = require('node:fs')
const { dirname, join } = require('node:path')

const { BUILD } = require('./harness')

const NPM_DIR = join(BUILD, 'npm')
const PY_DIR = join(BUILD, 'py')
const cache = new Map()

function once(key, fn) {
  if (!cache.has(key)) {
    try {
      cache.set(key, { value: fn() })
    } catch (error) {
      cache.set(key, { error })
    }
  }
  const hit = cache.get(key)
  if (hit.error) throw hit.error
  return hit.value
}

/** npm's own node-gyp, for packages whose install script npm was told not to run. */
function nodeGyp() {
  const npmCli = execFileSync('npm', ['root', '-g'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
  const gyp = join(npmCli, 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js')
  if (!existsSync(gyp)) throw new Error('node-gyp not found beside npm')
  return gyp
}

/**
 * Installs npm package `name` into `bench/.build/npm` (once), builds its native part with
 * node-gyp when it has a binding.gyp (npm may be configured not to run install scripts),
 * and returns `require(name)`.
 */
function npmPeer(name) {
  return once(`npm:${name}`, () => {
    mkdirSync(NPM_DIR, { recursive: true })
    const pkgJson = join(NPM_DIR, 'package.json')
    if (!existsSync(pkgJson)) writeFileSync(pkgJson, '{ "private": true }\n')
    const dir = join(NPM_DIR, 'node_modules', name)
    const marker = join(dir, '.ipckit-bench-built')
    if (!existsSync(marker)) {
      // Saved into bench/.build/npm/package.json: npm prunes what a package.json does not
      // list, so a --no-save install of a second peer would remove the first.
      execFileSync('npm', ['install', '--save', '--no-package-lock', '--no-audit', '--no-fund', name], {
        cwd: NPM_DIR,
        stdio: 'pipe',
        timeout: 300_000,
      })
      if (existsSync(join(dir, 'binding.gyp'))) {
        execFileSync(process.execPath, [nodeGyp(), 'rebuild', `--nodedir=${dirname(dirname(process.execPath))}`], {
          cwd: dir,
          stdio: 'pipe',
          timeout: 300_000,
        })
      }
      writeFileSync(marker, '')
    }
    return require(dir)
  })
}

/**
 * Installs PyPI package `name` with pip into `bench/.build/py` (once) and checks that it
 * imports. Returns `{ python, path }`: run `python` with `PYTHONPATH=path`.
 */
function pythonPeer(name, importName = name) {
  return once(`py:${name}`, () => {
    const python = 'python3'
    const env = { ...process.env, PYTHONPATH: PY_DIR }
    try {
      execFileSync(python, ['-c', `import ${importName}`], { env, stdio: 'pipe' })
    } catch {
      mkdirSync(PY_DIR, { recursive: true })
      execFileSync(python, ['-m', 'pip', 'install', '--quiet', '--target', PY_DIR, name], {
        stdio: 'pipe',
        timeout: 300_000,
      })
      execFileSync(python, ['-c', `import ${importName}`], { env, stdio: 'pipe' })
    }
    return { python, path: PY_DIR }
  })
}

module.exports = { npmPeer, pythonPeer }
