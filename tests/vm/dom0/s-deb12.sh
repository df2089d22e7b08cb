# deb12: the default package in a Debian 12 systemd guest (PV): s-sd.sh.
. /xenvm/s-sd.sh
