import { closeSync, fstatSync, ftruncateSync, openSync, readFileSync, readlinkSync, writeSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

import anyTest, { type ExecutionContext } from 'ava'

import { IpcError, Memfd, PosixSharedMemory, SNAPSHOT_SEALS, socketpair } from '../ts/index'
import {
  cChild,
  compileC,
  fdsLeftAfterGc,
  fdsLeftOpen,
  fdSnapshot,
  linuxOnly,
  nodeChild,
  notLinux,
  posixName,
  removeBuilds,
  runNode,
  runNodeUnder,
} from './helpers'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

/** memfd is Linux's: on macOS every test but the ENOSYS one is skipped. */
const test = linuxOnly(anyTest, 'memfd_create is Linux-only (ENOSYS on macOS, tested instead)')

anyTest.after.always(removeBuilds)

const track = (t: ExecutionContext, m: Memfd): Memfd => {
  t.teardown(() => m.close())
  return m
}

/** A 31-based checksum of `bytes`, as the C receiver computes it (unsigned 32-bit). */
function checksum(bytes: Uint8Array): number {
  let sum = 0
  for (const b of bytes) sum = (Math.imul(sum, 31) + b) >>> 0
  return sum
}

test('create: zeros of the size asked, a /memfd: name, close-on-exec, no seals yet', (t) => {
  const m = track(t, Memfd.create({ size: 10_000, name: 'frames' }))
  t.is(m.size, 10_000)
  t.true(m.writable)
  t.deepEqual(m.read(0, 16), Buffer.alloc(16))
  t.is(fstatSync(m.fd).size, 10_000)
  t.is(readlinkSync(`/proc/self/fd/${m.fd}`), '/memfd:frames (deleted)')
  const flags = Number.parseInt(/flags:\s+([0-7]+)/.exec(readFileSync(`/proc/self/fdinfo/${m.fd}`, 'utf8'))![1]!, 8)
  t.truthy(flags & 0o2000000, 'O_CLOEXEC')
  t.deepEqual(m.seals(), [])
  const fixed = track(t, Memfd.create({ size: 1, sealing: false }))
  t.deepEqual(fixed.seals(), ['seal'])
  t.like(
    t.throws(() => fixed.seal(['write']), { instanceOf: IpcError }),
    { code: 'EPERM', syscall: 'fcntl' },
  )
})

test('copy API and views: zero-copy both ways; close() neuters views and closes the fd', (t) => {
  const m = Memfd.create({ size: 256 })
  const view = m.attach()
  const bytes = new Uint8Array(view.buffer)
  m.write('héllo', 10)
  t.is(Buffer.from(bytes.subarray(10, 16)).toString(), 'héllo')
  bytes[255] = 0xee
  t.deepEqual(m.read(250, 6), Buffer.from([0, 0, 0, 0, 0, 0xee]))
  t.throws(() => m.write(Buffer.alloc(2), 255), { code: 'ERR_OUT_OF_RANGE' })
  const fd = m.fd
  m.close()
  m.close()
  t.is(bytes.length, 0)
  t.throws(() => fstatSync(fd), { code: 'EBADF' })
  t.throws(() => m.read(0, 1), { code: 'ERR_INVALID_STATE' })
  t.throws(() => m.seals(), { code: 'ERR_INVALID_STATE' })
})

test('a memfd handed to a Node child as fd 3: both add 100,000 through views, futex waits across', async (t) => {
  const m = track(t, Memfd.create({ size: 64, name: 'shared' }))
  const child = nodeChild(
    `const m = ipckit.Memfd.fromFd(3);
     const words = new Int32Array(m.attach().buffer);
     for (let i = 0; i < 100000; i++) Atomics.add(words, 0, 1);
     (async () => {
       console.log('waiting ' + m.size);
       while (Atomics.load(words, 1) === 0) await m.wait(4, 0, { timeoutMs: 20000 });
       console.log('woken ' + Atomics.load(words, 1));
       m.close();
     })()`,
    [],
    { stdio: ['pipe', 'pipe', 'pipe', m.fd] },
  )
  const words = new Int32Array(m.attach().buffer)
  for (let i = 0; i < 100_000; i++) Atomics.add(words, 0, 1)
  t.is(await child.line(/^waiting/), 'waiting 64')
  Atomics.store(words, 1, 42)
  m.notify(4)
  t.is(await child.line(/^woken/), 'woken 42')
  t.is((await child.done).code, 0)
  t.is(Atomics.load(words, 0), 200_000)
})

const C_RECEIVER = `#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
/* Receives one message with one descriptor on the seqpacket socket at fd 3 and reports what the
 * descriptor allows: its seals, size, the checksum of its bytes (mapped read-only), and what
 * write(), a writable shared mmap() and ftruncate() answer. */
static const char *err(int e) {
  return e == 0 ? "ok" : e == EPERM ? "EPERM" : e == EBUSY ? "EBUSY" : e == EACCES ? "EACCES" : strerror(e);
}
int main(void) {
  char data[64];
  union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } u;
  struct iovec iov = { data, sizeof data };
  struct msghdr msg = { 0 };
  msg.msg_iov = &iov; msg.msg_iovlen = 1;
  msg.msg_control = u.buf; msg.msg_controllen = sizeof u.buf;
  ssize_t n = recvmsg(3, &msg, MSG_CMSG_CLOEXEC);
  if (n < 0) { perror("recvmsg"); return 2; }
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  if (!c || c->cmsg_type != SCM_RIGHTS) { printf("no descriptor\\n"); return 3; }
  int fd;
  memcpy(&fd, CMSG_DATA(c), sizeof fd);
  int seals = fcntl(fd, F_GET_SEALS);
  struct stat st;
  if (fstat(fd, &st) < 0) { perror("fstat"); return 4; }
  unsigned char *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) { perror("mmap"); return 5; }
  unsigned sum = 0;
  for (off_t i = 0; i < st.st_size; i++) sum = sum * 31u + p[i];
  int w = write(fd, "x", 1) < 0 ? errno : 0;
  void *q = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  int m = q == MAP_FAILED ? errno : 0;
  if (q != MAP_FAILED) munmap(q, (size_t)st.st_size);
  int tr = ftruncate(fd, 1) < 0 ? errno : 0;
  printf("%.*s seals=%s%s%s%s size=%ld sum=%u write=%s mmap=%s truncate=%s\\n", (int)n, data,
         seals & F_SEAL_SEAL ? "S" : "", seals & F_SEAL_SHRINK ? "s" : "", seals & F_SEAL_GROW ? "g" : "",
         seals & F_SEAL_WRITE ? "w" : "", (long)st.st_size, sum, err(w), err(m), err(tr));
  return 0;
}
`

test('a sealed snapshot over SCM_RIGHTS to a C process: it sees the seals and the bytes, and cannot change them', async (t) => {
  const exe = compileC('memfd-receiver', C_RECEIVER)
  const payload = randomBytes(100_003)
  const send = async (sealed: boolean) => {
    const m = track(t, Memfd.create({ size: payload.length, name: 'snapshot' }))
    m.write(payload, 0)
    if (sealed) m.seal(SNAPSHOT_SEALS)
    const [mine, theirs] = socketpair('seqpacket')
    const c = cChild(exe, [], { stdio: ['pipe', 'pipe', 'pipe', theirs.fd] })
    theirs.close()
    await mine.send(sealed ? 'sealed' : 'open', { fds: [m.fd] })
    const r = await c.done
    mine.close()
    t.is(r.code, 0, r.stderr)
    return r.stdout.trim()
  }
  const sum = checksum(payload)
  t.is(await send(true), `sealed seals=Ssgw size=${payload.length} sum=${sum} write=EPERM mmap=EPERM truncate=EPERM`)
  // The same without seals: the receiver could write and shrink it (what the seals prevent).
  t.is(await send(false), `open seals= size=${payload.length} sum=${sum} write=ok mmap=ok truncate=ok`)
})

test("seal('write'): refused with EBUSY while a writable view is attached; then every write fails with EPERM", (t) => {
  const m = track(t, Memfd.create({ size: 4096 }))
  m.write('before', 0)
  const rw = m.attach()
  const ro = m.attach({ readonly: true })
  const e = t.throws(() => m.seal(['write']), { instanceOf: IpcError })
  t.like(e, { code: 'EBUSY', syscall: 'fcntl' })
  t.regex(e!.message, /1 writable view\(s\) attached/)
  t.deepEqual(m.seals(), [], 'nothing was sealed')
  rw.detach()
  m.seal(['write', 'shrink', 'grow'])
  t.deepEqual(m.seals(), ['shrink', 'grow', 'write'])
  t.is(ro.read(0, 6).toString(), 'before', 'read-only views do not stand in the way and keep working')
  t.is(m.read(0, 6).toString(), 'before')
  t.like(
    t.throws(() => m.write('x', 0), { instanceOf: IpcError }),
    { code: 'EPERM', syscall: 'mmap' },
  )
  t.like(
    t.throws(() => m.attach(), { instanceOf: IpcError }),
    { code: 'EPERM', syscall: 'mmap' },
  )
  t.throws(() => writeSync(m.fd, 'x'), { code: 'EPERM' })
  t.throws(() => ftruncateSync(m.fd, 1), { code: 'EPERM' })
  t.throws(() => ftruncateSync(m.fd, 8192), { code: 'EPERM' })
  t.is(m.read(0, 6).toString(), 'before')
  m.seal(['seal'])
  t.like(
    t.throws(() => m.seal(['future-write']), { instanceOf: IpcError }),
    { code: 'EPERM' },
  )
  t.throws(() => m.seal(['write', 'bogus' as never]), { code: 'ERR_INVALID_ARG_VALUE' })
  t.throws(() => m.seal('write' as never), { code: 'ERR_INVALID_ARG_TYPE' })
})

test("the receiver checks seals: fromFd refuses a memfd without them (the fd stays its caller's) and maps a sealed one read-only", async (t) => {
  const [a, b] = socketpair('seqpacket', { acceptFds: true })
  t.teardown(() => {
    a.close()
    b.close()
  })
  const open = track(t, Memfd.create({ size: 64 }))
  await a.send('x', { fds: [open.fd] })
  const [unsealedFd] = (await b.receive())!.fds
  const e = t.throws(() => Memfd.fromFd(unsealedFd!, { requireSeals: SNAPSHOT_SEALS }), {
    code: 'ERR_INVALID_ARG_VALUE',
  })
  t.regex(e!.message, /lacks the seals 'write', 'shrink', 'grow', 'seal' \(it has none\)/)
  t.notThrows(() => fstatSync(unsealedFd!), "still open, the caller's to close")
  closeSync(unsealedFd!)

  const snap = track(t, Memfd.create({ size: 64 }))
  snap.write('trusted', 0)
  snap.seal(SNAPSHOT_SEALS)
  await a.send('x', { fds: [snap.fd] })
  const [fd] = (await b.receive())!.fds
  const got = track(t, Memfd.fromFd(fd!, { requireSeals: ['write', 'shrink'] }))
  t.is(got.size, 64)
  t.is(got.read(0, 7).toString(), 'trusted')
  t.like(
    t.throws(() => got.write('x', 0), { instanceOf: IpcError }),
    { code: 'EPERM' },
  )
  t.deepEqual(got.seals(), ['seal', 'shrink', 'grow', 'write'])
  t.throws(() => Memfd.fromFd(fd!, { requireSeals: ['nope' as never] }), { code: 'ERR_INVALID_ARG_VALUE' })
})

test('fromFd: a read-only descriptor maps read-only; a POSIX shared memory object is accepted; other files are not', (t) => {
  const m = track(t, Memfd.create({ size: 32 }))
  m.write('abc', 0)
  const ro = track(t, Memfd.fromFd(openSync(`/proc/self/fd/${m.fd}`, 'r')))
  t.false(ro.writable)
  t.is(ro.read(0, 3).toString(), 'abc')
  t.like(
    t.throws(() => ro.write('x', 0), { instanceOf: IpcError }),
    { code: 'EACCES', syscall: 'mmap' },
  )
  // A read-only mapping (through a read-only reopen) does not hold back the writer's seal.
  m.seal(['write'])

  const name = posixName('as-memfd')
  const shm = PosixSharedMemory.open(name, { size: 16, create: true })
  t.teardown(() => {
    shm.remove()
    shm.close()
  })
  shm.write('posix', 0)
  const viaFd = track(t, Memfd.fromFd(openSync(`/proc/self/fd/${shm.fd}`, 'r+')))
  t.is(viaFd.read(0, 5).toString(), 'posix')
  t.deepEqual(viaFd.seals(), ['seal'])

  const exe = openSync(process.execPath, 'r')
  t.teardown(() => closeSync(exe))
  t.like(
    t.throws(() => Memfd.fromFd(exe), { instanceOf: IpcError }),
    { code: 'EINVAL', syscall: 'fcntl' },
  )
  const [p] = socketpair('dgram')
  t.teardown(() => p.close())
  t.like(
    t.throws(() => Memfd.fromFd(p.fd), { instanceOf: IpcError }),
    { code: 'EINVAL' },
  )
  t.like(
    t.throws(() => Memfd.fromFd(999_999), { instanceOf: IpcError }),
    { code: 'EBADF' },
  )
  t.throws(() => Memfd.fromFd(-1), { code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => Memfd.fromFd('3' as never), { code: 'ERR_INVALID_ARG_TYPE' })
})

test('sizes: 0 and bad values are refused before any call; a sparse 1 PiB memfd fails to map with ENOMEM naming its size', (t) => {
  t.throws(() => Memfd.create({ size: 0 }), { code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => Memfd.create({ size: 1.5 }), { code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => Memfd.create({} as never), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => Memfd.create(undefined as never), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => Memfd.create({ size: 1, name: 'x'.repeat(250) }), { code: 'ERR_INVALID_ARG_VALUE' })
  t.notThrows(() => Memfd.create({ size: 1, name: 'x'.repeat(249) }).close())
  t.throws(() => Memfd.create({ size: 1, name: 'a\0b' }), { code: 'ERR_INVALID_ARG_VALUE' })
  t.throws(() => Memfd.create({ size: 1, name: 7 as never }), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => Memfd.create({ size: 1, sealing: 'yes' as never }), { code: 'ERR_INVALID_ARG_TYPE' })
  const size = 2 ** 50
  const huge = track(t, Memfd.create({ size }))
  t.is(fstatSync(huge.fd).size, size, 'sparse: no memory is used')
  const e = t.throws(() => huge.read(0, 1), { instanceOf: IpcError })
  t.like(e, { code: 'ENOMEM', syscall: 'mmap' })
  t.true(e!.message.endsWith(`(${size} bytes)`), e!.message)
})

test('a memfd that shrank after it was opened: new mappings refuse (EINVAL) instead of faulting later', (t) => {
  const m = track(t, Memfd.create({ size: 8192 }))
  const other = track(t, Memfd.fromFd(openSync(`/proc/self/fd/${m.fd}`, 'r+')))
  ftruncateSync(m.fd, 0)
  const e = t.throws(() => other.read(0, 1), { instanceOf: IpcError })
  t.like(e, { code: 'EINVAL', syscall: 'mmap' })
  t.regex(e!.message, /smaller than the 8192 bytes it had when opened/)
  const empty = track(t, Memfd.fromFd(openSync(`/proc/self/fd/${m.fd}`, 'r+')))
  t.is(empty.size, 0)
  t.regex(t.throws(() => empty.attach(), { instanceOf: IpcError })!.message, /empty memfd \(0 bytes\) cannot be mapped/)
})

test('forced no-zero-copy path (Electron): attach() refuses, the copy API works on a memfd from stdio', async (t) => {
  const m = track(t, Memfd.create({ size: 64 }))
  m.write('parent', 0)
  const r = await runNode(
    `const m = ipckit.Memfd.fromFd(3);
     try { m.attach() } catch (e) { console.log(e.code) }
     console.log(m.read(0, 6).toString());
     m.write('child!', 8);
     m.close()`,
    [],
    { stdio: ['pipe', 'pipe', 'pipe', m.fd], env: { ...process.env, IPCKIT_NO_ZERO_COPY: '1' } },
  )
  t.deepEqual(r.stdout.trim().split('\n'), ['ERR_FEATURE_UNAVAILABLE_ON_PLATFORM', 'parent'])
  t.is(m.read(8, 6).toString(), 'child!')
})

test('at the open-file limit: EMFILE naming the limit; everything closes afterwards', async (t) => {
  const r = await runNodeUnder(
    ['prlimit', '--nofile=48'],
    `const all = []; let err;
     try { for (;;) all.push(ipckit.Memfd.create({ size: 4096 })) } catch (e) { err = e }
     const n = all.length;
     for (const m of all) m.close();
     ipckit.Memfd.create({ size: 1 }).close();
     console.log(JSON.stringify({ code: err.code, syscall: err.syscall, message: err.message, n }))`,
  )
  const res = JSON.parse(r.stdout.trim())
  t.like(res, { code: 'EMFILE', syscall: 'memfd_create' })
  t.regex(res.message, /open file limit, 48 \(RLIMIT_NOFILE, ulimit -n\)/)
  t.true(res.n > 5 && res.n < 48, `made ${res.n}`)
})

test.serial(
  'many memfds made, mapped and closed leave no descriptor open; one only garbage-collected closes too',
  async (t) => {
    const before = fdSnapshot()
    for (let i = 0; i < 200; i++) {
      using m = Memfd.create({ size: 4096 })
      m.write('x', i)
      m.attach().detach()
      if (i % 2) m.seal(['shrink'])
    }
    t.deepEqual(await fdsLeftOpen(before), [])
    ;(() => {
      Memfd.create({ size: 64 }).write('x', 0)
    })()
    t.deepEqual(await fdsLeftAfterGc(before, gc), [])
  },
)

notLinux(anyTest)('macOS has no memfd: ENOSYS, and the message names the platform', (t) => {
  const e = t.throws(() => Memfd.create({ size: 1 }), { instanceOf: IpcError })
  t.like(e, { code: 'ENOSYS', syscall: 'memfd_create' })
  t.regex(e!.message, /macOS has none/)
})
