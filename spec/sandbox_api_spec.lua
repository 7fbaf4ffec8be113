-- The sandbox's API, in process: auth, negotiation, routes, paging, filters,
-- rendering, reference data, determinism and state dumps. Requests are
-- signed as a client must: the decoded query signed, RFC 3986 on the wire.
local core = require "unleashed.core"
local cjson = require "cjson"
local sandbox = require "unleashed.sandbox"

local ID, KEY = "sandbox-id", "c2VjcmV0+key/=="

local function enc(s)
  return (s:gsub("[^%w%-%._~]", function(c) return ("%%%02X"):format(c:byte()) end))
end

-- params: list of {key, value}, sent in this order.
local function texts(params)
  local signed, wire = {}, {}
  for i, p in ipairs(params or {}) do
    signed[i] = p[1] .. "=" .. p[2]
    wire[i] = enc(p[1]) .. "=" .. enc(p[2])
  end
  return table.concat(signed, "&"), table.concat(wire, "&")
end

local function call(app, method, path, params, opts)
  opts = opts or {}
  local signed, wire = texts(params)
  local headers = {
    ["api-auth-id"] = opts.id or ID,
    ["api-auth-signature"] = opts.signature or core.sign(opts.signed or signed, opts.key or KEY),
    ["accept"] = opts.accept or "application/json",
    ["content-type"] = opts.content_type or "application/json",
  }
  local resp = app:handle{ method = method, path = path, query = opts.query or wire, headers = headers,
                           body = opts.body or "" }
  local ok, decoded = pcall(cjson.decode, resp.body)
  return resp, ok and decoded or nil
end

local function get(app, path, params, opts) return call(app, "GET", path, params, opts) end

local function new_app(seed)
  local now = 1767225600000      -- 2026-01-01
  return sandbox.new{ seed = seed or 60, credentials = { [ID] = KEY }, clock = function() return now end }
end

local function all_orders(app, params)
  local items = {}
  local p = { { "pageSize", "1000" } }
  for _, kv in ipairs(params or {}) do p[#p + 1] = kv end
  local page = 1
  while true do
    local resp, body = get(app, "/PurchaseOrders/Page/" .. page, p)
    assert.are.equal(200, resp.status, resp.body)
    for _, o in ipairs(body.Items) do items[#items + 1] = o end
    if page >= body.Pagination.NumberOfPages then break end
    page = page + 1
  end
  return items
end

local function ms(date) return tonumber(date:match("^/Date%((%-?%d+)%)/$")) end

local function iso(m)
  return os.date("!%Y-%m-%dT%H:%M:%S", m // 1000)
end

describe("sandbox auth", function()
  local app = new_app()

  it("accepts a good signature and answers JSON", function()
    local resp, body = get(app, "/PurchaseOrders", { { "pageSize", "5" } })
    assert.are.equal(200, resp.status)
    assert.are.equal("application/json; charset=utf-8", resp.headers["Content-Type"])
    assert.are.equal(5, #body.Items)
  end)

  it("signs the empty string when there is no query", function()
    local resp = get(app, "/PurchaseOrders", nil)
    assert.are.equal(200, resp.status)
    resp = get(app, "/PurchaseOrders", nil, { signature = core.sign("x", KEY) })
    assert.are.equal(403, resp.status)
  end)

  it("refuses a signature made with the wrong key, without revealing the expected one", function()
    local resp, body = get(app, "/PurchaseOrders", { { "pageSize", "5" } }, { key = "other" })
    assert.are.equal(403, resp.status)
    assert.is_string(body.Description)
    assert.is_nil(resp.body:find(core.sign("pageSize=5", KEY), 1, true))
  end)

  it("refuses an unknown id and a missing signature", function()
    local resp, body = get(app, "/PurchaseOrders", nil, { id = "nobody" })
    assert.are.equal(403, resp.status)
    assert.matches("api%-auth%-id", body.Description)
    resp = app:handle{ method = "GET", path = "/PurchaseOrders", query = "",
      headers = { ["api-auth-id"] = ID },
                       body = "" }
    assert.are.equal(403, resp.status)
  end)

  it("checks the signature against the decoded query, not the wire text", function()
    local params = { { "supplierCode", "SMITH & SONS" } }
    local _, wire = texts(params)
    assert.are.equal(200, get(app, "/PurchaseOrders", params).status)
    local resp = get(app, "/PurchaseOrders", params, { signed = wire })
    assert.are.equal(403, resp.status)
  end)

  it("decodes + as a space and %2B as a plus", function()
    local resp, body = get(app, "/PurchaseOrders", nil,
                           { query = "supplierCode=BLUE+SKY", signed = "supplierCode=BLUE SKY" })
    assert.are.equal(200, resp.status)
    for _, o in ipairs(body.Items) do assert.are.equal("BLUE SKY", o.Supplier.SupplierCode) end
    resp = get(app, "/PurchaseOrders", nil, { query = "supplierCode=BLUE+SKY",
      signed = "supplierCode=BLUE+SKY" })
    assert.are.equal(403, resp.status)
    resp, body = get(app, "/PurchaseOrders", { { "supplierCode", "A+B TRADING" } })
    assert.are.equal(200, resp.status)
    assert.is_true(#body.Items > 0)
    for _, o in ipairs(body.Items) do assert.are.equal("A+B TRADING", o.Supplier.SupplierCode) end
  end)

  it("signs parameters in the order they are sent", function()
    local resp = get(app, "/PurchaseOrders", nil, { query = "pageSize=5&page=1",
      signed = "page=1&pageSize=5" })
    assert.are.equal(403, resp.status)
    resp = get(app, "/PurchaseOrders", nil, { query = "pageSize=5&page=1", signed = "pageSize=5&page=1" })
    assert.are.equal(200, resp.status)
  end)
end)

describe("sandbox JSON only", function()
  local app = new_app()

  it("refuses Accept: application/xml with 406 saying only JSON is served", function()
    local resp, body = get(app, "/PurchaseOrders", nil, { accept = "application/xml" })
    assert.are.equal(406, resp.status)
    assert.matches("only application/json", body.Description)
  end)

  it("refuses Content-Type: application/xml with 415", function()
    local resp, body = get(app, "/PurchaseOrders", nil, { content_type = "application/xml" })
    assert.are.equal(415, resp.status)
    assert.matches("only application/json", body.Description)
  end)

  it("accepts JSON with parameters, */* and lists naming JSON", function()
    for _, accept in ipairs{ "application/json; charset=utf-8", "*/*",
      "text/html, application/json;q=0.9" } do
      assert.are.equal(200, get(app, "/Currencies", nil, { accept = accept }).status, accept)
    end
    assert.are.equal(200, get(app, "/Currencies", nil,
      { content_type = "application/json; charset=utf-8" }).status)
  end)
end)

describe("sandbox routes and paging", function()
  local app = new_app()
  local first = all_orders(app)

  it("serves page 1 three ways and later pages two ways", function()
    local _, a = get(app, "/PurchaseOrders", { { "pageSize", "7" } })
    local _, b = get(app, "/PurchaseOrders/1", { { "pageSize", "7" } })
    local _, c = get(app, "/PurchaseOrders/Page/1", { { "pageSize", "7" } })
    assert.are.same(a, b)
    assert.are.same(a, c)
    local _, d = get(app, "/PurchaseOrders/2", { { "pageSize", "7" } })
    local _, e = get(app, "/PurchaseOrders/Page/2", { { "pageSize", "7" } })
    assert.are.same(d, e)
    assert.are.equal(2, d.Pagination.PageNumber)
    assert.are.equal(first[8].Guid, d.Items[1].Guid)
  end)

  it("wraps lists in the Pagination envelope and is empty past the last page", function()
    local _, body = get(app, "/PurchaseOrders", { { "pageSize", "10" } })
    local p = body.Pagination
    assert.are.equal(#first, p.NumberOfItems)
    assert.are.equal(10, p.PageSize)
    assert.are.equal(1, p.PageNumber)
    assert.are.equal(math.ceil(#first / 10), p.NumberOfPages)
    local resp, past = get(app, "/PurchaseOrders/Page/" .. math.tointeger(p.NumberOfPages + 1),
      { { "pageSize", "10" } })
    assert.are.equal(200, resp.status)
    assert.are.equal(0, #past.Items)
    assert.matches('"Items":%[%]', resp.body)
  end)

  it("defaults pageSize to 200 and takes 1 to 1000", function()
    local big = new_app(450)
    local _, body = get(big, "/PurchaseOrders")
    assert.are.equal(200, body.Pagination.PageSize)
    assert.are.equal(200, #body.Items)
    _, body = get(big, "/PurchaseOrders", { { "pageSize", "1" } })
    assert.are.equal(1, #body.Items)
    _, body = get(big, "/PurchaseOrders", { { "pageSize", "1000" } })
    assert.are.equal(body.Pagination.NumberOfItems, #body.Items)
  end)

  it("refuses pageSize 0, 1001, -1, empty and non-numbers naming pageSize", function()
    for _, v in ipairs{ "0", "1001", "-1", "", "abc", "10.5", "99999999999" } do
      local resp, body = get(app, "/PurchaseOrders", { { "pageSize", v } })
      assert.are.equal(400, resp.status, v)
      assert.are.equal("pageSize", body.Items[1].Field)
    end
  end)

  it("refuses page 0 with 400 and junk pages with 404", function()
    assert.are.equal(400, get(app, "/PurchaseOrders/Page/0").status)
    assert.are.equal(400, get(app, "/PurchaseOrders/0").status)
    assert.are.equal(404, get(app, "/PurchaseOrders/Page/x").status)
    assert.are.equal(404, get(app, "/PurchaseOrders/Page/").status)
    assert.are.equal(404, get(app, "/PurchaseOrders/abc").status)
  end)

  it("gets one order by Guid, in any case, and 404s an unknown one", function()
    local resp, o = get(app, "/PurchaseOrders/" .. first[3].Guid)
    assert.are.equal(200, resp.status)
    assert.are.equal(first[3].OrderNumber, o.OrderNumber)
    assert.are.equal(200, get(app, "/PurchaseOrders/" .. first[3].Guid:upper()).status)
    local missing, body = get(app, "/PurchaseOrders/00000000-0000-4000-8000-000000000000")
    assert.are.equal(404, missing.status)
    assert.is_string(body.Description)
  end)

  it("answers unknown routes with a JSON 404 and wrong methods with 405", function()
    local resp, body = get(app, "/SalesOrders")
    assert.are.equal(404, resp.status)
    assert.is_string(body.Description)
    assert.are.equal(404, get(app, "/").status)
    assert.are.equal(404, get(app, "/PurchaseOrders/" .. first[1].Guid .. "/Nothing").status)
    resp = call(app, "DELETE", "/PurchaseOrders")
    assert.are.equal(405, resp.status)
    assert.are.equal("GET", resp.headers.Allow)
    assert.are.equal(405, call(app, "POST", "/PurchaseOrders").status)
    assert.are.equal(405, call(app, "GET", "/PurchaseOrders/" .. first[1].Guid .. "/Receipt").status)
    assert.are.equal(405, call(app, "POST", "/Suppliers").status)
    assert.are.equal(405, call(app, "PATCH", "/PurchaseOrders/" .. first[1].Guid).status)
  end)

  it("refuses a bad GUID on POST, PUT and DELETE with 400 naming Guid", function()
    for _, m in ipairs{ "POST", "PUT", "DELETE" } do
      local resp, body = call(app, m, "/PurchaseOrders/not-a-guid", nil, { body = "{}" })
      assert.are.equal(400, resp.status, m)
      assert.are.equal("Guid", body.Items[1].Field)
    end
    local resp, body = call(app, "POST", "/PurchaseOrders/12345/Receipt")
    assert.are.equal(400, resp.status)
    assert.are.equal("Guid", body.Items[1].Field)
  end)

  it("serves the order's Costs in the list envelope", function()
    local receipted
    for _, o in ipairs(first) do if o.OrderStatus == "Complete" then receipted = o break end end
    local resp, body = get(app, "/PurchaseOrders/" .. receipted.Guid .. "/Costs")
    assert.are.equal(200, resp.status)
    assert.is_true(#body.Items >= 1)
    local c = body.Items[1]
    for _, field in ipairs{ "AppliedDistributionMethod", "BCCost", "BCTaxCost", "BCTotalCost", "Cost",
      "CostDate",
                            "CostExchangeRate", "Currency", "DistributionMethod", "OrderExchangeRate",
                              "Receipted",
                            "Reference", "Supplier", "TaxCode", "TaxCost", "TaxRate", "TotalCost" } do
      assert.is_not_nil(c[field], field)
    end
    assert.are.equal(c.Cost + c.TaxCost, c.TotalCost)
    assert.is_true(body.Pagination.NumberOfItems == #body.Items)
    local parked
    for _, o in ipairs(first) do if o.OrderStatus == "Parked" then parked = o break end end
    local _, none = get(app, "/PurchaseOrders/" .. parked.Guid .. "/Costs")
    assert.are.equal(0, #none.Items)
  end)
end)

describe("sandbox order rendering", function()
  local app = new_app()

  it("has every field of the seed's tables, \\/Date(ms)\\/ dates and the recorded decimal places", function()
    local resp, body = get(app, "/PurchaseOrders", { { "pageSize", "1" } })
    local o = body.Items[1]
    for _, field in ipairs{ "BCSubTotal", "BCTaxTotal", "BCTotal", "CreatedBy", "CreatedOn", "Currency",
                            "DeliveryCountry", "DiscountRate", "ExchangeRate", "Guid", "LastModifiedBy",
                            "LastModifiedOn", "OrderDate", "OrderNumber", "OrderStatus", "Printed",
                            "PurchaseOrderLines", "SalesOrders", "SubTotal", "Supplier", "Tax", "TaxCode",
                            "TaxRate", "TaxTotal", "Total", "TotalVolume", "TotalWeight", "Warehouse" } do
      assert.is_not_nil(o[field], field)
    end
    for _, field in ipairs{ "Comments", "CompletedDate", "CustomOrderStatus", "DeliveryCity", "DeliveryDate",
                            "DeliveryName", "DeliveryPostCode", "DeliveryRegion", "DeliveryStreetAddress",
                            "DeliveryStreetAddress2", "DeliverySuburb", "ReceivedDate", "SupplierEORI",
                            "SupplierInvoiceDate", "SupplierRef" } do
      assert.truthy(resp.body:find('"' .. field .. '":', 1, true), field)
    end
    assert.truthy(resp.body:find('"CreatedOn":"\\/Date%(%d+%)\\/"'))
    assert.truthy(resp.body:find('"SalesOrders":[]', 1, true))
    -- Places as the recorded orders write the same fields: totals 3, rates 6.
    assert.truthy(resp.body:find('"SubTotal":%-?%d+%.%d%d%d,'))
    assert.truthy(resp.body:find('"ExchangeRate":%d+%.%d%d%d%d%d%d,'))
    assert.truthy(resp.body:find('"LineTotal":%d+%.%d%d%d%d%d%d%d%d,'))
    assert.truthy(resp.body:find('"ReceivedDate":null', 1, true))
    assert.are.same({ "CurrencyCode", "Description", "Guid", "LastModifiedOn" }, (function()
      local k = {} for name in pairs(o.Currency) do k[#k + 1] = name end table.sort(k) return k end)())
    local line = o.PurchaseOrderLines[1]
    for _, field in ipairs{ "BCCostTotal", "BCLandedCost", "BCSubTotal", "BCUnitPrice", "DiscountedUnitPrice",
                            "DiscountRate", "Guid", "LastModifiedBy", "LastModifiedOn", "LineNumber",
                              "LineTax",
                            "LineTaxCode", "LineTaxRate", "LineTotal", "OrderQuantity",
                              "PurchaseUnitOrderQuantity",
                            "Product", "UnitOfMeasure", "UnitPrice" } do
      assert.is_not_nil(line[field], field)
    end
  end)

  it("keeps the arithmetic of every seeded order", function()
    for _, o in ipairs(all_orders(app, { { "orderStatus",
      "Parked,Placed,Receipted,Costed,Complete,Deleted" } })) do
      local sub, tax = 0, 0
      for _, l in ipairs(o.PurchaseOrderLines) do
        local q, p, d = l.PurchaseUnitOrderQuantity, l.UnitPrice, l.DiscountRate
        local expect = math.floor(q * p * (1 - d) * 100 + 0.5 + 1e-7)
        assert.are.equal(expect, math.floor(l.LineTotal * 100 + 0.5), o.OrderNumber)
        assert.are.equal(math.floor(l.LineTotal * l.LineTaxRate * 100 + 0.5 + 1e-7),
          math.floor(l.LineTax * 100 + 0.5))
        sub, tax = sub + math.floor(l.LineTotal * 100 + 0.5), tax + math.floor(l.LineTax * 100 + 0.5)
      end
      assert.are.equal(sub, math.floor(o.SubTotal * 100 + 0.5))
      assert.are.equal(tax, math.floor(o.TaxTotal * 100 + 0.5))
      assert.are.equal(sub + tax, math.floor(o.Total * 100 + 0.5))
      assert.are.equal(math.floor(o.SubTotal / o.ExchangeRate * 100 + 0.5),
        math.floor(o.BCSubTotal * 100 + 0.5))
    end
  end)

  it("shows brief products by default and more with brief=false", function()
    local function keys(t)
      local k = {}
      for name in pairs(t) do k[#k + 1] = name end
      table.sort(k)
      return k
    end
    local _, brief = get(app, "/PurchaseOrders", { { "pageSize", "1" } })
    assert.are.same({ "Guid", "ProductCode", "ProductDescription" },
      keys(brief.Items[1].PurchaseOrderLines[1].Product))
    local _, full = get(app, "/PurchaseOrders", { { "pageSize", "1" }, { "brief", "false" } })
    assert.are.same({ "Guid", "ProductCode", "ProductDescription", "ProductGroup", "SupplierProductCode",
                      "SupplierProductDescription" }, keys(full.Items[1].PurchaseOrderLines[1].Product))
    local resp = get(app, "/PurchaseOrders", { { "brief", "maybe" } })
    assert.are.equal(400, resp.status)
  end)

  it("shows batch and serial numbers only with serialBatch=true", function()
    local resp = get(app, "/PurchaseOrders", { { "pageSize", "1000" } })
    assert.is_nil(resp.body:find('"BatchNumbers"', 1, true))
    assert.is_nil(resp.body:find('"PendingSerialNumbers"', 1, true))
    local _, body = get(app, "/PurchaseOrders", { { "pageSize", "1000" }, { "serialBatch", "true" } })
    local seen_pending, seen_real = false, false
    for _, o in ipairs(body.Items) do
      for _, l in ipairs(o.PurchaseOrderLines) do
        assert.is_table(l.BatchNumbers)
        assert.is_table(l.PendingBatchNumbers)
        assert.is_table(l.SerialNumbers)
        assert.is_table(l.PendingSerialNumbers)
        if #l.PendingBatchNumbers + #l.PendingSerialNumbers > 0 then seen_pending = true end
        for _, b in ipairs(l.BatchNumbers) do seen_real = true; assert.is_string(b.Guid) end
        for _, s in ipairs(l.SerialNumbers) do seen_real = true; assert.is_string(s.Guid) end
      end
    end
    assert.is_true(seen_pending)
    assert.is_true(seen_real)
  end)
end)

describe("sandbox filters", function()
  local app = new_app(300)
  local everything = all_orders(app, { { "orderStatus", "Parked,Placed,Receipted,Costed,Complete,Deleted" } })
  local function count(pred)
    local n = 0
    for _, o in ipairs(everything) do if pred(o) then n = n + 1 end end
    return n
  end

  it("seeds every status, many suppliers and warehouses", function()
    local statuses, suppliers, warehouses = {}, {}, {}
    for _, o in ipairs(everything) do
      statuses[o.OrderStatus] = true
      suppliers[o.Supplier.SupplierCode] = true
      warehouses[o.Warehouse.WarehouseCode] = true
    end
    for _, s in ipairs{ "Parked", "Placed", "Costed", "Receipted", "Complete", "Deleted" } do
      assert.is_true(statuses[s], s)
    end
    local n = 0
    for _ in pairs(suppliers) do n = n + 1 end
    assert.is_true(n >= 15)
    assert.is_true(warehouses.MAIN and warehouses.WLG and true)
    assert.are.equal(300, #everything)
    assert.are.equal("PO-00000001", everything[1].OrderNumber)
    assert.are.equal("PO-00000300", everything[300].OrderNumber)
  end)

  it("lists non-deleted orders without orderStatus, deleted ones only when asked", function()
    local plain = all_orders(app)
    assert.are.equal(count(function(o) return o.OrderStatus ~= "Deleted" end), #plain)
    local deleted = all_orders(app, { { "orderStatus", "Deleted" } })
    assert.is_true(#deleted > 0)
    assert.are.equal(count(function(o) return o.OrderStatus == "Deleted" end), #deleted)
    local two = all_orders(app, { { "orderStatus", "Parked,placed" } })
    assert.are.equal(count(function(o) return o.OrderStatus == "Parked" or o.OrderStatus == "Placed" end),
      #two)
    assert.are.equal(400, get(app, "/PurchaseOrders", { { "orderStatus", "Lost" } }).status)
  end)

  it("customOrderStatus overrides orderStatus", function()
    local custom
    for _, o in ipairs(everything) do
      if o.CustomOrderStatus ~= cjson.null then custom = o.CustomOrderStatus break end
    end
    local list = all_orders(app, { { "customOrderStatus", custom }, { "orderStatus", "Parked" } })
    assert.are.equal(count(function(o) return o.CustomOrderStatus == custom end), #list)
    assert.is_true(#list > 0)
    for _, o in ipairs(list) do assert.are.equal("Placed", o.OrderStatus) end
  end)

  it("orderNumber overrides every other filter", function()
    local target = everything[5]
    local list = all_orders(app, { { "orderNumber", target.OrderNumber }, { "supplierCode", "NOBODY" },
                                   { "orderStatus", "Deleted" }, { "startDate", "2030-01-01" } })
    assert.are.equal(1, #list)
    assert.are.equal(target.Guid, list[1].Guid)
  end)

  it("supplierCode matches codes that start with it, special characters included", function()
    local acme = all_orders(app, { { "supplierCode", "ACME" } })
    assert.are.equal(count(function(o) return o.OrderStatus ~= "Deleted" and o.Supplier.SupplierCode:sub(1,
      4) == "ACME" end),
                     #acme)
    local codes = {}
    for _, o in ipairs(acme) do codes[o.Supplier.SupplierCode] = true end
    assert.is_true(codes.ACME and codes.ACME2 and true)
    for _, code in ipairs{ "SMITH & SONS", "NO#1 PARTS", "MÜLLER", "INFO@SUPPLY", "50% OFF" } do
      local list = all_orders(app, { { "supplierCode", code } })
      assert.are.equal(count(function(o)
                         return o.OrderStatus ~= "Deleted" and o.Supplier.SupplierCode == code end),
                       #list, code)
    end
  end)

  it("warehouseCode matches the warehouse", function()
    local list = all_orders(app, { { "warehouseCode", "WLG" } })
    assert.is_true(#list > 0)
    assert.are.equal(count(function(o)
                       return o.OrderStatus ~= "Deleted" and o.Warehouse.WarehouseCode == "WLG" end),
                     #list)
  end)

  it("startDate and endDate are inclusive on OrderDate", function()
    local pivot = ms(everything[150].OrderDate)
    local from = all_orders(app, { { "startDate", iso(pivot) } })
    assert.are.equal(count(function(o) return o.OrderStatus ~= "Deleted" and ms(o.OrderDate) >= pivot end),
      #from)
    local to = all_orders(app, { { "endDate", iso(pivot) } })
    assert.are.equal(count(function(o) return o.OrderStatus ~= "Deleted" and ms(o.OrderDate) <= pivot end),
      #to)
    local day = all_orders(app, { { "startDate", os.date("!%Y-%m-%d", pivot // 1000) },
                                  { "endDate", os.date("!%Y-%m-%d", pivot // 1000) } })
    assert.is_true(#day >= 1)
  end)

  it("completedAfter and completedBefore are exclusive", function()
    local done
    for _, o in ipairs(everything) do if o.OrderStatus == "Complete" then done = o break end end
    local at = ms(done.CompletedDate)
    local after = all_orders(app, { { "completedAfter", iso(at) } })
    assert.are.equal(count(function(o) return o.OrderStatus ~= "Deleted" and o.CompletedDate ~= cjson.null
                                              and ms(o.CompletedDate) > at end), #after)
    local before = all_orders(app, { { "completedBefore", iso(at) } })
    assert.are.equal(count(function(o) return o.OrderStatus ~= "Deleted" and o.CompletedDate ~= cjson.null
                                              and ms(o.CompletedDate) < at end), #before)
    for _, o in ipairs(before) do assert.are_not.equal(done.Guid, o.Guid) end
  end)

  it("modifiedSince is inclusive on LastModifiedOn", function()
    local at = ms(everything[200].LastModifiedOn)
    local list = all_orders(app, { { "modifiedSince", iso(at) } })
    assert.are.equal(count(function(o) return o.OrderStatus ~= "Deleted" and ms(o.LastModifiedOn) >= at end),
                     #list)
    assert.is_true(#list > 0)
  end)

  it("refuses dates that are not ISO, naming the filter", function()
    for _, name in ipairs{ "startDate", "endDate", "completedAfter", "completedBefore", "modifiedSince" } do
      local resp, body = get(app, "/PurchaseOrders", { { name, "31/12/2012" } })
      assert.are.equal(400, resp.status, name)
      assert.are.equal(name, body.Items[1].Field)
    end
    assert.are.equal(400, get(app, "/PurchaseOrders", { { "startDate", "2012-02-30" } }).status)
    assert.are.equal(200, get(app, "/PurchaseOrders", { { "startDate", "2012-12-31T10:00:00.123Z" } }).status)
  end)

  it("matches filter names case-insensitively and ignores unknown parameters", function()
    local a = all_orders(app, { { "SUPPLIERCODE", "ACME" } })
    local b = all_orders(app, { { "supplierCode", "ACME" }, { "colour", "blue" } })
    assert.are.equal(#a, #b)
    assert.is_true(#a < #all_orders(app))
  end)

  it("answers the seed page's example /PurchaseOrders?supplierCode=ACME&startDate=2012-12-31", function()
    local resp, body = get(app, "/PurchaseOrders", { { "supplierCode", "ACME" }, { "startDate",
      "2012-12-31" } })
    assert.are.equal(200, resp.status)
    assert.is_true(body.Pagination.NumberOfItems > 0)
    for _, o in ipairs(body.Items) do
      assert.are.equal("ACME", o.Supplier.SupplierCode:sub(1, 4))
      assert.is_true(ms(o.OrderDate) >= 1356912000000)
    end
  end)
end)

describe("sandbox reference data", function()
  local app = new_app()
  local kinds = { Suppliers = "SupplierCode", Products = "ProductCode", Warehouses = "WarehouseCode",
                  Currencies = "CurrencyCode", Taxes = "TaxCode" }

  it("serves each list three ways, paged, and each item by Guid", function()
    for kind, code in pairs(kinds) do
      local _, all = get(app, "/" .. kind, { { "pageSize", "1000" } })
      assert.is_true(#all.Items >= 3, kind)
      local _, p2 = get(app, "/" .. kind .. "/2", { { "pageSize", "2" } })
      local _, pp2 = get(app, "/" .. kind .. "/Page/2", { { "pageSize", "2" } })
      assert.are.same(p2, pp2)
      assert.are.equal(all.Items[3][code], p2.Items[1][code])
      local resp, one = get(app, "/" .. kind .. "/" .. all.Items[2].Guid)
      assert.are.equal(200, resp.status)
      assert.are.equal(all.Items[2][code], one[code])
      assert.are.equal(404, get(app, "/" .. kind .. "/00000000-0000-4000-8000-000000000000").status)
      assert.are.equal(404, get(app, "/" .. kind .. "/junk").status)
      assert.are.equal(400, get(app, "/" .. kind, { { "pageSize", "0" } }).status)
    end
  end)

  it("has the currencies, taxes and warehouses a client expects", function()
    local resp, cur = get(app, "/Currencies")
    local codes = {}
    for _, c in ipairs(cur.Items) do codes[c.CurrencyCode] = c.DefaultBuyRate end
    assert.are.equal(1, codes.NZD)
    assert.is_true(codes.AUD and codes.USD and codes.GBP and codes.EUR and true)
    assert.truthy(resp.body:find('"DefaultBuyRate":0.915000,', 1, true))
    -- The Taxes page's shape: no default flag, NONE once for expenses and
    -- once for revenue, G.S.T. at 0.150000.
    local _, taxes = get(app, "/Taxes")
    local nones = {}
    for _, t in ipairs(taxes.Items) do
      assert.is_nil(t.DefaultPurchaseTax)
      if t.TaxCode == "NONE" then nones[#nones + 1] = t end
    end
    assert.are.equal(2, #nones)
    assert.are_not.equal(nones[1].Guid, nones[2].Guid)
    assert.are_not.equal(nones[1].CanApplyToExpenses, nones[2].CanApplyToExpenses)
    assert.are_not.equal(nones[1].CanApplyToRevenue, nones[2].CanApplyToRevenue)
    local _, wh = get(app, "/Warehouses")
    assert.is_true(#wh.Items >= 3 and #wh.Items <= 5)
    assert.are.equal("MAIN", wh.Items[1].WarehouseCode)
  end)

  it("has suppliers with special-character codes, each with a currency", function()
    local _, sup = get(app, "/Suppliers", { { "pageSize", "1000" } })
    assert.is_true(#sup.Items >= 20)
    local codes = {}
    for _, s in ipairs(sup.Items) do
      codes[s.SupplierCode] = s
      assert.is_string(s.Currency.CurrencyCode)
    end
    for _, code in ipairs{ "ACME", "SMITH & SONS", "A+B TRADING", "NO#1 PARTS", "MÜLLER", "INFO@SUPPLY",
      "BLUE SKY" } do
      assert.is_table(codes[code], code)
    end
    assert.are.equal("EUR", codes["MÜLLER"].Currency.CurrencyCode)
    assert.are.equal(true, codes["MÜLLER"].Taxable)
    assert.are.equal(0.125, codes["MÜLLER"].TaxRate)
    assert.are.equal(false, codes["SMITH & SONS"].Taxable)
    assert.are.equal(cjson.null, codes["A+B TRADING"].TaxRate)
  end)

  it("has products with base units, batches, serials and purchase taxes; orders in purchase units", function()
    local _, prods = get(app, "/Products", { { "pageSize", "1000" } })
    assert.is_true(#prods.Items >= 50)
    local batch, serial, taxed, untaxed, unset = 0, 0, 0, 0, 0
    for _, p in ipairs(prods.Items) do
      assert.is_string(p.UnitOfMeasure.Name)
      if p.IsBatchTracked then batch = batch + 1 end
      if p.IsSerialized then serial = serial + 1 end
      if type(p.XeroTaxRate) == "number" and p.XeroTaxRate > 0 then taxed = taxed + 1 end
      if p.TaxablePurchase == false then untaxed = untaxed + 1 end
      if p.XeroTaxCode == cjson.null and p.XeroTaxRate == cjson.null then unset = unset + 1 end
    end
    assert.is_true(batch > 0 and serial > 0 and taxed > 0 and untaxed > 0 and unset > 0)
    -- Purchase units are not a field of the recorded products; orders show them.
    local multi = false
    for _, o in ipairs(all_orders(app)) do
      for _, l in ipairs(o.PurchaseOrderLines) do
        if l.OrderQuantity ~= l.PurchaseUnitOrderQuantity then multi = true end
      end
    end
    assert.is_true(multi)
  end)
end)

describe("sandbox determinism and state", function()
  it("gives identical listings for the same seed and different ones for another", function()
    local a, b, c = new_app(80), new_app(80), new_app(81)
    local ra = get(a, "/PurchaseOrders", { { "pageSize", "1000" }, { "brief", "false" } })
    local rb = get(b, "/PurchaseOrders", { { "pageSize", "1000" }, { "brief", "false" } })
    local rc = get(c, "/PurchaseOrders", { { "pageSize", "1000" }, { "brief", "false" } })
    assert.are.equal(ra.body, rb.body)
    assert.are_not.equal(ra.body, rc.body)
    assert.are.equal(get(a, "/Products", { { "pageSize", "1000" } }).body, get(b, "/Products",
      { { "pageSize", "1000" } }).body)
  end)

  it("is not changed by other code's use of math.random", function()
    math.randomseed(1)
    local a = new_app(50)
    math.randomseed(2)
    for _ = 1, 10 do math.random() end
    local b = new_app(50)
    assert.are.equal(get(a, "/PurchaseOrders").body, get(b, "/PurchaseOrders").body)
  end)

  it("round-trips its state through dump and load", function()
    local a = new_app(40)
    local _, list = get(a, "/PurchaseOrders", { { "orderStatus", "Placed" } })
    local placed = list.Items[1]
    assert.are.equal(200, call(a, "POST", "/PurchaseOrders/" .. placed.Guid .. "/Receipt").status)
    local parked
    _, list = get(a, "/PurchaseOrders", { { "orderStatus", "Parked" } })
    parked = list.Items[1]
    assert.are.equal(200, call(a, "DELETE", "/PurchaseOrders/" .. parked.Guid).status)
    local text = a:dump()
    assert.is_string(text)
    local b = new_app(40)
    b:load(text)
    local all = { { "pageSize", "1000" }, { "orderStatus",
      "Parked,Placed,Receipted,Costed,Complete,Deleted" },
                  { "serialBatch", "true" } }
    assert.are.equal(get(a, "/PurchaseOrders", all).body, get(b, "/PurchaseOrders", all).body)
    assert.are.same(cjson.decode(a:dump()), cjson.decode(b:dump()))
    -- Loading into an app made from another seed takes the state's seed.
    local c = new_app(7)
    c:load(text)
    assert.are.equal(get(a, "/PurchaseOrders", all).body, get(c, "/PurchaseOrders", all).body)
    assert.are.equal(get(a, "/Suppliers").body, get(c, "/Suppliers").body)
  end)

  it("refuses a state that is not its own", function()
    local a = new_app(5)
    assert.has_error(function() a:load("not json") end)
    assert.has_error(function() a:load('{"format":99}') end)
    assert.has_error(function() a:load('{"format":1,"seed":5}') end)
  end)

  it("seeds 20000 orders", function()
    local big = sandbox.new{ seed = 20000, credentials = { [ID] = KEY } }
    local _, body = get(big, "/PurchaseOrders/Page/20", { { "pageSize", "1000" }, { "orderStatus",
      "Parked,Placed,Receipted,Costed,Complete,Deleted" } })
    assert.are.equal(20000, body.Pagination.NumberOfItems)
    assert.are.equal("PO-00020000", body.Items[#body.Items].OrderNumber)
  end)
end)
