-- Query encoding: one sorted list of pairs gives the signed text (raw) and the
-- wire text (RFC 3986), so what is signed is exactly what the server decodes.
local core = require "unleashed.core"
local openssl_hmac = require("support.openssl").hmac

local function percent_decode(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- Splits "k=v&k=v" into pairs; used on the wire text, where & and = only
-- ever separate.
local function split_wire(wire)
  local pairs_ = {}
  if wire == "" then return pairs_ end
  for item in (wire .. "&"):gmatch("([^&]*)&") do
    local k, v = item:match("^([^=]*)=(.*)$")
    assert(k, "wire item without '=': " .. item)
    pairs_[#pairs_ + 1] = { percent_decode(k), percent_decode(v) }
  end
  return pairs_
end

-- Byte order, independent of the locale's collation.
local function bytes_less(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = a:byte(i), b:byte(i)
    if x ~= y then return x < y end
  end
  return #a < #b
end

describe("unleashed.core.encode_query", function()
  -- { table, signed, wire }
  local cases = {
    { { supplierCode = "ACME" }, "supplierCode=ACME", "supplierCode=ACME" },
    { { supplierCode = "A CME Ltd" }, "supplierCode=A CME Ltd", "supplierCode=A%20CME%20Ltd" },
    { { orderNumber = "PO#0001" }, "orderNumber=PO#0001", "orderNumber=PO%230001" },
    { { supplierCode = "A+B" }, "supplierCode=A+B", "supplierCode=A%2BB" },
    { { supplierCode = "Smith & Sons" }, "supplierCode=Smith & Sons", "supplierCode=Smith%20%26%20Sons" },
    { { comment = "a=b" }, "comment=a=b", "comment=a%3Db" },
    { { discount = "100%" }, "discount=100%", "discount=100%25" },
    { { email = "buyer@example.com" }, "email=buyer@example.com", "email=buyer%40example.com" },
    { { path = "a/b?c" }, "path=a/b?c", "path=a%2Fb%3Fc" },
    { { unreserved = "AZaz09-._~" }, "unreserved=AZaz09-._~", "unreserved=AZaz09-._~" },
    { { name = "Müller" }, "name=Müller", "name=M%C3%BCller" },
    { { name = "株" }, "name=株", "name=%E6%A0%AA" },
    { { ["key with space"] = "v" }, "key with space=v", "key%20with%20space=v" },
    { { empty = "" }, "empty=", "empty=" },
    { { serialBatch = true }, "serialBatch=true", "serialBatch=true" },
    { { serialBatch = false }, "serialBatch=false", "serialBatch=false" },
    { { pageSize = 1000 }, "pageSize=1000", "pageSize=1000" },
    { { n = -42 }, "n=-42", "n=-42" },
    { { n = 0 }, "n=0", "n=0" },
    { { n = math.maxinteger }, "n=9223372036854775807", "n=9223372036854775807" },
    { { n = math.mininteger }, "n=-9223372036854775808", "n=-9223372036854775808" },
    { { n = 5.0 }, "n=5", "n=5" },
    { { n = -0.0 }, "n=0", "n=0" },
    { { n = 0.1 }, "n=0.1", "n=0.1" },
    { { n = 2.5 }, "n=2.5", "n=2.5" },
    { { n = -1.75 }, "n=-1.75", "n=-1.75" },
    { { n = 1e20 }, "n=100000000000000000000", "n=100000000000000000000" },
    { { n = 2.0 ^ 63 }, "n=9223372036854775808", "n=9223372036854775808" },
    { { n = -(2.0 ^ 63) }, "n=-9223372036854775808", "n=-9223372036854775808" },
    { { n = 1e-7 }, "n=1e-07", "n=1e-07" },
    { { n = 1 / 3 }, "n=0.3333333333333333", "n=0.3333333333333333" },
    { { n = 1.5e-300 }, "n=1.5e-300", "n=1.5e-300" },
    { { n = 1e15 + 0.5 }, "n=1000000000000000.5", "n=1000000000000000.5" },
    { {}, "", "" },
    { { b = "2", a = "1", c = "3" }, "a=1&b=2&c=3", "a=1&b=2&c=3" },
    -- byte order: upper case before lower case, a prefix before its extensions
    { { b = 1, B = 2, a = 3, A = 4, _ = 5, ["a "] = 6, aa = 7, Z = 8 },
      "A=4&B=2&Z=8&_=5&a=3&a =6&aa=7&b=1", "A=4&B=2&Z=8&_=5&a=3&a%20=6&aa=7&b=1" },
    { { supplierCode = "A B", orderStatus = "Parked", startDate = "2012-12-31", pageSize = 200 },
      "orderStatus=Parked&pageSize=200&startDate=2012-12-31&supplierCode=A B",
      "orderStatus=Parked&pageSize=200&startDate=2012-12-31&supplierCode=A%20B" },
  }
  for _, case in ipairs(cases) do
    it(("encodes %q"):format(case[2]), function()
      local signed, wire = core.encode_query(case[1])
      assert.are.equal(case[2], signed)
      assert.are.equal(case[3], wire)
    end)
  end

  it("gives two empty texts for nil or no argument", function()
    local s, w = core.encode_query(nil)
    assert.are.equal("", s)
    assert.are.equal("", w)
    s, w = core.encode_query()
    assert.are.equal("", s)
    assert.are.equal("", w)
  end)

  it("writes floats in a form that reads back to the same double", function()
    math.randomseed(7)
    for _ = 1, 2000 do
      local v = (math.random() - 0.5) * 10 ^ math.random(-30, 30)
      local signed, wire = core.encode_query({ x = v })
      local text = signed:sub(3)
      assert.are.equal(v, tonumber(text))
      assert.are.equal(text, percent_decode(wire:sub(3)))
      if v == math.floor(v) then
        assert.truthy(text:match("^%-?%d+$"), text)
      else
        -- no more than the 17 significant digits a double ever needs
        local mantissa = text:gsub("e.*$", ""):gsub("[^%d]", ""):gsub("^0+", "")
        assert.is_true(#mantissa <= 17, text)
      end
    end
    local huge = core.encode_query({ x = 1e300 })
    assert.truthy(huge:match("^x=%d+$"))
    assert.are.equal(1e300, tonumber(huge:sub(3)))
  end)

  it("keeps signed and wire text in step for random tables", function()
    math.randomseed(11)
    local alphabet = { "a", "Z", "0", " ", "+", "#", "&", "=", "%", "@", "/", "?", "~", "é", "\0", "\n" }
    local function word(max)
      local t = {}
      for i = 1, math.random(0, max) do t[i] = alphabet[math.random(#alphabet)] end
      return table.concat(t)
    end
    for _ = 1, 200 do
      local t, keys = {}, {}
      for _ = 1, math.random(0, 8) do
        local k = word(6)
        if k ~= "" and t[k] == nil then
          t[k] = word(10)
          keys[#keys + 1] = k
        end
      end
      table.sort(keys, bytes_less)
      local signed, wire = core.encode_query(t)
      assert.truthy(wire:match("^[A-Za-z0-9%-._~%%=&]*$"), wire)
      local got = split_wire(wire)
      assert.are.equal(#keys, #got)
      local raw = {}
      for i, k in ipairs(keys) do
        assert.are.equal(k, got[i][1])
        assert.are.equal(t[k], got[i][2])
        raw[i] = k .. "=" .. t[k]
      end
      assert.are.equal(table.concat(raw, "&"), signed)
    end
  end)

  it("gives texts that the server's signature check accepts (openssl HMAC of the decoded query)", function()
    local key = "s3cr3t+key/with=base64looks=="
    local queries = {
      { supplierCode = "A CME Ltd", orderNumber = "PO#1", comment = "a+b&c=d", email = "x@y.z" },
      { name = "Müller Äpfel 株式会社", pageSize = 1000, serialBatch = true, ratio = 0.1 },
      {},
    }
    for _, q in ipairs(queries) do
      local signed, wire = core.encode_query(q)
      -- what the server signs: the wire text decoded, pairs in order
      local decoded = {}
      for i, p in ipairs(split_wire(wire)) do decoded[i] = p[1] .. "=" .. p[2] end
      assert.are.equal(signed, table.concat(decoded, "&"))
      assert.are.equal(openssl_hmac(table.concat(decoded, "&"), key), core.sign(signed, key))
    end
  end)

  describe("refuses", function()
    local co = coroutine.create(function() end)
    local no_form = "value must be a string, number or boolean, not a "
    local refusals = {
      { { [1] = "x" }, "^query: key 1 %(a number%): keys must be strings$" },
      { { [2.5] = "x" }, "^query: key 2%.5 %(a number%): keys must be strings$" },
      { { [true] = "x" }, "^query: key true %(a boolean%): keys must be strings$" },
      { { [{}] = "x" }, "^query: key table: 0x%x+ %(a table%): keys must be strings$" },
      { { [""] = "x" }, '^query: key "": keys must not be empty$' },
      { { supplierCode = {} }, '^query: key "supplierCode": ' .. no_form .. 'table$' },
      { { fn = print }, '^query: key "fn": ' .. no_form .. 'function$' },
      { { file = io.stdout }, '^query: key "file": ' .. no_form .. 'userdata$' },
      { { co = co }, '^query: key "co": ' .. no_form .. 'thread$' },
      { { ratio = 0 / 0 }, '^query: key "ratio": value is NaN$' },
      { { ratio = math.huge }, '^query: key "ratio": value is infinite$' },
      { { ratio = -math.huge }, '^query: key "ratio": value is infinite$' },
    }
    for _, case in ipairs(refusals) do
      it(case[2], function()
        local ok, err = pcall(core.encode_query, case[1])
        assert.is_false(ok)
        assert.are.equal("string", type(err))
        assert.truthy(err:match(case[2]), err)
      end)
    end

    it("a bad value among good pairs, naming the bad key", function()
      local ok, err = pcall(core.encode_query, { a = "1", bad = {}, z = "2" })
      assert.is_false(ok)
      assert.truthy(err:find('key "bad"', 1, true), err)
    end)

    it("a query that is not a table", function()
      local ok, err = pcall(core.encode_query, "a=1")
      assert.is_false(ok)
      assert.truthy(err:match("^query: must be a table, not a string$"), err)
    end)
  end)
end)
