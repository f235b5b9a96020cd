#!/usr/bin/env bash
# Prints one line per System V object that exists now: "<type> <key> <id>", from /proc/sysvipc;
# then one per POSIX named semaphore ("posix-sem <name> -", glibc's /dev/shm/sem.NAME files),
# shared memory object ("posix-shm <name> -", the other files of /dev/shm)
# and POSIX message queue ("posix-mq <name> -", listed through a private mount of the mqueue
# file system, which needs root and unshare(1); skipped otherwise).
# .ci/run compares the output before and after the test suite: whatever appears was left behind.
set -euo pipefail
for type in msg sem shm; do
  [ -r "/proc/sysvipc/$type" ] || continue
  awk -v t="$type" 'NR > 1 { print t, $1, $2 }' "/proc/sysvipc/$type"
done | sort
for f in /dev/shm/sem.*; do
  if [ -e "$f" ]; then echo "posix-sem /${f#/dev/shm/sem.} -"; fi
done | sort
# POSIX shared memory objects: the other files of /dev/shm (glibc's and musl's shm_open).
for f in /dev/shm/*; do
  case "${f#/dev/shm/}" in sem.* | '*') continue ;; esac
  if [ -f "$f" ]; then echo "posix-shm /${f#/dev/shm/} -"; fi
done | sort
if [ "$(id -u)" = 0 ] && command -v unshare > /dev/null; then
  dir=$(mktemp -d)
  unshare --mount --propagation private sh -c 'mount -t mqueue none "$0" && ls -1 "$0"' "$dir" 2> /dev/null \
    | sed 's|^|posix-mq /|; s|$| -|' | sort || true
  rmdir "$dir"
fi
