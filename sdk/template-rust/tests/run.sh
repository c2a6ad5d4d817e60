#!/bin/sh
# The Rust plugin's own tests: tests/run.sh WFHOST [CARGO]
#  0. `cargo test` (the JSON reader) and `cargo build --release`;
#  1. `wfhost plugin check` on target/release/libsdktemplate.so;
#  2. `wfhost plugin run --dev`: one step, no workflow, no registry;
#  3. example.yaml, from a signed registry in a throwaway wfhost home.
set -eu
WFHOST=${1:?usage: tests/run.sh WFHOST [CARGO]}
CARGO=${2:-cargo}
HERE=$(cd "$(dirname "$0")/.." && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
export WFH_HOME="$TMP/home"
cd "$HERE"
"$CARGO" test --quiet --offline
"$CARGO" build --release --quiet --offline
SO=$(ls target/release/lib*.so)
fails=0
ok() { echo "ok - $1"; }
no() { echo "not ok - $1"; fails=$((fails + 1)); }

if "$WFHOST" plugin check "$SO" >"$TMP/check" 2>&1; then ok "plugin check"; else cat "$TMP/check"; no "plugin check"; fi

NAME=$("$WFHOST" plugin info "$SO" --json | sed -n 's/^  "name": "\(.*\)",$/\1/p')
if "$WFHOST" plugin run "$SO" --dev --with '{"name": "Ferris", "greeting": "Hi"}' >"$TMP/out" 2>&1 &&
   grep -q '"message": "Hi, Ferris!"' "$TMP/out"; then ok "plugin run"; else cat "$TMP/out"; no "plugin run"; fi

"$WFHOST" registry init --new-key >/dev/null
"$WFHOST" plugin install "$SO" >/dev/null
if "$WFHOST" exec example.yaml --json --no-store >"$TMP/run.json" 2>"$TMP/err" &&
   grep -q '"Bye, 27 bytes ago!"' "$TMP/run.json"; then ok "workflow with $NAME"; else cat "$TMP/err"; no "workflow"; fi
exit $fails
