/*
 * core/attempt.c - the host side of one step attempt (interface: core/attempt.h).
 *
 * posix_spawn()s the step runner in its own process group (a fork of a big host is slow
 * and copies its secrets), or, from the second attempt on, has the runner's zygote fork
 * it (below: the exec and dynamic linking were most of a short step's cost), hands it
 * the request through a sealed memfd as stdin (no pipe to block on, no SIGPIPE if the
 * runner dies early), and turns what comes back on its stdout (JSON lines) and stderr
 * (free text) into hook calls and one wfh_attempt_result. Anything the runner does not
 * say properly (a crash, an exit without a result, garbage on the channel) becomes a
 * failed result that says what happened. When the scheduler hints that more attempts
 * like this one follow, the next one's runner is started in advance ("warm runners",
 * below and core/attempt.h). The scheduler owns the event loop and waitpid(); this
 * file never blocks except for the short grace in wfh_attempt_kill, the final drain, and
 * the wait for a warm runner it drops to exit (bounded the same way).
 */
#include "attempt.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <wfhost/plugin.h>

#include "error.h"
#include "registry/registry.h"
#include "runner/runner.h"

extern char **environ;

/* The runner caps outputs at 16 MiB of JSON text per attempt; one output line can
 * carry all of it, plus the envelope. Longer is a broken runner. */
#define CHAN_LINE_MAX ((size_t)(16u << 20) + (64u << 10))
/* Free text on stderr is chopped into pieces of this size rather than refused. */
#define ERR_LINE_MAX 4096
/* How long wfh_attempt_kill lets the runner clean up its tree before SIGKILL. */
#define KILL_GRACE_MS 200
/* How long finish waits for pipe EOF once the runner is gone (an escaped process
 * may still hold them). */
#define DRAIN_MS 200

typedef struct linebuf {
    char *buf; /* owned */
    size_t len, cap;
} linebuf;

struct wfh_attempt {
    pid_t pid;
    int out_fd, err_fd;         /* owned, non-blocking, -1 once closed */
    wfh_attempt_hooks hooks;
    char *plugin;               /* owned: the plugin's name once the runner said it; until
                                   then the file's basename without .so */
    linebuf out, err;
    json_t *outputs;            /* owned: object */
    int have_result;
    int status;
    char *error;                /* owned: from the result line */
    uint64_t retry_after_ms;
    json_t *sandbox;            /* owned reference or NULL: the result line's report */
    json_t *sup_sandbox;        /* owned reference or NULL: the supervisor's report, from a
                                   {"t":"sandbox"} line (core/runner/sandbox.c) */
    int sup_last;               /* that line was the last one on the channel */
    char *protocol_error;       /* owned: the first thing that was wrong on the channel */
    int out_overflow;           /* discarding until the next newline after an overlong line */
    char last_stderr[256];      /* last non-empty stderr line, for crash messages */
    int killed;
    int kill_status;
    char *kill_why;             /* owned */
    int reaped;
    int refused;                /* the plugin failed the identity check: see the result */
    char *expect_name;          /* owned: registry plugins only; the runner must report */
    char *expect_version;       /* owned  this identity after loading the verified bytes */
    int warm;                   /* the runner was a warm one, taken at go */
};

static char *dupstr(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void protocol_fail(wfh_attempt *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void protocol_fail(wfh_attempt *a, const char *fmt, ...)
{
    if (a->protocol_error)
        return; /* the first problem is the one worth reporting */
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    a->protocol_error = strdup(buf);
}

static void hook_log(wfh_attempt *a, int level, const char *msg, size_t len)
{
    if (a->hooks.log)
        a->hooks.log(a->hooks.ud, a, level, msg, len);
}

/* One JSON line from the runner. */
static void handle_chan_line(wfh_attempt *a, const char *line, size_t len)
{
    if (len == 0)
        return;
    json_error_t je;
    json_t *j = json_loadb(line, len, 0, &je);
    const char *t = json_string_value(json_object_get(j, "t"));
    a->sup_last = 0;
    if (t && !strcmp(t, "sandbox")) {
        /* The supervisor, outside the sandbox, says what it applied as the very last
         * line, after the step's tree is dead. Only a final one counts: the step itself
         * can write on this channel, but nothing after the supervisor. */
        json_t *sb = json_object_get(j, "sandbox");
        json_decref(a->sup_sandbox);
        a->sup_sandbox = json_is_object(sb) ? json_incref(sb) : NULL;
        a->sup_last = 1;
        goto done;
    }
    if (!j || !t) {
        protocol_fail(a, "plugin '%s': the step runner sent a malformed line (%.*s%s)", a->plugin,
                      (int)(len > 60 ? 60 : len), line, len > 60 ? "..." : "");
        goto done;
    }
    if (a->have_result) {
        protocol_fail(a, "plugin '%s': the step runner sent '%s' after its result", a->plugin, t);
        goto done;
    }
    if (!strcmp(t, "log")) {
        json_t *m = json_object_get(j, "msg");
        hook_log(a, (int)json_integer_value(json_object_get(j, "level")), json_string_value(m) ? json_string_value(m) : "",
                 json_string_length(m));
    } else if (!strcmp(t, "output")) {
        const char *name = json_string_value(json_object_get(j, "name"));
        json_t *v = json_object_get(j, "value");
        if (!name || !v)
            protocol_fail(a, "plugin '%s': output line without name or value", a->plugin);
        else
            json_object_set(a->outputs, name, v);
    } else if (!strcmp(t, "progress")) {
        if (a->hooks.progress) {
            const char *m = json_string_value(json_object_get(j, "msg"));
            a->hooks.progress(a->hooks.ud, a, json_number_value(json_object_get(j, "fraction")), m ? m : "");
        }
    } else if (!strcmp(t, "plugin")) {
        const char *name = json_string_value(json_object_get(j, "name"));
        const char *version = json_string_value(json_object_get(j, "version"));
        /* The signed index recorded this plugin's identity at install; the bytes match
         * by hash, so a different answer means the plugin describes itself differently
         * from run to run: an integrity failure, not a plugin to trust. */
        if (a->expect_name && (!name || strcmp(name, a->expect_name) != 0 || !version ||
                               (a->expect_version && strcmp(version, a->expect_version) != 0))) {
            protocol_fail(a, "plugin '%s': after loading it says it is %s@%s, but the signed index "
                          "says %s@%s; refused", a->expect_name, name ? name : "?",
                          version ? version : "?", a->expect_name,
                          a->expect_version ? a->expect_version : "?");
            a->refused = 1;
            goto done;
        }
        char *n = name ? strdup(name) : NULL;
        if (n) {
            free(a->plugin);
            a->plugin = n;
        }
    } else if (!strcmp(t, "result")) {
        json_t *st = json_object_get(j, "status");
        json_int_t s = json_integer_value(st);
        if (!json_is_integer(st) || s < WFH_STEP_OK || s > WFH_STEP_CANCELLED) {
            protocol_fail(a, "plugin '%s': result line without a valid status", a->plugin);
        } else {
            a->have_result = 1;
            a->status = (int)s;
            free(a->error);
            a->error = dupstr(json_string_value(json_object_get(j, "error")));
            json_int_t ra = json_integer_value(json_object_get(j, "retry_after_ms"));
            a->retry_after_ms = ra > 0 ? (uint64_t)ra : 0;
            json_t *sb = json_object_get(j, "sandbox");
            json_decref(a->sandbox);
            a->sandbox = json_is_object(sb) ? json_incref(sb) : NULL;
        }
    }
    /* Unknown kinds are ignored: a newer runner may say more than we understand. */
done:
    json_decref(j);
}

static void handle_err_line(wfh_attempt *a, const char *line, size_t len)
{
    while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == '\n'))
        len--;
    if (len == 0)
        return;
    size_t keep = len < sizeof a->last_stderr - 1 ? len : sizeof a->last_stderr - 1;
    memcpy(a->last_stderr, line, keep);
    a->last_stderr[keep] = 0;
    hook_log(a, WFH_LOG_INFO, line, len);
}

static int lb_append(linebuf *b, const char *data, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n)
            cap *= 2;
        char *nb = realloc(b->buf, cap);
        if (!nb)
            return -1;
        b->buf = nb;
        b->cap = cap;
    }
    memcpy(b->buf + b->len, data, n);
    b->len += n;
    return 0;
}

/* Split what arrived into lines and dispatch them; keep the partial tail. */
static void feed(wfh_attempt *a, int is_err, const char *data, size_t n)
{
    linebuf *b = is_err ? &a->err : &a->out;
    size_t max = is_err ? ERR_LINE_MAX : CHAN_LINE_MAX;
    while (n > 0) {
        const char *nl = memchr(data, '\n', n);
        size_t take = nl ? (size_t)(nl - data) + 1 : n;
        if (!is_err && a->out_overflow) {
            /* Still inside an overlong line: drop until its end. */
            if (nl)
                a->out_overflow = 0;
        } else if (b->len + take > max) {
            if (is_err) {
                /* Free text: deliver what we have as a line and carry on. */
                size_t room = max - b->len;
                lb_append(b, data, room);
                handle_err_line(a, b->buf, b->len);
                b->len = 0;
                take = room;
            } else {
                protocol_fail(a, "plugin '%s': the step runner sent a line longer than %zu bytes", a->plugin, max);
                b->len = 0;
                a->out_overflow = nl ? 0 : 1;
            }
        } else if (lb_append(b, data, take) < 0) {
            if (!is_err)
                protocol_fail(a, "plugin '%s': out of memory reading the step runner", a->plugin);
            b->len = 0;
        } else if (nl) {
            if (is_err)
                handle_err_line(a, b->buf, b->len);
            else
                handle_chan_line(a, b->buf, b->len - 1);
            b->len = 0;
        }
        data += take;
        n -= take;
    }
}

void wfh_attempt_read(wfh_attempt *a, int fd)
{
    if (!a || fd < 0 || (fd != a->out_fd && fd != a->err_fd))
        return;
    int is_err = fd == a->err_fd;
    char buf[65536];
    /* Bounded per call so one chatty attempt cannot starve the scheduler's loop. */
    for (int round = 0; round < 64; round++) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r > 0) {
            feed(a, is_err, buf, (size_t)r);
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        /* EOF or a real error: this stream is over. A partial last line still counts. */
        linebuf *b = is_err ? &a->err : &a->out;
        if (b->len > 0) {
            if (is_err)
                handle_err_line(a, b->buf, b->len);
            else
                handle_chan_line(a, b->buf, b->len);
            b->len = 0;
        }
        close(fd);
        if (is_err)
            a->err_fd = -1;
        else
            a->out_fd = -1;
        return;
    }
}

static char *plugin_label(const char *path)
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    size_t n = strlen(b);
    if (n > 3 && !strcmp(b + n - 3, ".so"))
        n -= 3;
    return strndup(b, n);
}

/* @p text as a sealed memfd positioned at 0 (a request for the runner's stdin, or a warm
 * runner's go). Returns 0 and *out (owned), or WFH_EIO. */
static int sealed_memfd(const char *name, const char *text, int *out)
{
    int err = 0;
    int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return wfh_error_set(WFH_EIO, "memfd_create: %s", strerror(errno));
    size_t len = strlen(text), off = 0;
    while (off < len) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            err = wfh_error_set(WFH_EIO, "writing the runner request: %s", strerror(errno));
            goto done;
        }
        off += (size_t)w;
    }
    (void)fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL);
    if (lseek(fd, 0, SEEK_SET) < 0) {
        err = wfh_error_set(WFH_EIO, "lseek on the request memfd: %s", strerror(errno));
        goto done;
    }
    *out = fd;
    fd = -1;
done:
    if (fd >= 0)
        close(fd);
    return err;
}

/* The members only the attempt has: its inputs, variables and ids (a warm runner gets
 * them at go, core/attempt.h). With @p sandbox_env, also the sandbox member's "env"
 * (granted variables: their values may be secret) as "sandbox_env". Returns 0 and *out
 * (new reference), or a negative code. */
static int request_attempt_part(const wfh_attempt_spec *spec, int sandbox_env, json_t **out)
{
    const char *step = spec->step_id ? spec->step_id : "?";
    json_t *req = json_pack("{s:O?, s:O?, s:s, s:s, s:I, s:s}", "inputs", spec->inputs, "env", spec->env,
                            "run_id", spec->run_id ? spec->run_id : "", "step_id", spec->step_id ? spec->step_id : "",
                            "attempt", (json_int_t)(spec->attempt ? spec->attempt : 1), "idempotency_key",
                            spec->idempotency_key ? spec->idempotency_key : "");
    if (!req)
        return wfh_error_set(WFH_EINVAL, "step '%s': cannot build the runner request (inputs/env not JSON "
                             "objects?)", step);
    json_t *env = sandbox_env ? json_object_get(spec->sandbox, "env") : NULL;
    if (env && json_object_set(req, "sandbox_env", env) != 0) {
        json_decref(req);
        return wfh_error_set(WFH_ENOMEM, "step '%s': out of memory", step);
    }
    *out = req;
    return 0;
}

/* The members confinement needs, the plugin named by @p plugin_path. @p go_fd >= 0: the
 * part a warm runner starts with (the sandbox member without "env", and "go_fd");
 * otherwise the sandbox member as it is. Returns 0 and *out (new reference), or
 * WFH_ENOMEM. */
static int request_confine_part(const wfh_attempt_spec *spec, const char *plugin_path, int go_fd, json_t **out)
{
    json_t *req = json_pack("{s:s, s:s, s:s}", "plugin", plugin_path, "type", spec->step_type, "workspace",
                            spec->workspace ? spec->workspace : "");
    int bad = !req;
    /* A registry plugin must say it is what the signed index recorded (the runner checks
     * this after dlopen, before init). */
    if (!bad && spec->plugin_blake2b256 && spec->plugin_name && spec->plugin_version)
        bad = json_object_set_new(req, "expect", json_pack("{s:s, s:s}", "name", spec->plugin_name, "version",
                                                           spec->plugin_version)) != 0;
    /* The runner confines itself with this before it loads the plugin. */
    if (!bad && spec->sandbox) {
        json_t *sb = go_fd >= 0 ? json_copy(spec->sandbox) : json_incref(spec->sandbox);
        if (sb && go_fd >= 0)
            json_object_del(sb, "env");
        bad = json_object_set_new(req, "sandbox", sb) != 0;
    }
    if (!bad && go_fd >= 0)
        bad = json_object_set_new(req, "go_fd", json_integer(go_fd)) != 0;
    if (bad) {
        json_decref(req);
        return wfh_error_set(WFH_ENOMEM, "step '%s': out of memory", spec->step_id ? spec->step_id : "?");
    }
    *out = req;
    return 0;
}

/* The whole request of an ordinary attempt as a sealed memfd: the runner's stdin. */
static int request_fd(const wfh_attempt_spec *spec, const char *plugin_path, int *out)
{
    char *text = NULL; /* owned */
    json_t *req = NULL, *part = NULL; /* owned */
    int err = request_confine_part(spec, plugin_path, -1, &req);
    if (err < 0 || (err = request_attempt_part(spec, 0, &part)) < 0)
        goto done;
    if (json_object_update(req, part) != 0 || !(text = json_dumps(req, JSON_COMPACT))) {
        err = wfh_error_set(WFH_ENOMEM, "step '%s': out of memory", spec->step_id ? spec->step_id : "?");
        goto done;
    }
    err = sealed_memfd("wfh-request", text, out);
done:
    free(text);
    json_decref(part);
    json_decref(req);
    return err;
}

/* Own process group, so the whole group can be killed; default dispositions and an empty
 * mask, whatever the host set for itself (a zygote-forked runner does the same itself). */
static void runner_spawnattr(posix_spawnattr_t *attr)
{
    sigset_t none, defaults;
    sigemptyset(&none);
    sigemptyset(&defaults);
    static const int reset[] = WFH_RUNNER_RESET_SIGNALS;
    for (size_t i = 0; i < sizeof reset / sizeof reset[0]; i++)
        sigaddset(&defaults, reset[i]);
    posix_spawnattr_setsigmask(attr, &none);
    posix_spawnattr_setsigdefault(attr, &defaults);
    posix_spawnattr_setpgroup(attr, 0);
    posix_spawnattr_setflags(attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
}

/* ---- the zygote (core/runner/zygote.c) -------------------------------------------------
 *
 * One per host process and runner path, started at the second attempt that uses the
 * same runner as the one before (a one-step run and the tests' one-off fake runners pay
 * nothing for it). It forks each later attempt's runner as the host's child instead of
 * the host exec'ing it. Anything wrong with it (cannot start, died, slow, refuses) makes
 * that attempt posix_spawn the runner as before; the next attempt may start a new one,
 * up to ZYG_MAX_STARTS per process. WFH_RUNNER_ZYGOTE=0 turns it off (docs/operations.md:
 * every attempt forked from one zygote shares its address-space layout). */

/* How long the host waits for the zygote's answer (the first one includes its exec). A
 * healthy zygote answers in well under a millisecond. */
#define ZYG_REPLY_MS 5000
#define ZYG_MAX_STARTS 4

static struct {
    pid_t pid;           /* the zygote, or 0 */
    int pidfd;           /* owned, or -1: signals it without racing pid reuse */
    int sock;            /* owned, CLOEXEC, or -1: the host's end of the socketpair */
    pid_t owner;         /* getpid() of the host that started it (a forked host must not use it) */
    char *runner;        /* owned: the runner path it was exec'd from */
    uint64_t env_key;    /* env_key() when it was exec'd (its attempts inherit that state) */
    unsigned starts;     /* zygotes started by this process */
    char *last_runner;   /* owned: the runner of the previous attempt */
} zyg = {0, -1, -1, 0, NULL, 0, 0, NULL};

/* A switch in the host's environment (WFH_RUNNER_ZYGOTE, WFH_RUNNER_WARM): unset, "",
 * "1" or "on" turn it on; "0" or "off" off; anything else is refused. */
static int runner_knob(const char *var, int *wanted)
{
    const char *v = getenv(var);
    if (!v || !*v || !strcmp(v, "1") || !strcmp(v, "on")) {
        *wanted = 1;
        return 0;
    }
    if (!strcmp(v, "0") || !strcmp(v, "off")) {
        *wanted = 0;
        return 0;
    }
    return wfh_error_set(WFH_EINVAL, "%s must be 0, off, 1 or on, not '%.40s'", var, v);
}

/* WFH_RUNNER_WARM: runner_knob's values (1: warm runners while a CPU would otherwise be
 * idle), plus "always" (2: whatever the load; the tests use it to be independent of the
 * machine's CPU count). */
static int warm_knob(int *wanted)
{
    const char *v = getenv("WFH_RUNNER_WARM");
    if (v && !strcmp(v, "always")) {
        *wanted = 2;
        return 0;
    }
    int err = runner_knob("WFH_RUNNER_WARM", wanted);
    if (err < 0)
        return wfh_error_set(WFH_EINVAL, "WFH_RUNNER_WARM must be 0, off, 1, on or always, not '%.40s'",
                             getenv("WFH_RUNNER_WARM"));
    return 0;
}

/* The CPUs this process may run on, read once. A warm runner prepares the next attempt
 * on a CPU the running ones leave idle (a chain's); when every CPU already runs an
 * attempt (a fan-out at -j NCPU) it would only move the same work earlier and add its
 * hand-over: measured, fan-out CPU per step rose by about 0.3 ms under process. */
static unsigned cpus(void)
{
    static unsigned n;
    if (!n) {
        cpu_set_t set;
        n = sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0 ? (unsigned)CPU_COUNT(&set) : 1;
    }
    return n;
}

/* FNV-1a over the environment and the descriptor limit: a zygote's children have the
 * environment and limits it was started with, so one started before a setenv() or the
 * scheduler's raise of RLIMIT_NOFILE (a wider run after it, in the same process) must
 * not serve the attempts after it. The host changes neither its cwd nor its umask. */
static uint64_t env_key(void)
{
    uint64_t h = 1469598103934665603ull;
    for (char **e = environ; e && *e; e++) {
        for (const unsigned char *p = (const unsigned char *)*e; *p; p++)
            h = (h ^ *p) * 1099511628211ull;
        h = (h ^ 0xff) * 1099511628211ull;
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        h = (h ^ (uint64_t)rl.rlim_cur) * 1099511628211ull;
    return h;
}

/* Forget the zygote: kill it and reap it through its pidfd (a wait by pid could take an
 * attempt's status if the scheduler's waitpid(-1) reaped the zygote first and its pid
 * was reused; through the pidfd that wait just fails). */
/* Drop this process's hold on the zygote (its descriptors and path) without touching the
 * process: what a fork of the host does with the zygote it inherited the state of. */
static void zygote_forget(void)
{
    if (zyg.pidfd >= 0)
        close(zyg.pidfd);
    if (zyg.sock >= 0)
        close(zyg.sock);
    free(zyg.runner);
    zyg.runner = NULL;
    zyg.sock = zyg.pidfd = -1;
    zyg.pid = 0;
}

static void zygote_stop(void)
{
    if (zyg.pidfd >= 0) {
        siginfo_t si;
        (void)syscall(SYS_pidfd_send_signal, zyg.pidfd, SIGKILL, NULL, 0);
        while (waitid((idtype_t)3 /* P_PIDFD */, (id_t)zyg.pidfd, &si, WEXITED) < 0 && errno == EINTR) {
        }
    }
    zygote_forget();
}

/* At exit, so no zygote outlives its host even for an instant (it would otherwise exit on
 * EOF or its parent-death signal, and be reaped by whoever inherits it). */
static void zygote_atexit(void)
{
    if (zyg.pid > 0 && zyg.owner == getpid())
        zygote_stop();
}

static int zygote_start(const char *runner)
{
    int sv[2] = {-1, -1};
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    int fa_ok = 0, attr_ok = 0, ok = 0;
    pid_t pid = -1;
    zyg.starts++;
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return -1;
    if (posix_spawn_file_actions_init(&fa) != 0)
        goto done;
    fa_ok = 1;
    if (posix_spawnattr_init(&attr) != 0)
        goto done;
    attr_ok = 1;
    /* The socket is its only channel; no output of its own reaches anyone. */
    posix_spawn_file_actions_adddup2(&fa, sv[1], 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);
#endif
    runner_spawnattr(&attr);
    char parent[24];
    snprintf(parent, sizeof parent, "%ld", (long)getpid());
    char *argv[] = {(char *)runner, "--zygote", "--parent-pid", parent, NULL};
    if (posix_spawn(&pid, runner, &fa, &attr, argv, environ) != 0)
        goto done;
    zyg.runner = strdup(runner);
    if (!zyg.runner) {
        kill(pid, SIGKILL);
        (void)waitpid(pid, NULL, 0); /* not left for the scheduler's waitpid(-1) to find */
        goto done;
    }
    zyg.pid = pid;
    zyg.pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    zyg.sock = sv[0];
    sv[0] = -1;
    zyg.owner = getpid();
    zyg.env_key = env_key();
    static int registered;
    if (!registered)
        registered = atexit(zygote_atexit) == 0;
    ok = 1;
done:
    if (fa_ok)
        posix_spawn_file_actions_destroy(&fa);
    if (attr_ok)
        posix_spawnattr_destroy(&attr);
    if (sv[0] >= 0)
        close(sv[0]);
    close(sv[1]);
    return ok ? 0 : -1;
}

/* Have the zygote fork the runner for @p runner with @p fds as its 0..n-1. Returns 0
 * and the runner's pid, or -1: then no process of this attempt exists and the caller
 * spawns the runner itself with the same descriptors. */
static int zygote_fork(const char *runner, const int *fds, int n, pid_t *out)
{
    int wanted = 1;
    int err = runner_knob("WFH_RUNNER_ZYGOTE", &wanted);
    if (err < 0 || !wanted)
        return err < 0 ? err : 1;
    if (zyg.pid > 0 && zyg.owner != getpid())
        zygote_forget(); /* a fork of the host: the zygote is not ours to use */
    else if (zyg.pid > 0 && strcmp(zyg.runner, runner) != 0)
        return 1; /* another runner binary (tests, ABI checks): spawn it */
    else if (zyg.pid > 0 && zyg.env_key != env_key())
        zygote_stop(); /* started before a setenv() or a raised RLIMIT_NOFILE */
    if (zyg.pid <= 0) {
        /* Only from the second attempt in a row with this runner. */
        int again = zyg.last_runner && !strcmp(zyg.last_runner, runner);
        if (!again) {
            free(zyg.last_runner);
            zyg.last_runner = strdup(runner);
            return 1;
        }
        if (zyg.starts >= ZYG_MAX_STARTS || zygote_start(runner) < 0)
            return 1;
    }

    wfh_zygote_msg msg = {WFH_ZYGOTE_MAGIC, (int32_t)getpid(), (uint32_t)n};
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int) * WFH_ZYGOTE_MAX_FDS)];
    } ctl;
    memset(&ctl, 0, sizeof ctl);
    struct iovec iov = {&msg, sizeof msg};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
                        .msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)n)};
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)n);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)n);
    ssize_t w;
    while ((w = sendmsg(zyg.sock, &mh, MSG_NOSIGNAL)) < 0 && errno == EINTR) {
    }
    if (w != (ssize_t)sizeof msg) {
        zygote_stop();
        return 1;
    }

    int32_t reply = 0;
    ssize_t r = -1;
    for (long waited = 0;;) {
        struct pollfd p = {zyg.sock, POLLIN, 0};
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        int pr = poll(&p, 1, (int)(ZYG_REPLY_MS - waited));
        clock_gettime(CLOCK_MONOTONIC, &t1);
        waited += (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
        if (pr < 0 && errno == EINTR && waited < ZYG_REPLY_MS)
            continue;
        if (pr <= 0) {
            /* Too slow. After the shutdown a child the zygote made can no longer
             * answer, and one that cannot answer exits without running anything; one
             * that answered before it is taken. */
            shutdown(zyg.sock, SHUT_RDWR);
            r = recv(zyg.sock, &reply, sizeof reply, MSG_DONTWAIT);
            zygote_stop();
            break;
        }
        r = recv(zyg.sock, &reply, sizeof reply, MSG_DONTWAIT);
        if (r < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (r != (ssize_t)sizeof reply) /* EOF: it died, and no child of it is left to answer */
            zygote_stop();
        break;
    }
    if (r != (ssize_t)sizeof reply || reply <= 0)
        return 1; /* reply < 0: it could not fork (-errno); it stays for the next one */
    *out = (pid_t)reply;
    /* The child does the same; whichever comes first, a kill(-pid) from now on reaches
     * it (EACCES/ESRCH here only mean it is already done). */
    (void)setpgid(*out, *out);
    return 0;
}

/* Start the runner with @p fds as its descriptors 0..@p n-1: forked by the zygote when it
 * can, else posix_spawn()ed. Returns 0 and *pid, or a negative code. */
static int runner_start(const char *runner, const int *fds, int n, pid_t *pid)
{
    int zr = zygote_fork(runner, fds, n, pid);
    if (zr <= 0)
        return zr;
    int err = 0;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    int fa_ok = 0, attr_ok = 0;
    if (posix_spawn_file_actions_init(&fa) != 0 || (fa_ok = 1, posix_spawnattr_init(&attr) != 0)) {
        err = wfh_error_set(WFH_ENOMEM, "attempt: out of memory");
        goto done;
    }
    attr_ok = 1;
    /* dup2 clears FD_CLOEXEC on the target, so only these reach the runner. */
    for (int i = 0; i < n; i++)
        posix_spawn_file_actions_adddup2(&fa, fds[i], i);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    /* Belt and braces against a descriptor some library opened without O_CLOEXEC. */
    posix_spawn_file_actions_addclosefrom_np(&fa, n);
#endif
    runner_spawnattr(&attr);
    char parent[24];
    snprintf(parent, sizeof parent, "%ld", (long)getpid());
    char *argv[] = {(char *)runner, "--parent-pid", parent, NULL};
    int rc = posix_spawn(pid, runner, &fa, &attr, argv, environ);
    if (rc != 0)
        err = wfh_error_set(WFH_EIO, "cannot start the step runner %s: %s", runner, strerror(rc));
done:
    if (fa_ok)
        posix_spawn_file_actions_destroy(&fa);
    if (attr_ok)
        posix_spawnattr_destroy(&attr);
    return err;
}

/* ---- warm runners ----------------------------------------------------------------------
 *
 * A runner started before its attempt, for exactly the confinement that attempt gets
 * (the wire protocol in core/attempt.h): it has confined itself and waits for the go,
 * before any plugin code runs. It is still one fresh process for one attempt; what it
 * saves is the runner's start and confinement (~1 ms under process, ~2 ms under strict)
 * on the path of a chain, where the other core was idle. The pool is keyed by the exact
 * text of what the runner was started with, plus the runner, the plugin's identity and
 * the environment (a runner under profile none inherits it), so no attempt runs under
 * another's grant or limits. At most one idle runner per key, WARM_MAX in all; the scheduler
 * releases them at the end of a run (wfh_attempt_warm_release), and so does exit. */

#define WARM_MAX 4
/* How long dropping a warm runner waits for it to exit on its own (the go socket's EOF)
 * before it is SIGKILLed. */
#define WARM_DROP_MS 200

typedef struct warm_runner {
    char *key;      /* owned */
    pid_t pid;
    int pidfd;      /* owned: liveness without racing the scheduler's waitpid(-1) */
    int go;         /* owned: the host's end of the go socket */
    int out_fd;     /* owned: read ends of its channel and stderr */
    int err_fd;
} warm_runner;

static struct {
    warm_runner w[WARM_MAX]; /* idle ones, oldest first */
    size_t n;
    pid_t owner;             /* getpid() of the host that started them */
    int registered;          /* the atexit handler is in */
} warm = {.n = 0};

static void warm_close(warm_runner *w)
{
    int *fds[] = {&w->pidfd, &w->go, &w->out_fd, &w->err_fd};
    for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
        if (*fds[i] >= 0) {
            close(*fds[i]);
            *fds[i] = -1;
        }
    free(w->key);
    w->key = NULL;
}

/* Alive and not reaped: its pidfd is readable once it has exited (reaped or not). */
static int warm_alive(const warm_runner *w)
{
    struct pollfd p = {w->pidfd, POLLIN, 0};
    return poll(&p, 1, 0) == 0;
}

/* Tell @p n idle runners to go away (EOF on the go socket: they exit without running
 * anything, and a supervisor removes its cgroup), then reap each through its pidfd
 * (a wait by pid could take an attempt's status if the scheduler's waitpid(-1) reaped
 * the runner first and its pid was reused); one that does not exit in time is killed. */
static void warm_drop(warm_runner *w, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (w[i].go >= 0) {
            close(w[i].go);
            w[i].go = -1;
        }
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (size_t i = 0; i < n; i++) {
        for (;;) {
            clock_gettime(CLOCK_MONOTONIC, &t);
            long left = WARM_DROP_MS - ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000);
            struct pollfd p = {w[i].pidfd, POLLIN, 0};
            int r = poll(&p, 1, left > 0 ? (int)left : 0);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0) {
                /* It has not exited, so it is not reaped either: its pid, which is also
                 * its group's id, is still its own. */
                kill(-w[i].pid, SIGKILL);
                (void)syscall(SYS_pidfd_send_signal, w[i].pidfd, SIGKILL, NULL, 0);
            }
            break;
        }
        siginfo_t si;
        while (waitid((idtype_t)3 /* P_PIDFD */, (id_t)w[i].pidfd, &si, WEXITED) < 0 && errno == EINTR) {
        }
        warm_close(&w[i]);
    }
}

/* A fork of the host: the runners are its parent's; drop the descriptors only. */
static void warm_forget_if_forked(void)
{
    if (warm.n && warm.owner != getpid()) {
        for (size_t i = 0; i < warm.n; i++)
            warm_close(&warm.w[i]);
        warm.n = 0;
    }
}

void wfh_attempt_warm_release(void)
{
    warm_forget_if_forked();
    warm_drop(warm.w, warm.n);
    warm.n = 0;
}

int wfh_attempt_warm_count(void)
{
    warm_forget_if_forked();
    return (int)warm.n;
}

static void warm_atexit(void)
{
    wfh_attempt_warm_release();
}

/* Take the idle runner for @p key, if there is one, and give it its go (@p part, the
 * attempt's members as JSON text): 1 and @p a filled, or 0 (then none was usable; a
 * dead or refusing one has been dropped). */
static int warm_take(const char *key, const char *part, wfh_attempt *a)
{
    warm_forget_if_forked();
    size_t i = 0;
    while (i < warm.n && strcmp(warm.w[i].key, key) != 0)
        i++;
    if (i == warm.n)
        return 0;
    warm_runner w = warm.w[i];
    memmove(&warm.w[i], &warm.w[i + 1], (warm.n - i - 1) * sizeof warm.w[0]);
    warm.n--;
    /* The host is single-threaded: between this check and the go only the runner itself
     * can die, and then the attempt fails as any runner's death does. */
    int ok = warm_alive(&w);
    int fd = -1;
    if (ok && sealed_memfd("wfh-go", part, &fd) < 0)
        ok = 0;
    if (ok) {
        union {
            struct cmsghdr h;
            char buf[CMSG_SPACE(sizeof(int))];
        } ctl;
        memset(&ctl, 0, sizeof ctl);
        char g = 'g';
        struct iovec iov = {&g, 1};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
                            .msg_controllen = sizeof ctl.buf};
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof fd);
        ssize_t r;
        while ((r = sendmsg(w.go, &mh, MSG_NOSIGNAL | MSG_DONTWAIT)) < 0 && errno == EINTR) {
        }
        ok = r == 1;
        close(fd);
    }
    if (!ok) {
        warm_drop(&w, 1);
        return 0;
    }
    a->pid = w.pid;
    a->out_fd = w.out_fd;
    a->err_fd = w.err_fd;
    a->warm = 1;
    w.out_fd = w.err_fd = -1;
    warm_close(&w); /* the queued go stays readable after our end is closed */
    return 1;
}

/* Start a warm runner for @p key with @p part (the runner's stdin, go_fd included) and
 * @p plugin_fd (the verified plugin, or -1), unless one is idle for it already. Failing
 * costs nothing but the head start. */
static void warm_start(const char *runner, const char *key, const char *part, int plugin_fd)
{
    warm_forget_if_forked();
    for (size_t i = 0; i < warm.n; i++)
        if (!strcmp(warm.w[i].key, key))
            return;
    if (warm.n == WARM_MAX) {
        warm_drop(&warm.w[0], 1);
        memmove(&warm.w[0], &warm.w[1], (warm.n - 1) * sizeof warm.w[0]);
        warm.n--;
    }
    warm_runner w = {NULL, -1, -1, -1, -1, -1};
    int in_fd = -1, sv[2] = {-1, -1}, outp[2] = {-1, -1}, errp[2] = {-1, -1};
    if (sealed_memfd("wfh-request", part, &in_fd) < 0 ||
        socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0 || pipe2(outp, O_CLOEXEC) < 0 ||
        pipe2(errp, O_CLOEXEC) < 0 || !(w.key = strdup(key)))
        goto done;
    int fds[WFH_ZYGOTE_MAX_FDS] = {in_fd, outp[1], errp[1], plugin_fd >= 0 ? plugin_fd : sv[1], sv[1]};
    if (runner_start(runner, fds, plugin_fd >= 0 ? 5 : 4, &w.pid) < 0) {
        w.pid = -1;
        goto done;
    }
    w.pidfd = (int)syscall(SYS_pidfd_open, w.pid, 0);
    if (w.pidfd < 0) {
        /* Without a pidfd it cannot be checked safely later: not kept. */
        kill(-w.pid, SIGKILL);
        (void)waitpid(w.pid, NULL, 0);
        goto done;
    }
    w.go = sv[0];
    w.out_fd = outp[0];
    w.err_fd = errp[0];
    sv[0] = outp[0] = errp[0] = -1;
    fcntl(w.out_fd, F_SETFL, fcntl(w.out_fd, F_GETFL) | O_NONBLOCK);
    fcntl(w.err_fd, F_SETFL, fcntl(w.err_fd, F_GETFL) | O_NONBLOCK);
    warm.owner = getpid();
    warm.w[warm.n++] = w;
    w.key = NULL;
    if (!warm.registered)
        warm.registered = atexit(warm_atexit) == 0;
done:
    free(w.key);
    int *fds_left[] = {&in_fd, &sv[0], &sv[1], &outp[0], &outp[1], &errp[0], &errp[1]};
    for (size_t i = 0; i < sizeof fds_left / sizeof fds_left[0]; i++)
        if (*fds_left[i] >= 0)
            close(*fds_left[i]);
}

/* The warm runner's part of @p spec's request (JSON text, keys sorted) and the pool key:
 * runner, plugin identity, environment, then that text. Both owned by the caller. */
static int warm_part(const wfh_attempt_spec *spec, const char *plugin_path, char **part, char **key)
{
    json_t *req = NULL;
    int err = request_confine_part(spec, plugin_path, spec->plugin_blake2b256 ? 4 : 3, &req);
    if (err < 0)
        return err;
    *part = json_dumps(req, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(req);
    *key = NULL;
    if (*part) {
        size_t len = strlen(spec->runner_path) + strlen(spec->plugin_path) + strlen(*part) + 256;
        if ((*key = malloc(len)))
            snprintf(*key, len, "%s\n%s\n%s\n%s\n%llu\n%016llx\n%s", spec->runner_path, spec->plugin_path,
                     spec->plugin_blake2b256 ? spec->plugin_blake2b256 : "",
                     spec->plugin_sha256 ? spec->plugin_sha256 : "", spec->plugin_size,
                     (unsigned long long)env_key(), *part);
    }
    if (!*part || !*key) {
        free(*part);
        *part = NULL;
        return wfh_error_set(WFH_ENOMEM, "attempt: out of memory");
    }
    return 0;
}

int wfh_attempt_start(const wfh_attempt_spec *spec, const wfh_attempt_hooks *hooks, wfh_attempt **out)
{
    int err = 0;
    int in_fd = -1, outp[2] = {-1, -1}, errp[2] = {-1, -1};
    int plugin_fd = -1; /* owned: the verified plugin bytes (registry plugins) */
    wfh_attempt *a = NULL; /* owned until handed out */
    char *wpart = NULL, *wkey = NULL; /* owned: warm runners' request part and pool key */
    json_t *go = NULL; /* owned: a warm runner's go */
    char *go_text = NULL; /* owned */
    int use_warm = 0;
    *out = NULL;

    if (!spec || !spec->runner_path || !spec->plugin_path || !spec->step_type)
        return wfh_error_set(WFH_EINVAL, "attempt: runner, plugin and step type are required");
    if ((err = warm_knob(&use_warm)) < 0)
        return err;
    a = calloc(1, sizeof *a);
    if (!a)
        return wfh_error_set(WFH_ENOMEM, "attempt: out of memory");
    a->pid = -1;
    a->out_fd = a->err_fd = -1;
    if (hooks)
        a->hooks = *hooks;
    a->plugin = plugin_label(spec->plugin_path);
    a->outputs = json_object();
    if (!a->plugin || !a->outputs) {
        err = wfh_error_set(WFH_ENOMEM, "attempt: out of memory");
        goto done;
    }
    /* A registry plugin: the runner loads the verified copy (fd 3), not the path. */
    const char *req_plugin = spec->plugin_blake2b256 ? "/proc/self/fd/3" : spec->plugin_path;
    if (spec->plugin_blake2b256) {
        a->expect_name = spec->plugin_name ? strdup(spec->plugin_name) : NULL;
        a->expect_version = spec->plugin_version ? strdup(spec->plugin_version) : NULL;
    }
    /* Every attempt checks the blob (cheap while the file is unchanged), a warm runner's
     * too: one that holds bytes verified earlier is not used once the file has been
     * tampered with; the attempt is refused as before. */
    if (spec->plugin_blake2b256) {
        char label[160];
        snprintf(label, sizeof label, "%s@%s", spec->plugin_name ? spec->plugin_name : "?",
                 spec->plugin_version ? spec->plugin_version : "?");
        if ((err = wfh_registry_blob_memfd(spec->plugin_path, spec->plugin_blake2b256,
                                           spec->plugin_sha256, spec->plugin_size, label,
                                           &plugin_fd)) < 0)
            goto done;
    }
    warm_forget_if_forked();
    /* Start one for the next attempt only below one attempt per CPU (cpus()), unless
     * "always". Nothing to take and nothing to start: no warm request, no key (a fan-out
     * as wide as the machine pays nothing for the pool). */
    int warm_next = use_warm && spec->warm_hint && (use_warm == 2 || (spec->busy ? spec->busy : 1) < cpus());
    if (!warm_next && warm.n == 0)
        use_warm = 0;
    if (use_warm) {
        if ((err = warm_part(spec, req_plugin, &wpart, &wkey)) < 0 ||
            (err = request_attempt_part(spec, 1, &go)) < 0)
            goto done;
        if (!(go_text = json_dumps(go, JSON_COMPACT))) {
            err = wfh_error_set(WFH_ENOMEM, "attempt: out of memory");
            goto done;
        }
        if (warm_take(wkey, go_text, a))
            goto started;
    }
    if ((err = request_fd(spec, req_plugin, &in_fd)) < 0)
        goto done;
    if (pipe2(outp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
        err = wfh_error_set(WFH_EIO, "step '%s': pipe: %s", spec->step_id ? spec->step_id : "?", strerror(errno));
        goto done;
    }
    int fds[WFH_ZYGOTE_MAX_FDS] = {in_fd, outp[1], errp[1], plugin_fd};
    if ((err = runner_start(spec->runner_path, fds, plugin_fd >= 0 ? 4 : 3, &a->pid)) < 0) {
        a->pid = -1;
        goto done;
    }
    a->out_fd = outp[0];
    a->err_fd = errp[0];
    outp[0] = errp[0] = -1;
started:
    fcntl(a->out_fd, F_SETFL, fcntl(a->out_fd, F_GETFL) | O_NONBLOCK);
    fcntl(a->err_fd, F_SETFL, fcntl(a->err_fd, F_GETFL) | O_NONBLOCK);
    *out = a;
    a = NULL;
    /* The next attempt like this one gets its runner started now, while this one runs,
     * with the same verified copy of the plugin (never the path). */
    if (warm_next)
        warm_start(spec->runner_path, wkey, wpart, plugin_fd);
done:
    for (int i = 0; i < 2; i++) {
        if (outp[i] >= 0)
            close(outp[i]);
        if (errp[i] >= 0)
            close(errp[i]);
    }
    if (in_fd >= 0)
        close(in_fd);
    if (plugin_fd >= 0)
        close(plugin_fd);
    free(wpart);
    free(wkey);
    free(go_text);
    json_decref(go);
    wfh_attempt_free(a);
    return err;
}

int wfh_attempt_was_warm(const wfh_attempt *a)
{
    return a ? a->warm : 0;
}

pid_t wfh_attempt_pid(const wfh_attempt *a)
{
    return a ? a->pid : -1;
}

int wfh_attempt_fds(const wfh_attempt *a, int fds[2])
{
    fds[0] = a ? a->out_fd : -1;
    fds[1] = a ? a->err_fd : -1;
    return 2;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

void wfh_attempt_kill(wfh_attempt *a, int status, const char *why)
{
    if (!a || a->pid <= 0 || a->reaped)
        return;
    if (!a->killed) {
        a->killed = 1;
        a->kill_status = status;
        a->kill_why = dupstr(why ? why : "killed");
    }
    /* SIGTERM first: the runner is the one that can find descendants that left the
     * group (setsid, double fork) and kill them. Its group is SIGKILLed once it is
     * done, or after a short grace if it does not react (a plugin stuck in the kernel
     * or one that blocked SIGTERM). WNOWAIT leaves the zombie for the caller to reap. */
    kill(a->pid, SIGTERM);
    for (int waited = 0; waited < KILL_GRACE_MS; waited++) {
        siginfo_t si;
        memset(&si, 0, sizeof si);
        if (waitid(P_PID, (id_t)a->pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0 || si.si_pid == a->pid)
            break;
        sleep_ms(1);
    }
    kill(-a->pid, SIGKILL);
}

static const char *signal_label(int sig, char *buf, size_t len)
{
    const char *abbrev = sigabbrev_np(sig);
    const char *desc = strsignal(sig);
    if (abbrev)
        snprintf(buf, len, "SIG%s (%s)", abbrev, desc ? desc : "?");
    else
        snprintf(buf, len, "signal %d", sig);
    return buf;
}

void wfh_attempt_finish(wfh_attempt *a, int wait_status, wfh_attempt_result *res)
{
    memset(res, 0, sizeof *res);
    res->exit_code = -1;
    if (!a) {
        res->status = WFH_STEP_FAILED;
        res->error = strdup("internal error: no attempt");
        res->outputs = json_object();
        return;
    }
    a->reaped = 1;
    /* Whatever is left of its group (the runner normally killed it already). The pid is
     * not reused as a group id while any member lives, so this cannot hit a stranger's
     * group unless the group is already empty, in which case it fails with ESRCH. */
    kill(-a->pid, SIGKILL);

    /* Drain: the runner is gone, but the last lines may still sit in the pipes. */
    for (int waited = 0; (a->out_fd >= 0 || a->err_fd >= 0) && waited < DRAIN_MS;) {
        struct pollfd p[2] = {{a->out_fd, POLLIN, 0}, {a->err_fd, POLLIN, 0}};
        int n = poll(p, 2, 10);
        if (n < 0 && errno != EINTR)
            break;
        if (n <= 0) {
            waited += 10;
            continue;
        }
        for (int i = 0; i < 2; i++)
            if (p[i].fd >= 0 && p[i].revents)
                wfh_attempt_read(a, p[i].fd);
    }
    /* Escaped processes holding the pipes open must not keep the attempt alive. */
    if (a->out_fd >= 0) {
        close(a->out_fd);
        a->out_fd = -1;
    }
    if (a->err_fd >= 0) {
        close(a->err_fd);
        a->err_fd = -1;
    }

    char sig[96], buf[1024];
    const char *tail = a->last_stderr[0] ? a->last_stderr : NULL;
    if (WIFSIGNALED(wait_status))
        res->term_signal = WTERMSIG(wait_status);
    if (WIFEXITED(wait_status))
        res->exit_code = WEXITSTATUS(wait_status);

    if (a->killed) {
        res->status = a->kill_status;
        res->error = dupstr(a->kill_why);
    } else if (a->protocol_error) {
        res->status = WFH_STEP_FAILED;
        res->error = dupstr(a->protocol_error);
    } else if (res->term_signal) {
        snprintf(buf, sizeof buf, "plugin '%s' crashed: %s%s%s", a->plugin,
                 signal_label(res->term_signal, sig, sizeof sig), tail ? "; last stderr line: " : "",
                 tail ? tail : "");
        res->status = WFH_STEP_FAILED;
        res->error = strdup(buf);
    } else if (!a->have_result) {
        snprintf(buf, sizeof buf, "plugin '%s': the step runner exited with status %d without a result%s%s",
                 a->plugin, res->exit_code, tail ? "; last stderr line: " : "", tail ? tail : "");
        res->status = WFH_STEP_FAILED;
        res->error = strdup(buf);
    } else {
        res->status = a->status;
        res->error = a->status == WFH_STEP_OK ? NULL : dupstr(a->error ? a->error : "failed without a message");
        res->retry_after_ms = a->retry_after_ms;
    }
    res->refused = a->refused;
    res->outputs = a->outputs;
    a->outputs = NULL;
    /* Kept even when the attempt failed: what confinement it ran under matters most then.
     * Under strict and process the supervisor's final word is the only report trusted
     * (the result line is written inside the sandbox, where the plugin could forge it);
     * without a supervisor (profile none) nothing is promised and the runner's report
     * is kept only if it says so. */
    if (a->sup_sandbox && a->sup_last) {
        res->sandbox = a->sup_sandbox;
        a->sup_sandbox = NULL;
    } else if (a->sandbox &&
               !strcmp(json_string_value(json_object_get(a->sandbox, "profile")) ?
                       json_string_value(json_object_get(a->sandbox, "profile")) : "", "none")) {
        res->sandbox = a->sandbox;
        a->sandbox = NULL;
    }
    if (!res->outputs)
        res->outputs = json_object();
}

void wfh_attempt_free(wfh_attempt *a)
{
    if (!a)
        return;
    if (a->out_fd >= 0)
        close(a->out_fd);
    if (a->err_fd >= 0)
        close(a->err_fd);
    free(a->out.buf);
    free(a->err.buf);
    free(a->plugin);
    json_decref(a->outputs);
    json_decref(a->sandbox);
    json_decref(a->sup_sandbox);
    free(a->error);
    free(a->protocol_error);
    free(a->kill_why);
    free(a->expect_name);
    free(a->expect_version);
    free(a);
}

void wfh_attempt_result_clear(wfh_attempt_result *r)
{
    if (!r)
        return;
    free(r->error);
    json_decref(r->outputs);
    json_decref(r->sandbox);
    memset(r, 0, sizeof *r);
    r->exit_code = -1;
}
