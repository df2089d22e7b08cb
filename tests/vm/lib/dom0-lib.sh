# Helpers for the dom0 side of a test (bash), sourced by dom0-init before
# /xenvm/dom0.sh runs. All waits are conditions with a deadline, polled
# every 0.2 s.
LOG=/var/log/xen/console/guest-domU.log   # the domU console, as xenconsoled logs it
XENVM_FAILS=0
SCEN=${SCEN:-}                            # scenario tag printed with each check

# set_domid N: the domU's id (it changes on restore) and its xenstore home
set_domid() { DOMID=$1; XS_HOME=/local/domain/$1; export DOMID XS_HOME; }
[ -n "${DOMID:-}" ] && set_domid "$DOMID"

# prepare_domain DOMID SEQ: before unpausing a (new) domain, create the
# guest_exec channel xenvm/ owned by the domU (a domU may not create nodes
# directly under its home) and the nodes of XGA_VM_XS_PRECREATE, writable by
# the domU the way XAPI makes control/feature-balloon.
prepare_domain() {
  local d=$1 p
  xenstore-write /local/domain/$d/xenvm/seq "$2" &&
    xenstore-chmod -r /local/domain/$d/xenvm n$d r0 ||
    echo "XENVM-WARN could not create the xenvm/ command channel"
  for p in ${XGA_VM_XS_PRECREATE:-}; do
    xenstore-write /local/domain/$d/$p "" && xenstore-chmod /local/domain/$d/$p n$d r0 ||
      echo "XENVM-WARN could not pre-create $p"
  done
  set_domid "$d"
}

# now: seconds since the epoch with microseconds (for latencies)
now() { echo "$EPOCHREALTIME"; }
# elapsed T0 [T1]: seconds from T0 to T1 (default now), 3 decimals
elapsed() { local a=${1/./} b=${2:-$EPOCHREALTIME}; b=${b/./}; local d=$((b - a)); printf '%d.%03d' $((d/1000000)) $((d%1000000/1000)); }

# wait_until TIMEOUT_S CMD...: poll CMD until it succeeds; 1 on timeout
wait_until() {
  local t=$1 end; shift
  end=$((SECONDS + t))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -ge $end ] && return 1
    sleep 0.2
  done
}

# wait_xs_cond TIMEOUT_S CMD...: wait until CMD succeeds. CMD runs at once,
# after each burst of xenstore changes below the domain's home (or below
# $XS_WATCH when set) (a watch:
# no polling, which would steal the CPU the guest needs under TCG), and at
# least every 5 s. 1 on timeout.
wait_xs_cond() {
  local t=$1 end fd wpid left r=1; shift
  end=$((SECONDS + t))
  exec {fd}< <(exec xenstore-watch "${XS_WATCH:-$XS_HOME}" 2>/dev/null)
  wpid=$!
  while :; do
    if "$@" >/dev/null 2>&1; then r=0; break; fi
    left=$((end - SECONDS)); [ $left -gt 0 ] || break
    [ $left -gt 5 ] && left=5
    if read -r -t $left -u $fd _; then
      while read -r -t 0.1 -u $fd _; do :; done   # a burst: evaluate once
    elif [ $? -le 128 ]; then
      sleep 0.2                                   # the watch ended: poll
    fi
  done
  kill $wpid 2>/dev/null; exec {fd}<&-
  return $r
}

# guest_exec CMD [TIMEOUT_S]: run CMD with bash in the domU (cwd /xenvm),
# print its output (up to 64 KiB), return its status (124 on timeout).
guest_exec() {
  local cmd=$1 t=${2:-120} seq n i rc
  local -a outs=()
  # (few processes per call: an exec is dear in dom0 and in the guest under TCG)
  seq=$(( $(xenstore-read $XS_HOME/xenvm/seq 2>/dev/null || echo 0) + 1 ))
  xenstore-write -R $XS_HOME/xenvm/cmd "$cmd" $XS_HOME/xenvm/seq "$seq" || return 125
  XS_WATCH=$XS_HOME/xenvm/done wait_xs_cond "$t" xs_is $XS_HOME/xenvm/done "$seq" ||
    { echo "guest_exec: timeout after ${t}s: $cmd" >&2; return 124; }
  read -r n rc < <(xenstore-read $XS_HOME/xenvm/nout $XS_HOME/xenvm/rc | tr '\n' ' ')
  for ((i = 0; i < n; i++)); do outs+=("$XS_HOME/xenvm/out/$i"); done
  [ "$n" -gt 0 ] && xenstore-read -R "${outs[@]}" | base64 -d
  return "$rc"
}

# watch_stamps PATH FILE: in the background, write "<epoch.us> <path>" to
# FILE for every watch event on PATH (the first is the registration); stop
# it with watch_stop FILE
watch_stamps() {
  ( xenstore-watch "$1" & echo $! > "$2.pid"; wait ) |
    while IFS= read -r l; do echo "$EPOCHREALTIME ${l%% *}"; done > "$2" &
  wait_until 10 test -s "$2"
}
watch_stop() { kill "$(cat "$1.pid")" 2>/dev/null; }

xs_exists() { xenstore-exists "$1" 2>/dev/null; }
xs_absent() { ! xenstore-exists "$1" 2>/dev/null; }
xs_is() { [ "$(xenstore-read "$1" 2>/dev/null)" = "$2" ]; }
# wait_xs PATH [T], wait_xs_gone PATH [T], wait_xs_value PATH VALUE [T]
wait_xs() { wait_xs_cond "${2:-60}" xs_exists "$1" || { echo "wait_xs: timeout: $1" >&2; return 1; }; }
wait_xs_gone() { wait_xs_cond "${2:-60}" xs_absent "$1" || { echo "wait_xs_gone: timeout: $1 = '$(xenstore-read "$1" 2>&1)'" >&2; return 1; }; }
wait_xs_value() {
  wait_xs_cond "${3:-60}" xs_is "$1" "$2" ||
    { echo "wait_xs_value: timeout: $1 != '$2' (is '$(xenstore-read "$1" 2>&1)')" >&2; return 1; }
}
# wait_guest_log REGEX [T]: wait for a line on the domU console
wait_guest_log() { wait_until "${2:-60}" grep -a -q -E "$1" "$LOG" || { echo "wait_guest_log: timeout: $1" >&2; return 1; }; }

# xs_tree PATH: every node below PATH as sorted `relpath=value` lines
# (values raw; a node with children shows its own value too)
xs_tree() {
  local base=$1
  xenstore-ls -f "$base" 2>/dev/null | sed -n "s|^$base/\\([^ ]*\\) = \"\\(.*\\)\"\$|\\1=\\2|p" | LC_ALL=C sort
}

# check NAME CMD...: run CMD, print XENVM-CHECK PASS|FAIL [SCEN] NAME; on
# failure CMD's output is repeated as XENVM-DETAIL lines (for the summary)
check() {
  local name=$1 rc; shift
  "$@" > /tmp/check.out 2>&1; rc=$?
  cat /tmp/check.out
  if [ $rc = 0 ]; then echo "XENVM-CHECK PASS [$SCEN] $name"
  else
    echo "XENVM-CHECK FAIL [$SCEN] $name (rc=$rc)"; XENVM_FAILS=$((XENVM_FAILS+1))
    head -n 30 /tmp/check.out | sed "s/^/XENVM-DETAIL [$SCEN] /"
  fi
  return $rc
}
# check_eq NAME EXPECTED SEEN: equality check that shows both on failure
check_eq() {
  if [ "$2" = "$3" ]; then echo "XENVM-CHECK PASS [$SCEN] $1"; return 0; fi
  echo "XENVM-CHECK FAIL [$SCEN] $1: expected '$2', seen '$3'"; XENVM_FAILS=$((XENVM_FAILS+1)); return 1
}
# note TEXT: an informational line in the summary
note() { echo "XENVM-NOTE [$SCEN] $*"; }
# bench KEY=VALUE...: benchmark figures, collected by run.sh
bench() { echo "XGA-BENCH scenario=$SCEN $*"; }

# checks_done: exit with the number of failed checks (max 100)
checks_done() {
  echo "XENVM-CHECKS failed=$XENVM_FAILS"
  [ $XENVM_FAILS -gt 100 ] && XENVM_FAILS=100
  exit $XENVM_FAILS
}
