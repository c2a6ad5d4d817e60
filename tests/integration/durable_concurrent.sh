#!/usr/bin/env bash
# durable_concurrent: several `wfhost exec` processes sharing one home at once. Every
# run is recorded whole (no lost updates: each step's attempt and outcome, the run's
# end), each prints its own run id as the first stderr line and in --json, and the
# store's history lists them all. Then one of them is killed mid-run while the others
# go on, and is resumed while new runs are being recorded next to it.
. "$(dirname "$0")/../lib.sh"

H=(--home "$T/home")
{
  echo "name: fan"
  echo "steps:"
  echo "  - id: root"
  echo "    uses: shell"
  echo "    with: {run: 'echo v=r >> \"\$WFH_OUTPUT\"'}"
  for i in 1 2 3 4 5 6; do
    echo "  - id: s$i"
    echo "    uses: shell"
    echo "    needs: [root]"
    echo "    with: {run: 'echo v=\${{ steps.root.outputs.v }}$i >> \"\$WFH_OUTPUT\"'}"
  done
} >"$T/fan.yaml"

N=8
pids=()
for k in $(seq $N); do
  "$WFH" exec "${H[@]}" --json "$T/fan.yaml" >"$T/out.$k" 2>"$T/err.$k" &
  pids+=($!)
done
for k in $(seq $N); do
  wait "${pids[$((k - 1))]}"
  r=$?
  [ "$r" = 0 ] || { fail "concurrent exec $k: exit status $r"; cat "$T/err.$k" >&2; }
done
ids=()
for k in $(seq $N); do
  id=$(json "$T/out.$k" '["run_id"]' 2>/dev/null)
  first=$(head -n 1 "$T/err.$k")
  expect_eq "$first" "run $id (fan)" "exec $k: its run id is the first stderr line"
  ids+=("$id")
done
expect_eq "$(printf '%s\n' "${ids[@]}" | sort -u | wc -l)" "$N" "distinct run ids"
"$WFH" runs list "${H[@]}" --json >"$T/list.json"
expect_eq "$(python3 -c 'import json,sys; print(sum(1 for r in json.load(open(sys.argv[1])) if r["status"]=="succeeded"))' "$T/list.json")" \
  "$N" "the store lists every run as succeeded"
for id in "${ids[@]}"; do
  "$WFH" runs show "${H[@]}" --json "$id" >"$T/show.json"
  got=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))
print(" ".join("%s:%s:%d:%s" % (s["id"], s["status"], len(s["attempts"]), (s["outputs"] or {}).get("v")) for s in sorted(d["steps"], key=lambda s: s["id"])))' "$T/show.json")
  expect_eq "$got" "root:succeeded:1:r s1:succeeded:1:r1 s2:succeeded:1:r2 s3:succeeded:1:r3 s4:succeeded:1:r4 s5:succeeded:1:r5 s6:succeeded:1:r6" \
    "run $id recorded whole"
done

# One host killed mid-run (after root's success is recorded) while others run.
WFH_DURABLE_KILL_AT=4+ "$WFH" exec "${H[@]}" -j 1 "$T/fan.yaml" >/dev/null 2>"$T/err.k"
killed=$(head -n 1 "$T/err.k" | sed -n 's/^run \([0-9A-Z]*\) (fan)$/\1/p')
[ -n "$killed" ] || fail "no run id from the killed host"
pids=()
for k in 1 2 3; do
  "$WFH" exec "${H[@]}" "$T/fan.yaml" >/dev/null 2>&1 &
  pids+=($!)
done
run "$WFH" resume "${H[@]}" --json "$killed"
expect_rc 0 "resume next to running hosts"
expect_eq "$(json "$T/out" '["steps"]["s6"]["outputs"]["v"]')" r6 "the resumed run's outputs"
for p in "${pids[@]}"; do wait "$p" || fail "a concurrent exec failed while another run resumed"; done
"$WFH" runs list "${H[@]}" --json >"$T/list.json"
expect_eq "$(python3 -c 'import json,sys; l=json.load(open(sys.argv[1])); print(len(l), all(r["status"]=="succeeded" for r in l))' "$T/list.json")" \
  "$((N + 4)) True" "every run in the history succeeded"
done_testing
