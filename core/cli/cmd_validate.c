/*
 * core/cli/cmd_validate.c - `wfhost validate FILE`: every problem in a workflow, at once.
 *
 * Loads the file, resolves step types through the plugin catalog and validates the whole
 * plan without running anything. Each problem is printed as `file:line:col: error: ...`
 * with the source line, a caret and a hint (diag.c), or as one JSON document with
 * --json for editors and CI annotations. Exit status 2 if there is any error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../catalog.h"
#include "../error.h"
#include "../workflow.h"
#include "cli.h"
#include "cli_registry.h"

static const char usage_text[] =
    "usage: wfhost validate FILE [--home DIR] [--json] [--syntax-only]\n"
    "\n"
    "Checks a workflow without running it and reports every problem at once, each as\n"
    "file:line:col with a hint: YAML syntax, unknown keys, step ids, needs and cycles,\n"
    "step types and their inputs (against each type's input schema), and every ${{ }}\n"
    "expression, including references to steps that do not run before the step.\n"
    "\n"
    "options:\n"
    "  --home DIR        the wfhost home whose signed registry says which step types\n"
    "                    exist (default: $WFH_HOME, /var/lib/wfhost as root, else\n"
    "                    ~/.local/share/wfhost; the build tree's wfhost: build/dev-home)\n"
    "  --json            print one JSON document on stdout instead of text\n"
    "  --syntax-only     do not resolve step types or check inputs (no plugins needed)\n"
    "\n"
    "exit status: 0 valid, 2 invalid (or bad usage), 3 a step uses a disabled or yanked\n"
    "plugin, or the registry was refused (docs/registry.md), 4 internal error\n";

static int cmp_diag(const void *a, const void *b)
{
    const wfh_diag *x = *(const wfh_diag *const *)a, *y = *(const wfh_diag *const *)b;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    if (x->col != y->col)
        return x->col < y->col ? -1 : 1;
    return x < y ? -1 : x > y; /* items are one array: address order is insertion order */
}

static int print_json(const char *file, const wfh_diags *d, size_t steps)
{
    int err = 0;
    const wfh_diag **sorted = malloc((d->count ? d->count : 1) * sizeof *sorted); /* owned */
    json_t *doc = json_object();                                                  /* owned */
    json_t *list = json_array();                                                  /* owned */
    if (!sorted || !doc || !list) {
        err = WFH_ENOMEM;
        goto done;
    }
    for (size_t i = 0; i < d->count; i++)
        sorted[i] = &d->items[i];
    qsort(sorted, d->count, sizeof *sorted, cmp_diag);
    for (size_t i = 0; i < d->count; i++) {
        const wfh_diag *x = sorted[i];
        json_t *o = json_pack("{s:s, s:I, s:I, s:s}", "severity",
                              x->severity == WFH_DIAG_ERROR ? "error" : "warning", "line",
                              (json_int_t)x->line, "column", (json_int_t)x->col, "message",
                              x->message);
        if (!o || (x->hint && json_object_set_new(o, "hint", json_string(x->hint)) < 0) ||
            json_array_append_new(list, o) < 0) {
            json_decref(o);
            err = WFH_ENOMEM;
            goto done;
        }
    }
    if (json_object_set_new(doc, "file", json_string(file)) < 0 ||
        json_object_set_new(doc, "valid", json_boolean(d->errors == 0)) < 0 ||
        json_object_set_new(doc, "steps", json_integer((json_int_t)steps)) < 0 ||
        json_object_set_new(doc, "errors", json_integer((json_int_t)d->errors)) < 0 ||
        json_object_set_new(doc, "warnings", json_integer((json_int_t)d->warnings)) < 0 ||
        json_object_set(doc, "diagnostics", list) < 0 ||
        json_dumpf(doc, stdout, JSON_INDENT(2)) < 0) {
        err = WFH_ENOMEM;
        goto done;
    }
    fputc('\n', stdout);
done:
    free(sorted);
    json_decref(doc);
    json_decref(list);
    return err;
}

int cmd_validate(int argc, char **argv)
{
    if (wfh_cli_wants_help(argc, argv)) {
        fputs(usage_text, stdout);
        return WFH_EXIT_OK;
    }
    const char *file = NULL, *home = NULL; /* borrowed from argv */
    int as_json = 0, syntax_only = 0, hr;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) {
            as_json = 1;
        } else if (!strcmp(argv[i], "--syntax-only")) {
            syntax_only = 1;
        } else if ((hr = wfh_cli_home_opt("validate", argc, argv, &i, &home)) != 0) {
            if (hr < 0)
                return wfh_cli_fail(hr);
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "wfhost validate: unknown option '%s'\n%s", argv[i], usage_text);
            return WFH_EXIT_INVALID;
        } else if (!file) {
            file = argv[i];
        } else {
            fprintf(stderr, "wfhost validate: one FILE at a time ('%s')\n", argv[i]);
            return WFH_EXIT_INVALID;
        }
    }
    if (!file) {
        fputs(usage_text, stderr);
        return WFH_EXIT_INVALID;
    }

    int err = 0, status;
    wfh_diags d;
    wfh_diags_init(&d, file, NULL, 0);
    wfh_workflow *wf = NULL;    /* owned */
    wfh_catalog *cat = NULL;    /* owned */
    err = wfh_workflow_load(file, &wf, &d);
    if (!wf) {
        /* Nothing to show but a reason (missing file, YAML broken, out of memory). */
        if (d.errors == 0) {
            status = wfh_cli_fail(err);
            goto done;
        }
    } else {
        if (!syntax_only && wf->n_steps) {
            int cerr = wfh_catalog_from_registry(home, &cat);
            if (cerr < 0) {
                status = wfh_cli_fail(cerr);
                goto done;
            }
        }
        /* Validate even after load errors: cycles and bad references are worth
         * reporting in the same pass. */
        int verr = wfh_workflow_validate(wf, cat, &d);
        if (verr == WFH_ENOMEM) {
            status = wfh_cli_fail(verr);
            goto done;
        }
    }
    if (as_json) {
        if (print_json(file, &d, wf ? wf->n_steps : 0) < 0) {
            status = wfh_cli_fail(wfh_error_set(WFH_ENOMEM, "out of memory"));
            goto done;
        }
    } else {
        wfh_diags_print(&d, stderr);
        if (d.errors)
            fprintf(stderr, "%s: %zu error%s%s\n", file, d.errors, d.errors == 1 ? "" : "s",
                    d.warnings ? " (and warnings)" : "");
        else
            printf("%s: ok (%zu step%s%s)\n", file, wf->n_steps, wf->n_steps == 1 ? "" : "s",
                   d.warnings ? ", with warnings" : "");
    }
    status = d.errors ? wfh_cli_invalid_status(&d) : WFH_EXIT_OK;
done:
    wfh_diags_free(&d);
    wfh_catalog_free(cat);
    wfh_workflow_free(wf);
    return status;
}
