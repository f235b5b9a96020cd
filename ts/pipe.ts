/**
 * Pipes and FIFOs: `pipe2`, `mkfifo`, and a FIFO `open` that blocks no thread of Node's.
 *
 * Both ends are Node streams ({@link PipeReadable}, {@link PipeWritable}) with backpressure, and
 * each has its descriptor in `.fd`, so it can be handed to `child_process.spawn`'s `stdio`.
 *
 * **Ends wrap lazily, so that a child gets a blocking descriptor.** A Node stream over a pipe
 * (libuv, like `net.Socket({ fd })`) sets `O_NONBLOCK` on the *file description*, which a child
 * that inherits the same end shares: a C program doing plain blocking `read()`/`write()` would
 * then see `EAGAIN`. So an end stays an untouched, blocking descriptor until the first read
 * (`'data'`, `read()`, `pipe()`, `for await`) or write; only then is it wrapped. Hand an end to a
 * child *instead of* using it: pass `end.fd` in `stdio`, then `end.close()` your copy (the other
 * end of a pipe is a separate file description, so using it in Node is fine).
 *
 * @example
 * ```ts
 * import { spawn } from 'node:child_process'
 * import { pipe } from 'ipckit'
 *
 * const { readable, writable } = pipe()
 * const child = spawn('my-c-tool', [], { stdio: ['ignore', 'inherit', 'inherit', writable.fd] })
 * writable.close()                       // the child has its copy; EOF comes when it exits
 * for await (const chunk of readable) process.stdout.write(chunk)
 * ```
 *
 * @module
 */

import { Socket } from 'node:net'
import { Readable, Writable, type ReadableOptions, type WritableOptions } from 'node:stream'
import { fileURLToPath } from 'node:url'

import { AbortError, answered, callNative, invalidArgType, invalidArgValue } from './errors'
import { native } from './native'
import { startWait } from './reactor'
import { validateAbortSignal, validateMode, validateOneOf, validateOptions } from './validate'

/** A file system path: a string, a Buffer (any bytes), or a `file:` URL. */
export type PathLike = string | Buffer | URL

/** Options of {@link openFifo}. */
export interface OpenFifoOptions {
  /** Cancels a pending open: it rejects with an `AbortError` and nothing is left open. */
  signal?: AbortSignal
}

/** The two ends of a pipe, from {@link pipe}. */
export interface Pipe {
  /** The read end. */
  readable: PipeReadable
  /** The write end. */
  writable: PipeWritable
}

/** Closes descriptors of ends that were dropped without `close()` (a safety net only). */
const orphans = new FinalizationRegistry<number>((fd) => {
  try {
    // (ipckit made it: `pipe2` or `open` of its own, never `fs`.)
    native.fdClose(fd)
  } catch {
    // already closed
  }
})

/** The path as the bytes the kernel takes; checks type and NUL bytes. */
function toPathBytes(path: unknown, name: string): Buffer {
  let bytes: Buffer
  if (typeof path === 'string') bytes = Buffer.from(path, 'utf8')
  else if (Buffer.isBuffer(path)) bytes = path
  else if (path instanceof URL) {
    if (path.protocol !== 'file:') throw invalidArgValue(name, path.href, "must be a URL with the 'file:' scheme")
    bytes = Buffer.from(fileURLToPath(path), 'utf8')
  } else throw invalidArgType(name, 'of type string or an instance of Buffer or URL', path)
  if (bytes.length === 0) throw invalidArgValue(name, path, 'must not be empty')
  if (bytes.includes(0)) throw invalidArgValue(name, path, 'must be a string, Uint8Array, or URL without null bytes')
  return bytes
}

/**
 * The read end of a pipe or FIFO: a `Readable` (with backpressure, async-iterable) whose
 * descriptor is {@link fd}. It wraps the descriptor in a libuv stream on the first read only,
 * so an end that is never read can be handed to a child as a blocking descriptor.
 *
 * @example
 * ```ts
 * const { readable, writable } = pipe()
 * writable.end('hello')
 * for await (const chunk of readable) console.log(chunk.toString())   // 'hello'
 * ```
 */
export class PipeReadable extends Readable implements Disposable, AsyncDisposable {
  #fd: number
  #socket: Socket | undefined

  /** @internal Use {@link pipe} or {@link openFifo}. */
  constructor(fd: number, options?: ReadableOptions) {
    super(options)
    this.#fd = fd
    orphans.register(this, fd, this)
    native.fdOwned(fd)
  }

  /**
   * The descriptor (`-1` once closed). Blocking and close-on-exec until the stream is first
   * read; pass it in `spawn`'s `stdio` before reading, then {@link close} this copy.
   * Keep this object while you use the number: an end dropped unclosed is closed when it is
   * garbage collected.
   */
  get fd(): number {
    return this.#fd
  }

  /** Whether the descriptor was wrapped in a libuv stream (which made it non-blocking). */
  get wrapped(): boolean {
    return this.#socket !== undefined
  }

  /** @internal */
  override _read(): void {
    if (this.#socket !== undefined) {
      this.#socket.resume()
      return
    }
    orphans.unregister(this)
    // The stream owns the descriptor now (Node.js closes it with its handle).
    native.fdDisowned(this.#fd)
    const socket = new Socket({ fd: this.#fd, readable: true, writable: false, allowHalfOpen: true })
    socket.on('data', (chunk: Buffer) => {
      if (!this.push(chunk)) socket.pause()
    })
    socket.on('end', () => this.push(null))
    socket.on('error', (err) => this.destroy(err))
    this.#socket = socket
  }

  /** @internal */
  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    closeEnd(this.#fd, this.#socket, this)
    this.#fd = -1
    callback(err)
  }

  /**
   * Closes this end (the same as `destroy()`); idempotent. The pipe's other end then sees EOF
   * (reading) or `EPIPE` (writing) once no other process holds this end either.
   *
   * @example
   * ```ts
   * const { readable } = pipe()
   * spawn('cat', [], { stdio: [readable.fd, 'inherit', 'inherit'] })
   * readable.close()
   * ```
   */
  close(): void {
    this.destroy()
  }

  /** Calls {@link close}, for `using r = (await openFifo(path, 'r'))`. */
  [Symbol.dispose](): void {
    this.close()
  }

  /**
   * {@link close}, then resolves once the descriptor is closed (`'close'`), for
   * `await using r = await openFifo(path, 'r')`.
   */
  override [Symbol.asyncDispose](): Promise<void> {
    return closeAndWait(this)
  }
}

/**
 * The write end of a pipe or FIFO: a `Writable` with backpressure (`write()` returns `false`
 * once the pipe and {@link writableHighWaterMark} are full; `'drain'` follows) whose descriptor
 * is {@link fd}. It wraps the descriptor in a libuv stream on the first write only. `end()`
 * closes the descriptor, so the reader sees EOF.
 *
 * @example
 * ```ts
 * const { readable, writable } = pipe()
 * if (!writable.write(bigBuffer)) await once(writable, 'drain')
 * writable.end()
 * ```
 */
export class PipeWritable extends Writable implements Disposable, AsyncDisposable {
  #fd: number
  #socket: Socket | undefined

  /** @internal Use {@link pipe} or {@link openFifo}. */
  constructor(fd: number, options?: WritableOptions) {
    super(options)
    this.#fd = fd
    orphans.register(this, fd, this)
    native.fdOwned(fd)
  }

  /**
   * The descriptor (`-1` once closed). Blocking and close-on-exec until the stream is first
   * written; pass it in `spawn`'s `stdio` before writing, then {@link close} this copy.
   * Keep this object while you use the number: an end dropped unclosed is closed when it is
   * garbage collected.
   */
  get fd(): number {
    return this.#fd
  }

  /** Whether the descriptor was wrapped in a libuv stream (which made it non-blocking). */
  get wrapped(): boolean {
    return this.#socket !== undefined
  }

  #wrap(): Socket {
    if (this.#socket !== undefined) return this.#socket
    orphans.unregister(this)
    // The stream owns the descriptor now (Node.js closes it with its handle).
    native.fdDisowned(this.#fd)
    const socket = new Socket({ fd: this.#fd, readable: false, writable: true })
    socket.on('error', (err) => this.destroy(err))
    this.#socket = socket
    return socket
  }

  /** @internal */
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    // One chunk at a time reaches the socket: this stream's buffer holds the rest, so
    // `write()` reports backpressure as soon as the pipe is full.
    this.#wrap().write(chunk, callback)
  }

  /** @internal */
  override _writev(
    chunks: Array<{ chunk: Buffer; encoding: BufferEncoding }>,
    callback: (error?: Error | null) => void,
  ): void {
    const socket = this.#wrap()
    socket.cork()
    for (let i = 0; i < chunks.length - 1; i++) socket.write(chunks[i]!.chunk)
    socket.write(chunks[chunks.length - 1]!.chunk, callback)
    socket.uncork()
  }

  /** @internal */
  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    closeEnd(this.#fd, this.#socket, this)
    this.#fd = -1
    callback(err)
  }

  /**
   * Closes this end at once (the same as `destroy()`; data not yet written is dropped, use
   * `end()` to flush first); idempotent.
   *
   * @example
   * ```ts
   * const { writable } = pipe()
   * spawn('my-tool', [], { stdio: ['ignore', writable.fd, 'inherit'] })
   * writable.close()
   * ```
   */
  close(): void {
    this.destroy()
  }

  /** Calls {@link close}, for `using w = (await openFifo(path, 'w'))`. */
  [Symbol.dispose](): void {
    this.close()
  }

  /**
   * {@link close}, then resolves once the descriptor is closed (`'close'`), for
   * `await using w = await openFifo(path, 'w')`. Data not yet written is dropped, as
   * with `close()`: `end()` and wait for `'finish'` to flush first.
   */
  [Symbol.asyncDispose](): Promise<void> {
    return closeAndWait(this)
  }
}

/** Closes `end` and resolves once it has emitted `'close'` (at once if it has). */
function closeAndWait(end: PipeReadable | PipeWritable): Promise<void> {
  return new Promise((resolve) => {
    if (end.closed) return resolve()
    end.once('close', () => resolve())
    end.close()
  })
}

function closeEnd(fd: number, socket: Socket | undefined, owner: object): void {
  if (socket !== undefined) {
    // Closes the descriptor (libuv closes it synchronously in uv_close).
    socket.destroy()
    return
  }
  if (fd < 0) return
  orphans.unregister(owner)
  // (ipckit made it: `pipe2` or `open` of its own, never `fs`.)
  native.fdClose(fd)
}

/**
 * Creates a pipe (`pipe2(O_CLOEXEC)`): `{ readable, writable }` streams over its two ends.
 *
 * Each end has `.fd` for `child_process.spawn`'s `stdio`; an end is wrapped in a libuv stream
 * (which makes its file description non-blocking) only when first used, so hand an end to a
 * child instead of using it, and `close()` your copy after spawning.
 *
 * @example
 * ```ts
 * const { readable, writable } = pipe()
 * writable.end('ping')
 * for await (const chunk of readable) console.log(String(chunk))   // 'ping'
 * ```
 */
export function pipe(): Pipe {
  const [r, w] = callNative(() => native.pipeCreate()) as [number, number]
  return { readable: new PipeReadable(r), writable: new PipeWritable(w) }
}

/**
 * Makes a FIFO (named pipe) at `path` (`mkfifo(3)`), with permission bits `mode` (default
 * `0o600`, less the process umask). Throws an `IpcError` with `syscall: 'mkfifo'`: `EEXIST`
 * when something is there, `ENOENT` when the folder is missing, `EACCES`, ...
 *
 * @example
 * ```ts
 * mkfifo('/tmp/app.fifo', 0o660)
 * ```
 */
export function mkfifo(path: PathLike, mode?: number): void {
  const bytes = toPathBytes(path, 'path')
  const m = validateMode(mode, 'mode', 0o600)
  callNative(() => native.fifoMake(bytes, m))
}

function fifoArgs(path: unknown, flags: unknown): { bytes: Buffer; write: boolean } {
  const bytes = toPathBytes(path, 'path')
  validateOneOf(flags, 'flags', ['r', 'w'] as const)
  return { bytes, write: flags === 'w' }
}

function endFor(fd: number, write: boolean): PipeReadable | PipeWritable {
  return write ? new PipeWritable(fd) : new PipeReadable(fd)
}

/**
 * Opens one end of a FIFO: `'r'` resolves to a {@link PipeReadable} once a writer has it open,
 * `'w'` to a {@link PipeWritable} once a reader has it open.
 *
 * While the peer is absent, the blocking `open(2)` waits on a thread the addon owns, never on
 * the event loop nor on the libuv threadpool (a plain `fs.promises.open` of a FIFO parks a
 * threadpool thread, and four of them stall every `fs` call). A write end whose reader is
 * already there opens at once, on this thread. `signal` cancels the wait: the promise rejects
 * with an `AbortError` and nothing is left open (an open that completes in the same instant is
 * closed again). A path that is not a FIFO rejects with `EINVAL`; a missing one with `ENOENT`
 * (`syscall: 'open'`). Like any pending I/O, a pending open keeps the process alive until it
 * resolves or is aborted.
 *
 * @example
 * ```ts
 * mkfifo('/tmp/app.fifo')
 * const readable = await openFifo('/tmp/app.fifo', 'r', { signal: AbortSignal.timeout(5000) })
 * for await (const chunk of readable) console.log(String(chunk))
 * ```
 */
export function openFifo(path: PathLike, flags: 'r', options?: OpenFifoOptions): Promise<PipeReadable>
export function openFifo(path: PathLike, flags: 'w', options?: OpenFifoOptions): Promise<PipeWritable>
export function openFifo(
  path: PathLike,
  flags: 'r' | 'w',
  options?: OpenFifoOptions,
): Promise<PipeReadable | PipeWritable>
export async function openFifo(
  path: PathLike,
  flags: 'r' | 'w',
  options?: OpenFifoOptions,
): Promise<PipeReadable | PipeWritable> {
  const { bytes, write } = fifoArgs(path, flags)
  const opts = validateOptions(options)
  const signal = opts.signal
  validateAbortSignal(signal, 'options.signal')
  if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason })
  const now = callNative(() => native.fifoOpenNow(bytes, write))
  if (now >= 0) return endFor(now, write)
  return startWait(
    (reactor, waitId) => native.fifoOpenStart(reactor, waitId, bytes, write),
    (fd) => {
      // An open that completed as the signal aborted is closed again: after an abort,
      // nothing is left open (the peer sees the FIFO closed, as if we had never come).
      if (signal?.aborted) {
        native.fdClose(fd!)
        throw new AbortError(undefined, { cause: signal.reason })
      }
      return endFor(fd!, write)
    },
    signal,
    [],
  )
}

/**
 * Opens one end of a FIFO, blocking the calling thread until the peer opens the other (for
 * scripts; {@link openFifo} is the form that blocks nothing).
 *
 * @example
 * ```ts
 * const writable = openFifoSync('/tmp/app.fifo', 'w')
 * writable.end('bye')
 * ```
 */
export function openFifoSync(path: PathLike, flags: 'r'): PipeReadable
export function openFifoSync(path: PathLike, flags: 'w'): PipeWritable
export function openFifoSync(path: PathLike, flags: 'r' | 'w'): PipeReadable | PipeWritable
export function openFifoSync(path: PathLike, flags: 'r' | 'w'): PipeReadable | PipeWritable {
  const { bytes, write } = fifoArgs(path, flags)
  return endFor(answered(callNative(() => native.fifoOpenSync(bytes, write))), write)
}
