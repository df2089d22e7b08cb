# What the "std" schema must show in xenstore, given what the guest really
# has (docs/xenstore-schema.md). Input: the domain's nodes below data/,
# attr/, control/ and xenserver/ as {relpath: value}. Arguments:
#   $facts    `xga facts` from the guest
#   $ver      the agent's version (x.y.z)
#   $cap      --max-addresses
#   $balloon  "absent" (libxl: control/ read-only) or "1" (pre-created writable)
# Output: one line per problem (nothing when everything is right).
include "common";

. as $t
| ($facts.os | if (.debian_version | test("^[0-9]+(\\.[0-9]+)*$")) then .debian_version else .version_id end | split(".")) as $osv
| ($ver | split(".")) as $v
| host_name($facts) as $hn
| ({
    "data/os_distro": $facts.os.id,
    "data/os_name": $facts.os.pretty,
    "data/os_majorver": $osv[0],
    "data/os_minorver": ($osv[1] // "0"),
    "data/os_uname": $facts.uname,
    "data/meminfo_total": ($facts.mem_total | tostring),
    "attr/PVAddons/Installed": "1",
    "attr/PVAddons/MajorVersion": $v[0],
    "attr/PVAddons/MinorVersion": $v[1],
    "attr/PVAddons/MicroVersion": $v[2]
  } + node("data/host_name_dns"; $hn.host) + node("data/domain"; $hn.domain)
    + node("attr/xen-guest-agent/host-name"; if $hn.domain == "" then $hn.host else "\($hn.host).\($hn.domain)" end)
    + ([ $facts.vifs | to_entries[] | .key as $ifn | .value as $id
         | ($facts.addr[] | select(.ifname == $ifn)) as $l
         | {("attr/vif/\($id)/name"): $ifn, ("attr/vif/\($id)/mac/0"): $l.address} ] | add // {})
  ) as $exact
| leaves($t) as $leaves
| [
    # exact nodes
    ($exact | to_entries[] | select($t[.key] != .value)
      | "node \(.key): expected \(.value | @json), seen \($t[.key] // "(absent)" | @json)"),
    # memory: MemAvailable moves; the agent samples it on its own period
    (if ($t["data/meminfo_free"] // "" | test("^[0-9]+$") | not)
     then "node data/meminfo_free: expected an integer near \($facts.mem_avail), seen \($t["data/meminfo_free"] // "(absent)" | @json)"
     elif (($t["data/meminfo_free"] | tonumber) - $facts.mem_avail | fabs) > $facts.mem_avail * 0.25
     then "node data/meminfo_free: expected about \($facts.mem_avail) (MemAvailable +-25%), seen \($t["data/meminfo_free"])"
     else empty end),
    (if ($t["data/updated"] // "") == "" then "node data/updated: expected a timestamp, seen \($t["data/updated"] // "(absent)" | @json)" else empty end),
    (if ($t["attr/PVAddons/BuildVersion"] // "" | test("^[0-9]+$") | not)
     then "node attr/PVAddons/BuildVersion: expected an integer, seen \($t["attr/PVAddons/BuildVersion"] // "(absent)" | @json)" else empty end),
    # addresses, per VIF and family
    ($facts.vifs | to_entries[] | .key as $ifn | .value as $id
      | ($facts.addr[] | select(.ifname == $ifn)) as $l
      | ("ipv4", "ipv6") as $fam
      | [ good_addrs($l; if $fam == "ipv4" then "inet" else "inet6" end)[] | .local ] as $want
      | slot_problems($t; "attr/vif/\($id)/\($fam)"; $want; $cap; $fam == "ipv4")),
    # filesystems
    fs_problems($t; $facts; "data/volumes";
      {mount: "mount_points/0", source: "name", type: "filesystem", total: "size", avail: "free"}; 1),
    # feature-balloon
    (if $balloon == "absent" then
       (if $t | has("control/feature-balloon") then "node control/feature-balloon: expected absent (libxl leaves control/ read-only), seen \($t["control/feature-balloon"] | @json)" else empty end)
     else
       (if $t["control/feature-balloon"] != $balloon then "node control/feature-balloon: expected \($balloon | @json), seen \($t["control/feature-balloon"] // "(absent)" | @json)" else empty end)
     end),
    # anything else the agent left: unexpected or stale nodes
    ($leaves[] | select(test("^(data|attr|xenserver)/"))
      | select(. as $k | $exact | has($k) | not)
      | select(. != "data/meminfo_free" and . != "data/updated" and . != "attr/PVAddons/BuildVersion")
      | select(test("^data/volumes/(0|[1-9][0-9]*)/(name|filesystem|size|free|mount_points/0)$") | not)
      | select(test("^attr/vif/[^/]+/ipv[46]/[^/]+$") as $slot
               | ($slot and (split("/")[2] as $id | $facts.vifs | to_entries | any(.value == $id))) | not)
      | if $t[.] == "" then "stale empty node \(.)" else "unexpected node \(.) = \($t[.] | @json)" end)
  ]
| .[]
