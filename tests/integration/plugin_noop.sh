#!/usr/bin/env bash
# The noop step type (plugins/noop, used by bench/): it loads from the signed
# development registry, runs under every profile, sets output `echo` exactly when asked
# (escapes intact), and its input schema refuses anything else before a step starts.
. "$(dirname "$0")/../lib.sh"
cd "$T"
cat >flow.yaml <<'Y'
name: noop
steps:
  - id: a
    uses: noop
    with: {echo: "hi \"there\" \\ ok"}
  - id: b
    uses: noop
    needs: [a]
Y
for p in strict process none; do
  printf 'profile * %s\n' "$p" >"pol-$p"
  run "$WFH" exec --no-store --policy "pol-$p" --json flow.yaml
  expect_rc 0 "noop under $p"
  expect_eq "$(json "$T/out" '["steps"]["a"]["outputs"]["echo"]')" 'hi "there" \ ok' "echo output under $p"
  expect_eq "$(json "$T/out" '["steps"]["b"]["outputs"]')" '{}' "no echo, no output under $p"
  expect_eq "$(json "$T/out" '["steps"]["a"]["attempt_history"][0]["sandbox"]["profile"]')" "$p" "profile $p applied"
done

cat >bad.yaml <<'Y'
name: bad
steps:
  - id: a
    uses: noop
    with: {echo: 3, other: x}
Y
run "$WFH" exec --no-store bad.yaml
expect_rc 2 "schema refuses a bad noop input"
expect_in "$T/err" "bad.yaml:5" "the error names the file and line"
done_testing
