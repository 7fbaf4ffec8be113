-- Exact decimal arithmetic for amounts, so that the totals a script sees are
-- the ones the server stores. A Lua number is read as its shortest decimal
-- form (the digits that read back to the same double: 2.675 is 2.675, not
-- 2.67499999999999982236431605997495353221893310546875), the arithmetic is
-- done on those decimal digits, and results are rounded half away from zero
-- (2.675 -> 2.68, -2.675 -> -2.68), as the server rounds (2dp)/(4dp) fields.
local M = {}

-- A decimal: { neg = bool, mag = "digits" (no leading zeros, "0" for zero),
-- scale = digits after the point (>= 0) }; value = (-1)^neg * mag / 10^scale.

local function strip(mag)
  mag = mag:gsub("^0+", "")
  return mag == "" and "0" or mag
end

local function make(neg, mag, scale)
  mag = strip(mag)
  return { neg = neg and mag ~= "0", mag = mag, scale = scale }
end

-- Parses decimal text: "-12.340", "1e-05", "1.5E+20".
function M.parse(s)
  local sign, int, frac, exp = s:match("^%s*([+-]?)(%d*)%.?(%d*)[eE]?([+-]?%d*)%s*$")
  if not sign or (int == "" and frac == "") then return nil end
  local e = tonumber(exp ~= "" and exp or "0")
  local mag, scale = int .. frac, #frac - e
  if scale < 0 then mag, scale = mag .. string.rep("0", -scale), 0 end
  return make(sign == "-", mag, scale)
end

-- The shortest "%.Ng" text that reads back to the same double.
function M.shortest(x)
  if math.type(x) == "integer" then return string.format("%d", x) end
  for p = 15, 17 do
    local s = string.format("%." .. p .. "g", x)
    if tonumber(s) == x then return s end
  end
  return string.format("%.17g", x)
end

function M.from_number(x)
  assert(x == x and x ~= math.huge and x ~= -math.huge, "not a finite number")
  return M.parse(M.shortest(x))
end

local function coerce(x)
  if type(x) == "table" then return x end
  if type(x) == "string" then return assert(M.parse(x), "not a decimal") end
  return M.from_number(x)
end

-- ---- magnitudes (non-negative integers as digit strings) --------------

local function mag_cmp(a, b)
  if #a ~= #b then return #a < #b and -1 or 1 end
  if a == b then return 0 end
  return a < b and -1 or 1
end

local function mag_add(a, b)
  local out, carry = {}, 0
  local i, j = #a, #b
  while i > 0 or j > 0 or carry > 0 do
    local d = carry + (i > 0 and a:byte(i) - 48 or 0) + (j > 0 and b:byte(j) - 48 or 0)
    out[#out + 1] = d % 10
    carry = d // 10
    i, j = i - 1, j - 1
  end
  return strip(string.reverse(table.concat(out)))
end

local function mag_sub(a, b) -- a >= b
  local out, borrow = {}, 0
  local i, j = #a, #b
  while i > 0 do
    local d = (a:byte(i) - 48) - borrow - (j > 0 and b:byte(j) - 48 or 0)
    if d < 0 then d, borrow = d + 10, 1 else borrow = 0 end
    out[#out + 1] = d
    i, j = i - 1, j - 1
  end
  return strip(string.reverse(table.concat(out)))
end

local function mag_mul(a, b)
  if a == "0" or b == "0" then return "0" end
  local acc = {}
  for i = 1, #a + #b do acc[i] = 0 end
  for i = #a, 1, -1 do
    local da = a:byte(i) - 48
    for j = #b, 1, -1 do
      local k = i + j
      acc[k] = acc[k] + da * (b:byte(j) - 48)
    end
  end
  for k = #acc, 2, -1 do
    acc[k - 1] = acc[k - 1] + acc[k] // 10
    acc[k] = acc[k] % 10
  end
  return strip(table.concat(acc))
end

local function align(a, b)
  local s = math.max(a.scale, b.scale)
  return a.mag .. string.rep("0", s - a.scale), b.mag .. string.rep("0", s - b.scale), s
end

-- ---- arithmetic ------------------------------------------------------

function M.add(a, b)
  a, b = coerce(a), coerce(b)
  local x, y, s = align(a, b)
  if a.neg == b.neg then return make(a.neg, mag_add(x, y), s) end
  local c = mag_cmp(x, y)
  if c == 0 then return make(false, "0", s) end
  if c > 0 then return make(a.neg, mag_sub(x, y), s) end
  return make(b.neg, mag_sub(y, x), s)
end

function M.sub(a, b)
  b = coerce(b)
  return M.add(a, make(not b.neg, b.mag, b.scale))
end

function M.mul(a, b)
  a, b = coerce(a), coerce(b)
  return make(a.neg ~= b.neg, mag_mul(a.mag, b.mag), a.scale + b.scale)
end

function M.cmp(a, b)
  local d = M.sub(a, b)
  if d.mag == "0" then return 0 end
  return d.neg and -1 or 1
end

-- Rounds to `places` digits after the point, half away from zero.
function M.round(a, places)
  a = coerce(a)
  if a.scale <= places then
    return make(a.neg, a.mag .. string.rep("0", places - a.scale), places)
  end
  local cut = a.scale - places
  local mag = a.mag
  if #mag <= cut then mag = string.rep("0", cut - #mag + 1) .. mag end
  local keep, first_dropped = mag:sub(1, #mag - cut), mag:byte(#mag - cut + 1) - 48
  if first_dropped >= 5 then keep = mag_add(keep, "1") end
  return make(a.neg, keep, places)
end

-- Fixed-point text with exactly `scale` decimals (the decimal's own scale).
function M.tostring(a)
  a = coerce(a)
  local mag = a.mag
  if a.scale > 0 then
    if #mag <= a.scale then mag = string.rep("0", a.scale - #mag + 1) .. mag end
    mag = mag:sub(1, #mag - a.scale) .. "." .. mag:sub(#mag - a.scale + 1)
  end
  return (a.neg and "-" or "") .. mag
end

-- The double nearest the decimal value; its shortest form prints the
-- decimal back (for up to 15 significant digits), so no float noise is sent.
function M.tonumber(a)
  return tonumber(M.tostring(a)) + 0.0
end

-- round(x, places) for plain Lua numbers: returns the rounded number and its
-- fixed-point text ("12.30").
function M.round_number(x, places)
  local d = M.round(M.from_number(x), places)
  return M.tonumber(d), M.tostring(d)
end

return M
