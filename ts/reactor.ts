/**
 * The async model shared by every primitive.
 *
 * Two kinds of wait, one way to cancel them:
 *
 * - **A file descriptor** (a socket, a signal watch's pipe) is waited for on this thread's own
 *   event loop ({@link waitFd}): libuv's `uv_poll` reports it ready and the caller's promise
 *   settles in the same loop iteration, with no thread in between. The caller then retries its
 *   non-blocking call. Waiting takes nothing, so a cancelled fd wait settles at once.
 * - **A System V wait** (msgrcv, semop, futex) has no descriptor: it runs on a thread the addon
 *   owns, one thread per waited object (see `crates/ipckit/src/wait.rs`), never on the libuv
 *   threadpool, and its result comes back through one native `Reactor` per JavaScript
 *   environment ({@link startWait}). A cancelled thread wait rejects with an
 *   {@link AbortError} only once the native side has confirmed that it took nothing; a result
 *   that raced the cancel is delivered instead, so nothing taken is ever dropped.
 *
 * An `AbortSignal`, `close()` of the object waited on ({@link WaitGroup.cancelAll}) or the end
 * of an iteration cancel either kind. The event loop stays alive exactly while waits are
 * pending.
 *
 * @internal
 * @module
 */

import { AbortError, IpcError, type CodedError, fromNative, invalidState } from './errors'
import { native, type Reactor, type SysErrorInfo } from './native'

type Settle = (error: SysErrorInfo | null, value: number | null, data: Buffer | null) => void

/**
 * Pending thread waits by wait id: the id is an index into this table plus one, and a slot
 * is reused once its wait settled (a Map keyed by ever new ids spends its time rehashing).
 */
const settlers: (Settle | undefined)[] = []
const freeSlots: number[] = []
let threadWaits = 0
let reactor: Reactor | undefined

function dispatch(waitId: number, error: SysErrorInfo | null, value: number | null, data: Buffer | null): void {
  const settle = settlers[waitId - 1]
  if (settle === undefined) return
  settlers[waitId - 1] = undefined
  freeSlots.push(waitId - 1)
  if (--threadWaits === 0) reactor?.unref()
  settle(error, value, data)
}

function getReactor(): Reactor {
  reactor ??= new native.Reactor(dispatch)
  return reactor
}

/** Number of waits started and not yet settled in this environment (for tests). */
export function pendingWaits(): number {
  return threadWaits + fdWaits
}

/** A pending wait as its {@link WaitGroup}s see it. */
interface Cancellable {
  /** Cancels the wait; `reason` becomes the `cause` of its {@link AbortError}. */
  cancel(reason: unknown): void
}

/**
 * The pending waits of one owner (a queue, an iterator), so that all of them can be cancelled
 * at once, each with a reason that becomes the `cause` of its {@link AbortError}.
 */
export class WaitGroup {
  /** In no order (removal swaps the last one in): usually one or none. */
  readonly #items: Cancellable[] = []
  readonly #whenIdle: Array<() => void> = []

  /** @internal */
  add(wait: Cancellable): void {
    this.#items.push(wait)
  }

  /** @internal */
  remove(wait: Cancellable): void {
    const items = this.#items
    const at = items.lastIndexOf(wait)
    if (at < 0) return
    const last = items.pop()!
    if (at < items.length) items[at] = last
    if (items.length === 0 && this.#whenIdle.length > 0) for (const resolve of this.#whenIdle.splice(0)) resolve()
  }

  /**
   * Resolves once no wait of this group is pending: after `cancelAll`, once every cancelled
   * wait has confirmed that it took nothing and its promise has rejected (for
   * `Symbol.asyncDispose`).
   */
  async settled(): Promise<void> {
    if (this.#items.length > 0) await new Promise<void>((resolve) => this.#whenIdle.push(resolve))
    // One turn of the event loop: the promises the public methods returned (which await the
    // waits' own) have settled too when this resolves.
    await new Promise<void>((resolve) => setImmediate(resolve))
  }

  /** Pending waits of this group. */
  get size(): number {
    return this.#items.length
  }

  /** Cancels every pending wait of this group with `reason`. */
  cancelAll(reason: unknown): void {
    for (const wait of [...this.#items]) wait.cancel(reason)
  }
}

/**
 * The open-or-closed state every handle class keeps, one copy of its rules: {@link check}
 * throws `ERR_INVALID_STATE` once closed; {@link close} (idempotent) marks it closed and ends
 * the pending waits of {@link waits} with an `AbortError` whose `cause` says the handle was
 * closed; `waits.settled()` is what `Symbol.asyncDispose` awaits. `name` is the class name
 * the errors use.
 *
 * @internal
 * @example
 * ```ts
 * readonly #life = new Lifetime('MessageQueue')
 * close(): void {
 *   const reason = this.#life.close()
 *   if (reason !== undefined) releaseWhatItOwns(reason)
 * }
 * ```
 */
export class Lifetime {
  /** Whether {@link close} was called. */
  closed = false
  /** The handle's pending waits, which {@link close} cancels. */
  readonly waits = new WaitGroup()

  constructor(readonly name: string) {}

  /** Throws `ERR_INVALID_STATE` (`<name> is closed`) once closed. */
  check(): void {
    if (this.closed) throw invalidState(`${this.name} is closed`)
  }

  /**
   * Throws the `AbortError` a wait that {@link close} ended rejects with, once closed: for a
   * loop that waited for readiness and is about to try again.
   */
  checkAfterWait(): void {
    if (this.closed) throw new AbortError(undefined, { cause: invalidState(`${this.name} was closed while waiting`) })
  }

  /**
   * Marks the handle closed and cancels its pending waits: the reason they were cancelled
   * with (`<name> was closed while waiting`), for whatever the handle releases next; `undefined`
   * when it was closed already (then nothing is to be done).
   */
  close(): CodedError | undefined {
    if (this.closed) return undefined
    this.closed = true
    const reason = invalidState(`${this.name} was closed while waiting`)
    this.waits.cancelAll(reason)
    return reason
  }
}

/** A pending thread wait: the promise's settle functions and how it was cancelled. */
class ThreadWait implements Cancellable {
  /** Why it was cancelled (an abort's or a group's reason), once it was. */
  reason: unknown
  cancelled = false
  constructor(
    readonly id: number,
    readonly groups: readonly WaitGroup[],
    readonly signal: AbortSignal | undefined,
  ) {}

  cancel(reason: unknown): void {
    if (this.cancelled) return
    this.cancelled = true
    this.reason = reason
    reactor?.cancel(this.id)
  }

  /** Leaves the groups and the signal; done once, when the wait settles. */
  finish(onAbort: (() => void) | undefined): void {
    if (onAbort !== undefined) this.signal?.removeEventListener('abort', onAbort)
    for (const g of this.groups) g.remove(this)
  }
}

/**
 * Starts a native wait on an addon thread and returns its promise.
 *
 * @param start starts the native wait under the given id (throws only for a native error)
 * @param map turns the delivered value into the result
 * @param signal cancels the wait when aborted
 * @param groups owners whose `cancelAll` may cancel this wait
 */
export function startWait<T>(
  start: (reactor: Reactor, waitId: number) => void,
  map: (value: number | null, data: Buffer | null) => T,
  signal: AbortSignal | undefined,
  groups: readonly WaitGroup[],
): Promise<T> {
  const r = getReactor()
  const slot = freeSlots.length > 0 ? freeSlots.pop()! : settlers.length
  const wait = new ThreadWait(slot + 1, groups, signal)
  return new Promise<T>((resolve, reject) => {
    const onAbort = signal === undefined ? undefined : () => wait.cancel(signal.reason)
    settlers[slot] = (error, value, data) => {
      wait.finish(onAbort)
      if (error === null) {
        try {
          resolve(map(value, data))
        } catch (err) {
          reject(err)
        }
      } else if (error.code === 'ECANCELED') {
        reject(new AbortError(undefined, { cause: wait.reason }))
      } else {
        reject(new IpcError(error))
      }
    }
    for (const g of groups) g.add(wait)
    if (onAbort !== undefined) signal!.addEventListener('abort', onAbort, { once: true })
    if (++threadWaits === 1) r.ref()
    try {
      start(r, wait.id)
    } catch (err) {
      settlers[slot] = undefined
      freeSlots.push(slot)
      if (--threadWaits === 0) r.unref()
      wait.finish(onAbort)
      reject(fromNative(err))
    }
  })
}

// ---------------------------------------------------------------------------------------------
// Waits for a file descriptor, on this thread's event loop.

const READABLE = 1
const WRITABLE = 2

/**
 * One pending fd wait: `ready()` runs its attempt when the fd is ready and answers whether
 * the wait is over (settled either way); `fail(err)` rejects it.
 */
interface FdWaiter {
  ready(): boolean
  fail(error: unknown): void
}

/** Who waits on one fd, in arrival order. */
interface FdState {
  readers: FdWaiter[]
  writers: FdWaiter[]
}

const fdStates = new Map<number, FdState>()
let fdWaits = 0
let pollerReady = false

/**
 * Shared with the native poller, two words per fd: `[2 * fd]` the events waiters want now
 * (written here), `[2 * fd + 1]` the events libuv watches (written natively). After each
 * dispatch (its promise reactions included) the native side narrows the watch to what is
 * wanted, so a loop of receives costs no call to set the watch up and tear it down again.
 */
let shared = new Int32Array(0)

function ensureShared(fd: number): void {
  if (2 * fd + 1 < shared.length) return
  let length = Math.max(256, shared.length)
  while (length <= 2 * fd + 1) length *= 2
  const next = new Int32Array(length)
  next.set(shared)
  shared = next
  native.pollShare(Buffer.from(shared.buffer, shared.byteOffset, shared.byteLength))
}

function initPoller(): void {
  if (pollerReady) return
  native.pollInit(onFdReady)
  pollerReady = true
}

function wanted(state: FdState): number {
  return (state.readers.length > 0 ? READABLE : 0) | (state.writers.length > 0 ? WRITABLE : 0)
}

/** Runs the first waiter of `list` whose attempt succeeds; the others keep their place. */
function runFirst(list: FdWaiter[]): void {
  const w = list[0]
  if (w === undefined) return
  if (w.ready()) {
    list.shift()
    fdWaits--
  }
}

/**
 * Called by libuv (through the native poller) when `fd` is ready: the first waiter of each
 * ready direction tries its operation (the others wait for the next report: libuv reports a
 * ready fd again on every loop iteration while it stays ready). A negative `events` is a
 * polling error: every waiter tries, and learns the error from its own operation.
 */
function onFdReady(fd: number, events: number): void {
  const state = fdStates.get(fd)
  if (state === undefined) return
  if (events < 0) {
    for (const list of [state.readers, state.writers]) {
      for (let i = 0; i < list.length;) {
        if (list[i]!.ready()) {
          list.splice(i, 1)
          fdWaits--
        } else i++
      }
    }
  } else {
    if (events & READABLE) runFirst(state.readers)
    if (events & WRITABLE) runFirst(state.writers)
  }
  shared[2 * fd] = wanted(state)
}

/** Makes libuv watch `fd` for what its waiters want now, at once (not after a dispatch). */
function narrow(fd: number, state: FdState): void {
  const events = wanted(state)
  shared[2 * fd] = events
  if (shared[2 * fd + 1] !== events) native.pollSet(fd, events)
}

/**
 * Waits, on this thread's event loop, until `fd` is readable (or `writable`) and `attempt`
 * succeeds: `attempt` runs (on this thread) each time the fd is reported ready, and the wait
 * ends with its first result other than `undefined` (readiness is a hint: another reader may
 * have been first). Waiters of one fd and direction try in arrival order. No thread is
 * involved, and waiting takes nothing, so a cancelled wait settles at once: it rejects with
 * an {@link AbortError} when `signal` aborts or a group cancels it; with the libuv error for
 * an fd that cannot be polled; with what `attempt` throws.
 */
export function waitFd<T>(
  fd: number,
  writable: boolean,
  attempt: () => T | undefined,
  signal: AbortSignal | undefined,
  groups: readonly WaitGroup[],
): Promise<T> {
  initPoller()
  ensureShared(fd)
  let state = fdStates.get(fd)
  if (state === undefined) {
    state = { readers: [], writers: [] }
    fdStates.set(fd, state)
  }
  const st = state
  return new Promise<T>((resolve, reject) => {
    const list = writable ? st.writers : st.readers
    const waiter = new FdWait(fd, st, list, attempt, resolve, reject, signal, groups)
    list.push(waiter)
    fdWaits++
    const need = writable ? WRITABLE : READABLE
    shared[2 * fd] = wanted(st)
    if ((shared[2 * fd + 1]! & need) === 0) {
      try {
        native.pollSet(fd, wanted(st))
      } catch (err) {
        list.pop()
        fdWaits--
        shared[2 * fd] = wanted(st)
        reject(fromNative(err))
        return
      }
    }
    for (const g of groups) g.add(waiter)
    if (signal !== undefined) signal.addEventListener('abort', waiter, { once: true })
  })
}

/** One pending fd wait (also the `abort` listener of its signal, as an EventListener object). */
class FdWait<T> implements FdWaiter, Cancellable {
  constructor(
    readonly fd: number,
    readonly state: FdState,
    readonly list: FdWaiter[],
    readonly attempt: () => T | undefined,
    readonly resolve: (value: T) => void,
    readonly reject: (error: unknown) => void,
    readonly signal: AbortSignal | undefined,
    readonly groups: readonly WaitGroup[],
  ) {}

  #finish(): void {
    this.signal?.removeEventListener('abort', this)
    for (const g of this.groups) g.remove(this)
  }

  ready(): boolean {
    let value: T | undefined
    try {
      value = this.attempt()
    } catch (err) {
      this.#finish()
      this.reject(err)
      return true
    }
    if (value === undefined) return false
    this.#finish()
    this.resolve(value)
    return true
  }

  fail(error: unknown): void {
    this.#finish()
    this.reject(error)
  }

  cancel(reason: unknown): void {
    const at = this.list.indexOf(this)
    if (at < 0) return
    this.list.splice(at, 1)
    fdWaits--
    narrow(this.fd, this.state)
    this.fail(new AbortError(undefined, { cause: reason }))
  }

  /** The signal's `abort` event. */
  handleEvent(): void {
    this.cancel(this.signal!.reason)
  }
}

/**
 * Forgets `fd` before it is closed: pending waits on it end with an {@link AbortError}
 * (`reason` as its cause), and libuv lets the descriptor go. Safe for fds never waited on.
 */
export function releaseFd(fd: number, reason: unknown): void {
  const state = fdStates.get(fd)
  if (state === undefined) return
  fdStates.delete(fd)
  const all = [...state.readers.splice(0), ...state.writers.splice(0)]
  fdWaits -= all.length
  shared[2 * fd] = 0
  native.pollRelease(fd)
  for (const w of all) w.fail(new AbortError(undefined, { cause: reason }))
}
