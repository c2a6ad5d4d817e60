/*
 * plugins/shell/shell.c - the `shell` step type: run a script with /bin/sh -c, or a
 * program with an argv and no shell.
 *
 * Built against include/wfhost alone (plus jansson), exactly like a third-party plugin.
 * The child gets a small environment (the workflow's env, the step's env, WFH_* and a
 * kept PATH), stdin from /dev/null, and a fresh $WFH_OUTPUT file in a private temp dir
 * where it can append `name=value` lines (or GitHub's `name<<DELIM` multi-line form)
 * that become step outputs. Both output streams are read with poll() so neither can
 * fill its pipe and deadlock the child; each is capped, with a truncation flag.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <wfhost/plugin.h>

extern char **environ;

#define DEFAULT_MAX_OUTPUT (1u << 20)
/* stdout + stderr + $WFH_OUTPUT must fit the host's 16 MiB output budget. */
#define LIMIT_MAX_OUTPUT (6u << 20)
#define OUTPUT_FILE_MAX (3u << 20)
/* After the process exits, how long a background child holding the pipes open may
 * keep us reading (the runner kills it when the step ends). */
#define LINGER_MS 200

typedef struct capture {
    char *buf;           /* owned */
    size_t len, cap, limit;
    int truncated;
} capture;

typedef struct shell_ctx {
    const wfh_host_api *h;
    wfh_call *call;
    char msg[1024];
} shell_ctx;

static int32_t fail(shell_ctx *c, int32_t status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int32_t fail(shell_ctx *c, int32_t status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->msg, sizeof c->msg, fmt, ap);
    va_end(ap);
    c->h->set_error(c->call, c->msg, strlen(c->msg));
    return status;
}

static void cap_add(capture *b, const char *data, size_t n)
{
    if (b->len + n > b->limit) {
        b->truncated = 1;
        n = b->limit - b->len;
    }
    if (n == 0)
        return;
    if (b->len + n > b->cap) {
        size_t nc = b->cap ? b->cap : 8192;
        while (nc < b->len + n)
            nc *= 2;
        char *nb = realloc(b->buf, nc);
        if (!nb) {
            b->truncated = 1;
            return;
        }
        b->buf = nb;
        b->cap = nc;
    }
    memcpy(b->buf + b->len, data, n);
    b->len += n;
}

/* A JSON string from process output: invalid UTF-8 bytes become U+FFFD, so binary
 * output costs characters, never the whole output. New reference. */
static json_t *text_value(const char *s, size_t len)
{
    json_t *j = json_stringn(s ? s : "", s ? len : 0);
    if (j)
        return j;
    char *buf = malloc(len * 3 + 1);
    if (!buf)
        return NULL;
    size_t o = 0;
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        unsigned c = p[i];
        size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
        int ok = n > 0 && i + n <= len;
        for (size_t k = 1; ok && k < n; k++)
            ok = (p[i + k] & 0xc0) == 0x80;
        if (ok && n > 1) {
            /* Let jansson judge overlongs and surrogates on the one sequence. */
            json_t *t = json_stringn((const char *)p + i, n);
            ok = t != NULL;
            json_decref(t);
        }
        if (ok) {
            memcpy(buf + o, p + i, n);
            o += n;
            i += n;
        } else {
            memcpy(buf + o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
        }
    }
    j = json_stringn(buf, o);
    free(buf);
    return j;
}

static int set_json(shell_ctx *c, const char *name, json_t *v)
{
    if (!v)
        return -1;
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(v);
    if (!s)
        return -1;
    int rc = c->h->set_output(c->call, name, s, strlen(s));
    free(s);
    return rc;
}

/* ---- environment ---- */

typedef struct envlist {
    char **v;   /* owned NULL-terminated array of owned "K=V" */
    size_t n, cap;
} envlist;

static int env_set(envlist *e, const char *k, const char *val)
{
    size_t kl = strlen(k);
    char *kv = malloc(kl + strlen(val) + 2);
    if (!kv)
        return -1;
    sprintf(kv, "%s=%s", k, val);
    for (size_t i = 0; i < e->n; i++)
        if (!strncmp(e->v[i], k, kl) && e->v[i][kl] == '=') {
            free(e->v[i]);
            e->v[i] = kv;
            return 0;
        }
    if (e->n + 2 > e->cap) {
        size_t nc = e->cap ? e->cap * 2 : 32;
        char **nv = realloc(e->v, nc * sizeof *nv);
        if (!nv) {
            free(kv);
            return -1;
        }
        e->v = nv;
        e->cap = nc;
    }
    e->v[e->n++] = kv;
    e->v[e->n] = NULL;
    return 0;
}

static void env_free(envlist *e)
{
    for (size_t i = 0; i < e->n; i++)
        free(e->v[i]);
    free(e->v);
}

static int valid_env_name(const char *k)
{
    if (!*k || (*k >= '0' && *k <= '9'))
        return 0;
    for (; *k; k++)
        if (!((*k >= 'A' && *k <= 'Z') || (*k >= 'a' && *k <= 'z') || (*k >= '0' && *k <= '9') || *k == '_'))
            return 0;
    return 1;
}

/* Copy string members of @p obj into @p e; numbers and booleans as their text. */
static int env_from_object(shell_ctx *c, envlist *e, json_t *obj, const char *what)
{
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v) {
        char num[64];
        const char *val = NULL;
        if (json_is_string(v))
            val = json_string_value(v);
        else if (json_is_integer(v))
            snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v)), val = num;
        else if (json_is_real(v))
            snprintf(num, sizeof num, "%.17g", json_real_value(v)), val = num;
        else if (json_is_boolean(v))
            val = json_is_true(v) ? "true" : "false";
        if (!valid_env_name(k) || !val || strlen(val) != (json_is_string(v) ? json_string_length(v) : strlen(val))) {
            fail(c, WFH_STEP_INVALID_INPUT, "shell: %s: '%s' must be a [A-Za-z_][A-Za-z0-9_]* name with a "
                                           "string value without NUL bytes", what, k);
            return -1;
        }
        if (env_set(e, k, val) < 0)
            return -1;
    }
    return 0;
}

/* ---- $WFH_OUTPUT ---- */

static int valid_output_name(const char *s, size_t n)
{
    if (n == 0 || n > 128 || !((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_'))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
              s[i] == '_' || s[i] == '-'))
            return 0;
    return 1;
}

static int reserved_output(const char *name)
{
    static const char *const r[] = {"stdout", "stderr", "stdout_truncated", "stderr_truncated", "exit_code"};
    for (size_t i = 0; i < sizeof r / sizeof r[0]; i++)
        if (!strcmp(name, r[i]))
            return 1;
    return 0;
}

/* Parse GitHub-style output lines into @p outs (name -> string). Returns 0, or -1 with
 * the step's error set to the offending line. */
static int parse_output_file(shell_ctx *c, const char *text, size_t len, json_t *outs)
{
    size_t pos = 0;
    unsigned lineno = 0;
    while (pos < len) {
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t ll = nl ? (size_t)(nl - line) : len - pos;
        pos += ll + (nl ? 1 : 0);
        lineno++;
        if (ll > 0 && line[ll - 1] == '\r')
            ll--;
        if (ll == 0)
            continue;
        const char *eq = memchr(line, '=', ll);
        const char *heredoc = NULL;
        for (size_t i = 0; i + 1 < ll; i++)
            if (line[i] == '<' && line[i + 1] == '<') {
                heredoc = line + i;
                break;
            }
        /* Whichever comes first decides the form: `a=b<<c` is a value containing "<<". */
        if (heredoc && (!eq || heredoc < eq)) {
            size_t nlen = (size_t)(heredoc - line);
            const char *delim = heredoc + 2;
            size_t dlen = ll - nlen - 2;
            if (!valid_output_name(line, nlen) || dlen == 0) {
                fail(c, WFH_STEP_FAILED, "shell: $WFH_OUTPUT line %u: want NAME<<DELIMITER with NAME matching "
                                         "[A-Za-z_][A-Za-z0-9_-]*", lineno);
                return -1;
            }
            char name[129];
            memcpy(name, line, nlen);
            name[nlen] = 0;
            size_t vstart = pos, vend = pos;
            int closed = 0;
            unsigned start_line = lineno;
            while (pos < len) {
                const char *l2 = text + pos;
                const char *nl2 = memchr(l2, '\n', len - pos);
                size_t l2len = nl2 ? (size_t)(nl2 - l2) : len - pos;
                size_t l2cmp = l2len > 0 && l2[l2len - 1] == '\r' ? l2len - 1 : l2len;
                lineno++;
                if (l2cmp == dlen && !memcmp(l2, delim, dlen)) {
                    vend = pos;
                    pos += l2len + (nl2 ? 1 : 0);
                    closed = 1;
                    break;
                }
                pos += l2len + (nl2 ? 1 : 0);
            }
            if (!closed) {
                fail(c, WFH_STEP_FAILED, "shell: $WFH_OUTPUT line %u: '%s<<%.*s' is never closed by a line "
                                         "'%.*s'", start_line, name, (int)(dlen > 64 ? 64 : dlen), delim,
                     (int)(dlen > 64 ? 64 : dlen), delim);
                return -1;
            }
            /* The newline before the delimiter line ends the value; it is not part of it. */
            size_t vl = vend - vstart;
            if (vl > 0 && text[vstart + vl - 1] == '\n')
                vl--;
            if (vl > 0 && text[vstart + vl - 1] == '\r')
                vl--;
            json_object_set_new(outs, name, text_value(text + vstart, vl));
            continue;
        }
        if (!eq || !valid_output_name(line, (size_t)(eq - line))) {
            fail(c, WFH_STEP_FAILED, "shell: $WFH_OUTPUT line %u: want NAME=VALUE or NAME<<DELIMITER, got '%.*s'",
                 lineno, (int)(ll > 60 ? 60 : ll), line);
            return -1;
        }
        char name[129];
        size_t nlen = (size_t)(eq - line);
        memcpy(name, line, nlen);
        name[nlen] = 0;
        json_object_set_new(outs, name, text_value(eq + 1, ll - nlen - 1));
    }
    return 0;
}

/* ---- running ---- */

static char *find_program(const char *prog, const char *path_env)
{
    if (strchr(prog, '/'))
        return strdup(prog);
    const char *p = path_env && *path_env ? path_env : "/usr/local/bin:/usr/bin:/bin";
    while (*p) {
        const char *colon = strchr(p, ':');
        size_t dl = colon ? (size_t)(colon - p) : strlen(p);
        char cand[PATH_MAX];
        if (snprintf(cand, sizeof cand, "%.*s/%s", (int)dl, dl ? p : ".", prog) < (int)sizeof cand) {
            struct stat st;
            if (stat(cand, &st) == 0 && S_ISREG(st.st_mode) && access(cand, X_OK) == 0)
                return strdup(cand);
        }
        p += dl + (colon ? 1 : 0);
    }
    return NULL;
}

static long ms_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

static const char *last_line(const capture *b, char *out, size_t cap)
{
    size_t end = b->len;
    while (end > 0 && (b->buf[end - 1] == '\n' || b->buf[end - 1] == '\r'))
        end--;
    size_t start = end;
    while (start > 0 && b->buf[start - 1] != '\n')
        start--;
    size_t n = end - start < cap - 1 ? end - start : cap - 1;
    memcpy(out, b->buf ? b->buf + start : "", n);
    out[n] = 0;
    return out;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)ftw;
    /* Best effort: keep walking whatever one entry does. */
    if (flag == FTW_DP)
        (void)rmdir(path);
    else
        (void)unlink(path);
    return 0;
}

/* Remove the private dir. Usually it holds only $WFH_OUTPUT, so try that first: two
 * calls instead of nftw's walk (open, stat, getdents and a stat per entry). If the
 * script left files next to it, walk the whole dir (never following symlinks out). */
static void rm_tree(const char *dir, const char *outfile)
{
    if (outfile[0])
        (void)unlink(outfile);
    if (rmdir(dir) == 0 || errno == ENOENT)
        return;
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

static int32_t run_shell(const wfh_host_api *h, wfh_call *call, const wfh_step_request *req)
{
    shell_ctx c = {h, call, {0}};
    int32_t status = WFH_STEP_FAILED;
    json_t *in = NULL, *wenv = NULL, *file_outs = NULL;
    envlist env = {0};
    char **argv = NULL;     /* owned array; elements borrowed from `in` except argv[0]'s path */
    char *prog = NULL;      /* owned */
    char *cwd = NULL;       /* owned */
    char tmpdir[PATH_MAX] = "", outfile[PATH_MAX + 16] = "";
    int outp[2] = {-1, -1}, errp[2] = {-1, -1};
    capture out = {0}, err = {0};
    pid_t pid = -1;
    int fa_ok = 0, attr_ok = 0;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;

    json_error_t je;
    in = json_loadb(req->inputs_json, req->inputs_len, 0, &je);
    if (!json_is_object(in)) {
        status = fail(&c, WFH_STEP_INVALID_INPUT, "shell: inputs are not a JSON object");
        goto done;
    }
    json_t *run = json_object_get(in, "run"), *jargv = json_object_get(in, "argv");
    if (!!run == !!jargv) {
        status = fail(&c, WFH_STEP_INVALID_INPUT, "shell: give exactly one of `run` (a script) or `argv` (a list)");
        goto done;
    }
    size_t argc = run ? 3 : json_array_size(jargv);
    if ((run && !json_is_string(run)) || (jargv && (!json_is_array(jargv) || argc == 0))) {
        status = fail(&c, WFH_STEP_INVALID_INPUT, "shell: `run` must be a string and `argv` a non-empty list");
        goto done;
    }
    argv = calloc(argc + 1, sizeof *argv);
    if (!argv)
        goto oom;
    if (run) {
        if (strlen(json_string_value(run)) != json_string_length(run)) {
            status = fail(&c, WFH_STEP_INVALID_INPUT, "shell: `run` contains a NUL byte");
            goto done;
        }
        argv[0] = "/bin/sh";
        argv[1] = "-c";
        argv[2] = (char *)json_string_value(run);
    } else {
        for (size_t i = 0; i < argc; i++) {
            json_t *a = json_array_get(jargv, i);
            if (!json_is_string(a) || strlen(json_string_value(a)) != json_string_length(a)) {
                status = fail(&c, WFH_STEP_INVALID_INPUT, "shell: argv[%zu] must be a string without NUL bytes", i);
                goto done;
            }
            argv[i] = (char *)json_string_value(a);
        }
    }
    size_t max_output = DEFAULT_MAX_OUTPUT;
    json_t *mo = json_object_get(in, "max_output");
    if (mo) {
        if (!json_is_integer(mo) || json_integer_value(mo) < 0 || json_integer_value(mo) > (json_int_t)LIMIT_MAX_OUTPUT) {
            status = fail(&c, WFH_STEP_INVALID_INPUT, "shell: `max_output` must be an integer from 0 to %u",
                          LIMIT_MAX_OUTPUT);
            goto done;
        }
        max_output = (size_t)json_integer_value(mo);
    }
    out.limit = err.limit = max_output;

    /* Environment: kept basics, then the workflow's env, then the step's own env. */
    static const char *const kept[] = {"PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TZ", "TMPDIR"};
    for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++) {
        const char *v = getenv(kept[i]);
        if (v && env_set(&env, kept[i], v) < 0)
            goto oom;
    }
    if (!getenv("PATH") && env_set(&env, "PATH", "/usr/local/bin:/usr/bin:/bin") < 0)
        goto oom;
    wenv = req->env_json ? json_loadb(req->env_json, req->env_len, 0, &je) : NULL;
    if (wenv && json_is_object(wenv) && env_from_object(&c, &env, wenv, "workflow env") < 0) {
        status = WFH_STEP_INVALID_INPUT;
        goto done;
    }
    json_t *senv = json_object_get(in, "env");
    if (senv && (!json_is_object(senv) || env_from_object(&c, &env, senv, "`env`") < 0)) {
        if (!json_is_object(senv))
            fail(&c, WFH_STEP_INVALID_INPUT, "shell: `env` must be a map of names to strings");
        status = WFH_STEP_INVALID_INPUT;
        goto done;
    }

    /* A private directory per attempt: nobody else can pre-create or read the file. */
    const char *tmpbase = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/wfh-shell.XXXXXX", tmpbase && *tmpbase ? tmpbase : "/tmp");
    if (!mkdtemp(tmpdir)) {
        tmpdir[0] = 0;
        status = fail(&c, WFH_STEP_FAILED, "shell: cannot create a temp dir for $WFH_OUTPUT: %s", strerror(errno));
        goto done;
    }
    snprintf(outfile, sizeof outfile, "%s/output", tmpdir);
    int ofd = open(outfile, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (ofd < 0) {
        status = fail(&c, WFH_STEP_FAILED, "shell: cannot create %s: %s", outfile, strerror(errno));
        goto done;
    }
    close(ofd);
    char attempt[16];
    snprintf(attempt, sizeof attempt, "%u", req->attempt);
    const char *ws = req->workspace && *req->workspace ? req->workspace : NULL;
    if (env_set(&env, "WFH_OUTPUT", outfile) < 0 || env_set(&env, "WFH_WORKSPACE", ws ? ws : "") < 0 ||
        env_set(&env, "WFH_RUN_ID", req->run_id ? req->run_id : "") < 0 ||
        env_set(&env, "WFH_STEP_ID", req->step_id ? req->step_id : "") < 0 || env_set(&env, "WFH_ATTEMPT", attempt) < 0)
        goto oom;

    /* Working directory: `cwd` relative to the workspace (absolute taken as is). */
    json_t *jcwd = json_object_get(in, "cwd");
    if (jcwd && !json_is_string(jcwd)) {
        status = fail(&c, WFH_STEP_INVALID_INPUT, "shell: `cwd` must be a string");
        goto done;
    }
    const char *rel = jcwd ? json_string_value(jcwd) : NULL;
    if (rel && rel[0] == '/') {
        cwd = strdup(rel);
    } else if (ws && rel && *rel) {
        if ((cwd = malloc(strlen(ws) + strlen(rel) + 2)))
            sprintf(cwd, "%s/%s", ws, rel);
    } else if (ws) {
        cwd = strdup(ws);
    } else if (rel && *rel) {
        cwd = strdup(rel);
    }
    if ((rel || ws) && !cwd)
        goto oom;
    if (cwd) {
        struct stat st;
        int serr = stat(cwd, &st) < 0 ? errno : 0;
        if (serr || !S_ISDIR(st.st_mode)) {
            status = fail(&c, WFH_STEP_INVALID_INPUT, "shell: working directory %s: %s", cwd,
                          serr ? strerror(serr) : "not a directory");
            goto done;
        }
    }

    /* Look the program up in the child's PATH, not ours. */
    const char *child_path = NULL;
    for (size_t i = 0; i < env.n; i++)
        if (!strncmp(env.v[i], "PATH=", 5))
            child_path = env.v[i] + 5;
    if (!run) {
        /* A path with a slash is used as given; posix_spawn resolves a relative one
         * after the chdir to cwd, as a shell would. */
        prog = find_program(argv[0], child_path);
        if (!prog) {
            status = fail(&c, WFH_STEP_FAILED, "shell: %s: command not found in PATH", argv[0]);
            goto done;
        }
    }

    if (pipe2(outp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
        status = fail(&c, WFH_STEP_FAILED, "shell: pipe: %s", strerror(errno));
        goto done;
    }
    if (posix_spawn_file_actions_init(&fa) != 0)
        goto oom;
    fa_ok = 1;
    if (posix_spawnattr_init(&attr) != 0)
        goto oom;
    attr_ok = 1;
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, outp[1], 1);
    posix_spawn_file_actions_adddup2(&fa, errp[1], 2);
    if (cwd)
        posix_spawn_file_actions_addchdir_np(&fa, cwd);
    sigset_t none, defaults;
    sigemptyset(&none);
    sigfillset(&defaults);
    sigdelset(&defaults, SIGKILL);
    sigdelset(&defaults, SIGSTOP);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    /* Its own group, so cancelling kills the script's children with it. */
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
    int rc = posix_spawn(&pid, run ? "/bin/sh" : prog, &fa, &attr, argv, env.v);
    if (rc != 0) {
        pid = -1;
        status = fail(&c, WFH_STEP_FAILED, "shell: cannot run %s: %s", run ? "/bin/sh" : prog, strerror(rc));
        goto done;
    }
    close(outp[1]);
    close(errp[1]);
    outp[1] = errp[1] = -1;

    int wstatus = 0, exited = 0, cancelled = 0;
    struct timespec t_exit;
    for (;;) {
        struct pollfd p[2] = {{outp[0], POLLIN, 0}, {errp[0], POLLIN, 0}};
        if (p[0].fd < 0 && p[1].fd < 0)
            break;
        int n = poll(p, 2, 50);
        if (n < 0 && errno != EINTR)
            break;
        for (int i = 0; i < 2 && n > 0; i++) {
            if (p[i].fd < 0 || !p[i].revents)
                continue;
            char buf[65536];
            ssize_t r = read(p[i].fd, buf, sizeof buf);
            if (r > 0) {
                cap_add(i == 0 ? &out : &err, buf, (size_t)r);
            } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
                close(p[i].fd);
                if (i == 0)
                    outp[0] = -1;
                else
                    errp[0] = -1;
            }
        }
        if (!exited && waitpid(pid, &wstatus, WNOHANG) == pid) {
            exited = 1;
            clock_gettime(CLOCK_MONOTONIC, &t_exit);
        }
        /* A background child of the script may hold the pipes: stop reading soon
         * after the script itself ended. */
        if (exited && ms_since(&t_exit) > LINGER_MS)
            break;
        if (!exited && !cancelled && h->is_cancelled(call)) {
            cancelled = 1;
            kill(-pid, SIGTERM);
        }
    }
    if (!exited) {
        while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
        }
    }
    pid = -1;

    /* Outputs first, so a failed step still shows what it printed. */
    if (set_json(&c, "stdout", text_value(out.buf, out.len)) < 0 ||
        set_json(&c, "stderr", text_value(err.buf, err.len)) < 0 ||
        set_json(&c, "stdout_truncated", json_boolean(out.truncated)) < 0 ||
        set_json(&c, "stderr_truncated", json_boolean(err.truncated)) < 0 ||
        set_json(&c, "exit_code", WIFEXITED(wstatus) ? json_integer(WEXITSTATUS(wstatus))
                                                      : json_integer(128 + WTERMSIG(wstatus))) < 0) {
        status = fail(&c, WFH_STEP_FAILED, "shell: the host refused the step's outputs");
        goto done;
    }
    file_outs = json_object();
    if (!file_outs)
        goto oom;
    /* The script may have replaced the file: no symlink is followed, and a FIFO or a
     * device must not block or feed us forever. */
    int ofd2 = open(outfile, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (ofd2 < 0 && errno != ENOENT) {
        status = fail(&c, WFH_STEP_FAILED, "shell: cannot read $WFH_OUTPUT: %s", strerror(errno));
        goto done;
    }
    if (ofd2 >= 0) {
        struct stat st;
        if (fstat(ofd2, &st) < 0 || !S_ISREG(st.st_mode)) {
            close(ofd2);
            status = fail(&c, WFH_STEP_FAILED, "shell: $WFH_OUTPUT is no longer a regular file");
            goto done;
        }
        if (st.st_size > (off_t)OUTPUT_FILE_MAX) {
            close(ofd2);
            status = fail(&c, WFH_STEP_FAILED, "shell: $WFH_OUTPUT is %lld bytes; the limit is %u",
                          (long long)st.st_size, OUTPUT_FILE_MAX);
            goto done;
        }
        /* Sized to what is there (usually nothing), growing up to the limit if a
         * background child is still appending: not 3 MiB mapped and unmapped per step. */
        size_t tcap = (size_t)st.st_size + 4096 < OUTPUT_FILE_MAX ? (size_t)st.st_size + 4096
                                                                  : OUTPUT_FILE_MAX;
        char *text = malloc(tcap + 1); /* owned */
        size_t tl = 0;
        ssize_t r;
        while (text && tl < OUTPUT_FILE_MAX) {
            if (tl == tcap) {
                size_t ncap = tcap * 2 < OUTPUT_FILE_MAX ? tcap * 2 : OUTPUT_FILE_MAX;
                char *nt = realloc(text, ncap + 1);
                if (!nt) {
                    free(text);
                    text = NULL;
                    break;
                }
                text = nt;
                tcap = ncap;
            }
            if ((r = read(ofd2, text + tl, tcap - tl)) <= 0)
                break;
            tl += (size_t)r;
        }
        close(ofd2);
        if (!text)
            goto oom;
        int perr = parse_output_file(&c, text, tl, file_outs);
        free(text);
        if (perr < 0)
            goto done;
    }
    const char *k;
    json_t *v;
    json_object_foreach(file_outs, k, v) {
        if (reserved_output(k)) {
            char m[256];
            snprintf(m, sizeof m, "shell: $WFH_OUTPUT sets '%s', which is a built-in output; ignored", k);
            h->log(call, WFH_LOG_WARN, m, strlen(m));
            continue;
        }
        if (set_json(&c, k, json_incref(v)) < 0) {
            status = fail(&c, WFH_STEP_FAILED, "shell: the host refused output '%s' (too large?)", k);
            goto done;
        }
    }

    char tail[300];
    if (cancelled) {
        status = fail(&c, WFH_STEP_CANCELLED, "shell: cancelled");
    } else if (WIFSIGNALED(wstatus)) {
        int sig = WTERMSIG(wstatus);
        const char *ab = sigabbrev_np(sig);
        status = fail(&c, WFH_STEP_FAILED, "killed by SIG%s (%s)%s%s", ab ? ab : "?", strsignal(sig),
                      err.len ? ": " : "", err.len ? last_line(&err, tail, sizeof tail) : "");
    } else if (WEXITSTATUS(wstatus) != 0) {
        status = fail(&c, WFH_STEP_FAILED, "exit status %d%s%s", WEXITSTATUS(wstatus), err.len ? ": " : "",
                      err.len ? last_line(&err, tail, sizeof tail) : "");
    } else {
        status = WFH_STEP_OK;
    }
    goto done;
oom:
    status = fail(&c, WFH_STEP_FAILED, "shell: out of memory");
done:
    if (pid > 0) {
        kill(-pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    for (int i = 0; i < 2; i++) {
        if (outp[i] >= 0)
            close(outp[i]);
        if (errp[i] >= 0)
            close(errp[i]);
    }
    if (fa_ok)
        posix_spawn_file_actions_destroy(&fa);
    if (attr_ok)
        posix_spawnattr_destroy(&attr);
    if (tmpdir[0])
        rm_tree(tmpdir, outfile);
    free(out.buf);
    free(err.buf);
    free(argv);
    free(prog);
    free(cwd);
    env_free(&env);
    json_decref(file_outs);
    json_decref(wenv);
    json_decref(in);
    return status;
}

static const wfh_step_type types[] = {{
    sizeof(wfh_step_type),
    "shell",
    "run a script with /bin/sh -c, or a program with an argv and no shell",
    "{\"type\":\"object\",\"additionalProperties\":false,"
    "\"oneOf\":[{\"required\":[\"run\"]},{\"required\":[\"argv\"]}],"
    "\"properties\":{"
    "\"run\":{\"type\":\"string\",\"description\":\"script for /bin/sh -c\"},"
    "\"argv\":{\"type\":\"array\",\"items\":{\"type\":\"string\"},\"minItems\":1,"
    "\"description\":\"program and arguments, run without a shell\"},"
    "\"env\":{\"type\":\"object\",\"additionalProperties\":{\"type\":[\"string\",\"number\",\"boolean\"]},"
    "\"description\":\"extra environment variables\"},"
    "\"cwd\":{\"type\":\"string\",\"description\":\"working directory, relative to the workspace\"},"
    "\"max_output\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":6291456,"
    "\"description\":\"bytes of stdout and of stderr kept (default 1048576)\"}}}",
    "{\"stdout\":\"standard output (at most max_output bytes)\","
    "\"stderr\":\"standard error (at most max_output bytes)\","
    "\"stdout_truncated\":\"true if stdout was cut at max_output\","
    "\"stderr_truncated\":\"true if stderr was cut at max_output\","
    "\"exit_code\":\"the exit status (128+N if killed by signal N)\","
    "\"*\":\"every NAME=VALUE (or NAME<<DELIM) line the script appends to $WFH_OUTPUT\"}",
    "{\"run\":[\"/bin\",\"/usr/bin\",\"/usr/local/bin\",\"/sbin\",\"/usr/sbin\"],"
    "\"read\":[\"/bin\",\"/usr\",\"/lib\",\"/lib64\",\"/etc\"],"
    "\"env\":[\"PATH\",\"HOME\",\"USER\",\"LOGNAME\",\"LANG\",\"LC_ALL\",\"TZ\",\"TMPDIR\"]}",
    run_shell,
}};

static const wfh_plugin plugin = {
    WFH_PLUGIN_INIT,
    1,
    sizeof(wfh_step_type),
    "shell",
    "1.0.0",
    "shell commands and programs as workflow steps",
    types,
    NULL,
};

WFH_PLUGIN_EXPORT const wfh_plugin *wfh_plugin_entry_v1(void)
{
    return &plugin;
}
