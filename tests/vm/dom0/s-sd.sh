# The package in a systemd guest booted from its Xen PV disk (the deb12,
# deb12-pvh and portable deb11 scenarios): installed as an administrator
# does it, started by its maintainer scripts under its hardened unit, then
# checked from dom0 (the tree XAPI reads) and in the guest (systemctl, the
# journal, systemd-analyze): a network change, `systemctl restart`,
# `xl save` + `xl restore`, a reboot. The purge scenario ends the boot.
. /xenvm/sd-lib.sh
facts || return 0
os=$(jq -r '.os.pretty' <<<"$FACTS")
note "guest: $os ($(jq -r .os.debian_version <<<"$FACTS")), kernel $(jq -r .uname <<<"$FACTS")"
check_eq "PID 1 is systemd" systemd "$(gx 'cat /proc/1/comm')"
check_eq "the root is the Xen PV disk xvda (blkfront)" "/dev/xvda ext4" "$(gx 'findmnt -n -o SOURCE,FSTYPE /' | tr -s ' ')"
check "no libxenstore in the guest before the install" gx '! ldconfig -p | grep libxenstore'
gx "xga fs-snapshot /var/lib/xenvm/fs-before" >/dev/null

echo "== apt install ./$XGA_DEB"
PATHS_BEFORE=$(xenstore-ls -f "$XS_HOME" | sed -n 's/ = .*//p' | LC_ALL=C sort)
watch_stamps "$XS_HOME/data/updated" /tmp/updated.watch
T_START=$(now)
out=$(gx "cd /xenvm/pkg && DEBIAN_FRONTEND=noninteractive apt-get install -y ./$XGA_DEB 2>&1" 600); rc=$?
echo "$out"
check_eq "apt-get install ./$XGA_DEB exits 0" 0 "$rc"
new_pkgs=$(sed -n '/NEW packages will be installed/,/^[^ ]/p' <<<"$out" | sed 1d | grep '^ ' | tr -s ' \n' ' ' | sed 's/^ //; s/ $//')
if [ "$XGA_PORTABLE" = 1 ]; then
  check_eq "apt installs the portable package alone (no dependency)" "${XGA_DEB%%_*}" "$new_pkgs"
else
  check_eq "apt resolves libxenstore4 from Debian (the local repository)" "libxenstore4 libxentoolcore1 xen-guest-agent" "$new_pkgs"
fi
t=$(first_update_s) && bench install_to_updated_s=$t

echo "== the service"
check_eq "enabled by the maintainer scripts" enabled "$(gx "systemctl is-enabled $UNIT")"
check "active (Type=notify: READY=1 received)" unit_active 60
check "running, no restart, no failure" unit_running
check "systemd logged the start (READY=1)" gx "journalctl --no-pager -q -b -u $UNIT | grep -q -E 'Started (xen-guest-agent.service|Xen guest agent)'"
AGENT_PID=$(gx "xga pid")

echo "== the tree"
check "the whole std tree, from the guest's own facts" wait_schema std 120
show_tree
check_eq "data/os_name is this guest's PRETTY_NAME" "$os" "$(xenstore-read "$XS_HOME/data/os_name")"
check_eq "data/os_majorver.os_minorver is this guest's /etc/debian_version" \
  "$(jq -r '.os.debian_version | split(".") | .[0] + "." + .[1]' <<<"$FACTS")" \
  "$(xenstore-read "$XS_HOME/data/os_majorver").$(xenstore-read "$XS_HOME/data/os_minorver")"
view=$(xapi_view); echo "XAPI view: $view"
IFS=. read -r vmaj vmin vmic <<<"$XGA_VERSION"
check_eq "XAPI PV_drivers_version" "$vmaj.$vmin.$vmic" "$(jq -r '.PV_drivers_version | "\(.major).\(.minor).\(.micro)"' <<<"$view")"
check_eq "XAPI networks 0/ip" 192.168.77.2 "$(jq -r '.networks["0/ip"]' <<<"$view")"
new=$(xenstore-ls -f "$XS_HOME" | sed -n 's/ = .*//p' | grep -vxF -f <(echo "$PATHS_BEFORE") |
      sed "s#^$XS_HOME/##" | grep -v -E '^(data|attr)(/|$)|^control/feature-balloon$|^xenvm(/|$)')
check_eq "the agent writes nowhere else" "" "$new"

echo "== systemd-analyze security, journal"
sec=$(gx "systemd-analyze security --no-pager $UNIT 2>&1"); echo "$sec" | grep -E '✗|Overall'
score=$(sed -n 's/.*Overall exposure level for .*: \([0-9.]*\) \([A-Z]*\).*/\1 \2/p' <<<"$sec")
bench exposure="${score// /_}"
check "systemd-analyze security in the guest: exposure OK or better (${score:-none})" grep -q -E ' (OK|SAFE|PERFECT)$' <<<" $score"
check_journal "the unit's journal: no warning or error but the documented feature-balloon one" -b

echo "== a network change under the sandbox"
gx_facts "ip addr add 10.10.0.5/24 dev eth0"
check "an added IPv4 address reaches dom0" wait_xs_cond 120 has_slot ipv4 10.10.0.5
check "the tree matches the guest" wait_schema std 120 fresh
gx_facts "ip -6 addr add fd00:77::5/64 dev eth0 nodad; ip addr del 10.10.0.5/24 dev eth0"
check "a removed IPv4 and an added IPv6 address reach dom0" wait_schema std 120 fresh

echo "== a host name change under the sandbox"
# sethostname(2), as hostnamectl's hostnamed does (`hostname`: the minimal
# guests may lack D-Bus): the unit shares the guest's UTS namespace
old_hn=$(gx "hostname")
gx_facts "hostname xga-renamed.lab.example"
check "a new host name reaches dom0 (data/host_name_dns, data/domain, attr/xen-guest-agent/host-name)" wait_schema std 30 fresh
check_eq "XAPI host_name follows it" xga-renamed.lab.example "$(xapi_view | jq -r '.netbios_name.host_name')"
gx_facts "hostname $old_hn"
check "the host name back reaches dom0" wait_schema std 30 fresh

echo "== systemctl restart"
before=$(home_json)
watch_stamps "$XS_HOME" /tmp/restart.watch
check "systemctl restart $UNIT" gx "systemctl restart $UNIT"
check "active again" unit_active 60
pid=$(gx "xga pid")
check "a new process" test -n "$pid" -a "$pid" != "$AGENT_PID"
AGENT_PID=$pid
check "the tree is right after the restart" wait_schema std 120
xs_flush /tmp/restart.watch
watch_stop /tmp/restart.watch
after=$(home_json)
note "nodes written by the new process: $(written_nodes /tmp/restart.watch)"
check_eq "the new process rewrites no unchanged node" "" "$(rewrites_of_unchanged "$before" "$after" /tmp/restart.watch | tr '\n' ' ')"
check_eq "NRestarts=0 (no automatic restart)" 0 "$(unit_prop NRestarts)"

echo "== xl save + xl restore"
facts
old=$DOMID
check "xl save + xl restore -p" save_restore
t0=$T_RESTORE
note "domid $old -> $DOMID"
check "the whole std tree is back" wait_schema std 120 fixed && bench restore_to_complete_s=$(elapsed "$t0")
check_eq "the same agent process" "$AGENT_PID" "$(gx "xga pid")"
check "still active, no restart" unit_running

echo "== reboot (xl reboot)"
seq=$(xenstore-read "$XS_HOME/xenvm/seq")
old=$DOMID
check "xl reboot" xl reboot domU
if check "a new domain for the rebooted guest" sd_new_domid "$old" 180; then
  t0=$(now)
  prepare_domain "$(sd_new_domid "$old")" "$seq"
  note "domid $old -> $DOMID"
  if check "data/updated published by the agent started at boot" wait_xs "$XS_HOME/data/updated" 300; then
    bench reboot_domain_to_updated_s=$(elapsed "$t0")
  fi
  check "the guest serves dom0's commands again" gx true 300
  check "the whole std tree is back" wait_schema std 120
  check "active after the boot" unit_active 120
  check "no restart, no failure" unit_running
  # the guest's own clock: CLOCK_MONOTONIC counts from its kernel's start
  ready=$(unit_prop ActiveEnterTimestampMonotonic)
  [ -n "$ready" ] && [ "$ready" -gt 0 ] && bench boot_to_ready_s=$(printf '%d.%03d' $((ready / 1000000)) $((ready % 1000000 / 1000)))
  gx "systemd-analyze time 2>&1 | head -n1"
  AGENT_PID=$(gx "xga pid")
  check_journal "the unit's journal of the new boot: no warning or error but feature-balloon" -b
fi
check_journal "the unit's journal over every boot: no warning or error but feature-balloon"
