#!/usr/bin/env bash
# http_llm_docs: every ```yaml block in docs/plugins/http.md and docs/plugins/llm.md is a
# workflow `wfhost validate` accepts with the built plugins (their `with:` checked
# against the step types' input schemas), so the step-type pages cannot drift from the
# plugins. They reach public hosts, so they are validated, not run (no test touches the
# internet); examples/fetch-and-summarize.yaml runs against the fakes in llm_workflow.
. "$(dirname "$0")/../lib.sh"

for doc in "$WFH_SRC/docs/plugins/http.md" "$WFH_SRC/docs/plugins/llm.md"; do
  python3 - "$doc" "$T/$(basename "$doc" .md)" <<'PY'
import re, sys
for i, b in enumerate(re.findall(r"^```yaml\n(.*?)^```", open(sys.argv[1]).read(), re.S | re.M)):
    open(f"{sys.argv[2]}{i}.yaml", "w").write(b)
PY
done
for page in http llm; do
  n=0
  for f in "$T/$page"*.yaml; do
    [ -f "$f" ] || continue
    run "$WFH" validate "$f"
    expect_rc 0 "docs/plugins example $(basename "$f") ($(sed -n 's/^name: *//p' "$f"))"
    n=$((n + 1))
  done
  [ "$n" -ge 1 ] || fail "docs/plugins/$page.md: no \`\`\`yaml example found"
done
done_testing
