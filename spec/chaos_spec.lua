-- Faults survived: 300 purchase orders created with lines, receipted and
-- completed through the library against a sandbox that answers 10% of calls
-- with 5xx, cuts 5% of responses mid-body after acting on them, and throttles
-- bursts with 429 + Retry-After. Afterwards the sandbox, read without the
-- library, holds exactly those 300 new orders, each Complete with exactly its
-- lines: none lost, none duplicated.
local sandbox = require "support.sandbox"
local reliable = require "support.reliable"
local unleashed = require "unleashed"
local socket = require "socket"

local ORDERS = 300

describe("chaos: faults, drops and throttling", function()
  local sb, client, events, throttle

  local function new_client(s, on_request)
    return unleashed.new{ api_id = s.api_id, api_key = s.api_key, base_url = s.base_url,
                          client_type = "spec/Chaos", timeout = 10,
                          max_retries = 60, retry_base = 0.002, retry_cap = 2, on_request = on_request }
  end

  local function order_of(i, lines)
    return { Supplier = { SupplierCode = "ACME" }, OrderStatus = "Placed", SupplierRef = "chaos " .. i,
             PurchaseOrderLines = lines }
  end

  -- Calls per second this machine makes through the same steps, without
  -- faults. The throttle lets an eighth of that through per quarter
  -- second, so 429 bursts come four times a second however fast the run is
  -- (plain, sanitized or under valgrind), and still come when the machine
  -- turns out several times slower during the run than during the short
  -- probe (the run also sleeps between retries, which the probe does not).
  local function calls_per_second()
    local probe = sandbox.start{ seed = 1, admin = true }
    local c = new_client(probe)
    local line = { Product = { ProductCode = "BOLT M8 #10" }, OrderQuantity = 1, UnitPrice = 1 }
    c.purchase_orders:create(order_of(0, { line }))   -- reference data looked up once
    probe:reset()
    local t0 = socket.gettime()
    for i = 1, 8 do c.purchase_orders:create(order_of(i, { line })):receipt():complete() end
    local rate = probe:stats().Total / (socket.gettime() - t0)
    c:close()
    probe:stop()
    return rate
  end

  setup(function()
    local rate = calls_per_second()
    throttle = ("%d/0.25"):format(math.max(1, math.floor(rate * 0.25 / 8)))
    sb = sandbox.start{ seed = 5, admin = true, fail_rate = 0.1, drop_rate = 0.05, throttle = throttle }
    events = {}
    client = new_client(sb, function(ev) events[#events + 1] = ev end)
  end)

  teardown(function()
    if client then client:close() end
    if sb then sb:stop() end
  end)

  it("creates, receipts and completes 300 orders; the sandbox holds exactly them", function()
    -- Products a receipt needs nothing more for (no batches or serials).
    local products = {}
    for _, p in ipairs(reliable.get(sb, "/Products", { { "pageSize", 1000 } }).Items) do
      if not p.IsSerialized and not p.IsBatchTracked then products[#products + 1] = p.ProductCode end
    end
    assert.is_true(#products >= 5)
    local before = {}
    for _, po in ipairs(reliable.all_orders(sb)) do before[po.Guid:lower()] = true end
    sb:reset()

    local wanted = {}   -- guid -> the lines asked for
    local count = 0
    for i = 1, ORDERS do
      local lines = {}
      for j = 1, 1 + i % 3 do
        lines[j] = { Product = { ProductCode = products[1 + (i * 7 + j) % #products] },
                     OrderQuantity = j + i % 5, UnitPrice = 1 + (i % 13) / 4 }
      end
      local po = client.purchase_orders:create(order_of(i, lines))
      assert.equal("Placed", po.OrderStatus)
      po:receipt()
      assert.equal("Receipted", po.OrderStatus)
      po:complete()
      assert.equal("Complete", po.OrderStatus)
      assert.is_nil(wanted[po.Guid:lower()], "the library handed out one Guid twice")
      wanted[po.Guid:lower()] = { ref = "chaos " .. i, lines = lines }
      count = count + 1
    end

    local stats = sb:stats()
    local retries, faults = 0, { server = 0, network = 0, throttled = 0 }
    for _, ev in ipairs(events) do
      if ev.attempt > 1 then retries = retries + 1 end
      if ev.status == 429 then faults.throttled = faults.throttled + 1
      elseif ev.status and ev.status >= 500 then faults.server = faults.server + 1
      elseif ev.kind then faults.network = faults.network + 1 end
    end
    print(("\nchaos: %d orders created, receipted and completed; %d retries (%d attempts, %d calls the " ..
           "sandbox counted: %d 5xx, %d dropped, %d throttled at %s)"):format(count, retries, #events,
           stats.Total, faults.server, faults.network, faults.throttled, throttle))
    -- Every kind of fault struck, and the run retried through them.
    assert.is_true(faults.server > 0 and faults.network > 0 and faults.throttled > 0)
    assert.is_true(retries > 0)
    assert.equal(#events, stats.Total)

    -- The sandbox's view, read without the library.
    local new, found = {}, 0
    for _, po in ipairs(reliable.all_orders(sb)) do
      local g = po.Guid:lower()
      if not before[g] then
        assert.is_nil(new[g], "an order listed twice: " .. g)
        new[g] = po
        found = found + 1
      end
    end
    print(("chaos: %d new orders found in the sandbox"):format(found))
    assert.equal(ORDERS, found)
    for g, want in pairs(wanted) do
      local po = new[g]
      assert.is_table(po, "order lost: " .. g)
      assert.equal("Complete", po.OrderStatus)
      assert.equal(want.ref, po.SupplierRef)
      local got = po.PurchaseOrderLines
      assert.equal(#want.lines, #got, "order " .. g .. " has the wrong number of lines")
      table.sort(got, function(a, b) return a.LineNumber < b.LineNumber end)
      for j, line in ipairs(want.lines) do
        assert.equal(j, got[j].LineNumber)
        assert.equal(line.Product.ProductCode, got[j].Product.ProductCode)
        assert.equal(line.OrderQuantity, got[j].OrderQuantity)
        assert.equal(line.OrderQuantity, got[j].ReceiptQuantity)
        assert.equal(line.UnitPrice, got[j].UnitPrice)
      end
    end
    -- Each order was created under one Guid (no second create under another).
    local creates = 0
    for key in pairs(stats.Calls) do
      local g = key:match("^POST /PurchaseOrders/(%x+%-[%x%-]+)$")
      if g then
        creates = creates + 1
        assert.is_table(wanted[g:lower()], "a create under a Guid the run did not keep: " .. g)
      end
    end
    assert.equal(ORDERS, creates)
  end)
end)
