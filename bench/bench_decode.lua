-- The Lua layer's decode path for one listing page, bytes to order objects,
-- as the listing runs it (unleashed.client's _iterate): decode_body
-- (unleashed.json.decode: the core's decoder, src/decode.c), the
-- page check, then each item made a PurchaseOrder (its metatable set).
local M = { path = "decode_body + check_page + PurchaseOrder" }

local ok_client, client = pcall(require, "unleashed.client")
local ok_po, po = pcall(require, "unleashed.purchase_orders")

if not (ok_client and ok_po) then
  M.available = false
  M.missing = "unleashed.client / unleashed.purchase_orders do not load"
  return M
end

-- The resource only keeps the client for requests; decoding never uses it.
local wrap = po.new({})._wrap and po.new({}):_wrap()
if type(wrap) ~= "function" or type(client.decode_body) ~= "function"
    or type(client.check_page) ~= "function" then
  M.available = false
  M.missing = "the layer's decode functions are not where bench_decode.lua looks"
  return M
end

M.available = true
-- unleashed.json.decode alone (the core's decoder: the same tables the old
-- normaliser, cjson and integer pass made), to show where the layer's time goes.
M.json_decode = function(bytes) return client.decode_body({ status = 200, body = bytes }, "GET", "/x") end
local PATH = "/PurchaseOrders/Page/1"
function M.decode_page(bytes)
  local res = { status = 200, body = bytes }
  local doc = client.decode_body(res, "GET", PATH)
  client.check_page(doc, res, "GET", PATH)
  local items = doc.Items
  for i = 1, #items do items[i] = wrap(items[i]) end
  return items
end

return M
