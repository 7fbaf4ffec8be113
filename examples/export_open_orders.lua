-- luacheck: read globals client unleashed
-- Exports the open purchase orders (Parked and Placed) with their lines as
-- CSV (RFC 4180, a header row, one row per line; an order without lines gets
-- one row with the line columns empty). Each line has its quantities in the
-- API's two fields, OrderQuantity and PurchaseUnitOrderQuantity, and the unit
-- it was ordered in (UnitOfMeasure, the line's UnitOfMeasure.Name). Amounts
-- have at least 2 decimals, unit prices 4; text a spreadsheet would run as a
-- formula gets a leading ' (see unleashed.cli.csv).
--
--   unleashed run examples/export_open_orders.lua [FILE.csv]
--
-- Writes to FILE.csv, or to stdout when no file is given (the summary then
-- goes to stderr so the CSV stays clean).
local csv = require "unleashed.cli.csv"
local format = require "unleashed.cli.format"

local path = arg[1]
local out = path and assert(io.open(path, "wb")) or io.stdout
local say = path and print or function(s) io.stderr:write(s, "\n") end

local columns = {
  "OrderNumber", "OrderGuid", "OrderStatus", "SupplierCode", "WarehouseCode", "OrderDate",
  "DeliveryDate", "Currency", "OrderTotal", "LineNumber", "ProductCode", "OrderQuantity",
  "PurchaseUnitOrderQuantity", "UnitOfMeasure", "UnitPrice", "LineTotal",
}
out:write(csv.record(columns))

local orders, lines = 0, 0
for _, status in ipairs { "Parked", "Placed" } do
  for po in client.purchase_orders:each { orderStatus = status } do
    orders = orders + 1
    local head = {
      po.OrderNumber, po.Guid, po.OrderStatus, po.Supplier and po.Supplier.SupplierCode,
      po.Warehouse and po.Warehouse.WarehouseCode, po.OrderDate, po.DeliveryDate,
      po.Currency and po.Currency.CurrencyCode, po.Total and format.amount(po.Total),
    }
    local po_lines = po.PurchaseOrderLines or {}
    if #po_lines == 0 then
      out:write(csv.record(head, #columns))
    end
    for _, line in ipairs(po_lines) do
      lines = lines + 1
      local row = table.move(head, 1, 9, 1, {})
      row[10], row[11] = line.LineNumber, line.Product and line.Product.ProductCode
      row[12] = line.OrderQuantity and format.quantity(line.OrderQuantity)
      row[13] = line.PurchaseUnitOrderQuantity and format.quantity(line.PurchaseUnitOrderQuantity)
      row[14] = line.UnitOfMeasure and line.UnitOfMeasure.Name
      row[15] = line.UnitPrice and format.amount(line.UnitPrice, format.PRICE_PLACES)
      row[16] = line.LineTotal and format.amount(line.LineTotal)
      out:write(csv.record(row, #columns))
    end
  end
end
if path then out:close() end
say(("exported %d open order%s with %d line%s to %s"):format(orders, orders == 1 and "" or "s",
  lines, lines == 1 and "" or "s", path or "stdout"))
return orders
