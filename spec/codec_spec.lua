-- The codec: dates (parse, format, Retry-After) and the JSON pre-normaliser
-- that every response body goes through before cjson.decode.
local core = require "unleashed.core"
local cjson = require "cjson"

-- ---- an independent calendar: counts years and months one by one ----------

local function is_leap(y)
  return (y % 4 == 0 and y % 100 ~= 0) or y % 400 == 0
end
local MONTH_DAYS = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }
local function month_days(y, m)
  return (m == 2 and is_leap(y)) and 29 or MONTH_DAYS[m]
end
local year_start = { [1970] = 0 }   -- days from 1970-01-01 to 1 January of y
for y = 1970, 9999 do year_start[y + 1] = year_start[y] + (is_leap(y) and 366 or 365) end
for y = 1969, 0, -1 do year_start[y] = year_start[y + 1] - (is_leap(y) and 366 or 365) end

local function ms_of(y, mo, d, h, mi, s, ms)
  local days = year_start[y]
  for m = 1, mo - 1 do days = days + month_days(y, m) end
  days = days + d - 1
  return ((days * 24 + (h or 0)) * 60 + (mi or 0)) * 60000 + (s or 0) * 1000 + (ms or 0)
end

local function iso_of(y, mo, d, h, mi, s, ms)
  return ("%04d-%02d-%02dT%02d:%02d:%02d.%03dZ"):format(y, mo, d, h, mi, s, ms)
end

-- A random instant in years 0..9999: its ISO text and its ms.
local function random_instant()
  local y = math.random(0, 9999)
  local mo = math.random(1, 12)
  local d = math.random(1, month_days(y, mo))
  local h, mi, s, ms = math.random(0, 23), math.random(0, 59), math.random(0, 59), math.random(0, 999)
  return iso_of(y, mo, d, h, mi, s, ms), ms_of(y, mo, d, h, mi, s, ms)
end

describe("unleashed.core dates", function()
  local known = {
    { "1970-01-01T00:00:00.000Z", 0 },
    { "1970-01-01T00:00:00.001Z", 1 },
    { "1969-12-31T23:59:59.999Z", -1 },
    { "1969-12-31T00:00:00.000Z", -86400000 },
    { "2017-07-13T14:46:00.146Z", 1499957160146 },
    { "2000-02-29T00:00:00.000Z", 951782400000 },
    { "2024-02-29T12:00:00.000Z", 1709208000000 },
    { "1900-03-01T00:00:00.000Z", -2203891200000 },
    { "1600-02-29T00:00:00.000Z", -11670998400000 },
    { "0000-01-01T00:00:00.000Z", -62167219200000 },
    { "9999-12-31T23:59:59.999Z", 253402300799999 },
  }

  for _, case in ipairs(known) do
    it(("formats and parses %s"):format(case[1]), function()
      local y, mo, d, h, mi, s, ms = case[1]:match("^(%d+)-(%d+)-(%d+)T(%d+):(%d+):(%d+)%.(%d+)Z$")
      assert.are.equal(case[2], ms_of(tonumber(y), tonumber(mo), tonumber(d), tonumber(h), tonumber(mi),
        tonumber(s), tonumber(ms)))
      assert.are.equal(case[1], core.iso_date(case[2]))
      assert.are.equal(case[2], core.parse_date(case[1]))
      assert.are.equal(case[2], core.parse_date(("/Date(%d)/"):format(case[2])))
      assert.are.equal(math.type(case[2]), math.type(core.parse_date(case[1])))
    end)
  end

  it("round-trips random instants of years 0 to 9999", function()
    math.randomseed(1234)
    for _ = 1, 3000 do
      local iso, ms = random_instant()
      assert.are.equal(iso, core.iso_date(ms))
      assert.are.equal(ms, core.parse_date(iso))
      assert.are.equal(ms, core.parse_date(iso:sub(1, 19)) + ms % 1000)
      assert.are.equal(ms - ms % 86400000, core.parse_date(iso:sub(1, 10)))
      assert.are.equal(ms, core.parse_date(("/Date(%d)/"):format(ms)))
    end
  end)

  it("parses the forms the API uses and accepts", function()
    assert.are.equal(1499957160146, core.parse_date("/Date(1499957160146)/"))
    assert.are.equal(1499957160146, core.parse_date("/Date(1499957160146+1000)/"))
    assert.are.equal(1499957160146, core.parse_date("/Date(1499957160146-0530)/"))
    assert.are.equal(-1499957160146, core.parse_date("/Date(-1499957160146)/"))
    assert.are.equal(0, core.parse_date("/Date(0)/"))
    assert.are.equal(1356912000000, core.parse_date("2012-12-31"))
    assert.are.equal(1562685315000, core.parse_date("2019-07-09T15:15:15"))
    assert.are.equal(1562685315000, core.parse_date("2019-07-09T15:15:15Z"))
    assert.are.equal(1562685315100, core.parse_date("2019-07-09T15:15:15.1"))
    assert.are.equal(1562685315120, core.parse_date("2019-07-09T15:15:15.12Z"))
    assert.are.equal(1562685315123, core.parse_date("2019-07-09T15:15:15.1234567"))
    assert.are.equal(1562685315999, core.parse_date("2019-07-09T15:15:15.999999999Z"))
  end)

  local invalid = {
    "", "2015-02-29", "1900-02-29", "2100-02-29", "2016-02-30", "2016-04-31", "2016-13-01",
    "2016-00-10", "2016-01-00", "2016-01-32", "2016-1-01", "16-01-01", "20160101", "2016-01-01T",
    "2016-01-01T24:00:00", "2016-01-01T23:60:00", "2016-01-01T23:59:60", "2016-01-01 10:00:00",
    "2016-01-01T10:00", "2016-01-01T10:00:00.", "2016-01-01T10:00:00.1234567890",
    "2016-01-01T10:00:00Zjunk", "2016-01-01T10:00:00+01:00", "2016-01-01Z", " 2016-01-01",
    "2016-01-01 ", "+2016-01-01", "/Date()/", "/Date(abc)/", "/Date(123", "/Date(123)", "/Date(123)/x",
    "/Date(1+25)/", "/Date(1+2500)/", "/Date(1+0060)/", "/Date(1 )/", "/Date(--1)/", "/date(1)/",
    "\\/Date(1)\\/", "/Date(9223372036854775808)/", "/Date(99999999999999999999999999999999)/",
    "2016-01-01T10:00:00." .. ("1"):rep(1000), ("9"):rep(1000),
  }
  for _, s in ipairs(invalid) do
    it(("refuses %q"):format(#s > 40 and s:sub(1, 40) .. "..." or s), function()
      local ms, err = core.parse_date(s)
      assert.is_nil(ms)
      assert.are.equal("string", type(err))
      assert.truthy(err:find("expected /Date(ms)/", 1, true), err)
    end)
  end

  it("parses the extremes of the integer range of /Date(ms)/", function()
    assert.are.equal(math.maxinteger, core.parse_date("/Date(9223372036854775807)/"))
    assert.are.equal(-math.maxinteger, core.parse_date("/Date(-9223372036854775807)/"))
  end)

  it("refuses to format instants outside years 0 to 9999, and non-integers", function()
    assert.has_error(function() core.iso_date(253402300800000) end)
    assert.has_error(function() core.iso_date(-62167219200001) end)
    assert.has_error(function() core.iso_date(math.maxinteger) end)
    assert.has_error(function() core.iso_date(math.mininteger) end)
    assert.has_error(function() core.iso_date(1.5) end)
    assert.has_error(function() core.iso_date("soon") end)
    assert.are.equal("1970-01-01T00:00:01.000Z", core.iso_date(1000.0))
  end)
end)

describe("unleashed.core.parse_retry_after", function()
  local now = ms_of(1994, 11, 6, 8, 49, 0, 0) // 1000   -- 37 s before the RFC's example instant

  it("reads delta-seconds", function()
    assert.are.equal(0, core.parse_retry_after("0", now))
    assert.are.equal(120, core.parse_retry_after("120", now))
    assert.are.equal(5, core.parse_retry_after(" 5\t", now))
    assert.are.equal(7, core.parse_retry_after("007", now))
    assert.are.equal(3600, core.parse_retry_after("3600"))
  end)

  it("caps a delta too large to represent at 2^31 seconds", function()
    assert.are.equal(2 ^ 31, core.parse_retry_after("99999999999999999999999999999999", now))
    assert.are.equal(2 ^ 31, core.parse_retry_after(("9"):rep(5000), now))
  end)

  it("reads the three HTTP-date forms", function()
    assert.are.equal(37, core.parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now))
    assert.are.equal(37, core.parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", now))
    assert.are.equal(37, core.parse_retry_after("Sun Nov  6 08:49:37 1994", now))
    assert.are.equal(37 + 10 * 86400, core.parse_retry_after("Wed Nov 16 08:49:37 1994", now))
    assert.are.equal(60 + 86400 * 25, core.parse_retry_after("Thu, 01 Dec 1994 08:50:00 GMT", now))
    assert.are.equal(0.5, core.parse_retry_after("Sun, 06 Nov 1994 08:49:01 GMT", now + 0.5))
  end)

  it("gives 0 for a date in the past", function()
    assert.are.equal(0, core.parse_retry_after("Sun, 06 Nov 1994 08:48:37 GMT", now))
    assert.are.equal(0, core.parse_retry_after("Thu, 01 Jan 1970 00:00:00 GMT", now))
    assert.are.equal(0, core.parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"))
  end)

  it("reads RFC 850's two-digit year as at most 50 years ahead", function()
    local jan2026 = ms_of(2026, 1, 1, 0, 0, 0, 0) // 1000
    local days_2026_2030 = 365 * 4 + 1
    assert.are.equal(days_2026_2030 * 86400,
      core.parse_retry_after("Tuesday, 01-Jan-30 00:00:00 GMT", jan2026))
    assert.are.equal(0, core.parse_retry_after("Friday, 01-Jan-77 00:00:00 GMT", jan2026))   -- 1977
    assert.are.equal(0, core.parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", jan2026))
    local jan2080 = ms_of(2080, 1, 1, 0, 0, 0, 0) // 1000
    assert.are.equal((year_start[2110] - year_start[2080]) * 86400,
      core.parse_retry_after("Wednesday, 01-Jan-10 00:00:00 GMT", jan2080))   -- 2110
  end)

  it("defaults now to the clock", function()
    local when = os.time() + 100
    local text = os.date("!%a, %d %b %Y %H:%M:%S GMT", when)
    local wait = core.parse_retry_after(text)
    assert.is_true(wait > 90 and wait <= 100, tostring(wait))
  end)

  local garbage = {
    "", " ", "soon", "-1", "+5", "1.5", "1e3", "5 s", "0x10", "Sun, 06 Nov 1994 08:49:37",
    "Sun, 06 Nov 1994 08:49:37 UTC", "sun, 06 Nov 1994 08:49:37 GMT", "Sun, 6 Nov 1994 08:49:37 GMT",
    "Sun, 06 nov 1994 08:49:37 GMT", "Sun, 31 Feb 1994 08:49:37 GMT", "Sun, 06 Nov 1994 24:49:37 GMT",
    "Sun, 06 Nov 1994 08:60:37 GMT", "Sun, 06 Nov 1994 08:49:61 GMT", "Sun, 06 Nov 94 08:49:37 GMT",
    "Sunday, 06-Nov-1994 08:49:37 GMT", "Sun, 06-Nov-94 08:49:37 GMT", "Sunday, 06 Nov 1994 08:49:37 GMT",
    "Sun Nov 6 08:49:37 1994", "Sun Nov  6 08:49:37 94", "Sun Nov  6 08:49:37 1994 GMT",
    "Sun, 06 Nov 1994 08:49:37 GMT junk", "Sun, 06 Nov 1994 08:49:37 GM", "Sun,", "Sunday,", "Sun ",
    "Funday, 06-Nov-94 08:49:37 GMT", "2026-01-01T00:00:00Z",
  }
  for _, s in ipairs(garbage) do
    it(("refuses %q"):format(s), function()
      local wait, err = core.parse_retry_after(s, now)
      assert.is_nil(wait)
      assert.truthy(err:find("Retry-After", 1, true))
    end)
  end

  it("refuses a now that is not a number", function()
    assert.has_error(function() core.parse_retry_after("5", "later") end)
    assert.has_error(function() core.parse_retry_after("5", 1e300) end)
  end)
end)

-- ---- normalisation --------------------------------------------------------

local function decodes(text)
  return (pcall(cjson.decode, text))
end

describe("unleashed.core.normalize", function()
  it("turns .NET dates into ISO text, slashes escaped or not, offsets ignored", function()
    local text = [[{"a":"\/Date(1499957160146)\/","b":"/Date(1499957160146)/","c":"/Date(-1)/",
      "d":{"e":["\/Date(0)\/","/Date(951782400000+0200)/","\/Date(1499957160146-0530)/"]}}]]
    local want = { a = "2017-07-13T14:46:00.146Z", b = "2017-07-13T14:46:00.146Z",
      c = "1969-12-31T23:59:59.999Z",
      d = { e = { "1970-01-01T00:00:00.000Z", "2000-02-29T00:00:00.000Z", "2017-07-13T14:46:00.146Z" } } }
    assert.are.same(want, cjson.decode(core.normalize(text)))
  end)

  it("rewrites only string values that are exactly a date", function()
    local cases = {
      [[{"a":"x\"/Date(1)\/"}]], [[{"a":"\"\/Date(1)\/\""}]], [[{"a":"/Date(1)/ "}]], [[{"a":" /Date(1)/"}]],
      [[{"a":"/Date(1)//"}]], [[{"a":"/Date(1)\\/"}]], [[{"a":"\\/Date(1)\/"}]], [[{"a":"/Date()/"}]],
      [[{"a":"/Date(1.5)/"}]], [[{"a":"/Date(99999999999999999)/"}]], [[{"a":"/Date(1+1)/"}]],
      [[{"a":"/date(1)/"}]], [[{"/Date(1)/":"k"}]], [[{"\/Date(1)\/":1}]],
      [[{"a":["see /Date(1)/ above","/Date(1)/\n"]}]],
    }
    for _, text in ipairs(cases) do
      assert.are.same(cjson.decode(text), cjson.decode(core.normalize(text)))
    end
  end)

  it("drops object members whose value is null, keeping the JSON valid", function()
    local cases = {
      { '{"a":null,"b":1,"c":2}', { b = 1, c = 2 } },
      { '{"a":1,"b":null,"c":2}', { a = 1, c = 2 } },
      { '{"a":1,"b":2,"c":null}', { a = 1, b = 2 } },
      { '{"a":null}', {} },
      { '{"a":null,"b":null,"c":null}', {} },
      { '{"a":null,"b":1,"c":null,"d":null,"e":2,"f":null}', { b = 1, e = 2 } },
      { '{"a":{"b":null},"c":{"d":{"e":null,"f":null}}}', { a = {}, c = { d = {} } } },
      { ' \n{ "a" :\tnull ,\r\n "b" : [ null , 1 , null ] , "c" : null }\n ',
        { b = { cjson.null, 1, cjson.null } } },
      { '[null,{"a":null},null]', { cjson.null, {}, cjson.null } },
      { '{"null":"null","a":"null"}', { null = "null", a = "null" } },
      { '{"k\\"":null,"x\\\\":null,"y":"\\\\"}', { y = "\\" } },
      { '{"a\\\\":null,"b":{"c\\"\\\\":null,"d":[]}}', { b = { d = {} } } },
      { 'null', cjson.null },
      { '[null]', { cjson.null } },
    }
    for _, case in ipairs(cases) do
      local out = core.normalize(case[1])
      assert.are.same(case[2], cjson.decode(out))
      assert.is_nil(out:find(":%s*null[%s,}]"), out)
    end
  end)

  it("keeps nulls in arrays", function()
    local out = core.normalize('{"a":[null,null,1]}')
    assert.are.same({ a = { cjson.null, cjson.null, 1 } }, cjson.decode(out))
  end)

  it("passes scalars, unicode and escapes through", function()
    local text = [[{"n":-1.5e3,"t":true,"f":false,"u":"\u00e9\ud83d\ude00 é","e":"\b\f\n\r\t\"\\\/"}]]
    assert.are.same(cjson.decode(text), cjson.decode(core.normalize(text)))
  end)

  it("hands back input that is not JSON in a form cjson still refuses", function()
    local bad = {
      "", " ", "{", "}", "[", "]", '{"a":1,}', '{"a":null,}', '{,"a":1}', '[1,]', '[,1]', '{"a"}',
      '{"a":}', '{"a" 1}', '{"a":1 "b":2}', '{"a":null "b":2}', '{"a":nullx}', '{a:1}', '"abc', '"ab\\',
      '{"a":null', '{"a":"\\/Date(1)\\/"', '{"a":"/Date(1)/', '[1]]', '[1]}', '{"a":1]', '[1}',
      '{"a":[null,]}', '{"a":null}{', '{"a":null} x', '1 2', "\"\\", '{"a":null,"b":null,}',
    }
    for _, text in ipairs(bad) do
      local out = core.normalize(text)
      assert.are.equal("string", type(out))
      assert.is_false(decodes(out), ("%q -> %q"):format(text, out))
    end
  end)

  it("refuses every truncation of a valid document", function()
    local text = '{"a":null,"b":["\\/Date(1499957160146)\\/",null,{"c":null,"d":"x\\"y"}],"e":{"f":null}}'
    assert.is_true(decodes(core.normalize(text)))
    for n = 0, #text - 1 do
      local prefix = text:sub(1, n)
      assert.is_false(decodes(core.normalize(prefix)), prefix)
    end
  end)

  it("handles deep nesting", function()
    local deep = ("["):rep(900) .. '{"a":null,"b":"/Date(0)/"}' .. ("]"):rep(900)
    local v = cjson.decode(core.normalize(deep))
    for _ = 1, 900 do v = v[1] end
    assert.are.same({ b = "1970-01-01T00:00:00.000Z" }, v)
    local too_deep = ("["):rep(5000) .. ("]"):rep(5000)
    assert.are.equal("string", type(core.normalize(too_deep)))
    assert.is_false(decodes(core.normalize(("["):rep(5000))))
  end)

  it("refuses a non-string argument", function()
    assert.has_error(function() core.normalize({}) end)
    assert.has_error(function() core.normalize() end)
  end)

  -- Random documents: a value is built together with what decoding its
  -- normalised text must give.
  describe("on random documents", function()
    local chars = { "a", "B", " ", '"', "\\", "/", "é", "\n", "\t", "{", "}", "[", "]", ",", ":", "null",
      "/Date(1)/", "\\/Date(", ")/" }
    local function random_string()
      local t = {}
      for i = 1, math.random(0, 6) do t[i] = chars[math.random(#chars)] end
      return table.concat(t)
    end

    -- returns value to encode, expected decoded value
    local function gen(depth)
      local r = math.random(depth > 3 and 5 or 7)
      if r == 1 then
        local n = math.random(-100000, 100000) / 8
        return n, n
      elseif r == 2 then
        local b = math.random(2) == 1
        return b, b
      elseif r == 3 then
        local s = random_string()
        -- the one way the pieces make a whole date
        return s, s == "/Date(1)/" and "1970-01-01T00:00:00.001Z" or s
      elseif r == 4 or r == 5 then
        local iso, ms = random_instant()
        local offset = ""
        if math.random(3) == 1 then
          local sign = math.random(2) == 1 and "+" or "-"
          offset = ("%s%02d%02d"):format(sign, math.random(0, 23), math.random(0, 59))
        end
        return ("/Date(%d%s)/"):format(ms, offset), iso
      elseif r == 6 then
        local v, want = {}, {}
        for i = 1, math.random(1, 5) do
          if math.random(4) == 1 then
            v[i], want[i] = cjson.null, cjson.null
          else
            v[i], want[i] = gen(depth + 1)
          end
        end
        return v, want
      else
        local v, want = {}, {}
        for _ = 1, math.random(0, 6) do
          local k = random_string() .. "k"   -- never empty, so never mistaken for an array
          if math.random(3) == 1 then
            v[k], want[k] = cjson.null, nil
          else
            v[k], want[k] = gen(depth + 1)
          end
        end
        return v, want
      end
    end

    -- Random whitespace between tokens, and "\/" unescaped at random: both
    -- are the same JSON.
    local function vary(text)
      local out, in_string, escaped = {}, false, false
      local ws = { "", "", " ", "\n", "\t", "\r\n  " }
      for i = 1, #text do
        local c = text:sub(i, i)
        if in_string then
          if escaped then
            escaped = false
            if c == "/" and math.random(2) == 1 then
              out[#out] = "/"
              c = ""
            end
          elseif c == "\\" then
            escaped = true
          elseif c == '"' then
            in_string = false
          end
          out[#out + 1] = c
        else
          if c == '"' then in_string = true end
          if c:find("^[][{}:,]$") then
            c = ws[math.random(#ws)] .. c .. ws[math.random(#ws)]
          end
          out[#out + 1] = c
        end
      end
      return table.concat(out)
    end

    it("decode(normalize(text)) equals the expected value", function()
      math.randomseed(2024)
      local dates = 0
      for _ = 1, 400 do
        local v, want = gen(0)
        if type(v) ~= "table" then v, want = { v }, { want } end
        local text = cjson.encode(v)
        for _ in text:gmatch("Date%(%-?%d+") do dates = dates + 1 end
        for _, t in ipairs({ text, vary(text) }) do
          local out = core.normalize(t)
          local ok, got = pcall(cjson.decode, out)
          assert(ok, ("%q -> %q: %s"):format(t, out, tostring(got)))
          assert.are.same(want, got)
          assert.are.equal(out, core.normalize(out))   -- nothing left to do
        end
      end
      assert.is_true(dates > 100)   -- the generator did exercise the dates
    end)
  end)
end)
