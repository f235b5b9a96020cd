import { existsSync, fchmodSync, fstatSync, statSync } from 'node:fs'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

import test, { type ExecutionContext } from 'ava'

import { IpcError, PosixSharedMemory, zeroCopySupported } from '../ts/index'
import {
  cChild,
  compileC,
  fdsLeftAfterGc,
  fdsLeftOpen,
  fdSnapshot,
  linuxOnly,
  NOBODY,
  nodeChild,
  onLinux,
  posixName,
  removeBuilds,
  runC,
  runNode,
  runNodeUnder,
} from './helpers'
import { needs, python } from './helpers/foreign'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

test.after.always(removeBuilds)

/** Closes `shm` and removes its name when the test ends, whatever the test did. */
function track(t: ExecutionContext, shm: PosixSharedMemory): PosixSharedMemory {
  t.teardown(() => {
    shm.close()
    unlinkQuietly(shm.name)
  })
  return shm
}

function unlinkQuietly(name: string): void {
  try {
    PosixSharedMemory.unlink(name)
  } catch (err) {
    if (!(err instanceof IpcError && err.code === 'ENOENT')) throw err
  }
}

/** A name removed at the end of the test, for objects a peer creates. */
function nameFor(t: ExecutionContext, tag: string): string {
  const name = posixName(tag)
  t.teardown(() => unlinkQuietly(name))
  return name
}

const create = (t: ExecutionContext, tag: string, size = 4096, mode?: number) =>
  track(t, PosixSharedMemory.open(posixName(tag), { size, create: true, exclusive: true, mode }))

const futexTest = linuxOnly(test, 'wait/notify need a futex (ENOSYS on macOS)')

test('open, create, exclusive: created, the real size, the exact mode whatever the umask', (t) => {
  const name = posixName('open')
  t.throws(() => PosixSharedMemory.open(name), { instanceOf: IpcError, code: 'ENOENT' })
  const old = process.umask(0o077)
  let a: PosixSharedMemory
  try {
    a = track(t, PosixSharedMemory.open(name, { size: 10_000, create: true, mode: 0o664 }))
  } finally {
    process.umask(old)
  }
  t.is(a.name, name)
  t.true(a.created)
  t.is(a.size, 10_000)
  t.deepEqual(a.stat(), { size: 10_000, mode: 0o664, uid: process.getuid!(), gid: process.getgid!() })
  if (onLinux) {
    const st = statSync(`/dev/shm${name}`)
    t.is(st.size, 10_000)
    t.is(st.mode & 0o777, 0o664)
    t.true(st.blocks * 512 >= 10_000, 'the bytes are reserved (fallocate), not sparse')
  }
  const b = track(t, PosixSharedMemory.open(name, { create: true, size: 5 }))
  t.false(b.created)
  t.is(b.size, 10_000, 'an existing object keeps its size')
  t.is(track(t, PosixSharedMemory.open(name)).size, 10_000)
  const e = t.throws(() => PosixSharedMemory.open(name, { exclusive: true, size: 1 }), { instanceOf: IpcError })
  t.like(e, { code: 'EEXIST', syscall: 'shm_open', path: name })
  t.true(e!.message.endsWith(`, shm_open '${name}'`), e!.message)
  const big = t.throws(() => PosixSharedMemory.open(name, { size: 10_001 }), { instanceOf: IpcError })
  t.like(big, { code: 'EINVAL', syscall: 'shm_open' })
  t.regex(big!.message, /smaller than options\.size, 10001 bytes/)
  t.true(a.fd >= 0 && b.fd >= 0 && a.fd !== b.fd)
})

test('copy API and views see the same bytes through two handles; close() neuters the views', (t) => {
  const a = create(t, 'copy', 256)
  const b = track(t, PosixSharedMemory.open(a.name))
  t.deepEqual(a.read(0, 8), Buffer.alloc(8), 'a new object holds zeros')
  a.write('héllo', 10)
  t.is(b.read(10, 6).toString('utf8'), 'héllo')
  const view = b.attach()
  const bytes = new Uint8Array(view.buffer)
  a.write(Buffer.from([1, 2, 3]), 253)
  t.deepEqual([...bytes.subarray(253)], [1, 2, 3], 'the view is zero-copy')
  bytes[0] = 0x7f
  t.deepEqual(a.read(0, 1), Buffer.from([0x7f]))
  t.throws(() => a.read(250, 7), { code: 'ERR_OUT_OF_RANGE', instanceOf: RangeError })
  t.throws(() => a.write('x', 256.5), { code: 'ERR_OUT_OF_RANGE' })
  b.close()
  t.is(bytes.length, 0, 'close() neutered the view')
  t.true(view.detached)
  t.throws(() => b.read(0, 1), { code: 'ERR_INVALID_STATE' })
  b.close()
  t.is(a.read(0, 1)[0], 0x7f, 'the other handle is unaffected')
})

test('two Node processes each add 100,000 through views of one name: the sum is exact', async (t) => {
  const shm = create(t, 'sum', 64)
  const code = `const shm = ipckit.PosixSharedMemory.open(process.argv[2]);
    const words = new Int32Array(shm.attach().buffer);
    for (let i = 0; i < 100000; i++) Atomics.add(words, 0, 1);
    shm.close()`
  await Promise.all([runNode(code, [shm.name]), runNode(code, [shm.name])])
  t.is(shm.read(0, new Int32Array(1))[0], 200_000)
})

const C_SHM = `#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
/* make NAME SIZE: creates the object (O_EXCL), fills byte i with i*7+3, waits for a line, then
 *   checks that every byte is the complement.
 * check NAME SIZE: opens the object Node made, checks byte i is i*5+1, writes "from C". */
int main(int argc, char **argv) {
  const char *name = argv[2];
  size_t size = strtoul(argv[3], NULL, 0);
  int make = strcmp(argv[1], "make") == 0;
  int fd = shm_open(name, make ? O_RDWR | O_CREAT | O_EXCL : O_RDWR, 0600);
  if (fd < 0) { perror("shm_open"); return 2; }
  if (make && ftruncate(fd, (off_t)size) < 0) { perror("ftruncate"); return 3; }
  struct stat st;
  if (fstat(fd, &st) < 0 || (size_t)st.st_size != size) { printf("size %ld\\n", (long)st.st_size); return 4; }
  unsigned char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) { perror("mmap"); return 5; }
  close(fd);
  if (make) {
    for (size_t i = 0; i < size; i++) p[i] = (unsigned char)(i * 7 + 3);
    printf("ready\\n"); fflush(stdout);
    char line[16];
    if (!fgets(line, sizeof line, stdin)) return 6;
    for (size_t i = 0; i < size; i++)
      if (p[i] != (unsigned char)~(i * 7 + 3)) { printf("mismatch at %zu\\n", i); return 7; }
  } else {
    for (size_t i = 0; i < size; i++)
      if (p[i] != (unsigned char)(i * 5 + 1)) { printf("mismatch at %zu\\n", i); return 7; }
    memcpy(p, "from C", 6);
  }
  munmap(p, size);
  printf("verified\\n");
  return 0;
}
`

test('C creates an object by name, Node reads it byte for byte and writes back, C verifies', async (t) => {
  const exe = compileC('posix-shm', C_SHM)
  const name = nameFor(t, 'from-c')
  const size = 70_001
  const c = cChild(exe, ['make', name, String(size)])
  await c.line(/^ready/)
  const shm = track(t, PosixSharedMemory.open(name))
  t.false(shm.created)
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
  t.deepEqual(r.stdout.trim().split('\n'), ['ready', 'verified'])
})

test('Node creates an object by name, C opens it with shm_open, checks every byte and writes back', async (t) => {
  const exe = compileC('posix-shm', C_SHM)
  const size = 65_537
  const shm = create(t, 'to-c', size)
  const data = Buffer.alloc(size)
  for (let i = 0; i < size; i++) data[i] = (i * 5 + 1) & 0xff
  shm.write(data, 0)
  const r = await runC(exe, ['check', shm.name, String(size)])
  t.is(r.stdout.trim(), 'verified')
  t.is(shm.read(0, 6).toString(), 'from C')
})

needs(test, { python: 'posix_ipc' })('Python posix_ipc.SharedMemory on the same name, both ways', async (t) => {
  // Node makes it; Python maps it, checks, and answers.
  const shm = create(t, 'py', 4096)
  shm.write('node wrote this', 100)
  const seen = await python(
    `import mmap, sys, posix_ipc
m = posix_ipc.SharedMemory(sys.argv[1])
size = m.size
buf = mmap.mmap(m.fd, size)
m.close_fd()
print(size, buf[100:115].decode())
buf[0:6] = b'python'
buf.close()`,
    [shm.name],
  )
  t.is(seen.trim(), '4096 node wrote this')
  t.is(shm.read(0, 6).toString(), 'python')
  // Python makes it (O_CREX, size); Node opens it and sees the bytes.
  const name = nameFor(t, 'py-made')
  await python(
    `import mmap, sys, posix_ipc
m = posix_ipc.SharedMemory(sys.argv[1], posix_ipc.O_CREX, mode=0o600, size=8192)
buf = mmap.mmap(m.fd, m.size)
buf[8000:8010] = b'0123456789'
buf.close(); m.close_fd()`,
    [name],
  )
  const theirs = track(t, PosixSharedMemory.open(name))
  t.false(theirs.created)
  t.is(theirs.size, 8192)
  t.is(theirs.read(8000, 10).toString(), '0123456789')
  t.is(theirs.stat().mode, 0o600)
})

futexTest('wait/notify on a word between two processes, both ways', async (t) => {
  const shm = create(t, 'futex', 64)
  const child = nodeChild(
    `const shm = ipckit.PosixSharedMemory.open(process.argv[2]);
     const words = new Int32Array(shm.attach().buffer);
     (async () => {
       console.log('waiting');
       while (Atomics.load(words, 0) === 0) await shm.wait(0, 0, { timeoutMs: 20000 });
       console.log('woken ' + Atomics.load(words, 0));
       Atomics.store(words, 1, 7); shm.notify(4);
       shm.close();
     })()`,
    [shm.name],
  )
  await child.line(/^waiting/)
  const view = shm.attach()
  const words = new Int32Array(view.buffer)
  const mine = shm.wait(4, 0, { timeoutMs: 20_000 })
  Atomics.store(words, 0, 42)
  shm.notify(0)
  t.is(await child.line(/^woken/), 'woken 42')
  t.true(['ok', 'not-equal'].includes(await mine))
  t.is(Atomics.load(words, 1), 7)
  t.is((await child.done).code, 0)
})

test('read-only open: reads and read-only views work, writes and writable views throw EACCES', (t) => {
  const rw = create(t, 'ro', 64)
  rw.write('shared', 0)
  const ro = track(t, PosixSharedMemory.open(rw.name, { readonly: true }))
  t.true(ro.readonly)
  t.is(ro.read(0, 6).toString(), 'shared')
  t.like(
    t.throws(() => ro.write('x', 0), { instanceOf: IpcError }),
    { code: 'EACCES', syscall: 'mmap' },
  )
  t.like(
    t.throws(() => ro.attach(), { instanceOf: IpcError }),
    { code: 'EACCES', syscall: 'mmap' },
  )
  const view = ro.attach({ readonly: true })
  t.is(view.read(0, 6).toString(), 'shared')
  t.throws(() => view.buffer, { code: 'ERR_INVALID_STATE' })
  rw.write('SHARED', 0)
  t.is(view.read(0, 6).toString(), 'SHARED', 'a read-only mapping still sees changes')
  t.throws(() => PosixSharedMemory.open(rw.name, { readonly: true, create: true, size: 1 }), {
    code: 'ERR_INVALID_ARG_VALUE',
  })
})

test('forced no-zero-copy path (Electron): attach() refuses, the copy API and waits still work', async (t) => {
  const shm = create(t, 'nozc', 64)
  const r = await runNode(
    `const shm = ipckit.PosixSharedMemory.open(process.argv[2]);
     console.log(ipckit.zeroCopySupported);
     try { shm.attach() } catch (e) { console.log(e.code) }
     shm.write('copied', 0);
     console.log(shm.read(0, 6).toString());
     ${onLinux ? 'shm.wait(8, 1).then((r) => { console.log(r); shm.close() })' : "console.log('not-equal'); shm.close()"}`,
    [shm.name],
    { env: { ...process.env, IPCKIT_NO_ZERO_COPY: '1' } },
  )
  t.deepEqual(r.stdout.trim().split('\n'), ['false', 'ERR_FEATURE_UNAVAILABLE_ON_PLATFORM', 'copied', 'not-equal'])
  t.is(shm.read(0, 6).toString(), 'copied')
  t.true(zeroCopySupported)
})

test('names are checked as shm_overview(7) says, before any system call', (t) => {
  const value = { code: 'ERR_INVALID_ARG_VALUE', instanceOf: TypeError }
  for (const bad of ['', 'app', '/', '//app', '/a/b', '/app/', '/.', '/..', '/a\0b']) {
    t.throws(() => PosixSharedMemory.open(bad, { size: 1, create: true }), value, JSON.stringify(bad))
  }
  t.throws(() => PosixSharedMemory.open(5 as never), { code: 'ERR_INVALID_ARG_TYPE', instanceOf: TypeError })
  t.throws(() => PosixSharedMemory.unlink(null as never), { code: 'ERR_INVALID_ARG_TYPE' })
  const max = process.platform === 'darwin' ? 30 : 255 // bytes after the slash
  const prefix = posixName('max').slice(1)
  const longest = `/${prefix}${'x'.repeat(max - prefix.length)}`
  const tooLong = `${longest}x`
  const e = t.throws(() => PosixSharedMemory.open(tooLong, { size: 1, create: true }), value)
  t.regex(e!.message, new RegExp(`must be at most ${max} bytes after the slash`))
  const made = track(t, PosixSharedMemory.open(longest, { size: 1, create: true }))
  t.is(made.size, 1)
  // Multi-byte characters count as their UTF-8 bytes.
  t.throws(() => PosixSharedMemory.open(`/${'é'.repeat(Math.ceil((max + 1) / 2))}`), value)
  if (onLinux) t.false(existsSync(`/dev/shm/${tooLong.slice(1)}`))
  const range = { code: 'ERR_OUT_OF_RANGE', instanceOf: RangeError }
  t.throws(
    () => PosixSharedMemory.open(posixName('nosize'), { create: true }),
    { code: 'ERR_INVALID_ARG_TYPE' },
    'creating needs a size',
  )
  t.throws(() => PosixSharedMemory.open(posixName('zero'), { create: true, size: 0 }), range)
  t.throws(() => PosixSharedMemory.open(posixName('zero'), { exclusive: true, size: 0 }), range)
  t.throws(() => PosixSharedMemory.open(posixName('neg'), { size: -1 }), range)
  t.throws(() => PosixSharedMemory.open(posixName('frac'), { size: 1.5, create: true }), range)
  t.throws(() => PosixSharedMemory.open(posixName('mode'), { size: 1, create: true, mode: 0o1000 }), range)
  t.throws(() => PosixSharedMemory.open(posixName('opts'), 'x' as never), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => PosixSharedMemory.open(posixName('bool'), { create: 1 as never }), { code: 'ERR_INVALID_ARG_TYPE' })
})

linuxOnly(test, '/dev/shm is a tmpfs of limited size on Linux')(
  'a size beyond /dev/shm fails with ENOSPC naming it, and leaves no name behind',
  (t) => {
    const name = posixName('huge')
    t.teardown(() => unlinkQuietly(name))
    const size = 2 ** 50
    const e = t.throws(() => PosixSharedMemory.open(name, { size, create: true }), { instanceOf: IpcError })
    t.like(e, { code: 'ENOSPC', syscall: 'fallocate' })
    t.true(e!.message.includes(`'${name}' (${size} bytes)`), e!.message)
    t.false(existsSync(`/dev/shm${name}`))
  },
)

linuxOnly(test, 'a sparse object larger than the address space: ftruncate on /dev/shm')(
  'mapping more than the address space fails with ENOMEM naming the size',
  async (t) => {
    // C makes a sparse 2^48-byte object (no pages), more than a process can map.
    const exe = compileC(
      'posix-shm-sparse',
      `#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>
int main(int argc, char **argv) {
  int fd = shm_open(argv[1], O_RDWR | O_CREAT | O_EXCL, 0600);
  if (fd < 0 || ftruncate(fd, (off_t)1 << 48) < 0) { perror("make"); return 2; }
  return 0;
}
`,
    )
    const name = nameFor(t, 'sparse')
    await runC(exe, [name])
    const shm = track(t, PosixSharedMemory.open(name))
    t.is(shm.size, 2 ** 48)
    const e = t.throws(() => shm.read(0, 1), { instanceOf: IpcError })
    t.like(e, { code: 'ENOMEM', syscall: 'mmap' })
    t.true(e!.message.includes(`(${2 ** 48} bytes)`), e!.message)
    t.like(
      t.throws(() => shm.attach(), { instanceOf: IpcError }),
      { code: 'ENOMEM' },
    )
  },
)

test('an empty object (made by C without ftruncate) opens with size 0 and refuses to map, saying why', async (t) => {
  const exe = compileC(
    'posix-shm-empty',
    `#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
int main(int argc, char **argv) {
  if (shm_open(argv[1], O_RDWR | O_CREAT | O_EXCL, 0600) < 0) { perror("shm_open"); return 2; }
  return 0;
}
`,
  )
  const name = nameFor(t, 'empty')
  await runC(exe, [name])
  const shm = track(t, PosixSharedMemory.open(name))
  t.is(shm.size, 0)
  const e = t.throws(() => shm.read(0, 0), { instanceOf: IpcError })
  t.like(e, { code: 'EINVAL', syscall: 'mmap' })
  t.regex(e!.message, /empty object \(0 bytes\) cannot be mapped/)
})

test('remove(): idempotent, views keep working, and it never removes an object made again under the name', (t) => {
  const a = create(t, 'remove', 64)
  const view = a.attach()
  a.remove()
  a.remove()
  t.throws(() => PosixSharedMemory.open(a.name), { code: 'ENOENT' })
  new Uint8Array(view.buffer)[0] = 9
  t.is(a.read(0, 1)[0], 9, 'the memory lives on while mapped')
  const stale = create(t, 'stale', 64)
  PosixSharedMemory.unlink(stale.name)
  const fresh = track(t, PosixSharedMemory.open(stale.name, { size: 64, create: true }))
  t.true(fresh.created)
  t.like(
    t.throws(() => stale.remove(), { instanceOf: IpcError }),
    { code: 'ENOENT', syscall: 'shm_unlink' },
  )
  t.is(track(t, PosixSharedMemory.open(stale.name)).size, 64, 'the new object keeps its name')
  fresh.remove()
  t.throws(() => PosixSharedMemory.unlink(stale.name), { code: 'ENOENT' })
  a.close()
  t.is(view.byteLength, 0)
})

test('unprivileged process: EACCES on a 0600 object; 0604 lets it read but not write', async (t) => {
  const shm = create(t, 'perm', 64, 0o600)
  shm.write('secret', 0)
  const probe = (what: string) =>
    runNode(
      `const name = process.argv[2]; const out = {};
       try { ${what} } catch (e) { out.code = e.code; out.syscall = e.syscall }
       console.log(JSON.stringify(out))`,
      [shm.name],
      { uid: NOBODY.uid, gid: NOBODY.gid },
    ).then((r) => JSON.parse(r.stdout.trim()))
  t.deepEqual(await probe('ipckit.PosixSharedMemory.open(name, { readonly: true })'), {
    code: 'EACCES',
    syscall: 'shm_open',
  })
  t.deepEqual(await probe('ipckit.PosixSharedMemory.unlink(name)'), { code: 'EACCES', syscall: 'shm_unlink' })
  fchmodSync(shm.fd, 0o604)
  t.deepEqual(await probe('out.text = ipckit.PosixSharedMemory.open(name, { readonly: true }).read(0, 6).toString()'), {
    text: 'secret',
  })
  t.deepEqual(await probe('ipckit.PosixSharedMemory.open(name)'), { code: 'EACCES', syscall: 'shm_open' })
  t.is(shm.read(0, 6).toString(), 'secret')
})

linuxOnly(test, 'prlimit(1) and /proc/self/limits are Linux tools')(
  'at the open-file limit: EMFILE naming the limit, no crash, nothing left open',
  async (t) => {
    const name = posixName('nofile')
    t.teardown(() => unlinkQuietly(name))
    const out = await runNodeUnder(
      ['prlimit', '--nofile=64'],
      `const { PosixSharedMemory } = ipckit; const name = process.argv[2];
     const all = [PosixSharedMemory.open(name, { size: 4096, create: true })]; let err;
     try { for (;;) all.push(PosixSharedMemory.open(name)) } catch (e) { err = e }
     const n = all.length;
     for (const s of all) s.close();
     const again = PosixSharedMemory.open(name); again.write('ok', 0); again.remove(); again.close();
     console.log(JSON.stringify({ code: err.code, syscall: err.syscall, message: err.message, n }))`,
      [name],
    )
    const res = JSON.parse(out.stdout.trim())
    t.like(res, { code: 'EMFILE', syscall: 'shm_open' })
    t.regex(res.message, /open file limit, 64 \(RLIMIT_NOFILE, ulimit -n\)/)
    t.true(res.n > 10 && res.n < 64, `opened ${res.n}`)
  },
)

test.serial('close() closes the descriptor; many opens and closes leave nothing open', async (t) => {
  const before = fdSnapshot()
  const name = nameFor(t, 'fds')
  for (let i = 0; i < 200; i++) {
    using shm = PosixSharedMemory.open(name, { size: 64, create: true })
    shm.write('x', i % 64)
    shm.attach().detach()
  }
  t.deepEqual(await fdsLeftOpen(before), [])
  const shm = PosixSharedMemory.open(name)
  t.notThrows(() => fstatSync(shm.fd))
  shm.close()
  t.throws(() => fstatSync(shm.fd), { code: 'EBADF' })
})

test.serial('a handle only garbage-collected closes its descriptor (the safety net)', async (t) => {
  const name = nameFor(t, 'gc')
  PosixSharedMemory.open(name, { size: 64, create: true }).close()
  const before = fdSnapshot()
  ;(() => {
    PosixSharedMemory.open(name).write('x', 0)
  })()
  t.deepEqual(await fdsLeftAfterGc(before, gc), [])
})
