-- The embedding example: examples/host/host.c built with `make host` into the
-- build this suite runs against (plain or sanitized), then run against a
-- sandbox, in one lua_State and in two at once (one thread each).
local sandbox = require "support.sandbox"
local files = require "support.files"
local read_all = files.read_all
local unleashed = require "unleashed"

local ROOT = os.getenv("UNLEASHED_ROOT") or "."
local quote = sandbox.quote

-- The build folder is the one LUA_CPATH points at (tools/test sets it to
-- ROOT/BUILD/?.so); the sanitizer runtime in LD_PRELOAD means a SAN=1 build.
local function build_dir()
  local cpath = os.getenv("LUA_CPATH") or ""
  for entry in cpath:gmatch("[^;]+") do
    local dir = entry:match("^(.*)/%?%.so$")
    if dir and io.open(dir .. "/unleashed/core.so", "rb") then
      if dir:sub(1, #ROOT + 1) == ROOT .. "/" then dir = dir:sub(#ROOT + 2) end
      return dir
    end
  end
  return os.getenv("BUILD") or "build"
end

local function sanitized()
  return (os.getenv("LD_PRELOAD") or ""):find("asan", 1, true) ~= nil
end

local function run(cmd)
  local out, err = os.tmpname(), os.tmpname()
  local _, how, code = os.execute(cmd .. " </dev/null >" .. quote(out) .. " 2>" .. quote(err))
  local r = { code = how == "exit" and code or 128 + code, stdout = read_all(out), stderr = read_all(err) }
  os.remove(out)
  os.remove(err)
  return r
end

describe("embedding host (examples/host)", function()
  local sb, client, host, dir

  setup(function()
    local build = build_dir()
    local make = ("make -s -C %s host BUILD=%s%s"):format(quote(ROOT), quote(build),
      sanitized() and " SAN=1" or "")
    local r = run(make)
    assert(r.code == 0, "make host failed:\n" .. r.stdout .. r.stderr)
    host = (build:sub(1, 1) == "/" and build or ROOT .. "/" .. build) .. "/host/unleashed-host"
    sb = sandbox.start { seed = 40, admin = true }
    client = unleashed.new { api_id = sb.api_id, api_key = sb.api_key, base_url = sb.base_url }
    dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. quote(dir)))
  end)

  teardown(function()
    if client then client:close() end
    if sb then sb:stop() end
    if dir then os.execute("rm -rf " .. quote(dir)) end
  end)

  local function run_host(args, with_credentials)
    local words = { "cd", quote(ROOT), "&&", "env", "-u UNLEASHED_API_ID", "-u UNLEASHED_API_KEY",
                    "-u UNLEASHED_BASE_URL" }
    if with_credentials ~= false then
      words[#words + 1] = "UNLEASHED_API_ID=" .. quote(sb.api_id)
      words[#words + 1] = "UNLEASHED_API_KEY=" .. quote(sb.api_key)
      words[#words + 1] = "UNLEASHED_BASE_URL=" .. quote(sb.base_url)
    end
    words[#words + 1] = quote(host)
    for _, a in ipairs(args) do words[#words + 1] = quote(a) end
    local r = run(table.concat(words, " "))
    assert.falsy((r.stdout .. r.stderr):find(sb.api_key, 1, true))
    return r
  end

  local function script(name, text)
    local path = dir .. "/" .. name
    local f = assert(io.open(path, "wb"))
    f:write(text)
    f:close()
    return path
  end

  it("builds with the C core linked in (no unleashed/core.so needed at run time)", function()
    local f = io.open(host, "rb")
    assert.truthy(f)
    f:close()
    local r = run(("env LUA_CPATH='/nonexistent/?.so' %s --help"):format(quote(host)))
    assert.equal(0, r.code)
    assert.truthy(r.stderr:find("usage: unleashed-host", 1, true))
  end)

  it("runs a workflow script with a client from the environment and reports its result", function()
    local month = "2025-03"
    local want = 0
    for po in client.purchase_orders:each { startDate = "2025-02-20", endDate = "2025-04-10" } do
      if po.OrderDate:sub(1, 7) == month then want = want + 1 end
    end
    assert.is_true(want > 0)
    local r = run_host { "examples/month_end.lua", month }
    assert.equal(0, r.code, r.stdout .. r.stderr)
    assert.truthy(r.stdout:find(("purchase orders for %s: %d\n"):format(month, want), 1, true))
    assert.truthy(r.stdout:find(("\nunleashed%%-host: state 1: ok: %d\n$"):format(want)), r.stdout)
  end)

  it("runs the script in two lua_States at once, one thread and one client each", function()
    local path = script("create.lua", [[
local po = client.purchase_orders:create {
  Supplier = { SupplierCode = "ACME" }, OrderStatus = "Parked",
  Comments = "from host state " .. host_state .. " " .. arg[1],
  PurchaseOrderLines = {
    { Product = { ProductCode = "BOLT M8 #10" }, OrderQuantity = host_state, UnitPrice = 2 },
  },
}
return po.OrderNumber
]])
    local tag = tostring(os.time())
    local r = run_host { "--states", "2", path, tag }
    assert.equal(0, r.code, r.stdout .. r.stderr)
    local numbers = {}
    for state, number in r.stdout:gmatch("unleashed%-host: state (%d): ok: (PO%-%d+)") do
      numbers[tonumber(state)] = number
    end
    assert.is_string(numbers[1])
    assert.is_string(numbers[2])
    assert.not_equal(numbers[1], numbers[2])
    for state = 1, 2 do
      local found = client.purchase_orders:list { orderNumber = numbers[state] }
      assert.equal(1, #found)
      assert.equal(("from host state %d %s"):format(state, tag), found[1].Comments)
      assert.equal(state, found[1].PurchaseOrderLines[1].OrderQuantity)
    end
  end)

  it("exits with the code of the error's kind and prints it", function()
    local path = script("missing.lua", "return client.purchase_orders:get(unleashed.guid())\n")
    local r = run_host { path }
    assert.equal(5, r.code)
    assert.truthy(r.stdout:find("unleashed-host: state 1: error (exit 5): ", 1, true), r.stdout)
    assert.truthy(r.stdout:find("404", 1, true))

    local boom = script("boom.lua", "error('boom')\n")
    local b = run_host { "--states", "2", boom }
    assert.equal(1, b.code)
    assert.truthy(b.stdout:find("state 1: error (exit 1): " .. boom .. ":1: boom", 1, true), b.stdout)
    assert.truthy(b.stdout:find("state 2: error (exit 1): " .. boom .. ":1: boom", 1, true), b.stdout)
  end)

  it("reports missing credentials without running the script", function()
    local path = script("never.lua", "print('ran')\n")
    local r = run_host({ path }, false)
    assert.equal(3, r.code)   -- auth, as the `unleashed` command exits: one table for both
    assert.falsy(r.stdout:find("ran", 1, true))
    assert.truthy(r.stdout:find("UNLEASHED_API_ID", 1, true), r.stdout)
  end)

  it("refuses a bad --states value, exit 2", function()
    local r = run_host { "--states", "0", "examples/month_end.lua" }
    assert.equal(2, r.code)
    assert.truthy(r.stderr:find("--states: expected 1 to 16", 1, true))
  end)
end)
