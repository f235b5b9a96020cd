import { spawn, spawnSync } from 'node:child_process'
import { closeSync, openSync, readdirSync, readlinkSync } from 'node:fs'

import anyTest from 'ava'

import { AbortError, IpcError, PidFd, socketpair } from '../ts/index'
import { native } from '../ts/native'
import {
  cChild,
  compileC,
  fdsLeftOpen,
  fdSnapshot,
  linuxOnly,
  NOBODY,
  notLinux,
  removeBuilds,
  runNode,
  runNodeUnder,
  sleep,
} from './helpers'

/** pidfd is Linux's: on macOS every test but the ENOSYS one is skipped. */
const test = linuxOnly(anyTest, 'pidfd_open is Linux-only (ENOSYS on macOS, tested instead)')

anyTest.after.always(removeBuilds)

/** A child that sleeps, and a promise of its 'exit' event (Node reaps it). */
function sleeper(seconds = 30) {
  const child = spawn('sleep', [String(seconds)], { stdio: 'ignore' })
  const exited = new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
    child.on('exit', (c, s) => resolve([c, s])),
  )
  return { child, pid: child.pid!, exited }
}

test('open, sendSignal, exited and waitExit on a child; the descriptor is a pidfd', async (t) => {
  const { pid, exited } = sleeper()
  using proc = PidFd.open(pid)
  t.is(proc.pid, pid)
  t.is(readlinkSync(`/proc/self/fd/${proc.fd}`), 'anon_inode:[pidfd]')
  t.false(proc.exited)
  t.is(proc.exitStatus(), null)
  proc.sendSignal(0)
  proc.sendSignal('SIGTERM')
  const exit = await proc.waitExit()
  t.true(proc.exited)
  // Node reaps its children as soon as it sees them exit: the status is known only if the pidfd
  // was read first, and then it must be the true one.
  t.true(
    [
      JSON.stringify({ code: null, signal: 'SIGTERM', coreDumped: false }),
      JSON.stringify({ code: null, signal: null, coreDumped: false }),
    ].includes(JSON.stringify(exit)),
    JSON.stringify(exit),
  )
  t.deepEqual(await exited, [null, 'SIGTERM'])
  t.like(
    t.throws(() => proc.sendSignal('SIGKILL'), { instanceOf: IpcError }),
    { code: 'ESRCH', syscall: 'pidfd_send_signal' },
  )
})

test('waitExitSync reads the exit status before Node reaps the child: code, or signal and core dump', (t) => {
  const cases: Array<[string[], object]> = [
    [['-c', 'exit 3'], { code: 3, signal: null, coreDumped: false }],
    [['-c', 'kill -USR1 $$'], { code: null, signal: 'SIGUSR1', coreDumped: false }],
    [['-c', 'ulimit -c 0; kill -QUIT $$'], { code: null, signal: 'SIGQUIT', coreDumped: false }],
  ]
  for (const [args, expected] of cases) {
    const child = spawn('sh', args, { stdio: 'ignore' })
    using proc = PidFd.open(child.pid!)
    // The JavaScript thread is blocked here, so Node cannot reap the child first.
    t.deepEqual(proc.waitExitSync({ timeoutMs: 20_000 }), expected, args[1])
  }
  using me = PidFd.open(process.pid)
  const started = Date.now()
  t.is(me.waitExitSync({ timeoutMs: 50 }), null)
  t.true(Date.now() - started >= 49)
})

// Serial: it counts the event loop's fd watches, which every test of this file shares.
test.serial('any process, not only children: the exit of a process another one started is awaited', async (t) => {
  // The shell starts `sleep` in the background, prints its pid and exits: sleep is not ours.
  const out = spawnSync('sh', ['-c', 'sleep 30 >/dev/null 2>&1 & echo $!'], { encoding: 'utf8' })
  const pid = Number(out.stdout.trim())
  t.true(pid > 0)
  using proc = PidFd.open(pid)
  t.false(proc.exited)
  const waiting = proc.waitExit()
  await sleep(20)
  t.is(native.pollCount(), 1, 'the wait is a watch on the event loop')
  proc.sendSignal('SIGKILL')
  t.deepEqual(await waiting, { code: null, signal: null, coreDumped: false }, 'not our child: no status')
  t.true(proc.exited)
})

test('a C child: the signal sent through the pidfd reaches its handler, and its exit code is read', async (t) => {
  const exe = compileC(
    'pidfd-target',
    `#include <signal.h>
#include <stdio.h>
#include <unistd.h>
static volatile sig_atomic_t got;
static void on_usr2(int s) { got = s; }
int main(void) {
  signal(SIGUSR2, on_usr2);
  printf("ready %d\\n", getpid()); fflush(stdout);
  while (!got) pause();
  printf("got %d\\n", (int)got); fflush(stdout);
  return 42;
}
`,
  )
  const c = cChild(exe)
  const ready = await c.line(/^ready/)
  t.is(Number(ready.split(' ')[1]), c.pid)
  using proc = PidFd.open(c.pid)
  proc.sendSignal('SIGUSR2')
  t.deepEqual(proc.waitExitSync({ timeoutMs: 20_000 }), { code: 42, signal: null, coreDumped: false })
  const r = await c.done
  t.is(r.stdout.trim().split('\n')[1], 'got 12')
  t.is(r.code, 42)
})

/** Why a private pid namespace cannot be made here (unshare(1) needs root or user namespaces). */
const unshareMissing = ((): string | undefined => {
  if (process.platform !== 'linux') return undefined // the whole file is skipped there
  const probe = spawnSync('unshare', ['--pid', '--fork', '--mount-proc', 'true'], { stdio: 'pipe' })
  if (probe.error) return `unshare(1) is not available (${probe.error.message})`
  return probe.status === 0 ? undefined : `unshare --pid failed: ${probe.stderr.toString().trim()}`
})()

;(unshareMissing ? anyTest.skip : test.serial)(
  `pid reuse: after the process is reaped and its pid given to a new one, sendSignal fails with ESRCH and the new process lives${
    unshareMissing ? ` [skipped: ${unshareMissing}]` : ''
  }`,
  async (t) => {
    // In a pid namespace of its own, nothing else forks: ns_last_pid makes the next pid exact.
    const r = await runNodeUnder(
      ['unshare', '--pid', '--fork', '--mount-proc'],
      `const { spawn } = require('node:child_process');
       const { writeFileSync } = require('node:fs');
       const { PidFd, kill } = ipckit;
       const exitOf = (c) => new Promise((resolve) => c.on('exit', (code, signal) => resolve(signal)));
       (async () => {
         const old = spawn('sleep', ['30'], { stdio: 'ignore' });
         const proc = PidFd.open(old.pid);
         proc.sendSignal('SIGKILL');
         await exitOf(old);                                   // Node has reaped it: the pid is free
         writeFileSync('/proc/sys/kernel/ns_last_pid', String(old.pid - 1));
         const fresh = spawn('sleep', ['30'], { stdio: 'ignore' });
         let freshSignal = null; fresh.on('exit', (c, s) => (freshSignal = s));
         let code;
         try { proc.sendSignal('SIGKILL') } catch (e) { code = e.code + ' ' + e.syscall }
         await new Promise((r) => setTimeout(r, 200));
         kill(fresh.pid, 0);                                  // still alive
         console.log(JSON.stringify({ reused: fresh.pid === old.pid, code, freshSignal }));
         fresh.kill('SIGKILL');
         proc.close();
       })()`,
    )
    t.deepEqual(JSON.parse(r.stdout.trim()), { reused: true, code: 'ESRCH pidfd_send_signal', freshSignal: null })
  },
)

test('abort and close cancel a pending waitExit; the process is untouched', async (t) => {
  const { child, pid, exited } = sleeper()
  using proc = PidFd.open(pid)
  const ac = new AbortController()
  const waiting = proc.waitExit({ signal: ac.signal })
  ac.abort('enough')
  const e = await t.throwsAsync(waiting, { instanceOf: AbortError })
  t.is(e!.cause, 'enough')
  await t.throwsAsync(proc.waitExit({ signal: AbortSignal.abort() }), { instanceOf: AbortError })
  const other = PidFd.open(pid)
  const pending = other.waitExit()
  other.close()
  other.close()
  const c = await t.throwsAsync(pending, { instanceOf: AbortError })
  t.is((c!.cause as { code?: string }).code, 'ERR_INVALID_STATE')
  t.throws(() => other.exited, { code: 'ERR_INVALID_STATE' })
  t.false(proc.exited, 'cancelling waits does nothing to the process')
  child.kill('SIGKILL')
  t.deepEqual(await exited, [null, 'SIGKILL'])
})

test('await using: leaving the block ends a pending waitExit; the process runs on', async (t) => {
  const { child, pid, exited } = sleeper()
  let waiting: Promise<unknown> | undefined
  {
    await using proc = PidFd.open(pid)
    waiting = proc.waitExit()
  }
  const e = await t.throwsAsync(waiting!, { instanceOf: AbortError })
  t.is((e!.cause as { code?: string }).code, 'ERR_INVALID_STATE')
  t.notThrows(() => process.kill(pid, 0), 'still running')
  child.kill('SIGKILL')
  await exited
})

test('fromFd: a pidfd received over SCM_RIGHTS knows its pid; other descriptors and reaped processes are refused', async (t) => {
  const { pid, exited } = sleeper()
  const [a, b] = socketpair('dgram', { acceptFds: true })
  t.teardown(() => {
    a.close()
    b.close()
  })
  using proc = PidFd.open(pid)
  await a.send('pidfd', { fds: [proc.fd] })
  const [fd] = (await b.receive())!.fds
  using received = PidFd.fromFd(fd!)
  t.is(received.pid, pid)
  received.sendSignal('SIGKILL')
  await exited
  t.true(received.exited)
  await a.send('again', { fds: [proc.fd] })
  const [late] = (await b.receive())!.fds
  const e = t.throws(() => PidFd.fromFd(late!), { instanceOf: IpcError })
  t.like(e, { code: 'ESRCH', syscall: 'pidfd_send_signal' })
  t.regex(e!.message, /exited and been reaped/)
  closeSync(late!)
  const devnull = openSync('/dev/null', 'r')
  t.teardown(() => closeSync(devnull))
  t.like(
    t.throws(() => PidFd.fromFd(devnull), { instanceOf: IpcError }),
    { code: 'EINVAL', syscall: 'pidfd_open' },
  )
})

test('bad input is refused before any call; kernel errors name the pid', async (t) => {
  const range = { code: 'ERR_OUT_OF_RANGE', instanceOf: RangeError }
  t.throws(() => PidFd.open(0), range)
  t.throws(() => PidFd.open(-1), range, '-1 would be every process for kill()')
  t.throws(() => PidFd.open(1.5), range)
  t.throws(() => PidFd.open(2 ** 31), range)
  t.throws(() => PidFd.open('1' as never), { code: 'ERR_INVALID_ARG_TYPE' })
  const gone = spawnSync('true').pid!
  const e = t.throws(() => PidFd.open(gone), { instanceOf: IpcError })
  t.like(e, { code: 'ESRCH', syscall: 'pidfd_open' })
  t.true(e!.message.endsWith(`(pid ${gone})`), e!.message)
  using me = PidFd.open(process.pid)
  t.throws(() => me.sendSignal('SIGNOPE'), { code: 'ERR_UNKNOWN_SIGNAL' })
  t.throws(() => me.sendSignal(-3), range)
  t.throws(() => me.sendSignal({} as never), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => me.waitExitSync({ timeoutMs: -1 }), range)
  await t.throwsAsync(me.waitExit({ signal: 'x' } as never), { code: 'ERR_INVALID_ARG_TYPE' })
})

test('an unprivileged process may watch a root process but not signal it (EPERM)', async (t) => {
  const { pid, child } = sleeper()
  t.teardown(() => child.kill('SIGKILL'))
  const r = await runNode(
    `const p = ipckit.PidFd.open(Number(process.argv[2])); const out = { exited: p.exited };
     try { p.sendSignal('SIGTERM') } catch (e) { out.code = e.code; out.syscall = e.syscall }
     console.log(JSON.stringify(out))`,
    [String(pid)],
    { uid: NOBODY.uid, gid: NOBODY.gid },
  )
  t.deepEqual(JSON.parse(r.stdout.trim()), { exited: false, code: 'EPERM', syscall: 'pidfd_send_signal' })
})

// Serial: it counts threads and the poller's watches, which every test shares.
test.serial('200 processes awaited at once cost 200 watches and no thread; each exit is seen', async (t) => {
  const threads = () => readdirSync('/proc/self/task').length
  const kids = Array.from({ length: 200 }, () => sleeper())
  const procs = kids.map((k) => PidFd.open(k.pid))
  const before = threads()
  const waits = procs.map((p) => p.waitExit())
  await sleep(50)
  t.is(native.pollCount(), 200)
  t.true(threads() <= before + 1, `threads ${before} -> ${threads()}`)
  for (const k of kids) k.child.kill('SIGTERM')
  const exits = await Promise.all(waits)
  t.true(exits.every((e) => e.signal === 'SIGTERM' || (e.signal === null && e.code === null)))
  t.true(procs.every((p) => p.exited))
  for (const p of procs) p.close()
  await Promise.all(kids.map((k) => k.exited))
  t.is(native.pollCount(), 0)
})

test('at the open-file limit: EMFILE naming the limit; nothing leaks', async (t) => {
  const r = await runNodeUnder(
    ['prlimit', '--nofile=40'],
    `const all = []; let err;
     try { for (;;) all.push(ipckit.PidFd.open(process.pid)) } catch (e) { err = e }
     const n = all.length;
     for (const p of all) p.close();
     ipckit.PidFd.open(process.pid).close();
     console.log(JSON.stringify({ code: err.code, syscall: err.syscall, message: err.message, n }))`,
  )
  const res = JSON.parse(r.stdout.trim())
  t.like(res, { code: 'EMFILE', syscall: 'pidfd_open' })
  t.regex(res.message, /open file limit, 40 \(RLIMIT_NOFILE, ulimit -n\)/)
  const before = fdSnapshot()
  for (let i = 0; i < 100; i++) PidFd.open(process.pid).close()
  t.deepEqual(await fdsLeftOpen(before), [])
})

notLinux(anyTest)('macOS has no pidfd: ENOSYS, and the message names the platform', (t) => {
  const e = t.throws(() => PidFd.open(process.pid), { instanceOf: IpcError })
  t.like(e, { code: 'ENOSYS', syscall: 'pidfd_open' })
  t.regex(e!.message, /macOS has none/)
})
