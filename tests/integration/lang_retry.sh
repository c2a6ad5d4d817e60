#!/usr/bin/env bash
# lang_retry: retry: max_attempts, fixed and exponential backoff with a cap, `on`
# classes (a class not listed is not retried), timeouts retried as their own class,
# defaults.retry, and the spacing of attempts checked from the recorded attempt
# history (start_unix_ms), with tolerances rather than timed sleeps.
. "$(dirname "$0")/../lib.sh"

cat >"$T/r.yaml" <<Y
name: retries
defaults:
  retry: {max_attempts: 2, initial: 100ms}
steps:
  - id: flaky
    uses: shell
    retry: {max_attempts: 3, backoff: fixed, initial: 300ms}
    with:
      run: |
        n=\$(cat "$T/flaky.n" 2>/dev/null || echo 0); n=\$((n+1)); echo \$n > "$T/flaky.n"
        [ \$n -ge 3 ] && echo "tries=\$n" >> "\$WFH_OUTPUT"
        [ \$n -ge 3 ]
  - id: expo
    uses: shell
    retry: {max_attempts: 4, backoff: exponential, initial: 200ms, max: 500ms}
    with:
      run: exit 1
  - id: slowpoke
    uses: shell
    timeout: 300ms
    retry: {max_attempts: 2, initial: 100ms, on: [timeout]}
    with:
      run: sleep 5
  - id: not_listed
    uses: shell
    retry: {max_attempts: 5, initial: 100ms, on: [transient]}
    with:
      run: exit 1
  - id: defaulted
    uses: shell
    with:
      run: exit 1
  - id: after_flaky
    uses: shell
    needs: flaky
    with:
      run: echo "got \${{ steps.flaky.outputs.tries }}"
Y
run "$WFH" exec --no-store --json "$T/r.yaml"
expect_rc 1 "some steps never succeed"
st() { json "$T/out" "[\"steps\"][\"$1\"][\"status\"]"; }
att() { json "$T/out" "[\"steps\"][\"$1\"][\"attempts\"]"; }
expect_eq "$(st flaky)" succeeded "flaky succeeds on its third attempt"
expect_eq "$(att flaky)" 3 "flaky attempts"
expect_eq "$(st after_flaky)" succeeded "its dependent runs after the retries"
expect_in "$T/err" 'after_flaky \| got 3' "the dependent sees the last attempt's outputs"
expect_eq "$(st expo)" failed "expo fails in the end"
expect_eq "$(att expo)" 4 "expo used every attempt"
expect_eq "$(st slowpoke)" timed_out "slowpoke times out each time"
expect_eq "$(att slowpoke)" 2 "timeouts are retried when listed"
expect_eq "$(att not_listed)" 1 "a class not in 'on' is not retried"
expect_eq "$(att defaulted)" 2 "defaults.retry applies"
expect_in "$T/err" 'again flaky: attempt 1 failed.*attempt 2 in 300 ?ms' "the retry is announced"

# Spacing: gap between the end of attempt n and the start of n+1 must be at least the
# wait, and not much more (1.5 s slack for a loaded machine).
python3 - "$T/out" <<'PY' || fail "retry spacing"
import json, sys
doc = json.load(open(sys.argv[1]))
def gaps(step):
    h = doc["steps"][step]["attempt_history"]
    return [h[k+1]["start_unix_ms"] - (h[k]["start_unix_ms"] + h[k]["duration_ms"])
            for k in range(len(h) - 1)]
bad = []
def check(step, waits):
    g = gaps(step)
    if len(g) != len(waits):
        bad.append(f"{step}: {len(g)} gaps, expected {len(waits)}")
        return
    for got, want in zip(g, waits):
        if got < want - 5 or got > want + 1500:
            bad.append(f"{step}: gap {got} ms, expected about {want} ms (all: {g})")
check("flaky", [300, 300])
check("expo", [200, 400, 500])   # doubled, then capped at max
check("slowpoke", [100])
for s in ("flaky", "expo"):
    h = doc["steps"][s]["attempt_history"]
    if [e["attempt"] for e in h] != list(range(1, len(h) + 1)):
        bad.append(f"{s}: attempt numbers {[e['attempt'] for e in h]}")
if doc["steps"]["slowpoke"]["attempt_history"][0]["status"] != "timed_out":
    bad.append("slowpoke's first attempt is not recorded as timed_out")
print("\n".join(bad), file=sys.stderr)
sys.exit(1 if bad else 0)
PY

# Full jitter stays within [0, wait]; a plugin's retry-after hint is never undercut
# (checked through the same history, with the shell step reporting transient).
cat >"$T/j.yaml" <<Y
name: jitter
steps:
  - id: j
    uses: shell
    retry: {max_attempts: 4, initial: 400ms, jitter: full}
    with:
      run: exit 1
Y
run "$WFH" exec --no-store --json "$T/j.yaml"
expect_rc 1 "jitter run fails"
python3 - "$T/out" <<'PY' || fail "jitter bounds"
import json, sys
h = json.load(open(sys.argv[1]))["steps"]["j"]["attempt_history"]
g = [h[k+1]["start_unix_ms"] - (h[k]["start_unix_ms"] + h[k]["duration_ms"]) for k in range(len(h)-1)]
ok = len(g) == 3 and all(-5 <= x <= 400 + 1500 for x in g)
if not ok: print("gaps", g, file=sys.stderr)
sys.exit(0 if ok else 1)
PY

# The plugin's retry-after hint (the fixture's `fail` type asks for 1500 ms and reports
# a transient failure) wins over a shorter backoff.
fixture="$WFH_BUILD/tests/plugins/fixture.so"
if [ -f "$fixture" ]; then
  cat >"$T/h.yaml" <<Y
name: hint
steps:
  - id: h
    uses: fail
    retry: {max_attempts: 2, initial: 50ms}
Y
  run "$WFH" exec --no-store --json "$T/h.yaml"
  expect_rc 1 "fixture fails"
  python3 - "$T/out" <<'PY' || fail "retry-after hint"
import json, sys
h = json.load(open(sys.argv[1]))["steps"]["h"]["attempt_history"]
g = [h[k+1]["start_unix_ms"] - (h[k]["start_unix_ms"] + h[k]["duration_ms"]) for k in range(len(h)-1)]
ok = len(g) == 1 and 1495 <= g[0] <= 1500 + 1500
if not ok: print("gaps", g, file=sys.stderr)
sys.exit(0 if ok else 1)
PY
else
  fail "fixture plugin not built: $fixture"
fi
done_testing
