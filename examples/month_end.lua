-- luacheck: read globals client unleashed
-- A month-end report: purchase order totals by supplier and status for one
-- month (by OrderDate), then the landed cost of each order received in that
-- month (by ReceivedDate): its goods plus the costs added to it (freight,
-- duty), in the base currency.
--
--   unleashed run examples/month_end.lua [YYYY-MM]
--
-- The month defaults to the current one (UTC).
local month = arg[1] or os.date("!%Y-%m")
local y, m = month:match("^(%d%d%d%d)%-(%d%d)$")
y, m = tonumber(y), tonumber(m)
if not y or m < 1 or m > 12 then
  error(("MONTH: expected YYYY-MM, got %q"):format(month), 0)
end
local first = ("%04d-%02d-01"):format(y, m)
local next_first = m == 12 and ("%04d-01-01"):format(y + 1) or ("%04d-%02d-01"):format(y, m + 1)

-- Every order of the month (not Deleted ones: the API leaves those out).
local groups, keys = {}, {}
local count = 0
for po in client.purchase_orders:each { startDate = first, endDate = next_first } do
  if po.OrderDate and po.OrderDate:sub(1, 7) == month then
    count = count + 1
    local supplier = po.Supplier and po.Supplier.SupplierCode or "?"
    local key = supplier .. "\0" .. po.OrderStatus
    local g = groups[key]
    if not g then
      g = { supplier = supplier, status = po.OrderStatus, orders = 0, sub = 0, tax = 0, total = 0,
            currency = po.Currency and po.Currency.CurrencyCode or "" }
      groups[key] = g
      keys[#keys + 1] = key
    end
    g.orders = g.orders + 1
    g.sub = g.sub + (po.SubTotal or 0)
    g.tax = g.tax + (po.TaxTotal or 0)
    g.total = g.total + (po.Total or 0)
  end
end

-- string.format pads by bytes; pad by the columns a terminal gives the text
-- so that "MÜLLER" lines up with "ACME".
local format = require "unleashed.cli.format"
local pad = format.pad

-- A report line without the spaces a missing last column would leave.
local function say(s)
  print((s:gsub("%s+$", "")))
end

table.sort(keys)
print(("purchase orders for %s: %d"):format(month, count))
say(("%s %s %6s %12s %12s %12s  %s"):format(pad("SUPPLIER", 16), pad("STATUS", 10), "ORDERS", "SUBTOTAL",
  "TAX", "TOTAL", "CCY"))
for _, key in ipairs(keys) do
  local g = groups[key]
  say(("%s %s %6d %12.2f %12.2f %12.2f  %s"):format(pad(g.supplier, 16), pad(g.status, 10), g.orders,
    g.sub, g.tax, g.total, g.currency))
end

-- Orders received in the month, whenever they were ordered. Receiving an
-- order modifies it, so modifiedSince narrows the listing to candidates.
local receipted = {}
local received = { modifiedSince = first, orderStatus = "Receipted,Costed,Complete" }
for po in client.purchase_orders:each(received) do
  if po.ReceivedDate and po.ReceivedDate:sub(1, 7) == month then receipted[#receipted + 1] = po end
end

-- Landed cost: goods (BCSubTotal) plus every cost's BCCost, base currency.
table.sort(receipted, function(a, b) return a.OrderNumber < b.OrderNumber end)
print()
print(("landed costs of %d receipted order%s (base currency)"):format(#receipted,
  #receipted == 1 and "" or "s"))
local landed_total = 0
for _, po in ipairs(receipted) do
  local goods = po.BCSubTotal or po.SubTotal or 0
  local extra, names = 0, {}
  for _, cost in ipairs(po:costs()) do
    extra = extra + (cost.BCCost or cost.Cost or 0)
    names[#names + 1] = cost.Reference or "cost"
  end
  local landed = goods + extra
  landed_total = landed_total + landed
  say(("%s  %s goods %10.2f  costs %9.2f  landed %10.2f  %s"):format(po.OrderNumber,
    pad(po.Supplier and po.Supplier.SupplierCode or "?", 16), goods, extra, landed,
    table.concat(names, ", ")))
end
print(("landed total: %.2f"):format(landed_total))
return count
