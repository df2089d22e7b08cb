# static-ip: XAPI's static IP setting in the Debian 12 systemd guest (after
# deb12): the drop-in linked and --allow static-ip set as the README says,
# then dom0 writes what xenopsd writes under
# xenserver/device/vif/0/static-ip-setting/ (owned by the guest, no access
# for others); the guest applies it, dom0 sees error-code 0, enabled gone,
# the new address in attr/vif/0; back to DHCP removes it. Under xl
# control/ is read-only to the guest: the node is pre-created
# guest-writable here, as xenopsd's control/ is, so that the advertisement
# and its withdrawal are seen. Everything is undone before purge.
. /xenvm/sd-lib.sh
DIR=$XS_HOME/xenserver/device/vif/0/static-ip-setting
FLAG=$XS_HOME/control/feature-static-ip-setting
MAC=$(xenstore-read "$XS_HOME/device/vif/0/mac")
DROPIN=/etc/systemd/system/$UNIT.d/static-ip.conf

echo "== allowed, with the drop-in"
xenstore-write "$FLAG" "" && xenstore-chmod "$FLAG" "n$DOMID"
gx "cp /etc/default/xen-guest-agent /var/lib/xenvm/default.saved && mkdir -p /etc/systemd/system/$UNIT.d &&
  ln -s /usr/share/xen-guest-agent/xen-guest-agent-static-ip.conf $DROPIN &&
  echo 'XEN_GUEST_AGENT_ARGS=\"--allow static-ip\"' >> /etc/default/xen-guest-agent &&
  systemctl daemon-reload && systemctl restart $UNIT"
check "active with --allow static-ip and the drop-in" unit_active 60
check_eq "the unit's bounding set is CAP_NET_ADMIN alone" cap_net_admin "$(unit_prop CapabilityBoundingSet)"
check "control/feature-static-ip-setting = 1 (advertised)" wait_xs_value "$FLAG" 1 60

echo "== a static IPv4 setting, as xenopsd writes it at plug time"
# The harness's own address goes: the setting replaces it.
xenstore-write "$DIR/mac" "$MAC" "$DIR/error-code" 0 "$DIR/error-msg" "" \
  "$DIR/address" 192.168.77.20/24 "$DIR/gateway" 192.168.77.1 "$DIR/enabled6" 0
xenstore-chmod -r "$XS_HOME/xenserver/device/vif/0" "n$DOMID"
xenstore-write "$DIR/enabled" 1 && xenstore-chmod "$DIR/enabled" "n$DOMID"
answered() { xs_is "$DIR/error-code" "$1" && xs_absent "$DIR/enabled" && xs_absent "$DIR/enabled6"; }
check "answered: error-code 0, enabled and enabled6 removed" wait_xs_cond 120 answered 0
msg=$(xenstore-read "$DIR/error-msg"); echo "error-msg: $msg"
check "error-msg says what was done, on eth0" grep -q "ipv4 static 192.168.77.20/24 via 192.168.77.1 for MAC $MAC: done on eth0" <<<"$msg"
check_eq "the guest's eth0 has exactly the new address" "192.168.77.20/24" "$(gx "ip -4 -o addr show dev eth0 scope global | awk '{print \$4}'")"
check_eq "the guest's default route goes through the gateway" "default via 192.168.77.1 dev eth0" "$(gx "ip -4 route show default | awk '{print \$1, \$2, \$3, \$4, \$5}'")"
check "dom0 sees it in attr/vif/0/ipv4/0" wait_xs_value "$XS_HOME/attr/vif/0/ipv4/0" 192.168.77.20 60
check "the tree matches the guest" wait_schema std 120 fresh
check "one audit line in the journal" gx "journalctl --no-pager -q -b -u $UNIT | grep -q 'static IP setting xenserver/device/vif/0/static-ip-setting: ipv4 static 192.168.77.20/24'"

echo "== back to DHCP (a live change: address and gateway removed, then enabled = 2)"
xenstore-rm "$DIR/address"; xenstore-rm "$DIR/gateway"; xenstore-write "$DIR/enabled" 2
check "answered again: error-code 0, enabled removed" wait_xs_cond 120 answered 0
check_eq "the static address the agent set is gone" "" "$(gx "ip -4 -o addr show dev eth0 scope global")"
check "dom0 sees no IPv4 on vif 0" wait_xs_gone "$XS_HOME/attr/vif/0/ipv4/0" 60
gx "ip addr add 192.168.77.2/24 dev eth0"   # the harness's address back
check "the tree matches the guest" wait_schema std 120 fresh
check_journal "the unit's journal: no warning or error" -b

echo "== stopped: the advertisement withdrawn; then as before"
gx "systemctl stop $UNIT"
check "control/feature-static-ip-setting removed when the agent stops" wait_xs_gone "$FLAG" 30
gx "rm $DROPIN && rmdir /etc/systemd/system/$UNIT.d && cp /var/lib/xenvm/default.saved /etc/default/xen-guest-agent &&
  rm /var/lib/xenvm/default.saved && systemctl daemon-reload && systemctl start $UNIT"
check "active again without the option" unit_active 60
xenstore-rm "$XS_HOME/xenserver/device/vif/0/static-ip-setting"
