#!/usr/bin/env bash
# lang_foreach: for_each over a list from an earlier step's output (item/index contexts,
# max_parallel measured from the items' own timestamps, outputs a list in item order
# whatever order the items finish in), an empty list, a failing item failing the step,
# a list that is not a list; matrix with include/exclude.
. "$(dirname "$0")/../lib.sh"

cat >"$T/f.yaml" <<Y
name: fan-out
steps:
  - id: list
    uses: shell
    with:
      run: echo 'files=["c", "a", "b", "d"]' >> "\$WFH_OUTPUT"
  - id: each
    uses: shell
    needs: list
    for_each: \${{ fromJSON(steps.list.outputs.files) }}
    max_parallel: 2
    env:
      NAME: \${{ item }}
      N: \${{ index }}
    with:
      run: |
        date +%s%N > "$T/start.\$N"
        sleep 1.\$((4 - N))
        echo "upper=\$(echo \$NAME | tr a-z A-Z)" >> "\$WFH_OUTPUT"
        echo "n=\$N" >> "\$WFH_OUTPUT"
        date +%s%N > "$T/end.\$N"
  - id: after
    uses: shell
    needs: each
    with:
      run: echo "got \${{ join(steps.each.outputs.*.upper, ',') }} first=\${{ steps.each.outputs[0].upper }}"
  - id: none
    uses: shell
    for_each: \${{ fromJSON('[]') }}
    with:
      run: echo never
Y
run "$WFH" exec --no-store --json -j 8 "$T/f.yaml"
expect_rc 0 "for_each run"
st() { json "$T/out" "[\"steps\"][\"$1\"][\"status\"]"; }
expect_eq "$(st each)" succeeded "each"
expect_eq "$(json "$T/out" '["steps"]["each"]["outputs"][1]["upper"]')" A "outputs in item order"
expect_eq "$(json "$T/out" '["steps"]["each"]["outputs"][3]["n"]')" 3 "the last item's outputs last"
expect_in "$T/err" 'after \| got C,A,B,D first=C' "a dependent reads the list of outputs"
expect_eq "$(st none)" succeeded "an empty list"
expect_eq "$(json "$T/out" '["steps"]["none"]["outputs"]')" '[]' "no outputs"
python3 - "$T" <<'PY' || fail "max_parallel 2 held, and 2 items did run together"
import sys
t = sys.argv[1]
iv = [(int(open(f"{t}/start.{n}").read()), int(open(f"{t}/end.{n}").read())) for n in range(4)]
ev = sorted([(a, 1) for a, _ in iv] + [(b, -1) for _, b in iv], key=lambda e: (e[0], e[1]))
cur = peak = 0
for _, d in ev:
    cur += d; peak = max(peak, cur)
print("peak", peak, file=sys.stderr)
sys.exit(0 if peak == 2 else 1)
PY

cat >"$T/bad.yaml" <<'Y'
name: fan-out-fails
steps:
  - id: each
    uses: shell
    for_each: [1, 2, 3]
    with:
      run: "true"
  - id: items
    uses: shell
    for_each: ${{ fromJSON('[1, 2, 3]') }}
    max_parallel: 1
    with:
      run: "[ ${{ item }} -ne 2 ]"
  - id: notalist
    uses: shell
    for_each: ${{ 'abc' }}
    with:
      run: "true"
Y
run "$WFH" validate "$T/bad.yaml"
expect_rc 2 "for_each that is not an expression"
expect_in "$T/err" "bad.yaml:5:15: .*for_each must be an expression" "position"
sed -i '3,7d' "$T/bad.yaml"
run "$WFH" exec --no-store --json "$T/bad.yaml"
expect_rc 1 "a failing item fails the run"
expect_eq "$(st items)" failed "items"
json "$T/out" '["steps"]["items"]["error"]' | grep -q '^item 1: ' ||
  fail "the error names the item: $(json "$T/out" '["steps"]["items"]["error"]')"
expect_eq "$(json "$T/out" '["steps"]["items"]["outputs"][2]')" null "no item started after the failure (max_parallel 1)"
expect_eq "$(st notalist)" failed "not a list"
json "$T/out" '["steps"]["notalist"]["error"]' | grep -q 'yields a String, not a list' ||
  fail "says what it got: $(json "$T/out" '["steps"]["notalist"]["error"]')"

cat >"$T/m.yaml" <<'Y'
name: matrix
steps:
  - id: build
    uses: shell
    matrix:
      os: [linux, mac]
      arch: [x64, arm]
      exclude:
        - {os: mac, arch: x64}
      include:
        - {os: linux, arch: arm, extra: yes}
        - {os: bsd, arch: x64}
    env:
      TARGET: ${{ matrix.os }}-${{ matrix.arch }}${{ matrix.extra && '+' || '' }}
    with:
      run: |
        echo "target=$TARGET" >> "$WFH_OUTPUT"
        echo "building $TARGET"
  - id: all
    uses: shell
    needs: build
    with:
      run: echo "built ${{ join(steps.build.outputs.*.target, ' ') }}"
Y
run "$WFH" exec --no-store --json "$T/m.yaml"
expect_rc 0 "matrix run"
expect_in "$T/err" 'all \| built linux-x64 linux-arm\+ mac-arm bsd-x64' "combinations, exclude, include"
expect_in "$T/err" '^build \| building mac-arm$' "each item's printed output is shown"

# item/index/matrix only where they exist
cat >"$T/ctx.yaml" <<'Y'
name: contexts
steps:
  - id: plain
    uses: shell
    env:
      X: ${{ item }}
    with:
      run: "true"
  - id: fe
    uses: shell
    for_each: ${{ fromJSON('[1]') }}
    if: index == 0
    env:
      M: ${{ matrix.os }}
      I: ${{ index }}
    with:
      run: "true"
Y
run "$WFH" validate "$T/ctx.yaml"
expect_rc 2 "contexts used where they do not exist"
expect_in "$T/err" "ctx.yaml:6:14: .*step 'plain' reads 'item', which it does not have" "item outside a fan-out"
expect_in "$T/err" "ctx.yaml:12:9: .*the if of step 'fe' reads 'index'" "index in if"
expect_in "$T/err" "ctx.yaml:14:14: .*step 'fe' reads 'matrix'" "matrix in a for_each step"
expect_not_in "$T/err" "ctx.yaml:15:" "index in a for_each step's env is fine"

# items are retried under the step's retry policy, each on its own
cat >"$T/r.yaml" <<Y
name: item-retries
steps:
  - id: each
    uses: shell
    for_each: \${{ fromJSON('["a", "b", "c"]') }}
    retry: {max_attempts: 3, initial: 300ms}
    env:
      N: \${{ index }}
    with:
      run: |
        f="$T/try.\$N"; n=\$(cat "\$f" 2>/dev/null || echo 0); echo \$((n+1)) > "\$f"
        [ "\$N" != 1 ] || [ \$n -ge 1 ]
Y
run "$WFH" exec --no-store --json "$T/r.yaml"
expect_rc 0 "an item that fails once succeeds on its retry"
expect_in "$T/err" 'again each: attempt 1 failed \(item 1 attempt 1 failed' "the item's retry is shown"
python3 - "$T/out" <<'PY' || fail "item retry history"
import json, sys
h = json.load(open(sys.argv[1]))["steps"]["each"]["attempt_history"]
one = [e for e in h if e["item"] == 1]
ok = [e["attempt"] for e in one] == [1, 2] and [e["status"] for e in one] == ["failed", "succeeded"]
gap = one[1]["start_unix_ms"] - (one[0]["start_unix_ms"] + one[0]["duration_ms"]) if len(one) == 2 else -1
ok = ok and 295 <= gap <= 300 + 1500 and len([e for e in h if e["item"] != 1]) == 2
if not ok: print(h, gap, file=sys.stderr)
sys.exit(0 if ok else 1)
PY
done_testing
