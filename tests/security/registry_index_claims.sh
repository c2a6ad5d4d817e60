#!/usr/bin/env bash
# What the signed index says about a plugin is what the host acts on, before any of the
# plugin's code runs (research D #25, #26, #29, #32): an ABI the index records as 2.x,
# or as a 1.x minor newer than this wfhost, is refused at validate time (exit 3, the
# plugin named, no marker); a capability the index records and the policy does not
# grant is refused before the run starts; a plugin whose load needs a symbol nobody
# defines is refused at install with the loader's reason and no constructor run. And each attempt of a run
# records the plugin's name, version and the SHA-256 the index signed.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/fixtures/registry_env.sh"

marker_flow "$T/flow.yaml"
reg_init
reg_install "$FIX/marker.so"
rm -f "$MARKER"
run "$WFH" exec "$T/flow.yaml"
expect_rc 0 "positive control"
[ -s "$MARKER" ] || fail "positive control: the constructor did not run"

# 25 / 26: the index (validly signed) records an ABI this host does not speak.
read -r hmaj hmin < <(sed -n 's/^#define WFH_ABI_MAJOR \([0-9]*\).*/\1/p; s/^#define WFH_ABI_MINOR \([0-9]*\).*/\1/p' \
  "$WFH_SRC/include/wfhost/plugin.h" | tr '\n' ' ')
for abi in "2 0" "$hmaj $((hmin + 1))"; do
  set -- $abi
  edit_index "d['seq'] = $(index_seq) + 1; d['plugins'][0]['abi'] = {'major': $1, 'minor': $2}"
  resign_with_minisign "$WFH_HOME/keys/wfhost.key"
  expect_refused "index ABI $1.$2" \
    "flow\.yaml:4:11: error: step type 'marker': plugin 'marker' needs plugin ABI $1\.$2; this wfhost speaks $hmaj\.$hmin; refused" \
    "$WFH" exec "$T/flow.yaml"
  expect_in "$T/err" "hint: upgrade wfhost" "says what to do"
  expect_refused "validate, index ABI $1.$2" "needs plugin ABI $1\.$2" "$WFH" validate "$T/flow.yaml"
done
run "$WFH" registry sign # the next seq, with the edited entry; then reinstall the real one
expect_rc 0 "re-sign"
reg_install "$FIX/marker.so"
run "$WFH" exec "$T/flow.yaml"
expect_rc 0 "the reinstalled plugin runs"

# 32: capabilities are the index's: an entry (validly signed) whose step type now asks
# for the network is refused until the operator grants it, before anything runs.
edit_index "d['seq'] += 1; d['plugins'][0]['types'][0]['capabilities'] = {'network': True}"
resign_with_minisign "$WFH_HOME/keys/wfhost.key"
expect_refused "a capability the policy does not grant" \
  "step 'one' \(marker\): requested but not granted: --allow-net.*add this line to .*policy: allow marker --allow-net" \
  "$WFH" exec "$T/flow.yaml"
run "$WFH" registry sign
expect_rc 0 "re-sign"
reg_install "$FIX/marker.so"

# 29: an undefined symbol: the runner loads with RTLD_NOW, so the probe's dlopen fails
# before any constructor, and the install is refused with the loader's words.
snapshot
expect_refused "undefined symbol" "marker_undefined\.so: refused at install: .*undefined symbol: wfh_marker_no_such_function" \
  "$WFH" plugin install "$FIX/marker_undefined.so"
expect_unchanged "undefined symbol"

# Each attempt records the plugin's name, version and the signed SHA-256.
run "$WFH" exec --json "$T/flow.yaml"
expect_rc 0 "a recorded run"
id=$(json "$T/out" '["run_id"]')
run "$WFH" runs show --json "$id"
expect_rc 0 "runs show"
expect_eq "$(json "$T/out" '["steps"][0]["attempts"][0]["plugin"]')" \
  "$(python3 -c 'import json,sys; p=json.load(open(sys.argv[1]))["plugins"][0]; print(json.dumps({"name": p["name"], "version": p["version"], "file_hash": p["sha256"]}))' "$REG/index.json")" \
  "the attempt names the plugin, its version and the hash the index signed"
done_testing
