/*
 * tests/fuzz/fuzz_workflow.c - libFuzzer target for the whole front end: YAML bytes ->
 * ydoc -> workflow loader -> validator (with a hand-built catalog so input schemas are
 * checked too) -> value evaluation. Any crash, leak or UB is a bug; diagnostics are
 * the expected outcome for garbage.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "workflow.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char schema_text[] =
    "{\"type\":\"object\",\"additionalProperties\":false,"
    " \"properties\":{\"run\":{\"type\":\"string\",\"minLength\":1,\"pattern\":\"^[^\\u0001]*$\"},"
    "  \"argv\":{\"type\":\"array\",\"items\":{\"type\":\"string\"},\"minItems\":1},"
    "  \"n\":{\"type\":[\"integer\",\"null\"],\"minimum\":0,\"maximum\":9},"
    "  \"mode\":{\"enum\":[\"a\",\"b\"]},"
    "  \"env\":{\"type\":\"object\",\"additionalProperties\":{\"type\":\"string\"}}},"
    " \"anyOf\":[{\"required\":[\"run\"]},{\"required\":[\"argv\"]}]}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    wfh_type_meta type;
    wfh_plugin_meta plugin;
    wfh_catalog cat;
    memset(&type, 0, sizeof type);
    memset(&plugin, 0, sizeof plugin);
    memset(&cat, 0, sizeof cat);
    type.name = "shell";
    type.input_schema = json_loads(schema_text, 0, NULL);
    type.plugin = &plugin;
    plugin.name = "shell";
    plugin.version = "1.0.0";
    plugin.version_major = 1;
    plugin.types = &type;
    plugin.n_types = 1;
    cat.plugins = &plugin;
    cat.n_plugins = 1;

    wfh_diags d;
    wfh_diags_init(&d, "fuzz.yaml", NULL, 0);
    wfh_workflow *wf = NULL;
    wfh_workflow_parse("fuzz.yaml", (const char *)data, size, &wf, &d);
    if (wf) {
        wfh_workflow_validate(wf, &cat, &d);
        json_t *ctx = json_pack("{s:{}, s:{s:s}}", "steps", "env", "A", "x");
        wfh_expr_env env;
        memset(&env, 0, sizeof env);
        env.contexts = ctx;
        char err[256];
        for (size_t i = 0; i < wf->n_steps; i++) {
            json_t *out = NULL;
            if (wfh_value_eval(wf->steps[i].with, &env, &out, err, sizeof err) == 0)
                json_decref(out);
        }
        json_decref(ctx);
    }
    /* printing exercises the caret lines over arbitrary bytes */
    FILE *null = fopen("/dev/null", "w");
    if (null) {
        wfh_diags_print(&d, null);
        fclose(null);
    }
    wfh_diags_free(&d);
    wfh_workflow_free(wf);
    json_decref(type.input_schema);
    return 0;
}
