/*
 * tests/unit/test_inputs_env.c - workflow inputs that take their value from a named host
 * environment variable (`env:` in an input's declaration, core/lang.c): precedence
 * (-i / --inputs, then the variable, then the default), typed parsing, the errors for
 * bad names, bad values and secrets, and that recorded inputs (resume) never read the
 * environment again.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <wfhost/plugin.h>

#include "diag.h"
#include "error.h"
#include "lang.h"
#include "workflow.h"

static wfh_workflow *parse(const char *yaml, wfh_diags *d)
{
    wfh_workflow *wf = NULL; /* owned by the caller */
    wfh_diags_init(d, "t.yaml", NULL, 0);
    wfh_workflow_parse("t.yaml", yaml, strlen(yaml), &wf, d);
    return wf;
}

static const char flow[] = "name: t\n"
                           "inputs:\n"
                           "  base: {type: string, default: '', env: WFH_T_BASE}\n"
                           "  n: {type: number, default: 1, env: WFH_T_N}\n"
                           "  must: {type: string, required: true, env: WFH_T_MUST}\n"
                           "  plain: {type: string, default: p}\n"
                           "steps:\n"
                           "  - id: a\n"
                           "    uses: shell\n";

static void clear_env(void)
{
    unsetenv("WFH_T_BASE");
    unsetenv("WFH_T_N");
    unsetenv("WFH_T_MUST");
    unsetenv("plain");
}

static void test_env_fills_inputs_not_given(void **state)
{
    (void)state;
    wfh_diags d;
    wfh_workflow *wf = parse(flow, &d);
    assert_non_null(wf);
    assert_int_equal(d.errors, 0);
    assert_string_equal(wf->inputs[0].env, "WFH_T_BASE");
    assert_int_equal(wf->inputs[0].env_line, 3);
    assert_null(wf->inputs[3].env);
    clear_env();
    setenv("WFH_T_BASE", "http://127.0.0.1:9/v1", 1);
    setenv("WFH_T_N", "42", 1);
    setenv("WFH_T_MUST", "yes", 1);
    setenv("plain", "leaked", 1); /* no env: on it, so never read */

    json_t *out = NULL; /* owned */
    assert_int_equal(wfh_inputs_resolve(wf, NULL, &out), 0);
    assert_string_equal(json_string_value(json_object_get(out, "base")), "http://127.0.0.1:9/v1");
    assert_int_equal(json_integer_value(json_object_get(out, "n")), 42);
    assert_string_equal(json_string_value(json_object_get(out, "must")), "yes");
    assert_string_equal(json_string_value(json_object_get(out, "plain")), "p");
    json_decref(out);

    /* Given on the command line wins over the variable. */
    json_t *given = json_pack("{s:s, s:i}", "base", "cli", "n", 7); /* owned */
    assert_int_equal(wfh_inputs_resolve(wf, given, &out), 0);
    assert_string_equal(json_string_value(json_object_get(out, "base")), "cli");
    assert_int_equal(json_integer_value(json_object_get(out, "n")), 7);
    json_decref(out);
    json_decref(given);

    /* An empty variable counts as unset: the default applies. */
    setenv("WFH_T_BASE", "", 1);
    unsetenv("WFH_T_N");
    assert_int_equal(wfh_inputs_resolve(wf, NULL, &out), 0);
    assert_string_equal(json_string_value(json_object_get(out, "base")), "");
    assert_int_equal(json_integer_value(json_object_get(out, "n")), 1);

    /* Resume and retry pass the recorded inputs: all present, so a variable changed
     * since the run started does not change them. */
    json_t *recorded = out; /* owned */
    setenv("WFH_T_BASE", "changed", 1);
    setenv("WFH_T_N", "99", 1);
    setenv("WFH_T_MUST", "changed", 1);
    assert_int_equal(wfh_inputs_resolve(wf, recorded, &out), 0);
    assert_true(json_equal(out, recorded));
    json_decref(out);
    json_decref(recorded);
    clear_env();
    wfh_workflow_free(wf);
    wfh_diags_free(&d);
}

static void test_env_value_errors(void **state)
{
    (void)state;
    wfh_diags d;
    wfh_workflow *wf = parse(flow, &d);
    assert_non_null(wf);
    json_t *out = NULL; /* owned */
    clear_env();

    /* Required, neither given nor set: the error says both ways to give it. */
    assert_int_equal(wfh_inputs_resolve(wf, NULL, &out), WFH_EINVAL);
    assert_null(out);
    assert_non_null(strstr(wfh_error_last(), "t.yaml:5:3: input 'must' is required: pass -i "
                                             "must=... or set environment variable WFH_T_MUST"));

    /* A number input parses the text as JSON, and names the variable when it cannot. */
    setenv("WFH_T_MUST", "x", 1);
    setenv("WFH_T_N", "many", 1);
    assert_int_equal(wfh_inputs_resolve(wf, NULL, &out), WFH_EINVAL);
    assert_non_null(strstr(wfh_error_last(), "t.yaml:4:38: input 'n' takes its value from "
                                             "environment variable WFH_T_N: input 'n' is a number"));
    assert_non_null(strstr(wfh_error_last(), "'many' is not"));
    setenv("WFH_T_N", "\"3\"", 1); /* JSON, but a string */
    assert_int_equal(wfh_inputs_resolve(wf, NULL, &out), WFH_EINVAL);
    assert_non_null(strstr(wfh_error_last(), "WFH_T_N: it must be a number, not a String"));
    clear_env();
    wfh_workflow_free(wf);
    wfh_diags_free(&d);
}

static void test_env_declaration_errors(void **state)
{
    (void)state;
    static const struct {
        const char *decl, *msg;
    } bad[] = {
        {"{env: 1ABC}", "env of input 'x' must name an environment variable, not '1ABC'"},
        {"{env: A-B}", "env of input 'x' must name an environment variable, not 'A-B'"},
        {"{env: [A]}", "env of input 'x' must name an environment variable, not a list"},
        {"{env: 'A B'}", "env of input 'x' must name an environment variable, not 'A B'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char yaml[256];
        snprintf(yaml, sizeof yaml, "name: t\ninputs:\n  x: %s\nsteps:\n  - id: a\n    uses: shell\n",
                 bad[i].decl);
        wfh_diags d;
        wfh_workflow *wf = parse(yaml, &d);
        char first[512];
        wfh_diags_first(&d, first, sizeof first);
        assert_int_not_equal(d.errors, 0);
        if (!strstr(first, bad[i].msg))
            fail_msg("%s: got '%s'", bad[i].decl, first);
        assert_non_null(strstr(first, "t.yaml:3:"));
        wfh_workflow_free(wf);
        wfh_diags_free(&d);
    }

    /* A declared secret cannot be read through an input: inputs are recorded in clear. */
    wfh_diags d;
    wfh_workflow *wf = parse("name: t\nsecrets: [TOKEN]\ninputs:\n  t: {env: TOKEN}\n"
                             "steps:\n  - id: a\n    uses: shell\n",
                             &d);
    assert_non_null(wf);
    assert_int_equal(d.errors, 0);
    assert_int_equal(wfh_workflow_validate(wf, NULL, &d), WFH_EINVAL);
    assert_non_null(strstr(wfh_error_last(), "t.yaml:4:12: input 't' takes its value from TOKEN, "
                                             "which this workflow declares as a secret"));
    wfh_workflow_free(wf);
    wfh_diags_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_env_fills_inputs_not_given),
        cmocka_unit_test(test_env_value_errors),
        cmocka_unit_test(test_env_declaration_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
