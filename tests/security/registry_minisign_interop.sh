# Interop with the real `minisign` binary, both ways: what wfhost signs, stock minisign
# verifies (-V, and -H which refuses legacy signatures); what stock minisign signs
# (with a minisign-made key), wfhost verifies. Keys interoperate too: a wfhost-made
# secret key signs with minisign, and a `minisign -G -W` key signs with wfhost.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/fixtures/registry_env.sh"
command -v minisign >/dev/null || { echo "minisign not installed (Debian package minisign)" >&2; exit 1; }

reg_init
reg_install "$FIX/marker.so"

# wfhost -> minisign.
sig=$(ls "$REG"/index.json.*.minisig)
run minisign -V -H -p "$WFH_HOME/keys/wfhost.pub" -m "$REG/index.json" -x "$sig"
expect_rc 0 "minisign -V -H verifies wfhost's index signature"
expect_in "$T/out" "Trusted comment: wfhost-index seq=$(index_seq)" "trusted comment as signed"
# The key id wfhost prints is the one minisign prints.
id=$(basename "$sig" | sed 's/index.json.\(.*\).minisig/\1/')
expect_in "$WFH_HOME/keys/wfhost.pub" "minisign public key $id" "key id in the .pub comment"
# A tampered index fails minisign too.
cp "$REG/index.json" "$T/idx"; printf ' ' >>"$T/idx"
run minisign -V -p "$WFH_HOME/keys/wfhost.pub" -m "$T/idx" -x "$sig"
expect_rc 1 "minisign rejects a tampered index"

# minisign with a wfhost-made secret key (unencrypted, KDF \0\0).
echo "hello" >"$T/msg"
run minisign -S -s "$WFH_HOME/keys/wfhost.key" -m "$T/msg" -t "from minisign" </dev/null
expect_rc 0 "stock minisign signs with a wfhost-made secret key"

# minisign-made key pair, trusted by wfhost, signs the index by hand.
run minisign -G -W -p "$T/ops.pub" -s "$T/ops.key"
expect_rc 0 "minisign -G -W"
run "$WFH" registry trust "$T/ops.pub"
expect_rc 0 "trust a minisign public key file"
run "$WFH" plugin list
expect_rc 3 "keys changed: the index must be re-signed"
# The operator re-signs with wfhost using the minisign-made key...
run "$WFH" registry sign --key "$T/ops.key"
expect_rc 0 "wfhost signs with a minisign-made key"
run "$WFH" plugin verify
expect_rc 0 "verify after signing with the minisign key"
# ...and then, for the next seq, entirely by hand with the stock tool.
python3 - "$REG/index.json" <<'PY'
import json, sys
p = sys.argv[1]; d = json.load(open(p)); d["seq"] += 1
open(p, "w").write(json.dumps(d, indent=2) + "\n")
PY
rm -f "$REG"/index.json*.minisig
seq=$(index_seq)
run minisign -S -s "$T/ops.key" -m "$REG/index.json" -t "wfhost-index seq=$seq" </dev/null
expect_rc 0 "minisign -S on the index"
[ -f "$REG/index.json.minisig" ] || fail "minisign's default signature name"
run "$WFH" plugin verify
expect_rc 0 "wfhost verifies an index signed by stock minisign"
expect_in "$T/out" "seq $seq, 1 plugin\(s\), 1 valid signature" "verify summary"
run minisign -V -H -p "$T/ops.pub" -m "$REG/index.json"
expect_rc 0 "and minisign agrees"

done_testing
