# Builds the C modules without LuaRocks: for development, sanitizers and
# embedding. `make` builds into build/; `make SAN=1` builds an
# AddressSanitizer + UndefinedBehaviorSanitizer variant into build-san/.

LUA        ?= lua5.4
PKG_CONFIG ?= pkg-config
CC         ?= cc

LUA_CFLAGS  := $(shell $(PKG_CONFIG) --cflags lua5.4)
CURL_CFLAGS := $(shell $(PKG_CONFIG) --cflags libcurl)
CURL_LIBS   := $(shell $(PKG_CONFIG) --libs libcurl)
SSL_LIBS    := $(shell $(PKG_CONFIG) --libs libcrypto)
MHD_CFLAGS  := $(shell $(PKG_CONFIG) --cflags libmicrohttpd)
MHD_LIBS    := $(shell $(PKG_CONFIG) --libs libmicrohttpd)

WARN    := -Wall -Wextra -Werror -pedantic -Wshadow -Wmissing-prototypes
CSTD    := -std=c99 -D_POSIX_C_SOURCE=200809L
OPT     ?= -O2 -g
CFLAGS  ?=
CFLAGS  += $(CSTD) $(OPT) $(WARN) -fPIC -fvisibility=hidden

ifeq ($(SAN),1)
BUILD   ?= build-san
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
else
BUILD   ?= build
endif

CORE_SRC := $(wildcard src/*.c)
CORE_OBJ := $(CORE_SRC:src/%.c=$(BUILD)/obj/%.o)
HTTPD_SRC := $(wildcard sandbox/*.c)
HTTPD_OBJ := $(HTTPD_SRC:sandbox/%.c=$(BUILD)/obj/sandbox/%.o)

CORE_SO  := $(BUILD)/unleashed/core.so
HTTPD_SO := $(BUILD)/unleashed/sandbox/httpd.so

.PHONY: all test test-san lint bench clean
all: $(CORE_SO) $(HTTPD_SO)

$(BUILD)/obj/%.o: src/%.c src/*.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LUA_CFLAGS) $(CURL_CFLAGS) -c $< -o $@

$(BUILD)/obj/sandbox/%.o: sandbox/%.c $(wildcard sandbox/*.h) src/*.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LUA_CFLAGS) $(MHD_CFLAGS) -Isrc -c $< -o $@

$(CORE_SO): $(CORE_OBJ)
	@mkdir -p $(dir $@)
	$(CC) -shared $(LDFLAGS) -o $@ $^ $(CURL_LIBS) $(SSL_LIBS) -lpthread

$(HTTPD_SO): $(HTTPD_OBJ)
	@mkdir -p $(dir $@)
	$(CC) -shared $(LDFLAGS) -o $@ $^ $(MHD_LIBS) -lpthread

# The test command README.md gives; tools/test wraps it with the bootstrap.
test: all
	sh tools/test --no-bootstrap

test-san:
	$(MAKE) SAN=1 all
	sh tools/test --no-bootstrap --san

lint:
	luacheck -q .

clean:
	rm -rf build build-san

# Parts with build rules of their own (benchmarks, the embedding example,
# fuzzing) keep them beside their code.
-include bench/bench.mk
-include examples/host/host.mk
-include sqlite/sqlite.mk
-include bench/sync.mk
