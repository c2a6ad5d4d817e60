#!/usr/bin/env bash
# The llm plugin's own JSON Schema validator, exercised keyword by keyword: fixed answers
# from the fake model are checked against schemas that must accept them, and against
# schemas that must refuse them with the failing JSON path in the message.
. "$(dirname "$0")/../lib.sh"
. "$WFH_SRC/tests/fakes/netlib.sh"

start_fake L llmfake.py --log "$T/llm.log"
O="http://127.0.0.1:$L/v1"
# check MODEL SCHEMA accept|"expected message pattern"
check() {
    step llm '{"model":"'$1'","base_url":"'$O'","prompt":"x","stream":false,"response_format":"json","schema":'"$2"'}'
    if [ "$3" = accept ]; then
        expect_st 0 "$1 accepted by $2"
    else
        expect_st 2 "$1 refused by $2"
        case "$err" in *"$3"*) ;; *) fail "$1 / $2: message lacks '$3': $err" ;; esac
    fi
}
# The answer of model json is {"title": "fake", "score": 7}.
check json 'true' accept
check json '{"type":"object"}' accept
check json '{"type":["null","object"]}' accept
check json '{"x-vendor-keyword":{"anything":1}}' accept
check json '{"properties":{"score":{"type":"integer","minimum":7,"maximum":7}}}' accept
check json '{"properties":{"score":{"type":"number","exclusiveMinimum":6,"exclusiveMaximum":8,"multipleOf":3.5}}}' accept
check json '{"properties":{"title":{"enum":["fake","real"],"minLength":4,"maxLength":4,"pattern":"^f[a-z]+$"}}}' accept
check json '{"required":["title","score"],"additionalProperties":false,"properties":{"title":{},"score":{}}}' accept
check json '{"additionalProperties":{"type":["string","integer"]}}' accept
check json '{"minProperties":2,"maxProperties":2}' accept
check json '{"allOf":[{"required":["title"]},{"required":["score"]}]}' accept
check json '{"anyOf":[{"type":"array"},{"required":["score"]}]}' accept
check json '{"oneOf":[{"required":["title"]},{"required":["missing"]}]}' accept
check json '{"not":{"required":["missing"]}}' accept
check json '{"$defs":{"t":{"type":"string"}},"properties":{"title":{"$ref":"#/$defs/t"}}}' accept
check json '{"definitions":{"a~b":{"const":7}},"properties":{"score":{"$ref":"#/definitions/a~0b"}}}' accept
check json '{"properties":{"title":{"const":"fake"}}}' accept

check json 'false' '$: no value is allowed here'
check json '{"type":"array"}' '$: expected type "array"'
check json '{"properties":{"score":{"maximum":6}}}' '$.score: value above maximum 6'
check json '{"properties":{"score":{"minimum":8}}}' '$.score: value below minimum 8'
check json '{"properties":{"score":{"exclusiveMaximum":7}}}' '$.score: value not below 7'
check json '{"properties":{"score":{"multipleOf":2}}}' '$.score: value is not a multiple of 2'
check json '{"properties":{"score":{"type":"string"}}}' '$.score: expected type "string"'
check json '{"properties":{"title":{"enum":["real"]}}}' '$.title: expected one of ["real"]'
check json '{"properties":{"title":{"const":"other"}}}' '$.title: expected "other"'
check json '{"properties":{"title":{"minLength":5}}}' '$.title: string shorter than 5'
check json '{"properties":{"title":{"maxLength":3}}}' '$.title: string longer than 3'
check json '{"properties":{"title":{"pattern":"^x"}}}' "\$.title: string does not match pattern '^x'"
check json '{"required":["missing"]}' "missing required property 'missing'"
check json '{"additionalProperties":false,"properties":{"title":{}}}' "\$.score: property 'score' is not allowed"
check json '{"additionalProperties":{"type":"string"}}' '$.score: expected type "string"'
check json '{"maxProperties":1}' 'more than 1 properties'
check json '{"anyOf":[{"type":"array"},{"type":"string"}]}' 'matches none of the 2 anyOf'
check json '{"oneOf":[{"required":["title"]},{"required":["score"]}]}' 'matches 2 of the oneOf'
check json '{"not":{"type":"object"}}' "matches a 'not' schema"
check json '{"$defs":{"n":{"type":"integer"}},"properties":{"title":{"$ref":"#/$defs/n"}}}' '$.title: expected type "integer"'

# Arrays: the answer of model json-list is [1, 2, 2, "x"].
check json-list '{"type":"array","items":{"type":["integer","string"]}}' accept
check json-list '{"prefixItems":[{"const":1},{"const":2}],"minItems":4,"maxItems":4}' accept
check json-list '{"items":{"type":"integer"}}' '$[3]: expected type "integer"'
check json-list '{"prefixItems":[{"const":2}]}' '$[0]: expected 2'
check json-list '{"minItems":5}' 'fewer than 5 items'
check json-list '{"maxItems":3}' 'more than 3 items'
check json-list '{"uniqueItems":true}' 'are equal'
# Integral reals are integers; lengths count characters, not bytes.
check json-real '{"properties":{"n":{"type":"integer"},"s":{"maxLength":4,"minLength":4}}}' accept

# A recursive schema is fine; recursion is bounded.
check json '{"$defs":{"any":{"anyOf":[{"type":"object","additionalProperties":{"$ref":"#/$defs/any"}},{"type":["string","integer"]}]}},"$ref":"#/$defs/any"}' accept
check json '{"$ref":"#"}' 'deeper than'

done_testing
