'use strict'
/**
 * eventfd: a ping-pong between two processes through two eventfds (write 1 to "ping", wait for
 * "pong"), against C doing the same (blocking `write`/`read`, bench/c/eventfd_bench.c) in the
 * same run, with ipckit's sync and async forms and a C or a Node echo child.
 *
 * A suite exports `(config) => op[]`; see bench/README.md for ops and cases.
 */

const { spawn } = require('node:child_process')
const { join } = require('node:path')

const { EventFd } = require('../../dist')
const { LineProcess, compileC, now } = require('../lib/harness')

const STOP = 2 ** 40
const NODE_ECHO = join(__dirname, '..', 'peers', 'eventfd-echo.js')

/** C: its driver forks its own echo child and times `pingpong N`. */
function cCase() {
  let driver
  return {
    impl: 'C write/read',
    kind: 'c',
    setup() {
      driver = new LineProcess(compileC('eventfd_bench'), ['driver'])
    },
    async sample(n) {
      const line = await driver.ask(`pingpong ${n}`)
      if (!/^\d+$/.test(line)) throw new Error(`eventfd_bench: ${line}`)
      return Number(line)
    },
    teardown: () => driver?.close(),
  }
}

/** Two eventfds and an echo child (C or Node) given them as fds 3 and 4. */
function echoPair(lang) {
  const ping = EventFd.create()
  const pong = EventFd.create()
  const [cmd, args] = lang === 'c' ? [compileC('eventfd_bench'), ['echo']] : [process.execPath, [NODE_ECHO]]
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe', ping.fd, pong.fd] })
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (c) => (stderr += c))
  const done = new Promise((resolve) => child.on('exit', (code) => resolve(code)))
  return {
    ping,
    pong,
    async close() {
      ping.writeSync(STOP)
      const code = await done
      ping.close()
      pong.close()
      if (code !== 0) throw new Error(`eventfd echo exited ${code}: ${stderr}`)
    },
  }
}

/** ipckit: `writeSync(1)` + `readSync()`, or `await write(1)` + `await read()`. */
function ipckitCase(impl, lang, target) {
  let pair
  return {
    impl,
    kind: 'ipckit',
    target,
    setup() {
      pair = echoPair(lang)
    },
    async sample(n) {
      const { ping, pong } = pair
      let got = 0
      const t0 = now()
      if (impl.startsWith('ipckit sync')) {
        for (let i = 0; i < n; i++) {
          ping.writeSync(1)
          got += pong.readSync()
        }
      } else {
        for (let i = 0; i < n; i++) {
          await ping.write(1)
          got += await pong.read()
        }
      }
      const elapsed = now() - t0
      if (got !== n) throw new Error(`${got} answers to ${n} pings`)
      return elapsed
    },
    teardown: () => pair?.close(),
  }
}

module.exports = (config) => [
  {
    primitive: 'eventfd',
    operation: 'ping-pong between two processes through two eventfds',
    unit: 'us',
    per: 'round trip',
    count: config.roundTrips,
    cases: [
      cCase(),
      ipckitCase('ipckit sync, C echo child', 'c', 1.5),
      ipckitCase('ipckit async, C echo child', 'c'),
      ipckitCase('ipckit async, Node echo child', 'node'),
    ],
  },
]
