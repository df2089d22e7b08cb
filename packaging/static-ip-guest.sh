#!/bin/bash
# The package test's static IP scenario, inside the booted root
# (xga-static-ip.service, after the agent): dom0's side through the test
# xenstored's dom0 socket, as xenopsd writes a setting; the guest's side
# with ip(8) and systemctl, as its administrator would look. One boot per
# step; the step is kept in /root/xga-static-ip.step:
#   networkd        static through systemd-networkd; survives its restart
#   networkd-boot   after a reboot: still there; DHCP back; switch to ifupdown
#   ifupdown        static through ifupdown; survives `systemctl restart networking`
#   ifupdown-boot   after a reboot: still there; DHCP back
# Results: ok:/FAILED: lines in /root/xga-static-ip.log, which
# packaging/test.sh reads; then a reboot into the next step, or "done" in
# /root/xga-static-ip.next and a poweroff.
set -u
export XENSTORED_PATH=/run/xenstored/dom0
log=/root/xga-static-ip.log
step=$(cat /root/xga-static-ip.step 2>/dev/null || echo networkd)
home=/local/domain/5
dir=$home/xenserver/device/vif/0/static-ip-setting
flag=$home/control/feature-static-ip-setting
ip4=192.168.250.20/24 gw4=192.168.250.1

ok() { echo "ok: [$step] $*" >> "$log"; }
bad() { echo "FAILED: [$step] $*" >> "$log"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
# within SECONDS CMD...: CMD true within that time (polled every 0.2 s).
within() { local n=$(($1 * 5)); shift; while ! "$@"; do n=$((n - 1)); [ "$n" -gt 0 ] || return 1; sleep 0.2; done; }
addrs() { ip -4 -o addr show dev host0 scope global | awk '{print $4}' | tr '\n' ' ' | sed 's/ $//'; }
has() { [ "$(addrs)" = "$1" ]; }
route_is() { [ "$(ip -4 route show default dev host0 | awk '{print $1, $2, $3}')" = "$1" ]; }
answered() {
  [ "$(xenstore-read "$dir/error-code" 2>/dev/null)" = 0 ] &&
    ! xenstore-exists "$dir/enabled" 2>/dev/null && ! xenstore-exists "$dir/enabled6" 2>/dev/null
}
# request ENABLED [ADDRESS GATEWAY]: as xenopsd writes it, owned by the
# guest with no access for others, `enabled` last.
request() {
  xenstore-rm "$dir/address" 2>/dev/null; xenstore-rm "$dir/gateway" 2>/dev/null
  xenstore-write "$dir/mac" "$(cat /sys/class/net/host0/address)" "$dir/error-code" 0 \
    "$dir/error-msg" "" "$dir/enabled6" 0
  [ $# -gt 1 ] && xenstore-write "$dir/address" "$2" "$dir/gateway" "$3"
  xenstore-chmod -r "$home/xenserver/device/vif/0" n5
  xenstore-write "$dir/enabled" "$1" && xenstore-chmod "$dir/enabled" n5
}
# says TEXT PART...: TEXT has every PART.
says() { local t=$1; shift; for p in "$@"; do case $t in *"$p"*) ;; *) return 1 ;; esac; done; }
msg() { xenstore-read "$dir/error-msg" 2>/dev/null; }
reboot_into() { echo "$1" > /root/xga-static-ip.step; next=reboot; }
next=poweroff

check "the agent runs and advertises control/feature-static-ip-setting" \
  within 30 sh -c "[ \"\$(xenstore-read $flag 2>/dev/null)\" = 1 ]"
case $step in
  networkd|ifupdown)
    request 1 "$ip4" "$gw4"
    check "answered: error-code 0, enabled and enabled6 removed" within 30 answered
    m=$(msg); echo "error-msg: $m" >> "$log"
    check "the address is on host0 at once" has "$ip4"
    check "the default route goes through the gateway" route_is "default via $gw4"
    if [ "$step" = networkd ]; then
      conf=/etc/systemd/network/80-container-host0.network.d/90-xen-guest-agent.conf
      check "error-msg: done, lasting through the networkd drop-in, networkd told" \
        says "$m" "done on host0; lasting through $conf " "; systemd-networkd reconfigured the interface"
      check "the drop-in has the address and the gateway" \
        sh -c "grep -qx 'Address=$ip4' $conf && grep -qx 'Gateway=$gw4' $conf"
      cat "$conf" >> "$log"
      ip addr flush dev host0 scope global
      systemctl restart systemd-networkd
      check "after the address is flushed and systemd-networkd restarted: it is back" within 30 has "$ip4"
      check "... and the default route" within 30 route_is "default via $gw4"
      reboot_into networkd-boot
    else
      file=/etc/network/interfaces.d/xen-guest-agent-host0
      check "error-msg: done, lasting through the ifupdown file" says "$m" "done on host0; lasting through $file"
      check "the file has the static stanza" \
        sh -c "grep -qx 'iface host0 inet static' $file && grep -q 'address $ip4' $file && grep -q 'gateway $gw4' $file"
      cat "$file" >> "$log"
      ifdown host0 >> "$log" 2>&1; ip addr flush dev host0 scope global
      systemctl restart networking
      check "after the address is flushed and networking restarted: it is back" within 30 has "$ip4"
      check "... and the default route" within 30 route_is "default via $gw4"
      reboot_into ifupdown-boot
    fi
    ;;
  networkd-boot|ifupdown-boot)
    check "after a reboot: the address is back on host0" within 30 has "$ip4"
    check "... and the default route" within 30 route_is "default via $gw4"
    request 2
    check "back to DHCP: answered" within 30 answered
    m=$(msg); echo "error-msg: $m" >> "$log"
    if [ "$step" = networkd-boot ]; then
      check "back to DHCP: the drop-in is gone" \
        test ! -e /etc/systemd/network/80-container-host0.network.d/90-xen-guest-agent.conf
      check "back to DHCP: systemd-networkd took the address away" within 30 has ""
      # Next: the same guest with ifupdown instead.
      systemctl disable -q --now systemd-networkd.service systemd-networkd.socket 2>> "$log"
      systemctl enable -q networking.service 2>> "$log"
      ip addr flush dev host0 scope global
      reboot_into ifupdown
    else
      # No stanza of the guest's own for host0: DHCP is the agent's to say.
      file=/etc/network/interfaces.d/xen-guest-agent-host0
      check "back to DHCP: the ifupdown file says DHCP, no static address" \
        sh -c "grep -qx 'iface host0 inet dhcp' $file && ! grep -q address $file"
      cat "$file" >> "$log"
      next=done
    fi
    ;;
esac
journalctl --no-pager -b -o cat -u xen-guest-agent > "/root/xga-static-ip.$step.journal"
echo "$next" > /root/xga-static-ip.next
if [ "$next" = reboot ]; then systemctl --no-block reboot; else systemctl --no-block poweroff; fi
