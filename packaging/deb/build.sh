#!/bin/bash
# Build the Debian package of xen-guest-agent with plain dpkg-deb (no
# debhelper, no cargo-deb: nothing to install but dpkg-dev's tools).
#
# usage: packaging/deb/build.sh [--static] [--binary PATH] [--out DIR]
#
#   --static       package the portable binary (packaging/portable.sh: one
#                  static executable, no shared library at all, the native
#                  xenstore client) as xen-guest-agent-static, which has no
#                  Depends at all and installs on any x86_64 Debian or
#                  Ubuntu (Debian 11, Ubuntu 20.04...); it replaces
#                  xen-guest-agent and vice versa
#   --binary PATH  package this prebuilt release binary instead of building
#                  it (with --static it must be a portable binary: checked)
#   --out DIR      where the .deb goes (default: target/debian)
#
# Environment:
#   XGA_DEB_REVISION    Debian revision (default 1): version <crate>-<rev>
#   XGA_DEB_MAINTAINER  Maintainer field, "Name <address>" (set it for a
#                       release; the default address is a placeholder)
#   SOURCE_DATE_EPOCH   timestamp of every file (default: last commit), so
#                       the same sources give the same package
#
# Prints the path of the .deb on the last line of its output.
set -euo pipefail

die() { echo "build.sh: $*" >&2; exit 1; }

static=
binary=
top=$(cd "$(dirname "$0")/../.." && pwd)
out=$top/target/debian
while [ $# -gt 0 ]; do
  case $1 in
    --static) static=1 ;;
    --binary) [ $# -ge 2 ] || die "--binary needs a path"; binary=$(realpath "$2"); shift ;;
    --out) [ $# -ge 2 ] || die "--out needs a directory"; out=$2; shift ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
  shift
done
for tool in dpkg-deb dpkg-shlibdeps gzip cargo; do
  command -v "$tool" >/dev/null || die "$tool is missing (apt-get install dpkg-dev gzip; cargo from rustup)"
done

cd "$top"
unit=xen-guest-agent.service
rules=60-xen-guest-agent-vcpu-hotplug.rules
dropin=xen-guest-agent-static-ip.conf
dropin_openstack=xen-guest-agent-openstack.conf
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
[ -n "$version" ] || die "no version in Cargo.toml"
debversion=$version-${XGA_DEB_REVISION:-1}
arch=$(dpkg --print-architecture)
maintainer=${XGA_DEB_MAINTAINER:-"xen-guest-agent developers <noreply@xen-guest-agent.invalid>"}
: "${SOURCE_DATE_EPOCH:=$(git log -1 --format=%ct 2>/dev/null || date +%s)}"
export SOURCE_DATE_EPOCH

if [ -n "$static" ]; then
  package=xen-guest-agent-static
  other=xen-guest-agent
  # Nothing: the binary links nothing, and speaks to xenstore itself.
  xen_depends=
else
  package=xen-guest-agent
  other=xen-guest-agent-static
  # dlopen()ed at run time, so dpkg-shlibdeps cannot see it: libxenstore4
  # (Xen >= 4.17: Debian 12, Ubuntu 24.04) or libxenstore3.0 (older).
  xen_depends="libxenstore4 | libxenstore3.0"
fi

# --- the binary, man page and completions ---------------------------------
if [ -n "$static" ]; then
  [ -n "$binary" ] || binary=$(packaging/portable.sh | tail -n1)
  packaging/portable.sh --check "$binary" || die "--static packages the portable binary only"
elif [ -z "$binary" ]; then
  cargo build --release --locked >&2
  binary=$top/target/release/xen-guest-agent
fi
[ -x "$binary" ] || die "no binary at $binary"
gen=$(mktemp -d)
stage=$(mktemp -d)
chmod 0755 "$stage"
trap 'rm -rf "$gen" "$stage"' EXIT
# Generated from the same CLI definition as --help (xtask), with the
# default features, which are those of both package variants.
cargo run --locked -q -p xtask -- man "$gen" >/dev/null
cargo run --locked -q -p xtask -- completions "$gen" >/dev/null

# --- the file tree ----------------------------------------------------------
doc=$stage/usr/share/doc/$package
install -D -m 0755 "$binary" "$stage/usr/sbin/xen-guest-agent"
# /lib/systemd/system: where Debian 12 and Ubuntu 24.04 look (and, being
# merged-/usr, the same directory as /usr/lib/systemd/system).
install -D -m 0644 startup/$unit "$stage/lib/systemd/system/$unit"
install -D -m 0644 packaging/deb/default "$stage/etc/default/xen-guest-agent"
# The udev rule that brings hot-plugged vCPUs online, carried over from
# xe-guest-utilities (which this package removes; the rule says why).
# /lib/udev/rules.d: where udev reads packages' rules on every Debian and
# Ubuntu, merged-/usr or not (Debian 11 upgraded from 10). udevd notices a
# new rules file by itself: nothing to reload in postinst.
install -D -m 0644 startup/$rules "$stage/lib/udev/rules.d/$rules"
# The drop-in for --allow static-ip: shipped inactive, linked into
# /etc/systemd/system/xen-guest-agent.service.d by an administrator who
# lets dom0 set the guest's addresses (README).
install -D -m 0644 startup/$dropin "$stage/usr/share/xen-guest-agent/$dropin"
install -D -m 0644 startup/$dropin_openstack "$stage/usr/share/xen-guest-agent/$dropin_openstack"
install -d -m 0755 "$stage/usr/share/man/man8" "$doc" \
  "$stage/usr/share/bash-completion/completions" \
  "$stage/usr/share/zsh/vendor-completions" \
  "$stage/usr/share/fish/vendor_completions.d"
gzip -9n < "$gen/xen-guest-agent.8" > "$stage/usr/share/man/man8/xen-guest-agent.8.gz"
install -m 0644 "$gen/xen-guest-agent.bash" "$stage/usr/share/bash-completion/completions/xen-guest-agent"
install -m 0644 "$gen/_xen-guest-agent" "$stage/usr/share/zsh/vendor-completions/_xen-guest-agent"
install -m 0644 "$gen/xen-guest-agent.fish" "$stage/usr/share/fish/vendor_completions.d/xen-guest-agent.fish"
gzip -9n < README.md > "$doc/README.md.gz"
chmod 0644 "$doc/README.md.gz" "$stage/usr/share/man/man8/xen-guest-agent.8.gz"
{
  echo "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"
  echo "Upstream-Name: xen-guest-agent"
  echo "Comment: The binary also contains the Rust crates listed in the"
  echo " sources' Cargo.lock, each under MIT, Apache-2.0 or both."
  echo
  echo "Files: *"
  echo "Copyright: $(sed -n 's/^Copyright (c) //p' LICENSE | head -n1)"
  if [ -n "$static" ]; then
    # The portable binary has the C library linked in: musl's notice, under
    # the same licence. (No package links libxenstore: no LGPL notice.)
    echo " 2005-2020 Rich Felker, et al. (musl libc, linked into the binary)"
    echo "Comment: /usr/sbin/xen-guest-agent is statically linked with musl libc"
    echo " (the Rust toolchain's x86_64-unknown-linux-musl target) and LLVM's"
    echo " libunwind (Apache-2.0 WITH LLVM-exception, which needs no notice in"
    echo " binary form)."
  fi
  echo "License: MIT"
  # The licence text, as the format wants it: indented, blank lines as " .".
  sed -e '1,/^Copyright/d' LICENSE | sed -e '/./,$!d' -e 's/^$/./' -e 's/^/ /'
} > "$doc/copyright"
{
  echo "$package ($debversion) unstable; urgency=medium"
  echo
  echo "  * Built from the xen-guest-agent $version sources by packaging/deb/build.sh."
  echo
  echo " -- $maintainer  $(date -u -R -d "@$SOURCE_DATE_EPOCH")"
} | gzip -9n > "$doc/changelog.Debian.gz"
chmod 0644 "$doc/copyright" "$doc/changelog.Debian.gz"
# Not a Debian upload: there is no ITP bug to close.
install -d -m 0755 "$stage/usr/share/lintian/overrides"
{
  echo "$package: initial-upload-closes-no-bugs"
  if [ -n "$static" ]; then
    # A static-pie executable (position-independent, so randomised like
    # any other, and linked with nothing): lintian takes its ELF type for a
    # shared library without dependencies.
    echo "$package: shared-library-lacks-prerequisites [usr/sbin/xen-guest-agent]"
  fi
} > "$stage/usr/share/lintian/overrides/$package"
chmod 0644 "$stage/usr/share/lintian/overrides/$package"

# --- control -------------------------------------------------------------
mkdir -p "$stage/DEBIAN"
for script in postinst prerm postrm; do
  install -m 0755 "packaging/deb/$script" "$stage/DEBIAN/$script"
done
echo /etc/default/xen-guest-agent > "$stage/DEBIAN/conffiles"

# Shared libraries the binary links (libc6, libgcc-s1...), with the minimum
# versions its symbols need, as dpkg-shlibdeps computes them for debhelper.
# The portable binary links nothing: no Depends at all.
depends=
if [ -z "$static" ]; then
  shlibs=$(cd "$stage" && mkdir debian && touch debian/control &&
    dpkg-shlibdeps -O -e usr/sbin/xen-guest-agent 2>/dev/null |
    sed -n 's/^shlibs:Depends=//p'; rm -rf debian)
  [ -n "$shlibs" ] || die "dpkg-shlibdeps found no dependency for $binary"
  depends=$shlibs${xen_depends:+, $xen_depends}
fi

installed_size=$(du -k -s --apparent-size --exclude=DEBIAN "$stage" | cut -f1)
# Replaces + Conflicts: installing this package removes xe-guest-utilities
# (and the other variant of this one) in the same dpkg run; Provides: what
# depended on xe-guest-utilities is satisfied by this agent. Suggests:
# xe-guest-utilities also shipped the xenstore-read, -write, -ls... commands,
# which this agent does not; xenstore-utils has the same commands, from Xen.
cat > "$stage/DEBIAN/control" <<EOF
Package: $package
Version: $debversion
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $installed_size
${depends:+Depends: $depends
}Conflicts: xe-guest-utilities, xe-guest-utilities-latest, $other
Replaces: xe-guest-utilities, xe-guest-utilities-latest, $other
Provides: xe-guest-utilities, xe-guest-utilities-latest${static:+, xen-guest-agent}
Suggests: xenstore-utils
Section: admin
Priority: optional
Description: Xen guest agent: publishes guest facts in xenstore
 Runs inside a Xen virtual machine (PV, PVH or HVM) and publishes the
 guest's operating system, kernel, memory and network addresses in
 xenstore, where dom0's toolstack (XAPI, Xen Orchestra, xl) reads them.
 It follows network changes as they happen (netlink) and replaces
 xe-guest-utilities.
EOF
if [ -n "$static" ]; then
  cat >> "$stage/DEBIAN/control" <<EOF
 .
 This variant is one static executable that needs no library at all, not
 even the C library: it runs on any x86_64 Linux with kernel 3.2 or newer.
EOF
fi
(cd "$stage" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' |
  sort -z | xargs -0 md5sum) > "$stage/DEBIAN/md5sums"
chmod 0644 "$stage/DEBIAN/control" "$stage/DEBIAN/conffiles" "$stage/DEBIAN/md5sums"

# Same sources, same bytes: fixed timestamps, root-owned files.
find "$stage" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
mkdir -p "$out"
deb=$out/${package}_${debversion}_$arch.deb
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >&2
echo "$deb"
