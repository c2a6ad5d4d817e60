/*
 * core/cli/cmd_schema.c - `wfhost schema`: a JSON Schema (draft-07) of the workflow file.
 *
 * Editors with the YAML language server complete and check workflows against it
 * (`# yaml-language-server: $schema=wfhost.schema.json`). The file's own keys are fixed
 * here, next to the loader's lists (core/workflow.c, core/lang.c); each step type the
 * catalog offers adds its `with` input schema under an if/then on `uses`, so a step's
 * inputs are checked for the type it names. The built-in `pass` (issue #8) is always
 * there: any `with` mapping, described as built in.
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "../catalog.h"
#include "../error.h"
#include "../workflow.h"
#include "cli.h"
#include "cli_registry.h"

static void usage(FILE *out)
{
    fputs("usage: wfhost schema [--home DIR] [--no-plugins]\n\n"
          "Print a JSON Schema of workflow files on stdout, including the `with` inputs\n"
          "of every step type the signed registry's active plugins offer.\n\n"
          "options:\n"
          "      --home DIR       the wfhost home whose registry holds the plugins (default:\n"
          "                       $WFH_HOME, ...; the build tree's wfhost: build/dev-home)\n"
          "      --no-plugins     only the file's own keys (`with` is any mapping)\n"
          "  -h, --help           show this help\n",
          out);
}

#define DURATION_PATTERN "^([0-9]+(\\\\.[0-9]+)?(ms|s|m|h|d))+$|^[0-9]+(\\\\.[0-9]+)?$"

/* The parts that do not depend on plugins, as JSON text: easier to read and review
 * than the equivalent json_pack calls. */
static const char base_schema[] =
    "{"
    "\"$schema\": \"http://json-schema.org/draft-07/schema#\","
    "\"title\": \"wfhost workflow\","
    "\"type\": \"object\","
    "\"required\": [\"name\", \"steps\"],"
    "\"additionalProperties\": false,"
    "\"properties\": {"
    "  \"name\": {\"type\": \"string\", \"minLength\": 1},"
    "  \"description\": {\"type\": \"string\"},"
    "  \"env\": {\"$ref\": \"#/definitions/env\"},"
    "  \"steps\": {\"type\": \"array\", \"minItems\": 1, \"items\": {\"$ref\": \"#/definitions/step\"}},"
    "  \"on_failure\": {\"type\": \"array\", \"items\": {\"$ref\": \"#/definitions/step\"},"
    "                  \"description\": \"steps run after the others when the run failed\"},"
    "  \"finally\": {\"type\": \"array\", \"items\": {\"$ref\": \"#/definitions/step\"},"
    "               \"description\": \"steps run after all the others, always\"},"
    "  \"defaults\": {\"type\": \"object\", \"additionalProperties\": false,"
    "                \"properties\": {\"timeout\": {\"$ref\": \"#/definitions/duration\"},"
    "                               \"retry\": {\"$ref\": \"#/definitions/retry\"}}},"
    "  \"inputs\": {\"type\": \"object\","
    "              \"propertyNames\": {\"pattern\": \"^[A-Za-z_][A-Za-z0-9_-]*$\"},"
    "              \"additionalProperties\": {\"type\": [\"object\", \"null\"], \"additionalProperties\": false,"
    "                \"properties\": {"
    "                  \"type\": {\"enum\": [\"string\", \"number\", \"boolean\", \"list\", \"object\"]},"
    "                  \"default\": {}, \"required\": {\"type\": \"boolean\"},"
    "                  \"description\": {\"type\": \"string\"},"
    "                  \"env\": {\"type\": \"string\", \"pattern\": \"^[A-Za-z_][A-Za-z0-9_]*$\","
    "                          \"description\": \"host environment variable that supplies the value when it is not given\"}}}},"
    "  \"outputs\": {\"type\": \"object\", \"description\": \"expressions evaluated when the run ends\"},"
    "  \"secrets\": {\"type\": \"array\", \"uniqueItems\": true,"
    "               \"items\": {\"type\": \"string\", \"pattern\": \"^[A-Z_][A-Z0-9_]*$\"}},"
    "  \"circuit_breaker\": {\"type\": \"object\", \"additionalProperties\": false,"
    "                       \"properties\": {\"failures\": {\"type\": \"integer\", \"minimum\": 1},"
    "                                      \"cooldown\": {\"$ref\": \"#/definitions/duration\"}}},"
    "  \"limits\": {\"type\": \"object\","
    "              \"additionalProperties\": {\"type\": \"integer\", \"minimum\": 1}}"
    "},"
    "\"definitions\": {"
    "  \"env\": {\"type\": [\"object\", \"null\"],"
    "           \"propertyNames\": {\"pattern\": \"^[A-Za-z_][A-Za-z0-9_]*$\"},"
    "           \"additionalProperties\": {\"type\": [\"string\", \"number\", \"boolean\"]}},"
    "  \"duration\": {\"type\": [\"string\", \"number\"], \"pattern\": \"" DURATION_PATTERN "\"},"
    "  \"retry\": {\"type\": \"object\", \"required\": [\"max_attempts\"], \"additionalProperties\": false,"
    "             \"properties\": {"
    "               \"max_attempts\": {\"type\": \"integer\", \"minimum\": 1, \"maximum\": 100},"
    "               \"backoff\": {\"enum\": [\"fixed\", \"exponential\"]},"
    "               \"initial\": {\"$ref\": \"#/definitions/duration\"},"
    "               \"max\": {\"$ref\": \"#/definitions/duration\"},"
    "               \"jitter\": {\"enum\": [\"none\", \"full\"]},"
    "               \"on\": {\"type\": \"array\", \"minItems\": 1, \"items\": {\"enum\": [\"failed\","
    "                        \"transient\", \"permanent\", \"timeout\", \"invalid_input\", \"cancelled\"]}}}},"
    "  \"step\": {\"type\": \"object\", \"required\": [\"id\", \"uses\"], \"additionalProperties\": false,"
    "            \"properties\": {"
    "              \"id\": {\"type\": \"string\", \"pattern\": \"^[a-z][a-z0-9_-]*$\"},"
    "              \"uses\": {\"type\": \"string\", \"pattern\": \"^[a-z][a-z0-9_.-]*(@[0-9]+)?$\"},"
    "              \"needs\": {\"type\": [\"string\", \"array\"], \"items\": {\"type\": \"string\"}},"
    "              \"with\": {\"type\": [\"object\", \"null\"]},"
    "              \"env\": {\"$ref\": \"#/definitions/env\"},"
    "              \"if\": {\"type\": [\"string\", \"boolean\"]},"
    "              \"timeout\": {\"$ref\": \"#/definitions/duration\"},"
    "              \"retry\": {\"$ref\": \"#/definitions/retry\"},"
    "              \"continue_on_error\": {\"type\": \"boolean\"},"
    "              \"for_each\": {\"type\": \"string\"},"
    "              \"matrix\": {\"type\": \"object\"},"
    "              \"max_parallel\": {\"type\": \"integer\", \"minimum\": 1}"
    "            }}"
    "}"
    "}";

int cmd_schema(int argc, char **argv)
{
    int err = 0, rc = WFH_EXIT_OK, no_plugins = 0;
    const char *home = NULL; /* borrowed from argv */
    wfh_catalog *cat = NULL; /* owned */
    json_t *doc = NULL;      /* owned */
    if (wfh_cli_wants_help(argc, argv)) {
        usage(stdout);
        return WFH_EXIT_OK;
    }
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--no-plugins")) {
            no_plugins = 1;
        } else if ((err = wfh_cli_home_opt("schema", argc, argv, &i, &home)) != 0) {
            if (err < 0)
                goto done;
            err = 0;
        } else {
            err = wfh_error_set(WFH_EUSAGE, "schema: unknown argument '%s' (see wfhost schema --help)",
                                argv[i]);
            goto done;
        }
    }
    json_error_t je;
    doc = json_loads(base_schema, 0, &je);
    if (!doc) {
        err = wfh_error_set(WFH_EINVAL, "schema: built-in schema is not JSON at %d: %s",
                            je.column, je.text);
        goto done;
    }
    json_t *step = json_object_get(json_object_get(doc, "definitions"), "step");
    json_t *all = json_array(); /* owned until set */
    const wfh_type_meta *bi = wfh_builtin_type(WFH_BUILTIN_PASS);
    json_t *uses = json_object_get(json_object_get(step, "properties"), "uses");
    json_t *pass_rule = json_pack("{s:{s:{s:{s:s}},s:[s]},s:{s:{s:{s:s,s:s}}}}", "if",
                                  "properties", "uses", "const", bi->name, "required", "uses",
                                  "then", "properties", "with", "type", "object",
                                  "description", bi->description);
    if (!all || json_object_set_new(step, "allOf", all) < 0 || !pass_rule ||
        json_array_append_new(all, pass_rule) < 0 ||
        json_object_set_new(uses, "examples", json_pack("[s]", bi->name)) < 0) {
        err = wfh_error_set(WFH_ENOMEM, "schema: out of memory");
        goto done;
    }
    if (!no_plugins) {
        if ((err = wfh_catalog_from_registry(home, &cat)) < 0)
            goto done;
        for (size_t p = 0; p < cat->n_plugins; p++)
            for (size_t t = 0; t < cat->plugins[p].n_types; t++) {
                const wfh_type_meta *m = &cat->plugins[p].types[t];
                if (wfh_builtin_type(m->name))
                    continue; /* the built-in is used, whatever the registry holds */
                /* the type's name with dots escaped, optionally pinned: shell, shell@1 */
                char pat[512];
                size_t o = 0;
                pat[o++] = '^';
                for (const char *c = m->name; *c && o < sizeof pat - 16; c++) {
                    if (*c == '.')
                        pat[o++] = '\\';
                    pat[o++] = *c;
                }
                snprintf(pat + o, sizeof pat - o, "(@[0-9]+)?$");
                /* "o" steals: a new reference, whether the schema's or an empty one */
                json_t *rule = json_pack(
                    "{s:{s:{s:{s:s}},s:[s]},s:{s:{s:o}}}", "if", "properties", "uses", "pattern",
                    pat, "required", "uses", "then", "properties", "with",
                    m->input_schema ? json_incref(m->input_schema) : json_object());
                if (!rule || json_array_append_new(all, rule) < 0) {
                    err = wfh_error_set(WFH_ENOMEM, "schema: out of memory");
                    goto done;
                }
                json_array_append_new(json_object_get(uses, "examples"), json_string(m->name));
            }
    }
    if (json_dumpf(doc, stdout, JSON_INDENT(2)) < 0 || fputc('\n', stdout) == EOF ||
        fflush(stdout) != 0)
        err = wfh_error_set(WFH_EIO, "schema: cannot write to stdout");
done:
    if (err < 0)
        rc = wfh_cli_fail(err);
    json_decref(doc);
    wfh_catalog_free(cat);
    return rc;
}
