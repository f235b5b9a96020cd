'use strict'
/**
 * The bench harness: C programs compiled in the run, line-protocol child processes, timing and
 * statistics. Every primitive's suite (`bench/suites/*.js`) builds on these pieces.
 *
 * @example
 * const { compileC, LineProcess, now } = require('./harness')
 * const driver = new LineProcess(compileC('msg_driver'), [])
 * const ns = Number(await driver.ask(`rt ${qid} 1000 64`))
 */

const { execFileSync, spawn } = require('node:child_process')
const { existsSync, mkdirSync, statSync } = require('node:fs')
const { join, resolve } = require('node:path')

/** The repository root. */
const ROOT = resolve(__dirname, '..', '..')
/** Where the bench keeps what it builds and installs (gitignored). */
const BUILD = join(ROOT, 'bench', '.build')

/** Monotonic time in nanoseconds, as a Number. */
function now() {
  return Number(process.hrtime.bigint())
}

/**
 * Compiles `bench/c/<name>.c` with `gcc -O2` into `bench/.build/c/<name>` (again only when the
 * source is newer) and returns the executable's path.
 *
 * @example
 * const echo = compileC('msg_echo')
 */
function compileC(name) {
  const src = join(ROOT, 'bench', 'c', `${name}.c`)
  const dir = join(BUILD, 'c')
  const out = join(dir, name)
  mkdirSync(dir, { recursive: true })
  if (!existsSync(out) || statSync(out).mtimeMs < statSync(src).mtimeMs) {
    execFileSync('gcc', ['-O2', '-Wall', '-Wextra', '-Werror', '-o', out, src], { stdio: 'pipe' })
  }
  return out
}

/**
 * A child process driven by lines: `ask(line)` writes a command to its stdin and resolves with
 * the next line it prints. Stderr is kept for error reports.
 *
 * @example
 * const py = new LineProcess('python3', ['driver.py'])
 * const ns = Number(await py.ask('rt 5 1000 64'))
 * await py.close()
 */
class LineProcess {
  constructor(command, args, options = {}) {
    this.child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], ...options })
    this.stderr = ''
    this.lines = []
    this.waiters = []
    this.exited = false
    let partial = ''
    this.child.stdout.setEncoding('utf8').on('data', (chunk) => {
      partial += chunk
      const parts = partial.split('\n')
      partial = parts.pop()
      for (const line of parts) {
        const w = this.waiters.shift()
        if (w) w.resolve(line)
        else this.lines.push(line)
      }
    })
    this.child.stderr.setEncoding('utf8').on('data', (chunk) => (this.stderr += chunk))
    this.closed = new Promise((res) => {
      const finish = (code, signal) => {
        this.exited = true
        for (const w of this.waiters.splice(0)) {
          w.reject(new Error(`${command} exited (${code ?? signal}): ${this.stderr.trim().slice(-500)}`))
        }
        res({ code, signal })
      }
      this.child.on('error', (err) => {
        this.stderr += String(err)
        finish(null, 'spawn error')
      })
      this.child.on('exit', finish)
    })
  }

  /** The next line the child prints. */
  next() {
    if (this.lines.length > 0) return Promise.resolve(this.lines.shift())
    if (this.exited) return Promise.reject(new Error(`child exited: ${this.stderr.trim().slice(-500)}`))
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }))
  }

  /** Writes `line` and resolves with the next line printed. */
  ask(line) {
    const answer = this.next()
    this.child.stdin.write(`${line}\n`)
    return answer
  }

  /** Closes stdin and waits for the exit (killing after `ms`). */
  async close(ms = 5000) {
    this.child.stdin.end()
    const timer = setTimeout(() => this.child.kill('SIGKILL'), ms)
    await this.closed
    clearTimeout(timer)
  }
}

/**
 * Spawns a child and waits until it exits; for echo children whose end is the removal of their
 * queue. Returns `{ child, done }`.
 */
function background(command, args, options = {}) {
  const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'], ...options })
  let stderr = ''
  child.stderr?.setEncoding('utf8').on('data', (c) => (stderr += c))
  const done = new Promise((res) => {
    child.on('error', (err) => res({ code: null, error: err, stderr }))
    child.on('exit', (code, signal) => res({ code, signal, stderr }))
  })
  return { child, done }
}

/** Median, minimum and maximum of a list of numbers. */
function stats(values) {
  const s = [...values].sort((a, b) => a - b)
  const mid = s.length >> 1
  const median = s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2
  return { median, min: s[0], max: s[s.length - 1], samples: values.length }
}

/** A one-line reason from an error, for the table's list of peers that did not run. */
function reason(err) {
  const text = String(err?.stderr?.toString?.() || err?.message || err)
  return (
    text
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean)
      .slice(-1)[0]
      ?.slice(0, 200) ?? 'unknown error'
  )
}

module.exports = { ROOT, BUILD, now, compileC, LineProcess, background, stats, reason }
