#!/usr/bin/env bash
# The test suite on a busy machine: the core's unit and integration tests and the ava suite
# with CPU-bound processes running beside them (2 by default, IPCKIT_BUSY_HOGS=N for another
# count: on a 2-CPU machine every test thread then waits for a CPU now and then, as on a loaded
# CI runner), in a private System V IPC namespace where one can be made (scripts/private-ipc.sh).
# A test that assumes how soon a thread or a process runs fails here.
#
# IPCKIT_BUSY_NODE=/path/to/node runs the ava suite with that Node (first in PATH, for ava's
# workers and the specs' children too): CI's target run uses it for one of the Node majors it
# proves (scripts/test-targets.sh, IPCKIT_BUSY_MAJOR).
#
# Run after `npm run build` (`npm run test:busy` does both). The doctests are left to
# `npm test`: they assume nothing about time, and compiling them one by one beside the hogs
# would only take minutes.
#
# The CPU hogs are stopped however the run ends: by the EXIT trap, and each one also stops by
# itself once this script is gone (it watches its parent pid), even after a SIGKILL.
set -euo pipefail
cd "$(dirname "$0")/.."

hogs=${IPCKIT_BUSY_HOGS:-2}
start=$SECONDS

# Compiled before the load starts: the point is to load the tests, not the compiler.
cargo test --workspace --lib --bins --tests --no-run --quiet

pids=()
stop_hogs() {
  for pid in "${pids[@]}"; do kill "$pid" 2> /dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2> /dev/null || true; done
  pids=()
}
trap stop_hogs EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
for _ in $(seq 1 "$hogs"); do
  # CPU-bound; ends by itself when its parent (this script) is gone.
  node -e 'const p = process.ppid; for (;;) { for (let i = 0; i < 5e7; i++); if (process.ppid !== p) process.exit(0) }' &
  pids+=($!)
done
echo "== test:busy: $hogs CPU-bound processes beside the suite (pids ${pids[*]:-none}), $(nproc) CPUs"

if [ -n "${IPCKIT_BUSY_NODE:-}" ]; then
  PATH="$(dirname "$IPCKIT_BUSY_NODE"):$PATH"
  export PATH NODE_OPTIONS=''
fi
echo "== test:busy: ava on Node $(node --version)"

status=0
scripts/private-ipc.sh sh -c 'cargo test --workspace --lib --bins --tests && node node_modules/ava/entrypoints/cli.mjs' || status=$?
stop_hogs
echo "== test:busy: $([ "$status" = 0 ] && echo passed || echo "FAILED (exit $status)") in $((SECONDS - start))s"
exit "$status"
