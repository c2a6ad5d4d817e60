# The verified plugin bytes one wfhost process keeps (docs/registry.md, "How a plugin is
# loaded"), end to end through `wfhost exec`: a run of many steps of one plugin reads
# the plugin's file once (the check before the run), not once per attempt; and a blob
# rewritten in the middle of a run - same size, its mtime set back, or replaced by a
# renamed file of the same size - is still refused at the next attempt (exit 3), before
# any of its code runs, and the run stops there.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/fixtures/registry_env.sh"

reg_init
reg_install "$FIX/marker.so"
install_plugin "$WFH_BUILT_PLUGINS/shell.so"
"$WFH" plugin list --json >"$T/list.json"
blob1=$(python3 -c 'import json,sys
print([p for p in json.load(open(sys.argv[1]))["plugins"] if p["name"] == "marker"][0]["blake2b256"])' "$T/list.json")
blob=$REG/blobs/$blob1.so
[ -f "$blob" ] || fail "no marker blob at $blob"
cp -p "$blob" "$T/blob.orig"
# A blob changed less than 100 ms before it is hashed is hashed at every attempt; let
# the freshly installed one settle, so the run below can keep it.
sleep 0.3

N=40
{
  echo "name: many"
  echo "steps:"
  for i in $(seq $N); do
    echo "  - id: s$i"
    echo "    uses: marker"
    echo "    with: {msg: hi}"
    [ "$i" -gt 1 ] && echo "    needs: [s$((i - 1))]"
  done
} >"$T/many.yaml"

# How often the host (not its runners: no -f) opens the blob: once, for the check
# before the run; every attempt reuses those bytes.
if command -v strace >/dev/null; then
  ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
    strace -o "$T/strace" -e trace=open,openat "$WFH" exec --no-store "$T/many.yaml" >"$T/out" 2>"$T/err"
  expect_eq "$?" 0 "$N marker steps under strace"
  opens=$(grep -c "blobs/$blob1.so\"" "$T/strace")
  echo "the blob was opened $opens time(s) for $N attempts"
  expect_eq "$opens" 1 "one plugin, $N attempts: its file is read once"
else
  echo "no strace: the open count is not checked here (unit/test_registry_blob counts hashes)"
fi
rm -f "$MARKER"
run "$WFH" exec "$T/many.yaml" --json
expect_rc 0 "$N marker steps"
expect_eq "$(grep -c 'constructor ran' "$MARKER")" "$N" "every attempt loaded the plugin"

# tamper_flow FILE CMD: marker, then a shell step running CMD (which changes the blob),
# then marker again, then a step that must never start.
tamper_flow() {
  cat >"$1" <<YAML
name: tamper-mid-run
steps:
  - id: first
    uses: marker
    with: {msg: hi}
  - id: tamper
    uses: shell
    needs: [first]
    with:
      run: $2
  - id: again
    uses: marker
    needs: [tamper]
    with: {msg: hi}
  - id: after
    uses: shell
    needs: [again]
    with:
      run: touch '$T/after-ran'
YAML
}
echo "profile shell none" >>"$WFH_HOME/policy" # the tamper step writes into the registry

# tamper_case "what" CMD: the second marker step is refused and no marker code ran then.
tamper_case() {
  local what=$1
  tamper_flow "$T/tamper.yaml" "$2"
  rm -f "$MARKER" "$T/after-ran"
  run "$WFH" exec "$T/tamper.yaml" --json
  expect_rc 3 "$what: exit status"
  expect_in "$T/err" "^wfhost: step 'again': could not start: plugin marker@1\.0\.0 \(.*blobs/[0-9a-f]{64}\.so\): hash mismatch" \
    "$what: refused at the next attempt"
  expect_eq "$(grep -c 'constructor ran' "$MARKER" 2>/dev/null)" 1 "$what: only the first step's marker code ran"
  [ ! -e "$T/after-ran" ] || fail "$what: the run went on after a refused plugin"
  rm -f "$blob"; cp "$T/blob.orig" "$blob"; chmod 0444 "$blob"
  touch -d '1 minute ago' "$blob"; sleep 0.3
}

# Rewritten in place: same size, one byte flipped, the mtime put back.
tamper_case "same size, mtime set back" \
  "chmod u+w '$blob' && python3 -c \"import sys; p=sys.argv[1]; b=bytearray(open(p,'rb').read()); b[5000]^=1; open(p,'r+b').write(b)\" '$blob' && touch -r '$T/blob.orig' '$blob' && chmod 0444 '$blob'"
# Replaced by a renamed file of the same size and mtime.
tamper_case "replaced by rename" \
  "python3 -c \"import sys; b=bytearray(open(sys.argv[1],'rb').read()); b[5000]^=1; open(sys.argv[2],'wb').write(b)\" '$T/blob.orig' '$T/new.so' && chmod 0444 '$T/new.so' && touch -r '$T/blob.orig' '$T/new.so' && mv -f '$T/new.so' '$blob'"

# Untouched, the same flow runs to the end.
tamper_flow "$T/tamper.yaml" "echo untouched"
rm -f "$MARKER"
run "$WFH" exec "$T/tamper.yaml"
expect_rc 0 "the same flow with an untouched blob"
expect_eq "$(grep -c 'constructor ran' "$MARKER")" 2 "both marker steps ran"
sed -i '/^profile shell none$/d' "$WFH_HOME/policy"
done_testing
