-- Input checks made before any request: every rule a value breaks is
-- reported (field path and rule), so a script learns everything wrong with
-- an order from one error. Checked values come back as a fresh table with
-- decimals rounded to the places the server keeps and os.time() dates turned
-- into ISO text; the caller's table is never changed.
local decimal = require "unleashed.decimal"
local dates = require "unleashed.dates"
local guid = require "unleashed.guid"
local json = require "unleashed.json"
local core = require "unleashed.core"

local M = {}

local null = json.null

local function join(path, key)
  if type(key) == "number" then return path .. "[" .. key .. "]" end
  if path == "" then return key end
  return path .. "." .. key
end

local function finite(v)
  return v == v and v ~= math.huge and v ~= -math.huge
end

-- ---- field types --------------------------------------------------------
-- A type is { check = function(v, path, problems) -> value }.

local function add(problems, path, message)
  problems[#problems + 1] = { field = path, message = message }
end

function M.string(max, opts)
  opts = opts or {}
  return { kind = "string", check = function(v, path, problems)
    if type(v) ~= "string" then return add(problems, path, "must be a string") end
    local n = utf8.len(v)
    if not n then return add(problems, path, "must be valid UTF-8") end
    if opts.nonempty and v:find("^%s*$") then return add(problems, path, "must not be empty") end
    if max and n > max then return add(problems, path, "must be at most " .. max .. " characters") end
    return v
  end }
end

-- Decimals: finite numbers, optionally rounded to `places` (the server's
-- (2dp)/(4dp)), optionally within [min, max].
function M.decimal(places, min, max)
  local range
  if min and max then range = "must be between " .. min .. " and " .. max
  elseif min then range = min == 0 and "must not be negative" or ("must be at least " .. min) end
  return { kind = "decimal", places = places, check = function(v, path, problems)
    if type(v) ~= "number" then return add(problems, path, "must be a number") end
    if not finite(v) then return add(problems, path, "must be a finite number (not NaN or infinite)") end
    if (min and v < min) or (max and v > max) then return add(problems, path, range) end
    if places then return (decimal.round_number(v, places)) end
    return v
  end }
end

-- A decimal that must be greater than zero (quantities ordered).
function M.positive(places)
  local base = M.decimal(places)
  return { kind = "decimal", places = places, check = function(v, path, problems)
    local n = #problems
    local out = base.check(v, path, problems)
    if #problems == n and v <= 0 then return add(problems, path, "must be greater than 0") end
    return out
  end }
end

function M.integer(min)
  return { kind = "integer", check = function(v, path, problems)
    local i = math.tointeger(v)
    if type(v) ~= "number" or not i then return add(problems, path, "must be an integer") end
    if min and i < min then return add(problems, path, "must be at least " .. min) end
    return i
  end }
end

M.boolean = { kind = "boolean", check = function(v, path, problems)
  if type(v) ~= "boolean" then return add(problems, path, "must be a boolean") end
  return v
end }

M.guid = { kind = "guid", check = function(v, path, problems)
  if not guid.valid(v) then
    return add(problems, path, "must be a GUID (XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX, hex digits)")
  end
  return v
end }

M.date = { kind = "date", check = function(v, path, problems)
  local s, rule = dates.coerce(v, false)
  if not s then return add(problems, path, rule) end
  return s
end }

function M.one_of(values)
  local set = {}
  for _, s in ipairs(values) do set[s] = true end
  local rule = "must be one of " .. table.concat(values, ", ")
  return { kind = "one_of", check = function(v, path, problems)
    if type(v) ~= "string" or not set[v] then return add(problems, path, rule) end
    return v
  end }
end

-- Free-form values (fields the API returns, bodies of any endpoint): only
-- what JSON can carry and the server can read, so that bad bytes, absurd
-- nesting or huge texts are refused here rather than sent.
M.PLAIN_DEPTH, M.PLAIN_TEXT = 16, 4096

local function plain(v, path, problems, depth, max_depth, max_text)
  local tv = type(v)
  if tv == "string" then
    local n = utf8.len(v)
    if not n then return add(problems, path, "must be valid UTF-8") end
    if n > max_text then return add(problems, path, "must be at most " .. max_text .. " characters") end
  elseif tv == "number" then
    if not finite(v) then return add(problems, path, "must be a finite number (not NaN or infinite)") end
  elseif tv == "table" and v ~= null then
    if depth >= max_depth then
      return add(problems, path, "is nested too deeply (more than " .. max_depth .. " levels)")
    end
    for k, x in pairs(v) do
      if type(k) == "string" and not utf8.len(k) then
        return add(problems, path, "has a field name that is not valid UTF-8")
      end
      local n0 = #problems
      plain(x, join(path, type(k) == "number" and k or tostring(k)), problems, depth + 1, max_depth, max_text)
      if #problems > n0 then return end   -- one problem per value is enough
    end
  elseif tv ~= "boolean" and v ~= null then
    return add(problems, path, "cannot be sent as JSON (a " .. tv .. ")")
  end
end

--- Checks a free-form value; problems are added under path.
function M.plain(v, path, problems, max_depth, max_text)
  plain(v, path, problems, 0, max_depth or M.PLAIN_DEPTH, max_text or M.PLAIN_TEXT)
end

-- Read-only fields the API returns: accepted (an order read back can be
-- sent again) and passed on unchanged, if JSON can carry them.
M.any = { kind = "any", check = function(v, path, problems)
  M.plain(v, path, problems)
  return v
end }

local check_object

-- An object: `fields` name -> type; `required` names; `one_of` names of which
-- at least one must be present (the API's "a valid Guid or Code").
function M.object(fields, opts)
  opts = opts or {}
  local names = {}
  for k, t in pairs(fields) do
    if t.kind ~= "any" then names[#names + 1] = k end
  end
  table.sort(names)
  return { kind = "object", fields = fields, names = names, opts = opts,
           check = function(v, path, problems)
             return check_object(v, path, problems, fields, names, opts)
           end }
end

function M.array(item)
  return { kind = "array", check = function(v, path, problems)
    if type(v) ~= "table" then return add(problems, path, "must be an array (a table)") end
    local n, count = #v, 0
    for _ in pairs(v) do count = count + 1 end
    if count ~= n then return add(problems, path, "must be an array (keys 1..n, no gaps or names)") end
    local out = json.array({})
    for i = 1, n do out[i] = item.check(v[i], join(path, i), problems) end
    return out
  end }
end

check_object = function(v, path, problems, fields, names, opts)
  if type(v) ~= "table" then return add(problems, path, "must be a table") end
  local out = {}
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  for _, k in ipairs(keys) do
    local x = v[k]
    local t = type(k) == "string" and fields[k]
    if not t then
      add(problems, join(path, tostring(k)),
        ("is not a field of %s (valid: %s)"):format(opts.name or "this object", table.concat(names, ", ")))
    elseif x == null then
      if opts.required and opts.required[k] then add(problems, join(path, k), "is required") end
      out[k] = null
    else
      out[k] = t.check(x, join(path, k), problems)
    end
  end
  for _, k in ipairs(opts.required_list or {}) do
    if v[k] == nil then add(problems, join(path, k), "is required") end
  end
  if opts.one_of then
    local any = false
    for _, k in ipairs(opts.one_of) do
      if v[k] ~= nil and v[k] ~= null then any = true end
    end
    if not any then
      add(problems, path, "needs " .. table.concat(opts.one_of, " or "))
    end
  end
  return out
end

local function ref(name, fields, one_of)
  return M.object(fields, { name = name, one_of = one_of })
end

-- ---- the API's request objects (the seed's field tables) ----------------

M.PO_POST_STATUSES = { "Parked", "Placed", "Complete" }
M.PO_PUT_STATUSES = { "Parked", "Placed", "Costed", "Complete" }
-- Statuses that need at least one line.
M.NEEDS_LINES = { Placed = true, Costed = true, Complete = true }

local Supplier = ref("Supplier", { Guid = M.guid, SupplierCode = M.string(500),
                                   SupplierName = M.any }, { "Guid", "SupplierCode" })
local Currency = ref("Currency", { Guid = M.guid, CurrencyCode = M.string(3), Description = M.any },
                     { "Guid", "CurrencyCode" })
-- An order's Tax as it reads back has the Taxes resource's fields (the
-- recorded shape); only TaxCode and TaxRate are read, never its Guid.
local Tax = ref("Tax", { TaxCode = M.string(25), TaxRate = M.decimal(nil, 0, 1), Guid = M.any,
                         Description = M.any, CanApplyToExpenses = M.any, CanApplyToRevenue = M.any,
                         Obsolete = M.any, LastModifiedOn = M.any }, { "TaxCode", "TaxRate" })
local Warehouse = ref("Warehouse", { Guid = M.guid, WarehouseCode = M.string(15), WarehouseName = M.any },
                      { "Guid", "WarehouseCode" })
local Product = ref("Product", { Guid = M.guid, ProductCode = M.string(100), ProductDescription = M.any,
                                 SupplierProductCode = M.any, SupplierProductDescription = M.any,
                                 ProductGroup = M.any }, { "Guid", "ProductCode" })
local UnitOfMeasure = ref("UnitOfMeasure", { Guid = M.guid, Name = M.string(20) }, { "Guid", "Name" })

local PendingBatch = M.object({
  Number = M.string(50, { nonempty = true }), BatchNumber = M.string(50, { nonempty = true }),
  Quantity = M.decimal(4, 0), ExpiryDate = M.date, CreatedOn = M.any,
}, { name = "PendingBatch", one_of = { "Number", "BatchNumber" } })
-- Quantity is required for a pending batch.
local PendingBatchRequired = { kind = "object", check = function(v, path, problems)
  local out = PendingBatch.check(v, path, problems)
  if type(v) == "table" and v.Quantity == nil then add(problems, join(path, "Quantity"), "is required") end
  return out
end }
local PendingSerial = M.object({
  Identifier = M.string(50, { nonempty = true }), SerialNumber = M.string(50, { nonempty = true }),
  CreatedOn = M.any,
}, { name = "PendingSerial", one_of = { "Identifier", "SerialNumber" } })

local LINE_FIELDS = {
  Comments = M.string(1024),
  DeliveryDate = M.date,
  DiscountRate = M.decimal(nil, 0, 1),
  Guid = M.guid,
  LineNumber = M.integer(1),
  LineTax = M.decimal(2),
  LineTotal = M.decimal(2),
  OrderQuantity = M.positive(4),
  PendingBatchNumbers = M.array(PendingBatchRequired),
  PendingSerialNumbers = M.array(PendingSerial),
  Product = Product,
  ReceiptQuantity = M.decimal(4, 0),
  UnitOfMeasure = UnitOfMeasure,
  UnitPrice = M.decimal(4, 0),
  Volume = M.decimal(nil, 0),
  Weight = M.decimal(nil, 0),
  LineTaxCode = M.string(50),
  LineTaxRate = M.decimal(nil, 0, 1),
  -- returned by the API, accepted back unchanged
  BatchNumbers = M.any, BCCostTotal = M.any, BCLandedCost = M.any, BCSubTotal = M.any,
  BCUnitPrice = M.any, DiscountedUnitPrice = M.any, LastModifiedBy = M.any, LastModifiedOn = M.any,
  PurchaseUnitOrderQuantity = M.any, PurchaseUnitReceiptQuantity = M.any, SerialNumbers = M.any,
}

local ORDER_FIELDS = {
  Comments = M.string(1024),
  Currency = Currency,
  DeliveryCity = M.string(50),
  DeliveryCountry = M.string(50),
  DeliveryDate = M.date,
  DeliveryName = M.string(50),
  DeliveryPostCode = M.string(50),
  DeliveryRegion = M.string(50),
  DeliveryStreetAddress = M.string(200),
  DeliveryStreetAddress2 = M.string(200),
  DeliverySuburb = M.string(50),
  DiscountRate = M.decimal(nil, 0, 1),
  ExchangeRate = M.decimal(nil, 0),
  Guid = M.guid,
  OrderDate = M.date,
  OrderNumber = M.string(15),
  OrderStatus = M.string(50),
  PurchaseOrderLines = true,   -- set below (needs the line type)
  ReceivedDate = M.date,
  SubTotal = M.decimal(2),
  Supplier = Supplier,
  SupplierEORI = M.string(20),
  SupplierInvoiceDate = M.date,
  SupplierRef = M.string(500),
  Tax = Tax,
  TaxCode = M.string(50),
  TaxRate = M.decimal(nil, 0, 1),
  TaxTotal = M.decimal(2),
  Total = M.decimal(2),
  Warehouse = Warehouse,
  CustomOrderStatus = M.string(15),
  -- returned by the API, accepted back unchanged
  BCSubTotal = M.any, BCTaxTotal = M.any, BCTotal = M.any, CompletedDate = M.any, CreatedBy = M.any,
  CreatedOn = M.any, LastModifiedBy = M.any, LastModifiedOn = M.any, Printed = M.any,
  SalesOrders = M.any, TotalVolume = M.any, TotalWeight = M.any,
}

M.Line = M.object(LINE_FIELDS, { name = "PurchaseOrderLine" })
ORDER_FIELDS.PurchaseOrderLines = M.array(M.Line)
M.Order = M.object(ORDER_FIELDS, { name = "PurchaseOrder" })

-- An explicit null does not give a required field.
local function missing(v) return v == nil or v == null end

-- Rules across fields of one line: what the create and line calls need.
local function check_line_rules(line, path, problems, mode)
  if type(line) ~= "table" then return end
  if mode == "post" and missing(line.Product) then add(problems, join(path, "Product"), "is required") end
  if missing(line.OrderQuantity) and mode ~= "put_partial" then
    add(problems, join(path, "OrderQuantity"), "is required")
  end
  if missing(line.UnitPrice) and missing(line.LineTotal) and mode ~= "put_partial" then
    add(problems, join(path, "UnitPrice"), "is required (or LineTotal)")
  end
end

-- Checks an order for POST (mode "post") or the fields of a PUT ("put").
-- Returns the checked copy and the problems (empty when none).
function M.order(t, mode)
  local problems = {}
  if type(t) ~= "table" then
    add(problems, "order", "must be a table")
    return nil, problems
  end
  local out = M.Order.check(t, "", problems)
  local statuses = mode == "post" and M.PO_POST_STATUSES or M.PO_PUT_STATUSES
  local status = t.OrderStatus
  if missing(status) then
    if mode == "post" then add(problems, "OrderStatus", "is required") end
  elseif type(status) == "string" then
    local ok = false
    for _, s in ipairs(statuses) do if s == status then ok = true end end
    if not ok then
      add(problems, "OrderStatus", "must be one of " .. table.concat(statuses, ", ")
        .. (mode == "post" and " when creating" or " when updating"))
    end
  end
  if mode == "post" and missing(t.Supplier) then add(problems, "Supplier", "is required") end
  local lines = t.PurchaseOrderLines
  if mode == "post" and M.NEEDS_LINES[status] and (type(lines) ~= "table" or #lines == 0) then
    add(problems, "PurchaseOrderLines", "must have at least one line when OrderStatus is " .. status)
  end
  if mode == "post" and type(lines) == "table" then
    local seen_numbers, seen_guids = {}, {}
    for i, line in ipairs(lines) do
      local p = join("PurchaseOrderLines", i)
      check_line_rules(line, p, problems, "post")
      if type(line) == "table" then
        local n = math.tointeger(line.LineNumber)
        if n then
          if seen_numbers[n] then add(problems, join(p, "LineNumber"), "is used by another line") end
          seen_numbers[n] = true
        end
        if type(line.Guid) == "string" then
          if seen_guids[line.Guid:lower()] then add(problems, join(p, "Guid"), "is used by another line") end
          seen_guids[line.Guid:lower()] = true
        end
      end
    end
  end
  table.sort(problems, function(a, b) return a.field < b.field end)
  return out, problems
end

-- Checks one line for POST .../Lines ("post"), a full PUT ("put"), or a
-- partial set of fields to merge into an existing line ("put_partial").
function M.line(t, mode, path)
  local problems = {}
  path = path or ""
  if type(t) ~= "table" then
    add(problems, path ~= "" and path or "line", "must be a table")
    return nil, problems
  end
  local out = M.Line.check(t, path, problems)
  check_line_rules(t, path, problems, mode)
  table.sort(problems, function(a, b) return a.field < b.field end)
  return out, problems
end

-- ---- client options -------------------------------------------------------

M.MAX_HEADER = 1024

local function header_text(v, path, problems)
  if type(v) ~= "string" or v == "" then return add(problems, path, "must be a non-empty string") end
  if v:find("[%c]") then return add(problems, path, "must not contain control characters") end
  if not utf8.len(v) then return add(problems, path, "must be valid UTF-8") end
  if #v > M.MAX_HEADER then return add(problems, path, "must be at most " .. M.MAX_HEADER .. " bytes") end
  return v
end

local function number_in(lo, hi)
  return function(v, path, problems)
    if type(v) ~= "number" or not finite(v) then return add(problems, path, "must be a finite number") end
    if v < lo or v > hi then return add(problems, path, "must be between " .. lo .. " and " .. hi) end
    return v
  end
end

local function integer_in(lo, hi)
  return function(v, path, problems)
    local i = math.tointeger(v)
    if type(v) ~= "number" or not i then return add(problems, path, "must be an integer") end
    if i < lo or i > hi then return add(problems, path, "must be an integer from " .. lo .. " to " .. hi) end
    return i
  end
end

local function url_option(role)
  return function(v, path, problems)
    if type(v) ~= "string" then return add(problems, path, "must be a string (a URL)") end
    if not utf8.len(v) then return add(problems, path, "must be valid UTF-8") end
    local url, rule = core.check_url(v, role)
    if not url then return add(problems, path, rule) end
    return url
  end
end

M.OPTIONS = {
  api_id = header_text,
  api_key = header_text,   -- its value never appears in a message
  -- Parsed by libcurl's URL parser in the core, the rule the core applies
  -- too: scheme, host, port and a path; no user info, query, fragment or
  -- dot segments; written as libcurl reads it. The message never repeats
  -- the URL (it could hold a password).
  base_url = url_option("base_url"),
  proxy = url_option("proxy"),
  client_type = header_text,
  user_agent = header_text,
  timeout = number_in(0.001, 86400),
  connect_timeout = number_in(0.001, 86400),
  max_retries = integer_in(0, 100),
  retry_base = number_in(0, 86400),
  retry_cap = number_in(0, 86400),
  concurrency = integer_in(1, 64),
  page_size = integer_in(1, 1000),
  ca_file = function(v, path, problems)
    if type(v) ~= "string" or v == "" then return add(problems, path, "must be a file name") end
    local f = io.open(v, "rb")
    if not f then return add(problems, path, "must name a readable file") end
    f:close()
    return v
  end,
  max_body = integer_in(1024, 0x7fffffff),
  -- The account's default purchase tax, the last step of the tax hierarchy
  -- (the API has no field for it): a tax code, or a rate from 0 to 1.
  default_purchase_tax = function(v, path, problems)
    if type(v) == "number" then
      if v ~= v or v < 0 or v > 1 then
        return add(problems, path, "must be a tax code (a string) or a rate from 0 to 1")
      end
      return v
    end
    if type(v) ~= "string" or v:find("^%s*$") or v:find("%c") or not utf8.len(v) or utf8.len(v) > 50 then
      return add(problems, path, "must be a tax code (a string of 1 to 50 characters) or a rate from 0 to 1")
    end
    return v
  end,
  on_request = function(v, path, problems)
    local mt = getmetatable(v)
    if type(v) ~= "function" and not (type(mt) == "table" and mt.__call) then
      return add(problems, path, "must be a function")
    end
    return v
  end,
}
M.REQUIRED_OPTIONS = { "api_id", "api_key" }

-- Per-call options (request, listings): the core's limits, checked here so
-- a bad value is a validation error naming the option.
M.CALL_OPTIONS = {
  timeout = M.OPTIONS.timeout,
  connect_timeout = M.OPTIONS.connect_timeout,
  retries = M.OPTIONS.max_retries,
  idempotent = function(v, path, problems)
    if type(v) ~= "boolean" then return add(problems, path, "must be a boolean") end
    return v
  end,
}

-- Checks the per-call options present in opts (others are the caller's).
function M.call_options(opts, problems, prefix)
  for k, check in pairs(M.CALL_OPTIONS) do
    if opts[k] ~= nil then check(opts[k], prefix .. k, problems) end
  end
end

function M.options(opts)
  local problems, out = {}, {}
  if type(opts) ~= "table" then
    add(problems, "options", "must be a table")
    return nil, problems
  end
  local names = {}
  for k in pairs(M.OPTIONS) do names[#names + 1] = k end
  table.sort(names)
  for k, v in pairs(opts) do
    local check = type(k) == "string" and M.OPTIONS[k]
    if not check then
      -- Named only when it reads as a name: a credential put where a name
      -- goes must not come back in the message.
      local name = type(k) == "string" and #k <= 40 and k:find("^[%a_][%w_]*$") and k
        or "(a " .. type(k) .. " that is not an option name)"
      add(problems, name, "is not an option (valid: " .. table.concat(names, ", ") .. ")")
    else
      out[k] = check(v, k, problems)
    end
  end
  for _, k in ipairs(M.REQUIRED_OPTIONS) do
    if opts[k] == nil then add(problems, k, "is required") end
  end
  table.sort(problems, function(a, b) return a.field < b.field end)
  return out, problems
end

return M
