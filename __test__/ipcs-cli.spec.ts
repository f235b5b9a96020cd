import { execFile, spawnSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

import anyTest, { type ExecutionContext } from 'ava'

import { ipcs } from '../ts/index'
import { ROOT, freshKey, keyExists, linuxOnly, notLinux, onLinux, removeBuilds, tempDir } from './helpers'
import type { CompareJob, CompareRun, Side } from './helpers/cli-compare'
import { makeObject, sysvmk } from './helpers/sysv-objects'

/** The CLI lists from /proc/sysvipc, as util-linux ipcs does: off Linux it exits 1 (tested below). */
const test = linuxOnly(
  anyTest,
  'ipcs reads /proc/sysvipc, and the output is compared with util-linux ipcs: macOS has neither',
)

anyTest.after.always(() => removeBuilds())

const CLI = join(ROOT, 'ts', 'cli.ts')
const TSX_CJS = require.resolve('tsx/cjs')
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

/**
 * Why ipckit's CLI cannot be compared with util-linux here, or undefined when it can: both run
 * in one private IPC namespace (`unshare --ipc`, root), on objects made there, so that nothing
 * else on the machine appears or vanishes between the two runs.
 */
function cannotCompare(): string | undefined {
  for (const tool of ['ipcs', 'ipcrm', 'unshare']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `util-linux ${tool} is not installed`
  }
  const version = spawnSync('ipcs', ['--version'], { encoding: 'utf8' }).stdout
  if (!/util-linux/.test(version)) return `ipcs is not util-linux's (${version.trim()})`
  const probe = spawnSync('unshare', ['--ipc', '--fork', 'true'], { encoding: 'utf8' })
  if (probe.status !== 0) return `unshare --ipc failed (it needs root): ${probe.stderr.trim()}`
  return undefined
}
const whyNotCompare = onLinux ? cannotCompare() : undefined
const compareTest = (title: string, impl: (t: ExecutionContext) => Promise<void>) =>
  whyNotCompare === undefined ? test(title, impl) : anyTest.skip(`${title} [skipped: ${whyNotCompare}]`, () => {})

const DRIVER = join(__dirname, 'helpers', 'cli-compare.ts')

/** Runs the cases in a fresh IPC namespace (see helpers/cli-compare.ts) and returns what each side printed. */
function inNamespace(t: ExecutionContext, sides: Side[], cases: CompareJob['cases']): Promise<CompareRun[]> {
  const dir = tempDir('ipckit-cli-compare-')
  t.teardown(dir.remove)
  const job: CompareJob = { sysvmk: sysvmk(), sides, cases }
  writeFileSync(join(dir.path, 'job.json'), JSON.stringify(job))
  return new Promise((resolve, reject) => {
    execFile(
      'unshare',
      ['--ipc', '--fork', process.execPath, '--require', TSX_CJS, DRIVER, join(dir.path, 'job.json')],
      { encoding: 'utf8', maxBuffer: 64 << 20, env: { ...process.env, NODE_OPTIONS: '' } },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`the comparison driver failed: ${err.message}\n${stderr}`))
        else resolve(JSON.parse(stdout) as CompareRun[])
      },
    )
  })
}

/**
 * ipckit's stderr as util-linux's would read: the one deliberate difference is the command to
 * ask for help (`Try 'ipckit ipcrm --help'`, since that is how ipckit's is run).
 */
const asUtilLinux = (stderr: string) => stderr.replace(/^Try 'ipckit (ipcs|ipcrm) --help'/gm, "Try '$1 --help'")

/** Compares each case's util-linux run with ipckit's: exit code, stdout, stderr, and (ipcrm) what is left. */
function sameAsUtilLinux(t: ExecutionContext, theirs: CompareRun[], mine: CompareRun[]): void {
  t.is(mine.length, theirs.length)
  for (const [i, a] of theirs.entries()) {
    const b = mine[i]!
    const what = `${a.tool} ${a.args.map((x) => JSON.stringify(x)).join(' ')}`
    t.is(b.code, a.code, `${what}: exit code`)
    t.is(b.stdout, a.stdout, `${what}: stdout`)
    t.is(asUtilLinux(b.stderr), a.stderr, `${what}: stderr`)
    t.is(b.after, a.after, `${what}: the objects left`)
  }
}

/** Every ipcs option of util-linux 2.38-2.40 (`ipcs --help`), alone and combined, and its errors. */
const IPCS_CASES: string[][] = [
  [],
  ['extra', 'words'],
  ...[['-q'], ['-m'], ['-s'], ['-q', '-s'], ['--queues', '--shmems', '--semaphores'], ['-a']].flatMap((types) =>
    [
      [],
      ['-t'],
      ['-p'],
      ['-c'],
      ['-l'],
      ['-u'],
      ['-b'],
      ['--human'],
      ['-l', '-b'],
      ['-l', '--human'],
      ['-u', '-b'],
      ['-u', '--human'],
      ['-c', '-b'],
      ['--time', '--pid'],
    ].map((output) => [...types, ...output]),
  ),
  ['--limits'],
  ['--summary'],
  ['--bytes'],
  ['--hum'],
  ['-tpcl'],
  ['-lu'],
  // -i: every type, units, not found, bad ids, and the resource rules.
  ['-q', '-i', '0'],
  ['-q', '-i', '1'],
  ['-q', '-i', '1', '-b'],
  ['-q', '-i', '1', '--human'],
  ['-q', '--id', '2'],
  ['-m', '-i', '0'],
  ['-m', '-i', '1', '--human'],
  ['-m', '-i', '2', '-b'],
  ['-m', '-i', '3'],
  ['-s', '-i', '0'],
  ['-s', '-i', '1', '--human'],
  ['--semaphores', '--id=0'],
  ['-si0'],
  ['-q', '-i', '0', '-t'],
  ['-q', '-i', '77'],
  ['-q', '-i', '-1'],
  ['-m', '-i', '-5'],
  // (-s -i with a negative id: util-linux 2.38-2.40 crashes on it, SIGSEGV; ipckit says it is not found.)
  ['-q', '-i', ' 1'],
  ['-q', '-i', '+1'],
  ['-i', '0'],
  ['-q', '-s', '-i', '0'],
  ['-a', '-i', '0'],
  ['-q', '-i', 'abc'],
  ['-q', '-i', ''],
  ['-q', '-i', '1x'],
  ['-q', '-i', '99999999999'],
  ['-q', '-i', '99999999999999999999999'],
  // getopt's complaints
  ['-z'],
  ['-q', '-z'],
  ['--bogus'],
  ['--s'],
  ['--s=1'],
  ['--time=3'],
  ['-i'],
  ['--id'],
  ['-q', '--i', '0'],
  ['--', '-q'],
]

compareTest(
  'ipcs: every option of util-linux ipcs, alone and combined, prints byte for byte what util-linux prints, with the same exit code',
  async (t) => {
    const runs = await inNamespace(
      t,
      ['util-linux', 'ipckit'],
      IPCS_CASES.map((args) => ({ tool: 'ipcs' as const, args })),
    )
    const theirs = runs.filter((r) => r.side === 'util-linux')
    sameAsUtilLinux(
      t,
      theirs,
      runs.filter((r) => r.side === 'ipckit'),
    )
    // The objects are there to be shown: not a comparison of two empty listings.
    const listing = theirs.find((r) => r.args.length === 0)!.stdout
    t.is(listing.split('\n').filter((l) => l.startsWith('0x')).length, 9, listing)
    t.regex(
      theirs.find((r) => r.args.join(' ') === '-s -i 0')!.stdout,
      /^1 {10}0 {10}1 {10}0 /m,
      'a semaphore with a waiter',
    )
    t.regex(
      theirs.find((r) => r.args.join(' ') === '-m -i 3')!.stdout,
      /^mode=01600\t/m,
      'a segment marked for removal',
    )
  },
)

/** Every ipcrm option of util-linux 2.38-2.40 (`ipcrm --help`), its old form and its errors; each case starts from the same objects. */
const IPCRM_CASES: string[][] = [
  [],
  ['-v'],
  ['-q', '0'],
  ['-v', '-q', '0', '-s', '1', '-m2'],
  ['--verbose', '--queue-id', '1', '--semaphore-id=0', '--shmem-id', '1'],
  ['-v', '-Q', '0x1000', '--semaphore-key', '8193', '-M', '0x3001', '--queue-key=4097'],
  ['-v', '-M', '0x3000'],
  ['-Q', '010000'],
  ['-Q', '-1'],
  ['-Q', '0x100001000'],
  ['-Q', ' 0x1000'],
  ['-v', '-q', '999', '-Q', '0x7777', '-M', '0', '-s', '0'],
  ['-m', '3'],
  ['-q', 'abc'],
  ['-q', ''],
  ['-q', '99999999999'],
  ['-q', ' 1'],
  ['-q', '+1'],
  ['-q', '-1'],
  ['-Q', ''],
  ['-Q', 'zz'],
  ['-Q', '0x1000z'],
  ['-Q', '99999999999999999999999'],
  ['msg', '0', '-5', 'abc', '4294967297', '', ' ', '+'],
  ['msg', '1'],
  ['shm', '0', '1'],
  ['sem', '1', '0'],
  ['sem'],
  ['-v', '-a'],
  ['-v', '--all=msg'],
  ['-v', '-asem'],
  ['-v', '--all=shm'],
  ['--all'],
  ['--all=bogus'],
  ['-a=msg'],
  ['-abc'],
  ['-v', '-q', '0', 'extra', '-s', '0'],
  ['-v', '-a', '', '-q', '0'],
  ['-q', '0', '-z', '-s', '0'],
  ['-q', '0', '--bogus'],
  ['--s', '1'],
  ['--sh', '1'],
  ['--verbose=1'],
  ['--queue-id'],
  ['-q'],
  ['-q', '0', '-v', '-q', '1'],
  ['--', '-q', '0'],
]

compareTest(
  'ipcrm: every option of util-linux ipcrm prints what util-linux prints, exits as it does and removes the same objects',
  async (t) => {
    const cases = IPCRM_CASES.map((args) => ({ tool: 'ipcrm' as const, args, fresh: true }))
    // The same history in two namespaces: the same objects under the same ids in each.
    const [theirs, mine] = await Promise.all([inNamespace(t, ['util-linux'], cases), inNamespace(t, ['ipckit'], cases)])
    sameAsUtilLinux(t, theirs, mine)
    // Removals happened: not a comparison of two runs that removed nothing.
    const all = theirs.find((r) => r.args.join(' ') === '-v -a')!
    t.is(
      all.after!.split('\n').filter((l) => / dest +$/.test(l)).length,
      2,
      'only the two segments still attached are left, marked for removal',
    )
    t.is(all.after!.split('\n').filter((l) => l.startsWith('0x')).length, 2, all.after)
    t.is(all.stdout.split('\n').filter((l) => l.startsWith('removing ')).length, 9)
    t.is(theirs.find((r) => r.args.length === 0)!.code, 0, 'a bare ipcrm exits 0')
  },
)

compareTest(
  'ipcrm --all msg (a space, not =) removes only the queues, where util-linux removes everything and then complains',
  async (t) => {
    const cases = [{ tool: 'ipcrm' as const, args: ['-v', '--all', 'msg'] }]
    const [[theirs], [mine]] = await Promise.all([
      inNamespace(t, ['util-linux'], cases),
      inNamespace(t, ['ipckit'], cases),
    ])
    t.is(theirs!.code, 1)
    t.is(theirs!.stderr, "ipcrm: unknown argument: msg\nTry 'ipcrm --help' for more information.\n")
    t.is(
      theirs!.stdout.split('\n').filter((l) => l.startsWith('removing ')).length,
      9,
      'util-linux removed every object',
    )
    t.is(mine!.code, 0)
    t.is(mine!.stderr, '')
    t.is(mine!.stdout, "removing message queue id `0'\nremoving message queue id `1'\nremoving message queue id `2'\n")
    t.false(/^------ Message Queues --------\n.*\n0x/m.test(mine!.after!), 'no queue is left')
    t.is(
      mine!.after!.split('\n').filter((l) => l.startsWith('0x')).length,
      6,
      'the segments and semaphore sets are left',
    )
  },
)

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
  t.true(
    onlyQueues.some((e) => e.id === made[0]!.id),
    'the queue made above is listed',
  )
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

test("ipcrm --all [type] --owner removes only that owner's objects", async (t) => {
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
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
    version: string
    bin: Record<string, string>
  }
  t.is(ipckit('--version').stdout, `ipckit ${pkg.version}\n`)
  t.is(pkg.bin.ipckit, 'dist/cli.js')
  t.true(readFileSync(CLI, 'utf8').startsWith('#!/usr/bin/env node\n'))

  const bad: Array<[string[], RegExp]> = [
    [['ipcs', '-z'], /^ipcs: invalid option -- 'z'\nTry 'ipckit ipcs --help' for more information\.\n$/],
    [['ipcs', '--bogus'], /^ipcs: unrecognized option '--bogus'/],
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
  // util-linux crashes (SIGSEGV) on a negative semaphore id; ipckit says it is not found, as for any missing id.
  t.like(ipckit('ipcs', '-s', '-i', '-1'), { code: 0, stdout: '', stderr: 'ipcs: id -1 not found\n' })
  // A bare ipcrm does nothing, successfully, as util-linux's.
  t.like(ipckit('ipcrm'), { code: 0, stdout: '', stderr: '' })
})

notLinux(anyTest)('without /proc/sysvipc, ipcs and ipcs -l exit 1 saying System V IPC is not available', (t) => {
  for (const args of [['ipcs'], ['ipcs', '-q'], ['ipcs', '-l'], ['ipcs', '--json']]) {
    const r = ipckit(...args)
    t.is(r.code, 1, args.join(' '))
    t.is(r.stdout, '', args.join(' '))
    t.regex(r.stderr, /^ipckit: System V IPC is not available on this system .*ENOSYS/, args.join(' '))
  }
})
