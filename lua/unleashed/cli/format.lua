-- How the command (and the example workflows) print things: amounts and
-- quantities, text padded by its width on a terminal, aligned tables and
-- readable JSON.
local decimal = require "unleashed.decimal"

local M = {}

-- ---- numbers ---------------------------------------------------------------------

-- The places the API keeps: money (SubTotal, LineTotal, Cost, ...) at 2,
-- unit prices at 4 (the seed's (2dp) and (4dp) fields).
M.MONEY_PLACES = 2
M.PRICE_PLACES = 4

local function as_decimal(v)
  if type(v) == "table" and v.mag then return v end
  if type(v) == "number" then
    if v ~= v or v == math.huge or v == -math.huge then return nil end
    return decimal.from_number(v)
  end
  if type(v) == "string" then return decimal.parse(v) end
  return nil
end

-- An amount with at least `places` decimals, more only when the value has
-- them (204.7847 stays 204.7847: nothing is hidden by rounding), never in
-- exponent form: 75653.7 -> "75653.70", 5 -> "5.00", "2173.600" -> "2173.60".
function M.amount(v, places)
  places = places or M.MONEY_PLACES
  local d = as_decimal(v)
  if not d then return v == nil and "" or tostring(v) end
  local text = decimal.tostring(d.scale < places and decimal.round(d, places) or d)
  local int, frac = text:match("^(-?%d+)%.?(%d*)$")
  frac = frac:gsub("0+$", "")
  if #frac < places then frac = frac .. ("0"):rep(places - #frac) end
  if int == "-0" and not frac:find("[1-9]") then int = "0" end
  return frac == "" and int or (int .. "." .. frac)
end

-- A quantity: integral ones as integers (153, not 153.0), others with the
-- digits they have (2.5, 0.3333), never in exponent form.
function M.quantity(v)
  local d = as_decimal(v)
  if not d then return v == nil and "" or tostring(v) end
  return M.amount(d, 0)
end

-- ---- display width -----------------------------------------------------------------

-- Code points that take no column (combining marks, zero-width spaces and
-- joiners, variation selectors) and those that take two (East Asian wide and
-- full-width forms, most emoji): enough of wcwidth(3) for names and codes.
local ZERO = {
  { 0x0300, 0x036F }, { 0x0483, 0x0489 }, { 0x0591, 0x05BD }, { 0x0610, 0x061A }, { 0x064B, 0x065F },
  { 0x0E31, 0x0E31 }, { 0x0E34, 0x0E3A }, { 0x0E47, 0x0E4E }, { 0x1AB0, 0x1AFF }, { 0x1DC0, 0x1DFF },
  { 0x200B, 0x200F }, { 0x202A, 0x202E }, { 0x2060, 0x2064 }, { 0x20D0, 0x20FF }, { 0xFE00, 0xFE0F },
  { 0xFE20, 0xFE2F }, { 0xFEFF, 0xFEFF }, { 0xE0100, 0xE01EF },
}
local WIDE = {
  { 0x1100, 0x115F }, { 0x231A, 0x231B }, { 0x2329, 0x232A }, { 0x23E9, 0x23EC }, { 0x2614, 0x2615 },
  { 0x2E80, 0x303E }, { 0x3041, 0x33FF }, { 0x3400, 0x4DBF }, { 0x4E00, 0x9FFF }, { 0xA000, 0xA4CF },
  { 0xAC00, 0xD7A3 }, { 0xF900, 0xFAFF }, { 0xFE30, 0xFE4F }, { 0xFF00, 0xFF60 }, { 0xFFE0, 0xFFE6 },
  { 0x1F300, 0x1F64F }, { 0x1F900, 0x1F9FF }, { 0x20000, 0x2FFFD }, { 0x30000, 0x3FFFD },
}

local function within(ranges, c)
  for _, r in ipairs(ranges) do
    if c < r[1] then return false end
    if c <= r[2] then return true end
  end
  return false
end

-- Columns a string takes on a terminal. Text that is not UTF-8 counts a
-- column per byte.
function M.width(s)
  s = tostring(s)
  if not utf8.len(s) then return #s end
  if not s:find("[\128-\255]") then return #s end
  local w = 0
  for _, c in utf8.codes(s) do
    if c < 0x20 or (c >= 0x7F and c < 0xA0) or within(ZERO, c) then
      w = w + 0
    elseif within(WIDE, c) then
      w = w + 2
    else
      w = w + 1
    end
  end
  return w
end

-- s padded with spaces to `width` columns (on the left when right-aligned).
function M.pad(s, width, right)
  s = tostring(s)
  local fill = (" "):rep(math.max(0, width - M.width(s)))
  return right and (fill .. s) or (s .. fill)
end

-- One line for a table cell: line breaks and tabs become spaces.
function M.one_line(s)
  return (tostring(s):gsub("[\r\n\t]+", " "))
end

-- ---- tables --------------------------------------------------------------------------

-- A field of a nested table by a dotted path ("Supplier.SupplierCode"); an
-- explicit JSON null (userdata) reads as nil.
function M.field(t, path)
  for part in path:gmatch("[^.]+") do
    if type(t) ~= "table" then return nil end
    t = t[part]
  end
  if type(t) == "userdata" then return nil end
  return t
end

local CELL = {
  money = function(v) return M.amount(v, M.MONEY_PLACES) end,
  price = function(v) return M.amount(v, M.PRICE_PLACES) end,
  qty = M.quantity,
  date = function(v) return tostring(v):sub(1, 10) end,
  count = function(v) return type(v) == "table" and tostring(#v) or "" end,
  -- any number (a report's column): integers as they are, others as amounts
  number = function(v)
    if type(v) ~= "number" or math.type(v) == "integer" then return tostring(v) end
    return M.amount(v, M.MONEY_PLACES)
  end,
}
local RIGHT = { money = true, price = true, qty = true, count = true, number = true }

-- The text of one cell: column = { heading, path or function(row), how }.
function M.cell(row, column)
  local get = column[2]
  local v
  if type(get) == "function" then v = get(row) else v = M.field(row, get) end
  if v == nil then return "" end
  local how = CELL[column[3]]
  return M.one_line(how and how(v) or v)
end

-- Writes rows as aligned columns under their headings, two spaces apart,
-- padded by display width; numbers right-aligned; no trailing spaces.
function M.write_table(out, columns, rows)
  local width, cells = {}, {}
  for c, col in ipairs(columns) do width[c] = M.width(col[1]) end
  for r, row in ipairs(rows) do
    cells[r] = {}
    for c, col in ipairs(columns) do
      local s = M.cell(row, col)
      cells[r][c] = s
      local w = M.width(s)
      if w > width[c] then width[c] = w end
    end
  end
  local function line(values)
    local parts = {}
    for c, col in ipairs(columns) do
      parts[c] = M.pad(values[c], width[c], RIGHT[col[3]] or false)
    end
    out:write((table.concat(parts, "  "):gsub("%s+$", "")), "\n")
  end
  local head = {}
  for c, col in ipairs(columns) do head[c] = col[1] end
  line(head)
  for _, values in ipairs(cells) do line(values) end
end

-- "Label:   value" lines for the fields that are present, labels padded to
-- one width.
function M.write_fields(out, fields, t)
  local width = 0
  for _, f in ipairs(fields) do width = math.max(width, M.width(f[1]) + 1) end
  for _, f in ipairs(fields) do
    local s = M.cell(t, f)
    if s ~= "" then out:write(M.pad(f[1] .. ":", width), " ", s, "\n") end
  end
end

-- ---- JSON ------------------------------------------------------------------------------

-- Indents compact JSON text (the library's encoder's output) two spaces per
-- level; strings are copied as they are, empty [] and {} stay on one line.
function M.pretty_json(text)
  local out, depth, i, n = {}, 0, 1, #text
  local function newline() out[#out + 1] = "\n" .. ("  "):rep(depth) end
  while i <= n do
    local c = text:sub(i, i)
    if c == '"' then
      local j = i + 1
      while true do
        local q = text:find('["\\]', j)
        if not q then j = n break end
        if text:sub(q, q) == "\\" then j = q + 2 else j = q break end
      end
      out[#out + 1] = text:sub(i, j)
      i = j + 1
    elseif c == "{" or c == "[" then
      local close = c == "{" and "}" or "]"
      if text:sub(i + 1, i + 1) == close then
        out[#out + 1] = c .. close
        i = i + 2
      else
        out[#out + 1] = c
        depth = depth + 1
        newline()
        i = i + 1
      end
    elseif c == "}" or c == "]" then
      depth = depth - 1
      newline()
      out[#out + 1] = c
      i = i + 1
    elseif c == "," then
      out[#out + 1] = ","
      newline()
      i = i + 1
    elseif c == ":" then
      out[#out + 1] = ": "
      i = i + 1
    else
      local j = text:find('[{}%[%],:"]', i) or n + 1
      out[#out + 1] = text:sub(i, j - 1)
      i = j
    end
  end
  return table.concat(out)
end

return M
