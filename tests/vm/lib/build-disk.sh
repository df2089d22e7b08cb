#!/bin/bash
# Build (once) the root disk of a systemd guest: a Debian SUITE made with
# debootstrap, as a raw ext4 image (mkfs.ext4 -d, no loop device) in
# $XGA_VM_CACHE/images/disk-SUITE.img. QEMU gives it to dom0 as a virtio
# disk, dom0 to the domU as a Xen PV disk (phy:, blkback -> xvda).
#
#   build-disk.sh SUITE REPO_PKGS   e.g. build-disk.sh bookworm "libxenstore4 libxentoolcore1"
#
# What the image holds:
#   - minbase + systemd as PID 1, dbus, iproute2 (and strace, for the
#     figures): no network configuration, no getty, no udev (lib/disk-init
#     loads the Xen front-end drivers before systemd starts);
#   - REPO_PKGS (a package and its dependencies) NOT installed but in a local apt
#     repository (/var/local/xga-repo, the only apt source: the guest has no
#     network), so that `apt install ./xen-guest-agent_*.deb` resolves the
#     package's dependencies from Debian's own .debs, offline;
#   - the harness's unit xenvm-exec.service (dom0's command channel, runs
#     /xenvm/serve.sh, which lib/disk-init copies in at every boot).
# Rebuilt only when its recipe (this script, SUITE, REPO_PKGS) changes;
# debootstrap's mirror is the first Debian mirror in /etc/apt/sources.list*.
set -euo pipefail
: "${XGA_VM_CACHE:?XGA_VM_CACHE must be set (tests/vm/run.sh sets it)}"
SUITE=$1 REPO_PKGS=$2
OUT=$XGA_VM_CACHE/images
IMG=$OUT/disk-$SUITE.img
log() { echo "[vm-build] $*" >&2; }
mkdir -p "$OUT"
recipe=$( { cat "$0"; echo "$SUITE $REPO_PKGS"; } | sha256sum | cut -c1-64)
if [ -f "$IMG" ] && [ "$(cat "$IMG.recipe" 2>/dev/null)" = "$recipe" ]; then exit 0; fi
rm -f "$IMG" "$IMG.recipe"

need=()
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v mkfs.ext4 >/dev/null || need+=(e2fsprogs)
command -v dpkg-scanpackages >/dev/null || need+=(dpkg-dev)
if [ ${#need[@]} -gt 0 ]; then
  log "apt-get install ${need[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi
mirror=$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\).*/\1/p; s/^deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\{0,1\}\(http[^[:space:]]*\).*/\2/p' \
  /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null |
  grep -m1 -E '/debian/?$' || true)
mirror=${mirror:-http://deb.debian.org/debian}

R=$XGA_VM_CACHE/root-$SUITE
cleanup() { for m in dev/pts dev proc; do umount "$R/$m" 2>/dev/null || true; done; }
trap cleanup EXIT
cleanup; rm -rf "$R"
t=$SECONDS
log "debootstrap $SUITE from $mirror (disk image of the systemd guest)"
include=systemd,systemd-sysv,dbus,iproute2,strace${REPO_PKGS:+,${REPO_PKGS// /,}}
debootstrap --variant=minbase --include="$include" "$SUITE" "$R" "$mirror" > "$XGA_VM_CACHE/debootstrap-$SUITE.log" 2>&1 ||
  { tail -n 20 "$XGA_VM_CACHE/debootstrap-$SUITE.log" >&2; log "debootstrap $SUITE failed"; exit 1; }
in_root() { chroot "$R" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive "$@"; }
mount -t proc proc "$R/proc"; mount --bind /dev "$R/dev"; mount --bind /dev/pts "$R/dev/pts"

# The local repository: the .debs of REPO_PKGS (the package under test's
# dependencies and theirs, named in full), which debootstrap fetched and
# installed, removed from the root again.
repo=$R/var/local/xga-repo
mkdir -p "$repo"
if [ -n "$REPO_PKGS" ]; then
  for p in $REPO_PKGS; do cp "$R"/var/cache/apt/archives/"${p}"_*.deb "$repo/"; done
  # shellcheck disable=SC2086
  in_root dpkg --purge $REPO_PKGS >&2
  log "local apt repository: $(cd "$repo" && echo *.deb)"
fi
(cd "$repo" && dpkg-scanpackages -m . /dev/null 2>/dev/null > Packages)
rm -f "$R"/etc/apt/sources.list.d/* "$R"/var/cache/apt/archives/*.deb
echo 'deb [trusted=yes] file:/var/local/xga-repo ./' > "$R/etc/apt/sources.list"
rm -rf "$R"/var/lib/apt/lists/*
in_root apt-get update -qq >&2
rm -f "$R"/var/cache/apt/archives/*.deb   # the package caches stay: apt starts faster

# A quiet, deterministic guest: no getty on the console (the log is the
# console), no timers that would run apt or fstrim during a measurement.
echo domU > "$R/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 domU\n' > "$R/etc/hosts"
for u in getty@tty1.service serial-getty@hvc0.service getty.target apt-daily.timer apt-daily-upgrade.timer \
         dpkg-db-backup.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer systemd-pstore.service; do
  ln -sfn /dev/null "$R/etc/systemd/system/$u"
done
rm -f "$R"/etc/systemd/system/*.wants/{getty@tty1.service,apt-daily.timer,apt-daily-upgrade.timer,dpkg-db-backup.timer,e2scrub_all.timer,fstrim.timer,e2scrub_reap.service,systemd-pstore.service}
# no empty .wants directory: systemctl removes those when it disables anything
rmdir --ignore-fail-on-non-empty "$R"/etc/systemd/system/*.wants
cat > "$R/etc/systemd/system/xenvm-exec.service" <<'EOF'
# Test harness (tests/vm), not part of the system under test: runs the
# boot's guest script, then serves dom0's commands (xenstore xenvm/).
[Unit]
Description=tests/vm command channel from dom0
After=local-fs.target
[Service]
Environment=PATH=/xenvm/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
ExecStart=/bin/bash /xenvm/serve.sh
StandardOutput=tty
StandardError=tty
TTYPath=/dev/console
TTYReset=no
TTYVHangup=no
[Install]
WantedBy=multi-user.target
EOF
ln -sfn /etc/systemd/system/xenvm-exec.service "$R/etc/systemd/system/multi-user.target.wants/xenvm-exec.service"
cleanup
size=$(( $(du -s -m "$R" | cut -f1) + 400 ))
mkfs.ext4 -q -F -L xga-root -E lazy_itable_init=1,lazy_journal_init=1 -d "$R" "$IMG.tmp" "${size}M"
mv "$IMG.tmp" "$IMG"
rm -rf "$R"
echo "$recipe" > "$IMG.recipe"
log "disk image ready: $IMG ($(du -h "$IMG" | cut -f1) used, ${size} MiB, $((SECONDS - t)) s)"
