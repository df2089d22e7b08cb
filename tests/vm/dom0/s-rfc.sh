# rfc: the structured tree under data/ (XENSTORE_SCHEMA=rfc in the unit's
# environment), then an IPv4 address added and removed.
if agent_start; then
  t=$(first_update_s) && bench start_to_updated_s=$t
  check "the rfc tree is complete and right" wait_schema rfc 120
  xenstore-ls -p "$XS_HOME/data"
  guest_exec "ip addr add 10.10.0.5/24 dev eth0"
  check "an added IPv4 address appears" wait_schema rfc 120
  guest_exec "ip addr del 10.10.0.5/24 dev eth0"
  check "a removed IPv4 address disappears" wait_schema rfc 120
  check "the agent is still running" agent_alive
fi
