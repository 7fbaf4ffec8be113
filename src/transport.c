/* Transport: one attempt's libcurl options, the body and header callbacks,
 * turning libcurl's outcome into a kind, and the res table. The callbacks
 * only fill buffers owned by the transfer and set flags; every Lua call and
 * every error raised happens after libcurl has returned. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "client.h"
#include "unleashed.h"

/* ---- time --------------------------------------------------------------- */

double unl_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void unl_sleep(double seconds)
{
    struct timespec ts;
    if (!(seconds > 0))
        return;
    ts.tv_sec = (time_t)seconds;
    ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
    if (ts.tv_nsec > 999999999L)
        ts.tv_nsec = 999999999L;
    /* A signal must not cut a Retry-After wait short. */
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ---- buffers ------------------------------------------------------------ */

void unl_buf_free(unl_buf *b, unl_bigpool *pool)
{
    unl_big_free(pool, b->p, b->cap);   /* a page's body: mapped (bigbuf.c) */
    b->p = NULL;
    b->len = b->cap = 0;
}

/* 0, or -1 when the allocation failed. */
static int buf_add(unl_bigpool *pool, unl_buf *b, const char *s, size_t n)
{
    if (n > b->cap - b->len) {
        size_t cap = b->cap ? b->cap : 4096;
        char *p;
        while (cap - b->len < n) {
            if (cap > ((size_t)-1) / 2)
                return -1;
            cap *= 2;
        }
        p = unl_big_resize(pool, b->p, b->cap, &cap);
        if (p == NULL)
            return -1;
        b->p = p;
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->len, s, n);
    b->len += n;
    return 0;
}

/* ---- callbacks (no Lua here) ------------------------------------------- */

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    unl_xfer *x = ud;
    size_t n = size * nmemb;
    if (n > x->max_body - x->body.len) {
        x->failed |= UNL_FAIL_BODY;
        return 0;   /* CURLE_WRITE_ERROR */
    }
    if (x->body.cap == 0) {
        /* Room for the whole body at once when its length is announced:
         * one buffer of its size, not a run of doublings (a hint only: a
         * body longer than announced grows as usual). */
        curl_off_t announced = -1;
        if (curl_easy_getinfo(x->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &announced) == CURLE_OK &&
            announced > (curl_off_t)n && (uint64_t)announced <= (uint64_t)x->max_body) {
            size_t cap = (size_t)announced;
            char *p = unl_big_resize(x->pool, NULL, 0, &cap);
            if (p != NULL) {
                x->body.p = p;
                x->body.cap = cap;
            }
        }
    }
    if (buf_add(x->pool, &x->body, ptr, n) != 0) {
        x->failed |= UNL_FAIL_OOM;
        return 0;
    }
    return n;
}

static int is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

/* Headers are kept as "name\0value\0" pairs. A status line starts a new
 * block, so after 100 Continue (or a proxy's CONNECT answer) only the final
 * response's headers remain. */
static size_t on_header(char *ptr, size_t size, size_t nmemb, void *ud)
{
    unl_xfer *x = ud;
    size_t n = size * nmemb, i, colon, vs, ve;
    if (n >= 5 && memcmp(ptr, "HTTP/", 5) == 0) {
        x->head.len = 0;
        return n;
    }
    ve = n;
    while (ve > 0 && is_space(ptr[ve - 1]))
        ve--;
    if (ve == 0)
        return n;   /* the blank line closing a block */
    if (x->head.len + n > UNL_MAX_HEADER_BYTES) {
        x->failed |= UNL_FAIL_HEAD;
        return 0;
    }
    if (ptr[0] == ' ' || ptr[0] == '\t') {
        /* obsolete line folding: continues the previous value */
        if (x->head.len == 0)
            return n;
        vs = 0;
        while (vs < ve && is_space(ptr[vs]))
            vs++;
        x->head.len--;   /* drop the value's NUL, append " more", re-terminate */
        if (buf_add(NULL, &x->head, " ", 1) != 0 || buf_add(NULL, &x->head, ptr + vs, ve - vs) != 0
            || buf_add(NULL, &x->head, "", 1) != 0) {
            x->failed |= UNL_FAIL_OOM;
            return 0;
        }
        return n;
    }
    for (colon = 0; colon < ve && ptr[colon] != ':'; colon++)
        ;
    if (colon == ve || colon == 0)
        return n;   /* not a header line: ignore rather than fail the transfer */
    vs = colon + 1;
    while (vs < ve && is_space(ptr[vs]))
        vs++;
    for (i = 0; i < colon; i++) {
        char ch = ptr[i];
        if (ch >= 'A' && ch <= 'Z')
            ch = (char)(ch - 'A' + 'a');
        if (buf_add(NULL, &x->head, &ch, 1) != 0) {
            x->failed |= UNL_FAIL_OOM;
            return 0;
        }
    }
    if (buf_add(NULL, &x->head, "", 1) != 0 || buf_add(NULL, &x->head, ptr + vs, ve - vs) != 0
        || buf_add(NULL, &x->head, "", 1) != 0) {
        x->failed |= UNL_FAIL_OOM;
        return 0;
    }
    return n;
}

/* ---- one transfer ------------------------------------------------------- */

void unl_xfer_free(unl_xfer *x)
{
    if (x->easy) {
        curl_easy_cleanup(x->easy);
        x->easy = NULL;
    }
    unl_buf_free(&x->body, x->pool);
    unl_buf_free(&x->head, NULL);
    free(x->events);
    x->events = NULL;
    x->nevents = x->capevents = 0;
}

int unl_xfer_begin(unl_xfer *x, int retries)
{
    int need = retries + 1;
    if (x->capevents < need) {
        unl_event *e = realloc(x->events, (size_t)need * sizeof *e);
        if (e == NULL)
            return -1;
        x->events = e;
        x->capevents = need;
    }
    x->nevents = 0;
    x->sent = 0;
    x->status = 0;
    x->kind = NULL;
    x->code = 0;
    x->message[0] = '\0';
    x->ms = 0;
    x->t_start = unl_now();
    return 0;
}

#define SET(opt, val)                                      \
    do {                                                   \
        CURLcode rc_ = curl_easy_setopt(e, opt, val);      \
        if (rc_ != CURLE_OK)                               \
            return rc_;                                    \
    } while (0)

CURLcode unl_xfer_setup(unl_client *c, unl_xfer *x, const char *url,
                        struct curl_slist *headers, const unl_settings *s)
{
    CURL *e;
    if (x->easy == NULL) {
        x->easy = curl_easy_init();
        if (x->easy == NULL)
            return CURLE_OUT_OF_MEMORY;
        if (curl_easy_setopt(x->easy, CURLOPT_SHARE, c->share) != CURLE_OK) {
            curl_easy_cleanup(x->easy);
            x->easy = NULL;
            return CURLE_OUT_OF_MEMORY;
        }
    } else {
        /* Clears the previous method and body; the share, and with it the
         * kept-alive connections, survive a reset. */
        curl_easy_reset(x->easy);
    }
    e = x->easy;
    x->body.len = 0;
    x->head.len = 0;
    x->failed = 0;
    x->errbuf[0] = '\0';
    x->max_body = c->max_body;

    SET(CURLOPT_URL, url);
    /* The path goes out as given (the client refuses dot segments anyway):
     * libcurl never squashes "/a/../b" into "/b", so what is sent is what
     * the result and the hook report. */
    SET(CURLOPT_PATH_AS_IS, 1L);
    /* A proxy only when the client's proxy option names one. libcurl would
     * otherwise take http_proxy, HTTPS_PROXY, ALL_PROXY (and NO_PROXY) from
     * the environment and send signed requests through whatever they name:
     * "" turns that off, and NOPROXY "" keeps NO_PROXY from exempting hosts
     * from the proxy the option names. */
    SET(CURLOPT_PROXY, c->proxy ? c->proxy : "");
    SET(CURLOPT_NOPROXY, "");
    SET(CURLOPT_HTTPHEADER, headers);
    SET(CURLOPT_USERAGENT, c->user_agent);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_ACCEPT_ENCODING, "");
    SET(CURLOPT_SSL_VERIFYPEER, 1L);
    SET(CURLOPT_SSL_VERIFYHOST, 2L);
    if (c->ca_file)
        SET(CURLOPT_CAINFO, c->ca_file);
    SET(CURLOPT_TCP_KEEPALIVE, 1L);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_CONNECTTIMEOUT_MS, s->connect_timeout_ms);
    SET(CURLOPT_TIMEOUT_MS, s->timeout_ms);
    /* A declared length over the limit fails before any of the body is read. */
    SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)c->max_body);
    SET(CURLOPT_ERRORBUFFER, x->errbuf);
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, (void *)x);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, (void *)x);
    SET(CURLOPT_PRIVATE, (void *)x);
    return CURLE_OK;
}

#undef SET

static const char *kind_of(CURLcode code)
{
    switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
        return "timeout";
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CLIENTCERT:
    case CURLE_USE_SSL_FAILED:
        return "tls";
    case CURLE_WRITE_ERROR:
    case CURLE_FILESIZE_EXCEEDED:
    case CURLE_BAD_CONTENT_ENCODING:
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_HTTP3:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_TOO_MANY_REDIRECTS:
    /* Memory does not come back by waiting a backoff: not retried. */
    case CURLE_OUT_OF_MEMORY:
        return "protocol";
    default:
        return "network";
    }
}

/* Whether the attempt provably never reached the server. Only a failure in
 * the connect phase qualifies: name resolution, the TCP connect, or the TLS
 * handshake (the HTTP request is written only after the handshake), or a
 * timeout that struck before libcurl got to the transfer phase
 * (PRETRANSFER_TIME still 0). In all of these libcurl has issued no request
 * bytes (REQUEST_SIZE 0, counted as they are written) and seen no status.
 * Anything else (a send error, a timeout while waiting for the answer, a
 * reset) may have delivered the request, so it counts as sent. */
static int attempt_sent(CURL *e, CURLcode code, long status, const char *kind)
{
    long reqsize = 0;
    curl_off_t pretransfer = 0;
    if (code == CURLE_OK || status != 0)
        return 1;
    if (curl_easy_getinfo(e, CURLINFO_REQUEST_SIZE, &reqsize) != CURLE_OK || reqsize != 0)
        return 1;
    switch (code) {
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
        return 0;
    case CURLE_OPERATION_TIMEDOUT:
        if (curl_easy_getinfo(e, CURLINFO_PRETRANSFER_TIME_T, &pretransfer) != CURLE_OK)
            return 1;
        return pretransfer != 0;
    default:
        return strcmp(kind, "tls") != 0;
    }
}

void unl_xfer_finish(unl_xfer *x, CURLcode code, const char *method, const char *path)
{
    long status = 0;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    x->status = status;
    x->code = (int)code;
    x->message[0] = '\0';
    if (code == CURLE_OK) {
        x->kind = NULL;
        x->sent = 1;
        return;
    }
    x->kind = kind_of(code);
    if ((x->failed & UNL_FAIL_BODY) || code == CURLE_FILESIZE_EXCEEDED) {
        x->kind = "protocol";
        snprintf(x->message, sizeof x->message,
                 "response body exceeds max_body (%lu bytes) (%s %s)",
                 (unsigned long)x->max_body, method, path);
    } else if (x->failed & UNL_FAIL_HEAD) {
        x->kind = "protocol";
        snprintf(x->message, sizeof x->message,
                 "response headers exceed %d bytes (%s %s)", UNL_MAX_HEADER_BYTES, method, path);
    } else if (code == CURLE_OUT_OF_MEMORY) {
        snprintf(x->message, sizeof x->message,
                 "libcurl ran out of memory; not retried (%s %s)", method, path);
    } else {
        snprintf(x->message, sizeof x->message, "%s (%s %s)",
                 x->errbuf[0] ? x->errbuf : curl_easy_strerror(code), method, path);
    }
    if (attempt_sent(x->easy, code, status, x->kind))
        x->sent = 1;
}

void unl_xfer_record(unl_xfer *x, double wait)
{
    unl_event *ev;
    curl_off_t us = 0;
    if (x->nevents >= x->capevents)
        return;   /* unl_xfer_begin sized the record for every attempt */
    ev = &x->events[x->nevents++];
    ev->attempt = x->nevents;
    ev->status = x->status;
    ev->kind = x->kind;
    if (x->easy && curl_easy_getinfo(x->easy, CURLINFO_TOTAL_TIME_T, &us) == CURLE_OK)
        ev->ms = (double)us / 1000.0;
    else
        ev->ms = 0;
    ev->wait = wait;
}

/* ---- headers ------------------------------------------------------------ */

static struct curl_slist *append(struct curl_slist *l, const char *name, const char *value)
{
    size_t n = strlen(name) + strlen(value) + 3;
    char *line = malloc(n);
    struct curl_slist *r;
    if (line == NULL) {
        curl_slist_free_all(l);
        return NULL;
    }
    snprintf(line, n, "%s: %s", name, value);
    r = curl_slist_append(l, line);
    OPENSSL_cleanse(line, n);   /* it may hold the signature */
    free(line);
    if (r == NULL)
        curl_slist_free_all(l);
    return r;
}

struct curl_slist *unl_headers_new(const unl_client *c, const char *signature)
{
    struct curl_slist *l = NULL, *r;
    if ((l = append(l, "Accept", "application/json")) == NULL
        || (l = append(l, "Content-Type", "application/json")) == NULL
        || (l = append(l, "api-auth-id", c->id)) == NULL
        || (l = append(l, "api-auth-signature", signature)) == NULL
        || (l = append(l, "client-type", c->client_type)) == NULL)
        return NULL;
    /* No "Expect: 100-continue" round trip for large bodies. */
    r = curl_slist_append(l, "Expect:");
    if (r == NULL)
        curl_slist_free_all(l);
    return r;
}

/* The signature must not linger in freed memory. */
void unl_headers_free(struct curl_slist *l)
{
    struct curl_slist *i;
    for (i = l; i != NULL; i = i->next)
        if (i->data)
            OPENSSL_cleanse(i->data, strlen(i->data));
    curl_slist_free_all(l);
}

/* ---- a result owned by Lua while it is pushed ---------------------------- */

/* The box holds a pointer: a small Lua allocation, so making it costs the
 * collector little, and the transfer's record lives in C memory it frees. */
static int l_hold_gc(lua_State *L)
{
    unl_xfer **box = luaL_checkudata(L, 1, UNL_HOLD_MT);
    if (*box) {
        unl_xfer_free(*box);
        free(*box);
        *box = NULL;
    }
    return 0;
}

unl_xfer *unl_hold_new(lua_State *L)
{
    unl_xfer **box = lua_newuserdatauv(L, sizeof *box, 0);
    *box = NULL;
    luaL_setmetatable(L, UNL_HOLD_MT);
    *box = calloc(1, sizeof **box);
    if (*box == NULL)
        luaL_error(L, "not enough memory");
    return *box;
}

void unl_hold_take(unl_xfer *dst, unl_xfer *src)
{
    unl_xfer_free(dst);
    *dst = *src;
    dst->easy = NULL;   /* the handle stays with its owner */
    dst->pool = NULL;   /* so does the pool: a hold may outlive it */
    memset(&src->body, 0, sizeof src->body);
    memset(&src->head, 0, sizeof src->head);
    src->events = NULL;
    src->nevents = src->capevents = 0;
}

void unl_open_hold(lua_State *L)
{
    if (luaL_newmetatable(L, UNL_HOLD_MT)) {
        lua_pushcfunction(L, l_hold_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
}

/* ---- the res table ------------------------------------------------------ */

static void push_headers(lua_State *L, const unl_buf *h)
{
    size_t i = 0;
    lua_newtable(L);
    while (i < h->len) {
        const char *name = h->p + i;
        size_t nl = strlen(name);
        const char *value = name + nl + 1;
        size_t vl = strlen(value);
        i += nl + vl + 2;
        lua_pushlstring(L, name, nl);
        if (lua_rawget(L, -2) == LUA_TSTRING) {
            /* a repeated field: one value, comma-joined (RFC 9110 5.3) */
            lua_pushliteral(L, ", ");
            lua_pushlstring(L, value, vl);
            lua_concat(L, 3);
        } else {
            lua_pop(L, 1);
            lua_pushlstring(L, value, vl);
        }
        lua_pushlstring(L, name, nl);
        lua_insert(L, -2);
        lua_rawset(L, -3);
    }
}

void unl_push_result(lua_State *L, const unl_xfer *x)
{
    int i;
    lua_createtable(L, 0, 9);
    if (x->status > 0) {
        lua_pushinteger(L, x->status);
        lua_setfield(L, -2, "status");
    }
    if (x->kind == NULL) {
        lua_pushlstring(L, x->body.p ? x->body.p : "", x->body.len);
        lua_setfield(L, -2, "body");
    }
    push_headers(L, &x->head);
    lua_setfield(L, -2, "headers");
    lua_pushinteger(L, x->nevents);
    lua_setfield(L, -2, "attempts");
    lua_pushnumber(L, x->ms);
    lua_setfield(L, -2, "ms");
    if (x->kind) {
        lua_createtable(L, 0, 3);
        lua_pushstring(L, x->kind);
        lua_setfield(L, -2, "kind");
        lua_pushstring(L, x->message);
        lua_setfield(L, -2, "message");
        lua_pushinteger(L, x->code);
        lua_setfield(L, -2, "code");
        lua_setfield(L, -2, "error");
    }
    lua_pushboolean(L, x->sent);
    lua_setfield(L, -2, "sent");
    lua_createtable(L, x->nevents, 0);
    for (i = 0; i < x->nevents; i++) {
        const unl_event *ev = &x->events[i];
        lua_createtable(L, 0, 5);
        lua_pushinteger(L, ev->attempt);
        lua_setfield(L, -2, "attempt");
        if (ev->status > 0) {
            lua_pushinteger(L, ev->status);
            lua_setfield(L, -2, "status");
        }
        if (ev->kind) {
            lua_pushstring(L, ev->kind);
            lua_setfield(L, -2, "kind");
        }
        lua_pushnumber(L, ev->ms);
        lua_setfield(L, -2, "ms");
        if (ev->wait >= 0) {
            lua_pushnumber(L, ev->wait);
            lua_setfield(L, -2, "wait");
        }
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "events");
}
