/*
 * plugins/llm/llm.h - what llm.c (the step: inputs, fallback, budget, transfer) and
 * providers.c (the three wire formats) share. Plugin-private.
 */
#ifndef WFH_LLM_H
#define WFH_LLM_H

#include <curl/curl.h>
#include <jansson.h>
#include <stdint.h>

#include "netutil.h"

/* One provider to ask: all strings borrowed from the parsed inputs. */
typedef struct llm_target {
    const char *provider; /* "openai" | "anthropic" | "gemini" */
    const char *model;
    const char *base_url; /* NULL = the provider's public endpoint */
    const char *api_key;  /* NULL = none (local OpenAI-compatible servers) */
} llm_target;

/* The request as the step asked for it, provider-neutral. Borrowed from inputs. */
typedef struct llm_query {
    const char *system;      /* NULL or text */
    const char *prompt;      /* NULL when messages is given */
    const json_t *messages;  /* NULL or [{role, content}] */
    int has_temperature;
    double temperature;
    uint64_t max_tokens;     /* 0 = provider default */
    json_t *stop;            /* owned by the step: NULL or array of strings */
    int json_mode;
    const json_t *schema;    /* NULL or the answer's JSON Schema */
    const json_t *tools;     /* NULL or [{name, description, parameters}] */
    int stream;
} llm_query;

/* What came back, filled incrementally while streaming. */
typedef struct llm_answer {
    wfh_buf text;           /* the answer's text */
    json_t *tools;          /* owned: object index -> {id, name, args (string)} */
    int64_t input_tokens, output_tokens;
    int have_usage;
    char model[200];
    char finish[64];        /* normalised: stop, length, tool_calls, content_filter, ... */
    int done;               /* the stream's terminal event arrived */
    int failed;             /* an error event arrived in the stream (message in err) */
    char err[512];
} llm_answer;

/* The provider's request: @p url, @p body (owned, returned) and headers appended to
 * *hdrs (owned by the caller). @return 0 or -1 with @p err. */
int llm_provider_build(const llm_target *t, const llm_query *q, char **url, char **body,
                       struct curl_slist **hdrs, char *err, size_t errlen);

/* Parses a whole (non-streamed) response body. @return 0 or -1 with a->err set. */
int llm_provider_parse(const llm_target *t, const json_t *resp, llm_answer *a);

/* One SSE event (@p event may be ""), data already parsed. @return 0 or -1 with a->err. */
int llm_provider_event(const llm_target *t, const char *event, const json_t *data,
                       llm_answer *a);

/* The message inside a provider's error body, or NULL. Borrowed from @p body. */
const char *llm_provider_error_message(const json_t *body);

/* 1 if @p name is a provider this plugin speaks. */
int llm_provider_known(const char *name);

/* Appends a tool call being assembled: key @p idx, merging id/name and appending
 * argument text. @return 0 or -1. */
int llm_answer_tool(llm_answer *a, const char *idx, const char *id, const char *name,
                    const char *args, size_t args_len);

#endif
