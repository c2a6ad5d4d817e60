/*
 * core/expr_lex.c - the tokenizer of the expression language.
 *
 * Follows GitHub's lexer: a `.` starts a number only where an operand may start (after
 * an operator, `(`, `[`, `,` or at the beginning), otherwise it is a dereference; words
 * end at the same boundary characters; a word right after a dereference is a property
 * name whatever it spells (foo.true, foo.format); a word followed by `(` is a function.
 * Any other run of characters is one "unexpected symbol" (a lexing error). wfhost adds
 * `?` and `:` for the ternary; both were lexing errors in GitHub, so no valid GitHub
 * expression changes meaning.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "expr_internal.h"

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static int is_boundary(char c)
{
    switch (c) {
    case '(': case '[': case ')': case ']': case ',': case '.': case '!':
    case '>': case '<': case '=': case '&': case '|': case '?': case ':':
        return 1;
    default:
        return is_space(c);
    }
}

static int is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int legal_keyword(const char *s, size_t len)
{
    if (len == 0 || !is_alpha(s[0]))
        return 0;
    for (size_t i = 1; i < len; i++)
        if (!is_alpha(s[i]) && !(s[i] >= '0' && s[i] <= '9') && s[i] != '-')
            return 0;
    return 1;
}

/* A `.` starts a number unless it follows something that can be dereferenced (a name,
 * `]`, `)` or `*`), exactly as in GitHub's lexer: so `'abc'.x` is a lexing error there too. */
static int operand_position(const wfh_tok *last)
{
    if (!last)
        return 1;
    switch (last->kind) {
    case T_PROP: case T_NAMED: case T_FUNC: case T_RBRACK: case T_RPAREN: case T_STAR:
        return 0;
    default:
        return 1;
    }
}

static int lex_fail(const char *src, size_t len, size_t off, size_t toklen, wfh_expr_error *err)
{
    int tl = toklen > 60 ? 60 : (int)toklen;
    int el = len > 120 ? 120 : (int)len;
    err->kind = WFH_EXPR_ERR_LEXING;
    err->offset = off;
    snprintf(err->message, sizeof err->message,
             "Unexpected symbol: '%.*s'. Located at position %zu within expression: %.*s%s", tl,
             src + off, off + 1, el, src, len > 120 ? "..." : "");
    return wfh_error_set(WFH_EPARSE, "expression: %s", err->message);
}

int wfh_expr_lex(const char *src, size_t len, wfh_tok **toks, size_t *ntoks, wfh_expr_error *err)
{
    wfh_tok *t = NULL; /* owned until handed to *toks */
    size_t n = 0, cap = 0, i = 0, bad;
    int rc = 0;

    if (!wfh_expr_utf8_valid(src, len, &bad)) {
        err->kind = WFH_EXPR_ERR_LEXING;
        err->offset = bad;
        snprintf(err->message, sizeof err->message, "Invalid UTF-8 at byte %zu of the expression",
                 bad + 1);
        rc = wfh_error_set(WFH_EPARSE, "expression: %s", err->message);
        goto done;
    }
    for (;;) {
        while (i < len && is_space(src[i]))
            i++;
        if (n + 1 >= cap) {
            size_t ncap = cap ? cap * 2 : 16;
            wfh_tok *nt = realloc(t, ncap * sizeof *nt);
            if (!nt) {
                err->kind = WFH_EXPR_ERR_PARSING;
                err->offset = i;
                snprintf(err->message, sizeof err->message, "out of memory");
                rc = wfh_error_set(WFH_ENOMEM, "expression: out of memory");
                goto done;
            }
            t = nt;
            cap = ncap;
        }
        wfh_tok *k = &t[n];
        const wfh_tok *last = n ? &t[n - 1] : NULL;
        memset(k, 0, sizeof *k);
        k->off = i;
        if (i >= len) {
            k->kind = T_EOF;
            n++;
            break;
        }
        char c = src[i];
        char c2 = i + 1 < len ? src[i + 1] : '\0';
        size_t start = i;
        switch (c) {
        case '[': k->kind = T_LBRACK; i++; break;
        case ']': k->kind = T_RBRACK; i++; break;
        case '(': k->kind = T_LPAREN; i++; break;
        case ')': k->kind = T_RPAREN; i++; break;
        case ',': k->kind = T_COMMA; i++; break;
        case '*': k->kind = T_STAR; i++; break;
        case '?': k->kind = T_QUESTION; i++; break;
        case ':': k->kind = T_COLON; i++; break;
        case '!': k->kind = c2 == '=' ? T_NE : T_NOT; i += c2 == '=' ? 2 : 1; break;
        case '>': k->kind = c2 == '=' ? T_GE : T_GT; i += c2 == '=' ? 2 : 1; break;
        case '<': k->kind = c2 == '=' ? T_LE : T_LT; i += c2 == '=' ? 2 : 1; break;
        case '=':
        case '&':
        case '|':
            if (c2 == c) {
                k->kind = c == '=' ? T_EQ : c == '&' ? T_AND : T_OR;
                i += 2;
                break;
            }
            i++;
            while (i < len && !is_boundary(src[i]))
                i++;
            rc = lex_fail(src, len, start, i - start, err);
            goto done;
        case '\'': {
            size_t j = i + 1;
            for (;;) {
                if (j >= len) {
                    rc = lex_fail(src, len, start, len - start, err);
                    goto done;
                }
                if (src[j] == '\'') {
                    if (j + 1 < len && src[j + 1] == '\'') {
                        j += 2;
                        continue;
                    }
                    break;
                }
                j++;
            }
            k->kind = T_STRING;
            i = j + 1;
            break;
        }
        default:
            if ((c == '.' && operand_position(last)) || c == '-' || c == '+' ||
                (c >= '0' && c <= '9')) {
                i++;
                while (i < len && (!is_boundary(src[i]) || src[i] == '.'))
                    i++;
                k->num = wfh_expr_str_to_number(src + start, i - start);
                if (isnan(k->num)) {
                    rc = lex_fail(src, len, start, i - start, err);
                    goto done;
                }
                k->kind = T_NUMBER;
            } else if (c == '.') {
                k->kind = T_DOT;
                i++;
            } else {
                i++;
                while (i < len && !is_boundary(src[i]))
                    i++;
                const char *w = src + start;
                size_t wl = i - start;
                if (!legal_keyword(w, wl)) {
                    rc = lex_fail(src, len, start, wl, err);
                    goto done;
                }
                if (last && last->kind == T_DOT) {
                    k->kind = T_PROP;
                } else if (wl == 4 && memcmp(w, "true", 4) == 0) {
                    k->kind = T_TRUE;
                } else if (wl == 5 && memcmp(w, "false", 5) == 0) {
                    k->kind = T_FALSE;
                } else if (wl == 4 && memcmp(w, "null", 4) == 0) {
                    k->kind = T_NULL;
                } else if (wl == 3 && memcmp(w, "NaN", 3) == 0) {
                    k->kind = T_NAN;
                } else if (wl == 8 && memcmp(w, "Infinity", 8) == 0) {
                    k->kind = T_INF;
                } else {
                    size_t j = i;
                    while (j < len && is_space(src[j]))
                        j++;
                    k->kind = j < len && src[j] == '(' ? T_FUNC : T_NAMED;
                }
            }
            break;
        }
        k->len = i - start;
        n++;
    }
    *toks = t;
    *ntoks = n;
    t = NULL;
done:
    free(t);
    return rc;
}
