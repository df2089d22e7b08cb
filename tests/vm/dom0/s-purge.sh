# purge (ends every systemd boot): `apt purge --autoremove` the package, as
# an administrator removes it: the service is gone, its dependencies go
# with it, and the guest's file system is entry for entry what it was
# before the install (xga fs-snapshot / fs-diff).
. /xenvm/sd-lib.sh
pkg=${XGA_DEB%%_*}
files=$(gx "dpkg-query -L $pkg 2>/dev/null")
check "the package is installed before the purge" test -n "$files"
out=$(gx "DEBIAN_FRONTEND=noninteractive apt-get purge -y --autoremove $pkg 2>&1" 600); rc=$?
echo "$out"
check_eq "apt-get purge --autoremove $pkg exits 0" 0 "$rc"
check_eq "the unit is gone (LoadState)" not-found "$(unit_prop LoadState)"
check "no agent process" gx '! grep -qx xen-guest-agent /proc/[0-9]*/comm'
check "no unit file, no enablement link" gx "[ -z \"\$(find /etc/systemd /lib/systemd /usr/lib/systemd -name '$UNIT*')\" ]"
check_eq "dpkg knows nothing of $pkg" "" "$(gx "dpkg-query -W -f '\${db:Status-Abbrev}' $pkg 2>/dev/null")"
left=$(gx "for f in $(tr '\n' ' ' <<<"$files"); do [ -e \"\$f\" ] && [ ! -d \"\$f\" ] && echo \"\$f\"; done")
check_eq "none of the package's files remains" "" "$left"
check "the file system is entry for entry as before the install (- before, + after)" gx "xga fs-diff /var/lib/xenvm/fs-before"
check "no libxenstore left (autoremove)" gx '! ldconfig -p | grep libxenstore'
