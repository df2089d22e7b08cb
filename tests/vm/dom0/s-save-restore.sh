# save-restore: `xl save` then `xl restore`, the agent keeps running: the
# restored domain (new domid, empty home) gets the whole tree again.
agent_start
# the rest needs a right tree to start from: stop here (one failure) if not
check "the std tree is right before the scenario" wait_schema std 120 || return 0
facts   # the guest does not change while saved: these facts hold after restore
old=$DOMID
check "xl save + xl restore -p" save_restore
new=$DOMID t0=$T_RESTORE
note "domid $old -> $new"
check "the restored domain has a new domid" test "$new" != "$old"
check "data/updated published again" wait_xs "$XS_HOME/data/updated" 120 && bench restore_to_updated_s=$(elapsed "$t0")
# (an upper bound: it includes dom0 checking the tree, a second or two under TCG)
if check "the whole std tree is published again" wait_schema std 120 fixed; then
  bench restore_to_complete_s=$(elapsed "$t0")
fi
check "the same agent process (not restarted)" agent_alive
