#!/bin/bash
# The chaos soak as a benchmark (issue 14): the release agent under every
# fault at once, std and rfc side by side, for --minutes each (default 60), figures in
# bench/soak.json and in bench/results.md's "Chaos soak" section (the rest
# of results.md is left as it is). Needs root (network namespaces).
#
#   sudo bench/soak.sh                        # 60 minutes per schema
#   sudo bench/soak.sh --minutes 10 --seed 7  # shorter, another seed
#
# Every failed check is counted (the soak runs with --keep-going); each
# failure's seed, actions and agent log are in $XGA_SOAK_LOGS (default
# /tmp/xga-soak). See tests/soak/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=60 seed=1
while [ $# -gt 0 ]; do
    case $1 in
        --minutes) minutes=$2; shift 2 ;;
        --seed) seed=$2; shift 2 ;;
        *) echo "usage: bench/soak.sh [--minutes M] [--seed N]" >&2; exit 2 ;;
    esac
done
if [ "$(id -u)" != 0 ]; then
    echo "bench/soak.sh: needs root (network namespaces)" >&2
    exit 1
fi
logs=${XGA_SOAK_LOGS:-/tmp/xga-soak}
mkdir -p "$logs"
nice cargo build --release --bin xen-guest-agent
nice cargo build -p xga-soak
# The binaries copied: a rebuild during the hour does not change them.
cp target/release/xen-guest-agent "$logs/xen-guest-agent"
cp target/debug/soak "$logs/soak"
# Both schemas at once (each soak has its own namespace and xenstored): an
# hour, not two, on a machine that is twice as busy.
for schema in std rfc; do
    "$logs/soak" --agent "$logs/xen-guest-agent" --seed "$seed" --minutes "$minutes" \
        --agent-arg="--schema=$schema" --keep-going --log-dir "$logs" --json "$logs/bench-$schema.json" \
        > "$logs/bench-$schema.log" 2>&1 &
done
wait
tail -n 3 "$logs"/bench-std.log "$logs"/bench-rfc.log
python3 - "bench/soak.sh --minutes $minutes --seed $seed" "$logs" <<'EOF'
import json, os, sys
sys.path.insert(0, "bench")
import bench, report
command, logs = sys.argv[1], sys.argv[2]
runs = [json.load(open(os.path.join(logs, f"bench-{s}.json"))) for s in ("std", "rfc")]
json.dump({"command": command, "machine": bench.machine(), "runs": runs},
          open("bench/soak.json", "w"), indent=1)
report.replace_soak_section("bench/results.md")
print("wrote bench/soak.json and the soak section of bench/results.md")
EOF
