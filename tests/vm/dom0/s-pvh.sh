# pvh: the std scenario again, in a PVH guest.
check_eq "the guest is PVH" PVH "$(guest_exec 'cat /sys/hypervisor/guest_type')"
. /xenvm/s-std.sh
