-- Purchase order filters: the seed's twelve names, values converted for the
-- wire (os.time() numbers to UTC ISO text, booleans), unknown names refused.
local filters = require "unleashed.filters"
local dates = require "unleashed.dates"

local function only(problems)
  assert.equal(1, #problems)
  return problems[1]
end

describe("purchase order filters", function()
  it("knows the seed's twelve names, pageSize and the library's exactSupplierCode", function()
    assert.same({ "brief", "completedAfter", "completedBefore", "customOrderStatus", "endDate",
                  "exactSupplierCode", "modifiedSince",
                  "orderNumber", "orderStatus", "pageSize", "serialBatch", "startDate", "supplierCode",
                  "warehouseCode" }, filters.PURCHASE_ORDER_NAMES)
  end)

  it("passes strings and ISO dates as they are", function()
    local q, p = filters.purchase_orders{ supplierCode = "SMITH & SONS", startDate = "2012-12-31",
      modifiedSince = "2026-01-01T10:20:30Z", orderNumber = "PO-00000001", warehouseCode = "MAIN",
      customOrderStatus = "Awaiting QA" }
    assert.same({}, p)
    assert.same({ supplierCode = "SMITH & SONS", startDate = "2012-12-31",
                  modifiedSince = "2026-01-01T10:20:30Z",
                  orderNumber = "PO-00000001", warehouseCode = "MAIN", customOrderStatus = "Awaiting QA" }, q)
  end)

  it("turns os.time() numbers into UTC ISO text", function()
    local t = os.time{ year = 2026, month = 1, day = 2, hour = 0 }   -- local time
    local q = filters.purchase_orders{ modifiedSince = t, startDate = 1767225600,
                                       endDate = 1767225600 + 3600.25 }
    assert.equal(os.date("!%Y-%m-%dT%H:%M:%S", t), q.modifiedSince)
    assert.equal("2026-01-01", q.startDate)                        -- midnight UTC: the date alone
    assert.equal("2026-01-01T01:00:00.250", q.endDate)
  end)

  it("takes booleans (and their text) for brief and serialBatch", function()
    local q = filters.purchase_orders{ brief = false, serialBatch = "true" }
    assert.equal(false, q.brief)
    assert.equal(true, q.serialBatch)
    local _, p = filters.purchase_orders{ serialBatch = 1 }
    assert.same({ field = "serialBatch", message = "must be a boolean" }, only(p))
  end)

  it("checks statuses, also comma-separated", function()
    local q, p = filters.purchase_orders{ orderStatus = "Parked, Placed" }
    assert.same({}, p)
    assert.equal("Parked, Placed", q.orderStatus)
    local _, p2 = filters.purchase_orders{ orderStatus = "Open" }
    assert.equal("orderStatus", only(p2).field)
    assert.matches("one of Parked, Placed, Costed, Receipted, Complete, Deleted", only(p2).message)
  end)

  it("refuses an unknown name, listing the valid ones", function()
    local _, p = filters.purchase_orders{ suppliercode = "ACME" }
    local d = only(p)
    assert.equal("suppliercode", d.field)
    assert.matches("not a purchase order filter %(valid: brief, completedAfter", d.message)
    assert.matches("warehouseCode%)$", d.message)
  end)

  it("refuses bad values with the rule", function()
    local cases = {
      { { startDate = "31/12/2012" }, "startDate", "ISO 8601" },
      { { endDate = "2026-13-01" }, "endDate", "ISO 8601" },
      { { completedAfter = 0 / 0 }, "completedAfter", "finite" },
      { { completedBefore = -5 }, "completedBefore", "between 1970 and 9999" },
      { { modifiedSince = {} }, "modifiedSince", "not a table" },
      { { supplierCode = "" }, "supplierCode", "must not be empty" },
      { { supplierCode = 5 }, "supplierCode", "must be a string" },
      { { warehouseCode = "A\nB" }, "warehouseCode", "control characters" },
      { { pageSize = 0 }, "pageSize", "from 1 to 1000" },
      { { pageSize = 10.5 }, "pageSize", "from 1 to 1000" },
      { { [1] = "x" }, "1", "not a purchase order filter" },
    }
    for _, c in ipairs(cases) do
      local _, p = filters.purchase_orders(c[1])
      local d = only(p)
      assert.equal(c[2], d.field)
      assert.matches(c[3], d.message)
    end
  end)

  it("reports every bad filter, sorted by name", function()
    local _, p = filters.purchase_orders{ zeta = 1, alpha = 2, startDate = "x" }
    assert.same({ "alpha", "startDate", "zeta" }, { p[1].field, p[2].field, p[3].field })
  end)

  it("refuses a filters value that is not a table", function()
    local _, p = filters.purchase_orders("supplierCode=ACME")
    assert.equal("filters", only(p).field)
  end)
end)

describe("dates", function()
  it("accepts the ISO forms the API takes and nothing else", function()
    for _, s in ipairs{ "2012-12-31", "2019-07-09T15:15:15", "2019-07-09T15:15:15.123",
                        "2019-07-09T15:15:15Z",
                        "2024-02-29", "2019-07-09T15:15" } do
      assert.is_true(dates.valid_iso(s), s)
    end
    for _, s in ipairs{ "2023-02-29", "2019-7-9", "2019-07-09T25:00:00", "2019-07-09T15:15:15+12:00",
                        "/Date(1499957160146)/", "", "2019-07-09x" } do
      assert.is_false(dates.valid_iso(s), s)
    end
  end)
end)
