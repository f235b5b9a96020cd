/**
 * The runnable programs in `examples/`, run as a user runs them (`node examples/<name>.js`,
 * loading the built package from dist/, which `npm test` builds before ava runs): each must exit
 * 0, print the result it promises, and leave no System V object, file or folder behind.
 */

import test from 'ava'
import type { ExecutionContext } from 'ava'
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'

import { ROOT, linuxOnly, sysvIds } from './helpers'

const exec = promisify(execFile)

/** Runs `examples/<name>` with `args`; fails the test with its output if it does not exit 0. */
async function runExample(
  t: ExecutionContext,
  name: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<string> {
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
)(
  'crash-safe-lock: a worker SIGKILLed while holding the Mutex does not stop the others, and the count is exact',
  async (t) => {
    const before = sysvIds('sem')
    const out = await runExample(t, 'crash-safe-lock.js', ['3', '100'])
    const id = Number(line(t, out, /semaphore set id (\d+)/)[1])
    const victim = line(t, out, /victim (\d+): made (\d+) increments, now holds the lock and read (\d+)/)
    t.is(victim[3], victim[2], 'the victim read its own last increment')
    const waiting = line(
      t,
      out,
      /^3 workers \((\d+), (\d+), (\d+)\) are waiting for the lock; mutex locked: true$/m,
    ).slice(1)
    t.is(new Set([victim[1], ...waiting]).size, 4, 'three workers and the victim: four processes')
    t.false([victim[1], ...waiting].includes(String(process.pid)))
    t.regex(out, new RegExp(`victim ${victim[1]}: killed by SIGKILL while holding the lock`))
    // Exactly one worker is told its predecessor died, and it finds what the victim last read.
    const tookOver = [
      ...out.matchAll(
        /worker \d+ took the lock over from the dead victim \(previousOwnerDied\) and found the counter at (\d+)/g,
      ),
    ]
    t.deepEqual(
      tookOver.map((m) => m[1]),
      [victim[3]],
    )
    const count = line(t, out, /counter: (\d+), expected (\d+) .*: exact/)
    t.is(
      Number(count[1]),
      Number(victim[2]) + 3 * 100,
      'every completed increment counted once, the half-done one not at all',
    )
    t.is(count[1], count[2])
    const dir = line(t, out, /removed the mutex \(id \d+\) and (\S+)/)[1]!
    t.false(existsSync(dir), 'the counter folder is removed')
    t.false(sysvIds('sem').has(id) && !before.has(id), 'the semaphore set is removed')
  },
)

for (const zeroCopy of [true, false]) {
  const mode = zeroCopy ? 'zero-copy view with Atomics' : 'copy API fallback (IPCKIT_NO_ZERO_COPY=1)'
  linuxOnly(test, 'shm.wait/notify need a futex (ENOSYS on macOS)')(
    `shm-ring-buffer (${mode}): every message arrives with a good checksum, in order, and the segment is removed`,
    async (t) => {
      const before = sysvIds('shm')
      const out = await runExample(t, 'shm-ring-buffer.js', ['1500'], zeroCopy ? {} : { IPCKIT_NO_ZERO_COPY: '1' })
      t.regex(
        out,
        zeroCopy
          ? /^zero-copy: the ring is used through shm\.attach\(\)/m
          : /^zero-copy is not supported .*using the copy API/m,
      )
      const id = Number(line(t, out, /segment id (\d+), 4096-byte ring/)[1])
      // The stream, recomputed here: message i's payload is the SHA-256 of `message <i>`, repeated
      // to 1 + (its first two bytes, little-endian, mod 1000) bytes (`payloadOf` in the example).
      const stream = createHash('sha256')
      let bytes = 0
      for (let i = 0; i < 1500; i++) {
        const seed = createHash('sha256').update(`message ${i}`).digest()
        const payload = Buffer.alloc(1 + (seed.readUInt16LE(0) % 1000), seed)
        stream.update(payload)
        bytes += payload.length
      }
      const digest = stream.digest('hex')
      const producer = line(t, out, /^producer (\d+): segment id \d+/m)[1]
      const produced = line(
        t,
        out,
        /^producer (\d+): 1500 messages, (\d+) bytes, stream sha256 ([0-9a-f]{64}), slept (\d+) times \(ring full\)$/m,
      )
      t.is(produced[1], producer)
      t.is(Number(produced[2]), bytes, 'the producer sent the stream it documents')
      t.is(produced[3], digest)
      // The ring holds 4 KiB and the stream is ~750 KB: the producer must have slept on a full ring.
      t.true(Number(produced[4]) > 0, 'the producer waited for room')
      const consumer = line(
        t,
        out,
        new RegExp(`^producer ${producer}: consumer (\\d+) attached; segment ${id} marked for removal$`, 'm'),
      )[1]
      t.not(consumer, producer)
      const consumed = line(
        t,
        out,
        /^consumer (\d+): (\d+) messages, (\d+) bytes, (\d+) bad checksums, stream sha256 ([0-9a-f]{64}), slept \d+ times \(ring empty\)$/m,
      )
      t.deepEqual(
        consumed.slice(1),
        [consumer, '1500', String(bytes), '0', digest],
        'the consumer process received exactly that stream',
      )
      t.regex(out, /checksums: 1500\/1500 OK; stream digest matches; consumer exited with 0/)
      t.regex(out, new RegExp(`removed segment ${id} `))
      t.false(sysvIds('shm').has(id) && !before.has(id), 'the segment is removed')
    },
  )
}

linuxOnly(test, "socketpair('seqpacket'): macOS has no SOCK_SEQPACKET UNIX sockets")(
  'pass-socket: each accepted connection is passed to a worker process, which serves it',
  async (t) => {
    const out = await runExample(t, 'pass-socket.js', ['2', '6'])
    const parent = line(t, out, /parent (\d+): started workers (\d+), (\d+)/)
    const workers = [parent[2], parent[3]]
    const clientPid = line(t, out, /started client process (\d+)/)[1]
    t.false([parent[1], ...workers].includes(clientPid))
    // The parent says which worker it passed each connection to; that worker, and no other, serves it.
    const passedTo = new Map<string, string>()
    for (const m of out.matchAll(
      new RegExp(`^parent ${parent[1]}: accepted connection (\\d+) \\(fd \\d+\\), passed it to worker (\\d+)$`, 'gm'),
    )) {
      t.false(passedTo.has(m[1]!), `connection ${m[1]} passed once`)
      passedTo.set(m[1]!, m[2]!)
    }
    t.deepEqual([...passedTo.keys()].sort(), ['1', '2', '3', '4', '5', '6'])
    const replies = out.split('\n').filter((l) => l.startsWith('client: '))
    t.is(replies.length, 6, out)
    const served = new Set<string>()
    for (const [i, reply] of replies.entries()) {
      const m = /^client: worker (\d+) served connection (\d+) from pid (\d+): HELLO (\d+)$/.exec(reply)
      if (m === null) return t.fail(`unexpected reply: ${reply}`)
      t.true(workers.includes(m[1]), 'served by a worker, not by the parent')
      t.is(passedTo.get(m[2]!), m[1], `connection ${m[2]} served by the worker it was passed to`)
      t.false(served.has(m[2]!), `connection ${m[2]} served once`)
      served.add(m[2]!)
      t.is(m[3], clientPid, 'the worker sees the client process as its peer (SO_PEERCRED), not the parent')
      t.is(m[4], String(i + 1), 'the reply to this request, upper-cased')
    }
    for (const w of workers) {
      const n = [...passedTo.values()].filter((p) => p === w).length
      t.regex(out, new RegExp(`^worker ${w}: served ${n} connections, exiting$`, 'm'))
    }
    t.regex(out, new RegExp(`\\(${workers[0]}: 3, ${workers[1]}: 3\\); workers exited with 0, 0`))
    const dir = line(t, out, /server closed, removed (\S+)/)[1]!
    t.false(existsSync(dir), 'the socket file and its folder are removed')
  },
)

test('worker-pool: every job is done exactly once, by one of the worker processes, with the right result', async (t) => {
  const before = sysvIds('msg')
  const out = await runExample(t, 'worker-pool.js', ['3', '30', '--list'])
  const start = line(t, out, /^parent (\d+): started workers (\d+), (\d+), (\d+)$/m)
  const workers = start.slice(2)
  t.is(new Set([start[1], ...workers]).size, 4, 'three worker processes beside the parent')
  // The work, recomputed here: 2000 rounds of SHA-256 over the job's input, 16 hex digits.
  const work = (input: string) => {
    let digest = Buffer.from(input)
    for (let i = 0; i < 2000; i++) digest = createHash('sha256').update(digest).digest()
    return digest.toString('hex').slice(0, 16)
  }
  const done = new Map<number, string>()
  for (const l of out.split('\n').filter((l) => l.startsWith('  job '))) {
    const m = /^  job (\d+) "([^"]*)" -> ([0-9a-f]{16}) by worker (\d+)$/.exec(l)
    if (m === null) return t.fail(`unexpected result line: ${l}`)
    const id = Number(m[1])
    t.false(done.has(id), `job ${id} answered once`)
    t.is(m[2], `job ${id}`)
    t.is(m[3], work(`job ${id}`), `job ${id}: the hash of its input`)
    t.true(workers.includes(m[4]!), `job ${id} done by a worker (${m[4]}), not the parent`)
    done.set(id, m[4]!)
  }
  t.deepEqual(
    [...done.keys()].sort((a, b) => a - b),
    Array.from({ length: 30 }, (_, i) => i),
  )
  t.regex(out, /^30 jobs done by 3 worker processes in \d+ ms, each exactly once$/m)
  const shares = Object.fromEntries(
    [...out.matchAll(/^ {2}worker (\d+): (\d+) jobs$/gm)].map((m) => [m[1]!, Number(m[2])]),
  )
  const answered: Record<string, number> = {}
  for (const pid of done.values()) answered[pid] = (answered[pid] ?? 0) + 1
  t.deepEqual(shares, answered, 'the per-worker counts are the jobs each worker answered')
  const queues = line(t, out, new RegExp(`^parent ${start[1]}: jobs on queue (\\d+), results on queue (\\d+)$`, 'm'))
    .slice(1)
    .map(Number)
  const now = sysvIds('msg')
  t.deepEqual(
    queues.filter((id) => now.has(id) && !before.has(id)),
    [],
    'both queues are removed',
  )
})
