-- Purchase orders: the stored shape, the arithmetic the server derives from
-- it, the JSON the API answers with, and the lifecycle steps.
--
-- Stored orders are plain tables (they go into dumps as they are) that refer
-- to reference data by Guid. Every figure the API derives (totals, base
-- currency figures, tax codes and rates of lines) is recomputed by
-- `recompute` after any change, so the stored order cannot contradict itself.
local json = require "unleashed.sandbox.json"

local M = {}

local floor, abs = math.floor, math.abs
local concat = table.concat
local str, dec, bool, date = json.str, json.dec, json.bool, json.date

-- ---- rounding -----------------------------------------------------------
-- Half away from zero, as .NET's decimal rounding for money; the epsilon
-- absorbs binary noise such as 1.005 * 100 = 100.49999999999999.
local function round_units(x, scale)
  local v = x * scale
  local eps = 1e-9 + abs(v) * 1e-15
  if v >= 0 then return floor(v + 0.5 + eps) end
  return -floor(-v + 0.5 + eps)
end
M.round_units = round_units

function M.round2(x) return round_units(x, 100) / 100 end
function M.round4(x) return round_units(x, 10000) / 10000 end
function M.cents(x) return round_units(x, 100) end
local round2, round4 = M.round2, M.round4

-- ---- the tax hierarchy ------------------------------------------------------
-- The seed page's LineTax note: "Follows tax hierarchy: 1. Product 2.
-- Purchase Order 3. Supplier 4. Default Purchase tax", on the fields the
-- recorded answers have. Product: TaxablePurchase false means no tax,
-- otherwise XeroTaxCode (among the taxes for expenses), else XeroTaxRate;
-- the order: its own TaxCode, Tax or TaxRate; the supplier: Taxable false
-- means no tax, otherwise its TaxRate; then the account's default. A code
-- is looked up among the taxes that can apply to expenses and are not
-- obsolete (the list has NONE twice); "no tax" is that NONE.
function M.tax_by_rate(ref, rate)
  return ref.expense_tax_by_rate[string.format("%.6f", rate)]
end

function M.product_tax(prod, ref)
  if not prod then return nil end
  if prod.TaxablePurchase == false then return ref.no_tax end
  if prod.XeroTaxCode then return ref.expense_tax_by_code[prod.XeroTaxCode:lower()] end
  if prod.XeroTaxRate then return M.tax_by_rate(ref, prod.XeroTaxRate) end
  return nil
end

function M.supplier_tax(sup, ref)
  if not sup then return nil end
  if sup.Taxable == false then return ref.no_tax end
  if sup.TaxRate then return M.tax_by_rate(ref, sup.TaxRate) end
  return nil
end

-- The order-level tax: its own, the supplier's, the account's default.
function M.order_tax(order, ref)
  if order.tax_code then
    local own = ref.expense_tax_by_code[order.tax_code:lower()]
    if own then return own end
  end
  return M.supplier_tax(ref.supplier_by_guid[order.supplier], ref) or ref.default_tax
end

function M.line_tax(line, order, ref)
  return M.product_tax(ref.product_by_guid[line.product], ref) or M.order_tax(order, ref)
end

-- LineTotal = round2(quantity in the line's unit x UnitPrice x (1 - the
-- line's own DiscountRate)); the order's DiscountRate is stored and shown
-- but not applied to lines (the API's line arithmetic names only the line's).
function M.line_total(q, price, discount)
  return round2(q * price * (1 - (discount or 0)))
end

function M.recompute(order, ref)
  local er = order.ExchangeRate
  if not er or er <= 0 then er = 1 end
  local otax = M.order_tax(order, ref)
  order.TaxCode, order.TaxRate = otax.TaxCode, otax.TaxRate
  local sub_c, tax_c = 0, 0
  local volume, weight = nil, nil
  local bc_costs = 0
  for _, c in ipairs(order.costs) do bc_costs = bc_costs + M.cost_figures(c).BCCost end
  local bc_sub_total = 0
  for _, line in ipairs(order.lines) do
    local prod = ref.product_by_guid[line.product]
    local t = M.line_tax(line, order, ref)
    local q = line.PurchaseUnitOrderQuantity
    line.OrderQuantity = round4(q * line.factor)
    line.LineTotal = M.line_total(q, line.UnitPrice, line.DiscountRate)
    line.LineTaxCode, line.LineTaxRate = t.TaxCode, t.TaxRate
    line.LineTax = round2(line.LineTotal * t.TaxRate)
    line.DiscountedUnitPrice = round4(line.UnitPrice * (1 - (line.DiscountRate or 0)))
    line.BCUnitPrice = round4(line.UnitPrice / er)
    line.BCSubTotal = round2(line.LineTotal / er)
    if line.PurchaseUnitReceiptQuantity then
      line.ReceiptQuantity = round4(line.PurchaseUnitReceiptQuantity * line.factor)
    else
      line.ReceiptQuantity = nil
    end
    line.Volume = line.volume_override or (prod.Volume and round4(prod.Volume * line.OrderQuantity))
    line.Weight = line.weight_override or (prod.Weight and round4(prod.Weight * line.OrderQuantity))
    if line.Volume then volume = (volume or 0) + line.Volume end
    if line.Weight then weight = (weight or 0) + line.Weight end
    sub_c = sub_c + M.cents(line.LineTotal)
    tax_c = tax_c + M.cents(line.LineTax)
    bc_sub_total = bc_sub_total + line.BCSubTotal
  end
  -- Landed cost: the order's costs (in base currency) spread over the lines
  -- by their base-currency value.
  for _, line in ipairs(order.lines) do
    local share = 0
    if bc_costs ~= 0 then
      share = bc_sub_total > 0 and bc_costs * line.BCSubTotal / bc_sub_total or bc_costs / #order.lines
    end
    line.BCCostTotal = round2(line.BCSubTotal + share)
    -- Not rounded to a fixed scale: the live API writes landed costs with
    -- 14 places. Kept to 14 significant digits, which a state dump holds
    -- exactly.
    line.BCLandedCost = line.OrderQuantity > 0
      and tonumber(string.format("%.14g", line.BCCostTotal / line.OrderQuantity)) or 0
  end
  order.SubTotal = sub_c / 100
  order.TaxTotal = tax_c / 100
  order.Total = (sub_c + tax_c) / 100
  order.BCSubTotal = round2(order.SubTotal / er)
  order.BCTaxTotal = round2(order.TaxTotal / er)
  order.BCTotal = round2(order.BCSubTotal + order.BCTaxTotal)
  order.TotalVolume = volume and round4(volume)
  order.TotalWeight = weight and round4(weight)
end

-- A cost's base-currency figures: amounts divided by the cost's exchange rate.
function M.cost_figures(c)
  local er = c.CostExchangeRate or 1
  local tax_cost = round2(c.Cost * (c.TaxRate or 0))
  local bc_cost = round2(c.Cost / er)
  local bc_tax = round2(tax_cost / er)
  return { TaxCost = tax_cost, TotalCost = round2(c.Cost + tax_cost), BCCost = bc_cost,
           BCTaxCost = bc_tax, BCTotalCost = round2(bc_cost + bc_tax) }
end

-- ---- rendering ------------------------------------------------------------
-- Nested objects in the recorded shapes: Currency and Tax as the 2014 and
-- 2018 answers nest them, Warehouse as the 2021 answers do. Supplier as the
-- seed's request table has it (no purchase order was recorded).
local decp = json.decp

function M.supplier_ref(sup)
  return concat{ '{"Guid":', str(sup.Guid), ',"SupplierCode":', str(sup.SupplierCode),
                 ',"SupplierName":', str(sup.SupplierName), '}' }
end

function M.warehouse_ref(w)
  return concat{ '{"WarehouseCode":', str(w.WarehouseCode), ',"WarehouseName":', str(w.WarehouseName),
    ',"IsDefault":', bool(w.IsDefault), ',"StreetNo":', str(w.StreetNo),
    ',"AddressLine1":', str(w.AddressLine1), ',"AddressLine2":', str(w.AddressLine2),
    ',"Suburb":', str(w.Suburb), ',"City":', str(w.City), ',"Region":', str(w.Region),
    ',"Country":', str(w.Country), ',"PostCode":', str(w.PostCode), ',"PhoneNumber":', str(w.PhoneNumber),
    ',"FaxNumber":', str(w.FaxNumber), ',"MobileNumber":', str(w.MobileNumber),
    ',"DDINumber":', str(w.DDINumber), ',"ContactName":', str(w.ContactName),
    ',"Obsolete":', bool(w.Obsolete), ',"Guid":', str(w.Guid), ',"LastModifiedOn":', date(w.LastModifiedOn),
    '}' }
end

function M.currency_ref(c)
  return concat{ '{"CurrencyCode":', str(c.CurrencyCode), ',"Description":', str(c.Description),
                 ',"Guid":', str(c.Guid), ',"LastModifiedOn":', date(c.LastModifiedOn), '}' }
end

M.ZERO_GUID = "00000000-0000-0000-0000-000000000000"

function M.tax_ref(t)
  return concat{ '{"TaxCode":', str(t.TaxCode), ',"Description":', str(t.Description),
                 ',"TaxRate":', decp(t.TaxRate, 6), ',"CanApplyToExpenses":', bool(t.CanApplyToExpenses),
                 ',"CanApplyToRevenue":', bool(t.CanApplyToRevenue), ',"Obsolete":', bool(t.Obsolete),
                 ',"Guid":', str(t.Guid), ',"LastModifiedOn":', date(t.LastModifiedOn), '}' }
end

-- An order's Tax when it has none: as the recorded orders show NONE, with
-- the all-zero Guid, a null description and no LastModifiedOn.
local NO_TAX_JSON = concat{ '{"TaxCode":"NONE","Description":null,"TaxRate":', decp(0, 6),
  ',"CanApplyToExpenses":false,"CanApplyToRevenue":false,"Obsolete":false,"Guid":"', M.ZERO_GUID,
  '","LastModifiedOn":null}' }

function M.order_tax_json(order, ref)
  local t = ref.expense_tax_by_code[order.TaxCode:lower()]
  if not t or t.TaxCode == "NONE" then return NO_TAX_JSON end
  local s = t._json_ref
  if not s then s = M.tax_ref(t); t._json_ref = s end
  return s
end

function M.unit_ref(u)
  return concat{ '{"Guid":', str(u.Guid), ',"Name":', str(u.Name), '}' }
end

-- The line's Product: brief gives Guid, ProductCode, ProductDescription only.
-- Products never change, so both forms are built once per product.
local function product_ref(prod, brief)
  local key = brief and "_json_brief" or "_json_full"
  local s = prod[key]
  if s then return s end
  if brief then
    s = concat{ '{"Guid":', str(prod.Guid), ',"ProductCode":', str(prod.ProductCode),
                ',"ProductDescription":', str(prod.ProductDescription), '}' }
  else
    local g = prod.ProductGroup
    s = concat{ '{"Guid":', str(prod.Guid), ',"ProductCode":', str(prod.ProductCode),
                ',"ProductDescription":', str(prod.ProductDescription),
                ',"SupplierProductCode":', str(prod.SupplierProductCode),
                ',"SupplierProductDescription":', str(prod.SupplierProductDescription),
                ',"ProductGroup":', g and concat{ '{"Guid":', str(g.Guid), ',"GroupName":',
                                                  str(g.GroupName), '}' } or "null", '}' }
  end
  prod[key] = s
  return s
end
M.product_ref = product_ref

local function batches_json(list)
  local items = {}
  for i, b in ipairs(list) do
    items[i] = concat{ '{"BatchNumber":', str(b.BatchNumber), ',"ExpiryDate":', date(b.ExpiryDate),
                       ',"Guid":', str(b.Guid), ',"LastModifiedOn":', date(b.LastModifiedOn),
                       ',"Quantity":', dec(b.Quantity), '}' }
  end
  return json.array(items)
end

local function pending_batches_json(list)
  local items = {}
  for i, b in ipairs(list) do
    items[i] = concat{ '{"BatchNumber":', str(b.BatchNumber), ',"CreatedOn":', date(b.CreatedOn),
                       ',"ExpiryDate":', date(b.ExpiryDate), ',"Quantity":', dec(b.Quantity), '}' }
  end
  return json.array(items)
end

local function serials_json(list)
  local items = {}
  for i, s in ipairs(list) do
    items[i] = concat{ '{"SerialNumber":', str(s.SerialNumber), ',"Guid":', str(s.Guid),
                       ',"LastModifiedOn":', date(s.LastModifiedOn), '}' }
  end
  return json.array(items)
end

local function pending_serials_json(list)
  local items = {}
  for i, s in ipairs(list) do
    items[i] = concat{ '{"CreatedOn":', date(s.CreatedOn), ',"SerialNumber":', str(s.SerialNumber), '}' }
  end
  return json.array(items)
end

local function cached_ref(item, render)
  local s = item._json_ref
  if not s then s = render(item); item._json_ref = s end
  return s
end

-- Orders are written piece by piece into a buffer and joined once (see the
-- writers in unleashed.sandbox.json): the first render of a page of 1,000
-- orders made some 100,000 small strings through string.format, and most
-- pieces (keys, digits, the orders' own strings) already exist. The text is
-- what "%.4f" (put_dec4), "%d" (put_int) and the value helpers give.
local put_str, put_plain, put_dec, put_dec4 = json.put_str, json.put_plain, json.put_dec, json.put_dec4
local put_int, put_date, put_bool = json.put_int, json.put_date, json.put_bool
local put_decp = json.put_decp

local function put_line(b, n, line, ref, brief, serial_batch)
  b[n + 1] = "{"
  n = n + 1
  if serial_batch then
    b[n + 1] = '"BatchNumbers":' .. batches_json(line.batches) .. ","
    n = n + 1
  end
  b[n + 1] = '"BCCostTotal":';            n = put_decp(b, n + 1, line.BCCostTotal, 3)
  b[n + 1] = ',"BCLandedCost":';          n = put_decp(b, n + 1, line.BCLandedCost, 14)
  b[n + 1] = ',"BCSubTotal":';            n = put_decp(b, n + 1, line.BCSubTotal, 3)
  b[n + 1] = ',"BCUnitPrice":';           n = put_dec4(b, n + 1, line.BCUnitPrice)
  b[n + 1] = ',"Comments":';              n = put_str(b, n + 1, line.Comments)
  b[n + 1] = ',"DeliveryDate":';          n = put_date(b, n + 1, line.DeliveryDate)
  b[n + 1] = ',"DiscountedUnitPrice":';   n = put_dec4(b, n + 1, line.DiscountedUnitPrice)
  b[n + 1] = ',"DiscountRate":';          n = put_dec4(b, n + 1, line.DiscountRate or 0)
  b[n + 1] = ',"Guid":';                  n = put_plain(b, n + 1, line.Guid)
  b[n + 1] = ',"LastModifiedBy":';        n = put_str(b, n + 1, line.LastModifiedBy)
  b[n + 1] = ',"LastModifiedOn":';        n = put_date(b, n + 1, line.LastModifiedOn)
  b[n + 1] = ',"LineNumber":';            n = put_int(b, n + 1, line.LineNumber)
  b[n + 1] = ',"LineTax":';               n = put_decp(b, n + 1, line.LineTax, 3)
  b[n + 1] = ',"LineTaxCode":';           n = put_str(b, n + 1, line.LineTaxCode)
  b[n + 1] = ',"LineTaxRate":';           n = put_decp(b, n + 1, line.LineTaxRate, 6)
  b[n + 1] = ',"LineTotal":';             n = put_decp(b, n + 1, line.LineTotal, 8)
  b[n + 1] = ',"OrderQuantity":';         n = put_dec4(b, n + 1, line.OrderQuantity)
  if serial_batch then
    b[n + 1] = ',"PendingBatchNumbers":' .. pending_batches_json(line.pending_batches)
    b[n + 2] = ',"PendingSerialNumbers":' .. pending_serials_json(line.pending_serials)
    n = n + 2
  end
  b[n + 1] = ',"Product":'
  b[n + 2] = product_ref(ref.product_by_guid[line.product], brief)
  n = n + 2
  b[n + 1] = ',"PurchaseUnitOrderQuantity":';   n = put_dec4(b, n + 1, line.PurchaseUnitOrderQuantity)
  b[n + 1] = ',"PurchaseUnitReceiptQuantity":'; n = put_dec(b, n + 1, line.PurchaseUnitReceiptQuantity)
  b[n + 1] = ',"ReceiptQuantity":';             n = put_dec(b, n + 1, line.ReceiptQuantity)
  if serial_batch then
    b[n + 1] = ',"SerialNumbers":' .. serials_json(line.serials)
    n = n + 1
  end
  b[n + 1] = ',"UnitOfMeasure":'
  b[n + 2] = cached_ref(ref.unit_by_guid[line.unit], M.unit_ref)
  n = n + 2
  b[n + 1] = ',"UnitPrice":';             n = put_dec4(b, n + 1, line.UnitPrice)
  b[n + 1] = ',"Volume":';                n = put_decp(b, n + 1, line.Volume, 3)
  b[n + 1] = ',"Weight":';                n = put_decp(b, n + 1, line.Weight, 3)
  b[n + 1] = "}"
  return n + 1
end

-- One buffer serves every render: an order is written and joined before
-- the next one starts, and nothing it calls renders an order.
local buffer = {}

-- The order as the API renders it, for one variant of brief/serialBatch.
function M.to_json(order, ref, brief, serial_batch)
  local b, n = buffer, 0
  b[n + 1] = '{"BCSubTotal":';            n = put_decp(b, n + 1, order.BCSubTotal, 3)
  b[n + 1] = ',"BCTaxTotal":';            n = put_decp(b, n + 1, order.BCTaxTotal, 3)
  b[n + 1] = ',"BCTotal":';               n = put_decp(b, n + 1, order.BCTotal, 3)
  b[n + 1] = ',"Comments":';              n = put_str(b, n + 1, order.Comments)
  b[n + 1] = ',"CompletedDate":';         n = put_date(b, n + 1, order.CompletedDate)
  b[n + 1] = ',"CreatedBy":';             n = put_str(b, n + 1, order.CreatedBy)
  b[n + 1] = ',"CreatedOn":';             n = put_date(b, n + 1, order.CreatedOn)
  b[n + 1] = ',"Currency":'
  b[n + 2] = cached_ref(ref.currency_by_guid[order.currency], M.currency_ref)
  n = n + 2
  b[n + 1] = ',"CustomOrderStatus":';     n = put_str(b, n + 1, order.CustomOrderStatus)
  b[n + 1] = ',"DeliveryCity":';          n = put_str(b, n + 1, order.DeliveryCity)
  b[n + 1] = ',"DeliveryCountry":';       n = put_str(b, n + 1, order.DeliveryCountry)
  b[n + 1] = ',"DeliveryDate":';          n = put_date(b, n + 1, order.DeliveryDate)
  b[n + 1] = ',"DeliveryName":';          n = put_str(b, n + 1, order.DeliveryName)
  b[n + 1] = ',"DeliveryPostCode":';      n = put_str(b, n + 1, order.DeliveryPostCode)
  b[n + 1] = ',"DeliveryRegion":';        n = put_str(b, n + 1, order.DeliveryRegion)
  b[n + 1] = ',"DeliveryStreetAddress":'; n = put_str(b, n + 1, order.DeliveryStreetAddress)
  b[n + 1] = ',"DeliveryStreetAddress2":'; n = put_str(b, n + 1, order.DeliveryStreetAddress2)
  b[n + 1] = ',"DeliverySuburb":';        n = put_str(b, n + 1, order.DeliverySuburb)
  b[n + 1] = ',"DiscountRate":';          n = put_dec4(b, n + 1, order.DiscountRate or 0)
  b[n + 1] = ',"ExchangeRate":';          n = put_decp(b, n + 1, order.ExchangeRate, 6)
  b[n + 1] = ',"Guid":';                  n = put_plain(b, n + 1, order.Guid)
  b[n + 1] = ',"LastModifiedBy":';        n = put_str(b, n + 1, order.LastModifiedBy)
  b[n + 1] = ',"LastModifiedOn":';        n = put_date(b, n + 1, order.LastModifiedOn)
  b[n + 1] = ',"OrderDate":';             n = put_date(b, n + 1, order.OrderDate)
  b[n + 1] = ',"OrderNumber":';           n = put_str(b, n + 1, order.OrderNumber)
  b[n + 1] = ',"OrderStatus":';           n = put_plain(b, n + 1, order.OrderStatus)
  b[n + 1] = ',"Printed":';               n = put_bool(b, n + 1, order.Printed)
  b[n + 1] = ',"PurchaseOrderLines":['
  n = n + 1
  for i, line in ipairs(order.lines) do
    if i > 1 then
      b[n + 1] = ","
      n = n + 1
    end
    n = put_line(b, n, line, ref, brief, serial_batch)
  end
  b[n + 1] = '],"ReceivedDate":';         n = put_date(b, n + 1, order.ReceivedDate)
  b[n + 1] = ',"SalesOrders":[],"SubTotal":'; n = put_decp(b, n + 1, order.SubTotal, 3)
  b[n + 1] = ',"Supplier":'
  b[n + 2] = cached_ref(ref.supplier_by_guid[order.supplier], M.supplier_ref)
  n = n + 2
  b[n + 1] = ',"SupplierEORI":';          n = put_str(b, n + 1, order.SupplierEORI)
  b[n + 1] = ',"SupplierInvoiceDate":';   n = put_date(b, n + 1, order.SupplierInvoiceDate)
  b[n + 1] = ',"SupplierRef":';           n = put_str(b, n + 1, order.SupplierRef)
  b[n + 1] = ',"Tax":'
  b[n + 2] = M.order_tax_json(order, ref)
  n = n + 2
  b[n + 1] = ',"TaxCode":';               n = put_str(b, n + 1, order.TaxCode)
  b[n + 1] = ',"TaxRate":';               n = put_decp(b, n + 1, order.TaxRate, 6)
  b[n + 1] = ',"TaxTotal":';              n = put_decp(b, n + 1, order.TaxTotal, 3)
  b[n + 1] = ',"Total":';                 n = put_decp(b, n + 1, order.Total, 3)
  b[n + 1] = ',"TotalVolume":';           n = put_decp(b, n + 1, order.TotalVolume, 3)
  b[n + 1] = ',"TotalWeight":';           n = put_decp(b, n + 1, order.TotalWeight, 3)
  b[n + 1] = ',"Warehouse":'
  b[n + 2] = cached_ref(ref.warehouse_by_guid[order.warehouse], M.warehouse_ref)
  b[n + 3] = "}"
  return concat(b, "", 1, n + 3)
end

function M.cost_json(c, order, ref)
  local f = M.cost_figures(c)
  return concat{
    '{"AppliedDistributionMethod":', str(c.DistributionMethod),
    ',"BCCost":', decp(f.BCCost, 3),
    ',"BCTaxCost":', decp(f.BCTaxCost, 3),
    ',"BCTotalCost":', decp(f.BCTotalCost, 3),
    ',"Cost":', decp(c.Cost, 3),
    ',"CostDate":', date(c.CostDate),
    ',"CostExchangeRate":', decp(c.CostExchangeRate, 6),
    ',"Currency":', str(c.Currency),
    ',"DistributionMethod":', str(c.DistributionMethod),
    ',"OrderExchangeRate":', decp(order.ExchangeRate, 6),
    ',"Receipted":', bool(c.Receipted),
    ',"Reference":', str(c.Reference),
    ',"Supplier":', M.supplier_ref(ref.supplier_by_guid[c.supplier]),
    ',"TaxCode":', str(c.TaxCode),
    ',"TaxCost":', decp(f.TaxCost, 3),
    ',"TaxRate":', decp(c.TaxRate, 6),
    ',"TotalCost":', decp(f.TotalCost, 3),
    "}",
  }
end

-- ---- lifecycle ------------------------------------------------------------
-- ctx: { ref, stock, now (ms), user, new_guid() }.

local function stock_key(product, warehouse) return product .. "|" .. warehouse end
M.stock_key = stock_key

-- Receipt: each line's ReceiptQuantity (its order quantity when none is set)
-- goes into stock at the order's warehouse; pending batch and serial numbers
-- become real ones with their own Guids.
function M.receipt(order, ctx)
  for _, line in ipairs(order.lines) do
    if line.PurchaseUnitReceiptQuantity == nil then
      line.PurchaseUnitReceiptQuantity = line.PurchaseUnitOrderQuantity
    end
    local qty = round4(line.PurchaseUnitReceiptQuantity * line.factor)
    local key = stock_key(line.product, order.warehouse)
    ctx.stock[key] = round4((ctx.stock[key] or 0) + qty)
    for _, pb in ipairs(line.pending_batches) do
      line.batches[#line.batches + 1] = { BatchNumber = pb.BatchNumber, ExpiryDate = pb.ExpiryDate,
                                          Quantity = pb.Quantity, Guid = ctx.new_guid(),
                                          LastModifiedOn = ctx.now }
    end
    for _, ps in ipairs(line.pending_serials) do
      line.serials[#line.serials + 1] = { SerialNumber = ps.SerialNumber, Guid = ctx.new_guid(),
                                          LastModifiedOn = ctx.now }
    end
    line.pending_batches, line.pending_serials = {}, {}
    line.LastModifiedOn, line.LastModifiedBy = ctx.now, ctx.user
  end
  order.ReceivedDate = ctx.now
  order.OrderStatus = "Receipted"
  order.CustomOrderStatus = nil
end

function M.complete(order, ctx)
  order.CompletedDate = ctx.now
  order.OrderStatus = "Complete"
  order.CustomOrderStatus = nil
end

function M.touch(order, ctx)
  order.LastModifiedOn, order.LastModifiedBy = ctx.now, ctx.user
  M.recompute(order, ctx.ref)
end

-- ---- quantities ------------------------------------------------------------
-- A line stores its quantities in its own unit (PurchaseUnitOrderQuantity,
-- PurchaseUnitReceiptQuantity) and the factor to the product's base unit;
-- OrderQuantity and ReceiptQuantity are shown in the base unit.

-- The quantity in the line's unit for one in the base unit, or nil when it
-- is not a quantity of that unit to 4 places (50 EA of a CASE24 line).
function M.to_line_unit(base_qty, factor)
  if factor == 1 then return base_qty end
  local q = round4(base_qty / factor)
  if round_units(q * factor, 10000) ~= round_units(base_qty, 10000) then return nil end
  return q
end

-- A quantity as a person writes it: 48, 2.5.
function M.qty_text(x)
  local s = string.format("%.4f", x):gsub("0+$", ""):gsub("%.$", "")
  return s
end

-- What a receipt needs of batch and serial numbers, in the strict reading
-- (the API does not document its rule): a serialised line one pending serial
-- number per unit received, none repeated; a batch-tracked line pending
-- batches whose quantities (base unit) add up to what it receives. Returns
-- { {field, description}, ... } for every line that falls short.
function M.receipt_problems(order, ref)
  local problems = {}
  for i, line in ipairs(order.lines) do
    local prod = ref.product_by_guid[line.product]
    local qty = round4((line.PurchaseUnitReceiptQuantity or line.PurchaseUnitOrderQuantity) * line.factor)
    local at = string.format("PurchaseOrderLines[%d]", i - 1)
    if prod.IsSerialized then
      local seen, dup = {}, nil
      for _, sn in ipairs(line.pending_serials) do
        if seen[sn.SerialNumber] then dup = dup or sn.SerialNumber end
        seen[sn.SerialNumber] = true
      end
      if #line.pending_serials ~= qty then
        problems[#problems + 1] = { at .. ".PendingSerialNumbers", string.format(
          "Product %s is serialised: receiving %s needs %s serial numbers, one per unit (the line has %d)",
          prod.ProductCode, M.qty_text(qty), M.qty_text(qty), #line.pending_serials) }
      elseif dup then
        problems[#problems + 1] = { at .. ".PendingSerialNumbers",
          string.format("Serial number %s is given twice for product %s", dup, prod.ProductCode) }
      end
    elseif prod.IsBatchTracked then
      local sum = 0
      for _, b in ipairs(line.pending_batches) do sum = sum + round_units(b.Quantity or 0, 10000) end
      if sum ~= round_units(qty, 10000) then
        problems[#problems + 1] = { at .. ".PendingBatchNumbers", string.format(
          "Product %s is batch-tracked: the batch quantities must add up to the %s received"
            .. " (they add up to %s)",
          prod.ProductCode, M.qty_text(qty), M.qty_text(sum / 10000)) }
      end
    end
  end
  return problems
end

-- Statuses after which lines and quantities can no longer change.
M.receipted_statuses = { Receipted = true, Costed = true, Complete = true }

return M
