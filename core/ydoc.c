/*
 * core/ydoc.c - libyaml's event stream turned into a positioned node tree (see ydoc.h).
 *
 * This is the only file that talks to libyaml. It is also the first thing hostile input
 * meets, so it refuses what a workflow never needs and what makes YAML dangerous or
 * ambiguous: anchors and aliases (billion laughs), duplicate keys (which value wins?),
 * several documents, non-scalar keys, deep nesting and huge inputs. Every refusal is
 * one diagnostic with the position libyaml gives, never a crash.
 */
#include "ydoc.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "error.h"

/* Nodes and scalar text come from large chunks: one allocation per 64 KiB instead of
 * two per node, and freeing the tree is a walk over chunks. */
typedef struct arena_chunk {
    struct arena_chunk *next;
    size_t used, cap;
    max_align_t data[];
} arena_chunk;

struct wfh_yarena {
    arena_chunk *head; /* owned list */
};

#define ARENA_CHUNK 65536

static void *arena_alloc(struct wfh_yarena *a, size_t size, size_t align)
{
    arena_chunk *c = a->head;
    size_t at = c ? (c->used + align - 1) & ~(align - 1) : 0;
    if (!c || at > c->cap || c->cap - at < size) {
        size_t cap = size > ARENA_CHUNK / 4 ? size : ARENA_CHUNK;
        arena_chunk *nc = malloc(sizeof *nc + cap);
        if (!nc)
            return NULL;
        nc->cap = cap;
        if (cap == size && c) {
            /* a big array gets a chunk of its own, behind the one still being filled */
            nc->used = size;
            nc->next = c->next;
            c->next = nc;
            return nc->data;
        }
        nc->used = 0;
        nc->next = c;
        a->head = c = nc;
        at = 0;
    }
    c->used = at + size;
    return (char *)c->data + at;
}

static void arena_free(struct wfh_yarena *a)
{
    if (!a)
        return;
    while (a->head) {
        arena_chunk *next = a->head->next;
        free(a->head);
        a->head = next;
    }
    free(a);
}

void wfh_ynode_free(wfh_ynode *root)
{
    if (root)
        arena_free(root->arena);
}

const wfh_ynode *wfh_ynode_get(const wfh_ynode *map, const char *key)
{
    if (!map || map->kind != WFH_Y_MAP)
        return NULL;
    size_t klen = strlen(key);
    for (size_t i = 0; i < map->n; i++)
        if (map->keys[i]->len == klen && !memcmp(map->keys[i]->str, key, klen))
            return map->items[i];
    return NULL;
}

/* One node under construction: a mapping also remembers the key waiting for its value. */
typedef struct frame {
    wfh_ynode *node;      /* in the arena; not yet attached to its parent */
    wfh_ynode *pending;   /* a mapping key read, its value not yet */
} frame;

typedef struct builder {
    struct wfh_yarena *arena; /* owned until handed to the root */
    wfh_diags *diags;
    const char *buf;
    size_t len;
    frame stack[WFH_YDOC_MAX_DEPTH + 1];
    size_t depth;
    wfh_ynode *root;      /* in the arena, which it owns once parsing succeeds */
    size_t nodes;
} builder;

static wfh_ynode *node_new(builder *b, wfh_ykind kind, const yaml_mark_t *m)
{
    wfh_ynode *n = arena_alloc(b->arena, sizeof *n, sizeof(void *));
    if (!n)
        return NULL;
    memset(n, 0, sizeof *n);
    n->kind = (unsigned char)kind;
    n->line = (unsigned)m->line + 1;
    n->col = (unsigned)m->column + 1;
    return n;
}

/* Arrays grow by doubling from 4; the capacity follows from n, so nodes need no field
 * for it. The old array stays in the arena: at most as much again, freed with it. */
static int child_push(builder *b, wfh_ynode *parent, wfh_ynode *key, wfh_ynode *val)
{
    size_t n = parent->n;
    if (n == 0 || (n >= 4 && (n & (n - 1)) == 0)) {
        size_t cap = n ? n * 2 : 4;
        wfh_ynode **items = arena_alloc(b->arena, cap * sizeof *items, sizeof(void *));
        if (!items)
            return WFH_ENOMEM;
        if (n)
            memcpy(items, parent->items, n * sizeof *items);
        parent->items = items;
        if (parent->kind == WFH_Y_MAP) {
            wfh_ynode **keys = arena_alloc(b->arena, cap * sizeof *keys, sizeof(void *));
            if (!keys)
                return WFH_ENOMEM;
            if (n)
                memcpy(keys, parent->keys, n * sizeof *keys);
            parent->keys = keys;
        }
    }
    parent->items[n] = val;
    if (parent->kind == WFH_Y_MAP)
        parent->keys[n] = key;
    parent->n++;
    return 0;
}

/* Hands a finished node to its parent (or makes it the root). */
static int attach(builder *b, wfh_ynode *n)
{
    if (b->depth == 0) {
        b->root = n;
        return 0;
    }
    frame *f = &b->stack[b->depth - 1];
    if (f->node->kind == WFH_Y_SEQ) {
        return child_push(b, f->node, NULL, n);
    }
    if (!f->pending) {
        if (n->kind != WFH_Y_SCALAR) {
            wfh_diag_add(b->diags, WFH_DIAG_ERROR, n->line, n->col, NULL,
                         "mapping keys must be plain strings, not a %s",
                         n->kind == WFH_Y_SEQ ? "list" : "mapping");
            return WFH_EPARSE;
        }
        f->pending = n;
        return 0;
    }
    int err = child_push(b, f->node, f->pending, n);
    if (err < 0)
        return err;
    f->pending = NULL;
    return 0;
}

static int key_cmp(const void *a, const void *b)
{
    const wfh_ynode *x = *(wfh_ynode *const *)a, *y = *(wfh_ynode *const *)b;
    size_t m = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->str, y->str, m);
    if (c)
        return c;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    /* equal keys: earlier in the file first, so the later one is reported */
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    return x->col < y->col ? -1 : (x->col > y->col);
}

/* Reports every key that repeats an earlier one. Sorting keeps a hostile 100 000-key
 * mapping at n log n instead of n^2. */
static int check_duplicates(builder *b, const wfh_ynode *map)
{
    if (map->n < 2)
        return 0;
    int bad = 0;
    if (map->n <= 16) {
        for (size_t i = 1; i < map->n; i++)
            for (size_t j = 0; j < i; j++)
                if (map->keys[i]->len == map->keys[j]->len &&
                    !memcmp(map->keys[i]->str, map->keys[j]->str, map->keys[i]->len)) {
                    wfh_diag_add(b->diags, WFH_DIAG_ERROR, map->keys[i]->line,
                                 map->keys[i]->col, NULL,
                                 "duplicate key '%s' (first at line %u)", map->keys[i]->str,
                                 map->keys[j]->line);
                    bad = 1;
                    break;
                }
        return bad ? WFH_EPARSE : 0;
    }
    wfh_ynode **sorted = malloc(map->n * sizeof *sorted);
    if (!sorted)
        return WFH_ENOMEM;
    memcpy(sorted, map->keys, map->n * sizeof *sorted);
    qsort(sorted, map->n, sizeof *sorted, key_cmp);
    for (size_t i = 1; i < map->n; i++) {
        const wfh_ynode *x = sorted[i - 1], *y = sorted[i];
        if (x->len == y->len && !memcmp(x->str, y->str, x->len)) {
            wfh_diag_add(b->diags, WFH_DIAG_ERROR, y->line, y->col, NULL,
                         "duplicate key '%s' (first at line %u)", y->str, x->line);
            bad = 1;
        }
    }
    free(sorted);
    return bad ? WFH_EPARSE : 0;
}

/* libyaml reports reader errors (bad UTF-8, control characters) as a byte offset. */
static void offset_pos(const char *buf, size_t len, size_t off, unsigned *line, unsigned *col)
{
    unsigned l = 1, c = 1;
    if (off > len)
        off = len;
    for (size_t i = 0; i < off; i++) {
        if (buf[i] == '\n') {
            l++;
            c = 1;
        } else if (((unsigned char)buf[i] & 0xC0) != 0x80) {
            c++;
        }
    }
    *line = l;
    *col = c;
}

static void report_parser_error(builder *b, const yaml_parser_t *p)
{
    unsigned line, col;
    const char *problem = p->problem ? p->problem : "malformed YAML";
    if (p->error == YAML_READER_ERROR) {
        offset_pos(b->buf, b->len, p->problem_offset, &line, &col);
        if (p->problem_value != -1)
            wfh_diag_add(b->diags, WFH_DIAG_ERROR, line, col, NULL,
                         "invalid YAML: %s (byte 0x%02x)", problem,
                         (unsigned)p->problem_value & 0xFFu);
        else
            wfh_diag_add(b->diags, WFH_DIAG_ERROR, line, col, NULL, "invalid YAML: %s",
                         problem);
        return;
    }
    line = (unsigned)p->problem_mark.line + 1;
    col = (unsigned)p->problem_mark.column + 1;
    const char *hint = NULL;
    if (line >= 1 && b->buf) {
        /* libyaml says "cannot start any token" for a tab; tell people why */
        const char *s = b->buf;
        size_t off = p->problem_mark.index;
        if (off < b->len && s[off] == '\t')
            hint = "YAML does not allow tabs for indentation; use spaces";
    }
    if (p->context)
        wfh_diag_add(b->diags, WFH_DIAG_ERROR, line, col, hint, "invalid YAML: %s %s (line %u)",
                     problem, p->context, (unsigned)p->context_mark.line + 1);
    else
        wfh_diag_add(b->diags, WFH_DIAG_ERROR, line, col, hint, "invalid YAML: %s", problem);
}

static int refuse_anchor(builder *b, const yaml_char_t *anchor, const yaml_mark_t *m)
{
    if (!anchor)
        return 0;
    wfh_diag_add(b->diags, WFH_DIAG_ERROR, (unsigned)m->line + 1, (unsigned)m->column + 1,
                 "write the value out where it is used",
                 "anchors (&%s) are not supported in workflow files", (const char *)anchor);
    return WFH_EPARSE;
}

static wfh_ystyle style_of(yaml_scalar_style_t s)
{
    switch (s) {
    case YAML_SINGLE_QUOTED_SCALAR_STYLE: return WFH_YS_SINGLE;
    case YAML_DOUBLE_QUOTED_SCALAR_STYLE: return WFH_YS_DOUBLE;
    case YAML_LITERAL_SCALAR_STYLE: return WFH_YS_LITERAL;
    case YAML_FOLDED_SCALAR_STYLE: return WFH_YS_FOLDED;
    default: return WFH_YS_PLAIN;
    }
}

/* Handles one event. Returns 0, 1 at the end of the stream, or a negative code. */
static int on_event(builder *b, yaml_event_t *ev, int *docs)
{
    const yaml_mark_t *m = &ev->start_mark;
    switch (ev->type) {
    case YAML_STREAM_START_EVENT:
    case YAML_DOCUMENT_END_EVENT:
    case YAML_NO_EVENT:
        return 0;
    case YAML_STREAM_END_EVENT:
        return 1;
    case YAML_DOCUMENT_START_EVENT:
        if (++*docs > 1) {
            wfh_diag_add(b->diags, WFH_DIAG_ERROR, (unsigned)m->line + 1,
                         (unsigned)m->column + 1, "put each workflow in its own file",
                         "a workflow file holds one YAML document, found a second");
            return WFH_EPARSE;
        }
        return 0;
    case YAML_ALIAS_EVENT:
        wfh_diag_add(b->diags, WFH_DIAG_ERROR, (unsigned)m->line + 1, (unsigned)m->column + 1,
                     "write the value out where it is used",
                     "aliases (*%s) are not supported in workflow files",
                     (const char *)ev->data.alias.anchor);
        return WFH_EPARSE;
    default:
        break;
    }
    if (++b->nodes > WFH_YDOC_MAX_NODES) {
        wfh_diag_add(b->diags, WFH_DIAG_ERROR, (unsigned)m->line + 1, (unsigned)m->column + 1,
                     NULL, "document too large (more than %u nodes)", WFH_YDOC_MAX_NODES);
        return WFH_EPARSE;
    }
    if (ev->type == YAML_SCALAR_EVENT) {
        int err = refuse_anchor(b, ev->data.scalar.anchor, m);
        if (err < 0)
            return err;
        wfh_ynode *n = node_new(b, WFH_Y_SCALAR, m);
        if (!n)
            return WFH_ENOMEM;
        n->len = ev->data.scalar.length;
        n->str = arena_alloc(b->arena, n->len + 1, 1);
        if (!n->str)
            return WFH_ENOMEM;
        memcpy(n->str, ev->data.scalar.value, n->len);
        n->str[n->len] = '\0';
        n->style = (unsigned char)style_of(ev->data.scalar.style);
        /* an explicit tag (!!str 1) makes a plain scalar a string, as YAML says */
        n->plain = n->style == WFH_YS_PLAIN && ev->data.scalar.plain_implicit;
        return attach(b, n);
    }
    if (ev->type == YAML_SEQUENCE_START_EVENT || ev->type == YAML_MAPPING_START_EVENT) {
        const yaml_char_t *anchor = ev->type == YAML_SEQUENCE_START_EVENT
                                        ? ev->data.sequence_start.anchor
                                        : ev->data.mapping_start.anchor;
        int err = refuse_anchor(b, anchor, m);
        if (err < 0)
            return err;
        if (b->depth >= WFH_YDOC_MAX_DEPTH) {
            wfh_diag_add(b->diags, WFH_DIAG_ERROR, (unsigned)m->line + 1,
                         (unsigned)m->column + 1, NULL, "nesting deeper than %d levels",
                         WFH_YDOC_MAX_DEPTH);
            return WFH_EPARSE;
        }
        wfh_ynode *n =
            node_new(b, ev->type == YAML_SEQUENCE_START_EVENT ? WFH_Y_SEQ : WFH_Y_MAP, m);
        if (!n)
            return WFH_ENOMEM;
        b->stack[b->depth].node = n;
        b->stack[b->depth].pending = NULL;
        b->depth++;
        return 0;
    }
    if (ev->type == YAML_SEQUENCE_END_EVENT || ev->type == YAML_MAPPING_END_EVENT) {
        if (b->depth == 0)
            return WFH_EPARSE; /* libyaml never does this; do not trust it blindly */
        frame f = b->stack[--b->depth];
        if (f.pending) /* cannot happen with a well-behaved parser */
            return WFH_EPARSE;
        if (f.node->kind == WFH_Y_MAP) {
            int err = check_duplicates(b, f.node);
            if (err < 0)
                return err;
        }
        return attach(b, f.node);
    }
    return 0;
}

int wfh_ydoc_parse(const char *buf, size_t len, wfh_ynode **out, wfh_diags *diags)
{
    *out = NULL;
    builder b;
    memset(&b, 0, sizeof b);
    b.diags = diags;
    b.buf = buf;
    b.len = len;
    if (len > WFH_YDOC_MAX_BYTES) {
        wfh_diag_add(diags, WFH_DIAG_ERROR, 1, 1, NULL, "file too large (%zu bytes, limit %u)",
                     len, WFH_YDOC_MAX_BYTES);
        return wfh_error_set(WFH_EPARSE, "%s: file too large", diags->file);
    }
    b.arena = calloc(1, sizeof *b.arena);
    yaml_parser_t p;
    if (!b.arena || !yaml_parser_initialize(&p)) {
        free(b.arena);
        return wfh_error_set(WFH_ENOMEM, "out of memory starting the YAML parser");
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
    int err = 0, docs = 0;
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            report_parser_error(&b, &p);
            err = p.error == YAML_MEMORY_ERROR ? WFH_ENOMEM : WFH_EPARSE;
            break;
        }
        int r = on_event(&b, &ev, &docs);
        yaml_event_delete(&ev);
        if (r < 0) {
            err = r;
            break;
        }
        if (r == 1)
            break;
    }
    yaml_parser_delete(&p);
    /* whatever was built, attached or not, is in the arena */
    if (!err && !b.root) {
        wfh_diag_add(diags, WFH_DIAG_ERROR, 1, 1, NULL, "the file is empty");
        err = WFH_EPARSE;
    }
    if (err < 0) {
        arena_free(b.arena);
        if (err == WFH_ENOMEM)
            return wfh_error_set(err, "%s: out of memory parsing YAML", diags->file);
        char first[512];
        wfh_diags_first(diags, first, sizeof first);
        return wfh_error_set(err, "%s", first);
    }
    b.root->arena = b.arena;
    *out = b.root;
    return 0;
}

/* YAML 1.2 core schema, the part JSON can carry (no .inf/.nan: they stay strings). */
static int is_null(const char *s, size_t len)
{
    return len == 0 || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
           !strcmp(s, "NULL");
}

static json_t *number_of(const char *s, size_t len)
{
    if (len == 0 || len > 64 || strlen(s) != len)
        return NULL;
    const char *p = s;
    if (*p == '+' || *p == '-')
        p++;
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'o') && p == s) {
        int base = p[1] == 'x' ? 16 : 8;
        if (!p[2])
            return NULL;
        char *end;
        errno = 0;
        unsigned long long v = strtoull(p + 2, &end, base);
        if (*end || errno || v > (unsigned long long)INT64_MAX)
            return NULL;
        return json_integer((json_int_t)v);
    }
    int digits = 0, dot = 0, exp = 0;
    for (const char *q = p; *q; q++) {
        if (*q >= '0' && *q <= '9') {
            digits++;
        } else if (*q == '.' && !dot && !exp) {
            dot = 1;
        } else if ((*q == 'e' || *q == 'E') && digits && !exp) {
            exp = 1;
            if (q[1] == '+' || q[1] == '-')
                q++;
            if (!(q[1] >= '0' && q[1] <= '9'))
                return NULL;
        } else {
            return NULL;
        }
    }
    if (!digits)
        return NULL;
    char *end;
    if (!dot && !exp) {
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (!*end && !errno)
            return json_integer((json_int_t)v);
    }
    errno = 0;
    double d = strtod(s, &end);
    if (*end || !isfinite(d))
        return NULL;
    return json_real(d);
}

json_t *wfh_yscalar_to_json(const wfh_ynode *n)
{
    if (n->plain) {
        if (is_null(n->str, n->len))
            return json_null();
        if (!strcmp(n->str, "true") || !strcmp(n->str, "True") || !strcmp(n->str, "TRUE"))
            return json_true();
        if (!strcmp(n->str, "false") || !strcmp(n->str, "False") || !strcmp(n->str, "FALSE"))
            return json_false();
        json_t *num = number_of(n->str, n->len);
        if (num)
            return num;
    }
    return json_stringn(n->str, n->len);
}

json_t *wfh_ynode_to_json(const wfh_ynode *n)
{
    if (!n)
        return NULL;
    if (n->kind == WFH_Y_SCALAR)
        return wfh_yscalar_to_json(n);
    json_t *out = n->kind == WFH_Y_SEQ ? json_array() : json_object();
    if (!out)
        return NULL;
    for (size_t i = 0; i < n->n; i++) {
        json_t *v = wfh_ynode_to_json(n->items[i]);
        if (!v)
            goto fail;
        if (n->kind == WFH_Y_SEQ) {
            if (json_array_append_new(out, v) < 0)
                goto fail;
        } else {
            /* jansson keys are C strings: a key with a NUL in it cannot be represented */
            if (strlen(n->keys[i]->str) != n->keys[i]->len ||
                json_object_set_new(out, n->keys[i]->str, v) < 0) {
                if (strlen(n->keys[i]->str) != n->keys[i]->len)
                    json_decref(v);
                goto fail;
            }
        }
    }
    return out;
fail:
    json_decref(out);
    return NULL;
}

void wfh_yscalar_pos(const wfh_ynode *n, const char *src, size_t src_len, size_t offset,
                     unsigned *line, unsigned *col)
{
    *line = n->line;
    *col = n->col;
    if (n->kind != WFH_Y_SCALAR)
        return;
    if (offset > n->len)
        offset = n->len;
    if (n->style == WFH_YS_LITERAL || n->style == WFH_YS_FOLDED) {
        /* The value starts on the line after the `|` header, indented; the literal
         * style keeps one value line per source line. */
        unsigned nl = 0;
        size_t last = 0;
        for (size_t i = 0; i < offset; i++)
            if (n->str[i] == '\n') {
                nl++;
                last = i + 1;
            }
        unsigned indent = 0;
        if (src) {
            const char *p = src, *end = src + src_len;
            for (unsigned l = 1; l <= n->line && p < end; l++) {
                p = memchr(p, '\n', (size_t)(end - p));
                p = p ? p + 1 : end;
            }
            while (p < end) { /* first non-blank line sets the indentation */
                unsigned k = 0;
                while (p + k < end && p[k] == ' ')
                    k++;
                if (p + k < end && p[k] != '\n' && p[k] != '\r') {
                    indent = k;
                    break;
                }
                p = memchr(p, '\n', (size_t)(end - p));
                p = p ? p + 1 : end;
            }
        }
        *line = n->line + 1 + nl;
        *col = indent + 1 + (unsigned)(offset - last);
        return;
    }
    unsigned quote = n->style == WFH_YS_PLAIN ? 0 : 1;
    /* Count characters, not bytes, like libyaml's columns. */
    unsigned chars = 0;
    for (size_t i = 0; i < offset; i++)
        if (((unsigned char)n->str[i] & 0xC0) != 0x80)
            chars++;
    *col = n->col + quote + chars;
}
