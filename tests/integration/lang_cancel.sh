#!/usr/bin/env bash
# lang_cancel: a first SIGINT cancels the run but `finally:` steps still run (they see
# cancelled() and the cancelled step's status); on_failure steps do not; a second
# SIGINT stops a finally step that is itself running; exit 130 either way.
. "$(dirname "$0")/../lib.sh"

wait_for() { # wait_for FILE SECONDS
  local i=0
  while [ ! -e "$1" ] && [ $i -lt $(($2 * 10)) ]; do sleep 0.1; i=$((i + 1)); done
  [ -e "$1" ]
}

cat >"$T/c.yaml" <<Y
name: cancel-finally
steps:
  - id: long
    uses: shell
    with:
      run: touch "$T/started"; sleep 30
  - id: after
    uses: shell
    needs: long
    with:
      run: touch "$T/after.ran"
on_failure:
  - id: alert
    uses: shell
    with:
      run: touch "$T/alert.ran"
finally:
  - id: cleanup
    uses: shell
    env:
      LONG: \${{ steps.long.status }}
      CANCELLED: \${{ cancelled() }}
    with:
      run: echo "cleanup long=\$LONG cancelled=\$CANCELLED"; touch "$T/cleanup.ran"
Y
"$WFH" exec --no-store --json "$T/c.yaml" >"$T/out" 2>"$T/err" &
pid=$!
if wait_for "$T/started" 20; then kill -INT "$pid"; else fail "never started"; kill -KILL "$pid"; fi
wait "$pid"
rc=$?
expect_rc 130 "cancelled"
st() { json "$T/out" "[\"steps\"][\"$1\"][\"status\"]"; }
expect_eq "$(json "$T/out" '["status"]')" cancelled "run status"
expect_eq "$(st long)" cancelled "the running step"
expect_eq "$(st after)" cancelled "the step that had not started"
expect_eq "$(st alert)" cancelled "on_failure does not run on a cancel"
expect_eq "$(st cleanup)" succeeded "finally runs after a cancel"
expect_in "$T/err" 'cleanup \| cleanup long=cancelled cancelled=true' "finally sees the cancel"
expect_in "$T/err" 'finally steps still run' "the note says so"
[ -e "$T/after.ran" ] && fail "a step started after the cancel"
[ -e "$T/alert.ran" ] && fail "on_failure ran on a cancel"

# A second signal stops a running finally step.
cat >"$T/c2.yaml" <<Y
name: cancel-finally-twice
steps:
  - id: long
    uses: shell
    with:
      run: touch "$T/started2"; sleep 30
finally:
  - id: slow_cleanup
    uses: shell
    with:
      run: touch "$T/cleanup2.started"; sleep 30
Y
"$WFH" exec --no-store --json "$T/c2.yaml" >"$T/out" 2>"$T/err" &
pid=$!
wait_for "$T/started2" 20 && kill -INT "$pid"
if wait_for "$T/cleanup2.started" 20; then kill -INT "$pid"; else fail "the finally step never started"; kill -KILL "$pid"; fi
start=$(date +%s)
wait "$pid"
rc=$?
expect_rc 130 "cancelled twice"
[ $(( $(date +%s) - start )) -lt 10 ] || fail "the second signal did not stop the finally step"
expect_eq "$(st slow_cleanup)" cancelled "the finally step was stopped"
expect_in "$T/err" 'stopping the finally steps too' "the second note"
done_testing
