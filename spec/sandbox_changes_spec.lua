-- What a change feed needs of the sandbox: LastModifiedOn stamped with the
-- time of every kind of change, to the millisecond; modifiedSince compared
-- to the millisecond; orderStatus taking a comma-separated list (Deleted
-- included); and the change ticker (--touch-rate, POST /_sandbox/touch).
local sandbox = require "support.sandbox"
local unleashed = require "unleashed"
local core = require "unleashed.core"
local cjson = require "cjson"
local socket = require "socket"

local ALL = "Parked,Placed,Unapproved,Costed,Receipted,Complete,Deleted"

local function ms(iso) return assert(core.parse_date(iso), "not a date: " .. tostring(iso)) end

local function iso_ms(n) return (core.iso_date(n):gsub("Z$", "")) end

describe("sandbox: LastModifiedOn and modifiedSince", function()
  local sb, client
  setup(function()
    sb = sandbox.start{ seed = 40 }
    client = unleashed.new{ api_id = sb.api_id, api_key = sb.api_key, base_url = sb.base_url }
  end)
  teardown(function()
    client:close()
    sb:stop()
  end)

  local function line(n)
    return { Product = { ProductCode = "BOLT M8 #10" }, OrderQuantity = n, UnitPrice = 2 }
  end

  -- Runs change(); afterwards po.LastModifiedOn must fall inside the call to
  -- the millisecond, be later than `last`, and read back the same.
  local function stamped(change, last)
    local before = core.now_ms()
    local po = change()
    local after = core.now_ms()
    local lmo = ms(po.LastModifiedOn)
    -- (a second change of the order within one millisecond is stamped a millisecond later)
    assert.is_true(lmo >= before and (lmo <= after or lmo == (last or 0) + 1),
      ("LastModifiedOn %d is outside the call, %d..%d"):format(lmo, before, after))
    if last then assert.is_true(lmo > last, "LastModifiedOn did not move forward") end
    assert.equal(po.LastModifiedOn, client.purchase_orders:get(po.Guid).LastModifiedOn)
    return lmo, po
  end

  it("stamps create, update, line add, change and delete, receipt, complete and delete with their time",
     function()
    local lmo, po = stamped(function()
      return client.purchase_orders:create{ Supplier = { SupplierCode = "ACME" }, OrderStatus = "Parked",
                                            PurchaseOrderLines = { line(2), line(3) } }
    end)
    assert.equal(po.CreatedOn, po.LastModifiedOn)
    lmo = stamped(function() return po:update{ Comments = "changed" } end, lmo)
    local added
    lmo = stamped(function() added = po:add_line(line(4)); return po end, lmo)
    lmo = stamped(function() po:update_line(added.Guid, { OrderQuantity = 5 }); return po end, lmo)
    lmo = stamped(function() return po:delete_line(added.Guid) end, lmo)
    lmo = stamped(function() return po:update{ OrderStatus = "Placed" } end, lmo)
    lmo = stamped(function() return po:receipt() end, lmo)
    stamped(function() return po:complete() end, lmo)
    local other = client.purchase_orders:create{ Supplier = { SupplierCode = "ACME" }, OrderStatus = "Parked",
                                                 PurchaseOrderLines = { line(1) } }
    local deleted_at = stamped(function() return other:delete() end, ms(other.LastModifiedOn))
    assert.equal("Deleted", other.OrderStatus)
    -- and the Deleted order lists under its status, with that stamp
    local found = client.purchase_orders:list{ orderStatus = "Deleted", modifiedSince = iso_ms(deleted_at) }
    assert.equal(1, #found)
    assert.equal(other.Guid, found[1].Guid)
  end)

  it("compares modifiedSince to the millisecond, the stamp itself included", function()
    local po = client.purchase_orders:create{ Supplier = { SupplierCode = "ACME" }, OrderStatus = "Parked",
                                              PurchaseOrderLines = { line(1) } }
    local lmo = ms(po.LastModifiedOn)
    local function guids(since)
      local out = {}
      for o in client.purchase_orders:each{ modifiedSince = since, orderStatus = ALL } do
        out[o.Guid] = true
      end
      return out
    end
    assert.is_true(guids(iso_ms(lmo))[po.Guid])
    assert.is_true(guids(iso_ms(lmo) .. "Z")[po.Guid])
    assert.is_nil(guids(iso_ms(lmo + 1))[po.Guid])
    assert.is_true(guids(iso_ms(lmo - 1))[po.Guid])
  end)

  it("takes orderStatus as a comma-separated list, Deleted included", function()
    local counts = {}
    for _, s in ipairs{ "Parked", "Placed", "Costed", "Receipted", "Complete", "Deleted" } do
      counts[s] = #client.purchase_orders:list{ orderStatus = s }
    end
    assert.is_true(counts.Deleted > 0 and counts.Parked > 0)
    local both = client.purchase_orders:list{ orderStatus = "Parked,Deleted" }
    assert.equal(counts.Parked + counts.Deleted, #both)
    for _, o in ipairs(both) do assert.is_truthy(o.OrderStatus == "Parked" or o.OrderStatus == "Deleted") end
    local every = client.purchase_orders:list{ orderStatus = ALL }
    local total = 0
    for _, n in pairs(counts) do total = total + n end
    assert.equal(total, #every)
    -- without the filter, every order but the Deleted ones
    assert.equal(total - counts.Deleted, #client.purchase_orders:list())
  end)
end)

describe("sandbox: two changes of one order in one millisecond", function()
  it("get two stamps, the second a millisecond later; other orders keep the clock's", function()
    local app_mod = require "unleashed.sandbox"
    local now = 1767225600000
    local app = app_mod.new{ seed = 20, credentials = { id = "k" }, clock = function() return now end }
    local function call(method, path, body, q)
      local resp = app:handle{ method = method, path = path, query = q or "",
        headers = { ["api-auth-id"] = "id", ["api-auth-signature"] = core.sign(q or "", "k"),
                    ["content-type"] = "application/json" },
        body = body and cjson.encode(body) or "" }
      return resp.status, cjson.decode(resp.body)
    end
    local _, page = call("GET", "/PurchaseOrders", nil, "orderStatus=Parked")
    local a, b = page.Items[1], page.Items[2]
    local function put(o, text)
      local status, po = call("PUT", "/PurchaseOrders/" .. o.Guid, { OrderStatus = o.OrderStatus,
        Supplier = { Guid = o.Supplier.Guid }, Comments = text })
      assert.equal(200, status)
      return ms(po.LastModifiedOn)
    end
    assert.equal(now, put(a, "one"))
    assert.equal(now + 1, put(a, "two"))
    assert.equal(now + 2, put(a, "three"))
    assert.equal(now, put(b, "other order"))
    now = now + 10
    assert.equal(now, put(a, "later"))
  end)
end)

describe("sandbox: the change ticker", function()
  it("changes orders between requests at --touch-rate, through the API's rules", function()
    local sb <close> = sandbox.start{ seed = 200, admin = true, args = { "--touch-rate", "200" } }
    local client <close> = unleashed.new{ api_id = sb.api_id, api_key = sb.api_key, base_url = sb.base_url }
    local t0 = core.now_ms()
    local before = {}
    for o in client.purchase_orders:each{ orderStatus = ALL } do before[o.Guid] = o.LastModifiedOn end
    socket.sleep(0.5)
    local changed = 0
    for o in client.purchase_orders:each{ orderStatus = ALL, modifiedSince = iso_ms(t0) } do
      changed = changed + 1
      assert.are_not.equal(before[o.Guid], o.LastModifiedOn)
    end
    local status, _, body = sb:raw("GET", "/_sandbox/touch")
    assert.equal(200, status)
    local t = cjson.decode(body)
    assert.equal(200, t.Rate)
    assert.is_true(t.Touched >= 50, "touched " .. t.Touched)
    assert.is_true(t.Failed <= t.Touched // 10, ("%d of %d changes refused"):format(t.Failed, t.Touched))
    assert.is_true(changed > 20, "only " .. changed .. " orders changed")
    sb:stop()
  end)

  it("sets its rate through POST /_sandbox/touch, 0 stopping it", function()
    local sb <close> = sandbox.start{ seed = 100, admin = true }
    local function touch(method, body)
      local status, _, text = sb:raw(method, "/_sandbox/touch", nil, body)
      return status, text and #text > 0 and cjson.decode(text) or nil
    end
    local status, t = touch("GET")
    assert.equal(200, status)
    assert.same({ Rate = 0, Touched = 0, Failed = 0 }, t)
    status, t = touch("POST", '{"Rate": 100}')
    assert.equal(200, status)
    assert.equal(100, t.Rate)
    socket.sleep(0.3)
    sb:signed("GET", "/PurchaseOrders", { { "pageSize", "1" } })
    t = select(2, touch("POST", '{"Rate": 0}'))
    assert.equal(0, t.Rate)
    local touched = t.Touched
    assert.is_true(touched > 0)
    socket.sleep(0.2)
    sb:signed("GET", "/PurchaseOrders", { { "pageSize", "1" } })
    assert.equal(touched, select(2, touch("GET")).Touched)
    assert.equal(400, (touch("POST", '{"Rate": -1}')))
    assert.equal(400, (touch("POST", "not json")))
    assert.equal(405, (touch("DELETE")))
    sb:stop()
  end)

  it("refuses a --touch-rate that is not a rate", function()
    for _, v in ipairs{ "-1", "x", "10001" } do
      local code, _, err = sandbox.run{ "--touch-rate", v }
      assert.equal(2, code)
      assert.matches("%-%-touch%-rate", err)
    end
  end)
end)
