/*
 * core/home.c - resolves and creates the wfhost home (see home.h for the rule). Shared
 * by the run store and the registry so both agree on where state lives.
 */
#include "home.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"

static int dup_join(const char *a, const char *b, char **out)
{
    size_t n = strlen(a) + strlen(b) + 1;
    char *p = malloc(n); /* owned by *out */
    if (!p)
        return wfh_error_set(WFH_ENOMEM, "home: out of memory");
    snprintf(p, n, "%s%s", a, b);
    *out = p;
    return 0;
}

#ifndef WFH_BUILD_DEV_HOME
#define WFH_BUILD_DEV_HOME ""
#endif
#ifndef WFH_BUILD_WFHOST
#define WFH_BUILD_WFHOST ""
#endif

/* True when this process is the build tree's wfhost itself (not an installed copy, and
 * not a test program that happens to sit next to it). */
static int is_build_tree_wfhost(void)
{
    char exe[4096];
    if (!WFH_BUILD_WFHOST[0] || !WFH_BUILD_DEV_HOME[0])
        return 0;
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return 0;
    exe[n] = '\0';
    return !strcmp(exe, WFH_BUILD_WFHOST);
}

int wfh_home_path(const char *explicit_dir, char **out)
{
    const char *env;
    *out = NULL;
    if (explicit_dir && *explicit_dir)
        return dup_join(explicit_dir, "", out);
    if ((env = getenv("WFH_HOME")) && *env)
        return dup_join(env, "", out);
    if (is_build_tree_wfhost())
        return dup_join(WFH_BUILD_DEV_HOME, "", out);
    if (geteuid() == 0)
        return dup_join("/var/lib/wfhost", "", out);
    /* XDG says a relative $XDG_DATA_HOME is invalid and must be ignored. */
    if ((env = getenv("XDG_DATA_HOME")) && env[0] == '/')
        return dup_join(env, "/wfhost", out);
    if ((env = getenv("HOME")) && *env)
        return dup_join(env, "/.local/share/wfhost", out);
    return wfh_error_set(WFH_EINVAL,
                         "home: cannot find a home directory: pass --home DIR or set WFH_HOME");
}

int wfh_home_ensure(const char *dir)
{
    int err = 0;
    struct stat st;
    /* Nearly always there already: one stat rather than a mkdir per path component
     * (a mkdir that fails with EEXIST still looks the name up and locks the parent for
     * writing; `wfhost exec` ensures two directories per run). */
    if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
        return 0;
    size_t n = strlen(dir);
    char *p = malloc(n + 1); /* owned: scratch copy cut at each '/' in turn */
    if (!p)
        return wfh_error_set(WFH_ENOMEM, "home: out of memory");
    memcpy(p, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (p[i] != '/' && p[i] != '\0')
            continue;
        char saved = p[i];
        p[i] = '\0';
        if (mkdir(p, 0700) < 0 && errno != EEXIST) {
            err = wfh_error_set(WFH_EIO, "%s: cannot create directory: %s", p, strerror(errno));
            goto done;
        }
        p[i] = saved;
    }
    if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
        err = wfh_error_set(WFH_EIO, "%s: not a directory", dir);
        goto done;
    }
done:
    free(p);
    return err;
}
