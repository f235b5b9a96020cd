/**
 * A wait gives the CPU away once before it sleeps (ts/yield.ts): the gate that bounds how often
 * it does, and `IPCKIT_NO_YIELD=1`. Two processes sharing one CPU, where the yields find their
 * answers, are in yield-pinned.spec.ts.
 */

import test from 'ava'

import { YieldGate, tryAfterYield } from '../ts/yield'
import { SOURCE_ENTRY, runNode } from './helpers'

test('after a yield that finds nothing the next 1, 3, 7 ... 63 waits sleep at once; a find makes every wait yield again', (t) => {
  const gate = new YieldGate()
  const tried: number[] = []
  for (let i = 0; i < 200; i++) {
    const got = tryAfterYield(gate, () => {
      tried.push(i)
      return undefined
    })
    t.is(got, undefined)
  }
  // Tries at 0; then 1 skipped, 2; 3 skipped, 6; 7, 14; 15, 30; 31, 62; 63, 126; 63, 190.
  t.deepEqual(tried, [0, 2, 6, 14, 30, 62, 126, 190])
  // Mid-skip nothing is tried; the next due try finds something, and from then on every wait tries.
  const found: number[] = []
  for (let i = 200; i < 260; i++) {
    const got = tryAfterYield(gate, () => {
      found.push(i)
      return i
    })
    t.is(got, found.includes(i) ? i : undefined)
  }
  t.deepEqual(
    found,
    Array.from({ length: 6 }, (_, k) => 254 + k),
  )
})

test('what the try after a yield throws reaches the caller, and the next wait yields again', (t) => {
  const gate = new YieldGate()
  tryAfterYield(gate, () => undefined)
  tryAfterYield(gate, () => undefined) // skipped
  const boom = new Error('boom')
  t.is(
    t.throws(() =>
      tryAfterYield(gate, () => {
        throw boom
      }),
    ),
    boom,
  )
  let calls = 0
  t.is(
    tryAfterYield(gate, () => ++calls),
    1,
  )
  t.is(calls, 1)
})

test('IPCKIT_NO_YIELD=1: no wait yields or tries again', async (t) => {
  const r = await runNode(
    `const { YieldGate, tryAfterYield, YIELDS } = require(${JSON.stringify(SOURCE_ENTRY.replace(/index\.ts$/, 'yield.ts'))})
     const gate = new YieldGate()
     let calls = 0
     for (let i = 0; i < 100; i++) if (tryAfterYield(gate, () => ++calls) !== undefined) throw new Error('tried')
     console.log(JSON.stringify({ YIELDS, calls }))`,
    [],
    { env: { ...process.env, IPCKIT_NO_YIELD: '1' } },
  )
  t.deepEqual(JSON.parse(r.stdout.trim()), { YIELDS: false, calls: 0 })
})
