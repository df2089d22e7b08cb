# pvh: the std scenario again, in a PVH guest.
check_eq "the guest is PVH" PVH "$(guest_exec 'cat /sys/hypervisor/guest_type')"
. /xenvm/s-std.sh
# The mode as the rfc schema reports it (the std scenario above does not
# publish it): the agent restarted with XENSTORE_SCHEMA=rfc, whose checks
# want data/virtualization/mode = pvh from the guest's own guest_type.
if check "the agent stops" guest_exec "xga stop" 60 &&
   check "the agent starts again with the rfc schema" guest_exec "xga start XENSTORE_SCHEMA=rfc" 60; then
  AGENT_PID=$(guest_exec "xga pid")
  check "rfc in a PVH guest: mode pvh, the tree complete and right" wait_schema rfc 120
fi
