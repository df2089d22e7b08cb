#!/bin/bash
# One boot: Xen 4.17 + Debian dom0 + one domU under QEMU TCG. Runs a script
# in the domU, then a script in dom0 (which drives the domU through
# guest_exec and checks xenstore), and exits with the result.
#
#   boot.sh NAME GUEST_DIR GUEST_SCRIPT DOM0_DIR DOM0_SCRIPT
#
#   NAME          run name (log file name)
#   GUEST_DIR     copied to /xenvm/ in the domU (bin/ is on PATH); the shared
#                 libraries of every ELF in GUEST_DIR/bin (ldd) and those named
#                 in XGA_VM_DLOPEN (loaded with dlopen, so not in ldd) are copied
#   GUEST_SCRIPT  run as `bash /xenvm/guest.sh` in the domU, cwd /xenvm; its
#                 status is the "guest" result
#   DOM0_DIR      copied to /xenvm/ in dom0
#   DOM0_SCRIPT   run with bash in dom0 (cwd /xenvm, dom0-lib.sh sourced,
#                 DOMID set) once the guest script exited; its status is the
#                 "dom0" result
# Exit: 0 both results 0; 1 a result is not 0; 2 no result (crash, timeout).
# The serial log (each line stamped with host seconds since QEMU started) is
# $XGA_VM_CACHE/runs/NAME.log; it is echoed unless XGA_VM_QUIET=1.
#
# Knobs (environment):
#   XGA_VM_CACHE        cache dir (required; images built by build.sh)
#   XGA_VM_TIMEOUT=2400 whole boot deadline, s
#   XGA_VM_BOOT_DEADLINE=300  s until dom0's toolstack must be up; past it the
#                       boot counts as an emulator failure
#   XGA_VM_RETRIES=1    re-boots after an emulator failure (logged)
#   XGA_VM_GUEST_TIMEOUT=300  s for GUEST_SCRIPT (dom0 then runs anyway)
#   XGA_VM_DOMU_TYPE=pv|pvh   XGA_VM_CPU (default qemu64,+svm; pvh: +npt)
#   XGA_VM_XS_PRECREATE="control/feature-balloon"  nodes dom0 creates
#                       guest-writable before unpausing (as XAPI does)
#   XGA_VM_VIF="bridge=xenbr0,mac=00:16:3e:5e:00:01"  (empty: no vif)
#   XGA_VM_MEM=2048 XGA_VM_SMP=2 XGA_VM_DOM0_MEM=768 XGA_VM_DOMU_MEM=256
#   XGA_VM_QEMU         another qemu-system-x86_64 (default: the extracted one)
#   XGA_VM_DLOPEN="libxenstore.so.4"  libraries the guest binaries dlopen
#   XGA_VM_DISK=PATH    a systemd guest: PATH (a raw ext4 root, lib/build-disk.sh)
#                       is QEMU's second disk (snapshot=on: the image is never
#                       written), dom0's /dev/vda, the domU's xvda (phy:,
#                       blkback); the domU boots images/domU-initrd.cpio, which
#                       copies /xenvm into the root and starts systemd. Nothing
#                       is copied into the guest's system: GUEST_DIR's bin/ gets
#                       xenstore-* commands, dom0's xenstore client with its
#                       own loader and libraries (/xenvm/host, patchelf), so
#                       the guest has no libxenstore but what its packages install
#   XGA_VM_DOM0_ENV     file copied to /xenvm/env in dom0 (sourced by init)
#   XGA_VM_QUIET=1      do not echo the console
#   XGA_VM_KEEP=1       keep the per-boot images
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
: "${XGA_VM_CACHE:?}"
NAME=$1 GDIR=$2 GSCRIPT=$3 DDIR=$4 DSCRIPT=$5
IMG=$XGA_VM_CACHE/images
RUNS=$XGA_VM_CACHE/runs
mkdir -p "$RUNS"
if [ -n "${XGA_VM_QEMU:-}" ]; then QEMU=$XGA_VM_QEMU
else
  QEMU=$XGA_VM_CACHE/qemu/usr/bin/qemu-system-x86_64
  export QEMU_MODULE_DIR=$XGA_VM_CACHE/qemu/usr/lib/x86_64-linux-gnu/qemu
fi
TYPE=${XGA_VM_DOMU_TYPE:-pv}
# PVH needs HAP, and Debian's Xen has no shadow paging: +npt
if [ "$TYPE" = pvh ]; then CPU=${XGA_VM_CPU:-qemu64,+svm,+npt}; else CPU=${XGA_VM_CPU:-qemu64,+svm}; fi
say() { echo "xga-vm[$NAME]: $*" >&2; }

# ------------------------------------------------------------ per-boot images
W=$(mktemp -d "$RUNS/$NAME.XXXXXX")
cleanup() { # stop our QEMU if it still runs, drop the per-boot images
  local q; q=$(cat "$W/qemu.pid" 2>/dev/null) &&
    [[ "$(cat /proc/$q/comm 2>/dev/null)" == qemu-system* ]] && kill "$q"
  if [ -n "${XGA_VM_KEEP:-}" ]; then say "images kept in $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
G=$W/guest-root D=$W/dom0-root
mkdir -p "$G/xenvm" "$D/xenvm"
# dom0's side of OpenStack's protocol (the openstack scenario).
install -m 0755 "$HERE/../../openstack/nova-client.sh" "$D/xenvm/nova-client.sh"
cp -a "$GDIR/." "$G/xenvm/"
install -m 0755 "$GSCRIPT" "$G/xenvm/guest.sh"
usr_path() { case $1 in /lib/*|/lib64/*|/bin/*|/sbin/*) echo "/usr$1" ;; *) echo "$1" ;; esac; }
# Shared libraries go to their /usr-merged path: the base image has /lib,
# /bin... as symlinks into /usr, and a cpio entry for a real `lib` directory
# would replace the symlink (and hide /lib/modules).
copy_libs() { # copy_libs ELF...: the libraries ldd finds for each ELF
  local lib
  for lib in $(ldd "$@" 2>/dev/null | grep -o '/[^ ]*' | sort -u); do
    install -D -m 0755 "$(readlink -f "$lib")" "$G$(usr_path "$lib")"
  done
}
install -m 0755 "$HERE/serve.sh" "$G/xenvm/serve.sh"
if [ -n "${XGA_VM_DISK:-}" ]; then
  # dom0's xenstore client, self-contained: its loader and libraries in
  # /xenvm/host, named in its ELF header (interpreter, DT_RPATH: also for
  # libxenstore's own dependencies), one exec per call
  mkdir -p "$G/xenvm/host"
  for lib in $(ldd /usr/bin/xenstore | grep -o '/[^ ]*' | sort -u); do
    install -m 0755 "$(readlink -f "$lib")" "$G/xenvm/host/${lib##*/}"
  done
  install -m 0755 /usr/bin/xenstore "$G/xenvm/host/xenstore"
  patchelf --set-interpreter /xenvm/host/ld-linux-x86-64.so.2 --force-rpath --set-rpath /xenvm/host "$G/xenvm/host/xenstore" ||
    { say "patchelf failed"; exit 2; }
  for t in ls read write rm list exists chmod watch; do ln -sfn ../host/xenstore "$G/xenvm/bin/xenstore-$t"; done
  BASE=$IMG/domU-initrd.cpio
else
  for f in "$G"/xenvm/bin/*; do
    [ -f "$f" ] && [ "$(head -c 4 "$f" | od -An -tx1 | tr -d ' ')" = 7f454c46 ] && copy_libs "$f"
  done
  # dlopen()ed libraries are invisible to ldd: resolve them with ldconfig and
  # copy them (under the name dlopen asks for) with their own dependencies.
  for so in ${XGA_VM_DLOPEN-libxenstore.so.4}; do
    path=$(ldconfig -p | awk -v so="$so" '$1==so && /x86-64/ {print $NF; exit}')
    [ -n "$path" ] || { say "cannot find $so (ldconfig -p)"; exit 2; }
    install -D -m 0755 "$(readlink -f "$path")" "$G$(usr_path "$path")"
    copy_libs "$path"
  done
  install -m 0755 "$HERE/domU-init" "$G/init"   # newer than the base image's copy
  BASE=$IMG/domU-base.cpio
fi
(cd "$G" && find . | cpio --quiet -R 0:0 -H newc -o) > "$W/guest-overlay.cpio"
cat "$BASE" "$W/guest-overlay.cpio" > "$D/xenvm/domU.cpio"

VIF=${XGA_VM_VIF-bridge=xenbr0,mac=00:16:3e:5e:00:01}
cat > "$D/xenvm/domU.cfg" <<CFG
name = "domU"
type = "$TYPE"
kernel = "/root/vmlinux"
ramdisk = "/xenvm/domU.cpio"
extra = "console=hvc0 ${XGA_VM_DISK:+root=/dev/xvda }${XGA_VM_DOMU_EXTRA:-}"
memory = ${XGA_VM_DOMU_MEM:-256}
vcpus = 1
on_crash = "preserve"
$( [ -n "$VIF" ] && echo "vif = [ '$VIF' ]" )
$( [ -n "${XGA_VM_DISK:-}" ] && echo "disk = [ 'phy:/dev/vda,xvda,w' ]" )
CFG
cp -a "$DDIR/." "$D/xenvm/"
cp "$HERE/dom0-lib.sh" "$D/xenvm/dom0-lib.sh"
install -m 0755 "$HERE/dom0-init" "$D/init"
install -m 0755 "$DSCRIPT" "$D/xenvm/dom0.sh"
{ echo "XGA_VM_GUEST_TIMEOUT=${XGA_VM_GUEST_TIMEOUT:-300}"
  echo "XGA_VM_XS_PRECREATE='${XGA_VM_XS_PRECREATE:-}'"
  [ -n "${XGA_VM_DOM0_ENV:-}" ] && cat "$XGA_VM_DOM0_ENV"; } > "$D/xenvm/env"
(cd "$D" && find . | cpio --quiet -R 0:0 -H newc -o | gzip -1) > "$W/dom0-overlay.cpio.gz"
cat "$IMG/dom0-base.cpio.gz" "$W/dom0-overlay.cpio.gz" > "$W/dom0.cpio.gz"
rm -rf "$G" "$D" "$W/guest-overlay.cpio" "$W/dom0-overlay.cpio.gz"

XEN_CMDLINE="console=com1 com1=115200,8n1 dom0_mem=${XGA_VM_DOM0_MEM:-768}M,max:${XGA_VM_DOM0_MEM:-768}M dom0_max_vcpus=1 bootscrub=0 loglvl=all guest_loglvl=all"
QARGS=(-L /usr/share/seabios -L /usr/share/qemu -machine pc -vga none -cpu "$CPU"
  -m "${XGA_VM_MEM:-2048}" -smp "${XGA_VM_SMP:-2}" -no-reboot -net none
  -display none -monitor none -chardev stdio,id=ser0,signal=off -serial chardev:ser0
  -kernel "$IMG/xen" -append "$XEN_CMDLINE"
  -initrd "$IMG/vmlinux console=hvc0 earlyprintk=xen,$W/dom0.cpio.gz")
[ -n "${XGA_VM_DISK:-}" ] && QARGS+=(-drive "file=$XGA_VM_DISK,if=virtio,format=raw,snapshot=on,cache=unsafe")

# ------------------------------------------------------------------- boot
LOGF=$RUNS/$NAME.log
TIMEOUT=${XGA_VM_TIMEOUT:-2400}
BOOT_DEADLINE=${XGA_VM_BOOT_DEADLINE:-300}
marker() { grep -a -q -e "$1" "$LOGF" 2>/dev/null; }
boot_once() { # -> 0 result seen; 3 emulator failure (retry); 2 other failure
  local t0=${EPOCHREALTIME/./} start=$SECONDS qpid= rc
  : > "$LOGF"
  rm -f "$W/qemu.pid" "$W/qemu.rc"
  say "booting ($TYPE domU, cpu $CPU), log $LOGF"
  { "$QEMU" "${QARGS[@]}" -pidfile "$W/qemu.pid" </dev/null 2>&1; echo $? > "$W/qemu.rc"; } |
    while IFS= read -r line || [ -n "$line" ]; do
      d=$(( ${EPOCHREALTIME/./} - t0 ))
      while [[ $line == *$'\r' ]]; do line=${line%$'\r'}; done   # serial lines end in \r\r\n
      printf '[%4d.%02d] %s\n' $((d/1000000)) $((d%1000000/10000)) "$line"
    done | if [ -n "${XGA_VM_QUIET:-}" ]; then cat >> "$LOGF"; else tee -a "$LOGF"; fi &
  local pipe=$!
  # watchdog: deadlines on conditions, checked once a second
  local why=
  while kill -0 $pipe 2>/dev/null; do
    [ -n "$qpid" ] || qpid=$(cat "$W/qemu.pid" 2>/dev/null)
    if [ $((SECONDS - start)) -gt "$BOOT_DEADLINE" ] && ! marker 'XENVM-MARK toolstack-up'; then
      why="dom0 toolstack not up after ${BOOT_DEADLINE}s"; break
    fi
    if [ $((SECONDS - start)) -gt "$TIMEOUT" ]; then why="no result after ${TIMEOUT}s"; break; fi
    sleep 1
  done
  if [ -n "$why" ]; then
    say "$why: stopping QEMU"
    [ -n "$qpid" ] && kill "$qpid" 2>/dev/null
    wait $pipe
  else
    wait $pipe
  fi
  rc=$(cat "$W/qemu.rc" 2>/dev/null || echo '?')
  if marker 'XENVM-RESULT '; then return 0; fi
  # The emulator's own failures: QEMU died by itself, or the boot stalled
  # before our dom0 init could do anything.
  if ! marker 'XENVM-MARK toolstack-up' && [[ "$why" != "no result"* ]]; then
    say "EMULATOR FAILURE (qemu exit $rc${why:+, $why}) before dom0 was up"
    return 3
  fi
  if [ "$rc" != 0 ] && [ "$rc" != 143 ] && [ -z "$why" ]; then
    say "EMULATOR FAILURE: QEMU exited with $rc"
    return 3
  fi
  say "no result (qemu exit $rc${why:+, $why})"
  return 2
}
rm -f "$RUNS/$NAME".failed-boot-*.log
tries=$(( ${XGA_VM_RETRIES:-1} + 1 ))
for ((i = 1; i <= tries; i++)); do
  boot_once; brc=$?
  [ $brc = 3 ] || break
  cp "$LOGF" "$RUNS/$NAME.failed-boot-$i.log"
  [ $i -lt $tries ] && say "RETRY: re-booting after an emulator failure (log kept in $RUNS/$NAME.failed-boot-$i.log)"
done

t_of() { grep -a -m1 -e "$1" "$LOGF" | sed -n 's/^\[ *\([0-9.]*\)\].*/\1/p'; }
say "timings (s since QEMU start): dom0-kernel=$(t_of 'Linux version') toolstack=$(t_of 'XENVM-MARK toolstack-up')" \
  "domU-created=$(t_of 'XENVM-MARK domU-created') guest-done=$(t_of 'XENVM-MARK guest-script-done')" \
  "result=$(t_of 'XENVM-RESULT')"
RES=$(grep -a -o 'XENVM-RESULT guest=[^ ]* dom0=[0-9]*' "$LOGF" | tail -n1)
say "${RES:-no XENVM-RESULT}"
case "$RES" in
  "XENVM-RESULT guest=0 dom0=0") exit 0 ;;
  "") exit 2 ;;
  *) exit 1 ;;
esac
