/*
 * core/expr_value.c - values of the expression language and GitHub's coercions.
 *
 * Everything that decides what a value "is" lives here: truthiness, loose equality with
 * number coercion, ordering, the string and number conversions (JavaScript's Number()
 * for strings, 15 significant digits for numbers), case-insensitive string comparison,
 * and the JSON writer used by toJSON() and template stringification.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "expr_internal.h"

void wfh_val_clear(wfh_val *v)
{
    if (!v)
        return;
    json_decref(v->j);
    memset(v, 0, sizeof *v);
}

void wfh_val_from_json(json_t *j, wfh_val *out)
{
    memset(out, 0, sizeof *out);
    switch (json_typeof(j)) {
    case JSON_OBJECT: out->kind = WV_OBJ; break;
    case JSON_ARRAY: out->kind = WV_ARR; break;
    case JSON_STRING: out->kind = WV_STR; break;
    case JSON_INTEGER:
    case JSON_REAL:
        out->kind = WV_NUM;
        out->n = json_number_value(j);
        break;
    case JSON_TRUE: out->kind = WV_BOOL; out->b = 1; return;
    case JSON_FALSE: out->kind = WV_BOOL; return;
    case JSON_NULL:
    default: out->kind = WV_NULL; return;
    }
    out->j = json_incref(j);
}

int wfh_val_string(const char *s, size_t len, wfh_val *out)
{
    memset(out, 0, sizeof *out);
    out->kind = WV_STR;
    /* The lexer refuses invalid UTF-8, and every producer here keeps it valid. */
    out->j = json_stringn_nocheck(s, len);
    return out->j ? 0 : WFH_ENOMEM;
}

void wfh_val_copy(const wfh_val *in, wfh_val *out)
{
    *out = *in;
    json_incref(out->j);
}

int wfh_val_primitive(const wfh_val *v)
{
    return v->kind != WV_ARR && v->kind != WV_OBJ;
}

int wfh_val_truthy(const wfh_val *v)
{
    switch (v->kind) {
    case WV_NULL: return 0;
    case WV_BOOL: return v->b;
    case WV_NUM: return v->n != 0 && !isnan(v->n);
    case WV_STR: return json_string_length(v->j) > 0;
    default: return 1;
    }
}

int wfh_expr_truthy(const json_t *v)
{
    wfh_val x;
    if (!v)
        return 0;
    wfh_val_from_json((json_t *)v, &x);
    int t = wfh_val_truthy(&x);
    wfh_val_clear(&x);
    return t;
}

static int is_js_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static double radix_value(const char *s, size_t len, int radix)
{
    double v = 0;
    if (len == 0)
        return NAN;
    for (size_t i = 0; i < len; i++) {
        int d;
        char c = s[i];
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return NAN;
        if (d >= radix)
            return NAN;
        v = v * radix + d;
    }
    return v;
}

/* Bytes of the JavaScript white space (StrWhiteSpaceChar) that @p s starts with, or 0. */
static size_t js_space_at(const char *s, size_t len)
{
    if (len == 0)
        return 0;
    if (is_js_space(s[0]))
        return 1;
    if ((unsigned char)s[0] < 0x80)
        return 0;
    size_t i = 0;
    uint32_t cp = wfh_expr_utf8_next(s, len, &i);
    if (cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 ||
        cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000 || cp == 0xFEFF)
        return i;
    return 0;
}

/* The same at the end of @p s. */
static size_t js_space_before(const char *s, size_t len)
{
    if (len == 0)
        return 0;
    if (is_js_space(s[len - 1]))
        return 1;
    size_t start = len - 1;
    while (start > 0 && len - start < 4 && ((unsigned char)s[start] & 0xC0) == 0x80)
        start--;
    size_t n = js_space_at(s + start, len - start);
    return n == len - start ? n : 0;
}

double wfh_expr_str_to_number(const char *s, size_t len)
{
    size_t n;
    while ((n = js_space_at(s, len)) > 0)
        s += n, len -= n;
    while ((n = js_space_before(s, len)) > 0)
        len -= n;
    if (len == 0)
        return 0;
    if (len > 2 && s[0] == '0') {
        if (s[1] == 'x' || s[1] == 'X')
            return radix_value(s + 2, len - 2, 16);
        if (s[1] == 'o' || s[1] == 'O')
            return radix_value(s + 2, len - 2, 8);
        if (s[1] == 'b' || s[1] == 'B')
            return radix_value(s + 2, len - 2, 2);
    }
    size_t i = 0;
    int neg = 0;
    if (s[i] == '+' || s[i] == '-')
        neg = s[i++] == '-';
    if (len - i == 8 && memcmp(s + i, "Infinity", 8) == 0)
        return neg ? -INFINITY : INFINITY;
    /* StrDecimalLiteral: digits [. digits] [e [+-] digits], at least one digit. */
    size_t digits = 0;
    while (i < len && s[i] >= '0' && s[i] <= '9')
        i++, digits++;
    if (i < len && s[i] == '.') {
        i++;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++, digits++;
    }
    if (digits == 0)
        return NAN;
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-'))
            i++;
        size_t ed = 0;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++, ed++;
        if (ed == 0)
            return NAN;
    }
    if (i != len)
        return NAN;
    char small[64];
    char *copy = len < sizeof small ? small : malloc(len + 1); /* owned if != small */
    if (!copy)
        return NAN;
    memcpy(copy, s, len);
    copy[len] = '\0';
    double d = strtod(copy, NULL);
    if (copy != small)
        free(copy);
    return d;
}

/* JavaScript's Number#toString for a finite, non-zero @p d: the shortest digits that
 * read back as d, in fixed notation for exponents -7 < e < 21, else exponential. */
static void js_number_text(double d, char *buf, size_t size)
{
    char digits[32], tmp[40];
    int exp10 = 0;
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, d);
        if (strtod(tmp, NULL) == d || prec == 17)
            break;
    }
    /* tmp is "-d.ddde+XX": split into sign, digits and exponent. */
    const char *p = tmp;
    int neg = *p == '-';
    if (neg)
        p++;
    size_t nd = 0;
    for (; *p && *p != 'e'; p++)
        if (*p >= '0' && *p <= '9')
            digits[nd++] = *p;
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    digits[nd] = '\0';
    if (*p == 'e')
        exp10 = atoi(p + 1);
    int n = exp10 + 1; /* the decimal point sits after n digits */
    int k = (int)nd;
    char out[64];
    size_t o = 0;
    if (neg)
        out[o++] = '-';
    if (k <= n && n <= 21) {
        memcpy(out + o, digits, nd);
        o += nd;
        for (int z = 0; z < n - k; z++)
            out[o++] = '0';
    } else if (0 < n && n <= 21) {
        memcpy(out + o, digits, (size_t)n);
        o += (size_t)n;
        out[o++] = '.';
        memcpy(out + o, digits + n, nd - (size_t)n);
        o += nd - (size_t)n;
    } else if (-6 < n && n <= 0) {
        out[o++] = '0';
        out[o++] = '.';
        for (int z = 0; z < -n; z++)
            out[o++] = '0';
        memcpy(out + o, digits, nd);
        o += nd;
    } else {
        out[o++] = digits[0];
        if (nd > 1) {
            out[o++] = '.';
            memcpy(out + o, digits + 1, nd - 1);
            o += nd - 1;
        }
        o += (size_t)snprintf(out + o, sizeof out - o, "e%c%d", n - 1 < 0 ? '-' : '+',
                              n - 1 < 0 ? 1 - n : n - 1);
    }
    out[o] = '\0';
    snprintf(buf, size, "%s", out);
}

void wfh_expr_json_number(double d, char *buf, size_t size)
{
    if (!isfinite(d))
        snprintf(buf, size, "null"); /* as JSON.stringify does */
    else if (d == 0)
        snprintf(buf, size, "0");
    else
        js_number_text(d, buf, size);
}

void wfh_expr_number_format(double d, char *buf, size_t size)
{
    if (isnan(d)) {
        snprintf(buf, size, "NaN");
        return;
    }
    if (isinf(d)) {
        snprintf(buf, size, "%s", d < 0 ? "-Infinity" : "Infinity");
        return;
    }
    /* GitHub keeps at most 15 decimals (so 0.1 + float noise prints as 0.1), then prints
     * the shortest form of that. Beyond 1e21 there is nothing after the point to drop. */
    if (d > -1e21 && d < 1e21) {
        char fixed[400];
        snprintf(fixed, sizeof fixed, "%.15f", d);
        d = strtod(fixed, NULL);
    }
    if (d == 0) {
        snprintf(buf, size, "0"); /* also -0 */
        return;
    }
    js_number_text(d, buf, size);
}

double wfh_val_to_number(const wfh_val *v)
{
    switch (v->kind) {
    case WV_NULL: return 0;
    case WV_BOOL: return v->b ? 1 : 0;
    case WV_NUM: return v->n;
    case WV_STR: return wfh_expr_str_to_number(json_string_value(v->j), json_string_length(v->j));
    default: return NAN;
    }
}

char *wfh_val_to_string(const wfh_val *v, size_t *len)
{
    char num[64];
    const char *s;
    size_t n;
    switch (v->kind) {
    case WV_NULL: s = ""; n = 0; break;
    case WV_BOOL: s = v->b ? "true" : "false"; n = strlen(s); break;
    case WV_NUM:
        wfh_expr_number_format(v->n, num, sizeof num);
        s = num;
        n = strlen(num);
        break;
    case WV_STR: s = json_string_value(v->j); n = json_string_length(v->j); break;
    case WV_ARR: s = "Array"; n = 5; break;
    default: s = "Object"; n = 6; break;
    }
    char *out = malloc(n + 1); /* owned by the caller */
    if (!out)
        return NULL;
    memcpy(out, s, n);
    out[n] = '\0';
    if (len)
        *len = n;
    return out;
}

/* ---- UTF-8 and case ---- */

int wfh_expr_utf8_valid(const char *s, size_t len, size_t *bad)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        unsigned c = u[i];
        size_t n;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            n = 1, cp = c & 0x1F, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            n = 2, cp = c & 0x0F, min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            n = 3, cp = c & 0x07, min = 0x10000;
        } else {
            goto fail;
        }
        for (size_t k = 1; k <= n; k++) {
            if (i + k >= len || (u[i + k] & 0xC0) != 0x80)
                goto fail;
            cp = (cp << 6) | (u[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            goto fail;
        i += n + 1;
    }
    return 1;
fail:
    if (bad)
        *bad = i;
    return 0;
}

uint32_t wfh_expr_utf8_next(const char *s, size_t len, size_t *i)
{
    const unsigned char *u = (const unsigned char *)s;
    unsigned c = u[*i];
    size_t n = 0;
    uint32_t cp;
    if (c < 0x80) {
        (*i)++;
        return c;
    } else if ((c & 0xE0) == 0xC0) {
        n = 1, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
        n = 2, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
        n = 3, cp = c & 0x07;
    } else {
        (*i)++;
        return 0xFFFD;
    }
    size_t k;
    for (k = 1; k <= n && *i + k < len && (u[*i + k] & 0xC0) == 0x80; k++)
        cp = (cp << 6) | (u[*i + k] & 0x3F);
    if (k <= n) {
        *i += k;
        return 0xFFFD;
    }
    *i += n + 1;
    return cp;
}

static size_t utf8_put(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

char *wfh_expr_case_map(const char *s, size_t len, int upper, size_t *outlen)
{
    /* No mapping makes a code point's UTF-8 more than 3 times longer (checked by the
     * generator of expr_case.c). */
    if (len > ((size_t)-1 - 1) / 3)
        return NULL;
    char *out = malloc(len * 3 + 1); /* owned by the caller */
    if (!out)
        return NULL;
    size_t i = 0, o = 0;
    while (i < len) {
        uint32_t cps[3];
        size_t n = wfh_expr_cp_case(wfh_expr_utf8_next(s, len, &i), upper, cps);
        for (size_t k = 0; k < n; k++)
            o += utf8_put(out + o, cps[k]);
    }
    out[o] = '\0';
    if (outlen)
        *outlen = o;
    return out;
}

static int bytes_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    if (c)
        return c < 0 ? -1 : 1;
    return alen < blen ? -1 : alen > blen ? 1 : 0;
}

int wfh_expr_str_icmp(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t i = 0;
    /* ASCII prefix: the common case, without allocating. */
    for (; i < alen && i < blen; i++) {
        unsigned char ca = (unsigned char)a[i], cb = (unsigned char)b[i];
        if (ca >= 0x80 || cb >= 0x80)
            break;
        unsigned x = (ca >= 'a' && ca <= 'z') ? ca - 32u : ca;
        unsigned y = (cb >= 'a' && cb <= 'z') ? cb - 32u : cb;
        if (x != y)
            return x < y ? -1 : 1;
    }
    if (i == alen || i == blen)
        return alen - i == blen - i ? 0 : (alen - i < blen - i ? -1 : 1);
    /* Upper-case the rest of both (one code point may become several, 'ß' -> "SS"),
     * then compare; UTF-8 byte order is code point order. */
    size_t fal, fbl;
    char *fa = wfh_expr_case_map(a + i, alen - i, 1, &fal); /* owned */
    char *fb = wfh_expr_case_map(b + i, blen - i, 1, &fbl); /* owned */
    int c = fa && fb ? bytes_cmp(fa, fal, fb, fbl) : bytes_cmp(a + i, alen - i, b + i, blen - i);
    free(fa);
    free(fb);
    return c;
}

json_t *wfh_expr_obj_get(const json_t *obj, const char *name, size_t len)
{
    if (!json_is_object(obj))
        return NULL;
    const char *key;
    json_t *v;
    /* Exact match first: the common case, and O(1). */
    if (memchr(name, '\0', len) == NULL) {
        char small[128];
        if (len < sizeof small) {
            memcpy(small, name, len);
            small[len] = '\0';
            v = json_object_get(obj, small);
            if (v)
                return v;
        }
    }
    json_object_foreach((json_t *)obj, key, v) {
        if (wfh_expr_str_icmp(key, strlen(key), name, len) == 0)
            return v;
    }
    return NULL;
}

/* ---- equality and order ---- */

int wfh_val_equal(const wfh_val *a, const wfh_val *b)
{
    if (a->kind == b->kind) {
        switch (a->kind) {
        case WV_NULL: return 1;
        case WV_BOOL: return a->b == b->b;
        case WV_NUM: return a->n == b->n;
        case WV_STR:
            return wfh_expr_str_icmp(json_string_value(a->j), json_string_length(a->j),
                                     json_string_value(b->j), json_string_length(b->j)) == 0;
        default: return a->j == b->j; /* containers: the same instance */
        }
    }
    if (!wfh_val_primitive(a) || !wfh_val_primitive(b))
        return 0;
    return wfh_val_to_number(a) == wfh_val_to_number(b);
}

static int cmp_num(double x, double y)
{
    if (isnan(x) || isnan(y))
        return 2;
    return x < y ? -1 : x > y ? 1 : 0;
}

int wfh_val_compare(const wfh_val *a, const wfh_val *b)
{
    if (a->kind == b->kind) {
        switch (a->kind) {
        case WV_NULL: return 0;
        case WV_BOOL: return a->b == b->b ? 0 : a->b ? 1 : -1;
        case WV_NUM: return cmp_num(a->n, b->n);
        case WV_STR: {
            int c = wfh_expr_str_icmp(json_string_value(a->j), json_string_length(a->j),
                                      json_string_value(b->j), json_string_length(b->j));
            return c < 0 ? -1 : c > 0 ? 1 : 0;
        }
        default: return 2;
        }
    }
    if (!wfh_val_primitive(a) || !wfh_val_primitive(b))
        return 2;
    return cmp_num(wfh_val_to_number(a), wfh_val_to_number(b));
}

json_t *wfh_val_to_json(const wfh_val *v, int *nonfinite)
{
    if (nonfinite)
        *nonfinite = 0;
    switch (v->kind) {
    case WV_NULL: return json_null();
    case WV_BOOL: return json_boolean(v->b);
    case WV_NUM:
        if (v->j)
            return json_incref(v->j);
        if (!isfinite(v->n)) {
            if (nonfinite)
                *nonfinite = 1;
            return NULL;
        }
        /* Integral values print as integers ("2", not "2.0"), as GitHub shows them. */
        /* (No libm: the core does not link it.) */
        if (v->n >= -9007199254740992.0 && v->n <= 9007199254740992.0 &&
            (double)(int64_t)v->n == v->n)
            return json_integer((json_int_t)v->n);
        return json_real(v->n);
    default: return json_incref(v->j);
    }
}

const char *wfh_expr_kind_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "Object";
    case JSON_ARRAY: return "Array";
    case JSON_STRING: return "String";
    case JSON_INTEGER:
    case JSON_REAL: return "Number";
    case JSON_TRUE:
    case JSON_FALSE: return "Boolean";
    default: return "Null";
    }
}

/* ---- buffers and JSON text ---- */

void wfh_buf_add(wfh_buf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1) {
            if (cap > ((size_t)-1) / 2) {
                b->oom = 1;
                return;
            }
            cap *= 2;
        }
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void wfh_buf_addc(wfh_buf *b, char c)
{
    wfh_buf_add(b, &c, 1);
}

void wfh_buf_addstr(wfh_buf *b, const char *s)
{
    wfh_buf_add(b, s, strlen(s));
}

static void json_write_string(wfh_buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    wfh_buf_addc(b, '"');
    size_t run = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char u[7];
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        default:
            if (c < 0x20) {
                u[0] = '\\', u[1] = 'u', u[2] = '0', u[3] = '0';
                u[4] = hex[c >> 4], u[5] = hex[c & 15], u[6] = '\0';
                esc = u;
            }
        }
        if (esc) {
            wfh_buf_add(b, s + i - run, run);
            run = 0;
            wfh_buf_addstr(b, esc);
        } else {
            run++;
        }
    }
    wfh_buf_add(b, s + len - run, run);
    wfh_buf_addc(b, '"');
}

static void indent_to(wfh_buf *b, int n)
{
    wfh_buf_addc(b, '\n');
    for (int i = 0; i < n; i++)
        wfh_buf_add(b, "  ", 2);
}

void wfh_expr_json_write(wfh_buf *b, const json_t *j, int pretty, int indent)
{
    char num[64];
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        const char *key;
        json_t *v;
        if (json_object_size(j) == 0) {
            wfh_buf_add(b, "{}", 2);
            return;
        }
        wfh_buf_addc(b, '{');
        int first = 1;
        json_object_foreach((json_t *)j, key, v) {
            if (!first)
                wfh_buf_addc(b, ',');
            first = 0;
            if (pretty)
                indent_to(b, indent + 1);
            json_write_string(b, key, strlen(key));
            wfh_buf_add(b, pretty ? ": " : ":", pretty ? 2 : 1);
            wfh_expr_json_write(b, v, pretty, indent + 1);
        }
        if (pretty)
            indent_to(b, indent);
        wfh_buf_addc(b, '}');
        return;
    }
    case JSON_ARRAY: {
        if (json_array_size(j) == 0) {
            wfh_buf_add(b, "[]", 2);
            return;
        }
        wfh_buf_addc(b, '[');
        for (size_t i = 0; i < json_array_size(j); i++) {
            if (i)
                wfh_buf_addc(b, ',');
            if (pretty)
                indent_to(b, indent + 1);
            wfh_expr_json_write(b, json_array_get(j, i), pretty, indent + 1);
        }
        if (pretty)
            indent_to(b, indent);
        wfh_buf_addc(b, ']');
        return;
    }
    case JSON_STRING: json_write_string(b, json_string_value(j), json_string_length(j)); return;
    case JSON_INTEGER:
        snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(j));
        wfh_buf_addstr(b, num);
        return;
    case JSON_REAL:
        wfh_expr_json_number(json_real_value(j), num, sizeof num);
        wfh_buf_addstr(b, num);
        return;
    case JSON_TRUE: wfh_buf_add(b, "true", 4); return;
    case JSON_FALSE: wfh_buf_add(b, "false", 5); return;
    default: wfh_buf_add(b, "null", 4); return;
    }
}

char *wfh_expr_to_string(const json_t *v)
{
    wfh_buf b = {0};
    char num[64];
    switch (json_typeof(v)) {
    case JSON_OBJECT:
    case JSON_ARRAY: wfh_expr_json_write(&b, v, 0, 0); break;
    case JSON_STRING: wfh_buf_add(&b, json_string_value(v), json_string_length(v)); break;
    case JSON_INTEGER:
    case JSON_REAL:
        wfh_expr_number_format(json_number_value(v), num, sizeof num);
        if (json_is_integer(v))
            snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        wfh_buf_addstr(&b, num);
        break;
    case JSON_TRUE: wfh_buf_addstr(&b, "true"); break;
    case JSON_FALSE: wfh_buf_addstr(&b, "false"); break;
    default: break;
    }
    if (!b.oom && !b.p)
        wfh_buf_add(&b, "", 0);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

/* Equal as GitHub would show them (see expr.h). */
int wfh_expr_same_value(const json_t *a, const json_t *b)
{
    if (json_is_number(a) && json_is_number(b)) {
        char x[64], y[64];
        wfh_expr_number_format(json_number_value(a), x, sizeof x);
        wfh_expr_number_format(json_number_value(b), y, sizeof y);
        return strcmp(x, y) == 0;
    }
    if (json_typeof(a) != json_typeof(b))
        return 0;
    if (json_is_array(a)) {
        if (json_array_size(a) != json_array_size(b))
            return 0;
        for (size_t i = 0; i < json_array_size(a); i++)
            if (!wfh_expr_same_value(json_array_get(a, i), json_array_get(b, i)))
                return 0;
        return 1;
    }
    if (json_is_object(a)) {
        const char *k;
        json_t *v;
        if (json_object_size(a) != json_object_size(b))
            return 0;
        json_object_foreach((json_t *)a, k, v) {
            json_t *w = json_object_get(b, k);
            if (!w || !wfh_expr_same_value(v, w))
                return 0;
        }
        return 1;
    }
    return json_equal((json_t *)a, (json_t *)b);
}
