-- Measurements without HTTP, in one process:
--   serve:  server time of app:handle for a page of 200 and of 1,000 full
--           orders, and for a GET of one order (the sandbox's own cost);
--   decode: orders per second from a page's response bytes to order objects
--           (the Lua layer's path), and to the decoded tables (the core's
--           decoder), against cjson.decode alone on the same bytes.
--   lua5.4 bench/inproc.lua SEED
-- Prints one JSON line. Times are CPU time of this process (os.clock): the
-- work is all on this thread, and other processes on the machine then do not
-- show in the figures.
local lib = require "benchlib"
local cjson = require "cjson"
local core = require "unleashed.core"
local sandbox = require "unleashed.sandbox"

local clock = os.clock
local seed = assert(math.tointeger(tonumber(arg[1])), "SEED")
local api_id, api_key = "bench-inproc", "bench-inproc-key"

-- Heap in MB after a full collection.
local function heap_mb()
  collectgarbage()
  return collectgarbage("count") / 1024
end

local base_mb = heap_mb()
local t0 = clock()
local app = sandbox.new{ seed = seed, credentials = { [api_id] = api_key } }
local out = { seed = seed, build_seconds = clock() - t0 }
out.heap_mb = heap_mb() - base_mb

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
    local s = clock()
    handle(req)
    ms[i] = (clock() - s) * 1000
  end
  return lib.median(ms)
end

-- ---- serve -------------------------------------------------------------
-- The app keeps each order's JSON once rendered, and renders the default
-- form of every listed order when it is built. A page is timed as the first
-- request for it after start-up (one measurement) and warm (median); the
-- cost of a first render is timed below on an app built without that.
local function once_ms(req)
  local s = clock()
  local body = handle(req)
  return (clock() - s) * 1000, body
end
local first = cjson.decode(handle(request("/PurchaseOrders/Page/1", "pageSize=1"))).Items[1]
out.guid = first.Guid
local cold1000, page1000 = once_ms(request("/PurchaseOrders/Page/2", "pageSize=1000"))
out.page1000_cold_ms, out.page1000_bytes = cold1000, #page1000
out.page200_cold_ms = once_ms(request("/PurchaseOrders/Page/21", "pageSize=200"))
out.page1000_ms = serve_ms(request("/PurchaseOrders/Page/2", "pageSize=1000"), 15)
out.page200_ms = serve_ms(request("/PurchaseOrders/Page/21", "pageSize=200"), 30)
do
  local req = request("/PurchaseOrders/" .. out.guid)
  handle(req)
  local n, s = 3000, clock()
  for _ = 1, n do handle(req) end
  out.get_ms = (clock() - s) * 1000 / n
end

-- The first render of 1,000 orders: an app that renders on demand only.
-- The sandbox's apps are then dropped, so that the client's decoding below
-- is measured without their heap (the client never has it).
app = nil
collectgarbage()
do
  local t1 = clock()
  local lazy = sandbox.new{ seed = seed, credentials = { [api_id] = api_key }, prerender = false }
  out.build_lazy_seconds = clock() - t1
  out.heap_lazy_mb = heap_mb() - base_mb
  local function lazy_ms(req)
    local s = clock()
    local resp = lazy:handle(req)
    assert(resp.status == 200, resp.body)
    return (clock() - s) * 1000
  end
  lazy_ms(request("/PurchaseOrders/Page/1", "pageSize=1"))
  out.render1000_ms = lazy_ms(request("/PurchaseOrders/Page/2", "pageSize=1000"))
  out.render200_ms = lazy_ms(request("/PurchaseOrders/Page/21", "pageSize=200"))
end
collectgarbage()

-- ---- decode ------------------------------------------------------------
-- Rounds of about 0.6 s each (a dozen pages, so the collector's cycles
-- average out), the candidates interleaved so that drift falls on all alike;
-- each figure is a median.
local function rounds(fns, bytes, items, n)
  local rates = {}
  for name in pairs(fns) do rates[name] = {} end
  for _ = 1, n do
    for name, fn in pairs(fns) do
      collectgarbage()
      fn(bytes)
      local runs, s = 0, clock()
      repeat
        fn(bytes)
        runs = runs + 1
      until clock() - s >= 0.6 and runs >= 3
      local list = rates[name]
      list[#list + 1] = runs * items / (clock() - s)
    end
  end
  for name, list in pairs(rates) do rates[name] = lib.median(list) end
  return rates
end

local items = #cjson.decode(page1000).Items
out.decode_items = items
local fns = { cjson = cjson.decode, normalize = core.normalize,
              old = function(b) return cjson.decode(core.normalize(b)) end }
local decoder = require "bench_decode"
if decoder.available then
  fns.layer = decoder.decode_page
  fns.json = decoder.json_decode
  out.layer_path = decoder.path
else
  out.layer_missing = decoder.missing
end
local rates = rounds(fns, page1000, items, 5)
out.cjson_orders_per_s = rates.cjson
out.normalize_orders_per_s = rates.normalize
out.old_orders_per_s = rates.old
out.layer_orders_per_s = rates.layer
out.json_orders_per_s = rates.json

lib.emit(out)
