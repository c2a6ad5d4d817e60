/*
 * registry/index.c - parse and write index.json (see index.h). Parsing is strict on
 * purpose: an index is written by wfhost or by an operator's editor and then signed, so
 * anything unexpected is more likely an attack or a mistake than a feature.
 */
#include "index.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"

int wfh_reg_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64 || !(s[0] >= 'a' && s[0] <= 'z'))
        return 0;
    for (size_t i = 1; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* MAJOR.MINOR.PATCH, decimal without leading zeros, each <= 999999. */
int wfh_reg_version_ok(const char *s, unsigned *major)
{
    unsigned part[3];
    const char *p = s;
    for (int i = 0; i < 3; i++) {
        if (*p < '0' || *p > '9' || (*p == '0' && p[1] >= '0' && p[1] <= '9'))
            return 0;
        unsigned v = 0;
        int digits = 0;
        while (*p >= '0' && *p <= '9') {
            if (++digits > 6)
                return 0;
            v = v * 10 + (unsigned)(*p++ - '0');
        }
        part[i] = v;
        if (i < 2 && *p++ != '.')
            return 0;
    }
    if (*p != '\0')
        return 0;
    if (major)
        *major = part[0];
    return 1;
}

const char *wfh_reg_state_name(int state)
{
    switch (state) {
    case WFH_PSTATE_ACTIVE: return "active";
    case WFH_PSTATE_DISABLED: return "disabled";
    case WFH_PSTATE_YANKED: return "yanked";
    default: return "?";
    }
}

static int state_parse(const char *s)
{
    if (!strcmp(s, "active"))
        return WFH_PSTATE_ACTIVE;
    if (!strcmp(s, "disabled"))
        return WFH_PSTATE_DISABLED;
    if (!strcmp(s, "yanked"))
        return WFH_PSTATE_YANKED;
    return -1;
}

int wfh_reg_time_parse(const char *s, time_t *out)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    if (strlen(s) != 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
        s[16] != ':' || s[19] != 'Z')
        return -1;
    static const int pos[] = {0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18};
    for (size_t i = 0; i < sizeof pos / sizeof pos[0]; i++)
        if (s[pos[i]] < '0' || s[pos[i]] > '9')
            return -1;
#define NUM2(o) ((s[o] - '0') * 10 + (s[(o) + 1] - '0'))
    tm.tm_year = NUM2(0) * 100 + NUM2(2) - 1900;
    tm.tm_mon = NUM2(5) - 1;
    tm.tm_mday = NUM2(8);
    tm.tm_hour = NUM2(11);
    tm.tm_min = NUM2(14);
    tm.tm_sec = NUM2(17);
#undef NUM2
    if (tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
        tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
        return -1;
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return -1;
    /* Round trip refuses dates such as Feb 31 that timegm would normalise. */
    char back[21];
    wfh_reg_time_format(t, back);
    if (strcmp(back, s) != 0)
        return -1;
    *out = t;
    return 0;
}

void wfh_reg_time_format(time_t t, char out[21])
{
    struct tm tm;
    if (!gmtime_r(&t, &tm) || strftime(out, 21, "%Y-%m-%dT%H:%M:%SZ", &tm) != 20)
        strcpy(out, "1970-01-01T00:00:00Z");
}

wfh_index *wfh_index_new(void)
{
    return calloc(1, sizeof(wfh_index));
}

static void type_clear(wfh_reg_type *t)
{
    free(t->name);
    free(t->description);
    json_decref(t->input_schema);
    json_decref(t->outputs);
    json_decref(t->capabilities);
    memset(t, 0, sizeof *t);
}

void wfh_reg_plugin_clear(wfh_reg_plugin *p)
{
    if (!p)
        return;
    free(p->name);
    free(p->version);
    free(p->description);
    for (size_t i = 0; i < p->n_types; i++)
        type_clear(&p->types[i]);
    free(p->types);
    memset(p, 0, sizeof *p);
}

void wfh_index_free(wfh_index *ix)
{
    if (!ix)
        return;
    for (size_t i = 0; i < ix->n_plugins; i++)
        wfh_reg_plugin_clear(&ix->plugins[i]);
    free(ix->plugins);
    free(ix);
}

static char *dup_or_null(const char *s, int *oom)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *oom = 1;
    return d;
}

int wfh_reg_plugin_copy(wfh_reg_plugin *dst, const wfh_reg_plugin *src)
{
    int oom = 0;
    *dst = *src;
    dst->name = dup_or_null(src->name, &oom);
    dst->version = dup_or_null(src->version, &oom);
    dst->description = dup_or_null(src->description, &oom);
    dst->types = calloc(src->n_types ? src->n_types : 1, sizeof *dst->types);
    dst->n_types = 0;
    if (!dst->types)
        oom = 1;
    for (size_t i = 0; !oom && i < src->n_types; i++) {
        wfh_reg_type *d = &dst->types[i];
        const wfh_reg_type *s = &src->types[i];
        d->name = dup_or_null(s->name, &oom);
        d->description = dup_or_null(s->description, &oom);
        d->input_schema = s->input_schema ? json_deep_copy(s->input_schema) : NULL;
        d->outputs = s->outputs ? json_deep_copy(s->outputs) : NULL;
        d->capabilities = s->capabilities ? json_deep_copy(s->capabilities) : NULL;
        dst->n_types = i + 1;
        if ((s->input_schema && !d->input_schema) || (s->outputs && !d->outputs) ||
            (s->capabilities && !d->capabilities))
            oom = 1;
    }
    if (oom) {
        wfh_reg_plugin_clear(dst);
        return wfh_error_set(WFH_ENOMEM, "index: out of memory");
    }
    return 0;
}

int wfh_index_add(wfh_index *ix, const wfh_reg_plugin *p)
{
    wfh_reg_plugin *grown = realloc(ix->plugins, (ix->n_plugins + 1) * sizeof *grown);
    if (!grown)
        return wfh_error_set(WFH_ENOMEM, "index: out of memory");
    ix->plugins = grown;
    int err = wfh_reg_plugin_copy(&ix->plugins[ix->n_plugins], p);
    if (err < 0)
        return err;
    ix->n_plugins++;
    return 0;
}

void wfh_index_remove_at(wfh_index *ix, size_t i)
{
    if (i >= ix->n_plugins)
        return;
    wfh_reg_plugin_clear(&ix->plugins[i]);
    memmove(&ix->plugins[i], &ix->plugins[i + 1], (ix->n_plugins - i - 1) * sizeof *ix->plugins);
    ix->n_plugins--;
}

/* ---- parsing ---- */

typedef struct {
    const char *what; /* borrowed: the file, for messages */
    char where[160];  /* the JSON path being checked */
} pctx;

static int perr(const pctx *c, const char *msg)
{
    return wfh_error_set(WFH_EPARSE, "%s: %s: %s", c->what, c->where, msg);
}

/* Only the listed keys may appear; @p required lists those that must. */
static int check_keys(const pctx *c, json_t *obj, const char *const *allowed,
                      const char *const *required)
{
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v) {
        int ok = 0;
        for (size_t i = 0; allowed[i]; i++)
            ok |= !strcmp(k, allowed[i]);
        if (!ok)
            return wfh_error_set(WFH_EPARSE, "%s: %s: unknown key '%.64s'", c->what, c->where, k);
    }
    for (size_t i = 0; required[i]; i++)
        if (!json_object_get(obj, required[i]))
            return wfh_error_set(WFH_EPARSE, "%s: %s: missing key '%s'", c->what, c->where,
                                 required[i]);
    return 0;
}

static int get_uint(const pctx *c, json_t *obj, const char *key, uint64_t max, uint64_t *out)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0 ||
        (uint64_t)json_integer_value(v) > max)
        return wfh_error_set(WFH_EPARSE, "%s: %s: '%s' must be an integer in 0..%llu", c->what,
                             c->where, key, (unsigned long long)max);
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

static int get_str(const pctx *c, json_t *obj, const char *key, size_t maxlen, int optional,
                   const char **out)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v && optional)
        return 0;
    if (!json_is_string(v) || json_string_length(v) > maxlen ||
        strlen(json_string_value(v)) != json_string_length(v))
        return wfh_error_set(WFH_EPARSE, "%s: %s: '%s' must be a string of at most %zu bytes "
                             "without NUL", c->what, c->where, key, maxlen);
    *out = json_string_value(v);
    return 0;
}

static int get_time(const pctx *c, json_t *obj, const char *key, time_t *out)
{
    const char *s;
    int err = get_str(c, obj, key, 32, 0, &s);
    if (err < 0)
        return err;
    if (wfh_reg_time_parse(s, out) != 0)
        return wfh_error_set(WFH_EPARSE, "%s: %s: '%s' must be YYYY-MM-DDTHH:MM:SSZ (UTC)",
                             c->what, c->where, key);
    return 0;
}

static int get_hex(const pctx *c, json_t *obj, const char *key, char out[65])
{
    const char *s;
    int err = get_str(c, obj, key, 64, 0, &s);
    if (err < 0)
        return err;
    if (strlen(s) != 64 || strspn(s, "0123456789abcdef") != 64)
        return wfh_error_set(WFH_EPARSE, "%s: %s: '%s' must be 64 lowercase hex digits",
                             c->what, c->where, key);
    memcpy(out, s, 65);
    return 0;
}

static int parse_type(pctx *c, json_t *obj, wfh_reg_type *t)
{
    static const char *const allowed[] = {"name", "description", "input_schema", "outputs",
                                          "capabilities", NULL};
    static const char *const required[] = {"name", "input_schema", NULL};
    int err;
    const char *name, *desc;
    if (!json_is_object(obj))
        return perr(c, "must be an object");
    if ((err = check_keys(c, obj, allowed, required)) < 0 ||
        (err = get_str(c, obj, "name", 64, 0, &name)) < 0 ||
        (err = get_str(c, obj, "description", 1024, 1, &desc)) < 0)
        return err;
    if (!wfh_reg_name_ok(name))
        return perr(c, "step type name must match [a-z][a-z0-9_-]{0,63}");
    json_t *schema = json_object_get(obj, "input_schema");
    json_t *outputs = json_object_get(obj, "outputs");
    json_t *caps = json_object_get(obj, "capabilities");
    if (!json_is_object(schema))
        return perr(c, "'input_schema' must be an object");
    if (outputs && !json_is_object(outputs))
        return perr(c, "'outputs' must be an object");
    if (caps && !json_is_object(caps))
        return perr(c, "'capabilities' must be an object");
    t->name = strdup(name);
    t->description = desc ? strdup(desc) : NULL;
    t->input_schema = json_incref(schema);
    t->outputs = outputs ? json_incref(outputs) : json_object();
    t->capabilities = caps ? json_incref(caps) : json_object();
    if (!t->name || (desc && !t->description) || !t->outputs || !t->capabilities)
        return wfh_error_set(WFH_ENOMEM, "%s: out of memory", c->what);
    return 0;
}

static int parse_plugin(pctx *c, json_t *obj, wfh_reg_plugin *p)
{
    static const char *const allowed[] = {"name", "version", "description", "abi", "blake2b256",
                                          "sha256", "size", "state", "types", NULL};
    static const char *const required[] = {"name", "version", "abi", "blake2b256", "sha256",
                                           "size", "state", "types", NULL};
    static const char *const abi_keys[] = {"major", "minor", NULL};
    int err;
    const char *name, *version, *desc, *state;
    uint64_t v;
    if (!json_is_object(obj))
        return perr(c, "must be an object");
    if ((err = check_keys(c, obj, allowed, required)) < 0 ||
        (err = get_str(c, obj, "name", 64, 0, &name)) < 0 ||
        (err = get_str(c, obj, "version", 32, 0, &version)) < 0 ||
        (err = get_str(c, obj, "description", 1024, 1, &desc)) < 0 ||
        (err = get_str(c, obj, "state", 16, 0, &state)) < 0)
        return err;
    if (!wfh_reg_name_ok(name))
        return perr(c, "plugin name must match [a-z][a-z0-9_-]{0,63}");
    if (!wfh_reg_version_ok(version, &p->version_major))
        return perr(c, "version must be MAJOR.MINOR.PATCH");
    if ((p->state = state_parse(state)) < 0)
        return perr(c, "state must be active, disabled or yanked");
    if ((err = get_hex(c, obj, "blake2b256", p->blake2b256)) < 0 ||
        (err = get_hex(c, obj, "sha256", p->sha256)) < 0 ||
        (err = get_uint(c, obj, "size", WFH_BLOB_MAX_BYTES, &p->size)) < 0)
        return err;
    if (p->size == 0)
        return perr(c, "size must be positive");
    json_t *abi = json_object_get(obj, "abi");
    if (!json_is_object(abi))
        return perr(c, "'abi' must be an object {major, minor}");
    if ((err = check_keys(c, abi, abi_keys, abi_keys)) < 0 ||
        (err = get_uint(c, abi, "major", 65535, &v)) < 0)
        return err;
    p->abi_major = (unsigned)v;
    if ((err = get_uint(c, abi, "minor", 65535, &v)) < 0)
        return err;
    p->abi_minor = (unsigned)v;
    p->name = strdup(name);
    p->version = strdup(version);
    p->description = desc ? strdup(desc) : NULL;
    if (!p->name || !p->version || (desc && !p->description))
        return wfh_error_set(WFH_ENOMEM, "%s: out of memory", c->what);
    json_t *types = json_object_get(obj, "types");
    if (!json_is_array(types) || json_array_size(types) == 0 || json_array_size(types) > 256)
        return perr(c, "'types' must be a non-empty array (at most 256)");
    p->types = calloc(json_array_size(types), sizeof *p->types);
    if (!p->types)
        return wfh_error_set(WFH_ENOMEM, "%s: out of memory", c->what);
    size_t base = strlen(c->where);
    for (size_t i = 0; i < json_array_size(types); i++) {
        snprintf(c->where + base, sizeof c->where - base, ".types[%zu]", i);
        p->n_types = i + 1;
        if ((err = parse_type(c, json_array_get(types, i), &p->types[i])) < 0)
            return err;
        for (size_t j = 0; j < i; j++)
            if (!strcmp(p->types[j].name, p->types[i].name))
                return perr(c, "duplicate step type name");
    }
    c->where[base] = '\0';
    return 0;
}

int wfh_index_parse(const char *text, size_t len, const char *what, wfh_index **out)
{
    static const char *const allowed[] = {"format", "seq", "issued", "expires", "keys_version",
                                          "threshold", "plugins", NULL};
    int err = 0;
    json_error_t jerr;
    pctx c = {.what = what, .where = "index"};
    wfh_index *ix = NULL; /* owned until handed to *out */
    json_t *root = NULL;  /* owned */
    uint64_t v;
    *out = NULL;
    if (len > WFH_INDEX_MAX_BYTES)
        return wfh_error_set(WFH_ESECURITY, "%s: over the %u-byte limit", what,
                             WFH_INDEX_MAX_BYTES);
    root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return wfh_error_set(WFH_EPARSE, "%s:%d:%d: %s", what, jerr.line, jerr.column, jerr.text);
    if (!json_is_object(root)) {
        err = perr(&c, "must be a JSON object");
        goto done;
    }
    if ((err = check_keys(&c, root, allowed, allowed)) < 0 ||
        (err = get_uint(&c, root, "format", 1000, &v)) < 0)
        goto done;
    if (v != WFH_INDEX_FORMAT) {
        err = wfh_error_set(WFH_EPARSE, "%s: format %llu is not supported (this wfhost reads "
                            "format %d)", what, (unsigned long long)v, WFH_INDEX_FORMAT);
        goto done;
    }
    ix = wfh_index_new();
    if (!ix) {
        err = wfh_error_set(WFH_ENOMEM, "%s: out of memory", what);
        goto done;
    }
    if ((err = get_uint(&c, root, "seq", (uint64_t)INT64_MAX, &ix->seq)) < 0 ||
        (err = get_uint(&c, root, "keys_version", (uint64_t)INT64_MAX, &ix->keys_version)) < 0 ||
        (err = get_uint(&c, root, "threshold", 16, &v)) < 0 ||
        (err = get_time(&c, root, "issued", &ix->issued)) < 0 ||
        (err = get_time(&c, root, "expires", &ix->expires)) < 0)
        goto done;
    ix->threshold = (unsigned)v;
    if (ix->seq == 0 || ix->keys_version == 0 || ix->threshold == 0) {
        err = perr(&c, "seq, keys_version and threshold must be at least 1");
        goto done;
    }
    json_t *plugins = json_object_get(root, "plugins");
    if (!json_is_array(plugins) || json_array_size(plugins) > WFH_INDEX_MAX_PLUGINS) {
        err = perr(&c, "'plugins' must be an array of at most 1024 entries");
        goto done;
    }
    ix->plugins = calloc(json_array_size(plugins) + 1, sizeof *ix->plugins);
    if (!ix->plugins) {
        err = wfh_error_set(WFH_ENOMEM, "%s: out of memory", what);
        goto done;
    }
    for (size_t i = 0; i < json_array_size(plugins); i++) {
        snprintf(c.where, sizeof c.where, "plugins[%zu]", i);
        ix->n_plugins = i + 1;
        if ((err = parse_plugin(&c, json_array_get(plugins, i), &ix->plugins[i])) < 0)
            goto done;
        for (size_t j = 0; j < i; j++)
            if (!strcmp(ix->plugins[j].name, ix->plugins[i].name) &&
                ix->plugins[j].version_major == ix->plugins[i].version_major) {
                err = perr(&c, "a plugin with this name and major version is listed twice");
                goto done;
            }
    }
    *out = ix;
    ix = NULL;
done:
    wfh_index_free(ix);
    json_decref(root);
    return err;
}

/* ---- writing ---- */

static json_t *plugin_json(const wfh_reg_plugin *p)
{
    json_t *types = json_array();
    for (size_t i = 0; types && i < p->n_types; i++) {
        const wfh_reg_type *t = &p->types[i];
        json_t *o = json_pack("{s:s}", "name", t->name);
        if (o && t->description)
            json_object_set_new(o, "description", json_string(t->description));
        if (o) {
            json_object_set(o, "input_schema", t->input_schema);
            json_object_set(o, "outputs", t->outputs ? t->outputs : json_object());
            json_object_set(o, "capabilities", t->capabilities ? t->capabilities : json_object());
        }
        if (!o || json_array_append_new(types, o) != 0) {
            json_decref(types);
            return NULL;
        }
    }
    if (!types)
        return NULL;
    json_t *o = json_pack("{s:s, s:s, s:{s:I, s:I}, s:s, s:s, s:I, s:s, s:o}", "name", p->name,
                          "version", p->version, "abi", "major", (json_int_t)p->abi_major,
                          "minor", (json_int_t)p->abi_minor, "blake2b256", p->blake2b256,
                          "sha256", p->sha256, "size", (json_int_t)p->size, "state",
                          wfh_reg_state_name(p->state), "types", types);
    if (o && p->description)
        json_object_set_new(o, "description", json_string(p->description));
    return o;
}

int wfh_index_serialize(const wfh_index *ix, char **out, size_t *len)
{
    int err = 0;
    char issued[21], expires[21];
    wfh_reg_time_format(ix->issued, issued);
    wfh_reg_time_format(ix->expires, expires);
    json_t *plugins = json_array();
    json_t *root = NULL;
    *out = NULL;
    for (size_t i = 0; plugins && i < ix->n_plugins; i++) {
        json_t *p = plugin_json(&ix->plugins[i]);
        if (!p || json_array_append_new(plugins, p) != 0) {
            json_decref(plugins);
            plugins = NULL;
        }
    }
    if (plugins)
        root = json_pack("{s:i, s:I, s:s, s:s, s:I, s:i, s:o}", "format", WFH_INDEX_FORMAT,
                         "seq", (json_int_t)ix->seq, "issued", issued, "expires", expires,
                         "keys_version", (json_int_t)ix->keys_version, "threshold",
                         (int)ix->threshold, "plugins", plugins);
    char *text = root ? json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
    if (!text) {
        err = wfh_error_set(WFH_ENOMEM, "index: out of memory while writing");
        goto done;
    }
    size_t n = strlen(text);
    char *withnl = realloc(text, n + 2);
    if (!withnl) {
        free(text);
        err = wfh_error_set(WFH_ENOMEM, "index: out of memory while writing");
        goto done;
    }
    withnl[n] = '\n';
    withnl[n + 1] = '\0';
    *out = withnl;
    *len = n + 1;
done:
    json_decref(root);
    return err;
}
