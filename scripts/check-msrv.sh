#!/usr/bin/env bash
# check-msrv.sh: every crate of the workspace builds, lib and tests (`cargo check --all-targets`),
# with the toolchain of the rust-version it declares (crates/ipckit: the workspace's; the
# binding: its own, which napi needs). Installs those toolchains through rustup (minimal
# profile) where missing; their artifacts go to target/msrv. Used by CI's msrv job and by
# scripts/test-targets.sh (its msrv step).
set -euo pipefail
cd "$(dirname "$0")/.."
pairs=$(cargo metadata --no-deps --format-version 1 \
  | node -e 'for (const p of JSON.parse(require("fs").readFileSync(0, "utf8")).packages) console.log(p.name, p.rust_version ?? "")')
status=0
while read -r name version; do
  if [ -z "$version" ]; then
    echo "== $name declares no rust-version"
    status=1
    continue
  fi
  rustup toolchain list | grep -q "^$version" || rustup toolchain install "$version" --profile minimal
  echo "== $name: cargo +$version check -p $name --all-targets --locked"
  if CARGO_TARGET_DIR=target/msrv cargo "+$version" check -p "$name" --all-targets --locked; then
    echo "== $name builds with Rust $version, the rust-version it declares"
  else
    echo "== $name does not build with Rust $version, the rust-version it declares"
    status=1
  fi
done <<< "$pairs"
exit $status
