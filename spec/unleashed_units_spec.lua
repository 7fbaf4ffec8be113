-- Lines in purchase units and lines with batch and serial numbers, through
-- the library against the sandbox: a quantity read back and written back
-- unchanged leaves the order as it was; quantities in the line's own unit
-- are taken where they are named so; receipts need serial numbers matching
-- the quantity and batches adding up to it, sent under the seed's JSON names.
local sandbox = require "support.sandbox"
local unleashed = require "unleashed"
local data = require "unleashed.sandbox.data"

local SEED = 100

describe("purchase-unit lines, batches and serials against the sandbox", function()
  local sb, client, events
  -- The sandbox's reference data for this seed (the recorded product shape
  -- has no purchase units: the seed's generator says which product has one).
  local ref = data.reference(SEED, SEED)
  local cased, unit, factor, serial, batch
  for _, p in ipairs(ref.products) do
    if not p.Obsolete and not p.IsSerialized and not p.IsBatchTracked and not cased then
      for _, pu in ipairs(p.purchase_units) do
        if pu.factor > 1 and not cased then
          cased, unit, factor = p, ref.unit_by_guid[pu.unit].Name, pu.factor
        end
      end
    end
    if p.IsSerialized and not p.Obsolete then serial = serial or p end
    if p.IsBatchTracked and not p.Obsolete then batch = batch or p end
  end

  setup(function()
    sb = sandbox.start{ seed = SEED }
    events = {}
    client = unleashed.new{ api_id = sb.api_id, api_key = sb.api_key, base_url = sb.base_url,
                            on_request = function(ev) events[#events + 1] = ev end }
  end)

  teardown(function()
    if client then client:close() end
    if sb then sb:stop() end
  end)

  local function cased_order(qty, status)
    return client.purchase_orders:create{ OrderStatus = status or "Parked",
      Supplier = { SupplierCode = "ACME" },
      PurchaseOrderLines = { { Product = { ProductCode = cased.ProductCode }, UnitOfMeasure = { Name = unit },
                               OrderQuantity = qty, UnitPrice = 30 } } }
  end

  local function snapshot(po)
    local l = po.PurchaseOrderLines[1]
    return { po.SubTotal, po.TaxTotal, po.Total, l.OrderQuantity, l.PurchaseUnitOrderQuantity, l.LineTotal,
             l.LineTax, l.UnitOfMeasure.Name }
  end

  it("reads a purchase-unit line and writes its quantity back unchanged: the order is unchanged", function()
    local po = client.purchase_orders:get(cased_order(2).Guid)
    local l = po.PurchaseOrderLines[1]
    assert.are.equal(unit, l.UnitOfMeasure.Name)
    assert.are.equal(2, l.PurchaseUnitOrderQuantity)           -- in the line's unit
    assert.are.equal(2 * factor, l.OrderQuantity)              -- in the product's base unit
    assert.are.equal(60, l.LineTotal)
    local before = snapshot(po)
    po:update_line(l.Guid, { OrderQuantity = l.OrderQuantity })
    assert.are.same(before, snapshot(po))
    assert.are.same(before, snapshot(client.purchase_orders:get(po.Guid)))
    -- Changing only the price keeps the quantity too.
    po:update_line(l.Guid, { UnitPrice = 31 })
    local after = po.PurchaseOrderLines[1]
    assert.are.equal(2, after.PurchaseUnitOrderQuantity)
    assert.are.equal(62, after.LineTotal)
  end)

  it("takes PurchaseUnitOrderQuantity in the line's unit; refuses a base quantity that misfits", function()
    local po = cased_order(2)
    local l = po.PurchaseOrderLines[1]
    local got = po:update_line(l.Guid, { PurchaseUnitOrderQuantity = 3 })
    assert.are.equal(3, got.PurchaseUnitOrderQuantity)
    assert.are.equal(3 * factor, got.OrderQuantity)
    assert.are.equal(90, got.LineTotal)
    got = po:update_line(l.Guid, { OrderQuantity = factor })   -- one unit of the line, in base units
    assert.are.equal(1, got.PurchaseUnitOrderQuantity)
    got = po:update_line(l.Guid, { ReceiptQuantity = factor })
    assert.are.equal(1, got.PurchaseUnitReceiptQuantity)
    assert.are.equal(factor, got.ReceiptQuantity)
    events = {}
    local ok, e = pcall(po.update_line, po, l.Guid, { OrderQuantity = factor + 1 })
    assert.is_false(ok)
    assert.are.equal("validation", e.kind)
    assert.are.equal("OrderQuantity", e.details[1].field)
    assert.matches("base unit", e.details[1].message)
    assert.matches(unit, e.details[1].message, 1, true)
    ok, e = pcall(po.update_line, po, l.Guid, { OrderQuantity = 2 * factor, PurchaseUnitOrderQuantity = 3 })
    assert.is_false(ok)
    assert.are.equal("PurchaseUnitOrderQuantity", e.details[1].field)
    assert.are.equal(0, #events)
  end)

  it("sends a line read back and copied to a new order in its own unit", function()
    local l = cased_order(2).PurchaseOrderLines[1]
    local copy = { Product = { ProductCode = l.Product.ProductCode }, UnitOfMeasure = l.UnitOfMeasure,
                   OrderQuantity = l.OrderQuantity, PurchaseUnitOrderQuantity = l.PurchaseUnitOrderQuantity,
                   UnitPrice = l.UnitPrice }
    local po = client.purchase_orders:create{ OrderStatus = "Parked", Supplier = { SupplierCode = "ACME" },
                                              PurchaseOrderLines = { copy } }
    assert.are.equal(2, po.PurchaseOrderLines[1].PurchaseUnitOrderQuantity)
    assert.are.equal(2 * factor, po.PurchaseOrderLines[1].OrderQuantity)
    local added = po:add_line(copy)
    assert.are.equal(2, added.PurchaseUnitOrderQuantity)
    assert.are.equal(60, added.LineTotal)
  end)

  it("receipts serial numbers only when they match the quantity; they read back with Guids", function()
    local po = client.purchase_orders:create{ OrderStatus = "Placed", Supplier = { SupplierCode = "ACME" },
      PurchaseOrderLines = { { Product = { ProductCode = serial.ProductCode }, OrderQuantity = 2,
                               UnitPrice = 40,
                               PendingSerialNumbers = { { Identifier = "SPEC-SN-1" } } } } }
    local ok, e = pcall(po.receipt, po)
    assert.is_false(ok)
    assert.are.equal("validation", e.kind)
    assert.matches("PendingSerialNumbers", e.details[1].field)
    assert.matches("needs 2 serial numbers", e.details[1].message)
    local l = po.PurchaseOrderLines[1]
    -- As they read back (SerialNumber) or as the seed names them (Identifier): sent as Identifier.
    po:update_line(l.Guid, { PendingSerialNumbers = { { SerialNumber = "SPEC-SN-1" },
                                                      { Identifier = "SPEC-SN-2" } } })
    local pending = client.purchase_orders:get(po.Guid, { serialBatch = true }).PurchaseOrderLines[1]
    assert.are.equal(2, #pending.PendingSerialNumbers)
    assert.are.equal("SPEC-SN-1", pending.PendingSerialNumbers[1].SerialNumber)
    assert.is_nil(pending.PendingSerialNumbers[1].Guid)        -- no Guid before the receipt (the seed)
    po:receipt()
    assert.are.equal("Receipted", po.OrderStatus)
    local got = client.purchase_orders:get(po.Guid, { serialBatch = true }).PurchaseOrderLines[1]
    assert.are.equal(0, #got.PendingSerialNumbers)
    assert.are.equal("SPEC-SN-2", got.SerialNumbers[2].SerialNumber)
    assert.is_string(got.SerialNumbers[2].Guid)
  end)

  it("receipts batches only when their quantities add up to what is received", function()
    local po = client.purchase_orders:create{ OrderStatus = "Placed", Supplier = { SupplierCode = "ACME" },
      PurchaseOrderLines = { { Product = { ProductCode = batch.ProductCode }, OrderQuantity = 5,
                               UnitPrice = 4,
        PendingBatchNumbers = { { Number = "SPEC-LOT-1", Quantity = 3, ExpiryDate = "2027-06-30" } } } } }
    local ok, e = pcall(po.receipt, po)
    assert.is_false(ok)
    assert.matches("PendingBatchNumbers", e.details[1].field)
    assert.matches("add up to the 5 received", e.details[1].message)
    local l = po.PurchaseOrderLines[1]
    po:update_line(l.Guid, { PendingBatchNumbers = {
      { Number = "SPEC-LOT-1", Quantity = 3, ExpiryDate = "2027-06-30" },
      { BatchNumber = "SPEC-LOT-2", Quantity = 2 } } })
    po:receipt()
    local got = client.purchase_orders:get(po.Guid, { serialBatch = true }).PurchaseOrderLines[1]
    assert.are.equal(2, #got.BatchNumbers)
    assert.are.equal("SPEC-LOT-1", got.BatchNumbers[1].BatchNumber)
    assert.are.equal(3, got.BatchNumbers[1].Quantity)
    assert.are.equal("2027-06-30T00:00:00.000Z", got.BatchNumbers[1].ExpiryDate)
    assert.is_string(got.BatchNumbers[2].Guid)
  end)
end)
