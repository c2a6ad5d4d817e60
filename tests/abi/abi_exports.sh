#!/usr/bin/env bash
# Every plugin in plugins/ exports exactly one dynamic symbol: the ABI entry point.
# Anything else would be visible to (and could clash with) other code in the runner.
. "$(dirname "$0")/../lib.sh"
command -v nm >/dev/null || { echo "SKIP: nm (binutils) is not installed"; exit 0; }
n=0
for so in "$WFH_BUILT_PLUGINS"/*.so; do
  [ -e "$so" ] || continue
  n=$((n + 1))
  syms=$(nm -D --defined-only "$so" | awk '{print $NF}' | sort -u | tr '\n' ' ')
  expect_eq "$syms" "wfh_plugin_entry_v1 " "exports of $(basename "$so")"
done
[ "$n" -ge 1 ] || fail "no plugins found in $WFH_BUILT_PLUGINS"
# The check itself must be able to fail: a fixture that exports another symbol.
syms=$(nm -D --defined-only "$WFH_TEST_PLUGIN_DIR/abi_no_entry.so" | awk '{print $NF}' | tr '\n' ' ')
case "$syms" in *not_the_entry*) ;; *) fail "nm did not see abi_no_entry.so's export ($syms)";; esac
echo "checked $n plugins"
done_testing
