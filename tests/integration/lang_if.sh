#!/usr/bin/env bash
# lang_if: `if:` bare and wrapped, skipped steps reported with the reason, dependents of
# a skipped/failed step skipped unless their `if` uses always()/failure(), status
# functions seeing the run so far, continue_on_error, and `if` errors at validate time.
. "$(dirname "$0")/../lib.sh"

cat >"$T/if.yaml" <<'Y'
name: conditions
steps:
  - id: probe
    uses: shell
    with:
      run: echo "mode=fast" >> "$WFH_OUTPUT"
  - id: fast
    uses: shell
    needs: probe
    if: steps.probe.outputs.mode == 'fast'
    with:
      run: echo ran-fast
  - id: slow
    uses: shell
    needs: probe
    if: ${{ steps.probe.outputs.mode == 'slow' }}
    with:
      run: echo ran-slow
  - id: after_slow
    uses: shell
    needs: slow
    with:
      run: echo never
  - id: cleanup
    uses: shell
    needs: slow
    if: always()
    with:
      run: echo "cleanup-ran status=${{ steps.slow.status }}"
  - id: broken
    uses: shell
    needs: fast
    continue_on_error: true
    with:
      run: exit 4
  - id: after_broken
    uses: shell
    needs: broken
    with:
      run: echo after-broken-ran
Y
run "$WFH" exec --no-store --json "$T/if.yaml"
expect_rc 0 "skips and a tolerated failure do not fail the run"
st() { json "$T/out" "[\"steps\"][\"$1\"][\"status\"]"; }
expect_eq "$(json "$T/out" '["status"]')" succeeded "run status"
expect_eq "$(st fast)" succeeded "bare if, true"
expect_eq "$(st slow)" skipped "wrapped if, false"
expect_eq "$(json "$T/out" '["steps"]["slow"]["reason"]')" \
  "if: \${{ steps.probe.outputs.mode == 'slow' }} was false" "the skip reason"
expect_eq "$(json "$T/out" '["steps"]["slow"]["attempts"]')" 0 "a skipped step never ran"
expect_eq "$(st after_slow)" skipped "dependent of a skipped step"
expect_eq "$(st cleanup)" succeeded "always() runs after a skipped need"
expect_in "$T/err" 'cleanup \| cleanup-ran status=skipped' "always() sees the need's status"
expect_eq "$(st broken)" failed "continue_on_error step is still reported failed"
expect_eq "$(json "$T/out" '["steps"]["broken"]["continued"]')" true "marked continued"
expect_eq "$(st after_broken)" succeeded "dependents of a tolerated failure run"
expect_in "$T/err" 'skip slow.*was false' "the skip is shown with why"
expect_in "$T/err" 'skip after_slow: needs .slow.' "the dependent's skip says why"

# failure(): runs only when something failed; success() handlers do not.
cat >"$T/fail.yaml" <<'Y'
name: on-failure
steps:
  - id: not_failed            # first in the queue (-j1): nothing has failed yet
    uses: shell
    if: failure()
    with:
      run: echo nothing-failed-yet
  - id: bad
    uses: shell
    with:
      run: exit 2
  - id: report
    uses: shell
    needs: bad
    if: failure()
    with:
      run: echo "reporting ${{ steps.bad.status }}"
  - id: celebrate
    uses: shell
    needs: bad
    if: success()
    with:
      run: echo party
  - id: plain
    uses: shell
    needs: bad
    with:
      run: echo plain
Y
run "$WFH" exec --no-store --json -j1 "$T/fail.yaml"
expect_rc 1 "the run failed"
expect_eq "$(st report)" succeeded "failure() runs after a failed need"
expect_in "$T/err" 'report \| reporting failure' "it sees steps.bad.status"
expect_eq "$(st celebrate)" skipped "success() after a failed need"
expect_eq "$(st plain)" skipped "no if: skipped after a failed need"
expect_eq "$(st not_failed)" skipped "failure() is false while nothing has failed"

# Errors in `if` are validation errors with positions; runtime errors name the step.
cat >"$T/bad.yaml" <<'Y'
name: bad-if
secrets: [TOKEN]
steps:
  - id: a
    uses: shell
    with:
      run: "true"
  - id: b
    uses: shell
    if: steps.a.outputs.x == 'y' &&
    with:
      run: "true"
  - id: c
    uses: shell
    if: steps.a.outputs.x == 'y'
    with:
      run: "true"
  - id: d
    uses: shell
    needs: a
    if: secrets.TOKEN == 'x'
    with:
      run: "true"
  - id: e
    uses: shell
    needs: a
    if: nosuch(1)
    timeout: 5 minutes
    retry: {max_attempts: 0, on: [flaky]}
Y
run "$WFH" validate "$T/bad.yaml"
expect_rc 2 "bad if is invalid"
expect_in "$T/err" 'bad.yaml:10:' "syntax error positioned on its line"
expect_in "$T/err" "bad.yaml:15:9: .*if of step 'c' refers to step 'a', which is not among its needs" "non-ancestor reference, exact column"
expect_in "$T/err" "bad.yaml:21:9: .*secrets cannot be used in if" "secrets refused in if"
expect_in "$T/err" "bad.yaml:27:9: .*nosuch" "unknown function"
expect_in "$T/err" "bad.yaml:28:14: .*timeout must be a duration" "bad timeout"
expect_in "$T/err" "bad.yaml:29:.*max_attempts must be" "bad max_attempts"
expect_in "$T/err" "unknown failure class 'flaky'" "bad class"
done_testing
