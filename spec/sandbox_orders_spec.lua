-- The sandbox's writes, in process: validation of POST/PUT orders and lines
-- (one test per rule, and several problems reported together) and the
-- purchase order lifecycle.
local core = require "unleashed.core"
local cjson = require "cjson"
local sandbox = require "unleashed.sandbox"

local ID, KEY = "sandbox-id", "k3y"

local function call(app, method, path, body, query_signed)
  local q = query_signed or ""
  local resp = app:handle{
    method = method, path = path, query = q:gsub(" ", "%%20"),
    headers = { ["api-auth-id"] = ID, ["api-auth-signature"] = core.sign(q, KEY),
                accept = "application/json", ["content-type"] = "application/json" },
    body = type(body) == "table" and cjson.encode(body) or body or "",
  }
  local ok, decoded = pcall(cjson.decode, resp.body)
  return resp, ok and decoded or nil
end

local function round2(x) return math.floor(x * 100 + 0.5 + 1e-9) / 100 end

local counter = 0
local function guid()
  counter = counter + 1
  return ("%08x-0000-4000-8000-%012x"):format(counter, counter)
end

local function new_app()
  local now = { 1767225600000 }
  local app = sandbox.new{ seed = 60, credentials = { [ID] = KEY }, clock = function() return now[1] end }
  return app, now
end

-- Reference data read through the API, as a client would (purchase units,
-- which no recorded product shows, from the app itself).
local function reference(app)
  local r = { products = {}, suppliers = {}, taxes = {} }
  local _, p = call(app, "GET", "/Products", nil, "pageSize=1000")
  local function untaxed(item)      -- no purchase tax of its own: the order's, supplier's or default applies
    return item.XeroTaxCode == cjson.null and item.XeroTaxRate == cjson.null and item.TaxablePurchase ~= false
  end
  for _, item in ipairs(p.Items) do
    r.products[#r.products + 1] = item
    local simple = not item.IsBatchTracked and not item.IsSerialized
    if untaxed(item) and simple then
      r.plain = r.plain or item
      if #app.ref.product_by_guid[item.Guid].purchase_units > 1 then r.multi = r.multi or item end
    end
    local own_rate = type(item.XeroTaxRate) == "number" and item.XeroTaxRate
    if simple and own_rate and own_rate > 0 and own_rate ~= 0.15 then
      r.taxed = r.taxed or item
    end
    if simple and item.TaxablePurchase == false then r.exempt = r.exempt or item end
    if simple and type(item.XeroTaxCode) == "string" and item.XeroTaxRate == cjson.null then
      r.code_only = r.code_only or item
    end
    if item.IsBatchTracked then r.batch = r.batch or item end
    if item.IsSerialized then r.serial = r.serial or item end
  end
  local _, s = call(app, "GET", "/Suppliers", nil, "pageSize=1000")
  for _, item in ipairs(s.Items) do r.suppliers[item.SupplierCode] = item end
  local _, t = call(app, "GET", "/Taxes", nil, "canApplyToExpenses=true")
  for _, item in ipairs(t.Items) do
    if not item.Obsolete then r.taxes[item.TaxCode] = r.taxes[item.TaxCode] or item end
  end
  -- ACME's own rate: what a line of a plain product for ACME is taxed at.
  r.acme_rate = r.suppliers.ACME.TaxRate
  return r
end

-- The rate the hierarchy gives a product's line before the order's tax.
local function product_rate(ref, product, fallback)
  if product.TaxablePurchase == false then return 0 end
  if type(product.XeroTaxRate) == "number" then return product.XeroTaxRate end
  if type(product.XeroTaxCode) == "string" then return ref.taxes[product.XeroTaxCode].TaxRate end
  return fallback
end

-- A line that passes: LineTotal and LineTax computed as the server does.
local function line(n, product, qty, price, rate, discount)
  local total = round2(qty * price * (1 - (discount or 0)))
  return { LineNumber = n, Product = { ProductCode = product.ProductCode }, OrderQuantity = qty,
           UnitPrice = price, DiscountRate = discount, LineTotal = total, LineTax = round2(total * rate) }
end

local function order_body(status, supplier_code, lines)
  local sub, tax = 0, 0
  for _, l in ipairs(lines) do sub, tax = sub + l.LineTotal, tax + l.LineTax end
  return { OrderStatus = status, Supplier = { SupplierCode = supplier_code }, PurchaseOrderLines = lines,
           SubTotal = round2(sub), TaxTotal = round2(tax), Total = round2(sub + tax) }
end

local function fields(body)
  local out = {}
  for _, item in ipairs(body.Items or {}) do out[item.Field] = item.Description end
  return out
end

describe("sandbox order validation", function()
  local app = new_app()
  local ref = reference(app)
  local rate = ref.acme_rate

  local function post(body)
    local g = guid()
    local resp, decoded = call(app, "POST", "/PurchaseOrders/" .. g, body)
    return resp, decoded, g
  end

  local function good(status)
    return order_body(status or "Placed", "ACME", { line(1, ref.plain, 3, 12.5, rate), line(2, ref.plain, 2,
      7.25, rate, 0.1) })
  end

  it("creates a valid order and returns it in full", function()
    local resp, o, g = post(good())
    assert.are.equal(201, resp.status, resp.body)
    assert.are.equal(g, o.Guid)
    assert.are.equal("Placed", o.OrderStatus)
    assert.are.equal(2, #o.PurchaseOrderLines)
    assert.are.equal("ACME", o.Supplier.SupplierCode)
    assert.are.equal("MAIN", o.Warehouse.WarehouseCode)
    assert.are.equal(good().Total, o.Total)
    assert.is_table(o.PurchaseOrderLines[1].PendingBatchNumbers)
    assert.is_string(o.PurchaseOrderLines[1].Product.SupplierProductCode)
  end)

  it("requires OrderStatus, Supplier, SubTotal, TaxTotal and Total on POST", function()
    local resp, body = post({})
    assert.are.equal(400, resp.status)
    local f = fields(body)
    for _, name in ipairs{ "OrderStatus", "Supplier", "SubTotal", "TaxTotal", "Total" } do
      assert.is_string(f[name], name)
    end
  end)

  it("requires LineNumber, LineTax, LineTotal, OrderQuantity and Product on each line", function()
    local body = good("Parked")
    body.PurchaseOrderLines = { {} }
    local resp, res = post(body)
    assert.are.equal(400, resp.status)
    local f = fields(res)
    for _, name in ipairs{ "LineNumber", "LineTax", "LineTotal", "OrderQuantity", "Product" } do
      assert.is_string(f["PurchaseOrderLines[0]." .. name], name)
    end
  end)

  it("checks string lengths", function()
    local body = good()
    body.Comments = ("x"):rep(1025)
    body.SupplierRef = ("r"):rep(501)
    body.DeliveryCity = ("é"):rep(51)
    local resp, res = post(body)
    assert.are.equal(400, resp.status)
    local f = fields(res)
    assert.matches("at most 1024", f.Comments)
    assert.matches("at most 500", f.SupplierRef)
    assert.matches("at most 50", f.DeliveryCity)
    body = good()
    body.Comments = ("x"):rep(1024)
    body.DeliveryCity = ("é"):rep(50)
    assert.are.equal(201, (post(body)).status)
  end)

  it("keeps DiscountRate between 0 and 1 on the order and its lines", function()
    local body = good()
    body.DiscountRate = 1.5
    body.PurchaseOrderLines[2].DiscountRate = -0.1
    local resp, res = post(body)
    assert.are.equal(400, resp.status)
    local f = fields(res)
    assert.matches("between 0 and 1", f.DiscountRate)
    assert.matches("between 0 and 1", f["PurchaseOrderLines[1].DiscountRate"])
  end)

  it("rounds (2dp) and (4dp) fields before checking them", function()
    local l = line(1, ref.plain, 1.00004, 10.00004, rate)   -- rounds to 1.0000 x 10.0000
    l.LineTotal, l.LineTax = 10.004, round2(10 * rate) + 0.004
    local body = order_body("Parked", "ACME", { l })
    body.SubTotal, body.TaxTotal, body.Total = 10.001, round2(10 * rate), round2(10 + 10 * rate) + 0.002
    local resp, o = post(body)
    assert.are.equal(201, resp.status, resp.body)
    assert.are.equal(1, o.PurchaseOrderLines[1].OrderQuantity)
    assert.are.equal(10, o.PurchaseOrderLines[1].UnitPrice)
    assert.are.equal(10, o.PurchaseOrderLines[1].LineTotal)
    assert.truthy(resp.body:find('"LineTotal":10.0000', 1, true))
  end)

  it("takes Parked, Placed and Complete on POST, nothing else", function()
    for _, s in ipairs{ "Parked", "Placed", "Complete" } do
      assert.are.equal(201, (post(good(s))).status, s)
    end
    for _, s in ipairs{ "Costed", "Receipted", "Deleted", "Open" } do
      local resp, res = post(good(s))
      assert.are.equal(400, resp.status, s)
      assert.matches("OrderStatus must be one of", fields(res).OrderStatus)
    end
  end)

  it("needs at least one line for Placed and Complete, not for Parked", function()
    local body = order_body("Placed", "ACME", {})
    local resp, res = post(body)
    assert.are.equal(400, resp.status)
    assert.matches("at least one line", fields(res).PurchaseOrderLines)
    body.OrderStatus = "Parked"
    assert.are.equal(201, (post(body)).status)
  end)

  it("requires the supplier's currency", function()
    local body = good()
    body.Currency = { CurrencyCode = "USD" }
    local resp, res = post(body)
    assert.are.equal(400, resp.status)
    assert.matches("supplier's currency", fields(res).Currency)
    body.Currency = { CurrencyCode = "NZD" }
    assert.are.equal(201, (post(body)).status)
    body.Currency = { CurrencyCode = "XYZ" }
    assert.are.equal(400, (post(body)).status)
  end)

  it("checks LineTotal = round2(OrderQuantity x UnitPrice x (1 - DiscountRate))", function()
    local body = good()
    body.PurchaseOrderLines[2].LineTotal = body.PurchaseOrderLines[2].LineTotal + 0.01
    local resp, res = post(body)
    assert.are.equal(400, resp.status)
    assert.matches("round2%(OrderQuantity x UnitPrice x %(1 %- DiscountRate%)%) = 13.05",
                   fields(res)["PurchaseOrderLines[1].LineTotal"])
  end)

  it("taxes lines by the hierarchy: product, order, supplier, default", function()
    -- The account's default purchase tax (G.S.T.) when the supplier has no
    -- rate: INFO@SUPPLY has Taxable and TaxRate null. A LineTax that differs
    -- is not refused: the stored order takes the hierarchy's tax, as the
    -- recorded create shows the live server recomputing.
    local wrong = order_body("Parked", "INFO@SUPPLY", { line(1, ref.plain, 2, 10, 0) })
    local resp, stored = post(wrong)
    assert.are.equal(201, resp.status, resp.body)
    assert.are.equal("G.S.T.", stored.PurchaseOrderLines[1].LineTaxCode)
    assert.are.equal(3, stored.PurchaseOrderLines[1].LineTax)
    assert.are.equal(3, stored.TaxTotal)
    assert.are.equal(23, stored.Total)
    resp = post(order_body("Parked", "INFO@SUPPLY", { line(1, ref.plain, 2, 10, 0.15) }))
    assert.are.equal(201, resp.status, resp.body)
    -- The supplier's TaxRate.
    local muller = ref.suppliers["MÜLLER"]
    local o
    resp, o = post(order_body("Parked", "MÜLLER", { line(1, ref.plain, 2, 10, muller.TaxRate) }))
    assert.are.equal(201, resp.status, resp.body)
    assert.are.equal("IMPORT", o.PurchaseOrderLines[1].LineTaxCode)
    -- A supplier that is not Taxable: no tax, shown as the recorded orders
    -- show NONE (the all-zero Guid, a null Description).
    resp, o = post(order_body("Parked", "SMITH & SONS", { line(1, ref.plain, 2, 10, 0) }))
    assert.are.equal(201, resp.status, resp.body)
    assert.are.equal("NONE", o.PurchaseOrderLines[1].LineTaxCode)
    assert.are.same({ TaxCode = "NONE", Description = cjson.null, TaxRate = 0, CanApplyToExpenses = false,
                      CanApplyToRevenue = false, Obsolete = false,
                      Guid = "00000000-0000-0000-0000-000000000000", LastModifiedOn = cjson.null }, o.Tax)
    -- The order's TaxCode beats the supplier's.
    local body = order_body("Parked", "MÜLLER", { line(1, ref.plain, 2, 10, 0) })
    body.TaxCode = "NoTax"
    resp, o = post(body)
    assert.are.equal(201, resp.status, resp.body)
    assert.are.equal("NoTax", o.TaxCode)
    -- The order's G.S.T. is the current one, not the obsolete 12.5% one.
    body = order_body("Parked", "MÜLLER", { line(1, ref.plain, 2, 10, 0.15) })
    body.TaxCode = "G.S.T."
    assert.are.equal(201, (post(body)).status)
    -- The product's purchase tax beats the order's.
    local prate = product_rate(ref, ref.taxed)
    body = order_body("Parked", "MÜLLER", { line(1, ref.taxed, 2, 10, prate) })
    body.TaxCode = "NoTax"
    resp, o = post(body)
    assert.are.equal(201, resp.status, resp.body)
    assert.are.equal(ref.taxed.XeroTaxCode, o.PurchaseOrderLines[1].LineTaxCode)
    -- TaxablePurchase false: no tax, whatever the order says.
    body = order_body("Parked", "ACME", { line(1, ref.exempt, 2, 10, 0) })
    body.TaxCode = "G.S.T."
    assert.are.equal(201, (post(body)).status)
    -- A product with a code and no rate: the code's rate.
    local crate = product_rate(ref, ref.code_only)
    body = order_body("Parked", "SMITH & SONS", { line(1, ref.code_only, 2, 10, crate) })
    resp, o = post(body)
    assert.are.equal(201, resp.status, resp.body)
    assert.are.equal(ref.code_only.XeroTaxCode, o.PurchaseOrderLines[1].LineTaxCode)
    -- Tax object by rate; its Guid is not read.
    body = order_body("Parked", "ACME", { line(1, ref.plain, 2, 10, 0) })
    body.Tax = { TaxRate = 0, Guid = "00000000-0000-0000-0000-000000000000" }
    assert.are.equal(201, (post(body)).status)
  end)

  it("checks SubTotal, TaxTotal and Total to the cent", function()
    local body = good()
    body.SubTotal = body.SubTotal + 0.01
    body.TaxTotal = body.TaxTotal - 0.01
    body.Total = body.Total + 1
    local resp, res = post(body)
    assert.are.equal(400, resp.status)
    local f = fields(res)
    assert.matches("sum of the lines' LineTotal", f.SubTotal)
    assert.matches("sum of the lines' LineTax", f.TaxTotal)
    assert.matches("SubTotal %+ TaxTotal", f.Total)
  end)

  it("checks GUID syntax in references and in the URL", function()
    local body = good()
    body.Supplier = { Guid = "1234" }
    local resp, res = post(body)
    assert.are.equal(400, resp.status)
    assert.matches("must be a GUID", fields(res)["Supplier.Guid"])
    resp, res = call(app, "POST", "/PurchaseOrders/{1234}", good())
    assert.are.equal(400, resp.status)
    assert.is_string(fields(res).Guid)
  end)

  it("refuses unknown supplier, product, warehouse, unit of measure, currency and tax code", function()
    local body = good()
    body.Supplier = { SupplierCode = "NOPE" }
    body.Warehouse = { WarehouseCode = "NOWHERE" }
    body.TaxCode = "NOTAX?"
    body.Currency = { Guid = "00000000-0000-4000-8000-00000000abcd" }
    body.PurchaseOrderLines[1].Product = { ProductCode = "NOPE" }
    body.PurchaseOrderLines[2].UnitOfMeasure = { Name = "FURLONG" }
    local resp, res = post(body)
    assert.are.equal(400, resp.status)
    local f = fields(res)
    assert.matches("No supplier", f["Supplier.SupplierCode"])
    assert.matches("No warehouse", f["Warehouse.WarehouseCode"])
    assert.matches("No tax", f.TaxCode)
    assert.matches("No currency", f["Currency.Guid"])
    assert.matches("No product", f["PurchaseOrderLines[0].Product.ProductCode"])
    assert.matches("No unit of measure", f["PurchaseOrderLines[1].UnitOfMeasure.Name"])
  end)

  -- The product's purchase units (name and factor), from the app: the
  -- recorded products have no such field.
  local function purchase_units(product)
    local out = {}
    for _, pu in ipairs(app.ref.product_by_guid[product.Guid].purchase_units) do
      out[#out + 1] = { Name = app.ref.unit_by_guid[pu.unit].Name, ConversionFactor = pu.factor }
    end
    return out
  end

  it("takes a purchase unit of the product and refuses one of another product", function()
    local pu = purchase_units(ref.multi)[2]
    local l = line(1, ref.multi, 2, 100, rate)
    l.UnitOfMeasure = { Name = pu.Name }
    local resp, o = post(order_body("Parked", "ACME", { l }))
    assert.are.equal(201, resp.status, resp.body)
    local got = o.PurchaseOrderLines[1]
    assert.are.equal(pu.Name, got.UnitOfMeasure.Name)
    assert.are.equal(2, got.PurchaseUnitOrderQuantity)
    assert.are.equal(2 * pu.ConversionFactor, got.OrderQuantity)
    -- A unit some other product buys in, but not this one.
    local own, foreign = {}, nil
    for _, u in ipairs(purchase_units(ref.plain)) do own[u.Name] = true end
    for _, p in ipairs(ref.products) do
      for _, u in ipairs(purchase_units(p)) do if not own[u.Name] then foreign = foreign or u.Name end end
    end
    l = line(1, ref.plain, 2, 100, rate)
    l.UnitOfMeasure = { Name = foreign }
    local res
    resp, res = post(order_body("Parked", "ACME", { l }))
    assert.are.equal(400, resp.status)
    assert.matches("not a purchasing unit", fields(res)["PurchaseOrderLines[0].UnitOfMeasure"])
  end)

  it("answers a second create with the same Guid with the documented error", function()
    local resp, _, g = post(good())
    assert.are.equal(201, resp.status)
    local again = call(app, "POST", "/PurchaseOrders/" .. g, good())
    assert.are.equal(400, again.status)
    assert.are.same({ Items = { { Field = "Guid",
      Description = "A purchase order with this Guid already exists" } } },
                    cjson.decode(again.body))
  end)

  it("refuses wrong JSON types and invalid JSON", function()
    local body = good()
    body.Comments = 5
    body.Supplier = "ACME"
    body.PurchaseOrderLines[1].OrderQuantity = "3"
    body.PurchaseOrderLines[2].LineNumber = 1.5
    body.Printed = "yes"
    local resp, res = post(body)
    assert.are.equal(400, resp.status)
    local f = fields(res)
    assert.matches("must be a string", f.Comments)
    assert.matches("must be an object", f.Supplier)
    assert.matches("must be a number", f["PurchaseOrderLines[0].OrderQuantity"])
    assert.matches("must be an integer", f["PurchaseOrderLines[1].LineNumber"])
    local bad, decoded = call(app, "POST", "/PurchaseOrders/" .. guid(), "{not json")
    assert.are.equal(400, bad.status)
    assert.matches("not valid JSON", decoded.Description)
    bad = call(app, "POST", "/PurchaseOrders/" .. guid(), "[1,2]")
    assert.are.equal(400, bad.status)
    bad = call(app, "POST", "/PurchaseOrders/" .. guid(), "")
    assert.are.equal(400, bad.status)
  end)

  it("reports every problem of one request at once, with request paths", function()
    local body = good()
    body.OrderStatus = nil
    body.Comments = ("x"):rep(2000)
    body.PurchaseOrderLines[2].DiscountRate = 3
    body.PurchaseOrderLines[1].Product = { ProductCode = "NOPE" }
    body.Total = 1
    local resp, res = post(body)
    assert.are.equal(400, resp.status)
    local f = fields(res)
    assert.is_string(f.OrderStatus)
    assert.is_string(f.Comments)
    assert.is_string(f["PurchaseOrderLines[1].DiscountRate"])
    assert.is_string(f["PurchaseOrderLines[0].Product.ProductCode"])
    assert.is_string(f.Total)
    assert.is_true(#res.Items >= 5)
  end)

  it("refuses duplicate line numbers and a body Guid that differs from the URL", function()
    local body = good()
    body.PurchaseOrderLines[2].LineNumber = 1
    body.Guid = "00000000-0000-4000-8000-00000000ffff"
    local resp, res = post(body)
    assert.are.equal(400, resp.status)
    local f = fields(res)
    assert.matches("used by another line", f["PurchaseOrderLines[1].LineNumber"])
    assert.matches("must match", f.Guid)
  end)

  it("numbers new orders after the seeded ones", function()
    local fresh = new_app()
    local _, o = call(fresh, "POST", "/PurchaseOrders/" .. guid(), good("Parked"))
    assert.are.equal("PO-00000061", o.OrderNumber)
    local _, o2 = call(fresh, "POST", "/PurchaseOrders/" .. guid(), good("Parked"))
    assert.are.equal("PO-00000062", o2.OrderNumber)
  end)
end)

describe("sandbox purchase order lifecycle", function()
  local app, now = new_app()
  local ref = reference(app)
  local rate = ref.acme_rate

  local function create(status, lines)
    local g = guid()
    local resp, o = call(app, "POST", "/PurchaseOrders/" .. g,
                         order_body(status, "ACME", lines or { line(1, ref.plain, 4, 2.5, rate) }))
    assert.are.equal(201, resp.status, resp.body)
    return o
  end

  local function put(o, fields_)
    local body = { OrderStatus = o.OrderStatus, Supplier = { Guid = o.Supplier.Guid } }
    for k, v in pairs(fields_ or {}) do body[k] = v end
    return call(app, "PUT", "/PurchaseOrders/" .. o.Guid, body)
  end

  local function stock(product)
    return app:stock_on_hand(product.Guid, app.ref.default_warehouse.Guid)
  end

  it("moves Parked and Placed into each other with PUT, stamping LastModified", function()
    local o = create("Parked")
    now[1] = now[1] + 60000
    local resp, p = put(o, { OrderStatus = "Placed", Comments = "go" })
    assert.are.equal(200, resp.status, resp.body)
    assert.are.equal("Placed", p.OrderStatus)
    assert.are.equal("go", p.Comments)
    assert.are.equal("sandbox@unleashed.local", p.LastModifiedBy)
    assert.truthy(resp.body:find('"LastModifiedOn":"\\/Date(' .. now[1] .. ')\\/"', 1, true))
    local _, back = put(p, { OrderStatus = "Parked" })
    assert.are.equal("Parked", back.OrderStatus)
    assert.are.equal("go", back.Comments)       -- fields not sent keep their values
  end)

  it("receipts only a Placed order: stock in, ReceivedDate, real batch numbers", function()
    local parked = create("Parked")
    local resp, res = call(app, "POST", "/PurchaseOrders/" .. parked.Guid .. "/Receipt")
    assert.are.equal(400, resp.status)
    assert.matches("only a Placed purchase order can be receipted", res.Description)
    local bl = line(1, ref.batch, 5, 3, product_rate(ref, ref.batch, rate))
    bl.PendingBatchNumbers = { { Number = "LOT-1", Quantity = 5, ExpiryDate = "2027-01-31" } }
    local l2 = line(2, ref.plain, 4, 2.5, rate)
    l2.ReceiptQuantity = 3
    local o = create("Placed", { bl, l2 })
    local before_plain, before_batch = stock(ref.plain), stock(ref.batch)
    local r
    resp, r = call(app, "POST", "/PurchaseOrders/" .. o.Guid .. "/Receipt")
    assert.are.equal(200, resp.status, resp.body)
    assert.are.equal("Receipted", r.OrderStatus)
    assert.is_string(r.ReceivedDate)
    assert.are.equal(before_plain + 3, stock(ref.plain))
    assert.are.equal(before_batch + 5, stock(ref.batch))
    local got = r.PurchaseOrderLines[1]
    assert.are.equal(0, #got.PendingBatchNumbers)
    assert.are.equal("LOT-1", got.BatchNumbers[1].BatchNumber)
    assert.is_string(got.BatchNumbers[1].Guid)
    assert.are.equal(3, r.PurchaseOrderLines[2].ReceiptQuantity)
    resp = call(app, "POST", "/PurchaseOrders/" .. o.Guid .. "/Receipt")
    assert.are.equal(400, resp.status)
  end)

  it("turns pending serial numbers into serial numbers with Guids", function()
    local sl = line(1, ref.serial, 2, 50, product_rate(ref, ref.serial, rate))
    sl.PendingSerialNumbers = { { Identifier = "SN-A" }, { Identifier = "SN-B" } }
    local o = create("Placed", { sl })
    local _, r = call(app, "POST", "/PurchaseOrders/" .. o.Guid .. "/Receipt")
    local got = r.PurchaseOrderLines[1]
    assert.are.equal(2, #got.SerialNumbers)
    assert.are.equal("SN-A", got.SerialNumbers[1].SerialNumber)
    assert.is_string(got.SerialNumbers[2].Guid)
    assert.are.equal(0, #got.PendingSerialNumbers)
  end)

  it("refuses pending batches on a product that is not batch-tracked", function()
    local l = line(1, ref.plain, 1, 1, rate)
    l.PendingBatchNumbers = { { Number = "X", Quantity = 1 } }
    local resp, res = call(app, "POST", "/PurchaseOrders/" .. guid(), order_body("Parked", "ACME", { l }))
    assert.are.equal(400, resp.status)
    assert.matches("not batch%-tracked", fields(res)["PurchaseOrderLines[0].PendingBatchNumbers"])
  end)

  it("costs a receipted order with PUT and completes it; refuses Costed before receipt", function()
    local o = create("Placed")
    local resp, res = put(o, { OrderStatus = "Costed" })
    assert.are.equal(400, resp.status)
    assert.matches("must be receipted", fields(res).OrderStatus)
    local _, r = call(app, "POST", "/PurchaseOrders/" .. o.Guid .. "/Receipt")
    local c
    resp, c = put(r, { OrderStatus = "Costed" })
    assert.are.equal(200, resp.status, resp.body)
    assert.are.equal("Costed", c.OrderStatus)
    resp, res = put(c, { OrderStatus = "Placed" })
    assert.are.equal(400, resp.status)
    assert.matches("cannot go back", fields(res).OrderStatus)
    now[1] = now[1] + 1000
    local done
    resp, done = call(app, "POST", "/PurchaseOrders/" .. o.Guid .. "/Complete")
    assert.are.equal(200, resp.status)
    assert.are.equal("Complete", done.OrderStatus)
    assert.truthy(resp.body:find('"CompletedDate":"\\/Date(' .. now[1] .. ')\\/"', 1, true))
    resp = put(done, { OrderStatus = "Complete", Comments = "late" })
    assert.are.equal(400, resp.status)
  end)

  it("completes only Receipted or Costed orders", function()
    for _, status in ipairs{ "Parked", "Placed" } do
      local o = create(status)
      local resp, res = call(app, "POST", "/PurchaseOrders/" .. o.Guid .. "/Complete")
      assert.are.equal(400, resp.status, status)
      assert.matches("only a Receipted or Costed", res.Description)
    end
    local o = create("Placed")
    call(app, "POST", "/PurchaseOrders/" .. o.Guid .. "/Receipt")
    assert.are.equal(200, (call(app, "POST", "/PurchaseOrders/" .. o.Guid .. "/Complete")).status)
    assert.are.equal(400, (call(app, "POST", "/PurchaseOrders/" .. o.Guid .. "/Complete")).status)
  end)

  it("creates a Complete order receipted and completed at once", function()
    local before = stock(ref.plain)
    local o = create("Complete")
    assert.are.equal("Complete", o.OrderStatus)
    assert.is_string(o.ReceivedDate)
    assert.is_string(o.CompletedDate)
    assert.are.equal(before + 4, stock(ref.plain))
  end)

  it("deletes only before receipt; deleted orders list only under orderStatus=Deleted", function()
    local o = create("Placed")
    local resp, d = call(app, "DELETE", "/PurchaseOrders/" .. o.Guid)
    assert.are.equal(200, resp.status)
    assert.are.equal("Deleted", d.OrderStatus)
    assert.are.equal(200, (call(app, "DELETE", "/PurchaseOrders/" .. o.Guid)).status)   -- a retry succeeds
    local _, plain = call(app, "GET", "/PurchaseOrders", nil, "orderNumber=" .. o.OrderNumber)
    assert.are.equal(1, #plain.Items)           -- orderNumber finds it regardless
    local _, listed = call(app, "GET", "/PurchaseOrders", nil, "pageSize=1000")
    for _, item in ipairs(listed.Items) do assert.are_not.equal(o.Guid, item.Guid) end
    local _, deleted = call(app, "GET", "/PurchaseOrders", nil, "orderStatus=Deleted&pageSize=1000")
    local found = false
    for _, item in ipairs(deleted.Items) do if item.Guid == o.Guid then found = true end end
    assert.is_true(found)
    local r = create("Placed")
    call(app, "POST", "/PurchaseOrders/" .. r.Guid .. "/Receipt")
    local res
    resp, res = call(app, "DELETE", "/PurchaseOrders/" .. r.Guid)
    assert.are.equal(400, resp.status)
    assert.matches("not yet receipted", res.Description)
    assert.are.equal(400, (put(d, { OrderStatus = "Placed" })).status)
  end)

  it("adds, changes and deletes lines, recomputing totals and returning the order", function()
    local o = create("Placed")
    local l = line(2, ref.plain, 10, 1.5, rate)
    local resp, added = call(app, "POST", "/PurchaseOrders/" .. o.Guid .. "/Lines", l)
    assert.are.equal(201, resp.status, resp.body)
    assert.are.equal(2, #added.PurchaseOrderLines)
    assert.are.equal(round2(o.SubTotal + 15), added.SubTotal)
    local lg = added.PurchaseOrderLines[2].Guid
    local change = { OrderQuantity = 20, LineTotal = 30, LineTax = round2(30 * rate) }
    local changed
    resp, changed = call(app, "PUT", "/PurchaseOrders/" .. o.Guid .. "/Lines/" .. lg, change)
    assert.are.equal(200, resp.status, resp.body)
    assert.are.equal(round2(o.SubTotal + 30), changed.SubTotal)
    assert.are.equal(round2(changed.SubTotal + changed.TaxTotal), changed.Total)
    change.LineTotal = 31
    local res
    resp, res = call(app, "PUT", "/PurchaseOrders/" .. o.Guid .. "/Lines/" .. lg, change)
    assert.are.equal(400, resp.status)
    assert.is_string(fields(res).LineTotal)
    local dup
    resp, dup = call(app, "POST", "/PurchaseOrders/" .. o.Guid .. "/Lines", line(1, ref.plain, 1, 1, rate))
    assert.are.equal(400, resp.status)
    assert.matches("already used", fields(dup).LineNumber)
    local removed
    resp, removed = call(app, "DELETE", "/PurchaseOrders/" .. o.Guid .. "/Lines/" .. lg)
    assert.are.equal(200, resp.status)
    assert.are.equal(1, #removed.PurchaseOrderLines)
    assert.are.equal(o.Total, removed.Total)
    resp = call(app, "DELETE",
      "/PurchaseOrders/" .. o.Guid .. "/Lines/" .. removed.PurchaseOrderLines[1].Guid)
    assert.are.equal(400, resp.status)          -- a Placed order keeps at least one line
    assert.are.equal(404, (call(app, "DELETE", "/PurchaseOrders/" .. o.Guid .. "/Lines/" .. guid())).status)
  end)

  it("refuses line changes after receipt with a clear description", function()
    local o = create("Placed")
    local _, r = call(app, "POST", "/PurchaseOrders/" .. o.Guid .. "/Receipt")
    local lg = r.PurchaseOrderLines[1].Guid
    local resp, res = call(app, "POST", "/PurchaseOrders/" .. o.Guid .. "/Lines", line(2, ref.plain, 1, 1,
      rate))
    assert.are.equal(400, resp.status)
    assert.matches("cannot change after receipt", res.Description)
    resp = call(app, "PUT", "/PurchaseOrders/" .. o.Guid .. "/Lines/" .. lg,
                { OrderQuantity = 1, LineTotal = 2.5, LineTax = round2(2.5 * rate) })
    assert.are.equal(400, resp.status)
    assert.are.equal(400, (call(app, "DELETE", "/PurchaseOrders/" .. o.Guid .. "/Lines/" .. lg)).status)
  end)

  it("recomputes line taxes when PUT changes the order's tax", function()
    local o = create("Parked")
    local resp, p = put(o, { TaxCode = "NoTax" })
    assert.are.equal(200, resp.status, resp.body)
    assert.are.equal(0, p.TaxTotal)
    assert.are.equal(p.SubTotal, p.Total)
    assert.are.equal("NoTax", p.PurchaseOrderLines[1].LineTaxCode)
  end)

  it("accepts an order read with GET sent back with PUT", function()
    local o = create("Placed")
    local _, fetched = call(app, "GET", "/PurchaseOrders/" .. o.Guid)
    local body = {}
    for k, v in pairs(fetched) do if v ~= cjson.null then body[k] = v end end
    local resp, p = call(app, "PUT", "/PurchaseOrders/" .. o.Guid, body)
    assert.are.equal(200, resp.status, resp.body)
    assert.are.equal(o.Total, p.Total)
  end)
  -- ---- quantities in purchase units ----------------------------------------------
  local function purchase_unit(product)
    for _, pu in ipairs(app.ref.product_by_guid[product.Guid].purchase_units) do
      if pu.factor > 1 then return app.ref.unit_by_guid[pu.unit].Name, pu.factor end
    end
  end

  it("reads a purchase-unit line in base units and takes that quantity back unchanged", function()
    local unit, factor = purchase_unit(ref.multi)
    local l = line(1, ref.multi, 2, 30, rate)
    l.UnitOfMeasure = { Name = unit }
    local o = create("Parked", { l })
    local got = o.PurchaseOrderLines[1]
    assert.are.equal(2, got.PurchaseUnitOrderQuantity)        -- in the line's unit
    assert.are.equal(2 * factor, got.OrderQuantity)           -- in the product's base unit
    assert.are.equal(60, got.LineTotal)                       -- 2 x 30 per purchase unit
    local path = "/PurchaseOrders/" .. o.Guid .. "/Lines/" .. got.Guid
    -- OrderQuantity as read, no UnitOfMeasure: the base unit; nothing changes.
    local resp, p = call(app, "PUT", path, { OrderQuantity = got.OrderQuantity, LineTotal = got.LineTotal,
                                             LineTax = got.LineTax })
    assert.are.equal(200, resp.status, resp.body)
    local after = p.PurchaseOrderLines[1]
    assert.are.equal(2, after.PurchaseUnitOrderQuantity)
    assert.are.equal(got.OrderQuantity, after.OrderQuantity)
    assert.are.equal(o.Total, p.Total)
    -- With the line's own UnitOfMeasure the quantity is in that unit.
    resp, p = call(app, "PUT", path, { OrderQuantity = 3, UnitOfMeasure = { Name = unit }, LineTotal = 90,
                                       LineTax = round2(90 * rate) })
    assert.are.equal(200, resp.status, resp.body)
    assert.are.equal(3, p.PurchaseOrderLines[1].PurchaseUnitOrderQuantity)
    assert.are.equal(3 * factor, p.PurchaseOrderLines[1].OrderQuantity)
    -- A receipt quantity in base units becomes one in the line's unit.
    resp, p = call(app, "PUT", path, { OrderQuantity = 3 * factor, ReceiptQuantity = factor, LineTotal = 90,
                                       LineTax = round2(90 * rate) })
    assert.are.equal(200, resp.status, resp.body)
    assert.are.equal(1, p.PurchaseOrderLines[1].PurchaseUnitReceiptQuantity)
    assert.are.equal(factor, p.PurchaseOrderLines[1].ReceiptQuantity)
  end)

  it("refuses a base quantity that is not one of the line's unit, and a change of unit", function()
    local unit, factor = purchase_unit(ref.multi)
    local l = line(1, ref.multi, 2, 30, rate)
    l.UnitOfMeasure = { Name = unit }
    local o = create("Parked", { l })
    local path = "/PurchaseOrders/" .. o.Guid .. "/Lines/" .. o.PurchaseOrderLines[1].Guid
    local resp, res = call(app, "PUT", path, { OrderQuantity = 2 * factor + 1, LineTotal = 60,
                                               LineTax = round2(60 * rate) })
    assert.are.equal(400, resp.status)
    local f = fields(res).OrderQuantity
    assert.matches("base unit", f)
    assert.matches(unit, f, 1, true)
    -- The product's base unit is one of its purchase units, but not this line's.
    resp, res = call(app, "PUT", path, { OrderQuantity = 2, LineTotal = 60, LineTax = round2(60 * rate),
                                         UnitOfMeasure = { Name = ref.multi.UnitOfMeasure.Name } })
    assert.are.equal(400, resp.status)
    assert.matches("cannot change", fields(res).UnitOfMeasure)
  end)

  -- ---- receipts with batch and serial numbers ----------------------------------
  it("refuses a receipt whose serial numbers do not match the quantity, naming the line", function()
    local srate = product_rate(ref, ref.serial, rate)
    local sl = line(1, ref.serial, 3, 50, srate)
    sl.PendingSerialNumbers = { { Identifier = "SN-1" }, { Identifier = "SN-2" } }
    sl.LineNumber = 2
    local o = create("Placed", { line(1, ref.plain, 1, 1, rate), sl })
    local before = stock(ref.serial)
    local resp, res = call(app, "POST", "/PurchaseOrders/" .. o.Guid .. "/Receipt")
    assert.are.equal(400, resp.status)
    assert.are.equal("PurchaseOrderLines[1].PendingSerialNumbers", res.Items[1].Field)
    assert.matches("needs 3 serial numbers", res.Items[1].Description)
    assert.is_string(res.Items[1].ErrorCode)
    assert.are.equal(before, stock(ref.serial))
    local _, still = call(app, "GET", "/PurchaseOrders/" .. o.Guid)
    assert.are.equal("Placed", still.OrderStatus)
    -- A repeated serial number is refused too; three distinct ones pass.
    local lg = o.PurchaseOrderLines[2].Guid
    local path = "/PurchaseOrders/" .. o.Guid .. "/Lines/" .. lg
    local t = round2(150)
    local function serials(...)
      local list = {}
      for i, id in ipairs{ ... } do list[i] = { Identifier = id } end
      return call(app, "PUT", path, { OrderQuantity = 3, LineTotal = t, LineTax = round2(t * srate),
                                      PendingSerialNumbers = list })
    end
    assert.are.equal(200, (serials("SN-1", "SN-1", "SN-2")).status)
    resp, res = call(app, "POST", "/PurchaseOrders/" .. o.Guid .. "/Receipt")
    assert.are.equal(400, resp.status)
    assert.matches("given twice", res.Items[1].Description)
    assert.are.equal(200, (serials("SN-1", "SN-2", "SN-3")).status)
    resp = call(app, "POST", "/PurchaseOrders/" .. o.Guid .. "/Receipt")
    assert.are.equal(200, resp.status, resp.body)
    assert.are.equal(before + 3, stock(ref.serial))
  end)

  it("refuses a receipt whose batch quantities do not add up, also on Complete", function()
    local brate = product_rate(ref, ref.batch, rate)
    local bl = line(1, ref.batch, 10, 3, brate)
    bl.PendingBatchNumbers = { { Number = "LOT-A", Quantity = 6 }, { Number = "LOT-B", Quantity = 3 } }
    local resp, res = call(app, "POST", "/PurchaseOrders/" .. guid(), order_body("Complete", "ACME", { bl }))
    assert.are.equal(400, resp.status)
    assert.are.equal("PurchaseOrderLines[0].PendingBatchNumbers", res.Items[1].Field)
    assert.matches("add up to the 10 received %(they add up to 9%)", res.Items[1].Description)
    local o = create("Placed", { bl })
    resp = put(o, { OrderStatus = "Complete" })
    assert.are.equal(400, resp.status)
    -- Receiving 9 of the 10 makes the batches add up.
    local path = "/PurchaseOrders/" .. o.Guid .. "/Lines/" .. o.PurchaseOrderLines[1].Guid
    assert.are.equal(200, (call(app, "PUT", path, { OrderQuantity = 10, ReceiptQuantity = 9, LineTotal = 30,
                                                    LineTax = round2(30 * brate) })).status)
    local r
    resp, r = call(app, "POST", "/PurchaseOrders/" .. o.Guid .. "/Receipt")
    assert.are.equal(200, resp.status, resp.body)
    local got = r.PurchaseOrderLines[1]
    assert.are.equal(2, #got.BatchNumbers)
    assert.are.equal("LOT-A", got.BatchNumbers[1].BatchNumber)
    assert.are.equal(6, got.BatchNumbers[1].Quantity)
    assert.are.equal(0, #got.PendingBatchNumbers)
  end)
end)
