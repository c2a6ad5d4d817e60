# Real step types under profile strict: the http plugin (libcurl, its resolver thread,
# CA files) works with exactly the port it was granted, and is refused any other.
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
http_attempt "\"profile\":\"strict\",\"net\":[\"127.0.0.1:1\"]"
expect_status 2 "http with another port granted"
expect_error "Couldn't connect to server" "http with another port granted"
http_attempt '"profile":"strict"'
expect_error "Couldn't connect to server" "http with no network"
done_testing
