-- JSON for the sandbox: request decoding, and the encoding primitives the
-- renderers use. Objects are written by hand, field by field, so that the
-- field order is fixed, decimals keep their scale (`288.0000`, which cjson
-- cannot produce), empty arrays are `[]` and dates are `"\/Date(ms)\/"`.
local cjson_safe = require "cjson.safe"

local M = {}

-- A private instance: other code's cjson settings cannot change ours.
local decoder = cjson_safe.new()
decoder.decode_invalid_numbers(false)   -- NaN/Infinity are not JSON
decoder.decode_max_depth(64)
local encoder = cjson_safe.new()
encoder.encode_number_precision(14)     -- its maximum: exact for ms dates and 4dp figures
encoder.encode_sparse_array(true, 1, 1)

M.null = cjson_safe.null

-- Returns the decoded value, or nil and a message.
function M.decode(text)
  local ok, value, err = pcall(decoder.decode, text)
  if not ok then return nil, tostring(value) end
  if value == nil then return nil, err end
  return value
end

function M.encode_plain(value)
  return assert(encoder.encode(value))
end

local fmt, find, floor = string.format, string.find, math.floor
local encode_string = encoder.encode

function M.str(s)
  if s == nil then return "null" end
  -- Plain text needs no escaping; anything else goes through cjson, which
  -- also writes "/" as "\/" the way the API's .NET serializer does.
  if not find(s, '[%c"\\/]') then return '"' .. s .. '"' end
  return encode_string(s)
end

-- Decimals with the API's scale of four places. Built from integer parts
-- and a table of fractions: string.format is the slowest step of a page.
local FRAC = {}
for i = 0, 9999 do FRAC[i] = fmt(".%04d", i) end
local mtype = math.type

function M.dec(x)
  if x == nil then return "null" end
  local u = floor(x * 10000 + 0.5)
  if mtype(u) ~= "integer" or u >= 2^53 or u <= -2^53 then
    local s = fmt("%.4f", x)
    return s == "-0.0000" and "0.0000" or s
  end
  if u < 0 then
    u = -u
    return "-" .. (u // 10000) .. FRAC[u % 10000]
  end
  return (u // 10000) .. FRAC[u % 10000]
end

function M.int(x)
  if x == nil then return "null" end
  return fmt("%d", x)
end

function M.bool(b)
  if b == nil then return "null" end
  return b and "true" or "false"
end

function M.date(ms)
  if ms == nil then return "null" end
  return '"\\/Date(' .. floor(ms) .. ')\\/"'
end

-- An array from already-encoded items (`[]` when empty).
function M.array(items)
  return "[" .. table.concat(items, ",") .. "]"
end

return M
