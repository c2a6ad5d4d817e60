# The load path, end to end through `wfhost exec`: the catalog comes from the verified
# index, and the runner loads the verified bytes (a sealed memfd), never the path.
# Positive control: an accepted plugin's constructor runs (the marker appears). Attack
# cases: tampered, swapped, truncated or symlinked blob, tampered index, rollback,
# expiry, disabled and yanked plugins - each refused before any plugin code runs, with
# exit status 3 and the reason. Several majors side by side: uses: marker@1 / @2.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/fixtures/registry_env.sh"

marker_flow "$T/flow.yaml"
marker_flow "$T/flow1.yaml" marker@1

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
# The same flipped byte does not stop a run that does not use that plugin: opening the
# registry checks every file's presence, type and size; the bytes are hashed for the
# plugins a run uses, before it starts, and again as each attempt loads them.
# `plugin verify` hashes them all.
rm -f "$MARKER"
run "$WFH" exec "$T/flow.yaml"
expect_rc 0 "a run that does not use the tampered plugin"
grep -q "marker 2.0.0 constructor ran" "$MARKER" 2>/dev/null || fail "the untouched marker@2 should run"
expect_refused "verify finds the tampered blob" "plugin marker@1.0.0 \(registry/blobs/[0-9a-f]{12}\.\.\.\): hash mismatch" \
  "$WFH" plugin verify
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
# Refused at validate time, as a refusal (exit 3) that says what to do, not as an
# unknown step type; exec and validate alike.
expect_refused "exec of a disabled plugin" \
  "flow\.yaml:4:11: error: step type 'marker': plugin 'marker' is disabled \(wfhost plugin enable marker@2\); refused" \
  "$WFH" exec "$T/flow.yaml"
expect_not_in "$T/err" "unknown step type" "disabled is not unknown"
expect_refused "validate of a disabled plugin" "plugin 'marker' is disabled \(wfhost plugin enable marker@1\)" \
  "$WFH" validate "$T/flow1.yaml"
# plugin info still describes it, with its state.
run "$WFH" plugin info marker@1 --json
expect_rc 0 "info on a disabled plugin"
expect_eq "$(json "$T/out" '["state"]')" "disabled" "info shows the state"
run "$WFH" plugin enable marker
expect_rc 0 "enable"
run "$WFH" plugin yank marker@1
expect_rc 0 "yank marker@1"
expect_refused "exec of a yanked plugin" \
  "step type 'marker': plugin 'marker' is yanked: marker@1\.0\.0 was withdrawn by the operator; refused" \
  "$WFH" exec "$T/flow1.yaml"
run "$WFH" exec "$T/flow.yaml"  # the other major is still active
expect_rc 0 "yanking marker@1 leaves marker@2"
run "$WFH" plugin enable marker@1
expect_rc 0 "un-yank"

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

# A file-size limit below the plugin's size (RLIMIT_FSIZE also bounds memfds, so no
# copy can be made): the descriptor that was hashed is handed to the runner instead, and
# the plugin still runs - from the verified inode.
rm -f "$MARKER"
run bash -c 'trap "" XFSZ; ulimit -f 8; exec "$0" exec --no-store "$1"' "$WFH" "$T/flow1.yaml"
expect_rc 0 "exec under a file-size limit smaller than the plugin"
grep -q "marker 1.0.0 constructor ran" "$MARKER" 2>/dev/null || fail "the plugin did not run under a small file-size limit"

# Swapped between the check and the use: the catalog verified every blob when exec
# started, then an earlier step of the same run replaces marker@1's file. The attempt
# hashes the bytes it hands the runner again, so the step is refused (exit 3, the run
# stopped, the step after it never starts) and no marker code runs.
cat >"$T/swap.yaml" <<YAML
name: swap-mid-run
steps:
  - id: swap
    uses: shell
    with:
      run: chmod u+w '$blob' && cat '$FIX/marker_v2.so' >'$blob'
  - id: one
    uses: marker@1
    needs: [swap]
    with:
      msg: hi
  - id: after
    uses: shell
    needs: [one]
    with:
      run: touch '$T/after-ran'
YAML
install_plugin "$WFH_BUILT_PLUGINS/shell.so"
echo "profile shell none" >>"$WFH_HOME/policy" # the swap step writes into the registry
expect_refused "a blob swapped after exec started" \
  "^wfhost: step 'one': could not start: plugin marker@1\.0\.0 \(.*blobs/[0-9a-f]{64}\.so\): (hash|size) mismatch" \
  "$WFH" exec "$T/swap.yaml"
[ ! -e "$T/after-ran" ] || fail "the run went on after a refused plugin"
rm -f "$blob"; cp "$T/blob.orig" "$blob"; chmod 0444 "$blob"
sed -i '/^profile shell none$/d' "$WFH_HOME/policy"

# No switch loads unsigned code: --plugin-dir is an error saying what to do instead,
# and $WFH_PLUGIN_DIR is ignored with a warning (the registry's plugin still runs).
mkdir -p "$T/unsigned"; cp "$FIX/marker_v2.so" "$T/unsigned/"
for cmd in exec validate; do
  run "$WFH" $cmd "$T/flow1.yaml" --plugin-dir "$T/unsigned"
  expect_rc 2 "$cmd --plugin-dir"
  expect_eq "$(cat "$T/err")" "wfhost: $cmd: --plugin-dir was removed: plugins load only from the signed registry; install one with \`wfhost plugin install FILE.so\` (docs/registry.md)" "$cmd --plugin-dir message"
done
rm -f "$MARKER"
run env WFH_PLUGIN_DIR="$T/unsigned" "$WFH" exec "$T/flow1.yaml"
expect_rc 0 "exec with \$WFH_PLUGIN_DIR set"
expect_in "$T/err" "warning: \\\$WFH_PLUGIN_DIR \($T/unsigned\) is ignored" "the variable is named as ignored"
grep -q "marker 1.0.0 constructor ran" "$MARKER" 2>/dev/null || fail "\$WFH_PLUGIN_DIR changed which plugin loaded"
grep -q "marker 2.0.0" "$MARKER" 2>/dev/null && fail "an unsigned plugin from \$WFH_PLUGIN_DIR ran"

# Index and descriptor disagree: a plugin that names another version once loaded from
# the verified bytes than it did when probed at install is refused before init.
reg_install "$FIX/marker_shifty.so"
run "$WFH" exec "$T/flow1.yaml"
expect_rc 3 "a plugin that changed its identity is a security refusal"
expect_in "$T/err" "^wfhost: step 'one': plugin 'marker': after loading it says" "the run ends with the refusal"
cat "$T/out" "$T/err" >"$T/both"
expect_in "$T/both" "after loading it says it is marker@6.6.6, but the signed index says marker@1.0.0; refused" \
  "identity check"
expect_not_in "$T/both" "marker ran" "the step of a plugin with a changed identity ran"

done_testing
