/*
 * core/runner/main.c - wfhost-runner: the one process that runs plugin code.
 *
 * The host spawns one runner per step attempt (core/attempt.c) and one per plugin
 * probe (core/catalog.c). Attempt mode reads one JSON request on stdin (format in
 * core/attempt.h), loads the plugin, calls the step, and streams log/output/progress
 * lines and one result line on its stdout, which it keeps for itself: the plugin's own
 * stdout is pointed at stderr so a stray printf cannot forge protocol lines. Probe
 * mode (`--probe PLUGIN.so`) prints the checked descriptor as one JSON object.
 *
 * Zygote mode (`--zygote`, zygote.c) forks attempt runners for the host instead of the
 * host exec'ing each one; a forked runner continues here as an exec'd one would.
 *
 * A warm runner (its request has "go_fd", core/attempt.h) is started before its attempt
 * with only what confinement needs: it confines itself, then waits for the attempt's own
 * members (sandbox.c, wfh_sandbox_apply_request) before it loads the plugin, and from
 * there runs as any runner. While it waits its process name is "wfhost-runner-w".
 *
 * Lifetime: the host makes the runner a process-group leader; the runner dies with
 * its parent (PR_SET_PDEATHSIG), is a child subreaper, and kills everything the plugin
 * started before it exits or when it gets SIGTERM (proctree.c).
 */
#include "runner.h"
#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#define OUTPUT_MAX (16u << 20)   /* all outputs of one attempt, as JSON text */
#define LOG_MAX (64u << 10)      /* one log line */
#define ERROR_MAX 4096           /* the one-line error message */
#define OUTPUT_NAME_MAX 128

/* The protocol channel: the runner's original stdout, moved to a CLOEXEC fd. */
static int chan = -1;

struct wfh_call {
    const char *plugin;     /* borrowed: the plugin's name */
    const char *type;       /* borrowed: the step type */
    size_t output_bytes;    /* JSON text sent as outputs so far */
    int output_overflow;    /* set_output refused for size: the attempt fails */
    char *error;            /* owned: set_error's message */
    uint64_t retry_after_ms;
    int active;             /* 0 once the step function returned */
};

/* Set from the signal handler: a plugin asking is_cancelled() learns of SIGINT, the
 * cooperative "please stop" (SIGTERM is the hard stop). */
static volatile sig_atomic_t cancel_requested;

static void on_sigterm(int sig)
{
    (void)sig;
    wfh_proctree_kill_all();
    _exit(128 + SIGTERM);
}

static void on_sigint(int sig)
{
    (void)sig;
    cancel_requested = 1;
}

/* A JSON string from arbitrary plugin bytes: invalid UTF-8 and NULs become U+FFFD, so
 * one bad byte costs a character, not the whole line. Returns a new reference. */
static json_t *sanitized_string(const char *s, size_t len)
{
    if (!s)
        return json_string("");
    char *buf = malloc(len * 3 + 1);
    if (!buf)
        return NULL;
    size_t o = 0;
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        unsigned c = p[i];
        size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
        int ok = n > 0 && i + n <= len && c != 0;
        if (ok && n > 1) {
            uint32_t cp = c & (0x7fu >> n);
            for (size_t k = 1; k < n; k++) {
                if ((p[i + k] & 0xc0) != 0x80) {
                    ok = 0;
                    break;
                }
                cp = (cp << 6) | (p[i + k] & 0x3f);
            }
            static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
            if (ok && (cp < min_cp[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)))
                ok = 0;
        }
        if (ok) {
            memcpy(buf + o, p + i, n);
            o += n;
            i += n;
        } else {
            memcpy(buf + o, "\xef\xbf\xbd", 3);
            o += 3;
            i += 1;
        }
    }
    json_t *j = json_stringn(buf, o);
    free(buf);
    return j;
}

/* Send one protocol line. Failing to reach the host is fatal: nobody would hear us. */
static void emit(json_t *line)
{
    if (!line)
        goto lost;
    char *text = json_dumps(line, JSON_COMPACT);
    json_decref(line);
    if (!text)
        goto lost;
    size_t n = strlen(text);
    text[n] = '\n'; /* json_dumps leaves the NUL we overwrite; we write n + 1 bytes */
    int rc = wfh_runner_write_all(chan, text, n + 1);
    free(text);
    if (rc == 0)
        return;
lost:
    fprintf(stderr, "wfhost-runner: cannot write to the host (%s); giving up\n", strerror(errno));
    wfh_proctree_kill_all();
    _exit(3);
}

static void host_log(wfh_call *call, int32_t level, const char *msg, size_t len)
{
    if (!call || !call->active || !msg)
        return;
    if (level < WFH_LOG_ERROR)
        level = WFH_LOG_ERROR;
    if (level > WFH_LOG_DEBUG)
        level = WFH_LOG_DEBUG;
    if (len > LOG_MAX)
        len = LOG_MAX;
    while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == '\r'))
        len--;
    emit(json_pack("{s:s, s:i, s:o}", "t", "log", "level", (int)level, "msg", sanitized_string(msg, len)));
}

static int valid_output_name(const char *s)
{
    if (!s || !((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_'))
        return 0;
    size_t n = 0;
    for (; *s; s++, n++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_' ||
              *s == '-'))
            return 0;
    return n <= OUTPUT_NAME_MAX;
}

static void log_line(wfh_call *call, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void log_line(wfh_call *call, int level, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    host_log(call, level, buf, strlen(buf));
}

static int32_t host_set_output(wfh_call *call, const char *name, const char *json, size_t json_len)
{
    if (!call || !call->active)
        return -1;
    if (!valid_output_name(name)) {
        log_line(call, WFH_LOG_ERROR, "set_output: invalid output name (want [A-Za-z_][A-Za-z0-9_-]*, at most %d)",
                 OUTPUT_NAME_MAX);
        return -1;
    }
    if (!json) {
        log_line(call, WFH_LOG_ERROR, "set_output('%s'): value is NULL", name);
        return -1;
    }
    if (call->output_bytes + json_len > OUTPUT_MAX) {
        call->output_overflow = 1;
        log_line(call, WFH_LOG_ERROR, "set_output('%s'): outputs would exceed %u MiB", name, OUTPUT_MAX >> 20);
        return -1;
    }
    json_error_t je;
    json_t *v = json_loadb(json, json_len, JSON_DECODE_ANY, &je);
    if (!v) {
        log_line(call, WFH_LOG_ERROR, "set_output('%s'): value is not JSON: %d:%d: %s", name, je.line,
                 je.column, je.text);
        return -1;
    }
    /* Counted as the JSON text we send, which is what the host has to hold. */
    char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    size_t cost = text ? strlen(text) : json_len;
    free(text);
    if (call->output_bytes + cost > OUTPUT_MAX) {
        json_decref(v);
        call->output_overflow = 1;
        log_line(call, WFH_LOG_ERROR, "set_output('%s'): outputs would exceed %u MiB", name, OUTPUT_MAX >> 20);
        return -1;
    }
    call->output_bytes += cost;
    emit(json_pack("{s:s, s:s, s:o}", "t", "output", "name", name, "value", v));
    return 0;
}

static void host_set_error(wfh_call *call, const char *msg, size_t len)
{
    if (!call || !call->active || !msg)
        return;
    if (len > ERROR_MAX)
        len = ERROR_MAX;
    char *e = malloc(len + 1);
    if (!e)
        return;
    /* One line: the host prints it after "step x failed: ". */
    for (size_t i = 0; i < len; i++)
        e[i] = (msg[i] == '\n' || msg[i] == '\r' || msg[i] == '\t') ? ' ' : msg[i];
    while (len > 0 && e[len - 1] == ' ')
        len--;
    e[len] = 0;
    free(call->error);
    call->error = e;
}

static void host_set_retry_after(wfh_call *call, uint64_t ms)
{
    if (call && call->active)
        call->retry_after_ms = ms;
}

static void host_progress(wfh_call *call, double fraction, const char *msg, size_t len)
{
    if (!call || !call->active)
        return;
    if (isnan(fraction) || fraction < 0)
        fraction = -1;
    else if (fraction > 1)
        fraction = 1;
    if (len > LOG_MAX)
        len = LOG_MAX;
    emit(json_pack("{s:s, s:f, s:o}", "t", "progress", "fraction", fraction, "msg",
                   sanitized_string(msg ? msg : "", msg ? len : 0)));
}

static int32_t host_is_cancelled(wfh_call *call)
{
    (void)call;
    return cancel_requested ? 1 : 0;
}

static const wfh_host_api host_api = {
    .struct_size = sizeof(wfh_host_api),
    .abi_major = WFH_ABI_MAJOR,
    .abi_minor = WFH_RUNNER_ABI_MINOR,
    .log = host_log,
    .set_output = host_set_output,
    .set_error = host_set_error,
    .set_retry_after = host_set_retry_after,
    .progress = host_progress,
    .is_cancelled = host_is_cancelled,
};

static const char *status_name(int s)
{
    static const char *names[] = {"ok", "failed", "transient", "permanent", "timeout", "invalid input",
                                  "cancelled"};
    return s >= 0 && s <= WFH_STEP_CANCELLED ? names[s] : "unknown";
}

/* Send the result line, clean up the process tree and exit. */
static void finish(int status, const char *error, uint64_t retry_after_ms)
{
    /* Kill leftovers first, so the host never sees a result while part of the step is
     * still running. */
    wfh_proctree_kill_all();
    json_t *r = json_pack("{s:s, s:i, s:I}", "t", "result", "status", status, "retry_after_ms",
                          (json_int_t)(retry_after_ms > INT64_MAX ? INT64_MAX : retry_after_ms));
    if (r && error && status != WFH_STEP_OK)
        json_object_set_new(r, "error", sanitized_string(error, strlen(error)));
    if (r && wfh_sandbox_applied()) /* which protections this attempt actually ran under */
        json_object_set(r, "sandbox", (json_t *)wfh_sandbox_applied());
    emit(r);
}

/* Keep the real stdout for the protocol and make fd 1 the plugin's stderr. */
static int take_channel(void)
{
    chan = fcntl(1, F_DUPFD_CLOEXEC, 3);
    if (chan < 0 || dup2(2, 1) < 0) {
        fprintf(stderr, "wfhost-runner: cannot set up the protocol channel: %s\n", strerror(errno));
        return -1;
    }
    return 0;
}

static int run_probe(const char *path)
{
    if (take_channel() < 0)
        return 2;
    wfh_loaded_plugin p;
    char err[1024];
    int rc = 1;
    if (wfh_runner_load(path, &p, err, sizeof err) == 0 && wfh_runner_probe_print(&p, chan, err, sizeof err) == 0)
        rc = 0;
    else
        fprintf(stderr, "wfhost-runner: %s\n", err);
    wfh_loaded_plugin_clear(&p);
    wfh_proctree_kill_all();
    return rc;
}

static const char *str_member(json_t *req, const char *key)
{
    const char *s = json_string_value(json_object_get(req, key));
    return s ? s : "";
}

/* "inputs" and "env", where present, are objects. */
static int request_parts_ok(json_t *req)
{
    json_t *jin = json_object_get(req, "inputs");
    json_t *jenv = json_object_get(req, "env");
    return (!jin || json_is_object(jin)) && (!jenv || json_is_object(jenv));
}

static int run_attempt(void)
{
    char *text = NULL;
    size_t text_len = 0;
    json_t *req = NULL;
    char *inputs = NULL, *env = NULL, *grant = NULL; /* owned JSON texts */
    wfh_loaded_plugin p;
    memset(&p, 0, sizeof p);
    wfh_call call;
    memset(&call, 0, sizeof call);
    int exit_code = 0;

    int in_err = wfh_runner_read_all(0, &text, &text_len);
    int saved = errno;
    /* The plugin gets no stdin: an interactive prompt must not hang the attempt. */
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (devnull >= 0) {
        dup2(devnull, 0);
        close(devnull);
    }
    if (take_channel() < 0)
        return 2;
    if (in_err < 0) {
        char e[256];
        snprintf(e, sizeof e, "step runner: cannot read the request: %s", strerror(saved));
        finish(WFH_STEP_FAILED, e, 0);
        exit_code = 2;
        goto done;
    }
    json_error_t je;
    req = json_loadb(text, text_len, 0, &je);
    const char *plugin_path = str_member(req, "plugin");
    const char *type = str_member(req, "type");
    json_t *jgo = json_object_get(req, "go_fd");
    json_int_t go_fd = jgo ? json_integer_value(jgo) : -1;
    if (!req || !*plugin_path || !*type || !request_parts_ok(req) ||
        (jgo && (!json_is_integer(jgo) || go_fd < 3 || go_fd > 4 || fcntl((int)go_fd, F_SETFD, FD_CLOEXEC) < 0))) {
        char e[512];
        if (!req)
            snprintf(e, sizeof e, "step runner: malformed request: %d:%d: %s", je.line, je.column, je.text);
        else
            snprintf(e, sizeof e, "step runner: malformed request: need \"plugin\" and \"type\" strings, "
                                  "object \"inputs\"/\"env\" and a go_fd of 3 or 4 (an open descriptor)");
        finish(WFH_STEP_FAILED, e, 0);
        exit_code = 2;
        goto done;
    }
    /* A warm runner (core/attempt.h) says so in its name while it waits for its attempt,
     * so an operator can tell it from one that runs a step. The name keeps the prefix
     * the cgroup sweep looks for (sandbox_cgroup.c owner_dead): it is a live runner. */
    if (go_fd >= 0)
        (void)prctl(PR_SET_NAME, "wfhost-runner-w", 0, 0, 0);

    /* Confine before any plugin code runs: dlopen happens inside the sandbox. Only the
     * confined step returns from here; the supervisor exits like the step did. A warm
     * runner returns once it has its go: the attempt's own members, merged in below. */
    json_t *go = NULL; /* owned */
    int serr = wfh_sandbox_apply_request(req, plugin_path, &chan, (int)go_fd, &go);
    if (serr == WFH_ECANCELLED) {
        /* The host dropped this warm runner before giving it an attempt. */
        exit_code = 0;
        goto done;
    }
    if (serr < 0) {
        finish(serr == WFH_ESECURITY ? WFH_STEP_PERMANENT : WFH_STEP_FAILED, wfh_sandbox_error(), 0);
        exit_code = 3;
        goto done;
    }
    if (go) {
        (void)prctl(PR_SET_NAME, "wfhost-runner", 0, 0, 0);
        static const char *const members[] = {"inputs", "env", "run_id", "step_id", "attempt",
                                              "idempotency_key"};
        for (size_t i = 0; i < sizeof members / sizeof members[0]; i++) {
            json_t *v = json_object_get(go, members[i]);
            if (v)
                json_object_set(req, members[i], v);
        }
        json_decref(go);
        if (!request_parts_ok(req)) {
            finish(WFH_STEP_FAILED, "step runner: malformed go: need object \"inputs\"/\"env\"", 0);
            exit_code = 2;
            goto done;
        }
    }
    json_t *jin = json_object_get(req, "inputs");
    json_t *jenv = json_object_get(req, "env");
    json_t *empty = json_object();
    inputs = json_dumps(jin ? jin : empty, JSON_COMPACT);
    env = json_dumps(jenv ? jenv : empty, JSON_COMPACT);
    json_decref(empty);
    if (!inputs || !env) {
        finish(WFH_STEP_FAILED, "step runner: out of memory", 0);
        exit_code = 2;
        goto done;
    }

    char err[1024];
    if (wfh_runner_load(plugin_path, &p, err, sizeof err) < 0) {
        /* A plugin this host cannot load will not load on a retry either. */
        finish(WFH_STEP_PERMANENT, err, 0);
        goto done;
    }
    /* Tell the host who it is talking to, so its messages use the plugin's name. */
    emit(json_pack("{s:s, s:s, s:s}", "t", "plugin", "name", p.desc.d.name, "version", p.desc.d.version));
    /* A registry plugin: the signed index recorded its identity at install, and the bytes
     * match by hash; a different answer now is an integrity failure, refused before
     * init or any step runs (the registry's attack case "index/descriptor disagree"). */
    json_t *expect = json_object_get(req, "expect");
    const char *ename = json_string_value(json_object_get(expect, "name"));
    const char *ever = json_string_value(json_object_get(expect, "version"));
    if (expect && (!ename || !ever || strcmp(ename, p.desc.d.name) != 0 || strcmp(ever, p.desc.d.version) != 0)) {
        snprintf(err, sizeof err, "plugin '%s': integrity failure: after loading it says it is %s@%s, but the "
                 "signed index says %s@%s; refused before init", ename ? ename : "?", p.desc.d.name,
                 p.desc.d.version, ename ? ename : "?", ever ? ever : "?");
        finish(WFH_STEP_PERMANENT, err, 0);
        exit_code = 3;
        goto done;
    }
    const wfh_step_type *st = NULL;
    for (uint32_t i = 0; i < p.n_types; i++)
        if (!strcmp(p.types[i].t.name, type))
            st = &p.types[i].t;
    if (!st) {
        snprintf(err, sizeof err, "plugin '%s' (%s) has no step type '%s'", p.desc.d.name,
                 wfh_runner_basename(plugin_path), type);
        finish(WFH_STEP_PERMANENT, err, 0);
        goto done;
    }

    /* The grant the plugin may consult (ABI 1.1): the sandbox member without the
     * environment's values, which the step already has through env_json. */
    json_t *jgrant = json_deep_copy(json_object_get(req, "sandbox"));
    if (!jgrant)
        jgrant = json_pack("{s:s, s:b}", "profile", "none", "net", 1);
    if (jgrant) {
        json_object_del(jgrant, "env");
        grant = json_dumps(jgrant, JSON_COMPACT);
        json_decref(jgrant);
    }
    if (!grant) {
        finish(WFH_STEP_FAILED, "step runner: out of memory", 0);
        goto done;
    }

    call.plugin = p.desc.d.name;
    call.type = st->name;
    call.active = 1;
    json_int_t attempt = json_integer_value(json_object_get(req, "attempt"));
    wfh_step_request sreq = {
        .struct_size = sizeof(wfh_step_request),
        .attempt = attempt > 0 && attempt < UINT32_MAX ? (uint32_t)attempt : 1,
        .step_type = st->name,
        .inputs_json = inputs,
        .inputs_len = strlen(inputs),
        .env_json = env,
        .env_len = strlen(env),
        .run_id = str_member(req, "run_id"),
        .step_id = str_member(req, "step_id"),
        .idempotency_key = str_member(req, "idempotency_key"),
        .workspace = str_member(req, "workspace"),
        .grant_json = grant,
        .grant_len = strlen(grant),
    };

    if (p.desc.d.init) {
        int32_t irc = p.desc.d.init(&host_api, &call);
        if (irc != 0) {
            snprintf(err, sizeof err, "plugin '%s': init failed (returned %d)%s%s", call.plugin, (int)irc,
                     call.error ? ": " : "", call.error ? call.error : "");
            call.active = 0;
            finish(WFH_STEP_FAILED, err, call.retry_after_ms);
            goto done;
        }
    }
    int32_t status = st->run(&host_api, &call, &sreq);
    call.active = 0;
    if (status < WFH_STEP_OK || status > WFH_STEP_CANCELLED) {
        snprintf(err, sizeof err, "plugin '%s': step type '%s' returned %d, which is not a wfh_step_status",
                 call.plugin, call.type, (int)status);
        finish(WFH_STEP_FAILED, err, 0);
    } else if (call.output_overflow && status == WFH_STEP_OK) {
        snprintf(err, sizeof err, "plugin '%s': step type '%s' produced more than %u MiB of outputs",
                 call.plugin, call.type, OUTPUT_MAX >> 20);
        finish(WFH_STEP_FAILED, err, 0);
    } else if (status != WFH_STEP_OK && !call.error) {
        snprintf(err, sizeof err, "plugin '%s': step type '%s' ended with status '%s' and no message",
                 call.plugin, call.type, status_name(status));
        finish(status, err, call.retry_after_ms);
    } else {
        finish(status, call.error, call.retry_after_ms);
    }
done:
    free(call.error);
    wfh_loaded_plugin_clear(&p);
    free(inputs);
    free(env);
    free(grant);
    json_decref(req);
    free(text);
    return exit_code;
}

#if defined(__SANITIZE_ADDRESS__)
#define WFH_RUNNER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WFH_RUNNER_ASAN 1
#endif
#endif
#ifdef WFH_RUNNER_ASAN
/* In the sanitizer build a plugin's SIGSEGV must still look like a crash to the host
 * (killed by the signal), not like ASan's report and exit status 1. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "handle_segv=0:handle_sigbus=0:handle_sigfpe=0:handle_abort=0";
}
#endif

/* Die with the host. The parent may have died before prctl took effect, which getppid()
 * then shows: that closes the race. Returns 0 (after saying why) if it is gone. */
static int die_with_parent(long parent)
{
    (void)prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if (parent > 0 && getppid() != (pid_t)parent) {
        fprintf(stderr, "wfhost-runner: parent %ld is gone; not running\n", parent);
        return 0;
    }
    return 1;
}

static void usage(FILE *out)
{
    fputs("usage: wfhost-runner [--parent-pid PID]          (one attempt: JSON request on stdin)\n"
          "       wfhost-runner --probe PLUGIN.so           (print the plugin's descriptor as JSON)\n"
          "       wfhost-runner --zygote --parent-pid PID   (fork attempts for the host; core/runner/zygote.c)\n"
          "The step runner is started by wfhost; see core/attempt.h for the protocol.\n",
          out);
}

int main(int argc, char **argv)
{
    const char *probe = NULL;
    long parent = 0;
    int zygote = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--probe") && i + 1 < argc) {
            probe = argv[++i];
        } else if (!strcmp(argv[i], "--zygote")) {
            zygote = 1;
        } else if (!strcmp(argv[i], "--parent-pid") && i + 1 < argc) {
            char *end;
            parent = strtol(argv[++i], &end, 10);
            if (*end || parent <= 0) {
                fprintf(stderr, "wfhost-runner: --parent-pid wants a process id, not '%s'\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "wfhost-runner: unexpected argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }

    if (zygote && (probe || parent <= 0)) {
        fprintf(stderr, "wfhost-runner: --zygote wants --parent-pid and no --probe\n");
        return 2;
    }
    if (!die_with_parent(parent))
        return 3;
    /* The zygote returns here only in a new attempt's process (its parent is the host
     * too), which then starts exactly as an exec'd runner does. */
    if (zygote) {
        int rc = wfh_zygote_serve(0, (pid_t)parent);
        if (rc >= 0)
            return rc;
        if (!die_with_parent(parent))
            return 3;
    }
    wfh_proctree_init();

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigfillset(&sa.sa_mask);
    sa.sa_handler = on_sigterm;
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);

    if (probe)
        return run_probe(probe);
    return run_attempt();
}
