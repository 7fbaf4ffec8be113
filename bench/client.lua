-- The project's client under benchmark, one measurement per process so that
-- each starts with a fresh heap (the peak memory figure depends on it).
--   lua5.4 bench/client.lua list PAGE_SIZE CONCURRENCY [MAX_ORDERS]
--                               ("default" for the client's own page size or concurrency)
--   lua5.4 bench/client.lua floor PAGE_SIZE CONCURRENCY
--                               (the pager floor: the listing's requests through the
--                                same pager, each page parsed, no object built)
--   lua5.4 bench/client.lua request GUID COUNT     (core client, c:request)
--   lua5.4 bench/client.lua get GUID COUNT         (Lua layer, purchase_orders:get)
-- The sandbox's address and credentials come from BENCH_BASE_URL,
-- BENCH_API_ID and BENCH_API_KEY. Prints one JSON line.
local lib = require "benchlib"

local mode = arg[1]
local base_url, api_id, api_key = lib.target()

local function fail(msg)
  io.stderr:write("bench/client.lua: ", msg, "\n")
  os.exit(1)
end

if mode == "list" then
  local unleashed = require "unleashed"
  local page_size = math.tointeger(tonumber(arg[2]))
  local concurrency = math.tointeger(tonumber(arg[3]))
  if not page_size and arg[2] ~= "default" then fail("PAGE_SIZE must be an integer or default") end
  if not concurrency and arg[3] ~= "default" then fail("CONCURRENCY must be an integer or default") end
  local max_orders = math.tointeger(tonumber(arg[4] or ""))
  local client = unleashed.new{ api_id = api_id, api_key = api_key, base_url = base_url,
                                concurrency = concurrency, page_size = page_size }
  local orders, passes = 0, 0
  local rss_start_kb = lib.rss_kb()
  local t0, c0 = lib.now(), lib.cpu()
  -- With MAX_ORDERS the listing is walked again until that many orders have
  -- gone by; the loop keeps nothing but a count.
  repeat
    passes = passes + 1
    local before = orders
    for po in client.purchase_orders:each(nil, { concurrency = concurrency, page_size = page_size }) do
      if po.Guid == nil then fail("an order without a Guid") end
      orders = orders + 1
      if max_orders and orders >= max_orders then break end
    end
    if orders == before then fail("the listing is empty") end
  until not max_orders or orders >= max_orders
  local seconds, cpu_seconds = lib.now() - t0, lib.cpu() - c0
  lib.emit{ seconds = seconds, cpu_seconds = cpu_seconds, orders = orders, passes = passes,
            vmhwm_kb = lib.vmhwm_kb(), rss_start_kb = rss_start_kb }

elseif mode == "floor" then
  -- What the network, the sandbox and the pager allow: page 1 alone, then
  -- pages 2..N through the same pager the listing uses, parsed on its thread,
  -- counted, never built into tables.
  local core = require "unleashed.core"
  local page_size = assert(math.tointeger(tonumber(arg[2])), "PAGE_SIZE")
  local concurrency = assert(math.tointeger(tonumber(arg[3])), "CONCURRENCY")
  local c = core.new_client{ api_id = api_id, api_key = api_key, base_url = base_url }
  local query = { pageSize = page_size }
  local rss_start_kb = lib.rss_kb()
  local t0, c0 = lib.now(), lib.cpu()
  local function page_of(res, n)
    if res.status ~= 200 or not res.page or not res.page:count() then fail("page " .. n .. ": no page") end
    return res.page
  end
  local first = c:pager("/PurchaseOrders/Page/%d", { first = 1, last = 1, parse = true, query = query })
  local _, res = first:next()
  local page = page_of(res, 1)
  local orders, total = page:count(), page:pagination().NumberOfPages
  if total > 1 then
    local p = c:pager("/PurchaseOrders/Page/%d", { first = 2, last = total, concurrency = concurrency,
                                                   parse = true, query = query })
    for n, r in p.next, p do orders = orders + page_of(r, n):count() end
  end
  local seconds, cpu_seconds = lib.now() - t0, lib.cpu() - c0
  lib.emit{ seconds = seconds, cpu_seconds = cpu_seconds, orders = orders, passes = 1,
            vmhwm_kb = lib.vmhwm_kb(), rss_start_kb = rss_start_kb }

elseif mode == "request" or mode == "get" then
  local guid = assert(arg[2], "GUID")
  local count = assert(math.tointeger(tonumber(arg[3])), "COUNT")
  local once
  if mode == "request" then
    local core = require "unleashed.core"
    local c = core.new_client{ api_id = api_id, api_key = api_key, base_url = base_url }
    local path = "/PurchaseOrders/" .. guid
    once = function()
      local res = c:request("GET", path)
      if res.status ~= 200 then fail("GET " .. path .. ": status " .. tostring(res.status)) end
    end
  else
    local unleashed = require "unleashed"
    local client = unleashed.new{ api_id = api_id, api_key = api_key, base_url = base_url }
    once = function()
      local po = client.purchase_orders:get(guid)
      if po == nil or po.Guid ~= guid then fail("get " .. guid .. ": no such order") end
    end
  end
  once()    -- connection set-up is not per request
  local t0, c0 = lib.now(), lib.cpu()
  for _ = 1, count do once() end
  local seconds, cpu_seconds = lib.now() - t0, lib.cpu() - c0
  lib.emit{ requests = count, seconds = seconds, rps = count / seconds, cpu_seconds = cpu_seconds }

else
  fail("usage: client.lua list|floor|request|get ...")
end
