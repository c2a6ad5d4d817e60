# A plugin that writes on the result channel itself, through `wfhost exec`: garbage
# fails its step with a precise reason while the run and the other steps carry on, and a
# forged report ("I ran under strict") never reaches the attempt's record: only the
# supervisor's final word, written outside the sandbox after the step's tree is gone,
# is kept (in --json and in the run store), whatever the step claimed.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/hostile/sandbox_lib.sh"
install_plugin "$HOSTILE"
cat >"$T/flow.yaml" <<'Y'
name: spoof
steps:
  - id: junk
    uses: hostile
    with: {case: garbage, arg: ""}
  - id: forge
    uses: hostile
    with: {case: forge, arg: ""}
  - id: honest
    uses: hostile
    with: {case: ok, arg: ""}
Y
run "$WFH" exec --json "$T/flow.yaml"
expect_rc 1 "a run with a step that wrote garbage fails"
expect_eq "$(json "$T/out" '["steps"]["junk"]["status"]')" failed "garbage on the channel"
expect_in "$T/out" "plugin 'hostile': the step runner sent a malformed line \\(.*garbage\\{\\)" \
  "the reason names it"
expect_eq "$(json "$T/out" '["steps"]["honest"]["status"]')" succeeded "the other steps carry on"
for s in junk forge honest; do
  expect_eq "$(json "$T/out" "[\"steps\"][\"$s\"][\"attempt_history\"][0][\"sandbox\"][\"seccomp\"]")" \
    true "$s: the supervisor's report is kept"
done
expect_not_in "$T/out" '"forged"' "a report forged by the step is never kept"
id=$(json "$T/out" '["run_id"]')
run "$WFH" runs show --json "$id"
expect_rc 0 "runs show"
expect_not_in "$T/out" '"forged"' "nor stored"
python3 - "$T/out" <<'PY' || fail "every stored attempt has the supervisor's strict report"
import json, sys
d = json.load(open(sys.argv[1]))
reps = [a["sandbox"] for st in d["steps"] for a in st["attempts"]]
assert len(reps) == 3 and all(r and r["profile"] == "strict" and r["seccomp"] and "forged" not in r for r in reps), reps
PY
# Under profile none there is no supervisor: nothing is promised, and a step claiming
# strict is not believed.
printf 'profile hostile none\n' >"$T/none.policy"
run "$WFH" exec --json --policy "$T/none.policy" "$T/flow.yaml"
expect_eq "$(json "$T/out" '["steps"]["forge"]["attempt_history"][0].get("sandbox")')" null \
  "profile none: a forged strict report is dropped"
expect_eq "$(json "$T/out" '["steps"]["honest"]["attempt_history"][0]["sandbox"]["profile"]')" none \
  "profile none: the runner's own report says none"
expect_no_leftovers "forge"
done_testing
