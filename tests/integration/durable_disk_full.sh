#!/usr/bin/env bash
# durable_disk_full: the run store's disk fills up in the middle of a run (simulated
# with a file size limit, SIGXFSZ ignored, so writes fail with EFBIG as on a full
# disk). The host stops the run with one line naming the store and exit status 4,
# never crashes, and the store never calls the run succeeded. With space again,
# `wfhost retry` finishes it without re-running the steps whose success was recorded.
# A corrupt store is refused the same way, before any step runs.
. "$(dirname "$0")/../lib.sh"

H=(--home "$T/home")
{
  echo "name: big"
  echo "env: {CNT: $T/cnt}"
  echo "steps:"
  prev=""
  for i in $(seq 12); do
    echo "  - id: s$i"
    echo "    uses: shell"
    [ -n "$prev" ] && echo "    needs: [$prev]"
    # ~30 KB of captured stdout per step: each success is a large store write.
    echo "    with: {run: 'echo s$i >> \"\$CNT\"; head -c 30000 /dev/zero | tr \"\\\\0\" x; echo; echo v=$i >> \"\$WFH_OUTPUT\"'}"
    prev=s$i
  done
} >"$T/big.yaml"

# A store with one small run in it, then a limit a few steps' outputs above its size.
cat >"$T/small.yaml" <<'Y'
name: small
steps:
  - id: one
    uses: shell
    with: {run: "true"}
Y
run "$WFH" exec "${H[@]}" "$T/small.yaml"
expect_rc 0 "a small run creates the store"
size_kb=$(( $(stat -c %s "$T/home/runs.db") / 1024 ))
limit=$((size_kb + 150))
(
  trap '' XFSZ
  ulimit -f "$limit"
  exec "$WFH" exec "${H[@]}" "$T/big.yaml"
) >"$T/out" 2>"$T/err"
rc=$?
expect_rc 4 "a run whose store fills up"
expect_in "$T/err" "^wfhost: run store .*runs\\.db" "one line naming the store"
expect_not_in "$T/err" "Sanitizer|core dumped|Segmentation" "no crash"
id=$(head -n 1 "$T/err" | sed -n 's/^run \([0-9A-Z]*\) (big)$/\1/p')
"$WFH" runs show "${H[@]}" --json "$id" >"$T/show.json"
status=$(json "$T/show.json" '["status"]')
[ "$status" = succeeded ] && fail "a run whose store filled up is recorded as succeeded"
recorded=$(python3 -c 'import json,sys; print(" ".join(s["id"] for s in json.load(open(sys.argv[1]))["steps"] if s["status"]=="succeeded"))' "$T/show.json")
n_recorded=$(echo "$recorded" | wc -w)
[ "$n_recorded" -lt 12 ] || fail "every step was recorded although the store was full"

# Space again: finish the run (retry if its failure was recorded, else resume).
if [ "$status" = running ]; then cmd=resume; else cmd=retry; fi
run "$WFH" "$cmd" "${H[@]}" --json "$id"
expect_rc 0 "$cmd once there is space"
expect_eq "$(json "$T/out" '["steps"]["s12"]["outputs"]["v"]')" 12 "the last step's output"
for s in $recorded; do
  expect_eq "$(grep -cx "$s" "$T/cnt")" 1 "$s was recorded as succeeded and ran once"
done
expect_eq "$("$WFH" runs show "${H[@]}" --json "$id" | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')" \
  succeeded "the store has the run as succeeded"

# A corrupt store: one line, exit 4, and no step runs unrecorded.
cp -a "$WFH_TEST_REGISTRY" "$T/bad" # plugins come from its registry
head -c 8192 /dev/urandom >"$T/bad/runs.db"
rm -f "$T/cnt"
run "$WFH" exec --home "$T/bad" "$T/big.yaml"
expect_rc 4 "exec on a corrupt store"
expect_eq "$(wc -l <"$T/err")" 1 "one line"
expect_in "$T/err" "^wfhost: run store .*bad/runs\.db is corrupt" "naming the store"
[ -e "$T/cnt" ] && fail "a step ran although its run could not be recorded"
run "$WFH" resume --home "$T/bad" 01M811PQP11TVDMQ8N4CA045KF
expect_rc 4 "resume on a corrupt store"
done_testing
