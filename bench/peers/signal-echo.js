'use strict'
/**
 * The Node echo child of the signal benchmark: watches signal number IN with ipckit and answers
 * every delivery with OUT to its sender (`sigqueue`, same value). Prints "ready" once watching.
 *   node signal-echo.js IN OUT [ORDERED]   (ORDERED: watchSignals' `ordered` option, default true)
 */
const { sigqueue, watchSignals } = require('../../dist')

const [input, output] = process.argv.slice(2, 4).map(Number)
const watcher = watchSignals(input, { ordered: process.argv[4] !== 'false' })
console.log('ready')
process.stdin.on('end', () => process.exit(0)).resume()
;(async () => {
  for await (const s of watcher) sigqueue(s.pid, output, s.value)
})()
