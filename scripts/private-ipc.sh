#!/usr/bin/env bash
# private-ipc.sh CMD [ARGS...]: runs CMD in a private System V IPC namespace (`unshare --ipc`)
# where this user may make one (root; CI), so that other programs' queues, semaphores and
# segments (another test suite running on the same machine, a database) neither show in the
# tests that compare with `ipcs`, nor take keys, ids or limits, nor get removed by the tests of
# `ipcrm --all --owner`. The namespace starts empty: whatever is left in it when CMD ends was
# left behind by CMD, which fails the run (with the list).
#
# Where `unshare --ipc` is refused (not root), CMD runs as it is, in the machine's namespace,
# and this says so. IPCKIT_SHARED_IPC=1 chooses that anyway.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${IPCKIT_SHARED_IPC:-}" != 1 ] && unshare --ipc true 2> /dev/null; then
  echo "== in a private System V IPC namespace (unshare --ipc): $*"
  exec unshare --ipc -- bash -c '
    set -uo pipefail
    "$@" || exit
    left=$(scripts/sysv-snapshot.sh)
    if [ -n "$left" ]; then
      echo "== $* left System V objects behind (type key id):"
      echo "$left"
      exit 1
    fi
    echo "== no System V object left behind"
  ' private-ipc "$@"
fi
echo "== in the machine's System V IPC namespace (unshare --ipc refused, or IPCKIT_SHARED_IPC=1): $*"
exec "$@"
