/*
 * tests/unit/store_fixture.h - what the run store's unit tests share: a throwaway
 * wfhost home, opening a store that must open, and a run to record into.
 */
#ifndef WFH_TEST_STORE_FIXTURE_H
#define WFH_TEST_STORE_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "error.h"
#include "store.h"

/* A fresh directory under /tmp (owned by the caller: home_rm). */
static inline char *home_new(void)
{
    char tmpl[] = "/tmp/wfh-store-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    return strdup(tmpl);
}

/* Removes @p home and everything in it, and frees the string. */
static inline void home_rm(char *home)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", home);
    assert_int_equal(system(cmd), 0);
    free(home);
}

/* The store in @p home (owned by the caller: wfh_store_free); fails the test if not. */
static inline wfh_store *open_ok(const char *home, unsigned flags)
{
    wfh_store *s = NULL;
    int err = wfh_store_open(home, flags, &s);
    if (err < 0)
        fail_msg("open %s: %s", home, wfh_error_last());
    return s;
}

/* A new run of workflow @p workflow; its id (owned by the caller). */
static inline char *new_run(wfh_store *s, const char *workflow)
{
    char *id = NULL;
    wfh_store_run_new r = {.workflow = workflow, .file_path = "flow.yaml", .file_hash = "abc"};
    int err = wfh_store_run_create(s, &r, &id);
    if (err < 0)
        fail_msg("create: %s", wfh_error_last());
    return id;
}

#endif
