# Attack cases on stored files (research D #1, #2, #3, #6, #10, #19, #20, #21, #23, #24,
# #38): a tampered, truncated, grown, swapped or symlinked plugin blob; an edited,
# missing, legacy-signed, oversized or hostile index; writable or symlinked
# directories. Each is refused with exit status 3 and the reason, and no plugin code
# runs.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/fixtures/registry_env.sh"

reg_init
reg_install "$FIX/marker.so"
run "$WFH" plugin verify
expect_rc 0 "verify of a good registry"
expect_in "$T/out" "^ok   marker@1.0.0 active" "verify lists the plugin"
blob=$(ls "$REG"/blobs/*.so)
cp "$blob" "$T/blob.orig"
chmod u+w "$blob"
restore_blob() { rm -f "$blob"; cp "$T/blob.orig" "$blob"; chmod 0444 "$blob"; }

# 1: one flipped byte.
python3 -c "import sys; p=sys.argv[1]; b=bytearray(open(p,'rb').read()); b[4000]^=1; open(p,'wb').write(b)" "$blob"
expect_refused "tampered blob" "plugin marker@1.0.0 \(registry/blobs/[0-9a-f]{12}\.\.\.\): hash mismatch" \
  "$WFH" plugin verify
restore_blob
# 2: truncated and grown.
head -c 1000 "$T/blob.orig" >"$blob"
expect_refused "truncated blob" "size mismatch: 1000 bytes, the index says" "$WFH" plugin verify
restore_blob; chmod u+w "$blob"; printf 'x' >>"$blob"
expect_refused "grown blob" "size mismatch" "$WFH" plugin verify
restore_blob
# 20: the blob replaced by a symlink (to the very same bytes, even).
mv "$blob" "$T/blob.moved"; ln -s "$T/blob.moved" "$blob"
expect_refused "symlinked blob" "the blob is a symlink; refused" "$WFH" plugin verify
rm -f "$blob"; restore_blob
# Missing blob.
rm -f "$blob"
expect_refused "missing blob" "the blob is missing; refused" "$WFH" plugin verify
restore_blob
# 23: writable blob.
chmod 0666 "$blob"
expect_refused "world-writable blob" "writable by group or others; refused" "$WFH" plugin verify
chmod 0444 "$blob"
# 38: an unlisted blob is never offered.
cp "$FIX/marker_v2.so" "$REG/blobs/$(printf '%064d' 0).so"
run "$WFH" plugin list
expect_rc 0 "list with a stray blob"
expect_not_in "$T/out" "2\.0\.0" "a blob not in the index is not listed"
rm -f "$REG/blobs/$(printf '%064d' 0).so"
run "$WFH" plugin verify
expect_rc 0 "verify after restoring"

# 3: one byte of the index changed (a space added keeps the JSON valid).
cp "$REG/index.json" "$T/index.orig"
sed -i '0,/"format": 1/s//"format":  1/' "$REG/index.json"
expect_refused "tampered index" "registry/index.json.[0-9A-F]{16}.minisig: signature does not match the file" \
  "$WFH" plugin list
cp "$T/index.orig" "$REG/index.json"
# 10: index deleted - no fallback to anything unsigned.
mv "$REG/index.json" "$T/index.moved"
expect_refused "missing index" "registry/index.json: missing; no plugin can be loaded" "$WFH" plugin list
mv "$T/index.moved" "$REG/index.json"
# No signature at all.
mkdir "$T/sigs"; mv "$REG"/index.json*.minisig "$T/sigs/"
expect_refused "unsigned index" "no signature file" "$WFH" plugin list
mv "$T/sigs"/* "$REG/"
# 6: a legacy (non-prehashed) signature by the trusted key, made with minisign -l.
mv "$REG"/index.json*.minisig "$T/sigs/"
minisign -S -l -s "$WFH_HOME/keys/wfhost.key" -m "$REG/index.json" -x "$REG/index.json.minisig" \
  -t "wfhost-index seq=$(index_seq)" </dev/null >/dev/null 2>&1 || fail "minisign -l"
expect_refused "legacy signature" "legacy \(non-prehashed 'Ed'\) signature refused" "$WFH" plugin list
rm -f "$REG/index.json.minisig"; mv "$T/sigs"/* "$REG/"
# A valid signature whose trusted comment names another seq (a signature made for a
# different index version cannot vouch for this one).
mv "$REG"/index.json*.minisig "$T/sigs/"
minisign -S -s "$WFH_HOME/keys/wfhost.key" -m "$REG/index.json" -x "$REG/index.json.minisig" \
  -t "wfhost-index seq=999" </dev/null >/dev/null 2>&1 || fail "minisign -S"
expect_refused "wrong trusted comment" "has trusted comment 'wfhost-index seq=999', expected 'wfhost-index seq=" \
  "$WFH" plugin list
rm -f "$REG/index.json.minisig"; mv "$T/sigs"/* "$REG/"
# Trusted comment edited after signing.
sig=$(ls "$REG"/index.json.*.minisig); cp "$sig" "$T/sig.orig"
sed -i 's/^trusted comment: .*/trusted comment: wfhost-index seq=1000/' "$sig"
expect_refused "edited trusted comment" "trusted comment signature is invalid" "$WFH" plugin list
cp "$T/sig.orig" "$sig"
# 24: oversized index and signature files are refused before being read.
cp "$REG/index.json" "$T/index.orig"
truncate -s 5M "$REG/index.json"
expect_refused "oversized index" "registry/index.json: 5242880 bytes is over the 4194304-byte limit" "$WFH" plugin list
cp "$T/index.orig" "$REG/index.json"
# An oversized signature file is never read; alone it leaves the index unsigned.
mv "$REG"/index.json*.minisig "$T/sigs/"
head -c 10000 /dev/zero >"$REG/index.json.huge.minisig"
expect_refused "oversized signature" "index.json.huge.minisig: 10000 bytes is over the 4096-byte limit" \
  "$WFH" plugin list
rm -f "$REG/index.json.huge.minisig"; mv "$T/sigs"/* "$REG/"

# 19: hostile names in a validly signed index are refused at parse.
for bad in '../../etc/x' 'a/b' 'UPPER' "$(printf 'a%.0s' $(seq 65))"; do
  cp "$T/index.orig" "$REG/index.json"
  edit_index "d['plugins'][0]['name'] = '$bad'; d['seq'] += 1"
  resign_with_minisign "$WFH_HOME/keys/wfhost.key"
  expect_refused "name '$bad'" "plugin name must match|'name' must be a string of at most 64 bytes" "$WFH" plugin list
done
cp "$T/index.orig" "$REG/index.json"; rm -f "$REG"/index.json*.minisig
cp "$T/sig.orig" "$sig"
run "$WFH" plugin verify
expect_rc 0 "registry restored"

# 21/23: symlinked or writable registry directories.
chmod 0777 "$REG/blobs"
expect_refused "world-writable blobs/" "registry/blobs/: writable by group or others" "$WFH" plugin list
chmod 0755 "$REG/blobs"
mv "$REG/blobs" "$T/blobs.real"; ln -s "$T/blobs.real" "$REG/blobs"
expect_refused "symlinked blobs/" "registry/blobs/: is a symlink or not a directory; refused" "$WFH" plugin list
rm "$REG/blobs"; mv "$T/blobs.real" "$REG/blobs"
chmod 0666 "$REG/keys.txt"
expect_refused "writable keys.txt" "registry/keys.txt: writable by group or others" "$WFH" plugin list
chmod 0644 "$REG/keys.txt"
run "$WFH" plugin verify
expect_rc 0 "registry restored at the end"

done_testing
