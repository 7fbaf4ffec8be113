-- luacheck: read globals client unleashed
-- Creates purchase orders from a CSV of reorder lines, one order per supplier.
--
--   unleashed run examples/create_from_csv.lua [FILE.csv] [STATUS]
--
-- FILE.csv (default examples/data/reorder.csv) has a header row and the
-- columns SupplierCode, ProductCode, Quantity, UnitPrice. STATUS is Parked
-- (the default) or Placed.
--
-- Safe to run twice: each order's GUID is derived from the supplier and its
-- lines (an HMAC-SHA256 of both, shaped as a name-based GUID), so a second run
-- finds the order it made the first time and creates nothing. Changing a
-- supplier's lines in the file makes a new order for that supplier.
local csv = require "unleashed.cli.csv"
local format = require "unleashed.cli.format"

local path = arg[1] or "examples/data/reorder.csv"
local status = arg[2] or "Parked"
if status ~= "Parked" and status ~= "Placed" then
  error(("STATUS: expected Parked or Placed, got %q"):format(status), 0)
end

local f = assert(io.open(path, "rb"))
local text = f:read("a")
f:close()
local rows, header = csv.parse_with_header(text)
for _, name in ipairs { "SupplierCode", "ProductCode", "Quantity", "UnitPrice" } do
  local found = false
  for _, h in ipairs(header) do found = found or h == name end
  if not found then
    error(("%s: no %s column (header: %s)"):format(path, name, table.concat(header, ",")), 0)
  end
end

-- Group the lines by supplier, in the order suppliers first appear.
local suppliers, lines_of = {}, {}
for n, row in ipairs(rows) do
  local qty, price = tonumber(row.Quantity), tonumber(row.UnitPrice)
  if row.SupplierCode == "" or row.ProductCode == "" then
    error(("%s record %d: SupplierCode and ProductCode must not be empty"):format(path, n), 0)
  end
  if not qty or qty <= 0 then
    error(("%s record %d: Quantity must be a number above 0, got %q"):format(path, n, row.Quantity), 0)
  end
  if not price or price < 0 then
    error(("%s record %d: UnitPrice must be a number of 0 or more, got %q"):format(path, n, row.UnitPrice), 0)
  end
  local code = row.SupplierCode
  if not lines_of[code] then
    lines_of[code] = {}
    suppliers[#suppliers + 1] = code
  end
  table.insert(lines_of[code], { product = row.ProductCode, qty = qty, price = price, record = n,
                                 text = row.ProductCode .. "\t" .. row.Quantity .. "\t" .. row.UnitPrice })
end

-- A GUID that is a function of the supplier and its lines: the first 16 bytes
-- of HMAC-SHA256, with the version (8, RFC 9562's custom form) and variant bits.
local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function base64_bytes(s)
  local bits, nbits, out = 0, 0, {}
  for c in s:gmatch("[^=]") do
    bits = (bits << 6) | (B64:find(c, 1, true) - 1)
    nbits = nbits + 6
    if nbits >= 8 then
      nbits = nbits - 8
      out[#out + 1] = (bits >> nbits) & 0xff
    end
  end
  return out
end

local function name_guid(name)
  local b = base64_bytes(unleashed.sign(name, "lua-unleashed/examples/create_from_csv"))
  b[7] = (b[7] & 0x0f) | 0x80
  b[9] = (b[9] & 0x3f) | 0x80
  local hex = {}
  for i = 1, 16 do hex[i] = string.format("%02x", b[i]) end
  local h = table.concat(hex)
  return ("%s-%s-%s-%s-%s"):format(h:sub(1, 8), h:sub(9, 12), h:sub(13, 16), h:sub(17, 20), h:sub(21, 32))
end

-- The account refused an order: name the CSV record and product of each line
-- the refusal is about (the library numbers lines from 1, in the order sent).
local function refused(err, code, lines)
  if type(err) ~= "table" or type(err.details) ~= "table" then return err end
  for _, d in ipairs(err.details) do
    local i, rest = tostring(d.field or ""):match("^PurchaseOrderLines%[(%d+)%]%.?(.*)$")
    local l = i and lines[tonumber(i)]
    if l then
      d.field = ("%s record %d (SupplierCode %s, ProductCode %s)%s"):format(path, l.record, code, l.product,
        rest ~= "" and (" " .. rest) or "")
    elseif d.field == nil or d.field == "" or d.field:match("^Supplier") then
      local rest_field = d.field and d.field ~= "" and (" " .. d.field) or ""
      d.field = ("%s SupplierCode %s%s"):format(path, code, rest_field)
    end
  end
  return err
end

local created, existing = 0, 0
for _, code in ipairs(suppliers) do
  local lines = lines_of[code]
  local texts = {}
  for i, l in ipairs(lines) do texts[i] = l.text end
  local guid = name_guid(code .. "\n" .. table.concat(texts, "\n"))

  local ok, found = pcall(client.purchase_orders.get, client.purchase_orders, guid)
  if ok then
    existing = existing + 1
    print(("exists    %s  %s %d line%s  total %.2f  %s  (%s)"):format(found.OrderNumber, format.pad(code, 14),
      #found.PurchaseOrderLines, #found.PurchaseOrderLines == 1 and "" or "s", found.Total or 0,
      found.OrderStatus, guid))
  elseif type(found) == "table" and found.kind == "not_found" then
    local order_lines = {}
    for i, l in ipairs(lines) do
      order_lines[i] = { LineNumber = i, Product = { ProductCode = l.product },
                         OrderQuantity = l.qty, UnitPrice = l.price }
    end
    local cok, po = pcall(client.purchase_orders.create, client.purchase_orders, {
      Guid = guid,
      Supplier = { SupplierCode = code },
      OrderStatus = status,
      Comments = "Reorder from " .. path:match("[^/]*$"),
      PurchaseOrderLines = order_lines,
    })
    if not cok then error(refused(po, code, lines), 0) end
    created = created + 1
    print(("created   %s  %s %d line%s  total %.2f  %s  (%s)"):format(po.OrderNumber, format.pad(code, 14),
      #po.PurchaseOrderLines, #po.PurchaseOrderLines == 1 and "" or "s", po.Total or 0,
      po.OrderStatus, guid))
  else
    error(found, 0)
  end
end
print(("%d order%s created, %d already there"):format(created, created == 1 and "" or "s", existing))
return created
