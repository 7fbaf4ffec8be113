-- Lost responses: a create whose response is lost leaves exactly one order,
-- a receipt whose response is lost is not sent again; the quota and
-- throttling answers become quota and rate_limited errors.
local sandbox = require "support.sandbox"
local unleashed = require "unleashed"

local function bolt(qty, price)
  return { Product = { ProductCode = "BOLT M8 #10" }, OrderQuantity = qty, UnitPrice = price }
end

local function fast_client(sb, events)
  return unleashed.new{ api_id = sb.api_id, api_key = sb.api_key, base_url = sb.base_url,
                        max_retries = 12, retry_base = 0.001, retry_cap = 0.005,
                        on_request = events and function(ev) events[#events + 1] = ev end }
end

describe("with half the responses lost", function()
  local sb, client, events

  setup(function()
    sb = sandbox.start{ seed = 5, admin = true, drop_rate = 0.5 }
    events = {}
    client = fast_client(sb, events)
  end)

  teardown(function()
    if client then client:close() end
    if sb then sb:stop() end
  end)

  local function count_orders()
    return client.purchase_orders:page(1, { pageSize = 1,
        orderStatus = "Placed,Parked" }).pagination.NumberOfItems
  end

  local function first_attempt_lost(method, path)
    for _, ev in ipairs(events) do
      if ev.method == method and ev.path == path and ev.attempt == 1 then return ev.kind ~= nil end
    end
    return false
  end

  it("a create whose first response is lost leaves exactly one order", function()
    local before = count_orders()
    local created, lost = {}, 0
    for i = 1, 12 do
      events = {}
      client.on_request = function(ev) events[#events + 1] = ev end
      local po = client.purchase_orders:create{ Supplier = { SupplierCode = "ACME" }, OrderStatus = "Placed",
        PurchaseOrderLines = { bolt(i, 2.5) } }
      created[#created + 1] = { po = po, qty = i }
      if first_attempt_lost("POST", "/PurchaseOrders/" .. po.Guid) then lost = lost + 1 end
      if lost >= 3 then break end
    end
    assert.is_true(lost >= 1, "no create lost its first response")
    assert.equal(before + #created, count_orders())
    for _, c in ipairs(created) do
      local got = client.purchase_orders:get(c.po.Guid)
      assert.equal(c.po.OrderNumber, got.OrderNumber)
      assert.equal(1, #got.PurchaseOrderLines)
      assert.equal(c.qty, got.PurchaseOrderLines[1].OrderQuantity)
      assert.equal(unleashed.round(c.qty * 2.5, 2), got.SubTotal)
      local matches = 0
      for po in client.purchase_orders:each({ orderNumber = c.po.OrderNumber }) do
        if po.Guid == c.po.Guid then matches = matches + 1 end
      end
      assert.equal(1, matches)
    end
  end)

  it("a receipt whose response is lost is checked, not sent again", function()
    local lost = 0
    for _ = 1, 12 do
      local po = client.purchase_orders:create{ Supplier = { SupplierCode = "ACME" }, OrderStatus = "Placed",
        PurchaseOrderLines = { bolt(1, 1) } }
      events = {}
      client.on_request = function(ev) events[#events + 1] = ev end
      sb:reset()
      po:receipt()
      assert.equal("Receipted", po.OrderStatus)
      local path = "/PurchaseOrders/" .. po.Guid .. "/Receipt"
      assert.equal(1, sb:stats().Calls["POST " .. path])
      if first_attempt_lost("POST", path) then lost = lost + 1 end
      if lost >= 2 then break end
    end
    assert.is_true(lost >= 1, "no receipt lost its response")
  end)

  it("an add_line whose response is lost leaves exactly one new line", function()
    local po = client.purchase_orders:create{ Supplier = { SupplierCode = "ACME" }, OrderStatus = "Parked" }
    local lost = 0
    for i = 1, 10 do
      events = {}
      client.on_request = function(ev) events[#events + 1] = ev end
      local line = po:add_line{ Product = { ProductCode = "BOLT M8 #10" }, OrderQuantity = 1, UnitPrice = i }
      assert.equal(i, line.LineNumber)
      assert.equal(i, #po.PurchaseOrderLines)
      if first_attempt_lost("POST", "/PurchaseOrders/" .. po.Guid .. "/Lines") then lost = lost + 1 end
      if lost >= 2 then break end
    end
    assert.is_true(lost >= 1, "no add_line lost its response")
    assert.equal(#po.PurchaseOrderLines, #client.purchase_orders:get(po.Guid).PurchaseOrderLines)
  end)
end)

describe("with injected server faults", function()
  it("a page that keeps failing ends the listing with a server error naming it", function()
    local sb = sandbox.start{ seed = 100, admin = true, fail_rate = 0.3 }
    local client = fast_client(sb)
    local failed
    for _ = 1, 5 do
      local ok, e = pcall(client.purchase_orders.list, client.purchase_orders, nil,
                          { page_size = 5, retries = 0 })
      if not ok then failed = e; break end
    end
    local all = client.purchase_orders:list(nil, { page_size = 5 })   -- retried: every page arrives
    local expected = client.purchase_orders:page(1, { pageSize = 1 }).pagination.NumberOfItems
    client:close()
    sb:stop()
    assert.is_table(failed, "no listing failed")
    assert.equal("server", failed.kind)
    assert.is_true(failed.status >= 500)
    assert.equal("GET", failed.method)
    assert.matches("^/PurchaseOrders", failed.path)
    assert.matches("injected", tostring(failed))
    assert.equal(expected, #all)
  end)
end)

describe("quota and throttling", function()
  it("stops at the monthly quota without retrying", function()
    local sb = sandbox.start{ seed = 3, admin = true, quota = 2 }
    local client = fast_client(sb)
    client:request("GET", "/Taxes")
    client:request("GET", "/Taxes")
    local ok, e = pcall(client.request, client, "GET", "/Taxes")
    client:close()
    local stats = sb:stats()
    sb:stop()
    assert.is_false(ok)
    assert.equal("quota", e.kind)
    assert.equal(429, e.status)
    assert.equal(1, e.attempts)
    assert.equal(3, stats.Total)
    assert.matches("quota", tostring(e))
  end)

  it("reports throttling as rate_limited when retries are spent", function()
    local sb = sandbox.start{ seed = 3, admin = true, throttle = "1/30" }
    local client = fast_client(sb)
    client:request("GET", "/Taxes")
    local ok, e = pcall(client.request, client, "GET", "/Taxes", { retries = 0 })
    client:close()
    sb:stop()
    assert.is_false(ok)
    assert.equal("rate_limited", e.kind)
    assert.equal(429, e.status)
  end)
end)
