#!/usr/bin/env bash
# `wfhost plugin check` against tests/sdk/fixtures/broken.c built once per violation
# it claims to find (-DBROKEN_<KIND>): each must fail (exit 1) naming the rule, and the
# unbroken build must pass (exit 0). The plugins are built as a third party would,
# with include/wfhost and the exports map only.
. "$(dirname "$0")/../lib.sh"
CC=${CC:-cc}
SRC="$WFH_SRC/tests/sdk/fixtures/broken.c"
MAP="$WFH_SRC/plugins/exports.map"

build() { # build KIND [extra link flags...]; the version script unless KIND is EXTRA_EXPORT
  local kind=$1; shift
  local vs=(-Wl,--version-script="$MAP")
  [ "$kind" = EXTRA_EXPORT ] && vs=()
  "$CC" -std=c11 -Wall -Wextra -Werror -I"$WFH_SRC/include" -fPIC -fvisibility=hidden -shared \
    -o "$T/$kind.so" -DBROKEN_"$kind" "$SRC" "${vs[@]}" "$@" || fail "fixture $kind does not build"
}

# check KIND PATTERN: the checker refuses the KIND fixture with a FAIL line matching PATTERN.
check() {
  run "$WFH" plugin check --timeout 2 "$T/$1.so"
  expect_rc 1 "plugin check refuses the $1 fixture"
  expect_in "$T/out" "^  FAIL  $2" "$1: the report names the problem"
  expect_in "$T/out" "problem\(s\).*does not conform" "$1: the summary line"
}

build OK
run "$WFH" plugin check "$T/OK.so"
expect_rc 0 "the unbroken fixture conforms"
expect_in "$T/out" "ok    echo: run without required input 'text': refused as invalid input" "invalid inputs were tried"
expect_in "$T/out" "ok    echo: run with 'text' = 12345 \(wrong type\): refused as invalid input" "wrong types were tried"
expect_in "$T/out" "ok    echo: run with required inputs \{\"text\":\"x\"\}: succeeded" "a valid input was generated"
expect_not_in "$T/out" "^  (FAIL|warn) " "no problem or warning for a conforming plugin"

build NO_ENTRY;          check NO_ENTRY "load: .*does not export wfh_plugin_entry_v1"
build EXTRA_EXPORT;      check EXTRA_EXPORT "elf: .*exports 'broken_extra_symbol'"
build RPATH -Wl,-rpath,/opt/x; check RPATH "elf: .*(DT_RUNPATH|DT_RPATH)"
# A library needed by path (linked by file name, without a SONAME) would load from
# wherever that path points, outside anything the registry signed.
printf 'int broken_dep(void);\nint broken_dep(void) { return 1; }\n' >"$T/dep.c"
"$CC" -shared -fPIC -o "$T/libdep.so" "$T/dep.c" || fail "the soname-less library does not build"
build NEEDED_PATH "$T/libdep.so"; check NEEDED_PATH "elf: .*needs library '$T/libdep.so' by path"
build ABI_FUTURE;        check ABI_FUTURE "load: .*needs plugin ABI 2\.0; this wfhost speaks 1\."
build NAME;              check NAME "load: .*name 'Broken Name' is not valid"
build SCHEMA_NOT_OBJECT; check SCHEMA_NOT_OBJECT "echo: input schema: must say \"type\": \"object\""
build SCHEMA_KEYWORD;    check SCHEMA_KEYWORD "echo: input schema: .*properties\.text\.type"
build OUTPUTS;           check OUTPUTS "echo: outputs: 'text out'"
build CAPS_NET;          check CAPS_NET "echo: capabilities: \"network\" must be an array"
build CAPS_PATH;         check CAPS_PATH "echo: capabilities: read\[0\] = \"relative/path\": want an absolute path"
build CRASH_VALID;       check CRASH_VALID "echo: run with required inputs .*crashed.*(signal 11|SIGSEGV)"
build CRASH_INVALID;     check CRASH_INVALID "echo: run without required input 'text': crashed"
build HANG;              check HANG "echo: run with required inputs .*did not finish.*timed out after 2000 ms"
build ACCEPTS_INVALID;   check ACCEPTS_INVALID "echo: run without required input 'text': succeeded, but the inputs break the schema"
build WRONG_CLASS;       check WRONG_CLASS "echo: run without required input 'text': ended 'failed' \(no text\), want 'invalid input'"
build NO_MESSAGE;        check NO_MESSAGE "echo: run with required inputs .*failed without a message"
build UNDECLARED_OUTPUT; check UNDECLARED_OUTPUT "echo: run with required inputs .*set output 'extra', which the step type's outputs do not declare"
# A plugin built with -fsanitize=address is run under it: the overflow that a plain build
# survives is a FAIL with the sanitizer's report. (Not in the sanitizer build of wfhost:
# its runner carries clang's runtime, which cannot share a process with gcc's.)
if [ "${WFH_SANITIZE:-0}" != 1 ] && echo 'int main(void){return 0;}' |
   "$CC" -fsanitize=address -x c - -o "$T/asan-probe" 2>/dev/null; then
  build HEAP_OVERFLOW
  run "$WFH" plugin check "$T/HEAP_OVERFLOW.so"
  expect_rc 0 "without the sanitizer the overflow goes unseen"
  build HEAP_OVERFLOW -fsanitize=address
  check HEAP_OVERFLOW "echo: run with required inputs .*AddressSanitizer: heap-buffer-overflow"
  expect_in "$T/out" "asan: built with AddressSanitizer: the runner preloads libasan" "says it preloads the runtime"
else
  echo "note: AddressSanitizer case skipped (sanitizer build of wfhost, or $CC cannot build with ASan)"
fi

# A schema problem stops before any run: nothing is run against a schema it cannot trust.
run "$WFH" plugin check "$T/SCHEMA_NOT_OBJECT.so"
expect_not_in "$T/out" "echo: run " "no runs after a schema problem"

# --no-run: the file and the descriptor only; a plugin that crashes when run passes.
run "$WFH" plugin check --no-run "$T/CRASH_VALID.so"
expect_rc 0 "--no-run runs no step"
expect_in "$T/out" "skip  echo: not run \(--no-run\)" "and says so"

# --json: the same verdicts for machines.
run "$WFH" plugin check --json "$T/WRONG_CLASS.so"
expect_rc 1 "--json keeps the exit status"
expect_eq "$(json "$T/out" '["ok"]')" "false" "--json: ok is false"
expect_eq "$(json "$T/out" '["problems"]')" "2" "--json: one problem per invalid input the step misclassified"
expect_eq "$(json "$T/out" '["checks"][0]["check"]')" "elf" "--json: checks listed in order"

# Usage errors are exit 2, with a one-line message naming the file.
run "$WFH" plugin check "$T/missing.so"
expect_rc 2 "a missing file is a usage error"
expect_in "$T/err" "plugin check: .*missing.so: No such file" "the message names the file"
run "$WFH" plugin check --bogus
expect_rc 2 "an unknown option is a usage error"
run "$WFH" plugin check --help
expect_rc 0 "--help"
expect_in "$T/out" "usage: wfhost plugin check FILE.so" "--help prints the usage"
done_testing
