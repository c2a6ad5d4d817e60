/*
 * core/cli/cmd_plugin_sdk.c - the plugin author's commands (issue 9):
 *
 *   wfhost plugin new NAME [--lang c|rust] [--dir DIR]   copy a template, names filled in
 *   wfhost plugin check FILE.so [--json]                 the conformance checker
 *   wfhost plugin run FILE.so [TYPE] --with JSON --dev   one step of an uninstalled plugin
 *
 * check and run are the only commands that load a plugin the signed registry does not
 * list (wfh_catalog_open_unsigned / wfh_plugin_probe). Plugin code still never runs in
 * this process: the descriptor is read by the step runner's probe, and every step runs
 * through the attempt path exec uses (core/attempt.h), in the sandbox the policy grants
 * (core/policy.h), so limits and confinement are what an installed plugin would get.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <wfhost/plugin.h>

#include "../attempt.h"
#include "../catalog.h"
#include "../error.h"
#include "../policy.h"
#include "../schema.h"
#include "../workflow.h"
#include "cli.h"
#include "registry/elfcheck.h"
#include "registry/fsutil.h"

/* The token the templates use for the plugin's name; `plugin new` replaces it. */
#define TEMPLATE_TOKEN "sdktemplate"
/* A plugin file larger than this is not something anyone meant to check. */
#define PLUGIN_FILE_MAX (512u << 20)
/* Default time one checked attempt may take. */
#define CHECK_TIMEOUT_MS 10000u

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* rm -rf @p dir (a scratch directory of ours). */
static void remove_tree(const char *dir)
{
    pid_t pid = fork();
    if (pid == 0) {
        execlp("rm", "rm", "-rf", "--", dir, (char *)NULL);
        _exit(127);
    }
    if (pid > 0)
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
        }
}

/* ---- one attempt, start to finish ------------------------------------------------ */

static volatile sig_atomic_t sdk_interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    sdk_interrupted = 1;
}

/* Run one attempt to its end: the same start/read/kill/finish calls the scheduler
 * makes, for one attempt. @p timeout_ms 0: no limit of ours (the sandbox's wall limit
 * still applies). SIGINT cancels the attempt. Fills @p res (caller clears it). */
static int sdk_run_attempt(const wfh_attempt_spec *spec, const wfh_attempt_hooks *hooks,
                           uint64_t timeout_ms, wfh_attempt_result *res)
{
    wfh_attempt *a = NULL; /* owned */
    memset(res, 0, sizeof *res);
    int err = wfh_attempt_start(spec, hooks, &a);
    if (err < 0)
        return err;
    pid_t pid = wfh_attempt_pid(a);
    uint64_t deadline = timeout_ms ? mono_ms() + timeout_ms : 0;
    int killed = 0, ws = 0;
    for (;;) {
        int fds[2];
        struct pollfd p[2];
        nfds_t k = 0;
        int n = wfh_attempt_fds(a, fds);
        for (int i = 0; i < n; i++)
            if (fds[i] >= 0)
                p[k++] = (struct pollfd){.fd = fds[i], .events = POLLIN};
        int pr = poll(p, k, 20);
        for (nfds_t i = 0; pr > 0 && i < k; i++)
            if (p[i].revents)
                wfh_attempt_read(a, p[i].fd);
        pid_t w = waitpid(pid, &ws, WNOHANG);
        if (w == pid)
            break;
        if (w < 0 && errno != EINTR) {
            ws = 0;
            break;
        }
        if (!killed && sdk_interrupted) {
            killed = 1;
            wfh_attempt_kill(a, WFH_STEP_CANCELLED, "cancelled (SIGINT)");
        } else if (!killed && deadline && mono_ms() >= deadline) {
            char why[64];
            killed = 1;
            snprintf(why, sizeof why, "timed out after %llu ms", (unsigned long long)timeout_ms);
            wfh_attempt_kill(a, WFH_STEP_TIMEOUT, why);
        }
    }
    wfh_attempt_finish(a, ws, res);
    wfh_attempt_free(a);
    return 0;
}

static const char *status_name(int s)
{
    static const char *const names[] = {"ok",      "failed",        "transient", "permanent",
                                        "timeout", "invalid input", "cancelled"};
    return s >= 0 && s <= WFH_STEP_CANCELLED ? names[s] : "unknown";
}

/* "/abs/path" of @p path, or NULL with the reason set. Owned. */
static char *abs_file(const char *cmd, const char *path, int *err)
{
    char *r = realpath(path, NULL);
    struct stat st;
    if (!r || stat(r, &st) < 0 || !S_ISREG(st.st_mode)) {
        *err = wfh_error_set(WFH_EUSAGE, "%s: %s: %s", cmd, path,
                             r ? "not a regular file" : strerror(errno));
        free(r);
        return NULL;
    }
    return r;
}

/* A sandbox grant for @p caps (a step type's capabilities, borrowed): exactly what it
 * declares (plus the workspace), from @p policy_path's policy or, when NULL and
 * @p exact, from an empty policy that grants every declared capability, so the step
 * runs confined to its own declaration. */
static int sdk_grant(const char *policy_path, int exact, char **allows, size_t n_allows,
                     const char *workspace, const char *type, const json_t *caps, json_t **out)
{
    wfh_policy *pol = NULL; /* owned */
    int err = exact ? wfh_policy_new(&pol) : wfh_policy_load(policy_path, &pol);
    for (size_t i = 0; err == 0 && i < n_allows; i++)
        err = wfh_policy_allow_flag(pol, allows[i]);
    if (err == 0 && exact && json_is_object(caps)) {
        static const struct {
            const char *key, *flag;
        } cat[] = {{"network", "--allow-net="}, {"run", "--allow-run="},
                   {"read", "--allow-read="},   {"write", "--allow-write="},
                   {"env", "--allow-env="},     {"secrets", "--allow-env="}};
        for (size_t c = 0; err == 0 && c < sizeof cat / sizeof cat[0]; c++) {
            const json_t *v = json_object_get(caps, cat[c].key);
            if (json_is_true(v)) {
                err = wfh_policy_allow_flag(pol, "--allow-net");
                continue;
            }
            for (size_t i = 0; err == 0 && i < json_array_size(v); i++) {
                const char *s = json_string_value(json_array_get(v, i));
                char flag[PATH_MAX + 32];
                if (!s)
                    continue;
                snprintf(flag, sizeof flag, "%s%s", cat[c].flag, s);
                err = wfh_policy_allow_flag(pol, flag);
            }
        }
    }
    if (err == 0)
        err = wfh_policy_set_workspace(pol, workspace);
    if (err == 0)
        err = wfh_policy_grant_for(pol, type, type, caps, NULL, out);
    wfh_policy_free(pol);
    return err;
}

/* ---- plugin run -------------------------------------------------------------------- */

static void run_usage(FILE *out)
{
    fputs("usage: wfhost plugin run FILE.so [TYPE] --with JSON [--dev] [--json]\n"
          "                         [--workspace DIR] [--policy FILE] [--allow-*=...]\n"
          "                         [--timeout SECONDS]\n\n"
          "Run one step of an UNINSTALLED plugin, without a workflow and without the\n"
          "registry: the plugin author's edit-build-run loop. The step runs as exec runs\n"
          "it: in the step runner, in the sandbox the policy grants (the home's policy, or\n"
          "--policy FILE, plus --allow-* flags), with the inputs checked against the step\n"
          "type's schema first. TYPE may be left out when the plugin has one step type.\n\n"
          "This is a development command: it runs code nobody signed, so it refuses when\n"
          "stdin is not a terminal (a script, CI) unless --dev is given.\n\n"
          "  --with JSON        the step's inputs, a JSON object (default {})\n"
          "  --dev              allow running without a terminal (scripts, tests)\n"
          "  --json             print {status, error, outputs, sandbox} as JSON\n"
          "  --workspace DIR    the directory the step works in (default: the current one)\n"
          "  --policy FILE      the sandbox policy (default: the wfhost home's)\n"
          "  --allow-net[=HOST:PORT,...] --allow-read=PATH,... --allow-write=PATH,...\n"
          "  --allow-run=PROGRAM,... --allow-env=NAME,...   grant more to this step\n"
          "  --timeout SECONDS  cancel the step after this long (default: the sandbox's)\n\n"
          "Outputs go to stdout as one JSON object, the step's logs to stderr.\n"
          "exit status: 0 the step succeeded, 1 it failed, 2 bad usage or invalid input,\n"
          "3 refused (no terminal without --dev, or a capability the policy does not grant).\n",
          out);
}

typedef struct run_log_ctx {
    int quiet;
} run_log_ctx;

static void run_on_log(void *ud, wfh_attempt *a, int level, const char *msg, size_t len)
{
    (void)a;
    static const char *const lv[] = {"error", "warn", "info", "debug"};
    run_log_ctx *c = ud;
    if (c->quiet)
        return;
    fprintf(stderr, "[%s] %.*s\n", level >= 0 && level <= 3 ? lv[level] : "log", (int)len, msg);
}

static void run_on_progress(void *ud, wfh_attempt *a, double fraction, const char *msg)
{
    (void)a;
    run_log_ctx *c = ud;
    if (c->quiet)
        return;
    if (fraction >= 0)
        fprintf(stderr, "[progress] %3.0f%% %s\n", fraction * 100, msg ? msg : "");
    else
        fprintf(stderr, "[progress] %s\n", msg ? msg : "");
}

typedef struct schema_report_ctx {
    const char *cmd;
    int n;
} schema_report_ctx;

static void run_schema_report(void *ud, const json_t *inst, const char *path, const char *msg)
{
    (void)inst;
    schema_report_ctx *c = ud;
    c->n++;
    fprintf(stderr, "%s: %s: %s\n", c->cmd, path, msg);
}

int cmd_plugin_run(int argc, char **argv)
{
    const char *file = NULL, *type = NULL, *with = "{}", *workspace = NULL, *policy_path = NULL;
    int dev = 0, as_json = 0;
    double timeout_s = 0;
    char **allows = NULL; /* owned array of borrowed strings */
    size_t n_allows = 0;
    int err = 0, rc = WFH_EXIT_OK;
    char *path = NULL, *cwd = NULL;                      /* owned */
    wfh_catalog *cat = NULL;                             /* owned */
    json_t *inputs = NULL, *env = NULL, *sandbox = NULL; /* owned */
    wfh_attempt_result res;
    memset(&res, 0, sizeof res);
    int have_res = 0;

    if (!(allows = calloc((size_t)argc + 1, sizeof *allows)))
        return wfh_cli_fail(wfh_error_set(WFH_ENOMEM, "out of memory"));
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            run_usage(stdout);
            goto done;
        } else if (!strcmp(a, "--dev")) {
            dev = 1;
        } else if (!strcmp(a, "--json")) {
            as_json = 1;
        } else if (!strcmp(a, "--with") && i + 1 < argc) {
            with = argv[++i];
        } else if (!strncmp(a, "--with=", 7)) {
            with = a + 7;
        } else if (!strcmp(a, "--workspace") && i + 1 < argc) {
            workspace = argv[++i];
        } else if (!strcmp(a, "--policy") && i + 1 < argc) {
            policy_path = argv[++i];
        } else if (!strcmp(a, "--timeout") && i + 1 < argc) {
            char *end;
            timeout_s = strtod(argv[++i], &end);
            if (*end || !(timeout_s > 0) || timeout_s > 1e7) {
                err = wfh_error_set(
                    WFH_EUSAGE, "plugin run: --timeout %s: want a number of seconds > 0", argv[i]);
                goto done;
            }
        } else if (!strncmp(a, "--allow-", 8)) {
            allows[n_allows++] = argv[i];
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "wfhost plugin run: unknown option '%s'\n", a);
            run_usage(stderr);
            rc = WFH_EXIT_INVALID;
            goto done;
        } else if (!file) {
            file = a;
        } else if (!type) {
            type = a;
        } else {
            err = wfh_error_set(WFH_EUSAGE, "plugin run: one step at a time ('%s' is extra)", a);
            goto done;
        }
    }
    if (!file) {
        run_usage(stderr);
        rc = WFH_EXIT_INVALID;
        goto done;
    }
    if (!dev && !isatty(STDIN_FILENO)) {
        err = wfh_error_set(
            WFH_ESECURITY,
            "plugin run: refusing to run the unsigned plugin %s: stdin is not a "
            "terminal, and this development command is meant for a person at one (pass --dev "
            "to run it from a script; install it with 'wfhost plugin install' for real runs)",
            file);
        goto done;
    }
    if (!(path = abs_file("plugin run", file, &err)))
        goto done;

    json_error_t jerr;
    inputs = json_loads(with, JSON_REJECT_DUPLICATES, &jerr);
    if (!inputs || !json_is_object(inputs)) {
        err =
            inputs
                ? wfh_error_set(WFH_EUSAGE,
                                "plugin run: --with: want a JSON object, like '{\"name\": \"x\"}'")
                : wfh_error_set(WFH_EUSAGE, "plugin run: --with:%d:%d: %s", jerr.line, jerr.column,
                                jerr.text);
        goto done;
    }

    const char *paths[1] = {path};
    if ((err = wfh_catalog_open_unsigned(paths, 1, &cat)) < 0)
        goto done;
    if (cat->n_plugins != 1) {
        err = wfh_error_set(WFH_EABI, "plugin run: %s could not be loaded (the reason is above)",
                            file);
        goto done;
    }
    const wfh_plugin_meta *pm = &cat->plugins[0];
    const wfh_type_meta *tm = NULL; /* borrowed from cat */
    for (size_t i = 0; i < pm->n_types && !tm; i++)
        if ((type && !strcmp(pm->types[i].name, type)) || (!type && pm->n_types == 1))
            tm = &pm->types[i];
    if (!tm) {
        char list[512] = "";
        size_t o = 0;
        for (size_t i = 0; i < pm->n_types && o < sizeof list; i++) {
            int m = snprintf(list + o, sizeof list - o, "%s%s", i ? ", " : "", pm->types[i].name);
            o += m > 0 ? (size_t)m : 0;
        }
        err = wfh_error_set(WFH_EUSAGE,
                            type ? "plugin run: plugin %s has no step type '%s' (it has: %s)"
                                 : "plugin run: plugin %s has several step types: name one (%s%s)",
                            pm->name, type ? type : "", list);
        goto done;
    }

    /* The inputs are checked as exec checks a step's `with:`, every problem listed. */
    schema_report_ctx sc = {"wfhost plugin run", 0};
    wfh_schema_opts so = {.report = run_schema_report, .ud = &sc, .root = "with"};
    int np = wfh_schema_validate(tm->input_schema, inputs, &so);
    if (np != 0) {
        err = np < 0 ? np
                     : wfh_error_set(WFH_EINVAL,
                                     "plugin run: %d problem(s) in --with for step type %s", np,
                                     tm->name);
        goto done;
    }

    if (!workspace && !(workspace = cwd = getcwd(NULL, 0))) {
        err = wfh_error_set(WFH_EIO, "plugin run: cannot name the current directory: %s",
                            strerror(errno));
        goto done;
    }
    if ((err = sdk_grant(policy_path, 0, allows, n_allows, workspace, tm->name, tm->capabilities,
                         &sandbox)) < 0)
        goto done;

    char run_id[64];
    snprintf(run_id, sizeof run_id, "dev-%ld", (long)getpid());
    env = json_object();
    wfh_attempt_spec spec = {
        .runner_path = cat->runner_path,
        .plugin_path = path,
        .step_type = tm->name,
        .inputs = inputs,
        .env = env,
        .run_id = run_id,
        .step_id = tm->name,
        .idempotency_key = run_id,
        .workspace = workspace,
        .attempt = 1,
        .sandbox = sandbox,
    };
    run_log_ctx lc = {0};
    wfh_attempt_hooks hooks = {.log = run_on_log, .progress = run_on_progress, .ud = &lc};
    struct sigaction sa = {.sa_handler = on_sigint}, old;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old);
    err = sdk_run_attempt(&spec, &hooks, (uint64_t)(timeout_s * 1000), &res);
    sigaction(SIGINT, &old, NULL);
    if (err < 0)
        goto done;
    have_res = 1;
    if (as_json) {
        json_t *j = json_pack("{s:s, s:s?, s:O, s:O?}", "status", status_name(res.status), "error",
                              res.error, "outputs", res.outputs, "sandbox", res.sandbox);
        char *s = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
        json_decref(j);
        if (s)
            puts(s);
        free(s);
    } else {
        char *s = json_dumps(res.outputs, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (s)
            puts(s);
        free(s);
    }
    if (res.status != WFH_STEP_OK) {
        fprintf(stderr, "wfhost plugin run: %s (%s): %s: %s\n", tm->name, pm->name,
                status_name(res.status), res.error ? res.error : "no message");
        rc = res.status == WFH_STEP_INVALID_INPUT ? WFH_EXIT_INVALID
             : res.status == WFH_STEP_CANCELLED   ? WFH_EXIT_CANCELLED
                                                  : WFH_EXIT_FAILED;
    }
done:
    if (have_res)
        wfh_attempt_result_clear(&res);
    json_decref(inputs);
    json_decref(env);
    json_decref(sandbox);
    wfh_catalog_free(cat);
    free(path);
    free(cwd);
    free(allows);
    return err < 0 ? wfh_cli_fail(err) : rc;
}

/* ---- plugin check ------------------------------------------------------------------ */

typedef struct check_report {
    json_t *checks; /* owned array of {check, result, detail} */
    int problems, warnings;
    int json;
} check_report;

enum { CHK_OK, CHK_WARN, CHK_FAIL, CHK_SKIP };

static void report(check_report *r, int result, const char *check, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void report(check_report *r, int result, const char *check, const char *fmt, ...)
{
    static const char *const label[] = {"ok", "warn", "FAIL", "skip"};
    char detail[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    if (result == CHK_FAIL)
        r->problems++;
    if (result == CHK_WARN)
        r->warnings++;
    if (r->json)
        json_array_append_new(r->checks, json_pack("{s:s, s:s, s:s}", "check", check, "result",
                                                   result == CHK_FAIL ? "fail" : label[result],
                                                   "detail", detail));
    else
        printf("  %-4s  %s: %s\n", label[result], check, detail);
}

/* A short JSON rendering of @p v for the report (owned; "?" on failure). */
static char *short_json(const json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
    if (s && strlen(s) > 160)
        strcpy(s + 150, "...");
    return s ? s : strdup("?");
}

static int valid_output_name(const char *s)
{
    if (!s || !((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_'))
        return 0;
    for (s++; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '-'))
            return 0;
    return 1;
}

static int valid_env_name(const char *s)
{
    if (!s || !((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_'))
        return 0;
    for (s++; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              *s == '_'))
            return 0;
    return 1;
}

/* "host:port" with a port in 1..65535 and a non-empty host. */
static int valid_host_port(const char *s)
{
    const char *colon = s ? strrchr(s, ':') : NULL;
    if (!colon || colon == s)
        return 0;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    return colon[1] && !*end && port >= 1 && port <= 65535;
}

/* Capabilities as plugin.h defines them. Returns 0, or -1 with the reason in @p why. */
static int caps_problem(const json_t *caps, char *why, size_t n)
{
    if (!json_is_object(caps)) {
        snprintf(why, n, "not a JSON object");
        return -1;
    }
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)caps, k, v)
    {
        int is_path = !strcmp(k, "run") || !strcmp(k, "read") || !strcmp(k, "write");
        int is_name = !strcmp(k, "env") || !strcmp(k, "secrets");
        int is_net = !strcmp(k, "network");
        if (!is_path && !is_name && !is_net) {
            snprintf(why, n,
                     "unknown member \"%s\" (known: network, run, read, write, env, secrets)", k);
            return -1;
        }
        if (is_net && json_is_boolean(v))
            continue;
        if (!json_is_array(v)) {
            snprintf(why, n, "\"%s\" must be an array of strings%s", k, is_net ? " or true" : "");
            return -1;
        }
        for (size_t i = 0; i < json_array_size(v); i++) {
            const char *s = json_string_value(json_array_get(v, i));
            const char *want = !s                       ? "a string"
                               : is_path && s[0] != '/' ? "an absolute path"
                               : is_name && !valid_env_name(s)
                                   ? "a variable name ([A-Za-z_][A-Za-z0-9_]*)"
                               : is_net && !valid_host_port(s) ? "\"host:port\""
                                                               : NULL;
            if (want) {
                char *j = short_json(json_array_get(v, i));
                snprintf(why, n, "%s[%zu] = %s: want %s", k, i, j, want);
                free(j);
                return -1;
            }
        }
    }
    return 0;
}

static int count_problems(const json_t *schema, const json_t *inst);

/* A value that satisfies @p s, as far as a generator without a solver can: const,
 * default, the first enum value, the first alternative, else from the type and its
 * bounds. @p all: also the optional properties of objects. New reference. */
static json_t *gen_valid(const json_t *s, int all, int depth)
{
    const json_t *v;
    if (!json_is_object(s) || depth > 8)
        return json_string("x");
    if ((v = json_object_get(s, "const")))
        return json_deep_copy(v);
    if ((v = json_object_get(s, "default")))
        return json_deep_copy(v);
    if ((v = json_object_get(s, "enum")) && json_array_size(v))
        return json_deep_copy(json_array_get(v, 0));
    if ((v = json_object_get(s, "examples")) && json_array_size(v))
        return json_deep_copy(json_array_get(v, 0));
    const char *alts[] = {"oneOf", "anyOf", "allOf"};
    for (size_t i = 0; i < 3; i++)
        if ((v = json_object_get(s, alts[i])) && json_array_size(v) && !json_object_get(s, "type"))
            return gen_valid(json_array_get(v, 0), all, depth + 1);
    const json_t *t = json_object_get(s, "type");
    const char *type = json_string_value(t);
    for (size_t i = 0; !type && i < json_array_size(t); i++) {
        type = json_string_value(json_array_get(t, i));
        if (type && !strcmp(type, "null") && i + 1 < json_array_size(t))
            type = NULL;
    }
    if (!type)
        type = json_object_get(s, "properties") ? "object" : "string";
    if (!strcmp(type, "object")) {
        json_t *o = json_object();
        const json_t *props = json_object_get(s, "properties"),
                     *req = json_object_get(s, "required");
        const char *k;
        json_t *ps;
        /* What is required: "required", and that of the first oneOf/anyOf branch
         * ({"oneOf": [{"required": ["run"]}, {"required": ["argv"]}]}). */
        const json_t *reqs[3] = {req, NULL, NULL};
        for (size_t i = 0; i < 3; i++) {
            const json_t *alt = json_array_get(json_object_get(s, alts[i]), 0);
            if (i < 2)
                reqs[i + 1] = json_object_get(alt, "required");
        }
        for (size_t r = 0; r < 3; r++)
            for (size_t i = 0; i < json_array_size(reqs[r]); i++) {
                const char *name = json_string_value(json_array_get(reqs[r], i));
                if (name && !json_object_get(o, name))
                    json_object_set_new(o, name,
                                        gen_valid(json_object_get(props, name), all, depth + 1));
            }
        /* Then each optional property that keeps the object valid (one of two
         * alternatives, say, but not both). */
        json_object_foreach((json_t *)props, k, ps)
        {
            if (!all || json_object_get(o, k))
                continue;
            json_t *val = gen_valid(ps, all, depth + 1);
            if (!val || json_object_set_new(o, k, val) < 0)
                continue;
            if (count_problems(s, o) > 0)
                json_object_del(o, k);
        }
        return o;
    }
    if (!strcmp(type, "array")) {
        json_t *a = json_array();
        json_int_t n = json_integer_value(json_object_get(s, "minItems"));
        if (n < 1 && all)
            n = 1;
        for (json_int_t i = 0; i < n && i < 16; i++)
            json_array_append_new(a, gen_valid(json_object_get(s, "items"), all, depth + 1));
        return a;
    }
    if (!strcmp(type, "integer") || !strcmp(type, "number")) {
        const json_t *mn = json_object_get(s, "minimum"),
                     *xmn = json_object_get(s, "exclusiveMinimum");
        const json_t *mx = json_object_get(s, "maximum"),
                     *xmx = json_object_get(s, "exclusiveMaximum");
        double x = 1;
        if (json_is_number(mn))
            x = json_number_value(mn);
        else if (json_is_number(xmn))
            x = json_number_value(xmn) + 1;
        else if (json_is_number(mx) && json_number_value(mx) < 1)
            x = json_number_value(mx);
        else if (json_is_number(xmx) && json_number_value(xmx) <= 1)
            x = json_number_value(xmx) - 1;
        if (!strcmp(type, "integer") || x == (double)(json_int_t)x)
            return json_integer((json_int_t)x);
        return json_real(x);
    }
    if (!strcmp(type, "boolean"))
        return json_true();
    if (!strcmp(type, "null"))
        return json_null();
    json_int_t n = json_integer_value(json_object_get(s, "minLength"));
    const json_t *mx = json_object_get(s, "maxLength");
    if (n < 1 && !(json_is_integer(mx) && json_integer_value(mx) == 0))
        n = 1;
    if (n > 4096)
        n = 4096;
    char *buf = malloc((size_t)n + 1);
    if (!buf)
        return NULL;
    memset(buf, 'x', (size_t)n);
    buf[n] = 0;
    json_t *r = json_string(buf);
    free(buf);
    return r;
}

static int count_problems(const json_t *schema, const json_t *inst)
{
    wfh_schema_opts o = {0};
    return wfh_schema_validate(schema, inst, &o);
}

/* A value of a type that @p ps does not allow, or NULL if every candidate fits. */
static json_t *wrong_type_for(const json_t *ps)
{
    json_t *cands[] = {json_string("wfh-check"), json_integer(12345), json_array(), json_object(),
                       json_true()};
    json_t *pick = NULL;
    for (size_t i = 0; i < sizeof cands / sizeof cands[0]; i++) {
        if (!pick && count_problems(ps, cands[i]) > 0)
            pick = json_incref(cands[i]);
        json_decref(cands[i]);
    }
    return pick;
}

typedef struct check_case {
    char what[256];
    json_t *inputs; /* owned */
    int lenient;    /* an unknown member: ignoring it is only a warning */
} check_case;

/* The invalid variants of a valid object @p good (borrowed), each confirmed invalid
 * by the schema validator. Returns how many were put in @p out (at most @p max). */
static size_t gen_invalid(const json_t *schema, const json_t *good, check_case *out, size_t max)
{
    size_t n = 0;
    const json_t *req = json_object_get(schema, "required"),
                 *props = json_object_get(schema, "properties");
    for (size_t i = 0; i < json_array_size(req) && n < max; i++) {
        const char *k = json_string_value(json_array_get(req, i));
        json_t *v = k ? json_deep_copy(good) : NULL;
        if (!v || json_object_del(v, k) < 0 || count_problems(schema, v) <= 0) {
            json_decref(v);
            continue;
        }
        snprintf(out[n].what, sizeof out[n].what, "without required input '%s'", k);
        out[n++].inputs = v;
    }
    const char *k;
    json_t *ps;
    json_object_foreach((json_t *)props, k, ps)
    {
        if (n >= max)
            break;
        json_t *bad = wrong_type_for(ps), *v = bad ? json_deep_copy(good) : NULL;
        if (!v || json_object_set(v, k, bad) < 0 || count_problems(schema, v) <= 0) {
            json_decref(v);
            json_decref(bad);
            continue;
        }
        char *j = short_json(bad);
        snprintf(out[n].what, sizeof out[n].what, "with '%s' = %s (wrong type)", k, j);
        free(j);
        json_decref(bad);
        out[n++].inputs = v;
    }
    if (n < max && json_is_false(json_object_get(schema, "additionalProperties"))) {
        json_t *v = json_deep_copy(good);
        if (v && json_object_set_new(v, "wfh_check_unknown", json_true()) == 0 &&
            count_problems(schema, v) > 0) {
            snprintf(out[n].what, sizeof out[n].what, "with an unknown input 'wfh_check_unknown'");
            out[n].lenient = 1;
            out[n++].inputs = v;
        } else {
            json_decref(v);
        }
    }
    return n;
}

/* Why an attempt did not end the way a conforming step ends (it returned a status
 * with a message for a failure), or NULL. The runner and its sandbox supervisor say it
 * in the result's error: a signal, a limit, no result at all. */
static const char *abnormal_end(const wfh_attempt_result *res)
{
    static const struct {
        const char *marker, *label;
    } ends[] = {
        {"crashed", "crashed"},
        {"killed by", "was killed"},
        {"without a result", "ended without a result"},
        {"vanished", "ended without a result"},
        {"exceeded", "hit a sandbox limit"},
        {"timed out after", "did not finish (a step must return, or poll is_cancelled())"},
        {"not a wfh_step_status", "broke the ABI"},
        {"and no message", "failed without a message (call set_error)"},
    };
    if (res->term_signal)
        return "crashed";
    for (size_t i = 0; res->error && i < sizeof ends / sizeof ends[0]; i++)
        if (strstr(res->error, ends[i].marker))
            return ends[i].label;
    return NULL;
}

typedef struct check_run {
    const wfh_catalog *cat; /* all borrowed */
    const wfh_plugin_meta *pm;
    const char *path;
    const char *workspace;
    uint64_t timeout_ms;
    int no_run; /* --no-run: descriptor and ELF checks only */
} check_run;

/* Keeps the first sanitizer report line of the step's stderr (the runner logs the
 * plugin's stderr line by line): the reason an ASan build "exited without a result". */
static void check_on_log(void *ud, wfh_attempt *a, int level, const char *msg, size_t len)
{
    (void)a, (void)level;
    char *keep = ud;
    if (!keep[0] && len > 0 && memmem(msg, len, "Sanitizer", 9))
        snprintf(keep, 300, "%.*s", (int)(len < 299 ? len : 299), msg);
}

/* Run step type @p tm with @p inputs; the result's outputs are checked against the
 * declared ones. @p invalid: the inputs break the schema and the step must say so
 * (2: only an unknown member, which the host refuses before any step runs, so a step
 * that ignores it gets a warning: ignoring unknown members is the forward-compatible
 * JSON habit). Returns the status, or -1 for a crash. */
static int check_one(check_report *r, const check_run *cr, const wfh_type_meta *tm,
                     const json_t *sandbox, const char *what, json_t *inputs, int invalid)
{
    char check[256];
    snprintf(check, sizeof check, "%s: run %s", tm->name, what);
    json_t *env = json_object();
    wfh_attempt_spec spec = {
        .runner_path = cr->cat->runner_path,
        .plugin_path = cr->path,
        .step_type = tm->name,
        .inputs = inputs,
        .env = env,
        .run_id = "check",
        .step_id = tm->name,
        .idempotency_key = "check",
        .workspace = cr->workspace,
        .attempt = 1,
        .sandbox = (json_t *)sandbox,
    };
    char sanitizer[300] = "";
    wfh_attempt_hooks hooks = {.log = check_on_log, .ud = sanitizer};
    wfh_attempt_result res;
    int err = sdk_run_attempt(&spec, &hooks, cr->timeout_ms, &res);
    json_decref(env);
    if (err < 0) {
        report(r, CHK_FAIL, check, "could not start: %s", wfh_error_last());
        return -1;
    }
    int status = res.status;
    const char *why = res.error ? res.error : "no message";
    const char *abnormal = abnormal_end(&res);
    if (abnormal) {
        report(r, CHK_FAIL, check, "%s: %s%s%s", abnormal, why, sanitizer[0] ? "; " : "",
               sanitizer);
        status = -1;
    } else if (invalid) {
        if (res.status == WFH_STEP_INVALID_INPUT)
            report(r, CHK_OK, check, "refused as invalid input: %s", why);
        else if (res.status == WFH_STEP_OK && invalid == 2)
            report(r, CHK_WARN, check, "ignored the unknown input and succeeded");
        else if (res.status == WFH_STEP_OK)
            report(r, CHK_FAIL, check,
                   "succeeded, but the inputs break the schema: it must return "
                   "WFH_STEP_INVALID_INPUT (the host checks inputs, but a plugin must not rely on "
                   "it)");
        else if (invalid == 2)
            report(r, CHK_WARN, check, "ignored the unknown input: ended '%s' (%s)",
                   status_name(res.status), why);
        else
            report(r, CHK_FAIL, check,
                   "ended '%s' (%s), want 'invalid input' (WFH_STEP_INVALID_INPUT)",
                   status_name(res.status), why);
    } else {
        const char *k;
        json_t *v;
        const char *undeclared = NULL;
        json_object_foreach(res.outputs, k, v)
        {
            if (!json_object_get(tm->outputs, k) && !json_object_get(tm->outputs, "*"))
                undeclared = k;
        }
        if (undeclared)
            report(r, CHK_FAIL, check,
                   "set output '%s', which the step type's outputs do not declare", undeclared);
        else if (res.status == WFH_STEP_OK)
            report(r, CHK_OK, check, "succeeded (%zu output(s))", json_object_size(res.outputs));
        else if (res.status == WFH_STEP_INVALID_INPUT)
            report(r, CHK_WARN, check,
                   "refused inputs its schema accepts (%s): tighten the schema so the host "
                   "catches this at validate time",
                   why);
        else
            report(r, CHK_OK, check, "ended '%s' without crashing: %s", status_name(res.status),
                   why);
    }
    wfh_attempt_result_clear(&res);
    return status;
}

static void check_type(check_report *r, const check_run *cr, const wfh_type_meta *tm)
{
    char check[160], why[512];
    int ok = 1;

    /* The name: one the core keeps for a built-in step type is refused at install. */
    if (wfh_builtin_type(tm->name)) {
        snprintf(check, sizeof check, "%s: name", tm->name);
        report(r, CHK_FAIL, check,
               "step type '%s' is built into wfhost (the name is reserved): `wfhost plugin "
               "install` refuses it; rename the step type",
               tm->name);
        ok = 0;
    }

    /* The input schema: an object schema this host's validator understands. */
    snprintf(check, sizeof check, "%s: input schema", tm->name);
    const json_t *st = json_object_get(tm->input_schema, "type");
    if (wfh_schema_check(tm->input_schema) < 0) {
        report(r, CHK_FAIL, check, "%s", wfh_error_last());
        ok = 0;
    } else if (!json_is_string(st) || strcmp(json_string_value(st), "object")) {
        report(r, CHK_FAIL, check, "must say \"type\": \"object\" (a step's `with:` is an object)");
        ok = 0;
    } else if (!json_is_object(json_object_get(tm->input_schema, "properties"))) {
        report(r, CHK_WARN, check,
               "declares no \"properties\": workflow authors cannot see what to pass");
    } else {
        report(r, CHK_OK, check, "object schema with %zu propert%s",
               json_object_size(json_object_get(tm->input_schema, "properties")),
               json_object_size(json_object_get(tm->input_schema, "properties")) == 1 ? "y"
                                                                                      : "ies");
    }

    snprintf(check, sizeof check, "%s: outputs", tm->name);
    const char *k;
    json_t *v;
    const char *bad = NULL;
    json_object_foreach(tm->outputs, k, v)
    {
        /* "*" declares outputs named at run time (the shell's $WFH_OUTPUT lines). */
        if (!bad && ((!valid_output_name(k) && strcmp(k, "*")) || !json_is_string(v)))
            bad = k;
    }
    if (bad)
        report(r, CHK_FAIL, check,
               "'%s': want a name [A-Za-z_][A-Za-z0-9_-]* mapped to a one-line description", bad);
    else
        report(r, CHK_OK, check, "%zu declared", json_object_size(tm->outputs));

    snprintf(check, sizeof check, "%s: capabilities", tm->name);
    json_t *sandbox = NULL; /* owned */
    if (caps_problem(tm->capabilities, why, sizeof why) < 0) {
        report(r, CHK_FAIL, check, "%s", why);
        ok = 0;
    } else if (sdk_grant(NULL, 1, NULL, 0, cr->workspace, tm->name, tm->capabilities, &sandbox) <
               0) {
        report(r, CHK_FAIL, check, "%s", wfh_error_last());
        ok = 0;
    } else {
        char *j = short_json(tm->capabilities);
        report(r, CHK_OK, check, "%s (the runs below are granted exactly this)", j);
        free(j);
    }
    if (!ok || cr->no_run) {
        report(r, CHK_SKIP, tm->name,
               ok ? "not run (--no-run)" : "not run: fix the problems above first");
        json_decref(sandbox);
        return;
    }

    /* Valid inputs: the required ones only, then every declared one. */
    json_t *good[2] = {gen_valid(tm->input_schema, 0, 0), gen_valid(tm->input_schema, 1, 0)};
    int ran_valid = 0;
    const json_t *base = NULL; /* borrowed: valid inputs the step accepted */
    for (int i = 0; i < 2; i++) {
        if (!good[i] || (i == 1 && json_equal(good[0], good[1])))
            continue;
        int np = count_problems(tm->input_schema, good[i]);
        char *j = short_json(good[i]);
        char what[256];
        snprintf(what, sizeof what, "with %s inputs %s", i ? "all" : "required", j);
        free(j);
        if (np != 0) {
            snprintf(check, sizeof check, "%s: run", tm->name);
            report(r, CHK_WARN, check,
                   "could not generate valid inputs from the schema (%s); add \"default\" "
                   "or \"examples\" to the properties",
                   what + 5);
            continue;
        }
        ran_valid = 1;
        int ran = check_one(r, cr, tm, sandbox, what, good[i], 0);
        if (ran >= 0 && ran != WFH_STEP_INVALID_INPUT)
            base = good[i];
    }
    /* Invalid inputs: each must be refused as invalid input. */
    check_case cases[12];
    memset(cases, 0, sizeof cases);
    /* Each breaks one rule of inputs the step accepted, so a refusal is about that rule. */
    size_t n =
        base ? gen_invalid(tm->input_schema, base, cases, sizeof cases / sizeof cases[0]) : 0;
    for (size_t i = 0; i < n; i++) {
        check_one(r, cr, tm, sandbox, cases[i].what, cases[i].inputs, cases[i].lenient ? 2 : 1);
        json_decref(cases[i].inputs);
    }
    snprintf(check, sizeof check, "%s: invalid inputs", tm->name);
    if (ran_valid && !base)
        report(r, CHK_SKIP, check, "not run: no generated valid input ran cleanly (see above)");
    else if (base && n == 0)
        report(r, CHK_SKIP, check, "the schema accepts anything the checker could break");
    json_decref(good[0]);
    json_decref(good[1]);
    json_decref(sandbox);
}

static void check_usage(FILE *out)
{
    fputs("usage: wfhost plugin check FILE.so [--json] [--timeout SECONDS] [--no-run]\n\n"
          "The conformance checker for plugin authors. Without installing anything it:\n"
          "  - checks the ELF file as `plugin install` does: a shared object for this\n"
          "    machine exporting only wfh_plugin_entry_v1, no RPATH/RUNPATH, TEXTREL or\n"
          "    static TLS, needing libraries by soname only (not by path);\n"
          "  - loads it in the step runner (a child process) and checks the descriptor:\n"
          "    struct sizes, ABI version, names, versions;\n"
          "  - checks each step type: its input schema is an object JSON Schema using only\n"
          "    keywords wfhost understands, its outputs are named and described, its\n"
          "    capabilities are well formed;\n"
          "  - runs each step type, sandboxed and granted exactly its capabilities, with\n"
          "    inputs generated from its schema (must not crash or hang, and may set only\n"
          "    declared outputs) and with inputs that break the schema (must fail with\n"
          "    WFH_STEP_INVALID_INPUT, not crash). The runs are real: a step that sends\n"
          "    requests or writes files does so (in a scratch workspace, within its grant).\n"
          "A plugin built with -fsanitize=address runs with the sanitizer preloaded.\n\n"
          "  --json             print the report as one JSON object\n"
          "  --timeout SECONDS  time one run may take (default 10)\n"
          "  --no-run           check the file and the descriptor, run no step\n\n"
          "exit status: 0 every check passed (warnings allowed), 1 a check failed,\n"
          "2 bad usage or a file that cannot be read.\n",
          out);
}

#if defined(__SANITIZE_ADDRESS__)
#define WFH_CLI_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WFH_CLI_ASAN 1
#endif
#endif

/* The sanitizer runtime a plugin built with -fsanitize=address needs (its DT_NEEDED
 * name, e.g. "libasan.so.8"), or NULL. The runner must have it loaded first. */
static const char *asan_runtime(const char *img, size_t len, char *buf, size_t n)
{
    const char *p = memmem(img, len, "libasan.so", 10);
    if (!p)
        return NULL;
    size_t k = 0;
    while (p + k < img + len && p[k] && k + 1 < n)
        k++;
    memcpy(buf, p, k);
    buf[k] = 0;
    return buf;
}

int cmd_plugin_check(int argc, char **argv)
{
    const char *file = NULL;
    double timeout_s = CHECK_TIMEOUT_MS / 1000.0;
    int no_run = 0;
    check_report r = {0};
    int err = 0, rc = WFH_EXIT_OK;
    char *path = NULL, *img = NULL, *runner = NULL; /* owned */
    size_t len = 0;
    wfh_plugin_meta pm;
    memset(&pm, 0, sizeof pm);
    char ws_tmpl[] = "/tmp/wfhost-check.XXXXXX";
    char *workspace = NULL; /* points into ws_tmpl once created */

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            check_usage(stdout);
            return WFH_EXIT_OK;
        } else if (!strcmp(argv[i], "--json")) {
            r.json = 1;
        } else if (!strcmp(argv[i], "--no-run")) {
            no_run = 1;
        } else if (!strcmp(argv[i], "--timeout") && i + 1 < argc) {
            char *end;
            timeout_s = strtod(argv[++i], &end);
            if (*end || !(timeout_s > 0) || timeout_s > 1e6)
                return wfh_cli_fail(wfh_error_set(
                    WFH_EUSAGE, "plugin check: --timeout %s: want seconds > 0", argv[i]));
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "wfhost plugin check: unknown option '%s'\n", argv[i]);
            check_usage(stderr);
            return WFH_EXIT_INVALID;
        } else if (!file) {
            file = argv[i];
        } else {
            return wfh_cli_fail(wfh_error_set(
                WFH_EUSAGE, "plugin check: one plugin at a time ('%s' is extra)", argv[i]));
        }
    }
    if (!file) {
        check_usage(stderr);
        return WFH_EXIT_INVALID;
    }
    if (!(path = abs_file("plugin check", file, &err)))
        goto done;
    if ((err = wfh_fs_read_at(AT_FDCWD, path, PLUGIN_FILE_MAX, 0, "plugin", &img, &len)) < 0)
        goto done;
    if (!(r.checks = json_array()) || !(runner = wfh_default_runner_path())) {
        err = wfh_error_set(WFH_ENOMEM, "out of memory");
        goto done;
    }
    if (!mkdtemp(ws_tmpl)) {
        err = wfh_error_set(WFH_EIO, "plugin check: cannot make a workspace in /tmp: %s",
                            strerror(errno));
        goto done;
    }
    workspace = ws_tmpl;
    if (!r.json)
        printf("wfhost plugin check %s\n", file);

    /* The file as the installer sees it. */
    if (wfh_elf_check((const uint8_t *)img, len, file) < 0)
        report(&r, CHK_FAIL, "elf", "%s", wfh_error_last());
    else
        report(&r, CHK_OK, "elf",
               "exports only %s; no RPATH, RUNPATH, TEXTREL or static TLS; libraries "
               "needed by soname",
               WFH_ENTRY_SYMBOL);

    char asan[64];
    const char *rt = asan_runtime(img, len, asan, sizeof asan);
#ifdef WFH_CLI_ASAN
    if (rt)
        report(&r, CHK_OK, "asan",
               "built with AddressSanitizer (%s); this wfhost's runner has its own", rt);
#else
    /* The runtime must be loaded before anything else in the runner. */
    if (rt && setenv("LD_PRELOAD", rt, 1) == 0)
        report(&r, CHK_OK, "asan", "built with AddressSanitizer: the runner preloads %s", rt);
#endif

    /* The descriptor, read by the runner's probe in a child process. */
    if (wfh_plugin_probe(runner, path, &pm) < 0) {
        report(&r, CHK_FAIL, "load", "%s", wfh_error_last());
        goto summary;
    }
    report(&r, CHK_OK, "load",
           "%s %s, needs plugin ABI %u.%u (this wfhost: %d.%d), %zu step type(s)", pm.name,
           pm.version, pm.abi_major, pm.abi_minor, WFH_ABI_MAJOR, WFH_ABI_MINOR, pm.n_types);
    if (!pm.description || !*pm.description)
        report(&r, CHK_WARN, "load",
               "the plugin has no description (shown by `wfhost plugin info`)");

    /* The attempt path wants a catalog for the runner path; the plugin itself is run
     * from its file, unsigned, as `plugin run` does. */
    wfh_catalog cat = {.runner_path = runner};
    check_run cr = {.cat = &cat,
                    .pm = &pm,
                    .path = path,
                    .workspace = workspace,
                    .timeout_ms = (uint64_t)(timeout_s * 1000),
                    .no_run = no_run};
    for (size_t i = 0; i < pm.n_types; i++)
        check_type(&r, &cr, &pm.types[i]);

summary:
    if (r.json) {
        json_t *j = json_pack("{s:s, s:b, s:i, s:i, s:O}", "plugin", path, "ok", r.problems == 0,
                              "problems", r.problems, "warnings", r.warnings, "checks", r.checks);
        char *s = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
        json_decref(j);
        if (s)
            puts(s);
        free(s);
    } else if (r.problems) {
        printf("%d problem(s), %d warning(s): %s does not conform\n", r.problems, r.warnings, file);
    } else {
        printf("no problems (%d warning(s)): %s conforms to plugin ABI %d.%d\n", r.warnings, file,
               WFH_ABI_MAJOR, WFH_ABI_MINOR);
    }
    rc = r.problems ? WFH_EXIT_FAILED : WFH_EXIT_OK;
done:
    if (workspace)
        remove_tree(workspace); /* the runs may have left files in it */
    wfh_plugin_meta_clear(&pm);
    json_decref(r.checks);
    free(runner);
    free(img);
    free(path);
    return err < 0 ? wfh_cli_fail(err) : rc;
}

/* ---- plugin new -------------------------------------------------------------------- */

static void new_usage(FILE *out)
{
    fputs("usage: wfhost plugin new NAME [--lang c|rust] [--dir DIR]\n\n"
          "Start a plugin: copy the SDK template for the language into DIR (default:\n"
          "./NAME), with the plugin and its step type named NAME. The C template builds\n"
          "with CMake (find_package(wfhost)) or make (pkg-config wfhost-plugin); the Rust\n"
          "one with cargo. Each comes with a test (tests/run.sh) that runs `wfhost plugin\n"
          "check`, `wfhost plugin run` and a workflow. docs/plugin-authoring.md has the\n"
          "tutorial, from here to a signed install.\n\n"
          "  NAME          [a-z][a-z0-9_-]*, at most 64 characters\n"
          "  --lang LANG   c (default) or rust\n"
          "  --dir DIR     where to create the plugin (must not exist)\n"
          "Templates are found in $WFH_SDK_DIR, the installed share/wfhost/sdk, or the\n"
          "source tree of a build-tree wfhost.\n",
          out);
}

static int valid_plugin_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64 || !(*s >= 'a' && *s <= 'z'))
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' || *s == '-'))
            return 0;
    return 1;
}

/* Where the templates are: $WFH_SDK_DIR, the install's share dir relative to this
 * binary, then the source tree. Returns an owned path to DIR/@p sub, or NULL. */
static char *find_template(const char *sub)
{
    char exe[PATH_MAX], cand[3][PATH_MAX + 64];
    size_t n = 0;
    const char *env = getenv("WFH_SDK_DIR");
    if (env && *env)
        snprintf(cand[n++], sizeof cand[0], "%s/%s", env, sub);
#ifdef WFH_SDK_REL_TO_BIN
    ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (k > 0) {
        exe[k] = 0;
        char *slash = strrchr(exe, '/');
        if (slash)
            *slash = 0;
        snprintf(cand[n++], sizeof cand[0], "%s/%s/%s", exe, WFH_SDK_REL_TO_BIN, sub);
    }
#else
    (void)exe;
#endif
#ifdef WFH_SDK_SOURCE_DIR
    snprintf(cand[n++], sizeof cand[0], "%s/%s", WFH_SDK_SOURCE_DIR, sub);
#endif
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        if (stat(cand[i], &st) == 0 && S_ISDIR(st.st_mode))
            return realpath(cand[i], NULL);
        if (env && *env && i == 0)
            break; /* an explicit $WFH_SDK_DIR is not silently replaced */
    }
    return NULL;
}

/* @p text with every TEMPLATE_TOKEN replaced by @p name. Owned, or NULL. */
static char *substitute(const char *text, size_t len, const char *name, size_t *out_len)
{
    size_t tl = strlen(TEMPLATE_TOKEN), nl = strlen(name), count = 0;
    for (const char *p = text; (p = memmem(p, len - (size_t)(p - text), TEMPLATE_TOKEN, tl));
         p += tl)
        count++;
    char *out = malloc(len + count * nl + 1), *o = out;
    if (!out)
        return NULL;
    const char *p = text, *end = text + len;
    for (const char *hit; (hit = memmem(p, (size_t)(end - p), TEMPLATE_TOKEN, tl)); p = hit + tl) {
        memcpy(o, p, (size_t)(hit - p));
        o += hit - p;
        memcpy(o, name, nl);
        o += nl;
    }
    memcpy(o, p, (size_t)(end - p));
    o += end - p;
    *o = 0;
    *out_len = (size_t)(o - out);
    return out;
}

static int skip_entry(const char *n)
{
    return (n[0] == '.' && strcmp(n, ".gitignore")) || !strcmp(n, "build") ||
           !strncmp(n, "build-", 6) || !strcmp(n, "target") || !strcmp(n, "Cargo.lock");
}

/* Create @p path (which must not exist) holding @p len bytes of @p data. */
static int write_new_file(const char *path, const char *data, size_t len, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0)
        return wfh_error_set(WFH_EIO, "plugin new: %s: %s", path, strerror(errno));
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int e = errno;
            close(fd);
            return wfh_error_set(WFH_EIO, "plugin new: %s: %s", path, strerror(e));
        }
        data += n;
        len -= (size_t)n;
    }
    if (close(fd) < 0)
        return wfh_error_set(WFH_EIO, "plugin new: %s: %s", path, strerror(errno));
    return 0;
}

/* Copy the tree @p src into @p dst (created), renaming and substituting as it goes. */
static int copy_tree(const char *src, const char *dst, const char *name)
{
    int err = 0;
    if (mkdir(dst, 0755) < 0)
        return wfh_error_set(WFH_EIO, "plugin new: %s: %s", dst, strerror(errno));
    DIR *d = opendir(src);
    if (!d)
        return wfh_error_set(WFH_EIO, "plugin new: template %s: %s", src, strerror(errno));
    struct dirent *e;
    while (err == 0 && (e = readdir(d))) {
        if (skip_entry(e->d_name))
            continue;
        char from[PATH_MAX], to[PATH_MAX];
        size_t tl;
        char *renamed = substitute(e->d_name, strlen(e->d_name), name, &tl); /* owned */
        if (!renamed) {
            err = wfh_error_set(WFH_ENOMEM, "out of memory");
            break;
        }
        snprintf(from, sizeof from, "%s/%s", src, e->d_name);
        snprintf(to, sizeof to, "%s/%s", dst, renamed);
        free(renamed);
        struct stat st;
        if (lstat(from, &st) < 0) {
            err = wfh_error_set(WFH_EIO, "plugin new: %s: %s", from, strerror(errno));
        } else if (S_ISDIR(st.st_mode)) {
            err = copy_tree(from, to, name);
        } else if (S_ISREG(st.st_mode)) {
            char *text = NULL, *out = NULL; /* owned */
            size_t len = 0, olen = 0;
            if ((err = wfh_fs_read_at(AT_FDCWD, from, 4u << 20, 0, "template file", &text, &len)) ==
                0) {
                if (!(out = substitute(text, len, name, &olen)))
                    err = wfh_error_set(WFH_ENOMEM, "out of memory");
                else
                    err = write_new_file(to, out, olen, (st.st_mode & 0111) ? 0755 : 0644);
            }
            free(text);
            free(out);
        } /* anything else (a symlink, a socket) is not part of a template */
    }
    closedir(d);
    return err;
}

int cmd_plugin_new(int argc, char **argv)
{
    const char *name = NULL, *lang = "c", *dir = NULL;
    int err = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            new_usage(stdout);
            return WFH_EXIT_OK;
        } else if (!strcmp(argv[i], "--lang") && i + 1 < argc) {
            lang = argv[++i];
        } else if (!strncmp(argv[i], "--lang=", 7)) {
            lang = argv[i] + 7;
        } else if (!strcmp(argv[i], "--dir") && i + 1 < argc) {
            dir = argv[++i];
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "wfhost plugin new: unknown option '%s'\n", argv[i]);
            new_usage(stderr);
            return WFH_EXIT_INVALID;
        } else if (!name) {
            name = argv[i];
        } else {
            return wfh_cli_fail(wfh_error_set(
                WFH_EUSAGE, "plugin new: one plugin at a time ('%s' is extra)", argv[i]));
        }
    }
    if (!name) {
        new_usage(stderr);
        return WFH_EXIT_INVALID;
    }
    if (!valid_plugin_name(name))
        return wfh_cli_fail(wfh_error_set(WFH_EUSAGE,
                                          "plugin new: '%s' is not a plugin name (want "
                                          "[a-z][a-z0-9_-]*, at most 64 characters)",
                                          name));
    int rust = !strcmp(lang, "rust");
    if (!rust && strcmp(lang, "c"))
        return wfh_cli_fail(
            wfh_error_set(WFH_EUSAGE, "plugin new: --lang %s: want c or rust", lang));
    if (!dir)
        dir = name;
    struct stat st;
    if (lstat(dir, &st) == 0)
        return wfh_cli_fail(
            wfh_error_set(WFH_EUSAGE, "plugin new: %s already exists (pick another --dir)", dir));
    char *tmpl = find_template(rust ? "template-rust" : "template"); /* owned */
    if (!tmpl)
        return wfh_cli_fail(
            wfh_error_set(WFH_ENOTFOUND,
                          "plugin new: no %s template found (looked in "
                          "$WFH_SDK_DIR, the installed share/wfhost/sdk and the source tree)",
                          rust ? "template-rust" : "template"));
    /* Built beside the target and renamed into place: an interrupted copy leaves no
     * half-made plugin under the name the author asked for. */
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s.new-%ld", dir, (long)getpid());
    err = copy_tree(tmpl, tmp, name);
    if (err == 0 && rename(tmp, dir) < 0)
        err = wfh_error_set(WFH_EIO, "plugin new: %s: %s", dir, strerror(errno));
    if (err < 0) {
        remove_tree(tmp);
        free(tmpl);
        return wfh_cli_fail(err);
    }
    printf("created %s: a %s plugin '%s' with one step type '%s' (from %s)\n\nnext:\n  cd %s\n",
           dir, rust ? "Rust" : "C", name, name, tmpl, dir);
    if (rust)
        printf("  cargo build --release\n  sh tests/run.sh wfhost    # cargo test, plugin check, "
               "plugin run, a workflow\n");
    else
        printf("  cmake -S . -B build && cmake --build build && ctest --test-dir build "
               "--output-on-failure\n"
               "  # or: make && make check   (with pkg-config wfhost-plugin)\n");
    free(tmpl);
    return WFH_EXIT_OK;
}
