import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

import test, { type ExecutionContext } from 'ava'

import { AbortError, IPC_PRIVATE, IpcError, SharedMemory, zeroCopySupported } from '../ts/index'
import { pendingWaits } from '../ts/reactor'
import {
  assertTimeBetween,
  cChild,
  compileC,
  freshKey,
  keyExists,
  linuxOnly,
  NOBODY,
  nodeChild,
  notLinux,
  onLinux,
  removeAtEnd,
  removeBuilds,
  runNode,
  SOURCE_ENTRY,
  shmAttachments,
  sleep,
  sysvIds,
  timed,
  within,
} from './helpers'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

test.after.always(removeBuilds)

const track = (t: ExecutionContext, shm: SharedMemory) => removeAtEnd(t, shm, SharedMemory.fromId)
const privateSegment = (t: ExecutionContext, size = 4096) => track(t, SharedMemory.create({ size }))

/** wait/notify are futex calls: elsewhere they throw ENOSYS (tested below). */
const futexTest = linuxOnly(test, 'shm.wait/notify need a futex (ENOSYS on macOS, tested instead)')

/** Attachments of a segment (`nattch`); undefined once it is gone. */
const nattch = shmAttachments

/** Polls until `cond()` holds (GC and buffer finalizers run on their own schedule). */
async function eventually(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    gc()
    await sleep(5)
  }
}

test('zero-copy is supported in Node.js', (t) => {
  t.true(zeroCopySupported)
})

test('open, create and fromId report id, unsigned key and the real size', (t) => {
  const key = freshKey('shm')
  t.teardown(() => {
    if (keyExists('shm', key)) SharedMemory.open(key).remove()
  })
  const a = track(t, SharedMemory.open(key, { size: 10_000, create: true, mode: 0o640 }))
  t.is(a.key, key)
  t.is(a.size, 10_000)
  t.is(a.stat().mode, 0o640)
  const b = SharedMemory.open(key)
  t.is(b.id, a.id)
  t.is(b.size, 10_000, 'size 0 opens any size and reports the real one')
  t.is(SharedMemory.open(key, { size: 100 }).size, 10_000)
  const c = SharedMemory.fromId(a.id)
  t.is(c.key, key)
  t.is(c.size, 10_000)
  const high = (freshKey('shm') | 0x8000_0000) >>> 0
  const negative = track(t, SharedMemory.open(high | 0, { size: 8, exclusive: true }))
  t.is(negative.key, high, 'keys are reported unsigned')
  const p = privateSegment(t, 1)
  t.is(p.key, IPC_PRIVATE)
  t.is(p.size, 1)
})

test('copy API: write and read round trip strings, Buffers and other views', (t) => {
  const shm = privateSegment(t, 256)
  t.deepEqual(shm.read(0, 8), Buffer.alloc(8), 'a new segment holds zeros')
  shm.write('héllo', 10)
  t.is(shm.read(10, 6).toString('utf8'), 'héllo')
  shm.write(new Uint32Array([0x01020304, 0xa0b0c0d0]), 100)
  const words = shm.read(100, new Uint32Array(2))
  t.deepEqual([...words], [0x01020304, 0xa0b0c0d0])
  const dv = new DataView(new ArrayBuffer(8), 2, 4)
  t.is(shm.read(100, dv), dv)
  t.is(dv.getUint32(0, true), 0x01020304)
  shm.write(Buffer.from([9, 8, 7]))
  t.deepEqual(shm.read(0, 3), Buffer.from([9, 8, 7]))
  shm.write(Buffer.alloc(1, 0xee), 255)
  t.deepEqual(shm.read(250, 6), Buffer.from([0, 0, 0, 0, 0, 0xee]))
  t.deepEqual(shm.read(256, 0), Buffer.alloc(0))
})

test('copy API bounds: RangeError before anything is written', (t) => {
  const shm = privateSegment(t, 64)
  shm.write(Buffer.alloc(64, 1))
  const range = { code: 'ERR_OUT_OF_RANGE', instanceOf: RangeError }
  t.throws(() => shm.write(Buffer.alloc(8, 2), 60), range)
  t.throws(() => shm.write('x', 65), range)
  t.throws(() => shm.write('x', -1), range)
  t.throws(() => shm.write('x', 1.5), range)
  t.deepEqual(shm.read(0, 64), Buffer.alloc(64, 1), 'nothing was written out of range')
  t.throws(() => shm.read(60, 5), range)
  t.throws(() => shm.read(65, 0), range)
  t.throws(() => shm.read(0, new Uint8Array(65)), range)
  t.throws(() => shm.read(1, new Uint8Array(64)), range)
  const type = { code: 'ERR_INVALID_ARG_TYPE', instanceOf: TypeError }
  t.throws(() => shm.write(42 as never, 0), type)
  t.throws(() => shm.write('x', '1' as never), type)
  t.throws(() => shm.read('0' as never, 1), type)
  t.throws(() => shm.read(0, 'x' as never), type)
  t.throws(() => shm.read(0, [1, 2] as never), type)
  t.throws(() => SharedMemory.open('1' as never), type)
  t.throws(() => SharedMemory.open(1, { size: -1 }), range)
  t.throws(() => SharedMemory.open(1, { create: 1 as never }), type)
  t.throws(() => SharedMemory.create(undefined as never), type)
  t.throws(() => shm.attach({ readonly: 'yes' as never }), type)
})

test('an EINVAL of shmget says what to fix: no size for a new segment, a size larger than the existing segment', (t) => {
  const key = freshKey('shm')
  t.teardown(() => {
    if (keyExists('shm', key)) {
      const s = SharedMemory.open(key)
      s.remove()
      s.close()
    }
  })
  const noSize = t.throws(() => SharedMemory.open(key, { create: true }), { instanceOf: IpcError })
  t.like(noSize, {
    code: 'EINVAL',
    errno: -22,
    syscall: 'shmget',
    message: 'EINVAL: invalid argument, shmget (no options.size: a new segment needs a size of at least 1 byte)',
  })
  t.false(keyExists('shm', key), 'nothing was created')
  const made = track(t, SharedMemory.open(key, { create: true, size: 100 }))
  t.like(
    t.throws(() => SharedMemory.open(key, { size: 5000 })),
    {
      code: 'EINVAL',
      errno: -22,
      syscall: 'shmget',
      message: 'EINVAL: invalid argument, shmget (options.size 5000: the existing segment of this key is smaller)',
    },
  )
  // An existing segment opens without a size.
  t.is(track(t, SharedMemory.open(key, { create: true })).id, made.id)
})

/** Why `unshare --ipc` cannot run here, or undefined when it can (it needs root). */
const noIpcNamespace = (() => {
  if (!onLinux) return undefined // linuxOnly says why
  const probe = spawnSync('unshare', ['--ipc', 'true'], { stdio: 'pipe' })
  if (probe.error) return `unshare(1) is not available (${probe.error.message})`
  return probe.status === 0 ? undefined : `unshare --ipc failed (it needs root): ${probe.stderr.toString().trim()}`
})()
const namespaceTest =
  noIpcNamespace === undefined ? test : (title: string) => test.skip(`${title} [skipped: ${noIpcNamespace}]`, () => {})

linuxOnly(namespaceTest, 'sets shmmax in a private IPC namespace (unshare, /proc/sys/kernel)')(
  'an EINVAL of shmget for a size above shmmax names shmmax',
  async (t) => {
    const code = `
    const ipckit = require(${JSON.stringify(SOURCE_ENTRY)})
    try { ipckit.SharedMemory.open(0x1234, { create: true, size: 70000 }) }
    catch (e) { console.log(JSON.stringify({ code: e.code, errno: e.errno, syscall: e.syscall, message: e.message })) }`
    const r = spawnSync(
      'unshare',
      [
        '--ipc',
        'sh',
        '-c',
        'echo 65536 > /proc/sys/kernel/shmmax && exec "$0" --require "$1" -e "$2"',
        process.execPath,
        require.resolve('tsx/cjs'),
        code,
      ],
      { encoding: 'utf8' },
    )
    t.is(r.status, 0, r.stderr)
    t.deepEqual(JSON.parse(r.stdout), {
      code: 'EINVAL',
      errno: -22,
      syscall: 'shmget',
      message:
        'EINVAL: invalid argument, shmget (options.size 70000 is above shmmax, the largest segment this system makes: 65536 bytes)',
    })
  },
)

test('a C program writes a pattern by key, Node reads it byte for byte and writes back, C verifies', async (t) => {
  const exe = compileC(
    'shm-pattern',
    `#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
int main(int argc, char **argv) {
  key_t key = (key_t)strtoul(argv[1], NULL, 0);
  size_t size = strtoul(argv[2], NULL, 0);
  int id = shmget(key, size, IPC_CREAT | IPC_EXCL | 0600);
  if (id < 0) { perror("shmget"); return 2; }
  unsigned char *p = shmat(id, NULL, 0);
  if (p == (void *)-1) { perror("shmat"); return 3; }
  for (size_t i = 0; i < size; i++) p[i] = (unsigned char)(i * 7 + 3);
  printf("ready %d\\n", id); fflush(stdout);
  char line[64];
  if (!fgets(line, sizeof line, stdin)) return 4;
  for (size_t i = 0; i < size; i++) {
    if (p[i] != (unsigned char)~(i * 7 + 3)) { printf("mismatch at %zu: %u\\n", i, p[i]); return 5; }
  }
  shmdt(p);
  printf("verified\\n");
  return 0;
}
`,
  )
  const key = freshKey('shm')
  t.teardown(() => {
    if (keyExists('shm', key)) SharedMemory.open(key).remove()
  })
  const size = 70_001
  const c = cChild(exe, [String(key), String(size)])
  const ready = await c.line(/^ready/)
  const shm = track(t, SharedMemory.open(key))
  t.is(Number(ready.split(' ')[1]), shm.id)
  t.is(shm.size, size)
  const got = shm.read(0, size)
  const expected = Buffer.alloc(size)
  for (let i = 0; i < size; i++) expected[i] = (i * 7 + 3) & 0xff
  t.true(got.equals(expected))
  for (let i = 0; i < size; i++) got[i] = ~got[i]! & 0xff
  shm.write(got, 0)
  c.write('go')
  const r = await c.done
  t.is(r.code, 0, r.stdout + r.stderr)
  t.regex(r.stdout, /verified/)
})

futexTest('futex interop with C: C waits and Node notifies, Node waits and C notifies', async (t) => {
  const exe = compileC(
    'shm-futex',
    `#include <linux/futex.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(int argc, char **argv) {
  int *w = shmat(atoi(argv[1]), NULL, 0);
  if (w == (void *)-1) { perror("shmat"); return 2; }
  printf("waiting\\n"); fflush(stdout);
  while (__atomic_load_n(&w[0], __ATOMIC_SEQ_CST) == 0) syscall(SYS_futex, &w[0], FUTEX_WAIT, 0, NULL, NULL, 0);
  printf("woken %d\\n", w[0]); fflush(stdout);
  __atomic_store_n(&w[1], 7, __ATOMIC_SEQ_CST);
  syscall(SYS_futex, &w[1], FUTEX_WAKE, 1, NULL, NULL, 0);
  shmdt(w);
  return 0;
}
`,
  )
  const shm = privateSegment(t, 64)
  const view = shm.attach()
  const words = new Int32Array(view.buffer)
  const c = cChild(exe, [String(shm.id)])
  await c.line(/^waiting/)
  const mine = shm.wait(4, 0, { timeoutMs: 20_000 })
  Atomics.store(words, 0, 42)
  shm.notify(0)
  t.is(await c.line(/^woken/), 'woken 42')
  t.true(['ok', 'not-equal'].includes(await mine))
  t.is(Atomics.load(words, 1), 7)
  t.is((await c.done).code, 0)
})

test('two Node processes each add 100,000 with Atomics.add through views: the sum is exact', async (t) => {
  const shm = privateSegment(t, 4096)
  const code = `
    const shm = ipckit.SharedMemory.fromId(Number(process.argv[2]))
    const view = shm.attach()
    const a = new Int32Array(view.buffer)
    Atomics.add(a, 1, 1)
    while (Atomics.load(a, 1) < 2) {} // start together
    for (let i = 0; i < 100000; i++) Atomics.add(a, 0, 1)
    view.detach()
    shm.close()
  `
  await Promise.all([runNode(code, [String(shm.id)]), runNode(code, [String(shm.id)])])
  t.is(shm.read(0, new Int32Array(1))[0], 200_000)
  t.is(shm.stat().attachments, 1, 'only the copy API attachment of this process remains')
})

test('a view sees writes of the copy API and of other processes at once, without copies', async (t) => {
  const shm = privateSegment(t, 128)
  using view = shm.attach()
  const bytes = new Uint8Array(view.buffer)
  t.is(view.buffer.byteLength, 128)
  t.is(view.byteLength, 128)
  t.false(view.readonly)
  shm.write('abc', 5)
  t.is(Buffer.from(bytes.subarray(5, 8)).toString(), 'abc')
  bytes[0] = 0x7f
  t.deepEqual(shm.read(0, 1), Buffer.from([0x7f]))
  view.write('z', 1)
  t.is(bytes[1], 'z'.charCodeAt(0))
  t.deepEqual(view.read(0, 2), Buffer.from([0x7f, 0x7a]))
  await runNode(`ipckit.SharedMemory.fromId(${shm.id}).write('from child', 20)`)
  t.is(Buffer.from(bytes.subarray(20, 30)).toString(), 'from child')
  t.is(view.buffer, view.buffer, 'one ArrayBuffer per attachment')
})

test('after view.detach() every typed array over it is empty and reads undefined; memory is unmapped', async (t) => {
  const shm = privateSegment(t, 4096)
  const view = shm.attach()
  const i32 = new Int32Array(view.buffer)
  const u8 = new Uint8Array(view.buffer, 100, 10)
  const dv = new DataView(view.buffer)
  Atomics.store(i32, 0, 5)
  t.is(nattch(shm.id), 1)
  view.detach()
  t.true(view.detached)
  t.is(view.byteLength, 0)
  t.is(i32.length, 0)
  t.is(u8.length, 0)
  t.is(i32[0] as number | undefined, undefined)
  t.is(u8[3] as number | undefined, undefined)
  t.throws(() => dv.getInt32(0))
  t.throws(() => Atomics.load(i32, 0))
  i32[0] = 1 // ignored, no crash
  t.throws(() => view.buffer, { code: 'ERR_INVALID_STATE' })
  t.throws(() => view.read(0, 1), { code: 'ERR_INVALID_STATE' })
  view.detach() // idempotent
  await eventually(() => nattch(shm.id) === 0, 'shmdt after detach')
  t.is(shm.read(0, new Int32Array(1))[0], 5, 'the data stays in the segment')
})

test('close() detaches every view; remove() plus GC leaves no segment behind', async (t) => {
  const shm = SharedMemory.create({ size: 8192 })
  t.teardown(() => {
    try {
      SharedMemory.fromId(shm.id).remove()
    } catch {}
  })
  const id = shm.id
  const a = shm.attach()
  const arrays = [new Float64Array(a.buffer), new Uint8Array(shm.attach().buffer)]
  using _ro = shm.attach({ readonly: true })
  shm.write('x', 0)
  t.is(nattch(id), 4)
  shm.remove()
  t.true(shm.stat().removed)
  t.is(shm.stat().key, 0)
  arrays[1]![0] = 1 // views keep working after IPC_RMID, as on Linux
  t.deepEqual(shm.read(0, 1), Buffer.from([1]))
  shm.close()
  t.true(a.detached)
  for (const arr of arrays) {
    t.is(arr.length, 0)
    t.is(arr[0] as number | undefined, undefined)
  }
  t.throws(() => shm.read(0, 1), { code: 'ERR_INVALID_STATE' })
  t.throws(() => shm.attach(), { code: 'ERR_INVALID_STATE' })
  t.throws(() => shm.stat(), { code: 'ERR_INVALID_STATE' })
  shm.close()
  await eventually(() => !sysvIds('shm').has(id), 'the removed segment to go away')
  t.is(nattch(id), undefined)
})

test('a view that is only garbage-collected detaches in its finalizer', async (t) => {
  const shm = privateSegment(t, 4096)
  ;(() => {
    const view = shm.attach()
    new Int32Array(view.buffer)[0] = 9
  })()
  t.is(nattch(shm.id), 1)
  await eventually(() => nattch(shm.id) === 0, 'the collected view to detach')
  // A buffer that outlives its view keeps the mapping, and close() still neuters it.
  const kept = (() => new Int32Array(shm.attach().buffer))()
  await sleep(20)
  gc()
  await sleep(20)
  t.is(kept[0], 9)
  t.is(nattch(shm.id), 1)
  shm.close()
  t.is(kept.length, 0)
  await eventually(() => nattch(shm.id) === 0, 'shmdt after close')
})

linuxOnly(test, "checks the mapping's protection in /proc/self/maps")(
  'readonly attach: a read-only mapping, copy reads work, writes throw, no zero-copy buffer',
  (t) => {
    const shm = privateSegment(t, 4096)
    shm.write('data', 0)
    using ro = shm.attach({ readonly: true })
    t.true(ro.readonly)
    t.is(ro.read(0, 4).toString(), 'data')
    t.like(
      t.throws(() => ro.write('x', 0), { instanceOf: IpcError }),
      { code: 'EACCES' },
    )
    t.is(shm.read(0, 4).toString(), 'data')
    t.throws(() => ro.buffer, { code: 'ERR_INVALID_STATE' })
    // The kernel mapping itself is read-only: /proc/self/maps shows it as r--s.
    const maps = readFileSync('/proc/self/maps', 'utf8')
      .split('\n')
      .filter((l) => l.includes('SYSV') && l.trim().split(/\s+/)[4] === String(shm.id))
    t.true(
      maps.some((l) => l.split(/\s+/)[1] === 'r--s'),
      maps.join('\n'),
    )
  },
)

test('unprivileged child: EACCES without permission; read-only access reads but cannot write', async (t) => {
  const shm = privateSegment(t, 64)
  shm.write('secret', 0)
  const probe = (what: string) =>
    runNode(
      `const shm = () => ipckit.SharedMemory.fromId(${shm.id});
       const out = {};
       try { ${what} } catch (e) { out.code = e.code; out.syscall = e.syscall }
       console.log(JSON.stringify(out))`,
      [],
      { uid: NOBODY.uid, gid: NOBODY.gid },
    ).then((r) => JSON.parse(r.stdout.trim()))
  t.deepEqual(await probe('shm()'), { code: 'EACCES', syscall: 'shmctl' })
  const key = freshKey('shm')
  const keyed = track(t, SharedMemory.open(key, { size: 16, exclusive: true }))
  const byKey = (what: string) => probe(what.replace('KEY', String(key)))
  t.deepEqual(await byKey('ipckit.SharedMemory.open(KEY)'), { code: 'EACCES', syscall: 'shmctl' })
  t.deepEqual(await byKey('ipckit.SharedMemory.open(KEY, { create: true })'), { code: 'EACCES', syscall: 'shmget' })
  keyed.update({ mode: 0o644 })
  t.deepEqual(await byKey('out.size = ipckit.SharedMemory.open(KEY).size'), { size: 16 })
  shm.update({ mode: 0o604 })
  t.deepEqual(await probe(`out.text = shm().read(0, 6).toString()`), { text: 'secret' })
  t.deepEqual(await probe(`shm().write('x', 0)`), { code: 'EACCES', syscall: 'shmat' })
  t.deepEqual(await probe(`shm().attach()`), { code: 'EACCES', syscall: 'shmat' })
  t.deepEqual(await probe(`out.text = shm().attach({ readonly: true }).read(0, 6).toString()`), { text: 'secret' })
  t.is(shm.read(0, 6).toString(), 'secret')
})

linuxOnly(test, 'reads /proc/sys/kernel/shmmax')('kernel errors: EINVAL for sizes, EEXIST, ENOENT', (t) => {
  const key = freshKey('shm')
  t.teardown(() => {
    if (keyExists('shm', key)) SharedMemory.open(key).remove()
  })
  t.like(
    t.throws(() => SharedMemory.create({ size: 0 }), { instanceOf: IpcError }),
    {
      code: 'EINVAL',
      syscall: 'shmget',
      errno: -22,
    },
  )
  t.like(
    t.throws(() => SharedMemory.open(key), { instanceOf: IpcError }),
    { code: 'ENOENT', syscall: 'shmget' },
  )
  const shm = track(t, SharedMemory.open(key, { size: 100, exclusive: true }))
  t.like(
    t.throws(() => SharedMemory.open(key, { size: 100, exclusive: true })),
    { code: 'EEXIST', syscall: 'shmget' },
  )
  t.like(
    t.throws(() => SharedMemory.open(key, { size: 101 })),
    { code: 'EINVAL', syscall: 'shmget' },
  )
  const shmmax = Number(readFileSync('/proc/sys/kernel/shmmax', 'utf8'))
  if (shmmax < Number.MAX_SAFE_INTEGER) {
    t.like(
      t.throws(() => SharedMemory.create({ size: shmmax + 1 })),
      { code: 'EINVAL' },
    )
  }
  shm.remove()
  t.like(
    t.throws(() => SharedMemory.fromId(shm.id), { instanceOf: IpcError }),
    { syscall: 'shmctl' },
  )
  t.false(keyExists('shm', key))
})

test('stat, update and remove', (t) => {
  const made = Date.now()
  const shm = privateSegment(t, 1000)
  const madeEnd = Date.now()
  const before = shm.stat()
  t.like(before, { key: 0, size: 1000, attachments: 0, creatorPid: process.pid, mode: 0o600, removed: false, uid: 0 })
  t.is(before.attachTime, null)
  t.is(before.detachTime, null)
  assertTimeBetween(t, before.changeTime, made, madeEnd, 'changeTime')
  const attaching = Date.now()
  shm.read(0, 1)
  const attached = Date.now()
  const after = shm.stat()
  t.is(after.attachments, 1)
  t.is(after.lastPid, process.pid)
  assertTimeBetween(t, after.attachTime, attaching, attached, 'attachTime')
  t.is(after.detachTime, null)
  shm.update({ mode: 0o640, gid: 100 })
  t.like(shm.stat(), { mode: 0o640, gid: 100, uid: 0 })
  t.throws(() => shm.update({ mode: 0o1777 }), { code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => shm.update(null as never), { code: 'ERR_INVALID_ARG_TYPE' })
  shm.remove()
  t.true(shm.stat().removed)
  t.deepEqual(shm.read(0, 1), Buffer.alloc(1), 'the copy API keeps working after IPC_RMID')
})

test('Symbol.dispose closes the segment handle and detaches the view', (t) => {
  let id = 0
  let words: Int32Array
  {
    using shm = SharedMemory.create({ size: 64 })
    id = shm.id
    t.teardown(() => {
      try {
        SharedMemory.fromId(id).remove()
      } catch {}
    })
    using view = shm.attach()
    words = new Int32Array(view.buffer)
    t.is(words.length, 16)
  }
  t.is(words.length, 0)
})

futexTest('wait: not-equal at once, timed-out after the timeout, sync forms, validation', async (t) => {
  const shm = privateSegment(t, 64)
  shm.write(new Int32Array([-1]), 8)
  t.is(await shm.wait(8, 0), 'not-equal')
  t.is(await shm.wait(8, 0, { timeoutMs: 0 }), 'not-equal')
  t.is(await shm.wait(8, -1, { timeoutMs: 0 }), 'timed-out')
  t.is(await shm.wait(8, 0xffff_ffff, { timeoutMs: 0 }), 'timed-out', 'int32 and uint32 spellings agree')
  const { ms, value } = await timed(() => shm.wait(0, 0, { timeoutMs: 60 }))
  t.is(value, 'timed-out')
  t.true(ms >= 55, `${ms}`)
  t.is(shm.waitSync(8, 1), 'not-equal')
  t.is(shm.waitSync(8, 0, { timeoutMs: 1e300 }), 'not-equal', 'an enormous timeout is no crash')
  t.is(shm.waitSync(0, 0, { timeoutMs: 10 }), 'timed-out')
  t.is(shm.notify(0), 0)
  const range = { code: 'ERR_OUT_OF_RANGE' }
  await t.throwsAsync(shm.wait(2, 0), range)
  await t.throwsAsync(shm.wait(64, 0), range)
  await t.throwsAsync(shm.wait(0, 0, { timeoutMs: -1 }), range)
  await t.throwsAsync(shm.wait(0, 0, { timeoutMs: NaN }), range)
  await t.throwsAsync(shm.wait(0, 2 ** 32), range)
  await t.throwsAsync(shm.wait(0, 0, { signal: {} as never }), { code: 'ERR_INVALID_ARG_TYPE' })
  await t.throwsAsync(shm.wait('0' as never, 0), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => shm.waitSync(61, 0), range)
  t.throws(() => shm.notify(6), range)
  t.throws(() => shm.notify(0, -1), range)
})

futexTest('wait/notify between two processes, both ways', async (t) => {
  const shm = privateSegment(t, 64)
  const child = nodeChild(
    `const shm = ipckit.SharedMemory.fromId(Number(process.argv[2]));
     (async () => {
       console.log('waiting');
       console.log('result ' + await shm.wait(0, 0, { timeoutMs: 20000 }));
       // then wake the parent, waiting on word 4
       const deadline = Date.now() + 20000;
       while (shm.notify(4) === 0 && Date.now() < deadline) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
       shm.close();
     })()`,
    [String(shm.id)],
  )
  await child.line(/^waiting/)
  const parentWait = shm.wait(4, 0, { timeoutMs: 20_000 })
  // Wake without changing the word, so only a real futex wake can end the child's wait.
  const deadline = Date.now() + 20_000
  while (shm.notify(0, 1) === 0) {
    if (Date.now() > deadline) t.fail('child never waited')
    await sleep(2)
  }
  t.is(await child.line(/^result/), 'result ok')
  t.is(await parentWait, 'ok')
  t.is((await child.done).code, 0)
})

linuxOnly(test.serial, 'shm.wait/notify need a futex (ENOSYS on macOS, tested instead)')(
  'abort cancels a wait promptly and leaves no waiter behind',
  async (t) => {
    const shm = privateSegment(t, 64)
    const ac = new AbortController()
    const p = shm.wait(0, 0, { signal: ac.signal })
    await sleep(30)
    // Promptly: the wait would never end otherwise; only a deadline is checked (bench/ measures speed).
    ac.abort('stop')
    const err = await t.throwsAsync(within(p, 'the aborted wait rejects'), { instanceOf: AbortError })
    t.is(err?.cause, 'stop')
    t.is(shm.notify(0), 0, 'the cancelled wait left the futex')
    t.is(pendingWaits(), 0)
    const pre = new AbortController()
    pre.abort()
    await t.throwsAsync(shm.wait(0, 0, { signal: pre.signal }), { instanceOf: AbortError })
  },
)

futexTest(
  'close() cancels pending waits, and a pending wait does not keep the process alive after close',
  async (t) => {
    const shm = SharedMemory.create({ size: 64 })
    t.teardown(() => {
      try {
        SharedMemory.fromId(shm.id).remove()
      } catch {}
    })
    const p = shm.wait(0, 0)
    await sleep(10)
    shm.close()
    const err = await t.throwsAsync(p, { instanceOf: AbortError })
    t.is((err?.cause as { code?: string } | undefined)?.code, 'ERR_INVALID_STATE')
    await t.throwsAsync(shm.wait(0, 0), { code: 'ERR_INVALID_STATE' })
    const r = await runNode(
      `const shm = ipckit.SharedMemory.fromId(Number(process.argv[2]));
     shm.wait(0, 0).catch((e) => console.log('rejected ' + e.name));
     setTimeout(() => shm.close(), 20);`,
      [String(shm.id)],
      { timeoutMs: 20_000 },
    )
    t.is(r.stdout.trim(), 'rejected AbortError')
  },
)

futexTest('forced no-zero-copy path: attach() refuses clearly, the copy API and waits still work', async (t) => {
  const shm = privateSegment(t, 64)
  const r = await runNode(
    `const shm = ipckit.SharedMemory.fromId(Number(process.argv[2]));
     console.log(ipckit.zeroCopySupported);
     try { shm.attach() } catch (e) { console.log(e.code) }
     shm.write('copied', 0);
     console.log(shm.read(0, 6).toString());
     shm.wait(8, 1).then((r) => { console.log(r); shm.close() });`,
    [String(shm.id)],
    { env: { ...process.env, IPCKIT_NO_ZERO_COPY: '1' } },
  )
  t.deepEqual(r.stdout.trim().split('\n'), ['false', 'ERR_FEATURE_UNAVAILABLE_ON_PLATFORM', 'copied', 'not-equal'])
  t.is(shm.read(0, 6).toString(), 'copied')
})

futexTest('a worker thread that exits with views and a pending wait unmaps them all', async (t) => {
  const { Worker } = await import('node:worker_threads')
  const shm = privateSegment(t, 4096)
  const worker = new Worker(
    `require(${JSON.stringify(require.resolve('tsx/cjs'))});
     const { SharedMemory } = require(${JSON.stringify(require.resolve('../ts/index'))});
     const { parentPort, workerData } = require('node:worker_threads');
     const shm = SharedMemory.fromId(workerData);
     globalThis.words = new Int32Array(shm.attach().buffer);
     Atomics.add(globalThis.words, 1, 1);
     shm.wait(8, 0).catch(() => {});
     parentPort.postMessage('attached');`,
    { eval: true, workerData: shm.id },
  )
  await new Promise((resolve) => worker.once('message', resolve))
  t.is(nattch(shm.id), 2, 'the view and the attachment of the wait')
  await worker.terminate()
  await eventually(() => nattch(shm.id) === 0, 'the worker to detach')
  t.is(shm.read(4, new Int32Array(1))[0], 1)
})

futexTest('remove() of a segment nobody attached destroys it at once; an attached handle keeps working', (t) => {
  const unused = privateSegment(t, 64)
  unused.remove()
  t.is(nattch(unused.id), undefined, 'gone at once')
  t.like(
    t.throws(() => unused.read(0, 1), { instanceOf: IpcError }),
    { code: 'EINVAL', syscall: 'shmat' },
  )
  const used = privateSegment(t, 64)
  used.write('x', 0) // attaches this handle
  used.remove()
  t.is(nattch(used.id), 1)
  t.deepEqual(used.read(0, 1), Buffer.from('x'))
  t.is(used.notify(0), 0)
})

/** SYSV shared-memory mappings of this process, from /proc/self/maps. */
function sysvMappings(): number {
  return readFileSync('/proc/self/maps', 'utf8')
    .split('\n')
    .filter((l) => / \/SYSV[0-9a-f]{8} /.test(l)).length
}

// Serial: it counts this process's mappings.
linuxOnly(test.serial, 'counts SYSV mappings in /proc/self/maps against /proc/sys/kernel/shmmni')(
  'detach() and close() unmap at once: a loop that never yields makes more segments than shmmni allows, and none stays mapped',
  (t) => {
    const shmmni = Number(readFileSync('/proc/sys/kernel/shmmni', 'utf8'))
    const before = sysvMappings()
    // Each segment is removed while attached, so it lives exactly as long as its mapping: had
    // detach() left the unmap to a finalizer on a later turn of the event loop, the removed
    // segments would pile up and shmget would fail with ENOSPC past shmmni.
    for (let i = 0; i < shmmni + 100; i++) {
      const shm = SharedMemory.create({ size: 4096 })
      const view = shm.attach()
      new Uint8Array(view.buffer)[0] = i & 0xff
      shm.write(Buffer.from('x'), 1)
      shm.remove()
      view.detach()
      shm.close()
    }
    t.is(sysvMappings(), before)
  },
)

notLinux(test)(
  'without a futex, wait/waitSync/notify fail with IpcError ENOSYS (futex) and change nothing',
  async (t) => {
    const shm = privateSegment(t, 64)
    shm.write(Buffer.from([7, 0, 0, 0]), 0)
    const enosys = { code: 'ENOSYS', syscall: 'futex' }
    t.like(await t.throwsAsync(shm.wait(0, 7), { instanceOf: IpcError }), enosys)
    t.like(await t.throwsAsync(shm.wait(0, 7, { timeoutMs: 50 }), { instanceOf: IpcError }), enosys)
    t.like(
      t.throws(() => shm.waitSync(0, 7, { timeoutMs: 50 }), { instanceOf: IpcError }),
      enosys,
    )
    t.like(
      t.throws(() => shm.notify(0), { instanceOf: IpcError }),
      enosys,
    )
    t.is(await shm.wait(0, 8), 'not-equal', 'a value that differs is answered before any futex call')
    t.deepEqual([...shm.read(0, 4)], [7, 0, 0, 0])
    t.is(pendingWaits(), 0)
  },
)
