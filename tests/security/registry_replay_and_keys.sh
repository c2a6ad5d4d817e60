# Attack cases on freshness and keys (research D #7, #9, #11, #13, #16, #18, #40 and
# the threshold): replayed older indexes, same seq with other content, expiry, unknown
# and revoked signers, threshold of distinct keys, mix-and-match of index and keys,
# rolled-back keys.txt, deleted state, and recovery after a stolen key.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/fixtures/registry_env.sh"
KEY=$WFH_HOME/keys/wfhost.key

reg_init
reg_install "$FIX/marker.so"
mkdir -p "$T/old"
cp "$REG"/index.json "$REG"/index.json.*.minisig "$T/old/"
old_seq=$(index_seq)
reg_install "$FIX/marker_v2.so"
new_seq=$(index_seq)
[ "$new_seq" -gt "$old_seq" ] || fail "seq did not grow ($old_seq -> $new_seq)"

# 7: an older, validly signed index is replayed.
mkdir -p "$T/cur"; cp "$REG"/index.json "$REG"/index.json.*.minisig "$T/cur/"
rm -f "$REG"/index.json*; cp "$T/old"/* "$REG/"
snapshot
expect_refused "rollback" "registry/index.json: index sequence $old_seq older than $new_seq already seen \(rollback\)" \
  "$WFH" plugin list
expect_unchanged "rollback refusal"
grep -q "index_seq=$new_seq" "$REG/state.txt" || fail "state.txt lowered by a rollback attempt"
rm -f "$REG"/index.json*; cp "$T/cur"/* "$REG/"

# Same seq, different content, validly signed.
cp "$REG/index.json" "$T/index.cur"
edit_index "d['plugins'][0]['state'] = 'disabled'"
resign_with_minisign "$KEY"
expect_refused "same seq, other content" "index sequence $new_seq was already seen with different content" \
  "$WFH" plugin list
rm -f "$REG"/index.json*; cp "$T/cur"/* "$REG/"

# 9: expired (validly signed, newer seq, expiry in the past).
edit_index "d['expires'] = '2020-01-01T00:00:00Z'; d['seq'] += 1; d['plugins'][1]['state'] = 'disabled'"
resign_with_minisign "$KEY"
expect_refused "expired index" "registry/index.json: expired on 2020-01-01T00:00:00Z" "$WFH" plugin list
# The operator's fix: re-sign (writes a new seq with a fresh expiry).
run "$WFH" registry sign
expect_rc 0 "re-sign an expired index"
run "$WFH" plugin list
expect_rc 0 "list after re-signing"
expect_in "$T/out" "marker +2\.0\.0 +disabled" "the manual edit (disabled) was kept and signed"
run "$WFH" plugin enable marker@2
expect_rc 0 "enable"

# 11: a signature by a key keys.txt does not list.
run "$WFH" registry keygen --name stranger --out "$T/keys"
rm -f "$REG"/index.json*.minisig
minisign -S -s "$T/keys/stranger.key" -m "$REG/index.json" -x "$REG/index.json.minisig" \
  -t "wfhost-index seq=$(index_seq)" </dev/null >/dev/null 2>&1
expect_refused "unknown key" "signed by unknown \(not in keys.txt\) key [0-9A-F]{16}" "$WFH" plugin list
run "$WFH" registry sign
expect_rc 0 "re-sign with the trusted key"

# Threshold: two distinct keys required; one signature is not enough, two of the same
# key are not two, two keys are.
run "$WFH" registry keygen --name second --trust
expect_rc 0 "keygen --trust"
# 16: keys.txt changed (version bumped) but the index still names the old version.
expect_refused "mix-and-match" "belongs to keys version [0-9]+ but keys.txt is version [0-9]+ \(mix-and-match\)" \
  "$WFH" plugin list
run "$WFH" registry trust "$WFH_HOME/keys/second.pub" --threshold 2
expect_rc 0 "threshold 2"
run "$WFH" registry sign
expect_rc 0 "sign with the first key"
expect_refused "threshold 1 of 2" "registry/index.json: 1 of 2 required signatures by distinct trusted keys are valid" \
  "$WFH" plugin list
sig=$(ls "$REG"/index.json.*.minisig)
cp "$sig" "$REG/index.json.copy.minisig"
expect_refused "same key twice" "1 of 2 required signatures" "$WFH" plugin list
rm -f "$REG/index.json.copy.minisig"
run "$WFH" registry sign --key "$WFH_HOME/keys/second.key"
expect_rc 0 "co-sign with the second key"
expect_in "$T/out" "added signature by key" "second signature is a co-signature, not a new seq"
run "$WFH" plugin verify
expect_rc 0 "two of two"
expect_in "$T/out" "2 valid signature\(s\) \(need 2\)" "verify counts both"

# 13: the second key is stolen and revoked: its signatures stop counting even though
# they are valid.
cp "$REG/keys.txt" "$T/keys.before-revoke"
run "$WFH" registry trust "$WFH_HOME/keys/wfhost.pub" --threshold 1
expect_rc 0 "threshold back to 1"
run "$WFH" registry revoke "$WFH_HOME/keys/second.pub"
expect_rc 0 "revoke"
run "$WFH" registry sign --key "$WFH_HOME/keys/second.key"
expect_rc 3 "a revoked key cannot sign"
expect_in "$T/err" "signing key [0-9A-F]{16} is (revoked|not listed)" "revoked signer refused by sign"
rm -f "$REG"/index.json*.minisig
minisign -S -s "$WFH_HOME/keys/second.key" -m "$REG/index.json" -x "$REG/index.json.minisig" \
  -t "wfhost-index seq=$(index_seq)" </dev/null >/dev/null 2>&1
expect_refused "revoked key" "signed by revoked key [0-9A-F]{16}" "$WFH" plugin list
run "$WFH" registry sign
expect_rc 0 "re-sign with the good key"
run "$WFH" plugin list
expect_rc 0 "list after revocation and re-sign"

# keys.txt rolled back to the version that still trusted the stolen key.
cp "$REG/keys.txt" "$T/keys.now"
cp "$T/keys.before-revoke" "$REG/keys.txt"
expect_refused "keys.txt rollback" "registry/keys.txt: version [0-9]+ is older than version [0-9]+ already seen \(rollback\)" \
  "$WFH" plugin list
cp "$T/keys.now" "$REG/keys.txt"

# 18: a stolen (since revoked) key had signed a huge seq that this machine accepted.
# Recovery: keys.txt v+1 with reset_index_seq lowers the floor once.
edit_index "d['seq'] = 9000000000000000000"
rm -f "$REG"/index.json*.minisig
minisign -S -s "$KEY" -m "$REG/index.json" -x "$REG/index.json.minisig" \
  -t "wfhost-index seq=9000000000000000000" </dev/null >/dev/null 2>&1
run "$WFH" plugin list
expect_rc 0 "the huge seq is accepted (signed by a trusted key)"
grep -q "index_seq=9000000000000000000" "$REG/state.txt" || fail "state did not record the huge seq"
python3 - "$REG/keys.txt" <<'PY'
import re, sys
p = sys.argv[1]; s = open(p).read()
v = int(re.search(r"^version=(\d+)$", s, re.M).group(1))
s = re.sub(r"^version=\d+$", "version=%d" % (v + 1), s, flags=re.M) + "reset_index_seq=100\n"
open(p, "w").write(s)
PY
run "$WFH" registry sign
expect_rc 0 "sign after the reset"
expect_in "$T/out" "signed index seq 101" "the new index starts above the reset floor"
run "$WFH" plugin list
expect_rc 0 "recovered registry verifies"

# 40: state.txt deleted: refused until the operator says so explicitly.
rm -f "$REG/state.txt"
expect_refused "state deleted" "registry/state.txt: missing, so an older index could be replayed" "$WFH" plugin list
run "$WFH" registry verify --reinit-state
expect_rc 0 "verify --reinit-state"
run "$WFH" plugin list
expect_rc 0 "list after reinit"

done_testing
