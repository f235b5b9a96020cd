/**
 * Stress, short version (the full one is `npm run stress`): 8 producer and 8 consumer processes,
 * 10^4 checksummed records over each of a message queue, a seqpacket server and a pipe, at once.
 * Nothing may be lost, duplicated, damaged or reordered where the transport promises order. The
 * driver's own checks are tested first, so that a clean report means something.
 */
import test from 'ava'

import { linuxOnly } from './helpers'
import { PIPE_BUF, Tally, countOf, parseRecord, queueSize, record, runStress } from './helpers/stress'

test('the checker notices damaged, duplicated, missing and reordered records', (t) => {
  const good = record(2, 5, queueSize(2, 5))
  t.deepEqual(parseRecord(good), { producer: 2, seq: 5 })
  for (const at of [0, 5, 9, 13, 17, good.length - 1]) {
    const bad = Buffer.from(good)
    bad.writeUInt8(bad.readUInt8(at) ^ 0x10, at) // readUInt8 throws for an offset outside the record
    t.is(parseRecord(bad), null, `a flipped bit at ${at}`)
  }
  t.is(parseRecord(good.subarray(0, good.length - 1)), null, 'a truncated record')

  const connection = new Tally(16, 2, 'connection')
  for (const s of [0, 1, 3, 3]) connection.add(record(0, s, PIPE_BUF))
  connection.add(record(1, 0, 40))
  connection.add(Buffer.from('junk that is not a record'))
  t.like(connection, { received: 6, corrupt: 1, outOfOrder: 2, mixed: 1 })
  t.deepEqual([...connection.counts.subarray(0, 4)], [1, 1, 0, 2])

  const shared = new Tally(16, 2, 'increasing')
  for (const s of [0, 2, 7]) shared.add(record(1, s, 30))
  shared.add(record(1, 1, 30))
  shared.add(record(1, countOf(16, 2, 1), 30))
  t.like(shared, { received: 5, corrupt: 1, outOfOrder: 1 })
})

linuxOnly(test, 'one transport is a seqpacket server: macOS has no SOCK_SEQPACKET UNIX sockets')(
  '8 producers x 8 consumers, 10^4 records per transport: nothing lost, duplicated, damaged or reordered',
  async (t) => {
    const report = await runStress({ messages: 10_000, timeoutMs: 90_000, log: (l) => t.log(l) })
    t.log(`${report.ms.toFixed(0)} ms`)
    for (const [name, r] of Object.entries(report.transports)) {
      t.deepEqual(
        r,
        { expected: 10_000, received: 10_000, missing: 0, duplicated: 0, corrupt: 0, outOfOrder: 0, mixed: 0 },
        name,
      )
    }
  },
)
