/* The Lua binding's entry point: luaopen_unleashed_core assembles the module
 * from its parts (signing here, the codec, the client). */

#include "unleashed.h"
#include "internal.h"
#include "client.h"

/* unleashed.core.sign(message, key) -> base64 signature */
static int l_sign(lua_State *L)
{
    size_t msglen, keylen;
    const char *msg = luaL_checklstring(L, 1, &msglen);
    const char *key = luaL_checklstring(L, 2, &keylen);
    char sig[UNL_SIG_LEN + 1];
    if (unl_sign(key, keylen, msg, msglen, sig) != 0) {
        unl_push_openssl_error(L, "HMAC-SHA256 failed");
        return lua_error(L);
    }
    lua_pushlstring(L, sig, UNL_SIG_LEN);
    return 1;
}

/* unleashed.core.sleep(seconds): the wait the Lua layer needs between a
 * refused POST and its retry, without a dependency on LuaSocket. */
static int l_sleep(lua_State *L)
{
    lua_Number s = luaL_checknumber(L, 1);
    luaL_argcheck(L, s >= 0 && s <= UNL_MAX_SECONDS, 1, "seconds must be in 0..86400");
    unl_sleep((double)s);
    return 0;
}

UNLEASHED_API int luaopen_unleashed_core(lua_State *L)
{
    luaL_checkversion(L);
    lua_newtable(L);
    lua_pushcfunction(L, l_sign);
    lua_setfield(L, -2, "sign");
    lua_pushcfunction(L, l_sleep);
    lua_setfield(L, -2, "sleep");
    lua_pushliteral(L, UNLEASHED_VERSION);
    lua_setfield(L, -2, "version");
    unl_open_codec(L);
    unl_open_decode(L);
    unl_open_encode(L);
    unl_open_client(L);
    unl_open_clock(L);
    return 1;
}
