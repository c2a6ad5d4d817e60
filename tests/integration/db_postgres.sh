#!/usr/bin/env bash
# The db step type against a real PostgreSQL server that this test starts itself, in a
# temp dir on a loopback port (Debian's `postgresql` package: initdb and pg_ctl), driven
# through the step runner: parameters stay data, types map to JSON, row limit,
# transactions, statement timeout, and failures classified by SQLSTATE.
. "$(dirname "$0")/../lib.sh"
RUNNER=$WFH_BUILD/bin/wfhost-runner
PLUGIN=$WFH_BUILT_PLUGINS/db.so
[ -x "$RUNNER" ] || { echo "SKIP: $RUNNER not built"; exit 0; }
. "$WFH_SRC/tests/pg.sh"
URL="$PG_URL"

req() {
  printf '{"plugin":"%s","type":"db","inputs":%s,"env":{},"run_id":"r","step_id":"s","attempt":1,"idempotency_key":"k","workspace":"%s"}' \
    "$PLUGIN" "$1" "$T" | "$RUNNER" >"$T/out" 2>"$T/err"
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
req '{"url":"'"$URL"'","transaction":true,"statements":[
  {"sql":"CREATE TABLE t(id serial PRIMARY KEY, name text UNIQUE NOT NULL, ok boolean, n numeric, big bigint, f double precision, doc jsonb, j json, at timestamptz)"},
  {"sql":"INSERT INTO t(name, ok, n, big, f, doc, j, at) VALUES($1, $2, $3, $4, $5, $6, $7, $8)","params":["'"$evil"'", true, "12345678901234567890.12345", 9007199254740993, 2.5, {"k":[1,2]}, [true], "2026-01-02T03:04:05Z"]},
  {"sql":"INSERT INTO t(name, ok) VALUES(:name, :ok::boolean) RETURNING id, '\'':not_a_param'\'' AS lit","params":{"name":"bob","ok":false}}]}'
expect_eq "$(status)" 0 "create and insert: $(error)"
expect_eq "$(out_json rows)" '[{"id": 2, "lit": ":not_a_param"}]' "RETURNING rows; :name inside a literal is left alone"
expect_eq "$(out_json affected_rows)" 2 "affected rows over all statements"

req '{"url":"'"$URL"'","sql":"SELECT id, name, ok, n, big, f, doc, j, at AT TIME ZONE '\''UTC'\'' AS at, NULL::text AS nothing FROM t ORDER BY id"}'
expect_eq "$(status)" 0 "select: $(error)"
expect_eq "$(out_json rows)" '[{"at": "2026-01-02 03:04:05", "big": 9007199254740993, "doc": {"k": [1, 2]}, "f": 2.5, "id": 1, "j": [true], "n": "12345678901234567890.12345", "name": "x'"'"'); DROP TABLE t; --", "nothing": null, "ok": true}, {"at": null, "big": null, "doc": null, "f": null, "id": 2, "j": null, "n": null, "name": "bob", "nothing": null, "ok": false}]' "rows and types"
req '{"url":"'"$URL"'","sql":"SELECT 1.5::numeric AS n","numeric":"number"}'
expect_eq "$(out_json rows)" '[{"n": 1.5}]' "numeric as number on request"

req '{"url":"'"$URL"'","sql":"SELECT g FROM generate_series(1, 100000) g","max_rows":3}'
expect_eq "$(out_json rows)" '[{"g": 1}, {"g": 2}, {"g": 3}]' "row limit"
expect_eq "$(out_json truncated)" true "truncation is flagged"

req '{"url":"'"$URL"'","transaction":true,"statements":[
  {"sql":"INSERT INTO t(name) VALUES($1)","params":["carol"]},
  {"sql":"INSERT INTO t(name) VALUES($1)","params":["bob"]}]}'
expect_eq "$(status)" 3 "constraint violation is permanent"
error >"$T/e"; expect_in "$T/e" 'statement 2: .*SQLSTATE 23505' "message has the statement and SQLSTATE"
req '{"url":"'"$URL"'","sql":"SELECT count(*) AS n FROM t"}'
expect_eq "$(out_json rows)" '[{"n": 2}]' "the transaction rolled back"

req '{"url":"'"$URL"'","sql":"SELEC 1"}'
expect_eq "$(status)" 5 "syntax error is invalid input"
error >"$T/e"; expect_in "$T/e" 'SQLSTATE 42601' "syntax error SQLSTATE"
req '{"url":"'"$URL"'","sql":"SELECT $1::int + $2::int AS s","params":[1]}'
expect_eq "$(status)" 5 "wrong parameter count is invalid input: $(error)"
req '{"url":"'"$URL"'","sql":"SELECT :a::int AS a","params":{"a":1,"typo":2}}'
expect_eq "$(status)" 5 "unused named parameter"
req '{"url":"'"$URL"'","sql":"SELECT $1::int AS a","params":{"a":1}}'
expect_eq "$(status)" 5 "positional SQL with named params"
req '{"url":"'"$URL"'","sql":"SELECT :wfh_idempotency_key::text AS k, '\''a::b'\'' AS c","params":{}}'
expect_eq "$(out_json rows)" '[{"c": "a::b", "k": "k"}]' "the idempotency key as a named parameter: $(error)"
# :names inside dollar quotes, comments, E-strings with escaped quotes and identifiers
# are not parameters; only :c is.
req '{"url":"'"$URL"'","sql":"SELECT $$:a$$ AS d, $t$ :x $t$ AS t, E'\''\\'\'':e'\'' AS e, /* :b /* :n */ */ :c::int AS \":q\" -- :z\n","params":{"c":7}}'
expect_eq "$(out_json rows)" '[{":q": 7, "d": ":a", "e": "'"'"':e", "t": " :x "}]' "named parameters are found only in code: $(error)"
req '{"url":"'"$URL"'","sql":"SELECT pg_sleep(5)","timeout_ms":300}'
expect_eq "$(status)" 4 "statement timeout"
error >"$T/e"; expect_in "$T/e" 'SQLSTATE 57014' "timeout SQLSTATE"
req '{"url":"'"$URL"'","sql":"DELETE FROM t","read_only":true}'
expect_eq "$(status)" 3 "read_only refuses writes: $(error)"
req '{"url":"'"$URL"'","sql":"SELECT pg_terminate_backend(pg_backend_pid())"}'
expect_eq "$(status)" 2 "connection lost is transient: $(error)"
req '{"url":"postgresql://wfh@127.0.0.1:'"$PORT"'/nosuchdb","sql":"SELECT 1"}'
expect_eq "$(status)" 3 "missing database is permanent: $(error)"
pg_stop
req '{"url":"postgresql://wfh:s3cret@127.0.0.1:'"$PORT"'/postgres","sql":"SELECT 1"}'
expect_eq "$(status)" 2 "connection refused is transient: $(error)"
expect_not_in "$T/out" 's3cret' "the password never appears in a message"
done_testing
