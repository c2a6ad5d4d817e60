#!/usr/bin/env bash
# http step type against unmodified servers from the distribution: Python's own
# `python3 -m http.server` serving a directory (large files arrive byte for byte, HEAD
# reports the length, directory redirects (301 to the slash form) are followed, a
# missing file is a permanent 404), and OpenSSL's `openssl s_server -WWW` for TLS with a
# private CA (trusted only through ca_file, verification on by default).
. "$(dirname "$0")/../lib.sh"
. "$WFH_SRC/tests/fakes/netlib.sh"

mkdir -p "$T/www/dir"
head -c 3000000 /dev/urandom | base64 -w 100 >"$T/www/big.txt"
echo "inside" >"$T/www/dir/index.html"
# http.server cannot report the port it picked, so take a free one and retry on a race.
for _ in 1 2 3 4 5; do
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    python3 -m http.server --bind 127.0.0.1 --directory "$T/www" "$port" >"$T/stock.log" 2>&1 &
    spid=$!
    for _ in $(seq 1 50); do
        python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1",int(sys.argv[1])),0.2)' "$port" 2>/dev/null && break
        sleep 0.1
    done
    kill -0 "$spid" 2>/dev/null && break
done
fake_pids="$fake_pids $spid"
U="http://127.0.0.1:$port"

step http '{"url":"'$U'/big.txt"}'
expect_st 0 "big file"
got=$(python3 -c 'import json,sys,hashlib; print(hashlib.sha256(json.load(open(sys.argv[1]))["body"].encode()).hexdigest())' "$T/outputs.json")
expect_eq "$got" "$(sha256sum <"$T/www/big.txt" | cut -d' ' -f1)" "big file byte for byte"
step http '{"url":"'$U'/big.txt","method":"HEAD"}'
expect_st 0 "HEAD"
expect_eq "$(out '["headers"]["content-length"]')" "$(stat -c %s "$T/www/big.txt")" "HEAD content-length"
step http '{"url":"'$U'/dir"}'
expect_st 0 "directory redirect followed"
expect_eq "$(out '["url"]')" "$U/dir/" "301 to the slash form"
expect_eq "$(out '["body"]')" '"inside\n"' "index served (newline kept)"
step http '{"url":"'$U'/missing.txt"}'
expect_st 3 "404 from a stock server is permanent"
step http '{"url":"'$U'/big.txt","max_response_bytes":100000,"on_oversize":"truncate"}'
expect_eq "$(out '["truncated"]')" true "truncation against a real server"

# TLS from OpenSSL's own server: a CA and a server certificate for 127.0.0.1 made here.
make_tls_certs "$T"
cd "$T/www" || exit 1
openssl s_server -accept 127.0.0.1:0 -cert "$T/srv.pem" -key "$T/srv.key" -WWW \
    >"$T/s_server.log" 2>&1 &
fake_pids="$fake_pids $!"
cd "$T" || exit 1
for _ in $(seq 1 100); do
    grep -q '^ACCEPT' "$T/s_server.log" && break
    sleep 0.05
done
tport=$(sed -n 's/^ACCEPT .*:\([0-9]*\)$/\1/p' "$T/s_server.log")
[ -n "$tport" ] || { fail "openssl s_server did not start"; cat "$T/s_server.log" >&2; }
S="https://127.0.0.1:$tport"
step http '{"url":"'$S'/big.txt","ca_file":"'$T'/ca.pem"}'
expect_st 0 "big file over TLS, private CA trusted through ca_file"
got=$(python3 -c 'import json,sys,hashlib; print(hashlib.sha256(json.load(open(sys.argv[1]))["body"].encode()).hexdigest())' "$T/outputs.json")
expect_eq "$got" "$(sha256sum <"$T/www/big.txt" | cut -d' ' -f1)" "big file over TLS byte for byte"
step http '{"url":"'$S'/big.txt"}'
expect_st 3 "the private CA is not trusted by default: permanent"
expect_in "$T/out" "http: GET $S/big.txt: .*(certificate|SSL)" "the TLS failure is named"
STEP_WS="$T" step http '{"url":"'$S'/dir/index.html","ca_file":"ca.pem"}'
expect_st 0 "a relative ca_file is found in the workspace"
expect_eq "$(out '["body"]')" '"inside\n"' "file served over TLS"

done_testing
