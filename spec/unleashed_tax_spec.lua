-- Tax arithmetic on the fields the live API has: the seed's hierarchy
-- (product, order, supplier, default) read from XeroTaxCode/XeroTaxRate/
-- TaxablePurchase, the order's TaxCode/Tax/TaxRate, the supplier's
-- Taxable/TaxRate and the client's default_purchase_tax; a line nothing
-- prices refused before sending; look-ups cached per client; unknown
-- products and suppliers reported together; after a create the object is
-- what the server returned. Against a stub serving recorded answers
-- (spec/fixtures/recorded, copies of ../shared/recorded) and against the
-- sandbox.
local stub = require "support.stub_control"
local sandbox = require "support.sandbox"
local unleashed = require "unleashed"
local cjson = require "cjson"
local files = require "support.files"

local ZERO_GUID = "00000000-0000-0000-0000-000000000000"

local recorded = require("support.recorded").read
local ROOT = os.getenv("UNLEASHED_ROOT") or "."

local function round2(x) return unleashed.round(x, 2) end

-- ---- a stub with reference data in the recorded shapes -----------------------------
-- Products: the recorded answers themselves (2021: ALL25G and others with
-- XeroTaxCode "NONE", XeroTaxRate 0.000000, TaxablePurchase false; 2014:
-- "1111" with every tax field null, "123" TaxablePurchase true and no code).
-- Taxes: the Taxes page's example (NONE for expenses and for revenue,
-- G.S.T. at 0.150000) with an obsolete G.S.T. at 12.5% listed first.
-- Suppliers (never recorded): Taxable and TaxRate.
local TAXES = [[{"Pagination":{"NumberOfItems":5,"PageSize":1000,"PageNumber":1,"NumberOfPages":1},"Items":[
{"TaxCode":"G.S.T.","Description":"GST before 2010","TaxRate":0.125000,"CanApplyToExpenses":true,
 "CanApplyToRevenue":true,"Obsolete":true,"Guid":"11111111-0000-4000-8000-000000000001",
 "LastModifiedOn":null},
{"TaxCode":"NONE","Description":"No Tax","TaxRate":0.000000,"CanApplyToExpenses":false,
 "CanApplyToRevenue":true,"Obsolete":false,"Guid":"11111111-0000-4000-8000-000000000002",
 "LastModifiedOn":"\/Date(1413283318353)\/"},
{"TaxCode":"NONE","Description":"No Tax","TaxRate":0.000000,"CanApplyToExpenses":true,
 "CanApplyToRevenue":false,"Obsolete":false,"Guid":"11111111-0000-4000-8000-000000000003",
 "LastModifiedOn":"\/Date(1413283318353)\/"},
{"TaxCode":"G.S.T.","Description":"Goods and Services Tax","TaxRate":0.150000,"CanApplyToExpenses":true,
 "CanApplyToRevenue":true,"Obsolete":false,"Guid":"11111111-0000-4000-8000-000000000004",
 "LastModifiedOn":"\/Date(1413283318353)\/"},
{"TaxCode":"EXEMPTOUTPUT","Description":"Exempt","TaxRate":0.000000,"CanApplyToExpenses":false,
 "CanApplyToRevenue":true,"Obsolete":false,"Guid":"11111111-0000-4000-8000-000000000005",
 "LastModifiedOn":null}]}]]

-- A product of no recording: TaxablePurchase false with code and rate null
-- (any of the three may be null): no tax, whatever else would apply.
local UNTAXED_PRODUCT = '{"Pagination":{"NumberOfItems":1,"PageSize":1000,"PageNumber":1,"NumberOfPages":1},'
  .. '"Items":[{"ProductCode":"UNTAXED-1","ProductDescription":"Untaxed","XeroTaxCode":null,'
  .. '"XeroTaxRate":null,"TaxablePurchase":false,"Guid":"33333333-0000-4000-8000-000000000001"}]}'

local SUPPLIERS = {
  SUP = { Taxable = true, TaxRate = "0.090000" },
  NORATE = { Taxable = true, TaxRate = "null" },
  UNTAXED = { Taxable = false, TaxRate = "null" },
}

local function stub_script()
  local codes2021, codes2014 = {}, {}
  for code in recorded("products_page_2021.json"):gmatch('"ProductCode":"([^"]+)"') do
    codes2021[code] = true
  end
  for code in recorded("products_modified_since_2014.json"):gmatch('"ProductCode":"([^"]+)"') do
    codes2014[code] = true
  end
  local suppliers = {}
  for code, s in pairs(SUPPLIERS) do
    suppliers[code] = ('{"Pagination":{"NumberOfItems":1,"PageSize":1000,"PageNumber":1,"NumberOfPages":1},'
      .. '"Items":[{"Guid":"22222222-0000-4000-8000-%012d","SupplierCode":"%s","SupplierName":"%s",'
      .. '"Taxable":%s,"TaxRate":%s}]}'):format(#code, code, code, tostring(s.Taxable), s.TaxRate)
  end
  return ([=[
local cjson = require "cjson"
local json = { ["Content-Type"] = "application/json; charset=utf-8" }
local P2021, P2014, EMPTY, TAXES, UNTAXED = %q, %q, %q, %q, %q
local codes2021, codes2014, suppliers = %s, %s, %s
local function param(q, name)
  local v = q:match("[?&]?" .. name .. "=([^&]*)")
  return v and v:gsub("%%%%(%%x%%x)", function(h) return string.char(tonumber(h, 16)) end)
end
return { respond = function(req)
  local path, q = req.path, req.query or ""
  if req.method == "GET" and path == "/Taxes" then return { status = 200, headers = json, body = TAXES } end
  if req.method == "GET" and path == "/Products" then
    local code = param(q, "productCode") or ""
    if codes2021[code] then return { status = 200, headers = json, body = P2021 } end
    if codes2014[code] then return { status = 200, headers = json, body = P2014 } end
    if code == "UNTAXED-1" then return { status = 200, headers = json, body = UNTAXED } end
    return { status = 200, headers = json, body = EMPTY }
  end
  if req.method == "GET" and path == "/Suppliers" then
    return { status = 200, headers = json, body = suppliers[param(q, "supplierCode") or ""] or EMPTY }
  end
  if req.method == "POST" and path:match("^/PurchaseOrders/[%%x%%-]+$") then
    -- The server's own figures: it recomputes, as the recorded create did
    -- (its TaxTotal 0.000 whatever was sent), with the all-zero Tax Guid.
    local o = cjson.decode(req.body)
    o.OrderNumber, o.TaxTotal, o.Total = "PO-00000777", 0, o.SubTotal
    o.Tax = { TaxCode = "NONE", TaxRate = 0, Guid = "00000000-0000-0000-0000-000000000000" }
    return { status = 201, headers = json, body = cjson.encode(o) }
  end
  return { status = 404, headers = json, body = '{"Description":"no route"}' }
end }
]=]):format(recorded("products_page_2021.json"), recorded("products_modified_since_2014.json"),
    recorded("salesorders_empty_result_2014.json"), TAXES, UNTAXED_PRODUCT,
    "{" .. (function() local t = {} for c in pairs(codes2021) do t[#t + 1] = ("[%q]=true"):format(c) end
      return table.concat(t, ",") end)() .. "}",
    "{" .. (function() local t = {} for c in pairs(codes2014) do t[#t + 1] = ("[%q]=true"):format(c) end
      return table.concat(t, ",") end)() .. "}",
    "{" .. (function() local t = {} for c, b in pairs(suppliers) do t[#t + 1] = ("[%q]=%q"):format(c, b) end
      return table.concat(t, ",") end)() .. "}")
end

local function decode_query(q)
  local out = {}
  for k, v in (q or ""):gmatch("([^&=]+)=([^&]*)") do
    out[k] = v:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)
  end
  return out
end

describe("tax on the recorded fields, against a stub of the live API", function()
  local s

  setup(function() s = stub.start(stub_script()) end)
  teardown(function() if s then s:stop() end end)

  local function new_client(extra)
    local opts = { api_id = "tax-spec", api_key = "tax-spec-key", base_url = s.url, max_retries = 0 }
    for k, v in pairs(extra or {}) do opts[k] = v end
    return unleashed.new(opts)
  end

  -- The body of the last POST the stub saw.
  local function last_post()
    local reqs = s:requests()
    for i = #reqs, 1, -1 do
      if reqs[i].method == "POST" then return cjson.decode(reqs[i].body), reqs[i] end
    end
  end

  local function line(code, qty, price, extra)
    local l = { Product = { ProductCode = code }, OrderQuantity = qty, UnitPrice = price }
    for k, v in pairs(extra or {}) do l[k] = v end
    return l
  end

  it("prices each line by the hierarchy: product, order, supplier, default", function()
    local c = new_client{ default_purchase_tax = "G.S.T." }
    -- ALL25G: TaxablePurchase false (no tax); 123: taxable, no code or rate:
    -- the supplier's 0.09; 1111: every field null: the supplier's too.
    c.purchase_orders:create{ OrderStatus = "Parked", Supplier = { SupplierCode = "SUP" },
      PurchaseOrderLines = { line("ALL25G", 4, 2.5), line("123", 3, 10), line("1111", 1, 99.99),
                             line("1111", 2, 5, { LineTax = 0.33 }) } }
    local sent = last_post()
    local l = sent.PurchaseOrderLines
    assert.are.equal(0, l[1].LineTax)
    assert.are.equal(round2(30 * 0.09), l[2].LineTax)
    assert.are.equal(round2(99.99 * 0.09), l[3].LineTax)
    assert.are.equal(0.33, l[4].LineTax)                      -- the caller's LineTax wins
    assert.are.equal(round2(l[2].LineTax + l[3].LineTax + 0.33), sent.TaxTotal)
    -- The order's own tax comes before the supplier's (not before the product's).
    c.purchase_orders:create{ OrderStatus = "Parked", Supplier = { SupplierCode = "SUP" }, TaxCode = "G.S.T.",
      PurchaseOrderLines = { line("ALL25G", 4, 2.5), line("123", 3, 10), line("UNTAXED-1", 3, 10) } }
    l = last_post().PurchaseOrderLines
    assert.are.equal(0, l[1].LineTax)
    assert.are.equal(round2(30 * 0.15), l[2].LineTax)         -- the current G.S.T., not the obsolete one
    assert.are.equal(0, l[3].LineTax)                         -- TaxablePurchase false, code and rate null
    -- A supplier that is not Taxable: no tax.
    c.purchase_orders:create{ OrderStatus = "Parked", Supplier = { SupplierCode = "UNTAXED" },
      PurchaseOrderLines = { line("123", 3, 10) } }
    assert.are.equal(0, last_post().PurchaseOrderLines[1].LineTax)
    -- A supplier with no rate: the client's default purchase tax.
    c.purchase_orders:create{ OrderStatus = "Parked", Supplier = { SupplierCode = "NORATE" },
      PurchaseOrderLines = { line("123", 3, 10) } }
    assert.are.equal(round2(30 * 0.15), last_post().PurchaseOrderLines[1].LineTax)
    c:close()
  end)

  it("holds what the server returned after a create, whatever it computed", function()
    local c = new_client()
    local po = c.purchase_orders:create{ OrderStatus = "Parked", Supplier = { SupplierCode = "SUP" },
      PurchaseOrderLines = { line("123", 3, 10) } }
    assert.are.equal(2.7, last_post().TaxTotal)               -- what the client computed and sent
    assert.are.equal(0, po.TaxTotal)                          -- what the server answered
    assert.are.equal(po.SubTotal, po.Total)
    assert.are.equal("PO-00000777", po.OrderNumber)
    c:close()
  end)

  it("lists taxes once per client, for expenses, only when a code must be read; never by Guid", function()
    local c = new_client{ default_purchase_tax = "G.S.T." }
    local function count(path)
      local n = 0
      for _, r in ipairs(s:requests()) do if r.path == path then n = n + 1 end end
      return n
    end
    local before = count("/Taxes")
    -- No code to read: no listing.
    c.purchase_orders:create{ OrderStatus = "Parked", Supplier = { SupplierCode = "SUP" },
      PurchaseOrderLines = { line("123", 1, 1) } }
    assert.are.equal(before, count("/Taxes"))
    -- Codes to read (the order's, the default's): one listing, then none.
    for _ = 1, 3 do
      c.purchase_orders:create{ OrderStatus = "Parked", Supplier = { SupplierCode = "NORATE" },
        Tax = { TaxCode = "G.S.T.", Guid = ZERO_GUID }, PurchaseOrderLines = { line("1111", 1, 1) } }
    end
    assert.are.equal(before + 1, count("/Taxes"))
    local listing
    for _, r in ipairs(s:requests()) do if r.path == "/Taxes" then listing = r end end
    assert.are.equal("true", decode_query(listing.query).canApplyToExpenses)
    for _, r in ipairs(s:requests()) do
      assert.is_nil(r.path:find(ZERO_GUID, 1, true), r.path)
      if r.path == "/Products" then assert.is_string(decode_query(r.query).productCode) end
    end
    c:clear_cache()
    c.purchase_orders:create{ OrderStatus = "Parked", Supplier = { SupplierCode = "SUP" }, TaxCode = "NONE",
      PurchaseOrderLines = { line("1111", 1, 1) } }
    assert.are.equal(before + 2, count("/Taxes"))
    assert.are.equal(0, last_post().PurchaseOrderLines[1].LineTax)   -- the expense NONE
    c:close()
  end)

  it("refuses a tax code the account has only for revenue, or only obsolete", function()
    local c = new_client()
    local ok, e = pcall(c.purchase_orders.create, c.purchase_orders, { OrderStatus = "Parked",
      Supplier = { SupplierCode = "SUP" }, TaxCode = "EXEMPTOUTPUT",
      PurchaseOrderLines = { line("123", 1, 1) } })
    assert.is_false(ok)
    assert.are.equal("validation", e.kind)
    assert.are.equal("TaxCode", e.details[1].field)
    assert.matches('no tax "EXEMPTOUTPUT" among the account\'s taxes for expenses', e.details[1].message)
    c:close()
  end)
end)

-- ---- against the sandbox -----------------------------------------------------------

describe("tax against the sandbox (reference data in the recorded shapes)", function()
  local sb, client, events

  setup(function()
    sb = sandbox.start{ seed = 100, admin = true }
    events = {}
    client = unleashed.new{ api_id = sb.api_id, api_key = sb.api_key, base_url = sb.base_url,
                            on_request = function(ev) events[#events + 1] = ev end }
  end)

  teardown(function()
    if client then client:close() end
    if sb then sb:stop() end
  end)

  -- The rate the hierarchy gives a product's line for a supplier, worked out
  -- here from the API's own listings.
  local function expected_rate(code, supplier_code)
    local p
    for item in client:each("Products", { productCode = code }) do
      if item.ProductCode == code then p = item end
    end
    if p.TaxablePurchase == false then return 0 end
    if p.XeroTaxRate then return p.XeroTaxRate end
    if p.XeroTaxCode then
      for t in client:each("Taxes") do
        if t.TaxCode == p.XeroTaxCode and t.CanApplyToExpenses and not t.Obsolete then return t.TaxRate end
      end
    end
    local s = client:list("Suppliers", { supplierCode = supplier_code })[1]
    if s.Taxable == false then return 0 end
    return s.TaxRate
  end

  it("runs the README's quick-start create, its taxes following the rule", function()
    local f = assert(io.open(ROOT .. "/README.md", "rb"))
    local readme = f:read("a")
    f:close()
    local block = readme:match("\nIn Lua[^\n]*\n.-```lua\n(.-)```")
    assert.is_string(block, "README.md has no 'In Lua:' block")
    assert.truthy(block:find("purchase_orders:create", 1, true))
    local env = setmetatable({}, { __index = _G })
    local vars = { UNLEASHED_API_ID = sb.api_id, UNLEASHED_API_KEY = sb.api_key,
                   UNLEASHED_BASE_URL = sb.base_url }
    env.os = setmetatable({ getenv = function(k) return vars[k] end }, { __index = os })
    local chunk = assert(load(block .. "\nreturn po", "=README.md", "t", env))
    local po = chunk()
    assert.are.equal("Complete", po.OrderStatus)
    assert.are.equal(2, #po.PurchaseOrderLines)
    local tax = 0
    for _, l in ipairs(po.PurchaseOrderLines) do
      local rate = expected_rate(l.Product.ProductCode, "ACME")
      assert.are.equal(rate, l.LineTaxRate, l.Product.ProductCode)
      assert.are.equal(round2(l.LineTotal * rate), l.LineTax)
      tax = tax + l.LineTax
    end
    assert.are.equal(round2(tax), po.TaxTotal)
  end)

  -- Products with no purchase tax of their own, for lines that need the rest
  -- of the hierarchy.
  local function plain_products(n)
    local out = {}
    for p in client:each("Products") do
      if p.XeroTaxCode == nil and p.XeroTaxRate == nil and p.TaxablePurchase ~= false
          and not p.IsSerialized and not p.IsBatchTracked and #out < n then
        out[#out + 1] = p.ProductCode
      end
    end
    return out
  end

  it("refuses, before sending, an order with lines nothing prices, naming each line and the fixes", function()
    local plain = plain_products(2)
    -- A+B TRADING is taxable with no TaxRate of its own; nothing else applies.
    local order = { OrderStatus = "Parked", Supplier = { SupplierCode = "A+B TRADING" },
      PurchaseOrderLines = { { Product = { ProductCode = plain[1] }, OrderQuantity = 1, UnitPrice = 10 },
                             { Product = { ProductCode = "BOLT M8 #10" }, OrderQuantity = 1, UnitPrice = 10,
                               LineTax = 1.5 },
                             { Product = { ProductCode = plain[2] }, OrderQuantity = 2, UnitPrice = 10 } } }
    events = {}
    local ok, e = pcall(client.purchase_orders.create, client.purchase_orders, order)
    assert.is_false(ok)
    assert.are.equal("validation", e.kind)
    assert.are.equal("POST", e.method)
    assert.matches("^/PurchaseOrders/", e.path)
    assert.matches("PurchaseOrderLines%[1%], PurchaseOrderLines%[3%]", e.message)
    assert.matches("LineTax", e.message)
    assert.matches("TaxCode", e.message)
    assert.matches("default_purchase_tax", e.message)
    local fields = {}
    for _, d in ipairs(e.details) do fields[d.field] = d.message end
    assert.matches(plain[1], fields["PurchaseOrderLines[1].LineTax"], 1, true)
    assert.matches("A+B TRADING", fields["PurchaseOrderLines[3].LineTax"], 1, true)
    assert.is_nil(fields["PurchaseOrderLines[2].LineTax"])
    assert.is_string(fields.default_purchase_tax)
    for _, ev in ipairs(events) do assert.are.equal("GET", ev.method) end
    -- Each of the three ways prices it: LineTax on every line, the order's
    -- TaxCode, the client's default purchase tax (the account's: G.S.T.).
    local with_tax = { OrderStatus = "Parked", Supplier = order.Supplier, PurchaseOrderLines = {} }
    for i, l in ipairs(order.PurchaseOrderLines) do
      with_tax.PurchaseOrderLines[i] = { Product = l.Product, OrderQuantity = l.OrderQuantity,
        UnitPrice = l.UnitPrice, LineTax = round2(l.OrderQuantity * l.UnitPrice * 0.15) }
    end
    assert.are.equal("Parked", client.purchase_orders:create(with_tax).OrderStatus)
    order.TaxCode = "G.S.T."
    local po = client.purchase_orders:create(order)
    assert.are.equal(0.15, po.PurchaseOrderLines[1].LineTaxRate)
    order.TaxCode = nil
    local c2 = unleashed.new{ api_id = sb.api_id, api_key = sb.api_key, base_url = sb.base_url,
                              default_purchase_tax = "G.S.T." }
    po = c2.purchase_orders:create(order)
    assert.are.equal(0.15, po.PurchaseOrderLines[3].LineTaxRate)
    c2:close()
  end)

  it("takes default_purchase_tax per company from a profile or the environment, a code or a rate", function()
    local plain = plain_products(1)
    local order = { OrderStatus = "Parked", Supplier = { SupplierCode = "A+B TRADING" },
      PurchaseOrderLines = { { Product = { ProductCode = plain[1] }, OrderQuantity = 1, UnitPrice = 10 } } }
    local dir = files.tmpdir()
    assert(os.execute("mkdir -p '" .. dir .. "/unleashed'"))
    local path = dir .. "/unleashed/credentials"
    files.write_file(path, ("[coded]\napi_id = %s\napi_key = %s\nbase_url = %s\n"
      .. "default_purchase_tax = G.S.T.\n\n"
      .. "[rated]\napi_id = %s\napi_key = %s\nbase_url = %s\n"
      .. "default_purchase_tax = 0.15  # a rate\n\n"
      .. "[none]\napi_id = %s\napi_key = %s\nbase_url = %s\n")
      :format(sb.api_id, sb.api_key, sb.base_url, sb.api_id, sb.api_key, sb.base_url,
              sb.api_id, sb.api_key, sb.base_url))
    assert(os.execute("chmod 600 '" .. path .. "'"))
    local function env(vars)
      vars.XDG_CONFIG_HOME = dir
      return function(name) return vars[name] end
    end
    local function created(c)
      local ok, po = pcall(c.purchase_orders.create, c.purchase_orders, order)
      c:close()
      if not ok then return nil, po end
      return po
    end
    for _, name in ipairs{ "coded", "rated" } do
      local po = assert(created(unleashed.from_profile(name, nil, env {})))
      assert.are.equal(0.15, po.PurchaseOrderLines[1].LineTaxRate, name)
    end
    local _, e = created(unleashed.from_profile("none", nil, env {}))
    assert.is_true(unleashed.Error.is(e, "validation"), tostring(e))
    assert.matches("default_purchase_tax", e.message)
    -- The environment fills what a section leaves out, and from_env reads it.
    local po = assert(created(unleashed.from_profile("none", nil,
      env { UNLEASHED_DEFAULT_PURCHASE_TAX = "0.15" })))
    assert.are.equal(0.15, po.PurchaseOrderLines[1].LineTaxRate)
    po = assert(created(unleashed.from_env(nil, env { UNLEASHED_API_ID = sb.api_id,
      UNLEASHED_API_KEY = sb.api_key, UNLEASHED_BASE_URL = sb.base_url,
      UNLEASHED_DEFAULT_PURCHASE_TAX = "G.S.T." })))
    assert.are.equal(0.15, po.PurchaseOrderLines[1].LineTaxRate)
    os.execute("rm -rf '" .. dir .. "'")
  end)

  it("reports every unknown product and supplier in one error, naming each value and where", function()
    events = {}
    local ok, e = pcall(client.purchase_orders.create, client.purchase_orders, {
      OrderStatus = "Parked", Supplier = { SupplierCode = "NOPE-SUPPLIER" },
      PurchaseOrderLines = { { Product = { ProductCode = "BOLT M8 #10" }, OrderQuantity = 1, UnitPrice = 1 },
                             { Product = { ProductCode = "NOPE-2" }, OrderQuantity = 1, UnitPrice = 1 },
                             { Product = { ProductCode = "NOPE-3" }, OrderQuantity = 1, UnitPrice = 1 } } })
    assert.is_false(ok)
    assert.are.equal("validation", e.kind)
    assert.are.equal("POST", e.method)
    assert.matches("^/PurchaseOrders/%x+%-", e.path)
    local text = tostring(e)
    assert.matches('Supplier.SupplierCode: no supplier "NOPE-SUPPLIER"', text, 1, true)
    assert.matches('PurchaseOrderLines[2].Product.ProductCode: no product "NOPE-2"', text, 1, true)
    assert.matches('PurchaseOrderLines[3].Product.ProductCode: no product "NOPE-3"', text, 1, true)
    assert.matches('unknown supplier "NOPE-SUPPLIER", product "NOPE-2", product "NOPE-3"', e.message, 1, true)
    for _, ev in ipairs(events) do assert.are.equal("GET", ev.method) end
    -- A line added to an order: the same, with the call's method and path.
    local po = client.purchase_orders:create{ OrderStatus = "Parked", Supplier = { SupplierCode = "ACME" } }
    ok, e = pcall(po.add_line, po, { Product = { ProductCode = "NOPE-4" }, OrderQuantity = 1, UnitPrice = 1 })
    assert.is_false(ok)
    assert.are.equal("POST", e.method)
    assert.are.equal("/PurchaseOrders/" .. po.Guid .. "/Lines", e.path)
    assert.matches('line.Product.ProductCode: no product "NOPE-4"', tostring(e), 1, true)
  end)

  it("adds a line to an order whose Tax has the all-zero Guid without looking that Guid up", function()
    local plain = plain_products(1)
    local po = client.purchase_orders:create{ OrderStatus = "Parked",
      Supplier = { SupplierCode = "SMITH & SONS" },
      PurchaseOrderLines = { { Product = { ProductCode = plain[1] }, OrderQuantity = 1, UnitPrice = 5 } } }
    assert.are.equal(ZERO_GUID, po.Tax.Guid)                  -- SMITH & SONS is not Taxable: NONE
    events = {}
    local l = po:add_line{ Product = { ProductCode = plain[1] }, OrderQuantity = 2, UnitPrice = 5 }
    assert.are.equal(0, l.LineTax)
    for _, ev in ipairs(events) do assert.is_nil(ev.path:find(ZERO_GUID, 1, true), ev.path) end
  end)
end)
