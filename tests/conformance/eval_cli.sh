#!/bin/bash
# tests/conformance/eval_cli.sh - `wfhost eval`: the output shape (kind/value or error
# kind/message), exit status 2 on expression errors, both ways of passing contexts,
# --status, usage errors, and a sample of GitHub's vectors through the command line.
. "$(dirname "$0")/../lib.sh"

run "$WFH" eval "format('{0}-{1}', 'a', 1)"
expect_rc 0 "format"
expect_eq "$(json "$T/out" '["kind"]')" "String" "format kind"
expect_eq "$(json "$T/out" '["value"]')" "a-1" "format value"

run "$WFH" eval "inputs.n > 2 ? 'big' : 'small'" --context-json '{"inputs": {"n": 3}}'
expect_rc 0 "ternary"
expect_eq "$(json "$T/out" '["value"]')" "big" "ternary value"

echo '{"steps": {"a": {"status": "success"}, "b": {"status": "failure"}}}' >"$T/ctx.json"
run "$WFH" eval "steps.*.status" --context "$T/ctx.json"
expect_rc 0 "filter"
expect_eq "$(json "$T/out" '["kind"]')" "Array" "filter kind"
expect_eq "$(json "$T/out" '["value"]')" '["success", "failure"]' "filter value"

run "$WFH" eval "1 2"
expect_rc 2 "parse error"
expect_eq "$(json "$T/out" '["error"]["kind"]')" "parsing" "parse error kind"
expect_in "$T/out" "Unexpected symbol: '2'" "parse error message"

run "$WFH" eval "1 = 2"
expect_rc 2 "lexing error"
expect_eq "$(json "$T/out" '["error"]["kind"]')" "lexing" "lexing error kind"

run "$WFH" eval "fromJSON('{')"
expect_rc 2 "evaluation error"
expect_eq "$(json "$T/out" '["error"]["kind"]')" "evaluation" "evaluation error kind"

run "$WFH" eval "github.sha"
expect_rc 2 "unknown context"
expect_in "$T/out" "Unrecognized named-value: 'github'" "unknown context message"

run "$WFH" eval "NaN"
expect_rc 0 "NaN"
expect_eq "$(json "$T/out" '["kind"]')" "Number" "NaN kind"

run "$WFH" eval "failure()" --status failed
expect_rc 0 "status"
expect_eq "$(json "$T/out" '["value"]')" "true" "failure() with --status failed"

echo '{"steps": {"build": {"outputs": {"path": "/x"}}}}' >"$T/steps.json"
run "$WFH" eval "steps.build.outputs.pth" --context "$T/steps.json"
expect_rc 0 "missing output, not strict"
expect_eq "$(json "$T/out" '["kind"]')" "Null" "missing output is null"
run "$WFH" eval "steps.build.outputs.pth" --context "$T/steps.json" --strict
expect_rc 2 "missing output, strict"
expect_in "$T/out" "step 'build' has no output 'pth'" "strict message"

run "$WFH" eval "1" --context "$T/nope.json"
expect_rc 2 "missing context file"
expect_in "$T/err" "nope.json" "missing context file named"

run "$WFH" eval "1" --context-json '[1]'
expect_rc 2 "context not an object"

run "$WFH" eval
expect_rc 2 "no expression"

run "$WFH" eval --help
expect_rc 0 "help"
expect_in "$T/out" "usage: wfhost eval" "help text"

# A sample of GitHub's vectors, through the command line: kind and value must match.
python3 - "$WFH" "$WFH_SRC/tests/conformance/gha-expressions" >"$T/vectors" 2>&1 <<'PY'
import json, subprocess, sys, glob
wfh, folder = sys.argv[1], sys.argv[2]
bad = n = 0
for f in sorted(glob.glob(folder + "/*.json")):
    for group, cases in json.load(open(f)).items():
        for c in cases[:1]:
            args = [wfh, "eval", c["expr"]]
            if "contexts" in c:
                args += ["--context-json", json.dumps(c["contexts"])]
            p = subprocess.run(args, capture_output=True, text=True)
            out = json.loads(p.stdout)
            n += 1
            if "err" in c:
                ok = p.returncode == 2 and out["error"]["kind"] == c["err"]["kind"]
            else:
                r = c["result"]
                ok = p.returncode == 0 and out["kind"] == r["kind"] and (
                    out["value"] == r["value"] or r["kind"] == "Number")
            if not ok:
                bad += 1
                print("MISMATCH", f, c["expr"], p.stdout.strip())
print(n, "vectors,", bad, "mismatches")
sys.exit(1 if bad or n < 100 else 0)
PY
rc=$?
expect_rc 0 "vectors through wfhost eval"
[ "$rc" = 0 ] || cat "$T/vectors" >&2

done_testing
