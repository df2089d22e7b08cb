#!/bin/bash
# Host-side self-test of the checks (std.jq, rfc.jq, xapi.jq): a right tree
# gives no problem, and each way of getting it wrong is caught. Needs jq
# only; run.sh runs it before booting anything.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
fails=0 passes=0
facts='{"uname":"6.1.0-56-amd64","sysname":"Linux","os":{"id":"debian","pretty":"Debian GNU/Linux 12 (bookworm)","version_id":"12","debian_version":"12.11"},"mem_total":210376,"mem_avail":173404,"hostname":"xga-pv","domain":"lab.example","guest_type":"PV","pv_net":"1","pv_block":"1","vifs":{"eth0":"0"},"fs":[{"mount":"/","type":"ext4","source":"/dev/xvda1","total":1073741824,"avail":536870912}],"addr":[
 {"ifindex":1,"ifname":"lo","link_type":"loopback","address":"00:00:00:00:00:00","addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8},{"family":"inet6","local":"::1","prefixlen":128}]},
 {"ifindex":2,"ifname":"eth0","link_type":"ether","address":"00:16:3e:5e:00:01","addr_info":[{"family":"inet","local":"192.168.77.2","prefixlen":24},{"family":"inet","local":"10.0.0.9","prefixlen":8},{"family":"inet6","local":"fd00::1","prefixlen":64,"tentative":true},{"family":"inet6","local":"fe80::216:3eff:fe5e:1","prefixlen":64}]}]}'
std='{"data":"","data/os_distro":"debian","data/os_name":"Debian GNU/Linux 12 (bookworm)","data/os_majorver":"12","data/os_minorver":"11",
 "data/os_uname":"6.1.0-56-amd64","data/host_name_dns":"xga-pv","data/domain":"lab.example","attr/xen-guest-agent/host-name":"xga-pv.lab.example","data/meminfo_total":"210376","data/meminfo_free":"173000","data/updated":"Sat Nov 21 08:51:29 2026",
 "data/volumes/0/name":"/dev/xvda1","data/volumes/0/filesystem":"ext4","data/volumes/0/size":"1073741824","data/volumes/0/free":"530000000","data/volumes/0/mount_points/0":"/",
 "attr":"","attr/PVAddons":"","attr/PVAddons/Installed":"1","attr/PVAddons/MajorVersion":"1","attr/PVAddons/MinorVersion":"0",
 "attr/PVAddons/MicroVersion":"0","attr/PVAddons/BuildVersion":"0","attr/vif":"","attr/vif/0":"","attr/vif/0/name":"eth0",
 "attr/vif/0/mac":"","attr/vif/0/mac/0":"00:16:3e:5e:00:01","attr/vif/0/ipv4":"","attr/vif/0/ipv4/0":"192.168.77.2",
 "attr/vif/0/ipv4/1":"10.0.0.9","attr/vif/0/ipv6":"","attr/vif/0/ipv6/0":"fe80::216:3eff:fe5e:1",
 "control/shutdown":"","control/feature-poweroff":"1"}'
rfc='{"data":"","data/xen-guest-agent/schema":"1.0.0","data/xen-guest-agent/version":"1.0.0","data/os/name":"Debian GNU/Linux 12 (bookworm)",
 "data/os/distro":"debian","data/os/version":"12.11","data/os/class":"unix","data/os/unix/kernel-name":"Linux",
 "data/os/unix/kernel-version":"6.1.0-56-amd64","data/os/host-name":"xga-pv","data/os/domain":"lab.example",
 "data/virtualization/mode":"pv","data/virtualization/pv-drivers/net":"1","data/virtualization/pv-drivers/block":"1","data/memory/total-kib":"210376","data/memory/available-kib":"173000",
 "data/fs/0/mount-point":"/","data/fs/0/type":"ext4","data/fs/0/device":"/dev/xvda1","data/fs/0/total-kib":"1048576","data/fs/0/used-kib":"500000","data/fs/0/available-kib":"520000",
 "data/net/2/name":"eth0","data/net/2/mac":"00:16:3e:5e:00:01","data/net/2/kind":"vif","data/net/2/vif":"0",
 "data/net/2/ipv4/192_168_77_2":"192.168.77.2/24","data/net/2/ipv4/10_0_0_9":"10.0.0.9/8",
 "data/net/2/ipv6/fe80__216_3eff_fe5e_1":"fe80::216:3eff:fe5e:1/64","data/updated":"x","attr":""}'

problems() { # problems SCHEMA TREE [CAP] [BALLOON]
  jq -L "$HERE" -r --argjson facts "$facts" --arg ver 1.0.0 --argjson cap "${3:-32}" --arg balloon "${4:-absent}" \
    -f "$HERE/$1.jq" <<<"$2"
}
# expect NAME SCHEMA JQ-EDIT REGEX [CAP] [BALLOON]: editing the right tree
# with JQ-EDIT gives a problem matching REGEX ("" = no problem at all)
expect() {
  local name=$1 schema=$2 edit=$3 re=$4 tree out
  if [ "$schema" = std ]; then tree=$std; else tree=$rfc; fi
  tree=$(jq -c "$edit" <<<"$tree") || { echo "FAIL $name: bad edit"; fails=$((fails+1)); return; }
  out=$(problems "$schema" "$tree" "${5:-32}" "${6:-absent}" 2>&1)
  if { [ -z "$re" ] && [ -z "$out" ]; } || { [ -n "$re" ] && grep -qE -- "$re" <<<"$out"; }; then
    echo "ok   $name"; passes=$((passes+1))
  else
    echo "FAIL $name: expected ${re:-no problem}, got:"; sed 's/^/       /' <<<"$out"; fails=$((fails+1))
  fi
}
expect "std: the right tree"                std . ''
expect "std: wrong os_name"                 std '."data/os_name" = "Debian"' 'node data/os_name: expected'
expect "std: missing os_minorver"           std 'del(."data/os_minorver")' 'os_minorver.*absent'
expect "std: missing data/updated"          std 'del(."data/updated")' 'data/updated'
expect "std: meminfo_free far off"          std '."data/meminfo_free" = "1000"' 'meminfo_free'
expect "std: BuildVersion not an integer"   std '."attr/PVAddons/BuildVersion" = "proto-0.3"' 'BuildVersion'
expect "std: non-integer slot"              std '."attr/vif/0/ipv4/a" = "10.0.0.9" | del(."attr/vif/0/ipv4/1")' 'not a decimal integer'
expect "std: duplicate address"             std '."attr/vif/0/ipv4/2" = "10.0.0.9"' 'published in 2 slots'
expect "std: missing address"               std 'del(."attr/vif/0/ipv4/1")' '10.0.0.9 missing'
expect "std: address the guest lacks"       std '."attr/vif/0/ipv4/2" = "10.9.9.9"' '10.9.9.9 published but'
expect "std: tentative address published"   std '."attr/vif/0/ipv6/1" = "fd00::1"' 'fd00::1 published but'
expect "std: primary not in slot 0"         std '."attr/vif/0/ipv4/0" = "10.0.0.9" | ."attr/vif/0/ipv4/1" = "192.168.77.2"' 'primary address'
expect "std: stale vif"                     std '."attr/vif/1" = "" | ."attr/vif/1/ipv4" = ""' 'stale empty node attr/vif/1/ipv4'
expect "std: stale address of a gone vif"   std '."attr/vif/1/ipv4/0" = "1.2.3.4"' 'unexpected node attr/vif/1/ipv4/0'
expect "std: unexpected node"               std '."data/foo" = "1"' 'unexpected node data/foo'
expect "std: feature-balloon under libxl"   std '."control/feature-balloon" = "1"' 'feature-balloon: expected absent'
expect "std: feature-balloon pre-created"   std '."control/feature-balloon" = "1"' '' 32 1
expect "std: feature-balloon not written"   std '."control/feature-balloon" = ""' 'feature-balloon: expected "1"' 32 1
expect "std: volume missing"                std 'with_entries(select(.key | startswith("data/volumes") | not))' 'filesystem /: expected in data/volumes'
expect "std: volume in another slot"        std 'with_entries(.key |= sub("^data/volumes/0/"; "data/volumes/3/"))' ''
expect "std: volume size wrong"             std '."data/volumes/0/size" = "1073741823"' 'node data/volumes/0/size: expected "1073741824"'
expect "std: volume free far off"           std '."data/volumes/0/free" = "1"' 'data/volumes/0/free: expected about'
expect "std: volume of another mount"       std '."data/volumes/1/mount_points/0" = "/boot" | ."data/volumes/1/size" = "1"' 'unexpected filesystem "/boot"'
expect "std: volume with an odd leaf"       std '."data/volumes/0/extra" = "1"' 'unexpected node data/volumes/0/extra'
expect "std: cap 1, one published"          std 'del(."attr/vif/0/ipv4/1")' '' 1
expect "std: cap 1, two published"          std . 'expected 1 addresses' 1
expect "std: wrong host name"               std '."data/host_name_dns" = "xga-pv.lab.example"' 'node data/host_name_dns: expected "xga-pv"'
expect "std: domain missing"                std 'del(."data/domain")' 'data/domain.*absent'
expect "std: host name signal stale"        std '."attr/xen-guest-agent/host-name" = "old"' 'attr/xen-guest-agent/host-name: expected "xga-pv.lab.example"'
expect "std: mode written (rfc only)"       std '."data/virtualization/mode" = "pv"' 'unexpected node data/virtualization/mode'
expect "rfc: the right tree"                rfc . ''
expect "rfc: wrong host name"               rfc '."data/os/host-name" = "other"' 'node data/os/host-name: expected "xga-pv"'
expect "rfc: a domain the guest lacks"      rfc '."data/os/domain" = "x.example"' 'node data/os/domain: expected "lab.example"'
expect "rfc: fs device wrong"              rfc '."data/fs/0/device" = "/dev/root"' 'node data/fs/0/device: expected "/dev/xvda1"'
expect "rfc: fs total in bytes"             rfc '."data/fs/0/total-kib" = "1073741824"' 'total-kib: expected "1048576"'
expect "rfc: fs used not an integer"        rfc '."data/fs/0/used-kib" = "x"' 'used-kib: expected an integer'
expect "rfc: fs missing"                    rfc 'with_entries(select(.key | startswith("data/fs") | not))' 'filesystem /: expected in data/fs'
expect "rfc: wrong mode"                    rfc '."data/virtualization/mode" = "hvm"' 'virtualization/mode: expected "pv"'
expect "rfc: PV block driver missing"       rfc 'del(."data/virtualization/pv-drivers/block")' 'pv-drivers/block.*absent'
expect "rfc: missing schema version"        rfc 'del(."data/xen-guest-agent/schema")' 'schema.*absent'
expect "rfc: address with a value"          rfc '."data/net/2/ipv4/10_0_0_9" = ""' 'stale empty node|expected "10.0.0.9/8"'
expect "rfc: not leaves only"               rfc '."data/net/2" = "eth0"' 'has children'
expect "rfc: std nodes written"             rfc '."attr/vif/0/ipv4/0" = "192.168.77.2"' 'rfc writes below data/ only'
expect "rfc: gone address left"             rfc '."data/net/2/ipv4/10_9_9_9" = "10.9.9.9/8"' 'unexpected node data/net/2/ipv4/10_9_9_9'
# A short host name without a domain, a kernel that tells no mode.
full_facts=$facts
facts=$(jq -c '.hostname = "xga-pvh" | .domain = "" | .guest_type = ""' <<<"$full_facts")
std=$(jq -c '."data/host_name_dns" = "xga-pvh" | del(."data/domain") | ."attr/xen-guest-agent/host-name" = "xga-pvh"' <<<"$std")
rfc=$(jq -c '."data/os/host-name" = "xga-pvh" | del(."data/os/domain") | with_entries(select(.key | startswith("data/virtualization") | not))' <<<"$rfc")
expect "std: short name, no domain"         std . ''
expect "std: a domain the guest lacks"      std '."data/domain" = "lab.example"' 'unexpected node data/domain'
expect "rfc: short name, no mode"           rfc . ''
expect "rfc: a mode the kernel did not tell" rfc '."data/virtualization/mode" = "pvh"' 'unexpected node data/virtualization/mode'
# A fully qualified kernel host name: split at its first dot.
facts=$(jq -c '.hostname = "vm-42.lab.example" | .domain = ""' <<<"$full_facts")
expect "std: FQDN split"                    std '."data/host_name_dns" = "vm-42" | ."data/domain" = "lab.example" | ."attr/xen-guest-agent/host-name" = "vm-42.lab.example"' ''
facts=$full_facts
view=$(jq -c -f "$HERE/xapi.jq" <<<"$std")
if [ "$(jq -r '.networks["0/ip"] + " " + .PV_drivers_version.micro' <<<"$view")" = "192.168.77.2 0" ]; then echo "ok   xapi: 0/ip, micro"; passes=$((passes+1))
else echo "FAIL xapi: $view"; fails=$((fails+1)); fi
view=$(jq -c 'del(."attr/PVAddons/MicroVersion") | ."attr/vif/0/ipv6/x" = "fe80::1"' <<<"$std" | jq -c -f "$HERE/xapi.jq")
if [ "$(jq -r '[.networks | keys[] | select(startswith("0/"))] | length | tostring + " " + (input.PV_drivers_version.micro)' <<<"$view $view")" = "0 -1" ]; then
  echo "ok   xapi: a non-integer slot drops the VIF's addresses, micro -1 when missing"; passes=$((passes+1))
else echo "FAIL xapi: $view"; fails=$((fails+1)); fi
view=$(jq -c -f "$HERE/xapi.jq" <<<"$std")
if [ "$(jq -r '.netbios_name.host_name' <<<"$view")" = xga-pvh ] &&
   [ "$(jq -c '."data/domain" = "lab.example"' <<<"$std" | jq -r -f "$HERE/xapi.jq" | jq -r '.netbios_name.host_name')" = xga-pvh.lab.example ]; then
  echo "ok   xapi: host_name, with the domain when there is one"; passes=$((passes+1))
else echo "FAIL xapi host_name: $view"; fails=$((fails+1)); fi
echo "checks self-test: $passes passed, $fails failed"
exit $((fails > 0))
