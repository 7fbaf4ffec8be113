/* The Pager userdata: pages first..last fetched over a libcurl multi handle
 * that shares the client's connection cache, at most `concurrency` pages
 * held at once (in flight, backing off, or done and waiting their turn), and
 * handed out strictly in page order.
 *
 * Page p lives in slot (p - first) % concurrency: the pages held are always
 * the run next_out .. next_start-1, shorter than the ring, so a slot is free
 * again exactly when its page has been handed out. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pthread.h>
#include <signal.h>
#include <time.h>

#include <openssl/crypto.h>

#include "client.h"
#include "decode.h"

#define MAX_PAGE 1000000000
#define POLL_MS 1000
#define PAGE_POOL_BYTES ((size_t)16 * 1024 * 1024)

/* A page that arrived whole with a 2xx is QUEUED for the parser thread,
 * PARSING while it reads the body, then DONE with the parsed page; any other
 * outcome goes straight to DONE. */
enum { SLOT_FREE, SLOT_RUNNING, SLOT_BACKOFF, SLOT_QUEUED, SLOT_PARSING, SLOT_DONE };

typedef struct slot {
    int page;
    int state;
    double due;          /* SLOT_BACKOFF: when the next attempt may start */
    unl_xfer x;
    unl_page *parsed;    /* DONE after parsing: the page (NULL: out of memory) */
} slot;

struct unl_pager {
    unl_client *client;          /* NULL once released */
    unl_pager *prev, *next;      /* the client's list of live pagers */
    int released, client_closed;
    CURLM *multi;
    struct curl_slist *headers;  /* one signature serves every page: only the path differs */
    char *base, *prefix, *suffix, *query;
    char *url, *path;            /* scratch, sized at creation */
    size_t urlcap, pathcap;
    slot *slots;
    unl_bigpool *pool;           /* the large buffers of its bodies and pages (held; pages hold it too) */
    int conc, first, last, next_out, next_start;
    int oom;
    unl_settings s;
    /* The parser thread (opts.parse): it reads the bodies of QUEUED slots
     * into pages, one at a time in page order. mu guards every slot's state
     * and parsed; the Lua thread holds it while it works on the slots and
     * lets go of it while it waits. */
    int parse, worker_started, stop;
    pthread_t worker;
    pthread_mutex_t mu;
    pthread_cond_t work_cv, done_cv;
};

/* ---- lifetime ----------------------------------------------------------- */

void unl_pager_release(unl_pager *p, int client_closed)
{
    int i;
    if (client_closed)
        p->client_closed = 1;
    if (p->released)
        return;
    p->released = 1;
    if (p->worker_started) {
        /* The parser finishes the page it is reading, if any, and ends. */
        pthread_mutex_lock(&p->mu);
        p->stop = 1;
        pthread_cond_signal(&p->work_cv);
        pthread_mutex_unlock(&p->mu);
        pthread_join(p->worker, NULL);
        p->worker_started = 0;
    }
    if (p->slots) {
        for (i = 0; i < p->conc; i++) {
            slot *sl = &p->slots[i];
            if (sl->state == SLOT_RUNNING && p->multi && sl->x.easy)
                curl_multi_remove_handle(p->multi, sl->x.easy);
            unl_xfer_free(&sl->x);
            unl_page_free(sl->parsed);
            sl->parsed = NULL;
        }
        free(p->slots);
        p->slots = NULL;
    }
    unl_bigpool_drop(p->pool);   /* the pages it made keep it while they live */
    p->pool = NULL;
    if (p->multi) {
        curl_multi_cleanup(p->multi);
        p->multi = NULL;
    }
    if (p->headers) {
        unl_headers_free(p->headers);
        p->headers = NULL;
    }
    free(p->base);
    free(p->prefix);
    free(p->suffix);
    free(p->query);
    free(p->url);
    free(p->path);
    p->base = p->prefix = p->suffix = p->query = p->url = p->path = NULL;
    if (p->client) {
        if (p->prev)
            p->prev->next = p->next;
        else
            p->client->pagers = p->next;
        if (p->next)
            p->next->prev = p->prev;
        p->prev = p->next = NULL;
        p->client = NULL;
    }
}

static int l_pager_gc(lua_State *L)
{
    unl_pager *p = luaL_checkudata(L, 1, UNL_PAGER_MT);
    unl_pager_release(p, 0);
    if (p->parse) {
        pthread_mutex_destroy(&p->mu);
        pthread_cond_destroy(&p->work_cv);
        pthread_cond_destroy(&p->done_cv);
        p->parse = 0;
    }
    return 0;
}

/* ---- the parser thread -------------------------------------------------- */

static void *parser_main(void *arg)
{
    unl_pager *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        slot *job = NULL;
        const char *body;
        size_t len;
        unl_page *pg;
        int i;
        if (p->stop)
            break;
        for (i = 0; i < p->conc; i++)
            if (p->slots[i].state == SLOT_QUEUED && (job == NULL || p->slots[i].page < job->page))
                job = &p->slots[i];
        if (job == NULL) {
            pthread_cond_wait(&p->work_cv, &p->mu);
            continue;
        }
        job->state = SLOT_PARSING;
        body = job->x.body.p ? job->x.body.p : "";
        len = job->x.body.len;
        pthread_mutex_unlock(&p->mu);
        pg = unl_page_parse(body, len, p->pool);   /* the slot's body is left alone meanwhile */
        if (pg)
            unl_buf_free(&job->x.body, p->pool);   /* the page holds what it needs: the window holds pages, not bodies */
        pthread_mutex_lock(&p->mu);
        job->parsed = pg;
        job->state = SLOT_DONE;
        pthread_cond_broadcast(&p->done_cv);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static void lock(unl_pager *p)
{
    if (p->parse)
        pthread_mutex_lock(&p->mu);
}

static void unlock(unl_pager *p)
{
    if (p->parse)
        pthread_mutex_unlock(&p->mu);
}

static int l_pager_tostring(lua_State *L)
{
    unl_pager *p = luaL_checkudata(L, 1, UNL_PAGER_MT);
    if (p->released)
        lua_pushliteral(L, "unleashed.Pager(closed)");
    else
        lua_pushfstring(L, "unleashed.Pager(%s%%d%s, pages %d..%d, next %d)", p->prefix,
                        p->suffix, p->first, p->last, p->next_out);
    return 1;
}

/* ---- scheduling (no Lua calls between the curl calls) ------------------ */

static char *dup_str(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static void format_path(unl_pager *p, int page)
{
    snprintf(p->path, p->pathcap, "%s%d%s", p->prefix, page, p->suffix);
}

static CURLcode start_attempt(unl_pager *p, slot *sl)
{
    CURLcode rc;
    format_path(p, sl->page);
    snprintf(p->url, p->urlcap, "%s%s%s", p->base, p->path, p->query);
    rc = unl_xfer_setup(p->client, &sl->x, p->url, p->headers, &p->s);
    if (rc != CURLE_OK)
        return rc;
    if (curl_multi_add_handle(p->multi, sl->x.easy) != CURLM_OK)
        return CURLE_OUT_OF_MEMORY;
    sl->state = SLOT_RUNNING;
    return CURLE_OK;
}

/* Starts every page that fits in the window. */
static CURLcode fill(unl_pager *p)
{
    while (p->next_start <= p->last && p->next_start - p->next_out < p->conc) {
        slot *sl = &p->slots[(p->next_start - p->first) % p->conc];
        CURLcode rc;
        sl->page = p->next_start;
        /* The last page handed out took its buffers along: room for the
         * attempt record may have to be found again. */
        if (unl_xfer_begin(&sl->x, p->s.retries) != 0)
            return CURLE_OUT_OF_MEMORY;
        rc = start_attempt(p, sl);
        if (rc != CURLE_OK)
            return rc;
        p->next_start++;
    }
    return CURLE_OK;
}

static slot *slot_of(unl_pager *p, CURL *e)
{
    int i;
    for (i = 0; i < p->conc; i++)
        if (p->slots[i].x.easy == e && p->slots[i].state == SLOT_RUNNING)
            return &p->slots[i];
    return NULL;
}

/* A transfer ended: done, or scheduled for a retry after its backoff (the
 * wait becomes a deadline for the poll, never a sleep). */
static void finished(unl_pager *p, CURL *e, CURLcode code)
{
    slot *sl = slot_of(p, e);
    double wait, now;
    curl_multi_remove_handle(p->multi, e);
    if (sl == NULL)
        return;
    format_path(p, sl->page);
    unl_xfer_finish(&sl->x, code, "GET", p->path);
    if (sl->x.failed & UNL_FAIL_OOM)
        p->oom = 1;
    wait = unl_retry_wait(p->client, &sl->x, sl->x.nevents + 1, &p->s);
    unl_xfer_record(&sl->x, wait);
    now = unl_now();
    if (wait < 0) {
        sl->x.ms = (now - sl->x.t_start) * 1000.0;
        if (p->parse && sl->x.kind == NULL && sl->x.status >= 200 && sl->x.status < 300) {
            sl->state = SLOT_QUEUED;
            pthread_cond_signal(&p->work_cv);
        } else {
            sl->state = SLOT_DONE;
        }
    } else {
        sl->state = SLOT_BACKOFF;
        sl->due = now + wait;
    }
}

/* One round: start due retries, let libcurl work, collect what ended.
 * Returns a description of a libcurl failure, or NULL. */
static const char *work(unl_pager *p)
{
    int i, running = 0, left = 0;
    double now = unl_now();
    CURLMsg *msg;
    CURLMcode mc;
    for (i = 0; i < p->conc; i++) {
        slot *sl = &p->slots[i];
        if (sl->state == SLOT_BACKOFF && sl->due <= now) {
            CURLcode rc = start_attempt(p, sl);
            if (rc != CURLE_OK)
                return curl_easy_strerror(rc);
        }
    }
    mc = curl_multi_perform(p->multi, &running);
    if (mc != CURLM_OK)
        return curl_multi_strerror(mc);
    while ((msg = curl_multi_info_read(p->multi, &left)) != NULL) {
        if (msg->msg == CURLMSG_DONE) {
            CURL *e = msg->easy_handle;
            CURLcode code = msg->data.result;
            finished(p, e, code);   /* msg is invalid after the removal inside */
        }
    }
    return NULL;
}

/* Milliseconds the poll may sleep: until the earliest retry is due. */
static int poll_ms(unl_pager *p)
{
    int i;
    double now = unl_now(), best = POLL_MS;
    for (i = 0; i < p->conc; i++) {
        slot *sl = &p->slots[i];
        if (sl->state == SLOT_BACKOFF) {
            double ms = ceil((sl->due - now) * 1000.0);
            if (ms < best)
                best = ms;
        }
    }
    return best < 0 ? 0 : (int)best;
}

/* ---- next --------------------------------------------------------------- */

static unl_pager *check_pager(lua_State *L)
{
    unl_pager *p = luaL_checkudata(L, 1, UNL_PAGER_MT);
    if (p->client_closed)
        luaL_error(L, "client is closed");
    return p;
}

/* Drives the transfers until the target page is done (and parsed, with
 * opts.parse). Called and returns with the lock held; lets go of it only
 * while it waits. Returns NULL, or what failed. */
static const char *await_page(unl_pager *p, slot *target)
{
    for (;;) {
        const char *err = work(p);
        int ms;
        CURLMcode mc;
        if (err)
            return err;
        if (p->oom)
            return "not enough memory";
        if (target->state == SLOT_DONE)
            return NULL;
        if (target->state == SLOT_QUEUED || target->state == SLOT_PARSING) {
            /* The parser is on it: wait for it, and look at the other
             * transfers every 2 ms meanwhile. */
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 2000000;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&p->done_cv, &p->mu, &ts);
            continue;
        }
        ms = poll_ms(p);
        unlock(p);
        mc = curl_multi_poll(p->multi, NULL, 0, ms, NULL);
        lock(p);
        if (mc != CURLM_OK)
            return "libcurl poll failed";
    }
}

static int l_pager_next(lua_State *L)
{
    unl_pager *p = check_pager(L);
    unl_xfer *out;
    unl_page **box = NULL;
    slot *target;
    const char *err;
    CURLcode rc;
    int page, running, last;
    if (p->next_out > p->last) {
        lua_pushnil(L);
        return 1;
    }
    if (p->released)
        return luaL_error(L, "pager is closed");
    /* The boxes the page's result is pushed from. Making them may run
     * finalizers that close this pager or its client, or take a page
     * themselves: the checks come again after them. */
    out = unl_hold_new(L);
    if (p->parse)
        box = unl_page_box(L);
    p = check_pager(L);
    if (p->next_out > p->last) {
        lua_pushnil(L);
        return 1;
    }
    if (p->released)
        return luaL_error(L, "pager is closed");
    lock(p);
    rc = fill(p);
    if (rc != CURLE_OK) {
        unlock(p);
        return luaL_error(L, "pager: libcurl failed: %s", curl_easy_strerror(rc));
    }
    target = &p->slots[(p->next_out - p->first) % p->conc];
    err = await_page(p, target);
    if (err) {
        unlock(p);
        if (strcmp(err, "not enough memory") == 0)
            return luaL_error(L, "not enough memory");
        return luaL_error(L, "pager: libcurl failed: %s", err);
    }
    /* Handed out: the result moves to the boxes and the slot takes the next
     * page, which starts at once so it progresses while the caller works on
     * this one. The pager is done with before any Lua value is made, so a
     * finalizer run meanwhile finds it consistent, and frees nothing read
     * below. A failure to start the next page shows on the next call. */
    page = target->page;
    unl_hold_take(out, &target->x);
    if (box) {
        *box = target->parsed;
        target->parsed = NULL;
    }
    target->state = SLOT_FREE;
    p->next_out++;
    last = p->next_out > p->last;
    if (!last && fill(p) == CURLE_OK)
        curl_multi_perform(p->multi, &running);
    unlock(p);
    if (last)
        unl_pager_release(p, 0);   /* nothing left in flight: give the handles back now */
    if (box && *box) {
        /* Parsed: the body is not needed any more. */
        unl_buf_free(&out->body, out->pool);
    }
    lua_pushinteger(L, page);
    unl_push_result(L, out);
    unl_xfer_free(out);
    if (box && *box) {
        lua_pushnil(L);
        lua_setfield(L, -2, "body");
        lua_pushvalue(L, -3);   /* the page box */
        lua_setfield(L, -2, "page");
    } else if (box && out->kind == NULL && out->status >= 200 && out->status < 300) {
        return luaL_error(L, "not enough memory");   /* the parser could not allocate */
    }
    return 2;
}

static int l_pager_close(lua_State *L)
{
    unl_pager_release(luaL_checkudata(L, 1, UNL_PAGER_MT), 0);
    return 0;
}

/* ---- client:pager(path_format, opts) ------------------------------------ */

int unl_client_pager(lua_State *L)
{
    unl_client *c = unl_check_client(L, 1);
    size_t flen, i, wlen, slen, blen;
    const char *fmt = luaL_checklstring(L, 2, &flen);
    const char *mark = NULL, *wire, *signed_text;
    char sig[UNL_SIG_LEN + 1];
    int first, last, conc, retries, parse, started;
    sigset_t all, old;
    unl_settings s;
    unl_pager *p;

    for (i = 0; i < flen; i++) {
        unsigned char ch = (unsigned char)fmt[i];
        if (ch <= 0x20 || ch == 0x7f || ch == '?' || ch == '#')
            return luaL_argerror(L, 2, "path_format: must not contain spaces, controls, '?' "
                                       "or '#' (the query goes in opts.query)");
        if (ch == '%' && i + 1 < flen && fmt[i + 1] == 'd') {
            if (mark)
                return luaL_argerror(L, 2, "path_format: must contain exactly one %d");
            mark = fmt + i;
        }
    }
    if (flen == 0 || fmt[0] != '/')
        return luaL_argerror(L, 2, "path_format: must start with '/'");
    if (mark == NULL)
        return luaL_argerror(L, 2, "path_format: must contain exactly one %d");
    if (unl_has_dot_segment(fmt, flen))   /* what is sent is what is reported */
        return luaL_argerror(L, 2, "path_format: must not have . or .. segments (also as %2e)");
    if (lua_isnoneornil(L, 3))
        return luaL_argerror(L, 3, "last: required, an integer page number");
    luaL_checktype(L, 3, LUA_TTABLE);
    first = unl_opt_int(L, 3, 3, "first", 1, 1, MAX_PAGE);
    if (lua_getfield(L, 3, "last") == LUA_TNIL)
        return luaL_argerror(L, 3, "last: required, an integer page number");
    lua_pop(L, 1);
    last = unl_opt_int(L, 3, 3, "last", 1, first, MAX_PAGE);
    conc = unl_opt_int(L, 3, 3, "concurrency", 4, 1, UNL_MAX_CONCURRENCY);
    retries = unl_opt_int(L, 3, 3, "retries", c->max_retries, 0, UNL_MAX_RETRIES);
    s.timeout_ms = unl_ms(unl_opt_seconds(L, 3, 3, "timeout", c->timeout));
    s.connect_timeout_ms = unl_ms(unl_opt_seconds(L, 3, 3, "connect_timeout",
                                                  c->connect_timeout));
    s.retries = retries;
    s.idempotent = 1;
    lua_getfield(L, 3, "parse");
    parse = lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (lua_getfield(L, 3, "query") != LUA_TNIL && !lua_istable(L, -1))
        return luaL_argerror(L, 3, "query: must be a table");
    unl_query_push(L, lua_gettop(L));
    signed_text = lua_tolstring(L, -2, &slen);
    wire = lua_tolstring(L, -1, &wlen);

    /* The box (with its __gc, holding the client alive through its user
     * value) exists before anything it owns. */
    p = lua_newuserdatauv(L, sizeof *p, 1);
    memset(p, 0, sizeof *p);
    luaL_setmetatable(L, UNL_PAGER_MT);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 1);
    /* Reading the options (an __index) or making the box (a finalizer) may
     * have closed the client; no Lua call runs from here to the signature. */
    if (c->closed)
        return luaL_error(L, "client is closed");
    p->client = c;
    p->next = c->pagers;
    if (c->pagers)
        c->pagers->prev = p;
    c->pagers = p;
    p->first = p->next_out = p->next_start = first;
    p->last = last;
    p->conc = conc;
    p->s = s;

    blen = strlen(c->base_url);
    p->base = dup_str(c->base_url, blen);
    p->prefix = dup_str(fmt, (size_t)(mark - fmt));
    p->suffix = dup_str(mark + 2, flen - (size_t)(mark - fmt) - 2);
    p->query = malloc(wlen + 2);
    p->pathcap = flen + 16;
    p->urlcap = blen + p->pathcap + wlen + 2;
    p->path = malloc(p->pathcap);
    p->url = malloc(p->urlcap);
    p->slots = calloc((size_t)conc, sizeof *p->slots);
    if (!p->base || !p->prefix || !p->suffix || !p->query || !p->path || !p->url || !p->slots)
        return luaL_error(L, "not enough memory");
    if (wlen > 0) {
        p->query[0] = '?';
        memcpy(p->query + 1, wire, wlen + 1);
    } else {
        p->query[0] = '\0';
    }
    /* Freed buffers kept for the next page: a page's three (body, tape,
     * strings) at page size 1000, more of them at smaller sizes. */
    p->pool = unl_bigpool_new(PAGE_POOL_BYTES);
    if (p->pool == NULL)
        return luaL_error(L, "not enough memory");
    for (i = 0; i < (size_t)conc; i++) {
        p->slots[i].x.pool = p->pool;
        if (unl_xfer_begin(&p->slots[i].x, retries) != 0)
            return luaL_error(L, "not enough memory");
    }
    if (unl_sign(c->key, c->keylen, signed_text, slen, sig) != 0) {
        OPENSSL_cleanse(sig, sizeof sig);
        unl_push_openssl_error(L, "HMAC-SHA256 failed");
        return lua_error(L);
    }
    p->headers = unl_headers_new(c, sig);
    OPENSSL_cleanse(sig, sizeof sig);
    if (p->headers == NULL)
        return luaL_error(L, "not enough memory");
    p->multi = curl_multi_init();
    if (p->multi == NULL)
        return luaL_error(L, "not enough memory");
    if (parse) {
        if (pthread_mutex_init(&p->mu, NULL) != 0)
            return luaL_error(L, "pager: cannot make a mutex");
        if (pthread_cond_init(&p->work_cv, NULL) != 0) {
            pthread_mutex_destroy(&p->mu);
            return luaL_error(L, "pager: cannot make a condition variable");
        }
        if (pthread_cond_init(&p->done_cv, NULL) != 0) {
            pthread_cond_destroy(&p->work_cv);
            pthread_mutex_destroy(&p->mu);
            return luaL_error(L, "pager: cannot make a condition variable");
        }
        p->parse = 1;
        /* The thread starts with every signal blocked: signals stay the
         * business of the threads the host made. */
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        started = pthread_create(&p->worker, NULL, parser_main, p) == 0;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (!started)
            return luaL_error(L, "pager: cannot start the parser thread");
        p->worker_started = 1;
    }
    return 1;
}

void unl_open_pager(lua_State *L)
{
    static const luaL_Reg meta[] = {
        { "__gc", l_pager_gc },
        { "__close", l_pager_gc },
        { "__tostring", l_pager_tostring },
        { NULL, NULL }
    };
    static const luaL_Reg methods[] = {
        { "next", l_pager_next },
        { "close", l_pager_close },
        { NULL, NULL }
    };
    if (luaL_newmetatable(L, UNL_PAGER_MT)) {
        luaL_setfuncs(L, meta, 0);
        luaL_newlib(L, methods);
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
}
