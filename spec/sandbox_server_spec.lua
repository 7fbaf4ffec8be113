-- The sandbox command and its HTTP server: flags, start and stop, the faults
-- each flag turns on, the admin endpoints, the state file and TLS. The API's
-- own rules have their specs elsewhere; here a small stand-in app (written
-- to a temporary folder ahead of LUA_PATH) answers, so that every fault can
-- be checked against an answer whose shape the spec controls.
local socket = require "socket"
local cjson = require "cjson"
local core = require "unleashed.core"
local sandbox = require "support.sandbox"

local FAKE_APP = [=[
local cjson = require "cjson"
local core = require "unleashed.core"
local M = {}
local App = {}
App.__index = App
function M.new(o)
  return setmetatable({ seed = o.seed, credentials = o.credentials, things = {} }, App)
end
local function answer(status, t)
  return { status = status, headers = { ["Content-Type"] = "application/json" }, body = cjson.encode(t) }
end
local function decode(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end
function App:handle(req)
  local key = self.credentials[req.headers["api-auth-id"] or ""]
  if not key or req.headers["api-auth-signature"] ~= core.sign(decode(req.query), key) then
    return answer(403, { Description = "bad id or signature" })
  end
  if req.path == "/Boom" then error("the stand-in app failed on purpose") end
  if req.method == "GET" and req.path:match("^/Echo") then
    return answer(200, { method = req.method, path = req.path, query = req.query, headers = req.headers,
                         body = req.body, seed = self.seed, padding = string.rep("x", 2000) })
  end
  local guid = req.path:match("^/Things/([%x%-]+)$")
  if req.method == "POST" and guid then
    if self.things[guid] then return answer(400, { Description = "exists" }) end
    self.things[guid] = cjson.decode(req.body)
    return answer(200, { Guid = guid })
  end
  if req.method == "GET" and req.path == "/Things" then
    local items = {}
    for g, t in pairs(self.things) do items[#items + 1] = { Guid = g, Thing = t } end
    table.sort(items, function(a, b) return a.Guid < b.Guid end)
    return answer(200, { Pagination = { NumberOfItems = #items }, Items = items })
  end
  return answer(404, { Description = "no route " .. req.method .. " " .. req.path })
end
function App:dump() return cjson.encode(self.things) end
function App:load(s) self.things = cjson.decode(s) end
return M
]=]

local tmp_root = os.tmpname()
os.remove(tmp_root)
assert(os.execute("mkdir -p " .. sandbox.quote(tmp_root .. "/unleashed/sandbox")))
do
  local f = assert(io.open(tmp_root .. "/unleashed/sandbox/init.lua", "w"))
  f:write(FAKE_APP)
  f:close()
end
local FAKE_ENV = {
  LUA_PATH = tmp_root .. "/?.lua;" .. tmp_root .. "/?/init.lua;" .. (os.getenv("LUA_PATH") or ";;"),
}

local function start(opts)
  opts = opts or {}
  opts.env = FAKE_ENV
  return sandbox.start(opts)
end

local function decodes(text)
  return (pcall(cjson.decode, text))
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

local function read(path)
  local f = assert(io.open(path, "rb"))
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

local function mktemp_dir()
  local p = assert(io.popen("mktemp -d"))
  local d = p:read("l")
  p:close()
  return d
end

teardown(function()
  os.execute("rm -rf " .. sandbox.quote(tmp_root))
end)

describe("unleashed-sandbox flags", function()
  it("--help prints every flag and exits 0", function()
    local code, out = sandbox.run({ "--help" }, { env = FAKE_ENV })
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
      local code, out, err = sandbox.run(args, { env = FAKE_ENV })
      assert.are.equal(2, code)
      assert.are.equal("", out)
      assert.truthy(err:find(flag, 1, true), err)
      assert.truthy(err:find(rule, 1, true), err)
    end)
  end

  it("takes --flag=value as well", function()
    local sb = start{ args = { "--seed=7", "--latency-ms=0" } }
    local status, _, body = sb:signed("GET", "/Echo", {})
    assert.are.equal(200, status)
    assert.are.equal(7, cjson.decode(body).seed)
    sb:stop()
  end)

  it("exits 1 with a message when the port is taken", function()
    local sb = start()
    local code, out, err = sandbox.run({ "--port", tostring(sb.port) }, { env = FAKE_ENV })
    sb:stop()
    assert.are.equal(1, code)
    assert.are.equal("", out)
    assert.truthy(err:find("cannot listen", 1, true), err)
  end)
end)

describe("unleashed-sandbox start and stop", function()
  it("with --port 0 listens on a free port and says so on its first line", function()
    local sb = start()
    assert.truthy(sb.port > 0)
    assert.are.equal("listening on http://127.0.0.1:" .. sb.port, sb.listening_line)
    local status = sb:raw("GET", "/Echo")
    assert.are.equal(403, status)
    sb:stop()
  end)

  it("makes up credentials from random bytes when given none, and accepts them", function()
    local a, b = start(), start()
    for _, sb in ipairs{ a, b } do
      local guid = "^" .. ("%x"):rep(8) .. "%-" .. ("%x"):rep(4) .. "%-4" .. ("%x"):rep(3) .. "%-[89ab]"
                   .. ("%x"):rep(3) .. "%-" .. ("%x"):rep(12) .. "$"
      assert.truthy(sb.api_id:match(guid), sb.api_id)
      assert.are.equal(64, #sb.api_key)
      assert.truthy(sb.api_key:match("^[A-Za-z0-9+/]+$"))
      assert.are.equal(200, (sb:signed("GET", "/Echo", { { "x", "1" } })))
    end
    assert.are_not.equal(a.api_id, b.api_id)
    assert.are_not.equal(a.api_key, b.api_key)
    a:stop()
    b:stop()
  end)

  it("uses --api-id/--api-key and prints nothing after the listening line", function()
    local sb = start{ api_id = "11111111-2222-4333-8444-555555555555", api_key = "k3y+with/base64=" }
    assert.are.equal(200, (sb:signed("GET", "/Echo", {})))
    sb.api_key = "wrong"
    assert.are.equal(403, (sb:signed("GET", "/Echo", {})))
    sb:kill("TERM")
    assert.are.equal("", sb.pipe:read("a"))
    assert.are.equal(0, sb:wait())
  end)

  it("exits 0 on SIGTERM and on SIGINT", function()
    local sb = start()
    assert.are.equal(0, sb:stop())
    sb = start()
    sb:kill("INT")
    assert.are.equal(0, sb:wait())
  end)
end)

describe("the sandbox's HTTP server", function()
  local sb
  setup(function() sb = start() end)
  teardown(function() sb:stop() end)

  it("hands the raw path and query to the app, undecoded, and lower-cases header names", function()
    local _, wire = sandbox.query{ { "x", " y" }, { "z", "a+b" }, { "q", "#&" } }
    local status, headers, body = sb:raw("GET", "/Echo/a%20b?" .. wire, {
      ["api-auth-id"] = sb.api_id,
      ["api-auth-signature"] = core.sign("x= y&z=a+b&q=#&", sb.api_key),
      ["X-Mixed-Case"] = "Value",
    })
    assert.are.equal(200, status)
    assert.truthy(headers["content-type"]:find("application/json", 1, true))
    local echo = cjson.decode(body)
    assert.are.equal("/Echo/a%20b", echo.path)
    assert.are.equal("x=%20y&z=a%2Bb&q=%23%26", echo.query)
    assert.are.equal("Value", echo.headers["x-mixed-case"])
    assert.is_nil(echo.headers["X-Mixed-Case"])
  end)

  it("passes a request body through", function()
    local guid = "0000aaaa-0000-4000-8000-000000000001"
    local status, _, body = sb:signed("POST", "/Things/" .. guid, {}, { Name = "one" })
    assert.are.equal(200, status)
    assert.are.equal("0000aaaa-0000-4000-8000-000000000001", cjson.decode(body).Guid)
    local list = sb:json("GET", "/Things", {})
    assert.are.equal("one", list.Items[1].Thing.Name)
  end)

  it("answers an error in the app with 500 and a JSON description", function()
    local status, headers, body = sb:signed("GET", "/Boom", {})
    assert.are.equal(500, status)
    assert.are.equal("application/json", headers["content-type"])
    local d = cjson.decode(body).Description
    assert.truthy(d:find("^sandbox error: "), d)
    assert.truthy(d:find("failed on purpose", 1, true), d)
  end)

  it("refuses a body over 16 MiB with 413 without reading it", function()
    local c = assert(socket.connect(sb.host, sb.port))
    c:settimeout(5)
    c:send("POST /Things/x HTTP/1.1\r\nHost: x\r\nContent-Length: 20000000\r\n\r\n")
    local line = c:receive("*l")
    c:close()
    assert.are.equal("HTTP/1.1 413", line:sub(1, 12))
  end)

  it("keeps a connection alive across requests", function()
    local c = assert(socket.connect(sb.host, sb.port))
    c:settimeout(5)
    for _ = 1, 3 do
      assert(c:send("GET /Echo HTTP/1.1\r\nHost: x\r\n\r\n"))
      assert.are.equal("HTTP/1.1 403 Forbidden", c:receive("*l"))
      local len
      repeat
        local line = assert(c:receive("*l"))
        len = len or tonumber(line:match("^[Cc]ontent%-[Ll]ength: (%d+)"))
      until line == ""
      local body = assert(c:receive(len))
      assert.truthy(cjson.decode(body).Description)
    end
    c:close()
  end)
end)

describe("sandbox faults", function()
  it("holds each response --latency-ms without serialising concurrent requests", function()
    local sb = start{ latency_ms = 100 }
    local target = "/Echo"
    local conns = {}
    local t0 = socket.gettime()
    for i = 1, 8 do
      local c = assert(socket.connect(sb.host, sb.port))
      c:settimeout(5)
      assert(c:send("GET " .. target .. " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
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
    local sb = start{ latency_ms = 20, jitter_ms = 60 }
    local times = {}
    for i = 1, 6 do
      local t0 = socket.gettime()
      sb:raw("GET", "/Echo")
      times[i] = socket.gettime() - t0
    end
    sb:stop()
    table.sort(times)
    assert.truthy(times[1] >= 0.02, times[1])
    assert.truthy(times[6] < 0.2, times[6])
    assert.truthy(times[6] - times[1] > 0.005, "no jitter seen")
  end)

  it("--fail-rate 1 answers 5xx before the app sees the request", function()
    local dir = mktemp_dir()
    local state = dir .. "/state.json"
    local sb = start{ fail_rate = 1, state = state, admin = true }
    local seen = {}
    for i = 1, 12 do
      local status, headers, body = sb:signed("POST", ("/Things/0000aaaa-0000-4000-8000-%012d"):format(i), {},
                                              { Name = "x" })
      assert.truthy(status == 500 or status == 502 or status == 503, status)
      assert.are.equal("application/json", headers["content-type"])
      assert.truthy(cjson.decode(body).Description:find("fail-rate", 1, true))
      seen[status] = true
    end
    assert.are.equal(12, sb:stats().Total)
    sb:stop()
    assert.truthy(seen[500] or seen[502] or seen[503])
    assert.are.same({}, cjson.decode(read(state)))
    -- restarted without faults over the same state: still nothing there
    sb = start{ state = state }
    assert.are.same({}, sb:json("GET", "/Things", {}).Items)
    sb:stop()
    os.execute("rm -rf " .. sandbox.quote(dir))
  end)

  it("--fail-rate draws the same faults for the same --seed", function()
    local function statuses()
      local sb = start{ fail_rate = 0.5, seed = 42 }
      local s = {}
      for i = 1, 16 do s[i] = (sb:signed("GET", "/Echo", {})) end
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
    local sb = start{ drop_rate = 1 }
    local status, headers, body, err = sb:signed("POST", "/Things/0000aaaa-0000-4000-8000-000000000009", {},
                                                 { Name = "dropped" })
    assert.are.equal(200, status)
    assert.are.equal("closed", err)
    assert.truthy(#body < tonumber(headers["content-length"]))
    status, headers, body, err = sb:signed("GET", "/Things", {})
    assert.are.equal(200, status)
    assert.are.equal("closed", err)
    assert.truthy(#body > 0 and #body < tonumber(headers["content-length"]))
    assert.is_false(decodes(body))
    -- the first POST happened: the same GUID again is refused
    status = sb:signed("POST", "/Things/0000aaaa-0000-4000-8000-000000000009", {}, { Name = "again" })
    assert.are.equal(400, status)
    sb:stop()
  end)

  it("--throttle K/SECONDS answers 429 with Retry-After past K calls in the window", function()
    local sb = start{ throttle = "3/1" }
    for _ = 1, 3 do assert.are.equal(200, (sb:signed("GET", "/Echo", {}))) end
    local status, headers, body = sb:signed("GET", "/Echo", {})
    assert.are.equal(429, status)
    assert.are.equal("1", headers["retry-after"])
    assert.truthy(cjson.decode(body).Description:find("3 calls in 1 seconds", 1, true))
    socket.sleep(tonumber(headers["retry-after"]) + 0.05)
    assert.are.equal(200, (sb:signed("GET", "/Echo", {})))
    sb:stop()
  end)

  it("--quota N refuses every call after N with 429 and no Retry-After", function()
    local sb = start{ quota = 3, admin = true }
    for _ = 1, 3 do assert.are.equal(200, (sb:signed("GET", "/Echo", {}))) end
    for _ = 1, 2 do
      local status, headers, body = sb:signed("GET", "/Echo", {})
      assert.are.equal(429, status)
      assert.is_nil(headers["retry-after"])
      local d = cjson.decode(body).Description
      assert.truthy(d:find("^Monthly API call quota exceeded %(3 calls%)"), d)
    end
    sb:reset()             -- resets the counts, not the quota
    assert.are.equal(429, (sb:signed("GET", "/Echo", {})))
    sb:stop()
  end)

  it("--bad-body-rate 1 spoils every 2xx JSON body and no other", function()
    local sb = start{ bad_body_rate = 1, seed = 100 }
    local kinds = {}
    for _ = 1, 24 do
      local status, headers, body = sb:signed("GET", "/Echo", {})
      assert.are.equal(200, status)
      assert.is_false(decodes(body), body)
      kinds[headers["content-type"]:match("^[%w/]+")] = true
    end
    assert.truthy(kinds["text/html"] and kinds["application/json"],
                  "expected both HTML pages and broken JSON")
    local status, _, body = sb:raw("GET", "/Echo")
    assert.are.equal(403, status)
    assert.is_true(decodes(body))
    sb:stop()
  end)
end)

describe("sandbox admin endpoints", function()
  it("count calls by method and raw path, without counting themselves, and reset", function()
    local sb = start{ admin = true }
    assert.are.same({ Total = 0, Calls = {} }, sb:stats())
    sb:signed("GET", "/Echo", {})
    sb:signed("GET", "/Echo", { { "a", "b c" } })
    sb:raw("GET", "/Echo/x%20y")
    sb:signed("POST", "/Things/0000aaaa-0000-4000-8000-00000000000a", {}, { Name = "n" })
    local stats = sb:stats()
    assert.are.same({ Total = 4, Calls = {
      ["GET /Echo"] = 2,
      ["GET /Echo/x%20y"] = 1,
      ["POST /Things/0000aaaa-0000-4000-8000-00000000000a"] = 1,
    } }, stats)
    sb:reset()
    assert.are.same({ Total = 0, Calls = {} }, sb:stats())
    assert.are.equal(405, (sb:raw("POST", "/_sandbox/stats", nil, "")))
    assert.are.equal(404, (sb:raw("GET", "/_sandbox/nothing")))
    sb:stop()
  end)

  it("are absent without --admin", function()
    local sb = start()
    local status, _, body = sb:raw("GET", "/_sandbox/stats")
    assert.are_not.equal(200, status)
    assert.is_nil(cjson.decode(body).Total)
    sb:stop()
  end)
end)

describe("sandbox --state", function()
  it("keeps the app's state across a restart, written atomically after each change", function()
    local dir = mktemp_dir()
    local state = dir .. "/state.json"
    local sb = start{ state = state }
    assert.is_false(exists(state))
    sb:json("POST", "/Things/0000aaaa-0000-4000-8000-000000000001", {}, { Name = "first" })
    assert.are.equal("first", cjson.decode(read(state))["0000aaaa-0000-4000-8000-000000000001"].Name)
    -- a hard link keeps the old inode: a write in place would change it too
    assert(os.execute(("ln %s %s"):format(sandbox.quote(state), sandbox.quote(dir .. "/before"))))
    local before = read(dir .. "/before")
    sb:json("POST", "/Things/0000aaaa-0000-4000-8000-000000000002", {}, { Name = "second" })
    assert.are.equal(before, read(dir .. "/before"))
    assert.are.equal("second", cjson.decode(read(state))["0000aaaa-0000-4000-8000-000000000002"].Name)
    -- a refused change writes nothing
    sb:json("POST", "/Things/0000aaaa-0000-4000-8000-000000000002", {}, { Name = "again" }, 400)
    sb:stop()
    assert.are.same({ "before", "state.json" }, ls(dir))

    sb = start{ state = state }
    local items = sb:json("GET", "/Things", {}).Items
    sb:stop()
    assert.are.equal(2, #items)
    assert.are.equal("first", items[1].Thing.Name)
    assert.are.equal("second", items[2].Thing.Name)
    os.execute("rm -rf " .. sandbox.quote(dir))
  end)

  it("exits 1 naming the file when the state does not load", function()
    local dir = mktemp_dir()
    local f = assert(io.open(dir .. "/bad.json", "w"))
    f:write("not json")
    f:close()
    local code, _, err = sandbox.run({ "--state", dir .. "/bad.json" }, { env = FAKE_ENV })
    os.execute("rm -rf " .. sandbox.quote(dir))
    assert.are.equal(1, code)
    assert.truthy(err:find("--state " .. dir .. "/bad.json", 1, true), err)
  end)
end)

describe("sandbox over TLS", function()
  it("serves HTTPS with --tls-cert/--tls-key", function()
    local dir = mktemp_dir()
    local cert, key = dir .. "/cert.pem", dir .. "/key.pem"
    assert(os.execute(("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 " ..
                       "-addext subjectAltName=IP:127.0.0.1 -keyout %s -out %s >/dev/null 2>&1")
                      :format(sandbox.quote(key), sandbox.quote(cert))))
    local sb = start{ tls_cert = cert, tls_key = key }
    assert.are.equal("listening on https://127.0.0.1:" .. sb.port, sb.listening_line)
    local signed, wire = sandbox.query{ { "q", "a b" } }
    -- curl runs without the sanitizer runtimes a --san run preloads

    local cmd = ("env -u LD_PRELOAD curl -s --cacert %s -H %s -H %s -w '\\n%%{http_code}' %s"):format(
      sandbox.quote(cert), sandbox.quote("api-auth-id: " .. sb.api_id),
      sandbox.quote("api-auth-signature: " .. core.sign(signed, sb.api_key)),
      sandbox.quote(sb.base_url .. "/Echo?" .. wire))
    local p = assert(io.popen(cmd))
    local out = p:read("a")
    p:close()
    local body, code = out:match("^(.*)\n(%d+)$")
    assert.are.equal("200", code)
    assert.are.equal("q=a%20b", cjson.decode(body).query)
    -- the certificate is what makes curl trust it
    local untrusted = os.execute(("env -u LD_PRELOAD curl -s -o /dev/null %s")
                                 :format(sandbox.quote(sb.base_url .. "/Echo")))
    assert.is_falsy(untrusted)
    sb:stop()
    os.execute("rm -rf " .. sandbox.quote(dir))
  end)
end)
