/*
 * core/catalog.c - the host's list of step types, read without loading any plugin
 * into the host (interface: core/catalog.h).
 *
 * exec, resume, retry, validate, schema and graph take their catalog from the signed
 * registry (registry/catalog_bridge.c, wfh_catalog_from_registry). What is here serves
 * the registry's installer (wfh_plugin_probe reads a descriptor in the step runner's
 * probe mode: a child process, so a plugin that crashes while loading costs a warning,
 * not the host) and the development commands' wfh_catalog_open_unsigned, which probes
 * the files it is given in parallel (one runner each), so ten plugins cost about one
 * runner start, not ten.
 */
#include "catalog.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "error.h"

extern char **environ;

/* Far more than any descriptor; a runner printing more is broken. */
#define PROBE_OUT_MAX (8u << 20)
/* A descriptor is static data: reading it takes milliseconds, unless a constructor
 * hangs. */
#define PROBE_TIMEOUT_MS 10000
/* Probes started at once; the rest wait for a slot. */
#define PROBE_PARALLEL 32

typedef struct probe {
    const char *path;   /* borrowed */
    pid_t pid;
    int out_fd, err_fd; /* owned, -1 when closed */
    char *out;          /* owned */
    size_t out_len;
    char err[512];      /* last complete non-empty stderr line: the runner's reason */
    char cur[512];      /* the stderr line being read */
    size_t cur_len;
    int too_big;
    int spawn_errno;
    int status;
    json_t *desc;       /* owned: the descriptor, from the cache or parsed from out */
    int from_cache;
    long deadline;      /* CLOCK_MONOTONIC ms after which the probe is killed */
    int timed_out;
} probe;

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* How long one probe may take: a plugin whose constructor hangs must not hang every
 * `wfhost exec`. $WFH_PROBE_TIMEOUT_MS overrides it (the tests use a short one). */
static long probe_timeout_ms(void)
{
    const char *e = getenv("WFH_PROBE_TIMEOUT_MS");
    long v = e ? strtol(e, NULL, 10) : 0;
    return v > 0 ? v : PROBE_TIMEOUT_MS;
}

static char *xstrdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

static int is_executable(const char *p)
{
    return access(p, X_OK) == 0;
}

char *wfh_default_runner_path(void)
{
    const char *env = getenv("WFH_RUNNER");
    if (env && *env)
        return strdup(env);
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return strdup("wfhost-runner");
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (slash)
        *slash = 0;
    char cand[PATH_MAX + 64];
    /* The build tree and a relocatable install keep the runner next to wfhost... */
    snprintf(cand, sizeof cand, "%s/wfhost-runner", exe);
    if (is_executable(cand))
        return strdup(cand);
    /* ...a GNUInstallDirs install puts it in libexec. */
    char alt[PATH_MAX + 64];
    snprintf(alt, sizeof alt, "%s/../libexec/wfhost/wfhost-runner", exe);
    if (is_executable(alt))
        return strdup(alt);
    return strdup(cand); /* so the error names where we looked first */
}

void wfh_plugin_meta_clear(wfh_plugin_meta *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n_types; i++) {
        free(m->types[i].name);
        free(m->types[i].description);
        json_decref(m->types[i].input_schema);
        json_decref(m->types[i].outputs);
        json_decref(m->types[i].capabilities);
    }
    free(m->types);
    free(m->name);
    free(m->version);
    free(m->description);
    free(m->path);
    free(m->blake2b256);
    free(m->sha256);
    memset(m, 0, sizeof *m);
}

static int probe_start(const char *runner, probe *p)
{
    int outp[2] = {-1, -1}, errp[2] = {-1, -1};
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    p->pid = -1;
    p->out_fd = p->err_fd = -1;
    if (pipe2(outp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
        p->spawn_errno = errno;
        goto fail;
    }
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, outp[1], 1);
    posix_spawn_file_actions_adddup2(&fa, errp[1], 2);
    sigset_t none, defaults;
    sigemptyset(&none);
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGPIPE);
    sigaddset(&defaults, SIGTERM);
    sigaddset(&defaults, SIGINT);
    sigaddset(&defaults, SIGCHLD);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    char *argv[] = {(char *)runner, "--probe", (char *)p->path, NULL};
    int rc = posix_spawn(&p->pid, runner, &fa, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) {
        p->pid = -1;
        p->spawn_errno = rc;
        goto fail;
    }
    close(outp[1]);
    close(errp[1]);
    p->out_fd = outp[0];
    p->err_fd = errp[0];
    return 0;
fail:
    for (int i = 0; i < 2; i++) {
        if (outp[i] >= 0)
            close(outp[i]);
        if (errp[i] >= 0)
            close(errp[i]);
    }
    return -1;
}

static void probe_read(probe *p, int is_err)
{
    char buf[16384];
    int *fd = is_err ? &p->err_fd : &p->out_fd;
    ssize_t r = read(*fd, buf, sizeof buf);
    if (r < 0 && errno == EINTR)
        return;
    if (r <= 0) {
        if (is_err && p->cur_len > 0) {
            memcpy(p->err, p->cur, p->cur_len);
            p->err[p->cur_len] = 0;
            p->cur_len = 0;
        }
        close(*fd);
        *fd = -1;
        return;
    }
    if (is_err) {
        for (ssize_t i = 0; i < r; i++) {
            if (buf[i] == '\n') {
                if (p->cur_len > 0) {
                    memcpy(p->err, p->cur, p->cur_len);
                    p->err[p->cur_len] = 0;
                }
                p->cur_len = 0;
            } else if (p->cur_len < sizeof p->cur - 1) {
                p->cur[p->cur_len++] = buf[i];
            }
        }
        return;
    }
    if (p->too_big || p->out_len + (size_t)r > PROBE_OUT_MAX) {
        p->too_big = 1;
        return;
    }
    char *nb = realloc(p->out, p->out_len + (size_t)r + 1);
    if (!nb) {
        p->too_big = 1;
        return;
    }
    p->out = nb;
    memcpy(p->out + p->out_len, buf, (size_t)r);
    p->out_len += (size_t)r;
    p->out[p->out_len] = 0;
}

static unsigned parse_major(const char *v)
{
    unsigned long m = strtoul(v, NULL, 10);
    return m > 100000 ? 100000 : (unsigned)m;
}

/* Metadata from a descriptor object as the runner's probe mode prints it. */
static int meta_from_json(const char *path, json_t *j, wfh_plugin_meta *out)
{
    const char *file = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    int err = 0;
    memset(out, 0, sizeof *out);
    json_t *types = json_object_get(j, "step_types");
    const char *name = json_string_value(json_object_get(j, "name"));
    const char *version = json_string_value(json_object_get(j, "version"));
    if (!j || !name || !version || !json_is_array(types) || json_array_size(types) == 0)
        return wfh_error_set(WFH_EABI, "plugin %s: the step runner's probe output is not a descriptor", file);
    char real[PATH_MAX];
    out->path = xstrdup(realpath(path, real) ? real : path);
    out->name = xstrdup(name);
    out->version = xstrdup(version);
    out->version_major = parse_major(version);
    out->abi_major = (unsigned)json_integer_value(json_object_get(j, "abi_major"));
    out->abi_minor = (unsigned)json_integer_value(json_object_get(j, "abi_minor"));
    out->description = xstrdup(json_string_value(json_object_get(j, "description")));
    out->types = calloc(json_array_size(types), sizeof *out->types);
    if (!out->path || !out->name || !out->version || !out->types) {
        err = wfh_error_set(WFH_ENOMEM, "out of memory");
        goto done;
    }
    size_t i;
    json_t *t;
    json_array_foreach(types, i, t) {
        wfh_type_meta *m = &out->types[out->n_types];
        const char *tn = json_string_value(json_object_get(t, "name"));
        if (!tn) {
            err = wfh_error_set(WFH_EABI, "plugin %s: a step type without a name", file);
            goto done;
        }
        m->name = xstrdup(tn);
        m->description = xstrdup(json_string_value(json_object_get(t, "description")));
        m->input_schema = json_incref(json_object_get(t, "input_schema"));
        m->outputs = json_incref(json_object_get(t, "outputs"));
        m->capabilities = json_incref(json_object_get(t, "capabilities"));
        m->plugin = NULL; /* set by the catalog once the plugins array stops moving */
        out->n_types++;
        if (!m->name || !json_is_object(m->input_schema)) {
            err = wfh_error_set(WFH_EABI, "plugin %s: step type '%s' is incomplete", file, tn);
            goto done;
        }
        if (!m->outputs)
            m->outputs = json_object();
        if (!m->capabilities)
            m->capabilities = json_object();
    }
done:
    if (err < 0)
        wfh_plugin_meta_clear(out);
    return err;
}

/* Turn a finished probe into its descriptor (p->desc), or a reason. */
static int probe_check(probe *p)
{
    const char *file = strrchr(p->path, '/') ? strrchr(p->path, '/') + 1 : p->path;
    if (p->desc)
        return 0;
    if (p->pid < 0)
        return wfh_error_set(WFH_EIO, "%s: cannot start the step runner to probe it: %s", file,
                             strerror(p->spawn_errno));
    if (p->timed_out)
        return wfh_error_set(WFH_EABI, "plugin %s did not finish loading within %ld ms (a hanging constructor?)",
                             file, probe_timeout_ms());
    if (WIFSIGNALED(p->status)) {
        int sig = WTERMSIG(p->status);
        const char *ab = sigabbrev_np(sig);
        return wfh_error_set(WFH_EABI, "plugin %s crashed while loading: SIG%s (%s)", file, ab ? ab : "?",
                             strsignal(sig));
    }
    if (!WIFEXITED(p->status) || WEXITSTATUS(p->status) != 0) {
        const char *why = p->err;
        if (!strncmp(why, "wfhost-runner: ", 15))
            why += 15;
        return wfh_error_set(WFH_EABI, "%s", *why ? why : "the probe failed without a reason");
    }
    if (p->too_big)
        return wfh_error_set(WFH_EABI, "plugin %s: descriptor is larger than %u MiB", file, PROBE_OUT_MAX >> 20);
    p->desc = json_loadb(p->out ? p->out : "", p->out_len, 0, NULL);
    if (!json_is_object(p->desc)) {
        json_decref(p->desc);
        p->desc = NULL;
        return wfh_error_set(WFH_EABI, "plugin %s: the step runner's probe output is not a descriptor", file);
    }
    return 0;
}

static int probe_result(probe *p, wfh_plugin_meta *out)
{
    memset(out, 0, sizeof *out);
    int err = probe_check(p);
    return err < 0 ? err : meta_from_json(p->path, p->desc, out);
}

/* ---- the probe cache ----
 * Probing costs a runner start and a dlopen per plugin (a few ms each, more for
 * plugins with big dependencies), on every `wfhost exec` and `validate`. Descriptors
 * are static data, so they are cached per file, keyed by everything that changes when
 * the file or the runner is replaced (device, inode, size, mtime and ctime in ns).
 * Only successful probes are cached. $WFH_PROBE_CACHE names the cache file, or "off". */

static char *cache_path(void)
{
    const char *env = getenv("WFH_PROBE_CACHE");
    if (env && !strcmp(env, "off"))
        return NULL;
    if (env && *env)
        return strdup(env);
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    char buf[PATH_MAX];
    if (xdg && *xdg == '/')
        snprintf(buf, sizeof buf, "%s/wfhost/probe-cache.json", xdg);
    else if (home && *home == '/')
        snprintf(buf, sizeof buf, "%s/.cache/wfhost/probe-cache.json", home);
    else
        return NULL;
    return strdup(buf);
}

/* "dev:ino:size:mtime:ctime" of @p path, or "" if it cannot be stat'ed. */
static void file_key(const char *path, char *buf, size_t n)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        buf[0] = 0;
        return;
    }
    snprintf(buf, n, "%llu:%llu:%lld:%lld.%09ld:%lld.%09ld", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino, (long long)st.st_size, (long long)st.st_mtim.tv_sec,
             st.st_mtim.tv_nsec, (long long)st.st_ctim.tv_sec, st.st_ctim.tv_nsec);
}

static const char *str_or_empty(const json_t *j)
{
    const char *s = json_string_value(j);
    return s ? s : "";
}

static json_t *cache_load(const char *file)
{
    json_t *c = file ? json_load_file(file, 0, NULL) : NULL;
    if (!json_is_object(json_object_get(c, "entries")) || json_integer_value(json_object_get(c, "version")) != 1) {
        json_decref(c);
        c = json_pack("{s:i, s:{}}", "version", 1, "entries");
    }
    return c;
}

/* Write atomically (temp file + rename), so a concurrent wfhost never reads half a
 * cache. Failure only costs speed, so it is silent. */
static void cache_save(const char *file, json_t *cache)
{
    char dir[PATH_MAX], tmp[PATH_MAX + 32];
    snprintf(dir, sizeof dir, "%s", file);
    char *slash = strrchr(dir, '/');
    if (!slash)
        return;
    *slash = 0;
    /* mkdir -p for the last two levels (~/.cache/wfhost). */
    char *up = strrchr(dir, '/');
    if (up && up != dir) {
        *up = 0;
        mkdir(dir, 0700);
        *up = '/';
    }
    mkdir(dir, 0700);
    /* Forget files that are gone (test and scratch directories come and go). */
    json_t *entries = json_object_get(cache, "entries");
    const char *k;
    json_t *v;
    void *it_tmp;
    json_object_foreach_safe(entries, it_tmp, k, v) {
        if (access(k, F_OK) < 0)
            json_object_del(entries, k);
    }
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", file, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return;
    int ok = json_dumpfd(cache, fd, JSON_COMPACT) == 0;
    ok = close(fd) == 0 && ok;
    if (!ok || rename(tmp, file) < 0)
        unlink(tmp);
}

/* Run probes for @p n paths, at most PROBE_PARALLEL at a time. probes[i].status and
 * buffers are filled; the caller frees probes[i].out. */
static void run_probes(const char *runner, probe *probes, size_t n)
{
    size_t next = 0, running = 0;
    long timeout = probe_timeout_ms();
    struct pollfd *pfd = calloc(2 * PROBE_PARALLEL, sizeof *pfd);
    probe **owner = calloc(2 * PROBE_PARALLEL, sizeof *owner);
    if (!pfd || !owner) {
        for (size_t i = 0; i < n; i++) {
            probes[i].pid = -1;
            probes[i].spawn_errno = ENOMEM;
        }
        goto done;
    }
    probe *active[PROBE_PARALLEL];
    for (;;) {
        while (running < PROBE_PARALLEL && next < n) {
            probe *p = &probes[next++];
            p->deadline = now_ms() + timeout;
            if (probe_start(runner, p) == 0)
                active[running++] = p;
        }
        if (running == 0)
            break;
        nfds_t k = 0;
        for (size_t i = 0; i < running; i++) {
            if (active[i]->out_fd >= 0) {
                pfd[k] = (struct pollfd){active[i]->out_fd, POLLIN, 0};
                owner[k++] = active[i];
            }
            if (active[i]->err_fd >= 0) {
                pfd[k] = (struct pollfd){active[i]->err_fd, POLLIN, 0};
                owner[k++] = active[i];
            }
        }
        int pr = k > 0 ? poll(pfd, k, 100) : 0;
        int poll_broken = pr < 0 && errno != EINTR;
        for (nfds_t i = 0; pr > 0 && i < k; i++)
            if (pfd[i].revents)
                probe_read(owner[i], pfd[i].fd == owner[i]->err_fd);
        long now = now_ms();
        for (size_t i = 0; i < running;) {
            probe *p = active[i];
            if ((now > p->deadline || poll_broken) && !p->timed_out) {
                /* Kill the whole group; its pipes then close and it is reaped below. */
                p->timed_out = !poll_broken;
                kill(-p->pid, SIGKILL);
                for (int *fd = &p->out_fd; fd <= &p->err_fd; fd++)
                    if (*fd >= 0) {
                        close(*fd);
                        *fd = -1;
                    }
            }
            if (p->out_fd < 0 && p->err_fd < 0) {
                /* Group first, while the unreaped leader keeps its id from being reused:
                 * anything the plugin's constructor left behind goes with it. */
                kill(-p->pid, SIGKILL);
                while (waitpid(p->pid, &p->status, 0) < 0 && errno == EINTR) {
                }
                active[i] = active[--running];
            } else {
                i++;
            }
        }
    }
done:
    free(pfd);
    free(owner);
}

int wfh_plugin_probe_json(const char *runner_path, const char *plugin_path, json_t **out)
{
    probe p;
    memset(&p, 0, sizeof p);
    p.path = plugin_path;
    *out = NULL;
    run_probes(runner_path, &p, 1);
    int err = probe_check(&p);
    if (err == 0) {
        *out = p.desc; /* ownership moves to the caller */
        p.desc = NULL;
    }
    free(p.out);
    json_decref(p.desc);
    return err;
}

int wfh_plugin_probe(const char *runner_path, const char *plugin_path, wfh_plugin_meta *out)
{
    probe p;
    memset(&p, 0, sizeof p);
    p.path = plugin_path;
    run_probes(runner_path, &p, 1);
    int err = probe_result(&p, out);
    free(p.out);
    json_decref(p.desc);
    return err;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Compare MAJOR.MINOR.PATCH numerically (pre-release suffixes sort as equal). */
static int version_cmp(const char *a, const char *b)
{
    for (int i = 0; i < 3; i++) {
        unsigned long x = strtoul(a, (char **)&a, 10), y = strtoul(b, (char **)&b, 10);
        if (x != y)
            return x < y ? -1 : 1;
        if (*a == '.')
            a++;
        if (*b == '.')
            b++;
    }
    return 0;
}

int wfh_catalog_open_unsigned(const char *const *so_paths, size_t n, wfh_catalog **out)
{
    int err = 0;
    char **paths = NULL; /* owned array of owned strings */
    size_t n_paths = 0;
    probe *probes = NULL;
    char *cache_file = NULL; /* owned */
    json_t *cache = NULL;    /* owned */
    char **keys = NULL;      /* owned array of owned file keys, one per path */
    wfh_catalog *c = calloc(1, sizeof *c);
    *out = NULL;
    if (!c)
        return wfh_error_set(WFH_ENOMEM, "out of memory");
    c->runner_path = wfh_default_runner_path();
    paths = calloc(n ? n : 1, sizeof *paths);
    if (!c->runner_path || !paths) {
        err = wfh_error_set(WFH_ENOMEM, "out of memory");
        goto done;
    }
    for (; n_paths < n; n_paths++)
        if (!(paths[n_paths] = strdup(so_paths[n_paths]))) {
            err = wfh_error_set(WFH_ENOMEM, "out of memory");
            goto done;
        }
    /* Sorted, so that warnings and ties come out the same on every machine. */
    if (n_paths > 1)
        qsort(paths, n_paths, sizeof *paths, cmp_str);
    probes = calloc(n_paths ? n_paths : 1, sizeof *probes);
    c->plugins = calloc(n_paths ? n_paths : 1, sizeof *c->plugins);
    if (!probes || !c->plugins) {
        err = wfh_error_set(WFH_ENOMEM, "out of memory");
        goto done;
    }
    /* Descriptors the cache still vouches for skip the probe. */
    cache_file = cache_path();
    cache = cache_file ? cache_load(cache_file) : NULL;
    json_t *entries = json_object_get(cache, "entries");
    char runner_key[PATH_MAX + 128], key[256];
    file_key(c->runner_path, key, sizeof key);
    snprintf(runner_key, sizeof runner_key, "%s@%s", c->runner_path, key);
    keys = calloc(n_paths ? n_paths : 1, sizeof *keys);
    if (!keys) {
        err = wfh_error_set(WFH_ENOMEM, "out of memory");
        goto done;
    }
    size_t n_probe = 0;
    for (size_t i = 0; i < n_paths; i++) {
        probes[i].path = paths[i];
        file_key(paths[i], key, sizeof key);
        keys[i] = strdup(key);
        json_t *hit = json_object_get(entries, paths[i]);
        if (key[0] && keys[i] && !strcmp(str_or_empty(json_object_get(hit, "key")), key) &&
            !strcmp(str_or_empty(json_object_get(hit, "runner")), runner_key) &&
            json_is_object(json_object_get(hit, "desc"))) {
            probes[i].desc = json_incref(json_object_get(hit, "desc"));
            probes[i].from_cache = 1;
        } else {
            n_probe++;
        }
    }
    /* Probe the rest in one parallel batch, keeping the sorted order for messages. */
    probe *batch = n_probe ? calloc(n_probe, sizeof *batch) : NULL;
    if (n_probe && !batch) {
        err = wfh_error_set(WFH_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0, k = 0; i < n_paths; i++)
        if (!probes[i].from_cache)
            batch[k++].path = paths[i];
    run_probes(c->runner_path, batch, n_probe);
    int cache_dirty = 0;
    for (size_t i = 0, k = 0; i < n_paths; i++) {
        if (probes[i].from_cache)
            continue;
        probes[i] = batch[k++];
        if (probe_check(&probes[i]) == 0 && entries && keys[i] && keys[i][0]) {
            json_object_set_new(entries, paths[i], json_pack("{s:s, s:s, s:O}", "key", keys[i], "runner",
                                                             runner_key, "desc", probes[i].desc));
            cache_dirty = 1;
        }
    }
    free(batch);
    if (cache_dirty)
        cache_save(cache_file, cache);
    for (size_t i = 0; i < n_paths; i++) {
        wfh_plugin_meta *m = &c->plugins[c->n_plugins];
        if (probe_result(&probes[i], m) < 0) {
            fprintf(stderr, "wfhost: warning: skipping %s: %s\n", paths[i], wfh_error_last());
            continue;
        }
        int dup = 0;
        for (size_t j = 0; j < c->n_plugins; j++)
            if (!strcmp(c->plugins[j].name, m->name) && !strcmp(c->plugins[j].version, m->version))
                dup = 1;
        if (dup) {
            fprintf(stderr, "wfhost: warning: skipping %s: plugin '%s' %s is already provided by another file\n",
                    paths[i], m->name, m->version);
            wfh_plugin_meta_clear(m);
            continue;
        }
        c->n_plugins++;
    }
    for (size_t i = 0; i < c->n_plugins; i++)
        for (size_t t = 0; t < c->plugins[i].n_types; t++)
            c->plugins[i].types[t].plugin = &c->plugins[i];
    *out = c;
    c = NULL;
done:
    for (size_t i = 0; i < n_paths; i++) {
        if (probes) {
            free(probes[i].out);
            json_decref(probes[i].desc);
        }
        if (keys)
            free(keys[i]);
        free(paths[i]);
    }
    free(keys);
    free(paths);
    free(probes);
    free(cache_file);
    json_decref(cache);
    wfh_catalog_free(c);
    return err;
}

void wfh_catalog_free(wfh_catalog *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n_plugins; i++)
        wfh_plugin_meta_clear(&c->plugins[i]);
    for (size_t i = 0; i < c->n_inactive; i++)
        wfh_plugin_meta_clear(&c->inactive[i]);
    free(c->plugins);
    free(c->inactive);
    free(c->runner_path);
    free(c);
}

const wfh_plugin_meta *wfh_catalog_find_inactive(const wfh_catalog *c, const char *type, int major)
{
    const wfh_plugin_meta *best = NULL; /* the newest, as plain `uses: TYPE` would pick */
    for (size_t i = 0; c && type && i < c->n_inactive; i++) {
        const wfh_plugin_meta *p = &c->inactive[i];
        if (major >= 0 && p->version_major != (unsigned)major)
            continue;
        for (size_t t = 0; t < p->n_types; t++)
            if (!strcmp(p->types[t].name, type) && (!best || version_cmp(p->version, best->version) > 0))
                best = p;
    }
    return best;
}

/* Append ", item" to the list in @p buf unless it is there already (or does not fit). */
static void append_unique(char *buf, size_t cap, const char *item)
{
    size_t n = strlen(item), used = strlen(buf);
    for (const char *h = buf; (h = strstr(h, item)); h += n)
        if ((h == buf || h[-1] == ' ') && (h[n] == 0 || h[n] == ','))
            return;
    if (used + n + 3 < cap)
        snprintf(buf + used, cap - used, "%s%s", used ? ", " : "", item);
}

const wfh_type_meta *wfh_catalog_find(const wfh_catalog *c, const char *type, int major)
{
    const wfh_type_meta *best = NULL;
    if (!c || !type) {
        wfh_error_set(WFH_ENOTFOUND, "no step types are installed");
        return NULL;
    }
    for (size_t i = 0; i < c->n_plugins; i++) {
        const wfh_plugin_meta *p = &c->plugins[i];
        if (major >= 0 && p->version_major != (unsigned)major)
            continue;
        for (size_t t = 0; t < p->n_types; t++)
            if (!strcmp(p->types[t].name, type) &&
                (!best || version_cmp(p->version, best->plugin->version) > 0))
                best = &p->types[t];
    }
    if (best)
        return best;

    /* Say what there is instead: the other majors of this type, or the known types. */
    char have[512] = "";
    int same_type = 0;
    for (size_t i = 0; i < c->n_plugins; i++)
        for (size_t t = 0; t < c->plugins[i].n_types; t++)
            if (!strcmp(c->plugins[i].types[t].name, type)) {
                char one[128];
                snprintf(one, sizeof one, "%s@%u", type, c->plugins[i].version_major);
                append_unique(have, sizeof have, one);
                same_type = 1;
            }
    if (same_type) {
        wfh_error_set(WFH_ENOTFOUND, "step type '%s@%d' is not installed; installed: %s", type, major, have);
        return NULL;
    }
    for (size_t i = 0; i < c->n_plugins; i++)
        for (size_t t = 0; t < c->plugins[i].n_types; t++)
            append_unique(have, sizeof have, c->plugins[i].types[t].name);
    size_t used = strlen(have);
    wfh_error_set(WFH_ENOTFOUND, "unknown step type '%s'%s%s%s", type, used ? " (known: " : "", have,
                  used ? ")" : "; no plugins are installed");
    return NULL;
}
