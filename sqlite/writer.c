/* db:writer(sql, shape) -> Writer: the mirror's pages written on a thread
 * of their own, so that SQLite's work (most of a first sync's time) runs
 * while the listing reads and decodes the next page.
 *
 *   local w = db:writer({ lookup = "SELECT last_modified_ms FROM orders WHERE guid = ?",
 *                         upsert = "INSERT INTO orders ... ON CONFLICT (guid) DO UPDATE ...",
 *                         delete_lines = "DELETE FROM lines WHERE order_guid = ?",
 *                         insert_line = "INSERT INTO lines ...",
 *                         listed = "INSERT OR IGNORE INTO temp.listed (guid) VALUES (?)" },  -- optional
 *                       { order = { "Guid", "OrderNumber|", "Supplier.SupplierCode", ..., "=modified", "=json" },
 *                         lines = "PurchaseOrderLines",
 *                         line = { "=guid", "Guid", "LineNumber#", "Product.ProductCode", ... },
 *                         arrays = { PurchaseOrderLines = true, ... } })
 *   w:add(order, modified_ms, deleted)   -- the order and its lines, into the page being filled
 *   w:commit(force)    -- the page so far goes to the thread (waiting for the one before)
 *   local written, deleted = w:wait()    -- every page handed over is done
 *   w:close()
 *
 * The shape says where each of the upsert's and the line insert's values
 * comes from: a member ("Name"), a member of a member ("Name.Member"), the
 * order's Guid ("=guid"), the modified_ms given ("=modified"), or the
 * order's JSON ("=json", by the core's encoder, src/encode.c, with
 * `arrays`). A member that is missing, or a table or other value SQL cannot
 * hold, is NULL; "Name|" makes NULL an empty text, "Name#" makes an
 * integral number an integer. Lines are the items of the order's `lines`
 * member that are tables with a Guid. Everything is read and copied on the
 * Lua thread; the writer's thread sees only the copies.
 *
 * A page is one transaction (BEGIN IMMEDIATE ... COMMIT). In it each order
 * is looked up by Guid; one the database holds at the same modified_ms or
 * later is left as it is (unless force), with its lines; any other is
 * upserted, its old lines deleted when it was held (in the database, or
 * earlier in the same page), and its lines inserted. A page that fails is
 * rolled back whole; the error (an unleashed.sqlite.Error, with SQLite's
 * code) is raised by the next commit or wait, and no later page is written.
 *
 * The Lua thread fills one page while the writer's thread writes those
 * handed over before: at most WRITER_PAGES are held. The connection is the writer's while it has a
 * page in hand (the binding's other calls refuse it then). Closing the
 * writer, or the database, lets the page in hand finish and joins the
 * thread; a page filled but not committed is dropped. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "binding.h"
#include "json_encode.h"

#define WRITER_MT "unleashed.sqlite.Writer"
/* Pages held: one filled by the Lua thread, up to WRITER_PAGES - 1 queued
 * for the writer's thread (some 4 MB each at 1,000 orders). */
#define WRITER_PAGES 4

enum { ST_LOOKUP, ST_UPSERT, ST_DELETE_LINES, ST_INSERT_LINE, ST_LISTED, ST_COUNT };
static const char *const STATEMENT_NAMES[ST_COUNT] = { "lookup", "upsert", "delete_lines", "insert_line",
                                                       "listed" };

typedef struct {
    int type;              /* SQLITE_NULL, SQLITE_INTEGER, SQLITE_FLOAT or SQLITE_TEXT */
    sqlite3_int64 i;
    double d;
    size_t off, len;       /* text: in the page's text buffer */
} wvalue;

typedef struct {
    int order;             /* 1: an order (guid, modified_ms, deleted, upsert values); 0: a line */
    size_t first, n;       /* its values */
} wrecord;

typedef struct {
    wvalue *values;
    size_t nvalues, capvalues;
    unl_jbuf text;
    wrecord *records;
    size_t nrecords, caprecords;
    int force;
} wpage;

enum { C_MEMBER, C_GUID, C_MODIFIED, C_JSON };

/* Where a value comes from: keys are indexes in the writer's key table. */
typedef struct {
    int kind;
    int key1, key2;                     /* C_MEMBER: the member, and the member of it (or 0) */
    int empty_text, integer;            /* "Name|", "Name#" */
} wcolumn;

struct unl_writer {
    db_box *owner;                      /* kept alive by the writer box's user value */
    sqlite3 *db;
    sqlite3_stmt *st[ST_COUNT];
    wcolumn *order_cols, *line_cols;
    int norder, nline;
    int guid_key, lines_key;
    pthread_t thread;
    int started, closed;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    wpage pages[WRITER_PAGES];          /* a ring: `queued` pages from `head` on are the thread's */
    int head, queued;
    int fill;                           /* the page the Lua thread fills: the one after those queued */
    int stop;
    int failed, code;
    char message[512];
    lua_Integer written, deleted;       /* by the pages committed */
};

/* ---- the thread --------------------------------------------------------------- */

static int bind_values(sqlite3_stmt *st, const wpage *pg, size_t first, size_t n)
{
    size_t k;
    int rc = SQLITE_OK;
    for (k = 0; k < n && rc == SQLITE_OK; k++) {
        const wvalue *v = &pg->values[first + k];
        int at = (int)k + 1;
        switch (v->type) {
        case SQLITE_INTEGER: rc = sqlite3_bind_int64(st, at, v->i); break;
        case SQLITE_FLOAT: rc = sqlite3_bind_double(st, at, v->d); break;
        case SQLITE_TEXT:
            rc = sqlite3_bind_text64(st, at, pg->text.p + v->off, (sqlite3_uint64)v->len, SQLITE_STATIC,
                                     SQLITE_UTF8);
            break;
        default: rc = sqlite3_bind_null(st, at);
        }
    }
    return rc;
}

/* Runs st with values [first, first + n) to its end; *row gets the first
 * row's first column when row is not NULL (and *found whether there was one). */
static int run(sqlite3_stmt *st, const wpage *pg, size_t first, size_t n, sqlite3_int64 *row, int *found)
{
    int rc = bind_values(st, pg, first, n);
    if (found) *found = 0;
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (row && found && !*found) {
            *row = sqlite3_column_int64(st, 0);
            *found = 1;
        }
        rc = SQLITE_OK;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Writes one page in one transaction. Returns SQLITE_OK, or the code with
 * the message copied into w (the page rolled back). */
static int write_page(unl_writer *w, const wpage *pg, lua_Integer *written, lua_Integer *deleted)
{
    size_t r;
    int rc, skip = 0;
    lua_Integer nw = 0, nd = 0;
    rc = sqlite3_exec(w->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    for (r = 0; r < pg->nrecords && rc == SQLITE_OK; r++) {
        const wrecord *rec = &pg->records[r];
        if (rec->order) {
            const wvalue *modified = &pg->values[rec->first + 1];
            sqlite3_int64 have = 0;
            int held = 0;
            if (w->st[ST_LISTED]) rc = run(w->st[ST_LISTED], pg, rec->first, 1, NULL, NULL);
            if (rc == SQLITE_OK) rc = run(w->st[ST_LOOKUP], pg, rec->first, 1, &have, &held);
            if (rc != SQLITE_OK) break;
            skip = !pg->force && held && have >= modified->i;
            if (skip) continue;
            rc = run(w->st[ST_UPSERT], pg, rec->first + 3, rec->n - 3, NULL, NULL);
            if (rc == SQLITE_OK && held) rc = run(w->st[ST_DELETE_LINES], pg, rec->first, 1, NULL, NULL);
            nw++;
            if (pg->values[rec->first + 2].i) nd++;
        } else if (!skip) {
            rc = run(w->st[ST_INSERT_LINE], pg, rec->first, rec->n, NULL, NULL);
        }
    }
    if (rc == SQLITE_OK) rc = sqlite3_exec(w->db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        int code = sqlite3_extended_errcode(w->db);
        if ((code & 0xff) != (rc & 0xff)) code = rc;
        pthread_mutex_lock(&w->mu);
        w->code = code;
        snprintf(w->message, sizeof w->message, "%s", sqlite3_errmsg(w->db));
        pthread_mutex_unlock(&w->mu);
        if (!sqlite3_get_autocommit(w->db)) sqlite3_exec(w->db, "ROLLBACK", NULL, NULL, NULL);
        return code;
    }
    *written = nw;
    *deleted = nd;
    return SQLITE_OK;
}

static void *writer_main(void *arg)
{
    unl_writer *w = (unl_writer *)arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        wpage *pg;
        lua_Integer nw = 0, nd = 0;
        int rc;
        while (w->queued == 0 && !w->stop) pthread_cond_wait(&w->cv, &w->mu);
        if (w->queued == 0) break;
        pg = &w->pages[w->head];
        if (w->failed) {
            rc = SQLITE_ABORT;   /* a page before failed: the ones queued after it are dropped */
        } else {
            pthread_mutex_unlock(&w->mu);
            rc = write_page(w, pg, &nw, &nd);
            pthread_mutex_lock(&w->mu);
        }
        if (rc == SQLITE_OK) {
            w->written += nw;
            w->deleted += nd;
        } else {
            w->failed = 1;
        }
        pg->nvalues = pg->nrecords = 0;
        pg->text.len = 0;
        w->head = (w->head + 1) % WRITER_PAGES;
        w->queued--;
        pthread_cond_broadcast(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* ---- the Lua side ------------------------------------------------------------- */

int unl_writer_busy(unl_writer *w)
{
    int busy;
    if (w->closed) return 0;
    pthread_mutex_lock(&w->mu);
    busy = w->queued > 0;
    pthread_mutex_unlock(&w->mu);
    return busy;
}

void unl_writer_shutdown(unl_writer *w)
{
    int k;
    if (w->closed) return;
    w->closed = 1;
    if (w->started) {
        pthread_mutex_lock(&w->mu);
        w->stop = 1;
        pthread_cond_broadcast(&w->cv);
        pthread_mutex_unlock(&w->mu);
        pthread_join(w->thread, NULL);
        w->started = 0;
    }
    for (k = 0; k < ST_COUNT; k++) {
        sqlite3_finalize(w->st[k]);
        w->st[k] = NULL;
    }
    for (k = 0; k < WRITER_PAGES; k++) {
        free(w->pages[k].values);
        free(w->pages[k].text.p);
        free(w->pages[k].records);
        memset(&w->pages[k], 0, sizeof w->pages[k]);
    }
    free(w->order_cols);
    free(w->line_cols);
    w->order_cols = w->line_cols = NULL;
    if (w->owner && w->owner->writer == w) w->owner->writer = NULL;
    w->owner = NULL;
}

static unl_writer *check_writer(lua_State *L)
{
    unl_writer **box = (unl_writer **)luaL_checkudata(L, 1, WRITER_MT);
    if (*box == NULL || (*box)->closed) luaL_error(L, "sqlite: the writer is closed");
    return *box;
}

static void *grow(lua_State *L, void *p, size_t *cap, size_t need, size_t elem)
{
    size_t ncap = *cap ? *cap : 64;
    void *np;
    if (need <= *cap) return p;
    while (ncap < need) {
        if (ncap > ((size_t)-1) / 2 / elem) luaL_error(L, "sqlite: the page is too large");
        ncap *= 2;
    }
    np = realloc(p, ncap * elem);
    if (np == NULL) luaL_error(L, "sqlite: not enough memory for the page");
    *cap = ncap;
    return np;
}

/* Appends the value on top of the stack (popped) to the page being filled. */
static void add_value(lua_State *L, wpage *pg, const wcolumn *col)
{
    wvalue *v;
    pg->values = grow(L, pg->values, &pg->capvalues, pg->nvalues + 1, sizeof *pg->values);
    v = &pg->values[pg->nvalues];
    memset(v, 0, sizeof *v);
    v->type = SQLITE_NULL;
    switch (lua_type(L, -1)) {
    case LUA_TBOOLEAN: v->type = SQLITE_INTEGER; v->i = lua_toboolean(L, -1); break;
    case LUA_TNUMBER:
        if (lua_isinteger(L, -1)) {
            v->type = SQLITE_INTEGER;
            v->i = (sqlite3_int64)lua_tointeger(L, -1);
        } else {
            lua_Integer n;
            v->type = SQLITE_FLOAT;
            v->d = (double)lua_tonumber(L, -1);
            if (col && col->integer && lua_numbertointeger(lua_tonumber(L, -1), &n) && (lua_Number)n == lua_tonumber(L, -1)) {
                v->type = SQLITE_INTEGER;
                v->i = (sqlite3_int64)n;
            }
        }
        break;
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, -1, &len);
        pg->text.p = grow(L, pg->text.p, &pg->text.cap, pg->text.len + len + 1, 1);
        memcpy(pg->text.p + pg->text.len, s, len);
        v->type = SQLITE_TEXT;
        v->off = pg->text.len;
        v->len = len;
        pg->text.len += len;
        break;
    }
    default:
        break;   /* nil, and what SQL cannot hold: NULL */
    }
    if (v->type == SQLITE_NULL && col && col->empty_text) {
        v->type = SQLITE_TEXT;
        v->off = pg->text.len;
        v->len = 0;
    }
    pg->nvalues++;
    lua_pop(L, 1);
}

/* Pushes t[key1] (or t[key1][key2]), read raw; keys at index `keys`. */
static void push_member(lua_State *L, int t, int keys, const wcolumn *col)
{
    lua_rawgeti(L, keys, col->key1);
    lua_rawget(L, t);
    if (col->key2) {
        if (lua_type(L, -1) == LUA_TTABLE) {
            lua_rawgeti(L, keys, col->key2);
            lua_rawget(L, -2);
            lua_remove(L, -2);
        } else {
            lua_pop(L, 1);
            lua_pushnil(L);
        }
    }
}

/* Appends one record: the values of cols for the table at t. */
static void add_record(lua_State *L, unl_writer *w, int order, int t, int guid, int modified, const wcolumn *cols,
                       int ncols)
{
    wpage *pg = &w->pages[w->fill];
    size_t first = pg->nvalues;
    int c;
    if (order) {
        /* Guid, modified_ms and deleted come first */
        lua_pushvalue(L, guid);
        add_value(L, pg, NULL);
        lua_pushvalue(L, modified);
        add_value(L, pg, NULL);
        lua_pushvalue(L, modified + 1);
        add_value(L, pg, NULL);
    }
    for (c = 0; c < ncols; c++) {
        const wcolumn *col = &cols[c];
        switch (col->kind) {
        case C_GUID: lua_pushvalue(L, guid); break;
        case C_MODIFIED: lua_pushvalue(L, modified); break;
        case C_JSON: {
            wvalue *v;
            size_t off = pg->text.len;
            lua_getiuservalue(L, 1, 3);
            unl_json_encode(L, t, lua_istable(L, -1) ? lua_gettop(L) : 0, &pg->text);
            lua_pop(L, 1);
            pg->values = grow(L, pg->values, &pg->capvalues, pg->nvalues + 1, sizeof *pg->values);
            v = &pg->values[pg->nvalues++];
            memset(v, 0, sizeof *v);
            v->type = SQLITE_TEXT;
            v->off = off;
            v->len = pg->text.len - off;
            continue;
        }
        default: push_member(L, t, 5, col);
        }
        add_value(L, pg, col);
    }
    pg->records = grow(L, pg->records, &pg->caprecords, pg->nrecords + 1, sizeof *pg->records);
    pg->records[pg->nrecords].order = order;
    pg->records[pg->nrecords].first = first;
    pg->records[pg->nrecords].n = pg->nvalues - first;
    pg->nrecords++;
}

/* w:add(order, modified_ms, deleted): the order and its lines, into the
 * page being filled. */
static int writer_add(lua_State *L)
{
    unl_writer *w = check_writer(L);
    lua_Integer n, i;
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_pushinteger(L, luaL_checkinteger(L, 3));   /* 1.7e12 as a float too: compared as an integer */
    lua_replace(L, 3);
    luaL_checktype(L, 4, LUA_TBOOLEAN);
    lua_settop(L, 4);
    lua_getiuservalue(L, 1, 2);                     /* 5: the key strings */
    luaL_checkstack(L, 20, "sqlite: writer");
    lua_rawgeti(L, 5, w->guid_key);
    lua_rawget(L, 2);                               /* 6: the order's Guid */
    if (lua_type(L, 6) != LUA_TSTRING) return luaL_error(L, "sqlite: writer:add: the order has no Guid");
    add_record(L, w, 1, 2, 6, 3, w->order_cols, w->norder);
    lua_rawgeti(L, 5, w->lines_key);
    lua_rawget(L, 2);                               /* 7: its lines */
    if (lua_type(L, 7) != LUA_TTABLE) return 0;
    n = (lua_Integer)lua_rawlen(L, 7);
    for (i = 1; i <= n; i++) {
        lua_rawgeti(L, 7, i);                       /* 8: a line */
        if (lua_type(L, 8) == LUA_TTABLE) {
            lua_rawgeti(L, 5, w->guid_key);
            if (lua_rawget(L, 8) == LUA_TSTRING) {
                lua_pop(L, 1);
                add_record(L, w, 0, 8, 6, 3, w->line_cols, w->nline);
            } else {
                lua_pop(L, 1);
            }
        }
        lua_settop(L, 7);
    }
    return 0;
}

/* Waits for the thread's page; raises the error of a page that failed. */
static void wait_idle(lua_State *L, unl_writer *w)
{
    int failed, code;
    char message[sizeof w->message];
    pthread_mutex_lock(&w->mu);
    while (w->queued > 0) pthread_cond_wait(&w->cv, &w->mu);
    failed = w->failed;
    code = w->code;
    memcpy(message, w->message, sizeof message);
    pthread_mutex_unlock(&w->mu);
    if (failed) unl_sqlite_raise(L, code, message);
}

/* w:commit(force): hands the page filled so far to the thread, waiting
 * while the thread has WRITER_PAGES - 1 pages queued. */
static int writer_commit(lua_State *L)
{
    unl_writer *w = check_writer(L);
    int force = lua_toboolean(L, 2), failed, code;
    wpage *pg = &w->pages[w->fill];
    char message[sizeof w->message];
    if (pg->nrecords == 0) {
        wait_idle(L, w);   /* nothing to hand over: says only whether the pages before failed */
        return 0;
    }
    pg->force = force;
    pthread_mutex_lock(&w->mu);
    while (w->queued == WRITER_PAGES - 1 && !w->failed) pthread_cond_wait(&w->cv, &w->mu);
    failed = w->failed;
    code = w->code;
    memcpy(message, w->message, sizeof message);
    if (!failed) {
        w->queued++;
        w->fill = (w->head + w->queued) % WRITER_PAGES;
        pthread_cond_broadcast(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
    if (failed) unl_sqlite_raise(L, code, message);
    return 0;
}

/* w:wait() -> orders written, of which Deleted (by every page committed) */
static int writer_wait(lua_State *L)
{
    unl_writer *w = check_writer(L);
    wait_idle(L, w);
    lua_pushinteger(L, w->written);
    lua_pushinteger(L, w->deleted);
    return 2;
}

static int writer_close(lua_State *L)
{
    unl_writer **box = (unl_writer **)luaL_checkudata(L, 1, WRITER_MT);
    if (*box) unl_writer_shutdown(*box);
    return 0;
}

static int writer_gc(lua_State *L)
{
    unl_writer **box = (unl_writer **)luaL_checkudata(L, 1, WRITER_MT);
    if (*box) {
        unl_writer_shutdown(*box);
        pthread_cond_destroy(&(*box)->cv);
        pthread_mutex_destroy(&(*box)->mu);
        free(*box);
        *box = NULL;
    }
    return 0;
}

/* The index of key s in the writer's key table (at keys), made once; index_of
 * maps the strings to their indexes while the shape is read. */
static int key_index(lua_State *L, int keys, int index_of, const char *s, size_t n)
{
    int k;
    lua_pushlstring(L, s, n);
    lua_pushvalue(L, -1);
    if (lua_rawget(L, index_of) == LUA_TNUMBER) {
        k = (int)lua_tointeger(L, -1);
        lua_pop(L, 2);
        return k;
    }
    lua_pop(L, 1);
    k = (int)lua_rawlen(L, keys) + 1;
    lua_pushvalue(L, -1);
    lua_rawseti(L, keys, k);
    lua_pushinteger(L, k);
    lua_rawset(L, index_of);
    return k;
}

/* Reads shape[name], a list of value sources, into *cols (owned by w). */
static int compile_columns(lua_State *L, int shape, const char *name, wcolumn **cols, int keys, int index_of)
{
    int n, c;
    if (lua_getfield(L, shape, name) != LUA_TTABLE)
        return luaL_error(L, "sqlite: writer: shape.%s must be a list of value sources", name);
    n = (int)lua_rawlen(L, -1);
    *cols = (wcolumn *)calloc(n > 0 ? (size_t)n : 1, sizeof **cols);
    if (*cols == NULL) return luaL_error(L, "sqlite: not enough memory");
    for (c = 0; c < n; c++) {
        wcolumn *col = &(*cols)[c];
        size_t len;
        const char *src, *dot;
        lua_rawgeti(L, -1, c + 1);
        src = lua_tolstring(L, -1, &len);
        if (src == NULL || len == 0)
            return luaL_error(L, "sqlite: writer: shape.%s[%d] must be a non-empty string", name, c + 1);
        if (src[0] == '=') {
            if (strcmp(src, "=guid") == 0) col->kind = C_GUID;
            else if (strcmp(src, "=modified") == 0) col->kind = C_MODIFIED;
            else if (strcmp(src, "=json") == 0) col->kind = C_JSON;
            else return luaL_error(L, "sqlite: writer: shape.%s[%d] is %s (=guid, =modified or =json)", name,
                                   c + 1, src);
        } else {
            col->kind = C_MEMBER;
            while (len > 0 && (src[len - 1] == '|' || src[len - 1] == '#')) {
                if (src[len - 1] == '|') col->empty_text = 1;
                else col->integer = 1;
                len--;
            }
            dot = memchr(src, '.', len);
            col->key1 = key_index(L, keys, index_of, src, dot ? (size_t)(dot - src) : len);
            if (dot) col->key2 = key_index(L, keys, index_of, dot + 1, len - (size_t)(dot - src) - 1);
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return n;
}

/* Reads the shape (at index shape) for the writer whose box is at index box. */
static void compile_shape(lua_State *L, unl_writer *w, int shape, int box)
{
    const char *lines;
    size_t len;
    int keys, index_of, upsert, insert;
    lua_newtable(L);
    keys = lua_gettop(L);
    lua_newtable(L);
    index_of = lua_gettop(L);
    w->norder = compile_columns(L, shape, "order", &w->order_cols, keys, index_of);
    w->nline = compile_columns(L, shape, "line", &w->line_cols, keys, index_of);
    w->guid_key = key_index(L, keys, index_of, "Guid", 4);
    lua_getfield(L, shape, "lines");
    lines = lua_tolstring(L, -1, &len);
    if (lines == NULL) luaL_error(L, "sqlite: writer: shape.lines must be the name of the orders' lines");
    w->lines_key = key_index(L, keys, index_of, lines, len);
    lua_pop(L, 1);
    upsert = sqlite3_bind_parameter_count(w->st[ST_UPSERT]);
    insert = sqlite3_bind_parameter_count(w->st[ST_INSERT_LINE]);
    if (upsert != w->norder || insert != w->nline)
        luaL_error(L, "sqlite: writer: the upsert takes %d values and shape.order gives %d; the line insert "
                   "takes %d and shape.line gives %d", upsert, w->norder, insert, w->nline);
    lua_pushvalue(L, keys);
    lua_setiuservalue(L, box, 2);
    lua_getfield(L, shape, "arrays");
    lua_setiuservalue(L, box, 3);
    lua_settop(L, keys - 1);
}

/* db:writer(sql, shape) -> Writer; sql: the statements by name (listed
 * optional); shape: where their values come from. */
int unl_sqlite_writer(lua_State *L)
{
    db_box *b = (db_box *)luaL_checkudata(L, 1, DB_MT);
    unl_writer **box, *w;
    sigset_t all, old;
    int k, rc;
    if (b->db == NULL) return luaL_error(L, "sqlite: the database is closed");
    if (b->writer != NULL) return luaL_error(L, "sqlite: the database has a writer already");
    luaL_checktype(L, 2, LUA_TTABLE);
    luaL_checktype(L, 3, LUA_TTABLE);
    lua_settop(L, 3);
    box = (unl_writer **)lua_newuserdatauv(L, sizeof *box, 3);
    *box = NULL;
    luaL_setmetatable(L, WRITER_MT);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 1);
    w = (unl_writer *)calloc(1, sizeof *w);
    if (w == NULL) return luaL_error(L, "sqlite: not enough memory");
    if (pthread_mutex_init(&w->mu, NULL) != 0) {
        free(w);
        return luaL_error(L, "sqlite: cannot make the writer's lock");
    }
    if (pthread_cond_init(&w->cv, NULL) != 0) {
        pthread_mutex_destroy(&w->mu);
        free(w);
        return luaL_error(L, "sqlite: cannot make the writer's lock");
    }
    *box = w;   /* from here on the box's __gc frees it */
    w->owner = b;
    w->db = b->db;
    for (k = 0; k < ST_COUNT; k++) {
        const char *sql;
        lua_getfield(L, 2, STATEMENT_NAMES[k]);
        if (lua_isnil(L, -1) && k == ST_LISTED) {
            lua_pop(L, 1);
            continue;
        }
        sql = lua_tostring(L, -1);
        if (sql == NULL) {
            unl_writer_shutdown(w);
            return luaL_error(L, "sqlite: writer: sql.%s must be SQL text", STATEMENT_NAMES[k]);
        }
        rc = sqlite3_prepare_v3(b->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &w->st[k], NULL);
        lua_pop(L, 1);
        if (rc != SQLITE_OK || w->st[k] == NULL) {
            char message[512];
            snprintf(message, sizeof message, "writer: sql.%s: %s", STATEMENT_NAMES[k],
                     rc != SQLITE_OK ? sqlite3_errmsg(b->db) : "no SQL statement");
            unl_writer_shutdown(w);
            return unl_sqlite_raise(L, rc != SQLITE_OK ? rc : SQLITE_MISUSE, message);
        }
    }
    compile_shape(L, w, 3, lua_gettop(L));
    /* the thread takes no signal: they stay the Lua thread's */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    w->started = pthread_create(&w->thread, NULL, writer_main, w) == 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!w->started) {
        unl_writer_shutdown(w);
        return luaL_error(L, "sqlite: cannot start the writer's thread");
    }
    b->writer = w;
    return 1;
}

static int writer_tostring(lua_State *L)
{
    unl_writer **box = (unl_writer **)luaL_checkudata(L, 1, WRITER_MT);
    lua_pushstring(L, *box && !(*box)->closed ? "unleashed.sqlite.Writer" : "unleashed.sqlite.Writer(closed)");
    return 1;
}

void unl_writer_register(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"add", writer_add},
        {"commit", writer_commit},
        {"wait", writer_wait},
        {"close", writer_close},
        {NULL, NULL}
    };
    static const luaL_Reg meta[] = {
        {"__gc", writer_gc},
        {"__close", writer_close},
        {"__tostring", writer_tostring},
        {NULL, NULL}
    };
    if (luaL_newmetatable(L, WRITER_MT)) {
        luaL_setfuncs(L, meta, 0);
        luaL_newlib(L, methods);
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
}
