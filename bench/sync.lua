-- make bench, the mirror's part (`make bench-sync` alone): the figures of
-- `unleashed po sync`, each printed with its target and the baseline
-- measured in this same run.
--   * a first sync of 100,000 orders against a plain purchase_orders:each
--     over the same orders (time <= 1.3x), and where the time goes;
--   * its peak memory against a first sync of 10,000 (<= 1.2x);
--   * an incremental sync with 100 changed orders: 1 call at page size
--     1000, under 1 s;
--   * the SQLite binding against Debian's LuaSQL, when lua-sql-sqlite3 is
--     installed (the measurement the binding was chosen by).
-- Run through make (bench/sync.mk sets LUA_PATH, LUA_CPATH and BUILD).
local lib = require "benchlib"
local cjson = require "cjson"
local socket = require "socket"

local ROOT = assert(os.getenv("UNLEASHED_ROOT"), "run through make bench-sync")
local SANDBOX = ROOT .. "/bin/unleashed-sandbox"
local CHILD = "lua5.4 " .. ROOT .. "/bench/sync_client.lua"
local BIG, SMALL, CHANGED = 100000, 10000, 100
local RUNS = 2

local API_ID = ("bench-%08x"):format(math.random(0, 0x7fffffff))
local API_KEY = ("%08x%08x%08x"):format(math.random(0, 0x7fffffff), math.random(0, 0x7fffffff),
                                        math.random(0, 0x7fffffff))

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function read_file(path)
  local f = io.open(path, "r")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function say(fmt, ...) io.stdout:write(fmt:format(...), "\n"); io.stdout:flush() end

-- ---- sandboxes ------------------------------------------------------------------

local started = {}

local function start_sandbox(seed)
  local log = os.tmpname()
  local pid = tonumber(io.popen(("%s --port 0 --seed %d --api-id %s --api-key %s --admin >%s 2>&1 & echo $!")
    :format(q(SANDBOX), seed, q(API_ID), q(API_KEY), q(log))):read("l"))
  local sb = { pid = pid, log = log }
  started[#started + 1] = sb
  local t0 = lib.now()
  repeat
    sb.url = (read_file(log) or ""):match("listening on (%S+)")
    if sb.url then return sb end
    socket.sleep(0.05)
  until lib.now() - t0 > 600
  error("the sandbox with seed " .. seed .. " did not start")
end

local function stop_all()
  for _, sb in ipairs(started) do
    os.execute("kill " .. sb.pid .. " 2>/dev/null")
    os.remove(sb.log)
  end
end

local http = require "socket.http"
local ltn12 = require "ltn12"

local function admin(sb, method, path)
  local chunks = {}
  http.request{ url = sb.url .. path, method = method, sink = ltn12.sink.table(chunks) }
  return cjson.decode(table.concat(chunks))
end

-- Runs a child against a sandbox: its JSON line, with the calls the sandbox answered.
local function child(sb, args)
  admin(sb, "POST", "/_sandbox/reset")
  local err = os.tmpname()
  local p = io.popen(("BENCH_BASE_URL=%s BENCH_API_ID=%s BENCH_API_KEY=%s %s %s 2>%s")
    :format(q(sb.url), q(API_ID), q(API_KEY), CHILD, args, q(err)))
  local out = p:read("a")
  p:close()
  local ok, t = pcall(cjson.decode, out:match("([^\n]*)\n?$") or "")
  if not ok or type(t) ~= "table" then
    error(("bench/sync_client.lua %s failed: %s"):format(args, (read_file(err) or out):sub(-400)))
  end
  os.remove(err)
  t.api_calls = admin(sb, "GET", "/_sandbox/stats").Total
  return t
end

local function fresh_db()
  local path = os.tmpname()
  os.remove(path)
  return path .. ".sqlite"
end

local function remove_db(path)
  for _, suffix in ipairs{ "", "-wal", "-shm" } do os.remove(path .. suffix) end
end

local function mb(kb) return kb / 1024 end

-- bench/sqlite_floor.c over a mirror the sync wrote: its JSON line.
local function floor_of(src)
  local dst = fresh_db()
  local p = io.popen(("%s %s %s %s 2>&1"):format(q(assert(os.getenv("SQLITE_FLOOR"), "run through make")),
    q(src), q(dst), q(require("unleashed.mirror").PRAGMAS)))
  local out = p:read("a")
  p:close()
  remove_db(dst)
  local ok, t = pcall(cjson.decode, out)
  if not ok or type(t) ~= "table" then error("bench/sqlite_floor.c failed: " .. out:sub(-400)) end
  return t
end

-- ---- the figures -----------------------------------------------------------------

local function main()
  say("== the mirror (po sync): make bench-sync ==")
  local big = start_sandbox(BIG)
  local small = start_sandbox(SMALL)
  child(big, "each")                      -- the sandbox renders every order once
  child(small, "each")

  -- First sync vs a plain listing, alternating, the fastest of each.
  local each, sync, sync_db
  for _ = 1, RUNS do
    local e = child(big, "each")
    if not each or e.seconds < each.seconds then each = e end
    local db = fresh_db()
    local s = child(big, "sync " .. q(db))
    if s.orders ~= BIG then error(("the sync wrote %d orders, not %d"):format(s.orders, BIG)) end
    if not sync or s.seconds < sync.seconds then
      if sync_db then remove_db(sync_db) end
      sync, sync_db = s, db
    else
      remove_db(db)
    end
  end
  local r = sync.seconds / each.seconds
  say("first sync of %d orders: %.2f s against a plain each over them, %.2f s: %.2fx   target <= 1.3x   %s",
    BIG, sync.seconds, each.seconds, r, r <= 1.3 and "MET" or "MISSED")
  local feed = child(big, "feed")
  local json = child(big, "json")
  say("  where the time goes, %d orders: each %.2f s; the change feed alone %.2f s (%d calls); with each "
    .. "order's JSON made (core.encode_json) %.2f s (%.0f MB of JSON); with the SQLite writes (the sync) "
    .. "%.2f s", BIG,
    each.seconds, feed.seconds, feed.calls, json.seconds, json.json_bytes / 1e6, sync.seconds)
  say("  per order: decoding and listing %.0f us, the feed's own work %.0f us, the JSON %.0f us, "
    .. "what the SQLite writes add (on the writer's thread, beyond what overlaps the listing) "
    .. "%.0f us", each.seconds / BIG * 1e6, (feed.seconds - each.seconds) / BIG * 1e6,
    (json.seconds - feed.seconds) / BIG * 1e6, (sync.seconds - json.seconds) / BIG * 1e6)

  -- The floor: the same rows written again by C alone, as the sync writes them.
  local floor = floor_of(sync_db)
  local fr = floor.seconds / each.seconds
  say("  SQLite alone (bench/sqlite_floor.c: the rows this sync wrote, %d orders and %d lines, written again "
    .. "from C, a transaction per 1,000 orders, the mirror's schema and pragmas): %.2f s, %.2fx the plain "
    .. "each; the sync is %.2fx that floor; a sync takes at least as long as its writes, whatever runs "
    .. "beside them, "
    .. "so the 1.3x target is %s this floor", floor.orders, floor.lines, floor.seconds, fr,
    sync.seconds / floor.seconds, fr > 1.3 and "below" or "above")

  -- Peak memory: the 100,000-order sync against a 10,000-order one.
  local small_db = fresh_db()
  local s10 = child(small, "sync " .. q(small_db))
  remove_db(small_db)
  local m = sync.vmhwm_kb / s10.vmhwm_kb
  say("peak RSS, first sync of %d vs %d orders: %.1f MB / %.1f MB = %.2f   target <= 1.2   %s",
    BIG, SMALL, mb(sync.vmhwm_kb), mb(s10.vmhwm_kb), m, m <= 1.2 and "MET" or "MISSED")

  -- An incremental sync after 100 changes, into the 100,000-order mirror.
  local unleashed = require "unleashed"
  local client = unleashed.new{ api_id = API_ID, api_key = API_KEY, base_url = big.url }
  local page = client.purchase_orders:page(1, { orderStatus = "Parked,Placed", pageSize = CHANGED })
  for i, po in ipairs(page.items) do po:update{ Comments = "bench change " .. i } end
  client:close()
  local inc = child(big, "sync " .. q(sync_db))
  remove_db(sync_db)
  local inc_ok = inc.api_calls == 1 and inc.seconds < 1 and inc.orders == CHANGED
  say("incremental sync, %d changed orders, page size 1000: %d call%s, %.3f s, %d orders written   "
    .. "target 1 call, < 1 s   %s", CHANGED, inc.api_calls, inc.api_calls == 1 and "" or "s", inc.seconds,
    inc.orders, inc_ok and "MET" or "MISSED")

  -- The binding against LuaSQL, when it is installed.
  local choice = io.popen("lua5.4 " .. q(ROOT .. "/bench/sqlite_choice.lua") .. " 2>&1")
  say("%s", (choice:read("a"):gsub("%s+$", "")))
  choice:close()
end

local ok, err = pcall(main)
stop_all()
if not ok then
  io.stderr:write("bench/sync.lua: ", tostring(err), "\n")
  os.exit(1)
end
