#!/usr/bin/env bash
# http step type failure classes: 408/425/429/5xx transient with Retry-After as the hint,
# other 4xx permanent, connection errors transient, timeouts, cancellation, and invalid
# input refused before any request (the fake's request log must not grow).
. "$(dirname "$0")/../lib.sh"
. "$WFH_SRC/tests/fakes/netlib.sh"

start_fake P httpfake.py --log "$T/http.log"
U="http://127.0.0.1:$P"

for code in 408 425 429 500 502 503 504; do
    step http '{"url":"'$U'/status/'$code'"}'
    expect_st 2 "$code is transient"
    expect_eq "$(out '["status"]')" "$code" "$code status output kept"
done
step http '{"url":"'$U'/status/503?retry_after=7"}'
expect_st 2 "503 + Retry-After"
expect_eq "$retry" 7000 "Retry-After seconds become the retry hint"
step http '{"url":"'$U'/status/429?retry_after=Wed,%2021%20Oct%202099%2007:28:00%20GMT"}'
expect_st 2 "429 + HTTP-date"
[ "$retry" -gt 0 ] || fail "HTTP-date Retry-After gave no hint"
step http '{"url":"'$U'/status/429"}'
expect_eq "$retry" 0 "no Retry-After, no hint"
for code in 400 401 403 404 409 410 422; do
    step http '{"url":"'$U'/status/'$code'?body=nope%20'$code'"}'
    expect_st 3 "$code is permanent"
done
expect_in "$T/out" "status 422: nope 422" "error names the status and the body's first line"

# Connection errors: a port nobody listens on, a server that hangs up.
free_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
step http '{"url":"http://127.0.0.1:'$free_port'/x"}'
expect_st 2 "connection refused is transient"
expect_in "$T/out" "127.0.0.1:$free_port" "error names the URL"
step http '{"url":"'$U'/drop"}'
expect_st 2 "hang-up is transient"

# A server that resets the connection while a 5 MB body is still going up: transient,
# and the runner survives (no SIGPIPE).
start_fake R resetfake.py
big=$(head -c 5000000 /dev/zero | tr '\0' x)
step http '{"url":"http://127.0.0.1:'$R'/upload","method":"POST","body":"'"$big"'"}'
unset big
expect_st 2 "reset during upload is transient"

# Timeouts: the whole exchange, and the connection alone (a full accept queue).
step http '{"url":"'$U'/slow?ms=3000","timeout_ms":300}'
expect_st 4 "total timeout"
start_fake B fullbacklog.py
t0=$(date +%s%N)
step http '{"url":"http://127.0.0.1:'$B'/x","connect_timeout_ms":300,"timeout_ms":20000}'
t1=$(date +%s%N)
expect_st 4 "connect timeout"
[ $(( (t1 - t0) / 1000000 )) -lt 5000 ] || fail "connect_timeout_ms not applied: $(( (t1 - t0) / 1000000 )) ms"

# Cancellation: SIGINT to the runner is the cooperative stop the plugin polls.
python3 - "$WFH_BUILT_PLUGINS/http.so" "$U/slow?ms=5000" >"$T/req-cancel.json" <<'PY'
import json, sys
print(json.dumps({"plugin": sys.argv[1], "type": "http", "inputs": {"url": sys.argv[2]},
                  "env": {}, "run_id": "r", "step_id": "s", "attempt": 1,
                  "idempotency_key": "k", "workspace": "/tmp"}))
PY
"$RUNNER" <"$T/req-cancel.json" >"$T/cancel.out" 2>"$T/cancel.err" &
rpid=$!
sleep 0.5
t0=$(date +%s%N)
kill -INT "$rpid"
wait "$rpid"
t1=$(date +%s%N)
expect_in "$T/cancel.out" '"status":6' "SIGINT cancels the request"
[ $(( (t1 - t0) / 1000000 )) -lt 2500 ] || fail "cancel took $(( (t1 - t0) / 1000000 )) ms"

# Credentials in the URL are used but never repeated in outputs or messages.
step http '{"url":"http://ann:pw-secret@127.0.0.1:'$P'/echo"}'
expect_eq "$(out '["json"]["headers"]["authorization"]')" "Basic $(printf 'ann:pw-secret' | base64)" "userinfo sent as basic auth"
expect_not_in "$T/out" "pw-secret" "password not in the outputs"
step http '{"url":"http://ann:pw-secret@127.0.0.1:'$P'/status/500"}'
expect_st 2 "500 with userinfo"
expect_not_in "$T/out" "pw-secret" "password not in the error"
expect_in "$T/out" "GET http://127.0.0.1:$P/status/500" "redacted URL in the error"
step http '{"url":"ftp://ann:pw-secret@127.0.0.1/"}'
expect_not_in "$T/out" "pw-secret" "password not in the invalid-input error"

# Invalid input: refused before any request reaches the server.
before=$(lines "$T/http.log")
for bad in '{"url":"ftp://127.0.0.1:'$P'/"}' \
           '{"url":"not a url"}' \
           '{"url":"'$U'/echo","method":"BREW"}' \
           '{"url":"'$U'/echo","body":"x"}' \
           '{"url":"'$U'/echo","method":"POST","body":"x","json":{}}' \
           '{"url":"'$U'/echo","headers":{"X-A":"one\r\nX-Injected: 1"}}' \
           '{"url":"'$U'/echo","timeout_ms":"soon"}' \
           '{"url":"'$U'/echo","expect_status":["abc"]}' \
           '{"url":"'$U'/echo","auth":{"bearer":"a","basic":{"username":"u","password":"p"}}}' \
           '{"url":"'$U'/echo","idempotency_key":"yes"}' \
           '{"url":"'$U'/echo","surprise":1}' \
           '{"url":"'$U'/echo","allow":["example.com:443"]}' \
           '{"method":"GET"}'; do
    step http "$bad"
    expect_st 5 "invalid input $bad"
    expect_in "$T/out" '"error":"http: ' "error names the plugin for $bad"
done
expect_eq "$(lines "$T/http.log")" "$before" "no request was sent for invalid input"

# The allow list: matching host:port passes, wildcard and bare host forms, redirects
# to a host outside the list are refused.
step http '{"url":"'$U'/echo","allow":["127.0.0.1:'$P'"]}'
expect_st 0 "allowed host:port"
step http '{"url":"'$U'/echo","allow":["127.0.0.1"]}'
expect_st 0 "allowed host, any port"
step http '{"url":"http://localhost:'$P'/echo","allow":["*.example.com","LOCALHOST:'$P'"]}'
expect_st 0 "case-insensitive host match"
before=$(lines "$T/http.log")
step http '{"url":"'$U'/redirect-to?url=http://localhost:'$P'/echo","allow":["127.0.0.1:'$P'"]}'
expect_st 3 "redirect outside the allow list"
expect_in "$T/out" "redirect from .* refused: localhost:$P is not in the step's allow list" "redirect refusal named"
expect_eq "$(lines "$T/http.log")" "$((before + 1))" "the refused hop was not requested"

# The sandbox grant (ABI 1.1 grant_json, the runner passes the request's sandbox
# member): the plugin refuses a target the grant does not list before connecting,
# naming the target, the grant and the policy line that would allow it; redirects are
# checked hop by hop. Profile none: the runner itself confines nothing here, so only
# the plugin's own check stands between the step and the target.
G='{"profile":"none","net":["127.0.0.1:'$P'"]}'
before=$(lines "$T/http.log")
STEP_SANDBOX='{"profile":"none","net":["10.0.0.5:443","example.org"]}' step http '{"url":"'$U'/echo"}'
expect_st 5 "target outside the grant"
expect_eq "$err" "http: 127.0.0.1:$P is not in this step's network grant (10.0.0.5:443, example.org); add 'allow http --allow-net=127.0.0.1:$P' to the policy or pass --allow-net=127.0.0.1:$P" "grant refusal names target, grant and fix"
STEP_SANDBOX='{"profile":"none","net":false}' step http '{"url":"'$U'/echo"}'
expect_st 5 "no network granted"
expect_in "$T/out" "is not in this step's network grant \\(none\\)" "empty grant named"
STEP_SANDBOX='{"profile":"none","net":[]}' step http '{"url":"'$U'/echo"}'
expect_st 5 "an empty grant list"
expect_eq "$(lines "$T/http.log")" "$before" "nothing sent outside the grant"
STEP_SANDBOX="$G" step http '{"url":"'$U'/echo"}'
expect_st 0 "host:port in the grant"
STEP_SANDBOX='{"profile":"none","net":["127.0.0.1"]}' step http '{"url":"'$U'/echo"}'
expect_st 0 "a bare host grants every port (as the policy reads it)"
STEP_SANDBOX='{"profile":"none","net":["*"]}' step http '{"url":"'$U'/echo"}'
expect_st 0 "* grants everything"
STEP_SANDBOX='{"profile":"none","net":true}' step http '{"url":"'$U'/echo"}'
expect_st 0 "net: true grants everything"
STEP_SANDBOX='{"profile":"none","net":["localhost:'$P'"]}' step http '{"url":"'$U'/echo"}'
expect_st 5 "a name is not its address: 127.0.0.1 is not granted by localhost"
before=$(lines "$T/http.log")
STEP_SANDBOX="$G" step http '{"url":"'$U'/redirect-to?url=http://localhost:'$P'/echo"}'
expect_st 3 "redirect to a target outside the grant: permanent"
expect_in "$T/out" "redirect from $U/redirect-to.* refused: localhost:$P is not in this step's network grant \\(127.0.0.1:$P\\)" "redirect refusal names hop and grant"
expect_eq "$(lines "$T/http.log")" "$((before + 1))" "the refused hop was not requested"
STEP_SANDBOX="$G" step http '{"url":"'$U'/redirect/2"}'
expect_st 0 "redirects inside the grant are followed"
STEP_SANDBOX="$G" step http '{"url":"'$U'/echo","allow":["127.0.0.1:1"]}'
expect_st 5 "the step's allow list narrows the grant further"

done_testing
