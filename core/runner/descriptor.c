/*
 * core/runner/descriptor.c - load a plugin and hold its descriptor to the ABI rules.
 *
 * The descriptor is the plugin's promise about itself; this file is where the host
 * decides whether to believe it. It applies the extensible-struct rules from
 * include/wfhost/plugin.h (copy up to the plugin's size; a longer struct only with an
 * all-zero unknown tail), the version rule (majors equal, plugin minor <= ours), and
 * checks every name and required member, so that what reaches the catalog or a step
 * call is well formed. Refusals say which versions are involved and what to do.
 */
#include "runner.h"

#include <dlfcn.h>
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* No real descriptor is anywhere near this; a larger size is a corrupt struct, and
 * reading its "tail" would walk off the plugin's data. */
#define MAX_STRUCT_SIZE 4096
#define MAX_STEP_TYPES 256
#define MAX_NAME 64

const char *wfh_runner_basename(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

int wfh_runner_write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, buf, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        buf += w;
        len -= (size_t)w;
    }
    return 0;
}

int wfh_runner_read_all(int fd, char **out, size_t *out_len)
{
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    if (!buf)
        return -1;
    for (;;) {
        if (len == cap) {
            if (cap >= WFH_RUNNER_REQUEST_MAX) {
                free(buf);
                errno = EFBIG;
                return -1;
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                return -1;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + len, cap - len);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            free(buf);
            return -1;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    *out = buf;
    *out_len = len;
    return 0;
}

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

static int valid_name(const char *s)
{
    if (!s || !(*s >= 'a' && *s <= 'z'))
        return 0;
    size_t n = 0;
    for (; *s; s++, n++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return 0;
    }
    return n <= MAX_NAME;
}

/* MAJOR.MINOR.PATCH with an optional -pre or +build suffix (semver 2.0 shape). */
static int valid_version(const char *s)
{
    if (!s)
        return 0;
    for (int part = 0; part < 3; part++) {
        if (!(*s >= '0' && *s <= '9'))
            return 0;
        if (*s == '0' && s[1] >= '0' && s[1] <= '9')
            return 0; /* no leading zeros */
        int digits = 0;
        while (*s >= '0' && *s <= '9') {
            s++;
            if (++digits > 9)
                return 0;
        }
        if (part < 2 && *s++ != '.')
            return 0;
    }
    if (*s == 0)
        return 1;
    if (*s != '-' && *s != '+')
        return 0;
    size_t n = 0;
    for (s++; *s; s++, n++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
              *s == '.' || *s == '-' || *s == '+'))
            return 0;
    return n > 0 && n < 64;
}

/*
 * Copy a plugin struct of @p size bytes at @p src into the host's view of @p view_size
 * bytes: the kernel's copy_struct_from_user rule. Returns 0, or -1 if the plugin's
 * struct is longer than ours and the part we do not know is not all zero (it uses a
 * member this host cannot honour).
 */
static int copy_struct(void *view, size_t view_size, const void *src, size_t size)
{
    memset(view, 0, view_size);
    memcpy(view, src, size < view_size ? size : view_size);
    for (size_t i = view_size; i < size; i++)
        if (((const unsigned char *)src)[i] != 0)
            return -1;
    return 0;
}

/* Check that @p text (may be NULL when @p optional) is a JSON object. */
static int check_json_object(const char *text, int optional, const char *what, const char *plugin,
                             const char *type, char *err, size_t errlen)
{
    if (!text) {
        if (optional)
            return 0;
        return fail(err, errlen, "plugin '%s': step type '%s' has no %s (required)", plugin, type, what);
    }
    json_error_t je;
    json_t *v = json_loads(text, 0, &je);
    if (!v)
        return fail(err, errlen, "plugin '%s': step type '%s': %s is not valid JSON: %d:%d: %s",
                    plugin, type, what, je.line, je.column, je.text);
    int ok = json_is_object(v);
    json_decref(v);
    if (!ok)
        return fail(err, errlen, "plugin '%s': step type '%s': %s must be a JSON object", plugin, type, what);
    return 0;
}

static int valid_text(const char *s, size_t max)
{
    /* jansson's own validator would do, but descriptions go to terminals: no control
     * characters, valid UTF-8, bounded. */
    if (!s)
        return 1;
    size_t n = strlen(s);
    if (n > max)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20)
            return 0;
    json_t *j = json_stringn(s, n);
    if (!j)
        return 0;
    json_decref(j);
    return 1;
}

int wfh_runner_load(const char *path, wfh_loaded_plugin *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->path = path;
    const char *file = wfh_runner_basename(path);

    /* RTLD_LOCAL: the plugin's symbols must not satisfy anyone else's (nor the next
     * plugin's); never RTLD_DEEPBIND, which breaks sanitizers and custom allocators. */
    /* A bare name would make dlopen search the library path: "x.so" means ./x.so. */
    char local[4096];
    const char *open_path = path;
    if (!strchr(path, '/') && snprintf(local, sizeof local, "./%s", path) < (int)sizeof local)
        open_path = local;
    void *h = dlopen(open_path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *why = dlerror();
        return fail(err, errlen, "plugin %s: cannot load: %s", file, why ? why : "unknown dlopen error");
    }
    /* Deliberately never dlclose()d: see STYLE.md, "Loading". */
    typedef const wfh_plugin *(*entry_fn)(void);
    entry_fn entry;
    void *sym = dlsym(h, WFH_ENTRY_SYMBOL);
    if (!sym) {
        /* A plugin for another major exports that major's symbol: say so. */
        for (int m = WFH_ABI_MAJOR + 1; m <= WFH_ABI_MAJOR + 8; m++) {
            char other[64];
            snprintf(other, sizeof other, "wfh_plugin_entry_v%d", m);
            if (dlsym(h, other))
                return fail(err, errlen,
                            "plugin %s needs plugin ABI %d.x (it exports %s); this wfhost speaks %d.%d: "
                            "upgrade wfhost or use a %d.x build of the plugin",
                            file, m, other, WFH_ABI_MAJOR, WFH_RUNNER_ABI_MINOR, WFH_ABI_MAJOR);
        }
        return fail(err, errlen, "%s is not a wfhost plugin: it does not export %s (build it against "
                    "include/wfhost/plugin.h and export the entry point with WFH_PLUGIN_EXPORT)",
                    file, WFH_ENTRY_SYMBOL);
    }
    /* POSIX guarantees this conversion works for dlsym results. */
    memcpy(&entry, &sym, sizeof entry);
    const wfh_plugin *d = entry();
    if (!d)
        return fail(err, errlen, "plugin %s: %s() returned NULL", file, WFH_ENTRY_SYMBOL);

    /* The first three members are fixed forever: read them before trusting anything. */
    uint32_t size = d->struct_size;
    if (size < WFH_PLUGIN_SIZE_V1_0 || size > MAX_STRUCT_SIZE)
        return fail(err, errlen,
                    "plugin %s: descriptor struct_size %u is not plausible (ABI 1.0 needs at least %zu): "
                    "was it built against include/wfhost/plugin.h?",
                    file, size, (size_t)WFH_PLUGIN_SIZE_V1_0);
    const char *name = d->name && valid_name(d->name) ? d->name : NULL;
    char who[160];
    if (name)
        snprintf(who, sizeof who, "plugin '%s' (%s)", name, file);
    else
        snprintf(who, sizeof who, "plugin %s", file);
    if (d->abi_major != WFH_ABI_MAJOR) {
        if (d->abi_major > WFH_ABI_MAJOR)
            return fail(err, errlen,
                        "%s needs plugin ABI %u.%u; this wfhost speaks %d.%d: upgrade wfhost or use a "
                        "%d.x build of the plugin",
                        who, d->abi_major, d->abi_minor, WFH_ABI_MAJOR, WFH_RUNNER_ABI_MINOR, WFH_ABI_MAJOR);
        return fail(err, errlen,
                    "%s was built for plugin ABI %u.%u; this wfhost speaks %d.%d: rebuild the plugin "
                    "against this wfhost's include/wfhost/plugin.h",
                    who, d->abi_major, d->abi_minor, WFH_ABI_MAJOR, WFH_RUNNER_ABI_MINOR);
    }
    if (d->abi_minor > WFH_RUNNER_ABI_MINOR)
        return fail(err, errlen,
                    "%s needs plugin ABI %u.%u; this wfhost speaks %d.%d: upgrade wfhost or use a build "
                    "of the plugin made for ABI %d.%d",
                    who, d->abi_major, d->abi_minor, WFH_ABI_MAJOR, WFH_RUNNER_ABI_MINOR, WFH_ABI_MAJOR,
                    WFH_RUNNER_ABI_MINOR);
    if (copy_struct(&out->desc, sizeof out->desc, d, size) < 0)
        return fail(err, errlen,
                    "%s: its descriptor (%u bytes) sets members this wfhost (ABI %d.%d, %zu bytes) does not "
                    "know, although it claims ABI %u.%u: the plugin is malformed",
                    who, size, WFH_ABI_MAJOR, WFH_RUNNER_ABI_MINOR, sizeof out->desc, d->abi_major,
                    d->abi_minor);
    const wfh_plugin *v = &out->desc.d;
    if (!name)
        return fail(err, errlen, "plugin %s: name %s%s%s is not valid (want [a-z][a-z0-9_-]*, at most %d)",
                    file, v->name ? "'" : "", v->name ? v->name : "(NULL)", v->name ? "'" : "", MAX_NAME);
    if (!valid_version(v->version))
        return fail(err, errlen, "%s: version %s%s%s is not MAJOR.MINOR.PATCH", who,
                    v->version ? "'" : "", v->version ? v->version : "(NULL)", v->version ? "'" : "");
    if (!valid_text(v->description, 1024))
        return fail(err, errlen, "%s: description is not one line of UTF-8 text (at most 1024 bytes)", who);
    if (v->step_type_count < 1 || v->step_type_count > MAX_STEP_TYPES || !v->step_types)
        return fail(err, errlen, "%s: step_type_count %u (want 1..%d, with step_types set)", who,
                    v->step_type_count, MAX_STEP_TYPES);
    if (v->step_type_size < WFH_STEP_TYPE_SIZE_V1_0 || v->step_type_size > MAX_STRUCT_SIZE)
        return fail(err, errlen, "%s: step_type_size %u is not plausible (ABI 1.0 needs at least %zu)", who,
                    v->step_type_size, (size_t)WFH_STEP_TYPE_SIZE_V1_0);

    out->types = calloc(v->step_type_count, sizeof *out->types);
    if (!out->types)
        return fail(err, errlen, "%s: out of memory", who);
    out->n_types = v->step_type_count;
    const unsigned char *base = (const unsigned char *)v->step_types;
    for (uint32_t i = 0; i < v->step_type_count; i++) {
        /* step_type_size is the stride: a newer plugin's array has longer elements. */
        const wfh_step_type *t = (const wfh_step_type *)(const void *)(base + (size_t)i * v->step_type_size);
        uint32_t tsize = t->struct_size;
        if (tsize < WFH_STEP_TYPE_SIZE_V1_0 || tsize > v->step_type_size)
            return fail(err, errlen, "%s: step type #%u has struct_size %u (want %zu..%u)", who, i, tsize,
                        (size_t)WFH_STEP_TYPE_SIZE_V1_0, v->step_type_size);
        if (copy_struct(&out->types[i], sizeof out->types[i], t, tsize) < 0)
            return fail(err, errlen, "%s: step type #%u sets members this wfhost (ABI %d.%d) does not know",
                        who, i, WFH_ABI_MAJOR, WFH_RUNNER_ABI_MINOR);
        const wfh_step_type *c = &out->types[i].t;
        if (!valid_name(c->name))
            return fail(err, errlen, "%s: step type #%u has an invalid name %s%s%s (want [a-z][a-z0-9_-]*)",
                        who, i, c->name ? "'" : "", c->name ? c->name : "(NULL)", c->name ? "'" : "");
        for (uint32_t j = 0; j < i; j++)
            if (!strcmp(out->types[j].t.name, c->name))
                return fail(err, errlen, "%s: step type '%s' is declared twice", who, c->name);
        if (!c->run)
            return fail(err, errlen, "%s: step type '%s' has no run function (required)", who, c->name);
        if (!valid_text(c->description, 1024))
            return fail(err, errlen, "%s: step type '%s': description is not one line of UTF-8 text", who,
                        c->name);
        if (check_json_object(c->input_schema, 0, "input_schema", name, c->name, err, errlen) < 0 ||
            check_json_object(c->outputs, 1, "outputs", name, c->name, err, errlen) < 0 ||
            check_json_object(c->capabilities, 1, "capabilities", name, c->name, err, errlen) < 0)
            return -1;
    }
    return 0;
}

void wfh_loaded_plugin_clear(wfh_loaded_plugin *p)
{
    if (!p)
        return;
    free(p->types);
    p->types = NULL;
    p->n_types = 0;
}

static json_t *parse_or_empty(const char *text)
{
    /* Already checked by wfh_runner_load. */
    return text ? json_loads(text, 0, NULL) : json_object();
}

int wfh_runner_probe_print(const wfh_loaded_plugin *p, int fd, char *err, size_t errlen)
{
    const wfh_plugin *d = &p->desc.d;
    int rc = -1;
    char *text = NULL;
    json_t *types = json_array();
    json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:s?, s:s}", "name", d->name, "version", d->version,
                          "abi_major", (json_int_t)d->abi_major, "abi_minor", (json_int_t)d->abi_minor,
                          "description", d->description, "path", p->path);
    if (!o || !types)
        goto oom;
    char abi[32];
    snprintf(abi, sizeof abi, "%u.%u", d->abi_major, d->abi_minor);
    if (json_object_set_new(o, "abi", json_string(abi)) < 0)
        goto oom;
    for (uint32_t i = 0; i < p->n_types; i++) {
        const wfh_step_type *t = &p->types[i].t;
        json_t *to = json_pack("{s:s, s:s?, s:o, s:o, s:o}", "name", t->name, "description", t->description,
                               "input_schema", parse_or_empty(t->input_schema), "outputs",
                               parse_or_empty(t->outputs), "capabilities", parse_or_empty(t->capabilities));
        if (!to || json_array_append_new(types, to) < 0)
            goto oom;
    }
    if (json_object_set(o, "step_types", types) < 0)
        goto oom;
    text = json_dumps(o, JSON_COMPACT);
    if (!text)
        goto oom;
    if (wfh_runner_write_all(fd, text, strlen(text)) < 0 || wfh_runner_write_all(fd, "\n", 1) < 0) {
        fail(err, errlen, "plugin '%s': cannot write the descriptor: %s", d->name, strerror(errno));
        goto done;
    }
    rc = 0;
    goto done;
oom:
    fail(err, errlen, "plugin '%s': out of memory while printing the descriptor", d->name);
done:
    free(text);
    json_decref(types);
    json_decref(o);
    return rc;
}
