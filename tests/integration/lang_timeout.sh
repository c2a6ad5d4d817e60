#!/usr/bin/env bash
# lang_timeout: `timeout:` per attempt kills the attempt's whole process tree - here a
# grandchild that double-forked and called setsid, which must not survive - and the step
# ends timed_out; defaults.timeout applies to steps without their own; a step that
# finishes in time is untouched.
. "$(dirname "$0")/../lib.sh"

cat >"$T/t.yaml" <<Y
name: timeouts
defaults:
  timeout: 1s
steps:
  - id: hang
    uses: shell
    timeout: 700ms
    with:
      run: |
        # double fork + setsid: the grandchild is in no process group of ours
        setsid sh -c 'sleep 30.$$ & echo \$! > "$T/grandchild.pid"; wait' &
        sleep 30
  - id: by_default
    uses: shell
    with:
      run: sleep 30
  - id: quick
    uses: shell
    timeout: 10s
    with:
      run: echo fine
  - id: after
    uses: shell
    needs: hang
    with:
      run: echo never
Y
start=$(date +%s%N)
run "$WFH" exec --no-store --json "$T/t.yaml"
elapsed_ms=$(( ($(date +%s%N) - start) / 1000000 ))
expect_rc 1 "a timed-out step fails the run"
st() { json "$T/out" "[\"steps\"][\"$1\"][\"status\"]"; }
expect_eq "$(st hang)" timed_out "the hanging step"
expect_eq "$(st by_default)" timed_out "defaults.timeout"
expect_eq "$(st quick)" succeeded "a step within its timeout"
expect_eq "$(st after)" skipped "dependent of a timed-out step"
json "$T/out" '["steps"]["hang"]["error"]' | grep -q 'timed out after 700ms' ||
  fail "the error names the limit: $(json "$T/out" '["steps"]["hang"]["error"]')"
expect_in "$T/err" 'TIME hang' "shown as timed out"
# Generous upper bound (loaded CI machines): far below the 30 s the steps would take.
[ "$elapsed_ms" -lt 10000 ] || fail "run took ${elapsed_ms} ms; the timeouts did not cut it short"
d=$(json "$T/out" '["steps"]["hang"]["duration_ms"]')
[ "$d" -ge 650 ] || fail "hang ended after $d ms, before its 700ms timeout"
[ -s "$T/grandchild.pid" ] || fail "the grandchild never started"
# Found by its command line: under the strict sandbox its pid is the pid namespace's.
for _ in 1 2 3 4 5 6 7 8 9 10; do pgrep -xf "sleep 30.$$" >/dev/null || break; sleep 0.1; done
if gp=$(pgrep -xf "sleep 30.$$"); then
  fail "the setsid'd grandchild $gp survived the timeout"
  kill -9 $gp 2>/dev/null
fi
done_testing
