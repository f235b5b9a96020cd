import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'

import anyTest from 'ava'

import { ipcs } from '../ts/index'
import { ROOT, freshKey, keyExists, linuxOnly, notLinux, removeBuilds } from './helpers'
import { holdObject, makeObject, type Made } from './helpers/sysv-objects'

/** The CLI lists from /proc/sysvipc, as util-linux ipcs does: off Linux it exits 1 (tested below). */
const test = linuxOnly(anyTest, 'ipcs reads /proc/sysvipc, and the output is compared with util-linux ipcs: macOS has neither')

anyTest.after.always(() => removeBuilds())

const CLI = join(ROOT, 'ts', 'cli.ts')
const TSX_CJS = require.resolve('tsx/cjs')
/** A uid no real user has, unique to this test process, to own objects for `--all` tests. */
const OWNER = 40000 + ((process.pid + 7) % 20000)
/** The owner of the objects of the `--all --owner` test alone: tests in a file run concurrently, and
 *  that test removes every object of its owner. A range no other spec uses. */
const ALL_OWNER = 62000 + (process.pid % 3000)

interface Run {
  code: number | null
  stdout: string
  stderr: string
}

/** Runs `ipckit ...args` (the CLI from ts/, as the bin entry runs its compiled form). */
function ipckit(...args: string[]): Run {
  const r = spawnSync(process.execPath, ['--require', TSX_CJS, CLI, ...args], { encoding: 'utf8', cwd: ROOT })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

const which = spawnSync('sh', ['-c', 'command -v ipcs'], { encoding: 'utf8' })
const HAVE_IPCS = which.status === 0
const compareTest = HAVE_IPCS ? test : test.skip
const compareTitle = (title: string) => (HAVE_IPCS ? title : `${title} (skipped: util-linux ipcs is not installed)`)

const SECTION_TYPE: Array<[RegExp, 'msg' | 'sem' | 'shm']> = [
  [/^------ Messag/, 'msg'],
  [/^------ Shared/, 'shm'],
  [/^------ Semaph/, 'sem'],
]

/**
 * Keeps the headers and blank lines of an `ipcs` listing, and the rows of our own objects
 * (other tests on this machine make and remove objects at any time).
 */
function ours(text: string, made: Made[]): string {
  let type: 'msg' | 'sem' | 'shm' | undefined
  const keep: string[] = []
  for (const line of text.split('\n')) {
    const section = SECTION_TYPE.find(([re]) => re.test(line))
    if (section) type = section[1]
    const cells = line.trim().split(/\s+/)
    const idCell = cells[0]?.startsWith('0x') ? cells[1] : cells[0]
    if (!/^\d+$/.test(idCell ?? '') || cells[0] === '') {
      keep.push(line)
      continue
    }
    if (made.some((m) => m.type === type && m.id === Number(idCell))) keep.push(line)
  }
  return keep.join('\n')
}

compareTest(compareTitle('ipcs output matches util-linux ipcs for default, -c, -p, -t and per-type listings'), async (t) => {
  const made: Made[] = [
    await makeObject(t, 'msg', { mode: 0o640, n: 2 }),
    await makeObject(t, 'msg', { mode: 0o600, uid: OWNER }),
    await makeObject(t, 'sem', { mode: 0o604, n: 3 }),
  ]
  const seg = await holdObject(t, 'shm', 'hold', { mode: 0o660, n: 8192 })
  made.push(seg)
  const formats = [[], ['-c'], ['-p'], ['-t'], ['-q'], ['-s'], ['-m'], ['-q', '-t'], ['-m', '-p'], ['-s', '-c'], ['-a']]
  for (const args of formats) {
    const theirs = spawnSync('ipcs', args, { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' } })
    const mine = ipckit('ipcs', ...args)
    t.is(mine.code, 0)
    t.is(ours(mine.stdout, made), ours(theirs.stdout, made), `ipcs ${args.join(' ')}`)
  }
  // Every object of ours has its row in the default listing.
  const rows = ours(ipckit('ipcs').stdout, made).split('\n').filter((l) => l.startsWith('0x'))
  t.is(rows.length, made.length)
})

compareTest(compareTitle('ipcs -l prints the same limits as util-linux ipcs -l'), (t) => {
  for (const args of [['-l'], ['-q', '-l'], ['-m', '-l'], ['-s', '-l']]) {
    const theirs = spawnSync('ipcs', args, { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' } })
    const mine = ipckit('ipcs', ...args)
    t.is(mine.code, 0)
    t.is(mine.stdout, theirs.stdout, `ipcs ${args.join(' ')}`)
  }
})

test('ipcs --json parses and matches the library result', async (t) => {
  const made = [await makeObject(t, 'msg', { n: 1 }), await makeObject(t, 'sem', { n: 2 }), await makeObject(t, 'shm')]
  const r = ipckit('ipcs', '--json')
  t.is(r.code, 0)
  const fromCli = JSON.parse(r.stdout) as Array<{ type: string; id: number }>
  const fromLib = JSON.parse(JSON.stringify(ipcs())) as Array<{ type: string; id: number }>
  for (const m of made) {
    const a = fromCli.find((e) => e.type === m.type && e.id === m.id)
    const b = fromLib.find((e) => e.type === m.type && e.id === m.id)
    t.like(a, { type: m.type, id: m.id, key: m.key, cuid: process.getuid!() }, `${m.type} ${m.id} listed`)
    t.deepEqual(a, b)
  }
  const onlyQueues = JSON.parse(ipckit('ipcs', '-q', '--json').stdout) as Array<{ type: string; id: number }>
  t.true(onlyQueues.every((e) => e.type === 'msg'))
  t.true(onlyQueues.some((e) => e.id === made[0]!.id), 'the queue made above is listed')
  const lim = ipckit('ipcs', '-l', '--json')
  t.is(lim.code, 0)
  // Exact integers, also above 2^53.
  t.regex(lim.stdout, new RegExp(`"shmmax": ${readFileSync('/proc/sys/kernel/shmmax', 'utf8').trim()}\\b`))
  t.is(JSON.parse(lim.stdout).msgmax, Number(readFileSync('/proc/sys/kernel/msgmax', 'utf8')))
})

test('ipcrm removes by id (-q -s -m) and by key (-Q -S -M, hex or decimal)', async (t) => {
  const byId = [await makeObject(t, 'msg'), await makeObject(t, 'sem'), await makeObject(t, 'shm')]
  const byKey = [await makeObject(t, 'msg'), await makeObject(t, 'sem'), await makeObject(t, 'shm')]
  const r = ipckit(
    'ipcrm',
    '-q',
    String(byId[0]!.id),
    '-s',
    String(byId[1]!.id),
    `-m${byId[2]!.id}`,
    '-Q',
    `0x${byKey[0]!.key.toString(16)}`,
    '--semaphore-key',
    String(byKey[1]!.key),
    '-M',
    `0x${byKey[2]!.key.toString(16)}`,
  )
  t.is(r.stderr, '')
  t.is(r.code, 0)
  for (const m of [...byId, ...byKey]) t.false(keyExists(m.type, m.key), `${m.type} ${m.id}`)
})

test('ipcrm reports each failure as util-linux does and exits 1, still removing the rest', async (t) => {
  const q = await makeObject(t, 'msg')
  const gone = await makeObject(t, 'sem')
  ipckit('ipcrm', '-s', String(gone.id))
  const unused = `0x${freshKey('msg').toString(16)}`
  const r = ipckit('ipcrm', '-s', String(gone.id), '-Q', unused, '-q', String(q.id), '-M', '0')
  t.is(r.code, 1)
  t.false(keyExists('msg', q.key))
  t.regex(r.stderr, new RegExp(`^ipcrm: invalid id \\(${gone.id}\\)$`, 'm'))
  t.true(r.stderr.split('\n').includes(`ipcrm: invalid key (${unused})`))
  t.regex(r.stderr, /^ipcrm: illegal key \(0\)$/m)

  const v = await makeObject(t, 'shm')
  const verbose = ipckit('ipcrm', '-v', '-m', String(v.id))
  t.is(verbose.code, 0)
  t.is(verbose.stdout, `removing shared memory segment id \`${v.id}'\n`)

  const old = await makeObject(t, 'msg')
  const oldForm = ipckit('ipcrm', 'msg', String(old.id))
  t.is(oldForm.code, 0)
  t.is(oldForm.stdout, 'resource(s) deleted\n')
  t.false(keyExists('msg', old.key))
})

test('ipcrm --all [type] --owner removes only that owner\'s objects', async (t) => {
  const msg = await makeObject(t, 'msg', { uid: ALL_OWNER })
  const sem = await makeObject(t, 'sem', { uid: ALL_OWNER })
  const shm = await makeObject(t, 'shm', { uid: ALL_OWNER })
  const mine = await makeObject(t, 'msg')
  const first = ipckit('ipcrm', '--all', 'msg', '--owner', String(ALL_OWNER), '-v')
  t.is(first.code, 0)
  t.is(first.stdout, `removing message queue id \`${msg.id}'\n`)
  t.false(keyExists('msg', msg.key))
  t.true(keyExists('sem', sem.key))
  const second = ipckit('ipcrm', `--all`, `--owner=${ALL_OWNER}`)
  t.is(second.code, 0)
  t.false(keyExists('sem', sem.key))
  t.false(keyExists('shm', shm.key))
  t.true(keyExists('msg', mine.key))
})

anyTest('--help, --version, bad usage and exit codes', (t) => {
  for (const args of [['--help'], ['ipcs', '--help'], ['ipcs', '-h'], ['ipcrm', '--help']]) {
    const r = ipckit(...args)
    t.is(r.code, 0, args.join(' '))
    t.regex(r.stdout, /Usage:/)
  }
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string; bin: Record<string, string> }
  t.is(ipckit('--version').stdout, `ipckit ${pkg.version}\n`)
  t.is(pkg.bin.ipckit, 'dist/cli.js')
  t.true(readFileSync(CLI, 'utf8').startsWith('#!/usr/bin/env node\n'))

  const bad: Array<[string[], RegExp]> = [
    [['ipcs', '-z'], /^ipcs: invalid option -- 'z'\nTry 'ipckit ipcs --help' for more information\.\n$/],
    [['ipcs', '--bogus'], /^ipcs: unrecognized option '--bogus'/],
    [['ipcs', 'extra'], /^ipcs: unknown argument: extra/],
    [['ipcrm'], /^ipcrm: bad usage/],
    [['ipcrm', '-q'], /^ipcrm: option requires an argument -- 'q'/],
    [['ipcrm', '-q', 'abc'], /^ipcrm: failed to parse argument: 'abc'/],
    [['ipcrm', '--all=bogus'], /^ipcrm: unknown argument: bogus/],
    [['ipcrm', '--owner', '0', '-q', '999999999'], /--owner needs --all/],
    [['frobnicate'], /^ipckit: unknown command 'frobnicate'/],
    [[], /^ipckit: missing command/],
  ]
  for (const [args, stderr] of bad) {
    const r = ipckit(...args)
    t.is(r.code, 1, args.join(' '))
    t.regex(r.stderr, stderr, args.join(' '))
  }
})

notLinux(anyTest)('without /proc/sysvipc, ipcs and ipcs -l exit 1 saying System V IPC is not available', (t) => {
  for (const args of [['ipcs'], ['ipcs', '-q'], ['ipcs', '-l'], ['ipcs', '--json']]) {
    const r = ipckit(...args)
    t.is(r.code, 1, args.join(' '))
    t.is(r.stdout, '', args.join(' '))
    t.regex(r.stderr, /^ipckit: System V IPC is not available on this system .*ENOSYS/, args.join(' '))
  }
})
