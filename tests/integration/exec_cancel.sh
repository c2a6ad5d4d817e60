#!/usr/bin/env bash
# exec_cancel: SIGINT (and SIGTERM) cancel a run. A running step whose shell left a
# background `sleep` and a setsid'd, double-forked one is killed with its whole process
# tree (checked by unique markers in argv), steps that had not started are reported
# cancelled, and wfhost exits 130 after one signal.
. "$(dirname "$0")/../lib.sh"

M1=1$(printf %04d%05d $((RANDOM % 10000)) $((RANDOM % 100000)))7
M2=2$(printf %04d%05d $((RANDOM % 10000)) $((RANDOM % 100000)))9
survivors() { pgrep -f "sleep ($M1|$M2)" || true; }
cleanup() { # only the processes this test started, by their ids
  for p in $(survivors); do kill -KILL "$p" 2>/dev/null; done
  rm -rf "$T"
}
trap cleanup EXIT

cat >"$T/cancel.yaml" <<Y
name: cancel
steps:
  - id: sleeper
    uses: shell
    with:
      run: |
        sleep $M1 &
        setsid sh -c 'sleep $M2 & exit 0' &
        sleep 0.3
        touch "$T/started"
        wait
  - id: later
    uses: shell
    needs: [sleeper]
    with:
      run: touch "$T/later.ran"
  - id: quick
    uses: shell
    with:
      run: echo "done=1" >> "\$WFH_OUTPUT"
Y

wait_for() { # wait_for FILE SECONDS
  local i=0
  while [ ! -e "$1" ] && [ $i -lt $(($2 * 10)) ]; do sleep 0.1; i=$((i + 1)); done
  [ -e "$1" ]
}

"$WFH" exec --json "$T/cancel.yaml" >"$T/out" 2>"$T/err" &
pid=$!
if ! wait_for "$T/started" 20; then
  fail "the sleeper step never started"
  kill -KILL "$pid" 2>/dev/null
else
  [ -n "$(survivors)" ] || fail "the marker processes are not visible (test is blind)"
  kill -INT "$pid"
fi
wait "$pid"
rc=$?
expect_rc 130 "cancelled by SIGINT"
# The kill is synchronous in wfhost; allow a moment for the kernel to finish reaping.
for _ in 1 2 3 4 5 6 7 8 9 10; do [ -z "$(survivors)" ] && break; sleep 0.2; done
left=$(survivors)
[ -z "$left" ] || fail "processes survived the cancel: $(ps -o pid,sid,args -p "$(echo $left | tr ' ' ,)" 2>&1)"
expect_eq "$(json "$T/out" '["status"]')" cancelled "run status"
expect_eq "$(json "$T/out" '["steps"]["sleeper"]["status"]')" cancelled "the running step"
expect_eq "$(json "$T/out" '["steps"]["later"]["status"]')" cancelled "the step that had not started"
expect_eq "$(json "$T/out" '["steps"]["quick"]["status"]')" succeeded "the step that had finished"
[ -e "$T/later.ran" ] && fail "a step started after the cancel"
expect_in "$T/err" 'cancelling' "the cancel is announced"

# SIGTERM does the same.
rm -f "$T/started"
"$WFH" exec "$T/cancel.yaml" >"$T/out" 2>"$T/err" &
pid=$!
if wait_for "$T/started" 20; then kill -TERM "$pid"; else kill -KILL "$pid"; fi
wait "$pid"
rc=$?
expect_rc 130 "cancelled by SIGTERM"
for _ in 1 2 3 4 5 6 7 8 9 10; do [ -z "$(survivors)" ] && break; sleep 0.2; done
[ -z "$(survivors)" ] || fail "processes survived SIGTERM"

done_testing
