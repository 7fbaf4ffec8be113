-- unleashed.Error: how responses map to kinds, what the details hold, and
-- how an error reads when a script dies with it.
local Error = require "unleashed.error"
local unleashed = require "unleashed"

local function res(status, body, extra)
  local r = { status = status, body = body, attempts = 1, headers = {} }
  for k, v in pairs(extra or {}) do r[k] = v end
  return r
end

describe("unleashed.Error mapping", function()
  it("is the table exported as unleashed.Error", function()
    assert.equal(Error, unleashed.Error)
  end)

  local cases = {
    { 400, '{"Description":"Bad thing"}', "validation" },
    { 401, "", "auth" },
    { 403, '{"Description":"Forbidden: signature"}', "auth" },
    { 404, "", "not_found" },
    { 409, "", "conflict" },
    { 408, "", "timeout" },
    { 429, '{"Description":"Too many requests"}', "rate_limited" },
    { 429, '{"Description":"Monthly API call quota exceeded (10 calls)"}', "quota" },
    { 500, "", "server" },
    { 502, "<html>bad gateway</html>", "server" },
    { 503, "", "server" },
    { 418, "", "validation" },
    { 302, "", "protocol" },
  }
  for _, c in ipairs(cases) do
    it(("maps %d %s to %s"):format(c[1], c[2], c[3]), function()
      local e = Error.from_response(res(c[1], c[2]), "GET", "/PurchaseOrders")
      assert.is_true(Error.is(e))
      assert.equal(c[3], e.kind)
      assert.equal(c[1], e.status)
      assert.equal("GET", e.method)
      assert.equal("/PurchaseOrders", e.path)
      assert.is_true(Error.is(e, c[3]))
      assert.is_false(Error.is(e, c[3] == "server" and "auth" or "server"))
    end)
  end

  it("returns nil for every 2xx", function()
    for _, s in ipairs{ 200, 201, 204, 299 } do
      assert.is_nil(Error.from_response(res(s, "{}"), "GET", "/x"))
    end
  end)

  it("maps 400 'already exists' to conflict on a create only", function()
    local body = '{"Items":[{"Field":"Guid","Description":"A purchase order with this Guid already exists"}]}'
    local e = Error.from_response(res(400, body), "POST", "/PurchaseOrders/x", { create = true })
    assert.equal("conflict", e.kind)
    assert.equal("validation", Error.from_response(res(400, body), "POST", "/PurchaseOrders/x").kind)
  end)

  it("takes transport failures from res.error", function()
    for _, kind in ipairs{ "timeout", "network", "tls", "protocol" } do
      local e = Error.from_response({ error = { kind = kind, message = "it failed", code = 7 }, attempts = 4,
                                      sent = true }, "GET", "/Suppliers")
      assert.equal(kind, e.kind)
      assert.is_nil(e.status)
      assert.equal(4, e.attempts)
      assert.equal("it failed", e.message)
    end
  end)

  it("keeps every Field/Description of an Items body, in order", function()
    local body = '{"Items":[{"Field":"Supplier","Description":"Supplier is required"},' ..
                 '{"Field":"PurchaseOrderLines[0].LineTotal","Description":"LineTotal must equal 1.00"},' ..
                 '{"Description":"no field here"}]}'
    local e = Error.from_response(res(400, body), "POST", "/PurchaseOrders/g")
    assert.equal(3, #e.details)
    assert.same({ field = "Supplier", message = "Supplier is required" }, e.details[1])
    -- the server counts lines from 0, the library (like Lua) from 1
    assert.same({ field = "PurchaseOrderLines[1].LineTotal", message = "LineTotal must equal 1.00" },
                e.details[2])
    assert.same({ message = "no field here" }, e.details[3])
    assert.equal("Supplier is required", e.message)
  end)

  it("shifts the server's from-0 indexes to the library's from-1, in fields and descriptions", function()
    local body = '{"Items":[{"Field":"PurchaseOrderLines[0].PendingBatchNumbers[2].Quantity",'
      .. '"Description":"PurchaseOrderLines[0] has a bad batch; see PurchaseOrderLines[10]"}]}'
    local e = Error.from_response(res(400, body), "POST", "/PurchaseOrders/g")
    assert.equal("PurchaseOrderLines[1].PendingBatchNumbers[3].Quantity", e.details[1].field)
    assert.equal("PurchaseOrderLines[1] has a bad batch; see PurchaseOrderLines[11]", e.details[1].message)
  end)

  it("reads Items[].Description, Description and lower-case description, with their ErrorCode", function()
    local bodies = {
      { '{"Items":[{"Field":"Supplier","Description":"Supplier is required","ErrorCode":"E1001"}]}',
        { { field = "Supplier", message = "Supplier is required", code = "E1001" } } },
      { '{"Description":"Purchase order PO-1 is Complete","ErrorCode":42}',
        { { message = "Purchase order PO-1 is Complete", code = "42" } } },
      { '{"description":"lower-case description","field":"OrderStatus"}',
        { { field = "OrderStatus", message = "lower-case description" } } },
      { '{"items":[{"description":"first"},{"description":"second","errorCode":"X9"}]}',
        { { message = "first" }, { message = "second", code = "X9" } } },
      { '{"Items":[{"Field":"Guid","ErrorCode":"E7"}]}',
        { { field = "Guid", message = "error code E7", code = "E7" } } },
    }
    for _, c in ipairs(bodies) do
      local e = Error.from_response(res(400, c[1]), "POST", "/PurchaseOrders/g")
      assert.same(c[2], e.details, c[1])
      assert.equal("validation", e.kind)
    end
  end)

  it("reads a {Description} body", function()
    local e = Error.from_response(res(400, '{"Description":"Purchase order PO-1 is Complete"}'), "PUT", "/p")
    assert.same({ { message = "Purchase order PO-1 is Complete" } }, e.details)
  end)

  it("keeps a short, single-line excerpt of a body that is not JSON", function()
    local e = Error.from_response(res(502, "<html>\n" .. ("x"):rep(1000) .. "</html>"), "GET", "/p")
    assert.equal(1, #e.details)
    assert.is_nil(e.details[1].message:find("\n"))
    assert.is_true(#e.details[1].message <= 210)
  end)

  it("names the status when the body says nothing", function()
    local e = Error.from_response(res(404, ""), "GET", "/PurchaseOrders/abc")
    assert.equal("HTTP 404 not found", e.message)
    assert.equal(1, #e.details)
  end)
end)

describe("unleashed.Error __tostring", function()
  it("reads as kind, status, method, path and every detail", function()
    local body = '{"Items":[{"Field":"Supplier","Description":"Supplier is required"},' ..
                 '{"Field":"OrderStatus","Description":"OrderStatus is required"}]}'
    local e = Error.from_response(res(400, body), "POST", "/PurchaseOrders/1234")
    assert.equal("unleashed: validation error (400) POST /PurchaseOrders/1234: "
                 .. "Supplier: Supplier is required; "
                 .. "OrderStatus: OrderStatus is required", tostring(e))
  end)

  it("says how many attempts were made when there were several", function()
    local e = Error.from_response(res(503, '{"Description":"down"}', { attempts = 4 }), "GET", "/Taxes")
    assert.equal("unleashed: server error (503) GET /Taxes: down (after 4 attempts)", tostring(e))
  end)

  it("reads well for a local validation error with no request", function()
    local e = Error.validation("invalid", { { field = "api_id", message = "is required" } })
    assert.equal("unleashed: validation error: api_id: is required", tostring(e))
  end)

  it("never shows a method without its path, or a path without its method", function()
    local d = { { field = "guid", message = "must be a GUID" } }
    for _, case in ipairs{ { "GET", nil }, { nil, "/PurchaseOrders" }, { "GET", "" }, { "", "/x" } } do
      local text = tostring(Error.validation("invalid", d, case[1], case[2]))
      assert.equal("unleashed: validation error: guid: must be a GUID", text)
    end
    assert.equal("unleashed: validation error GET /PurchaseOrders: guid: must be a GUID",
                 tostring(Error.validation("invalid", d, "GET", "/PurchaseOrders")))
  end)

  it("library calls name their call whenever they refuse input", function()
    local c = unleashed.new{ api_id = "id", api_key = "a2V5", base_url = "http://127.0.0.1:9" }
    local calls = {
      function() return c.purchase_orders:get("{not a guid, nor a number}") end,
      function() return c.purchase_orders:each{ supplier = "ACME" } end,
      function() return c.purchase_orders:page(0) end,
      function() return c:request("GET", "/Suppliers", { bogus = 1 }) end,
    }
    for i, call in ipairs(calls) do
      local ok, e = pcall(call)
      assert.is_false(ok)
      assert.equal("validation", e.kind, tostring(e))
      assert.is_string(e.method, "call " .. i)
      assert.is_string(e.path, "call " .. i)
      assert.matches("^unleashed: validation error " .. e.method .. " /", tostring(e))
    end
    c:close()
  end)

  it("a closed client raises kind closed, naming the call, and sends nothing", function()
    local sent = 0
    local c = unleashed.new{ api_id = "id", api_key = "a2V5", base_url = "http://127.0.0.1:9",
                             on_request = function() sent = sent + 1 end }
    c:close()
    for _, call in ipairs{
      function() return c:request("GET", "/Taxes") end,
      function() return c.purchase_orders:get(unleashed.guid()) end,
      function() return c.purchase_orders:list() end,
      function() return c:list("Suppliers") end,
    } do
      local ok, e = pcall(call)
      assert.is_false(ok)
      assert.is_true(Error.is(e, "closed"), tostring(e))
      assert.is_string(e.method)
      assert.is_string(e.path)
      -- an error object, not a string pointing into the library
      assert.is_nil(tostring(e):find("%.lua:%d+"))
      assert.matches("^unleashed: closed error GET /", tostring(e))
    end
    assert.equal(0, sent)
  end)

  it("is what a script that dies with the error prints", function()
    local script = os.tmpname()
    local f = assert(io.open(script, "w"))
    f:write([[
      local Error = require "unleashed.error"
      error(Error.new("not_found", "No purchase order with Guid x", { status = 404, method = "GET",
        path = "/PurchaseOrders/x", details = { { message = "No purchase order with Guid x" } } }))
    ]])
    f:close()
    local p = io.popen("lua5.4 " .. script .. " 2>&1")
    local out = p:read("a")
    p:close()
    os.remove(script)
    assert.matches("unleashed: not found error %(404%) GET /PurchaseOrders/x: "
                   .. "No purchase order with Guid x", out)
  end)

  it("never holds the key or the signature of the request", function()
    local key = "c2VjcmV0LWtleS0xMjM0NTY3ODkw"
    local sig = unleashed.sign("", key)
    local e = Error.from_response(res(403, '{"Description":"Forbidden: the api-auth-signature header does ' ..
      'not match"}', { headers = { ["api-auth-signature"] = sig } }), "GET", "/PurchaseOrders")
    local text = tostring(e)
    for _, secret in ipairs{ key, sig } do
      assert.is_nil(text:find(secret, 1, true))
      for k, v in pairs(e) do
        assert.is_nil(tostring(k):find(secret, 1, true))
        assert.is_nil(tostring(v):find(secret, 1, true))
      end
    end
  end)
end)

describe("unleashed.Error and the C core agree", function()
  local stub = require "support.stub_control"

  it("calls a 429 quota when its raw body says quota anywhere, as the core's retry rule does", function()
    -- "quota" outside every description: only the raw body has it.
    local body = '{"Code":"MonthlyQUOTAExhausted","Description":"Calls are refused for now"}'
    local e = Error.from_response(res(429, body), "GET", "/Taxes")
    assert.equal("quota", e.kind)
    local throttled = Error.from_response(res(429, '{"Description":"Too many"}'), "GET", "/Taxes")
    assert.equal("rate_limited", throttled.kind)
    -- and against the core: not retried, and reported as quota
    local s = stub.start(([[return { responses = { { status = 429,
      headers = { ["Content-Type"] = "application/json" }, body = %q } } }]]):format(body))
    local client = unleashed.new{ api_id = "id", api_key = "a2V5", base_url = s.url, max_retries = 3,
                                  retry_base = 0.001, retry_cap = 0.01 }
    local ok, err = pcall(client.request, client, "GET", "/Taxes")
    client:close()
    local seen = #s:requests()
    s:stop()
    assert.is_false(ok)
    assert.equal("quota", err.kind)
    assert.equal(1, err.attempts)
    assert.equal(1, seen)
  end)

  it("says the method and path of a network error once", function()
    local port = stub.free_port()
    local client = unleashed.new{ api_id = "id", api_key = "a2V5", base_url = "http://127.0.0.1:" .. port,
                                  max_retries = 0 }
    local ok, err = pcall(client.request, client, "GET", "/Suppliers")
    client:close()
    assert.is_false(ok)
    assert.equal("network", err.kind)
    local text = tostring(err)
    assert.matches("^unleashed: network error GET /Suppliers: ", text)
    local _, count = text:gsub("/Suppliers", "")
    assert.equal(1, count, text)
  end)

  it("gives a rate_limited error the wait the server asked for", function()
    local e = Error.from_response(res(429, '{"Description":"Too many requests"}',
      { headers = { ["retry-after"] = "120" } }), "GET", "/Taxes")
    assert.equal("rate_limited", e.kind)
    assert.equal(120, e.retry_after)
    assert.is_nil(Error.from_response(res(429, '{"Description":"Too many"}'), "GET", "/Taxes").retry_after)
    -- from a server, on a call that does not retry
    local s = stub.start([[return { responses = { { status = 429, headers = { ["Retry-After"] = "90",
      ["Content-Type"] = "application/json" }, body = '{"Description":"Too many requests"}' } } }]])
    local client = unleashed.new{ api_id = "id", api_key = "a2V5", base_url = s.url, retry_cap = 1 }
    local ok, err = pcall(client.request, client, "GET", "/Taxes", { retries = 0 })
    client:close()
    s:stop()
    assert.is_false(ok)
    assert.equal("rate_limited", err.kind)
    assert.equal(90, err.retry_after)
  end)
end)
