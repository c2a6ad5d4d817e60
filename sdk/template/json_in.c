/*
 * json_in.c - just enough JSON reading for a step's inputs (see json_in.h).
 * A strict recursive reader (RFC 8259), depth-limited, that never reads past the
 * length it was given.
 */
#include "json_in.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define JIN_MAX_DEPTH 64

typedef struct cur {
    const char *p, *end;
} cur;

static void ws(cur *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static int hex4(const char *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char h = p[i];
        v <<= 4;
        if (h >= '0' && h <= '9')
            v |= (unsigned)(h - '0');
        else if (h >= 'a' && h <= 'f')
            v |= (unsigned)(h - 'a' + 10);
        else if (h >= 'A' && h <= 'F')
            v |= (unsigned)(h - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

/* Skip a string literal starting at c->p (the quote). */
static int skip_string(cur *c)
{
    c->p++;
    while (c->p < c->end) {
        unsigned char ch = (unsigned char)*c->p++;
        if (ch == '"')
            return 0;
        if (ch < 0x20)
            return -1;
        if (ch == '\\') {
            if (c->p >= c->end)
                return -1;
            char e = *c->p++;
            unsigned u;
            if (e == 'u') {
                if (c->end - c->p < 4 || hex4(c->p, &u) < 0)
                    return -1;
                c->p += 4;
            } else if (!strchr("\"\\/bfnrt", e) || e == 0) {
                return -1;
            }
        }
    }
    return -1;
}

static int skip_digits(cur *c)
{
    const char *s = c->p;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9')
        c->p++;
    return c->p > s ? 0 : -1;
}

static int skip_value(cur *c, jin_type *type, int depth)
{
    ws(c);
    if (c->p >= c->end || depth > JIN_MAX_DEPTH)
        return -1;
    char ch = *c->p;
    if (ch == '"') {
        *type = JIN_STRING;
        return skip_string(c);
    }
    if (ch == '{' || ch == '[') {
        char close = ch == '{' ? '}' : ']';
        *type = ch == '{' ? JIN_OBJECT : JIN_ARRAY;
        c->p++;
        ws(c);
        if (c->p < c->end && *c->p == close) {
            c->p++;
            return 0;
        }
        for (;;) {
            jin_type t;
            if (ch == '{') {
                ws(c);
                if (c->p >= c->end || *c->p != '"' || skip_string(c) < 0)
                    return -1;
                ws(c);
                if (c->p >= c->end || *c->p++ != ':')
                    return -1;
            }
            if (skip_value(c, &t, depth + 1) < 0)
                return -1;
            ws(c);
            if (c->p >= c->end)
                return -1;
            if (*c->p == ',') {
                c->p++;
                continue;
            }
            if (*c->p++ == close)
                return 0;
            return -1;
        }
    }
    static const struct {
        const char *word;
        jin_type type;
    } words[] = {{"true", JIN_BOOL}, {"false", JIN_BOOL}, {"null", JIN_NULL}};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        size_t n = strlen(words[i].word);
        if ((size_t)(c->end - c->p) >= n && !memcmp(c->p, words[i].word, n)) {
            c->p += n;
            *type = words[i].type;
            return 0;
        }
    }
    *type = JIN_NUMBER;
    if (*c->p == '-')
        c->p++;
    if (c->p < c->end && *c->p == '0')
        c->p++;
    else if (skip_digits(c) < 0)
        return -1;
    if (c->p < c->end && *c->p == '.') {
        c->p++;
        if (skip_digits(c) < 0)
            return -1;
    }
    if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
        c->p++;
        if (c->p < c->end && (*c->p == '+' || *c->p == '-'))
            c->p++;
        if (skip_digits(c) < 0)
            return -1;
    }
    return 0;
}

int jin_parse(const char *json, size_t len, jin_val *out)
{
    if (!json)
        return -1;
    cur c = {json, json + len};
    ws(&c);
    const char *start = c.p;
    jin_type t;
    if (skip_value(&c, &t, 0) < 0)
        return -1;
    const char *stop = c.p;
    ws(&c);
    if (c.p != c.end)
        return -1;
    out->type = t;
    out->p = start;
    out->len = (size_t)(stop - start);
    return 0;
}

int jin_each(const jin_val *obj, int (*fn)(void *ud, const char *key, const jin_val *v), void *ud)
{
    if (!obj || obj->type != JIN_OBJECT)
        return -1;
    cur c = {obj->p + 1, obj->p + obj->len - 1};
    char key[256];
    for (;;) {
        ws(&c);
        if (c.p >= c.end)
            return 0;
        if (*c.p == ',') {
            c.p++;
            ws(&c);
        }
        jin_val k = {JIN_STRING, c.p, 0};
        if (skip_string(&c) < 0)
            return -1; /* cannot happen after jin_parse */
        k.len = (size_t)(c.p - k.p);
        ws(&c);
        c.p++; /* ':' */
        ws(&c);
        jin_val v = {JIN_NONE, c.p, 0};
        if (skip_value(&c, &v.type, 1) < 0)
            return -1;
        v.len = (size_t)(c.p - v.p);
        /* A key too long for the buffer cannot be one we look for: skip it. */
        if (jin_string(&k, key, sizeof key) < 0)
            continue;
        int r = fn(ud, key, &v);
        if (r)
            return r;
    }
}

typedef struct get_ctx {
    const char *key;
    jin_val *out;
} get_ctx;

static int get_one(void *ud, const char *key, const jin_val *v)
{
    get_ctx *g = ud;
    if (strcmp(key, g->key))
        return 0;
    *g->out = *v;
    return 1;
}

int jin_get(const jin_val *obj, const char *key, jin_val *out)
{
    get_ctx g = {key, out};
    int r = jin_each(obj, get_one, &g);
    return r < 0 ? -1 : r;
}

static size_t put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

long jin_string(const jin_val *v, char *buf, size_t cap)
{
    if (!v || v->type != JIN_STRING || cap == 0)
        return -1;
    const char *p = v->p + 1, *end = v->p + v->len - 1;
    size_t o = 0;
    while (p < end) {
        char tmp[4];
        size_t n = 1;
        if (*p != '\\') {
            tmp[0] = *p++;
        } else {
            char e = p[1];
            p += 2;
            static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
            const char *k = strchr(from, e);
            if (e != 'u') {
                tmp[0] = to[k - from];
            } else {
                unsigned cp, lo;
                hex4(p, &cp);
                p += 4;
                if (cp >= 0xd800 && cp < 0xdc00 && end - p >= 6 && p[0] == '\\' && p[1] == 'u' &&
                    hex4(p + 2, &lo) == 0 && lo >= 0xdc00 && lo < 0xe000) {
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                    p += 6;
                } else if (cp >= 0xd800 && cp < 0xe000) {
                    cp = 0xfffd; /* a lone surrogate */
                }
                n = put_utf8(tmp, cp);
            }
        }
        if (n == 1 && tmp[0] == 0)
            return -1;
        if (o + n >= cap)
            return -1;
        memcpy(buf + o, tmp, n);
        o += n;
    }
    buf[o] = 0;
    return (long)o;
}

int jin_int(const jin_val *v, long long *out)
{
    if (!v || v->type != JIN_NUMBER || v->len > 24)
        return -1;
    char tmp[32];
    memcpy(tmp, v->p, v->len);
    tmp[v->len] = 0;
    if (strpbrk(tmp, ".eE"))
        return -1;
    char *end;
    errno = 0;
    long long n = strtoll(tmp, &end, 10);
    if (errno || *end)
        return -1;
    *out = n;
    return 0;
}

int jin_quote(char *buf, size_t cap, size_t *off, const char *s)
{
    size_t o = *off;
    if (o + 1 >= cap)
        return -1;
    buf[o++] = '"';
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        size_t n;
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            n = 2;
        } else if (*p < 0x20) {
            static const char hexd[] = "0123456789abcdef";
            memcpy(esc, "\\u00", 4);
            esc[4] = hexd[*p >> 4];
            esc[5] = hexd[*p & 15];
            n = 6;
        } else {
            esc[0] = (char)*p;
            n = 1;
        }
        if (o + n + 1 >= cap)
            return -1;
        memcpy(buf + o, esc, n);
        o += n;
    }
    if (o + 2 > cap)
        return -1;
    buf[o++] = '"';
    buf[o] = 0;
    *off = o;
    return 0;
}
