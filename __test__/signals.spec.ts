import test from 'ava'
import { chmodSync, mkdirSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { constants } from 'node:os'
import { Worker } from 'node:worker_threads'

import {
  AbortError,
  IpcError,
  describeSignal,
  ignoreSignal,
  kill,
  listSignals,
  realtimeSignals,
  restoreSignal,
  signalDisposition,
  sigqueue,
  watchSignals,
  type SignalEvent,
} from '../ts/index'
import { pendingWaits } from '../ts/reactor'
import {
  NOBODY,
  SOURCE_ENTRY,
  cChild,
  compileC,
  linuxOnly,
  nodeChild,
  notLinux,
  onLinux,
  removeBuilds,
  runC,
  runNode,
  sleep,
  tempDir,
  timed,
  within,
} from './helpers'
import { needs, perl } from './helpers/foreign'

test.after.always(removeBuilds)

const { min: RTMIN, max: RTMAX } = realtimeSignals

/** Tests of (or that send) real-time signals, `SIGRTMIN+N`: macOS has none (tested below). */
const rtTest = linuxOnly(test, 'real-time signals (SIGRTMIN+N), which macOS lacks')
const rtTestSerial = linuxOnly(test.serial, 'real-time signals (SIGRTMIN+N), which macOS lacks')
/** ipckit's own wake signal, reserved. */
const WAKE = RTMAX - 6

/** `si_code` of a signal sent by kill (`SI_USER`): 0 on Linux, 0x10001 in Apple's <sys/signal.h>. */
const SI_USER = onLinux ? 0 : 0x10001

/** Collects `count` events from a watcher. */
async function take(watcher: AsyncIterator<SignalEvent>, count: number): Promise<SignalEvent[]> {
  const got: SignalEvent[] = []
  while (got.length < count) {
    const r = await watcher.next()
    if (r.done) break
    got.push(r.value)
  }
  return got
}

rtTest('names and numbers are Node’s (os.constants.signals); real-time names round-trip', (t) => {
  const aliases: Record<string, string> = { SIGIOT: 'SIGABRT', SIGPOLL: 'SIGIO' }
  for (const [name, number] of Object.entries(constants.signals)) {
    const d = describeSignal(name)
    t.is(d.number, number, name)
    t.is(describeSignal(number).name, aliases[name] ?? name)
  }
  t.is(describeSignal(6).name, 'SIGABRT')
  t.is(describeSignal(29).name, 'SIGIO')
  t.is(describeSignal('SIGRTMIN+3').number, RTMIN + 3)
  t.is(describeSignal('SIGRTMAX-2').number, RTMAX - 2)
  t.is(describeSignal('SIGRTMIN').number, RTMIN)
  for (let n = RTMIN; n <= RTMAX; n++) {
    const d = describeSignal(n)
    t.regex(d.name, /^SIGRTM(IN|AX)([+-]\d+)?$/)
    t.is(describeSignal(d.name).number, n)
    t.is(d.defaultAction, 'terminate')
  }
  const all = listSignals()
  t.is(all.length, 31 + RTMAX - RTMIN + 1)
  t.deepEqual(
    all.slice(0, 31).map((s) => s.number),
    Array.from({ length: 31 }, (_, i) => i + 1),
  )
  t.like(describeSignal('SIGSEGV'), { name: 'SIGSEGV', number: 11, defaultAction: 'core' })
  // signal(7)'s words.
  t.like(describeSignal('SIGQUIT'), { description: 'Quit from keyboard' })
  t.like(describeSignal('SIGPIPE'), { description: 'Broken pipe: write to pipe with no readers' })
  t.like(describeSignal('SIGUSR1'), { description: 'User-defined signal 1' })
  t.like(describeSignal('SIGCHLD'), { description: 'Child stopped, terminated, or continued' })
  t.deepEqual(
    all.filter((s) => s.number >= RTMIN).map((s) => s.description),
    Array(RTMAX - RTMIN + 1).fill('Real-time signal'),
  )
  // Each standard signal has its own.
  t.is(new Set(all.slice(0, 31).map((s) => s.description)).size, 31)
  for (const s of all) t.deepEqual(describeSignal(s.number), s)
})

test('bad signals and arguments are refused before any system call', (t) => {
  const pid = process.pid
  for (const bad of ['SIGFOO', 'sigterm', 'SIGRTMIN+99', 'SIGRTMAX-99', 'SIGRTMIN-1', '']) {
    t.like(
      t.throws(() => kill(pid, bad), { instanceOf: TypeError }),
      { code: 'ERR_UNKNOWN_SIGNAL' },
    )
    t.throws(() => watchSignals([bad]), { code: 'ERR_UNKNOWN_SIGNAL' })
    t.throws(() => describeSignal(bad), { code: 'ERR_UNKNOWN_SIGNAL' })
  }
  t.throws(() => kill('1' as unknown as number), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => kill(1.5), { code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => kill(2 ** 31), { code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => kill(pid, RTMAX + 1), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => kill(pid, -1), { code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => kill(pid, {} as unknown as string), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => sigqueue(pid, 'SIGUSR2', 2 ** 31), { code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => sigqueue(pid, 'SIGUSR2', 1.5), { code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => describeSignal(0), { code: 'ERR_OUT_OF_RANGE' })
  // 32 is in Linux's range but unnamed (glibc keeps 32 and 33); macOS's signals end at 31.
  t.throws(() => describeSignal(32), { code: onLinux ? 'ERR_UNKNOWN_SIGNAL' : 'ERR_OUT_OF_RANGE' })
  t.throws(() => watchSignals([]), { code: 'ERR_INVALID_ARG_VALUE' })
  t.throws(() => watchSignals('SIGUSR2', { signal: {} as AbortSignal }), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => watchSignals('SIGUSR2', { ordered: 1 as unknown as boolean }), { code: 'ERR_INVALID_ARG_TYPE' })
  t.is(signalDisposition('SIGUSR2'), 'default')
})

linuxOnly(test, 'the reserved signals are SIGRTMAX-6 and SIGRTMAX-7 on Linux (SIGURG on macOS)')(
  'SIGKILL, SIGSTOP, fault signals and the reserved wake and mask signals cannot be watched, ignored or restored',
  (t) => {
    for (const sig of [
      'SIGKILL',
      'SIGSTOP',
      'SIGSEGV',
      'SIGBUS',
      'SIGFPE',
      'SIGILL',
      WAKE,
      'SIGRTMAX-6',
      'SIGRTMAX-7',
    ]) {
      const before = signalDisposition(sig)
      t.like(
        t.throws(() => watchSignals(['SIGUSR2', sig]), { instanceOf: TypeError }),
        { code: 'ERR_INVALID_ARG_VALUE' },
      )
      t.throws(() => ignoreSignal(sig), { code: 'ERR_INVALID_ARG_VALUE' })
      t.throws(() => restoreSignal(sig), { code: 'ERR_INVALID_ARG_VALUE' })
      t.is(signalDisposition(sig), before)
    }
    // The refused list left nothing half-installed.
    t.is(signalDisposition('SIGUSR2'), 'default')
    t.throws(() => restoreSignal('SIGPIPE'), { code: 'ERR_INVALID_ARG_VALUE' })
    t.is(signalDisposition('SIGPIPE'), 'ignore')
  },
)

linuxOnly(test, 'sigqueue is Linux-only (ENOSYS on macOS, tested below)')(
  'kill with signal 0 probes: ESRCH for a dead pid, EPERM as an unprivileged child',
  async (t) => {
    kill(process.pid, 0)
    const gone = nodeChild('')
    await gone.done
    const e = t.throws(() => kill(gone.pid, 0), { instanceOf: IpcError })
    t.like(e, { code: 'ESRCH', errno: -3, syscall: 'kill' })
    t.like(
      t.throws(() => sigqueue(gone.pid, 'SIGUSR2', 1)),
      { code: 'ESRCH', syscall: 'sigqueue' },
    )
    const r = await runNode(
      `for (const f of [() => ipckit.kill(Number(process.argv[2]), 0), () => ipckit.sigqueue(Number(process.argv[2]), 'SIGUSR2', 1)]) {
       try { f(); console.log('sent') } catch (e) { console.log(e.code, e.syscall, e.errno) }
     }`,
      [String(process.pid)],
      { uid: NOBODY.uid, gid: NOBODY.gid },
    )
    t.deepEqual(r.stdout.trim().split('\n'), ['EPERM kill -1', 'EPERM sigqueue -1'])
  },
)

const GROUP_C = `
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t got;
static void on_usr1(int s) { got = s; }

int main(void) {
  if (setpgid(0, 0) != 0) return 10;
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR1);
  pid_t child = fork();
  if (child == 0) { for (;;) pause(); }   /* default SIGUSR1 action: terminate */
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr1;
  sigaction(SIGUSR1, &sa, NULL);
  sigprocmask(SIG_BLOCK, &block, &old);
  printf("ready %d %d\\n", (int)getpgrp(), (int)child);
  fflush(stdout);
  while (!got) sigsuspend(&old);
  int st;
  waitpid(child, &st, 0);
  printf("parent got %d, child %s %d\\n", got, WIFSIGNALED(st) ? "killed by" : "exited", WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
  return 0;
}
`

test('kill of a negative pid signals every process of the group', async (t) => {
  const exe = compileC('group', GROUP_C)
  const c = cChild(exe)
  const [, pgid, child] = (await c.line(/^ready/)).split(' ').map(Number)
  t.is(pgid, c.pid)
  t.not(child, c.pid)
  kill(-pgid!, 'SIGUSR1')
  const r = await c.done
  t.is(r.code, 0)
  t.regex(r.stdout, new RegExp(`parent got ${constants.signals.SIGUSR1}, child killed by ${constants.signals.SIGUSR1}`))
})

test('kill(0, sig) signals the caller’s own process group', async (t) => {
  // detached: the child leads a group of its own, so pid 0 reaches nobody else.
  const child = nodeChild(
    `const w = ipckit.watchSignals('SIGUSR2');
     ipckit.kill(0, 'SIGUSR2');
     w.next().then((r) => { console.log(JSON.stringify(r.value)); w.close() })`,
    [],
    { detached: true },
  )
  const r = await child.done
  t.is(r.code, 0, r.stderr)
  const event = JSON.parse(r.stdout) as SignalEvent
  t.like(event, { name: 'SIGUSR2', code: SI_USER, uid: process.getuid!(), value: undefined })
  t.is(event.pid, child.pid, 'sent by the child itself')
})

test('kill(-1, sig) reaches every process the caller may signal, but not the caller', async (t) => {
  // A uid no other process uses, so that -1 reaches exactly the watcher below.
  const lonely = { uid: 54_321, gid: 54_321 }
  const watcher = nodeChild(
    `const w = ipckit.watchSignals('SIGUSR2');
     console.log('ready');
     w.next().then((r) => { console.log(JSON.stringify(r.value)); w.close() })`,
    [],
    lonely,
  )
  await watcher.line(/^ready/)
  const sender = await runNode(
    `const w = ipckit.watchSignals('SIGUSR2');
     ipckit.kill(-1, 'SIGUSR2');
     setTimeout(() => { console.log(w.closed, process.pid); w.close() }, 200);
     w.next().then((r) => { if (!r.done) console.log('the caller got it too') })`,
    [],
    lonely,
  )
  // Only the timer's line: the caller's own watcher saw nothing.
  t.regex(sender.stdout, /^false \d+\n$/)
  const senderPid = sender.stdout.trim().split(' ')[1]
  const event = JSON.parse(await watcher.line(/^\{/)) as SignalEvent
  t.like(event, { name: 'SIGUSR2', pid: Number(senderPid), uid: lonely.uid, code: SI_USER })
  t.is((await watcher.done).code, 0)
})

const SIGQUEUE_C = `
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc != 4) return 2;
  union sigval v;
  v.sival_int = atoi(argv[3]);
  if (sigqueue((pid_t)atoi(argv[1]), SIGRTMIN + atoi(argv[2]), v) != 0) { perror("sigqueue"); return 1; }
  printf("%d\\n", (int)getpid());
  return 0;
}
`

rtTest('a C program’s sigqueue payload, pid and uid reach the watcher', async (t) => {
  const exe = compileC('sigqueue', SIGQUEUE_C)
  using watcher = watchSignals('SIGRTMIN+3')
  const r = await runC(exe, [String(process.pid), '3', '-123456'])
  const [event] = await take(watcher, 1)
  t.deepEqual(event, {
    name: 'SIGRTMIN+3',
    number: RTMIN + 3,
    pid: Number(r.stdout.trim()),
    uid: process.getuid!(),
    code: -1,
    value: -123456,
  })
})

rtTest('an unprivileged watcher sees the uid of an unprivileged C sender', async (t) => {
  const exe = compileC('sigqueue', SIGQUEUE_C)
  chmodSync(dirname(exe), 0o755) // the build folder is private to root
  const watcher = nodeChild(
    `const w = ipckit.watchSignals('SIGRTMIN+2');
     console.log('ready');
     w.next().then((r) => { console.log(JSON.stringify(r.value)); w.close() })`,
    [],
    { uid: NOBODY.uid, gid: NOBODY.gid },
  )
  await watcher.line(/^ready/)
  const sender = await runC(exe, [String(watcher.pid), '2', '77'], { uid: NOBODY.uid, gid: NOBODY.gid })
  const event = JSON.parse(await watcher.line(/^\{/)) as SignalEvent
  t.like(event, { name: 'SIGRTMIN+2', uid: NOBODY.uid, pid: Number(sender.stdout.trim()), value: 77, code: -1 })
  t.is((await watcher.done).code, 0)
})

rtTestSerial(
  '1,000 alternating SIGUSR1/SIGUSR2 from a Node child: standard signals coalesce, counts reported',
  async (t) => {
    const watcher = watchSignals(['SIGUSR1', 'SIGUSR2', 'SIGRTMIN+4'])
    const child = nodeChild(
      `const pid = Number(process.argv[2]);
     for (let i = 0; i < 1000; i++) ipckit.kill(pid, i % 2 ? 'SIGUSR2' : 'SIGUSR1');
     ipckit.sigqueue(pid, 'SIGRTMIN+4', 1000);   // end marker: pending standard signals go first
     console.log('done')`,
      [String(process.pid)],
    )
    const counts: Record<string, number> = { SIGUSR1: 0, SIGUSR2: 0 }
    // The kernel hands pending standard signals out before the real-time marker, but handlers
    // on different threads may write their records in another order: after the marker, keep
    // reading until nothing more comes for a while.
    let marker = false
    for (;;) {
      const next = watcher.next()
      const r = marker ? await Promise.race([next, sleep(200).then(() => null)]) : await next
      if (r === null || r.done) break
      t.is(r.value.pid, child.pid)
      if (r.value.name === 'SIGRTMIN+4') marker = true
      else counts[r.value.name]!++
    }
    t.is((await child.done).code, 0)
    t.log(
      `delivered: SIGUSR1 ${counts.SIGUSR1}/500, SIGUSR2 ${counts.SIGUSR2}/500 (standard signals coalesce while pending)`,
    )
    for (const n of Object.values(counts)) t.true(n >= 1 && n <= 500)
    t.is(watcher.dropped, 0)
    watcher.close()
    // SIGUSR1 was not chained to Node's inspector trigger, and nothing is left behind.
    t.is(signalDisposition('SIGUSR2'), 'default')
  },
)

/**
 * 1,000 `sigqueue`s of `signal` from a Node child to this process, values 0..999, read by
 * `watcher`; several of this process's threads are kept busy meanwhile, so that without
 * confinement two of them often handle deliveries at the same moment.
 */
async function realTimeBurst(watcher: AsyncIterator<SignalEvent>, signal: string) {
  const busy = Array.from(
    { length: 2 },
    () => new Worker('const end = Date.now() + 20000; while (Date.now() < end) {}', { eval: true }),
  )
  try {
    const child = nodeChild(
      `const pid = Number(process.argv[2]);
       for (let i = 0; i < 1000; ) {
         try { ipckit.sigqueue(pid, process.argv[3], i); i++ } catch (e) { if (e.code !== 'EAGAIN') throw e }
       }`,
      [String(process.pid), signal],
    )
    const events = await take(watcher, 1000)
    return { events, pid: child.pid, child: await child.done }
  } finally {
    await Promise.all(busy.map((w) => w.terminate()))
  }
}

rtTestSerial(
  '1,000 real-time signals from a Node child all arrive once each, in send order, with their values',
  async (t) => {
    using watcher = watchSignals('SIGRTMIN+5')
    t.true(watcher.ordered)
    const { events, pid, child } = await realTimeBurst(watcher, 'SIGRTMIN+5')
    t.deepEqual(
      events.map((e) => e.value),
      Array.from({ length: 1000 }, (_, i) => i),
    )
    t.true(events.every((e) => e.pid === pid && e.code === -1 && e.name === 'SIGRTMIN+5'))
    t.is(child.code, 0)
    t.is(watcher.dropped, 0)
    // The same burst to an unordered watch: none lost, but handlers on two threads at once may
    // record two swapped (what the ordered watch prevents).
    using unordered = watchSignals('SIGRTMIN+12', { ordered: false })
    t.false(unordered.ordered)
    const second = await realTimeBurst(unordered, 'SIGRTMIN+12')
    const values = second.events.map((e) => e.value!)
    t.deepEqual(
      [...values].sort((a, b) => a - b),
      Array.from({ length: 1000 }, (_, i) => i),
    )
    const inversions = values.filter((v, i) => i > 0 && v < values[i - 1]!).length
    t.log(`unordered watch: ${inversions} of 999 neighbouring pairs recorded out of send order`)
  },
)

rtTest(
  'an ordered watch blocks its real-time signal in every thread but ipckit’s poller thread, and gives it back',
  async (t) => {
    const r = await runNode(`
    const fs = require('node:fs')
    const { Worker } = require('node:worker_threads')
    const n = ipckit.describeSignal('SIGRTMIN+7').number
    const bit = 1n << BigInt(n - 1)
    const threads = () => fs.readdirSync('/proc/self/task').map((tid) => {
      const status = fs.readFileSync('/proc/self/task/' + tid + '/status', 'utf8')
      const blk = BigInt('0x' + /SigBlk:\\s+(\\S+)/.exec(status)[1])
      return { tid, comm: fs.readFileSync('/proc/self/task/' + tid + '/comm', 'utf8').trim(), blocks: (blk & bit) !== 0n }
    })
    const blockedBy = () => threads().filter((x) => x.blocks).map((x) => x.tid).sort()
    const before = blockedBy()
    const unordered = ipckit.watchSignals('SIGRTMIN+7', { ordered: false })
    console.log('unordered', unordered.ordered, JSON.stringify(blockedBy()) === JSON.stringify(before))
    unordered.close()
    const w = ipckit.watchSignals(['SIGRTMIN+7', 'SIGUSR2'])
    const during = threads()
    const free = during.filter((x) => !x.blocks)
    console.log('ordered', w.ordered, free.length, free[0] && free[0].comm, during.length > 3)
    // A worker started now inherits the block; so does every thread it starts.
    const worker = new Worker("require('node:worker_threads').parentPort.postMessage(require('node:fs').readFileSync('/proc/thread-self/status', 'utf8'))", { eval: true })
    worker.once('message', async (status) => {
      const blk = BigInt('0x' + /SigBlk:\\s+(\\S+)/.exec(status)[1])
      console.log('worker blocks', (blk & bit) !== 0n)
      await worker.terminate()
      w.close()
      const after = threads()
      // Blocked after: only threads that blocked it before, and ipckit's own waiting threads
      // (they block every signal, started meanwhile by next() calls of other code).
      const stray = after.filter((x) => x.blocks && !before.includes(x.tid) && !x.comm.startsWith('ipckit'))
      console.log('after', w.ordered, stray.length, JSON.stringify(stray))
    })
  `)
    t.deepEqual(r.stdout.trim().split('\n'), [
      'unordered false true',
      'ordered true 1 ipckit-poller true',
      'worker blocks true',
      'after false 0 []',
    ])
  },
)

rtTest('several watchers of one signal each see every delivery', async (t) => {
  using a = watchSignals('SIGRTMIN+6')
  using b = watchSignals(['SIGRTMIN+6', 'SIGRTMIN+7'])
  sigqueue(process.pid, 'SIGRTMIN+6', 1)
  sigqueue(process.pid, 'SIGRTMIN+6', 2)
  t.deepEqual(
    (await take(a, 2)).map((e) => e.value),
    [1, 2],
  )
  t.deepEqual(
    (await take(b, 2)).map((e) => e.value),
    [1, 2],
  )
  a.close()
  kill(process.pid, 'SIGRTMIN+6')
  t.like((await take(b, 1))[0], { code: 0, value: undefined, pid: process.pid })
})

rtTest('handlers are in place when watchSignals returns; ending the iteration restores the disposition', async (t) => {
  t.is(signalDisposition('SIGRTMIN+8'), 'default')
  const watcher = watchSignals('SIGRTMIN+8')
  kill(process.pid, 'SIGRTMIN+8')
  for await (const s of watcher) {
    t.is(signalDisposition('SIGRTMIN+8'), 'handler')
    t.is(s.number, RTMIN + 8)
    break
  }
  t.is(signalDisposition('SIGRTMIN+8'), 'default')
  ignoreSignal('SIGRTMIN+9')
  t.teardown(() => restoreSignal('SIGRTMIN+9'))
  const w = watchSignals('SIGRTMIN+9')
  t.like(
    t.throws(() => ignoreSignal('SIGRTMIN+9'), { instanceOf: IpcError }),
    { code: 'EBUSY', syscall: 'sigaction' },
  )
  w.close()
  t.is(signalDisposition('SIGRTMIN+9'), 'ignore')
  restoreSignal('SIGRTMIN+9')
  t.is(signalDisposition('SIGRTMIN+9'), 'default')
})

// The ordering in the first loop above relies on the install being synchronous:
rtTest('a signal sent right after watchSignals returns is seen', async (t) => {
  for (let i = 0; i < 20; i++) {
    using w = watchSignals('SIGRTMIN+10')
    kill(process.pid, 'SIGRTMIN+10')
    t.is((await take(w, 1))[0]!.name, 'SIGRTMIN+10')
  }
})

rtTestSerial(
  'a delivered signal is taken with no thread hop; a pending next() resolves from another process',
  async (t) => {
    // Cancelled waits of earlier tests report back asynchronously; let them.
    for (let i = 0; i < 200 && pendingWaits() > 0; i++) await sleep(5)
    // Unordered: a signal this thread sends itself is then handled on this thread before
    // sigqueue returns (an ordered watch handles it on ipckit's receiving thread, a moment later).
    using w = watchSignals('SIGRTMIN+11', { ordered: false })
    sigqueue(process.pid, 'SIGRTMIN+11', 5)
    const ready = w.next()
    t.is(pendingWaits(), 0)
    t.is((await ready).value?.value, 5)
    const pending = w.next()
    await sleep(10)
    t.is(pendingWaits(), 1)
    await runNode(`ipckit.sigqueue(Number(process.argv[2]), 'SIGRTMIN+11', 6)`, [String(process.pid)])
    t.is((await pending).value?.value, 6)
    t.is(pendingWaits(), 0)
  },
)

// Promptly: next() would wait forever otherwise; only a deadline is checked (bench/ measures speed).
rtTestSerial('abort ends a pending next() promptly with an AbortError and restores the disposition', async (t) => {
  const ac = new AbortController()
  const w = watchSignals('SIGRTMIN+12', { signal: ac.signal })
  const pending = w.next()
  await sleep(20)
  const reason = new Error('stop')
  ac.abort(reason)
  const err = await t.throwsAsync(within(pending, 'the aborted next() rejects'), { instanceOf: AbortError })
  t.is(err.cause, reason)
  t.true(w.closed)
  t.is(signalDisposition('SIGRTMIN+12'), 'default')
  t.deepEqual(await w.next(), { done: true, value: undefined })
  // An already aborted signal: the first next() rejects, nothing stays installed.
  const dead = watchSignals('SIGRTMIN+12', { signal: AbortSignal.abort() })
  t.is(signalDisposition('SIGRTMIN+12'), 'default')
  await t.throwsAsync(dead.next(), { name: 'AbortError' })
})

rtTest('close() or return() during a pending next() resolves done; later calls are done', async (t) => {
  const w = watchSignals('SIGRTMIN+13')
  const pending = w.next()
  await sleep(10)
  w.close()
  w.close()
  t.deepEqual(await pending, { done: true, value: undefined })
  t.deepEqual(await w.next(), { done: true, value: undefined })
  const v = watchSignals('SIGRTMIN+13')
  const next = v.next()
  t.deepEqual(await v.return(), { done: true, value: undefined })
  t.deepEqual(await next, { done: true, value: undefined })
  t.is(signalDisposition('SIGRTMIN+13'), 'default')
})

for (const sig of ['SIGUSR2', 'SIGTERM']) {
  test(`coexistence with process.on, in both orders: both see every ${sig}`, async (t) => {
    const r = await runNode(
      `
      const { watchSignals, kill, signalDisposition } = ipckit
      const SIG = process.argv[2]
      const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
      const until = async (f) => { for (let i = 0; i < 500 && !f(); i++) await sleep(5) }
      const log = (...a) => console.log(a.join(' '))
      ;(async () => {
        let node = 0
        const onSig = () => node++
        // process.on first, then a watch.
        process.on(SIG, onSig)
        let w = watchSignals(SIG)
        kill(process.pid, SIG)
        const a = await w.next()
        await until(() => node === 1)
        log('on-first', a.value.name, node)
        w.close()
        log('after-watch', signalDisposition(SIG))
        kill(process.pid, SIG)
        await until(() => node === 2)
        log('node-alone', node)
        process.off(SIG, onSig)
        log('after-off', signalDisposition(SIG))
        // A watch first, then process.on (libuv replaces the handler; ipckit takes it back).
        w = watchSignals(SIG)
        process.on(SIG, onSig)
        kill(process.pid, SIG)
        const b = await w.next()
        await until(() => node === 3)
        log('watch-first', b.value.name, node)
        process.off(SIG, onSig)   // libuv resets to default; ipckit reinstalls
        log('off-while-watching', signalDisposition(SIG))
        kill(process.pid, SIG)    // would kill the process if the watch were gone
        const c = await w.next()
        log('watch-alone', c.value.name, node)
        w.close()
        log('end', signalDisposition(SIG))
      })()
    `,
      [sig],
    )
    t.deepEqual(r.stdout.trim().split('\n'), [
      `on-first ${sig} 1`,
      'after-watch handler',
      'node-alone 2',
      'after-off default',
      `watch-first ${sig} 3`,
      'off-while-watching handler',
      `watch-alone ${sig} 3`,
      'end default',
    ])
  })
}

test('watching SIGTERM/SIGUSR1 replaces Node’s own handlers as process.on does, and gives them back', async (t) => {
  const r = await nodeChild(`
    const { watchSignals, kill, signalDisposition } = ipckit
    ;(async () => {
      const w = watchSignals(['SIGTERM', 'SIGUSR1'])
      kill(process.pid, 'SIGTERM')            // Node's own handler would exit
      kill(process.pid, 'SIGUSR1')            // Node's own handler would start the inspector
      const got = [(await w.next()).value.name, (await w.next()).value.name]
      console.log('got', got.sort().join(' '))
      w.close()
      console.log('back', signalDisposition('SIGTERM'), signalDisposition('SIGUSR1'))
      setTimeout(() => kill(process.pid, 'SIGTERM'), 100)
      setTimeout(() => console.log('survived'), 5000)
    })()
  `).done
  t.is(r.signal, 'SIGTERM')
  t.deepEqual(r.stdout.trim().split('\n'), ['got SIGTERM SIGUSR1', 'back handler handler'])
  t.notRegex(r.stderr, /Debugger listening/)
})

test('SIGCHLD: a watcher survives libuv installing and removing its child watcher', async (t) => {
  // A fresh process, so that the spawn below is its first and libuv installs its SIGCHLD
  // handler over the watcher's.
  const r = await runNode(`
    const { spawn } = require('node:child_process')
    const { watchSignals } = ipckit
    const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
    ;(async () => {
      const w = watchSignals('SIGCHLD')
      for (let round = 0; round < 2; round++) {
        const child = spawn('sleep', ['0.3'])
        const exited = new Promise((r) => child.on('exit', (code) => r(code)))
        let got
        while (!got) {
          const e = (await w.next()).value
          if (e.pid === child.pid) got = e
        }
        console.log('sigchld', got.code, 'exit', await exited)
        await sleep(50)
      }
      w.close()
    })()
  `)
  // CLD_EXITED is 1; libuv, chained to, still reaps the child and reports its exit.
  t.deepEqual(r.stdout.trim().split('\n'), ['sigchld 1 exit 0', 'sigchld 1 exit 0'])
})

test('ignoreSignal makes a process survive a signal; restoreSignal gives the default action back', async (t) => {
  const r = await nodeChild(`
    const { ignoreSignal, restoreSignal, kill, signalDisposition } = ipckit
    ignoreSignal('SIGHUP')
    kill(process.pid, 'SIGHUP')
    console.log(signalDisposition('SIGHUP'))
    process.on('SIGWINCH', () => {})
    try { ignoreSignal('SIGWINCH') } catch (e) { console.log(e.code) }
    restoreSignal('SIGHUP')
    console.log(signalDisposition('SIGHUP'))
    kill(process.pid, 'SIGHUP')
    setTimeout(() => console.log('survived'), 5000)
  `).done
  t.deepEqual(r.stdout.trim().split('\n'), ['ignore', 'ERR_INVALID_STATE', 'default'])
  t.is(r.signal, 'SIGHUP')
})

test('an open watcher does not keep the process alive, and close() releases a pending next()', async (t) => {
  const idle = await nodeChild(`ipckit.watchSignals('SIGUSR2'); console.log('bye')`).done
  t.is(idle.code, 0)
  const { ms, value } = await timed(
    () =>
      nodeChild(`
        const w = ipckit.watchSignals('SIGUSR2')
        w.next().then((r) => console.log('done', r.done))
        setTimeout(() => w.close(), 50)
      `).done,
  )
  t.is(value.code, 0)
  t.is(value.stdout.trim(), 'done true')
  t.true(ms < 20_000)
})

rtTest('a watcher dropped without close() is collected, and its handlers are removed', async (t) => {
  const r = await runNode(`
    require('v8').setFlagsFromString('--expose-gc')
    const gc = require('vm').runInNewContext('gc')
    ;(() => { ipckit.watchSignals(['SIGUSR2', 'SIGRTMIN+1']) })()
    console.log(ipckit.signalDisposition('SIGUSR2'))
    ;(async () => {
      for (let i = 0; i < 100 && ipckit.signalDisposition('SIGUSR2') !== 'default'; i++) {
        gc()
        await new Promise((r) => setTimeout(r, 20))
      }
      console.log(ipckit.signalDisposition('SIGUSR2'), ipckit.signalDisposition('SIGRTMIN+1'))
    })()
  `)
  t.deepEqual(r.stdout.trim().split('\n'), ['handler', 'default default'])
})

test('a watcher in a worker thread sees signals sent to the process', async (t) => {
  const r = await runNode(`
    const { Worker } = require('node:worker_threads')
    const w = new Worker(\`
      const ipckit = require(\${JSON.stringify(${JSON.stringify(SOURCE_ENTRY)})})
      const { parentPort } = require('node:worker_threads')
      const watcher = ipckit.watchSignals('SIGUSR2')
      parentPort.postMessage('ready')
      watcher.next().then((r) => { parentPort.postMessage(r.value.name + ' ' + (r.value.pid === process.pid)); watcher.close() })
    \`, { eval: true })
    w.on('message', (m) => { console.log(m); if (m === 'ready') ipckit.kill(process.pid, 'SIGUSR2') })
    w.on('exit', (code) => console.log('exit', code, ipckit.signalDisposition('SIGUSR2')))
  `)
  t.deepEqual(r.stdout.trim().split('\n'), ['ready', 'SIGUSR2 true', 'exit 0 default'])
})

rtTest(
  'an ordered watch in a worker thread gets 500 real-time signals in send order; ending the worker gives the signal back',
  async (t) => {
    // The worker confines the signal from its own thread: the main thread (and its other threads)
    // must be changed from there, and a sibling worker started meanwhile must inherit the block.
    const r = await runNode(`
    const fs = require('node:fs')
    const { Worker } = require('node:worker_threads')
    const n = ipckit.describeSignal('SIGRTMIN+9').number
    const bit = 1n << BigInt(n - 1)
    // Threads that block it now, but ipckit's own (its waiting threads block every signal).
    const blockedBy = () => fs.readdirSync('/proc/self/task').filter((tid) =>
      !fs.readFileSync('/proc/self/task/' + tid + '/comm', 'utf8').startsWith('ipckit') &&
      (BigInt('0x' + /SigBlk:\\s+(\\S+)/.exec(fs.readFileSync('/proc/self/task/' + tid + '/status', 'utf8'))[1]) & bit) !== 0n)
    const before = blockedBy().length
    const w = new Worker(\`
      const ipckit = require(\${JSON.stringify(${JSON.stringify(SOURCE_ENTRY)})})
      const { parentPort } = require('node:worker_threads')
      const watcher = ipckit.watchSignals('SIGRTMIN+9')
      parentPort.postMessage({ ready: watcher.ordered })
      ;(async () => {
        const values = []
        for await (const s of watcher) { values.push(s.value); if (values.length === 500) break }
        parentPort.postMessage({ values })
      })()
    \`, { eval: true })
    w.on('message', (m) => {
      if (m.ready !== undefined) {
        const busy = new Worker('const end = Date.now() + 1000; while (Date.now() < end) {}', { eval: true })
        console.log('ordered', m.ready, 'main blocks', blockedBy().includes(String(process.pid)))
        for (let i = 0; i < 500; ) {
          try { ipckit.sigqueue(process.pid, 'SIGRTMIN+9', i); i++ } catch (e) { if (e.code !== 'EAGAIN') throw e }
        }
        busy.terminate()
      } else {
        console.log('in order', JSON.stringify(m.values) === JSON.stringify(Array.from({ length: 500 }, (_, i) => i)))
        w.terminate()
      }
    })
    w.on('exit', () => setTimeout(() => console.log('given back', blockedBy().length <= before), 100))
  `)
    t.deepEqual(r.stdout.trim().split('\n'), ['ordered true main blocks true', 'in order true', 'given back true'])
  },
)

rtTest(
  'an ordered watch started while other threads start threads (workers, libuv’s pool on a first fs call) confines them too: 500 real-time signals in send order, and the signal given back',
  async (t) => {
    // Two workers wait on a flag that the main thread raises right before watchSignals: one then
    // makes the process's first fs call (libuv starts its 32 pool threads from that thread), the
    // other starts three workers. Threads that are being created are caught with every signal
    // blocked for a moment (inside pthread_create): each one must be confined all the same.
    const child = `
    process.env.UV_THREADPOOL_SIZE = '32'
    const fs = require('node:fs')
    const { Worker } = require('node:worker_threads')
    const sig = 'SIGRTMIN+14'
    const bit = 1n << BigInt(ipckit.describeSignal(sig).number - 1)
    const tids = () => fs.readdirSync('/proc/self/task')
    const read = (tid, file) => { try { return fs.readFileSync('/proc/self/task/' + tid + '/' + file, 'utf8') } catch { return '' } }
    const blocks = (tid) => /SigBlk:\\s+(\\S+)/.test(read(tid, 'status')) &&
      (BigInt('0x' + /SigBlk:\\s+(\\S+)/.exec(read(tid, 'status'))[1]) & bit) !== 0n
    const before = tids().filter(blocks)
    const flags = new Int32Array(new SharedArrayBuffer(8)) // [0]: go, [1]: stop
    const idle = 'const f = require("node:worker_threads").workerData; const t = setInterval(() => { if (Atomics.load(f, 1)) clearInterval(t) }, 5)'
    const starter = (job) => \`
      const { Worker, workerData: flags, parentPort } = require('node:worker_threads')
      parentPort.postMessage('ready')
      Atomics.wait(flags, 0, 0)
      \${job}
      const t = setInterval(() => { if (Atomics.load(flags, 1)) clearInterval(t) }, 5)
    \`
    const workers = [
      starter("require('node:fs').readFile(__filename, () => {})"),
      starter('for (let i = 0; i < 3; i++) new Worker(' + JSON.stringify(idle) + ', { eval: true, workerData: flags })'),
    ].map((code) => new Worker(code, { eval: true, workerData: flags }))
    let ready = 0
    for (const worker of workers) worker.once('message', async () => {
      if (++ready < workers.length) return
      const threads = tids().length
      Atomics.store(flags, 0, 1)
      Atomics.notify(flags, 0)
      const w = ipckit.watchSignals(sig)
      const ordered = w.ordered
      for (let i = 0; i < 500; i++) ipckit.sigqueue(process.pid, sig, i)
      const values = []
      while (values.length < 500) values.push((await w.next()).value.value)
      const inOrder = JSON.stringify(values) === JSON.stringify(Array.from({ length: 500 }, (_, i) => i))
      console.log('ordered', ordered, 'in order', inOrder, 'still ordered', w.ordered)
      // The pool and the three workers were started meanwhile.
      console.log('threads started', tids().length - threads >= 32 + 3)
      w.close()
      Atomics.store(flags, 1, 1)
      await Promise.all(workers.map((x) => new Promise((r) => x.once('exit', r))))
      // Blocked now only where it was before, and in ipckit's own waiting threads.
      const stray = tids().filter((tid) => blocks(tid) && !before.includes(tid) && !read(tid, 'comm').startsWith('ipckit'))
      console.log('given back', JSON.stringify(stray))
    })
  `
    // Three processes (the pool starts once in each), at once.
    const runs = await Promise.all([0, 1, 2].map(() => runNode(child)))
    for (const [i, r] of runs.entries()) {
      t.deepEqual(
        r.stdout.trim().split('\n'),
        ['ordered true in order true still ordered true', 'threads started true', 'given back []'],
        `process ${i}`,
      )
    }
  },
)

test('at most 128 watchers at once: the next one fails with EMFILE naming that limit, and installs nothing', async (t) => {
  const r = await runNode(`
    const ws = []
    try { for (let i = 0; i < 200; i++) ws.push(ipckit.watchSignals(i % 2 ? 'SIGUSR2' : 'SIGHUP')) }
    catch (e) { console.log(ws.length, e.code, e.syscall, e instanceof ipckit.IpcError); console.log(e.message) }
    console.log(require('node:fs').readdirSync('/dev/fd').length < 300)
    for (const w of ws) w.close()
    console.log(ipckit.signalDisposition('SIGUSR2'), ipckit.signalDisposition('SIGHUP'))
  `)
  // The limit is ipckit's own, not the descriptor limit (far from reached), and the message
  // says which: the point of this error is its text.
  t.deepEqual(r.stdout.trim().split('\n'), [
    '128 EMFILE watch true',
    'EMFILE: too many signal watches (ipckit allows 128 at once in a process), watch',
    'true',
    'default default',
  ])
})

const DEFAULT_ACTION_C = `
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static void probe(int s) { (void)s; _exit(0); }

/* argv: signal, folder for core files, 1 to allow core dumps there. Forks a child that
   handles nothing but the probe (SIGRTMIN), prints its pid, and reports how it ends. */
int main(int argc, char **argv) {
  if (argc != 4) return 2;
  int sig = atoi(argv[1]);
  alarm(30);   /* a child that never ends the expected way fails the test, not hangs it */
  int fds[2];
  if (pipe(fds) != 0) return 3;
  pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);   /* a group with a parent outside it: stop signals are not discarded */
    struct rlimit rl = { RLIM_INFINITY, RLIM_INFINITY };
    if (atoi(argv[3]) == 0) rl.rlim_cur = 1;   /* 1 byte: no core file, not even piped */
    setrlimit(RLIMIT_CORE, &rl);
    if (chdir(argv[2]) != 0) _exit(90);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    for (int s = 1; s < 32; s++) if (s != SIGKILL && s != SIGSTOP) sigaction(s, &sa, NULL);
    sa.sa_handler = probe;
    sigaction(SIGRTMIN, &sa, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (write(fds[1], "r", 1) != 1) _exit(91);
    for (;;) pause();
  }
  close(fds[1]);
  char c;
  if (read(fds[0], &c, 1) != 1) return 4;
  int st;
  if (sig == SIGCONT) {   /* continue needs a stopped process to show */
    kill(pid, SIGSTOP);
    if (waitpid(pid, &st, WUNTRACED) < 0 || !WIFSTOPPED(st)) return 5;
  }
  printf("pid %d\\n", (int)pid);
  fflush(stdout);
  if (waitpid(pid, &st, WUNTRACED | WCONTINUED) < 0) return 6;
  if (WIFSTOPPED(st)) { printf("stop\\n"); kill(pid, SIGKILL); waitpid(pid, &st, 0); }
  else if (WIFCONTINUED(st)) { printf("continue\\n"); kill(pid, SIGKILL); waitpid(pid, &st, 0); }
  else if (WIFSIGNALED(st)) printf("%s %d\\n", WCOREDUMP(st) ? "core" : "terminate", WTERMSIG(st));
  else if (WEXITSTATUS(st) == 0) printf("ignore\\n");
  else printf("exit %d\\n", WEXITSTATUS(st));
  return 0;
}
`

linuxOnly(test, 'reads /proc/sys/kernel/core_pattern, and the probe is SIGRTMIN')(
  'the default action table matches how an unhandling child really ends, for every standard signal',
  async (t) => {
    const exe = compileC('default-action', DEFAULT_ACTION_C)
    const dir = tempDir('ipckit-test-core-')
    t.teardown(dir.remove)
    // Core files go to the private folder when core_pattern is a plain name; otherwise the
    // child's core limit is 1 byte (nothing dumped) and a core signal shows as a plain kill.
    const pattern = readFileSync('/proc/sys/kernel/core_pattern', 'utf8').trim()
    const cores = !pattern.startsWith('|') && !pattern.includes('/')
    const standard = listSignals().filter((s) => s.number < 32)
    t.is(standard.length, 31)
    const observe = async (s: (typeof standard)[number]) => {
      // A folder per signal: concurrent dumps to one 'core' file would fail each other.
      const cwd = join(dir.path, s.name)
      mkdirSync(cwd)
      const c = cChild(exe, [String(s.number), cwd, cores ? '1' : '0'])
      const pid = Number((await c.line(/^pid /)).split(' ')[1])
      kill(pid, s.name)
      // The probe: a process still running exits 0. Not after SIGCONT, whose "continued" state
      // the exit would hide; the supervisor ends that child itself.
      try {
        if (s.name !== 'SIGCONT') kill(pid, 'SIGRTMIN')
      } catch (e) {
        if (!(e instanceof IpcError && e.code === 'ESRCH')) throw e
      }
      const r = await c.done
      t.is(r.code, 0, r.stderr)
      return r.stdout.trim().split('\n')[1]
    }
    const expected = (s: (typeof standard)[number]) => {
      switch (s.defaultAction) {
        case 'terminate':
          return `terminate ${s.number}`
        case 'core':
          return `${cores ? 'core' : 'terminate'} ${s.number}`
        default:
          return s.defaultAction
      }
    }
    for (let i = 0; i < standard.length; i += 4) {
      const batch = standard.slice(i, i + 4)
      const seen = await Promise.all(batch.map(observe))
      batch.forEach((s, j) => t.is(seen[j], expected(s), s.name))
    }
    t.like(describeSignal('SIGCHLD'), { defaultAction: 'ignore' })
    t.like(describeSignal('SIGCONT'), { defaultAction: 'continue' })
    t.like(describeSignal('SIGTSTP'), { defaultAction: 'stop' })
    t.like(describeSignal('SIGQUIT'), { defaultAction: 'core' })
  },
)

notLinux(test)(
  'no real-time signals: SIGRTMIN names are unknown, and sigqueue fails with IpcError ENOSYS',
  async (t) => {
    t.true(RTMIN > RTMAX, 'an empty real-time range')
    t.is(listSignals().length, 31)
    for (const name of ['SIGRTMIN', 'SIGRTMIN+1', 'SIGRTMAX']) {
      t.throws(() => describeSignal(name), { code: 'ERR_UNKNOWN_SIGNAL' })
      t.throws(() => watchSignals(name), { code: 'ERR_UNKNOWN_SIGNAL' })
    }
    kill(process.pid, 0)
    t.like(
      t.throws(() => sigqueue(process.pid, 'SIGUSR2', 1), { instanceOf: IpcError }),
      { code: 'ENOSYS', syscall: 'sigqueue' },
    )
    t.is(signalDisposition('SIGUSR2'), 'default', 'nothing was sent or installed')
  },
)

/**
 * A Python process that catches SIGCHLD, SIGIO, SIGABRT and SIGSYS and prints each number it
 * gets, after printing the numbers Python's own `signal` module gives the aliases.
 */
const PY_CATCHER = `
import signal, sys, time
got = []
for s in (signal.SIGCHLD, signal.SIGIO, signal.SIGABRT, signal.SIGSYS):
    signal.signal(s, lambda n, f: got.append(n))
print('aliases', signal.SIGCLD, signal.SIGPOLL, signal.SIGIOT, flush=True)
while len(got) < 4:
    time.sleep(0.01)
print('got', *got, flush=True)
`

needs(
  linuxOnly(test, 'SIGCLD, SIGPOLL and SIGUNUSED are Linux names'),
  { command: 'python3' },
  { perl: 'Config' },
)(
  'SIGCLD, SIGPOLL, SIGIOT, SIGUNUSED: kill, describeSignal and listSignals take the names Python and Perl know',
  async (t) => {
    const child = cChild('python3', ['-c', PY_CATCHER])
    t.teardown(() => child.kill('SIGKILL'))
    const [, cld, poll, iot] = (await child.line(/^aliases /)).split(' ').map(Number)
    // Perl's %Config names every signal with its aliases (sig_name / sig_num).
    const perlNames = await perl(`use Config; my @n = split ' ', $Config{sig_name}; my @v = split ' ', $Config{sig_num};
      my %h; @h{@n} = @v; print join(' ', map { $h{$_} } qw(CLD POLL IOT SYS)), "\\n"`)
    const [perlCld, perlPoll, perlIot, perlSys] = perlNames.trim().split(' ').map(Number)
    t.deepEqual([cld, poll, iot], [perlCld, perlPoll, perlIot])
    const expected = { SIGCLD: cld!, SIGPOLL: poll!, SIGIOT: iot!, SIGUNUSED: perlSys! }
    for (const [alias, number] of Object.entries(expected)) {
      const d = describeSignal(alias)
      t.is(d.number, number, alias)
      t.true(d.aliases.includes(alias), `${d.name} lists ${alias}`)
      t.is(listSignals().find((s) => s.aliases.includes(alias))?.number, number)
      kill(child.pid, alias)
      await sleep(30)
    }
    const r = await child.done
    t.is(r.code, 0, r.stderr)
    t.deepEqual(
      r.stdout
        .trim()
        .split('\n')[1]!
        .split(' ')
        .slice(1)
        .map(Number)
        .sort((a, b) => a - b),
      Object.values(expected).sort((a, b) => a - b),
    )
    t.deepEqual(describeSignal('SIGCHLD').aliases, ['SIGCLD'])
    t.deepEqual(describeSignal('SIGTERM').aliases, [])
  },
)
