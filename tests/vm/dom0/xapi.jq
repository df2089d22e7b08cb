# What XAPI would show (VM_guest_metrics) from the std nodes, the way
# ocaml/xapi/xapi_guest_agent.ml derives it. Input: {relpath: value}.
# Output: {os_version, PV_drivers_version, networks, netbios_name, other}.
. as $t
| def slots($p): [ $t | keys[] | select(startswith($p + "/")) | ltrimstr($p + "/") | select(contains("/") | not) ];
  def isint: test("^[0-9]+$");
  [ $t | keys[] | capture("^attr/vif/(?<id>[^/]+)/").id ] | unique as $vifs
| {
    os_version: ({name: $t["data/os_name"], uname: $t["data/os_uname"], distro: $t["data/os_distro"],
                  major: $t["data/os_majorver"], minor: $t["data/os_minorver"]}
                 | with_entries(select(.value != null))),
    PV_drivers_version: ({major: $t["attr/PVAddons/MajorVersion"], minor: $t["attr/PVAddons/MinorVersion"],
                          micro: ($t["attr/PVAddons/MicroVersion"] // "-1"), build: $t["attr/PVAddons/BuildVersion"]}
                         | with_entries(select(.value != null))),
    networks: ([ $vifs[] as $id
                 | slots("attr/vif/\($id)/ipv4") as $v4 | slots("attr/vif/\($id)/ipv6") as $v6
                 # one non-integer slot drops every address of the VIF
                 | select(($v4 + $v6) | all(isint))
                 | ($v4 | map(tonumber) | sort) as $v4n | ($v6 | map(tonumber) | sort) as $v6n
                 | (if ($v4n | length) > 0 then {("\($id)/ip"): $t["attr/vif/\($id)/ipv4/\($v4n[0])"]} else {} end)
                   + ([ $v4n[] | {("\($id)/ipv4/\(.)"): $t["attr/vif/\($id)/ipv4/\(.)"]} ] | add // {})
                   + ([ $v6n[] | {("\($id)/ipv6/\(.)"): $t["attr/vif/\($id)/ipv6/\(.)"]} ] | add // {})
               ] | add // {}),
    # host_name: data/host_name_dns, "." + data/domain when it exists
    netbios_name: (if $t["data/host_name_dns"] then
                     {host_name: ($t["data/host_name_dns"] + (if $t["data/domain"] then "." + $t["data/domain"] else "" end))}
                   else {} end),
    other: ([ $t | to_entries[] | select(.key | test("^control/[^/]+$")) | {(.key | ltrimstr("control/")): .value} ] | add // {})
  }
