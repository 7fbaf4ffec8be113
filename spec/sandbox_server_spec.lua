-- The sandbox command and its HTTP server: flags, start and stop, the faults
-- each flag turns on, the admin endpoints, the state file and TLS. The API's
-- own rules have their specs elsewhere (sandbox_api_spec, sandbox_orders_spec).
-- The HTTP layer (unleashed.sandbox.httpd) is checked through a small echo
-- program that answers with the request it was handed.
local socket = require "socket"
local cjson = require "cjson"
local core = require "unleashed.core"
local httpd = require "unleashed.sandbox.httpd"
local server = require "unleashed.sandbox.server"
local sandbox = require "support.sandbox"

local ECHO = [=[
local httpd = require "unleashed.sandbox.httpd"
local cjson = require "cjson"
local srv = httpd.new{ host = "127.0.0.1", port = 0 }
io.write("listening on http://127.0.0.1:", srv:port(), "\n")
io.stdout:flush()
local why = srv:run(function(req)
  if req.path == "/error" then error("failed on purpose") end
  if req.path == "/not-a-table" then return "nope" end
  if req.path == "/bad-status" then return { status = 42 } end
  if req.path == "/stop" then srv:stop() end
  local resp = { status = 200, body = cjson.encode(req),
                 headers = { ["Content-Type"] = "application/json", ["X-Reply"] = "yes" } }
  if req.path == "/drop" then resp.drop = true end
  if req.path == "/slow" then resp.delay_ms = 100 end
  return resp
end)
srv:close()
srv:close()
os.exit(({ stop = 10, SIGTERM = 11, SIGINT = 12 })[why] or 1)
]=]

local function mktemp_dir()
  local p = assert(io.popen("mktemp -d"))
  local d = p:read("l")
  p:close()
  return d
end

local function write(path, data)
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
end

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function ls(dir)
  local p = assert(io.popen("ls -A " .. sandbox.quote(dir)))
  local names = {}
  for line in p:lines() do names[#names + 1] = line end
  p:close()
  table.sort(names)
  return names
end

local function decodes(text)
  return (pcall(cjson.decode, text))
end

local tmp = mktemp_dir()
local echo_path = tmp .. "/echo.lua"
write(echo_path, ECHO)

teardown(function()
  os.execute("rm -rf " .. sandbox.quote(tmp))
end)

local echo_stderr = tmp .. "/echo.err"
local function start_echo()
  return sandbox.spawn({}, { program = { "lua5.4", echo_path }, stderr = echo_stderr })
end

-- An order the API accepts (a Parked order for ACME with one line), built
-- from the reference data of seed 100, the command's default.
local order_body
do
  local cached
  local function round2(x) return math.floor(x * 100 + 0.5 + 1e-9) / 100 end
  function order_body()
    if cached then return cached end
    local sb = sandbox.start{ seed = 100 }
    local product, rate
    -- A product with no purchase tax of its own: ACME's TaxRate applies.
    for _, p in ipairs(sb:json("GET", "/Products", { { "pageSize", "1000" } }).Items) do
      if p.XeroTaxCode == cjson.null and p.XeroTaxRate == cjson.null and p.TaxablePurchase ~= false
          and not p.IsBatchTracked and not p.IsSerialized then
        product = product or p
      end
    end
    rate = sb:json("GET", "/Suppliers", { { "supplierCode", "ACME" } }).Items[1].TaxRate
    sb:stop()
    local total = round2(3 * 12.5)
    local tax = round2(total * rate)
    cached = cjson.encode{
      OrderStatus = "Parked", Supplier = { SupplierCode = "ACME" },
      PurchaseOrderLines = { { LineNumber = 1, Product = { ProductCode = product.ProductCode },
                               OrderQuantity = 3, UnitPrice = 12.5, LineTotal = total, LineTax = tax } },
      SubTotal = total, TaxTotal = tax, Total = round2(total + tax),
    }
    return cached
  end
end

local guid_counter = 0
local function new_guid()
  guid_counter = guid_counter + 1
  return ("5a4db0c0-0000-4000-8000-%012d"):format(guid_counter)
end

-- ---- unleashed.sandbox.httpd --------------------------------------------------------

describe("unleashed.sandbox.httpd", function()
  it("binds port 0 to a free port and closes idempotently", function()
    local srv = httpd.new{ host = "127.0.0.1", port = 0 }
    local port = srv:port()
    assert.truthy(port > 0)
    assert.are.equal("unleashed.sandbox.Server(port " .. port .. ")", tostring(srv))
    local ok, err = pcall(httpd.new, { port = port })
    assert.is_false(ok)
    assert.truthy(err:find("cannot listen on 127.0.0.1 port " .. port, 1, true), err)
    srv:close()
    srv:close()
    assert.are.equal("unleashed.sandbox.Server(closed)", tostring(srv))
    assert.has_error(function() srv:port() end, "httpd: the server is closed")
    assert.has_error(function() srv:run(function() end) end, "httpd: the server is closed")
  end)

  it("returns from run at once after stop", function()
    local srv <close> = httpd.new{ port = 0 }
    srv:stop()
    assert.are.equal("stop", srv:run(function() end))
  end)

  it("refuses bad options, naming the field", function()
    local cases = {
      { { port = 70000 }, 'field "port": must be an integer in 0..65535' },
      { { port = "x" }, 'field "port"' },
      { { host = 5 }, 'field "host": must be a string' },
      { { host = "no.such.host.invalid" }, 'field "host": cannot resolve' },
      { { tls_cert = "PEM" }, '"tls_cert" and "tls_key": give both or neither' },
      { { tls_cert = 1, tls_key = "k" }, 'field "tls_cert": must be a PEM string' },
    }
    for _, case in ipairs(cases) do
      local ok, err = pcall(httpd.new, case[1])
      assert.is_false(ok)
      assert.truthy(err:find(case[2], 1, true), err)
    end
    assert.has_error(function() httpd.new() end)
  end)

  describe("serving", function()
    local echo
    setup(function() echo = start_echo() end)
    teardown(function() if echo then echo:stop{ expect = 11 } end end)

    it("hands the handler the raw path and query and lower-cased header names", function()
      local status, headers, body = echo:raw("GET", "/a%20b/c?x=%20y&z=a+b&q=%23%26",
                                             { ["X-Mixed-Case"] = "V" })
      assert.are.equal(200, status)
      assert.are.equal("yes", headers["x-reply"])
      local req = cjson.decode(body)
      assert.are.equal("GET", req.method)
      assert.are.equal("/a%20b/c", req.path)
      assert.are.equal("x=%20y&z=a+b&q=%23%26", req.query)
      assert.are.equal("V", req.headers["x-mixed-case"])
      assert.is_nil(req.headers["X-Mixed-Case"])
      assert.are.equal("", req.body)
    end)

    it("gives an empty query when there is none, and the body as sent", function()
      local payload = '{"a": "\0binary\255"}'
      local status, _, body = echo:raw("PUT", "/p", { ["Content-Type"] = "application/json" }, payload)
      assert.are.equal(200, status)
      local req = cjson.decode(body)
      assert.are.equal("", req.query)
      assert.are.equal(payload, req.body)
    end)

    it("joins a repeated request header", function()
      local c = assert(socket.connect(echo.host, echo.port))
      c:settimeout(5)
      c:send("GET /h HTTP/1.1\r\nHost: x\r\nX-Twice: 1\r\nX-Twice: 2\r\nConnection: close\r\n\r\n")
      local all = c:receive("*a")
      c:close()
      assert.truthy(all:find('"x-twice":"1, 2"', 1, true), all)
    end)

    it("answers a handler error with 500, a JSON description and a line on stderr", function()
      local status, headers, body = echo:raw("GET", "/error")
      assert.are.equal(500, status)
      assert.are.equal("application/json", headers["content-type"])
      local d = cjson.decode(body).Description
      assert.truthy(d:find("^sandbox error: .*failed on purpose"), d)
      assert.truthy(read(echo_stderr):find("sandbox error: [^\n]*failed on purpose\n"))
      status, headers, body = echo:raw("GET", "/not-a-table")
      assert.are.equal(500, status)
      assert.are.equal("application/json", headers["content-type"])
      assert.truthy(cjson.decode(body).Description:find("not a response table", 1, true))
      status, headers, body = echo:raw("GET", "/bad-status")
      assert.are.equal(500, status)
      assert.are.equal("application/json", headers["content-type"])
      assert.truthy(cjson.decode(body).Description:find('"status": must be an integer in 100..599', 1, true))
    end)

    it("refuses a body over 16 MiB with 413 before reading it", function()
      local c = assert(socket.connect(echo.host, echo.port))
      c:settimeout(5)
      c:send("POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 20000000\r\n\r\n")
      local line = c:receive("*l")
      c:close()
      assert.are.equal("HTTP/1.1 413", line:sub(1, 12))
    end)

    it("keeps a connection alive across requests", function()
      local c = assert(socket.connect(echo.host, echo.port))
      c:settimeout(5)
      for i = 1, 3 do
        assert(c:send("GET /k" .. i .. " HTTP/1.1\r\nHost: x\r\n\r\n"))
        assert.are.equal("HTTP/1.1 200 OK", c:receive("*l"))
        local len
        repeat
          local line = assert(c:receive("*l"))
          len = len or tonumber(line:match("^[Cc]ontent%-[Ll]ength: (%d+)"))
        until line == ""
        local body = assert(c:receive(len))
        assert.are.equal("/k" .. i, cjson.decode(body).path)
      end
      c:close()
    end)

    it("drops a response mid-body when told to", function()
      local status, headers, body, err = echo:raw("GET", "/drop")
      assert.are.equal(200, status)
      assert.are.equal("closed", err)
      local declared = tonumber(headers["content-length"])
      assert.truthy(#body > 0 and #body < declared, #body .. " of " .. declared)
    end)
  end)

  it("returns 'stop' from run when the handler calls stop", function()
    local echo = start_echo()
    assert.are.equal(200, (echo:raw("GET", "/stop")))
    assert.are.equal(10, echo:wait())
  end)

  it("returns 'SIGINT' from run on SIGINT", function()
    local echo = start_echo()
    echo:kill("INT")
    assert.are.equal(12, echo:wait())
  end)
end)

-- ---- the command's flags --------------------------------------------------------------

describe("unleashed-sandbox flags", function()
  it("parse into options, with --flag=value as well", function()
    local opts = assert(server.parse_args{ "--seed=7", "--port", "0", "--throttle", "10/2.5", "--admin",
                                           "--fail-rate", "0.25", "--quota", "5" })
    assert.are.equal(7, opts.seed)
    assert.are.equal(0, opts.port)
    assert.are.same({ calls = 10, seconds = 2.5 }, opts.throttle)
    assert.is_true(opts.admin)
    assert.are.equal(0.25, opts.fail_rate)
    assert.are.equal(5, opts.quota)
    local defaults = assert(server.parse_args{})
    assert.are.equal("127.0.0.1", defaults.host)
    assert.are.equal(100, defaults.seed)
    assert.is_nil(defaults.quota)
  end)

  it("--help prints every flag and exits 0", function()
    local code, out = sandbox.run{ "--help" }
    assert.are.equal(0, code)
    for _, flag in ipairs{ "--host", "--port", "--api-id", "--api-key", "--seed", "--latency-ms",
                           "--jitter-ms", "--fail-rate", "--drop-rate", "--throttle", "--quota",
                           "--bad-body-rate", "--state", "--tls-cert", "--tls-key", "--admin" } do
      assert.truthy(out:find(flag, 1, true), flag)
    end
  end)

  local bad = {
    { { "--port", "70000" }, "--port", "0..65535" },
    { { "--port", "-1" }, "--port", "integer" },
    { { "--seed", "many" }, "--seed", "integer" },
    { { "--fail-rate", "1.5" }, "--fail-rate", "0..1" },
    { { "--drop-rate", "x" }, "--drop-rate", "0..1" },
    { { "--bad-body-rate", "-0.1" }, "--bad-body-rate", "0..1" },
    { { "--latency-ms", "-5" }, "--latency-ms", "milliseconds" },
    { { "--throttle", "5" }, "--throttle", "K/SECONDS" },
    { { "--throttle", "0/1" }, "--throttle", "K/SECONDS" },
    { { "--quota", "lots" }, "--quota", "integer" },
    { { "--api-id", "abc" }, "--api-id and --api-key", "both or neither" },
    { { "--tls-cert", "/nonexistent.pem" }, "--tls-cert and --tls-key", "both or neither" },
    { { "--tls-cert", "/nonexistent.pem", "--tls-key", "/nonexistent.pem" }, "--tls-cert", "cannot read" },
    { { "--bogus" }, "--bogus", "unknown option" },
    { { "--port" }, "--port", "needs a value" },
    { { "--admin=yes" }, "--admin", "takes no value" },
    { { "--seed", "1", "--seed", "2" }, "--seed", "twice" },
  }
  for _, case in ipairs(bad) do
    local args, flag, rule = case[1], case[2], case[3]
    it(("refuses %s with exit 2, naming the flag and the rule"):format(table.concat(args, " ")), function()
      local code, out, err = sandbox.run(args)
      assert.are.equal(2, code)
      assert.are.equal("", out)
      assert.truthy(err:find(flag, 1, true), err)
      assert.truthy(err:find(rule, 1, true), err)
    end)
  end

  it("exits 1 with a message when the port is taken", function()
    local sb = sandbox.start()
    local code, out, err = sandbox.run{ "--port", tostring(sb.port) }
    sb:stop()
    assert.are.equal(1, code)
    assert.are.equal("", out)
    assert.truthy(err:find("cannot listen", 1, true), err)
  end)
end)

-- ---- start and stop ----------------------------------------------------------------------

describe("unleashed-sandbox start and stop", function()
  it("with --port 0 listens on a free port and says so on its first line", function()
    local sb = sandbox.start()
    assert.truthy(sb.port > 0)
    assert.are.equal("listening on http://127.0.0.1:" .. sb.port, sb.listening_line)
    assert.are.equal(403, (sb:raw("GET", "/PurchaseOrders")))
    sb:stop()
  end)

  it("makes up credentials from random bytes when given none, and accepts them", function()
    local a, b = sandbox.start(), sandbox.start()
    local guid = "^" .. ("%x"):rep(8) .. "%-" .. ("%x"):rep(4) .. "%-4" .. ("%x"):rep(3) .. "%-[89ab]"
                 .. ("%x"):rep(3) .. "%-" .. ("%x"):rep(12) .. "$"
    for _, sb in ipairs{ a, b } do
      assert.truthy(sb.api_id:match(guid), sb.api_id)
      assert.are.equal(64, #sb.api_key)
      assert.truthy(sb.api_key:match("^[A-Za-z0-9+/]+$"))
      assert.are.equal(200, (sb:signed("GET", "/Suppliers", { { "pageSize", "1" } })))
    end
    assert.are_not.equal(a.api_id, b.api_id)
    assert.are_not.equal(a.api_key, b.api_key)
    a:stop()
    b:stop()
  end)

  it("uses --api-id/--api-key and prints nothing after the listening line", function()
    local sb = sandbox.start{ api_id = "11111111-2222-4333-8444-555555555555", api_key = "k3y+with/base64=" }
    assert.are.equal(200, (sb:signed("GET", "/Suppliers", {})))
    sb.api_key = "wrong"
    assert.are.equal(403, (sb:signed("GET", "/Suppliers", {})))
    sb:kill("TERM")
    assert.are.equal("", sb.pipe:read("a"))
    assert.are.equal(0, sb:wait())
  end)

  it("on SIGTERM sends a response still held for latency, and exits without waiting it out", function()
    local sb = sandbox.start{ latency_ms = 20000 }
    local c = assert(socket.connect(sb.host, sb.port))
    c:settimeout(10)
    assert(c:send("GET /PurchaseOrders HTTP/1.1\r\nHost: x\r\n\r\n"))
    socket.sleep(0.2)
    local t0 = socket.gettime()
    assert.are.equal(0, sb:stop())
    assert.truthy(socket.gettime() - t0 < 5)
    assert.are.equal("HTTP/1.1 403 Forbidden", c:receive("*l"))
    c:close()
  end)

  it("exits 0 on SIGTERM and on SIGINT", function()
    local sb = sandbox.start()
    assert.are.equal(0, sb:stop())
    sb = sandbox.start()
    sb:kill("INT")
    assert.are.equal(0, sb:wait())
  end)
end)

-- ---- faults --------------------------------------------------------------------------------

describe("sandbox faults", function()
  it("holds each response --latency-ms without serialising concurrent requests", function()
    local sb = sandbox.start{ latency_ms = 100 }
    local conns = {}
    local t0 = socket.gettime()
    for i = 1, 8 do
      local c = assert(socket.connect(sb.host, sb.port))
      c:settimeout(5)
      assert(c:send("GET /PurchaseOrders HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
      conns[i] = c
    end
    for i = 1, 8 do
      local all = conns[i]:receive("*a")
      assert.are.equal("HTTP/1.1 403", all:sub(1, 12))
      conns[i]:close()
    end
    local elapsed = socket.gettime() - t0
    sb:stop()
    assert.truthy(elapsed >= 0.1, ("latency not applied: %.3f s"):format(elapsed))
    assert.truthy(elapsed < 0.4, ("8 requests at 100 ms took %.3f s"):format(elapsed))
  end)

  it("adds jitter within 0..--jitter-ms", function()
    local sb = sandbox.start{ latency_ms = 20, jitter_ms = 60 }
    local times = {}
    for i = 1, 6 do
      local t0 = socket.gettime()
      sb:raw("GET", "/PurchaseOrders")
      times[i] = socket.gettime() - t0
    end
    sb:stop()
    table.sort(times)
    assert.truthy(times[1] >= 0.02, times[1])
    assert.truthy(times[6] < 0.2, times[6])
    assert.truthy(times[6] - times[1] > 0.005, "no jitter seen")
  end)

  it("--fail-rate 1 answers 5xx before the app sees the request", function()
    local body = order_body()
    local dir = mktemp_dir()
    local state = dir .. "/state.json"
    local sb = sandbox.start{ fail_rate = 1, state = state, admin = true }
    local guids, seen = {}, {}
    for i = 1, 12 do
      guids[i] = new_guid()
      local status, headers, text = sb:signed("POST", "/PurchaseOrders/" .. guids[i], {}, body)
      assert.truthy(status == 500 or status == 502 or status == 503, status)
      assert.are.equal("application/json", headers["content-type"])
      assert.truthy(cjson.decode(text).Description:find("fail-rate", 1, true))
      seen[status] = true
    end
    assert.are.equal(12, sb:stats().Total)
    sb:stop()
    local kinds = 0
    for _ in pairs(seen) do kinds = kinds + 1 end
    assert.truthy(kinds >= 2, "always the same status")
    -- restarted without faults over the state it wrote: none of the orders exists
    sb = sandbox.start{ state = state }
    for _, g in ipairs(guids) do
      assert.are.equal(404, (sb:signed("GET", "/PurchaseOrders/" .. g, {})))
    end
    sb:stop()
    os.execute("rm -rf " .. sandbox.quote(dir))
  end)

  it("--fail-rate draws the same faults for the same --seed", function()
    local function statuses()
      local sb = sandbox.start{ fail_rate = 0.5, seed = 42 }
      local s = {}
      for i = 1, 16 do s[i] = (sb:signed("GET", "/Suppliers", {})) end
      sb:stop()
      return s
    end
    local a, b = statuses(), statuses()
    assert.are.same(a, b)
    local ok, failed = 0, 0
    for _, s in ipairs(a) do
      if s == 200 then ok = ok + 1 else failed = failed + 1 end
    end
    assert.truthy(ok > 0 and failed > 0, ("%d ok, %d failed"):format(ok, failed))
  end)

  it("--drop-rate 1 cuts the body short and closes the connection, after the app acted", function()
    local body = order_body()
    local sb = sandbox.start{ drop_rate = 1 }
    local guid = new_guid()
    local status, headers, text, err = sb:signed("POST", "/PurchaseOrders/" .. guid, {}, body)
    assert.are.equal(201, status)
    assert.are.equal("closed", err)
    assert.truthy(#text < tonumber(headers["content-length"]))
    assert.is_false(decodes(text))
    -- the create happened: the order is there (its answer dropped too)
    status, headers, text, err = sb:signed("GET", "/PurchaseOrders/" .. guid, {})
    assert.are.equal(200, status)
    assert.are.equal("closed", err)
    assert.truthy(#text > 0 and #text < tonumber(headers["content-length"]))
    sb:stop()
  end)

  it("--throttle K/SECONDS answers 429 with Retry-After past K calls in the window", function()
    local sb = sandbox.start{ throttle = "3/1" }
    for _ = 1, 3 do assert.are.equal(200, (sb:signed("GET", "/Suppliers", {}))) end
    local status, headers, body = sb:signed("GET", "/Suppliers", {})
    assert.are.equal(429, status)
    assert.are.equal("1", headers["retry-after"])
    assert.truthy(cjson.decode(body).Description:find("3 calls in 1 seconds", 1, true))
    socket.sleep(tonumber(headers["retry-after"]) + 0.05)
    assert.are.equal(200, (sb:signed("GET", "/Suppliers", {})))
    sb:stop()
  end)

  it("--quota N refuses every call after N with 429 and no Retry-After", function()
    local sb = sandbox.start{ quota = 3, admin = true }
    for _ = 1, 3 do assert.are.equal(200, (sb:signed("GET", "/Suppliers", {}))) end
    for _ = 1, 2 do
      local status, headers, body = sb:signed("GET", "/Suppliers", {})
      assert.are.equal(429, status)
      assert.is_nil(headers["retry-after"])
      local d = cjson.decode(body).Description
      assert.truthy(d:find("^Monthly API call quota exceeded %(3 calls%)"), d)
    end
    sb:reset()             -- resets the counts, not the quota
    assert.are.equal(429, (sb:signed("GET", "/Suppliers", {})))
    sb:stop()
  end)

  it("--bad-body-rate 1 spoils every 2xx JSON body and no other", function()
    local sb = sandbox.start{ bad_body_rate = 1, seed = 100 }
    local kinds = {}
    for _ = 1, 24 do
      local status, headers, body = sb:signed("GET", "/Suppliers", { { "pageSize", "3" } })
      assert.are.equal(200, status)
      assert.is_false(decodes(body), body)
      kinds[headers["content-type"]:match("^[%w/]+")] = true
    end
    assert.truthy(kinds["text/html"] and kinds["application/json"],
                  "expected both HTML pages and broken JSON")
    local status, _, body = sb:raw("GET", "/Suppliers")
    assert.are.equal(403, status)
    assert.is_true(decodes(body))
    sb:stop()
  end)
end)

-- ---- admin ---------------------------------------------------------------------------------

describe("sandbox admin endpoints", function()
  it("count calls by method and raw path, without counting themselves, and reset", function()
    local sb = sandbox.start{ admin = true }
    assert.are.same({ Total = 0, Calls = {} }, sb:stats())
    sb:signed("GET", "/Suppliers", {})
    sb:signed("GET", "/Suppliers", { { "pageSize", "2" } })
    sb:raw("GET", "/Suppliers/Page/x%20y")
    sb:signed("POST", "/PurchaseOrders/5a4db0c0-0000-4000-8000-00000000000a", {}, "{}")
    assert.are.same({ Total = 4, Calls = {
      ["GET /Suppliers"] = 2,
      ["GET /Suppliers/Page/x%20y"] = 1,
      ["POST /PurchaseOrders/5a4db0c0-0000-4000-8000-00000000000a"] = 1,
    } }, sb:stats())
    sb:reset()
    assert.are.same({ Total = 0, Calls = {} }, sb:stats())
    assert.are.equal(405, (sb:raw("POST", "/_sandbox/stats", nil, "")))
    assert.are.equal(404, (sb:raw("GET", "/_sandbox/nothing")))
    assert.are.same({ Total = 0, Calls = {} }, sb:stats())
    sb:stop()
  end)

  it("are absent without --admin", function()
    local sb = sandbox.start()
    local status, _, body = sb:raw("GET", "/_sandbox/stats")
    assert.are_not.equal(200, status)
    assert.is_nil(cjson.decode(body).Total)
    assert.are_not.equal(200, (sb:raw("POST", "/_sandbox/reset", nil, "")))
    sb:stop()
  end)
end)

-- ---- state ---------------------------------------------------------------------------------

describe("sandbox --state", function()
  it("keeps orders across a restart, written atomically after each change", function()
    local body = order_body()
    local dir = mktemp_dir()
    local state = dir .. "/state.json"
    local sb = sandbox.start{ state = state }
    assert.is_nil(read(state))
    local first, second = new_guid(), new_guid()
    local created = sb:json("POST", "/PurchaseOrders/" .. first, {}, body, 201)
    local after_first = assert(read(state))
    assert.truthy(after_first:find(first, 1, true))
    -- a hard link keeps the old inode: a write in place would change it too
    assert(os.execute(("ln %s %s"):format(sandbox.quote(state), sandbox.quote(dir .. "/before"))))
    sb:json("POST", "/PurchaseOrders/" .. second, {}, body, 201)
    assert.are.equal(after_first, read(dir .. "/before"))
    local after_second = read(state)
    assert.truthy(after_second:find(second, 1, true))
    -- neither a refused change nor a read writes anything
    sb:signed("POST", "/PurchaseOrders/" .. second, {}, body)
    sb:signed("GET", "/PurchaseOrders", {})
    assert.are.equal(after_second, read(state))
    sb:stop()
    assert.are.same({ "before", "state.json" }, ls(dir))

    sb = sandbox.start{ state = state }
    local again = sb:json("GET", "/PurchaseOrders/" .. first, {})
    assert.are.equal(created.OrderNumber, again.OrderNumber)
    assert.are.equal(created.Total, again.Total)
    assert.are.equal(200, (sb:signed("GET", "/PurchaseOrders/" .. second, {})))
    sb:stop()
    os.execute("rm -rf " .. sandbox.quote(dir))
  end)

  it("exits 1 naming the file when the state does not load", function()
    local path = tmp .. "/bad-state.json"
    write(path, "not json")
    local code, out, err = sandbox.run{ "--state", path }
    assert.are.equal(1, code)
    assert.are.equal("", out)
    assert.truthy(err:find("--state " .. path, 1, true), err)
  end)
end)

-- ---- TLS -----------------------------------------------------------------------------------

describe("sandbox over TLS", function()
  it("serves HTTPS with --tls-cert/--tls-key", function()
    local cert, key = tmp .. "/cert.pem", tmp .. "/key.pem"
    assert(os.execute(("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 " ..
                       "-addext subjectAltName=IP:127.0.0.1 -keyout %s -out %s >/dev/null 2>&1")
                      :format(sandbox.quote(key), sandbox.quote(cert))))
    local sb = sandbox.start{ tls_cert = cert, tls_key = key }
    assert.are.equal("listening on https://127.0.0.1:" .. sb.port, sb.listening_line)
    local signed, wire = sandbox.query{ { "supplierCode", "ACME" }, { "startDate", "2012-12-31" } }
    -- curl runs without the sanitizer runtimes a --san run preloads
    local cmd = ("env -u LD_PRELOAD curl -s --cacert %s -H %s -H %s -H %s -w '\\n%%{http_code}' %s"):format(
      sandbox.quote(cert), sandbox.quote("Accept: application/json"),
      sandbox.quote("api-auth-id: " .. sb.api_id),
      sandbox.quote("api-auth-signature: " .. core.sign(signed, sb.api_key)),
      sandbox.quote(sb.base_url .. "/PurchaseOrders?" .. wire))
    local p = assert(io.popen(cmd))
    local out = p:read("a")
    p:close()
    local body, code = out:match("^(.*)\n(%d+)$")
    assert.are.equal("200", code)
    assert.is_table(cjson.decode(body).Pagination)
    -- without the certificate curl does not trust it, and plain HTTP gets no answer
    assert.is_falsy(os.execute(("env -u LD_PRELOAD curl -s -o /dev/null %s")
                               :format(sandbox.quote(sb.base_url .. "/Suppliers"))))
    assert.is_nil((sb:raw("GET", "/Suppliers")))
    sb:stop()
  end)
end)
