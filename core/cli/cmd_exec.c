/*
 * core/cli/cmd_exec.c - `wfhost exec FILE`: load, validate, run, report.
 *
 * A thin client of the core: the workflow model loads and validates (problems are
 * printed as `wfhost validate` prints them, exit status 2), the scheduler runs, and
 * this file only parses options, prints the --json document on stdout and maps the
 * run's end to the exit status contract (0 succeeded, 1 failed, 2 invalid, 130
 * cancelled). Human output goes to stderr, so stdout stays empty without --json.
 */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../catalog.h"
#include "../diag.h"
#include "../durable.h"
#include "../error.h"
#include "../lang.h"
#include "../policy.h"
#include "../scheduler.h"
#include "../secrets.h"
#include "../workflow.h"
#include "cli.h"
#include "cli_registry.h"

static void usage(FILE *out)
{
    fputs("usage: wfhost exec FILE [--concurrency N] [--json] [--workspace DIR]\n"
          "                        [--policy FILE] [--home DIR] [--no-store]\n"
          "                        [--durability full|normal]\n"
          "                        [-i NAME=VALUE]... [--inputs FILE.json]\n"
          "                        [--secrets-file FILE]\n\n"
          "Validate the workflow in FILE, then run it: each step starts as soon as every\n"
          "step it needs has succeeded, up to N at once.\n\n"
          "options:\n"
          "  -j, --concurrency N  steps running at once (default: the number of CPUs)\n"
          "      --json           print the run as one JSON document on stdout at the end\n"
          "      --workspace DIR  the directory steps run in (default: the current one)\n"
          "      --policy FILE    confine every step as the sandbox policy FILE grants\n"
          "                       (default: the home's policy file, else built-in grants:\n"
          "                       strict, the workspace read-write); a step whose type\n"
          "                       asks for more is refused (exit 3)\n"
          "      --allow-net[=HOST:PORT,...] --allow-read=PATH,... --allow-write=PATH,...\n"
          "      --allow-run=PROGRAM,... --allow-env=NAME,...\n"
          "                       grant more to every step of this run (docs/sandbox.md);\n"
          "                       without --policy, the wfhost home's policy applies\n"
          "  -i, --input NAME=VALUE  a workflow input; VALUE is JSON unless the input is a\n"
          "                       string (repeatable; wins over --inputs)\n"
          "      --inputs FILE    workflow inputs as one JSON object\n"
          "      --secrets-file FILE  NAME=value lines for the declared secrets (mode 0600\n"
          "                       or stricter); else WFH_SECRET_<NAME> from the environment\n"
          "      --home DIR       the wfhost home: its signed registry is where plugins\n"
          "                       come from (the only place), its run store records the run\n"
          "                       so `wfhost resume` can finish it after a crash (default:\n"
          "                       $WFH_HOME, /var/lib/wfhost as root, else ~/.local/share/wfhost;\n"
          "                       the build tree's wfhost uses build/dev-home)\n"
          "      --no-store       record nothing: the run cannot be resumed or listed\n"
          "      --durability full|normal  full (default): each recorded change survives\n"
          "                       power loss; normal: survives a crash or SIGKILL of the\n"
          "                       host, but the last changes may be lost on power loss, and\n"
          "                       those steps run again on resume (docs/performance.md)\n"
          "  -h, --help           show this help\n\n"
          "exit status: 0 the run succeeded, 1 it failed, 2 invalid workflow or usage,\n"
          "3 refused for security (the sandbox policy, a secrets file others can read,\n"
          "a plugin file that is not what the signed registry says: docs/registry.md),\n"
          "130 cancelled (SIGINT/SIGTERM).\n\n"
          "environment: WFH_RUNNER_ZYGOTE=0 spawns every step runner instead of forking it\n"
          "from a zygote; WFH_RUNNER_WARM=0 starts no runner ahead of its attempt, =always\n"
          "starts them even with every CPU busy (docs/operations.md).\n",
          out);
}

static int parse_count(const char *s, unsigned *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || !end || *end || end == s || v < 1 || v > 1000000)
        return wfh_error_set(WFH_EUSAGE, "exec: --concurrency wants a whole number from 1 "
                                         "to 1000000, not '%s'",
                             s);
    *out = (unsigned)v;
    return 0;
}

/* exec and resume: load, catalog, validate, hash the used plugins (cli.h). */
int wfh_cli_load_for_run(const char *file, const char *home, wfh_diags *diags, wfh_workflow **wf,
                         wfh_catalog **cat)
{
    int err = wfh_workflow_load(file, wf, diags);
    if (err < 0 || diags->errors > 0) {
        if (diags->count == 0) /* e.g. the file cannot be read: the message says why */
            return err < 0 ? err : wfh_error_set(WFH_EIO, "%s: cannot be loaded", file);
        wfh_diags_print(diags, stderr);
        return WFH_EXIT_INVALID;
    }
    if ((err = wfh_catalog_from_registry(home, cat)) < 0)
        return err;
    wfh_workflow_validate(*wf, *cat, diags);
    if (diags->errors > 0) {
        wfh_diags_print(diags, stderr); /* warnings too, as validate shows them */
        return wfh_cli_invalid_status(diags);
    }
    /* The plugins this run will load are the ones the index signed (exit 3 if not),
     * before any step runs. */
    return wfh_catalog_verify_used(*wf);
}

/*
 * Run @p run to its end, record the end in @p dur (may be NULL: --no-store), print the
 * --json report when asked, and set *rc for the run's outcome. Returns 0, or a negative
 * code for wfhost's own failure (the caller passes it to wfh_cli_fail). One place for
 * exec, resume and retry, so a run whose end cannot be recorded is never reported as
 * succeeded by any of them.
 */
int wfh_cli_run_to_end(wfh_run *run, wfh_durable *dur, int want_json, const char *cmd, int *rc)
{
    int run_err = wfh_run_exec(run);
    if (dur && wfh_durable_finish(dur, run_err, run_err < 0 ? wfh_error_last() : NULL) < 0 &&
        run_err == 0)
        run_err = WFH_EIO;
    if (want_json) {
        json_t *doc = wfh_run_to_json(run); /* owned */
        wfh_durable_report(dur, doc);
        if (!doc || json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_SORT_KEYS) < 0 ||
            fputc('\n', stdout) == EOF || fflush(stdout) != 0) {
            json_decref(doc);
            return wfh_error_set(WFH_EIO, "%s: cannot write the JSON report to stdout", cmd);
        }
        json_decref(doc);
    }
    switch (run_err) {
    case 0: *rc = WFH_EXIT_OK; return 0;
    case WFH_EFAILED: *rc = WFH_EXIT_FAILED; return 0;
    case WFH_ECANCELLED: *rc = WFH_EXIT_CANCELLED; return 0;
    default: return run_err;
    }
}

void wfh_cli_mask_error(const wfh_secrets *secrets, int err)
{
    if (err >= 0 || !wfh_secrets_count(secrets))
        return;
    const char *m = wfh_error_last();
    char *masked = wfh_secrets_mask(secrets, m, strlen(m), NULL); /* owned */
    if (masked)
        wfh_error_set(err, "%s", masked);
    else
        wfh_error_set(err, "error message withheld (out of memory masking secrets)");
    free(masked);
}

int cmd_exec(int argc, char **argv)
{
    int err = 0, rc = WFH_EXIT_OK;
    const char *file = NULL, *workspace = NULL, *policy_path = NULL;
    wfh_policy *policy = NULL; /* owned */
    const char *allows[64];    /* --allow-* flags, borrowed from argv */
    size_t n_allows = 0;
    unsigned concurrency = 0;
    int want_json = 0;
    wfh_diags diags;
    int diags_ready = 0;
    wfh_workflow *wf = NULL; /* owned */
    wfh_catalog *cat = NULL; /* owned */
    wfh_run *run = NULL;     /* owned */
    const char *inputs_path = NULL, *secrets_path = NULL;
    const char **input_args = NULL; /* owned array of borrowed argv strings */
    size_t n_input_args = 0;
    json_t *given = NULL;    /* owned: inputs as passed */
    json_t *inputs = NULL;   /* owned: inputs as checked, defaults filled */
    wfh_secrets *secrets = NULL; /* owned */
    const char *home = NULL; /* the --home argument, borrowed from argv */
    int no_store = 0;
    unsigned store_flags = 0; /* --durability */
    wfh_store *store = NULL; /* owned: the run store (core/durable.h) */
    wfh_durable *dur = NULL; /* owned */
    int run_lock = -1;       /* owned: holds the run against a concurrent resume */

    if (wfh_cli_wants_help(argc, argv)) {
        usage(stdout);
        return WFH_EXIT_OK;
    }
    for (int i = 1; i < argc; i++) {
        const char *v;
        if (!strcmp(argv[i], "--json")) {
            want_json = 1;
        } else if ((v = wfh_cli_opt_value(argc, argv, &i, "--concurrency", "exec", &err)) ||
                   (v = wfh_cli_opt_value(argc, argv, &i, "-j", "exec", &err))) {
            if ((err = parse_count(v, &concurrency)) < 0)
                goto done;
        } else if ((err = wfh_cli_removed_plugin_dir("exec", argv[i])) < 0) {
            goto done;
        } else if ((v = wfh_cli_opt_value(argc, argv, &i, "--workspace", "exec", &err))) {
            workspace = v;
        } else if ((v = wfh_cli_opt_value(argc, argv, &i, "--policy", "exec", &err))) {
            policy_path = v;
        } else if ((v = wfh_cli_opt_value(argc, argv, &i, "--inputs", "exec", &err))) {
            inputs_path = v;
        } else if ((v = wfh_cli_opt_value(argc, argv, &i, "--secrets-file", "exec", &err))) {
            secrets_path = v;
        } else if ((v = wfh_cli_opt_value(argc, argv, &i, "--input", "exec", &err)) ||
                   (v = wfh_cli_opt_value(argc, argv, &i, "-i", "exec", &err))) {
            const char **na = realloc(input_args, (n_input_args + 1) * sizeof *na);
            if (!na) {
                err = wfh_error_set(WFH_ENOMEM, "exec: out of memory");
                goto done;
            }
            input_args = na;
            input_args[n_input_args++] = v;
        } else if ((v = wfh_cli_opt_value(argc, argv, &i, "--home", "exec", &err))) {
            home = v;
        } else if (!strncmp(argv[i], "--allow-", 8)) {
            if (n_allows == sizeof allows / sizeof allows[0]) {
                err = wfh_error_set(WFH_EUSAGE, "exec: more than %zu --allow-* flags", n_allows);
                goto done;
            }
            allows[n_allows++] = argv[i];
        } else if (!strcmp(argv[i], "--no-store")) {
            no_store = 1;
        } else if ((v = wfh_cli_opt_value(argc, argv, &i, "--durability", "exec", &err))) {
            if (strcmp(v, "full") != 0 && strcmp(v, "normal") != 0) {
                err = wfh_error_set(WFH_EUSAGE, "exec: --durability %s: expected full or normal", v);
                goto done;
            }
            store_flags = !strcmp(v, "normal") ? WFH_STORE_SYNC_NORMAL : 0;
        } else if (err < 0) {
            goto done;
        } else if (!strcmp(argv[i], "--") && i + 1 < argc && !file) {
            file = argv[++i];
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            err = wfh_error_set(WFH_EUSAGE, "exec: unknown option '%s' (see wfhost exec --help)",
                                argv[i]);
            goto done;
        } else if (!file) {
            file = argv[i];
        } else {
            err = wfh_error_set(WFH_EUSAGE, "exec: one workflow file at a time ('%s' and '%s')",
                                file, argv[i]);
            goto done;
        }
    }
    if (err < 0)
        goto done;
    if (!file) {
        usage(stderr);
        return WFH_EXIT_INVALID;
    }
    if (workspace) {
        struct stat st;
        if (stat(workspace, &st) < 0 || !S_ISDIR(st.st_mode)) {
            err = wfh_error_set(WFH_EUSAGE, "exec: --workspace %s: not a directory", workspace);
            goto done;
        }
    }

    wfh_diags_init(&diags, file, NULL, 0);
    diags_ready = 1;
    if ((err = wfh_cli_load_for_run(file, home, &diags, &wf, &cat)) != 0) {
        if (err > 0) {
            rc = err;
            err = 0;
        }
        goto done;
    }

    /* Inputs and secrets are checked before anything runs: a wrong input is the
     * caller's mistake (exit 2), not a failed run. */
    if (inputs_path) {
        json_error_t je;
        given = json_load_file(inputs_path, 0, &je);
        if (!json_is_object(given)) {
            err = wfh_error_set(WFH_EUSAGE, "exec: --inputs %s:%d:%d: %s", inputs_path,
                                je.line, je.column,
                                given ? "the inputs must be one JSON object" : je.text);
            goto done;
        }
    } else if (!(given = json_object())) {
        err = wfh_error_set(WFH_ENOMEM, "exec: out of memory");
        goto done;
    }
    for (size_t k = 0; k < n_input_args; k++) {
        const char *eq = strchr(input_args[k], '=');
        if (!eq || eq == input_args[k]) {
            err = wfh_error_set(WFH_EUSAGE, "exec: -i wants NAME=VALUE, not '%s'",
                                input_args[k]);
            goto done;
        }
        char *name = strndup(input_args[k], (size_t)(eq - input_args[k])); /* owned */
        json_t *val = NULL; /* owned */
        if (!name) {
            err = wfh_error_set(WFH_ENOMEM, "exec: out of memory");
            goto done;
        }
        err = wfh_inputs_parse_arg(wf, name, eq + 1, &val);
        if (err == 0 && json_object_set_new(given, name, val) < 0)
            err = wfh_error_set(WFH_ENOMEM, "exec: out of memory");
        free(name);
        if (err < 0)
            goto done;
    }
    if ((err = wfh_inputs_resolve(wf, given, &inputs)) < 0) {
        char why[1024]; /* the message buffer is reused by wfh_error_set */
        snprintf(why, sizeof why, "%s", wfh_error_last());
        err = wfh_error_set(err == WFH_ENOMEM ? err : WFH_EUSAGE, "%s", why);
        goto done;
    }
    if ((err = wfh_secrets_load(wf, secrets_path, &secrets)) < 0)
        goto done;

    /* Every step's grant is checked before the first one starts (exit 3 if refused).
     * Always: --policy, else the home's policy file, else the built-in grants. */
    if ((err = wfh_policy_for_run(home, policy_path, allows, n_allows, workspace, &policy)) < 0)
        goto done;
    workspace = wfh_policy_workspace(policy);
    /* The run store: every state change is recorded before it happens (durable.c). */
    if (!no_store && ((err = wfh_durable_open_store(home, store_flags, &store)) < 0 ||
                      (err = wfh_durable_new(store, wf, &dur)) < 0))
        goto done;
    if (dur)
        (void)wfh_durable_open_logs(dur, home); /* else logs share the state handle */
    wfh_run_opts opts = {
        .on_event = dur ? wfh_durable_on_event : NULL,
        .on_log = dur ? wfh_durable_on_log : NULL,
        .on_event_ud = dur,
        .on_flush = dur ? wfh_durable_on_flush : NULL, /* group commit */
        .concurrency = concurrency,
        .workspace = workspace,
        .human = stderr,
        .tty = -1,
        .policy = policy,
        .inputs = inputs,
        .secrets = secrets,
    };
    if ((err = wfh_run_new(wf, cat, &opts, &run)) < 0)
        goto done;
    if (dur) {
        wfh_durable_attach(dur, run);
        wfh_durable_set_inputs(dur, inputs);
        if ((err = wfh_durable_lock_run(home, wfh_run_id(run), &run_lock)) < 0 ||
            (err = wfh_durable_create_grouped(dur, wfh_run_id(run))) < 0)
            goto done;
    }
    /* Warnings after the run's first line ("run <id> ..."), which scripts read. */
    if (diags.count > 0)
        wfh_diags_print(&diags, stderr);
    err = wfh_cli_run_to_end(run, dur, want_json, "exec", &rc);
done:
    if (err < 0) {
        wfh_cli_mask_error(secrets, err);
        rc = wfh_cli_fail(err);
    }
    json_decref(given);
    json_decref(inputs);
    free((void *)input_args);
    wfh_run_free(run);
    wfh_durable_free(dur);
    wfh_durable_unlock_run(run_lock);
    wfh_store_free(store);
    wfh_policy_free(policy);
    wfh_catalog_free(cat);
    wfh_secrets_free(secrets);
    wfh_workflow_free(wf);
    if (diags_ready)
        wfh_diags_free(&diags);
    return rc;
}
