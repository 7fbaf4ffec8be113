-- A client written without any of this project's code (spec/independent_client.py:
-- Python's hmac and requests, from the API's documentation) works against the
-- sandbox: list, page, filter with special characters, create, receipt,
-- complete, and a 403 for a wrong signature. And the documentation's own
-- example query answers with the list envelope.
local cjson = require "cjson"
local sandbox = require "support.sandbox"

local PYTHON = "/usr/bin/python3"    -- Debian's, which has requests

describe("an independently written client", function()
  local sb
  setup(function() sb = sandbox.start{ seed = 100, admin = true } end)
  teardown(function() sb:stop() end)

  it("lists, pages, filters, creates, receipts and completes, and gets 403 for a bad signature", function()
    -- Python runs without the sanitizer runtimes a --san run preloads.
    local cmd = ("env -u LD_PRELOAD %s %s %s %s %s 2>&1"):format(PYTHON,
      sandbox.quote(sandbox.root .. "/spec/independent_client.py"), sandbox.quote(sb.base_url),
      sandbox.quote(sb.api_id), sandbox.quote(sb.api_key))
    local p = assert(io.popen(cmd))
    local out = p:read("a")
    local _, how, code = p:close()
    assert.are.same({ "exit", 0 }, { how, code }, out)
    for _, check in ipairs{ "ok list\n", "ok paging\n", "ok documented example\n",
                            "ok filter with special characters", "ok wrong signature gets 403\n",
                            "ok create PO-", "ok receipt\n", "ok complete\n", "all 8 checks passed\n" } do
      assert.truthy(out:find(check, 1, true), ("missing %q in:\n%s"):format(check, out))
    end
    -- the sandbox saw one create, one receipt and one complete
    local counts = { create = 0, receipt = 0, complete = 0 }
    for key, n in pairs(sb:stats().Calls) do
      if key:match("^POST /PurchaseOrders/[%x%-]+$") then counts.create = counts.create + n end
      if key:match("^POST /PurchaseOrders/[%x%-]+/Receipt$") then counts.receipt = counts.receipt + n end
      if key:match("^POST /PurchaseOrders/[%x%-]+/Complete$") then counts.complete = counts.complete + n end
    end
    assert.are.same({ create = 1, receipt = 1, complete = 1 }, counts)
  end)

  it("answers the documentation's example /PurchaseOrders?supplierCode=ACME&startDate=2012-12-31", function()
    local status, headers, body = sb:signed("GET", "/PurchaseOrders",
                                            { { "supplierCode", "ACME" }, { "startDate", "2012-12-31" } })
    assert.are.equal(200, status)
    assert.truthy(headers["content-type"]:find("application/json", 1, true))
    local doc = cjson.decode(body)
    local p = doc.Pagination
    for _, k in ipairs{ "NumberOfItems", "PageSize", "PageNumber", "NumberOfPages" } do
      assert.truthy(type(p[k]) == "number" and p[k] == math.floor(p[k]) and p[k] >= 0, k)
    end
    assert.are.equal(1, p.PageNumber)
    assert.are.equal(200, p.PageSize)
    assert.are.equal(#doc.Items, p.NumberOfItems)
    assert.truthy(#doc.Items > 0)
    for _, o in ipairs(doc.Items) do
      assert.are.equal("ACME", o.Supplier.SupplierCode:sub(1, 4))
      assert.truthy(tonumber(o.OrderDate:match("^/Date%((%d+)")) >= 1356912000000, o.OrderDate)
    end
  end)
end)
