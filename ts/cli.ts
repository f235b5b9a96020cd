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
import { MessageQueue } from './queue'
import { SemaphoreSet } from './semaphore'

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
 ipckit ipcs -m|-q|-s -i <id>

Show information on System V IPC facilities.

Options:
 -i, --id <id>     print details on resource identified by <id>
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
 -u, --summary     show status summary
     --human       show sizes in human-readable format
 -b, --bytes       show sizes in bytes

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
 -a, --all[=shm|msg|sem]    remove all (in the specified category; also \`--all msg\`)
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
  /** The options in command-line order, with their arguments, up to the first bad one. */
  options: Array<{ name: string; value?: string }>
  /** Arguments that are not options (GNU getopt permutes them after the options). */
  rest: string[]
  /**
   * getopt's complaint about the option after the last of `options`, if any: the command acts
   * on the options before it (as util-linux does, option by option), then fails with it.
   */
  error?: string
}

/**
 * getopt_long, as util-linux uses it (glibc's): clustered short options, `--long=value`,
 * unambiguous abbreviations of long options, `--`, and glibc's messages. Options come back in
 * order; parsing stops at the first bad one, which `error` describes.
 */
function getopt(args: string[], spec: Option[]): Parsed {
  const options: Parsed['options'] = []
  const rest: string[] = []
  const stop = (error: string): Parsed => ({ options, rest: [...rest], error })
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!
    if (a === '--') {
      rest.push(...args.slice(i + 1))
      break
    }
    if (a.startsWith('--')) {
      const eq = a.indexOf('=')
      const name = a.slice(2, eq < 0 ? undefined : eq)
      const exact = spec.find((o) => o.long === name)
      const matches = spec.filter((o) => o.long.startsWith(name))
      const opt = exact ?? (matches.length === 1 ? matches[0] : undefined)
      if (!opt) {
        if (matches.length > 1) {
          return stop(`option '${a}' is ambiguous; possibilities:${matches.map((m) => ` '--${m.long}'`).join('')}`)
        }
        return stop(`unrecognized option '${a}'`)
      }
      let value = eq < 0 ? undefined : a.slice(eq + 1)
      if (opt.arg === 'none' && value !== undefined) return stop(`option '--${opt.long}' doesn't allow an argument`)
      if (opt.arg === 'required' && value === undefined) {
        if (i + 1 >= args.length) return stop(`option '--${opt.long}' requires an argument`)
        value = args[++i]
      }
      options.push({ name: opt.long, value })
      continue
    }
    if (a.startsWith('-') && a.length > 1) {
      for (let j = 1; j < a.length; j++) {
        const c = a[j]!
        const opt = spec.find((o) => o.short === c)
        if (!opt) return stop(`invalid option -- '${c}'`)
        if (opt.arg === 'none') {
          options.push({ name: opt.long })
          continue
        }
        let value: string | undefined = a.length > j + 1 ? a.slice(j + 1) : undefined
        if (value === undefined && opt.arg === 'required') {
          if (i + 1 >= args.length) return stop(`option requires an argument -- '${c}'`)
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

/** C's `strtoimax`/`strtoumax` prefix: optional blanks and sign, then digits of `base` (0: `0x` hex, `0` octal, else decimal). */
function strtoPrefix(s: string, base: 0 | 10): { value: bigint; negative: boolean; rest: string } | undefined {
  const m = /^[ \t\n\v\f\r]*([+-]?)/.exec(s)!
  let at = m[0].length
  let radix = 10
  if (base === 0 && /^0[xX][0-9a-fA-F]/.test(s.slice(at))) {
    radix = 16
    at += 2
  } else if (base === 0 && s[at] === '0') radix = 8
  const digits = (radix === 16 ? /^[0-9a-fA-F]+/ : radix === 8 ? /^[0-7]+/ : /^[0-9]+/).exec(s.slice(at))?.[0]
  if (digits === undefined) return undefined
  const value = BigInt(radix === 16 ? `0x${digits}` : radix === 8 ? `0o${digits}` : digits)
  return { value, negative: m[1] === '-', rest: s.slice(at + digits.length) }
}

const UINT64_MAX = 2n ** 64n - 1n
/** What `strerror(ERANGE)` says, as util-linux's `err()` appends it. */
const ERANGE_TEXT = 'Numerical result out of range'

/**
 * util-linux's `strtos32_or_err`: a decimal 32-bit signed integer (blanks and a sign allowed),
 * or the error message (`<what>: '<s>'`, with `: Numerical result out of range` when too large).
 */
function strtos32(s: string, what: string): number | { error: string } {
  const p = strtoPrefix(s, 10)
  if (p === undefined || p.rest !== '') return { error: `${what}: '${s}'` }
  const v = p.negative ? -p.value : p.value
  if (v < -(2n ** 31n) || v > 2n ** 31n - 1n) return { error: `${what}: '${s}': ${ERANGE_TEXT}` }
  return Number(v)
}

/**
 * C's `strtoul(s, &end, base)` on a 64-bit system: the value modulo 2^64 (a minus sign negates
 * it), `'range'` when it overflows, `'invalid'` when no digits; and what follows the digits.
 */
function strtoul(s: string, base: 0 | 10): { value: bigint; rest: string } | 'range' | 'invalid' {
  const p = strtoPrefix(s, base)
  if (p === undefined) return 'invalid'
  if (p.value > UINT64_MAX) return 'range'
  return { value: p.negative ? (2n ** 64n - p.value) % 2n ** 64n : p.value, rest: p.rest }
}

// ---------------------------------------------------------------------------------------
// printf-like helpers for util-linux's layouts

/** `%-Ns`. */
const left = (v: string | number | bigint, width: number) => String(v).padEnd(width)
/** `%-N.Ns`. */
const leftCut = (v: string, width: number) => v.slice(0, width).padEnd(width)
/** `%Nd`. */
const right = (v: number | string, width: number) => String(v).padStart(width)
const octal = (mode: number) => (mode & 0o777).toString(8)
/** `%#o`: octal with a leading 0, except for 0 itself. */
const altOctal = (mode: number) => (mode === 0 ? '0' : `0${mode.toString(8)}`)
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
/** `%-26.24s` of `ctime()`, for a time printed even when it is 0 (the epoch). */
const longTimeAlways = (d: Date | null) => longTime(d ?? new Date(0))

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

/** How sizes are shown: util-linux's `IPC_UNIT_*` (default, `-b`, kbytes, `--human`). */
type Unit = 'default' | 'bytes' | 'kb' | 'human'

/**
 * util-linux's `size_to_human_string(SIZE_SUFFIX_1LETTER, n)`: `8K`, `1.5M`, `100B`, one
 * decimal at most, rounded half up, on the exact 64-bit value.
 */
export function humanSize(n: bigint): string {
  let exp = 0
  while (exp < 60 && n >= 1n << BigInt(exp + 10)) exp += 10
  const letter = 'BKMGTPE'[exp / 10]!
  let dec = exp === 0 ? n : n >> BigInt(exp)
  let frac = exp === 0 ? 0n : n % (1n << BigInt(exp))
  if (frac !== 0n) {
    frac =
      frac >= UINT64_MAX / 1000n
        ? ((frac / 1024n) * 1000n) / (1n << BigInt(exp - 10))
        : (frac * 1000n) / (1n << BigInt(exp))
    frac = ((frac + 50n) / 100n) * 10n
    if (frac === 100n) {
      dec++
      frac = 0n
    }
  }
  if (frac === 0n) return `${dec}${letter}`
  const digits = String(frac).padStart(2, '0')
  return `${dec}.${digits.endsWith('0') ? digits.slice(0, -1) : digits}${letter}`
}

/**
 * util-linux's `ipc_print_size`: `label` (`name (bytes) = `, `name (kbytes) = `, `name = `, or
 * as is when it ends with `=`), the size in `unit` printed `%<width>ju` / `%<width>s` (a
 * negative width pads on the right), then `end`.
 */
function printSize(unit: Unit, label: string | null, size: bigint, end: string | null, width: number): string {
  let s = ''
  if (label === null) s = ''
  else if (label.endsWith('=')) s = label
  else if (unit === 'bytes') s = `${label} (bytes) = `
  else if (unit === 'kb') s = `${label} (kbytes) = `
  else s = `${label} = `
  const text = unit === 'human' ? humanSize(size) : String(unit === 'kb' ? size / 1024n : size)
  s += width < 0 ? text.padEnd(-width) : text.padStart(width)
  return s + (end ?? '')
}

type Format = 'default' | 'creator' | 'pid' | 'time' | 'limits' | 'summary'

/** `min(n, INT_MAX)`, as the kernel clamps MSG_INFO's counters. */
const clampInt = (n: number) => Math.min(n, 0x7fff_ffff)

function msgSection(format: Format, unit: Unit, entries: IpcsEntry[], lim?: Limits<bigint>): string {
  let s = ''
  switch (format) {
    case 'limits':
      if (!lim) return ''
      return (
        '------ Messages Limits --------\n' +
        `max queues system wide = ${lim.msgmni}\n` +
        printSize(unit === 'default' ? 'bytes' : unit, 'max size of message', lim.msgmax, '\n', 0) +
        printSize(unit === 'default' ? 'bytes' : unit, 'default max size of queue', lim.msgmnb, '\n', 0)
      )
    case 'summary': {
      // What msgctl(MSG_INFO) reports: queues in use, messages (msgmap) and bytes (msgtql) queued.
      const queues = entries.filter((e) => e.type === 'msg')
      const headers = queues.reduce((n, e) => n + e.messages, 0)
      const bytes = queues.reduce((n, e) => n + e.bytes, 0)
      return (
        '------ Messages Status --------\n' +
        `allocated queues = ${queues.length}\n` +
        `used headers = ${clampInt(headers)}\n` +
        printSize(unit, 'used space', BigInt(clampInt(bytes)), unit === 'default' ? ' bytes\n' : '\n', 0)
      )
    }
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
      s += `${['key', 'msqid', 'owner', 'perms'].map((h) => left(h, 10)).join(' ')} ${left(unit === 'human' ? 'size' : 'used-bytes', 12)} ${left('messages', 12)}\n`
  }
  for (const e of entries) {
    if (e.type !== 'msg') continue
    if (format === 'creator') s += permsRow(e)
    else if (format === 'time')
      s += `${left(e.id, 8)} ${ownerColumn(e)} ${shortTime(e.lastSendTime)} ${shortTime(e.lastReceiveTime)} ${shortTime(e.changeTime)}\n`
    else if (format === 'pid')
      s += `${left(e.id, 8)} ${ownerColumn(e)}  ${right(e.lastSendPid, 5)}     ${right(e.lastReceivePid, 5)}\n`
    else {
      const size =
        unit === 'human'
          ? printSize(unit, null, BigInt(e.bytes), '      ', 6)
          : printSize(unit, null, BigInt(e.bytes), null, -12)
      s += `${hexKey(e.key)} ${left(e.id, 10)} ${ownerColumn(e)} ${left(octal(e.mode), 10)} ${size} ${left(e.messages, 12)}\n`
    }
  }
  return s
}

function shmSection(format: Format, unit: Unit, entries: IpcsEntry[], lim?: Limits<bigint>): string {
  let s = ''
  switch (format) {
    case 'limits': {
      if (!lim) return ''
      let total: string
      if (unit === 'kb' || unit === 'default') {
        // (shmall * pageSize / 1024) kbytes, saturated as util-linux does.
        const perPage = lim.pageSize / 1024n
        let kb = lim.shmall * perPage
        if (kb > UINT64_MAX) kb = UINT64_MAX - (UINT64_MAX % perPage)
        total = printSize('default', 'max total shared memory (kbytes)', kb, '\n', 0)
      } else {
        let bytes = lim.shmall * lim.pageSize
        if (bytes > UINT64_MAX) bytes = UINT64_MAX - (UINT64_MAX % lim.pageSize)
        total = printSize(unit, 'max total shared memory', bytes, '\n', 0)
      }
      return (
        '------ Shared Memory Limits --------\n' +
        `max number of segments = ${lim.shmmni}\n` +
        printSize(unit === 'default' ? 'kb' : unit, 'max seg size', lim.shmmax, '\n', 0) +
        total +
        printSize(unit === 'default' ? 'bytes' : unit, 'min seg size', lim.shmmin, '\n', 0)
      )
    }
    case 'summary': {
      // What shmctl(SHM_INFO) reports: segments in use, their pages (rounded up), resident and swapped pages.
      const segments = entries.filter((e) => e.type === 'shm')
      const page = BigInt(limits({ bigint: true }).pageSize)
      const pages = (bytes: number) => (BigInt(bytes) + page - 1n) / page
      const total = segments.reduce((n, e) => n + pages(e.size), 0n)
      const rss = segments.reduce((n, e) => n + BigInt(e.rss) / page, 0n)
      const swap = segments.reduce((n, e) => n + BigInt(e.swap) / page, 0n)
      return (
        '------ Shared Memory Status --------\n' +
        `segments allocated ${segments.length}\n` +
        `pages allocated ${total}\n` +
        `pages resident  ${rss}\n` +
        `pages swapped   ${swap}\n` +
        'Swap performance: 0 attempts\t 0 successes\n'
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
      s += `${['key', 'shmid', 'owner', 'perms', unit === 'human' ? 'size' : 'bytes', 'nattch'].map((h) => left(h, 10)).join(' ')} ${left('status', 12)}\n`
  }
  for (const e of entries) {
    if (e.type !== 'shm') continue
    if (format === 'creator') s += permsRow(e)
    else if (format === 'time')
      s += `${left(e.id, 10)} ${ownerColumn(e)} ${shortTime(e.attachTime)} ${shortTime(e.detachTime)} ${shortTime(e.changeTime)}\n`
    else if (format === 'pid')
      s += `${left(e.id, 10)} ${ownerColumn(e)} ${left(e.creatorPid, 10)} ${left(e.lastPid, 10)}\n`
    else {
      const size =
        unit === 'human'
          ? printSize(unit, null, BigInt(e.size), '    ', 6)
          : printSize(unit, null, BigInt(e.size), null, -10)
      s +=
        `${hexKey(e.key)} ${left(e.id, 10)} ${ownerColumn(e)} ${left(octal(e.mode), 10)} ${size}` +
        ` ${left(e.attachments, 10)} ${left(e.destroyed ? 'dest' : ' ', 6)} ${left(e.locked ? 'locked' : ' ', 6)}\n`
    }
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
    case 'summary': {
      // What semctl(SEM_INFO) reports: sets in use (semusz) and semaphores in them (semaem).
      const sets = entries.filter((e) => e.type === 'sem')
      return (
        '------ Semaphore Status --------\n' +
        `used arrays = ${sets.length}\n` +
        `allocated semaphores = ${sets.reduce((n, e) => n + e.count, 0)}\n`
      )
    }
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
    else if (format === 'time')
      s += `${left(e.id, 8)} ${ownerColumn(e)}  ${longTime(e.lastOpTime)} ${longTime(e.changeTime)}\n`
    else s += `${hexKey(e.key)} ${left(e.id, 10)} ${ownerColumn(e)} ${left(octal(e.mode), 10)} ${left(e.count, 10)}\n`
  }
  return s
}

function section(type: IpcType, format: Format, unit: Unit, entries: IpcsEntry[], lim?: Limits<bigint>): string {
  if (type === 'msg') return msgSection(format, unit, entries, lim)
  if (type === 'shm') return shmSection(format, unit, entries, lim)
  return semSection(format, entries, lim)
}

/** The mode word as the kernel keeps it: permissions, and for a segment SHM_DEST (01000) and SHM_LOCKED (02000). */
function fullMode(e: IpcsEntry): number {
  return e.type === 'shm' ? e.mode | (e.destroyed ? 0o1000 : 0) | (e.locked ? 0o2000 : 0) : e.mode
}

/** `strerror` of an error's code, as C prints it: the description with a capital first letter. */
function strerror(err: unknown): string {
  if (!(err instanceof IpcError)) return err instanceof Error ? err.message : String(err)
  let text = err.message.slice(err.code.length + 2) // after 'EACCES: '
  const at = text.lastIndexOf(`, ${err.syscall}`)
  if (at >= 0) text = text.slice(0, at)
  return text.charAt(0).toUpperCase() + text.slice(1)
}

/** `ipcs -q|-m|-s -i ID`: one object in detail (util-linux's print_msg, print_shm, print_sem). */
function details(io: CliIo, type: IpcType, id: number, unit: Unit): void {
  // util-linux reads a negative id as "every object" and shows the first one under that id (a
  // queue then without its capacity); for semaphores it crashes, and ipckit says "not found".
  const all = ipcs({ type })
  const e = id >= 0 ? all.find((x) => x.id === id) : type === 'sem' ? undefined : all[0]
  if (e === undefined) {
    io.err(`ipcs: id ${id} not found\n`)
    return
  }
  if (e.type === 'msg') {
    // The capacity is not in /proc: IPC_STAT it (0 where the caller may not).
    let qbytes = 0
    try {
      if (id < 0) throw new RangeError('util-linux does not stat a negative id')
      const q = MessageQueue.fromId(id)
      qbytes = q.stat().maxBytes
      q.close()
    } catch {
      // not readable: util-linux prints 0 too
    }
    io.out(
      `\nMessage Queue msqid=${id}\n` +
        `uid=${e.uid}\tgid=${e.gid}\tcuid=${e.cuid}\tcgid=${e.cgid}\tmode=${altOctal(fullMode(e))}\n` +
        printSize(unit, unit === 'human' ? 'csize=' : 'cbytes=', BigInt(e.bytes), '\t', 0) +
        printSize(unit, unit === 'human' ? 'qsize=' : 'qbytes=', BigInt(qbytes), '\t', 0) +
        `qnum=${e.messages}\tlspid=${e.lastSendPid}\tlrpid=${e.lastReceivePid}\n` +
        `send_time=${longTime(e.lastSendTime)}\n` +
        `rcv_time=${longTime(e.lastReceiveTime)}\n` +
        `change_time=${longTime(e.changeTime)}\n` +
        '\n',
    )
  } else if (e.type === 'shm') {
    io.out(
      `\nShared memory Segment shmid=${id}\n` +
        `uid=${e.uid}\tgid=${e.gid}\tcuid=${e.cuid}\tcgid=${e.cgid}\n` +
        `mode=${altOctal(fullMode(e))}\taccess_perms=${altOctal(e.mode)}\n` +
        printSize(unit, unit === 'human' ? 'size=' : 'bytes=', BigInt(e.size), '\t', 0) +
        `lpid=${e.lastPid}\tcpid=${e.creatorPid}\tnattch=${e.attachments}\n` +
        `att_time=${longTime(e.attachTime)}\n` +
        `det_time=${longTime(e.detachTime)}\n` +
        `change_time=${longTimeAlways(e.changeTime)}\n` +
        '\n',
    )
  } else {
    // Each semaphore's value, waiters and last pid (GETVAL, GETNCNT, GETZCNT, GETPID): read access needed.
    let rows = ''
    try {
      const set = SemaphoreSet.fromId(id)
      try {
        const values = set.getAll()
        for (let i = 0; i < e.count; i++) {
          rows += `${left(i, 10)} ${left(values[i]!, 10)} ${left(set.waitingForIncrease(i), 10)} ${left(set.waitingForZero(i), 10)} ${left(set.lastPid(i), 10)}\n`
        }
      } finally {
        set.close()
      }
    } catch (err) {
      io.err(`ipcs: semctl(GETVAL) failed: ${strerror(err)}\n`)
      throw new Exit(EXIT_FAILURE)
    }
    io.out(
      `\nSemaphore Array semid=${id}\n` +
        `uid=${e.uid}\t gid=${e.gid}\t cuid=${e.cuid}\t cgid=${e.cgid}\n` +
        `mode=${altOctal(fullMode(e))}, access_perms=${altOctal(e.mode)}\n` +
        `nsems = ${e.count}\n` +
        `otime = ${longTime(e.lastOpTime)}\n` +
        `ctime = ${longTimeAlways(e.changeTime)}\n` +
        `${['semnum', 'value', 'ncount', 'zcount', 'pid'].map((h) => left(h, 10)).join(' ')}\n` +
        rows +
        '\n',
    )
  }
}

/** JSON text of the limits with exact integers (JSON numbers have no size limit). */
function limitsJson(lim: Limits<bigint>): string {
  const fields = Object.entries(lim).map(([k, v]) => `  ${JSON.stringify(k)}: ${v.toString()}`)
  return `{\n${fields.join(',\n')}\n}\n`
}

const IPCS_OPTIONS: Option[] = [
  // util-linux's order (it shows in glibc's "ambiguous" messages), then ours.
  { short: 'i', long: 'id', arg: 'required' },
  { short: 'q', long: 'queues', arg: 'none' },
  { short: 'm', long: 'shmems', arg: 'none' },
  { short: 's', long: 'semaphores', arg: 'none' },
  { short: 'a', long: 'all', arg: 'none' },
  { short: 't', long: 'time', arg: 'none' },
  { short: 'p', long: 'pid', arg: 'none' },
  { short: 'c', long: 'creator', arg: 'none' },
  { short: 'l', long: 'limits', arg: 'none' },
  { short: 'u', long: 'summary', arg: 'none' },
  { long: 'human', arg: 'none' },
  { short: 'b', long: 'bytes', arg: 'none' },
  { short: 'V', long: 'version', arg: 'none' },
  { short: 'h', long: 'help', arg: 'none' },
  { long: 'json', arg: 'none' },
]

function ipcsCommand(args: string[], io: CliIo): number {
  const prog = 'ipcs'
  const { options, error } = getopt(args, IPCS_OPTIONS)
  const want = new Set<IpcType>()
  let format: Format = 'default'
  let unit: Unit = 'default'
  let json = false
  let id: number | undefined
  for (const { name, value } of options) {
    switch (name) {
      case 'help':
        io.out(IPCS_USAGE)
        return EXIT_SUCCESS
      case 'version':
        io.out(`ipckit ipcs ${VERSION}\n`)
        return EXIT_SUCCESS
      case 'id': {
        const parsed = strtos32(value!, 'failed to parse id argument')
        if (typeof parsed !== 'number') {
          io.err(`${prog}: ${parsed.error}\n`)
          return EXIT_FAILURE
        }
        id = parsed
        break
      }
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
      case 'summary':
        format = name
        break
      case 'human':
        unit = 'human'
        break
      case 'bytes':
        unit = 'bytes'
        break
      case 'json':
        json = true
        break
    }
  }
  if (error !== undefined) usageError(io, prog, error)
  // Arguments that are not options are ignored, as util-linux ipcs ignores them.

  if (id !== undefined) {
    if (want.size !== 1) {
      io.err(`${prog}: when using an ID, a single resource must be specified\n`)
      return EXIT_FAILURE
    }
    const [type] = want
    if (json) {
      const e = ipcs({ type }).find((x) => x.id === id)
      if (e === undefined) {
        io.err(`${prog}: id ${id} not found\n`)
        return EXIT_SUCCESS
      }
      io.out(`${JSON.stringify(e, null, 2)}\n`)
      return EXIT_SUCCESS
    }
    details(io, type!, id, unit)
    return EXIT_SUCCESS
  }

  if (want.size === 0) for (const t of ['msg', 'shm', 'sem'] as const) want.add(t)
  const order = (['msg', 'shm', 'sem'] as const).filter((t) => want.has(t))

  if (format === 'limits') {
    const lim = limits({ bigint: true })
    if (json) {
      io.out(limitsJson(lim))
      return EXIT_SUCCESS
    }
    let s = '\n'
    for (const t of order) s += `${section(t, 'limits', unit, [], lim)}\n`
    io.out(s)
    return EXIT_SUCCESS
  }

  const entries = order.length === 3 ? ipcs() : order.flatMap((type) => ipcs({ type }))
  if (json) {
    io.out(`${JSON.stringify(entries, null, 2)}\n`)
    return EXIT_SUCCESS
  }
  let s = '\n'
  for (const t of order) s += `${section(t, format, unit, entries)}\n`
  io.out(s)
  return EXIT_SUCCESS
}

const TYPE_WORDS: Record<IpcType, string> = {
  msg: 'message queue',
  sem: 'semaphore',
  shm: 'shared memory segment',
}

/**
 * util-linux's words for a failed removal (remove_id, key_to_id); `undefined` for an error it
 * does not expect (it then stops with `key failed` / `id failed` and the system's words).
 */
function removalMessage(err: unknown, isKey: boolean): string | undefined {
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
      return undefined
  }
}

const IPCRM_OPTIONS: Option[] = [
  // util-linux's order (it shows in glibc's "ambiguous" messages), then ours.
  { short: 'm', long: 'shmem-id', arg: 'required' },
  { short: 'M', long: 'shmem-key', arg: 'required' },
  { short: 'q', long: 'queue-id', arg: 'required' },
  { short: 'Q', long: 'queue-key', arg: 'required' },
  { short: 's', long: 'semaphore-id', arg: 'required' },
  { short: 'S', long: 'semaphore-key', arg: 'required' },
  { short: 'a', long: 'all', arg: 'optional' },
  { short: 'v', long: 'verbose', arg: 'none' },
  { short: 'V', long: 'version', arg: 'none' },
  { short: 'h', long: 'help', arg: 'none' },
  { long: 'owner', arg: 'required' },
]

const ID_TYPES: Record<string, [IpcType, boolean]> = {
  'shmem-id': ['shm', false],
  'shmem-key': ['shm', true],
  'queue-id': ['msg', false],
  'queue-key': ['msg', true],
  'semaphore-id': ['sem', false],
  'semaphore-key': ['sem', true],
}

function ipcrmCommand(args: string[], io: CliIo): number {
  const prog = 'ipcrm'
  // Without arguments util-linux ipcrm does nothing, successfully.
  if (args.length === 0) return EXIT_SUCCESS

  /** util-linux's remove_id: says what it does (-v), removes, reports a failure; true if it failed. */
  const removeId = (type: IpcType, isKey: boolean, id: number, verbose: boolean): boolean => {
    if (verbose) io.out(`removing ${TYPE_WORDS[type]} id \`${id}'\n`)
    if (id < 0) {
      // No object has a negative id: the kernel says EINVAL.
      io.err(`${prog}: invalid ${isKey ? 'key' : 'id'} (${id})\n`)
      return true
    }
    try {
      ipcrm({ type, id })
      return false
    } catch (err) {
      const message = removalMessage(err, isKey)
      if (message === undefined) {
        io.err(`${prog}: ${isKey ? 'key failed' : 'id failed'}: ${strerror(err)}\n`)
        throw new Exit(EXIT_FAILURE)
      }
      io.err(`${prog}: ${message} (${id})\n`)
      return true
    }
  }

  // The old form: `ipcrm shm|msg|sem <id>...`.
  if (args[0] === 'shm' || args[0] === 'msg' || args[0] === 'sem') {
    const type = args[0]
    if (args.length < 2) usageError(io, prog, 'not enough arguments')
    let failures = 0
    for (const a of args.slice(1)) {
      // strtoul(a, &end, 10) into an int: it wraps, and takes '' (no digits, nothing after) as 0.
      const parsed = strtoul(a, 10)
      const ok = typeof parsed === 'object' && parsed.rest === ''
      if (!ok && a !== '') {
        io.err(`${prog}: invalid id: ${a}\n`)
        failures++
        continue
      }
      const id = ok ? Number(BigInt.asIntN(32, parsed.value)) : 0
      if (removeId(type, false, id, false)) failures++
    }
    if (failures > 0) return EXIT_FAILURE
    io.out('resource(s) deleted\n')
    return EXIT_SUCCESS
  }

  // An extension: `--all msg` / `-a msg` (with a space) as `--all=msg`. util-linux would remove
  // every object, then complain about the word.
  const normalized: string[] = []
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!
    const next = args[i + 1]
    if ((a === '--all' || a === '-a') && (next === 'msg' || next === 'sem' || next === 'shm')) {
      normalized.push(`--all=${next}`)
      i++
    } else normalized.push(a)
  }
  const { options, rest, error } = getopt(normalized, IPCRM_OPTIONS)
  const ownerOpt = options.filter((o) => o.name === 'owner').pop()?.value
  const allOpt = options.some((o) => o.name === 'all')
  if (ownerOpt !== undefined && !allOpt) usageError(io, prog, '--owner needs --all')
  let owner: number | string | undefined
  if (ownerOpt !== undefined) {
    const asId = strtos32(ownerOpt, '')
    owner = typeof asId === 'number' && asId >= 0 ? asId : ownerOpt
  }

  // Option by option, as util-linux: removals happen in order, up to a bad option.
  let verbose = false
  let failures = 0
  let all: IpcType | 'every' | undefined
  for (const { name, value } of options) {
    switch (name) {
      case 'help':
        io.out(IPCRM_USAGE)
        return EXIT_SUCCESS
      case 'version':
        io.out(`ipckit ipcrm ${VERSION}\n`)
        return EXIT_SUCCESS
      case 'verbose':
        verbose = true
        continue
      case 'owner':
        continue
      case 'all':
        if (value === undefined) all = 'every'
        else if (value === 'msg' || value === 'sem' || value === 'shm') all = value
        else {
          io.err(`${prog}: unknown argument: ${value}\n`)
          return EXIT_FAILURE
        }
        continue
    }
    const [type, isKey] = ID_TYPES[name]!
    const text = value!
    let id: number
    if (isKey) {
      // strtokey: strtoul(text, 0), the whole text, then truncated to key_t (32 bits).
      const parsed = strtoul(text, 0)
      if (parsed === 'range') {
        io.err(`${prog}: failed to parse argument: '${text}': ${ERANGE_TEXT}\n`)
        return EXIT_FAILURE
      }
      if (parsed === 'invalid' || parsed.rest !== '') {
        io.err(`${prog}: failed to parse argument: '${text}'\n`)
        return EXIT_FAILURE
      }
      const key = Number(BigInt.asUintN(32, parsed.value))
      if (key === 0) {
        io.err(`${prog}: illegal key (${text})\n`)
        failures++
        continue
      }
      const found = ipcs({ type }).find((e) => e.key === key)
      if (found === undefined) {
        io.err(`${prog}: invalid key (${text})\n`)
        failures++
        continue
      }
      id = found.id
    } else {
      const parsed = strtos32(text, 'failed to parse argument')
      if (typeof parsed !== 'number') {
        io.err(`${prog}: ${parsed.error}\n`)
        return EXIT_FAILURE
      }
      id = parsed
    }
    if (removeId(type, isKey, id, verbose)) failures++
  }
  if (error !== undefined) usageError(io, prog, error)

  if (all !== undefined) {
    // util-linux removes segments, then semaphore sets, then queues, each in the kernel's order.
    const types: IpcType[] = all === 'every' ? ['shm', 'sem', 'msg'] : [all]
    for (const type of types) {
      const kernelOrder = ipcs({ type }).map((e) => e.id) // the order of the kernel's slots, as /proc lists them
      const report = ipcrm({ all: true, type, owner })
      const outcome = new Map<number, unknown>([
        ...report.removed.map((e) => [e.id, null] as const),
        ...report.failed.map(({ entry, error: err }) => [entry.id, err] as const),
      ])
      const rank = (id: number) => (kernelOrder.includes(id) ? kernelOrder.indexOf(id) : kernelOrder.length)
      for (const [id, err] of [...outcome].sort(([a], [b]) => rank(a) - rank(b))) {
        if (verbose) io.out(`removing ${TYPE_WORDS[type]} id \`${id}'\n`)
        if (err !== null) {
          io.err(`${prog}: ${removalMessage(err, false) ?? `id failed: ${strerror(err)}`} (${id})\n`)
          failures++
        }
      }
    }
  }
  if (rest.length > 0) usageError(io, prog, `unknown argument: ${rest[0]}`)
  return failures === 0 ? EXIT_SUCCESS : EXIT_FAILURE
}

/** `%-N.Ns` of a name, or `%-Nu` of an id. */
const nameOrId = (name: string | null, id: number, width: number) =>
  name !== null ? leftCut(name, width) : left(id, width)
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
  const { options, rest, error } = getopt(args, [
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
  if (error !== undefined) usageError(io, prog, error)
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
