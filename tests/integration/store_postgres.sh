#!/usr/bin/env bash
# The run store's PostgreSQL engine against a real server this test starts on a
# loopback port (as db_postgres.sh does): the engine's unit tests with
# $WFH_TEST_PG_URL set, then `wfhost runs` reading the same store via $WFH_STORE_URL.
. "$(dirname "$0")/../lib.sh"
UNIT=$WFH_BUILD/bin/test_store_pg
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "$PGBIN" ] || [ ! -x "$PGBIN/initdb" ]; then
  echo "SKIP: PostgreSQL server binaries not found (install Debian's postgresql)"; exit 0
fi
as_pg=()
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || { echo "SKIP: running as root and there is no postgres user"; exit 0; }
  as_pg=(runuser -u postgres --)
fi
chmod 755 "$T"
PGDATA=$T/pg
mkdir -p "$PGDATA" "$T/sock"
[ "$(id -u)" = 0 ] && chown postgres "$PGDATA" "$T/sock"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"${as_pg[@]}" "$PGBIN/initdb" -D "$PGDATA" -U wfh -A trust --no-sync -E UTF8 >"$T/initdb.log" 2>&1 ||
  { cat "$T/initdb.log" >&2; fail "initdb"; done_testing; }
pg_stop() { "${as_pg[@]}" "$PGBIN/pg_ctl" -D "$PGDATA" -m immediate stop >/dev/null 2>&1; }
trap 'pg_stop; rm -rf "$T"' EXIT
"${as_pg[@]}" "$PGBIN/pg_ctl" -D "$PGDATA" -w -t 60 -l "$T/sock/pg.log" \
  -o "-p $PORT -k $T/sock -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null ||
  { cat "$T/sock/pg.log" >&2; fail "pg_ctl start"; done_testing; }
export WFH_TEST_PG_URL="postgresql://wfh@127.0.0.1:$PORT/postgres"

run "$UNIT"
expect_rc 0 "the engine's tests"
expect_not_in "$T/out" 'SKIP' "the engine's tests ran"
cat "$T/out" | tail -n 3

# The CLI reads the same store when $WFH_STORE_URL names it.
run env WFH_STORE_URL="$WFH_TEST_PG_URL" "$WFH" runs list --json --limit 1000 --workflow many
expect_rc 0 "runs list on PostgreSQL"
expect_eq "$(json "$T/out" '.__len__()')" 40 "the 40 runs the concurrent hosts wrote"
id=$(json "$T/out" '[0]["id"]')
run env WFH_STORE_URL="$WFH_TEST_PG_URL" "$WFH" runs show "$id" --events
expect_rc 0 "runs show on PostgreSQL"
expect_in "$T/out" "step x: succeeded" "the step is shown"
run env WFH_STORE_URL="postgresql://wfh:s3cret@127.0.0.1:1/postgres" "$WFH" runs list
expect_rc 4 "an unreachable store"
expect_in "$T/err" "run store postgresql://127.0.0.1:1/postgres" "names the server"
expect_not_in "$T/err" "s3cret" "but not the password"
done_testing
