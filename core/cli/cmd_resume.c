/*
 * core/cli/cmd_resume.c - `wfhost resume RUN_ID`: finish a run whose host died.
 *
 * The run store (core/store.h) holds every state change of the run, written before it
 * happened. Resume reads the run back, refuses a workflow file that changed since
 * (unless --allow-changed, which keeps only the results of unchanged steps), records
 * the attempts that were in flight as failed, hands the scheduler the recorded
 * successes with their outputs, and runs the rest under the same run id, so every
 * attempt keeps its idempotency key "<run>/<step>". `wfhost retry` (cmd_retry.c) is the
 * same walk for a finished, failed run; both share wfh_cli_continue() below. The store
 * work itself lives in core/durable.c.
 */
#include <errno.h>
#include <jansson.h>
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

static void usage(FILE *out, int retry)
{
    if (retry)
        fputs("usage: wfhost retry RUN_ID [options]\n\n"
              "Run the failed, timed-out, skipped and cancelled steps of a finished run\n"
              "again, under the same run id and with the inputs it started with; its\n"
              "successful steps keep their outputs and are not run again.\n\n",
              out);
    else
        fputs("usage: wfhost resume RUN_ID [options]\n\n"
              "Finish a run whose host stopped (killed, crashed, power lost): steps recorded\n"
              "as succeeded keep their outputs and are not run again; attempts that were in\n"
              "flight are recorded as failed and the step runs again as its next attempt,\n"
              "with the same idempotency key. The run keeps the inputs it started with.\n\n",
              out);
    fputs("options:\n"
          "      --home DIR       the wfhost home holding the run and the signed registry\n"
          "                       its plugins come from (default: $WFH_HOME, ...)\n"
          "      --file FILE      the workflow file, if it moved since the run started (its\n"
          "                       hash is checked all the same)\n"
          "      --allow-changed  the workflow file changed since the run started: go on,\n"
          "                       keeping only the results of steps whose definition (and\n"
          "                       everything upstream of them) did not change\n"
          "  -j, --concurrency N  steps running at once (default: the number of CPUs)\n"
          "      --json           print the run as one JSON document on stdout at the end\n"
          "      --workspace DIR  the directory steps run in (default: the current one;\n"
          "                       use the run's original one)\n"
          "      --policy FILE    confine every step as the sandbox policy FILE grants\n"
          "                       (default: the home's policy file, else built-in grants)\n"
          "      --allow-net[=HOST:PORT,...] --allow-read=... --allow-write=... --allow-run=...\n"
          "      --allow-env=...  grant more to every step, as for `wfhost exec`\n"
          "      --secrets-file FILE  NAME=value lines for the declared secrets, as for\n"
          "                       `wfhost exec` (or WFH_SECRET_<NAME>); never recorded\n"
          "  -h, --help           show this help\n\n"
          "exit status: as `wfhost exec`: 0 the run succeeded, 1 it failed, 2 invalid\n"
          "(unknown run, changed file, nothing to do), 3 refused by the policy, 4 store or\n"
          "host error, 130 cancelled.\n",
          out);
}

/* Whether the recorded run is one this command continues; a message if not. */
static int check_state(const wfh_store_run *rec, int retry, int *nothing_to_do)
{
    const char *st = wfh_store_state_name(rec->state);
    *nothing_to_do = 0;
    if (rec->state == WFH_STATE_SUCCEEDED) {
        *nothing_to_do = 1;
        return 0;
    }
    if (!retry && rec->state != WFH_STATE_RUNNING && rec->state != WFH_STATE_QUEUED)
        return wfh_error_set(WFH_EINVAL, "resume: run %s has finished (%s); `wfhost retry %s` "
                                         "runs its failed steps again",
                             rec->id, st, rec->id);
    if (retry && (rec->state == WFH_STATE_RUNNING || rec->state == WFH_STATE_QUEUED))
        return wfh_error_set(WFH_EINVAL, "retry: run %s has not finished (%s): if its host "
                                         "stopped, `wfhost resume %s` finishes it",
                             rec->id, st, rec->id);
    return 0;
}

int wfh_cli_continue(int argc, char **argv, int retry)
{
    const char *cmd = retry ? "retry" : "resume";
    int err = 0, rc = WFH_EXIT_OK;
    const char *run_id = NULL, *home = NULL, *workspace = NULL,
               *policy_path = NULL, *file = NULL, *secrets_path = NULL; /* borrowed from argv */
    unsigned concurrency = 0;
    int want_json = 0, allow_changed = 0, changed = 0, nothing = 0;
    wfh_store *store = NULL;     /* owned */
    wfh_store_run *rec = NULL;   /* owned: the run as first loaded */
    wfh_store_run *rec2 = NULL;  /* owned: as reopened */
    wfh_workflow *wf = NULL;     /* owned */
    wfh_catalog *cat = NULL;     /* owned */
    wfh_policy *policy = NULL;   /* owned */
    const char *allows[64];      /* --allow-* flags, borrowed from argv */
    size_t n_allows = 0;
    wfh_durable *dur = NULL;     /* owned */
    int run_lock = -1;           /* owned: no other process of this machine runs it */
    wfh_run *run = NULL;         /* owned */
    json_t *inputs = NULL;       /* owned: the recorded inputs as checked, defaults filled */
    wfh_secrets *secrets = NULL; /* owned */
    wfh_diags diags;
    int diags_ready = 0;

    if (wfh_cli_wants_help(argc, argv)) {
        usage(stdout, retry);
        return WFH_EXIT_OK;
    }
    for (int i = 1; i < argc; i++) {
        const char *v;
        if (!strcmp(argv[i], "--json")) {
            want_json = 1;
        } else if (!strcmp(argv[i], "--allow-changed")) {
            allow_changed = 1;
        } else if ((v = wfh_cli_opt_value(argc, argv, &i, "--concurrency", cmd, &err)) ||
                   (v = wfh_cli_opt_value(argc, argv, &i, "-j", cmd, &err))) {
            char *end = NULL;
            long n = strtol(v, &end, 10);
            if (!*v || *end || n < 1 || n > 1000000) {
                err = wfh_error_set(WFH_EUSAGE, "%s: --concurrency wants a whole number from "
                                                "1 to 1000000, not '%s'", cmd, v);
                goto done;
            }
            concurrency = (unsigned)n;
        } else if ((v = wfh_cli_opt_value(argc, argv, &i, "--home", cmd, &err))) {
            home = v;
        } else if ((v = wfh_cli_opt_value(argc, argv, &i, "--file", cmd, &err))) {
            file = v;
        } else if ((err = wfh_cli_removed_plugin_dir(cmd, argv[i])) < 0) {
            goto done;
        } else if ((v = wfh_cli_opt_value(argc, argv, &i, "--workspace", cmd, &err))) {
            workspace = v;
        } else if ((v = wfh_cli_opt_value(argc, argv, &i, "--policy", cmd, &err))) {
            policy_path = v;
        } else if ((v = wfh_cli_opt_value(argc, argv, &i, "--secrets-file", cmd, &err))) {
            secrets_path = v;
        } else if (!strncmp(argv[i], "--allow-", 8) && strcmp(argv[i], "--allow-changed")) {
            if (n_allows == sizeof allows / sizeof allows[0]) {
                err = wfh_error_set(WFH_EUSAGE, "%s: more than %zu --allow-* flags", cmd, n_allows);
                goto done;
            }
            allows[n_allows++] = argv[i];
        } else if (err < 0) {
            goto done;
        } else if (!strcmp(argv[i], "-i") || !strncmp(argv[i], "--input", 7)) {
            /* other inputs would make it another run, whose recorded outputs do not hold */
            err = wfh_error_set(WFH_EUSAGE, "%s: %s: a run keeps the inputs it started with "
                                            "(`wfhost exec` starts a new run)", cmd, argv[i]);
            goto done;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            err = wfh_error_set(WFH_EUSAGE, "%s: unknown option '%s' (see wfhost %s --help)",
                                cmd, argv[i], cmd);
            goto done;
        } else if (!run_id) {
            run_id = argv[i];
        } else {
            err = wfh_error_set(WFH_EUSAGE, "%s: one run at a time ('%s' and '%s')", cmd,
                                run_id, argv[i]);
            goto done;
        }
    }
    if (err < 0)
        goto done;
    if (!run_id) {
        usage(stderr, retry);
        return WFH_EXIT_INVALID;
    }
    if (workspace) {
        struct stat st;
        if (stat(workspace, &st) < 0 || !S_ISDIR(st.st_mode)) {
            err = wfh_error_set(WFH_EUSAGE, "%s: --workspace %s: not a directory", cmd,
                                workspace);
            goto done;
        }
    }

    /* Confined as exec confines: --policy, else the home's policy, else built-in. A bad
     * flag or policy file is a usage error before anything is opened. */
    if ((err = wfh_policy_for_run(home, policy_path, allows, n_allows, workspace, &policy)) < 0)
        goto done;
    workspace = wfh_policy_workspace(policy);

    /* The store must exist: resuming never creates one. */
    if ((err = wfh_durable_open_store(home, WFH_STORE_NO_CREATE, &store)) < 0)
        goto done;
    if ((err = wfh_store_run_load(store, run_id, &rec)) < 0)
        goto done;
    /* Before looking at its state: a host still running it has it as "running" too. */
    if ((err = wfh_durable_lock_run(home, rec->id, &run_lock)) < 0)
        goto done;
    wfh_store_run_free(rec); /* read again under the lock: the holder may have just ended */
    rec = NULL;
    if ((err = wfh_store_run_load(store, run_id, &rec)) < 0)
        goto done;
    if ((err = check_state(rec, retry, &nothing)) < 0)
        goto done;
    if (nothing) {
        fprintf(stderr, "run %s (%s) already succeeded: nothing to %s\n", rec->id,
                rec->workflow, cmd);
        goto done;
    }

    if (!file)
        file = rec->file_path;
    wfh_diags_init(&diags, file, NULL, 0);
    diags_ready = 1;
    if ((err = wfh_cli_load_for_run(file, home, &diags, &wf, &cat)) != 0) {
        if (err > 0) {
            rc = err;
            err = 0;
        }
        goto done;
    }
    /* Checked again as exec checks them: the workflow may have changed (--allow-changed),
     * and a run from before the store recorded inputs gets the defaults. */
    if ((err = wfh_inputs_resolve(wf, rec->inputs, &inputs)) < 0) {
        char why[1024]; /* the message buffer is reused by wfh_error_set */
        snprintf(why, sizeof why, "%s", wfh_error_last());
        err = wfh_error_set(err == WFH_ENOMEM ? err : WFH_EUSAGE, "%s: run %s: %s", cmd,
                            rec->id, why);
        goto done;
    }
    if ((err = wfh_secrets_load(wf, secrets_path, &secrets)) < 0)
        goto done;
    if ((err = wfh_durable_new(store, wf, &dur)) < 0 ||
        (err = wfh_durable_check_file(dur, rec, allow_changed, &changed)) < 0)
        goto done;
    (void)wfh_durable_open_logs(dur, home); /* else logs share the state handle */
    wfh_run_opts opts = {
        .concurrency = concurrency,
        .workspace = workspace,
        .run_id = rec->id,
        .human = stderr,
        .tty = -1,
        .on_event = wfh_durable_on_event,
        .on_log = wfh_durable_on_log,
        .on_event_ud = dur,
        .on_flush = wfh_durable_on_flush, /* group commit, as exec: a pass step's two
                                             records share one commit (issue #8) */
        .policy = policy,
        .inputs = inputs,
        .secrets = secrets,
    };
    /* Refusals (policy) come before the store is touched: nothing is reopened then. */
    if ((err = wfh_run_new(wf, cat, &opts, &run)) < 0)
        goto done;
    wfh_durable_attach(dur, run);
    if ((err = wfh_durable_reopen(dur, rec->id, retry, &rec2)) < 0)
        goto done;
    size_t kept = 0;
    if ((err = wfh_durable_restore(dur, run, rec2, changed, &kept)) < 0)
        goto done;
    fprintf(stderr, "%s: %zu of %zu step(s) keep their recorded success%s\n", cmd, kept,
            wf->n_steps, changed ? " (the workflow file changed: unchanged steps only)" : "");
    err = wfh_cli_run_to_end(run, dur, want_json, cmd, &rc);
done:
    wfh_cli_mask_error(secrets, err);
    if (err < 0)
        rc = wfh_cli_fail(err);
    wfh_run_free(run);
    wfh_durable_free(dur);
    wfh_policy_free(policy);
    wfh_catalog_free(cat);
    wfh_workflow_free(wf);
    if (diags_ready)
        wfh_diags_free(&diags);
    wfh_store_run_free(rec2);
    wfh_store_run_free(rec);
    wfh_durable_unlock_run(run_lock);
    wfh_store_free(store);
    wfh_secrets_free(secrets);
    json_decref(inputs);
    return rc;
}

int cmd_resume(int argc, char **argv)
{
    return wfh_cli_continue(argc, argv, 0);
}
