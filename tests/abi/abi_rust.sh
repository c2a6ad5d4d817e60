#!/usr/bin/env bash
# A plugin written in Rust (tests/abi/rust/lib.rs: hand-written #[repr(C)] mirrors of
# plugin.h, no crates) is built with rustc and runs a step through the real runner
# and, installed in a signed registry, through `wfhost exec`. Prefers Debian's /usr/bin/rustc (what CI installs) over a
# rustup toolchain on PATH; skips, saying so, only if there is no rustc at all.
. "$(dirname "$0")/../lib.sh"
RUSTC=""
for c in /usr/bin/rustc "$(command -v rustc 2>/dev/null)"; do
  [ -n "$c" ] && [ -x "$c" ] && { RUSTC=$c; break; }
done
if [ -z "$RUSTC" ]; then
  echo "SKIP: rustc is not installed (Debian package 'rustc'; ./dev test installs it)"
  exit 0
fi
echo "using $RUSTC: $("$RUSTC" --version)"
mkdir -p "$T/plugins"
run "$RUSTC" --crate-type cdylib -O -o "$T/plugins/rusty.so" "$WFH_SRC/tests/abi/rust/lib.rs"
expect_rc 0 "rustc builds the Rust plugin"
[ -f "$T/plugins/rusty.so" ] || { fail "no rusty.so"; done_testing; }

syms=$(nm -D --defined-only "$T/plugins/rusty.so" | awk '{print $NF}' | tr '\n' ' ')
expect_eq "$syms" "wfh_plugin_entry_v1 " "the Rust plugin exports only the entry symbol"

run "$WFH_RUNNER_BIN" --probe "$T/plugins/rusty.so"
expect_rc 0 "probe of the Rust plugin"
expect_in "$T/out" '"name":"rusty","version":"0.3.0"' "descriptor read from Rust statics"
expect_in "$T/out" '"outputs":\{"greeting":"a greeting"' "step type metadata"

printf '{"plugin":"%s","type":"rusty","inputs":{"n":[1,2,3]},"env":{},"run_id":"r","step_id":"s","attempt":4,"idempotency_key":"k","workspace":"%s"}' \
  "$T/plugins/rusty.so" "$T" | "$WFH_RUNNER_BIN" >"$T/out" 2>"$T/err"
rc=$?
expect_rc 0 "runner exit"
expect_in "$T/out" '"name":"greeting","value":"hello from rust, attempt 4"' "the step saw its request"
expect_in "$T/out" '"name":"inputs","value":\{"n":\[1,2,3\]\}' "inputs crossed the boundary as JSON text"
expect_in "$T/out" '"msg":"hello from a Rust plugin"' "host log service called from Rust"
expect_in "$T/out" '"t":"result","status":0' "the step succeeded"

cat >"$T/rust.yaml" <<'Y'
name: rust
steps:
  - id: r
    uses: rusty@0
    with:
      who: ferris
Y
# As an operator would: installed (the registry's ELF checks pass) and signed, then run.
run "$WFH" plugin install "$T/plugins/rusty.so"
expect_rc 0 "the Rust plugin installs into the signed registry"
run "$WFH" exec "$T/rust.yaml" --json
expect_rc 0 "wfhost exec runs the Rust step"
expect_eq "$(json "$T/out" '["steps"]["r"]["outputs"]["inputs"]["who"]')" "ferris" "output through wfhost exec"
done_testing
