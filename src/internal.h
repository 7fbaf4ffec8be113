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

/* ---- dates.c ----------------------------------------------------------- */
#include <stdint.h>
#include <time.h>
/* Parses a date the API uses or accepts: "/Date(ms)/" (optionally with an
 * offset "+hhmm"/"-hhmm", ignored), "YYYY-MM-DD", "YYYY-MM-DDTHH:MM:SS" with
 * optional ".fff" and "Z". Sets *ms to milliseconds since 1970 UTC. Returns 0,
 * or -1 for anything else (never reads past s[len]). */
int unl_parse_date(const char *s, size_t len, int64_t *ms);
/* Writes "YYYY-MM-DDTHH:MM:SS.mmmZ" and a NUL into out; returns its length
 * (24 for years 0..9999), or 0 when ms is out of that range. */
#define UNL_ISO_MAX 32
size_t unl_format_iso(int64_t ms, char out[UNL_ISO_MAX]);
/* Buffers of UNL_BIG_BUFFER bytes or more live in mappings of their own
 * (bigbuf.c says why). p is NULL or a buffer of cap bytes made here; the
 * resized buffer (NULL when out of memory, p then unchanged) holds the
 * first min(cap, *ncap) bytes, and *ncap is set to its capacity: at least
 * what was asked (a mapping's is whole pages, and one taken from a pool
 * may be larger). *ncap 0 frees. */
#define UNL_BIG_BUFFER ((size_t)256 * 1024)
/* pool: NULL, or freed mappings kept for the next buffer (bigbuf.c);
 * new() returns it held once, NULL when out of memory; drop() lets go of
 * a hold, and the last frees it with what it keeps. */
typedef struct unl_bigpool unl_bigpool;
unl_bigpool *unl_bigpool_new(size_t max_bytes);
void unl_bigpool_hold(unl_bigpool *pool);
void unl_bigpool_drop(unl_bigpool *pool);
void *unl_big_resize(unl_bigpool *pool, void *p, size_t cap, size_t *ncap);
void unl_big_free(unl_bigpool *pool, void *p, size_t cap);

#include "json_encode.h"   /* unl_format_float, shared with the query encoder */
/* Retry-After: delta-seconds or an HTTP date (IMF-fixdate, RFC 850, asctime).
 * Sets *seconds to the wait from now (0 for a date in the past). Returns 0, or
 * -1 when the value is neither form. */
int unl_parse_retry_after(const char *s, size_t len, time_t now, double *seconds);

/* ---- module parts: each adds its functions to the table on top --------- */
void unl_open_codec(lua_State *L);   /* encode_query, normalize, date helpers */
void unl_open_client(lua_State *L);  /* new_client, Client and Pager types */
void unl_open_clock(lua_State *L);
void unl_open_decode(lua_State *L);  /* decoder: response bytes to Lua tables */   /* now_ms, block_signals, unblock_signals, wait_signal */

#endif
