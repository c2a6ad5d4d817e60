#!/usr/bin/env bash
# Loading across versions, as plugin users meet it: a plugin built against the frozen
# 1.0 header keeps working; one from a newer minor loads only where it may; a future
# major, a missing entry point and malformed descriptors are refused with messages
# that name both versions and what to do. Run against the real runner and against
# wfhost-runner-next, the same runner built as if ABI 1.1 had added a member to each
# struct, so "an old plugin in a newer host" is exercised, not assumed.
. "$(dirname "$0")/../lib.sh"
P=$WFH_TEST_PLUGIN_DIR
RUNNER=$WFH_RUNNER_BIN
NEXT=$WFH_RUNNER_NEXT
# This header's minor (H) and the next one (N), as the messages print them.
H=$(sed -n 's/^#define WFH_ABI_MINOR \([0-9]*\)$/\1/p' "$WFH_SRC/include/wfhost/plugin.h")
N=$((H + 1))

# attempt RUNNER PLUGIN TYPE: one step through the runner; lines in $T/out.
attempt() {
  printf '{"plugin":"%s","type":"%s","inputs":{},"env":{},"run_id":"r","step_id":"s","attempt":1,"idempotency_key":"k","workspace":"%s"}' \
    "$2" "$3" "$T" | "$1" >"$T/out" 2>"$T/err"
  rc=$?
}
expect_ok_step() { # expect_ok_step RUNNER PLUGIN GREETING WHAT
  attempt "$1" "$2" hello
  expect_rc 0 "$4: runner exit"
  expect_in "$T/out" '"t":"result","status":0' "$4: step succeeded"
  expect_in "$T/out" "\"name\":\"greeting\",\"value\":\"hello from $3\"" "$4: output"
}
expect_refused() { # expect_refused RUNNER PLUGIN REGEX WHAT
  run "$1" --probe "$2"
  expect_rc 1 "$4: probe refuses"
  expect_in "$T/err" "$3" "$4: probe message"
  attempt "$1" "$2" hello
  expect_in "$T/out" '"t":"result","status":3,' "$4: attempt is a permanent failure"
  expect_in "$T/out" "$3" "$4: attempt message"
}

# The frozen 1.0 build: loads in this host and in the next minor's host (where its
# structs are shorter than the host's: the missing members read as zero).
expect_ok_step "$RUNNER" "$P/abi_frozen_1_0.so" frozen "frozen 1.0 plugin, 1.0 host"
expect_ok_step "$NEXT" "$P/abi_frozen_1_0.so" frozen "frozen 1.0 plugin, 1.1 host"
run "$NEXT" --probe "$P/abi_frozen_1_0.so"
expect_rc 0 "1.1 host probes the 1.0 plugin"
expect_in "$T/out" '"abi":"1.0"' "probe reports the plugin's ABI"

# Needs the next minor: refused by this host, naming both versions; fine for the next.
expect_refused "$RUNNER" "$P/abi_minor1.so" \
  "plugin 'variant' \(abi_minor1.so\) needs plugin ABI 1\.$N; this wfhost speaks 1\.$H: upgrade wfhost" "minor $N on a 1.$H host"
expect_ok_step "$NEXT" "$P/abi_minor1.so" variant "minor $N on a 1.$N host"

# Built by a newer minor that appended members: fine while the unknown tail is zero.
expect_ok_step "$RUNNER" "$P/abi_long_zero.so" variant "longer structs, zero tail"
expect_refused "$RUNNER" "$P/abi_long_nonzero.so" "sets members this wfhost \(ABI 1\.$H, 64 bytes\) does not know" \
  "longer struct, non-zero tail"
expect_ok_step "$NEXT" "$P/abi_long_nonzero.so" variant "the 1.1 host knows that member"

# Future majors: through the v1 symbol, or exporting only the v2 symbol.
expect_refused "$RUNNER" "$P/abi_major2.so" \
  "plugin 'variant' \(abi_major2.so\) needs plugin ABI 2\.0; this wfhost speaks 1\.$H: upgrade wfhost or use a 1\.x build of the plugin" \
  "major 2"
expect_refused "$RUNNER" "$P/abi_exports_v2.so" "needs plugin ABI 2\.x \(it exports wfh_plugin_entry_v2\); this wfhost speaks 1\.$H" \
  "v2 entry symbol"

# Not plugins, or malformed ones.
expect_refused "$RUNNER" "$P/abi_no_entry.so" "abi_no_entry.so is not a wfhost plugin: it does not export wfh_plugin_entry_v1" \
  "no entry symbol"
expect_refused "$RUNNER" "$P/abi_short.so" "descriptor struct_size 48 is not plausible \(ABI 1\.0 needs at least 64\)" \
  "descriptor shorter than 1.0"
expect_refused "$RUNNER" "$P/abi_bad_schema.so" "plugin 'variant': step type 'hello': input_schema is not valid JSON" \
  "input schema not JSON"
expect_refused "$RUNNER" "$P/abi_bad_name.so" "name 'Bad Name' is not valid" "bad plugin name"
run "$RUNNER" --probe "$T/nonexistent.so"
expect_rc 1 "missing file"
expect_in "$T/err" "nonexistent.so: cannot load" "missing file message"

# Crashes cost one failed step, with the signal named (the runner dies by it; the
# host turns that into "crashed: SIGSEGV (...)", see tests/unit/test_attempt.c).
attempt "$RUNNER" "$P/fixture.so" crash
expect_eq "$rc" 139 "crashing plugin: runner killed by SIGSEGV"
attempt "$RUNNER" "$P/fixture.so" abort
expect_eq "$rc" 134 "aborting plugin: runner killed by SIGABRT"
run "$RUNNER" --probe "$P/abi_ctor_crash.so"
expect_eq "$rc" 139 "constructor crash kills only the probe"

# The same through wfhost itself: the crash is named and the other branch finishes.
if "$WFH" --help 2>/dev/null | grep -q exec; then
  cat >"$T/crash.yaml" <<'Y'
name: crashes
steps:
  - id: segv
    uses: crash
  - id: abrt
    uses: abort
  - id: fine
    uses: echo
    with:
      msg: still here
Y
  run "$WFH" exec "$T/crash.yaml" --json --concurrency 3 # fixture.so: in the test registry
  expect_rc 1 "a run with crashing steps fails"
  # Named by the host (unconfined) or by the sandbox's supervisor (strict, the default).
  expect_in "$T/out" "crashed: (SIGSEGV|signal 11) \(Segmentation fault\)" "SIGSEGV named in the run report"
  expect_in "$T/out" "crashed: (SIGABRT|signal 6) \(Aborted\)" "SIGABRT named in the run report"
  [ "$(json "$T/out" '["steps"]["fine"]["status"]')" = "succeeded" ] || fail "the independent step did not succeed: $(cat "$T/out")"
fi
done_testing
