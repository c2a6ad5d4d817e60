#!/usr/bin/env bash
# Bad input never crashes: every input of the http and llm step types is given values
# of every JSON type (and some hostile strings) through the step runner. Each attempt
# must end with a result line (no crash; under ASan no leak or UB, since a sanitizer
# report makes the runner exit non-zero), invalid ones as invalid input with a message
# naming the plugin. Targets are a closed loopback port, so nothing that passes the
# checks reaches anything.
. "$(dirname "$0")/../lib.sh"
. "$WFH_SRC/tests/fakes/netlib.sh"

python3 - "$RUNNER" "$WFH_BUILT_PLUGINS" >"$T/report" 2>&1 <<'PY'
import json, socket, subprocess, sys
runner, plugdir = sys.argv[1], sys.argv[2]
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
base = {
    "http": {"url": "http://127.0.0.1:%d/x" % port, "timeout_ms": 2000},
    "llm": {"model": "m", "base_url": "http://127.0.0.1:%d/v1" % port, "prompt": "p",
            "timeout_ms": 2000},
}
keys = {
    "http": ["method", "url", "query", "headers", "body", "json", "form", "auth",
             "connect_timeout_ms", "timeout_ms", "follow_redirects", "max_redirects",
             "verify_tls", "ca_file", "max_response_bytes", "on_oversize", "expect_status",
             "idempotency_key", "allow"],
    "llm": ["provider", "model", "base_url", "api_key", "system", "prompt", "messages",
            "temperature", "max_tokens", "stop", "response_format", "schema", "tools",
            "fallback", "token_budget", "stream", "timeout_ms", "connect_timeout_ms",
            "max_response_bytes", "ca_file", "allow"],
}
values = [None, True, False, 0, -1, 2**62, 1.5, "", "x", "\u00e9\u4e2d", "a" * 100000,
          "line\r\nX-Injected: 1", [], [1], [None], [{}], {}, {"a": 1}, {"a": None},
          {"role": "user"}, [{"name": "a b"}], {"$ref": "#/x"}]
bad = 0
total = 0
seen = {}
for plugin, ks in keys.items():
    for k in ks:
        for v in values:
            inputs = dict(base[plugin])
            inputs[k] = v
            req = {"plugin": "%s/%s.so" % (plugdir, plugin), "type": plugin, "inputs": inputs,
                   "env": {}, "run_id": "r", "step_id": "s", "attempt": 1,
                   "idempotency_key": "k", "workspace": "/tmp"}
            p = subprocess.run([runner], input=json.dumps(req).encode(), capture_output=True,
                               timeout=60)
            total += 1
            res = [json.loads(l) for l in p.stdout.decode().splitlines()
                   if l.startswith('{"t":"result"')]
            what = "%s %s=%s" % (plugin, k, json.dumps(v)[:60])
            if p.returncode != 0 or len(res) != 1:
                print("FAIL: %s: runner exit %d, %d result lines; stderr: %s"
                      % (what, p.returncode, len(res), p.stderr.decode()[-1500:]))
                bad += 1
                continue
            st = res[0]["status"]
            seen[st] = seen.get(st, 0) + 1
            if st == 5 and not (res[0].get("error") or "").startswith(plugin + ": "):
                print("FAIL: %s: invalid input without '%s: ' message: %r"
                      % (what, plugin, res[0].get("error")))
                bad += 1
            if st not in (0, 1, 2, 3, 4, 5):
                print("FAIL: %s: status %d" % (what, st))
                bad += 1
print("attempts %d, statuses %s" % (total, json.dumps(seen, sort_keys=True)))
if seen.get(5, 0) < total // 2:
    print("FAIL: fewer than half of the attempts were refused as invalid input")
    bad += 1
sys.exit(1 if bad else 0)
PY
rc=$?
cat "$T/report" | tail -n 30
[ "$rc" = 0 ] || fail "some attempts crashed or misreported (above)"
done_testing
