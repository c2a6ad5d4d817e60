#!/usr/bin/env bash
# exec_tty: on a terminal (a pty from script(1)) `wfhost exec` draws the live status -
# running steps redrawn in place with cursor movements - and still prints every
# finished step and the summary; with TERM=dumb, or piped, it prints plain lines only.
. "$(dirname "$0")/../lib.sh"

command -v script >/dev/null || { echo "exec_tty: script(1) missing (bsdutils)" >&2; exit 1; }
cat >"$T/tty.yaml" <<'Y'
name: tty
steps:
  - id: slow_a
    uses: shell
    with: {run: "sleep 0.6; echo done-a"}
  - id: slow_b
    uses: shell
    with: {run: "sleep 0.6"}
  - id: last
    uses: shell
    needs: [slow_a, slow_b]
    with: {run: "true"}
Y

TERM=xterm script -qfec "$WFH exec -j 2 $T/tty.yaml" "$T/typescript" >/dev/null 2>&1
rc=$?
expect_rc 0 "run on a terminal"
tr -d '\r' <"$T/typescript" >"$T/tty.out"
# The status block is erased (cursor up, clear) before text scrolls above it.
grep -q $'\x1b\[[0-9]*A\x1b\[J' "$T/tty.out" || fail "no in-place redraw on a terminal: $(head -c 600 "$T/tty.out" | cat -v)"
expect_in "$T/tty.out" '\[[0-9]/3\] slow_a \(' "a running step's status line"
expect_in "$T/tty.out" '\[3/3\] ok   last' "finished steps scroll above the status"
expect_in "$T/tty.out" 'slow_a \| done-a' "step output, prefixed"
expect_in "$T/tty.out" '^run succeeded: 3 succeeded' "the summary"

TERM=dumb script -qfec "$WFH exec -j 2 $T/tty.yaml" "$T/typescript" >/dev/null 2>&1
rc=$?
expect_rc 0 "run on a dumb terminal"
if grep -q $'\x1b\[' "$T/typescript"; then fail "escape sequences with TERM=dumb"; fi

run "$WFH" exec -j 2 "$T/tty.yaml"
expect_rc 0 "piped"
if grep -q $'\x1b\[' "$T/err"; then fail "escape sequences when stderr is not a terminal"; fi
expect_in "$T/err" '^\[3/3\] ok   last' "plain lines when piped"

done_testing
