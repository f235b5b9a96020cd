import test from 'ava'
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'

import { ROOT, sysvIds } from './helpers'

test('npm run demo: the two-process tour runs, answers every job and removes its queue', (t) => {
  // The demo loads the built package (dist/), which `npm test` builds before ava runs.
  if (!existsSync(join(ROOT, 'dist', 'index.js'))) return t.fail('dist/ is missing: run `npm run build` first')
  const before = sysvIds('msg')
  const out = execFileSync(process.execPath, [join(ROOT, 'examples', 'demo.js')], { encoding: 'utf8', timeout: 30_000 })
  const answers = out.split('\n').filter((l) => / answer \d: \d+ hashed "/.test(l))
  t.is(answers.length, 4, out)
  t.regex(out, /ended with AbortError/)
  t.regex(out, /worker exited with 0; 0 messages left/)
  t.regex(out, /queue removed/)
  const id = Number(/queue id (\d+)/.exec(out)?.[1])
  t.true(Number.isInteger(id))
  t.false(sysvIds('msg').has(id) && !before.has(id), 'the demo left its queue behind')
})
