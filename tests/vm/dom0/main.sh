# dom0 side of every boot: runs the scenarios listed in $XGA_SCENARIOS
# (from /xenvm/env) in order; each is /xenvm/s-<name>.sh, sourced with
# SCEN=<name> so that its checks are tagged with it.
. /xenvm/scen-lib.sh
xl list
for SCEN in $XGA_SCENARIOS; do
  echo "XENVM-SCENARIO $SCEN"
  . "/xenvm/s-$SCEN.sh"
  echo "XENVM-SCENARIO-END $SCEN"
done
checks_done
