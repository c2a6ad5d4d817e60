#!/usr/bin/env bash
# One home: with no --home and no $WFH_HOME, the build tree's own wfhost takes
# BUILD/dev-home for everything - the development registry the build signed AND the run
# store - rather than plugins from one place and run history in another (core/home.c).
# A copy of the same binary elsewhere (an installed wfhost) never looks there.
. "$(dirname "$0")/../lib.sh"
DEV=$WFH_BUILD/dev-home
[ -f "$DEV/registry/index.json" ] || { fail "the build made no development registry at $DEV"; done_testing; }

# Plugins come from the development registry...
run env -u WFH_HOME "$WFH" plugin list
expect_rc 0 "plugin list from the build tree"
expect_in "$T/out" "^shell " "the development registry's plugins are listed"
# ...and a run is recorded next to them, where `runs show` finds it with either spelling.
run env -u WFH_HOME "$WFH" exec --json "$WFH_SRC/examples/hello.yaml"
expect_rc 0 "exec from the build tree without a home"
id=$(json "$T/out" '["run_id"]')
run env -u WFH_HOME "$WFH" runs show "$id"
expect_rc 0 "the run is in the default home"
run "$WFH" runs show --home "$DEV" "$id"
expect_rc 0 "the default home is BUILD/dev-home"
run "$WFH" runs show "$id" # $WFH_HOME (this test's own home) wins over the build tree's
[ "$rc" != 0 ] || fail "\$WFH_HOME did not take precedence over the build tree's home"

# An installed copy of the same binary does not use the build tree's home.
cp "$WFH" "$T/wfhost"
run env -u WFH_HOME -u XDG_DATA_HOME HOME="$T/user" "$T/wfhost" plugin list
expect_rc 2 "an installed copy has no registry of its own yet"
expect_not_in "$T/err" "dev-home" "an installed copy never uses the build's home"
if [ "$(id -u)" = 0 ]; then
  expect_in "$T/err" "/var/lib/wfhost(/registry: no registry|: no wfhost home here)" "root's home"
else
  expect_in "$T/err" "$T/user/.local/share/wfhost/registry: no registry" "the XDG home"
fi
done_testing
