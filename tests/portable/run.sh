#!/bin/bash
# The portable binary (packaging/portable.sh) where the default one cannot
# run: in a Debian 11 root (glibc 2.31, made by debootstrap, cached) and in
# a root holding nothing but the binary, /proc, /sys and an os-release (no
# C library, no shell, no loader). In each root, inside a network namespace
# of its own (lo, and eth0 with 192.0.2.10/24 and 2001:db8::10/64):
#
#   - --publisher stdout --oneshot: the OS of the root, the kernel, the
#     memory, eth0 and its addresses, as printed lines;
#   - --dry-run --oneshot: the exact xenstore writes, eth0 made VIF 0 by a
#     fake sysfs tree (--sysfs), data/updated last;
#   - the xenstore publisher, --oneshot, against the test xenstored (its
#     guest socket placed in the root, XENSTORED_PATH): the tree it wrote,
#     read from dom0's side with xenstore-ls, and the backend it logged;
#   - syslog(3) over the root's /dev/log (a datagram socket this script
#     listens on): the agent's "starting" line, daemon.info, with its pid.
#
# And, as an expected failure, the default binary in the Debian 11 root:
# it must fail with "version `GLIBC_2.34' not found", the problem the
# portable binary solves.
#
# usage: tests/portable/run.sh   (as root: debootstrap, chroot, netns)
#
# Environment:
#   XGA_PORTABLE_CACHE   where the Debian 11 root tarball is kept
#                        (default ~/.cache/xen-guest-agent-tests/portable)
#   XGA_PORTABLE_BINARY  test this portable binary (default: build it)
#   XGA_DEFAULT_BINARY   the default build for the expected failure
#                        (default: cargo build --release)
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
cache=${XGA_PORTABLE_CACHE:-$HOME/.cache/xen-guest-agent-tests/portable}
start=$SECONDS
domid=7
# shellcheck source=packaging/debroot.sh
. "$top/packaging/debroot.sh"

passed=0 failed=0
ok() { passed=$((passed + 1)); echo "PASS: $*"; }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
# check_out WHAT FILE PATTERN: FILE has a line matching the extended regex.
check_out() { if grep -qE -- "$3" "$2"; then ok "$1"; else bad "$1: no line matching /$3/ in:"; sed 's/^/    /' "$2"; fi; }
die() { echo "portable/run.sh: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (debootstrap, chroot, network namespaces)"

need=()
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v xenstore-ls >/dev/null || need+=(xenstore-utils)
command -v ip >/dev/null || need+=(iproute2)
command -v readelf >/dev/null || need+=(binutils)
command -v python3 >/dev/null || need+=(python3)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

work=$(mktemp -d /tmp/xga-portable.XXXXXX)
ns=xga-portable-$$
xsd_pid=
cleanup() {
  [ -n "$xsd_pid" ] && kill "$xsd_pid" 2>/dev/null && wait "$xsd_pid" 2>/dev/null
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# --- the binaries -------------------------------------------------------
echo "=== building"
cd "$top"
portable=${XGA_PORTABLE_BINARY:-$(packaging/portable.sh | tail -n1)}
if [ -z "${XGA_DEFAULT_BINARY:-}" ]; then
  cargo build --release --locked --bin xen-guest-agent >&2
  XGA_DEFAULT_BINARY=$top/target/release/xen-guest-agent
fi
# Copied at once: other tiers build other features into target/release.
cp "$portable" "$work/portable"
cp "$XGA_DEFAULT_BINARY" "$work/default"
cargo build --release --locked -q -p test-xenstored --bin test-xenstored >&2
xsd=${CARGO_TARGET_DIR:-$top/target}/release/test-xenstored

echo "=== the portable binary: $portable ($(stat -c %s "$work/portable") bytes)"
file "$work/portable" 2>/dev/null | sed 's/^[^:]*: /  /' || true
check "no program interpreter, no shared library (readelf -l, -d)" packaging/portable.sh --check "$work/portable"
check "no dynamic symbol version needed (no GLIBC_*)" sh -c "! readelf -W --version-info '$work/portable' | grep -q 'GLIBC_'"

# --- the network namespace and the fixtures -----------------------------
ip netns add "$ns"
ip -n "$ns" link set lo up
ip -n "$ns" link add eth0 address 00:16:3e:5e:00:01 type veth peer name peer0
ip -n "$ns" link set eth0 up
ip -n "$ns" link set peer0 up
ip -n "$ns" addr add 192.0.2.10/24 dev eth0
ip -n "$ns" addr add 2001:db8::10/64 dev eth0 nodad

# in_root ROOT CMD...: CMD inside ROOT (chroot), in the namespace, with an
# empty environment but for what follows `--env`, and /proc and /sys
# mounted for this command only (ip netns exec's mount namespace).
in_root() {
  local root=$1; shift
  local envs=()
  while [ "${1:-}" = --env ]; do envs+=("$2"); shift 2; done
  ip netns exec "$ns" sh -c 'r=$1; shift; mount -t proc proc "$r/proc" && mount -t sysfs sysfs "$r/sys" &&
    exec "$@"' sh "$root" env -i "${envs[@]}" "$(command -v chroot)" "$root" "$@"
}

# A fake sysfs in which eth0 is the netfront VIF 0 (for the std schema,
# which publishes the addresses of VIFs only), placed in the root.
fake_vif_sysfs() {
  mkdir -p "$1/run/xga-sys/class/net/eth0/device"
  echo vif > "$1/run/xga-sys/class/net/eth0/device/devtype"
  echo device/vif/0 > "$1/run/xga-sys/class/net/eth0/device/nodename"
}

# wait_for SECONDS CMD...: until CMD succeeds, or fail after SECONDS.
wait_for() {
  local end=$((SECONDS + $1)); shift
  until "$@"; do [ $SECONDS -lt $end ] || return 1; sleep 0.05; done
}

# The test xenstored with its guest socket at ROOT/run/xenstored.sock.
start_xenstored() {
  local root=$1
  mkdir -p "$root/run"
  "$xsd" --socket "$root/run/xenstored.sock" --dom0-socket "$work/dom0.sock" --domid $domid \
    > "$work/xenstored.out" 2> "$work/xenstored.err" &
  xsd_pid=$!
  wait_for 10 test -S "$work/dom0.sock" || { cat "$work/xenstored.err"; return 1; }
}

stop_xenstored() {
  kill "$xsd_pid" 2>/dev/null && wait "$xsd_pid" 2>/dev/null || true
  xsd_pid=
  rm -f "$work/dom0.sock"
}

# Listen on ROOT/dev/log like syslogd, writing each datagram as a line,
# until a "starting" line came or 20 s passed.
start_syslog() {
  mkdir -p "$1/dev"
  rm -f "$1/dev/log"
  python3 - "$1/dev/log" > "$work/syslog.txt" <<'EOF' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(20)
try:
    while True:
        m = s.recv(65536).decode(errors="replace")
        print(m, flush=True)
        if "starting" in m:
            break
except socket.timeout:
    pass
EOF
  syslog_pid=$!
  wait_for 10 test -S "$1/dev/log"
}

# The checks every root gets. NAME, ROOT, the expected distro, major.
portable_checks() {
  local name=$1 root=$2 distro=$3 major=$4 out=$work/out err=$work/err
  local agent=/usr/sbin/xen-guest-agent
  install -D -m 0755 "$work/portable" "$root$agent"
  fake_vif_sysfs "$root"

  echo "--- $name: --publisher stdout --oneshot"
  if in_root "$root" "$agent" --publisher stdout --oneshot -s > "$out" 2> "$err"; then
    ok "$name: stdout --oneshot exits 0"
  else bad "$name: stdout --oneshot exited $?"; cat "$err"; fi
  check_out "$name: stdout: the root's OS ($distro $major)" "$out" "^os distro=$distro version=$major(\.| )"
  check_out "$name: stdout: the kernel ($(uname -r))" "$out" "^kernel sysname=Linux release=$(uname -r) machine=x86_64 "
  check_out "$name: stdout: the memory" "$out" '^memory total_kib=[1-9][0-9]* available_kib=[0-9]+'
  check_out "$name: stdout: eth0 (netlink in the static binary)" "$out" '^link-added index=[0-9]+ name=eth0 mac=00:16:3e:5e:00:01 '
  check_out "$name: stdout: eth0's IPv4 address" "$out" '^address-added index=[0-9]+ name=eth0 address=192\.0\.2\.10/24$'
  check_out "$name: stdout: eth0's IPv6 address" "$out" '^address-added index=[0-9]+ name=eth0 address=2001:db8::10/64$'

  echo "--- $name: --dry-run --oneshot"
  if in_root "$root" "$agent" --dry-run --oneshot -s --sysfs /run/xga-sys > "$out" 2> "$err"; then
    ok "$name: --dry-run --oneshot exits 0"
  else bad "$name: --dry-run --oneshot exited $?"; cat "$err"; fi
  check_out "$name: dry run: data/os_distro" "$out" "^write data/os_distro \"$distro\"$"
  check_out "$name: dry run: data/os_majorver" "$out" "^write data/os_majorver \"$major\"$"
  check_out "$name: dry run: VIF 0's IPv4 address" "$out" '^write attr/vif/0/ipv4/0 "192\.0\.2\.10"$'
  check_out "$name: dry run: VIF 0's IPv6 address" "$out" '^write attr/vif/0/ipv6/0 "2001:db8::10"$'
  check "$name: dry run: data/updated is the last write" sh -c "tail -n1 '$out' | grep -q '^write data/updated '"

  echo "--- $name: the xenstore publisher against the test xenstored"
  start_xenstored "$root" || { bad "$name: the test xenstored did not start"; return; }
  if in_root "$root" --env XENSTORED_PATH=/run/xenstored.sock "$agent" --oneshot -s --sysfs /run/xga-sys \
      > "$out" 2> "$err"; then
    ok "$name: xenstore --oneshot exits 0 (publication complete)"
  else bad "$name: xenstore --oneshot exited $?"; cat "$err"; fi
  check_out "$name: xenstore: the native backend, on the root's socket" "$err" 'xenstore backend: native.*/run/xenstored\.sock'
  local tree=$work/tree home=/local/domain/$domid
  XENSTORED_PATH=$work/dom0.sock xenstore-ls -f "$home" > "$tree" 2>&1 || true
  stop_xenstored
  check_out "$name: xenstore: data/os_distro (dom0's view)" "$tree" "^$home/data/os_distro = \"$distro\"$"
  check_out "$name: xenstore: data/os_majorver" "$tree" "^$home/data/os_majorver = \"$major\"$"
  check_out "$name: xenstore: data/os_uname" "$tree" "^$home/data/os_uname = \"$(uname -r)\"$"
  check_out "$name: xenstore: data/meminfo_total" "$tree" "^$home/data/meminfo_total = \"[1-9][0-9]*\"$"
  check_out "$name: xenstore: attr/vif/0/ipv4/0" "$tree" "^$home/attr/vif/0/ipv4/0 = \"192\.0\.2\.10\"$"
  check_out "$name: xenstore: attr/vif/0/ipv6/0" "$tree" "^$home/attr/vif/0/ipv6/0 = \"2001:db8::10\"$"
  check_out "$name: xenstore: attr/PVAddons/MajorVersion" "$tree" "^$home/attr/PVAddons/MajorVersion = \"1\"$"
  check_out "$name: xenstore: data/updated" "$tree" "^$home/data/updated = \"[A-Z][a-z]{2} [A-Z][a-z]{2} [ 0-9][0-9] [0-9:]{8} [0-9]{4}\"$"

  echo "--- $name: syslog(3) over the root's /dev/log"
  start_syslog "$root" || { bad "$name: no /dev/log listener"; return; }
  in_root "$root" "$agent" --publisher stdout --oneshot > "$out" 2> "$err" || true
  wait "$syslog_pid" || true
  check_out "$name: syslog: the starting line, daemon.info, with the agent's pid" "$work/syslog.txt" \
    '^<30>.*xen-guest-agent\[[0-9]+\]: xen-guest-agent [0-9.]+ starting$'
  check "$name: syslog: nothing on stderr without -s" test ! -s "$err"
  rm -f "$root/dev/log"
}

# --- Debian 11 ------------------------------------------------------------
bullseye=$work/bullseye
mkdir -p "$bullseye"
if debian_root bullseye "" "$cache" "$bullseye"; then
  glibc=$(chroot "$bullseye" ldd --version 2>/dev/null | sed -n '1s/.* //p')
  check "Debian 11 root: glibc $glibc (older than 2.34)" [ "$glibc" = 2.31 ]

  echo "--- Debian 11: the default binary (expected to fail)"
  install -D -m 0755 "$work/default" "$bullseye/usr/local/sbin/xen-guest-agent-default"
  if in_root "$bullseye" /usr/local/sbin/xen-guest-agent-default --publisher stdout --oneshot -s \
      > "$work/out" 2> "$work/err"; then
    bad "Debian 11: the default binary ran; it needs glibc 2.34 (has the build changed?)"
  else
    check_out "Debian 11: the default binary fails as expected: GLIBC_2.34 not found" "$work/err" \
      "version \`GLIBC_2\.34' not found"
  fi
  sed 's/^/    /' "$work/err" | head -n 3

  portable_checks "Debian 11" "$bullseye" debian 11
else
  bad "no Debian 11 root (debootstrap failed)"
fi

# --- a root with nothing but the binary -----------------------------------
bare=$work/bare
mkdir -p "$bare/proc" "$bare/sys" "$bare/etc"
# An os-release of a distribution this machine is not, musl-based.
cat > "$bare/etc/os-release" <<'EOF'
NAME="Alpine Linux"
ID=alpine
VERSION_ID=3.19.1
PRETTY_NAME="Alpine Linux v3.19"
EOF
portable_checks "bare root" "$bare" alpine 3
# What the root held for those runs (with the fixtures: the fake sysfs, the
# sockets' places).
listing=$(cd "$bare" && find . -mindepth 1 \( -type f -o -type l -o -type s \) -printf '%P\n' | sort | tr '\n' ' ')
check "bare root: nothing but the binary, os-release and the fixtures ($listing)" \
  [ "$listing" = "etc/os-release run/xga-sys/class/net/eth0/device/devtype run/xga-sys/class/net/eth0/device/nodename usr/sbin/xen-guest-agent " ]

echo "=== portable test: $((SECONDS - start)) s"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
