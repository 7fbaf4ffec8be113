-- `unleashed po sync` killed with SIGKILL at random points, ten times, while
-- the sandbox's ticker keeps changing orders (lines, receipts, deletions);
-- then, the account still, one more run. The mirror must then equal the
-- server exactly, compared through SQL and through the API: every order and
-- line, no duplicates, none missing, deletions applied.
local sandbox = require "support.sandbox"
local unleashed = require "unleashed"
local sqlite = require "unleashed.sqlite"
local core = require "unleashed.core"
local files = require "support.files"
local socket = require "socket"

local ROOT = os.getenv("UNLEASHED_ROOT") or "."
local quote = sandbox.quote
local ALL = "Parked,Placed,Unapproved,Costed,Receipted,Complete,Deleted"

local function sync_command(sb, db)
  return table.concat({ "env", "UNLEASHED_API_ID=" .. quote(sb.api_id),
    "UNLEASHED_API_KEY=" .. quote(sb.api_key), "UNLEASHED_BASE_URL=" .. quote(sb.base_url), "lua5.4",
    quote(ROOT .. "/bin/unleashed"), "po", "sync", "--db", quote(db), "--page-size", "25" }, " ")
end

-- Starts the sync; returns its pid and the pipe its output comes through.
local function start_sync(sb, db, log)
  local line = "echo $$; exec " .. sync_command(sb, db) .. " >>" .. quote(log) .. " 2>&1"
  local p = assert(io.popen("exec sh -c " .. quote(line), "r"))
  return tonumber(p:read("l")), p
end

local function alive(pid)
  return os.execute("kill -0 " .. pid .. " 2>/dev/null") == true
end

local function rows(db, sql, ...)
  local h <close> = sqlite.open(db, { readonly = true })
  local st <close> = h:prepare(sql)
  local out = {}
  for r in st:rows(...) do out[#out + 1] = r end
  return out
end

local function near(a, b) return a == b or (a and b and math.abs(a - b) < 1e-6) end

describe("po sync killed at random points", function()
  it("leaves a mirror one more run makes equal to the server, through SQL and through the API", function()
    local sb <close> = sandbox.start{ seed = 1000, admin = true, latency_ms = 10 }
    local client <close> = unleashed.new{ api_id = sb.api_id, api_key = sb.api_key, base_url = sb.base_url }
    local dir = files.tmpdir()
    local db, log = dir .. "/crash.sqlite", dir .. "/sync.log"
    local t0 = core.now_ms()
    local seed = os.time()
    math.randomseed(seed)
    sb:raw("POST", "/_sandbox/touch", nil, '{"Rate": 30}')
    local mid_run = 0
    for _ = 1, 10 do
      local pid, pipe = start_sync(sb, db, log)
      socket.sleep(0.05 + math.random() * 0.55)
      if alive(pid) then
        mid_run = mid_run + 1
        os.execute("kill -9 " .. pid)
      end
      pipe:close()
    end
    sb:raw("POST", "/_sandbox/touch", nil, '{"Rate": 0}')
    local ok, how, code = os.execute(sync_command(sb, db) .. " >>" .. quote(log) .. " 2>&1")
    local output = files.read_all(log)
    assert(ok and how == "exit" and code == 0, "the last run failed:\n" .. output)
    assert.is_true(mid_run >= 3, ("only %d of 10 runs were still going when killed (seed %d)")
      :format(mid_run, seed))
    local last = output:match("([^\n]*)\n$")
    assert.matches("orders? written", last)
    assert.is_nil(output:find("account changed while it was read\n$"), "the last run was not complete")

    -- Through the API: every order, with its lines, as the mirror holds it.
    local api = { orders = 0, lines = 0, by_status = {} }
    local deleted_by_ticker = 0
    for po in client.purchase_orders:each({ orderStatus = ALL }, { page_size = 1000 }) do
      api.orders = api.orders + 1
      api.by_status[po.OrderStatus] = (api.by_status[po.OrderStatus] or 0) + 1
      if po.OrderStatus == "Deleted" and core.parse_date(po.LastModifiedOn) >= t0 then
        deleted_by_ticker = deleted_by_ticker + 1
      end
      local o = rows(db, "SELECT status, last_modified_on, order_number, total FROM orders WHERE guid = ?",
                     po.Guid)
      assert.equal(1, #o, "mirror rows for " .. po.OrderNumber)
      assert.same({ po.OrderStatus, po.LastModifiedOn, po.OrderNumber }, { o[1][1], o[1][2], o[1][3] })
      assert.is_true(near(po.Total, o[1][4]))
      local l = rows(db, "SELECT guid, order_quantity, line_total FROM lines WHERE order_guid = ? ORDER BY "
                         .. "line_number", po.Guid)
      assert.equal(#po.PurchaseOrderLines, #l, "lines of " .. po.OrderNumber)
      for i, pl in ipairs(po.PurchaseOrderLines) do
        assert.equal(pl.Guid, l[i][1])
        assert.is_true(near(pl.OrderQuantity, l[i][2]) and near(pl.LineTotal, l[i][3]))
      end
      api.lines = api.lines + #po.PurchaseOrderLines
    end
    assert.is_true(deleted_by_ticker > 0, "the ticker deleted no order while the syncs ran")

    -- Through SQL: counts, no duplicates, no orphans, statuses as the API has them.
    local counts = rows(db, [[SELECT (SELECT count(*) FROM orders), (SELECT count(DISTINCT guid) FROM orders),
      (SELECT count(*) FROM lines), (SELECT count(*) FROM (SELECT DISTINCT order_guid, guid FROM lines)),
      (SELECT count(*) FROM lines WHERE order_guid NOT IN (SELECT guid FROM orders))]])[1]
    assert.same({ api.orders, api.orders, api.lines, api.lines, 0 }, counts)
    local by_status = {}
    for _, r in ipairs(rows(db, "SELECT status, count(*) FROM orders GROUP BY status")) do
      by_status[r[1]] = r[2]
    end
    assert.same(api.by_status, by_status)
    assert.equal("ok", rows(db, "PRAGMA integrity_check")[1][1])
    sb:stop()
    os.execute("rm -rf " .. quote(dir))
  end)
end)
