#!/usr/bin/env bash
# exec_hello: the issue's hello workflow end to end - outputs passed between steps,
# env from the workflow and the step (step wins), the run id on the first stderr line
# and in --json, the --json document's shape, and an empty stdout without --json.
. "$(dirname "$0")/../lib.sh"

cat >"$T/hello.yaml" <<'Y'
name: hello
env:
  GREETING: hello
  WHO: workflow
steps:
  - id: who
    uses: shell
    with:
      run: echo "name=world" >> "$WFH_OUTPUT"
  - id: greet
    uses: shell@1
    needs: [who]
    env:
      WHO: step
    with:
      run: |
        echo "$GREETING ${{ steps.who.outputs.name }}"
        echo "who=$WHO" >> "$WFH_OUTPUT"
        echo "run=${{ run.id }}" >> "$WFH_OUTPUT"
        echo "status=${{ steps.who.status }}" >> "$WFH_OUTPUT"
Y

cd "$T"
run "$WFH" exec hello.yaml
expect_rc 0 "hello runs"
[ -s "$T/out" ] && fail "stdout must stay empty without --json: $(head -c 200 "$T/out")"
first=$(head -n 1 "$T/err")
case "$first" in
  "run "??????????????????????????" (hello)") ;;
  *) fail "first stderr line is '$first', expected 'run <26-char id> (hello)'" ;;
esac
expect_in "$T/err" '^greet \| hello world$' "greet's output line is prefixed with its id"
expect_in "$T/err" '\[2/2\] ok +greet' "plain progress lines when not a terminal"

run "$WFH" exec --json hello.yaml
expect_rc 0 "hello --json"
expect_eq "$(json "$T/out" '["status"]')" succeeded "run status"
expect_eq "$(json "$T/out" '["workflow"]')" hello "workflow name"
id=$(json "$T/out" '["run_id"]')
expect_eq "${#id}" 26 "run id length"
expect_in "$T/err" "^run $id \\(hello\\)" "stderr names the same run id"
expect_eq "$(json "$T/out" '["steps"]["who"]["outputs"]["name"]')" world "who's output"
expect_eq "$(json "$T/out" '["steps"]["greet"]["status"]')" succeeded "greet status"
expect_eq "$(json "$T/out" '["steps"]["greet"]["attempts"]')" 1 "greet attempts"
expect_eq "$(json "$T/out" '["steps"]["greet"]["error"]')" null "greet error"
expect_eq "$(json "$T/out" '["steps"]["greet"]["outputs"]["who"]')" step "step env wins over workflow env"
expect_eq "$(json "$T/out" '["steps"]["greet"]["outputs"]["run"]')" "$id" "run.id context"
expect_eq "$(json "$T/out" '["steps"]["greet"]["outputs"]["status"]')" success "steps.<id>.status context"
json "$T/out" '["steps"]["greet"]["outputs"]["stdout"]' | grep -q "hello world" ||
  fail "greet's stdout output: $(json "$T/out" '["steps"]["greet"]["outputs"]')"
python3 - "$T/out" <<'P' || fail "--json shape"
import json, sys
d = json.load(open(sys.argv[1]))
assert set(d) >= {"run_id", "workflow", "status", "steps", "started_at", "duration_ms"}, d.keys()
for sid, s in d["steps"].items():
    assert set(s) >= {"status", "attempts", "outputs", "error", "started_at", "duration_ms"}, (sid, s)
    assert isinstance(s["outputs"], dict) and isinstance(s["duration_ms"], int), s
P

# Two runs get different ids.
run "$WFH" exec --json hello.yaml
id2=$(json "$T/out" '["run_id"]')
[ "$id2" != "$id" ] || fail "two runs share the id $id"

done_testing
