#!/usr/bin/env bash
# pass_step: the built-in `pass` step type (issue #8). Its `with` values become its
# outputs; `if:`, `needs`, for_each/matrix, workflow outputs, --json and `runs show`
# treat it like any step; validate knows it without a registry entry and refuses the
# keys that mean nothing without a process; a plugin may not declare the name; a host
# SIGKILLed at store writes in the middle of a 2 600-step pass fan-out (one scheduler
# turn, which commits every PASS_COMMIT_EVERY = 1 024 pass steps: kill points just
# before, at and after those commits and between them) leaves every pass step recorded
# as both running and succeeded or as neither (never running alone), keeps what the
# commits before the kill committed, and `wfhost resume` then finishes the run with the
# same outputs. The example in docs/workflow-syntax.md runs and gives the outputs it
# shows.
. "$(dirname "$0")/../lib.sh"

H=(--home "$T/home")

# ---- outputs, needs, if, for_each, matrix, workflow outputs, --json ----
cat >"$T/flow.yaml" <<'Y'
name: passes
inputs:
  who: {default: world}
steps:
  - id: a
    uses: pass
    with:
      greeting: hello
      n: 3
      list: [1, two]
      who: ${{ inputs.who }}
  - id: b
    uses: pass
    needs: [a]
    with:
      msg: ${{ steps.a.outputs.greeting }} ${{ steps.a.outputs.who }}
      n: ${{ steps.a.outputs.n }}
  - id: never
    uses: pass
    needs: [b]
    if: ${{ steps.b.outputs.n == 4 }}
    with: {x: 1}
  - id: after_never
    uses: pass
    needs: [never]
    with: {x: 2}
  - id: each
    uses: pass
    for_each: ${{ steps.a.outputs.list }}
    needs: [a]
    with: {item: "${{ item }}", index: "${{ index }}"}
  - id: grid
    uses: pass
    matrix: {os: [linux, bsd]}
    with: {os: "${{ matrix.os }}"}
  - id: shell_reads
    uses: shell
    needs: [b]
    with:
      run: echo "got=${{ steps.b.outputs.msg }}" >> "$WFH_OUTPUT"
  - id: empty
    uses: pass
outputs:
  msg: ${{ steps.shell_reads.outputs.got }}
  n: ${{ steps.b.outputs.n }}
Y
run "$WFH" validate "${H[@]}" "$T/flow.yaml"
expect_rc 0 "validate knows pass without a registry entry"
run "$WFH" exec "${H[@]}" --json "$T/flow.yaml"
expect_rc 0 "exec"
cp "$T/out" "$T/run.json"
expect_eq "$(json "$T/run.json" '["steps"]["a"]["outputs"]')" \
  '{"greeting": "hello", "list": [1, "two"], "n": 3, "who": "world"}' "a's with became its outputs, types kept"
expect_eq "$(json "$T/run.json" '["steps"]["b"]["outputs"]["msg"]')" "hello world" "b read a's outputs"
expect_eq "$(json "$T/run.json" '["steps"]["never"]["status"]')" "skipped" "if: false skips a pass step"
expect_eq "$(json "$T/run.json" '["steps"]["after_never"]["status"]')" "skipped" "its dependent is skipped"
expect_eq "$(json "$T/run.json" '["steps"]["each"]["outputs"]')" \
  '[{"index": 0, "item": 1}, {"index": 1, "item": "two"}]' "for_each: one output object per item"
expect_eq "$(json "$T/run.json" '["steps"]["grid"]["outputs"]')" '[{"os": "linux"}, {"os": "bsd"}]' "matrix"
expect_eq "$(json "$T/run.json" '["outputs"]')" '{"msg": "hello world", "n": 3}' "workflow outputs"
expect_eq "$(json "$T/run.json" '["steps"]["empty"]["outputs"]')" '{}' "no with: no outputs"
expect_eq "$(json "$T/run.json" '["steps"]["a"]["attempts"]')" 1 "one attempt"
expect_eq "$(json "$T/run.json" '["steps"]["a"]["attempt_history"][0]["sandbox"]["profile"]')" "built-in" \
  "the attempt says it ran built in"
expect_in "$T/err" "ok +a " "display shows the pass step"
id=$(json "$T/run.json" '["run_id"]')
run "$WFH" runs show "${H[@]}" "$id"
expect_rc 0 "runs show"
expect_in "$T/out" "attempt 1: succeeded .* built-in pass" "runs show: built in, no plugin"
expect_in "$T/out" "sandbox: built-in \\(no process\\)" "runs show: no process"
expect_in "$T/out" "step never: skipped" "runs show: the skipped pass step"

# a `with` that cannot be evaluated fails the step (no retry), like any step's inputs
cat >"$T/bad.yaml" <<'Y'
name: passbad
steps:
  - id: a
    uses: pass
    with: {v: "${{ fromJSON('nope') }}"}
  - id: b
    uses: pass
    needs: [a]
Y
run "$WFH" exec "${H[@]}" --json "$T/bad.yaml"
expect_rc 1 "a pass step whose with fails"
expect_eq "$(json "$T/out" '["steps"]["a"]["status"]')" "failed" "it failed"
expect_eq "$(json "$T/out" '["steps"]["b"]["status"]')" "skipped" "its dependent skipped"
expect_in "$T/err" "bad.yaml:5:.*\\(in with of step a\\)" "the error names the position"

# ---- retry: a pass step skipped behind a failure runs on `wfhost retry` ----
cat >"$T/retry.yaml" <<Y
name: passretry
steps:
  - id: first
    uses: pass
    with: {v: 1}
  - id: flaky
    uses: shell
    needs: first
    with:
      run: test -f "$T/ok" && echo "w=fixed" >> "\$WFH_OUTPUT"
  - id: after
    uses: pass
    needs: flaky
    with: {got: "\${{ steps.flaky.outputs.w }}", v: "\${{ steps.first.outputs.v }}"}
Y
run "$WFH" exec "${H[@]}" --json "$T/retry.yaml"
expect_rc 1 "the flaky step fails first"
expect_eq "$(json "$T/out" '["steps"]["after"]["status"]')" "skipped" "the pass step after it is skipped"
rid=$(json "$T/out" '["run_id"]')
touch "$T/ok"
run "$WFH" retry "${H[@]}" --json "$rid"
expect_rc 0 "retry"
expect_eq "$(json "$T/out" '["steps"]["after"]["outputs"]')" '{"got": "fixed", "v": 1}' \
  "retry ran the pass step, with the kept step's outputs"
expect_eq "$(json "$T/out" '["steps"]["first"]["attempts"]')" 1 "the pass step that succeeded was kept"

# ---- validate: keys that need a process, versions, typos ----
cat >"$T/v.yaml" <<'Y'
name: passv
steps:
  - id: t
    uses: pass
    timeout: 5s
  - id: r
    uses: pass
    retry: {max_attempts: 3}
  - id: e
    uses: pass
    env: {A: b}
  - id: m
    uses: pass@1
  - id: typo
    uses: pas
Y
run "$WFH" validate "${H[@]}" "$T/v.yaml"
expect_rc 2 "validate refuses"
expect_in "$T/err" "v.yaml:3:.*step 't': a pass step runs no process and cannot time out" "timeout refused"
expect_in "$T/err" "step 'r': a pass step is not retried" "retry refused"
expect_in "$T/err" "step 'e': a pass step starts no process, so it has no environment" "env refused"
expect_in "$T/err" "v.yaml:13:.*step type 'pass' is built in and has no versions" "pass@1 refused"
expect_in "$T/err" "write .uses: pass." "hint for pass@1"
expect_in "$T/err" "unknown step type 'pas'" "typo"
expect_in "$T/err" "did you mean 'pass'" "typo suggests the built-in"
# defaults apply to the steps they can apply to; pass steps are not refused for them
cat >"$T/d.yaml" <<'Y'
name: passd
defaults: {timeout: 5s, retry: {max_attempts: 2}}
limits: {pass: 1}
steps:
  - id: a
    uses: pass
    with: {v: 1}
Y
run "$WFH" exec "${H[@]}" --json "$T/d.yaml"
expect_rc 0 "defaults and limits do not refuse pass steps"

# ---- schema and plugin info say it is built in ----
run "$WFH" schema --no-plugins
expect_rc 0 "schema"
expect_eq "$(json "$T/out" '["definitions"]["step"]["allOf"][0]["if"]["properties"]["uses"]["const"]')" pass \
  "schema: a rule for pass"
run "$WFH" plugin info pass
expect_rc 0 "plugin info pass"
expect_in "$T/out" "pass: step type built into wfhost" "plugin info says built in"
run "$WFH" plugin info --json pass
expect_rc 0 "plugin info --json pass"
expect_eq "$(json "$T/out" '["built_in"]')" true "plugin info --json says built in"

# ---- a plugin may not declare the reserved name ----
CC=${CC:-cc}
sed -e 's/"noop",$/"pass",/' -e 's/^    "noop",/    "passy",/' "$WFH_SRC/plugins/noop/noop.c" >"$T/passy.c"
grep -q '"pass",' "$T/passy.c" || fail "could not make the fixture's step type 'pass'"
if "$CC" -std=c11 -Wall -Wextra -Werror -I"$WFH_SRC/include" -fPIC -fvisibility=hidden -shared \
  -o "$T/passy.so" "$T/passy.c" 2>"$T/cc.err"; then
  run "$WFH" plugin install "$T/passy.so"
  [ "$rc" != 0 ] || fail "a plugin declaring step type 'pass' was installed"
  expect_in "$T/err" "step type 'pass' is built into wfhost \\(the name is reserved\\)" "install refusal"
  run "$WFH" plugin check --no-run "$T/passy.so"
  expect_rc 1 "plugin check finds what install refuses"
  expect_in "$T/out" "FAIL  pass: name: step type 'pass' is built into wfhost" "plugin check names the reserved type"
  run "$WFH" plugin list
  expect_not_in "$T/out" "passy" "nothing was installed"
else
  fail "could not compile the fixture: $(head -3 "$T/cc.err")"
fi

# ---- SIGKILL mid-run of a pass fan-out, then resume ----
# Store writes of this run: 2 for its creation, then 2 per pass step (running,
# succeeded), all in one turn, so a turn-long group would be all or nothing; the
# scheduler commits it every 1 024 pass steps (after writes 2 + 2 * 1024 = 2050 and
# 4098), and at the end of the turn. Points at and around those, between them, and at
# the end (N+: just after write N committed).
n=2600
python3 - "$T/fan.yaml" "$n" <<'PY'
import sys
n = int(sys.argv[2])
out = ["name: passfan", "steps:"]
for i in range(1, n + 1):
    out += [f"  - id: p{i}", "    uses: pass", f"    with: {{v: {i}}}"]
out += ["  - id: join", "    uses: pass", "    needs: [" + ", ".join(f"p{i}" for i in range(1, n + 1)) + "]",
        f"    with: {{first: '${{{{ steps.p1.outputs.v }}}}', last: '${{{{ steps.p{n}.outputs.v }}}}'}}",
        "outputs:", "  joined: ${{ steps.join.outputs.first }}-${{ steps.join.outputs.last }}"]
open(sys.argv[1], "w").write("\n".join(out) + "\n")
PY
check_store() { # check_store RUN_ID: no pass step is recorded as running alone; then
  # how many are recorded as succeeded
  "$WFH" runs show "${H[@]}" --json "$1" >"$T/show.json" 2>/dev/null || { echo "no run"; return; }
  python3 - "$T/show.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
bad = [s["id"] + ":" + s["status"] for s in d["steps"] if s["status"] not in ("pending", "queued", "succeeded")]
print(" ".join(bad[:5]) if bad else "ok %d" % sum(s["status"] == "succeeded" for s in d["steps"]))
PY
}
points=0
mid=0 # kill points that found part of the turn committed (a commit within the turn)
for k in 1 2 3 40 2049 2050 2051 2050+ 3001 4097 4098+ 4099 5201 5202 5203 5204 5205 5206 \
  5202+ 5203+ 5204+ 5205+; do
  WFH_DURABLE_KILL_AT="$k" "$WFH" exec "${H[@]}" "$T/fan.yaml" >/dev/null 2>"$T/err"
  rc=$?
  [ "$rc" = 0 ] && continue # past the last write
  where="kill at write $k"
  if [ "$rc" != 137 ]; then fail "$where: exit status $rc, expected 137"; head -3 "$T/err" >&2; continue; fi
  id=$(head -n 1 "$T/err" | sed -n 's/^run \([0-9A-Z]*\) (passfan)$/\1/p')
  [ -n "$id" ] || { fail "$where: no run id"; continue; }
  got=$(check_store "$id")
  [ "$got" = "no run" ] && continue # killed before the run was recorded
  points=$((points + 1))
  case "$got" in
  "ok "*) ;;
  *) fail "$where: pass steps recorded in flight: $got"; continue ;;
  esac
  done_n=${got#ok }
  [ "$done_n" -gt 0 ] && [ "$done_n" -lt "$n" ] && mid=$((mid + 1))
  # a kill past a commit within the turn keeps what that commit held
  case "$k" in
  2050+ | 2051 | 3001 | 4097) [ "$done_n" -ge 1024 ] || fail "$where: $done_n steps kept, expected the first commit's" ;;
  4098+ | 4099 | 5201) [ "$done_n" -ge 2048 ] || fail "$where: $done_n steps kept, expected the second commit's" ;;
  esac
  [ "$(json "$T/show.json" '["status"]')" = succeeded ] && continue
  run "$WFH" resume "${H[@]}" --json "$id"
  expect_rc 0 "$where: resume"
  expect_eq "$(json "$T/out" '["outputs"]["joined"]')" "1-$n" "$where: outputs after resume"
  "$WFH" runs show "${H[@]}" --json "$id" >"$T/show.json"
  expect_eq "$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))
print(d["status"], sum(s["status"] == "succeeded" for s in d["steps"]))' "$T/show.json")" \
    "succeeded $((n + 1))" "$where: the store has every step succeeded"
done
[ "$points" -ge 12 ] || fail "only $points kill points exercised"
[ "$mid" -ge 6 ] || fail "only $mid kill points found part of the turn committed"
echo "pass_step: $points kill points resumed, $mid within the turn's commits"

# ---- the documentation's example runs and gives what it shows ----
python3 - "$WFH_SRC/docs/workflow-syntax.md" "$T/doc.yaml" <<'PY'
import re, sys
for b in re.findall(r"^```yaml\n(.*?)^```", open(sys.argv[1]).read(), re.S | re.M):
    if b.startswith("name: pass-example"):
        open(sys.argv[2], "w").write(b)
PY
[ -f "$T/doc.yaml" ] || fail "docs/workflow-syntax.md has no pass-example"
run "$WFH" exec "${H[@]}" --json "$T/doc.yaml"
expect_rc 0 "the documentation's example"
expect_eq "$(json "$T/out" '["outputs"]')" '{"tag": "v1.4.2-linux", "targets": 2}' "its outputs as documented"
done_testing
