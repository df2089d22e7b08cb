#!/bin/bash
# Build the RPM from a prebuilt release binary (no cargo inside rpmbuild):
# for a quick package, and to check the spec on any machine with rpmbuild.
# Distributions build from sources instead: rpmbuild -ba xen-guest-agent.spec.
#
# usage: packaging/rpm/build.sh [--static] [--binary PATH] [--out DIR]
#   --static       package the portable binary (packaging/portable.sh): the
#                  package requires neither glibc nor xen-libs
#   --binary PATH  use this release binary instead of building it (with
#                  --static it must be a portable binary: checked)
#   --out DIR      where the .rpm goes (default: target/rpm)
#
# Without systemd-rpm-macros (e.g. on Debian), minimal stand-ins of
# %systemd_post/preun/postun_with_restart are defined so the spec builds;
# packages for an RPM distribution must be built there.
# Prints the path of the .rpm on the last line of its output.
set -euo pipefail

die() { echo "rpm/build.sh: $*" >&2; exit 1; }
top=$(cd "$(dirname "$0")/../.." && pwd)
static= binary= out=$top/target/rpm
while [ $# -gt 0 ]; do
  case $1 in
    --static) static=1 ;;
    --binary) [ $# -ge 2 ] || die "--binary needs a path"; binary=$(realpath "$2"); shift ;;
    --out) [ $# -ge 2 ] || die "--out needs a directory"; out=$(realpath -m "$2"); shift ;;
    *) die "usage: $0 [--static] [--binary PATH] [--out DIR]" ;;
  esac
  shift
done
command -v rpmbuild >/dev/null || die "rpmbuild is missing (Debian: apt-get install rpm)"

cd "$top"
if [ -n "$static" ]; then
  [ -n "$binary" ] || binary=$(packaging/portable.sh | tail -n1)
  packaging/portable.sh --check "$binary" || die "--static packages the portable binary only"
elif [ -z "$binary" ]; then
  cargo build --release --locked >&2
  binary=$top/target/release/xen-guest-agent
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pre=$work/prebuilt
mkdir -p "$pre" "$work/top" "$out"
cp "$binary" "$pre/xen-guest-agent"
cargo run --locked -q -p xtask -- man "$pre" >/dev/null
cargo run --locked -q -p xtask -- completions "$pre" >/dev/null
cp startup/xen-guest-agent.service startup/60-xen-guest-agent-vcpu-hotplug.rules \
  startup/xen-guest-agent-static-ip.conf startup/xen-guest-agent-openstack.conf \
  packaging/deb/default LICENSE README.md "$pre/"
cp packaging/NOTICE-static "$pre/"

defs=(--define "_topdir $work/top" --define "xga_prebuilt $pre")
if [ -z "$(rpm --eval '%{?systemd_post:1}')" ]; then
  defs+=(
    --define '_unitdir /usr/lib/systemd/system'
    --define '_presetdir /usr/lib/systemd/system-preset'
    --define 'systemd_requires %{nil}'
    --define 'systemd_post() if [ $1 -eq 1 ]; then systemctl --no-reload preset %{?*} >/dev/null 2>&1 || :; fi'
    --define 'systemd_preun() if [ $1 -eq 0 ]; then systemctl --no-reload disable --now %{?*} >/dev/null 2>&1 || :; fi'
    --define 'systemd_postun_with_restart() if [ $1 -ge 1 ]; then systemctl try-restart %{?*} >/dev/null 2>&1 || :; fi'
  )
fi
# --nodeps: the BuildRequires name RPM-distribution packages.
rpmbuild -bb --nodeps ${static:+--with static} "${defs[@]}" \
  packaging/rpm/xen-guest-agent.spec >&2
rpm=$(find "$work/top/RPMS" -name '*.rpm' | head -n1)
[ -n "$rpm" ] || die "rpmbuild made no package"
cp "$rpm" "$out/"
echo "$out/$(basename "$rpm")"
