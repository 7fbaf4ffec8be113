-- The C client (unleashed.core.new_client) against a scripted HTTP server on
-- loopback: headers and signing, keep-alive, retries and their waits, how
-- failures are classified, and the client's lifetime.
local core = require "unleashed.core"
local stub = require "support.stub_control"

local ID = "ABCDEFGHIJ-0123-company-one"
local KEY = "c2VjcmV0LWtleS1vbmU+/not=decoded=="

local function percent_decode(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

local function new_client(base_url, extra)
  local opts = { api_id = ID, api_key = KEY, base_url = base_url,
                 retry_base = 0.01, retry_cap = 2, timeout = 5 }
  for k, v in pairs(extra or {}) do opts[k] = v end
  return core.new_client(opts)
end

-- Starts a stub answering `responses` in order; stopped when the test ends.
-- busted keeps one `finally` per test: one stub per test, and after_end runs
-- with it.
local function serve(responses_src, after_end)
  local s = stub.start("return " .. responses_src)
  finally(function()
    s:stop()
    if after_end then after_end() end
  end)
  return s
end

-- The collector at its most aggressive (the settings of the CI's gc-stress
-- run), so that finalizers run in the middle of C functions that allocate;
-- returns what puts it back (lua.c runs generational).
local function stress_collector()
  local mode = collectgarbage("incremental", 1, 1000, 1)
  return function() if mode == "generational" then collectgarbage("generational") end end
end

describe("core.new_client", function()
  it("names the field and the rule for bad options", function()
    local cases = {
      { { api_key = "k" }, "api_id: required" },
      { { api_id = "", api_key = "k" }, "api_id: must not be empty" },
      { { api_id = "i" }, "api_key: required" },
      { { api_id = "i", api_key = 5 }, "api_key: must be a string" },
      { { api_id = "i", api_key = "k", timeout = 0 }, "timeout: must be a positive number" },
      { { api_id = "i", api_key = "k", timeout = "5" }, "timeout: must be a positive number" },
      { { api_id = "i", api_key = "k", connect_timeout = -1 }, "connect_timeout: must be a positive" },
      { { api_id = "i", api_key = "k", max_retries = 101 }, "max_retries: must be an integer from 0 to 100" },
      { { api_id = "i", api_key = "k", max_retries = 1.5 }, "max_retries: must be an integer" },
      { { api_id = "i", api_key = "k", retry_base = -1 }, "retry_base: must be a number of seconds" },
      { { api_id = "i", api_key = "k", base_url = "ftp://x" },
        "base_url: must be an http:// or https:// URL" },
      { { api_id = "i", api_key = "k", client_type = "a\r\nX-Evil: 1" },
        "client_type: must not contain control" },
      { { api_id = "i", api_key = "k", max_body = 0 }, "max_body: must be an integer from 1" },
    }
    for _, case in ipairs(cases) do
      local ok, err = pcall(core.new_client, case[1])
      assert.is_false(ok)
      assert.truthy(err:find(case[2], 1, true), ("expected %q in %q"):format(case[2], err))
    end
    assert.has_error(function() core.new_client() end)
  end)

  it("shows the id's first 8 characters and the base URL, never the key", function()
    local c = core.new_client{ api_id = ID, api_key = KEY, base_url = "https://example.test//" }
    local text = tostring(c)
    assert.are.equal("unleashed.Client(ABCDEFGH..., https://example.test)", text)
    assert.is_nil(text:find(KEY, 1, true))
    assert.is_nil(text:find("c2Vj", 1, true))
    c:close()
    assert.are.equal("unleashed.Client(closed)", tostring(c))
  end)

  it("closes idempotently, and a closed client refuses work", function()
    local c = new_client("http://127.0.0.1:9")
    c:close()
    c:close()
    assert.has_error(function() c:request("GET", "/x") end, "client is closed")
    assert.has_error(function() c:pager("/p/%d", { last = 2 }) end, "client is closed")
  end)

  it("closes at the end of a to-be-closed scope", function()
    local kept
    do
      local c <close> = new_client("http://127.0.0.1:9")
      kept = c
    end
    assert.are.equal("unleashed.Client(closed)", tostring(kept))
    kept:close()
  end)

  it("survives garbage collection of unclosed clients", function()
    for _ = 1, 20 do new_client("http://127.0.0.1:9") end
    collectgarbage()
    collectgarbage()
    assert.truthy(tostring(new_client("http://127.0.0.1:9")):find("ABCDEFGH", 1, true))
  end)
end)

describe("client:request", function()
  it("sends every header, with the signature of the decoded query", function()
    local s = serve[[{ responses = { { status = 200, body = "{}" } } }]]
    local c = new_client(s.url, { client_type = "acme/SyncPurchaseOrders" })
    local res = c:request("GET", "/PurchaseOrders", {
      query = { supplierCode = "A B&C #1+", pageSize = 5 } })
    assert.are.equal(200, res.status)
    assert.are.equal("{}", res.body)
    local req = s:requests()[1]
    local h = req.headers
    assert.are.equal("GET", req.method)
    assert.are.equal("/PurchaseOrders", req.path)
    assert.are.equal("application/json", h["accept"])
    assert.are.equal("application/json", h["content-type"])
    assert.are.equal(ID, h["api-auth-id"])
    assert.are.equal("acme/SyncPurchaseOrders", h["client-type"])
    assert.truthy(h["user-agent"]:match("^lua%-unleashed/" .. core.version:gsub("%.", "%%.")
                                        .. " libcurl/%d+%.%d+"))
    assert.truthy(h["accept-encoding"])
    assert.is_nil(h["expect"])
    -- The server checks the signature against the decoded query.
    assert.truthy(#req.query > 0)
    assert.is_nil(req.query:find(" ", 1, true))
    local decoded = percent_decode(req.query)
    assert.truthy(decoded:find("supplierCode=A B&C #1+", 1, true))
    assert.are.equal(core.sign(decoded, KEY), h["api-auth-signature"])
  end)

  it("signs the empty string when there is no query, and honours user_agent", function()
    local s = serve[[{ responses = { { status = 200 } } }]]
    local c = new_client(s.url .. "/", { user_agent = "acme-sync/2" })
    c:request("GET", "/Currencies")
    local req = s:requests()[1]
    assert.are.equal("/Currencies", req.path)
    assert.are.equal("", req.query)
    assert.are.equal("acme-sync/2", req.headers["user-agent"])
    assert.are.equal("lua-unleashed/app", req.headers["client-type"])
    assert.are.equal(core.sign("", KEY), req.headers["api-auth-signature"])
  end)

  it("keeps one connection alive across requests", function()
    local s = serve[[{ responses = { { status = 200, body = "a" } } }]]
    local c = new_client(s.url)
    for _ = 1, 4 do assert.are.equal(200, c:request("GET", "/Currencies").status) end
    local reqs = s:requests()
    assert.are.equal(4, #reqs)
    for _, r in ipairs(reqs) do assert.are.equal(reqs[1].conn, r.conn) end
  end)

  it("sends POST, PUT, PATCH and DELETE bodies and HEAD without one", function()
    local s = serve[[{ responses = { { status = 201, body = "made" } } }]]
    local c = new_client(s.url)
    assert.are.equal("made", c:request("POST", "/PurchaseOrders/g1", { body = '{"a":1}' }).body)
    c:request("PUT", "/PurchaseOrders/g1", { body = '{"b":2}' })
    c:request("DELETE", "/PurchaseOrders/g1")
    c:request("POST", "/PurchaseOrders/g1/Receipt")
    c:request("PATCH", "/PurchaseOrders/g1", { body = "{}" })
    local head = c:request("HEAD", "/PurchaseOrders/g1")
    assert.are.equal(201, head.status)
    assert.are.equal("", head.body)
    local reqs = s:requests()
    local seen = {}
    for i, r in ipairs(reqs) do seen[i] = r.method end
    assert.are.same({ "POST", "PUT", "DELETE", "POST", "PATCH", "HEAD" }, seen)
    assert.are.equal('{"a":1}', reqs[1].body)
    assert.are.equal('{"b":2}', reqs[2].body)
    assert.are.equal("", reqs[3].body)
    assert.are.equal("0", reqs[4].headers["content-length"])
    assert.are.equal("{}", reqs[5].body)
  end)

  it("keeps only the final response's headers after a 100 Continue", function()
    local s = serve[[{ responses = { { status = 200, interim = true, headers = { ["X-Final"] = "1" } } } }]]
    local res = new_client(s.url):request("GET", "/x")
    assert.are.equal(200, res.status)
    assert.are.equal("1", res.headers["x-final"])
    assert.is_nil(res.headers["x-interim"])
  end)

  it("joins repeated response headers and unfolds continued ones", function()
    local s = serve[[{ responses = { { status = 200, headers = {
      ["X-Rep"] = "one\r\nx-rep: two", ["X-Fold"] = "first\r\n   second" } } } }]]
    local res = new_client(s.url):request("GET", "/x")
    assert.are.equal("one, two", res.headers["x-rep"])
    assert.are.equal("first second", res.headers["x-fold"])
    assert.are.equal("0", res.headers["content-length"])
  end)

  it("waits out a 429 with Retry-After: 1", function()
    local s = serve[[{ responses = {
      { status = 429, headers = { ["Retry-After"] = "1" }, body = "slow down" },
      { status = 200, body = "ok" } } }]]
    local res = new_client(s.url):request("GET", "/x")
    assert.are.equal(200, res.status)
    assert.are.equal(2, res.attempts)
    assert.are.equal(429, res.events[1].status)
    assert.truthy(res.events[1].wait >= 1)
    assert.is_nil(res.events[2].wait)
    assert.truthy(res.ms >= 1000)
    local reqs = s:requests()
    assert.truthy(reqs[2].t - reqs[1].t >= 0.9)
  end)

  it("honours a Retry-After HTTP date, and gives up at once on one past retry_cap", function()
    local s = serve[[{ respond = function(req, n)
      if n == 1 then
        return { status = 503, headers = { ["Retry-After"] = os.date("!%a, %d %b %Y %H:%M:%S GMT",
                                                                       os.time() + 2) } }
      elseif n == 3 then
        return { status = 503, headers = { ["Retry-After"] = "3600" } }
      end
      return { status = 200 }
    end } ]]
    local c = new_client(s.url, { retry_cap = 3 })
    local res = c:request("GET", "/x")
    assert.are.equal(200, res.status)
    assert.truthy(res.events[1].wait >= 0.9 and res.events[1].wait <= 2, res.events[1].wait)
    -- Asked for an hour with a cap of 0.2 s: a retry would be refused again.
    local c2 = new_client(s.url, { retry_cap = 0.2 })
    res = c2:request("GET", "/x")
    assert.are.equal(503, res.status)
    assert.are.equal(1, res.attempts)
    assert.are.equal("3600", res.headers["retry-after"])
    assert.are.equal(503, res.events[1].status)
    assert.is_nil(res.events[1].wait)
    assert.are.equal(3, #s:requests())
  end)

  it("returns a 429 asking to wait longer than retry_cap without retrying it", function()
    local s = serve[[{ responses = {
      { status = 429, headers = { ["Retry-After"] = "120" }, body = "slow down" },
      { status = 429, headers = { ["Retry-After"] = "0" } },
      { status = 200, body = "ok" } } }]]
    local res = new_client(s.url, { retry_cap = 30, max_retries = 5 }):request("GET", "/x")
    assert.are.equal(429, res.status)
    assert.are.equal("slow down", res.body)
    assert.are.equal("120", res.headers["retry-after"])
    assert.are.equal(1, res.attempts)
    assert.are.same({ attempt = 1, status = 429, ms = res.events[1].ms }, res.events[1])
    assert.are.equal(1, #s:requests())
    -- A wait the cap allows is still taken (the boundary: equal to the cap).
    res = new_client(s.url, { retry_cap = 0 }):request("GET", "/x")
    assert.are.equal(200, res.status)
    assert.are.equal(0, res.events[1].wait)
    assert.are.equal(3, #s:requests())
  end)

  it("retries a 503 and returns the 200 that follows", function()
    local s = serve[[{ responses = { { status = 503 }, { status = 200, body = "fine" } } }]]
    local res = new_client(s.url):request("GET", "/x")
    assert.are.equal(200, res.status)
    assert.are.equal("fine", res.body)
    assert.are.equal(2, res.attempts)
    assert.is_nil(res.error)
    assert.is_true(res.sent)
    assert.are.equal(2, #s:requests())
  end)

  it("retries 408 and 5xx at most `retries` times with growing, capped, jittered waits", function()
    local s = serve[[{ responses = { { status = 408 }, { status = 500 }, { status = 502 },
                                     { status = 504 } } }]]
    local res = new_client(s.url, { retry_base = 0.02, retry_cap = 0.05 }):request("GET", "/x",
                                                                                { retries = 3 })
    assert.are.equal(504, res.status)
    assert.are.equal(4, res.attempts)
    assert.are.same({ 408, 500, 502, 504 },
      { res.events[1].status, res.events[2].status, res.events[3].status, res.events[4].status })
    for i = 1, 3 do
      local w = res.events[i].wait
      assert.truthy(w >= 0 and w <= math.min(0.05, 0.02 * 2 ^ (i - 1)), w)
    end
    assert.is_nil(res.events[4].wait)
    assert.are.equal(4, #s:requests())
  end)

  it("never retries 400 or 404", function()
    local s = serve[[{ responses = { { status = 400, body = '{"Description":"bad"}' }, { status = 404 },
                                     { status = 200 } } }]]
    local c = new_client(s.url)
    local res = c:request("GET", "/x", { retries = 5 })
    assert.are.equal(400, res.status)
    assert.are.equal('{"Description":"bad"}', res.body)
    assert.are.equal(1, res.attempts)
    assert.is_nil(res.events[1].wait)
    res = c:request("GET", "/y", { retries = 5 })
    assert.are.equal(404, res.status)
    assert.are.equal(1, res.attempts)
    assert.are.equal(2, #s:requests())
  end)

  it("does not retry a 429 that says the monthly quota is spent", function()
    local s = serve[[{ responses = {
      { status = 429, body = '{"Description":"Monthly API call QUOTA exceeded"}' }, { status = 200 } } }]]
    local res = new_client(s.url):request("GET", "/x", { retries = 3 })
    assert.are.equal(429, res.status)
    assert.are.equal(1, res.attempts)
    assert.are.equal(1, #s:requests())
  end)

  it("does not retry a POST on 503 unless it is idempotent", function()
    local s = serve[[{ respond = function(req)
      return req.headers["x-pass"] == "2" and { status = 200 } or { status = 503 }
    end } ]]
    local c = new_client(s.url)
    local res = c:request("POST", "/PurchaseOrders/g1", { body = "{}", retries = 3 })
    assert.are.equal(503, res.status)
    assert.are.equal(1, res.attempts)
    assert.are.equal(1, #s:requests())
    res = c:request("POST", "/PurchaseOrders/g1", { body = "{}", retries = 2, idempotent = true })
    assert.are.equal(503, res.status)
    assert.are.equal(3, res.attempts)
    assert.are.equal(4, #s:requests())
  end)

  it("retries a POST that never reached the server (connection refused)", function()
    local port = stub.free_port()
    local s = serve(([[{ port = %d, listen_after = 0.4, responses = { { status = 201, body = "made" } } }]])
                    :format(port))
    local c = new_client(s.url, { retry_base = 0.2, retry_cap = 0.2 })
    local res = c:request("POST", "/PurchaseOrders/g1", { body = "{}", retries = 30 })
    assert.are.equal(201, res.status)
    assert.are.equal("made", res.body)
    assert.truthy(res.attempts >= 2)
    assert.are.equal("network", res.events[1].kind)
    assert.is_nil(res.events[1].status)
    assert.is_true(res.sent)
    assert.are.equal(1, #s:requests())
  end)

  it("reports connection refused as a network error that was not sent", function()
    local port = stub.free_port()
    local c = new_client("http://127.0.0.1:" .. port)
    local res = c:request("GET", "/nowhere", { retries = 1, query = { a = "1" } })
    assert.are.equal(2, res.attempts)
    assert.are.equal("network", res.error.kind)
    assert.are.equal(7, res.error.code)   -- CURLE_COULDNT_CONNECT
    assert.is_false(res.sent)
    assert.is_nil(res.status)
    assert.is_nil(res.body)
    assert.truthy(res.error.message:find("GET /nowhere", 1, true))
    assert.is_nil(res.error.message:find(KEY, 1, true))
    assert.is_nil(res.error.message:find(core.sign("a=1", KEY), 1, true))
  end)

  it("reports a slow answer as a timeout, and retries it for a GET only", function()
    local s = serve[[{ responses = { { status = 200, delay = 1.5 }, { status = 200, body = "quick" },
                                     { status = 200, delay = 1.5 }, { status = 200 } } }]]
    local c = new_client(s.url)
    local res = c:request("GET", "/x", { timeout = 0.3, retries = 1 })
    assert.are.equal(200, res.status)
    assert.are.equal("quick", res.body)
    assert.are.equal("timeout", res.events[1].kind)
    res = c:request("POST", "/x", { timeout = 0.3, retries = 1 })
    assert.are.equal("timeout", res.error.kind)
    assert.are.equal(28, res.error.code)   -- CURLE_OPERATION_TIMEDOUT
    assert.are.equal(1, res.attempts)
    assert.is_true(res.sent)
  end)

  it("fails with kind protocol when the body exceeds max_body", function()
    local s = serve[[{ responses = { { status = 200, body = string.rep("x", 5000) },
                                     { status = 200, body = string.rep("y", 5000), no_length = true },
                                     { status = 200, body = string.rep("z", 900) } } }]]
    local c = new_client(s.url, { max_body = 1000 })
    local res = c:request("GET", "/big", { retries = 2 })
    assert.are.equal("protocol", res.error.kind)
    assert.truthy(res.error.message:find("max_body (1000 bytes)", 1, true))
    assert.truthy(res.error.message:find("GET /big", 1, true))
    assert.is_nil(res.body)
    assert.are.equal(1, res.attempts)
    res = c:request("GET", "/big2", { retries = 2 })
    assert.are.equal("protocol", res.error.kind)
    assert.are.equal(1, res.attempts)
    res = c:request("GET", "/fits")
    assert.are.equal(900, #res.body)
  end)

  it("retries a body cut short by the server", function()
    local s = serve[[{ responses = { { status = 200, body = string.rep("x", 100), partial = 10 },
                                     { status = 200, body = "whole" } } }]]
    local res = new_client(s.url):request("GET", "/x")
    assert.are.equal(200, res.status)
    assert.are.equal("whole", res.body)
    assert.are.equal("network", res.events[1].kind)
    assert.are.equal(200, res.events[1].status)
  end)

  it("reports a TLS failure as kind tls and does not retry it", function()
    local s = serve[[{ responses = { { status = 200 } } }]]
    local c = new_client("https://127.0.0.1:" .. s.port)
    local res = c:request("GET", "/x", { retries = 3 })
    assert.are.equal("tls", res.error.kind)
    assert.are.equal(1, res.attempts)
    assert.is_false(res.sent)
    assert.are.equal(0, #s:requests())
  end)

  it("signs with each client's own key", function()
    local s = serve[[{ responses = { { status = 200 } } }]]
    local a = new_client(s.url)
    local b = core.new_client{ api_id = "other-company", api_key = "another key", base_url = s.url }
    a:request("GET", "/x", { query = { q = "same" } })
    b:request("GET", "/x", { query = { q = "same" } })
    local reqs = s:requests()
    assert.are.equal(ID, reqs[1].headers["api-auth-id"])
    assert.are.equal("other-company", reqs[2].headers["api-auth-id"])
    assert.are.equal(core.sign("q=same", KEY), reqs[1].headers["api-auth-signature"])
    assert.are.equal(core.sign("q=same", "another key"), reqs[2].headers["api-auth-signature"])
    assert.are_not.equal(reqs[1].headers["api-auth-signature"], reqs[2].headers["api-auth-signature"])
  end)

  it("refuses to go on when reading its options closed the client", function()
    for _, field in ipairs{ "timeout", "retries", "idempotent", "body", "query" } do
      local c = new_client("http://127.0.0.1:9")
      local opts = setmetatable({}, { __index = function(_, k)
        if k == field then c:close() end
      end })
      local ok, err = pcall(c.request, c, "GET", "/x", opts)
      assert.is_false(ok)
      assert.truthy(tostring(err):find("client is closed", 1, true), field .. ": " .. tostring(err))
      assert.are.equal("unleashed.Client(closed)", tostring(c))
    end
  end)

  -- The result is built after the transfer, and building it allocates, so
  -- a finalizer may run in the middle: one that closes the client must not
  -- free what is still being read (under --san a use after free aborts),
  -- and the result must come back whole.
  it("hands back a whole result when a finalizer closes the client while it is built #finalizer_race",
      function()
    local restore = stress_collector()
    -- Many headers: building the result is most of what the call allocates.
    local s = serve([[{ respond = function()
      local h = {}
      for i = 1, 120 do h["X-Mark-" .. i] = "kept " .. i end
      return { status = 200, headers = h, body = ("body "):rep(400) }
    end }]], restore)
    local current   -- the client inside request(), the one the finalizers close
    local closer = { __gc = function() if current then current:close() end end }
    local while_built, refused = 0, 0
    for k = 1, 300 do
      local c = new_client(s.url)
      for _ = 1, k % 7 do setmetatable({}, closer) end
      for _ = 1, k % 13 do local _ = {} end
      current = c
      local ok, res = pcall(c.request, c, "GET", "/x", { query = { n = k } })
      current = nil
      if ok then
        assert.are.equal(200, res.status)
        assert.are.equal(("body "):rep(400), res.body)
        for i = 1, 120 do assert.are.equal("kept " .. i, res.headers["x-mark-" .. i]) end
        assert.are.equal(1, res.attempts)
        assert.are.equal(200, res.events[1].status)
        if tostring(c) == "unleashed.Client(closed)" then while_built = while_built + 1 end
      else
        assert.truthy(tostring(res):find("client is closed", 1, true), tostring(res))
        refused = refused + 1
      end
      if while_built >= 5 then break end
    end
    assert.truthy(while_built >= 1, ("no finalizer closed the client while a result was built "
                                      .. "(%d calls refused)"):format(refused))
    collectgarbage()
    assert.are.equal(200, new_client(s.url):request("GET", "/after").status)
  end)

  it("lets a finalizer make another request while a result is built #finalizer_race", function()
    local restore = stress_collector()
    local s = serve([[{ respond = function(req)
      return { status = 200, body = req.path .. (" pad"):rep(300) }
    end }]], restore)
    local c = new_client(s.url)
    local inner = {}
    for k = 1, 150 do
      setmetatable({}, { __gc = function()
        local ok, res = pcall(c.request, c, "GET", "/inner")
        inner[#inner + 1] = ok and res.body or tostring(res)
      end })
      for _ = 1, k % 30 do local _ = {} end
      local res = c:request("GET", "/outer")
      assert.are.equal("/outer" .. (" pad"):rep(300), res.body)
    end
    collectgarbage()   -- the finalizers still pending run now, while the stub serves
    assert.truthy(#inner >= 1)
    for _, body in ipairs(inner) do assert.are.equal("/inner" .. (" pad"):rep(300), body) end
  end)

  it("raises for misuse, naming the argument", function()
    local c = new_client("http://127.0.0.1:9")
    local cases = {
      { function() c:request("FETCH", "/x") end, "invalid option 'FETCH'" },
      { function() c:request("GET", "x") end, "path: must start with '/'" },
      { function() c:request("GET", "/x?a=1") end, "path: must not contain" },
      { function() c:request("GET", "/x", { retries = -1 }) end, "retries: must be an integer" },
      { function() c:request("GET", "/x", { timeout = 0 }) end, "timeout: must be a positive" },
      { function() c:request("GET", "/x", { body = "{}" }) end, "body: not allowed with GET" },
      { function() c:request("POST", "/x", { body = 5 }) end, "body: must be a string" },
      { function() c:request("GET", "/x", { query = "a=1" }) end, "query: must be a table" },
      { function() c:request("GET", "/x", { idempotent = 1 }) end, "idempotent: must be a boolean" },
    }
    for _, case in ipairs(cases) do
      local ok, err = pcall(case[1])
      assert.is_false(ok)
      assert.truthy(tostring(err):find(case[2], 1, true), ("expected %q in %q"):format(case[2], err))
    end
  end)
end)
