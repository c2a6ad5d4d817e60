/*
 * plugins/llm/jschema.h - a compact JSON Schema validator for model answers and tool
 * call arguments. Plugins cannot use core/, so the llm plugin carries its own.
 *
 * Supported (draft 2020-12 names): boolean schemas, type (one or a list; "integer"
 * accepts integral reals), enum, const, properties, required, additionalProperties,
 * patternProperties is NOT supported, items (one schema), prefixItems, minItems, maxItems,
 * uniqueItems, minLength/maxLength (code points), pattern (POSIX extended regex, which
 * agrees with ECMA-262 for the common subset), minimum, maximum, exclusiveMinimum,
 * exclusiveMaximum, multipleOf, minProperties, maxProperties, allOf, anyOf, oneOf, not,
 * and local $ref ("#/$defs/name", "#/definitions/name", any "#/..." pointer). Other
 * keywords are ignored, as the specification says of unknown ones.
 */
#ifndef WFH_LLM_JSCHEMA_H
#define WFH_LLM_JSCHEMA_H

#include <jansson.h>
#include <stddef.h>

/* Validates @p inst against @p schema. @return 0, or -1 with the first problem in
 * @p err as "$.path: what was expected" (or a schema error such as a bad $ref). */
int wfh_jschema_validate(const json_t *schema, const json_t *inst, char *err, size_t errlen);

/* Checks that @p schema can be used (object or boolean, $refs resolve, patterns
 * compile, no cycles deeper than the limit). @return 0, or -1 with @p err set. */
int wfh_jschema_check(const json_t *schema, char *err, size_t errlen);

#endif
