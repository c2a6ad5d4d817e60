/*
 * core/cli/cmd_runs.c - `wfhost runs list|show|logs|prune`: run history from the run
 * store (core/store.h) for people (aligned text) and scripts (--json). A thin client:
 * every query is a store call; this file only parses options and renders.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../error.h"
#include "../home.h"
#include "../store.h"
#include "cli.h"

typedef struct opts {
    const char *home;     /* borrowed from argv */
    const char *status;   /* borrowed */
    const char *workflow; /* borrowed */
    const char *since;    /* borrowed */
    const char *older;    /* borrowed */
    unsigned limit;
    int json;
    int dry_run;
    int events;
    const char *pos[2]; /* positional arguments (run id, step), borrowed */
    int npos;
} opts;

static const char usage_text[] =
    "usage: wfhost runs list [--status S] [--workflow NAME] [--since WHEN] [--limit N]\n"
    "       wfhost runs show RUN_ID [--events]\n"
    "       wfhost runs logs RUN_ID [STEP]\n"
    "       wfhost runs prune --older-than AGE [--dry-run]\n"
    "\n"
    "Run history from the run store in the wfhost home.\n"
    "\n"
    "options (all subcommands):\n"
    "  --home DIR       the wfhost home (default: $WFH_HOME, /var/lib/wfhost as root,\n"
    "                   else $XDG_DATA_HOME/wfhost or ~/.local/share/wfhost)\n"
    "  --json           print JSON for scripts\n"
    "  --events         (show) also print every recorded state change\n"
    "WHEN and AGE: a duration such as 90s, 45m, 12h, 30d, 2w (WHEN: that long ago), or a\n"
    "date YYYY-MM-DD (UTC). Status: pending, queued, running, succeeded, failed,\n"
    "cancelled, timed_out. prune never deletes a run that has not finished.\n";

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "30d" -> ms ago from now; "2026-11-01" -> that instant. Result: Unix ms. */
static int parse_when(const char *opt, const char *s, int64_t *out)
{
    char *end = NULL;
    int y, mo, d;
    char tail;
    if (sscanf(s, "%4d-%2d-%2d%c", &y, &mo, &d, &tail) == 3) {
        struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d};
        time_t t = timegm(&tm);
        if (t == (time_t)-1 || mo < 1 || mo > 12 || d < 1 || d > 31)
            goto bad;
        *out = (int64_t)t * 1000;
        return 0;
    }
    long long n = strtoll(s, &end, 10);
    if (end == s || n < 0 || n > 100000000LL || !end[0] || end[1])
        goto bad;
    int64_t unit;
    switch (end[0]) {
    case 's': unit = 1000; break;
    case 'm': unit = 60 * 1000; break;
    case 'h': unit = 3600 * 1000; break;
    case 'd': unit = 86400 * 1000; break;
    case 'w': unit = 7 * 86400 * 1000LL; break;
    default: goto bad;
    }
    *out = now_ms() - (int64_t)n * unit;
    return 0;
bad:
    return wfh_error_set(WFH_EUSAGE, "%s: '%s' is not a duration (30d, 12h, 45m, 90s, 2w) "
                         "or a date (YYYY-MM-DD)", opt, s);
}

static int parse_opts(int argc, char **argv, opts *o)
{
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = NULL;
        if (!strcmp(a, "--json")) {
            o->json = 1;
            continue;
        }
        if (!strcmp(a, "--events")) {
            o->events = 1;
            continue;
        }
        if (!strcmp(a, "--dry-run")) {
            o->dry_run = 1;
            continue;
        }
        if (!strcmp(a, "--home"))
            slot = &o->home;
        else if (!strcmp(a, "--status"))
            slot = &o->status;
        else if (!strcmp(a, "--workflow"))
            slot = &o->workflow;
        else if (!strcmp(a, "--since"))
            slot = &o->since;
        else if (!strcmp(a, "--older-than"))
            slot = &o->older;
        else if (!strcmp(a, "--limit")) {
            char *end = NULL;
            if (i + 1 >= argc)
                return wfh_error_set(WFH_EUSAGE, "runs: --limit needs a number");
            unsigned long n = strtoul(argv[++i], &end, 10);
            if (*end || n == 0 || n > 1000000)
                return wfh_error_set(WFH_EUSAGE, "runs: --limit: '%s' is not a number in "
                                     "1..1000000", argv[i]);
            o->limit = (unsigned)n;
            continue;
        } else if (a[0] == '-' && a[1]) {
            return wfh_error_set(WFH_EUSAGE, "runs: unknown option '%s' (see --help)", a);
        } else {
            if (o->npos >= 2)
                return wfh_error_set(WFH_EUSAGE, "runs: unexpected argument '%s'", a);
            o->pos[o->npos++] = a;
            continue;
        }
        if (i + 1 >= argc)
            return wfh_error_set(WFH_EUSAGE, "runs: %s needs a value", a);
        *slot = argv[++i];
    }
    if (o->status) {
        wfh_state st;
        int err = wfh_store_state_parse(o->status, &st);
        if (err < 0)
            return wfh_error_set(WFH_EUSAGE, "runs: --status: %s", wfh_error_last());
    }
    return 0;
}

static void fmt_time(json_t *v, char *buf, size_t n)
{
    if (!json_is_integer(v)) {
        snprintf(buf, n, "-");
        return;
    }
    time_t t = (time_t)(json_integer_value(v) / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, n, "%Y-%m-%d %H:%M:%SZ", &tm);
}

static void fmt_duration(json_t *from, json_t *to, char *buf, size_t n)
{
    if (!json_is_integer(from)) {
        snprintf(buf, n, "-");
        return;
    }
    int64_t end = json_is_integer(to) ? json_integer_value(to) : now_ms();
    double s = (double)(end - json_integer_value(from)) / 1000.0;
    if (s < 60)
        snprintf(buf, n, "%.1fs", s);
    else if (s < 3600)
        snprintf(buf, n, "%dm%02ds", (int)s / 60, (int)s % 60);
    else
        snprintf(buf, n, "%dh%02dm", (int)s / 3600, (int)s % 3600 / 60);
}

static const char *jstr(json_t *o, const char *k, const char *dflt)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v ? v : dflt;
}

static void print_json(json_t *v)
{
    char *s = json_dumps(v, JSON_INDENT(2) | JSON_ENCODE_ANY);
    if (s)
        puts(s);
    free(s);
}

static int do_list(wfh_store *s, const opts *o)
{
    wfh_store_filter f = {.status = o->status, .workflow = o->workflow, .limit = o->limit};
    json_t *runs = NULL; /* owned */
    int err = 0;
    if (o->since && (err = parse_when("--since", o->since, &f.since_ms)) < 0)
        return err;
    if (s && (err = wfh_store_runs_list(s, &f, &runs)) < 0)
        return err;
    if (!runs)
        runs = json_array(); /* no store yet: no runs */
    if (o->json) {
        print_json(runs);
    } else if (json_array_size(runs) == 0) {
        fputs("no runs recorded\n", stderr);
    } else {
        printf("%-28s %-10s %-20s %-21s %s\n", "RUN", "STATUS", "WORKFLOW", "CREATED",
               "DURATION");
        size_t i;
        json_t *r;
        json_array_foreach(runs, i, r) {
            char created[32], dur[32];
            fmt_time(json_object_get(r, "created_ms"), created, sizeof created);
            fmt_duration(json_object_get(r, "started_ms"), json_object_get(r, "finished_ms"),
                         dur, sizeof dur);
            printf("%-28s %-10s %-20s %-21s %s\n", jstr(r, "id", "?"), jstr(r, "status", "?"),
                   jstr(r, "workflow", "?"), created, dur);
        }
    }
    json_decref(runs);
    return 0;
}


/* One line saying what confined an attempt (the runner's report, docs/sandbox.md):
 * "    sandbox: strict: user, pid, mount, net namespaces; landlock ABI 7; ...". */
static void print_sandbox(json_t *sb)
{
    static const char *const ns[] = {"userns", "user", "pidns", "pid", "mntns", "mount",
                                     "netns", "net"};
    static const char *const flags[] = {"seccomp", "seccomp", "no_new_privs", "no_new_privs",
                                        "caps_dropped", "capabilities dropped", "private_tmp",
                                        "private /tmp", "rlimits", "rlimits"};
    if (!json_is_object(sb))
        return;
    printf("    sandbox: %s", jstr(sb, "profile", "?"));
    const char *sep = ": ";
    for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k += 2)
        if (json_is_true(json_object_get(sb, ns[k]))) {
            printf("%s%s", sep, ns[k + 1]);
            sep = ", ";
        }
    if (strcmp(sep, ": "))
        printf(" namespaces");
    sep = strcmp(sep, ": ") ? "; " : ": ";
    json_int_t abi = json_integer_value(json_object_get(sb, "landlock_abi"));
    if (abi > 0) {
        printf("%slandlock ABI %lld", sep, (long long)abi);
        sep = "; ";
    }
    for (size_t k = 0; k < sizeof flags / sizeof flags[0]; k += 2)
        if (json_is_true(json_object_get(sb, flags[k]))) {
            printf("%s%s", sep, flags[k + 1]);
            sep = "; ";
        }
    if (jstr(sb, "cgroup", NULL) && strcmp(jstr(sb, "cgroup", ""), "none"))
        printf("%scgroup %s", sep, jstr(sb, "cgroup", ""));
    if (jstr(sb, "note", NULL))
        printf(" (%s)", jstr(sb, "note", ""));
    putchar('\n');
}
static int do_show(wfh_store *s, const opts *o)
{
    json_t *run = NULL; /* owned */
    json_t *events = NULL; /* owned */
    int err = wfh_store_run_show(s, o->pos[0], &run);
    if (err < 0)
        return err;
    if (o->events) {
        if ((err = wfh_store_events(s, o->pos[0], &events)) < 0) {
            json_decref(run);
            return err;
        }
        json_object_set_new(run, "events", events);
    }
    if (o->json) {
        print_json(run);
        json_decref(run);
        return 0;
    }
    char t[32], dur[32];
    fmt_time(json_object_get(run, "created_ms"), t, sizeof t);
    fmt_duration(json_object_get(run, "started_ms"), json_object_get(run, "finished_ms"), dur,
                 sizeof dur);
    printf("run       %s\nworkflow  %s (%s, hash %s)\nstatus    %s\ncreated   %s\n"
           "duration  %s\n",
           jstr(run, "id", "?"), jstr(run, "workflow", "?"), jstr(run, "file", "?"),
           jstr(run, "file_hash", "?"), jstr(run, "status", "?"), t, dur);
    if (jstr(run, "error", NULL))
        printf("error     %s\n", jstr(run, "error", ""));
    size_t i, j;
    json_t *st, *a;
    json_array_foreach(json_object_get(run, "steps"), i, st) {
        fmt_duration(json_object_get(st, "started_ms"), json_object_get(st, "finished_ms"),
                     dur, sizeof dur);
        printf("\nstep %s: %s (%s)\n", jstr(st, "id", "?"), jstr(st, "status", "?"), dur);
        if (jstr(st, "error", NULL))
            printf("  error: %s\n", jstr(st, "error", ""));
        json_array_foreach(json_object_get(st, "attempts"), j, a) {
            json_t *p = json_object_get(a, "plugin");
            json_t *ec = json_object_get(a, "exit_code"), *sig = json_object_get(a, "term_signal");
            fmt_duration(json_object_get(a, "started_ms"), json_object_get(a, "finished_ms"),
                         dur, sizeof dur);
            printf("  attempt %lld: %s (%s)", (long long)json_integer_value(json_object_get(a, "attempt")),
                   jstr(a, "status", "?"), dur);
            if (json_integer_value(sig) > 0)
                printf(" signal %lld", (long long)json_integer_value(sig));
            else if (json_is_integer(ec) && json_integer_value(ec) >= 0)
                printf(" exit %lld", (long long)json_integer_value(ec));
            if (jstr(p, "name", NULL) && !jstr(p, "version", NULL) && !jstr(p, "file_hash", NULL))
                printf(" built-in %s", jstr(p, "name", "")); /* `pass` (issue #8): no plugin */
            else if (jstr(p, "name", NULL))
                printf(" plugin %s %s hash %s", jstr(p, "name", ""), jstr(p, "version", "?"),
                       jstr(p, "file_hash", "?"));
            putchar('\n');
            if (jstr(a, "error", NULL))
                printf("    error: %s\n", jstr(a, "error", ""));
            print_sandbox(json_object_get(a, "sandbox"));
        }
    }
    if (events) {
        printf("\nevents\n");
        json_array_foreach(events, i, st) {
            fmt_time(json_object_get(st, "at_ms"), t, sizeof t);
            printf("  %s  %-10s %s", t, jstr(st, "status", "?"), jstr(st, "step", "run"));
            if (json_integer_value(json_object_get(st, "attempt")) > 0)
                printf(" #%lld", (long long)json_integer_value(json_object_get(st, "attempt")));
            if (jstr(st, "detail", NULL))
                printf(": %s", jstr(st, "detail", ""));
            putchar('\n');
        }
    }
    json_decref(run);
    return 0;
}

static int do_logs(wfh_store *s, const opts *o)
{
    static const char *const levels[] = {"error", "warn", "info", "debug"};
    json_t *logs = NULL; /* owned */
    int err = wfh_store_logs(s, o->pos[0], o->pos[1], &logs);
    if (err < 0)
        return err;
    if (o->json) {
        print_json(logs);
    } else {
        size_t i;
        json_t *l;
        json_array_foreach(logs, i, l) {
            json_int_t lv = json_integer_value(json_object_get(l, "level"));
            printf("%s#%lld %-5s %s\n", jstr(l, "step", "-"),
                   (long long)json_integer_value(json_object_get(l, "attempt")),
                   lv >= 0 && lv < 4 ? levels[lv] : "?", jstr(l, "msg", ""));
        }
    }
    json_decref(logs);
    return 0;
}

static int do_prune(wfh_store *s, const opts *o)
{
    int64_t before = 0;
    unsigned removed = 0;
    int err;
    if (!o->older)
        return wfh_error_set(WFH_EUSAGE, "runs prune: --older-than AGE is required (e.g. 30d)");
    if ((err = parse_when("--older-than", o->older, &before)) < 0)
        return err;
    if (o->dry_run) {
        /* what prune would delete: finished runs created before the cut-off */
        json_t *runs = NULL;
        wfh_store_filter f = {.limit = 1000000};
        if (s && (err = wfh_store_runs_list(s, &f, &runs)) < 0)
            return err;
        size_t i;
        json_t *r;
        json_array_foreach(runs, i, r) {
            wfh_state st;
            if (json_integer_value(json_object_get(r, "created_ms")) < before &&
                wfh_store_state_parse(jstr(r, "status", ""), &st) == 0 &&
                wfh_store_state_is_final(st))
                removed++;
        }
        json_decref(runs);
    } else if (s && (err = wfh_store_prune(s, before, &removed)) < 0) {
        return err;
    }
    if (o->json)
        printf("{\"removed\": %u, \"dry_run\": %s}\n", removed, o->dry_run ? "true" : "false");
    else
        printf("%s %u run%s\n", o->dry_run ? "would remove" : "removed", removed,
               removed == 1 ? "" : "s");
    return 0;
}

int cmd_runs(int argc, char **argv)
{
    opts o = {0};
    char *home = NULL;  /* owned */
    wfh_store *s = NULL; /* owned */
    int err;
    if (argc < 2 || wfh_cli_wants_help(argc, argv)) {
        fputs(usage_text, argc < 2 ? stderr : stdout);
        return argc < 2 ? WFH_EXIT_INVALID : WFH_EXIT_OK;
    }
    const char *sub = argv[1];
    if ((err = parse_opts(argc - 2, argv + 2, &o)) < 0)
        goto done;
    int need_id = !strcmp(sub, "show") || !strcmp(sub, "logs");
    int known = need_id || !strcmp(sub, "list") || !strcmp(sub, "prune");
    if (!known) {
        err = wfh_error_set(WFH_EUSAGE, "runs: unknown subcommand '%s' (list, show, logs, "
                            "prune)", sub);
        goto done;
    }
    if (need_id ? (o.npos < 1 || (o.npos > 1 && !strcmp(sub, "show"))) : o.npos > 0) {
        err = wfh_error_set(WFH_EUSAGE, "runs %s: wrong arguments (see wfhost runs --help)",
                            sub);
        goto done;
    }
    if ((err = wfh_home_path(o.home, &home)) < 0)
        goto done;
    /* Reading never creates a store; pruning writes, but only an existing one. */
    err = wfh_store_open(home, WFH_STORE_NO_CREATE, &s);
    if (err == WFH_ENOTFOUND && (!strcmp(sub, "list") || !strcmp(sub, "prune"))) {
        err = 0; /* no store yet: no runs */
    } else if (err == WFH_ENOTFOUND) {
        err = wfh_error_set(WFH_ENOTFOUND, "no run '%s': no runs recorded in %s yet",
                            o.pos[0], home);
        goto done;
    } else if (err < 0) {
        goto done;
    }
    if (!strcmp(sub, "list"))
        err = do_list(s, &o);
    else if (!strcmp(sub, "show"))
        err = do_show(s, &o);
    else if (!strcmp(sub, "logs"))
        err = do_logs(s, &o);
    else
        err = do_prune(s, &o);
done:
    wfh_store_free(s);
    free(home);
    return err < 0 ? wfh_cli_fail(err) : WFH_EXIT_OK;
}
