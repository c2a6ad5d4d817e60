/*
 * core/ydoc.h - a YAML document as a tree of nodes that remember where they came from.
 *
 * libyaml's event stream is turned into this small tree once; everything after it
 * (workflow model, validator, expression positions) reads nodes, never YAML text, and
 * every node carries its 1-based line and column so any later stage can point at it.
 * Anchors/aliases are refused (a workflow does not need them and they enable
 * billion-laughs blow-ups); so are duplicate mapping keys and multi-document files.
 */
#ifndef WFH_YDOC_H
#define WFH_YDOC_H

#include <jansson.h>
#include <stddef.h>

#include "diag.h"

typedef enum { WFH_Y_SCALAR, WFH_Y_SEQ, WFH_Y_MAP } wfh_ykind;

/* Scalar styles; the loader needs them to turn an offset inside a scalar's value back
 * into a line and column of the file. */
typedef enum {
    WFH_YS_PLAIN, WFH_YS_SINGLE, WFH_YS_DOUBLE, WFH_YS_LITERAL, WFH_YS_FOLDED
} wfh_ystyle;

/* Limits that keep hostile documents cheap: nesting depth, nodes, input bytes. */
#define WFH_YDOC_MAX_DEPTH 64
#define WFH_YDOC_MAX_NODES 20000000u
#define WFH_YDOC_MAX_BYTES (256u * 1024u * 1024u)

/* Every node, array and scalar text lives in the root's arena (see wfh_ynode_free), and
 * the fields are packed: a 100 000-step workflow makes over a million nodes. */
typedef struct wfh_ynode {
    /* scalar */
    char *str;                /* NUL-terminated (may contain NULs: use len) */
    size_t len;
    /* sequence: items[0..n); mapping: keys[i] -> items[i] */
    size_t n;
    struct wfh_ynode **items;
    struct wfh_ynode **keys;  /* mapping only; keys are scalars */
    struct wfh_yarena *arena; /* root only: owns every node, array and scalar of the tree */
    unsigned line, col;       /* 1-based position of the node's first character */
    unsigned char kind;       /* a wfh_ykind */
    unsigned char plain;      /* 1 if the scalar was unquoted (so may be null/bool/number) */
    unsigned char style;      /* a wfh_ystyle: how the scalar was written */
} wfh_ynode;

/* Parse @p buf (borrowed) into a tree. Problems are added to @p diags with positions;
 * returns 0 and *out (owned by the caller, free with wfh_ynode_free), or a negative
 * WFH_E* code with *out NULL. */
int wfh_ydoc_parse(const char *buf, size_t len, wfh_ynode **out, wfh_diags *diags);

/* Frees a whole tree. Nodes live in one arena owned by the root (parsing 100 000 steps
 * makes millions of nodes), so only a root returned by wfh_ydoc_parse may be freed. */
void wfh_ynode_free(wfh_ynode *root);

/* The value of key @p key in mapping @p map, or NULL. Borrowed from @p map. */
const wfh_ynode *wfh_ynode_get(const wfh_ynode *map, const char *key);

/* Convert to JSON with YAML 1.2 core-schema typing of plain scalars (null, true/false,
 * integers, floats); quoted scalars stay strings. Returns a new reference or NULL. */
json_t *wfh_ynode_to_json(const wfh_ynode *n);

/* The JSON value of one scalar under the core schema (see above). New reference or NULL
 * (out of memory, or a string that is not valid UTF-8). */
json_t *wfh_yscalar_to_json(const wfh_ynode *n);

/* 1-based line and column in @p src of byte @p offset of the parsed value of scalar @p n
 * (exact for plain and single-line quoted scalars, best effort for block scalars and
 * escapes). @p src may be NULL (then only single-line arithmetic is done). */
void wfh_yscalar_pos(const wfh_ynode *n, const char *src, size_t src_len, size_t offset,
                     unsigned *line, unsigned *col);

#endif
