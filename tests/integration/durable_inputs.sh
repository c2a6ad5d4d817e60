#!/usr/bin/env bash
# durable_inputs: a run of a workflow with an input and a secret, SIGKILLed at several
# points ($WFH_DURABLE_KILL_AT, core/durable.c) and resumed with the secret supplied
# again, ends with the outputs of an uninterrupted run: resume runs with the inputs the
# run was started with (recorded in the run store), not the workflow's defaults. The
# secret is never recorded: resume without it fails exactly as exec does, and its value
# is nowhere in the store. `-i` on resume is refused. A store written before inputs were
# recorded (schema 1) still opens, is upgraded, and its runs resume with the defaults.
. "$(dirname "$0")/../lib.sh"

H=(--home "$T/home")
cat >"$T/flow.yaml" <<'Y'
name: withinputs
inputs:
  who: {type: string, default: nobody}
  n: {type: number, default: 1}
secrets: [TOK]
steps:
  - id: a
    uses: shell
    env: {WHO: "${{ inputs.who }}"}
    with:
      run: echo "v=hello-$WHO" >> "$WFH_OUTPUT"
  - id: b
    uses: shell
    needs: [a]
    env: {IN: "${{ steps.a.outputs.v }}", TOKEN: "${{ secrets.TOK }}", N: "${{ inputs.n }}"}
    with:
      run: |
        [ "$TOKEN" = "tok-sekrit-42" ] || { echo "wrong token" >&2; exit 1; }
        echo "v=$IN-x$N" >> "$WFH_OUTPUT"
  - id: c
    uses: shell
    needs: [b]
    env: {IN: "${{ steps.b.outputs.v }}", WHO: "${{ inputs.who }}"}
    with:
      run: echo "v=$IN-$WHO" >> "$WFH_OUTPUT"
Y
outputs() { # outputs JSON-FILE: "a=... b=... c=..." from a --json report
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))["steps"]
print(" ".join("%s=%s" % (k, d[k]["outputs"].get("v")) for k in sorted(d)))' "$1"
}
export WFH_SECRET_TOK=tok-sekrit-42
IN=(-i who=alice -i n=7)

run "$WFH" exec "${H[@]}" --json "${IN[@]}" "$T/flow.yaml"
expect_rc 0 "uninterrupted run"
want=$(outputs "$T/out")
expect_eq "$want" "a=hello-alice b=hello-alice-x7 c=hello-alice-x7-alice" "uninterrupted outputs"

# Kill at every store write of the run, resume each with the secret given again.
points=0
n=1
while :; do
  WFH_DURABLE_KILL_AT="$n" "$WFH" exec "${H[@]}" "${IN[@]}" "$T/flow.yaml" >"$T/out" 2>"$T/err"
  rc=$?
  [ "$rc" = 0 ] && break
  where="kill at write $n"
  if [ "$rc" != 137 ]; then fail "$where: exit status $rc, expected 137"; cat "$T/err" >&2; break; fi
  id=$(head -n 1 "$T/err" | sed -n 's/^run \([0-9A-Z]*\) (withinputs)$/\1/p')
  if [ -z "$id" ]; then fail "$where: no run id on the first stderr line"; break; fi
  n=$((n + 1))
  [ "$n" -gt 40 ] && { fail "kill points never reached the end of the run"; break; }
  "$WFH" runs show "${H[@]}" --json "$id" >/dev/null 2>&1 || continue # not recorded yet
  status=$("$WFH" runs show "${H[@]}" --json "$id" | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')
  [ "$status" = succeeded ] && continue
  points=$((points + 1))
  if [ "$points" = 1 ]; then
    # Without the secret: the one-line message exec gives, before anything runs.
    run env -u WFH_SECRET_TOK "$WFH" resume "${H[@]}" "$id"
    expect_rc 2 "$where: resume without the secret"
    cp "$T/err" "$T/err.resume"
    run env -u WFH_SECRET_TOK "$WFH" exec "${H[@]}" --no-store "${IN[@]}" "$T/flow.yaml"
    expect_eq "$(cat "$T/err.resume")" "$(cat "$T/err")" "$where: resume and exec refuse a missing secret alike"
    expect_eq "$(wc -l <"$T/err.resume")" 1 "$where: one line"
    expect_in "$T/err.resume" "secret TOK has no value" "$where: names the secret"
    # Other inputs would be another run.
    run "$WFH" resume "${H[@]}" -i who=bob "$id"
    expect_rc 2 "$where: resume -i"
    expect_in "$T/err" "keeps the inputs it started with" "$where: resume -i refused"
    # The secret from a --secrets-file, as exec takes it.
    printf 'TOK=tok-sekrit-42\n' >"$T/secrets"
    chmod 600 "$T/secrets"
    run env -u WFH_SECRET_TOK "$WFH" resume "${H[@]}" --json --secrets-file "$T/secrets" "$id"
  else
    run "$WFH" resume "${H[@]}" --json "$id"
  fi
  expect_rc 0 "$where: resume"
  if [ -s "$T/out" ]; then
    expect_eq "$(outputs "$T/out")" "$want" "$where: outputs after resume"
  fi
done
[ "$points" -ge 3 ] || fail "only $points kill points exercised"

# retry: a run failed for a wrong secret runs again with its inputs and the right one.
WFH_SECRET_TOK=tok-wrong-99 "$WFH" exec "${H[@]}" "${IN[@]}" "$T/flow.yaml" >"$T/out" 2>"$T/err"
expect_eq "$?" 1 "run with the wrong secret fails"
id=$(head -n 1 "$T/err" | sed -n 's/^run \([0-9A-Z]*\) (withinputs)$/\1/p')
run "$WFH" retry "${H[@]}" --json "$id"
expect_rc 0 "retry with the right secret"
expect_eq "$(outputs "$T/out")" "$want" "outputs after retry"

# Inputs are recorded, the secret's value is not.
db=$(find "$T/home" -name '*.db' | head -n 1)
[ -n "$db" ] || fail "no run store under $T/home"
python3 - "$db" <<'PY' || fail "recorded inputs / secret check"
import json, sqlite3, sys
c = sqlite3.connect(sys.argv[1])
rows = [r[0] for r in c.execute("SELECT inputs FROM runs")]
assert rows and all(json.loads(r) == {"who": "alice", "n": 7} for r in rows), rows
for t in ("runs", "steps", "attempts", "events", "logs"):
    for row in c.execute("SELECT * FROM " + t):
        assert "tok-sekrit-42" not in " ".join(map(str, row)), (t, row)
        assert "tok-wrong-99" not in " ".join(map(str, row)), (t, row)
PY

# A schema-1 store (no runs.inputs) still opens: it is upgraded, and a run recorded in
# it resumes with the workflow's defaults, as it was started with.
rm -rf "$T/home" && cp -a "$WFH_TEST_REGISTRY" "$T/home" # a fresh store; plugins from the registry
run "$WFH" exec "${H[@]}" --json "$T/flow.yaml"
expect_rc 0 "defaults run"
want_defaults=$(outputs "$T/out")
WFH_DURABLE_KILL_AT=6 "$WFH" exec "${H[@]}" "$T/flow.yaml" >"$T/out" 2>"$T/err"
expect_eq "$?" 137 "killed defaults run"
id=$(head -n 1 "$T/err" | sed -n 's/^run \([0-9A-Z]*\) (withinputs)$/\1/p')
db=$(find "$T/home" -name '*.db' | head -n 1)
python3 - "$db" <<'PY' || fail "making a schema-1 store"
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
c.execute("ALTER TABLE runs DROP COLUMN inputs")
c.execute("ALTER TABLE attempts DROP COLUMN sandbox")
c.execute("PRAGMA user_version=1")
c.commit()
PY
run "$WFH" runs list "${H[@]}"
expect_rc 0 "runs list on a schema-1 store"
expect_in "$T/out" "$id" "runs list shows the old run"
run "$WFH" resume "${H[@]}" --json "$id"
expect_rc 0 "resume from a schema-1 store"
expect_eq "$(outputs "$T/out")" "$want_defaults" "outputs of an old run after resume"
expect_eq "$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("PRAGMA user_version").fetchone()[0])' "$db")" 4 "store upgraded to schema 4"
# schema 3: attempts made after the upgrade say what confined them; older ones say null
run "$WFH" runs show "${H[@]}" --json "$id"
expect_rc 0 "runs show after the upgrade"
expect_eq "$(json "$T/out" '["steps"][-1]["attempts"][-1]["sandbox"]["profile"]')" strict \
  "the resumed attempt's sandbox report is stored"

done_testing
