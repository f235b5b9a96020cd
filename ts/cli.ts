#!/usr/bin/env node
/**
 * The `ipckit` command: `ipckit ipcs` and `ipckit ipcrm`, laid out like util-linux `ipcs(1)`
 * and `ipcrm(1)` (same sections, headers and columns, same exit codes: 0 on success, 1 on any
 * failure or bad usage), plus `--json` for machines.
 *
 * @example
 * ```sh
 * npx ipckit ipcs -q            # message queues, as `ipcs -q` prints them
 * npx ipckit ipcs --json        # every object, as the `ipcs()` function returns them
 * npx ipckit ipcrm -Q 0x1234    # remove the queue with key 0x1234
 * ```
 *
 * @module
 */

import { IpcError } from './errors'
import { ipcrm, ipcs, limits } from './ipcs'
import type { IpcType, IpcsEntry, Limits } from './ipcs'
import { PosixMessageQueue, listPosixQueues, posixQueueLimits } from './posix-queue'
import type { PosixQueueEntry } from './posix-queue'

/** Where {@link main} writes. */
export interface CliIo {
  out(text: string): void
  err(text: string): void
}

const EXIT_SUCCESS = 0
const EXIT_FAILURE = 1

const VERSION: string = (() => {
  try {
    return (require('../package.json') as { version: string }).version
  } catch {
    return 'unknown'
  }
})()

const MAIN_USAGE = `
Usage:
 ipckit <command> [options]

Commands:
 ipcs      show System V IPC facilities (as ipcs(1))
 ipcrm     remove System V IPC facilities (as ipcrm(1))
 mq        show or remove POSIX message queues (/dev/mqueue)

 -h, --help     display this help
 -V, --version  display version

Run 'ipckit <command> --help' for the options of a command.
`

const IPCS_USAGE = `
Usage:
 ipckit ipcs [resource-option...] [output-option] [--json]

Show information on System V IPC facilities.

Options:
     --json        print the objects (or the limits) as JSON
 -h, --help        display this help
 -V, --version     display version

Resource options:
 -m, --shmems      shared memory segments
 -q, --queues      message queues
 -s, --semaphores  semaphores
 -a, --all         all (default)

Output options:
 -t, --time        show attach, detach and change times
 -p, --pid         show PIDs of creator and last operator
 -c, --creator     show creator and owner
 -l, --limits      show resource limits

For more details see ipcs(1).
`

const IPCRM_USAGE = `
Usage:
 ipckit ipcrm [options]
 ipckit ipcrm shm|msg|sem <id>...

Remove certain System V IPC resources.

Options:
 -m, --shmem-id <id>        remove shared memory segment by id
 -M, --shmem-key <key>      remove shared memory segment by key
 -q, --queue-id <id>        remove message queue by id
 -Q, --queue-key <key>      remove message queue by key
 -s, --semaphore-id <id>    remove semaphore by id
 -S, --semaphore-key <key>  remove semaphore by key
 -a, --all[=shm|msg|sem]    remove all (in the specified category)
     --owner <user>         with --all: only objects owned by <user> (name or uid)
 -v, --verbose              explain what is being done

 -h, --help                 display this help
 -V, --version              display version

For more details see ipcrm(1).
`

const MQ_USAGE = `
Usage:
 ipckit mq [--json] [--dir <dir>]
 ipckit mq --limits [--json]
 ipckit mq --unlink <name>...

Show or remove POSIX message queues (the mqueue file system, usually /dev/mqueue).

Options:
     --json             print the queues (or the limits) as JSON
     --dir <dir>        where the mqueue file system is mounted
                        (default: found in /proc/self/mountinfo)
 -l, --limits           show the limits (/proc/sys/fs/mqueue, RLIMIT_MSGQUEUE)
 -u, --unlink <name>    remove the queue <name> (mq_unlink); may be repeated
 -h, --help             display this help
 -V, --version          display version
`

/** Thrown to stop with an exit code after a message was written. */
class Exit {
  constructor(readonly code: number) {}
}

function usageError(io: CliIo, prog: string, message: string): never {
  io.err(`${prog}: ${message}\nTry 'ipckit ${prog} --help' for more information.\n`)
  throw new Exit(EXIT_FAILURE)
}

interface Option {
  short?: string
  long: string
  /** 'none', 'required' or 'optional' (optional arguments only attached: `-aX`, `--all=X`). */
  arg: 'none' | 'required' | 'optional'
}

interface Parsed {
  /** The options in command-line order, with their arguments. */
  options: Array<{ name: string; value?: string }>
  /** Arguments that are not options. */
  rest: string[]
}

/** getopt_long, as util-linux uses it: clustered short options, `--long=value`, `--`. */
function getopt(io: CliIo, prog: string, args: string[], spec: Option[]): Parsed {
  const options: Parsed['options'] = []
  const rest: string[] = []
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!
    if (a === '--') {
      rest.push(...args.slice(i + 1))
      break
    }
    if (a.startsWith('--')) {
      const eq = a.indexOf('=')
      const name = a.slice(2, eq < 0 ? undefined : eq)
      const matches = spec.filter((o) => o.long.startsWith(name))
      const opt = spec.find((o) => o.long === name) ?? (matches.length === 1 ? matches[0] : undefined)
      if (!opt) usageError(io, prog, matches.length > 1 ? `option '${a}' is ambiguous` : `unrecognized option '${a}'`)
      let value = eq < 0 ? undefined : a.slice(eq + 1)
      if (opt.arg === 'none' && value !== undefined) usageError(io, prog, `option '--${opt.long}' doesn't allow an argument`)
      if (opt.arg === 'required' && value === undefined) {
        if (i + 1 >= args.length) usageError(io, prog, `option '--${opt.long}' requires an argument`)
        value = args[++i]
      }
      options.push({ name: opt.long, value })
      continue
    }
    if (a.startsWith('-') && a.length > 1) {
      for (let j = 1; j < a.length; j++) {
        const c = a[j]!
        const opt = spec.find((o) => o.short === c)
        if (!opt) usageError(io, prog, `invalid option -- '${c}'`)
        if (opt.arg === 'none') {
          options.push({ name: opt.long })
          continue
        }
        let value: string | undefined = a.slice(j + 1) || undefined
        if (value === undefined && opt.arg === 'required') {
          if (i + 1 >= args.length) usageError(io, prog, `option requires an argument -- '${c}'`)
          value = args[++i]
        }
        options.push({ name: opt.long, value })
        break
      }
      continue
    }
    rest.push(a)
  }
  return { options, rest }
}

// ---------------------------------------------------------------------------------------
// printf-like helpers for util-linux's layouts

/** `%-Ns`. */
const left = (v: string | number, width: number) => String(v).padEnd(width)
/** `%-N.Ns`. */
const leftCut = (v: string, width: number) => v.slice(0, width).padEnd(width)
/** `%Nd`. */
const right = (v: number, width: number) => String(v).padStart(width)
const octal = (mode: number) => (mode & 0o777).toString(8)
const hexKey = (key: number) => `0x${(key >>> 0).toString(16).padStart(8, '0')}`

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat']
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']
const two = (n: number) => String(n).padStart(2, '0')

/** `ctime(3)` without the newline, in local time: `Wed Nov 25 06:31:21 2026`. */
function ctime(d: Date): string {
  return (
    `${DAYS[d.getDay()]} ${MONTHS[d.getMonth()]} ${String(d.getDate()).padStart(2)} ` +
    `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())} ${d.getFullYear()}`
  )
}

/** `%-20.16s` of `ctime() + 4`, or `Not set`. */
const shortTime = (d: Date | null) => left(d ? ctime(d).slice(4, 20) : 'Not set', 20)
/** `%-26.24s` of `ctime()`, or `Not set`. */
const longTime = (d: Date | null) => left(d ? ctime(d).slice(0, 24) : 'Not set', 26)

/** The owner column: `%-10.10s` of the name, or `%-10u` of the uid. */
const ownerColumn = (e: IpcsEntry) => (e.owner !== null ? leftCut(e.owner, 10) : left(e.uid, 10))

/** The creator/owner row, shared by the three types (ipc_print_perms). */
function permsRow(e: IpcsEntry): string {
  const name = (n: string | null, id: number) => left(n ?? id, 10)
  return (
    `${left(e.id, 10)} ${left(octal(e.mode), 10)} ${name(e.creator, e.cuid)} ${name(e.creatorGroup, e.cgid)}` +
    ` ${name(e.owner, e.uid)} ${name(e.ownerGroup, e.gid)}\n`
  )
}

type Format = 'default' | 'creator' | 'pid' | 'time' | 'limits'

function msgSection(format: Format, entries: IpcsEntry[], lim?: Limits<bigint>): string {
  let s = ''
  switch (format) {
    case 'limits':
      if (!lim) return ''
      return (
        '------ Messages Limits --------\n' +
        `max queues system wide = ${lim.msgmni}\n` +
        `max size of message (bytes) = ${lim.msgmax}\n` +
        `default max size of queue (bytes) = ${lim.msgmnb}\n`
      )
    case 'creator':
      s += '------ Message Queues Creators/Owners --------\n'
      s += `${['msqid', 'perms', 'cuid', 'cgid', 'uid', 'gid'].map((h) => left(h, 10)).join(' ')}\n`
      break
    case 'time':
      s += '------ Message Queues Send/Recv/Change Times --------\n'
      s += `${left('msqid', 8)} ${left('owner', 10)} ${left('send', 20)} ${left('recv', 20)} ${left('change', 20)}\n`
      break
    case 'pid':
      s += '------ Message Queues PIDs --------\n'
      s += `${['msqid', 'owner', 'lspid', 'lrpid'].map((h) => left(h, 10)).join(' ')}\n`
      break
    default:
      s += '------ Message Queues --------\n'
      s += `${['key', 'msqid', 'owner', 'perms'].map((h) => left(h, 10)).join(' ')} ${left('used-bytes', 12)} ${left('messages', 12)}\n`
  }
  for (const e of entries) {
    if (e.type !== 'msg') continue
    if (format === 'creator') s += permsRow(e)
    else if (format === 'time')
      s += `${left(e.id, 8)} ${ownerColumn(e)} ${shortTime(e.lastSendTime)} ${shortTime(e.lastReceiveTime)} ${shortTime(e.changeTime)}\n`
    else if (format === 'pid')
      s += `${left(e.id, 8)} ${ownerColumn(e)}  ${right(e.lastSendPid, 5)}     ${right(e.lastReceivePid, 5)}\n`
    else
      s += `${hexKey(e.key)} ${left(e.id, 10)} ${ownerColumn(e)} ${left(octal(e.mode), 10)} ${left(e.bytes, 12)} ${left(e.messages, 12)}\n`
  }
  return s
}

function shmSection(format: Format, entries: IpcsEntry[], lim?: Limits<bigint>): string {
  let s = ''
  switch (format) {
    case 'limits': {
      if (!lim) return ''
      // (shmall * pageSize / 1024) kbytes, saturated as util-linux does.
      const MAX = 2n ** 64n - 1n
      const perPage = lim.pageSize / 1024n
      let total = lim.shmall * perPage
      if (total > MAX) total = MAX - (MAX % perPage)
      return (
        '------ Shared Memory Limits --------\n' +
        `max number of segments = ${lim.shmmni}\n` +
        `max seg size (kbytes) = ${lim.shmmax / 1024n}\n` +
        `max total shared memory (kbytes) = ${total}\n` +
        `min seg size (bytes) = ${lim.shmmin}\n`
      )
    }
    case 'creator':
      s += '------ Shared Memory Segment Creators/Owners --------\n'
      s += `${['shmid', 'perms', 'cuid', 'cgid', 'uid', 'gid'].map((h) => left(h, 10)).join(' ')}\n`
      break
    case 'time':
      s += '------ Shared Memory Attach/Detach/Change Times --------\n'
      s += `${left('shmid', 10)} ${left('owner', 10)} ${left('attached', 20)} ${left('detached', 20)} ${left('changed', 20)}\n`
      break
    case 'pid':
      s += '------ Shared Memory Creator/Last-op PIDs --------\n'
      s += `${['shmid', 'owner', 'cpid', 'lpid'].map((h) => left(h, 10)).join(' ')}\n`
      break
    default:
      s += '------ Shared Memory Segments --------\n'
      s += `${['key', 'shmid', 'owner', 'perms', 'bytes', 'nattch'].map((h) => left(h, 10)).join(' ')} ${left('status', 12)}\n`
  }
  for (const e of entries) {
    if (e.type !== 'shm') continue
    if (format === 'creator') s += permsRow(e)
    else if (format === 'time')
      s += `${left(e.id, 10)} ${ownerColumn(e)} ${shortTime(e.attachTime)} ${shortTime(e.detachTime)} ${shortTime(e.changeTime)}\n`
    else if (format === 'pid') s += `${left(e.id, 10)} ${ownerColumn(e)} ${left(e.creatorPid, 10)} ${left(e.lastPid, 10)}\n`
    else
      s +=
        `${hexKey(e.key)} ${left(e.id, 10)} ${ownerColumn(e)} ${left(octal(e.mode), 10)} ${left(e.size, 10)}` +
        ` ${left(e.attachments, 10)} ${left(e.destroyed ? 'dest' : ' ', 6)} ${left(e.locked ? 'locked' : ' ', 6)}\n`
  }
  return s
}

function semSection(format: Format, entries: IpcsEntry[], lim?: Limits<bigint>): string {
  let s = ''
  switch (format) {
    case 'limits':
      if (!lim) return ''
      return (
        '------ Semaphore Limits --------\n' +
        `max number of arrays = ${lim.semmni}\n` +
        `max semaphores per array = ${lim.semmsl}\n` +
        `max semaphores system wide = ${lim.semmns}\n` +
        `max ops per semop call = ${lim.semopm}\n` +
        `semaphore max value = ${lim.semvmx}\n`
      )
    case 'pid':
      // util-linux prints nothing for semaphores with -p.
      return ''
    case 'creator':
      s += '------ Semaphore Arrays Creators/Owners --------\n'
      s += `${['semid', 'perms', 'cuid', 'cgid', 'uid', 'gid'].map((h) => left(h, 10)).join(' ')}\n`
      break
    case 'time':
      s += '------ Semaphore Operation/Change Times --------\n'
      s += `${left('semid', 8)} ${left('owner', 10)} ${left('last-op', 26)} ${left('last-changed', 26)}\n`
      break
    default:
      s += '------ Semaphore Arrays --------\n'
      s += `${['key', 'semid', 'owner', 'perms', 'nsems'].map((h) => left(h, 10)).join(' ')}\n`
  }
  for (const e of entries) {
    if (e.type !== 'sem') continue
    if (format === 'creator') s += permsRow(e)
    else if (format === 'time') s += `${left(e.id, 8)} ${ownerColumn(e)}  ${longTime(e.lastOpTime)} ${longTime(e.changeTime)}\n`
    else s += `${hexKey(e.key)} ${left(e.id, 10)} ${ownerColumn(e)} ${left(octal(e.mode), 10)} ${left(e.count, 10)}\n`
  }
  return s
}

/** JSON text of the limits with exact integers (JSON numbers have no size limit). */
function limitsJson(lim: Limits<bigint>): string {
  const fields = Object.entries(lim).map(([k, v]) => `  ${JSON.stringify(k)}: ${v.toString()}`)
  return `{\n${fields.join(',\n')}\n}\n`
}

function ipcsCommand(args: string[], io: CliIo): number {
  const prog = 'ipcs'
  const { options, rest } = getopt(io, prog, args, [
    { short: 'q', long: 'queues', arg: 'none' },
    { short: 'm', long: 'shmems', arg: 'none' },
    { short: 's', long: 'semaphores', arg: 'none' },
    { short: 'a', long: 'all', arg: 'none' },
    { short: 't', long: 'time', arg: 'none' },
    { short: 'p', long: 'pid', arg: 'none' },
    { short: 'c', long: 'creator', arg: 'none' },
    { short: 'l', long: 'limits', arg: 'none' },
    { long: 'json', arg: 'none' },
    { short: 'h', long: 'help', arg: 'none' },
    { short: 'V', long: 'version', arg: 'none' },
  ])
  const want = new Set<IpcType>()
  let format: Format = 'default'
  let json = false
  for (const { name } of options) {
    switch (name) {
      case 'help':
        io.out(IPCS_USAGE)
        return EXIT_SUCCESS
      case 'version':
        io.out(`ipckit ipcs ${VERSION}\n`)
        return EXIT_SUCCESS
      case 'queues':
        want.add('msg')
        break
      case 'shmems':
        want.add('shm')
        break
      case 'semaphores':
        want.add('sem')
        break
      case 'all':
        for (const t of ['msg', 'shm', 'sem'] as const) want.add(t)
        break
      case 'time':
      case 'pid':
      case 'creator':
      case 'limits':
        format = name === 'time' ? 'time' : name === 'pid' ? 'pid' : name === 'creator' ? 'creator' : 'limits'
        break
      case 'json':
        json = true
        break
    }
  }
  if (rest.length > 0) usageError(io, prog, `unknown argument: ${rest[0]}`)
  if (want.size === 0) for (const t of ['msg', 'shm', 'sem'] as const) want.add(t)
  const order = (['msg', 'shm', 'sem'] as const).filter((t) => want.has(t))

  if (format === 'limits') {
    const lim = limits({ bigint: true })
    if (json) {
      io.out(limitsJson(lim))
      return EXIT_SUCCESS
    }
    let s = '\n'
    for (const t of order) s += `${section(t, 'limits', [], lim)}\n`
    io.out(s)
    return EXIT_SUCCESS
  }

  const entries = order.length === 3 ? ipcs() : order.flatMap((type) => ipcs({ type }))
  if (json) {
    io.out(`${JSON.stringify(entries, null, 2)}\n`)
    return EXIT_SUCCESS
  }
  let s = '\n'
  for (const t of order) s += `${section(t, format, entries)}\n`
  io.out(s)
  return EXIT_SUCCESS
}

function section(type: IpcType, format: Format, entries: IpcsEntry[], lim?: Limits<bigint>): string {
  if (type === 'msg') return msgSection(format, entries, lim)
  if (type === 'shm') return shmSection(format, entries, lim)
  return semSection(format, entries, lim)
}

/** `strtoul(s, 0)`: decimal, `0x` hex or `0` octal. */
function parseKey(s: string): number | undefined {
  const m = /^\s*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)$/.exec(s)
  if (!m) return undefined
  const digits = m[2]!
  let v = /^0[xX]/.test(digits) ? parseInt(digits.slice(2), 16) : digits.length > 1 && digits[0] === '0' ? parseInt(digits, 8) : parseInt(digits, 10)
  if (m[1] === '-') v = -v
  if (!Number.isSafeInteger(v) || v < -0x8000_0000 || v > 0xffff_ffff) return undefined
  return v >>> 0
}

/** `strtos32_or_err`. */
function parseId(s: string): number | undefined {
  if (!/^\s*[+-]?[0-9]+$/.test(s)) return undefined
  const v = Number(s)
  return Number.isSafeInteger(v) && v >= -0x8000_0000 && v <= 0x7fff_ffff ? v : undefined
}

const TYPE_WORDS: Record<IpcType, string> = {
  msg: 'message queue',
  sem: 'semaphore',
  shm: 'shared memory segment',
}

/** util-linux's words for a failed removal. */
function removalMessage(err: unknown, isKey: boolean): string {
  const code = err instanceof IpcError ? err.code : ''
  const what = isKey ? 'key' : 'id'
  switch (code) {
    case 'EACCES':
    case 'EPERM':
      return `permission denied for ${what}`
    case 'EINVAL':
    case 'ENOENT':
      return `invalid ${what}`
    case 'EIDRM':
      return `already removed ${what}`
    default:
      return `${what} failed: ${err instanceof Error ? err.message : String(err)}`
  }
}

function ipcrmCommand(args: string[], io: CliIo): number {
  const prog = 'ipcrm'
  if (args.length === 0) usageError(io, prog, 'bad usage')

  // The old form: `ipcrm shm|msg|sem <id>...`.
  if (args[0] === 'shm' || args[0] === 'msg' || args[0] === 'sem') {
    const type = args[0]
    if (args.length < 2) usageError(io, prog, 'not enough arguments')
    let failures = 0
    for (const a of args.slice(1)) {
      const id = parseId(a)
      if (id === undefined || id < 0) {
        io.err(`${prog}: invalid id: ${a}\n`)
        failures++
        continue
      }
      try {
        ipcrm({ type, id })
      } catch (err) {
        io.err(`${prog}: ${removalMessage(err, false)} (${id})\n`)
        failures++
      }
    }
    if (failures > 0) return EXIT_FAILURE
    io.out('resource(s) deleted\n')
    return EXIT_SUCCESS
  }

  const spec: Option[] = [
    { short: 'm', long: 'shmem-id', arg: 'required' },
    { short: 'M', long: 'shmem-key', arg: 'required' },
    { short: 'q', long: 'queue-id', arg: 'required' },
    { short: 'Q', long: 'queue-key', arg: 'required' },
    { short: 's', long: 'semaphore-id', arg: 'required' },
    { short: 'S', long: 'semaphore-key', arg: 'required' },
    { short: 'a', long: 'all', arg: 'optional' },
    { long: 'owner', arg: 'required' },
    { short: 'v', long: 'verbose', arg: 'none' },
    { short: 'h', long: 'help', arg: 'none' },
    { short: 'V', long: 'version', arg: 'none' },
  ]
  // `--all msg` (with a space) as well as util-linux's `--all=msg` / `-amsg`.
  const normalized: string[] = []
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!
    const next = args[i + 1]
    if ((a === '--all' || a === '-a') && (next === 'msg' || next === 'sem' || next === 'shm')) {
      normalized.push(`--all=${next}`)
      i++
    } else normalized.push(a)
  }
  const { options, rest } = getopt(io, prog, normalized, spec)
  if (options.some((o) => o.name === 'help')) {
    io.out(IPCRM_USAGE)
    return EXIT_SUCCESS
  }
  if (options.some((o) => o.name === 'version')) {
    io.out(`ipckit ipcrm ${VERSION}\n`)
    return EXIT_SUCCESS
  }
  if (rest.length > 0) usageError(io, prog, `unknown argument: ${rest[0]}`)
  const verbose = options.some((o) => o.name === 'verbose')
  const ownerOpt = options.filter((o) => o.name === 'owner').pop()?.value
  let owner: number | string | undefined
  if (ownerOpt !== undefined) {
    const asId = parseId(ownerOpt)
    owner = asId !== undefined && asId >= 0 ? asId : ownerOpt
  }

  if (ownerOpt !== undefined && !options.some((o) => o.name === 'all')) usageError(io, prog, '--owner needs --all')

  let failures = 0
  let all: IpcType | 'every' | undefined
  const types: Record<string, [IpcType, boolean]> = {
    'shmem-id': ['shm', false],
    'shmem-key': ['shm', true],
    'queue-id': ['msg', false],
    'queue-key': ['msg', true],
    'semaphore-id': ['sem', false],
    'semaphore-key': ['sem', true],
  }
  for (const { name, value } of options) {
    if (name === 'all') {
      if (value === undefined) all = 'every'
      else if (value === 'msg' || value === 'sem' || value === 'shm') all = value
      else {
        io.err(`${prog}: unknown argument: ${value}\n`)
        return EXIT_FAILURE
      }
      continue
    }
    const target = types[name]
    if (!target) continue
    const [type, isKey] = target
    const text = value!
    if (isKey) {
      const key = parseKey(text)
      if (key === undefined) {
        io.err(`${prog}: failed to parse argument: '${text}'\n`)
        return EXIT_FAILURE
      }
      if (key === 0) {
        io.err(`${prog}: illegal key (${text})\n`)
        failures++
        continue
      }
      try {
        const id = ipcrm({ type, key })
        if (verbose) io.out(`removing ${TYPE_WORDS[type]} id \`${id}'\n`)
      } catch (err) {
        io.err(`${prog}: ${removalMessage(err, true)} (${text})\n`)
        failures++
      }
    } else {
      const id = parseId(text)
      if (id === undefined) {
        io.err(`${prog}: failed to parse argument: '${text}'\n`)
        return EXIT_FAILURE
      }
      if (verbose) io.out(`removing ${TYPE_WORDS[type]} id \`${id}'\n`)
      if (id < 0) {
        // No object has a negative id; the kernel would say EINVAL.
        io.err(`${prog}: invalid id (${id})\n`)
        failures++
        continue
      }
      try {
        ipcrm({ type, id })
      } catch (err) {
        io.err(`${prog}: ${removalMessage(err, false)} (${id})\n`)
        failures++
      }
    }
  }
  if (all !== undefined) {
    const report = ipcrm({ all: true, type: all === 'every' ? undefined : all, owner })
    for (const e of report.removed) {
      if (verbose) io.out(`removing ${TYPE_WORDS[e.type]} id \`${e.id}'\n`)
    }
    for (const { entry, error } of report.failed) {
      io.err(`${prog}: ${removalMessage(error, false)} (${entry.id})\n`)
      failures++
    }
  }
  return failures === 0 ? EXIT_SUCCESS : EXIT_FAILURE
}

/** `%-N.Ns` of a name, or `%-Nu` of an id. */
const nameOrId = (name: string | null, id: number, width: number) => (name !== null ? leftCut(name, width) : left(id, width))
/** A count only the queues this process may open have: `-` for the others. */
const orDash = (v: number | null, width: number) => left(v === null ? '-' : v, width)

function mqRow(e: PosixQueueEntry): string {
  return (
    `${left(e.name, 24)} ${nameOrId(e.owner, e.uid, 10)} ${left(octal(e.mode), 6)} ${orDash(e.bytes, 12)} ` +
    `${orDash(e.messages, 10)} ${orDash(e.maxMessages, 10)} ${orDash(e.messageSize, 10)} ${e.notifyPid}\n`
  )
}

function mqCommand(args: string[], io: CliIo): number {
  const prog = 'mq'
  const { options, rest } = getopt(io, prog, args, [
    { long: 'json', arg: 'none' },
    { long: 'dir', arg: 'required' },
    { short: 'l', long: 'limits', arg: 'none' },
    { short: 'u', long: 'unlink', arg: 'required' },
    { short: 'h', long: 'help', arg: 'none' },
    { short: 'V', long: 'version', arg: 'none' },
  ])
  let json = false
  let dir: string | undefined
  let showLimits = false
  const unlink: string[] = []
  for (const { name, value } of options) {
    switch (name) {
      case 'help':
        io.out(MQ_USAGE)
        return EXIT_SUCCESS
      case 'version':
        io.out(`ipckit mq ${VERSION}\n`)
        return EXIT_SUCCESS
      case 'json':
        json = true
        break
      case 'dir':
        dir = value
        break
      case 'limits':
        showLimits = true
        break
      case 'unlink':
        unlink.push(value!)
        break
    }
  }
  if (rest.length > 0) usageError(io, prog, `unknown argument: ${rest[0]}`)
  if (unlink.length > 0) {
    let code = EXIT_SUCCESS
    for (const name of unlink) {
      try {
        PosixMessageQueue.unlink(name)
      } catch (err) {
        io.err(`ipckit mq: ${err instanceof Error ? err.message : String(err)}\n`)
        code = EXIT_FAILURE
      }
    }
    return code
  }
  if (showLimits) {
    const l = posixQueueLimits()
    if (json) {
      io.out(`${JSON.stringify(l, null, 2)}\n`)
      return EXIT_SUCCESS
    }
    const v = (n: number | null) => (n === null ? 'unknown' : String(n))
    io.out(
      '\n------ POSIX Message Queues Limits --------\n' +
        `max queues system wide = ${v(l.queuesMax)}\n` +
        `max messages per queue = ${v(l.msgMax)}\n` +
        `max size of message (bytes) = ${v(l.msgsizeMax)}\n` +
        `default messages per queue = ${v(l.msgDefault)}\n` +
        `default size of message (bytes) = ${v(l.msgsizeDefault)}\n` +
        `max bytes of a user's queues (RLIMIT_MSGQUEUE) = ${l.rlimitMsgqueue === null ? 'unlimited' : l.rlimitMsgqueue}\n\n`,
    )
    return EXIT_SUCCESS
  }
  const entries = listPosixQueues(dir === undefined ? undefined : { dir })
  if (json) {
    io.out(`${JSON.stringify(entries, null, 2)}\n`)
    return EXIT_SUCCESS
  }
  let s = '\n------ POSIX Message Queues --------\n'
  s += `${left('name', 24)} ${left('owner', 10)} ${left('perms', 6)} ${left('used-bytes', 12)} `
  s += `${left('messages', 10)} ${left('max-msgs', 10)} ${left('msg-size', 10)} notify-pid\n`
  for (const e of entries) s += mqRow(e)
  io.out(`${s}\n`)
  return EXIT_SUCCESS
}

/**
 * Runs the command line `args` (without `node` and the script) and returns the exit code.
 *
 * @example
 * ```ts
 * const code = main(['ipcs', '-q', '--json'], { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) })
 * ```
 */
export function main(args: string[], io: CliIo): number {
  try {
    const [command, ...rest] = args
    switch (command) {
      case 'ipcs':
        return ipcsCommand(rest, io)
      case 'ipcrm':
        return ipcrmCommand(rest, io)
      case 'mq':
        return mqCommand(rest, io)
      case '-h':
      case '--help':
      case 'help':
        io.out(MAIN_USAGE)
        return EXIT_SUCCESS
      case '-V':
      case '--version':
        io.out(`ipckit ${VERSION}\n`)
        return EXIT_SUCCESS
      case undefined:
        io.err(`ipckit: missing command\nTry 'ipckit --help' for more information.\n`)
        return EXIT_FAILURE
      default:
        io.err(`ipckit: unknown command '${command}'\nTry 'ipckit --help' for more information.\n`)
        return EXIT_FAILURE
    }
  } catch (err) {
    if (err instanceof Exit) return err.code
    if (err instanceof IpcError && args[0] === 'mq') {
      io.err(`ipckit mq: ${err.message}\n`)
      return EXIT_FAILURE
    }
    if (err instanceof IpcError && err.code === 'ENOSYS') {
      io.err(`ipckit: System V IPC is not available on this system (no /proc/sysvipc): ${err.message}\n`)
      return EXIT_FAILURE
    }
    io.err(`ipckit: ${err instanceof Error ? err.message : String(err)}\n`)
    return EXIT_FAILURE
  }
}

if (require.main === module) {
  const chunks: string[] = []
  const code = main(process.argv.slice(2), {
    out: (s) => chunks.push(s),
    err: (s) => process.stderr.write(s),
  })
  process.stdout.write(chunks.join(''), () => {
    process.exitCode = code
  })
  process.exitCode = code
}
