/**
 * The copy API of shared memory (`read`/`write` of SharedMemory and SharedMemoryView) copies in
 * JavaScript over a zero-copy view of its attachment where the runtime allows it, and in a
 * native call where it does not (IPCKIT_NO_ZERO_COPY=1 forces that). These specs pin that both
 * paths see the same bytes as views and as each other, and that close() still lets go of the
 * attachment.
 */

import test, { type ExecutionContext } from 'ava'

import { SharedMemory } from '../ts/index'
import { runNode, shmAttachments, sleep } from './helpers'

function privateSegment(t: ExecutionContext, size: number): SharedMemory {
  const shm = SharedMemory.create({ size })
  t.teardown(() => {
    shm.close()
    try {
      SharedMemory.fromId(shm.id).remove()
    } catch {
      // already removed by the test
    }
  })
  return shm
}

/** Attachments of a segment (`nattch`); undefined once it is gone. */
const nattch = shmAttachments

const pattern = (n: number, seed: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff))

test('copy reads and writes agree with views, at any offset up to the end', (t) => {
  const shm = privateSegment(t, 10_000)
  using view = shm.attach()
  const bytes = new Uint8Array(view.buffer)
  shm.write(pattern(100, 1), 0)
  shm.write(pattern(37, 2), 4_001)
  shm.write(pattern(16, 3), 10_000 - 16)
  shm.write('héllo', 500)
  t.deepEqual(Buffer.from(bytes.subarray(0, 100)), pattern(100, 1))
  t.deepEqual(Buffer.from(bytes.subarray(4_001, 4_038)), pattern(37, 2))
  t.deepEqual(Buffer.from(bytes.subarray(10_000 - 16)), pattern(16, 3))
  t.is(Buffer.from(bytes.subarray(500, 506)).toString(), 'héllo')

  bytes.set(pattern(64, 4), 8_000)
  t.deepEqual(shm.read(8_000, 64), pattern(64, 4))
  const words = shm.read(8_000, new Uint32Array(4))
  t.deepEqual(Buffer.from(words.buffer), pattern(16, 4))
  const target = Buffer.alloc(40, 0xee)
  shm.read(8_010, target.subarray(5, 15))
  t.deepEqual(target.subarray(5, 15), pattern(64, 4).subarray(10, 20))
  t.is(target[4], 0xee)
  t.is(target[15], 0xee)
  t.deepEqual(shm.read(10_000, 0), Buffer.alloc(0))

  // The same through a view's own copy API.
  view.write(pattern(8, 5), 9_000)
  t.deepEqual(view.read(9_000, 8), pattern(8, 5))
  t.deepEqual(shm.read(9_000, 8), pattern(8, 5))
  // Bounds are still checked before anything is copied.
  t.throws(() => shm.write(pattern(17, 6), 10_000 - 16), { code: 'ERR_OUT_OF_RANGE' })
  t.deepEqual(Buffer.from(bytes.subarray(10_000 - 16)), pattern(16, 3))
  t.throws(() => shm.read(9_999, 2), { code: 'ERR_OUT_OF_RANGE' })
})

test('a process that copies in native calls sees the same bytes, both ways', async (t) => {
  const shm = privateSegment(t, 65_536)
  const sent = pattern(65_536 - 3, 7)
  shm.write(sent, 3)
  const r = await runNode(
    `const shm = ipckit.SharedMemory.fromId(Number(process.argv[2]))
     const got = shm.read(3, 65_533)
     const want = Buffer.from(Array.from({ length: 65_533 }, (_, i) => (i * 31 + 7) & 0xff))
     console.log(ipckit.zeroCopySupported, got.equals(want))
     shm.write(Buffer.from('from the child'), 1000)`,
    [String(shm.id)],
    { env: { ...process.env, IPCKIT_NO_ZERO_COPY: '1' } },
  )
  t.is(r.stdout.trim(), 'false true')
  t.is(shm.read(1000, 14).toString(), 'from the child')
})

test('close() lets go of the copy API attachment, and later calls throw ERR_INVALID_STATE', async (t) => {
  const shm = privateSegment(t, 4096)
  shm.write('x', 0)
  t.is(shm.read(0, 1).toString(), 'x')
  t.is(nattch(shm.id), 1)
  shm.close()
  t.throws(() => shm.read(0, 1), { code: 'ERR_INVALID_STATE' })
  t.throws(() => shm.write('y', 0), { code: 'ERR_INVALID_STATE' })
  // The buffer's finalizer unmaps it once the engine lets go of the memory (at once, after this tick).
  const deadline = Date.now() + 5000
  while (nattch(shm.id) !== 0 && Date.now() < deadline) await sleep(5)
  t.is(nattch(shm.id), 0)
})
