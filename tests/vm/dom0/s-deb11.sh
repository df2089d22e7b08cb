# deb11: a Debian 11 (bullseye, glibc 2.31) systemd guest. With the portable
# package (XGA_VM_DEB_PORTABLE, no dependency at all): everything the
# deb12 scenario checks. With the default package (its binary needs glibc
# 2.34): apt refuses it for its libc6 dependency, and forced in with dpkg
# the service fails at once with "version `GLIBC_2.34' not found" (the
# problem the portable package solves); nothing is published.
if [ "$XGA_PORTABLE" = 1 ]; then
  . /xenvm/s-sd.sh
  return 0
fi
. /xenvm/sd-lib.sh
facts || return 0
note "guest: $(jq -r '.os.pretty' <<<"$FACTS") ($(jq -r .os.debian_version <<<"$FACTS")), glibc $(gx 'ldd --version | head -n1 | grep -o "[0-9.]*$"'), the default package"
gx "xga fs-snapshot /var/lib/xenvm/fs-before" >/dev/null
out=$(gx "cd /xenvm/pkg && DEBIAN_FRONTEND=noninteractive apt-get install -y ./$XGA_DEB 2>&1" 600); rc=$?
echo "$out"
check "apt-get install refuses the default package" test "$rc" != 0
check "because of its libc6 (>= 2.34) dependency" grep -q 'Depends: libc6 (>= 2.34)' <<<"$out"
out=$(gx "cd /xenvm/pkg && dpkg -i --force-depends ./$XGA_DEB 2>&1" 600); echo "$out"
check_eq "dpkg -i --force-depends: enabled by the maintainer scripts" enabled "$(gx "systemctl is-enabled $UNIT")"
out=$(gx "/usr/sbin/xen-guest-agent --version 2>&1"); rc=$?; echo "$out"
check "the binary fails: version \`GLIBC_2.34' not found" test "$rc" != 0 -a -n "$(grep -F "GLIBC_2.34' not found" <<<"$out")"
check "the service fails with it (journal)" gx "$(guest_until 60 "journalctl --no-pager -q -u $UNIT | grep -qF \"GLIBC_2.34' not found\"")" 120
gx "systemctl status --no-pager -n 5 $UNIT"
check "nothing published in xenstore" xs_absent "$XS_HOME/data/updated"
note "the portable package (issue 10, packaging/deb/build.sh --static) runs here: XGA_VM_DEB_PORTABLE=path tests/vm/run.sh deb11"
