/* core.encode_json(value, arrays) -> text: the JSON of a decoded answer, as
 * the mirror keeps each order (its `json` column). Numbers are written
 * exactly: a float as the shortest decimal of at most 6 places that reads
 * back as the same double (what the API sends: 12.34, 0.1, 1500), else with
 * the fewest significant digits (15 to 17) that read back as it
 * (unl_format_float, as query values are written); an integer as an
 * integer. cjson's 14 digits lost amounts, and formatting every number
 * through printf cost most of the mirror's time per order.
 *
 * A table whose keys are 1..n is an array; any other table is an object
 * (number keys written as strings, as cjson does). An empty table is an
 * object, except in a member whose name is a key of `arrays` (the API's
 * collections, which are arrays even when empty). Strings are written as
 * they are, with '"', '\\' and control characters escaped. A function,
 * userdata other than the JSON null, a NaN or infinity, a key that is not a
 * string or number, or nesting deeper than UNL_ENCODE_MAX_DEPTH is an
 * error naming what was found. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "json_encode.h"

#define UNL_ENCODE_MAX_DEPTH 100
#define JBUF_MT "unleashed.JsonBuffer"

typedef unl_jbuf jbuf;

typedef struct {
    lua_State *L;
    jbuf *b;
    int arrays;   /* stack index of the collections' names, or 0 */
} encoder;

/* Shortest "%.Ng" that reads back to the same double. snprintf and strtod
 * share the C library's locale, so the round-trip check is consistent; the
 * decimal separator is then rewritten to '.' whatever the locale says. */
size_t unl_format_float(double d, char *out, size_t size)
{
    int prec, n = 0;
    size_t i, o;
    for (prec = 15; prec <= 17; prec++) {
        n = snprintf(out, size, "%.*g", prec, d);
        if (n > 0 && (size_t)n < size && strtod(out, NULL) == d)
            break;
    }
    if (n <= 0 || (size_t)n >= size)
        return 0;
    for (i = 0, o = 0; i < (size_t)n; i++) {
        char c = out[i];
        if ((c >= '0' && c <= '9') || c == '-' || c == '+' || c == 'e' || c == 'E')
            out[o++] = c;
        else if (o == 0 || out[o - 1] != '.')
            out[o++] = '.';     /* a (possibly multi-byte) locale separator */
    }
    out[o] = '\0';
    return o;
}


static int jbuf_gc(lua_State *L)
{
    jbuf *b = (jbuf *)luaL_checkudata(L, 1, JBUF_MT);
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
    return 0;
}

/* Room for n more bytes; raises on memory errors (the box frees the buffer). */
static char *room(encoder *e, size_t n)
{
    jbuf *b = e->b;
    if (b->cap - b->len < n) {
        size_t ncap = b->cap ? b->cap : 4096;
        char *np;
        while (ncap - b->len < n) {
            if (ncap > SIZE_MAX / 2)
                luaL_error(e->L, "encode_json: the text is too large");
            ncap *= 2;
        }
        np = realloc(b->p, ncap);
        if (np == NULL)
            luaL_error(e->L, "encode_json: not enough memory");
        b->p = np;
        b->cap = ncap;
    }
    return b->p + b->len;
}

static void put(encoder *e, const char *s, size_t n)
{
    jbuf *b = e->b;
    memcpy(b->cap - b->len >= n ? b->p + b->len : room(e, n), s, n);
    b->len += n;
}

static void put_char(encoder *e, char c)
{
    jbuf *b = e->b;
    if (b->len == b->cap)
        room(e, 1);
    b->p[b->len++] = c;
}

/* 1: written as is; 0: escaped. */
static const unsigned char PLAIN[256] = {
    [0x20] = 1, [0x21] = 1, [0x23] = 1, [0x24] = 1, [0x25] = 1, [0x26] = 1, [0x27] = 1,
    [0x28] = 1, [0x29] = 1, [0x2a] = 1, [0x2b] = 1, [0x2c] = 1, [0x2d] = 1, [0x2e] = 1, [0x2f] = 1,
#define ROW16(h) [h + 0] = 1, [h + 1] = 1, [h + 2] = 1, [h + 3] = 1, [h + 4] = 1, [h + 5] = 1, \
    [h + 6] = 1, [h + 7] = 1, [h + 8] = 1, [h + 9] = 1, [h + 10] = 1, [h + 11] = 1, [h + 12] = 1, \
    [h + 13] = 1, [h + 14] = 1, [h + 15] = 1
    ROW16(0x30), ROW16(0x40), [0x50] = 1, [0x51] = 1, [0x52] = 1, [0x53] = 1, [0x54] = 1, [0x55] = 1,
    [0x56] = 1, [0x57] = 1, [0x58] = 1, [0x59] = 1, [0x5a] = 1, [0x5b] = 1, [0x5d] = 1, [0x5e] = 1,
    [0x5f] = 1, ROW16(0x60), ROW16(0x70), ROW16(0x80), ROW16(0x90), ROW16(0xa0), ROW16(0xb0),
    ROW16(0xc0), ROW16(0xd0), ROW16(0xe0), ROW16(0xf0),
#undef ROW16
};

/* The room is made once for the longest text s can become (every byte
 * written as \u00XX), then bytes are copied without further checks. */
static void put_string(encoder *e, const char *s, size_t n)
{
    static const char HEX[] = "0123456789abcdef";
    char *o, *start;
    size_t i;
    if (n > (SIZE_MAX - 2) / 6)
        luaL_error(e->L, "encode_json: the text is too large");
    start = o = room(e, 6 * n + 2);
    *o++ = '"';
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (PLAIN[c]) {
            *o++ = (char)c;
            continue;
        }
        *o++ = '\\';
        switch (c) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '\n': *o++ = 'n'; break;
        case '\r': *o++ = 'r'; break;
        case '\t': *o++ = 't'; break;
        case '\b': *o++ = 'b'; break;
        case '\f': *o++ = 'f'; break;
        default:
            *o++ = 'u';
            *o++ = '0';
            *o++ = '0';
            *o++ = HEX[c >> 4];
            *o++ = HEX[c & 15];
        }
    }
    *o++ = '"';
    e->b->len += (size_t)(o - start);
}

static const double POW10[] = { 1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6 };

/* Writes |m| (below 2^53) with `places` decimals; returns the length. */
static size_t decimal_text(char *out, int negative, uint64_t m, int places)
{
    char digits[24];
    size_t nd = 0, o = 0;
    int k;
    do {
        digits[nd++] = (char)('0' + m % 10);
        m /= 10;
    } while (m > 0);
    while ((int)nd <= places)
        digits[nd++] = '0';   /* 0.05: a zero before the point */
    if (negative)
        out[o++] = '-';
    for (k = (int)nd - 1; k >= 0; k--) {
        out[o++] = digits[k];
        if (k == places && places > 0)
            out[o++] = '.';
    }
    return o;
}

static void put_number(encoder *e, lua_Number v)
{
    char out[40];
    size_t n;
    int k;
    if (v != v || v == (lua_Number)HUGE_VAL || v == -(lua_Number)HUGE_VAL)
        luaL_error(e->L, "encode_json: cannot write %s as JSON", v != v ? "NaN" : "an infinite number");
    for (k = 0; k <= 6; k++) {
        /* m, the nearest integer to v * 10^k (the product may be a hair
         * off), stands for v when m / 10^k gives v back: the division and
         * reading the decimal back are both the correctly rounded value of
         * the same decimal m / 10^k */
        double whole = floor((double)v * POW10[k] + 0.5);
        if (fabs(whole) < 9007199254740992.0 && whole / POW10[k] == (double)v) {
            int negative = whole < 0 || (whole == 0 && signbit(v));
            n = decimal_text(out, negative, (uint64_t)fabs(whole), k);
            put(e, out, n);
            return;
        }
    }
    n = unl_format_float((double)v, out, sizeof out);
    put(e, out, n);
}

/* The length n when the table at idx has exactly the keys 1..n (n may be
 * 0 for an empty table), else -1. */
static lua_Integer array_length(lua_State *L, int idx)
{
    lua_Integer n = (lua_Integer)lua_rawlen(L, idx), count = 0;
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        lua_pop(L, 1);
        if (!lua_isinteger(L, -1)) {
            lua_pop(L, 1);
            return -1;
        }
        {
            lua_Integer key = lua_tointeger(L, -1);
            if (key < 1 || key > n) {
                lua_pop(L, 1);
                return -1;
            }
        }
        count++;
    }
    return count == n ? n : -1;
}

static void value(encoder *e, int idx, int depth, int as_array);

static void table(encoder *e, int idx, int depth, int as_array)
{
    lua_State *L = e->L;
    lua_Integer n, i;
    int first = 1;
    if (depth > UNL_ENCODE_MAX_DEPTH)
        luaL_error(L, "encode_json: tables nested deeper than %d (a table inside itself?)",
                   UNL_ENCODE_MAX_DEPTH);
    luaL_checkstack(L, 6, "encode_json");
    n = array_length(L, idx);
    if (n > 0 || (n == 0 && as_array)) {
        put_char(e, '[');
        for (i = 1; i <= n; i++) {
            if (i > 1)
                put_char(e, ',');
            lua_rawgeti(L, idx, i);
            value(e, lua_gettop(L), depth + 1, 0);
            lua_pop(L, 1);
        }
        put_char(e, ']');
        return;
    }
    put_char(e, '{');
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        size_t klen;
        const char *key;
        int member_array = 0;
        int kt = lua_type(L, -2);
        if (kt != LUA_TSTRING && kt != LUA_TNUMBER)
            luaL_error(L, "encode_json: a key that is a %s (string or number expected)", lua_typename(L, kt));
        if (!first)
            put_char(e, ',');
        first = 0;
        if (kt == LUA_TSTRING) {
            key = lua_tolstring(L, -2, &klen);
            put_string(e, key, klen);
        } else {
            /* a copy: lua_tolstring would turn the number key itself into a string */
            lua_pushvalue(L, -2);
            key = lua_tolstring(L, -1, &klen);
            put_string(e, key, klen);
            lua_pop(L, 1);
        }
        put_char(e, ':');
        if (e->arrays && lua_istable(L, -1)) {
            lua_pushvalue(L, -2);
            member_array = lua_rawget(L, e->arrays) != LUA_TNIL;
            lua_pop(L, 1);
        }
        value(e, lua_gettop(L), depth + 1, member_array);
        lua_pop(L, 1);
    }
    put_char(e, '}');
}

static void value(encoder *e, int idx, int depth, int as_array)
{
    lua_State *L = e->L;
    switch (lua_type(L, idx)) {
    case LUA_TTABLE:
        table(e, idx, depth, as_array);
        break;
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        put_string(e, s, n);
        break;
    }
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) {
            char out[24];
            int n = snprintf(out, sizeof out, LUA_INTEGER_FMT, (LUAI_UACINT)lua_tointeger(L, idx));
            put(e, out, (size_t)n);
        } else {
            put_number(e, lua_tonumber(L, idx));
        }
        break;
    case LUA_TBOOLEAN:
        if (lua_toboolean(L, idx))
            put(e, "true", 4);
        else
            put(e, "false", 5);
        break;
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == NULL) {
            put(e, "null", 4);   /* cjson.null: an array's null item */
            break;
        }
        /* fall through */
    default:
        luaL_error(L, "encode_json: cannot write a %s as JSON", luaL_typename(L, idx));
    }
}

void unl_json_encode(lua_State *L, int idx, int arrays, unl_jbuf *b)
{
    encoder e;
    e.L = L;
    e.b = b;
    e.arrays = arrays;
    value(&e, lua_absindex(L, idx), 0, 0);
}

static int l_encode_json(lua_State *L)
{
    jbuf *b;
    luaL_checkany(L, 1);
    if (!lua_isnoneornil(L, 2))
        luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
    b = (jbuf *)lua_newuserdatauv(L, sizeof *b, 0);
    b->p = NULL;
    b->len = b->cap = 0;
    if (luaL_newmetatable(L, JBUF_MT)) {
        lua_pushcfunction(L, jbuf_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    unl_json_encode(L, 1, lua_istable(L, 2) ? 2 : 0, b);
    lua_pushlstring(L, b->p ? b->p : "", b->len);
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
    return 1;
}

void unl_open_encode(lua_State *L)
{
    lua_pushcfunction(L, l_encode_json);
    lua_setfield(L, -2, "encode_json");
}
