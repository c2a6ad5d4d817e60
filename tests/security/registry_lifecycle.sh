# The happy paths of the registry: init, install two majors side by side, list (text
# and JSON), disable/enable/yank, remove one major (its blob goes, the other's stays),
# reinstall the same major (replaces), and verify throughout.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/fixtures/registry_env.sh"

run "$WFH" plugin list
expect_rc 2 "no registry yet"
expect_in "$T/err" "no wfhost home here|no registry; run 'wfhost registry init --new-key'" "hint to init"
reg_init
expect_in "$T/out" "signing key [0-9A-F]{16}" "init names the key"
[ "$(stat -c %a "$WFH_HOME/keys/wfhost.key")" = 600 ] || fail "secret key is not 0600"
run "$WFH" plugin list
expect_rc 0 "empty list"
expect_in "$T/out" "no plugins installed \(index seq 1\)" "empty registry"

reg_install "$FIX/marker.so"
reg_install "$FIX/marker_v2.so"
run "$WFH" plugin list --json
expect_rc 0 "list --json"
expect_eq "$(json "$T/out" '["plugins"][0]["version"]')" "1.0.0" "first entry"
expect_eq "$(json "$T/out" '["plugins"][1]["version"]')" "2.0.0" "second major side by side"
expect_eq "$(json "$T/out" '["plugins"][0]["types"][0]["name"]')" "marker" "step type recorded"
expect_eq "$(json "$T/out" '["plugins"][0]["types"][0]["input_schema"]["type"]')" "object" "input schema recorded"
expect_eq "$(json "$T/out" '["plugins"][0]["abi"]["major"]')" "1" "abi recorded"
b2=$(json "$T/out" '["plugins"][0]["blake2b256"]')
sha=$(json "$T/out" '["plugins"][0]["sha256"]')
expect_eq "$b2" "$(b2sum -l 256 "$FIX/marker.so" | cut -d' ' -f1)" "blake2b256 matches b2sum -l 256"
expect_eq "$sha" "$(sha256sum "$FIX/marker.so" | cut -d' ' -f1)" "sha256 matches sha256sum"
[ "$(stat -c %a "$REG/blobs/$b2.so")" = 444 ] || fail "blob is not 0444"

run "$WFH" plugin disable marker@2
expect_rc 0 "disable"
run "$WFH" plugin list
expect_in "$T/out" "marker +2\.0\.0 +disabled" "disabled shown"
run "$WFH" plugin enable marker@2
expect_rc 0 "enable"
run "$WFH" plugin yank marker@1
expect_rc 0 "yank"
run "$WFH" plugin list
expect_in "$T/out" "marker +1\.0\.0 +yanked" "yanked shown"
run "$WFH" plugin enable marker@1
reg_install "$FIX/marker_v1_1.so"
run "$WFH" plugin list
expect_in "$T/out" "marker +1\.1\.0 +active" "same major replaced by 1.1.0"
expect_not_in "$T/out" "1\.0\.0" "1.0.0 replaced"
[ -e "$REG/blobs/$b2.so" ] && fail "the replaced 1.0.0 blob was not removed"
run "$WFH" plugin remove marker@1
expect_rc 0 "remove @1"
run "$WFH" plugin list
expect_not_in "$T/out" "1\.1\.0" "removed"
expect_in "$T/out" "marker +2\.0\.0" "other major kept"
[ "$(ls "$REG/blobs" | wc -l)" = 1 ] || fail "blobs left: $(ls "$REG/blobs")"
run "$WFH" plugin remove nosuch
expect_rc 2 "remove unknown"
expect_in "$T/err" "plugin nosuch is not installed" "remove unknown message"
run "$WFH" plugin remove '../x'
expect_rc 2 "bad name"
run "$WFH" plugin verify
expect_rc 0 "verify at the end"
done_testing
