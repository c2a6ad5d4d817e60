/*
 * registry/index.h - the registry index: THE signed snapshot of installed plugins.
 *
 * index.json is strict JSON (duplicate keys, unknown keys and wrong types are refused,
 * 4 MiB cap) because step types carry JSON Schemas anyway and one parser is less
 * attack surface than two. minisign signs raw bytes, so no canonical form is needed:
 * the bytes that were signed are the bytes that are parsed.
 */
#ifndef WFH_REG_INDEX_H
#define WFH_REG_INDEX_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define WFH_INDEX_FORMAT 1
#define WFH_INDEX_MAX_BYTES (4u << 20)
#define WFH_INDEX_MAX_PLUGINS 1024
#define WFH_BLOB_MAX_BYTES (256u << 20)

enum { WFH_PSTATE_ACTIVE = 0, WFH_PSTATE_DISABLED = 1, WFH_PSTATE_YANKED = 2 };

typedef struct wfh_reg_type {
    char *name;           /* owned */
    char *description;    /* owned, may be NULL */
    json_t *input_schema; /* owned reference: object */
    json_t *outputs;      /* owned reference: object */
    json_t *capabilities; /* owned reference: object */
} wfh_reg_type;

typedef struct wfh_reg_plugin {
    char *name;          /* owned: ^[a-z][a-z0-9_-]{0,63}$ */
    char *version;       /* owned: MAJOR.MINOR.PATCH */
    unsigned version_major;
    unsigned abi_major, abi_minor;
    char *description;   /* owned, may be NULL */
    char blake2b256[65]; /* lowercase hex: also the blob's file name */
    char sha256[65];
    uint64_t size;
    int state;           /* WFH_PSTATE_* */
    wfh_reg_type *types; /* owned array */
    size_t n_types;
} wfh_reg_plugin;

typedef struct wfh_index {
    uint64_t seq;          /* only grows */
    time_t issued, expires;
    uint64_t keys_version; /* the keys.txt version this index belongs to */
    unsigned threshold;    /* distinct trusted keys the signers asked for */
    wfh_reg_plugin *plugins; /* owned array */
    size_t n_plugins;
} wfh_index;

/* Parse index text; every problem is a WFH_EPARSE naming @p what (and the JSON
 * line:column for syntax errors). *out owned: wfh_index_free. */
int wfh_index_parse(const char *text, size_t len, const char *what, wfh_index **out);
/* Serialize (pretty, stable key order). *out owned, NUL-terminated. */
int wfh_index_serialize(const wfh_index *ix, char **out, size_t *len);
void wfh_index_free(wfh_index *ix);
/* A new, empty index. */
wfh_index *wfh_index_new(void);
/* Deep copy of plugin @p src into @p dst (dst is overwritten). */
int wfh_reg_plugin_copy(wfh_reg_plugin *dst, const wfh_reg_plugin *src);
void wfh_reg_plugin_clear(wfh_reg_plugin *p);
/* Append a deep copy of @p p. */
int wfh_index_add(wfh_index *ix, const wfh_reg_plugin *p);
/* Remove entry @p i (clears it). */
void wfh_index_remove_at(wfh_index *ix, size_t i);

/* Validators shared with the installer. */
int wfh_reg_name_ok(const char *s);
int wfh_reg_version_ok(const char *s, unsigned *major);
const char *wfh_reg_state_name(int state);
/* RFC 3339 UTC "YYYY-MM-DDTHH:MM:SSZ" <-> time_t. */
int wfh_reg_time_parse(const char *s, time_t *out);
void wfh_reg_time_format(time_t t, char out[21]);

#endif
