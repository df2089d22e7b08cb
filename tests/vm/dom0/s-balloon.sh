# balloon: control/feature-balloon. Under libxl's default permissions the
# write is refused: the agent says so once and keeps working (the std
# scenario checked the rest of the tree). Pre-created writable by dom0 (as
# XAPI does, XGA_VM_XS_PRECREATE), it reads 1.
agent_start
if [ "${XGA_BALLOON:-absent}" = 1 ]; then
  check "control/feature-balloon = 1 (pre-created writable)" wait_xs_value "$XS_HOME/control/feature-balloon" 1 120
  check "the std tree is complete and right" wait_schema std 120
else
  check "control/feature-balloon absent (libxl: control/ is read-only)" xs_absent "$XS_HOME/control/feature-balloon"
  check "the agent logs the refused write" wait_until 60 agent_log feature-balloon
  n=$(agent_log feature-balloon | wc -l)
  agent_log feature-balloon
  # Once per domain: a new domain (after a restore here) may be another
  # toolstack's, and is tried once more.
  domains=$(( 1 + $(agent_log "no longer what the agent wrote" | wc -l) ))
  check "the refused write is logged once per domain ($n times, $domains domains)" \
    test "$n" -ge 1 -a "$n" -le "$domains"
  check "the agent is still running" agent_alive
fi
