/*
 * core/diag.c - collects and prints diagnostics (see diag.h).
 */
#include "diag.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void wfh_diags_init(wfh_diags *d, const char *file, const char *source, size_t source_len)
{
    memset(d, 0, sizeof *d);
    d->file = file;
    d->source = source;
    d->source_len = source_len;
}

void wfh_diags_free(wfh_diags *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->count; i++) {
        free(d->items[i].message);
        free(d->items[i].hint);
    }
    free(d->items);
    d->items = NULL;
    d->count = d->cap = 0;
}

void wfh_diag_add(wfh_diags *d, wfh_diag_severity sev, unsigned line, unsigned col,
                  const char *hint, const char *fmt, ...)
{
    if (sev == WFH_DIAG_ERROR)
        d->errors++;
    else
        d->warnings++;
    if (d->count == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 8;
        wfh_diag *items = realloc(d->items, cap * sizeof *items);
        if (!items)
            return;
        d->items = items;
        d->cap = cap;
    }
    va_list ap;
    va_start(ap, fmt);
    char *msg = NULL;
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    va_end(ap);
    if (!msg)
        return;
    wfh_diag *x = &d->items[d->count++];
    x->severity = sev;
    x->line = line;
    x->col = col;
    x->message = msg;
    x->hint = hint ? strdup(hint) : NULL;
}

static int cmp_pos(const void *a, const void *b)
{
    const wfh_diag *x = a, *y = b;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    if (x->col != y->col)
        return x->col < y->col ? -1 : 1;
    return 0;
}

/* Orders by position; equal positions keep insertion order (the index breaks ties, so
 * qsort's instability does not matter). n log n: a broken 100 000-step file can carry
 * as many diagnostics. */
typedef struct diag_ref {
    wfh_diag item;
    size_t index;
} diag_ref;

static int cmp_ref(const void *a, const void *b)
{
    const diag_ref *x = a, *y = b;
    int c = cmp_pos(&x->item, &y->item);
    if (c)
        return c;
    return x->index < y->index ? -1 : x->index > y->index;
}

static void sort_diags(wfh_diags *d)
{
    diag_ref *refs = malloc((d->count ? d->count : 1) * sizeof *refs);
    if (!refs) { /* fall back to a stable insertion sort: slow but right */
        for (size_t i = 1; i < d->count; i++) {
            wfh_diag t = d->items[i];
            size_t j = i;
            while (j > 0 && cmp_pos(&d->items[j - 1], &t) > 0) {
                d->items[j] = d->items[j - 1];
                j--;
            }
            d->items[j] = t;
        }
        return;
    }
    for (size_t i = 0; i < d->count; i++) {
        refs[i].item = d->items[i];
        refs[i].index = i;
    }
    qsort(refs, d->count, sizeof *refs, cmp_ref);
    for (size_t i = 0; i < d->count; i++)
        d->items[i] = refs[i].item;
    free(refs);
}

void wfh_diags_print(wfh_diags *d, FILE *out)
{
    sort_diags(d);
    /* Diagnostics are sorted, so the source is walked once, not once per diagnostic. */
    const char *p = d->source, *end = d->source ? d->source + d->source_len : NULL;
    unsigned at = 1; /* the line p points at */
    for (size_t i = 0; i < d->count; i++) {
        const wfh_diag *x = &d->items[i];
        const char *sev = x->severity == WFH_DIAG_ERROR ? "error" : "warning";
        if (x->line)
            fprintf(out, "%s:%u:%u: %s: %s\n", d->file, x->line, x->col, sev, x->message);
        else
            fprintf(out, "%s: %s: %s\n", d->file, sev, x->message);
        const char *src = NULL;
        size_t len = 0;
        while (p && at < x->line) {
            p = memchr(p, '\n', (size_t)(end - p));
            p = p ? p + 1 : NULL;
            at++;
        }
        if (p && x->line && at == x->line) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            len = (size_t)((nl ? nl : end) - p);
            if (len && p[len - 1] == '\r')
                len--;
            src = p;
        }
        if (src && len < 400) {
            fprintf(out, "  %.*s\n  ", (int)len, src);
            for (unsigned c = 1; c < x->col && c <= len; c++)
                fputc(src[c - 1] == '\t' ? '\t' : ' ', out);
            fputs("^\n", out);
        }
        if (x->hint)
            fprintf(out, "  hint: %s\n", x->hint);
    }
}

void wfh_diags_first(const wfh_diags *d, char *buf, size_t len)
{
    for (size_t i = 0; i < d->count; i++) {
        if (d->items[i].severity != WFH_DIAG_ERROR)
            continue;
        snprintf(buf, len, "%s:%u:%u: %s", d->file, d->items[i].line, d->items[i].col,
                 d->items[i].message);
        return;
    }
    snprintf(buf, len, "%s: invalid", d->file);
}
