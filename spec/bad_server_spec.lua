-- Bad servers: answers no well-behaved API gives (invalid JSON, a truncated
-- body, an HTML error page, an empty 200, a body past max_body, one byte a
-- second, a refused connection) each become an unleashed.Error of the kind
-- a script can act on, and the same client goes on to make its next request.
local stub = require "support.stub_control"
local unleashed = require "unleashed"

local ID, KEY = "bad-server-spec-id", "YmFkLXNlcnZlci1zcGVjLWtleQ=="

-- A purchase order Guid per bad answer: the stub picks the answer by path.
local function guid(n) return ("00000000-0000-4000-8000-%012d"):format(n) end

local GOOD_ORDER = ('{"Guid":"%s","OrderNumber":"PO-00000001","OrderStatus":"Placed",'
  .. '"PurchaseOrderLines":[]}'):format(guid(0))
local HTML = "<!DOCTYPE html>\n<html><head><title>Service Unavailable</title></head>\n"
  .. "<body><h1>Service Unavailable</h1><p>The gateway is down for maintenance.</p></body></html>\n"

-- The stub's script: path -> answer (stub_server.lua's response tables).
local SCRIPT = ([=[
local json = { ["Content-Type"] = "application/json" }
local html = { ["Content-Type"] = "text/html; charset=utf-8" }
local GOOD, HTML = %q, %q
local function po(n) return "/PurchaseOrders/" .. ("00000000-0000-4000-8000-%%012d"):format(n) end
local routes = {
  [po(0)] = { status = 200, headers = json, body = GOOD },
  [po(1)] = { status = 200, headers = json, body = '{"Guid": "x", "OrderStatus": Placed}' },
  [po(2)] = { status = 200, headers = json, body = GOOD:sub(1, 40) },
  [po(3)] = { status = 200, headers = json, body = GOOD, partial = 30 },
  [po(4)] = { status = 200, headers = html, body = HTML },
  [po(5)] = { status = 500, headers = html, body = HTML },
  [po(6)] = { status = 200, headers = json, body = "" },
  [po(7)] = { status = 200, headers = json, body = '{"Items":[' .. ("0,"):rep(3000) .. '0]}' },
  [po(8)] = { status = 200, headers = json, body = '{"Items":[' .. ("0,"):rep(3000) .. '0]}',
              no_length = true },
  [po(9)] = { status = 200, headers = json, body = GOOD, drip = { bytes = 1, every = 1 } },
  [po(10)] = { status = 200, headers = json, body = "null" },
  [po(11)] = { status = 200, headers = json, body = "\0\1\2\255\254garbage" },
  ["/Taxes"] = { status = 200, headers = json, body = '{"Pagination":{"NumberOfPages":1},"Items":[]}' },
}
return { respond = function(req) return routes[req.path] or { status = 404, headers = json,
  body = '{"Description":"no route"}' } end }
]=]):format(GOOD_ORDER, HTML)

describe("a client facing a bad server", function()
  local s, client, events

  setup(function()
    s = stub.start(SCRIPT)
    events = {}
    client = unleashed.new{ api_id = ID, api_key = KEY, base_url = s.url, max_body = 4096,
                            max_retries = 2, retry_base = 0.001, retry_cap = 0.01, timeout = 10,
                            on_request = function(ev) events[#events + 1] = ev end }
  end)

  teardown(function()
    if client then client:close() end
    if s then s:stop() end
  end)

  -- The next request on the same client succeeds.
  local function still_works()
    local po = client.purchase_orders:get(guid(0))
    assert.equal("PO-00000001", po.OrderNumber)
  end

  local function fails(n, kind, pattern, opts)
    local ok, e = pcall(function()
      if opts then return client:request("GET", "/PurchaseOrders/" .. guid(n), opts) end
      return client.purchase_orders:get(guid(n))
    end)
    assert.is_false(ok, "no error for answer " .. n)
    assert.is_true(unleashed.Error.is(e), "not an unleashed.Error: " .. tostring(e))
    assert.equal(kind, e.kind, tostring(e))
    assert.equal("GET", e.method)
    assert.equal("/PurchaseOrders/" .. guid(n), e.path)
    if pattern then assert.matches(pattern, tostring(e)) end
    assert.is_nil(tostring(e):find(KEY, 1, true))
    still_works()
    return e
  end

  local cases = {
    { 1, "invalid JSON", "protocol", "not JSON" },
    { 2, "a body cut short within its declared length", "protocol", "not JSON" },
    { 3, "a connection closed before the declared length", "network" },
    { 4, "an HTML error page with 200", "protocol", "not JSON" },
    { 5, "an HTML error page with 500", "server", "Service Unavailable" },
    { 6, "a 200 with an empty body", "protocol", "not a purchase order" },
    { 7, "a body past max_body (declared)", "protocol", "max_body" },
    { 8, "a body past max_body (no length declared)", "protocol", "max_body" },
    { 10, "a JSON null", "protocol", "not a purchase order" },
    { 11, "binary garbage", "protocol", "not JSON" },
  }
  for _, case in ipairs(cases) do
    local n, what, kind, pattern = table.unpack(case)
    it(what .. " is a " .. kind .. " error", function()
      local e = fails(n, kind, pattern)
      if kind == "protocol" then
        assert.equal(1, e.attempts)   -- a malformed answer repeats identically: not retried
      else
        assert.equal(3, e.attempts)   -- network faults and 5xx are retried
      end
    end)
  end

  it("an HTML 500 reads as a short, single-line server error", function()
    local e = fails(5, "server")
    assert.equal(500, e.status)
    assert.is_nil(tostring(e):find("\n", 1, true))
    assert.is_true(#tostring(e) < 400)
  end)

  it("a server sending one byte a second hits the client's timeout", function()
    local t0 = os.time()
    local e = fails(9, "timeout", "timed out", { timeout = 1, retries = 0 })
    assert.equal(1, e.attempts)
    assert.is_true(os.time() - t0 < 8)
  end)

  it("a client's own timeout applies to every request", function()
    local slow = unleashed.new{ api_id = ID, api_key = KEY, base_url = s.url, timeout = 1, max_retries = 0 }
    local ok, e = pcall(slow.purchase_orders.get, slow.purchase_orders, guid(9))
    assert.is_false(ok)
    assert.equal("timeout", e.kind)
    assert.equal("PO-00000001", slow.purchase_orders:get(guid(0)).OrderNumber)
    slow:close()
  end)

  it("a listing whose page is not a page is a protocol error", function()
    local ok, e = pcall(client.list, client, "PurchaseOrders/" .. guid(0))
    assert.is_false(ok)
    assert.equal("protocol", e.kind)
    assert.matches("not a page", tostring(e))
    still_works()
  end)

  it("on_request saw each attempt with its kind or status", function()
    local kinds = {}
    for _, ev in ipairs(events) do
      if ev.kind then kinds[ev.kind] = true end
      assert.is_string(ev.method)
      assert.is_number(ev.attempt)
    end
    assert.is_true(kinds.network or false)
  end)
end)

describe("a connection refused", function()
  it("is a network error, not sent, and the same client works once the server is up", function()
    local port = stub.free_port()
    local client = unleashed.new{ api_id = ID, api_key = KEY, base_url = "http://127.0.0.1:" .. port,
                                  max_retries = 1, retry_base = 0.001, retry_cap = 0.01 }
    local ok, e = pcall(client.request, client, "GET", "/Taxes")
    assert.is_false(ok)
    assert.equal("network", e.kind)
    assert.equal(2, e.attempts)
    assert.is_nil(e.status)
    assert.matches("GET /Taxes", tostring(e))
    -- a create is safe to retry when the connection was refused: it never arrived
    local ok2, e2 = pcall(client.request, client, "POST", "/PurchaseOrders/" .. guid(0), { body = {} })
    assert.is_false(ok2)
    assert.equal("network", e2.kind)
    assert.equal(2, e2.attempts)

    local s = stub.start(SCRIPT:gsub("^", "local PORT = " .. port .. "\n")
      :gsub("return { respond =", "return { port = PORT, respond =", 1))
    finally(function() s:stop() end)
    local doc = client:request("GET", "/Taxes")
    assert.same({}, doc.Items)
    client:close()
  end)
end)
