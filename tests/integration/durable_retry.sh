#!/usr/bin/env bash
# durable_retry: `wfhost retry RUN_ID` re-runs only the failed and skipped steps of a
# finished run and keeps the successful ones (their side effects happen once, their
# outputs feed the re-run steps); attempt numbers count on in the store. A changed
# workflow file is refused, and with --allow-changed only the changed steps (and what
# is downstream of them) run again. Resume and retry refuse runs they do not apply to,
# with one line and exit status 2, and never create a store.
. "$(dirname "$0")/../lib.sh"

H=(--home "$T/home")
write_flow() { # write_flow INDEP-TEXT
  cat >"$T/flow.yaml" <<Y
name: flaky
env:
  CNT: $T/cnt
  FIXED: $T/fixed
steps:
  - id: ok1
    uses: shell
    with:
      run: echo ok1 >> "\$CNT"; echo "v=one" >> "\$WFH_OUTPUT"
  - id: flaky
    uses: shell
    needs: [ok1]
    env: {IN: "\${{ steps.ok1.outputs.v }}"}
    with:
      run: echo flaky >> "\$CNT"; test -e "\$FIXED" || exit 3; echo "v=\$IN-flaky" >> "\$WFH_OUTPUT"
  - id: after
    uses: shell
    needs: [flaky]
    env: {IN: "\${{ steps.flaky.outputs.v }}"}
    with:
      run: echo after >> "\$CNT"; echo "v=\$IN-after" >> "\$WFH_OUTPUT"
  - id: indep
    uses: shell
    with:
      run: echo indep >> "\$CNT"; echo "v=$1" >> "\$WFH_OUTPUT"
Y
}
count() { grep -cx "$1" "$T/cnt" 2>/dev/null || true; }
show() { "$WFH" runs show "${H[@]}" --json "$1" >"$T/show.json"; }
step_field() { # step_field STEP EXPR  (on $T/show.json)
  python3 -c 'import json,sys; s=[s for s in json.load(open(sys.argv[1]))["steps"] if s["id"]==sys.argv[2]][0]; print(eval(sys.argv[3]))' \
    "$T/show.json" "$1" "$2"
}

write_flow first
run "$WFH" exec "${H[@]}" --json "$T/flow.yaml"
expect_rc 1 "the first run fails at flaky"
id=$(json "$T/out" '["run_id"]')
expect_in "$T/err" "^run $id \\(flaky\\)" "the run id is the first stderr line"
show "$id"
expect_eq "$(json "$T/show.json" '["status"]')" failed "the store has the run as failed"
expect_eq "$(step_field flaky 's["status"]')" failed "flaky failed"
expect_eq "$(step_field after 's["status"]')" skipped "after was skipped"

run "$WFH" resume "${H[@]}" "$id"
expect_rc 2 "resume of a finished run"
expect_in "$T/err" "has finished \\(failed\\); .wfhost retry $id." "resume points to retry"

touch "$T/fixed"
run "$WFH" retry "${H[@]}" --json "$id"
expect_rc 0 "retry once flaky can succeed"
expect_eq "$(json "$T/out" '["run_id"]')" "$id" "retry keeps the run id"
expect_eq "$(json "$T/out" '["steps"]["after"]["outputs"]["v"]')" "one-flaky-after" \
  "the re-run steps see the kept step's outputs"
expect_eq "$(count ok1) $(count indep) $(count flaky) $(count after)" "1 1 2 1" \
  "successful steps were not run again; flaky ran twice, after once"
show "$id"
expect_eq "$(json "$T/show.json" '["status"]')" succeeded "the store has the retried run as succeeded"
expect_eq "$(step_field flaky '" ".join(a["status"] for a in s["attempts"])')" "failed succeeded" \
  "flaky's attempts 1 and 2 are both kept"
expect_eq "$(step_field flaky '" ".join(str(a["attempt"]) for a in s["attempts"])')" "1 2" \
  "the retry's attempt is numbered 2"

run "$WFH" retry "${H[@]}" "$id"
expect_rc 0 "retry of a succeeded run"
expect_in "$T/err" "already succeeded: nothing to retry" "nothing to retry"
expect_eq "$(count ok1)" 1 "and nothing ran"

# A changed workflow file.
rm -f "$T/fixed" "$T/cnt"
write_flow first
run "$WFH" exec "${H[@]}" "$T/flow.yaml"
expect_rc 1 "second run fails at flaky"
id2=$(head -n 1 "$T/err" | sed -n 's/^run \([0-9A-Z]*\) (flaky)$/\1/p')
write_flow second
touch "$T/fixed"
run "$WFH" retry "${H[@]}" "$id2"
expect_rc 2 "retry with a changed workflow file"
expect_in "$T/err" "changed since the run started.*--allow-changed" "the refusal says what to do"
expect_eq "$(count flaky)" 1 "nothing ran after the refusal"
run "$WFH" retry "${H[@]}" --json --allow-changed "$id2"
expect_rc 0 "retry --allow-changed"
expect_in "$T/err" "1 of 4 step" "one result kept (ok1): indep changed, flaky had failed"
expect_eq "$(count ok1) $(count indep)" "1 2" "unchanged ok1 kept; changed indep ran again"
expect_eq "$(json "$T/out" '["steps"]["indep"]["outputs"]["v"]')" second "indep's new output"

# The workflow file moved: --file names it, and its hash is still checked.
rm -f "$T/fixed" "$T/cnt"
write_flow first
run "$WFH" exec "${H[@]}" "$T/flow.yaml"
id4=$(head -n 1 "$T/err" | sed -n 's/^run \([0-9A-Z]*\) (flaky)$/\1/p')
mv "$T/flow.yaml" "$T/moved.yaml"
run "$WFH" retry "${H[@]}" "$id4"
expect_rc 2 "retry when the workflow file is gone"
expect_in "$T/err" "flow\.yaml" "the message names the recorded file"
touch "$T/fixed"
run "$WFH" retry "${H[@]}" --file "$T/moved.yaml" "$id4"
expect_rc 0 "retry --file with the moved file"
write_flow second
run "$WFH" retry "${H[@]}" --file "$T/flow.yaml" "$id4"
expect_rc 0 "a finished run: nothing to check"
rm -f "$T/fixed"
run "$WFH" exec "${H[@]}" "$T/moved.yaml"
id5=$(head -n 1 "$T/err" | sed -n 's/^run \([0-9A-Z]*\) (flaky)$/\1/p')
run "$WFH" retry "${H[@]}" --file "$T/flow.yaml" "$id5"
expect_rc 2 "--file with different contents is refused"
expect_in "$T/err" "changed since the run started" "as a changed file"

# Log lines a plugin streams are kept with their attempt (`wfhost runs logs`).
printf 'name: logs\nsteps:\n  - id: talk\n    uses: echo\n    with: {n: 1}\n' >"$T/logs.yaml"
run "$WFH" exec "${H[@]}" --json "$T/logs.yaml"
expect_rc 0 "a run whose step logs"
idl=$(json "$T/out" '["run_id"]')
run "$WFH" runs logs "${H[@]}" --json "$idl" talk
expect_eq "$(python3 -c 'import json,sys; print([(l["step"], l["attempt"], l["msg"]) for l in json.load(open(sys.argv[1]))][0])' "$T/out")" \
  "('talk', 1, 'echo: starting')" "the step's log line, with its attempt"

# A run still going in another process of this machine is not resumed behind its back.
cat >"$T/long.yaml" <<Y
name: long
steps:
  - id: wait
    uses: shell
    with: {run: 'touch "$T/long.started"; sleep 2'}
Y
"$WFH" exec "${H[@]}" "$T/long.yaml" >/dev/null 2>"$T/err.l" &
host=$!
for _ in $(seq 100); do [ -e "$T/long.started" ] && break; sleep 0.05; done
idlong=$(head -n 1 "$T/err.l" | sed -n 's/^run \([0-9A-Z]*\) (long)$/\1/p')
run "$WFH" resume "${H[@]}" "$idlong"
expect_rc 2 "resume of a run another process is running"
expect_in "$T/err" "run $idlong is being run by another wfhost process on this machine \(pid $host\)" \
  "the refusal names the process"
wait "$host" || fail "the long run failed"
run "$WFH" resume "${H[@]}" "$idlong"
expect_rc 0 "resume once it finished"
expect_in "$T/err" "already succeeded" "nothing left to do"

# Refusals: unknown run, a run that has not finished, a home without a store.
run "$WFH" resume "${H[@]}" 01ZZZZZZZZZZZZZZZZZZZZZZZZ
[ "$rc" = 0 ] && fail "resume of an unknown run succeeded"
expect_in "$T/err" "01ZZZZZZZZZZZZZZZZZZZZZZZZ" "the message names the run"
[ "$(wc -l <"$T/err")" = 1 ] || fail "one line for an unknown run: $(cat "$T/err")"
rm -f "$T/cnt"
WFH_DURABLE_KILL_AT=4+ "$WFH" exec "${H[@]}" "$T/flow.yaml" >/dev/null 2>"$T/err"
id3=$(head -n 1 "$T/err" | sed -n 's/^run \([0-9A-Z]*\) (flaky)$/\1/p')
run "$WFH" retry "${H[@]}" "$id3"
expect_rc 2 "retry of a run that has not finished"
expect_in "$T/err" "has not finished.*wfhost resume $id3" "retry points to resume"
run "$WFH" resume --home "$T/empty" "$id3"
[ "$rc" = 0 ] && fail "resume in a home without a store succeeded"
[ -e "$T/empty/runs.db" ] && fail "resume created a store"
run "$WFH" resume "${H[@]}" "$id3" extra
expect_rc 2 "two run ids"
# The host killed during a retry wait: resume starts the next attempt, numbered after
# the recorded ones, and the step's retry policy counts them (max_attempts: 2 leaves
# exactly one more attempt after the wait).
cat >"$T/wait.yaml" <<Y
name: waiting
steps:
  - id: wobbly
    uses: shell
    retry: {max_attempts: 2, initial: 30s}
    with:
      run: |
        echo "attempt-\${{ run.attempt }}" >> "$T/wcnt"
        if [ ! -e "$T/wflag" ]; then touch "$T/wflag"; exit 1; fi
        echo "v=\${{ run.attempt }}" >> "\$WFH_OUTPUT"
  - id: never
    uses: shell
    retry: {max_attempts: 2, initial: 30s}
    with:
      run: echo never >> "$T/wcnt"; exit 1
Y
rm -f "$T/wcnt" "$T/wflag"
"$WFH" exec "${H[@]}" "$T/wait.yaml" >/dev/null 2>"$T/err.w" &
host=$!
for _ in $(seq 200); do [ "$(grep -c . "$T/wcnt" 2>/dev/null)" = 2 ] && break; sleep 0.05; done
sleep 0.3 # both first attempts' failures recorded: the steps wait 30s to retry
kill -9 "$host"
wait "$host" 2>/dev/null
idw=$(head -n 1 "$T/err.w" | sed -n 's/^run \([0-9A-Z]*\) (waiting)$/\1/p')
"$WFH" runs show "${H[@]}" --json "$idw" >"$T/show.json"
expect_eq "$(step_field wobbly 's["status"]')" retrying "the store has wobbly waiting to retry"
run timeout 20 "$WFH" resume "${H[@]}" --json "$idw"
expect_rc 1 "resume after a kill in the retry wait (never fails for good)"
expect_eq "$(json "$T/out" '["steps"]["wobbly"]["outputs"]["v"]')" 2 "wobbly's resumed attempt is attempt 2"
expect_eq "$(grep -c never "$T/wcnt")" 2 "never: one attempt before the kill, one after, then its policy is spent"
"$WFH" runs show "${H[@]}" --json "$idw" >"$T/show.json"
expect_eq "$(step_field wobbly '" ".join("%d:%s" % (a["attempt"], a["status"]) for a in s["attempts"])')" \
  "1:failed 2:succeeded" "wobbly's attempts in the store"
expect_eq "$(step_field never 's["status"]')" failed "never failed for good"

run "$WFH" resume "${H[@]}" --help
expect_rc 0 "resume --help"
expect_in "$T/out" "usage: wfhost resume RUN_ID" "resume usage"
run "$WFH" retry --help
expect_in "$T/out" "usage: wfhost retry RUN_ID" "retry usage"
done_testing
