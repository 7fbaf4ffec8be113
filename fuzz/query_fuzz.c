/* libFuzzer target: builds a query table from the input, encodes it with
 * unl_query_push in a fresh lua_State under lua_pcall, signs the signed text,
 * and checks that percent-decoding the wire text gives the signed text back.
 *
 * Input: a sequence of records, each an op byte then its operands:
 *   op % 8 = 0..3  key, string value     4  key, integer (8 bytes)
 *            5     key, float (8 bytes)  6  key, boolean (1 byte)
 *            7     a bad pair: integer key, or a table/function value
 * where a key or string is a length byte (mod 16, or mod 64 for values)
 * followed by that many bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
    const uint8_t *p;
    size_t n;
} Input;

static int take(Input *in, size_t k, const uint8_t **out)
{
    if (in->n < k)
        return -1;
    *out = in->p;
    in->p += k;
    in->n -= k;
    return 0;
}

static int push_text(lua_State *L, Input *in, unsigned mod)
{
    const uint8_t *len, *bytes;
    if (take(in, 1, &len) || take(in, (size_t)(*len % mod), &bytes))
        return -1;
    lua_pushlstring(L, (const char *)bytes, (size_t)(*len % mod));
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int build_and_encode(lua_State *L)
{
    Input *in = (Input *)lua_touserdata(L, 1);
    const uint8_t *op, *raw;
    size_t slen, wlen, i, o;
    const char *signed_text, *wire;
    char sig[UNL_SIG_LEN + 1], *decoded;

    lua_newtable(L);
    while (take(in, 1, &op) == 0) {
        unsigned kind = *op % 8;
        if (kind == 7) {
            if (*op & 8)
                lua_pushinteger(L, *op);
            else if (push_text(L, in, 16))
                break;
            if (*op & 16)
                lua_newtable(L);
            else
                lua_pushcfunction(L, build_and_encode);
            lua_rawset(L, 2);
            continue;
        }
        if (push_text(L, in, 16))
            break;
        if (kind <= 3) {
            if (push_text(L, in, 64)) {
                lua_pop(L, 1);
                break;
            }
        } else if (kind == 6) {
            if (take(in, 1, &raw)) {
                lua_pop(L, 1);
                break;
            }
            lua_pushboolean(L, *raw & 1);
        } else {
            if (take(in, 8, &raw)) {
                lua_pop(L, 1);
                break;
            }
            if (kind == 4) {
                int64_t v;
                memcpy(&v, raw, 8);
                lua_pushinteger(L, (lua_Integer)v);
            } else {
                double d;
                memcpy(&d, raw, 8);
                lua_pushnumber(L, (lua_Number)d);
            }
        }
        lua_rawset(L, 2);
    }

    unl_query_push(L, 2);
    signed_text = lua_tolstring(L, -2, &slen);
    wire = lua_tolstring(L, -1, &wlen);
    if (unl_sign("key", 3, signed_text, slen, sig) != 0)
        abort();

    /* the server's view: the wire text decoded must be what was signed */
    decoded = (char *)lua_newuserdatauv(L, wlen + 1, 0);
    for (i = 0, o = 0; i < wlen; i++) {
        if (wire[i] == '%') {
            int hi, lo;
            if (i + 2 >= wlen)
                abort();
            hi = hexval(wire[i + 1]);
            lo = hexval(wire[i + 2]);
            if (hi < 0 || lo < 0)
                abort();
            decoded[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            char c = wire[i];
            if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '.' || c == '_' || c == '~' || c == '=' || c == '&'))
                abort();
            decoded[o++] = c;
        }
    }
    if (o != slen || memcmp(decoded, signed_text, slen) != 0)
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
    lua_pushcfunction(L, build_and_encode);
    lua_pushlightuserdata(L, &in);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        /* only the encoder's own refusals may fail the call */
        const char *msg = lua_tostring(L, -1);
        if (msg == NULL || strncmp(msg, "query: key ", 11) != 0)
            abort();
    }
    lua_close(L);
    return 0;
}
