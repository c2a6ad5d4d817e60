# Real step types under profile strict: the http plugin (libcurl, its resolver thread,
# CA files) works with exactly the port it was granted, and is refused any other, by
# `wfhost exec` before the run (no grant) or by the plugin from its grant.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/hostile/sandbox_lib.sh"
HTTP=$WFH_BUILT_PLUGINS/http.so
[ -f "$HTTP" ] || { echo "sandbox_plugins: no http plugin, nothing to test"; done_testing; }
python3 - "$T" <<'PY' &
import http.server, os, socketserver, sys, threading
d = sys.argv[1]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"hello from the host")
    def log_message(self, *a): pass
s = socketserver.TCPServer(("127.0.0.1", 0), H)
open(os.path.join(d, "port"), "w").write(str(s.server_address[1]))
threading.Timer(120, s.shutdown).start()
s.serve_forever()
PY
srv=$!
trap 'kill $srv 2>/dev/null; rm -rf "$T"' EXIT
for _ in $(seq 200); do [ -s "$T/port" ] && break; sleep 0.05; done
PORT=$(cat "$T/port")

http_attempt() { # http_attempt SANDBOX_MEMBERS
  printf '{"plugin":"%s","type":"http","inputs":{"url":"http://127.0.0.1:%s/"},"workspace":"%s","sandbox":{%s}}' \
    "$HTTP" "$PORT" "$WS" "$1" | timeout 60 "$RUNNER" >"$T/out" 2>"$T/err"
  grep '"t":"result"' "$T/out" >"$T/result"
}
http_attempt "\"profile\":\"strict\",\"net\":[\"127.0.0.1:$PORT\"]"
expect_status 0 "http with its port granted"
expect_in "$T/out" 'hello from the host' "the body came through"
# Another target: the plugin reads its grant (grant_json, ABI 1.1) and refuses before
# connecting, naming the line to add (the kernel's own refusal of an ungranted port is
# sandbox_net.sh's hostile connect).
http_attempt "\"profile\":\"strict\",\"net\":[\"127.0.0.1:1\"]"
expect_error "127.0.0.1:$PORT is not in this step's network grant \\(127.0.0.1:1\\); add 'allow http --allow-net=127.0.0.1:$PORT'" \
  "http with another port granted"
http_attempt '"profile":"strict"'
expect_error "is not in this step's network grant \\(none\\)" "http with no network"

# End to end through `wfhost exec`, strict by default: http declares "network": true
# (its url chooses the target), so a run without a network grant is refused before it
# starts, with the line to add; a HOST:PORT grant satisfies it, reaches the step, and
# the step is held to that port by the kernel (no network namespace of its own).
cat >"$T/get.yaml" <<Y
name: get
steps:
  - id: fetch
    uses: http
    with: {url: 'http://127.0.0.1:$PORT/'}
Y
run "$WFH" exec --json "$T/get.yaml"
expect_rc 3 "http with no network grant"
expect_in "$T/err" "step 'fetch' \\(http\\): its inputs reach 127.0.0.1:$PORT, which is not granted" \
  "the refusal names the step and its literal target"
expect_in "$T/err" "allow http --allow-net=127.0.0.1:$PORT$" "and ends with the line to add"
run "$WFH" exec --json --allow-net=127.0.0.1:$PORT "$T/get.yaml"
expect_rc 0 "http with its port granted on the command line"
expect_eq "$(json "$T/out" '["steps"]["fetch"]["outputs"]["body"]')" "hello from the host" \
  "the body came through"
expect_eq "$(json "$T/out" '["steps"]["fetch"]["attempt_history"][0]["sandbox"]["profile"]')" strict \
  "confined under strict"
expect_eq "$(json "$T/out" '["steps"]["fetch"]["attempt_history"][0]["sandbox"]["netns"]')" false \
  "no network namespace: Landlock holds it to the granted port"
printf 'allow http --allow-net=127.0.0.1:1\n' >"$T/other.policy"
run "$WFH" exec --json --policy "$T/other.policy" "$T/get.yaml"
expect_rc 3 "a literal target outside the grant is refused before the run"
# A computed target outside the grant: the run starts, the plugin refuses it from its
# grant, and the step reaches nothing.
cat >"$T/dyn.yaml" <<Y
name: dyn
steps:
  - id: fetch
    uses: http
    with: {url: "\${{ format('http://127.0.0.1:{0}/', $PORT) }}"}
Y
run "$WFH" exec --json --policy "$T/other.policy" "$T/dyn.yaml"
expect_rc 1 "http granted another port"
expect_eq "$(json "$T/out" '["steps"]["fetch"]["status"]')" failed "the step fails"
expect_not_in "$T/out" 'hello from the host' "and reached nothing"
expect_in "$T/err" "is not in this step's network grant \\(127.0.0.1:1\\)" "the plugin says why"
done_testing
