#!/bin/bash
# The benchmark suite of xen-guest-agent: builds the release binaries, then
# measures them (bench/bench.py) and writes bench/results.md and
# bench/results.json. Needs root (network namespaces).
#
#   sudo bench/run.sh            # the full run (about 25 minutes)
#   sudo bench/run.sh --quick    # 1 idle minute, fewer runs (development)
#   sudo bench/run.sh --only startup,latency --out /tmp/b   # some parts only
#
# Parts: sizes idle startup latency scale xenstore backends portable. See
# bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
    echo "bench: needs root (network namespaces, sysfs mounts)" >&2
    exit 1
fi
for tool in ip nsenter strace python3 readelf; do
    command -v "$tool" >/dev/null || { echo "bench: $tool is missing (apt-get install iproute2 util-linux strace python3 binutils)" >&2; exit 1; }
done
nice cargo build --release --bin xen-guest-agent
nice cargo build --release -p test-xenstored --example bench_server
# The portable binary, and the static glibc build it was chosen against
# (bench/ANALYSIS.md, "The portable binary").
nice packaging/portable.sh >/dev/null
CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C target-feature=+crt-static" nice cargo build \
    --release --locked --target x86_64-unknown-linux-gnu --no-default-features -F xenstore,net_netlink \
    --bin xen-guest-agent
exec python3 bench/bench.py --command "bench/run.sh $*" "$@"
