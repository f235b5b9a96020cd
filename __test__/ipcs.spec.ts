import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'

import anyTest from 'ava'

import { IpcError, MessageQueue, ipcrm, ipcs, limits } from '../ts/index'
import type { IpcsEntry } from '../ts/index'
import {
  NOBODY,
  assertTimeBetween,
  freshKey,
  keyExists,
  linuxOnly,
  notLinux,
  removeBuilds,
  runNode,
  waitUntilBlocked,
} from './helpers'
import { holdObject, makeObject, track } from './helpers/sysv-objects'

/** ipcs() reads /proc/sysvipc and limits() /proc/sys/kernel: off Linux both throw ENOSYS (tested below). */
const test = linuxOnly(anyTest, 'ipcs() and limits() read /proc, which macOS lacks (they throw ENOSYS there)')

test.after.always(() => removeBuilds())

/** A uid no real user has, unique to this test process, to own objects for `all` tests. */
const OWNER = 40000 + (process.pid % 20000)

/** The name of group `gid`, as the system's group database has it (`getent group`). */
function groupName(gid: number): string {
  const [name] = execFileSync('getent', ['group', String(gid)], { encoding: 'utf8' }).split(':')
  if (!name) throw new Error(`getent group ${gid} printed no name`)
  return name
}

const find = (type: string, id: number) => ipcs().find((e) => e.type === type && e.id === id)

test('ipcs lists a message queue made in C with its key, mode, owner and figures', async (t) => {
  const q = await makeObject(t, 'msg', { mode: 0o640, n: 3 })
  const e = find('msg', q.id)
  if (e?.type !== 'msg') return t.fail('queue not listed')
  t.is(e.key, q.key)
  t.is(e.mode, 0o640)
  t.deepEqual(
    [e.uid, e.gid, e.cuid, e.cgid],
    [process.getuid!(), process.getgid!(), process.getuid!(), process.getgid!()],
  )
  t.is(e.owner, 'root')
  t.is(e.creator, 'root')
  t.is(e.ownerGroup, groupName(process.getgid!()))
  t.is(e.messages, 3)
  t.is(e.bytes, 30)
  t.is(e.lastSendPid, q.pid, 'the C program sent them')
  t.is(e.lastReceivePid, 0)
  assertTimeBetween(t, e.lastSendTime, q.from, q.to, 'lastSendTime')
  t.is(e.lastReceiveTime, null)
  assertTimeBetween(t, e.changeTime, q.from, q.to, 'changeTime')
})

test('ipcs lists a semaphore set and a shared memory segment with their figures', async (t) => {
  const sem = await makeObject(t, 'sem', { mode: 0o604, n: 5 })
  const seg = await holdObject(t, 'shm', 'hold', { mode: 0o660, n: 12345 })
  const s = find('sem', sem.id)
  if (s?.type !== 'sem') return t.fail('semaphore set not listed')
  t.is(s.key, sem.key)
  t.is(s.mode, 0o604)
  t.is(s.count, 5)
  t.is(s.lastOpTime, null)
  assertTimeBetween(t, s.changeTime, sem.from, sem.to, "the set's changeTime")
  const m = find('shm', seg.id)
  if (m?.type !== 'shm') return t.fail('segment not listed')
  t.is(m.key, seg.key)
  t.is(m.mode, 0o660)
  t.is(m.size, 12345)
  t.is(m.attachments, 1)
  t.is(m.creatorPid, seg.child.pid)
  t.is(m.lastPid, seg.child.pid)
  assertTimeBetween(t, m.attachTime, seg.from, seg.to, 'attachTime')
  t.is(m.detachTime, null)
  assertTimeBetween(t, m.changeTime, seg.from, seg.to, "the segment's changeTime")
  t.false(m.destroyed)
  t.false(m.locked)

  // Marked for removal while attached: still listed, as `dest`, until the last detach.
  ipcrm({ type: 'shm', id: seg.id })
  const dest = find('shm', seg.id)
  t.true(dest?.type === 'shm' && dest.destroyed)
  seg.child.write('')
  await seg.child.done
  t.is(find('shm', seg.id), undefined)
})

test('ipcs({ type }) lists only that type, and keys are unsigned', async (t) => {
  const q = await makeObject(t, 'msg', { key: (0xfe00_0000 | (process.pid & 0xffff)) >>> 0 })
  const msgs = ipcs({ type: 'msg' })
  t.true(msgs.every((e) => e.type === 'msg'))
  t.is(msgs.find((e) => e.id === q.id)?.key, q.key)
  t.true(q.key > 0x7fff_ffff)
  t.true(ipcs({ type: 'sem' }).every((e) => e.type === 'sem'))
  t.true(ipcs({ type: 'shm' }).every((e) => e.type === 'shm'))
})

test('objects the caller may not read are still listed', async (t) => {
  const q = await makeObject(t, 'msg', { mode: 0o600 })
  const r = await runNode(
    `const e = ipckit.ipcs({ type: 'msg' }).find((e) => e.id === ${q.id});
     let stat = 'readable'; try { ipckit.MessageQueue.fromId(${q.id}) } catch (err) { stat = err.code }
     console.log(JSON.stringify({ key: e && e.key, stat }))`,
    [],
    { uid: NOBODY.uid, gid: NOBODY.gid },
  )
  t.deepEqual(JSON.parse(r.stdout), { key: q.key, stat: 'EACCES' })
})

test('ipcrm by id and by key, for every type', async (t) => {
  for (const type of ['msg', 'sem', 'shm'] as const) {
    const a = await makeObject(t, type)
    const b = await makeObject(t, type)
    t.is(ipcrm({ type, id: a.id }), a.id)
    t.false(keyExists(type, a.key))
    t.is(ipcrm({ type, key: b.key }), b.id)
    t.false(keyExists(type, b.key))
  }
})

test('ipcrm by id re-checks the key when given one: a reused id is left alone (EIDRM)', async (t) => {
  const q = await makeObject(t, 'sem')
  const err = t.throws(() => ipcrm({ type: 'sem', id: q.id, key: q.key ^ 1 }), { instanceOf: IpcError })
  t.is(err?.code, 'EIDRM')
  t.is(err?.syscall, 'semctl')
  t.true(keyExists('sem', q.key))
  t.is(ipcrm({ type: 'sem', id: q.id, key: q.key }), q.id)
  t.false(keyExists('sem', q.key))
})

test('ipcrm reports EINVAL for an unknown id, ENOENT for an unknown key, EPERM for another owner', async (t) => {
  const q = await makeObject(t, 'shm', { mode: 0o644 })
  ipcrm({ type: 'shm', id: q.id })
  const gone = t.throws(() => ipcrm({ type: 'shm', id: q.id }), { instanceOf: IpcError })
  t.like(gone, { code: 'EINVAL', syscall: 'shmctl', errno: -22 })
  const noKey = t.throws(() => ipcrm({ type: 'msg', key: freshKey('msg') }), { instanceOf: IpcError })
  t.like(noKey, { code: 'ENOENT', syscall: 'msgget' })

  const mine = await makeObject(t, 'msg', { mode: 0o666 })
  const unreadable = await makeObject(t, 'sem', { mode: 0o600 })
  // With a key to re-check, an object the caller may not read is looked up in /proc/sysvipc.
  const r = await runNode(
    `const out = []
     for (const target of [
       { type: 'msg', id: ${mine.id} },
       { type: 'msg', key: ${mine.key} },
       { type: 'sem', id: ${unreadable.id}, key: ${unreadable.key} },
       { type: 'sem', id: ${unreadable.id}, key: ${unreadable.key ^ 1} },
     ]) {
       try { ipckit.ipcrm(target); out.push('removed') } catch (err) { out.push(err.code + ' ' + err.syscall) }
     }
     console.log(JSON.stringify(out))`,
    [],
    { uid: NOBODY.uid, gid: NOBODY.gid },
  )
  t.deepEqual(JSON.parse(r.stdout), ['EPERM msgctl', 'EPERM msgctl', 'EPERM semctl', 'EIDRM semctl'])
  t.true(keyExists('msg', mine.key))
  t.true(keyExists('sem', unreadable.key))
})

test('removing a queue wakes blocked receivers, here and in a C process, with EIDRM', async (t) => {
  const c = await holdObject(t, 'msg', 'recv')
  const q = MessageQueue.fromId(c.id)
  t.teardown(() => q.close())
  const pending = q.receive({ type: 7 })
  await waitUntilBlocked(process.pid, /msgrcv/)
  await waitUntilBlocked(c.child.pid, /msgrcv/)
  ipcrm({ type: 'msg', key: c.key })
  const err = await t.throwsAsync(pending, { instanceOf: IpcError })
  t.is(err?.code, 'EIDRM')
  t.is(await c.child.line(/^E/), 'EIDRM')
})

test('ipcrm({ all, owner }) removes every object of that owner, and only those, reporting each', async (t) => {
  const made = [
    await makeObject(t, 'msg', { uid: OWNER }),
    await makeObject(t, 'sem', { uid: OWNER }),
    await makeObject(t, 'shm', { uid: OWNER }),
    await makeObject(t, 'msg', { uid: OWNER }),
  ]
  const other = await makeObject(t, 'msg')
  const ids = (list: IpcsEntry[]) => list.map((e) => `${e.type}:${e.id}`).sort()

  const semOnly = ipcrm({ all: true, type: 'sem', owner: OWNER })
  t.deepEqual(ids(semOnly.removed), [`sem:${made[1]!.id}`])
  t.deepEqual(semOnly.failed, [])

  // Another user may not remove them: every object is reported, none removed.
  const r = await runNode(
    `const rep = ipckit.ipcrm({ all: true, owner: ${OWNER} });
     console.log(JSON.stringify({ removed: rep.removed.length, failed: rep.failed.map((f) => f.entry.type + ':' + f.entry.id + ' ' + f.error.code) }))`,
    [],
    { uid: NOBODY.uid, gid: NOBODY.gid },
  )
  const denied = JSON.parse(r.stdout) as { removed: number; failed: string[] }
  t.is(denied.removed, 0)
  t.deepEqual(denied.failed.sort(), [made[0]!, made[2]!, made[3]!].map((m) => `${m.type}:${m.id} EPERM`).sort())

  const rest = ipcrm({ all: true, owner: OWNER })
  t.deepEqual(ids(rest.removed), [made[0]!, made[2]!, made[3]!].map((m) => `${m.type}:${m.id}`).sort())
  t.deepEqual(rest.failed, [])
  t.true(keyExists('msg', other.key))
  t.deepEqual(ipcrm({ all: true, owner: OWNER }), { removed: [], failed: [] })
})

test('ipcrm({ all, owner }) takes a user name', async (t) => {
  // 'games' (uid 5): a system user no test runs as, so no one else's objects are touched.
  const uid = Number(execFileSync('id', ['-u', 'games'], { encoding: 'utf8' }).trim())
  const q = await makeObject(t, 'shm', { uid })
  t.is(find('shm', q.id)?.owner, 'games')
  const report = ipcrm({ all: true, type: 'shm', owner: 'games' })
  t.deepEqual(
    report.removed.map((e) => e.id),
    [q.id],
  )
  t.false(keyExists('shm', q.key))
})

test('limits() reads /proc/sys/kernel at run time; bigint: true is exact', (t) => {
  const read = (name: string) => readFileSync(`/proc/sys/kernel/${name}`, 'utf8').trim().split(/\s+/)
  const l = limits()
  t.is(l.msgmax, Number(read('msgmax')[0]))
  t.is(l.msgmnb, Number(read('msgmnb')[0]))
  t.is(l.msgmni, Number(read('msgmni')[0]))
  t.is(l.shmmni, Number(read('shmmni')[0]))
  const [semmsl, semmns, semopm, semmni] = read('sem').map(Number)
  t.deepEqual([l.semmsl, l.semmns, l.semopm, l.semmni], [semmsl, semmns, semopm, semmni])
  t.is(l.semvmx, 32767)
  t.is(l.shmmin, 1)
  t.is(l.pageSize, Number(execFileSync('getconf', ['PAGESIZE'], { encoding: 'utf8' })))
  const exact = limits({ bigint: true })
  t.is(exact.shmmax, BigInt(read('shmmax')[0]!))
  t.is(exact.shmall, BigInt(read('shmall')[0]!))
  t.is(typeof exact.msgmax, 'bigint')
})

anyTest('arguments are checked before any system call', (t) => {
  t.like(
    t.throws(() => ipcs({ type: 'queue' as never })),
    { code: 'ERR_INVALID_ARG_VALUE' },
  )
  t.like(
    t.throws(() => ipcs('msg' as never)),
    { code: 'ERR_INVALID_ARG_TYPE' },
  )
  t.like(
    t.throws(() => ipcrm(undefined as never)),
    { code: 'ERR_INVALID_ARG_TYPE' },
  )
  t.like(
    t.throws(() => ipcrm({ type: 'msg' } as never)),
    { code: 'ERR_INVALID_ARG_VALUE' },
  )
  t.like(
    t.throws(() => ipcrm({ id: 1 } as never)),
    { code: 'ERR_INVALID_ARG_TYPE' },
  )
  t.like(
    t.throws(() => ipcrm({ type: 'msg', id: -1 })),
    { code: 'ERR_OUT_OF_RANGE' },
  )
  t.like(
    t.throws(() => ipcrm({ type: 'msg', id: 1.5 })),
    { code: 'ERR_OUT_OF_RANGE' },
  )
  t.like(
    t.throws(() => ipcrm({ type: 'msg', id: '1' as never })),
    { code: 'ERR_INVALID_ARG_TYPE' },
  )
  t.like(
    t.throws(() => ipcrm({ type: 'msg', key: 2 ** 32 })),
    { code: 'ERR_OUT_OF_RANGE' },
  )
  t.like(
    t.throws(() => ipcrm({ all: 1 } as never)),
    { code: 'ERR_INVALID_ARG_VALUE' },
  )
  t.like(
    t.throws(() => ipcrm({ all: true, id: 3 } as never)),
    { code: 'ERR_INVALID_ARG_VALUE' },
  )
  t.like(
    t.throws(() => ipcrm({ all: true, owner: -1 })),
    { code: 'ERR_OUT_OF_RANGE' },
  )
  t.like(
    t.throws(() => ipcrm({ all: true, owner: 'no-such-user-ipckit' })),
    { code: 'ERR_INVALID_ARG_VALUE' },
  )
  t.like(
    t.throws(() => limits({ bigint: 1 } as never)),
    { code: 'ERR_INVALID_ARG_TYPE' },
  )
  // IPC_PRIVATE names no object.
  t.like(
    t.throws(() => ipcrm({ type: 'msg', key: 0 })),
    { code: 'EINVAL', syscall: 'msgget' },
  )
})

test('without /proc/sysvipc, ipcs() fails with a clear ENOSYS error and nothing crashes', async (t) => {
  // A private mount namespace in which /proc/sysvipc is an empty folder.
  const code = `
    let out = {}
    try { ipckit.ipcs() } catch (err) { out = { name: err.name, code: err.code, syscall: err.syscall } }
    out.msgmax = ipckit.limits().msgmax
    console.log(JSON.stringify(out))`
  const empty = (await import('./helpers')).tempDir()
  t.teardown(() => empty.remove())
  let r
  try {
    r = execFileSync(
      'unshare',
      [
        '--mount',
        '--propagation',
        'private',
        'sh',
        '-c',
        `mount --bind "$0" /proc/sysvipc && exec "$1" --require "$2" -e "$3"`,
        empty.path,
        process.execPath,
        require.resolve('tsx/cjs'),
        `const ipckit = require(${JSON.stringify(require.resolve('../ts/index.ts'))});${code}`,
      ],
      { encoding: 'utf8' },
    )
  } catch (err) {
    return t.fail(`could not run in a mount namespace: ${String(err)}`)
  }
  // limits() reads /proc/sys/kernel, which is still there.
  t.deepEqual(JSON.parse(r), {
    name: 'IpcError',
    code: 'ENOSYS',
    syscall: 'ipcs',
    msgmax: Number(readFileSync('/proc/sys/kernel/msgmax', 'utf8')),
  })
})

test('a private object is listed with key 0 and removable by id', (t) => {
  const q = MessageQueue.create()
  track(t, { type: 'msg', key: 0, id: q.id })
  t.is(find('msg', q.id)?.key, 0)
  t.is(ipcrm({ type: 'msg', id: q.id, key: 0 }), q.id)
  t.is(find('msg', q.id), undefined)
})

notLinux(anyTest)('without /proc, ipcs() and limits() throw IpcError ENOSYS', (t) => {
  t.like(
    t.throws(() => ipcs(), { instanceOf: IpcError }),
    { code: 'ENOSYS', syscall: 'ipcs' },
  )
  t.like(
    t.throws(() => ipcs({ type: 'sem' }), { instanceOf: IpcError }),
    { code: 'ENOSYS', syscall: 'ipcs' },
  )
  t.like(
    t.throws(() => limits(), { instanceOf: IpcError }),
    { code: 'ENOSYS' },
  )
})
