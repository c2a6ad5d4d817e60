#!/usr/bin/env bash
# durable_group: group commit and --durability (issue #8). A chain of N steps costs
# about one fsync per step (its end, the next step queued and started, in one commit),
# not three; --durability normal fsyncs almost never; both record every step, and the
# store stays intact. A bad --durability is a usage error naming the value. The run's
# creation shares its first turn's commit: killed between the two, the host leaves no
# run behind and ran nothing; killed just after, the run resumes.
. "$(dirname "$0")/../lib.sh"
H=(--home "$T/home")
cp -a "$WFH_TEST_REGISTRY/." "$T/home/" 2>/dev/null || mkdir -p "$T/home"
N=30
{
  echo "name: grouped"
  echo "steps:"
  for i in $(seq $N); do
    echo "  - id: s$i"
    echo "    uses: noop"
    [ "$i" -gt 1 ] && echo "    needs: [s$((i - 1))]"
  done
} >"$T/flow.yaml"

run "$WFH" exec "${H[@]}" --durability sometimes "$T/flow.yaml"
expect_rc 2 "bad --durability"
expect_in "$T/err" "--durability sometimes: expected full or normal" "names the bad value"

# syncs MODE: fsync/fdatasync calls of one run (strace counts them), or "" without strace
syncs() {
  command -v strace >/dev/null || return 0
  # LeakSanitizer cannot run under ptrace: the other runs here check for leaks
  ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
    strace -f -c -e trace=fsync,fdatasync -o "$T/strace" "$WFH" exec "${H[@]}" --durability "$1" --json \
    "$T/flow.yaml" >"$T/out" 2>"$T/err" || { fail "run with --durability $1 failed"; cat "$T/err" >&2; }
  awk '$NF == "fsync" || $NF == "fdatasync" {n += $4} END {print n + 0}' "$T/strace"
}
for mode in full normal; do
  n=$(syncs "$mode")
  if [ -z "$n" ]; then
    run "$WFH" exec "${H[@]}" --durability "$mode" --json "$T/flow.yaml"
    expect_rc 0 "--durability $mode"
  else
    echo "--durability $mode: $n fsyncs for $N steps"
    # three transactions per step, each fsync'ed, was 3N (90); grouped it is N plus a
    # fixed few (the schema of a new store, run created/running/ended, checkpoints: 13)
    if [ "$mode" = full ] && [ "$n" -gt $((N + 20)) ]; then fail "full: $n fsyncs for $N chained steps (not grouped?)"; fi
    if [ "$mode" = full ] && [ "$n" -lt $((N / 2)) ]; then fail "full: only $n fsyncs for $N steps (not durable?)"; fi
    if [ "$mode" = normal ] && [ "$n" -gt 8 ]; then fail "normal: $n fsyncs for $N steps"; fi
  fi
  expect_eq "$(json "$T/out" '["status"]')" succeeded "--durability $mode run"
  id=$(json "$T/out" '["run_id"]')
  ok=$("$WFH" runs show "${H[@]}" --json "$id" | python3 -c 'import json,sys; d=json.load(sys.stdin)
print(d["status"], sum(1 for s in d["steps"] if s["status"] == "succeeded"))')
  expect_eq "$ok" "succeeded $N" "--durability $mode: every step recorded"
done
expect_eq "$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("PRAGMA integrity_check").fetchone()[0])' "$T/home/runs.db")" \
  ok "store integrity"

# The run's creation joins its first turn's commit (wfh_durable_create_grouped), so a
# one-step run commits twice: before its step starts, and at its end. Writes of this
# run: 1 created, 2 running, 3 step queued, 4 attempt started, [commit], 5 attempt
# ended, 6 run ended, [commit].
cat >"$T/one.yaml" <<Y
name: one
steps:
  - id: only
    uses: shell
    with:
      run: echo ran >> "$T/cnt1"
Y
run_id() { head -n 1 "$T/err" | sed -n 's/^run \([0-9A-Z]*\) (one)$/\1/p'; }
runs_n() { "$WFH" runs list "${H[@]}" --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
before=$(runs_n)
# Killed after the creation was written, before that commit: no trace of the run, and
# nothing ran (there is nothing to resume).
rm -f "$T/cnt1"
WFH_DURABLE_KILL_AT=3 "$WFH" exec "${H[@]}" "$T/one.yaml" >"$T/out" 2>"$T/err"
expect_eq "$?" 137 "killed between the creation and the first commit"
id=$(run_id)
[ -n "$id" ] || fail "no run id on the first stderr line"
expect_eq "$(runs_n)" "$before" "an uncommitted creation leaves no run behind"
[ ! -e "$T/cnt1" ] || fail "a step ran before the run was recorded"
run "$WFH" resume "${H[@]}" "$id"
expect_in "$T/err" "no run '$id'" "resume of a run that was never committed: not found"
# Killed just after that commit: the run and its first attempt are recorded as running,
# the runner was never started; resume runs the step once, as attempt 2.
WFH_DURABLE_KILL_AT=2+ "$WFH" exec "${H[@]}" "$T/one.yaml" >"$T/out" 2>"$T/err"
expect_eq "$?" 137 "killed just after the first commit"
id=$(run_id)
expect_eq "$(runs_n)" "$((before + 1))" "the first commit recorded the run"
"$WFH" runs show "${H[@]}" --json "$id" >"$T/show.json"
expect_eq "$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); s=d["steps"][0]
print(d["status"], s["id"], s["status"], " ".join(a["status"] for a in s["attempts"]))' "$T/show.json")" \
  "running only running running" "created, running and the attempt, in one commit"
[ ! -e "$T/cnt1" ] || fail "the step ran before its start was committed"
run "$WFH" resume "${H[@]}" "$id"
expect_rc 0 "resume after the first commit"
expect_eq "$(grep -c ran "$T/cnt1")" 1 "the step ran once"
expect_eq "$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("PRAGMA integrity_check").fetchone()[0])' "$T/home/runs.db")" \
  ok "store integrity after the kills"
done_testing
