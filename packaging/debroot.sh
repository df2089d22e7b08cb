# Sourced by packaging/test.sh and tests/portable/run.sh: a clean, minimal
# Debian root for a test, made once by debootstrap and kept as a tarball.
#
#   debian_root SUITE INCLUDE CACHE DEST
#
# unpacks a minbase root of SUITE (with the packages of INCLUDE, comma-
# separated, or none) into the existing directory DEST, making the tarball
# in CACHE first when it is not there. The mirror is the first Debian
# mirror in /etc/apt/sources.list*, else deb.debian.org. Needs debootstrap
# and root; returns non-zero, having said why, when debootstrap fails.

debian_mirror() {
  local m
  m=$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\).*/\1/p; s/^deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\{0,1\}\(http[^[:space:]]*\).*/\2/p' \
    /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null |
    grep -m1 -E '/debian/?$' || true)
  echo "${m:-http://deb.debian.org/debian}"
}

debian_root() {
  local suite=$1 include=$2 cache=$3 dest=$4 mirror tarball boot t
  tarball=$cache/$suite-minbase${include:+-${include//,/-}}.tar.gz
  mkdir -p "$cache"
  if [ ! -f "$tarball" ]; then
    mirror=$(debian_mirror)
    boot=$(mktemp -d "$cache/boot.XXXXXX")
    echo "=== debootstrap $suite from $mirror (cached in $tarball)"
    t=$SECONDS
    if ! debootstrap --variant=minbase ${include:+--include="$include"} "$suite" "$boot" "$mirror" \
        > "$boot.log" 2>&1; then
      tail -n 20 "$boot.log"
      echo "debootstrap of $suite failed (log above)" >&2
      rm -rf "$boot" "$boot.log"
      return 1
    fi
    rm -rf "$boot/var/cache/apt/archives/"*.deb
    tar -C "$boot" -czf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
    rm -rf "$boot" "$boot.log"
    echo "debootstrap took $((SECONDS - t)) s"
  fi
  tar -C "$dest" -xzf "$tarball"
  # The tarball's "." is debootstrap's mktemp directory (0700): a root's /
  # must let the services of other users (systemd-network) through.
  chmod 0755 "$dest"
}
