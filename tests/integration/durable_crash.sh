#!/usr/bin/env bash
# durable_crash: a host SIGKILLed at every point of a run's life, then `wfhost resume`.
# The host kills itself just before, or just after, its Nth run store write
# ($WFH_DURABLE_KILL_AT, core/durable.c), for every N of an uninterrupted run: before a
# step starts, with an attempt recorded as running, right after an attempt's success
# was recorded but before its dependents start, before the run's end is recorded. Each
# step appends its id to a counter file; after the resume, a step recorded as succeeded
# when the host died has run exactly once, every step has run, and the final outputs
# equal those of an uninterrupted run. A real SIGKILL from outside, mid-attempt, is
# also resumed: the attempt in flight is recorded as failed, the step runs again as
# attempt 2 with the same idempotency key, and the killed attempt's runner died with
# the host instead of finishing its side effect behind the resumed run's back.
. "$(dirname "$0")/../lib.sh"

H=(--home "$T/home")
cat >"$T/flow.yaml" <<Y
name: crashy
env:
  CNT: $T/cnt
steps:
  - id: a
    uses: shell
    with:
      run: echo a >> "\$CNT"; echo "v=A" >> "\$WFH_OUTPUT"
  - id: b
    uses: shell
    needs: [a]
    env: {IN: "\${{ steps.a.outputs.v }}"}
    with:
      run: echo b >> "\$CNT"; echo "v=\${IN}B" >> "\$WFH_OUTPUT"
  - id: c
    uses: shell
    needs: [a]
    env: {IN: "\${{ steps.a.outputs.v }}"}
    with:
      run: echo c >> "\$CNT"; echo "v=\${IN}C" >> "\$WFH_OUTPUT"
  - id: d
    uses: shell
    needs: [b, c]
    env: {IN: "\${{ steps.b.outputs.v }}+\${{ steps.c.outputs.v }}"}
    with:
      run: echo d >> "\$CNT"; echo "v=\${IN}D" >> "\$WFH_OUTPUT"
  - id: lone
    uses: shell
    with:
      run: echo lone >> "\$CNT"; echo "v=L" >> "\$WFH_OUTPUT"
Y
steps="a b c d lone"
outputs() { # outputs JSON-FILE: "a=A b=AB ..." from a --json report
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))["steps"]
print(" ".join("%s=%s" % (k, d[k]["outputs"].get("v")) for k in sorted(d)))' "$1"
}
store_outputs() { # store_outputs RUNS-SHOW-JSON: the same, as the store has them
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))["steps"]
print(" ".join("%s=%s" % (s["id"], (s["outputs"] or {}).get("v")) for s in sorted(d, key=lambda s: s["id"])))' "$1"
}
store_state() { # store_state RUN_ID: "<run status> <steps the store has as succeeded>"
  "$WFH" runs show "${H[@]}" --json "$1" | python3 -c 'import json,sys; d=json.load(sys.stdin)
print(d["status"], " ".join(sorted(s["id"] for s in d["steps"] if s["status"] == "succeeded")))'
}
count() { grep -cx "$1" "$T/cnt" 2>/dev/null || true; }

# The uninterrupted run: the outputs every resumed run must end with.
run "$WFH" exec "${H[@]}" --json "$T/flow.yaml"
expect_rc 0 "uninterrupted run"
want=$(outputs "$T/out")
expect_eq "$want" "a=A b=AB c=AC d=AB+ACD lone=L" "uninterrupted outputs"
for s in $steps; do expect_eq "$(count $s)" 1 "uninterrupted: $s ran once"; done

# durable_crash_after.sh runs this file with DURABLE_KILL_MODES=after: two tests, so
# each stays well inside ctest's time limit on a loaded sanitizer build.
kill_modes=${DURABLE_KILL_MODES:-before}
points=0
for kill_mode in $kill_modes; do
  mode=""
  [ "$kill_mode" = after ] && mode="+"
  n=1
  while :; do
    rm -f "$T/cnt"
    WFH_DURABLE_KILL_AT="$n$mode" "$WFH" exec "${H[@]}" "$T/flow.yaml" >"$T/out" 2>"$T/err"
    rc=$?
    [ "$rc" = 0 ] && break # past the last write: the run finished
    where="kill at write $n$mode"
    if [ "$rc" != 137 ]; then fail "$where: exit status $rc, expected 137 (SIGKILL)"; cat "$T/err" >&2; break; fi
    points=$((points + 1))
    id=$(head -n 1 "$T/err" | sed -n 's/^run \([0-9A-Z]*\) (crashy)$/\1/p')
    if [ -z "$id" ]; then fail "$where: no run id on the first stderr line"; break; fi
    st=$(store_state "$id" 2>/dev/null)
    if [ -z "$st" ]; then
      # Killed before the run was created: nothing to resume, and nothing ran.
      [ -s "$T/cnt" ] && fail "$where: steps ran before the run was recorded: $(cat "$T/cnt")"
      n=$((n + 1)); continue
    fi
    read -r status_before done_before <<<"$st"
    run "$WFH" resume "${H[@]}" --json "$id"
    expect_rc 0 "$where: resume"
    if [ "$status_before" = succeeded ]; then # killed after the run's end was recorded
      expect_in "$T/err" "already succeeded: nothing to resume" "$where: nothing to resume"
    else
      expect_in "$T/err" "^run $id \\(crashy\\)" "$where: the resumed run's id first"
    fi
    "$WFH" runs show "${H[@]}" --json "$id" >"$T/show.json"
    verdict=$(python3 - "$T/out" "$T/show.json" "$T/cnt" "$id" "$want" "$done_before" <<'PY'
import json, os, sys
out, show, cnt, rid, want, done = sys.argv[1:7]
bad = []
if open(out).read().strip():  # the resumed run's --json report
    d = json.load(open(out))
    got = " ".join("%s=%s" % (k, d["steps"][k]["outputs"].get("v")) for k in sorted(d["steps"]))
    if got != want: bad.append("outputs after resume: %s" % got)
    if d["run_id"] != rid: bad.append("run id %s" % d["run_id"])
s = json.load(open(show))
got = " ".join("%s=%s" % (x["id"], (x["outputs"] or {}).get("v")) for x in sorted(s["steps"], key=lambda x: x["id"]))
if got != want: bad.append("outputs in the store: %s" % got)
if s["status"] != "succeeded": bad.append("store status %s" % s["status"])
lines = open(cnt).read().split() if os.path.exists(cnt) else []
for step in want.split():
    step = step.split("=")[0]
    c = lines.count(step)
    if c < 1: bad.append("%s never ran" % step)
    if step in done.split() and c != 1: bad.append("%s was recorded as succeeded, ran %d times" % (step, c))
print("; ".join(bad))
PY
)
    [ -z "$verdict" ] || fail "$where: $verdict"
    n=$((n + 1))
    [ "$n" -gt 60 ] && { fail "kill points never reached the end of the run"; break; }
  done
done
[ "$points" -ge 10 ] || fail "only $points kill points exercised"
echo "durable_crash: $points kill points resumed"

[ "$kill_modes" = before ] || done_testing

# A real SIGKILL from outside, mid-attempt, under the strict sandbox profile: its pid
# namespace takes the attempt's whole tree down with the runner (PDEATHSIG), so the
# killed attempt cannot finish its side effect behind the resumed run's back.
mkdir "$T/ws"
cat >"$T/slow.yaml" <<'Y'
name: slow
steps:
  - id: first
    uses: shell
    with:
      run: echo first >> cnt
  - id: slow
    uses: shell
    needs: [first]
    with:
      run: |
        echo started >> cnt
        echo "attempt-${{ run.attempt }}" >> cnt
        touch started
        if [ ! -e go ]; then sleep 3; echo finished-behind >> cnt; fi
        echo slow-done >> cnt
Y
printf 'profile shell strict\n' >"$T/strict.policy"
S=(--workspace "$T/ws" --policy "$T/strict.policy")
run "$WFH" exec "${H[@]}" --no-store "${S[@]}" "$T/slow.yaml"
line=$(sed -n 's/.*: \(allow shell .*\)$/\1/p' "$T/err" | head -n 1)
[ -n "$line" ] && echo "$line" >>"$T/strict.policy"
rm -f "$T/ws/"*
cnt_ws() { grep -cx "$1" "$T/ws/cnt" 2>/dev/null || true; }
"$WFH" exec "${H[@]}" "${S[@]}" "$T/slow.yaml" >"$T/out" 2>"$T/err" &
host=$!
for _ in $(seq 100); do [ -e "$T/ws/started" ] && break; sleep 0.05; done
[ -e "$T/ws/started" ] || { fail "the slow step never started"; cat "$T/err" >&2; }
kill -9 "$host"
wait "$host" 2>/dev/null
id=$(head -n 1 "$T/err" | sed -n 's/^run \([0-9A-Z]*\) (slow)$/\1/p')
sleep 3.5 # long enough for an orphaned attempt to have finished its side effect
expect_eq "$(cnt_ws finished-behind)" 0 "the killed host's attempt died with it"
touch "$T/ws/go"
run "$WFH" resume "${H[@]}" "${S[@]}" --json "$id"
expect_rc 0 "resume after an outside SIGKILL"
expect_eq "$(cnt_ws first)" 1 "first ran once"
expect_eq "$(cnt_ws slow-done)" 1 "slow finished once, in the resumed run"
expect_eq "$(cnt_ws attempt-1) $(cnt_ws attempt-2)" "1 1" "the resumed attempt is attempt 2 to the step too"
"$WFH" runs show "${H[@]}" --json "$id" >"$T/show.json"
attempts() { python3 -c 'import json,sys
s=[s for s in json.load(open(sys.argv[1]))["steps"] if s["id"]=="slow"][0]
print(" ".join("%d:%s:%s" % (a["attempt"], a["status"], a["idempotency_key"]) for a in s["attempts"]))' "$1"; }
expect_eq "$(attempts "$T/show.json")" "1:failed:$id/slow 2:succeeded:$id/slow" \
  "attempt 1 failed with the host, attempt 2 succeeded, one idempotency key"
expect_in "$T/show.json" 'host stopped during this attempt' "why attempt 1 failed"
done_testing
