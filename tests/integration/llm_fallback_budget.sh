#!/usr/bin/env bash
# llm step type: fallback tried in order past transient failures only, step and run token
# budgets refusing before anything is sent, invalid input refused before any request,
# and cancellation, against tests/fakes/llmfake.py.
. "$(dirname "$0")/../lib.sh"
. "$WFH_SRC/tests/fakes/netlib.sh"

start_fake L llmfake.py --log "$T/llm.log" --api-key sk-test
O="http://127.0.0.1:$L/v1"
G="http://127.0.0.1:$L/v1beta"
SCHEMA='{"type":"object","required":["title"],"properties":{"title":{"type":"string"}}}'

# Fallback: in order, only past transient failures, and the outputs name who answered.
n0=$(lines "$T/llm.log")
step llm '{"provider":"openai","model":"err503","base_url":"'$O'","api_key":"sk-test","prompt":"hi","fallback":[{"provider":"gemini","model":"err429","base_url":"'$G'","api_key":"sk-test"},{"provider":"anthropic","model":"ok","base_url":"'$O'","api_key":"sk-test"},{"provider":"openai","model":"never","base_url":"'$O'","api_key":"sk-test"}]}'
expect_st 0 "fallback reaches the third target"
expect_eq "$(out '["provider"]')" anthropic "provider that answered"
expect_eq "$(out '["model"]')" ok "model that answered"
expect_eq "$(out '["text"]')" "echo: hi" "fallback answer"
expect_eq "$(lines "$T/llm.log")" "$((n0 + 3))" "three requests, the fourth target untouched"
expect_in "$T/out" 'falling back to gemini err429' "fallback logged"
step llm '{"model":"err400","base_url":"'$O'","api_key":"sk-test","prompt":"hi","fallback":[{"model":"ok","base_url":"'$O'","api_key":"sk-test"}]}'
expect_st 3 "no fallback past a permanent failure"
step llm '{"model":"err500","base_url":"'$O'","api_key":"sk-test","prompt":"hi","fallback":[{"model":"err429","base_url":"'$O'","api_key":"sk-test"}]}'
expect_st 2 "all targets failed transiently"
expect_in "$T/out" 'openai err500: HTTP 500.*; then openai err429: HTTP 429' "every failure in the message"
expect_eq "$retry" 3000 "last target's Retry-After"
step llm '{"model":"json-wrong","base_url":"'$O'","api_key":"sk-test","prompt":"hi","response_format":"json","schema":'"$SCHEMA"',"fallback":[{"provider":"gemini","model":"json","base_url":"'$G'","api_key":"sk-test"}]}'
expect_st 0 "schema failure falls back"
expect_eq "$(out '["json"]["title"]')" fake "fallback's valid JSON"

# Token budgets. Step: refuse before sending when the estimate + max_tokens exceed it.
n0=$(lines "$T/llm.log")
step llm '{"model":"ok","base_url":"'$O'","api_key":"sk-test","prompt":"'"$(printf 'word %.0s' $(seq 1 400))"'","token_budget":{"step":100}}'
expect_st 3 "over the step budget"
expect_in "$T/out" "token budget refused the request" "budget refusal named"
step llm '{"model":"ok","base_url":"'$O'","api_key":"sk-test","prompt":"hi","max_tokens":500,"token_budget":{"step":100}}'
expect_st 3 "max_tokens alone exceeds the budget"
expect_eq "$(lines "$T/llm.log")" "$n0" "nothing sent when the budget refuses"
# Without max_tokens the answer is capped to what the budget leaves.
step llm '{"model":"ok","base_url":"'$O'","api_key":"sk-test","prompt":"hi","stream":false,"token_budget":{"step":100}}'
expect_st 0 "within budget"
mt=$(tail -n 1 "$T/llm.log" | python3 -c 'import json,sys; print(json.loads(json.load(sys.stdin)["body"])["max_tokens"])')
[ "$mt" -gt 0 ] && [ "$mt" -lt 100 ] || fail "max_tokens capped by the budget: $mt"
# Spend across fallbacks counts against the step budget (usage of failed answers too).
step llm '{"model":"json-invalid","base_url":"'$O'","api_key":"sk-test","prompt":"hi","response_format":"json","max_tokens":5,"token_budget":{"step":40},"fallback":[{"model":"json-invalid","base_url":"'$O'","api_key":"sk-test"},{"model":"json-invalid","base_url":"'$O'","api_key":"sk-test"}]}'
expect_st 3 "budget spent by earlier answers refuses the next target"
# Run budget: kept in the workspace across steps of one run, separate per run.
mkdir -p "$T/ws"
STEP_WS=$T/ws STEP_RUN=run-A step llm '{"model":"ok","base_url":"'$O'","api_key":"sk-test","prompt":"hi","max_tokens":10,"token_budget":{"run":30}}'
expect_st 0 "first step of the run"
spent=$(cat "$T/ws/.wfhost-llm-tokens-run-A")
[ "$spent" -gt 0 ] || fail "run spend recorded: $spent"
for _ in 1 2 3 4 5 6 7 8 9 10; do
    STEP_WS=$T/ws STEP_RUN=run-A step llm '{"model":"ok","base_url":"'$O'","api_key":"sk-test","prompt":"hi","max_tokens":10,"token_budget":{"run":30}}'
    [ "$st" = 0 ] || break
done
expect_st 3 "the run's budget runs out"
expect_in "$T/out" "run budget" "run budget named"
STEP_WS=$T/ws STEP_RUN=run-B step llm '{"model":"ok","base_url":"'$O'","api_key":"sk-test","prompt":"hi","max_tokens":10,"token_budget":{"run":30}}'
expect_st 0 "another run has its own budget"

# Invalid input: refused before any request.
n0=$(lines "$T/llm.log")
for bad in '{"model":"ok","base_url":"'$O'"}' \
           '{"model":"ok","base_url":"'$O'","prompt":"a","messages":[{"role":"user","content":"b"}]}' \
           '{"model":"ok","base_url":"'$O'","messages":[{"role":"robot","content":"b"}]}' \
           '{"provider":"cohere","model":"ok","base_url":"'$O'","prompt":"a"}' \
           '{"base_url":"'$O'","prompt":"a"}' \
           '{"model":"ok","base_url":"'$O'","prompt":"a","temperature":7}' \
           '{"model":"ok","base_url":"'$O'","prompt":"a","max_tokens":0}' \
           '{"model":"ok","base_url":"'$O'","prompt":"a","schema":{"type":"object"}}' \
           '{"model":"ok","base_url":"'$O'","prompt":"a","response_format":"json","schema":{"$ref":"#/nowhere"}}' \
           '{"model":"ok","base_url":"'$O'","prompt":"a","response_format":"json","schema":{"type":"string","pattern":"(["}}' \
           '{"model":"ok","base_url":"'$O'","prompt":"a","tools":[{"name":"bad name"}]}' \
           '{"model":"ok","base_url":"'$O'","prompt":"a","fallback":[{"provider":"openai"}]}' \
           '{"model":"ok","base_url":"'$O'","prompt":"a","fallback":[{"model":"x","base_url":"http://example.com/v1"}],"allow":["127.0.0.1:'$L'"]}' \
           '{"model":"ok","base_url":"ftp://127.0.0.1/v1","prompt":"a"}' \
           '{"provider":"gemini","model":"../x","base_url":"'$G'","prompt":"a"}' \
           '{"model":"ok","base_url":"'$O'","prompt":"a","token_budget":{"month":5}}' \
           '{"model":"ok","base_url":"'$O'","prompt":"a","stream":"yes"}' \
           '{"model":"ok","base_url":"'$O'","prompt":"a","extra":1}'; do
    step llm "$bad"
    expect_st 5 "invalid input $bad"
    expect_in "$T/out" '"error":"llm: ' "error names the plugin for $bad"
done
expect_eq "$(lines "$T/llm.log")" "$n0" "no request was sent for invalid input"
step llm '{"model":"ok","base_url":"'$O'","api_key":"sk-test","prompt":"a","allow":["127.0.0.1:'$L'"]}'
expect_st 0 "allowed endpoint"
n0=$(lines "$T/llm.log")
# The sandbox grant (ABI 1.1 grant_json): every target, fallbacks included, is checked
# before anything is sent, and a refusal names the target, the grant and the fix.
STEP_SANDBOX='{"profile":"none","net":["127.0.0.1:'$L'"]}' step llm '{"model":"ok","base_url":"'$O'","api_key":"sk-test","prompt":"a","fallback":[{"model":"ok","base_url":"http://localhost:'$L'/v1"}]}'
expect_st 5 "a fallback outside the step's grant is refused before anything is sent"
expect_in "$T/out" "llm: fallback\\[0\\] \\(openai ok\\): localhost:$L is not in this step's network grant \\(127.0.0.1:$L\\); add 'allow llm --allow-net=localhost:$L' to the policy or pass --allow-net=localhost:$L" "fallback refusal named"
expect_eq "$(lines "$T/llm.log")" "$n0" "nothing sent"
STEP_SANDBOX='{"profile":"none","net":false}' step llm '{"model":"ok","base_url":"'$O'","api_key":"sk-test","prompt":"a"}'
expect_st 5 "no network granted"
expect_in "$T/out" "the step \\(openai ok\\): 127.0.0.1:$L is not in this step's network grant \\(none\\)" "primary refusal named"
expect_eq "$(lines "$T/llm.log")" "$n0" "nothing sent without a grant"
STEP_SANDBOX='{"profile":"none","net":["127.0.0.1:'$L'"]}' step llm '{"model":"ok","base_url":"'$O'","api_key":"sk-test","prompt":"a"}'
expect_st 0 "inside the step's grant"
STEP_SANDBOX='{"profile":"none","net":["127.0.0.1:'$L'"]}' step llm '{"provider":"anthropic","model":"ok","api_key":"sk-test","prompt":"a"}'
expect_st 5 "the provider's public endpoint is outside a loopback grant"
expect_in "$T/out" "api.anthropic.com:443 is not in this step's network grant" "public endpoint named"

# Cancellation during a slow answer.
python3 - "$WFH_BUILT_PLUGINS/llm.so" "$O" >"$T/req-cancel.json" <<'PY'
import json, sys
print(json.dumps({"plugin": sys.argv[1], "type": "llm",
                  "inputs": {"model": "slow", "base_url": sys.argv[2], "api_key": "sk-test",
                             "prompt": "x"},
                  "env": {}, "run_id": "r", "step_id": "s", "attempt": 1,
                  "idempotency_key": "k", "workspace": "/tmp"}))
PY
"$RUNNER" <"$T/req-cancel.json" >"$T/cancel.out" 2>"$T/cancel.err" &
rpid=$!
sleep 0.5
kill -INT "$rpid"
wait "$rpid"
expect_in "$T/cancel.out" '"status":6' "SIGINT cancels the request"

done_testing
