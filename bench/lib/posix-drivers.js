'use strict'
/**
 * The driver cases of the POSIX suites (`suites/posix-queue.js`, `suites/posix-semaphore.js`):
 * the C baseline (`bench/c/posix_bench.c driver`) and Python's `posix_ipc`
 * (`bench/peers/posix_ipc_driver.py`) speak the same line protocol, so one case shape serves
 * both.
 *
 * @example
 * cDriverCase('C mq_send/mq_receive', echoPair, (ctx, n) => `mq-rt ${ctx.req.name} ${ctx.rep.name} ${n} 64`)
 */

const { join } = require('node:path')

const { LineProcess, compileC } = require('./harness')
const { pythonPeer } = require('./peers')

const PY_DRIVER = join(__dirname, '..', 'peers', 'posix_ipc_driver.py')

/**
 * A case driven by lines: `start(config)` spawns the driver, `make()` the objects it works on
 * (with an async `close()`), `command(ctx, n)` the line of one sample, which the driver answers
 * with the elapsed nanoseconds.
 */
function driverCase({ impl, kind, compare, start, make, command }) {
  let driver
  let ctx
  return {
    impl,
    kind,
    compare,
    setup(config) {
      driver = start(config)
      ctx = make()
    },
    async sample(n) {
      const line = await driver.ask(command(ctx, n))
      if (!/^\d+$/.test(line)) throw new Error(`${impl} driver: ${line}`)
      return Number(line)
    },
    async teardown() {
      await driver?.close()
      await ctx?.close()
    },
  }
}

/** The C baseline (`posix_bench driver`). */
function cDriverCase(impl, make, command) {
  const start = () => new LineProcess(compileC('posix_bench'), ['driver'])
  return driverCase({ impl, kind: 'c', start, make, command })
}

/** Python's `posix_ipc` doing the same (a peer, compared with ipckit's sync row). */
function pythonDriverCase(make, command) {
  const start = (config) => {
    if (!config.peers) throw new Error('peers skipped (--no-peers or smoke mode)')
    const py = pythonPeer('posix_ipc')
    return new LineProcess(py.python, [PY_DRIVER], { env: { ...process.env, PYTHONPATH: py.path } })
  }
  return driverCase({ impl: 'Python posix_ipc', kind: 'peer', compare: 'ipckit sync', start, make, command })
}

module.exports = { cDriverCase, pythonDriverCase }
