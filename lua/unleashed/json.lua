-- JSON for the API: decoding through the core's normaliser (.NET dates become
-- ISO 8601 UTC strings, null members are dropped), and an encoder that
-- controls how numbers are written so no float noise reaches the server.
local cjson_module = require "cjson"
local core = require "unleashed.core"
local decimal = require "unleashed.decimal"

local M = {}

-- A private cjson instance: its settings are not shared with the script's cjson.
local cjson = cjson_module.new()
cjson.decode_invalid_numbers(false)   -- NaN, Infinity and hex are not JSON

M.null = cjson_module.null

-- Tables with this metatable encode as arrays even when empty.
M.array_mt = { __name = "unleashed.array" }
function M.array(t) return setmetatable(t or {}, M.array_mt) end

-- Collections of the API's objects: empty tables under these names are [].
local ARRAY_FIELDS = {
  PurchaseOrderLines = true, PendingBatchNumbers = true, PendingSerialNumbers = true,
  BatchNumbers = true, SerialNumbers = true, SalesOrders = true, Items = true,
}

-- Integer fields of the API: cjson reads every number as a float; these are
-- handed to scripts as Lua integers. The API declares Integer only for the
-- list envelope's Pagination figures and a purchase order line's LineNumber,
-- so only those places are visited, not the whole tree (a page of 1,000
-- orders has some 100,000 values, and only about 3,000 of them are integers).
local INTEGER_FIELDS = {
  LineNumber = true, NumberOfItems = true, PageSize = true, PageNumber = true,
  NumberOfPages = true,
}
M.INTEGER_FIELDS = INTEGER_FIELDS

local tointeger = math.tointeger

local function integerize_pagination(p)
  local i = tointeger(p.NumberOfItems)
  if i then p.NumberOfItems = i end
  i = tointeger(p.PageSize)
  if i then p.PageSize = i end
  i = tointeger(p.PageNumber)
  if i then p.PageNumber = i end
  i = tointeger(p.NumberOfPages)
  if i then p.NumberOfPages = i end
end

-- An order (its PurchaseOrderLines) or a line on its own.
local function integerize_item(item)
  local lines = item.PurchaseOrderLines
  if type(lines) == "table" then
    for j = 1, #lines do
      local line = lines[j]
      if type(line) == "table" then
        local n = tointeger(line.LineNumber)
        if n then line.LineNumber = n end
      end
    end
  end
  local n = tointeger(item.LineNumber)
  if n then item.LineNumber = n end
end

local function integerize_list(items)
  for i = 1, #items do
    local item = items[i]
    if type(item) == "table" then integerize_item(item) end
  end
end

-- A decoded answer: a page ({Pagination, Items}), one object (an order or
-- a line) or an array of them.
local function integerize(v)
  local p = v.Pagination
  if type(p) == "table" then integerize_pagination(p) end
  local items = v.Items
  if type(items) == "table" then integerize_list(items) end
  if v[1] ~= nil then integerize_list(v) else integerize_item(v) end
end

-- Decodes an API response body. Returns the value, or nil and a message.
function M.decode(text)
  if type(text) ~= "string" then return nil, "no body" end
  local ok, normalized = pcall(core.normalize, text)
  if not ok then return nil, "cannot normalise body: " .. tostring(normalized) end
  local ok2, v = pcall(cjson.decode, normalized)
  if not ok2 then return nil, "body is not JSON: " .. tostring(v) end
  if type(v) == "table" then integerize(v) end
  return v
end

-- ---- encoding --------------------------------------------------------

local encode_value

local function fail(path, rule)
  error({ unleashed_json = true, field = path, message = rule }, 0)
end

local function number_text(x, path)
  if x ~= x or x == math.huge or x == -math.huge then fail(path, "must be a finite number") end
  if math.type(x) == "integer" then return string.format("%d", x) end
  if x == math.floor(x) and math.abs(x) < 2^53 then return string.format("%d", math.tointeger(x)) end
  -- The shortest text that reads back to the same double: a rounded amount
  -- goes out as "12.34", never "12.339999999999999". (%g's "1e-05" is JSON.)
  return decimal.shortest(x)
end

local function join(path, key)
  if type(key) == "number" then return (path or "") .. "[" .. key .. "]" end
  if path == nil or path == "" then return key end
  return path .. "." .. key
end

local function encode_table(t, path, out, key, depth)
  if depth > 100 then fail(path, "is nested too deeply") end
  local n = #t
  local count = 0
  for k in pairs(t) do
    count = count + 1
    if math.type(k) ~= "integer" and type(k) ~= "string" then
      fail(path, "has a key that is neither a string nor an array index")
    end
  end
  if count == 0 then
    if getmetatable(t) == M.array_mt or ARRAY_FIELDS[key] then out[#out + 1] = "[]"
    else out[#out + 1] = "{}" end
    return
  end
  if n > 0 and count == n then
    out[#out + 1] = "["
    for i = 1, n do
      if i > 1 then out[#out + 1] = "," end
      encode_value(t[i], join(path, i), out, nil, depth + 1)
    end
    out[#out + 1] = "]"
    return
  end
  local keys = {}
  for k in pairs(t) do
    if type(k) ~= "string" then fail(path, "mixes array items and named fields") end
    keys[#keys + 1] = k
  end
  table.sort(keys)
  out[#out + 1] = "{"
  for i, k in ipairs(keys) do
    if i > 1 then out[#out + 1] = "," end
    out[#out + 1] = cjson.encode(k)
    out[#out + 1] = ":"
    encode_value(t[k], join(path, k), out, k, depth + 1)
  end
  out[#out + 1] = "}"
end

encode_value = function(v, path, out, key, depth)
  local tv = type(v)
  if tv == "string" then out[#out + 1] = cjson.encode(v)
  elseif tv == "number" then out[#out + 1] = number_text(v, path)
  elseif tv == "boolean" then out[#out + 1] = v and "true" or "false"
  elseif v == M.null then out[#out + 1] = "null"
  elseif tv == "table" then encode_table(v, path, out, key, depth)
  else fail(path, "cannot be sent as JSON (a " .. tv .. ")") end
end

-- Encodes a Lua value as JSON. Returns the text, or nil and
-- { field = "path.to.field", message = "rule" } for a value JSON cannot hold.
function M.encode(v)
  local out = {}
  local ok, err = pcall(encode_value, v, nil, out, nil, 0)
  if not ok then
    if type(err) == "table" and err.unleashed_json then
      return nil, { field = err.field, message = err.message }
    end
    error(err, 0)
  end
  return table.concat(out)
end

return M
