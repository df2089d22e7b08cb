# bench: figures for the benchmarks (XGA-BENCH lines, collected by run.sh):
# memory, threads and CPU after start and over an idle window, syscalls over
# a second window (strace -c), and the latency from `ip addr add|del` in the
# guest to the node changing in dom0.
agent_start
# the rest needs a right tree to start from: stop here (one failure) if not
check "the std tree is right before the scenario" wait_schema std 120 || return 0
idle=${XGA_IDLE:-60}
s=$(guest_exec "xga sample"); bench phase=start $s
# what the agent writes while idle: dom0's watches fire on every write,
# even of an equal value, so only what changed may be written
watch_stamps "$XS_HOME" /tmp/idle.watch
s=$(guest_exec "xga idle $idle" $((idle + 120))); bench phase=idle $s
watch_stop /tmp/idle.watch
writes=$(sed 1d /tmp/idle.watch | awk '{print $2}' | sed "s#^$XS_HOME/##" | grep -v '^xenvm/' | sort | uniq -c | awk '{printf "%s:%s ", $2, $1}')
bench phase=idle-xenstore-events "${writes:-none}"
check_eq "idle: nothing written below attr/ or control/ (watches fire on every write)" "" \
  "$(tr ' ' '\n' <<<"$writes" | grep -E '^(attr|control)/' | tr '\n' ' ')"
s=$(guest_exec "xga syscalls $idle" $((idle + 120))); echo "$s"; bench phase=strace $(head -n1 <<<"$s")
bench phase=strace-by-call $(sed -n 's/^by_call: //p' <<<"$s")

measure_latency 10
