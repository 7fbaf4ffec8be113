rockspec_format = "3.0"
package = "lua-unleashed"
version = "0.1.0-1"
source = {
  url = "git+file:///lua-unleashed",
  tag = "v0.1.0",
}
description = {
  summary = "The Unleashed inventory API for Lua 5.4: purchase orders, signed requests, concurrent paging",
  detailed = [[
A C core (libcurl, OpenSSL) that signs every request correctly, keeps
connections alive, retries what is safe to retry and walks paginated lists
with several pages in flight, under a thin Lua layer where a purchase order is
a table with methods. Includes a local sandbox of the API for trying scripts
without an account.]],
  license = "MIT",
  labels = { "http", "api", "inventory", "unleashed" },
}
dependencies = {
  "lua >= 5.4",
  "lua-cjson",
}
external_dependencies = {
  CURL = { header = "curl/curl.h", library = "curl" },
  CRYPTO = { header = "openssl/hmac.h", library = "crypto" },
  MICROHTTPD = { header = "microhttpd.h", library = "microhttpd" },
  SQLITE = { header = "sqlite3.h", library = "sqlite3" },           -- Debian: libsqlite3-dev
}
build = {
  type = "builtin",
  modules = {
    -- BEGIN modules (spec/rockspec_spec.lua checks this list against src/, sandbox/ and lua/)
    ["unleashed.core"] = {
      sources = { "src/bigbuf.c",
                  "src/client.c",
                  "src/clock.c",
                  "src/codec.c",
                  "src/core.c",
                  "src/dates.c",
                  "src/decode.c",
                  "src/encode.c",
                  "src/pager.c",
                  "src/query.c",
                  "src/retry.c",
                  "src/sign.c",
                  "src/transport.c" },
      libraries = { "curl", "crypto", "pthread" },
      incdirs = { "src", "$(CURL_INCDIR)", "$(CRYPTO_INCDIR)" },
      libdirs = { "$(CURL_LIBDIR)", "$(CRYPTO_LIBDIR)" },
    },
    ["unleashed.sandbox.httpd"] = {
      sources = { "sandbox/files.c",
                  "sandbox/httpd.c" },
      libraries = { "microhttpd", "pthread" },
      incdirs = { "src", "$(MICROHTTPD_INCDIR)" },
      libdirs = { "$(MICROHTTPD_LIBDIR)" },
    },
    ["unleashed.sqlite"] = {
      sources = { "sqlite/sqlite.c", "sqlite/writer.c", "src/encode.c" },
      libraries = { "sqlite3", "pthread" },
      incdirs = { "src", "$(SQLITE_INCDIR)" },
      libdirs = { "$(SQLITE_LIBDIR)" },
    },
    ["unleashed"] = "lua/unleashed.lua",
    ["unleashed.arithmetic"] = "lua/unleashed/arithmetic.lua",
    ["unleashed.changes"] = "lua/unleashed/changes.lua",
    ["unleashed.cli"] = "lua/unleashed/cli.lua",
    ["unleashed.cli.connect"] = "lua/unleashed/cli/connect.lua",
    ["unleashed.cli.csv"] = "lua/unleashed/cli/csv.lua",
    ["unleashed.cli.exit"] = "lua/unleashed/cli/exit.lua",
    ["unleashed.cli.flags"] = "lua/unleashed/cli/flags.lua",
    ["unleashed.cli.format"] = "lua/unleashed/cli/format.lua",
    ["unleashed.cli.help"] = "lua/unleashed/cli/help.lua",
    ["unleashed.cli.order_file"] = "lua/unleashed/cli/order_file.lua",
    ["unleashed.cli.po"] = "lua/unleashed/cli/po.lua",
    ["unleashed.cli.profile"] = "lua/unleashed/cli/profile.lua",
    ["unleashed.cli.progress"] = "lua/unleashed/cli/progress.lua",
    ["unleashed.cli.run"] = "lua/unleashed/cli/run.lua",
    ["unleashed.cli.sync"] = "lua/unleashed/cli/sync.lua",
    ["unleashed.client"] = "lua/unleashed/client.lua",
    ["unleashed.dates"] = "lua/unleashed/dates.lua",
    ["unleashed.decimal"] = "lua/unleashed/decimal.lua",
    ["unleashed.error"] = "lua/unleashed/error.lua",
    ["unleashed.filters"] = "lua/unleashed/filters.lua",
    ["unleashed.guid"] = "lua/unleashed/guid.lua",
    ["unleashed.json"] = "lua/unleashed/json.lua",
    ["unleashed.mirror"] = "lua/unleashed/mirror.lua",
    ["unleashed.purchase_orders"] = "lua/unleashed/purchase_orders.lua",
    ["unleashed.sandbox.data"] = "lua/unleashed/sandbox/data.lua",
    ["unleashed.sandbox"] = "lua/unleashed/sandbox/init.lua",
    ["unleashed.sandbox.json"] = "lua/unleashed/sandbox/json.lua",
    ["unleashed.sandbox.listing"] = "lua/unleashed/sandbox/listing.lua",
    ["unleashed.sandbox.orders"] = "lua/unleashed/sandbox/orders.lua",
    ["unleashed.sandbox.server"] = "lua/unleashed/sandbox/server.lua",
    ["unleashed.sandbox.ticker"] = "lua/unleashed/sandbox/ticker.lua",
    ["unleashed.sandbox.validate"] = "lua/unleashed/sandbox/validate.lua",
    ["unleashed.validate"] = "lua/unleashed/validate.lua",
    -- END modules
  },
  install = {
    bin = {
      ["unleashed"] = "bin/unleashed",
      ["unleashed-sandbox"] = "bin/unleashed-sandbox",
    },
  },
}
test = {
  type = "command",
  command = "sh tools/test",
}
