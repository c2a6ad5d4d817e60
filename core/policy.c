/*
 * core/policy.c - the operator's sandbox policy (see policy.h for the file format).
 *
 * The host reads the policy once per run and, per step, turns "what the step type
 * requests" plus "what the operator grants" into the runner's "sandbox" request member.
 * Refusals carry the one `allow` line that would make them pass, so an operator never
 * has to guess the syntax. Built-in grants stand in for a policy nobody wrote: the
 * shell type may run programs from the system bin directories and read /usr; nothing
 * gets the network or a path outside the workspace unless the operator says so.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "error.h"
#include "home.h"
#include "policy.h"
#include "workflow.h"

enum { CAT_NET, CAT_READ, CAT_WRITE, CAT_RUN, CAT_ENV, CAT_N };
static const char *const cat_flag[CAT_N] = {"--allow-net", "--allow-read", "--allow-write",
                                            "--allow-run", "--allow-env"};
/* Keys in capabilities / narrowing objects, and in the request member. */
static const char *const cat_key[CAT_N] = {"network", "read", "write", "run", "env"};
static const char *const req_key[CAT_N] = {"net", "read", "write", "run", "env"};

enum { LIM_MEMORY, LIM_PIDS, LIM_CPU, LIM_WALL, LIM_OUTPUT, LIM_RESULT, LIM_N };
static const char *const lim_name[LIM_N] = {"memory", "pids", "cpu", "wall", "output", "result"};
static const char *const lim_key[LIM_N] = {"memory", "pids", "cpu_ms", "wall_ms", "output",
                                           "result"};

static const char *const profile_name[3] = {"strict", "process", "none"};

typedef struct strv {
    char **v; /* owned array of owned strings */
    size_t n;
} strv;

typedef struct grant {
    char *type;              /* owned: a step type or "*" */
    strv cat[CAT_N];
    int net_all;
    long long lim[LIM_N];    /* -1: not set */
    int profile;             /* -1: not set */
} grant;

struct wfh_policy {
    char *path;              /* owned, or NULL for built-in */
    grant *g;                /* owned array */
    size_t n;
    grant cli;               /* --allow-* flags of this run, for every type */
    char *workspace;         /* owned, may be NULL */
};

static int strv_add(strv *s, const char *str, size_t len)
{
    char **nv = realloc(s->v, (s->n + 1) * sizeof *nv);
    if (!nv)
        return wfh_error_set(WFH_ENOMEM, "policy: out of memory");
    s->v = nv;
    if (!(s->v[s->n] = strndup(str, len)))
        return wfh_error_set(WFH_ENOMEM, "policy: out of memory");
    s->n++;
    return 0;
}

static void grant_clear(grant *g)
{
    free(g->type);
    for (int c = 0; c < CAT_N; c++) {
        for (size_t i = 0; i < g->cat[c].n; i++)
            free(g->cat[c].v[i]);
        free(g->cat[c].v);
    }
}

static void grant_init(grant *g)
{
    memset(g, 0, sizeof *g);
    for (int i = 0; i < LIM_N; i++)
        g->lim[i] = -1;
    g->profile = -1;
}

void wfh_policy_free(wfh_policy *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n; i++)
        grant_clear(&p->g[i]);
    free(p->g);
    grant_clear(&p->cli);
    free(p->path);
    free(p->workspace);
    free(p);
}

int wfh_policy_new(wfh_policy **out)
{
    *out = calloc(1, sizeof **out);
    if (!*out)
        return wfh_error_set(WFH_ENOMEM, "policy: out of memory");
    grant_init(&(*out)->cli);
    return 0;
}

const char *wfh_policy_path(const wfh_policy *p)
{
    return p && p->path ? p->path : "(built-in)";
}

/* The grant for @p type, created on first use. Borrowed from @p p. */
static grant *grant_of(wfh_policy *p, const char *type, size_t len)
{
    for (size_t i = 0; i < p->n; i++)
        if (strlen(p->g[i].type) == len && !strncmp(p->g[i].type, type, len))
            return &p->g[i];
    grant *ng = realloc(p->g, (p->n + 1) * sizeof *ng);
    if (!ng)
        return NULL;
    p->g = ng;
    grant_init(&p->g[p->n]);
    if (!(p->g[p->n].type = strndup(type, len)))
        return NULL;
    return &p->g[p->n++];
}

/* A network grant: HOST, HOST:PORT or [V6]:PORT, the port 1-65535 when given. */
static int net_item_ok(const char *v, size_t n)
{
    const char *colon = NULL;
    for (size_t i = 0; i < n; i++)
        if (v[i] == ':')
            colon = v + i;
    if (v[0] == '[') {
        const char *close = memchr(v, ']', n);
        if (!close || close == v + 1)
            return 0;
        if (close + 1 == v + n)
            return 1;
        colon = close[1] == ':' ? close + 1 : NULL;
        if (!colon)
            return 0;
    } else if (!colon) {
        return 1;
    }
    if (colon == v)
        return 0;
    long port = 0;
    const char *q = colon + 1;
    for (; q < v + n && *q >= '0' && *q <= '9' && port <= 65535; q++)
        port = port * 10 + (*q - '0');
    return q == v + n && q > colon + 1 && port >= 1 && port <= 65535;
}

/* "--allow-read=/a,/b" (or "--allow-net" alone) into @p g. Returns 0, 1 if the flag is
 * unknown, 2 for a relative path, 3 for a malformed HOST:PORT, or a negative code. */
static int add_flag(grant *g, const char *flag, size_t len)
{
    for (int c = 0; c < CAT_N; c++) {
        size_t fl = strlen(cat_flag[c]);
        if (len < fl || strncmp(flag, cat_flag[c], fl) != 0 || (len > fl && flag[fl] != '='))
            continue;
        if (len == fl) {
            if (c != CAT_NET)
                return 1;
            g->net_all = 1;
            return 0;
        }
        const char *v = flag + fl + 1, *end = flag + len;
        while (v < end) {
            const char *comma = memchr(v, ',', (size_t)(end - v));
            size_t n = comma ? (size_t)(comma - v) : (size_t)(end - v);
            if (n) {
                if (c != CAT_NET && c != CAT_ENV && v[0] != '/')
                    return 2;
                if (c == CAT_NET && !net_item_ok(v, n))
                    return 3;
                int err = strv_add(&g->cat[c], v, n);
                if (err < 0)
                    return err;
            }
            v += n + 1;
        }
        return 0;
    }
    return 1;
}

/* "256M", "30s", "64" into a number in the limit's unit (bytes, ms or a count). */
static int parse_limit(int which, const char *v, size_t len, long long *out)
{
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (end == v || n <= 0 || errno)
        return -1;
    size_t rest = len - (size_t)(end - v);
    long long mul = 1;
    if (which == LIM_CPU || which == LIM_WALL) {
        mul = 1000;
        if (rest == 2 && !strncmp(end, "ms", 2))
            mul = 1;
        else if (rest == 1 && *end == 's')
            mul = 1000;
        else if (rest == 1 && *end == 'm')
            mul = 60000;
        else if (rest == 1 && *end == 'h')
            mul = 3600000;
        else if (rest)
            return -1;
    } else if (which != LIM_PIDS) {
        if (rest == 1 && (*end == 'K' || *end == 'k'))
            mul = 1ll << 10;
        else if (rest == 1 && *end == 'M')
            mul = 1ll << 20;
        else if (rest == 1 && *end == 'G')
            mul = 1ll << 30;
        else if (rest)
            return -1;
    } else if (rest) {
        return -1;
    }
    if (n > INT64_MAX / mul)
        return -1;
    *out = n * mul;
    return 0;
}

int wfh_policy_parse(wfh_policy *p, const char *name, const char *text)
{
    unsigned line = 0;
    for (const char *ln = text; ln && *ln;) {
        line++;
        const char *eol = strchr(ln, '\n');
        size_t llen = eol ? (size_t)(eol - ln) : strlen(ln);
        const char *tok[64];
        size_t tlen[64], nt = 0;
        for (size_t i = 0; i < llen && nt < 64;) {
            if (ln[i] == '#')
                break;
            if (ln[i] == ' ' || ln[i] == '\t' || ln[i] == '\r') {
                i++;
                continue;
            }
            tok[nt] = ln + i;
            while (i < llen && ln[i] != ' ' && ln[i] != '\t' && ln[i] != '\r')
                i++;
            tlen[nt] = (size_t)(ln + i - tok[nt]);
            nt++;
        }
#define COL(t) ((unsigned)((t) - ln) + 1)
        if (nt == 0) {
            ln = eol ? eol + 1 : NULL;
            continue;
        }
        int is_allow = tlen[0] == 5 && !strncmp(tok[0], "allow", 5);
        int is_limit = tlen[0] == 5 && !strncmp(tok[0], "limit", 5);
        int is_profile = tlen[0] == 7 && !strncmp(tok[0], "profile", 7);
        if (!is_allow && !is_limit && !is_profile)
            return wfh_error_set(WFH_EPARSE, "%s:%u:%u: expected allow, limit or profile, not '%.*s'",
                                 name, line, COL(tok[0]), (int)tlen[0], tok[0]);
        if (nt < 2)
            return wfh_error_set(WFH_EPARSE, "%s:%u:%u: '%.*s' needs a step type (or *)", name,
                                 line, COL(tok[0]) + (unsigned)tlen[0], (int)tlen[0], tok[0]);
        grant *g = grant_of(p, tok[1], tlen[1]);
        if (!g)
            return wfh_error_set(WFH_ENOMEM, "policy: out of memory");
        if (is_profile) {
            int prof = -1;
            for (int i = 0; i < 3 && nt == 3; i++)
                if (tlen[2] == strlen(profile_name[i]) && !strncmp(tok[2], profile_name[i], tlen[2]))
                    prof = i;
            if (prof < 0)
                return wfh_error_set(WFH_EPARSE, "%s:%u:%u: profile must be one of strict, process, none",
                                     name, line, nt > 2 ? COL(tok[2]) : COL(tok[1]));
            g->profile = prof;
        }
        for (size_t t = 2; is_allow && t < nt; t++) {
            int r = add_flag(g, tok[t], tlen[t]);
            if (r < 0)
                return r;
            if (r == 2)
                return wfh_error_set(WFH_EPARSE, "%s:%u:%u: paths must be absolute in '%.*s'", name,
                                     line, COL(tok[t]), (int)tlen[t], tok[t]);
            if (r == 3)
                return wfh_error_set(WFH_EPARSE, "%s:%u:%u: '%.*s': network grants are HOST or "
                                     "HOST:PORT with a port from 1 to 65535", name, line,
                                     COL(tok[t]), (int)tlen[t], tok[t]);
            if (r)
                return wfh_error_set(WFH_EPARSE, "%s:%u:%u: unknown grant '%.*s' (use --allow-net=, "
                                     "--allow-read=, --allow-write=, --allow-run=, --allow-env=)",
                                     name, line, COL(tok[t]), (int)tlen[t], tok[t]);
        }
        for (size_t t = 2; is_limit && t < nt; t++) {
            const char *eq = memchr(tok[t], '=', tlen[t]);
            int which = -1;
            for (int i = 0; eq && i < LIM_N; i++)
                if ((size_t)(eq - tok[t]) == strlen(lim_name[i]) &&
                    !strncmp(tok[t], lim_name[i], strlen(lim_name[i])))
                    which = i;
            if (which < 0)
                return wfh_error_set(WFH_EPARSE, "%s:%u:%u: unknown limit '%.*s' (memory=, pids=, cpu=, "
                                     "wall=, output=, result=)", name, line, COL(tok[t]),
                                     (int)tlen[t], tok[t]);
            if (parse_limit(which, eq + 1, tlen[t] - (size_t)(eq + 1 - tok[t]), &g->lim[which]) < 0)
                return wfh_error_set(WFH_EPARSE, "%s:%u:%u: bad value for %s (e.g. %s)", name, line,
                                     COL(eq + 1), lim_name[which],
                                     which == LIM_PIDS ? "64" : which == LIM_CPU || which == LIM_WALL
                                         ? "30s" : "256M");
        }
#undef COL
        ln = eol ? eol + 1 : NULL;
    }
    return 0;
}

int wfh_policy_load(const char *path, wfh_policy **out)
{
    return wfh_policy_load_in(NULL, path, out);
}

int wfh_policy_load_in(const char *home_dir, const char *path, wfh_policy **out)
{
    int err = 0;
    char *home = NULL, *file = NULL, *text = NULL; /* owned */
    FILE *f = NULL;
    wfh_policy *p = NULL;
    *out = NULL;
    if ((err = wfh_policy_new(&p)) < 0)
        goto done;
    if (!path) {
        if ((err = wfh_home_path(home_dir, &home)) < 0)
            goto done;
        size_t len = strlen(home) + sizeof "/policy";
        if (!(file = malloc(len))) {
            err = wfh_error_set(WFH_ENOMEM, "policy: out of memory");
            goto done;
        }
        snprintf(file, len, "%s/policy", home);
    } else if (!(file = strdup(path))) {
        err = wfh_error_set(WFH_ENOMEM, "policy: out of memory");
        goto done;
    }
    f = fopen(file, "re");
    if (!f) {
        if (!path && errno == ENOENT) {
            /* Nobody wrote a policy: built-in defaults, but refusals still name the
             * file to create. */
            p->path = file;
            file = NULL;
            goto ok;
        }
        err = wfh_error_set(WFH_EIO, "%s: cannot read the policy: %s", file, strerror(errno));
        goto done;
    }
    size_t cap = 4096, len = 0;
    if (!(text = malloc(cap))) {
        err = wfh_error_set(WFH_ENOMEM, "policy: out of memory");
        goto done;
    }
    for (size_t n; (n = fread(text + len, 1, cap - len - 1, f)) > 0;) {
        len += n;
        if (len + 1 == cap) {
            char *nt = cap < (1u << 24) ? realloc(text, cap * 2) : NULL;
            if (!nt) {
                err = wfh_error_set(WFH_EINVAL, "%s: policy file too large", file);
                goto done;
            }
            text = nt;
            cap *= 2;
        }
    }
    text[len] = '\0';
    if (ferror(f)) {
        err = wfh_error_set(WFH_EIO, "%s: read error", file);
        goto done;
    }
    if ((err = wfh_policy_parse(p, file, text)) < 0)
        goto done;
    p->path = file;
    file = NULL;
ok:
    *out = p;
    p = NULL;
done:
    if (f)
        fclose(f);
    free(text);
    free(file);
    free(home);
    wfh_policy_free(p);
    return err;
}

int wfh_policy_for_run(const char *home_dir, const char *path, const char *const *allows,
                       size_t n_allows, const char *workspace, wfh_policy **out)
{
    wfh_policy *p = NULL; /* owned until *out */
    char *ws = NULL;      /* owned */
    int err = wfh_policy_load_in(home_dir, path, &p);
    *out = NULL;
    for (size_t k = 0; err == 0 && k < n_allows; k++)
        err = wfh_policy_allow_flag(p, allows[k]);
    if (err < 0)
        goto done;
    /* Landlock and the bind mounts under /tmp need the real, absolute path. */
    if (!(ws = realpath(workspace ? workspace : ".", NULL))) {
        err = wfh_error_set(errno == ENOMEM ? WFH_ENOMEM : WFH_EUSAGE,
                            "workspace %s: %s", workspace ? workspace : "(the current directory)",
                            strerror(errno));
        goto done;
    }
    if ((err = wfh_policy_set_workspace(p, ws)) < 0)
        goto done;
    *out = p;
    p = NULL;
done:
    free(ws);
    wfh_policy_free(p);
    return err;
}

const char *wfh_policy_workspace(const wfh_policy *p)
{
    return p ? p->workspace : NULL;
}

int wfh_policy_allow_flag(wfh_policy *p, const char *flag)
{
    int r = add_flag(&p->cli, flag, strlen(flag));
    if (r == 3)
        return wfh_error_set(WFH_EUSAGE, "%s: network grants are HOST or HOST:PORT with a port "
                             "from 1 to 65535", flag);
    if (r == 1 || r == 2)
        return wfh_error_set(WFH_EUSAGE, "%s: %s", flag,
                             r == 2 ? "paths must be absolute"
                                    : "unknown grant (use --allow-net, --allow-read=, --allow-write=, "
                                      "--allow-run=, --allow-env=)");
    return r;
}

int wfh_policy_set_workspace(wfh_policy *p, const char *dir)
{
    free(p->workspace);
    p->workspace = dir ? strdup(dir) : NULL;
    if (dir && !p->workspace)
        return wfh_error_set(WFH_ENOMEM, "policy: out of memory");
    return 0;
}

/* ---- deciding ---------------------------------------------------------------- */

/* Built-in grants: what a step type may have on a machine nobody configured. */
static const char *const shell_run[] = {"/usr/bin", "/bin", "/usr/local/bin", "/usr/sbin", "/sbin", NULL};
/* /etc is readable for the shell because programs need it; under strict the runner
 * masks the secrets in it (shadow, sudoers, ssh host keys). */
static const char *const shell_read[] = {"/bin", "/usr", "/lib", "/lib64", "/etc", NULL};
/* The basics every script expects; HOME and TMPDIR are set by the runner under strict
 * (workspace, private /tmp), the rest are not secrets. */
static const char *const shell_env[] = {"PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL",
                                        "TZ", "TMPDIR", NULL};

static int path_covers(const char *g, const char *r)
{
    size_t n = strlen(g);
    while (n > 1 && g[n - 1] == '/')
        n--;
    if (n == 1 && g[0] == '/')
        return 1;
    return !strncmp(g, r, n) && (r[n] == '\0' || r[n] == '/');
}

/* Deno: a host grant covers every port of that host; "*" covers everything. */
static int net_covers(const char *g, const char *r)
{
    if (!strcmp(g, "*") || !strcmp(g, r))
        return 1;
    const char *colon = strrchr(r, ':');
    return colon && !strchr(g, ':') && strlen(g) == (size_t)(colon - r) && !strncmp(g, r, strlen(g));
}

static int grant_covers(const grant *g, int c, const char *item)
{
    if (!g)
        return 0;
    if (c == CAT_NET && g->net_all)
        return 1;
    for (size_t i = 0; i < g->cat[c].n; i++) {
        const char *gi = g->cat[c].v[i];
        if (c == CAT_NET ? net_covers(gi, item) : c == CAT_ENV ? !strcmp(gi, item) : path_covers(gi, item))
            return 1;
    }
    return 0;
}

static const grant *find_grant(const wfh_policy *p, const char *type)
{
    for (size_t i = 0; i < p->n; i++)
        if (!strcmp(p->g[i].type, type))
            return &p->g[i];
    return NULL;
}

static int covered(const wfh_policy *p, const char *type, int c, const char *item)
{
    if (grant_covers(find_grant(p, type), c, item) || grant_covers(find_grant(p, "*"), c, item) ||
        grant_covers(&p->cli, c, item))
        return 1;
    if (p->workspace && (c == CAT_READ || c == CAT_WRITE) && path_covers(p->workspace, item))
        return 1;
    if (!strcmp(type, "shell")) {
        const char *const *def = c == CAT_RUN    ? shell_run
                                 : c == CAT_READ ? shell_read
                                 : c == CAT_ENV  ? shell_env
                                                 : NULL;
        for (size_t i = 0; def && def[i]; i++)
            if (c == CAT_ENV ? !strcmp(def[i], item) : path_covers(def[i], item))
                return 1;
    }
    return 0;
}

/* The items of category @p c that @p obj asks for, as a JSON array (new reference),
 * json_true() for "network": true, or NULL when absent. WFH_EINVAL if malformed. */
static int items_of(const json_t *obj, int c, const char *what, json_t **out)
{
    *out = NULL;
    const json_t *v = json_object_get(obj, cat_key[c]);
    if (!v && c == CAT_NET)
        v = json_object_get(obj, "net");
    if (c == CAT_ENV) {
        /* secrets are granted like env names: both reach the step only by name. */
        const json_t *s = json_object_get(obj, "secrets");
        if (s && v && json_is_array(v) && json_is_array(s)) {
            json_t *both = json_copy((json_t *)v);
            json_array_extend(both, (json_t *)s);
            *out = both;
            goto check;
        }
        if (!v)
            v = s;
    }
    if (!v || json_is_null(v) || json_is_false(v))
        return 0;
    if (c == CAT_NET && json_is_true(v)) {
        *out = json_true();
        return 0;
    }
    *out = json_incref((json_t *)v);
check:
    if (!json_is_array(*out))
        goto bad;
    for (size_t i = 0; i < json_array_size(*out); i++) {
        const char *s = json_string_value(json_array_get(*out, i));
        if (!s || !*s || (c != CAT_NET && c != CAT_ENV && s[0] != '/'))
            goto bad;
    }
    return 0;
bad:
    json_decref(*out);
    *out = NULL;
    return wfh_error_set(WFH_EINVAL, "%s: \"%s\" must be a list of %s", what, cat_key[c],
                         c == CAT_NET ? "HOST:PORT strings (or true)"
                         : c == CAT_ENV ? "names" : "absolute paths");
}

static int pick_profile(const wfh_policy *p, const char *type)
{
    const grant *g = find_grant(p, type), *all = find_grant(p, "*");
    if (g && g->profile >= 0)
        return g->profile;
    if (all && all->profile >= 0)
        return all->profile;
    return 0; /* strict */
}

static long long pick_limit(const wfh_policy *p, const char *type, int i)
{
    const grant *g = find_grant(p, type), *all = find_grant(p, "*");
    if (g && g->lim[i] > 0)
        return g->lim[i];
    if (all && all->lim[i] > 0)
        return all->lim[i];
    return -1;
}

int wfh_policy_grant_for(const wfh_policy *p, const char *step_id, const char *type,
                         const json_t *requested, const json_t *narrow, json_t **out)
{
    int err = 0;
    char what[256];
    char missing[2048] = ""; /* the flags of the `allow` line to add */
    size_t mlen = 0;
    int net_hint = 0;
    json_t *res = json_object(); /* owned until *out */
    json_t *items = NULL, *nitems = NULL;
    *out = NULL;
    snprintf(what, sizeof what, "step '%s' (%s)", step_id, type);
    if (!res)
        return wfh_error_set(WFH_ENOMEM, "policy: out of memory");
    if ((requested && !json_is_object(requested)) || (narrow && !json_is_object(narrow))) {
        err = wfh_error_set(WFH_EINVAL, "%s: capabilities and sandbox narrowing must be objects", what);
        goto done;
    }

    for (int c = 0; c < CAT_N; c++) {
        if ((err = items_of(requested, c, what, &items)) < 0)
            goto done;
        if (narrow && (err = items_of(narrow, c, what, &nitems)) < 0)
            goto done;
        /* A narrowing that names a category and grants nothing in it (false, []) leaves
         * the step without it. */
        if (!nitems && narrow &&
            (json_object_get(narrow, cat_key[c]) || json_object_get(narrow, req_key[c]) ||
             (c == CAT_ENV && json_object_get(narrow, "secrets"))) &&
            !(nitems = json_array())) {
            err = wfh_error_set(WFH_ENOMEM, "policy: out of memory");
            goto done;
        }
        /* 1. Everything the type requests must be granted: collect what is not, as the
         *    flags of the one `allow` line that would grant it. */
        int net_all = 0; /* the network is granted without a target list */
        int req_any = items && json_is_true(items);
        int first = 1;
        for (size_t i = 0; items && json_is_array(items) && i < json_array_size(items); i++) {
            const char *it = json_string_value(json_array_get(items, i));
            if (covered(p, type, c, it))
                continue;
            int n = snprintf(missing + mlen, sizeof missing - mlen, "%s%s%s", first ? " " : ",",
                             first ? cat_flag[c] : "", first ? "=" : "");
            mlen += n > 0 && (size_t)n < sizeof missing - mlen ? (size_t)n : 0;
            n = snprintf(missing + mlen, sizeof missing - mlen, "%s", it);
            mlen += n > 0 && (size_t)n < sizeof missing - mlen ? (size_t)n : 0;
            first = 0;
        }
        /* 2. The step gets what it requests plus what the operator granted its type (or
         *    every type, or this run): a shell script's paths cannot be declared ahead. */
        json_t *eff = json_array(); /* owned: strings, no duplicates */
        if (!eff) {
            err = wfh_error_set(WFH_ENOMEM, "policy: out of memory");
            goto done;
        }
        const grant *gs[3] = {find_grant(p, type), find_grant(p, "*"), &p->cli};
        for (int k = -1; k < 3; k++) {
            size_t n = k < 0 ? (items && json_is_array(items) ? json_array_size(items) : 0)
                             : gs[k] ? gs[k]->cat[c].n : 0;
            if (k >= 0 && gs[k] && c == CAT_NET && gs[k]->net_all)
                net_all = 1;
            for (size_t i = 0; i < n; i++) {
                const char *it = k < 0 ? json_string_value(json_array_get(items, i)) : gs[k]->cat[c].v[i];
                int dup = 0;
                for (size_t j = 0; j < json_array_size(eff) && !dup; j++)
                    dup = !strcmp(json_string_value(json_array_get(eff, j)), it);
                if (!dup)
                    json_array_append_new(eff, json_string(it));
            }
        }
        /* "network": true means the step's inputs choose the targets: a host:port list
         * granted to its type (or all, or this run) satisfies it, and the runner and the
         * plugin (grant_json) then hold the step to that list. */
        if (req_any && !net_all && !json_array_size(eff)) {
            int n = snprintf(missing + mlen, sizeof missing - mlen, " --allow-net=HOST:PORT");
            mlen += n > 0 && (size_t)n < sizeof missing - mlen ? (size_t)n : 0;
            net_hint = 1;
        }
        /* 3. A narrowing keeps part of that, never more. */
        if (nitems) {
            if (json_is_true(nitems) && !net_all) {
                json_decref(eff);
                err = wfh_error_set(WFH_ESECURITY, "%s: sandbox narrowing asks for any network, "
                                    "more than the step is granted (narrowing never widens)", what);
                goto done;
            }
            for (size_t i = 0; json_is_array(nitems) && i < json_array_size(nitems); i++) {
                const char *it = json_string_value(json_array_get(nitems, i));
                int in = c == CAT_NET && net_all;
                for (size_t j = 0; !in && j < json_array_size(eff); j++) {
                    const char *g = json_string_value(json_array_get(eff, j));
                    in = c == CAT_NET ? net_covers(g, it) : c == CAT_ENV ? !strcmp(g, it) : path_covers(g, it);
                }
                if (!in) {
                    json_decref(eff);
                    err = wfh_error_set(WFH_ESECURITY, "%s: sandbox narrowing asks for %s %s, which "
                                        "the step is not granted (narrowing never widens)", what,
                                        req_key[c], it);
                    goto done;
                }
            }
            if (json_is_array(nitems)) {
                json_decref(eff);
                eff = json_incref(nitems);
                net_all = 0;
            }
        }
        if (c == CAT_NET && net_all) {
            json_object_set_new(res, "net", json_true());
            json_decref(eff);
        } else if (c == CAT_ENV) {
            /* The values travel in the request (the control channel), never through the
             * runner's inherited environment. */
            json_t *vars = json_object();
            for (size_t i = 0; vars && i < json_array_size(eff); i++) {
                const char *name = json_string_value(json_array_get(eff, i));
                const char *v = getenv(name);
                if (v)
                    json_object_set_new(vars, name, json_string(v));
            }
            json_decref(eff);
            json_object_set_new(res, "env", vars);
        } else {
            json_object_set_new(res, req_key[c], eff);
        }
        json_decref(items);
        json_decref(nitems);
        items = nitems = NULL;
    }
    if (mlen) {
        err = wfh_error_set(WFH_ESECURITY, "%s: requested but not granted:%s%s; to allow it, add "
                            "this line to %s: allow %s%s", what, missing,
                            net_hint ? " (HOST:PORT: each target its inputs reach, e.g. "
                                       "127.0.0.1:8080; --allow-net alone grants any)" : "",
                            p->path ? p->path : "the policy file (wfhost home/policy)", type, missing);
        goto done;
    }

    int prof = pick_profile(p, type);
    const char *np = narrow ? json_string_value(json_object_get(narrow, "profile")) : NULL;
    if (np) {
        int want = -1;
        for (int i = 0; i < 3; i++)
            if (!strcmp(np, profile_name[i]))
                want = i;
        if (want < 0) {
            err = wfh_error_set(WFH_EINVAL, "%s: unknown sandbox profile '%s'", what, np);
            goto done;
        }
        /* strict(0) < process(1) < none(2) in what they allow: only a smaller one. */
        if (want > prof) {
            err = wfh_error_set(WFH_ESECURITY, "%s: sandbox profile '%s' is weaker than the "
                                "policy's '%s' (narrowing never widens)", what, np, profile_name[prof]);
            goto done;
        }
        prof = want;
    }
    json_object_set_new(res, "profile", json_string(profile_name[prof]));
    if (p->workspace)
        json_object_set_new(res, "workspace", json_string(p->workspace));
    json_t *lim = json_object();
    const json_t *nl = narrow ? json_object_get(narrow, "limits") : NULL;
    for (int i = 0; i < LIM_N; i++) {
        long long v = pick_limit(p, type, i);
        const json_t *nv = json_object_get(nl, lim_key[i]);
        if (nv && json_is_integer(nv) && json_integer_value(nv) > 0 &&
            (v < 0 || json_integer_value(nv) < v))
            v = json_integer_value(nv);
        if (v > 0)
            json_object_set_new(lim, lim_key[i], json_integer(v));
    }
    json_object_set_new(res, "limits", lim);
    *out = res;
    res = NULL;
done:
    json_decref(items);
    json_decref(nitems);
    json_decref(res);
    return err;
}

/* ---- literal targets ------------------------------------------------------------ */

/* "http://user@host:8080/path" -> "host:8080" in @p out (default port per scheme).
 * Returns 1 for a URL of a scheme that reaches the network over TCP, else 0. */
static int url_target(const char *u, char *out, size_t cap)
{
    static const struct { const char *scheme; unsigned port; } schemes[] = {
        {"http", 80}, {"https", 443}, {"ws", 80}, {"wss", 443}, {"postgres", 5432},
        {"postgresql", 5432}, {"mysql", 3306}, {"redis", 6379}};
    const char *sep = strstr(u, "://");
    unsigned port = 0;
    for (size_t i = 0; sep && i < sizeof schemes / sizeof schemes[0]; i++)
        if ((size_t)(sep - u) == strlen(schemes[i].scheme) &&
            !strncasecmp(u, schemes[i].scheme, (size_t)(sep - u)))
            port = schemes[i].port;
    if (!port)
        return 0;
    const char *h = sep + 3, *end = h + strcspn(h, "/?#");
    const char *at = memchr(h, '@', (size_t)(end - h));
    if (at)
        h = at + 1;
    const char *hend;
    if (*h == '[') {
        hend = memchr(h, ']', (size_t)(end - h));
        if (!hend)
            return 0;
        hend++;
    } else {
        hend = h + strcspn(h, ":/?#");
        if (hend > end)
            hend = end;
    }
    if (hend == h)
        return 0;
    if (hend < end && *hend == ':') {
        char *pe = NULL;
        long pp = strtol(hend + 1, &pe, 10);
        if (pe != end || pp < 1 || pp > 65535)
            return 0;
        port = (unsigned)pp;
    }
    int n = snprintf(out, cap, "%.*s:%u", (int)(hend - h), h, port);
    return n > 0 && (size_t)n < cap;
}

/* Is @p target one of the comma-separated entries of @p list (whole entries: "h:9" is
 * not in "h:90")? */
static int listed(const char *list, const char *target)
{
    size_t tl = strlen(target);
    for (const char *e = list; *e; e += strcspn(e, ","), e += *e == ',')
        if (strcspn(e, ",") == tl && !strncmp(e, target, tl))
            return 1;
    return 0;
}

int wfh_policy_grant_for_step(const wfh_policy *p, const char *step_id, const char *type,
                              const json_t *requested, const json_t *narrow,
                              const struct wfh_value *with, json_t **out)
{
    /* A type whose inputs choose its targets ("network": true): where the step names a
     * target literally (a url in its `with`), check it now, so the refusal can give the
     * exact line instead of a placeholder. Targets computed at run time are held to
     * the grant by the runner and the plugin. */
    const json_t *net = json_object_get(requested, "network");
    char missing[1024] = "";
    size_t mlen = 0;
    for (size_t i = 0; json_is_true(net) && with && with->kind == WFH_V_OBJECT && i < with->n; i++) {
        const wfh_value *v = with->items[i];
        const char *u = v && v->kind == WFH_V_LITERAL ? json_string_value(v->literal) : NULL;
        char target[300];
        if (!u || !url_target(u, target, sizeof target) || covered(p, type, CAT_NET, target) ||
            listed(missing, target))
            continue;
        int n = snprintf(missing + mlen, sizeof missing - mlen, "%s%s", mlen ? "," : "", target);
        if (n > 0 && (size_t)n < sizeof missing - mlen)
            mlen += (size_t)n;
        else
            missing[mlen] = '\0'; /* no room: never name half a target */
    }
    if (mlen) {
        *out = NULL;
        return wfh_error_set(WFH_ESECURITY, "step '%s' (%s): its inputs reach %s, which is not "
                             "granted; to allow it, pass --allow-net=%s or add this line to %s: "
                             "allow %s --allow-net=%s", step_id, type, missing, missing,
                             p->path ? p->path : "the policy file (wfhost home/policy)", type,
                             missing);
    }
    return wfh_policy_grant_for(p, step_id, type, requested, narrow, out);
}
