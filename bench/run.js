#!/usr/bin/env node
'use strict'
/**
 * ipckit benchmarks: every primitive against raw C doing the same work in the same run, Node's
 * built-ins and the npm/PyPI peers. See bench/README.md for the method.
 *
 *   node bench/run.js [--smoke] [--only NAME] [--rounds N] [--round-trips N] [--messages N]
 *                     [--no-peers] [--json [FILE]] [--plot [FILE]] [--readme] [--no-pin]
 *
 * Suites are the files of bench/suites/ (one per primitive); each exports `(config) => op[]`.
 */

const { spawnSync } = require('node:child_process')
const { mkdirSync, readFileSync, readdirSync, writeFileSync } = require('node:fs')
const os = require('node:os')
const { dirname, join, relative } = require('node:path')

const { ROOT, reason, stats } = require('./lib/harness')
const { renderSvg, renderTable } = require('./lib/report')

function parseArgs(argv) {
  const args = { smoke: false, only: [], pin: true, peers: true, readme: false }
  const value = (i, name) => {
    const v = argv[i + 1]
    if (v === undefined || v.startsWith('--')) throw new Error(`${name} needs a value`)
    return v
  }
  const count = (i, name) => {
    const n = Number(value(i, name))
    if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer`)
    return n
  }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const optionalPath = () => (argv[i + 1] && !argv[i + 1].startsWith('--') ? argv[++i] : true)
    if (a === '--smoke') args.smoke = true
    else if (a === '--only') args.only.push(value(i++, a))
    else if (a === '--rounds') args.rounds = count(i++, a)
    else if (a === '--round-trips') args.roundTrips = count(i++, a)
    else if (a === '--messages') args.messages = count(i++, a)
    else if (a === '--no-peers') args.peers = false
    else if (a === '--no-pin') args.pin = false
    else if (a === '--json') args.json = optionalPath()
    else if (a === '--plot') args.plot = optionalPath()
    else if (a === '--readme') args.readme = true
    else if (a === '--help' || a === '-h') args.help = true
    else throw new Error(`unknown option ${a}`)
  }
  return args
}

/** Re-runs this process pinned to CPU 0 (children inherit it): unpinned runs are bimodal. */
function pinned(args) {
  if (!args.pin || process.env.IPCKIT_BENCH_PINNED) return null
  const probe = spawnSync('taskset', ['-c', '0', 'true'])
  if (probe.error || probe.status !== 0) return null
  const r = spawnSync('taskset', ['-c', '0', process.execPath, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, IPCKIT_BENCH_PINNED: '0' },
  })
  return r.status ?? 1
}

function config(args) {
  const smoke = args.smoke
  const messages = args.messages ?? (smoke ? 2_000 : 1_000_000)
  return {
    smoke,
    peers: args.peers && !smoke,
    rounds: args.rounds ?? (smoke ? 2 : 9),
    roundTrips: args.roundTrips ?? (smoke ? 200 : 20_000),
    messages,
    chunk: Math.min(messages, smoke ? 1_000 : 100_000),
  }
}

function machine() {
  const cpus = os.cpus()
  return {
    cpu: cpus[0]?.model ?? 'unknown',
    cpus: cpus.length,
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    pinned: process.env.IPCKIT_BENCH_PINNED === '0' ? 'taskset -c 0' : 'no',
    load: os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' '),
    date: new Date().toISOString(),
  }
}

async function runOp(op, cfg, log) {
  const unitNs = op.unit === 'us' ? 1000 : 1
  const live = []
  const unavailable = []
  for (const c of op.cases) {
    try {
      await c.setup?.(cfg)
      live.push(c)
    } catch (err) {
      unavailable.push({ impl: c.impl, kind: c.kind, reason: reason(err) })
      await Promise.resolve(c.teardown?.()).catch(() => {})
    }
  }
  const samples = new Map(live.map((c) => [c, []]))
  const fail = async (c, err) => {
    unavailable.push({ impl: c.impl, kind: c.kind, reason: reason(err) })
    samples.delete(c)
    await Promise.resolve(c.teardown?.()).catch(() => {})
  }
  // Warm-up (discarded), then rounds that visit every case in turn, so that noise from the
  // rest of the machine falls on all of them alike. The warm-up is a tenth of the count, or
  // `op.warmup` whole samples where the engine takes longer than that to settle.
  const countOf = (c) => Math.max(1, Math.round(op.count * (c.scale ?? 1)))
  for (const c of [...samples.keys()]) {
    try {
      if (op.warmup === undefined) await c.sample(Math.max(1, Math.round(countOf(c) / 10)))
      for (let w = 0; w < (op.warmup ?? 0); w++) await c.sample(countOf(c))
    } catch (err) {
      await fail(c, err)
    }
  }
  for (let r = 0; r < cfg.rounds; r++) {
    for (const c of [...samples.keys()]) {
      try {
        const n = countOf(c)
        const ns = await c.sample(n)
        if (!Number.isFinite(ns) || ns <= 0) throw new Error(`bad sample: ${ns}`)
        samples.get(c).push(ns / n / unitNs)
      } catch (err) {
        await fail(c, err)
      }
    }
    log(`  ${op.operation}: round ${r + 1}/${cfg.rounds}`)
  }
  for (const c of samples.keys()) await Promise.resolve(c.teardown?.()).catch(() => {})
  const rows = [...samples].map(([c, values]) => ({
    impl: c.impl,
    kind: c.kind,
    compare: c.compare,
    baseline: c.baseline,
    target: c.target,
    targetVs: c.targetVs,
    count: countOf(c),
    values,
    ...stats(values),
  }))
  const firstC = rows.find((r) => r.kind === 'c')
  for (const row of rows) {
    // A row's C is the C row it names (an op with one C row per primitive), else the op's.
    const base =
      row.kind === 'c' ? row : row.baseline === undefined ? firstC : rows.find((r) => r.impl === row.baseline)
    row.ratioC = base ? row.median / base.median : null
    if (row.kind === 'alt' || row.kind === 'peer') {
      const ref = rows.find((r) => r.impl === row.compare) ?? rows.find((r) => r.kind === 'ipckit')
      row.vs = ref ? { impl: ref.impl, ratio: row.median / ref.median } : null
    }
    if (row.targetVs !== undefined) {
      // A target against another row of the same run (Node's net, say): time over its time.
      // Several targets (an array): the first is `vs`, the others `vsMore`.
      const checks = [row.targetVs].flat().map((tv) => {
        const ref = rows.find((r) => r.impl === tv.impl)
        const ratio = ref ? row.median / ref.median : null
        return { impl: tv.impl, ratio, target: tv.ratio, met: ratio !== null && ratio <= tv.ratio }
      })
      const [first, ...more] = checks
      row.vs = first.ratio === null ? null : { impl: first.impl, ratio: first.ratio, target: first.target }
      row.metVs = checks.every((c) => c.met)
      if (more.length > 0) row.vsMore = more
    }
    if (row.target !== undefined) row.met = row.ratioC !== null && row.ratioC <= row.target
  }
  const { cases: _cases, ...meta } = op
  return { ...meta, count: op.count, rows, unavailable }
}

function updateReadme(table, env) {
  const file = join(ROOT, 'bench', 'README.md')
  const text = readFileSync(file, 'utf8')
  const start = '<!-- bench:results:start -->'
  const end = '<!-- bench:results:end -->'
  const i = text.indexOf(start)
  const j = text.indexOf(end)
  if (i < 0 || j < i) throw new Error(`bench/README.md lacks the ${start} / ${end} markers`)
  const body = [
    '',
    `Machine: ${env.cpu} (${env.cpus} vCPU), ${env.kernel}, Node ${env.node}, pinned: ${env.pinned},`,
    `load average at start ${env.load}, ${env.date}.`,
    '',
    table,
    '',
  ].join('\n')
  writeFileSync(file, text.slice(0, i + start.length) + body + text.slice(j))
}

async function main() {
  const args = parseArgs(process.argv.slice(2))
  if (args.help) {
    console.log(readFileSync(__filename, 'utf8').split('\n').slice(3, 11).join('\n'))
    return 0
  }
  const code = pinned(args)
  if (code !== null) return code
  const cfg = config(args)
  const log = (line) => process.stderr.write(`${line}\n`)
  const env = machine()
  log(`ipckit bench${cfg.smoke ? ' (smoke)' : ''}: ${env.cpu}, pinned: ${env.pinned}, load ${env.load}`)
  const suiteDir = join(__dirname, 'suites')
  const suites = readdirSync(suiteDir)
    .filter((f) => f.endsWith('.js'))
    .filter((f) => args.only.length === 0 || args.only.some((o) => f.includes(o)))
  if (suites.length === 0) throw new Error(`no suite matches ${args.only.join(', ')}`)
  const results = []
  for (const file of suites) {
    const ops = require(join(suiteDir, file))(cfg)
    for (const op of ops) results.push(await runOp(op, cfg, log))
  }
  const table = renderTable(results)
  console.log(table)
  const report = { machine: env, config: cfg, results }
  if (args.json) {
    const file =
      args.json === true ? join(ROOT, 'bench', 'out', `results-${env.date.replace(/[:.]/g, '-')}.json`) : args.json
    mkdirSync(dirname(file), { recursive: true })
    writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`)
    log(`wrote ${relative(process.cwd(), file)}`)
  }
  if (args.plot) {
    const file = args.plot === true ? join(ROOT, 'bench', 'ratios.svg') : args.plot
    writeFileSync(file, renderSvg(results, env))
    log(`wrote ${relative(process.cwd(), file)}`)
  }
  if (args.readme) updateReadme(table, env)
  // What ipckit itself needs must run: a failing C baseline or ipckit case fails the run.
  const broken = results.flatMap((r) => r.unavailable.filter((u) => u.kind === 'c' || u.kind === 'ipckit'))
  for (const b of broken) log(`FAILED: ${b.impl}: ${b.reason}`)
  return broken.length > 0 ? 1 : 0
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err)
    process.exit(1)
  },
)
