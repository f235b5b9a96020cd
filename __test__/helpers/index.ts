/**
 * Test helpers used by every spec: child processes (Node and C), unique keys, and cleanup of
 * every IPC object a test creates.
 */

import type { ExecutionContext } from 'ava'
import { execFileSync, spawn, spawnSync, type SpawnOptions } from 'node:child_process'
import { createHash } from 'node:crypto'
import {
  existsSync,
  fstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

/** The repository root. */
export const ROOT = resolve(__dirname, '..', '..')
/** Entry of the TypeScript sources, as children require them. */
export const SOURCE_ENTRY = join(ROOT, 'ts', 'index.ts')
const TSX_CJS = require.resolve('tsx/cjs')

/**
 * An unprivileged user and its group for permission tests: `nobody`, as this system numbers it
 * (`id -u nobody`, `id -g nobody`: 65534 on Debian, -2 on macOS). The ids are signed 32-bit, as
 * `spawn` takes them; compare them with what the system reports (`process.getuid()`, `stat`) as
 * `NOBODY.uid >>> 0`.
 *
 * ```ts
 * await runNode('console.log(process.getuid())', [], { uid: NOBODY.uid, gid: NOBODY.gid })
 * ```
 */
export const NOBODY: { readonly uid: number; readonly gid: number } = {
  // Asked on first use, not when this module loads (child processes load it too).
  get uid() {
    return nobodyId('-u')
  },
  get gid() {
    return nobodyId('-g')
  },
}
const nobodyIds = new Map<string, number>()
function nobodyId(flag: '-u' | '-g'): number {
  let id = nobodyIds.get(flag)
  if (id === undefined) {
    id = Number(execFileSync('id', [flag, 'nobody'], { encoding: 'utf8' }).trim()) | 0
    nobodyIds.set(flag, id)
  }
  return id
}

/** Result of a finished child process. */
export interface ChildResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

/** A running child with its output collected. */
export interface RunningChild {
  pid: number
  /** Resolves when the child exits. */
  done: Promise<ChildResult>
  /** Sends a line to the child's stdin. */
  write(line: string): void
  /** Resolves with the first stdout line that matches. */
  line(match?: RegExp): Promise<string>
  kill(signal?: NodeJS.Signals): void
}

function run(command: string, args: string[], options: SpawnOptions & { timeoutMs?: number } = {}): RunningChild {
  const { timeoutMs = 60_000, ...spawnOptions } = options
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], ...spawnOptions })
  let stdout = ''
  let stderr = ''
  const waiters: Array<{ match: RegExp; resolve: (s: string) => void }> = []
  const lines: string[] = []
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    const before = stdout
    stdout += chunk
    const complete = stdout.split('\n').slice(0, -1)
    const already = before.split('\n').length - 1
    for (const l of complete.slice(already)) lines.push(l)
    for (const w of [...waiters]) {
      const hit = lines.find((l) => w.match.test(l))
      if (hit !== undefined) {
        waiters.splice(waiters.indexOf(w), 1)
        w.resolve(hit)
      }
    }
  })
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
  const done = new Promise<ChildResult>((res, rej) => {
    child.on('error', rej)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      res({ code, signal, stdout, stderr })
    })
  })
  return {
    pid: child.pid!,
    done,
    write: (line) => child.stdin!.write(`${line}\n`),
    line: (match = /./) =>
      new Promise<string>((res, rej) => {
        const hit = lines.find((l) => match.test(l))
        if (hit !== undefined) return res(hit)
        waiters.push({ match, resolve: res })
        done.then((r) => rej(new Error(`child exited (${r.code ?? r.signal}) before printing ${match}: ${r.stderr}`)))
      }),
    kill: (signal = 'SIGTERM') => child.kill(signal),
  }
}

/**
 * Runs `code` in a child Node process in which `ipckit` is the package built from `ts/`
 * (as `const ipckit = require(...)`), and `args` is `process.argv.slice(2)`.
 */
export function nodeChild(
  code: string,
  args: string[] = [],
  options: SpawnOptions & { timeoutMs?: number } = {},
): RunningChild {
  // `node -e` puts the first argument at argv[1]; insert a script name so that, as in a script,
  // the arguments start at argv[2].
  const prelude = `process.argv.splice(1, 0, '[ipckit-child]');const ipckit = require(${JSON.stringify(SOURCE_ENTRY)});\n`
  return run(process.execPath, ['--require', TSX_CJS, '-e', prelude + code, '--', ...args], {
    cwd: ROOT,
    ...options,
  })
}

/** {@link nodeChild}, awaited; throws unless it exits with code 0. */
export async function runNode(code: string, args: string[] = [], options: SpawnOptions & { timeoutMs?: number } = {}) {
  const r = await nodeChild(code, args, options).done
  if (r.code !== 0) throw new Error(`node child failed (${r.code ?? r.signal}): ${r.stderr}${r.stdout}`)
  return r
}

/**
 * {@link runNode} under a wrapper command that runs its arguments: `['prlimit', '--nofile=64']`
 * for a resource limit, `['unshare', '--pid', '--fork', '--mount-proc']` for a namespace.
 * Throws unless the child exits with code 0.
 *
 * ```ts
 * const r = await runNodeUnder(['prlimit', '--nofile=64'], 'console.log(ipckit.EventFd.create().fd)')
 * ```
 */
export async function runNodeUnder(
  wrapper: readonly string[],
  code: string,
  args: string[] = [],
  options: SpawnOptions & { timeoutMs?: number } = {},
) {
  const prelude = `process.argv.splice(1, 0, '[ipckit-child]');const ipckit = require(${JSON.stringify(SOURCE_ENTRY)});\n`
  const [command, ...rest] = wrapper
  const r = await run(
    command!,
    [...rest, process.execPath, '--require', TSX_CJS, '-e', prelude + code, '--', ...args],
    {
      cwd: ROOT,
      ...options,
    },
  ).done
  if (r.code !== 0)
    throw new Error(`${wrapper.join(' ')} node child failed (${r.code ?? r.signal}): ${r.stderr}${r.stdout}`)
  return r
}

const buildDirs: string[] = []

let compiler: string | undefined
/** gcc where it is installed (Linux), else the system's `cc` (clang on macOS). */
function cCompiler(): string {
  compiler ??= spawnSync('sh', ['-c', 'command -v gcc'], { stdio: 'pipe' }).status === 0 ? 'gcc' : 'cc'
  return compiler
}

/**
 * Compiles a C program with gcc (`cc` where gcc is absent) into a private temporary folder
 * (removed by {@link removeBuilds}) and returns the executable's path. Identical sources
 * compile once.
 */
export function compileC(name: string, source: string): string {
  const hash = createHash('sha1').update(source).digest('hex').slice(0, 12)
  if (buildDirs.length === 0) buildDirs.push(mkdtempSync(join(tmpdir(), 'ipckit-test-c-')))
  const dir = buildDirs[0]!
  const exe = join(dir, `${name}-${hash}`)
  if (existsSync(exe)) return exe
  const src = `${exe}.c`
  writeFileSync(src, source)
  execFileSync(cCompiler(), ['-O2', '-Wall', '-Werror', '-o', exe, src], { stdio: 'pipe' })
  return exe
}

/** Runs a compiled program as a child. */
export function cChild(exe: string, args: string[] = [], options: SpawnOptions & { timeoutMs?: number } = {}) {
  return run(exe, args, options)
}

/** Runs a compiled program; throws unless it exits with code 0. */
export async function runC(exe: string, args: string[] = [], options: SpawnOptions & { timeoutMs?: number } = {}) {
  const r = await cChild(exe, args, options).done
  if (r.code !== 0) throw new Error(`${exe} failed (${r.code ?? r.signal}): ${r.stderr}${r.stdout}`)
  return r
}

/** Removes the folders {@link compileC} made. */
export function removeBuilds(): void {
  for (const dir of buildDirs.splice(0)) rmSync(dir, { recursive: true, force: true })
}

/** A temporary folder removed by the returned `remove()`. */
export function tempDir(prefix = 'ipckit-test-'): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix))
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) }
}

/**
 * The System V objects of a type that exist now, as `[key, id]`: from /proc/sysvipc on Linux;
 * elsewhere from the system's `ipcs -q|-s|-m` (BSD layout, rows `q <id> <0xkey> <mode> ...`, as
 * macOS prints them; not run here).
 */
function sysvObjects(type: 'msg' | 'sem' | 'shm'): Array<[key: number, id: number]> {
  if (onLinux) {
    const lines = readFileSync(`/proc/sysvipc/${type}`, 'utf8').trim().split('\n').slice(1)
    return lines.map((l) => {
      const [key, id] = l.trim().split(/\s+/)
      return [Number(key) | 0, Number(id)]
    })
  }
  const letter = type === 'msg' ? 'q' : type === 'sem' ? 's' : 'm'
  const out = execFileSync('ipcs', [`-${letter}`], { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' } })
  return out
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f[0] === letter && /^\d+$/.test(f[1] ?? '') && /^0x[0-9a-f]+$/i.test(f[2] ?? ''))
    .map((f) => [Number(f[2]) | 0, Number(f[1])])
}

/** Ids of System V objects of a type that exist now (from /proc/sysvipc, or `ipcs` off Linux). */
export function sysvIds(type: 'msg' | 'sem' | 'shm'): Set<number> {
  return new Set(sysvObjects(type).map(([, id]) => id))
}

/** Whether a key has an object of `type` now (from /proc/sysvipc, or `ipcs` off Linux). */
export function keyExists(type: 'msg' | 'sem' | 'shm', key: number): boolean {
  return sysvObjects(type).some(([k]) => k === (key | 0))
}

let keyCounter = 0
/**
 * A key no System V object of `type` uses now: from a range kept for tests, mixed with the pid
 * so that parallel test processes do not meet.
 */
export function freshKey(type: 'msg' | 'sem' | 'shm' = 'msg'): number {
  for (;;) {
    keyCounter = (keyCounter + 1) & 0xff
    const key = (0x7e00_0000 | ((process.pid & 0xffff) << 8) | keyCounter) >>> 0
    if (!keyExists(type, key)) return key
  }
}

/** Writes a file and returns its path (for fixtures). */
export function writeFixture(dir: string, name: string, content: string): string {
  mkdirSync(dir, { recursive: true })
  const p = join(dir, name)
  writeFileSync(p, content)
  return p
}

/** Resolves after `ms` milliseconds. */
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/**
 * How far the kernel's coarse wall clock may lag `Date.now()`. System V times come from
 * `ktime_get_real_seconds()`, the seconds of the clock as of the last timer tick (1-10 ms at
 * HZ 1000-100, longer when a loaded VM delays ticks), so a send just after a second boundary can
 * be stamped with the second before it (CI saw 23:01:28 for a send at 23:01:29.000-005).
 */
export const KERNEL_CLOCK_LAG_MS = 250

/**
 * Asserts that `time`, a time the kernel recorded (System V times are whole seconds, truncated),
 * lies between `fromMs` and `toMs`: `Date.now()` taken before and after the calls that may have
 * set it. The lower bound is the start of the second that `fromMs - KERNEL_CLOCK_LAG_MS` falls in.
 *
 * ```ts
 * const from = Date.now(); q.sendSync('x'); const to = Date.now()
 * assertTimeBetween(t, q.stat().lastSendTime, from, to, 'lastSendTime')
 * ```
 */
export function assertTimeBetween(
  t: ExecutionContext,
  time: Date | null | undefined,
  fromMs: number,
  toMs: number,
  what = 'the time',
): void {
  if (!(time instanceof Date)) return void t.fail(`${what} is ${String(time)}, not a Date`)
  const low = Math.floor((fromMs - KERNEL_CLOCK_LAG_MS) / 1000) * 1000
  t.true(
    time.getTime() >= low && time.getTime() <= toMs,
    `${what} ${time.toISOString()} is not between ${new Date(low).toISOString()} and ${new Date(toMs).toISOString()}`,
  )
}

/**
 * How long something that must happen "at once" may take on a busy machine (a loaded CI runner,
 * the suite under qemu, `npm run test:busy`): a deadline that only a failure reaches, never a
 * measure of speed (bench/ measures speed).
 */
export const PATIENCE_MS = 10_000

/**
 * `promise`, or a rejection saying that `what` did not happen if it has not settled within
 * `ms`: for a promise that would never settle if the code under test were wrong (a wait that an
 * abort must end), in place of a timed assertion.
 */
export function within<T>(promise: Promise<T>, what: string, ms = PATIENCE_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)
  })
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer))
}

/** Milliseconds an async function takes, with its result. */
export async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const start = process.hrtime.bigint()
  const value = await fn()
  return { ms: Number(process.hrtime.bigint() - start) / 1e6, value }
}

/**
 * The folder listing this process's open descriptors: /proc/self/fd on Linux, /dev/fd on macOS
 * (where its entries are not links: {@link fdSnapshot} describes them with `fstat` instead).
 */
const fdDir = () => (onLinux ? '/proc/self/fd' : '/dev/fd')

/** Open file descriptors of this process (from /proc/self/fd; /dev/fd off Linux). */
export function openFds(): number {
  return readdirSync(fdDir()).length
}

/**
 * The open descriptors of this process, each as `"<fd> <what it is>"` from /proc/self/fd
 * (`"7 socket:[81234]"`, `"9 pipe:[5521]"`, `"12 /tmp/x"`): a descriptor that is closed and
 * reopened, even under the same number, is a different entry. Off Linux (macOS), from /dev/fd
 * and `fstat`: `"<fd> <type> <dev>:<ino>"`, which tells objects apart as far as their inode
 * numbers do.
 */
export function fdSnapshot(): Set<string> {
  const entries = new Set<string>()
  for (const fd of readdirSync(fdDir())) {
    try {
      if (onLinux) {
        entries.add(`${fd} ${readlinkSync(`/proc/self/fd/${fd}`)}`)
      } else {
        const st = fstatSync(Number(fd))
        entries.add(`${fd} ${(st.mode & 0o170000).toString(8)} ${st.dev}:${st.ino}`)
      }
    } catch {
      // closed meanwhile (the descriptor readdir itself used)
    }
  }
  return entries
}

/**
 * The descriptors open now that were not open in `before` (a {@link fdSnapshot}): what a test
 * left open. Waits up to `settleMs` for them to go, since Node closes some handles (child stdio,
 * net.Socket) on a later turn of the event loop. Descriptors that others closed meanwhile do not
 * count: unlike a count, this neither misses a leak nor blames the test for them.
 */
export async function fdsLeftOpen(before: Set<string>, settleMs = PATIENCE_MS): Promise<string[]> {
  const deadline = Date.now() + settleMs
  for (;;) {
    const left = [...fdSnapshot()].filter((entry) => !before.has(entry))
    if (left.length === 0 || Date.now() > deadline) return left
    await sleep(10)
  }
}

/**
 * The descriptors open now that were not in `before` (a {@link fdSnapshot}) once garbage
 * collection had its chance: runs `gc` and looks again until none is left or `ms` passed. For
 * the finalizers that close what an object only collected owned.
 *
 * ```ts
 * ;(() => { Memfd.create({ size: 64 }) })()   // never closed
 * t.deepEqual(await fdsLeftAfterGc(before, gc), [])
 * ```
 */
export async function fdsLeftAfterGc(before: Set<string>, gc: () => void, ms = 10_000): Promise<string[]> {
  const deadline = Date.now() + ms
  for (;;) {
    gc()
    await sleep(20)
    const left = [...fdSnapshot()].filter((e) => !before.has(e))
    if (left.length === 0 || Date.now() > deadline) return left
  }
}

/**
 * Threads of process `pid` that the kernel shows blocked in a function matching `wchan` (from
 * /proc/<pid>/task/<tid>/wchan: `do_msgrcv`, `do_semtimedop`, `futex_wait_queue`, ...). Linux
 * only: elsewhere it throws, and tests that use it are declared with {@link linuxOnly}.
 */
export function blockedThreads(pid: number, wchan: RegExp): number {
  if (!onLinux) {
    throw new Error(
      `blockedThreads reads /proc/<pid>/task/*/wchan, which ${process.platform} lacks: declare the test with linuxOnly()`,
    )
  }
  let tasks: string[]
  try {
    tasks = readdirSync(`/proc/${pid}/task`)
  } catch {
    return 0 // the process is gone
  }
  let n = 0
  for (const tid of tasks) {
    try {
      if (wchan.test(readFileSync(`/proc/${pid}/task/${tid}/wchan`, 'utf8'))) n++
    } catch {
      // the thread ended meanwhile
    }
  }
  return n
}

/**
 * Resolves once at least `count` threads of `pid` are blocked in the kernel in `wchan` (see
 * {@link blockedThreads}); rejects after `timeoutMs`. Use it instead of a sleep before removing
 * an object that waiters must see removed (EIDRM): under load a sleep can end before a waiter
 * has even entered its system call, and then the kernel rightly answers EINVAL.
 */
export async function waitUntilBlocked(pid: number, wchan: RegExp, count = 1, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (blockedThreads(pid, wchan) < count) {
    if (Date.now() > deadline) {
      throw new Error(`${count} thread(s) of ${pid} were not blocked in ${wchan} within ${timeoutMs} ms`)
    }
    await sleep(2)
  }
}

/**
 * Closes `obj` and removes its System V object when the test ends, whatever the test did (by
 * id, through `fromId`, so that it works after `close()` and after the test removed it):
 * `const q = removeAtEnd(t, MessageQueue.create(), MessageQueue.fromId)`.
 */
export function removeAtEnd<T extends { id: number; close(): void }>(
  t: ExecutionContext,
  obj: T,
  fromId: (id: number) => { remove(): void; close(): void },
): T {
  t.teardown(() => {
    obj.close()
    try {
      const again = fromId(obj.id)
      again.remove()
      again.close()
    } catch {
      // removed by the test
    }
  })
  return obj
}

/**
 * Whether the specs run on Linux, where every facility they use exists. Elsewhere (macOS) a
 * test of a Linux-only facility is declared through {@link linuxOnly} (skipped, with the reason
 * in its title), and what the platform promises instead through {@link notLinux}.
 */
export const onLinux = process.platform === 'linux'

type AnyFn = (...args: any[]) => any

/**
 * `test` (or `test.serial`, ...) for tests that need a Linux-only facility (`/proc`, futex,
 * `SIGRTMIN`, abstract or seqpacket sockets, `unshare`, ...): on Linux it is `test` itself,
 * unchanged; elsewhere every test declared through it is skipped, its title ending with
 * `[skipped on <platform>: <reason>]` so ava's output says why, and its hooks do nothing. Use it
 * for one test, or for a whole file:
 *
 * ```ts
 * linuxOnly(test, 'futex wait/notify: macOS has no futex')('wait wakes on notify', async (t) => {})
 * const test = linuxOnly(anyTest, 'reads /proc/sysvipc') // every test of this file
 * ```
 */
export function linuxOnly<T extends AnyFn>(test: T, reason: string): T {
  if (onLinux) return test
  const suffix = ` [skipped on ${process.platform}: ${reason}]`
  const t = test as unknown as Record<string, any> & AnyFn
  const skipper =
    (skip: AnyFn) =>
    (title: unknown, ...rest: unknown[]) =>
      typeof title === 'string' ? skip(`${title}${suffix}`, ...rest) : skip(title, ...rest)
  const skipped = skipper(t.skip!) as AnyFn & Record<string, unknown>
  const none = Object.assign(() => {}, { always: () => {}, skip: () => {} })
  skipped.skip = t.skip
  if (t.serial) skipped.serial = Object.assign(skipper(t.serial.skip!), { skip: t.serial.skip })
  for (const hook of ['before', 'after', 'beforeEach', 'afterEach']) if (t[hook]) skipped[hook] = none
  if (t.todo) skipped.todo = t.todo
  if (t.macro) skipped.macro = t.macro
  return skipped as unknown as T
}

/**
 * `test` for what a platform other than Linux (macOS) promises instead of a Linux-only facility
 * (`IpcError` `ENOSYS` for futex wait/notify, `sigqueue`, abstract names, ...): elsewhere it is
 * `test` itself; on Linux it declares nothing, since the Linux tests of the facility run there.
 *
 * ```ts
 * notLinux(test)('wait rejects with ENOSYS', async (t) => {})
 * ```
 */
export function notLinux<T extends AnyFn>(test: T): T {
  return onLinux ? ((() => {}) as unknown as T) : test
}

/**
 * Attachments of shared memory segment `id` (`nattch`), undefined once the segment is gone: from
 * /proc/sysvipc/shm on Linux; elsewhere from the system's `ipcs -m -o` (the NATTCH column, as
 * macOS prints it; not run here).
 */
export function shmAttachments(id: number): number | undefined {
  let header: string[]
  let rows: string[][]
  if (onLinux) {
    const lines = readFileSync('/proc/sysvipc/shm', 'utf8').trim().split('\n')
    header = lines[0]!.trim().split(/\s+/)
    rows = lines.slice(1).map((l) => l.trim().split(/\s+/))
  } else {
    const lines = execFileSync('ipcs', ['-m', '-o'], { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' } }).split(
      '\n',
    )
    header = (lines.find((l) => /^T\s+ID\s+KEY\b/.test(l)) ?? '')
      .trim()
      .split(/\s+/)
      .map((c) => c.toLowerCase())
    rows = lines.map((l) => l.trim().split(/\s+/)).filter((f) => f[0] === 'm')
  }
  const idCol = header.indexOf(onLinux ? 'shmid' : 'id')
  const col = header.indexOf('nattch')
  if (idCol < 0 || col < 0) throw new Error(`no shmid/nattch columns in: ${header.join(' ')}`)
  const row = rows.find((f) => Number(f[idCol]) === id)
  return row === undefined ? undefined : Number(row[col])
}

/**
 * Code for a child script (`runNode`): tries to detach the memory under `message.data` (a
 * received payload whose text is `text`) with `ArrayBuffer.prototype.transfer`, and declares
 * `outcome`: `'no transfer()'` (Node 20), `'detached'` (the payload is then empty) or
 * `'refused'` (a TypeError, the payload intact: Node 24 and later refuse to detach an
 * untransferable pool). Anything else throws.
 *
 * ```ts
 * await runNode(`const m = q.receiveSync(); ${detachAttempt('m', 'first')}; console.log(outcome)`)
 * ```
 */
export function detachAttempt(message: string, text: string): string {
  return `
      const detach = ArrayBuffer.prototype.transfer
      let outcome = 'no transfer()'
      if (typeof detach === 'function') {
        try {
          const moved = detach.call(${message}.data.buffer)
          if (${message}.data.length !== 0 || moved.byteLength === 0) throw new Error('not detached')
          outcome = 'detached'
        } catch (e) {
          if (!(e instanceof TypeError) || ${message}.data.toString() !== ${JSON.stringify(text)}) throw e
          outcome = 'refused'
        }
      }`
}

/**
 * The code of the README's snippet marked `<!-- readme-snippet: NAME -->` (the ```ts block after
 * the marker), made runnable: `'ipckit'` becomes the built ESM entry (dist/index.mjs, which
 * `npm test` builds before ava runs) and each `[from, to]` of `replace` is applied. Write it to a
 * `.mts` file and run it with `node --import tsx` (the snippets use `using` and top-level await).
 *
 * ```ts
 * const code = readmeSnippet('posix-queue', [["'/jobs'", `'${name}'`]])
 * ```
 */
export function readmeSnippet(name: string, replace: Array<[string, string]> = []): string {
  const text = readFileSync(join(ROOT, 'README.md'), 'utf8')
  const marker = `<!-- readme-snippet: ${name} -->`
  const at = text.indexOf(marker)
  if (at < 0) throw new Error(`README.md has no ${marker}`)
  const start = text.indexOf('```ts\n', at)
  const end = text.indexOf('\n```', start + 6)
  if (start < 0 || end < 0) throw new Error(`no \`\`\`ts block after ${marker}`)
  const entry = join(ROOT, 'dist', 'index.mjs')
  if (!existsSync(entry)) throw new Error('dist/ is missing: run `npm run build` first')
  let code = text.slice(start + 6, end).replaceAll("from 'ipckit'", `from ${JSON.stringify(entry)}`)
  for (const [from, to] of replace) code = code.replaceAll(from, to)
  return code
}

let posixNameCounter = 0
/**
 * A POSIX IPC name (`/ipckit-t-<pid>-<n>-<tag>`) no test of another process uses; remove what
 * you make under it in `t.teardown`.
 *
 * ```ts
 * const name = posixName('copy')   // '/ipckit-t-4242-3-copy'
 * ```
 */
export function posixName(tag: string): string {
  posixNameCounter++
  return `/ipckit-t-${process.pid}-${posixNameCounter}-${tag}`
}
