/*
 * core/schema.c - the JSON Schema subset step input schemas use (see schema.h).
 *
 * Small on purpose: a plugin's input schema is checked before anything runs, so the
 * validator must be predictable and its messages must say where ("with.argv[2]") and
 * what ("expected string, got integer"). oneOf/anyOf try each branch silently and, when
 * none fits, report the closest branch's first problem so the user sees something
 * actionable rather than "no branch matched".
 */
#include "schema.h"

#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

typedef struct ctx {
    const wfh_schema_opts *o;
    char *path;          /* owned: the current JSON path, NUL-terminated */
    size_t len, cap;
    int count;           /* problems found */
    int silent;          /* count only (trying a oneOf/anyOf branch) */
    int err;             /* a negative code once something went wrong */
    char first[256];     /* the first problem, kept when silent */
} ctx;

static int path_push(ctx *c, const char *fmt, const char *s, size_t idx)
{
    char seg[160];
    int n = s ? snprintf(seg, sizeof seg, fmt, s) : snprintf(seg, sizeof seg, fmt, idx);
    if (n < 0)
        return WFH_EINVAL;
    size_t add = (size_t)n < sizeof seg ? (size_t)n : sizeof seg - 1;
    if (c->len + add + 1 > c->cap) {
        size_t cap = (c->len + add + 1) * 2;
        char *p = realloc(c->path, cap);
        if (!p)
            return c->err = WFH_ENOMEM;
        c->path = p;
        c->cap = cap;
    }
    memcpy(c->path + c->len, seg, add);
    c->len += add;
    c->path[c->len] = '\0';
    return 0;
}

static void problem(ctx *c, const json_t *inst, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void problem(ctx *c, const json_t *inst, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* truncating the remembered message is fine: it is a summary */
    if ((c->count == 0 || !c->first[0]) &&
        snprintf(c->first, sizeof c->first, "%s: %s", c->path, msg) < 0)
        c->first[0] = '\0';
    c->count++;
    if (!c->silent && c->o && c->o->report)
        c->o->report(c->o->ud, inst, c->path, msg);
}

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "object";
    case JSON_ARRAY: return "array";
    case JSON_STRING: return "string";
    case JSON_INTEGER: return "integer";
    case JSON_REAL: return "number";
    case JSON_TRUE:
    case JSON_FALSE: return "boolean";
    default: return "null";
    }
}

static int type_matches(const char *t, const json_t *v, int unknown)
{
    if (unknown == WFH_SCHEMA_ANY_STRING)
        return !strcmp(t, "string");
    if (!strcmp(t, "number"))
        return json_is_number(v);
    if (!strcmp(t, "integer")) {
        if (json_is_integer(v))
            return 1;
        if (json_is_real(v)) {
            double d = json_real_value(v);
            return d == (double)(long long)d;
        }
        return 0;
    }
    return !strcmp(t, type_name(v));
}

static size_t utf8_len(const char *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80)
            k++;
    return k;
}

static void check(ctx *c, const json_t *s, const json_t *v);

/* Runs @p s on @p v silently; returns the number of problems, and the first in @p first. */
static int try_branch(ctx *c, const json_t *s, const json_t *v, char *first, size_t flen)
{
    ctx sub = *c;
    sub.silent = 1;
    sub.count = 0;
    sub.first[0] = '\0';
    /* the path buffer is shared: branches push and pop symmetrically */
    check(&sub, s, v);
    c->path = sub.path;
    c->cap = sub.cap;
    if (sub.err < 0)
        c->err = sub.err;
    if (first)
        snprintf(first, flen, "%s", sub.first);
    return sub.count;
}

static void check_type(ctx *c, const json_t *t, const json_t *v, int unknown)
{
    if (json_is_string(t)) {
        if (!type_matches(json_string_value(t), v, unknown))
            problem(c, v, "expected %s, got %s", json_string_value(t),
                    unknown == WFH_SCHEMA_ANY_STRING ? "string" : type_name(v));
        return;
    }
    if (!json_is_array(t))
        return;
    size_t i;
    const json_t *x;
    char want[256] = "";
    json_array_foreach(t, i, x) {
        if (json_is_string(x) && type_matches(json_string_value(x), v, unknown))
            return;
        if (json_is_string(x)) {
            size_t l = strlen(want);
            snprintf(want + l, sizeof want - l, "%s%s", i ? " or " : "", json_string_value(x));
        }
    }
    problem(c, v, "expected %s, got %s", want,
            unknown == WFH_SCHEMA_ANY_STRING ? "string" : type_name(v));
}

static void check_object(ctx *c, const json_t *s, const json_t *v)
{
    const json_t *props = json_object_get(s, "properties");
    const json_t *addl = json_object_get(s, "additionalProperties");
    const json_t *req = json_object_get(s, "required");
    size_t base = c->len;
    if (json_is_array(req)) {
        size_t i;
        const json_t *r;
        json_array_foreach(req, i, r) {
            if (json_is_string(r) && !json_object_get(v, json_string_value(r)))
                problem(c, v, "missing required property '%s'", json_string_value(r));
        }
    }
    const char *key;
    const json_t *item;
    json_object_foreach((json_t *)v, key, item) {
        const json_t *ps = json_is_object(props) ? json_object_get(props, key) : NULL;
        if (path_push(c, ".%s", key, 0) < 0)
            return;
        if (ps) {
            check(c, ps, item);
        } else if (json_is_false(addl)) {
            char allowed[256] = "";
            const char *pk;
            const json_t *pv;
            if (json_is_object(props))
                json_object_foreach((json_t *)props, pk, pv) {
                    size_t l = strlen(allowed);
                    if (l + strlen(pk) + 8 >= sizeof allowed) {
                        snprintf(allowed + l, sizeof allowed - l, ", ...");
                        break;
                    }
                    snprintf(allowed + l, sizeof allowed - l, "%s%s", l ? ", " : "", pk);
                }
            problem(c, item, "unknown property (allowed: %s)", allowed[0] ? allowed : "none");
        } else if (json_is_object(addl)) {
            check(c, addl, item);
        }
        c->len = base;
        c->path[base] = '\0';
    }
}

static void check_array(ctx *c, const json_t *s, const json_t *v)
{
    const json_t *items = json_object_get(s, "items");
    const json_t *mn = json_object_get(s, "minItems"), *mx = json_object_get(s, "maxItems");
    size_t n = json_array_size(v);
    if (json_is_integer(mn) && (json_int_t)n < json_integer_value(mn))
        problem(c, v, "expected at least %lld items, got %zu",
                (long long)json_integer_value(mn), n);
    if (json_is_integer(mx) && (json_int_t)n > json_integer_value(mx))
        problem(c, v, "expected at most %lld items, got %zu", (long long)json_integer_value(mx),
                n);
    if (!json_is_object(items) && !json_is_boolean(items))
        return;
    size_t base = c->len;
    for (size_t i = 0; i < n; i++) {
        if (path_push(c, "[%zu]", NULL, i) < 0)
            return;
        check(c, items, json_array_get(v, i));
        c->len = base;
        c->path[base] = '\0';
    }
}

static void check_string(ctx *c, const json_t *s, const json_t *v)
{
    const json_t *mn = json_object_get(s, "minLength"), *mx = json_object_get(s, "maxLength");
    size_t n = utf8_len(json_string_value(v), json_string_length(v));
    if (json_is_integer(mn) && (json_int_t)n < json_integer_value(mn))
        problem(c, v, "expected at least %lld characters, got %zu",
                (long long)json_integer_value(mn), n);
    if (json_is_integer(mx) && (json_int_t)n > json_integer_value(mx))
        problem(c, v, "expected at most %lld characters, got %zu",
                (long long)json_integer_value(mx), n);
    const json_t *pat = json_object_get(s, "pattern");
    if (json_is_string(pat)) {
        regex_t re;
        if (regcomp(&re, json_string_value(pat), REG_EXTENDED | REG_NOSUB) != 0) {
            problem(c, v, "schema pattern '%s' is not a valid regular expression",
                    json_string_value(pat));
            return;
        }
        if (strlen(json_string_value(v)) != json_string_length(v) ||
            regexec(&re, json_string_value(v), 0, NULL, 0) != 0)
            problem(c, v, "does not match pattern '%s'", json_string_value(pat));
        regfree(&re);
    }
}

static void check_number(ctx *c, const json_t *s, const json_t *v)
{
    double d = json_number_value(v);
    const json_t *k;
    if ((k = json_object_get(s, "minimum")) && json_is_number(k) && d < json_number_value(k))
        problem(c, v, "must be >= %g, got %g", json_number_value(k), d);
    if ((k = json_object_get(s, "maximum")) && json_is_number(k) && d > json_number_value(k))
        problem(c, v, "must be <= %g, got %g", json_number_value(k), d);
    if ((k = json_object_get(s, "exclusiveMinimum")) && json_is_number(k) &&
        d <= json_number_value(k))
        problem(c, v, "must be > %g, got %g", json_number_value(k), d);
    if ((k = json_object_get(s, "exclusiveMaximum")) && json_is_number(k) &&
        d >= json_number_value(k))
        problem(c, v, "must be < %g, got %g", json_number_value(k), d);
}

static void check_combinators(ctx *c, const json_t *s, const json_t *v)
{
    const json_t *all = json_object_get(s, "allOf");
    size_t i;
    const json_t *b;
    if (json_is_array(all))
        json_array_foreach(all, i, b) check(c, b, v);
    const json_t *any = json_object_get(s, "anyOf"), *one = json_object_get(s, "oneOf");
    if (json_is_array(any) && json_array_size(any)) {
        int best = -1;
        char bestmsg[256] = "", msg[256];
        json_array_foreach(any, i, b) {
            int n = try_branch(c, b, v, msg, sizeof msg);
            if (n == 0)
                goto one;
            if (best < 0 || n < best) {
                best = n;
                snprintf(bestmsg, sizeof bestmsg, "%s", msg);
            }
        }
        problem(c, v, "matches none of the allowed forms (anyOf); closest: %s", bestmsg);
    }
one:
    if (json_is_array(one) && json_array_size(one)) {
        int best = -1, matched = 0;
        char bestmsg[256] = "", msg[256];
        json_array_foreach(one, i, b) {
            int n = try_branch(c, b, v, msg, sizeof msg);
            if (n == 0)
                matched++;
            else if (best < 0 || n < best) {
                best = n;
                snprintf(bestmsg, sizeof bestmsg, "%s", msg);
            }
        }
        if (matched == 0)
            problem(c, v, "matches none of the allowed forms (oneOf); closest: %s", bestmsg);
        else if (matched > 1)
            problem(c, v, "matches %d of the allowed forms, exactly one is required (oneOf)",
                    matched);
    }
    const json_t *not = json_object_get(s, "not");
    if (json_is_object(not) && try_branch(c, not, v, NULL, 0) == 0)
        problem(c, v, "matches a form that is not allowed (not)");
}

static void check(ctx *c, const json_t *s, const json_t *v)
{
    if (c->err < 0)
        return;
    if (json_is_true(s))
        return;
    if (json_is_false(s)) {
        problem(c, v, "no value is allowed here");
        return;
    }
    if (!json_is_object(s))
        return;
    int unknown = c->o && c->o->unknown ? c->o->unknown(c->o->ud, v) : WFH_SCHEMA_KNOWN;
    if (unknown == WFH_SCHEMA_ANY)
        return;
    int before = c->count;
    const json_t *t = json_object_get(s, "type");
    if (t)
        check_type(c, t, v, unknown);
    if (c->count != before)
        return; /* wrong type: the keyword checks below would only add noise */
    if (unknown == WFH_SCHEMA_KNOWN) {
        const json_t *en = json_object_get(s, "enum");
        if (json_is_array(en)) {
            size_t i;
            const json_t *x;
            int ok = 0;
            json_array_foreach(en, i, x) if (json_equal((json_t *)x, (json_t *)v)) ok = 1;
            if (!ok) {
                char *txt = json_dumps(en, JSON_COMPACT | JSON_ENCODE_ANY);
                problem(c, v, "must be one of %s", txt ? txt : "the allowed values");
                free(txt);
            }
        }
        const json_t *cn = json_object_get(s, "const");
        if (cn && !json_equal((json_t *)cn, (json_t *)v)) {
            char *txt = json_dumps(cn, JSON_COMPACT | JSON_ENCODE_ANY);
            problem(c, v, "must be %s", txt ? txt : "the constant value");
            free(txt);
        }
        if (json_is_object(v))
            check_object(c, s, v);
        else if (json_is_array(v))
            check_array(c, s, v);
        else if (json_is_string(v))
            check_string(c, s, v);
        else if (json_is_number(v))
            check_number(c, s, v);
    }
    check_combinators(c, s, v);
}

int wfh_schema_validate(const json_t *schema, const json_t *inst, const wfh_schema_opts *o)
{
    ctx c;
    memset(&c, 0, sizeof c);
    c.o = o;
    if (path_push(&c, "%s", o && o->root ? o->root : "$", 0) < 0)
        return wfh_error_set(WFH_ENOMEM, "out of memory validating inputs");
    check(&c, schema, inst);
    free(c.path);
    if (c.err < 0)
        return wfh_error_set(c.err, "out of memory validating inputs");
    return c.count;
}

/* Which keywords hold which JSON type; everything else is an annotation. */
static int check_schema_at(const json_t *s, char *path, size_t len, size_t cap);

static int sub(const json_t *s, char *path, size_t len, size_t cap, const char *seg)
{
    int n = snprintf(path + len, cap - len, "%s", seg);
    if (n < 0 || (size_t)n >= cap - len)
        return wfh_error_set(WFH_EINVAL, "input schema nested too deeply at %s", path);
    return check_schema_at(s, path, len + (size_t)n, cap);
}

static int check_schema_at(const json_t *s, char *path, size_t len, size_t cap)
{
    if (json_is_boolean(s))
        return 0;
    if (!json_is_object(s))
        return wfh_error_set(WFH_EINVAL, "input schema: %s: a schema must be an object or a boolean",
                             path);
    static const char *const types[] = {"null", "boolean", "integer", "number",
                                        "string", "array", "object", NULL};
    const json_t *t = json_object_get(s, "type");
    if (t) {
        const json_t *one = t;
        size_t n = json_is_array(t) ? json_array_size(t) : 1;
        for (size_t i = 0; i < n; i++) {
            if (json_is_array(t))
                one = json_array_get(t, i);
            int ok = 0;
            for (size_t k = 0; json_is_string(one) && types[k]; k++)
                ok |= !strcmp(types[k], json_string_value(one));
            if (!ok)
                return wfh_error_set(WFH_EINVAL, "input schema: %s.type: unknown type", path);
        }
    }
    static const char *const ints[] = {"minLength", "maxLength", "minItems", "maxItems", NULL};
    for (size_t k = 0; ints[k]; k++) {
        const json_t *x = json_object_get(s, ints[k]);
        if (x && (!json_is_integer(x) || json_integer_value(x) < 0))
            return wfh_error_set(WFH_EINVAL, "input schema: %s.%s: expected a non-negative integer",
                                 path, ints[k]);
    }
    static const char *const nums[] = {"minimum", "maximum", "exclusiveMinimum",
                                       "exclusiveMaximum", NULL};
    for (size_t k = 0; nums[k]; k++) {
        const json_t *x = json_object_get(s, nums[k]);
        if (x && !json_is_number(x))
            return wfh_error_set(WFH_EINVAL, "input schema: %s.%s: expected a number", path,
                                 nums[k]);
    }
    const json_t *req = json_object_get(s, "required");
    if (req) {
        size_t i;
        const json_t *r;
        if (!json_is_array(req))
            return wfh_error_set(WFH_EINVAL, "input schema: %s.required: expected a list", path);
        json_array_foreach(req, i, r) if (!json_is_string(r)) return wfh_error_set(
            WFH_EINVAL, "input schema: %s.required: expected names", path);
    }
    const json_t *en = json_object_get(s, "enum");
    if (en && !json_is_array(en))
        return wfh_error_set(WFH_EINVAL, "input schema: %s.enum: expected a list", path);
    const json_t *pat = json_object_get(s, "pattern");
    if (pat) {
        regex_t re;
        if (!json_is_string(pat) || regcomp(&re, json_string_value(pat), REG_EXTENDED | REG_NOSUB))
            return wfh_error_set(WFH_EINVAL, "input schema: %s.pattern: invalid regular expression",
                                 path);
        regfree(&re);
    }
    const json_t *props = json_object_get(s, "properties");
    if (props) {
        if (!json_is_object(props))
            return wfh_error_set(WFH_EINVAL, "input schema: %s.properties: expected an object", path);
        const char *k;
        const json_t *v;
        json_object_foreach((json_t *)props, k, v) {
            char seg[128];
            snprintf(seg, sizeof seg, ".properties.%s", k);
            int err = sub(v, path, len, cap, seg);
            if (err < 0)
                return err;
        }
    }
    static const char *const subs[] = {"additionalProperties", "items", "not", NULL};
    for (size_t k = 0; subs[k]; k++) {
        const json_t *x = json_object_get(s, subs[k]);
        char seg[64];
        snprintf(seg, sizeof seg, ".%s", subs[k]);
        if (x) {
            int err = sub(x, path, len, cap, seg);
            if (err < 0)
                return err;
        }
    }
    static const char *const lists[] = {"oneOf", "anyOf", "allOf", NULL};
    for (size_t k = 0; lists[k]; k++) {
        const json_t *x = json_object_get(s, lists[k]);
        if (!x)
            continue;
        if (!json_is_array(x))
            return wfh_error_set(WFH_EINVAL, "input schema: %s.%s: expected a list", path,
                                 lists[k]);
        size_t i;
        const json_t *b;
        json_array_foreach(x, i, b) {
            char seg[64];
            snprintf(seg, sizeof seg, ".%s[%zu]", lists[k], i);
            int err = sub(b, path, len, cap, seg);
            if (err < 0)
                return err;
        }
    }
    return 0;
}

int wfh_schema_check(const json_t *schema)
{
    char path[1024] = "$";
    return check_schema_at(schema, path, 1, sizeof path);
}
