'use strict'
/**
 * The Node echo child of the eventfd benchmark: fd 3 is the "ping" eventfd, fd 4 the "pong"
 * one (both from the parent). Answers every count read on fd 3 with a write of 1 on fd 4, both
 * sides async (`for await` and `await write`), as a Node program would; ends on a count of
 * 2^40 or more.
 *   node eventfd-echo.js
 */
const { EventFd } = require('../../dist')

const STOP = 2 ** 40
const ping = EventFd.fromFd(3)
const pong = EventFd.fromFd(4)
;(async () => {
  for await (const v of ping) {
    if (v >= STOP) break
    await pong.write(1)
  }
  ping.close()
  pong.close()
})()
