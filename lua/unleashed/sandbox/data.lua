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
-- Shapes and values follow the recorded answers of the live API (see
-- ../shared/recorded/INDEX.md and the reference's list of the sandbox's
-- choices): products carry their purchase tax as XeroTaxCode, XeroTaxRate
-- and TaxablePurchase (any may be null), taxes have no default flag and the
-- code NONE twice (for expenses and for revenue), suppliers have Taxable and
-- TaxRate, currencies DefaultBuyRate and DefaultSellRate.
--
-- Stream 1 of the PRNG makes what earlier versions made (Guids, codes,
-- prices, units), draw for draw, so that a seed keeps its codes and orders;
-- every field added since comes from stream 4.
local DAY = 86400000
local REF_EPOCH = 1704067200000          -- 2024-01-01T00:00:00Z: reference data's LastModifiedOn

local currencies = {
  -- code, description, units of the currency per 1 NZD (the base currency): the buy rate
  { "NZD", "New Zealand, Dollars", 1 },
  { "AUD", "Australia, Dollars", 0.9150 },
  { "USD", "United States of America, Dollars", 0.5980 },
  { "GBP", "United Kingdom, Pounds", 0.4720 },
  { "EUR", "Euro Member Countries, Euro", 0.5510 },
}

-- The five taxes whose Guids stream 1 draws, and which generated suppliers
-- draw from (kept, so that the draws stay the same).
local drawn_taxes = { "G.S.T.", "NoTax", "ZERO", "GST9", "IMPORT" }

-- Every tax of the account, in the order /Taxes lists them: code,
-- description, rate, can apply to expenses, to revenue, obsolete. NONE is
-- there twice, as in the API's documented example; an obsolete G.S.T. at the
-- old rate comes before the current one, so that a client which does not
-- skip obsolete taxes prices lines at 12.5%.
local tax_list = {
  { "G.S.T.", "Goods and Services Tax at 12.5% (before October 2010)", 0.125, true, true, true },
  { "G.S.T.", "Goods and Services Tax", 0.15, true, true, false },
  { "NONE", "No Tax", 0, true, false, false },
  { "NONE", "No Tax", 0, false, true, false },
  { "NoTax", "No Tax", 0, true, true, false },
  { "ZERO", "Zero Rated", 0, true, true, false },
  { "GST9", "Reduced rate 9%", 0.09, true, true, false },
  { "IMPORT", "Imported goods 12.5%", 0.125, true, false, false },
  { "EXEMPTOUTPUT", "Exempt sales", 0, false, true, false },
}
-- The account's default purchase tax: no field of the API shows it, but the
-- server applies it last in the tax hierarchy.
M.DEFAULT_PURCHASE_TAX = "G.S.T."

local warehouses = {
  -- code, name, street, suburb, city, region, post code; the last one is obsolete
  { "MAIN", "Main Warehouse", "12 Example Road", "Penrose", "Auckland", "Auckland", "1061" },
  { "WLG", "Wellington Store", "3 Example Quay", nil, "Wellington", "Wellington", "6011" },
  { "CHC", "Christchurch Depot", "40 Example Street", "Sockburn", "Christchurch", "Canterbury", "8042" },
  { "RETURNS", "Returns & Repairs", nil, nil, "Auckland", nil, nil },
}
local obsolete_warehouse = { "OLDSTORE", "Old Store (closed)", "1/2 Example Lane", nil, "Hamilton", "Waikato",
                             "3204" }

-- Suppliers every seed has: the seed page's own example, and codes that
-- need percent-encoding or are not ASCII (clients must sign them decoded).
local fixed_suppliers = {
  -- code, name, currency, Taxable, TaxRate
  { "ACME", "Acme Corporation", "NZD", true, 0.15 },
  { "SMITH & SONS", "Smith & Sons Ltd", "GBP", false, nil },
  { "A+B TRADING", "A+B Trading Co", "AUD", true, nil },          -- taxable, no rate of its own
  { "NO#1 PARTS", "Number One Parts", "USD", true, 0 },
  { "MÜLLER", "Müller Werkzeuge GmbH", "EUR", true, 0.125 },
  { "INFO@SUPPLY", "Info@Supply Wholesale", "NZD", nil, nil },   -- neither set (nulls, as recorded)
  { "BLUE SKY", "Blue Sky Imports", "USD", true, 0.15 },
  { "50% OFF", "Fifty Percent Outlet", "NZD", true, 0.09 },
  { "FREIGHT", "Fast Freight Logistics", "NZD", true, 0.15 },
  { "ACME2", "Acme Second Division", "NZD", true, 0.15 },
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
local tier_names = { "Retail", "Wholesale", "Distributor" }

local function index(list, field, lower)
  local t = {}
  for _, item in ipairs(list) do
    local k = item[field]
    t[lower and k:lower() or k] = item
  end
  return t
end

local function round6(x) return orders.round_units(x, 1000000) / 1000000 end

-- The first tax that can apply to expenses and is not obsolete, by code or
-- by rate: what a purchase means by a code that the list has twice.
local function expense_index(taxes)
  local by_code, by_rate = {}, {}
  for _, t in ipairs(taxes) do
    if t.CanApplyToExpenses and not t.Obsolete then
      local k = t.TaxCode:lower()
      by_code[k] = by_code[k] or t
      local r = fmt("%.6f", t.TaxRate)
      by_rate[r] = by_rate[r] or t
    end
  end
  return by_code, by_rate
end

function M.reference(seed, n_orders)
  local rng = M.rng(seed, 1)
  local extra = M.rng(seed, 4)
  local ref = {}

  ref.currencies = {}
  for i, c in ipairs(currencies) do
    ref.currencies[i] = { Guid = rng:guid(), CurrencyCode = c[1], Description = c[2],
                          ExchangeRate = c[3], DefaultBuyRate = c[3],
                          DefaultSellRate = i == 1 and 1 or round6(c[3] * 0.985),
                          LastModifiedOn = REF_EPOCH + extra:int(0, 700) * DAY }
  end
  ref.currency_by_guid = index(ref.currencies, "Guid")
  ref.currency_by_code = index(ref.currencies, "CurrencyCode", true)
  ref.base_currency = ref.currencies[1]

  local drawn_guid = {}
  for _, code in ipairs(drawn_taxes) do drawn_guid[code] = rng:guid() end
  ref.taxes = {}
  for i, t in ipairs(tax_list) do
    local g = not t[6] and drawn_guid[t[1]]
    if g then drawn_guid[t[1]] = nil else g = extra:guid() end
    ref.taxes[i] = { Guid = g, TaxCode = t[1], Description = t[2], TaxRate = t[3],
                     CanApplyToExpenses = t[4], CanApplyToRevenue = t[5], Obsolete = t[6],
                     LastModifiedOn = REF_EPOCH + (t[6] and 0 or extra:int(0, 700) * DAY) }
  end
  ref.tax_by_guid = index(ref.taxes, "Guid")
  ref.expense_tax_by_code, ref.expense_tax_by_rate = expense_index(ref.taxes)
  ref.default_tax = ref.expense_tax_by_code[M.DEFAULT_PURCHASE_TAX:lower()]
  ref.no_tax = ref.expense_tax_by_code["none"]

  ref.warehouses = {}
  local function add_warehouse(w, g, obsolete, modified)
    ref.warehouses[#ref.warehouses + 1] = {
      Guid = g, WarehouseCode = w[1], WarehouseName = w[2], IsDefault = #ref.warehouses == 0,
      AddressLine1 = w[3], Suburb = w[4], City = w[5], Region = w[6], PostCode = w[7],
      Country = w[5] and "New Zealand" or nil, ContactName = "", Obsolete = obsolete,
      LastModifiedOn = modified,
    }
  end
  for i, w in ipairs(warehouses) do
    -- RETURNS has never been edited: LastModifiedOn null, as recorded.
    add_warehouse(w, rng:guid(), false, i < #warehouses and REF_EPOCH + (i - 1) * 30 * DAY or nil)
  end
  ref.default_warehouse = ref.warehouses[1]

  -- Suppliers: the fixed ones, then generated ones (more for bigger seeds).
  ref.suppliers = {}
  local function add_supplier(code, name, ccy, taxable, rate)
    local cur = ref.currency_by_code[ccy:lower()]
    ref.suppliers[#ref.suppliers + 1] = {
      Guid = rng:guid(), SupplierCode = code, SupplierName = name,
      Currency = cur, Taxable = taxable, TaxRate = rate,
      EORINumber = (ccy == "GBP" or ccy == "EUR") and fmt("GB%09d", rng:int(1, 999999999)) or nil,
      Email = "orders@" .. code:lower():gsub("[^%w]", "") .. ".example",
      Obsolete = false, CreatedOn = REF_EPOCH, LastModifiedOn = REF_EPOCH + extra:int(0, 700) * DAY,
    }
  end
  for _, s in ipairs(fixed_suppliers) do add_supplier(s[1], s[2], s[3], s[4], s[5]) end
  local n_generated = 14 + math.min(186, (n_orders or 0) // 200)
  local rate_of = { ["G.S.T."] = 0.15, NoTax = 0, ZERO = 0, GST9 = 0.09, IMPORT = 0.125 }
  for i = 1, n_generated do
    local ccy = rng:float() < 0.6 and "NZD" or rng:pick(currencies)[1]
    local tax = rng:float() < 0.15 and rng:pick(drawn_taxes) or nil
    local taxable, rate = true, 0.15
    if tax == "NoTax" then taxable, rate = false, nil
    elseif tax then rate = rate_of[tax]
    elseif extra:float() < 0.1 then taxable, rate = nil, nil end
    local name = rng:pick(name_parts_a) .. " " .. rng:pick(name_parts_b)
    add_supplier(fmt("SUP%04d", i), name, ccy, taxable, rate)
  end

  -- Units of measure: the company's list; base units and purchase units.
  ref.units = {}
  for _, name in ipairs(units) do ref.units[#ref.units + 1] = { Guid = rng:guid(), Name = name } end
  for _, pu in ipairs(purchase_units) do ref.units[#ref.units + 1] = { Guid = rng:guid(), Name = pu[1] } end
  ref.unit_by_guid = index(ref.units, "Guid")
  ref.unit_by_name = index(ref.units, "Name", true)

  ref.groups = {}
  for i, g in ipairs(groups) do
    ref.groups[i] = { Guid = rng:guid(), GroupName = g, LastModifiedOn = REF_EPOCH }
  end

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
    if rng:float() < 0.1 then rng:pick{ 1, 2, 3 } end   -- a draw earlier versions made
    local supplier = ref.suppliers[rng:int(1, #ref.suppliers)]
    local p = {
      Guid = rng:guid(), ProductCode = code,
      ProductDescription = rng:pick(product_adjs) .. " " .. noun .. fmt(" %d", i),
      UnitOfMeasure = base, purchase_units = pus,
      IsBatchTracked = batch, IsSerialized = serialized,
      DefaultPurchasePrice = round4(rng:int(50, 50000) / 100),
      ProductGroup = rng:pick(ref.groups),
      SupplierProductCode = fmt("%s-%04d", supplier.SupplierCode:sub(1, 4):gsub("[^%w]", "X"), i),
      SupplierProductDescription = supplier.SupplierName .. " item " .. i,
      Weight = round4(rng:int(1, 5000) / 1000), Volume = round4(rng:int(1, 2000) / 10000),
      supplier = supplier,
      Obsolete = false,
    }
    -- Purchase tax, as recorded products carry it: mostly the account's GST;
    -- some taxable with no code or rate, some with every field null (both
    -- fall through to the order, the supplier, the default); some untaxed
    -- (NONE, 0, TaxablePurchase false); some with a code and no rate.
    local r = extra:float()
    if r < 0.60 then p.XeroTaxCode, p.XeroTaxRate, p.TaxablePurchase = "G.S.T.", 0.15, true
    elseif r < 0.70 then p.TaxablePurchase = true
    elseif r < 0.80 then p.TaxablePurchase = nil
    elseif r < 0.88 then p.XeroTaxCode, p.XeroTaxRate, p.TaxablePurchase = "NONE", 0, false
    elseif r < 0.94 then p.XeroTaxCode, p.XeroTaxRate, p.TaxablePurchase = "GST9", 0.09, true
    else p.XeroTaxCode, p.TaxablePurchase = "IMPORT", true end
    r = extra:float()
    if r < 0.8 then p.XeroSalesTaxCode, p.XeroSalesTaxRate, p.TaxableSales = "G.S.T.", 0.15, true
    elseif r < 0.9 then p.XeroSalesTaxCode, p.XeroSalesTaxRate, p.TaxableSales = "EXEMPTOUTPUT", 0, false end
    p.Barcode = extra:float() < 0.7 and fmt("9 400000 %06d", i) or nil
    if extra:float() < 0.8 then
      p.PackSize = 1
      p.Width = extra:int(10, 900) / 1000
      p.Height = extra:int(10, 900) / 1000
      p.Depth = extra:int(1, 500) / 1000
      p.MinStockAlertLevel = extra:int(0, 50) * 10
      p.MaxStockAlertLevel = p.MinStockAlertLevel * 5 + 100
    end
    p.LastCost = extra:float() < 0.8 and round4(p.DefaultPurchasePrice * (0.9 + extra:float() * 0.2)) or nil
    p.AverageLandPrice = p.LastCost and round4(p.LastCost * 1.03) or 0
    p.DefaultSellPrice = round4(p.DefaultPurchasePrice * 1.6)
    p.Notes = extra:float() < 0.3 and p.ProductGroup.GroupName:lower() or nil
    if extra:float() < 0.5 then
      p.ImageUrl = fmt("https://images.sandbox.example/products/%s.jpg", p.Guid)
    end
    p.tiers = {}
    for t = 1, 10 do
      local name = tier_names[t] or ("Sell Price Tier " .. t)
      local value = tier_names[t] and fmt("%.4f", round4(p.DefaultSellPrice * (1 - 0.1 * (t - 1)))) or nil
      p.tiers[t] = { name, value }
    end
    p.CreatedBy = "admin"
    p.CreatedOn = REF_EPOCH - extra:int(1, 900) * DAY
    p.LastModifiedBy = "admin"
    p.LastModifiedOn = REF_EPOCH + extra:int(0, 700) * DAY
    ref.products[i] = p
  end

  -- Obsolete records, after every other (the seeded orders draw from the
  -- active ones): listed only with includeObsolete=true, refused on orders.
  ref.active = { suppliers = #ref.suppliers, products = #ref.products, warehouses = #ref.warehouses }
  add_warehouse(obsolete_warehouse, extra:guid(), true, REF_EPOCH + 400 * DAY)
  local old_sup = { Guid = extra:guid(), SupplierCode = "OLDCO", SupplierName = "Old Company (closed)",
                    Currency = ref.base_currency, Taxable = true, TaxRate = 0.15,
                    Email = "orders@oldco.example", Obsolete = true, CreatedOn = REF_EPOCH - 900 * DAY,
                    LastModifiedOn = REF_EPOCH + 300 * DAY }
  ref.suppliers[#ref.suppliers + 1] = old_sup
  local ea = ref.unit_by_name.ea
  ref.products[#ref.products + 1] = {
    Guid = extra:guid(), ProductCode = "DISCONTINUED-0001", ProductDescription = "Discontinued widget",
    UnitOfMeasure = ea, purchase_units = { { unit = ea.Guid, factor = 1 } },
    IsBatchTracked = false, IsSerialized = false, DefaultPurchasePrice = 9.5, DefaultSellPrice = 15.2,
    AverageLandPrice = 0, ProductGroup = ref.groups[1], supplier = old_sup,
    SupplierProductCode = "OLDC-0001", SupplierProductDescription = "Old Company item 1",
    Weight = 0.25, Volume = 0.001, XeroTaxCode = "G.S.T.", XeroTaxRate = 0.15, TaxablePurchase = true,
    tiers = {}, CreatedBy = "admin", CreatedOn = REF_EPOCH - 900 * DAY, LastModifiedBy = "admin",
    LastModifiedOn = REF_EPOCH + 300 * DAY, Obsolete = true,
  }
  for t = 1, 10 do ref.products[#ref.products].tiers[t] = { "Sell Price Tier " .. t } end

  ref.warehouse_by_guid = index(ref.warehouses, "Guid")
  ref.warehouse_by_code = index(ref.warehouses, "WarehouseCode", true)
  ref.supplier_by_guid = index(ref.suppliers, "Guid")
  ref.supplier_by_code = index(ref.suppliers, "SupplierCode", true)
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
    local sup = ref.suppliers[rng:int(1, ref.active.suppliers)]
    if i % 10 == 1 then sup = ref.suppliers[1] end          -- ACME has plenty of orders
    local wh = ref.warehouses[rng:int(1, ref.active.warehouses)]
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
      local prod = ref.products[rng:int(1, ref.active.products)]
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
          -- The batch holds what arrived (a receipt's batches add up to it).
          if line.pending_batches[1] then
            line.pending_batches[1].Quantity = round4(line.PurchaseUnitReceiptQuantity * line.factor)
          end
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
