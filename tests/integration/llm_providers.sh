#!/usr/bin/env bash
# llm step type against tests/fakes/llmfake.py, for each provider (OpenAI-compatible,
# Anthropic, Gemini), streamed and not: text, usage, model, finish reason, tool calls,
# JSON answers checked against a schema, and what went on the wire (auth headers,
# required fields, stream options, system prompt placement).
. "$(dirname "$0")/../lib.sh"
. "$WFH_SRC/tests/fakes/netlib.sh"

start_fake L llmfake.py --log "$T/llm.log" --api-key sk-test
base() { if [ "$1" = gemini ]; then echo "http://127.0.0.1:$L/v1beta"; else echo "http://127.0.0.1:$L/v1"; fi; }
last_req() { tail -n 1 "$T/llm.log" | python3 -c "import json,sys; r=json.load(sys.stdin); b=json.loads(r['body']); print(json.dumps(eval(sys.argv[1])))" "$1"; }

TOOLS='[{"name":"get_weather","description":"weather for a city","parameters":{"type":"object","required":["city"],"properties":{"city":{"type":"string"}}}}]'
SCHEMA='{"type":"object","required":["title","score"],"properties":{"title":{"type":"string"},"score":{"type":"integer","minimum":0,"maximum":10}},"additionalProperties":false}'

for p in openai anthropic gemini; do
    B=$(base $p)
    for s in true false; do
        w="$p stream=$s"
        step llm '{"provider":"'$p'","model":"ok","base_url":"'$B'","api_key":"sk-test","system":"be brief","prompt":"hello there","stream":'$s',"temperature":0.2,"max_tokens":50,"stop":["END"]}'
        expect_st 0 "$w text"
        expect_eq "$(out '["text"]')" "echo: hello there" "$w text output"
        expect_eq "$(out '["provider"]')" "$p" "$w provider output"
        expect_eq "$(out '["finish_reason"]')" stop "$w finish_reason"
        expect_eq "$(out '["tool_calls"]')" "[]" "$w no tool calls"
        [ "$(out '["usage"]["input_tokens"]')" -gt 0 ] || fail "$w input_tokens from usage"
        [ "$(out '["usage"]["output_tokens"]')" -gt 0 ] || fail "$w output_tokens from usage"
        out '["latency_ms"]' | grep -Eq '^[0-9]+$' || fail "$w latency_ms"
        out '["model"]' | grep -q '^ok' || fail "$w model output: $(out '["model"]')"
        if [ "$s" = true ]; then
            expect_in "$T/out" '"t":"progress"' "$w streaming reported as progress"
        fi
        case $p in
        openai)
            expect_eq "$(last_req "r['headers']['authorization']")" '"Bearer sk-test"' "$w bearer key"
            expect_eq "$(last_req "b['messages'][0]")" '{"role": "system", "content": "be brief"}' "$w system message first"
            expect_eq "$(last_req "b['stop']")" '["END"]' "$w stop"
            expect_eq "$(last_req "b['max_tokens']")" 50 "$w max_tokens"
            [ "$s" = true ] && expect_eq "$(last_req "b['stream_options']")" '{"include_usage": true}' "$w usage requested in stream"
            ;;
        anthropic)
            expect_eq "$(last_req "r['headers']['x-api-key']")" '"sk-test"' "$w x-api-key"
            expect_eq "$(last_req "r['headers']['anthropic-version']")" '"2023-06-01"' "$w anthropic-version"
            expect_eq "$(last_req "b['system']")" '"be brief"' "$w top-level system"
            expect_eq "$(last_req "b['stop_sequences']")" '["END"]' "$w stop_sequences"
            ;;
        gemini)
            expect_eq "$(last_req "r['headers']['x-goog-api-key']")" '"sk-test"' "$w x-goog-api-key"
            expect_eq "$(last_req "b['systemInstruction']['parts'][0]['text']")" '"be brief"' "$w systemInstruction"
            expect_eq "$(last_req "b['generationConfig']['maxOutputTokens']")" 50 "$w maxOutputTokens"
            if [ "$s" = true ]; then
                expect_eq "$(last_req "r['path']")" "\"/v1beta/models/ok:streamGenerateContent?alt=sse\"" "$w stream path"
            else
                expect_eq "$(last_req "r['path']")" "\"/v1beta/models/ok:generateContent\"" "$w path"
            fi
            ;;
        esac

        step llm '{"provider":"'$p'","model":"tools","base_url":"'$B'","api_key":"sk-test","prompt":"weather in Paris?","stream":'$s',"tools":'"$TOOLS"'}'
        expect_st 0 "$w tools"
        expect_eq "$(out '["tool_calls"][0]["name"]')" get_weather "$w tool name"
        expect_eq "$(out '["tool_calls"][0]["arguments"]')" '{"city": "Paris"}' "$w tool arguments parsed"
        out '["tool_calls"][0]["id"]' | grep -q . || fail "$w tool call id"
        expect_eq "$(out '["finish_reason"]')" tool_calls "$w finish tool_calls"

        step llm '{"provider":"'$p'","model":"json","base_url":"'$B'","api_key":"sk-test","prompt":"rate it","stream":'$s',"response_format":"json","schema":'"$SCHEMA"'}'
        expect_st 0 "$w json"
        expect_eq "$(out '["json"]')" '{"title": "fake", "score": 7}' "$w json output"
        step llm '{"provider":"'$p'","model":"json-fenced","base_url":"'$B'","api_key":"sk-test","prompt":"rate it","stream":'$s',"response_format":"json"}'
        expect_eq "$(out '["json"]["score"]')" 7 "$w fenced json accepted"
    done
done

# Server-sent events as the specification allows them, not only as the big providers
# happen to write them.
step llm '{"model":"sse-odd","base_url":"'$(base openai)'","api_key":"sk-test","prompt":"x"}'
expect_st 0 "unusual but legal SSE"
expect_eq "$(out '["text"]')" "odd but fine" "text from multi-line data and split lines"
expect_eq "$(out '["finish_reason"]')" stop "finish from the odd stream"
[ "$(out '["usage"]["output_tokens"]')" -gt 0 ] || fail "usage from the odd stream"

# Conversation form: system messages are folded into each provider's system slot.
step llm '{"provider":"anthropic","model":"ok","base_url":"'$(base anthropic)'","api_key":"sk-test","stream":false,"messages":[{"role":"system","content":"sys A"},{"role":"user","content":"first"},{"role":"assistant","content":"reply"},{"role":"user","content":"second"}]}'
expect_st 0 "anthropic messages"
expect_eq "$(out '["text"]')" "echo: second" "last user turn answered"
expect_eq "$(last_req "[m['role'] for m in b['messages']]")" '["user", "assistant", "user"]' "roles sent"
step llm '{"provider":"gemini","model":"ok","base_url":"'$(base gemini)'","api_key":"sk-test","stream":false,"messages":[{"role":"user","content":"first"},{"role":"assistant","content":"reply"},{"role":"user","content":"second"}]}'
expect_eq "$(last_req "[c['role'] for c in b['contents']]")" '["user", "model", "user"]' "gemini roles"
# OpenAI json_object mode needs the word JSON in the messages: the plugin adds it.
step llm '{"model":"json","base_url":"'$(base openai)'","api_key":"sk-test","prompt":"rate it","stream":false,"response_format":"json"}'
expect_st 0 "json_object mode accepted by the fake's OpenAI rule"
expect_eq "$(last_req "b['response_format']")" '{"type": "json_object"}' "json_object"
# Anthropic needs max_tokens; the plugin supplies a default.
step llm '{"provider":"anthropic","model":"ok","base_url":"'$(base anthropic)'","api_key":"sk-test","prompt":"x","stream":false}'
expect_eq "$(last_req "b['max_tokens']")" 1024 "anthropic default max_tokens"
# The default provider is openai, and a local server needs no key.
start_fake K llmfake.py --log "$T/nokey.log"
step llm '{"model":"ok","base_url":"http://127.0.0.1:'$K'/v1","prompt":"local"}'
expect_st 0 "keyless OpenAI-compatible server"
expect_eq "$(out '["provider"]')" openai "default provider"
expect_not_in "$T/nokey.log" '"authorization"' "no Authorization header without a key"

done_testing
