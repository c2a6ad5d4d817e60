#!/usr/bin/env bash
# lang_schema: `wfhost schema` is a JSON Schema that accepts every workflow in the docs
# and examples/, and refuses what validate refuses for the same reason (unknown keys,
# bad enums, a step type's `with` that misses a required input).
. "$(dirname "$0")/../lib.sh"

run "$WFH" schema
expect_rc 0 "schema"
cp "$T/out" "$T/schema.json"
run "$WFH" schema --no-plugins
expect_rc 0 "schema without plugins"
run "$WFH" schema --bogus
expect_rc 2 "unknown option"

cat >"$T/bad1.yaml" <<'Y'
name: x
step: []
Y
cat >"$T/bad2.yaml" <<'Y'
name: x
steps:
  - id: a
    uses: shell
    retry: {max_attempts: 2, backoff: linear}
    with: {run: "true"}
Y
cat >"$T/bad3.yaml" <<'Y'
name: x
steps:
  - id: a
    uses: shell@1
    with: {}
Y
python3 - "$T/schema.json" "$WFH_SRC/docs/workflow-syntax.md" "$WFH_SRC/examples" "$T" <<'PY' || fail "schema check"
import glob, json, re, sys
import jsonschema, yaml
schema = json.load(open(sys.argv[1]))
jsonschema.Draft7Validator.check_schema(schema)
v = jsonschema.Draft7Validator(schema)
# YAML 1.1 loaders read `on`/`yes` as booleans; wfhost reads YAML 1.2: keep them strings
class L(yaml.SafeLoader): pass
L.yaml_implicit_resolvers = {k: [r for r in rs if r[0] != "tag:yaml.org,2002:bool"]
                             for k, rs in yaml.SafeLoader.yaml_implicit_resolvers.items()}
def bools(loader, node):
    return {"true": True, "false": False}.get(loader.construct_scalar(node), loader.construct_scalar(node))
L.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|false)$"), list("tf"))
L.add_constructor("tag:yaml.org,2002:bool", bools)
bad = []
docs = re.findall(r"^```yaml\n(.*?)^```", open(sys.argv[2]).read(), re.S | re.M)
files = [(f"docs block {i}", d) for i, d in enumerate(docs)]
files += [(f, open(f).read()) for f in sorted(glob.glob(sys.argv[3] + "/*.yaml"))]
for name, text in files:
    errs = [e.message for e in v.iter_errors(yaml.load(text, Loader=L))]
    if errs:
        bad.append(f"{name}: {errs[:3]}")
for n in (1, 2, 3):
    doc = yaml.load(open(f"{sys.argv[4]}/bad{n}.yaml").read(), Loader=L)
    if v.is_valid(doc):
        bad.append(f"bad{n}.yaml accepted")
print(f"{len(files)} workflows checked", file=sys.stderr)
print("\n".join(bad), file=sys.stderr)
sys.exit(1 if bad else 0)
PY
done_testing
