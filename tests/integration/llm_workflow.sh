#!/usr/bin/env bash
# http and llm steps in a workflow run by `wfhost exec`: a page fetched from the fake
# HTTP server, summarized by the fake OpenAI-compatible server after a fallback, the
# answer passed on to a shell step; a 404 fails the run with the plugin's message.
. "$(dirname "$0")/../lib.sh"
. "$WFH_SRC/tests/fakes/netlib.sh"

start_fake P httpfake.py --log "$T/http.log"
start_fake L llmfake.py --log "$T/llm.log" --api-key sk-test
start_fake K llmfake.py --log "$T/K.log"

cat >"$T/flow.yaml" <<Y
name: fetch-and-summarize
env:
  LLM_BASE_URL: http://127.0.0.1:$L/v1
steps:
  - id: fetch
    uses: http
    with:
      url: http://127.0.0.1:$P/json
      allow: ["127.0.0.1:$P"]
  - id: summarize
    uses: llm
    needs: [fetch]
    with:
      model: err503
      base_url: \${{ env.LLM_BASE_URL }}
      api_key: sk-test
      prompt: "Summarize: \${{ steps.fetch.outputs.json.name }}"
      fallback:
        - model: ok
          base_url: \${{ env.LLM_BASE_URL }}
          api_key: sk-test
  - id: show
    uses: shell
    needs: [summarize]
    env:
      SUMMARY: \${{ steps.summarize.outputs.text }}
    with:
      run: echo "summary=\$SUMMARY" >> "\$WFH_OUTPUT"
Y
cd "$T"
# Every step is confined (strict by default) and gets no network unless granted.
NET="--allow-net=127.0.0.1:$P,127.0.0.1:$L,127.0.0.1:$K"
run "$WFH" exec flow.yaml --json
expect_rc 3 "no network grant: refused before anything runs"
expect_in "$T/err" "step 'fetch' \\(http\\): .*--allow-net" "the refusal says what to grant"
run "$WFH" exec flow.yaml --json "$NET"
expect_rc 0 "fetch and summarize"
expect_eq "$(json "$T/out" '["steps"]["fetch"]["outputs"]["status"]')" 200 "http status through exec"
expect_eq "$(json "$T/out" '["steps"]["summarize"]["outputs"]["text"]')" "echo: Summarize: café" "llm answer through exec"
expect_eq "$(json "$T/out" '["steps"]["summarize"]["outputs"]["model"]')" "ok-0001" "fallback model answered"
expect_eq "$(json "$T/out" '["steps"]["show"]["outputs"]["summary"]')" "echo: Summarize: café" "answer reaches the next step"

cat >"$T/fail.yaml" <<Y
name: missing-page
steps:
  - id: fetch
    uses: http
    with:
      url: http://127.0.0.1:$P/status/404
Y
run "$WFH" exec fail.yaml "$NET"
[ "$rc" -ne 0 ] || fail "a 404 must fail the run"
expect_in "$T/err" "http: GET http://127.0.0.1:$P/status/404: status 404" "the plugin's message is shown"

# Under the sandbox (the default strict profile) with the operator's network grant in a
# policy file, by host:port: the plugins load and talk to loopback; the run budget file
# lands in the workspace.
cat >"$T/policy" <<Y
allow http --allow-net=127.0.0.1:$P
allow llm --allow-net=127.0.0.1:$L
Y
cat >"$T/sandboxed.yaml" <<Y
name: sandboxed
steps:
  - id: fetch
    uses: http
    with:
      url: http://127.0.0.1:$P/json
  - id: summarize
    uses: llm
    needs: [fetch]
    with:
      model: ok
      base_url: http://127.0.0.1:$L/v1
      api_key: sk-test
      prompt: "Summarize: \${{ steps.fetch.outputs.json.name }}"
      token_budget: { run: 100000 }
Y
mkdir -p "$T/ws"
run "$WFH" exec sandboxed.yaml --policy "$T/policy" --workspace "$T/ws" --json
expect_rc 0 "http and llm inside the sandbox"
expect_eq "$(json "$T/out" '["steps"]["summarize"]["outputs"]["text"]')" "echo: Summarize: café" "answer from inside the sandbox"
ls "$T/ws"/.wfhost-llm-tokens-* >/dev/null 2>&1 || fail "run budget file not written in the workspace"
printf 'allow llm --allow-net\n' >"$T/policy-nohttp"
run "$WFH" exec sandboxed.yaml --policy "$T/policy-nohttp"
expect_rc 3 "no grant for http: refused before anything runs"

# The grant is by host:port, and the plugin itself refuses a target the grant does not
# name (the kernel's Landlock rules know ports, not addresses): a URL computed at run
# time, which the host cannot check ahead, on the right port of another address fails
# the step with the target, the grant and the fix named.
sed "s|http://127.0.0.1:$P/json|http://\${{ env.TARGET }}/json|; s|^steps:|env: { TARGET: '127.0.0.2:$P' }\nsteps:|" \
    "$T/sandboxed.yaml" >"$T/elsewhere.yaml"
grep -q 'env.TARGET' "$T/elsewhere.yaml" || fail "elsewhere.yaml not made"
n0=$(lines "$T/http.log")
run "$WFH" exec elsewhere.yaml --policy "$T/policy" --workspace "$T/ws"
expect_rc 1 "a target outside the host:port grant fails the step"
expect_in "$T/err" "http: 127.0.0.2:$P is not in this step's network grant \\(127.0.0.1:$P\\); add 'allow http --allow-net=127.0.0.2:$P' to the policy or pass --allow-net=127.0.0.2:$P" "refusal names target, grant and fix"
expect_eq "$(lines "$T/http.log")" "$n0" "nothing was sent"

# Retries through the host: a 503 with Retry-After: 1 is retried after at least a second
# each time, with the same idempotency key; a 404 is permanent and not retried.
cat >"$T/retry.yaml" <<Y
name: retrying
steps:
  - id: flaky
    uses: http
    retry: { max_attempts: 3, initial: 10ms }
    with:
      url: http://127.0.0.1:$P/status/503?retry_after=1
      method: POST
      json: { order: 42 }
      idempotency_key: true
  - id: missing
    uses: http
    retry: { max_attempts: 3, initial: 10ms }
    with:
      url: http://127.0.0.1:$P/status/404
Y
n0=$(lines "$T/http.log")
t0=$(date +%s%N)
run "$WFH" exec retry.yaml --json "$NET"
t1=$(date +%s%N)
[ "$rc" -ne 0 ] || fail "the retrying run must fail in the end"
expect_eq "$(json "$T/out" '["steps"]["flaky"]["attempts"]')" 3 "transient 503 retried"
expect_eq "$(json "$T/out" '["steps"]["missing"]["attempts"]')" 1 "permanent 404 not retried"
ms=$(( (t1 - t0) / 1000000 ))
[ "$ms" -ge 2000 ] || fail "Retry-After: 1 not honoured between 3 attempts (${ms} ms)"
expect_eq "$(idem_keys "$T/http.log" "$n0" /status/503)" "3 1 set" "three attempts, one idempotency key"

# A JSON answer that fails its schema is transient, so the host's retry asks again.
cat >"$T/schema-retry.yaml" <<Y
name: schema-retry
steps:
  - id: rate
    uses: llm
    retry: { max_attempts: 2, initial: 10ms }
    with:
      model: json-flaky
      base_url: http://127.0.0.1:$K/v1
      prompt: rate it
      response_format: json
      schema: { type: object, required: [title], properties: { title: { type: string } } }
Y
run "$WFH" exec schema-retry.yaml --json "$NET"
expect_rc 0 "schema failure fixed by a retry"
expect_eq "$(json "$T/out" '["steps"]["rate"]["attempts"]')" 2 "second attempt answered"
expect_eq "$(json "$T/out" '["steps"]["rate"]["outputs"]["json"]["title"]')" fake "valid answer kept"

# The shipped example runs as its header says: one variable, WFH_LLM_BASE_URL, gives the
# LLM's address (its input declares env: WFH_LLM_BASE_URL); the page comes from the local
# fake server, not the internet. Without the variable the page is still fetched and the
# LLM steps are skipped.
EX="$WFH_SRC/examples/fetch-and-summarize.yaml"
grep -q "^#   export WFH_LLM_BASE_URL=" "$EX" || fail "the example's header names its variable"
WFH_LLM_BASE_URL="http://127.0.0.1:$K/v1" run "$WFH" exec "$EX" --json \
    -i url="http://127.0.0.1:$P/json" -i model=ok "$NET"
expect_rc 0 "examples/fetch-and-summarize.yaml against the fakes, address from the environment"
expect_eq "$(json "$T/out" '["steps"]["summarize"]["status"]')" succeeded "LLM step ran"
expect_in "$T/err" "show \\| echo: Summarize this page" "the summary is printed"
expect_in "$T/K.log" 'max_tokens.":300' "example's max_tokens sent"
n0=$(lines "$T/K.log")
unset WFH_LLM_BASE_URL
run "$WFH" exec "$EX" --json -i url="http://127.0.0.1:$P/json" "$NET"
expect_rc 0 "the example without the variable"
expect_eq "$(json "$T/out" '["steps"]["fetch"]["status"]')" succeeded "page fetched"
expect_eq "$(json "$T/out" '["steps"]["summarize"]["status"]')" skipped "LLM step skipped"
expect_eq "$(json "$T/out" '["steps"]["show"]["status"]')" skipped "and the step that prints it"
expect_eq "$(lines "$T/K.log")" "$n0" "no LLM request without the address"

done_testing
