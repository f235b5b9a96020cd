#!/usr/bin/env node
// A tour of ipckit between two real processes: this script starts a copy of itself as a worker
// and the two talk over a System V message queue: jobs go one way (type 1), a stop message
// (type 2) ends the worker, and answers come back (type 3). Run it with `npm run demo`.
//
// The worker receives with `type: -2`: the lowest type <= 2 first, so it takes every job before
// the stop and never its own answers (type 3), which share the queue.
'use strict'

const { fork } = require('node:child_process')
const { createHash } = require('node:crypto')
const { MessageQueue } = require('..')

const JOB = 1
const STOP = 2
const ANSWER = 3

async function worker(queueId) {
  const q = MessageQueue.fromId(queueId)
  // Jobs and the stop, lowest type first: every job is taken before the stop.
  for await (const { type, data } of q.messages({ type: -STOP })) {
    if (type === STOP) break
    const digest = createHash('sha256').update(data).digest('hex').slice(0, 16)
    await q.send(`${process.pid} hashed "${data}" -> ${digest}`, { type: ANSWER })
  }
  q.close()
}

async function main() {
  console.log(`parent ${process.pid}: creating a private System V message queue`)
  const q = MessageQueue.create()
  try {
    const child = fork(__filename, ['--worker', String(q.id)])
    console.log(`parent ${process.pid}: started worker ${child.pid}, queue id ${q.id}`)

    const jobs = ['alpha', 'beta', 'gamma', 'delta']
    for (const job of jobs) await q.send(job, { type: JOB })
    console.log(`parent ${process.pid}: sent ${jobs.length} jobs (type ${JOB}); ${q.stat().messages} wait in the queue`)

    for (let i = 0; i < jobs.length; i++) {
      const answer = await q.receive({ type: ANSWER })
      console.log(`parent ${process.pid}: answer ${i + 1}: ${answer.data}`)
    }

    // A receive that nothing will satisfy, cancelled with an AbortSignal: it takes nothing.
    const aborted = await q.receive({ type: 99, signal: AbortSignal.timeout(50) }).catch((err) => err.name)
    console.log(`parent ${process.pid}: a receive of type 99 with a 50 ms timeout ended with ${aborted}`)

    q.sendSync('stop', { type: STOP })
    const code = await new Promise((resolve) => child.on('exit', resolve))
    const s = q.stat()
    console.log(
      `parent ${process.pid}: worker exited with ${code}; ${s.messages} messages left, ` +
        `last send at ${s.lastSendTime.toISOString()}`,
    )
  } finally {
    q.remove()
    q.close()
    console.log(`parent ${process.pid}: queue removed`)
  }
}

const at = process.argv.indexOf('--worker')
;(at > 0 ? worker(Number(process.argv[at + 1])) : main()).catch((err) => {
  console.error(err)
  process.exitCode = 1
})
