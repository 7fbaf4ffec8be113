-- The Lua layer's decode path for one page, bytes to order objects, as the
-- listing runs it: unleashed.json.decode (the core's normaliser, then cjson,
-- then integer fields), the page check, then each item wrapped as an order.
local M = { path = "json.decode + check_page + order objects" }

local ok_json, json = pcall(require, "unleashed.json")
local ok_client, client = pcall(require, "unleashed.client")
local ok_po, po = pcall(require, "unleashed.purchase_orders")

if not (ok_json and ok_client and ok_po) then
  M.available = false
  M.missing = not ok_po and "unleashed.purchase_orders is not there yet"
    or "unleashed.json / unleashed.client do not load"
  return M
end

local wrap = po.wrap
if type(wrap) ~= "function" then
  M.available = false
  M.missing = "unleashed.purchase_orders has no wrap(item) yet"
  return M
end

M.available = true
function M.decode_page(bytes)
  local doc = assert(json.decode(bytes))
  client.check_page(doc, nil, "GET", "/PurchaseOrders")
  local items, out = doc.Items, {}
  for i = 1, #items do out[i] = wrap(items[i]) end
  return out
end

return M
