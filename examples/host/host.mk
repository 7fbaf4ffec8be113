# The embedding example: a host program with Lua 5.4 and the C core linked in.
# `make host` builds $(BUILD)/host/unleashed-host (with SAN=1, instrumented
# like the rest of that build).
HOST_BIN    := $(BUILD)/host/unleashed-host
HOST_CFLAGS := $(shell $(PKG_CONFIG) --cflags lua5.4) -Isrc -pthread
HOST_LIBS   := $(shell $(PKG_CONFIG) --libs lua5.4) $(CURL_LIBS) $(SSL_LIBS) -lm -pthread

.PHONY: host
host: $(HOST_BIN)

$(HOST_BIN): examples/host/host.c src/unleashed.h $(CORE_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -fPIC -fvisibility=hidden,$(CFLAGS)) $(HOST_CFLAGS) \
		examples/host/host.c $(CORE_OBJ) -o $@ $(LDFLAGS) $(HOST_LIBS)
