/*
 * core/validate.c - a loaded workflow becomes a plan the scheduler can trust.
 *
 * Resolves `needs` to step indexes, refuses self-needs and cycles (printing the cycle),
 * computes a topological order stable by file order, resolves step types through the
 * catalog, checks each `with:` against its step type's input schema, and checks that
 * every `${{ steps.X... }}` names an ancestor of the step using it. Everything is
 * reported at once with positions. Costs stay near linear: 100 000 steps validate in a
 * fraction of a second (a hash map for ids, a heap for the order). Ancestry is checked
 * without walking the graph once per reference (a chain where every step reads the
 * first step's output would make that quadratic): references to direct needs are
 * answered at once, the rest are collected and answered together by propagating
 * bitsets of the referenced steps along the topological order, 1024 targets at a time.
 * The built-in step type `pass` (issue #8) is resolved here too, before the catalog.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <wfhost/plugin.h>

#include "error.h"
#include "schema.h"
#include "workflow.h"

#define NO_STEP SIZE_MAX
/* Suggestions scan every id; stop offering them once a file is clearly broken. */
#define MAX_SUGGESTIONS 50
#define MAX_CYCLES 20
#define MAX_SPLICE_WARNINGS 10

typedef struct vctx {
    wfh_workflow *wf;
    wfh_diags *d;
    size_t *partial;        /* owned: Kahn's order, complete unless there is a cycle */
    size_t n_partial;
    unsigned char *ordered; /* owned: 1 for steps in partial */
    struct query *queries;  /* owned: references to check for ancestry */
    size_t nq, capq;
    size_t cur;       /* the step whose references are being checked */
    int in_workflow_env;
    int suggestions;
    size_t splices;   /* shell splice warnings wanted so far */
    int oom;
} vctx;

static const char *suggest_id(vctx *c, const char *word)
{
    if (c->suggestions >= MAX_SUGGESTIONS || c->wf->n_steps > 100000)
        return NULL;
    c->suggestions++;
    const char *best = NULL;
    /* wfh_workflow_suggest wants an array; scan in chunks to avoid allocating one */
    const char *chunk[64];
    size_t k = 0;
    for (size_t i = 0; i <= c->wf->n_steps; i++) {
        if (i < c->wf->n_steps && c->wf->steps[i].id)
            chunk[k++] = c->wf->steps[i].id;
        if (k == 63 || (i == c->wf->n_steps && k)) {
            if (best)
                chunk[k++] = best;
            best = wfh_workflow_suggest(word, chunk, k);
            k = 0;
        }
    }
    return best;
}

static int resolve_needs(vctx *c)
{
    wfh_workflow *wf = c->wf;
    for (size_t i = 0; i < wf->n_steps; i++) {
        wfh_step *s = &wf->steps[i];
        free(s->needs);
        s->needs = NULL;
        if (!s->n_needs)
            continue;
        s->needs = malloc(s->n_needs * sizeof *s->needs);
        if (!s->needs)
            return WFH_ENOMEM;
        for (size_t k = 0; k < s->n_needs; k++) {
            s->needs[k] = NO_STEP;
            long j = wfh_workflow_step_index(wf, s->need_ids[k]);
            if (j < 0) {
                const char *sug = suggest_id(c, s->need_ids[k]);
                char hint[160];
                if (sug)
                    snprintf(hint, sizeof hint, "did you mean '%s'?", sug);
                wfh_diag_add(c->d, WFH_DIAG_ERROR, s->need_lines[k], s->need_cols[k],
                             sug ? hint : NULL, "step '%s' needs unknown step '%s'",
                             s->id ? s->id : "?", s->need_ids[k]);
            } else if ((size_t)j == i) {
                wfh_diag_add(c->d, WFH_DIAG_ERROR, s->need_lines[k], s->need_cols[k], NULL,
                             "step '%s' needs itself", s->id);
            } else {
                s->needs[k] = (size_t)j;
            }
        }
    }
    return 0;
}

/* Min-heap of step indexes: Kahn's algorithm picks the earliest ready step in file
 * order, so the order is stable and matches what the author reads top to bottom. */
static void heap_push(size_t *h, size_t *n, size_t v)
{
    size_t i = (*n)++;
    while (i > 0 && h[(i - 1) / 2] > v) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = v;
}

static size_t heap_pop(size_t *h, size_t *n)
{
    size_t top = h[0], v = h[--*n], i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        size_t mv = v;
        if (l < *n && h[l] < mv) {
            m = l;
            mv = h[l];
        }
        if (r < *n && h[r] < mv)
            m = r;
        if (m == i)
            break;
        h[i] = h[m];
        i = m;
    }
    if (*n)
        h[i] = v;
    return top;
}

/* Reports the cycles among steps that Kahn's algorithm could not order. */
static int report_cycles(vctx *c, const unsigned char *ordered)
{
    wfh_workflow *wf = c->wf;
    size_t n = wf->n_steps;
    unsigned char *color = calloc(n, 1); /* owned: 0 white, 1 on stack, 2 done */
    size_t *edge = calloc(n, sizeof *edge); /* owned: next need to follow per step */
    size_t *stk = malloc(n * sizeof *stk);  /* owned */
    int err = 0, found = 0;
    if (!color || !edge || !stk) {
        err = WFH_ENOMEM;
        goto done;
    }
    for (size_t root = 0; root < n && found < MAX_CYCLES; root++) {
        if (ordered[root] || color[root])
            continue;
        size_t sp = 0;
        stk[sp++] = root;
        color[root] = 1;
        while (sp) {
            size_t u = stk[sp - 1];
            const wfh_step *s = &wf->steps[u];
            if (edge[u] == s->n_needs) {
                color[u] = 2;
                sp--;
                continue;
            }
            size_t k = edge[u]++;
            size_t v = s->needs[k];
            if (v == NO_STEP || ordered[v] || color[v] == 2)
                continue;
            if (color[v] == 0) {
                color[v] = 1;
                stk[sp++] = v;
                continue;
            }
            /* back edge u needs v: the stack from v to u is the cycle, each step
             * needing the next. Print it in run order starting at v: v runs before u
             * (u needs v), u before the step below it on the stack, ..., back to v. */
            size_t from = sp;
            while (from > 0 && stk[from - 1] != v)
                from--;
            from--;
            size_t len = 2 * (strlen(wf->steps[v].id) + 4);
            for (size_t i = sp; i-- > from + 1;)
                len += strlen(wf->steps[stk[i]].id) + 4;
            char *msg = malloc(len + 1);
            if (!msg) {
                err = WFH_ENOMEM;
                goto done;
            }
            size_t off = (size_t)sprintf(msg, "%s", wf->steps[v].id);
            for (size_t i = sp; i-- > from + 1;)
                off += (size_t)sprintf(msg + off, " -> %s", wf->steps[stk[i]].id);
            sprintf(msg + off, " -> %s", wf->steps[v].id);
            wfh_diag_add(c->d, WFH_DIAG_ERROR, s->need_lines[k], s->need_cols[k],
                         "remove one of these needs", "cycle: %s", msg);
            free(msg);
            if (++found >= MAX_CYCLES)
                break;
        }
    }
done:
    free(color);
    free(edge);
    free(stk);
    return err;
}

static int order_steps(vctx *c)
{
    wfh_workflow *wf = c->wf;
    size_t n = wf->n_steps;
    int err = 0;
    size_t *indeg = calloc(n, sizeof *indeg);      /* owned */
    size_t *dstart = calloc(n + 1, sizeof *dstart); /* owned: CSR of dependents */
    size_t *dep = NULL, *heap = NULL, *order = NULL;
    unsigned char *ordered = calloc(n, 1);          /* owned */
    if (!indeg || !dstart || !ordered) {
        err = WFH_ENOMEM;
        goto done;
    }
    size_t edges = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < wf->steps[i].n_needs; k++)
            if (wf->steps[i].needs[k] != NO_STEP) {
                indeg[i]++;
                dstart[wf->steps[i].needs[k] + 1]++;
                edges++;
            }
    for (size_t i = 0; i < n; i++)
        dstart[i + 1] += dstart[i];
    dep = malloc((edges ? edges : 1) * sizeof *dep);
    heap = malloc(n * sizeof *heap);
    order = malloc(n * sizeof *order);
    size_t *fill = malloc((n ? n : 1) * sizeof *fill);
    if (!dep || !heap || !order || !fill) {
        free(fill);
        err = WFH_ENOMEM;
        goto done;
    }
    memcpy(fill, dstart, n * sizeof *fill);
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < wf->steps[i].n_needs; k++)
            if (wf->steps[i].needs[k] != NO_STEP)
                dep[fill[wf->steps[i].needs[k]]++] = i;
    free(fill);
    size_t hn = 0, on = 0;
    for (size_t i = 0; i < n; i++)
        if (!indeg[i])
            heap_push(heap, &hn, i);
    while (hn) {
        size_t u = heap_pop(heap, &hn);
        order[on++] = u;
        ordered[u] = 1;
        for (size_t e = dstart[u]; e < dstart[u + 1]; e++)
            if (--indeg[dep[e]] == 0)
                heap_push(heap, &hn, dep[e]);
    }
    /* Steps Kahn's algorithm ordered have only ordered ancestors, so references from
     * them can still be checked when a cycle elsewhere leaves the order incomplete. */
    c->partial = order;
    c->n_partial = on;
    c->ordered = ordered;
    order = NULL;
    ordered = NULL;
    if (on == n) {
        free(wf->order);
        wf->order = malloc(n * sizeof *wf->order);
        if (!wf->order) {
            err = WFH_ENOMEM;
            goto done;
        }
        memcpy(wf->order, c->partial, n * sizeof *wf->order);
    } else {
        err = report_cycles(c, c->ordered);
    }
done:
    free(indeg);
    free(dstart);
    free(dep);
    free(heap);
    free(order);
    free(ordered);
    return err;
}

/* A reference from step `from` to `target` that is not a direct need: answered in bulk
 * by check_ancestry. */
typedef struct query {
    size_t from, target;
    unsigned line, col;
} query;

static int is_direct_need(const wfh_step *s, size_t target)
{
    for (size_t k = 0; k < s->n_needs; k++)
        if (s->needs[k] == target)
            return 1;
    return 0;
}

static void query_add(vctx *c, size_t from, size_t target, unsigned line, unsigned col)
{
    if (c->nq == c->capq) {
        size_t cap = c->capq ? c->capq * 2 : 64;
        query *q = realloc(c->queries, cap * sizeof *q);
        if (!q) {
            c->oom = 1;
            return;
        }
        c->queries = q;
        c->capq = cap;
    }
    c->queries[c->nq++] = (query){from, target, line, col};
}

static void not_before(vctx *c, size_t from, size_t target, unsigned line, unsigned col)
{
    const char *id = c->wf->steps[target].id, *sid = c->wf->steps[from].id;
    char hint[200];
    snprintf(hint, sizeof hint, "add '%s' to the needs of '%s'", id, sid);
    wfh_diag_add(c->d, WFH_DIAG_ERROR, line, col, hint,
                 "step '%s' refers to step '%s', which does not run before it", sid, id);
}

#define BATCH_WORDS 16 /* 1024 targets per pass: n * 128 bytes of bitsets */

/* Answers every query: is `target` an ancestor of `from`? Each pass gives the targets
 * of one batch a bit, then walks the steps in topological order OR-ing each step's
 * needs' bits into its own, so a step's bitset holds exactly its ancestors in the batch.
 * Cost: (steps + needs) x batches, with batches = distinct targets / 1024. */
static int check_ancestry(vctx *c)
{
    wfh_workflow *wf = c->wf;
    size_t n = wf->n_steps;
    int err = 0;
    size_t *tid = malloc(n * sizeof *tid); /* owned: target -> bit number, or NO_STEP */
    size_t *tlist = NULL;                  /* owned: bit number -> target */
    uint64_t *bits = NULL;                 /* owned: n x words */
    if (!tid) {
        err = WFH_ENOMEM;
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        tid[i] = NO_STEP;
    size_t nt = 0;
    tlist = malloc(c->nq * sizeof *tlist);
    if (!tlist) {
        err = WFH_ENOMEM;
        goto done;
    }
    for (size_t q = 0; q < c->nq; q++) {
        size_t t = c->queries[q].target;
        if (tid[t] == NO_STEP) {
            tid[t] = nt;
            tlist[nt++] = t;
        }
    }
    size_t per = (size_t)BATCH_WORDS * 64;
    size_t words = (nt < per ? nt + 63 : per) / 64;
    bits = malloc(n * words * sizeof *bits);
    if (!bits) {
        err = WFH_ENOMEM;
        goto done;
    }
    for (size_t lo = 0; lo < nt; lo += per) {
        memset(bits, 0, n * words * sizeof *bits);
        for (size_t k = 0; k < c->n_partial; k++) {
            size_t s = c->partial[k];
            uint64_t *mine = bits + s * words;
            const wfh_step *st = &wf->steps[s];
            for (size_t e = 0; e < st->n_needs; e++) {
                size_t u = st->needs[e];
                if (u == NO_STEP)
                    continue;
                const uint64_t *theirs = bits + u * words;
                for (size_t w = 0; w < words; w++)
                    mine[w] |= theirs[w];
                if (tid[u] != NO_STEP && tid[u] >= lo && tid[u] - lo < per) {
                    size_t b = tid[u] - lo;
                    mine[b / 64] |= (uint64_t)1 << (b % 64);
                }
            }
        }
        for (size_t q = 0; q < c->nq; q++) {
            const query *x = &c->queries[q];
            size_t b = tid[x->target];
            if (b < lo || b - lo >= per)
                continue;
            b -= lo;
            /* an unordered target (in a cycle) cannot be an ancestor of an ordered step */
            if (!(bits[x->from * words + b / 64] & ((uint64_t)1 << (b % 64))))
                not_before(c, x->from, x->target, x->line, x->col);
        }
    }
done:
    free(tid);
    free(tlist);
    free(bits);
    return err;
}

typedef struct refctx {
    vctx *c;
    const wfh_value *v;
} refctx;

static void on_ref(void *ud, const wfh_expr_ref *ref)
{
    refctx *r = ud;
    vctx *c = r->c;
    if (ref->nparts < 1 || !ref->parts[0] || strcasecmp(ref->parts[0], "steps"))
        return;
    unsigned line, col;
    wfh_value_pos(r->v, ref->offset, &line, &col);
    if (c->in_workflow_env) {
        wfh_diag_add(c->d, WFH_DIAG_ERROR, line, col,
                     "move it into the env of the step that needs it",
                     "the workflow's env cannot refer to step outputs");
        return;
    }
    if (ref->nparts < 2 || !ref->parts[1])
        return; /* `steps` as a whole: nothing to check by name */
    const char *id = ref->parts[1];
    long j = wfh_workflow_step_index(c->wf, id);
    const wfh_step *s = &c->wf->steps[c->cur];
    if (j < 0) {
        const char *sug = suggest_id(c, id);
        char hint[160];
        if (sug)
            snprintf(hint, sizeof hint, "did you mean '%s'?", sug);
        wfh_diag_add(c->d, WFH_DIAG_ERROR, line, col, sug ? hint : NULL,
                     "step '%s' refers to unknown step '%s'", s->id, id);
    } else if ((size_t)j == c->cur) {
        wfh_diag_add(c->d, WFH_DIAG_ERROR, line, col, NULL,
                     "step '%s' refers to its own outputs, which do not exist yet", s->id);
    } else if (!is_direct_need(s, (size_t)j)) {
        /* a step in or after a cycle (already reported) has no meaningful ancestry */
        if (c->ordered && c->ordered[c->cur])
            query_add(c, c->cur, (size_t)j, line, col);
    }
}

static void on_tmpl(void *ud, const wfh_value *t)
{
    refctx r = {ud, t};
    wfh_tmpl_refs(t->tmpl, on_ref, &r);
}

/* Step outputs and inputs come from outside the workflow's author: spliced into a
 * shell script they are parsed as code (`$(...)`, `;`). Through env they are data. */
static void on_splice_ref(void *ud, const wfh_expr_ref *ref)
{
    refctx *r = ud;
    if (ref->nparts < 1 || !ref->parts[0] ||
        (strcasecmp(ref->parts[0], "steps") && strcasecmp(ref->parts[0], "inputs")))
        return;
    /* the advice is the same every time: past a few, count instead of repeating it */
    if (++r->c->splices > MAX_SPLICE_WARNINGS)
        return;
    unsigned line, col;
    wfh_value_pos(r->v, ref->offset, &line, &col);
    const char *name = ref->nparts > 0 ? ref->parts[ref->nparts - 1] : "value";
    char path[160] = "";
    for (size_t i = 0, off = 0; i < ref->nparts && ref->parts[i] && off < sizeof path; i++) {
        int k = snprintf(path + off, sizeof path - off, "%s%s", i ? "." : "", ref->parts[i]);
        if (k < 0)
            break;
        off += (size_t)k;
    }
    char hint[256];
    if (snprintf(hint, sizeof hint,
                 "pass it through env (env: {VALUE: '${{ %s }}'}) and use \"$VALUE\" in the "
                 "script",
                 path) < 0)
        hint[0] = '\0';
    wfh_diag_add(r->c->d, WFH_DIAG_WARNING, line, col, hint,
                 "step '%s': '%s' is spliced into a shell script, where it is parsed as code",
                 r->c->wf->steps[r->c->cur].id, name);
}

static void warn_shell_splices(vctx *c, const wfh_step *s)
{
    if (!s->type || strcmp(s->type, "shell") || !s->with || s->with->kind != WFH_V_OBJECT)
        return;
    for (size_t i = 0; i < s->with->n; i++) {
        const wfh_value *v = s->with->items[i];
        if (strcmp(s->with->keys[i], "run") || v->kind != WFH_V_TMPL || !v->tmpl)
            continue;
        refctx r = {c, v};
        wfh_tmpl_refs(v->tmpl, on_splice_ref, &r);
    }
}

static void check_refs(vctx *c)
{
    c->in_workflow_env = 1;
    wfh_value_walk_tmpls(c->wf->env, on_tmpl, c);
    c->in_workflow_env = 0;
    for (size_t i = 0; i < c->wf->n_steps; i++) {
        if (!c->wf->steps[i].id)
            continue;
        c->cur = i;
        wfh_value_walk_tmpls(c->wf->steps[i].with, on_tmpl, c);
        wfh_value_walk_tmpls(c->wf->steps[i].env, on_tmpl, c);
        warn_shell_splices(c, &c->wf->steps[i]);
    }
    if (c->splices > MAX_SPLICE_WARNINGS)
        wfh_diag_add(c->d, WFH_DIAG_WARNING, 0, 0, NULL,
                     "%zu more step outputs or inputs are spliced into shell scripts",
                     c->splices - MAX_SPLICE_WARNINGS);
}

/* ---- `with:` against the input schema ---- */

/* A stand-in for a template in the JSON the schema checks: its value is not known
 * until run time. The key cannot come from YAML text (control characters are refused
 * by the reader). */
#define UNKNOWN_KEY "\x01wfh-unknown"

/* Does the template consist of exactly one `${{ }}` (so it keeps the expression's
 * type), or is it text with expressions spliced in (so it is a string)? */
static int single_expression(const wfh_value *v)
{
    const char *s = v->text, *e = v->text + v->text_len;
    while (s < e && (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r'))
        s++;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
        e--;
    if (e - s < 5 || memcmp(s, "${{", 3) || memcmp(e - 2, "}}", 2))
        return 0;
    return !memmem(s + 3, (size_t)(e - s - 3), "${{", 3);
}

static json_t *value_to_json(const wfh_value *v)
{
    if (!v)
        return json_object();
    switch (v->kind) {
    case WFH_V_LITERAL:
        return json_incref(v->literal);
    case WFH_V_TMPL: {
        json_t *o = json_object();
        if (o && json_object_set_new(o, UNKNOWN_KEY,
                                     /* a template that did not parse was reported
                                      * already: do not add a type error on top */
                                     json_integer(!v->tmpl || single_expression(v)
                                                      ? WFH_SCHEMA_ANY
                                                      : WFH_SCHEMA_ANY_STRING)) < 0) {
            json_decref(o);
            return NULL;
        }
        return o;
    }
    case WFH_V_ARRAY:
    case WFH_V_OBJECT:
        break;
    }
    json_t *o = v->kind == WFH_V_ARRAY ? json_array() : json_object();
    for (size_t i = 0; o && i < v->n; i++) {
        json_t *x = value_to_json(v->items[i]);
        int rc = !x ? -1
                 : v->kind == WFH_V_ARRAY ? json_array_append_new(o, x)
                                          : json_object_set_new(o, v->keys[i], x);
        if (rc < 0) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

static int unknown_hook(void *ud, const json_t *inst)
{
    (void)ud;
    if (!json_is_object(inst))
        return WFH_SCHEMA_KNOWN;
    const json_t *k = json_object_get(inst, UNKNOWN_KEY);
    return k ? (int)json_integer_value(k) : WFH_SCHEMA_KNOWN;
}

/* Follows a schema error path ("with.argv[2]") down the value tree to the node it
 * names, so the diagnostic points at the offending YAML. Keys may contain dots: the
 * longest key that fits wins. */
static const wfh_value *value_at(const wfh_value *v, const char *p)
{
    while (v && *p) {
        if (*p == '[' && v->kind == WFH_V_ARRAY) {
            char *end;
            unsigned long i = strtoul(p + 1, &end, 10);
            if (*end != ']' || i >= v->n)
                return v;
            v = v->items[i];
            p = end + 1;
        } else if (*p == '.' && v->kind == WFH_V_OBJECT) {
            p++;
            size_t best = 0;
            const wfh_value *next = NULL;
            for (size_t i = 0; i < v->n; i++) {
                size_t kl = strlen(v->keys[i]);
                if (kl >= best && !strncmp(p, v->keys[i], kl) &&
                    (p[kl] == '\0' || p[kl] == '.' || p[kl] == '[')) {
                    best = kl;
                    next = v->items[i];
                }
            }
            if (!next)
                return v;
            v = next;
            p += best;
        } else {
            return v;
        }
    }
    return v;
}

typedef struct schemactx {
    vctx *c;
    const wfh_step *s;
} schemactx;

static void on_schema_problem(void *ud, const json_t *inst, const char *path, const char *msg)
{
    (void)inst;
    schemactx *x = ud;
    const wfh_value *v = x->s->with ? value_at(x->s->with, path + 4) : NULL;
    unsigned line = v ? v->line : x->s->with_line, col = v ? v->col : x->s->with_col;
    wfh_diag_add(x->c->d, WFH_DIAG_ERROR, line, col, NULL, "step '%s': %s: %s", x->s->id,
                 path, msg);
}

static int check_with(vctx *c, const wfh_step *s)
{
    if (!s->meta || !s->meta->input_schema)
        return 0;
    json_t *inst = value_to_json(s->with);
    if (!inst)
        return WFH_ENOMEM;
    schemactx x = {c, s};
    wfh_schema_opts o = {on_schema_problem, unknown_hook, &x, "with"};
    int rc = wfh_schema_validate(s->meta->input_schema, inst, &o);
    json_decref(inst);
    if (rc == WFH_ENOMEM)
        return rc;
    if (rc < 0)
        wfh_diag_add(c->d, WFH_DIAG_ERROR, s->uses_line, s->uses_col, NULL,
                     "step type '%s' has an input schema that cannot be used: %s", s->type,
                     wfh_error_last());
    return 0;
}

/* A step type whose plugin is in the registry but refused there (disabled or yanked by
 * the operator, or built for a newer ABI) is a refusal - exit status 3, docs/registry.md
 * - not an unknown type: say which plugin and what to do. */
static void refused_type(vctx *c, const wfh_step *s, const wfh_plugin_meta *p)
{
    char why[200], hint[200];
    if (!strcmp(p->state, "disabled")) {
        snprintf(why, sizeof why, "is disabled (wfhost plugin enable %s@%u)", p->name,
                 p->version_major);
        snprintf(hint, sizeof hint, "the operator keeps %s@%s installed but refuses to load it",
                 p->name, p->version);
    } else if (!strcmp(p->state, "yanked")) {
        snprintf(why, sizeof why, "is yanked: %s@%s was withdrawn by the operator", p->name,
                 p->version);
        snprintf(hint, sizeof hint, "install a fixed version (wfhost plugin install FILE.so); "
                 "`wfhost plugin enable %s@%u` accepts this one again", p->name, p->version_major);
    } else if (!strcmp(p->state, "newer-abi")) {
        snprintf(why, sizeof why, "needs plugin ABI %u.%u; this wfhost speaks %d.%d", p->abi_major,
                 p->abi_minor, WFH_ABI_MAJOR, WFH_ABI_MINOR);
        snprintf(hint, sizeof hint, "upgrade wfhost, or install a %d.x build of %s", WFH_ABI_MAJOR,
                 p->name);
    } else {
        snprintf(why, sizeof why, "is %s in the registry", p->state);
        hint[0] = 0;
    }
    wfh_diag_add(c->d, WFH_DIAG_ERROR, s->uses_line, s->uses_col, hint[0] ? hint : NULL,
                 "step type '%s': plugin '%s' %s; refused", s->type, p->name, why);
    c->d->refusals++;
}

/* ---- built-in step types (issue #8) ---- */

/* Static and never freed: the strings are literals (the casts only satisfy the struct's
 * owned-string fields, which wfh_plugin_meta_clear never sees for this one). */
static wfh_type_meta builtin_pass = {
    .name = (char *)WFH_BUILTIN_PASS,
    .description = (char *)"no plugin, no process: its `with` values become its outputs",
};

const wfh_type_meta *wfh_builtin_type(const char *type)
{
    return type && !strcmp(type, WFH_BUILTIN_PASS) ? &builtin_pass : NULL;
}

int wfh_step_is_pass(const wfh_step *st)
{
    return st->type && !strcmp(st->type, WFH_BUILTIN_PASS);
}

/* A `pass` step: the built-in, whatever the registry holds. Keys that only mean
 * something for a process (timeout, retry, env) and versions are refused with a hint
 * rather than ignored, so nobody believes they protect anything. */
static void check_pass(vctx *c, const wfh_catalog *cat, wfh_step *s, int *warned)
{
    s->meta = &builtin_pass;
    if (s->major >= 0)
        wfh_diag_add(c->d, WFH_DIAG_ERROR, s->uses_line, s->uses_col, "write `uses: pass`",
                     "step '%s': step type 'pass' is built in and has no versions", s->id);
    if (s->timeout_ms)
        wfh_diag_add(c->d, WFH_DIAG_ERROR, s->line, s->col,
                     "remove `timeout:`: a pass step ends within the turn it starts",
                     "step '%s': a pass step runs no process and cannot time out", s->id);
    if (s->retry.max_attempts)
        wfh_diag_add(c->d, WFH_DIAG_ERROR, s->line, s->col,
                     "remove `retry:`: a pass step only fails when its `with` cannot be "
                     "evaluated, and another attempt would evaluate the same",
                     "step '%s': a pass step is not retried", s->id);
    if (s->env)
        wfh_diag_add(c->d, WFH_DIAG_ERROR, s->line, s->col,
                     "put the values under `with:`, they become the step's outputs",
                     "step '%s': a pass step starts no process, so it has no environment",
                     s->id);
    const wfh_type_meta *shadowed = cat ? wfh_catalog_find(cat, WFH_BUILTIN_PASS, -1) : NULL;
    if (shadowed && !*warned) {
        *warned = 1;
        wfh_diag_add(c->d, WFH_DIAG_WARNING, s->uses_line, s->uses_col,
                     "the name is reserved: `wfhost plugin remove` that plugin",
                     "plugin '%s' in the registry declares step type 'pass'; the built-in "
                     "pass is used", shadowed->plugin ? shadowed->plugin->name : "?");
    }
}

static void check_types(vctx *c, const wfh_catalog *cat)
{
    int pass_warned = 0;
    for (size_t i = 0; i < c->wf->n_steps; i++) {
        wfh_step *s = &c->wf->steps[i];
        s->meta = NULL;
        if (!s->type)
            continue;
        if (wfh_step_is_pass(s)) {
            check_pass(c, cat, s, &pass_warned);
            continue;
        }
        s->meta = wfh_catalog_find(cat, s->type, s->major);
        if (s->meta) {
            if (check_with(c, s) == WFH_ENOMEM)
                c->oom = 1;
            continue;
        }
        char reason[256];
        snprintf(reason, sizeof reason, "%s", wfh_error_last());
        const wfh_plugin_meta *refused = wfh_catalog_find_inactive(cat, s->type, s->major);
        if (refused) {
            refused_type(c, s, refused);
            continue;
        }
        if (s->major >= 0 && wfh_catalog_find(cat, s->type, -1)) {
            const char *inst = strstr(reason, "installed: ");
            wfh_diag_add(c->d, WFH_DIAG_ERROR, s->uses_line, s->uses_col, inst,
                         "step type '%s@%d' is not installed", s->type, s->major);
            continue;
        }
        const char *names[257];
        size_t nn = 0;
        names[nn++] = WFH_BUILTIN_PASS; /* for "did you mean"; not listed as installed */
        for (size_t p = 0; p < cat->n_plugins; p++)
            for (size_t t = 0; t < cat->plugins[p].n_types && nn < 257; t++)
                names[nn++] = cat->plugins[p].types[t].name;
        const char *sug = wfh_workflow_suggest(s->type, names, nn);
        char hint[300];
        if (sug)
            snprintf(hint, sizeof hint, "did you mean '%s'?", sug);
        else if (nn > 1) {
            size_t off = (size_t)snprintf(hint, sizeof hint, "installed step types:");
            for (size_t k = 1; k < nn && off < sizeof hint; k++)
                off += (size_t)snprintf(hint + off, sizeof hint - off, " %s", names[k]);
        }
        else
            snprintf(hint, sizeof hint, "no plugins are installed: `wfhost plugin install FILE.so`");
        wfh_diag_add(c->d, WFH_DIAG_ERROR, s->uses_line, s->uses_col, hint[0] ? hint : NULL,
                     "unknown step type '%s'", s->type);
    }
}

int wfh_workflow_validate(wfh_workflow *wf, const wfh_catalog *cat, wfh_diags *diags)
{
    size_t before = diags->errors;
    int err = 0;
    vctx c;
    memset(&c, 0, sizeof c);
    c.wf = wf;
    c.d = diags;
    free(wf->order);
    wf->order = NULL;
    err = resolve_needs(&c);
    if (err < 0)
        goto done;
    err = order_steps(&c);
    if (err < 0)
        goto done;
    if (cat)
        check_types(&c, cat);
    if (c.oom) {
        err = WFH_ENOMEM;
        goto done;
    }
    check_refs(&c);
    if (!c.oom && wfh_lang_validate(wf, diags) < 0) /* if:, outputs, secrets (lang.c) */
        c.oom = 1;
    if (c.oom) {
        err = WFH_ENOMEM;
        goto done;
    }
    if (c.nq)
        err = check_ancestry(&c);
done:
    free(c.queries);
    free(c.partial);
    free(c.ordered);
    if (err == WFH_ENOMEM)
        return wfh_error_set(err, "%s: out of memory validating", wf->path ? wf->path : "?");
    if (diags->errors > before) {
        char first[512];
        wfh_diags_first(diags, first, sizeof first);
        return wfh_error_set(WFH_EINVAL, "%s", first);
    }
    return 0;
}
