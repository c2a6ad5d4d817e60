#!/bin/sh
# The plugin's own tests: tests/run.sh WFHOST PLUGIN.so
#  1. `wfhost plugin check`: descriptor, ELF, and the step against inputs generated
#     from its schema (valid ones, and invalid ones that must fail as invalid input);
#  2. `wfhost plugin run --dev`: one step, no workflow, no registry;
#  3. the workflow example.yaml, from a signed registry in a throwaway wfhost home.
set -eu
WFHOST=${1:?usage: tests/run.sh WFHOST PLUGIN.so}
SO=${2:?usage: tests/run.sh WFHOST PLUGIN.so}
HERE=$(cd "$(dirname "$0")/.." && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
export WFH_HOME="$TMP/home"
failed=0
check() { # check WHAT EXPECTED ACTUAL
  if [ "$2" = "$3" ]; then echo "ok - $1"; else echo "not ok - $1: got '$3', expected '$2'"; failed=1; fi
}

"$WFHOST" plugin check "$SO" >"$TMP/check" 2>&1 && rc=0 || rc=$?
check "plugin check passes" 0 "$rc"
[ "$rc" = 0 ] || cat "$TMP/check"

"$WFHOST" plugin run "$SO" sdktemplate --dev --with '{"name": "Ada", "times": 2}' >"$TMP/out" 2>"$TMP/err" && rc=0 || rc=$?
check "plugin run succeeds" 0 "$rc"
grep -q '"message": "Hello, Ada! Hello, Ada!"' "$TMP/out" || { echo "not ok - message output: $(cat "$TMP/out")"; failed=1; }

"$WFHOST" plugin run "$SO" sdktemplate --dev --with '{"times": 2}' >"$TMP/out" 2>"$TMP/err" && rc=0 || rc=$?
check "missing name is invalid input (exit 2)" 2 "$rc"
grep -q "name" "$TMP/err" || { echo "not ok - the error names the input: $(cat "$TMP/err")"; failed=1; }

"$WFHOST" registry init --new-key >/dev/null
"$WFHOST" plugin install "$SO" >/dev/null
"$WFHOST" exec "$HERE/example.yaml" --json --no-store >"$TMP/run.json" 2>"$TMP/err" && rc=0 || rc=$?
check "the example workflow runs" 0 "$rc"
[ "$rc" = 0 ] || cat "$TMP/err"
grep -q '"Bye, 27 bytes ago!"' "$TMP/run.json" || { echo "not ok - second step saw the first one's output"; failed=1; }
exit $failed
