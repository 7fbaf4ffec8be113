-- `po create`'s input: purchase orders from a JSON file (one order or an
-- array) or a CSV file (one order line per row), read whole and checked
-- whole before anything is sent. Problems name the file and the record (and,
-- for a CSV line, its product) the way a person finds them in the file.
local cjson = require("cjson").new()
local csv = require "unleashed.cli.csv"
local flags = require "unleashed.cli.flags"
local Error = require "unleashed.error"
local validate = require "unleashed.validate"
local guid = require "unleashed.guid"

local M = {}

local REQUIRED = { "SupplierCode", "ProductCode", "UnitPrice" }
-- order-level columns: column -> how it goes into the order
local ORDER_COLUMNS = {
  Order = false, SupplierCode = "Supplier.SupplierCode", OrderStatus = "OrderStatus",
  WarehouseCode = "Warehouse.WarehouseCode", DeliveryDate = "DeliveryDate", SupplierRef = "SupplierRef",
  Comments = "Comments", TaxCode = "TaxCode",
}
-- line-level columns
local LINE_COLUMNS = {
  ProductCode = "Product.ProductCode", OrderQuantity = "OrderQuantity", Quantity = "OrderQuantity",
  UnitPrice = "UnitPrice", UnitOfMeasure = "UnitOfMeasure.Name", DiscountRate = "DiscountRate",
  LineComments = "Comments",
}
local NUMBERS = { OrderQuantity = true, Quantity = true, UnitPrice = true, DiscountRate = true }

local function column_list()
  local names = {}
  for k in pairs(ORDER_COLUMNS) do names[#names + 1] = k end
  for k in pairs(LINE_COLUMNS) do names[#names + 1] = k end
  table.sort(names)
  return table.concat(names, ", ")
end

local function refuse(problems)
  for i, p in ipairs(problems) do p.seq = i end
  table.sort(problems, function(a, b)
    if (a.order or 0) ~= (b.order or 0) then return (a.order or 0) < (b.order or 0) end
    return a.seq < b.seq
  end)
  for _, p in ipairs(problems) do p.order, p.seq = nil, nil end
  error(Error.new("validation", "invalid purchase orders: nothing was sent", { details = problems }), 0)
end

-- Sets a dotted path ("Supplier.SupplierCode") in t.
local function put(t, path, v)
  local head, rest = path:match("^([^.]+)%.(.+)$")
  if head then
    t[head] = t[head] or {}
    return put(t[head], rest, v)
  end
  t[path] = v
end

-- ---- reading ----------------------------------------------------------------------

local function from_json(text, name)
  local ok, doc = pcall(cjson.decode, text)
  if not ok then
    refuse { { field = name, message = "is not JSON: " .. tostring(doc):gsub("^.-: ", "") } }
  end
  if type(doc) ~= "table" then
    refuse { { field = name, message = "must hold an order or an array of orders" } }
  end
  local list = doc[1] ~= nil and doc or { doc }
  local orders = {}
  for i, o in ipairs(list) do
    if type(o) ~= "table" then
      refuse { { field = ("%s order %d"):format(name, i), message = "must be an object" } }
    end
    orders[i] = { order = o, label = #list > 1 and ("%s order %d"):format(name, i) or name }
  end
  if #orders == 0 then refuse { { field = name, message = "holds no order" } } end
  return orders
end

local function from_csv(text, name)
  local ok, rows, header = pcall(csv.parse_with_header, text)
  if not ok then refuse { { field = name, message = tostring(rows):gsub("^csv: ", "") } } end
  local problems = {}
  local present = {}
  for _, h in ipairs(header) do
    present[h] = true
    if ORDER_COLUMNS[h] == nil and not LINE_COLUMNS[h] then
      problems[#problems + 1] = { field = name, message = ("unknown column %q (columns: %s)"):format(h,
        column_list()) }
    end
  end
  for _, h in ipairs(REQUIRED) do
    if not present[h] then
      problems[#problems + 1] = { field = name, message = "has no " .. h .. " column" }
    end
  end
  if not present.OrderQuantity and not present.Quantity then
    problems[#problems + 1] = { field = name, message = "has no OrderQuantity (or Quantity) column" }
  end
  if #problems > 0 then refuse(problems) end
  if #rows == 0 then refuse { { field = name, message = "holds no rows" } } end

  local orders, by_key = {}, {}
  for r, row in ipairs(rows) do
    local where = ("%s record %d"):format(name, r)
    local key = present.Order and row.Order ~= "" and ("order " .. row.Order)
      or ("supplier " .. row.SupplierCode)
    local entry = by_key[key]
    if not entry then
      entry = { order = { PurchaseOrderLines = {} }, rows = {}, products = {}, first = r, key = key }
      by_key[key] = entry
      orders[#orders + 1] = entry
    end
    local line = {}
    for col, v in pairs(row) do
      if v ~= "" then
        local value = v
        if NUMBERS[col] then
          value = tonumber(v)
          if not value or value ~= value or value == math.huge or value == -math.huge then
            problems[#problems + 1] = { order = #orders, field = where,
              message = ("%s must be a number, got %q"):format(col, v) }
          end
        elseif col == "DeliveryDate" then
          local dok, derr = pcall(flags.date, v, "DeliveryDate")
          if not dok then
            problems[#problems + 1] = { order = #orders, field = where,
              message = tostring(derr.message or derr):gsub("^%-%-", "") }
          end
        end
        if LINE_COLUMNS[col] then
          put(line, LINE_COLUMNS[col], value)
        elseif ORDER_COLUMNS[col] then
          -- order-level values: the same in every row of the order
          local path = ORDER_COLUMNS[col]
          local before = entry.seen and entry.seen[col]
          entry.seen = entry.seen or {}
          if before ~= nil and before ~= v then
            problems[#problems + 1] = { order = #orders, field = where,
              message = ("%s is %q here but %q in record %d of the same order")
                :format(col, v, before, entry.first) }
          end
          entry.seen[col] = v
          put(entry.order, path, value)
        end
      end
    end
    local lines = entry.order.PurchaseOrderLines
    lines[#lines + 1] = line
    entry.rows[#lines] = r
    entry.products[#lines] = row.ProductCode
  end
  if #problems > 0 then refuse(problems) end
  for _, e in ipairs(orders) do
    local records = {}
    for i, r in ipairs(e.rows) do records[i] = tostring(r) end
    e.label = ("%s records %s (%s)"):format(name, table.concat(records, ", "), e.key)
    e.name = name
  end
  return orders
end

-- Reads FILE (or stdin for "-"): { kind, name, orders = { { order, label, ... } } }.
function M.read(path, stdin, topic)
  local text
  if path == "-" then
    text = (stdin or io.stdin):read("a")
  else
    local f = io.open(path, "rb")
    if not f then flags.usage_error(("cannot open %s"):format(path), topic) end
    text = f:read("a")
    f:close()
    if not text then flags.usage_error(("cannot read %s (a folder?)"):format(path), topic) end
  end
  local name = path == "-" and "stdin" or path
  local kind
  if path:lower():match("%.json$") then kind = "json"
  elseif path:lower():match("%.csv$") then kind = "csv"
  else kind = text:match("^%s*[%[{]") and "json" or "csv" end
  local orders = kind == "json" and from_json(text, name) or from_csv(text, name)
  return { kind = kind, name = name, orders = orders }
end

-- ---- checking and pricing ----------------------------------------------------------------

-- Where a problem with `field` of entry e is in the file: a CSV line's
-- record and product, or the order's label.
local function locate(e, field)
  local i, rest = tostring(field or ""):match("^PurchaseOrderLines%[(%d+)%]%.?(.*)$")
  i = tonumber(i)
  if i and e.rows and e.rows[i] then
    return ("%s record %d (ProductCode %s)%s"):format(e.name, e.rows[i], tostring(e.products[i]),
      rest ~= "" and (": " .. rest) or ""), true
  end
  return e.label .. (field and field ~= "" and (": " .. field) or ""), false
end

-- Checks and prices every order (the arithmetic the create would do, with
-- the look-ups it needs), choosing each order's Guid. Returns
-- { { body, label } } or raises one validation error naming every problem.
function M.prepare(client, source, status)
  local fill_order = require("unleashed.purchase_orders").fill_order
  local problems, prepared = {}, {}
  for n, e in ipairs(source.orders) do
    local t = e.order
    if status then t.OrderStatus = status end
    if t.OrderStatus == nil and source.kind == "csv" then t.OrderStatus = "Parked" end
    local body, ps = validate.order(t, "post")
    if #ps == 0 then
      body.Guid = body.Guid or guid.new()
      local ok, fps = pcall(fill_order, client, body)
      if not ok then
        if not Error.is(fps) or fps.kind ~= "validation" then error(fps, 0) end
        ps = fps.details
      else
        ps = fps
      end
    end
    for _, p in ipairs(ps) do
      problems[#problems + 1] = { order = n, field = (locate(e, p.field)), message = p.message }
    end
    prepared[n] = { body = body, label = e.label }
  end
  if #problems > 0 then refuse(problems) end
  return prepared
end

M.locate = locate

return M
