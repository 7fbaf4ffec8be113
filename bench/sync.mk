# make bench-sync: the mirror's figures (bench/sync.lua), also run by
# `make bench`. Starts its own sandboxes (100,000 and 10,000 orders); a few
# minutes on 2 cores.

SQLITE_FLOOR := $(BUILD)/bench/sqlite_floor

# Built optimised and without sanitizers whatever SAN says: the reference
# the sync's SQLite writes are measured against.
$(SQLITE_FLOOR): bench/sqlite_floor.c
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) -O2 -g $(WARN) $(SQLITE_CFLAGS) -o $@ $< $(SQLITE_LIBS)

bench-sync: all $(SQLITE_FLOOR)
	cd $(CURDIR) && LUA_PATH="$(CURDIR)/lua/?.lua;$(CURDIR)/lua/?/init.lua;$(CURDIR)/bench/?.lua;;" \
	  LUA_CPATH="$(CURDIR)/$(BUILD)/?.so;;" UNLEASHED_ROOT="$(CURDIR)" BUILD=$(BUILD) \
	  SQLITE_FLOOR="$(CURDIR)/$(SQLITE_FLOOR)" lua5.4 bench/sync.lua

bench: bench-sync

.PHONY: bench-sync
