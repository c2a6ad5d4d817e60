#!/bin/sh
# registry/make-dev-registry.sh WFHOST HOME STAMP PLUGIN.so... - the build's development
# registry: a key made for this build tree, and every built plugin installed (checked,
# probed, recorded, signed) exactly as an operator would, so a fresh clone's
# `build/bin/wfhost exec examples/hello.yaml` loads only signed plugins.
set -eu
[ -n "${2:-}" ] && [ -n "${3:-}" ] || { echo "usage: $0 WFHOST HOME STAMP PLUGIN.so..." >&2; exit 2; }
wfhost=$1 home=$2 stamp=$3
shift 3
export WFH_HOME="$home"
unset WFH_PLUGIN_DIR
if [ ! -f "$home/registry/keys.txt" ]; then
  "$wfhost" registry init --new-key >/dev/null
fi
for so in "$@"; do
  "$wfhost" plugin install "$so" >/dev/null
done
"$wfhost" plugin verify >/dev/null
touch "$stamp"
