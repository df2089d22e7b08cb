# sd-bench: figures of the agent under its unit in the systemd guest, at
# idle, over one window of XGA_IDLE (60) s: RSS and PSS, threads, the
# syscalls it makes (strace -c -f) and the xenstore requests xenstored
# receives from the guest (xenstored's trace, dom0 side); then the latency
# from `ip addr add|del` in the guest to the node in dom0. Boot to first
# publication comes from the deb12 scenario's reboot (boot_to_ready_s,
# reboot_domain_to_updated_s).
. /xenvm/sd-lib.sh
check "the std tree is right before the window" wait_schema std 120 || return 0
idle=${XGA_IDLE:-60}
s=$(gx "xga sample"); bench phase=start $s
# xenstored's trace: one line per request and reply; the guest's requests
# all come over one connection (its kernel multiplexes /dev/xen/xenbus),
# named in the trace by a pointer: a probe write of the guest finds it.
rm -f /tmp/xs-trace.log
xenstore-control logfile /tmp/xs-trace.log >/dev/null || note "xenstore-control logfile failed: no request count"
probe=probe-$RANDOM
gx "xenstore-write xenvm/probe $probe"
t0=$(now)
s=$(gx "xga window $idle" $((idle + 120))); echo "$s"
xenstore-control log off >/dev/null
window=$(elapsed "$t0")
conn=$(grep -a -m1 -E "^IN [^ ]+ .* WRITE \(xenvm/probe $probe" /tmp/xs-trace.log | awk '{print $2}')
if [ -n "$conn" ]; then
  # the agent's requests: the guest's, less the harness's (xenvm/ paths)
  reqs=$(awk -v c="$conn" '$1 == "IN" && $2 == c' /tmp/xs-trace.log | grep -a -v 'xenvm/')
  n=$(grep -c . <<<"$reqs")
  kinds=$(awk '{print $5}' <<<"$reqs" | sort | uniq -c | awk '{printf "%s:%s,", $2, $1}')
  bench phase=xenstore window_s="$window" xs_requests="$n" xs_requests_per_min="$(awk -v n="$n" -v w="$window" 'BEGIN{printf "%.1f", n * 60 / w}')" "kinds=${kinds%,}"
  grep -a -v 'xenvm/' <<<"$reqs" | head -n 20
else
  note "the guest's connection was not found in xenstored's trace: no request count"
fi
bench phase=idle $(head -n1 <<<"$s")
bench phase=strace-by-call $(sed -n 's/^by_call: //p' <<<"$s")
check "figures measured: PSS and syscalls" grep -q -E 'pss_kib=[1-9].* syscalls=[0-9]' <<<"$s"
measure_latency 10
