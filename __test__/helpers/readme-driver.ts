/**
 * Runs one README snippet program for `__test__/readme.spec.ts`, inside the private IPC and
 * network namespaces the spec starts it in (`unshare --ipc --net --fork`), so that the fixed keys
 * (`ftok('/tmp', 2)`) and abstract names (`'my-app'`) of the snippets meet nothing else on the
 * machine, and whatever a snippet leaves goes with the namespace.
 *
 *   node --require tsx/cjs readme-driver.ts JOB.json
 *
 * The job names the snippet file (run with Node and tsx in the job's folder) and, when the
 * snippet needs one, a peer process: started first and waited for (`ready`, a file it makes),
 * or started beside the snippet. A snippet that serves forever (`stopAfterPeer`) is stopped with
 * SIGTERM once its peer has finished. Prints one JSON line: what each process did.
 */

import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

/** What the spec asks the driver to run. */
export interface DriverJob {
  /** The folder the processes run in. */
  dir: string
  /** argv of the snippet: Node, its loader flags, the snippet file. */
  snippet: string[]
  peer?: {
    argv: string[]
    /** Start the peer before the snippet and wait until it has made this file. */
    ready?: string
  }
  /** The snippet serves until stopped: stop it (SIGTERM) once the peer has ended. */
  stopAfterPeer?: boolean
  timeoutMs: number
}

/** What one process did. */
export interface Outcome {
  code: number | null
  signal: string | null
  stdout: string
  stderr: string
  /** The driver stopped it (a server snippet, after its peer ended). */
  stopped: boolean
}

function start(
  argv: string[],
  dir: string,
  timeoutMs: number,
): { child: ChildProcess; done: Promise<Outcome>; stop(): void } {
  const child = spawn(argv[0]!, argv.slice(1), { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  let stopped = false
  child.stdout!.setEncoding('utf8').on('data', (c: string) => (stdout += c))
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c))
  const timer = setTimeout(() => {
    stderr += `\n[driver: killed after ${timeoutMs} ms]`
    child.kill('SIGKILL')
  }, timeoutMs)
  const done = new Promise<Outcome>((resolve) => {
    child.on('error', (err) => {
      stderr += `\n[driver: ${err.message}]`
    })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr, stopped })
    })
  })
  return {
    child,
    done,
    stop: () => {
      if (child.exitCode === null && child.signalCode === null) {
        stopped = true
        child.kill('SIGTERM')
      }
    },
  }
}

async function main(): Promise<void> {
  const job = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as DriverJob
  const deadline = Date.now() + job.timeoutMs
  let peer: ReturnType<typeof start> | undefined
  if (job.peer !== undefined) {
    peer = start(job.peer.argv, job.dir, job.timeoutMs)
    const ready = job.peer.ready
    if (ready !== undefined) {
      let ended = false
      void peer.done.then(() => (ended = true))
      while (!existsSync(join(job.dir, ready)) && !ended && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 10))
    }
  }
  const snippet = start(job.snippet, job.dir, Math.max(1, deadline - Date.now()))
  let peerOutcome: Outcome | undefined
  if (peer !== undefined) {
    peerOutcome = await peer.done
    if (job.stopAfterPeer) snippet.stop()
  }
  const snippetOutcome = await snippet.done
  process.stdout.write(`${JSON.stringify({ snippet: snippetOutcome, peer: peerOutcome })}\n`)
}

main().catch((err) => {
  console.error(err)
  process.exitCode = 1
})
