# unleashed.sqlite: the SQLite binding the purchase-order mirror writes
# through (libsqlite3-dev). Built by `make` with the other modules.

SQLITE_CFLAGS := $(shell $(PKG_CONFIG) --cflags sqlite3)
SQLITE_LIBS   := $(shell $(PKG_CONFIG) --libs sqlite3)
SQLITE_SO     := $(BUILD)/unleashed/sqlite.so

all: $(SQLITE_SO)

$(BUILD)/obj/sqlite/%.o: sqlite/%.c src/unleashed.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LUA_CFLAGS) $(SQLITE_CFLAGS) -Isrc -c $< -o $@

$(SQLITE_SO): $(BUILD)/obj/sqlite/sqlite.o
	@mkdir -p $(dir $@)
	$(CC) -shared $(LDFLAGS) -o $@ $^ $(SQLITE_LIBS)
