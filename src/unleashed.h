/*
 * lua-unleashed: the public header for hosts that embed the C core.
 *
 * A host links the module in and opens it with
 *
 *     luaL_requiref(L, "unleashed.core", luaopen_unleashed_core, 0);
 *     lua_pop(L, 1);
 *
 * Promises to hosts:
 *  - The module keeps no global state of its own. Every client, pager and
 *    buffer belongs to the lua_State that made it, so several lua_States in one
 *    process may each open the module and use it at the same time, one OS
 *    thread per lua_State (a lua_State itself is never safe to share between
 *    threads without the host's own lock).
 *  - The only process-wide step is libcurl's global init, which the module
 *    runs once (curl_global_init is reference counted and thread safe in the
 *    libcurl versions this module supports, 7.84 and later). A host that calls
 *    curl_global_init itself before opening any lua_State loses nothing.
 *  - Everything the module allocates is owned by a Lua value (a full userdata
 *    or a string) and is released by the garbage collector or by lua_close.
 *    A client's API key is wiped from memory when the client is released.
 *  - Errors are raised with lua_error only from Lua-callable functions, never
 *    from inside a libcurl callback, so a host's lua_atpanic is never reached
 *    through libcurl frames.
 */
#ifndef UNLEASHED_H
#define UNLEASHED_H

#include <lua.h>

#define UNLEASHED_VERSION "0.1.0"

#if defined(_WIN32)
#  define UNLEASHED_API __declspec(dllexport)
#elif defined(__GNUC__)
#  define UNLEASHED_API __attribute__((visibility("default")))
#else
#  define UNLEASHED_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Opens the module and leaves its table on the stack (the lua_CFunction
 * contract of luaL_requiref). */
UNLEASHED_API int luaopen_unleashed_core(lua_State *L);

#ifdef __cplusplus
}
#endif

#endif
