# The load path, end to end through `wfhost exec`: the catalog comes from the verified
# index, and the runner loads the verified bytes (a sealed memfd), never the path.
# Positive control: an accepted plugin's constructor runs (the marker appears). Attack
# cases: tampered, swapped, truncated or symlinked blob, tampered index, rollback,
# expiry, disabled and yanked plugins - each refused before any plugin code runs, with
# exit status 3 and the reason. Several majors side by side: uses: marker@1 / @2.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/fixtures/registry_env.sh"

cat >"$T/flow.yaml" <<'YAML'
name: marker-flow
steps:
  - id: one
    uses: marker
    with:
      msg: hi
YAML
sed 's/uses: marker$/uses: marker@1/' "$T/flow.yaml" >"$T/flow1.yaml"

reg_init
reg_install "$FIX/marker.so"
reg_install "$FIX/marker_v2.so"
blob1=$(json <("$WFH" plugin list --json) '["plugins"][0]["blake2b256"]')
blob=$REG/blobs/$blob1.so

# Positive control: the plugin runs, from the registry, and its constructor ran.
rm -f "$MARKER"
run "$WFH" exec "$T/flow.yaml" --json
expect_rc 0 "exec a registry plugin"
grep -q "marker 2.0.0 constructor ran" "$MARKER" 2>/dev/null || fail "plain 'uses: marker' should load the newest major (2.0.0)"
rm -f "$MARKER"
run "$WFH" exec "$T/flow1.yaml" --json
expect_rc 0 "exec marker@1"
grep -q "marker 1.0.0 constructor ran" "$MARKER" 2>/dev/null || fail "'uses: marker@1' should load 1.0.0"
snapshot

# Tampered blob: refused before anything runs (exit 3), the registry unchanged.
cp "$blob" "$T/blob.orig"; chmod u+w "$blob"
python3 -c "import sys; p=sys.argv[1]; b=bytearray(open(p,'rb').read()); b[5000]^=1; open(p,'wb').write(b)" "$blob"
expect_refused "exec with a tampered blob" "plugin marker@1.0.0 \(registry/blobs/[0-9a-f]{12}\.\.\.\): hash mismatch" \
  "$WFH" exec "$T/flow1.yaml"
# Swapped for another valid plugin of the same size (the v2 build).
cp "$FIX/marker_v2.so" "$blob"
expect_refused "exec with a swapped blob" "hash mismatch" "$WFH" exec "$T/flow1.yaml"
head -c 2000 "$T/blob.orig" >"$blob"
expect_refused "exec with a truncated blob" "size mismatch" "$WFH" exec "$T/flow1.yaml"
rm -f "$blob"; ln -s "$T/blob.orig" "$blob"
expect_refused "exec with a symlinked blob" "the blob is a symlink" "$WFH" exec "$T/flow1.yaml"
rm -f "$blob"; cp "$T/blob.orig" "$blob"; chmod 0444 "$blob"

# Tampered index.
cp "$REG/index.json" "$T/index.orig"
sed -i '0,/"format": 1/s//"format":  1/' "$REG/index.json"
expect_refused "exec with a tampered index" "signature does not match the file" "$WFH" exec "$T/flow.yaml"
cp "$T/index.orig" "$REG/index.json"
# validate also reads plugins only through the verified index.
expect_refused "validate with a grown blob" "size mismatch" sh -c "chmod u+w '$blob'; printf X >>'$blob'; '$WFH' validate '$T/flow.yaml'"
rm -f "$blob"; cp "$T/blob.orig" "$blob"; chmod 0444 "$blob"

# Rollback: an older signed index.
mkdir -p "$T/old"; cp "$REG"/index.json "$REG"/index.json.*.minisig "$T/old/"
old_seq=$(index_seq)
run "$WFH" plugin disable marker@2
expect_rc 0 "disable marker@2"
rm -f "$REG"/index.json*; cp "$T/old"/* "$REG/"
expect_refused "exec with a rolled-back index" "index sequence $old_seq older than" "$WFH" exec "$T/flow.yaml"
run "$WFH" registry sign
expect_rc 0 "re-sign"

# Disabled / yanked plugins are not offered.
run "$WFH" plugin disable marker
expect_rc 0 "disable all majors"
rm -f "$MARKER"
run "$WFH" exec "$T/flow.yaml"
[ "$rc" != 0 ] || fail "a disabled plugin ran"
[ ! -e "$MARKER" ] || fail "disabled plugin: code ran"
run "$WFH" plugin enable marker
expect_rc 0 "enable"

# Expired index.
edit_index "d['expires'] = '2020-01-01T00:00:00Z'; d['seq'] += 1"
resign_with_minisign "$WFH_HOME/keys/wfhost.key"
expect_refused "exec with an expired index" "expired on 2020-01-01T00:00:00Z" "$WFH" exec "$T/flow.yaml"
run "$WFH" registry sign
expect_rc 0 "re-sign after expiry"
rm -f "$MARKER"
run "$WFH" exec "$T/flow1.yaml"
expect_rc 0 "exec after recovery"
[ -s "$MARKER" ] || fail "positive control after recovery"

# Index and descriptor disagree: a plugin that names another version once loaded from
# the verified bytes than it did when probed at install is refused before init.
reg_install "$FIX/marker_shifty.so"
run "$WFH" exec "$T/flow1.yaml"
[ "$rc" != 0 ] || fail "a plugin that changed its identity ran to success"
cat "$T/out" "$T/err" >"$T/both"
expect_in "$T/both" "after loading it says it is marker@6.6.6, but the signed index says marker@1.0.0; refused" \
  "identity check"
expect_not_in "$T/both" "marker ran" "the step of a plugin with a changed identity ran"

done_testing
