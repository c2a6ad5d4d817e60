# Attack cases at install time (research D #28, #31, #35, #36, #25, plus exports): each
# hostile .so is refused with exit status 3 and the exact reason, its code never runs
# (except where loading is the only way to read a descriptor, which happens in the
# step runner child: a crashing constructor costs a refused install, not the installer),
# and the registry is left exactly as it was.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/fixtures/registry_env.sh"

reg_init
reg_install "$FIX/marker.so"
snapshot

expect_refused "extra exported symbol" "marker_extra_export.so: refused: exports 'marker_extra'" \
  "$WFH" plugin install "$FIX/marker_extra_export.so"
expect_unchanged "extra export"
expect_refused "DT_RPATH" "refused: has DT_RPATH" "$WFH" plugin install "$FIX/marker_rpath.so"
expect_refused "DT_RUNPATH" "refused: has DT_RUNPATH" "$WFH" plugin install "$FIX/marker_runpath.so"
expect_refused "static TLS" "refused: uses the static TLS model" "$WFH" plugin install "$FIX/marker_static_tls.so"
expect_refused "missing entry symbol" "marker_no_entry.so: refused: exports 'marker_wrong_entry'" \
  "$WFH" plugin install "$FIX/marker_no_entry.so"
# 36: a library needed by path (here relative to the current directory) would load
# code from wherever it points; only bare sonames, found on the system's path, pass.
expect_refused "DT_NEEDED by path" \
  "marker_needed_path.so: refused: needs library '[^']*/libmarker_dep.so' by path" \
  "$WFH" plugin install "$FIX/marker_needed_path.so"
expect_unchanged "ELF refusals"

# Not an ELF at all, and an executable.
printf 'not a plugin' >"$T/junk.so"
expect_refused "not ELF" "junk.so: refused: not an ELF file" "$WFH" plugin install "$T/junk.so"
expect_refused "executable" "refused: (has PT_INTERP|exports)" "$WFH" plugin install "$WFH"
# A truncated copy of a good plugin.
head -c 3000 "$FIX/marker.so" >"$T/trunc.so"
expect_refused "truncated ELF" "trunc.so: refused" "$WFH" plugin install "$T/trunc.so"
expect_unchanged "malformed files"

# The probe runs the plugin in a child: a constructor that segfaults is refused there.
rm -f "$MARKER"
run "$WFH" plugin install "$FIX/marker_crash.so"
expect_rc 3 "crash in constructor"
expect_in "$T/err" "marker_crash.so: refused at install: probe: plugin [0-9a-f]{64}\.so crashed while loading: SIGSEGV \(Segmentation fault\)" "crash"
expect_unchanged "crash"

# ABI major 2 on a 1.x host. The ABI is only known from the descriptor, so the probe
# child loads it (its constructor may run there, never in wfhost) and refuses it.
run "$WFH" plugin install "$FIX/marker_abi2.so"
expect_rc 3 "ABI 2"
expect_in "$T/err" "marker_abi2.so: refused at install: .*needs plugin ABI 2\.[0-9]+; this wfhost speaks 1\.[0-9]+" "ABI 2"
expect_unchanged "ABI 2"
ls "$REG/blobs" >"$T/blobs"
[ "$(wc -l <"$T/blobs")" = 1 ] || fail "a refused plugin left a blob behind: $(cat "$T/blobs")"

# An install signed by a key that keys.txt does not trust.
run "$WFH" registry keygen --name stranger --out "$T/keys"
expect_rc 0 "keygen"
expect_refused "untrusted signing key" "signing key [0-9A-F]{16} is not listed in registry/keys.txt" \
  "$WFH" plugin install "$FIX/marker_v2.so" --key "$T/keys/stranger.key"
expect_unchanged "untrusted key"

done_testing
