#!/usr/bin/env bash
# lang_handlers: top-level on_failure: steps run only when the run failed and can read
# which step failed and why; finally: steps run after everything, whatever happened;
# both are lists shaped like steps (needs among themselves); a handler failing fails
# the run; a skipped on_failure does not.
. "$(dirname "$0")/../lib.sh"

cat >"$T/h.yaml" <<'Y'
name: handlers
steps:
  - id: ok
    uses: shell
    with:
      run: echo fine
  - id: bad
    uses: shell
    needs: ok
    with:
      run: echo "disk full" >&2; exit 7
  - id: never
    uses: shell
    needs: bad
    with:
      run: echo never
on_failure:
  - id: notify
    uses: shell
    env:
      WHY: ${{ steps.bad.error }}
      STATUS: ${{ steps.bad.status }}
    with:
      run: echo "notify= bad $STATUS ($WHY)"
  - id: page
    uses: shell
    needs: notify
    with:
      run: echo paging
finally:
  - id: cleanup
    uses: shell
    with:
      run: echo "cleanup after ${{ steps.never.status }}"
Y
run "$WFH" exec --no-store --json "$T/h.yaml"
expect_rc 1 "the run failed"
st() { json "$T/out" "[\"steps\"][\"$1\"][\"status\"]"; }
expect_eq "$(st bad)" failed "bad"
expect_eq "$(st never)" skipped "never"
expect_eq "$(st notify)" succeeded "on_failure step ran"
expect_eq "$(st page)" succeeded "on_failure steps have their own needs"
expect_eq "$(st cleanup)" succeeded "finally ran"
expect_in "$T/err" 'notify \| notify= bad failure \(.*exit status 7.*\)' "on_failure sees which step failed and why"
expect_in "$T/err" 'cleanup \| cleanup after skipped' "finally sees every step"
# order: notify after bad, cleanup after notify and page
python3 - "$T/out" <<'PY' || fail "handler order"
import json, sys
s = json.load(open(sys.argv[1]))["steps"]
t = {k: v["attempt_history"][0]["start_unix_ms"] if v["attempt_history"] else None for k, v in s.items()}
end = lambda k: s[k]["attempt_history"][0]["start_unix_ms"] + s[k]["attempt_history"][0]["duration_ms"]
ok = t["notify"] >= end("bad") and t["cleanup"] >= end("page") and t["page"] >= end("notify")
sys.exit(0 if ok else 1)
PY

sed -e 's/exit 7/exit 0/' "$T/h.yaml" >"$T/ok.yaml"
run "$WFH" exec --no-store --json "$T/ok.yaml"
expect_rc 0 "a run that did not fail, with skipped on_failure steps, succeeds"
expect_eq "$(st notify)" skipped "on_failure skipped"
expect_eq "$(json "$T/out" '["steps"]["notify"]["reason"]')" "on_failure: the run has not failed" "why"
expect_eq "$(st page)" skipped "its dependent too"
expect_eq "$(st cleanup)" succeeded "finally runs after a success"

cat >"$T/fin.yaml" <<'Y'
name: failing-finally
steps:
  - id: a
    uses: shell
    with:
      run: "true"
finally:
  - id: f
    uses: shell
    with:
      run: exit 1
Y
run "$WFH" exec --no-store "$T/fin.yaml"
expect_rc 1 "a failing finally step fails the run"

cat >"$T/bad.yaml" <<'Y'
name: bad-handlers
steps:
  - id: a
    uses: shell
    with:
      run: "true"
on_failure:
  id: x
finally:
  - id: a
    uses: shell
    with:
      run: "true"
Y
run "$WFH" validate "$T/bad.yaml"
expect_rc 2 "bad handler lists"
expect_in "$T/err" "bad.yaml:8:3: .*on_failure must be a list of steps" "shape"
expect_in "$T/err" "bad.yaml:10:5: .*duplicate step id 'a'" "ids shared with steps"
done_testing
