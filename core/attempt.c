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
 * failed result that says what happened. The scheduler owns the event loop and
 * waitpid(); this file never blocks except for the short grace in wfh_attempt_kill and
 * the final drain.
 */
#include "attempt.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
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

/* The request as a sealed memfd positioned at 0: the runner's stdin. */
static int request_fd(const wfh_attempt_spec *spec, int *out)
{
    int err = 0;
    char *text = NULL;
    int fd = -1;
    json_t *req = json_pack("{s:s, s:s, s:O?, s:O?, s:s, s:s, s:I, s:s, s:s}", "plugin", spec->plugin_path, "type",
                            spec->step_type, "inputs", spec->inputs, "env", spec->env, "run_id",
                            spec->run_id ? spec->run_id : "", "step_id", spec->step_id ? spec->step_id : "",
                            "attempt", (json_int_t)(spec->attempt ? spec->attempt : 1), "idempotency_key",
                            spec->idempotency_key ? spec->idempotency_key : "", "workspace",
                            spec->workspace ? spec->workspace : "");
    if (!req) {
        err = wfh_error_set(WFH_EINVAL, "step '%s': cannot build the runner request (inputs/env not JSON objects?)",
                            spec->step_id ? spec->step_id : "?");
        goto done;
    }
    /* A registry plugin must say it is what the signed index recorded (the runner checks
     * this after dlopen, before init). */
    if (spec->plugin_blake2b256 && spec->plugin_name && spec->plugin_version &&
        json_object_set_new(req, "expect", json_pack("{s:s, s:s}", "name", spec->plugin_name, "version",
                                                     spec->plugin_version)) != 0) {
        err = wfh_error_set(WFH_ENOMEM, "step '%s': out of memory", spec->step_id ? spec->step_id : "?");
        goto done;
    }
    /* The runner confines itself with this before it loads the plugin. */
    if (spec->sandbox && json_object_set(req, "sandbox", spec->sandbox) != 0) {
        err = wfh_error_set(WFH_ENOMEM, "step '%s': out of memory", spec->step_id ? spec->step_id : "?");
        goto done;
    }
    text = json_dumps(req, JSON_COMPACT);
    if (!text) {
        err = wfh_error_set(WFH_ENOMEM, "step '%s': out of memory", spec->step_id ? spec->step_id : "?");
        goto done;
    }
    fd = memfd_create("wfh-request", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) {
        err = wfh_error_set(WFH_EIO, "memfd_create: %s", strerror(errno));
        goto done;
    }
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
    free(text);
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

/* WFH_RUNNER_ZYGOTE: unset, "", "1" or "on" use the zygote; "0" or "off" do not. */
static int zygote_wanted(int *wanted)
{
    const char *v = getenv("WFH_RUNNER_ZYGOTE");
    if (!v || !*v || !strcmp(v, "1") || !strcmp(v, "on")) {
        *wanted = 1;
        return 0;
    }
    if (!strcmp(v, "0") || !strcmp(v, "off")) {
        *wanted = 0;
        return 0;
    }
    return wfh_error_set(WFH_EINVAL, "WFH_RUNNER_ZYGOTE must be 0, off, 1 or on, not '%.40s'", v);
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
    int err = zygote_wanted(&wanted);
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

int wfh_attempt_start(const wfh_attempt_spec *spec, const wfh_attempt_hooks *hooks, wfh_attempt **out)
{
    int err = 0;
    int in_fd = -1, outp[2] = {-1, -1}, errp[2] = {-1, -1};
    int plugin_fd = -1; /* owned: the verified plugin bytes (registry plugins) */
    wfh_attempt *a = NULL; /* owned until handed out */
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    int fa_ok = 0, attr_ok = 0;
    *out = NULL;

    if (!spec || !spec->runner_path || !spec->plugin_path || !spec->step_type)
        return wfh_error_set(WFH_EINVAL, "attempt: runner, plugin and step type are required");
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
    if (spec->plugin_blake2b256) {
        char label[160];
        snprintf(label, sizeof label, "%s@%s", spec->plugin_name ? spec->plugin_name : "?",
                 spec->plugin_version ? spec->plugin_version : "?");
        if ((err = wfh_registry_blob_memfd(spec->plugin_path, spec->plugin_blake2b256,
                                           spec->plugin_sha256, spec->plugin_size, label,
                                           &plugin_fd)) < 0)
            goto done;
        a->expect_name = spec->plugin_name ? strdup(spec->plugin_name) : NULL;
        a->expect_version = spec->plugin_version ? strdup(spec->plugin_version) : NULL;
        wfh_attempt_spec verified = *spec;
        verified.plugin_path = "/proc/self/fd/3";
        err = request_fd(&verified, &in_fd);
    } else {
        err = request_fd(spec, &in_fd);
    }
    if (err < 0)
        goto done;
    if (pipe2(outp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
        err = wfh_error_set(WFH_EIO, "step '%s': pipe: %s", spec->step_id ? spec->step_id : "?", strerror(errno));
        goto done;
    }
    int zfds[WFH_ZYGOTE_MAX_FDS] = {in_fd, outp[1], errp[1], plugin_fd};
    int zr = zygote_fork(spec->runner_path, zfds, plugin_fd >= 0 ? 4 : 3, &a->pid);
    if (zr < 0) {
        err = zr;
        goto done;
    }
    if (zr == 0)
        goto started;
    if (posix_spawn_file_actions_init(&fa) != 0 || (fa_ok = 1, posix_spawnattr_init(&attr) != 0)) {
        err = wfh_error_set(WFH_ENOMEM, "attempt: out of memory");
        goto done;
    }
    attr_ok = 1;
    /* dup2 clears FD_CLOEXEC on the target, so only these three reach the runner. */
    posix_spawn_file_actions_adddup2(&fa, in_fd, 0);
    posix_spawn_file_actions_adddup2(&fa, outp[1], 1);
    posix_spawn_file_actions_adddup2(&fa, errp[1], 2);
    if (plugin_fd >= 0)
        posix_spawn_file_actions_adddup2(&fa, plugin_fd, 3);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    /* Belt and braces against a descriptor some library opened without O_CLOEXEC. */
    posix_spawn_file_actions_addclosefrom_np(&fa, plugin_fd >= 0 ? 4 : 3);
#endif
    runner_spawnattr(&attr);

    char parent[24];
    snprintf(parent, sizeof parent, "%ld", (long)getpid());
    char *argv[] = {(char *)spec->runner_path, "--parent-pid", parent, NULL};
    int rc = posix_spawn(&a->pid, spec->runner_path, &fa, &attr, argv, environ);
    if (rc != 0) {
        a->pid = -1;
        err = wfh_error_set(WFH_EIO, "cannot start the step runner %s: %s", spec->runner_path, strerror(rc));
        goto done;
    }
started:
    a->out_fd = outp[0];
    a->err_fd = errp[0];
    outp[0] = errp[0] = -1;
    fcntl(a->out_fd, F_SETFL, fcntl(a->out_fd, F_GETFL) | O_NONBLOCK);
    fcntl(a->err_fd, F_SETFL, fcntl(a->err_fd, F_GETFL) | O_NONBLOCK);
    *out = a;
    a = NULL;
done:
    if (fa_ok)
        posix_spawn_file_actions_destroy(&fa);
    if (attr_ok)
        posix_spawnattr_destroy(&attr);
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
    wfh_attempt_free(a);
    return err;
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
