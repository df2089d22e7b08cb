#!/usr/bin/env bash
# Run every test tier of xen-guest-agent, installing what they need.
#
#   tests/run.sh                 all tiers
#   tests/run.sh lint unit ...   only these tiers
#
# Tiers, in order:
#   deps      install the Debian packages the tests need (apt-get, as root)
#   lint      cargo fmt --check, clippy -D warnings for every feature set,
#             also for FreeBSD (type-checked only: nothing links or runs)
#   unit      cargo test for every feature set (unit tests, stdout/netns
#             integration tests, xenstore tests against the test xenstored,
#             once per xenstore backend)
#   static    the -F static build: no libxenstore at run time, its tests
#   portable  the portable binary (musl, static, no shared library): its
#             unit and xenstore tests built for musl, then the binary in a
#             Debian 11 root and in a root with nothing but it
#             (tests/portable/run.sh)
#   soak      the chaos soak (tests/soak): the release agent under every
#             fault at once, std and rfc, a fixed seed then a fresh one
#   pkg       build the .debs (default and static), install/remove each
#             in a clean Debian root
#   vm        real Xen under QEMU: the agent from the .deb, started as its
#             unit starts it, in busybox PV guests, and the package itself
#             installed with apt in Debian 12 (PV, PVH) and 11 systemd guests
#             booted from a Xen PV disk, checked from dom0 and in the guest
#
# Root is needed for network namespaces, the package tier and the VM tier;
# as another user those tests say why they skip (the namespace tests are
# #[ignore]d in a plain `cargo test`; this script includes them). With
# CI=true a test that cannot run fails instead.
#
# Environment:
#   XGA_CACHE_DIR  where downloads and built images are kept between runs
#                  (default ~/.cache/xen-guest-agent-tests)
#   XGA_JOBS       cargo build jobs (default: all cores)
#   XGA_SOAK_MINUTES  minutes of the soak tier's fixed-seed run per schema
#                  (default 1; the fresh seed runs half as long)
#   XGA_SOAK_SEED  the soak tier's second seed (default: a fresh one, printed)
set -uo pipefail
cd "$(dirname "$0")/.."
export XGA_CACHE_DIR=${XGA_CACHE_DIR:-$HOME/.cache/xen-guest-agent-tests}
mkdir -p "$XGA_CACHE_DIR"
export CARGO_TERM_COLOR=never
[ -n "${XGA_JOBS:-}" ] && export CARGO_BUILD_JOBS=$XGA_JOBS

# The feature sets CI builds, as cargo arguments.
FEATURE_SETS=(
  ""
  "--no-default-features -F xenstore,net_pnet"
  "--no-default-features"
)
# The feature sets meant for FreeBSD, type-checked for that target.
FREEBSD_SETS=(
  ""
  "--no-default-features -F xenstore,net_pnet"
)
FREEBSD=x86_64-unknown-freebsd
# The portable binary's target and features (packaging/portable.sh).
MUSL=x86_64-unknown-linux-musl
PORTABLE_SET="--no-default-features -F xenstore,net_netlink"

ALL_TIERS=(deps lint unit static portable soak pkg vm)
TIERS=("$@")
[ ${#TIERS[@]} -gt 0 ] || TIERS=("${ALL_TIERS[@]}")

say() { printf '\n=== %s\n' "$*"; }
is_root() { [ "$(id -u)" = 0 ]; }
# A tier that cannot run: skipped with the reason, or failed under CI=true.
cannot_run() {
  if [ "${CI:-}" = true ]; then echo "cannot run: $* (CI=true: failing)" >&2; return 1; fi
  echo "skipping: $*"
}

tier_deps() {
  local pkgs=(libxenstore4 xenstore-utils libxen-dev libclang-dev pkg-config iproute2 jq dbus-daemon bc openssl)
  local missing=()
  for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && { echo "all present: ${pkgs[*]}"; rust_targets; return; }
  if ! is_root; then
    echo "missing packages ${missing[*]}: run as root, or apt-get install them" >&2
    return 1
  fi
  apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" || return 1
  rust_targets
}

# The standard libraries of the other targets: FreeBSD's for the lint
# tier's type checks, musl's for the portable binary.
rust_targets() { rust_target "$FREEBSD" && rust_target "$MUSL"; }
rust_target() {
  rustup target list --installed 2>/dev/null | grep -qx "$1" && return 0
  rustup target add "$1"
}

tier_lint() {
  cargo fmt --all -- --check || return 1
  local fs
  for fs in "${FEATURE_SETS[@]}" "-F static"; do
    echo "--- clippy $fs"
    # shellcheck disable=SC2086
    cargo clippy --workspace --all-targets $fs -- -D warnings || return 1
  done
  rust_targets || return 1
  for fs in "${FREEBSD_SETS[@]}"; do
    echo "--- clippy --target $FREEBSD $fs"
    # shellcheck disable=SC2086
    cargo clippy --target "$FREEBSD" --all-targets $fs -- -D warnings || return 1
  done
  echo "--- clippy --target $MUSL $PORTABLE_SET (the portable binary)"
  # shellcheck disable=SC2086
  cargo clippy --target "$MUSL" --all-targets $PORTABLE_SET -- -D warnings || return 1
}

tier_unit() {
  local fs
  for fs in "${FEATURE_SETS[@]}"; do
    echo "--- cargo test $fs"
    # shellcheck disable=SC2086
    cargo test --workspace $fs -- --include-ignored || return 1
    # The xenstore scenarios again with the other backend (auto is
    # libxenstore where the build has it: run them with the native one).
    case " $fs " in
      *" --no-default-features "*) ;;
      *) echo "--- cargo test $fs --test xenstore, native xenstore backend"
         # shellcheck disable=SC2086
         XENSTORE_BACKEND=native cargo test $fs --test xenstore -- --include-ignored || return 1 ;;
    esac
  done
}

tier_static() {
  cargo build --release -F static || return 1
  local bin=target/release/xen-guest-agent
  if ldd "$bin" | grep -q libxenstore; then
    echo "the static build still needs libxenstore at run time:" >&2
    ldd "$bin" >&2
    return 1
  fi
  echo "static build needs no libxenstore: ok"
  XENSTORE_BACKEND=libxenstore cargo test -F static --test xenstore -- --include-ignored || return 1
}

tier_portable() {
  rust_target "$MUSL" || return 1
  # The unit tests, and the xenstore scenarios driving the musl agent (the
  # native backend: the only one built in), as the portable binary is.
  echo "--- cargo test --target $MUSL $PORTABLE_SET --lib --test xenstore"
  # shellcheck disable=SC2086
  cargo test --target "$MUSL" $PORTABLE_SET --lib --test xenstore -- --include-ignored || return 1
  is_root || { cannot_run "the portable binary's roots need root (debootstrap, chroot, netns)"; return; }
  XGA_PORTABLE_CACHE=$XGA_CACHE_DIR/portable tests/portable/run.sh
}

tier_soak() {
  is_root || { cannot_run "the soak needs root (network namespaces)"; return; }
  cargo build --release --bin xen-guest-agent || return 1
  cargo build -p xga-soak || return 1
  local minutes=${XGA_SOAK_MINUTES:-1}
  local fresh=${XGA_SOAK_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
  local out=$XGA_CACHE_DIR/soak failed=0 seed schema m
  mkdir -p "$out"
  # A fixed seed (the same run every time), then a fresh one (new
  # interleavings; the seed is printed to replay it).
  for seed in 1 "$fresh"; do
    m=$minutes
    [ "$seed" = 1 ] || m=$(awk -v m="$minutes" 'BEGIN { print m / 2 }')
    for schema in std rfc; do
      echo "--- soak seed $seed, schema $schema, $m min (replay: target/debug/soak --seed $seed --agent-arg=--schema=$schema --minutes $m)"
      target/debug/soak --seed "$seed" --minutes "$m" --agent-arg="--schema=$schema" \
        --log-dir "$out" --json "$out/soak-$seed-$schema.json" || failed=1
    done
  done
  [ "$failed" = 0 ] || echo "soak failures: logs and figures in $out" >&2
  return "$failed"
}

tier_pkg() {
  is_root || { cannot_run "the package tier needs root (chroot, dpkg)"; return; }
  echo "--- the default package"
  XGA_PKG_CACHE=$XGA_CACHE_DIR/pkg packaging/test.sh || return 1
  echo "--- the static package (the portable binary)"
  XGA_PKG_CACHE=$XGA_CACHE_DIR/pkg packaging/test.sh --static
}

tier_vm() {
  is_root || { cannot_run "the VM tier needs root (it installs Xen packages)"; return; }
  # The agent as the Debian package installs it: its binary and its unit.
  local deb portable
  deb=$(packaging/deb/build.sh | tail -n1) || { echo "cannot build the .deb for the VM tier" >&2; return 1; }
  portable=${XGA_VM_DEB_PORTABLE:-}
  if [ -z "$portable" ]; then
    portable=$(packaging/deb/build.sh --static | tail -n1) ||
      { echo "cannot build the portable .deb for the VM tier" >&2; return 1; }
  fi
  # The guests' consoles stay in $XGA_CACHE_DIR/vm/runs/ (XGA_VM_QUIET=0
  # echoes them); failed checks print what was expected and what was seen.
  # The busybox guests run the package's binary as its unit would (the
  # portable package's in the portable, portable-pvh and rfc boots, which
  # have no libxenstore); the systemd guests (Debian 12 PV and PVH) install
  # the default package, the Debian 11 guest the portable one.
  XGA_VM_QUIET=${XGA_VM_QUIET:-1} XGA_VM_CACHE=$XGA_CACHE_DIR/vm XGA_VM_DEB=$deb \
    XGA_VM_DEB_PORTABLE=$portable tests/vm/run.sh
}

passed=0 failed=0 failures=()
for t in "${TIERS[@]}"; do
  if ! declare -F "tier_$t" >/dev/null; then
    echo "unknown tier '$t' (tiers: ${ALL_TIERS[*]})" >&2
    exit 2
  fi
  say "tier $t"
  start=$SECONDS
  if "tier_$t"; then
    passed=$((passed + 1)); echo "=== tier $t passed ($((SECONDS - start)) s)"
  else
    failed=$((failed + 1)); failures+=("$t"); echo "=== tier $t FAILED ($((SECONDS - start)) s)"
    # Nothing after a failed dependency install can be trusted.
    [ "$t" = deps ] && break
  fi
done
[ ${#failures[@]} -eq 0 ] || echo "failed tiers: ${failures[*]}"
echo "tiers: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
