/**
 * Runs util-linux `ipcs`/`ipcrm` and `ipckit ipcs`/`ipckit ipcrm` (the CLI's `main()`, in this
 * process) on the same System V objects, for `__test__/ipcs-cli.spec.ts`. It runs inside a
 * private IPC namespace (`unshare --ipc --fork`), so no other program's objects appear or
 * vanish meanwhile, and the namespace's ids are the same for the same history:
 *
 *   unshare --ipc --fork node --require tsx/cjs cli-compare.ts JOB.json
 *
 * It makes a fixed set of objects (C's `sysvmk`, see `sysv-objects.ts`: queues with messages,
 * semaphore sets, segments attached by a holder process, one marked for removal, objects of a
 * uid with no user name), then runs each case with each side and prints one JSON line: what
 * each run printed and returned. A case with `fresh` first removes everything and makes the set
 * again (so an `ipcrm` case starts from the same objects as the others, and as the same case in
 * another namespace that followed the same history).
 */

import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'

import { main } from '../../ts/cli'
import { MessageQueue, SemaphoreSet, SharedMemory, ipcrm, ipcs } from '../../ts/index'

/** A uid with no user name: ipcs prints the number. */
export const NAMELESS_UID = 54321

export type Side = 'util-linux' | 'ipckit'

export interface CompareJob {
  /** The compiled `sysvmk` program. */
  sysvmk: string
  /** Which commands run, in this order, for each case. */
  sides: Side[]
  cases: Array<{ tool: 'ipcs' | 'ipcrm'; args: string[]; fresh?: boolean }>
}

export interface CompareRun {
  tool: 'ipcs' | 'ipcrm'
  args: string[]
  side: Side
  code: number | null
  stdout: string
  stderr: string
  /** After an `ipcrm`: util-linux `ipcs` of what is left. */
  after?: string
}

const holders: ChildProcess[] = []
/** A pending semop of this process, so that a semaphore has a waiter (ncount). */
let waiter: { set: SemaphoreSet; done: Promise<unknown> } | undefined

function sysvmk(job: CompareJob, type: string, key: number, mode: number, n: number, uid = -1): number {
  const r = spawnSync(job.sysvmk, [type, `0x${key.toString(16)}`, mode.toString(8), String(n), String(uid), 'none'], {
    encoding: 'utf8',
  })
  if (r.status !== 0) throw new Error(`sysvmk ${type} failed: ${r.stderr}`)
  return Number(r.stdout.trim())
}

/** A segment made and attached by a holder process, which stays until the next reset. */
async function held(job: CompareJob, key: number, mode: number, size: number): Promise<number> {
  const child = spawn(job.sysvmk, ['shm', `0x${key.toString(16)}`, mode.toString(8), String(size), '-1', 'hold'], {
    stdio: ['pipe', 'pipe', 'inherit'],
  })
  holders.push(child)
  let out = ''
  child.stdout!.setEncoding('utf8')
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (c: string) => {
      out += c
      if (out.includes('attached\n')) resolve()
    })
    child.on('exit', (code) => reject(new Error(`the holder exited (${code}): ${out}`)))
  })
  return Number(out.split('\n')[0])
}

/** The fixed set of objects every case starts from. */
async function setup(job: CompareJob): Promise<void> {
  sysvmk(job, 'msg', 0x1000, 0o640, 2)
  const q = sysvmk(job, 'msg', 0x1001, 0o600, 150, NAMELESS_UID) // 1500 bytes queued
  sysvmk(job, 'msg', 0, 0o666, 0) // a private queue: key 0
  const set = sysvmk(job, 'sem', 0x2000, 0o604, 3)
  sysvmk(job, 'sem', 0x2001, 0o600, 1, NAMELESS_UID)
  await held(job, 0x3000, 0o660, 8192)
  sysvmk(job, 'shm', 0x3001, 0o640, 3 << 20) // 3M
  sysvmk(job, 'shm', 0x3002, 0o600, 1536) // 1.5K
  const doomed = await held(job, 0x3003, 0o600, 100_000)
  ipcrm({ type: 'shm', id: doomed }) // still attached: listed as `dest`, key 0
  // A queue whose capacity was changed (ipcs -i shows qbytes), semaphores with values and a waiter.
  const queue = MessageQueue.fromId(q)
  queue.update({ maxBytes: 4096 })
  queue.close()
  const s = SemaphoreSet.fromId(set)
  s.setAll([3, 0, 7])
  waiter = { set: s, done: s.op([{ index: 1, delta: -1 }]).catch(() => undefined) }
  // Touch a segment so that it has an attach and a detach time.
  const seg = SharedMemory.open(0x3002)
  seg.read(0, 1)
  seg.close()
}

async function reset(job: CompareJob): Promise<void> {
  if (waiter !== undefined) {
    waiter.set.close()
    await waiter.done
    waiter = undefined
  }
  for (const h of holders.splice(0)) {
    h.kill('SIGKILL')
    if (h.exitCode === null && h.signalCode === null) await new Promise((r) => h.once('exit', r))
  }
  ipcrm({ all: true })
  if (ipcs().length !== 0) throw new Error('objects left after a reset')
  await setup(job)
}

const utilLinux = (tool: string, args: string[]) =>
  spawnSync(tool, args, { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' } })

function run(tool: 'ipcs' | 'ipcrm', args: string[], side: Side): CompareRun {
  let result: CompareRun
  if (side === 'util-linux') {
    const r = utilLinux(tool, args)
    result = { tool, args, side, code: r.status, stdout: r.stdout, stderr: r.stderr }
  } else {
    let stdout = ''
    let stderr = ''
    const code = main([tool, ...args], { out: (s) => (stdout += s), err: (s) => (stderr += s) })
    result = { tool, args, side, code, stdout, stderr }
  }
  if (tool === 'ipcrm') result.after = utilLinux('ipcs', []).stdout
  return result
}

async function mainDriver(): Promise<void> {
  const job = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as CompareJob
  if (ipcs().length !== 0) throw new Error('the namespace is not empty: run this under unshare --ipc')
  const runs: CompareRun[] = []
  await setup(job)
  for (const c of job.cases) {
    if (c.fresh) await reset(job)
    for (const side of job.sides) runs.push(run(c.tool, c.args, side))
  }
  await reset(job)
  for (const h of holders.splice(0)) h.kill('SIGKILL')
  if (waiter !== undefined) {
    waiter.set.close()
    await waiter.done
  }
  process.stdout.write(`${JSON.stringify(runs)}\n`)
}

if (require.main === module) {
  mainDriver().catch((err) => {
    console.error(err)
    process.exitCode = 1
  })
}
