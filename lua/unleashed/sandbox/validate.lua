-- Request validation for POST/PUT purchase orders and lines, from the API's
-- request field tables. Every problem of one request is collected (Field is
-- the path in the request, e.g. "PurchaseOrderLines[0].DiscountRate"; line
-- indices count from 0 as .NET's model binding does) and returned at once.
local json = require "unleashed.sandbox.json"
local orders = require "unleashed.sandbox.orders"

local M = {}

local fmt, floor = string.format, math.floor
local null = json.null

-- ---- dates ----------------------------------------------------------------
local function days_from_civil(y, m, d)
  y = m <= 2 and y - 1 or y
  local era = (y >= 0 and y or y - 399) // 400
  local yoe = y - era * 400
  local doy = (153 * (m + (m > 2 and -3 or 9)) + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  return era * 146097 + doe - 719468
end

local function days_in_month(y, m)
  if m == 2 then return (y % 4 == 0 and (y % 100 ~= 0 or y % 400 == 0)) and 29 or 28 end
  return (m == 4 or m == 6 or m == 9 or m == 11) and 30 or 31
end

-- ISO 8601 as the API takes it: YYYY-MM-DD, optionally THH:MM[:SS[.fff]]
-- and Z or an offset (UTC when none). Also "/Date(ms)/", so an order read
-- with GET can be sent back. Returns ms since 1970, or nil.
function M.parse_date(s)
  if type(s) ~= "string" then return nil end
  local ms = s:match("^/Date%((%-?%d+)[+-]?%d*%)/$")
  if ms then return math.tointeger(tonumber(ms)) end
  local y, mo, d, rest = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)(.*)$")
  if not y then return nil end
  y, mo, d = tonumber(y), tonumber(mo), tonumber(d)
  if mo < 1 or mo > 12 or d < 1 or d > days_in_month(y, mo) then return nil end
  local h, mi, sec, frac, off = 0, 0, 0, 0, 0
  if rest ~= "" then
    local hh, mm, tail = rest:match("^[T ](%d%d):(%d%d)(.*)$")
    if not hh then return nil end
    h, mi = tonumber(hh), tonumber(mm)
    local ss, tail2 = tail:match("^:(%d%d)(.*)$")
    if ss then
      sec, tail = tonumber(ss), tail2
      local f, tail3 = tail:match("^%.(%d+)(.*)$")
      if f then frac, tail = tonumber((f .. "00"):sub(1, 3)), tail3 end
    end
    if tail == "Z" or tail == "" then
      off = 0
    else
      local sign, oh, om = tail:match("^([+-])(%d%d):?(%d%d)$")
      if not sign then return nil end
      off = (tonumber(oh) * 60 + tonumber(om)) * (sign == "+" and 1 or -1)
    end
    if h > 23 or mi > 59 or sec > 59 then return nil end
  end
  return ((days_from_civil(y, mo, d) * 24 + h) * 60 + mi - off) * 60000 + sec * 1000 + frac
end

function M.is_guid(s)
  return type(s) == "string" and #s == 36
    and s:match("^%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$") ~= nil
end

-- ---- the collector ---------------------------------------------------------
local Errors = {}
Errors.__index = Errors

function M.errors()
  return setmetatable({ items = {} }, Errors)
end

-- code: an ErrorCode for the item (the API's error items may carry one;
-- which codes it uses is not documented, so the sandbox names its own).
function Errors:add(field, description, code)
  self.items[#self.items + 1] = { Field = field, Description = description, ErrorCode = code }
end

function Errors:any() return #self.items > 0 end

function Errors:json()
  local items = {}
  for i, e in ipairs(self.items) do
    items[i] = '{"Field":' .. json.str(e.Field) .. ',"Description":' .. json.str(e.Description)
      .. (e.ErrorCode and ',"ErrorCode":' .. json.str(e.ErrorCode) or "") .. "}"
  end
  return '{"Items":' .. json.array(items) .. "}"
end

-- ---- typed field readers ---------------------------------------------------
-- Each returns the value (nil when absent or null) and records problems.
-- `present` tells absent from null where a PUT must know the difference.
local function join(prefix, name) return prefix == "" and name or prefix .. "." .. name end

local function read_string(t, name, prefix, max, errs)
  local v = t[name]
  if v == nil or v == null then return nil end
  local field = join(prefix, name)
  if type(v) ~= "string" then errs:add(field, field .. " must be a string"); return nil end
  local n = utf8.len(v)
  if not n then errs:add(field, field .. " must be valid UTF-8"); return nil end
  if n > max then
    errs:add(field, fmt("%s must be at most %d characters (got %d)", field, max, n))
    return nil
  end
  if v:find("\1", 1, true) then errs:add(field, field .. " must not contain control character U+0001") end
  return v
end

local function read_number(t, name, prefix, errs, decimals)
  local v = t[name]
  if v == nil or v == null then return nil end
  local field = join(prefix, name)
  if type(v) ~= "number" then errs:add(field, field .. " must be a number"); return nil end
  if v ~= v or v == math.huge or v == -math.huge or math.abs(v) > 1e15 then
    errs:add(field, field .. " is out of range"); return nil
  end
  if decimals == 2 then return orders.round2(v) end
  if decimals == 4 then return orders.round4(v) end
  return v + 0.0
end

local function read_date(t, name, prefix, errs)
  local v = t[name]
  if v == nil or v == null then return nil end
  local field = join(prefix, name)
  local ms = type(v) == "string" and M.parse_date(v)
  if not ms then
    errs:add(field, field .. " must be an ISO 8601 date such as 2019-07-09 or 2019-07-09T15:15:15 (UTC)")
    return nil
  end
  return ms
end

local function read_object(t, name, prefix, errs)
  local v = t[name]
  if v == nil or v == null then return nil end
  if type(v) ~= "table" or (#v > 0) then
    errs:add(join(prefix, name), join(prefix, name) .. " must be an object"); return nil
  end
  return v
end

local function read_array(t, name, prefix, errs)
  local v = t[name]
  if v == nil or v == null then return nil end
  if type(v) ~= "table" or (next(v) ~= nil and #v == 0) then
    errs:add(join(prefix, name), join(prefix, name) .. " must be an array"); return nil
  end
  return v
end

local function read_discount(t, prefix, errs)
  local d = read_number(t, "DiscountRate", prefix, errs)
  if d and (d < 0 or d > 1) then
    errs:add(join(prefix, "DiscountRate"), join(prefix, "DiscountRate") .. " must be between 0 and 1")
    return nil, true
  end
  return d
end

-- A reference by Guid and/or code: { label, guid_map, code_field, code_map, code_max }.
local function read_ref(t, name, prefix, errs, spec)
  local obj = read_object(t, name, prefix, errs)
  if not obj then return nil end
  local path = join(prefix, name)
  local guid = read_string(obj, "Guid", path, 36, errs)
  local code = read_string(obj, spec.code_field, path, spec.code_max, errs)
  local by_guid, by_code
  if guid then
    if not M.is_guid(guid) then
      errs:add(path .. ".Guid", path .. ".Guid must be a GUID (XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX)")
      return nil
    end
    by_guid = spec.guid_map[guid:lower()]
    if not by_guid then
      errs:add(path .. ".Guid", fmt("No %s with Guid %s", spec.label, guid), "NotFound")
      return nil
    end
  end
  if code then
    by_code = spec.code_map[code:lower()]
    if not by_code then
      errs:add(path .. "." .. spec.code_field, fmt("No %s with %s %q", spec.label, spec.code_field, code),
               "NotFound")
      return nil
    end
  end
  if by_guid and by_code and by_guid ~= by_code then
    errs:add(path, fmt("%s.Guid and %s.%s name different %ss", path, path, spec.code_field, spec.label))
    return nil
  end
  if not (by_guid or by_code) and not (guid or code) then
    errs:add(path, fmt("%s needs a valid Guid or %s", path, spec.code_field))
  end
  local found = by_guid or by_code
  if found and found.Obsolete then
    errs:add(path, fmt("%s %s is obsolete", spec.label:gsub("^%l", string.upper), found[spec.code_field]),
             "Obsolete")
    return nil
  end
  return found
end

local function supplier_spec(ref)
  return { label = "supplier", guid_map = ref.supplier_by_guid, code_field = "SupplierCode",
           code_map = ref.supplier_by_code, code_max = 500 }
end
local function warehouse_spec(ref)
  return { label = "warehouse", guid_map = ref.warehouse_by_guid, code_field = "WarehouseCode",
           code_map = ref.warehouse_by_code, code_max = 15 }
end
local function currency_spec(ref)
  return { label = "currency", guid_map = ref.currency_by_guid, code_field = "CurrencyCode",
           code_map = ref.currency_by_code, code_max = 3 }
end
local function product_spec(ref)
  return { label = "product", guid_map = ref.product_by_guid, code_field = "ProductCode",
           code_map = ref.product_by_code, code_max = 100 }
end
local function unit_spec(ref)
  return { label = "unit of measure", guid_map = ref.unit_by_guid, code_field = "Name",
           code_map = ref.unit_by_name, code_max = 20 }
end

local function tax_by_rate(ref, rate) return orders.tax_by_rate(ref, rate) end

-- The order's own tax: TaxCode (takes precedence over Tax), Tax {TaxCode or
-- TaxRate}, or TaxRate alone. Returns the tax, or nil when none was given.
-- Codes and rates name taxes that can apply to expenses and are not
-- obsolete; a Tax's Guid is not read (orders show the all-zero Guid).
local function read_order_tax(t, errs, ref, allow_tax_object)
  local code = read_string(t, "TaxCode", "", 50, errs)
  local rate = read_number(t, "TaxRate", "", errs)
  local tax
  if code then
    tax = ref.expense_tax_by_code[code:lower()]
    if not tax then
      errs:add("TaxCode", fmt("No tax with TaxCode %q among the taxes for expenses", code), "NotFound")
      return nil
    end
  elseif allow_tax_object and t.Tax ~= nil and t.Tax ~= null then
    local obj = read_object(t, "Tax", "", errs)
    if obj then
      local tcode = read_string(obj, "TaxCode", "Tax", 25, errs)
      local trate = read_number(obj, "TaxRate", "Tax", errs)
      if tcode then
        tax = ref.expense_tax_by_code[tcode:lower()]
        if not tax then
          errs:add("Tax.TaxCode", fmt("No tax with TaxCode %q among the taxes for expenses", tcode),
                   "NotFound")
          return nil
        end
        if trate and math.abs(trate - tax.TaxRate) > 1e-9 then
          errs:add("Tax.TaxRate", fmt("Tax.TaxRate does not match the rate of tax %s (%s)", tax.TaxCode,
                                      json.dec(tax.TaxRate)))
          return nil
        end
      elseif trate then
        tax = tax_by_rate(ref, trate)
        if not tax then
          errs:add("Tax.TaxRate", fmt("No tax with TaxRate %s", json.dec(trate)))
          return nil
        end
      else
        errs:add("Tax", "Tax needs a valid TaxCode or TaxRate")
      end
    end
  elseif rate then
    tax = tax_by_rate(ref, rate)
    if not tax then errs:add("TaxRate", fmt("No tax with TaxRate %s", json.dec(rate))); return nil end
  end
  if tax and rate and math.abs(rate - tax.TaxRate) > 1e-9 then
    errs:add("TaxRate", fmt("TaxRate does not match the rate of tax %s (%s)", tax.TaxCode,
      json.dec(tax.TaxRate)))
    return nil
  end
  return tax
end

local header_strings = {
  { "Comments", 1024 }, { "DeliveryCity", 50 }, { "DeliveryCountry", 50 }, { "DeliveryName", 50 },
  { "DeliveryPostCode", 50 }, { "DeliveryRegion", 50 }, { "DeliveryStreetAddress", 200 },
  { "DeliveryStreetAddress2", 200 }, { "DeliverySuburb", 50 }, { "SupplierEORI", 20 }, { "SupplierRef", 500 },
}
local header_dates = { "DeliveryDate", "OrderDate", "SupplierInvoiceDate" }

M.post_statuses = { Parked = true, Placed = true, Complete = true }
M.put_statuses = { Parked = true, Placed = true, Complete = true, Costed = true }

-- Fields shared by POST and PUT of an order. Returns a table `f` of the
-- values given and `f.present[name]` for fields sent (null included).
local function read_header(t, errs, ref, statuses, is_post)
  local f = { present = {} }
  for k in pairs(t) do f.present[k] = true end
  for _, s in ipairs(header_strings) do f[s[1]] = read_string(t, s[1], "", s[2], errs) end
  for _, d in ipairs(header_dates) do f[d] = read_date(t, d, "", errs) end
  f.DiscountRate = read_discount(t, "", errs)
  f.ExchangeRate = read_number(t, "ExchangeRate", "", errs)
  if f.ExchangeRate and f.ExchangeRate <= 0 then
    errs:add("ExchangeRate", "ExchangeRate must be greater than 0"); f.ExchangeRate = nil
  end
  local status = read_string(t, "OrderStatus", "", 50, errs)
  if t.OrderStatus == nil or t.OrderStatus == null then
    errs:add("OrderStatus", "OrderStatus is required")
  elseif status then
    -- Status names are matched case-insensitively and stored as the API spells them.
    local canonical
    for name in pairs(M.put_statuses) do if name:lower() == status:lower() then canonical = name end end
    if not canonical and status:lower() == "receipted" then canonical = "Receipted" end
    if canonical and statuses[canonical] then
      f.OrderStatus = canonical
    else
      f.OrderStatus_raw = canonical
      local allowed = {}
      for name in pairs(statuses) do allowed[#allowed + 1] = name end
      table.sort(allowed)
      f.bad_status = fmt("OrderStatus must be one of %s on %s (got %q)", table.concat(allowed, ", "),
                         is_post and "POST" or "PUT", status)
    end
  end
  if t.Supplier == nil or t.Supplier == null then
    errs:add("Supplier", "Supplier is required")
  else
    f.supplier = read_ref(t, "Supplier", "", errs, supplier_spec(ref))
  end
  f.warehouse = read_ref(t, "Warehouse", "", errs, warehouse_spec(ref))
  f.tax = read_order_tax(t, errs, ref, is_post)
  return f
end

-- ---- lines -----------------------------------------------------------------
-- Reads one line. mode: "post" (new line) or "put" (changes to `existing`).
-- `order_ctx` = { supplier, tax, ref } gives the tax hierarchy for LineTax.
function M.read_line(t, prefix, errs, ref, mode, existing)
  local l = { present = {}, ref = ref }
  if type(t) ~= "table" or (#t > 0) then
    errs:add(prefix == "" and "PurchaseOrderLine" or prefix, (prefix == "" and "The line" or prefix)
             .. " must be an object")
    return nil
  end
  for k in pairs(t) do l.present[k] = true end
  local nerr = #errs.items
  local function required(name)
    if t[name] == nil or t[name] == null then
      errs:add(join(prefix, name), join(prefix, name) .. " is required")
    end
  end
  l.Comments = read_string(t, "Comments", prefix, 1024, errs)
  l.DeliveryDate = read_date(t, "DeliveryDate", prefix, errs)
  if l.DeliveryDate then l.DeliveryDate = l.DeliveryDate // 86400000 * 86400000 end  -- date only
  l.DiscountRate = read_discount(t, prefix, errs)
  l.LineTax = read_number(t, "LineTax", prefix, errs, 2)
  l.LineTotal = read_number(t, "LineTotal", prefix, errs, 2)
  l.OrderQuantity = read_number(t, "OrderQuantity", prefix, errs, 4)
  l.UnitPrice = read_number(t, "UnitPrice", prefix, errs, 4)
  l.ReceiptQuantity = read_number(t, "ReceiptQuantity", prefix, errs, 4)
  required("LineTax"); required("LineTotal"); required("OrderQuantity")
  if l.OrderQuantity and l.OrderQuantity <= 0 then
    errs:add(join(prefix, "OrderQuantity"), join(prefix, "OrderQuantity") .. " must be greater than 0")
  end
  if l.UnitPrice and l.UnitPrice < 0 then
    errs:add(join(prefix, "UnitPrice"), join(prefix, "UnitPrice") .. " must not be negative")
  end
  if l.ReceiptQuantity and l.ReceiptQuantity < 0 then
    errs:add(join(prefix, "ReceiptQuantity"), join(prefix, "ReceiptQuantity") .. " must not be negative")
  end
  local guid = read_string(t, "Guid", prefix, 36, errs)
  if guid and not M.is_guid(guid) then
    local field = join(prefix, "Guid")
    errs:add(field, field .. " must be a GUID (XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX)")
  elseif guid then
    l.Guid = guid:lower()
  end
  local product
  if mode == "post" then
    local n = t.LineNumber
    required("LineNumber"); required("Product")
    if n ~= nil and n ~= null then
      if math.type(n) == "integer" or (type(n) == "number" and n == floor(n) and math.abs(n) < 2^31) then
        l.LineNumber = floor(n)
        if l.LineNumber < 1 then
          local field = join(prefix, "LineNumber")
          errs:add(field, field .. " must be 1 or more")
          l.LineNumber = nil
        end
      else
        errs:add(join(prefix, "LineNumber"), join(prefix, "LineNumber") .. " must be an integer")
      end
    end
    product = read_ref(t, "Product", prefix, errs, product_spec(ref))
    l.product = product
    l.Volume = read_number(t, "Volume", prefix, errs)
    l.Weight = read_number(t, "Weight", prefix, errs)
    -- The unit must be one of the product's purchase units; none means its base unit.
    local unit = read_ref(t, "UnitOfMeasure", prefix, errs, unit_spec(ref))
    if product then
      l.unit, l.factor = product.UnitOfMeasure.Guid, 1
      if unit then
        local ok = false
        for _, pu in ipairs(product.purchase_units) do
          if pu.unit == unit.Guid then l.unit, l.factor, ok = pu.unit, pu.factor, true end
        end
        if not ok then
          errs:add(join(prefix, "UnitOfMeasure"), fmt("%s %q is not a purchasing unit of product %s",
                   join(prefix, "UnitOfMeasure"), unit.Name, product.ProductCode))
        end
      end
    end
  else
    product = ref.product_by_guid[existing.product]
    l.product = product
    l.unit, l.factor = existing.unit, existing.factor
    -- UnitOfMeasure cannot change (N/A on PUT). Sent, it must be the line's
    -- own unit, and the quantities are in it (the seed: "treated in the
    -- purchasing unit if UnitOfMeasure is provided"); without it they are in
    -- the product's base unit, the unit GET shows OrderQuantity in, so that a
    -- quantity read back and sent again changes nothing.
    local sent_unit = t.UnitOfMeasure ~= nil and t.UnitOfMeasure ~= null
    local unit = read_ref(t, "UnitOfMeasure", prefix, errs, unit_spec(ref))
    local own = ref.unit_by_guid[existing.unit]
    if unit and unit.Guid ~= existing.unit then
      errs:add(join(prefix, "UnitOfMeasure"), fmt("%s cannot change on an existing line (it is %s)",
               join(prefix, "UnitOfMeasure"), own.Name))
    elseif not sent_unit then
      for _, name in ipairs{ "OrderQuantity", "ReceiptQuantity" } do
        if l[name] then
          local q = orders.to_line_unit(l[name], existing.factor)
          if not q then
            local field = join(prefix, name)
            errs:add(field, fmt("%s %s is in the product's base unit %s (no UnitOfMeasure was sent) and is "
              .. "not a quantity of the line's unit %s (%s %s each) to 4 places", field,
              orders.qty_text(l[name]), product.UnitOfMeasure.Name, own.Name,
              orders.qty_text(existing.factor), product.UnitOfMeasure.Name))
          end
          l[name] = q
        end
      end
    end
  end
  -- Pending batches and serials (JSON names Number and Identifier; the
  -- response's BatchNumber and SerialNumber are accepted too, for round trips).
  local pb = read_array(t, "PendingBatchNumbers", prefix, errs)
  if pb then
    l.pending_batches = {}
    for i, b in ipairs(pb) do
      local p = fmt("%s[%d]", join(prefix, "PendingBatchNumbers"), i - 1)
      if type(b) ~= "table" then errs:add(p, p .. " must be an object")
      else
        local num = b.Number ~= nil and read_string(b, "Number", p, 50, errs)
          or read_string(b, "BatchNumber", p, 50, errs)
        local q = read_number(b, "Quantity", p, errs, 4)
        local exp = read_date(b, "ExpiryDate", p, errs)
        if not num then errs:add(p .. ".Number", p .. ".Number is required") end
        if b.Quantity == nil or b.Quantity == null then
          errs:add(p .. ".Quantity", p .. ".Quantity is required")
        end
        l.pending_batches[i] = { BatchNumber = num, Quantity = q, ExpiryDate = exp }
      end
    end
    if product and not product.IsBatchTracked and #pb > 0 then
      errs:add(join(prefix, "PendingBatchNumbers"), fmt("Product %s is not batch-tracked",
        product.ProductCode))
    end
  end
  local ps = read_array(t, "PendingSerialNumbers", prefix, errs)
  if ps then
    l.pending_serials = {}
    for i, s in ipairs(ps) do
      local p = fmt("%s[%d]", join(prefix, "PendingSerialNumbers"), i - 1)
      if type(s) ~= "table" then errs:add(p, p .. " must be an object")
      else
        local id = s.Identifier ~= nil and read_string(s, "Identifier", p, 50, errs)
          or read_string(s, "SerialNumber", p, 50, errs)
        if not id then errs:add(p .. ".Identifier", p .. ".Identifier is required") end
        l.pending_serials[i] = { SerialNumber = id }
      end
    end
    if product and not product.IsSerialized and #ps > 0 then
      errs:add(join(prefix, "PendingSerialNumbers"), fmt("Product %s is not serialised", product.ProductCode))
    end
  end
  l.ok = #errs.items == nerr
  return l
end

-- Line arithmetic: LineTotal is checked (unleashed-api.md: the server
-- checks round2(OrderQuantity x UnitPrice x (1 - DiscountRate))). LineTax is
-- not refused when it differs from the rate the hierarchy gives: the stored
-- line takes that rate's tax, as the recorded create
-- (salesorder_create_201_2014.xml: TaxTotal 10.0 sent, 0.000 stored) shows
-- the live server recomputing. The request's own sums are checked by the
-- caller.
function M.check_line_arithmetic(l, prefix, errs, discount)
  if not (l.OrderQuantity and l.LineTotal and l.product) then return end
  local price = l.UnitPrice or 0
  local expected = orders.line_total(l.OrderQuantity, price, discount)
  if orders.cents(expected) ~= orders.cents(l.LineTotal) then
    errs:add(join(prefix, "LineTotal"),
      fmt("%s must equal round2(OrderQuantity x UnitPrice x (1 - DiscountRate))"
             .. " = %.2f (got %.2f)", join(prefix, "LineTotal"), expected, l.LineTotal))
  end
end

-- A line sent without UnitPrice is priced at the product's default purchase
-- price (base currency, per base unit) in the line's unit and the order's
-- currency, rounded to 4dp.
function M.default_price(l, exchange_rate)
  if l.UnitPrice == nil and l.product and l.factor then
    l.UnitPrice = orders.round4(l.product.DefaultPurchasePrice * l.factor * exchange_rate)
  end
end

-- ---- POST order -------------------------------------------------------------
function M.order_post(t, ref, errs)
  if type(t) ~= "table" or (#t > 0) then
    errs:add("", "The request body must be a JSON object")
    return nil
  end
  local f = read_header(t, errs, ref, M.post_statuses, true)
  if f.bad_status then errs:add("OrderStatus", f.bad_status) end
  f.OrderNumber = read_string(t, "OrderNumber", "", 15, errs)
  local g = t.Guid
  if g ~= nil and g ~= null then f.Guid = read_string(t, "Guid", "", 36, errs) end
  f.currency = read_ref(t, "Currency", "", errs, currency_spec(ref))
  if f.currency and f.supplier and f.currency ~= f.supplier.Currency then
    errs:add("Currency", fmt("Currency must match the supplier's currency (%s for supplier %s, got %s)",
             f.supplier.Currency.CurrencyCode, f.supplier.SupplierCode, f.currency.CurrencyCode))
  end
  for _, name in ipairs{ "SubTotal", "TaxTotal", "Total" } do
    f[name] = read_number(t, name, "", errs, 2)
    if t[name] == nil or t[name] == null then errs:add(name, name .. " is required") end
  end
  local raw_lines = read_array(t, "PurchaseOrderLines", "", errs)
  f.lines = {}
  local seen, sums_ok = {}, true
  local sub_c, tax_c = 0, 0
  for i, raw in ipairs(raw_lines or {}) do
    local prefix = fmt("PurchaseOrderLines[%d]", i - 1)
    local l = M.read_line(raw, prefix, errs, ref, "post")
    if l then
      if l.LineNumber then
        if seen[l.LineNumber] then
          errs:add(prefix .. ".LineNumber", fmt("%s.LineNumber %d is used by another line", prefix,
            l.LineNumber))
        end
        seen[l.LineNumber] = true
      end
      if l.Guid then
        if seen[l.Guid] then errs:add(prefix .. ".Guid", prefix .. ".Guid is used by another line") end
        seen[l.Guid] = true
      end
      M.default_price(l, f.ExchangeRate or (f.supplier and f.supplier.Currency.ExchangeRate) or 1)
      M.check_line_arithmetic(l, prefix, errs, l.DiscountRate)
      f.lines[#f.lines + 1] = l
    end
    if l and l.LineTotal and l.LineTax then
      sub_c, tax_c = sub_c + orders.cents(l.LineTotal), tax_c + orders.cents(l.LineTax)
    else
      sums_ok = false
    end
  end
  if (f.OrderStatus == "Placed" or f.OrderStatus == "Complete") and (not raw_lines or #raw_lines == 0) then
    errs:add("PurchaseOrderLines", fmt("A %s purchase order needs at least one line", f.OrderStatus))
  end
  -- Totals, compared to the cent after rounding, against the lines as sent.
  if sums_ok then
    if f.SubTotal and orders.cents(f.SubTotal) ~= sub_c then
      errs:add("SubTotal", fmt("SubTotal must equal the sum of the lines' LineTotal = %.2f (got %.2f)",
                               sub_c / 100, f.SubTotal))
    end
    if f.TaxTotal and orders.cents(f.TaxTotal) ~= tax_c then
      errs:add("TaxTotal", fmt("TaxTotal must equal the sum of the lines' LineTax = %.2f (got %.2f)",
                               tax_c / 100, f.TaxTotal))
    end
  end
  if f.Total and f.SubTotal and f.TaxTotal
      and orders.cents(f.Total) ~= orders.cents(f.SubTotal) + orders.cents(f.TaxTotal) then
    errs:add("Total", fmt("Total must equal SubTotal + TaxTotal = %.2f (got %.2f)", f.SubTotal + f.TaxTotal,
      f.Total))
  end
  return f
end

-- ---- PUT order --------------------------------------------------------------
-- Fields the seed marks N/A for PUT (Currency, Guid, OrderNumber, lines,
-- totals, Tax, ReceivedDate) are ignored, so an order read with GET can be
-- sent back as it is.
function M.order_put(t, ref, errs, current_status)
  if type(t) ~= "table" or (#t > 0) then
    errs:add("", "The request body must be a JSON object")
    return nil
  end
  local f = read_header(t, errs, ref, M.put_statuses, false)
  if f.bad_status then
    -- Sending back the status the order already has is not a transition.
    if f.OrderStatus_raw and f.OrderStatus_raw == current_status then
      f.OrderStatus = current_status
    else
      errs:add("OrderStatus", f.bad_status)
    end
  end
  return f
end

return M
