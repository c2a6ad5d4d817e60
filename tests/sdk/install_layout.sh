#!/usr/bin/env bash
# What `cmake --install` gives a plugin author, used from a prefix that was moved after
# installing (every installed file finds the others relative to itself):
#  - the layout: bin/wfhost, libexec/wfhost/wfhost-runner, include/wfhost/*.h*,
#    share/pkgconfig/wfhost-plugin.pc, lib/cmake/wfhost, share/wfhost/{sdk,plugin-exports.map};
#  - pkg-config and find_package(wfhost) both build a plugin out of tree that exports
#    only its entry symbol; find_package refuses another major;
#  - the installed wfhost finds its runner and templates, installs and signs the C
#    and Rust plugins into a throwaway registry, and runs one workflow using both.
. "$(dirname "$0")/../lib.sh"
CC=${CC:-cc}
run cmake --install "$WFH_BUILD" --prefix "$T/first"
expect_rc 0 "cmake --install"
mv "$T/first" "$T/p"
P="$T/p"
for f in bin/wfhost libexec/wfhost/wfhost-runner include/wfhost/plugin.h include/wfhost/plugin.hpp \
         share/pkgconfig/wfhost-plugin.pc lib/cmake/wfhost/wfhostConfig.cmake \
         lib/cmake/wfhost/wfhostConfigVersion.cmake share/wfhost/plugin-exports.map \
         share/wfhost/sdk/template/CMakeLists.txt share/wfhost/sdk/template-rust/Cargo.toml; do
  [ -e "$P/$f" ] || fail "installed: $f"
done
[ -x "$P/share/wfhost/sdk/template/tests/run.sh" ] || fail "the template's test script stays executable"
[ -z "$(find "$P/include" -type f ! -name 'plugin.h' ! -name 'plugin.hpp')" ] || fail "only the public headers are installed"
unset WFH_PLUGIN_DIR WFH_RUNNER WFH_SDK_DIR
export PATH="$P/bin:$PATH" PKG_CONFIG_PATH="$P/share/pkgconfig" WFH_HOME="$T/reg"

# pkg-config: header only, flags for a plugin, the exports rule in --libs.
run pkg-config --cflags --libs wfhost-plugin
expect_rc 0 "pkg-config finds wfhost-plugin"
expect_in "$T/out" "-I$P/share/pkgconfig/\.\./\.\./include -fPIC -fvisibility=hidden" "Cflags from the moved prefix"
expect_in "$T/out" "-Wl,--version-script=$P/share/pkgconfig/\.\./\.\./share/wfhost/plugin-exports.map" "the exports rule"
expect_eq "$(pkg-config --variable=abi_minor wfhost-plugin)" \
  "$(sed -n 's/^#define WFH_ABI_MINOR \([0-9]*\)/\1/p' "$WFH_SRC/include/wfhost/plugin.h")" "abi_minor follows the header"

# plugin new from the installed templates, then the pkg-config build.
cd "$T"
run wfhost plugin new cgreet
expect_rc 0 "the installed wfhost finds its templates"
expect_in "$T/out" "from $P/share/wfhost/sdk/template\)" "in its own share dir"
# shellcheck disable=SC2046
"$CC" -std=c11 -Wall -Wextra -Werror $(pkg-config --cflags wfhost-plugin) -o "$T/cgreet-pc.so" \
  cgreet/cgreet.c cgreet/json_in.c $(pkg-config --libs wfhost-plugin) -Wl,-z,defs || fail "pkg-config build"
expect_eq "$(nm -D --defined-only "$T/cgreet-pc.so" | awk '{print $NF}' | tr '\n' ' ')" "wfh_plugin_entry_v1 " \
  "pkg-config build exports only the entry symbol"

# find_package: the template's own CMakeLists.txt, and the major check.
run cmake -S cgreet -B "$T/cbuild" -DCMAKE_PREFIX_PATH="$P"
expect_rc 0 "find_package(wfhost) from the moved prefix"
run cmake --build "$T/cbuild"
expect_rc 0 "the CMake build"
expect_eq "$(nm -D --defined-only "$T/cbuild/cgreet.so" | awk '{print $NF}' | tr '\n' ' ')" "wfh_plugin_entry_v1 " \
  "CMake build exports only the entry symbol"
mkdir -p "$T/major"
printf 'cmake_minimum_required(VERSION 3.16)\nproject(m C)\nfind_package(wfhost 2 REQUIRED)\n' >"$T/major/CMakeLists.txt"
run cmake -S "$T/major" -B "$T/major/b" -DCMAKE_PREFIX_PATH="$P"
expect_rc 1 "find_package(wfhost 2) is refused by a 0.x/1.x install"
expect_in "$T/err" "wfhost" "and the refusal names the package"

run wfhost plugin check "$T/cbuild/cgreet.so"
expect_rc 0 "the installed wfhost checks the plugin (runner found in libexec)"

# The Rust template with cargo, when there is one.
CARGO=""
for c in /usr/bin/cargo "${CARGO_HOME:-$HOME/.cargo}/bin/cargo" "$(command -v cargo 2>/dev/null)"; do
  [ -n "$c" ] && [ -x "$c" ] && { CARGO=$c; break; }
done
if [ -n "$CARGO" ]; then
  run wfhost plugin new rgreet --lang rust
  expect_rc 0 "plugin new --lang rust"
  (cd rgreet && "$CARGO" build --release --offline --quiet) >"$T/out" 2>"$T/err"
  rc=$?
  expect_rc 0 "cargo build of the Rust template"
  run wfhost plugin check rgreet/target/release/librgreet.so
  expect_rc 0 "the Rust plugin conforms"
else
  echo "note: no cargo (Debian package cargo): the Rust template is not built"
fi

# A throwaway signed registry, both plugins installed, one workflow using both.
run wfhost registry init --new-key
expect_rc 0 "registry init --new-key"
run wfhost plugin install "$T/cbuild/cgreet.so"
expect_rc 0 "install + sign the C plugin"
second=cgreet
if [ -n "$CARGO" ]; then
  run wfhost plugin install rgreet/target/release/librgreet.so
  expect_rc 0 "install + sign the Rust plugin"
  second=rgreet
fi
cat >"$T/both.yaml" <<Y
name: both
steps:
  - id: c
    uses: cgreet@0
    with:
      name: from C
  - id: r
    uses: $second
    needs: [c]
    with:
      greeting: And
      name: \${{ steps.c.outputs.message }}
Y
run wfhost exec "$T/both.yaml" --json --no-store
expect_rc 0 "a workflow using the installed plugins runs"
expect_eq "$(json "$T/out" '["steps"]["r"]["outputs"]["message"]')" "And, Hello, from C!!" \
  "the second plugin's step got the first one's output"
run wfhost plugin verify
expect_rc 0 "the registry verifies"
done_testing
