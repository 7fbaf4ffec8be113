/* unleashed.sqlite: the small binding to SQLite that the purchase-order
 * mirror writes through. Prepared statements with bound values (no SQL text
 * built from data, no escaping), one call per row, and errors that carry
 * SQLite's result code so that the Lua layer can say "locked", "read-only"
 * or "corrupt" instead of passing on a bare message.
 *
 *   local sqlite = require "unleashed.sqlite"
 *   local db = sqlite.open(path, { readonly = false, create = true, busy_ms = 2000 })
 *   db:exec("CREATE TABLE ...; CREATE INDEX ...")
 *   local st = db:prepare("INSERT INTO t VALUES (?, ?)")
 *   st:run("a", 1)                      -> number of rows changed
 *   st:first(...)                       -> the first row's columns, or nothing
 *   for row in st:rows(...) do ... end  -> each row as an array (NULL is nil)
 *   st:columns()                        -> the result's column names
 *   st:close(); db:close()              (also __gc and __close; idempotent)
 *
 * Failures raise a table { code = N, name = "BUSY", message = "..." } whose
 * __tostring reads "sqlite: MESSAGE (NAME)". A statement is reset and its
 * bindings cleared before every return or raise, so it is ready again.
 *
 *   db:writer(sql, shape)               -> a Writer: a sync's pages written on a
 *                                          thread of their own (writer.c)
 *
 * No global state: a connection and its statements belong to the lua_State
 * that opened them (SQLite is opened with SQLITE_OPEN_NOMUTEX: one thread at
 * a time per connection; while its writer has a page in hand, the other
 * calls here refuse the connection). A statement keeps its connection's box
 * alive through its user value; the connection is closed with
 * sqlite3_close_v2, so the statements still open finalize safely in any
 * order. */
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>
#include <sqlite3.h>

#include "unleashed.h"

#include "binding.h"

#define STMT_MT "unleashed.sqlite.Statement"

UNLEASHED_API int luaopen_unleashed_sqlite(lua_State *L);

typedef struct {
    sqlite3_stmt *stmt;
    db_box *owner;                     /* kept alive by the user value */
} stmt_box;

/* ---- errors ---------------------------------------------------------------- */

static const char *code_name(int code)
{
    switch (code & 0xff) {
    case SQLITE_ERROR: return "ERROR";
    case SQLITE_PERM: return "PERM";
    case SQLITE_ABORT: return "ABORT";
    case SQLITE_BUSY: return "BUSY";
    case SQLITE_LOCKED: return "LOCKED";
    case SQLITE_NOMEM: return "NOMEM";
    case SQLITE_READONLY: return "READONLY";
    case SQLITE_INTERRUPT: return "INTERRUPT";
    case SQLITE_IOERR: return "IOERR";
    case SQLITE_CORRUPT: return "CORRUPT";
    case SQLITE_FULL: return "FULL";
    case SQLITE_CANTOPEN: return "CANTOPEN";
    case SQLITE_PROTOCOL: return "PROTOCOL";
    case SQLITE_SCHEMA: return "SCHEMA";
    case SQLITE_TOOBIG: return "TOOBIG";
    case SQLITE_CONSTRAINT: return "CONSTRAINT";
    case SQLITE_MISMATCH: return "MISMATCH";
    case SQLITE_MISUSE: return "MISUSE";
    case SQLITE_AUTH: return "AUTH";
    case SQLITE_RANGE: return "RANGE";
    case SQLITE_NOTADB: return "NOTADB";
    default: return "ERROR";
    }
}

static int error_tostring(lua_State *L)
{
    lua_getfield(L, 1, "message");
    lua_getfield(L, 1, "name");
    lua_pushfstring(L, "sqlite: %s (%s)", luaL_optstring(L, -2, "?"), luaL_optstring(L, -1, "ERROR"));
    return 1;
}

/* Raises { code, name, message }. message is copied before anything that
 * could change SQLite's error state. */
int unl_sqlite_raise(lua_State *L, int code, const char *message)
{
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, code);
    lua_setfield(L, -2, "code");
    lua_pushstring(L, code_name(code));
    lua_setfield(L, -2, "name");
    lua_pushstring(L, message ? message : sqlite3_errstr(code));
    lua_setfield(L, -2, "message");
    luaL_setmetatable(L, ERROR_MT);
    return lua_error(L);
}

int unl_sqlite_raise_db(lua_State *L, sqlite3 *db, int rc)
{
    int code = db ? sqlite3_extended_errcode(db) : rc;
    if ((code & 0xff) != (rc & 0xff)) code = rc;
    return unl_sqlite_raise(L, code, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
}

/* ---- connections ------------------------------------------------------------ */

/* A connection whose writer has a page in hand is the writer's alone
 * (SQLITE_OPEN_NOMUTEX: one thread at a time). */
static void check_idle(lua_State *L, const db_box *b)
{
    if (b->writer && unl_writer_busy(b->writer))
        luaL_error(L, "sqlite: the database is being written by its writer (writer:wait() first)");
}

static db_box *check_db(lua_State *L, int idx)
{
    db_box *b = (db_box *)luaL_checkudata(L, idx, DB_MT);
    if (b->db == NULL) luaL_error(L, "sqlite: the database is closed");
    check_idle(L, b);
    return b;
}

static int opt_boolean(lua_State *L, int t, const char *name, int dflt)
{
    int v = dflt;
    if (lua_getfield(L, t, name) != LUA_TNIL) {
        luaL_argexpected(L, lua_isboolean(L, -1), t, "boolean fields readonly and create");
        v = lua_toboolean(L, -1);
    }
    lua_pop(L, 1);
    return v;
}

/* sqlite.open(path, opts) -> Database. opts: readonly (false), create (true),
 * busy_ms (0: a locked database fails at once). */
static int l_open(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    int readonly = 0, create = 1;
    lua_Integer busy_ms = 0;
    int flags, rc;
    db_box *b;
    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        readonly = opt_boolean(L, 2, "readonly", 0);
        create = opt_boolean(L, 2, "create", 1);
        if (lua_getfield(L, 2, "busy_ms") != LUA_TNIL) {
            int isint = 0;
            busy_ms = lua_tointegerx(L, -1, &isint);
            luaL_argcheck(L, isint && busy_ms >= 0 && busy_ms <= 3600000, 2,
                          "busy_ms must be an integer in 0..3600000");
        }
        lua_pop(L, 1);
    }
    /* The box first, so that a failure below leaks nothing. */
    b = (db_box *)lua_newuserdatauv(L, sizeof *b, 0);
    b->db = NULL;
    b->writer = NULL;
    luaL_setmetatable(L, DB_MT);
    flags = SQLITE_OPEN_NOMUTEX | (readonly ? SQLITE_OPEN_READONLY
                                            : SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0));
    rc = sqlite3_open_v2(path, &b->db, flags, NULL);
    if (rc != SQLITE_OK) {
        char message[512];
        int code = b->db ? sqlite3_extended_errcode(b->db) : rc;
        snprintf(message, sizeof message, "%s: %s", path, b->db ? sqlite3_errmsg(b->db) : sqlite3_errstr(rc));
        sqlite3_close_v2(b->db);
        b->db = NULL;
        return unl_sqlite_raise(L, code, message);
    }
    sqlite3_extended_result_codes(b->db, 1);
    if (busy_ms > 0) sqlite3_busy_timeout(b->db, (int)busy_ms);
    return 1;
}

static int db_exec(lua_State *L)
{
    db_box *b = check_db(L, 1);
    const char *sql = luaL_checkstring(L, 2);
    char *msg = NULL;
    int rc = sqlite3_exec(b->db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        lua_pushstring(L, msg ? msg : sqlite3_errmsg(b->db));
        sqlite3_free(msg);
        return unl_sqlite_raise(L, sqlite3_extended_errcode(b->db) ? sqlite3_extended_errcode(b->db) : rc,
                           lua_tostring(L, -1));
    }
    return 0;
}

/* True when s[0..n) is only blanks, `;`, `-- ...` and C comments: what may
 * follow the one statement a prepare takes. */
static int only_comments(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        char c = s[i];
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == ';' || c == '\f' || c == '\v') {
            i++;
        } else if (c == '-' && i + 1 < n && s[i + 1] == '-') {
            while (i < n && s[i] != '\n') i++;
        } else if (c == '/' && i + 1 < n && s[i + 1] == '*') {
            i += 2;
            while (i + 1 < n && !(s[i] == '*' && s[i + 1] == '/')) i++;
            i += 2;
        } else {
            return 0;
        }
    }
    return 1;
}

static int db_prepare(lua_State *L)
{
    db_box *b = check_db(L, 1);
    size_t len;
    const char *sql = luaL_checklstring(L, 2, &len);
    stmt_box *s = (stmt_box *)lua_newuserdatauv(L, sizeof *s, 1);
    const char *tail = NULL;
    int rc;
    s->stmt = NULL;
    s->owner = b;
    luaL_setmetatable(L, STMT_MT);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 1);
    luaL_argcheck(L, len < 0x7fffffff, 2, "SQL text too long");
    rc = sqlite3_prepare_v3(b->db, sql, (int)len, SQLITE_PREPARE_PERSISTENT, &s->stmt, &tail);
    if (rc != SQLITE_OK) return unl_sqlite_raise_db(L, b->db, rc);
    if (s->stmt == NULL) return unl_sqlite_raise(L, SQLITE_MISUSE, "the text holds no SQL statement");
    if (!only_comments(tail, (size_t)(sql + len - tail))) {
        return unl_sqlite_raise(L, SQLITE_MISUSE, "the text holds more than one SQL statement");
    }
    return 1;
}

static int db_changes(lua_State *L)
{
    db_box *b = check_db(L, 1);
    lua_pushinteger(L, sqlite3_changes(b->db));
    return 1;
}

static int db_close(lua_State *L)
{
    db_box *b = (db_box *)luaL_checkudata(L, 1, DB_MT);
    if (b->writer != NULL) unl_writer_shutdown(b->writer);   /* its page done, its statements gone */
    if (b->db != NULL) {
        sqlite3_close_v2(b->db);       /* open statements keep it a zombie until they finalize */
        b->db = NULL;
    }
    return 0;
}

static int db_tostring(lua_State *L)
{
    db_box *b = (db_box *)luaL_checkudata(L, 1, DB_MT);
    const char *file = b->db ? sqlite3_db_filename(b->db, "main") : NULL;
    if (b->db == NULL) lua_pushliteral(L, "unleashed.sqlite.Database(closed)");
    else lua_pushfstring(L, "unleashed.sqlite.Database(%s)", file && *file ? file : ":memory:");
    return 1;
}

/* ---- statements ------------------------------------------------------------- */

static stmt_box *check_stmt(lua_State *L, int idx)
{
    stmt_box *s = (stmt_box *)luaL_checkudata(L, idx, STMT_MT);
    if (s->stmt == NULL) luaL_error(L, "sqlite: the statement is closed");
    if (s->owner->db == NULL) luaL_error(L, "sqlite: the database is closed");
    check_idle(L, s->owner);
    return s;
}

static void clear(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

/* Binds the arguments from index `first` on. Strings are bound without a
 * copy when they stay on the stack until the statement is reset (`copy` 0). */
static void bind_args(lua_State *L, stmt_box *s, int first, int copy)
{
    sqlite3_stmt *st = s->stmt;
    int n = lua_gettop(L) - first + 1;
    int want = sqlite3_bind_parameter_count(st);
    int i, rc = SQLITE_OK;
    if (n != want) {
        clear(st);
        luaL_error(L, "sqlite: the statement takes %d values, got %d", want, n);
    }
    for (i = 1; i <= n && rc == SQLITE_OK; i++) {
        int idx = first + i - 1;
        switch (lua_type(L, idx)) {
        case LUA_TNIL:
            rc = sqlite3_bind_null(st, i);
            break;
        case LUA_TBOOLEAN:
            rc = sqlite3_bind_int(st, i, lua_toboolean(L, idx));
            break;
        case LUA_TNUMBER:
            if (lua_isinteger(L, idx)) rc = sqlite3_bind_int64(st, i, (sqlite3_int64)lua_tointeger(L, idx));
            else rc = sqlite3_bind_double(st, i, (double)lua_tonumber(L, idx));
            break;
        case LUA_TSTRING: {
            size_t len;
            const char *v = lua_tolstring(L, idx, &len);
            rc = sqlite3_bind_text64(st, i, v, (sqlite3_uint64)len, copy ? SQLITE_TRANSIENT : SQLITE_STATIC,
                                     SQLITE_UTF8);
            break;
        }
        default:
            clear(st);
            luaL_error(L, "sqlite: value %d is a %s (nil, boolean, number or string expected)", i,
                       luaL_typename(L, idx));
        }
    }
    if (rc != SQLITE_OK) {
        clear(st);
        unl_sqlite_raise_db(L, s->owner->db, rc);
    }
}

static void push_column(lua_State *L, sqlite3_stmt *st, int c)
{
    switch (sqlite3_column_type(st, c)) {
    case SQLITE_INTEGER:
        lua_pushinteger(L, (lua_Integer)sqlite3_column_int64(st, c));
        break;
    case SQLITE_FLOAT:
        lua_pushnumber(L, (lua_Number)sqlite3_column_double(st, c));
        break;
    case SQLITE_NULL:
        lua_pushnil(L);
        break;
    default: {
        const void *p = sqlite3_column_blob(st, c);
        int len = sqlite3_column_bytes(st, c);
        lua_pushlstring(L, p ? (const char *)p : "", (size_t)len);
        break;
    }
    }
}

/* Steps once; on failure resets and raises. Returns SQLITE_ROW or SQLITE_DONE. */
static int step(lua_State *L, stmt_box *s)
{
    int rc = sqlite3_step(s->stmt);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        int code = sqlite3_extended_errcode(s->owner->db);
        lua_pushstring(L, sqlite3_errmsg(s->owner->db));
        clear(s->stmt);
        if ((code & 0xff) != (rc & 0xff)) code = rc;
        return unl_sqlite_raise(L, code, lua_tostring(L, -1));
    }
    return rc;
}

/* st:run(...) -> rows changed: binds, steps to the end, resets. */
static int stmt_run(lua_State *L)
{
    stmt_box *s = check_stmt(L, 1);
    bind_args(L, s, 2, 0);
    while (step(L, s) == SQLITE_ROW) {}
    clear(s->stmt);
    lua_pushinteger(L, sqlite3_changes(s->owner->db));
    return 1;
}

/* st:first(...) -> the first row's columns (nothing when there is no row). */
static int stmt_first(lua_State *L)
{
    stmt_box *s = check_stmt(L, 1);
    int top, n, c;
    bind_args(L, s, 2, 0);
    top = lua_gettop(L);
    if (step(L, s) != SQLITE_ROW) {
        clear(s->stmt);
        return 0;
    }
    n = sqlite3_column_count(s->stmt);
    luaL_checkstack(L, n, "sqlite: too many columns");
    for (c = 0; c < n; c++) push_column(L, s->stmt, c);
    clear(s->stmt);
    return lua_gettop(L) - top;
}

static int rows_next(lua_State *L)
{
    stmt_box *s = check_stmt(L, lua_upvalueindex(1));
    int n, c;
    if (step(L, s) != SQLITE_ROW) {
        clear(s->stmt);
        return 0;
    }
    n = sqlite3_column_count(s->stmt);
    lua_createtable(L, n, 0);
    for (c = 0; c < n; c++) {
        push_column(L, s->stmt, c);
        lua_rawseti(L, -2, c + 1);
    }
    return 1;
}

/* st:rows(...) -> iterator of row arrays. The values are copied, since the
 * iterator outlives this call; the statement is reset when the rows end
 * (a loop left early leaves it to the next call, which resets it first). */
static int stmt_rows(lua_State *L)
{
    stmt_box *s = check_stmt(L, 1);
    clear(s->stmt);
    bind_args(L, s, 2, 1);
    lua_settop(L, 1);
    lua_pushcclosure(L, rows_next, 1);
    return 1;
}

/* st:columns() -> the result's column names, in order. */
static int stmt_columns(lua_State *L)
{
    stmt_box *s = check_stmt(L, 1);
    int n = sqlite3_column_count(s->stmt), c;
    lua_createtable(L, n, 0);
    for (c = 0; c < n; c++) {
        const char *name = sqlite3_column_name(s->stmt, c);
        if (name == NULL) return luaL_error(L, "sqlite: out of memory");
        lua_pushstring(L, name);
        lua_rawseti(L, -2, c + 1);
    }
    return 1;
}

static int stmt_close(lua_State *L)
{
    stmt_box *s = (stmt_box *)luaL_checkudata(L, 1, STMT_MT);
    if (s->stmt != NULL) {
        sqlite3_finalize(s->stmt);
        s->stmt = NULL;
    }
    return 0;
}

static int stmt_tostring(lua_State *L)
{
    stmt_box *s = (stmt_box *)luaL_checkudata(L, 1, STMT_MT);
    const char *sql = s->stmt ? sqlite3_sql(s->stmt) : NULL;
    if (sql == NULL) lua_pushliteral(L, "unleashed.sqlite.Statement(closed)");
    else lua_pushfstring(L, "unleashed.sqlite.Statement(%s)", sql);
    return 1;
}

UNLEASHED_API int luaopen_unleashed_sqlite(lua_State *L)
{
    static const luaL_Reg db_methods[] = {
        {"exec", db_exec},
        {"prepare", db_prepare},
        {"changes", db_changes},
        {"writer", unl_sqlite_writer},
        {"close", db_close},
        {NULL, NULL}
    };
    static const luaL_Reg db_meta[] = {
        {"__gc", db_close},
        {"__close", db_close},
        {"__tostring", db_tostring},
        {NULL, NULL}
    };
    static const luaL_Reg stmt_methods[] = {
        {"run", stmt_run},
        {"first", stmt_first},
        {"rows", stmt_rows},
        {"columns", stmt_columns},
        {"close", stmt_close},
        {NULL, NULL}
    };
    static const luaL_Reg stmt_meta[] = {
        {"__gc", stmt_close},
        {"__close", stmt_close},
        {"__tostring", stmt_tostring},
        {NULL, NULL}
    };
    luaL_checkversion(L);
    if (luaL_newmetatable(L, DB_MT)) {
        luaL_setfuncs(L, db_meta, 0);
        luaL_newlib(L, db_methods);
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
    if (luaL_newmetatable(L, STMT_MT)) {
        luaL_setfuncs(L, stmt_meta, 0);
        luaL_newlib(L, stmt_methods);
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
    if (luaL_newmetatable(L, ERROR_MT)) {
        lua_pushcfunction(L, error_tostring);
        lua_setfield(L, -2, "__tostring");
    }
    lua_pop(L, 1);
    unl_writer_register(L);
    lua_newtable(L);
    lua_pushcfunction(L, l_open);
    lua_setfield(L, -2, "open");
    lua_pushstring(L, sqlite3_libversion());
    lua_setfield(L, -2, "version");
    return 1;
}
