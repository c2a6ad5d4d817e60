/*
 * tests/unit/test_attempt.c - core/attempt.c against the real step runner.
 *
 * Each test runs one attempt of the fixture plugin (tests/plugins/fixture.c) through
 * the built wfhost-runner with a small event loop like the scheduler's, and checks
 * what the host makes of it: outputs and hooks, failure classes, crashes and aborts
 * with the signal named, an exit without a result, garbage on the channel, a kill,
 * and a setsid'd grandchild that must not survive the attempt. From the second attempt
 * on the runner comes from the zygote (core/runner/zygote.c), so most of these run
 * against a forked runner; the zygote tests at the end check that it is one, that it
 * is this process's child, and what happens when the zygote is killed or turned off.
 * The warm-runner tests last: an attempt started with a hint leaves one runner confined
 * and waiting; the next attempt of the same kind takes it (its report says "warm") and
 * gets its own inputs, variables and wall clock; one of another kind does not; a dead
 * one is replaced; the knob turns it off; release leaves none.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <wfhost/plugin.h>

#include "attempt.h"
#include "error.h"

static char runner[4096], fixture[4096], tmpdir[256];

/* Set by the zygote tests: what the runner of the last attempt looked like just after
 * wfh_attempt_start (its argv and parent), read from /proc while it still runs. */
static int record_runner;
static char last_argv[512];
static long last_ppid;
static long last_nofile; /* its soft RLIMIT_NOFILE */

/* argv of @p pid with NULs as spaces, "" if gone. */
static void read_argv(pid_t pid, char *buf, size_t len)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/cmdline", (long)pid);
    buf[0] = 0;
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    size_t n = fread(buf, 1, len - 1, f);
    fclose(f);
    for (size_t i = 0; i < n; i++)
        if (!buf[i])
            buf[i] = ' ';
    buf[n] = 0;
}

static long read_ppid(pid_t pid)
{
    char path[64], line[256];
    long ppid = -1;
    snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "PPid: %ld", &ppid) == 1)
            break;
    fclose(f);
    return ppid;
}

typedef struct seen {
    int logs, progress;
    char log_text[8192];
    double last_fraction;
} seen;

static void on_log(void *ud, wfh_attempt *a, int level, const char *msg, size_t len)
{
    (void)a, (void)level;
    seen *s = ud;
    s->logs++;
    size_t room = sizeof s->log_text - strlen(s->log_text) - 2;
    strncat(s->log_text, msg, len < room ? len : room);
    strcat(s->log_text, "\n");
}

static void on_progress(void *ud, wfh_attempt *a, double fraction, const char *msg)
{
    (void)a, (void)msg;
    seen *s = ud;
    s->progress++;
    s->last_fraction = fraction;
}

static void drive(wfh_attempt *a, wfh_attempt_result *res, int kill_after_ms);

/* One attempt of @p type, driven as the scheduler does (drive). If @p kill_after_ms
 * >= 0, kill the attempt that long after start. */
static void run_attempt_ex(const char *runner_path, const char *type, const char *run_id, seen *s,
                           wfh_attempt_result *res, int kill_after_ms)
{
    memset(s, 0, sizeof *s);
    json_t *inputs = json_pack("{s:s, s:[i,i]}", "msg", "hi", "list", 1, 2);
    json_t *env = json_pack("{s:s}", "GREETING", "hello");
    wfh_attempt_spec spec = {
        .runner_path = runner_path,
        .plugin_path = fixture,
        .step_type = type,
        .inputs = inputs,
        .env = env,
        .run_id = run_id,
        .step_id = "st",
        .idempotency_key = "key-1",
        .workspace = tmpdir,
        .attempt = 3,
    };
    wfh_attempt_hooks hooks = {on_log, on_progress, s};
    wfh_attempt *a = NULL;
    int err = wfh_attempt_start(&spec, &hooks, &a);
    assert_int_equal(err, 0);
    assert_non_null(a);
    if (record_runner) {
        /* A spawned runner's argv shows once exec has set it up, a little after
         * posix_spawn returns; the step lasts until it is cancelled. */
        for (int i = 0; i < 50; i++) {
            read_argv(wfh_attempt_pid(a), last_argv, sizeof last_argv);
            if (last_argv[0])
                break;
            usleep(2000);
        }
        last_ppid = read_ppid(wfh_attempt_pid(a));
        char path[64], line[256];
        snprintf(path, sizeof path, "/proc/%ld/limits", (long)wfh_attempt_pid(a));
        FILE *f = fopen(path, "r");
        last_nofile = -1;
        while (f && fgets(line, sizeof line, f))
            if (sscanf(line, "Max open files %ld", &last_nofile) == 1)
                break;
        if (f)
            fclose(f);
    }
    json_decref(inputs);
    json_decref(env);
    drive(a, res, kill_after_ms);
}

/* What the scheduler does: poll the two fds until both close (killing the attempt
 * @p kill_after_ms after it started, unless that is < 0), reap, finish, free. */
static void drive(wfh_attempt *a, wfh_attempt_result *res, int kill_after_ms)
{
    int waited = 0;
    for (;;) {
        int fds[2];
        wfh_attempt_fds(a, fds);
        if (fds[0] < 0 && fds[1] < 0)
            break;
        struct pollfd p[2] = {{fds[0], POLLIN, 0}, {fds[1], POLLIN, 0}};
        int n = poll(p, 2, 10);
        if (n == 0) {
            waited += 10;
            if (kill_after_ms >= 0 && waited >= kill_after_ms) {
                wfh_attempt_kill(a, WFH_STEP_CANCELLED, "cancelled");
                kill_after_ms = -1;
            }
            assert_true(waited < 20000);
        }
        for (int i = 0; i < 2; i++)
            if (p[i].fd >= 0 && p[i].revents)
                wfh_attempt_read(a, p[i].fd);
    }
    int st = 0;
    assert_int_equal(waitpid(wfh_attempt_pid(a), &st, 0), wfh_attempt_pid(a));
    wfh_attempt_finish(a, st, res);
    wfh_attempt_free(a);
    assert_non_null(res->outputs);
}

static void run_attempt(const char *type, seen *s, wfh_attempt_result *res)
{
    run_attempt_ex(runner, type, "run-1", s, res, -1);
}

static void test_echo_outputs_and_hooks(void **state)
{
    (void)state;
    seen s;
    wfh_attempt_result r;
    run_attempt("echo", &s, &r);
    assert_int_equal(r.status, WFH_STEP_OK);
    assert_null(r.error);
    assert_int_equal(r.exit_code, 0);
    assert_int_equal(r.term_signal, 0);
    json_t *in = json_object_get(r.outputs, "inputs");
    assert_string_equal(json_string_value(json_object_get(in, "msg")), "hi");
    assert_int_equal(json_array_size(json_object_get(in, "list")), 2);
    assert_string_equal(json_string_value(json_object_get(json_object_get(r.outputs, "env"), "GREETING")), "hello");
    json_t *req = json_object_get(r.outputs, "request");
    assert_string_equal(json_string_value(json_object_get(req, "run_id")), "run-1");
    assert_string_equal(json_string_value(json_object_get(req, "step_id")), "st");
    assert_string_equal(json_string_value(json_object_get(req, "key")), "key-1");
    assert_int_equal(json_integer_value(json_object_get(req, "attempt")), 3);
    assert_non_null(strstr(s.log_text, "echo: starting"));
    /* The line the plugin printf'd to stdout arrives as stderr text, not as a result. */
    assert_non_null(strstr(s.log_text, "{\"t\":\"result\",\"status\":0}"));
    assert_int_equal(s.progress, 1);
    assert_true(s.last_fraction > 0.49 && s.last_fraction < 0.51);
    wfh_attempt_result_clear(&r);
}

static void test_fail_is_classified(void **state)
{
    (void)state;
    seen s;
    wfh_attempt_result r;
    run_attempt("fail", &s, &r);
    assert_int_equal(r.status, WFH_STEP_TRANSIENT);
    assert_string_equal(r.error, "the thing did not work second line");
    assert_int_equal(r.retry_after_ms, 1500);
    wfh_attempt_result_clear(&r);
}

static void test_crash_names_signal(void **state)
{
    (void)state;
    seen s;
    wfh_attempt_result r;
    run_attempt("crash", &s, &r);
    assert_int_equal(r.status, WFH_STEP_FAILED);
    assert_int_equal(r.term_signal, SIGSEGV);
    assert_non_null(r.error);
    assert_non_null(strstr(r.error, "plugin 'fixture' crashed: SIGSEGV (Segmentation fault)"));
    assert_non_null(strstr(s.log_text, "about to crash"));
    wfh_attempt_result_clear(&r);
}

static void test_abort_names_signal(void **state)
{
    (void)state;
    seen s;
    wfh_attempt_result r;
    run_attempt("abort", &s, &r);
    assert_int_equal(r.status, WFH_STEP_FAILED);
    assert_int_equal(r.term_signal, SIGABRT);
    assert_non_null(strstr(r.error, "crashed: SIGABRT (Aborted)"));
    wfh_attempt_result_clear(&r);
}

static void test_exit_without_result(void **state)
{
    (void)state;
    seen s;
    wfh_attempt_result r;
    run_attempt("exit", &s, &r);
    assert_int_equal(r.status, WFH_STEP_FAILED);
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.error, "exited with status 0 without a result"));
    wfh_attempt_result_clear(&r);
}

static void test_invalid_outputs_refused(void **state)
{
    (void)state;
    seen s;
    wfh_attempt_result r;
    run_attempt("badjson", &s, &r);
    assert_int_equal(r.status, WFH_STEP_OK);
    assert_null(json_object_get(r.outputs, "x"));
    assert_null(json_object_get(r.outputs, "9lives"));
    assert_string_equal(json_string_value(json_object_get(r.outputs, "codes")), "-1,-1,0");
    assert_non_null(strstr(s.log_text, "value is not JSON"));
    assert_non_null(strstr(s.log_text, "bad \xef\xbf\xbd\xef\xbf\xbd utf8"));
    wfh_attempt_result_clear(&r);
}

static void test_output_budget(void **state)
{
    (void)state;
    seen s;
    wfh_attempt_result r;
    run_attempt("big", &s, &r);
    assert_int_equal(r.status, WFH_STEP_FAILED);
    assert_non_null(strstr(r.error, "more than 16 MiB of outputs"));
    assert_non_null(json_object_get(r.outputs, "o1"));
    assert_null(json_object_get(r.outputs, "o2"));
    wfh_attempt_result_clear(&r);
}

static void test_unknown_type(void **state)
{
    (void)state;
    seen s;
    wfh_attempt_result r;
    run_attempt("nosuch", &s, &r);
    assert_int_equal(r.status, WFH_STEP_PERMANENT);
    assert_non_null(strstr(r.error, "has no step type 'nosuch'"));
    wfh_attempt_result_clear(&r);
}

/* Is a process with @p marker in its argv alive (not a zombie)? */
static int marker_alive(const char *marker)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    int found = 0;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        char path[300], buf[4096];
        snprintf(path, sizeof path, "/proc/%s/cmdline", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        for (size_t i = 0; i < n; i++)
            if (!buf[i])
                buf[i] = ' ';
        buf[n] = 0;
        if (n > 0 && strstr(buf, marker))
            found = 1;
    }
    if (d)
        closedir(d);
    return found;
}

static void test_orphan_does_not_survive(void **state)
{
    (void)state;
    char run_id[64], marker[96];
    snprintf(run_id, sizeof run_id, "orph%ld", (long)getpid());
    snprintf(marker, sizeof marker, "wfh-orphan-%s", run_id);
    seen s;
    wfh_attempt_result r;
    run_attempt_ex(runner, "orphan", run_id, &s, &r, -1);
    assert_int_equal(r.status, WFH_STEP_OK);
    usleep(50000);
    assert_false(marker_alive(marker));
    wfh_attempt_result_clear(&r);
}

static void test_kill_hanging_step(void **state)
{
    (void)state;
    seen s;
    wfh_attempt_result r;
    run_attempt_ex(runner, "hang", "run-k", &s, &r, 200);
    assert_int_equal(r.status, WFH_STEP_CANCELLED);
    assert_string_equal(r.error, "cancelled");
    /* The runner handled SIGTERM itself (killed its tree, exited 128+15) within the grace. */
    assert_int_equal(r.term_signal, 0);
    assert_int_equal(r.exit_code, 128 + SIGTERM);
    assert_non_null(strstr(s.log_text, "hanging"));
    wfh_attempt_result_clear(&r);
}

static void test_kill_stubborn_step(void **state)
{
    (void)state;
    seen s;
    wfh_attempt_result r;
    run_attempt_ex(runner, "stubborn", "run-k2", &s, &r, 200);
    assert_int_equal(r.status, WFH_STEP_CANCELLED);
    assert_string_equal(r.error, "cancelled");
    assert_int_equal(r.term_signal, SIGKILL); /* the grace ran out: SIGKILL to the group */
    assert_non_null(strstr(s.log_text, "stubborn"));
    wfh_attempt_result_clear(&r);
}

static char *fake_runner(const char *name, const char *body)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "#!/bin/sh\n%s\n", body);
    fclose(f);
    chmod(path, 0755);
    return path;
}

static void test_garbage_on_channel(void **state)
{
    (void)state;
    seen s;
    wfh_attempt_result r;
    const char *fake = fake_runner("garbage.sh", "cat >/dev/null; echo 'this is not json'; "
                                                 "echo '{\"t\":\"result\",\"status\":0}'");
    run_attempt_ex(fake, "echo", "run-g", &s, &r, -1);
    assert_int_equal(r.status, WFH_STEP_FAILED);
    assert_non_null(strstr(r.error, "malformed line (this is not json)"));
    wfh_attempt_result_clear(&r);

    fake = fake_runner("badstatus.sh", "cat >/dev/null; echo '{\"t\":\"result\",\"status\":99}'");
    run_attempt_ex(fake, "echo", "run-g", &s, &r, -1);
    assert_int_equal(r.status, WFH_STEP_FAILED);
    assert_non_null(strstr(r.error, "without a valid status"));
    wfh_attempt_result_clear(&r);

    /* A line past the cap (16 MiB + envelope) is refused without being buffered, and
     * the runner is still read to the end (it must not block on a full pipe). */
    fake = fake_runner("longline.sh", "cat >/dev/null; head -c 17500000 /dev/zero | tr '\\0' a; echo; "
                                      "echo '{\"t\":\"result\",\"status\":0}'");
    run_attempt_ex(fake, "echo", "run-g", &s, &r, -1);
    assert_int_equal(r.status, WFH_STEP_FAILED);
    assert_non_null(strstr(r.error, "sent a line longer than"));
    wfh_attempt_result_clear(&r);

    /* The request arrives complete on stdin, then EOF. */
    fake = fake_runner("request.sh", "r=$(cat); case \"$r\" in *'\"type\":\"echo\"'*'\"attempt\":3'*) "
                                     "echo '{\"t\":\"result\",\"status\":0}';; *) echo \"$r\" >&2;; esac");
    run_attempt_ex(fake, "echo", "run-g", &s, &r, -1);
    assert_int_equal(r.status, WFH_STEP_OK);
    wfh_attempt_result_clear(&r);
}

static void test_missing_runner(void **state)
{
    (void)state;
    wfh_attempt_spec spec = {.runner_path = "/nonexistent/wfhost-runner", .plugin_path = fixture,
                             .step_type = "echo", .step_id = "st"};
    wfh_attempt *a = NULL;
    int err = wfh_attempt_start(&spec, NULL, &a);
    assert_int_equal(err, WFH_EIO);
    assert_null(a);
    assert_non_null(strstr(wfh_error_last(), "cannot start the step runner /nonexistent/wfhost-runner"));
    wfh_attempt_free(NULL);
    wfh_attempt_result_clear(NULL);
}

/* This process's children, as /proc lists them (pids separated by spaces). */
static void read_children(char *buf, size_t len)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%ld/children", (long)getpid());
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, len - 1, f);
    fclose(f);
    buf[n] = 0;
}

/* The zygote next to this process: a child whose argv says --zygote, other than
 * @p except. 0 if none. */
static pid_t find_zygote(pid_t except)
{
    char buf[4096], argv[512];
    read_children(buf, sizeof buf);
    pid_t found = 0;
    for (char *tok = strtok(buf, " \n"); tok; tok = strtok(NULL, " \n")) {
        pid_t pid = (pid_t)atol(tok);
        read_argv(pid, argv, sizeof argv);
        if (pid != except && strstr(argv, "wfhost-runner --zygote")) {
            assert_int_equal(found, 0); /* one zygote, never two */
            found = pid;
        }
    }
    return found;
}

/* Runs one attempt that waits until it is cancelled (so /proc still shows its runner's
 * argv just after the start), records the runner; returns whether it was forked. */
static int attempt_forked(void)
{
    seen s;
    wfh_attempt_result r;
    record_runner = 1;
    run_attempt_ex(runner, "hang", "run-z", &s, &r, 100);
    record_runner = 0;
    assert_int_equal(r.status, WFH_STEP_CANCELLED);
    assert_int_equal(r.exit_code, 128 + SIGTERM); /* the runner's own SIGTERM handler */
    assert_non_null(strstr(s.log_text, "hanging"));
    wfh_attempt_result_clear(&r);
    /* Spawned or forked, the runner is this process's child. */
    assert_int_equal(last_ppid, (long)getpid());
    assert_non_null(strstr(last_argv, "wfhost-runner"));
    return strstr(last_argv, "--zygote") != NULL;
}

static void test_zygote_forks_our_children(void **state)
{
    (void)state;
    /* The tests before ran attempts with this runner: the zygote is up. */
    assert_true(attempt_forked());
    pid_t z = find_zygote(0);
    assert_true(z > 0);
    assert_true(attempt_forked());
    assert_int_equal(find_zygote(0), z); /* the same one for every attempt */
}

static void test_zygote_killed(void **state)
{
    (void)state;
    assert_true(attempt_forked());
    pid_t z = find_zygote(0);
    assert_true(z > 0);
    assert_int_equal(kill(z, SIGKILL), 0);
    int st = 0;
    assert_int_equal(waitpid(z, &st, 0), z); /* what the scheduler's waitpid(-1) would do */
    assert_false(attempt_forked()); /* the host finds it gone: this one is spawned */
    assert_true(attempt_forked());  /* and the next one comes from a new zygote */
    pid_t z2 = find_zygote(0);
    assert_true(z2 > 0 && z2 != z);
}

/* With @p var set to @p value, an attempt is refused before any runner starts, with a
 * message naming both; @p var is unset again after. */
static void knob_refused(const char *var, const char *values, const char *value)
{
    assert_int_equal(setenv(var, value, 1), 0);
    wfh_attempt_spec spec = {.runner_path = runner, .plugin_path = fixture, .step_type = "echo",
                             .workspace = tmpdir};
    wfh_attempt *a = NULL;
    assert_int_equal(wfh_attempt_start(&spec, NULL, &a), WFH_EINVAL);
    assert_null(a);
    char want[128];
    snprintf(want, sizeof want, "%s must be %s, not '%s'", var, values, value);
    assert_non_null(strstr(wfh_error_last(), want));
    assert_int_equal(unsetenv(var), 0);
}

static void test_zygote_off(void **state)
{
    (void)state;
    assert_int_equal(setenv("WFH_RUNNER_ZYGOTE", "0", 1), 0);
    assert_false(attempt_forked());
    assert_false(attempt_forked());
    knob_refused("WFH_RUNNER_ZYGOTE", "0, off, 1 or on", "sometimes");
    assert_true(attempt_forked());
}

/* The scheduler raises RLIMIT_NOFILE for a wide run; a zygote started before that must
 * not hand out runners with the old limit. */
static void test_zygote_follows_nofile(void **state)
{
    (void)state;
    assert_true(attempt_forked());
    pid_t z = find_zygote(0);
    struct rlimit old, rl;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    rl = old;
    rl.rlim_cur = old.rlim_cur - 1;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
    int forked = attempt_forked();
    pid_t z2 = find_zygote(0);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    assert_true(forked);
    assert_int_equal(last_nofile, (long)rl.rlim_cur);
    assert_true(z2 > 0 && z2 != z);
}

/* ---- warm runners ---- */

/* This process's children named as idle warm runners (core/runner/main.c); the first
 * one's pid in *@p first if not NULL. */
static int warm_children_now(pid_t *first)
{
    char path[64], buf[4096], comm[64];
    read_children(buf, sizeof buf);
    int count = 0;
    for (char *tok = strtok(buf, " \n"); tok; tok = strtok(NULL, " \n")) {
        snprintf(path, sizeof path, "/proc/%s/comm", tok);
        FILE *c = fopen(path, "r");
        if (c && fgets(comm, sizeof comm, c) && !strcmp(comm, "wfhost-runner-w\n") && !count++ && first)
            *first = (pid_t)atol(tok);
        if (c)
            fclose(c);
    }
    return count;
}

/* The same, once it is @p want (a new runner names itself a little after it starts), or
 * after 2 s. */
static int warm_children(int want, pid_t *first)
{
    int n = 0;
    for (int i = 0; i < 200 && (n = warm_children_now(first)) != want; i++)
        usleep(10000);
    return n;
}

/* An attempt of the fixture's @p type under @p sandbox (borrowed JSON text), with the
 * warm hint @p hint; returns whether its runner was a warm one, and its result in
 * @p res. A "hang" attempt is killed after 300 ms, once @p limit_out (if not NULL) has
 * the step process's "Max cpu time" soft limit (its runner's only child under
 * profile process). */
static int warm_attempt(const char *type, const char *sandbox, int hint, const char *msg,
                        wfh_attempt_result *res, long *limit_out)
{
    json_error_t je;
    json_t *sb = json_loads(sandbox, 0, &je);
    assert_non_null(sb);
    json_t *inputs = json_pack("{s:s}", "msg", msg);
    json_t *env = json_pack("{s:s}", "GREETING", msg);
    wfh_attempt_spec spec = {
        .runner_path = runner,
        .plugin_path = fixture,
        .step_type = type,
        .inputs = inputs,
        .env = env,
        .run_id = "run-w",
        .step_id = msg,
        .idempotency_key = msg,
        .workspace = tmpdir,
        .attempt = 1,
        .sandbox = sb,
        .warm_hint = hint,
    };
    wfh_attempt *a = NULL;
    assert_int_equal(wfh_attempt_start(&spec, NULL, &a), 0);
    int warm = wfh_attempt_was_warm(a);
    if (limit_out) {
        *limit_out = -1;
        char path[96], buf[256], line[256];
        for (int i = 0; i < 200 && *limit_out < 0; i++, usleep(10000)) {
            snprintf(path, sizeof path, "/proc/%ld/task/%ld/children", (long)wfh_attempt_pid(a),
                     (long)wfh_attempt_pid(a));
            FILE *f = fopen(path, "r");
            long child = f && fgets(buf, sizeof buf, f) ? atol(buf) : 0;
            if (f)
                fclose(f);
            snprintf(path, sizeof path, "/proc/%ld/limits", child);
            FILE *l = child > 0 ? fopen(path, "r") : NULL;
            while (l && fgets(line, sizeof line, l))
                if (sscanf(line, "Max cpu time %ld", limit_out) == 1 && *limit_out > 0)
                    break;
                else
                    *limit_out = -1;
            if (l)
                fclose(l);
        }
    }
    drive(a, res, strcmp(type, "hang") == 0 ? 300 : -1);
    json_decref(inputs);
    json_decref(env);
    json_decref(sb);
    return warm;
}

#define SB_NONE "{\"profile\":\"none\"}"
#define SB_PROC(cpu, wall) "{\"profile\":\"process\",\"limits\":{\"cpu_ms\":" cpu ",\"wall_ms\":" wall "}}"

static void test_warm_runner_serves_the_next(void **state)
{
    (void)state;
    wfh_attempt_result r;
    assert_false(warm_attempt("echo", SB_NONE, 1, "one", &r, NULL));
    wfh_attempt_result_clear(&r);
    assert_int_equal(wfh_attempt_warm_count(), 1);
    assert_int_equal(warm_children(1, NULL), 1); /* confined and waiting, before any attempt */
    assert_true(warm_attempt("echo", SB_NONE, 0, "two", &r, NULL));
    assert_int_equal(r.status, WFH_STEP_OK);
    /* Its own attempt's members, sent at go. */
    json_t *req = json_object_get(r.outputs, "request");
    assert_string_equal(json_string_value(json_object_get(req, "step_id")), "two");
    assert_string_equal(json_string_value(json_object_get(json_object_get(r.outputs, "inputs"), "msg")), "two");
    assert_string_equal(json_string_value(json_object_get(json_object_get(r.outputs, "env"), "GREETING")), "two");
    assert_true(json_is_true(json_object_get(r.sandbox, "warm")));
    wfh_attempt_result_clear(&r);
    /* No hint: none is started for later. */
    assert_int_equal(wfh_attempt_warm_count(), 0);
    assert_int_equal(warm_children(0, NULL), 0);
}

/* The pool is keyed by the whole confinement: another limit never takes a runner made
 * for this one, and each step process has its own limit. */
static void test_warm_key_is_the_grant(void **state)
{
    (void)state;
    wfh_attempt_result r;
    long cpu = 0;
    warm_attempt("hang", SB_PROC("30000", "600000"), 1, "a1", &r, &cpu);
    assert_int_equal(r.status, WFH_STEP_CANCELLED);
    assert_int_equal(cpu, 30);
    wfh_attempt_result_clear(&r);
    assert_int_equal(wfh_attempt_warm_count(), 1);
    assert_false(warm_attempt("hang", SB_PROC("20000", "600000"), 0, "b1", &r, &cpu));
    assert_int_equal(cpu, 20);
    wfh_attempt_result_clear(&r);
    assert_int_equal(wfh_attempt_warm_count(), 1); /* still waiting for its kind */
    assert_true(warm_attempt("hang", SB_PROC("30000", "600000"), 0, "a2", &r, &cpu));
    assert_int_equal(cpu, 30);
    wfh_attempt_result_clear(&r);
    assert_int_equal(wfh_attempt_warm_count(), 0);
}

/* The wall time limit counts from the go, not from when the runner was started. */
static void test_warm_wall_clock_starts_at_go(void **state)
{
    (void)state;
    wfh_attempt_result r;
    assert_false(warm_attempt("echo", SB_PROC("30000", "400"), 1, "w1", &r, NULL));
    assert_int_equal(r.status, WFH_STEP_OK);
    wfh_attempt_result_clear(&r);
    usleep(900 * 1000); /* the warm runner waits more than twice its wall time */
    assert_true(warm_attempt("echo", SB_PROC("30000", "400"), 0, "w2", &r, NULL));
    assert_int_equal(r.status, WFH_STEP_OK);
    assert_null(r.error);
    wfh_attempt_result_clear(&r);
}

/* An idle one that died (reaped by someone else, as by the scheduler's waitpid(-1)) is
 * dropped and the attempt gets a fresh runner. */
static void test_warm_dead_one_is_replaced(void **state)
{
    (void)state;
    wfh_attempt_result r;
    warm_attempt("echo", SB_NONE, 1, "d1", &r, NULL);
    wfh_attempt_result_clear(&r);
    assert_int_equal(wfh_attempt_warm_count(), 1);
    pid_t victim = 0;
    assert_int_equal(warm_children(1, &victim), 1);
    assert_true(victim > 0);
    assert_int_equal(kill(victim, SIGKILL), 0);
    assert_int_equal(waitpid(victim, NULL, 0), victim);
    assert_false(warm_attempt("echo", SB_NONE, 0, "d2", &r, NULL));
    assert_int_equal(r.status, WFH_STEP_OK);
    wfh_attempt_result_clear(&r);
    assert_int_equal(wfh_attempt_warm_count(), 0);
}

static void test_warm_release_and_knob(void **state)
{
    (void)state;
    wfh_attempt_result r;
    warm_attempt("echo", SB_PROC("30000", "600000"), 1, "k1", &r, NULL);
    wfh_attempt_result_clear(&r);
    warm_attempt("echo", SB_NONE, 1, "k2", &r, NULL);
    wfh_attempt_result_clear(&r);
    assert_int_equal(wfh_attempt_warm_count(), 2);
    wfh_attempt_warm_release();
    assert_int_equal(wfh_attempt_warm_count(), 0);
    assert_int_equal(warm_children_now(NULL), 0);
    assert_true(waitpid(-1, NULL, WNOHANG) <= 0); /* reaped, not left as zombies */

    assert_int_equal(setenv("WFH_RUNNER_WARM", "0", 1), 0);
    assert_false(warm_attempt("echo", SB_NONE, 1, "k3", &r, NULL));
    wfh_attempt_result_clear(&r);
    assert_int_equal(wfh_attempt_warm_count(), 0);
    knob_refused("WFH_RUNNER_WARM", "0, off, 1, on or always", "maybe");
}

int main(void)
{
    const char *build = getenv("WFH_BUILD");
    if (!build) {
        fprintf(stderr, "test_attempt: WFH_BUILD is not set (run through ctest)\n");
        return 1;
    }
    snprintf(runner, sizeof runner, "%s/bin/wfhost-runner", build);
    snprintf(fixture, sizeof fixture, "%s/tests/plugins/fixture.so", build);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/wfh-test-attempt.XXXXXX");
    if (!mkdtemp(tmpdir))
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_echo_outputs_and_hooks),
        cmocka_unit_test(test_fail_is_classified),
        cmocka_unit_test(test_crash_names_signal),
        cmocka_unit_test(test_abort_names_signal),
        cmocka_unit_test(test_exit_without_result),
        cmocka_unit_test(test_invalid_outputs_refused),
        cmocka_unit_test(test_output_budget),
        cmocka_unit_test(test_unknown_type),
        cmocka_unit_test(test_orphan_does_not_survive),
        cmocka_unit_test(test_kill_hanging_step),
        cmocka_unit_test(test_kill_stubborn_step),
        cmocka_unit_test(test_garbage_on_channel),
        cmocka_unit_test(test_missing_runner),
        cmocka_unit_test(test_zygote_forks_our_children),
        cmocka_unit_test(test_zygote_killed),
        cmocka_unit_test(test_zygote_off),
        cmocka_unit_test(test_zygote_follows_nofile),
        cmocka_unit_test(test_warm_runner_serves_the_next),
        cmocka_unit_test(test_warm_key_is_the_grant),
        cmocka_unit_test(test_warm_wall_clock_starts_at_go),
        cmocka_unit_test(test_warm_dead_one_is_replaced),
        cmocka_unit_test(test_warm_release_and_knob),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "test_attempt: could not remove %s\n", tmpdir);
    return rc;
}
