# unleashed.sqlite: the SQLite binding the purchase-order mirror writes
# through (libsqlite3-dev). Built by `make` with the other modules.

SQLITE_CFLAGS := $(shell $(PKG_CONFIG) --cflags sqlite3)
SQLITE_LIBS   := $(shell $(PKG_CONFIG) --libs sqlite3)
SQLITE_SO     := $(BUILD)/unleashed/sqlite.so

all: $(SQLITE_SO)

$(BUILD)/obj/sqlite/%.o: sqlite/%.c sqlite/binding.h src/unleashed.h src/json_encode.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LUA_CFLAGS) $(SQLITE_CFLAGS) -Isrc -c $< -o $@

# The writer puts each order's JSON into its page with the core's encoder:
# the same source, compiled into this module too.
$(BUILD)/obj/sqlite/encode.o: src/encode.c src/json_encode.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LUA_CFLAGS) -Isrc -c $< -o $@

$(SQLITE_SO): $(BUILD)/obj/sqlite/sqlite.o $(BUILD)/obj/sqlite/writer.o $(BUILD)/obj/sqlite/encode.o
	@mkdir -p $(dir $@)
	$(CC) -shared $(LDFLAGS) -o $@ $^ $(SQLITE_LIBS) -lpthread
