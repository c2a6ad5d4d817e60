/*
 * core/secrets.c - secret values and the masking of them (see secrets.h).
 *
 * Every value expands once, when it is added, into the byte strings that may carry it
 * out: the value itself, its JSON-escaped forms, its URL-encoded forms and its base64
 * (standard and URL alphabets) at each of the three alignments it can have inside a
 * longer base64 text (only the characters that depend on the value alone). Masking is
 * then a scan that tries the patterns, longest first, at each byte.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "secrets.h"

typedef struct pattern {
    char *s; /* owned */
    size_t len;
} pattern;

struct wfh_secrets {
    json_t *values;   /* owned: NAME -> value */
    pattern *pats;    /* owned, longest first */
    size_t n, cap;
};

static int pat_add(wfh_secrets *s, const char *p, size_t len)
{
    if (len < WFH_SECRET_MIN_LEN)
        return 0; /* too short to mask without hiding ordinary text */
    for (size_t i = 0; i < s->n; i++)
        if (s->pats[i].len == len && !memcmp(s->pats[i].s, p, len))
            return 0;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        pattern *np = realloc(s->pats, cap * sizeof *np);
        if (!np)
            return WFH_ENOMEM;
        s->pats = np;
        s->cap = cap;
    }
    char *c = malloc(len + 1);
    if (!c)
        return WFH_ENOMEM;
    memcpy(c, p, len);
    c[len] = '\0';
    /* insertion keeps longest first, so a longer form wins over a shorter one inside it */
    size_t at = s->n;
    while (at > 0 && s->pats[at - 1].len < len) {
        s->pats[at] = s->pats[at - 1];
        at--;
    }
    s->pats[at] = (pattern){c, len};
    s->n++;
    return 0;
}

static const char b64_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* The base64 characters that depend only on @p v when it sits @p k bytes into a group. */
static int add_base64(wfh_secrets *s, const char *v, size_t n, size_t k, const char *alpha)
{
    size_t total = k + n;
    unsigned char *buf = calloc(total + 3, 1); /* owned */
    char *out = malloc((total + 2) / 3 * 4 + 1); /* owned */
    int err = 0;
    if (!buf || !out) {
        err = WFH_ENOMEM;
        goto done;
    }
    memcpy(buf + k, v, n);
    size_t o = 0;
    for (size_t i = 0; i < total; i += 3) {
        unsigned x = (unsigned)buf[i] << 16 | (unsigned)buf[i + 1] << 8 | buf[i + 2];
        out[o++] = alpha[(x >> 18) & 63];
        out[o++] = alpha[(x >> 12) & 63];
        out[o++] = alpha[(x >> 6) & 63];
        out[o++] = alpha[x & 63];
    }
    size_t first = (8 * k + 5) / 6;  /* first character with no bit of the prefix */
    size_t last = (8 * total) / 6;   /* characters [first, last) hold value bits only */
    if (last > first)
        err = pat_add(s, out + first, last - first);
done:
    free(buf);
    free(out);
    return err;
}

static int add_url(wfh_secrets *s, const char *v, size_t n, int plus_for_space)
{
    char *out = malloc(n * 3 + 1); /* owned */
    if (!out)
        return WFH_ENOMEM;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            out[o++] = (char)c;
        } else if (c == ' ' && plus_for_space) {
            out[o++] = '+';
        } else {
            out[o++] = '%';
            out[o++] = "0123456789ABCDEF"[c >> 4];
            out[o++] = "0123456789ABCDEF"[c & 15];
        }
    }
    int err = pat_add(s, out, o);
    free(out);
    return err;
}

static int add_json(wfh_secrets *s, json_t *str, size_t flags)
{
    char *d = json_dumps(str, JSON_ENCODE_ANY | flags); /* owned */
    if (!d)
        return WFH_ENOMEM;
    size_t len = strlen(d);
    int err = len >= 2 ? pat_add(s, d + 1, len - 2) : 0; /* without the quotes */
    /* \u escapes come in either case (jansson writes \u00E4, Python \u00e4) */
    int changed = 0;
    for (size_t i = 0; i + 5 < len; i++)
        if (d[i] == '\\' && d[i + 1] == 'u')
            for (size_t k = i + 2; k < i + 6; k++)
                if (d[k] >= 'A' && d[k] <= 'F') {
                    d[k] = (char)(d[k] - 'A' + 'a');
                    changed = 1;
                }
    if (!err && changed)
        err = pat_add(s, d + 1, len - 2);
    free(d);
    return err;
}

int wfh_secrets_add(wfh_secrets *s, const char *name, const char *value)
{
    size_t n = strlen(value);
    if (n < WFH_SECRET_MIN_LEN)
        return wfh_error_set(WFH_EINVAL,
                             "secret %s: a value shorter than %d characters would mask "
                             "ordinary text; refused",
                             name, WFH_SECRET_MIN_LEN);
    json_t *str = json_string(value); /* owned */
    if (!str)
        return wfh_error_set(WFH_EINVAL, "secret %s: the value is not valid UTF-8 text", name);
    int err = json_object_set(s->values, name, str) < 0 ? WFH_ENOMEM : 0;
    if (!err)
        err = pat_add(s, value, n);
    if (!err)
        err = add_json(s, str, 0);
    if (!err)
        err = add_json(s, str, JSON_ENSURE_ASCII);
    if (!err)
        err = add_json(s, str, JSON_ESCAPE_SLASH);
    if (!err)
        err = add_json(s, str, JSON_ENSURE_ASCII | JSON_ESCAPE_SLASH);
    for (size_t k = 0; k < 3 && !err; k++) {
        err = add_base64(s, value, n, k, b64_std);
        if (!err)
            err = add_base64(s, value, n, k, b64_url);
    }
    if (!err)
        err = add_url(s, value, n, 0);
    if (!err)
        err = add_url(s, value, n, 1);
    json_decref(str);
    if (err < 0)
        return wfh_error_set(WFH_ENOMEM, "secret %s: out of memory", name);
    return 0;
}

static wfh_secrets *secrets_new(void)
{
    wfh_secrets *s = calloc(1, sizeof *s);
    if (s && !(s->values = json_object())) {
        free(s);
        return NULL;
    }
    return s;
}

void wfh_secrets_free(wfh_secrets *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++) {
        /* do not leave the values in freed memory */
        memset(s->pats[i].s, 0, s->pats[i].len);
        free(s->pats[i].s);
    }
    free(s->pats);
    json_decref(s->values);
    free(s);
}

static int declared(const wfh_workflow *wf, const char *name)
{
    for (size_t i = 0; i < wf->n_secrets; i++)
        if (!strcmp(wf->secrets[i], name))
            return 1;
    return 0;
}

/* NAME=value lines; blank lines and # comments skipped. Values are taken verbatim. */
static int read_file(const wfh_workflow *wf, wfh_secrets *s, const char *file)
{
    int err = 0;
    char *buf = NULL; /* owned */
    int fd = open(file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return wfh_error_set(errno == ENOENT ? WFH_ENOTFOUND : WFH_EIO, "--secrets-file %s: %s",
                             file, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        err = wfh_error_set(WFH_EINVAL, "--secrets-file %s: not a regular file", file);
        goto done;
    }
    if (st.st_mode & 077) {
        err = wfh_error_set(WFH_ESECURITY,
                            "--secrets-file %s: mode %04o lets others read it; refused "
                            "(chmod 600 %s)",
                            file, (unsigned)(st.st_mode & 07777), file);
        goto done;
    }
    if (st.st_size > 1024 * 1024) {
        err = wfh_error_set(WFH_EINVAL, "--secrets-file %s: larger than 1 MiB", file);
        goto done;
    }
    buf = calloc((size_t)st.st_size + 1, 1);
    if (!buf) {
        err = wfh_error_set(WFH_ENOMEM, "--secrets-file %s: out of memory", file);
        goto done;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    buf[got] = '\0';
    unsigned lineno = 0;
    for (char *line = buf, *next; line && *line; line = next) {
        lineno++;
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        size_t l = strlen(line);
        if (l && line[l - 1] == '\r')
            line[--l] = '\0';
        if (!*line || *line == '#')
            continue;
        char *eq = strchr(line, '=');
        if (!eq || eq == line) {
            /* never print the line: it may be a value */
            err = wfh_error_set(WFH_EINVAL, "--secrets-file %s:%u: expected NAME=value", file,
                                lineno);
            goto done;
        }
        *eq = '\0';
        if (!declared(wf, line))
            continue; /* a shared file may hold other workflows' secrets */
        if ((err = wfh_secrets_add(s, line, eq + 1)) < 0)
            goto done;
    }
done:
    if (buf) {
        memset(buf, 0, (size_t)st.st_size);
        free(buf);
    }
    close(fd);
    return err;
}

int wfh_secrets_load(const wfh_workflow *wf, const char *file, wfh_secrets **out)
{
    int err = 0;
    wfh_secrets *s = secrets_new(); /* owned until *out */
    *out = NULL;
    if (!s)
        return wfh_error_set(WFH_ENOMEM, "secrets: out of memory");
    for (size_t i = 0; i < wf->n_secrets; i++) {
        char var[300];
        snprintf(var, sizeof var, "WFH_SECRET_%s", wf->secrets[i]);
        const char *v = getenv(var);
        if (v && (err = wfh_secrets_add(s, wf->secrets[i], v)) < 0)
            goto done;
    }
    if (file && (err = read_file(wf, s, file)) < 0)
        goto done;
    for (size_t i = 0; i < wf->n_secrets; i++)
        if (!json_object_get(s->values, wf->secrets[i])) {
            err = wfh_error_set(WFH_EINVAL,
                                "%s:%u:%u: secret %s has no value: set WFH_SECRET_%s or put "
                                "%s=... in a --secrets-file",
                                wf->path, wf->secrets_line, wf->secrets_col, wf->secrets[i],
                                wf->secrets[i], wf->secrets[i]);
            goto done;
        }
done:
    if (err < 0) {
        wfh_secrets_free(s);
        return err;
    }
    *out = s;
    return 0;
}

json_t *wfh_secrets_context(const wfh_secrets *s)
{
    return s ? json_copy(s->values) : json_object();
}

size_t wfh_secrets_count(const wfh_secrets *s)
{
    return s ? json_object_size(s->values) : 0;
}

char *wfh_secrets_mask(const wfh_secrets *s, const char *text, size_t len, size_t *outlen)
{
    size_t cap = len + 1, o = 0;
    char *out = malloc(cap); /* owned until returned */
    if (!out)
        return NULL;
    for (size_t i = 0; i < len;) {
        size_t hit = 0;
        for (size_t p = 0; s && p < s->n; p++) {
            const pattern *pt = &s->pats[p];
            if (pt->len <= len - i && text[i] == pt->s[0] && !memcmp(text + i, pt->s, pt->len)) {
                hit = pt->len;
                break;
            }
        }
        size_t need = hit ? sizeof WFH_SECRET_MASK - 1 : 1;
        if (o + need + 1 > cap) {
            cap = cap * 2 + need;
            char *n = realloc(out, cap);
            if (!n) {
                free(out);
                return NULL;
            }
            out = n;
        }
        if (hit) {
            memcpy(out + o, WFH_SECRET_MASK, sizeof WFH_SECRET_MASK - 1);
            o += sizeof WFH_SECRET_MASK - 1;
            i += hit;
        } else {
            out[o++] = text[i++];
        }
    }
    out[o] = '\0';
    if (outlen)
        *outlen = o;
    return out;
}

json_t *wfh_secrets_mask_json(const wfh_secrets *s, json_t *v)
{
    if (!v)
        return NULL;
    if (!s || s->n == 0)
        return json_incref(v);
    if (json_is_string(v)) {
        size_t ol;
        char *m = wfh_secrets_mask(s, json_string_value(v), json_string_length(v), &ol);
        if (!m)
            return NULL;
        json_t *r = json_stringn(m, ol);
        free(m);
        return r;
    }
    if (json_is_array(v)) {
        json_t *r = json_array();
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) {
            if (!r || json_array_append_new(r, wfh_secrets_mask_json(s, x)) < 0) {
                json_decref(r);
                return NULL;
            }
        }
        return r;
    }
    if (json_is_object(v)) {
        json_t *r = json_object();
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x) {
            char *mk = wfh_secrets_mask(s, k, strlen(k), NULL);
            if (!r || !mk || json_object_set_new(r, mk, wfh_secrets_mask_json(s, x)) < 0) {
                free(mk);
                json_decref(r);
                return NULL;
            }
            free(mk);
        }
        return r;
    }
    return json_incref(v);
}
