#!/usr/bin/env bash
# The db step type against real SQLite files, driven through the step runner exactly
# as the host drives it: bound parameters (an injection string stays data), type
# mapping, row limit, transactions that roll back, failure classes, timeout, read_only.
. "$(dirname "$0")/../lib.sh"
RUNNER=$WFH_BUILD/bin/wfhost-runner
PLUGIN=$WFH_BUILT_PLUGINS/db.so
[ -x "$RUNNER" ] || { echo "SKIP: $RUNNER not built"; exit 0; }
mkdir -p "$T/ws"

# req INPUTS_JSON: one attempt; lines in $T/out. Then status/out_json read them.
req() {
  printf '{"plugin":"%s","type":"db","inputs":%s,"env":{},"run_id":"r","step_id":"s","attempt":1,"idempotency_key":"k","workspace":"%s"}' \
    "$PLUGIN" "$1" "$T/ws" | "$RUNNER" >"$T/out" 2>"$T/err"
  rc=$?
  # the runner exits 0 whatever the step did; anything else is a crash or a sanitizer report
  [ "$rc" = 0 ] || { fail "runner exit status $rc for $1"; head -c 3000 "$T/err" >&2; }
}
status() { python3 -c 'import json,sys
for l in open(sys.argv[1]):
    m=json.loads(l)
    if m["t"]=="result": print(m["status"]); sys.exit()
print("none")' "$T/out"; }
error() { python3 -c 'import json,sys
for l in open(sys.argv[1]):
    m=json.loads(l)
    if m["t"]=="result": print(m.get("error",""))' "$T/out"; }
out_json() { python3 -c 'import json,sys
for l in open(sys.argv[1]):
    m=json.loads(l)
    if m["t"]=="output" and m["name"]==sys.argv[2]: print(json.dumps(m["value"],sort_keys=True))' "$T/out" "$1"; }

evil="x'); DROP TABLE t; --"
req '{"url":"sqlite:data/t.db","statements":[{"sql":"CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT UNIQUE, ok BOOLEAN, doc JSON, r REAL, b BLOB)"}]}'
expect_eq "$(status)" 3 "a relative path whose directory is missing cannot be opened (permanent)"
mkdir -p "$T/ws/data"
req '{"url":"sqlite:data/t.db","transaction":true,"statements":[
  {"sql":"CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT UNIQUE, ok BOOLEAN, doc JSON, r REAL, b BLOB)"},
  {"sql":"INSERT INTO t(name, ok, doc, r, b) VALUES(?, ?, ?, ?, x'\''00ff'\'')","params":["'"$evil"'", true, {"k":[1,2]}, 2.5]},
  {"sql":"INSERT INTO t(name, ok) VALUES(:name, :ok)","params":{"name":"bob","ok":false}}]}'
expect_eq "$(status)" 0 "create and insert: $(error)"
expect_eq "$(out_json affected_rows)" 2 "affected rows over all statements"
[ -f "$T/ws/data/t.db" ] || fail "sqlite:relative.db lives in the workspace"

req '{"url":"sqlite://'"$T"'/ws/data/t.db","sql":"SELECT id, name, ok, doc, r, b, NULL AS n FROM t ORDER BY id"}'
expect_eq "$(status)" 0 "select via sqlite:///abs: $(error)"
expect_eq "$(out_json rows)" '[{"b": "\\x00ff", "doc": {"k": [1, 2]}, "id": 1, "n": null, "name": "x'"'"'); DROP TABLE t; --", "ok": true, "r": 2.5}, {"b": null, "doc": null, "id": 2, "n": null, "name": "bob", "ok": false, "r": null}]' "rows and types"
expect_eq "$(out_json columns)" '["id", "name", "ok", "doc", "r", "b", "n"]' "columns in order"
expect_eq "$(out_json truncated)" false "not truncated"

req '{"url":"sqlite:data/t.db","sql":"SELECT id FROM t ORDER BY id","max_rows":1}'
expect_eq "$(out_json rows)" '[{"id": 1}]' "row limit"
expect_eq "$(out_json truncated)" true "truncation is flagged"

req '{"url":"sqlite::memory:","statements":[{"sql":"CREATE TABLE x(a)"},{"sql":"INSERT INTO x VALUES(1),(2)"},{"sql":"CREATE INDEX xi ON x(a)"},{"sql":"SELECT a FROM x"}]}'
expect_eq "$(python3 -c 'import json,sys; print([r["affected_rows"] for r in json.loads(sys.argv[1])])' "$(out_json results)")" "[0, 2, 0, 0]" "affected rows per statement, DDL and queries 0"

# A failing statement rolls the whole transaction back; the class says retrying won't help.
req '{"url":"sqlite:data/t.db","transaction":true,"statements":[
  {"sql":"INSERT INTO t(name) VALUES(?)","params":["carol"]},
  {"sql":"INSERT INTO t(name) VALUES(?)","params":["bob"]}]}'
expect_eq "$(status)" 3 "constraint violation is permanent"
error >"$T/e"; expect_in "$T/e" 'statement 2: UNIQUE constraint failed' "message names the statement"
req '{"url":"sqlite:data/t.db","sql":"SELECT count(*) AS n FROM t"}'
expect_eq "$(out_json rows)" '[{"n": 2}]' "rolled back: carol was not kept"

req '{"url":"sqlite:data/t.db","sql":"SELEC nothing"}'
expect_eq "$(status)" 5 "syntax error is invalid input"
req '{"url":"sqlite:data/t.db","sql":"SELECT 1; DROP TABLE t"}'
expect_eq "$(status)" 5 "two statements in one sql are refused"
req '{"url":"sqlite:data/t.db","sql":"SELECT ?","params":[]}'
expect_eq "$(status)" 5 "missing positional parameter"
req '{"url":"sqlite:data/t.db","sql":"SELECT :a","params":{"a":1,"typo":2}}'
expect_eq "$(status)" 5 "unused named parameter"
req '{"url":"sqlite:data/t.db","sql":"SELECT 1","params":"no"}'
expect_eq "$(status)" 5 "params of the wrong type"
req '{"url":"mysql://x","sql":"SELECT 1"}'
expect_eq "$(status)" 5 "unknown scheme"
req '{"url":"sqlite:data/t.db","sql":"SELECT 1","bogus":1}'
expect_eq "$(status)" 5 "unknown input"
req '{"url":"sqlite:data/t.db","sql":"DELETE FROM t","read_only":true}'
expect_eq "$(status)" 3 "read_only refuses writes"
req '{"url":"sqlite:data/t.db","sql":"SELECT count(*) AS n FROM t"}'
expect_eq "$(out_json rows)" '[{"n": 2}]' "read_only deleted nothing"
req '{"url":"sqlite::memory:","timeout_ms":300,"sql":"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c"}'
expect_eq "$(status)" 4 "statement timeout"
req '{"url":"sqlite::memory:","sql":"SELECT ? AS a, ? AS b","params":[9007199254740993, "é"]}'
expect_eq "$(out_json rows)" '[{"a": 9007199254740993, "b": "\u00e9"}]' "64-bit integers and UTF-8 survive"

req '{"url":"sqlite::memory:","sql":"SELECT :wfh_idempotency_key AS k","params":{}}'
expect_eq "$(out_json rows)" '[{"k": "k"}]' "the step's idempotency key is a named parameter"

# A writer holding the lock longer than the timeout: transient (a retry can succeed).
python3 - "$T/ws/data/t.db" <<'PY' &
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("BEGIN EXCLUSIVE"); open(sys.argv[1] + ".locked", "w").close(); time.sleep(3); c.execute("ROLLBACK")
PY
for _ in $(seq 50); do [ -f "$T/ws/data/t.db.locked" ] && break; sleep 0.1; done
req '{"url":"sqlite:data/t.db","timeout_ms":300,"sql":"INSERT INTO t(name) VALUES(?)","params":["dave"]}'
expect_eq "$(status)" 2 "locked database is transient: $(error)"
wait
done_testing
