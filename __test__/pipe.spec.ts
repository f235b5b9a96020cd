import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { constants, openSync, closeSync, promises as fsp, readFileSync, statSync, writeFileSync } from 'node:fs'
import { constants as osConstants } from 'node:os'
import { join } from 'node:path'
import { finished } from 'node:stream/promises'
import { pathToFileURL } from 'node:url'

import test, { type ExecutionContext } from 'ava'

import { AbortError, IpcError, PipeReadable, PipeWritable, mkfifo, openFifo, openFifoSync, pipe } from '../ts/index'
import { pendingWaits } from '../ts/reactor'
import {
  cChild,
  compileC,
  fdSnapshot,
  fdsLeftOpen,
  linuxOnly,
  nodeChild,
  removeBuilds,
  sleep,
  tempDir,
  within,
} from './helpers'

const O_NONBLOCK = 0o4000
const O_CLOEXEC = 0o2000000

/** The file status flags of one of our descriptors, from /proc/self/fdinfo. */
function fdFlags(fd: number): number {
  const m = /^flags:\s+([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))
  return parseInt(m![1]!, 8)
}

async function collect(readable: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of readable) chunks.push(chunk)
  return Buffer.concat(chunks)
}

/**
 * A serial test (descriptors are per process) that asserts the test left no descriptor open.
 */
function fdTest(title: string, fn: (t: ExecutionContext) => Promise<void> | void, declare = test.serial): void {
  declare(title, async (t) => {
    const before = fdSnapshot()
    await fn(t)
    t.deepEqual(await fdsLeftOpen(before), [], 'no descriptor left open')
  })
}

/** {@link fdTest} for tests that read descriptor flags ({@link fdFlags}: /proc/self/fdinfo). */
function fdinfoTest(title: string, fn: (t: ExecutionContext) => Promise<void> | void): void {
  fdTest(title, fn, linuxOnly(test.serial, 'reads descriptor flags from /proc/self/fdinfo'))
}

/** A fresh folder for FIFOs, removed when the test ends. */
function fifoPath(t: ExecutionContext, name = 'fifo'): string {
  const dir = tempDir('ipckit-pipe-')
  t.teardown(() => dir.remove())
  return join(dir.path, name)
}

/** Copies fd 3 to fd 4 with plain blocking read()/write(), each byte XOR 0x5a. */
const XOR_ECHO = `
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
int main(void) {
  int f3 = fcntl(3, F_GETFL), f4 = fcntl(4, F_GETFL);
  if (f3 < 0 || f4 < 0 || (f3 & O_NONBLOCK) || (f4 & O_NONBLOCK)) { fprintf(stderr, "nonblocking %x %x\\n", f3, f4); return 2; }
  unsigned char buf[4096];
  for (;;) {
    ssize_t n = read(3, buf, sizeof buf);
    if (n == 0) break;
    if (n < 0) { if (errno == EINTR) continue; perror("read"); return 3; }
    for (ssize_t i = 0; i < n; i++) buf[i] ^= 0x5a;
    for (ssize_t off = 0; off < n;) {
      ssize_t w = write(4, buf + off, n - off);
      if (w < 0) { if (errno == EINTR) continue; perror("write"); return 4; }
      off += w;
    }
  }
  return 0;
}
`

/** Opens argv[1] for writing (blocking open), writes argv[2], exits. */
const FIFO_WRITER = `
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
int main(int argc, char **argv) {
  if (argc < 3) return 1;
  int fd = open(argv[1], O_WRONLY);
  if (fd < 0) { perror("open"); return 2; }
  if (fcntl(fd, F_GETFL) & O_NONBLOCK) return 3;
  size_t len = strlen(argv[2]);
  if (write(fd, argv[2], len) != (ssize_t)len) { perror("write"); return 4; }
  return close(fd) == 0 ? 0 : 5;
}
`

/** Opens argv[1] for reading (blocking open), copies it to stdout until EOF. */
const FIFO_READER = `
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
int main(int argc, char **argv) {
  if (argc < 2) return 1;
  int fd = open(argv[1], O_RDONLY);
  if (fd < 0) { perror("open"); return 2; }
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) fwrite(buf, 1, (size_t)n, stdout);
  return n == 0 ? 0 : 3;
}
`

let xorEcho: string
let fifoWriter: string
let fifoReader: string

test.before(async () => {
  xorEcho = compileC('xor_echo', XOR_ECHO)
  fifoWriter = compileC('fifo_writer', FIFO_WRITER)
  fifoReader = compileC('fifo_reader', FIFO_READER)
  // The first child process makes libuv open its signal pipes for good; do it before any
  // descriptor is counted.
  await once(spawn('true', [], { stdio: 'ignore' }), 'close')
  // tsx writes its compile cache asynchronously after loading; let those descriptors close.
  await sleep(500)
})
test.after.always(removeBuilds)

fdinfoTest('pipe ends start blocking and close-on-exec, and are wrapped only when first used', async (t) => {
  const { readable, writable } = pipe()
  t.true(readable instanceof PipeReadable)
  t.true(writable instanceof PipeWritable)
  for (const fd of [readable.fd, writable.fd]) {
    t.is(fdFlags(fd) & O_NONBLOCK, 0)
    t.is(fdFlags(fd) & O_CLOEXEC, O_CLOEXEC)
  }
  t.false(readable.wrapped)
  t.false(writable.wrapped)
  writable.end('hello')
  t.is((await collect(readable)).toString(), 'hello')
  // Wrapping is what makes a description non-blocking (and why it waits for first use).
  t.true(readable.wrapped)
  t.true(writable.wrapped)
  t.is(readable.fd, -1)
  t.is(writable.fd, -1)
})

fdinfoTest('close() is idempotent and Symbol.dispose closes an end that was never used', (t) => {
  const { readable, writable } = pipe()
  const fds = [readable.fd, writable.fd]
  readable.close()
  readable.close()
  writable[Symbol.dispose]()
  writable.close()
  t.is(readable.fd, -1)
  t.is(writable.fd, -1)
  t.true(readable.destroyed && writable.destroyed)
  for (const fd of fds) t.throws(() => fdFlags(fd), { code: 'ENOENT' })
})

fdTest('round trip of 1 MiB through pipe(), read by async iteration', async (t) => {
  const { readable, writable } = pipe()
  const data = randomBytes(1 << 20)
  const received = collect(readable)
  for (let off = 0; off < data.length; off += 10_000) {
    if (!writable.write(data.subarray(off, off + 10_000))) await once(writable, 'drain')
  }
  writable.end()
  t.true((await received).equals(data))
  await finished(writable)
  t.is(writable.fd, -1)
})

fdTest('breaking out of async iteration closes the read end', async (t) => {
  const { readable, writable } = pipe()
  writable.write('first')
  for await (const chunk of readable) {
    t.is(chunk.toString(), 'first')
    break
  }
  t.true(readable.destroyed)
  t.is(readable.fd, -1)
  writable.close()
})

fdTest('backpressure: with a paused reader, write() returns false and drain follows reading', async (t) => {
  const { readable, writable } = pipe()
  readable.pause()
  readable.read(0) // wraps the end and fills this stream's buffer, then stops reading
  const chunk = Buffer.alloc(4096, 7)
  let offered = 0
  for (;;) {
    offered += chunk.length
    if (!writable.write(chunk)) {
      const drained = await Promise.race([once(writable, 'drain').then(() => true), sleep(300).then(() => false)])
      if (!drained) break // nobody reads: the pipe and the buffers are full
    }
    if (offered > 8 << 20) break
  }
  // Bounded by the pipe (64 KiB) and the streams' buffers, not by what was offered.
  t.true(offered < 1 << 20, `accepted ${offered} bytes before backpressure`)
  t.true(writable.writableLength > 0)
  // One read of libuv takes up to 64 KiB; the stream holds at most about that over its mark.
  t.true(readable.readableLength <= readable.readableHighWaterMark + 64 * 1024, `${readable.readableLength}`)
  const received = collect(readable)
  await once(writable, 'drain')
  writable.end()
  t.is((await received).length, offered)
})

fdTest('writing after the read end is closed fails with EPIPE', async (t) => {
  const { readable, writable } = pipe()
  readable.close()
  writable.write('x')
  const [err] = (await once(writable, 'error')) as [NodeJS.ErrnoException]
  t.is(err.code, 'EPIPE')
  t.is(writable.fd, -1)
})

fdTest(
  'a C program doing blocking read()/write() on inherited ends (fds 3, 4) while Node uses the others',
  async (t) => {
    const input = pipe()
    const output = pipe()
    const child = cChild(xorEcho, [], { stdio: ['ignore', 'pipe', 'pipe', input.readable.fd, output.writable.fd] })
    // The child has its copies; ours must go, or EOF never comes.
    input.readable.close()
    output.writable.close()
    const data = randomBytes(1 << 20) // far beyond the pipe's 64 KiB: both sides block in turn
    const received = collect(output.readable)
    input.writable.end(data)
    const got = await received
    const r = await child.done
    t.is(r.code, 0, r.stderr)
    t.is(got.length, data.length)
    t.true(got.equals(Buffer.from(data.map((b) => b ^ 0x5a))))
  },
)

fdTest('a Node child writes into a pipe end passed through stdio', async (t) => {
  const { readable, writable } = pipe()
  const child = nodeChild(
    `const fs = require('fs'); fs.writeSync(3, 'from child ' + process.pid); fs.closeSync(3)`,
    [],
    { stdio: ['pipe', 'pipe', 'pipe', writable.fd] },
  )
  writable.close()
  const text = (await collect(readable)).toString()
  const r = await child.done
  t.is(r.code, 0, r.stderr)
  t.is(text, `from child ${child.pid}`)
})

fdTest('mkfifo makes a FIFO with the mode; EEXIST and ENOENT are IpcErrors', (t) => {
  const path = fifoPath(t)
  mkfifo(path, 0o640)
  const st = statSync(path)
  t.true(st.isFIFO())
  t.is(st.mode & 0o777, 0o640 & ~process.umask())
  const exists = t.throws(() => mkfifo(path), { instanceOf: IpcError })
  t.like(exists, { code: 'EEXIST', syscall: 'mkfifo', errno: -osConstants.errno.EEXIST })
  t.like(
    t.throws(() => mkfifo(join(path, '..', 'missing', 'f'))),
    { code: 'ENOENT', syscall: 'mkfifo' },
  )
  const other = `${path}-default`
  mkfifo(pathToFileURL(other))
  t.is(statSync(other).mode & 0o777, 0o600 & ~process.umask())
  // Any bytes make a Linux file name, UTF-8 or not.
  const raw = Buffer.concat([Buffer.from(`${path}-`), Buffer.from([0xff, 0xfe])])
  mkfifo(raw)
  t.true(statSync(raw).isFIFO())
})

fdinfoTest('openFifo("r") waits for a C writer, then reads what it wrote', async (t) => {
  const path = fifoPath(t)
  mkfifo(path)
  const opening = openFifo(path, 'r')
  t.is(pendingWaits(), 1)
  await sleep(20)
  const writer = cChild(fifoWriter, [path, 'hello from C'])
  const readable = await opening
  t.true(readable instanceof PipeReadable)
  t.is(fdFlags(readable.fd) & (O_NONBLOCK | O_CLOEXEC), O_CLOEXEC)
  t.is((await collect(readable)).toString(), 'hello from C')
  t.is((await writer.done).code, 0)
  t.is(pendingWaits(), 0)
})

fdinfoTest('openFifo("w") waits for a reader, and opens at once (no thread hop) when one is there', async (t) => {
  const path = fifoPath(t)
  mkfifo(path)
  const opening = openFifo(path, 'w')
  t.is(pendingWaits(), 1)
  const reader = cChild(fifoReader, [path])
  const writable = await opening
  t.true(writable instanceof PipeWritable)
  t.is(fdFlags(writable.fd) & O_NONBLOCK, 0)
  t.is(fdFlags(writable.fd) & O_CLOEXEC, O_CLOEXEC)
  writable.end('to C')
  const r = await reader.done
  t.is(r.code, 0, r.stderr)
  t.is(r.stdout, 'to C')

  const ours = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK)
  const fast = openFifo(path, 'w')
  t.is(pendingWaits(), 0, 'the fast path started no wait')
  const w = await fast
  t.is(fdFlags(w.fd) & O_NONBLOCK, 0, 'the fast path hands out a blocking descriptor')
  w.close()
  closeSync(ours)
})

fdTest('openFifo: reader and writer in the same process pair up, with async iteration', async (t) => {
  const path = fifoPath(t)
  mkfifo(path)
  const [readable, writable] = await Promise.all([openFifo(path, 'r'), openFifo(path, 'w')])
  const received = collect(readable)
  writable.write('a')
  writable.end('b')
  t.is((await received).toString(), 'ab')
})

fdTest('pending FIFO opens do not stall fs.promises.readFile (no threadpool thread parked)', async (t) => {
  const ac = new AbortController()
  // More than the libuv threadpool's 4 threads: a threadpool-based open would block fs.
  const opens = Array.from({ length: 6 }, (_, i) => {
    const path = fifoPath(t, `fifo${i}`)
    mkfifo(path)
    return openFifo(path, i % 2 === 0 ? 'r' : 'w', { signal: ac.signal })
  })
  await sleep(50)
  t.is(pendingWaits(), 6)
  const result = await Promise.race([
    fsp.readFile(__filename, 'utf8').then((text) => text.length),
    sleep(10_000).then(() => 'stalled'),
  ])
  t.is(result, readFileSync(__filename, 'utf8').length, 'fs read the whole file meanwhile')
  ac.abort()
  for (const r of await Promise.allSettled(opens)) {
    t.is(r.status, 'rejected')
    t.true((r as PromiseRejectedResult).reason instanceof AbortError)
  }
  t.is(pendingWaits(), 0)
})

fdTest('aborting a pending openFifo rejects promptly with AbortError and leaves nothing open', async (t) => {
  const path = fifoPath(t)
  mkfifo(path)
  for (const flags of ['r', 'w'] as const) {
    const ac = new AbortController()
    const opening = openFifo(path, flags, { signal: ac.signal })
    await sleep(30)
    const reason = new Error('stop')
    // Promptly: the open would wait forever otherwise; only a deadline is checked (bench/
    // measures speed).
    ac.abort(reason)
    const err = await within(
      opening.then(
        () => null,
        (e: unknown) => e,
      ),
      'the aborted open settles',
    )
    t.true(err instanceof AbortError, String(err))
    t.is((err as AbortError).cause, reason)
  }
  t.is(pendingWaits(), 0)
  // No reader was left open: a non-blocking writer still finds none.
  t.like(
    t.throws(() => openSync(path, constants.O_WRONLY | constants.O_NONBLOCK)),
    { code: 'ENXIO' },
  )
  // An already aborted signal: no open at all.
  await t.throwsAsync(openFifo(path, 'r', { signal: AbortSignal.abort() }), { instanceOf: AbortError })
  t.is(pendingWaits(), 0)
})

fdTest('openFifoSync opens once a C reader is there', async (t) => {
  const path = fifoPath(t)
  mkfifo(path)
  const reader = cChild(fifoReader, [path])
  const writable = openFifoSync(path, 'w') // blocks this thread until the child opens
  writable.end('sync')
  const r = await reader.done
  t.is(r.code, 0, r.stderr)
  t.is(r.stdout, 'sync')
})

fdTest('openFifo errors: ENOENT, and EINVAL for a path that is not a FIFO', async (t) => {
  const path = fifoPath(t)
  const missing = await t.throwsAsync(openFifo(path, 'r'), { instanceOf: IpcError })
  t.like(missing, { code: 'ENOENT', syscall: 'open', errno: -osConstants.errno.ENOENT })
  await t.throwsAsync(openFifo(path, 'w'), { code: 'ENOENT' })
  t.like(
    t.throws(() => openFifoSync(path, 'r')),
    { code: 'ENOENT', syscall: 'open' },
  )
  writeFileSync(path, 'plain file')
  await t.throwsAsync(openFifo(path, 'r'), { instanceOf: IpcError, code: 'EINVAL' })
  await t.throwsAsync(openFifo(path, 'w'), { instanceOf: IpcError, code: 'EINVAL' })
  t.is(readFileSync(path, 'utf8'), 'plain file')
})

fdTest('bad arguments: TypeError / RangeError before any call; async forms reject', async (t) => {
  const path = fifoPath(t)
  t.throws(() => mkfifo(42 as never), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => mkfifo('a\0b'), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_VALUE' })
  t.throws(() => mkfifo(''), { code: 'ERR_INVALID_ARG_VALUE' })
  t.throws(() => mkfifo(new URL('http://example.com/x')), { code: 'ERR_INVALID_ARG_VALUE' })
  t.throws(() => mkfifo(path, '600' as never), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => mkfifo(path, 0o1000), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => mkfifo(path, 1.5), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => statSync(path)) // nothing was made

  mkfifo(path)
  const rejected = openFifo(null as never, 'r')
  t.true(rejected instanceof Promise, 'async form does not throw synchronously')
  await t.throwsAsync(rejected, { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' })
  await t.throwsAsync(openFifo(path, 'x' as never), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_VALUE' })
  await t.throwsAsync(openFifo(path, 1 as never), { code: 'ERR_INVALID_ARG_TYPE' })
  await t.throwsAsync(openFifo(path, 'r', null as never), { code: 'ERR_INVALID_ARG_TYPE' })
  await t.throwsAsync(openFifo(path, 'r', { signal: 'no' as never }), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => openFifoSync(path, 'rw' as never), { code: 'ERR_INVALID_ARG_VALUE' })
  t.is(pendingWaits(), 0)
})
