# domU side of every boot (bash, cwd /xenvm, /xenvm/bin on PATH): what a
# booted system has before its agent starts. dom0 then drives the rest
# through guest_exec (`xga start`, `xga facts`, ip commands...).
set -u
# syslog, where the agent logs by default (as under systemd), goes to the console
syslogd -n -O /dev/console &
for ((i = 0; i < 300; i++)); do [ -S /dev/log ] && break; sleep 0.1; done
[ -S /dev/log ] || echo "XENVM-WARN syslogd did not start"
echo "guest: $(cat /sys/hypervisor/type) $(cat /sys/hypervisor/guest_type 2>/dev/null) guest, kernel $(uname -r), $(. /etc/os-release; echo "$PRETTY_NAME") ($(cat /etc/debian_version))"
if [ -e /sys/class/net/eth0 ]; then
  ip link set eth0 up && ip addr add 192.168.77.2/24 dev eth0 || exit 1
fi
ip -br addr
echo "agent: $(xen-guest-agent --version 2>&1)"
