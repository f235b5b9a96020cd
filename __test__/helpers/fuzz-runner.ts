/**
 * The fuzz runner, started by `__test__/fuzz.spec.ts` inside new IPC, PID, network and mount
 * namespaces (it refuses to run unless it is pid 1 there, alone in its session and process
 * group), with a private tmpfs as its working folder. It calls every target of
 * `fuzz-targets.ts` with random arguments of every JavaScript type (fast-check) and checks the
 * outcome: a result, or an error ipckit documents (TypeError/RangeError with Node's codes, an
 * IpcError, ERR_INVALID_STATE, AbortError...). A crash, a hang, an undocumented error or an fd
 * leak fails.
 *
 * Protocol with the spec: before each case a line `@ <target> <args>` on stdout (so the spec's
 * watchdog can name the case that hangs or crashes); `FAIL <target>` followed by fast-check's
 * report (seed, shrunk counterexample) for each failed target; a final `SUMMARY <json>` line.
 * Exit code 0 when every target passed.
 */

import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import {
  closeSync,
  fstatSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { Socket } from 'node:net'
import fc from 'fast-check'
import {
  BLOCKING_SYNC,
  CONSTANTS,
  FD_OWNERS,
  FIXTURE_CLASSES,
  PUBLIC_CONSTRUCTORS,
  instanceMethods,
  isClass,
  label,
  staticMethods,
} from './fuzz-targets'

// eslint-disable-next-line @typescript-eslint/no-require-imports
const ipckit = require('../../ts/index.ts') as typeof import('../../ts/index')

/**
 * Writes a line to stdout, synchronously (the spec's watchdog must see it before a hang), even
 * when the pipe was made non-blocking and is full (EAGAIN: wait a little and retry).
 */
function out(text: string): void {
  const buf = Buffer.from(text)
  let done = 0
  while (done < buf.length) {
    try {
      done += writeSync(1, buf, done)
    } catch (err) {
      if ((err as { code?: string }).code !== 'EAGAIN') throw err
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2)
    }
  }
}

const RUNS = Number(process.env.IPCKIT_FUZZ_RUNS ?? 40)
const SEED = process.env.IPCKIT_FUZZ_SEED === undefined ? undefined : Number(process.env.IPCKIT_FUZZ_SEED)
const SETTLE_MS = 40
const CANCEL_MS = 5_000

// ---- safety: refuse to run where random kill()/ipcrm()/bind() could reach anything else ----
function assertIsolated(): void {
  const stat = readFileSync('/proc/self/stat', 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const [pgrp, session] = [Number(fields[2]), Number(fields[3])]
  if (process.pid !== 1 || pgrp !== 1 || session !== 1) {
    throw new Error(
      `fuzz runner must be pid 1 of a new pid namespace, alone in its group (pid ${process.pid} pgrp ${pgrp} sid ${session})`,
    )
  }
  if (process.cwd() === '/' || !readFileSync('/proc/self/mounts', 'utf8').includes(` ${process.cwd()} tmpfs `)) {
    throw new Error(`fuzz runner's cwd must be a private tmpfs: ${process.cwd()}`)
  }
}

// ---- random values of every JS type ----
class FuzzTrap extends Error {}
const proxies = new WeakSet<object>()
function throwingProxy(target: object): object {
  const trap = () => {
    throw new FuzzTrap('proxy trap')
  }
  // fast-check's own printing of the value (counterexamples) is let through.
  const show = (key: unknown) => key === fc.toStringMethod || key === fc.asyncToStringMethod
  const name = Array.isArray(target)
    ? 'ThrowingProxy([])'
    : typeof target === 'function'
      ? 'ThrowingProxy(fn)'
      : 'ThrowingProxy({})'
  const p = new Proxy(target, {
    get: (_t, key) => (show(key) ? () => name : key === fc.cloneMethod ? undefined : trap()),
    has: (_t, key) => show(key) || (key === fc.cloneMethod ? false : trap()),
    ownKeys: trap,
    getOwnPropertyDescriptor: trap,
    getPrototypeOf: trap,
    apply: trap,
    construct: trap,
  })
  proxies.add(p)
  return p
}

const noSlash = (s: string) => s.replaceAll('/', '_')
const OPTION_KEYS = [
  'abstract',
  'all',
  'backlog',
  'bigint',
  'count',
  'create',
  'credentials',
  'delta',
  'except',
  'exclusive',
  'fds',
  'from',
  'gid',
  'groups',
  'id',
  'index',
  'initTimeoutMs',
  'initial',
  'key',
  'maxBytes',
  'maxSize',
  'mode',
  'owner',
  'paused',
  'readonly',
  'replaceStale',
  'short',
  'signal',
  'size',
  'timeoutMs',
  'to',
  'truncate',
  'type',
  'uid',
  'undo',
  'value',
  'wait',
]
const WORDS = [
  '',
  'r',
  'w',
  'rw',
  'x',
  'dgram',
  'stream',
  'seqpacket',
  'msg',
  'sem',
  'shm',
  'all',
  'SIGUSR1',
  'SIGUSR2',
  'SIGTERM',
  'SIGKILL',
  'SIGSTOP',
  'SIGCHLD',
  'SIGWINCH',
  'SIGSEGV',
  'SIGRTMIN',
  'SIGRTMIN+1',
  'SIGRTMAX',
  'SIGRTMAX-1',
  'SIGRTMIN+99',
  'sigusr1',
  '0',
  '1',
  '-1',
  '0x10',
  '.',
  '..',
  'fz-sock',
  'fz-fifo',
  '\u0000',
  'é',
  '💥',
  'constructor',
  '__proto__',
  'toString',
]
const NUMBERS = [
  0,
  -0,
  1,
  -1,
  2,
  3,
  6,
  9,
  10,
  15,
  19,
  29,
  31,
  32,
  33,
  34,
  64,
  65,
  100,
  253,
  254,
  255,
  256,
  0o600,
  0o777,
  0o7777,
  4096,
  65535,
  65536,
  32767,
  32768,
  2 ** 31 - 1,
  2 ** 31,
  -(2 ** 31),
  2 ** 32 - 1,
  2 ** 32,
  2 ** 53,
  -(2 ** 53),
  Number.MAX_SAFE_INTEGER,
  Number.MAX_VALUE,
  Number.MIN_VALUE,
  Number.EPSILON,
  0.5,
  -0.5,
  1.5,
  NaN,
  Infinity,
  -Infinity,
]

const leaf: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(undefined, null, true, false),
  fc.constantFrom(...NUMBERS),
  fc.integer({ min: -3, max: 70 }),
  fc.integer(),
  fc.double(),
  fc.bigInt(),
  fc.constantFrom(0n, 1n, -1n, 2n ** 64n),
  fc.constantFrom(...WORDS),
  fc.string({ maxLength: 12 }).map(noSlash),
  fc.string({ unit: 'binary', maxLength: 8 }).map(noSlash),
  fc.constantFrom('sym', 'iter').map((k) => (k === 'sym' ? Symbol('fuzz') : Symbol.iterator)),
  fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a.map((b) => (b === 0x2f ? 0x5f : b)))),
  fc.constantFrom('i32', 'f64', 'u16', 'dv', 'ab', 'sab', 'empty').map((k) => {
    const ab = new ArrayBuffer(16)
    switch (k) {
      case 'i32':
        return new Int32Array([1, -1, 0, 7])
      case 'f64':
        return new Float64Array([NaN, 1.5])
      case 'u16':
        return new Uint16Array(ab, 2, 3)
      case 'dv':
        return new DataView(ab, 4)
      case 'ab':
        return ab
      case 'sab':
        return new SharedArrayBuffer(8)
      default:
        return new Uint8Array(0)
    }
  }),
  fc.constantFrom('fn', 'async', 'throws', 'arrow').map((k) => {
    switch (k) {
      case 'fn':
        return function fuzzFn() {
          return 1
        }
      case 'async':
        return async () => 2
      case 'throws':
        return () => {
          throw new FuzzTrap('callback')
        }
      default:
        return () => undefined
    }
  }),
  fc
    .constantFrom('aborted', 'live', 'timeout')
    .map((k) =>
      k === 'aborted' ? AbortSignal.abort() : k === 'live' ? new AbortController().signal : AbortSignal.timeout(5),
    ),
  fc.constantFrom('obj', 'arr', 'fn').map((k) => throwingProxy(k === 'arr' ? [] : k === 'fn' ? () => 0 : {})),
  fc.constantFrom('date', 'regexp', 'map', 'url', 'err', 'promise', 'nullproto').map((k) => {
    switch (k) {
      case 'date':
        return new Date(0)
      case 'regexp':
        return /x/
      case 'map':
        return new Map([[1, 2]])
      case 'url':
        return pathToFileURL(`${process.cwd()}/fz-url`)
      case 'err':
        return new Error('x')
      case 'promise':
        return Promise.resolve(1)
      default:
        return Object.create(null)
    }
  }),
)
/** Values a caller would plausibly pass, so that calls also get past validation. */
const plausible: fc.Arbitrary<unknown> = fc.oneof(
  fc.integer({ min: 0, max: 8 }),
  fc.constantFrom(0, 1, 2, 4096, 0o600, -1, 10),
  fc.constantFrom(
    'r',
    'w',
    'dgram',
    'seqpacket',
    'stream',
    'msg',
    'sem',
    'shm',
    'SIGUSR2',
    'SIGWINCH',
    'fz-path',
    'hello',
  ),
  fc.constantFrom(true, false, undefined),
  fc.uint8Array({ maxLength: 16 }).map((a) => Buffer.from(a.map((b) => (b === 0x2f ? 0x5f : b)))),
  fc.array(
    fc.record(
      {
        index: fc.integer({ min: 0, max: 2 }),
        delta: fc.integer({ min: -1, max: 1 }),
        undo: fc.boolean(),
        wait: fc.boolean(),
      },
      { requiredKeys: ['index', 'delta'] },
    ),
    { minLength: 1, maxLength: 2 },
  ),
  fc.dictionary(
    fc.constantFrom(...OPTION_KEYS),
    fc.oneof(fc.integer({ min: -1, max: 4096 }), fc.boolean(), fc.constantFrom('fz-path', 'SIGUSR2', undefined)),
    { maxKeys: 3 },
  ),
)
const shallow = fc.oneof(
  { weight: 4, arbitrary: leaf },
  { weight: 4, arbitrary: plausible },
  fc.array(leaf, { maxLength: 4 }),
  fc.dictionary(fc.constantFrom(...OPTION_KEYS), leaf, { maxKeys: 4 }),
)
/** Any value: leaves, arrays and plain objects (option bags with ipckit's option names) of them. */
export const anyValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 5, arbitrary: shallow },
  fc.array(shallow, { maxLength: 3 }),
  fc.dictionary(fc.oneof(fc.constantFrom(...OPTION_KEYS), fc.string({ maxLength: 6 })), shallow, { maxKeys: 5 }),
)
const argsArb = fc.array(anyValue, { maxLength: 4 })

// ---- fixtures: a fresh object per case for each class ----
type Closable = { close(): unknown }
interface Fixture {
  target: object
  /** Cancels pending waits (close()). */
  cancel(): void
  /** Full cleanup (remove kernel objects, close every fd). */
  dispose(): void
}
const quiet = (fn: () => unknown) => {
  try {
    const r = fn() as unknown
    if (r instanceof Promise) r.catch(() => undefined)
  } catch {
    /* already closed or removed */
  }
}
function sysv<T extends { remove(): unknown; close(): unknown }>(obj: T, prep?: (o: T) => void): Fixture {
  prep?.(obj)
  return {
    target: obj,
    cancel: () => quiet(() => obj.close()),
    dispose: () => {
      quiet(() => obj.remove())
      quiet(() => obj.close())
    },
  }
}
let abstractCounter = 0
const FIXTURES: Record<string, () => Fixture> = {
  MessageQueue: () => sysv(ipckit.MessageQueue.create(), (q) => q.sendSync('fuzz', { type: 1 })),
  SemaphoreSet: () => sysv(ipckit.SemaphoreSet.create({ count: 2, initial: [1, 0] })),
  Semaphore: () => sysv(ipckit.Semaphore.open(ipckit.IPC_PRIVATE, { create: true, initial: 1 })),
  Mutex: () => sysv(ipckit.Mutex.open(ipckit.IPC_PRIVATE, { create: true })),
  MutexGuard: () => {
    const m = sysv(ipckit.Mutex.open(ipckit.IPC_PRIVATE, { create: true }))
    const guard = (m.target as ReturnType<typeof ipckit.Mutex.open>).tryLock()!
    return { target: guard, cancel: m.cancel, dispose: () => (quiet(() => guard.unlock()), m.dispose()) }
  },
  SharedMemory: () => sysv(ipckit.SharedMemory.create({ size: 4096 })),
  SharedMemoryView: () => {
    const shm = sysv(ipckit.SharedMemory.create({ size: 4096 }))
    const view = (shm.target as ReturnType<typeof ipckit.SharedMemory.create>).attach()
    return { target: view, cancel: shm.cancel, dispose: () => (quiet(() => view.detach()), shm.dispose()) }
  },
  PipeReadable: () => pipeFixture('readable'),
  PipeWritable: () => pipeFixture('writable'),
  UnixDatagramSocket: () => pairFixture('dgram'),
  UnixSeqpacketSocket: () => pairFixture('seqpacket'),
  UnixSeqpacketServer: () => {
    const server = ipckit.UnixSeqpacketServer.listen({ abstract: `fz-server-${++abstractCounter}` })
    return { target: server, cancel: () => quiet(() => server.close()), dispose: () => quiet(() => server.close()) }
  },
  SignalWatcher: () => {
    const w = ipckit.watchSignals(['SIGWINCH', 'SIGUSR2'])
    return { target: w, cancel: () => quiet(() => w.close()), dispose: () => quiet(() => w.close()) }
  },
  // POSIX queues live in the runner's IPC namespace; semaphores and shared memory objects in
  // /dev/shm, which is shared: their names are unique to this run (random names cannot reach
  // them: they hold no '/'), and they are unlinked by name, which works after the case closed
  // them.
  PosixMessageQueue: () =>
    posixFixture(ipckit.PosixMessageQueue, (name) => {
      const q = ipckit.PosixMessageQueue.open(name, { exclusive: true, maxMessages: 4, messageSize: 64 })
      q.sendSync('fuzz')
      return q
    }),
  PosixSemaphore: () =>
    posixFixture(ipckit.PosixSemaphore, (name) => ipckit.PosixSemaphore.open(name, { exclusive: true, initial: 1 })),
  PosixSharedMemory: () =>
    posixFixture(ipckit.PosixSharedMemory, (name) =>
      ipckit.PosixSharedMemory.open(name, { size: 4096, exclusive: true }),
    ),
  // The abstract base: its methods on one of its kinds.
  MappedMemory: () => closing(ipckit.Memfd.create({ size: 4096 })),
  Memfd: () => closing(ipckit.Memfd.create({ size: 4096, name: 'fuzz' })),
  EventFd: () => closing(ipckit.EventFd.create({ initial: 1 })),
  // Duplex, so that every method has a ring to act on; one message waits to be received.
  Channel: () => {
    const ch = ipckit.Channel.create({ duplex: true, capacity: 4096 })
    ch.sendSync('fuzz')
    return closing(ch)
  },
  PidFd: () => {
    const child = spawn('sleep', ['30'], { stdio: 'ignore' })
    const proc = ipckit.PidFd.open(child.pid!)
    return {
      target: proc,
      cancel: () => quiet(() => proc.close()),
      dispose: () => (quiet(() => proc.close()), child.kill('SIGKILL')),
    }
  },
}
const RUN = randomBytes(4).toString('hex')
function posixFixture<T extends Closable>(cls: { unlink(name: string): void }, open: (name: string) => T): Fixture {
  const name = `/ipckit-fz-${RUN}-${++abstractCounter}`
  const obj = open(name)
  return {
    target: obj,
    cancel: () => quiet(() => obj.close()),
    dispose: () => {
      quiet(() => cls.unlink(name))
      quiet(() => obj.close())
    },
  }
}
function closing(obj: Closable & object): Fixture {
  return { target: obj, cancel: () => quiet(() => obj.close()), dispose: () => quiet(() => obj.close()) }
}
function pipeFixture(end: 'readable' | 'writable'): Fixture {
  const p = ipckit.pipe()
  p.writable.write('fuzz')
  const all = () => {
    for (const s of [p.readable, p.writable]) {
      s.on('error', () => undefined)
      quiet(() => s.close())
    }
  }
  return { target: p[end], cancel: all, dispose: all }
}
function pairFixture(kind: 'dgram' | 'seqpacket'): Fixture {
  const [a, b] = ipckit.socketpair(kind as 'dgram')
  b.sendSync('fuzz')
  const all = () => (quiet(() => a.close()), quiet(() => b.close()))
  return { target: a, cancel: all, dispose: all }
}

// ---- outcomes ----
const ARG_CODES: Record<string, string[]> = {
  TypeError: ['ERR_INVALID_ARG_TYPE', 'ERR_INVALID_ARG_VALUE', 'ERR_UNKNOWN_SIGNAL'],
  RangeError: ['ERR_OUT_OF_RANGE'],
  Error: ['ERR_INVALID_STATE', 'ERR_FEATURE_UNAVAILABLE_ON_PLATFORM', 'ERR_INVALID_ARG_VALUE'],
}
/** The error's outcome name if ipckit documents it, undefined if it does not. */
function documented(err: unknown): string | undefined {
  if (err instanceof FuzzTrap) return 'caller-threw'
  if (err instanceof ipckit.IpcError) {
    return typeof err.code === 'string' && err.errno < 0 && typeof err.syscall === 'string'
      ? `IpcError:${err.code}`
      : undefined
  }
  if (err instanceof ipckit.AbortError) return 'AbortError'
  if (!(err instanceof Error)) return undefined
  const code = (err as { code?: unknown }).code
  const kind =
    err instanceof TypeError
      ? 'TypeError'
      : err instanceof RangeError
        ? 'RangeError'
        : err.constructor === Error
          ? 'Error'
          : ''
  return typeof code === 'string' && ARG_CODES[kind]?.includes(code) ? `${kind}:${code}` : undefined
}
function describe(err: unknown): string {
  if (err instanceof Error)
    return `${err.constructor.name} code=${String((err as { code?: unknown }).code)}: ${err.stack}`
  return `non-Error thrown: ${typeof err} ${String(err)}`
}

class Violation extends Error {}
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))
const PENDING = Symbol('pending')
async function settle(
  p: Promise<unknown>,
  ms: number,
): Promise<{ ok: true; value: unknown } | { ok: false; err: unknown } | typeof PENDING> {
  let timer: NodeJS.Timeout | undefined
  const r = await Promise.race([
    p.then(
      (value) => ({ ok: true as const, value }),
      (err: unknown) => ({ ok: false as const, err }),
    ),
    new Promise<typeof PENDING>((res) => (timer = setTimeout(() => res(PENDING), ms))),
  ])
  clearTimeout(timer)
  return r
}

/** Closes whatever a call returned: kernel objects are removed, descriptors closed. */
async function disposeResult(value: unknown, depth = 0): Promise<void> {
  if (depth > 2 || value === null || (typeof value !== 'object' && typeof value !== 'function')) return
  if (Array.isArray(value)) {
    for (const v of value) await disposeResult(v, depth + 1)
    return
  }
  if (value instanceof Socket) {
    value.on('error', () => undefined)
    value.destroy()
    return
  }
  if (value instanceof ipckit.PipeReadable || value instanceof ipckit.PipeWritable) value.on('error', () => undefined)
  const v = value as Partial<Record<'remove' | 'close' | 'unlock' | 'detach' | 'return', () => unknown>>
  if (value instanceof ipckit.MutexGuard) quiet(() => v.unlock!())
  if (value instanceof ipckit.SharedMemoryView) quiet(() => v.detach!())
  for (const cls of [
    ipckit.MessageQueue,
    ipckit.SemaphoreSet,
    ipckit.Semaphore,
    ipckit.Mutex,
    ipckit.SharedMemory,
    ipckit.PosixSharedMemory,
    ipckit.PosixMessageQueue,
    ipckit.PosixSemaphore,
  ]) {
    if (value instanceof cls) quiet(() => v.remove!())
  }
  if (typeof v.close === 'function') quiet(() => (v as Closable).close())
  if (Object.getPrototypeOf(value) === Object.prototype) {
    for (const k of Object.keys(value)) await disposeResult((value as Record<string, unknown>)[k], depth + 1)
  }
}

/** Checks a promise: settles, or is still waiting and then ends when its object is closed. */
async function checkPromise(p: Promise<unknown>, cancel: (() => void) | undefined, what: string): Promise<unknown> {
  let r = await settle(p, SETTLE_MS)
  if (r === PENDING) {
    if (!cancel) throw new Violation(`${what}: promise still pending after ${SETTLE_MS} ms, and nothing can cancel it`)
    cancel()
    r = await settle(p, CANCEL_MS)
    if (r === PENDING) throw new Violation(`${what}: HANG, promise still pending ${CANCEL_MS} ms after close()`)
  }
  if (!r.ok) {
    const o = documented(r.err)
    if (o === undefined) throw new Violation(`${what}: rejected with an undocumented error: ${describe(r.err)}`)
    count(what, `async ${o}`)
    return undefined
  }
  count(what, 'async result')
  return r.value
}

interface Target {
  name: string
  fixture?: string
  call(self: object | undefined, args: unknown[]): unknown
}

const outcomes: Record<string, Record<string, number>> = {}
function count(target: string, outcome: string): void {
  const t = (outcomes[target] ??= {})
  t[outcome] = (t[outcome] ?? 0) + 1
}

const baseFds = new Set(readdirSync('/proc/self/fd'))
/** For functions that take ownership of a descriptor: never hand them one this process uses. */
function sacrificeFd(args: unknown[]): number | undefined {
  const fd = args[0]
  if (typeof fd !== 'number' || !Number.isInteger(fd) || fd < 0) return undefined
  try {
    fstatSync(fd)
  } catch {
    return undefined
  }
  const mine = openSync('/dev/null', 'r')
  args[0] = mine
  return mine
}

function cleanCwd(): void {
  for (const name of readdirSync('.')) rmSync(name, { recursive: true, force: true })
}

let caseNo = 0
const failed: string[] = []
async function runCase(target: Target, input: unknown[]): Promise<void> {
  caseNo++
  const args = [...input]
  const blocking = BLOCKING_SYNC[target.name]
  if (blocking) {
    const opt = args[blocking.index]
    if (opt === undefined) args[blocking.index] = { ...blocking.force }
    else if (typeof opt === 'object' && opt !== null && !proxies.has(opt) && !Array.isArray(opt)) {
      // Any object is accepted as options (as Node.js does): a DataView or a Map gets the key too.
      if ([Object.prototype, null].includes(Object.getPrototypeOf(opt)))
        args[blocking.index] = { ...opt, ...blocking.force }
      else Object.assign(opt, blocking.force)
    }
  }
  const sacrificed = FD_OWNERS.includes(target.name) ? sacrificeFd(args) : undefined
  out(`@ ${target.name} ${fc.stringify(args).slice(0, 400).replaceAll('\n', ' ')}\n`)
  const fixture = target.fixture ? FIXTURES[target.fixture]!() : undefined
  try {
    let value: unknown
    try {
      value = target.call(fixture?.target, args)
    } catch (err) {
      const o = documented(err)
      if (o === undefined) throw new Violation(`${target.name} threw an undocumented error: ${describe(err)}`)
      count(target.name, o)
      return
    }
    if (value instanceof Promise) {
      const p = value
      value = undefined
      value = await checkPromise(p, fixture?.cancel, target.name)
    } else count(target.name, 'result')
    // An iterator handed back: take one step (it may wait: closing its object, or the
    // iterator itself when it has close(), must end it), then end it.
    const it = value as Partial<AsyncIterator<unknown> & Closable> | undefined
    if (
      it &&
      typeof it.next === 'function' &&
      typeof it.return === 'function' &&
      Symbol.asyncIterator in (it as object)
    ) {
      const cancel = fixture?.cancel ?? (typeof it.close === 'function' ? () => quiet(() => it.close!()) : undefined)
      await disposeResult(
        await checkPromise(
          Promise.resolve().then(() => it.next!()),
          cancel,
          `${target.name}().next()`,
        ),
      )
      await checkPromise(
        Promise.resolve().then(() => it.return!()),
        cancel,
        `${target.name}().return()`,
      )
    }
    await disposeResult(value)
  } finally {
    fixture?.dispose()
    if (sacrificed !== undefined) quiet(() => closeSync(sacrificed))
    cleanCwd()
  }
}

function targets(): Target[] {
  const list: Target[] = []
  for (const [name, value] of Object.entries(ipckit)) {
    if (CONSTANTS.includes(name)) continue
    if (isClass(value)) {
      const cls = value as unknown as Record<string, (...a: unknown[]) => unknown> & { prototype: object }
      if (PUBLIC_CONSTRUCTORS.includes(name)) {
        list.push({ name: `new ${name}`, call: (_s, args) => new (value as new (...a: unknown[]) => unknown)(...args) })
      }
      for (const s of staticMethods(cls))
        list.push({ name: label(name, s, true), call: (_s, args) => cls[s]!(...args) })
      const methods = instanceMethods(cls)
      if (methods.length > 0 && !(name in FIXTURES))
        throw new Error(`no fuzz fixture for class ${name}: add one to FIXTURES`)
      for (const m of methods) {
        list.push({
          name: label(name, m),
          fixture: name,
          call: (self, args) => (self as Record<string | symbol, (...a: unknown[]) => unknown>)[m]!(...args),
        })
      }
    } else if (typeof value === 'function') {
      list.push({ name, call: (_s, args) => (value as (...a: unknown[]) => unknown)(...args) })
    }
  }
  return list
}

/**
 * The TypeScript loader this runs under (tsx) starts esbuild the first time it finds no cached
 * transform of a module: a worker thread and a child process, whose epoll, eventfd, pipe,
 * socket and /dev/null descriptors stay open for the life of the process (a later transform
 * adds none). Started during the cases, they were counted as leaked (a CI run on Node 26:
 * 8 more descriptors, that set). Starting it here, with a module of this run's own, which no
 * cache holds, makes them part of the baseline. Not under another loader.
 */
function startTranspiler(): void {
  if (require.extensions['.ts'] === undefined) return
  const dir = mkdtempSync(join(tmpdir(), 'ipckit-fuzz-tsx-'))
  try {
    const file = join(dir, 'start.ts')
    writeFileSync(file, `export const run: string = '${RUN}-${process.pid}-${Date.now()}'\n`)
    require(file)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

async function main(): Promise<void> {
  assertIsolated()
  process.on('unhandledRejection', (err) => {
    out(`FAIL unhandled rejection during case ${caseNo}\n${describe(err)}\n`)
    failed.push(`unhandled rejection during case ${caseNo}`)
  })
  if (Object.keys(FIXTURES).sort().join() !== [...FIXTURE_CLASSES].sort().join()) {
    throw new Error(`FIXTURES (${Object.keys(FIXTURES)}) and FIXTURE_CLASSES (${FIXTURE_CLASSES}) differ`)
  }
  // Warm up: threads, handlers and fds a first use creates are part of the baseline.
  for (const make of Object.values(FIXTURES)) make().dispose()
  startTranspiler()
  await sleep(50)
  const fdsBefore = readdirSync('/proc/self/fd').length
  const only = process.env.IPCKIT_FUZZ_ONLY
  const list = targets().filter((t) => only === undefined || new RegExp(only).test(t.name))
  const started = Date.now()
  for (const target of list) {
    try {
      await fc.assert(
        fc.asyncProperty(argsArb, (args) => runCase(target, args)),
        { numRuns: RUNS, seed: SEED, includeErrorInReport: true, interruptAfterTimeLimit: 60_000 },
      )
    } catch (err) {
      failed.push(target.name)
      out(
        `FAIL ${target.name}\n${err instanceof Error ? (process.env.IPCKIT_FUZZ_STACK ? err.stack : err.message) : String(err)}\n`,
      )
    }
  }
  // The last cases' objects may still be closing (cancelled waits report back, handles close
  // asynchronously), later on a busy machine: wait for the count to come back, 10 s at most.
  // A descriptor really leaked stays open.
  let fds = readdirSync('/proc/self/fd')
  for (const end = Date.now() + 10_000; fds.length - fdsBefore > 4 && Date.now() < end;) {
    await sleep(50)
    fds = readdirSync('/proc/self/fd')
  }
  const fdGrowth = fds.length - fdsBefore
  if (fdGrowth > 4) {
    const extra = fds
      .filter((fd) => !baseFds.has(fd))
      .map((fd) => {
        try {
          return `${fd}->${readlinkSync(`/proc/self/fd/${fd}`)}`
        } catch {
          return fd
        }
      })
    out(`FAIL fd leak: ${fdsBefore} descriptors before fuzzing, ${fds.length} after: ${extra.join(' ')}\n`)
    failed.push('fd leak')
  }
  const summary = {
    targets: list.map((t) => t.name),
    cases: caseNo,
    ms: Date.now() - started,
    fdGrowth,
    failed,
    outcomes,
  }
  out(`SUMMARY ${JSON.stringify(summary)}\n`)
  if (failed.length > 0) process.exitCode = 1
}

main().then(
  () => process.exit(),
  (err: unknown) => {
    out(`FAIL runner: ${describe(err)}\n`)
    process.exit(2)
  },
)
