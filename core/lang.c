/*
 * core/lang.c - the workflow language's control keys (issue #3): `if`, `timeout`,
 * `retry`, `continue_on_error` on a step; `defaults`, `inputs`, `outputs`, `secrets` at
 * the top. workflow.c hands each key it does not know to wfh_lang_*_key first, so the
 * loader keeps one pass and one place for unknown-key hints; validate.c calls
 * wfh_lang_validate for the checks that need the graph. The run-time halves (retry
 * waits, durations, input checking) are here too, so the scheduler and the CLI share
 * one definition of each rule.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <wfhost/plugin.h>

#include "error.h"
#include "lang.h"
#include "workflow.h"

static const wfh_expr_scope lang_scope = {wfh_workflow_contexts};

/* Classes retried when `on` is not given: everything a second try may fix. */
#define DEFAULT_ON_MASK                                                                    \
    ((1u << WFH_STEP_FAILED) | (1u << WFH_STEP_TRANSIENT) | (1u << WFH_STEP_TIMEOUT))
#define MAX_ATTEMPTS_LIMIT 100u
#define DEFAULT_INITIAL_MS 1000u

static const char *const class_names[] = {
    [WFH_STEP_FAILED] = "failed",       [WFH_STEP_TRANSIENT] = "transient",
    [WFH_STEP_PERMANENT] = "permanent", [WFH_STEP_TIMEOUT] = "timeout",
    [WFH_STEP_INVALID_INPUT] = "invalid_input", [WFH_STEP_CANCELLED] = "cancelled",
};

static const char *kind_name(const wfh_ynode *n)
{
    return n->kind == WFH_Y_MAP ? "mapping" : n->kind == WFH_Y_SEQ ? "list" : "scalar";
}

/* 0 if @p n is a mapping; else "WHAT must be a SHAPE, not a list" at @p n with
 * @p example as the hint, and WFH_EINVAL. */
static int want_map(wfh_diags *d, const wfh_ynode *n, const char *example, const char *what,
                    const char *shape)
{
    if (n->kind == WFH_Y_MAP)
        return 0;
    wfh_diag_add(d, WFH_DIAG_ERROR, n->line, n->col, example, "%s must be a %s, not a %s", what,
                 shape, kind_name(n));
    return WFH_EINVAL;
}

static int is_empty(const wfh_ynode *n)
{
    return n->kind == WFH_Y_SCALAR && n->plain && n->len == 0;
}

/* ---- durations ------------------------------------------------------------------------ */

int wfh_duration_parse(const char *s, uint64_t *ms)
{
    uint64_t total = 0;
    const char *p = s;
    if (!p || !*p)
        return WFH_EINVAL;
    /* a bare number is seconds */
    char *end = NULL;
    errno = 0;
    double bare = strtod(p, &end);
    if (end && *end == '\0' && !errno && end != p) {
        if (!(bare > 0) || bare > 1e9)
            return WFH_EINVAL;
        *ms = (uint64_t)(bare * 1000.0 + 0.5);
        return *ms ? 0 : WFH_EINVAL;
    }
    int seen = 0;
    while (*p) {
        errno = 0;
        double v = strtod(p, &end);
        if (end == p || errno || v < 0 || v > 1e9 || *p == '+' || *p == '-' || *p == ' ')
            return WFH_EINVAL;
        p = end;
        double unit;
        if (!strncmp(p, "ms", 2)) {
            unit = 1;
            p += 2;
        } else if (*p == 's') {
            unit = 1000;
            p++;
        } else if (*p == 'm') {
            unit = 60000;
            p++;
        } else if (*p == 'h') {
            unit = 3600000;
            p++;
        } else if (*p == 'd') {
            unit = 86400000;
            p++;
        } else {
            return WFH_EINVAL;
        }
        total += (uint64_t)(v * unit + 0.5);
        seen = 1;
    }
    if (!seen || total == 0 || total > (uint64_t)1e9 * 1000u)
        return WFH_EINVAL;
    *ms = total;
    return 0;
}

void wfh_duration_format(uint64_t ms, char *buf, size_t len)
{
    if (ms < 1000) {
        snprintf(buf, len, "%llums", (unsigned long long)ms);
    } else if (ms < 60000) {
        if (ms % 1000)
            snprintf(buf, len, "%.1fs", (double)ms / 1000.0);
        else
            snprintf(buf, len, "%llus", (unsigned long long)(ms / 1000));
    } else {
        unsigned long long s = ms / 1000, h = s / 3600, m = (s % 3600) / 60, sec = s % 60;
        if (h)
            snprintf(buf, len, "%lluh%llum%llus", h, m, sec);
        else
            snprintf(buf, len, "%llum%llus", m, sec);
    }
}

static int load_duration(wfh_diags *d, const wfh_ynode *v, const char *what, uint64_t *out)
{
    if (v->kind != WFH_Y_SCALAR || wfh_duration_parse(v->str, out) < 0) {
        wfh_diag_add(d, WFH_DIAG_ERROR, v->line, v->col,
                     "write e.g. 30s, 5m, 1h30m or 500ms", "%s must be a duration, not '%s'",
                     what, v->kind == WFH_Y_SCALAR ? v->str : kind_name(v));
        return WFH_EINVAL;
    }
    return 0;
}

/* ---- retry ---------------------------------------------------------------------------- */

static const char *const retry_keys[] = {"max_attempts", "backoff", "initial",
                                         "max",          "jitter",  "on"};

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

static int load_retry(wfh_diags *d, const wfh_ynode *n, wfh_retry *r)
{
    memset(r, 0, sizeof *r);
    if (want_map(d, n, "e.g. retry: {max_attempts: 3}", "retry", "mapping") < 0)
        return WFH_EINVAL;
    int err = 0;
    r->initial_ms = DEFAULT_INITIAL_MS;
    r->on_mask = DEFAULT_ON_MASK;
    const wfh_ynode *maxn = NULL;
    for (size_t i = 0; i < n->n; i++) {
        const char *k = n->keys[i]->str;
        const wfh_ynode *v = n->items[i];
        if (!strcmp(k, "max_attempts")) {
            maxn = v;
            char *end = NULL;
            errno = 0;
            long m = v->kind == WFH_Y_SCALAR ? strtol(v->str, &end, 10) : 0;
            if (v->kind != WFH_Y_SCALAR || !end || *end || end == v->str || errno || m < 1 ||
                m > (long)MAX_ATTEMPTS_LIMIT) {
                wfh_diag_add(d, WFH_DIAG_ERROR, v->line, v->col,
                             "attempts in all, the first included", 
                             "max_attempts must be a whole number from 1 to %u",
                             MAX_ATTEMPTS_LIMIT);
                err = WFH_EINVAL;
            } else {
                r->max_attempts = (unsigned)m;
            }
        } else if (!strcmp(k, "backoff")) {
            if (v->kind == WFH_Y_SCALAR && !strcmp(v->str, "fixed")) {
                r->exponential = 0;
            } else if (v->kind == WFH_Y_SCALAR && !strcmp(v->str, "exponential")) {
                r->exponential = 1;
            } else {
                wfh_diag_add(d, WFH_DIAG_ERROR, v->line, v->col, NULL,
                             "backoff must be 'fixed' or 'exponential'");
                err = WFH_EINVAL;
            }
        } else if (!strcmp(k, "initial")) {
            if (load_duration(d, v, "retry.initial", &r->initial_ms) < 0)
                err = WFH_EINVAL;
        } else if (!strcmp(k, "max")) {
            if (load_duration(d, v, "retry.max", &r->max_ms) < 0)
                err = WFH_EINVAL;
        } else if (!strcmp(k, "jitter")) {
            if (v->kind == WFH_Y_SCALAR && !strcmp(v->str, "none")) {
                r->jitter_full = 0;
            } else if (v->kind == WFH_Y_SCALAR && !strcmp(v->str, "full")) {
                r->jitter_full = 1;
            } else {
                wfh_diag_add(d, WFH_DIAG_ERROR, v->line, v->col, NULL,
                             "jitter must be 'none' or 'full'");
                err = WFH_EINVAL;
            }
        } else if (!strcmp(k, "on")) {
            size_t cnt = v->kind == WFH_Y_SEQ ? v->n : 1;
            if (v->kind == WFH_Y_MAP || (v->kind == WFH_Y_SEQ && v->n == 0)) {
                wfh_diag_add(d, WFH_DIAG_ERROR, v->line, v->col,
                             "e.g. on: [transient, timeout]",
                             "retry.on must be a non-empty list of failure classes");
                err = WFH_EINVAL;
                continue;
            }
            r->on_mask = 0;
            for (size_t j = 0; j < cnt; j++) {
                const wfh_ynode *c = v->kind == WFH_Y_SEQ ? v->items[j] : v;
                int found = -1;
                for (int s = 1; s < (int)(sizeof class_names / sizeof class_names[0]); s++)
                    if (c->kind == WFH_Y_SCALAR && !strcmp(c->str, class_names[s]))
                        found = s;
                if (found < 0) {
                    const char *sug = c->kind == WFH_Y_SCALAR
                                          ? wfh_workflow_suggest(c->str, class_names + 1, 6)
                                          : NULL;
                    char hint[160];
                    snprintf(hint, sizeof hint, "%s%s%sclasses are failed, transient, "
                             "permanent, timeout, invalid_input, cancelled",
                             sug ? "did you mean '" : "", sug ? sug : "", sug ? "'? " : "");
                    wfh_diag_add(d, WFH_DIAG_ERROR, c->line, c->col, hint,
                                 "unknown failure class '%s'",
                                 c->kind == WFH_Y_SCALAR ? c->str : kind_name(c));
                    err = WFH_EINVAL;
                } else {
                    r->on_mask |= 1u << found;
                }
            }
        } else {
            unknown_key(d, n->keys[i], "retry", retry_keys,
                        sizeof retry_keys / sizeof retry_keys[0]);
            err = WFH_EINVAL;
        }
    }
    if (!maxn && err == 0) {
        wfh_diag_add(d, WFH_DIAG_ERROR, n->line, n->col, "e.g. retry: {max_attempts: 3}",
                     "retry needs max_attempts");
        err = WFH_EINVAL;
    }
    if (err == 0 && r->max_ms && r->max_ms < r->initial_ms) {
        wfh_diag_add(d, WFH_DIAG_ERROR, n->line, n->col, NULL,
                     "retry.max is shorter than retry.initial");
        err = WFH_EINVAL;
    }
    return err;
}

static const wfh_retry no_retry = {.max_attempts = 1};

const wfh_retry *wfh_retry_for(const wfh_workflow *wf, const wfh_step *st)
{
    if (st && st->retry.max_attempts)
        return &st->retry;
    if (wf && wf->default_retry.max_attempts)
        return &wf->default_retry;
    return &no_retry;
}

uint64_t wfh_timeout_for(const wfh_workflow *wf, const wfh_step *st)
{
    if (st && st->timeout_ms)
        return st->timeout_ms;
    return wf ? wf->default_timeout_ms : 0;
}

int wfh_retry_should(const wfh_retry *p, unsigned attempt, int status)
{
    if (!p || attempt >= p->max_attempts || status <= 0 || status > 31)
        return 0;
    return (p->on_mask >> status) & 1u;
}

uint64_t wfh_retry_delay(const wfh_retry *p, unsigned attempt, uint64_t hint_ms, uint64_t rnd)
{
    uint64_t wait = p->initial_ms;
    if (p->exponential) {
        for (unsigned k = 1; k < attempt && wait < ((uint64_t)1 << 50); k++)
            wait *= 2;
    }
    if (p->max_ms && wait > p->max_ms)
        wait = p->max_ms;
    if (p->jitter_full)
        wait = rnd % (wait + 1);
    /* The plugin knows the server's Retry-After; waiting less would be refused again. */
    if (hint_ms > wait)
        wait = hint_ms > 86400000u ? 86400000u : hint_ms;
    return wait;
}

/* ---- step keys ------------------------------------------------------------------------ */

#define MATRIX_MAX 10000

/* Does combination @p c contain every key/value of @p pat? */
static int matrix_matches(const json_t *c, const json_t *pat)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)pat, k, v) {
        if (!json_equal(json_object_get(c, k), v))
            return 0;
    }
    return 1;
}

/* `matrix: {axis: [values], ..., include: [{...}], exclude: [{...}]}` becomes the list of
 * combinations, axes in file order (the last varies fastest), without the excluded
 * ones, then each include: merged into every combination it extends without changing
 * an axis value, or added on its own if it extends none (GitHub's rule). */
static int load_matrix(wfh_diags *d, const wfh_ynode *v, wfh_step *st)
{
    if (v->kind != WFH_Y_MAP || v->n == 0) {
        wfh_diag_add(d, WFH_DIAG_ERROR, v->line, v->col, "e.g. matrix: {os: [linux, mac]}",
                     "matrix must be a non-empty mapping of axis: [values]");
        return WFH_EINVAL;
    }
    int err = 0;
    json_t *combos = json_array(), *include = NULL, *exclude = NULL; /* owned */
    json_t *axes = json_object();                                   /* owned */
    if (!combos || !axes) {
        err = WFH_ENOMEM;
        goto done;
    }
    for (size_t i = 0; i < v->n; i++) {
        const char *k = v->keys[i]->str;
        const wfh_ynode *x = v->items[i];
        json_t *j = wfh_ynode_to_json(x); /* owned */
        if (!strcmp(k, "include") || !strcmp(k, "exclude")) {
            size_t idx;
            json_t *e;
            int ok = json_is_array(j);
            json_array_foreach(j, idx, e) ok = ok && json_is_object(e);
            if (!ok) {
                wfh_diag_add(d, WFH_DIAG_ERROR, x->line, x->col, NULL,
                             "matrix %s must be a list of mappings", k);
                err = WFH_EINVAL;
                json_decref(j);
                continue;
            }
            if (!strcmp(k, "include"))
                include = j;
            else
                exclude = j;
            continue;
        }
        if (!json_is_array(j) || json_array_size(j) == 0) {
            wfh_diag_add(d, WFH_DIAG_ERROR, x->line, x->col, NULL,
                         "matrix axis '%s' must be a non-empty list", k);
            err = WFH_EINVAL;
            json_decref(j);
            continue;
        }
        json_object_set_new(axes, k, j);
    }
    if (err < 0)
        goto done;
    if (json_object_size(axes) > 0 && json_array_append_new(combos, json_object()) < 0) {
        err = WFH_ENOMEM;
        goto done;
    }
    const char *ak;
    json_t *av;
    json_object_foreach(axes, ak, av) {
        json_t *next = json_array(); /* owned */
        size_t ci, vi;
        json_t *c, *val;
        json_array_foreach(combos, ci, c) {
            json_array_foreach(av, vi, val) {
                json_t *n = json_copy(c);
                if (!n || json_object_set(n, ak, val) < 0 || json_array_append_new(next, n) < 0) {
                    json_decref(next);
                    err = WFH_ENOMEM;
                    goto done;
                }
            }
        }
        json_decref(combos);
        combos = next;
        if (json_array_size(combos) > MATRIX_MAX) {
            wfh_diag_add(d, WFH_DIAG_ERROR, v->line, v->col, NULL,
                         "matrix has more than %d combinations", MATRIX_MAX);
            err = WFH_EINVAL;
            goto done;
        }
    }
    size_t ei;
    json_t *ex;
    json_array_foreach(exclude, ei, ex) {
        for (size_t ci = json_array_size(combos); ci-- > 0;)
            if (matrix_matches(json_array_get(combos, ci), ex))
                json_array_remove(combos, ci);
    }
    size_t ii;
    json_t *inc;
    size_t base = json_array_size(combos);
    json_array_foreach(include, ii, inc) {
        int merged = 0;
        for (size_t ci = 0; ci < base; ci++) {
            json_t *c = json_array_get(combos, ci);
            /* extends c if it changes none of c's axis values */
            int fits = 1;
            const char *k;
            json_t *x;
            json_object_foreach(inc, k, x) {
                if (json_object_get(axes, k) && json_object_get(c, k) &&
                    !json_equal(json_object_get(c, k), x))
                    fits = 0;
            }
            if (fits) {
                json_object_update(c, inc);
                merged = 1;
            }
        }
        if (!merged && json_array_append(combos, inc) < 0) {
            err = WFH_ENOMEM;
            goto done;
        }
    }
    if (json_array_size(combos) == 0) {
        wfh_diag_add(d, WFH_DIAG_ERROR, v->line, v->col, NULL,
                     "the matrix excludes every combination");
        err = WFH_EINVAL;
        goto done;
    }
    json_decref(st->matrix);
    st->matrix = combos;
    combos = NULL;
done:
    json_decref(combos);
    json_decref(include);
    json_decref(exclude);
    json_decref(axes);
    return err;
}

int wfh_lang_step_key(wfh_diags *d, const char *key, const wfh_ynode *v, wfh_step *st)
{
    if (!strcmp(key, "if")) {
        if (v->kind != WFH_Y_SCALAR || v->len == 0 || strlen(v->str) != v->len) {
            wfh_diag_add(d, WFH_DIAG_ERROR, v->line, v->col, "e.g. if: steps.build.outputs.ok == 'yes'",
                         "if must be an expression, not a %s",
                         v->kind == WFH_Y_SCALAR ? "empty value" : kind_name(v));
            return WFH_EINVAL;
        }
        wfh_expr_error e;
        memset(&e, 0, sizeof e);
        st->cond_text = strdup(v->str);
        if (!st->cond_text)
            return WFH_ENOMEM;
        wfh_yscalar_pos(v, d->source, d->source_len, 0, &st->if_line, &st->if_col);
        int err = wfh_expr_parse_condition(v->str, v->len, &lang_scope, &st->cond, &e);
        if (err == WFH_ENOMEM)
            return err;
        if (err < 0) {
            unsigned line, col;
            wfh_yscalar_pos(v, d->source, d->source_len, e.offset, &line, &col);
            wfh_diag_add(d, WFH_DIAG_ERROR, line, col, NULL, "%s",
                         e.message[0] ? e.message : "invalid expression in if");
            return WFH_EINVAL;
        }
        st->cond_status_fn = wfh_expr_uses_status_fn(st->cond);
        return 0;
    }
    if (!strcmp(key, "for_each")) {
        if (v->kind != WFH_Y_SCALAR || v->len == 0 || strlen(v->str) != v->len) {
            wfh_diag_add(d, WFH_DIAG_ERROR, v->line, v->col,
                         "e.g. for_each: ${{ fromJSON(steps.list.outputs.files) }}",
                         "for_each must be an expression yielding a list, not a %s",
                         v->kind == WFH_Y_SCALAR ? "empty value" : kind_name(v));
            return WFH_EINVAL;
        }
        wfh_expr_error e;
        memset(&e, 0, sizeof e);
        if (!(st->for_each_text = strdup(v->str)))
            return WFH_ENOMEM;
        wfh_yscalar_pos(v, d->source, d->source_len, 0, &st->fe_line, &st->fe_col);
        int err = wfh_expr_parse_condition(v->str, v->len, &lang_scope, &st->for_each, &e);
        if (err == WFH_ENOMEM)
            return err;
        if (err < 0) {
            unsigned line, col;
            wfh_yscalar_pos(v, d->source, d->source_len, e.offset, &line, &col);
            wfh_diag_add(d, WFH_DIAG_ERROR, line, col, NULL, "%s",
                         e.message[0] ? e.message : "invalid expression in for_each");
            return WFH_EINVAL;
        }
        return 0;
    }
    if (!strcmp(key, "max_parallel")) {
        char *end = NULL;
        errno = 0;
        long m = v->kind == WFH_Y_SCALAR ? strtol(v->str, &end, 10) : 0;
        if (v->kind != WFH_Y_SCALAR || !end || *end || end == v->str || errno || m < 1 ||
            m > 1000000) {
            wfh_diag_add(d, WFH_DIAG_ERROR, v->line, v->col, NULL,
                         "max_parallel must be a whole number from 1 to 1000000");
            return WFH_EINVAL;
        }
        st->max_parallel = (unsigned)m;
        return 0;
    }
    if (!strcmp(key, "matrix"))
        return load_matrix(d, v, st);
    if (!strcmp(key, "timeout"))
        return load_duration(d, v, "timeout", &st->timeout_ms);
    if (!strcmp(key, "retry"))
        return load_retry(d, v, &st->retry);
    if (!strcmp(key, "continue_on_error")) {
        if (v->kind == WFH_Y_SCALAR && v->plain && !strcmp(v->str, "true")) {
            st->continue_on_error = 1;
        } else if (v->kind == WFH_Y_SCALAR && v->plain && !strcmp(v->str, "false")) {
            st->continue_on_error = 0;
        } else {
            wfh_diag_add(d, WFH_DIAG_ERROR, v->line, v->col, NULL,
                         "continue_on_error must be true or false");
            return WFH_EINVAL;
        }
        return 0;
    }
    return 1;
}

void wfh_lang_step_clear(wfh_step *st)
{
    wfh_expr_free(st->for_each);
    st->for_each = NULL;
    free(st->for_each_text);
    st->for_each_text = NULL;
    json_decref(st->matrix);
    st->matrix = NULL;
    wfh_expr_free(st->cond);
    st->cond = NULL;
    free(st->cond_text);
    st->cond_text = NULL;
}

/* ---- top-level keys ------------------------------------------------------------------- */

static const char *const defaults_keys[] = {"timeout", "retry"};
static const char *const input_keys[] = {"type", "default", "required", "description", "env"};
static const char *const type_names[] = {[WFH_IN_STRING] = "string", [WFH_IN_NUMBER] = "number",
                                         [WFH_IN_BOOLEAN] = "boolean", [WFH_IN_LIST] = "list",
                                         [WFH_IN_OBJECT] = "object"};

static int type_ok(wfh_input_type t, const json_t *v)
{
    switch (t) {
    case WFH_IN_STRING: return json_is_string(v);
    case WFH_IN_NUMBER: return json_is_number(v);
    case WFH_IN_BOOLEAN: return json_is_boolean(v);
    case WFH_IN_LIST: return json_is_array(v);
    case WFH_IN_OBJECT: return json_is_object(v);
    }
    return 0;
}

/* A letter or '_', then letters, digits, '_' (and '-' when @p dash: input names; an
 * environment variable name as a POSIX shell accepts it has none). */
static int valid_name(const char *s, int dash)
{
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_'))
        return 0;
    for (s++; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || (dash && *s == '-')))
            return 0;
    return 1;
}

static int load_input(wfh_diags *d, const wfh_ynode *k, const wfh_ynode *n, wfh_input_decl *in)
{
    in->line = k->line;
    in->col = k->col;
    in->type = WFH_IN_STRING;
    in->name = strdup(k->str);
    if (!in->name)
        return WFH_ENOMEM;
    int err = 0;
    if (!valid_name(k->str, 1)) {
        wfh_diag_add(d, WFH_DIAG_ERROR, k->line, k->col,
                     "names are letters, digits, '_' and '-', starting with a letter or '_'",
                     "invalid input name '%s'", k->str);
        err = WFH_EINVAL;
    }
    if (is_empty(n))
        return err;
    char what[160];
    snprintf(what, sizeof what, "input '%s'", k->str);
    if (want_map(d, n, "e.g. {type: string, required: true}", what, "mapping") < 0)
        return WFH_EINVAL;
    const wfh_ynode *defn = NULL;
    for (size_t i = 0; i < n->n; i++) {
        const char *key = n->keys[i]->str;
        const wfh_ynode *v = n->items[i];
        if (!strcmp(key, "type")) {
            int found = -1;
            for (int t = 0; t < 5; t++)
                if (v->kind == WFH_Y_SCALAR && !strcmp(v->str, type_names[t]))
                    found = t;
            if (found < 0) {
                wfh_diag_add(d, WFH_DIAG_ERROR, v->line, v->col,
                             "types are string, number, boolean, list, object",
                             "unknown input type '%s'",
                             v->kind == WFH_Y_SCALAR ? v->str : kind_name(v));
                err = WFH_EINVAL;
            } else {
                in->type = (wfh_input_type)found;
            }
        } else if (!strcmp(key, "default")) {
            defn = v;
            json_decref(in->def);
            in->def = wfh_ynode_to_json(v);
            if (!in->def) {
                wfh_diag_add(d, WFH_DIAG_ERROR, v->line, v->col, NULL,
                             "default is not valid UTF-8 text");
                err = WFH_EINVAL;
            }
        } else if (!strcmp(key, "required")) {
            if (v->kind == WFH_Y_SCALAR && v->plain &&
                (!strcmp(v->str, "true") || !strcmp(v->str, "false"))) {
                in->required = !strcmp(v->str, "true");
            } else {
                wfh_diag_add(d, WFH_DIAG_ERROR, v->line, v->col, NULL,
                             "required must be true or false");
                err = WFH_EINVAL;
            }
        } else if (!strcmp(key, "description")) {
            if (v->kind != WFH_Y_SCALAR) {
                wfh_diag_add(d, WFH_DIAG_ERROR, v->line, v->col, NULL,
                             "description must be text");
                err = WFH_EINVAL;
            } else {
                free(in->description);
                in->description = strdup(v->str);
                if (!in->description)
                    return WFH_ENOMEM;
            }
        } else if (!strcmp(key, "env")) {
            /* Opt-in, one named variable per input: the host environment reaches a
             * workflow nowhere else. */
            if (v->kind != WFH_Y_SCALAR || !valid_name(v->str, 0)) {
                wfh_diag_add(d, WFH_DIAG_ERROR, v->line, v->col,
                             "e.g. env: WFH_LLM_BASE_URL (letters, digits and '_', not "
                             "starting with a digit)",
                             "env of input '%s' must name an environment variable, not %s%s%s",
                             k->str, v->kind == WFH_Y_SCALAR ? "'" : "a ",
                             v->kind == WFH_Y_SCALAR ? v->str : kind_name(v),
                             v->kind == WFH_Y_SCALAR ? "'" : "");
                err = WFH_EINVAL;
            } else {
                free(in->env);
                in->env = strdup(v->str);
                if (!in->env)
                    return WFH_ENOMEM;
                in->env_line = v->line;
                in->env_col = v->col;
            }
        } else {
            unknown_key(d, n->keys[i], "an input", input_keys,
                        sizeof input_keys / sizeof input_keys[0]);
            err = WFH_EINVAL;
        }
    }
    if (in->def && defn && !type_ok(in->type, in->def)) {
        wfh_diag_add(d, WFH_DIAG_ERROR, defn->line, defn->col, NULL,
                     "the default of input '%s' is a %s, but its type is %s", in->name,
                     wfh_expr_kind_name(in->def), type_names[in->type]);
        err = WFH_EINVAL;
    }
    return err;
}

static int valid_secret_name(const char *s)
{
    if (!((*s >= 'A' && *s <= 'Z') || *s == '_'))
        return 0;
    for (s++; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_'))
            return 0;
    return 1;
}

int wfh_lang_top_key(wfh_diags *d, const char *key, const wfh_ynode *v, wfh_workflow *wf)
{
    int err = 0;
    if (!strcmp(key, "defaults")) {
        if (is_empty(v))
            return 0;
        if (want_map(d, v, "e.g. defaults: {timeout: 5m}", "defaults", "mapping") < 0)
            return WFH_EINVAL;
        for (size_t i = 0; i < v->n; i++) {
            const char *k = v->keys[i]->str;
            int e = 0;
            if (!strcmp(k, "timeout"))
                e = load_duration(d, v->items[i], "defaults.timeout", &wf->default_timeout_ms);
            else if (!strcmp(k, "retry"))
                e = load_retry(d, v->items[i], &wf->default_retry);
            else {
                unknown_key(d, v->keys[i], "defaults", defaults_keys, 2);
                e = WFH_EINVAL;
            }
            if (e < 0)
                err = e;
        }
        return err;
    }
    if (!strcmp(key, "inputs")) {
        if (is_empty(v))
            return 0;
        if (want_map(d, v, "e.g. inputs: {name: {type: string, required: true}}", "inputs",
                     "mapping of name: declaration") < 0)
            return WFH_EINVAL;
        wf->inputs = calloc(v->n ? v->n : 1, sizeof *wf->inputs);
        if (!wf->inputs)
            return WFH_ENOMEM;
        for (size_t i = 0; i < v->n; i++) {
            int e = load_input(d, v->keys[i], v->items[i], &wf->inputs[wf->n_inputs++]);
            if (e == WFH_ENOMEM)
                return e;
            if (e < 0)
                err = e;
        }
        return err;
    }
    if (!strcmp(key, "outputs")) {
        if (is_empty(v))
            return 0;
        if (want_map(d, v, "e.g. outputs: {version: '${{ steps.build.outputs.version }}'}",
                     "outputs", "mapping of name: expression") < 0)
            return WFH_EINVAL;
        return wfh_value_compile(v, &lang_scope, 0, d, &wf->outputs);
    }
    if (!strcmp(key, "circuit_breaker")) {
        static const char *const cb_keys[] = {"failures", "cooldown"};
        if (want_map(d, v, "e.g. circuit_breaker: {failures: 5, cooldown: 30s}", "circuit_breaker",
                     "mapping") < 0)
            return WFH_EINVAL;
        wf->cb_failures = 5;
        wf->cb_cooldown_ms = 30000;
        for (size_t i = 0; i < v->n; i++) {
            const char *k = v->keys[i]->str;
            const wfh_ynode *x = v->items[i];
            if (!strcmp(k, "failures")) {
                char *end = NULL;
                errno = 0;
                long m = x->kind == WFH_Y_SCALAR ? strtol(x->str, &end, 10) : 0;
                if (x->kind != WFH_Y_SCALAR || !end || *end || end == x->str || errno ||
                    m < 1 || m > 1000000) {
                    wfh_diag_add(d, WFH_DIAG_ERROR, x->line, x->col, NULL,
                                 "circuit_breaker.failures must be a whole number from 1 "
                                 "to 1000000");
                    err = WFH_EINVAL;
                } else {
                    wf->cb_failures = (unsigned)m;
                }
            } else if (!strcmp(k, "cooldown")) {
                if (load_duration(d, x, "circuit_breaker.cooldown", &wf->cb_cooldown_ms) < 0)
                    err = WFH_EINVAL;
            } else {
                unknown_key(d, v->keys[i], "circuit_breaker", cb_keys, 2);
                err = WFH_EINVAL;
            }
        }
        return err;
    }
    if (!strcmp(key, "limits")) {
        if (is_empty(v))
            return 0;
        if (want_map(d, v, "e.g. limits: {llm: 4}", "limits", "mapping of step type: number") < 0)
            return WFH_EINVAL;
        wf->limit_types = calloc(v->n ? v->n : 1, sizeof *wf->limit_types);
        wf->limit_values = calloc(v->n ? v->n : 1, sizeof *wf->limit_values);
        if (!wf->limit_types || !wf->limit_values)
            return WFH_ENOMEM;
        for (size_t i = 0; i < v->n; i++) {
            const wfh_ynode *x = v->items[i];
            char *end = NULL;
            errno = 0;
            long m = x->kind == WFH_Y_SCALAR ? strtol(x->str, &end, 10) : 0;
            if (x->kind != WFH_Y_SCALAR || !end || *end || end == x->str || errno || m < 1 ||
                m > 1000000) {
                wfh_diag_add(d, WFH_DIAG_ERROR, x->line, x->col, NULL,
                             "the limit for '%s' must be a whole number from 1 to 1000000",
                             v->keys[i]->str);
                err = WFH_EINVAL;
                continue;
            }
            if (!(wf->limit_types[wf->n_limits] = strdup(v->keys[i]->str)))
                return WFH_ENOMEM;
            wf->limit_values[wf->n_limits++] = (unsigned)m;
        }
        return err;
    }
    if (!strcmp(key, "secrets")) {
        wf->secrets_line = v->line;
        wf->secrets_col = v->col;
        if (is_empty(v))
            return 0;
        size_t cnt = v->kind == WFH_Y_SEQ ? v->n : 1;
        if (v->kind == WFH_Y_MAP) {
            wfh_diag_add(d, WFH_DIAG_ERROR, v->line, v->col, "e.g. secrets: [API_TOKEN]",
                         "secrets must be a list of names, not a mapping");
            return WFH_EINVAL;
        }
        wf->secrets = calloc(cnt ? cnt : 1, sizeof *wf->secrets);
        if (!wf->secrets)
            return WFH_ENOMEM;
        for (size_t i = 0; i < cnt; i++) {
            const wfh_ynode *x = v->kind == WFH_Y_SEQ ? v->items[i] : v;
            if (x->kind != WFH_Y_SCALAR || !valid_secret_name(x->str)) {
                wfh_diag_add(d, WFH_DIAG_ERROR, x->line, x->col,
                             "secret names are upper-case letters, digits and '_' "
                             "(read from WFH_SECRET_<NAME>)",
                             "invalid secret name '%s'",
                             x->kind == WFH_Y_SCALAR ? x->str : kind_name(x));
                err = WFH_EINVAL;
                continue;
            }
            for (size_t j = 0; j < wf->n_secrets; j++)
                if (!strcmp(wf->secrets[j], x->str)) {
                    wfh_diag_add(d, WFH_DIAG_ERROR, x->line, x->col, NULL,
                                 "secret '%s' is declared twice", x->str);
                    err = WFH_EINVAL;
                }
            if (!(wf->secrets[wf->n_secrets] = strdup(x->str)))
                return WFH_ENOMEM;
            wf->n_secrets++;
        }
        return err;
    }
    return 1;
}

void wfh_lang_workflow_clear(wfh_workflow *wf)
{
    for (size_t i = 0; i < wf->n_inputs; i++) {
        free(wf->inputs[i].name);
        free(wf->inputs[i].description);
        free(wf->inputs[i].env);
        json_decref(wf->inputs[i].def);
    }
    free(wf->inputs);
    wf->inputs = NULL;
    wf->n_inputs = 0;
    wfh_value_free(wf->outputs);
    wf->outputs = NULL;
    for (size_t i = 0; i < wf->n_secrets; i++)
        free(wf->secrets[i]);
    free(wf->secrets);
    wf->secrets = NULL;
    wf->n_secrets = 0;
    for (size_t i = 0; i < wf->n_limits; i++)
        free(wf->limit_types[i]);
    free(wf->limit_types);
    free(wf->limit_values);
    wf->limit_types = NULL;
    wf->limit_values = NULL;
    wf->n_limits = 0;
}

/* ---- validation ----------------------------------------------------------------------- */

typedef struct lctx {
    wfh_workflow *wf;
    wfh_diags *d;
    size_t cur;                /* the step whose `if` is checked, or (size_t)-1: outputs */
    const wfh_value *v;        /* outputs: the template being walked */
    int in_for_each;           /* checking for_each rather than if */
    unsigned char *seen;       /* owned [n]: ancestor search marks */
    size_t *stack;             /* owned [n] */
    int oom;
} lctx;

static void expr_pos(unsigned l0, unsigned c0, const char *text, size_t off, unsigned *line,
                     unsigned *col)
{
    /* `if:` is nearly always one line: count columns from its start; a multi-line one
     * points at its first line. */
    *line = l0;
    *col = c0;
    if (text && off <= strlen(text) && !memchr(text, '\n', off))
        *col += (unsigned)off;
}

static int is_ancestor(lctx *c, size_t step, size_t target)
{
    const wfh_workflow *wf = c->wf;
    memset(c->seen, 0, wf->n_steps);
    size_t top = 0;
    c->stack[top++] = step;
    c->seen[step] = 1;
    while (top) {
        const wfh_step *s = &wf->steps[c->stack[--top]];
        for (size_t k = 0; s->needs && k < s->n_needs; k++) {
            size_t p = s->needs[k];
            if (p >= wf->n_steps || c->seen[p])
                continue;
            if (p == target)
                return 1;
            c->seen[p] = 1;
            c->stack[top++] = p;
        }
    }
    return 0;
}

static void check_ref(lctx *c, const wfh_expr_ref *ref, unsigned line, unsigned col,
                      const char *where)
{
    if (ref->nparts < 1 || !ref->parts[0])
        return;
    if (!strcasecmp(ref->parts[0], "secrets")) {
        wfh_diag_add(c->d, WFH_DIAG_ERROR, line, col,
                     "pass it through the step's env or with, where it is masked",
                     "secrets cannot be used in %s", where);
        return;
    }
    if (strcasecmp(ref->parts[0], "steps") || ref->nparts < 2 || !ref->parts[1])
        return;
    long j = wfh_workflow_step_index(c->wf, ref->parts[1]);
    if (j < 0) {
        wfh_diag_add(c->d, WFH_DIAG_ERROR, line, col, NULL, "%s refers to unknown step '%s'",
                     where, ref->parts[1]);
        return;
    }
    if (c->cur == (size_t)-1)
        return; /* workflow outputs see every step */
    if ((size_t)j == c->cur) {
        wfh_diag_add(c->d, WFH_DIAG_ERROR, line, col, NULL,
                     "the %s of step '%s' refers to the step itself, which has not run yet",
                     c->in_for_each ? "for_each" : "if", c->wf->steps[c->cur].id);
    } else if (!is_ancestor(c, c->cur, (size_t)j)) {
        char hint[160];
        snprintf(hint, sizeof hint, "add '%s' to its needs", ref->parts[1]);
        wfh_diag_add(c->d, WFH_DIAG_ERROR, line, col, hint,
                     "the %s of step '%s' refers to step '%s', which is not among its needs "
                     "(direct or indirect)",
                     c->in_for_each ? "for_each" : "if", c->wf->steps[c->cur].id,
                     ref->parts[1]);
    }
}

static void on_cond_ref(void *ud, const wfh_expr_ref *ref)
{
    lctx *c = ud;
    unsigned line, col;
    const wfh_step *s = &c->wf->steps[c->cur];
    if (c->in_for_each)
        expr_pos(s->fe_line, s->fe_col, s->for_each_text, ref->offset, &line, &col);
    else
        expr_pos(s->if_line, s->if_col, s->cond_text, ref->offset, &line, &col);
    check_ref(c, ref, line, col, c->in_for_each ? "for_each" : "if");
}

static void on_output_ref(void *ud, const wfh_expr_ref *ref)
{
    lctx *c = ud;
    unsigned line, col;
    wfh_value_pos(c->v, ref->offset, &line, &col);
    check_ref(c, ref, line, col, "the workflow's outputs");
}

static void on_output_tmpl(void *ud, const wfh_value *t)
{
    lctx *c = ud;
    c->v = t;
    wfh_tmpl_refs(t->tmpl, on_output_ref, c);
}

/* `item`, `index` and `matrix` exist only inside a fan-out step's with/env. */
static void on_fanout_ref(void *ud, const wfh_expr_ref *ref)
{
    lctx *c = ud;
    if (ref->nparts < 1 || !ref->parts[0])
        return;
    const wfh_step *s = &c->wf->steps[c->cur];
    const char *name = ref->parts[0];
    int fan = s->for_each || s->matrix;
    int bad = (!strcasecmp(name, "item") || !strcasecmp(name, "index")) ? !fan
              : !strcasecmp(name, "matrix")                               ? !s->matrix
                                                                          : 0;
    if (!bad)
        return;
    unsigned line, col;
    wfh_value_pos(c->v, ref->offset, &line, &col);
    wfh_diag_add(c->d, WFH_DIAG_ERROR, line, col,
                 !strcasecmp(name, "matrix") ? "matrix is set in steps with a matrix:"
                                             : "item and index are set in steps with for_each: "
                                               "or matrix:",
                 "step '%s' reads '%s', which it does not have", s->id, name);
}

static void on_fanout_tmpl(void *ud, const wfh_value *t)
{
    lctx *c = ud;
    c->v = t;
    wfh_tmpl_refs(t->tmpl, on_fanout_ref, c);
}

static void on_cond_fanout_ref(void *ud, const wfh_expr_ref *ref)
{
    lctx *c = ud;
    if (ref->nparts < 1 || !ref->parts[0])
        return;
    const char *name = ref->parts[0];
    if (strcasecmp(name, "item") && strcasecmp(name, "index") && strcasecmp(name, "matrix"))
        return;
    const wfh_step *s = &c->wf->steps[c->cur];
    unsigned line, col;
    if (c->in_for_each)
        expr_pos(s->fe_line, s->fe_col, s->for_each_text, ref->offset, &line, &col);
    else
        expr_pos(s->if_line, s->if_col, s->cond_text, ref->offset, &line, &col);
    wfh_diag_add(c->d, WFH_DIAG_ERROR, line, col,
                 "they are set per item, in with and env; the step's if and for_each are "
                 "evaluated once",
                 "the %s of step '%s' reads '%s', which it does not have",
                 c->in_for_each ? "for_each" : "if", s->id, name);
}

int wfh_lang_validate(wfh_workflow *wf, wfh_diags *d)
{
    lctx c = {.wf = wf, .d = d};
    c.seen = calloc(wf->n_steps ? wf->n_steps : 1, 1);
    c.stack = calloc(wf->n_steps ? wf->n_steps : 1, sizeof *c.stack);
    if (!c.seen || !c.stack) {
        free(c.seen);
        free(c.stack);
        return WFH_ENOMEM;
    }
    for (size_t i = 0; i < wf->n_steps; i++) {
        const wfh_step *s = &wf->steps[i];
        if (!s->id)
            continue;
        c.cur = i;
        c.in_for_each = 0;
        if (s->cond) {
            wfh_expr_refs(s->cond, on_cond_ref, &c);
            wfh_expr_refs(s->cond, on_cond_fanout_ref, &c);
        }
        c.in_for_each = 1;
        if (s->for_each) {
            wfh_expr_refs(s->for_each, on_cond_ref, &c);
            wfh_expr_refs(s->for_each, on_cond_fanout_ref, &c);
        }
        wfh_value_walk_tmpls(s->with, on_fanout_tmpl, &c);
        wfh_value_walk_tmpls(s->env, on_fanout_tmpl, &c);
        if (s->for_each && s->matrix)
            wfh_diag_add(d, WFH_DIAG_ERROR, s->fe_line, s->fe_col,
                         "use one: a matrix is a for_each over its combinations",
                         "step '%s' has both for_each and matrix", s->id);
        if (s->max_parallel && !s->for_each && !s->matrix)
            wfh_diag_add(d, WFH_DIAG_WARNING, s->line, s->col, NULL,
                         "step '%s': max_parallel without for_each or matrix does nothing",
                         s->id);
    }
    /* Inputs are recorded with the run (the run store, exec --json): a secret read
     * through an input's env: would be kept there in clear. */
    for (size_t i = 0; i < wf->n_inputs; i++) {
        const wfh_input_decl *in = &wf->inputs[i];
        for (size_t j = 0; in->env && j < wf->n_secrets; j++)
            if (!strcmp(in->env, wf->secrets[j]))
                wfh_diag_add(d, WFH_DIAG_ERROR, in->env_line, in->env_col,
                             "inputs are recorded with the run, secrets are not: read it as "
                             "${{ secrets.NAME }}",
                             "input '%s' takes its value from %s, which this workflow "
                             "declares as a secret", in->name, in->env);
    }
    c.cur = (size_t)-1;
    wfh_value_walk_tmpls(wf->outputs, on_output_tmpl, &c);
    free(c.seen);
    free(c.stack);
    return 0;
}

/* ---- inputs at run time --------------------------------------------------------------- */

static const wfh_input_decl *find_input(const wfh_workflow *wf, const char *name)
{
    for (size_t i = 0; i < wf->n_inputs; i++)
        if (!strcmp(wf->inputs[i].name, name))
            return &wf->inputs[i];
    return NULL;
}

/* The value of input @p in (NULL: undeclared, taken as a string) from text given on
 * the command line or by its env: variable: a string input takes the text as is, the
 * others parse it as JSON. New reference, or NULL with the reason in @p why. */
static json_t *input_from_text(const wfh_input_decl *in, const char *text, char *why,
                               size_t whylen)
{
    json_t *v;
    if (!in || in->type == WFH_IN_STRING) {
        if (!(v = json_string(text)))
            snprintf(why, whylen, "the value is not valid UTF-8");
        return v;
    }
    json_error_t je;
    if (!(v = json_loads(text, JSON_DECODE_ANY, &je)))
        snprintf(why, whylen, "input '%s' is a %s, so its value is JSON, and '%.80s' is not (%s)",
                 in->name, type_names[in->type], text, je.text);
    return v;
}

int wfh_inputs_parse_arg(const wfh_workflow *wf, const char *name, const char *text,
                         json_t **out)
{
    char why[400];
    *out = input_from_text(find_input(wf, name), text, why, sizeof why);
    if (!*out)
        return wfh_error_set(WFH_EUSAGE, "exec: -i %s: %s", name, why);
    return 0;
}

int wfh_inputs_resolve(const wfh_workflow *wf, json_t *given, json_t **out)
{
    int err = 0;
    json_t *res = json_object(); /* owned until *out */
    *out = NULL;
    if (!res)
        return wfh_error_set(WFH_ENOMEM, "%s: out of memory", wf->path);
    const char *k;
    json_t *v;
    if (given && !json_is_object(given)) {
        err = wfh_error_set(WFH_EINVAL, "%s: the inputs must be a JSON object", wf->path);
        goto done;
    }
    if (given) {
        json_object_foreach(given, k, v) {
            const wfh_input_decl *in = find_input(wf, k);
            if (!in) {
                char names[400] = "";
                size_t o = 0;
                for (size_t j = 0; j < wf->n_inputs && o < sizeof names - 1; j++) {
                    int w = snprintf(names + o, sizeof names - o, "%s%s", j ? ", " : "",
                                     wf->inputs[j].name);
                    o += w > 0 ? (size_t)w : 0;
                }
                err = wfh_error_set(WFH_EINVAL, "%s: unknown input '%s' (it declares %s)",
                                    wf->path, k, wf->n_inputs ? names : "no inputs");
                goto done;
            }
            if (!type_ok(in->type, v)) {
                err = wfh_error_set(WFH_EINVAL, "%s:%u:%u: input '%s' must be a %s, not a %s",
                                    wf->path, in->line, in->col, k, type_names[in->type],
                                    wfh_expr_kind_name(v));
                goto done;
            }
            if (json_object_set(res, k, v) < 0) {
                err = wfh_error_set(WFH_ENOMEM, "%s: out of memory", wf->path);
                goto done;
            }
        }
    }
    for (size_t i = 0; i < wf->n_inputs; i++) {
        const wfh_input_decl *in = &wf->inputs[i];
        if (json_object_get(res, in->name))
            continue;
        /* Not given: its env: variable, when set and not empty (as ${VAR:-default}). */
        const char *text = in->env ? getenv(in->env) : NULL;
        if (text && *text) {
            char why[400];
            json_t *ev = input_from_text(in, text, why, sizeof why); /* owned */
            if (!ev || !type_ok(in->type, ev)) {
                if (ev)
                    snprintf(why, sizeof why, "it must be a %s, not a %s", type_names[in->type],
                             wfh_expr_kind_name(ev));
                json_decref(ev);
                err = wfh_error_set(WFH_EINVAL, "%s:%u:%u: input '%s' takes its value from "
                                    "environment variable %s: %s",
                                    wf->path, in->env_line, in->env_col, in->name, in->env, why);
                goto done;
            }
            if (json_object_set_new(res, in->name, ev) < 0) {
                err = wfh_error_set(WFH_ENOMEM, "%s: out of memory", wf->path);
                goto done;
            }
            continue;
        }
        if (in->required) {
            if (in->env)
                err = wfh_error_set(WFH_EINVAL, "%s:%u:%u: input '%s' is required: pass -i %s=... "
                                    "or set environment variable %s", wf->path, in->line, in->col,
                                    in->name, in->name, in->env);
            else
                err = wfh_error_set(WFH_EINVAL, "%s:%u:%u: input '%s' is required: pass -i %s=...",
                                    wf->path, in->line, in->col, in->name, in->name);
            goto done;
        }
        /* An optional input without a default reads as null, so default() can fill it. */
        if (json_object_set(res, in->name, in->def ? in->def : json_null()) < 0) {
            err = wfh_error_set(WFH_ENOMEM, "%s: out of memory", wf->path);
            goto done;
        }
    }
done:
    if (err < 0) {
        json_decref(res);
        return err;
    }
    *out = res;
    return 0;
}
