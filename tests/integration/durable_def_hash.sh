#!/usr/bin/env bash
# durable_def_hash: the definition hashes a run store keeps (core/durable.c,
# def_hash_step) are the same bytes as those of earlier versions (adaa370, before they
# were streamed instead of built as one JSON document, issue #8), so a run recorded by
# an older host resumes under a newer one with its steps' results kept. The expected
# values were recorded by the adaa370 build; the workflows cover literals of every
# JSON type, templates, escapes and non-ASCII text, nested objects (keys sorted),
# a step env, a workflow env and none, needs (one and two), a type with and without
# @major, a step without `with`.
. "$(dirname "$0")/../lib.sh"

hashes() { # hashes: "step=hash ..." of the latest run in the store, by step id
  python3 - "$WFH_HOME/runs.db" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
run = c.execute("SELECT id FROM runs ORDER BY rowid DESC LIMIT 1").fetchone()[0]
rows = c.execute("SELECT step_id, def_hash FROM steps WHERE run_id = ? ORDER BY step_id", (run,))
print(" ".join(f"{s}={h}" for s, h in rows))
PY
}

cat >"$T/flow.yaml" <<'Y'
name: defhash
env:
  E: one
  N: 3
  T: "${{ run.id }}"
steps:
  - id: a
    uses: pass
    with:
      x: 1
      s: "quote \" back\\slash tab\t nl\n é ☃ /slash"
      list: [1, two, 3.5, true, null, {k: v}]
      t: "${{ env.E }}-${{ run.id }}"
      nested: {b: [x, "${{ env.N }}"], a: {z: 1, y: 2}}
  - id: b
    uses: shell
    needs: [a]
    env:
      B: "${{ steps.a.outputs.x }}"
      Z: plain
    with: {run: "true"}
  - id: c
    uses: shell@1
    needs: [a, b]
    with: {argv: ["true", "x${{ steps.b.outputs.exit_code }}"]}
  - id: d
    uses: pass
Y
# the same without the workflow's env (and without the templates that read it)
sed -e '/^env:/,/^steps:/{/^steps:/!d;}' -e 's/^name: defhash$/name: defhash2/' \
  -e 's/\${{ env\.E }}/E/' -e 's/\${{ env\.N }}/N/' "$T/flow.yaml" >"$T/flow2.yaml"
grep -q 'env\.\|^env:' "$T/flow2.yaml" && fail "flow2.yaml still reads the workflow's env"
run "$WFH" exec "$T/flow.yaml"
expect_rc 0 "a workflow with an env"
expect_eq "$(hashes)" "a=0235392d3871bd6f541edeeb541f34f15c783b9fc96dda8e2bbe3e7781bf2658 b=42db58aaa1c82f886b3d2f601a36d037a6d1ec040732b2249a1b410d9fdf9126 c=e06e34df47ddc7cec970a258b54211e5ccef4910b7d127dd06211e28174b4c9f d=80e1cac8161c9b7d9e176619b9868baf25e0a6b299b7e9998758223ee8f4cce8" "hashes as adaa370 wrote them"
run "$WFH" exec "$T/flow2.yaml"
expect_rc 0 "a workflow without an env"
expect_eq "$(hashes)" "a=84b1902a979e8a3fb63fda653368c4a3d180d9077fcee71744602ff0839b6719 b=2538ab04745b90ecb953435125c38d3ae67d687aae0007eb21fc1262508acd2f c=bbb78330777947bd169e67a90b0500b074dc8f95ce9ffadf3075613edb3b8c2e d=38732255b440991390d6e47fb37568c17bbc0b534ff6e59e8c5ee6cc7e03e276" "hashes as adaa370 wrote them"
done_testing
