# portable: the portable package's binary in a guest without libxenstore
# (issue 10): none in the guest, nothing shared mapped in the agent, the
# native backend logged, one thread. The scenarios after it in the same
# boot (std, net, save-restore, rfc, pvh) run this agent.
# (The harness's own xenstore client keeps its copy in /usr/lib/xenvm,
# found through its DT_RPATH: off the library path.)
check_eq "no libxenstore on the guest's library path" "" \
  "$(guest_exec 'ls /lib /lib64 /usr/lib /usr/lib64 /lib/x86_64-linux-gnu /usr/lib/x86_64-linux-gnu /usr/local/lib 2>/dev/null | grep libxenstore; echo "$LD_LIBRARY_PATH"; cat /etc/ld.so.conf 2>/dev/null')"
if agent_start; then
  check "the agent logs the native backend" wait_until 60 agent_log 'xenstore backend: native'
  agent_log 'xenstore backend'
  check_eq "no shared library is mapped in the agent" 0 \
    "$(guest_exec "grep -c '[.]so' /proc/$AGENT_PID/maps")"
  check_eq "the agent has one thread" 1 \
    "$(guest_exec "sed -n 's/^Threads:[[:space:]]*//p' /proc/$AGENT_PID/status")"
fi
# The figure issue 10 asks for in a real guest: its RSS and PSS, after the
# first publication (XGA-BENCH lines; not a check).
if [ -n "${AGENT_PID:-}" ]; then
  bench $(guest_exec "awk '/^(VmRSS|VmHWM):/ {printf \"%s_kib=%s \", tolower(substr(\$1, 1, length(\$1) - 1)), \$2}' /proc/$AGENT_PID/status; awk '/^Pss:/ {printf \"pss_kib=%s\", \$2}' /proc/$AGENT_PID/smaps_rollup 2>/dev/null")
fi
