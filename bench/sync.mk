# make bench-sync: the mirror's figures (bench/sync.lua), also run by
# `make bench`. Starts its own sandboxes (100,000 and 10,000 orders); a few
# minutes on 2 cores.

bench-sync: all
	cd $(CURDIR) && LUA_PATH="$(CURDIR)/lua/?.lua;$(CURDIR)/lua/?/init.lua;$(CURDIR)/bench/?.lua;;" \
	  LUA_CPATH="$(CURDIR)/$(BUILD)/?.so;;" UNLEASHED_ROOT="$(CURDIR)" BUILD=$(BUILD) lua5.4 bench/sync.lua

bench: bench-sync

.PHONY: bench-sync
