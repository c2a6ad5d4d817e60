#!/usr/bin/env bash
# docs/plugin-authoring.md, run as written: every ```sh block (not ```sh norun), in
# order, in one shell, in a scratch directory, against wfhost installed into a
# temporary prefix (cmake --install) - so the tutorial, the install rules, the
# templates and the commands it shows are tested together. The blocks run on a
# pseudo-terminal (script(1)) because `plugin run` is meant for a person at one.
. "$(dirname "$0")/../lib.sh"
DOC="$WFH_SRC/docs/plugin-authoring.md"
command -v script >/dev/null || { echo "SKIP: script(1) is missing (Debian package bsdutils)"; exit 0; }

P="$T/prefix"
run cmake --install "$WFH_BUILD" --prefix "$P"
expect_rc 0 "cmake --install into a temporary prefix"
# Only the installed wfhost, its package and its templates: nothing from the build tree.
unset WFH_PLUGIN_DIR WFH_RUNNER WFH_SDK_DIR WFH_HOME
export PATH="$P/bin:$PATH" CMAKE_PREFIX_PATH="$P" PKG_CONFIG_PATH="$P/share/pkgconfig"
unset CARGO_TARGET_DIR
mkdir -p "$T/work"
[ "$(command -v wfhost)" = "$P/bin/wfhost" ] || fail "the installed wfhost is first on PATH"
# Debian's cargo, else a rustup one in ~/.cargo.
for c in /usr/bin/cargo "${CARGO_HOME:-$HOME/.cargo}/bin/cargo"; do
  [ -x "$c" ] && { export PATH="$PATH:$(dirname "$c")"; break; }
done
have_cargo=0
command -v cargo >/dev/null && have_cargo=1

python3 - "$DOC" "$T/tutorial.sh" "$have_cargo" <<'PY'
import re, sys
doc, out, have_cargo = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
blocks = re.findall(r"^```sh\n(.*?)^```", open(doc).read(), re.S | re.M)
with open(out, "w") as f:
    f.write("set -e\n")
    for i, b in enumerate(blocks):
        if "cargo" in b and not have_cargo:
            print(f"note: block {i} skipped: no cargo (Debian package cargo)")
            continue
        f.write(f"echo '== block {i}'\n{b}")
print(f"{len(blocks)} sh blocks")
PY
[ "$(grep -c '^echo .== block' "$T/tutorial.sh")" -ge 8 ] || fail "the tutorial has its sh blocks"

(cd "$T/work" && script -qec "bash $T/tutorial.sh >$T/log 2>&1" /dev/null </dev/null >/dev/null)
rc=$?
: >"$T/out"
tail -n 40 "$T/log" >"$T/err"
expect_rc 0 "every command of the tutorial succeeds as written (the log's end is under stderr)"
expect_in "$T/log" "created greeter: a C plugin 'greeter'" "plugin new, from the installed templates"
expect_in "$T/log" "from $P/share/wfhost/sdk/template" "the templates come from the install"
expect_in "$T/log" "no problems .*build/greeter.so conforms" "plugin check on the CMake build"
expect_in "$T/log" '"message": "Hello, Ada! Hello, Ada!"' "plugin run prints the outputs"
expect_in "$T/log" "with.name: expected string, got integer" "bad input is named"
expect_in "$T/log" "exit status 2" "and is exit status 2"
expect_in "$T/log" "no problems .*greeter.so conforms" "plugin check on the pkg-config build"
expect_in "$T/log" "greeter +0\.1\.0" "plugin list shows the signed install"
expect_in "$T/log" "100% tests passed" "the template's own tests pass"
[ -f "$T/work/tutorial-home/registry/index.json" ] || fail "the tutorial's throwaway home holds the registry"
if [ "$have_cargo" = 1 ]; then
  expect_in "$T/log" "created ferris: a Rust plugin 'ferris'" "plugin new --lang rust"
  expect_in "$T/log" "no problems .*libferris.so conforms" "plugin check on the cargo build"
  expect_in "$T/log" '"message": "Hi, Ferris!"' "plugin run of the Rust step"
else
  echo "note: the Rust part was not run (no cargo)"
fi
done_testing
