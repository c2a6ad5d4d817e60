#!/usr/bin/env bash
# durable_logs_group: log lines under group commit (issue #8). A line that arrives while
# the turn's group holds no state change (most do: the host reads its pipes before it
# reaps) goes through the log handle, without an fsync of its own; one that arrives
# while it does joins the group (its handle has the write lock: the log handle would
# wait for it). Every line is kept, none is reported lost, and the states are what
# they would be without the lines: 60 for_each items and 20 plain steps at -j 4, each
# logging one line (the shell step warns about an output it ignores). A host killed
# just before an attempt's end is recorded keeps the attempt's line (it came in a
# turn of its own, through the log handle), and resume completes the run.
. "$(dirname "$0")/../lib.sh"

H=(--home "$T/home")
python3 - "$T/flow.yaml" <<'PY'
import sys
out = ["name: logs", "steps:",
       "  - id: list", "    uses: pass", "    with: {items: [" + ", ".join(str(i) for i in range(60)) + "]}",
       "  - id: each", "    uses: shell", "    needs: [list]",
       "    for_each: ${{ steps.list.outputs.items }}",
       "    with: {run: 'echo stdout=${{ item }} >> \"$WFH_OUTPUT\"'}"]
for i in range(20):
    out += [f"  - id: s{i}", "    uses: shell", f"    with: {{run: 'echo stdout={i} >> \"$WFH_OUTPUT\"'}}"]
open(sys.argv[1], "w").write("\n".join(out) + "\n")
PY
run "$WFH" exec "${H[@]}" -j 4 --json "$T/flow.yaml"
expect_rc 0 "exec"
expect_not_in "$T/err" "log lines are not being kept" "no line was lost"
id=$(json "$T/out" '["run_id"]')
run "$WFH" runs logs "${H[@]}" "$id"
expect_rc 0 "runs logs"
expect_eq "$(grep -c "sets 'stdout', which is a built-in output" "$T/out")" 80 "every line is in the store"
expect_eq "$(grep -c '^each#' "$T/out")" 60 "one line per item"
run "$WFH" runs show "${H[@]}" --json "$id"
expect_eq "$(json "$T/out" '["status"]')" succeeded "the store says the run succeeded"

# A chain of two logging steps, killed before the first attempt's end is recorded
# (write 4: created, running, a running, then a's end): a's line is in the store
# (it came in its own turn, before the kill), and resume runs a again and then b.
cat >"$T/chain.yaml" <<'Y'
name: chain
steps:
  - id: a
    uses: shell
    with: {run: 'echo stdout=x >> "$WFH_OUTPUT"'}
  - id: b
    uses: shell
    needs: [a]
    with: {run: 'echo stdout=y >> "$WFH_OUTPUT"'}
Y
WFH_DURABLE_KILL_AT=4 "$WFH" exec "${H[@]}" "$T/chain.yaml" >/dev/null 2>"$T/err"
rc=$?
expect_rc 137 "killed at write 4"
id=$(head -n 1 "$T/err" | sed -n 's/^run \([0-9A-Z]*\) (chain)$/\1/p')
[ -n "$id" ] || fail "no run id"
run "$WFH" runs show "${H[@]}" --json "$id"
expect_eq "$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))
print(" ".join(s["id"] + ":" + s["status"] for s in d["steps"]))' "$T/out")" "a:running" \
  "a's end was not recorded"
run "$WFH" runs logs "${H[@]}" "$id"
expect_eq "$(grep -c '^a#1 .*built-in output' "$T/out")" 1 "a's line was kept"
run "$WFH" resume "${H[@]}" --json "$id"
expect_rc 0 "resume"
run "$WFH" runs logs "${H[@]}" "$id"
expect_eq "$(grep -c 'built-in output' "$T/out")" 3 "a's line twice (two attempts), b's once"
done_testing
