/*
 * plugins/common/netutil.c - what the http and llm plugins share (see netutil.h):
 * bounded buffers, inputs and the sandbox grant, the check that refuses a target the
 * step may not reach before anything is sent, one libcurl set-up, and the failure
 * classes the host's retry policy acts on. Compiled into each plugin.
 */
#include "netutil.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

int wfh_buf_append(wfh_buf *b, const void *p, size_t n)
{
    int err = 0;
    if (b->limit && b->len + n > b->limit) {
        n = b->limit - b->len;
        b->over = 1;
        err = -1;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *d = realloc(b->data, cap); /* owned by b */
        if (!d)
            return -1;
        b->data = d;
        b->cap = cap;
    }
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return err;
}

void wfh_buf_clear(wfh_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->over = 0;
}

int wfh_net_utf8_valid(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t need;
        unsigned min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            need = 1, min = 0x80, c &= 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            need = 2, min = 0x800, c &= 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            need = 3, min = 0x10000, c &= 0x07;
        } else {
            return 0;
        }
        for (size_t k = 1; k <= need; k++) {
            if (i + k >= n || (s[i + k] & 0xC0) != 0x80)
                return 0;
            c = (c << 6) | (s[i + k] & 0x3F);
        }
        if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
            return 0;
        i += need + 1;
    }
    return 1;
}

/* Does allow-list entry @p pat (host, host:port, *.domain[:port], [v6][:port]) admit
 * @p host / @p port? */
static int entry_matches(const char *pat, const char *host, long port)
{
    char h[256];
    long p = -1;
    const char *colon;
    if (pat[0] == '[') {
        const char *end = strchr(pat, ']');
        if (!end || (size_t)(end - pat - 1) >= sizeof h)
            return 0;
        memcpy(h, pat + 1, (size_t)(end - pat - 1));
        h[end - pat - 1] = '\0';
        colon = end[1] == ':' ? end + 1 : NULL;
    } else {
        colon = strrchr(pat, ':');
        size_t hl = colon ? (size_t)(colon - pat) : strlen(pat);
        if (hl >= sizeof h)
            return 0;
        memcpy(h, pat, hl);
        h[hl] = '\0';
    }
    if (colon) {
        char *end;
        p = strtol(colon + 1, &end, 10);
        if (*end || p <= 0 || p > 65535)
            return 0;
    }
    if (p != -1 && p != port)
        return 0;
    if (h[0] == '*' && h[1] == '.') {
        size_t hl = strlen(host), sl = strlen(h + 1);
        return hl > sl && strcasecmp(host + hl - sl, h + 1) == 0;
    }
    return strcasecmp(h, host) == 0;
}

/* Does @p g's entry @p e cover @p host : @p port? The policy's rules (core/policy.c):
 * "*" covers everything, "host" every port of host, "host:port" itself; IPv6 hosts
 * are written in brackets. */
static int grant_entry_matches(const char *e, const char *host, long port)
{
    return strcmp(e, "*") == 0 || entry_matches(e, host, port);
}

void wfh_net_grant_clear(wfh_net_grant *g)
{
    json_decref(g->list);
    g->list = NULL;
}

/* Reads "net" from the grant the host passed, if it passed one. */
static int grant_load(const wfh_step_request *req, wfh_net_grant *g, char *err, size_t errlen)
{
    g->all = 0;
    g->list = NULL;
    if (!WFH_REQUEST_HAS(req, grant_json)) {
        /* A 1.0 host gives no grant: the sandbox is all there is, as before. */
        g->all = 1;
        return 0;
    }
    json_t *grant = json_loadb(req->grant_json, req->grant_len, 0, NULL); /* owned */
    const json_t *net = json_object_get(grant, "net");
    int rc = 0;
    if (!json_is_object(grant)) {
        snprintf(err, errlen, "the host's sandbox grant is not a JSON object");
        rc = -1;
    } else if (json_is_true(net)) {
        g->all = 1;
    } else if (!net || json_is_false(net) || json_is_null(net)) {
        g->list = json_array();
    } else if (json_is_array(net)) {
        size_t i;
        json_t *e;
        json_array_foreach(net, i, e) {
            if (!json_is_string(e)) {
                snprintf(err, errlen, "the host's sandbox grant has a \"net\" entry that is "
                         "not a string");
                rc = -1;
            }
        }
        g->list = json_incref((json_t *)net);
    } else {
        snprintf(err, errlen, "the host's sandbox grant has a \"net\" that is not true, "
                 "false or a list");
        rc = -1;
    }
    if (rc == 0 && !g->all && !g->list) {
        snprintf(err, errlen, "out of memory");
        rc = -1;
    }
    json_decref(grant);
    return rc;
}

int wfh_net_open_request(const wfh_step_request *req, const char *const *known,
                         json_t **in, const json_t **allow, wfh_net_grant *g, char *err,
                         size_t errlen)
{
    json_error_t jerr;
    *allow = NULL;
    *in = json_loadb(req->inputs_json, req->inputs_len, 0, &jerr);
    if (!json_is_object(*in)) {
        if (*in)
            snprintf(err, errlen, "inputs are not a JSON object");
        else
            snprintf(err, errlen, "inputs are not a JSON object (%s)", jerr.text);
        return -1;
    }
    const char *key;
    json_t *v;
    json_object_foreach(*in, key, v) {
        int ok = 0;
        for (size_t i = 0; known[i] && !ok; i++)
            ok = strcmp(known[i], key) == 0;
        if (!ok) {
            snprintf(err, errlen, "unknown input '%.100s'", key);
            return -1;
        }
    }
    if ((v = json_object_get(*in, "allow"))) {
        size_t i;
        json_t *e;
        int ok = json_is_array(v);
        json_array_foreach(v, i, e) {
            ok &= json_is_string(e) && *json_string_value(e);
        }
        if (!ok) {
            snprintf(err, errlen, "input 'allow' must be a list of host or host:port");
            return -1;
        }
        *allow = v;
    }
    return grant_load(req, g, err, errlen);
}

/* The grant's entries joined with ", " into @p out ("none" when empty). */
static void grant_text(const wfh_net_grant *g, char *out, size_t outlen)
{
    size_t o = 0, i;
    json_t *e;
    out[0] = '\0';
    json_array_foreach(g->list, i, e) {
        int n = snprintf(out + o, outlen - o, "%s%s", i ? ", " : "", json_string_value(e));
        if (n < 0 || (size_t)n >= outlen - o) {
            if (outlen > 4)
                snprintf(out + outlen - 4, 4, "...");
            return;
        }
        o += (size_t)n;
    }
    if (!o)
        snprintf(out, outlen, "none");
}

int wfh_net_check_url(const char *url, const json_t *allow, const wfh_net_grant *g, char *err,
                      size_t errlen)
{
    int rc = -1;
    CURLU *u = curl_url(); /* owned */
    char *scheme = NULL, *host = NULL, *port = NULL; /* owned by curl */
    if (!u) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    CURLUcode uc = curl_url_set(u, CURLUPART_URL, url, 0);
    if (uc != CURLUE_OK) {
        /* Not echoed: a URL may carry a password, and this one cannot be redacted. */
        snprintf(err, errlen, "not a valid URL: %s", curl_url_strerror(uc));
        goto done;
    }
    if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0)) {
        snprintf(err, errlen, "url scheme '%.20s': only http and https are allowed",
                 scheme ? scheme : "");
        goto done;
    }
    if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
        snprintf(err, errlen, "url has no host");
        goto done;
    }
    /* curl keeps IPv6 literals in brackets; the lists name them without. */
    char *hostname = host;
    size_t hl = strlen(host);
    if (hl > 2 && host[0] == '[' && host[hl - 1] == ']') {
        host[hl - 1] = '\0';
        hostname = host + 1;
    }
    long portnum = strtol(port, NULL, 10);
    char target[300];
    snprintf(target, sizeof target, "%s%s%s:%ld", hostname == host ? "" : "[", hostname,
             hostname == host ? "" : "]", portnum);
    if (allow) {
        int ok = 0;
        size_t i;
        json_t *v;
        json_array_foreach(allow, i, v) {
            if (json_is_string(v) && entry_matches(json_string_value(v), hostname, portnum))
                ok = 1;
        }
        if (!ok) {
            snprintf(err, errlen, "%s is not in the step's allow list", target);
            goto done;
        }
    }
    if (!g->all) {
        int ok = 0;
        size_t i;
        json_t *v;
        json_array_foreach(g->list, i, v) {
            if (grant_entry_matches(json_string_value(v), hostname, portnum))
                ok = 1;
        }
        if (!ok) {
            char list[256];
            grant_text(g, list, sizeof list);
            snprintf(err, errlen, "%s is not in this step's network grant (%s); add 'allow %s "
                     "--allow-net=%s' to the policy or pass --allow-net=%s", target, list,
                     g->plugin ? g->plugin : "TYPE", target, target);
            goto done;
        }
    }
    rc = 0;
done:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return rc;
}

void wfh_net_redact_url(const char *url, char *out, size_t outlen)
{
    CURLU *u = curl_url(); /* owned */
    char *clean = NULL;    /* owned by curl */
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_set(u, CURLUPART_USER, NULL, 0) == CURLUE_OK &&
        curl_url_set(u, CURLUPART_PASSWORD, NULL, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_URL, &clean, 0) == CURLUE_OK)
        snprintf(out, outlen, "%s", clean);
    else
        snprintf(out, outlen, "(url)");
    curl_free(clean);
    curl_url_cleanup(u);
}

int wfh_net_curl_class(CURLcode rc)
{
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
        return WFH_STEP_TIMEOUT;
    case CURLE_ABORTED_BY_CALLBACK:
        return WFH_STEP_CANCELLED;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        return WFH_STEP_INVALID_INPUT;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_TOO_MANY_REDIRECTS:
        /* A certificate that does not verify will not verify on the next try either. */
        return WFH_STEP_PERMANENT;
    default:
        /* DNS, refused, reset, partial bodies, TLS handshakes cut short: passing. */
        return WFH_STEP_TRANSIENT;
    }
}

int wfh_net_status_class(long status)
{
    if (status == 408 || status == 425 || status == 429 || (status >= 500 && status <= 599))
        return WFH_STEP_TRANSIENT;
    return WFH_STEP_PERMANENT;
}

uint64_t wfh_net_retry_after_ms(CURL *curl)
{
    curl_off_t secs = 0;
    if (curl_easy_getinfo(curl, CURLINFO_RETRY_AFTER, &secs) != CURLE_OK || secs <= 0)
        return 0;
    /* A server asking for more than a day is not worth obeying literally. */
    if (secs > 86400)
        secs = 86400;
    return (uint64_t)secs * 1000u;
}

void wfh_net_errorf(const wfh_host_api *host, wfh_call *call, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* One line, and valid UTF-8: the host carries it in JSON. A server's body quoted in
     * the message, or the cut at the buffer's end, may break either. */
    int utf8 = wfh_net_utf8_valid(msg, strlen(msg));
    for (char *p = msg; *p; p++)
        if (*p == '\n' || *p == '\r' || *p == '\t' || (!utf8 && (unsigned char)*p >= 0x80))
            *p = (!utf8 && (unsigned char)*p >= 0x80) ? '?' : ' ';
    host->set_error(call, msg, strlen(msg));
}

int wfh_net_workspace_path(const char *workspace, const char *path, char *out, size_t outlen)
{
    int n = path[0] == '/' || !workspace || !*workspace
                ? snprintf(out, outlen, "%s", path)
                : snprintf(out, outlen, "%s/%s", workspace, path);
    return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

uint64_t wfh_net_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int wfh_net_set_output(const wfh_host_api *host, wfh_call *call, const char *name,
                       const json_t *value)
{
    char *text = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(17));
    if (!text)
        return -1;
    int32_t rc = host->set_output(call, name, text, strlen(text));
    free(text);
    return rc == 0 ? 0 : -1;
}

int wfh_net_get_uint(const json_t *in, const char *key, uint64_t max, uint64_t *out,
                     char *err, size_t errlen)
{
    const json_t *v = json_object_get(in, key);
    if (!v)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0 ||
        (uint64_t)json_integer_value(v) > max) {
        snprintf(err, errlen, "input '%s' must be an integer between 0 and %llu", key,
                 (unsigned long long)max);
        return -1;
    }
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

void wfh_net_setup(CURL *curl, const wfh_net_xfer *x)
{
    curl_easy_setopt(curl, CURLOPT_URL, x->url);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, x->headers);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, x->user_agent);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)(x->connect_ms < x->left_ms ? x->connect_ms : x->left_ms));
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)x->left_ms);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, x->verify_tls ? 1L : 0L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, x->verify_tls ? 2L : 0L);
    if (x->ca_file && x->ca_file[0])
        curl_easy_setopt(curl, CURLOPT_CAINFO, x->ca_file);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, x->on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, x->ud);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, x->on_progress);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, x->ud);
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
}

int wfh_net_no_expect(struct curl_slist **hdrs)
{
    /* Python, nginx and most servers answer a body without needing 100-continue. */
    struct curl_slist *t = curl_slist_append(*hdrs, "Expect:");
    if (!t)
        return -1;
    *hdrs = t;
    return 0;
}

void wfh_net_snippet(const char *data, size_t len, char *out, size_t outlen)
{
    size_t n = 0;
    for (size_t i = 0; i < len && n + 1 < outlen && n < 200; i++) {
        unsigned char ch = (unsigned char)data[i];
        out[n++] = (ch < 0x20 || ch == 0x7f) ? ' ' : (char)ch;
    }
    if (outlen)
        out[n] = '\0';
}

int wfh_net_read_limits(const wfh_step_request *req, const json_t *in, uint64_t max_bytes_cap,
                        wfh_net_limits *l, char *err, size_t errlen)
{
    if (wfh_net_get_uint(in, "timeout_ms", 86400000u, &l->timeout_ms, err, errlen) ||
        wfh_net_get_uint(in, "connect_timeout_ms", 86400000u, &l->connect_ms, err, errlen) ||
        wfh_net_get_uint(in, "max_response_bytes", max_bytes_cap, &l->max_bytes, err, errlen))
        return -1;
    if (l->timeout_ms == 0 || l->connect_ms == 0 || l->max_bytes == 0) {
        snprintf(err, errlen, "timeouts and max_response_bytes must be at least 1");
        return -1;
    }
    const json_t *v = json_object_get(in, "ca_file");
    l->ca_file[0] = '\0';
    if (v && (!json_is_string(v) || !*json_string_value(v))) {
        snprintf(err, errlen, "input 'ca_file' must be a path");
        return -1;
    }
    if (v && wfh_net_workspace_path(req->workspace, json_string_value(v), l->ca_file,
                                    sizeof l->ca_file) < 0) {
        snprintf(err, errlen, "input 'ca_file' is too long");
        return -1;
    }
    return 0;
}
