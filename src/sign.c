/* Request signing: base64(HMAC-SHA256(key, query text)), as the API's
 * authentication page specifies. The key is used as its UTF-8 bytes, never
 * base64-decoded, and the output is base64, never hex. */
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "internal.h"

int unl_sign(const char *key, size_t keylen, const char *msg, size_t msglen,
             char out[UNL_SIG_LEN + 1])
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    /* HMAC() takes an int key length; an API key is far shorter, but refuse
     * rather than truncate. OpenSSL accepts a NULL data pointer only with a
     * zero length, so the empty message passes "" explicitly. */
    if (keylen > 0x7fffffff)
        return -1;
    if (HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)(msg ? msg : ""),
             msglen, mac, &maclen) == NULL || maclen != 32)
        return -1;
    {
        int n = EVP_EncodeBlock((unsigned char *)out, mac, (int)maclen);
        OPENSSL_cleanse(mac, sizeof mac);
        if (n != UNL_SIG_LEN)
            return -1;
    }
    out[UNL_SIG_LEN] = '\0';
    return 0;
}

void unl_push_openssl_error(lua_State *L, const char *what)
{
    luaL_Buffer b;
    unsigned long e;
    char line[256];
    luaL_buffinit(L, &b);
    luaL_addstring(&b, what);
    while ((e = ERR_get_error()) != 0) {
        ERR_error_string_n(e, line, sizeof line);
        luaL_addstring(&b, ": ");
        luaL_addstring(&b, line);
    }
    ERR_clear_error();
    luaL_pushresult(&b);
}
