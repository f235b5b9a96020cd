/**
 * The README as a newcomer meets it: its code fences render (each opens with a language and is
 * closed), and every ```ts / ```js snippet runs. A snippet is run as an ES module (`.mts`,
 * through tsx) in which `'ipckit'` is this repository's `ts/` sources, in a folder of its own
 * and in private IPC and network namespaces (fixed keys such as `ftok('/tmp', 2)` and abstract
 * names meet nothing else, and what a snippet leaves goes with the namespace).
 *
 * Snippets are named `<section> #<n>` (the n-th ts/js block under that `##` heading). A snippet
 * that cannot run alone (it uses a name an earlier section made, a path of the reader's
 * machine, a peer process) has a declared harness in HARNESS below, saying why; a snippet that
 * cannot run at all is in SKIPPED, with the reason in its test title. Every other snippet runs
 * as it is.
 */

import test from 'ava'
import { spawnSync, execFile } from 'node:child_process'
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { promisify } from 'node:util'

import { ROOT, SOURCE_ENTRY, onLinux } from './helpers'
import type { DriverJob, Outcome } from './helpers/readme-driver'

const exec = promisify(execFile)
const README = readFileSync(join(ROOT, 'README.md'), 'utf8')
const TSX_LOADER = pathToFileURL(require.resolve('tsx')).href
const TSX_CJS = require.resolve('tsx/cjs')
const DRIVER = join(__dirname, 'helpers', 'readme-driver.ts')
const NAMESPACES = ['--ipc', '--net', '--fork']

// ---------------------------------------------------------------------------------------------
// fences

/** One fenced block of a Markdown file. */
interface Block {
  /** The info string: the language (`ts`, `sh`, ...). */
  lang: string
  /** 1-based line of the opening fence. */
  line: number
  code: string
  /** The `##` section it is in. */
  section: string
}

/**
 * The fenced blocks of `text`, and every fence mistake: an opening fence without a language, a
 * fence with a language inside a block (the block before it was never closed: everything up to
 * here renders as code), and a block still open at the end.
 */
function fences(text: string): { blocks: Block[]; problems: string[] } {
  const blocks: Block[] = []
  const problems: string[] = []
  let open: { fence: string; lang: string; line: number; lines: string[]; section: string } | undefined
  let section = '(top)'
  for (const [i, l] of text.split('\n').entries()) {
    const m = /^ {0,3}(`{3,}|~{3,})\s*(.*)$/.exec(l)
    if (open === undefined) {
      if (l.startsWith('## ')) section = l.slice(3).trim()
      if (m === null) continue
      const lang = m[2]!.trim()
      if (lang === '') problems.push(`line ${i + 1}: a code block opens without a language`)
      open = { fence: m[1]!, lang, line: i + 1, lines: [], section }
    } else if (m !== null && m[1]![0] === open.fence[0] && m[1]!.length >= open.fence.length) {
      if (m[2]!.trim() !== '') {
        problems.push(
          `line ${i + 1}: \`${l.trim()}\` inside the block opened at line ${open.line}: that block is never closed`,
        )
      }
      blocks.push({ lang: open.lang, line: open.line, code: open.lines.join('\n'), section: open.section })
      open = undefined
    } else {
      open.lines.push(l)
    }
  }
  if (open !== undefined) problems.push(`the block opened at line ${open.line} is never closed`)
  return { blocks, problems }
}

test('the README fences are balanced, and each block opens with a language', (t) => {
  t.deepEqual(fences(README).problems, [])
  // The checker itself, on the two mistakes the README once had.
  // An unclosed block swallows the next heading, and its own closing fence then opens a block.
  t.deepEqual(fences('## A\n```ts\nx\n\n## B\n```ts\ny\n```\n').problems, [
    'line 6: `\u0060\u0060\u0060ts` inside the block opened at line 2: that block is never closed',
    'line 8: a code block opens without a language',
    'the block opened at line 8 is never closed',
  ])
  t.deepEqual(fences('```\nx\n```\n```sh\ny\n').problems, [
    'line 1: a code block opens without a language',
    'the block opened at line 4 is never closed',
  ])
})

// ---------------------------------------------------------------------------------------------
// snippets

/** The ts/js snippets, named `<section> #<n>`. */
const snippets: Array<Block & { id: string }> = []
{
  const seen = new Map<string, number>()
  for (const b of fences(README).blocks) {
    if (!/^(ts|typescript|js|javascript|mjs)$/.test(b.lang)) continue
    const n = (seen.get(b.section) ?? 0) + 1
    seen.set(b.section, n)
    snippets.push({ ...b, id: `${b.section} #${n}` })
  }
}

/** A snippet's help to run: each field says what the snippet lacks. */
interface Harness {
  /** Why it cannot run as it is (in the test title). */
  why: string
  /** It goes on from the snippet before it (same section): both run as one program. */
  continues?: true
  /** Code put before the snippet: declares the names it uses from elsewhere. */
  prelude?: string
  /** Literal replacements in the snippet (a path of the reader's machine, an id). */
  replace?: Array<[string, string]>
  /** Files made in the snippet's folder (name → content; `exec` ones are executable). */
  files?: Record<string, string | { exec: string }>
  /** Symbolic links made in the snippet's folder (name → target). */
  links?: Record<string, string>
  /** Code put after the snippet: prints what the test checks. */
  epilogue?: string
  /** A peer process (argv, run in the snippet's folder); `ready`: started first, until it makes that file. */
  peer?: { argv: string[]; ready?: string }
  /** The snippet serves forever: it is stopped once its peer has ended. */
  stopAfterPeer?: true
  /**
   * It lists POSIX queues: the mqueue file system is mounted (in a private mount namespace) at
   * a folder of the test's, named by `MQUEUE_DIR` in the environment (this machine may have no
   * /dev/mqueue).
   */
  mqueue?: true
  /** What the snippet (or its peer) must print. */
  stdout?: RegExp
  peerStdout?: RegExp
}

const python = (code: string) => ['python3', '-c', code]
const SIGNAL_PRELUDE = `const signal = AbortSignal.timeout(30_000) // the reader's own AbortSignal\n`

const HARNESS: Record<string, Harness> = {
  'POSIX message queues #1': {
    why: 'the mqueue file system is mounted for it, at a folder of its own (this machine may have no /dev/mqueue)',
    mqueue: true,
    replace: [['listPosixQueues()', 'listPosixQueues({ dir: process.env.MQUEUE_DIR })']],
    stdout: /^urgent 9\n2\nlater\none more\nETIMEDOUT\ntrue\n\d+\n$/,
  },
  'TypeScript #1': {
    why: "worker.ts is the reader's: here a worker that answers on the queue; `--import tsx` finds tsx in the folder's node_modules; the parent's own execArgv is emptied, as a .js parent's is",
    files: {
      'worker.ts': `import { MessageQueue } from 'ipckit'
const q: MessageQueue = MessageQueue.fromId(Number(process.argv[2]))
q.sendSync(\`ready from \${process.pid}, a \${typeof (q.id satisfies number)} id\`)
q.close()
`,
    },
    links: { 'node_modules/tsx': join(ROOT, 'node_modules', 'tsx') },
    // The snippet itself runs under tsx, whose --import a child would inherit: run it as a parent
    // whose execArgv carries no loader (a .js parent, ts-node), so the execArgv it passes counts.
    prelude: 'process.execArgv.splice(0)\n',
    epilogue: `console.log(\`got: \${data}; child \${child.pid}\`)\n`,
    stdout: /^got: ready from (\d+), a number id; child \1$/m,
  },
  'Channel #1': {
    why: "worker.js is the reader's: here worker.mts, the worker the comment describes; `--import tsx` finds tsx in the folder's node_modules; the parent's own execArgv is emptied, as a .js parent's is",
    replace: [["['worker.js']", "['--import', 'tsx', 'worker.mts']"]],
    files: {
      'worker.mts': `import { Channel } from 'ipckit'
const ch = Channel.fromFds([3, 4, 5])
for await (const m of ch) await ch.post({ len: m.length })
ch.close()
`,
    },
    links: { 'node_modules/tsx': join(ROOT, 'node_modules', 'tsx') },
    prelude: 'process.execArgv.splice(0)\n',
    stdout: /^\{ len: 5 \}\n\{ len: 1000 \}\n$/,
  },
  'Channel #2': {
    why: "writer.js is the reader's: here writer.mts, the writer the comment describes; `--import tsx` finds tsx in the folder's node_modules; the parent's own execArgv is emptied, as a .js parent's is",
    replace: [["['writer.js']", "['--import', 'tsx', 'writer.mts']"]],
    files: {
      'writer.mts': `import { Channel } from 'ipckit'
const ch = Channel.fromFds([3, 4, 5])
for (let i = 0; i < 100; i++) await ch.post({ n: 1 })
ch.close()
`,
    },
    links: { 'node_modules/tsx': join(ROOT, 'node_modules', 'tsx') },
    prelude: 'process.execArgv.splice(0)\n',
    stdout: /^300\n$/,
  },
  'Keys #1': {
    why: "ftok needs a file that exists: /var/run/myapp is the reader's",
    replace: [["'/var/run/myapp'", "'myapp'"]],
    files: { myapp: '' },
  },
  'Message queues (System V) #1': {
    why: '`key` is the one the Keys section made',
    prelude: `import { ftok as ftok_ } from 'ipckit'\nconst key = ftok_('myapp', 1)\n`,
    files: { myapp: '' },
    stdout: /^<Buffer 01 02>$/m,
  },
  'Semaphores and Mutex #1': {
    why: "`signal` and `bumpCounter()` are the reader's",
    prelude: `${SIGNAL_PRELUDE}let counter = 0\nconst bumpCounter = () => ++counter\n`,
  },
  'Shared memory #1': {
    why: "`signal` is the reader's (used in #3, which goes on from here)",
    prelude: SIGNAL_PRELUDE,
  },
  'Shared memory #2': { why: 'goes on from #1 (`shm`)', continues: true },
  'Shared memory #3': { why: 'goes on from #2 (`shm`, `words`)', continues: true },
  'Pipes and FIFOs #2': {
    why: "goes on from #1 (`pipe`, `spawn`); `./tool` is the reader's program: here a shell script that writes to fd 3",
    continues: true,
    files: { tool: { exec: "#!/bin/sh\nprintf 'from the tool\\n' >&3\n" } },
    stdout: /^hello\nfrom the tool\n/,
  },
  'Pipes and FIFOs #3': {
    why: "goes on from #1 (`mkfifo`, `openFifo`); needs a writer (a shell), and /tmp/app.fifo is the reader's path",
    continues: true,
    replace: [["'/tmp/app.fifo'", "'app.fifo'"]],
    peer: { argv: ['sh', '-c', 'until [ -p app.fifo ]; do sleep 0.01; done; echo "a line from sh" > app.fifo'] },
    stdout: /^a line from sh$/m,
  },
  'UNIX sockets and socket pairs #1': {
    why: "child.js and data.txt are the reader's: here a child that prints what it got",
    files: {
      'data.txt': 'the data\n',
      'child.js': `require(${JSON.stringify(TSX_CJS)})
const fs = require('node:fs')
const { UnixSeqpacketSocket } = require(${JSON.stringify(SOURCE_ENTRY)})
const parent = UnixSeqpacketSocket.fromFd(3, { acceptFds: true })
const m = parent.receiveSync()
console.log('child got ' + m.data + ' and a file: ' + fs.readFileSync(m.fds[0], 'utf8').trim())
parent.close()
`,
    },
    stdout: /^child got hello and a file: the data$/m,
  },
  'UNIX sockets and socket pairs #2': {
    why: "an echo server: a Python client sends it a datagram and gets it back, then the server is stopped; /tmp/app.sock is the reader's path",
    replace: [["'/tmp/app.sock'", "'app.sock'"]],
    peer: {
      argv: python(`import socket, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind('client.sock')
s.settimeout(50)
for _ in range(2000):
    try:
        s.sendto(b'ping', 'app.sock')
        break
    except (FileNotFoundError, ConnectionRefusedError):
        time.sleep(0.01)
data, addr = s.recvfrom(100)
print('echo:', data.decode(), 'from', addr)`),
    },
    stopAfterPeer: true,
    peerStdout: /^echo: ping from app\.sock$/m,
  },
  'UNIX sockets and socket pairs #3': {
    why: "/dev/log is the machine's syslog, if any: here a Python receiver bound at log.sock",
    replace: [["'/dev/log'", "'log.sock'"]],
    peer: {
      argv: python(`import socket
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind('log.sock')
s.settimeout(50)
print('logged:', s.recv(100).decode())`),
      ready: 'log.sock',
    },
    peerStdout: /^logged: <14>myapp: started$/m,
  },
  'UNIX sockets and socket pairs #4': {
    why: 'an echo server: a Python client connects, sends and gets its message back, then the server is stopped',
    peer: {
      argv: python(`import socket, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
for _ in range(2000):
    try:
        s.connect('\\0my-app')
        break
    except ConnectionRefusedError:
        time.sleep(0.01)
s.settimeout(50)
s.send(b'ping')
print('echo:', s.recv(100).decode())`),
    },
    stopAfterPeer: true,
    stdout: /^\{ pid: \d+, uid: 0, gid: 0 \}$/m,
    peerStdout: /^echo: ping$/m,
  },
  'UNIX sockets and socket pairs #5': {
    why: 'a client: a Python seqpacket echo server listens at the abstract name first',
    prelude: '',
    peer: {
      argv: python(`import socket
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.bind('\\0my-app')
s.listen(1)
open('ready', 'w').close()
s.settimeout(50)
c, _ = s.accept()
m = c.recv(100)
c.send(m)
print('served', m.decode())`),
      ready: 'ready',
    },
    peerStdout: /^served ping$/m,
  },
  'UNIX sockets and socket pairs #6': { why: "data.txt is the reader's", files: { 'data.txt': 'the data\n' } },
  'Signals #1': {
    why: "`signal` is the reader's",
    prelude: SIGNAL_PRELUDE,
    stdout: /^SIGRTMIN\+1 \d+ 0 42\nSIGUSR2 \d+ 0 undefined\n/,
  },
  'ipcs, ipcrm and limits #1': {
    why: "the ids and keys it removes are the reader's, and so are the user `build` and `payload`: here a set, a segment with key 0x1234, and root",
    prelude: `import { SemaphoreSet as SemaphoreSet_, SharedMemory as SharedMemory_, MessageQueue as MessageQueue_ } from 'ipckit'
const set_ = SemaphoreSet_.create({ count: 1 })
SharedMemory_.open(0x1234, { create: true, size: 4096 }).close()
MessageQueue_.create().close()
const payload = Buffer.from('hello')
`,
    replace: [
      ['id: 65536', 'id: set_.id'],
      ["owner: 'build'", "owner: 'root'"],
    ],
  },
  'macOS #1': {
    why: '`shm` and `IpcError` come from earlier sections',
    prelude: `import { SharedMemory as SharedMemory_, IpcError } from 'ipckit'\nconst shm = SharedMemory_.create({ size: 4096 })\n`,
  },
}

/** Snippets that cannot run here at all, with the reason. */
const SKIPPED: Record<string, string> = {}

/** Why the snippets cannot run on this machine, or undefined when they can. */
function unavailable(): string | undefined {
  if (!onLinux) return `the snippets run in Linux namespaces (unshare), which ${process.platform} lacks`
  const probe = spawnSync('unshare', [...NAMESPACES, 'true'], { stdio: 'pipe' })
  if (probe.error) return `unshare(1) is not available (${probe.error.message})`
  if (probe.status !== 0)
    return `unshare ${NAMESPACES.join(' ')} failed (it needs root): ${probe.stderr.toString().trim()}`
  return undefined
}
const whyNot = unavailable()
const hasPython = spawnSync('python3', ['-c', 'import socket'], { stdio: 'ignore' }).status === 0

test('every harness and skip names a snippet the README has', (t) => {
  const ids = new Set(snippets.map((s) => s.id))
  t.deepEqual(
    [...Object.keys(HARNESS), ...Object.keys(SKIPPED)].filter((id) => !ids.has(id)),
    [],
    `snippets are: ${[...ids].join(', ')}`,
  )
  t.true(snippets.length >= 15, `${snippets.length} snippets`)
})

/** The programs to run: each snippet, or a run of snippets where later ones continue earlier ones. */
const programs: Array<{ ids: string[]; parts: Array<{ code: string; harness?: Harness }> }> = []
for (const s of snippets) {
  const harness = HARNESS[s.id]
  if (harness?.continues && programs.length > 0) {
    programs.at(-1)!.ids.push(s.id)
    programs.at(-1)!.parts.push({ code: s.code, harness })
  } else {
    programs.push({ ids: [s.id], parts: [{ code: s.code, harness }] })
  }
}

for (const program of programs) {
  const title = `README ${program.ids.join(' + ')} runs`
  const skip = program.ids.map((id) => SKIPPED[id]).find((r) => r !== undefined)
  const helps = program.parts.map((p) => p.harness).filter((h): h is Harness => h !== undefined)
  const why = helps.map((h) => h.why).join('; ')
  const needsPython = helps.some((h) => h.peer?.argv[0] === 'python3')
  if (skip !== undefined || whyNot !== undefined || (needsPython && !hasPython)) {
    const reason = skip ?? whyNot ?? 'its peer is a Python program, and python3 is not installed'
    test.skip(`${title} [skipped: ${reason}]`, () => {})
    continue
  }
  test(why === '' ? title : `${title} (harness: ${why})`, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'ipckit-readme-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    let prelude = ''
    let body = ''
    for (const { code, harness } of program.parts) {
      prelude += harness?.prelude ?? ''
      let c = code
      for (const [from, to] of harness?.replace ?? []) {
        t.true(c.includes(from), `the snippet still contains ${from}`)
        c = c.split(from).join(to)
      }
      body += `${c}\n${harness?.epilogue ?? ''}`
      for (const [name, target] of Object.entries(harness?.links ?? {})) {
        mkdirSync(dirname(join(dir, name)), { recursive: true })
        symlinkSync(target, join(dir, name))
      }
      for (const [name, content] of Object.entries(harness?.files ?? {})) {
        writeFileSync(join(dir, name), typeof content === 'string' ? content : content.exec)
        if (typeof content !== 'string') chmodSync(join(dir, name), 0o755)
      }
    }
    writeFileSync(join(dir, 'snippet.mts'), `${prelude}${body}`)
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { target: 'ES2022', module: 'nodenext', paths: { ipckit: [join(ROOT, 'ts', 'index.ts')] } },
      }),
    )
    const peer = helps.find((h) => h.peer !== undefined)
    const job: DriverJob = {
      dir,
      snippet: [process.execPath, '--import', TSX_LOADER, 'snippet.mts'],
      peer: peer?.peer,
      stopAfterPeer: helps.some((h) => h.stopAfterPeer),
      timeoutMs: 60_000,
    }
    writeFileSync(join(dir, 'job.json'), JSON.stringify(job))
    const driver = [process.execPath, '--require', TSX_CJS, DRIVER, join(dir, 'job.json')]
    const mqueueDir = join(dir, 'mqueue')
    const argv = helps.some((h) => h.mqueue)
      ? (mkdirSync(mqueueDir),
        [
          ...NAMESPACES,
          '--mount',
          '--propagation',
          'private',
          'sh',
          '-c',
          'mount -t mqueue none "$0" && exec "$@"',
          mqueueDir,
          ...driver,
        ])
      : [...NAMESPACES, ...driver]
    const { stdout } = await exec('unshare', argv, {
      encoding: 'utf8',
      timeout: 90_000,
      env: { ...process.env, NODE_OPTIONS: '', MQUEUE_DIR: mqueueDir },
    })
    const result = JSON.parse(stdout) as { snippet: Outcome; peer?: Outcome }
    const shown = `${readFileSync(join(dir, 'snippet.mts'), 'utf8')}\n--- snippet:\n${JSON.stringify(result.snippet, null, 1)}\n--- peer:\n${JSON.stringify(result.peer, null, 1)}`
    if (job.stopAfterPeer) t.true(result.snippet.stopped, `the server ran until its peer ended\n${shown}`)
    else t.is(result.snippet.code, 0, shown)
    t.is(result.snippet.stderr, '', shown)
    if (result.peer !== undefined) t.is(result.peer.code, 0, `the peer ended well\n${shown}`)
    for (const h of helps) {
      if (h.stdout) t.regex(result.snippet.stdout, h.stdout, shown)
      if (h.peerStdout) t.regex(result.peer?.stdout ?? '', h.peerStdout, shown)
    }
  })
}
