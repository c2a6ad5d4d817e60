#!/usr/bin/env bash
# The run store's PostgreSQL engine against a real server this test starts on a
# loopback port (as db_postgres.sh does): the engine's unit tests with
# $WFH_TEST_PG_URL set, then `wfhost runs` reading the same store via $WFH_STORE_URL.
. "$(dirname "$0")/../lib.sh"
UNIT=$WFH_BUILD/bin/test_store_pg
. "$WFH_SRC/tests/pg.sh"
export WFH_TEST_PG_URL="$PG_URL"

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
