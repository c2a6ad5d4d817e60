/*
 * core/workflow.c - loading: a wfh_ynode tree becomes a wfh_workflow (see workflow.h).
 *
 * This stage checks the shape of the file (which keys exist, what type each holds, step
 * ids) and compiles every `with:`/`env:` string into templates. It knows nothing about
 * step types or the graph; wfh_workflow_validate (validate.c) does those. Every problem
 * is a positioned diagnostic and loading carries on, so the user sees them all at once.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "workflow.h"

/* id -> step index, open addressing; slots hold index + 1 so 0 means empty. */
struct wfh_id_index {
    size_t *slots; /* owned */
    size_t mask;
};

static size_t id_hash(const char *s)
{
    size_t h = 1469598103934665603u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h;
}

long wfh_workflow_step_index(const wfh_workflow *wf, const char *id)
{
    if (!wf || !id)
        return -1;
    if (!wf->ids) { /* a hand-built workflow (tests): linear search is fine */
        for (size_t i = 0; i < wf->n_steps; i++)
            if (wf->steps[i].id && !strcmp(wf->steps[i].id, id))
                return (long)i;
        return -1;
    }
    for (size_t i = id_hash(id) & wf->ids->mask;; i = (i + 1) & wf->ids->mask) {
        size_t v = wf->ids->slots[i];
        if (!v)
            return -1;
        if (!strcmp(wf->steps[v - 1].id, id))
            return (long)(v - 1);
    }
}

/* Adds step @p idx; returns the index of an earlier step with the same id, or -1. */
static long id_insert(struct wfh_id_index *ix, const wfh_step *steps, size_t idx)
{
    const char *id = steps[idx].id;
    for (size_t i = id_hash(id) & ix->mask;; i = (i + 1) & ix->mask) {
        size_t v = ix->slots[i];
        if (!v) {
            ix->slots[i] = idx + 1;
            return -1;
        }
        if (!strcmp(steps[v - 1].id, id))
            return (long)(v - 1);
    }
}

static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return (size_t)-1;
    size_t row[65];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

const char *wfh_workflow_suggest(const char *word, const char *const *cands, size_t n)
{
    const char *best = NULL;
    size_t bestd = (size_t)-1, wl = strlen(word);
    for (size_t i = 0; i < n; i++) {
        size_t d = edit_distance(word, cands[i]);
        if (d < bestd) {
            bestd = d;
            best = cands[i];
        }
    }
    /* a swapped pair of letters costs 2, so allow that even in short words */
    size_t limit = wl <= 3 ? 1 : wl <= 6 ? 2 : 3;
    return best && bestd <= limit ? best : NULL;
}

static void unknown_key(wfh_diags *d, const wfh_ynode *k, const char *where,
                        const char *const *allowed, size_t n)
{
    const char *s = wfh_workflow_suggest(k->str, allowed, n);
    char hint[128];
    if (s)
        snprintf(hint, sizeof hint, "did you mean '%s'?", s);
    wfh_diag_add(d, WFH_DIAG_ERROR, k->line, k->col, s ? hint : NULL, "unknown key '%s' in %s",
                 k->str, where);
}

static const char *kind_name(const wfh_ynode *n)
{
    return n->kind == WFH_Y_MAP ? "mapping" : n->kind == WFH_Y_SEQ ? "list" : "scalar";
}

/* A scalar that must be a non-empty string; returns a copy or NULL (reported). */
static char *want_string(wfh_diags *d, const wfh_ynode *n, const char *what, int *oom)
{
    if (n->kind != WFH_Y_SCALAR) {
        wfh_diag_add(d, WFH_DIAG_ERROR, n->line, n->col, NULL, "%s must be a string, not a %s",
                     what, kind_name(n));
        return NULL;
    }
    if (n->len == 0 || strlen(n->str) != n->len) {
        wfh_diag_add(d, WFH_DIAG_ERROR, n->line, n->col, NULL, "%s must be a non-empty string",
                     what);
        return NULL;
    }
    char *s = strdup(n->str);
    if (!s)
        *oom = 1;
    return s;
}

static int valid_id(const char *s)
{
    if (!(*s >= 'a' && *s <= 'z'))
        return 0;
    for (s++; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' || *s == '-'))
            return 0;
    return 1;
}

static int valid_env_name(const char *s, size_t len)
{
    if (len == 0 || strlen(s) != len || (*s >= '0' && *s <= '9'))
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_'))
            return 0;
    return 1;
}

static const wfh_expr_scope workflow_scope = {wfh_workflow_contexts};

/* `env:` at workflow or step level: a mapping of NAME -> string (templates allowed). */
static int load_env(wfh_diags *d, const wfh_ynode *n, wfh_value **out)
{
    *out = NULL;
    if (n->kind == WFH_Y_SCALAR && n->plain && n->len == 0)
        return 0; /* `env:` with nothing after it */
    if (n->kind != WFH_Y_MAP) {
        wfh_diag_add(d, WFH_DIAG_ERROR, n->line, n->col, NULL,
                     "env must be a mapping of NAME: value, not a %s", kind_name(n));
        return WFH_EINVAL;
    }
    int err = 0;
    for (size_t i = 0; i < n->n; i++) {
        if (!valid_env_name(n->keys[i]->str, n->keys[i]->len)) {
            wfh_diag_add(d, WFH_DIAG_ERROR, n->keys[i]->line, n->keys[i]->col,
                         "names are letters, digits and '_', not starting with a digit",
                         "invalid environment variable name '%s'", n->keys[i]->str);
            err = WFH_EINVAL;
        }
        if (n->items[i]->kind != WFH_Y_SCALAR) {
            wfh_diag_add(d, WFH_DIAG_ERROR, n->items[i]->line, n->items[i]->col,
                         "quote it, or pass structured data with toJSON()",
                         "env value '%s' must be a string, not a %s", n->keys[i]->str,
                         kind_name(n->items[i]));
            err = WFH_EINVAL;
        }
    }
    if (err < 0)
        return err;
    int e = wfh_value_compile(n, &workflow_scope, 0, d, out);
    if (e == WFH_ENOMEM)
        return e;
    /* env values are strings: `PORT: 8080` means "8080", not a number */
    for (size_t i = 0; *out && i < (*out)->n; i++) {
        wfh_value *v = (*out)->items[i];
        if (v->kind == WFH_V_LITERAL && !json_is_string(v->literal)) {
            json_decref(v->literal);
            v->literal = json_stringn(n->items[i]->str, n->items[i]->len);
            if (!v->literal)
                return WFH_ENOMEM;
        }
    }
    return e;
}

static const char *const step_keys[] = {"id",      "uses",  "needs",
                                        "with",    "env",   "if",
                                        "timeout", "retry", "continue_on_error",
                                        "for_each", "matrix", "max_parallel"};
static const char *const top_keys[] = {"name",   "description", "env",        "steps",
                                       "defaults", "inputs",    "outputs",    "secrets",
                                       "on_failure", "finally",  "limits",
                                       "circuit_breaker"};

static int load_needs(wfh_diags *d, const wfh_ynode *n, wfh_step *st)
{
    size_t count = n->kind == WFH_Y_SEQ ? n->n : 1;
    if (n->kind == WFH_Y_MAP) {
        wfh_diag_add(d, WFH_DIAG_ERROR, n->line, n->col, NULL,
                     "needs must be a step id or a list of step ids, not a mapping");
        return WFH_EINVAL;
    }
    if (n->kind == WFH_Y_SCALAR && n->plain && n->len == 0)
        return 0;
    if (count == 0)
        return 0;
    st->need_ids = calloc(count, sizeof *st->need_ids);
    st->need_lines = calloc(count, sizeof *st->need_lines);
    st->need_cols = calloc(count, sizeof *st->need_cols);
    if (!st->need_ids || !st->need_lines || !st->need_cols)
        return WFH_ENOMEM;
    int err = 0, oom = 0;
    for (size_t i = 0; i < count; i++) {
        const wfh_ynode *x = n->kind == WFH_Y_SEQ ? n->items[i] : n;
        char *id = want_string(d, x, "a need", &oom);
        if (oom)
            return WFH_ENOMEM;
        if (!id) {
            err = WFH_EINVAL;
            continue;
        }
        st->need_ids[st->n_needs] = id;
        st->need_lines[st->n_needs] = x->line;
        st->need_cols[st->n_needs] = x->col;
        st->n_needs++;
    }
    return err;
}

static int load_uses(wfh_diags *d, const wfh_ynode *n, wfh_step *st)
{
    int oom = 0;
    char *s = want_string(d, n, "uses", &oom);
    if (oom)
        return WFH_ENOMEM;
    if (!s)
        return WFH_EINVAL;
    st->uses_line = n->line;
    st->uses_col = n->col;
    char *at = strchr(s, '@');
    st->major = -1;
    int ok = 1;
    if (at) {
        *at = '\0';
        char *end;
        errno = 0;
        long m = strtol(at + 1, &end, 10);
        if (!at[1] || *end || errno || m < 0 || m > 1000000 || at[1] == '-' || at[1] == '+')
            ok = 0;
        st->major = (int)m;
    }
    if (!*s || !(*s >= 'a' && *s <= 'z'))
        ok = 0;
    for (const char *p = s; *p && ok; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-' ||
              *p == '.'))
            ok = 0;
    if (!ok) {
        wfh_diag_add(d, WFH_DIAG_ERROR, n->line, n->col,
                     "write a step type name, optionally pinned to a major version: shell@1",
                     "invalid step type '%s'", n->str);
        free(s);
        st->major = -1;
        return WFH_EINVAL;
    }
    st->type = s;
    return 0;
}

static int load_step(wfh_diags *d, const wfh_ynode *n, wfh_step *st, size_t idx)
{
    st->line = n->line;
    st->col = n->col;
    st->major = -1;
    st->with_line = n->line;
    st->with_col = n->col;
    if (n->kind != WFH_Y_MAP) {
        wfh_diag_add(d, WFH_DIAG_ERROR, n->line, n->col, "a step looks like: - id: build",
                     "step %zu must be a mapping, not a %s", idx + 1, kind_name(n));
        return WFH_EINVAL;
    }
    int err = 0, e = 0, oom = 0;
    const wfh_ynode *idn = NULL, *usesn = NULL;
    for (size_t i = 0; i < n->n; i++) {
        const char *k = n->keys[i]->str;
        const wfh_ynode *v = n->items[i];
        if (!strcmp(k, "id")) {
            idn = v;
            st->id = want_string(d, v, "id", &oom);
            if (st->id && !valid_id(st->id)) {
                wfh_diag_add(d, WFH_DIAG_ERROR, v->line, v->col,
                             "ids are lower-case letters, digits, '_' and '-', starting with a letter",
                             "invalid step id '%s'", st->id);
                free(st->id);
                st->id = NULL;
            }
            if (!st->id)
                err = WFH_EINVAL;
        } else if (!strcmp(k, "uses")) {
            usesn = v;
            e = load_uses(d, v, st);
        } else if (!strcmp(k, "needs")) {
            e = load_needs(d, v, st);
        } else if (!strcmp(k, "with")) {
            st->with_line = v->line;
            st->with_col = v->col;
            if (v->kind == WFH_Y_SCALAR && v->plain && v->len == 0)
                continue;
            if (v->kind != WFH_Y_MAP) {
                wfh_diag_add(d, WFH_DIAG_ERROR, v->line, v->col, NULL,
                             "with must be a mapping of the step type's inputs, not a %s",
                             kind_name(v));
                e = WFH_EINVAL;
            } else {
                e = wfh_value_compile(v, &workflow_scope, 0, d, &st->with);
            }
        } else if (!strcmp(k, "env")) {
            e = load_env(d, v, &st->env);
        } else if ((e = wfh_lang_step_key(d, k, v, st)) != 1) {
            /* issue #3 keys (core/lang.c) */
        } else {
            e = 0;
            unknown_key(d, n->keys[i], "a step", step_keys,
                        sizeof step_keys / sizeof step_keys[0]);
            e = WFH_EINVAL;
        }
        if (oom || e == WFH_ENOMEM)
            return WFH_ENOMEM;
        if (e < 0 && !err)
            err = e;
        e = 0;
    }
    if (!idn) {
        wfh_diag_add(d, WFH_DIAG_ERROR, n->line, n->col, "every step needs a unique id",
                     "step %zu has no 'id'", idx + 1);
        err = WFH_EINVAL;
    }
    if (!usesn) {
        wfh_diag_add(d, WFH_DIAG_ERROR, n->line, n->col, "e.g. uses: shell",
                     "step %s has no 'uses' (its step type)", st->id ? st->id : "?");
        err = WFH_EINVAL;
    }
    return err;
}

/* Steps listed under on_failure: and finally: (they share the id index). */
static size_t handler_count(const wfh_ynode *root)
{
    size_t k = 0;
    const wfh_ynode *h;
    if ((h = wfh_ynode_get(root, "on_failure")) && h->kind == WFH_Y_SEQ)
        k += h->n;
    if ((h = wfh_ynode_get(root, "finally")) && h->kind == WFH_Y_SEQ)
        k += h->n;
    return k;
}

static int load_steps(wfh_diags *d, const wfh_ynode *n, wfh_workflow *wf, size_t extra)
{
    if (n->kind != WFH_Y_SEQ) {
        wfh_diag_add(d, WFH_DIAG_ERROR, n->line, n->col, NULL,
                     "steps must be a list, not a %s", kind_name(n));
        return WFH_EINVAL;
    }
    if (n->n == 0) {
        wfh_diag_add(d, WFH_DIAG_ERROR, n->line, n->col, NULL, "steps is empty");
        return WFH_EINVAL;
    }
    wf->steps = calloc(n->n, sizeof *wf->steps);
    if (!wf->steps)
        return WFH_ENOMEM;
    wf->n_steps = n->n;
    size_t cap = 16;
    while (cap < (n->n + extra) * 2)
        cap *= 2;
    wf->ids = calloc(1, sizeof *wf->ids);
    if (!wf->ids)
        return WFH_ENOMEM;
    wf->ids->slots = calloc(cap, sizeof *wf->ids->slots);
    if (!wf->ids->slots)
        return WFH_ENOMEM;
    wf->ids->mask = cap - 1;
    int err = 0;
    for (size_t i = 0; i < n->n; i++) {
        int e = load_step(d, n->items[i], &wf->steps[i], i);
        if (e == WFH_ENOMEM)
            return e;
        if (e < 0 && !err)
            err = e;
        if (!wf->steps[i].id)
            continue;
        long prev = id_insert(wf->ids, wf->steps, i);
        if (prev >= 0) {
            const wfh_ynode *idn = wfh_ynode_get(n->items[i], "id");
            wfh_diag_add(d, WFH_DIAG_ERROR, idn ? idn->line : wf->steps[i].line,
                         idn ? idn->col : wf->steps[i].col, NULL,
                         "duplicate step id '%s' (first at line %u)", wf->steps[i].id,
                         wf->steps[prev].line);
            err = WFH_EINVAL;
        }
    }
    return err;
}

/* Add @p id to step @p st's needs unless it is there already. */
static int add_need(wfh_step *st, const char *id, unsigned line, unsigned col)
{
    for (size_t k = 0; k < st->n_needs; k++)
        if (!strcmp(st->need_ids[k], id))
            return 0;
    char **ids = realloc(st->need_ids, (st->n_needs + 1) * sizeof *ids);
    if (!ids)
        return WFH_ENOMEM;
    st->need_ids = ids;
    unsigned *ls = realloc(st->need_lines, (st->n_needs + 1) * sizeof *ls);
    if (!ls)
        return WFH_ENOMEM;
    st->need_lines = ls;
    unsigned *cs = realloc(st->need_cols, (st->n_needs + 1) * sizeof *cs);
    if (!cs)
        return WFH_ENOMEM;
    st->need_cols = cs;
    if (!(st->need_ids[st->n_needs] = strdup(id)))
        return WFH_ENOMEM;
    st->need_lines[st->n_needs] = line;
    st->need_cols[st->n_needs] = col;
    st->n_needs++;
    return 0;
}

/* `on_failure:` (@p kind 1) and `finally:` (2): lists shaped like `steps`, appended to
 * the steps with a need on every step before them (the main steps, and for finally the
 * on_failure steps too), so they start when all of those have ended; the scheduler
 * lets them run whatever those ended as (issue #3). */
static int load_handlers(wfh_diags *d, const wfh_ynode *n, int kind, wfh_workflow *wf)
{
    if (!n || (n->kind == WFH_Y_SCALAR && n->plain && n->len == 0))
        return 0;
    const char *what = kind == 1 ? "on_failure" : "finally";
    if (n->kind != WFH_Y_SEQ) {
        wfh_diag_add(d, WFH_DIAG_ERROR, n->line, n->col, "a list shaped like steps",
                     "%s must be a list of steps, not a %s", what, kind_name(n));
        return WFH_EINVAL;
    }
    size_t before = wf->n_steps;
    wfh_step *ns = realloc(wf->steps, (before + n->n + 1) * sizeof *ns);
    if (!ns)
        return WFH_ENOMEM;
    wf->steps = ns;
    memset(&wf->steps[before], 0, (n->n + 1) * sizeof *ns);
    int err = 0;
    for (size_t i = 0; i < n->n; i++) {
        size_t idx = before + i;
        wf->n_steps = idx + 1;
        wfh_step *st = &wf->steps[idx];
        int e = load_step(d, n->items[i], st, idx);
        st->handler = kind;
        if (e == WFH_ENOMEM)
            return e;
        if (e < 0 && !err)
            err = e;
        if (!st->id)
            continue;
        long prev = id_insert(wf->ids, wf->steps, idx);
        if (prev >= 0) {
            wfh_diag_add(d, WFH_DIAG_ERROR, st->line, st->col, NULL,
                         "duplicate step id '%s' (first at line %u)", st->id,
                         wf->steps[prev].line);
            err = WFH_EINVAL;
            continue;
        }
        for (size_t j = 0; j < before; j++)
            if (wf->steps[j].id && (kind == 2 || wf->steps[j].handler == 0) &&
                add_need(st, wf->steps[j].id, st->line, st->col) < 0)
                return WFH_ENOMEM;
    }
    return err;
}

static int load_top(wfh_diags *d, const wfh_ynode *root, wfh_workflow *wf)
{
    if (root->kind != WFH_Y_MAP) {
        wfh_diag_add(d, WFH_DIAG_ERROR, root->line, root->col,
                     "a workflow starts with 'name:' and 'steps:'",
                     "a workflow must be a mapping, not a %s", kind_name(root));
        return WFH_EINVAL;
    }
    int err = 0, oom = 0;
    const wfh_ynode *steps = NULL, *name = NULL;
    for (size_t i = 0; i < root->n; i++) {
        const char *k = root->keys[i]->str;
        const wfh_ynode *v = root->items[i];
        int e = 0;
        if (!strcmp(k, "name")) {
            name = v;
            wf->name = want_string(d, v, "name", &oom);
            if (!wf->name)
                e = WFH_EINVAL;
        } else if (!strcmp(k, "description")) {
            if (v->kind == WFH_Y_SCALAR && v->len == 0)
                continue;
            wf->description = want_string(d, v, "description", &oom);
            if (!wf->description)
                e = WFH_EINVAL;
        } else if (!strcmp(k, "env")) {
            e = load_env(d, v, &wf->env);
        } else if (!strcmp(k, "steps")) {
            steps = v;
            e = load_steps(d, v, wf, handler_count(root));
        } else if (!strcmp(k, "on_failure") || !strcmp(k, "finally")) {
            continue; /* after the steps they follow: load_handlers below */
        } else if ((e = wfh_lang_top_key(d, k, v, wf)) != 1) {
            /* issue #3 keys (core/lang.c) */
        } else {
            e = 0;
            unknown_key(d, root->keys[i], "the workflow", top_keys,
                        sizeof top_keys / sizeof top_keys[0]);
            e = WFH_EINVAL;
        }
        if (oom || e == WFH_ENOMEM)
            return WFH_ENOMEM;
        if (e < 0 && !err)
            err = e;
    }
    if (!name) {
        wfh_diag_add(d, WFH_DIAG_ERROR, root->line, root->col, "add e.g. 'name: build'",
                     "the workflow has no 'name'");
        err = WFH_EINVAL;
    }
    if (!steps) {
        wfh_diag_add(d, WFH_DIAG_ERROR, root->line, root->col, NULL,
                     "the workflow has no 'steps'");
        err = WFH_EINVAL;
    }
    if (wf->steps && wf->ids) {
        int e1 = load_handlers(d, wfh_ynode_get(root, "on_failure"), 1, wf);
        if (e1 == WFH_ENOMEM)
            return e1;
        int e2 = load_handlers(d, wfh_ynode_get(root, "finally"), 2, wf);
        if (e2 == WFH_ENOMEM)
            return e2;
        if (!err)
            err = e1 < 0 ? e1 : e2;
    }
    return err;
}

int wfh_workflow_parse(const char *path, const char *buf, size_t len, wfh_workflow **out,
                       wfh_diags *diags)
{
    *out = NULL;
    int err = 0;
    wfh_ynode *root = NULL; /* owned */
    wfh_workflow *wf = calloc(1, sizeof *wf); /* owned until *out */
    if (!wf)
        return wfh_error_set(WFH_ENOMEM, "%s: out of memory", path);
    wf->path = strdup(path);
    wf->source = malloc(len + 1);
    if (!wf->path || !wf->source) {
        err = wfh_error_set(WFH_ENOMEM, "%s: out of memory", path);
        goto done;
    }
    memcpy(wf->source, buf, len);
    wf->source[len] = '\0';
    wf->source_len = len;
    diags->file = wf->path;
    diags->source = wf->source;
    diags->source_len = len;
    err = wfh_ydoc_parse(wf->source, len, &root, diags);
    if (err < 0)
        goto done;
    err = load_top(diags, root, wf);
    /* YAML syntax is WFH_EPARSE (above); everything about the content is WFH_EINVAL */
    if (err < 0 && err != WFH_ENOMEM)
        err = WFH_EINVAL;
    if (err == WFH_ENOMEM)
        wfh_error_set(err, "%s: out of memory", path);
    else if (err < 0 || diags->errors) {
        char first[512];
        wfh_diags_first(diags, first, sizeof first);
        err = wfh_error_set(err < 0 ? err : WFH_EINVAL, "%s", first);
    }
done:
    wfh_ynode_free(root);
    if (err == WFH_ENOMEM) {
        /* the diagnostics must not point into what is freed here */
        diags->file = path;
        diags->source = NULL;
        diags->source_len = 0;
        wfh_workflow_free(wf);
        return err;
    }
    *out = wf;
    return err;
}

int wfh_workflow_load(const char *path, wfh_workflow **out, wfh_diags *diags)
{
    *out = NULL;
    int err = 0;
    char *buf = NULL; /* owned */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return wfh_error_set(errno == ENOENT ? WFH_ENOTFOUND : WFH_EIO, "%s: %s", path,
                             strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0) {
        err = wfh_error_set(WFH_EIO, "%s: %s", path, strerror(errno));
        goto done;
    }
    if (!S_ISREG(st.st_mode) && !S_ISFIFO(st.st_mode) && !S_ISCHR(st.st_mode)) {
        err = wfh_error_set(WFH_EINVAL, "%s: not a regular file", path);
        goto done;
    }
    /* Read to EOF rather than trusting st_size: pipes and /dev/stdin work too. */
    size_t len = 0, cap = S_ISREG(st.st_mode) && st.st_size > 0 ? (size_t)st.st_size + 1 : 4096;
    for (;;) {
        if (len + 1 >= cap || !buf) {
            if (cap > (size_t)WFH_YDOC_MAX_BYTES + 2) {
                err = wfh_error_set(WFH_EINVAL, "%s: file too large (limit %u bytes)", path,
                                    WFH_YDOC_MAX_BYTES);
                goto done;
            }
            if (buf)
                cap *= 2;
            char *nb = realloc(buf, cap);
            if (!nb) {
                err = wfh_error_set(WFH_ENOMEM, "%s: out of memory", path);
                goto done;
            }
            buf = nb;
        }
        ssize_t r = read(fd, buf + len, cap - len - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            err = wfh_error_set(WFH_EIO, "%s: %s", path, strerror(errno));
            goto done;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    err = wfh_workflow_parse(path, buf, len, out, diags);
done:
    close(fd);
    free(buf);
    return err;
}

static void step_clear(wfh_step *s)
{
    free(s->id);
    free(s->type);
    for (size_t i = 0; i < s->n_needs; i++)
        free(s->need_ids[i]);
    free(s->need_ids);
    free(s->need_lines);
    free(s->need_cols);
    free(s->needs);
    wfh_value_free(s->with);
    wfh_value_free(s->env);
    wfh_lang_step_clear(s);
}

void wfh_workflow_free(wfh_workflow *wf)
{
    if (!wf)
        return;
    for (size_t i = 0; i < wf->n_steps; i++)
        step_clear(&wf->steps[i]);
    free(wf->steps);
    free(wf->path);
    free(wf->source);
    free(wf->name);
    free(wf->description);
    wfh_value_free(wf->env);
    wfh_lang_workflow_clear(wf);
    free(wf->order);
    if (wf->ids)
        free(wf->ids->slots);
    free(wf->ids);
    free(wf);
}
