/*
 * core/cli/cli.h - the wfhost command line: one cmd_<name>.c per subcommand.
 *
 * main.c holds the {name, fn, help} table; each command parses its own options,
 * prints `--help`, and returns an exit status through wfh_exit_status() so the mapping
 * from error codes to exit codes lives in one place.
 */
#ifndef WFH_CLI_H
#define WFH_CLI_H

/* Exit statuses: the contract scripts rely on. */
enum {
    WFH_EXIT_OK = 0,         /* run succeeded / command done */
    WFH_EXIT_FAILED = 1,     /* the run failed */
    WFH_EXIT_INVALID = 2,    /* invalid workflow, input or usage */
    WFH_EXIT_SECURITY = 3,   /* refused for a security reason */
    WFH_EXIT_INTERNAL = 4,   /* wfhost itself failed (I/O, out of memory) */
    WFH_EXIT_CANCELLED = 130 /* cancelled by SIGINT/SIGTERM */
};

/* Map a WFH_E* code to an exit status. */
int wfh_exit_status(int err);

struct wfh_diags;
/* The exit status for a workflow with errors: 3 if one is a security refusal (a step
 * names a disabled or yanked plugin), else 2. */
int wfh_cli_invalid_status(const struct wfh_diags *d);

/* Print "wfhost: <message>" (the last error) to stderr and return the exit status. */
int wfh_cli_fail(int err);

struct wfh_secrets;
/**
 * Mask the secrets' values in the last error message (it may quote a failed output or a
 * host error) before it is printed; for exec, resume and retry (cmd_exec.c).
 */
void wfh_cli_mask_error(const struct wfh_secrets *secrets, int err);

struct wfh_run;
struct wfh_durable;
/* Run to the end, record it, print --json if asked; sets *rc (see cmd_exec.c). */
int wfh_cli_run_to_end(struct wfh_run *run, struct wfh_durable *dur, int want_json,
                       const char *cmd, int *rc);

struct wfh_workflow;
struct wfh_catalog;
/* What exec and resume do before a run starts: load @p file (diagnostics into @p diags,
 * initialised by the caller), take the catalog of @p home's signed registry, validate,
 * and hash the plugins the run will use. Returns 0 with *wf and *cat set (owned by the
 * caller), a positive exit status when the diagnostics were printed (invalid workflow,
 * or a refused plugin), or a negative error code (message set) for the caller to fail
 * with. In cmd_exec.c. */
int wfh_cli_load_for_run(const char *file, const char *home, struct wfh_diags *diags,
                         struct wfh_workflow **wf, struct wfh_catalog **cat);

/* argv[*i] as "--name VALUE", "--name=VALUE" or, for a two-letter name, "-j8": returns
 * the value (borrowed from argv) and advances *i past it, or NULL if argv[*i] is not
 * this option. A missing value sets *err ("CMD: --name needs a value") and returns NULL. */
const char *wfh_cli_opt_value(int argc, char **argv, int *i, const char *name, const char *cmd,
                              int *err);

/* True if argv[i] is -h or --help. */
int wfh_cli_wants_help(int argc, char **argv);

int cmd_exec(int argc, char **argv);
int cmd_validate(int argc, char **argv);
int cmd_plugin(int argc, char **argv);
/* plugin new|check|run: the plugin author's commands (core/cli/cmd_plugin_sdk.c) */
int cmd_plugin_new(int argc, char **argv);
int cmd_plugin_check(int argc, char **argv);
int cmd_plugin_run(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_graph(int argc, char **argv);
int cmd_schema(int argc, char **argv);
int cmd_runs(int argc, char **argv);
int cmd_registry(int argc, char **argv);
int cmd_doctor(int argc, char **argv);
int cmd_resume(int argc, char **argv);
int cmd_retry(int argc, char **argv);
/* resume (@p retry 0) or retry (1) a recorded run: core/cli/cmd_resume.c */
int wfh_cli_continue(int argc, char **argv, int retry);

#endif
