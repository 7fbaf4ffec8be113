/* What the parts of unleashed.sqlite share: the connection's box, the
 * error raisers (sqlite.c) and the writer (writer.c). */
#ifndef UNLEASHED_SQLITE_BINDING_H
#define UNLEASHED_SQLITE_BINDING_H

#include <lua.h>
#include <sqlite3.h>

#define DB_MT "unleashed.sqlite.Database"
#define ERROR_MT "unleashed.sqlite.Error"

typedef struct unl_writer unl_writer;

typedef struct {
    sqlite3 *db;
    unl_writer *writer;   /* the open writer, or NULL */
} db_box;

/* Raise { code, name, message } (an unleashed.sqlite.Error). */
int unl_sqlite_raise(lua_State *L, int code, const char *message);
int unl_sqlite_raise_db(lua_State *L, sqlite3 *db, int rc);

/* db:writer(sql) -> Writer (writer.c). */
int unl_sqlite_writer(lua_State *L);
void unl_writer_register(lua_State *L);
/* True while the writer has a page in hand. */
int unl_writer_busy(unl_writer *w);
/* Ends the writer: its page in hand finished, its thread joined, its
 * statements finalized. Idempotent. */
void unl_writer_shutdown(unl_writer *w);

#endif
