-- Measurements without HTTP, in one process:
--   serve:  server time of app:handle for a page of 200 and of 1,000 full
--           orders, and for a GET of one order (the sandbox's own cost);
--   decode: orders per second from a page's response bytes to order objects
--           (the Lua layer's path) against cjson.decode alone on the same bytes.
--   lua5.4 bench/inproc.lua SEED
-- Prints one JSON line.
local lib = require "benchlib"
local cjson = require "cjson"
local core = require "unleashed.core"
local sandbox = require "unleashed.sandbox"

local seed = assert(math.tointeger(tonumber(arg[1])), "SEED")
local api_id, api_key = "bench-inproc", "bench-inproc-key"

local t0 = lib.now()
local app = sandbox.new{ seed = seed, credentials = { [api_id] = api_key } }
local out = { seed = seed, build_seconds = lib.now() - t0 }

local function request(path, query)
  return { method = "GET", path = path, query = query or "", body = "",
           headers = { ["accept"] = "application/json", ["content-type"] = "application/json",
                       ["api-auth-id"] = api_id,
                       ["api-auth-signature"] = core.sign(query or "", api_key),
                       ["client-type"] = "lua-unleashed/bench" } }
end

local function handle(req)
  local resp = app:handle(req)
  if resp.status ~= 200 then
    error(("GET %s?%s: status %s %s"):format(req.path, req.query, tostring(resp.status),
                                            tostring(resp.body)), 0)
  end
  return resp.body
end

-- Median milliseconds of app:handle over runs (after one unmeasured call).
local function serve_ms(req, runs)
  handle(req)
  local ms = {}
  for i = 1, runs do
    local s = lib.now()
    handle(req)
    ms[i] = (lib.now() - s) * 1000
  end
  return lib.median(ms)
end

-- ---- serve -------------------------------------------------------------
local page1000 = handle(request("/PurchaseOrders/Page/1", "pageSize=1000"))
local first = cjson.decode(page1000).Items[1]
out.guid = first.Guid
out.page1000_bytes = #page1000
out.page1000_ms = serve_ms(request("/PurchaseOrders/Page/1", "pageSize=1000"), 15)
out.page200_ms = serve_ms(request("/PurchaseOrders/Page/1", "pageSize=200"), 30)
do
  local req = request("/PurchaseOrders/" .. out.guid)
  handle(req)
  local n, s = 3000, lib.now()
  for _ = 1, n do handle(req) end
  out.get_ms = (lib.now() - s) * 1000 / n
end

-- ---- decode ------------------------------------------------------------
local function rate(fn, bytes, items)
  fn(bytes)
  local runs, s = 0, lib.now()
  repeat
    fn(bytes)
    runs = runs + 1
  until lib.now() - s >= 1.0 and runs >= 5
  return runs * items / (lib.now() - s)
end

local items = #cjson.decode(page1000).Items
out.decode_items = items
out.cjson_orders_per_s = rate(cjson.decode, page1000, items)

local decoder = require "bench_decode"
if decoder.available then
  out.layer_orders_per_s = rate(decoder.decode_page, page1000, items)
  out.layer_path = decoder.path
else
  out.layer_missing = decoder.missing
end

lib.emit(out)
