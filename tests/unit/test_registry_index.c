/*
 * tests/unit/test_registry_index.c - the registry's parsers (registry/index.c,
 * registry/trust.c) and ELF checks (registry/elfcheck.c): valid input round-trips,
 * and each kind of malformed or hostile input is refused with a message that says
 * where.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../core/error.h"
#include "registry/elfcheck.h"
#include "registry/index.h"
#include "registry/trust.h"

#define HEX64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static const char good[] =
    "{\"format\":1,\"seq\":42,\"issued\":\"2026-11-22T06:00:00Z\",\"expires\":\"2027-11-22T06:00:00Z\","
    "\"keys_version\":3,\"threshold\":2,\"plugins\":[{\"name\":\"shell\",\"version\":\"1.2.3\","
    "\"abi\":{\"major\":1,\"minor\":0},\"blake2b256\":\"" HEX64 "\",\"sha256\":\"" HEX64 "\","
    "\"size\":1234,\"state\":\"active\",\"types\":[{\"name\":\"shell\",\"input_schema\":{\"type\":"
    "\"object\"},\"capabilities\":{\"run\":[\"/bin/sh\"]}}]},{\"name\":\"shell\",\"version\":\"2.0.0\","
    "\"abi\":{\"major\":1,\"minor\":0},\"blake2b256\":\"" HEX64 "\",\"sha256\":\"" HEX64 "\","
    "\"size\":1,\"state\":\"yanked\",\"types\":[{\"name\":\"shell\",\"input_schema\":{}}]}]}";

static void test_index_good_roundtrip(void **state)
{
    (void)state;
    wfh_index *ix = NULL, *back = NULL;
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(wfh_index_parse(good, strlen(good), "index.json", &ix), 0);
    assert_int_equal(ix->seq, 42);
    assert_int_equal(ix->keys_version, 3);
    assert_int_equal(ix->threshold, 2);
    assert_int_equal(ix->n_plugins, 2);
    assert_int_equal(ix->plugins[0].version_major, 1);
    assert_int_equal(ix->plugins[1].state, WFH_PSTATE_YANKED);
    assert_int_equal(wfh_index_serialize(ix, &text, &len), 0);
    assert_int_equal(wfh_index_parse(text, len, "again", &back), 0);
    assert_int_equal(back->seq, 42);
    assert_int_equal(back->expires, ix->expires);
    assert_true(json_equal(back->plugins[0].types[0].capabilities, ix->plugins[0].types[0].capabilities));
    wfh_index_free(ix);
    wfh_index_free(back);
    free(text);
}

/* Replace the first occurrence of @p from in good[] with @p to and expect a refusal
 * whose message contains @p want. */
static void expect_bad(const char *from, const char *to, const char *want)
{
    char buf[4096];
    const char *at = strstr(good, from);
    assert_non_null(at);
    size_t pre = (size_t)(at - good);
    snprintf(buf, sizeof buf, "%.*s%s%s", (int)pre, good, to, at + strlen(from));
    wfh_index *ix = NULL;
    int err = wfh_index_parse(buf, strlen(buf), "index.json", &ix);
    if (err == 0 || !strstr(wfh_error_last(), want))
        fail_msg("replacing '%s' by '%s': err %d, message '%s', wanted '%s'", from, to, err,
                 wfh_error_last(), want);
    assert_null(ix);
}

static void test_index_refusals(void **state)
{
    (void)state;
    expect_bad("\"format\":1", "\"format\":2", "format 2 is not supported");
    expect_bad("\"seq\":42", "\"seq\":-1", "'seq' must be an integer");
    expect_bad("\"seq\":42", "\"seq\":0", "at least 1");
    expect_bad("\"seq\":42", "\"seq\":42,\"seq\":43", "duplicate");
    expect_bad("\"seq\":42", "\"seq\":42,\"extra\":1", "unknown key 'extra'");
    expect_bad("\"issued\":\"2026-11-22T06:00:00Z\"", "\"issued\":\"2026-02-31T06:00:00Z\"", "'issued' must be");
    expect_bad("\"expires\":\"2027-11-22T06:00:00Z\"", "\"expires\":\"tomorrow\"", "'expires' must be");
    expect_bad("\"name\":\"shell\"", "\"name\":\"../../etc/x\"", "plugin name must match");
    expect_bad("\"name\":\"shell\"", "\"name\":\"a/b\"", "plugin name must match");
    expect_bad("\"name\":\"shell\"", "\"name\":\"Shell\"", "plugin name must match");
    expect_bad("\"name\":\"shell\"", "\"name\":\"a\\u0000b\"", "is not allowed");
    expect_bad("\"version\":\"1.2.3\"", "\"version\":\"1.2\"", "MAJOR.MINOR.PATCH");
    expect_bad("\"version\":\"1.2.3\"", "\"version\":\"01.2.3\"", "MAJOR.MINOR.PATCH");
    expect_bad("\"version\":\"1.2.3\"", "\"version\":\"2.0.0\"", "listed twice");
    expect_bad("\"blake2b256\":\"0", "\"blake2b256\":\"A", "64 lowercase hex");
    expect_bad("\"size\":1234", "\"size\":0", "size must be positive");
    expect_bad("\"size\":1234", "\"size\":99999999999", "'size' must be an integer");
    expect_bad("\"state\":\"active\"", "\"state\":\"on\"", "state must be");
    expect_bad("\"input_schema\":{}", "\"input_schema\":[]", "'input_schema' must be an object");
    expect_bad("\"abi\":{\"major\":1,", "\"abi\":{\"major\":1,\"patch\":1,", "unknown key 'patch'");
    expect_bad("{\"format\"", "[{\"format\"", "index.json:1:");
}

static void test_time_parse(void **state)
{
    (void)state;
    time_t t;
    char back[21];
    assert_int_equal(wfh_reg_time_parse("2024-02-29T23:59:59Z", &t), 0);
    wfh_reg_time_format(t, back);
    assert_string_equal(back, "2024-02-29T23:59:59Z");
    assert_int_not_equal(wfh_reg_time_parse("2023-02-29T00:00:00Z", &t), 0);
    assert_int_not_equal(wfh_reg_time_parse("2023-01-01T00:00:00+01:00", &t), 0);
    assert_int_not_equal(wfh_reg_time_parse("2023-01-01 00:00:00Z", &t), 0);
}

static void test_trust_parse(void **state)
{
    (void)state;
    static const char k1[] = "RWS5r7AXZ+tjmrOPQdbYbkUpkoGG0B22kw1K1dhM64Y87O67aerBNMXC";
    char text[1024];
    wfh_trust t;
    snprintf(text, sizeof text, "# comment\nformat=1\nversion=4\nthreshold=1\nkey=%s ops\n", k1);
    assert_int_equal(wfh_trust_parse(text, strlen(text), "keys.txt", &t), 0);
    assert_int_equal(t.version, 4);
    assert_int_equal(t.n_keys, 1);
    assert_string_equal(t.keys[0].label, "ops");
    char *out = wfh_trust_format(&t);
    wfh_trust again;
    assert_int_equal(wfh_trust_parse(out, strlen(out), "formatted", &again), 0);
    free(out);
    /* revoked wins: then no usable key is left for threshold 1 */
    snprintf(text, sizeof text, "format=1\nversion=4\nthreshold=1\nkey=%s\nrevoked=%s\n", k1, k1);
    assert_int_equal(wfh_trust_parse(text, strlen(text), "keys.txt", &t), WFH_EPARSE);
    assert_non_null(strstr(wfh_error_last(), "only 0 trusted, unrevoked"));
    snprintf(text, sizeof text, "format=1\nversion=4\nthreshold=2\nkey=%s\n", k1);
    assert_int_equal(wfh_trust_parse(text, strlen(text), "keys.txt", &t), WFH_EPARSE);
    snprintf(text, sizeof text, "format=1\nversion=4\nversion=5\nthreshold=1\nkey=%s\n", k1);
    assert_int_equal(wfh_trust_parse(text, strlen(text), "keys.txt", &t), WFH_EPARSE);
    assert_non_null(strstr(wfh_error_last(), "keys.txt:3:"));
    snprintf(text, sizeof text, "format=1\nversion=4\nthreshold=1\nkey=%s\nkey=%s\n", k1, k1);
    assert_int_equal(wfh_trust_parse(text, strlen(text), "keys.txt", &t), WFH_EPARSE);
    assert_int_equal(wfh_trust_parse("format=1\nversion=1\nthreshold=1\nallow_unsigned=1\n", 47,
                                     "keys.txt", &t), WFH_EPARSE);
    assert_non_null(strstr(wfh_error_last(), "unknown key 'allow_unsigned'"));
    wfh_reg_state s;
    static const char st[] = "index_seq=5\nindex_sha256=" HEX64 "\nkeys_version=2\n";
    assert_int_equal(wfh_state_parse(st, strlen(st), "state.txt", &s), 0);
    assert_int_equal(s.index_seq, 5);
    assert_int_equal(wfh_state_parse("index_seq=x\n", 12, "state.txt", &s), WFH_EPARSE);
}

static void test_elf_refusals(void **state)
{
    (void)state;
    uint8_t junk[256] = "not an elf";
    assert_int_equal(wfh_elf_check(junk, sizeof junk, "junk.so"), WFH_ESECURITY);
    assert_non_null(strstr(wfh_error_last(), "junk.so: refused: not an ELF file"));
    /* This test program itself: an executable (PT_INTERP), never a plugin. */
    FILE *f = fopen("/proc/self/exe", "rb");
    assert_non_null(f);
    static uint8_t img[64 << 20];
    size_t n = fread(img, 1, sizeof img, f);
    fclose(f);
    assert_true(n > 64);
    assert_int_equal(wfh_elf_check(img, n, "exe"), WFH_ESECURITY);
    /* Every truncation of a real ELF file is refused without reading past the end
     * (the sanitizer build would catch an overread). */
    for (size_t cut = 0; cut < 4096 && cut < n; cut += 7)
        assert_int_equal(wfh_elf_check(img, cut, "cut"), WFH_ESECURITY);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_index_good_roundtrip),
        cmocka_unit_test(test_index_refusals),
        cmocka_unit_test(test_time_parse),
        cmocka_unit_test(test_trust_parse),
        cmocka_unit_test(test_elf_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
