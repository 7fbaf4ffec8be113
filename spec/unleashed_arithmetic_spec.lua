-- Amounts: rounding half away from zero on a number's decimal value, exact
-- decimal arithmetic, and the line/order arithmetic the server checks,
-- compared with the sandbox's own implementation of it.
local decimal = require "unleashed.decimal"
local arithmetic = require "unleashed.arithmetic"
local json = require "unleashed.json"
local unleashed = require "unleashed"
local server = require "unleashed.sandbox.orders"

describe("unleashed.round", function()
  local cases = {
    { 2.675, 2, 2.68 }, { -2.675, 2, -2.68 }, { 1.005, 2, 1.01 }, { 1.004999, 2, 1.0 },
    { 0.125, 2, 0.13 }, { -0.125, 2, -0.13 }, { 12.345, 2, 12.35 }, { 0.3, 2, 0.3 },
    { 0.1 + 0.2, 2, 0.3 }, { 2.00005, 4, 2.0001 }, { 2.00004999, 4, 2.0 }, { 5, 2, 5.0 },
    { -0.004, 2, 0.0 }, { 123456789.125, 2, 123456789.13 }, { 1e-7, 4, 0.0 },
  }
  for _, c in ipairs(cases) do
    it(("rounds %.17g to %d places as %s"):format(c[1], c[2], tostring(c[3])), function()
      assert.equal(c[3], unleashed.round(c[1], c[2]))
    end)
  end

  it("never gives negative zero", function()
    assert.equal("0.00", select(2, decimal.round_number(-0.001, 2)))
    assert.equal("0", json.encode(unleashed.round(-0.001, 2)))
  end)

  it("refuses NaN, infinities and bad places", function()
    for _, bad in ipairs{ 0 / 0, math.huge, -math.huge, "1.5" } do
      local ok, e = pcall(unleashed.round, bad, 2)
      assert.is_false(ok)
      assert.equal("validation", e.kind)
      assert.equal("x", e.details[1].field)
    end
    local ok, e = pcall(unleashed.round, 1.5, 1.5)
    assert.is_false(ok)
    assert.equal("places", e.details[1].field)
  end)
end)

describe("unleashed.decimal", function()
  it("reads numbers by their shortest decimal form", function()
    assert.equal("2.675", decimal.shortest(2.675))
    assert.equal("0.30000000000000004", decimal.shortest(0.1 + 0.2))
    assert.equal("12", decimal.shortest(12))
    assert.equal("1e-05", decimal.shortest(1e-5))
  end)

  it("adds, subtracts and multiplies exactly", function()
    assert.equal("0.3", decimal.tostring(decimal.add("0.1", "0.2")))
    assert.equal("-0.25", decimal.tostring(decimal.add("-1.5", "1.25")))
    assert.equal("1.25", decimal.tostring(decimal.sub("-1.25", "-2.5")))
    assert.equal("6.5625", decimal.tostring(decimal.mul(decimal.mul("2.5", "3"), decimal.sub("1", "0.125"))))
    -- beyond 64-bit integers and doubles
    assert.equal("121932631137021795223746380111126352690.0000",
      decimal.tostring(decimal.mul("12345678901234567890.00", "9876543210987654321.00")))
    assert.equal(0, decimal.cmp("1.50", "1.5"))
    assert.equal(-1, decimal.cmp("-3", "2"))
  end)

  it("rounds half away from zero on exact decimals", function()
    assert.equal("0.13", decimal.tostring(decimal.round("0.125", 2)))
    assert.equal("-0.13", decimal.tostring(decimal.round("-0.125", 2)))
    assert.equal("0.12", decimal.tostring(decimal.round("0.12499999999", 2)))
    assert.equal("10.00", decimal.tostring(decimal.round("9.995", 2)))
    assert.equal("1.5000", decimal.tostring(decimal.round("1.5", 4)))
  end)
end)

describe("the line and order arithmetic", function()
  it("computes LineTotal = round2(q x price x (1 - discount)) and LineTax", function()
    assert.equal(12.5, arithmetic.line_total(5, 2.5))
    assert.equal(2.93, arithmetic.line_total(3.33333, 1.005, 0.125))   -- q and price rounded to 4dp first
    assert.equal(1.88, arithmetic.line_tax(12.5, 0.15))                 -- 1.875 -> 1.88
    assert.equal(0.0, arithmetic.line_tax(12.5, 0))
  end)

  it("sums SubTotal, TaxTotal and Total without float noise", function()
    local lines = {}
    for i = 1, 10 do lines[i] = { LineTotal = 0.1, LineTax = 0.01 * i } end
    local sub, tax, total = arithmetic.totals(lines)
    assert.equal(1.0, sub)
    assert.equal(0.55, tax)
    assert.equal(1.55, total)
    assert.equal('{"SubTotal":1,"TaxTotal":0.55,"Total":1.55}',
      json.encode{ SubTotal = sub, TaxTotal = tax, Total = total })
  end)

  it("agrees with the sandbox's arithmetic on thousands of random lines", function()
    local state = 12345
    local function rand(n)   -- a private LCG: the spec does not touch math.random
      state = (state * 6364136223846793005 + 1442695040888963407)
      return ((state >> 33) % n)
    end
    local discounts = { 0, 0.05, 0.1, 0.125, 0.15, 0.2, 0.25, 0.3333, 0.5, 0.99, 1 }
    local rates = { 0, 0.09, 0.125, 0.15 }
    for _ = 1, 3000 do
      local q = rand(1000000) / 10000 + 0.0001
      local price = rand(10000000) / 10000
      local d = discounts[rand(#discounts) + 1]
      local mine = arithmetic.line_total(q, price, d)
      local theirs = server.line_total(server.round4(q), server.round4(price), d)
      assert.equal(server.cents(theirs), server.cents(mine),
        ("q=%s price=%s discount=%s"):format(q, price, d))
      local rate = rates[rand(#rates) + 1]
      assert.equal(server.cents(server.round2(mine * rate)), server.cents(arithmetic.line_tax(mine, rate)))
    end
  end)

  it("sends rounded amounts without float noise", function()
    local total = arithmetic.line_total(3, 0.1)          -- 0.30000000000000004 before rounding
    assert.equal('{"LineTotal":0.3}', json.encode{ LineTotal = total })
    assert.equal('{"x":12.34}', json.encode{ x = unleashed.round(12.339999999999999, 2) })
  end)
end)
