/*
 * plugins/llm/llm.c - the `llm` step type: ask a language model, get text, JSON or
 * tool calls back.
 *
 * The step checks its inputs (invalid -> WFH_STEP_INVALID_INPUT before any request),
 * then asks the primary provider and, when that fails transiently (network, 408, 425,
 * 429, 5xx, timeout, a truncated or malformed answer, JSON that does not match the
 * schema), each `fallback` in order. A token budget per step and per run is checked
 * before each request from an estimate of the input plus the output allowance, and
 * spent from the provider's usage fields afterwards; the run's spend is kept in a small
 * file in the run's workspace under flock(2), since the plugin has no other shared
 * state. Streamed answers are reported to the host as progress. The wire formats live
 * in providers.c; this file never looks at a provider's JSON.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "jschema.h"
#include "llm.h"
#include "wfhost/plugin.h"

#define LLM_MAX_TARGETS 9
#define LLM_DEFAULT_TIMEOUT_MS 120000u
#define LLM_DEFAULT_CONNECT_MS 10000u
#define LLM_DEFAULT_MAX_BYTES (8u * 1024u * 1024u)

#define TARGET_PROPS                                                                       \
    "\"provider\":{\"type\":\"string\",\"enum\":[\"openai\",\"anthropic\",\"gemini\"]},"  \
    "\"model\":{\"type\":\"string\",\"minLength\":1},"                                   \
    "\"base_url\":{\"type\":\"string\",\"minLength\":1},"                                \
    "\"api_key\":{\"type\":\"string\"}"

static const char llm_schema[] =
    "{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"model\"],"
    "\"oneOf\":[{\"required\":[\"prompt\"]},{\"required\":[\"messages\"]}],"
    "\"properties\":{" TARGET_PROPS ","
    "\"system\":{\"type\":\"string\"},"
    "\"prompt\":{\"type\":\"string\"},"
    "\"messages\":{\"type\":\"array\",\"minItems\":1,\"items\":{\"type\":\"object\","
    "\"additionalProperties\":false,\"required\":[\"role\",\"content\"],\"properties\":{"
    "\"role\":{\"type\":\"string\",\"enum\":[\"system\",\"user\",\"assistant\"]},"
    "\"content\":{\"type\":\"string\"}}}},"
    "\"temperature\":{\"type\":\"number\",\"minimum\":0,\"maximum\":2},"
    "\"max_tokens\":{\"type\":\"integer\",\"minimum\":1},"
    "\"stop\":{\"type\":[\"string\",\"array\"],\"items\":{\"type\":\"string\"}},"
    "\"response_format\":{\"type\":\"string\",\"enum\":[\"text\",\"json\"]},"
    "\"schema\":{\"type\":[\"object\",\"boolean\"]},"
    "\"tools\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"additionalProperties\":false,"
    "\"required\":[\"name\"],\"properties\":{"
    "\"name\":{\"type\":\"string\",\"pattern\":\"^[A-Za-z0-9_-]{1,64}$\"},"
    "\"description\":{\"type\":\"string\"},\"parameters\":{\"type\":\"object\"}}}},"
    "\"fallback\":{\"type\":\"array\",\"maxItems\":8,\"items\":{\"type\":\"object\","
    "\"additionalProperties\":false,\"required\":[\"model\"],\"properties\":{" TARGET_PROPS "}}},"
    "\"token_budget\":{\"type\":\"object\",\"additionalProperties\":false,\"properties\":{"
    "\"step\":{\"type\":\"integer\",\"minimum\":1},\"run\":{\"type\":\"integer\",\"minimum\":1}}},"
    "\"stream\":{\"type\":\"boolean\"},"
    "\"timeout_ms\":{\"type\":\"integer\",\"minimum\":1},"
    "\"connect_timeout_ms\":{\"type\":\"integer\",\"minimum\":1},"
    "\"max_response_bytes\":{\"type\":\"integer\",\"minimum\":1},"
    "\"ca_file\":{\"type\":\"string\",\"minLength\":1},"
    "\"allow\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}}"
    "}}";

static const char llm_outputs[] =
    "{\"text\":\"the answer's text\","
    "\"json\":\"the answer parsed and validated (response_format: json)\","
    "\"tool_calls\":\"[{id, name, arguments}] the model asked for\","
    "\"usage\":\"{input_tokens, output_tokens} as the provider counted them\","
    "\"model\":\"the model that answered\","
    "\"provider\":\"the provider that answered (after any fallback)\","
    "\"finish_reason\":\"stop, length, tool_calls or content_filter\","
    "\"latency_ms\":\"time from the first request to the answer\"}";

static const char *const known_inputs[] = {
    "provider", "model", "base_url", "api_key", "system", "prompt", "messages",
    "temperature", "max_tokens", "stop", "response_format", "schema", "tools", "fallback",
    "token_budget", "stream", "timeout_ms", "connect_timeout_ms", "max_response_bytes",
    "ca_file", "allow", NULL};

typedef struct llm_ctx {
    const wfh_host_api *host;  /* borrowed for the call */
    wfh_call *call;            /* borrowed for the call */
    const wfh_step_request *req; /* borrowed for the call */
    json_t *in;                /* owned: the parsed inputs */
    llm_query q;               /* strings borrowed from in; q.stop owned */
    llm_target targets[LLM_MAX_TARGETS];
    size_t ntargets;
    wfh_net_limits lim;
    uint64_t budget_step, budget_run;
    const json_t *allow;       /* borrowed from in */
    wfh_net_grant grant;       /* the sandbox's network grant (owned list) */
    int64_t step_spent;
    char budget_path[4096];
} llm_ctx;

/* One request to one target. */
typedef struct llm_xfer {
    llm_ctx *c;                /* borrowed */
    const llm_target *t;       /* borrowed */
    CURL *curl;                /* borrowed */
    llm_answer *a;             /* borrowed */
    wfh_buf raw;               /* every byte received (bounded by max_response_bytes) */
    size_t sse_pos;            /* where unparsed SSE lines start in raw */
    int sse;                   /* 0 undecided, 1 an event stream, 2 a plain body */
    wfh_buf ev_data;           /* the data lines of the event being read */
    char ev_name[64];
    int bad;                   /* a stream event failed: message in a->err */
    uint64_t last_progress_ms;
} llm_xfer;

static int fail_input(llm_ctx *c, const char *msg)
{
    wfh_net_errorf(c->host, c->call, "llm: %s", msg);
    return WFH_STEP_INVALID_INPUT;
}

/* ---- inputs --------------------------------------------------------------------- */

static int read_target(llm_ctx *c, const json_t *o, llm_target *t, const char *where)
{
    char err[600];
    const json_t *p = json_object_get(o, "provider"), *m = json_object_get(o, "model"),
                 *b = json_object_get(o, "base_url"), *k = json_object_get(o, "api_key");
    t->provider = p ? json_string_value(p) : "openai";
    if (!t->provider || !llm_provider_known(t->provider)) {
        snprintf(err, sizeof err, "%s: 'provider' must be openai, anthropic or gemini", where);
        return fail_input(c, err);
    }
    if (!json_is_string(m) || !*json_string_value(m)) {
        snprintf(err, sizeof err, "%s: 'model' is required and must be a non-empty string", where);
        return fail_input(c, err);
    }
    t->model = json_string_value(m);
    /* Names go into the JSON body, and Gemini's into the URL path: no control
     * characters anywhere, and no path or query syntax for Gemini. */
    int gemini = strcmp(t->provider, "gemini") == 0;
    for (const unsigned char *s = (const unsigned char *)t->model; *s; s++) {
        int control = *s <= ' ' || *s == 0x7f;
        int path = *s == '/' || *s == '?' || *s == '#' || *s == '%';
        if (control || (gemini && path)) {
            snprintf(err, sizeof err, "%s: model '%.100s' contains characters a model name "
                     "cannot have", where, t->model);
            return fail_input(c, err);
        }
    }
    if ((b && !json_is_string(b)) || (k && !json_is_string(k))) {
        snprintf(err, sizeof err, "%s: 'base_url' and 'api_key' must be strings", where);
        return fail_input(c, err);
    }
    t->base_url = b ? json_string_value(b) : NULL;
    t->api_key = k && *json_string_value(k) ? json_string_value(k) : NULL;
    if (t->api_key && strpbrk(t->api_key, "\r\n"))
        return fail_input(c, "api_key must be one line");
    /* Check the endpoint now, so that no target is contacted if any is refused. */
    char *url = NULL, *body = NULL; /* owned */
    struct curl_slist *h = NULL;    /* owned */
    llm_query probe = c->q;
    int rc = 0;
    if (llm_provider_build(t, &probe, &url, &body, &h, err, sizeof err) < 0) {
        rc = fail_input(c, err);
    } else {
        char why[512];
        if (wfh_net_check_url(url, c->allow, &c->grant, why, sizeof why) < 0) {
            snprintf(err, sizeof err, "%s (%s %s): %s", where, t->provider, t->model, why);
            rc = fail_input(c, err);
        }
    }
    free(url);
    free(body);
    curl_slist_free_all(h);
    return rc;
}

static int llm_parse_inputs(llm_ctx *c)
{
    char err[600];
    const json_t *v;
    const char *key;
    json_t *jv;
    c->grant.plugin = "llm";
    if (wfh_net_open_request(c->req, known_inputs, &c->in, &c->allow, &c->grant, err,
                             sizeof err) < 0)
        return fail_input(c, err);
    static const char *const strs[] = {"system", "prompt", "response_format"};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        if ((v = json_object_get(c->in, strs[i])) && !json_is_string(v)) {
            snprintf(err, sizeof err, "input '%s' must be a string", strs[i]);
            return fail_input(c, err);
        }
    c->q.system = json_string_value(json_object_get(c->in, "system"));
    c->q.prompt = json_string_value(json_object_get(c->in, "prompt"));
    v = json_object_get(c->in, "messages");
    if (!!c->q.prompt == !!v)
        return fail_input(c, "give exactly one of 'prompt' and 'messages'");
    if (v) {
        size_t i;
        json_t *m;
        if (!json_is_array(v) || json_array_size(v) == 0)
            return fail_input(c, "input 'messages' must be a non-empty list");
        json_array_foreach(v, i, m) {
            const char *role = json_string_value(json_object_get(m, "role"));
            if (!role || !json_is_string(json_object_get(m, "content")) ||
                (strcmp(role, "system") && strcmp(role, "user") && strcmp(role, "assistant"))) {
                snprintf(err, sizeof err, "input 'messages[%zu]' needs role system, user or "
                         "assistant and a string content", i);
                return fail_input(c, err);
            }
        }
        c->q.messages = v;
    }

    if ((v = json_object_get(c->in, "temperature"))) {
        if (!json_is_number(v) || json_number_value(v) < 0 || json_number_value(v) > 2)
            return fail_input(c, "input 'temperature' must be a number from 0 to 2");
        c->q.has_temperature = 1;
        c->q.temperature = json_number_value(v);
    }
    c->lim.timeout_ms = LLM_DEFAULT_TIMEOUT_MS;
    c->lim.connect_ms = LLM_DEFAULT_CONNECT_MS;
    c->lim.max_bytes = LLM_DEFAULT_MAX_BYTES;
    const json_t *tb = json_object_get(c->in, "token_budget");
    if (tb && !json_is_object(tb))
        return fail_input(c, "input 'token_budget' must be {step: N, run: N}");
    if (tb) {
        json_object_foreach((json_t *)tb, key, jv) {
            if (strcmp(key, "step") && strcmp(key, "run")) {
                snprintf(err, sizeof err, "input 'token_budget.%.100s' is unknown (step, run)", key);
                return fail_input(c, err);
            }
        }
    }
    if (wfh_net_get_uint(c->in, "max_tokens", 100000000u, &c->q.max_tokens, err, sizeof err) ||
        wfh_net_read_limits(c->req, c->in, (uint64_t)1 << 36, &c->lim, err, sizeof err) < 0 ||
        (tb && (wfh_net_get_uint(tb, "step", (uint64_t)1 << 40, &c->budget_step, err, sizeof err) ||
                wfh_net_get_uint(tb, "run", (uint64_t)1 << 40, &c->budget_run, err, sizeof err))))
        return fail_input(c, err);
    if (json_object_get(c->in, "max_tokens") && c->q.max_tokens == 0)
        return fail_input(c, "input 'max_tokens' must be at least 1");
    if (tb && ((json_object_get(tb, "step") && !c->budget_step) ||
               (json_object_get(tb, "run") && !c->budget_run)))
        return fail_input(c, "token budgets must be at least 1");

    if ((v = json_object_get(c->in, "stop"))) {
        size_t i;
        json_t *s;
        if (json_is_string(v)) {
            c->q.stop = json_pack("[O]", v);
        } else if (json_is_array(v) && json_array_size(v) > 0) {
            json_array_foreach(v, i, s) {
                if (!json_is_string(s) || !*json_string_value(s))
                    return fail_input(c, "input 'stop' must be a string or a list of strings");
            }
            c->q.stop = json_incref((json_t *)v);
        } else {
            return fail_input(c, "input 'stop' must be a string or a list of strings");
        }
    }
    const char *rf = json_string_value(json_object_get(c->in, "response_format"));
    if (rf && strcmp(rf, "json") && strcmp(rf, "text"))
        return fail_input(c, "input 'response_format' must be 'text' or 'json'");
    c->q.json_mode = rf && strcmp(rf, "json") == 0;
    if ((v = json_object_get(c->in, "schema"))) {
        if (!c->q.json_mode)
            return fail_input(c, "input 'schema' needs response_format: json");
        if (wfh_jschema_check(v, err, sizeof err) < 0) {
            char msg[700];
            snprintf(msg, sizeof msg, "input 'schema': %s", err);
            return fail_input(c, msg);
        }
        c->q.schema = v;
    }
    if ((v = json_object_get(c->in, "tools"))) {
        size_t i;
        json_t *t;
        if (!json_is_array(v))
            return fail_input(c, "input 'tools' must be a list of {name, description, parameters}");
        json_array_foreach(v, i, t) {
            const char *name = json_string_value(json_object_get(t, "name"));
            const json_t *params = json_object_get(t, "parameters");
            int ok = name && *name && strlen(name) <= 64;
            for (const char *s = name; ok && *s; s++)
                ok = (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
                     (*s >= '0' && *s <= '9') || *s == '_' || *s == '-';
            if (!ok || (params && !json_is_object(params)) ||
                (json_object_get(t, "description") &&
                 !json_is_string(json_object_get(t, "description")))) {
                snprintf(err, sizeof err, "input 'tools[%zu]' needs a name of [A-Za-z0-9_-]{1,64}, "
                         "and parameters must be a JSON Schema object", i);
                return fail_input(c, err);
            }
            if (params && wfh_jschema_check(params, err, sizeof err) < 0) {
                char msg[700];
                snprintf(msg, sizeof msg, "input 'tools[%zu].parameters': %s", i, err);
                return fail_input(c, msg);
            }
        }
        c->q.tools = v;
    }
    if ((v = json_object_get(c->in, "stream")) && !json_is_boolean(v))
        return fail_input(c, "input 'stream' must be true or false");
    c->q.stream = !json_is_false(v);

    if (read_target(c, c->in, &c->targets[0], "the step") != 0)
        return WFH_STEP_INVALID_INPUT;
    c->ntargets = 1;
    if ((v = json_object_get(c->in, "fallback"))) {
        size_t i;
        json_t *f;
        if (!json_is_array(v) || json_array_size(v) > LLM_MAX_TARGETS - 1)
            return fail_input(c, "input 'fallback' must be a list of at most 8 "
                                 "{provider, model, base_url, api_key}");
        json_array_foreach(v, i, f) {
            char where[64];
            snprintf(where, sizeof where, "fallback[%zu]", i);
            if (!json_is_object(f))
                return fail_input(c, "input 'fallback' entries must be objects");
            json_object_foreach(f, key, jv) {
                if (strcmp(key, "provider") && strcmp(key, "model") && strcmp(key, "base_url") &&
                    strcmp(key, "api_key")) {
                    snprintf(err, sizeof err, "%s: unknown key '%.100s'", where, key);
                    return fail_input(c, err);
                }
            }
            if (read_target(c, f, &c->targets[c->ntargets], where) != 0)
                return WFH_STEP_INVALID_INPUT;
            c->ntargets++;
        }
    }
    if (c->budget_run) {
        /* The run's spend lives beside the run's files; the id becomes part of a name. */
        const char *id = c->req->run_id ? c->req->run_id : "run";
        char safe[200];
        size_t n = 0;
        for (const char *s = id; *s && n + 1 < sizeof safe; s++)
            safe[n++] = ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
                         (*s >= '0' && *s <= '9') || *s == '-' || *s == '_') ? *s : '_';
        safe[n] = '\0';
        if (!c->req->workspace || c->req->workspace[0] != '/')
            return fail_input(c, "token_budget.run needs the run's workspace, and the host gave none");
        snprintf(c->budget_path, sizeof c->budget_path, "%s/.wfhost-llm-tokens-%s",
                 c->req->workspace, safe);
    }
    return 0;
}

/* ---- budget --------------------------------------------------------------------- */

/* A rough count: ~4 bytes of English per token, plus a few per message for framing.
 * It only has to be good enough to refuse what clearly does not fit. */
static int64_t estimate_input_tokens(const llm_ctx *c)
{
    size_t chars = 0, msgs = 1;
    if (c->q.system)
        chars += strlen(c->q.system);
    if (c->q.prompt)
        chars += strlen(c->q.prompt);
    size_t i;
    json_t *m;
    json_array_foreach((json_t *)c->q.messages, i, m) {
        chars += json_string_length(json_object_get(m, "content"));
        msgs++;
    }
    const json_t *extra[] = {c->q.tools, c->q.schema};
    for (size_t k = 0; k < 2; k++)
        if (extra[k]) {
            char *s = json_dumps(extra[k], JSON_COMPACT | JSON_ENCODE_ANY); /* owned */
            chars += s ? strlen(s) : 0;
            free(s);
        }
    return (int64_t)((chars + 3) / 4 + 4 * msgs + 8);
}

/* Adds @p add to the run's spend (0 just reads it) under an exclusive lock.
 * @return the spend after, or -1 with errno. */
static int64_t run_budget_update(const char *path, int64_t add)
{
    int64_t total = -1;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return -1;
    if (flock(fd, LOCK_EX) < 0)
        goto done;
    char buf[32];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n < 0)
        goto done;
    buf[n] = '\0';
    total = strtoll(buf, NULL, 10);
    if (total < 0)
        total = 0;
    if (add > 0) {
        total += add;
        int len = snprintf(buf, sizeof buf, "%lld\n", (long long)total);
        if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t)len, 0) != len)
            total = -1;
    }
done:
    close(fd); /* releases the lock */
    return total;
}

/* ---- the transfer --------------------------------------------------------------- */

static int sse_dispatch(llm_xfer *x)
{
    int rc = 0;
    if (x->ev_data.len == 0)
        goto reset;
    if (strcmp(x->ev_data.data, "[DONE]") == 0) {
        x->a->done = 1;
        goto reset;
    }
    json_error_t jerr;
    json_t *d = json_loadb(x->ev_data.data, x->ev_data.len, 0, &jerr); /* owned */
    if (!d) {
        snprintf(x->a->err, sizeof x->a->err, "malformed JSON in a stream event: %s", jerr.text);
        rc = -1;
    } else {
        rc = llm_provider_event(x->t, x->ev_name, d, x->a);
        json_decref(d);
    }
reset:
    wfh_buf_clear(&x->ev_data);
    x->ev_name[0] = '\0';
    return rc;
}

static int sse_line(llm_xfer *x, const char *line, size_t len)
{
    if (len && line[len - 1] == '\r')
        len--;
    if (len == 0)
        return sse_dispatch(x);
    if (line[0] == ':')
        return 0;
    const char *colon = memchr(line, ':', len);
    size_t fl = colon ? (size_t)(colon - line) : len;
    const char *val = colon ? colon + 1 : line + len;
    if (val < line + len && *val == ' ')
        val++;
    size_t vl = (size_t)(line + len - val);
    if (fl == 5 && memcmp(line, "event", 5) == 0) {
        snprintf(x->ev_name, sizeof x->ev_name, "%.*s", (int)vl, val);
    } else if (fl == 4 && memcmp(line, "data", 4) == 0) {
        if ((x->ev_data.len && wfh_buf_append(&x->ev_data, "\n", 1) < 0) ||
            wfh_buf_append(&x->ev_data, val, vl) < 0) {
            snprintf(x->a->err, sizeof x->a->err, "out of memory");
            return -1;
        }
        if (!x->ev_data.data && wfh_buf_append(&x->ev_data, "", 0) < 0)
            return -1;
    }
    return 0;
}

/* Parses the complete lines received so far; @p final also takes a last partial line
 * and an event without its blank line. */
static int sse_feed(llm_xfer *x, int final)
{
    while (x->sse_pos < x->raw.len) {
        const char *start = x->raw.data + x->sse_pos;
        const char *nl = memchr(start, '\n', x->raw.len - x->sse_pos);
        if (!nl) {
            if (!final)
                return 0;
            nl = x->raw.data + x->raw.len;
        }
        if (sse_line(x, start, (size_t)(nl - start)) < 0)
            return -1;
        x->sse_pos = (size_t)(nl - x->raw.data) + (nl < x->raw.data + x->raw.len);
    }
    return final ? sse_dispatch(x) : 0;
}

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
    llm_xfer *x = ud;
    if (wfh_buf_append(&x->raw, p, size * n) < 0)
        return 0;
    if (x->sse == 0) {
        long code = 0;
        char *ct = NULL; /* borrowed from curl */
        curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &code);
        curl_easy_getinfo(x->curl, CURLINFO_CONTENT_TYPE, &ct);
        x->sse = (code == 200 && ct && strstr(ct, "text/event-stream")) ? 1 : 2;
    }
    if (x->sse == 1 && sse_feed(x, 0) < 0) {
        x->bad = 1;
        return 0;
    }
    return size * n;
}

static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    llm_xfer *x = ud;
    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    if (x->c->host->is_cancelled(x->c->call))
        return 1;
    uint64_t now = wfh_net_now_ms();
    if (x->sse == 1 && x->a->text.len && now - x->last_progress_ms >= 250) {
        char msg[160];
        x->last_progress_ms = now;
        int len = snprintf(msg, sizeof msg, "%s %s: streaming, %zu characters so far",
                           x->t->provider, x->t->model, x->a->text.len);
        x->c->host->progress(x->c->call, -1.0, msg, (size_t)len);
    }
    return 0;
}

/* Strips a ```json ... ``` fence: local models often wrap JSON answers in one. */
static void strip_fence(const char **s, size_t *n)
{
    const char *p = *s, *e = *s + *n;
    while (p < e && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    while (e > p && (e[-1] == ' ' || e[-1] == '\n' || e[-1] == '\r' || e[-1] == '\t'))
        e--;
    if (e - p >= 6 && strncmp(p, "```", 3) == 0 && strncmp(e - 3, "```", 3) == 0) {
        const char *nl = memchr(p, '\n', (size_t)(e - p));
        if (nl && nl < e - 3) {
            p = nl + 1;
            e -= 3;
        }
    }
    *s = p;
    *n = (size_t)(e - p);
}

/* Turns what arrived into outputs-ready values: tool calls with parsed, checked
 * arguments, and the JSON answer. @return 0 or a step status with a->err set. */
static int finish_answer(llm_ctx *c, llm_answer *a, json_t **calls, json_t **answer)
{
    char err[400];
    *calls = json_array();
    *answer = NULL;
    if (!*calls) {
        snprintf(a->err, sizeof a->err, "out of memory");
        return WFH_STEP_FAILED;
    }
    const char *idx;
    json_t *tc;
    json_object_foreach(a->tools, idx, tc) {
        const json_t *args = json_object_get(tc, "args");
        const char *name = json_string_value(json_object_get(tc, "name"));
        json_error_t jerr;
        json_t *parsed = json_string_length(args)
                             ? json_loadb(json_string_value(args), json_string_length(args), 0, &jerr)
                             : json_object(); /* owned */
        if (!json_is_object(parsed)) {
            json_decref(parsed);
            snprintf(a->err, sizeof a->err, "tool call '%s': arguments are not a JSON object",
                     name ? name : "?");
            return WFH_STEP_TRANSIENT;
        }
        const json_t *schema = NULL;
        int known = 0;
        size_t i;
        json_t *tool;
        json_array_foreach((json_t *)c->q.tools, i, tool) {
            if (name && strcmp(json_string_value(json_object_get(tool, "name")), name) == 0) {
                known = 1;
                schema = json_object_get(tool, "parameters");
            }
        }
        if (!known || (schema && wfh_jschema_validate(schema, parsed, err, sizeof err) < 0)) {
            if (!known)
                snprintf(a->err, sizeof a->err, "the model called tool '%.100s', which the step "
                         "does not offer", name ? name : "");
            else
                snprintf(a->err, sizeof a->err, "tool call '%s': arguments do not match its "
                         "parameters: %s", name, err);
            json_decref(parsed);
            return WFH_STEP_TRANSIENT;
        }
        /* Gemini gives calls no id; later turns refer to calls by id, so make one. */
        const char *id = json_string_value(json_object_get(tc, "id"));
        char made[48];
        if (!id || !*id) {
            snprintf(made, sizeof made, "call_%s", idx);
            id = made;
        }
        json_array_append_new(*calls, json_pack("{s:s, s:s, s:o}", "id", id, "name", name,
                                                "arguments", parsed));
    }
    if (c->q.json_mode && json_array_size(*calls) == 0) {
        const char *s = a->text.data ? a->text.data : "";
        size_t n = a->text.len;
        json_error_t jerr;
        strip_fence(&s, &n);
        *answer = json_loadb(s, n, JSON_DECODE_ANY, &jerr);
        if (!*answer) {
            snprintf(a->err, sizeof a->err, "the answer is not JSON (%s at line %d column %d)%s",
                     jerr.text, jerr.line, jerr.column,
                     strcmp(a->finish, "length") == 0 ? "; it was cut at max_tokens" : "");
            return WFH_STEP_TRANSIENT;
        }
        if (c->q.schema && wfh_jschema_validate(c->q.schema, *answer, err, sizeof err) < 0) {
            snprintf(a->err, sizeof a->err, "the answer does not match the schema: %s", err);
            return WFH_STEP_TRANSIENT;
        }
    }
    return 0;
}

/* Google puts the wait in the error body (google.rpc.RetryInfo, "retryDelay": "30s")
 * rather than in a Retry-After header. @return milliseconds, 0 if none. */
static uint64_t google_retry_delay_ms(const json_t *body)
{
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(json_object_get(body, "error"), "details"), i, d) {
        const char *delay = json_string_value(json_object_get(d, "retryDelay"));
        char *end;
        double secs = delay ? strtod(delay, &end) : 0;
        if (delay && end != delay && strcmp(end, "s") == 0 && secs > 0 && secs <= 86400)
            return (uint64_t)(secs * 1000.0);
    }
    return 0;
}

/* Asks one target. @return a step status; on failure a->err says why and *retry_ms
 * carries any Retry-After. */
static int ask(llm_ctx *c, const llm_target *t, const llm_query *q, uint64_t deadline,
               llm_answer *a, uint64_t *retry_ms)
{
    int status = WFH_STEP_FAILED;
    char *url = NULL, *body = NULL;    /* owned */
    struct curl_slist *hdrs = NULL;    /* owned */
    llm_xfer x;
    memset(&x, 0, sizeof x);
    x.c = c;
    x.t = t;
    x.a = a;
    x.raw.limit = c->lim.max_bytes;
    CURL *curl = curl_easy_init();     /* owned */
    x.curl = curl;
    if (!curl) {
        snprintf(a->err, sizeof a->err, "cannot initialise libcurl");
        goto done;
    }
    if (llm_provider_build(t, q, &url, &body, &hdrs, a->err, sizeof a->err) < 0)
        goto done;
    if (wfh_net_no_expect(&hdrs) < 0) {
        snprintf(a->err, sizeof a->err, "out of memory");
        goto done;
    }
    uint64_t now = wfh_net_now_ms();
    if (now >= deadline) {
        snprintf(a->err, sizeof a->err, "no time left before the step's timeout");
        status = WFH_STEP_TIMEOUT;
        goto done;
    }
    uint64_t left = deadline - now;
    /* Redirects are not part of any of these APIs: wfh_net_setup leaves them off, so an
     * unexpected one is an error (a 3xx status), never a hop to an unchecked target. */
    const wfh_net_xfer xo = {
        .url = url, .headers = hdrs, .user_agent = "wfhost-llm/0.1",
        .connect_ms = c->lim.connect_ms, .left_ms = left, .verify_tls = 1,
        .ca_file = c->lim.ca_file,
        .on_body = on_data, .on_progress = on_progress, .ud = &x,
    };
    wfh_net_setup(curl, &xo);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);

    CURLcode rc = curl_easy_perform(curl);
    if ((rc == CURLE_PARTIAL_FILE || rc == CURLE_RECV_ERROR) && x.sse == 1 && a->done)
        rc = CURLE_OK; /* the final event arrived: a connection cut after it loses nothing */
    long code = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
    if (rc == CURLE_WRITE_ERROR && x.bad) {
        status = WFH_STEP_TRANSIENT;
        goto done;
    }
    if (rc == CURLE_WRITE_ERROR && x.raw.over) {
        snprintf(a->err, sizeof a->err, "response larger than max_response_bytes (%llu)",
                 (unsigned long long)c->lim.max_bytes);
        status = WFH_STEP_FAILED;
        goto done;
    }
    if (rc != CURLE_OK) {
        status = wfh_net_curl_class(rc);
        snprintf(a->err, sizeof a->err, "%s", status == WFH_STEP_CANCELLED ? "cancelled"
                                                                          : curl_easy_strerror(rc));
        goto done;
    }
    if (code != 200) {
        json_t *eb = x.raw.len ? json_loadb(x.raw.data, x.raw.len, 0, NULL) : NULL; /* owned */
        const char *msg = llm_provider_error_message(eb);
        char snip[210];
        wfh_net_snippet(x.raw.data, msg ? 0 : x.raw.len, snip, sizeof snip);
        status = wfh_net_status_class(code);
        snprintf(a->err, sizeof a->err, "HTTP %ld: %s", code, msg ? msg : snip);
        if (status == WFH_STEP_TRANSIENT) {
            *retry_ms = wfh_net_retry_after_ms(curl);
            if (!*retry_ms)
                *retry_ms = google_retry_delay_ms(eb);
        }
        json_decref(eb);
        goto done;
    }
    if (x.sse == 1) {
        if (sse_feed(&x, 1) < 0) {
            status = WFH_STEP_TRANSIENT;
            goto done;
        }
        if (!a->done) {
            snprintf(a->err, sizeof a->err, "the stream ended before its final event (truncated)");
            status = WFH_STEP_TRANSIENT;
            goto done;
        }
    } else {
        json_error_t jerr;
        json_t *r = json_loadb(x.raw.data ? x.raw.data : "", x.raw.len, 0, &jerr); /* owned */
        if (!r) {
            snprintf(a->err, sizeof a->err, "malformed JSON in the answer (%s at byte %d)",
                     jerr.text, jerr.position);
            status = WFH_STEP_TRANSIENT;
            goto done;
        }
        const char *emsg = json_object_get(r, "error") ? llm_provider_error_message(r) : NULL;
        if (emsg) {
            /* Some OpenAI-compatible servers report errors with status 200. */
            snprintf(a->err, sizeof a->err, "error in a 200 answer: %s", emsg);
            json_decref(r);
            status = WFH_STEP_FAILED;
            goto done;
        }
        int prc = llm_provider_parse(t, r, a);
        json_decref(r);
        if (prc < 0) {
            status = WFH_STEP_TRANSIENT;
            goto done;
        }
    }
    status = WFH_STEP_OK;
done:
    wfh_buf_clear(&x.raw);
    wfh_buf_clear(&x.ev_data);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(curl);
    free(url);
    free(body);
    return status;
}

static int set_out(llm_ctx *c, const char *name, json_t *v /* stolen */)
{
    int rc = v ? wfh_net_set_output(c->host, c->call, name, v) : -1;
    json_decref(v);
    return rc;
}

static int32_t llm_run(const wfh_host_api *host, wfh_call *call, const wfh_step_request *req)
{
    llm_ctx c;
    memset(&c, 0, sizeof c);
    c.host = host;
    c.call = call;
    c.req = req;
    llm_answer a;
    memset(&a, 0, sizeof a);
    wfh_buf errs = {0};                 /* "; "-joined failures of the targets tried */
    json_t *calls = NULL, *answer = NULL; /* owned */
    uint64_t retry_ms = 0;
    int status = llm_parse_inputs(&c);
    if (status != 0)
        goto done;
    errs.limit = 900;

    uint64_t start = wfh_net_now_ms(), deadline = start + c.lim.timeout_ms;
    int64_t est_in = estimate_input_tokens(&c);
    size_t answered = 0;
    status = WFH_STEP_FAILED;
    for (size_t i = 0; i < c.ntargets; i++) {
        const llm_target *t = &c.targets[i];
        llm_query q = c.q;
        char why[700];

        /* Budget: refuse before sending what cannot fit; cap the answer to what is left. */
        int64_t left = INT64_MAX;
        const char *which = NULL;
        if (c.budget_step) {
            left = (int64_t)c.budget_step - c.step_spent;
            which = "step";
        }
        if (c.budget_run) {
            int64_t spent = run_budget_update(c.budget_path, 0);
            if (spent < 0) {
                wfh_net_errorf(host, call, "llm: token budget file %s: %s", c.budget_path,
                               strerror(errno));
                status = WFH_STEP_FAILED;
                goto done;
            }
            if ((int64_t)c.budget_run - spent < left) {
                left = (int64_t)c.budget_run - spent;
                which = "run";
            }
        }
        if (which) {
            int64_t need = est_in + (int64_t)q.max_tokens + (q.max_tokens ? 0 : 1);
            if (need > left) {
                wfh_net_errorf(host, call, "llm: %s %s: token budget refused the request: it "
                               "needs about %lld tokens (input estimate %lld + max_tokens %llu) "
                               "and the %s budget has %lld left",
                               t->provider, t->model, (long long)need, (long long)est_in,
                               (unsigned long long)q.max_tokens, which,
                               (long long)(left > 0 ? left : 0));
                status = WFH_STEP_PERMANENT;
                goto done;
            }
            if (!q.max_tokens)
                q.max_tokens = (uint64_t)(left - est_in);
        }

        wfh_buf_clear(&a.text);
        json_decref(a.tools);
        memset(&a, 0, sizeof a);
        a.tools = json_object();
        if (!a.tools) {
            wfh_net_errorf(host, call, "llm: out of memory");
            goto done;
        }
        uint64_t ra = 0;
        status = ask(&c, t, &q, deadline, &a, &ra);
        if (status == WFH_STEP_OK) {
            json_decref(calls);
            json_decref(answer);
            status = finish_answer(&c, &a, &calls, &answer);
        }
        /* Tokens were spent whether or not the answer was any good. */
        int64_t used = a.have_usage ? a.input_tokens + a.output_tokens
                                    : (status == WFH_STEP_OK || a.text.len
                                           ? est_in + (int64_t)(a.text.len + 3) / 4 : 0);
        c.step_spent += used;
        if (c.budget_run && used > 0 && run_budget_update(c.budget_path, used) < 0) {
            wfh_net_errorf(host, call, "llm: token budget file %s: %s", c.budget_path,
                           strerror(errno));
            status = WFH_STEP_FAILED;
            goto done;
        }
        if (status == WFH_STEP_OK) {
            answered = i;
            break;
        }
        retry_ms = ra;
        snprintf(why, sizeof why, "%s%s %s: %s", errs.len ? "; then " : "", t->provider,
                 t->model, a.err);
        wfh_buf_append(&errs, why, strlen(why));
        if (status == WFH_STEP_CANCELLED)
            break;
        int passing = status == WFH_STEP_TRANSIENT || status == WFH_STEP_TIMEOUT;
        if (!passing || i + 1 == c.ntargets)
            break;
        char msg[900];
        int n = snprintf(msg, sizeof msg, "llm: %s %s failed (%s); falling back to %s %s",
                         t->provider, t->model, a.err, c.targets[i + 1].provider,
                         c.targets[i + 1].model);
        host->log(call, WFH_LOG_WARN, msg, (size_t)(n < (int)sizeof msg ? n : (int)sizeof msg - 1));
    }
    if (status != WFH_STEP_OK) {
        wfh_net_errorf(host, call, "llm: %s", errs.data ? errs.data : "failed");
        if (retry_ms && status == WFH_STEP_TRANSIENT)
            host->set_retry_after(call, retry_ms);
        goto done;
    }

    const llm_target *used_t = &c.targets[answered];
    int bad = 0;
    bad |= set_out(&c, "text", json_stringn(a.text.data ? a.text.data : "", a.text.len));
    if (answer)
        bad |= set_out(&c, "json", json_incref(answer));
    bad |= set_out(&c, "tool_calls", json_incref(calls));
    bad |= set_out(&c, "usage", json_pack("{s:I, s:I}", "input_tokens", (json_int_t)a.input_tokens,
                                          "output_tokens", (json_int_t)a.output_tokens));
    bad |= set_out(&c, "model", json_string(a.model[0] ? a.model : used_t->model));
    bad |= set_out(&c, "provider", json_string(used_t->provider));
    /* Gemini says STOP even when it calls a function; the calls are what matter. */
    const char *finish = json_array_size(calls) && (!a.finish[0] || strcmp(a.finish, "stop") == 0)
                             ? "tool_calls" : a.finish[0] ? a.finish : "stop";
    bad |= set_out(&c, "finish_reason", json_string(finish));
    bad |= set_out(&c, "latency_ms", json_integer((json_int_t)(wfh_net_now_ms() - start)));
    if (bad) {
        wfh_net_errorf(host, call, "llm: the host refused an output (too large?)");
        status = WFH_STEP_FAILED;
    }
done:
    wfh_buf_clear(&a.text);
    json_decref(a.tools);
    json_decref(calls);
    json_decref(answer);
    wfh_buf_clear(&errs);
    json_decref(c.q.stop);
    wfh_net_grant_clear(&c.grant);
    json_decref(c.in);
    return status;
}

static const wfh_step_type llm_types[] = {{
    sizeof(wfh_step_type), "llm",
    "ask a language model (OpenAI-compatible, Anthropic, Gemini) for text, JSON or tool calls",
    llm_schema, llm_outputs, "{\"network\":true}", llm_run,
}};

static const wfh_plugin llm_plugin = {
    WFH_PLUGIN_INIT, 1, sizeof(wfh_step_type), "llm", "0.1.0",
    "language model steps with fallback, budgets and validated JSON answers", llm_types, NULL,
};

WFH_PLUGIN_EXPORT const wfh_plugin *wfh_plugin_entry_v1(void)
{
    return &llm_plugin;
}
