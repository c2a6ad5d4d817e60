/*
 * tests/plugins/abi_variant.c - one plugin source, built once per ABI situation.
 *
 * tests/abi/CMakeLists.txt compiles this file with one VARIANT_* macro per .so, each
 * a way a plugin can be built by someone else, at another time, or wrongly:
 *   (none)                 a plain v1.0 plugin ("variant"); runs step "hello"
 *   VARIANT_MAJOR2         claims ABI 2.0 through the v1 entry symbol -> refused
 *   VARIANT_EXPORTS_V2     exports only wfh_plugin_entry_v2 -> refused, names major 2
 *   VARIANT_MINOR1         needs the next minor -> refused by this host, fine for the next
 *   VARIANT_LONG_ZERO      built by a newer minor: longer structs, unknown tail zero -> ok
 *   VARIANT_LONG_NONZERO   longer structs whose unknown tail is set -> refused
 *   VARIANT_SHORT          descriptor shorter than ABI 1.0 -> refused
 *   VARIANT_BAD_SCHEMA     input_schema is not JSON -> refused, naming the member
 *   VARIANT_BAD_NAME       plugin name breaks the naming rule -> refused
 *   VARIANT_NO_ENTRY       exports no entry symbol at all -> refused
 *   VARIANT_CTOR_CRASH     crashes in an ELF constructor -> probe reports the crash
 *   VARIANT_CTOR_HANG      hangs in an ELF constructor -> probe times out (built into a
 *                          directory of its own, so other scans do not wait for it)
 */
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <wfhost/plugin.h>

#ifndef VARIANT_NAME
#define VARIANT_NAME "variant"
#endif

static int32_t run_hello(const wfh_host_api *h, wfh_call *c, const wfh_step_request *r)
{
    (void)r;
    const char *v = "\"hello from " VARIANT_NAME "\"";
    return h->set_output(c, "greeting", v, strlen(v)) == 0 ? WFH_STEP_OK : WFH_STEP_FAILED;
}

#ifdef VARIANT_BAD_SCHEMA
#define SCHEMA "{\"type\": \"object\", oops}"
#else
#define SCHEMA "{\"type\":\"object\",\"properties\":{}}"
#endif

#if defined(VARIANT_LONG_ZERO) || defined(VARIANT_LONG_NONZERO)
/* What a plugin built against a future 1.x header looks like to this host: each struct
 * has a member appended that this host does not know. */
typedef struct future_step_type {
    wfh_step_type base;
    const char *future_member;
} future_step_type;
typedef struct future_plugin {
    wfh_plugin base;
    const char *future_member;
} future_plugin;
#ifdef VARIANT_LONG_NONZERO
#define FUTURE "uses a member this host lacks"
#else
#define FUTURE NULL
#endif
static const future_step_type types[] = {
    {{sizeof(future_step_type), "hello", "say hello", SCHEMA, "{\"greeting\":\"a greeting\"}", NULL, run_hello},
     NULL},
};
static const future_plugin plugin = {
    {sizeof(future_plugin), WFH_ABI_MAJOR, WFH_ABI_MINOR, 1, sizeof(future_step_type), VARIANT_NAME, "1.0.0",
     "a plugin from a newer minor", &types[0].base, NULL},
    FUTURE,
};
WFH_PLUGIN_EXPORT const wfh_plugin *wfh_plugin_entry_v1(void)
{
    return &plugin.base;
}
#else

static const wfh_step_type types[] = {
    {sizeof(wfh_step_type), "hello", "say hello", SCHEMA, "{\"greeting\":\"a greeting\"}",
     "{\"run\":[\"/bin/true\"]}", run_hello},
};

#if defined(VARIANT_MAJOR2)
#define MAJOR 2
#else
#define MAJOR WFH_ABI_MAJOR
#endif
#if defined(VARIANT_MINOR1)
#define MINOR (WFH_ABI_MINOR + 1)
#elif defined(VARIANT_MAJOR2)
#define MINOR 0 /* the first release of major 2 */
#else
#define MINOR WFH_ABI_MINOR
#endif
#if defined(VARIANT_SHORT)
#define SIZE offsetof(wfh_plugin, step_types)
#else
#define SIZE sizeof(wfh_plugin)
#endif
#if defined(VARIANT_BAD_NAME)
#define PNAME "Bad Name"
#else
#define PNAME VARIANT_NAME
#endif

static const wfh_plugin plugin = {
    SIZE, MAJOR, MINOR, 1, sizeof(wfh_step_type), PNAME, "1.0.0", "an ABI test plugin", types, NULL,
};

#if defined(VARIANT_NO_ENTRY)
WFH_PLUGIN_EXPORT const wfh_plugin *not_the_entry(void);
WFH_PLUGIN_EXPORT const wfh_plugin *not_the_entry(void)
{
    return &plugin;
}
#elif defined(VARIANT_EXPORTS_V2)
WFH_PLUGIN_EXPORT const wfh_plugin *wfh_plugin_entry_v2(void);
WFH_PLUGIN_EXPORT const wfh_plugin *wfh_plugin_entry_v2(void)
{
    return &plugin;
}
#else
WFH_PLUGIN_EXPORT const wfh_plugin *wfh_plugin_entry_v1(void)
{
    return &plugin;
}
#endif
#endif

#ifdef VARIANT_CTOR_CRASH
__attribute__((constructor)) static void crash_on_load(void)
{
    raise(SIGSEGV);
}
#endif

#ifdef VARIANT_CTOR_HANG
__attribute__((constructor)) static void hang_on_load(void)
{
    for (;;)
        pause();
}
#endif
