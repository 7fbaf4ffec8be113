/* Query encoding: one sorted list of pairs gives both the text that is
 * signed (raw "k=v&k=v") and the text that goes on the wire (RFC 3986
 * percent-encoded), so the two can never disagree on order or content. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* ---- values ------------------------------------------------------------ */

/* 2^63 as a double: integral floats below it in magnitude fit lua_Integer. */
#define TWO_POW_63 9223372036854775808.0

/* Pushes the text of the value at idx; raises naming key on a value that has
 * no query form. */
static void push_value_text(lua_State *L, int idx, const char *key)
{
    char num[400];   /* "%.0f" of DBL_MAX is 309 digits */
    size_t n;
    switch (lua_type(L, idx)) {
    case LUA_TSTRING:
        lua_pushvalue(L, idx);
        return;
    case LUA_TBOOLEAN:
        if (lua_toboolean(L, idx))
            lua_pushliteral(L, "true");
        else
            lua_pushliteral(L, "false");
        return;
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) {
            lua_pushfstring(L, "%I", (LUAI_UACINT)lua_tointeger(L, idx));
            return;
        } else {
            double d = (double)lua_tonumber(L, idx);
            if (isnan(d))
                luaL_error(L, "query: key \"%s\": value is NaN", key);
            if (isinf(d))
                luaL_error(L, "query: key \"%s\": value is infinite", key);
            if (d == floor(d)) {
                if (d >= -TWO_POW_63 && d < TWO_POW_63) {
                    /* -0.0 becomes 0 here, like math.tointeger */
                    lua_pushfstring(L, "%I", (LUAI_UACINT)(lua_Integer)d);
                    return;
                }
                /* Beyond 64 bits: every such double is an exact integer,
                 * which "%.0f" prints digit for digit. */
                n = (size_t)snprintf(num, sizeof num, "%.0f", d);
            } else {
                n = unl_format_float(d, num, sizeof num);
            }
            if (n == 0 || n >= sizeof num)
                luaL_error(L, "query: key \"%s\": number cannot be formatted", key);
            lua_pushlstring(L, num, n);
            return;
        }
    default:
        luaL_error(L, "query: key \"%s\": value must be a string, number or boolean, not a %s",
                   key, luaL_typename(L, idx));
    }
}

/* ---- pairs ------------------------------------------------------------- */

typedef struct {
    const char *k, *v;
    size_t kl, vl;
} Pair;

static int pair_cmp(const void *a, const void *b)
{
    const Pair *p = (const Pair *)a, *q = (const Pair *)b;
    size_t n = p->kl < q->kl ? p->kl : q->kl;
    int c = memcmp(p->k, q->k, n);
    if (c != 0)
        return c;
    return (p->kl > q->kl) - (p->kl < q->kl);
}

static void key_error(lua_State *L, int keyidx)
{
    const char *tname = luaL_typename(L, keyidx);
    /* luaL_tolstring gives the key's value; for a table that is its address */
    const char *text = luaL_tolstring(L, keyidx, NULL);
    luaL_error(L, "query: key %s (a %s): keys must be strings", text, tname);
}

static const char HEX[] = "0123456789ABCDEF";

/* 1 for the RFC 3986 unreserved bytes, which go on the wire as they are. */
static const unsigned char UNRESERVED[256] = {
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1,
    ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1,
    ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1,
    ['V'] = 1, ['W'] = 1, ['X'] = 1, ['Y'] = 1, ['Z'] = 1,
    ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1,
    ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1,
    ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1,
    ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1,
    ['7'] = 1, ['8'] = 1, ['9'] = 1, ['-'] = 1, ['.'] = 1, ['_'] = 1, ['~'] = 1,
};

static void add_encoded(luaL_Buffer *b, const char *s, size_t len)
{
    char *out = luaL_prepbuffsize(b, len * 3);
    size_t i, o = 0;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (UNRESERVED[c]) {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = HEX[c >> 4];
            out[o++] = HEX[c & 15];
        }
    }
    luaL_addsize(b, o);
}

void unl_query_push(lua_State *L, int idx)
{
    Pair *pairs;
    size_t n = 0, i;
    int anchor;
    luaL_Buffer b;

    idx = lua_absindex(L, idx);
    if (lua_isnoneornil(L, idx)) {
        lua_pushliteral(L, "");
        lua_pushliteral(L, "");
        return;
    }
    if (lua_type(L, idx) != LUA_TTABLE)
        luaL_error(L, "query: must be a table, not a %s", luaL_typename(L, idx));
    luaL_checkstack(L, 8, "query: too many pairs");

    /* The anchor keeps each key and its value text alive (keys at 2i-1,
     * texts at 2i) while the sorted array points into them. */
    lua_newtable(L);
    anchor = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        const char *key;
        if (lua_type(L, -2) != LUA_TSTRING)
            key_error(L, -2);
        key = lua_tostring(L, -2);
        if (lua_rawlen(L, -2) == 0)
            luaL_error(L, "query: key \"\": keys must not be empty");
        push_value_text(L, -1, key);
        lua_rawseti(L, anchor, (lua_Integer)(2 * n + 2));
        lua_pop(L, 1);
        lua_pushvalue(L, -1);
        lua_rawseti(L, anchor, (lua_Integer)(2 * n + 1));
        n++;
    }

    pairs = (Pair *)lua_newuserdatauv(L, (n ? n : 1) * sizeof *pairs, 0);
    for (i = 0; i < n; i++) {
        lua_rawgeti(L, anchor, (lua_Integer)(2 * i + 1));
        pairs[i].k = lua_tolstring(L, -1, &pairs[i].kl);
        lua_rawgeti(L, anchor, (lua_Integer)(2 * i + 2));
        pairs[i].v = lua_tolstring(L, -1, &pairs[i].vl);
        lua_pop(L, 2);   /* still anchored: the pointers stay valid */
    }
    /* memcmp order, not strcoll: the order must not depend on the locale */
    qsort(pairs, n, sizeof *pairs, pair_cmp);

    luaL_buffinit(L, &b);
    for (i = 0; i < n; i++) {
        if (i)
            luaL_addchar(&b, '&');
        luaL_addlstring(&b, pairs[i].k, pairs[i].kl);
        luaL_addchar(&b, '=');
        luaL_addlstring(&b, pairs[i].v, pairs[i].vl);
    }
    luaL_pushresult(&b);

    luaL_buffinit(L, &b);
    for (i = 0; i < n; i++) {
        if (i)
            luaL_addchar(&b, '&');
        add_encoded(&b, pairs[i].k, pairs[i].kl);
        luaL_addchar(&b, '=');
        add_encoded(&b, pairs[i].v, pairs[i].vl);
    }
    luaL_pushresult(&b);

    /* leave only signed, wire */
    lua_rotate(L, anchor, 2);
    lua_pop(L, 2);
}
