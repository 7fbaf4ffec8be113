-- Purchase orders against the sandbox: every method round-trips, the object
-- holds what the server returned after each call, the client's arithmetic is
-- what the server checks, refused input sends nothing, events hold no secret.
local sandbox = require "support.sandbox"
local unleashed = require "unleashed"

-- A line of the product whose code needs percent-encoding.
local function bolt(qty, price, extra)
  local l = { Product = { ProductCode = "BOLT M8 #10" }, OrderQuantity = qty, UnitPrice = price }
  for k, v in pairs(extra or {}) do l[k] = v end
  return l
end

local GUID = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"

describe("purchase orders against the sandbox", function()
  local sb, client, events

  setup(function()
    sb = sandbox.start{ seed = 50, admin = true }
    events = {}
    client = unleashed.new{ api_id = sb.api_id, api_key = sb.api_key, base_url = sb.base_url,
                            client_type = "spec/LuaLayer",
                            on_request = function(ev) events[#events + 1] = ev end }
  end)

  teardown(function()
    if client then client:close() end
    if sb then sb:stop() end
  end)

  local function new_order(extra)
    local t = { Supplier = { SupplierCode = "ACME" }, OrderStatus = "Parked",
                PurchaseOrderLines = { bolt(5, 2.5), bolt(3.33333, 1.005, { DiscountRate = 0.125 }) } }
    for k, v in pairs(extra or {}) do t[k] = v end
    return client.purchase_orders:create(t)
  end

  it("creates an order under a GUID it chose, with the totals the server computes", function()
    local po = new_order{ Comments = "first", OrderDate = "2026-03-04" }
    assert.matches(GUID, po.Guid)
    assert.equal("Parked", po.OrderStatus)
    assert.equal("first", po.Comments)
    assert.equal("2026-03-04T00:00:00.000Z", po.OrderDate)
    assert.matches("^PO%-%d+$", po.OrderNumber)
    assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ$", po.CreatedOn)
    assert.equal(2, #po.PurchaseOrderLines)
    local l1, l2 = po.PurchaseOrderLines[1], po.PurchaseOrderLines[2]
    assert.equal(1, l1.LineNumber)
    assert.equal("integer", math.type(l1.LineNumber))
    assert.equal(2, l2.LineNumber)
    assert.equal(12.5, l1.LineTotal)
    assert.equal(unleashed.round(3.3333 * 1.005 * 0.875, 2), l2.LineTotal)
    assert.equal(unleashed.round(l1.LineTotal + l2.LineTotal, 2), po.SubTotal)
    assert.equal(unleashed.round(po.SubTotal + po.TaxTotal, 2), po.Total)
    assert.equal("unleashed.PurchaseOrder(" .. po.OrderNumber .. ", Parked, " .. po.Guid .. ")", tostring(po))
  end)

  it("makes a repeated create under the same Guid return the one order; a different order conflicts",
     function()
    local g = unleashed.guid()
    local t = { Guid = g, Supplier = { SupplierCode = "ACME" }, OrderStatus = "Parked",
                PurchaseOrderLines = { bolt(2, 4) } }
    local first = client.purchase_orders:create(t)
    local before = sb:stats().Calls["POST /PurchaseOrders/" .. g]
    local second = client.purchase_orders:create(t)
    assert.equal(first.OrderNumber, second.OrderNumber)
    assert.equal(before + 1, sb:stats().Calls["POST /PurchaseOrders/" .. g])
    t.PurchaseOrderLines[1].OrderQuantity = 3
    local ok, e = pcall(client.purchase_orders.create, client.purchase_orders, t)
    assert.is_false(ok)
    assert.equal("conflict", e.kind)
    assert.equal("Guid", e.details[1].field)
    assert.equal(1, #client.purchase_orders:list{ orderNumber = first.OrderNumber })
  end)

  it("looks reference data up once per client, again after clear_cache", function()
    local function lookups()
      local c = sb:stats().Calls
      return (c["GET /Suppliers"] or 0) + (c["GET /Products"] or 0) + (c["GET /Taxes"] or 0)
    end
    new_order()
    local before = lookups()
    new_order()
    assert.equal(before, lookups())
    client:clear_cache()
    new_order()
    assert.equal(before + 2, lookups())   -- ACME and BOLT M8 #10 again; no code to look up
  end)

  it("get and refresh read the order back", function()
    local po = new_order()
    local again = client.purchase_orders:get(po.Guid)
    assert.equal(po.Guid, again.Guid)
    assert.equal(po.Total, again.Total)
    assert.is_function(again.refresh)
    local sbatch = client.purchase_orders:get(po.Guid, { serialBatch = true })
    assert.is_table(sbatch.PurchaseOrderLines[1].PendingBatchNumbers)
    po.Comments = "changed locally"
    assert.equal(po, po:refresh())
    assert.is_nil(po.Comments)
  end)

  it("update replaces the object's fields with the server's answer", function()
    local po = new_order()
    local before = po.LastModifiedOn
    po:update{ Comments = "updated", DeliveryCity = "Wellington" }
    assert.equal("updated", po.Comments)
    assert.equal("Wellington", po.DeliveryCity)
    assert.is_true(po.LastModifiedOn >= before)
    po:update{ Comments = unleashed.null }
    assert.is_nil(po.Comments)
    assert.equal("Wellington", po.DeliveryCity)
  end)

  it("add_line, update_line and delete_line keep lines and totals as the server does", function()
    local po = new_order()
    local line = po:add_line{ Product = { ProductCode = "BOLT M8 #10" }, OrderQuantity = 2, UnitPrice = 9.99 }
    assert.matches(GUID, line.Guid)
    assert.equal(3, line.LineNumber)
    assert.equal(19.98, line.LineTotal)
    assert.equal(3, #po.PurchaseOrderLines)
    local updated = po:update_line(line.Guid, { OrderQuantity = 4, Comments = "four" })
    assert.equal(39.96, updated.LineTotal)
    assert.equal("four", updated.Comments)
    assert.equal(unleashed.round(39.96 * updated.LineTaxRate, 2), updated.LineTax)
    local sum = 0
    for _, l in ipairs(po.PurchaseOrderLines) do sum = sum + l.LineTotal end
    assert.equal(unleashed.round(sum, 2), po.SubTotal)
    po:delete_line(line.Guid)
    assert.equal(2, #po.PurchaseOrderLines)
    for _, l in ipairs(po.PurchaseOrderLines) do assert.not_equal(line.Guid, l.Guid) end
  end)

  it("walks an order through Placed, receipt, costs and complete", function()
    local po = new_order()
    po:update{ OrderStatus = "Placed" }
    assert.equal("Placed", po.OrderStatus)
    po:receipt()
    assert.equal("Receipted", po.OrderStatus)
    assert.matches("Z$", po.ReceivedDate)
    local costs = po:costs()
    assert.is_table(costs)
    assert.equal(0, #costs)
    po:complete()
    assert.equal("Complete", po.OrderStatus)
    assert.matches("Z$", po.CompletedDate)
    local ok, e = pcall(po.update, po, { Comments = "too late" })
    assert.is_false(ok)
    assert.equal("validation", e.kind)
    assert.equal(400, e.status)
    assert.matches("Complete", tostring(e))
  end)

  it("deletes an order that is not receipted", function()
    local po = new_order()
    po:delete()
    assert.equal("Deleted", po.OrderStatus)
    assert.equal("Deleted", client.purchase_orders:get(po.Guid).OrderStatus)
  end)

  it("follows the tax hierarchy: product, order, supplier, default", function()
    -- Products without a purchase tax of their own, and one with its own rate.
    local plain, taxed
    for p in client:each("Products") do
      if not p.IsBatchTracked and not p.IsSerialized then
        if p.XeroTaxCode == nil and p.XeroTaxRate == nil and p.TaxablePurchase ~= false then
          plain = plain or p
        end
        if p.XeroTaxRate and p.XeroTaxRate ~= 0.15 and p.XeroTaxRate > 0 then taxed = taxed or p end
      end
    end
    assert.is_table(plain)
    assert.is_table(taxed)
    local function line() return { Product = { ProductCode = plain.ProductCode }, OrderQuantity = 7,
                                    UnitPrice = 13.37 } end
    local cases = {
      { { Supplier = { SupplierCode = "ACME" } }, 0.15 },                 -- ACME's TaxRate
      { { Supplier = { SupplierCode = "50% OFF" } }, 0.09 },              -- that supplier's TaxRate
      { { Supplier = { SupplierCode = "SMITH & SONS" } }, 0 },            -- a supplier not Taxable
      { { Supplier = { SupplierCode = "ACME" }, TaxCode = "IMPORT" }, 0.125 },
      { { Supplier = { SupplierCode = "ACME" }, Tax = { TaxCode = "NoTax" } }, 0 },
      { { Supplier = { SupplierCode = "ACME" }, TaxRate = 0.09 }, 0.09 },
      -- G.S.T. is listed twice: the obsolete 12.5% one does not count.
      { { Supplier = { SupplierCode = "SMITH & SONS" }, TaxCode = "G.S.T." }, 0.15 },
    }
    for _, c in ipairs(cases) do
      local t = { OrderStatus = "Parked", Supplier = c[1].Supplier, TaxCode = c[1].TaxCode, Tax = c[1].Tax,
                  TaxRate = c[1].TaxRate, PurchaseOrderLines = { line() } }
      local po = client.purchase_orders:create(t)
      assert.equal(c[2], po.PurchaseOrderLines[1].LineTaxRate)
      assert.equal(unleashed.round(po.PurchaseOrderLines[1].LineTotal * c[2], 2), po.TaxTotal)
    end
    -- The product's own rate beats the order's and the supplier's.
    local po = client.purchase_orders:create{ OrderStatus = "Parked", Supplier = { SupplierCode = "50% OFF" },
      TaxCode = "NoTax", PurchaseOrderLines = { { Product = { Guid = taxed.Guid }, OrderQuantity = 3,
          UnitPrice = 10.01 } } }
    assert.equal(taxed.XeroTaxRate, po.PurchaseOrderLines[1].LineTaxRate)
  end)

  it("lists with filters, a page at a time or all at once", function()
    local n = 0
    for po in client.purchase_orders:each({ supplierCode = "ACME", orderStatus = "Parked,Placed" },
                                          { page_size = 3 }) do
      n = n + 1
      assert.matches("^ACME", po.Supplier.SupplierCode)
      assert.is_true(po.OrderStatus == "Parked" or po.OrderStatus == "Placed")
      assert.is_function(po.update)
    end
    assert.is_true(n > 3)
    local page = client.purchase_orders:page(2, { pageSize = 3, supplierCode = "ACME",
        orderStatus = "Parked,Placed" })
    assert.equal(2, page.pagination.PageNumber)
    assert.equal(3, page.pagination.PageSize)
    assert.equal(n, page.pagination.NumberOfItems)
    assert.equal(3, #page.items)
    assert.is_function(page.items[1].refresh)
    local all = client.purchase_orders:list({ modifiedSince = os.time() - 3600 })
    assert.is_true(#all >= 1)   -- the orders this spec created
    for _, po in ipairs(all) do assert.is_true(po.LastModifiedOn >= os.date("!%Y-%m-%dT%H",
        os.time() - 7200)) end
  end)

  it("requests any endpoint, signed, and lists any paged endpoint", function()
    local doc = client:request("GET", "/Suppliers", { query = { supplierCode = "SMITH & SONS",
        pageSize = 5 } })
    assert.equal(5, doc.Pagination.PageSize)
    assert.equal("integer", math.type(doc.Pagination.PageSize))
    assert.equal(1, #doc.Items)
    assert.equal("SMITH & SONS", doc.Items[1].SupplierCode)
    local codes = {}
    for s in client:each("Suppliers", nil, { page_size = 7 }) do codes[#codes + 1] = s.SupplierCode end
    assert.equal(client:request("GET", "/Suppliers", { query = { pageSize = 1 } }).Pagination.NumberOfItems,
                 #codes)
    assert.equal("ACME", codes[1])
    assert.equal(#codes, #client:list("Suppliers"))
  end)

  it("raises not_found for an unknown GUID, auth for a wrong key", function()
    local ok, e = pcall(client.purchase_orders.get, client.purchase_orders, unleashed.guid())
    assert.is_false(ok)
    assert.equal("not_found", e.kind)
    assert.equal(404, e.status)
    local bad = unleashed.new{ api_id = sb.api_id, api_key = "WRONG-KEY-123", base_url = sb.base_url }
    local ok2, e2 = pcall(bad.purchase_orders.list, bad.purchase_orders)
    assert.is_false(ok2)
    assert.equal("auth", e2.kind)
    assert.equal(403, e2.status)
    assert.equal(1, e2.attempts)
    assert.is_nil(tostring(e2):find("WRONG-KEY-123", 1, true))
    bad:close()
  end)

  it("surfaces every description of a server-side refusal", function()
    local ok, e = pcall(client.purchase_orders.create, client.purchase_orders,
      { OrderStatus = "Parked", Supplier = { SupplierCode = "ACME" }, Currency = { CurrencyCode = "GBP" } })
    assert.is_false(ok)
    assert.equal("validation", e.kind)
    assert.equal("Currency", e.details[1].field)
    assert.matches("supplier's currency", e.details[1].message)
    assert.matches("^unleashed: validation error %(400%) POST /PurchaseOrders/", tostring(e))
  end)

  it("refuses bad input without sending a request", function()
    local po = new_order()
    local before = sb:stats().Total
    local attempts = {
      function() return client.purchase_orders:create{ Supplier = {}, OrderStatus = "Placed" } end,
      function()
        return client.purchase_orders:create{ Supplier = { SupplierCode = "ACME" }, OrderStatus = "Parked",
                                              PurchaseOrderLines = { { OrderQuantity = 0 / 0 } } }
      end,
      function() return client.purchase_orders:each{ suplierCode = "ACME" } end,
      function() return client.purchase_orders:list(nil, { concurrency = 99 }) end,
      function() return client.purchase_orders:page(0) end,
      function() return client.purchase_orders:get("PO-00000001-IS-TOO-LONG") end,
      function() return po:update{ OrderStatus = "Receipted" } end,
      function() return po:add_line{ OrderQuantity = -1, Product = { ProductCode = "X" }, UnitPrice = 1 } end,
      function() return po:update_line("x", {}) end,
      function() return client:request("GET", "/Suppliers?x=1") end,
      function() return client:each("Suppliers", { x = {} }) end,
    }
    for i, f in ipairs(attempts) do
      local ok, e = pcall(f)
      assert.is_false(ok, "attempt " .. i)
      assert.equal("validation", e.kind, tostring(e))
    end
    assert.equal(before, sb:stats().Total)
  end)

  it("reports every attempt to on_request, never with the key or a signature", function()
    events = {}
    sb:reset()
    new_order()
    client.purchase_orders:list(nil, { page_size = 10 })
    local stats = sb:stats()
    assert.equal(stats.Total, #events)
    local allowed = { method = true, path = true, status = true, attempt = true, ms = true, kind = true,
                      wait = true }
    local signature = unleashed.sign("", sb.api_key)
    for _, ev in ipairs(events) do
      assert.is_string(ev.method)
      assert.matches("^/", ev.path)
      assert.is_number(ev.status)
      assert.equal(1, ev.attempt)
      assert.is_number(ev.ms)
      for k, v in pairs(ev) do
        assert.is_true(allowed[k], "unexpected event field " .. tostring(k))
        assert.is_nil(tostring(v):find(sb.api_key, 1, true))
        assert.is_nil(tostring(v):find(signature, 1, true))
      end
    end
    local posts = 0
    for _, ev in ipairs(events) do if ev.method == "POST" then posts = posts + 1 end end
    assert.equal(1, posts)
  end)
end)

describe("two companies in one Lua state", function()
  local a, b, ca, cb

  setup(function()
    a = sandbox.start{ seed = 20, admin = true }
    b = sandbox.start{ seed = 30, admin = true }
    ca = unleashed.new{ api_id = a.api_id, api_key = a.api_key, base_url = a.base_url, page_size = 4 }
    cb = unleashed.new{ api_id = b.api_id, api_key = b.api_key, base_url = b.base_url, page_size = 5 }
  end)

  teardown(function()
    if ca then ca:close() end
    if cb then cb:close() end
    if a then a:stop() end
    if b then b:stop() end
  end)

  local function guids(sb)
    local set, n, page = {}, 0, 1
    repeat
      local doc = sb:json("GET", "/PurchaseOrders/Page/" .. page, { { "pageSize", "1000" } })
      for _, po in ipairs(doc.Items) do set[po.Guid] = true; n = n + 1 end
      page = page + 1
    until page > doc.Pagination.NumberOfPages
    return set, n
  end

  it("lists each company's own orders, with both listings open at once", function()
    local set_a, n_a = guids(a)
    local set_b, n_b = guids(b)
    local it_a, sa, ia, close_a = ca.purchase_orders:each()
    local it_b, sb_, ib, close_b = cb.purchase_orders:each()
    local got_a, got_b = 0, 0
    local done_a, done_b = false, false
    repeat
      if not done_a then
        local po = it_a(sa, ia)
        if po then assert.is_true(set_a[po.Guid]); got_a = got_a + 1 else done_a = true end
      end
      if not done_b then
        local po = it_b(sb_, ib)
        if po then assert.is_true(set_b[po.Guid]); got_b = got_b + 1 else done_b = true end
      end
    until done_a and done_b
    getmetatable(close_a).__close(close_a)
    getmetatable(close_b).__close(close_b)
    assert.equal(n_a, got_a)
    assert.equal(n_b, got_b)
  end)

  it("creates in one company only, each looking up its own reference data", function()
    local po = ca.purchase_orders:create{ Supplier = { SupplierCode = "SMITH & SONS" },
                                          OrderStatus = "Parked", PurchaseOrderLines = { bolt(1, 100) } }
    local ok, e = pcall(cb.purchase_orders.get, cb.purchase_orders, po.Guid)
    assert.is_false(ok)
    assert.equal("not_found", e.kind)
    assert.equal(po.Total, ca.purchase_orders:get(po.Guid).Total)
    -- each client resolved the supplier in its own company (the Guids differ by seed)
    local sa = ca:request("GET", "/Suppliers/" .. po.Supplier.Guid)
    assert.equal("SMITH & SONS", sa.SupplierCode)
    local okb, eb = pcall(cb.request, cb, "GET", "/Suppliers/" .. po.Supplier.Guid)
    assert.is_false(okb)
    assert.equal("not_found", eb.kind)
    assert.not_equal(ca._cache, cb._cache)
  end)

  it("a client's key does not open the other company", function()
    local cross = unleashed.new{ api_id = a.api_id, api_key = a.api_key, base_url = b.base_url }
    local ok, e = pcall(cross.request, cross, "GET", "/PurchaseOrders")
    assert.is_false(ok)
    assert.equal("auth", e.kind)
    cross:close()
  end)
end)
