#!/usr/bin/env bash
# Prints one line per System V object that exists now: "<type> <key> <id>", from /proc/sysvipc.
# .ci/run compares the output before and after the test suite: whatever appears was left behind.
set -euo pipefail
for type in msg sem shm; do
  [ -r "/proc/sysvipc/$type" ] || continue
  awk -v t="$type" 'NR > 1 { print t, $1, $2 }' "/proc/sysvipc/$type"
done | sort
