/**
 * Foreign peers for interoperability tests: programs nobody here wrote (Python's `sysv_ipc` and
 * `socket`, Perl's IPC::SysV, util-linux's `ipcmk`, socat). A test that needs one is declared
 * through {@link needs}: where the machine lacks it, the test is skipped with the reason in its
 * title (`[skipped: no python3 module sysv_ipc (pip install sysv_ipc)]`), never silently.
 * `.ci/run` installs them where it can.
 */

import { spawnSync } from 'node:child_process'

import { runC } from './index'

/** Something a test needs from the machine. */
export type Need = { python: string } | { perl: string } | { command: string }

const found = new Map<string, string | undefined>()

/** Why `need` is missing, or `undefined` when the machine has it (asked once per need). */
export function missing(need: Need): string | undefined {
  const id = JSON.stringify(need)
  if (found.has(id)) return found.get(id)
  let reason: string | undefined
  if ('python' in need) {
    const r = spawnSync('python3', ['-c', `import ${need.python}`], { stdio: 'pipe' })
    if (r.error) reason = 'no python3'
    else if (r.status !== 0) reason = `no python3 module ${need.python} (pip install ${need.python})`
  } else if ('perl' in need) {
    const r = spawnSync('perl', [`-M${need.perl}`, '-e', '1'], { stdio: 'pipe' })
    if (r.error) reason = 'no perl'
    else if (r.status !== 0) reason = `no Perl module ${need.perl}`
  } else {
    const r = spawnSync('sh', ['-c', `command -v ${need.command}`], { stdio: 'pipe' })
    if (r.status !== 0) reason = `no ${need.command} command`
  }
  found.set(id, reason)
  return reason
}

type AnyFn = (...args: any[]) => any

/**
 * `test` (or `test.serial`) for a test that needs foreign programs: `test` itself when the
 * machine has them all; otherwise every test declared through it is skipped, its title ending
 * with `[skipped: <what is missing>]`.
 *
 * ```ts
 * needs(test, { python: 'sysv_ipc' })('a set sysv_ipc made opens at once', async (t) => {})
 * ```
 */
export function needs<T extends AnyFn>(test: T, ...what: Need[]): T {
  const reasons = what.map(missing).filter((r): r is string => r !== undefined)
  if (reasons.length === 0) return test
  const suffix = ` [skipped: ${reasons.join('; ')}]`
  const t = test as unknown as Record<string, any> & AnyFn
  const skip = t.skip as AnyFn
  return ((title: string, ...rest: unknown[]) => skip(`${title}${suffix}`, ...rest)) as unknown as T
}

/**
 * Runs `python3 -c code args...` and resolves with its stdout; rejects with its stderr when it
 * fails (or after 60 s). A peer that runs beside the test is a `cChild('python3', ['-c', code])`.
 */
export async function python(code: string, args: string[] = []): Promise<string> {
  return (await runC('python3', ['-c', code, ...args])).stdout
}

/** Runs `perl -e code args...`, as {@link python}. */
export async function perl(code: string, args: string[] = []): Promise<string> {
  return (await runC('perl', ['-e', code, ...args])).stdout
}
