#!/usr/bin/env bash
# exec_policy: `wfhost exec --policy FILE` works out every step's sandbox grant before
# anything runs. A step type asking for more than the policy grants refuses the whole
# run with exit status 3 and the exact `allow` line to add; with that line the run
# goes ahead, confined.
. "$(dirname "$0")/../lib.sh"

mkdir "$T/ws"
cat >"$T/flow.yaml" <<Y
name: confined
steps:
  - id: first
    uses: shell
    with:
      run: echo ran > first.txt
  - id: second
    uses: shell
    needs: [first]
    with:
      run: cat first.txt
Y

printf '# nothing granted to shell\nprofile shell strict\n' >"$T/strict.policy"
run "$WFH" exec --json --workspace "$T/ws" --policy "$T/strict.policy" "$T/flow.yaml"
expect_rc 3 "a step type that asks for more than the policy grants"
expect_in "$T/err" "step 'first' \\(shell\\): requested but not granted" "the refusal names the step"
expect_in "$T/err" "add this line to $T/strict.policy: allow shell " "and the line to add"
[ -e "$T/ws/first.txt" ] && fail "a step ran although the run was refused"
[ -s "$T/out" ] && fail "no JSON for a run that never started"

# Add exactly the line the message asked for.
line=$(sed -n 's/.*: \(allow shell .*\)$/\1/p' "$T/err" | head -n 1)
[ -n "$line" ] || fail "no allow line in: $(cat "$T/err")"
echo "$line" >>"$T/strict.policy"
run "$WFH" exec --json --workspace "$T/ws" --policy "$T/strict.policy" "$T/flow.yaml"
expect_rc 0 "the same run once the policy grants it"
expect_eq "$(json "$T/out" '["steps"]["second"]["outputs"]["stdout"]')" "ran" "the workspace is shared by the steps"

run "$WFH" exec --policy "$T/no-such.policy" "$T/flow.yaml"
[ "$rc" = 0 ] && fail "a missing --policy file was accepted"
expect_in "$T/err" 'no-such\.policy' "the message names the policy file"

done_testing
