/*
 * core/cli/main.c - `wfhost COMMAND ...`: the command table and dispatch.
 *
 * The CLI is a thin client of the core: each command lives in cmd_<name>.c. Adding a
 * command is one line in the table below.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include <wfhost/plugin.h>

#ifndef WFH_VERSION
#define WFH_VERSION "0.0.0"
#endif

typedef struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help;
} command;

static const command commands[] = {
    {"exec", cmd_exec, "run a workflow"},
    {"validate", cmd_validate, "check a workflow and report every problem"},
    {"graph", cmd_graph, "render a workflow's steps as a DOT or Mermaid graph"},
    {"schema", cmd_schema, "print a JSON Schema of workflow files (for editors)"},
    {"eval", cmd_eval, "evaluate one expression (for debugging `${{ }}`)"},
    {"plugin", cmd_plugin, "plugins: new, check, run, info, install, list, remove, verify..."},
    {"runs", cmd_runs, "run history: list, show, logs, prune"},
    {"resume", cmd_resume, "finish a run whose host stopped, without re-running its successes"},
    {"retry", cmd_retry, "run the failed and skipped steps of a finished run again"},
    {"registry", cmd_registry, "the signed plugin registry: init, keygen, sign, verify"},
    {"doctor", cmd_doctor, "what this machine offers the step sandbox"},
};

static void usage(FILE *out)
{
    fputs("usage: wfhost [--version] [--help] COMMAND [ARGS]\n\n"
          "Runs workflows written in YAML whose steps are plugins.\n\ncommands:\n",
          out);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].help);
    fputs("\nRun 'wfhost COMMAND --help' for a command's options.\n", out);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return WFH_EXIT_INVALID;
    }
    const char *name = argv[1];
    if (!strcmp(name, "--help") || !strcmp(name, "-h") || !strcmp(name, "help")) {
        usage(stdout);
        return WFH_EXIT_OK;
    }
    if (!strcmp(name, "--version") || !strcmp(name, "version")) {
        printf("wfhost %s (plugin ABI %d.%d)\n", WFH_VERSION, WFH_ABI_MAJOR, WFH_ABI_MINOR);
        return WFH_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(name, commands[i].name))
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "wfhost: unknown command '%s'\n", name);
    usage(stderr);
    return WFH_EXIT_INVALID;
}
