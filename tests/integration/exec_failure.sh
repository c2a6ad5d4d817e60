#!/usr/bin/env bash
# exec_failure: a failed step skips its dependents (transitively) and fails the run,
# while an independent branch still finishes; a step whose process dies of a signal
# fails with the signal named and the others carry on; exit status 1.
. "$(dirname "$0")/../lib.sh"

cat >"$T/fail.yaml" <<Y
name: failing
steps:
  - id: bad
    uses: shell
    with:
      run: echo "about to fail" >&2; exit 3
  - id: child
    uses: shell
    needs: [bad]
    with:
      run: touch "$T/child.ran"
  - id: grandchild
    uses: shell
    needs: [child]
    with:
      run: touch "$T/grandchild.ran"
  - id: slow
    uses: shell
    with:
      run: sleep 0.5; echo "v=1" >> "\$WFH_OUTPUT"
  - id: after_slow
    uses: shell
    needs: [slow]
    with:
      run: touch "$T/after_slow.ran"
  - id: crash
    uses: shell
    with:
      run: kill -SEGV \$\$
Y

run "$WFH" exec --json "$T/fail.yaml"
expect_rc 1 "a run with a failed step"
st() { json "$T/out" "[\"steps\"][\"$1\"][\"status\"]"; }
expect_eq "$(json "$T/out" '["status"]')" failed "run status"
expect_eq "$(st bad)" failed "bad"
expect_eq "$(st child)" skipped "child of a failed step"
expect_eq "$(st grandchild)" skipped "grandchild, transitively"
expect_eq "$(st slow)" succeeded "independent branch"
expect_eq "$(st after_slow)" succeeded "independent branch's dependent"
expect_eq "$(st crash)" failed "crashing step"
expect_eq "$(json "$T/out" '["steps"]["child"]["attempts"]')" 0 "a skipped step never ran"
[ -e "$T/child.ran" ] && fail "child ran although bad failed"
[ -e "$T/grandchild.ran" ] && fail "grandchild ran although bad failed"
[ -e "$T/after_slow.ran" ] || fail "after_slow did not run"
json "$T/out" '["steps"]["bad"]["error"]' | grep -q 3 ||
  fail "bad's error does not give the exit status: $(json "$T/out" '["steps"]["bad"]["error"]')"
json "$T/out" '["steps"]["crash"]["error"]' | grep -Eiq 'SIGSEGV|segmentation|signal 11' ||
  fail "crash's error does not name the signal: $(json "$T/out" '["steps"]["crash"]["error"]')"
expect_in "$T/err" '\] skip child: needs .bad.' "the skip says why"
expect_in "$T/err" '\] FAIL bad' "the failure is shown"
expect_in "$T/err" '^run failed:' "the summary line"

done_testing
