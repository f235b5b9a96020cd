import test from 'ava'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'

import { IPC_PRIVATE, IpcError, ftok } from '../ts/index'
import { compileC, removeBuilds, runC, tempDir } from './helpers'

test.after.always(removeBuilds)

/** Prints glibc's ftok(path, id) for each (path, id) pair on the command line, one hex key a line. */
const FTOK_C = `
#include <stdio.h>
#include <stdlib.h>
#include <sys/ipc.h>
int main(int argc, char **argv) {
  for (int i = 1; i + 1 < argc; i += 2) {
    key_t k = ftok(argv[i], atoi(argv[i + 1]));
    if (k == -1) { perror("ftok"); return 1; }
    printf("%08x\\n", (unsigned)k);
  }
  return 0;
}
`

test('ftok returns what glibc ftok(3) returns, for files, folders and every id range', async (t) => {
  const dir = tempDir()
  t.teardown(dir.remove)
  const file = join(dir.path, 'a file with spaces')
  writeFileSync(file, 'x')
  const sub = join(dir.path, 'sub')
  mkdirSync(sub)
  const cases: Array<[string, number]> = [
    [file, 1],
    [file, 0x41],
    [file, 127],
    [file, 128],
    [file, 255],
    [sub, 7],
    ['/', 1],
    ['/dev/null', 200],
    [process.execPath, 3],
  ]
  const exe = compileC('ftok', FTOK_C)
  const { stdout } = await runC(
    exe,
    cases.flatMap(([p, id]) => [p, String(id)]),
  )
  const fromC = stdout
    .trim()
    .split('\n')
    .map((hex) => Number.parseInt(hex, 16))
  t.deepEqual(
    cases.map(([p, id]) => ftok(p, id)),
    fromC,
  )
  for (const key of fromC) t.true(key >= 0 && key <= 0xffff_ffff)
  t.is(ftok(pathToFileURL(file), 5), ftok(file, 5))
})

test('ftok reports a missing or unreadable path as a system error of ftok', (t) => {
  const e = t.throws(() => ftok('/definitely/not/here', 1), { instanceOf: IpcError })
  t.like(e, { code: 'ENOENT', errno: -2, syscall: 'ftok', path: '/definitely/not/here' })
  // The path, as Node's fs names it (`ENOENT: no such file or directory, open '/x'`).
  t.is(e.message, "ENOENT: no such file or directory, ftok '/definitely/not/here'")
  t.like(
    t.throws(() => ftok('/etc/passwd/x', 1)),
    {
      code: 'ENOTDIR',
      errno: -20,
      syscall: 'ftok',
      path: '/etc/passwd/x',
      message: "ENOTDIR: not a directory, ftok '/etc/passwd/x'",
    },
  )
  const url = pathToFileURL('/definitely/not/here/either')
  t.like(
    t.throws(() => ftok(url, 1)),
    { code: 'ENOENT', path: '/definitely/not/here/either' },
    'a URL is named as the path it stands for',
  )
})

test('ftok validates its arguments before any call', (t) => {
  const type = { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' }
  const range = { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' }
  t.throws(() => ftok(42 as never, 1), type)
  t.throws(() => ftok(null as never, 1), type)
  t.throws(() => ftok('/', '1' as never), type)
  t.throws(() => ftok('/', 0), range)
  t.throws(() => ftok('/', 256), range)
  t.throws(() => ftok('/', 1.5), range)
  t.throws(() => ftok('/', -1), range)
  t.like(
    t.throws(() => ftok('/tmp/nul\0byte', 1)),
    { code: 'EINVAL', syscall: 'ftok' },
  )
})

test('IPC_PRIVATE is the key 0', (t) => {
  t.is(IPC_PRIVATE, 0)
})
