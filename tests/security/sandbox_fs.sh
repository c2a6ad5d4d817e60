# File system and environment attacks under profile strict: writes outside the grant,
# reads of a secret, exec of a program that was not granted, the host's environment,
# and /tmp. Each is refused with the kernel's error and nothing outside changed.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/hostile/sandbox_lib.sh"
# Outside /tmp where possible (fixture_dir): the step's /tmp is private, so a secret
# under /tmp would be merely invisible, and the test wants Landlock's refusal.
fixture_dir fakehome
FAKE=$FIX
trap 'rm -rf "$T" "$FAKE"' EXIT
mkdir -p "$FAKE/.ssh" "$FAKE/out"
echo "-----BEGIN FAKE KEY-----" >"$FAKE/.ssh/id_ed25519"
S='"profile":"strict"'

attack write "$FAKE/out/pwned" "$S"
expect_status 1 "write outside grant"
expect_error "^$FAKE/out/pwned: $DENIED$" "write outside grant"
[ ! -e "$FAKE/out/pwned" ] || fail "write outside grant: the file was created"

attack write "$FAKE/out/ok" "$S,\"write\":[\"$FAKE/out\"]"
expect_status 0 "write inside grant"
[ -s "$FAKE/out/ok" ] || fail "write inside grant: no file"

attack write "$WS/inside" "$S"
expect_status 0 "write in the workspace"
[ -s "$WS/inside" ] || fail "write in the workspace: no file"

attack read "$FAKE/.ssh/id_ed25519" "$S"
expect_error "^$FAKE/.ssh/id_ed25519: $DENIED$" "read of a fake ssh key"
expect_status 1 "read of a fake ssh key"
attack read "$FAKE/.ssh/id_ed25519" "$S,\"read\":[\"$FAKE/out\"]"
expect_error "$DENIED$" "read grant of a sibling does not cover the key"
expect_status 1 "read grant of a sibling does not cover the key"
attack read /etc/shadow "$S"
expect_error "^/etc/shadow: Permission denied$" "read /etc/shadow"
# Even for a step type that may read all of /etc (the shell), its secrets are masked.
attack read /etc/shadow "$S,\"read\":[\"/etc\"]"
expect_error "^/etc/shadow: Permission denied$" "read /etc/shadow under an /etc grant"
attack read /etc/passwd "$S,\"read\":[\"/etc\"]"
expect_status 0 "read /etc/passwd under an /etc grant"
[ -s /etc/shadow ] && [ "$(stat -c %s /etc/shadow)" -gt 0 ] || fail "the host's /etc/shadow changed"

attack exec /usr/bin/id "$S"
expect_error "^/usr/bin/id: Permission denied$" "exec of an ungranted program"
attack exec /usr/bin/id "$S,\"run\":[\"/usr/bin/id\"]"
expect_status 0 "exec of a granted program"
# The loader trick: with ld.so executable, `ld.so /usr/bin/whoami` would run anything
# readable; bin directories are not readable, so it fails.
attack read /usr/bin/whoami "$S,\"run\":[\"/usr/bin/id\"]"
expect_error "Permission denied$" "bin directories stay unreadable"

# The host's environment never reaches the step; granted variables do.
export WFH_TEST_SECRET=hunter2
attack env WFH_TEST_SECRET "$S"
expect_status 0 "env"
expect_in "$T/out" '"value":"\(unset\)"' "host environment is not inherited"
attack env GREETING "$S,\"env\":{\"GREETING\":\"hello\"}"
expect_in "$T/out" '"value":"hello"' "granted variable is set"

# /tmp is private: what the step writes there is gone with it.
rm -f /tmp/wfh-sandbox-private
attack tmp "" "$S"
expect_status 0 "private /tmp"
[ ! -e /tmp/wfh-sandbox-private ] || { fail "private /tmp: the host's /tmp changed"; rm -f /tmp/wfh-sandbox-private; }
expect_eq "$(result_field '["sandbox"]["private_tmp"]')" "true" "report: private_tmp"
done_testing
