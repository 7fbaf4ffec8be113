-- Replay of the live API's recorded answers (spec/fixtures/recorded/, see its
-- INDEX.md): a stub on loopback answers each recorded request with the
-- recorded body, status and headers (Content-Length computed from the file),
-- and the library reads every file through its public calls. Each decoded
-- value is compared with the file's own text, read by an independent reader
-- that keeps every number as the digits written: numbers keep their exact
-- decimal value at every scale the recordings use, .NET dates in date fields
-- become ISO 8601, nulls are dropped, and every other string comes back
-- exactly as sent.
local stub = require "support.stub_control"
local recorded = require "support.recorded"
local unleashed = require "unleashed"
local decimal = require "unleashed.decimal"
local cjson = require("cjson").new()

local ID, KEY = "replay-spec-id", "cmVwbGF5LXNwZWMta2V5"
local INDEX = recorded.index()

-- ---- the oracle: the file's text, numbers kept as written --------------------

local NUMBER = "\1"   -- the key of the table that stands for a number token

-- Every number token outside strings becomes {"\u0001":"<token>"}, so that
-- cjson reads the rest and the digits stay as the file wrote them.
local function oracle(text)
  local out, i = {}, 1
  while i <= #text do
    local c = text:sub(i, i)
    if c == '"' then
      local j = i + 1
      while text:sub(j, j) ~= '"' do j = j + (text:sub(j, j) == "\\" and 2 or 1) end
      out[#out + 1] = text:sub(i, j)
      i = j + 1
    elseif c:find("[%-%d]") then
      local tok = text:match("^%-?%d+%.?%d*[eE]?[%+%-]?%d*", i)
      out[#out + 1] = '{"\\u0001":"' .. tok .. '"}'
      i = i + #tok
    else
      out[#out + 1] = c
      i = i + 1
    end
  end
  return cjson.decode(table.concat(out))
end

local function is_date_field(key)
  return type(key) == "string" and (key:find("Date$") or key:find("On$")) ~= nil
end

-- ISO 8601 UTC with milliseconds, as the library writes a .NET date.
local function iso(ms)
  return os.date("!%Y-%m-%dT%H:%M:%S", ms // 1000) .. (".%03dZ"):format(ms % 1000)
end

local function scale_of(tok)
  local frac = tok:match("%.(%d+)")
  return frac and #frac or 0
end

local function new_stats() return { numbers = 0, dates = 0, strings = 0, nulls = 0, scales = {} } end

-- Compares the library's value with the oracle's, everywhere below `path`.
local function compare(got, want, key, path, stats)
  if want == cjson.null then
    stats.nulls = stats.nulls + 1
    if type(key) == "string" then
      assert(got == nil, path .. ": a null member must read as nil, got " .. tostring(got))
    else
      assert(got == unleashed.null, path .. ": a null in an array must stay null")
    end
  elseif type(want) == "table" and want[NUMBER] then
    local tok = want[NUMBER]
    assert(type(got) == "number", path .. ": expected the number " .. tok .. ", got " .. tostring(got))
    assert(decimal.cmp(decimal.parse(tok), decimal.from_number(got)) == 0,
      path .. ": " .. tok .. " read as " .. decimal.shortest(got))
    stats.numbers = stats.numbers + 1
    stats.scales[scale_of(tok)] = true
  elseif type(want) == "table" then
    assert(type(got) == "table", path .. ": expected a table, got " .. tostring(got))
    for k, v in pairs(want) do compare(got[k], v, k, path .. "." .. tostring(k), stats) end
    for k in pairs(got) do
      assert(want[k] ~= nil, path .. ": a member the body does not have: " .. tostring(k))
    end
  elseif type(want) == "string" then
    local ms = want:match("^/Date%((%d+)%)/$")
    if ms and is_date_field(key) then
      assert.are.equal(iso(math.tointeger(ms)), got, path)
      stats.dates = stats.dates + 1
    else
      assert(not want:find("^/Date%("), path .. ": a .NET date outside a date field or in another form")
      assert(got == want, path .. ": " .. ("%q"):format(want) .. " read as " .. ("%q"):format(tostring(got)))
      stats.strings = stats.strings + 1
    end
  else
    assert(got == want, path .. ": " .. tostring(want) .. " read as " .. tostring(got))
  end
end

-- ---- the stub ---------------------------------------------------------------

-- A Lua literal for a string, number, boolean or table of them.
local function literal(v)
  if type(v) == "table" then
    local parts = {}
    for k, x in pairs(v) do parts[#parts + 1] = "[" .. literal(k) .. "]=" .. literal(x) end
    return "{" .. table.concat(parts, ",") .. "}"
  end
  return type(v) == "string" and ("%q"):format(v) or tostring(v)
end

-- One route per recorded file, from its INDEX.md request: method, path (as
-- recorded, case and all) and query parameters ("..": any value). `extra`:
-- routes of answers made for a spec ({ method, path, query, status, body }).
local function routes(extra)
  local list = {}
  for name, entry in pairs(INDEX) do
    local method, target = entry.request:match("^(%u+) (%S+)$")
    local path, q = target:match("^([^?]*)%??(.*)$")
    local query = {}
    for k, v in q:gmatch("([^&=]+)=([^&]*)") do query[k] = v end
    list[#list + 1] = { file = name, method = method, path = path, query = query,
                        status = entry.status or 200, headers = entry.headers, body = recorded.read(name) }
  end
  for _, r in ipairs(extra or {}) do
    list[#list + 1] = { method = r.method or "GET", path = r.path, query = r.query or {},
                        status = r.status or 200, body = r.body,
                        headers = r.headers or { ["Content-Type"] = "application/json; charset=utf-8" } }
  end
  return list
end

local function stub_script(extra)
  return ([=[
local ROUTES = %s
local function unescape(s)
  return (s:gsub("+", " "):gsub("%%%%(%%x%%x)", function(h) return string.char(tonumber(h, 16)) end))
end
return { respond = function(req)
  local query = {}
  for k, v in (req.query or ""):gmatch("([^&=]+)=([^&]*)") do query[unescape(k)] = unescape(v) end
  for _, r in ipairs(ROUTES) do
    local ok = r.method == req.method and r.path == req.path
    for k, v in pairs(r.query) do
      if ok and v ~= ".." and query[k] ~= v then ok = false end
      if ok and query[k] == nil then ok = false end
    end
    if ok then return { status = r.status, headers = r.headers, body = r.body } end
  end
  return { status = 404, headers = { ["Content-Type"] = "application/json; charset=utf-8" },
           body = '{"Description":"no recorded answer for ' .. req.method .. ' ' .. req.path .. '"}' }
end }
]=]):format(literal(routes(extra)))
end

-- ---- answers made for the spec (no recording has them) -----------------------

local CRAFTED_GUID = "0badc0de-0000-4000-8000-000000000001"
local PAGE = '{"Pagination":{"NumberOfItems":1,"PageSize":200,"PageNumber":1,"NumberOfPages":1},"Items":[%s]}'

-- The recorded 2014 order numbers' empty envelope, served for purchase orders.
local EMPTY = recorded.read("salesorders_empty_result_2014.json")

local ERROR_BODIES = {
  items = '{"Items":[{"Field":"PurchaseOrderLines[0].OrderQuantity","Description":"Must be positive",'
    .. '"ErrorCode":"E1004"},{"Field":"Supplier","Description":"Unknown supplier"}]}',
  upper = '{"Description":"The order is already complete","ErrorCode":"E2001"}',
  lower = '{"description":"Invalid api-auth-signature","field":"signature"}',
  code_only = '{"Items":[{"ErrorCode":"E3002"}]}',
}

local EXTRA = {
  { path = "/PurchaseOrders", query = { orderNumber = "44112233" }, body = EMPTY },
  -- A .NET date in a member that is not a date field, a date field holding
  -- locale text, a non-date string that reads like a date.
  { path = "/SalesShipments", query = { shipmentStatus = "crafted-dates" }, body = PAGE:format(
    '{"Guid":"' .. CRAFTED_GUID .. '","Comments":"\\/Date(1700000000000)\\/",'
    .. '"Reference":"/Date(1700000000000)/","CreatedOn":"12/10/2014 8:08:10 p.m.",'
    .. '"LastModifiedOn":"\\/Date(1413283318353)\\/","DispatchDate":"not a date"}') },
  -- A lone UTF-16 surrogate in one string of a page.
  { path = "/SalesShipments", query = { shipmentStatus = "crafted-surrogate" }, body = PAGE:format(
    '{"Guid":"' .. CRAFTED_GUID .. '","Comments":"a\\ud800b","Other":"\\udc00","Pair":"\\ud83d\\ude00"}') },
}
-- A purchase order create answered with the recorded XML 201, and the order
-- as a GET by its Guid then finds it.
local G_PO = "0badc0de-0000-4000-8000-000000000002"
local PO_LINE = { Product = { ProductCode = "SPREE-T-SHIRT641053" }, OrderQuantity = 2, UnitPrice = 5,
                  LineTax = 0 }
EXTRA[#EXTRA + 1] = { path = "/Suppliers", query = { supplierCode = "SUP1" }, body = PAGE:format(
  '{"Guid":"0badc0de-0000-4000-8000-000000000003","SupplierCode":"SUP1","SupplierName":"Supplier One",'
  .. '"Taxable":true,"TaxRate":0.150000}') }
EXTRA[#EXTRA + 1] = { method = "POST", path = "/PurchaseOrders/" .. G_PO, status = 201,
  headers = INDEX["salesorder_create_201_2014.xml"].headers,
  body = recorded.read("salesorder_create_201_2014.xml") }
EXTRA[#EXTRA + 1] = { path = "/PurchaseOrders/" .. G_PO, body = '{"Guid":"' .. G_PO .. '",'
  .. '"OrderNumber":"PO-00000009","OrderStatus":"Parked","Supplier":{"SupplierCode":"SUP1"},'
  .. '"SubTotal":10.000,"TaxTotal":0.000,"Total":10.000,'
  .. '"PurchaseOrderLines":[{"LineNumber":1,"Product":{"ProductCode":"SPREE-T-SHIRT641053"},'
  .. '"OrderQuantity":2.0000,"UnitPrice":5.0000,"LineTotal":10.00000000,"LineTax":0.000}]}' }
for name, body in pairs(ERROR_BODIES) do
  EXTRA[#EXTRA + 1] = { path = "/Errors/" .. name, status = 400, body = body }
end

-- ---- the specs ----------------------------------------------------------------

describe("replaying the live API's recorded answers", function()
  local s, client

  setup(function()
    s = stub.start(stub_script(EXTRA))
    client = unleashed.new{ api_id = ID, api_key = KEY, base_url = s.url, max_retries = 0, timeout = 10 }
  end)

  teardown(function()
    if client then client:close() end
    if s then s:stop() end
  end)

  local function requests() return #s:requests() end

  -- How the library reads each recording: a listing, or one request.
  local G_CUSTOMER = "4d2dbc7b-e2d7-4034-b94d-2554988ea388"
  local G_CUSTOMER_NEW = "c7b96023-f6ae-41d2-8398-b05707326e0d"
  local G_PRODUCT = "eed6db73-81af-49f0-ae17-23d8c52ef0a4"
  local G_ADJUSTMENT = "f96626e2-cde4-43dc-8f35-192b9b2c4ff9"
  local G_ORDER = "f96626e2-cde4-43dc-8f37-192b9b2c4ff0"
  local function list(resource, query) return { list = resource, query = query } end
  local function call(method, path, query, body)
    return { method = method, path = path, query = query, body = body }
  end
  local READS = {
    ["products_modified_since_2014.json"] = list("products", { modifiedSince = "2014-10-13T00:00:00" }),
    ["products_filter_by_code_2014.json"] = list("Products", { productCode = "SPREE-T-SHIRT641053" }),
    ["products_page_2021.json"] = list("Products", { ProductGroup = "retail", includeAttributes = true }),
    ["salesorders_modified_since_2014.json"] = list("SalesOrders", { modifiedSince = "2014-10-01T00:00:00" }),
    ["salesorders_empty_result_2014.json"] = list("SalesOrders", { orderNumber = "44112233" }),
    ["salesorders_by_number_2018.json"] = list("SalesOrders", { orderNumber = "SO-00000202" }),
    ["salesorders_list_2018.json"] = list("SalesOrders",
      { startDate = "2018-07-01", endDate = "2018-07-31" }),
    ["customers_modified_since_2014.json"] = list("customers", { modifiedSince = "2014-10-01T00:00:00" }),
    ["warehouses_2014.json"] = list("Warehouses"),
    ["salesshipments_dispatched_2014.json"] = list("SalesShipments",
      { modifiedSince = "2014-09-11T00:00:00", shipmentStatus = "dispatched" }),
    ["stockonhand_modified_since_2014.json"] = list("StockOnHand", { modifiedSince = "2014-10-08T00:00:00" }),
    ["batchnumbers_2018.json"] = list("BatchNumbers", { ProductCode = "MAYACL", WarehouseCode = "MAIN" }),
    -- Page 1 of 2 (page 2 was not recorded): read as one request.
    ["stockadjustments_page1_2021.json"] = call("GET", "/StockAdjustments",
      { adjustmentDate = "2021-08-09" }),
    ["customer_get_by_guid_2014.json"] = call("GET", "/Customers/" .. G_CUSTOMER),
    ["customer_post_201_2014.json"] = call("POST", "/Customers/" .. G_CUSTOMER_NEW,
      { customerCode = "test2@example.com" },
      { CustomerCode = "test2@example.com", CustomerName = "test ", Guid = G_CUSTOMER_NEW }),
    ["product_post_existing_guid_201_2014.json"] = call("POST", "/Products/" .. G_PRODUCT,
      { productCode = "9160" },
      { ProductCode = "9160", ProductDescription = "Example", Guid = G_PRODUCT }),
    ["stockadjustment_create_201_2014.json"] = call("POST", "/StockAdjustments/" .. G_ADJUSTMENT,
      { productCode = "SPREE-T-SHIRT641053" },
      { Guid = G_ADJUSTMENT, Warehouse = { WarehouseCode = "W1" },
        StockAdjustmentLines = { { Product = { ProductCode = "SPREE-T-SHIRT641053" }, NewQuantity = 1,
                                   NewActualValue = 0 } } }),
    ["salesorder_create_201_2014.xml"] = call("POST", "/SalesOrders/" .. G_ORDER, { productCode = "9160" },
      { Guid = G_ORDER, Total = 390 }),
  }

  -- Reads one recording; returns the decoded value, the oracle and the stats.
  local function replay(name)
    local how = assert(READS[name], "no read for " .. name)
    local want = name:find("%.json$") and oracle(recorded.read(name))
    local stats = new_stats()
    if how.list then
      local items = client:list(how.list, how.query)
      assert.are.equal(#want.Items, #items, name)
      for i, item in ipairs(items) do
        compare(item, want.Items[i], i, name .. ".Items[" .. i .. "]", stats)
      end
      return items, want, stats
    end
    local v, res = client:request(how.method, how.path, { query = how.query, body = how.body })
    assert.are.equal(INDEX[name].status or 200, res.status, name)
    compare(v, want, nil, name, stats)
    return v, want, stats
  end

  it("has a read for every file the index lists, and a file for every entry", function()
    local listed = 0
    for name in pairs(INDEX) do
      listed = listed + 1
      assert.truthy(READS[name], "no read for " .. name)
      assert.truthy(#recorded.read(name) > 0, name)
    end
    local present = 0
    for f in io.popen("ls " .. recorded.dir):lines() do
      if f:find("%.json$") or f:find("%.xml$") then
        present = present + 1
        assert.truthy(INDEX[f], f .. " is not in INDEX.md")
      end
    end
    assert.are.equal(listed, present)
    assert.are.equal(18, listed)
  end)

  it("decodes every JSON file: exact numbers at every scale, ISO dates, no nulls, strings as sent", function()
    local scales, totals = {}, new_stats()
    for name in pairs(INDEX) do
      if name:find("%.json$") then
        local _, _, stats = replay(name)
        for k in pairs(totals) do
          if k ~= "scales" then totals[k] = totals[k] + stats[k] end
        end
        for sc in pairs(stats.scales) do scales[sc] = true end
      end
    end
    -- Every scale INDEX.md names: 0 (1, 0), 1 (20.0 -> none), 2 (100.00),
    -- 3 (totals), 4 (prices), 6 (rates), 8 (LineTotal), 14 (landed cost).
    for _, sc in ipairs{ 0, 2, 3, 4, 6, 8, 14 } do
      assert.is_true(scales[sc] == true, "no number with " .. sc .. " places was compared")
    end
    assert.is_true(totals.numbers > 400, "numbers compared: " .. totals.numbers)
    assert.is_true(totals.dates > 150, "dates compared: " .. totals.dates)
    assert.is_true(totals.nulls > 100, "nulls compared: " .. totals.nulls)
    assert.is_true(totals.strings > 500, "strings compared: " .. totals.strings)
  end)

  it("keeps the values the recordings single out", function()
    local orders = client:list("SalesOrders", { startDate = "2018-07-01", endDate = "2018-07-31" })
    local landed
    for _, o in ipairs(orders) do
      for _, l in ipairs(o.SalesOrderLines or {}) do
        if l.AverageLandedPriceAtTimeOfSale and l.AverageLandedPriceAtTimeOfSale > 3.6686
           and l.AverageLandedPriceAtTimeOfSale < 3.6687 then
          landed = l.AverageLandedPriceAtTimeOfSale
        end
      end
    end
    assert.are.equal("3.66860666666667", decimal.shortest(assert(landed, "no landed cost 3.6686...")))
    assert.are.equal("3.66860666666667", unleashed.json.encode(landed))      -- sent back as read
    local by_number = client:list("SalesOrders", { orderNumber = "SO-00000202" })[1]
    local charge
    for _, l in ipairs(by_number.SalesOrderLines) do
      if l.LineType == "Charge" then charge = l end
    end
    assert.are.equal(100, assert(charge).UnitPrice)
    assert.are.equal("ECZROUTPUT", charge.LineTaxCode)
    assert.is_nil(charge.ProductCode)
    local adj = client:request("GET", "/StockAdjustments", { query = { adjustmentDate = "2021-08-09" } })
    assert.are.same({ 257, 200, 1, 2 }, { adj.Pagination.NumberOfItems, adj.Pagination.PageSize,
                                         adj.Pagination.PageNumber, adj.Pagination.NumberOfPages })
    assert.are.equal("integer", math.type(adj.Pagination.NumberOfItems))
    local text = cjson.encode(adj.Items)
    assert.truthy(text:find("'", 1, true), "\\u0027 did not become '")
    assert.truthy(text:find("&", 1, true), "\\u0026 did not become &")
    local negative = false
    for _, a in ipairs(adj.Items) do
      for _, l in ipairs(a.StockAdjustmentLines or {}) do
        if l.NewQuantity == -55 then negative = true end
      end
    end
    assert.is_true(negative, "NewQuantity -55.0000")
    local street = false
    for _, a in ipairs(adj.Items) do
      local w = a.Warehouse
      if type(w) == "table" and w.AddressLine1 == "1/2 Example Street" then street = true end
    end
    assert.is_true(street, "the unescaped / in an address")
    local products = client:list("Products", { ProductGroup = "retail", includeAttributes = true })
    local birds = false
    for _, p in ipairs(products) do
      if (p.ProductDescription or ""):find("Bird's", 1, true) then birds = true end
    end
    assert.is_true(birds, "Bird\\u0027s")
    local shipment = client:list("SalesShipments",
      { modifiedSince = "2014-09-11T00:00:00", shipmentStatus = "dispatched" })[1]
    assert.are.equal("12/10/2014 8:08:10 p.m.", shipment.CreatedOn)
  end)

  it("reads the empty envelope with one request and yields nothing", function()
    local before = requests()
    assert.are.same({}, client:list("SalesOrders", { orderNumber = "44112233" }))
    assert.are.equal(before + 1, requests())
    before = requests()
    local n = 0
    for _ in client.purchase_orders:each{ orderNumber = "44112233" } do n = n + 1 end
    assert.are.equal(0, n)
    assert.are.equal(before + 1, requests())
    -- get by order number: one request, and "not found".
    before = requests()
    local ok, e = pcall(client.purchase_orders.get, client.purchase_orders, "44112233")
    assert.is_false(ok)
    assert.is_true(unleashed.Error.is(e, "not_found"), tostring(e))
    assert.are.equal(before + 1, requests())
  end)

  it("takes a create answered 201 as a success holding what the server returned", function()
    for _, name in ipairs{ "customer_post_201_2014.json", "product_post_existing_guid_201_2014.json",
                           "stockadjustment_create_201_2014.json" } do
      local v = replay(name)
      assert.are.equal(201, INDEX[name].status)
      assert.are.equal("table", type(v), name)
    end
    local reqs = s:requests()
    local last = reqs[#reqs]
    assert.are.equal("POST", last.method)
    assert.are.equal("/StockAdjustments/" .. G_ADJUSTMENT, last.path)
    -- What the server stored, not what was sent.
    local customer = replay("customer_post_201_2014.json")
    assert.are.equal("test ", customer.CustomerName)
    local product = replay("product_post_existing_guid_201_2014.json")
    assert.are.equal("something", product.ProductDescription)          -- "Example" was sent
    assert.are.equal("owner.user@example.com", product.CreatedBy)      -- not sent at all
    assert.are.equal(iso(1413766150817), product.LastModifiedOn)
    local adj = replay("stockadjustment_create_201_2014.json")
    assert.are.equal("Parked", adj.Status)
  end)

  it("refuses a 201 whose body is XML as a protocol error that keeps the status", function()
    -- The recorded XML answer followed a request that asked for XML; the
    -- library asks for JSON, so XML in a 2xx is a protocol error: the
    -- status says the server accepted the create, and nothing is guessed.
    local how = READS["salesorder_create_201_2014.xml"]
    local before = requests()
    local ok, e = pcall(client.request, client, how.method, how.path, { query = how.query, body = how.body })
    assert.is_false(ok)
    assert.is_true(unleashed.Error.is(e, "protocol"), tostring(e))
    assert.are.equal(201, e.status)
    assert.are.equal("POST", e.method)
    assert.are.equal(how.path, e.path)
    assert.matches("not JSON", tostring(e))
    assert.is_true(unleashed.Error.is_ambiguous(e))
    local reqs = s:requests()
    assert.are.equal(before + 1, #reqs)                  -- not sent twice
    assert.are.equal("application/json", reqs[#reqs].headers.accept)
  end)

  it("finds the order after a purchase order create answered 201 in XML", function()
    -- The body is no order the library can read; the create reads the
    -- order back by its Guid, once, instead of failing or sending again.
    local before = #s:requests()
    local po = client.purchase_orders:create{ Guid = G_PO, OrderStatus = "Parked",
      Supplier = { SupplierCode = "SUP1" }, PurchaseOrderLines = { PO_LINE } }
    assert.are.equal("PO-00000009", po.OrderNumber)
    assert.are.equal(10, po.Total)
    local posts, gets = 0, 0
    for i, r in ipairs(s:requests()) do
      if i > before and r.path == "/PurchaseOrders/" .. G_PO then
        if r.method == "POST" then posts = posts + 1 else gets = gets + 1 end
      end
    end
    assert.are.same({ 1, 1 }, { posts, gets })
  end)

  it("reads every error body shape: Items[].Description, Description, description, ErrorCode", function()
    local function fail(name)
      local ok, e = pcall(client.request, client, "GET", "/Errors/" .. name)
      assert.is_false(ok)
      assert.is_true(unleashed.Error.is(e, "validation"), tostring(e))
      assert.are.equal(400, e.status)
      return e
    end
    local e = fail("items")
    assert.are.same({ field = "PurchaseOrderLines[1].OrderQuantity", message = "Must be positive",
                      code = "E1004" }, e.details[1])
    assert.are.same({ field = "Supplier", message = "Unknown supplier" }, e.details[2])
    e = fail("upper")
    assert.are.same({ { message = "The order is already complete", code = "E2001" } }, e.details)
    e = fail("lower")
    assert.are.same({ { field = "signature", message = "Invalid api-auth-signature" } }, e.details)
    e = fail("code_only")
    assert.are.equal("E3002", e.details[1].code)
    assert.matches("E3002", tostring(e))
  end)
end)

-- The decoder's rules for dates and lone surrogates, on answers made for the
-- purpose (the recordings have no such string).
describe("replay: dates only in date fields, and lone surrogates", function()
  local s, client

  setup(function()
    s = stub.start(stub_script(EXTRA))
    client = unleashed.new{ api_id = ID, api_key = KEY, base_url = s.url, max_retries = 0, timeout = 10 }
  end)

  teardown(function()
    if client then client:close() end
    if s then s:stop() end
  end)

  it("turns .NET dates into ISO only in members named ...Date or ...On", function()
    local item = client:list("SalesShipments", { shipmentStatus = "crafted-dates" })[1]
    assert.are.equal("/Date(1700000000000)/", item.Comments)
    assert.are.equal("/Date(1700000000000)/", item.Reference)
    assert.are.equal(iso(1413283318353), item.LastModifiedOn)
  end)

  it("leaves a date field that holds no .NET date as sent, and reads the page", function()
    local item = client:list("SalesShipments", { shipmentStatus = "crafted-dates" })[1]
    assert.are.equal("12/10/2014 8:08:10 p.m.", item.CreatedOn)
    assert.are.equal("not a date", item.DispatchDate)
  end)

  it("decodes a lone surrogate to U+FFFD and keeps the rest of the page", function()
    local item = client:list("SalesShipments", { shipmentStatus = "crafted-surrogate" })[1]
    assert.are.equal(CRAFTED_GUID, item.Guid)
    assert.are.equal("a\u{FFFD}b", item.Comments)
    assert.are.equal("\u{FFFD}", item.Other)
    assert.are.equal("\u{1F600}", item.Pair)
  end)
end)
