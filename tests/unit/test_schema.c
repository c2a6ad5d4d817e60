/*
 * tests/unit/test_schema.c - the JSON Schema subset step input schemas use: each keyword
 * accepts what it should and rejects what it should, with the JSON path in the message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "schema.h"

typedef struct seen {
    char all[4096];
    int n;
} seen;

static void collect(void *ud, const json_t *inst, const char *path, const char *msg)
{
    (void)inst;
    seen *s = ud;
    size_t l = strlen(s->all);
    snprintf(s->all + l, sizeof s->all - l, "%s: %s\n", path, msg);
    s->n++;
}

/* Validates @p inst_txt against @p schema_txt; returns the problems, one per line. */
static int run(const char *schema_txt, const char *inst_txt, seen *s)
{
    json_error_t je;
    json_t *schema = json_loads(schema_txt, JSON_DECODE_ANY, &je);
    json_t *inst = json_loads(inst_txt, JSON_DECODE_ANY, &je);
    assert_non_null(schema);
    assert_non_null(inst);
    memset(s, 0, sizeof *s);
    wfh_schema_opts o = {collect, NULL, s, "with"};
    int rc = wfh_schema_validate(schema, inst, &o);
    json_decref(schema);
    json_decref(inst);
    if (rc >= 0)
        assert_int_equal(rc, s->n);
    return rc;
}

static const char shell_schema[] =
    "{\"type\":\"object\",\"additionalProperties\":false,"
    " \"properties\":{\"run\":{\"type\":\"string\",\"minLength\":1},"
    "  \"argv\":{\"type\":\"array\",\"items\":{\"type\":\"string\"},\"minItems\":1},"
    "  \"cwd\":{\"type\":\"string\"},"
    "  \"env\":{\"type\":\"object\",\"additionalProperties\":{\"type\":\"string\"}},"
    "  \"timeout\":{\"type\":[\"integer\",\"string\"],\"minimum\":0}},"
    " \"oneOf\":[{\"required\":[\"run\"]},{\"required\":[\"argv\"]}]}";

static void test_valid_inputs_pass(void **state)
{
    (void)state;
    seen s;
    assert_int_equal(run(shell_schema, "{\"run\":\"echo hi\"}", &s), 0);
    assert_int_equal(run(shell_schema, "{\"argv\":[\"ls\",\"-l\"],\"cwd\":\"/\"}", &s), 0);
    assert_int_equal(run(shell_schema, "{\"run\":\"x\",\"timeout\":5}", &s), 0);
    assert_int_equal(run(shell_schema, "{\"run\":\"x\",\"timeout\":\"5s\"}", &s), 0);
    assert_int_equal(run(shell_schema, "{\"run\":\"x\",\"env\":{\"A\":\"b\"}}", &s), 0);
}

static void test_type_errors_name_the_path(void **state)
{
    (void)state;
    seen s;
    assert_int_equal(run(shell_schema, "{\"argv\":[\"ls\",\"-l\",3]}", &s), 1);
    assert_string_equal(s.all, "with.argv[2]: expected string, got integer\n");
    assert_int_equal(run(shell_schema, "{\"run\":\"x\",\"env\":{\"A\":true}}", &s), 1);
    assert_string_equal(s.all, "with.env.A: expected string, got boolean\n");
    assert_int_equal(run(shell_schema, "{\"run\":\"x\",\"timeout\":[]}", &s), 1);
    assert_string_equal(s.all, "with.timeout: expected integer or string, got array\n");
    assert_int_equal(run("{\"type\":\"integer\"}", "1.5", &s), 1);
    assert_int_equal(run("{\"type\":\"integer\"}", "2.0", &s), 0);
    assert_int_equal(run("{\"type\":\"number\"}", "2", &s), 0);
    assert_int_equal(run("{\"type\":\"null\"}", "null", &s), 0);
    assert_int_equal(run("{\"type\":\"boolean\"}", "\"true\"", &s), 1);
}

static void test_object_keywords(void **state)
{
    (void)state;
    seen s;
    assert_int_equal(run(shell_schema, "{\"run\":\"x\",\"rnu\":1}", &s), 1);
    assert_non_null(strstr(s.all, "with.rnu: unknown property (allowed: run, argv, cwd, env, timeout)"));
    assert_int_equal(run("{\"required\":[\"a\",\"b\"]}", "{\"a\":1}", &s), 1);
    assert_string_equal(s.all, "with: missing required property 'b'\n");
    /* additionalProperties as a schema, and true/absent allows anything */
    assert_int_equal(run("{\"additionalProperties\":{\"type\":\"integer\"}}", "{\"a\":1,\"b\":\"x\"}", &s), 1);
    assert_string_equal(s.all, "with.b: expected integer, got string\n");
    assert_int_equal(run("{\"properties\":{\"a\":{}}}", "{\"z\":1}", &s), 0);
}

static void test_oneof_reports_closest(void **state)
{
    (void)state;
    seen s;
    assert_int_equal(run(shell_schema, "{\"cwd\":\"/\"}", &s), 1);
    assert_non_null(strstr(s.all, "with: matches none of the allowed forms (oneOf); closest: with: missing required property"));
    assert_int_equal(run(shell_schema, "{\"run\":\"a\",\"argv\":[\"b\"]}", &s), 1);
    assert_non_null(strstr(s.all, "matches 2 of the allowed forms"));
    assert_int_equal(run("{\"anyOf\":[{\"type\":\"string\"},{\"type\":\"integer\"}]}", "3", &s), 0);
    assert_int_equal(run("{\"anyOf\":[{\"type\":\"string\"},{\"type\":\"integer\"}]}", "[]", &s), 1);
    assert_int_equal(run("{\"allOf\":[{\"type\":\"string\"},{\"minLength\":3}]}", "\"ab\"", &s), 1);
    assert_int_equal(run("{\"not\":{\"type\":\"string\"}}", "\"ab\"", &s), 1);
    assert_int_equal(run("{\"not\":{\"type\":\"string\"}}", "1", &s), 0);
}

static void test_scalar_keywords(void **state)
{
    (void)state;
    seen s;
    assert_int_equal(run("{\"enum\":[\"GET\",\"POST\"]}", "\"PUT\"", &s), 1);
    assert_string_equal(s.all, "with: must be one of [\"GET\",\"POST\"]\n");
    assert_int_equal(run("{\"enum\":[\"GET\",\"POST\"]}", "\"GET\"", &s), 0);
    assert_int_equal(run("{\"const\":3}", "3", &s), 0);
    assert_int_equal(run("{\"const\":3}", "4", &s), 1);
    assert_int_equal(run("{\"minimum\":1,\"maximum\":10}", "0", &s), 1);
    assert_string_equal(s.all, "with: must be >= 1, got 0\n");
    assert_int_equal(run("{\"minimum\":1,\"maximum\":10}", "11", &s), 1);
    assert_int_equal(run("{\"minimum\":1,\"maximum\":10}", "10", &s), 0);
    assert_int_equal(run("{\"exclusiveMinimum\":0}", "0", &s), 1);
    /* lengths count code points, not bytes */
    assert_int_equal(run("{\"maxLength\":2}", "\"\xc3\xa9\xc3\xa9\"", &s), 0);
    assert_int_equal(run("{\"maxLength\":2}", "\"abc\"", &s), 1);
    assert_int_equal(run("{\"minLength\":1}", "\"\"", &s), 1);
    assert_int_equal(run("{\"maxItems\":1}", "[1,2]", &s), 1);
    assert_string_equal(s.all, "with: expected at most 1 items, got 2\n");
    assert_int_equal(run("{\"pattern\":\"^[a-z]+$\"}", "\"abc\"", &s), 0);
    assert_int_equal(run("{\"pattern\":\"^[a-z]+$\"}", "\"aBc\"", &s), 1);
    assert_int_equal(run("{\"default\":5,\"description\":\"x\",\"type\":\"string\"}", "\"a\"", &s), 0);
    assert_int_equal(run("false", "1", &s), 1);
    assert_int_equal(run("true", "1", &s), 0);
}

static int unknown_strings(void *ud, const json_t *inst)
{
    (void)ud;
    if (json_is_string(inst) && !strcmp(json_string_value(inst), "?any"))
        return WFH_SCHEMA_ANY;
    if (json_is_string(inst) && !strcmp(json_string_value(inst), "?str"))
        return WFH_SCHEMA_ANY_STRING;
    return WFH_SCHEMA_KNOWN;
}

static void test_unknown_values(void **state)
{
    (void)state;
    json_t *schema = json_loads(shell_schema, 0, NULL);
    json_t *any = json_loads("{\"argv\":\"?any\"}", 0, NULL);
    json_t *str = json_loads("{\"argv\":\"?str\"}", 0, NULL);
    json_t *str_ok = json_loads("{\"run\":\"?str\",\"timeout\":\"?any\"}", 0, NULL);
    seen s;
    memset(&s, 0, sizeof s);
    wfh_schema_opts o = {collect, unknown_strings, &s, "with"};
    /* an expression of unknown type may well be the list argv wants */
    assert_int_equal(wfh_schema_validate(schema, any, &o), 0);
    /* but text with an expression spliced in is always a string */
    assert_int_equal(wfh_schema_validate(schema, str, &o), 1);
    assert_non_null(strstr(s.all, "with.argv: expected array, got string"));
    assert_int_equal(wfh_schema_validate(schema, str_ok, &o), 0);
    json_decref(schema);
    json_decref(any);
    json_decref(str);
    json_decref(str_ok);
}

static void test_schema_check(void **state)
{
    (void)state;
    json_t *good = json_loads(shell_schema, 0, NULL);
    assert_int_equal(wfh_schema_check(good), 0);
    json_decref(good);
    const char *bad[] = {
        "{\"type\":\"strin\"}", "{\"properties\":{\"a\":{\"type\":1}}}", "{\"required\":\"a\"}",
        "{\"minLength\":-1}", "{\"oneOf\":{}}", "{\"pattern\":\"(\"}", "{\"items\":3}",
        "{\"maximum\":\"x\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *s = json_loads(bad[i], 0, NULL);
        assert_non_null(s);
        assert_int_equal(wfh_schema_check(s), WFH_EINVAL);
        assert_non_null(strstr(wfh_error_last(), "input schema: $"));
        json_decref(s);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_inputs_pass),
        cmocka_unit_test(test_type_errors_name_the_path),
        cmocka_unit_test(test_object_keywords),
        cmocka_unit_test(test_oneof_reports_closest),
        cmocka_unit_test(test_scalar_keywords),
        cmocka_unit_test(test_unknown_values),
        cmocka_unit_test(test_schema_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
