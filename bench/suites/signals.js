'use strict'
/**
 * Signals: the round trip between two processes, a signal with a payload sent (`sigqueue`) and
 * an answer awaited, against C doing the same (`sigqueue` + `sigwaitinfo`,
 * `bench/c/sig_bench.c`) in the same run, and Node's built-in `process.kill` + `process.on`.
 * See bench/README.md for the method.
 */

const { describeSignal, sigqueue, watchSignals } = require('../../dist')
const { LineProcess, compileC, now } = require('../lib/harness')
const { builtinRoundTrips } = require('../lib/node2node')
const { join } = require('node:path')

const IN = describeSignal('SIGRTMIN+1').number
// Each ipckit case answers on its own signal: every case is set up before the rounds, and a
// watcher sees every delivery of its signal, also those meant for another case.
const OUT_C = describeSignal('SIGRTMIN+2').number
const OUT_NODE = describeSignal('SIGRTMIN+3').number
const OUT_C_UNORDERED = describeSignal('SIGRTMIN+4').number
const OUT_NODE_UNORDERED = describeSignal('SIGRTMIN+5').number
const SIGUSR1 = describeSignal('SIGUSR1').number
const SIGUSR2 = describeSignal('SIGUSR2').number
const NODE_ECHO = join(__dirname, '..', 'peers', 'signal-echo.js')

/** An echo child (C or Node) that answers signal `input` with `output`, started. */
async function echoChild(lang, input, output, ordered = true) {
  const child =
    lang === 'c'
      ? new LineProcess(compileC('sig_bench'), ['echo', String(input), String(output)])
      : new LineProcess(process.execPath, [NODE_ECHO, String(input), String(output), String(ordered)])
  const line = await child.next()
  if (line !== 'ready') throw new Error(`signal echo did not start: ${line}`)
  return {
    pid: child.child.pid,
    async close() {
      child.child.kill('SIGKILL')
      await child.closed
    },
  }
}

/** C: sigqueue to the C echo child, sigwaitinfo for its answer. */
function cCase() {
  let echo
  let driver
  return {
    impl: 'C sigqueue/sigwaitinfo',
    kind: 'c',
    async setup() {
      echo = await echoChild('c', IN, OUT_C)
      driver = new LineProcess(compileC('sig_bench'), ['driver', String(OUT_C)])
    },
    async sample(n) {
      return Number(await driver.ask(`rt ${echo.pid} ${IN} ${n}`))
    },
    async teardown() {
      await driver?.close()
      await echo?.close()
    },
  }
}

/** ipckit: sigqueue, then the next delivery of the answer from a watchSignals watcher. */
function ipckitCase(impl, lang, out, ordered = true) {
  let echo
  let watcher
  return {
    impl,
    kind: 'ipckit',
    async setup() {
      watcher = watchSignals(out, { ordered })
      echo = await echoChild(lang, IN, out, ordered)
    },
    async sample(n) {
      const t0 = now()
      for (let i = 0; i < n; i++) {
        sigqueue(echo.pid, IN, i)
        const { value } = await watcher.next()
        if (value.value !== i) throw new Error(`answer ${value.value} to ${i}`)
      }
      return now() - t0
    },
    async teardown() {
      watcher?.close()
      await echo?.close()
    },
  }
}

/** Node's built-ins: process.kill(pid, 'SIGUSR1') to the C echo child, process.on('SIGUSR2'). */
function processCase() {
  let echo
  let onSignal = () => {}
  const listener = () => onSignal()
  return {
    impl: 'process.kill + process.on',
    kind: 'alt',
    compare: 'ipckit, C echo child',
    async setup() {
      process.on('SIGUSR2', listener)
      echo = await echoChild('c', SIGUSR1, SIGUSR2)
    },
    async sample(n) {
      const t0 = now()
      for (let i = 0; i < n; i++) {
        const got = new Promise((res) => (onSignal = res))
        process.kill(echo.pid, 'SIGUSR1')
        await got
      }
      return now() - t0
    },
    async teardown() {
      await echo?.close()
      process.off('SIGUSR2', listener)
    },
  }
}

module.exports = (config) => [
  {
    primitive: 'signals',
    operation: 'round trip, sigqueue and answer',
    unit: 'us',
    per: 'round trip',
    count: config.roundTrips,
    cases: [
      cCase(),
      ipckitCase('ipckit, C echo child', 'c', OUT_C),
      ipckitCase('ipckit { ordered: false }, C echo child', 'c', OUT_C_UNORDERED, false),
      processCase(),
    ],
  },
  {
    primitive: 'signals',
    operation: 'round trip, two Node processes',
    unit: 'us',
    per: 'round trip',
    count: config.roundTrips,
    cases: [
      cCase(),
      ipckitCase('ipckit async↔async', 'node', OUT_NODE),
      ipckitCase('ipckit async↔async { ordered: false }', 'node', OUT_NODE_UNORDERED, false),
      ...builtinRoundTrips('ipckit async↔async'),
    ],
  },
]
