# soak (issue 14's real-Xen part), in the deb12 boot after the deb12
# scenario: XGA_SOAK_CYCLES (10) cycles of `xl save` + `xl restore`, then as
# many of `xl network-attach` + `network-detach`, with address churn in the
# guest between them (this cycle's addresses replace the last one's, just
# before the save: a resume in the middle of changes). After each step the
# whole std tree is checked against the guest's facts; the agent process
# lives through it all, with no restart and no warning in its journal.
. /xenvm/sd-lib.sh
n=${XGA_SOAK_CYCLES:-10}
check "the std tree is right before the soak" wait_schema std 120 || return 0
pid0=$(gx "xga pid")
t_soak=$(now)
# churn I: add this cycle's addresses (2 IPv4, 1 IPv6) on DEV, drop the last cycle's
churn() {
  local i=$1 dev=$2 net=$3 j=$(($1 - 1))
  echo "ip addr add $net.$i.1/24 dev $dev && ip addr add $net.$i.2/24 dev $dev &&" \
    "ip -6 addr add fd00:${net##*.}:$i::1/64 dev $dev nodad &&" \
    "{ [ $j = 0 ] || { ip addr del $net.$j.1/24 dev $dev; ip addr del $net.$j.2/24 dev $dev;" \
    "ip -6 addr del fd00:${net##*.}:$j::1/64 dev $dev; }; }"
}
t0=$(now)
for ((i = 1; i <= n; i++)); do
  # the facts right after the churn: the guest changes nothing while saved
  gx_facts "$(churn "$i" eth0 10.30)" >/dev/null
  check "save/restore $i: xl save + xl restore -p" save_restore || break
  check "save/restore $i (domid $DOMID): the whole tree, with the churn before the save" wait_schema std 120 fixed
done
bench phase=soak-save-restore cycles=$n seconds=$(elapsed "$t0")
check_eq "the same agent process through $n save/restore cycles" "$pid0" "$(gx "xga pid")"

t0=$(now)
for ((i = 1; i <= n; i++)); do
  mac=00:16:3e:5e:01:$(printf %02x "$i")
  if ! xl network-attach domU bridge=xenbr0 mac=$mac; then check_eq "attach $i: xl network-attach" ok failed; break; fi
  id=$(xl network-list domU | awk -v m="$mac" '$3 == m {print $1}')
  # the guest's interface of VIF $id: the one whose device is device/vif/$id
  out=$(gx_facts "$(guest_until 60 "grep -q '^device/vif/$id\$' /sys/class/net/*/device/nodename 2>/dev/null")
            dev=\$(grep -l '^device/vif/$id\$' /sys/class/net/*/device/nodename 2>/dev/null)
            dev=\${dev%/device/nodename}; dev=\${dev##*/}
            ip link set \$dev up && ip addr add 192.168.78.2/24 dev \$dev && $(churn "$i" eth0 10.40) && echo \$dev" 120)
  check "attach $i (vif $id, $(tail -n1 <<<"$out")): the whole tree, 2 VIFs" wait_schema std 120 fresh
  if ! xl network-detach domU "$id"; then check_eq "detach $i: xl network-detach" ok failed; break; fi
  gx_facts "$(guest_until 60 "! grep -q '^device/vif/$id\$' /sys/class/net/*/device/nodename 2>/dev/null")" 120 >/dev/null
  check "detach $i: attr/vif/$id gone, the whole tree" wait_schema std 120 fresh
done
bench phase=soak-network cycles=$n seconds=$(elapsed "$t0")
check_eq "the same agent process through $n attach/detach cycles" "$pid0" "$(gx "xga pid")"
check "no restart, no failure" unit_running
check_journal "the unit's journal of this boot: no warning or error but feature-balloon" -b
s=$(gx "xga sample"); bench phase=after-soak seconds=$(elapsed "$t_soak") $s
