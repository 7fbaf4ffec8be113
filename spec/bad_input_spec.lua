-- Bad input, table-driven: every case is refused before anything is sent,
-- with a validation error that names the field and the rule it breaks; the
-- sandbox's call count stays where it was across the whole table.
-- luacheck: max line length 120
local sandbox = require "support.sandbox"
local unleashed = require "unleashed"

local BAD_UTF8 = "caf\xC3"            -- a sequence cut short
local OVERLONG = "\xC0\xAF"           -- "/" encoded in two bytes
local SURROGATE = "\xED\xA0\x80"      -- U+D800, not a character
local MEGABYTE = ("x"):rep(1024 * 1024)
local GUID_A = "5f4d6c1e-8b2a-4c3d-9e8f-0a1b2c3d4e5f"

local function nest(depth)
  local t = {}
  for _ = 1, depth do t = { t } end
  return t
end

local function line(extra)
  local l = { Product = { ProductCode = "BOLT M8 #10" }, OrderQuantity = 2, UnitPrice = 3 }
  for k, v in pairs(extra or {}) do l[k] = v end
  return l
end

local function order(extra, line_extra)
  local o = { Supplier = { SupplierCode = "ACME" }, OrderStatus = "Parked",
              PurchaseOrderLines = { line(line_extra) } }
  for k, v in pairs(extra or {}) do o[k] = v end
  return o
end

describe("bad input", function()
  local sb, client, po, creds

  setup(function()
    sb = sandbox.start{ seed = 3, admin = true }
    creds = { api_id = sb.api_id, api_key = sb.api_key, base_url = sb.base_url }
    local maker = unleashed.new(creds)
    local made = maker.purchase_orders:create(order())
    maker:close()
    -- A client with nothing cached, holding the order to update.
    client = unleashed.new(creds)
    po = client.purchase_orders:get(made.Guid)
  end)

  teardown(function()
    if client then client:close() end
    if sb then sb:stop() end
  end)

  local function new(extra)
    local o = {}
    for k, v in pairs(creds) do o[k] = v end
    for k, v in pairs(extra) do o[k] = v end
    return unleashed.new(o)
  end

  local function create(extra, line_extra) return client.purchase_orders:create(order(extra, line_extra)) end
  local function list(...) return client.purchase_orders:list(...) end
  local function get(...) return client.purchase_orders:get(...) end

  -- { what, function that must be refused, the field named, the rule (plain text) }
  local cases = {
    -- unleashed.new
    { "options that are not a table", function() return unleashed.new("key") end, "options", "must be a table" },
    { "no api_key", function() return unleashed.new{ api_id = "x" } end, "api_key", "is required" },
    { "a numeric api_key", function() return new{ api_key = 12345 } end, "api_key", "non-empty string" },
    { "an empty api_id", function() return new{ api_id = "" } end, "api_id", "non-empty string" },
    { "a header injection in api_id", function() return new{ api_id = "id\r\nX-Evil: 1" } end, "api_id",
      "control characters" },
    { "invalid UTF-8 in client_type", function() return new{ client_type = BAD_UTF8 } end, "client_type",
      "valid UTF-8" },
    { "a megabyte api_key", function() return new{ api_key = MEGABYTE } end, "api_key", "at most" },
    { "verify = false", function() return new{ verify = false } end, "verify", "is not an option" },
    { "ssl_verify = false", function() return new{ ssl_verify = false } end, "ssl_verify", "is not an option" },
    { "insecure = true", function() return new{ insecure = true } end, "insecure", "is not an option" },
    { "a negative timeout", function() return new{ timeout = -1 } end, "timeout", "must be between" },
    { "a NaN timeout", function() return new{ timeout = 0 / 0 } end, "timeout", "finite number" },
    { "an infinite retry_cap", function() return new{ retry_cap = math.huge } end, "retry_cap", "finite number" },
    { "a fractional max_retries", function() return new{ max_retries = 1.5 } end, "max_retries",
      "must be an integer" },
    { "an ftp base_url", function() return new{ base_url = "ftp://example.test" } end, "base_url",
      "http:// or https:// URL" },
    { "a megabyte base_url", function() return new{ base_url = "https://" .. MEGABYTE } end, "base_url",
      "at most" },
    { "page_size 5000", function() return new{ page_size = 5000 } end, "page_size", "from 1 to 1000" },
    { "on_request not a function", function() return new{ on_request = "print" } end, "on_request",
      "must be a function" },
    { "a ca_file that does not exist", function() return new{ ca_file = "/nonexistent/ca.pem" } end, "ca_file",
      "readable file" },

    -- filters
    { "filters that are not a table", function() return list("Placed") end, "filters",
      "must be a table" },
    { "an unknown filter", function() return list{ status = "Placed" } end, "status",
      "is not a purchase order filter" },
    { "an unknown status", function() return list{ orderStatus = "Shipped" } end,
      "orderStatus", "must be one of" },
    { "a status in invalid UTF-8", function() return list{ orderStatus = "Plac\xE9d" } end,
      "orderStatus", "must be one of" },
    { "a numeric supplierCode", function() return list{ supplierCode = 42 } end,
      "supplierCode", "must be a string" },
    { "an empty supplierCode", function() return list{ supplierCode = "" } end,
      "supplierCode", "must not be empty" },
    { "a megabyte supplierCode", function() return list{ supplierCode = MEGABYTE } end,
      "supplierCode", "at most" },
    { "invalid UTF-8 in orderNumber", function() return list{ orderNumber = BAD_UTF8 } end,
      "orderNumber", "valid UTF-8" },
    { "an overlong encoding in warehouseCode",
      function() return list{ warehouseCode = OVERLONG } end, "warehouseCode", "valid UTF-8" },
    { "a date that is not a date", function() return list{ modifiedSince = "yesterday" } end,
      "modifiedSince", "ISO 8601" },
    { "an infinite date", function() return list{ startDate = math.huge } end, "startDate",
      "finite number" },
    { "pageSize 0", function() return client.purchase_orders:page(1, { pageSize = 0 }) end, "pageSize",
      "from 1 to 1000" },
    { "page 0", function() return client.purchase_orders:page(0) end, "page", "integer of 1 or more" },
    { "concurrency 0", function() return list(nil, { concurrency = 0 }) end,
      "opts.concurrency", "from 1 to 64" },
    { "a NaN in a generic query", function() return client:list("Suppliers", { x = 0 / 0 }) end, "x",
      "finite number" },
    { "invalid UTF-8 in a generic query", function() return client:list("Products", { productCode = SURROGATE }) end,
      "productCode", "valid UTF-8" },
    { "a megabyte generic query value", function() return client:request("GET", "/Taxes", { query = { q = MEGABYTE } })
      end, "query.q", "at most" },

    -- create
    { "an order that is not a table", function() return client.purchase_orders:create("PO-1") end, "order",
      "must be a table" },
    { "an order with no Supplier", function() return create{ Supplier = unleashed.null } end, "Supplier",
      "is required" },
    { "an unknown OrderStatus", function() return create{ OrderStatus = "Shipped" } end, "OrderStatus",
      "must be one of" },
    { "DiscountRate 1.5", function() return create{ DiscountRate = 1.5 } end, "DiscountRate",
      "between 0 and 1" },
    { "a negative quantity", function() return create(nil, { OrderQuantity = -3 }) end,
      "PurchaseOrderLines[1].OrderQuantity", "greater than 0" },
    { "a NaN quantity", function() return create(nil, { OrderQuantity = 0 / 0 }) end,
      "PurchaseOrderLines[1].OrderQuantity", "finite number" },
    { "an infinite quantity", function() return create(nil, { OrderQuantity = math.huge }) end,
      "PurchaseOrderLines[1].OrderQuantity", "finite number" },
    { "a minus-infinite price", function() return create(nil, { UnitPrice = -math.huge }) end,
      "PurchaseOrderLines[1].UnitPrice", "finite number" },
    { "a line DiscountRate 1.5", function() return create(nil, { DiscountRate = 1.5 }) end,
      "PurchaseOrderLines[1].DiscountRate", "between 0 and 1" },
    { "a quantity given as text", function() return create(nil, { OrderQuantity = "2" }) end,
      "PurchaseOrderLines[1].OrderQuantity", "must be a number" },
    { "invalid UTF-8 in Comments", function() return create{ Comments = BAD_UTF8 } end, "Comments",
      "valid UTF-8" },
    { "a megabyte Comments", function() return create{ Comments = MEGABYTE } end, "Comments", "at most 1024" },
    { "a SupplierRef one character too long", function() return create{ SupplierRef = ("é"):rep(501) } end,
      "SupplierRef", "at most 500" },
    { "a numeric OrderNumber", function() return create{ OrderNumber = 12 } end, "OrderNumber", "must be a string" },
    { "an unknown field", function() return create{ Colour = "red" } end, "Colour", "is not a field" },
    { "a Placed order with no lines", function() return create{ OrderStatus = "Placed", PurchaseOrderLines = {} }
      end, "PurchaseOrderLines", "at least one line" },
    { "lines that are not an array", function() return create{ PurchaseOrderLines = { first = line() } } end,
      "PurchaseOrderLines", "must be an array" },
    { "a line with no Product", function() return create(nil, { Product = unleashed.null }) end,
      "PurchaseOrderLines[1].Product", "is required" },
    { "an impossible date", function() return create{ OrderDate = "2026-02-30" } end, "OrderDate", "ISO 8601" },
    { "absurd nesting in a read-only field", function() return create{ CreatedBy = nest(200) } end, "CreatedBy",
      "nested" },
    { "absurd nesting inside a reference", function()
      return create{ Supplier = { SupplierCode = "ACME", SupplierName = nest(64) } } end, "Supplier.SupplierName",
      "nested" },
    { "a megabyte read-only field", function() return create{ CreatedBy = MEGABYTE } end, "CreatedBy", "at most" },
    { "invalid UTF-8 in a read-only line field", function() return create(nil, { LastModifiedBy = SURROGATE }) end,
      "PurchaseOrderLines[1].LastModifiedBy", "valid UTF-8" },
    { "invalid UTF-8 in a field name", function() return create{ ["Comm\xFFents"] = "x" } end, "Comm",
      "is not a field" },

    -- GUIDs
    { "a Guid that is not one", function() return create{ Guid = "not-a-guid" } end, "Guid", "must be a GUID" },
    { "a Supplier Guid with a bad digit", function() return create{ Supplier = { Guid = GUID_A:gsub("f$", "g") } }
      end, "Supplier.Guid", "must be a GUID" },
    { "two lines with one Guid", function()
      return client.purchase_orders:create{ Supplier = { SupplierCode = "ACME" }, OrderStatus = "Parked",
        PurchaseOrderLines = { line{ Guid = GUID_A }, line{ Guid = GUID_A:upper() } } } end,
      "PurchaseOrderLines[2].Guid", "used by another line" },
    { "get with a braced Guid", function() return get("{" .. GUID_A .. "}") end, "ref",
      "must be a GUID" },
    { "get with a number", function() return get(42) end, "ref", "must be a GUID" },
    { "get with a Guid and a newline", function() return get(GUID_A .. "\n") end, "ref",
      "must be a GUID" },
    { "get with an option of the wrong type", function() return get(GUID_A, { brief = 1 })
      end, "brief", "must be a boolean" },

    -- update
    { "update with a string", function() return po:update("Placed") end, "fields", "must be a table" },
    { "update to an unknown status", function() return po:update{ OrderStatus = "Shipped" } end, "OrderStatus",
      "must be one of" },
    { "update of a computed total", function() return po:update{ Total = 5 } end, "Total", "computed by the server" },
    { "update with a negative DiscountRate", function() return po:update{ DiscountRate = -0.1 } end,
      "DiscountRate", "between 0 and 1" },
    { "update with invalid UTF-8", function() return po:update{ DeliveryName = SURROGATE } end, "DeliveryName",
      "valid UTF-8" },
    { "update with a megabyte street", function() return po:update{ DeliveryStreetAddress = MEGABYTE } end,
      "DeliveryStreetAddress", "at most 200" },
    { "update of the Guid", function() return po:update{ Guid = GUID_A } end, "Guid", "cannot be changed" },

    -- lines
    { "add_line with a string", function() return po:add_line("BOLT") end, "line", "must be a table" },
    { "add_line with quantity 0", function() return po:add_line(line{ OrderQuantity = 0 }) end, "OrderQuantity",
      "greater than 0" },
    { "add_line with a NaN quantity", function() return po:add_line(line{ OrderQuantity = 0 / 0 }) end,
      "OrderQuantity", "finite number" },
    { "add_line with a negative price", function() return po:add_line(line{ UnitPrice = -1 }) end, "UnitPrice",
      "must not be negative" },
    { "add_line with a bad line Guid", function() return po:add_line(line{ Guid = "1234" }) end, "Guid",
      "must be a GUID" },
    { "add_line with nested batches", function()
      return po:add_line(line{ PendingBatchNumbers = { { Number = "B1", Quantity = 1, CreatedOn = nest(80) } } }) end,
      "PendingBatchNumbers[1].CreatedOn", "nested" },
    { "update_line with a bad Guid", function() return po:update_line("line-1", { OrderQuantity = 1 }) end,
      "line_guid", "must be a GUID" },
    { "update_line with an infinite quantity", function()
      return po:update_line(GUID_A, { OrderQuantity = math.huge }) end, "OrderQuantity", "finite number" },
    { "update_line of the Product", function()
      return po:update_line(GUID_A, { Product = { ProductCode = "X" } }) end, "Product", "cannot be changed" },
    { "delete_line with a bad Guid", function() return po:delete_line(GUID_A:sub(2)) end, "line_guid",
      "must be a GUID" },

    -- any endpoint
    { "a path with a query", function() return client:request("GET", "/Taxes?all=1") end, "path",
      "must not carry a query" },
    { "a megabyte path", function() return client:request("GET", "/Taxes/" .. MEGABYTE) end, "path", "at most 2048" },
    { "a path in invalid UTF-8", function() return client:request("GET", "/Taxes/" .. BAD_UTF8) end, "path",
      "valid UTF-8" },
    { "an unknown method", function() return client:request("FETCH", "/Taxes") end, "method", "must be GET" },
    { "retries past the limit", function() return client:request("GET", "/Taxes", { retries = 1000 }) end,
      "opts.retries", "from 0 to 100" },
    { "a body in invalid UTF-8", function()
      return client:request("POST", "/PurchaseOrders/" .. GUID_A, { body = { Comments = BAD_UTF8 } }) end,
      "Comments", "valid UTF-8" },
  }

  -- Why a case is not refused as it should be, or nil.
  local function check(what, fn, field, rule)
    local before = sb:stats().Total
    local ok, e = pcall(fn)
    if ok then return "accepted" end
    if not unleashed.Error.is(e) then return "not an unleashed.Error: " .. tostring(e) end
    local text = tostring(e)
    if e.kind ~= "validation" then return "kind " .. e.kind .. ": " .. text end
    local named = false
    for _, d in ipairs(e.details) do
      if d.field and d.field:find(field, 1, true) and d.message:find(rule, 1, true) then named = true end
    end
    if not named or not text:find(field, 1, true) or not text:find(rule, 1, true) then
      return ("no detail names %q with %q: %s"):format(field, rule, text:sub(1, 300))
    end
    if #text > 4096 then return "the message repeats the input" end
    if sb:stats().Total ~= before then return "a request was sent" end
    assert.is_string(what)
    return nil
  end

  it("refuses " .. #cases .. " bad inputs, naming field and rule, and sends nothing", function()
    local before = sb:stats().Total
    local names, wrong = {}, {}
    for i, case in ipairs(cases) do
      local what, fn, field, rule = table.unpack(case)
      assert.is_nil(names[what], "two cases named " .. what)
      names[what] = true
      local why = check(what, fn, field, rule)
      if why then wrong[#wrong + 1] = ("case %d (%s): %s"):format(i, what, why) end
    end
    local sent = sb:stats().Total - before
    print(("\nbad input: %d cases tried, %d refused as they should be, %d requests sent"):format(#cases,
      #cases - #wrong, sent))
    assert.same({}, wrong)
    assert.equal(0, sent)
    assert.is_true(#cases >= 40)
  end)

  it("leaves the order as it was", function()
    local fresh = unleashed.new(creds)
    local got = fresh.purchase_orders:get(po.Guid)
    fresh:close()
    assert.equal(po.OrderStatus, got.OrderStatus)
    assert.equal(#po.PurchaseOrderLines, #got.PurchaseOrderLines)
    assert.equal(po.Total, got.Total)
  end)
end)
