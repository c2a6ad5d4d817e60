/*
 * json_in.h - just enough JSON reading for a step's inputs, with no library.
 *
 * A step's inputs arrive as JSON text (wfh_step_request.inputs_json). The host has
 * already checked them against the step type's input schema, but a plugin must not
 * trust that (an older host, `wfhost plugin check` sending bad inputs on purpose), so
 * every reader here reports malformed text instead of reading past it. Use any JSON
 * library you like instead; this file is part of the template so that the template
 * builds with nothing but a C compiler and the wfhost headers.
 */
#ifndef JSON_IN_H
#define JSON_IN_H

#include <stddef.h>

typedef enum jin_type {
    JIN_NONE,
    JIN_NULL,
    JIN_BOOL,
    JIN_NUMBER,
    JIN_STRING,
    JIN_ARRAY,
    JIN_OBJECT
} jin_type;

/* One value inside the caller's text: borrowed, valid as long as that text is. */
typedef struct jin_val {
    jin_type type;
    const char *p; /* first byte of the value (the quote, for a string) */
    size_t len;    /* bytes up to the end of the value */
} jin_val;

/* Parse @p json (@p len bytes) as one value, with nothing but whitespace after it.
 * Returns 0 and fills @p out, or -1 if the text is not JSON. */
int jin_parse(const char *json, size_t len, jin_val *out);

/* Member @p key of object @p obj. Returns 1 (found, *out set), 0 (absent), -1 (@p obj
 * is not an object). */
int jin_get(const jin_val *obj, const char *key, jin_val *out);

/* Calls @p fn for each member of object @p obj; stops early if @p fn returns non-zero
 * and returns that value. The key is decoded into a buffer valid during the call. */
int jin_each(const jin_val *obj, int (*fn)(void *ud, const char *key, const jin_val *v), void *ud);

/* Decode string @p v into @p buf (NUL-terminated, UTF-8). Returns the decoded length,
 * or -1 if @p v is not a string, contains a NUL, or does not fit in @p cap bytes. */
long jin_string(const jin_val *v, char *buf, size_t cap);

/* Integer value of @p v (a number without fraction or exponent that fits a long
 * long). Returns 0 or -1. */
int jin_int(const jin_val *v, long long *out);

/* Append @p s as a JSON string literal (quotes, escapes) to @p buf of @p cap bytes
 * at offset *@p off. Returns 0, or -1 if it does not fit. */
int jin_quote(char *buf, size_t cap, size_t *off, const char *s);

#endif
