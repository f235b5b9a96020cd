/**
 * The runnable programs in `examples/`, run as a user runs them (`node examples/<name>.js`,
 * loading the built package from dist/, which `npm test` builds before ava runs): each must exit
 * 0, print the result it promises, and leave no System V object, file or folder behind.
 */

import test from 'ava'
import type { ExecutionContext } from 'ava'
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'

import { ROOT, linuxOnly, sysvIds } from './helpers'

const exec = promisify(execFile)

/** Runs `examples/<name>` with `args`; fails the test with its output if it does not exit 0. */
async function runExample(t: ExecutionContext, name: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  if (!existsSync(join(ROOT, 'dist', 'index.js'))) throw new Error('dist/ is missing: run `npm run build` first')
  try {
    const { stdout, stderr } = await exec(process.execPath, [join(ROOT, 'examples', name), ...args], {
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, NODE_OPTIONS: '', ...env },
    })
    t.is(stderr, '', 'nothing on stderr')
    return stdout
  } catch (err) {
    const e = err as Error & { code?: unknown; signal?: unknown; stdout?: string; stderr?: string }
    throw new Error(`${name} failed (${e.signal ?? e.code}):\n${e.stdout ?? ''}\n${e.stderr ?? ''}`)
  }
}

/** The one line of `out` matching `re`, as a match (fails the test when there is none). */
function line(t: ExecutionContext, out: string, re: RegExp): RegExpExecArray {
  const m = re.exec(out)
  if (m === null) t.fail(`no line matches ${re}:\n${out}`)
  return m!
}

linuxOnly(
  test,
  'the example waits until waitingForIncrease() counts its timed lock waiters, which poll on macOS and are not counted',
)('crash-safe-lock: a worker SIGKILLed while holding the Mutex does not stop the others, and the count is exact', async (t) => {
  const before = sysvIds('sem')
  const out = await runExample(t, 'crash-safe-lock.js', ['3', '100'])
  const id = Number(line(t, out, /semaphore set id (\d+)/)[1])
  const victim = line(t, out, /victim (\d+): made (\d+) increments, now holds the lock and read (\d+)/)
  t.is(victim[3], victim[2], 'the victim read its own last increment')
  t.regex(out, /3 workers \([\d, ]+\) are waiting for the lock; mutex locked: true/)
  t.regex(out, new RegExp(`victim ${victim[1]}: killed by SIGKILL while holding the lock`))
  // Exactly one worker is told its predecessor died, and it finds what the victim last read.
  const tookOver = [...out.matchAll(/worker \d+ took the lock over from the dead victim \(previousOwnerDied\) and found the counter at (\d+)/g)]
  t.deepEqual(tookOver.map((m) => m[1]), [victim[3]])
  const count = line(t, out, /counter: (\d+), expected (\d+) .*: exact/)
  t.is(Number(count[1]), Number(victim[2]) + 3 * 100, 'every completed increment counted once, the half-done one not at all')
  t.is(count[1], count[2])
  const dir = line(t, out, /removed the mutex \(id \d+\) and (\S+)/)[1]!
  t.false(existsSync(dir), 'the counter folder is removed')
  t.false(sysvIds('sem').has(id) && !before.has(id), 'the semaphore set is removed')
})

for (const zeroCopy of [true, false]) {
  const mode = zeroCopy ? 'zero-copy view with Atomics' : 'copy API fallback (IPCKIT_NO_ZERO_COPY=1)'
  linuxOnly(test, 'shm.wait/notify need a futex (ENOSYS on macOS)')(`shm-ring-buffer (${mode}): every message arrives with a good checksum, in order, and the segment is removed`, async (t) => {
    const before = sysvIds('shm')
    const out = await runExample(t, 'shm-ring-buffer.js', ['1500'], zeroCopy ? {} : { IPCKIT_NO_ZERO_COPY: '1' })
    t.regex(out, zeroCopy ? /^zero-copy: the ring is used through shm\.attach\(\)/m : /^zero-copy is not supported .*using the copy API/m)
    const id = Number(line(t, out, /segment id (\d+), 4096-byte ring/)[1])
    const produced = line(t, out, /producer \d+: 1500 messages, (\d+) bytes, slept (\d+) times \(ring full\)/)
    // The ring holds 4 KiB and the stream is ~750 KB: the producer must have slept on a full ring.
    t.true(Number(produced[2]) > 0, 'the producer waited for room')
    t.regex(out, new RegExp(`consumer \\d+: 1500 messages, ${produced[1]} bytes, 0 bad checksums`))
    t.regex(out, /checksums: 1500\/1500 OK; stream digest matches; consumer exited with 0/)
    t.regex(out, new RegExp(`consumer \\d+ attached; segment ${id} marked for removal`))
    t.regex(out, new RegExp(`removed segment ${id} `))
    t.false(sysvIds('shm').has(id) && !before.has(id), 'the segment is removed')
  })
}

linuxOnly(test, 'socketpair(\'seqpacket\'): macOS has no SOCK_SEQPACKET UNIX sockets')('pass-socket: each accepted connection is passed to a worker process, which serves it', async (t) => {
  const out = await runExample(t, 'pass-socket.js', ['2', '6'])
  const parent = line(t, out, /parent (\d+): started workers (\d+), (\d+)/)
  const workers = [parent[2], parent[3]]
  const clientPid = line(t, out, /started client process (\d+)/)[1]
  t.false([parent[1], ...workers].includes(clientPid))
  const replies = out.split('\n').filter((l) => l.startsWith('client: '))
  t.is(replies.length, 6, out)
  for (const [i, reply] of replies.entries()) {
    const m = /^client: worker (\d+) served connection (\d+) from pid (\d+): HELLO (\d+)$/.exec(reply)
    if (m === null) return t.fail(`unexpected reply: ${reply}`)
    t.true(workers.includes(m[1]), 'served by a worker, not by the parent')
    t.is(m[3], clientPid, 'the worker sees the client process as its peer (SO_PEERCRED), not the parent')
    t.is(m[4], String(i + 1))
  }
  t.regex(out, new RegExp(`\\(${workers[0]}: 3, ${workers[1]}: 3\\); workers exited with 0, 0`))
  const dir = line(t, out, /server closed, removed (\S+)/)[1]!
  t.false(existsSync(dir), 'the socket file and its folder are removed')
})
