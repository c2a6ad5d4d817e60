/*
 * tests/unit/plugins/test_netutil.c - the helpers the http and llm plugins share
 * (plugins/common/netutil.c), in-process: reading the sandbox grant from a request
 * (ABI 1.1 grant_json, and a 1.0 host's shorter request without it), the target check
 * against the grant and the step's allow list with the messages a user sees, inputs,
 * and the bounded buffer. Built by tests/CMakeLists.txt with netutil.c compiled in
 * (netutil needs libcurl, which the core does not link).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "netutil.h"

/* A request as a 1.1 host builds it; @p grant NULL leaves grant_json unset. */
static wfh_step_request request(const char *inputs, const char *grant)
{
    wfh_step_request r;
    memset(&r, 0, sizeof r);
    r.struct_size = sizeof r;
    r.inputs_json = inputs;
    r.inputs_len = strlen(inputs);
    r.grant_json = grant;
    r.grant_len = grant ? strlen(grant) : 0;
    return r;
}

static const char *const known[] = {"url", "allow", NULL};

/* Opens @p inputs under @p grant and checks @p url. @return what check_url returned
 * (0/-1), with its message in @p err; -2 when opening the request failed. */
static int check(const char *inputs, const char *grant, const char *url, char *err, size_t n)
{
    wfh_step_request r = request(inputs, grant);
    json_t *in = NULL; /* owned */
    const json_t *allow = NULL;
    wfh_net_grant g = {.plugin = "http"};
    int rc = wfh_net_open_request(&r, known, &in, &allow, &g, err, n) < 0
                 ? -2
                 : wfh_net_check_url(url, allow, &g, err, n);
    wfh_net_grant_clear(&g);
    json_decref(in);
    return rc;
}

static void test_grant_lists(void **state)
{
    (void)state;
    char err[512];
    const char *g1 = "{\"profile\":\"strict\",\"net\":[\"127.0.0.1:8080\",\"api.example.com\"]}";
    assert_int_equal(check("{}", g1, "http://127.0.0.1:8080/x", err, sizeof err), 0);
    assert_int_equal(check("{}", g1, "https://api.example.com/v1", err, sizeof err), 0);
    assert_int_equal(check("{}", g1, "http://API.example.com:9999/", err, sizeof err), 0);
    assert_int_equal(check("{}", g1, "http://10.0.0.5/x", err, sizeof err), -1);
    assert_string_equal(err, "10.0.0.5:80 is not in this step's network grant (127.0.0.1:8080, "
                             "api.example.com); add 'allow http --allow-net=10.0.0.5:80' to "
                             "the policy or pass --allow-net=10.0.0.5:80");
    assert_int_equal(check("{}", g1, "http://127.0.0.1:8081/x", err, sizeof err), -1);
    /* A name is not its address: no resolving here, as in the policy. */
    assert_int_equal(check("{}", g1, "http://localhost:8080/x", err, sizeof err), -1);

    /* No network: false, an empty list, or no "net" member. */
    static const char *const none[] = {"{\"net\":false}", "{\"net\":[]}", "{\"profile\":\"strict\"}",
                                       "{\"net\":null}"};
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++) {
        assert_int_equal(check("{}", none[i], "http://127.0.0.1:8080/", err, sizeof err), -1);
        assert_non_null(strstr(err, "is not in this step's network grant (none)"));
    }
    /* Any network: true, "*", and a 1.0 host that sends no grant at all. */
    assert_int_equal(check("{}", "{\"net\":true}", "https://anything.test:1/", err, sizeof err), 0);
    assert_int_equal(check("{}", "{\"net\":[\"*\"]}", "https://anything.test:1/", err, sizeof err), 0);
    assert_int_equal(check("{}", NULL, "https://anything.test:1/", err, sizeof err), 0);

    /* IPv6 literals are written in brackets in both places. */
    const char *g6 = "{\"net\":[\"[::1]:8080\"]}";
    assert_int_equal(check("{}", g6, "http://[::1]:8080/", err, sizeof err), 0);
    assert_int_equal(check("{}", g6, "http://[::1]:8081/", err, sizeof err), -1);
    assert_non_null(strstr(err, "[::1]:8081 is not in this step's network grant ([::1]:8080)"));
}

static void test_grant_from_a_1_0_host(void **state)
{
    (void)state;
    char err[256];
    /* A 1.0 host's request ends before grant_json: whatever lies past its size is not
     * read, and the plugin falls back to the sandbox alone (any target). */
    wfh_step_request r = request("{}", "{\"net\":false}");
    r.struct_size = (uint32_t)offsetof(wfh_step_request, grant_json);
    json_t *in = NULL;
    const json_t *allow = NULL;
    wfh_net_grant g = {.plugin = "llm"};
    assert_int_equal(wfh_net_open_request(&r, known, &in, &allow, &g, err, sizeof err), 0);
    assert_true(g.all);
    assert_int_equal(wfh_net_check_url("http://10.1.2.3:1/", allow, &g, err, sizeof err), 0);
    wfh_net_grant_clear(&g);
    json_decref(in);
}

static void test_malformed_grants_are_refused(void **state)
{
    (void)state;
    char err[256];
    static const struct {
        const char *grant, *msg;
    } bad[] = {
        {"{\"net\":\"yes\"}", "\"net\" that is not true, false or a list"},
        {"{\"net\":1}", "\"net\" that is not true, false or a list"},
        {"{\"net\":[\"a:1\", 2]}", "\"net\" entry that is not a string"},
        {"[]", "sandbox grant is not a JSON object"},
        {"{not json", "sandbox grant is not a JSON object"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(check("{}", bad[i].grant, "http://127.0.0.1/", err, sizeof err), -2);
        if (!strstr(err, bad[i].msg))
            fail_msg("%s: '%s'", bad[i].grant, err);
    }
}

static void test_allow_list_narrows(void **state)
{
    (void)state;
    char err[512];
    const char *any = "{\"net\":true}";
    assert_int_equal(check("{\"allow\":[\"*.example.com:443\"]}", any, "https://a.example.com/",
                           err, sizeof err), 0);
    assert_int_equal(check("{\"allow\":[\"*.example.com:443\"]}", any, "https://example.com/",
                           err, sizeof err), -1);
    assert_string_equal(err, "example.com:443 is not in the step's allow list");
    /* Both must admit the target: the allow list never widens the grant. */
    assert_int_equal(check("{\"allow\":[\"10.0.0.5\"]}", "{\"net\":[\"127.0.0.1:80\"]}",
                           "http://10.0.0.5/", err, sizeof err), -1);
    assert_non_null(strstr(err, "network grant (127.0.0.1:80)"));
    /* Only http and https, and no echo of a URL that may hold a password. */
    assert_int_equal(check("{}", any, "ftp://u:secret@host/", err, sizeof err), -1);
    assert_string_equal(err, "url scheme 'ftp': only http and https are allowed");
    assert_int_equal(check("{}", any, "http://u:secret@[bad/", err, sizeof err), -1);
    assert_null(strstr(err, "secret"));
}

static void test_inputs(void **state)
{
    (void)state;
    char err[256];
    assert_int_equal(check("{\"url\":\"x\",\"method\":\"GET\"}", NULL, "http://h/", err, sizeof err), -2);
    assert_string_equal(err, "unknown input 'method'");
    assert_int_equal(check("[1]", NULL, "http://h/", err, sizeof err), -2);
    assert_string_equal(err, "inputs are not a JSON object");
    assert_int_equal(check("{\"url\":", NULL, "http://h/", err, sizeof err), -2);
    assert_non_null(strstr(err, "inputs are not a JSON object ("));
    static const char *const bad_allow[] = {"{\"allow\":\"h\"}", "{\"allow\":[\"\"]}",
                                            "{\"allow\":[1]}"};
    for (size_t i = 0; i < sizeof bad_allow / sizeof bad_allow[0]; i++) {
        assert_int_equal(check(bad_allow[i], NULL, "http://h/", err, sizeof err), -2);
        assert_string_equal(err, "input 'allow' must be a list of host or host:port");
    }
}

static void test_limits(void **state)
{
    (void)state;
    char err[256];
    static const struct {
        const char *in, *msg;
    } bad[] = {
        {"{\"timeout_ms\":0}", "timeouts and max_response_bytes must be at least 1"},
        {"{\"max_response_bytes\":2000}", "input 'max_response_bytes' must be an integer between 0 and 1000"},
        {"{\"connect_timeout_ms\":\"5s\"}", "input 'connect_timeout_ms' must be an integer"},
        {"{\"ca_file\":\"\"}", "input 'ca_file' must be a path"},
        {"{\"ca_file\":7}", "input 'ca_file' must be a path"},
    };
    wfh_step_request r = request("{}", NULL);
    r.workspace = "/ws";
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *in = json_loads(bad[i].in, 0, NULL); /* owned */
        wfh_net_limits l = {.timeout_ms = 1, .connect_ms = 1, .max_bytes = 1};
        assert_int_equal(wfh_net_read_limits(&r, in, 1000, &l, err, sizeof err), -1);
        if (!strstr(err, bad[i].msg))
            fail_msg("%s: '%s'", bad[i].in, err);
        json_decref(in);
    }
    json_t *in = json_pack("{s:i, s:s}", "timeout_ms", 5, "ca_file", "certs/ca.pem");
    wfh_net_limits l = {.timeout_ms = 30000, .connect_ms = 10000, .max_bytes = 100};
    assert_int_equal(wfh_net_read_limits(&r, in, 1000, &l, err, sizeof err), 0);
    assert_int_equal(l.timeout_ms, 5);
    assert_int_equal(l.connect_ms, 10000); /* absent: the default stays */
    assert_int_equal(l.max_bytes, 100);
    assert_string_equal(l.ca_file, "/ws/certs/ca.pem"); /* relative: in the workspace */
    json_object_set_new(in, "ca_file", json_string("/etc/ca.pem"));
    assert_int_equal(wfh_net_read_limits(&r, in, 1000, &l, err, sizeof err), 0);
    assert_string_equal(l.ca_file, "/etc/ca.pem");
    json_decref(in);
}

static void test_buffer_and_snippet(void **state)
{
    (void)state;
    wfh_buf b = {.limit = 5};
    assert_int_equal(wfh_buf_append(&b, "abc", 3), 0);
    assert_int_equal(wfh_buf_append(&b, "defg", 4), -1);
    assert_true(b.over);
    assert_int_equal(b.len, 5);
    assert_string_equal(b.data, "abcde");
    wfh_buf_clear(&b);
    assert_null(b.data);
    assert_int_equal(b.limit, 5);

    char out[16];
    wfh_net_snippet("a\nb\tc\x7f" "d", 7, out, sizeof out);
    assert_string_equal(out, "a b c d");
    wfh_net_snippet("0123456789abcdefghij", 20, out, sizeof out);
    assert_string_equal(out, "0123456789abcde");
    wfh_net_snippet(NULL, 0, out, sizeof out);
    assert_string_equal(out, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grant_lists),
        cmocka_unit_test(test_grant_from_a_1_0_host),
        cmocka_unit_test(test_malformed_grants_are_refused),
        cmocka_unit_test(test_allow_list_narrows),
        cmocka_unit_test(test_inputs),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_buffer_and_snippet),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
