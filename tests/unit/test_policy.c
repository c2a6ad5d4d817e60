/*
 * tests/unit/test_policy.c - the operator policy: parsing with positions, grants
 * covering requests, the exact line to add when they do not, narrowing that can only
 * tighten, and limits/profile precedence.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "error.h"
#include "policy.h"
#include "workflow.h"

static wfh_policy *policy_of(const char *text)
{
    wfh_policy *p = NULL;
    assert_int_equal(wfh_policy_new(&p), 0);
    assert_int_equal(wfh_policy_parse(p, "pol", text), 0);
    return p;
}

static json_t *caps(const char *text)
{
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    assert_non_null(j);
    return j;
}

static void test_parse_errors_have_positions(void **state)
{
    (void)state;
    wfh_policy *p = NULL;
    assert_int_equal(wfh_policy_new(&p), 0);
    assert_int_equal(wfh_policy_parse(p, "pol", "# ok\nallow http --allow-nett=x\n"), WFH_EPARSE);
    assert_string_equal(wfh_error_last(),
                        "pol:2:12: unknown grant '--allow-nett=x' (use --allow-net=, --allow-read=, "
                        "--allow-write=, --allow-run=, --allow-env=)");
    assert_int_equal(wfh_policy_parse(p, "pol", "limit shell memory=lots\n"), WFH_EPARSE);
    assert_string_equal(wfh_error_last(), "pol:1:20: bad value for memory (e.g. 256M)");
    assert_int_equal(wfh_policy_parse(p, "pol", "grant x\n"), WFH_EPARSE);
    assert_int_equal(wfh_policy_parse(p, "pol", "allow x --allow-read=relative\n"), WFH_EPARSE);
    assert_int_equal(wfh_policy_parse(p, "pol", "profile x lax\n"), WFH_EPARSE);
    wfh_policy_free(p);
}

static void test_not_granted_names_line_to_add(void **state)
{
    (void)state;
    wfh_policy *p = policy_of("allow http --allow-net=api.example.com:443\n");
    json_t *c = caps("{\"network\":[\"api.example.com:443\",\"evil.example:80\"],"
                     "\"read\":[\"/data/in\"],\"env\":[\"TOKEN\"]}");
    json_t *out = NULL;
    assert_int_equal(wfh_policy_grant_for(p, "fetch", "http", c, NULL, &out), WFH_ESECURITY);
    assert_null(out);
    assert_non_null(strstr(wfh_error_last(),
                           "step 'fetch' (http): requested but not granted: --allow-net=evil.example:80"
                           " --allow-read=/data/in --allow-env=TOKEN; to allow it, add this line to"));
    assert_non_null(strstr(wfh_error_last(),
                           "allow http --allow-net=evil.example:80 --allow-read=/data/in --allow-env=TOKEN"));
    /* Adding exactly that line makes it pass. */
    assert_int_equal(wfh_policy_parse(p, "pol", "allow http --allow-net=evil.example:80 "
                                                "--allow-read=/data/in --allow-env=TOKEN"), 0);
    assert_int_equal(wfh_policy_grant_for(p, "fetch", "http", c, NULL, &out), 0);
    assert_string_equal(json_string_value(json_object_get(out, "profile")), "strict");
    assert_int_equal(json_array_size(json_object_get(out, "net")), 2);
    json_decref(out);
    json_decref(c);
    wfh_policy_free(p);
}

static void test_coverage_rules(void **state)
{
    (void)state;
    wfh_policy *p = policy_of("allow * --allow-read=/srv\nallow db --allow-net=db.local\n");
    json_t *out = NULL;
    json_t *c = caps("{\"read\":[\"/srv/a/b\"],\"network\":[\"db.local:5432\"]}");
    assert_int_equal(wfh_policy_grant_for(p, "s", "db", c, NULL, &out), 0); /* host covers ports */
    json_decref(out);
    json_decref(c);
    c = caps("{\"read\":[\"/srvx\"]}"); /* a prefix is not a parent directory */
    assert_int_equal(wfh_policy_grant_for(p, "s", "db", c, NULL, &out), WFH_ESECURITY);
    json_decref(c);
    /* "network": true (targets chosen by inputs) is satisfied by a host:port list, and
     * the step gets exactly that list; with no network grant it is refused, and the
     * message ends with the line to add. */
    c = caps("{\"network\":true}");
    assert_int_equal(wfh_policy_grant_for(p, "s", "db", c, NULL, &out), 0);
    assert_int_equal(json_array_size(json_object_get(out, "net")), 1);
    assert_string_equal(json_string_value(json_array_get(json_object_get(out, "net"), 0)), "db.local");
    json_decref(out);
    assert_int_equal(wfh_policy_grant_for(p, "s", "http", c, NULL, &out), WFH_ESECURITY);
    const char *m = wfh_error_last();
    assert_non_null(strstr(m, "allow http --allow-net=HOST:PORT"));
    assert_string_equal(m + strlen(m) - strlen("allow http --allow-net=HOST:PORT"),
                        "allow http --allow-net=HOST:PORT");
    assert_int_equal(wfh_policy_allow_flag(p, "--allow-net=127.0.0.1:8080"), 0);
    assert_int_equal(wfh_policy_grant_for(p, "s", "http", c, NULL, &out), 0);
    assert_string_equal(json_string_value(json_array_get(json_object_get(out, "net"), 0)),
                        "127.0.0.1:8080");
    json_decref(out);
    assert_int_equal(wfh_policy_allow_flag(p, "--allow-net"), 0);
    assert_int_equal(wfh_policy_grant_for(p, "s", "http", c, NULL, &out), 0);
    assert_true(json_is_true(json_object_get(out, "net")));
    json_decref(out);
    json_decref(c);
    /* malformed network grants are refused where they are written */
    assert_int_equal(wfh_policy_allow_flag(p, "--allow-net=HOST:PORT"), WFH_EUSAGE);
    assert_int_equal(wfh_policy_allow_flag(p, "--allow-net=h:70000"), WFH_EUSAGE);
    assert_int_equal(wfh_policy_allow_flag(p, "--allow-net=[::1]:443"), 0);
    wfh_policy *bad = NULL;
    assert_int_equal(wfh_policy_new(&bad), 0);
    assert_int_equal(wfh_policy_parse(bad, "pol", "allow http --allow-net=a:1,b:x\n"), WFH_EPARSE);
    assert_non_null(strstr(wfh_error_last(), "pol:1:12:"));
    wfh_policy_free(bad);
    assert_int_equal(wfh_policy_allow_flag(p, "--allow-bogus=1"), WFH_EUSAGE);
    /* The shell's built-in grant and the workspace need no policy line. */
    assert_int_equal(wfh_policy_set_workspace(p, "/work/ws"), 0);
    c = caps("{\"run\":[\"/usr/bin/jq\"],\"write\":[\"/work/ws/out\"]}");
    assert_int_equal(wfh_policy_grant_for(p, "s", "shell", c, NULL, &out), 0);
    assert_string_equal(json_string_value(json_object_get(out, "workspace")), "/work/ws");
    json_decref(out);
    assert_int_equal(wfh_policy_grant_for(p, "s", "other", c, NULL, &out), WFH_ESECURITY);
    json_decref(c);
    wfh_policy_free(p);
}

static void test_grants_reach_the_step(void **state)
{
    (void)state;
    /* A shell script's paths cannot be declared ahead: what the operator grants the
     * type (or every type, or this run) reaches the step even if not requested. */
    wfh_policy *p = policy_of("allow shell --allow-write=/out --allow-net=127.0.0.1:8080\n");
    assert_int_equal(wfh_policy_allow_flag(p, "--allow-read=/data"), 0);
    json_t *c = caps("{\"run\":[\"/usr/bin\"]}");
    json_t *out = NULL;
    assert_int_equal(wfh_policy_grant_for(p, "s", "shell", c, NULL, &out), 0);
    assert_string_equal(json_string_value(json_array_get(json_object_get(out, "write"), 0)), "/out");
    assert_string_equal(json_string_value(json_array_get(json_object_get(out, "read"), 0)), "/data");
    assert_string_equal(json_string_value(json_array_get(json_object_get(out, "net"), 0)),
                        "127.0.0.1:8080");
    assert_string_equal(json_string_value(json_array_get(json_object_get(out, "run"), 0)), "/usr/bin");
    json_decref(out);
    /* ...but not to another type. */
    assert_int_equal(wfh_policy_grant_for(p, "s", "other", NULL, NULL, &out), 0);
    assert_int_equal(json_array_size(json_object_get(out, "write")), 0);
    assert_int_equal(json_array_size(json_object_get(out, "net")), 0);
    assert_string_equal(json_string_value(json_array_get(json_object_get(out, "read"), 0)), "/data");
    json_decref(out);
    json_decref(c);
    wfh_policy_free(p);
}

static void test_narrowing_only_tightens(void **state)
{
    (void)state;
    wfh_policy *p = policy_of("allow http --allow-net=a:1,b:2\nlimit http memory=256M wall=1m\n"
                              "profile http process\n");
    json_t *c = caps("{\"network\":[\"a:1\",\"b:2\"]}");
    json_t *out = NULL;
    json_t *n = caps("{\"network\":[\"a:1\"],\"limits\":{\"memory\":1048576,\"wall_ms\":999999999},"
                     "\"profile\":\"strict\"}");
    assert_int_equal(wfh_policy_grant_for(p, "s", "http", c, n, &out), 0);
    assert_int_equal(json_array_size(json_object_get(out, "net")), 1);
    json_t *lim = json_object_get(out, "limits");
    assert_int_equal(json_integer_value(json_object_get(lim, "memory")), 1048576);
    assert_int_equal(json_integer_value(json_object_get(lim, "wall_ms")), 60000); /* not raised */
    assert_string_equal(json_string_value(json_object_get(out, "profile")), "strict");
    json_decref(out);
    json_decref(n);
    n = caps("{\"network\":[\"c:3\"]}");
    assert_int_equal(wfh_policy_grant_for(p, "s", "http", c, n, &out), WFH_ESECURITY);
    json_decref(n);
    n = caps("{\"profile\":\"none\"}");
    assert_int_equal(wfh_policy_grant_for(p, "s", "http", c, n, &out), WFH_ESECURITY);
    json_decref(n);
    n = caps("{\"network\":false}");
    assert_int_equal(wfh_policy_grant_for(p, "s", "http", c, n, &out), 0);
    assert_int_equal(json_array_size(json_object_get(out, "net")), 0);
    json_decref(out);
    json_decref(n);
    json_decref(c);
    wfh_policy_free(p);
}

/* A step's literal url is checked against the network grant before the run, with the
 * exact line to add; a computed one (a template) is left to the runner and plugin. */
static void test_literal_targets(void **state)
{
    (void)state;
    wfh_policy *p = policy_of("allow http --allow-net=api.example.com:443,db.local\n");
    json_t *c = caps("{\"network\":true}"), *out = NULL;
    wfh_value lit = {.kind = WFH_V_LITERAL}, tmpl = {.kind = WFH_V_TMPL}, num = {.kind = WFH_V_LITERAL};
    wfh_value *items[3] = {&lit, &tmpl, &num};
    char *keys[3] = {"url", "other", "n"};
    wfh_value with = {.kind = WFH_V_OBJECT, .n = 3, .items = items, .keys = keys};
    num.literal = json_integer(5);
    static const struct { const char *url; int ok; const char *target; } cases[] = {
        {"https://api.example.com/v1", 1, NULL},           /* default port 443 */
        {"https://user:pw@api.example.com:443/x?y", 1, NULL},
        {"http://db.local:8080/", 1, NULL},                /* a host grant covers its ports */
        {"http://api.example.com/", 0, "api.example.com:80"},
        {"https://evil.example.com:8443/", 0, "evil.example.com:8443"},
        {"http://[::1]:9/", 0, "[::1]:9"},
        {"postgres://u@127.0.0.1/db", 0, "127.0.0.1:5432"},
        {"sqlite:///tmp/x.db", 1, NULL},                   /* not a network scheme */
        {"not a url", 1, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        lit.literal = json_string(cases[i].url);
        int err = wfh_policy_grant_for_step(p, "s", "http", c, NULL, &with, &out);
        if (cases[i].ok) {
            assert_int_equal(err, 0);
            json_decref(out);
        } else {
            char line[128];
            assert_int_equal(err, WFH_ESECURITY);
            assert_null(out);
            snprintf(line, sizeof line, "allow http --allow-net=%s", cases[i].target);
            const char *m = wfh_error_last();
            assert_string_equal(m + strlen(m) - strlen(line), line);
        }
        json_decref(lit.literal);
    }
    /* two literal targets, one a prefix of the other: the line names both */
    wfh_value lit2 = {.kind = WFH_V_LITERAL};
    items[1] = &lit2;
    lit.literal = json_string("http://h.local:90/");
    lit2.literal = json_string("http://h.local:9/");
    assert_int_equal(wfh_policy_grant_for_step(p, "s", "http", c, NULL, &with, &out),
                     WFH_ESECURITY);
    const char *both = wfh_error_last();
    const char *want = "allow http --allow-net=h.local:90,h.local:9";
    assert_string_equal(both + strlen(both) - strlen(want), want);
    json_decref(lit.literal);
    json_decref(lit2.literal);
    items[1] = &tmpl;
    /* --allow-net alone covers any literal target */
    lit.literal = json_string("https://evil.example.com:8443/");
    assert_int_equal(wfh_policy_allow_flag(p, "--allow-net"), 0);
    assert_int_equal(wfh_policy_grant_for_step(p, "s", "http", c, NULL, &with, &out), 0);
    json_decref(out);
    json_decref(lit.literal);
    json_decref(num.literal);
    json_decref(c);
    wfh_policy_free(p);
}

static void test_load_missing_and_explicit(void **state)
{
    (void)state;
    wfh_policy *p = NULL;
    assert_int_equal(wfh_policy_load("/nonexistent/wfh-policy", &p), WFH_EIO);
    assert_null(p);
    setenv("WFH_HOME", "/nonexistent/wfh-home", 1);
    assert_int_equal(wfh_policy_load(NULL, &p), 0); /* no file: built-in defaults */
    assert_string_equal(wfh_policy_path(p), "/nonexistent/wfh-home/policy");
    wfh_policy_free(p);
    wfh_policy_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_errors_have_positions),
        cmocka_unit_test(test_not_granted_names_line_to_add),
        cmocka_unit_test(test_coverage_rules),
        cmocka_unit_test(test_grants_reach_the_step),
        cmocka_unit_test(test_narrowing_only_tightens),
        cmocka_unit_test(test_literal_targets),
        cmocka_unit_test(test_load_missing_and_explicit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
