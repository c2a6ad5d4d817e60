#!/usr/bin/env bash
# lang_secrets: secrets from WFH_SECRET_<NAME> and --secrets-file (0600 or refused), too
# short values refused, a declared secret without a value refused before anything runs;
# and masking: a step prints, outputs and fails with the secret in every encoding the
# issue names (raw, base64 at every alignment, JSON-escaped, URL-encoded), and every
# byte wfhost printed (stdout, stderr) or stored (the run store under --home) is searched
# for each of them.
. "$(dirname "$0")/../lib.sh"

SECRET='s3cr3t/Välue+with spaces&"quote"'
cat >"$T/s.yaml" <<'Y'
name: secrets
secrets: [API_TOKEN]
steps:
  - id: leak
    uses: shell
    env:
      TOKEN: ${{ secrets.API_TOKEN }}
    with:
      run: |
        echo "raw: $TOKEN"
        printf 'b64: %s\n' "$(printf '%s' "$TOKEN" | base64 -w0)"
        printf 'b64+1: %s\n' "$(printf 'x%s' "$TOKEN" | base64 -w0)"
        printf 'b64+2: %s\n' "$(printf 'xy%s' "$TOKEN" | base64 -w0)"
        printf 'json: %s\n' "$(python3 -c 'import json,os; print(json.dumps(os.environ["TOKEN"]))')"
        printf 'url: %s\n' "$(python3 -c 'import urllib.parse,os; print(urllib.parse.quote(os.environ["TOKEN"], safe=""))')"
        echo "token=$TOKEN" >> "$WFH_OUTPUT"
        echo "failing with $TOKEN" >&2
        exit 1
  - id: via_with
    uses: shell
    with:
      run: "echo 'in with: ${{ secrets.API_TOKEN }}'"
Y
export WFH_SECRET_API_TOKEN="$SECRET"
run "$WFH" exec --json --home "$T/home" "$T/s.yaml"
expect_rc 1 "the leaking step fails"
cp "$T/out" "$T/out1"; cp "$T/err" "$T/err1"
expect_in "$T/err1" 'leak \| raw: \*\*\*' "the raw value is masked in logs"
expect_in "$T/err1" 'via_with \| in with: \*\*\*' "a secret in with works and is masked"
expect_eq "$(json "$T/out1" '["steps"]["leak"]["outputs"]["token"]')" '***' "outputs masked"
expect_in "$T/err1" 'leak \| b64: \*\*\*' "base64 masked"
expect_in "$T/err1" 'leak \| json: "\*\*\*"' "JSON-escaped masked"
expect_in "$T/err1" 'leak \| url: \*\*\*' "URL-encoded masked"
python3 - "$SECRET" "$T/out1" "$T/err1" "$T/home" <<'PY' || fail "a secret form leaked"
import base64, json, os, sys, urllib.parse
secret = sys.argv[1]
raw = secret.encode()
forms = {"raw": raw,
         "json": json.dumps(secret)[1:-1].encode(),
         "json-ascii": json.dumps(secret, ensure_ascii=True)[1:-1].encode(),
         "url": urllib.parse.quote(secret, safe="").encode(),
         "form": urllib.parse.quote_plus(secret).encode()}
for k in range(3):
    enc = base64.b64encode(b"\0" * k + raw)
    first = (8 * k + 5) // 6
    last = (8 * (k + len(raw))) // 6
    forms[f"base64+{k}"] = enc[first:last]
files = [sys.argv[2], sys.argv[3]]
for root, _, names in os.walk(sys.argv[4]):
    files += [os.path.join(root, n) for n in names]
leaks = []
for f in files:
    data = open(f, "rb").read()
    for name, form in forms.items():
        if form in data:
            leaks.append(f"{name} in {f}")
stored = sum(os.path.getsize(f) for f in files[2:])
print("\n".join(leaks), file=sys.stderr)
print(f"searched {len(files)} files ({stored} bytes stored)", file=sys.stderr)
sys.exit(1 if leaks else 0)
PY
[ -d "$T/home" ] || fail "no run store was written under --home (nothing stored was searched)"

# --secrets-file: group/other-readable refused; 0600 accepted and wins over the env.
unset WFH_SECRET_API_TOKEN
printf 'API_TOKEN=from-the-file\nOTHER=ignored-here\n' >"$T/secrets.env"
chmod 0644 "$T/secrets.env"
run "$WFH" exec --no-store "$T/s.yaml" --secrets-file "$T/secrets.env"
expect_rc 3 "a readable secrets file is refused"
expect_in "$T/err" "mode 0644 lets others read it" "the refusal says why"
chmod 0600 "$T/secrets.env"
run "$WFH" exec --no-store "$T/s.yaml" --secrets-file "$T/secrets.env"
expect_rc 1 "0600 accepted (the step itself fails)"
expect_in "$T/err" 'via_with \| in with: \*\*\*' "the file's value used and masked"
expect_not_in "$T/err" 'from-the-file' "the file's value never printed"

rm -f "$T/ran"
run "$WFH" exec --no-store "$T/s.yaml"
expect_rc 2 "a declared secret without a value"
expect_in "$T/err" "secret API_TOKEN has no value" "names it"
WFH_SECRET_API_TOKEN=abc run "$WFH" exec --no-store "$T/s.yaml"
expect_rc 2 "a 3-character secret"
expect_in "$T/err" "shorter than 4 characters" "too short refused"
expect_not_in "$T/err" "abc" "the short value is not echoed"
done_testing
