/* Declarations shared by the files of the C core; not installed. */
#ifndef UNLEASHED_INTERNAL_H
#define UNLEASHED_INTERNAL_H

#include <stddef.h>
#include <lua.h>
#include <lauxlib.h>

/* ---- sign.c ------------------------------------------------------------ */
/* base64(HMAC-SHA256(key, msg)) into out (at least UNL_SIG_LEN + 1 bytes,
 * NUL-terminated). Returns 0 on success, -1 when OpenSSL fails (its error
 * queue is left for unl_push_openssl_error). */
#define UNL_SIG_LEN 44
int unl_sign(const char *key, size_t keylen, const char *msg, size_t msglen,
             char out[UNL_SIG_LEN + 1]);
/* Pushes a message with OpenSSL's error queue drained into it, then clears
 * the queue. */
void unl_push_openssl_error(lua_State *L, const char *what);

/* ---- query.c ----------------------------------------------------------- */
/* Encodes the query table at stack index idx (or nil: no query) into the two
 * texts that must come from one ordered list of pairs: pushes the signed text
 * (raw "k=v&k=v") and then the wire text (RFC 3986 percent-encoded keys and
 * values). Raises a Lua error naming the key for a key that is not a string
 * or a value that is a table, function, NaN or infinity. */
void unl_query_push(lua_State *L, int idx);

/* ---- module parts: each adds its functions to the table on top --------- */
void unl_open_codec(lua_State *L);   /* encode_query, normalize, date helpers */
void unl_open_client(lua_State *L);  /* new_client, Client and Pager types */

#endif
