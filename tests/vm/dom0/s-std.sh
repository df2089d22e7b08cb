# std: the whole std tree appears after start, with the guest's real OS,
# kernel, memory and addresses, nothing else is written, and XAPI would
# derive the right VM_guest_metrics from it.
if agent_start; then
  t=$(first_update_s) && bench start_to_updated_s=$t
  check "the std tree is complete and right" wait_schema std 120
  show_tree
  view=$(xapi_view); echo "XAPI view: $view"
  primary=$(jq -r '.addr[] | select(.ifname == "eth0") | [.addr_info[] | select(.family == "inet")][0].local' <<<"$FACTS")
  IFS=. read -r vmaj vmin vmic <<<"$XGA_VERSION"
  check_eq "XAPI networks 0/ip is eth0's primary address" "$primary" "$(jq -r '.networks["0/ip"]' <<<"$view")"
  check_eq "XAPI PV_drivers_version major.minor.micro" "$vmaj.$vmin.$vmic" \
    "$(jq -r '.PV_drivers_version | "\(.major).\(.minor).\(.micro)"' <<<"$view")"
  check_eq "XAPI os_version distro/major/minor" \
    "$(jq -r '.os | .id + " " + ((if (.debian_version | test("^[0-9.]+$")) then .debian_version else .version_id end | split(".")) as $v | "\($v[0]) \($v[1] // "0")")' <<<"$FACTS")" \
    "$(jq -r '.os_version | "\(.distro) \(.major) \(.minor)"' <<<"$view")"
  check_eq "XAPI host_name is the guest's host name (and domain)" \
    "$(jq -r 'if (.hostname | contains(".")) or .domain == "" then .hostname else .hostname + "." + .domain end' <<<"$FACTS")" \
    "$(jq -r '.netbios_name.host_name' <<<"$view")"
  # only data/, attr/, control/feature-balloon (and the harness's xenvm/) are written
  new=$(xenstore-ls -f "$XS_HOME" | sed -n 's/ = .*//p' | grep -vxF -f <(echo "$PATHS_BEFORE") |
        sed "s#^$XS_HOME/##" | grep -v -E '^(data|attr)(/|$)|^control/feature-balloon$|^xenvm(/|$)')
  check_eq "the agent writes nowhere else" "" "$new"
  check "the agent is still running" agent_alive
fi
