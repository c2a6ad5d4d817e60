/*
 * tests/unit/test_catalog.c - core/catalog.c against real plugins and the real runner.
 *
 * The test plugin directory (build/tests/plugins, from tests/abi/CMakeLists.txt) holds
 * good plugins in several versions and broken ones of every kind. Handed all of them,
 * the development commands' wfh_catalog_open_unsigned must keep the good, skip the
 * broken with a reason, and pick versions by @MAJOR and "newest"; the installer's
 * wfh_plugin_probe must give each broken one its exact reason. (exec's catalog comes
 * from the signed registry: tests/security/registry_*.sh.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <dirent.h>
#include <wfhost/plugin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "catalog.h"
#include "error.h"


/* This header's ABI and the next minor, as the refusals print them. */
#define STR_(x) #x
#define STR(x) STR_(x)
#define HOST_ABI STR(WFH_ABI_MAJOR) "." STR(WFH_ABI_MINOR)
#if WFH_ABI_MINOR == 1
#define NEXT_ABI "1.2"
#else
#error "update NEXT_ABI for this minor"
#endif
static char runner[4096], plugdir[4096];

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* wfh_catalog_open_unsigned on every *.so in @p dir (as `wfhost plugin check DIR/x.so`
 * would be handed them one by one). */
static int open_dir(const char *dir, wfh_catalog **out)
{
    char *paths[256]; /* owned strings */
    size_t n = 0;
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) && n < 256) {
        size_t len = strlen(e->d_name);
        if (len > 3 && !strcmp(e->d_name + len - 3, ".so")) {
            paths[n] = malloc(strlen(dir) + len + 2);
            assert_non_null(paths[n]);
            sprintf(paths[n++], "%s/%s", dir, e->d_name);
        }
    }
    closedir(d);
    qsort(paths, n, sizeof *paths, cmp_str);
    int err = wfh_catalog_open_unsigned((const char *const *)paths, n, out);
    for (size_t i = 0; i < n; i++)
        free(paths[i]);
    return err;
}

static const wfh_plugin_meta *plugin_named(const wfh_catalog *c, const char *name, const char *version)
{
    for (size_t i = 0; i < c->n_plugins; i++)
        if (!strcmp(c->plugins[i].name, name) && (!version || !strcmp(c->plugins[i].version, version)))
            return &c->plugins[i];
    return NULL;
}

static void test_scan_keeps_good_skips_broken(void **state)
{
    (void)state;
    wfh_catalog *c = NULL;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(open_dir(plugdir, &c), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    fprintf(stderr, "test_catalog: probed the test plugin directory in %.1f ms\n", ms);
    assert_non_null(c);
    assert_string_equal(c->runner_path, runner);
    assert_non_null(plugin_named(c, "fixture", "1.2.3"));
    assert_non_null(plugin_named(c, "fixture", "1.4.0"));
    assert_non_null(plugin_named(c, "fixture", "2.1.0"));
    assert_non_null(plugin_named(c, "frozen", "1.0.0")); /* built against the frozen 1.0 header */
    const wfh_plugin_meta *v = plugin_named(c, "variant", NULL);
    assert_non_null(v);
    assert_int_equal(v->abi_major, 1);
    assert_int_equal(v->abi_minor, WFH_ABI_MINOR);
    assert_int_equal(v->n_types, 1);
    assert_string_equal(v->types[0].name, "hello");
    assert_ptr_equal(v->types[0].plugin, v);
    assert_true(json_is_object(v->types[0].input_schema));
    assert_non_null(json_object_get(v->types[0].outputs, "greeting"));
    assert_true(v->path[0] == '/');
    /* Refused ones are absent: major 2, minor 1, bad names, bad schema, no entry... */
    for (size_t i = 0; i < c->n_plugins; i++) {
        assert_null(strstr(c->plugins[i].path, "abi_major2"));
        assert_null(strstr(c->plugins[i].path, "abi_minor1"));
        assert_null(strstr(c->plugins[i].path, "abi_no_entry"));
        assert_null(strstr(c->plugins[i].path, "abi_bad_"));
        assert_null(strstr(c->plugins[i].path, "abi_ctor_crash"));
        assert_null(strstr(c->plugins[i].path, "abi_long_nonzero"));
        assert_null(strstr(c->plugins[i].path, "abi_short"));
    }
    wfh_catalog_free(c);
}

static void test_find_by_major_and_newest(void **state)
{
    (void)state;
    wfh_catalog *c = NULL;
    assert_int_equal(open_dir(plugdir, &c), 0);
    const wfh_type_meta *t = wfh_catalog_find(c, "echo", -1);
    assert_non_null(t);
    assert_string_equal(t->plugin->version, "2.1.0");
    t = wfh_catalog_find(c, "echo", 1);
    assert_non_null(t);
    assert_string_equal(t->plugin->version, "1.4.0"); /* newest of the 1.x */
    t = wfh_catalog_find(c, "echo", 2);
    assert_non_null(t);
    assert_int_equal(t->plugin->version_major, 2);
    assert_null(wfh_catalog_find(c, "echo", 3));
    assert_string_equal(wfh_error_last(), "step type 'echo@3' is not installed; installed: echo@1, echo@2");
    assert_null(wfh_catalog_find(c, "nosuch", -1));
    assert_non_null(strstr(wfh_error_last(), "unknown step type 'nosuch' (known: "));
    assert_non_null(strstr(wfh_error_last(), "hello"));
    wfh_catalog_free(c);
}

static void test_probe_reasons(void **state)
{
    (void)state;
    static const struct {
        const char *file, *reason;
    } cases[] = {
        {"abi_major2.so", "plugin 'variant' (abi_major2.so) needs plugin ABI 2.0; this wfhost speaks " HOST_ABI ": "
                          "upgrade wfhost or use a 1.x build of the plugin"},
        {"abi_minor1.so", "needs plugin ABI " NEXT_ABI "; this wfhost speaks " HOST_ABI},
        {"abi_no_entry.so", "does not export wfh_plugin_entry_v1"},
        {"abi_exports_v2.so", "it exports wfh_plugin_entry_v2"},
        {"abi_bad_schema.so", "step type 'hello': input_schema is not valid JSON"},
        {"abi_ctor_crash.so", "crashed while loading: SIGSEGV"},
        {"abi_long_nonzero.so", "sets members this wfhost (ABI " HOST_ABI ", 64 bytes) does not know"},
        {"abi_short.so", "descriptor struct_size 48 is not plausible"},
        {"abi_bad_name.so", "name 'Bad Name' is not valid"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", plugdir, cases[i].file);
        wfh_plugin_meta m;
        int err = wfh_plugin_probe(runner, path, &m);
        if (err != WFH_EABI || !strstr(wfh_error_last(), cases[i].reason))
            fail_msg("%s: got %d '%s', want '%s'", cases[i].file, err, wfh_error_last(), cases[i].reason);
        wfh_plugin_meta_clear(&m);
    }
    wfh_plugin_meta m;
    assert_int_equal(wfh_plugin_probe(runner, "/nonexistent/x.so", &m), WFH_EABI);
    assert_non_null(strstr(wfh_error_last(), "x.so: cannot load"));
    assert_int_equal(wfh_plugin_probe("/nonexistent/runner", "/nonexistent/x.so", &m), WFH_EIO);
    assert_non_null(strstr(wfh_error_last(), "cannot start the step runner"));
    wfh_plugin_meta_clear(NULL);
}

/* The installer's form: the descriptor as the runner printed it, or the same reasons. */
static void test_probe_json(void **state)
{
    (void)state;
    char path[8192];
    json_t *d = NULL;
    snprintf(path, sizeof path, "%s/fixture.so", plugdir);
    assert_int_equal(wfh_plugin_probe_json(runner, path, &d), 0);
    assert_true(json_is_object(d));
    assert_string_equal(json_string_value(json_object_get(d, "name")), "fixture");
    assert_string_equal(json_string_value(json_object_get(d, "version")), "1.2.3");
    assert_true(json_array_size(json_object_get(d, "step_types")) > 0);
    json_decref(d);
    snprintf(path, sizeof path, "%s/abi_ctor_crash.so", plugdir);
    d = json_object(); /* overwritten with NULL on failure */
    json_t *was = d;
    assert_int_equal(wfh_plugin_probe_json(runner, path, &d), WFH_EABI);
    assert_null(d);
    json_decref(was);
    assert_non_null(strstr(wfh_error_last(), "crashed while loading: SIGSEGV"));
}

static void test_defaults_and_missing_file(void **state)
{
    (void)state;
    wfh_catalog *c = NULL;
    /* A file that is not there is skipped with a warning, like a broken one. */
    const char *missing[] = {"/nonexistent/plugins/x.so"};
    assert_int_equal(wfh_catalog_open_unsigned(missing, 1, &c), 0);
    assert_non_null(c);
    assert_int_equal(c->n_plugins, 0);
    wfh_catalog_free(c);
    c = NULL;
    assert_int_equal(wfh_catalog_open_unsigned(NULL, 0, &c), 0);
    assert_int_equal(c->n_plugins, 0);
    assert_null(wfh_catalog_find(c, "echo", -1));
    wfh_catalog_free(c);
    char *r = wfh_default_runner_path();
    assert_string_equal(r, runner);
    free(r);
    wfh_catalog_free(NULL);
}

static char tmpdir[256], cachefile[512];

static const char *version_in(const char *dir)
{
    static char v[64];
    wfh_catalog *c = NULL;
    assert_int_equal(open_dir(dir, &c), 0);
    assert_int_equal(c->n_plugins, 1);
    snprintf(v, sizeof v, "%s", c->plugins[0].version);
    wfh_catalog_free(c);
    return v;
}

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    assert_int_equal(system(cmd), 0);
}

/* The probe cache answers for unchanged files, and never for changed ones. */
static void test_probe_cache(void **state)
{
    (void)state;
    char dir[512];
    snprintf(dir, sizeof dir, "%s/plugins", tmpdir);
    sh("mkdir -p '%s' && cp '%s/fixture.so' '%s/p.so'", dir, plugdir, dir);
    assert_string_equal(version_in(dir), "1.2.3");
    json_t *cache = json_load_file(cachefile, 0, NULL);
    char key[1024];
    snprintf(key, sizeof key, "%s/p.so", dir);
    json_t *desc = json_object_get(json_object_get(json_object_get(cache, "entries"), key), "desc");
    assert_non_null(desc);
    /* Doctor the cached descriptor: if the next open shows it, it came from the cache. */
    json_object_set_new(desc, "version", json_string("9.9.9"));
    assert_int_equal(json_dump_file(cache, cachefile, 0), 0);
    json_decref(cache);
    assert_string_equal(version_in(dir), "9.9.9");
    /* Replacing the file (same size: only the version string differs) re-probes it. */
    usleep(10000);
    sh("cp '%s/fixture_2_1.so' '%s/p.so'", plugdir, dir);
    assert_string_equal(version_in(dir), "2.1.0");
    /* A corrupt cache is ignored and rewritten. */
    sh("echo garbage > '%s'", cachefile);
    assert_string_equal(version_in(dir), "2.1.0");
    cache = json_load_file(cachefile, 0, NULL);
    assert_non_null(cache);
    json_decref(cache);
    /* "off" neither reads nor writes it. */
    sh("rm -f '%s'", cachefile);
    setenv("WFH_PROBE_CACHE", "off", 1);
    assert_string_equal(version_in(dir), "2.1.0");
    assert_int_equal(access(cachefile, F_OK), -1);
    setenv("WFH_PROBE_CACHE", cachefile, 1);
}

/* A constructor that never returns costs one probe timeout, not a hung wfhost. */
static void test_probe_timeout(void **state)
{
    (void)state;
    char dir[8192], path[8400];
    snprintf(dir, sizeof dir, "%s/../plugins-hang", plugdir);
    snprintf(path, sizeof path, "%s/abi_ctor_hang.so", dir);
    setenv("WFH_PROBE_TIMEOUT_MS", "300", 1);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    wfh_plugin_meta m;
    assert_int_equal(wfh_plugin_probe(runner, path, &m), WFH_EABI);
    assert_non_null(strstr(wfh_error_last(), "abi_ctor_hang.so did not finish loading within 300 ms"));
    wfh_catalog *c = NULL;
    assert_int_equal(open_dir(dir, &c), 0);
    assert_int_equal(c->n_plugins, 0);
    wfh_catalog_free(c);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_true(t1.tv_sec - t0.tv_sec < 5);
    unsetenv("WFH_PROBE_TIMEOUT_MS");
}

int main(void)
{
    const char *build = getenv("WFH_BUILD");
    if (!build) {
        fprintf(stderr, "test_catalog: WFH_BUILD is not set (run through ctest)\n");
        return 1;
    }
    snprintf(runner, sizeof runner, "%s/bin/wfhost-runner", build);
    snprintf(plugdir, sizeof plugdir, "%s/tests/plugins", build);
    setenv("WFH_RUNNER", runner, 1);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/wfh-test-catalog.XXXXXX");
    if (!mkdtemp(tmpdir))
        return 1;
    snprintf(cachefile, sizeof cachefile, "%s/cache/probe-cache.json", tmpdir);
    setenv("WFH_PROBE_CACHE", cachefile, 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scan_keeps_good_skips_broken),
        cmocka_unit_test(test_find_by_major_and_newest),
        cmocka_unit_test(test_probe_reasons),
        cmocka_unit_test(test_probe_json),
        cmocka_unit_test(test_defaults_and_missing_file),
        cmocka_unit_test(test_probe_cache),
        cmocka_unit_test(test_probe_timeout),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "test_catalog: could not remove %s\n", tmpdir);
    return rc;
}
