#!/usr/bin/env bash
# `wfhost plugin run` (one step of an uninstalled plugin, sandboxed, no registry) and
# `wfhost plugin new` (the templates with names filled in), from the build tree.
. "$(dirname "$0")/../lib.sh"
CC=${CC:-cc}
MAP="$WFH_SRC/plugins/exports.map"
plugin() { # plugin OUT.so [-D...]: the broken.c fixture, unbroken unless told
  local out=$1; shift
  "$CC" -std=c11 -Wall -Wextra -Werror -I"$WFH_SRC/include" -fPIC -fvisibility=hidden -shared -o "$out" \
    "$@" "$WFH_SRC/tests/sdk/fixtures/broken.c" -Wl,--version-script="$MAP" || fail "fixture does not build"
}
plugin "$T/echo.so"

# A development command: without a terminal it refuses, says why, and runs nothing.
run "$WFH" plugin run "$T/echo.so" echo --with '{"text": "hi"}' </dev/null
expect_rc 3 "no terminal, no --dev: refused"
expect_in "$T/err" "stdin is not a terminal.*pass --dev" "the refusal says what to do"
expect_eq "$(wc -c <"$T/out")" "0" "nothing ran"

run "$WFH" plugin run "$T/echo.so" echo --dev --with '{"text": "hi"}' </dev/null
expect_rc 0 "--dev runs the step"
expect_eq "$(json "$T/out" '["text"]')" "hi" "the outputs are printed as JSON"

# TYPE may be left out when the plugin has one; --json carries status and sandbox.
run "$WFH" plugin run "$T/echo.so" --dev --json --with '{"text": "hi"}'
expect_rc 0 "the only step type is the default"
expect_eq "$(json "$T/out" '["status"]')" "ok" "--json status"
expect_eq "$(json "$T/out" '["sandbox"]["profile"]')" "strict" "it ran in the strict sandbox, as exec runs steps"

# Inputs are checked against the schema before anything runs, every problem listed.
run "$WFH" plugin run "$T/echo.so" echo --dev --with '{"text": 5, "other": 1}'
expect_rc 2 "schema problems are invalid input"
expect_in "$T/err" "with.text: expected string, got integer" "names the input and the problem"
expect_in "$T/err" "with.other" "and the other problem too"
run "$WFH" plugin run "$T/echo.so" echo --dev --with '{"text": '
expect_rc 2 "malformed --with"
expect_in "$T/err" "with:1:[0-9]+: " "names the position in --with"
run "$WFH" plugin run "$T/echo.so" nosuch --dev
expect_rc 2 "unknown step type"
expect_in "$T/err" "has no step type 'nosuch' \(it has: echo\)" "lists the step types it has"

# What the step itself refuses keeps its class: invalid input is exit 2, failed is 1.
plugin "$T/wrong.so" -DBROKEN_WRONG_CLASS
run "$WFH" plugin run "$T/wrong.so" --dev --with '{"text": ""}'
expect_rc 2 "the step's own invalid-input verdict is exit 2"
plugin "$T/crash.so" -DBROKEN_CRASH_VALID
run "$WFH" plugin run "$T/crash.so" --dev --with '{"text": "x"}'
expect_rc 1 "a crashing step is a failed run, not a crashed wfhost"
expect_in "$T/err" "echo \(broken\): failed: .*(signal 11|SIGSEGV)" "the crash is named"

# The sandbox grants what the policy grants: a capability it does not cover is refused
# with the line to add, and --allow-* covers it for this run.
plugin "$T/net.so" -DNEEDS_NET
run "$WFH" plugin run "$T/net.so" --dev --with '{"text": "x"}'
expect_rc 3 "an ungranted capability is refused"
expect_in "$T/err" "allow +echo --allow-net=127.0.0.1:9" "the refusal gives the policy line"
run "$WFH" plugin run "$T/net.so" --dev --allow-net=127.0.0.1:9 --with '{"text": "x"}'
expect_rc 0 "--allow-net grants it"

# A hanging step is stopped by --timeout.
plugin "$T/hang.so" -DBROKEN_HANG
run "$WFH" plugin run "$T/hang.so" --dev --timeout 1 --with '{"text": "x"}'
expect_rc 1 "--timeout stops a hanging step"
expect_in "$T/err" "timeout: timed out after 1000 ms" "says it timed out"

run "$WFH" plugin run --help
expect_rc 0 "--help"
expect_in "$T/out" "refuses when" "--help explains the terminal rule"

# plugin new: the template, renamed; refuses bad names and existing directories.
cd "$T"
run "$WFH" plugin new acme-greet
expect_rc 0 "plugin new (C)"
[ -f acme-greet/acme-greet.c ] || fail "the source file is renamed"
expect_eq "$(grep -rl sdktemplate acme-greet | wc -l)" "0" "no template name is left"
expect_in acme-greet/acme-greet.c '\.name = "acme-greet"' "the plugin is named"
[ -x acme-greet/tests/run.sh ] || fail "tests/run.sh stays executable"
run "$WFH" plugin new acme-greet
expect_rc 2 "an existing directory is refused"
expect_in "$T/err" "acme-greet already exists" "and named"
run "$WFH" plugin new Bad_Name
expect_rc 2 "a bad name is refused"
expect_in "$T/err" "'Bad_Name' is not a plugin name" "and explained"
run "$WFH" plugin new x --lang cobol
expect_rc 2 "an unknown language is refused"
run "$WFH" plugin new ferris --lang rust --dir "$T/rs"
expect_rc 0 "plugin new --lang rust --dir"
expect_in "$T/rs/Cargo.toml" '^name = "ferris"' "the crate is named"
expect_in "$T/rs/src/lib.rs" 'b"ferris\\0"' "the descriptor is named"
# The copy is built beside the target and renamed: no temporary is left behind.
expect_eq "$(ls "$T" | grep -c '\.new-')" "0" "no half-made directory"

# What plugin new made builds and conforms, with nothing but the headers.
"$CC" -std=c11 -Wall -Wextra -Werror -I"$WFH_SRC/include" -fPIC -fvisibility=hidden -shared \
  -o "$T/acme.so" acme-greet/acme-greet.c acme-greet/json_in.c -Wl,--version-script="$MAP" -Wl,-z,defs ||
  fail "the new C plugin does not build"
run "$WFH" plugin check "$T/acme.so"
expect_rc 0 "the new C plugin conforms"
run "$WFH" plugin run "$T/acme.so" acme-greet --dev --with '{"name": "Ada", "times": 3}'
expect_rc 0 "the new C plugin runs"
expect_eq "$(json "$T/out" '["message"]')" "Hello, Ada! Hello, Ada! Hello, Ada!" "its output"
done_testing
