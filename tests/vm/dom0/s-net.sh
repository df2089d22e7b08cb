# net: in the guest, IPv4 add and remove; IPv6 churn beyond the address cap;
# a second VIF hot-plugged, configured, then unplugged. dom0 sees each
# change, and nothing stale is left.
agent_start
# the rest needs a right tree to start from: stop here (one failure) if not
check "the std tree is right before the scenario" wait_schema std 120 || return 0

echo "== IPv4 add / remove"
guest_exec "ip addr add 10.10.0.5/24 dev eth0"
check "added IPv4 10.10.0.5 appears" wait_xs_cond 120 has_slot ipv4 10.10.0.5
check_eq "it takes the lowest free slot" 1 "$(slot_of ipv4 10.10.0.5)"
check "the tree matches the guest" wait_schema std 120
guest_exec "ip addr del 10.10.0.5/24 dev eth0"
check "removed IPv4 10.10.0.5 disappears" wait_xs_cond 120 no_slot ipv4 10.10.0.5
check "the tree matches the guest" wait_schema std 120

echo "== IPv6 churn beyond the cap (${XGA_CAP:-32})"
ll=$(jq -r '[.addr[] | select(.ifname == "eth0") | .addr_info[] | select(.family == "inet6" and (.local | startswith("fe80")))][0].local // empty' <<<"$FACTS")
ll_slot=$(slot_of ipv6 "$ll")
note "link-local $ll in slot ${ll_slot:-none}"
guest_exec "for i in \$(seq 1 40); do ip -6 addr add fd00:77::\$i/64 dev eth0 nodad; done; ip -6 addr show dev eth0 | grep -c inet6" 300
check "41 IPv6 addresses: ${XGA_CAP:-32} published, all real, in integer slots" wait_schema std 120
[ -n "$ll" ] && check_eq "the link-local address keeps its slot" "$ll_slot" "$(slot_of ipv6 "$ll")"
agent_log 'cap|max-addresses|too many' | head -n 5
guest_exec "for i in \$(seq 1 30); do ip -6 addr del fd00:77::\$i/64 dev eth0; done" 300
check "30 removed: the 11 left are all published (freed slots reused)" wait_schema std 120
guest_exec "for i in \$(seq 31 40); do ip -6 addr del fd00:77::\$i/64 dev eth0; done" 300
check "all removed: back to the link-local address only" wait_schema std 120
[ -n "$ll" ] && check_eq "the link-local address still has its slot" "$ll_slot" "$(slot_of ipv6 "$ll")"
check "ipv6 slots do not grow: highest slot < cap" \
  bash -c "[ \"\$(xenstore-list $XS_HOME/attr/vif/0/ipv6 2>/dev/null | sort -n | tail -n1)\" -lt ${XGA_CAP:-32} ]"

echo "== VIF hot-plug"
check "xl network-attach" xl network-attach domU bridge=xenbr0 mac=00:16:3e:5e:00:02
guest_exec "for i in \$(seq 600); do [ -e /sys/class/net/eth1 ] && break; sleep 0.2; done
            ip link set eth1 up && ip addr add 192.168.78.2/24 dev eth1 && ip -br addr show eth1" 200
check "vif 1: eth1 192.168.78.2 published" wait_xs_value "$XS_HOME/attr/vif/1/ipv4/0" 192.168.78.2 120
check "the tree matches the guest (2 VIFs)" wait_schema std 120
xenstore-ls "$XS_HOME/attr/vif"
check "xl network-detach 1" xl network-detach domU 1
guest_exec "for i in \$(seq 600); do [ -e /sys/class/net/eth1 ] || break; sleep 0.2; done; ip -br link" 200
check "attr/vif/1 removed entirely" wait_xs_gone "$XS_HOME/attr/vif/1" 120
check "the tree matches the guest (1 VIF, nothing stale)" wait_schema std 120
check "the agent is still running" agent_alive
