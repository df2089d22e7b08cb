# Sourced by packaging/test.sh (the default package, installed in $root):
# XAPI's static IP setting made to last, under a booted systemd
# (systemd-nspawn, with a veth of its own: host0). The test xenstored runs
# in the root as a service standing for dom0; the agent is set up as the
# README says (the drop-in linked, --allow static-ip in /etc/default);
# packaging/static-ip-guest.sh, run at each boot after the agent, writes
# what xenopsd writes and looks at host0. Four boots: systemd-networkd
# (applied, survives its restart; after a reboot, then DHCP back), then
# ifupdown (the same). NetworkManager is not run: under systemd-nspawn it
# leaves veth devices unmanaged; its files are checked by tests/xenstore.

echo "=== XAPI's static IP setting under systemd: systemd-networkd, then ifupdown (systemd-nspawn)"
(cd "$top" && cargo build -q -p test-xenstored) || die "cannot build the test xenstored"
install -m 0755 "$top/target/debug/test-xenstored" "$root/usr/local/sbin/test-xenstored"
install -m 0755 "$top/packaging/static-ip-guest.sh" "$root/usr/local/sbin/xga-static-ip"
rm -f "$root/etc/systemd/system/multi-user.target.wants/xga-report.service" "$root"/root/xga-*
sed -i '/^XEN_GUEST_AGENT_ARGS=/d' "$root/etc/default/xen-guest-agent"
echo 'XEN_GUEST_AGENT_ARGS="--allow static-ip --loglevel debug"' >> "$root/etc/default/xen-guest-agent"
ln -sf "/usr/share/xen-guest-agent/$dropin" "$root/etc/systemd/system/$unit.d/static-ip.conf"
cat > "$root/etc/systemd/system/$unit.d/xenstored.conf" <<'EOF2'
[Unit]
Requires=xga-xenstored.service
After=xga-xenstored.service
[Service]
Environment=XENSTORED_PATH=/run/xenstored/socket
EOF2
# dom0: the guest is domain 5; control/feature-static-ip-setting exists
# guest-writable before the agent starts, as xenopsd makes it.
cat > "$root/etc/systemd/system/xga-xenstored.service" <<'EOF2'
[Unit]
Description=The test xenstored, standing for dom0
[Service]
RuntimeDirectory=xenstored
ExecStart=/usr/local/sbin/test-xenstored --socket /run/xenstored/socket --domid 5 --dom0-socket /run/xenstored/dom0
ExecStartPost=/bin/sh -c 'for i in $$(seq 100); do [ -S /run/xenstored/dom0 ] && break; sleep 0.1; done; export XENSTORED_PATH=/run/xenstored/dom0; f=/local/domain/5/control/feature-static-ip-setting; xenstore-write $$f "" && xenstore-chmod $$f n5'
EOF2
cat > "$root/etc/systemd/system/xga-static-ip.service" <<'EOF2'
[Unit]
After=xen-guest-agent.service
[Service]
Type=oneshot
ExecStart=/usr/local/sbin/xga-static-ip
[Install]
WantedBy=multi-user.target
EOF2
ln -sf /etc/systemd/system/xga-static-ip.service "$root/etc/systemd/system/multi-user.target.wants/"
# Both managers configured as a guest of theirs would be, networkd first:
# its .network file for host0 is systemd's own (80-container-host0.network);
# ifupdown's brings host0 up and includes interfaces.d, with no stanza of
# its own for it (the agent never edits an administrator's stanza).
printf 'source /etc/network/interfaces.d/*\nauto lo\niface lo inet loopback\nauto host0\n' \
  > "$root/etc/network/interfaces"
chroot "$root" systemctl enable -q systemd-networkd.service
chroot "$root" systemctl disable -q networking.service
boots=0 next=
while [ "$boots" -lt 4 ]; do
  boots=$((boots + 1))
  rm -f "$root/root/xga-static-ip.next"
  # The host's end of the veth up, so that host0 has a carrier, as a VIF
  # has (networkd configures no address on a link without one).
  (for _ in $(seq 300); do ip link set ve-xgaip up 2>/dev/null && break; sleep 0.1; done) &
  timeout 180 systemd-nspawn -q --register=no --keep-unit -D "$root" -M xgaip -b --console=pipe \
    --network-veth > "$work/static-ip-boot$boots.log" 2>&1 || true
  wait
  next=$(cat "$root/root/xga-static-ip.next" 2>/dev/null || echo none)
  [ "$next" = reboot ] || break
done
if [ -f "$root/root/xga-static-ip.log" ]; then
  cat "$root/root/xga-static-ip.log"
  while read -r line; do
    case $line in
      ok:*) ok "${line#ok: }" ;;
      FAILED:*) bad "${line#FAILED: }" ;;
    esac
  done < "$root/root/xga-static-ip.log"
fi
if [ "$next" = done ] && [ "$boots" = 4 ]; then
  ok "static IP: the four boots ran (networkd, its reboot, ifupdown, its reboot)"
else
  bad "static IP: the boots stopped after $boots ($next)"
  for f in "$work"/static-ip-boot*.log "$root"/root/xga-static-ip.*.journal; do
    [ -f "$f" ] && { echo "--- $f"; tail -n 40 "$f"; }
  done
fi
