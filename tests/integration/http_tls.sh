#!/usr/bin/env bash
# http step type over TLS: a CA and a server certificate made here with openssl, the
# fake server speaking HTTPS with them. Verification is on by default: the test CA
# passes through ca_file, an unknown CA is refused (permanent), a name mismatch too,
# and verify_tls: false is the explicit way out. The llm step is checked over TLS too.
. "$(dirname "$0")/../lib.sh"
. "$WFH_SRC/tests/fakes/netlib.sh"
command -v openssl >/dev/null || { fail "openssl CLI missing (TEST_PKGS has it)"; # The llm step shares the TLS rules: verified by default, ca_file to trust a private CA.
start_fake L llmfake.py --log "$T/llm.log" --tls-cert "$T/srv.pem" --tls-key "$T/srv.key"
step llm '{"model":"ok","base_url":"https://127.0.0.1:'$L'/v1","prompt":"over tls","ca_file":"'$T'/ca.pem"}'
expect_st 0 "llm over HTTPS with the test CA"
expect_eq "$(out '["text"]')" "echo: over tls" "llm answer over HTTPS"
step llm '{"model":"ok","base_url":"https://127.0.0.1:'$L'/v1","prompt":"over tls"}'
expect_st 3 "llm refuses an unknown CA, permanently"

done_testing; }

cd "$T"
make_tls_certs "$T"
# A second CA that did not sign the server.
openssl req -x509 -newkey rsa:2048 -nodes -keyout other.key -out other.pem -days 2 \
    -subj "/CN=other CA" >/dev/null 2>&1 || fail "other CA"
# A certificate for a name the URL does not use.
openssl req -newkey rsa:2048 -nodes -keyout wrong.key -out wrong.csr -subj "/CN=elsewhere" \
    >/dev/null 2>&1
printf 'subjectAltName=DNS:elsewhere.test\n' >wrong.ext
openssl x509 -req -in wrong.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out wrong.pem \
    -days 2 -extfile wrong.ext >/dev/null 2>&1 || fail "wrong-name cert"
cd - >/dev/null

start_fake P httpfake.py --log "$T/https.log" --tls-cert "$T/srv.pem" --tls-key "$T/srv.key"
start_fake W httpfake.py --tls-cert "$T/wrong.pem" --tls-key "$T/wrong.key"

step http '{"url":"https://127.0.0.1:'$P'/echo","ca_file":"'$T'/ca.pem"}'
expect_st 0 "HTTPS with the test CA"
expect_eq "$(out '["json"]["path"]')" /echo "HTTPS body"
step http '{"url":"https://localhost:'$P'/chunked?n=200000","ca_file":"'$T'/ca.pem"}'
expect_st 0 "HTTPS by name, chunked"
step http '{"url":"https://127.0.0.1:'$P'/redirect/2","ca_file":"'$T'/ca.pem"}'
expect_eq "$(out '["url"]')" "https://127.0.0.1:$P/echo" "HTTPS redirects"

STEP_WS=$T step http '{"url":"https://127.0.0.1:'$P'/echo","ca_file":"ca.pem"}'
expect_st 0 "relative ca_file is found in the run's workspace"
step llm '{"model":"x","base_url":"https://127.0.0.1:'$P'/v1","prompt":"p","ca_file":""}'
expect_st 5 "empty ca_file is invalid"
step http '{"url":"https://127.0.0.1:'$P'/echo","ca_file":"'$T'/other.pem"}'
expect_st 3 "unknown CA refused, permanently"
expect_in "$T/out" "certificate|SSL|CA" "error says why"
step http '{"url":"https://127.0.0.1:'$P'/echo"}'
expect_st 3 "system CAs do not know the test CA"
step http '{"url":"https://127.0.0.1:'$W'/echo","ca_file":"'$T'/ca.pem"}'
expect_st 3 "name mismatch refused"
step http '{"url":"https://127.0.0.1:'$W'/echo","verify_tls":false}'
expect_st 0 "verify_tls: false"
step http '{"url":"https://127.0.0.1:'$P'/echo","ca_file":"'$T'/missing.pem"}'
expect_st 3 "missing CA file"

# The llm step shares the TLS rules: verified by default, ca_file to trust a private CA.
start_fake L llmfake.py --log "$T/llm.log" --tls-cert "$T/srv.pem" --tls-key "$T/srv.key"
step llm '{"model":"ok","base_url":"https://127.0.0.1:'$L'/v1","prompt":"over tls","ca_file":"'$T'/ca.pem"}'
expect_st 0 "llm over HTTPS with the test CA"
expect_eq "$(out '["text"]')" "echo: over tls" "llm answer over HTTPS"
step llm '{"model":"ok","base_url":"https://127.0.0.1:'$L'/v1","prompt":"over tls"}'
expect_st 3 "llm refuses an unknown CA, permanently"

done_testing
