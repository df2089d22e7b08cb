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

# latency: the guest writes xenvm/mark, then runs `ip addr add|del`; dom0
# watches the home and stamps each event, so the figure is an upper bound
# (it includes starting ip(8) in the guest).
n=10
watch_stamps "$XS_HOME" /tmp/watch.log
guest_exec "xga latency $n 10.99.0" $((n * 4 + 60)) >/dev/null
# every mark (2 per step, and "end") seen before stopping the watch
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
