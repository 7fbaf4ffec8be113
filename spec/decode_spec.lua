-- The response decoder (src/decode.c, behind unleashed.json.decode): the
-- API's rules applied while it builds (dates only in date fields, null
-- members dropped, the integer fields), lone surrogates, the limits on what
-- one answer may build, syntax errors; and a differential test against the
-- path it replaced (core.normalize, cjson.decode, the integer pass) on the
-- recorded answers of the live API, sandbox pages and generated documents:
-- the same tables, math.type and metatables included, except where the date
-- rule now leaves a string that is not in a date field as it was sent.
local core = require "unleashed.core"
local cjson_module = require "cjson"
local json = require "unleashed.json"
local sandbox = require "unleashed.sandbox"

local recorded = require "support.recorded"
local RECORDED = recorded.dir

-- ---- the path the decoder replaced -------------------------------------------

local cjson = cjson_module.new()
local tointeger = math.tointeger

local function integerize_pagination(p)
  for _, k in ipairs{ "NumberOfItems", "PageSize", "PageNumber", "NumberOfPages" } do
    local i = tointeger(p[k])
    if i then p[k] = i end
  end
end

local function integerize_item(item)
  local lines = item.PurchaseOrderLines
  if type(lines) == "table" then
    for j = 1, #lines do
      local line = lines[j]
      if type(line) == "table" then
        local n = tointeger(line.LineNumber)
        if n then line.LineNumber = n end
      end
    end
  end
  local n = tointeger(item.LineNumber)
  if n then item.LineNumber = n end
end

local function integerize_list(items)
  for i = 1, #items do
    if type(items[i]) == "table" then integerize_item(items[i]) end
  end
end

local function old_decode(text)
  local v = cjson.decode(core.normalize(text))
  if type(v) == "table" then
    if type(v.Pagination) == "table" then integerize_pagination(v.Pagination) end
    if type(v.Items) == "table" then integerize_list(v.Items) end
    if v[1] ~= nil then integerize_list(v) else integerize_item(v) end
  end
  return v
end

local function is_date_field(key)
  return type(key) == "string" and (key:find("Date$") or key:find("On$")) ~= nil
end

-- Compares the new decoder's value with the old path's (old) and with
-- cjson's reading of the raw text (raw). Returns nil, or the path of the
-- first difference. A string may differ from the old path only outside a
-- date field, and then it must be the text as sent.
local function differ(new, old, raw, key, path)
  if type(new) ~= type(old) or math.type(new) ~= math.type(old) then
    return path .. ": " .. tostring(new) .. " (" .. (math.type(new) or type(new)) .. ") vs "
      .. tostring(old) .. " (" .. (math.type(old) or type(old)) .. ")"
  end
  if type(new) == "table" then
    if getmetatable(new) ~= getmetatable(old) then return path .. ": metatables differ" end
    for k in pairs(old) do
      if new[k] == nil then return path .. "." .. tostring(k) .. ": missing" end
    end
    for k, v in pairs(new) do
      if old[k] == nil then return path .. "." .. tostring(k) .. ": extra" end
      local r = type(raw) == "table" and raw[k] or nil
      local d = differ(v, old[k], r, type(k) == "string" and k or nil, path .. "." .. tostring(k))
      if d then return d end
    end
    return nil
  end
  if type(new) == "number" then
    if new ~= old or (new == 0 and 1 / new ~= 1 / old) then
      return path .. ": " .. tostring(new) .. " vs " .. tostring(old)
    end
    return nil
  end
  if new ~= old then
    if type(new) == "string" and not is_date_field(key) and new == raw then return nil end
    return path .. ": " .. tostring(new) .. " vs " .. tostring(old)
  end
  return nil
end

local function assert_same_as_before(text, label)
  local new, err = json.decode(text)
  assert(new ~= nil, (label or "") .. ": " .. tostring(err))
  local d = differ(new, old_decode(text), cjson.decode(text), nil, label or "$")
  assert(d == nil, d)
end

-- ---- the rules -------------------------------------------------------------------

describe("unleashed.json.decode", function()
  it("makes a .NET date ISO text only in a member whose name ends in Date or On", function()
    local v = assert(json.decode([=[{"OrderDate":"\/Date(1413283318353)\/",
      "LastModifiedOn":"/Date(1700000000000+1300)/",
      "Comment":"/Date(1700000000000)/","Dates":["/Date(0)/"],"RequiredDate":"\/Date(-86400000)\/"}]=]))
    assert.are.equal("2014-10-14T10:41:58.353Z", v.OrderDate)
    assert.are.equal("2023-11-14T22:13:20.000Z", v.LastModifiedOn)
    assert.are.equal("/Date(1700000000000)/", v.Comment)
    assert.are.equal("/Date(0)/", v.Dates[1])
    assert.are.equal("1969-12-31T00:00:00.000Z", v.RequiredDate)
  end)

  it("converts a date sent again in one answer as it did the first time, escapes or not", function()
    -- Date fields' values already read are reused by their text as sent:
    -- the same text in another date field, under escapes, in a field that
    -- is not a date, and a text that starts like one already read.
    local text = [=[{"Items":[
      {"OrderDate":"\/Date(1413283318353)\/","DeliveryDate":"\/Date(1413283318353)\/",
       "Note":"\/Date(1413283318353)\/","LastModifiedOn":"/Date(1413283318353)/",
       "Lines":[{"DeliveryDate":"\/Date(1413283318353)\/","CreatedOn":"\/Date(1413283318353)\/x"}]},
      {"OrderDate":"\/Date(1413283318353)\/","DeliveryDate":"\/Date(0)\/","LastModifiedOn":"\/Date(0)\/",
       "CreatedOn":"\\\/Date(0)\/\"","RequiredDate":"\/Date(1413283318353)\/\""}]}]=]
    local v = assert(json.decode(text))
    local iso = "2014-10-14T10:41:58.353Z"
    local a, b = v.Items[1], v.Items[2]
    assert.are.equal(iso, a.OrderDate)
    assert.are.equal(iso, a.DeliveryDate)
    assert.are.equal("/Date(1413283318353)/", a.Note)
    assert.are.equal(iso, a.LastModifiedOn)
    assert.are.equal(iso, a.Lines[1].DeliveryDate)
    assert.are.equal("/Date(1413283318353)/x", a.Lines[1].CreatedOn)
    assert.are.equal(iso, b.OrderDate)
    assert.are.equal("1970-01-01T00:00:00.000Z", b.DeliveryDate)
    assert.are.equal("1970-01-01T00:00:00.000Z", b.LastModifiedOn)
    assert.are.equal("\\/Date(0)/\"", b.CreatedOn)
    assert.are.equal("/Date(1413283318353)/\"", b.RequiredDate)
    assert.are.same(v, core.parse_page(text):doc())
    assert_same_as_before(text, "repeated dates")
  end)

  it("leaves a date field that is not a .NET date as it is, without failing the page", function()
    local v = assert(json.decode([=[{"Items":[{"CreatedOn":"12/10/2014 8:08:10 p.m."},
      {"CreatedOn":"/Date(abc)/"},{"CreatedOn":"/Date(99999999999999999)/"},{"CreatedOn":7}],
      "Pagination":{"NumberOfItems":4}}]=]))
    assert.are.equal("12/10/2014 8:08:10 p.m.", v.Items[1].CreatedOn)
    assert.are.equal("/Date(abc)/", v.Items[2].CreatedOn)
    assert.are.equal("/Date(99999999999999999)/", v.Items[3].CreatedOn)
    assert.are.equal(7, v.Items[4].CreatedOn)
  end)

  it("drops null members and keeps null array items as unleashed.json.null", function()
    local v = assert(json.decode('{"a":null,"b":[null,1,null],"c":{"d":null}}'))
    assert.is_nil(v.a)
    assert.are.same({ json.null, 1, json.null }, v.b)
    assert.are.equal(json.null, v.b[1])
    assert.are.same({}, v.c)
    assert.is_nil(next(v.c))
  end)

  it("makes the integer fields Lua integers and every other number a float", function()
    local v = assert(json.decode([=[{"Pagination":{"NumberOfItems":3,"PageSize":200,"PageNumber":1,
      "NumberOfPages":1},"Items":[{"LineNumber":4,"Quantity":2,"PurchaseOrderLines":[{"LineNumber":1,
      "LineTotal":10,"Qty":"3"}]}],"PageSize":7}]=]))
    assert.are.equal("integer", math.type(v.Pagination.NumberOfItems))
    assert.are.equal("integer", math.type(v.Pagination.PageSize))
    assert.are.equal("integer", math.type(v.Pagination.PageNumber))
    assert.are.equal("integer", math.type(v.Pagination.NumberOfPages))
    assert.are.equal("integer", math.type(v.Items[1].LineNumber))
    assert.are.equal("integer", math.type(v.Items[1].PurchaseOrderLines[1].LineNumber))
    assert.are.equal("float", math.type(v.Items[1].Quantity))
    assert.are.equal("float", math.type(v.Items[1].PurchaseOrderLines[1].LineTotal))
    assert.are.equal("float", math.type(v.PageSize))   -- not in Pagination
    assert.are.equal("3", v.Items[1].PurchaseOrderLines[1].Qty)
    local line = assert(json.decode('{"LineNumber":2.0,"LineNumber2":2.5}'))
    assert.are.equal("integer", math.type(line.LineNumber))
    local arr = assert(json.decode('[{"LineNumber":3},{"LineNumber":3.5}]'))
    assert.are.equal("integer", math.type(arr[1].LineNumber))
    assert.are.equal(3.5, arr[2].LineNumber)
  end)

  it("reads decimals as the nearest double, as strtod does", function()
    local cases = { "0.1", "2173.600", "1.000000", "0.00000001", "123456789012345678901234567890",
      "1e22", "1e23", "-0", "-0.0", "5e-324", "1.7976931348623157e308", "1e400", "9007199254740993",
      "0.30000000000000004", "4.35", "1234567.12345678" }
    for _, c in ipairs(cases) do
      local v = assert(json.decode("[" .. c .. "]"))[1]
      local want = cjson.decode("[" .. c .. "]")[1]
      assert.are.equal(want, v, c)
      assert.are.equal("float", math.type(v), c)
      if want == 0 then assert.are.equal(1 / want, 1 / v, c) end
    end
  end)

  it("decodes a lone UTF-16 surrogate escape to U+FFFD and a pair to its character", function()
    local v = assert(json.decode([=[["\ud800","a\udc00b","\ud800\u0041","\ud83d\ude00",
      "\u00e9\u0027\u0026"]]=]))
    assert.are.equal("\u{FFFD}", v[1])
    assert.are.equal("a\u{FFFD}b", v[2])
    assert.are.equal("\u{FFFD}A", v[3])
    assert.are.equal("\u{1F600}", v[4])
    assert.are.equal("é'&", v[5])
  end)

  it("passes bytes that are not UTF-8 through as they are, as cjson did", function()
    local v = assert(json.decode('["\xff\xfe", "caf\xe9"]'))
    assert.are.equal("\xff\xfe", v[1])
    assert.are.equal("caf\xe9", v[2])
  end)

  it("refuses text that is not JSON with a message naming the byte, never raising", function()
    for _, text in ipairs{ "", " ", "{", "[1,]", '{"a"}', '{"a":1,}', "[01]", "[1.]", "[.5]", "[+1]",
        "[NaN]", "[Infinity]", "[0x10]", '"abc', '"\\x"', '"\\u12"', "nul", "[true false]", "{} {}",
        '{"a":1}x', "[1e]", "[-]", "\0", '["\\ud83d\\', '"\\', '"abcdefghijklmnop\\' } do
      local v, msg, kind = json.decode(text)
      assert.is_nil(v, text)
      assert.are.equal("syntax", kind, text)
      assert.is_truthy(msg:find("at byte %d+$"), msg)
    end
    local v, msg = json.decode(nil)
    assert.is_nil(v)
    assert.are.equal("no body", msg)
  end)

  it("gives the same value through core.parse_page, the pager's parse, empty strings included", function()
    for _, text in ipairs{ '["", {"a":"", "OrderDate":"/Date(0)/"}]', '{"Items":[{"b":""}],"Pagination":{}}',
        '""' } do
      assert.are.same(json.decode(text), core.parse_page(text):doc(), text)
    end
    local why, kind = core.parse_page('["\\ud83d\\'):error()
    assert.are.equal("syntax", kind)
    assert.matches("unterminated string", why)
  end)

  it("refuses an answer past its limits before building anything", function()
    local v, msg, kind = json.decode(("["):rep(101) .. ("]"):rep(101))
    assert.is_nil(v)
    assert.are.equal("limit", kind)
    assert.is_truthy(msg:find("100 levels of nesting", 1, true), msg)
    assert.is_truthy(json.decode(("["):rep(100) .. ("]"):rep(100)))

    v, msg, kind = json.decode('{"Items":[' .. ("{},"):rep(100000) .. "{}]}")
    assert.is_nil(v)
    assert.are.equal("limit", kind)
    assert.is_truthy(msg:find("100,000 items in one array", 1, true), msg)
    assert.are.equal(100000, #assert(json.decode('{"Items":[' .. ("{},"):rep(99999) .. "{}]}")).Items)

    -- 21 arrays of 99,999 items: under the per-array limit, over the total.
    local arr = "[" .. ("0,"):rep(99998) .. "0]"
    v, msg, kind = json.decode("[" .. (arr .. ","):rep(20) .. arr .. "]")
    assert.is_nil(v)
    assert.are.equal("limit", kind)
    assert.is_truthy(msg:find("2,000,000 values", 1, true), msg)
  end)

  it("turns an answer past the limits into a protocol error", function()
    local client = require "unleashed.client"
    local ok, err = pcall(client.decode_body, { status = 200, body = ("["):rep(200) .. ("]"):rep(200) },
      "GET", "/PurchaseOrders")
    assert.is_false(ok)
    assert.are.equal("protocol", err.kind)
    assert.is_truthy(err.message:find("too large to decode", 1, true), err.message)
  end)

  it("shares strings between answers and starts its cache over past its size", function()
    local d = core.decoder()
    for round = 1, 4 do
      -- 7,000 names and as many values an answer: the cache (16,384) fills
      -- in the third and starts over before the fourth.
      local parts = {}
      for i = 1, 7000 do parts[i] = ('"k%d_%d":{"v":"s%d","w":"t%d"}'):format(round, i, i, i % 7) end
      local v = assert(d:decode("{" .. table.concat(parts, ",") .. "}"))
      for _, i in ipairs{ 1, 2, 3500, 7000 } do
        assert.are.same({ v = "s" .. i, w = "t" .. i % 7 }, v[("k%d_%d"):format(round, i)])
      end
    end
    assert.are.same({ a = { b = 1.5, c = "s1" } }, d:decode('{"a":{"b":1.5,"c":"s1"}}'))
  end)

  it("decodes from a finalizer while it builds another answer", function()
    local d = core.decoder()
    local inner = {}
    local big = "[" .. ('{"a":[1,2,3],"b":"x"},'):rep(20000) .. "{}]"
    for _ = 1, 50 do
      setmetatable({}, { __gc = function() inner[#inner + 1] = d:decode('{"z":[1,{"y":2}]}') end })
    end
    local v = assert(d:decode(big))
    assert.are.equal(20001, #v)
    assert.are.same({ a = { 1, 2, 3 }, b = "x" }, v[20000])
    collectgarbage()
    for _, t in ipairs(inner) do assert.are.same({ z = { 1, { y = 2 } } }, t) end
  end)

  -- The strings of names new to the cache are made after the parse and
  -- before the build, and the cache may start over before the parse: a
  -- finalizer that decodes there must not overwrite the parsed answer or
  -- the cache (under --san the first read past the end of a string, the
  -- second lost a member). Finalizers land in that window in a small heap,
  -- so each case runs in a lua5.4 process of its own.
  local function run_alone(script)
    local cmd = ("LUA_CPATH=%q lua5.4 -e %q 2>&1"):format(package.cpath, script)
    local f = assert(io.popen(cmd))
    local out = f:read("a")
    local ok, _, code = f:close()
    return ok and code == 0, out
  end

  it("decodes from a finalizer while it makes the names of another answer", function()
    local ok, out = run_alone([[
      local d = require("unleashed.core").decoder()
      local parts = {}
      for i = 1, 200 do parts[i] = '"' .. ("x"):rep(1000) .. i .. '"' end
      local inner = "[" .. table.concat(parts, ",") .. "]"
      collectgarbage("incremental", 10, 400, 0)
      local wrong = 0
      for round = 1, 300 do
        local kp = {}
        for j = 1, 50 do kp[j] = ('"r%d_k%d":"v"'):format(round, j) end
        for _ = 1, 20 do setmetatable({}, { __gc = function() d:decode(inner) end }) end
        local v = d:decode("{" .. table.concat(kp, ",") .. "}")
        if type(v) ~= "table" or v[1] ~= nil or v[("r%d_k50"):format(round)] ~= "v" then wrong = wrong + 1 end
      end
      io.write("wrong ", wrong)
      os.exit(wrong == 0 and 0 or 1)
    ]])
    assert.is_true(ok, out)
    assert.are.equal("wrong 0", out)
  end)

  -- More names than the cache keeps are decoded with the collector as usual
  -- (building 16,400 members under the aggressive setting took seconds); the
  -- next answer, the cache starting over, with finalizers landing in it.
  it("decodes from a finalizer while the name cache starts over", function()
    local ok, out = run_alone([[
      local core = require "unleashed.core"
      local kp = {}
      for j = 1, 16400 do kp[j] = ('"n%d":1'):format(j) end
      local big = "{" .. table.concat(kp, ",") .. "}"
      local wrong = 0
      for _ = 1, 40 do
        local d = core.decoder()
        collectgarbage("incremental", 200, 100, 13)
        assert(d:decode(big))
        collectgarbage("incremental", 10, 400, 0)
        for _ = 1, 3 do setmetatable({}, { __gc = function() d:decode('{"q":"w"}') end }) end
        local v = d:decode('{"q":"w","r":"s"}')
        if type(v) ~= "table" or v.q ~= "w" or v.r ~= "s" then wrong = wrong + 1 end
      end
      io.write("wrong ", wrong)
      os.exit(wrong == 0 and 0 or 1)
    ]])
    assert.is_true(ok, out)
    assert.are.equal("wrong 0", out)
  end)
end)

-- ---- differential: the same tables as before -----------------------------------

describe("the decoder against the path it replaced", function()
  it("gives the same tables for every recorded answer of the live API", function()
    local n = 0
    for name in io.popen("ls " .. RECORDED):lines() do
      if name:find("%.json$") then
        assert_same_as_before(recorded.read(name), name)
        n = n + 1
      end
    end
    assert.is_true(n >= 15, "recorded answers found: " .. n)
  end)

  it("keeps the recorded CreatedOn that is not a date, and converts the others", function()
    local text = recorded.read("salesshipments_dispatched_2014.json")
    assert.is_truthy(text:find("p.m.", 1, true))
    local v = assert(json.decode(text))
    local seen = false
    for _, item in ipairs(v.Items) do
      if item.CreatedOn and item.CreatedOn:find("p.m.", 1, true) then seen = true end
    end
    assert.is_true(seen)
  end)

  it("gives the same tables for the sandbox's pages and objects", function()
    local ID, KEY = "decode-id", "decode-key"
    local app = sandbox.new{ seed = 40, credentials = { [ID] = KEY },
                             clock = function() return 1767225600000 end }
    local function get(path, query)
      local resp = app:handle{ method = "GET", path = path, query = query or "", body = "",
        headers = { ["api-auth-id"] = ID, ["api-auth-signature"] = core.sign(query or "", KEY),
                    accept = "application/json", ["content-type"] = "application/json" } }
      assert.are.equal(200, resp.status, resp.body)
      return resp.body
    end
    local page = get("/PurchaseOrders/Page/1", "pageSize=200")
    assert_same_as_before(page, "PurchaseOrders")
    local doc = assert(json.decode(page))
    assert.is_true(#doc.Items > 0)
    assert.are.equal("integer", math.type(doc.Items[1].PurchaseOrderLines[1].LineNumber))
    assert_same_as_before(get("/PurchaseOrders/" .. doc.Items[1].Guid), "one order")
    for _, r in ipairs{ "Products", "Suppliers", "Taxes", "Currencies", "Warehouses" } do
      assert_same_as_before(get("/" .. r), r)
    end
  end)

  it("gives the same tables for generated documents", function()
    local rng = math.random
    math.randomseed(20261207)
    local KEYS = { "Guid", "OrderDate", "LastModifiedOn", "CreatedOn", "Comment", "Items", "Pagination",
      "PurchaseOrderLines", "LineNumber", "NumberOfItems", "PageSize", "PageNumber", "NumberOfPages",
      "Quantity", "Tax", "a", "", "k\\u00e9", "Date", "On", "x\\\"y" }
    local STRINGS = { '"plain"', '"\\/Date(1413283318353)\\/"', '"/Date(1700000000000+0100)/"',
      '"/Date(-5)/"', '"12/10/2014 8:08:10 p.m."', '"\\u0027\\u0026\\n\\t\\\\"', '"\\ud83d\\ude00"',
      '"caf\\u00e9 \\"q\\""', '""', '"/Date(1)/ "' }
    local NUMBERS = { "0", "-0", "1", "-17", "2.5", "0.150000", "2173.600", "1e3", "-1.5E-7", "3",
      "12345678901234567", "0.1", "99.9999", "4", "1E+2" }
    local gen
    gen = function(depth)
      local r = rng(10)
      if depth < 5 and r <= 2 then
        local parts, used = {}, {}
        for _ = 1, rng(0, 6) do
          local k = KEYS[rng(#KEYS)]
          if not used[k] then   -- names unique within an object, as JSON wants them
            used[k] = true
            parts[#parts + 1] = '"' .. k .. '"' .. (rng(2) == 1 and " : " or ":") .. gen(depth + 1)
          end
        end
        return "{" .. table.concat(parts, ",") .. "}"
      elseif depth < 5 and r <= 4 then
        local parts = {}
        for i = 1, rng(0, 5) do parts[i] = gen(depth + 1) end
        return "[ " .. table.concat(parts, " , ") .. "]"
      elseif r <= 6 then
        return STRINGS[rng(#STRINGS)]
      elseif r <= 8 then
        return NUMBERS[rng(#NUMBERS)]
      elseif r == 9 then
        return "null"
      end
      return rng(2) == 1 and "true" or "false"
    end
    for i = 1, 3000 do
      local text = gen(0)
      if rng(3) == 1 then
        text = '{"Pagination":{"NumberOfItems":' .. NUMBERS[rng(#NUMBERS)] .. ',"PageSize":200},"Items":['
          .. gen(1) .. "," .. gen(1) .. "]}"
      end
      if text ~= "null" then assert_same_as_before(text, "doc " .. i .. " " .. text) end
    end
  end)
end)

describe("the decoder's numbers past the fast path", function()
  it("reads an exponent past its cap through strtod, not as the capped figure", function()
    local d = core.decoder()
    local tiny_then_huge = "[0." .. ("0"):rep(100000) .. "1e1000005]"
    assert.are.equal(math.huge, d:decode(tiny_then_huge)[1])
    assert.are.equal(0.0, d:decode("[1e-1000005]")[1])
    assert.are.equal(1.2345678901234568e+23, d:decode("[123456789012345678901234]")[1])
  end)

  it("reads decimals with a point whatever locale the host sets", function()
    local before = os.setlocale(nil, "numeric")
    finally(function() os.setlocale(before, "numeric") end)
    for _, name in ipairs{ "de_DE.UTF-8", "fr_FR.UTF-8", "C.UTF-8", "C" } do
      if os.setlocale(name, "numeric") then
        local d = core.decoder()
        assert.are.equal(12345678901234567890.5, d:decode("[12345678901234567890.5]")[1], name)
        assert.are.equal(0.25, d:decode("[0.25]")[1], name)
      end
    end
  end)
end)
