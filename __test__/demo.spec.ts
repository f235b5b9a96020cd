/**
 * `npm run demo` (`examples/demo.js`), run as a user runs it, 20 times: every run must print the
 * right answers, not lines that merely look like answers. The demo once took its own answers
 * back as jobs in most runs (they shared a receive type range) and printed hashes of hashes.
 */

import test from 'ava'
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'

import { KERNEL_CLOCK_LAG_MS, ROOT, sysvIds } from './helpers'

const exec = promisify(execFile)
const RUNS = 20
const PARALLEL = 4
const JOBS = ['alpha', 'beta', 'gamma', 'delta']

/** What the worker must answer for a job: the first 16 hex digits of its SHA-256. */
const hashOf = (job: string) => createHash('sha256').update(job).digest('hex').slice(0, 16)

/** One run of the demo: its output, and the wall-clock time (ms) around it. */
async function runDemo(): Promise<{ out: string; started: number; ended: number }> {
  const started = Date.now()
  const { stdout, stderr } = await exec(process.execPath, [join(ROOT, 'examples', 'demo.js')], {
    encoding: 'utf8',
    timeout: 30_000,
    env: { ...process.env, NODE_OPTIONS: '' },
  })
  if (stderr !== '') throw new Error(`the demo wrote to stderr:\n${stderr}\n${stdout}`)
  return { out: stdout, started, ended: Date.now() }
}

/** Every mistake in one run's output (empty when the run is right). */
function mistakes(out: string, started: number, ended: number, before: Set<number>): string[] {
  const wrong: string[] = []
  const parent = /^parent (\d+): creating a private System V message queue$/m.exec(out)?.[1]
  const start = /^parent (\d+): started worker (\d+), queue id (\d+)$/m.exec(out)
  if (parent === undefined || start === null || start[1] !== parent) return [`no start lines`]
  const [, , worker, queueId] = start
  if (worker === parent) wrong.push('the worker is the parent')

  const answered = new Map<string, number>()
  const answerLines = out.split('\n').filter((l) => l.includes(': answer '))
  for (const [i, l] of answerLines.entries()) {
    const m = /^parent (\d+): answer (\d+): (\d+) hashed "([^"]*)" -> ([0-9a-f]{16})$/.exec(l)
    if (m === null) {
      wrong.push(`not an answer to one job: ${l.slice(0, 200)}`)
      continue
    }
    const [, who, n, pid, job, digest] = m
    if (who !== parent) wrong.push(`answer printed by ${who}, not the parent ${parent}`)
    if (Number(n) !== i + 1) wrong.push(`answer ${n} is number ${i + 1}`)
    if (pid !== worker) wrong.push(`"${job}" answered by pid ${pid}, not the worker ${worker}`)
    if (!JOBS.includes(job!)) wrong.push(`"${job}" is not a job`)
    else if (digest !== hashOf(job!)) wrong.push(`"${job}" -> ${digest}, expected ${hashOf(job!)}`)
    answered.set(job!, (answered.get(job!) ?? 0) + 1)
  }
  for (const job of JOBS) if (answered.get(job) !== 1) wrong.push(`"${job}" answered ${answered.get(job) ?? 0} times`)
  if (answerLines.length !== JOBS.length) wrong.push(`${answerLines.length} answers for ${JOBS.length} jobs`)

  if (!new RegExp(`^parent ${parent}: sent 4 jobs \\(type 1\\); [0-4] wait in the queue$`, 'm').test(out))
    wrong.push('no "sent 4 jobs" line')
  if (
    !new RegExp(`^parent ${parent}: a receive of type 99 with a 50 ms timeout ended with AbortError$`, 'm').test(out)
  ) {
    wrong.push('the aborted receive did not end with AbortError')
  }
  const end = new RegExp(
    `^parent ${parent}: worker exited with (\\S+); (\\d+) messages left, last send at (\\S+)$`,
    'm',
  ).exec(out)
  if (end === null) wrong.push('no "worker exited" line')
  else {
    if (end[1] !== '0') wrong.push(`the worker exited with ${end[1]}`)
    if (end[2] !== '0') wrong.push(`${end[2]} messages left in the queue`)
    // The kernel keeps whole seconds of its coarse clock: the last send (the stop) is within the
    // run, to the second (see KERNEL_CLOCK_LAG_MS).
    const sent = Date.parse(end[3]!)
    if (!(sent >= Math.floor((started - KERNEL_CLOCK_LAG_MS) / 1000) * 1000 && sent <= ended)) {
      wrong.push(
        `last send at ${end[3]}, not between ${new Date(started).toISOString()} and ${new Date(ended).toISOString()}`,
      )
    }
  }
  if (!new RegExp(`^parent ${parent}: queue removed$`, 'm').test(out)) wrong.push('no "queue removed" line')
  if (sysvIds('msg').has(Number(queueId)) && !before.has(Number(queueId))) wrong.push(`queue ${queueId} left behind`)
  return wrong
}

test(`npm run demo: ${RUNS} runs, each answers every job exactly once with its hash, from the worker's pid, and removes its queue`, async (t) => {
  // The demo loads the built package (dist/), which `npm test` builds before ava runs.
  if (!existsSync(join(ROOT, 'dist', 'index.js'))) return t.fail('dist/ is missing: run `npm run build` first')
  const before = sysvIds('msg')
  const failures: string[] = []
  let next = 0
  await Promise.all(
    Array.from({ length: PARALLEL }, async () => {
      while (next < RUNS) {
        const run = ++next
        const { out, started, ended } = await runDemo()
        const wrong = mistakes(out, started, ended, before)
        if (wrong.length > 0) failures.push(`run ${run}:\n  ${wrong.join('\n  ')}\n${out.slice(0, 2000)}`)
      }
    }),
  )
  t.deepEqual(failures, [], failures.join('\n'))
})
