-- luacheck: read globals client unleashed
-- Receipts every Placed order from one supplier whose delivery is due.
--
--   unleashed run examples/receipt_due.lua [SUPPLIER] [DATE]
--
-- SUPPLIER defaults to ACME; DATE (YYYY-MM-DD, UTC) defaults to today. An
-- order is due when its DeliveryDate is on or before DATE. Prints one line per
-- order receipted and the totals per currency.
local format = require "unleashed.cli.format"

local supplier = arg[1] or "ACME"
local due = arg[2] or os.date("!%Y-%m-%d")
if not due:match("^%d%d%d%d%-%d%d%-%d%d$") then
  error(("DATE: expected YYYY-MM-DD, got %q"):format(due), 0)
end

-- Collect first, then receipt: receipting changes what the listing returns.
-- exactSupplierCode: that supplier only (the API's supplierCode is a prefix:
-- ACME would also find ACME2). DeliveryDate is "2026-11-30T00:00:00.000Z":
-- its first 10 characters compare with DATE as text.
local orders = {}
for po in client.purchase_orders:each { exactSupplierCode = supplier, orderStatus = "Placed" } do
  if po.DeliveryDate and po.DeliveryDate:sub(1, 10) <= due then
    orders[#orders + 1] = po
  end
end
print(("%d Placed order%s from %s due by %s"):format(#orders, #orders == 1 and "" or "s", supplier, due))

local totals, currencies = {}, {}
for _, po in ipairs(orders) do
  po:receipt()
  local ccy = po.Currency and po.Currency.CurrencyCode or "?"
  if not totals[ccy] then
    totals[ccy] = 0
    currencies[#currencies + 1] = ccy
  end
  totals[ccy] = totals[ccy] + (po.Total or 0)
  print(("receipted %s  due %s  %d line%s  total %s %s  now %s"):format(po.OrderNumber,
    po.DeliveryDate:sub(1, 10), #po.PurchaseOrderLines, #po.PurchaseOrderLines == 1 and "" or "s",
    format.amount(po.Total or 0), ccy, po.OrderStatus))
end

table.sort(currencies)
for _, ccy in ipairs(currencies) do
  print(("total receipted: %s %s"):format(format.amount(totals[ccy]), ccy))
end
print(("receipted %d order%s"):format(#orders, #orders == 1 and "" or "s"))
return #orders
