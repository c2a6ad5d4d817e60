#!/usr/bin/env bash
# inputs_env: a workflow input declared with `env: NAME` takes that host variable's value
# when -i does not give it (docs/workflow-syntax.md, "Inputs from the environment"):
# the docs' example runs as the docs say, -i wins, a bad value or name is a usage error
# (exit 2) that names the variable and the position, a secret cannot be read this way,
# no other variable leaks in, and `wfhost retry` runs with the value the run started
# with even when the variable has changed since.
. "$(dirname "$0")/../lib.sh"

# The docs' example, run with the commands the docs show.
python3 - "$WFH_SRC/docs/workflow-syntax.md" "$T/greet.yaml" <<'PY'
import re, sys
blocks = re.findall(r"^```yaml\n(.*?)^```", open(sys.argv[1]).read(), re.S | re.M)
open(sys.argv[2], "w").write([b for b in blocks if "name: greet-from-env" in b][0])
PY
mkdir -p "$T/ws"
cd "$T/ws" || exit 1
unset WFH_GREETING WFH_GREETING_TIMES
run "$WFH" exec "$T/greet.yaml"
expect_rc 0 "docs example without the variables"
expect_eq "$(grep -c '^greet | hello$' "$T/err")" 1 "default greeting once"
WFH_GREETING=bonjour WFH_GREETING_TIMES=2 run "$WFH" exec "$T/greet.yaml" --json
expect_rc 0 "docs example with the variables"
expect_eq "$(grep -c '^greet | bonjour$' "$T/err")" 2 "greeting and count from the environment"
WFH_GREETING=bonjour run "$WFH" exec "$T/greet.yaml" -i greeting=hi
expect_rc 0 "-i with the variable set"
expect_eq "$(grep -c '^greet | hi$' "$T/err")" 1 "-i wins over the variable"
WFH_GREETING= run "$WFH" exec "$T/greet.yaml"
expect_eq "$(grep -c '^greet | hello$' "$T/err")" 1 "an empty variable counts as unset"

# Bad values and declarations: exit 2, one line naming what is wrong and where.
WFH_GREETING_TIMES=two run "$WFH" exec "$T/greet.yaml"
expect_rc 2 "a number input whose variable is not a number"
expect_in "$T/err" "greet.yaml:4:42: input 'times' takes its value from environment variable WFH_GREETING_TIMES: input 'times' is a number, so its value is JSON, and 'two' is not" "bad value named"
expect_eq "$(grep -c . "$T/err")" 1 "one line"

cat >"$T/req.yaml" <<'Y'
name: needs-token-url
inputs:
  url: {type: string, required: true, env: WFH_TEST_URL}
steps:
  - id: a
    uses: shell
    env: {URL: "${{ inputs.url }}"}
    with: {run: 'echo "url=$URL" >> "$WFH_OUTPUT"'}
Y
unset WFH_TEST_URL
run "$WFH" exec "$T/req.yaml"
expect_rc 2 "required input, neither given nor set"
expect_in "$T/err" "req.yaml:3:3: input 'url' is required: pass -i url=... or set environment variable WFH_TEST_URL" "both ways named"

printf 'name: bad\ninputs:\n  x: {env: 9LIVES}\nsteps:\n  - id: a\n    uses: shell\n    with: {run: "true"}\n' >"$T/badname.yaml"
run "$WFH" validate "$T/badname.yaml"
expect_rc 2 "invalid variable name"
expect_in "$T/err" "badname.yaml:3:12: error: env of input 'x' must name an environment variable, not '9LIVES'" "bad name named"

printf 'name: sec\nsecrets: [TOK]\ninputs:\n  t: {env: TOK}\nsteps:\n  - id: a\n    uses: shell\n    with: {run: "true"}\n' >"$T/secret.yaml"
WFH_SECRET_TOK=x TOK=x run "$WFH" exec "$T/secret.yaml"
expect_rc 2 "a secret read through an input"
expect_in "$T/err" "input 't' takes its value from TOK, which this workflow declares as a secret" "secret refused"

# Only the declared variable reaches the workflow: the host's others do not.
cat >"$T/leak.yaml" <<'Y'
name: leak
inputs:
  a: {type: string, default: none, env: WFH_TEST_A}
  WFH_TEST_B: {type: string, default: none}
steps:
  - id: s
    uses: shell
    env: {A: "${{ inputs.a }}", B: "${{ inputs.WFH_TEST_B }}"}
    with: {run: 'echo "a=$A b=$B c=${WFH_TEST_A:-unset}" >> "$WFH_OUTPUT"'}
Y
WFH_TEST_A=1 WFH_TEST_B=2 run "$WFH" exec "$T/leak.yaml" --json
expect_rc 0 "leak check"
expect_eq "$(json "$T/out" '["steps"]["s"]["outputs"]["a"]')" "1 b=none c=unset" "only the declared variable is read"

# retry: the run started with WFH_TEST_URL=first and failed; retried with the variable
# changed, it uses the recorded value.
cat >"$T/retry.yaml" <<'Y'
name: retry-env
inputs:
  url: {type: string, default: none, env: WFH_TEST_URL}
steps:
  - id: a
    uses: shell
    env: {URL: "${{ inputs.url }}"}
    with:
      run: |
        [ -f ready ] || { echo "not ready" >&2; exit 1; }
        echo "url=$URL" >> "$WFH_OUTPUT"
Y
WFH_TEST_URL=first run "$WFH" exec "$T/retry.yaml" --json
expect_rc 1 "first run fails"
id=$(json "$T/out" '["run_id"]')
touch ready
WFH_TEST_URL=second run "$WFH" retry "$id" --json
expect_rc 0 "retry succeeds"
expect_eq "$(json "$T/out" '["steps"]["a"]["outputs"]["url"]')" first "retry uses the value the run started with"
done_testing
