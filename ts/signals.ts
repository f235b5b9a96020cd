/**
 * Signals: send them with a payload (`kill`, `sigqueue`), watch them with the sender's pid and
 * uid (`watchSignals`), and know what each one does (`describeSignal`, `listSignals`,
 * `signalDisposition`, `ignoreSignal`, `restoreSignal`).
 *
 * ## How watching coexists with Node.js
 *
 * A watch installs an `SA_SIGINFO` handler that only writes a small record to a pipe of its
 * own (async-signal-safe), then calls the handler it replaced. Node's `process.on('SIGxxx')`
 * goes through libuv, whose handler neither chains nor survives a replacement, so ipckit
 * takes care of both orders:
 *
 * - `process.on` first, watch second: the watch chains to libuv's handler; both see every
 *   signal. When the watch ends, libuv's handler is put back.
 * - watch first, `process.on` second: libuv replaces the watch's handler; ipckit's own
 *   `newListener` listener (which runs right after Node's) reinstalls it at once, chaining to
 *   libuv's; both see every signal. Removing the last `process.on` listener makes libuv reset
 *   the signal to its default; ipckit's `removeListener` listener reinstalls the watch again.
 * - Node's built-in handlers that stand for a default action (`SIGINT`/`SIGTERM`: reset the
 *   terminal and die; `SIGUSR1`: start the inspector) are not chained, exactly as
 *   `process.on` replaces them: while a watch follows `SIGTERM`, the process does not die of
 *   it; when the watch ends, they come back.
 * - A handler installed behind Node's back (libuv's `SIGCHLD` watcher, which it installs on
 *   the first `child_process` spawn and resets to the default when the last child is gone;
 *   another addon) is noticed within 100 ms (or at the next `next()`), chained to, and ours
 *   reinstalled; deliveries in that window reach only the newcomer.
 *
 * ## Order of real-time signals
 *
 * The kernel hands queued real-time signals out in send order, but to whichever thread does
 * not block them, and Node.js runs about ten threads: two deliveries handled at the same
 * moment on two threads could be recorded swapped. So while an ordered watch (the default)
 * lives, each real-time signal it follows is blocked in every thread of the process but
 * ipckit's poller thread, where the handler then runs for every delivery, one after the other.
 * Threads that already exist get their mask changed by ipckit's private signal `SIGRTMAX-7`
 * (whose handler edits the mask the thread gets back when it returns, with `SA_RESTART`);
 * threads started later inherit the block from the thread that starts them. A thread caught
 * with every signal blocked for a moment (inside `pthread_create`, as libuv starts its pool or
 * a worker starts) gets the change the instant it unblocks, and the watch starts once every
 * thread has answered or sleeps so. When the last
 * ordered watch of the signal ends, it is unblocked again where ipckit blocked it. Nothing
 * else changes: the handler is the same, and it still chains. Cost: a delivery wakes the poller
 * thread, then the JavaScript thread (an unordered watch often records it on the JavaScript
 * thread itself); see bench/README.md.
 *
 * @module
 */

import { AbortError, callNative, invalidArgType, invalidArgValue, invalidState, unknownSignal } from './errors'
import { native } from './native'
import type { SignalWatch } from '../binding'
import { WaitGroup, releaseFd, waitFd } from './reactor'
import { optionalBoolean, validateAbortSignal, validateInteger, validateOptions } from './validate'

/**
 * A signal: a name as Node.js names it (`'SIGTERM'`), an alias of one (`'SIGIOT'`, and on
 * Linux `'SIGPOLL'`, `'SIGCLD'`, `'SIGUNUSED'`), a real-time signal as `'SIGRTMIN+N'` /
 * `'SIGRTMAX-N'`, or a number.
 */
export type SignalLike = string | number

/** One delivered signal, as {@link watchSignals} reports it. */
export interface SignalEvent {
  /** Its name (`'SIGUSR1'`, `'SIGRTMIN+3'`). */
  name: string
  /** Its number. */
  number: number
  /** The sender's pid; `undefined` when the kernel sent it (a fault, a timer, a terminal). */
  pid: number | undefined
  /** The sender's real uid; `undefined` as for `pid`. */
  uid: number | undefined
  /**
   * The platform's raw `si_code`. On Linux: `0` sent by `kill` (`SI_USER`), `-1` by
   * `sigqueue` (`SI_QUEUE`), `-6` by `tgkill` (`SI_TKILL`), `128` by the kernel
   * (`SI_KERNEL`), or a signal-specific code. macOS numbers them differently (`SI_USER` is
   * `0x10001` there).
   */
  code: number
  /**
   * The `sigqueue` payload, or the value of a POSIX message queue notification
   * (`PosixMessageQueue.notify`); `undefined` for other signals.
   */
  value: number | undefined
}

/** What a signal does to a process that neither catches nor ignores it (signal(7)). */
export type DefaultAction = 'terminate' | 'core' | 'ignore' | 'stop' | 'continue'

/** A signal as signal(7) describes it. */
export interface SignalDescription {
  /** The name (`'SIGABRT'` for 6, `'SIGIO'` for 29, `'SIGRTMIN+1'`). */
  name: string
  /** The number on this platform. */
  number: number
  /** The default action. */
  defaultAction: DefaultAction
  /** The description from signal(7). */
  description: string
  /**
   * Other names of the signal, which `kill`, `describeSignal` and `watchSignals` accept too:
   * `['SIGIOT']` for `SIGABRT`; on Linux `['SIGPOLL']` for `SIGIO`, `['SIGCLD']` for `SIGCHLD`,
   * `['SIGUNUSED']` for `SIGSYS`; `[]` for the others.
   */
  aliases: string[]
}

/** What a signal does to this process now. */
export type SignalDisposition = 'default' | 'ignore' | 'handler'

/** Options of {@link watchSignals}. */
export interface WatchSignalsOptions {
  /** Ends the watch: the pending `next()` rejects with an `AbortError`, dispositions come back. */
  signal?: AbortSignal
  /**
   * Record real-time signals in the order the kernel hands them out (default `true`): while
   * the watch lives, each real-time signal it follows is blocked in every thread of the
   * process but ipckit's poller thread, which takes every delivery one after the other (see
   * {@link SignalWatcher.ordered}). `false` leaves every thread's signal mask alone; two
   * deliveries handled at the same moment on two of Node's threads may then be recorded
   * swapped. Standard signals are never blocked: they do not queue.
   */
  ordered?: boolean
}

const [RTMIN, RTMAX, WAKE, MASK] = native.signalLimits() as [number, number, number, number]
const RECORD_LEN = native.SIGNAL_RECORD_LEN
const INT32_MIN = -0x8000_0000
const INT32_MAX = 0x7fff_ffff
/** How often a watcher checks that nobody replaced its handlers. */
const RECLAIM_MS = 100

/** Signals for which Node.js installs a handler standing for the default action. */
const NODE_DEFAULT_HANDLERS = new Set(['SIGINT', 'SIGTERM', 'SIGUSR1'])

/**
 * @internal A signal number from a name or number; `allowZero` for kill's existence probe
 * (pidfd.ts takes signals as `kill` does).
 */
export function toSignalNumber(value: unknown, name: string, allowZero: boolean): number {
  if (typeof value === 'number') {
    validateInteger(value, name, allowZero ? 0 : 1, RTMAX)
    return value
  }
  if (typeof value === 'string') {
    const n = native.signalNumber(value)
    if (n === null) throw unknownSignal(value)
    return n
  }
  throw invalidArgType(name, 'of type string or number', value)
}

/** A signal that has a name (the C library's private 32 and 33 do not). */
function toNamedSignal(value: unknown, name: string): { number: number; name: string } {
  const number = toSignalNumber(value, name, false)
  const signalName = native.signalName(number)
  if (signalName === null) throw unknownSignal(value)
  return { number, name: signalName }
}

/**
 * A signal a watch may follow and ignore/restore may change; a clear error for the others.
 * @internal Also used by `PosixMessageQueue.notify`.
 */
export function toChangeableSignal(value: unknown, name: string): { number: number; name: string } {
  const s = toNamedSignal(value, name)
  if (!native.signalAllowed(s.number)) {
    let reason: string
    if (s.name === 'SIGKILL' || s.name === 'SIGSTOP') reason = 'cannot be caught, watched or ignored'
    else if (s.number === WAKE) reason = `(${s.name}) is reserved by ipckit to interrupt its waits`
    else if (s.number === MASK) reason = `(${s.name}) is reserved by ipckit to keep real-time signals in order`
    else reason = 'is a fault signal Node.js handles itself; it cannot be watched or ignored'
    throw invalidArgValue(name, value, reason)
  }
  return s
}

/** Whether a watch should call the handler it replaces for `name`. */
function chainFor(name: string): boolean {
  return !(NODE_DEFAULT_HANDLERS.has(name) && process.listenerCount(name) === 0)
}

let processHooked = false

/**
 * Keeps watches working when `process.on('SIGxxx')` listeners come and go: libuv installs its
 * handler over ours on the first listener and resets the signal to its default on the last;
 * these listeners run right after Node's own and put ours back (a no-op for signals no watch
 * follows).
 */
function hookProcess(): void {
  if (processHooked) return
  processHooked = true
  const reclaim = (event: string | symbol, added: boolean) => {
    if (typeof event !== 'string' || !event.startsWith('SIG')) return
    const n = native.signalNumber(event)
    // A handler that replaced ours on 'newListener' is libuv's, for the listener being added
    // (not yet counted): always chain to it.
    if (n !== null && native.signalAllowed(n)) native.signalReclaim(n, added || chainFor(event))
  }
  process.on('newListener', (event: string | symbol) => reclaim(event, true))
  process.on('removeListener', (event: string | symbol) => reclaim(event, false))
}

function decode(buf: Buffer): SignalEvent {
  const number = buf.readInt32LE(0)
  const flags = buf.readInt32LE(20)
  const sender = (flags & 1) !== 0
  return {
    name: native.signalName(number) ?? String(number),
    number,
    pid: sender ? buf.readInt32LE(8) : undefined,
    uid: sender ? buf.readUInt32LE(12) : undefined,
    code: buf.readInt32LE(4),
    value: (flags & 2) !== 0 ? buf.readInt32LE(16) : undefined,
  }
}

const scratch = Buffer.alloc(RECORD_LEN)

/** Ends a pending wait without an error (close, return, dispose). */
const ITERATION_ENDED = Symbol('iteration ended')
/** Ends a pending wait because the watcher's AbortSignal fired. */
const ABORTED = Symbol('aborted')
const CREATE = Symbol('create')

/**
 * The async iterator {@link watchSignals} returns. Leaving a `for await` loop (or
 * {@link close}, `using`) ends the watch and gives each signal its previous disposition back.
 *
 * @example
 * ```ts
 * using watcher = watchSignals(['SIGUSR2'])
 * const { value } = await watcher.next()
 * console.log(`${value.name} from pid ${value.pid}`)
 * ```
 */
export class SignalWatcher implements AsyncIterableIterator<SignalEvent>, Disposable, AsyncDisposable {
  /** The names of the signals followed, in number order. */
  readonly signals: readonly string[]
  readonly #numbers: readonly number[]
  #watch: SignalWatch | null
  readonly #waits = new WaitGroup()
  #chain: Promise<unknown> = Promise.resolve()
  #inFlight = 0
  #abortReason: unknown
  #aborted = false
  #abortReported = false
  #cleanup: (() => void) | undefined
  readonly #reclaimTimer: NodeJS.Timeout

  /** @internal Use {@link watchSignals}. */
  constructor(token: typeof CREATE, watch: SignalWatch, numbers: number[], signal: AbortSignal | undefined) {
    if (token !== CREATE) throw new TypeError('Illegal constructor: use watchSignals()')
    // Handlers installed behind Node's back (libuv's SIGCHLD watcher, another addon) are
    // taken back within this period, or at the next next().
    this.#reclaimTimer = SignalWatcher.#startReclaiming(new WeakRef(this))
    this.#watch = watch
    this.#numbers = numbers
    this.signals = numbers.map((n) => native.signalName(n)!)
    if (signal !== undefined) {
      const onAbort = () => {
        this.#aborted = true
        this.#abortReason = signal.reason
        this.#end(ABORTED)
      }
      if (signal.aborted) onAbort()
      else {
        signal.addEventListener('abort', onAbort, { once: true })
        this.#cleanup = () => signal.removeEventListener('abort', onAbort)
      }
    }
  }

  /** Whether the watch has ended (closed, returned, aborted). */
  get closed(): boolean {
    return this.#watch === null
  }

  /**
   * Whether real-time signals are recorded in the order the kernel hands them out: send order
   * for one signal number, lower numbers first among those pending at once. `true` for an
   * ordered watch (the default) once every thread of the process but ipckit's poller
   * thread blocks each real-time signal it follows; `false` with `{ ordered: false }`, after
   * the watch ended, or when some thread could not be changed (one that blocks ipckit's
   * `SIGRTMAX-7` but not the watched signal and sleeps so, or that did not answer within 5 s),
   * when another handler took `SIGRTMAX-7`, or without `/proc`; and from the moment a
   * delivery was handled on another thread than ipckit's while the watch lived (a thread that
   * unblocked the signal on its own): it then stays `false`. A thread-directed signal
   * (`pthread_kill`) sent to one of Node's threads waits in that thread until the last
   * ordered watch of it ends. Watches of standard signals only are always ordered.
   *
   * @example
   * ```ts
   * using watcher = watchSignals('SIGRTMIN+1')
   * watcher.ordered   // true
   * ```
   */
  get ordered(): boolean {
    return this.#watch?.ordered ?? false
  }

  /**
   * Deliveries lost because this watcher fell more than a pipe's worth behind (about 43,000
   * deliveries; 2,700 where the pipe could not be enlarged to 1 MiB).
   */
  get dropped(): number {
    return this.#watch?.dropped ?? 0
  }

  /**
   * The next delivered signal. One already delivered is returned without a thread hop;
   * otherwise it waits without blocking the event loop (keeping it alive meanwhile). Calls
   * are answered in order.
   */
  next(): Promise<IteratorResult<SignalEvent>> {
    // With no call in flight, start at once: a delivery already recorded is then taken
    // synchronously, before next() returns.
    const result = this.#inFlight === 0 ? this.#next() : this.#chain.then(() => this.#next())
    this.#inFlight++
    this.#chain = result.then(
      () => void this.#inFlight--,
      () => void this.#inFlight--,
    )
    return result
  }

  async #next(): Promise<IteratorResult<SignalEvent>> {
    if (this.#aborted && !this.#abortReported) {
      this.#abortReported = true
      throw new AbortError(undefined, { cause: this.#abortReason })
    }
    const watch = this.#watch
    if (watch === null) return { done: true, value: undefined }
    this.#reclaim()
    for (;;) {
      if (callNative(() => watch.tryNext(scratch))) return { done: false, value: decode(scratch) }
      // Nothing recorded yet: wait, on this thread's event loop, until the pipe holds a
      // record, then take it here (readiness is a hint: look again if another call took it).
      // When the watch ends, the wait is cancelled with it at once (an AbortError here),
      // and the call settles as the end says: done, or the abort's error.
      try {
        await waitFd(watch.fd, false, () => true, undefined, [this.#waits])
      } catch (err) {
        if (!(err instanceof AbortError)) {
          this.#end(ITERATION_ENDED)
          throw err
        }
      }
      if (this.#watch === watch) continue
      if (this.#aborted && !this.#abortReported) {
        this.#abortReported = true
        throw new AbortError(undefined, { cause: this.#abortReason })
      }
      return { done: true, value: undefined }
    }
  }

  /**
   * The timer holds the watcher weakly (and is created outside the constructor's closures,
   * which hold `this`), so that a watcher dropped without close() can still be collected; its
   * native finalizer then ends the watch.
   */
  static #startReclaiming(ref: WeakRef<SignalWatcher>): NodeJS.Timeout {
    const timer = setInterval(() => {
      const watcher = ref.deref()
      if (watcher === undefined) clearInterval(timer)
      else watcher.#reclaim()
    }, RECLAIM_MS)
    return timer.unref()
  }

  #reclaim(): void {
    if (this.#watch === null) return
    for (const n of this.#numbers) {
      const name = native.signalName(n)!
      callNative(() => native.signalReclaim(n, chainFor(name)))
    }
  }

  /** Ends the watch (as `break` does); resolves `{ done: true }`. */
  async return(): Promise<IteratorResult<SignalEvent>> {
    this.close()
    return { done: true, value: undefined }
  }

  /** `for await (const s of watcher)`. */
  [Symbol.asyncIterator](): this {
    return this
  }

  /**
   * Ends the watch: no more signals are recorded, each signal no other watch follows gets
   * its previous disposition back, and a pending `next()` resolves `{ done: true }`.
   * Idempotent.
   */
  close(): void {
    this.#end(ITERATION_ENDED)
  }

  /** Calls {@link close}, for `using watcher = watchSignals(...)`. */
  [Symbol.dispose](): void {
    this.close()
  }

  /**
   * {@link close}, then resolves once a pending `next()` it ended has settled (resolved
   * `{ done: true }`), for `await using watcher = watchSignals(...)`.
   *
   * @example
   * ```ts
   * {
   *   await using watcher = watchSignals(['SIGUSR2'])
   *   // ...
   * }   // the previous dispositions are back, and no next() is pending
   * ```
   */
  async [Symbol.asyncDispose](): Promise<void> {
    this.close()
    await this.#waits.settled()
  }

  #end(reason: symbol): void {
    const watch = this.#watch
    if (watch === null) return
    this.#watch = null
    this.#cleanup?.()
    clearInterval(this.#reclaimTimer)
    this.#waits.cancelAll(reason)
    releaseFd(watch.fd, reason)
    watch.close()
  }
}

/**
 * Watches signals: an async iterator of every delivery, with the sender's pid and uid and the
 * `sigqueue` payload. The handlers are installed before this returns, so nothing sent
 * afterwards is missed. Several watchers of one signal each see every delivery. Standard
 * signals sent faster than they are handled coalesce (the kernel keeps one pending);
 * real-time signals queue, so none is lost, and are recorded in the order the kernel hands
 * them out (see `options.ordered` and {@link SignalWatcher.ordered}). See the module notes
 * for how this coexists with `process.on('SIGxxx')`: both see every signal, in either order
 * of setup.
 *
 * Refuses (`ERR_INVALID_ARG_VALUE`) `SIGKILL` and `SIGSTOP`, the fault signals Node.js keeps
 * (`SIGSEGV`, `SIGBUS`, `SIGFPE`, `SIGILL`), and `SIGRTMAX-6` and `SIGRTMAX-7`, which ipckit
 * uses internally;
 * unknown names throw `ERR_UNKNOWN_SIGNAL`. At most 128 watchers may be open in a process at
 * once: ipckit's own limit (the slots of the table its signal handler reads), not the
 * descriptor limit; beyond, an `IpcError` with `code: 'EMFILE'`, `syscall: 'watch'` and a
 * message that names it. Works in worker threads too (signals are process-wide).
 *
 * @example
 * ```ts
 * for await (const s of watchSignals(['SIGTERM', 'SIGUSR2'], { signal })) {
 *   console.log(`${s.name} from pid ${s.pid} (uid ${s.uid}), value ${s.value}`)
 *   if (s.name === 'SIGTERM') break   // SIGTERM's previous handler is back
 * }
 * ```
 */
export function watchSignals(
  signals: SignalLike | readonly SignalLike[],
  options?: WatchSignalsOptions,
): SignalWatcher {
  const list: readonly unknown[] = Array.isArray(signals) ? signals : [signals]
  if (list.length === 0) throw invalidArgValue('signals', signals, 'must name at least one signal')
  const named = list.map((s, i) => toChangeableSignal(s, Array.isArray(signals) ? `signals[${i}]` : 'signals'))
  const opts = validateOptions(options)
  validateAbortSignal(opts.signal, 'options.signal')
  const ordered = optionalBoolean(opts.ordered, 'options.ordered', true)
  const numbers = [...new Set(named.map((s) => s.number))].sort((a, b) => a - b)
  const noChain = named.filter((s) => !chainFor(s.name)).map((s) => s.number)
  hookProcess()
  const watch = callNative(() => new native.SignalWatch(numbers, noChain, ordered))
  return new SignalWatcher(CREATE, watch, numbers, opts.signal)
}

/**
 * Sends a signal (`kill(2)`), `'SIGTERM'` by default: to process `pid` if positive, to every
 * process of group `-pid` if negative, to the caller's process group if 0, to every process
 * the caller may signal if -1. Signal `0` sends nothing and only checks that the target
 * exists (`ESRCH` otherwise) and may be signalled (`EPERM` otherwise).
 *
 * @example
 * ```ts
 * kill(child.pid, 'SIGRTMIN+2')
 * kill(-groupId, 'SIGTERM')       // a whole process group
 * kill(pid, 0)                    // throws ESRCH if pid is gone
 * ```
 */
export function kill(pid: number, signal: SignalLike = 'SIGTERM'): void {
  validateInteger(pid, 'pid', INT32_MIN, INT32_MAX)
  const n = toSignalNumber(signal, 'signal', true)
  callNative(() => native.signalKill(pid, n))
}

/**
 * Sends a signal with an integer payload (`sigqueue(3)`); the receiver's watcher sees it as
 * `value`. Real-time signals queue (`EAGAIN` once the receiver's queue limit is reached);
 * standard ones coalesce while pending.
 *
 * @example
 * ```ts
 * sigqueue(pid, 'SIGRTMIN+1', 42)
 * ```
 */
export function sigqueue(pid: number, signal: SignalLike, value = 0): void {
  validateInteger(pid, 'pid', INT32_MIN, INT32_MAX)
  const n = toSignalNumber(signal, 'signal', true)
  validateInteger(value, 'value', INT32_MIN, INT32_MAX)
  callNative(() => native.signalQueue(pid, n, value))
}

/**
 * Name, number, default action and signal(7) description of a signal.
 *
 * @example
 * ```ts
 * describeSignal('SIGSEGV') // { name: 'SIGSEGV', number: 11, defaultAction: 'core', description: 'Invalid memory reference', aliases: [] }
 * describeSignal(29).name   // 'SIGIO'
 * describeSignal('SIGCLD')  // SIGCHLD's description (Linux), aliases: ['SIGCLD']
 * ```
 */
export function describeSignal(signal: SignalLike): SignalDescription {
  const { number } = toNamedSignal(signal, 'signal')
  return native.signalDescribe(number) as SignalDescription
}

/**
 * Every standard signal, then every real-time signal (`SIGRTMIN` .. `SIGRTMAX`), as
 * {@link describeSignal} describes them.
 *
 * @example
 * ```ts
 * const stoppers = listSignals().filter((s) => s.defaultAction === 'stop').map((s) => s.name)
 * ```
 */
export function listSignals(): SignalDescription[] {
  return native.signalList() as SignalDescription[]
}

/**
 * What a signal does to this process now: `'default'`, `'ignore'`, or `'handler'` (caught by
 * Node, by a watcher, or by anyone else).
 *
 * @example
 * ```ts
 * signalDisposition('SIGPIPE') // 'ignore' (Node.js ignores it)
 * ```
 */
export function signalDisposition(signal: SignalLike): SignalDisposition {
  const n = toSignalNumber(signal, 'signal', false)
  return callNative(() => native.signalDisposition(n)) as SignalDisposition
}

function checkChangeable(signal: SignalLike): { number: number; name: string } {
  const s = toChangeableSignal(signal, 'signal')
  if (process.listenerCount(s.name) > 0) {
    throw invalidState(`${s.name} has process.on() listeners; remove them before changing its disposition`)
  }
  return s
}

/**
 * Makes this process ignore a signal (`SIG_IGN`). Refused for the signals
 * {@link watchSignals} refuses, for a signal with `process.on` listeners
 * (`ERR_INVALID_STATE`), and while a watcher follows it (`EBUSY`).
 *
 * @example
 * ```ts
 * ignoreSignal('SIGHUP')   // keep running when the terminal goes away
 * ```
 */
export function ignoreSignal(signal: SignalLike): void {
  const s = checkChangeable(signal)
  callNative(() => native.signalIgnore(s.number))
}

/**
 * Gives a signal its default action back (`SIG_DFL`), with the same refusals as
 * {@link ignoreSignal}, and `SIGPIPE`, which Node.js needs ignored. For `SIGINT` and
 * `SIGTERM` this also drops Node's own handler (which resets the terminal before dying).
 *
 * @example
 * ```ts
 * restoreSignal('SIGHUP')
 * ```
 */
export function restoreSignal(signal: SignalLike): void {
  const s = checkChangeable(signal)
  if (s.name === 'SIGPIPE') throw invalidArgValue('signal', signal, 'must stay ignored in Node.js')
  callNative(() => native.signalSetDefault(s.number))
}

/**
 * `SIGRTMIN` and `SIGRTMAX` of this platform (the C library keeps a few below `SIGRTMIN`).
 *
 * @example
 * ```ts
 * const count = realtimeSignals.max - realtimeSignals.min + 1   // 31 with glibc
 * ```
 */
export const realtimeSignals = { min: RTMIN, max: RTMAX } as const
