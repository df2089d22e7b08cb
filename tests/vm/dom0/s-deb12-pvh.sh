# deb12-pvh: the deb12 scenario in a PVH guest.
check_eq "the guest is PVH" PVH "$(guest_exec 'cat /sys/hypervisor/guest_type')"
. /xenvm/s-sd.sh
