/**
 * At the limits (issue 21): what a hostile local user, a hostile peer or the system's own
 * limits do to ipckit. Each test reproduces the limit for real (a second user, a peer written in
 * C or Python, `prlimit`), and checks that nothing is crashed, hung, leaked or touched that was
 * not meant to be.
 */
import test from 'ava'
import { chmodSync, statSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'

import { NOBODY, cChild, compileC, linuxOnly, removeBuilds, runNode, tempDir } from './helpers'

test.after.always(removeBuilds)

const isRoot = process.getuid?.() === 0
/** Tests that play a second, unprivileged user against a privileged one. */
const asRootTest = isRoot ? test : test.skip
const rootTitle = (title: string) => (isRoot ? title : `${title} [skipped: needs root, to run a second user (nobody)]`)

/** Swaps `path` for a symlink to `victim`, again and again, until killed. */
const SYMLINK_SWAPPER = `
#include <stdio.h>
#include <unistd.h>
int main(int argc, char **argv) {
  printf("swapping\\n");
  fflush(stdout);
  for (;;) {
    unlink(argv[1]);
    symlink(argv[2], argv[1]);
  }
}
`

/** A root process binds `mode` sockets at a path that a `nobody` swapper keeps replacing with a symlink. */
async function bindAgainstSwapper(t: import('ava').ExecutionContext, options: string, umask: number) {
  const shared = tempDir('ipckit-bind-race-')
  const secret = tempDir('ipckit-bind-victim-')
  t.teardown(() => {
    shared.remove()
    secret.remove()
  })
  // A folder the attacker may write (not sticky, so it may remove root's socket files), and a
  // victim file in a folder it cannot even enter.
  chmodSync(shared.path, 0o777)
  const victim = join(secret.path, 'victim')
  writeFileSync(victim, 'keep my mode\n')
  chmodSync(victim, 0o640)
  const path = join(shared.path, 'app.sock')
  const exe = compileC('symlink-swapper', SYMLINK_SWAPPER)
  chmodSync(dirname(exe), 0o755) // the build folder is private to root
  // Three swappers, so that one is usually between its unlink and its symlink.
  const swappers = [0, 1, 2].map(() => cChild(exe, [path, victim], { uid: NOBODY.uid, gid: NOBODY.gid }))
  t.teardown(() => swappers.forEach((s) => s.kill('SIGKILL')))
  await Promise.all(swappers.map((s) => s.line(/^swapping$/)))
  const r = await runNode(
    `
    const fs = require('node:fs')
    process.umask(${umask})
    const [path, victim] = process.argv.slice(2)
    let bound = 0, taken = 0
    // Until 400 binds won the race (the old chmod-after-bind gave the victim away within a
    // few dozen), or 12 seconds.
    const end = Date.now() + 12000
    for (let i = 0; bound < 400 && Date.now() < end; i++) {
      try {
        ipckit.UnixDatagramSocket.bind(path, ${options}).close()
        bound++
      } catch (e) {
        if (e.code !== 'EADDRINUSE') throw e
        taken++
      }
      const mode = fs.statSync(victim).mode & 0o777
      if (mode !== 0o640) { console.log('victim mode ' + mode.toString(8) + ' after ' + (i + 1) + ' binds'); process.exit(2) }
    }
    console.log(JSON.stringify({ bound, taken }))`,
    [path, victim],
    { timeoutMs: 120_000 },
  ).catch((e: Error) => ({ stdout: e.message }))
  const result = r.stdout.trim()
  t.regex(result, /^\{/, result)
  const { bound, taken } = JSON.parse(result) as { bound: number; taken: number }
  // Both sides ran: some binds won the race, some found the attacker's symlink there.
  t.log(result)
  t.true(bound > 0 && taken > 0, result)
  t.is(statSync(victim).mode & 0o777, 0o640)
}

linuxOnly(asRootTest, 'symlink swaps under a running bind')(
  rootTitle('bind with mode 0o666 under umask 022, while nobody swaps the path for a symlink: the victim keeps its mode'),
  (t) => bindAgainstSwapper(t, '{ mode: 0o666 }', 0o022),
)

linuxOnly(asRootTest, 'symlink swaps under a running bind')(
  rootTitle('bind with the default mode under umask 022, while nobody swaps the path for a symlink: the victim keeps its mode'),
  (t) => bindAgainstSwapper(t, '{}', 0o022),
)

test('bind gives the socket file exactly the mode asked for, whatever the umask', async (t) => {
  const dir = tempDir()
  t.teardown(dir.remove)
  const r = await runNode(
    `
    const fs = require('node:fs')
    const out = []
    for (const [umask, mode] of [[0o022, 0o666], [0o077, 0o660], [0o777, 0o600], [0o000, 0o600], [0o022, 0o640]]) {
      process.umask(umask)
      const path = process.argv[2] + '/s' + out.length
      const s = ipckit.UnixDatagramSocket.bind(path, { mode })
      out.push(umask.toString(8) + ':' + (fs.statSync(path).mode & 0o777).toString(8))
      s.close()
      const q = ipckit.UnixSeqpacketServer.listen(path + 'q', { mode })
      out.push(umask.toString(8) + ':' + (fs.statSync(path + 'q').mode & 0o777).toString(8))
      q.close()
    }
    console.log(out.join(' '))`,
    [dir.path],
  )
  t.is(r.stdout.trim(), '22:666 22:666 77:660 77:660 777:600 777:600 0:600 0:600 22:640 22:640')
})
