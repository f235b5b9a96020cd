'use strict'
/**
 * The other side of the Node-API floor rows (bench/c/napi_floor.c). Prints "ready" once set up.
 *
 *   node napi-floor-echo.js ADDON_PATH               a message socket on fd 3: each message
 *       awaited through the minimal addon and answered with 64 bytes, until end of stream
 *   node napi-floor-echo.js ADDON_PATH produce-seq   per stdin line "N SIZE", N blocking sends
 *       of SIZE bytes on the message socket fd 3 (one native call each)
 *   node napi-floor-echo.js ADDON_PATH produce-msg QID   the same with msgsnd to queue QID
 * The producers end when stdin closes.
 */

const readline = require('node:readline')

const floor = require(process.argv[2])
const mode = process.argv[3] ?? 'echo'

async function echo() {
  floor.watch(3)
  console.log('ready')
  for (;;) {
    const n = await floor.receive()
    if (n <= 0) break
    floor.send(3)
  }
  floor.unwatch()
}

function produce() {
  const qid = Number(process.argv[4])
  const send = mode === 'produce-msg' ? (size) => floor.msgSend(qid, size) : (size) => floor.sendSync(3, size)
  readline.createInterface({ input: process.stdin }).on('line', (line) => {
    const [n, size] = line.split(' ').map(Number)
    for (let i = 0; i < n; i++) {
      const sent = send(size)
      if (sent !== size) throw new Error(`napi floor producer: send answered ${sent}`)
    }
    console.log('sent')
  })
  console.log('ready')
}

if (mode === 'echo') {
  echo().catch((err) => {
    console.error(err)
    process.exit(1)
  })
} else if (mode === 'produce-seq' || mode === 'produce-msg') {
  produce()
} else {
  throw new Error(`napi-floor-echo: unknown mode ${mode}`)
}
