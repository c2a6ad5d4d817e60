#!/usr/bin/env bash
# `wfhost plugin info`: by name, name@MAJOR, step type name and file; text and --json;
# refusals and unknown names exit 2 with a one-line reason.
. "$(dirname "$0")/../lib.sh"
TP=$WFH_BUILD/tests/plugins

run "$WFH" plugin info shell
expect_rc 0 "info shell"
expect_in "$T/out" '^plugin shell [0-9]+\.[0-9]+\.[0-9]+ \(plugin ABI 1\.1\)' "header line"
expect_in "$T/out" '^step type shell \(uses: shell or shell@1\)' "step type line"
expect_in "$T/out" '"run": \{' "input schema printed"
expect_in "$T/out" 'stdout_truncated' "outputs listed"
expect_in "$T/out" '^    run +\["/bin"' "capabilities listed"

run "$WFH" plugin info shell@1 --json
expect_rc 0 "info shell@1 --json"
expect_eq "$(json "$T/out" '["name"]')" "shell" "json name"
expect_eq "$(json "$T/out" '["abi"]')" "1.1" "json abi"
expect_eq "$(json "$T/out" '["step_types"][0]["input_schema"]["properties"]["argv"]["type"]')" "array" "json input schema"
expect_eq "$(json "$T/out" '["step_types"][0]["capabilities"]["run"][0]')" "/bin" "json capabilities"

run "$WFH" plugin info shell@7
expect_rc 2 "a major that is not installed"
expect_in "$T/err" "step type 'shell@7' is not installed; installed: shell@1" "says what is installed"

run "$WFH" plugin info no-such-thing
expect_rc 2 "unknown name"
expect_in "$T/err" "^wfhost: unknown step type 'no-such-thing' \(known: .*shell" "lists known types"

# Names resolve in the signed registry: newest by default, or the given major; a step
# type name finds its plugin.
install_plugin "$TP/fixture_1_4.so" "$TP/fixture_2_1.so"
run "$WFH" plugin info fixture --json
expect_eq "$(json "$T/out" '["version"]')" "2.1.0" "newest version by default"
run "$WFH" plugin info fixture@1 --json
expect_eq "$(json "$T/out" '["version"]')" "1.4.0" "newest 1.x for @1"
run "$WFH" plugin info crash@1 --json
expect_eq "$(json "$T/out" '["name"]')" "fixture" "a step type name finds its plugin"
run "$WFH" plugin info fixture --plugin-dir "$TP"
expect_rc 2 "--plugin-dir is gone"
expect_in "$T/err" "plugins load only from the signed registry.*wfhost plugin install FILE.so" "says how instead"

# Files: good, refused, not a plugin.
run "$WFH" plugin info "$TP/abi_frozen_1_0.so"
expect_rc 0 "info on a file"
expect_in "$T/out" "^plugin frozen 1.0.0" "file probed"
run "$WFH" plugin info "$TP/abi_major2.so"
expect_rc 2 "refused plugin file"
expect_eq "$(cat "$T/err")" "wfhost: plugin 'variant' (abi_major2.so) needs plugin ABI 2.0; this wfhost speaks 1.1: upgrade wfhost or use a 1.x build of the plugin" "one-line refusal"
echo "not an ELF file" >"$T/fake.so"
run "$WFH" plugin info "$T/fake.so"
expect_rc 2 "garbage file"
expect_in "$T/err" "fake.so: cannot load" "garbage file named"

# Usage.
run "$WFH" plugin --help
expect_rc 0 "plugin --help"
expect_in "$T/out" "info" "subcommands listed"
run "$WFH" plugin info --help
expect_rc 0 "plugin info --help"
run "$WFH" plugin frobnicate
expect_rc 2 "unknown subcommand"
expect_in "$T/err" "unknown subcommand 'frobnicate'" "unknown subcommand named"
run "$WFH" plugin info
expect_rc 2 "missing argument"
run "$WFH" plugin info shell@x
expect_rc 2 "bad major"
done_testing
