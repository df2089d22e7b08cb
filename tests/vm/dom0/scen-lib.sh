# dom0 helpers for the agent scenarios (bash, after dom0-lib.sh).
# Environment from run.sh (/xenvm/env): XGA_VERSION, XGA_CAP, XGA_BALLOON
# (absent|1), XGA_IDLE (s).
FACTS=
FACTS_T=0

# facts: what the guest really has, cached in $FACTS as one JSON object
# {uname, sysname, os: {id, pretty, version_id, debian_version}, mem_total,
# mem_avail, vifs: {ifname: vifid}, fs: [{mount, type, source, total,
# avail}], addr: `ip -j addr`}. The guest prints
# raw key=value lines (forks are dear there); jq runs here.
facts() {
  local f
  f=$(guest_exec "xga facts" 60) && facts_parse "$f"
}
# facts_parse TEXT: $FACTS from `xga facts` output
facts_parse() {
  local f=$1
  f=$(jq -R -s -c '
      [ split("\n")[] | capture("^(?<k>[a-z_]+)=(?<v>.*)$") ] as $kv
      | ($kv | map(select(.k != "vif" and .k != "fs") | {(.k): .v}) | add) as $o
      | { uname: $o.uname, sysname: $o.sysname,
          os: {id: $o.id, pretty: $o.pretty, version_id: $o.version_id, debian_version: $o.debian_version},
          mem_total: ($o.mem_total | tonumber), mem_avail: ($o.mem_avail | tonumber),
          hostname: ($o.hostname // ""), domain: ($o.domain // ""),
          guest_type: ($o.guest_type // ""), pv_net: ($o.pv_net // "0"), pv_block: ($o.pv_block // "0"),
          vifs: ($kv | map(select(.k == "vif") | .v | split(" ") | {(.[0]): .[1]}) | add // {}),
          fs: [ $kv[] | select(.k == "fs") | .v | split("\t")
                | {mount: .[0], type: .[1], source: .[2], total: (.[3] | tonumber), avail: (.[4] | tonumber)} ],
          addr: ($o.addr | fromjson) }' <<<"$f" 2>&1) ||
    { echo "facts: cannot get the guest's facts: $f" >&2; return 1; }
  FACTS=$f; FACTS_T=$SECONDS
}
# gx_facts CMD [TIMEOUT]: run CMD in the guest, then `xga facts` in the same
# call (one round trip less); print CMD's output, set $FACTS, CMD's status
gx_facts() {
  local out rc
  out=$(guest_exec "$1"$'\n'"r=\$?; echo XGA-FACTS; xga facts; exit \$r" "${2:-120}"); rc=$?
  awk '/^XGA-FACTS$/ {exit} {print}' <<<"$out"
  facts_parse "$(awk 'f; /^XGA-FACTS$/ {f = 1}' <<<"$out")" || return 1
  return $rc
}

# home_json: the domain's nodes below data/, attr/, control/, xenserver/attr/
# as one JSON object {relpath: value}; fails if the tree changed while read
# (not xenserver/device/: dom0's, where it puts the requests the agent
# answers, as xenopsd does)
home_json() {
  local paths vals
  mapfile -t paths < <(xenstore-ls -f "$XS_HOME" 2>/dev/null |
    sed -nE "s#^$XS_HOME/((data|attr|control|xenserver/attr)(/[^ ]*)?) = .*#\\1#p")
  [ ${#paths[@]} -gt 0 ] || { echo '{}'; return 0; }
  vals=$(xenstore-read "${paths[@]/#/$XS_HOME/}" 2>/dev/null) || return 1
  paste -d '\t' <(printf '%s\n' "${paths[@]}") <(printf '%s\n' "$vals") |
    jq -R -s 'split("\n") | map(select(length > 0) | split("\t") | {(.[0]): (.[1:] | join("\t"))}) | add // {}'
}

# schema_problems SCHEMA: what is wrong with the published tree (one line
# per problem; nothing when it is right), against $FACTS
schema_problems() {
  local t
  t=$(home_json) || { echo "(the tree changed while being read)"; return; }
  jq -L /xenvm -r --argjson facts "$FACTS" --arg ver "$XGA_VERSION" --argjson cap "${XGA_CAP:-32}" \
    --arg balloon "${XGA_BALLOON:-absent}" -f "/xenvm/$1.jq" <<<"$t"
}

# wait_schema SCHEMA [TIMEOUT_S] [fixed|fresh]: wait until the tree is
# exactly what SCHEMA says for what the guest has. The guest's facts are
# re-read when older than 5 s (addresses finish DAD...), unless "fixed" (the
# guest runs no command, e.g. right after restore); "fresh": $FACTS was just
# taken (gx_facts), not read again at once. On timeout, print the problems.
wait_schema() {
  local schema=$1 t=${2:-60} mode=${3:-}
  [ -n "$mode" ] && [ -n "$FACTS" ] || facts || return 1
  SCHEMA_FIXED=
  [ "$mode" = fixed ] && SCHEMA_FIXED=1
  wait_xs_cond "$t" schema_ok "$schema" && return 0
  echo "after ${t}s the $schema tree is not what the guest has:"
  sed 's/^/    PROBLEM: /' <<<"$PROBLEMS"
  return 1
}
schema_ok() {
  if [ -z "$SCHEMA_FIXED" ] && [ $((SECONDS - FACTS_T)) -ge 5 ]; then facts || return 1; fi
  PROBLEMS=$(schema_problems "$1")
  [ -z "$PROBLEMS" ]
}

# xapi_view: what XAPI would show from the std nodes (VM_guest_metrics)
xapi_view() { home_json | jq -c -f /xenvm/xapi.jq; }

# show_tree: the published nodes with permissions, as a toolstack sees them
show_tree() {
  local d
  for d in data attr control; do echo "== xenstore-ls -p $XS_HOME/$d"; xenstore-ls -p "$XS_HOME/$d" 2>&1; done
}

# the agent's own log lines (syslog, or stderr) on the domU console
agent_log() { grep -a -v -E 'XENVM-GUEST-EXEC|^  \| ' "$LOG" | grep -a -E "${1:-.}"; }

# agent_start: start the agent in the guest as its unit does; remember the
# time and the nodes that existed before
agent_start() {
  [ -n "${AGENT_PID:-}" ] && return 0
  PATHS_BEFORE=$(xenstore-ls -f "$XS_HOME" | sed -n 's/ = .*//p' | LC_ALL=C sort)
  watch_stamps "$XS_HOME/data/updated" /tmp/updated.watch
  T_START=$(now)
  check "agent started in the guest" guest_exec "xga start" 60 || return 1
  AGENT_PID=$(guest_exec "xga pid")
  check "the agent is running after its start" test -n "$AGENT_PID"
}
# first_update_s: seconds from the agent's start to its first data/updated
# write (an upper bound: T_START is taken before guest_exec asks the guest)
first_update_s() {
  wait_until 120 lines_at_least 2 /tmp/updated.watch || return 1
  watch_stop /tmp/updated.watch
  elapsed "$T_START" "$(sed -n '2s/ .*//p' /tmp/updated.watch)"
}
# lines_at_least N FILE [REGEX]: FILE has N lines (matching REGEX)
lines_at_least() { [ "$(grep -c -E -- "${3:-.}" "$2" 2>/dev/null)" -ge "$1" ]; }
agent_alive() { [ -n "$AGENT_PID" ] && [ "$(guest_exec "xga pid")" = "$AGENT_PID" ]; }

# slot_of FAMILY VALUE [VIF]: the slot holding VALUE under attr/vif/VIF/FAMILY
slot_of() {
  home_json | jq -r --arg p "attr/vif/${3:-0}/$1/" --arg v "$2" \
    'to_entries[] | select((.key | startswith($p)) and .value == $v) | .key | ltrimstr($p)'
}
has_slot() { [ -n "$(slot_of "$@")" ]; }
no_slot() { [ -z "$(slot_of "$@")" ]; }

# measure_latency N: the latency from `ip addr add|del` in the guest to the
# node changing in dom0, N steps of each, as a "latency" bench line. The
# guest writes xenvm/mark, then runs ip; dom0 watches the home and stamps
# each event, so the figure is an upper bound (it includes starting ip(8)
# in the guest). Every mark (2 per step, and "end") is seen before the
# watch stops.
measure_latency() {
  local n=$1 lat
  watch_stamps "$XS_HOME" /tmp/watch.log
  guest_exec "xga latency $n 10.99.0" $((n * 4 + 60)) >/dev/null
  wait_until 60 lines_at_least $((2 * n + 1)) /tmp/watch.log /xenvm/mark
  watch_stop /tmp/watch.log
  lat=$(awk -v home="$XS_HOME" '
    function ms(a, b) { return (b - a) * 1000 }
    $2 == home "/xenvm/mark" { k++; t = $1; pending = 1; next }
    pending && index($2, home "/attr/vif/0/ipv4/") == 1 {
      d = ms(t, $1); pending = 0
      if (k % 2) add[++na] = d; else del[++nd] = d
    }
    function stats(a, n,   i, j, x, s) {
      for (i = 2; i <= n; i++) { x = a[i]; for (j = i - 1; j >= 1 && a[j] > x; j--) a[j+1] = a[j]; a[j+1] = x }
      return sprintf("%.0f/%.0f", a[int((n + 1) / 2)], a[n])
    }
    END { printf "samples_add=%d samples_del=%d add_ms_median/max=%s del_ms_median/max=%s\n", na, nd,
          na ? stats(add, na) : "-", nd ? stats(del, nd) : "-" }' /tmp/watch.log)
  bench phase=latency steps=$n $lat
  check "latency measured for every step" test "$(grep -o 'samples_add=[0-9]*' <<<"$lat")" = "samples_add=$n"
}

# save_restore: `xl save` + `xl restore -p` of the domU (its output on
# failure), then the new domain's xenvm/ channel prepared and the domain
# unpaused; sets DOMID, and T_RESTORE (when it was unpaused)
save_restore() {
  local seq rc=0
  seq=$(xenstore-read "$XS_HOME/xenvm/seq")
  rm -f /tmp/domU.save
  xl save domU /tmp/domU.save && xl restore -p /tmp/domU.save || rc=1
  rm -f /tmp/domU.save
  [ $rc = 0 ] || return 1
  prepare_domain "$(xl domid domU)" "$seq"
  xl unpause domU
  T_RESTORE=$(now)
}
