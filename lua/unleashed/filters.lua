-- Filters for GET /PurchaseOrders, by the names the API documents. Checked
-- before any request so a misspelt name is an error, not a silently
-- unfiltered listing.
local dates = require "unleashed.dates"

local M = {}

M.STATUSES = { "Parked", "Placed", "Costed", "Receipted", "Complete", "Deleted", "Unapproved" }
local STATUS_SET = {}
for _, s in ipairs(M.STATUSES) do STATUS_SET[s] = true end

-- name -> kind of value. All but exactSupplierCode are the seed's names, sent
-- as they are; exactSupplierCode is the library's own (see below).
M.PURCHASE_ORDER = {
  brief = "boolean",
  completedAfter = "date",
  completedBefore = "date",
  customOrderStatus = "string",
  endDate = "date",
  exactSupplierCode = "string",
  modifiedSince = "date",
  orderNumber = "string",
  orderStatus = "status",
  serialBatch = "boolean",
  startDate = "date",
  supplierCode = "string",
  warehouseCode = "string",
  pageSize = "page_size",
}

local function sorted_names(spec)
  local names = {}
  for k in pairs(spec) do names[#names + 1] = k end
  table.sort(names)
  return names
end
M.PURCHASE_ORDER_NAMES = sorted_names(M.PURCHASE_ORDER)

local checkers = {}

function checkers.boolean(v)
  if type(v) == "boolean" then return v end
  if v == "true" or v == "false" then return v == "true" end
  return nil, "must be a boolean"
end

function checkers.date(v, name)
  -- modifiedSince keeps the time of day; the others are dates.
  return dates.coerce(v, name ~= "modifiedSince")
end

-- The API's longest code is 500 characters; a longer filter matches nothing.
M.MAX_TEXT = 500
-- Any endpoint's query values: bounded so the URL stays one libcurl sends.
M.MAX_QUERY_TEXT = 2048

function checkers.string(v)
  if type(v) ~= "string" then return nil, "must be a string" end
  if v == "" then return nil, "must not be empty" end
  if v:find("%c") then return nil, "must not contain control characters" end
  local n = utf8.len(v)
  if not n then return nil, "must be valid UTF-8" end
  if n > M.MAX_TEXT then return nil, "must be at most " .. M.MAX_TEXT .. " characters" end
  return v
end

function checkers.status(v)
  if type(v) ~= "string" then return nil, "must be a string" end
  for s in (v .. ","):gmatch("([^,]*),") do
    s = s:match("^%s*(.-)%s*$")
    if not STATUS_SET[s] then
      return nil, "must be one of " .. table.concat(M.STATUSES, ", ") .. " (or several, comma-separated)"
    end
  end
  return v
end

function checkers.page_size(v)
  if math.type(v) ~= "integer" and not (type(v) == "number" and v == math.floor(v)) then
    return nil, "must be an integer from 1 to 1000"
  end
  if v < 1 or v > 1000 then return nil, "must be an integer from 1 to 1000" end
  return math.tointeger(v)
end

-- Runs check(name, value) over every filter of f, the table a script passed.
-- check returns the wire value, or nil and the rule broken. Returns the query
-- table and the problems ({ field, message }) sorted by field, empty when none.
local function check_all(f, check)
  local query, problems = {}, {}
  if f == nil then return query, problems end
  if type(f) ~= "table" then
    problems[1] = { field = "filters", message = "must be a table" }
    return query, problems
  end
  for name, v in pairs(f) do
    local out, rule = check(name, v)
    if out == nil then problems[#problems + 1] = { field = tostring(name), message = rule }
    else query[name] = out end
  end
  table.sort(problems, function(a, b) return a.field < b.field end)
  return query, problems
end

-- Checks purchase order filters: the seed's names, each value by its kind.
-- The API's supplierCode matches every code that starts with the value
-- (ACME finds ACME2 too). exactSupplierCode asks for one supplier: it is sent
-- as supplierCode, and the listing keeps only the orders whose
-- Supplier.SupplierCode equals it (in any case, as the server compares
-- codes). Only a listing can filter what it hands out, so only `each`,
-- `list` and the change feed take it (listing = true); the third result
-- then holds the exact code, lower-cased, for the listing to compare (nil
-- when not asked for).
function M.purchase_orders(f, listing)
  local query, problems = check_all(f, function(name, v)
    local kind = type(name) == "string" and M.PURCHASE_ORDER[name]
    if not kind then
      local valid = table.concat(M.PURCHASE_ORDER_NAMES, ", ")
      return nil, "is not a purchase order filter (valid: " .. valid .. ")"
    end
    if name == "exactSupplierCode" and not listing then
      return nil, "is for each, list and changes only (they filter the orders they hand out); "
        .. "use supplierCode here"
    end
    return checkers[kind](v, name)
  end)
  local exact = query.exactSupplierCode
  if exact ~= nil then
    query.exactSupplierCode = nil
    if query.supplierCode ~= nil then
      problems[#problems + 1] = { field = "exactSupplierCode",
        message = "cannot be combined with supplierCode (give one of them)" }
      table.sort(problems, function(a, b) return a.field < b.field end)
    else
      query.supplierCode = exact
    end
    return query, problems, exact:lower()
  end
  return query, problems, nil
end

-- Any endpoint's query: string names, scalar values.
function M.generic(f)
  return check_all(f, function(name, v)
    if type(name) ~= "string" or name == "" or not utf8.len(name) or name:find("%z") then
      return nil, "filter names must be non-empty strings in UTF-8, without NUL bytes"
    elseif type(v) == "string" and not utf8.len(v) then
      return nil, "must be valid UTF-8"
    elseif type(v) == "string" and v:find("%z") then
      -- Signed raw, a NUL ends the text early on servers that read C
      -- strings: what is signed would not be what is read.
      return nil, "must not contain NUL bytes"
    elseif type(v) == "string" and utf8.len(v) > M.MAX_QUERY_TEXT then
      return nil, "must be at most " .. M.MAX_QUERY_TEXT .. " characters"
    elseif type(v) == "number" and (v ~= v or v == math.huge or v == -math.huge) then
      return nil, "must be a finite number"
    elseif type(v) ~= "string" and type(v) ~= "number" and type(v) ~= "boolean" then
      return nil, "must be a string, number or boolean"
    end
    return v
  end)
end

return M
