#!/usr/bin/env bash
# include/wfhost/plugin.hpp: a C++ plugin (tests/sdk/fixtures/cpp_plugin.cpp, built
# with g++ -std=c++11 -pedantic) whose exceptions become failed steps with their
# message, never a crashed runner; the header also compiles as C++17 and C++20.
. "$(dirname "$0")/../lib.sh"
CXX=${CXX:-g++}
command -v "$CXX" >/dev/null || { echo "SKIP: no C++ compiler ($CXX; Debian package g++)"; exit 0; }
for std in c++11 c++17 c++20; do
  echo '#include <wfhost/plugin.hpp>' | "$CXX" -std=$std -Wall -Wextra -Werror -pedantic -I"$WFH_SRC/include" \
    -x c++ -fsyntax-only - || fail "plugin.hpp does not compile as $std"
done
"$CXX" -std=c++11 -Wall -Wextra -Werror -pedantic -I"$WFH_SRC/include" -fPIC -fvisibility=hidden -shared \
  -o "$T/cpp.so" "$WFH_SRC/tests/sdk/fixtures/cpp_plugin.cpp" \
  -Wl,--version-script="$WFH_SRC/plugins/exports.map" -Wl,-z,defs || { fail "the C++ fixture does not build"; done_testing; }
expect_eq "$(nm -D --defined-only "$T/cpp.so" | awk '{print $NF}' | tr '\n' ' ')" "wfh_plugin_entry_v1 " \
  "the C++ plugin exports only the entry symbol"

# The sanitizer build's runner carries clang's ASan runtime, whose __cxa_throw
# interceptor finds the real one only if libstdc++ is loaded when the runner starts
# (a known ASan limitation with dlopen'ed C++): preload it there, as an ASan user would.
if [ "${WFH_SANITIZE:-0}" = 1 ]; then
  export LD_PRELOAD="$("$CXX" -print-file-name=libstdc++.so.6)"
  # and ASan aborts on a huge allocation unless told to fail it like malloc does.
  export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}allocator_may_return_null=1"
fi
step() { run "$WFH" plugin run "$T/cpp.so" "$1" --dev --json --with "${2:-{\}}"; }
step cpp-ok '{"text": "x"}'
expect_rc 0 "a C++ step succeeds"
expect_eq "$(json "$T/out" '["outputs"]["text"]')" 'got {"text":"x"}' "through context::set_output and json_quote"
expect_in "$T/err" "grant present" "context::has_grant sees the 1.1 member"

step cpp-throws
expect_rc 1 "std::runtime_error: a failed step"
expect_eq "$(json "$T/out" '["status"]')" "failed" "status failed, not a crash"
expect_eq "$(json "$T/out" '["error"]')" "boom from C++: the widget is missing" "the exception's message is the error"

step cpp-invalid
expect_rc 2 "wfhost::invalid_input: invalid input"
expect_eq "$(json "$T/out" '["error"]')" "with.text: required by this step" "its message"

step cpp-throws-int
expect_rc 1 "a non-std exception is caught too"
expect_in "$T/out" "not a std::exception" "and said to be one"

step cpp-alloc
expect_rc 1 "std::bad_alloc is caught"
expect_in "$T/out" "out of memory \(std::bad_alloc\)" "and named"
done_testing
