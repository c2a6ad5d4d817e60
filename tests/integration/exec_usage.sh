#!/usr/bin/env bash
# exec_usage: the exit status contract of `wfhost exec` for usage and invalid
# workflows (2), with diagnostics as `wfhost validate` prints them; --help (0).
. "$(dirname "$0")/../lib.sh"

run "$WFH" exec --help
expect_rc 0 "--help"
expect_in "$T/out" 'usage: wfhost exec FILE' "help text on stdout"
expect_in "$T/out" '--concurrency' "help names --concurrency"

run "$WFH" exec
expect_rc 2 "no file"

run "$WFH" exec "$T/missing.yaml"
expect_rc 2 "a file that does not exist"
expect_in "$T/err" 'missing.yaml' "the message names the file"

printf 'name: x\nsteps:\n  - id: a\n    uses: shell\n    with: {run: "true"}\n' >"$T/ok.yaml"
run "$WFH" exec --concurrency 0 "$T/ok.yaml"
expect_rc 2 "--concurrency 0"
expect_in "$T/err" 'concurrency' "the message names the option"
run "$WFH" exec --concurrency x "$T/ok.yaml"
expect_rc 2 "--concurrency x"
run "$WFH" exec --concurrency
expect_rc 2 "--concurrency without a value"
run "$WFH" exec -j1 "$T/ok.yaml"
expect_rc 0 "-j1 (a short option glued to its value)"
run "$WFH" exec --concurrency=3 "$T/ok.yaml"
expect_rc 0 "--concurrency=3"
run "$WFH" exec --frobnicate "$T/ok.yaml"
expect_rc 2 "unknown option"
expect_in "$T/err" 'frobnicate' "the message names the option"
run "$WFH" exec "$T/ok.yaml" "$T/ok.yaml"
expect_rc 2 "two files"
run "$WFH" exec --workspace "$T/nope" "$T/ok.yaml"
expect_rc 2 "a workspace that does not exist"

# An invalid workflow: exit 2 before anything runs, with file:line:col.
cat >"$T/bad.yaml" <<Y
name: bad
steps:
  - id: a
    uses: shell
    with: {run: 'touch "$T/ran"'}
  - id: b
    uses: shell
    needs: [nosuch]
    with: {run: 'true'}
Y
run "$WFH" exec --json "$T/bad.yaml"
expect_rc 2 "invalid workflow"
expect_in "$T/err" 'bad\.yaml:8:[0-9]+:' "diagnostic with file:line:col"
[ -e "$T/ran" ] && fail "a step ran although the workflow is invalid"
[ -s "$T/out" ] && fail "no JSON for a run that never started"

# Malformed YAML never crashes.
printf 'name: [unclosed\nsteps: {\n' >"$T/broken.yaml"
run "$WFH" exec "$T/broken.yaml"
expect_rc 2 "malformed YAML"
expect_in "$T/err" 'broken\.yaml:[0-9]+:[0-9]+' "the parser's position"

# --workspace is where steps run.
mkdir "$T/ws"
printf 'name: w\nsteps:\n  - id: a\n    uses: shell\n    with: {run: "pwd > here"}\n' >"$T/ws.yaml"
run "$WFH" exec --workspace "$T/ws" "$T/ws.yaml"
expect_rc 0 "--workspace"
[ -e "$T/ws/here" ] || fail "the step did not run in the workspace"

done_testing
