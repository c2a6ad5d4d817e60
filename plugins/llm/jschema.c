/*
 * plugins/llm/jschema.c - the JSON Schema subset the llm plugin validates answers with
 * (see jschema.h for what is supported). Recursion is bounded so that a hostile schema
 * or answer cannot exhaust the stack; every error names the JSON path that failed.
 */
#include "jschema.h"

#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <string.h>

#define JS_MAX_DEPTH 64

typedef struct js_ctx {
    const json_t *root; /* borrowed: for $ref */
    char *err;          /* borrowed: caller's buffer */
    size_t errlen;
} js_ctx;

static int js_fail(js_ctx *c, const char *path, const char *fmt, const char *a, double n)
{
    char what[256];
    snprintf(what, sizeof what, fmt, a ? a : "", n);
    snprintf(c->err, c->errlen, "%s: %s", *path ? path : "$", what);
    return -1;
}

/* Resolves a local "#/a/b" pointer (with ~0 ~1 escapes) in the root schema. */
static const json_t *js_resolve(const json_t *root, const char *ref)
{
    if (strcmp(ref, "#") == 0)
        return root;
    if (strncmp(ref, "#/", 2) != 0)
        return NULL;
    const json_t *cur = root;
    const char *p = ref + 2;
    char tok[256];
    while (cur) {
        size_t n = 0;
        while (*p && *p != '/' && n + 1 < sizeof tok) {
            if (p[0] == '~' && p[1] == '0')
                tok[n++] = '~', p += 2;
            else if (p[0] == '~' && p[1] == '1')
                tok[n++] = '/', p += 2;
            else
                tok[n++] = *p++;
        }
        tok[n] = '\0';
        if (json_is_object(cur)) {
            cur = json_object_get(cur, tok);
        } else if (json_is_array(cur)) {
            char *end;
            long i = strtol(tok, &end, 10);
            cur = (*end || i < 0) ? NULL : json_array_get(cur, (size_t)i);
        } else {
            return NULL;
        }
        if (*p != '/')
            break;
        p++;
    }
    return *p ? NULL : cur;
}

static int js_type_is(const json_t *inst, const char *t)
{
    if (strcmp(t, "object") == 0)
        return json_is_object(inst);
    if (strcmp(t, "array") == 0)
        return json_is_array(inst);
    if (strcmp(t, "string") == 0)
        return json_is_string(inst);
    if (strcmp(t, "boolean") == 0)
        return json_is_boolean(inst);
    if (strcmp(t, "null") == 0)
        return json_is_null(inst);
    if (strcmp(t, "number") == 0)
        return json_is_number(inst);
    if (strcmp(t, "integer") == 0)
        return json_is_integer(inst) ||
               (json_is_real(inst) && json_real_value(inst) == floor(json_real_value(inst)));
    return 0;
}

static size_t js_utf8_len(const char *s, size_t n)
{
    size_t cps = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80)
            cps++;
    return cps;
}

static int js_validate(js_ctx *c, const json_t *s, const json_t *inst, char *path,
                       size_t pathlen, int depth);

/* Extends @p path with ".key" or "[i]" for the duration of a child check. */
static int js_child(js_ctx *c, const json_t *s, const json_t *inst, char *path, size_t pathlen,
                    int depth, const char *key, size_t idx)
{
    size_t old = strlen(path);
    if (key)
        snprintf(path + old, pathlen - old, ".%s", key);
    else
        snprintf(path + old, pathlen - old, "[%zu]", idx);
    int rc = js_validate(c, s, inst, path, pathlen, depth + 1);
    path[old] = '\0';
    return rc;
}

static double js_num(const json_t *v)
{
    return json_number_value(v);
}

static int js_validate(js_ctx *c, const json_t *s, const json_t *inst, char *path,
                       size_t pathlen, int depth)
{
    if (depth > JS_MAX_DEPTH)
        return js_fail(c, path, "schema nests deeper than %s%.0f levels", "", JS_MAX_DEPTH);
    if (json_is_true(s))
        return 0;
    if (json_is_false(s))
        return js_fail(c, path, "no value is allowed here%s", "", 0);
    if (!json_is_object(s))
        return js_fail(c, path, "schema is not an object or boolean%s", "", 0);

    const json_t *v;
    if ((v = json_object_get(s, "$ref"))) {
        const json_t *target = json_is_string(v) ? js_resolve(c->root, json_string_value(v)) : NULL;
        if (!target)
            return js_fail(c, path, "$ref '%s' does not resolve (only local #/... refs)",
                           json_string_value(v), 0);
        if (js_validate(c, target, inst, path, pathlen, depth + 1) < 0)
            return -1;
    }

    if ((v = json_object_get(s, "type"))) {
        int ok = 0;
        if (json_is_string(v)) {
            ok = js_type_is(inst, json_string_value(v));
        } else if (json_is_array(v)) {
            size_t i;
            json_t *t;
            json_array_foreach(v, i, t) ok |= json_is_string(t) && js_type_is(inst, json_string_value(t));
        }
        if (!ok) {
            char *want = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT); /* owned */
            int rc = js_fail(c, path, "expected type %s", want ? want : "?", 0);
            free(want);
            return rc;
        }
    }
    if ((v = json_object_get(s, "enum"))) {
        int ok = 0;
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) ok |= json_equal(e, (json_t *)inst);
        if (!ok) {
            char *want = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT); /* owned */
            int rc = js_fail(c, path, "expected one of %s", want ? want : "?", 0);
            free(want);
            return rc;
        }
    }
    if ((v = json_object_get(s, "const")) && !json_equal(v, (json_t *)inst)) {
        char *want = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT); /* owned */
        int rc = js_fail(c, path, "expected %s", want ? want : "?", 0);
        free(want);
        return rc;
    }

    if (json_is_string(inst)) {
        size_t n = js_utf8_len(json_string_value(inst), json_string_length(inst));
        if ((v = json_object_get(s, "minLength")) && json_is_number(v) && (double)n < js_num(v))
            return js_fail(c, path, "%sstring shorter than %.0f characters", "", js_num(v));
        if ((v = json_object_get(s, "maxLength")) && json_is_number(v) && (double)n > js_num(v))
            return js_fail(c, path, "%sstring longer than %.0f characters", "", js_num(v));
        if ((v = json_object_get(s, "pattern")) && json_is_string(v)) {
            regex_t re;
            if (regcomp(&re, json_string_value(v), REG_EXTENDED | REG_NOSUB) != 0)
                return js_fail(c, path, "pattern '%s' does not compile", json_string_value(v), 0);
            int m = regexec(&re, json_string_value(inst), 0, NULL, 0);
            regfree(&re);
            if (m != 0)
                return js_fail(c, path, "string does not match pattern '%s'", json_string_value(v), 0);
        }
    }

    if (json_is_number(inst)) {
        double x = js_num(inst);
        if ((v = json_object_get(s, "minimum")) && json_is_number(v) && x < js_num(v))
            return js_fail(c, path, "%svalue below minimum %g", "", js_num(v));
        if ((v = json_object_get(s, "maximum")) && json_is_number(v) && x > js_num(v))
            return js_fail(c, path, "%svalue above maximum %g", "", js_num(v));
        if ((v = json_object_get(s, "exclusiveMinimum")) && json_is_number(v) && x <= js_num(v))
            return js_fail(c, path, "%svalue not above %g", "", js_num(v));
        if ((v = json_object_get(s, "exclusiveMaximum")) && json_is_number(v) && x >= js_num(v))
            return js_fail(c, path, "%svalue not below %g", "", js_num(v));
        if ((v = json_object_get(s, "multipleOf")) && json_is_number(v) && js_num(v) > 0) {
            double q = x / js_num(v);
            if (fabs(q - round(q)) > 1e-9)
                return js_fail(c, path, "%svalue is not a multiple of %g", "", js_num(v));
        }
    }

    if (json_is_object(inst)) {
        const json_t *props = json_object_get(s, "properties");
        const json_t *addl = json_object_get(s, "additionalProperties");
        size_t nprops = json_object_size(inst);
        if ((v = json_object_get(s, "minProperties")) && json_is_number(v) && (double)nprops < js_num(v))
            return js_fail(c, path, "%sfewer than %.0f properties", "", js_num(v));
        if ((v = json_object_get(s, "maxProperties")) && json_is_number(v) && (double)nprops > js_num(v))
            return js_fail(c, path, "%smore than %.0f properties", "", js_num(v));
        if ((v = json_object_get(s, "required")) && json_is_array(v)) {
            size_t i;
            json_t *r;
            json_array_foreach(v, i, r) {
                if (json_is_string(r) && !json_object_get(inst, json_string_value(r)))
                    return js_fail(c, path, "missing required property '%s'", json_string_value(r), 0);
            }
        }
        const char *k;
        json_t *pv;
        json_object_foreach((json_t *)inst, k, pv) {
            const json_t *ps = json_is_object(props) ? json_object_get(props, k) : NULL;
            if (ps) {
                if (js_child(c, ps, pv, path, pathlen, depth, k, 0) < 0)
                    return -1;
            } else if (addl) {
                if (json_is_false(addl)) {
                    size_t old = strlen(path);
                    snprintf(path + old, pathlen - old, ".%s", k);
                    int rc = js_fail(c, path, "property '%s' is not allowed", k, 0);
                    path[old] = '\0';
                    return rc;
                }
                if (js_child(c, addl, pv, path, pathlen, depth, k, 0) < 0)
                    return -1;
            }
        }
    }

    if (json_is_array(inst)) {
        size_t n = json_array_size(inst);
        const json_t *prefix = json_object_get(s, "prefixItems");
        size_t np = json_is_array(prefix) ? json_array_size(prefix) : 0;
        if ((v = json_object_get(s, "minItems")) && json_is_number(v) && (double)n < js_num(v))
            return js_fail(c, path, "%sfewer than %.0f items", "", js_num(v));
        if ((v = json_object_get(s, "maxItems")) && json_is_number(v) && (double)n > js_num(v))
            return js_fail(c, path, "%smore than %.0f items", "", js_num(v));
        const json_t *items = json_object_get(s, "items");
        for (size_t i = 0; i < n; i++) {
            const json_t *is = i < np ? json_array_get(prefix, i) : items;
            if (is && js_child(c, is, json_array_get(inst, i), path, pathlen, depth, NULL, i) < 0)
                return -1;
        }
        if (json_is_true(json_object_get(s, "uniqueItems")))
            for (size_t i = 0; i < n; i++)
                for (size_t j = i + 1; j < n; j++)
                    if (json_equal(json_array_get(inst, i), json_array_get(inst, j)))
                        return js_fail(c, path, "%sitems %.0f and another are equal", "", (double)i);
    }

    if ((v = json_object_get(s, "allOf")) && json_is_array(v)) {
        size_t i;
        json_t *sub;
        json_array_foreach(v, i, sub) {
            if (js_validate(c, sub, inst, path, pathlen, depth + 1) < 0)
                return -1;
        }
    }
    if ((v = json_object_get(s, "anyOf")) && json_is_array(v)) {
        size_t i;
        json_t *sub;
        int ok = 0;
        json_array_foreach(v, i, sub) {
            if (!ok && js_validate(c, sub, inst, path, pathlen, depth + 1) == 0)
                ok = 1;
        }
        if (!ok)
            return js_fail(c, path, "%smatches none of the %.0f anyOf alternatives", "",
                           (double)json_array_size(v));
    }
    if ((v = json_object_get(s, "oneOf")) && json_is_array(v)) {
        size_t i;
        json_t *sub;
        int matches = 0;
        json_array_foreach(v, i, sub) {
            if (js_validate(c, sub, inst, path, pathlen, depth + 1) == 0)
                matches++;
        }
        if (matches != 1)
            return js_fail(c, path, "%smatches %.0f of the oneOf alternatives, not exactly one",
                           "", matches);
    }
    if ((v = json_object_get(s, "not"))) {
        if (js_validate(c, v, inst, path, pathlen, depth + 1) == 0)
            return js_fail(c, path, "%smatches a 'not' schema", "", 0);
    }
    return 0;
}

int wfh_jschema_validate(const json_t *schema, const json_t *inst, char *err, size_t errlen)
{
    char path[512] = "$";
    js_ctx c = {schema, err, errlen};
    return js_validate(&c, schema, inst, path, sizeof path, 0);
}

static int js_check(js_ctx *c, const json_t *s, int depth)
{
    if (depth > JS_MAX_DEPTH) {
        snprintf(c->err, c->errlen, "schema nests deeper than %d levels", JS_MAX_DEPTH);
        return -1;
    }
    if (json_is_boolean(s))
        return 0;
    if (!json_is_object(s)) {
        snprintf(c->err, c->errlen, "a schema must be an object or a boolean");
        return -1;
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)s, k, v) {
        if (strcmp(k, "$ref") == 0) {
            if (!json_is_string(v) || !js_resolve(c->root, json_string_value(v))) {
                snprintf(c->err, c->errlen, "$ref %s does not resolve (only local #/... refs)",
                         json_is_string(v) ? json_string_value(v) : "(not a string)");
                return -1;
            }
        } else if (strcmp(k, "pattern") == 0) {
            regex_t re;
            if (!json_is_string(v) || regcomp(&re, json_string_value(v), REG_EXTENDED | REG_NOSUB)) {
                snprintf(c->err, c->errlen, "pattern %s is not a regular expression",
                         json_is_string(v) ? json_string_value(v) : "(not a string)");
                return -1;
            }
            regfree(&re);
        } else if (strcmp(k, "type") == 0) {
            if (!json_is_string(v) && !json_is_array(v)) {
                snprintf(c->err, c->errlen, "'type' must be a string or a list");
                return -1;
            }
        } else if (strcmp(k, "properties") == 0 || strcmp(k, "$defs") == 0 ||
                   strcmp(k, "definitions") == 0) {
            const char *pk;
            json_t *ps;
            if (!json_is_object(v)) {
                snprintf(c->err, c->errlen, "'%s' must be an object", k);
                return -1;
            }
            json_object_foreach(v, pk, ps) {
                if (js_check(c, ps, depth + 1) < 0)
                    return -1;
            }
        } else if (strcmp(k, "items") == 0 || strcmp(k, "additionalProperties") == 0 ||
                   strcmp(k, "not") == 0) {
            if (js_check(c, v, depth + 1) < 0)
                return -1;
        } else if (strcmp(k, "allOf") == 0 || strcmp(k, "anyOf") == 0 ||
                   strcmp(k, "oneOf") == 0 || strcmp(k, "prefixItems") == 0) {
            size_t i;
            json_t *sub;
            if (!json_is_array(v)) {
                snprintf(c->err, c->errlen, "'%s' must be a list of schemas", k);
                return -1;
            }
            json_array_foreach(v, i, sub) {
                if (js_check(c, sub, depth + 1) < 0)
                    return -1;
            }
        }
    }
    return 0;
}

int wfh_jschema_check(const json_t *schema, char *err, size_t errlen)
{
    js_ctx c = {schema, err, errlen};
    return js_check(&c, schema, 0);
}
