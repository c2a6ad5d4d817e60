#!/usr/bin/env bash
# http step type against tests/fakes/httpfake.py: methods, query, headers, bodies, auth,
# idempotency key, redirects (and credentials dropped on a host change), status ranges,
# chunked, gzip, large and binary bodies, size limits. Driven through the step runner.
. "$(dirname "$0")/../lib.sh"
. "$WFH_SRC/tests/fakes/netlib.sh"

start_fake P httpfake.py --log "$T/http.log"
U="http://127.0.0.1:$P"

# GET with query, headers, bearer auth and the idempotency key.
step http '{"url":"'$U'/echo?a=1","query":{"b":"x y","n":3,"t":true},"headers":{"X-Trace":"abc"},"auth":{"bearer":"tok-1"},"idempotency_key":true}'
expect_st 0 "GET echo"
expect_eq "$(out '["status"]')" 200 "status output"
expect_eq "$(out '["json"]["query"]["b"][0]')" "x y" "query encoded"
expect_eq "$(out '["json"]["query"]["n"][0]')" 3 "query number"
expect_eq "$(out '["json"]["query"]["t"][0]')" true "query boolean"
expect_eq "$(out '["json"]["headers"]["x-trace"]')" abc "custom header"
expect_eq "$(out '["json"]["headers"]["authorization"]')" "Bearer tok-1" "bearer auth"
expect_eq "$(out '["json"]["headers"]["idempotency-key"]')" "idem-run-1-s1" "idempotency key from the request"
expect_eq "$(out '["headers"]["content-type"]')" "application/json" "response headers, lower-case"
expect_eq "$(out '["body_encoding"]')" "utf-8" "text body"
ms=$(out '["elapsed_ms"]'); [ "$ms" -ge 0 ] 2>/dev/null || fail "elapsed_ms not a number: $ms"

# The key is stable across attempts: attempt 2 sends the same one.
STEP_ATTEMPT=2 step http '{"url":"'$U'/echo","idempotency_key":true}'
expect_eq "$(out '["json"]["headers"]["idempotency-key"]')" "idem-run-1-s1" "same key on attempt 2"
step http '{"url":"'$U'/echo"}'
expect_eq "$(out '["json"]["headers"].get("idempotency-key","none")')" none "no key unless asked"

# Bodies: json, form, text; methods.
step http '{"url":"'$U'/echo","method":"POST","json":{"a":[1,2],"b":"c"}}'
expect_st 0 "POST json"
expect_eq "$(out '["json"]["headers"]["content-type"]')" "application/json" "json content type"
expect_eq "$(python3 -c 'import json,sys; print(json.loads(json.load(open(sys.argv[1]))["json"]["body"])["a"])' "$T/outputs.json")" "[1, 2]" "json body sent"
step http '{"url":"'$U'/echo","method":"PUT","form":{"name":"a b&c","n":1}}'
expect_eq "$(out '["json"]["method"]')" PUT "PUT"
expect_eq "$(out '["json"]["body"]')" "name=a%20b%26c&n=1" "form body urlencoded"
expect_eq "$(out '["json"]["headers"]["content-type"]')" "application/x-www-form-urlencoded" "form content type"
step http '{"url":"'$U'/echo","method":"PATCH","body":"plain text","headers":{"Content-Type":"text/x-mine"}}'
expect_eq "$(out '["json"]["body"]')" "plain text" "text body"
expect_eq "$(out '["json"]["headers"]["content-type"]')" "text/x-mine" "user content type wins"
step http '{"url":"'$U'/echo","method":"DELETE"}'
expect_eq "$(out '["json"]["method"]')" DELETE "DELETE"
step http '{"url":"'$U'/echo","method":"HEAD"}'
expect_st 0 "HEAD"
expect_eq "$(out '["body"]')" "" "HEAD has no body"
expect_not_in "$T/out" "is not JSON" "an empty JSON response is not reported as broken"

# Basic auth.
step http '{"url":"'$U'/echo","auth":{"basic":{"username":"ann","password":"s3cret:x"}}}'
expect_eq "$(out '["json"]["headers"]["authorization"]')" "Basic $(printf 'ann:s3cret:x' | base64)" "basic auth"

# Redirects: followed, counted, and the final URL reported.
step http '{"url":"'$U'/redirect/3"}'
expect_st 0 "3 redirects"
expect_eq "$(out '["url"]')" "$U/echo" "url after redirects"
step http '{"url":"'$U'/redirect/3","max_redirects":2}'
expect_st 3 "too many redirects is permanent"
expect_in "$T/out" "more than 2 redirects" "redirect limit named"
step http '{"url":"'$U'/redirect/1","follow_redirects":false}'
expect_st 0 "3xx accepted when not following"
expect_eq "$(out '["status"]')" 302 "302 reported"
expect_eq "$(out '["headers"]["location"]')" "/echo" "location header"
# POST turned into GET on 303; 307 keeps the method and body.
step http '{"url":"'$U'/redirect-to?code=303&url=/echo","method":"POST","body":"x"}'
expect_eq "$(out '["json"]["method"]')" GET "303 -> GET"
step http '{"url":"'$U'/redirect-to?code=307&url=/echo","method":"POST","body":"keep"}'
expect_eq "$(out '["json"]["method"]')" POST "307 keeps POST"
expect_eq "$(out '["json"]["body"]')" keep "307 keeps the body"
# Same server under another name: a new host must not get the credentials.
step http '{"url":"'$U'/redirect-to?url=http://localhost:'$P'/echo","auth":{"bearer":"secret-tok"},"headers":{"Cookie":"c=1"}}'
expect_st 0 "cross-host redirect"
expect_eq "$(out '["json"]["headers"].get("authorization","none")')" none "auth dropped on host change"
expect_eq "$(out '["json"]["headers"].get("cookie","none")')" none "cookie dropped on host change"

# Status ranges.
step http '{"url":"'$U'/status/404","expect_status":[200,"404"]}'
expect_st 0 "404 expected"
step http '{"url":"'$U'/status/201","expect_status":["2xx"]}'
expect_st 0 "2xx"
step http '{"url":"'$U'/status/204","expect_status":["200-203"]}'
expect_st 3 "204 outside 200-203"

# Bodies: chunked, Content-Length, gzip, binary, JSON detection.
step http '{"url":"'$U'/chunked?n=3000000"}'
expect_st 0 "chunked"
expect_eq "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["body"]))' "$T/outputs.json")" 3000000 "chunked body complete"
step http '{"url":"'$U'/large?n=5000000","max_response_bytes":6000000}'
expect_eq "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["body"]))' "$T/outputs.json")" 5000000 "5 MB body"
expect_in "$T/out" '"t":"progress".*received' "download progress reported"
step http '{"url":"'$U'/gzip"}'
expect_in "$T/outputs.json" '"body": "hello gzip hello gzip' "gzip decoded"
step http '{"url":"'$U'/binary"}'
expect_eq "$(out '["body_encoding"]')" base64 "binary body base64"
expect_eq "$(out '["body"]' | base64 -d | od -An -tu1 | tr -s ' \n' ' ' | awk '{print $1, $2, $256}')" "0 1 255" "binary bytes intact"
step http '{"url":"'$U'/nul"}'
expect_st 0 "text with a NUL"
expect_eq "$(out '["body_encoding"]')" base64 "NUL bodies travel as base64"
expect_eq "$(out '["body"]')" "$(printf 'a\0b' | base64)" "NUL body intact"
step http '{"url":"'$U'/json"}'
expect_eq "$(out '["json"]["name"]')" "café" "json parsed, unicode"
step http '{"url":"'$U'/badjson"}'
expect_st 0 "bad JSON body is still a response"
expect_eq "$(out '.get("json","absent")')" absent "no json output for broken JSON"

# Size limits: fail (known length and streamed), or truncate and say so. The default
# is 4 MiB.
step http '{"url":"'$U'/large?n=4194305"}'
expect_st 3 "one byte over the default limit"
step http '{"url":"'$U'/large?n=4194304"}'
expect_st 0 "exactly the default limit"
step http '{"url":"'$U'/large?n=100000","max_response_bytes":1000}'
expect_st 3 "oversize fails"
expect_in "$T/out" "max_response_bytes" "oversize named"
step http '{"url":"'$U'/stream?n=100000","max_response_bytes":1000}'
expect_st 3 "oversize without Content-Length fails"
step http '{"url":"'$U'/stream?n=100000","max_response_bytes":1000,"on_oversize":"truncate"}'
expect_st 0 "truncate"
expect_eq "$(out '["truncated"]')" true "truncated flagged"
expect_eq "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["body"]))' "$T/outputs.json")" 1000 "kept max bytes"

done_testing
