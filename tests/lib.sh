# tests/lib.sh - shared helpers for script tests. Source it first:
#   . "$(dirname "$0")/../lib.sh"
# Gives: $WFH (the wfhost binary), $T (a scratch dir removed at exit), and assertions
# that print what was expected and what came out, then exit 1.
set -u
: "${WFH_BIN:?run through ctest (WFH_BIN is not set)}"
WFH=$WFH_BIN
T=$(mktemp -d "${TMPDIR:-/tmp}/wfh-test.XXXXXX")
trap 'rm -rf "$T"' EXIT
cd "$T" || exit 1 # the workspace of `wfhost exec` is the cwd: steps may write only here
# Every test gets its own wfhost home (run store, registry state): never the machine's
# /var/lib/wfhost, and never one shared with tests running beside it. It starts as a
# copy of the build's signed test registry (tests/CMakeLists.txt: the built plugins and
# tests/plugins/fixture.so, signed by a key made for the build, HOME/keys/wfhost.key):
# plugins load only from a signed registry, in tests as anywhere.
export WFH_HOME="$T/home"
unset WFH_PLUGIN_DIR
: "${WFH_TEST_REGISTRY:?run through ctest (WFH_TEST_REGISTRY is not set)}"
if [ ! -f "$WFH_TEST_REGISTRY/registry/index.json" ]; then
  echo "lib.sh: no test registry at $WFH_TEST_REGISTRY (build the wfh_test_registry target)" >&2
  exit 1
fi
cp -a "$WFH_TEST_REGISTRY" "$WFH_HOME"
TEST_NAME=$(basename "$0" .sh)
failures=0

fail() { echo "FAIL [$TEST_NAME]: $*" >&2; failures=$((failures + 1)); }

# run CMD...: runs it, keeps stdout in $T/out, stderr in $T/err, status in $rc.
run() { "$@" >"$T/out" 2>"$T/err"; rc=$?; }

expect_rc() { # expect_rc N "what"
  if [ "$rc" != "$1" ]; then
    fail "$2: exit status $rc, expected $1"
    echo "--- stdout:" >&2; head -c 3000 "$T/out" >&2
    echo "--- stderr:" >&2; head -c 3000 "$T/err" >&2
  fi
}
expect_in() { # expect_in FILE PATTERN "what"  (grep -E)
  grep -Eq -- "$2" "$1" || { fail "$3: /$2/ not in $(basename "$1")"; head -c 3000 "$1" >&2; }
}
expect_not_in() {
  ! grep -Eq -- "$2" "$1" || { fail "$3: /$2/ unexpectedly in $(basename "$1")"; head -c 3000 "$1" >&2; }
}
expect_eq() { # expect_eq ACTUAL EXPECTED "what"
  [ "$1" = "$2" ] || fail "$3: got '$1', expected '$2'"
}
# json FILE JQ-LIKE-PATH: extracts a value with python3 (present on Debian via the
# README's setup): json "$T/out" '["steps"]["greet"]["status"]'
json() { python3 -c "import json,sys; v=json.load(open(sys.argv[1]))$2; print(v if isinstance(v,str) else json.dumps(v))" "$1"; }

# install_plugin FILE.so...: install more plugins (test fixtures) into this test's own
# registry, checked and signed as `wfhost plugin install` does for an operator.
install_plugin() {
  local so
  for so; do
    "$WFH" plugin install "$so" >"$T/install.log" 2>&1 ||
      { fail "wfhost plugin install $so failed"; cat "$T/install.log" >&2; }
  done
}

# in_chroot: true inside a plain chroot, where "/" is not a mount point (the test
# `wfhost doctor` makes too), and some sandbox cases cannot run as on a normal machine
# (the kernel refuses user namespaces there).
in_chroot() { ! mountpoint -q /; }

done_testing() {
  if [ "$failures" -ne 0 ]; then echo "$TEST_NAME: $failures failure(s)" >&2; exit 1; fi
  echo "$TEST_NAME: ok"
  exit 0
}
