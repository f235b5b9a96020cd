import { closeSync, openSync, readdirSync, readlinkSync } from 'node:fs'

import anyTest from 'ava'

import { AbortError, EventFd, IpcError } from '../ts/index'
import { native } from '../ts/native'
import { pendingWaits } from '../ts/reactor'
import {
  cChild,
  compileC,
  fdsLeftOpen,
  fdSnapshot,
  linuxOnly,
  nodeChild,
  notLinux,
  removeBuilds,
  runNodeUnder,
  sleep,
} from './helpers'

/** eventfd is Linux's: on macOS every test but the ENOSYS one is skipped. */
const test = linuxOnly(anyTest, 'eventfd is Linux-only (ENOSYS on macOS, tested instead)')

anyTest.after.always(removeBuilds)

const MAX_COUNT = 2n ** 64n - 2n

test('counter mode adds writes and a read takes the whole count; semaphore mode takes 1 at a time', async (t) => {
  using counter = EventFd.create()
  t.false(counter.semaphore)
  t.is(readlinkSync(`/proc/self/fd/${counter.fd}`), 'anon_inode:[eventfd]')
  counter.writeSync(3)
  await counter.write(4)
  counter.writeSync(2n)
  t.is(counter.readSync(), 9)
  t.like(
    t.throws(() => counter.readSync({ wait: false }), { instanceOf: IpcError }),
    { code: 'EAGAIN', syscall: 'read' },
  )
  using sem = EventFd.create({ initial: 2, semaphore: true })
  t.true(sem.semaphore)
  sem.writeSync(1)
  t.deepEqual([sem.readSync(), await sem.read(), sem.readSync({ wait: false })], [1, 1, 1])
  t.throws(() => sem.readSync({ wait: false }), { code: 'EAGAIN' })
  using initial = EventFd.create({ initial: 0xffff_ffff })
  t.is(await initial.read(), 0xffff_ffff)
})

// Serial: it counts the poller's watches, which every test shares.
test.serial(
  'an async read waits on the poller, resolves when another process writes, and costs no thread',
  async (t) => {
    using efd = EventFd.create()
    const threads = () => readdirSync('/proc/self/task').length
    const pending = efd.read()
    await sleep(20)
    const before = threads()
    t.is(native.pollCount(), 1)
    const child = nodeChild(
      `const e = ipckit.EventFd.fromFd(3); setTimeout(() => { e.writeSync(5); e.close() }, 50)`,
      [],
      {
        stdio: ['pipe', 'pipe', 'pipe', efd.fd],
      },
    )
    t.is(await pending, 5)
    t.is((await child.done).code, 0)
    t.is(native.pollCount(), 0)
    // 500 reads pending on 500 eventfds: 500 watches, not 500 threads.
    const many = Array.from({ length: 500 }, () => EventFd.create())
    const reads = many.map((e) => e.read())
    await sleep(20)
    t.is(native.pollCount(), 500)
    t.true(threads() <= before + 1, `threads ${before} -> ${threads()}`)
    many.forEach((e, i) => e.writeSync(i + 1))
    t.deepEqual(
      await Promise.all(reads),
      many.map((_, i) => i + 1),
    )
    for (const e of many) e.close()
  },
)

const C_WRITER = `#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
/* fd 3 is an eventfd from the parent. Writes 1, 2, ..., N to it, pausing now and then, then
 * waits (poll: the parent's descriptor is non-blocking) for the parent's answer and prints it. */
int main(int argc, char **argv) {
  int n = atoi(argv[1]);
  for (uint64_t i = 1; i <= (uint64_t)n; i++) {
    if (write(3, &i, 8) != 8) { perror("write"); return 2; }
    if (i % 10 == 0) usleep(2000);
  }
  struct pollfd p = { 3, POLLIN, 0 };
  uint64_t v = 0;
  for (;;) {
    if (poll(&p, 1, 20000) != 1) { printf("no answer\\n"); return 3; }
    /* The parent may read what we wrote last after we poll: take only a value above n*(n+1)/2. */
    if (read(3, &v, 8) == 8 && v >= 1000000) break;
    if (v) { if (write(3, &v, 8) != 8) return 4; usleep(1000); }
  }
  printf("answer %llu\\n", (unsigned long long)v);
  return 0;
}
`

test('a C process writes an eventfd inherited as fd 3: every count arrives; it reads the answer', async (t) => {
  const exe = compileC('eventfd-writer', C_WRITER)
  using efd = EventFd.create()
  const n = 100
  const c = cChild(exe, [String(n)], { stdio: ['pipe', 'pipe', 'pipe', efd.fd] })
  let sum = 0
  let reads = 0
  for await (const v of efd) {
    sum += v
    reads++
    if (sum === (n * (n + 1)) / 2) break
  }
  t.is(sum, 5050)
  t.true(reads >= 1 && reads <= n, `${reads} reads`)
  efd.writeSync(1_234_567)
  const r = await c.done
  t.is(r.code, 0, r.stdout + r.stderr)
  t.is(r.stdout.trim(), 'answer 1234567')
})

// Serial: it counts the poller's watches, which every test shares.
test.serial('abort and close cancel a pending read, which has taken nothing', async (t) => {
  using efd = EventFd.create()
  const ac = new AbortController()
  const pending = efd.read({ signal: ac.signal })
  await sleep(10)
  const reason = new Error('stop')
  ac.abort(reason)
  const e = await t.throwsAsync(pending, { instanceOf: AbortError })
  t.is(e!.cause, reason)
  t.is(native.pollCount(), 0)
  efd.writeSync(7)
  t.is(efd.readSync(), 7, 'the count written after the abort is whole')
  await t.throwsAsync(efd.read({ signal: AbortSignal.abort() }), { instanceOf: AbortError })
  const closing = EventFd.create()
  const waiting = closing.read()
  closing.close()
  const c = await t.throwsAsync(waiting, { instanceOf: AbortError })
  t.is((c!.cause as { code?: string }).code, 'ERR_INVALID_STATE')
  t.throws(() => closing.readSync(), { code: 'ERR_INVALID_STATE' })
  t.is(pendingWaits(), 0)
})

test('await using: leaving the block ends a pending read and a pending write with AbortError', async (t) => {
  let read: Promise<number> | undefined
  let write: Promise<void> | undefined
  let handle: EventFd | undefined
  {
    await using efd = EventFd.create()
    handle = efd
    efd.writeSync(MAX_COUNT)
    efd.readSync({ bigint: true })
    read = efd.read()
    efd.writeSync(MAX_COUNT - 1n) // readable now, but the block ends before the loop sees it
    write = efd.write(2) // full: waits for room
  }
  await t.throwsAsync(read!, { instanceOf: AbortError })
  await t.throwsAsync(write!, { instanceOf: AbortError })
  t.true(handle!.closed)
  t.throws(() => handle!.readSync(), { code: 'ERR_INVALID_STATE' })
})

test('async iteration: break takes nothing more, a write after it is still there', async (t) => {
  using efd = EventFd.create({ semaphore: true })
  efd.writeSync(5)
  const got: number[] = []
  for await (const v of efd.values()) {
    got.push(v)
    if (got.length === 3) break
  }
  t.deepEqual(got, [1, 1, 1])
  t.is(efd.readSync(), 1)
  t.is(efd.readSync(), 1)
  // A loop waiting for more ends on return() with nothing taken.
  const it = efd.values()
  const next = it.next()
  await sleep(10)
  await it.return!()
  t.deepEqual(await next, { done: true, value: undefined })
  efd.writeSync(1)
  t.is(efd.readSync({ wait: false }), 1)
})

// Serial: it counts the poller's watches, which every test shares.
test.serial(
  '64-bit counts: bigint reads, a count above 2^53 is put back, a full counter makes writes wait',
  async (t) => {
    using efd = EventFd.create()
    efd.writeSync(2n ** 60n)
    const e = await t.throwsAsync(efd.read(), { code: 'ERR_OUT_OF_RANGE', instanceOf: RangeError })
    t.regex(e!.message, /bigint: true/)
    t.is(await efd.read({ bigint: true }), 2n ** 60n, 'it was put back whole')
    efd.writeSync(MAX_COUNT)
    t.like(
      t.throws(() => efd.writeSync(1, { wait: false }), { instanceOf: IpcError }),
      { code: 'EAGAIN', syscall: 'write' },
    )
    const blocked = efd.write(5)
    await sleep(20)
    t.is(native.pollCount(), 1, 'the write waits for room on the poller')
    t.is(efd.readSync({ bigint: true }), MAX_COUNT)
    await blocked
    t.is(efd.readSync(), 5)
    const range = { code: 'ERR_OUT_OF_RANGE', instanceOf: RangeError }
    t.throws(() => efd.writeSync(-1), range)
    t.throws(() => efd.writeSync(1.5), range)
    t.throws(() => efd.writeSync(2 ** 53), range)
    t.throws(() => efd.writeSync(MAX_COUNT + 1n), range)
    t.throws(() => efd.writeSync(-1n), range)
    t.throws(() => efd.writeSync('1' as never), { code: 'ERR_INVALID_ARG_TYPE' })
    await t.throwsAsync(efd.write(null as never), { code: 'ERR_INVALID_ARG_TYPE' })
    await t.throwsAsync(efd.read({ bigint: 1 } as never), { code: 'ERR_INVALID_ARG_TYPE' })
    t.throws(() => EventFd.create({ initial: 2 ** 32 }), range)
    t.throws(() => EventFd.create({ semaphore: 'no' as never }), { code: 'ERR_INVALID_ARG_TYPE' })
  },
)

test('readSync blocks the calling thread until another process writes, then returns its count', async (t) => {
  using efd = EventFd.create()
  using go = EventFd.create()
  // The child writes 100 ms after it is told to go, through another eventfd: whatever the load,
  // the parent is in readSync by then.
  const child = nodeChild(
    `const e = ipckit.EventFd.fromFd(3); const go = ipckit.EventFd.fromFd(4);
     go.readSync(); setTimeout(() => { e.writeSync(11); e.close() }, 100)`,
    [],
    { stdio: ['pipe', 'pipe', 'pipe', efd.fd, go.fd] },
  )
  go.writeSync(1)
  const started = process.hrtime.bigint()
  const value = efd.readSync()
  const ms = Number(process.hrtime.bigint() - started) / 1e6
  t.is(value, 11)
  t.true(ms >= 90, `returned after ${ms} ms, before the child wrote`)
  t.is((await child.done).code, 0)
})

test('fromFd: another kind of descriptor is refused (EINVAL); a blocking eventfd from C becomes non-blocking', async (t) => {
  const r = openSync('/dev/null', 'r')
  t.teardown(() => closeSync(r))
  t.like(
    t.throws(() => EventFd.fromFd(r), { instanceOf: IpcError }),
    { code: 'EINVAL', syscall: 'eventfd' },
  )
  t.throws(() => EventFd.fromFd(-2), { code: 'ERR_OUT_OF_RANGE' })
  const exe = compileC(
    'eventfd-blocking',
    `#include <stdio.h>
#include <sys/eventfd.h>
#include <unistd.h>
/* Makes a blocking eventfd at fd 3 holding 41 and hands it to the Node process it runs. */
int main(int argc, char **argv) {
  int fd = eventfd(41, 0);
  if (fd < 0 || dup2(fd, 3) < 0) { perror("eventfd"); return 2; }
  execv(argv[1], argv + 1);
  perror("execv");
  return 3;
}
`,
  )
  const child = cChild(exe, [
    process.execPath,
    '--require',
    require.resolve('tsx/cjs'),
    '-e',
    `const { EventFd } = require(${JSON.stringify(require.resolve('../ts/index'))});
     const e = EventFd.fromFd(3);
     const first = e.readSync();
     let again; try { e.readSync({ wait: false }) } catch (err) { again = err.code }
     console.log(first, again, e.semaphore === undefined || e.semaphore === false)`,
  ])
  const res = await child.done
  t.is(res.code, 0, res.stderr)
  t.is(res.stdout.trim(), '41 EAGAIN true')
})

test('at the open-file limit: EMFILE naming the limit; no crash, everything closes', async (t) => {
  const r = await runNodeUnder(
    ['prlimit', '--nofile=40'],
    `const all = []; let err;
     try { for (;;) all.push(ipckit.EventFd.create()) } catch (e) { err = e }
     const n = all.length;
     for (const e of all) e.close();
     const again = ipckit.EventFd.create(); again.writeSync(1); console.error(again.readSync()); again.close();
     console.log(JSON.stringify({ code: err.code, syscall: err.syscall, message: err.message, n }))`,
  )
  const res = JSON.parse(r.stdout.trim())
  t.like(res, { code: 'EMFILE', syscall: 'eventfd' })
  t.regex(res.message, /open file limit, 40 \(RLIMIT_NOFILE, ulimit -n\)/)
  t.true(res.n > 5 && res.n < 40, `made ${res.n}`)
  t.is(r.stderr.trim(), '1')
})

// Serial: it counts the poller's watches, which every test shares.
test.serial('descriptors: made and closed in a loop, with waits cancelled, nothing stays open', async (t) => {
  const before = fdSnapshot()
  for (let i = 0; i < 200; i++) {
    const e = EventFd.create()
    const p = e.read().catch((err) => err)
    if (i % 2) e.writeSync(1)
    await Promise.race([p, sleep(1)])
    e.close()
    const settled = await p
    t.true(settled === 1 || settled instanceof AbortError)
  }
  t.deepEqual(await fdsLeftOpen(before), [])
  t.is(native.pollCount(), 0)
})

notLinux(anyTest)('macOS has no eventfd: ENOSYS, and the message names the platform', (t) => {
  const e = t.throws(() => EventFd.create(), { instanceOf: IpcError })
  t.like(e, { code: 'ENOSYS', syscall: 'eventfd' })
  t.regex(e!.message, /macOS has none/)
})
