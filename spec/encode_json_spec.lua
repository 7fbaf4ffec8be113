-- core.encode_json (src/encode.c), the JSON the mirror keeps for each order
-- and cost: what it writes reads back as the same table (every number the
-- same double) for the recorded answers of the live API and for sandbox
-- orders; numbers in their shortest exact form; the API's collections as
-- arrays when empty; escapes; and a clear error for what JSON cannot hold.
local core = require "unleashed.core"
local cjson = require("cjson").new()
local json = require "unleashed.json"
local sandbox = require "unleashed.sandbox"
local mirror = require "unleashed.mirror"
local recorded = require "support.recorded"

-- Deep equality where every number must be the same double (3 and 3.0 are).
local function same(a, b, path)
  path = path or "value"
  if type(a) ~= type(b) then return false, path .. ": " .. type(a) .. " vs " .. type(b) end
  if type(a) == "number" then
    if a == b then return true end
    return false, ("%s: %.17g vs %.17g"):format(path, a, b)
  end
  if type(a) ~= "table" then
    if a == b then return true end
    return false, path .. ": " .. tostring(a) .. " vs " .. tostring(b)
  end
  for k, v in pairs(a) do
    local ok, why = same(v, b[k], path .. "." .. tostring(k))
    if not ok then return false, why end
  end
  for k in pairs(b) do
    if a[k] == nil then return false, path .. "." .. tostring(k) .. ": only in the copy" end
  end
  return true
end

local function round_trip(t)
  local text = core.encode_json(t, mirror.ARRAYS)
  local ok, why = same(t, cjson.decode(text))
  assert(ok, why)
  return text
end

describe("core.encode_json", function()
  it("writes every recorded answer of the live API so that it reads back as the same tables", function()
    local n = 0
    for name in pairs(recorded.index()) do
      if name:find("%.json$") then
        local doc = assert(json.decode(recorded.read(name)))
        round_trip(doc)
        n = n + 1
      end
    end
    assert.is_true(n >= 15, "only " .. n .. " recordings read")
  end)

  it("writes sandbox orders (lines, batches, serials, dates) that read back as the same tables", function()
    local app = sandbox.new{ seed = 120 }
    local texts = {}
    for i, o in ipairs(app.orders) do texts[i] = app:order_json(o, false, true) end
    local orders = assert(json.decode("[" .. table.concat(texts, ",") .. "]"))
    assert.equal(120, #orders)
    for _, po in ipairs(orders) do
      local text = round_trip(po)
      assert.equal(po.Guid, cjson.decode(text).Guid)
      assert.is_nil(text:find("/Date(", 1, true), "a .NET date left in " .. po.OrderNumber)
    end
  end)

  it("writes numbers in their shortest exact form, every double reading back the same", function()
    local cases = {
      { 12.34, "12.34" }, { 0.1, "0.1" }, { 1500.0, "1500" }, { -0.05, "-0.05" }, { 3, "3" },
      { 123456.789012, "123456.789012" }, { 1 / 3, "0.3333333333333333" },
      { 0.1 + 0.2, "0.30000000000000004" }, { 1e300, "1e+300" }, { math.maxinteger, "9223372036854775807" },
      { math.mininteger, "-9223372036854775808" },
      { -0.0, "-0" }, { 2 ^ 53, "9007199254740992" },
    }
    for _, c in ipairs(cases) do assert.equal(c[2], core.encode_json(c[1]), tostring(c[1])) end
    -- random doubles (every bit pattern that is finite) and random amounts of up to 6 places
    math.randomseed(20261207)
    for _ = 1, 5000 do
      local x = string.unpack("<d", string.pack("<i8", math.random(math.mininteger, math.maxinteger)))
      if x == x and x ~= math.huge and x ~= -math.huge then
        assert.equal(x, tonumber(core.encode_json(x)))
      end
      local places = math.random(0, 6)
      local text = ("%d.%0" .. math.max(places, 1) .. "d"):format(math.random(-999999, 999999),
        math.random(0, 10 ^ math.max(places, 1) - 1))
      local v = tonumber(text)
      local out = core.encode_json(v)
      assert.equal(v, tonumber(out))
      assert.is_true(#out <= #text + 1, text .. " written as " .. out)
    end
  end)

  it("writes the API's collections as arrays when empty, other empty tables as objects", function()
    assert.equal('{"PurchaseOrderLines":[]}', core.encode_json({ PurchaseOrderLines = {} }, mirror.ARRAYS))
    assert.equal('{"Supplier":{}}', core.encode_json({ Supplier = {} }, mirror.ARRAYS))
    assert.equal("{}", core.encode_json({}))
    assert.equal("[1,2,3]", core.encode_json({ 1, 2, 3 }))
    assert.same({ ["1"] = "a", ["3"] = "c" }, cjson.decode(core.encode_json({ [1] = "a", [3] = "c" })))
    assert.equal("[null,2]", core.encode_json({ cjson.null, 2 }))
    local t = { 5, 6 }
    t.x = 1
    assert.same({ ["1"] = 5, ["2"] = 6, x = 1 }, cjson.decode(core.encode_json(t)))
  end)

  it("escapes quotes, backslashes and control characters, and leaves UTF-8 as it is", function()
    local s = 'a "quoted" \\ back\nline\r\t\b\f \1\31 é € 𝄞 /'
    local text = core.encode_json({ Comments = s })
    assert.equal(s, cjson.decode(text).Comments)
    assert.is_nil(text:find("[%z\1-\31]"), "a control character left raw")
    assert.truthy(text:find("é € 𝄞", 1, true))
  end)

  it("refuses what JSON cannot hold, naming it", function()
    local cycle = {}
    cycle.self = cycle
    for _, c in ipairs{
      { { f = print }, "cannot write a function" },
      { { n = 0 / 0 }, "cannot write NaN" },
      { { n = math.huge }, "cannot write an infinite number" },
      { { [true] = 1 }, "a key that is a boolean" },
      { cycle, "nested deeper than 100" },
      { { u = io.stdout }, "cannot write a userdata" },
    } do
      local ok, err = pcall(core.encode_json, c[1])
      assert.is_false(ok)
      assert.matches(c[2], err)
    end
  end)
end)
