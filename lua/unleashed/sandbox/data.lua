-- Seeded data: reference data (currencies, taxes, warehouses, suppliers,
-- units, products) and N purchase orders, all derived from the seed alone.
-- A private PRNG is used, not math.random, so that no other code can change
-- what a seed produces.
local orders = require "unleashed.sandbox.orders"

local M = {}

local fmt = string.format
local round2, round4 = orders.round2, orders.round4

-- ---- PRNG -----------------------------------------------------------------
-- 64-bit LCG (Knuth's MMIX constants; Lua 5.4 integers wrap), high bits out.
local Rng = {}
Rng.__index = Rng

function M.rng(seed, stream)
  local self = setmetatable({ s = 0 }, Rng)
  self.s = (seed * 0x9E3779B97F4A7C15 + (stream or 0) * 0xBF58476D1CE4E5B9 + 0x632BE59BD9B4E019)
  for _ = 1, 4 do self:next32() end
  return self
end

function Rng:next32()
  self.s = self.s * 6364136223846793005 + 1442695040888963407
  return (self.s >> 32) & 0xffffffff
end

-- Integer in lo..hi.
function Rng:int(lo, hi)
  return lo + self:next32() % (hi - lo + 1)
end

function Rng:float()
  return self:next32() / 4294967296.0
end

function Rng:pick(list)
  return list[self:int(1, #list)]
end

function Rng:guid()
  local a, b, c, d = self:next32(), self:next32(), self:next32(), self:next32()
  return fmt("%08x-%04x-4%03x-%04x-%04x%08x", a, b >> 16, b & 0xfff, 0x8000 | (c >> 16) & 0x3fff,
             c & 0xffff, d)
end

-- ---- reference data -------------------------------------------------------
local DAY = 86400000
local REF_EPOCH = 1704067200000          -- 2024-01-01T00:00:00Z: reference data's LastModifiedOn

local currencies = {
  -- code, description, units of the currency per 1 NZD (the base currency)
  { "NZD", "New Zealand, Dollars", 1 },
  { "AUD", "Australia, Dollars", 0.9150 },
  { "USD", "United States of America, Dollars", 0.5980 },
  { "GBP", "United Kingdom, Pounds", 0.4720 },
  { "EUR", "Euro Member Countries, Euro", 0.5510 },
}

local taxes = {
  -- code, description, rate, default purchase tax
  { "G.S.T.", "Goods and Services Tax", 0.15, true },
  { "NoTax", "No Tax", 0, false },
  { "ZERO", "Zero Rated", 0, false },
  { "GST9", "Reduced rate 9%", 0.09, false },
  { "IMPORT", "Imported goods 12.5%", 0.125, false },
}

local warehouses = {
  { "MAIN", "Main Warehouse", "Auckland" },
  { "WLG", "Wellington Store", "Wellington" },
  { "CHC", "Christchurch Depot", "Christchurch" },
  { "RETURNS", "Returns & Repairs", "Auckland" },
}

-- Suppliers every seed has: the seed page's own example, and codes that
-- need percent-encoding or are not ASCII (clients must sign them decoded).
local fixed_suppliers = {
  -- code, name, currency, tax code or nil
  { "ACME", "Acme Corporation", "NZD", nil },
  { "SMITH & SONS", "Smith & Sons Ltd", "GBP", "NoTax" },
  { "A+B TRADING", "A+B Trading Co", "AUD", nil },
  { "NO#1 PARTS", "Number One Parts", "USD", "ZERO" },
  { "MÜLLER", "Müller Werkzeuge GmbH", "EUR", "IMPORT" },
  { "INFO@SUPPLY", "Info@Supply Wholesale", "NZD", nil },
  { "BLUE SKY", "Blue Sky Imports", "USD", nil },
  { "50% OFF", "Fifty Percent Outlet", "NZD", "GST9" },
  { "FREIGHT", "Fast Freight Logistics", "NZD", nil },
  { "ACME2", "Acme Second Division", "NZD", nil },
}

local name_parts_a = { "Pacific", "Southern", "Kiwi", "Alpine", "Harbour", "Summit", "Coastal", "Totara",
                       "Kauri", "Pioneer", "Atlas", "Orbit" }
local name_parts_b = { "Supplies", "Traders", "Industries", "Wholesale", "Components", "Hardware",
                       "Distributors", "Imports", "Manufacturing", "Goods" }

local units = { "EA", "KG", "L", "M", "BOX", "PACK", "CARTON", "PALLET", "ROLL", "PAIR" }
-- Purchase units (name, base unit, base units per purchase unit).
local purchase_units = {
  { "BOX12", "EA", 12 }, { "CASE24", "EA", 24 }, { "BAG25KG", "KG", 25 },
  { "DRUM200L", "L", 200 }, { "ROLL50M", "M", 50 }, { "PALLET100", "EA", 100 },
}

local product_nouns = { "Widget", "Bolt", "Bracket", "Hinge", "Valve", "Bearing", "Gasket", "Sprocket",
                        "Cable", "Panel", "Filter", "Pump", "Sensor", "Fitting", "Spring", "Washer" }
local product_adjs = { "Steel", "Brass", "Plastic", "Heavy Duty", "Mini", "Galvanised", "Coated", "Precision",
                       "Industrial", "Compact" }
local groups = { "Hardware", "Fasteners", "Plumbing", "Electrical", "Consumables", "Spare Parts" }

local function index(list, field, lower)
  local t = {}
  for _, item in ipairs(list) do
    local k = item[field]
    t[lower and k:lower() or k] = item
  end
  return t
end

function M.reference(seed, n_orders)
  local rng = M.rng(seed, 1)
  local ref = {}

  ref.currencies = {}
  for i, c in ipairs(currencies) do
    ref.currencies[i] = { Guid = rng:guid(), CurrencyCode = c[1], Description = c[2],
                          ExchangeRate = c[3], LastModifiedOn = REF_EPOCH }
  end
  ref.currency_by_guid = index(ref.currencies, "Guid")
  ref.currency_by_code = index(ref.currencies, "CurrencyCode", true)
  ref.base_currency = ref.currencies[1]

  ref.taxes = {}
  for i, t in ipairs(taxes) do
    ref.taxes[i] = { Guid = rng:guid(), TaxCode = t[1], Description = t[2], TaxRate = t[3],
                     DefaultPurchaseTax = t[4], CanApplyToExpenses = true, CanApplyToRevenue = true,
                     Obsolete = false, LastModifiedOn = REF_EPOCH }
    if t[4] then ref.default_tax = ref.taxes[i] end
  end
  ref.tax_by_code = index(ref.taxes, "TaxCode", true)
  ref.tax_by_guid = index(ref.taxes, "Guid")

  ref.warehouses = {}
  for i, w in ipairs(warehouses) do
    ref.warehouses[i] = { Guid = rng:guid(), WarehouseCode = w[1], WarehouseName = w[2],
                          City = w[3], Country = "New Zealand", IsDefault = i == 1, Obsolete = false,
                          LastModifiedOn = REF_EPOCH }
  end
  ref.default_warehouse = ref.warehouses[1]
  ref.warehouse_by_guid = index(ref.warehouses, "Guid")
  ref.warehouse_by_code = index(ref.warehouses, "WarehouseCode", true)

  -- Suppliers: the fixed ones, then generated ones (more for bigger seeds).
  ref.suppliers = {}
  local function add_supplier(code, name, ccy, tax)
    local cur = ref.currency_by_code[ccy:lower()]
    ref.suppliers[#ref.suppliers + 1] = {
      Guid = rng:guid(), SupplierCode = code, SupplierName = name,
      Currency = cur, TaxCode = tax, TaxRate = tax and ref.tax_by_code[tax:lower()].TaxRate,
      EORINumber = (ccy == "GBP" or ccy == "EUR") and fmt("GB%09d", rng:int(1, 999999999)) or nil,
      Email = "orders@" .. code:lower():gsub("[^%w]", "") .. ".example",
      Obsolete = false, LastModifiedOn = REF_EPOCH,
    }
  end
  for _, s in ipairs(fixed_suppliers) do add_supplier(s[1], s[2], s[3], s[4]) end
  local n_generated = 14 + math.min(186, (n_orders or 0) // 200)
  for i = 1, n_generated do
    local ccy = rng:float() < 0.6 and "NZD" or rng:pick(currencies)[1]
    local tax = rng:float() < 0.15 and rng:pick(taxes)[1] or nil
    add_supplier(fmt("SUP%04d", i), rng:pick(name_parts_a) .. " " .. rng:pick(name_parts_b), ccy, tax)
  end
  ref.supplier_by_guid = index(ref.suppliers, "Guid")
  ref.supplier_by_code = index(ref.suppliers, "SupplierCode", true)

  -- Units of measure: the company's list; base units and purchase units.
  ref.units = {}
  for _, name in ipairs(units) do ref.units[#ref.units + 1] = { Guid = rng:guid(), Name = name } end
  for _, pu in ipairs(purchase_units) do ref.units[#ref.units + 1] = { Guid = rng:guid(), Name = pu[1] } end
  ref.unit_by_guid = index(ref.units, "Guid")
  ref.unit_by_name = index(ref.units, "Name", true)

  ref.groups = {}
  for i, g in ipairs(groups) do ref.groups[i] = { Guid = rng:guid(), GroupName = g } end

  ref.products = {}
  local n_products = 50 + math.min(450, (n_orders or 0) // 100)
  for i = 1, n_products do
    local base = ref.unit_by_name[(rng:float() < 0.6 and "ea" or rng:pick(units):lower())]
    local serialized = base.Name == "EA" and i % 9 == 0
    local batch = not serialized and i % 7 == 0
    local noun = rng:pick(product_nouns)
    local code = fmt("%s-%04d", noun:upper(), i)
    if i == 3 then code = "BOLT M8 #10" end      -- a product code that needs encoding
    local pus = { { unit = base.Guid, factor = 1 } }
    for _, pu in ipairs(purchase_units) do
      if pu[2] == base.Name and not serialized and rng:float() < 0.5 then
        pus[#pus + 1] = { unit = ref.unit_by_name[pu[1]:lower()].Guid, factor = pu[3] }
      end
    end
    local ptax = nil
    if rng:float() < 0.1 then ptax = rng:pick{ "NoTax", "ZERO", "GST9" } end
    local supplier = ref.suppliers[rng:int(1, #ref.suppliers)]
    ref.products[i] = {
      Guid = rng:guid(), ProductCode = code,
      ProductDescription = rng:pick(product_adjs) .. " " .. noun .. fmt(" %d", i),
      UnitOfMeasure = base, purchase_units = pus,
      IsBatchTracked = batch, IsSerialized = serialized,
      DefaultPurchasePrice = round4(rng:int(50, 50000) / 100),
      PurchaseTaxCode = ptax, PurchaseTaxRate = ptax and ref.tax_by_code[ptax:lower()].TaxRate,
      ProductGroup = rng:pick(ref.groups),
      SupplierProductCode = fmt("%s-%04d", supplier.SupplierCode:sub(1, 4):gsub("[^%w]", "X"), i),
      SupplierProductDescription = supplier.SupplierName .. " item " .. i,
      Weight = round4(rng:int(1, 5000) / 1000), Volume = round4(rng:int(1, 2000) / 10000),
      Obsolete = false, LastModifiedOn = REF_EPOCH,
    }
  end
  ref.product_by_guid = index(ref.products, "Guid")
  ref.product_by_code = index(ref.products, "ProductCode", true)
  return ref
end

-- ---- seeded orders --------------------------------------------------------
local ORDERS_FROM = 1704067200000          -- 2024-01-01
local ORDERS_TO = 1790726400000            -- 2026-10-01
local users = { "buyer@sandbox.local", "jane.doe@sandbox.local", "sandbox@unleashed.local" }
local custom_statuses = { "Awaiting QA", "Confirmed", "Backordered" }
local cities = { { "Auckland", "Auckland", "1010" }, { "Wellington", "Wellington", "6011" },
                 { "Christchurch", "Canterbury", "8011" } }

local function pick_status(r)
  if r < 0.15 then return "Parked" end
  if r < 0.45 then return "Placed" end
  if r < 0.58 then return "Receipted" end
  if r < 0.68 then return "Costed" end
  if r < 0.94 then return "Complete" end
  return "Deleted"
end

-- Fills state.orders with n orders; state: { orders, stock, ref, rng }.
-- Order numbers are PO-00000001.. in creation order; returns the last number.
function M.seed_orders(state, n)
  local ref, stock = state.ref, state.stock
  local rng = M.rng(state.seed, 2)
  local span = ORDERS_TO - ORDERS_FROM
  for i = 1, n do
    local sup = ref.suppliers[rng:int(1, #ref.suppliers)]
    if i % 10 == 1 then sup = ref.suppliers[1] end          -- ACME has plenty of orders
    local wh = ref.warehouses[rng:int(1, #ref.warehouses)]
    local status = pick_status(rng:float())
    local day = ORDERS_FROM + (span * (i - 1) // n) // DAY * DAY
    local created = day + rng:int(8, 17) * 3600000 + rng:int(0, 3599) * 1000
    local user = rng:pick(users)
    local city = rng:pick(cities)
    local order = {
      Guid = rng:guid(), OrderNumber = fmt("PO-%08d", i), OrderStatus = status,
      supplier = sup.Guid, warehouse = wh.Guid, currency = sup.Currency.Guid,
      ExchangeRate = sup.Currency.ExchangeRate, DiscountRate = 0,
      OrderDate = day, DeliveryDate = day + rng:int(7, 40) * DAY,
      Comments = rng:float() < 0.3 and ("Seeded order " .. i) or nil,
      DeliveryName = wh.WarehouseName, DeliveryCity = city[1], DeliveryRegion = city[2],
      DeliveryPostCode = city[3], DeliveryCountry = "New Zealand",
      DeliveryStreetAddress = fmt("%d Queen Street", rng:int(1, 400)),
      SupplierRef = rng:float() < 0.5 and fmt("REF-%05d", rng:int(1, 99999)) or nil,
      SupplierEORI = sup.EORINumber,
      Printed = rng:float() < 0.3,
      CreatedBy = user, CreatedOn = created, LastModifiedBy = user, LastModifiedOn = created,
      lines = {}, costs = {},
    }
    if status == "Placed" and rng:float() < 0.2 then order.CustomOrderStatus = rng:pick(custom_statuses) end
    local n_lines = rng:int(1, 5)
    for ln = 1, n_lines do
      local prod = ref.products[rng:int(1, #ref.products)]
      local pu = prod.purchase_units[rng:int(1, #prod.purchase_units)]
      local q = prod.IsSerialized and rng:int(1, 4)
        or round4(rng:int(1, 400) / (rng:float() < 0.8 and 1 or 4))
      -- q was drawn in base units: a buyer orders a few pallets, not 400 of them
      if pu.factor > 1 then q = math.max(1, math.ceil(q / pu.factor)) end
      local line = {
        Guid = rng:guid(), LineNumber = ln, product = prod.Guid, unit = pu.unit, factor = pu.factor,
        PurchaseUnitOrderQuantity = q,
        UnitPrice = round4(prod.DefaultPurchasePrice * pu.factor * sup.Currency.ExchangeRate),
        DiscountRate = rng:float() < 0.2 and rng:pick{ 0.05, 0.1, 0.125, 0.2 } or 0,
        DeliveryDate = order.DeliveryDate,
        LastModifiedBy = user, LastModifiedOn = created,
        pending_batches = {}, pending_serials = {}, batches = {}, serials = {},
      }
      local base_q = round4(q * pu.factor)
      if prod.IsBatchTracked then
        line.pending_batches[1] = { BatchNumber = fmt("B%06d-%d", i, ln), Quantity = base_q,
                                    ExpiryDate = day + 365 * DAY, CreatedOn = created }
      elseif prod.IsSerialized then
        for k = 1, q do
          line.pending_serials[k] = { SerialNumber = fmt("SN%07d%d%02d", i, ln, k), CreatedOn = created }
        end
      end
      order.lines[ln] = line
    end
    if orders.receipted_statuses[status] then
      local received = created + rng:int(3, 30) * DAY
      local ctx = { ref = ref, stock = stock, now = received, user = user,
                    new_guid = function() return rng:guid() end }
      -- Some lines arrive short.
      for _, line in ipairs(order.lines) do
        local prod = ref.product_by_guid[line.product]
        if not prod.IsSerialized and rng:float() < 0.1 then
          line.PurchaseUnitReceiptQuantity = round4(line.PurchaseUnitOrderQuantity * 0.5)
        end
      end
      orders.receipt(order, ctx)
      order.OrderStatus = status
      local freight = ref.supplier_by_code["freight"]
      order.costs[1] = { Reference = "Freight", DistributionMethod = "Cost", supplier = freight.Guid,
                         Currency = "NZD", CostExchangeRate = 1, Cost = round2(rng:int(2000, 30000) / 100),
                         TaxCode = "G.S.T.", TaxRate = 0.15, CostDate = received, Receipted = true }
      if sup.Currency ~= ref.base_currency then
        order.costs[2] = { Reference = "Duty", DistributionMethod = "Quantity", supplier = freight.Guid,
                           Currency = "NZD", CostExchangeRate = 1, Cost = round2(rng:int(500, 9000) / 100),
                           TaxCode = "NoTax", TaxRate = 0, CostDate = received, Receipted = true }
      end
      order.LastModifiedOn = received
      if status == "Complete" then
        order.CompletedDate = received + rng:int(0, 10) * DAY
        order.LastModifiedOn = order.CompletedDate
      end
    elseif status == "Deleted" then
      order.LastModifiedOn = created + rng:int(1, 20) * DAY
    end
    orders.recompute(order, ref)
    state.orders[i] = order
  end
  return n
end

return M
