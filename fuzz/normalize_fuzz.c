/* libFuzzer target: the JSON normaliser on arbitrary bytes, read straight
 * from the fuzzer's buffer so AddressSanitizer sees any read past its end.
 * Normalising twice must change nothing the second time. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <lua.h>
#include <lauxlib.h>

#include "codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
    const uint8_t *p;
    size_t n;
} Input;

static int run(lua_State *L)
{
    Input *in = (Input *)lua_touserdata(L, 1);
    size_t n1, n2;
    const char *once, *twice;
    unl_normalize_push(L, (const char *)in->p, in->n);
    once = lua_tolstring(L, -1, &n1);
    if (n1 > in->n + (in->n / 11 + 1) * 15)
        abort();   /* only dates grow: 11 bytes at least become 26 */
    unl_normalize_push(L, once, n1);
    twice = lua_tolstring(L, -1, &n2);
    if (n1 != n2 || memcmp(once, twice, n1) != 0)
        abort();
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
