/*
 * plugins/http/net.h - small pieces the http and llm plugins share: a bounded growable
 * buffer, the network allow-list check, and the mapping from curl results and HTTP
 * statuses to wfh_step_status classes. Plugin-private: built into each plugin .so
 * (neither plugin may use core/), never exported (the plugins export one symbol).
 */
#ifndef WFH_PLUGIN_NET_H
#define WFH_PLUGIN_NET_H

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

/*
 * Checks that @p url is http(s) and that its host:port is allowed by every list given:
 * @p allow (the step's JSON array of "host", "host:port", "*.domain" or
 * "*.domain:port"; NULL = none), @p grant (a comma-separated list in the same forms, as
 * the host may pass WFHOST_NET_ALLOW in the step's environment; NULL = none) and the
 * runner's own WFHOST_NET_ALLOW environment variable. Lists only ever narrow.
 * @return 0, or -1 with a one-line reason in @p err.
 */
int wfh_net_check_url(const char *url, const json_t *allow, const char *grant, char *err,
                      size_t errlen);

/* WFHOST_NET_ALLOW from a step's env_json, or NULL. Borrowed from @p env. */
const char *wfh_net_grant(const json_t *env);

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
