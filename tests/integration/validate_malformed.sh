#!/usr/bin/env bash
# validate_malformed: broken YAML of every kind (truncated, tabs, bad indentation,
# binary garbage, empty, anchors, duplicates, huge nesting) gives a positioned
# one-line error and exit status 2, never a crash.
. "$(dirname "$0")/../lib.sh"

check() { # check NAME EXPECTED-REGEX: validates $T/NAME
  run "$WFH" validate --syntax-only "$T/$1"
  expect_rc 2 "$1"
  expect_in "$T/err" "^$T/$1:[0-9]+:[0-9]+: error: .*$2" "$1 positioned"
  [ "$rc" -lt 128 ] || fail "$1: killed by signal $((rc - 128))"
}

printf 'name: x\nsteps:\n  - id: a\n    uses: shell\n    with:\n      run: "echo\n' >"$T/truncated.yaml"
check truncated.yaml "invalid YAML"
printf 'name: x\nsteps:\n\t- id: a\n' >"$T/tabs.yaml"
check tabs.yaml "invalid YAML"
expect_in "$T/err" "tabs for indentation" "tab hint"
printf 'name: x\nsteps:\n  - id: a\n   uses: shell\n' >"$T/indent.yaml"
check indent.yaml "invalid YAML"
printf 'name: [x\n' >"$T/flow.yaml"
check flow.yaml "invalid YAML"
printf '\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x03\x00\x3e\x00' >"$T/binary.yaml"
check binary.yaml "invalid YAML"
printf 'name: x\xff\xfe\n' >"$T/utf8.yaml"
check utf8.yaml "invalid YAML"
: >"$T/empty.yaml"
check empty.yaml "the file is empty"
printf 'name: &n x\nsteps: *n\n' >"$T/anchor.yaml"
check anchor.yaml "anchors"
printf 'name: x\nname: y\nsteps: []\n' >"$T/dup.yaml"
check dup.yaml "duplicate key 'name'"
python3 -c "print('name: ' + '[' * 5000 + ']' * 5000)" >"$T/deep.yaml"
check deep.yaml "nesting deeper than 64 levels"
printf 'name: x\n---\nname: y\n' >"$T/twodocs.yaml"
check twodocs.yaml "found a second"
printf -- '- just\n- a list\n' >"$T/list.yaml"
check list.yaml "a workflow must be a mapping"

# Every truncation of a real workflow: never a crash, always 0 or 2.
src="$WFH_SRC/examples/hello.yaml"
size=$(wc -c <"$src")
for ((i = 0; i < size; i += 7)); do
  head -c "$i" "$src" >"$T/cut.yaml"
  run "$WFH" validate --syntax-only "$T/cut.yaml"
  case "$rc" in 0 | 2) ;; *) fail "truncated at $i: exit status $rc" ;; esac
done

# Pseudo-random bytes, deterministic.
for seed in 1 2 3 4 5 6 7 8; do
  python3 -c "import random,sys; r=random.Random($seed); sys.stdout.buffer.write(bytes(r.randrange(256) for _ in range(4000)))" >"$T/rand.yaml"
  run "$WFH" validate --syntax-only "$T/rand.yaml"
  expect_rc 2 "random bytes (seed $seed)"
  expect_in "$T/err" "^$T/rand.yaml:[0-9]+:[0-9]+: error:" "random bytes positioned (seed $seed)"
done
done_testing
