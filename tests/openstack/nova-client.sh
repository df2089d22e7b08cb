#!/bin/bash
# dom0's side of OpenStack's XenServer guest-agent protocol, written from
# the protocol (nova's XenAPI driver and the os-xenapi dom0 plugin
# `agent`): the commands nova sends at an instance's first boot, each
# written as data/host/<id> = {"name": ..., "value": ...} and its answer
# polled in data/guest/<id>, with the xenstore-* commands (XENSTORED_PATH
# may name a test xenstored's dom0 socket). Needs bash, bc, jq, openssl:
# it runs in the VM tier's dom0 as on a test machine.
#
# The password is encrypted as nova does it: Diffie-Hellman over 2^107 - 1
# (g = 5), then `openssl enc -aes-128-cbc -a -A -nosalt -pass pass:<secret>`
# with the key derivation --md names (md5: nova's hosts of old; sha256:
# OpenSSL >= 1.1's default).
#
# usage: nova-client.sh --home /local/domain/N --domid N [--password PW [--md md5|sha256]]
#          [--inject PATH=FILE] [--mac MAC [--ip A.B.C.D [--netmask M] [--gateway G]] [--hostname H]]
#          [--timeout SECONDS]
# Each answer is printed as `<command> <returncode> <message>`; the exit
# status is 1 when one is not what nova expects, 2 on bad usage.
set -u
home= domid= password= md=md5 inject= mac= ip= netmask=255.255.255.0 gateway= hostname= timeout=30
while [ $# -gt 0 ]; do
  case $1 in
    --home) home=$2 ;; --domid) domid=$2 ;; --password) password=$2 ;; --md) md=$2 ;;
    --inject) inject=$2 ;; --mac) mac=$2 ;; --ip) ip=$2 ;; --netmask) netmask=$2 ;;
    --gateway) gateway=$2 ;; --hostname) hostname=$2 ;; --timeout) timeout=$2 ;;
    *) echo "nova-client.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift 2 || { echo "nova-client.sh: $1 needs a value" >&2; exit 2; }
done
[ -n "$home" ] && [ -n "$domid" ] || { echo "nova-client.sh: --home and --domid are required" >&2; exit 2; }
P=162259276829213363391578010288127   # 2^107 - 1
failed=0 rc= message=

# bc's modular exponentiation (square and multiply), no line wrapping.
modexp() {
  BC_LINE_LENGTH=0 bc <<BC
define m(b, e, n) { auto r; r = 1; b = b % n; while (e > 0) { if (e % 2 == 1) r = (r * b) % n; e = e / 2; b = (b * b) % n; }; return r; }
m($1, $2, $3)
BC
}

# call NAME VALUE WANTED_RC: one command, its answer in $rc and $message.
call() {
  local name=$1 value=$2 want=$3 id request answer reply deadline
  id=$(cat /proc/sys/kernel/random/uuid)
  request=$home/data/host/$id answer=$home/data/guest/$id
  xenstore-write "$request" "{\"name\": \"$name\", \"value\": \"$value\"}" || exit 1
  deadline=$((SECONDS + ${timeout%.*}))
  until reply=$(xenstore-read "$answer" 2>/dev/null); do
    if [ "$SECONDS" -ge "$deadline" ]; then
      xenstore-rm "$request" 2>/dev/null
      echo "$name TIMEOUT no answer within $timeout s"; failed=1; rc= message=; return
    fi
    sleep 0.1
  done
  rc=$(jq -r .returncode <<<"$reply") message=$(jq -r .message <<<"$reply")
  echo "$name $rc $message"
  if xenstore-exists "$request" 2>/dev/null; then echo "$name: the request is still there after its answer"; failed=1; fi
  [ "$rc" = "$want" ] || failed=1
}

call version agent 0
call features "" 0
if [ -n "$password" ]; then
  # 80 random bits, as nova draws them.
  private=$(BC_LINE_LENGTH=0 bc <<<"ibase=16; $(od -An -N10 -tx1 /dev/urandom | tr -d ' \n' | tr a-f A-F)")
  call keyinit "$(modexp 5 "$private" $P)" D0
  if [ "$rc" = D0 ]; then
    secret=$(modexp "$message" "$private" $P)
    cipher=$(printf '%s\n' "$password" | openssl enc -aes-128-cbc -a -A -nosalt -md "$md" -pass "pass:$secret" 2>/dev/null)
    call password "$cipher" 0
  fi
fi
if [ -n "$inject" ]; then
  call injectfile "$( { printf '%s,' "${inject%%=*}"; cat "${inject#*=}"; } | base64 -w0)" 0
fi
if [ -n "$mac" ]; then
  ips= gw=
  if [ -n "$ip" ]; then
    ips="{\"ip\": \"$ip\", \"netmask\": \"$netmask\", \"enabled\": \"1\", \"gateway\": \"$gateway\"}" gw=$gateway
  fi
  # As XAPI's xenstore-data: dom0's, readable by the guest.
  xenstore-write "$home/vm-data/networking/$(tr -d : <<<"$mac")" \
    "{\"label\": \"public\", \"mac\": \"$mac\", \"gateway\": \"$gw\", \"ips\": [$ips], \"ip6s\": []}" || exit 1
  [ -n "$hostname" ] && { xenstore-write "$home/vm-data/hostname" "$hostname" || exit 1; }
  xenstore-chmod -r "$home/vm-data" n0 "r$domid" || exit 1
  call resetnetwork "" 0
fi
exit "$failed"
