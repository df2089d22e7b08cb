# domU side of the systemd guests (bash, run by xenvm-exec.service at every
# boot, after local-fs.target; cwd /xenvm, /xenvm/bin first on PATH): the
# network configuration of a booted system (eth0's address), nothing else.
# dom0 then installs the package and drives the rest through guest_exec.
set -u
echo "guest: $(cat /sys/hypervisor/type) $(cat /sys/hypervisor/guest_type 2>/dev/null) guest, kernel $(uname -r)," \
  "$(. /etc/os-release; echo "$PRETTY_NAME") ($(cat /etc/debian_version)), init $(readlink /proc/1/exe)"
ip link set lo up
# hot-plugged VIFs get their link-local address without DAD: dom0 reads the
# guest's facts right after configuring one (the agent publishes no
# tentative address, and the facts would lag behind it)
echo 0 > /proc/sys/net/ipv6/conf/default/accept_dad
if [ -e /sys/class/net/eth0 ]; then
  ip link set eth0 up && ip addr add 192.168.77.2/24 dev eth0 || exit 1
fi
ip -br addr
