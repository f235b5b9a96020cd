/**
 * Fuzzing (issue 9): every public function, static factory and public instance method of every
 * class exported by `ts/index.ts`, called with random arguments of every JavaScript type
 * (fast-check). The only allowed outcomes are a result, or an error ipckit documents:
 * TypeError/RangeError with Node's codes, an IpcError, ERR_INVALID_STATE, AbortError. Never a
 * crash, a hang or a descriptor leak.
 *
 * Random arguments can kill processes (`kill(-1)`, `kill(0)`), remove System V objects
 * (`ipcrm({ all })`) and create files (`mkfifo`, `bind`), so the cases run in a child
 * (`helpers/fuzz-runner.ts`) inside new IPC, PID, network and mount namespaces: it is pid 1 there,
 * alone in its own session and process group, its working folder is a private tmpfs, and no
 * generated string or Buffer contains '/'.
 *
 * Hangs: sync calls that block by design get `wait: false` (or a 10 ms timeout) forced into their
 * options when those are `undefined` or any object (not a Proxy or an array) (see `BLOCKING_SYNC`); an async call still
 * pending after 40 ms must end within 5 s of its object's `close()`; and this spec is a watchdog
 * that kills the runner if it prints no progress for 20 s, naming the last case started.
 *
 * Reproduce a failure with `IPCKIT_FUZZ_SEED=<seed>` (printed with the shrunk counterexample);
 * `IPCKIT_FUZZ_RUNS` sets the cases per target (default 40).
 */

import test from 'ava'
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as ipckit from '../ts/index'
import {
  CONSTANTS,
  FIXTURE_CLASSES,
  INTERNAL_CONSTRUCTORS,
  PUBLIC_CONSTRUCTORS,
  SKIPPED_MEMBERS,
  instanceMethods,
  isClass,
  label,
  staticMethods,
} from './helpers/fuzz-targets'
import { onLinux } from './helpers'

const RUNNER = join(__dirname, 'helpers', 'fuzz-runner.ts')
const TSX_CJS = require.resolve('tsx/cjs')
const NAMESPACES = ['--ipc', '--pid', '--net', '--fork', '--kill-child', '--mount-proc']
const STALL_MS = 20_000

/** Why the fuzz cases cannot run here, or undefined when they can. */
function unavailable(): string | undefined {
  if (!onLinux) return `the cases run in Linux namespaces (unshare), which ${process.platform} lacks`
  const probe = spawnSync('unshare', [...NAMESPACES, 'true'], { stdio: 'pipe' })
  if (probe.error) return `unshare(1) is not available (${probe.error.message})`
  if (probe.status !== 0) return `unshare ${NAMESPACES.join(' ')} failed: ${probe.stderr.toString().trim()}`
  return undefined
}
const whyNot = unavailable()

/** What the runner will fuzz, named as it names targets. */
function expectedTargets(): string[] {
  const names: string[] = []
  for (const [name, value] of Object.entries(ipckit)) {
    if (CONSTANTS.includes(name)) continue
    if (isClass(value)) {
      if (PUBLIC_CONSTRUCTORS.includes(name)) names.push(`new ${name}`)
      for (const s of staticMethods(value)) names.push(label(name, s, true))
      for (const m of instanceMethods(value as { prototype: object })) names.push(label(name, m))
    } else if (typeof value === 'function') names.push(name)
  }
  return names
}

test('every export of ts/index.ts is fuzzed or a listed constant', (t) => {
  for (const [name, value] of Object.entries(ipckit)) {
    if (CONSTANTS.includes(name)) {
      t.not(typeof value, 'function', `${name} is listed as a constant but is callable: fuzz it`)
      continue
    }
    t.is(typeof value, 'function', `export ${name} is neither a function nor a listed constant: fuzz it`)
    if (isClass(value)) {
      t.true(
        PUBLIC_CONSTRUCTORS.includes(name) || INTERNAL_CONSTRUCTORS.includes(name),
        `class ${name}: say whether its constructor is public (fuzzed) or internal`,
      )
      const methods = instanceMethods(value as { prototype: object })
      t.is(
        FIXTURE_CLASSES.includes(name),
        methods.length > 0,
        `class ${name}: add a fuzz fixture (FIXTURE_CLASSES, FIXTURES)`,
      )
    }
  }
  // The walk finds inherited public methods (MessageSocket's send/close) and skips only listed ones.
  const names = expectedTargets()
  t.true(names.includes('UnixDatagramSocket#send'))
  t.true(names.includes('UnixSeqpacketSocket#close'))
  t.true(names.includes('MessageQueue#[Symbol.asyncIterator]'))
  t.false(names.some((n) => Object.keys(SKIPPED_MEMBERS).some((s) => n.endsWith(`#${s}`))))
})

// Regressions for what the fuzzer found (kept deterministic here).
test('fromPairFd validates its descriptor: 1.5 is refused, not truncated to fd 1 and closed later', (t) => {
  for (const fd of [1.5, -1, Number.NaN, '3', undefined]) {
    for (const cls of [ipckit.UnixDatagramSocket, ipckit.UnixSeqpacketSocket]) {
      const err = t.throws(() => cls.fromPairFd(fd as number))
      t.true(['ERR_INVALID_ARG_TYPE', 'ERR_OUT_OF_RANGE'].includes((err as { code?: string }).code!), String(fd))
    }
  }
})

test('public error constructors refuse bad arguments with coded TypeErrors', (t) => {
  for (const bad of [
    undefined,
    null,
    5,
    {},
    { code: 'EACCES', errno: -13 },
    { code: 1, errno: -13, syscall: 'x', message: 'm' },
  ]) {
    t.throws(() => new ipckit.IpcError(bad as never), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' })
  }
  for (const bad of [Symbol('s'), Object.create(null), 5]) {
    t.throws(() => new ipckit.AbortError(bad as never), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' })
  }
  const e = new ipckit.IpcError({
    code: 'EACCES',
    errno: -13,
    syscall: 'msgget',
    message: 'EACCES: permission denied, msgget',
  })
  t.like(e, { code: 'EACCES', errno: -13, syscall: 'msgget', name: 'IpcError' })
  t.like(new ipckit.AbortError(), { name: 'AbortError', code: 'ABORT_ERR' })
})

const fuzz = whyNot === undefined ? test : test.skip
fuzz(
  `random arguments of every JS type: a result or a documented error, never a crash, hang or leak${whyNot ? ` (SKIPPED: ${whyNot})` : ''}`,
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'ipckit-fuzz-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    // setsid: the runner leads its own session and group, so kill(0) reaches nothing outside.
    const script = 'mount -t tmpfs -o size=16m,mode=700 ipckit-fuzz "$0" && cd "$0" && exec "$1" --require "$2" "$3"'
    const child = spawn(
      'unshare',
      [...NAMESPACES, 'setsid', 'sh', '-c', script, dir, process.execPath, TSX_CJS, RUNNER],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env },
      },
    )
    let stdout = ''
    let stderr = ''
    let last = Date.now()
    let lastCase = ''
    let stalled = false
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk
      last = Date.now()
      const i = stdout.lastIndexOf('\n@ ', stdout.length - 2)
      if (i >= 0) lastCase = stdout.slice(i + 1, stdout.indexOf('\n', i + 1))
    })
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
    const watchdog = setInterval(() => {
      if (Date.now() - last > STALL_MS) {
        stalled = true
        child.kill('SIGKILL')
      }
    }, 500)
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((res) =>
      child.on('close', (c, s) => res([c, s])),
    )
    clearInterval(watchdog)

    const report = stdout
      .split('\n')
      .filter((l) => !l.startsWith('@ '))
      .join('\n')
    t.false(stalled, `HANG: no progress for ${STALL_MS / 1000} s during case\n${lastCase}\n${report}`)
    t.is(signal, null, `the runner died from ${signal} during case\n${lastCase}\n${stderr}`)
    const summaryLine = stdout.split('\n').find((l) => l.startsWith('SUMMARY '))
    t.truthy(
      summaryLine,
      `the runner ended (code ${code}) without a summary; last case:\n${lastCase}\n${report}\n${stderr}`,
    )
    if (!summaryLine) return
    const summary = JSON.parse(summaryLine.slice('SUMMARY '.length)) as {
      targets: string[]
      cases: number
      ms: number
      failed: string[]
      outcomes: Record<string, Record<string, number>>
    }
    t.deepEqual(summary.failed, [], report.replace(/^SUMMARY .*$/m, ''))
    t.is(code, 0, stderr)
    t.deepEqual(summary.targets.sort(), expectedTargets().sort())
    t.true(summary.cases >= 3000, `only ${summary.cases} cases`)
    // Not all refused by validation: each target ran, and most reached the kernel at least once.
    const reached = summary.targets.filter((name) =>
      Object.keys(summary.outcomes[name] ?? {}).some((o) => /^(async )?(result|IpcError)/.test(o)),
    )
    const refusedOnly = summary.targets.filter((name) => !reached.includes(name))
    t.true(
      reached.length >= summary.targets.length * 0.66,
      `few targets got past validation: ${refusedOnly.join(', ')}`,
    )
    t.log(`${summary.cases} cases over ${summary.targets.length} targets in ${summary.ms} ms`)
    t.log(`never past validation in this run (random arguments rarely fit): ${refusedOnly.join(', ')}`)
  },
)
