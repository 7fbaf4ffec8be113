-- The sandbox under abuse: a --state file it cannot read is never replaced,
-- saves are durable (write, fsync, rename, fsync of the folder) and leave no
-- temporary file behind a crash; slow or idle connections do not lock
-- anyone out; bodies of unauthenticated calls are never read, and bodies in
-- flight have a memory budget. Each fault shows the state file afterwards.
local socket = require "socket"
local cjson = require "cjson"
local core = require "unleashed.core"
local unleashed = require "unleashed"
local sandbox = require "support.sandbox"
local files = require "support.files"

local ROOT = sandbox.root
-- As docs/reference.md gives them: the temporary file a save writes beside
-- the state file, and the budget of request bodies in flight.
local TEMP_SUFFIX = ".tmp"
local BODY_BUDGET = 64 * 1024 * 1024
local quote = sandbox.quote
local read_all, write_file = files.read_all, files.write_file

local function capture(cmd)
  local p = assert(io.popen(cmd, "r"))
  local out = p:read("a")
  p:close()
  return out
end

local function exists(path)
  return os.execute("test -e " .. quote(path)) == true
end

local guid_counter = 0
local function new_guid()
  guid_counter = guid_counter + 1
  return ("7e1ab1e0-0000-4000-8000-%012d"):format(guid_counter)
end

-- A Parked order for ACME with one line the API accepts, from the reference
-- data of seed 100 (the command's default).
local order_body
do
  local cached
  local function round2(x) return math.floor(x * 100 + 0.5 + 1e-9) / 100 end
  function order_body(sb)
    if cached then return cached end
    local product
    -- A product with no purchase tax of its own: ACME's TaxRate applies.
    for _, p in ipairs(sb:json("GET", "/Products", { { "pageSize", "1000" } }).Items) do
      if p.XeroTaxCode == cjson.null and p.XeroTaxRate == cjson.null and p.TaxablePurchase ~= false
          and not p.IsBatchTracked and not p.IsSerialized then
        product = product or p
      end
    end
    local rate = sb:json("GET", "/Suppliers", { { "supplierCode", "ACME" } }).Items[1].TaxRate
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

-- ---- --state FILE -----------------------------------------------------------------------

-- Runs the sandbox command on --state path until it exits (or 20 s, then
-- SIGTERM: a sandbox that started serving). Returns exit code, stdout, stderr.
-- as_other: run as an unprivileged user when this process is root, so that
-- file permissions apply to it.
local function run_on_state(path, as_other)
  local dir = files.tmpdir()
  local out, err = dir .. "/out", dir .. "/err"
  local prefix = ""
  if as_other and capture("id -u"):match("^0") then
    prefix = "setpriv --reuid=65534 --regid=65534 --clear-groups "
  end
  local cmd = ("timeout -s TERM 20 %slua5.4 %s --port 0 --state %s </dev/null >%s 2>%s"):format(
    prefix, quote(ROOT .. "/bin/unleashed-sandbox"), quote(path), quote(out), quote(err))
  local _, how, code = os.execute(cmd)
  if how ~= "exit" then code = 128 + code end
  local o, e = read_all(out), read_all(err)
  os.execute("rm -rf " .. quote(dir))
  return code, o, e
end

-- What a state file holds, for the record: "N changed orders", "a folder",
-- "not JSON (N bytes)".
local function describe_state(path)
  if capture("test -d " .. quote(path) .. " && echo d"):match("d") then return "a folder" end
  local text = read_all(path)
  local ok, t = pcall(cjson.decode, text)
  if not ok or type(t) ~= "table" then return ("not JSON (%d bytes)"):format(#text) end
  return ("%d changed orders, seed %s"):format(#(t.orders or {}), tostring(math.tointeger(t.seed) or t.seed))
end

local function report(fault, path, how)
  print(("\nstate file after %s: %s, %s"):format(fault, describe_state(path), how))
end

local function unchanged(same)
  return same and "unchanged" or "CHANGED"
end

-- The Guids of the orders a state holds, sorted.
local function guids(text)
  local list = {}
  for _, entry in ipairs(cjson.decode(text).orders) do list[#list + 1] = entry.order.Guid end
  table.sort(list)
  return list
end

describe("sandbox --state", function()
  local dir, state, saved
  -- A state with three orders made through the API.
  setup(function()
    dir = files.tmpdir()
    assert(os.execute("chmod 777 " .. quote(dir)))
    state = dir .. "/state.json"
    local sb = sandbox.start{ state = state }
    local body = order_body(sb)
    for _ = 1, 3 do sb:json("POST", "/PurchaseOrders/" .. new_guid(), {}, body, 201) end
    sb:stop()
    saved = read_all(state)
    assert.are.equal("3 changed orders, seed 100", describe_state(state))
  end)
  teardown(function()
    os.execute("chmod -R u+rwx " .. quote(dir) .. " 2>/dev/null; rm -rf " .. quote(dir))
  end)
  before_each(function()
    os.execute("rm -rf " .. quote(state) .. " " .. quote(state .. TEMP_SUFFIX))
    write_file(state, saved)
    assert(os.execute("chmod 666 " .. quote(state)))
  end)

  it("it cannot read (no permission) stops the sandbox at start and is left as it is", function()
    assert(os.execute("chmod 000 " .. quote(state)))
    local code, out, err = run_on_state(state, true)
    assert(os.execute("chmod 666 " .. quote(state)))
    report("a permission fault", state, unchanged(read_all(state) == saved))
    assert.are.equal(1, code)
    assert.are.equal("", out)                 -- it never listened
    assert.truthy(err:find("--state " .. state, 1, true), err)
    assert.truthy(err:find("Permission denied", 1, true), err)
    assert.truthy(err:find("the file is left as it is", 1, true), err)
    assert.are.equal(saved, read_all(state))
  end)

  it("that is a folder stops the sandbox at start, the folder untouched", function()
    os.remove(state)
    assert(os.execute("mkdir " .. quote(state)))
    write_file(state .. "/inside", "keep")
    local code, out, err = run_on_state(state)
    report("a folder in its place", state, unchanged(read_all(state .. "/inside") == "keep"))
    assert.are.equal(1, code)
    assert.are.equal("", out)
    assert.truthy(err:find("it is a folder", 1, true), err)
    assert.are.equal("keep", read_all(state .. "/inside"))
    assert.are.equal("a folder", describe_state(state))
  end)

  it("holding garbage stops the sandbox at start and is left as it is", function()
    write_file(state, "{\"format\": 1, garbage")
    local code, out, err = run_on_state(state)
    report("garbage", state, unchanged(read_all(state) == "{\"format\": 1, garbage"))
    assert.are.equal(1, code)
    assert.are.equal("", out)
    assert.truthy(err:find("cannot load", 1, true), err)
    assert.are.equal("{\"format\": 1, garbage", read_all(state))
  end)

  it("naming a seed past what --seed allows is refused at once, without growing memory", function()
    local t = cjson.decode(saved)
    t.seed, t.seeded = 100000000, 100000000
    local text = cjson.encode(t)
    write_file(state, text)
    local code, out, err = run_on_state(state)
    report("a seed of 100000000", state, unchanged(read_all(state) == text))
    assert.are.equal(1, code)
    assert.are.equal("", out)
    assert.truthy(err:find("seed 100000000 is not an integer in 0..1000000", 1, true), err)
    assert.are.equal(text, read_all(state))
  end)

  it("does not exist: the sandbox starts from its seed and writes it after the first change", function()
    os.remove(state)
    local sb = sandbox.start{ state = state }
    assert.is_false(exists(state))
    sb:json("POST", "/PurchaseOrders/" .. new_guid(), {}, order_body(sb), 201)
    sb:stop()
    assert.are.equal("1 changed orders, seed 100", describe_state(state))
  end)

  it("with a temporary file a crashed save left: removed at start, the state loaded from FILE", function()
    local tmp = state .. TEMP_SUFFIX
    write_file(tmp, "{\"half\": \"a sav")
    local errfile = dir .. "/stderr"
    local sb = sandbox.start{ state = state, admin = true, stderr = errfile }
    assert.is_false(exists(tmp))
    assert.truthy(read_all(errfile):find("removed " .. tmp, 1, true), read_all(errfile))
    for _, entry in ipairs(cjson.decode(saved).orders) do
      assert.are.equal(200, (sb:signed("GET", "/PurchaseOrders/" .. entry.order.Guid, {})))
    end
    sb:stop()
    local same = table.concat(guids(read_all(state)), " ") == table.concat(guids(saved), " ")
    report("a crash left " .. tmp, state, same and "saved again at exit, the same orders" or "OTHER ORDERS")
    assert.is_true(same)
    assert.is_false(exists(tmp))
  end)

  it("is saved by write, fsync, rename over FILE and fsync of the folder", function()
    local log = dir .. "/strace.log"
    local sb = sandbox.spawn({ "--port", "0", "--state", state, "--api-id", "id", "--api-key", "key" }, {
      program = { "strace", "-f", "-qq", "-e", "trace=openat,fsync,rename", "-o", log,
                  "lua5.4", ROOT .. "/bin/unleashed-sandbox" } })
    sb.api_id, sb.api_key = "id", "key"
    sb:json("POST", "/PurchaseOrders/" .. new_guid(), {}, order_body(sb), 201)
    -- the tracee is the first process in the log: it, not strace, gets the signal
    local tracee = tonumber(read_all(log):match("^(%d+)"))
    os.execute("kill -TERM " .. tracee)
    assert.are.equal(0, sb:wait())
    local calls = {}
    for line in read_all(log):gmatch("[^\n]+") do calls[#calls + 1] = line:gsub("^%d+%s+", "") end
    local tmp = state .. TEMP_SUFFIX
    -- each save: the temporary file created (never reused), flushed, renamed, the folder flushed
    local saves, i = 0, 1
    while i <= #calls do
      local fd = calls[i]:match('^openat%(AT_FDCWD, "' .. tmp:gsub("%p", "%%%0")
                                .. '", [^)]*O_EXCL[^)]*%)%s*= (%d+)')
      if fd then
        local rest = table.concat(calls, "\n", i + 1, math.min(#calls, i + 20))
        -- in this order, each after the one before
        local f = rest:find("fsync%(" .. fd .. "%)%s*= 0")
        local r = f and rest:find(('rename("%s", "%s")'):format(tmp, state):gsub("%p", "%%%0") .. "%s*= 0", f)
        local _, o, dfd
        if r then
          _, o, dfd = rest:find('openat%(AT_FDCWD, "' .. dir:gsub("%p", "%%%0")
                                .. '", [^)]*O_DIRECTORY[^)]*%)%s*= (%d+)', r)
        end
        local d = dfd and rest:find("fsync%(" .. dfd .. "%)%s*= 0", o)
        assert.truthy(d, rest)
        saves = saves + 1
      end
      i = i + 1
    end
    assert.are.equal(2, saves)   -- after the change, and at exit
    assert.are.equal("4 changed orders, seed 100", describe_state(state))
    assert.is_false(exists(tmp))
  end)
end)

-- ---- slow and idle connections ----------------------------------------------------------

-- n sockets that send a request line and one header line, then nothing more
-- (a client sending one header line every few seconds).
local function slow_sockets(sb, n)
  local list = {}
  for i = 1, n do
    local c = assert(socket.connect(sb.host, sb.port))
    assert(c:send("GET /Suppliers HTTP/1.1\r\nHost: x\r\nX-Slow: " .. i .. "\r\n"))
    list[i] = c
  end
  return list
end

-- Whether the server has closed c (nothing else can arrive on these).
local function closed_by_server(c)
  c:settimeout(0)
  local _, err = c:receive(1)
  return err == "closed"
end

local function client_for(sb, extra)
  local opts = { api_id = sb.api_id, api_key = sb.api_key, base_url = sb.base_url, max_retries = 0,
                 timeout = 5, connect_timeout = 5 }
  for k, v in pairs(extra or {}) do opts[k] = v end
  return unleashed.new(opts)
end

describe("the sandbox under slow and idle connections", function()
  it("answers a normal request while 300 sockets trickle their headers, which stay open meanwhile", function()
    local sb = sandbox.start()
    local slow = slow_sockets(sb, 300)
    local c = client_for(sb)
    local doc = c:request("GET", "/Suppliers", { query = { pageSize = 1 } })
    assert.are.equal(1, #doc.Items)
    c:close()
    local open = 0
    for _, s in ipairs(slow) do
      if not closed_by_server(s) then open = open + 1 end
      s:close()
    end
    assert.are.equal(300, open)
    sb:stop()
  end)

  it("closes a connection whose headers do not arrive within a few seconds, however steadily they come",
     function()
    local sb = sandbox.start()
    local s = slow_sockets(sb, 1)[1]
    local t0, closed = socket.gettime(), false
    -- one more header line every half second: never idle, never done
    while not closed and socket.gettime() - t0 < 15 do
      s:send("X-More: " .. ("%.1f"):format(socket.gettime() - t0) .. "\r\n")
      socket.sleep(0.5)
      closed = closed_by_server(s)
    end
    s:close()
    assert.is_true(closed, "still open after 15 s of trickled headers")
    -- and a request whose headers come at once is served as ever
    local c = client_for(sb)
    assert.are.equal(1, #c:request("GET", "/Suppliers", { query = { pageSize = 1 } }).Items)
    c:close()
    sb:stop()
  end)

  it("answers a normal request while 64 clients hold 4 idle kept-alive connections each", function()
    local sb = sandbox.start()
    local idle = {}
    for i = 1, 64 * 4 do
      local s = assert(socket.connect(sb.host, sb.port))
      s:settimeout(5)
      assert(s:send("GET /Suppliers HTTP/1.1\r\nHost: x\r\n\r\n"))   -- unsigned: a 403, kept alive
      assert.are.equal("HTTP/1.1 403 Forbidden", s:receive("*l"))
      local len
      repeat
        local line = assert(s:receive("*l"))
        len = len or tonumber(line:match("^[Cc]ontent%-[Ll]ength: (%d+)"))
      until line == ""
      assert(s:receive(len))
      idle[i] = s
    end
    local c = client_for(sb)
    assert.are.equal(1, #c:request("GET", "/Suppliers", { query = { pageSize = 1 } }).Items)
    c:close()
    -- they are still there, kept alive
    local open = 0
    for _, s in ipairs(idle) do
      if not closed_by_server(s) then open = open + 1 end
      s:close()
    end
    assert.are.equal(256, open)
    sb:stop()
  end)

  it("over TLS, answers while 300 connections never finish their handshake", function()
    local cert, key = os.tmpname(), os.tmpname()
    assert(os.execute(("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 " ..
                       "-addext subjectAltName=IP:127.0.0.1 -keyout %s -out %s >/dev/null 2>&1")
                      :format(quote(key), quote(cert))))
    local sb = sandbox.start{ tls_cert = cert, tls_key = key }
    local stuck = {}
    for i = 1, 300 do stuck[i] = assert(socket.connect(sb.host, sb.port)) end
    -- a client under valgrind needs seconds of CPU for its own side of a handshake
    local c = client_for(sb, { ca_file = cert, timeout = 30, connect_timeout = 30 })
    assert.are.equal(1, #c:request("GET", "/Suppliers", { query = { pageSize = 1 } }).Items)
    c:close()
    for _, s in ipairs(stuck) do s:close() end
    sb:stop()
    os.remove(cert)
    os.remove(key)
  end)
end)

-- ---- request bodies ---------------------------------------------------------------------

local SIXTEEN_MB = 16 * 1024 * 1024

local function post_head(path, id, sig, length)
  return ("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\napi-auth-id: %s\r\n" ..
          "api-auth-signature: %s\r\nContent-Length: %d\r\n\r\n"):format(path, id, sig, length)
end

local function vm_hwm_kb(pid)
  return tonumber(read_all("/proc/" .. pid .. "/status"):match("VmHWM:%s*(%d+) kB"))
end

-- The status line of the answer on c, within 5 s (nil and the error when none came).
local function status_line(c)
  c:settimeout(5)
  return c:receive("*l")
end

-- n connections POST a body of `size` bytes each, all at once, pushing it as
-- fast as the server reads; a connection the server closes stops there.
-- Returns the bytes the server took.
local function flood(sb, n, size, head)
  local conns, chunk = {}, ("x"):rep(65536)
  for i = 1, n do
    local c = assert(socket.connect(sb.host, sb.port))
    c:settimeout(0)
    conns[i] = { sock = c, data = head(i), pos = 1, body_left = size }
  end
  local taken, deadline = 0, socket.gettime() + 60
  local active = n
  while active > 0 and socket.gettime() < deadline do
    local writable = {}
    for _, st in ipairs(conns) do
      if not st.done then writable[#writable + 1] = st.sock end
    end
    local _, ready = socket.select(nil, writable, 0.2)
    for _, st in ipairs(conns) do
      if not st.done and ready[st.sock] then
        if st.pos > #st.data and st.body_left > 0 then
          st.data = chunk:sub(1, math.min(#chunk, st.body_left))
          st.body_left = st.body_left - #st.data
          st.pos = 1
        end
        local last, err, partial = st.sock:send(st.data, st.pos)
        local upto = last or partial or st.pos - 1
        taken = taken + (upto - st.pos + 1)
        st.pos = upto + 1
        if (err and err ~= "timeout") or (st.pos > #st.data and st.body_left == 0) then
          st.done = true
          active = active - 1
        end
      end
    end
  end
  for _, st in ipairs(conns) do st.sock:close() end
  return taken
end

-- An httpd program that is slow to start serving: it listens, says so, and
-- calls run (with a check that refuses requests marked X-Refuse) a second later.
local LATE = [[
local httpd = require "unleashed.sandbox.httpd"
local socket = require "socket"
local srv = httpd.new{ host = "127.0.0.1", port = 0 }
io.write("listening on http://127.0.0.1:", srv:port(), "\n")
io.stdout:flush()
socket.sleep(1)
srv:run(function(req) return { status = 200, body = "handled " .. #req.body } end,
        function(req) if req.headers["x-refuse"] then return { status = 403, body = "refused" } end end)
srv:close()
]]

describe("request bodies in the sandbox", function()
  it("of requests whose headers arrive before run starts are shown to its check once it does", function()
    local program = os.tmpname()
    write_file(program, LATE)
    local srv = sandbox.spawn({}, { program = { "lua5.4", program } })
    local refused = assert(socket.connect(srv.host, srv.port))
    assert(refused:send("POST /a HTTP/1.1\r\nHost: x\r\nX-Refuse: 1\r\nContent-Length: 1000000\r\n\r\n"))
    local taken = assert(socket.connect(srv.host, srv.port))
    assert(taken:send("POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"))
    -- no byte of the refused body sent
    assert.are.equal("HTTP/1.1 403 Forbidden", status_line(refused))
    refused:close()
    taken:settimeout(5)
    local all = taken:receive("*a")
    taken:close()
    assert.truthy(all:find("^HTTP/1.1 200") and all:find("handled 5$"), all)
    srv:kill("TERM")
    srv:wait()
    os.remove(program)
  end)

  it("of a call with a bad signature are not read: 403 as soon as the headers are in", function()
    local sb = sandbox.start{ admin = true }
    local c = assert(socket.connect(sb.host, sb.port))
    local guid = new_guid()
    assert(c:send(post_head("/PurchaseOrders/" .. guid, sb.api_id, "not-the-signature", SIXTEEN_MB)))
    -- no byte of the body sent
    assert.are.equal("HTTP/1.1 403 Forbidden", status_line(c))
    c:close()
    -- the answer is the API's own, counted like any call
    local status, _, body = sb:signed("POST", "/PurchaseOrders/" .. guid, {}, "{}",
                                      { ["api-auth-signature"] = "not-the-signature" })
    assert.are.equal(403, status)
    assert.truthy(cjson.decode(body).Description:find("api-auth-signature", 1, true))
    assert.are.equal(2, sb:stats().Calls["POST /PurchaseOrders/" .. guid])
    sb:stop()
  end)

  it("of a 16 MB POST flood without a valid signature do not grow the sandbox's memory", function()
    local sb = sandbox.start()
    for _ = 1, 3 do sb:signed("GET", "/Suppliers", {}) end
    local before = vm_hwm_kb(sb.pid)
    local taken = flood(sb, 32, SIXTEEN_MB, function(i)
      return post_head("/PurchaseOrders/" .. new_guid(), sb.api_id, "bad-" .. i, SIXTEEN_MB)
    end)
    assert.are.equal(200, (sb:signed("GET", "/Suppliers", {})))
    local grown = vm_hwm_kb(sb.pid) - before
    print(("\nbody flood: 32 POSTs of 16 MiB, bad signatures: the sandbox took %.1f MiB, peak RSS %+d KiB")
      :format(taken / 1048576, grown))
    assert.truthy(grown < 8 * 1024, ("peak RSS grew %d KiB"):format(grown))
    sb:stop()
  end)

  it("in flight have a budget: past it a signed POST gets 503 with Retry-After before its body is read",
     function()
    local sb = sandbox.start()
    local function signed_head()
      return post_head("/PurchaseOrders/" .. new_guid(), sb.api_id, core.sign("", sb.api_key), SIXTEEN_MB)
    end
    -- bodies that fill the budget, begun and left unfinished
    local held = {}
    for i = 1, BODY_BUDGET // SIXTEEN_MB do
      held[i] = assert(socket.connect(sb.host, sb.port))
      assert(held[i]:send(signed_head() .. ("{"):rep(1000)))
    end
    socket.sleep(0.2)
    local c = assert(socket.connect(sb.host, sb.port))
    assert(c:send(signed_head()))
    assert.are.equal("HTTP/1.1 503 Service Unavailable", status_line(c))
    local retry
    repeat
      local line = c:receive("*l")
      retry = retry or (line and line:match("^[Rr]etry%-[Aa]fter: (%d+)"))
    until line == nil or line == ""
    assert.are.equal("1", retry)
    c:close()
    -- once they are gone, bodies are taken again
    for _, s in ipairs(held) do s:close() end
    local status
    for _ = 1, 50 do
      status = sb:signed("POST", "/PurchaseOrders/" .. new_guid(), {}, "{}")
      if status ~= 503 then break end
      socket.sleep(0.1)
    end
    assert.are.equal(400, status)
    sb:stop()
  end)
end)
