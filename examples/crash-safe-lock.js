#!/usr/bin/env node
// A crash-safe lock between processes: worker processes add 1 to a counter kept in a file, each
// time under a `Mutex` (a System V semaphore taken with SEM_UNDO). One process is killed with
// SIGKILL while it holds the lock, in the middle of an update. The kernel undoes its semaphore
// operation when it dies, so the lock is free again at once and the other workers go on; the
// worker that takes the lock next is told its holder died (guard.previousOwnerDied), as a
// robust mutex says EOWNERDEAD; the final count is exact, because the dead process never wrote
// its half-done update.
//
//   npm run build && node examples/crash-safe-lock.js [workers] [increments]
//
// Every process finds the mutex by the same key, made with ftok() from the counter file, as
// unrelated programs (a C one with semget, a Python one with sysv_ipc) could.
'use strict'
const { fork } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { Mutex, SemaphoreSet, ftok } = require('..') // this package, from dist/ (run `npm run build` first)

const PROJECT_ID = 1
const LOCK_TIMEOUT_MS = 30_000 // a worker gives up (EAGAIN) rather than hang forever

/** The critical section: read the counter, add one, write it back. */
function increment(file) {
  const value = Number(fs.readFileSync(file, 'utf8'))
  fs.writeFileSync(file, String(value + 1))
}

/** A worker: `count` increments, each under the lock. */
async function worker(file, count) {
  const mutex = Mutex.open(ftok(file, PROJECT_ID))
  try {
    for (let i = 0; i < count; i++) {
      await mutex.withLock(
        (lock) => {
          // The last holder died holding the lock: here, the counter is whole (it wrote
          // nothing), so there is nothing to repair; a real program would check its data.
          if (lock.previousOwnerDied && process.send) process.send({ tookOver: Number(fs.readFileSync(file, 'utf8')) })
          increment(file)
        },
        { timeoutMs: LOCK_TIMEOUT_MS },
      )
    }
  } finally {
    mutex.close()
  }
}

/** The victim: `count` increments, then it takes the lock, reads the counter, and hangs there. */
async function victim(file, count) {
  await worker(file, count)
  const mutex = Mutex.open(ftok(file, PROJECT_ID))
  await mutex.lock({ timeoutMs: LOCK_TIMEOUT_MS })
  const value = Number(fs.readFileSync(file, 'utf8'))
  process.send({ holding: true, value }) // ... and never writes value + 1 nor unlocks
  setInterval(() => {}, 60_000)
}

/** Resolves with the first message of `child`; rejects if it exits first. */
function firstMessage(child) {
  return new Promise((resolve, reject) => {
    child.once('message', resolve)
    child.once('close', (code, signal) => reject(new Error(`the process ended (${signal ?? code}) before it reported`)))
  })
}

const exitOf = (child) =>
  new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null)
      resolve({ code: child.exitCode, signal: child.signalCode })
    else child.once('exit', (code, signal) => resolve({ code, signal }))
  })

async function main() {
  const workers = Number(process.argv[2] ?? 3)
  const increments = Number(process.argv[3] ?? 200)
  const victimIncrements = 25
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ipckit-crash-safe-lock-'))
  const file = path.join(dir, 'counter')
  fs.writeFileSync(file, '0')
  const children = []
  let mutex
  try {
    mutex = Mutex.open(ftok(file, PROJECT_ID), { exclusive: true }) // a new mutex, unlocked
    console.log(`mutex: semaphore set id ${mutex.id}, key 0x${mutex.key.toString(16)} (ftok of ${file})`)

    const doomed = fork(__filename, ['--victim', file, String(victimIncrements)])
    children.push(doomed)
    const { value } = await firstMessage(doomed)
    console.log(`victim ${doomed.pid}: made ${victimIncrements} increments, now holds the lock and read ${value}`)

    const started = Array.from({ length: workers }, () => fork(__filename, ['--worker', file, String(increments)]))
    children.push(...started)
    const tookOver = []
    for (const child of started) child.on('message', (m) => tookOver.push({ pid: child.pid, value: m.tookOver }))
    // Wait until every worker is blocked on the lock (semncnt, the kernel's count of waiters).
    // macOS has no semtimedop: a wait with a timeout polls there and is not counted, so give
    // the workers a moment instead (the count below is exact either way).
    const set = SemaphoreSet.fromId(mutex.id)
    try {
      const deadline = Date.now() + (process.platform === 'linux' ? 10_000 : 1_000)
      while (set.waitingForIncrease(0) < workers) {
        if (process.platform !== 'linux' && Date.now() > deadline) break
        if (Date.now() > deadline) throw new Error('the workers did not all wait for the lock')
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
    } finally {
      set.close()
    }
    console.log(
      `${workers} workers (${started.map((c) => c.pid).join(', ')}) are waiting for the lock; mutex locked: ${mutex.locked}`,
    )

    doomed.kill('SIGKILL')
    const died = await exitOf(doomed)
    console.log(
      `victim ${doomed.pid}: killed by ${died.signal} while holding the lock; the kernel released it (SEM_UNDO)`,
    )

    const results = await Promise.all(started.map(exitOf))
    const failed = results.filter((r) => r.code !== 0)
    if (failed.length > 0) throw new Error(`${failed.length} worker(s) failed: ${JSON.stringify(failed)}`)
    console.log(`${workers} workers finished: ${increments} increments each`)
    for (const { pid, value } of tookOver) {
      console.log(
        `worker ${pid} took the lock over from the dead victim (previousOwnerDied) and found the counter at ${value}`,
      )
    }

    const count = Number(fs.readFileSync(file, 'utf8'))
    const expected = victimIncrements + workers * increments
    console.log(
      `counter: ${count}, expected ${expected} (${victimIncrements} + ${workers} x ${increments}): ${count === expected ? 'exact' : 'WRONG'}`,
    )
    if (count !== expected) throw new Error('lost or duplicated increments')
  } finally {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    if (mutex !== undefined) {
      mutex.remove() // waiters still blocked, if any, end with EIDRM
      mutex.close()
    }
    fs.rmSync(dir, { recursive: true, force: true })
    console.log(`removed the mutex${mutex ? ` (id ${mutex.id})` : ''} and ${dir}`)
  }
}

const [role, file, count] = process.argv.slice(2)
const run =
  role === '--worker'
    ? () => worker(file, Number(count))
    : role === '--victim'
      ? () => victim(file, Number(count))
      : main
run().catch((err) => {
  console.error(err)
  process.exitCode = 1
})
