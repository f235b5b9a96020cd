'use strict'
/**
 * The Node child of the Channel suite, given a channel's descriptors (`Channel.fds`) as fds 3,
 * 4, 5. Prints "ready" once it has opened its end.
 *   node channel-peer.js echo        a duplex end: sends back every message it receives, both
 *                                    sides async (`for await` and `await send`); ends when the
 *                                    other end closes
 *   node channel-peer.js produce     a one-way writer: per stdin line "N SIZE", `await send`s N
 *                                    messages of SIZE bytes, then prints "sent"; ends when stdin
 *                                    closes
 */
const { Channel } = require('../../dist')

const mode = process.argv[2]
const ch = Channel.fromFds([3, 4, 5])

async function main() {
  if (mode === 'echo') {
    console.log('ready')
    for await (const m of ch) await ch.send(m)
    ch.close()
    return
  }
  if (mode === 'produce') {
    console.log('ready')
    let buffered = ''
    process.stdin.setEncoding('utf8')
    for await (const chunk of process.stdin) {
      buffered += chunk
      let nl
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const [n, size] = buffered.slice(0, nl).split(' ').map(Number)
        buffered = buffered.slice(nl + 1)
        const payload = Buffer.alloc(size, 'x')
        for (let i = 0; i < n; i++) await ch.send(payload)
        console.log('sent')
      }
    }
    ch.close()
    return
  }
  throw new Error(`unknown mode ${mode}`)
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
