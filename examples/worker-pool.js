#!/usr/bin/env node
// A worker pool over System V message queues: the parent puts jobs on one queue, N worker
// processes take them (each job goes to exactly one worker, whichever is free), and send their
// results back on a second queue. No sockets, no IPC channel of Node's: any process that knows
// the queue ids (a C program, a Python one with sysv_ipc) could be a worker or a producer.
//
//   npm run build && node examples/worker-pool.js [workers] [jobs] [--list]
//
// `--list` prints every job's result and the worker that computed it.
//
// Job messages have type 1 and a stop message type 2; workers receive with `type: -2` (the
// lowest type <= 2 first), so every job is taken before any worker sees its stop message.
'use strict'
const { fork } = require('node:child_process')
const { createHash } = require('node:crypto')
const { MessageQueue } = require('ipckit') // this package, from dist/ (run `npm run build` first)

const JOB = 1
const STOP = 2

/** The work: a few thousand rounds of SHA-256 over the job's input. */
function work(input) {
  let digest = Buffer.from(input)
  for (let i = 0; i < 2000; i++) digest = createHash('sha256').update(digest).digest()
  return digest.toString('hex').slice(0, 16)
}

async function worker(jobsId, resultsId) {
  const jobs = MessageQueue.fromId(jobsId)
  const results = MessageQueue.fromId(resultsId)
  for await (const { type, data } of jobs.messages({ type: -STOP })) {
    if (type === STOP) break
    const { id, input } = JSON.parse(data.toString())
    await results.send(JSON.stringify({ id, pid: process.pid, output: work(input) }))
  }
  jobs.close()
  results.close()
}

async function main() {
  const args = process.argv.slice(2)
  const list = args.includes('--list')
  const [workers = 4, count = 200] = args.filter((a) => a !== '--list').map(Number)
  const jobs = MessageQueue.create()
  const results = MessageQueue.create()
  const started = process.hrtime.bigint()
  try {
    const children = Array.from({ length: workers }, () =>
      fork(__filename, ['--worker', String(jobs.id), String(results.id)], { stdio: 'inherit' }),
    )
    const exited = children.map((c) => new Promise((resolve) => c.on('exit', resolve)))
    console.log(`parent ${process.pid}: jobs on queue ${jobs.id}, results on queue ${results.id}`)
    console.log(`parent ${process.pid}: started workers ${children.map((c) => c.pid).join(', ')}`)

    for (let id = 0; id < count; id++) await jobs.send(JSON.stringify({ id, input: `job ${id}` }), { type: JOB })
    for (let i = 0; i < workers; i++) await jobs.send('', { type: STOP })

    const perWorker = new Map()
    const seen = new Set()
    for (let i = 0; i < count; i++) {
      const { id, pid, output } = JSON.parse((await results.receive()).data.toString())
      if (output !== work(`job ${id}`) || seen.has(id)) throw new Error(`bad result for job ${id}`)
      seen.add(id)
      perWorker.set(pid, (perWorker.get(pid) ?? 0) + 1)
      if (list) console.log(`  job ${id} "job ${id}" -> ${output} by worker ${pid}`)
    }
    const codes = await Promise.all(exited)
    const ms = Number(process.hrtime.bigint() - started) / 1e6
    console.log(`${count} jobs done by ${workers} worker processes in ${ms.toFixed(0)} ms, each exactly once`)
    for (const [pid, n] of perWorker) console.log(`  worker ${pid}: ${n} jobs`)
    if (codes.some((c) => c !== 0)) throw new Error(`a worker failed: exit codes ${codes}`)
  } finally {
    jobs.remove()
    results.remove()
  }
}

if (process.argv[2] === '--worker') worker(Number(process.argv[3]), Number(process.argv[4]))
else
  main().catch((err) => {
    console.error(err)
    process.exitCode = 1
  })
