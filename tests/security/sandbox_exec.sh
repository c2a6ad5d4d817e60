# End to end through `wfhost exec`: the policy's grants reach a shell step confined
# under strict; a write outside them, or a read of /etc/shadow, fails that step with
# the kernel's refusal while the run and the host carry on.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/hostile/sandbox_lib.sh"
fixture_dir exec
OUT=$FIX
trap 'rm -rf "$T" "$OUT"' EXIT
mkdir -p "$T/ws" "$OUT/granted" "$OUT/other"
ENVLINE='allow shell --allow-env=PATH,HOME,USER,LOGNAME,LANG,LC_ALL,TZ,TMPDIR'
cat >"$T/flow.yaml" <<Y
name: confined
steps:
  - id: inside
    uses: shell
    with:
      run: echo ok > $OUT/granted/x && cat $OUT/granted/x
  - id: outside
    uses: shell
    with:
      run: echo no > $OUT/other/x
  - id: shadow
    uses: shell
    with:
      run: cat /etc/shadow
  - id: after
    uses: shell
    needs: [inside]
    with:
      run: echo still running
  - id: items
    uses: shell
    for_each: \${{ fromJSON('["a","b"]') }}
    with:
      run: echo \${{ item }}
Y
printf '%s\nallow shell --allow-write=%s/granted\n' "$ENVLINE" "$OUT" >"$T/policy"
run "$WFH" exec --json --workspace "$T/ws" --policy "$T/policy" "$T/flow.yaml"
expect_rc 1 "a run with refused steps fails"
expect_eq "$(json "$T/out" '["steps"]["inside"]["status"]')" "succeeded" "write inside the grant"
expect_eq "$(cat "$OUT/granted/x" 2>/dev/null)" "ok" "the granted file was written"
expect_eq "$(json "$T/out" '["steps"]["after"]["outputs"]["stdout"]')" "still running" "other steps carry on"
expect_eq "$(json "$T/out" '["steps"]["outside"]["status"]')" "failed" "write outside the grant"
expect_in "$T/err" "other/x: $DENIED" "the refusal is the kernel's"
[ -e "$OUT/other/x" ] && fail "write outside the grant: the file exists"
expect_eq "$(json "$T/out" '["steps"]["shadow"]["status"]')" "failed" "read of /etc/shadow"
expect_in "$T/err" "/etc/shadow: Permission denied" "/etc/shadow is masked"
# The runner's report of what confined each attempt, failed ones included, per attempt
# in --json (attempt_history) and per for_each item.
for s in inside outside shadow; do
  expect_eq "$(json "$T/out" "[\"steps\"][\"$s\"][\"attempt_history\"][0][\"sandbox\"][\"profile\"]")" \
    "strict" "$s: sandbox report in attempt_history"
done
expect_eq "$(json "$T/out" '["steps"]["outside"]["attempt_history"][0]["sandbox"]["seccomp"]')" "true" \
  "the report says what was applied"
expect_eq "$(json "$T/out" '["steps"]["items"]["attempt_history"][1]["sandbox"]["profile"]')" "strict" \
  "for_each item: sandbox report"

# Deno-style flags grant more for one run: the write that was refused now lands.
printf '%s\n' "$ENVLINE" >"$T/policy2"
cat >"$T/flow2.yaml" <<Y
name: flags
steps:
  - id: outside
    uses: shell
    with:
      run: echo yes > $OUT/other/y
Y
run "$WFH" exec --json --workspace "$T/ws" --policy "$T/policy2" "$T/flow2.yaml"
expect_eq "$(json "$T/out" '["steps"]["outside"]["status"]')" "failed" "no flag: refused"
run "$WFH" exec --json --workspace "$T/ws" --policy "$T/policy2" --allow-write="$OUT/other" "$T/flow2.yaml"
expect_rc 0 "--allow-write"
expect_eq "$(cat "$OUT/other/y" 2>/dev/null)" "yes" "--allow-write reached the step"
run "$WFH" exec --policy "$T/policy2" --allow-everything "$T/flow2.yaml"
expect_rc 2 "unknown --allow flag"
expect_in "$T/err" "--allow-everything: unknown grant" "names the flag"

# Strict by default, with no policy anywhere: the same write is refused by the kernel,
# and `wfhost retry` with the grant the run lacked runs the failed step again, confined
# with it; the run store keeps each attempt's report.
rm -f "$OUT/other/y"
run "$WFH" exec --json --workspace "$T/ws" "$T/flow2.yaml"
expect_rc 1 "no policy, no flag: refused"
expect_in "$T/err" "other/y: $DENIED" "by the kernel"
id=$(json "$T/out" '["run_id"]')
run "$WFH" retry --json --workspace "$T/ws" --allow-write="$OUT/other" "$id"
expect_rc 0 "retry --allow-write"
expect_eq "$(cat "$OUT/other/y" 2>/dev/null)" "yes" "the retried step wrote with the grant"
run "$WFH" runs show "$id"
expect_rc 0 "runs show"
expect_in "$T/out" "^    sandbox: strict: pid, mount, net namespaces; landlock ABI [0-9]+; seccomp; no_new_privs" \
  "runs show prints what confined each attempt"
[ "$(grep -c '^    sandbox: strict' "$T/out")" = 2 ] || fail "both attempts' reports are stored: $(cat "$T/out")"
run "$WFH" retry --allow-bogus=1 "$id"
expect_rc 2 "retry with an unknown --allow flag"
done_testing
