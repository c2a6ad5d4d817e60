#!/usr/bin/env bash
# validate_errors: `wfhost validate` reports every problem at once, each as
# file:line:col with a caret and hint, exits 2, and offers the same as JSON.
. "$(dirname "$0")/../lib.sh"

cat >"$T/bad.yaml" <<'YAML'
name: bad
stepz: 1
steps:
  - id: a
    uses: shel
    need: [b]
    with:
      run: echo ${{ steps.d.outputs.x }}
  - id: b
    uses: shell
    needs: [c, zz]
    with:
      run: echo ${{ github.sha }}
  - id: c
    uses: shell@7
    needs: [b]
  - id: d
    uses: shell
    with:
      argv: [ls, 3]
      rnu: x
  - id: d
    uses: shell
YAML
run "$WFH" validate "$T/bad.yaml"
expect_rc 2 "invalid workflow"
f="$T/bad.yaml"
expect_in "$T/err" "^$f:2:1: error: unknown key 'stepz' in the workflow" "unknown top-level key"
expect_in "$T/err" "hint: did you mean 'steps'\?" "hint for stepz"
expect_in "$T/err" "^$f:5:11: error: unknown step type 'shel'" "unknown type"
expect_in "$T/err" "hint: did you mean 'shell'\?" "hint for shel"
expect_in "$T/err" "^$f:6:5: error: unknown key 'need' in a step" "unknown step key"
expect_in "$T/err" "^$f:8:21: error: step 'a' refers to step 'd', which does not run before it" "non-ancestor reference"
expect_in "$T/err" "hint: add 'd' to the needs of 'a'" "hint for the reference"
expect_in "$T/err" "^$f:11:16: error: step 'b' needs unknown step 'zz'" "unknown need"
expect_in "$T/err" "^$f:13:21: error: .*github" "unknown context"
expect_in "$T/err" "^$f:15:11: error: step type 'shell@7' is not installed" "missing major"
expect_in "$T/err" "^$f:16:13: error: cycle: b -> c -> b" "cycle printed"
expect_in "$T/err" "^$f:20:18: error: step 'd': with.argv\[1\]: expected string, got integer" "schema type error"
expect_in "$T/err" "^$f:21:12: error: step 'd': with.rnu: unknown property" "schema unknown input"
expect_in "$T/err" "^$f:22:9: error: duplicate step id 'd' \(first at line 17\)" "duplicate id"
expect_in "$T/err" "^$f:22:5: error: step 'd': with: matches none of the allowed forms" "missing run/argv"
expect_in "$T/err" "^      uses: shel$" "source line shown"
expect_in "$T/err" "^            \^$" "caret under the column"
expect_in "$T/err" "^$f: 12 errors$" "summary line"

# Same problems as one JSON document.
run "$WFH" validate "$T/bad.yaml" --json
expect_rc 2 "invalid workflow, --json"
expect_eq "$(json "$T/out" '["valid"]')" "false" "json valid"
expect_eq "$(json "$T/out" '["errors"]')" "12" "json error count"
expect_eq "$(json "$T/out" '["diagnostics"][0]["line"]')" "2" "json sorted by position"
expect_eq "$(json "$T/out" '["diagnostics"][0]["hint"]')" "did you mean 'steps'?" "json hint"

# A valid file: one line on stdout, exit 0.
run "$WFH" validate "$WFH_SRC/examples/hello.yaml"
expect_rc 0 "hello.yaml"
expect_in "$T/out" "hello.yaml: ok \(2 steps, with warnings\)$" "ok line"
# the issue-2 example splices a step output into a shell script: valid, but warned
expect_in "$T/err" "hello.yaml:15:32: warning: step 'greet': 'name' is spliced into a shell script" "splice warning"
expect_in "$T/err" "hint: pass it through env" "splice hint"
printf 'name: x\nsteps:\n  - id: a\n    uses: shell\n    with: {run: echo hi}\n' >"$T/clean.yaml"
run "$WFH" validate "$T/clean.yaml"
expect_rc 0 "clean workflow"
expect_in "$T/out" "clean.yaml: ok \(1 step\)$" "ok line without warnings"
expect_eq "$(wc -c <"$T/err")" "0" "nothing on stderr for a clean workflow"
run "$WFH" validate "$WFH_SRC/examples/hello.yaml" --json
expect_eq "$(json "$T/out" '["valid"]')" "true" "json valid"

# Usage.
run "$WFH" validate --help
expect_rc 0 "--help"
expect_in "$T/out" "usage: wfhost validate FILE" "help text"
run "$WFH" validate
expect_rc 2 "no file"
run "$WFH" validate "$T/bad.yaml" --frobnicate
expect_rc 2 "unknown option"
run "$WFH" validate "$T/does-not-exist.yaml"
expect_rc 2 "missing file"
expect_in "$T/err" "does-not-exist.yaml" "missing file named"
# --syntax-only needs no plugins: unknown types are not checked, the rest is
run "$WFH" validate "$T/bad.yaml" --syntax-only --home /nonexistent
expect_rc 2 "syntax only"
expect_not_in "$T/err" "unknown step type" "types not checked"
expect_in "$T/err" "cycle: b -> c -> b" "graph still checked"
done_testing
