# Escapes and crashes: double fork + setsid, ptrace and kill of the host, segfault,
# abort, exit without a result, and the runner SIGKILLed mid-step. The step fails
# with a precise reason, the test shell (standing in for the host) lives on, and no
# process of the step survives.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/hostile/sandbox_lib.sh"
tag=wfhe$$
# A process by that name that is not a zombie (a zombie no longer runs anything).
alive() {
  local p
  for p in $(pgrep -x "$1"); do
    [ "$(ps -o stat= -p "$p" 2>/dev/null | cut -c1)" != Z ] && return 0
  done
  return 1
}

for prof in strict process; do
  attack escape "${tag}a" "\"profile\":\"$prof\""
  expect_status 0 "double fork + setsid ($prof): the step itself succeeds"
  alive "${tag}a" && fail "double fork + setsid ($prof): the escapee survived the attempt"
  attack escape_hang "${tag}b" "\"profile\":\"$prof\",\"limits\":{\"wall_ms\":1000}"
  expect_error '^timed out: wall time limit 1000 ms exceeded$' "setsid + hang ($prof)"
  alive "${tag}b" && fail "setsid + hang ($prof): the escapee survived the timeout"
done

attack ptrace $$ '"profile":"strict"'
if [ "$WFH_SANITIZE" = 1 ]; then
  # Sanitizer builds let ptrace through seccomp (LeakSanitizer needs it); the pid
  # namespace still hides the host.
  expect_error '^ptrace: (Operation not permitted|No such process)$' "ptrace of the host"
else
  expect_error '^ptrace: Operation not permitted$' "ptrace of the host"
fi
attack kill $$ '"profile":"strict"'
expect_error '^kill: No such process$' "kill of the host (pid namespace)"
# A host process the step can name (its pid is passed in): still out of reach.
sleep 30 & victim=$!
attack kill $victim '"profile":"strict"'
expect_error '^kill: No such process$' "kill of a host process"
kill -0 $victim 2>/dev/null || fail "kill of a host process: it died"
kill $victim

# A crash: the runner dies of the step's signal, as it would unconfined (the host then
# names the plugin and the signal: exec_fixture.sh), after the supervisor's report.
attack segv "" '"profile":"strict"'
expect_eq "$rc" 139 "segfault: the runner dies of SIGSEGV"
expect_eq "$(tail -n 1 "$T/out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["t"])')" sandbox \
  "segfault: the supervisor's report is the last line"
attack abort "" '"profile":"strict"'
expect_eq "$rc" 134 "abort: the runner dies of SIGABRT (the step is not pid 1)"
attack noresult "" '"profile":"strict"'
expect_error '^step exited with status 0 without a result$' "exit 0 without a result"

# The runner (supervisor) SIGKILLed mid-step, as when the host dies: pid 1 of the
# namespace has PDEATHSIG, so the whole namespace goes with it.
printf '{"plugin":"%s","type":"hostile","inputs":{"case":"escape_hang","arg":"%sc"},"workspace":"%s","sandbox":{"profile":"strict"}}' \
  "$HOSTILE" "$tag" "$WS" >"$T/req"
"$RUNNER" <"$T/req" >/dev/null 2>&1 & r=$!
for _ in $(seq 100); do alive "${tag}c" && break; sleep 0.05; done
alive "${tag}c" || fail "runner SIGKILL: the escapee never started"
kill -9 $r; wait $r 2>/dev/null
for _ in $(seq 40); do alive "${tag}c" || break; sleep 0.05; done
alive "${tag}c" && fail "runner SIGKILL (strict): the step survived its runner"

# Under process there is no namespace: the escapee outlives the killed runner until
# the next runner's start-up sweep of stale step cgroups.
printf '{"plugin":"%s","type":"hostile","inputs":{"case":"escape_hang","arg":"%sd"},"workspace":"%s","sandbox":{"profile":"process"}}' \
  "$HOSTILE" "$tag" "$WS" >"$T/req"
"$RUNNER" <"$T/req" >/dev/null 2>&1 & r=$!
for _ in $(seq 100); do alive "${tag}d" && break; sleep 0.05; done
kill -9 $r; wait $r 2>/dev/null
attack ok "" '"profile":"process"'
expect_status 0 "sweep run"
for _ in $(seq 40); do alive "${tag}d" || break; sleep 0.05; done
alive "${tag}d" && { fail "start-up sweep: a crashed runner's step survived"; kill $(pgrep -x "${tag}d"); }
expect_no_leftovers "after the sweep"
done_testing
