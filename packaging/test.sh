#!/bin/bash
# Package test: build the .deb, install it into a clean Debian root over a
# dummy xe-guest-utilities, check every file, remove and purge it, and
# check that nothing is left behind; check the systemd unit with
# systemd-analyze (verify, and the security exposure score), and the udev
# rule that onlines hot-plugged vCPUs with the root's own udevadm against a
# made-up sysfs; boot the root under systemd-nspawn (the unit starts in its
# sandbox) and, for the default package, XAPI's static IP setting lasting
# through systemd-networkd and ifupdown across their restart and a reboot
# (packaging/test-static-ip.sh).
#
# usage: packaging/test.sh [--static]   (as root: chroot, dpkg)
#   --static   test the xen-guest-agent-static variant instead (the portable
#              binary, packaging/portable.sh; no Depends at all; installed
#              into a root without libxenstore)
#
# Environment:
#   XGA_PKG_CACHE   where the Debian root tarball is kept between runs
#                   (default ~/.cache/xen-guest-agent-tests/pkg)
#   XGA_PKG_BINARY  package this prebuilt release binary (default: build it)
#   XGA_PKG_SUITE   Debian suite of the test root (default bookworm)
#
# The debootstrap mirror is the first Debian mirror in /etc/apt/sources.list*.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
static=
case ${1:-} in
  --static) static=1 ;;
  "") ;;
  *) echo "usage: $0 [--static]" >&2; exit 2 ;;
esac
cache=${XGA_PKG_CACHE:-$HOME/.cache/xen-guest-agent-tests/pkg}
suite=${XGA_PKG_SUITE:-bookworm}
unit=xen-guest-agent.service
rules=60-xen-guest-agent-vcpu-hotplug.rules
dropin=xen-guest-agent-static-ip.conf
dropin_openstack=xen-guest-agent-openstack.conf
start=$SECONDS
# shellcheck source=packaging/debroot.sh
. "$top/packaging/debroot.sh"

passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok: $*"; }
bad() { failed=$((failed + 1)); echo "FAILED: $*"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
die() { echo "test.sh: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (debootstrap, chroot, dpkg)"

# --- tools ------------------------------------------------------------------
need=()
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v dpkg-shlibdeps >/dev/null || need+=(dpkg-dev)
command -v rpmbuild >/dev/null || need+=(rpm)
command -v systemd-nspawn >/dev/null || need+=(systemd-container)
command -v lintian >/dev/null || need+=(lintian)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

work=$(mktemp -d /tmp/xga-pkg.XXXXXX)
root=$work/root
cleanup() {
  umount "$root/proc" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# --- the packages -------------------------------------------------------------
echo "=== building the package"
args=(--out "$work")
[ -n "$static" ] && args+=(--static)
[ -n "${XGA_PKG_BINARY:-}" ] && args+=(--binary "$XGA_PKG_BINARY")
deb=$("$top/packaging/deb/build.sh" "${args[@]}" | tail -n1)
[ -f "$deb" ] || die "build.sh made no package"
package=$(dpkg-deb -f "$deb" Package)
echo "built $deb ($(du -k "$deb" | cut -f1) KiB)"
dpkg-deb -I "$deb" | sed -n '/Package:/,$p'
# As root, lintian says so on stderr; its verdict is the exit code.
if out=$(lintian --pedantic --fail-on error,warning "$deb" 2>/dev/null); then ok "lintian --pedantic: no error, no warning"
else bad "lintian --pedantic"; echo "$out"; fi

# A stand-in for xe-guest-utilities: same package name, a daemon, a unit
# and, where its .deb has its vCPU rule, a stand-in rule file.
dummy=$work/dummy
mkdir -p "$dummy/DEBIAN" "$dummy/usr/sbin" "$dummy/lib/systemd/system" "$dummy/lib/udev/rules.d"
printf '#!/bin/sh\nexit 0\n' > "$dummy/usr/sbin/xe-daemon"
chmod 0755 "$dummy/usr/sbin/xe-daemon"
printf '[Service]\nExecStart=/usr/sbin/xe-daemon\n' > "$dummy/lib/systemd/system/xe-linux-distribution.service"
echo '# stand-in for xe-guest-utilities vCPU rule' > "$dummy/lib/udev/rules.d/z10_xen-vcpu-hotplug.rules"
cat > "$dummy/DEBIAN/control" <<EOF
Package: xe-guest-utilities
Version: 7.30.0-1
Architecture: $(dpkg --print-architecture)
Maintainer: test <test@example.org>
Description: dummy xe-guest-utilities for the package test
EOF
dpkg-deb --root-owner-group --build "$dummy" "$work/xe-guest-utilities.deb" >/dev/null

# --- a clean Debian root (cached as a tarball) ------------------------------
# libxenstore4 is in the root so that the dynamic package's dependency is
# met offline (the static variant's test removes it first); systemd, dbus
# and iproute2 for the boot under systemd-nspawn (systemd is installed but
# not running during the dpkg tests, as in an image build); udev for its
# udevadm, which reads the installed rule; ifupdown and xenstore-utils for
# the static IP scenario (packaging/test-static-ip.sh).
mkdir -p "$root"
debian_root "$suite" libxenstore4,init-system-helpers,systemd,systemd-sysv,dbus,iproute2,udev,ifupdown,xenstore-utils "$cache" "$root" ||
  die "no Debian root"
mount -t proc proc "$root/proc"
# A chroot without systemd running: maintainer scripts must cope.
rm -rf "$root/run/systemd/system"
cp "$deb" "$work/xe-guest-utilities.deb" "$root/tmp/"
in_root() { chroot "$root" "$@"; }
status() { in_root dpkg-query -W -f '${db:Status-Abbrev}' "$1" 2>/dev/null | tr -d ' ' || true; }

# Every file of the root but those dpkg and apt keep for themselves.
snapshot() {
  (cd "$root" && find . -xdev \( -path ./proc -o -path ./tmp -o -path ./var/lib/dpkg \
      -o -path ./var/log -o -path ./var/cache -o -path ./dev \) -prune -o -printf '%p %y %m %l\n') | sort
}

if [ -n "$static" ]; then
  echo "=== removing libxenstore from the root (the static package needs none)"
  in_root dpkg --purge xenstore-utils libxenstore4 libxentoolcore1 >/dev/null
fi
before=$(snapshot)

echo "=== dpkg -i xe-guest-utilities (dummy), then $package"
check "dummy xe-guest-utilities installs" in_root dpkg -i /tmp/xe-guest-utilities.deb
# What xe-linux-distribution wrote at each start of xe-guest-utilities: no
# package owns it, and ours leaves it alone (see packaging/deb/postinst).
xld=/var/cache/xe-linux-distribution
printf 'os_distro="debian"\nos_majorver="12"\nos_minorver="5"\n' > "$root$xld"
xld_sum=$(md5sum < "$root$xld")
log=$work/install.log
if in_root dpkg -i "/tmp/$(basename "$deb")" > "$log" 2>&1; then ok "dpkg -i $package (no systemd running)"; else bad "dpkg -i $package"; fi
cat "$log"
check "$package is installed" [ "$(status "$package")" = ii ]
check "xe-guest-utilities was removed" test "$(status xe-guest-utilities)" != ii
check "xe-guest-utilities' files are gone" [ ! -e "$root/usr/sbin/xe-daemon" ]
check "xe-guest-utilities' udev rule is gone" [ ! -e "$root/lib/udev/rules.d/z10_xen-vcpu-hotplug.rules" ]
check "$xld is left as it was" [ "$(md5sum < "$root$xld" 2>/dev/null)" = "$xld_sum" ]

echo "=== files"
expected="/etc/default/xen-guest-agent
/lib/systemd/system/$unit
/lib/udev/rules.d/$rules
/usr/sbin/xen-guest-agent
/usr/share/bash-completion/completions/xen-guest-agent
/usr/share/doc/$package/README.md.gz
/usr/share/doc/$package/changelog.Debian.gz
/usr/share/doc/$package/copyright
/usr/share/fish/vendor_completions.d/xen-guest-agent.fish
/usr/share/lintian/overrides/$package
/usr/share/man/man8/xen-guest-agent.8.gz
/usr/share/xen-guest-agent/$dropin_openstack
/usr/share/xen-guest-agent/$dropin
/usr/share/zsh/vendor-completions/_xen-guest-agent"
actual=$(in_root dpkg -L "$package" | while read -r f; do [ -d "$root$f" ] || echo "$f"; done | sort)
if [ "$actual" = "$expected" ]; then ok "the package's files are exactly the expected ones"
else bad "file list"; diff <(echo "$expected") <(echo "$actual") || true; fi
check "binary is root:root 0755" [ "$(stat -c '%U:%G %a' "$root/usr/sbin/xen-guest-agent")" = "root:root 755" ]
check "/etc/default/xen-guest-agent is a conffile" grep -q /etc/default/xen-guest-agent "$root/var/lib/dpkg/info/$package.conffiles"
check "man page is valid gzip" gzip -t "$root/usr/share/man/man8/xen-guest-agent.8.gz"
check "man page documents --schema" sh -c "zcat '$root/usr/share/man/man8/xen-guest-agent.8.gz' | grep -q 'schema'"
check "bash completion parses" bash -n "$root/usr/share/bash-completion/completions/xen-guest-agent"
check "udev rule /lib/udev/rules.d/$rules is startup/$rules" cmp -s "$top/startup/$rules" "$root/lib/udev/rules.d/$rules"
check "the --allow static-ip drop-in is startup/$dropin, 0644, not active" sh -c "cmp -s '$top/startup/$dropin' '$root/usr/share/xen-guest-agent/$dropin' &&
  [ \"\$(stat -c %a '$root/usr/share/xen-guest-agent/$dropin')\" = 644 ] && [ ! -e '$root/etc/systemd/system/$unit.d' ]"
check "the OpenStack drop-in is startup/$dropin_openstack, 0644" sh -c "cmp -s '$top/startup/$dropin_openstack' '$root/usr/share/xen-guest-agent/$dropin_openstack' &&
  [ \"\$(stat -c %a '$root/usr/share/xen-guest-agent/$dropin_openstack')\" = 644 ]"
check "udev rule is root:root 0644" [ "$(stat -c '%U:%G %a' "$root/lib/udev/rules.d/$rules")" = "root:root 644" ]
check "the package suggests xenstore-utils (the xenstore-* commands)" \
  sh -c "dpkg-deb -f '$deb' Suggests | grep -qw xenstore-utils"
check "the service is enabled (multi-user.target.wants)" \
  [ "$(readlink "$root/etc/systemd/system/multi-user.target.wants/$unit")" = "/lib/systemd/system/$unit" ]
version=$(in_root /usr/sbin/xen-guest-agent --version || true)
check "the binary runs in the root: '$version'" [ "${version%% *}" = xen-guest-agent ]
needed=$(readelf -d "$root/usr/sbin/xen-guest-agent" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
echo "NEEDED: $needed"
check "the binary does not link libxenstore (dlopen or static)" sh -c "! echo '$needed' | grep -q xenstore"
if [ -n "$static" ]; then
  check "static package: no dependency at all (Depends, Pre-Depends: '$(dpkg-deb -f "$deb" Depends Pre-Depends)')" \
    [ -z "$(dpkg-deb -f "$deb" Depends Pre-Depends)" ]
  check "static package: the binary has no interpreter, no shared library" \
    "$top/packaging/portable.sh" --check "$root/usr/sbin/xen-guest-agent"
  check "static package: copyright has musl's notice" grep -q 'Rich Felker' "$root/usr/share/doc/$package/copyright"
else
  check "dynamic package depends on libxenstore" sh -c "dpkg-deb -f '$deb' Depends | grep -q 'libxenstore4 | libxenstore3.0'"
fi
# The unit's ExecStart, unchanged, against the installed files.
check "unit's ExecStart names the installed binary" \
  grep -qx 'ExecStart=/usr/sbin/xen-guest-agent $XEN_GUEST_AGENT_ARGS' "$root/lib/systemd/system/$unit"

echo "=== the udev rule: hot-plugged vCPUs brought online"
# The root's own udevadm runs all the root's rules, ours as the package
# installed it, for an event on a made-up CPU device. In a mount namespace
# of its own, tmpfs covers the root's /sys (the device: uevent, subsystem
# link, online file), /dev (null, and /dev/xen/xenbus for a Xen guest),
# /run (udevadm's database) and /etc/udev/rules.d (where a mask goes), so
# nothing is left in the root. `udevadm test` skips RUN but makes ATTR{}=
# writes (systemd 252, bookworm's), so the online file shows the effect;
# SYSTEMD_DEVICE_VERIFY_SYSFS=0 lets it take a /sys that is not sysfs (a
# switch systemd has for tests).
cat > "$work/udev-case.sh" <<'EOF2'
#!/bin/bash
# udev-case.sh ROOT RULES LOG ACTION ONLINE(0|1|none) xen|notxen [masked]:
# prints the CPU's online file after the event ("absent" when it has none).
set -eu
root=$1 rules=$2 log=$3 action=$4 online=$5 xen=$6 mask=${7:-}
for d in sys dev run etc/udev/rules.d; do mount -t tmpfs tmpfs "$root/$d"; done
cpu=$root/sys/devices/system/cpu/cpu1
mkdir -p "$root/sys/bus/cpu/devices" "$cpu"
: > "$cpu/uevent"
ln -s ../../../../bus/cpu "$cpu/subsystem"
if [ "$online" != none ]; then echo "$online" > "$cpu/online"; fi
mknod -m 0666 "$root/dev/null" c 1 3
if [ "$xen" = xen ]; then mkdir "$root/dev/xen"; : > "$root/dev/xen/xenbus"; fi
if [ "$mask" = masked ]; then ln -s /dev/null "$root/etc/udev/rules.d/$rules"; fi
SYSTEMD_DEVICE_VERIFY_SYSFS=0 chroot "$root" udevadm test --action="$action" \
  /sys/devices/system/cpu/cpu1 > "$log" 2>&1 || echo "udevadm test failed: $?" >> "$log"
cat "$cpu/online" 2>/dev/null || echo absent
EOF2
chmod 0755 "$work/udev-case.sh"
ulog=$work/udevadm.log
udev_case() { unshare -m --propagation private "$work/udev-case.sh" "$root" "$rules" "$ulog" "$@"; }
# Our rule's own line in udevadm's log when it writes the attribute.
wrote() { grep -q "$rules:[0-9]*.* ATTR '/sys/devices/system/cpu/cpu1/online' writing '1'" "$ulog"; }
# udev_check WHAT ONLINE-AFTER write|nowrite ACTION ONLINE xen|notxen [masked]
udev_check() {
  local what=$1 want=$2 write=$3 got; shift 3
  got=$(udev_case "$@")
  if [ "$got" = "$want" ] && { if [ "$write" = write ]; then wrote; else ! wrote; fi; }; then ok "udev: $what"
  else bad "udev: $what (online after: '$got', wanted '$want' and $write by our rule; udevadm's log:)"; cat "$ulog"; fi
}
udev_check "a Xen guest's hot-plugged vCPU (add, online 0) is brought online" 1 write add 0 xen
udev_check "not in a Xen guest (no /dev/xen/xenbus): left offline" 0 nowrite add 0 notxen
udev_check "a change event: left offline" 0 nowrite change 0 xen
udev_check "an online vCPU: not written" 1 nowrite add 1 xen
udev_check "a CPU without an online attribute: nothing written" absent nowrite add none xen
udev_check "masked (/etc/udev/rules.d/$rules -> /dev/null, as the rule says): left offline" 0 nowrite add 0 xen masked

echo "=== systemd-analyze"
# verify looks ExecStart's binary and Documentation's man page up on this
# host: point both at the root.
sed "s|^ExecStart=/usr/sbin/|ExecStart=$root/usr/sbin/|" "$root/lib/systemd/system/$unit" > "$work/$unit"
if out=$(MANPATH=$root/usr/share/man systemd-analyze verify "$work/$unit" 2>&1) && [ -z "$out" ]; then
  ok "systemd-analyze verify: no complaint"
else bad "systemd-analyze verify"; echo "$out"; fi
security=$(systemd-analyze security --offline=yes "$root/lib/systemd/system/$unit" 2>&1 || true)
echo "$security" | grep '✗' || true
score=$(echo "$security" | sed -n 's/.*Overall exposure level for .*: \([0-9.]*\) \([A-Z]*\).*/\1 \2/p')
echo "systemd-analyze security: exposure $score"
case ${score#* } in
  OK|SAFE|PERFECT) ok "exposure level '${score#* }' is OK or better" ;;
  *) bad "exposure level '$score' is worse than OK" ;;
esac
# With each drop-in: still valid, and what it adds to the score is exactly
# what it grants on purpose. A copy, not the README's symlink:
# systemd-analyze --root (252) skips a drop-in linked to an absolute path
# without a word (the booted systemd follows it: the VM tier's static-ip
# and openstack scenarios link them as the README says).
# dropin_cost WHAT FILE FINDINGS: FINDINGS are the new ✗ lines' names.
dropin_cost() {
  local what=$1 file=$2 findings=$3 out with score_with extra
  mkdir -p "$work/$unit.d" "$root/etc/systemd/system/$unit.d"
  cp "$root/usr/share/xen-guest-agent/$file" "$root/etc/systemd/system/$unit.d/$what.conf"
  cp "$root/usr/share/xen-guest-agent/$file" "$work/$unit.d/$what.conf"
  if out=$(MANPATH=$root/usr/share/man systemd-analyze verify "$work/$unit" 2>&1) && [ -z "$out" ]; then
    ok "systemd-analyze verify with the $what drop-in: no complaint"
  else bad "systemd-analyze verify with the $what drop-in"; echo "$out"; fi
  with=$(systemd-analyze security --offline=yes --root="$root" "$unit" 2>&1 || true)
  score_with=$(echo "$with" | sed -n 's/.*Overall exposure level for .*: \([0-9.]*\) \([A-Z]*\).*/\1 \2/p')
  extra=$(comm -13 <(echo "$security" | grep '✗' | awk '{print $2}' | sort) <(echo "$with" | grep '✗' | awk '{print $2}' | sort) | tr '\n' ' ')
  echo "systemd-analyze security with the $what drop-in: exposure $score_with, new findings: $extra"
  check "the $what drop-in costs what it grants and no more (new findings: $extra), exposure '$score_with' still OK" \
    sh -c "[ '$extra' = '$findings' ] && case '${score_with#* }' in OK|SAFE|PERFECT) true ;; *) false ;; esac"
  rm -rf "$root/etc/systemd/system/$unit.d" "$work/$unit.d"
}
dropin_cost static-ip "$dropin" 'CapabilityBoundingSet=~CAP_NET_ADMIN '
dropin_cost openstack "$dropin_openstack" \
  'CapabilityBoundingSet=~CAP_(CHOWN|FSETID|SETFCAP) CapabilityBoundingSet=~CAP_NET_ADMIN CapabilityBoundingSet=~CAP_SYS_ADMIN SystemCallFilter=~@privileged '

echo "=== dpkg -r, then dpkg -P"
if in_root dpkg -r "$package" > "$log" 2>&1; then ok "dpkg -r"; else bad "dpkg -r"; fi
cat "$log"
check "removed: state rc (config files kept)" [ "$(status "$package")" = rc ]
check "removed: binary gone" [ ! -e "$root/usr/sbin/xen-guest-agent" ]
check "removed: conffile kept" [ -f "$root/etc/default/xen-guest-agent" ]
# Its enablement stays until purge (an administrator's choice survives a
# remove/reinstall), masked so that it cannot start anything meanwhile.
check "removed: unit masked" [ "$(readlink "$root/etc/systemd/system/$unit")" = /dev/null ]
if in_root dpkg -P "$package" > "$log" 2>&1; then ok "dpkg -P"; else bad "dpkg -P"; fi
cat "$log"
check "purged: package unknown to dpkg" [ -z "$(status "$package")" ]
check "purged: $xld is still left as it was" [ "$(md5sum < "$root$xld" 2>/dev/null)" = "$xld_sum" ]
rm -f "$root$xld"
after=$(snapshot)
if [ "$before" = "$after" ]; then
  ok "purged: the root is file for file as before the install"
else
  bad "purged: files left behind or changed (- before, + after):"
  diff <(echo "$before") <(echo "$after") || true
fi

echo "=== the service under a running systemd (systemd-nspawn)"
# The package installed again, the root booted with systemd: the unit must
# start (Type=notify: READY=1 after the first publication) inside its
# sandbox. Not a Xen guest: the drop-in lifts the unit's Xen conditions
# (ConditionVirtualization, ConditionPathExists) and
# the agent publishes on stdout (through XEN_GUEST_AGENT_ARGS in
# /etc/default, as an administrator would). An ExecStartPre probe, in the
# same sandbox, checks that what the agent needs is reachable and the rest
# is read-only.
in_root dpkg -i "/tmp/$(basename "$deb")" >/dev/null
echo 'XEN_GUEST_AGENT_ARGS="--publisher stdout --loglevel debug"' >> "$root/etc/default/xen-guest-agent"
mkdir -p "$root/etc/systemd/system/$unit.d"
cat > "$root/etc/systemd/system/$unit.d/test.conf" <<'EOF2'
[Unit]
ConditionVirtualization=
ConditionPathExists=
[Service]
ExecStartPre=/bin/sh -c 'read -r l < /proc/meminfo && read -r l < /proc/sys/kernel/osrelease && read -r l < /etc/os-release && read -r l < /sys/class/net/lo/address && ip -o link show lo >/dev/null && ! touch /etc/xga-probe 2>/dev/null && ! touch /var/xga-probe 2>/dev/null && echo probe-ok'
EOF2
cat > "$root/etc/systemd/system/xga-report.service" <<'EOF2'
[Unit]
After=xen-guest-agent.service
[Service]
Type=oneshot
# After the agent's start job is done (success or not): change the host
# name, as hostnamectl does (sethostname(2)), and wait (at most 5 s) for the
# agent under its unit to print it (ProtectHostname= would hide it); then
# record and power off.
ExecStart=/bin/sh -c 'hostname xga-renamed.lab.example; for i in $$(seq 50); do journalctl -b -o cat -u xen-guest-agent | grep -qx "host-name host=xga-renamed domain=lab.example" && break; sleep 0.1; done'
ExecStart=/bin/sh -c 'systemctl show xen-guest-agent -p Result -p NRestarts -p ExecMainStatus -p ExecMainCode > /root/xga-show; journalctl --no-pager -b -o cat -u xen-guest-agent > /root/xga-journal; systemctl poweroff'
[Install]
WantedBy=multi-user.target
EOF2
ln -sf /etc/systemd/system/xga-report.service "$root/etc/systemd/system/multi-user.target.wants/xga-report.service"
umount "$root/proc"
if timeout 180 systemd-nspawn -q --register=no --keep-unit -D "$root" -b --console=pipe > "$work/boot.log" 2>&1 &&
    [ -f "$root/root/xga-show" ]; then
  ok "the root boots under systemd-nspawn"
  cat "$root/root/xga-journal"
  sed 's/^/  /' "$root/root/xga-show"
  check "sandbox probe: /proc, /sys, os-release, netlink reachable; /etc, /var read-only" grep -qx probe-ok "$root/root/xga-journal"
  check "the unit started: READY=1 received (Type=notify)" grep -q '^Started xen-guest-agent.service' "$root/root/xga-journal"
  check "the agent logged through syslog (/dev/log) in its sandbox" grep -q 'xen-guest-agent .* starting' "$root/root/xga-journal"
  check "a host name change is seen by the agent under its unit" grep -qx 'host-name host=xga-renamed domain=lab.example' "$root/root/xga-journal"
  check "no failure, no restart, not killed (seccomp)" sh -c "grep -qx Result=success '$root/root/xga-show' && grep -qx NRestarts=0 '$root/root/xga-show' && ! grep -qE 'ExecMainCode=(2|3)' '$root/root/xga-show'"
else
  bad "boot under systemd-nspawn"; tail -n 30 "$work/boot.log"
fi

if [ -z "$static" ]; then
  # shellcheck source=packaging/test-static-ip.sh
  . "$top/packaging/test-static-ip.sh"
fi

echo "=== RPM spec"
spec=$top/packaging/rpm/xen-guest-agent.spec
for w in "" "--with static"; do
  # shellcheck disable=SC2086
  if out=$(rpmspec -P $w "$spec" 2>&1 >/dev/null) && [ -z "$out" ]; then ok "rpmspec -P $w parses the spec, no warning"
  else bad "rpmspec -P $w"; echo "$out"; fi
done
# The same binary as the .deb's.
dpkg-deb --fsys-tarfile "$deb" | tar -xO ./usr/sbin/xen-guest-agent > "$work/xen-guest-agent"
chmod 0755 "$work/xen-guest-agent"
rargs=(--out "$work/rpm" --binary "$work/xen-guest-agent")
[ -n "$static" ] && rargs+=(--static)
if rpm=$("$top/packaging/rpm/build.sh" "${rargs[@]}" 2>"$work/rpmbuild.log" | tail -n1) && [ -f "$rpm" ]; then
  ok "rpmbuild from the prebuilt binary: $(basename "$rpm")"
  rfiles=$(rpm -qlp "$rpm" 2>/dev/null)
  for f in /usr/sbin/xen-guest-agent /usr/lib/systemd/system/$unit /etc/sysconfig/xen-guest-agent \
      /usr/share/man/man8/xen-guest-agent.8 /usr/share/bash-completion/completions/xen-guest-agent \
      /usr/share/zsh/site-functions/_xen-guest-agent /usr/share/fish/vendor_completions.d/xen-guest-agent.fish; do
    check "rpm has $f" grep -qx "$f" <<<"$rfiles"
  done
  check "rpm has /usr/lib/udev/rules.d/$rules" grep -qx "/usr/lib/udev/rules.d/$rules" <<<"$rfiles"
  for f in "$dropin" "$dropin_openstack"; do
    check "rpm has /usr/share/xen-guest-agent/$f" grep -qx "/usr/share/xen-guest-agent/$f" <<<"$rfiles"
  done
  check "rpm's udev rule is startup/$rules" \
    sh -c "rpm2archive - < '$rpm' | tar -xzO ./usr/lib/udev/rules.d/$rules | cmp -s - '$top/startup/$rules'"
  check "rpm's udev rule is 0644" sh -c "rpm -qp --qf '[%{FILEMODES:perms} %{FILENAMES}\n]' '$rpm' 2>/dev/null |
    grep -qx -- '-rw-r--r-- /usr/lib/udev/rules.d/$rules'"
  check "rpm obsoletes xe-guest-utilities" sh -c "rpm -qp --obsoletes '$rpm' 2>/dev/null | grep -q '^xe-guest-utilities '"
  check "rpm does not obsolete xe-guest-utilities-xenstore (the xenstore-* commands stay)" \
    sh -c "! rpm -qp --obsoletes '$rpm' 2>/dev/null | grep -q '^xe-guest-utilities-xenstore'"
  if [ -n "$static" ]; then
    check "static rpm requires neither glibc nor xen-libs: $(rpm -qp --requires "$rpm" 2>/dev/null | sort -u | tr '\n' ' ')" \
      sh -c "! rpm -qp --requires '$rpm' 2>/dev/null | grep -qE 'xen-libs|libc\.so|glibc|rtld|\.so'"
    check "static rpm has musl's notice" grep -q NOTICE-static <<<"$rfiles"
  else
    check "rpm requires xen-libs" sh -c "rpm -qp --requires '$rpm' 2>/dev/null | grep -qx xen-libs"
  fi
else
  bad "rpmbuild"; tail -n 20 "$work/rpmbuild.log"
fi

echo "=== package test: $((SECONDS - start)) s"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
