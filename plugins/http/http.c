/*
 * plugins/http/http.c - the `http` step type: one HTTP(S) request with libcurl.
 *
 * Inputs are checked here as well as by the host (a plugin must not trust that its
 * schema was applied), and an invalid input fails with WFH_STEP_INVALID_INPUT before any
 * byte goes on the wire. Redirects are followed by hand rather than by curl so that
 * every hop is checked against the allow list, credentials are dropped when the host
 * changes, and the hop count is ours. Failure classes follow what a retry would do:
 * connection errors, 408, 425, 429 and 5xx are transient (Retry-After is passed on as
 * the retry hint), other unexpected statuses permanent.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <jansson.h>

#include "netutil.h"
#include "wfhost/plugin.h"

#define HTTP_DEFAULT_TIMEOUT_MS 30000u
#define HTTP_DEFAULT_CONNECT_MS 10000u
/* 4 MiB: the body and its parsed `json` output must both fit in the attempt's output
 * budget (16 MiB in the runner), base64 of a binary body too. */
#define HTTP_DEFAULT_MAX_BYTES (4u * 1024u * 1024u)
#define HTTP_MAX_RANGES 32

static const char http_schema[] =
    "{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"url\"],"
    "\"properties\":{"
    "\"method\":{\"type\":\"string\",\"enum\":[\"GET\",\"HEAD\",\"POST\",\"PUT\",\"PATCH\","
    "\"DELETE\",\"OPTIONS\"],\"description\":\"HTTP method (default GET)\"},"
    "\"url\":{\"type\":\"string\",\"minLength\":1,\"description\":\"http:// or https:// URL\"},"
    "\"query\":{\"type\":\"object\",\"additionalProperties\":{\"type\":[\"string\",\"number\","
    "\"boolean\"]},\"description\":\"query parameters, URL-encoded and appended\"},"
    "\"headers\":{\"type\":\"object\",\"additionalProperties\":{\"type\":\"string\"}},"
    "\"body\":{\"type\":\"string\",\"description\":\"request body as text\"},"
    "\"json\":{\"description\":\"request body as JSON (sets Content-Type)\"},"
    "\"form\":{\"type\":\"object\",\"additionalProperties\":{\"type\":[\"string\",\"number\","
    "\"boolean\"]},\"description\":\"urlencoded form body\"},"
    "\"auth\":{\"type\":\"object\",\"additionalProperties\":false,\"properties\":{"
    "\"bearer\":{\"type\":\"string\"},"
    "\"basic\":{\"type\":\"object\",\"additionalProperties\":false,"
    "\"required\":[\"username\",\"password\"],\"properties\":{"
    "\"username\":{\"type\":\"string\"},\"password\":{\"type\":\"string\"}}}}},"
    "\"connect_timeout_ms\":{\"type\":\"integer\",\"minimum\":1},"
    "\"timeout_ms\":{\"type\":\"integer\",\"minimum\":1},"
    "\"follow_redirects\":{\"type\":\"boolean\"},"
    "\"max_redirects\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":50},"
    "\"verify_tls\":{\"type\":\"boolean\"},"
    "\"ca_file\":{\"type\":\"string\",\"minLength\":1},"
    "\"max_response_bytes\":{\"type\":\"integer\",\"minimum\":1},"
    "\"on_oversize\":{\"type\":\"string\",\"enum\":[\"fail\",\"truncate\"]},"
    "\"expect_status\":{\"type\":\"array\",\"items\":{\"type\":[\"integer\",\"string\"]}},"
    "\"idempotency_key\":{\"type\":\"boolean\"},"
    "\"allow\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}}"
    "}}";

static const char http_outputs[] =
    "{\"status\":\"final HTTP status code\","
    "\"headers\":\"response headers, lower-case names (repeats joined with ', ')\","
    "\"body\":\"response body (text, or base64 when not UTF-8)\","
    "\"body_encoding\":\"utf-8 or base64\","
    "\"truncated\":\"true when the body was cut at max_response_bytes\","
    "\"json\":\"the body parsed, when the response is JSON\","
    "\"elapsed_ms\":\"time for the whole exchange, redirects included\","
    "\"url\":\"the URL that answered, after redirects\"}";

static const char *const known_inputs[] = {
    "method", "url", "query", "headers", "body", "json", "form", "auth",
    "connect_timeout_ms", "timeout_ms", "follow_redirects", "max_redirects", "verify_tls",
    "ca_file", "max_response_bytes", "on_oversize", "expect_status", "idempotency_key",
    "allow", NULL};

typedef struct range {
    long lo, hi;
} range;

/* Everything one step attempt needs; lives on http_run's stack. */
typedef struct http_ctx {
    const wfh_host_api *host; /* borrowed for the call */
    wfh_call *call;           /* borrowed for the call */
    json_t *in;               /* owned: parsed inputs */
    char method[16];
    char *url;                /* owned: the current hop's URL */
    char shown[1024];         /* url without credentials: what messages and outputs say */
    char *orig_host;          /* owned: host of the first URL, for the auth rule */
    char *body;               /* owned: request body or NULL */
    size_t body_len;
    const char *content_type; /* static, or NULL when the user sets it / no body */
    char *authz;              /* owned: "Authorization: ..." header or NULL */
    char *idem;               /* owned: "Idempotency-Key: ..." header or NULL */
    wfh_net_limits lim;
    uint64_t max_redirects;
    int follow, verify, truncate;
    const json_t *allow;      /* borrowed from in */
    wfh_net_grant grant;      /* the sandbox's network grant (owned list) */
    range ranges[HTTP_MAX_RANGES];
    size_t nranges;
    /* response of the current hop */
    wfh_buf resp;
    json_t *headers;          /* owned: object name -> value */
    uint64_t last_progress_ms;
} http_ctx;

static void http_ctx_free(http_ctx *c)
{
    json_decref(c->in);
    wfh_net_grant_clear(&c->grant);
    free(c->url);
    free(c->orig_host);
    free(c->body);
    free(c->authz);
    free(c->idem);
    json_decref(c->headers);
    wfh_buf_clear(&c->resp);
}

/* ---- input checking ----------------------------------------------------------- */

static int fail_input(http_ctx *c, const char *msg)
{
    wfh_net_errorf(c->host, c->call, "http: %s", msg);
    return WFH_STEP_INVALID_INPUT;
}

/* Parses one expect_status entry: 200, "2xx", "200-299" or "404". */
static int parse_range(const json_t *v, range *r)
{
    if (json_is_integer(v)) {
        r->lo = r->hi = (long)json_integer_value(v);
        return r->lo >= 100 && r->lo <= 599 ? 0 : -1;
    }
    if (!json_is_string(v))
        return -1;
    const char *s = json_string_value(v);
    if (strlen(s) == 3 && s[0] >= '1' && s[0] <= '5' && tolower((unsigned char)s[1]) == 'x' &&
        tolower((unsigned char)s[2]) == 'x') {
        r->lo = (s[0] - '0') * 100;
        r->hi = r->lo + 99;
        return 0;
    }
    char *end;
    r->lo = strtol(s, &end, 10);
    if (end == s)
        return -1;
    if (*end == '-') {
        const char *p = end + 1;
        r->hi = strtol(p, &end, 10);
        if (end == p)
            return -1;
    } else {
        r->hi = r->lo;
    }
    if (*end || r->lo < 100 || r->hi > 599 || r->lo > r->hi)
        return -1;
    return 0;
}

/* "k=v&k2=v2" with both sides URL-encoded; values may be strings, numbers, booleans. */
static int encode_pairs(const json_t *obj, wfh_buf *out, char *err, size_t errlen,
                        const char *what)
{
    const char *k;
    json_t *v;
    CURL *esc = curl_easy_init(); /* owned: only for curl_easy_escape */
    if (!esc)
        return -1;
    int rc = 0;
    json_object_foreach((json_t *)obj, k, v) {
        char num[64];
        const char *val;
        if (json_is_string(v))
            val = json_string_value(v);
        else if (json_is_integer(v))
            snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v)), val = num;
        else if (json_is_real(v))
            snprintf(num, sizeof num, "%.17g", json_real_value(v)), val = num;
        else if (json_is_boolean(v))
            val = json_is_true(v) ? "true" : "false";
        else {
            snprintf(err, errlen, "input '%s.%s' must be a string, number or boolean", what, k);
            rc = -1;
            break;
        }
        char *ek = curl_easy_escape(esc, k, 0), *ev = curl_easy_escape(esc, val, 0); /* owned */
        if (!ek || !ev || (out->len && wfh_buf_append(out, "&", 1) < 0) ||
            wfh_buf_append(out, ek, strlen(ek)) < 0 || wfh_buf_append(out, "=", 1) < 0 ||
            wfh_buf_append(out, ev, strlen(ev)) < 0) {
            snprintf(err, errlen, "out of memory");
            rc = -1;
        }
        curl_free(ek);
        curl_free(ev);
        if (rc)
            break;
    }
    curl_easy_cleanup(esc);
    return rc;
}

static int has_crlf(const char *s)
{
    return strpbrk(s, "\r\n") != NULL;
}

static int base64_encode(const unsigned char *in, size_t n, wfh_buf *out)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char q[4];
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        q[0] = tbl[(v >> 18) & 63];
        q[1] = tbl[(v >> 12) & 63];
        q[2] = i + 1 < n ? tbl[(v >> 6) & 63] : '=';
        q[3] = i + 2 < n ? tbl[v & 63] : '=';
        if (wfh_buf_append(out, q, 4) < 0)
            return -1;
    }
    if (!out->data)
        return wfh_buf_append(out, "", 0);
    return 0;
}

/* Reads and checks every input; fills @p c. @return 0 or a wfh_step_status. */
static int http_parse_inputs(http_ctx *c, const wfh_step_request *req)
{
    char err[512];
    json_t *v;
    c->grant.plugin = "http";
    if (wfh_net_open_request(req, known_inputs, &c->in, &c->allow, &c->grant, err,
                             sizeof err) < 0)
        return fail_input(c, err);

    const json_t *url = json_object_get(c->in, "url");
    if (!json_is_string(url) || !*json_string_value(url))
        return fail_input(c, "input 'url' is required and must be a non-empty string");

    strcpy(c->method, "GET");
    const json_t *m = json_object_get(c->in, "method");
    if (m) {
        static const char *const methods[] = {"GET", "HEAD", "POST", "PUT", "PATCH",
                                              "DELETE", "OPTIONS", NULL};
        int ok = 0;
        for (size_t i = 0; json_is_string(m) && methods[i]; i++)
            ok |= strcmp(methods[i], json_string_value(m)) == 0;
        if (!ok)
            return fail_input(c, "input 'method' must be one of GET, HEAD, POST, PUT, PATCH, "
                                 "DELETE, OPTIONS");
        snprintf(c->method, sizeof c->method, "%s", json_string_value(m));
    }

    c->lim.timeout_ms = HTTP_DEFAULT_TIMEOUT_MS;
    c->lim.connect_ms = HTTP_DEFAULT_CONNECT_MS;
    c->lim.max_bytes = HTTP_DEFAULT_MAX_BYTES;
    c->max_redirects = 5;
    if (wfh_net_read_limits(req, c->in, (uint64_t)1 << 40, &c->lim, err, sizeof err) < 0 ||
        wfh_net_get_uint(c->in, "max_redirects", 50, &c->max_redirects, err, sizeof err))
        return fail_input(c, err);

    c->follow = c->verify = 1;
    static const char *const bools[] = {"follow_redirects", "verify_tls", "idempotency_key"};
    for (size_t i = 0; i < 3; i++) {
        v = json_object_get(c->in, bools[i]);
        if (v && !json_is_boolean(v)) {
            snprintf(err, sizeof err, "input '%s' must be true or false", bools[i]);
            return fail_input(c, err);
        }
    }
    if (json_is_false(json_object_get(c->in, "follow_redirects")))
        c->follow = 0;
    if (json_is_false(json_object_get(c->in, "verify_tls")))
        c->verify = 0;

    v = json_object_get(c->in, "on_oversize");
    if (v) {
        if (!json_is_string(v) || (strcmp(json_string_value(v), "fail") != 0 &&
                                   strcmp(json_string_value(v), "truncate") != 0))
            return fail_input(c, "input 'on_oversize' must be 'fail' or 'truncate'");
        c->truncate = strcmp(json_string_value(v), "truncate") == 0;
    }

    v = json_object_get(c->in, "expect_status");
    if (v) {
        size_t i;
        json_t *e;
        if (!json_is_array(v) || json_array_size(v) == 0 ||
            json_array_size(v) > HTTP_MAX_RANGES)
            return fail_input(c, "input 'expect_status' must be a list of 1 to 32 statuses "
                                 "(200, \"2xx\" or \"200-299\")");
        json_array_foreach(v, i, e) {
            if (parse_range(e, &c->ranges[i]) < 0) {
                char *t = json_dumps(e, JSON_ENCODE_ANY);
                snprintf(err, sizeof err,
                         "input 'expect_status': %s is not a status, \"Nxx\" or \"LO-HI\"",
                         t ? t : "?");
                free(t);
                return fail_input(c, err);
            }
        }
        c->nranges = json_array_size(v);
    } else {
        c->ranges[0].lo = 200;
        c->ranges[0].hi = c->follow ? 299 : 399;
        c->nranges = 1;
    }

    v = json_object_get(c->in, "headers");
    if (v) {
        const char *hk;
        json_t *hv;
        if (!json_is_object(v))
            return fail_input(c, "input 'headers' must be a map of strings");
        json_object_foreach(v, hk, hv) {
            if (!json_is_string(hv) || has_crlf(json_string_value(hv)) || has_crlf(hk) ||
                !*hk || strchr(hk, ':') || strchr(hk, ' ')) {
                snprintf(err, sizeof err,
                         "input 'headers.%.100s': names are tokens and values one-line strings",
                         hk);
                return fail_input(c, err);
            }
        }
    }

    /* The body: at most one of body, json, form. */
    int nbody = !!json_object_get(c->in, "body") + !!json_object_get(c->in, "json") +
                !!json_object_get(c->in, "form");
    if (nbody > 1)
        return fail_input(c, "give at most one of 'body', 'json' and 'form'");
    if ((v = json_object_get(c->in, "body"))) {
        if (!json_is_string(v))
            return fail_input(c, "input 'body' must be a string (use 'json' for data)");
        c->body_len = json_string_length(v);
        c->body = malloc(c->body_len + 1);
        if (!c->body)
            return fail_input(c, "out of memory");
        memcpy(c->body, json_string_value(v), c->body_len + 1);
    } else if ((v = json_object_get(c->in, "json"))) {
        c->body = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!c->body)
            return fail_input(c, "input 'json' cannot be serialised");
        c->body_len = strlen(c->body);
        c->content_type = "Content-Type: application/json";
    } else if ((v = json_object_get(c->in, "form"))) {
        wfh_buf b = {0};
        if (!json_is_object(v))
            return fail_input(c, "input 'form' must be a map");
        if (encode_pairs(v, &b, err, sizeof err, "form") < 0) {
            wfh_buf_clear(&b);
            return fail_input(c, err);
        }
        if (wfh_buf_append(&b, "", 0) < 0) {
            wfh_buf_clear(&b);
            return fail_input(c, "out of memory");
        }
        c->body = b.data;
        c->body_len = b.len;
        c->content_type = "Content-Type: application/x-www-form-urlencoded";
    }
    if (c->body && (strcmp(c->method, "GET") == 0 || strcmp(c->method, "HEAD") == 0))
        return fail_input(c, "a request body needs method POST, PUT, PATCH, DELETE or OPTIONS");

    v = json_object_get(c->in, "auth");
    if (v) {
        const json_t *bearer = json_object_get(v, "bearer"), *basic = json_object_get(v, "basic");
        if (!json_is_object(v) || (!bearer == !basic) || json_object_size(v) != 1)
            return fail_input(c, "input 'auth' must have exactly one of 'bearer' or 'basic'");
        if (bearer) {
            if (!json_is_string(bearer) || has_crlf(json_string_value(bearer)))
                return fail_input(c, "input 'auth.bearer' must be a one-line string");
            if (asprintf(&c->authz, "Authorization: Bearer %s", json_string_value(bearer)) < 0)
                return c->authz = NULL, fail_input(c, "out of memory");
        } else {
            const json_t *u = json_object_get(basic, "username"), *p = json_object_get(basic, "password");
            if (!json_is_object(basic) || !json_is_string(u) || !json_is_string(p) ||
                strchr(json_string_value(u), ':'))
                return fail_input(c, "input 'auth.basic' needs string 'username' (no ':') and "
                                     "'password'");
            char *pair = NULL; /* owned */
            wfh_buf b64 = {0};
            if (asprintf(&pair, "%s:%s", json_string_value(u), json_string_value(p)) < 0 ||
                base64_encode((const unsigned char *)pair, strlen(pair), &b64) < 0 ||
                asprintf(&c->authz, "Authorization: Basic %s", b64.data) < 0) {
                c->authz = NULL;
                free(pair);
                wfh_buf_clear(&b64);
                return fail_input(c, "out of memory");
            }
            free(pair);
            wfh_buf_clear(&b64);
        }
    }

    if (json_is_true(json_object_get(c->in, "idempotency_key"))) {
        const char *k = req->idempotency_key;
        if (!k || !*k || has_crlf(k))
            return fail_input(c, "idempotency_key: true, but the host gave no idempotency key");
        if (asprintf(&c->idem, "Idempotency-Key: %s", k) < 0)
            return c->idem = NULL, fail_input(c, "out of memory");
    }

    /* The URL, with the query appended through curl so that encoding is right. */
    CURLU *u = curl_url(); /* owned */
    char *full = NULL, *host = NULL; /* owned by curl */
    int rc = 0;
    if (!u)
        return fail_input(c, "out of memory");
    CURLUcode uc = curl_url_set(u, CURLUPART_URL, json_string_value(url), 0);
    if (uc != CURLUE_OK) {
        snprintf(err, sizeof err, "input 'url' is not a URL: %s", curl_url_strerror(uc));
        rc = fail_input(c, err);
        goto url_done;
    }
    v = json_object_get(c->in, "query");
    if (v) {
        wfh_buf q = {0};
        if (!json_is_object(v)) {
            rc = fail_input(c, "input 'query' must be a map");
            goto url_done;
        }
        if (encode_pairs(v, &q, err, sizeof err, "query") < 0) {
            wfh_buf_clear(&q);
            rc = fail_input(c, err);
            goto url_done;
        }
        if (q.len && curl_url_set(u, CURLUPART_QUERY, q.data, CURLU_APPENDQUERY) != CURLUE_OK) {
            wfh_buf_clear(&q);
            rc = fail_input(c, "input 'query' could not be added to the URL");
            goto url_done;
        }
        wfh_buf_clear(&q);
    }
    if (curl_url_get(u, CURLUPART_URL, &full, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        rc = fail_input(c, "input 'url' has no host");
        goto url_done;
    }
    c->url = strdup(full);
    c->orig_host = strdup(host);
    wfh_net_redact_url(full, c->shown, sizeof c->shown);
    if (!c->url || !c->orig_host)
        rc = fail_input(c, "out of memory");
    else if (wfh_net_check_url(c->url, c->allow, &c->grant, err, sizeof err) < 0)
        rc = fail_input(c, err);
url_done:
    curl_free(full);
    curl_free(host);
    curl_url_cleanup(u);
    return rc;
}

/* ---- transfer callbacks --------------------------------------------------------- */

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    http_ctx *c = ud;
    if (wfh_buf_append(&c->resp, p, size * n) < 0)
        return 0; /* stops the transfer: limit reached (checked after) or out of memory */
    return size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    http_ctx *c = ud;
    size_t len = size * n;
    if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
        /* A new response (100 Continue, or the next hop): start the map over. */
        json_object_clear(c->headers);
        return len;
    }
    const char *colon = memchr(p, ':', len);
    if (!colon || colon == p)
        return len;
    char name[256];
    size_t nl = (size_t)(colon - p);
    if (nl >= sizeof name)
        return len;
    for (size_t i = 0; i < nl; i++)
        name[i] = (char)tolower((unsigned char)p[i]);
    name[nl] = '\0';
    const char *val = colon + 1, *end = p + len;
    while (val < end && (*val == ' ' || *val == '\t'))
        val++;
    while (end > val && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
        end--;
    wfh_buf b = {0};
    const json_t *old = json_object_get(c->headers, name);
    if (old) {
        wfh_buf_append(&b, json_string_value(old), json_string_length(old));
        wfh_buf_append(&b, ", ", 2);
    }
    wfh_buf_append(&b, val, (size_t)(end - val));
    /* Header values are not promised to be UTF-8 (or NUL-free); keep the ones that are. */
    if (b.data && wfh_net_utf8_valid(b.data, b.len) && !memchr(b.data, '\0', b.len))
        json_object_set_new(c->headers, name, json_stringn(b.data, b.len));
    wfh_buf_clear(&b);
    return len;
}

static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    http_ctx *c = ud;
    (void)ultotal;
    (void)ulnow;
    if (c->host->is_cancelled(c->call))
        return 1;
    uint64_t now = wfh_net_now_ms();
    if (dlnow > 0 && now - c->last_progress_ms >= 500) {
        char msg[128];
        c->last_progress_ms = now;
        double frac = dltotal > 0 ? (double)dlnow / (double)dltotal : -1.0;
        int len = dltotal > 0 ? snprintf(msg, sizeof msg, "received %lld of %lld bytes",
                                         (long long)dlnow, (long long)dltotal)
                              : snprintf(msg, sizeof msg, "received %lld bytes", (long long)dlnow);
        c->host->progress(c->call, frac, msg, (size_t)len);
    }
    return 0;
}

/* ---- the request ---------------------------------------------------------------- */

static int status_expected(const http_ctx *c, long status)
{
    for (size_t i = 0; i < c->nranges; i++)
        if (status >= c->ranges[i].lo && status <= c->ranges[i].hi)
            return 1;
    return 0;
}

static int same_host(const char *url, const char *host)
{
    CURLU *u = curl_url(); /* owned */
    char *h = NULL;        /* owned by curl */
    int same = u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
               curl_url_get(u, CURLUPART_HOST, &h, 0) == CURLUE_OK && strcasecmp(h, host) == 0;
    curl_free(h);
    curl_url_cleanup(u);
    return same;
}

/* Sets up one hop on a freshly reset handle. @return 0 or -1 (out of memory). */
static int setup_hop(http_ctx *c, CURL *curl, struct curl_slist **hdrs, uint64_t left_ms,
                     int send_auth)
{
    struct curl_slist *l = NULL, *t;
    const json_t *uh = json_object_get(c->in, "headers");
    const char *k;
    json_t *v;
    int user_ct = 0;
    json_object_foreach((json_t *)uh, k, v) {
        char *line = NULL; /* owned */
        if (strcasecmp(k, "content-type") == 0)
            user_ct = 1;
        if (!send_auth && (strcasecmp(k, "authorization") == 0 || strcasecmp(k, "cookie") == 0))
            continue;
        /* "Name;" is curl's way to send a header with an empty value. */
        if (asprintf(&line, *json_string_value(v) ? "%s: %s" : "%s;", k,
                     json_string_value(v)) < 0)
            goto oom;
        t = curl_slist_append(l, line);
        free(line);
        if (!t)
            goto oom;
        l = t;
    }
    if (wfh_net_no_expect(&l) < 0)
        goto oom;
    if (c->content_type && !user_ct && c->body) {
        if (!(t = curl_slist_append(l, c->content_type)))
            goto oom;
        l = t;
    }
    if (c->authz && send_auth) {
        if (!(t = curl_slist_append(l, c->authz)))
            goto oom;
        l = t;
    }
    if (c->idem) {
        if (!(t = curl_slist_append(l, c->idem)))
            goto oom;
        l = t;
    }
    *hdrs = l;

    const wfh_net_xfer x = {
        .url = c->url, .headers = l, .user_agent = "wfhost-http/0.1",
        .connect_ms = c->lim.connect_ms, .left_ms = left_ms, .verify_tls = c->verify,
        .ca_file = c->lim.ca_file, .on_body = on_body, .on_progress = on_progress, .ud = c,
    };
    wfh_net_setup(curl, &x);
    curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, c);
    if (!c->truncate)
        curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)c->lim.max_bytes);

    if (strcmp(c->method, "HEAD") == 0) {
        curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
    } else if (strcmp(c->method, "GET") == 0) {
        curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
    } else {
        if (strcmp(c->method, "POST") != 0)
            curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, c->method);
        if (c->body || strcmp(c->method, "POST") == 0) {
            curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)c->body_len);
            curl_easy_setopt(curl, CURLOPT_POSTFIELDS, c->body ? c->body : "");
        }
    }
    return 0;
oom:
    curl_slist_free_all(l);
    return -1;
}

/* Reports the outputs of the final response. @return 0, or -1 if the host refused one. */
static int report(http_ctx *c, long status, uint64_t elapsed)
{
    int bad = 0;
    json_t *o;
    const char *ct = json_string_value(json_object_get(c->headers, "content-type"));
    const char *body = c->resp.data ? c->resp.data : "";
    /* A NUL is valid UTF-8 but not welcome in JSON text the host parses: base64 too. */
    int utf8 = wfh_net_utf8_valid(body, c->resp.len) && !memchr(body, '\0', c->resp.len);

    bad |= wfh_net_set_output(c->host, c->call, "status", o = json_integer(status));
    json_decref(o);
    bad |= wfh_net_set_output(c->host, c->call, "headers", c->headers);
    if (utf8) {
        bad |= wfh_net_set_output(c->host, c->call, "body", o = json_stringn(body, c->resp.len));
        json_decref(o);
    } else {
        wfh_buf b64 = {0};
        if (base64_encode((const unsigned char *)body, c->resp.len, &b64) < 0) {
            bad = -1;
        } else {
            bad |= wfh_net_set_output(c->host, c->call, "body", o = json_stringn(b64.data, b64.len));
            json_decref(o);
        }
        wfh_buf_clear(&b64);
    }
    bad |= wfh_net_set_output(c->host, c->call, "body_encoding",
                              o = json_string(utf8 ? "utf-8" : "base64"));
    json_decref(o);
    bad |= wfh_net_set_output(c->host, c->call, "truncated", o = json_boolean(c->resp.over));
    json_decref(o);
    bad |= wfh_net_set_output(c->host, c->call, "elapsed_ms", o = json_integer((json_int_t)elapsed));
    json_decref(o);
    bad |= wfh_net_set_output(c->host, c->call, "url", o = json_string(c->shown));
    json_decref(o);
    if (ct && utf8 && c->resp.len && !c->resp.over &&
        (strstr(ct, "/json") || strstr(ct, "+json"))) {
        json_error_t jerr;
        json_t *parsed = json_loadb(body, c->resp.len, JSON_DECODE_ANY, &jerr); /* owned */
        if (parsed) {
            bad |= wfh_net_set_output(c->host, c->call, "json", parsed);
            json_decref(parsed);
        } else {
            char msg[300];
            int n = snprintf(msg, sizeof msg, "http: response says %s but is not JSON: %s", ct,
                             jerr.text);
            c->host->log(c->call, WFH_LOG_WARN, msg, (size_t)n);
        }
    }
    return bad ? -1 : 0;
}

static int32_t http_run(const wfh_host_api *host, wfh_call *call, const wfh_step_request *req)
{
    http_ctx c;
    memset(&c, 0, sizeof c);
    c.host = host;
    c.call = call;
    CURL *curl = NULL;             /* owned */
    struct curl_slist *hdrs = NULL; /* owned: the current hop's headers */
    int status = http_parse_inputs(&c, req);
    if (status != 0)
        goto done;
    c.headers = json_object();
    curl = curl_easy_init();
    if (!c.headers || !curl) {
        wfh_net_errorf(host, call, "http: cannot initialise libcurl");
        status = WFH_STEP_FAILED;
        goto done;
    }
    c.resp.limit = c.lim.max_bytes;

    uint64_t start = wfh_net_now_ms();
    long code = 0;
    int send_auth = 1;
    for (uint64_t hop = 0;; hop++) {
        uint64_t used = wfh_net_now_ms() - start;
        if (used >= c.lim.timeout_ms) {
            wfh_net_errorf(host, call, "http: %s %s: timed out after %llu ms", c.method, c.shown,
                           (unsigned long long)c.lim.timeout_ms);
            status = WFH_STEP_TIMEOUT;
            goto done;
        }
        curl_easy_reset(curl);
        curl_slist_free_all(hdrs);
        hdrs = NULL;
        wfh_buf_clear(&c.resp);
        json_object_clear(c.headers);
        if (setup_hop(&c, curl, &hdrs, c.lim.timeout_ms - used, send_auth) < 0) {
            wfh_net_errorf(host, call, "http: out of memory");
            status = WFH_STEP_FAILED;
            goto done;
        }
        CURLcode rc = curl_easy_perform(curl);
        if (rc == CURLE_WRITE_ERROR && c.resp.over && c.truncate)
            rc = CURLE_OK; /* we stopped it on purpose: keep the first max bytes */
        if (rc == CURLE_FILESIZE_EXCEEDED || (rc == CURLE_WRITE_ERROR && c.resp.over)) {
            wfh_net_errorf(host, call,
                           "http: %s %s: response larger than max_response_bytes (%llu); set "
                           "on_oversize: truncate to keep the start",
                           c.method, c.shown, (unsigned long long)c.lim.max_bytes);
            status = WFH_STEP_PERMANENT;
            goto done;
        }
        if (rc != CURLE_OK) {
            status = wfh_net_curl_class(rc);
            if (status == WFH_STEP_CANCELLED)
                wfh_net_errorf(host, call, "http: %s %s: cancelled", c.method, c.shown);
            else
                wfh_net_errorf(host, call, "http: %s %s: %s", c.method, c.shown,
                               curl_easy_strerror(rc));
            goto done;
        }
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
        char *next = NULL; /* borrowed from curl */
        curl_easy_getinfo(curl, CURLINFO_REDIRECT_URL, &next);
        if (!c.follow || code < 300 || code > 399 || code == 304 || !next)
            break;
        if (hop >= c.max_redirects) {
            wfh_net_errorf(host, call, "http: %s: more than %llu redirects", c.shown,
                           (unsigned long long)c.max_redirects);
            status = WFH_STEP_PERMANENT;
            goto done;
        }
        char err[512];
        if (wfh_net_check_url(next, c.allow, &c.grant, err, sizeof err) < 0) {
            wfh_net_errorf(host, call, "http: redirect from %s refused: %s", c.shown, err);
            status = WFH_STEP_PERMANENT;
            goto done;
        }
        char *copy = strdup(next); /* owned, becomes c.url */
        if (!copy) {
            wfh_net_errorf(host, call, "http: out of memory");
            status = WFH_STEP_FAILED;
            goto done;
        }
        free(c.url);
        c.url = copy;
        wfh_net_redact_url(c.url, c.shown, sizeof c.shown);
        /* Browsers and curl turn a redirected POST into a GET for 301/302/303. */
        if ((code == 303 && strcmp(c.method, "HEAD") != 0) ||
            ((code == 301 || code == 302) && strcmp(c.method, "POST") == 0)) {
            strcpy(c.method, "GET");
            free(c.body);
            c.body = NULL;
            c.body_len = 0;
        }
        /* Credentials were given for one host; another host does not get them. */
        if (send_auth && !same_host(c.url, c.orig_host))
            send_auth = 0;
    }
    uint64_t elapsed = wfh_net_now_ms() - start;

    if (report(&c, code, elapsed) < 0) {
        wfh_net_errorf(host, call, "http: %s %s: the host refused an output (too large?)",
                       c.method, c.shown);
        status = WFH_STEP_FAILED;
        goto done;
    }
    if (!status_expected(&c, code)) {
        char snip[256];
        wfh_net_snippet(c.resp.data, c.resp.len, snip, sizeof snip);
        status = wfh_net_status_class(code);
        uint64_t ra = wfh_net_retry_after_ms(curl);
        if (status == WFH_STEP_TRANSIENT && ra)
            host->set_retry_after(call, ra);
        wfh_net_errorf(host, call, "http: %s %s: status %ld%s%s", c.method, c.shown, code,
                       *snip ? ": " : "", snip);
        goto done;
    }
    status = WFH_STEP_OK;
done:
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(curl);
    http_ctx_free(&c);
    return status;
}

static const wfh_step_type http_types[] = {{
    sizeof(wfh_step_type), "http", "make one HTTP(S) request and return status, headers and body",
    http_schema, http_outputs, "{\"network\":true}", http_run,
}};

static const wfh_plugin http_plugin = {
    WFH_PLUGIN_INIT, 1, sizeof(wfh_step_type), "http", "0.1.0",
    "HTTP requests with retries-friendly failure classes", http_types, NULL,
};

WFH_PLUGIN_EXPORT const wfh_plugin *wfh_plugin_entry_v1(void)
{
    return &http_plugin;
}
