#!/usr/bin/env bash
# exec_fixture: the scheduler with the runner's fixture plugin (tests/plugins), whose
# step types misbehave on purpose: crashing steps fail with the signal named while the
# others carry on; what a plugin receives (inputs evaluated from earlier outputs, the
# workflow env merged with the step env, attempt 1, idempotency key run_id/step_id);
# an evaluation error fails only its step, naming file:line:col; a grandchild left
# behind by a finished step does not survive it; SIGINT cancels hanging steps.
. "$(dirname "$0")/../lib.sh"

fixture="$WFH_BUILD/tests/plugins/fixture.so"
if [ ! -f "$fixture" ]; then
  echo "exec_fixture: $fixture not built; nothing to test" >&2
  exit 1
fi
P=() # fixture.so is in the test registry lib.sh copies into $WFH_HOME

cat >"$T/fx.yaml" <<'Y'
name: fixtures
env:
  SHARED: workflow
  OVERRIDDEN: workflow
steps:
  - id: first
    uses: echo
    with:
      n: 7
      who: "${{ env.SHARED }}"
  - id: second
    uses: echo
    needs: [first]
    env:
      OVERRIDDEN: step
      FROM_FIRST: "${{ steps.first.outputs.inputs.who }}"
    with:
      got: "${{ steps.first.outputs.inputs }}"
      key_of_first: "${{ steps.first.outputs.request.key }}"
  - id: segv
    uses: crash
  - id: after_segv
    uses: echo
    needs: [segv]
  - id: abrt
    uses: abort
  - id: bad_eval
    uses: echo
    needs: [first]
    with:
      v: "${{ fromJSON('{nope') }}"
  - id: after_bad_eval
    uses: echo
    needs: [bad_eval]
  - id: orphan
    uses: orphan
Y

run "$WFH" exec --json "${P[@]}" "$T/fx.yaml"
expect_rc 1 "run with crashing steps"
o="$T/out"
id=$(json "$o" '["run_id"]')
st() { json "$o" "[\"steps\"][\"$1\"][\"status\"]"; }
expect_eq "$(st first)" succeeded "first"
expect_eq "$(st second)" succeeded "second (its need succeeded; the crashes are elsewhere)"
expect_eq "$(st segv)" failed "segv"
expect_eq "$(st abrt)" failed "abrt"
expect_eq "$(st after_segv)" skipped "dependent of a crash"
expect_eq "$(st bad_eval)" failed "a step whose inputs fail to evaluate"
expect_eq "$(st after_bad_eval)" skipped "its dependent"
expect_eq "$(st orphan)" succeeded "orphan"
json "$o" '["steps"]["segv"]["error"]' | grep -q SIGSEGV || fail "segv's error: $(json "$o" '["steps"]["segv"]["error"]')"
json "$o" '["steps"]["abrt"]["error"]' | grep -q SIGABRT || fail "abrt's error: $(json "$o" '["steps"]["abrt"]["error"]')"
json "$o" '["steps"]["bad_eval"]["error"]' | grep -Eq 'fx\.yaml:[0-9]+:[0-9]+: .*bad_eval' ||
  fail "bad_eval's error lacks file:line:col: $(json "$o" '["steps"]["bad_eval"]["error"]')"
expect_eq "$(json "$o" '["steps"]["bad_eval"]["attempts"]')" 0 "no attempt starts when inputs fail"

# What the plugin was handed.
expect_eq "$(json "$o" '["steps"]["second"]["outputs"]["request"]["key"]')" "$id/second" "idempotency key"
expect_eq "$(json "$o" '["steps"]["second"]["outputs"]["request"]["attempt"]')" 1 "attempt number"
expect_eq "$(json "$o" '["steps"]["second"]["outputs"]["request"]["run_id"]')" "$id" "run id"
expect_eq "$(json "$o" '["steps"]["second"]["outputs"]["inputs"]["key_of_first"]')" "$id/first" "an output used as input"
expect_eq "$(json "$o" '["steps"]["second"]["outputs"]["inputs"]["got"]')" '{"n": 7, "who": "workflow"}' "an object output keeps its type"
expect_eq "$(json "$o" '["steps"]["second"]["outputs"]["env"]["OVERRIDDEN"]')" step "step env wins"
expect_eq "$(json "$o" '["steps"]["second"]["outputs"]["env"]["SHARED"]')" workflow "workflow env inherited"
expect_eq "$(json "$o" '["steps"]["second"]["outputs"]["env"]["FROM_FIRST"]')" workflow "env from an output"
expect_in "$T/err" '^segv \| about to crash$' "the crashing step's log line, prefixed"

# The orphan step's setsid'd grandchild carries the run id in its argv.
for _ in 1 2 3 4 5 6 7 8 9 10; do pgrep -f "wfh-orphan-$id" >/dev/null || break; sleep 0.2; done
if pgrep -f "wfh-orphan-$id" >/dev/null; then
  fail "the orphan's grandchild outlived its step"
  for p in $(pgrep -f "wfh-orphan-$id"); do kill -KILL "$p"; done
fi

# The workflow's env fails to evaluate: nothing starts, the run says why (exit 2).
cat >"$T/badenv.yaml" <<'Y'
name: badenv
env:
  X: "${{ fromJSON('{nope') }}"
steps:
  - id: only
    uses: echo
Y
run "$WFH" exec --json "${P[@]}" "$T/badenv.yaml"
expect_rc 2 "a workflow env that fails to evaluate"
expect_eq "$(json "$T/out" '["status"]')" failed "its run status"
json "$T/out" '["error"]' | grep -Eq "badenv\.yaml:3:[0-9]+: .*workflow's env" ||
  fail "the run's error: $(json "$T/out" '["error"]')"
expect_eq "$(json "$T/out" '["steps"]["only"]["attempts"]')" 0 "no step started"
expect_in "$T/err" "badenv\.yaml:3:[0-9]+:" "the message on stderr has the position"

# SIGINT with two hanging steps and one waiting behind them.
cat >"$T/hang.yaml" <<'Y'
name: hangs
steps:
  - id: h1
    uses: hang
  - id: h2
    uses: hang
  - id: behind
    uses: echo
    needs: [h1]
Y
"$WFH" exec --json -j 4 "${P[@]}" "$T/hang.yaml" >"$T/out" 2>"$T/err" &
pid=$!
for _ in $(seq 1 100); do grep -q '^h2 | hanging' "$T/err" && grep -q '^h1 | hanging' "$T/err" && break; sleep 0.1; done
grep -q '^h2 | hanging' "$T/err" || fail "the hanging steps did not start"
kill -INT "$pid"
wait "$pid"
rc=$?
expect_rc 130 "cancel hanging steps"
expect_eq "$(json "$T/out" '["steps"]["h1"]["status"]')" cancelled "h1"
expect_eq "$(json "$T/out" '["steps"]["h2"]["status"]')" cancelled "h2"
expect_eq "$(json "$T/out" '["steps"]["behind"]["status"]')" cancelled "behind"
expect_eq "$(json "$T/out" '["steps"]["behind"]["attempts"]')" 0 "behind never started"

done_testing
