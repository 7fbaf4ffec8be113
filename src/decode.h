/* The response decoder: JSON bytes to Lua tables with the API's rules (see
 * decode.c and docs/design.md, "Decoding"). Declared here for the core's
 * parts and the fuzz target. */
#ifndef UNLEASHED_DECODE_H
#define UNLEASHED_DECODE_H

#include "internal.h"

/* What one answer may build; past these the answer is refused before any
 * table is made. A page of 1,000 full orders is about 800 KB, nesting 5
 * levels, 1,000 items in its largest array and some 145,000 values. */
#define UNL_DECODE_MAX_DEPTH 100        /* containers inside one another */
#define UNL_DECODE_MAX_ITEMS 100000     /* items in one array */
#define UNL_DECODE_MAX_NODES 2000000    /* values, containers included */
/* The strings a decoder keeps between answers (member names, and the short
 * values of members whose values repeat); past this many the cache starts
 * over before the next answer. */
#define UNL_DECODE_MAX_KEYS 16384

#define UNL_DECODER_MT "unleashed.Decoder"

/* Pushes a new decoder (a userdata owning its buffers and key cache). */
void unl_decoder_new(lua_State *L);

/* Decodes json[0..len) with the decoder at stack index idx. Returns 1 with
 * the value pushed, or 0 with nil, a message and the kind of failure
 * ("syntax" or "limit") pushed. Raises only on memory errors. */
int unl_decode_push(lua_State *L, int idx, const char *json, size_t len);

/* A page parsed for building later: parsing makes no Lua call and touches
 * nothing shared, so any thread may do it; every string is copied, so the
 * body can be freed at once. */
#define UNL_PAGE_MT "unleashed.Page"
typedef struct unl_page unl_page;
/* Parses body[0..len); NULL when out of memory. A page that is not JSON or
 * is past the limits still comes back, holding the reason (page:error()).
 * pool (NULL or held by the caller) gives the page's large buffers, and
 * takes them back when the page is freed: the page holds it till then. */
unl_page *unl_page_parse(const char *body, size_t len, unl_bigpool *pool);
void unl_page_free(unl_page *pg);
/* Pushes an empty Page box; what is stored in it is the box's to free. Its
 * methods: count, item(i), pagination, doc, error. */
unl_page **unl_page_box(lua_State *L);

#endif
