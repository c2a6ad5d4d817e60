#!/usr/bin/env bash
# The public header as plugin authors' compilers meet it: standalone as C99 -pedantic
# and C11, as C++ (g++ and clang++ where present), with -fno-common (no object is
# defined in it), and with a layout identical to the frozen 1.0 copy for every 1.0
# member (members may only be appended within major 1).
. "$(dirname "$0")/../lib.sh"
INC=$WFH_SRC/include
FROZEN=$WFH_SRC/tests/abi/v1.0
CC=${CC:-cc}

cat >"$T/use.c" <<'C'
#include <wfhost/plugin.h>
#include <wfhost/plugin.h> /* include guard */
static int32_t run(const wfh_host_api *h, wfh_call *c, const wfh_step_request *r)
{
    (void)r;
    if (WFH_HOST_HAS(h, is_cancelled) && h->is_cancelled(c))
        return WFH_STEP_CANCELLED;
    return WFH_STEP_OK;
}
static const wfh_step_type types[1] = {{sizeof(wfh_step_type), "t", "d", "{}", 0, 0, run}};
static const wfh_plugin plugin = {WFH_PLUGIN_INIT, 1, sizeof(wfh_step_type), "p", "1.0.0", "d", types, 0};
WFH_PLUGIN_EXPORT const wfh_plugin *wfh_plugin_entry_v1(void) { return &plugin; }
C
for std in c99 c11; do
  run "$CC" -std=$std -pedantic -Wall -Wextra -Werror -fno-common -I"$INC" -c "$T/use.c" -o "$T/use_$std.o"
  expect_rc 0 "header compiles as $std -pedantic"
done
for cxx in g++ clang++; do
  command -v $cxx >/dev/null || { echo "note: $cxx not installed, C++ check with it skipped"; continue; }
  cp "$T/use.c" "$T/use.cpp"
  run $cxx -std=c++11 -pedantic -Wall -Wextra -Werror -fno-common -I"$INC" -c "$T/use.cpp" -o "$T/use_cxx.o"
  expect_rc 0 "header compiles as C++11 with $cxx"
  # extern "C": the entry point keeps its C name when compiled as C++.
  nm "$T/use_cxx.o" | grep -q ' T wfh_plugin_entry_v1$' || fail "$cxx mangled wfh_plugin_entry_v1"
done
# -fno-common and no definitions: two TUs including the header link together.
printf '#include <wfhost/plugin.h>\nint main(void) { return 0; }\n' >"$T/main.c"
run "$CC" -std=c99 -fno-common -I"$INC" "$T/main.c" "$T/use_c99.o" -o "$T/both"
expect_rc 0 "two translation units including the header link with -fno-common"

# Layout: every 1.0 member where the frozen header put it.
run "$CC" -std=c99 -I"$FROZEN" "$WFH_SRC/tests/abi/layout.c" -o "$T/layout_frozen"
expect_rc 0 "layout.c builds against the frozen 1.0 header"
run "$CC" -std=c99 -I"$INC" "$WFH_SRC/tests/abi/layout.c" -o "$T/layout_now"
expect_rc 0 "layout.c builds against the current header"
"$T/layout_frozen" >"$T/frozen.txt"
"$T/layout_now" >"$T/now.txt"
while IFS= read -r line; do
  grep -qxF -- "$line" "$T/now.txt" || fail "ABI 1.0 layout changed: '$line' is no longer true in include/wfhost/plugin.h"
done <"$T/frozen.txt"
[ "$(wc -l <"$T/frozen.txt")" -gt 30 ] || fail "layout listing is too short to mean anything"
done_testing
