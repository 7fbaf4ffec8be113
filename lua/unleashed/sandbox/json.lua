-- JSON for the sandbox: request decoding, and the encoding primitives the
-- renderers use. Objects are written by hand, field by field, so that the
-- field order is fixed, decimals keep the scale the live API writes for the
-- field (`288.0000`, `0.150000`, `2173.600`: cjson cannot produce them),
-- empty arrays are `[]` and dates are `"\/Date(ms)\/"`. Strings are escaped
-- as the recorded answers are: `'` as \u0027 and `&` as \u0026, a plain `/`
-- left as it is (only dates carry `\/`).
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

-- Escapes as the recorded answers: the two JSON must-escapes, controls as
-- \uXXXX (\n, \r, \t short), and `'` and `&` as \u0027 and \u0026 (the
-- 2021 answers); "/" and non-ASCII text stay as they are.
local ESCAPE = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t",
                 ["'"] = "\\u0027", ["&"] = "\\u0026" }
for i = 0, 31 do
  local c = string.char(i)
  ESCAPE[c] = ESCAPE[c] or fmt("\\u%04x", i)
end
ESCAPE["\127"] = "\\u007f"

function M.str(s)
  if s == nil then return "null" end
  if not find(s, "[%c\"\\'&]") then return '"' .. s .. '"' end
  return '"' .. s:gsub("[%c\"\\'&]", ESCAPE) .. '"'
end

-- Digits as ready-made text: decimals and integers are written from these
-- instead of through string.format, whose float conversion was the slowest
-- step of rendering an order.
local INT, PAD4, FRAC = {}, {}, {}
for i = 0, 9999 do
  INT[i] = fmt("%d", i)
  PAD4[i] = fmt("%04d", i)
  FRAC[i] = fmt(".%04d", i)
end
local mtype = math.type

-- Decimals with the API's scale of four places, "-0.0000" written as
-- "0.0000" (a figure the server computed, such as a landed cost).
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

-- ---- writers -----------------------------------------------------------
-- The renderers of big objects put the pieces of their text into a buffer
-- table, b[n + 1], b[n + 2], ..., and join them once: most pieces already
-- exist (keys, digits, the values' own strings), so an order is one new
-- string rather than a hundred small ones. Each writer appends a value's
-- JSON after position n and returns the new position.

-- A non-negative integer (or integral float) below 10^16, in groups of
-- four digits (integer arithmetic: float division could round up near a
-- group boundary); anything else through string.format("%d"), which also
-- raises for a value with no integer representation, as a template did.
local tointeger = math.tointeger

local function put_int(b, n, x)
  local i = tointeger(x)
  if i and i >= 0 and i < 10000000000000000 then
    if i < 10000 then
      b[n + 1] = INT[i]
      return n + 1
    elseif i < 100000000 then
      b[n + 1], b[n + 2] = INT[i // 10000], PAD4[i % 10000]
      return n + 2
    elseif i < 1000000000000 then
      b[n + 1], b[n + 2], b[n + 3] = INT[i // 100000000], PAD4[i // 10000 % 10000], PAD4[i % 10000]
      return n + 3
    end
    b[n + 1], b[n + 2] = INT[i // 1000000000000], PAD4[i // 100000000 % 10000]
    b[n + 3], b[n + 4] = PAD4[i // 10000 % 10000], PAD4[i % 10000]
    return n + 4
  end
  b[n + 1] = fmt("%d", x)
  return n + 1
end
M.put_int = put_int

-- Exactly string.format("%.4f", x), for figures that are never null. The
-- fast path takes positive values below 10^9 whose scaled fraction is not
-- within 0.01 of a rounding tie: the scaled value's own error (at most
-- 10^13 * 2^-53, about 0.001) cannot then move it across a tie, so its
-- rounding matches %.4f's rounding of the exact binary value. Negatives,
-- -0.0, near-ties, huge values and NaN go to string.format.
function M.put_dec4(b, n, x)
  local v = x * 10000.0
  if v > 0 and v < 1e13 then
    local w = floor(v)
    local f = v - w
    if f > 0.51 then w = w + 1 elseif f >= 0.49 then w = nil end
    if w then
      n = put_int(b, n, w // 10000)
      b[n + 1] = FRAC[w % 10000]
      return n + 1
    end
  elseif v == 0 and 1 / v > 0 then
    b[n + 1] = "0.0000"
    return n + 1
  end
  b[n + 1] = fmt("%.4f", x)
  return n + 1
end

-- The same text as M.dec.
function M.put_dec(b, n, x)
  if x == nil then
    b[n + 1] = "null"
    return n + 1
  end
  local u = floor(x * 10000 + 0.5)
  if mtype(u) ~= "integer" or u >= 2^53 or u <= -2^53 then
    b[n + 1] = M.dec(x)
    return n + 1
  end
  if u < 0 then
    u = -u
    b[n + 1] = "-"
    n = n + 1
  end
  n = put_int(b, n, u // 10000)
  b[n + 1] = FRAC[u % 10000]
  return n + 1
end

-- Decimals at a given scale: the live API writes each field at its own
-- number of places (rates 6, quantities and prices 4, totals 3, LineTotal
-- 8), so the renderers name the places per field. Exactly what
-- string.format("%.Nf", x) gives (the fast path takes positive values whose
-- scaled fraction is not within 0.01 of a rounding tie, as put_dec4), with
-- "-0.000" written without its sign; nil is null.
local SCALES = { [2] = 100, [3] = 1000, [4] = 10000, [6] = 1000000, [8] = 100000000 }
local PAD2, PAD3, ZEROS = {}, {}, {}
for i = 0, 99 do PAD2[i] = fmt("%02d", i) end
for i = 0, 999 do PAD3[i] = fmt("%03d", i) end
for p = 0, 20 do ZEROS[p] = p == 0 and "0" or "0." .. ("0"):rep(p) end
local FORMATS = {}
for p = 0, 20 do FORMATS[p] = "%." .. p .. "f" end

-- The point and the digits after it, as ready-made pieces put into the
-- buffer (one or two per number).
local FRAC2, FRAC3 = {}, {}
for i = 0, 99 do FRAC2[i] = "." .. PAD2[i] end
for i = 0, 999 do FRAC3[i] = "." .. PAD3[i] end

local function put_fraction(b, n, f, places)
  if places == 4 then b[n + 1] = FRAC[f]; return n + 1 end
  if places == 3 then b[n + 1] = FRAC3[f]; return n + 1 end
  if places == 2 then b[n + 1] = FRAC2[f]; return n + 1 end
  if places == 6 then
    b[n + 1], b[n + 2] = FRAC[f // 100], PAD2[f % 100]
    return n + 2
  end
  b[n + 1], b[n + 2] = FRAC[f // 10000], PAD4[f % 10000]
  return n + 2
end

-- Values with 14 places that need string.format, as last rendered.
local wide, n_wide, WIDE_MAX = {}, 0, 20000

function M.put_decp(b, n, x, places)
  if x == nil then
    b[n + 1] = "null"
    return n + 1
  end
  local scale = SCALES[places]
  if scale then
    local v = x * scale
    if v > 0 and v < 1e13 then
      local w = floor(v)
      local f = v - w
      if f > 0.51 then w = w + 1 elseif f >= 0.49 then w = nil end
      if w then
        n = put_int(b, n, w // scale)
        return put_fraction(b, n, w % scale, places)
      end
    elseif v == 0 then
      b[n + 1] = ZEROS[places]
      return n + 1
    end
  end
  if places == 14 and x > 0 and x < 100000 then
    -- Landed costs: 14 places, of which the value carries 8 (the server's
    -- decimal carries 15 significant digits; 8 places keep the page cheap).
    local v = x * 100000000
    local w = floor(v)
    local f = v - w
    if f > 0.51 then w = w + 1 elseif f >= 0.49 then w = nil end
    if w then
      n = put_int(b, n, w // 100000000)
      n = put_fraction(b, n, w % 100000000, 8)
      b[n + 1] = "000000"
      return n + 1
    end
  end
  local s = places > 8 and wide[x]
  if not s then
    if places > 8 then
      -- As a .NET decimal computed to 15 significant digits shows it
      -- (3.66860666666667; 368.14000000000000), not the binary noise of %.14f.
      s = fmt("%.15g", x)
      local int, frac = s:match("^(%-?%d+)%.?(%d*)$")
      if int and #frac <= places then s = int .. "." .. frac .. ("0"):rep(places - #frac) else s = nil end
    end
    s = s or fmt(FORMATS[places], x)
    if s:byte(1) == 45 and not find(s, "[1-9]") then s = s:sub(2) end
    if places > 8 and x == x then
      if n_wide >= WIDE_MAX then wide, n_wide = {}, 0 end
      wide[x], n_wide = s, n_wide + 1
    end
  end
  b[n + 1] = s
  return n + 1
end

local decp_buffer = {}
function M.decp(x, places)
  local n = M.put_decp(decp_buffer, 0, x, places)
  return table.concat(decp_buffer, "", 1, n)
end

-- Quoted text of strings seen before, so that a value repeated across
-- orders (a user, a city, a tax code) is scanned and quoted once. Bounded:
-- it starts again when full.
local quoted, n_quoted = {}, 0
local QUOTED_MAX = 20000

-- The same text as M.str.
function M.put_str(b, n, s)
  if s == nil then
    b[n + 1] = "null"
    return n + 1
  end
  local q = quoted[s]
  if not q then
    q = M.str(s)
    if n_quoted >= QUOTED_MAX then quoted, n_quoted = {}, 0 end
    quoted[s], n_quoted = q, n_quoted + 1
  end
  b[n + 1] = q
  return n + 1
end

-- A string known to need no escaping (a Guid, a status), quoted.
function M.put_plain(b, n, s)
  b[n + 1], b[n + 2], b[n + 3] = '"', s, '"'
  return n + 3
end

-- The same text as M.date, from a bounded cache as for strings: many
-- dates repeat (order and delivery dates are midnights).
local dates, n_dates = {}, 0

function M.put_date(b, n, ms)
  if ms == nil then
    b[n + 1] = "null"
    return n + 1
  end
  local d = dates[ms]
  if not d then
    d = M.date(ms)
    if ms ~= ms then   -- NaN cannot be a key
      b[n + 1] = d
      return n + 1
    end
    if n_dates >= QUOTED_MAX then dates, n_dates = {}, 0 end
    dates[ms], n_dates = d, n_dates + 1
  end
  b[n + 1] = d
  return n + 1
end

function M.put_bool(b, n, v)
  b[n + 1] = v == nil and "null" or v and "true" or "false"
  return n + 1
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
