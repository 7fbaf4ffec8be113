/* What the client's files share: the Client box, one transfer's state
 * (buffers, outcome, attempts), the retry policy and the pager hooks. */
#ifndef UNLEASHED_CLIENT_H
#define UNLEASHED_CLIENT_H

#include <stdint.h>
#include <curl/curl.h>

#include "internal.h"

#define UNL_CLIENT_MT "unleashed.Client"
#define UNL_PAGER_MT "unleashed.Pager"
#define UNL_HOLD_MT "unleashed.Result"

/* Limits on what the options accept. */
#define UNL_MAX_SECONDS 86400.0
#define UNL_MAX_RETRIES 100
#define UNL_MAX_CONCURRENCY 64
/* Response headers kept per response; libcurl already caps one header line. */
#define UNL_MAX_HEADER_BYTES (256 * 1024)
#define UNL_MSG_MAX (CURL_ERROR_SIZE + 512)

/* ---- transport.c ------------------------------------------------------- */
typedef struct unl_buf {
    char *p;
    size_t len, cap;
} unl_buf;

/* What the callbacks stash instead of raising (they never call Lua). */
enum {
    UNL_FAIL_BODY = 1,   /* body over max_body */
    UNL_FAIL_HEAD = 2,   /* headers over UNL_MAX_HEADER_BYTES */
    UNL_FAIL_OOM = 4     /* allocation failed inside a callback */
};

typedef struct unl_event {
    int attempt;
    long status;          /* 0: no response */
    const char *kind;     /* NULL: a complete response */
    double ms;
    double wait;          /* < 0: no retry followed */
} unl_event;

/* One logical request: its easy handle, the last attempt's response and the
 * record of every attempt. Owned by a Client (request) or a Pager (a page). */
typedef struct unl_xfer {
    CURL *easy;
    unl_bigpool *pool;    /* where the body's buffer comes from (NULL: the kernel); not held */
    unl_buf body, head;
    size_t max_body;
    int failed;
    char errbuf[CURL_ERROR_SIZE];
    /* the last attempt */
    long status;
    const char *kind;
    int code;
    char message[UNL_MSG_MAX];
    /* all attempts */
    unl_event *events;
    int nevents, capevents;
    int sent;             /* some attempt may have reached the server */
    double t_start, ms;
} unl_xfer;

/* Per-call settings: the client's defaults overridden by the call's opts. */
typedef struct unl_settings {
    long timeout_ms, connect_timeout_ms;
    int retries;
    int idempotent;
} unl_settings;

typedef struct unl_pager unl_pager;

typedef struct unl_client {
    int closed;
    CURLSH *share;
    char *id, *key, *base_url, *client_type, *user_agent, *ca_file;
    char *proxy;                     /* NULL: no proxy, whatever the environment says */
    size_t idlen, keylen;
    double timeout, connect_timeout, retry_base, retry_cap;
    int max_retries;
    size_t max_body;
    uint64_t rng;
    unl_xfer single;                 /* the transfer request() uses */
    struct curl_slist *req_headers;  /* request()'s headers, kept for curl */
    unl_pager *pagers;               /* live pagers on the share */
} unl_client;

double unl_now(void);
void unl_sleep(double seconds);
void unl_buf_free(unl_buf *b, unl_bigpool *pool);
void unl_xfer_free(unl_xfer *x);
/* Starts a logical request: clears the attempt record, makes sure there is
 * room for retries + 1 events (so recording one never fails mid-transfer).
 * Returns 0, or -1 when out of memory. */
int unl_xfer_begin(unl_xfer *x, int retries);
/* Resets the easy handle and sets what every attempt needs (GET unless the
 * caller sets a method afterwards). Returns CURLE_OK or the failing code. */
CURLcode unl_xfer_setup(unl_client *c, unl_xfer *x, const char *url,
                        struct curl_slist *headers, const unl_settings *s);
/* Reads the attempt's outcome from the handle: status, kind, message, sent. */
void unl_xfer_finish(unl_xfer *x, CURLcode code, const char *method, const char *path);
/* Records the attempt just finished, with the wait before the next (< 0: none). */
void unl_xfer_record(unl_xfer *x, double wait);
/* Builds the request headers; NULL when out of memory. */
struct curl_slist *unl_headers_new(const unl_client *c, const char *signature);
/* Wipes the headers (the signature among them), then frees them. */
void unl_headers_free(struct curl_slist *l);
/* A finished result is turned into Lua values from a box Lua owns, never
 * from the client or pager: making those values can run finalizers, and a
 * finalizer may close (free) the client or pager, or start another request
 * on it. unl_hold_new pushes an empty box (allocate it before the transfer's
 * owner is last checked); unl_hold_take moves the outcome and its buffers
 * into it (no allocation), leaving src its easy handle and no buffers. The
 * box's __gc frees what it holds, so an error while pushing leaks nothing. */
unl_xfer *unl_hold_new(lua_State *L);
void unl_hold_take(unl_xfer *dst, unl_xfer *src);
void unl_open_hold(lua_State *L);             /* registers the box's metatable */
/* Pushes the res table of docs/design.md for a finished request. */
void unl_push_result(lua_State *L, const unl_xfer *x);

/* ---- retry.c ----------------------------------------------------------- */
void unl_rng_seed(uint64_t *state, const void *salt);
/* Seconds to wait before retrying the attempt just finished, or -1 when it
 * must not be retried. attempt counts attempts made so far (1 after the first). */
double unl_retry_wait(unl_client *c, const unl_xfer *x, int attempt, const unl_settings *s);

/* ---- client.c ---------------------------------------------------------- */
/* The open client at idx; raises "client is closed" after close(). */
unl_client *unl_check_client(lua_State *L, int idx);
/* Option readers: opts table at t, errors name arg and field. */
double unl_opt_seconds(lua_State *L, int t, int arg, const char *field, double def);
int unl_opt_int(lua_State *L, int t, int arg, const char *field, int def, int lo, int hi);
long unl_ms(double seconds);

/* ---- pager.c ----------------------------------------------------------- */
int unl_client_pager(lua_State *L);          /* client:pager(fmt, opts) */
/* Whether a path has a "." or ".." segment (dots, %2e; '/', '\\', %2f and
 * %5c as separators): such a path is refused, as it would not go out as given. */
int unl_has_dot_segment(const char *p, size_t n);
/* Idempotent; detaches from the client. client_closed: the client is going
 * away, so the pager's next() must say so. */
void unl_pager_release(unl_pager *p, int client_closed);
void unl_open_pager(lua_State *L);            /* registers the Pager metatable */

#endif
