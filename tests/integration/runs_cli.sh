#!/usr/bin/env bash
# `wfhost runs` on homes with no store, and on store files that are garbage, from a
# newer wfhost, or some other SQLite database: one line naming the file, the right exit
# status, never a crash, and never a store created by a read.
. "$(dirname "$0")/../lib.sh"
H=$T/home

run "$WFH" runs --help
expect_rc 0 "runs --help"
expect_in "$T/out" 'runs prune --older-than' "help lists the subcommands"

run "$WFH" runs list --home "$H"
expect_rc 0 "list with no store yet"
expect_in "$T/err" 'no runs recorded' "says there are none"
[ ! -e "$H/runs.db" ] || fail "a read created a store"
run "$WFH" runs list --json --home "$H"
expect_eq "$(cat "$T/out")" "[]" "--json with no store"
run env WFH_HOME="$H" "$WFH" runs show 20260101-000000-abcdef
expect_rc 2 "show of an unknown run (home from \$WFH_HOME)"
expect_in "$T/err" "no run '20260101-000000-abcdef'" "names the run"
run "$WFH" runs prune --older-than 30d --home "$H"
expect_rc 0 "prune with no store"

run "$WFH" runs frob --home "$H"
expect_rc 2 "unknown subcommand"
run "$WFH" runs list --since 3x --home "$H"
expect_rc 2 "bad duration"
expect_in "$T/err" "--since: '3x' is not a duration" "says what is wrong"
run "$WFH" runs prune --home "$H"
expect_rc 2 "prune needs --older-than"
run "$WFH" runs list --status bogus --home "$H"
expect_rc 2 "unknown status"
run "$WFH" runs show --home "$H"
expect_rc 2 "show needs a run id"

mkdir -p "$H"
head -c 16384 /dev/urandom >"$H/runs.db"
run "$WFH" runs list --home "$H"
expect_rc 4 "garbage store"
expect_in "$T/err" "run store $H/runs.db is corrupt" "names the file"
expect_eq "$(wc -l <"$T/err")" 1 "one line"

rm -f "$H"/runs.db*
python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute("PRAGMA user_version=7"); c.execute("PRAGMA application_id=1464223793"); c.commit()' "$H/runs.db"
run "$WFH" runs list --home "$H"
expect_rc 2 "store from a newer wfhost"
expect_in "$T/err" "newer wfhost \(schema 7" "says it is newer"

rm -f "$H"/runs.db*
python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute("CREATE TABLE x(y)"); c.commit()' "$H/runs.db"
run "$WFH" runs show someid --home "$H"
expect_rc 4 "a foreign SQLite database"
expect_in "$T/err" "not a wfhost run store" "says so"
done_testing
