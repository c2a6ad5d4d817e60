/*
 * plugins/llm/providers.c - the three wire formats the llm step speaks: OpenAI chat
 * completions (also Ollama, vLLM, llama.cpp server and LM Studio through base_url),
 * Anthropic Messages and Google Gemini generateContent. Each turns the provider-neutral
 * llm_query into a request and folds responses or stream events into an llm_answer, so
 * llm.c never looks at a provider's JSON.
 */
#include "llm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ANTHROPIC_VERSION "2023-06-01"
#define ANTHROPIC_DEFAULT_MAX_TOKENS 1024

int llm_provider_known(const char *name)
{
    return strcmp(name, "openai") == 0 || strcmp(name, "anthropic") == 0 ||
           strcmp(name, "gemini") == 0;
}

static const char *default_base(const char *provider)
{
    if (strcmp(provider, "anthropic") == 0)
        return "https://api.anthropic.com/v1";
    if (strcmp(provider, "gemini") == 0)
        return "https://generativelanguage.googleapis.com/v1beta";
    return "https://api.openai.com/v1";
}

int llm_answer_tool(llm_answer *a, const char *idx, const char *id, const char *name,
                    const char *args, size_t args_len)
{
    json_t *tc = json_object_get(a->tools, idx); /* borrowed */
    if (!tc) {
        tc = json_pack("{s:s, s:s, s:s}", "id", "", "name", "", "args", "");
        if (!tc || json_object_set_new(a->tools, idx, tc) < 0)
            return -1;
    }
    if (id && *id)
        json_object_set_new(tc, "id", json_string(id));
    if (name && *name)
        json_object_set_new(tc, "name", json_string(name));
    if (args && args_len) {
        const json_t *old = json_object_get(tc, "args");
        wfh_buf b = {0};
        if (wfh_buf_append(&b, json_string_value(old), json_string_length(old)) < 0 ||
            wfh_buf_append(&b, args, args_len) < 0) {
            wfh_buf_clear(&b);
            return -1;
        }
        json_object_set_new(tc, "args", json_stringn(b.data, b.len));
        wfh_buf_clear(&b);
    }
    return 0;
}

/* Tool arguments that arrive as an object (Anthropic, Gemini) are kept as text too, so
 * that every provider's calls are finished the same way in llm.c. */
static int tool_from_object(llm_answer *a, const char *idx, const char *id, const char *name,
                            const json_t *args)
{
    char *text = args ? json_dumps(args, JSON_COMPACT) : strdup("{}"); /* owned */
    int rc = text ? llm_answer_tool(a, idx, id, name, text, strlen(text)) : -1;
    free(text);
    return rc;
}

static void set_finish(llm_answer *a, const char *raw)
{
    static const char *const map[][2] = {
        {"stop", "stop"},           {"end_turn", "stop"},         {"stop_sequence", "stop"},
        {"STOP", "stop"},           {"length", "length"},         {"max_tokens", "length"},
        {"MAX_TOKENS", "length"},   {"tool_calls", "tool_calls"}, {"function_call", "tool_calls"},
        {"tool_use", "tool_calls"}, {"content_filter", "content_filter"},
        {"SAFETY", "content_filter"}, {"RECITATION", "content_filter"},
        {"refusal", "content_filter"}, {"PROHIBITED_CONTENT", "content_filter"},
    };
    if (!raw || !*raw)
        return;
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(map[i][0], raw) == 0) {
            snprintf(a->finish, sizeof a->finish, "%s", map[i][1]);
            return;
        }
    snprintf(a->finish, sizeof a->finish, "%s", raw);
}

static void set_model(llm_answer *a, const json_t *m)
{
    if (json_is_string(m) && *json_string_value(m))
        snprintf(a->model, sizeof a->model, "%s", json_string_value(m));
}

static int add_text(llm_answer *a, const json_t *t)
{
    if (!json_is_string(t))
        return 0;
    if (wfh_buf_append(&a->text, json_string_value(t), json_string_length(t)) < 0) {
        snprintf(a->err, sizeof a->err, "answer larger than the plugin's text limit");
        return -1;
    }
    return 0;
}

static int64_t int_of(const json_t *v)
{
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

/* ---- building requests ---------------------------------------------------------- */

/* The system text: the step's `system`, system-role messages, and for json mode the
 * instruction to answer with JSON (providers without a native schema mode rely on it,
 * and OpenAI's json_object mode insists that the word JSON appears). */
static int system_text(const llm_query *q, wfh_buf *out)
{
    if (q->system && wfh_buf_append(out, q->system, strlen(q->system)) < 0)
        return -1;
    size_t i;
    json_t *m;
    json_array_foreach((json_t *)q->messages, i, m) {
        const char *role = json_string_value(json_object_get(m, "role"));
        const json_t *c = json_object_get(m, "content");
        if (role && strcmp(role, "system") == 0) {
            if ((out->len && wfh_buf_append(out, "\n\n", 2) < 0) ||
                wfh_buf_append(out, json_string_value(c), json_string_length(c)) < 0)
                return -1;
        }
    }
    if (q->json_mode) {
        static const char hint[] = "Answer with a single JSON value and nothing else.";
        if ((out->len && wfh_buf_append(out, "\n\n", 2) < 0) ||
            wfh_buf_append(out, hint, sizeof hint - 1) < 0)
            return -1;
        if (q->schema) {
            char *s = json_dumps(q->schema, JSON_COMPACT | JSON_ENCODE_ANY); /* owned */
            static const char pre[] = " It must conform to this JSON Schema: ";
            int rc = !s || wfh_buf_append(out, pre, sizeof pre - 1) < 0 ||
                     wfh_buf_append(out, s, strlen(s)) < 0;
            free(s);
            if (rc)
                return -1;
        }
    }
    return wfh_buf_append(out, "", 0);
}

/* [{role, content}] without system messages, roles mapped by @p assistant_name. */
static json_t *turns(const llm_query *q, int gemini)
{
    json_t *arr = json_array(); /* owned, returned */
    if (!arr)
        return NULL;
    if (q->prompt) {
        json_t *m = gemini ? json_pack("{s:s, s:[{s:s}]}", "role", "user", "parts", "text", q->prompt)
                           : json_pack("{s:s, s:s}", "role", "user", "content", q->prompt);
        if (json_array_append_new(arr, m) < 0)
            goto oom;
    }
    size_t i;
    json_t *msg;
    json_array_foreach((json_t *)q->messages, i, msg) {
        const char *role = json_string_value(json_object_get(msg, "role"));
        const char *content = json_string_value(json_object_get(msg, "content"));
        if (strcmp(role, "system") == 0)
            continue;
        json_t *m = gemini ? json_pack("{s:s, s:[{s:s}]}", "role",
                                       strcmp(role, "assistant") == 0 ? "model" : "user",
                                       "parts", "text", content)
                           : json_pack("{s:s, s:s}", "role", role, "content", content);
        if (json_array_append_new(arr, m) < 0)
            goto oom;
    }
    return arr;
oom:
    json_decref(arr);
    return NULL;
}

static int add_header(struct curl_slist **hdrs, const char *fmt, const char *val)
{
    char *line = NULL; /* owned */
    if (asprintf(&line, fmt, val) < 0)
        return -1;
    struct curl_slist *t = curl_slist_append(*hdrs, line);
    free(line);
    if (!t)
        return -1;
    *hdrs = t;
    return 0;
}

/* The step's tools as a provider declares them: {name, description, <params_key>:
 * parameters}, with an empty object schema when a tool has none and @p need_params
 * (OpenAI, Anthropic insist; Gemini takes none), each wrapped in {type: function,
 * function: ...} for OpenAI (@p openai). New reference (NULL: out of memory). */
static json_t *tool_decls(const llm_query *q, const char *params_key, int need_params,
                          int openai)
{
    json_t *tl = json_array(); /* owned until returned */
    size_t i;
    json_t *tool;
    json_array_foreach((json_t *)q->tools, i, tool) {
        json_t *x = json_pack("{s:O}", "name", json_object_get(tool, "name")); /* owned */
        const json_t *desc = json_object_get(tool, "description"),
                     *params = json_object_get(tool, "parameters");
        if (!x)
            continue;
        if (desc)
            json_object_set(x, "description", (json_t *)desc);
        if (params)
            json_object_set(x, params_key, (json_t *)params);
        else if (need_params)
            json_object_set_new(x, params_key, json_pack("{s:s}", "type", "object"));
        json_array_append_new(tl, openai ? json_pack("{s:s, s:o}", "type", "function", "function", x) : x);
    }
    return tl;
}

static json_t *build_openai(const llm_target *t, const llm_query *q, const char *sys)
{
    json_t *b = json_object(), *msgs = turns(q, 0), *v; /* owned */
    if (!b || !msgs)
        goto oom;
    if (*sys && json_array_insert_new(msgs, 0, json_pack("{s:s, s:s}", "role", "system",
                                                        "content", sys)) < 0)
        goto oom;
    json_object_set_new(b, "model", json_string(t->model));
    json_object_set_new(b, "messages", msgs);
    msgs = NULL;
    if (q->has_temperature)
        json_object_set_new(b, "temperature", json_real(q->temperature));
    if (q->max_tokens)
        json_object_set_new(b, "max_tokens", json_integer((json_int_t)q->max_tokens));
    if (q->stop)
        json_object_set(b, "stop", q->stop);
    if (q->json_mode) {
        /* json_schema mode takes an object schema; true/false say nothing it can use. */
        v = json_is_object(q->schema) ? json_pack("{s:s, s:{s:s, s:O}}", "type", "json_schema", "json_schema",
                                  "name", "answer", "schema", q->schema)
                      : json_pack("{s:s}", "type", "json_object");
        json_object_set_new(b, "response_format", v);
    }
    if (q->tools)
        json_object_set_new(b, "tools", tool_decls(q, "parameters", 1, 1));
    if (q->stream) {
        json_object_set_new(b, "stream", json_true());
        /* Without this OpenAI sends no usage in a stream, and the budget needs it. */
        json_object_set_new(b, "stream_options", json_pack("{s:b}", "include_usage", 1));
    }
    return b;
oom:
    json_decref(b);
    json_decref(msgs);
    return NULL;
}

static json_t *build_anthropic(const llm_target *t, const llm_query *q, const char *sys)
{
    json_t *b = json_object(), *msgs = turns(q, 0); /* owned */
    if (!b || !msgs) {
        json_decref(b);
        json_decref(msgs);
        return NULL;
    }
    json_object_set_new(b, "model", json_string(t->model));
    json_object_set_new(b, "max_tokens", json_integer(q->max_tokens ? (json_int_t)q->max_tokens
                                                                    : ANTHROPIC_DEFAULT_MAX_TOKENS));
    if (*sys)
        json_object_set_new(b, "system", json_string(sys));
    json_object_set_new(b, "messages", msgs);
    if (q->has_temperature)
        json_object_set_new(b, "temperature", json_real(q->temperature));
    if (q->stop)
        json_object_set(b, "stop_sequences", q->stop);
    if (q->tools)
        json_object_set_new(b, "tools", tool_decls(q, "input_schema", 1, 0));
    if (q->stream)
        json_object_set_new(b, "stream", json_true());
    return b;
}

static json_t *build_gemini(const llm_query *q, const char *sys)
{
    json_t *b = json_object(), *contents = turns(q, 1), *gc = json_object(); /* owned */
    if (!b || !contents || !gc) {
        json_decref(b);
        json_decref(contents);
        json_decref(gc);
        return NULL;
    }
    json_object_set_new(b, "contents", contents);
    if (*sys)
        json_object_set_new(b, "systemInstruction", json_pack("{s:[{s:s}]}", "parts", "text", sys));
    if (q->has_temperature)
        json_object_set_new(gc, "temperature", json_real(q->temperature));
    if (q->max_tokens)
        json_object_set_new(gc, "maxOutputTokens", json_integer((json_int_t)q->max_tokens));
    if (q->stop)
        json_object_set(gc, "stopSequences", q->stop);
    if (q->json_mode)
        json_object_set_new(gc, "responseMimeType", json_string("application/json"));
    json_object_set_new(b, "generationConfig", gc);
    if (q->tools)
        json_object_set_new(b, "tools", json_pack("[{s:o}]", "functionDeclarations",
                                                  tool_decls(q, "parameters", 0, 0)));
    return b;
}

int llm_provider_build(const llm_target *t, const llm_query *q, char **url, char **body,
                       struct curl_slist **hdrs, char *err, size_t errlen)
{
    int rc = -1;
    wfh_buf sys = {0};
    json_t *b = NULL; /* owned */
    const char *base = t->base_url ? t->base_url : default_base(t->provider);
    size_t bl = strlen(base);
    while (bl && base[bl - 1] == '/')
        bl--;
    *url = NULL;
    *body = NULL;
    if (system_text(q, &sys) < 0)
        goto oom;
    if (strcmp(t->provider, "openai") == 0) {
        b = build_openai(t, q, sys.data);
        if (asprintf(url, "%.*s/chat/completions", (int)bl, base) < 0)
            goto oom;
        if (t->api_key && add_header(hdrs, "Authorization: Bearer %s", t->api_key) < 0)
            goto oom;
    } else if (strcmp(t->provider, "anthropic") == 0) {
        b = build_anthropic(t, q, sys.data);
        if (asprintf(url, "%.*s/messages", (int)bl, base) < 0)
            goto oom;
        if ((t->api_key && add_header(hdrs, "x-api-key: %s", t->api_key) < 0) ||
            add_header(hdrs, "anthropic-version: %s", ANTHROPIC_VERSION) < 0)
            goto oom;
    } else {
        b = build_gemini(q, sys.data);
        if (asprintf(url, q->stream ? "%.*s/models/%s:streamGenerateContent?alt=sse"
                                    : "%.*s/models/%s:generateContent",
                     (int)bl, base, t->model) < 0)
            goto oom;
        if (t->api_key && add_header(hdrs, "x-goog-api-key: %s", t->api_key) < 0)
            goto oom;
    }
    if (!b || add_header(hdrs, "Content-Type: %s", "application/json") < 0 ||
        add_header(hdrs, "Accept: %s", q->stream ? "text/event-stream, application/json"
                                                 : "application/json") < 0)
        goto oom;
    *body = json_dumps(b, JSON_COMPACT | JSON_REAL_PRECISION(6));
    if (!*body)
        goto oom;
    rc = 0;
    goto done;
oom:
    snprintf(err, errlen, "out of memory building the %s request", t->provider);
    free(*url);
    *url = NULL;
done:
    json_decref(b);
    wfh_buf_clear(&sys);
    return rc;
}

/* ---- parsing answers ------------------------------------------------------------ */

static int parse_openai_message(const json_t *choice, const json_t *msg, llm_answer *a)
{
    if (add_text(a, json_object_get(msg, "content")) < 0)
        return -1;
    size_t i;
    json_t *tc;
    json_array_foreach(json_object_get(msg, "tool_calls"), i, tc) {
        char idx[32];
        const json_t *fn = json_object_get(tc, "function");
        const json_t *args = json_object_get(fn, "arguments");
        const json_t *ji = json_object_get(tc, "index");
        snprintf(idx, sizeof idx, "%lld", (long long)(json_is_integer(ji) ? json_integer_value(ji)
                                                                         : (json_int_t)i));
        if (llm_answer_tool(a, idx, json_string_value(json_object_get(tc, "id")),
                            json_string_value(json_object_get(fn, "name")),
                            json_string_value(args), json_string_length(args)) < 0)
            return -1;
    }
    set_finish(a, json_string_value(json_object_get(choice, "finish_reason")));
    return 0;
}

/* A provider's usage object @p u (if it is one), with its names for the two counts. */
static void set_usage(const json_t *u, const char *in_key, const char *out_key, llm_answer *a)
{
    if (json_is_object(u)) {
        a->input_tokens = int_of(json_object_get(u, in_key));
        a->output_tokens = int_of(json_object_get(u, out_key));
        a->have_usage = 1;
    }
}

static void usage_openai(const json_t *u, llm_answer *a)
{
    set_usage(u, "prompt_tokens", "completion_tokens", a);
}

/* An error event in a stream: fails the answer with the provider's message. */
static int stream_error(const json_t *d, llm_answer *a)
{
    const char *msg = llm_provider_error_message(d);
    snprintf(a->err, sizeof a->err, "stream error: %s", msg ? msg : "?");
    a->failed = 1;
    return -1;
}

static int parse_anthropic_block(const json_t *blk, size_t i, llm_answer *a)
{
    const char *type = json_string_value(json_object_get(blk, "type"));
    if (!type)
        return 0;
    if (strcmp(type, "text") == 0)
        return add_text(a, json_object_get(blk, "text"));
    if (strcmp(type, "tool_use") == 0) {
        char idx[32];
        snprintf(idx, sizeof idx, "%zu", i);
        const json_t *in = json_object_get(blk, "input");
        /* A streamed tool_use starts with input {} and then sends the JSON in pieces. */
        if (json_is_object(in) && json_object_size(in) == 0)
            return llm_answer_tool(a, idx, json_string_value(json_object_get(blk, "id")),
                                   json_string_value(json_object_get(blk, "name")), NULL, 0);
        return tool_from_object(a, idx, json_string_value(json_object_get(blk, "id")),
                                json_string_value(json_object_get(blk, "name")), in);
    }
    return 0;
}

static int parse_gemini_chunk(const json_t *r, llm_answer *a)
{
    const json_t *cand = json_array_get(json_object_get(r, "candidates"), 0);
    const json_t *um = json_object_get(r, "usageMetadata");
    set_model(a, json_object_get(r, "modelVersion"));
    set_usage(um, "promptTokenCount", "candidatesTokenCount", a);
    if (!cand) {
        const char *block = json_string_value(
            json_object_get(json_object_get(r, "promptFeedback"), "blockReason"));
        if (block) {
            snprintf(a->finish, sizeof a->finish, "content_filter");
            a->done = 1;
        }
        return 0;
    }
    size_t i;
    json_t *part;
    json_array_foreach(json_object_get(json_object_get(cand, "content"), "parts"), i, part) {
        const json_t *fc = json_object_get(part, "functionCall");
        if (fc) {
            char idx[32];
            snprintf(idx, sizeof idx, "%zu", json_object_size(a->tools));
            if (tool_from_object(a, idx, json_string_value(json_object_get(fc, "id")),
                                 json_string_value(json_object_get(fc, "name")),
                                 json_object_get(fc, "args")) < 0)
                return -1;
        } else if (!json_is_true(json_object_get(part, "thought")) &&
                   add_text(a, json_object_get(part, "text")) < 0) {
            return -1;
        }
    }
    const char *fr = json_string_value(json_object_get(cand, "finishReason"));
    if (fr) {
        set_finish(a, fr);
        a->done = 1;
    }
    return 0;
}

int llm_provider_parse(const llm_target *t, const json_t *r, llm_answer *a)
{
    if (!json_is_object(r)) {
        snprintf(a->err, sizeof a->err, "%s answered with JSON that is not an object", t->provider);
        return -1;
    }
    if (strcmp(t->provider, "openai") == 0) {
        const json_t *choice = json_array_get(json_object_get(r, "choices"), 0);
        const json_t *msg = json_object_get(choice, "message");
        if (!json_is_object(msg)) {
            snprintf(a->err, sizeof a->err, "openai answer has no choices[0].message");
            return -1;
        }
        set_model(a, json_object_get(r, "model"));
        usage_openai(json_object_get(r, "usage"), a);
        a->done = 1;
        return parse_openai_message(choice, msg, a);
    }
    if (strcmp(t->provider, "anthropic") == 0) {
        const json_t *content = json_object_get(r, "content");
        const json_t *u = json_object_get(r, "usage");
        if (!json_is_array(content)) {
            snprintf(a->err, sizeof a->err, "anthropic answer has no content list");
            return -1;
        }
        set_model(a, json_object_get(r, "model"));
        set_usage(u, "input_tokens", "output_tokens", a);
        size_t i;
        json_t *blk;
        json_array_foreach(content, i, blk) {
            if (parse_anthropic_block(blk, i, a) < 0)
                return -1;
        }
        set_finish(a, json_string_value(json_object_get(r, "stop_reason")));
        a->done = 1;
        return 0;
    }
    if (!json_object_get(r, "candidates") && !json_object_get(r, "promptFeedback")) {
        snprintf(a->err, sizeof a->err, "gemini answer has no candidates");
        return -1;
    }
    if (parse_gemini_chunk(r, a) < 0)
        return -1;
    a->done = 1;
    return 0;
}

int llm_provider_event(const llm_target *t, const char *event, const json_t *d, llm_answer *a)
{
    if (strcmp(t->provider, "openai") == 0) {
        if (json_object_get(d, "error"))
            return stream_error(d, a);
        set_model(a, json_object_get(d, "model"));
        usage_openai(json_object_get(d, "usage"), a);
        /* A chunk's delta has the shape of a whole answer's message, in pieces. */
        const json_t *choice = json_array_get(json_object_get(d, "choices"), 0);
        return parse_openai_message(choice, json_object_get(choice, "delta"), a);
    }
    if (strcmp(t->provider, "anthropic") == 0) {
        const char *type = json_string_value(json_object_get(d, "type"));
        if (!type)
            type = event;
        if (strcmp(type, "message_start") == 0) {
            const json_t *m = json_object_get(d, "message");
            const json_t *u = json_object_get(m, "usage");
            set_model(a, json_object_get(m, "model"));
            set_usage(u, "input_tokens", "output_tokens", a);
        } else if (strcmp(type, "content_block_start") == 0) {
            const json_t *ji = json_object_get(d, "index");
            return parse_anthropic_block(json_object_get(d, "content_block"),
                                         (size_t)int_of(ji), a);
        } else if (strcmp(type, "content_block_delta") == 0) {
            const json_t *delta = json_object_get(d, "delta");
            const char *dt = json_string_value(json_object_get(delta, "type"));
            if (dt && strcmp(dt, "text_delta") == 0)
                return add_text(a, json_object_get(delta, "text"));
            if (dt && strcmp(dt, "input_json_delta") == 0) {
                char idx[32];
                const json_t *pj = json_object_get(delta, "partial_json");
                snprintf(idx, sizeof idx, "%lld", (long long)int_of(json_object_get(d, "index")));
                return llm_answer_tool(a, idx, NULL, NULL, json_string_value(pj),
                                       json_string_length(pj));
            }
        } else if (strcmp(type, "message_delta") == 0) {
            const json_t *u = json_object_get(d, "usage");
            set_finish(a, json_string_value(json_object_get(json_object_get(d, "delta"),
                                                            "stop_reason")));
            if (json_is_object(u) && json_object_get(u, "output_tokens")) {
                a->output_tokens = int_of(json_object_get(u, "output_tokens"));
                a->have_usage = 1;
            }
        } else if (strcmp(type, "message_stop") == 0) {
            a->done = 1;
        } else if (strcmp(type, "error") == 0) {
            return stream_error(d, a);
        }
        return 0;
    }
    if (json_object_get(d, "error"))
        return stream_error(d, a);
    return parse_gemini_chunk(d, a);
}

const char *llm_provider_error_message(const json_t *body)
{
    const json_t *e = json_object_get(body, "error");
    if (json_is_string(e))
        return json_string_value(e);
    const json_t *m = json_object_get(e, "message");
    if (json_is_string(m))
        return json_string_value(m);
    return json_string_value(json_object_get(body, "message"));
}
