#!/bin/bash
# The guest side of dom0's command channel, in both kinds of guest (run by
# lib/domU-init in the busybox guests, by xenvm-exec.service in the systemd
# guests): runs /xenvm/guest.sh with bash, prints
#   XENVM-GUEST-EXIT rc=<rc>
# then serves dom0's guest_exec requests through xenstore (nodes under our
# home, created by dom0 and owned by us):
#   xenvm/seq, xenvm/cmd  ->  xenvm/out/<i> (base64 chunks), xenvm/nout,
#                             xenvm/rc, xenvm/done (= seq, written last)
echo "XENVM-GUEST-MARK guest-script-start uptime=$(cut -d' ' -f1 /proc/uptime)"
( cd /xenvm && bash /xenvm/guest.sh ); rc=$?
echo "XENVM-GUEST-EXIT rc=$rc"

# Serve guest_exec, woken by a watch on xenvm/seq rather than by polling
# (a fork costs a lot in a PV guest under TCG; polling would eat the vCPU
# the agent is measured on). The kernel re-registers the watch after a
# restore, and each registration fires once; a 5 s timeout re-reads anyway.
serve() {
  local seq cmd erc n chunk last
  seq=$(xenstore-read xenvm/seq 2>/dev/null) || return 0
  read -r last < /run/xenvm-last-seq 2>/dev/null
  [ -n "$seq" ] && [ "$seq" != "${last:-}" ] || return 0
  echo "$seq" > /run/xenvm-last-seq
  cmd=$(xenstore-read -R xenvm/cmd 2>/dev/null)
  echo "XENVM-GUEST-EXEC[$seq] $cmd"
  ( cd /xenvm && bash -c "$cmd" ) > /tmp/exec.out 2>&1 </dev/null; erc=$?
  sed 's/^/  | /' /tmp/exec.out
  # A guest may write at most 2048 bytes per node: base64 in 1900-byte
  # chunks keeps any output (trailing newlines, any byte) intact.
  local -a kv=()
  n=0
  while IFS= read -r chunk; do kv+=("xenvm/out/$n" "$chunk"); n=$((n+1)); done < <(head -c 65536 /tmp/exec.out | base64 -w 1900)
  # one xenstore-write: one transaction, done included
  xenstore-write "${kv[@]}" xenvm/nout "$n" xenvm/rc "$erc" xenvm/done "$seq" ||
    { echo "XENVM-WARN cannot write the output of guest_exec[$seq]"; xenstore-write xenvm/done "$seq"; }
}
while :; do
  while :; do
    read -r -t 5 _; r=$?
    serve
    [ $r = 0 ] || [ $r -gt 128 ] || break   # EOF: the watch ended
  done < <(xenstore-watch xenvm/seq 2>/dev/null)
  echo "XENVM-WARN xenstore-watch xenvm/seq ended, restarting it"
  sleep 1
done
