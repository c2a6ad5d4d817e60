#!/usr/bin/env bash
# durable_fail_points: every store write of a run fails in turn (as on a full disk,
# $WFH_DURABLE_FAIL_AT, core/durable.c). Each time: exit status 4 with one line naming
# the failed write, never a crash, neither --json nor the store reports the run as
# succeeded, no step runs after the failed write was meant to record it, and the run can
# be finished afterwards (resume if it is still running, retry if its failure was
# recorded) with no recorded success run twice.
. "$(dirname "$0")/../lib.sh"

H=(--home "$T/home")
cat >"$T/flow.yaml" <<Y
name: failpoints
env: {CNT: $T/cnt}
steps:
  - id: a
    uses: shell
    with: {run: 'echo a >> "\$CNT"; echo v=A >> "\$WFH_OUTPUT"'}
  - id: b
    uses: shell
    needs: [a]
    env: {IN: "\${{ steps.a.outputs.v }}"}
    with: {run: 'echo b >> "\$CNT"; echo "v=\${IN}B" >> "\$WFH_OUTPUT"'}
  - id: lone
    uses: shell
    with: {run: 'echo lone >> "\$CNT"; echo v=L >> "\$WFH_OUTPUT"'}
Y
store_state() {
  "$WFH" runs show "${H[@]}" --json "$1" | python3 -c 'import json,sys; d=json.load(sys.stdin)
print(d["status"], " ".join(sorted(s["id"] for s in d["steps"] if s["status"] == "succeeded")))'
}
n=1
points=0
while :; do
  rm -f "$T/cnt"
  run env WFH_DURABLE_FAIL_AT=$n "$WFH" exec "${H[@]}" --json "$T/flow.yaml"
  [ "$rc" = 0 ] && break # past the last write
  where="write $n fails"
  points=$((points + 1))
  expect_rc 4 "$where"
  expect_in "$T/err" "^wfhost: .*write $n failed" "$where: one line naming it"
  if [ -s "$T/out" ]; then
    expect_eq "$(json "$T/out" '["status"]')" failed "$where: --json does not say succeeded"
  fi
  id=$(head -n 1 "$T/err" | sed -n 's/^run \([0-9A-Z]*\) (failpoints)$/\1/p')
  st=$(store_state "$id" 2>/dev/null)
  if [ -n "$st" ]; then
    read -r status done_before <<<"$st"
    [ "$status" = succeeded ] && fail "$where: the store says the run succeeded"
    case $status in running|queued) cmd=resume ;; *) cmd=retry ;; esac
    run "$WFH" "$cmd" "${H[@]}" --json "$id"
    expect_rc 0 "$where: $cmd afterwards"
    expect_eq "$(json "$T/out" '["steps"]["b"]["outputs"]["v"]')" AB "$where: b's output after $cmd"
    for s in $done_before; do
      expect_eq "$(grep -cx "$s" "$T/cnt")" 1 "$where: $s recorded as succeeded, ran once"
    done
  else
    [ -s "$T/cnt" ] && fail "$where: steps ran although the run was never recorded"
  fi
  n=$((n + 1))
  [ "$n" -gt 40 ] && { fail "the failure points never reached the end"; break; }
done
[ "$points" -ge 10 ] || fail "only $points failure points"
echo "durable_fail_points: $points failure points"
done_testing
