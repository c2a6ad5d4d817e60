#!/usr/bin/env bash
# exec_policy: `wfhost exec --policy FILE` works out every step's sandbox grant before
# anything runs. The shell's built-in grants (system bin directories, read of /usr and
# /etc, its basic environment: docs/sandbox.md) let it run confined under strict with a
# policy that grants it nothing. A step type asking for more than the policy grants
# refuses the whole run with exit status 3 and the exact `allow` line to add; with that
# line the run goes ahead, confined.
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
expect_rc 0 "shell under strict with only its built-in grants"
expect_eq "$(json "$T/out" '["steps"]["second"]["outputs"]["stdout"]')" "ran" "the workspace is shared by the steps"
expect_eq "$(json "$T/out" '["steps"]["first"]["attempt_history"][0]["sandbox"]["profile"]')" "strict" \
  "the shell ran confined"

# http_flow FILE NAME URL: a one-step workflow fetching URL (written as YAML verbatim).
http_flow() {
  printf 'name: %s\nsteps:\n  - id: fetch\n    uses: http\n    with: {url: %s}\n' "$2" "$3" >"$1"
}
http_flow "$T/net.yaml" network "'http://127.0.0.1:9/'"
# Where the step's url is a literal, the refusal names its HOST:PORT and the exact line.
run "$WFH" exec --json --workspace "$T/ws" --policy "$T/strict.policy" "$T/net.yaml"
expect_rc 3 "a step type that asks for more than the policy grants"
expect_in "$T/err" "step 'fetch' \\(http\\): its inputs reach 127.0.0.1:9, which is not granted" \
  "the refusal names the step and its target"
expect_in "$T/err" "pass --allow-net=127.0.0.1:9 or add this line to $T/strict.policy: allow http --allow-net=127.0.0.1:9$" \
  "and the line to add"
[ -s "$T/out" ] && fail "no JSON for a run that never started"
line=$(sed -n 's/.*: \(allow http .*\)$/\1/p' "$T/err" | head -n 1)
[ -n "$line" ] || fail "no allow line in: $(cat "$T/err")"

# A url computed by an expression: "network": true (targets chosen by inputs) still
# needs a network grant; the line to add has a HOST:PORT placeholder.
http_flow "$T/dyn.yaml" dynamic "\"\${{ format('http://127.0.0.1:{0}/', 9) }}\""
run "$WFH" exec --json --workspace "$T/ws" --policy "$T/strict.policy" "$T/dyn.yaml"
expect_rc 3 "a computed target with no network grant"
expect_in "$T/err" "step 'fetch' \\(http\\): requested but not granted: --allow-net=HOST:PORT" \
  "the refusal says what is missing"
expect_in "$T/err" "allow http --allow-net=HOST:PORT$" "the line to add ends the message"

# Add exactly the line the literal refusal asked for: the run starts (nothing listens).
echo "$line" >>"$T/strict.policy"
run "$WFH" exec --json --workspace "$T/ws" --policy "$T/strict.policy" "$T/net.yaml"
expect_eq "$(json "$T/out" '["steps"]["fetch"]["attempt_history"][0]["sandbox"]["profile"]')" "strict" \
  "the same run once the policy grants it"
expect_eq "$(json "$T/out" '["steps"]["fetch"]["attempt_history"][0]["sandbox"]["netns"]')" "false" \
  "a granted port: no network namespace of its own (Landlock holds it to the port)"
# The placeholder itself is not a grant: a port must be a number.
printf 'allow http --allow-net=HOST:PORT\n' >"$T/bad.policy"
run "$WFH" exec --policy "$T/bad.policy" "$T/net.yaml"
expect_rc 2 "a malformed network grant"
expect_in "$T/err" "bad\.policy:1:12: '--allow-net=HOST:PORT': network grants are HOST or HOST:PORT" \
  "names the file, line and column"
run "$WFH" exec --allow-net=127.0.0.1:0 "$T/net.yaml"
expect_rc 2 "port 0 on the command line"
# Without any policy the shell still runs, confined (strict is the default).
run "$WFH" exec --json "$T/flow.yaml"
expect_rc 0 "no policy at all: the built-in grants"
expect_eq "$(json "$T/out" '["steps"]["second"]["attempt_history"][0]["sandbox"]["profile"]')" "strict" \
  "strict by default"
expect_eq "$(cat "$T/first.txt")" "ran" "the workspace defaults to the current directory"

run "$WFH" exec --policy "$T/no-such.policy" "$T/flow.yaml"
[ "$rc" = 0 ] && fail "a missing --policy file was accepted"
expect_in "$T/err" 'no-such\.policy' "the message names the policy file"

done_testing
