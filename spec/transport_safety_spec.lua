-- What the client sends and where: the environment's proxy variables do not
-- redirect requests (only the proxy option does), base_url is parsed as
-- libcurl reads it (no user info, nothing that reads like one host and
-- connects to another), and a path or query that would be served as
-- something else than what is reported is refused before anything is sent.
local unleashed = require "unleashed"
local core = require "unleashed.core"
local Error = require "unleashed.error"
local stub = require "support.stub_control"
local sandbox = require "support.sandbox"

local quote = sandbox.quote

local PAGE = '{"Pagination":{"NumberOfItems":0,"PageSize":200,"PageNumber":1,"NumberOfPages":1},"Items":[]}'
local PROXY_SCRIPT = ([[return { responses = { {
  status = 200, headers = { ["Content-Type"] = "application/json" }, body = %q } } }]]):format(PAGE)

local function capture(cmd)
  local p = assert(io.popen(cmd, "r"))
  local out = p:read("a")
  p:close()
  return out
end

local function tmpfile(text)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
  return path
end

-- A child lua5.4 (LUA_PATH and LUA_CPATH inherited) that makes one request
-- with the library and prints how it ended: "answered" or the error's kind.
local CHILD = [[
local unleashed = require "unleashed"
local c = unleashed.new{ api_id = "id", api_key = "key", base_url = arg[1], max_retries = 0,
                         timeout = 5, connect_timeout = 2 }
local ok, err = pcall(c.request, c, "GET", "/Suppliers")
io.write(ok and "answered" or tostring(type(err) == "table" and err.kind or err))
]]

-- The validation error unleashed.new raises for opts, or nil when it accepts them.
local function refusal(opts)
  local ok, err = pcall(unleashed.new, opts)
  if ok then
    err:close()
    return nil
  end
  assert.truthy(Error.is(err, "validation"), tostring(err))
  return err
end

describe("proxies", function()
  local proxy, child
  before_each(function()
    proxy = stub.start(PROXY_SCRIPT)
    child = tmpfile(CHILD)
  end)
  after_each(function()
    proxy:stop()
    os.remove(child)
  end)

  it("named by http_proxy, HTTPS_PROXY, ALL_PROXY and the others receive nothing", function()
    local closed = stub.free_port()   -- nothing listens: a direct request cannot connect
    local env = {}
    for _, name in ipairs{ "http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy",
                           "ALL_PROXY" } do
      env[#env + 1] = name .. "=" .. quote(proxy.url)
    end
    for _, scheme in ipairs{ "http", "https" } do
      local base = ("%s://127.0.0.1:%d"):format(scheme, closed)
      local out = capture(("env -u NO_PROXY -u no_proxy %s lua5.4 %s %s 2>&1")
        :format(table.concat(env, " "), quote(child), quote(base)))
      -- the request went straight to the closed port, not to the proxy's fake answer
      assert.are.equal("network", out, scheme)
    end
    assert.are.same({}, proxy:requests())
  end)

  it("is used when the proxy option names one, and NO_PROXY does not exempt a host from it", function()
    local closed = stub.free_port()
    local script = tmpfile(([[
      local unleashed = require "unleashed"
      local c = unleashed.new{ api_id = "id", api_key = "key", base_url = %q, max_retries = 0,
                               proxy = %q }
      local doc = c:request("GET", "/Suppliers")
      io.write(#doc.Items == 0 and "answered" or "?")
    ]]):format("http://127.0.0.1:" .. closed, proxy.url))
    local out = capture(("env NO_PROXY=127.0.0.1 no_proxy=127.0.0.1 lua5.4 %s 2>&1"):format(quote(script)))
    os.remove(script)
    assert.are.equal("answered", out)
    local reqs = proxy:requests()
    assert.are.equal(1, #reqs)
    -- a proxy gets the absolute URL
    assert.are.equal("http://127.0.0.1:" .. closed .. "/Suppliers", reqs[1].path)
  end)

  it("option is checked like base_url, and its user info is refused without being repeated", function()
    for _, case in ipairs{
      { "ftp://proxy:21", "must be an http://, https://, socks4://" },
      { "http://user:pr0xypass@proxy:3128", "must not carry user info" },
      { "http://proxy:3128/path", "without a path" },
      { "http://[::1", "libcurl can parse" },
    } do
      local err = refusal{ api_id = "id", api_key = "key", proxy = case[1] }
      assert.truthy(err, case[1])
      assert.are.equal("proxy", err.details[1].field)
      assert.truthy(err.details[1].message:find(case[2], 1, true), err.details[1].message)
      assert.is_nil(tostring(err):find("pr0xypass", 1, true))
    end
    assert.is_nil(refusal{ api_id = "id", api_key = "key", proxy = "socks5h://127.0.0.1:1080" })
  end)
end)

describe("base_url", function()
  local BAD = {
    { "http://user:s3cretpw@127.0.0.1:8080", "must not carry user info" },
    { "https://:s3cretpw@api.unleashedsoftware.com", "must not carry user info" },
    { "http://127.0.0.1:8080:s3cretpw@evil.example", "must not carry user info" },
    -- reads like localhost (a backslash is a slash to browsers); libcurl connects to evil.example
    { "http://127.0.0.1:8080\\@evil.example", "must not contain spaces, control characters or a backslash" },
    { "http://[::1", "must be a URL libcurl can parse (Bad IPv6 address)" },
    { "http://host:99999", "must be a URL libcurl can parse" },
    { "http://api.example/v1?x=1", "must not have a query or fragment" },
    { "http://api.example/#top", "must not have a query or fragment" },
    { "ftp://api.example", "must be an http:// or https:// URL" },
    { "api.example", "must be an http:// or https:// URL" },
    { "http:///api.example", "must be written as libcurl reads it" },
    { "http://127.1", "must be written as libcurl reads it" },
    { "http://api.example/a/../b", "must not have . or .. path segments" },
    { "http://api.example/a/%2E%2e", "must not have . or .. path segments" },
    { "", "must not be empty" },
  }

  it("is parsed with libcurl's URL parser at unleashed.new: a bad one fails naming base_url and the rule",
     function()
    for _, case in ipairs(BAD) do
      local err = refusal{ api_id = "id", api_key = "key", base_url = case[1] }
      assert.truthy(err, "accepted " .. case[1])
      assert.are.equal(1, #err.details, case[1])
      assert.are.equal("base_url", err.details[1].field, case[1])
      local message = err.details[1].message
      assert.truthy(message:find(case[2], 1, true), case[1] .. ": " .. message)
      assert.is_nil(tostring(err):find("s3cretpw", 1, true))
    end
  end)

  it("is refused by the core too, for embedders, with the same rules", function()
    for _, case in ipairs(BAD) do
      local ok, err = pcall(core.new_client, { api_id = "id", api_key = "key", base_url = case[1] })
      assert.is_false(ok, case[1])
      assert.truthy(err:find("base_url: " .. case[2], 1, true), err)
      assert.is_nil(err:find("s3cretpw", 1, true))
      local url, rule = core.check_url(case[1])
      assert.is_nil(url)
      assert.truthy(("base_url: " .. rule):find(case[2], 1, true), rule)
    end
  end)

  it("keeps scheme, host, port and path, and tostring(client) shows only them", function()
    for _, case in ipairs{
      { "https://api.unleashedsoftware.com/", "https://api.unleashedsoftware.com" },
      { "http://127.0.0.1:8080", "http://127.0.0.1:8080" },
      { "HTTP://[::1]:8080/api/v1//", "http://[::1]:8080/api/v1" },
      { "https://host.example/a..b/c.d", "https://host.example/a..b/c.d" },
    } do
      local client = unleashed.new{ api_id = "id-12345678", api_key = "key", base_url = case[1] }
      assert.are.equal(case[2], client.base_url)
      assert.are.equal("unleashed.Client(id-12345..., " .. case[2] .. ")", tostring(client))
      client:close()
      assert.are.equal(case[2], (core.check_url(case[1])))
    end
  end)
end)

describe("what is sent is what is reported", function()
  local sb
  setup(function() sb = sandbox.start{ admin = true } end)
  teardown(function() sb:stop() end)

  local function client(events)
    return unleashed.new{ api_id = sb.api_id, api_key = sb.api_key, base_url = sb.base_url,
                          on_request = function(ev) events[#events + 1] = ev end }
  end

  it("a path with dot segments is refused, naming the path, and nothing is sent", function()
    sb:reset()
    local events = {}
    local c = client(events)
    for _, path in ipairs{
      "/PurchaseOrders/../_sandbox/stats",
      "/PurchaseOrders/%2e%2E/_sandbox/stats",
      "/PurchaseOrders/.%2e/_sandbox/stats",
      "/PurchaseOrders/..%2f_sandbox/stats",
      "/PurchaseOrders/..\\_sandbox/stats",
      "/./Suppliers",
      "/Suppliers/.",
    } do
      local ok, err = pcall(c.request, c, "GET", path)
      assert.is_false(ok, path)
      assert.truthy(Error.is(err, "validation"), tostring(err))
      assert.are.equal("path", err.details[1].field)
      assert.truthy(err.details[1].message:find(". or .. segments", 1, true), err.details[1].message)
      -- the core refuses it too (embedders call it directly)
      local cok, cerr = pcall(c._core.request, c._core, "GET", path)
      assert.is_false(cok)
      assert.truthy(cerr:find("path: must not have . or .. segments", 1, true), cerr)
    end
    c:close()
    assert.are.same({}, events)
    assert.are.same({ Total = 0, Calls = {} }, sb:stats())
  end)

  it("dots inside a segment are not dot segments: such a path goes out as written", function()
    sb:reset()
    local events = {}
    local c = client(events)
    for _, path in ipairs{ "/Products/A.B", "/Products/...", "/Products/.x" } do
      local ok, err = pcall(c.request, c, "GET", path)
      assert.truthy(ok or Error.is(err, "not_found"), tostring(err))
    end
    c:close()
    local stats = sb:stats()
    assert.are.equal(3, stats.Total)
    assert.are.equal(1, stats.Calls["GET /Products/A.B"])
    assert.are.equal(1, stats.Calls["GET /Products/..."])
    assert.are.equal(1, stats.Calls["GET /Products/.x"])
    assert.are.same({ "/Products/A.B", "/Products/...", "/Products/.x" },
                    { events[1].path, events[2].path, events[3].path })
  end)

  it("a generic query value or name with a NUL byte is refused like the purchase-order filters", function()
    sb:reset()
    local c = client({})
    local ok, err = pcall(c.request, c, "GET", "/Suppliers", { query = { supplierCode = "AC\0ME" } })
    assert.is_false(ok)
    assert.truthy(Error.is(err, "validation"), tostring(err))
    assert.are.equal("query.supplierCode", err.details[1].field)
    assert.truthy(err.details[1].message:find("NUL", 1, true))
    ok, err = pcall(c.request, c, "GET", "/Suppliers", { query = { ["a\0b"] = "x" } })
    assert.is_false(ok)
    assert.truthy(Error.is(err, "validation"), tostring(err))
    -- the listings take the same generic filters
    ok, err = pcall(c.list, c, "Suppliers", { supplierCode = "AC\0ME" })
    assert.is_false(ok)
    assert.truthy(Error.is(err, "validation"), tostring(err))
    -- and the purchase-order filters refuse it as before
    ok, err = pcall(c.purchase_orders.list, c.purchase_orders, { supplierCode = "AC\0ME" })
    assert.is_false(ok)
    assert.truthy(Error.is(err, "validation"), tostring(err))
    c:close()
    assert.are.same({ Total = 0, Calls = {} }, sb:stats())
  end)
end)
