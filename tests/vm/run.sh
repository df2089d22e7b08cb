#!/bin/bash
# The real-Xen test tier: boots Xen 4.17 + a Debian dom0 + a domU under QEMU
# TCG, runs the agent in the domU as its systemd unit would, and checks from
# dom0 (xenstore-ls, xenstore-read, xenstore-watch) what a toolstack sees.
#
#   tests/vm/run.sh [SCENARIO...]     (root needed)
#   tests/vm/run.sh                   the default set: every scenario but bench,
#                                     save-restore and pvh, which the systemd
#                                     guests cover (sd-bench; deb12, soak; deb12-pvh)
#   tests/vm/run.sh all               every scenario
#   tests/vm/run.sh --list
#
# Scenarios, and the boot each runs in (a busybox boot costs ~30-40 s, a
# systemd one ~1 min, before the scenarios):
#   smoke         boot pv:  the binary runs in the guest (--publisher stdout)
#   std           boot pv:  the std tree, compared with the guest's real facts
#                           and with what XAPI would derive from it
#   bench         boot pv:  RSS, threads, CPU, context switches, syscalls,
#                           add/remove latency (XGA-BENCH lines)
#   net           boot pv:  IPv4 add/remove, IPv6 churn past the cap, VIF hot-plug
#   save-restore  boot pv:  xl save + xl restore, agent not restarted
#   balloon       boot pv:  control/feature-balloon refused under libxl (logged once)
#                 boot balloon: pre-created writable (as XAPI does): reads 1
#   rfc           boot rfc: the rfc schema (XENSTORE_SCHEMA=rfc)
#   pvh           boot pvh: the std scenario in a PVH guest
#   portable      boots portable (PV) and portable-pvh (PVH), and the rfc
#                 boot: the portable package's binary in guests without
#                 libxenstore (checked: none in the guest, the native
#                 backend logged, one thread), then std and net (and
#                 save-restore when asked) (PV), std (PVH) and rfc as the
#                 default binary has them (Debian 11 saves and restores it)
# Systemd guests, booted from a Debian root on a Xen PV disk (the package
# installed with apt, started by its maintainer scripts under its unit):
#   deb12         boot deb12 (PV, Debian 12): the package's whole life
#                 (tests/vm/README.md), ended by the purge scenario
#   sd-bench      boot deb12: RSS, PSS, threads, syscalls, xenstore requests
#                 at idle under the unit
#   soak          boot deb12: 10 xl save/restore and 10 network-attach/detach
#                 cycles with address churn, the whole tree checked after each
#   static-ip     boot deb12 (after deb12): XAPI's static IP setting, allowed
#                 with the drop-in, applied, answered, back to DHCP, withdrawn
#   openstack     boot deb12 (after deb12): OpenStack's guest-agent commands,
#                 allowed with the drop-in: nova's first-boot sequence from
#                 dom0 (tests/openstack/nova-client.sh) changes root's
#                 password, authorized_keys, eth0's address, the host name
#   deb12-pvh     boot deb12-pvh: the deb12 scenario in a PVH guest
#   deb11         boot deb11 (PV, Debian 11, glibc 2.31): the portable package's
#                 whole life; without it the default package fails there
#   purge         every systemd boot ends with it: apt purge, nothing left
#
# Environment:
#   XGA_VM_CACHE=<repo>/target/vm-cache  downloads, images, boot logs
#   XGA_VM_AGENT=PATH   the agent binary to test (default: cargo build --release)
#   XGA_VM_DEB=PATH     test the installed package instead: the binary, the
#                       systemd unit and /etc/default file come from this .deb
#                       (dpkg-deb -x), as the package installs them
#   XGA_VM_DEB_PORTABLE=PATH  the portable package (packaging/deb/build.sh
#                       --static, no Depends): its binary runs in the
#                       portable boots and the rfc one, the Debian 11 guest
#                       installs it; unset, the portable scenario is left
#                       out (said so; a failure under CI=true), rfc runs the
#                       default binary, and the deb11 scenario shows the
#                       default package failing there (glibc 2.34 needed)
#   XGA_VM_BENCH_FILE=$XGA_VM_CACHE/bench.txt  where the XGA-BENCH lines go
#   XGA_VM_IDLE=60      s of each benchmark window
#   XGA_VM_QUIET=1      do not echo the consoles (logs stay in $XGA_VM_CACHE/runs)
#   XGA_VM_JOBS=2       boots at a time (1: one after the other, consoles readable)
#   and the knobs of lib/boot.sh (timeouts, retries, QEMU, CPU...).
# Last line: "tests/vm: N passed, M failed" (scenarios per boot, plus boots
# without a clean result). Exit status: 0 when all passed, 1 otherwise.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
ALL="smoke std bench net save-restore balloon rfc pvh portable deb12 sd-bench soak static-ip openstack deb12-pvh deb11 purge"
# Without arguments: every scenario but those the systemd guests cover
# (bench: sd-bench; save-restore: deb12 and soak; pvh: deb12-pvh and
# portable-pvh)
DEFAULT="smoke std net balloon rfc portable deb12 sd-bench soak static-ip openstack deb12-pvh deb11 purge"

if [ "${1:-}" = --list ]; then echo "$ALL"; exit 0; fi
[ "${1:-}" = all ] && set -- $ALL
if [ "$(id -u)" != 0 ]; then
  echo "tests/vm: SKIPPED: needs root (apt-get install, building images)"; exit 0
fi
want=" ${*:-$DEFAULT} "
for s in $want; do
  [[ " $ALL " == *" $s "* ]] || { echo "tests/vm: unknown scenario '$s' (known: $ALL)" >&2; exit 2; }
done
sel() { [[ "$want" == *" $1 "* ]]; }
# the systemd boots run their scenarios in order, and end with purge
sel purge && ! sel deb12 && ! sel deb12-pvh && ! sel deb11 && want+="deb12 "
# static-ip acts on the package deb12 installed
sel static-ip && ! sel deb12 && want+="deb12 "
sel openstack && ! sel deb12 && want+="deb12 "
suites=
{ sel deb12 || sel sd-bench || sel soak || sel static-ip || sel openstack || sel deb12-pvh; } && suites+=" bookworm"
sel deb11 && suites+=" bullseye"

export XGA_VM_CACHE=${XGA_VM_CACHE:-$REPO/target/vm-cache}
mkdir -p "$XGA_VM_CACHE"
XGA_VM_CACHE=$(cd "$XGA_VM_CACHE" && pwd)
BENCH_FILE=${XGA_VM_BENCH_FILE:-$XGA_VM_CACHE/bench.txt}
T0=$SECONDS

# one run at a time per cache
exec 9>"$XGA_VM_CACHE/.lock"
flock -n 9 || { echo "tests/vm: waiting for another run using $XGA_VM_CACHE"; flock 9; }

echo "tests/vm: cache $XGA_VM_CACHE"
command -v jq >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq jq; }
"$HERE/dom0/selftest.sh" > "$XGA_VM_CACHE/checks-selftest.log" 2>&1 ||
  { cat "$XGA_VM_CACHE/checks-selftest.log"; echo "tests/vm: FAIL: the checks themselves are broken"; exit 1; }
tail -n1 "$XGA_VM_CACHE/checks-selftest.log"
# shellcheck disable=SC2086
nice "$HERE/lib/build.sh" $suites || { echo "tests/vm: FAIL: cannot build the VM images"; exit 1; }

W=$(mktemp -d "$XGA_VM_CACHE/work.XXXXXX")
trap 'rm -rf "$W"' EXIT
trap 'exit 130' INT TERM

UNIT=$REPO/startup/xen-guest-agent.service
if [ -n "${XGA_VM_DEB:-}" ]; then
  # The package as installed: its binary, its unit, its defaults file.
  dpkg-deb -x "$XGA_VM_DEB" "$W/deb" || { echo "tests/vm: FAIL: cannot unpack $XGA_VM_DEB"; exit 1; }
  AGENT=$W/deb/usr/sbin/xen-guest-agent
  UNIT=$(find "$W/deb" -name xen-guest-agent.service | head -n1)
  echo "tests/vm: testing the package $XGA_VM_DEB (unit ${UNIT#$W/deb})"
elif [ -n "${XGA_VM_AGENT:-}" ]; then AGENT=$XGA_VM_AGENT
else
  echo "tests/vm: cargo build --release"
  (cd "$REPO" && nice cargo build --release --quiet) || { echo "tests/vm: FAIL: cargo build --release"; exit 1; }
  AGENT=${CARGO_TARGET_DIR:-$REPO/target}/release/xen-guest-agent
fi
[ -x "$AGENT" ] || { echo "tests/vm: FAIL: no agent binary at $AGENT"; exit 1; }
VERSION=$("$AGENT" --version | awk '{print $NF}')
# The systemd guests install a package: XGA_VM_DEB, else one made from $AGENT.
DEB=${XGA_VM_DEB:-}
if [ -n "$suites" ] && [ -z "$DEB" ]; then
  echo "tests/vm: packaging $AGENT for the systemd guests (packaging/deb/build.sh --binary)"
  DEB=$("$REPO/packaging/deb/build.sh" --binary "$AGENT" --out "$W/deb-built" 2>"$W/deb-build.log" | tail -n1)
  [ -f "$DEB" ] || { cat "$W/deb-build.log"; echo "tests/vm: FAIL: cannot build the package"; exit 1; }
fi
PORTABLE=${XGA_VM_DEB_PORTABLE:-}
[ -z "$PORTABLE" ] || [ -f "$PORTABLE" ] || { echo "tests/vm: FAIL: XGA_VM_DEB_PORTABLE=$PORTABLE: no such file"; exit 1; }
PORTABLE_AGENT=
if [ -n "$PORTABLE" ]; then
  dpkg-deb -x "$PORTABLE" "$W/portable" || { echo "tests/vm: FAIL: cannot unpack $PORTABLE"; exit 1; }
  PORTABLE_AGENT=$W/portable/usr/sbin/xen-guest-agent
elif sel portable; then
  if [ "${CI:-}" = true ]; then
    echo "tests/vm: FAIL: the portable scenario needs XGA_VM_DEB_PORTABLE (packaging/deb/build.sh --static)"; exit 1
  fi
  echo "tests/vm: skipping the portable scenario: XGA_VM_DEB_PORTABLE is not set (packaging/deb/build.sh --static makes it)"
  want=${want/ portable / }
fi

# The agent runs as its systemd unit starts it: ExecStart's arguments and
# Environment= of the unit (the package's, or startup/'s) when it exists.
ARGS= ENVS=
if [ -f "$UNIT" ]; then
  ARGS=$(sed -n 's/^ExecStart=[^ ]*//p' "$UNIT" | head -n1)
  ENVS=$(sed -n 's/^Environment=//p' "$UNIT" | tr ' ' '\n' | tr -d '"')
fi

# boot NAME SCENARIOS [VAR=VALUE...]: one boot running SCENARIOS; VAR=VALUE
# are boot.sh knobs, AGENT_ENV=... for the agent's environment, PKG=PATH the
# package a systemd guest (XGA_VM_DISK=...) installs
boot() {
  local name=$1 scen=$2 kv; shift 2
  local g=$W/$name-guest d=$W/$name-dom0 agent_env= pkg= gscript=$HERE/guest/guest.sh bin=$AGENT
  local -a knobs=()
  for kv in "$@"; do
    case $kv in
      AGENT_ENV=*) agent_env=${kv#AGENT_ENV=} ;;
      AGENT_BIN=*) bin=${kv#AGENT_BIN=} ;;
      PKG=*) pkg=${kv#PKG=}; gscript=$HERE/guest/sd-guest.sh ;;
      *) knobs+=("$kv") ;;
    esac
  done
  mkdir -p "$g" "$d"
  cp -a "$HERE/guest/bin" "$g/"
  if [ -n "$pkg" ]; then
    mkdir -p "$g/pkg"; cp "$pkg" "$g/pkg/"
  else
    install -m 0755 "$bin" "$g/bin/xen-guest-agent"
    echo "$ARGS" > "$g/agent.args"
    printf '%s\n' $ENVS $agent_env | grep . > "$g/agent.env"
  fi
  cp "$HERE"/dom0/* "$d/"
  { echo "XGA_SCENARIOS='$scen'"
    echo "XGA_DEB=${pkg##*/}"
    echo "XGA_PORTABLE=$( [ -n "$pkg" ] && [ "$pkg" = "$PORTABLE" ] && echo 1 || echo 0)"
    echo "XGA_VERSION=$VERSION"
    echo "XGA_CAP=32"
    echo "XGA_IDLE=${XGA_VM_IDLE:-60}"
    echo "XGA_BALLOON=$( [[ " ${knobs[*]} " == *"XGA_VM_XS_PRECREATE=control/feature-balloon"* ]] && echo 1 || echo absent)"
  } > "$W/$name.env"
  env "${knobs[@]}" XGA_VM_DOM0_ENV="$W/$name.env" \
    "$HERE/lib/boot.sh" "$name" "$g" "$gscript" "$d" "$d/main.sh"
}
# The boots, longest first; XGA_VM_JOBS of them at a time (each QEMU keeps
# about one core busy: dom0 and the domU mostly take turns).
declare -A BOOT_SCEN
declare -a QUEUE=()
queue() { BOOT_SCEN[$1]=$2; QUEUE+=("$(printf '%q ' "$@")"); }
IMGS=$XGA_VM_CACHE/images   # systemd guests: 192 MiB (xl save writes all of it; 256 leaves 170 MiB free)
sd=
for s in deb12 sd-bench soak static-ip openstack; do sel $s && sd+=" $s"; done
[ -n "$sd" ] && queue deb12 "$sd purge" PKG="$DEB" XGA_VM_DISK="$IMGS/disk-bookworm.img" XGA_VM_DLOPEN= XGA_VM_DOMU_MEM=192
sel deb12-pvh && queue deb12-pvh "deb12-pvh purge" PKG="$DEB" XGA_VM_DISK="$IMGS/disk-bookworm.img" XGA_VM_DLOPEN= XGA_VM_DOMU_MEM=192 XGA_VM_DOMU_TYPE=pvh
# With the portable binary, net and save-restore run in its boot (the
# default binary keeps smoke, std, bench and balloon, with libxenstore).
pv= port=
for s in smoke std bench net save-restore balloon; do
  if sel portable && { [ "$s" = net ] || [ "$s" = save-restore ]; }; then
    sel $s && port+=" $s"
  else
    sel $s && pv+=" $s"
  fi
done
[ -n "$pv" ] && queue pv "${pv# }"
# The portable binary in guests without libxenstore (XGA_VM_DLOPEN empty).
NOLIB=(AGENT_BIN="$PORTABLE_AGENT" XGA_VM_DLOPEN=)
sel portable && queue portable "portable std$port" "${NOLIB[@]}"
sel deb11 && queue deb11 "deb11 purge" PKG="${PORTABLE:-$DEB}" XGA_VM_DISK="$IMGS/disk-bullseye.img" XGA_VM_DLOPEN= XGA_VM_DOMU_MEM=192
if sel rfc && sel portable; then
  queue rfc "portable rfc" AGENT_ENV=XENSTORE_SCHEMA=rfc "${NOLIB[@]}"
elif sel rfc; then
  queue rfc "rfc" AGENT_ENV=XENSTORE_SCHEMA=rfc
fi
sel portable && queue portable-pvh "portable pvh" XGA_VM_DOMU_TYPE=pvh "${NOLIB[@]}"
sel pvh && queue pvh "pvh" XGA_VM_DOMU_TYPE=pvh
sel balloon && queue balloon "balloon" XGA_VM_XS_PRECREATE=control/feature-balloon
JOBS=${XGA_VM_JOBS:-2}
for entry in "${QUEUE[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n; done
  eval "boot $entry" &
  [ "$JOBS" -gt 1 ] && sleep 5   # the boots' first seconds (image unpacking) apart
done
wait

# ------------------------------------------------------------------ summary
RUNS=$XGA_VM_CACHE/runs
{ echo "# tests/vm benchmarks, $(date -u +%FT%TZ), agent $VERSION ($(git -C "$REPO" describe --always --dirty 2>/dev/null)), $(stat -c %s "$AGENT") bytes"
  for b in "${!BOOT_SCEN[@]}"; do
    grep -a -o 'XGA-BENCH .*' "$RUNS/$b.log" | sed "s/^XGA-BENCH /XGA-BENCH boot=$b /"
  done
  echo "XGA-BENCH boot=host binary_bytes=$(stat -c %s "$AGENT")"
} > "$BENCH_FILE"
fails=0 passes=0
echo
echo "================ tests/vm summary ================"
for b in pv portable balloon rfc pvh portable-pvh deb12 deb12-pvh deb11; do
  [ -n "${BOOT_SCEN[$b]:-}" ] || continue
  log=$RUNS/$b.log
  for s in ${BOOT_SCEN[$b]}; do
    npass=$(grep -a -c "XENVM-CHECK PASS \[$s\]" "$log")
    nfail=$(grep -a -c "XENVM-CHECK FAIL \[$s\]" "$log")
    if ! grep -a -q "XENVM-SCENARIO-END $s\$" "$log"; then
      printf 'FAIL  %-13s (boot %s) did not finish (%d passed, %d failed before): see %s\n' "$s" "$b" "$npass" "$nfail" "$log"
      fails=$((fails+1))
      grep -a -E "XENVM-(CHECK FAIL|DETAIL) \[$s\]" "$log" |
        sed -E 's/^\[ *[0-9.]*\] XENVM-CHECK FAIL \[[^]]*\] /      /; s/^\[ *[0-9.]*\] XENVM-DETAIL \[[^]]*\] /          /'
    elif [ "$nfail" -gt 0 ] || [ "$npass" = 0 ]; then
      printf 'FAIL  %-13s (boot %s) %d passed, %d failed\n' "$s" "$b" "$npass" "$nfail"; fails=$((fails+1))
      grep -a -E "XENVM-(CHECK FAIL|DETAIL) \[$s\]" "$log" |
        sed -E 's/^\[ *[0-9.]*\] XENVM-CHECK FAIL \[[^]]*\] /      /; s/^\[ *[0-9.]*\] XENVM-DETAIL \[[^]]*\] /          /'
    else
      printf 'PASS  %-13s (boot %s) %d checks\n' "$s" "$b" "$npass"; passes=$((passes+1))
    fi
  done
  grep -a -q 'XENVM-RESULT guest=0 ' "$log" ||
    { echo "FAIL  (boot $b) $(grep -a -o 'XENVM-RESULT .*' "$log" || echo 'no result: crashed or timed out'), see $log"; fails=$((fails+1)); }
done
echo "benchmarks: $BENCH_FILE"
sed 's/^/  /' "$BENCH_FILE"
echo "logs: $RUNS/<boot>.log; total $((SECONDS - T0)) s"
echo "tests/vm: $passes passed, $fails failed"
[ $fails = 0 ]
