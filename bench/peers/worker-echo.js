'use strict'
/**
 * A worker thread for the worker_threads comparisons: posts back every message it gets, and
 * for `{ produce: n, size }` posts n messages of `size` bytes (each a Uint8Array, cloned).
 */
const { parentPort } = require('node:worker_threads')
parentPort.on('message', (m) => {
  if (m && typeof m === 'object' && 'produce' in m) {
    const payload = new Uint8Array(m.size)
    for (let i = 0; i < m.produce; i++) parentPort.postMessage(payload)
  } else {
    parentPort.postMessage(m)
  }
})
