/**
 * pidfd: a file descriptor for one process (`pidfd_open`), to signal it without the pid-reuse
 * race (`pidfd_send_signal`) and await its exit, whether or not it is a child, on the event
 * loop's own poller.
 *
 * @module
 */

import { AbortError, callNative, invalidArgValue, limitDetail, type ErrorDetail, type IpcError } from './errors'
import { adoptedFd, closeOwnedFd, ownFd } from './fd'
import { native } from './native'
import { Lifetime, waitFd } from './reactor'
import { toSignalNumber, type SignalLike } from './signals'
import { validateFd } from './unix-socket'
import { validateAbortSignal, validateInteger, validateOptions, validateTimeout } from './validate'

/**
 * How a process ended. `code` and `signal` are known only to its parent, and only until it
 * is reaped (Node.js reaps the children it spawns as soon as it sees them exit): for any
 * other process both are `null`.
 */
export interface ProcessExit {
  /** The exit code, if it exited by itself. */
  code: number | null
  /** The signal that ended it (`'SIGTERM'`), if one did. */
  signal: string | null
  /** Whether it left a core dump. */
  coreDumped: boolean
}

/** Options of {@link PidFd.waitExit}. */
export interface PidFdWaitOptions {
  /** Cancels the wait (the promise rejects with an `AbortError`). */
  signal?: AbortSignal
}

/** Options of {@link PidFd.waitExitSync}. */
export interface PidFdWaitSyncOptions {
  /** Give up after this many milliseconds (then `null`). Default `Infinity`. */
  timeoutMs?: number
}

const INT32_MAX = 0x7fff_ffff

function detail(pid: number | undefined) {
  return (err: IpcError): ErrorDetail => {
    const limit = limitDetail(
      err,
      err.syscall === 'waitid' ? 'waitid(P_PIDFD)' : 'pidfd_open',
      err.syscall === 'waitid' ? '5.4' : '5.3',
    )
    if (limit !== undefined) return { info: limit }
    return { info: pid === undefined ? undefined : `pid ${pid}` }
  }
}

const UNKNOWN: ProcessExit = Object.freeze({ code: null, signal: null, coreDumped: false })

/**
 * A pidfd (`pidfd_open(2)`): a descriptor that refers to one process for as long as it is open.
 *
 * A pid is only a number, which the kernel gives to a new process once the old one has exited
 * and been reaped: `kill(pid)` a moment too late hits a stranger. {@link sendSignal} through a
 * pidfd reaches the process it was opened for or fails with `ESRCH`, never another.
 * {@link waitExit} resolves when the process exits, for any process this one can see (not only
 * children, which is all `child.on('exit')` can do), by watching the descriptor on the event
 * loop (libuv's `uv_poll`: no thread, no thread hop).
 *
 * @example
 * ```ts
 * import { PidFd } from 'ipckit'
 *
 * using proc = PidFd.open(Number(readFileSync('/run/server.pid', 'utf8')))
 * proc.sendSignal('SIGTERM')        // reaches that process, or throws ESRCH: never another
 * await proc.waitExit({ signal: AbortSignal.timeout(10_000) })
 * ```
 */
export class PidFd implements Disposable, AsyncDisposable {
  /** The pid of the process, as this process's namespace numbers it. */
  readonly pid: number
  /** The descriptor (close-on-exec; owned by this object until {@link close}). */
  readonly fd: number
  readonly #life = new Lifetime('PidFd')

  private constructor(pid: number, fd: number) {
    this.pid = pid
    this.fd = fd
    ownFd(this, fd)
  }

  /**
   * Opens a pidfd for process `pid` (`pidfd_open`). Throws `ESRCH` (no such process), `EINVAL`
   * (a thread that does not lead its process), `EMFILE`; `ENOSYS` before Linux 5.3 and on
   * macOS (the message says which).
   *
   * @example
   * ```ts
   * const child = spawn('sleep', ['10'])
   * using proc = PidFd.open(child.pid!)
   * ```
   */
  static open(pid: number): PidFd {
    validateInteger(pid, 'pid', 1, INT32_MAX)
    const fd = callNative(() => native.pidfdOpen(pid), detail(pid))
    return new PidFd(pid, fd)
  }

  /**
   * Takes over a pidfd received from elsewhere (a socket message's `fds`, a parent's `stdio`):
   * checks that it is one (`EINVAL` otherwise) and reads its pid. Throws `ESRCH`
   * (`pidfd_send_signal`) if its process has exited and been reaped, `ERR_INVALID_ARG_VALUE`
   * if it lives in a pid namespace this process cannot see; the descriptor stays the caller's
   * when a check fails, and is this object's from then on otherwise.
   *
   * @example
   * ```ts
   * const { fds } = await sock.receive()
   * using proc = PidFd.fromFd(fds[0])
   * ```
   */
  static fromFd(fd: number): PidFd {
    validateFd(fd)
    const pid = callNative(() => native.pidfdAdopt(fd), detail(undefined))
    if (pid === null) {
      // No pid: the process was reaped (the kernel's own ESRCH says so), or it lives in a pid
      // namespace this one cannot see.
      callNative(
        () => native.pidfdSendSignal(fd, 0),
        () => ({ info: 'its process has exited and been reaped' }),
      )
      throw invalidArgValue('fd', fd, 'refers to a process outside this pid namespace')
    }
    const p = new PidFd(pid, fd)
    adoptedFd(fd)
    return p
  }

  /** Whether {@link close} was called. */
  get closed(): boolean {
    return this.#life.closed
  }

  /**
   * Sends a signal (`pidfd_send_signal`), `'SIGTERM'` by default, named or numbered as
   * {@link kill} takes them; `0` only checks that the process still runs. Throws `ESRCH` once
   * it has exited, even if its pid now belongs to another process, and `EPERM`.
   *
   * @example
   * ```ts
   * proc.sendSignal('SIGUSR2')
   * proc.sendSignal(0)          // throws ESRCH once it is gone
   * ```
   */
  sendSignal(signal: SignalLike = 'SIGTERM'): void {
    const n = toSignalNumber(signal, 'signal', true)
    this.#life.check()
    callNative(() => native.pidfdSendSignal(this.fd, n), detail(this.pid))
  }

  /**
   * Whether the process has exited (the descriptor is readable), without waiting.
   *
   * @example
   * ```ts
   * if (!proc.exited) proc.sendSignal('SIGKILL')
   * ```
   */
  get exited(): boolean {
    this.#life.check()
    return callNative(() => native.pidfdExited(this.fd))
  }

  /**
   * How the process ended, once it has: `null` while it runs; for a process that is not a
   * child of this one, or that has been reaped already, `code` and `signal` are `null`
   * (`waitid(P_PIDFD, WNOWAIT)`, which leaves the reaping to whoever does it: Node.js, for
   * the children it spawned).
   *
   * @example
   * ```ts
   * const exit = proc.exitStatus()     // { code: 0, signal: null, coreDumped: false }
   * ```
   */
  exitStatus(): ProcessExit | null {
    this.#life.check()
    if (!callNative(() => native.pidfdExited(this.fd))) return null
    const s = callNative(() => native.pidfdExitStatus(this.fd), detail(this.pid))
    if (s === null) return { ...UNKNOWN }
    return {
      code: s.code ?? null,
      signal: s.signal == null ? null : (native.signalName(s.signal) ?? String(s.signal)),
      coreDumped: s.coreDumped,
    }
  }

  /**
   * Resolves when the process exits, with {@link exitStatus}'s answer. Works for any process
   * (not only children); the wait watches the descriptor on the event loop itself, so it costs
   * no thread and never blocks it. `signal` and {@link close} cancel it (`AbortError`).
   *
   * @example
   * ```ts
   * const { code, signal } = await proc.waitExit({ signal: AbortSignal.timeout(5000) })
   * ```
   */
  async waitExit(options?: PidFdWaitOptions): Promise<ProcessExit> {
    const opts = validateOptions(options)
    const signal = opts.signal
    validateAbortSignal(signal, 'options.signal')
    this.#life.check()
    if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason })
    const now = this.exitStatus()
    if (now !== null) return now
    return waitFd(this.fd, false, () => this.exitStatus() ?? undefined, signal, [this.#life.waits])
  }

  /**
   * {@link waitExit}, blocking the calling thread; `null` if `timeoutMs` passed first.
   *
   * @example
   * ```ts
   * if (proc.waitExitSync({ timeoutMs: 100 }) === null) proc.sendSignal('SIGKILL')
   * ```
   */
  waitExitSync(options?: PidFdWaitSyncOptions): ProcessExit | null {
    const opts = validateOptions(options)
    const timeoutMs = validateTimeout(opts.timeoutMs, 'options.timeoutMs')
    this.#life.check()
    const exited = callNative(() => native.pidfdWaitSync(this.fd, timeoutMs === Infinity ? null : timeoutMs))
    return exited ? this.exitStatus() : null
  }

  /**
   * Closes the descriptor: a pending {@link waitExit} ends with an `AbortError`, later calls
   * throw `ERR_INVALID_STATE`. The process is not affected. Calling it again does nothing.
   */
  close(): void {
    const reason = this.#life.close()
    if (reason === undefined) return
    closeOwnedFd(this, this.fd, reason)
  }

  /** Calls {@link close}, for `using proc = PidFd.open(pid)`. */
  [Symbol.dispose](): void {
    this.close()
  }

  /**
   * {@link close}, then resolves once every wait it ended has settled (each pending promise
   * has rejected with its `AbortError`), for `await using`.
   *
   * @example
   * ```ts
   * {
   *   await using proc = PidFd.open(pid)
   *   // ...
   * }   // closed, and no wait of it is pending any more
   * ```
   */
  async [Symbol.asyncDispose](): Promise<void> {
    this.close()
    await this.#life.waits.settled()
  }
}
