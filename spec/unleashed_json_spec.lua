-- Decoding answers (dates to ISO text, null members dropped, integer fields
-- as Lua integers) and encoding request bodies (explicit null, empty arrays,
-- numbers without float noise).
local json = require "unleashed.json"
local unleashed = require "unleashed"
local client_mod = require "unleashed.client"

describe("decoding", function()
  local body = [[{"Pagination":{"NumberOfItems":3,"PageSize":200,"PageNumber":1,"NumberOfPages":1},
    "Items":[{"Guid":"9d5d3a4c-0000-4000-8000-000000000001","OrderDate":"\/Date(1499957160146)\/",
              "CreatedOn":"/Date(1499957160000+1200)/","Comments":null,"SubTotal":288.0000,
              "PurchaseOrderLines":[{"LineNumber":1,"OrderQuantity":5.0000,"Comments":null}],
              "SalesOrders":[]}]}]]

  it("turns .NET dates into ISO 8601 UTC text with milliseconds", function()
    local v = assert(json.decode(body))
    assert.equal("2017-07-13T14:46:00.146Z", v.Items[1].OrderDate)
    assert.equal("2017-07-13T14:46:00.000Z", v.Items[1].CreatedOn)
  end)

  it("drops null members, so they read as nil", function()
    local v = assert(json.decode(body))
    assert.is_nil(v.Items[1].Comments)
    assert.is_nil(v.Items[1].PurchaseOrderLines[1].Comments)
    local has = false
    for k in pairs(v.Items[1]) do if k == "Comments" then has = true end end
    assert.is_false(has)
  end)

  it("gives integer fields as Lua integers and decimals as numbers", function()
    local v = assert(json.decode(body))
    assert.equal("integer", math.type(v.Pagination.NumberOfItems))
    assert.equal("integer", math.type(v.Pagination.NumberOfPages))
    assert.equal("integer", math.type(v.Items[1].PurchaseOrderLines[1].LineNumber))
    assert.equal(288, v.Items[1].SubTotal)
    assert.equal(5, v.Items[1].PurchaseOrderLines[1].OrderQuantity)
  end)

  it("refuses text that is not JSON (and NaN, which is not JSON)", function()
    for _, bad in ipairs{ "<html>502</html>", '{"Items":[', "", '{"x":NaN}', '{"x":Infinity}' } do
      local v, err = json.decode(bad)
      assert.is_nil(v)
      assert.is_string(err)
    end
  end)

  it("turns a 2xx that is not JSON into a protocol error", function()
    local ok, e = pcall(client_mod.decode_body, { status = 200, body = '{"Items": [1,', attempts = 1 },
                        "GET", "/PurchaseOrders")
    assert.is_false(ok)
    assert.equal("protocol", e.kind)
    assert.equal(200, e.status)
    assert.equal("/PurchaseOrders", e.path)
  end)

  it("checks that a listing answer is a page", function()
    local ok, e = pcall(client_mod.check_page, { Items = {} }, { status = 200 }, "GET", "/Suppliers")
    assert.is_false(ok)
    assert.equal("protocol", e.kind)
  end)
end)

describe("encoding", function()
  it("sends unleashed.null as an explicit null", function()
    assert.equal(require("cjson").null, unleashed.null)
    assert.equal('{"Comments":null,"DeliveryDate":"2019-07-09T15:15:15"}',
                 json.encode{ Comments = unleashed.null, DeliveryDate = "2019-07-09T15:15:15" })
  end)

  it("sends ISO dates back unchanged", function()
    local v = assert(json.decode('{"OrderDate":"\\/Date(1499957160146)\\/"}'))
    assert.equal('{"OrderDate":"2017-07-13T14:46:00.146Z"}', json.encode(v))
  end)

  it("writes empty collections of the API as arrays, other empty tables as objects", function()
    assert.equal('{"PurchaseOrderLines":[],"Supplier":{}}',
                 json.encode{ PurchaseOrderLines = {}, Supplier = {} })
    assert.equal('{"x":[]}', json.encode{ x = unleashed.array() })
  end)

  it("writes integers as integers and decimals by their shortest form", function()
    assert.equal('[1,5,12.34,0.1,2.5,-3,1e+20,1e-05]',
                 json.encode{ 1, 5.0, 12.34, 0.1, 2.5, -3.0, 1e20, 1e-5 })
    assert.equal('{"LineNumber":9007199254740993}', json.encode{ LineNumber = 9007199254740993 })
  end)

  it("escapes strings and sorts object keys", function()
    assert.equal('{"a":"q\\"uote\\n","b":"M\195\156LLER"}', json.encode{ b = "MÜLLER", a = 'q"uote\n' })
  end)

  it("names the field JSON cannot hold", function()
    local cases = {
      { { a = { b = 0 / 0 } }, "a.b", "finite" },
      { { PurchaseOrderLines = { { LineTotal = math.huge } } }, "PurchaseOrderLines[1].LineTotal", "finite" },
      { { a = { [1] = 1, [3] = 3 } }, "a", "mixes array items and named fields" },
      { { f = coroutine.create(print) }, "f", "cannot be sent as JSON" },
      { { [true] = 1 }, nil, "neither a string nor an array index" },
    }
    for _, c in ipairs(cases) do
      local text, problem = json.encode(c[1])
      assert.is_nil(text)
      assert.equal(c[2], problem.field)
      assert.matches(c[3], problem.message)
    end
  end)

  it("refuses a table nested in itself", function()
    local t = {}
    t.self = t
    local text, problem = json.encode(t)
    assert.is_nil(text)
    assert.matches("nested too deeply", problem.message)
  end)
end)

describe("unleashed.guid", function()
  it("makes random version 4 GUIDs", function()
    local seen = {}
    for _ = 1, 200 do
      local g = unleashed.guid()
      assert.matches("^%x%x%x%x%x%x%x%x%-%x%x%x%x%-4%x%x%x%-[89ab]%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$", g)
      assert.is_nil(seen[g])
      seen[g] = true
    end
  end)

  it("does not touch math.random's state", function()
    math.randomseed(7)
    local a = math.random()
    math.randomseed(7)
    unleashed.guid()
    assert.equal(a, math.random())
  end)
end)
