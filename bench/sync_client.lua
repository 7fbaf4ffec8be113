-- The mirror under benchmark, one measurement per process (a fresh heap for
-- the peak memory figure). Run by bench/sync.lua:
--   lua5.4 bench/sync_client.lua each          a plain purchase_orders:each over every order
--   lua5.4 bench/sync_client.lua feed          the change feed from the start, orders dropped
--   lua5.4 bench/sync_client.lua json          the change feed, and each order's JSON made
--   lua5.4 bench/sync_client.lua sync DB       unleashed.mirror: a sync into DB
-- The sandbox's address and credentials come from BENCH_BASE_URL,
-- BENCH_API_ID and BENCH_API_KEY. Prints one JSON line.
local lib = require "benchlib"
local unleashed = require "unleashed"

local ALL = "Parked,Placed,Unapproved,Costed,Receipted,Complete,Deleted"

local mode = arg[1]
local base_url, api_id, api_key = lib.target()
local client = unleashed.new{ api_id = api_id, api_key = api_key, base_url = base_url, page_size = 1000 }

local t0, c0 = lib.now(), lib.cpu()
local result = {}
if mode == "each" then
  local n = 0
  for po in client.purchase_orders:each{ orderStatus = ALL } do
    if po.Guid == nil then error("an order without a Guid") end
    n = n + 1
  end
  result.orders = n
elseif mode == "feed" or mode == "json" then
  local mirror = mode == "json" and require "unleashed.mirror"
  local feed = client.purchase_orders:changes{}
  local n, bytes = 0, 0
  for po in feed do
    n = n + 1
    if mirror then bytes = bytes + #mirror.order_json(po) end
  end
  result.orders, result.json_bytes, result.calls = n, bytes, feed.calls
elseif mode == "sync" then
  local mirror = require "unleashed.mirror"
  local m = mirror.open(assert(arg[2], "DB"))
  local r = m:sync(client)
  m:close()
  result.orders, result.calls, result.complete = r.orders, r.calls, r.complete
else
  io.stderr:write("usage: sync_client.lua each|feed|json|sync DB\n")
  os.exit(2)
end
result.seconds, result.cpu_seconds = lib.now() - t0, lib.cpu() - c0
result.vmhwm_kb = lib.vmhwm_kb()
lib.emit(result)
