#!/usr/bin/env bash
# lang_inputs: workflow inputs (types, defaults, required) from -i and --inputs, checked
# before anything runs (exit 2, nothing started); workflow outputs printed at the end
# and in --json; an output that cannot be evaluated fails the run, naming it.
. "$(dirname "$0")/../lib.sh"

cat >"$T/in.yaml" <<Y
name: inputs
inputs:
  who: {type: string, required: true, description: whom to greet}
  times: {type: number, default: 2}
  loud: {type: boolean, default: false}
  tags: {type: list, default: [a, b]}
  extra: {type: object}
outputs:
  greeting: \${{ steps.greet.outputs.text }}
  count: \${{ inputs.times }}
  tags: \${{ inputs.tags }}
steps:
  - id: greet
    uses: shell
    env:
      WHO: \${{ inputs.who }}
      LOUD: \${{ inputs.loud }}
      EXTRA: \${{ inputs.extra.k }}
    with:
      run: |
        touch "$T/ran"
        echo "text=hello \$WHO x\${{ inputs.times }} loud=\$LOUD tags=\${{ join(inputs.tags, '+') }} extra=\$EXTRA" >> "\$WFH_OUTPUT"
Y
run "$WFH" exec --no-store --json "$T/in.yaml" -i who=world -i times=3 -i 'tags=["x","y"]'
expect_rc 0 "inputs from -i"
expect_eq "$(json "$T/out" '["outputs"]["greeting"]')" "hello world x3 loud=false tags=x+y extra=" "outputs from inputs"
expect_eq "$(json "$T/out" '["outputs"]["count"]')" 3 "a number input keeps its type"
expect_eq "$(json "$T/out" '["outputs"]["tags"]')" '["x", "y"]' "a list output stays a list"
expect_in "$T/err" '^output greeting = hello world x3' "outputs printed at the end"

echo '{"who": "file", "loud": true, "extra": {"k": 1}}' >"$T/inputs.json"
run "$WFH" exec --no-store --json "$T/in.yaml" --inputs "$T/inputs.json" -i who=override
expect_rc 0 "inputs from a file, -i wins"
expect_eq "$(json "$T/out" '["outputs"]["greeting"]')" 'hello override x2 loud=true tags=a+b extra=1' "file inputs and defaults"

rm -f "$T/ran"
run "$WFH" exec --no-store "$T/in.yaml"
expect_rc 2 "a missing required input"
expect_in "$T/err" "in.yaml:3:3: input 'who' is required" "names the input and its declaration"
run "$WFH" exec --no-store "$T/in.yaml" -i who=x -i times=lots
expect_rc 2 "a number that is not JSON"
expect_in "$T/err" "input 'times' is a number" "says the type"
run "$WFH" exec --no-store "$T/in.yaml" -i who=x -i 'loud="yes"'
expect_rc 2 "a string for a boolean"
expect_in "$T/err" "input 'loud' must be a boolean, not a String" "type mismatch"
run "$WFH" exec --no-store "$T/in.yaml" -i who=x -i nosuch=1
expect_rc 2 "an undeclared input"
expect_in "$T/err" "unknown input 'nosuch'" "unknown input"
run "$WFH" exec --no-store "$T/in.yaml" -i noequals
expect_rc 2 "-i without ="
[ -e "$T/ran" ] && fail "a step ran although the inputs were refused"

cat >"$T/bad.yaml" <<'Y'
name: bad-inputs
inputs:
  n: {type: number, default: "three"}
  m: {type: integer}
  1x: {}
outputs:
  v: ${{ steps.nosuch.outputs.x }}
  s: ${{ secrets.TOKEN }}
secrets: [TOKEN]
steps:
  - id: a
    uses: shell
    with:
      run: "true"
Y
run "$WFH" validate "$T/bad.yaml"
expect_rc 2 "bad declarations"
expect_in "$T/err" "bad.yaml:3:30: .*default of input 'n' is a String, but its type is number" "default type"
expect_in "$T/err" "bad.yaml:4:13: .*unknown input type 'integer'" "unknown type"
expect_in "$T/err" "bad.yaml:5:3: .*invalid input name '1x'" "bad name"
expect_in "$T/err" "bad.yaml:7:.*unknown step 'nosuch'" "outputs refer to a known step"
expect_in "$T/err" "bad.yaml:8:.*secrets cannot be used in the workflow's outputs" "no secrets in outputs"

# An output that fails at run time (the step was skipped, so it has no output) fails
# the run and says which.
cat >"$T/o.yaml" <<'Y'
name: output-fails
outputs:
  v: ${{ steps.a.outputs.missing }}
steps:
  - id: a
    uses: shell
    with:
      run: "true"
Y
run "$WFH" exec --no-store --json "$T/o.yaml"
expect_rc 1 "an output that cannot be evaluated"
json "$T/out" '["error"]' | grep -q "missing.*workflow's outputs" ||
  fail "the run's error names the output: $(json "$T/out" '["error"]')"
done_testing
