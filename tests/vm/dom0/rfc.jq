# What the "rfc" schema must show in xenstore, given what the guest really
# has (docs/xenstore-schema.md, "Schema rfc"). Input and arguments as std.jq
# ($cap unused: rfc keys addresses by value). Output: one line per problem.
include "common";

. as $t
| ($facts.os | if (.debian_version | test("^[0-9]+(\\.[0-9]+)*$")) then .debian_version else .version_id end) as $osver
| [ $facts.addr[] | select(.link_type != "loopback") ] as $links
| host_name($facts) as $hn
| ({"PV": "pv", "PVH": "pvh", "HVM": "hvm"}[$facts.guest_type // ""]) as $mode
| ({
    "data/xen-guest-agent/schema": "1.0.0",
    "data/xen-guest-agent/version": $ver,
    "data/os/name": $facts.os.pretty,
    "data/os/distro": $facts.os.id,
    "data/os/version": $osver,
    "data/os/class": "unix",
    "data/os/unix/kernel-name": $facts.sysname,
    "data/os/unix/kernel-version": $facts.uname,
    "data/memory/total-kib": ($facts.mem_total | tostring)
  } + node("data/os/host-name"; $hn.host) + node("data/os/domain"; $hn.domain)
    + (if $mode then {"data/virtualization/mode": $mode,
                      "data/virtualization/pv-drivers/net": ($facts.pv_net // "0"),
                      "data/virtualization/pv-drivers/block": ($facts.pv_block // "0")} else {} end)
    + ([ $links[] | . as $l | "data/net/\(.ifindex)" as $p
         | ($facts.vifs[$l.ifname]) as $vif
         | {("\($p)/name"): .ifname, ("\($p)/mac"): .address}
           + (if $vif then {("\($p)/kind"): "vif", ("\($p)/vif"): $vif} else {} end)
           + ([ good_addrs($l; "inet")[] | {("\($p)/ipv4/\(.local | gsub("\\."; "_"))"): "\(.local)/\(.prefixlen)"} ] | add // {})
           + ([ good_addrs($l; "inet6")[] | {("\($p)/ipv6/\(.local | gsub(":"; "_"))"): "\(.local)/\(.prefixlen)"} ] | add // {})
       ] | add // {})
  ) as $exact
| leaves($t) as $leaves
| parents($t) as $parents
| [
    ($exact | to_entries[] | select($t[.key] != .value)
      | "node \(.key): expected \(.value | @json), seen \($t[.key] // "(absent)" | @json)"),
    ($links[] | "data/net/\(.ifindex)/kind" as $k | select($facts.vifs[.ifname] == null)
      | select(($t[$k] // "") | test("^(bridge|sriov-vf|other)$") | not)
      | "node \($k): expected bridge, sriov-vf or other, seen \($t[$k] // "(absent)" | @json)"),
    (if ($t["data/memory/available-kib"] // "" | test("^[0-9]+$") | not)
     then "node data/memory/available-kib: expected an integer near \($facts.mem_avail), seen \($t["data/memory/available-kib"] // "(absent)" | @json)"
     elif (($t["data/memory/available-kib"] | tonumber) - $facts.mem_avail | fabs) > $facts.mem_avail * 0.25
     then "node data/memory/available-kib: expected about \($facts.mem_avail) (MemAvailable +-25%), seen \($t["data/memory/available-kib"])"
     else empty end),
    fs_problems($t; $facts; "data/fs";
      {mount: "mount-point", source: "device", type: "type", total: "total-kib", avail: "available-kib"}; 1024),
    ($t | to_entries[] | select(.key | test("^data/fs/[0-9]+/used-kib$")) | select(.value | test("^[0-9]+$") | not)
      | "node \(.key): expected an integer, seen \(.value | @json)"),
    (if ($t["data/updated"] // "") == "" then "node data/updated: expected a timestamp, seen \($t["data/updated"] // "(absent)" | @json)" else empty end),
    # leaves only: a node with children has an empty value
    ($t | to_entries[] | select(.key | test("^data/")) | select($parents[.key]) | select(.value != "")
      | "node \(.key) has children but the value \(.value | @json) (rfc: leaves only)"),
    # rfc writes nothing under attr/ (and leaves std's data/os_* alone)
    ($leaves[] | select(test("^(attr|xenserver)/")) | "unexpected node \(.) = \($t[.] | @json) (rfc writes below data/ only)"),
    ($leaves[] | select(test("^data/"))
      | select(. as $k | $exact | has($k) | not)
      | select(. != "data/memory/available-kib" and . != "data/updated")
      | select(test("^data/fs/(0|[1-9][0-9]*)/(mount-point|type|device|total-kib|used-kib|available-kib)$") | not)
      | select(test("^data/net/[0-9]+/kind$") | not)
      | if $t[.] == "" then "stale empty node \(.)" else "unexpected node \(.) = \($t[.] | @json)" end)
  ]
| .[]
