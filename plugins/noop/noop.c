/*
 * plugins/noop/noop.c - the `noop` step type: does no work and succeeds.
 *
 * What a workflow of noop steps costs is what wfhost itself costs per step: the
 * scheduler, the run store's state changes, and one step runner (spawn, confinement,
 * loading this plugin). bench/run.sh times it against the same engine running `true`
 * through the shell plugin. With `echo`, the step sets output `echo` to that string,
 * so a test can see that the attempt really ran; nothing else is read or written.
 * Built against include/wfhost alone and links nothing, like the smallest third-party
 * plugin could.
 */
#include <string.h>

#include <wfhost/plugin.h>

/* Finds the string member "echo" in the JSON object @p json (already checked against
 * the input schema by the host, so it is an object whose only member may be "echo"
 * with a string value) and sets it as output "echo", escapes kept as they are (a JSON
 * string's text is a valid JSON value). Returns 0, or -1 if the host refused it. */
static int32_t echo_output(const wfh_host_api *h, wfh_call *call, const char *json, size_t len)
{
    static const char key[] = "\"echo\"";
    const char *end = json + len;
    const char *p = json;
    /* The only key the schema allows is "echo"; a string value cannot contain an
     * unescaped quote, so the first "echo" followed by ':' is the key. */
    while ((p = memchr(p, '"', (size_t)(end - p))) != NULL) {
        if ((size_t)(end - p) >= sizeof key - 1 && memcmp(p, key, sizeof key - 1) == 0) {
            const char *v = p + sizeof key - 1;
            while (v < end && (*v == ' ' || *v == '\t' || *v == '\n' || *v == '\r' || *v == ':'))
                v++;
            if (v >= end || *v != '"')
                return -1;
            const char *q = v + 1;
            while (q < end && *q != '"')
                q += (*q == '\\' && q + 1 < end) ? 2 : 1;
            if (q >= end)
                return -1;
            return h->set_output(call, "echo", v, (size_t)(q + 1 - v));
        }
        p++;
    }
    return 0; /* no echo asked for */
}

static int32_t run_noop(const wfh_host_api *h, wfh_call *call, const wfh_step_request *req)
{
    if (req->inputs_json && echo_output(h, call, req->inputs_json, req->inputs_len) < 0) {
        static const char msg[] = "noop: could not set output 'echo'";
        h->set_error(call, msg, sizeof msg - 1);
        return WFH_STEP_FAILED;
    }
    return WFH_STEP_OK;
}

static const wfh_step_type types[] = {{
    sizeof(wfh_step_type),
    "noop",
    "do nothing and succeed (for benchmarks and tests of the engine itself)",
    "{\"type\":\"object\",\"additionalProperties\":false,"
    "\"properties\":{\"echo\":{\"type\":\"string\","
    "\"description\":\"if set, becomes output `echo`\"}}}",
    "{\"echo\":\"the `echo` input, if it was given\"}",
    "{}",
    run_noop,
}};

static const wfh_plugin plugin = {
    WFH_PLUGIN_INIT,
    1,
    sizeof(wfh_step_type),
    "noop",
    "1.0.0",
    "a step type that does nothing, to measure the engine",
    types,
    NULL,
};

WFH_PLUGIN_EXPORT const wfh_plugin *wfh_plugin_entry_v1(void)
{
    return &plugin;
}
