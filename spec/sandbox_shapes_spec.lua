-- The sandbox answers in the shapes the live API was recorded answering
-- with (spec/fixtures/recorded, copies of ../shared/recorded: a missing file
-- fails the spec): the reference resources' fields, nested objects, decimal places,
-- escapes, nulls, the empty envelope, 201 on a create; and it honours the
-- reference resources' documented filters.
local core = require "unleashed.core"
local cjson = require "cjson"
local sandbox = require "unleashed.sandbox"

local ID, KEY = "shapes-id", "shapes-key"
local recorded_text = require("support.recorded").read

local function enc(s)
  return (s:gsub("[^%w%-%._~]", function(c) return ("%%%02X"):format(c:byte()) end))
end

-- A signed request to the app in process; params: { {k, v}, ... }.
local function call(app, method, path, params, body)
  local signed, wire = {}, {}
  for i, p in ipairs(params or {}) do
    signed[i] = p[1] .. "=" .. p[2]
    wire[i] = enc(p[1]) .. "=" .. enc(p[2])
  end
  local resp = app:handle{ method = method, path = path, query = table.concat(wire, "&"), body = body or "",
    headers = { ["api-auth-id"] = ID, ["api-auth-signature"] = core.sign(table.concat(signed, "&"), KEY),
                accept = "application/json", ["content-type"] = "application/json" } }
  local ok, decoded = pcall(cjson.decode, resp.body)
  return resp, ok and decoded or nil
end

-- ---- reading JSON text in order ------------------------------------------------
-- cjson loses member order and decimal places: a small reader keeps both.
-- Returns the value; objects are { keys = {...}, map = {...} }, numbers
-- { num = text }.
local function parse(text)
  local pos = 1
  local value
  local function ws() pos = text:find("[^ \t\r\n]", pos) or #text + 1 end
  local function str()
    local out, i = {}, pos + 1
    while true do
      local c = text:sub(i, i)
      if c == '"' then break end
      if c == "\\" then
        local e = text:sub(i + 1, i + 1)
        if e == "u" then
          out[#out + 1] = utf8.char(tonumber(text:sub(i + 2, i + 5), 16))
          i = i + 6
        else
          out[#out + 1] = ({ n = "\n", r = "\r", t = "\t", b = "\b", f = "\f" })[e] or e
          i = i + 2
        end
      else
        out[#out + 1] = c
        i = i + 1
      end
    end
    pos = i + 1
    return table.concat(out)
  end
  function value()
    ws()
    local c = text:sub(pos, pos)
    if c == "{" then
      local obj = { keys = {}, map = {} }
      pos = pos + 1
      ws()
      if text:sub(pos, pos) == "}" then pos = pos + 1 return obj end
      while true do
        ws()
        local k = str()
        ws()
        pos = pos + 1   -- :
        obj.keys[#obj.keys + 1] = k
        obj.map[k] = value()
        ws()
        local d = text:sub(pos, pos)
        pos = pos + 1
        if d == "}" then return obj end
      end
    elseif c == "[" then
      local arr = { list = {} }
      pos = pos + 1
      ws()
      if text:sub(pos, pos) == "]" then pos = pos + 1 return arr end
      while true do
        arr.list[#arr.list + 1] = value()
        ws()
        local d = text:sub(pos, pos)
        pos = pos + 1
        if d == "]" then return arr end
      end
    elseif c == '"' then
      return str()
    elseif text:find("^true", pos) then pos = pos + 4 return true
    elseif text:find("^false", pos) then pos = pos + 5 return false
    elseif text:find("^null", pos) then pos = pos + 4 return cjson.null
    end
    local num = text:match("^%-?%d+%.?%d*[eE]?[%+%-]?%d*", pos)
    pos = pos + #num
    return { num = num }
  end
  return value()
end

-- Every numeric member: name -> set of decimal places seen.
local function places(node, out)
  out = out or {}
  if type(node) ~= "table" then return out end
  if node.keys then
    for _, k in ipairs(node.keys) do
      local v = node.map[k]
      if type(v) == "table" and v.num then
        local frac = v.num:match("%.(%d+)")
        out[k] = out[k] or {}
        out[k][frac and #frac or 0] = true
      else
        places(v, out)
      end
    end
  elseif node.list then
    for _, v in ipairs(node.list) do places(v, out) end
  end
  return out
end

local RECORDED_JSON = {
  "batchnumbers_2018.json", "customer_get_by_guid_2014.json", "customer_post_201_2014.json",
  "customers_modified_since_2014.json", "product_post_existing_guid_201_2014.json",
  "products_filter_by_code_2014.json", "products_modified_since_2014.json", "products_page_2021.json",
  "salesorders_by_number_2018.json", "salesorders_empty_result_2014.json", "salesorders_list_2018.json",
  "salesorders_modified_since_2014.json", "salesshipments_dispatched_2014.json",
  "stockadjustment_create_201_2014.json", "stockadjustments_page1_2021.json",
  "stockonhand_modified_since_2014.json", "warehouses_2014.json",
}

local function keys_of(obj) return obj.keys end

local function new_app(seed)
  return sandbox.new{ seed = seed or 40, credentials = { [ID] = KEY },
                      clock = function() return 1767225600000 end }
end

describe("sandbox answers in the recorded shapes", function()
  local app = new_app()
  local rec = {}
  local recorded_places = {}

  setup(function()
    for _, name in ipairs(RECORDED_JSON) do
      rec[name] = parse(recorded_text(name))
      places(rec[name], recorded_places)
    end
  end)

  local function first_item(name) return rec[name].map.Items.list[1] end

  local function ordered(app_, path, params)
    local resp = call(app_, "GET", path, params)
    assert.are.equal(200, resp.status, resp.body)
    return parse(resp.body), resp.body
  end

  it("serves Products with the 2021 recording's fields, in its order, and its nested shapes", function()
    local doc = ordered(app, "/Products", { { "pageSize", "1000" } })
    local want = first_item("products_page_2021.json")
    local with_supplier
    for _, p in ipairs(doc.map.Items.list) do
      assert.are.same(keys_of(want), keys_of(p))
      assert.are.same(keys_of(want.map.UnitOfMeasure), keys_of(p.map.UnitOfMeasure))
      assert.are.same(keys_of(want.map.ProductGroup), keys_of(p.map.ProductGroup))
      for t = 1, 10 do
        local tier = p.map["SellPriceTier" .. t]
        assert.are.same({ "Name", "Value" }, keys_of(tier))
        assert.is_true(type(tier.map.Value) == "string" or tier.map.Value == cjson.null)
      end
      if p.map.Supplier ~= cjson.null then with_supplier = p.map.Supplier end
    end
    -- The nested Supplier as the 2021 product CLOPOW30G has it.
    local clopow
    for _, item in ipairs(rec["products_page_2021.json"].map.Items.list) do
      if item.map.Supplier ~= cjson.null then clopow = item.map.Supplier end
    end
    assert.are.same(keys_of(clopow), keys_of(with_supplier))
  end)

  it("serves Taxes as the Taxes page lists them: the recorded fields, NONE twice, no default flag", function()
    local want = rec["salesorders_list_2018.json"].map.Items.list[1].map.Tax
    local doc = ordered(app, "/Taxes")
    local none = 0
    for _, t in ipairs(doc.map.Items.list) do
      assert.are.same(keys_of(want), keys_of(t))
      if t.map.TaxCode == "NONE" then none = none + 1 end
    end
    assert.are.equal(2, none)
    -- An order with no tax shows NONE as the recorded orders do.
    local none_tax
    for _, o in ipairs(ordered(app, "/PurchaseOrders", { { "pageSize", "1000" } }).map.Items.list) do
      assert.are.same(keys_of(want), keys_of(o.map.Tax))
      if o.map.Tax.map.TaxCode == "NONE" then none_tax = o.map.Tax end
    end
    assert.is_table(none_tax, "no seeded order without tax")
    assert.are.equal("00000000-0000-0000-0000-000000000000", none_tax.map.Guid)
    assert.are.equal(cjson.null, none_tax.map.Description)
    assert.are.equal(cjson.null, none_tax.map.LastModifiedOn)
  end)

  it("serves Currencies, Warehouses and the objects orders nest in the recorded shapes", function()
    local currency = rec["customer_get_by_guid_2014.json"].map.Currency
    local cur = ordered(app, "/Currencies")
    for _, c in ipairs(cur.map.Items.list) do
      local have = {}
      for _, k in ipairs(keys_of(c)) do have[k] = true end
      for _, k in ipairs(keys_of(currency)) do assert.is_true(have[k], k) end
      assert.is_true(have.DefaultBuyRate and have.DefaultSellRate)
      assert.matches("^%d+%.%d%d%d%d%d%d$", c.map.DefaultBuyRate.num)
      assert.matches("^%d+%.%d%d%d%d%d%d$", c.map.DefaultSellRate.num)
    end
    local warehouse = rec["stockadjustments_page1_2021.json"].map.Items.list[1].map.Warehouse
    local wh = ordered(app, "/Warehouses")
    for _, w in ipairs(wh.map.Items.list) do assert.are.same(keys_of(warehouse), keys_of(w)) end
    local o = ordered(app, "/PurchaseOrders", { { "pageSize", "1" } }).map.Items.list[1]
    assert.are.same(keys_of(currency), keys_of(o.map.Currency))
    assert.are.same(keys_of(warehouse), keys_of(o.map.Warehouse))
    local s = ordered(app, "/Suppliers", { { "pageSize", "1" } }).map.Items.list[1]
    assert.are.same(keys_of(currency), keys_of(s.map.Currency))
    for _, k in ipairs{ "Taxable", "TaxRate" } do assert.is_not_nil(s.map[k], k) end
  end)

  it("writes every decimal field at the places the recordings show for it", function()
    local bodies = {
      select(2, ordered(app, "/Products", { { "pageSize", "1000" } })),
      select(2, ordered(app, "/Taxes")), select(2, ordered(app, "/Currencies")),
      select(2, ordered(app, "/Warehouses")),
      select(2, ordered(app, "/Suppliers", { { "pageSize", "1000" } })),
      select(2, ordered(app, "/PurchaseOrders", { { "pageSize", "1000" }, { "brief", "false" },
                                                 { "serialBatch", "true" } })),
    }
    local checked = 0
    for _, body in ipairs(bodies) do
      for name, seen in pairs(places(parse(body))) do
        local want = recorded_places[name]
        if want and name ~= "NumberOfItems" then
          for p in pairs(seen) do
            local list = {}
            for q in pairs(want) do list[#list + 1] = q end
            assert.is_true(want[p], ("%s has %d places; the recordings: %s"):format(name, p,
              table.concat(list, ",")))
            checked = checked + 1
          end
        end
      end
    end
    assert.is_true(checked >= 30, "too few fields compared: " .. checked)
    -- Rates at 6 places, as the recorded products' XeroTaxRate.
    local _, body = ordered(app, "/Products", { { "pageSize", "1000" } })
    assert.truthy(body:find('"XeroTaxRate":0.150000,', 1, true))
  end)

  it("escapes as recorded: \\u0027 and \\u0026, a plain / as it is, dates as \\/Date(ms)\\/", function()
    local _, body = ordered(app, "/Suppliers", { { "pageSize", "1000" } })
    assert.truthy(body:find('"SMITH \\u0026 SONS"', 1, true))
    assert.is_nil(body:find("&", 1, true))
    local _, wh = ordered(app, "/Warehouses", { { "includeObsolete", "true" } })
    assert.truthy(wh:find('"1/2 Example Lane"', 1, true))     -- the 2021 answer's unescaped "/"
    assert.truthy(wh:find('"LastModifiedOn":"\\/Date%(%d+%)\\/"'))
    assert.truthy(wh:find('"LastModifiedOn":null', 1, true))  -- a warehouse never edited, as recorded
    local o = app.orders[1]
    o.Comments = "Bird's & bees 1/2"
    app:_changed(o)
    local resp = call(app, "GET", "/PurchaseOrders/" .. o.Guid)
    assert.truthy(resp.body:find('"Comments":"Bird\\u0027s \\u0026 bees 1/2"', 1, true))
  end)

  it("answers an empty result exactly as the recorded one", function()
    local want = recorded_text("salesorders_empty_result_2014.json")
    local resp = call(app, "GET", "/Products", { { "productCode", "NO-SUCH-PRODUCT" } })
    assert.are.equal(want, resp.body)
    resp = call(app, "GET", "/PurchaseOrders", { { "orderNumber", "PO-99999999" } })
    assert.are.equal(want, resp.body)
    resp = call(app, "GET", "/Suppliers/Page/3", { { "supplierCode", "NOBODY" }, { "pageSize", "50" } })
    assert.are.equal(want:gsub('"PageSize":200', '"PageSize":50'), resp.body)
  end)

  it("answers a create with 201 Created and the bare object, as every recorded create", function()
    local p   -- a product with no purchase tax: LineTax 0 whatever the supplier
    for _, item in ipairs(app.ref.products) do
      if item.TaxablePurchase == false and not item.IsBatchTracked and not item.IsSerialized then
        p = p or item
      end
    end
    local body = cjson.encode{ OrderStatus = "Parked", Supplier = { SupplierCode = "SMITH & SONS" },
      PurchaseOrderLines = { { LineNumber = 1, Product = { ProductCode = p.ProductCode }, OrderQuantity = 1,
        UnitPrice = 10, LineTotal = 10, LineTax = 0 } }, SubTotal = 10, TaxTotal = 0, Total = 10 }
    local g = "5a4db0c0-0000-4000-8000-00000000c0de"
    local resp, o = call(app, "POST", "/PurchaseOrders/" .. g, nil, body)
    assert.are.equal(201, resp.status, resp.body)
    assert.are.equal(g, o.Guid)
    assert.is_nil(o.Pagination)
    assert.is_nil(o.Items)
  end)

  it("matches paths case-insensitively, as the recorded GET /products", function()
    local a = call(app, "GET", "/products", { { "pageSize", "3" } })
    local b = call(app, "GET", "/PRODUCTS/page/1", { { "pageSize", "3" } })
    local c = call(app, "GET", "/Products", { { "pageSize", "3" } })
    assert.are.equal(200, a.status)
    assert.are.equal(c.body, a.body)
    assert.are.equal(c.body, b.body)
  end)

  it("gives error items an ErrorCode where it names one", function()
    local body = cjson.encode{ OrderStatus = "Parked", Supplier = { SupplierCode = "NOPE" }, SubTotal = 0,
                               TaxTotal = 0, Total = 0 }
    local resp, res = call(app, "POST", "/PurchaseOrders/5a4db0c0-0000-4000-8000-00000000c0df", nil, body)
    assert.are.equal(400, resp.status)
    assert.are.same({ Field = "Supplier.SupplierCode", Description = 'No supplier with SupplierCode "NOPE"',
                      ErrorCode = "NotFound" }, res.Items[1])
  end)
end)

describe("sandbox reference filters", function()
  local app = new_app()

  local function items(path, params)
    local resp, doc = call(app, "GET", path, params)
    assert.are.equal(200, resp.status, resp.body)
    return doc.Items
  end

  it("productCode and supplierCode match code prefixes, warehouseCode one code, any case", function()
    local list = items("/Products", { { "productCode", "valve-" } })
    assert.is_true(#list > 0)
    for _, p in ipairs(list) do assert.matches("^VALVE%-", p.ProductCode) end
    local one = items("/Products", { { "productCode", "BOLT M8 #10" } })
    assert.are.equal(1, #one)
    assert.are.equal("BOLT M8 #10", one[1].ProductCode)
    local acme = items("/Suppliers", { { "supplierCode", "acme" } })
    local codes = {}
    for _, s in ipairs(acme) do codes[#codes + 1] = s.SupplierCode end
    table.sort(codes)
    assert.are.same({ "ACME", "ACME2" }, codes)
    assert.are.equal(1, #items("/Warehouses", { { "warehouseCode", "main" } }))
    assert.are.equal(0, #items("/Warehouses", { { "warehouseCode", "MAI" } }))
  end)

  it("takes filter names in any case, as the recorded ?ProductCode=&WarehouseCode=", function()
    local function codes(list)
      local out = {}
      for i, x in ipairs(list) do out[i] = x.ProductCode or x.WarehouseCode or x.OrderNumber end
      return out
    end
    local want = codes(items("/Products", { { "productCode", "valve-" } }))
    assert.is_true(#want > 0)
    assert.are.same(want, codes(items("/Products", { { "ProductCode", "valve-" } })))
    assert.are.same(want, codes(items("/products", { { "PRODUCTCODE", "VALVE-" } })))
    assert.are.same(codes(items("/Warehouses", { { "warehouseCode", "main" } })),
                    codes(items("/Warehouses", { { "WarehouseCode", "MAIN" } })))
    local placed = codes(items("/PurchaseOrders", { { "orderStatus", "Placed" }, { "pageSize", "1000" } }))
    assert.is_true(#placed > 0)
    assert.are.same(placed,
      codes(items("/PurchaseOrders", { { "OrderStatus", "placed" }, { "PageSize", "1000" } })))
  end)

  it("leaves obsolete records out unless includeObsolete=true", function()
    for _, c in ipairs{ { "/Products", "ProductCode", "DISCONTINUED-0001" },
                        { "/Suppliers", "SupplierCode", "OLDCO" },
                        { "/Warehouses", "WarehouseCode", "OLDSTORE" } } do
      local function has(list)
        for _, item in ipairs(list) do if item[c[2]] == c[3] then return item end end
      end
      assert.is_nil(has(items(c[1], { { "pageSize", "1000" } })), c[1])
      local found = has(items(c[1], { { "pageSize", "1000" }, { "includeObsolete", "true" } }))
      assert.is_table(found, c[1])
      assert.is_true(found.Obsolete)
      -- Read by Guid it is there.
      assert.are.equal(200, (call(app, "GET", c[1] .. "/" .. found.Guid)).status)
    end
    -- An order naming an obsolete record is refused.
    local body = cjson.encode{ OrderStatus = "Parked", Supplier = { SupplierCode = "OLDCO" },
                               Warehouse = { WarehouseCode = "OLDSTORE" },
                               SubTotal = 0, TaxTotal = 0, Total = 0 }
    local resp, res = call(app, "POST", "/PurchaseOrders/5a4db0c0-0000-4000-8000-00000000c0e0", nil, body)
    assert.are.equal(400, resp.status)
    local why = {}
    for _, item in ipairs(res.Items) do why[item.Field] = item.Description end
    assert.matches("obsolete", why.Supplier)
    assert.matches("obsolete", why.Warehouse)
  end)

  it("filters Taxes by canApplyToExpenses and canApplyToRevenue", function()
    local all = items("/Taxes")
    local exp = items("/Taxes", { { "canApplyToExpenses", "true" } })
    local rev = items("/Taxes", { { "canApplyToRevenue", "true" } })
    assert.is_true(#exp < #all and #rev < #all)
    for _, t in ipairs(exp) do assert.is_true(t.CanApplyToExpenses) end
    for _, t in ipairs(rev) do assert.is_true(t.CanApplyToRevenue) end
    local nones = 0
    for _, t in ipairs(exp) do if t.TaxCode == "NONE" then nones = nones + 1 end end
    assert.are.equal(1, nones)
    for _, t in ipairs(items("/Taxes", { { "canApplyToExpenses", "false" } })) do
      assert.is_false(t.CanApplyToExpenses)
    end
  end)

  it("takes modifiedSince on LastModifiedOn (inclusive; never-edited records left out)", function()
    local all = items("/Products", { { "pageSize", "1000" } })
    local mid = {}
    for _, p in ipairs(all) do
      mid[#mid + 1] = tonumber(p.LastModifiedOn:match("%((%d+)%)"))
    end
    table.sort(mid)
    local at = mid[#mid // 2]
    local since = items("/Products", { { "pageSize", "1000" },
                                       { "modifiedSince", os.date("!%Y-%m-%dT%H:%M:%S", at // 1000) } })
    local want = 0
    for _, m in ipairs(mid) do if m >= at then want = want + 1 end end
    assert.are.equal(want, #since)
    assert.is_true(#since > 0 and #since < #all)
    local wh = items("/Warehouses", { { "modifiedSince", "2000-01-01" } })
    for _, w in ipairs(wh) do assert.are_not.equal("RETURNS", w.WarehouseCode) end
  end)

  it("refuses a filter value it cannot read, naming the filter", function()
    for _, c in ipairs{ { "/Products", "includeObsolete", "maybe" },
                        { "/Taxes", "canApplyToExpenses", "yes" },
                        { "/Suppliers", "modifiedSince", "31/12/2020" } } do
      local resp, res = call(app, "GET", c[1], { { c[2], c[3] } })
      assert.are.equal(400, resp.status, c[2])
      assert.are.equal(c[2], res.Items[1].Field)
    end
  end)
end)
