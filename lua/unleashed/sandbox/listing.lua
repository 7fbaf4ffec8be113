-- Query strings, paging and the PurchaseOrders filters.
local validate = require "unleashed.sandbox.validate"

local M = {}

local fmt, char, tonumber = string.format, string.char, tonumber

-- ---- query strings ----------------------------------------------------------
-- Form decoding as the real server does it: "+" is a space, %XX a byte; a
-- malformed escape is kept as it is.
local function hex_byte(h) return char(tonumber(h, 16)) end

function M.decode(s)
  if not s:find("[%%+]") then return s end
  return (s:gsub("%+", " "):gsub("%%(%x%x)", hex_byte))
end

-- The parameters in wire order: { {key, value}, ... } decoded, and the text
-- the signature covers (decoded "k=v" pieces joined with "&", in order).
function M.parse_query(q)
  local params, signed = {}, {}
  if q == nil or q == "" then return params, "" end
  for piece in (q .. "&"):gmatch("([^&]*)&") do
    local k, v = piece:match("^([^=]*)=(.*)$")
    if k then
      k, v = M.decode(k), M.decode(v)
      signed[#signed + 1] = k .. "=" .. v
    else
      k = M.decode(piece)
      signed[#signed + 1] = k
    end
    if k ~= "" then params[#params + 1] = { k, v or "" } end
  end
  return params, table.concat(signed, "&")
end

-- Parameter names are case-insensitive; a repeated name gives its values
-- joined with "," as ASP.NET does.
function M.param_map(params)
  local map = {}
  for _, p in ipairs(params) do
    local k = p[1]:lower()
    map[k] = map[k] and (map[k] .. "," .. p[2]) or p[2]
  end
  return map
end

-- ---- paging -----------------------------------------------------------------
M.DEFAULT_PAGE_SIZE = 200
M.MAX_PAGE_SIZE = 1000

-- Returns the page size, or nil and a description.
function M.page_size(map)
  local v = map.pagesize
  if v == nil then return M.DEFAULT_PAGE_SIZE end
  local n = v:match("^%d+$") and #v <= 7 and tonumber(v)
  if not n or n < 1 or n > M.MAX_PAGE_SIZE then
    return nil, fmt("pageSize must be a whole number from 1 to %d (got %q)", M.MAX_PAGE_SIZE, v)
  end
  return n
end

-- The {"Pagination": ..., "Items": [...]} envelope around encoded items,
-- built with one concat. `items` is the full list; `encode(item)` gives one
-- item's JSON. Past the last page, Items is empty. An empty result is the
-- recorded one: PageNumber 0 and NumberOfPages 0, whatever page was asked.
function M.page(items, page, size, encode)
  local total = #items
  if total == 0 then
    return fmt('{"Pagination":{"NumberOfItems":0,"PageSize":%d,"PageNumber":0,"NumberOfPages":0},"Items":[]}',
               size)
  end
  local out = { fmt('{"Pagination":{"NumberOfItems":%d,"PageSize":%d,"PageNumber":%d,"NumberOfPages":%d},'
                    .. '"Items":[', total, size, page, (total + size - 1) // size) }
  local first = (page - 1) * size + 1
  local last = math.min(total, page * size)
  for i = first, last do
    out[#out + 1] = encode(items[i])
    out[#out + 1] = ","
  end
  out[#out > 1 and #out or 2] = "]}"
  return table.concat(out)
end

-- ---- filters ----------------------------------------------------------------
local statuses = { "Parked", "Placed", "Costed", "Receipted", "Complete", "Deleted", "Unapproved" }
local status_by_lower = {}
for _, s in ipairs(statuses) do status_by_lower[s:lower()] = s end

function M.parse_bool(map, name, key, default, errs)
  local v = map[key]
  if v == nil then return default end
  local l = v:lower()
  if l == "true" then return true elseif l == "false" then return false end
  errs:add(name, fmt("%s must be true or false (got %q)", name, v))
  return default
end

function M.parse_filter_date(map, name, key, errs)
  local v = map[key]
  if v == nil or v == "" then return nil end
  local ms = not v:find("^/Date") and validate.parse_date(v)
  if not ms then
    errs:add(name, fmt("%s must be an ISO 8601 date, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS (got %q)", name, v))
  end
  return ms or nil
end

local function split_list(v)
  local out = {}
  for piece in v:gmatch("[^,]+") do
    local s = piece:match("^%s*(.-)%s*$")
    if s ~= "" then out[#out + 1] = s end
  end
  return out
end

-- Reads the twelve filters. Returns a filter spec (with a `key` string that
-- identifies equal filters) and records problems in errs.
function M.read_filters(map, errs)
  local f = {}
  f.brief = M.parse_bool(map, "brief", "brief", true, errs)
  f.serial_batch = M.parse_bool(map, "serialBatch", "serialbatch", false, errs)
  f.completed_after = M.parse_filter_date(map, "completedAfter", "completedafter", errs)
  f.completed_before = M.parse_filter_date(map, "completedBefore", "completedbefore", errs)
  f.end_date = M.parse_filter_date(map, "endDate", "enddate", errs)
  f.start_date = M.parse_filter_date(map, "startDate", "startdate", errs)
  f.modified_since = M.parse_filter_date(map, "modifiedSince", "modifiedsince", errs)
  if map.ordernumber and map.ordernumber ~= "" then f.order_number = map.ordernumber:lower() end
  if map.suppliercode and map.suppliercode ~= "" then f.supplier_code = map.suppliercode:lower() end
  if map.warehousecode and map.warehousecode ~= "" then f.warehouse_code = map.warehousecode:lower() end
  if map.customorderstatus and map.customorderstatus ~= "" then
    f.custom = {}
    for _, s in ipairs(split_list(map.customorderstatus)) do f.custom[s:lower()] = true end
  end
  if map.orderstatus and map.orderstatus ~= "" then
    f.status = {}
    for _, s in ipairs(split_list(map.orderstatus)) do
      local canonical = status_by_lower[s:lower()]
      if canonical then
        f.status[canonical] = true
      else
        errs:add("orderStatus",
                 fmt("orderStatus must be a list of %s (got %q)", table.concat(statuses, ", "), s))
      end
    end
  end
  f.key = table.concat({
    tostring(f.completed_after), tostring(f.completed_before), tostring(f.end_date), tostring(f.start_date),
    tostring(f.modified_since), tostring(f.order_number), tostring(f.supplier_code),
      tostring(f.warehouse_code),
    map.customorderstatus or "", map.orderstatus or "" }, "\0")
  return f
end

-- Comparisons: startDate and endDate are inclusive (OrderDate >= startDate,
-- OrderDate <= endDate; a date alone means 00:00:00 UTC and seeded order
-- dates are midnights); completedAfter and completedBefore are exclusive,
-- as their words say; modifiedSince is inclusive, so an incremental sync
-- never misses an order modified exactly at its mark. Deleted orders appear
-- only when orderStatus names Deleted; orderNumber overrides every other
-- filter (and finds a deleted order too: it names one order), and
-- customOrderStatus overrides orderStatus (deleted orders excluded).
function M.matcher(f, ref)
  if f.order_number then
    local num = f.order_number
    return function(o) return o.OrderNumber:lower() == num end
  end
  -- Supplier and warehouse filters become sets of Guids, checked per order.
  local suppliers, warehouses
  if f.supplier_code then
    suppliers = {}
    for _, s in ipairs(ref.suppliers) do
      if s.SupplierCode:lower():sub(1, #f.supplier_code) == f.supplier_code then suppliers[s.Guid] = true end
    end
  end
  if f.warehouse_code then
    warehouses = {}
    for _, w in ipairs(ref.warehouses) do
      if w.WarehouseCode:lower() == f.warehouse_code then warehouses[w.Guid] = true end
    end
  end
  return function(o)
    if f.custom then
      local custom = o.CustomOrderStatus
      if o.OrderStatus == "Deleted" or not custom or not f.custom[custom:lower()] then
        return false
      end
    elseif f.status then
      if not f.status[o.OrderStatus] then return false end
    elseif o.OrderStatus == "Deleted" then
      return false
    end
    if suppliers and not suppliers[o.supplier] then return false end
    if warehouses and not warehouses[o.warehouse] then return false end
    if f.start_date and not (o.OrderDate and o.OrderDate >= f.start_date) then return false end
    if f.end_date and not (o.OrderDate and o.OrderDate <= f.end_date) then return false end
    local done = o.CompletedDate
    if f.completed_after and not (done and done > f.completed_after) then return false end
    if f.completed_before and not (done and done < f.completed_before) then return false end
    if f.modified_since and (o.LastModifiedOn or o.CreatedOn) < f.modified_since then return false end
    return true
  end
end

return M
