# Profiles and the request's "sandbox" member: every result says what was applied, a
# malformed member fails the attempt before the plugin loads, a host without a policy is
# reported as unconfined rather than passed off as confined, and a non-root runner gets
# strict through a user namespace (or is refused with the missing piece named).
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/hostile/sandbox_lib.sh"

attack ok "" '"profile":"strict"'
expect_status 0 "strict"
for k in pidns netns mntns seccomp no_new_privs caps_dropped private_tmp; do
  expect_eq "$(result_field "[\"sandbox\"][\"$k\"]")" "true" "strict report: $k"
done
[ "$(result_field '["sandbox"]["landlock_abi"]')" -ge 1 ] || fail "strict report: landlock_abi"

attack ok "" '"profile":"process"'
expect_status 0 "process"
expect_eq "$(result_field '["sandbox"]["profile"]')" "process" "process report"
expect_eq "$(result_field '["sandbox"]["seccomp"]')" "false" "process: no seccomp claimed"
expect_eq "$(result_field '["sandbox"]["pidns"]')" "false" "process: no pid namespace claimed"

attack ok "" '"profile":"none"'
expect_eq "$(result_field '["sandbox"]["profile"]')" "none" "none report"
expect_eq "$(result_field '["sandbox"]["cgroup"]')" "none" "none: no cgroup claimed"

# No member at all: said so in the result.
printf '{"plugin":"%s","type":"hostile","inputs":{"case":"ok"}}' "$HOSTILE" | "$RUNNER" >"$T/out" 2>"$T/err"
grep '"t":"result"' "$T/out" >"$T/result"
expect_eq "$(result_field '["sandbox"]["note"]')" "request had no sandbox" "no member"

# Malformed members: a failed attempt that names the problem, and no plugin loaded.
attack ok "" '"profile":"lax"'
expect_error "^sandbox: unknown profile 'lax'$" "unknown profile"
expect_not_in "$T/out" '"t":"plugin"' "the plugin was not loaded"
attack ok "" '"profile":"strict","net":["host:99999"]'
expect_error '^sandbox: net\[0\] is not HOST:PORT$' "bad net grant"
attack ok "" '"profile":"strict","read":["relative/path"]'
expect_error '^sandbox: "read"\[0\] is not an absolute path$' "relative read grant"
attack ok "" '"profile":"strict","limits":{"memory":-5}'
expect_error '^sandbox: limit "memory" must be a positive integer$' "negative limit"

# Not root: strict through a user namespace; process has no cgroup to kill with.
# (Not in a chroot: the kernel refuses user namespaces there, and strict says so.)
if command -v setpriv >/dev/null && [ "$(id -u)" = 0 ] && ! in_chroot; then
  NB=$(mktemp -d /var/tmp/wfh-nobody.XXXXXX)
  chown 65534 "$NB"; chmod 755 "$NB"
  trap 'rm -rf "$T" "$NB"' EXIT
  for prof in strict process; do
    printf '{"plugin":"%s","type":"hostile","inputs":{"case":"write","arg":"%s/x"},"workspace":"%s","sandbox":{"profile":"%s"}}' \
      "$HOSTILE" "$NB" "$NB" "$prof" | setpriv --reuid=65534 --regid=65534 --clear-groups "$RUNNER" >"$T/out" 2>"$T/err"
    grep '"t":"result"' "$T/out" >"$T/result"
    if [ $prof = strict ]; then
      expect_status 0 "non-root strict"
      expect_eq "$(result_field '["sandbox"]["pidns"]')" "true" "non-root strict: pid namespace"
    else
      expect_error "^sandbox: profile process needs a cgroup to kill the step's tree; none is available$" \
        "non-root process without a cgroup"
    fi
  done
fi
done_testing
