# Resource attacks under profile strict: each is stopped by its own limit, the failure
# names that limit, and nothing of the step is left running.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/hostile/sandbox_lib.sh"

# Tight limits so the bombs end in seconds; under a sanitizer every process carries
# its shadow memory, so the fork bomb gets room to hit the process limit first.
FB=$LIMITS
[ "$WFH_SANITIZE" = 1 ] && FB='"limits":{"memory":1073741824,"pids":32,"wall_ms":3000}'
# A loaded 2-vCPU machine may need several seconds of wall time for one of CPU.
SLOW='"limits":{"memory":67108864,"pids":32,"cpu_ms":1000,"wall_ms":30000,"output":1048576,"result":1048576}'
attack forkbomb "" "\"profile\":\"strict\",$FB"
expect_rc 0 "fork bomb: runner"
expect_status 4 "fork bomb"
expect_error '^timed out: wall time limit 3000 ms exceeded; process limit 32 was reached$' "fork bomb"
expect_no_leftovers "fork bomb"

attack membomb "" "\"profile\":\"strict\",$SLOW"
expect_status 1 "memory bomb"
expect_error '^memory limit 64M exceeded \(killed by the OOM killer\)$' "memory bomb"
expect_no_leftovers "memory bomb"

attack spin "" "\"profile\":\"strict\",$SLOW"
expect_error '^CPU time limit 1000 ms exceeded$' "cpu spin"

# CPU spin with CPU time to spare: the wall clock stops it.
attack spin "" "\"profile\":\"strict\",\"limits\":{\"cpu_ms\":60000,\"wall_ms\":1500}"
expect_status 4 "spin past the timeout"
expect_error '^timed out: wall time limit 1500 ms exceeded$' "spin past the timeout"
expect_no_leftovers "spin past the timeout"

attack flood "" "\"profile\":\"strict\",$LIMITS"
expect_error '^output limit 1M exceeded on stderr; step killed$' "stderr flood"
bytes=$(wc -c <"$T/err")
[ "$bytes" -le 1048576 ] || fail "stderr flood: $bytes bytes passed the 1M cap"
[ "$bytes" -ge 1000000 ] || fail "stderr flood: only $bytes bytes relayed before the cap"

attack bigresult 2000000 "\"profile\":\"strict\",$LIMITS"
expect_error '^result limit 1M exceeded on stdout; step killed$' "huge result"

# The same limits hold under profile process (cgroups without namespaces).
attack membomb "" "\"profile\":\"process\",$SLOW"
expect_error '^memory limit 64M exceeded' "memory bomb (process)"
attack forkbomb "" "\"profile\":\"process\",$FB"
expect_error 'process limit 32 was reached' "fork bomb (process)"
expect_no_leftovers "fork bomb (process)"

# Defaults apply when the request names no limits: the report still shows a cgroup.
attack ok "" "\"profile\":\"strict\""
expect_status 0 "defaults"
expect_eq "$(result_field '["sandbox"]["rlimits"]')" "true" "defaults: rlimits applied"
done_testing
