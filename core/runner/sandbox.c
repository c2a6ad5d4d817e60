/*
 * core/runner/sandbox.c - wfh_sandbox_enter(): the runner confines itself before it
 * loads plugin code, and stays outside as a supervisor that can always kill the tree.
 *
 *   runner (supervisor, host's pid ns) --fork--> pid 1 (reaper, strict only)
 *                                                  --fork--> step (returns to runner)
 * The supervisor relays the step's stdout (the result channel) and stderr within their
 * caps, enforces the wall time, watches for the host's death (parent changes), and on
 * any end writes cgroup.kill, so setsid and double-fork escapees die with the step.
 * In strict, pid 1 is a trusted reaper: abort() and SIGXCPU behave normally in the step
 * (pid 1 ignores default-action signals), and pid 1's death tears the namespace down.
 * When the supervisor ends the step for a reason of its own (time, output, memory), it
 * writes the result line itself, with the precise reason and the "sandbox" report.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/capability.h>

#include "../error.h"
#include "runner.h"
#include "sandbox.h"

#ifndef __NR_pidfd_open
#define __NR_pidfd_open 434
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef __NR_close_range
#define __NR_close_range 436
#endif

static char sb_msg[512];

int wfh_sandbox_fail(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sb_msg, sizeof sb_msg, fmt, ap);
    va_end(ap);
    return code;
}

const char *wfh_sandbox_error(void)
{
    return sb_msg;
}

/* ---- the spec ---------------------------------------------------------------- */

static void strv_free(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

void wfh_sandbox_spec_free(wfh_sandbox_spec *s)
{
    if (!s)
        return;
    strv_free(s->read);
    strv_free(s->write);
    strv_free(s->run);
    strv_free(s->env);
    free(s->ports);
    free(s->workspace);
    free(s->plugin);
    free(s);
}

/* An array of absolute paths into a NULL-terminated vector (owned by *out). */
static int parse_paths(const json_t *j, const char *key, char ***out)
{
    const json_t *a = json_object_get(j, key);
    *out = calloc(json_is_array(a) ? json_array_size(a) + 1 : 1, sizeof **out);
    if (!*out)
        return wfh_sandbox_fail(WFH_ENOMEM, "sandbox: out of memory");
    if (!a)
        return 0;
    if (!json_is_array(a))
        return wfh_sandbox_fail(WFH_EINVAL, "sandbox: \"%s\" must be an array of paths", key);
    for (size_t i = 0; i < json_array_size(a); i++) {
        const char *p = json_string_value(json_array_get(a, i));
        if (!p || p[0] != '/')
            return wfh_sandbox_fail(WFH_EINVAL, "sandbox: \"%s\"[%zu] is not an absolute path",
                                    key, i);
        if (!((*out)[i] = strdup(p)))
            return wfh_sandbox_fail(WFH_ENOMEM, "sandbox: out of memory");
    }
    return 0;
}

static int parse_limit(const json_t *lim, const char *key, uint64_t def, uint64_t *out)
{
    const json_t *v = json_object_get(lim, key);
    *out = def;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) <= 0)
        return wfh_sandbox_fail(WFH_EINVAL, "sandbox: limit \"%s\" must be a positive integer",
                                key);
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

int wfh_sandbox_spec_parse(const json_t *j, const char *plugin_path, wfh_sandbox_spec **out)
{
    int err = 0;
    wfh_sandbox_spec *s = calloc(1, sizeof *s); /* owned until handed to *out */
    *out = NULL;
    if (!s)
        return wfh_sandbox_fail(WFH_ENOMEM, "sandbox: out of memory");
    if (j && !json_is_object(j)) {
        err = wfh_sandbox_fail(WFH_EINVAL, "sandbox: request member must be an object");
        goto done;
    }
    const char *prof = json_string_value(json_object_get(j, "profile"));
    if (!prof || !strcmp(prof, "strict"))
        s->profile = WFH_SANDBOX_STRICT;
    else if (!strcmp(prof, "process"))
        s->profile = WFH_SANDBOX_PROCESS;
    else if (!strcmp(prof, "none"))
        s->profile = WFH_SANDBOX_NONE;
    else {
        err = wfh_sandbox_fail(WFH_EINVAL, "sandbox: unknown profile '%s'", prof);
        goto done;
    }
    if ((err = parse_paths(j, "read", &s->read)) < 0 ||
        (err = parse_paths(j, "write", &s->write)) < 0 ||
        (err = parse_paths(j, "run", &s->run)) < 0)
        goto done;
    const json_t *net = json_object_get(j, "net");
    if (json_is_true(net)) {
        s->net_all = 1;
    } else if (json_is_array(net)) {
        s->ports = calloc(json_array_size(net) + 1, sizeof *s->ports);
        if (!s->ports) {
            err = wfh_sandbox_fail(WFH_ENOMEM, "sandbox: out of memory");
            goto done;
        }
        for (size_t i = 0; i < json_array_size(net); i++) {
            const char *hp = json_string_value(json_array_get(net, i));
            const char *colon = hp ? strrchr(hp, ':') : NULL;
            char *end = NULL;
            long port = colon ? strtol(colon + 1, &end, 10) : -1;
            if (hp && *hp && (!colon || strchr(colon, ']'))) {
                /* A host without a port (Deno: every port of it): Landlock sees ports
                 * only, so the kernel cannot narrow this one; the plugin checks the host
                 * against its grant_json. */
                s->net_all = 1;
                continue;
            }
            if (!colon || !end || *end || port < 1 || port > 65535) {
                err = wfh_sandbox_fail(WFH_EINVAL, "sandbox: net[%zu] is not HOST:PORT", i);
                goto done;
            }
            s->ports[s->n_ports++] = (uint16_t)port;
        }
    } else if (net && !json_is_false(net)) {
        err = wfh_sandbox_fail(WFH_EINVAL, "sandbox: \"net\" must be true, false or a list");
        goto done;
    }
    const json_t *env = json_object_get(j, "env");
    s->env = calloc(json_is_object(env) ? json_object_size(env) + 1 : 1, sizeof *s->env);
    if (!s->env) {
        err = wfh_sandbox_fail(WFH_ENOMEM, "sandbox: out of memory");
        goto done;
    }
    if (json_is_object(env)) {
        const char *k;
        json_t *v;
        size_t n = 0;
        json_object_foreach((json_t *)env, k, v) {
            if (!json_is_string(v) || !*k || strchr(k, '=')) {
                err = wfh_sandbox_fail(WFH_EINVAL, "sandbox: env \"%s\" is not NAME: string", k);
                goto done;
            }
            size_t len = strlen(k) + strlen(json_string_value(v)) + 2;
            if (!(s->env[n] = malloc(len))) {
                err = wfh_sandbox_fail(WFH_ENOMEM, "sandbox: out of memory");
                goto done;
            }
            snprintf(s->env[n++], len, "%s=%s", k, json_string_value(v));
        }
    }
    const char *ws = json_string_value(json_object_get(j, "workspace"));
    if ((ws && !(s->workspace = strdup(ws))) || (plugin_path && !(s->plugin = strdup(plugin_path)))) {
        err = wfh_sandbox_fail(WFH_ENOMEM, "sandbox: out of memory");
        goto done;
    }
    const json_t *lim = json_object_get(j, "limits");
    wfh_sandbox_limits *l = &s->limits;
    if ((err = parse_limit(lim, "memory", WFH_SANDBOX_DEF_MEMORY, &l->memory)) < 0 ||
        (err = parse_limit(lim, "pids", WFH_SANDBOX_DEF_PIDS, &l->pids)) < 0 ||
        (err = parse_limit(lim, "cpu_ms", WFH_SANDBOX_DEF_CPU_MS, &l->cpu_ms)) < 0 ||
        (err = parse_limit(lim, "wall_ms", WFH_SANDBOX_DEF_WALL_MS, &l->wall_ms)) < 0 ||
        (err = parse_limit(lim, "output", WFH_SANDBOX_DEF_OUTPUT, &l->output)) < 0 ||
        (err = parse_limit(lim, "result", WFH_SANDBOX_DEF_RESULT, &l->result)) < 0 ||
        (err = parse_limit(lim, "nofile", WFH_SANDBOX_DEF_NOFILE, &l->nofile)) < 0 ||
        (err = parse_limit(lim, "fsize", WFH_SANDBOX_DEF_FSIZE, &l->fsize)) < 0)
        goto done;
    *out = s;
    s = NULL;
done:
    wfh_sandbox_spec_free(s);
    return err;
}

json_t *wfh_sandbox_report_json(const wfh_sandbox_report *r)
{
    static const char *const names[] = {"strict", "process", "none"};
    json_t *j = json_pack("{s:s, s:b, s:b, s:b, s:b, s:i, s:b, s:b, s:b, s:b, s:b, s:s, s:b}",
                     "profile", names[r->profile], "userns", r->userns, "pidns", r->pidns,
                     "netns", r->netns, "mntns", r->mntns,
                     "landlock_abi", r->landlock_abi, "seccomp", r->seccomp, "no_new_privs",
                     r->nnp, "caps_dropped", r->caps_dropped, "private_tmp", r->tmp_private,
                     "memfd_noexec", r->memfd_noexec, "cgroup", r->cgroup ? r->cgroup : "none",
                     "rlimits", r->rlimits);
    if (j && r->rerooted) /* only where it happened: a chroot */
        json_object_set_new(j, "chroot_rerooted", json_true());
    if (j && r->warm) /* confined before its attempt (core/attempt.h) */
        json_object_set_new(j, "warm", json_true());
    return j;
}

/* ---- the step's side ------------------------------------------------------- */

/* Never above what the runner already has: a lower limit set on wfhost itself (ulimit,
 * a service's LimitFSIZE=) is stricter than the policy's and stays. */
static int set_rlimit(int res, uint64_t soft, uint64_t hard)
{
    struct rlimit cur;
    if (getrlimit(res, &cur) == 0 && cur.rlim_max != RLIM_INFINITY) {
        if (hard > (uint64_t)cur.rlim_max)
            hard = (uint64_t)cur.rlim_max;
        if (soft > hard)
            soft = hard;
    }
    struct rlimit rl = {(rlim_t)soft, (rlim_t)hard};
    return setrlimit(res, &rl);
}

static int drop_caps(void)
{
    /* Capabilities are numbered 0..cap_last_cap without gaps, and the kernel answers
     * EINVAL past the last one: stop there rather than try all 64 numbers. */
    for (int cap = 0; cap < 64; cap++) {
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0)
            continue;
        if (errno == EINVAL && cap > 0)
            break;
        return -1;
    }
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof data);
    return (int)syscall(SYS_capset, &hdr, data);
}

/* The granted variables ("NAME=VALUE" strings) into the environment. */
static void env_apply(char *const *env)
{
    for (size_t i = 0; env && env[i]; i++) {
        char *eq = strchr(env[i], '=');
        char name[256];
        size_t n = (size_t)(eq - env[i]);
        if (n >= sizeof name)
            continue;
        memcpy(name, env[i], n);
        name[n] = '\0';
        setenv(name, eq + 1, 1);
    }
}

/* Everything the step process does to itself, in the order of research §3.3. */
static int confine_step(const wfh_sandbox_spec *spec, wfh_sandbox_report *rep,
                        const wfh_sandbox_cgroup *cg)
{
    const wfh_sandbox_limits *l = &spec->limits;
    uint64_t cpu_s = (l->cpu_ms + 999) / 1000;
    if (set_rlimit(RLIMIT_CORE, 0, 0) != 0 || set_rlimit(RLIMIT_NOFILE, l->nofile, l->nofile) != 0 ||
        set_rlimit(RLIMIT_FSIZE, l->fsize, l->fsize) != 0 ||
        set_rlimit(RLIMIT_CPU, cpu_s, cpu_s + 1) != 0)
        return wfh_sandbox_fail(WFH_EIO, "sandbox: setrlimit: %s", strerror(errno));
    /* Without a memory cgroup the address-space limit is the fallback (sanitizer
     * builds reserve terabytes of shadow, so they rely on the cgroup alone). */
    if (!cg->mem) {
#ifndef WFH_SANDBOX_ASAN
        if (set_rlimit(RLIMIT_AS, l->memory, l->memory) != 0)
            return wfh_sandbox_fail(WFH_EIO, "sandbox: RLIMIT_AS: %s", strerror(errno));
#endif
    }
    if (!cg->pids && geteuid() != 0 && set_rlimit(RLIMIT_NPROC, l->pids, l->pids) != 0)
        return wfh_sandbox_fail(WFH_EIO, "sandbox: RLIMIT_NPROC: %s", strerror(errno));
    rep->rlimits = 1;

    /* Empty environment plus what was granted: the host's variables (and any secret in
     * them) never reach the step. */
    if (clearenv() != 0)
        return wfh_sandbox_fail(WFH_EIO, "sandbox: clearenv failed");
    setenv("PATH", "/usr/local/bin:/usr/bin:/bin", 1);
    setenv("HOME", spec->workspace ? spec->workspace : "/tmp", 1);
    setenv("TMPDIR", "/tmp", 1);
    env_apply(spec->env); /* a warm runner's come with its go (wfh_sandbox_apply_request) */
    if (spec->workspace && chdir(spec->workspace) != 0)
        return wfh_sandbox_fail(WFH_EIO, "sandbox: workspace %s: %s", spec->workspace,
                                strerror(errno));
    if (spec->profile != WFH_SANDBOX_STRICT)
        return 0;

    if (drop_caps() != 0)
        return wfh_sandbox_fail(WFH_EIO, "sandbox: dropping capabilities: %s", strerror(errno));
    rep->caps_dropped = 1;
    /* Fatal, unlike nsjail: without it Landlock and seccomp cannot be trusted. */
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return wfh_sandbox_fail(WFH_ESECURITY, "sandbox: no_new_privs: %s", strerror(errno));
    rep->nnp = 1;
    int err = wfh_sandbox_landlock_apply(spec, rep->landlock_abi);
    if (err < 0)
        return err;
    if ((err = wfh_sandbox_seccomp_apply(spec)) < 0)
        return err;
    rep->seccomp = 1;
    return 0;
}

/* A warm runner's (core/attempt.h): the host's go socket, and in the step the write end
 * of the pipe on which it tells the supervisor that the go came. -1 otherwise. */
static int go_sock = -1;
static int go_note = -1;

/* ---- the supervisor -------------------------------------------------------- */

typedef struct relay {
    int fd;          /* read end from the step, -1 once closed */
    int to;          /* where it goes */
    uint64_t sent, cap;
    char tail[16];   /* last bytes, to spot a result line split across reads */
} relay;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

/* Moves what is available; returns -1 when the cap is passed, 0 otherwise. */
static int relay_pump(relay *r, int *result_seen)
{
    char buf[65536];
    ssize_t n = read(r->fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR)
        return 0;
    if (n < 0 && errno == EAGAIN)
        return 1;
    if (n <= 0) {
        close(r->fd);
        r->fd = -1;
        return 0;
    }
    if (r->sent + (uint64_t)n > r->cap) {
        size_t room = (size_t)(r->cap - r->sent);
        write_all(r->to, buf, room);
        r->sent = r->cap + 1;
        return -1;
    }
    write_all(r->to, buf, (size_t)n);
    r->sent += (uint64_t)n;
    if (result_seen) {
        char probe[sizeof r->tail + sizeof buf];
        size_t tl = strnlen(r->tail, sizeof r->tail);
        memcpy(probe, r->tail, tl);
        memcpy(probe + tl, buf, (size_t)n);
        if (memmem(probe, tl + (size_t)n, "\"t\":\"result\"", 12))
            *result_seen = 1;
        size_t keep = (size_t)n < sizeof r->tail - 1 ? (size_t)n : sizeof r->tail - 1;
        memset(r->tail, 0, sizeof r->tail);
        memcpy(r->tail, buf + n - keep, keep);
    }
    return 0;
}

static void fmt_bytes(char *out, size_t cap, uint64_t b)
{
    if (b >= (1u << 20) && b % (1u << 20) == 0)
        snprintf(out, cap, "%lluM", (unsigned long long)(b >> 20));
    else if (b >= 1024 && b % 1024 == 0)
        snprintf(out, cap, "%lluK", (unsigned long long)(b >> 10));
    else
        snprintf(out, cap, "%llu bytes", (unsigned long long)b);
}

/* The supervisor's last word on the channel: what it applied, after the step's tree is
 * gone, so nothing the step wrote can follow it (core/attempt.c trusts only a final
 * {"t":"sandbox"} line; a report inside the result line could be forged by the plugin). */
/* One protocol line on @p chan, on a line of its own (the step may have left a partial
 * one). Takes @p line (owned; NULL: out of memory, nothing is written). */
static void say_line(int chan, json_t *line)
{
    char *text = line ? json_dumps(line, JSON_COMPACT) : NULL; /* owned */
    if (text) {
        write_all(chan, "\n", 1);
        write_all(chan, text, strlen(text));
        write_all(chan, "\n", 1);
    }
    free(text);
    json_decref(line);
}

static void say_applied(int chan, const wfh_sandbox_report *rep)
{
    say_line(chan, json_pack("{s:s, s:o}", "t", "sandbox", "sandbox", wfh_sandbox_report_json(rep)));
}

/* @p go_fd (or -1): a warm runner's step says on it when its attempt's go came; the
 * wall clock starts then (until then the step has run nothing: no deadline). */
static _Noreturn void supervise(const wfh_sandbox_spec *spec, wfh_sandbox_report *rep,
                                wfh_sandbox_cgroup *cg, pid_t child, int pidfd, int chan,
                                int out_fd, int err_fd, int status_fd, int go_fd)
{
    const wfh_sandbox_limits *l = &spec->limits;
    relay rel[2] = {{out_fd, chan, 0, l->result, {0}},
                    {err_fd, STDERR_FILENO, 0, l->output, {0}}};
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);
    for (int i = 0; i < 2; i++)
        fcntl(rel[i].fd, F_SETFL, O_NONBLOCK);
    /* The step only runs once all of these succeeded, so a line written here may
     * state them. */
    if (spec->profile == WFH_SANDBOX_STRICT) {
        rep->nnp = rep->seccomp = rep->caps_dropped = rep->tmp_private = 1;
        rep->memfd_noexec = access("/proc/sys/vm/memfd_noexec", W_OK) == 0;
    }
    rep->rlimits = 1;
    int sfd = signalfd(-1, &mask, SFD_CLOEXEC);
    pid_t parent = getppid();
    uint64_t deadline = go_fd >= 0 ? UINT64_MAX : now_ms() + l->wall_ms;
    int result_seen = 0, step_status = -1, exited = 0, status_read = status_fd < 0;
    char reason[256] = "";
    int rstatus = 1; /* wfh_step_status for our own result line */
    char b1[32];

    while (!exited || rel[0].fd >= 0 || rel[1].fd >= 0 || !status_read) {
        struct pollfd p[6] = {{rel[0].fd, POLLIN, 0}, {rel[1].fd, POLLIN, 0},
                              {exited ? -1 : pidfd, POLLIN, 0}, {sfd, POLLIN, 0},
                              {status_read ? -1 : status_fd, POLLIN, 0}, {go_fd, POLLIN, 0}};
        uint64_t t = now_ms();
        if (!exited && t >= deadline) {
            snprintf(reason, sizeof reason, "timed out: wall time limit %llu ms exceeded",
                     (unsigned long long)l->wall_ms);
            rstatus = 4;
            break;
        }
        int wait = exited ? 2000 : (int)(deadline - t < 200 ? deadline - t : 200);
        int n = poll(p, 6, wait);
        if (n == 0 && exited)
            break; /* an escapee holds a pipe open: the kill below ends it */
        if (getppid() != parent) {
            snprintf(reason, sizeof reason, "cancelled: the host went away");
            rstatus = 6;
            break;
        }
        if (n < 0)
            continue;
        if (p[5].revents) {
            char g;
            if (read(go_fd, &g, 1) == 1) {
                deadline = now_ms() + l->wall_ms;
                (void)prctl(PR_SET_NAME, "wfhost-runner", 0, 0, 0);
            }
            close(go_fd); /* one byte, or EOF: the step died waiting */
            go_fd = -1;
        }
        if (p[3].revents) {
            /* The host cancelled: it names the reason itself; we only make sure the
             * whole tree is gone before we exit as the runner would. */
            struct signalfd_siginfo si;
            int signo = read(sfd, &si, sizeof si) == sizeof si ? (int)si.ssi_signo : SIGTERM;
            wfh_sandbox_cgroup_kill(cg);
            kill(child, SIGKILL);
            waitpid(child, NULL, 0);
            wfh_sandbox_cgroup_kill(cg);
            wfh_sandbox_cgroup_destroy(cg);
            _exit(128 + signo);
        }
        for (int i = 0; i < 2; i++)
            if (p[i].revents && relay_pump(&rel[i], i == 0 ? &result_seen : NULL) < 0) {
                fmt_bytes(b1, sizeof b1, rel[i].cap);
                snprintf(reason, sizeof reason, "%s limit %s exceeded on %s; step killed",
                         i == 0 ? "result" : "output", b1, i == 0 ? "stdout" : "stderr");
                rstatus = 1;
            }
        if (*reason)
            break;
        if (p[4].revents) {
            if (read(status_fd, &step_status, sizeof step_status) != sizeof step_status)
                step_status = -1;
            status_read = 1;
        }
        if (p[2].revents && !exited) {
            int st = 0;
            if (waitpid(child, &st, 0) == child) {
                exited = 1;
                if (status_fd < 0)
                    step_status = st;
                /* Whatever the step left behind (setsid, double fork) dies now, so
                 * the pipes reach EOF. */
                wfh_sandbox_cgroup_kill(cg);
            }
        }
    }
    wfh_sandbox_cgroup_kill(cg);
    if (!exited) {
        kill(child, SIGKILL);
        int st;
        waitpid(child, &st, 0);
        if (status_fd >= 0 && step_status == -1 &&
            read(status_fd, &step_status, sizeof step_status) != sizeof step_status)
            step_status = -1;
        if (status_fd < 0 && step_status == -1)
            step_status = st;
    }
    for (int i = 0; i < 2; i++)
        while (!*reason && rel[i].fd >= 0 &&
               relay_pump(&rel[i], i == 0 ? &result_seen : NULL) == 0)
            ;
    /* Escapees were re-parented to us (subreaper) and are dead now: reap them, or they
     * would linger as zombies of an init that may never reap. */
    while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
        ;
    /* The counters only name the reason in a result line this supervisor writes, which
     * it does only when the step wrote none (see below). */
    int oom = !result_seen ? wfh_sandbox_cgroup_oom(cg) : 0;
    int pids_hit = !result_seen ? wfh_sandbox_cgroup_pids_hit(cg) : 0;
    wfh_sandbox_cgroup_destroy(cg);

    int sig = step_status != -1 && WIFSIGNALED(step_status) ? WTERMSIG(step_status) : 0;
    if (!*reason && oom) {
        fmt_bytes(b1, sizeof b1, l->memory);
        snprintf(reason, sizeof reason, "memory limit %s exceeded (killed by the OOM killer)", b1);
    } else if (!*reason && sig == SIGXCPU) {
        snprintf(reason, sizeof reason, "CPU time limit %llu ms exceeded",
                 (unsigned long long)l->cpu_ms);
    } else if (!*reason && sig == SIGXFSZ) {
        fmt_bytes(b1, sizeof b1, l->fsize);
        snprintf(reason, sizeof reason, "file size limit %s exceeded", b1);
    } else if (!*reason && sig == SIGSYS) {
        snprintf(reason, sizeof reason, "killed by seccomp (forbidden system call)");
    } else if (!*reason && sig) {
        /* A plain crash: the runner dies of the same signal below, as it would
         * unconfined, and the host names the plugin and the signal. */
    } else if (!*reason && step_status == -1) {
        snprintf(reason, sizeof reason, "step vanished without a status");
    } else if (!*reason && !result_seen) {
        /* exit 0 is not success: only a result line is. */
        snprintf(reason, sizeof reason, "step exited with status %d without a result",
                 WEXITSTATUS(step_status));
    }
    if (*reason && pids_hit) {
        size_t len = strlen(reason);
        snprintf(reason + len, sizeof reason - len, "; process limit %llu was reached",
                 (unsigned long long)l->pids);
    }
    if (*reason && !result_seen) {
        say_line(chan, json_pack("{s:s, s:i, s:s, s:o}", "t", "result", "status", rstatus, "error",
                                 reason, "sandbox", wfh_sandbox_report_json(rep)));
        say_applied(chan, rep);
        /* The result line carries the failure; the exit status says the runner
         * itself did its job. */
        _exit(0);
    }
    say_applied(chan, rep);
    if (sig) {
        signal(sig, SIG_DFL);
        sigprocmask(SIG_UNBLOCK, &mask, NULL);
        struct rlimit rl = {0, 0};
        setrlimit(RLIMIT_CORE, &rl);
        raise(sig);
    }
    _exit(step_status != -1 && WIFEXITED(step_status) ? WEXITSTATUS(step_status) : 1);
}

/* A granted path under /tmp would vanish under the private /tmp: before the tmpfs is
 * mounted, keep an O_PATH fd to it; after, recreate its name in the tmpfs and bind the
 * original back over it (what bubblewrap's --bind does). Landlock grants the step
 * read/write on everything beneath /tmp, bind mounts included, so a path granted only
 * for reading or running (and the plugin itself) is bound read-only: otherwise a read
 * grant under /tmp would be writable. */
typedef struct tmp_keep {
    int fd;
    int ro;
    const char *path; /* borrowed from the spec */
} tmp_keep;

static size_t tmp_collect(char *const *paths, int ro, tmp_keep *keep, size_t n, size_t cap)
{
    for (size_t i = 0; paths && paths[i] && n < cap; i++) {
        if (strncmp(paths[i], "/tmp/", 5) != 0)
            continue;
        int fd = open(paths[i], O_PATH | O_CLOEXEC);
        if (fd >= 0)
            keep[n++] = (tmp_keep){fd, ro, paths[i]};
    }
    return n;
}

static int tmp_beneath(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/* Give the binds Landlock's meaning (rights are the union along the path): ancestors are
 * bound before what lies beneath them, and a read-only path beneath (or equal to) a
 * writable one is not bound on its own, since that would take away the write the
 * writable grant gives it. */
static int tmp_cmp(const void *a, const void *b)
{
    size_t la = strlen(((const tmp_keep *)a)->path), lb = strlen(((const tmp_keep *)b)->path);
    return (la > lb) - (la < lb);
}

static void tmp_order(tmp_keep *keep, size_t n)
{
    qsort(keep, n, sizeof *keep, tmp_cmp);
    for (size_t i = 0; i < n; i++) {
        if (!keep[i].ro)
            continue;
        for (size_t j = 0; j < n; j++)
            if (!keep[j].ro && keep[j].fd >= 0 && tmp_beneath(keep[i].path, keep[j].path)) {
                close(keep[i].fd);
                keep[i].fd = -1;
                break;
            }
    }
}

/* The flags a read-only remount must keep: in a user namespace the kernel refuses to
 * clear nosuid/nodev/noexec/atime flags that the original mount had (they are locked). */
static unsigned long tmp_locked_flags(const char *path)
{
    struct statvfs sv;
    unsigned long f = 0;
    if (statvfs(path, &sv) != 0)
        return 0;
    if (sv.f_flag & ST_NOSUID)
        f |= MS_NOSUID;
    if (sv.f_flag & ST_NODEV)
        f |= MS_NODEV;
    if (sv.f_flag & ST_NOEXEC)
        f |= MS_NOEXEC;
    if (sv.f_flag & ST_NOATIME)
        f |= MS_NOATIME;
    if (sv.f_flag & ST_NODIRATIME)
        f |= MS_NODIRATIME;
    if (sv.f_flag & ST_RELATIME)
        f |= MS_RELATIME;
    return f;
}

static int tmp_rebind(const tmp_keep *k)
{
    struct stat st;
    if (fstat(k->fd, &st) != 0)
        return -1;
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", k->path);
    for (char *p = buf + 5; (p = strchr(p, '/')); p++) {
        *p = '\0';
        mkdir(buf, 0755);
        *p = '/';
    }
    struct stat here;
    if (S_ISDIR(st.st_mode)) {
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return -1;
    } else if (lstat(buf, &here) != 0) {
        /* Only when missing: under an earlier read-only bind, opening an existing file
         * for writing would fail with EROFS. */
        int fd = open(buf, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0)
            return -1;
        close(fd);
    }
    char src[64];
    snprintf(src, sizeof src, "/proc/self/fd/%d", k->fd);
    if (mount(src, buf, NULL, MS_BIND | MS_REC, NULL) != 0)
        return -1;
    if (!k->ro)
        return 0;
    return mount(NULL, buf, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | tmp_locked_flags(buf), NULL);
}

/* Secrets inside directories a step type may legitimately read (the shell reads /etc):
 * Landlock cannot carve them out of a grant, so in the step's mount namespace they are
 * covered by an empty file nobody may open (mode 000; the step has no
 * CAP_DAC_OVERRIDE, so not even uid 0 gets in). */
static const char *const masked[] = {"/etc/shadow", "/etc/shadow-", "/etc/gshadow",
                                     "/etc/gshadow-", "/etc/sudoers", "/etc/ssh/ssh_host_rsa_key",
                                     "/etc/ssh/ssh_host_ecdsa_key", "/etc/ssh/ssh_host_ed25519_key",
                                     "/etc/security/opasswd", NULL};

static int mask_secrets(void)
{
    const char *blank = "/tmp/.wfh-masked";
    int fd = open(blank, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    close(fd);
    int err = 0;
    struct stat st;
    for (size_t i = 0; masked[i] && !err; i++)
        if (lstat(masked[i], &st) == 0 && S_ISREG(st.st_mode))
            err = mount(blank, masked[i], NULL, MS_BIND, NULL);
    unlink(blank);
    return err;
}

/* pid 1 of the step's namespace: reap everything, report the step's status, and exit
 * (which kills whatever is left in the namespace). */
static _Noreturn void reaper(pid_t step, int status_fd)
{
    for (;;) {
        int st;
        pid_t p = waitpid(-1, &st, 0);
        if (p == step) {
            write_all(status_fd, (const char *)&st, sizeof st);
            _exit(0);
        }
        if (p < 0 && errno == ECHILD)
            _exit(1);
    }
}

/* One empty network namespace shared by every no-network step, kept by a bind mount
 * (like `ip netns add`): joining it costs nothing, while creating and tearing down one
 * per step costs 0.4 ms median and several ms at p99 (research §1.8). Sharing is safe
 * only with Landlock ABI 6 (abstract unix sockets scoped to the step); loopback is down
 * and no step holds CAP_NET_ADMIN to change that. Returns an fd or -1 (then the caller
 * unshares a namespace of its own). */
#define EMPTY_NETNS_DIR "/run/wfhost"
#define EMPTY_NETNS EMPTY_NETNS_DIR "/netns-empty"
#define NSFS_MAGIC_ 0x6e736673

static int open_nsfs(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct statfs sf;
    if (fd >= 0 && (fstatfs(fd, &sf) != 0 || sf.f_type != NSFS_MAGIC_)) {
        close(fd);
        fd = -1;
    }
    return fd;
}

static int empty_netns(void)
{
    int fd = open_nsfs(EMPTY_NETNS);
    if (fd >= 0)
        return fd;
    if (mkdir(EMPTY_NETNS_DIR, 0755) != 0 && errno != EEXIST)
        return -1;
    int lock = open(EMPTY_NETNS_DIR "/netns.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock < 0)
        return -1;
    if (flock(lock, LOCK_EX) == 0 && (fd = open_nsfs(EMPTY_NETNS)) < 0) {
        int f = open(EMPTY_NETNS, O_WRONLY | O_CREAT | O_CLOEXEC, 0444);
        if (f >= 0)
            close(f);
        pid_t c = fork();
        if (c == 0)
            _exit(unshare(CLONE_NEWNET) == 0 &&
                          mount("/proc/self/ns/net", EMPTY_NETNS, NULL, MS_BIND, NULL) == 0
                      ? 0
                      : 1);
        int st = 0;
        if (c > 0 && waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 0)
            fd = open_nsfs(EMPTY_NETNS);
    }
    close(lock);
    return fd;
}

/* Is "/" a mount point? Not inside a plain chroot. Unknown (old kernel) counts as yes:
 * then making it private below says for itself whether it works. */
static int root_is_mount(void)
{
#ifdef STATX_ATTR_MOUNT_ROOT
    struct statx sx;
    if (statx(AT_FDCWD, "/", 0, STATX_BASIC_STATS, &sx) == 0 &&
        (sx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT))
        return (sx.stx_attributes & STATX_ATTR_MOUNT_ROOT) != 0;
#endif
    return 1;
}

/* Not root: namespaces need a user namespace created in the same call; map ourselves
 * to root inside it. */
static int user_ns(void)
{
    uid_t uid = geteuid();
    gid_t gid = getegid();
    if (unshare(CLONE_NEWUSER) != 0)
        return -1;
    char buf[64];
    int fd = open("/proc/self/setgroups", O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        write_all(fd, "deny", 4);
        close(fd);
    }
    snprintf(buf, sizeof buf, "0 %u 1", (unsigned)uid);
    if ((fd = open("/proc/self/uid_map", O_WRONLY | O_CLOEXEC)) < 0)
        return -1;
    write_all(fd, buf, strlen(buf));
    close(fd);
    snprintf(buf, sizeof buf, "0 %u 1", (unsigned)gid);
    if ((fd = open("/proc/self/gid_map", O_WRONLY | O_CLOEXEC)) < 0)
        return -1;
    write_all(fd, buf, strlen(buf));
    close(fd);
    return 0;
}

/* Root in a plain chroot, just after unsharing the mount namespace: "/" is a directory
 * of a mount we cannot name (its root is outside the chroot), so it cannot be made
 * private, and a mount made on it (the masks over /etc secrets) would propagate to the
 * host when that mount is shared. (A user namespace would turn shared mounts into
 * slaves, but the kernel refuses one to a chrooted process.) So make "/" a mount of
 * our own: on a mount point we can name (/proc, /tmp, ...; made private first) stage a
 * tmpfs, bind the whole chroot tree onto a directory in it, make that copy private,
 * uncover the staging point in the copy, and chroot into it. Nothing here lands on a
 * mount that is not private. Returns 0, or -1 with errno (ENOENT: no mount point to
 * stage on). */
static int reroot_chroot(void)
{
    static const char *const spots[] = {"/proc", "/tmp", "/run", "/dev", "/sys", "/mnt"};
    const char *spot = NULL;
    for (size_t i = 0; i < sizeof spots / sizeof spots[0] && !spot; i++) {
#ifdef STATX_ATTR_MOUNT_ROOT
        struct statx sx;
        if (statx(AT_FDCWD, spots[i], AT_SYMLINK_NOFOLLOW, STATX_TYPE, &sx) == 0 &&
            S_ISDIR(sx.stx_mode) && (sx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) &&
            (sx.stx_attributes & STATX_ATTR_MOUNT_ROOT))
            spot = spots[i];
#endif
    }
    if (!spot) {
        errno = ENOENT;
        return -1;
    }
    char newroot[64], uncover[128];
    snprintf(newroot, sizeof newroot, "%s/wfh-root", spot);
    snprintf(uncover, sizeof uncover, "%s%s", newroot, spot);
    if (mount(NULL, spot, NULL, MS_PRIVATE, NULL) != 0 ||
        mount("tmpfs", spot, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=16k,mode=0700") != 0 ||
        mkdir(newroot, 0700) != 0 || mount("/", newroot, NULL, MS_BIND | MS_REC, NULL) != 0 ||
        mount(NULL, newroot, NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
        umount2(uncover, MNT_DETACH) != 0 || chdir(newroot) != 0 || chroot(".") != 0 ||
        chdir("/") != 0)
        return -1;
    return 0;
}

int wfh_sandbox_enter(const wfh_sandbox_spec *spec, int *chan, wfh_sandbox_report *rep)
{
    int err = 0;
    memset(rep, 0, sizeof *rep);
    rep->profile = spec->profile;
    rep->cgroup = "none";
    rep->warm = spec->warm;
    if (spec->profile == WFH_SANDBOX_NONE)
        return 0;
    int strict = spec->profile == WFH_SANDBOX_STRICT;
    int out[2] = {-1, -1}, errp[2] = {-1, -1}, st[2] = {-1, -1}, life[2] = {-1, -1};
    int gon[2] = {-1, -1}; /* a warm runner's step tells the supervisor of its go */
    wfh_sandbox_cgroup cg = {.dfd = {-1, -1, -1}};

    if (strict) {
        rep->landlock_abi = wfh_sandbox_landlock_abi();
        if (rep->landlock_abi < 1)
            return wfh_sandbox_fail(WFH_ESECURITY, "sandbox: profile strict needs Landlock, "
                                    "which this kernel does not offer (see wfhost doctor)");
        if (prctl(PR_GET_SECCOMP, 0, 0, 0, 0) < 0)
            return wfh_sandbox_fail(WFH_ESECURITY, "sandbox: profile strict needs seccomp "
                                    "filters, which this kernel does not offer");
        if (rep->landlock_abi < 4 && spec->n_ports)
            return wfh_sandbox_fail(WFH_ESECURITY, "sandbox: a host:port network grant needs "
                                    "Landlock ABI 4 (TCP rules); this kernel has ABI %d",
                                    rep->landlock_abi);
    }
    /* Sweeps what crashed runners left first. */
    if ((err = wfh_sandbox_cgroup_create(&cg, &spec->limits)) < 0)
        return err;
    rep->cgroup = cg.v2_limits ? "v2" : cg.v2 && (cg.mem || cg.pids) ? "v1+v2kill"
                  : cg.mem || cg.pids ? "v1" : cg.v2 ? "v2kill" : "none";
    if (!cg.pids && geteuid() == 0) {
        /* RLIMIT_NPROC does not apply to root: only a pids cgroup bounds a fork bomb. */
        err = wfh_sandbox_fail(WFH_ESECURITY, "sandbox: no pids cgroup controller to limit "
                               "the step's processes (see wfhost doctor)");
        goto fail;
    }
    if (!cg.v2 && !cg.pids && !strict) {
        err = wfh_sandbox_fail(WFH_ESECURITY, "sandbox: profile process needs a cgroup to "
                               "kill the step's tree; none is available");
        goto fail;
    }
    if (pipe2(out, O_CLOEXEC) || pipe2(errp, O_CLOEXEC) || pipe2(st, O_CLOEXEC) ||
        pipe2(life, O_CLOEXEC) || (spec->warm && pipe2(gon, O_CLOEXEC))) {
        err = wfh_sandbox_fail(WFH_EIO, "sandbox: pipe: %s", strerror(errno));
        goto fail;
    }
    if (strict) {
        int flags = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS;
        int no_net = !spec->net_all && !spec->n_ports;
        /* Not in a chroot: the bind mount keeping the shared namespace would land on a
         * mount that is not ours (and, if shared, show up on the host). */
        int netfd = no_net && geteuid() == 0 && rep->landlock_abi >= 6 && root_is_mount()
                        ? empty_netns() : -1;
        if (no_net && netfd < 0)
            flags |= CLONE_NEWNET;
        if (netfd >= 0) {
            int r = setns(netfd, CLONE_NEWNET);
            close(netfd);
            if (r != 0) {
                err = wfh_sandbox_fail(WFH_ESECURITY, "sandbox: joining the empty network "
                                       "namespace %s: %s", EMPTY_NETNS, strerror(errno));
                goto fail;
            }
        }
        int userns = geteuid() != 0;
        if (userns && user_ns() != 0) {
            err = wfh_sandbox_fail(WFH_ESECURITY, "sandbox: profile strict needs namespaces; "
                                   "user namespaces are refused here: %s", strerror(errno));
            goto fail;
        }
        if (unshare(flags) != 0) {
            err = wfh_sandbox_fail(WFH_ESECURITY, "sandbox: profile strict needs pid/mount/"
                                   "net namespaces: unshare: %s", strerror(errno));
            goto fail;
        }
        /* In a plain chroot, root first makes "/" a private mount of its own. */
        rep->rerooted = !userns && !root_is_mount();
        if (rep->rerooted && reroot_chroot() != 0) {
            err = wfh_sandbox_fail(WFH_ESECURITY,
                                   "sandbox: profile strict in a chroot (\"/\" is not a mount "
                                   "point) needs a mount point such as /proc or /tmp inside it to "
                                   "keep the step's mounts from reaching the host: %s; use a "
                                   "container or profile process", strerror(errno));
            goto fail;
        }
        /* Nothing mounted for the step may propagate back to the host. */
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
            /* EINVAL: "/" is not a mount point, as inside a plain chroot. Mounts made for
             * the step could then propagate to the host, so strict refuses. */
            if (errno == EINVAL)
                err = wfh_sandbox_fail(WFH_ESECURITY,
                                       "sandbox: profile strict needs / to be a mount point (is "
                                       "wfhost running in a chroot?): the step's mounts cannot "
                                       "be kept private; use a container or profile process");
            else
                err = wfh_sandbox_fail(WFH_EIO, "sandbox: making / private: %s", strerror(errno));
            goto fail;
        }
        rep->pidns = rep->mntns = 1;
        rep->userns = userns;
        rep->netns = no_net;
    }
    fflush(NULL);
    pid_t child = fork();
    if (child < 0) {
        err = wfh_sandbox_fail(WFH_EIO, "sandbox: fork: %s", strerror(errno));
        goto fail;
    }
    if (child > 0) {
        prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
        close(out[1]);
        close(errp[1]);
        close(st[1]);
        close(life[0]);
        if (gon[1] >= 0)
            close(gon[1]);
        if (go_sock >= 0) { /* the step's to read */
            close(go_sock);
            go_sock = -1;
        }
        int pidfd = (int)syscall(__NR_pidfd_open, child, 0);
        if (pidfd < 0) {
            kill(child, SIGKILL);
            wfh_sandbox_cgroup_kill(&cg);
            waitpid(child, NULL, 0);
            err = wfh_sandbox_fail(WFH_EIO, "sandbox: pidfd_open: %s", strerror(errno));
            goto fail;
        }
        supervise(spec, rep, &cg, child, pidfd, *chan, out[0], errp[0], strict ? st[0] : -1, gon[0]);
    }

    /* The child: pid 1 of the namespace in strict, the step itself in process. */
    close(out[0]);
    close(errp[0]);
    close(st[0]);
    close(life[1]);
    if (gon[0] >= 0)
        close(gon[0]);
    go_note = gon[1];
    if (wfh_sandbox_cgroup_join(&cg) != 0) {
        err = wfh_sandbox_fail(WFH_EIO, "sandbox: joining the step cgroup: %s", strerror(errno));
        goto child_fail;
    }
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    /* The supervisor may have died before PDEATHSIG was armed: the pipe says so. */
    struct pollfd lp = {life[0], POLLIN, 0};
    if (poll(&lp, 1, 0) > 0)
        _exit(1);
    close(life[0]);
    setsid(); /* no controlling terminal: TIOCSTI and terminal signals */
    /* From here on an error the caller prints reaches the host through the relay. */
    if (dup3(out[1], *chan, O_CLOEXEC) < 0 || dup2(errp[1], STDOUT_FILENO) < 0 ||
        dup2(errp[1], STDERR_FILENO) < 0) {
        err = wfh_sandbox_fail(WFH_EIO, "sandbox: dup2: %s", strerror(errno));
        goto child_fail;
    }
    close(out[1]);
    close(errp[1]);
    if (strict) {
        if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0) {
            err = wfh_sandbox_fail(WFH_EIO, "sandbox: mounting /proc: %s", strerror(errno));
            goto child_fail;
        }
        tmp_keep keep[64];
        size_t nkeep = 0;
        char *const ws[2] = {spec->workspace, NULL};
        char *const pl[2] = {spec->plugin, NULL};
        nkeep = tmp_collect(ws, 0, keep, nkeep, 64);
        nkeep = tmp_collect(pl, 1, keep, nkeep, 64);
        nkeep = tmp_collect(spec->read, 1, keep, nkeep, 64);
        nkeep = tmp_collect(spec->write, 0, keep, nkeep, 64);
        nkeep = tmp_collect(spec->run, 1, keep, nkeep, 64);
        tmp_order(keep, nkeep);
        /* Landlock's EXECUTE cannot see a memfd (it has no path): copying any readable
         * ELF into one and execveat()ing it would run a program nobody granted. Since
         * 6.3 this sysctl is per pid namespace and can only be made stricter. */
        int mfd = open("/proc/sys/vm/memfd_noexec", O_WRONLY | O_CLOEXEC);
        if (mfd >= 0) {
            rep->memfd_noexec = write(mfd, "2", 1) == 1;
            close(mfd);
        }
        char opt[64];
        snprintf(opt, sizeof opt, "size=%llu,mode=1777",
                 (unsigned long long)(spec->limits.memory / 2));
        if (mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, opt) != 0) {
            err = wfh_sandbox_fail(WFH_EIO, "sandbox: private /tmp: %s", strerror(errno));
            goto child_fail;
        }
        for (size_t i = 0; i < nkeep; i++) {
            if (keep[i].fd < 0)
                continue;
            if (tmp_rebind(&keep[i]) != 0) {
                err = wfh_sandbox_fail(WFH_EIO, "sandbox: keeping %s under the private /tmp: %s",
                                       keep[i].path, strerror(errno));
                goto child_fail;
            }
            close(keep[i].fd);
        }
        rep->tmp_private = 1;
        if (mask_secrets() != 0) {
            err = wfh_sandbox_fail(WFH_EIO, "sandbox: masking secrets: %s", strerror(errno));
            goto child_fail;
        }
        if (sethostname("wfstep", 6) != 0) {
            err = wfh_sandbox_fail(WFH_EIO, "sandbox: sethostname: %s", strerror(errno));
            goto child_fail;
        }
        pid_t step = fork();
        if (step < 0) {
            err = wfh_sandbox_fail(WFH_EIO, "sandbox: fork in namespace: %s", strerror(errno));
            goto child_fail;
        }
        if (step > 0) {
            close(STDIN_FILENO);
            close(STDOUT_FILENO);
            close(STDERR_FILENO);
            /* pid 1 keeps nothing it does not need: not the cgroups' directories, not
             * a warm runner's go socket and note. */
            wfh_sandbox_cgroup_release(&cg);
            if (go_note >= 0)
                close(go_note);
            if (go_sock >= 0)
                close(go_sock);
            reaper(step, st[1]);
        }
    }
    close(st[1]);
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (devnull >= 0) {
        dup2(devnull, STDIN_FILENO);
        close(devnull);
    }
    /* Orphans of the step's children come back to the step, so the runner's own tree
     * cleanup (proctree.c) sees them before it reports a result. */
    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    /* Whatever else the runner holds must not leak into programs the step runs. */
    syscall(__NR_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC);
    if ((err = confine_step(spec, rep, &cg)) < 0)
        goto child_fail;
    wfh_sandbox_cgroup_release(&cg);
    return 0;

child_fail:
    /* We are the step (or pid 1): the caller reports the error on stdout, which the
     * supervisor relays. Nothing of the cgroup is ours to remove. */
    wfh_sandbox_cgroup_release(&cg);
    return err;
fail:
    for (int i = 0; i < 2; i++) {
        if (out[i] >= 0)
            close(out[i]);
        if (errp[i] >= 0)
            close(errp[i]);
        if (st[i] >= 0)
            close(st[i]);
        if (life[i] >= 0)
            close(life[i]);
        if (gon[i] >= 0)
            close(gon[i]);
    }
    wfh_sandbox_cgroup_destroy(&cg);
    return err;
}

/* ---- the runner's one call ------------------------------------------------- */

static json_t *applied; /* owned: the report of what this process runs under */

/* A warm runner, confined: block until the host sends the go (one byte and, in
 * SCM_RIGHTS, a sealed memfd holding the attempt's members as JSON) or closes the socket.
 * Tells the supervisor, then applies "sandbox_env" (when @p env_too) as confine_step
 * applies the variables of an ordinary request. Returns 0 and *go (owned), or a code. */
static int go_wait(int fd, int env_too, json_t **go)
{
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int) * 4)];
    } ctl;
    char g = 0;
    struct iovec iov = {&g, 1};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
                        .msg_controllen = sizeof ctl.buf};
    ssize_t r;
    while ((r = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR) {
    }
    int mfd = -1;
    for (struct cmsghdr *c = r > 0 ? CMSG_FIRSTHDR(&mh) : NULL; c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
            int f;
            memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof f);
            if (mfd < 0)
                mfd = f;
            else
                close(f);
        }
    }
    close(fd); /* nothing of the host's control reaches the plugin */
    go_sock = -1;
    if (r <= 0 || mfd < 0) {
        if (mfd >= 0)
            close(mfd);
        return wfh_sandbox_fail(WFH_ECANCELLED, "sandbox: the host dropped this warm runner");
    }
    if (go_note >= 0) {
        write_all(go_note, "g", 1);
        close(go_note);
        go_note = -1;
    }
    /* Read whole (jansson's json_loadfd reads a byte per call). */
    json_error_t je;
    memset(&je, 0, sizeof je);
    json_t *j = NULL;
    char *text = NULL; /* owned */
    size_t len = 0;
    if (wfh_runner_read_all(mfd, &text, &len) == 0)
        j = json_loadb(text, len, 0, &je);
    free(text);
    close(mfd);
    if (!json_is_object(j)) {
        json_decref(j);
        return wfh_sandbox_fail(WFH_EINVAL, "step runner: malformed go: %d:%d: %s", je.line, je.column,
                                je.text);
    }
    const json_t *env = json_object_get(j, "sandbox_env");
    if (env_too && env) {
        /* Checked as an ordinary request's "env" is (wfh_sandbox_spec_parse). */
        json_t *only = json_pack("{s:O}", "env", env);
        wfh_sandbox_spec *spec = NULL; /* owned */
        int err = only ? wfh_sandbox_spec_parse(only, NULL, &spec)
                       : wfh_sandbox_fail(WFH_ENOMEM, "sandbox: out of memory");
        json_decref(only);
        if (err < 0) {
            json_decref(j);
            return err;
        }
        env_apply(spec->env);
        wfh_sandbox_spec_free(spec);
    }
    *go = j;
    return 0;
}

int wfh_sandbox_apply_request(const json_t *req, const char *plugin_path, int *chan, int go_fd, json_t **go)
{
    *go = NULL;
    go_sock = go_fd;
    const json_t *member = json_object_get(req, "sandbox");
    int err = 0, env_too = 0;
    if (!member) {
        /* A host that predates the sandbox sends no member: say so in every result
         * rather than pretend a profile was applied. */
        applied = json_pack("{s:s, s:s}", "profile", "none", "note", "request had no sandbox");
        if (applied && go_fd >= 0)
            json_object_set_new(applied, "warm", json_true());
    } else {
        wfh_sandbox_spec *spec = NULL; /* owned */
        if ((err = wfh_sandbox_spec_parse(member, plugin_path, &spec)) < 0)
            return err;
        const char *ws = json_string_value(json_object_get(req, "workspace"));
        if (!spec->workspace && ws && *ws && !(spec->workspace = strdup(ws))) {
            wfh_sandbox_spec_free(spec);
            return wfh_sandbox_fail(WFH_ENOMEM, "sandbox: out of memory");
        }
        spec->warm = go_fd >= 0;
        env_too = spec->profile != WFH_SANDBOX_NONE;
        wfh_sandbox_report rep;
        err = wfh_sandbox_enter(spec, chan, &rep);
        wfh_sandbox_spec_free(spec);
        if (err == 0)
            applied = wfh_sandbox_report_json(&rep);
    }
    if (err == 0 && go_fd >= 0)
        err = go_wait(go_fd, env_too, go);
    return err;
}

const json_t *wfh_sandbox_applied(void)
{
    return applied;
}
