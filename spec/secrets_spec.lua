-- Secrets: a realistic session (the command's po subcommands, workflows
-- through `unleashed run`, errors of every kind, tostring of clients and
-- errors, on_request events, the sandbox's request log and state file, every
-- file the session writes) is captured whole, and none of it holds the API
-- key, a piece of it, or any api-auth-signature value the client sent. The
-- profile file is refused while others can read it.
local sandbox = require "support.sandbox"
local files = require "support.files"
local read_all = files.read_all
local write_file = files.write_file
local stub = require "support.stub_control"
local unleashed = require "unleashed"
local core = require "unleashed.core"

local ROOT = sandbox.root
local quote = sandbox.quote

-- A key of the API's shape (base64 of 48 random bytes), unique to this run.
local function random_key()
  local f = assert(io.open("/dev/urandom", "rb"))
  local bytes = f:read(48)
  f:close()
  return core.sign(bytes, "secrets_spec") .. core.sign(bytes:reverse(), "secrets_spec"):sub(1, 20)
end

local API_ID = unleashed.guid()
local API_KEY = random_key()
local WRONG_KEY = "wrong-" .. API_KEY

-- Every reachable string of a value: table keys and values, metatables, an
-- Error's __tostring, recursively (what a debug dump of the value would show).
local function dump(v, out, seen)
  out, seen = out or {}, seen or {}
  local tv = type(v)
  if tv == "table" then
    if seen[v] then return out end
    seen[v] = true
    for k, x in pairs(v) do
      dump(k, out, seen)
      dump(x, out, seen)
    end
    local mt = getmetatable(v)
    if type(mt) == "table" then dump(mt, out, seen) end
    local ok, s = pcall(tostring, v)
    if ok then out[#out + 1] = s end
  elseif tv == "string" or tv == "number" or tv == "boolean" then
    out[#out + 1] = tostring(v)
  elseif tv == "userdata" then
    local ok, s = pcall(tostring, v)
    if ok then out[#out + 1] = s end
  end
  return out
end

describe("secrets", function()
  local dir, sb, captured, sandbox_log, state_file, env

  -- Everything the session shows or writes, by where it came from.
  local function capture(source, text)
    captured[#captured + 1] = { source = source, text = text }
  end

  -- Runs bin/unleashed with only the given UNLEASHED_* variables.
  local function run(args, vars, stdin)
    local words = { "env", "-u UNLEASHED_API_ID", "-u UNLEASHED_API_KEY", "-u UNLEASHED_BASE_URL",
                    "-u UNLEASHED_PROFILE", "-u XDG_CONFIG_HOME", "HOME=" .. quote(dir .. "/home") }
    for k, v in pairs(vars or {}) do words[#words + 1] = k .. "=" .. quote(v) end
    words[#words + 1] = quote(ROOT .. "/bin/unleashed")
    for _, a in ipairs(args) do words[#words + 1] = quote(a) end
    local out, err = dir .. "/out", dir .. "/err"
    local _, how, code = os.execute(table.concat(words, " ") .. " <" .. quote(stdin or "/dev/null") .. " >"
      .. quote(out) .. " 2>" .. quote(err))
    local r = { code = how == "exit" and code or 128 + code, stdout = read_all(out), stderr = read_all(err) }
    capture("unleashed " .. table.concat(args, " ") .. " (stdout)", r.stdout)
    capture("unleashed " .. table.concat(args, " ") .. " (stderr)", r.stderr)
    return r
  end

  local function capture_error(what, fn)
    local ok, e = pcall(fn)
    assert.is_false(ok, what .. " did not fail")
    capture(what .. " (tostring)", tostring(e))
    capture(what .. " (dump)", table.concat(dump(e), "\n"))
    return e
  end

  setup(function()
    dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. quote(dir .. "/home/.config/unleashed")))
    captured = {}
    sandbox_log = dir .. "/sandbox.log"
    state_file = dir .. "/state.json"
    sb = sandbox.start{ seed = 20, admin = true, api_id = API_ID, api_key = API_KEY, state = state_file,
                        args = { "--log" }, stderr = sandbox_log }
    env = { UNLEASHED_API_ID = API_ID, UNLEASHED_API_KEY = API_KEY, UNLEASHED_BASE_URL = sb.base_url }
  end)

  teardown(function()
    if sb then sb:stop() end
    if dir then os.execute("rm -rf " .. quote(dir)) end
  end)

  it("the library: clients, events and errors of every kind", function()
    local events = {}
    local client = unleashed.new{ api_id = API_ID, api_key = API_KEY, base_url = sb.base_url,
                                  max_retries = 1, retry_base = 0.001, retry_cap = 0.01,
                                  on_request = function(ev) events[#events + 1] = ev end }
    capture("tostring(client)", tostring(client))
    capture("dump(client)", table.concat(dump(client), "\n"))
    local po = client.purchase_orders:create{ Supplier = { SupplierCode = "ACME" }, OrderStatus = "Placed",
      PurchaseOrderLines = { { Product = { ProductCode = "BOLT M8 #10" }, OrderQuantity = 3,
                               UnitPrice = 2 } } }
    po:add_line{ Product = { ProductCode = "BOLT M8 #10" }, OrderQuantity = 1, UnitPrice = 5 }
    po:update{ Comments = "checked" }
    po:receipt()
    po:complete()
    capture("tostring(po)", tostring(po))
    capture("dump(po)", table.concat(dump(po), "\n"))
    for _ in client.purchase_orders:each({ orderStatus = "Complete" }, { page_size = 5 }) do end
    local kinds = {}
    local function kind_of(what, fn) kinds[capture_error(what, fn).kind] = true end

    kind_of("validation", function() return client.purchase_orders:create{ OrderStatus = "Shipped" } end)
    kind_of("not_found", function() return client.purchase_orders:get(unleashed.guid()) end)
    kind_of("conflict", function()
      return client.purchase_orders:create{ Guid = po.Guid, Supplier = { SupplierCode = "ACME" },
        OrderStatus = "Parked" }
    end)
    local wrong = unleashed.new{ api_id = API_ID, api_key = WRONG_KEY, base_url = sb.base_url }
    capture("tostring(wrong client)", tostring(wrong))
    kind_of("auth", function() return wrong.purchase_orders:list() end)
    wrong:close()

    -- Servers that fail in each other way.
    local function against(opts, what, fn, extra)
      opts.seed, opts.api_id, opts.api_key = 1, API_ID, API_KEY
      local s = sandbox.start(opts)
      local c = unleashed.new{ api_id = API_ID, api_key = API_KEY, base_url = s.base_url, max_retries = 1,
                               retry_base = 0.001, retry_cap = 0.01, timeout = extra and extra.timeout or 30 }
      kind_of(what, function() return fn(c) end)
      c:close()
      s:stop()
    end
    local list = function(c) return c.purchase_orders:list() end
    against({ fail_rate = 1 }, "server", list)
    against({ bad_body_rate = 1 }, "protocol", list)
    against({ throttle = "1/60" }, "rate_limited", function(c) c:request("GET", "/Taxes"); return list(c) end)
    against({ quota = 0 }, "quota", list)
    against({ latency_ms = 3000 }, "timeout", list, { timeout = 0.3 })
    local closed = unleashed.new{ api_id = API_ID, api_key = API_KEY, max_retries = 0,
                                  base_url = "http://127.0.0.1:" .. stub.free_port() }
    kind_of("network", function() return closed:request("GET", "/Taxes") end)
    local tls = unleashed.new{ api_id = API_ID, api_key = API_KEY, max_retries = 0,
                               base_url = sb.base_url:gsub("^http:", "https:") }
    kind_of("tls", function() return tls:request("GET", "/Taxes") end)
    -- Refused options carrying the key in every wrong place.
    kind_of("validation", function() return unleashed.new{ api_id = API_ID, api_key = API_KEY .. "\n" } end)
    local function refused(what, opts, new)
      capture_error(what, function() return (new or unleashed.new)(opts) end)
    end
    refused("bad key type", { api_id = API_ID, api_key = { API_KEY } })
    refused("key as api_id", { api_id = API_KEY .. "\0", api_key = "k" })
    refused("key as a name", { api_id = API_ID, [API_KEY] = true })
    refused("core: bad key", { api_id = API_ID, api_key = API_KEY .. "\r" }, core.new_client)
    refused("core: key as a name", { api_id = API_ID, api_key = "k", [API_KEY] = 1 }, core.new_client)
    capture_error("from_env", function()
      return unleashed.from_env(nil, function(k) return k == "UNLEASHED_API_KEY" and API_KEY or nil end)
    end)
    kind_of("closed", function() client:close(); return client:request("GET", "/Taxes") end)
    capture("tostring(closed client)", tostring(client))
    for k in pairs(unleashed.Error.kinds) do assert.is_true(kinds[k] or false, "no " .. k .. " error") end

    for i, ev in ipairs(events) do capture("event " .. i, table.concat(dump(ev), " ")) end
    assert.is_true(#events >= 8)
  end)

  it("the command and workflows through `unleashed run`", function()
    local list = run({ "po", "list", "--format", "json" }, env)
    assert.equal(0, list.code, list.stderr)
    assert.equal(0, run({ "po", "list" }, env).code)
    assert.equal(0, run({ "po", "list", "--format", "csv", "--status", "Placed" }, env).code)
    local number = list.stdout:match('"OrderNumber":"(PO%-%d+)"')
    assert.is_string(number)
    assert.equal(0, run({ "po", "get", number }, env).code)
    run({ "po", "get", number, "--format", "json" }, env)
    run({ "po", "receipt", number }, env)
    run({ "po", "complete", number }, env)
    assert.equal(3, run({ "po", "list" }, { UNLEASHED_API_ID = API_ID, UNLEASHED_API_KEY = WRONG_KEY,
                                          UNLEASHED_BASE_URL = sb.base_url }).code)
    assert.equal(2, run({ "po", "list", "--since", "2025-13-45" }, env).code)
    assert.equal(4, run({ "po", "get", "NOT-AN-ORDER-NUMBER" }, env).code)
    assert.equal(2, run({ "po", "list", "--status", "Shipped" }, env).code)
    assert.equal(5, run({ "po", "get", "PO-99999999" }, env).code)
    local nowhere = "http://127.0.0.1:" .. stub.free_port()
    assert.equal(6, run({ "po", "list" }, { UNLEASHED_API_ID = API_ID, UNLEASHED_API_KEY = API_KEY,
                                          UNLEASHED_BASE_URL = nowhere }).code)
    assert.equal(2, run({ "po", "frobnicate" }, env).code)

    -- A workflow that shows everything it holds, then dies of an auth error.
    local script = dir .. "/workflow.lua"
    write_file(script, [[
local seen = {}
local c = unleashed.new{ api_id = os.getenv("UNLEASHED_API_ID"), api_key = os.getenv("UNLEASHED_API_KEY"),
  base_url = os.getenv("UNLEASHED_BASE_URL"), on_request = function(ev)
    local parts = {}
    for k, v in pairs(ev) do parts[#parts + 1] = k .. "=" .. tostring(v) end
    table.sort(parts)
    print("event " .. table.concat(parts, " "))
  end }
print(tostring(c), tostring(client))
local po = c.purchase_orders:create{ Supplier = { SupplierCode = "ACME" }, OrderStatus = "Placed",
  PurchaseOrderLines = { { Product = { ProductCode = "BOLT M8 #10" }, OrderQuantity = 2, UnitPrice = 7 } } }
print(tostring(po))
po:receipt()
print(po.OrderStatus)
for _, bad in ipairs{ function() return c.purchase_orders:get("nope") end,
                      function() return c:request("GET", "/Nowhere/" .. unleashed.guid()) end } do
  local ok, e = pcall(bad)
  print(ok, tostring(e))
  for k, v in pairs(e) do io.stderr:write(tostring(k), "=", tostring(v), "\n") end
end
for _ in client.purchase_orders:each() do end
io.stderr:write(debug.traceback("a trace"), "\n")
local wrong = unleashed.new{ api_id = os.getenv("UNLEASHED_API_ID"),
  api_key = "wrong-" .. os.getenv("UNLEASHED_API_KEY"), base_url = os.getenv("UNLEASHED_BASE_URL") }
wrong.purchase_orders:list()
]])
    local r = run({ "run", script }, env)
    assert.equal(3, r.code, r.stderr)
    assert.truthy(r.stdout:find("Receipted", 1, true), r.stdout)
    assert.truthy(r.stdout:find("event ", 1, true))
    -- a script's own runtime error prints a traceback
    write_file(script, "local key = os.getenv('UNLEASHED_API_KEY')\nlocal t = nil\nreturn t.x .. key\n")
    assert.equal(1, run({ "run", script }, env).code)
    -- the project's example workflows
    local examples = ROOT .. "/examples/"
    assert.equal(0, run({ "run", examples .. "export_open_orders.lua", dir .. "/open.csv" }, env).code)
    capture("the file export_open_orders.lua wrote", read_all(dir .. "/open.csv"))
    assert.truthy(read_all(dir .. "/open.csv"):find("OrderNumber", 1, true))
    run({ "run", examples .. "receipt_due.lua" }, env)
    run({ "run", examples .. "month_end.lua" }, env)
    run({ "run", examples .. "create_from_csv.lua", examples .. "data/reorder.csv" }, env)
  end)

  it("the profile file: used when private, refused while others can read it", function()
    local path = dir .. "/home/.config/unleashed/credentials"
    write_file(path, ("[acme]\napi_id = %s\napi_key = %s\nbase_url = %s\n")
      :format(API_ID, API_KEY, sb.base_url))
    for _, mode in ipairs{ "644", "604", "640", "660" } do
      assert(os.execute("chmod " .. mode .. " " .. quote(path)))
      local r = run({ "--profile", "acme", "po", "list" })
      assert.equal(3, r.code, "mode " .. mode .. " was accepted")
      assert.truthy(r.stderr:find("refusing the profile file", 1, true), r.stderr)
      assert.truthy(r.stderr:find("chmod 600", 1, true))
      assert.equal("", r.stdout)
    end
    assert(os.execute("chmod 600 " .. quote(path)))
    local ok = run({ "--profile", "acme", "po", "list", "--format", "csv" })
    assert.equal(0, ok.code, ok.stderr)
    assert.truthy(ok.stdout:find("OrderNumber", 1, true))
  end)

  it("nothing captured holds the key or a signature", function()
    sb:stop()
    local log = read_all(sandbox_log)
    capture("sandbox request log", log)
    capture("sandbox state file", read_all(state_file))
    capture("sandbox stdout", sb.listening_line)
    -- The signature of every query the sandbox logged (the signed text is
    -- the wire text decoded), and of the empty query.
    local signatures = { [core.sign("", API_KEY)] = true, [core.sign("", WRONG_KEY)] = true }
    local logged = 0
    for query in log:gmatch("\n?%u+ [^%s?]+%??(%S*) %d%d%d") do
      local signed = query:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)
      signatures[core.sign(signed, API_KEY)] = true
      signatures[core.sign(signed, WRONG_KEY)] = true
      logged = logged + 1
    end
    assert.is_true(logged >= 20, "the sandbox logged " .. logged .. " requests")
    local needles = { API_KEY, API_KEY:sub(1, 12), API_KEY:sub(-12), API_KEY:sub(20, 40) }
    local nsig = 0
    for s in pairs(signatures) do needles[#needles + 1] = s; nsig = nsig + 1 end
    local bytes, leaks = 0, {}
    for _, c in ipairs(captured) do
      bytes = bytes + #c.text
      for _, needle in ipairs(needles) do
        if c.text:find(needle, 1, true) then
          leaks[#leaks + 1] = ("%s holds %s"):format(c.source, needle == API_KEY and "the key"
            or signatures[needle] and "a signature" or "part of the key")
        end
      end
    end
    print(("\nsecrets: %d outputs (%d bytes) searched for the key, 3 pieces of it and %d signatures"):format(
      #captured, bytes, nsig))
    assert.same({}, leaks)
    assert.is_true(#captured > 80 and bytes > 10000)
    -- the session really used the key: the id it goes with is in the log
    assert.truthy(log:find("/PurchaseOrders", 1, true))
  end)
end)
