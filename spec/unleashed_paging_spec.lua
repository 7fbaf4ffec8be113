-- Listing 10,000 orders: every order once, in order, with several pages in
-- flight; a break cancels the rest; progress reports pages as they complete.
local sandbox = require "support.sandbox"
local unleashed = require "unleashed"

describe("purchase_orders:each over 10,000 orders", function()
  local sb, client
  local expected = {}     -- Guids in listing order, read with the spec helper's own signer

  setup(function()
    sb = sandbox.start{ seed = 10000, admin = true }
    -- A generous timeout: under the GC-stress gate the sandbox takes long
    -- over a page of 1,000 orders, and a retried page would count twice.
    client = unleashed.new{ api_id = sb.api_id, api_key = sb.api_key, base_url = sb.base_url, timeout = 600 }
    local page = 1
    repeat
      local doc = sb:json("GET", "/PurchaseOrders/Page/" .. page, { { "pageSize", "1000" } })
      for _, po in ipairs(doc.Items) do expected[#expected + 1] = po.Guid end
      page = page + 1
    until page > doc.Pagination.NumberOfPages
  end)

  teardown(function()
    if client then client:close() end
    if sb then sb:stop() end
  end)

  it("yields every order exactly once, in order, with 4 pages in flight", function()
    assert.is_true(#expected > 9000)
    sb:reset()
    local progress = {}
    local n, last, seen = 0, "", {}
    for po in client.purchase_orders:each(nil, { concurrency = 4, page_size = 500,
        progress = function(done, total) progress[#progress + 1] = { done, total } end }) do
      n = n + 1
      assert.equal(expected[n], po.Guid)
      assert.is_nil(seen[po.Guid])
      seen[po.Guid] = true
      assert.is_true(po.OrderNumber > last, "order numbers ascend")
      last = po.OrderNumber
    end
    assert.equal(#expected, n)
    local pages = (#expected + 499) // 500
    assert.equal(pages, #progress)
    for i, p in ipairs(progress) do assert.same({ i, pages }, p) end
    local stats = sb:stats()
    assert.equal(pages, stats.Total)       -- one call per page: nothing fetched twice
    assert.equal(1, stats.Calls["GET /PurchaseOrders"])
    assert.equal(1, stats.Calls["GET /PurchaseOrders/Page/" .. pages])
  end)

  it("uses the client's page_size (1000 by default): fewer calls of the quota", function()
    sb:reset()
    local n = 0
    for _ in client.purchase_orders:each() do n = n + 1 end
    assert.equal(#expected, n)
    assert.equal((#expected + 999) // 1000, sb:stats().Total)
  end)

  -- The core pager behind a listing, taken from the iterator's state before
  -- the loop runs, so that the spec can see it closed after the loop.
  local function pager_of(iterator)
    for i = 1, math.huge do
      local name, value = debug.getupvalue(iterator, i)
      if name == nil then break end
      if name == "state" and type(value) == "table" and value.pager then return value.pager end
    end
    error("the iterator holds no pager")
  end

  it("stops early on break, cancelling the pages not yet handed out", function()
    sb:reset()
    local n = 0
    local it, s, c, closer = client.purchase_orders:each(nil, { page_size = 100, concurrency = 4 })
    local pager = pager_of(it)
    assert.not_matches("closed", tostring(pager))
    for _ in it, s, c, closer do
      n = n + 1
      if n == 150 then break end
    end
    assert.equal(150, n)
    -- the break closed the pager: no transfer of it is left
    assert.equal("unleashed.Pager(closed)", tostring(pager))
    local ok, err = pcall(pager.next, pager)
    assert.is_false(ok)
    assert.matches("pager is closed", err)
    assert.is_nil(it())
    -- the client is still fine after the cancelled transfers
    local page = client.purchase_orders:page(3, { pageSize = 100 })
    assert.equal(expected[201], page.items[1].Guid)
  end)

  it("releases the listing when the loop body raises", function()
    sb:reset()
    local pager
    local ok, err = pcall(function()
      local n = 0
      local it, s, c, closer = client.purchase_orders:each(nil, { page_size = 100 })
      pager = pager_of(it)
      for _ in it, s, c, closer do
        n = n + 1
        if n == 120 then error("stop here") end
      end
    end)
    assert.is_false(ok)
    assert.matches("stop here", err)
    assert.equal("unleashed.Pager(closed)", tostring(pager))
    local nok, nerr = pcall(pager.next, pager)
    assert.is_false(nok)
    assert.matches("pager is closed", nerr)
    assert.equal(expected[1], client.purchase_orders:page(1, { pageSize = 1 }).items[1].Guid)
  end)

  it("goes on to the end when a script keeps only the iterator and collects garbage", function()
    -- The fourth value (to-be-closed) is dropped at once: collecting it must
    -- not end the listing.
    local it = client.purchase_orders:each(nil, { page_size = 100, concurrency = 4 })
    local n = 0
    while true do
      local po = it()
      if po == nil then break end
      n = n + 1
      assert.equal(expected[n], po.Guid)
      if n % 40 == 0 then collectgarbage() end
    end
    assert.equal(#expected, n)
  end)

  it("lists with filters across pages", function()
    local n = 0
    for po in client.purchase_orders:each({ supplierCode = "ACME", orderStatus = "Complete" },
        { page_size = 50 }) do
      n = n + 1
      assert.matches("^ACME", po.Supplier.SupplierCode)
      assert.equal("Complete", po.OrderStatus)
    end
    local first = client.purchase_orders:page(1, { supplierCode = "ACME", orderStatus = "Complete",
        pageSize = 50 })
    assert.equal(first.pagination.NumberOfItems, n)
    assert.is_true(first.pagination.NumberOfPages > 1)
  end)

  it("hands page 1 and stops when the listing is empty", function()
    local n = 0
    for _ in client.purchase_orders:each{ orderNumber = "PO-99999999" } do n = n + 1 end
    assert.equal(0, n)
  end)
end)
