/* libFuzzer target: the response decoder on arbitrary bytes, read straight
 * from the fuzzer's buffer so AddressSanitizer sees any read past its end.
 * Decoding must give a value or a message, never crash; decoding the same
 * bytes again with the same decoder (its key cache now warm) must give the
 * same outcome; and the pager's parse (a Page, strings copied) must agree:
 * the same message, or page:doc() the same value. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <lua.h>
#include <lauxlib.h>

#include "decode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
    const uint8_t *p;
    size_t n;
} Input;

/* Whether a and b (stack indices) hold the same decoded value. */
static int same(lua_State *L, int a, int b, int depth)
{
    a = lua_absindex(L, a);
    b = lua_absindex(L, b);
    if (lua_type(L, a) != lua_type(L, b))
        return 0;
    if (lua_type(L, a) != LUA_TTABLE)
        return lua_rawequal(L, a, b) ||
               (lua_type(L, a) == LUA_TNUMBER && lua_isinteger(L, a) == lua_isinteger(L, b) &&
                lua_tonumber(L, a) == lua_tonumber(L, b));
    if (depth > UNL_DECODE_MAX_DEPTH + 1 || lua_rawlen(L, a) != lua_rawlen(L, b))
        return 0;
    lua_pushnil(L);
    while (lua_next(L, a)) {
        lua_pushvalue(L, -2);
        lua_rawget(L, b);
        if (!same(L, -1, -2, depth + 1)) {
            lua_pop(L, 3);
            return 0;
        }
        lua_pop(L, 2);
    }
    return 1;
}

static int run(lua_State *L)
{
    Input *in = (Input *)lua_touserdata(L, 1);
    int dec, first, ok1, ok2;
    unl_decoder_new(L);
    dec = lua_gettop(L);
    ok1 = unl_decode_push(L, dec, (const char *)in->p, in->n);
    first = lua_gettop(L);
    ok2 = unl_decode_push(L, dec, (const char *)in->p, in->n);
    if (ok1 != ok2)
        abort();
    if (ok1) {
        if (!same(L, first, -1, 0))
            abort();
    } else if (!lua_isstring(L, first - 1) || strcmp(lua_tostring(L, first - 1), lua_tostring(L, -2)) != 0) {
        abort();   /* the same message */
    }
    {
        unl_page **box = unl_page_box(L);
        int pbox = lua_gettop(L);
        *box = unl_page_parse((const char *)in->p, in->n, NULL);
        if (*box == NULL)
            return 0;   /* out of memory */
        lua_getfield(L, pbox, ok1 ? "doc" : "error");
        lua_pushvalue(L, pbox);
        lua_call(L, 1, ok1 ? 1 : 2);
        if (ok1 ? !same(L, first, -1, 0)
                : (!lua_isstring(L, -2) || strcmp(lua_tostring(L, -2), lua_tostring(L, first - 1)) != 0))
            abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Input in;
    lua_State *L = luaL_newstate();
    if (L == NULL)
        return 0;
    in.p = data;
    in.n = size;
    lua_pushcfunction(L, run);
    lua_pushlightuserdata(L, &in);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK)
        abort();
    lua_close(L);
    return 0;
}
