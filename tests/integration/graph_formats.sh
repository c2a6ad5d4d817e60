#!/usr/bin/env bash
# graph_formats: `wfhost graph` draws the DAG as DOT and Mermaid, in run order, and
# refuses invalid workflows with their diagnostics.
. "$(dirname "$0")/../lib.sh"

cat >"$T/flow.yaml" <<'YAML'
name: diamond "quoted"
steps:
  - id: join
    uses: shell
    needs: [left, right]
    with: {run: 'true'}
  - id: fetch
    uses: http@2
    with: {url: 'https://example.org'}
  - id: left
    uses: shell
    needs: fetch
    with: {run: 'true'}
  - id: right
    uses: shell@1
    needs: [fetch]
    with: {run: 'true'}
YAML
run "$WFH" graph "$T/flow.yaml"
expect_rc 0 "dot"
expect_in "$T/out" '^digraph "diamond \\"quoted\\"" \{$' "graph name escaped"
expect_in "$T/out" '^  "fetch" \[label="fetch\\nhttp@2"\];$' "node with type"
expect_in "$T/out" '^  "fetch" -> "left";$' "edge fetch -> left"
expect_in "$T/out" '^  "right" -> "join";$' "edge right -> join"
expect_eq "$(grep -c -- '->' "$T/out")" "4" "four edges"
# nodes come in run order: fetch first, join last
expect_eq "$(grep -m1 'label=' "$T/out" | cut -d'"' -f2)" "fetch" "first node"
if command -v dot >/dev/null; then
  dot -Tsvg "$T/out" >/dev/null 2>"$T/doterr" || fail "dot rejects the output: $(cat "$T/doterr")"
fi

run "$WFH" graph "$T/flow.yaml" --format mermaid
expect_rc 0 "mermaid"
expect_in "$T/out" '^flowchart LR$' "mermaid header"
expect_in "$T/out" '^  s1\["fetch<br/><small>http@2</small>"\]$' "mermaid node"
expect_in "$T/out" '^  s1 --> s2$' "mermaid edge fetch -> left"
expect_in "$T/out" '^  s3 --> s0$' "mermaid edge right -> join"

run "$WFH" graph "$T/flow.yaml" --format=svg
expect_rc 2 "unknown format"
run "$WFH" graph --help
expect_rc 0 "--help"
expect_in "$T/out" "usage: wfhost graph" "help"

printf 'name: c\nsteps:\n  - {id: a, uses: shell, needs: b}\n  - {id: b, uses: shell, needs: a}\n' >"$T/cycle.yaml"
run "$WFH" graph "$T/cycle.yaml"
expect_rc 2 "cycle"
expect_in "$T/err" "cycle.yaml:3:[0-9]+: error: cycle: a -> b -> a|cycle.yaml:4:[0-9]+: error: cycle: " "cycle reported"
expect_eq "$(wc -c <"$T/out")" "0" "nothing drawn for an invalid workflow"
# for_each and matrix steps are one node with their multiplicity
cat >"$T/many.yaml" <<'YAML'
name: many
steps:
  - id: a
    uses: shell
    matrix: {os: [linux, mac], v: [1, 2, 3]}
    with: {run: "true"}
  - id: b
    uses: shell
    needs: [a]
    for_each: ${{ fromJSON('[1,2]') }}
    with: {run: "true"}
YAML
run "$WFH" graph "$T/many.yaml"
expect_rc 0 "graph of for_each/matrix"
expect_in "$T/out" 'label="a.nshell ×6 \(matrix\)"' "matrix node shows its 6 combinations"
expect_in "$T/out" 'b.nshell × each of' "for_each node shows what it iterates"
expect_eq "$(grep -c '\[label=' "$T/out")" "2" "one node per step, not per item"
run "$WFH" graph "$T/many.yaml" --format mermaid
expect_in "$T/out" 'shell ×6 \(matrix\)' "mermaid shows the multiplicity too"

done_testing
