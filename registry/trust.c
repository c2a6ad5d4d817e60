/*
 * registry/trust.c - keys.txt and state.txt (see trust.h). Both are line-oriented
 * key=value text: unknown keys, repeated scalars and malformed values are errors, with
 * the line number, because a silently ignored line in a trust file is a hole.
 */
#include "trust.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"

static int parse_u64(const char *s, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    if (n == 0 || n > 19 || (s[0] == '0' && n > 1))
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return 0;
}

static int label_ok(const char *s, size_t n)
{
    if (n == 0 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.' || c == '@'))
            return 0;
    }
    return 1;
}

/* "BASE64 [label]" into @p k. */
static int parse_key_value(const char *v, size_t n, const char *what, unsigned line,
                           wfh_trust_key *k)
{
    const char *sp = memchr(v, ' ', n);
    size_t klen = sp ? (size_t)(sp - v) : n;
    memset(k, 0, sizeof *k);
    if (wfh_ms_pubkey_parse(v, klen, what, &k->pk) < 0)
        return wfh_error_set(WFH_EPARSE, "%s:%u: not a minisign public key (the base64 line "
                             "of a .pub file)", what, line);
    if (sp) {
        size_t llen = n - klen - 1;
        if (!label_ok(sp + 1, llen))
            return wfh_error_set(WFH_EPARSE, "%s:%u: key label must be 1-64 of [A-Za-z0-9_.@-]",
                                 what, line);
        memcpy(k->label, sp + 1, llen);
    } else {
        wfh_ms_keyid_hex(k->pk.keyid, k->label);
    }
    return 0;
}

int wfh_trust_parse(const char *text, size_t len, const char *what, wfh_trust *out)
{
    int seen_format = 0, seen_version = 0, seen_threshold = 0, seen_reset = 0;
    unsigned line = 0;
    size_t i = 0;
    memset(out, 0, sizeof *out);
    if (memchr(text, '\0', len))
        return wfh_error_set(WFH_EPARSE, "%s: contains a NUL byte", what);
    while (i < len) {
        const char *s = text + i;
        const char *nl = memchr(s, '\n', len - i);
        size_t n = nl ? (size_t)(nl - s) : len - i;
        i += n + (nl ? 1 : 0);
        line++;
        while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
            n--;
        if (n == 0 || s[0] == '#')
            continue;
        const char *eq = memchr(s, '=', n);
        if (!eq)
            return wfh_error_set(WFH_EPARSE, "%s:%u: expected key=value", what, line);
        size_t kn = (size_t)(eq - s);
        const char *v = eq + 1;
        size_t vn = n - kn - 1;
        uint64_t u;
#define KEY_IS(lit) (kn == strlen(lit) && !memcmp(s, lit, kn))
        if (KEY_IS("format")) {
            if (seen_format++ || parse_u64(v, vn, &u) < 0 || u != 1)
                return wfh_error_set(WFH_EPARSE, "%s:%u: format must be 1, once", what, line);
        } else if (KEY_IS("version")) {
            if (seen_version++ || parse_u64(v, vn, &u) < 0 || u == 0 || u > (uint64_t)INT64_MAX)
                return wfh_error_set(WFH_EPARSE, "%s:%u: version must be a positive integer, "
                                     "once", what, line);
            out->version = u;
        } else if (KEY_IS("threshold")) {
            if (seen_threshold++ || parse_u64(v, vn, &u) < 0 || u == 0 || u > 16)
                return wfh_error_set(WFH_EPARSE, "%s:%u: threshold must be 1..16, once", what,
                                     line);
            out->threshold = (unsigned)u;
        } else if (KEY_IS("reset_index_seq")) {
            if (seen_reset++ || parse_u64(v, vn, &u) < 0 || u > (uint64_t)INT64_MAX)
                return wfh_error_set(WFH_EPARSE, "%s:%u: reset_index_seq must be an integer, "
                                     "once", what, line);
            out->reset_index_seq = u;
        } else if (KEY_IS("key") || KEY_IS("revoked")) {
            int revoked = KEY_IS("revoked");
            wfh_trust_key *arr = revoked ? out->revoked : out->keys;
            size_t *cnt = revoked ? &out->n_revoked : &out->n_keys;
            if (*cnt == WFH_TRUST_MAX_KEYS)
                return wfh_error_set(WFH_EPARSE, "%s:%u: more than %d keys", what, line,
                                     WFH_TRUST_MAX_KEYS);
            int err = parse_key_value(v, vn, what, line, &arr[*cnt]);
            if (err < 0)
                return err;
            for (size_t j = 0; j < *cnt; j++)
                if (!memcmp(arr[j].pk.pk, arr[*cnt].pk.pk, 32) ||
                    !memcmp(arr[j].pk.keyid, arr[*cnt].pk.keyid, 8))
                    return wfh_error_set(WFH_EPARSE, "%s:%u: key listed twice (same key or key "
                                         "id)", what, line);
            (*cnt)++;
        } else {
            return wfh_error_set(WFH_EPARSE, "%s:%u: unknown key '%.*s'", what, line,
                                 (int)(kn > 40 ? 40 : kn), s);
        }
#undef KEY_IS
    }
    if (!seen_format || !seen_version || !seen_threshold)
        return wfh_error_set(WFH_EPARSE, "%s: format, version and threshold are required", what);
    size_t usable = 0;
    for (size_t k = 0; k < out->n_keys; k++)
        usable += !wfh_trust_is_revoked(out, &out->keys[k].pk);
    if (usable < out->threshold)
        return wfh_error_set(WFH_EPARSE, "%s: threshold %u but only %zu trusted, unrevoked "
                             "key(s)", what, out->threshold, usable);
    return 0;
}

int wfh_trust_is_revoked(const wfh_trust *t, const wfh_ms_pubkey *pk)
{
    for (size_t i = 0; i < t->n_revoked; i++)
        if (!memcmp(t->revoked[i].pk.pk, pk->pk, 32))
            return 1;
    return 0;
}

const wfh_trust_key *wfh_trust_find(const wfh_trust *t, const uint8_t keyid[8])
{
    for (size_t i = 0; i < t->n_keys; i++)
        if (!memcmp(t->keys[i].pk.keyid, keyid, 8))
            return &t->keys[i];
    return NULL;
}

char *wfh_trust_format(const wfh_trust *t)
{
    size_t cap = 512 + (t->n_keys + t->n_revoked) * 160;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    size_t n = (size_t)snprintf(s, cap,
                                "# wfhost trusted keys: see docs/registry.md. Bump version on "
                                "every change.\nformat=1\nversion=%llu\nthreshold=%u\n",
                                (unsigned long long)t->version, t->threshold);
    if (t->reset_index_seq)
        n += (size_t)snprintf(s + n, cap - n, "reset_index_seq=%llu\n",
                              (unsigned long long)t->reset_index_seq);
    for (int pass = 0; pass < 2; pass++) {
        const wfh_trust_key *arr = pass ? t->revoked : t->keys;
        size_t cnt = pass ? t->n_revoked : t->n_keys;
        for (size_t i = 0; i < cnt; i++) {
            char b64[57];
            wfh_ms_pubkey_b64(&arr[i].pk, b64);
            n += (size_t)snprintf(s + n, cap - n, "%s=%s %s\n", pass ? "revoked" : "key", b64,
                                  arr[i].label);
        }
    }
    return s;
}

int wfh_state_parse(const char *text, size_t len, const char *what, wfh_reg_state *out)
{
    int seen_seq = 0, seen_sha = 0, seen_kv = 0;
    unsigned line = 0;
    size_t i = 0;
    memset(out, 0, sizeof *out);
    if (memchr(text, '\0', len))
        return wfh_error_set(WFH_EPARSE, "%s: contains a NUL byte", what);
    while (i < len) {
        const char *s = text + i;
        const char *nl = memchr(s, '\n', len - i);
        size_t n = nl ? (size_t)(nl - s) : len - i;
        i += n + (nl ? 1 : 0);
        line++;
        if (n == 0 || s[0] == '#')
            continue;
        const char *eq = memchr(s, '=', n);
        if (!eq)
            return wfh_error_set(WFH_EPARSE, "%s:%u: expected key=value", what, line);
        size_t kn = (size_t)(eq - s), vn = n - kn - 1;
        const char *v = eq + 1;
        if (kn == 9 && !memcmp(s, "index_seq", 9) && !seen_seq++) {
            if (parse_u64(v, vn, &out->index_seq) < 0)
                return wfh_error_set(WFH_EPARSE, "%s:%u: bad index_seq", what, line);
        } else if (kn == 12 && !memcmp(s, "index_sha256", 12) && !seen_sha++) {
            if (vn != 64 || strspn(v, "0123456789abcdef") < 64)
                return wfh_error_set(WFH_EPARSE, "%s:%u: bad index_sha256", what, line);
            memcpy(out->index_sha256, v, 64);
            out->index_sha256[64] = '\0';
        } else if (kn == 12 && !memcmp(s, "keys_version", 12) && !seen_kv++) {
            if (parse_u64(v, vn, &out->keys_version) < 0)
                return wfh_error_set(WFH_EPARSE, "%s:%u: bad keys_version", what, line);
        } else {
            return wfh_error_set(WFH_EPARSE, "%s:%u: unknown or repeated key", what, line);
        }
    }
    return 0;
}

char *wfh_state_format(const wfh_reg_state *s)
{
    char *out = malloc(256);
    if (out)
        snprintf(out, 256,
                 "# wfhost registry state: the newest index seen. Do not edit.\n"
                 "index_seq=%llu\nindex_sha256=%s\nkeys_version=%llu\n",
                 (unsigned long long)s->index_seq,
                 s->index_sha256[0] ? s->index_sha256
                                    : "0000000000000000000000000000000000000000000000000000000000000000",
                 (unsigned long long)s->keys_version);
    return out;
}
