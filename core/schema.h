/*
 * core/schema.h - a JSON Schema validator for the subset step input schemas use.
 *
 * Supported: type (a name or a list of names; "integer" accepts whole reals), properties,
 * required, additionalProperties (bool or schema), items (one schema), enum, const,
 * minimum/maximum, exclusiveMinimum/exclusiveMaximum (numbers), minLength/maxLength
 * (code points), minItems/maxItems, pattern (POSIX extended regex, unanchored like
 * ECMA), oneOf/anyOf/allOf/not. `default`, `description`, `title`, `$schema` and any
 * other annotation are ignored. Errors name the JSON path ("with.argv[2]: expected
 * string, got integer") and the instance node so a caller can point at its source.
 *
 * Used twice: at validate time on `with:` trees whose templates are not known yet (the
 * caller's `unknown` hook says which nodes to trust), and at run time on evaluated
 * inputs.
 */
#ifndef WFH_SCHEMA_H
#define WFH_SCHEMA_H

#include <jansson.h>
#include <stddef.h>

/* What the `unknown` hook answers for an instance node. */
enum {
    WFH_SCHEMA_KNOWN = 0,       /* check it */
    WFH_SCHEMA_ANY = 1,         /* accept anything (an expression of unknown type) */
    WFH_SCHEMA_ANY_STRING = 2,  /* a string whose content is not known yet */
};

typedef struct wfh_schema_opts {
    /* Called for each problem: @p inst is the offending node (borrowed; the parent
     * object for a missing property), @p path the JSON path, @p msg the message. */
    void (*report)(void *ud, const json_t *inst, const char *path, const char *msg);
    /* May be NULL: every node is known. */
    int (*unknown)(void *ud, const json_t *inst);
    void *ud;
    const char *root;           /* path prefix, e.g. "with"; NULL: "$" */
} wfh_schema_opts;

/* Validate @p inst against @p schema. Returns the number of problems reported (0:
 * valid), or a negative WFH_E* code (out of memory, or a malformed schema: message in
 * wfh_error_last()). */
int wfh_schema_validate(const json_t *schema, const json_t *inst, const wfh_schema_opts *o);

/* Check that @p schema uses only what this validator understands, with the right
 * types. Returns 0, or WFH_EINVAL with the path of the first problem in wfh_error_last(). */
int wfh_schema_check(const json_t *schema);

#endif
