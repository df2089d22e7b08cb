#!/bin/bash
# Build (once) everything a test boot needs, from Debian packages, into
# $XGA_VM_CACHE:
#   qemu/          QEMU 7.2 extracted from qemu-system-x86 + -common (.deb, not installed)
#   kernel/        linux-image-<abi>-amd64 extracted (.deb, not installed)
#   images/xen     the Xen 4.17 hypervisor, uncompressed ELF32 (QEMU multiboot)
#   images/vmlinux the kernel as a raw ELF (dom0 and domU)
#   images/dom0-base.cpio.gz, images/domU-base.cpio   base initramfs images
#   images/domU-initrd.cpio  the initramfs of the systemd guests (lib/disk-init)
# and, for each SUITE given (build.sh [SUITE...]), the root disk of a systemd
# guest, images/disk-SUITE.img (lib/build-disk.sh).
# Host packages it needs (Xen toolstack, busybox, cpio...) are installed with
# apt-get when missing. Idempotent: a warm cache is reused as long as the
# recipe (this script, the inits, the package versions) is unchanged.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
: "${XGA_VM_CACHE:?XGA_VM_CACHE must be set (tests/vm/run.sh sets it)}"
CACHE=$XGA_VM_CACHE
OUT=$CACHE/images
XENLIB=/usr/lib/xen-4.17
log() { echo "[vm-build] $*" >&2; }
mkdir -p "$CACHE" "$OUT"

# ---------------------------------------------------------------- packages
need=()
[ -x $XENLIB/bin/xl ]              || need+=(xen-utils-4.17)
[ -f /boot/xen-4.17-amd64.gz ]     || need+=(xen-hypervisor-4.17-amd64)
command -v xenstore-ls >/dev/null  || need+=(xenstore-utils)
[ -x /bin/busybox ]                || need+=(busybox-static)
command -v cpio >/dev/null         || need+=(cpio)
command -v depmod >/dev/null       || need+=(kmod)
command -v flock >/dev/null        || need+=(util-linux)
command -v ip >/dev/null           || need+=(iproute2)
command -v jq >/dev/null           || need+=(jq)
command -v strace >/dev/null       || need+=(strace)
command -v xzcat >/dev/null        || need+=(xz-utils)
command -v patchelf >/dev/null     || need+=(patchelf)
command -v bc >/dev/null           || need+=(bc)        # dom0: nova-client.sh
command -v openssl >/dev/null      || need+=(openssl)
# runtime libraries of the extracted qemu-system-x86 7.2
for p in libaio1 libbpf1 libcapstone4 libfdt1 libfuse3-3 libgmp10 libgnutls30 \
  libibverbs1 libjpeg62-turbo libnuma1 libpixman-1-0 libpmem1 libpng16-16 \
  librdmacm1 libsasl2-2 libseccomp2 libslirp0 liburing2 libvdeplug2 \
  libglib2.0-0 libzstd1 seabios qemu-system-data ipxe-qemu; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
apt_updated=
apt_update() { [ -n "$apt_updated" ] || { log "apt-get update"; apt-get update -qq; apt_updated=1; }; }
if [ ${#need[@]} -gt 0 ]; then
  apt_update
  log "apt-get install ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi

# kernel ABI: $XGA_VM_KVER, else the one already in the cache, else what
# linux-image-amd64 currently depends on
KVER=${XGA_VM_KVER:-$(cat "$CACHE/kernel.abi" 2>/dev/null || true)}
kernel_abi() { apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/.*Depends: linux-image-\([0-9].*-amd64\)$/\1/p' | head -n1; }
if [ -z "$KVER" ]; then
  KVER=$(kernel_abi)
  [ -n "$KVER" ] || { apt_update; KVER=$(kernel_abi); }
  [ -n "$KVER" ] || { log "cannot find the kernel ABI of linux-image-amd64"; exit 1; }
fi

# Downloads go to a scratch dir inside the cache (apt-get download writes to cwd).
fetch() { # fetch DEST PKG...: apt-get download PKG... and dpkg -x them into DEST
  local dest=$1; shift
  local tmp=$CACHE/dl.$$
  rm -rf "$tmp" "$dest.tmp"; mkdir -p "$tmp" "$dest.tmp"
  log "downloading $* (extract only)"
  dl() { (cd "$tmp" && apt-get download -qq -o APT::Sandbox::User=root "$@"); }
  dl "$@" || { apt_update; dl "$@"; }
  for d in "$tmp"/*.deb; do dpkg -x "$d" "$dest.tmp"; done
  rm -rf "$tmp" "$dest"; mv "$dest.tmp" "$dest"
}
# QEMU is extracted, not installed: on bookworm with qemu-utils from
# backports, qemu-system-common 7.2 cannot be installed (Breaks).
[ -f "$CACHE/qemu/usr/lib/x86_64-linux-gnu/qemu/accel-tcg-x86_64.so" ] ||
  fetch "$CACHE/qemu" qemu-system-x86 qemu-system-common
if [ ! -f "$CACHE/kernel/boot/vmlinuz-$KVER" ]; then
  fetch "$CACHE/kernel" "linux-image-$KVER"
  depmod -b "$CACHE/kernel" "$KVER"
  echo "$KVER" > "$CACHE/kernel.abi"
fi

# ---------------------------------------------------------- hypervisor, kernel
[ -s "$OUT/xen" ] && [ "$OUT/xen" -nt /boot/xen-4.17-amd64.gz ] || {
  zcat /boot/xen-4.17-amd64.gz > "$OUT/xen.tmp" && mv "$OUT/xen.tmp" "$OUT/xen"; }
# A raw ELF vmlinux: decompressing the xz bzImage under TCG costs ~2.5 s in
# Xen's dom0 builder and ~4.5 s in every `xl create`.
VMLINUZ=$CACHE/kernel/boot/vmlinuz-$KVER
if [ ! -s "$OUT/vmlinux" ] || [ "$VMLINUZ" -nt "$OUT/vmlinux" ]; then
  off=$(grep -abo $'\xfd7zXZ\x00' "$VMLINUZ" | head -n1 | cut -d: -f1)
  tail -c +$((off+1)) "$VMLINUZ" | xzcat 2>/dev/null > "$OUT/vmlinux.tmp" || true
  if [ "$(head -c 4 "$OUT/vmlinux.tmp" | od -An -tx1 | tr -d ' ')" = 7f454c46 ]; then
    mv "$OUT/vmlinux.tmp" "$OUT/vmlinux"
  else
    log "could not extract an ELF vmlinux, using the bzImage (slower boots)"
    rm -f "$OUT/vmlinux.tmp"; cp "$VMLINUZ" "$OUT/vmlinux"
  fi
fi

# ---------------------------------------------------------------- images
# The recipe: rebuild the initramfs images when any input changes.
for suite in "$@"; do   # the systemd guests' root disks, and the packages they serve offline
  case $suite in
    bookworm) "$HERE/build-disk.sh" bookworm "libxenstore4 libxentoolcore1" ;;
    bullseye) "$HERE/build-disk.sh" bullseye "libxenstore3.0 libxentoolcore1" ;;
    *) log "unknown suite $suite"; exit 1 ;;
  esac
done
recipe=$( { cat "$HERE/build.sh" "$HERE/dom0-init" "$HERE/domU-init" "$HERE/disk-init"
            echo "$KVER"; dpkg-query -W xen-utils-4.17 busybox-static bash iproute2 libc6 jq strace 2>/dev/null
            sha256sum "$OUT/vmlinux" | cut -c1-64; } | sha256sum | cut -c1-64)
if [ "$(cat "$OUT/recipe" 2>/dev/null)" = "$recipe" ] && [ -f "$OUT/dom0-base.cpio.gz" ] && [ -f "$OUT/domU-base.cpio" ] &&
   [ -f "$OUT/domU-initrd.cpio" ]; then
  exit 0
fi
rm -f "$OUT/recipe"

# copy_elf ROOT FILE...: binaries and the shared libraries ldd finds, at
# their /usr-merged paths (the roots have /lib, /bin... as symlinks into /usr)
usr_path() { case $1 in /lib/*|/lib64/*|/bin/*|/sbin/*) echo "/usr$1" ;; *) echo "$1" ;; esac; }
copy_elf() {
  local root=$1 f lib dst; shift
  for f in "$@"; do
    install -D -m 0755 "$(readlink -f "$f")" "$root$(usr_path "$f")"
    for lib in $(ldd "$f" 2>/dev/null | grep -o '/[^ ]*'); do
      dst=$root$(usr_path "$lib")
      [ -e "$dst" ] || install -D -m 0755 "$(readlink -f "$lib")" "$dst"
    done
  done
}
copy_mods() { # copy_mods ROOT MODULE...: modules with their dependencies, indexed
  local root=$1 m p; shift
  for m in "$@"; do
    for p in $(modprobe -d "$CACHE/kernel" -S "$KVER" --show-depends "$m" | awk '$1=="insmod"{print $2}'); do
      install -D -m 0644 "$p" "$root/usr${p#"$CACHE"/kernel}"
    done
  done
  cp "$CACHE/kernel/lib/modules/$KVER"/modules.{order,builtin,builtin.modinfo} "$root/usr/lib/modules/$KVER/" 2>/dev/null || true
  depmod -b "$root/usr" "$KVER"
}
skel() {
  local root=$1 a
  rm -rf "$root"; mkdir -p "$root"/{usr/bin,usr/sbin,usr/lib,usr/lib64,etc,dev,proc,sys,run,tmp,root,var/lib,var/log,mnt}
  ln -s usr/bin "$root/bin"; ln -s usr/sbin "$root/sbin"; ln -s usr/lib "$root/lib"; ln -s usr/lib64 "$root/lib64"
  ln -s ../run "$root/var/run"; ln -s ../run/lock "$root/var/lock"
  cp /bin/busybox "$root/usr/bin/busybox"
  for a in $(/bin/busybox --list-full); do   # real binaries copied later win
    a=$(usr_path "/$a")
    [ -e "$root$a" ] || ln -s /usr/bin/busybox "$root$a"
  done
  echo "root:x:0:0:root:/root:/bin/sh" > "$root/etc/passwd"
  echo "root:x:0:" > "$root/etc/group"
  # glibc dlopen()s libgcc_s for pthread_cancel (xl aborts without it)
  install -D -m 0644 "$(readlink -f /lib/x86_64-linux-gnu/libgcc_s.so.1)" "$root/usr/lib/x86_64-linux-gnu/libgcc_s.so.1"
}
# The dom0 image may be concatenated gzip (the kernel unpacks it); the domU
# ramdisk stays plain cpio: libxenguest cannot inflate multi-member gzip.
mkcpio() { (cd "$1" && find . | LC_ALL=C sort | cpio --quiet -R 0:0 -H newc -o) > "$2.tmp" && mv "$2.tmp" "$2"; }
XS_TOOLS="ls read write rm list exists chmod watch"

log "building domU initramfs (kernel $KVER)"
R=$CACHE/root-domU
skel "$R"
# bash and iproute2: Debian's busybox sh runs its own applets (e.g. a limited
# `ip`) even when a real binary is first on PATH, so guest scripts use bash
copy_elf "$R" /usr/bin/xenstore /usr/sbin/ip /usr/bin/bash /usr/bin/strace
for t in $XS_TOOLS; do ln -sf xenstore "$R/usr/bin/xenstore-$t"; done
# The harness's xenstore client finds its libraries in /usr/lib/xenvm (its
# DT_RPATH), off the library path: a guest has libxenstore where programs
# (and dlopen) find it only when boot.sh adds it for the agent
# (XGA_VM_DLOPEN), so the portable boots have none.
mkdir -p "$R/usr/lib/xenvm"
mv "$R"/usr/lib/x86_64-linux-gnu/libxenstore.so* "$R"/usr/lib/x86_64-linux-gnu/libxentoolcore.so* "$R/usr/lib/xenvm/"
patchelf --force-rpath --set-rpath /usr/lib/xenvm "$R/usr/bin/xenstore"
copy_mods "$R" xen-netfront xenfs xen-evtchn xen-gntdev xen-gntalloc xen-privcmd ipv6
# the guest's OS is the host's Debian userland: tell the agent so
cp /etc/os-release "$R/usr/lib/os-release"; ln -s ../usr/lib/os-release "$R/etc/os-release"
cp /etc/debian_version "$R/etc/debian_version"
install -m 0755 "$HERE/domU-init" "$R/init"
mkcpio "$R" "$OUT/domU-base.cpio"
rm -rf "$R"

log "building the systemd guests' initramfs"
R=$CACHE/root-initrd
skel "$R"
copy_mods "$R" xen-blkfront ext4 xen-netfront xenfs xen-evtchn xen-gntdev xen-gntalloc xen-privcmd
install -m 0755 "$HERE/disk-init" "$R/init"
mkcpio "$R" "$OUT/domU-initrd.cpio"
rm -rf "$R"

log "building dom0 initramfs"
R=$CACHE/root-dom0
skel "$R"
copy_elf "$R" $XENLIB/bin/xl $XENLIB/bin/xenstored $XENLIB/bin/xenconsoled \
  $XENLIB/bin/xenconsole $XENLIB/bin/xen-init-dom0 $XENLIB/bin/libxl-save-helper \
  /usr/bin/xenstore $XENLIB/bin/xenstore-control /usr/bin/bash /usr/sbin/ip /usr/sbin/bridge /usr/bin/flock /usr/bin/stat /usr/bin/jq \
  /usr/bin/bc /usr/bin/openssl
for t in $XS_TOOLS; do ln -sf xenstore "$R/usr/bin/xenstore-$t"; done
for b in xl xenstored xenconsoled xenconsole xen-init-dom0 xenstore-control; do ln -sf ../lib/xen-4.17/bin/$b "$R/usr/sbin/$b"; done
mkdir -p "$R/etc/xen" "$R/var/lib/xen" "$R/var/log/xen/console" "$R/var/lib/xenstored"
cp -a /etc/xen/scripts "$R/etc/xen/"
[ -f /etc/xen/xl.conf ] && cp /etc/xen/xl.conf "$R/etc/xen/"
copy_mods "$R" xen-privcmd xenfs xen-evtchn xen-gntdev xen-gntalloc xen-netback xen-blkback bridge tun virtio_pci virtio_blk
install -m 0755 "$HERE/dom0-init" "$R/init"
cp "$OUT/vmlinux" "$R/root/vmlinux"
(cd "$R" && find . | LC_ALL=C sort | cpio --quiet -R 0:0 -H newc -o | gzip -1) > "$OUT/dom0-base.cpio.gz.tmp"
mv "$OUT/dom0-base.cpio.gz.tmp" "$OUT/dom0-base.cpio.gz"
rm -rf "$R"
echo "$recipe" > "$OUT/recipe"
log "images ready: $(cd "$OUT" && du -sh -- * | tr '\t' ' ' | tr '\n' ' ')"
