-- Input refused before any request: each bad value gets a validation error
-- naming the field and the rule, and no request leaves the client (the
-- client points at a closed port and its on_request hook must stay silent).
local unleashed = require "unleashed"

local sent
local function client(extra)
  local opts = { api_id = "11111111-2222-3333-4444-555555555555", api_key = "k3y/with+base64==",
                 base_url = "http://127.0.0.1:1", max_retries = 0, connect_timeout = 0.5,
                 on_request = function(ev) sent[#sent + 1] = ev end }
  for k, v in pairs(extra or {}) do opts[k] = v end
  return unleashed.new(opts)
end

-- Runs fn, which must raise a validation error with a detail for `field`
-- whose message matches `rule`; and no request may have been sent.
local function refused(field, rule, fn, ...)
  sent = {}
  local ok, e = pcall(fn, ...)
  assert.is_false(ok, "expected a validation error for " .. field)
  assert.is_true(unleashed.Error.is(e, "validation"), "not a validation error: " .. tostring(e))
  local found = false
  for _, d in ipairs(e.details) do
    if d.field == field and d.message:find(rule) then found = true end
  end
  assert.is_true(found, ("no detail %q matching %q in: %s"):format(field, rule, tostring(e)))
  assert.equal(0, #sent, "a request was sent")
  return e
end

local function line(t)
  local l = { Product = { ProductCode = "X" }, OrderQuantity = 1, UnitPrice = 2 }
  for k, v in pairs(t or {}) do l[k] = v end
  return l
end

local function order(t)
  local o = { Supplier = { SupplierCode = "ACME" }, OrderStatus = "Parked", PurchaseOrderLines = { line() } }
  for k, v in pairs(t or {}) do o[k] = v end
  return o
end

describe("client options", function()
  sent = {}
  local base = { api_id = "id", api_key = "key" }
  local function with(t)
    local o = {}
    for k, v in pairs(base) do o[k] = v end
    for k, v in pairs(t) do o[k] = v end
    return o
  end
  local cases = {
    { "api_id", "is required", { api_key = "key" } },
    { "api_key", "is required", { api_id = "id" } },
    { "api_id", "non%-empty string", with{ api_id = "" } },
    { "api_key", "non%-empty string", with{ api_key = 42 } },
    { "api_id", "control characters", with{ api_id = "id\r\nX-Evil: 1" } },
    { "client_type", "control characters", with{ client_type = "a/b\n" } },
    { "base_url", "http:// or https://", with{ base_url = "ftp://example.com" } },
    { "base_url", "query or fragment", with{ base_url = "https://example.com/?x=1" } },
    { "timeout", "between", with{ timeout = 0 } },
    { "timeout", "finite", with{ timeout = 0 / 0 } },
    { "connect_timeout", "between", with{ connect_timeout = -1 } },
    { "max_retries", "integer", with{ max_retries = 1.5 } },
    { "max_retries", "from 0 to 100", with{ max_retries = 1000 } },
    { "concurrency", "from 1 to 64", with{ concurrency = 0 } },
    { "concurrency", "from 1 to 64", with{ concurrency = 65 } },
    { "page_size", "from 1 to 1000", with{ page_size = 1001 } },
    { "page_size", "integer", with{ page_size = "200" } },
    { "ca_file", "readable file", with{ ca_file = "/nonexistent/ca.pem" } },
    { "on_request", "function", with{ on_request = "print" } },
    { "default_purchase_tax", "rate from 0 to 1", with{ default_purchase_tax = 1.5 } },
    { "default_purchase_tax", "rate from 0 to 1", with{ default_purchase_tax = 0 / 0 } },
    { "default_purchase_tax", "tax code", with{ default_purchase_tax = "" } },
    { "default_purchase_tax", "tax code", with{ default_purchase_tax = "G.S.T.\n" } },
    { "default_purchase_tax", "tax code", with{ default_purchase_tax = { "G.S.T." } } },
    { "apikey", "is not an option %(valid: api_id, api_key", with{ apikey = "x" } },
  }
  for _, c in ipairs(cases) do
    it(("refuses %s: %s"):format(c[1], c[2]), function()
      local e = refused(c[1], c[2], unleashed.new, c[3])
      assert.is_nil(tostring(e):find("key3y", 1, true))
    end)
  end

  it("refuses a non-table", function()
    refused("options", "must be a table", unleashed.new, "id")
  end)

  it("takes default_purchase_tax as a tax code or a rate", function()
    for _, v in ipairs{ "G.S.T.", 0.15, 0, 1 } do
      assert.is_true(pcall(unleashed.new, with{ default_purchase_tax = v }), tostring(v))
    end
  end)

  it("never puts the key's value in the error", function()
    local e = refused("timeout", "between", unleashed.new,
                      { api_id = "id", api_key = "S3CR3T-VALUE", timeout = -5 })
    assert.is_nil(tostring(e):find("S3CR3T", 1, true))
  end)

  it("reports every broken option at once", function()
    local ok, e = pcall(unleashed.new, { api_id = "", concurrency = 100, page_size = 0 })
    assert.is_false(ok)
    assert.equal(4, #e.details)   -- api_id, api_key, concurrency, page_size
  end)

  it("from_env names the missing variables", function()
    sent = {}
    local ok, e = pcall(unleashed.from_env, nil,
      function(name) return name == "UNLEASHED_API_ID" and "id" or nil end)
    assert.is_false(ok)
    assert.is_true(unleashed.Error.is(e, "auth"), tostring(e))   -- as the command's exit code 3
    assert.equal("UNLEASHED_API_KEY", e.details[1].field)
    assert.matches("is not set", e.details[1].message)
    assert.equal(1, #e.details)
  end)

  it("from_env reads the four variables, options override them", function()
    local env = { UNLEASHED_API_ID = "abcdef0123", UNLEASHED_API_KEY = "k",
                  UNLEASHED_BASE_URL = "http://127.0.0.1:1/", UNLEASHED_CLIENT_TYPE = "acme/Sync" }
    local c = unleashed.from_env({ page_size = 10 }, function(n) return env[n] end)
    assert.equal("http://127.0.0.1:1", c.base_url)
    assert.equal("acme/Sync", c.client_type)
    assert.equal(10, c.page_size)
    assert.equal(4, c.concurrency)
    assert.matches("abcdef01", tostring(c))
    assert.is_nil(tostring(c):find("abcdef0123", 1, true))
  end)
end)

describe("purchase order create input", function()
  local c = client()
  local po = c.purchase_orders
  local function create(t) return po:create(t) end
  local big = ("x"):rep(1025)
  local cases = {
    { "order", "must be a table", "not a table" },
    { "Supplier", "is required", (function() local o = order(); o.Supplier = nil; return o end)() },
    { "Supplier", "needs Guid or SupplierCode", order{ Supplier = {} } },
    { "Supplier.Guid", "must be a GUID", order{ Supplier = { Guid = "not-a-guid" } } },
    { "Supplier.SupplierCode", "at most 500", order{ Supplier = { SupplierCode = ("S"):rep(501) } } },
    { "OrderStatus", "is required", (function() local o = order(); o.OrderStatus = nil; return o end)() },
    { "OrderStatus", "one of Parked, Placed, Complete", order{ OrderStatus = "Costed" } },
    { "OrderStatus", "one of Parked, Placed, Complete", order{ OrderStatus = "parked!" } },
    { "PurchaseOrderLines", "at least one line", order{ OrderStatus = "Placed", PurchaseOrderLines = {} } },
    { "PurchaseOrderLines", "at least one line", (function() local o = order{ OrderStatus = "Complete" };
        o.PurchaseOrderLines = nil; return o end)() },
    { "PurchaseOrderLines", "must be an array", order{ PurchaseOrderLines = { a = 1 } } },
    { "Comments", "at most 1024", order{ Comments = big } },
    { "Comments", "must be a string", order{ Comments = 12 } },
    { "Comments", "valid UTF%-8", order{ Comments = "\xff\xfe" } },
    { "DeliveryName", "at most 50", order{ DeliveryName = ("n"):rep(51) } },
    { "DeliveryStreetAddress", "at most 200", order{ DeliveryStreetAddress = ("a"):rep(201) } },
    { "OrderNumber", "at most 15", order{ OrderNumber = "PO-0000000000001" } },
    { "SupplierEORI", "at most 20", order{ SupplierEORI = ("E"):rep(21) } },
    { "SupplierRef", "at most 500", order{ SupplierRef = ("r"):rep(501) } },
    { "DiscountRate", "between 0 and 1", order{ DiscountRate = 1.5 } },
    { "DiscountRate", "between 0 and 1", order{ DiscountRate = -0.1 } },
    { "DiscountRate", "must be a number", order{ DiscountRate = "0.1" } },
    { "ExchangeRate", "finite", order{ ExchangeRate = math.huge } },
    { "Guid", "must be a GUID", order{ Guid = "1234" } },
    { "Guid", "must be a GUID", order{ Guid = "zzzzzzzz-2222-3333-4444-555555555555" } },
    { "OrderDate", "ISO 8601", order{ OrderDate = "13/07/2017" } },
    { "OrderDate", "ISO 8601", order{ OrderDate = "2017-02-30" } },
    { "DeliveryDate", "ISO 8601", order{ DeliveryDate = true } },
    { "SupplierInvoiceDate", "finite", order{ SupplierInvoiceDate = 0 / 0 } },
    { "Warehouse", "needs Guid or WarehouseCode", order{ Warehouse = {} } },
    { "Warehouse.WarehouseCode", "at most 15", order{ Warehouse = { WarehouseCode = ("W"):rep(16) } } },
    { "Currency.CurrencyCode", "at most 3", order{ Currency = { CurrencyCode = "NZDX" } } },
    { "Tax", "needs TaxCode or TaxRate", order{ Tax = {} } },
    { "Tax.TaxCode", "at most 25", order{ Tax = { TaxCode = ("T"):rep(26) } } },
    { "TaxRate", "between 0 and 1", order{ TaxRate = 15 } },
    { "SubTotal", "must be a number", order{ SubTotal = "12.00" } },
    { "orderStatus", "is not a field of PurchaseOrder %(valid: Comments", order{ orderStatus = "Parked" } },
    { "PurchaseOrderLines[1].Product", "is required", order{ PurchaseOrderLines = {
        { OrderQuantity = 1, UnitPrice = 1 } } } },
    { "PurchaseOrderLines[1].Product", "needs Guid or ProductCode", order{ PurchaseOrderLines = {
        line{ Product = {} } } } },
    { "PurchaseOrderLines[1].Product.ProductCode", "at most 100", order{ PurchaseOrderLines = {
        line{ Product = { ProductCode = ("P"):rep(101) } } } } },
    { "PurchaseOrderLines[1].OrderQuantity", "is required", order{ PurchaseOrderLines = {
        { Product = { ProductCode = "X" }, UnitPrice = 1 } } } },
    { "PurchaseOrderLines[1].OrderQuantity", "finite", order{ PurchaseOrderLines = {
        line{ OrderQuantity = 0 / 0 } } } },
    { "PurchaseOrderLines[1].OrderQuantity", "finite", order{ PurchaseOrderLines = {
        line{ OrderQuantity = -math.huge } } } },
    { "PurchaseOrderLines[1].OrderQuantity", "greater than 0", order{ PurchaseOrderLines = {
        line{ OrderQuantity = 0 } } } },
    { "PurchaseOrderLines[1].UnitPrice", "is required", order{ PurchaseOrderLines = {
        { Product = { ProductCode = "X" }, OrderQuantity = 1 } } } },
    { "PurchaseOrderLines[1].UnitPrice", "must not be negative", order{ PurchaseOrderLines = {
        line{ UnitPrice = -1 } } } },
    { "PurchaseOrderLines[1].DiscountRate", "between 0 and 1", order{ PurchaseOrderLines = {
        line{ DiscountRate = 2 } } } },
    { "PurchaseOrderLines[1].LineNumber", "integer", order{ PurchaseOrderLines = {
        line{ LineNumber = 1.5 } } } },
    { "PurchaseOrderLines[1].LineNumber", "at least 1", order{ PurchaseOrderLines = {
        line{ LineNumber = 0 } } } },
    { "PurchaseOrderLines[2].LineNumber", "used by another line", order{ PurchaseOrderLines = {
        line{ LineNumber = 1 }, line{ LineNumber = 1 } } } },
    { "PurchaseOrderLines[1].Guid", "must be a GUID", order{ PurchaseOrderLines = { line{ Guid = "g" } } } },
    { "PurchaseOrderLines[1].Comments", "at most 1024", order{ PurchaseOrderLines = {
        line{ Comments = big } } } },
    { "PurchaseOrderLines[1].UnitOfMeasure.Name", "at most 20", order{ PurchaseOrderLines = {
        line{ UnitOfMeasure = { Name = ("U"):rep(21) } } } } },
    { "PurchaseOrderLines[1].PendingBatchNumbers[1].Quantity", "is required", order{ PurchaseOrderLines = {
        line{ PendingBatchNumbers = { { Number = "B1" } } } } } },
    { "PurchaseOrderLines[1].PendingSerialNumbers[1]", "needs Identifier or SerialNumber",
      order{ PurchaseOrderLines = { line{ PendingSerialNumbers = { {} } } } } },
    { "PurchaseOrderLines[1].Colour", "is not a field of PurchaseOrderLine", order{ PurchaseOrderLines = {
        line{ Colour = "red" } } } },
    { "PurchaseOrderLines[1].OrderQuantity", "must be a number", order{ PurchaseOrderLines = {
        line{ OrderQuantity = function() end } } } },
  }
  for _, case in ipairs(cases) do
    it(("refuses %s: %s"):format(case[1], case[2]), function()
      local e = refused(case[1], case[2], create, case[3])
      assert.equal("POST", e.method)
      assert.matches("^unleashed: validation error POST /PurchaseOrders", tostring(e))
    end)
  end

  it("reports every broken rule of one order at once", function()
    sent = {}
    local ok, e = pcall(create, { Supplier = {}, OrderStatus = "Placed", Comments = 5,
      PurchaseOrderLines = { { OrderQuantity = 0 / 0, DiscountRate = 3 } } })
    assert.is_false(ok)
    assert.is_true(#e.details >= 5, tostring(e))
    assert.equal(0, #sent)
  end)

  it("checks given figures against the arithmetic before sending", function()
    -- a wrong LineTotal is caught locally: no lookup is needed to know it
    refused("PurchaseOrderLines[1].LineTotal", "must equal round2", create,
      order{ PurchaseOrderLines = { line{ OrderQuantity = 2, UnitPrice = 2.5, LineTotal = 6, LineTax = 0 } },
             SubTotal = 6, TaxTotal = 0, Total = 6 })
    refused("Total", "must equal SubTotal %+ TaxTotal = 5.75", create,
      order{ PurchaseOrderLines = { line{ OrderQuantity = 2, UnitPrice = 2.5, LineTax = 0.75 } },
             Total = 6 })
  end)

  it("leaves the caller's table as it was", function()
    local t = order{ Comments = 5 }
    pcall(create, t)
    assert.equal(5, t.Comments)
    assert.is_nil(t.Guid)
    assert.is_nil(t.PurchaseOrderLines[1].LineNumber)
  end)
end)

describe("other calls' input", function()
  local c = client()
  local po = c.purchase_orders
  local obj = setmetatable({ Guid = "11111111-2222-3333-4444-555555555555", OrderStatus = "Parked",
    Supplier = { SupplierCode = "ACME" }, PurchaseOrderLines = {} }, po._order_mt)

  it("get refuses a bad GUID and unknown options", function()
    refused("ref", "must be a GUID .* or an order number", po.get, po, "PO-0001-TOO-LONG-FOR-A-NUMBER")
    refused("ref", "must be a GUID .* or an order number", po.get, po, 42)
    refused("serialbatch", "is not an option of get", po.get, po, obj.Guid, { serialbatch = true })
    refused("serialBatch", "boolean", po.get, po, obj.Guid, { serialBatch = "yes" })
  end)

  it("page refuses a bad page number and bad filters", function()
    refused("page", "integer of 1 or more", po.page, po, 0)
    refused("page", "integer of 1 or more", po.page, po, 1.5)
    refused("pageSize", "from 1 to 1000", po.page, po, 1, { pageSize = 5000 })
  end)

  it("each refuses unknown filters, listing the valid names", function()
    local e = refused("supplier", "not a purchase order filter %(valid: brief, completedAfter, "
      .. "completedBefore, customOrderStatus, endDate, exactSupplierCode, modifiedSince, orderNumber, "
      .. "orderStatus, pageSize, serialBatch, startDate, supplierCode, warehouseCode%)", po.each, po,
      { supplier = "ACME" })
    assert.equal("GET", e.method)
  end)

  it("each refuses bad listing options", function()
    refused("opts.concurrency", "from 1 to 64", po.each, po, nil, { concurrency = 0 })
    refused("opts.page_size", "from 1 to 1000", po.each, po, nil, { page_size = 2000 })
    refused("opts.progress", "function", po.each, po, nil, { progress = true })
    refused("opts.pagesize", "not a listing option", po.list, po, nil, { pagesize = 5 })
  end)

  it("update refuses bad fields and fields it cannot change", function()
    refused("OrderStatus", "one of Parked, Placed, Costed, Complete", obj.update, obj,
            { OrderStatus = "Receipted" })
    refused("PurchaseOrderLines", "use add_line", obj.update, obj, { PurchaseOrderLines = {} })
    refused("Total", "computed by the server", obj.update, obj, { Total = 1 })
    refused("OrderStatus", "at least one line", obj.update, obj, { OrderStatus = "Placed" })
    refused("fields", "must be a table", obj.update, obj, "Comments")
    refused("Comments", "at most 1024", obj.update, obj, { Comments = ("c"):rep(2000) })
  end)

  it("add_line and update_line refuse bad lines", function()
    refused("Product", "is required", obj.add_line, obj, { OrderQuantity = 1, UnitPrice = 1 })
    refused("DiscountRate", "between 0 and 1", obj.add_line, obj, line{ DiscountRate = 1.01 })
    refused("line_guid", "must be a GUID", obj.update_line, obj, "nope", { OrderQuantity = 2 })
    refused("Product", "cannot be changed", obj.update_line, obj, obj.Guid,
            { Product = { ProductCode = "Y" } })
    refused("OrderQuantity", "finite", obj.update_line, obj, obj.Guid, { OrderQuantity = 1 / 0 })
    refused("line_guid", "must be a GUID", obj.delete_line, obj, "x")
  end)

  it("request refuses a query in the path, unknown options and bodies JSON cannot hold", function()
    refused("path", "opts.query so that it is signed", c.request, c, "GET", "/Suppliers?supplierCode=A")
    refused("method", "GET, POST", c.request, c, "FETCH", "/Suppliers")
    refused("path", "starting with /", c.request, c, "GET", "Suppliers")
    refused("opts.headers", "not a request option", c.request, c, "GET", "/Suppliers", { headers = {} })
    refused("query.x", "string, number or boolean", c.request, c, "GET", "/Suppliers", { query = { x = {} } })
    refused("Bad.Value", "finite", c.request, c, "POST", "/Things", { body = { Bad = { Value = 0 / 0 } } })
    refused("x", "mixes array items and named fields", c.request, c, "POST", "/Things",
      { body = { x = { 1, 2, y = 3 } } })
    refused("f", "cannot be sent as JSON", c.request, c, "POST", "/Things", { body = { f = print } })
    refused("opts.timeout", "between", c.request, c, "GET", "/Things", { timeout = -1 })
    refused("opts.retries", "from 0 to 100", c.request, c, "GET", "/Things", { retries = 1000 })
    refused("opts.idempotent", "boolean", c.request, c, "POST", "/Things", { idempotent = "yes" })
    refused("opts.timeout", "finite", po.each, po, nil, { timeout = 0 / 0 })
  end)

  it("client:each refuses a bad resource name", function()
    refused("resource", "resource name", c.each, c, "../etc")
    refused("resource", "resource name", c.each, c, 42)
  end)
end)
