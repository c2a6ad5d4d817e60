/*
 * plugins/common/netutil.h - what the http and llm plugins share: a bounded growable
 * buffer, reading the step's inputs and sandbox grant, the check that refuses a target
 * the grant or the step's allow list does not name, one libcurl set-up, and the mapping
 * from curl results and HTTP statuses to wfh_step_status classes. Plugin-private:
 * compiled into each plugin .so (plugins may not use core/, and build against
 * include/wfhost alone), never installed, not part of the ABI, never exported (a
 * plugin exports one symbol).
 */
#ifndef WFH_PLUGIN_NETUTIL_H
#define WFH_PLUGIN_NETUTIL_H

#include <curl/curl.h>
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "wfhost/plugin.h"

/* A byte buffer that refuses to grow past @c limit (0 = no limit). */
typedef struct wfh_buf {
    char *data;   /* owned, NUL-terminated when non-NULL */
    size_t len;
    size_t cap;
    size_t limit; /* set by the caller before the first append */
    int over;     /* set once an append would have passed the limit */
} wfh_buf;

/* Appends @p n bytes; past the limit keeps what fits and sets @c over.
 * @return 0, or -1 on out of memory or when the limit was hit. */
int wfh_buf_append(wfh_buf *b, const void *p, size_t n);
/* Releases the storage; the struct may be reused after (len 0, limit kept). */
void wfh_buf_clear(wfh_buf *b);

/* 1 if @p s[0..n) is well-formed UTF-8 (no overlongs, no surrogates), else 0. */
int wfh_net_utf8_valid(const char *s, size_t n);

/* The network part of the sandbox grant the host gave this attempt (ABI 1.1
 * wfh_step_request.grant_json: "net": false | true | ["host:port", "host", ...]). */
typedef struct wfh_net_grant {
    const char *plugin; /* borrowed, static: "http", "llm", for messages */
    int all;            /* any target: "net": true, or a 1.0 host that sends no grant */
    json_t *list;       /* owned: the granted entries when not all (empty: none) */
} wfh_net_grant;

/*
 * Reads the step's inputs and grant: @p req's inputs must be a JSON object whose keys
 * are all in @p known (NULL-terminated); its optional "allow" input a list of
 * non-empty strings. On success *in (new reference) holds the inputs, *allow (borrowed
 * from *in, NULL when absent) the allow list, and @p g the grant.
 * @return 0, or -1 with a one-line reason in @p err (*in may still need json_decref).
 */
int wfh_net_open_request(const wfh_step_request *req, const char *const *known,
                         json_t **in, const json_t **allow, wfh_net_grant *g, char *err,
                         size_t errlen);
/* Releases what wfh_net_open_request put in @p g. */
void wfh_net_grant_clear(wfh_net_grant *g);

/*
 * Checks that @p url is http(s) and that its host:port is allowed by the step's
 * @p allow list (a JSON array of "host", "host:port", "*.domain[:port]", "[v6]:port";
 * NULL = no list) and by the sandbox grant @p g, whose entries match as the policy's
 * do: "host:port", "host" (any port) or "*". Called before connecting and again for
 * every redirect. @return 0, or -1 with a one-line reason in @p err naming the target,
 * the grant, and the policy line or flag that would allow it.
 */
int wfh_net_check_url(const char *url, const json_t *allow, const wfh_net_grant *g, char *err,
                      size_t errlen);

/* The limits both step types take as inputs: timeout_ms, connect_timeout_ms,
 * max_response_bytes and ca_file. */
typedef struct wfh_net_limits {
    uint64_t timeout_ms, connect_ms, max_bytes; /* set the defaults before reading */
    char ca_file[4096]; /* "" or the CA file; a relative path is in the run's workspace */
} wfh_net_limits;

/* Reads the inputs above from @p in (absent ones keep the defaults in @p l; each must
 * be at least 1; max_response_bytes at most @p max_bytes_cap). @return 0, or -1 with a
 * one-line reason in @p err. */
int wfh_net_read_limits(const wfh_step_request *req, const json_t *in, uint64_t max_bytes_cap,
                        wfh_net_limits *l, char *err, size_t errlen);

/* What one transfer needs beyond the request itself (wfh_net_setup). */
typedef struct wfh_net_xfer {
    const char *url;               /* borrowed */
    struct curl_slist *headers;    /* borrowed; "Expect:" is already in it */
    const char *user_agent;
    uint64_t connect_ms, left_ms;  /* connect timeout, time left for the whole transfer */
    int verify_tls;                /* 0 turns peer and host verification off */
    const char *ca_file;           /* "" or NULL: the system's CAs */
    curl_write_callback on_body;
    curl_xferinfo_callback on_progress;
    void *ud;                      /* handed to both callbacks */
} wfh_net_xfer;

/* Sets the options every request of both plugins shares on @p curl: http(s) only, no
 * signals, headers, timeouts, TLS, callbacks. Redirects are left off (callers follow
 * them themselves, after wfh_net_check_url). */
void wfh_net_setup(CURL *curl, const wfh_net_xfer *x);

/* Appends "Expect:" (no 100-continue round trip) to *@p hdrs. @return 0 or -1. */
int wfh_net_no_expect(struct curl_slist **hdrs);

/* Up to 200 bytes of @p data with control characters as spaces, for error messages:
 * servers put the reason at the start of a body. */
void wfh_net_snippet(const char *data, size_t len, char *out, size_t outlen);

/* @p url without user:password, for messages and outputs (which land in logs and the
 * run store). Falls back to "(url)" when it does not parse. */
void wfh_net_redact_url(const char *url, char *out, size_t outlen);

/* The class of a failed transfer (connection refused, DNS, reset -> transient...). */
int wfh_net_curl_class(CURLcode rc);

/* The class of an unexpected HTTP status: 408, 425, 429 and 5xx transient, others
 * permanent. */
int wfh_net_status_class(long status);

/* Retry-After of the last response in milliseconds (seconds or HTTP-date), 0 if none. */
uint64_t wfh_net_retry_after_ms(CURL *curl);

/* Formats a one-line message (newlines become spaces) and hands it to set_error. */
void wfh_net_errorf(const wfh_host_api *host, wfh_call *call, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* @p path as given when absolute, else joined to the run's @p workspace (when there is
 * one), into @p out. @return 0, or -1 when it does not fit. */
int wfh_net_workspace_path(const char *workspace, const char *path, char *out, size_t outlen);

/* Milliseconds on a monotonic clock. */
uint64_t wfh_net_now_ms(void);

/* set_output with a jansson value (serialised compactly); @return 0 or -1. */
int wfh_net_set_output(const wfh_host_api *host, wfh_call *call, const char *name,
                       const json_t *value);

/* Reads a non-negative integer input @p key from @p in into *out (unchanged when the
 * key is absent). @return 0, or -1 with a message in @p err when it is not one. */
int wfh_net_get_uint(const json_t *in, const char *key, uint64_t max, uint64_t *out,
                     char *err, size_t errlen);

#endif
