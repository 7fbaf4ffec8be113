-- Measurements without HTTP, in one process:
--   serve:  server time of app:handle for a page of 200 and of 1,000 full
--           orders, and for a GET of one order (the sandbox's own cost);
--   decode: orders per second from a page's response bytes to order objects
--           (the Lua layer's path), and to the decoded tables (the core's
--           decoder), against cjson.decode alone on the same bytes; measured
--           by bench/decoding.lua in a process of its own.
--   lua5.4 bench/inproc.lua SEED
-- Prints one JSON line. Times are CPU time (os.clock): the work is all on
-- one thread, and other processes on the machine then do not
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
-- The sandbox's apps are then dropped.
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
-- In a process of its own (bench/decoding.lua), given the page's bytes: this
-- one has held the sandbox's heap, which a client never has.
local tmp = os.tmpname()
local f = assert(io.open(tmp, "wb"))
f:write(page1000)
f:close()
local function sh_quote(x) return "'" .. x:gsub("'", "'\\''") .. "'" end
local script = debug.getinfo(1, "S").source:match("^@(.*)inproc%.lua$") .. "decoding.lua"
-- Three processes: a process's heap layout and the machine's state at the
-- time move both rates, and not alike (ratios of one process ranged 1.6x to
-- 1.9x on one build); the run whose decoder-to-cjson ratio is the median is
-- the one reported, all its figures together.
local runs = {}
for _ = 1, 3 do
  local child = assert(io.popen("lua5.4 " .. sh_quote(script) .. " " .. sh_quote(tmp), "r"))
  local line = child:read("a")
  child:close()
  local ok, rates = pcall(cjson.decode, line:match("([^\n]*)\n*$") or "")
  if not ok or type(rates) ~= "table" then
    os.remove(tmp)
    error("bench/decoding.lua failed: " .. line, 0)
  end
  runs[#runs + 1] = rates
end
os.remove(tmp)
local function json_ratio(r) return r.json_vs_cjson or 0 end
table.sort(runs, function(a, b) return json_ratio(a) < json_ratio(b) end)
local ratios = {}
for i, r in ipairs(runs) do ratios[i] = ("%.2f"):format(json_ratio(r)) end
out.decode_runs = table.concat(ratios, ", ")
for k, v in pairs(runs[2]) do out[k] = v end

lib.emit(out)
