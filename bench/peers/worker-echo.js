'use strict'
/** A worker thread that posts back every message it gets (the worker_threads comparison). */
const { parentPort } = require('node:worker_threads')
parentPort.on('message', (m) => parentPort.postMessage(m))
