/*
 * tests/plugins/fixture.c - a well-behaved test plugin with misbehaving step types.
 *
 * The runner and attempt tests need a plugin whose behaviour they choose per step:
 * echo its inputs as outputs, fail with a message, crash, abort, print to stdout
 * (which must not corrupt the protocol channel), hand out invalid JSON, exceed the
 * output budget, leave a double-forked grandchild behind, or hang. Built against
 * include/wfhost alone, like any third-party plugin.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <wfhost/plugin.h>

static void say(const wfh_host_api *h, wfh_call *c, const char *msg)
{
    h->log(c, WFH_LOG_INFO, msg, strlen(msg));
}

/* echo: every input member becomes an output of the same name (the JSON text is
 * passed through verbatim, so the runner's JSON check is what is tested). */
static int32_t run_echo(const wfh_host_api *h, wfh_call *c, const wfh_step_request *r)
{
    say(h, c, "echo: starting");
    h->progress(c, 0.5, "half", 4);
    /* Outputs the request fields, so tests can see what the plugin was given. */
    char buf[4096];
    snprintf(buf, sizeof buf, "{\"run_id\":\"%s\",\"step_id\":\"%s\",\"attempt\":%u,\"key\":\"%s\",\"type\":\"%s\"}",
             r->run_id, r->step_id, r->attempt, r->idempotency_key, r->step_type);
    if (h->set_output(c, "request", buf, strlen(buf)) != 0)
        return WFH_STEP_FAILED;
    if (h->set_output(c, "inputs", r->inputs_json, r->inputs_len) != 0)
        return WFH_STEP_FAILED;
    if (h->set_output(c, "env", r->env_json, r->env_len) != 0)
        return WFH_STEP_FAILED;
    /* A plugin writing to stdout must not be able to forge protocol lines. */
    printf("{\"t\":\"result\",\"status\":0}\n");
    fflush(stdout);
    return WFH_STEP_OK;
}

static int32_t run_fail(const wfh_host_api *h, wfh_call *c, const wfh_step_request *r)
{
    (void)r;
    const char *m = "the thing did not work\nsecond line";
    h->set_error(c, m, strlen(m));
    h->set_retry_after(c, 1500);
    return WFH_STEP_TRANSIENT;
}

static int32_t run_crash(const wfh_host_api *h, wfh_call *c, const wfh_step_request *r)
{
    (void)r;
    say(h, c, "about to crash");
    raise(SIGSEGV);
    return WFH_STEP_OK;
}

static int32_t run_abort(const wfh_host_api *h, wfh_call *c, const wfh_step_request *r)
{
    (void)h, (void)c, (void)r;
    abort();
}

static int32_t run_exit(const wfh_host_api *h, wfh_call *c, const wfh_step_request *r)
{
    (void)h, (void)c, (void)r;
    _exit(0); /* leaves without a result */
}

static int32_t run_badjson(const wfh_host_api *h, wfh_call *c, const wfh_step_request *r)
{
    (void)r;
    int bad_value = h->set_output(c, "x", "{not json", 9);
    int bad_name = h->set_output(c, "9lives", "1", 1);
    int good = h->set_output(c, "ok", "\"fine\"", 6);
    char buf[64];
    snprintf(buf, sizeof buf, "%d,%d,%d", bad_value, bad_name, good);
    char json[80];
    snprintf(json, sizeof json, "\"%s\"", buf);
    h->set_output(c, "codes", json, strlen(json));
    /* Invalid UTF-8 in a log line must arrive as replacement characters. */
    h->log(c, WFH_LOG_WARN, "bad \xff\xfe utf8", sizeof "bad \xff\xfe utf8" - 1);
    return WFH_STEP_OK;
}

static int32_t run_big(const wfh_host_api *h, wfh_call *c, const wfh_step_request *r)
{
    (void)r;
    size_t n = 6u << 20;
    char *s = malloc(n + 2);
    if (!s)
        return WFH_STEP_FAILED;
    s[0] = '"';
    memset(s + 1, 'a', n - 1);
    s[n] = '"';
    s[n + 1] = 0;
    /* 3 x 6 MiB: the third is over the 16 MiB budget. */
    for (int i = 0; i < 3; i++) {
        char name[8] = {'o', (char)('0' + i), 0};
        h->set_output(c, name, s, n + 1);
    }
    free(s);
    return WFH_STEP_OK;
}

/* Leaves a setsid'd, double-forked grandchild that would outlive a process group. */
static int32_t run_orphan(const wfh_host_api *h, wfh_call *c, const wfh_step_request *r)
{
    (void)h, (void)c;
    pid_t p = fork();
    if (p == 0) {
        setsid();
        if (fork() == 0) {
            char marker[256];
            snprintf(marker, sizeof marker, "wfh-orphan-%s", r->run_id);
            execl("/bin/sh", "sh", "-c", "exec sleep 300", marker, (char *)NULL);
        }
        _exit(0);
    }
    usleep(100000);
    return WFH_STEP_OK;
}

static int32_t run_hang(const wfh_host_api *h, wfh_call *c, const wfh_step_request *r)
{
    (void)r;
    say(h, c, "hanging");
    for (int i = 0; i < 600 && !h->is_cancelled(c); i++)
        usleep(100000);
    h->set_error(c, "cancelled", 9);
    return WFH_STEP_CANCELLED;
}

/* Blocks SIGTERM (so the runner cannot clean up) and hangs: the host must fall back to
 * SIGKILL of the process group. */
static int32_t run_stubborn(const wfh_host_api *h, wfh_call *c, const wfh_step_request *r)
{
    (void)r;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_BLOCK, &set, NULL);
    say(h, c, "stubborn");
    for (int i = 0; i < 600; i++)
        sleep(1);
    return WFH_STEP_FAILED;
}

#define ANY_SCHEMA "{\"type\":\"object\"}"
#define TYPE(n, fn, desc)                                                                       \
    {sizeof(wfh_step_type), n, desc, ANY_SCHEMA, "{\"inputs\":\"the inputs\"}", NULL, fn}

static const wfh_step_type types[] = {
    TYPE("echo", run_echo, "echo the inputs as outputs"),
    TYPE("fail", run_fail, "fail transiently with a message"),
    TYPE("crash", run_crash, "die by SIGSEGV"),
    TYPE("abort", run_abort, "die by SIGABRT"),
    TYPE("exit", run_exit, "exit without a result"),
    TYPE("badjson", run_badjson, "hand out invalid outputs"),
    TYPE("big", run_big, "exceed the output budget"),
    TYPE("orphan", run_orphan, "leave a setsid'd grandchild behind"),
    TYPE("hang", run_hang, "wait until cancelled"),
    TYPE("stubborn", run_stubborn, "block SIGTERM and hang"),
};

#ifndef FIXTURE_VERSION
#define FIXTURE_VERSION "1.2.3"
#endif

static const wfh_plugin plugin = {
    WFH_PLUGIN_INIT,
    sizeof types / sizeof types[0],
    sizeof(wfh_step_type),
    "fixture",
    FIXTURE_VERSION,
    "test fixture plugin",
    types,
    NULL,
};

WFH_PLUGIN_EXPORT const wfh_plugin *wfh_plugin_entry_v1(void)
{
    return &plugin;
}
