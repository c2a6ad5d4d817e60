#!/usr/bin/env bash
# http_llm_secrets_resume: through `wfhost exec` (sandboxed, network granted by
# host:port), an http step's bearer and basic credentials and an llm step's api_key come
# from workflow secrets and reach the servers, while their values appear nowhere in the
# run's output, logs or run store; and an http step's Idempotency-Key stays the same when
# the host is SIGKILLed mid-request and the run is resumed (a second attempt, the same key).
. "$(dirname "$0")/../lib.sh"
. "$WFH_SRC/tests/fakes/netlib.sh"

start_fake P httpfake.py --log "$T/http.log"
start_fake L llmfake.py --log "$T/llm.log" --api-key sk-from-secret-77
NET="--allow-net=127.0.0.1:$P,127.0.0.1:$L"

cat >"$T/secrets.yaml" <<Y
name: with-secrets
secrets: [API_TOKEN, BASIC_PW, LLM_KEY]
steps:
  - id: bearer
    uses: http
    with:
      url: http://127.0.0.1:$P/json?who=bearer
      auth:
        bearer: \${{ secrets.API_TOKEN }}
  - id: basic
    uses: http
    with:
      url: http://127.0.0.1:$P/json?who=basic
      auth:
        basic:
          username: ops
          password: \${{ secrets.BASIC_PW }}
  - id: ask
    uses: llm
    with:
      model: ok
      base_url: http://127.0.0.1:$L/v1
      api_key: \${{ secrets.LLM_KEY }}
      prompt: hello
Y
export WFH_SECRET_API_TOKEN=tok-bearer-sekrit-31 WFH_SECRET_BASIC_PW=pw-basic-sekrit-32 \
       WFH_SECRET_LLM_KEY=sk-from-secret-77
run "$WFH" exec secrets.yaml --json "$NET"
expect_rc 0 "credentials from secrets"
expect_eq "$(json "$T/out" '["steps"]["ask"]["outputs"]["text"]')" "echo: hello" "llm answered with the secret key"
auth=$(python3 - "$T/http.log" <<'PY'
import json, sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    print(r["path"].split("=")[1], r["headers"].get("authorization"))
PY
)
expect_in <(echo "$auth") "^bearer Bearer tok-bearer-sekrit-31$" "bearer token sent"
# base64("ops:pw-basic-sekrit-32")
expect_in <(echo "$auth") "^basic Basic $(printf 'ops:pw-basic-sekrit-32' | base64)$" "basic credentials sent"
for v in tok-bearer-sekrit-31 pw-basic-sekrit-32 sk-from-secret-77; do
  if grep -rq -- "$v" "$T/out" "$T/err" "$WFH_HOME"; then
    fail "secret value $v found in the output, logs or run store"
  fi
done
# A wrong key is the provider's 401: permanent, named, and still not echoed.
WFH_SECRET_LLM_KEY=sk-wrong-key-78 run "$WFH" exec secrets.yaml --json "$NET"
expect_rc 1 "wrong api key fails the run"
expect_eq "$(json "$T/out" '["steps"]["ask"]["attempts"]')" 1 "a 401 is not retried"
expect_in "$T/err" "HTTP 401" "the provider's status is named"
expect_not_in "$T/err" "sk-wrong-key-78" "the key is not echoed"

# Resume after the host is killed while a POST is in flight: the resumed attempt sends
# the same Idempotency-Key, so the server can tell it is the same operation.
cat >"$T/idem.yaml" <<Y
name: idem-resume
steps:
  - id: order
    uses: http
    retry: { max_attempts: 3, initial: 10ms }
    with:
      url: http://127.0.0.1:$P/slow?ms=1500
      method: POST
      json: { order: 42 }
      idempotency_key: true
Y
n0=$(lines "$T/http.log")
"$WFH" exec idem.yaml "$NET" >"$T/idem.out" 2>"$T/idem.err" &
pid=$!
for _ in $(seq 1 200); do
  [ "$(lines "$T/http.log")" -gt "$n0" ] && break
  sleep 0.05
done
[ "$(lines "$T/http.log")" -gt "$n0" ] || fail "the POST never reached the server"
kill -KILL "$pid"
wait "$pid" 2>/dev/null
id=$(head -n 1 "$T/idem.err" | sed -n 's/^run \([0-9A-Z]*\) (idem-resume)$/\1/p')
[ -n "$id" ] || { fail "no run id on the first stderr line"; cat "$T/idem.err" >&2; }
run "$WFH" resume "$id" --json "$NET"
expect_rc 0 "resumed run finishes"
expect_eq "$(json "$T/out" '["steps"]["order"]["status"]')" succeeded "the order step succeeded after resume"
expect_eq "$(idem_keys "$T/http.log" "$n0" /slow)" "2 1 set" "two requests (killed, resumed), one idempotency key"
done_testing
