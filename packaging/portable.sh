#!/bin/bash
# Build the portable binary of xen-guest-agent: one static x86_64 Linux
# executable with no dynamic dependency at all (no libc.so, no libxenstore,
# no dlopen), which runs on any x86_64 Linux with kernel 3.2 or newer
# whatever its C library, and on a root without one. It is the static
# packages' binary (packaging/deb/build.sh --static, the RPM's --with
# static).
#
# usage: packaging/portable.sh [--check PATH]
#
#   (no argument)  build it and print its path on the last line
#   --check PATH   only check that PATH is such a binary (exit 1 if not)
#
# How: the musl target (x86_64-unknown-linux-musl, static-pie, musl 1.2
# from Rust's own toolchain: no C cross-compiler needed), with the features
# that need no library: the native xenstore client and the netlink
# collector (--no-default-features -F xenstore,net_netlink). Why musl rather
# than a static glibc: bench/ANALYSIS.md ("The portable binary").
#
# The musl target's standard library comes from rustup (added when
# missing) or from the distribution (Fedora: rust-std-static-x86_64-unknown-linux-musl). Environment: CARGO_TARGET_DIR as for cargo.
set -euo pipefail

TARGET=x86_64-unknown-linux-musl
FEATURES=(--no-default-features -F xenstore,net_netlink)

die() { echo "portable.sh: $*" >&2; exit 1; }

# PATH is a static executable: no PT_INTERP (no dynamic loader) and no
# DT_NEEDED (no shared library); the dynamic section a static-pie has is
# only for relocating itself.
check() {
  local bin=$1 headers needed
  [ -x "$bin" ] || die "no executable at $bin"
  command -v readelf >/dev/null || die "readelf is missing (apt-get install binutils)"
  headers=$(readelf -lW "$bin") || die "$bin is not an ELF executable"
  if grep -q 'INTERP' <<<"$headers"; then
    die "$bin has a program interpreter ($(readelf -W -p .interp "$bin" 2>/dev/null | sed -n "s/.*\] *//p" | head -n1)): it is not static"
  fi
  needed=$(readelf -dW "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
  [ -z "$needed" ] || die "$bin needs shared libraries: $needed"
}

case ${1:-} in
  --check) [ $# -eq 2 ] || die "--check needs a path"; check "$2"; exit 0 ;;
  -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  "") ;;
  *) die "unknown argument '$1' (see --help)" ;;
esac

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
command -v cargo >/dev/null || die "cargo is missing (rustup)"
# The target's standard library: from rustup, or a distribution's package.
libdir=$(rustc --print target-libdir --target "$TARGET" 2>/dev/null || true)
if ! compgen -G "$libdir/libstd-*.rlib" >/dev/null; then
  command -v rustup >/dev/null ||
    die "the Rust standard library for $TARGET is missing (Fedora: dnf install rust-std-static-x86_64-unknown-linux-musl)"
  echo "adding the Rust target $TARGET (rustup)" >&2
  rustup target add "$TARGET" >&2 || die "cannot add the Rust target $TARGET: rustup target add $TARGET"
fi
cargo build --release --locked --target "$TARGET" "${FEATURES[@]}" --bin xen-guest-agent >&2
bin=${CARGO_TARGET_DIR:-$top/target}/$TARGET/release/xen-guest-agent
check "$bin"
echo "$bin"
