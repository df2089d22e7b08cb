# dom0 helpers for the systemd guests (bash, after scen-lib.sh). Environment
# from run.sh (/xenvm/env): XGA_DEB (the .deb's file name in the guest's
# /xenvm/pkg), XGA_PORTABLE (1: the portable package, 0: the default one).
UNIT=xen-guest-agent.service

# gx CMD [TIMEOUT]: guest_exec, output and status as is
gx() { guest_exec "$@"; }
# unit_prop PROP: a property of the agent's unit (systemctl show)
unit_prop() { guest_exec "systemctl show -p $1 --value $UNIT"; }
# unit_state: the properties a user looks at, one line, sorted
unit_state() { guest_exec "systemctl show -p ActiveState -p SubState -p Result -p NRestarts -p MainPID -p ExecMainStatus $UNIT | sort | tr '\n' ' '"; }
# unit_running: active (running), Result=success, NRestarts=0 (no automatic
# restart since the unit was loaded in this boot); prints the state
unit_running() {
  local s p; s=" $(unit_state) "; echo "$s"
  for p in ActiveState=active SubState=running Result=success NRestarts=0; do [[ "$s" == *" $p "* ]] || return 1; done
}
# guest_until T CMD: a guest command line that waits until CMD succeeds,
# for T s at most (a deadline, not a number of tries: a fork's cost in the
# guest varies a lot under TCG); its status is 1 on timeout
guest_until() { echo "( end=\$((SECONDS + $1)); until $2; do [ \$SECONDS -lt \$end ] || exit 1; sleep 0.3; done )"; }
# unit_active [TIMEOUT_S]: wait in the guest until the unit is active
# (Type=notify: only after READY=1); on timeout print its status
unit_active() {
  guest_exec "$(guest_until "${1:-60}" "systemctl is-active -q $UNIT") || { systemctl status --no-pager -n 20 $UNIT; exit 1; }" \
    $((${1:-60} + 60))
}
# journal_problems [journalctl args]: the unit's warning/error lines (the
# agent's and systemd's about it) but the documented control/feature-balloon
# refusal under libxl's permissions
journal_problems() {
  guest_exec "journalctl --no-pager -q -o short-monotonic -u $UNIT -p warning $* | grep -v 'feature-balloon' || true"
}
# check_journal NAME [journalctl args]
check_journal() { check_eq "$1" "" "$(journal_problems "${@:2}")"; }

# sd_new_domid OLD_DOMID [TIMEOUT_S]: wait until the domain named domU has
# an id other than OLD_DOMID (after a reboot), print it
sd_new_domid() {
  local old=$1 d end=$((SECONDS + ${2:-120}))
  while :; do
    d=$(xl domid domU 2>/dev/null)
    [ -n "$d" ] && [ "$d" != "$old" ] && { echo "$d"; return 0; }
    [ $SECONDS -ge $end ] && return 1
    sleep 0.2
  done
}

# rewrites_of_unchanged BEFORE_JSON AFTER_JSON WATCH_FILE: the nodes written
# (watch events, the registration and xenvm/ left out) whose value is the
# same before and after: writes a toolstack's watch sees for nothing
rewrites_of_unchanged() {
  sed 1d "$3" | awk '{print $2}' | sed "s#^$XS_HOME/##" | grep -v -E '^xenvm(/|$)' | sort -u |
    jq -R -r --argjson a "$1" --argjson b "$2" '. as $k | select(($a | has($k)) and ($b | has($k)) and $a[$k] == $b[$k])'
}
# written_nodes WATCH_FILE: the nodes written (sorted, unique), xenvm/ left out
written_nodes() {
  sed 1d "$1" | awk '{print $2}' | sed "s#^$XS_HOME/##" | grep -v -E '^xenvm(/|$)' | sort -u | tr '\n' ' '
}

# xs_flush FILE: write xenvm/mark from dom0 and wait until the watch
# stamping FILE (watch_stamps on the home) saw it: every event before it
# has been read
xs_flush() {
  local m="flush-$RANDOM"
  xenstore-write "$XS_HOME/xenvm/mark" "$m"
  wait_until 30 grep -q " $XS_HOME/xenvm/mark\$" "$1"
}
