/*
 * core/cli/cmd_graph.c - `wfhost graph FILE`: the step DAG as Graphviz DOT or Mermaid.
 *
 * People understand a workflow faster by looking at it. The graph comes from the same
 * loader and validator as `exec` (structure only: no plugins are needed), so what it
 * draws is what would run; an invalid workflow prints its diagnostics and exits 2.
 * Edges point in run order: `a -> b` means b needs a.
 */
#include <stdio.h>
#include <string.h>

#include "../error.h"
#include "../workflow.h"
#include "cli.h"

static const char usage_text[] =
    "usage: wfhost graph FILE [--format dot|mermaid]\n"
    "\n"
    "Prints the workflow's steps and their needs as a graph on stdout: Graphviz DOT\n"
    "(default; render with `dot -Tsvg`) or a Mermaid flowchart (paste into Markdown).\n"
    "Nodes are labelled with the step id and its step type; `a -> b` means b needs a.\n";

/* Ids and types are restricted to [a-z0-9_.@-] by the loader; quote anyway so the
 * output stays well formed whatever the loader accepts later. */
static void put_quoted(FILE *out, const char *s, int mermaid)
{
    for (; *s; s++) {
        if (*s == '"')
            fputs(mermaid ? "#quot;" : "\\\"", out);
        else if (*s == '\\' && !mermaid)
            fputs("\\\\", out);
        else if (*s == '\n')
            fputs(mermaid ? " " : "\\n", out);
        else
            fputc(*s, out);
    }
}

/* A for_each or matrix step is one node that runs many times: say how many, or over
 * what when the count is only known at run time. Empty for a plain step. */
static void multiplicity(const wfh_step *s, char *buf, size_t len)
{
    buf[0] = '\0';
    if (s->matrix)
        snprintf(buf, len, " \xc3\x97%zu (matrix)", json_array_size(s->matrix));
    else if (s->for_each)
        snprintf(buf, len, " \xc3\x97 each of %s", s->for_each_text ? s->for_each_text : "a list");
}

static void print_dot(const wfh_workflow *wf, FILE *out)
{
    fputs("digraph \"", out);
    put_quoted(out, wf->name ? wf->name : "workflow", 0);
    fputs("\" {\n  rankdir=LR;\n  node [shape=box, style=rounded, fontname=\"Helvetica\"];\n",
          out);
    for (size_t k = 0; k < wf->n_steps; k++) {
        const wfh_step *s = &wf->steps[wf->order[k]];
        fputs("  \"", out);
        put_quoted(out, s->id, 0);
        fputs("\" [label=\"", out);
        put_quoted(out, s->id, 0);
        fputs("\\n", out);
        put_quoted(out, s->type, 0);
        if (s->major >= 0)
            fprintf(out, "@%d", s->major);
        char many[256];
        multiplicity(s, many, sizeof many);
        put_quoted(out, many, 0);
        fputs("\"];\n", out);
    }
    for (size_t k = 0; k < wf->n_steps; k++) {
        const wfh_step *s = &wf->steps[wf->order[k]];
        for (size_t i = 0; i < s->n_needs; i++) {
            fputs("  \"", out);
            put_quoted(out, wf->steps[s->needs[i]].id, 0);
            fputs("\" -> \"", out);
            put_quoted(out, s->id, 0);
            fputs("\";\n", out);
        }
    }
    fputs("}\n", out);
}

static void print_mermaid(const wfh_workflow *wf, FILE *out)
{
    /* Mermaid ids are positional (s0, s1, ...): step ids may contain '-', which Mermaid
     * would read as part of an arrow. */
    fputs("flowchart LR\n", out);
    for (size_t k = 0; k < wf->n_steps; k++) {
        size_t i = wf->order[k];
        const wfh_step *s = &wf->steps[i];
        fprintf(out, "  s%zu[\"", i);
        put_quoted(out, s->id, 1);
        fputs("<br/><small>", out);
        put_quoted(out, s->type, 1);
        if (s->major >= 0)
            fprintf(out, "@%d", s->major);
        char many[256];
        multiplicity(s, many, sizeof many);
        put_quoted(out, many, 1);
        fputs("</small>\"]\n", out);
    }
    for (size_t k = 0; k < wf->n_steps; k++) {
        size_t i = wf->order[k];
        const wfh_step *s = &wf->steps[i];
        for (size_t n = 0; n < s->n_needs; n++)
            fprintf(out, "  s%zu --> s%zu\n", s->needs[n], i);
    }
}

int cmd_graph(int argc, char **argv)
{
    if (wfh_cli_wants_help(argc, argv)) {
        fputs(usage_text, stdout);
        return WFH_EXIT_OK;
    }
    const char *file = NULL, *format = "dot"; /* borrowed from argv */
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--format") && i + 1 < argc) {
            format = argv[++i];
        } else if (!strncmp(argv[i], "--format=", 9)) {
            format = argv[i] + 9;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "wfhost graph: unknown option '%s'\n%s", argv[i], usage_text);
            return WFH_EXIT_INVALID;
        } else if (!file) {
            file = argv[i];
        } else {
            fprintf(stderr, "wfhost graph: one FILE at a time ('%s')\n", argv[i]);
            return WFH_EXIT_INVALID;
        }
    }
    if (!file) {
        fputs(usage_text, stderr);
        return WFH_EXIT_INVALID;
    }
    int mermaid = !strcmp(format, "mermaid");
    if (!mermaid && strcmp(format, "dot")) {
        fprintf(stderr, "wfhost graph: unknown format '%s' (dot or mermaid)\n", format);
        return WFH_EXIT_INVALID;
    }
    int status;
    wfh_diags d;
    wfh_diags_init(&d, file, NULL, 0);
    wfh_workflow *wf = NULL; /* owned */
    int err = wfh_workflow_load(file, &wf, &d);
    if (!wf && d.errors == 0) {
        status = wfh_cli_fail(err);
        goto done;
    }
    if (wf && wfh_workflow_validate(wf, NULL, &d) == WFH_ENOMEM) {
        status = wfh_cli_fail(WFH_ENOMEM);
        goto done;
    }
    if (d.errors || !wf || !wf->order) {
        wfh_diags_print(&d, stderr);
        status = WFH_EXIT_INVALID;
        goto done;
    }
    if (mermaid)
        print_mermaid(wf, stdout);
    else
        print_dot(wf, stdout);
    status = fflush(stdout) == 0 ? WFH_EXIT_OK : WFH_EXIT_INTERNAL;
done:
    wfh_diags_free(&d);
    wfh_workflow_free(wf);
    return status;
}
