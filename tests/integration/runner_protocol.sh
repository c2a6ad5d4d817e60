#!/usr/bin/env bash
# The step runner on its own: the protocol channel cannot be forged from plugin
# stdout, bad requests get a result line, and nothing the plugin started (setsid'd,
# double-forked) outlives the attempt, whether it ends normally or by SIGTERM.
. "$(dirname "$0")/../lib.sh"
RUNNER=$WFH_BUILD/bin/wfhost-runner
FIX=$WFH_BUILD/tests/plugins/fixture.so
SHELL_SO=$WFH_BUILT_PLUGINS/shell.so
req() { printf '{"plugin":"%s","type":"%s","inputs":%s,"env":{},"run_id":"%s","step_id":"s","attempt":1,"idempotency_key":"k","workspace":"%s"}' "$1" "$2" "$3" "${4:-r}" "$T"; }
alive() { pgrep -f "$1" >/dev/null; }

run "$RUNNER" --help
expect_rc 0 "--help"
run "$RUNNER" --bogus
expect_rc 2 "unknown option"

# Forged result on plugin stdout goes to stderr; the channel has exactly one result.
req "$FIX" echo '{}' | "$RUNNER" >"$T/out" 2>"$T/err"
expect_eq "$(grep -c '"t":"result"' "$T/out")" "1" "one result line on the channel"
expect_in "$T/err" '^\{"t":"result","status":0\}$' "plugin stdout moved to stderr"
expect_in "$T/out" '^\{"t":"plugin","name":"fixture","version":"1.2.3"\}$' "runner names the plugin first"

# Bad requests still end with a result line (status failed) and a reason.
echo 'not json' | "$RUNNER" >"$T/out" 2>"$T/err"
expect_in "$T/out" '"t":"result","status":1,.*malformed request' "malformed request"
echo '{"plugin":"x.so"}' | "$RUNNER" >"$T/out" 2>"$T/err"
expect_in "$T/out" 'need \\"plugin\\" and \\"type\\"' "request without type"
req "$FIX" nosuch '{}' | "$RUNNER" >"$T/out" 2>"$T/err"
expect_in "$T/out" "\"status\":3,.*plugin 'fixture' \(fixture.so\) has no step type 'nosuch'" "unknown step type"

# A parent that is already gone: the runner refuses to start.
run "$RUNNER" --parent-pid 1
expect_rc 3 "wrong parent"
expect_in "$T/err" "parent 1 is gone" "says why"

# Orphans: setsid + double fork, from a plugin and from a shell script.
marker="wfh-orphan-rp$$"
req "$FIX" orphan '{}' "rp$$" | "$RUNNER" >"$T/out" 2>"$T/err"
expect_in "$T/out" '"status":0' "orphan step ran"
sleep 0.2
alive "$marker" && { fail "setsid'd grandchild of a plugin survived"; pkill -f "$marker"; }
req "$SHELL_SO" shell "{\"run\":\"setsid sh -c 'sleep 300 # m1-$$' & (sleep 300 # m2-$$\n) & echo started\"}" | "$RUNNER" >"$T/out" 2>"$T/err"
expect_in "$T/out" '"name":"stdout","value":"started\\n"' "shell step ran"
sleep 0.2
alive "m1-$$" && { fail "setsid'd child of a script survived"; pkill -f "m1-$$"; }
alive "m2-$$" && { fail "background child of a script survived"; pkill -f "m2-$$"; }

# The same with the /proc/<pid>/stat scan that stands in for kernels without
# /proc/<pid>/task/<tid>/children.
req "$SHELL_SO" shell "{\"run\":\"setsid sh -c 'sleep 300 # m5-$$' & (sleep 300 # m6-$$\n) & echo started\"}" |
  WFH_PROCTREE_SCAN=1 "$RUNNER" >"$T/out" 2>"$T/err"
expect_in "$T/out" '"name":"stdout","value":"started\\n"' "shell step ran (scan fallback)"
sleep 0.2
alive "m5-$$" && { fail "setsid'd child survived (scan fallback)"; pkill -f "m5-$$"; }
alive "m6-$$" && { fail "background child survived (scan fallback)"; pkill -f "m6-$$"; }

# SIGTERM while the step runs: the runner kills the whole tree, then exits.
req "$SHELL_SO" shell "{\"run\":\"setsid sh -c 'sleep 300 # m3-$$' & sleep 300 # m4-$$\"}" >"$T/req"
"$RUNNER" <"$T/req" >"$T/out" 2>"$T/err" &
rpid=$!
for _ in $(seq 50); do alive "m3-$$" && alive "m4-$$" && break; sleep 0.1; done
alive "m3-$$" || fail "test setup: the setsid'd sleep did not start"
kill -TERM $rpid
wait $rpid
rc=$?
expect_eq "$rc" "143" "runner exits 128+SIGTERM"
sleep 0.2
alive "m3-$$" && { fail "setsid'd process survived SIGTERM of the runner"; pkill -f "m3-$$"; }
alive "m4-$$" && { fail "script survived SIGTERM of the runner"; pkill -f "m4-$$"; }

# SIGINT is the cooperative stop: is_cancelled() turns true and the step returns.
req "$FIX" hang '{}' >"$T/req"
"$RUNNER" <"$T/req" >"$T/out" 2>"$T/err" &
rpid=$!
for _ in $(seq 50); do grep -q hanging "$T/out" && break; sleep 0.1; done
kill -INT $rpid
wait $rpid
expect_eq "$?" "0" "runner exits normally after a cooperative cancel"
expect_in "$T/out" '"t":"result","status":6,.*"error":"cancelled"' "step saw is_cancelled() and returned cancelled"
done_testing
