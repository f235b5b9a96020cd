'use strict'
/**
 * pidfd: how long it takes to learn that a process exited, from the kill to the notification,
 * against C (`pidfd_send_signal` + `poll` on the pidfd, bench/c/pidfd_bench.c) in the same run
 * and Node's own `child.kill()` + `child.on('exit')`. The processes are started before the
 * clock runs (a spawn costs far more than the notification), and every row kills the same
 * program, which waits in `pause()`.
 *
 * A suite exports `(config) => op[]`; see bench/README.md for ops and cases.
 */

const { spawn } = require('node:child_process')

const { PidFd } = require('../../dist')
const { LineProcess, compileC, now } = require('../lib/harness')

/** C: `exitwait N` forks N sleepers, then times kill + poll for each. */
function cCase() {
  let driver
  return {
    impl: 'C pidfd_send_signal + poll',
    kind: 'c',
    setup() {
      driver = new LineProcess(compileC('pidfd_bench'), ['driver'])
    },
    async sample(n) {
      const line = await driver.ask(`exitwait ${n}`)
      if (!/^\d+$/.test(line)) throw new Error(`pidfd_bench: ${line}`)
      return Number(line)
    },
    teardown: () => driver?.close(),
  }
}

/** `n` sleepers, started and running (untimed), each with its 'exit' promise. */
async function sleepers(n) {
  const exe = compileC('pidfd_bench')
  const kids = Array.from({ length: n }, () => {
    const child = spawn(exe, ['sleeper'], { stdio: 'ignore' })
    const exited = new Promise((resolve) => child.once('exit', resolve))
    const spawned = new Promise((resolve, reject) => {
      child.once('spawn', resolve)
      child.once('error', reject)
    })
    return { child, exited, spawned }
  })
  await Promise.all(kids.map((k) => k.spawned))
  return kids
}

/** ipckit: `sendSignal('SIGKILL')`, then `await waitExit()` or `waitExitSync()`. */
function ipckitCase(impl) {
  return {
    impl,
    kind: 'ipckit',
    async sample(n) {
      const kids = await sleepers(n)
      const procs = kids.map((k) => PidFd.open(k.child.pid))
      let total = 0
      for (const proc of procs) {
        const t0 = now()
        proc.sendSignal('SIGKILL')
        if (impl === 'ipckit waitExitSync') proc.waitExitSync()
        else await proc.waitExit()
        total += now() - t0
        proc.close()
      }
      await Promise.all(kids.map((k) => k.exited))
      return total
    },
  }
}

/** Node: `child.kill('SIGKILL')`, then the child's 'exit' event (a child of this process only). */
function nodeCase() {
  return {
    impl: "child.kill + on('exit')",
    kind: 'alt',
    compare: 'ipckit waitExit',
    async sample(n) {
      const kids = await sleepers(n)
      let total = 0
      for (const k of kids) {
        const t0 = now()
        k.child.kill('SIGKILL')
        await k.exited
        total += now() - t0
      }
      return total
    },
  }
}

module.exports = (config) => [
  {
    primitive: 'pidfd',
    operation: 'kill a running process and learn that it exited',
    unit: 'us',
    per: 'exit',
    count: config.smoke ? 20 : 200,
    cases: [cCase(), ipckitCase('ipckit waitExit'), ipckitCase('ipckit waitExitSync'), nodeCase()],
  },
]
