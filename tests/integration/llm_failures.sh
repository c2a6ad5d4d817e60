#!/usr/bin/env bash
# llm step type failure classes, fallback and token budgets against the fake providers:
# 429 (with Retry-After as the hint) and 5xx transient, 4xx permanent, truncated and
# malformed answers and streams transient, oversized answers failed, timeouts, answers
# that are not JSON or break the schema transient with the validation error. Fallback,
# budgets, invalid input and cancel are in llm_fallback_budget.sh.
. "$(dirname "$0")/../lib.sh"
. "$WFH_SRC/tests/fakes/netlib.sh"

start_fake L llmfake.py --log "$T/llm.log" --api-key sk-test
O="http://127.0.0.1:$L/v1"
G="http://127.0.0.1:$L/v1beta"
SCHEMA='{"type":"object","required":["title"],"properties":{"title":{"type":"string"}}}'
req() { echo '{"provider":"'$1'","model":"'$2'","base_url":"'$( [ "$1" = gemini ] && echo "$G" || echo "$O")'","api_key":"sk-test","prompt":"hello","stream":'$3"${4:+,$4}"'}'; }

for p in openai anthropic gemini; do
    for s in true false; do
        w="$p stream=$s"
        step llm "$(req $p err429 $s)"
        expect_st 2 "$w 429 transient"
        if [ $p = gemini ]; then
            expect_eq "$retry" 4000 "$w retryDelay in the error body as the hint"
        else
            expect_eq "$retry" 3000 "$w Retry-After hint"
        fi
        expect_in "$T/out" "HTTP 429: fake 429" "$w provider's error message"
        for m in err500 err503 truncated malformed; do
            step llm "$(req $p $m $s)"
            expect_st 2 "$w $m transient"
        done
        step llm "$(req $p err529 $s)"
        expect_st 2 "$w 529 (overloaded) transient"
        for m in err400 err401 err404; do
            step llm "$(req $p $m $s)"
            expect_st 3 "$w $m permanent"
        done
        step llm "$(req $p json-invalid $s '"response_format":"json"')"
        expect_st 2 "$w prose instead of JSON"
        expect_in "$T/out" "the answer is not JSON" "$w says why"
        step llm "$(req $p json-wrong $s '"response_format":"json","schema":'"$SCHEMA")"
        expect_st 2 "$w JSON breaking the schema"
        expect_in "$T/out" 'does not match the schema: \$.title: expected type' "$w validation error carried"
        step llm "$(req $p tools-bad $s '"tools":[{"name":"get_weather","parameters":'"$SCHEMA"'}]')"
        expect_st 2 "$w tool call arguments checked"
        step llm "$(req $p oversized $s '"max_response_bytes":100000')"
        expect_st 1 "$w oversized answer"
        expect_in "$T/out" "max_response_bytes" "$w oversize named"
    done
    step llm "$(req $p stream-error true)"
    expect_st 2 "$p error event in a stream"
    expect_in "$T/out" "stream error" "$p stream error named"
done
step llm "$(req openai truncated true)"
expect_in "$T/out" "truncated" "a cut stream says so"
step llm "$(req openai length false '"max_tokens":3')"
expect_eq "$(out '["finish_reason"]')" length "finish reason length"

step llm "$(req openai error200 false)"
expect_st 1 "an error body with status 200 fails"
expect_in "$T/out" "model 'error200' crashed" "its message is kept"
step llm "$(req openai slow false '"timeout_ms":500')"
expect_st 4 "timeout"
step llm "$(req openai ok false '"api_key":"wrong"' | sed 's/"api_key":"sk-test",//')"
expect_st 3 "wrong key is permanent"
free_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
step llm '{"model":"ok","base_url":"http://127.0.0.1:'$free_port'/v1","prompt":"x"}'
expect_st 2 "provider down is transient"

done_testing
