#!/usr/bin/env bash
# docs_run: the workflows in docs/workflow-syntax.md and examples/ are not only valid
# (validate_docs) but run and end as the docs say. Examples that reach the network
# (http, llm, curl to a public host) are skipped with a note: no test touches the
# internet. Expected outcomes that are not "succeeded" are listed here by workflow name.
. "$(dirname "$0")/../lib.sh"

declare -A args=([release]="-i version=1.2.3")
declare -A want_rc=([with-handlers]=1)   # its `make` fails on purpose to show on_failure

python3 - "$WFH_SRC/docs/workflow-syntax.md" "$T" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
for i, b in enumerate(re.findall(r"^```yaml\n(.*?)^```", text, re.S | re.M)):
    open(f"{sys.argv[2]}/doc{i:02d}.yaml", "w").write(b)
PY
cp "$WFH_SRC"/examples/*.yaml "$T"/ 2>/dev/null
ran=0
for f in "$T"/*.yaml; do
  name=$(sed -n 's/^name: *//p' "$f" | head -1)
  if grep -Eq 'uses: *(http|llm)|curl |https?://' "$f"; then
    echo "note: skipped '$name' ($(basename "$f")): it reaches the network"
    continue
  fi
  mkdir -p "$T/ws-$name"
  # shellcheck disable=SC2086
  (cd "$T/ws-$name" && "$WFH" exec "$f" --json ${args[$name]:-}) >"$T/out" 2>"$T/err"
  rc=$?
  expect_rc "${want_rc[$name]:-0}" "example '$name' ($(basename "$f"))"
  ran=$((ran + 1))
done
[ "$ran" -ge 8 ] || fail "only $ran examples ran"

# with-handlers: on_failure and finally ran after the failed build, and say why.
f=$(grep -l '^name: with-handlers' "$T"/doc*.yaml)
(cd "$T/ws-with-handlers" && "$WFH" exec "$f" --json) >"$T/out" 2>"$T/err"
expect_eq "$(json "$T/out" '["steps"]["report"]["status"]')" "succeeded" "on_failure step ran"
expect_eq "$(json "$T/out" '["steps"]["cleanup"]["status"]')" "succeeded" "finally step ran"
expect_in "$T/err" "build failure - exit status" "on_failure saw the failed step's error"
done_testing
