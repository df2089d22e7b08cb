# Helpers shared by std.jq, rfc.jq and xapi.jq (jq -L /xenvm).

# The nodes of tree $t ({relpath: value}) that have children.
def parents($t):
  [ $t | keys[] | split("/") | . as $p | range(1; length) | $p[0:.] | join("/") ]
  | map({(.): true}) | add // {};

# The nodes of $t without children.
def leaves($t): parents($t) as $ps | [ $t | keys[] | select($ps[.] | not) ];

# Problems with the address slots $prefix/<n> (std schema): slots must be
# decimal integers (else XAPI drops every address of the VIF), hold distinct
# addresses, and show what the guest has ($want, in kernel order) up to $cap;
# with $v4, the primary address (the kernel's first) holds slot 0.
def slot_problems($t; $prefix; $want; $cap; $v4):
  [ $t | to_entries[] | select(.key | startswith($prefix + "/"))
    | select(.key | ltrimstr($prefix + "/") | contains("/") | not) ] as $slots
  | ($slots | map(.value)) as $seen
  | ($slots[] | .key | ltrimstr($prefix + "/") | select(test("^(0|[1-9][0-9]*)$") | not)
      | "slot \($prefix)/\(.): not a decimal integer (XAPI then drops every address of the VIF)"),
    ($seen | group_by(.) | map(select(length > 1))[] | "\($prefix): \(.[0]) published in \(length) slots"),
    (if ($want | length) <= $cap then
       (($want - $seen)[] | "\($prefix): \(.) missing (the guest has it)"),
       (($seen - $want)[] | "\($prefix): \(.) published but the guest does not have it")
     else
       (if ($seen | unique | length) != $cap
        then "\($prefix): expected \($cap) addresses (the cap; the guest has \($want | length)), seen \($seen | unique | length)" else empty end),
       (($seen - $want)[] | "\($prefix): \(.) published but the guest does not have it")
     end),
    (if $v4 and ($want | length) > 0 and $t[$prefix + "/0"] != $want[0]
     then "node \($prefix)/0: expected the primary address \($want[0]), seen \($t[$prefix + "/0"] // "(absent)")"
     else empty end);

# The guest's reported (non-tentative, non-DAD-failed) addresses of link $l
# for family "inet" or "inet6".
def good_addrs($l; $family):
  [ $l.addr_info[] | select(.family == $family)
    | select((.tentative // false | not) and (.dadfailed // false | not)) ];

# The host name as the agent splits it ($facts.hostname, $facts.domain from
# `xga facts`): {host, domain}, domain "" when unknown. A name with dots is
# split at the first one; a short one takes the domain the guest derived.
def host_name($facts):
  ($facts.hostname // "" | ltrimstr(".") | rtrimstr(".")) as $n
  | if ($n | contains(".")) then {host: ($n | split(".")[0]), domain: ($n | split(".")[1:] | join("."))}
    else {host: $n, domain: ($facts.domain // "")} end;

# {path: value} for $path = $value when $value is not empty (the agent
# writes no empty leaf: absent means unknown).
def node($path; $value): if ($value // "") == "" then {} else {($path): $value} end;

# Problems with the filesystems under $dir/<n> (std data/volumes, rfc
# data/fs): each of $facts.fs in some slot, with its device, type and size
# exact and its available space near the guest's (it moves; the agent
# samples it on its own period), and no other mount point. $n names the
# leaves {mount, source, type, total, avail}; sizes are in units of $unit
# bytes.
def fs_problems($t; $facts; $dir; $n; $unit):
  ([ $t | to_entries[] | select(.key | startswith($dir + "/") and endswith("/" + $n.mount))
     | {key: .value, value: (.key | ltrimstr($dir + "/") | split("/")[0])} ] | from_entries) as $slot
  | ($facts.fs // []) as $want
  | ($want[] as $f | $slot[$f.mount] as $i
      | if $i == null then "filesystem \($f.mount): expected in \($dir)/<n>, absent"
        else "\($dir)/\($i)" as $d
          | ((["source", $f.source], ["type", $f.type], ["total", ($f.total / $unit | floor | tostring)])
             | "\($d)/\($n[.[0]])" as $k | .[1] as $v | select($t[$k] != $v)
             | "node \($k): expected \($v | @json), seen \($t[$k] // "(absent)" | @json)"),
            ("\($d)/\($n.avail)" as $k | ($t[$k] // "") as $v
             | if ($v | test("^[0-9]+$") | not) then "node \($k): expected an integer, seen \($v | @json)"
               elif (($v | tonumber) * $unit - $f.avail | fabs) > ([$f.total * 0.05, 67108864] | max)
               then "node \($k): expected about \($f.avail / $unit | floor) (+-5% of the size), seen \($v)"
               else empty end)
        end),
    ($slot | to_entries[] | select(.key as $m | $want | any(.mount == $m) | not)
      | "unexpected filesystem \(.key | @json) in \($dir)/\(.value)");
