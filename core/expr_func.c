/*
 * core/expr_func.c - the functions: GitHub's (contains, startsWith, endsWith, format,
 * join, toJSON, fromJSON, case, the status functions; hashFiles is refused) and wfhost's
 * additions (split, lower, upper, trim, length, default). Names are case-insensitive.
 * Arguments are evaluated eagerly except in case() and default(), which, like && and ||,
 * evaluate only what decides the result.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "error.h"
#include "expr_internal.h"

static const wfh_expr_fn functions[] = {
    {"contains", F_CONTAINS, 2, 2},
    {"startsWith", F_STARTSWITH, 2, 2},
    {"endsWith", F_ENDSWITH, 2, 2},
    {"format", F_FORMAT, 1, -1},
    {"join", F_JOIN, 1, 2},
    {"toJSON", F_TOJSON, 1, 1},
    {"fromJSON", F_FROMJSON, 1, 1},
    {"hashFiles", F_HASHFILES, 1, -1},
    {"case", F_CASE, 3, -1},
    {"success", F_SUCCESS, 0, 0},
    {"failure", F_FAILURE, 0, 0},
    {"always", F_ALWAYS, 0, 0},
    {"cancelled", F_CANCELLED, 0, 0},
    {"split", F_SPLIT, 2, 2},
    {"lower", F_LOWER, 1, 1},
    {"upper", F_UPPER, 1, 1},
    {"trim", F_TRIM, 1, 1},
    {"length", F_LENGTH, 1, 1},
    {"default", F_DEFAULT, 2, -1},
};

const wfh_expr_fn *wfh_expr_fn_find(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof functions / sizeof functions[0]; i++)
        if (strlen(functions[i].name) == len && strncasecmp(functions[i].name, name, len) == 0)
            return &functions[i];
    return NULL;
}

/* Case-insensitive edit distance, capped: names are short, so the O(n*m) table is tiny. */
static size_t edit_distance(const char *a, size_t al, const char *b, size_t bl)
{
    size_t row[64];
    if (al >= 63 || bl >= 63)
        return 99;
    for (size_t j = 0; j <= bl; j++)
        row[j] = j;
    for (size_t i = 1; i <= al; i++) {
        size_t prev = row[0];
        row[0] = i;
        for (size_t j = 1; j <= bl; j++) {
            size_t cur = row[j];
            int same = (a[i - 1] | 0x20) == (b[j - 1] | 0x20);
            size_t best = prev + (same ? 0 : 1);
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            prev = cur;
        }
    }
    return row[bl];
}

static void consider(const char *name, size_t len, const char *cand, const char **best,
                     size_t *best_d)
{
    size_t d = edit_distance(name, len, cand, strlen(cand));
    if (d <= *best_d && (!*best || d < *best_d)) {
        *best = cand;
        *best_d = d;
    }
}

const char *wfh_expr_suggest(const char *name, size_t len, const char *const *candidates)
{
    const char *best = NULL;
    size_t best_d = len <= 3 ? 1 : 2; /* only close misspellings */
    if (!candidates) {
        for (size_t i = 0; i < sizeof functions / sizeof functions[0]; i++)
            consider(name, len, functions[i].name, &best, &best_d);
        return best;
    }
    for (const char *const *c = candidates; *c; c++)
        consider(name, len, *c, &best, &best_d);
    return best;
}

static int set_string(wfh_eval_ctx *cx, const wfh_node *n, const char *s, size_t len, wfh_val *out)
{
    int rc = wfh_expr_charge(cx, n->off, len);
    if (rc < 0)
        return rc;
    if (wfh_val_string(s, len, out) < 0) {
        wfh_expr_eval_fail(cx, n->off, "out of memory");
        return wfh_error_set(WFH_ENOMEM, "expression: out of memory");
    }
    return 0;
}

static int nomem(wfh_eval_ctx *cx, const wfh_node *n)
{
    wfh_expr_eval_fail(cx, n->off, "out of memory");
    return wfh_error_set(WFH_ENOMEM, "expression: out of memory");
}

/* startsWith / endsWith / contains on two primitives, ignoring case. */
static int str_match(wfh_eval_ctx *cx, const wfh_node *n, const wfh_val *hay, const wfh_val *needle,
                     int *result)
{
    size_t hl, nl, fhl, fnl;
    char *h = wfh_val_to_string(hay, &hl), *nd = wfh_val_to_string(needle, &nl); /* owned */
    char *fh = NULL, *fn = NULL;                                                  /* owned */
    int rc = 0;
    if (!h || !nd)
        goto oom;
    fh = wfh_expr_case_map(h, hl, 1, &fhl);
    fn = wfh_expr_case_map(nd, nl, 1, &fnl);
    if (!fh || !fn)
        goto oom;
    if (n->op == F_STARTSWITH)
        *result = fnl <= fhl && memcmp(fh, fn, fnl) == 0;
    else if (n->op == F_ENDSWITH)
        *result = fnl <= fhl && memcmp(fh + fhl - fnl, fn, fnl) == 0;
    else
        *result = fnl == 0 || memmem(fh, fhl, fn, fnl) != NULL;
    goto done;
oom:
    rc = nomem(cx, n);
done:
    free(h);
    free(nd);
    free(fh);
    free(fn);
    return rc;
}

/* GitHub's format(): {N} placeholders, {{ and }} escapes; anything else is an error. */
static int do_format(wfh_eval_ctx *cx, const wfh_node *n, wfh_val *args, size_t nargs, wfh_val *out)
{
    wfh_buf b = {0};
    size_t flen;
    char *f = wfh_val_to_string(&args[0], &flen); /* owned */
    int rc = 0;
    if (!f)
        return nomem(cx, n);
    for (size_t i = 0; i < flen;) {
        char c = f[i];
        if (c == '{' && i + 1 < flen && f[i + 1] == '{') {
            wfh_buf_addc(&b, '{');
            i += 2;
        } else if (c == '}' && i + 1 < flen && f[i + 1] == '}') {
            wfh_buf_addc(&b, '}');
            i += 2;
        } else if (c == '{') {
            size_t j = i + 1, idx = 0;
            while (j < flen && f[j] >= '0' && f[j] <= '9') {
                if (idx < 100000000)
                    idx = idx * 10 + (size_t)(f[j] - '0');
                j++;
            }
            if (j == i + 1 || j >= flen || f[j] != '}') {
                rc = wfh_expr_eval_fail(cx, n->off, "The following format string is invalid: %s", f);
                goto done;
            }
            if (idx + 1 >= nargs) {
                rc = wfh_expr_eval_fail(
                    cx, n->off,
                    "The following format string references more arguments than were supplied: %s",
                    f);
                goto done;
            }
            size_t al;
            char *a = wfh_val_to_string(&args[idx + 1], &al);
            if (!a) {
                rc = nomem(cx, n);
                goto done;
            }
            wfh_buf_add(&b, a, al);
            free(a);
            i = j + 1;
            /* Checked as it grows, so a format bomb stops early. */
            if (2 * b.len > WFH_EXPR_MAX_MEMORY && (rc = wfh_expr_charge(cx, n->off, b.len)) < 0)
                goto done;
        } else if (c == '}') {
            rc = wfh_expr_eval_fail(cx, n->off, "The following format string is invalid: %s", f);
            goto done;
        } else {
            size_t j = i;
            while (j < flen && f[j] != '{' && f[j] != '}')
                j++;
            wfh_buf_add(&b, f + i, j - i);
            i = j;
        }
    }
    if (b.oom) {
        rc = nomem(cx, n);
        goto done;
    }
    rc = set_string(cx, n, b.p ? b.p : "", b.len, out);
done:
    free(f);
    free(b.p);
    return rc;
}

static int do_join(wfh_eval_ctx *cx, const wfh_node *n, wfh_val *args, size_t nargs, wfh_val *out)
{
    if (args[0].kind == WV_OBJ)
        return set_string(cx, n, "", 0, out);
    if (args[0].kind != WV_ARR) {
        size_t l;
        char *s = wfh_val_to_string(&args[0], &l);
        if (!s)
            return nomem(cx, n);
        int rc = set_string(cx, n, s, l, out);
        free(s);
        return rc;
    }
    size_t sl = 1;
    char *sep = NULL; /* owned */
    if (nargs > 1 && wfh_val_primitive(&args[1]))
        sep = wfh_val_to_string(&args[1], &sl);
    else
        sep = strdup(",");
    if (!sep)
        return nomem(cx, n);
    wfh_buf b = {0};
    int rc = 0;
    for (size_t i = 0; i < json_array_size(args[0].j); i++) {
        wfh_val item;
        size_t il;
        wfh_val_from_json(json_array_get(args[0].j, i), &item);
        char *s = wfh_val_to_string(&item, &il);
        wfh_val_clear(&item);
        if (!s) {
            b.oom = 1;
            break;
        }
        if (i)
            wfh_buf_add(&b, sep, sl);
        wfh_buf_add(&b, s, il);
        free(s);
        if (2 * b.len > WFH_EXPR_MAX_MEMORY && (rc = wfh_expr_charge(cx, n->off, b.len)) < 0)
            goto done;
    }
    if (b.oom)
        rc = nomem(cx, n);
    else
        rc = set_string(cx, n, b.p ? b.p : "", b.len, out);
done:
    free(sep);
    free(b.p);
    return rc;
}

static int do_tojson(wfh_eval_ctx *cx, const wfh_node *n, const wfh_val *v, wfh_val *out)
{
    wfh_buf b = {0};
    char num[64];
    int rc;
    if (v->kind == WV_NUM && !v->j) {
        wfh_expr_json_number(v->n, num, sizeof num);
        wfh_buf_addstr(&b, num);
    } else {
        json_t *j = wfh_val_to_json(v, NULL); /* owned */
        if (!j)
            return nomem(cx, n);
        wfh_expr_json_write(&b, j, 1, 0);
        json_decref(j);
    }
    if (b.oom)
        rc = nomem(cx, n);
    else
        rc = set_string(cx, n, b.p, b.len, out);
    free(b.p);
    return rc;
}

static int do_fromjson(wfh_eval_ctx *cx, const wfh_node *n, const wfh_val *v, wfh_val *out)
{
    size_t len;
    char *s = wfh_val_to_string(v, &len); /* owned */
    json_error_t jerr;
    if (!s)
        return nomem(cx, n);
    int rc = wfh_expr_charge(cx, n->off, len);
    if (rc < 0) {
        free(s);
        return rc;
    }
    json_t *j = json_loadb(s, len, JSON_DECODE_ANY, &jerr); /* owned */
    if (!j) /* integers past 64 bits: keep them as reals rather than fail */
        j = json_loadb(s, len, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL, &jerr);
    free(s);
    if (!j)
        return wfh_expr_eval_fail(cx, n->off, "fromJSON: invalid JSON: %s (line %d, column %d)",
                                  jerr.text, jerr.line, jerr.column);
    wfh_val_from_json(j, out);
    json_decref(j);
    return 0;
}

static int do_split(wfh_eval_ctx *cx, const wfh_node *n, wfh_val *args, wfh_val *out)
{
    size_t sl, dl;
    char *s = NULL, *d = NULL; /* owned */
    json_t *arr = json_array(); /* owned until moved to out */
    int rc = 0;
    if (!arr)
        return nomem(cx, n);
    if (args[0].kind == WV_NULL)
        goto ok;
    if (!wfh_val_primitive(&args[0]) || !wfh_val_primitive(&args[1])) {
        rc = wfh_expr_eval_fail(cx, n->off, "split() needs a string and a separator string");
        goto done;
    }
    s = wfh_val_to_string(&args[0], &sl);
    d = wfh_val_to_string(&args[1], &dl);
    if (!s || !d)
        goto oom;
    if ((rc = wfh_expr_charge(cx, n->off, sl)) < 0)
        goto done;
    if (sl == 0)
        goto ok;
    for (size_t i = 0; i < sl;) {
        size_t j;
        if (dl == 0) { /* empty separator: one item per character */
            j = i;
            wfh_expr_utf8_next(s, sl, &j);
            json_t *piece = json_stringn_nocheck(s + i, j - i);
            if (!piece || json_array_append_new(arr, piece) < 0)
                goto oom;
            i = j;
            continue;
        }
        const char *hit = memmem(s + i, sl - i, d, dl);
        j = hit ? (size_t)(hit - s) : sl;
        json_t *piece = json_stringn_nocheck(s + i, j - i);
        if (!piece || json_array_append_new(arr, piece) < 0)
            goto oom;
        if (!hit)
            break;
        i = j + dl;
        if (i == sl) { /* trailing separator: a last empty item, as split() does elsewhere */
            json_t *e = json_string("");
            if (!e || json_array_append_new(arr, e) < 0)
                goto oom;
        }
    }
ok:
    out->kind = WV_ARR;
    out->j = arr;
    arr = NULL;
    goto done;
oom:
    rc = nomem(cx, n);
done:
    json_decref(arr);
    free(s);
    free(d);
    return rc;
}

static int is_trim_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static int do_length(wfh_eval_ctx *cx, const wfh_node *n, const wfh_val *v, wfh_val *out)
{
    out->kind = WV_NUM;
    switch (v->kind) {
    case WV_NULL: out->n = 0; return 0;
    case WV_ARR: out->n = (double)json_array_size(v->j); return 0;
    case WV_OBJ: out->n = (double)json_object_size(v->j); return 0;
    case WV_STR: {
        const char *s = json_string_value(v->j);
        size_t len = json_string_length(v->j), count = 0;
        for (size_t i = 0; i < len; count++)
            wfh_expr_utf8_next(s, len, &i);
        out->n = (double)count;
        return 0;
    }
    default:
        out->kind = WV_NULL;
        return wfh_expr_eval_fail(cx, n->off,
                                  "length() needs a string, an array or an object, not a %s",
                                  v->kind == WV_NUM ? "number" : "boolean");
    }
}

/* case(pred, value, pred, value, ..., default): predicates must be booleans. */
static int do_case(wfh_eval_ctx *cx, const wfh_node *n, wfh_val *out)
{
    size_t i;
    for (i = 0; i + 1 < n->nkids; i += 2) {
        wfh_val p = {0};
        int rc = wfh_expr_eval_node(cx, n->kids[i], &p);
        if (rc < 0)
            return rc;
        if (p.kind != WV_BOOL) {
            wfh_val_clear(&p);
            return wfh_expr_eval_fail(cx, n->kids[i]->off,
                                      "case predicate must evaluate to a boolean value");
        }
        if (p.b)
            return wfh_expr_eval_node(cx, n->kids[i + 1], out);
    }
    return wfh_expr_eval_node(cx, n->kids[i], out);
}

static int do_default(wfh_eval_ctx *cx, const wfh_node *n, wfh_val *out)
{
    cx->in_default++;
    int rc = 0;
    for (size_t i = 0; i < n->nkids; i++) {
        wfh_val_clear(out);
        if ((rc = wfh_expr_eval_node(cx, n->kids[i], out)) < 0)
            break;
        if (out->kind != WV_NULL)
            break;
    }
    cx->in_default--;
    return rc;
}

int wfh_expr_call(wfh_eval_ctx *cx, const wfh_node *n, wfh_val *out)
{
    wfh_val args[8]; /* the eager functions take at most 2; format() takes any number */
    wfh_val *av = args;  /* args, or owned when there are more than 8 */
    size_t na = n->nkids;
    int rc = 0, r;
    const wfh_expr_env *env = cx->env;

    memset(out, 0, sizeof *out);
    switch (n->op) {
    case F_CASE: return do_case(cx, n, out);
    case F_DEFAULT: return do_default(cx, n, out);
    case F_SUCCESS:
    case F_FAILURE:
    case F_ALWAYS:
    case F_CANCELLED:
        out->kind = WV_BOOL;
        if (n->op == F_ALWAYS)
            out->b = 1;
        else if (n->op == F_SUCCESS)
            out->b = !(env && (env->run_failed || env->run_cancelled));
        else if (n->op == F_FAILURE)
            out->b = env && env->run_failed;
        else
            out->b = env && env->run_cancelled;
        return 0;
    case F_HASHFILES:
        return wfh_expr_eval_fail(cx, n->off,
                                  "hashFiles() is not supported by wfhost (it reads a GitHub "
                                  "runner's workspace)");
    default: break;
    }
    if (na > sizeof args / sizeof args[0]) {
        av = calloc(na, sizeof *av);
        if (!av)
            return nomem(cx, n);
    }
    memset(av, 0, na * sizeof *av);
    for (size_t i = 0; i < na; i++)
        if ((rc = wfh_expr_eval_node(cx, n->kids[i], &av[i])) < 0)
            goto done;
    switch (n->op) {
    case F_CONTAINS:
        out->kind = WV_BOOL;
        if (av[0].kind == WV_ARR) {
            for (size_t i = 0; i < json_array_size(av[0].j) && !out->b; i++) {
                wfh_val item;
                wfh_val_from_json(json_array_get(av[0].j, i), &item);
                out->b = wfh_val_equal(&item, &av[1]);
                wfh_val_clear(&item);
            }
        } else if (av[0].kind != WV_OBJ) {
            rc = str_match(cx, n, &av[0], &av[1], &r);
            out->b = r;
        }
        break;
    case F_STARTSWITH:
    case F_ENDSWITH:
        out->kind = WV_BOOL;
        if (wfh_val_primitive(&av[0]) && wfh_val_primitive(&av[1])) {
            rc = str_match(cx, n, &av[0], &av[1], &r);
            out->b = r;
        }
        break;
    case F_FORMAT: rc = do_format(cx, n, av, na, out); break;
    case F_JOIN: rc = do_join(cx, n, av, na, out); break;
    case F_TOJSON: rc = do_tojson(cx, n, &av[0], out); break;
    case F_FROMJSON: rc = do_fromjson(cx, n, &av[0], out); break;
    case F_SPLIT: rc = do_split(cx, n, av, out); break;
    case F_LENGTH: rc = do_length(cx, n, &av[0], out); break;
    case F_LOWER:
    case F_UPPER:
    case F_TRIM: {
        size_t l, ml;
        char *s = wfh_val_to_string(&av[0], &l); /* owned */
        char *m = NULL;                           /* owned */
        if (!s) {
            rc = nomem(cx, n);
            break;
        }
        if (n->op == F_TRIM) {
            size_t a = 0;
            while (a < l && is_trim_space((unsigned char)s[a]))
                a++;
            while (l > a && is_trim_space((unsigned char)s[l - 1]))
                l--;
            rc = set_string(cx, n, s + a, l - a, out);
        } else if (!(m = wfh_expr_case_map(s, l, n->op == F_UPPER, &ml))) {
            rc = nomem(cx, n);
        } else {
            rc = set_string(cx, n, m, ml, out);
        }
        free(s);
        free(m);
        break;
    }
    default:
        rc = wfh_expr_eval_fail(cx, n->off, "internal: function %s has no implementation", n->name);
        break;
    }
done:
    for (size_t i = 0; i < na; i++)
        wfh_val_clear(&av[i]);
    if (av != args)
        free(av);
    if (rc < 0)
        wfh_val_clear(out);
    return rc;
}
