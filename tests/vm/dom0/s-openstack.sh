# openstack: OpenStack's guest-agent commands in the Debian 12 systemd
# guest (after deb12): the drop-in linked and --allow
# password,injectfile,resetnetwork set as the README says; dom0 runs nova's
# first-boot sequence (tests/openstack/nova-client.sh: version, features,
# keyinit, password, injectfile, resetnetwork); the guest's root password,
# authorized_keys, eth0 address and host name change. Everything but the
# password is undone before purge.
. /xenvm/sd-lib.sh
MAC=$(xenstore-read "$XS_HOME/device/vif/0/mac")
DROPIN=/etc/systemd/system/$UNIT.d/openstack.conf

echo "== allowed, with the drop-in"
# What did not exist before is removed after (the purge scenario compares
# the file system's entries with those before the install).
gx "for f in /root/.ssh /etc/.pwd.lock /etc/shadow-; do [ -e \$f ] || echo \$f; done > /var/lib/xenvm/openstack.new"
hostname_mode=$(gx "stat -c %a /etc/hostname")
gx "cp /etc/default/xen-guest-agent /var/lib/xenvm/default.saved && hostname > /var/lib/xenvm/hostname.saved &&
  cp /etc/hostname /var/lib/xenvm/etc-hostname.saved && mkdir -p /etc/systemd/system/$UNIT.d &&
  ln -s /usr/share/xen-guest-agent/xen-guest-agent-openstack.conf $DROPIN &&
  echo 'XEN_GUEST_AGENT_ARGS=\"--allow password,injectfile,resetnetwork\"' >> /etc/default/xen-guest-agent &&
  systemctl daemon-reload && systemctl restart $UNIT"
check "active with --allow password,injectfile,resetnetwork and the drop-in" unit_active 60

echo "== nova's first boot"
echo "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIXga nova@dom0" > /tmp/keys
out=$(/xenvm/nova-client.sh --home "$XS_HOME" --domid "$DOMID" --password 'S3cret-pa55' \
  --inject /root/.ssh/authorized_keys=/tmp/keys --mac "$MAC" --ip 192.168.77.30 \
  --gateway 192.168.77.1 --hostname xga-nova --timeout 60)
rc=$?; echo "$out"
check_eq "every command answered as nova expects" 0 "$rc"
check "features: the allowed commands" grep -qx "features 0 version,features,keyinit,password,injectfile,resetnetwork" <<<"$out"
check "keyinit answered D0" grep -q "^keyinit D0 [0-9]" <<<"$out"
hash=$(gx "awk -F: '\$1 == \"root\" {print \$2}' /etc/shadow")
salt=$(cut -d'$' -f3 <<<"$hash")
check_eq "root's password is the new one (SHA-512 crypt)" "$hash" "$(openssl passwd -6 -salt "$salt" 'S3cret-pa55')"
check_eq "/etc/shadow kept its owner and mode" "root:shadow 640" "$(gx "stat -c '%U:%G %a' /etc/shadow")"
check_eq "root's authorized_keys has the key, 0600" "$(cat /tmp/keys) 600" \
  "$(gx "echo \"\$(cat /root/.ssh/authorized_keys) \$(stat -c %a /root/.ssh/authorized_keys)\"")"
check_eq "the guest's eth0 has the address from vm-data/networking" "192.168.77.30/24" \
  "$(gx "ip -4 -o addr show dev eth0 scope global | awk '{print \$4}'")"
check_eq "the host name from vm-data/hostname" "xga-nova xga-nova" "$(gx "echo \$(hostname) \$(cat /etc/hostname)")"
check_eq "/etc/hostname kept its mode" "$hostname_mode" "$(gx "stat -c %a /etc/hostname")"
check "one audit line per command in the journal, no password" \
  gx "[ \$(journalctl --no-pager -q -b -u $UNIT | grep -c 'OpenStack command data/host/') = 6 ] &&
    ! journalctl --no-pager -q -b -u $UNIT | grep -q S3cret"
check "the unit ran it all without a restart" unit_running

echo "== undone"
gx "ip addr flush dev eth0 scope global && ip addr add 192.168.77.2/24 dev eth0 &&
  hostname \$(cat /var/lib/xenvm/hostname.saved) && cp /var/lib/xenvm/etc-hostname.saved /etc/hostname &&
  rm -f /root/.ssh/authorized_keys /root/.ssh/authorized_keys.*.bak $DROPIN && rmdir /etc/systemd/system/$UNIT.d &&
  rm -rf \$(cat /var/lib/xenvm/openstack.new) && rm /var/lib/xenvm/openstack.new &&
  cp /var/lib/xenvm/default.saved /etc/default/xen-guest-agent &&
  rm /var/lib/xenvm/default.saved /var/lib/xenvm/hostname.saved /var/lib/xenvm/etc-hostname.saved &&
  systemctl daemon-reload && systemctl restart $UNIT"
check "active again without the option" unit_active 60
xenstore-rm "$XS_HOME/vm-data"
