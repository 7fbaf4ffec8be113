-- CSV per RFC 4180, for the command's output and the example workflows:
-- fields holding a comma, a double quote, CR or LF are quoted with the quotes
-- doubled; records end with CRLF as the RFC asks.
--
-- Written CSV is safe to open in a spreadsheet: a text field that starts
-- with =, +, -, @, a tab or a carriage return would be run as a formula
-- there (`=cmd|' /C calc'!A0` in a supplier's reference), so it gets a
-- leading ' that makes the spreadsheet show it as text. Numbers, and text
-- that is a plain decimal number ("-12.50"), stay as they are. A caller that
-- wants the raw text asks for it (raw = true).
local M = {}

-- Numbers print in the shortest form that reads back to the same value, so a
-- CSV read back compares equal to what the library returned.
local function text(v)
  if v == nil then return "" end
  if math.type(v) == "integer" then return string.format("%d", v) end
  if math.type(v) == "float" then
    if v == math.floor(v) and v > -2^53 and v < 2^53 then return string.format("%d", v) end
    for digits = 15, 17 do
      local s = string.format("%." .. digits .. "g", v)
      if tonumber(s) == v then return s end
    end
    return string.format("%.17g", v)
  end
  if type(v) == "boolean" then return v and "true" or "false" end
  return tostring(v)
end
M.text = text

-- The text a spreadsheet would read as a formula, made inert.
function M.neutralise(s)
  if s:find("^[=+%-@\t\r]") and not s:find("^[+-]?%d+%.?%d*$") then return "'" .. s end
  return s
end

function M.field(v, raw)
  local s = text(v)
  if type(v) == "string" and not raw then s = M.neutralise(s) end
  if s:find('[,"\r\n]') then
    return '"' .. s:gsub('"', '""') .. '"'
  end
  return s
end

-- One record (a list of values, n of them: nils are empty fields). raw:
-- text fields exactly as given, even those a spreadsheet would run.
function M.record(values, n, raw)
  local out = {}
  for i = 1, n or #values do out[i] = M.field(values[i], raw) end
  return table.concat(out, ",") .. "\r\n"
end

-- Parses a whole CSV text into a list of records (lists of strings). Accepts
-- LF or CRLF line ends; raises naming the line for a malformed quoted field.
function M.parse(s)
  local records, record, field = {}, {}, {}
  local i, n, line = 1, #s, 1
  local quoted_field = false
  local function end_field()
    record[#record + 1] = table.concat(field)
    field, quoted_field = {}, false
  end
  local function end_record()
    end_field()
    records[#records + 1] = record
    record = {}
  end
  while i <= n do
    local c = s:sub(i, i)
    if c == '"' and #field == 0 and not quoted_field then
      local j = i + 1
      while true do
        local q = s:find('"', j, true)
        if not q then error(("csv: line %d: a quoted field is not closed"):format(line), 2) end
        local chunk = s:sub(j, q - 1)
        local _, nl = chunk:gsub("\n", "")
        line = line + nl
        field[#field + 1] = chunk
        if s:sub(q + 1, q + 1) == '"' then
          field[#field + 1] = '"'
          j = q + 2
        else
          i = q + 1
          break
        end
      end
      quoted_field = true
      local nxt = s:sub(i, i)
      if nxt ~= "," and nxt ~= "\r" and nxt ~= "\n" and nxt ~= "" then
        error(("csv: line %d: text after a closing quote"):format(line), 2)
      end
    elseif c == "," then
      end_field(); i = i + 1
    elseif c == "\r" and s:sub(i + 1, i + 1) == "\n" then
      end_record(); i = i + 2; line = line + 1
    elseif c == "\n" then
      end_record(); i = i + 1; line = line + 1
    else
      local j = s:find('[,\r\n]', i) or n + 1
      if s:sub(i, j - 1):find('"', 1, true) then
        error(("csv: line %d: a quote inside an unquoted field"):format(line), 2)
      end
      field[#field + 1] = s:sub(i, j - 1)
      i = j
    end
  end
  if #field > 0 or #record > 0 or quoted_field then end_record() end
  return records
end

-- Records as tables keyed by the header row's names.
function M.parse_with_header(s)
  local records = M.parse(s)
  local header = table.remove(records, 1) or {}
  local rows = {}
  for r, rec in ipairs(records) do
    if not (#rec == 1 and rec[1] == "") then
      if #rec ~= #header then
        error(("csv: record %d has %d fields, the header has %d"):format(r, #rec, #header), 2)
      end
      local row = {}
      for k, name in ipairs(header) do row[name] = rec[k] end
      rows[#rows + 1] = row
    end
  end
  return rows, header
end

return M
