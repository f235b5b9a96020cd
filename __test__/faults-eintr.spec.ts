/**
 * Faults: EINTR. A C child bombards this process with SIGUSR2 (every ~1 ms, to the process and
 * to each of its threads) while `process.on('SIGUSR2')` is set, so blocking calls on the JS
 * thread keep returning EINTR. (ipckit's wait threads block every signal but its wake signal, so
 * for async waits the storm tests the whole path, not their EINTR retry, which the cancellation
 * tests exercise.) Async
 * and sync waits on a message queue, a semaphore, a shared memory word and a seqpacket socket
 * must neither fail with EINTR nor end early, and timed waits must keep their deadline (a wait
 * that restarted its full timeout after each signal would never end).
 *
 * The storm runs for the whole file, so this file holds only these tests, serially.
 */
import anyTest, { type ExecutionContext } from 'ava'

import {
  AbortError,
  IpcError,
  MessageQueue,
  SemaphoreSet,
  SharedMemory,
  socketpair,
  type UnixSeqpacketSocket,
} from '../ts/index'
import { cChild, compileC, linuxOnly, nodeChild, removeBuilds, sleep, type RunningChild } from './helpers'

const test = linuxOnly(
  anyTest,
  'the storm finds threads in /proc/<pid>/task (tgkill), and the waits include a futex and a seqpacket socket, which macOS lacks',
)

/**
 * Sends SIGUSR2 to the process (which the kernel gives to the main thread) and, in turn, to each
 * of its threads (tgkill), so that ipckit's wait threads and epoll thread are hit as well.
 */
const BOMBER = `
#define _GNU_SOURCE
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(int argc, char **argv) {
  pid_t target = (pid_t)atoi(argv[1]);
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/task", (int)target);
  printf("started\\n");
  fflush(stdout);
  for (;;) {
    if (kill(target, SIGUSR2) != 0) return 0;
    usleep(1000);
    DIR *d = opendir(path);
    if (d == NULL) return 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
      int tid = atoi(e->d_name);
      if (tid > 0) syscall(SYS_tgkill, (int)target, tid, SIGUSR2);
    }
    closedir(d);
    usleep(1000);
  }
}
`

let handled = 0
let bomber: RunningChild | undefined

test.before(async () => {
  // Installed for good: a SIGUSR2 arriving after its removal would kill the process.
  process.on('SIGUSR2', () => handled++)
  bomber = cChild(compileC('sigusr2-bomber', BOMBER), [String(process.pid)], { timeoutMs: 600_000 })
  await bomber.line(/^started$/)
  const before = handled
  await sleep(100)
  if (handled - before < 20) throw new Error(`the storm is not on: ${handled - before} signals in 100 ms`)
})

test.after.always(async () => {
  bomber?.kill('SIGKILL')
  await bomber?.done
  removeBuilds()
})

interface Objects {
  q: MessageQueue
  set: SemaphoreSet
  shm: SharedMemory
  mine: UnixSeqpacketSocket
  helper: RunningChild
}

/**
 * A queue, a semaphore (value 0), a shared memory word (0) and a seqpacket pair, with a
 * helper child that, on SIGUSR1, sends a message, releases the semaphore, sets and notifies
 * the word, and sends on the socket, `stepMs` apart (the first after `stepMs`).
 */
async function objects(t: ExecutionContext, stepMs: number): Promise<Objects> {
  const q = MessageQueue.create()
  const set = SemaphoreSet.create({ count: 1 })
  const shm = SharedMemory.create({ size: 4096 })
  const [mine, theirs] = socketpair('seqpacket')
  const helper = nodeChild(
    `const [qid, sid, mid, step] = process.argv.slice(2).map(Number)
     const q = ipckit.MessageQueue.fromId(qid)
     const set = ipckit.SemaphoreSet.fromId(sid)
     const shm = ipckit.SharedMemory.fromId(mid)
     const sock = ipckit.UnixSeqpacketSocket.fromFd(3)
     process.on('SIGUSR1', async () => {
       const start = Date.now()
       const at = (n) => new Promise((r) => setTimeout(r, start + n * step - Date.now()))
       await at(1); q.sendSync('late')
       await at(2); set.opSync([{ index: 0, delta: 1 }])
       await at(3); shm.write(Buffer.from([1, 0, 0, 0]), 0); shm.notify(0)
       await at(4); sock.sendSync('late')
       sock.close()
       process.exit(0)
     })
     setInterval(() => {}, 1000)   // a signal listener alone does not keep a process alive
     console.log('ready')`,
    [String(q.id), String(set.id), String(shm.id), String(stepMs)],
    { stdio: ['pipe', 'pipe', 'pipe', theirs.fd] },
  )
  theirs.close()
  t.teardown(() => {
    helper.kill('SIGKILL')
    q.remove()
    q.close()
    set.remove()
    set.close()
    shm.remove()
    shm.close()
    mine.close()
  })
  await helper.line(/^ready$/)
  return { q, set, shm, mine, helper }
}

/** Milliseconds since `start` when `p` settles, and how it settled. */
async function settle<T>(start: number, p: Promise<T>): Promise<{ ms: number; value?: T; error?: unknown }> {
  try {
    const value = await p
    return { ms: Date.now() - start, value }
  } catch (error) {
    return { ms: Date.now() - start, error }
  }
}

/** Signals handled during `fn` (the handlers run once the event loop turns). */
async function storm<T>(fn: () => Promise<T>): Promise<{ signals: number; value: T }> {
  const before = handled
  const value = await fn()
  await sleep(20)
  return { signals: handled - before, value }
}

const STEP = 500
const SLACK = 2000

test.serial('async waits under a SIGUSR2 storm end with their result, not EINTR, and not early', async (t) => {
  const { q, set, shm, mine, helper } = await objects(t, STEP)
  const { signals, value: results } = await storm(async () => {
    const start = Date.now()
    const waits = [
      settle(start, q.receive()),
      settle(start, set.op([{ index: 0, delta: -1 }])),
      settle(start, shm.wait(0, 0)),
      settle(start, mine.receive()),
    ]
    process.kill(helper.pid, 'SIGUSR1')
    return Promise.all(waits)
  })
  const [msg, sem, word, packet] = results
  t.is(msg!.error, undefined)
  t.is((msg!.value as { data: Buffer }).data.toString(), 'late')
  t.is(sem!.error, undefined)
  t.is(word!.error, undefined)
  t.is(word!.value, 'ok')
  t.is(packet!.error, undefined)
  t.is((packet!.value as { data: Buffer } | null)?.data.toString(), 'late')
  results.forEach((r, i) => t.true(r.ms >= (i + 1) * STEP - 10, `wait ${i} ended after ${r.ms} ms`))
  t.true(signals > 100, `${signals} signals during the waits`)
})

test.serial('timed async waits under a SIGUSR2 storm keep their deadline', async (t) => {
  const { q, set, shm, mine } = await objects(t, STEP)
  const timeout = 600
  const { signals, value: results } = await storm(() => {
    const start = Date.now()
    return Promise.all([
      settle(start, set.op([{ index: 0, delta: -1 }], { timeoutMs: timeout })),
      settle(start, shm.wait(0, 0, { timeoutMs: timeout })),
      settle(start, q.receive({ signal: AbortSignal.timeout(timeout) })),
      settle(start, mine.receive({ signal: AbortSignal.timeout(timeout) })),
    ])
  })
  const [sem, word, msg, packet] = results
  t.like(sem!.error, { code: 'EAGAIN' })
  t.is(word!.value, 'timed-out')
  t.true(msg!.error instanceof AbortError)
  t.true(packet!.error instanceof AbortError, String(packet!.error ?? JSON.stringify(packet!.value)))
  for (const [i, r] of results.entries()) {
    t.true(r.ms >= timeout - 5 && r.ms < timeout + SLACK, `wait ${i} ended after ${r.ms} ms`)
  }
  t.true(signals > 100, `${signals} signals during the waits`)
  t.is(q.stat().messages, 0)
  t.deepEqual(set.getAll(), [0])
})

test.serial('sync waits under a SIGUSR2 storm end with their result, not EINTR, and not early', async (t) => {
  const { q, set, shm, mine, helper } = await objects(t, STEP)
  const { signals, value: results } = await storm(async () => {
    process.kill(helper.pid, 'SIGUSR1')
    const start = Date.now()
    const out: Array<{ ms: number; value: unknown }> = []
    const time = (fn: () => unknown) => out.push({ value: fn(), ms: Date.now() - start })
    time(() => q.receiveSync().data.toString())
    time(() => set.opSync([{ index: 0, delta: -1 }]))
    time(() => shm.waitSync(0, 0))
    time(() => mine.receiveSync()?.data.toString())
    return out
  })
  t.deepEqual(
    results.map((r) => r.value),
    ['late', undefined, 'ok', 'late'],
  )
  results.forEach((r, i) => t.true(r.ms >= (i + 1) * STEP - 10, `wait ${i} ended after ${r.ms} ms`))
  t.true(signals > 100, `${signals} signals during the waits`)
})

test.serial('timed sync waits under a SIGUSR2 storm keep their deadline', async (t) => {
  const { set, shm } = await objects(t, STEP)
  const timeout = 600
  const { signals, value: results } = await storm(async () => {
    const out: Array<{ ms: number; value: unknown }> = []
    const time = (fn: () => unknown) => {
      const start = Date.now()
      let value: unknown
      try {
        value = fn()
      } catch (err) {
        value = err instanceof IpcError ? err.code : err
      }
      out.push({ value, ms: Date.now() - start })
    }
    time(() => set.opSync([{ index: 0, delta: -1 }], { timeoutMs: timeout }))
    time(() => shm.waitSync(0, 0, { timeoutMs: timeout }))
    return out
  })
  t.deepEqual(
    results.map((r) => r.value),
    ['EAGAIN', 'timed-out'],
  )
  for (const [i, r] of results.entries()) {
    t.true(r.ms >= timeout - 5 && r.ms < timeout + SLACK, `wait ${i} ended after ${r.ms} ms`)
  }
  t.true(signals > 100, `${signals} signals during the waits`)
})
