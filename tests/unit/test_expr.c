/*
 * tests/unit/test_expr.c - table-driven tests of core/expr.h beyond GitHub's vectors
 * (those run in tests/conformance): wfhost's extensions (ternary, split, lower, upper,
 * trim, length, default, status functions), parse-time checks (unknown functions and
 * contexts, argument counts) with exact error offsets, strict step outputs, context
 * references for the validator, and a parse-speed figure.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "expr.h"

static const char contexts_json[] =
    "{\"inputs\": {\"name\": \"World\", \"n\": 3, \"big\": 9007199254740993, \"ratio\": 0.25,"
    "  \"list\": [\"a\", \"b\", \"c\"], \"flag\": true, \"off\": false, \"empty\": \"\","
    "  \"nothing\": null, \"obj\": {\"k\": \"v\", \"Mixed\": 1}, \"csv\": \"x,y,,z\","
    "  \"padded\": \"  hi there \\n\", \"greek\": \"Σίσυφος\"},"
    " \"steps\": {\"build\": {\"outputs\": {\"path\": \"/tmp/out\", \"count\": \"2\","
    "   \"empty\": \"\"}, \"status\": \"success\"},"
    "   \"test\": {\"outputs\": {}, \"status\": \"failure\"}},"
    " \"env\": {\"HOME\": \"/root\"},"
    " \"matrix\": {\"os\": \"linux\", \"versions\": [1, 2]},"
    " \"item\": {\"id\": 7}, \"index\": 0}";

static const char *const scope_names[] = {"inputs", "steps", "env", "matrix", "item",
                                          "index", NULL};

static json_t *contexts;

static int setup(void **state)
{
    (void)state;
    json_error_t e;
    contexts = json_loads(contexts_json, 0, &e);
    return contexts ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    json_decref(contexts);
    return 0;
}


enum { OK = 0, LEX = WFH_EXPR_ERR_LEXING, PARSE = WFH_EXPR_ERR_PARSING, EVAL = WFH_EXPR_ERR_EVALUATION };

typedef struct eval_case {
    const char *expr;
    const char *want; /* JSON text of the expected value (OK), or a substring of the message */
    int err;          /* expected error kind, OK for none */
} eval_case;

static const eval_case eval_cases[] = {
    /* ternary: lowest precedence, right-associative, lazy */
    {"true ? 'a' : 'b'", "\"a\"", OK},
    {"false ? 'a' : 'b'", "\"b\"", OK},
    {"inputs.n > 2 ? 'big' : 'small'", "\"big\"", OK},
    {"inputs.n > 5 ? 'big' : 'small'", "\"small\"", OK},
    {"inputs.flag ? inputs.list : inputs.obj", "[\"a\",\"b\",\"c\"]", OK},
    {"null ? 1 : 2", "2", OK},
    {"'' ? 1 : 2", "2", OK},
    {"'x' ? 1 : 2", "1", OK},
    {"0 ? 1 : 2", "2", OK},
    {"NaN ? 1 : 2", "2", OK},
    {"inputs.obj ? 1 : 2", "1", OK},
    {"false ? 1 : true ? 2 : 3", "2", OK},
    {"false ? 1 : false ? 2 : 3", "3", OK},
    {"true ? false ? 1 : 2 : 3", "2", OK},
    {"true || false ? 'y' : 'n'", "\"y\"", OK},
    {"false && true ? 'y' : 'n'", "\"n\"", OK},
    {"1 == 1 ? 'eq' : 'ne'", "\"eq\"", OK},
    {"(true ? 1 : 2) + 0", "Unexpected symbol: '+'", LEX},
    {"(true ? 'a' : 'b') == 'A'", "true", OK},
    {"true?1:2", "1", OK},
    {"inputs.flag?inputs.name:'x'", "\"World\"", OK},
    {"true ? 1 : fromJSON('not json')", "1", OK},
    {"false ? fromJSON('not json') : 2", "2", OK},
    {"format('{0}', true ? 'x' : 'y')", "\"x\"", OK},
    {"inputs.list[inputs.flag ? 1 : 0]", "\"b\"", OK},
    {"true ? 1", "end of expression", PARSE},
    {"true ? 1 :", "end of expression", PARSE},
    {"true ? : 2", "Unexpected symbol: ':'", PARSE},
    {"? 1 : 2", "Unexpected symbol: '?'", PARSE},
    {"true : 2", "Unexpected symbol: ':'", PARSE},
    {"true ? 1 , 2", "Unexpected symbol: ','", PARSE},
    /* split */
    {"split('a,b,c', ',')", "[\"a\",\"b\",\"c\"]", OK},
    {"split(inputs.csv, ',')", "[\"x\",\"y\",\"\",\"z\"]", OK},
    {"split('a, b', ', ')", "[\"a\",\"b\"]", OK},
    {"split('abc', ',')", "[\"abc\"]", OK},
    {"split('', ',')", "[]", OK},
    {"split(null, ',')", "[]", OK},
    {"split('a,', ',')", "[\"a\",\"\"]", OK},
    {"split(',a', ',')", "[\"\",\"a\"]", OK},
    {"split('aXbxc', 'x')", "[\"aXb\",\"c\"]", OK},
    {"split('héllo', '')", "[\"h\",\"é\",\"l\",\"l\",\"o\"]", OK},
    {"split(123, 2)", "[\"1\",\"3\"]", OK},
    {"split('a::b::c', '::')", "[\"a\",\"b\",\"c\"]", OK},
    {"length(split('a b c', ' '))", "3", OK},
    {"split(inputs.list, ',')", "split() needs", EVAL},
    {"split('a')", "Too few parameters", PARSE},
    {"split('a', 'b', 'c')", "Too many parameters", PARSE},
    {"SPLIT('a-b', '-')", "[\"a\",\"b\"]", OK},
    /* lower / upper */
    {"lower('HeLLo')", "\"hello\"", OK},
    {"upper('HeLLo')", "\"HELLO\"", OK},
    {"upper(inputs.greek)", "\"ΣΊΣΥΦΟΣ\"", OK},
    {"lower('ÀÉÎ')", "\"àéî\"", OK},
    {"upper('straße')", "\"STRASSE\"", OK},
    {"'straße' == 'STRASSE'", "true", OK},
    {"'ı' == 'I'", "false", OK},
    {"startsWith('ﬁle', 'FI')", "true", OK},
    {"lower(123)", "\"123\"", OK},
    {"upper(true)", "\"TRUE\"", OK},
    {"lower(null)", "\"\"", OK},
    {"upper(inputs.list)", "\"ARRAY\"", OK},
    {"lower('ПРИВЕТ')", "\"привет\"", OK},
    {"Lower('X')", "\"x\"", OK},
    {"lower()", "Too few parameters", PARSE},
    {"upper('a', 'b')", "Too many parameters", PARSE},
    /* trim */
    {"trim('  x  ')", "\"x\"", OK},
    {"trim(inputs.padded)", "\"hi there\"", OK},
    {"trim('')", "\"\"", OK},
    {"trim('   ')", "\"\"", OK},
    {"trim('\ta b\t')", "\"a b\"", OK},
    {"trim(null)", "\"\"", OK},
    {"trim(42)", "\"42\"", OK},
    {"trim()", "Too few parameters", PARSE},
    /* length */
    {"length('hello')", "5", OK},
    {"length('')", "0", OK},
    {"length(inputs.greek)", "7", OK},
    {"length(inputs.list)", "3", OK},
    {"length(inputs.obj)", "2", OK},
    {"length(null)", "0", OK},
    {"length(inputs.nothing)", "0", OK},
    {"length(fromJSON('[]'))", "0", OK},
    {"length(inputs.list.*)", "3", OK},
    {"length(steps.*.status)", "2", OK},
    {"length(1)", "length() needs", EVAL},
    {"length(true)", "length() needs", EVAL},
    {"length('a', 'b')", "Too many parameters", PARSE},
    {"length(inputs.list) > 2", "true", OK},
    /* default: first non-null, lazy */
    {"default(null, 'x')", "\"x\"", OK},
    {"default('a', 'x')", "\"a\"", OK},
    {"default('', 'x')", "\"\"", OK},
    {"default(false, 'x')", "false", OK},
    {"default(0, 1)", "0", OK},
    {"default(null, null, 3)", "3", OK},
    {"default(null, null)", "null", OK},
    {"default(inputs.missing, inputs.name)", "\"World\"", OK},
    {"default(inputs.nothing, 'fallback')", "\"fallback\"", OK},
    {"default(inputs.name, fromJSON('bad'))", "\"World\"", OK},
    {"default(null, fromJSON('bad'))", "invalid JSON", EVAL},
    {"default('x')", "Too few parameters", PARSE},
    {"DEFAULT(null, 1)", "1", OK},
    /* status functions without a failed run */
    {"success()", "true", OK},
    {"failure()", "false", OK},
    {"always()", "true", OK},
    {"cancelled()", "false", OK},
    {"always(1)", "Too many parameters", PARSE},
    {"success() && inputs.flag", "true", OK},
    /* hashFiles is refused with a reason */
    {"hashFiles('**/*.c')", "not supported by wfhost", EVAL},
    {"hashFiles()", "Too few parameters", PARSE},
    /* contexts used in workflows */
    {"inputs.name", "\"World\"", OK},
    {"INPUTS.NAME", "\"World\"", OK},
    {"inputs['name']", "\"World\"", OK},
    {"inputs.big", "9007199254740993", OK},
    {"inputs.ratio * 2", "Unexpected symbol: '*'", PARSE},
    {"inputs.ratio", "0.25", OK},
    {"steps.build.outputs.path", "\"/tmp/out\"", OK},
    {"steps.build.status", "\"success\"", OK},
    {"steps.test.status == 'FAILURE'", "true", OK},
    {"steps.build.outputs.count == 2", "true", OK},
    {"steps.build.outputs.missing", "null", OK},
    {"steps.nosuch.outputs.x", "null", OK},
    {"steps.*.status", "[\"success\",\"failure\"]", OK},
    {"contains(steps.*.status, 'failure')", "true", OK},
    {"matrix.os", "\"linux\"", OK},
    {"matrix.versions[1]", "2", OK},
    {"item.id", "7", OK},
    {"index", "0", OK},
    {"env.HOME", "\"/root\"", OK},
    {"inputs.list[0]", "\"a\"", OK},
    {"inputs.list[3]", "null", OK},
    {"inputs.list[-1]", "null", OK},
    {"inputs.list['1']", "\"b\"", OK},
    {"inputs.list[1.5]", "\"b\"", OK},
    {"inputs.obj.mixed", "1", OK},
    {"inputs.obj['MIXED']", "1", OK},
    {"inputs.name.length", "null", OK},
    {"inputs.list.*", "[\"a\",\"b\",\"c\"]", OK},
    {"inputs.obj.*", "[\"v\",1]", OK},
    {"inputs", NULL, OK},
    {"github.sha", "Unrecognized named-value: 'github'", PARSE},
    {"secrets.TOKEN", "Unrecognized named-value: 'secrets'", PARSE},
    /* joins, formats and JSON over the contexts */
    {"join(inputs.list, '+')", "\"a+b+c\"", OK},
    {"join(inputs.list)", "\"a,b,c\"", OK},
    {"format('Hello {0}!', inputs.name)", "\"Hello World!\"", OK},
    {"format('{0}/{1}', steps.build.outputs.path, inputs.n)", "\"/tmp/out/3\"", OK},
    {"format('{1}{0}', 'a', 'b')", "\"ba\"", OK},
    {"format('{0}', inputs.ratio)", "\"0.25\"", OK},
    {"format('{ 0}', 1)", "invalid", EVAL},
    {"format('{a}', 1)", "invalid", EVAL},
    {"toJSON(inputs.list)", "\"[\\n  \\\"a\\\",\\n  \\\"b\\\",\\n  \\\"c\\\"\\n]\"", OK},
    {"toJSON(inputs.obj)", "\"{\\n  \\\"k\\\": \\\"v\\\",\\n  \\\"Mixed\\\": 1\\n}\"", OK},
    {"toJSON('tab\there')", "\"\\\"tab\\\\there\\\"\"", OK},
    {"toJSON(NaN)", "\"null\"", OK},
    {"toJSON(0.1)", "\"0.1\"", OK},
    {"toJSON(1e21)", "\"1e+21\"", OK},
    {"fromJSON(toJSON(inputs.obj)).k", "\"v\"", OK},
    {"fromJSON('123456789012345678901234567890')", "1.2345678901234568e+29", OK},
    {"fromJSON('{\"a\":')", "invalid JSON", EVAL},
    {"fromJSON('')", "invalid JSON", EVAL},
    {"fromJSON(null)", "invalid JSON", EVAL},
    {"fromJSON('\"x\"') == 'X'", "true", OK},
    {"contains(inputs.list, 'B')", "true", OK},
    {"contains(inputs.obj, 'k')", "false", OK},
    {"contains(inputs.name, 'ORL')", "true", OK},
    {"startsWith(steps.build.outputs.path, '/TMP')", "true", OK},
    {"endsWith(inputs.list, 'c')", "false", OK},
    {"case(inputs.n > 2, 'big', 'small')", "\"big\"", OK},
    {"case(inputs.n, 'big', 'small')", "boolean", EVAL},
    {"case(true, 1)", "Too few parameters", PARSE},
    {"case(false, fromJSON('bad'), 'ok')", "\"ok\"", OK},
    /* numbers and text */
    {"inputs.list >= inputs.list", "true", OK},
    {"inputs.list <= inputs.list", "true", OK},
    {"inputs.list > inputs.list", "false", OK},
    {"inputs.list >= fromJSON('[]')", "false", OK},
    {"null <= null", "true", OK},
    {"NaN >= NaN", "false", OK},
    {"'abc' <= 'ABC'", "true", OK},
    {"fromJSON('x')[fromJSON('{')]", "end of file", EVAL},
    {"0x1F", "31", OK},
    {"'\xc2\xa0 7\xe3\x80\x80' == 7", "true", OK},
    {"'\xe2\x80\xa8' == 0", "true", OK},
    {"'7\xc2' == 7", "Invalid UTF-8", LEX},
    {"'\xc3\xa9" "7' == 7", "false", OK},
    {"0o17", "15", OK},
    {"0b101", "5", OK},
    {"1e3", "1000", OK},
    {"-0.5", "-0.5", OK},
    {"'it''s'", "\"it's\"", OK},
    {"''''", "\"'\"", OK},
    {"'unterminated", "Unexpected symbol", LEX},
    {"'ok' 'no'", "Unexpected symbol: ''no''", PARSE},
    {"1.2.3", "Unexpected symbol: '1.2.3'", LEX},
    {"1-2", "Unexpected symbol: '1-2'", LEX},
    {"a@b", "Unexpected symbol", LEX},
    {"#", "Unexpected symbol: '#'", LEX},
    {"$x", "Unexpected symbol", LEX},
    {"\"double\"", "Unexpected symbol", LEX},
    {"'caf\xc3\xa9' == 'CAF\xc3\x89'", "true", OK},
    {"'\xff'", "Invalid UTF-8", LEX},
    {"'\xc3'", "Invalid UTF-8", LEX},
    {"'\xed\xa0\x80'", "Invalid UTF-8", LEX},
    {"", "null", OK},
    {"   ", "null", OK},
    {"(1)", "1", OK},
    {"((((((((((1))))))))))", "1", OK},
    {"()", "Unexpected symbol: ')'", PARSE},
    {"(", "end of expression", PARSE},
    {"[1]", "Unexpected symbol: '['", PARSE},
    {"inputs[", "end of expression", PARSE},
    {"inputs[]", "Unexpected symbol: ']'", PARSE},
    {"inputs.", "end of expression", PARSE},
    {"inputs..name", "Unexpected symbol: '.name'", LEX},
    {"'abc'.length", "Unexpected symbol: '.length'", LEX},
    {"'abc'[0]", "Unexpected symbol: '['", PARSE},
    {"true[0]", "Unexpected symbol: '['", PARSE},
    {"('abc')[0]", "null", OK},
    {"format('{0}', 1,)", "\"1\"", OK},
    {"nosuch(1 2)", "Unexpected symbol: '2'", PARSE},
    {"inputs.list[*]", "[\"a\",\"b\",\"c\"]", OK},
    {"inputs.list[*][0]", "[]", OK},
    {"!", "end of expression", PARSE},
    {"!inputs.flag", "false", OK},
    {"!!inputs.name", "true", OK},
    {"1 ==", "end of expression", PARSE},
    {"== 1", "Unexpected symbol: '=='", PARSE},
    {"1 === 1", "Unexpected symbol: '='", LEX},
    {"1 && && 2", "Unexpected symbol: '&&'", PARSE},
    {"nosuch()", "Unrecognized function: 'nosuch'", PARSE},
    {"tojsn(1)", "Unrecognized function: 'tojsn' (did you mean toJSON?)", PARSE},
    {"startwith('a', 'b')", "(did you mean startsWith?)", PARSE},
    {"input.name", "Unrecognized named-value: 'input' (did you mean inputs?)", PARSE},
    {"stpes.x", "(did you mean steps?)", PARSE},
    {"zzzzzz.x", "Unrecognized named-value: 'zzzzzz'. Located", PARSE},
    {"inputs.name()", "Unexpected symbol: '('", PARSE},
    {"contains('a',)", "Too few parameters", PARSE},
    {"contains('a',,)", "Unexpected symbol: ','", PARSE},
    {"contains(,'a')", "Unexpected symbol: ','", PARSE},
    {"format('x'", "end of expression", PARSE},
    {"toJSON 1", "Unrecognized named-value: 'toJSON'", PARSE},
    {"always ( )", "true", OK},
    {"always", "Unrecognized named-value: 'always'", PARSE},
    {"TRUE", "Unrecognized named-value: 'TRUE'", PARSE},
    {"inputs.true", "null", OK},
};

static json_t *eval_text(const char *expr, const wfh_expr_env *env, wfh_expr_error *err, int *rc)
{
    wfh_expr *e = NULL;
    json_t *out = NULL;
    wfh_expr_scope scope = {.contexts = scope_names};
    *rc = wfh_expr_parse(expr, strlen(expr), &scope, &e, err);
    if (*rc == 0)
        *rc = wfh_expr_eval(e, env, &out, err);
    wfh_expr_free(e);
    return out;
}

static void test_eval_table(void **state)
{
    (void)state;
    size_t failures = 0;
    wfh_expr_env env;
    memset(&env, 0, sizeof env);
    env.contexts = contexts;
    for (size_t i = 0; i < sizeof eval_cases / sizeof eval_cases[0]; i++) {
        const eval_case *c = &eval_cases[i];
        wfh_expr_error err;
        int rc;
        json_t *got = eval_text(c->expr, &env, &err, &rc);
        if (c->err != OK) {
            if (rc == 0 || (int)err.kind != c->err || !strstr(err.message, c->want)) {
                print_message("FAIL %s: want error kind %d containing \"%s\", got rc=%d kind %d: %s\n",
                              c->expr, c->err, c->want, rc, err.kind, rc ? err.message : "");
                failures++;
            }
        } else if (rc < 0) {
            print_message("FAIL %s: unexpected error: %s\n", c->expr, err.message);
            failures++;
        } else if (c->want) {
            json_error_t jerr;
            json_t *want = json_loads(c->want, JSON_DECODE_ANY, &jerr);
            assert_non_null(want);
            if (!wfh_expr_same_value(want, got)) {
                char *g = json_dumps(got, JSON_ENCODE_ANY | JSON_COMPACT);
                print_message("FAIL %s: want %s, got %s\n", c->expr, c->want, g);
                free(g);
                failures++;
            }
            json_decref(want);
        } else {
            assert_ptr_equal(got, json_object_get(contexts, "inputs"));
        }
        json_decref(got);
    }
    print_message("%zu evaluation cases\n", sizeof eval_cases / sizeof eval_cases[0]);
    assert_int_equal(failures, 0);
}

typedef struct offset_case {
    const char *expr;
    int kind;
    size_t offset;
} offset_case;

static const offset_case offset_cases[] = {
    {"1 2", PARSE, 2},
    {"1 = 2", LEX, 2},
    {"inputs.name == github.sha", PARSE, 15},
    {"contains(inputs.list, nosuch)", PARSE, 22},
    {"format('{0}', a,", PARSE, 14},
    {"nosuchfn(1)", PARSE, 0},
    {"true && nosuchfn(1)", PARSE, 8},
    {"contains('a')", PARSE, 0},
    {"  join(1, 2, 3)", PARSE, 2},
    {"'abc", LEX, 0},
    {"x && 'abc", LEX, 5},
    {"inputs.name && 'abc", LEX, 15},
    {"inputs.b@d", LEX, 7},
    {"inputs.name ? 1", PARSE, 14},
    {"(1", PARSE, 1},
    {"'\xc3\xa9' == 'x\xff'", LEX, 10},
    {"fromJSON('x')", EVAL, 0},
    {"1 == fromJSON('x')", EVAL, 5},
    {"case(1, 2, 3)", EVAL, 5},
    {"hashFiles('x')", EVAL, 0},
};

static void test_error_offsets(void **state)
{
    (void)state;
    size_t failures = 0;
    wfh_expr_env env;
    memset(&env, 0, sizeof env);
    env.contexts = contexts;
    for (size_t i = 0; i < sizeof offset_cases / sizeof offset_cases[0]; i++) {
        const offset_case *c = &offset_cases[i];
        wfh_expr_error err;
        int rc;
        json_t *got = eval_text(c->expr, &env, &err, &rc);
        json_decref(got);
        if (rc == 0 || (int)err.kind != c->kind || err.offset != c->offset) {
            print_message("FAIL %s: want kind %d at %zu, got rc=%d kind %d at %zu (%s)\n", c->expr,
                          c->kind, c->offset, rc, err.kind, err.offset, err.message);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

static void test_depth_limits(void **state)
{
    (void)state;
    static char buf[16384];
    wfh_expr *e = NULL;
    wfh_expr_error err;
    /* 49 nots over a literal is depth 50: allowed; 50 is not. */
    memset(buf, '!', 49);
    strcpy(buf + 49, "true");
    assert_int_equal(wfh_expr_parse(buf, strlen(buf), NULL, &e, &err), 0);
    wfh_expr_free(e);
    memset(buf, '!', 50);
    strcpy(buf + 50, "true");
    assert_true(wfh_expr_parse(buf, strlen(buf), NULL, &e, &err) < 0);
    assert_int_equal(err.kind, WFH_EXPR_ERR_PARSING);
    assert_non_null(strstr(err.message, "depth 50"));
    /* Each group is a level, as in GitHub: 49 around a literal is fine, 50 is not. */
    memset(buf, '(', 49);
    buf[49] = '1';
    memset(buf + 50, ')', 49);
    assert_int_equal(wfh_expr_parse(buf, 99, NULL, &e, &err), 0);
    wfh_expr_free(e);
    memset(buf, '(', 50);
    buf[50] = '1';
    memset(buf + 51, ')', 50);
    assert_true(wfh_expr_parse(buf, 101, NULL, &e, &err) < 0);
    assert_non_null(strstr(err.message, "depth 50"));
    /* A hostile pile of them must fail cleanly. */
    memset(buf, '(', 3000);
    buf[3000] = '\0';
    assert_true(wfh_expr_parse(buf, strlen(buf), NULL, &e, &err) < 0);
    memset(buf, '!', 4000);
    buf[4000] = '\0';
    assert_true(wfh_expr_parse(buf, strlen(buf), NULL, &e, &err) < 0);
    /* A long flat chain is one node, not 1000 levels. */
    size_t o = 0;
    for (int i = 0; i < 500; i++)
        o += (size_t)snprintf(buf + o, sizeof buf - o, "%s1", i ? "||" : "");
    assert_int_equal(wfh_expr_parse(buf, o, NULL, &e, &err), 0);
    wfh_expr_free(e);
    /* A long == chain nests without counting in GitHub's depth; wfhost bounds the tree
     * height (evaluation recurses over it), so it must fail cleanly, not overflow. */
    o = 0;
    for (int i = 0; i < 100; i++)
        o += (size_t)snprintf(buf + o, sizeof buf - o, "%s1", i ? "==" : "");
    assert_int_equal(wfh_expr_parse(buf, o, NULL, &e, &err), 0);
    wfh_expr_free(e);
    o = 0;
    for (int i = 0; i < 2000; i++)
        o += (size_t)snprintf(buf + o, sizeof buf - o, "%s1", i ? "==" : "");
    assert_true(wfh_expr_parse(buf, o, NULL, &e, &err) < 0);
    assert_non_null(strstr(err.message, "1000 levels"));
}

static void test_status_functions(void **state)
{
    (void)state;
    static const struct {
        int failed, cancelled;
        const char *expr;
        int want;
    } cases[] = {
        {0, 0, "success()", 1},   {1, 0, "success()", 0},   {0, 1, "success()", 0},
        {0, 0, "failure()", 0},   {1, 0, "failure()", 1},   {0, 1, "failure()", 0},
        {0, 0, "cancelled()", 0}, {1, 0, "cancelled()", 0}, {0, 1, "cancelled()", 1},
        {0, 0, "always()", 1},    {1, 0, "always()", 1},    {0, 1, "always()", 1},
        {1, 0, "failure() && steps.test.status == 'failure'", 1},
        {1, 0, "!success()", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        wfh_expr_env env;
        memset(&env, 0, sizeof env);
        env.contexts = contexts;
        env.run_failed = cases[i].failed;
        env.run_cancelled = cases[i].cancelled;
        wfh_expr_error err;
        int rc;
        json_t *got = eval_text(cases[i].expr, &env, &err, &rc);
        assert_int_equal(rc, 0);
        assert_int_equal(wfh_expr_truthy(got), cases[i].want);
        json_decref(got);
    }
    static const struct {
        const char *expr;
        int uses;
    } uses[] = {
        {"always()", 1}, {"success() && x", 1}, {"inputs.flag", 0}, {"format('{0}', failure())", 1},
        {"'always()'", 0}, {"CANCELLED()", 1}, {"default(null, 1)", 0},
    };
    for (size_t i = 0; i < sizeof uses / sizeof uses[0]; i++) {
        wfh_expr *e = NULL;
        assert_int_equal(wfh_expr_parse(uses[i].expr, strlen(uses[i].expr), NULL, &e, NULL), 0);
        assert_int_equal(wfh_expr_uses_status_fn(e), uses[i].uses);
        wfh_expr_free(e);
    }
    assert_int_equal(wfh_expr_uses_status_fn(NULL), 0);
}

static void test_strict_step_outputs(void **state)
{
    (void)state;
    static const struct {
        const char *expr;
        const char *want; /* JSON, or NULL for an error */
        const char *msg;
    } cases[] = {
        {"steps.build.outputs.path", "\"/tmp/out\"", NULL},
        {"steps.build.outputs.empty", "\"\"", NULL},
        {"steps.build.outputs.PATH", "\"/tmp/out\"", NULL},
        {"steps.build.outputs.missing", NULL, "step 'build' has no output 'missing'"},
        {"steps['build'].outputs['nope']", NULL, "step 'build' has no output 'nope'"},
        {"steps.test.outputs.result", NULL, "step 'test' has no output 'result'"},
        {"steps.ghost.outputs.x", NULL, "step 'ghost' has no output 'x'"},
        {"steps.build.outputs[format('mis{0}', 'sing')]", NULL, "step 'build' has no output 'missing'"},
        {"steps.build.outputs[format('pa{0}', 'th')]", "\"/tmp/out\"", NULL},
        {"default(steps.build.outputs[inputs.name], 'd')", "\"d\"", NULL},
        {"format('{0}', steps.build.outputs.missing)", NULL, "has no output 'missing'"},
        {"default(steps.build.outputs.missing, 'fb')", "\"fb\"", NULL},
        {"default(steps.build.outputs.missing, steps.test.outputs.x, 1)", "1", NULL},
        {"default(format('{0}', steps.build.outputs.missing), 'x')", "\"\"", NULL},
        {"steps.build.status", "\"success\"", NULL},
        {"steps.build.outputs", "{\"path\":\"/tmp/out\",\"count\":\"2\",\"empty\":\"\"}", NULL},
        {"steps.*.outputs.path", "[\"/tmp/out\"]", NULL},
        {"false && steps.build.outputs.missing", "false", NULL},
        {"true ? 1 : steps.build.outputs.missing", "1", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        wfh_expr_env env;
        memset(&env, 0, sizeof env);
        env.contexts = contexts;
        env.strict_step_outputs = 1;
        wfh_expr_error err;
        int rc;
        json_t *got = eval_text(cases[i].expr, &env, &err, &rc);
        if (cases[i].want) {
            if (rc != 0)
                print_message("FAIL %s: %s\n", cases[i].expr, err.message);
            assert_int_equal(rc, 0);
            json_t *want = json_loads(cases[i].want, JSON_DECODE_ANY, NULL);
            assert_true(wfh_expr_same_value(want, got));
            json_decref(want);
        } else {
            assert_true(rc < 0);
            assert_int_equal(err.kind, WFH_EXPR_ERR_EVALUATION);
            if (!strstr(err.message, cases[i].msg))
                print_message("FAIL %s: message %s\n", cases[i].expr, err.message);
            assert_non_null(strstr(err.message, cases[i].msg));
        }
        json_decref(got);
        /* Off (GitHub's behaviour): a missing output is just null. */
        env.strict_step_outputs = 0;
        got = eval_text(cases[i].expr, &env, &err, &rc);
        assert_int_equal(rc, 0);
        json_decref(got);
    }
}

typedef struct refs_seen {
    char text[8][128];
    size_t offs[8];
    size_t n;
} refs_seen;

static void collect_ref(void *ud, const wfh_expr_ref *ref)
{
    refs_seen *s = ud;
    if (s->n >= 8)
        return;
    char *p = s->text[s->n];
    p[0] = '\0';
    for (size_t i = 0; i < ref->nparts; i++) {
        if (i)
            strcat(p, ".");
        strcat(p, ref->parts[i]);
    }
    s->offs[s->n++] = ref->offset;
}

static void test_refs(void **state)
{
    (void)state;
    static const struct {
        const char *expr;
        const char *want; /* refs joined with " | ", each "a.b.c@offset" */
    } cases[] = {
        {"steps.build.outputs.path", "steps.build.outputs.path@0"},
        {"steps.build.outputs.path.deeper", "steps.build.outputs.path@0"},
        {"steps['build'].outputs['path']", "steps.build.outputs.path@0"},
        {"steps.build.outputs[inputs.key]", "steps.build.outputs@0 | inputs.key@20"},
        {"inputs.a == inputs.b", "inputs.a@0 | inputs.b@12"},
        {"format('{0}', steps.x.status)", "steps.x.status@14"},
        {"steps.*.status", "steps@0"},
        {"steps", "steps@0"},
        {"!env.X && matrix.os", "env.X@1 | matrix.os@10"},
        {"fromJSON(inputs.j).x", "inputs.j@9"},
        {"1 + 1", NULL},
        {"'steps.a'", ""},
        {"true ? item.id : index", "item.id@7 | index@17"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        wfh_expr *e = NULL;
        wfh_expr_error err;
        int rc = wfh_expr_parse(cases[i].expr, strlen(cases[i].expr), NULL, &e, &err);
        if (!cases[i].want) {
            assert_true(rc < 0);
            continue;
        }
        assert_int_equal(rc, 0);
        refs_seen s;
        memset(&s, 0, sizeof s);
        wfh_expr_refs(e, collect_ref, &s);
        char got[1024] = "";
        for (size_t k = 0; k < s.n; k++) {
            char one[160];
            snprintf(one, sizeof one, "%s%s@%zu", k ? " | " : "", s.text[k], s.offs[k]);
            strcat(got, one);
        }
        if (strcmp(got, cases[i].want) != 0)
            print_message("FAIL %s: want [%s] got [%s]\n", cases[i].expr, cases[i].want, got);
        assert_string_equal(got, cases[i].want);
        wfh_expr_free(e);
    }
}

typedef struct tmpl_case {
    const char *text;
    const char *want; /* JSON of the result, or NULL for an error */
    int err_kind;
    size_t err_offset;
} tmpl_case;

static const tmpl_case tmpl_cases[] = {
    {"plain text", "\"plain text\"", 0, 0},
    {"", "\"\"", 0, 0},
    {"${{ inputs.n }}", "3", 0, 0},
    {"  ${{ inputs.list }}  ", "[\"a\",\"b\",\"c\"]", 0, 0},
    {"${{ inputs.obj }}", "{\"k\":\"v\",\"Mixed\":1}", 0, 0},
    {"${{ inputs.flag }}", "true", 0, 0},
    {"${{ inputs.nothing }}", "null", 0, 0},
    {"n=${{ inputs.n }}", "\"n=3\"", 0, 0},
    {"${{ inputs.list }}!", "\"[\\\"a\\\",\\\"b\\\",\\\"c\\\"]!\"", 0, 0},
    {"obj: ${{ inputs.obj }}", "\"obj: {\\\"k\\\":\\\"v\\\",\\\"Mixed\\\":1}\"", 0, 0},
    {"${{ inputs.name }}-${{ inputs.n }}", "\"World-3\"", 0, 0},
    {"${{ inputs.nothing }}x", "\"x\"", 0, 0},
    {"${{ inputs.flag }} ${{ inputs.off }}", "\"true false\"", 0, 0},
    {"${{ inputs.ratio }}%", "\"0.25%\"", 0, 0},
    {"${{ inputs.big }}", "9007199254740993", 0, 0},
    {"[${{ inputs.big }}]", "\"[9007199254740993]\"", 0, 0},
    {"${{ NaN }} and ${{ Infinity }}", "\"NaN and Infinity\"", 0, 0},
    {"${{ format('}}') }}", "\"}\"", 0, 0},
    {"${{ '}}' }}", "\"}}\"", 0, 0},
    {"${{ 'it''s }}' }}", "\"it's }}\"", 0, 0},
    {"a ${{ 'x' }} b ${{ 'y' }} c", "\"a x b y c\"", 0, 0},
    {"${{inputs.name}}", "\"World\"", 0, 0},
    {"$${{ 1 }}", "\"$1\"", 0, 0},
    {"${ { 1 }}", "\"${ { 1 }}\"", 0, 0},
    {"{{ 1 }}", "\"{{ 1 }}\"", 0, 0},
    {"${{ }}", "null", 0, 0},
    {"${{ true ? 'yes' : 'no' }}", "\"yes\"", 0, 0},
    {"x ${{ inputs.n", NULL, WFH_EXPR_ERR_PARSING, 2},
    {"${{ 'abc }}", NULL, WFH_EXPR_ERR_PARSING, 0},
    {"ok ${{ 1 }} then ${{ 2", NULL, WFH_EXPR_ERR_PARSING, 17},
    {"ab ${{ 1 2 }}", NULL, WFH_EXPR_ERR_PARSING, 9},
    {"ab ${{ github.sha }}", NULL, WFH_EXPR_ERR_PARSING, 7},
    {"${{ 1 = 2 }}", NULL, WFH_EXPR_ERR_LEXING, 6},
    {"line1\n  ${{ nosuch() }}", NULL, WFH_EXPR_ERR_PARSING, 12},
    {"v=${{ fromJSON('x') }}", NULL, WFH_EXPR_ERR_EVALUATION, 6},
    {"${{ fromJSON('x') }}", NULL, WFH_EXPR_ERR_EVALUATION, 4},
};

static void test_templates(void **state)
{
    (void)state;
    size_t failures = 0;
    wfh_expr_env env;
    memset(&env, 0, sizeof env);
    env.contexts = contexts;
    wfh_expr_scope scope = {.contexts = scope_names};
    for (size_t i = 0; i < sizeof tmpl_cases / sizeof tmpl_cases[0]; i++) {
        const tmpl_case *c = &tmpl_cases[i];
        wfh_tmpl *t = NULL;
        wfh_expr_error err;
        json_t *got = NULL;
        int rc = wfh_tmpl_parse(c->text, strlen(c->text), &scope, &t, &err);
        if (rc == 0) {
            assert_int_equal(wfh_tmpl_is_literal(t), strstr(c->text, "${{") == NULL);
            rc = wfh_tmpl_eval(t, &env, &got, &err);
        }
        if (c->want) {
            json_t *want = json_loads(c->want, JSON_DECODE_ANY, NULL);
            assert_non_null(want);
            if (rc != 0 || !wfh_expr_same_value(want, got)) {
                char *g = got ? json_dumps(got, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
                print_message("FAIL template \"%s\": want %s, got %s (%s)\n", c->text, c->want,
                              g ? g : "error", rc ? err.message : "");
                free(g);
                failures++;
            }
            json_decref(want);
        } else if (rc == 0 || (int)err.kind != c->err_kind || err.offset != c->err_offset) {
            print_message("FAIL template \"%s\": want error %d at %zu, got rc=%d kind %d at %zu (%s)\n",
                          c->text, c->err_kind, c->err_offset, rc, err.kind, err.offset,
                          err.message);
            failures++;
        }
        json_decref(got);
        wfh_tmpl_free(t);
    }
    wfh_tmpl_free(NULL);
    wfh_expr_free(NULL);
    assert_int_equal(failures, 0);
}

static void test_template_refs(void **state)
{
    (void)state;
    const char *text = "run ${{ steps.a.outputs.x }} and ${{ inputs.y }}";
    wfh_tmpl *t = NULL;
    assert_int_equal(wfh_tmpl_parse(text, strlen(text), NULL, &t, NULL), 0);
    refs_seen s;
    memset(&s, 0, sizeof s);
    wfh_tmpl_refs(t, collect_ref, &s);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.text[0], "steps.a.outputs.x");
    assert_int_equal(s.offs[0], 8);
    assert_memory_equal(text + s.offs[0], "steps", 5);
    assert_string_equal(s.text[1], "inputs.y");
    assert_memory_equal(text + s.offs[1], "inputs", 6);
    wfh_tmpl_free(t);
}

static void test_conditions(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int want; /* truthiness, or -1 for a parse error */
        size_t err_offset;
    } cases[] = {
        {"inputs.n == 3", 1, 0},
        {"${{ inputs.n == 3 }}", 1, 0},
        {"  ${{ inputs.n == 4 }}\n", 0, 0},
        {"${{inputs.flag}}", 1, 0},
        {"${{ '}}' == '}}' }}", 1, 0},
        {"always()", 1, 0},
        {"", 0, 0},
        {"${{ }}", 0, 0},
        {"${{ 1 2 }}", -1, 6},
        {"  ${{ nosuch() }}", -1, 6},
        {"inputs.n ==", -1, 9},
        {"${{ a }} && ${{ b }}", -1, 0},
        {"${{ inputs.n", -1, 0},
    };
    wfh_expr_env env;
    memset(&env, 0, sizeof env);
    env.contexts = contexts;
    wfh_expr_scope scope = {.contexts = scope_names};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        wfh_expr *e = NULL;
        wfh_expr_error err;
        int rc = wfh_expr_parse_condition(cases[i].text, strlen(cases[i].text), &scope, &e, &err);
        if (cases[i].want < 0) {
            if (rc == 0 || err.offset != cases[i].err_offset)
                print_message("FAIL condition \"%s\": rc=%d offset %zu (%s)\n", cases[i].text, rc,
                              err.offset, err.message);
            assert_true(rc < 0);
            assert_int_equal(err.offset, cases[i].err_offset);
            continue;
        }
        assert_int_equal(rc, 0);
        json_t *v = NULL;
        assert_int_equal(wfh_expr_eval(e, &env, &v, &err), 0);
        assert_int_equal(wfh_expr_truthy(v), cases[i].want);
        json_decref(v);
        wfh_expr_free(e);
    }
}

static void test_stringify(void **state)
{
    (void)state;
    static const struct {
        const char *json;
        const char *want;
    } cases[] = {
        {"null", ""},           {"true", "true"},         {"false", "false"},
        {"3", "3"},             {"-0.0", "0"},            {"0.1", "0.1"},
        {"1.5e300", "1.5e+300"}, {"\"s\"", "s"},           {"[1,\"a\"]", "[1,\"a\"]"},
        {"{\"a\":{}}", "{\"a\":{}}"}, {"1e-7", "1e-7"}, {"123456789012", "123456789012"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *v = json_loads(cases[i].json, JSON_DECODE_ANY, NULL);
        assert_non_null(v);
        char *s = wfh_expr_to_string(v);
        assert_non_null(s);
        assert_string_equal(s, cases[i].want);
        free(s);
        json_decref(v);
    }
    assert_false(wfh_expr_truthy(NULL));
    static const struct {
        double d;
        const char *want;
    } nums[] = {
        {0.84551240822557006, "0.84551240822557"},
        {0.1 + 0.2, "0.3"},
        {1e15, "1000000000000000"},
        {1e21, "1e+21"},
        {1.5e300, "1.5e+300"},
        {-2.5e-7, "-2.5e-7"},
        {1e-16, "0"},
        {1234.5678901234567, "1234.5678901234567"},
        {123456789.123456789, "123456789.12345679"},
        {-0.0, "0"},
        {100, "100"},
        {0.000001, "0.000001"},
        {1.7976931348623157e308, "1.7976931348623157e+308"},
    };
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        char buf[64];
        wfh_expr_number_format(nums[i].d, buf, sizeof buf);
        if (strcmp(buf, nums[i].want) != 0)
            print_message("FAIL number %.17g: want %s got %s\n", nums[i].d, nums[i].want, buf);
        assert_string_equal(buf, nums[i].want);
    }
}

static void test_nonfinite_result(void **state)
{
    (void)state;
    wfh_expr *e = NULL;
    json_t *out = NULL;
    wfh_expr_error err;
    const char *kind = NULL;
    assert_int_equal(wfh_expr_parse("-Infinity", 9, NULL, &e, &err), 0);
    assert_true(wfh_expr_eval(e, NULL, &out, &err) < 0);
    assert_int_equal(err.kind, WFH_EXPR_ERR_EVALUATION);
    assert_null(out);
    assert_int_equal(wfh_expr_eval_kind(e, NULL, &out, &kind, &err), 0);
    assert_string_equal(kind, "Number");
    assert_string_equal(json_string_value(out), "-Infinity");
    json_decref(out);
    wfh_expr_free(e);
}

/* Parse speed: 100k small expressions, the figure printed for the report. */
static void test_parse_speed(void **state)
{
    (void)state;
    static const char *const exprs[] = {
        "steps.build.outputs.path", "inputs.n > 2 && !cancelled()",
        "format('{0}-{1}', matrix.os, inputs.n)", "contains(inputs.list, 'b') ? 1 : 2",
    };
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < 100000; i++) {
        const char *s = exprs[i % 4];
        wfh_expr *e = NULL;
        assert_int_equal(wfh_expr_parse(s, strlen(s), NULL, &e, NULL), 0);
        wfh_expr_free(e);
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double secs = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    print_message("parsed 100000 expressions in %.3f s\n", secs);
    /* Generous even under sanitizers; a quadratic slip would blow far past it. */
    assert_true(secs < 20.0);
    /* Evaluation of parsed expressions, the run-time cost. */
    wfh_expr_env env;
    memset(&env, 0, sizeof env);
    env.contexts = contexts;
    wfh_expr *parsed[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(wfh_expr_parse(exprs[i], strlen(exprs[i]), NULL, &parsed[i], NULL), 0);
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < 100000; i++) {
        json_t *v = NULL;
        assert_int_equal(wfh_expr_eval(parsed[i % 4], &env, &v, NULL), 0);
        json_decref(v);
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    secs = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    print_message("evaluated 100000 expressions in %.3f s\n", secs);
    assert_true(secs < 20.0);
    for (int i = 0; i < 4; i++)
        wfh_expr_free(parsed[i]);
    /* A long string literal parses in linear time. */
    size_t n = 1u << 20;
    char *big = malloc(n + 3);
    assert_non_null(big);
    big[0] = '\'';
    memset(big + 1, 'x', n);
    big[n + 1] = '\'';
    big[n + 2] = '\0';
    wfh_expr *e = NULL;
    clock_gettime(CLOCK_MONOTONIC, &a);
    assert_int_equal(wfh_expr_parse(big, n + 2, NULL, &e, NULL), 0);
    clock_gettime(CLOCK_MONOTONIC, &b);
    secs = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    assert_true(secs < 5.0);
    wfh_expr_free(e);
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_eval_table),
        cmocka_unit_test(test_error_offsets),
        cmocka_unit_test(test_depth_limits),
        cmocka_unit_test(test_status_functions),
        cmocka_unit_test(test_strict_step_outputs),
        cmocka_unit_test(test_refs),
        cmocka_unit_test(test_templates),
        cmocka_unit_test(test_template_refs),
        cmocka_unit_test(test_conditions),
        cmocka_unit_test(test_stringify),
        cmocka_unit_test(test_nonfinite_result),
        cmocka_unit_test(test_parse_speed),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
