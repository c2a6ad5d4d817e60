/*
 * sdktemplate.c - the `sdktemplate` step type: a wfhost plugin made from the SDK
 * template (`wfhost plugin new NAME` copies this directory and renames it).
 *
 * What a plugin is: one shared object that exports one symbol, wfh_plugin_entry_v1,
 * returning a static descriptor (wfh_plugin) that lists the step types. Each step
 * type declares an input JSON Schema (the host checks a workflow's `with:` against
 * it before anything runs), its outputs, and the capabilities it needs from the
 * sandbox; its run function does one attempt and returns a wfh_step_status. The
 * plugin runs in a sandboxed child process (wfhost-runner), never in the host.
 * docs/plugin-authoring.md is the tutorial; include/wfhost/plugin.h the reference.
 *
 * This step greets someone: inputs {name, greeting?, times?}, outputs {message,
 * length}. Replace run_greet and the schema with your own work.
 */
#include <stdio.h>
#include <string.h>

#include <wfhost/plugin.h>

#include "json_in.h"

#define NAME_MAX_LEN 200

/* The input schema: the host validates `with:` against it, `wfhost plugin info`
 * shows it, and `wfhost plugin check` generates test inputs from it. */
static const char input_schema[] =
    "{\"type\": \"object\","
    " \"properties\": {"
    "   \"name\": {\"type\": \"string\", \"minLength\": 1, \"maxLength\": 200,"
    "              \"description\": \"who to greet\"},"
    "   \"greeting\": {\"type\": \"string\", \"maxLength\": 40, \"default\": \"Hello\"},"
    "   \"times\": {\"type\": \"integer\", \"minimum\": 1, \"maximum\": 20, \"default\": 1}"
    " },"
    " \"required\": [\"name\"],"
    " \"additionalProperties\": false}";

static const char outputs[] = "{\"message\": \"the greeting, repeated `times` times\","
                              " \"length\": \"length of message in bytes\"}";

typedef struct greet_inputs {
    char name[NAME_MAX_LEN * 4 + 1]; /* UTF-8: up to 4 bytes a code point */
    char greeting[161];
    long long times;
} greet_inputs;

/* Report a failure: the message is one line that says what to fix. */
static int32_t fail(const wfh_host_api *host, wfh_call *call, int32_t status, const char *msg)
{
    host->set_error(call, msg, strlen(msg));
    return status;
}

static int check_member(void *ud, const char *key, const jin_val *v)
{
    (void)v;
    char *unknown = ud;
    if (strcmp(key, "name") && strcmp(key, "greeting") && strcmp(key, "times")) {
        snprintf(unknown, 128, "%s", key);
        return 1;
    }
    return 0;
}

/* Read and check the inputs. The host has checked them against the schema already,
 * but do not rely on it: an invalid input is WFH_STEP_INVALID_INPUT, never a crash. */
static int32_t read_inputs(const wfh_host_api *host, wfh_call *call, const wfh_step_request *req,
                           greet_inputs *in)
{
    jin_val obj, v;
    char unknown[128];
    if (jin_parse(req->inputs_json, req->inputs_len, &obj) < 0 || obj.type != JIN_OBJECT)
        return fail(host, call, WFH_STEP_INVALID_INPUT, "inputs: expected a JSON object");
    if (jin_each(&obj, check_member, unknown) == 1) {
        char msg[200];
        snprintf(msg, sizeof msg, "with.%s: unknown input (expected name, greeting, times)",
                 unknown);
        return fail(host, call, WFH_STEP_INVALID_INPUT, msg);
    }
    if (jin_get(&obj, "name", &v) != 1)
        return fail(host, call, WFH_STEP_INVALID_INPUT, "with.name: required");
    long n = jin_string(&v, in->name, sizeof in->name);
    if (n < 1 || n > NAME_MAX_LEN * 4)
        return fail(host, call, WFH_STEP_INVALID_INPUT,
                    "with.name: expected a non-empty string of at most 200 characters");
    snprintf(in->greeting, sizeof in->greeting, "Hello");
    if (jin_get(&obj, "greeting", &v) == 1 && jin_string(&v, in->greeting, sizeof in->greeting) < 0)
        return fail(host, call, WFH_STEP_INVALID_INPUT,
                    "with.greeting: expected a string of at most 40 characters");
    in->times = 1;
    if (jin_get(&obj, "times", &v) == 1 &&
        (jin_int(&v, &in->times) < 0 || in->times < 1 || in->times > 20))
        return fail(host, call, WFH_STEP_INVALID_INPUT,
                    "with.times: expected an integer from 1 to 20");
    return WFH_STEP_OK;
}

static int32_t run_greet(const wfh_host_api *host, wfh_call *call, const wfh_step_request *req)
{
    greet_inputs in;
    int32_t st = read_inputs(host, call, req, &in);
    if (st != WFH_STEP_OK)
        return st;

    /* A member added in ABI 1.1: check that this host set it before reading it. */
    if (WFH_REQUEST_HAS(req, grant_json)) {
        char line[300];
        int m = snprintf(line, sizeof line, "sandbox grant: %.*s",
                         (int)(req->grant_len < 250 ? req->grant_len : 250), req->grant_json);
        host->log(call, WFH_LOG_DEBUG, line, m > 0 ? (size_t)m : 0);
    }

    /* "Hello, NAME!" times times, space separated, as a JSON string. */
    char text[(NAME_MAX_LEN * 4 + 164) * 20 + 1];
    size_t off = 0;
    for (long long i = 0; i < in.times; i++) {
        if (host->is_cancelled(call))
            return fail(host, call, WFH_STEP_CANCELLED, "cancelled");
        int m = snprintf(text + off, sizeof text - off, "%s%s, %s!", i ? " " : "", in.greeting,
                         in.name);
        if (m < 0 || (size_t)m >= sizeof text - off)
            return fail(host, call, WFH_STEP_FAILED, "message too long");
        off += (size_t)m;
    }
    char json[sizeof text * 6 + 3];
    size_t jlen = 0;
    if (jin_quote(json, sizeof json, &jlen, text) < 0)
        return fail(host, call, WFH_STEP_FAILED, "message too long");
    /* set_output copies: json may live on the stack. It fails only if the name or the
     * JSON is invalid or the attempt's output budget is spent. */
    if (host->set_output(call, "message", json, jlen) != 0)
        return fail(host, call, WFH_STEP_FAILED, "could not set output 'message'");
    char num[32];
    int m = snprintf(num, sizeof num, "%zu", off);
    if (host->set_output(call, "length", num, (size_t)m) != 0)
        return fail(host, call, WFH_STEP_FAILED, "could not set output 'length'");

    char line[128];
    m = snprintf(line, sizeof line, "greeted %lld time(s)", in.times);
    host->log(call, WFH_LOG_INFO, line, (size_t)m);
    return WFH_STEP_OK;
}

static const wfh_step_type step_types[] = {{
    .struct_size = sizeof(wfh_step_type),
    .name = "sdktemplate",
    .description = "greets someone (made from the wfhost plugin template)",
    .input_schema = input_schema,
    .outputs = outputs,
    .capabilities = "{}", /* nothing: no network, no programs, no paths beyond the workspace */
    .run = run_greet,
}};

static const wfh_plugin plugin = {
    .struct_size = sizeof(wfh_plugin),
    .abi_major = WFH_ABI_MAJOR,
    /* The oldest host minor this plugin needs: 1.0, because the one 1.1 member it reads
     * (grant_json) is checked with WFH_REQUEST_HAS first. */
    .abi_minor = 0,
    .step_type_count = sizeof step_types / sizeof step_types[0],
    .step_type_size = sizeof(wfh_step_type),
    .name = "sdktemplate",
    .version = "0.1.0",
    .description = "a wfhost plugin made from the SDK template",
    .step_types = step_types,
    .init = NULL,
};

WFH_PLUGIN_EXPORT const wfh_plugin *wfh_plugin_entry_v1(void)
{
    return &plugin;
}
