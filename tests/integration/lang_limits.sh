#!/usr/bin/env bash
# lang_limits: `limits: {shell: 2}` holds a step type to 2 attempts at once even when
# --concurrency allows more, while other types are not held back; measured from the
# recorded attempt history.
. "$(dirname "$0")/../lib.sh"

{
  echo "name: limits"
  echo "limits: {shell: 2}"
  echo "steps:"
  for i in 1 2 3 4 5 6; do
    printf '  - id: s%s\n    uses: shell\n    with:\n      run: sleep 1\n' "$i"
  done
} >"$T/l.yaml"
run "$WFH" exec --no-store --json -j 8 "$T/l.yaml"
expect_rc 0 "limited run"
python3 - "$T/out" <<'PY' || fail "at most 2 shell steps at once, and 2 did run together"
import json, sys
s = json.load(open(sys.argv[1]))["steps"]
ev = []
for v in s.values():
    h = v["attempt_history"][0]
    # wall-clock start + monotonic duration, each rounded to a ms: an end can land 1-2 ms
    # after the start that followed it; a real breach overlaps by most of a second
    ev += [(h["start_unix_ms"], 1), (h["start_unix_ms"] + h["duration_ms"] - 2, -1)]
ev.sort(key=lambda e: (e[0], e[1]))  # an end before a start at the same ms
cur = peak = 0
for _, d in ev:
    cur += d
    peak = max(peak, cur)
print("peak", peak, file=sys.stderr)
sys.exit(0 if peak == 2 else 1)
PY

cat >"$T/bad.yaml" <<'Y'
name: bad-limits
limits: {shell: 0, http: lots}
steps:
  - id: a
    uses: shell
    with:
      run: "true"
Y
run "$WFH" validate "$T/bad.yaml"
expect_rc 2 "bad limits"
expect_in "$T/err" "bad.yaml:2:17: .*limit for 'shell' must be a whole number" "zero"
expect_in "$T/err" "bad.yaml:2:26: .*limit for 'http'" "not a number"
done_testing
