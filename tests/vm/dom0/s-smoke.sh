# smoke: the agent binary runs in the guest (with the stdout publisher, so
# that this works whatever the xenstore publisher does).
facts
out=$(guest_exec "xen-guest-agent --publisher stdout --oneshot --stderr" 60); rc=$?
echo "$out" | head -n 40
check_eq "xen-guest-agent --publisher stdout --oneshot exits 0" 0 "$rc"
check "its output shows the kernel release $(jq -r .uname <<<"$FACTS")" grep -qF "$(jq -r .uname <<<"$FACTS")" <<<"$out"
check "its output shows eth0's address 192.168.77.2" grep -qF 192.168.77.2 <<<"$out"
