-- JSON for the API: decoding through the core's decoder (.NET dates in date
-- fields become ISO 8601 UTC strings, null members are dropped, the integer
-- fields are integers), and an encoder that controls how numbers are written
-- so no float noise reaches the server.
local cjson_module = require "cjson"
local core = require "unleashed.core"
local decimal = require "unleashed.decimal"

local M = {}

-- A private cjson instance: its settings are not shared with the script's cjson.
local cjson = cjson_module.new()

M.null = cjson_module.null

-- Tables with this metatable encode as arrays even when empty.
M.array_mt = { __name = "unleashed.array" }
function M.array(t) return setmetatable(t or {}, M.array_mt) end

-- Collections of the API's objects: empty tables under these names are [].
local ARRAY_FIELDS = {
  PurchaseOrderLines = true, PendingBatchNumbers = true, PendingSerialNumbers = true,
  BatchNumbers = true, SerialNumbers = true, SalesOrders = true, Items = true,
}

-- Integer fields of the API: the decoder hands these to scripts as Lua
-- integers where the API declares Integer: the list envelope's Pagination
-- figures and a purchase order line's LineNumber (src/decode.c). Every other
-- number is a float.
M.INTEGER_FIELDS = {
  LineNumber = true, NumberOfItems = true, PageSize = true, PageNumber = true,
  NumberOfPages = true,
}

-- The core's decoder (src/decode.c): one pass from the body's bytes to Lua
-- tables, with the API's rules applied while it builds. It keeps the key
-- strings it has made between answers.
local decoder = core.decoder()

-- Decodes an API response body. Returns the value, or nil, a message and the
-- kind of failure: "syntax" (not JSON) or "limit" (past what one answer may
-- build: nesting, items in an array, values in all).
function M.decode(text)
  if type(text) ~= "string" then return nil, "no body", "syntax" end
  local ok, v, err, kind = pcall(decoder.decode, decoder, text)
  if not ok then return nil, "cannot decode body: " .. tostring(v), "memory" end
  if v == nil then return nil, err, kind end
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
