# The step's private /tmp against paths under the host's /tmp (CI may clone and build
# anywhere, /tmp/x included): a workspace or grant under /tmp stays visible and usable
# with exactly its grant's rights, everything else under /tmp is invisible, and what
# the step writes to its own /tmp never reaches the host's.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/hostile/sandbox_lib.sh"
H=$(mktemp -d /tmp/wfh-sbxtmp.XXXXXX)
trap 'rm -rf "$T" "$H"' EXIT
mkdir -p "$H/ws/sub" "$H/rw" "$H/ro" "$H/hidden"
echo secret >"$H/hidden/key"; echo public >"$H/ro/file"
S='"profile":"strict"'
WS=$H/ws

attack write "$H/ws/inside" "$S"
expect_status 0 "workspace under /tmp is writable"
expect_eq "$(cat "$H/ws/inside" 2>/dev/null)" "pwned" "the workspace write reached the host"
attack read "$H/ws/inside" "$S"
expect_status 0 "workspace under /tmp is readable"

# Nested: a grant inside the workspace, both under /tmp.
attack write "$H/ws/sub/n" "$S,\"write\":[\"$H/ws/sub\"]"
expect_status 0 "nested grant under the workspace"
[ -s "$H/ws/sub/n" ] || fail "nested grant: no file"

attack write "$H/rw/x" "$S,\"write\":[\"$H/rw\"]"
expect_status 0 "write grant under /tmp"
[ -s "$H/rw/x" ] || fail "write grant under /tmp: no file on the host"

# A read grant under /tmp is visible but not writable: Landlock's /tmp rule covers
# everything beneath /tmp, so the runner binds it read-only.
attack read "$H/ro/file" "$S,\"read\":[\"$H/ro\"]"
expect_status 0 "read grant under /tmp"
attack write "$H/ro/new" "$S,\"read\":[\"$H/ro\"]"
expect_error "^$H/ro/new: Read-only file system$" "write under a read grant under /tmp"
[ ! -e "$H/ro/new" ] || fail "write under a read grant: the file was created"
attack write "$H/ro/file" "$S,\"read\":[\"$H/ro/file\"]"
expect_error "^$H/ro/file: Read-only file system$" "write to a granted file under /tmp"
expect_eq "$(cat "$H/ro/file")" "public" "the read-granted file is unchanged"

# Rights are the union along the path, as Landlock's are: a write grant inside a read
# grant is writable, and a read grant inside the workspace does not take its write away.
mkdir "$H/ro/w"
attack write "$H/ro/w/x" "$S,\"read\":[\"$H/ro\"],\"write\":[\"$H/ro/w\"]"
expect_status 0 "write grant inside a read grant under /tmp"
attack write "$H/ws/sub/r" "$S,\"read\":[\"$H/ws/sub\"]"
expect_status 0 "read grant inside the workspace keeps the workspace's write"

# The plugin itself under /tmp (a build tree in /tmp) loads but cannot be rewritten.
mkdir "$H/plug"; cp "$HOSTILE" "$H/plug/hostile.so"
HOSTILE_SAVED=$HOSTILE; HOSTILE=$H/plug/hostile.so
attack write "$H/plug/hostile.so" "$S"
expect_error "^$H/plug/hostile.so: Read-only file system$" "the plugin under /tmp is read-only"
cmp -s "$H/plug/hostile.so" "$HOSTILE_SAVED" || fail "the plugin under /tmp was changed"
HOSTILE=$HOSTILE_SAVED

# A single granted file under /tmp: that file only, not its siblings.
attack read "$H/ro/file" "$S,\"read\":[\"$H/ro/file\"]"
expect_status 0 "file grant under /tmp"
attack read "$H/hidden/key" "$S,\"read\":[\"$H/ro/file\"]"
expect_error "^$H/hidden/key: No such file or directory$" "an ungranted sibling under /tmp is invisible"

# Ungranted paths under /tmp do not exist for the step: nothing read, nothing written.
attack read "$H/hidden/key" "$S"
expect_error "^$H/hidden/key: No such file or directory$" "ungranted secret under /tmp"
attack write "$H/hidden/pwned" "$S"
expect_status 1 "ungranted write under /tmp"
[ ! -e "$H/hidden/pwned" ] || fail "ungranted write under /tmp: the file was created"

# A hard link from the grant to an ungranted file under /tmp.
attack hardlink "$H/hidden/key" "$S,\"write\":[\"$H/rw\"]"
sed -i "s|\"arg\":\"$H/hidden/key\"|&,\"to\":\"$H/rw/l\"|" "$T/req"
timeout 60 "$RUNNER" <"$T/req" >"$T/out" 2>"$T/err"; grep '"t":"result"' "$T/out" >"$T/result"
expect_error '^link: (No such file or directory|Invalid cross-device link|Permission denied)$' "hard link to an ungranted file under /tmp"
[ ! -e "$H/rw/l" ] || fail "hard link under /tmp: the link exists"

# The grants did not make the step's /tmp the host's.
rm -f /tmp/wfh-sandbox-private
attack tmp "" "$S,\"write\":[\"$H/rw\"]"
expect_status 0 "private /tmp with grants under /tmp"
[ ! -e /tmp/wfh-sandbox-private ] || { fail "private /tmp: the host's /tmp changed"; rm -f /tmp/wfh-sandbox-private; }
done_testing
