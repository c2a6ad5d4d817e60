/*
 * core/cli/cmd_eval.c - `wfhost eval 'EXPR'`: evaluate one expression and print the result
 * as {"kind": ..., "value": ...}, for authors debugging an expression and for running
 * GitHub's test vectors by hand. The contexts (a JSON object: name -> value) come from
 * --context FILE or --context-json TEXT; their names are the only contexts the
 * expression may use, as in a workflow.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "error.h"
#include "expr.h"

static const char usage[] =
    "usage: wfhost eval 'EXPR' [--context FILE.json | --context-json '{...}'] [--strict]\n"
    "\n"
    "Evaluates one expression (the text inside ${{ }}) and prints\n"
    "  {\"kind\": \"Boolean|Number|String|Null|Array|Object\", \"value\": ...}\n"
    "or, with exit status 2,\n"
    "  {\"error\": {\"kind\": \"lexing|parsing|evaluation\", \"message\": \"...\"}}\n"
    "\n"
    "  --context FILE       contexts as a JSON object, e.g. {\"inputs\": {\"n\": 3}}\n"
    "  --context-json TEXT  the same, inline\n"
    "  --status failed|cancelled  the run status seen by success()/failure()/cancelled()\n"
    "  --strict             a missing steps.<id>.outputs.<name> is an error, as in a run\n"
    "\n"
    "Examples:\n"
    "  wfhost eval \"format('{0}-{1}', 'a', 1)\"\n"
    "  wfhost eval \"inputs.n > 2 ? 'big' : 'small'\" --context-json '{\"inputs\":{\"n\":3}}'\n";

static int print_error(const wfh_expr_error *err)
{
    static const char *const kinds[] = {"none", "lexing", "parsing", "evaluation"};
    json_t *o = json_pack("{s:{s:s,s:s,s:I}}", "error", "kind", kinds[err->kind & 3], "message",
                          err->message, "offset", (json_int_t)err->offset);
    if (o) {
        json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        fputc('\n', stdout);
        json_decref(o);
    }
    return WFH_EXIT_INVALID;
}

int cmd_eval(int argc, char **argv)
{
    const char *text = NULL, *ctx_file = NULL, *ctx_json = NULL;
    json_t *contexts = NULL;  /* owned */
    const char **names = NULL; /* owned array; strings borrowed from contexts */
    wfh_expr *e = NULL;        /* owned */
    json_t *value = NULL;      /* owned */
    wfh_expr_error err;
    wfh_expr_env env;
    int status = WFH_EXIT_OK;

    memset(&env, 0, sizeof env);
    if (wfh_cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return WFH_EXIT_OK;
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--context") == 0 && i + 1 < argc) {
            ctx_file = argv[++i];
        } else if (strcmp(argv[i], "--context-json") == 0 && i + 1 < argc) {
            ctx_json = argv[++i];
        } else if (strcmp(argv[i], "--status") == 0 && i + 1 < argc) {
            const char *s = argv[++i];
            if (strcmp(s, "failed") == 0)
                env.run_failed = 1;
            else if (strcmp(s, "cancelled") == 0)
                env.run_cancelled = 1;
            else if (strcmp(s, "success") != 0)
                return wfh_cli_fail(wfh_error_set(WFH_EUSAGE, "eval: unknown --status '%s'", s));
        } else if (strcmp(argv[i], "--strict") == 0) {
            env.strict_step_outputs = 1;
        } else if (strcmp(argv[i], "--") == 0 && i + 1 < argc && !text) {
            text = argv[++i];
        } else if (argv[i][0] == '-' && argv[i][1] == '-') {
            fputs(usage, stderr);
            return wfh_cli_fail(wfh_error_set(WFH_EUSAGE, "eval: unknown option '%s'", argv[i]));
        } else if (!text) {
            text = argv[i];
        } else {
            fputs(usage, stderr);
            return wfh_cli_fail(wfh_error_set(WFH_EUSAGE, "eval: more than one expression given"));
        }
    }
    if (!text) {
        fputs(usage, stderr);
        return wfh_cli_fail(wfh_error_set(WFH_EUSAGE, "eval: no expression given"));
    }
    if (ctx_file && ctx_json)
        return wfh_cli_fail(
            wfh_error_set(WFH_EUSAGE, "eval: give --context or --context-json, not both"));
    if (ctx_file || ctx_json) {
        json_error_t jerr;
        contexts = ctx_file ? json_load_file(ctx_file, JSON_DECODE_ANY, &jerr)
                            : json_loads(ctx_json, JSON_DECODE_ANY, &jerr);
        if (!contexts) {
            status = wfh_cli_fail(wfh_error_set(WFH_EINVAL, "eval: %s:%d:%d: %s",
                                                ctx_file ? ctx_file : "--context-json", jerr.line,
                                                jerr.column, jerr.text));
            goto done;
        }
        if (!json_is_object(contexts)) {
            status = wfh_cli_fail(wfh_error_set(WFH_EINVAL,
                                                "eval: %s: the contexts must be a JSON object",
                                                ctx_file ? ctx_file : "--context-json"));
            goto done;
        }
    } else {
        contexts = json_object();
        if (!contexts) {
            status = wfh_cli_fail(wfh_error_set(WFH_ENOMEM, "eval: out of memory"));
            goto done;
        }
    }
    names = calloc(json_object_size(contexts) + 1, sizeof *names);
    if (!names) {
        status = wfh_cli_fail(wfh_error_set(WFH_ENOMEM, "eval: out of memory"));
        goto done;
    }
    {
        size_t k = 0;
        const char *key;
        json_t *v;
        json_object_foreach(contexts, key, v) {
            (void)v;
            names[k++] = key;
        }
    }
    wfh_expr_scope scope = {.contexts = names};
    if (wfh_expr_parse(text, strlen(text), &scope, &e, &err) < 0) {
        status = print_error(&err);
        goto done;
    }
    env.contexts = contexts;
    const char *kind = "Null";
    if (wfh_expr_eval_kind(e, &env, &value, &kind, &err) < 0) {
        status = print_error(&err);
        goto done;
    }
    json_t *o = json_pack("{s:s,s:O}", "kind", kind, "value", value);
    if (!o) {
        status = wfh_cli_fail(wfh_error_set(WFH_ENOMEM, "eval: out of memory"));
        goto done;
    }
    json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
    fputc('\n', stdout);
    json_decref(o);
done:
    json_decref(value);
    wfh_expr_free(e);
    free(names);
    json_decref(contexts);
    return status;
}
