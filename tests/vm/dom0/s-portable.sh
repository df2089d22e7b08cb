# portable: the portable package's binary in a guest without libxenstore
# (issue 10): none in the guest, nothing shared mapped in the agent, the
# native backend logged, one thread. The scenarios after it in the same
# boot (std, net, save-restore, rfc, pvh) run this agent.
check_eq "the guest has no libxenstore" "" \
  "$(guest_exec 'find / -xdev -name "libxenstore*" 2>/dev/null')"
if agent_start; then
  check "the agent logs the native backend" wait_until 60 agent_log 'xenstore backend: native'
  agent_log 'xenstore backend'
  check_eq "no shared library is mapped in the agent" 0 \
    "$(guest_exec "grep -c '[.]so' /proc/$AGENT_PID/maps")"
  check_eq "the agent has one thread" 1 \
    "$(guest_exec "sed -n 's/^Threads:[[:space:]]*//p' /proc/$AGENT_PID/status")"
fi
