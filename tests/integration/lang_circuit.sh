#!/usr/bin/env bash
# lang_circuit: circuit_breaker: after N transient failures in a row of one step type
# and target, attempts fail fast (no process) during the cool-down; then one probe
# attempt decides (here it fails again: open again). State changes are shown; other
# step types are not affected. Uses the fixture plugin's `fail` type (transient).
. "$(dirname "$0")/../lib.sh"

fixture="$WFH_BUILD/tests/plugins/fixture.so"
[ -f "$fixture" ] || { fail "fixture plugin not built: $fixture"; done_testing; }
cat >"$T/c.yaml" <<'Y'
name: breaker
circuit_breaker: {failures: 2, cooldown: 800ms}
steps:
  - id: f1
    uses: fail
    continue_on_error: true
  - id: f2
    uses: fail
    needs: f1
    continue_on_error: true
  - id: f3
    uses: fail
    needs: f2
    continue_on_error: true
  - id: other
    uses: echo
    needs: f3
  - id: wait
    uses: hang
    needs: other
    timeout: 1s
    continue_on_error: true
  - id: probe
    uses: fail
    needs: wait
    continue_on_error: true
  - id: f5
    uses: fail
    needs: probe
    continue_on_error: true
Y
run "$WFH" exec --no-store --json -j1 "$T/c.yaml"
err() { json "$T/out" "[\"steps\"][\"$1\"][\"error\"]"; }
expect_eq "$(json "$T/out" '["steps"]["other"]["status"]')" succeeded "another type is not held"
err f1 | grep -q 'did not work' || fail "f1 ran: $(err f1)"
err f2 | grep -q 'did not work' || fail "f2 ran: $(err f2)"
err f3 | grep -q 'circuit fail is open after 2 transient failures' || fail "f3 failed fast: $(err f3)"
d=$(json "$T/out" '["steps"]["f3"]["attempt_history"][0]["duration_ms"]')
[ "$d" -lt 100 ] || fail "failing fast took $d ms"
err probe | grep -q 'did not work' || fail "the probe ran: $(err probe)"
err f5 | grep -q 'circuit fail is open' || fail "open again after the failed probe: $(err f5)"
expect_in "$T/err" '^circuit fail: open for 800ms after 2 transient failures in a row' "opening shown"
expect_in "$T/err" '^circuit fail: half-open: one probe attempt decides' "half-open shown"
expect_in "$T/err" '^circuit fail: open again for 800ms: the probe failed' "reopening shown"
done_testing
