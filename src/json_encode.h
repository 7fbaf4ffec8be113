/* The JSON encoder (encode.c): compiled into the core (core.encode_json)
 * and into unleashed.sqlite, whose writer puts each order's JSON straight
 * into the page it hands to its thread. Needs only Lua's API. */
#ifndef UNLEASHED_JSON_ENCODE_H
#define UNLEASHED_JSON_ENCODE_H

#include <stddef.h>

#include <lua.h>

/* A growable text; its owner frees p. */
typedef struct {
    char *p;
    size_t len, cap;
} unl_jbuf;

/* Appends the JSON of the value at idx to b (see encode.c for the rules);
 * arrays is the stack index of the names of members that are arrays when
 * empty, or 0. Raises on what JSON cannot hold and on memory errors; b
 * stays its owner's to free either way. */
void unl_json_encode(lua_State *L, int idx, int arrays, unl_jbuf *b);

/* Sets core.encode_json in the table on top of the stack. */
void unl_open_encode(lua_State *L);

/* The shortest "%.15g" to "%.17g" of d that reads back as d, with '.' for
 * the locale's decimal separator; 0 when it does not fit size. */
size_t unl_format_float(double d, char *out, size_t size);

#endif
