# tests/fakes/netlib.sh - helpers for the http_*.sh and llm_*.sh script tests. Source
# it after tests/lib.sh:  . "$WFH_SRC/tests/fakes/netlib.sh"
# Gives:
#   start_fake VAR SCRIPT ARGS...  starts tests/fakes/SCRIPT on a kernel-chosen loopback
#                                  port, stores the port in $VAR; stopped at exit
#   step PLUGIN INPUTS_JSON        runs one attempt through build/bin/wfhost-runner
#                                  (STEP_RUN, STEP_ATTEMPT, STEP_WS, STEP_ENV override the
#                                  run id, attempt number, workspace and env object;
#                                  STEP_SANDBOX adds the request's sandbox member, which
#                                  the runner hands the plugin as its grant);
#                                  sets $st (status), $err (error), $retry (ms) and
#                                  writes outputs to $T/outputs.json, lines to $T/out
#   out PATH                       an output, e.g. out '["status"]'
#   expect_st N "what"             asserts the status class
#   lines FILE                     number of lines in FILE (0 if missing)
#   idem_keys LOG N PATH           of the requests logged by httpfake after line N of
#                                  LOG whose path contains PATH: "count distinct set|none"
#                                  for their Idempotency-Key headers
#   make_tls_certs DIR             a CA (ca.pem) and a server certificate for localhost
#                                  and 127.0.0.1 it signed (srv.pem, srv.key) in DIR
# Proxies are unset: no test may leave the machine.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY
RUNNER=${WFH_BUILD:?}/bin/wfhost-runner
FAKES=${WFH_SRC:?}/tests/fakes
fake_pids=""
trap 'for p in $fake_pids; do kill "$p" 2>/dev/null; done; rm -rf "$T"' EXIT

start_fake() {
    local var=$1 script=$2
    shift 2
    local pf="$T/$var.port"
    python3 "$FAKES/$script" --port-file "$pf" "$@" 2>"$T/$var.stderr" &
    fake_pids="$fake_pids $!"
    for _ in $(seq 1 100); do
        [ -s "$pf" ] && break
        sleep 0.05
    done
    [ -s "$pf" ] || { echo "FAIL [$TEST_NAME]: $script did not start" >&2; cat "$T/$var.stderr" >&2; exit 1; }
    printf -v "$var" '%s' "$(cat "$pf")"
}

step() {
    local plugin=$1 inputs=$2
    # One request line, built without starting Python (the tests run hundreds).
    printf '{"plugin":"%s","type":"%s","inputs":%s,"env":%s,"run_id":"%s","step_id":"s1","attempt":%s,"idempotency_key":"idem-%s-s1","workspace":"%s"%s}\n' \
        "$WFH_BUILT_PLUGINS/$plugin.so" "$plugin" "$inputs" "${STEP_ENV:-{\}}" "${STEP_RUN:-run-1}" "${STEP_ATTEMPT:-1}" \
        "${STEP_RUN:-run-1}" "${STEP_WS:-/tmp}" "${STEP_SANDBOX:+,\"sandbox\":$STEP_SANDBOX}" >"$T/request.json"
    "$RUNNER" <"$T/request.json" >"$T/out" 2>"$T/err"
    local runner_rc=$?
    python3 - "$T/out" "$T/outputs.json" >"$T/result.sh" <<'PY'
import json, shlex, sys
outs, res = {}, None
for line in open(sys.argv[1]):
    m = json.loads(line)
    if m["t"] == "output":
        outs[m["name"]] = m["value"]
    elif m["t"] == "result":
        res = m
json.dump(outs, open(sys.argv[2], "w"))
# A flat "path<TAB>value" index so that `out` can answer without starting Python.
def flat(prefix, v, f):
    if isinstance(v, str):
        f.write("%s\t%s\n" % (prefix, v if "\n" not in v and "\t" not in v else json.dumps(v)))
        return
    f.write("%s\t%s\n" % (prefix, json.dumps(v)))
    if isinstance(v, dict):
        for k, x in v.items():
            flat('%s["%s"]' % (prefix, k), x, f)
    elif isinstance(v, list):
        for i, x in enumerate(v):
            flat("%s[%d]" % (prefix, i), x, f)
with open(sys.argv[2] + ".flat", "w") as f:
    for k, v in outs.items():
        flat('["%s"]' % k, v, f)
if res is None:
    print("st=none; err=''; retry=0")
else:
    print("st=%d; err=%s; retry=%d" % (res["status"], shlex.quote(res.get("error") or ""),
                                       res.get("retry_after_ms") or 0))
PY
    . "$T/result.sh"
    if [ "$runner_rc" != 0 ]; then
        # A sanitizer report (leak, UB) makes the runner exit non-zero: that is a failure.
        fail "runner exited $runner_rc for $plugin $inputs"
        head -c 3000 "$T/err" >&2
    fi
}

out() {
    case $1 in
    *.get*) python3 -c "import json,sys; v=json.load(open(sys.argv[1]))$1; print(v if isinstance(v,str) else json.dumps(v))" "$T/outputs.json" ;;
    *) awk -F'\t' -v k="$1" '$1 == k { sub(/^[^\t]*\t/, ""); print; exit }' "$T/outputs.json.flat" ;;
    esac
}

expect_st() {
    if [ "$st" != "$1" ]; then
        fail "$2: status $st, expected $1 (error: $err)"
    fi
}

lines() { if [ -f "$1" ]; then wc -l <"$1" | tr -d ' '; else echo 0; fi; }

idem_keys() {
    tail -n +"$(($2 + 1))" "$1" | python3 -c '
import json, sys
ks = [json.loads(l)["headers"].get("idempotency-key") for l in sys.stdin if sys.argv[1] in json.loads(l)["path"]]
print(len(ks), len(set(ks)), "none" if None in ks else "set")' "$3"
}

make_tls_certs() {
    (cd "$1" &&
        openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 \
            -subj "/CN=wfhost test CA" >/dev/null 2>&1 &&
        openssl req -newkey rsa:2048 -nodes -keyout srv.key -out srv.csr -subj "/CN=localhost" \
            >/dev/null 2>&1 &&
        printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >san.ext &&
        openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem \
            -days 2 -extfile san.ext >/dev/null 2>&1) || fail "make_tls_certs $1"
}
