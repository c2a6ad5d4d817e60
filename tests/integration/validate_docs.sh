#!/usr/bin/env bash
# validate_docs: every ```yaml block in docs/workflow-syntax.md is a real workflow that
# `wfhost validate` accepts, so the documentation cannot drift from the loader.
. "$(dirname "$0")/../lib.sh"

doc="$WFH_SRC/docs/workflow-syntax.md"
[ -f "$doc" ] || { fail "missing $doc"; done_testing; }
python3 - "$doc" "$T" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
blocks = re.findall(r"^```yaml\n(.*?)^```", text, re.S | re.M)
for i, b in enumerate(blocks):
    open(f"{sys.argv[2]}/doc{i:02d}.yaml", "w").write(b)
print(len(blocks))
PY
n=$(ls "$T"/doc*.yaml 2>/dev/null | wc -l)
[ "$n" -ge 5 ] || fail "expected at least 5 yaml examples, found $n"
for f in "$T"/doc*.yaml; do
  run "$WFH" validate "$f"
  expect_rc 0 "docs example $(basename "$f") ($(head -1 "$f"))"
done
# and the examples shipped in examples/
for f in "$WFH_SRC"/examples/*.yaml; do
  run "$WFH" validate "$f"
  expect_rc 0 "example $(basename "$f")"
done
done_testing
